//! Trust roots: the system's store (the configuration's CA file and
//! folder, else the distribution's bundle) plus CA files the user names.

use super::HttpConfig;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The system's roots (`config.system_ca_file`, else the distribution's
/// bundle; plus `config.system_ca_dir`) and the certificates of
/// `config.ca_certs` (each must hold at least one PEM certificate).
pub fn load_roots(config: &HttpConfig) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let extra = &config.ca_certs;
    let mut files: Vec<PathBuf> = Vec::new();
    match &config.system_ca_file {
        Some(f) => files.push(f.clone()),
        None => {
            for f in [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ] {
                if Path::new(f).is_file() {
                    files.push(f.into());
                    break;
                }
            }
        }
    }
    if let Some(dir) = &config.system_ca_dir
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for e in rd.flatten() {
            if e.path()
                .extension()
                .is_some_and(|x| x == "pem" || x == "crt")
            {
                files.push(e.path());
            }
        }
    }
    let mut certs = Vec::new();
    for f in files.iter().chain(extra) {
        let is_extra = extra.contains(f);
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) if is_extra => {
                return Err(Error::input(f, format!("cannot read CA certificate: {e}")));
            }
            Err(_) => continue,
        };
        let before = certs.len();
        for item in ureq::tls::parse_pem(&bytes) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                certs.push(c.to_owned());
            }
        }
        if is_extra && certs.len() == before {
            return Err(Error::input(f, "holds no PEM certificate"));
        }
    }
    Ok(certs)
}

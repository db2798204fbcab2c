//! Trust roots: the system's store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else
//! the distribution's bundle) plus CA files the user names.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The system's roots and the certificates of `extra` (each must hold at
/// least one PEM certificate).
pub fn load_roots(extra: &[PathBuf]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut files: Vec<PathBuf> = Vec::new();
    match std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        Some(f) => files.push(f.into()),
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
    if let Some(dir) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty())
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

//! The HTTP stack every download and registry call goes through: one
//! agent configuration (TLS roots from the system store plus extra CA
//! files, timeouts, a host resolution cache), and plain downloads of URLs,
//! `file://` URLs and local paths. Messages show URLs with their
//! credentials removed ([`redact`]).

mod download;
mod resolve;
mod tls;
mod url;

pub use self::url::{local_path, redact};
pub use download::{get_bytes, get_bytes_with, open};
pub use resolve::CachedResolver;
pub use tls::load_roots;

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How the HTTP agents are made: what a caller of the library may set
/// instead of the process environment.
#[derive(Clone, Debug, Default)]
pub struct HttpConfig {
    /// CA certificate files trusted besides the system's roots.
    pub ca_certs: Vec<PathBuf>,
    /// Whether certificates are verified (off only for hosts the user
    /// named insecure).
    pub skip_verify: bool,
    /// Redirects followed (0: none).
    pub max_redirects: u32,
}

/// An agent with the system's trust roots plus `config.ca_certs`, 30 s to
/// connect and 120 s per stalled read or write, each host resolved once.
/// HTTP status codes are answers, not errors.
pub fn agent(config: &HttpConfig) -> Result<ureq::Agent> {
    let roots = load_roots(&config.ca_certs)?;
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .disable_verification(config.skip_verify)
        .build();
    let agent_config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(config.max_redirects)
        // Downloads run 8 at a time per group, groups side by side: keep
        // their connections for reuse rather than connecting (and
        // resolving the host) again for each file.
        .max_idle_connections(64)
        .max_idle_connections_per_host(32)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .user_agent(format!("imgbuild/{}", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(ureq::Agent::with_parts(
        agent_config,
        ureq::unversioned::transport::DefaultConnector::new(),
        CachedResolver::default(),
    ))
}

/// The agent for downloads (package indexes, wheels, .debs, ADD URLs):
/// made once per process from the system's roots.
pub(crate) fn download_agent() -> Result<&'static ureq::Agent> {
    static AGENT: OnceLock<std::result::Result<ureq::Agent, String>> = OnceLock::new();
    AGENT
        .get_or_init(|| {
            agent(&HttpConfig {
                max_redirects: 10,
                ..HttpConfig::default()
            })
            .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|m| Error::Other(m.clone()))
}

//! The HTTP stack every download and registry call goes through: agents
//! made from the caller's [`HttpConfig`] (TLS roots from the system store
//! plus extra CA files, a proxy, timeouts, a host resolution cache), and
//! plain downloads of URLs, `file://` URLs and local paths ([`Http`]).
//! Messages show URLs with their credentials removed ([`redact`]).
//! Git repositories are read with the host's git ([`git`]).

mod config;
mod download;
pub mod git;
mod resolve;
mod tls;
mod url;

pub use self::url::{local_path, redact};
pub use config::{HttpConfig, HttpProxy};
pub use download::{get_bytes, get_bytes_with};
pub use resolve::CachedResolver;
pub use tls::load_roots;

use crate::error::{Error, Result};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Redirects a download follows.
const DOWNLOAD_REDIRECTS: u32 = 10;

/// An agent with the roots and proxy of `config`, 30 s to connect and
/// 120 s per stalled read or write, each host resolved once, following up
/// to `max_redirects` redirects; certificates unchecked with
/// `skip_verify` (only for hosts the user named insecure). HTTP status
/// codes are answers, not errors.
pub fn agent(config: &HttpConfig, skip_verify: bool, max_redirects: u32) -> Result<ureq::Agent> {
    let roots = load_roots(config)?;
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .disable_verification(skip_verify)
        .build();
    let agent_config = ureq::Agent::config_builder()
        .tls_config(tls)
        // Only the caller's proxy: ureq would read the environment itself.
        .proxy(config.proxy.as_ref().map(|p| p.0.clone()))
        .http_status_as_error(false)
        .max_redirects(max_redirects)
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

/// Downloads (package indexes, wheels, .debs, ADD URLs) with one
/// configuration: the agent is made on first use, so a build that
/// downloads nothing never loads the trust roots.
#[derive(Debug)]
pub struct Http {
    config: HttpConfig,
    agent: OnceLock<std::result::Result<ureq::Agent, String>>,
}

impl Http {
    pub fn new(config: HttpConfig) -> Http {
        Http {
            config,
            agent: OnceLock::new(),
        }
    }

    /// What the agent is made from.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    pub(crate) fn agent(&self) -> Result<&ureq::Agent> {
        self.agent
            .get_or_init(|| {
                agent(&self.config, false, DOWNLOAD_REDIRECTS).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|m| Error::Other(m.clone()))
    }
}

impl Default for Http {
    fn default() -> Http {
        Http::new(HttpConfig::default())
    }
}

/// The downloads of callers that are not given an [`Http`] yet (the
/// free functions [`get_bytes`], [`get_bytes_with`]): configured
/// from the process environment ([`HttpConfig::from_env`]) once. Code that
/// has a store downloads through
/// [`Store::http`](crate::store::Store::http) instead, which carries the
/// caller's configuration.
fn process_http() -> &'static Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| Http::new(HttpConfig::from_env()))
}

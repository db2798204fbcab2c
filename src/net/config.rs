//! What the HTTP agents are made from: trust roots and a proxy, given by
//! the caller. Nothing here reads the environment except
//! [`HttpConfig::from_env`] and [`HttpProxy::from_env`], which the command
//! line calls once at start.

use std::path::PathBuf;

/// How every HTTP agent of a build is made: registry access, verified
/// downloads (wheels, .debs, ADD URLs) and index fetches. A library caller
/// fills it in (or starts from [`HttpConfig::from_env`]) and hands it to the
/// store ([`Store::with_http`](crate::store::Store::with_http)) and the
/// registry client ([`ClientOptions`](crate::registry::ClientOptions)).
///
/// The default trusts the distribution's CA bundle and uses no proxy.
#[derive(Clone, Debug, Default)]
pub struct HttpConfig {
    /// CA certificate files (PEM) trusted besides the system's roots; each
    /// must hold at least one certificate.
    pub ca_certs: Vec<PathBuf>,
    /// The system's roots from this file instead of the distribution's
    /// bundle (what `SSL_CERT_FILE` names).
    pub system_ca_file: Option<PathBuf>,
    /// More system roots: the `.pem` and `.crt` files of this folder (what
    /// `SSL_CERT_DIR` names).
    pub system_ca_dir: Option<PathBuf>,
    /// The proxy requests go through; `None`: straight to the host.
    pub proxy: Option<HttpProxy>,
}

impl HttpConfig {
    /// The configuration the process environment describes, read once:
    ///
    /// - `SSL_CERT_FILE`: the system's roots come from this file instead of
    ///   the distribution's bundle;
    /// - `SSL_CERT_DIR`: the `.pem` and `.crt` files of this folder are
    ///   trusted too;
    /// - `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` (upper or lower case, the
    ///   first set wins) and `NO_PROXY`: see [`HttpProxy::from_env`].
    ///
    /// Empty variables count as unset. `ca_certs` starts empty.
    pub fn from_env() -> HttpConfig {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        HttpConfig {
            ca_certs: Vec::new(),
            system_ca_file: path("SSL_CERT_FILE"),
            system_ca_dir: path("SSL_CERT_DIR"),
            proxy: HttpProxy::from_env(),
        }
    }
}

/// A proxy for HTTP and HTTPS requests (`http://[user:password@]host:port`;
/// HTTPS goes through it with CONNECT).
#[derive(Clone, Debug)]
pub struct HttpProxy(pub(crate) ureq::Proxy);

impl HttpProxy {
    /// A proxy at `url` (`http://` or `https://`; a URL without a scheme
    /// is taken as `http://`), for every host.
    pub fn new(url: &str) -> Result<HttpProxy, String> {
        match ureq::Proxy::new(url) {
            Ok(p)
                if matches!(
                    p.protocol(),
                    ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https
                ) =>
            {
                Ok(HttpProxy(p))
            }
            Ok(_) => Err(format!("proxy {url:?}: SOCKS proxies are not supported")),
            Err(e) => Err(format!("proxy {url:?}: {e}")),
        }
    }

    /// The proxy the environment names: `ALL_PROXY`, `HTTPS_PROXY`,
    /// `HTTP_PROXY` (each upper case first, then lower case; the first
    /// that parses wins), with the hosts of `NO_PROXY` (or `no_proxy`,
    /// comma-separated names, `.suffix` or `*.suffix` patterns, `*` for
    /// all) reached directly. `None` when none is set.
    pub fn from_env() -> Option<HttpProxy> {
        ureq::Proxy::try_from_env().map(HttpProxy)
    }

    /// The proxy's address, without credentials.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.0.host(), self.0.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_http_or_https() {
        let p = HttpProxy::new("http://user:pw@127.0.0.1:3128").unwrap();
        assert_eq!(p.host_port(), "127.0.0.1:3128");
        assert!(HttpProxy::new("https://proxy.example:8443").is_ok());
        let e = HttpProxy::new("socks5://127.0.0.1:1080").unwrap_err();
        assert!(e.contains("SOCKS"), "{e}");
        assert!(HttpProxy::new("http://").is_err());
    }

    #[test]
    fn the_default_names_no_file_folder_or_proxy() {
        let c = HttpConfig::default();
        assert!(c.ca_certs.is_empty() && c.system_ca_file.is_none());
        assert!(c.system_ca_dir.is_none() && c.proxy.is_none());
    }
}

//! Downloads of Python artifacts (wheels, sdists, index pages): over HTTPS
//! with the system's trust store, from `file://` URLs or local paths.
//! Every artifact is verified against its locked sha256 before it enters the
//! store, where it is kept once, as a blob named by that hash.

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Attempts per download (connection drops and 5xx answers are retried).
const ATTEMPTS: u32 = 3;

fn agent() -> Result<&'static ureq::Agent> {
    static AGENT: OnceLock<std::result::Result<ureq::Agent, String>> = OnceLock::new();
    AGENT
        .get_or_init(|| {
            let roots = crate::registry::client::load_roots(&[]).map_err(|e| e.to_string())?;
            let tls = ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .build();
            let config = ureq::Agent::config_builder()
                .tls_config(tls)
                .http_status_as_error(false)
                .max_redirects(10)
                // Downloads run 8 at a time per group, groups side by side:
                // keep their connections for reuse rather than connecting
                // (and resolving the host) again for each file.
                .max_idle_connections(64)
                .max_idle_connections_per_host(32)
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_per_read(Some(Duration::from_secs(120)))
                .user_agent(format!("imgbuild/{}", env!("CARGO_PKG_VERSION")))
                .build();
            Ok(ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::new(),
                CachedResolver::default(),
            ))
        })
        .as_ref()
        .map_err(|m| Error::Other(m.clone()))
}

/// Resolves each host once per process. ureq looks the host up for every
/// request, even one that reuses a pooled connection; a build fetching a
/// hundred .debs 16 at a time sent so many lookups at once that some
/// were dropped and stalled on the resolver's 5-second retry. The first
/// lookup of a host holds the lock, so the others wait for its answer.
#[derive(Debug, Default)]
pub(crate) struct CachedResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    seen: std::sync::Mutex<
        std::collections::HashMap<String, ureq::unversioned::resolver::ResolvedSocketAddrs>,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addrs) = seen.get(&key) {
            return Ok(addrs.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        seen.insert(key, addrs.clone());
        Ok(addrs)
    }
}

/// `https://user:secret@host/…` → `https://host/…`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A local path for `file://` URLs and plain paths; `None` for remote URLs.
pub fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Some(PathBuf::from(percent_decode(rest)));
    }
    (!location.contains("://")).then(|| PathBuf::from(location))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open(location: &str) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
    if let Some(p) = local_path(location) {
        let f =
            std::fs::File::open(&p).map_err(|e| Error::input(&p, format!("cannot read: {e}")))?;
        let len = f.metadata().ok().map(|m| m.len());
        return Ok((Box::new(f), len));
    }
    let resp = agent()?
        .get(location)
        .call()
        .map_err(|e| Error::Other(format!("GET {}: {e}", redact(location))))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(Error::Registry {
            message: format!("GET {}: HTTP {status}", redact(location)),
            status,
        });
    }
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok((Box::new(resp.into_body().into_reader()), len))
}

/// A small document (an index page), at most `limit` bytes.
pub fn get_bytes(url: &str, limit: u64) -> Result<Vec<u8>> {
    get_bytes_with(url, limit, &[])
}

/// Like [`get_bytes`] with extra request headers (e.g. `Accept`).
pub fn get_bytes_with(url: &str, limit: u64, headers: &[(&str, &str)]) -> Result<Vec<u8>> {
    if local_path(url).is_some() {
        let (r, _) = open(url)?;
        let mut out = Vec::new();
        r.take(limit)
            .read_to_end(&mut out)
            .ctx(|| format!("reading {url}"))?;
        return Ok(out);
    }
    let mut req = agent()?.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .call()
        .map_err(|e| Error::Other(format!("GET {}: {e}", redact(url))))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(Error::Registry {
            message: format!("GET {}: HTTP {status}", redact(url)),
            status,
        });
    }
    let mut out = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit)
        .read_to_end(&mut out)
        .ctx(|| format!("reading {}", redact(url)))?;
    Ok(out)
}

/// Brings an artifact into the store and returns its path there. `sha256`
/// (lowercase hex) is checked before the bytes are kept; an artifact already
/// in the store is not fetched again.
pub fn fetch_file(
    store: &Store,
    location: &str,
    sha256: &str,
    size: Option<u64>,
) -> Result<PathBuf> {
    let digest = Digest::parse_hex(sha256).ok_or_else(|| {
        Error::Other(format!(
            "{}: the locked sha256 {sha256:?} is not 64 hex digits",
            redact(location)
        ))
    })?;
    let dest = store.blob_path(&digest);
    if store.has_blob(&digest) {
        // In use: `cache prune` keeps it.
        let _ = std::fs::File::options()
            .append(true)
            .open(&dest)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        return Ok(dest);
    }
    fetch_url(store, location, Some(digest), size, "the lock").map(|(p, _)| p)
}

/// Downloads `location` into the store, with retries; with `expected`, the
/// bytes must hash to it (`claim` names who said so in the error). Returns
/// the blob's path and digest.
pub fn fetch_url(
    store: &Store,
    location: &str,
    expected: Option<Digest>,
    size: Option<u64>,
    claim: &str,
) -> Result<(PathBuf, Digest)> {
    if let Some(d) = &expected
        && store.has_blob(d)
    {
        return Ok((store.blob_path(d), *d));
    }
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300 << attempt));
        }
        match fetch_once(store, location, expected.as_ref(), size, claim) {
            Ok(d) => return Ok((store.blob_path(&d), d)),
            Err(
                e @ (Error::Registry { status: 500.., .. } | Error::Other(_) | Error::Io { .. }),
            ) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

fn fetch_once(
    store: &Store,
    location: &str,
    expected: Option<&Digest>,
    size: Option<u64>,
    claim: &str,
) -> Result<Digest> {
    let (mut r, _) = open(location)?;
    let mut tmp = store.temp_file()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = r
            .read(&mut buf)
            .ctx(|| format!("downloading {}", redact(location)))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .ctx(|| "writing to the store".into())?;
        n_total += n as u64;
    }
    let actual = Digest::from_hasher(h);
    if let Some(digest) = expected
        && actual != *digest
    {
        return Err(Error::Input {
            path: Path::new(&redact(location)).to_path_buf(),
            message: format!(
                "downloaded bytes hash to sha256:{}, {claim} says sha256:{} (nothing was kept)",
                actual.hex(),
                digest.hex()
            ),
        });
    }
    if let Some(s) = size
        && s != n_total
    {
        return Err(Error::Input {
            path: Path::new(&redact(location)).to_path_buf(),
            message: format!("downloaded {n_total} bytes, {claim} says {s}"),
        });
    }
    store.commit_blob(tmp, &actual)?;
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_and_paths() {
        assert_eq!(
            redact("https://u:p@idx.example/simple"),
            "https://idx.example/simple"
        );
        assert_eq!(redact("https://idx.example/a@b"), "https://idx.example/a@b");
        assert_eq!(
            local_path("file:///tmp/a%2Bb.whl"),
            Some(PathBuf::from("/tmp/a+b.whl"))
        );
        assert_eq!(local_path("/tmp/x.whl"), Some(PathBuf::from("/tmp/x.whl")));
        assert_eq!(local_path("https://idx.example/x.whl"), None);
    }

    #[test]
    fn verified_fetch_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let f = dir.path().join("w.whl");
        std::fs::write(&f, b"wheel bytes").unwrap();
        let good = crate::digest::hex_sha256(b"wheel bytes");
        let p = fetch_file(&store, f.to_str().unwrap(), &good, Some(11)).unwrap();
        assert_eq!(std::fs::read(p).unwrap(), b"wheel bytes");
        let bad = crate::digest::hex_sha256(b"other");
        let e = fetch_file(&store, f.to_str().unwrap(), &bad, None).unwrap_err();
        assert!(e.to_string().contains("the lock says"), "{e}");
        assert!(!store.has_blob(&Digest::parse_hex(&bad).unwrap()));
    }
}

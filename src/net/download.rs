//! Plain downloads: a reader or the bytes of a URL, a `file://` URL or a
//! local path.

use super::{Http, local_path, process_http, redact};
use crate::error::{Error, IoContext, RegistryErrorKind, RegistryStatus, Result};
use std::io::Read;

impl Http {
    /// A reader of `location` and its length when known.
    pub fn open(&self, location: &str) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
        if let Some(p) = local_path(location) {
            let f = std::fs::File::open(&p)
                .map_err(|e| Error::input(&p, format!("cannot read: {e}")))?;
            let len = f.metadata().ok().map(|m| m.len());
            return Ok((Box::new(f), len));
        }
        let resp = self
            .agent()?
            .get(location)
            .call()
            .map_err(|e| Error::Other(format!("GET {}: {e}", redact(location))))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(http_error(location, status));
        }
        let len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok((Box::new(resp.into_body().into_reader()), len))
    }

    /// A small document (an index page), at most `limit` bytes.
    pub fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        self.get_bytes_with(url, limit, &[])
    }

    /// Like [`Http::get_bytes`] with extra request headers (e.g. `Accept`).
    pub fn get_bytes_with(
        &self,
        url: &str,
        limit: u64,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>> {
        if local_path(url).is_some() {
            let (r, _) = self.open(url)?;
            let mut out = Vec::new();
            r.take(limit)
                .read_to_end(&mut out)
                .ctx(|| format!("reading {url}"))?;
            return Ok(out);
        }
        let mut req = self.agent()?.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .call()
            .map_err(|e| Error::Other(format!("GET {}: {e}", redact(url))))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(http_error(url, status));
        }
        let mut out = Vec::new();
        resp.into_body()
            .into_reader()
            .take(limit)
            .read_to_end(&mut out)
            .ctx(|| format!("reading {}", redact(url)))?;
        Ok(out)
    }
}

/// A download answered with `status` instead of its bytes.
fn http_error(url: &str, status: u16) -> Error {
    let host = ::url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_default();
    Error::Registry {
        message: format!("GET {}: HTTP {status}", redact(url)),
        status: RegistryStatus {
            kind: RegistryErrorKind::from_http(status, ""),
            http: status,
            registry: host,
            repository: String::new(),
        },
    }
}

/// A small document (an index page), at most `limit` bytes, through the
/// process's configuration (see [`Http::get_bytes`]).
pub fn get_bytes(url: &str, limit: u64) -> Result<Vec<u8>> {
    process_http().get_bytes(url, limit)
}

/// Like [`get_bytes`] with extra request headers (e.g. `Accept`).
pub fn get_bytes_with(url: &str, limit: u64, headers: &[(&str, &str)]) -> Result<Vec<u8>> {
    process_http().get_bytes_with(url, limit, headers)
}

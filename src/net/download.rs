//! Plain downloads: a reader or the bytes of a URL, a `file://` URL or a
//! local path.

use super::{download_agent, local_path, redact};
use crate::error::{Error, IoContext, Result};
use std::io::Read;

/// A reader of `location` and its length when known.
pub fn open(location: &str) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
    if let Some(p) = local_path(location) {
        let f =
            std::fs::File::open(&p).map_err(|e| Error::input(&p, format!("cannot read: {e}")))?;
        let len = f.metadata().ok().map(|m| m.len());
        return Ok((Box::new(f), len));
    }
    let resp = download_agent()?
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
    let mut req = download_agent()?.get(url);
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

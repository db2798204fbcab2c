//! Downloads into the store: the bytes of a URL (or `file://` URL, or local
//! path) are hashed as they arrive and kept, as a blob named by their
//! sha256, only when they match what the lock (or the user) said.

use super::Store;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::net::redact;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attempts per download (connection drops and 5xx answers are retried).
const ATTEMPTS: u32 = 3;

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
    // A stored copy of another size than the lock says is removed (and
    // downloaded again).
    if size.is_none_or(|n| store.blob_ok(&digest, n)) && store.has_blob(&digest) {
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
            Err(e) if transient(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Worth another attempt: a server failure, a dropped connection, a read
/// or write that failed.
fn transient(e: &Error) -> bool {
    match e {
        Error::Registry { status, .. } => status.http >= 500,
        Error::Other(_) | Error::Io { .. } => true,
        _ => false,
    }
}

fn fetch_once(
    store: &Store,
    location: &str,
    expected: Option<&Digest>,
    size: Option<u64>,
    claim: &str,
) -> Result<Digest> {
    let (mut r, _) = store.http().open(location)?;
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

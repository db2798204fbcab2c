//! Checking the store's blobs against their names, so a flipped byte or a
//! truncated file in the store never reaches an output, a registry or a
//! later build.
//!
//! Two checks, by cost:
//!
//! - **Size, on every reuse** ([`Store::blob_ok`]): a stat, nearly free.
//!   A step-cache hit, a base layer already fetched and a layer below a
//!   step are taken only when the blob has the size its descriptor names;
//!   a blob of another size is removed (with a warning) and so rebuilt or
//!   fetched again, as a missing blob always was.
//! - **Digest, whenever bytes leave the store** ([`Store::copy_blob_verified`],
//!   [`Store::verify_blob`]): outputs hash the blob as they copy it (the
//!   copy reads every byte anyway), a push hashes it before the upload
//!   starts, and `imgbuild cache verify` ([`Store::verify_all`]) re-hashes
//!   every blob. A blob whose bytes do not hash to its name is removed
//!   with a warning and reported as [`Error::CorruptBlob`], which the build
//!   facade answers by building once more (the blob is then missing, so it
//!   is rebuilt or fetched again). The one exception: a layer this process
//!   has just made, hashing the bytes as it wrote them, goes into its
//!   outputs by a plain kernel copy — a cold build pays for the copy, not
//!   for a second hash.
//!
//! Outputs never share storage with the store: a layout gets a reflink
//! (`FICLONE`, on file systems that have them, e.g. XFS and Btrfs) or a
//! copy, never a hard link, so a later corruption of the store cannot
//! change an image written earlier.

use super::Store;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

const BUF: usize = 256 * 1024;

impl Store {
    /// The cheap check made on every reuse: blob `d` is in the store and
    /// has `size` bytes. A blob of another size is removed, with a warning,
    /// and reported as absent, so the caller rebuilds or fetches it.
    pub fn blob_ok(&self, d: &Digest, size: u64) -> bool {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) if m.is_file() && m.len() == size => true,
            Ok(m) if m.is_file() => {
                self.discard_blob(
                    d,
                    Some(m.ino()),
                    &format!("is {} bytes, not {size}", m.len()),
                );
                false
            }
            _ => false,
        }
    }

    /// Removes blob `d`, found bad (`why`), with a warning naming it and
    /// its path, and returns the error that reports it. With `ino`, only
    /// that file is removed (another build may have put a good copy in
    /// its place meanwhile).
    pub fn discard_blob(&self, d: &Digest, ino: Option<u64>, why: &str) -> Error {
        let p = self.blob_path(d);
        let same = ino.is_none_or(|i| fs::metadata(&p).is_ok_and(|m| m.ino() == i));
        let removed = same && fs::remove_file(&p).is_ok();
        crate::progress::warning(&format!(
            "warning: store blob {d} at {} {why}; {}",
            p.display(),
            if removed {
                "removed, it will be rebuilt or fetched again"
            } else {
                "already replaced or removed"
            }
        ));
        Error::CorruptBlob {
            path: p,
            message: format!(
                "blob {d} in the store {why}; it was removed, and building again rebuilds or fetches it"
            ),
        }
    }

    /// The full check: blob `d` has `size` bytes that hash to `d`. A bad
    /// blob is removed (see [`Store::discard_blob`]).
    pub fn verify_blob(&self, d: &Digest, size: u64) -> Result<()> {
        self.copy_blob_verified(d, size, &mut std::io::sink())
            .map(|_| ())
    }

    /// Copies blob `d` of `size` bytes to `w`, hashing the bytes as they
    /// go. When they are not what `d` names, the blob is removed and an
    /// [`Error::CorruptBlob`] returned: the caller must throw away what
    /// `w` was given.
    pub fn copy_blob_verified(&self, d: &Digest, size: u64, w: &mut dyn Write) -> Result<u64> {
        let p = self.blob_path(d);
        let mut f = self.open_blob(d)?;
        let meta = f
            .metadata()
            .ctx(|| format!("reading blob {d} at {}", p.display()))?;
        if meta.len() != size {
            return Err(self.discard_blob(
                d,
                Some(meta.ino()),
                &format!("is {} bytes, not {size}", meta.len()),
            ));
        }
        let (got, n) = hash_copy_pipelined(&mut f, w)
            .map_err(|e| Error::io(format!("copying blob {d} from {}", p.display()), e))?;
        if n != size {
            return Err(self.discard_blob(
                d,
                Some(meta.ino()),
                &format!("gave {n} bytes, not {size}"),
            ));
        }
        if got != *d {
            return Err(self.discard_blob(
                d,
                Some(meta.ino()),
                &format!("hashes to {got}, not its name"),
            ));
        }
        Ok(n)
    }

    /// Opens blob `d` to copy it out. A missing blob (never made, or
    /// removed as bad by a build running beside this one) is an
    /// [`Error::CorruptBlob`] too: building again makes it.
    fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::CorruptBlob {
                path: p,
                message: format!(
                    "blob {d} is not in the store (removed as bad?); building again makes it"
                ),
            }),
            Err(e) => Err(Error::io(format!("reading blob {d} at {}", p.display()), e)),
        }
    }

    /// Writes blob `d` of `size` bytes into `dest` (a new, empty file), a
    /// reflink where the file system has them, else a copy; either way the
    /// bytes are hashed (the reflink's from `dest` itself) and a bad blob
    /// removed from the store with an [`Error::CorruptBlob`]. A blob this
    /// open store made itself ([`Store::commit_made_blob`]) was hashed as
    /// it was written moments ago: it is only copied.
    pub fn export_blob(&self, d: &Digest, size: u64, mut dest: &File) -> Result<()> {
        let p = self.blob_path(d);
        let src = self.open_blob(d)?;
        let meta = src
            .metadata()
            .ctx(|| format!("reading blob {d} at {}", p.display()))?;
        // A blob this process made from bytes it hashed as it wrote them:
        // a reflink or a plain copy (in the kernel, where it can) is as
        // safe and costs no second read through the hash.
        if meta.len() == size && self.made_here(d) {
            if reflink(&src, dest) {
                return Ok(());
            }
            let mut src = src;
            let n = std::io::copy(&mut src, &mut dest)
                .ctx(|| format!("copying blob {d} from {}", p.display()))?;
            if n == size {
                return Ok(());
            }
            return Err(self.discard_blob(
                d,
                Some(meta.ino()),
                &format!("gave {n} bytes, not {size}"),
            ));
        }
        if meta.len() == size && reflink(&src, dest) {
            use std::io::Seek;
            let (got, n) = dest
                .rewind()
                .and_then(|_| hash_copy(&mut dest, &mut std::io::sink()))
                .map_err(|e| Error::io(format!("reading the copy of blob {d}"), e))?;
            if n == size && got == *d {
                return Ok(());
            }
            return Err(self.discard_blob(
                d,
                Some(meta.ino()),
                &format!("hashes to {got}, not its name"),
            ));
        }
        drop(src);
        let mut w = std::io::BufWriter::with_capacity(BUF, dest);
        self.copy_blob_verified(d, size, &mut w)?;
        w.flush().ctx(|| format!("copying blob {d}"))?;
        Ok(())
    }

    /// Re-hashes every blob of the store (in parallel), removes those that
    /// do not hash to their names and the step entries that name them.
    /// Runs beside builds (it takes the shared lock, as they do): blobs
    /// are only ever renamed into place whole, so what it reads is
    /// complete.
    pub fn verify_all(&self) -> Result<VerifyReport> {
        use rayon::prelude::*;
        let dir = self.root().join("blobs/sha256");
        let entries = super::read_dir(&dir)?;
        let checked: Vec<Option<(u64, Option<BadBlob>)>> = entries
            .par_iter()
            .map(|e| {
                let p = e.path();
                let name = e.file_name();
                let d = name.to_str().and_then(Digest::parse_hex)?;
                let mut f = File::open(&p).ok()?;
                let meta = f.metadata().ok()?;
                if !meta.is_file() {
                    return None;
                }
                let bad = match hash_copy(&mut f, &mut std::io::sink()) {
                    Ok((got, _)) if got == d => None,
                    Ok((got, _)) => Some(format!("hashes to {got}, not its name")),
                    Err(e) => Some(format!("cannot be read: {e}")),
                };
                let bad = bad.map(|reason| {
                    self.discard_blob(&d, Some(meta.ino()), &reason);
                    BadBlob {
                        digest: d.oci(),
                        path: p.clone(),
                        size: meta.len(),
                        reason,
                    }
                });
                Some((meta.len(), bad))
            })
            .collect();
        let mut report = VerifyReport::default();
        for (size, bad) in checked.into_iter().flatten() {
            report.blobs_checked += 1;
            report.bytes_checked += size;
            if let Some(b) = bad {
                report.bad.push(b);
            }
        }
        report.bad.sort_by(|a, b| a.digest.cmp(&b.digest));
        report.bad_removed = report.bad.len() as u64;
        if !report.bad.is_empty() {
            for e in super::read_dir(&self.root().join("steps"))? {
                let names_bad = fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<super::LayerDesc>(&b).ok())
                    .is_some_and(|l| report.bad.iter().any(|b| b.digest == l.digest.oci()));
                if names_bad && fs::remove_file(e.path()).is_ok() {
                    report.steps_removed += 1;
                }
            }
        }
        Ok(report)
    }
}

/// What `imgbuild cache verify` found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    /// Bad blobs found (and removed).
    pub bad_removed: u64,
    /// Step-cache entries removed with them (those steps are rebuilt).
    pub steps_removed: u64,
    pub bad: Vec<BadBlob>,
}

/// A blob that did not hash to its name.
#[derive(Debug, Serialize)]
pub struct BadBlob {
    pub digest: String,
    pub path: PathBuf,
    pub size: u64,
    pub reason: String,
}

/// Copies `r` to `w` to its end; returns the sha256 of the bytes and how
/// many there were.
pub fn hash_copy(r: &mut dyn Read, w: &mut dyn Write) -> std::io::Result<(Digest, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
    Ok((Digest::from_hasher(h), n))
}

/// [`hash_copy`] with reading and hashing on a thread of their own, so
/// the copy costs about the larger of the two rather than their sum.
pub fn hash_copy_pipelined(
    r: &mut (dyn Read + Send),
    w: &mut dyn Write,
) -> std::io::Result<(Digest, u64)> {
    use std::sync::mpsc;
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(4);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> std::io::Result<(Digest, u64)> {
            let mut h = Sha256::new();
            let mut n = 0u64;
            loop {
                let mut buf = empty_rx.try_recv().unwrap_or_default();
                buf.resize(BUF, 0);
                let k = loop {
                    match r.read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                if k == 0 {
                    break;
                }
                buf.truncate(k);
                h.update(&buf);
                n += k as u64;
                if full_tx.send(buf).is_err() {
                    break; // the writer failed; its error is the one reported
                }
            }
            Ok((Digest::from_hasher(h), n))
        });
        let mut written = Ok(());
        for buf in full_rx.iter() {
            if let Err(e) = w.write_all(&buf) {
                written = Err(e);
                break;
            }
            let _ = empty_tx.send(buf);
        }
        drop(full_rx);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked")));
        written.and(read)
    })
}

/// Makes `dest` share `src`'s extents (copy on write) where the file
/// system can; false when it cannot (then nothing was written).
fn reflink(src: &File, dest: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the duration of the call;
    // FICLONE reads only the source descriptor passed by value.
    let r = unsafe { libc::ioctl(dest.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    r == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_blobs_are_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = store.put_blob_bytes(b"good bytes").unwrap();
        let flipped = store.put_blob_bytes(b"flipped bytes").unwrap();
        let cut = store.put_blob_bytes(b"truncated bytes").unwrap();
        fs::write(store.blob_path(&flipped), b"flipped bytez").unwrap();
        fs::write(store.blob_path(&cut), b"trunc").unwrap();
        assert!(store.blob_ok(&good, 10));
        store.verify_blob(&good, 10).unwrap();
        let mut out = Vec::new();
        let e = store
            .copy_blob_verified(&flipped, 13, &mut out)
            .unwrap_err();
        assert!(matches!(e, Error::CorruptBlob { .. }), "{e}");
        assert!(!store.has_blob(&flipped));
        assert!(!store.blob_ok(&cut, 15));
        assert!(!store.has_blob(&cut));
        // Missing (removed meanwhile): also a reason to build again.
        let e = store.verify_blob(&cut, 15).unwrap_err();
        assert!(matches!(e, Error::CorruptBlob { .. }), "{e}");
        // verify_all on a store with one bad blob.
        let bad = store.put_blob_bytes(b"more").unwrap();
        fs::write(store.blob_path(&bad), b"mOre").unwrap();
        let r = store.verify_all().unwrap();
        assert_eq!((r.blobs_checked, r.bad_removed), (2, 1));
        assert_eq!(r.bad[0].digest, bad.oci());
        assert!(store.has_blob(&good) && !store.has_blob(&bad));
    }

    #[test]
    fn pipelined_copies_are_whole_and_report_write_failures() {
        let data: Vec<u8> = (0..BUF * 5 + 123).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        let (d, n) = hash_copy_pipelined(&mut &data[..], &mut out).unwrap();
        assert_eq!((d, n as usize), (Digest::of(&data), data.len()));
        assert_eq!(out, data);
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk full"));
                }
                let k = b.len().min(self.0);
                self.0 -= k;
                Ok(k)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = hash_copy_pipelined(&mut &data[..], &mut Full(BUF + 5)).unwrap_err();
        assert_eq!(e.to_string(), "disk full");
    }
}

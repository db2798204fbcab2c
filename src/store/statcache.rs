//! Stat cache: (path, size, mtime, ctime, inode) → content hash, so an
//! unchanged tree is not read again. One file per context folder.
//!
//! Entries whose mtime or ctime is within two seconds of the moment they
//! were hashed are not kept: a later write in the same timestamp tick could
//! otherwise go unnoticed.
//!
//! The file is binary and mapped into memory (read in one read where it
//! cannot be mapped), with no work per entry beyond a bounds check: a
//! header, fixed-size records sorted by path, the names one after another,
//! and a CRC-32 of all of it. Sorted by path, the records are in the order
//! a build looks them up (its entries are sorted the same way), so a
//! caller that keeps a hint finds each at the record after the last one,
//! with one comparison, reading the file front to back; any other lookup
//! is a binary search. (Records sorted by a hash of the path, as the
//! previous format had them, were looked up in random order: on a tree of
//! 200k files the lookups' cache misses were a tenth of a no-op build.)
//! A file that fails any check (another format, cut short, flipped bits)
//! is an empty cache. The file is rewritten only when a build hashed a
//! file the cache did not know; a build that confirmed entries and learned
//! nothing only sets its mtime, so `cache prune` sees it as in use.
//!
//! The file is replaced by renaming a new one over it, never written in
//! place, so a mapping of it never sees its bytes change or its end move.
//!
//! ```text
//! magic "IBSTAT3\n" | count u64 | names_len u64
//! count × { name_off u32 | name_len u32 | size u64 | mtime_ns i64
//!           | ctime_ns i64 | ino u64 | sha256 [32] }        (little-endian)
//! names (names_len bytes) | crc32 u32 of everything before it
//! ```

use crate::digest::Digest;
use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

const MAGIC: &[u8; 8] = b"IBSTAT3\n";
const HEADER: usize = 24;
const RECORD: usize = 72;

/// What a cached hash is valid for: the file's stat when it was hashed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
}

impl From<&Metadata> for Stamp {
    fn from(m: &Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
        }
    }
}

impl From<Metadata> for Stamp {
    fn from(m: Metadata) -> Stamp {
        Stamp::from(&m)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The file's bytes: mapped, or read when mapping failed.
enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Read(v) => v,
        }
    }
}

/// The file at `path` as bytes: mapped, else read; empty when missing.
fn read_file(path: &std::path::Path) -> Bytes {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Bytes::Read(Vec::new());
    };
    // Its pages are filled in at once (one system call instead of a fault
    // per page). An empty file cannot be mapped: it is read.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > 0 {
        // SAFETY: the store replaces this file only by renaming a new one
        // over it, never writing or cutting it in place (see the module
        // docs), so the mapped bytes never change while mapped.
        if let Ok(m) = unsafe { memmap2::MmapOptions::new().populate().map(&f) } {
            return Bytes::Mapped(m);
        }
    }
    let mut v = Vec::new();
    use std::io::Read;
    match f.read_to_end(&mut v) {
        Ok(_) => Bytes::Read(v),
        Err(_) => Bytes::Read(Vec::new()),
    }
}

pub struct StatCache {
    path: PathBuf,
    /// The whole file (empty when there was none, or a bad one).
    data: Bytes,
    count: usize,
    /// Which old entries this run confirmed.
    used: Vec<AtomicBool>,
    new: Mutex<Fresh>,
}

/// Entries hashed by this run: names side by side in one buffer, records
/// of fixed size beside them (a few bytes over the file's own record per
/// entry, not an allocation each).
#[derive(Default)]
struct Fresh {
    names: Vec<u8>,
    recs: Vec<FreshRec>,
}

struct FreshRec {
    /// Where the name is in `names` (which `insert` keeps within u32).
    off: u32,
    len: u32,
    stamp: Stamp,
    digest: Digest,
}

/// A record of the file to write: `i` indexes the fresh records, or the
/// loaded ones when `old`.
#[derive(Clone, Copy)]
struct Row {
    i: u32,
    old: bool,
}

/// One record of the file, decoded.
struct Rec<'a> {
    name: &'a [u8],
    stamp: Stamp,
    digest: Digest,
}

impl StatCache {
    /// Loads the cache file; a missing, unreadable, old-format or corrupt
    /// file is an empty cache.
    pub fn load(path: PathBuf) -> StatCache {
        let data = read_file(&path);
        let (data, count) = match check(&data) {
            Some(count) => (data, count),
            None => (Bytes::Read(Vec::new()), 0),
        };
        let used = (0..count).map(|_| AtomicBool::new(false)).collect();
        StatCache {
            path,
            data,
            count,
            used,
            new: Mutex::new(Fresh::default()),
        }
    }

    fn rec(&self, i: usize) -> Rec<'_> {
        let r = &self.data[HEADER + i * RECORD..HEADER + (i + 1) * RECORD];
        Rec {
            name: self.name(i),
            stamp: Stamp {
                size: u64_at(r, 8),
                mtime_ns: u64_at(r, 16) as i64,
                ctime_ns: u64_at(r, 24) as i64,
                ino: u64_at(r, 32),
            },
            digest: Digest(r[40..72].try_into().expect("32 bytes")),
        }
    }

    fn name(&self, i: usize) -> &[u8] {
        let r = HEADER + i * RECORD;
        let off = HEADER + self.count * RECORD + u32_at(&self.data, r) as usize;
        &self.data[off..off + u32_at(&self.data, r + 4) as usize]
    }

    /// The record named `rel`, or where it would be.
    fn find(&self, rel: &[u8]) -> std::result::Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid).cmp(rel) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The cached hash of `rel` (its path relative to the context) if the
    /// file's stat is what it was when hashed.
    pub fn lookup(&self, rel: impl AsRef<[u8]>, stamp: impl Into<Stamp>) -> Option<Digest> {
        self.lookup_near(&mut 0, rel, stamp)
    }

    /// [`StatCache::lookup`] that tries the record at `hint` first and
    /// leaves `hint` after the record found (or where `rel` would be): a
    /// caller looking up names in sorted order with one hint compares one
    /// name per lookup. A wrong hint costs one comparison, never a wrong
    /// answer.
    pub fn lookup_near(
        &self,
        hint: &mut usize,
        rel: impl AsRef<[u8]>,
        stamp: impl Into<Stamp>,
    ) -> Option<Digest> {
        let rel = rel.as_ref();
        let found = if *hint < self.count && self.name(*hint) == rel {
            Ok(*hint)
        } else {
            self.find(rel)
        };
        let i = match found {
            Ok(i) => i,
            Err(at) => {
                *hint = at;
                return None;
            }
        };
        *hint = i + 1;
        let r = self.rec(i);
        if r.stamp != stamp.into() {
            return None;
        }
        self.used[i].store(true, Ordering::Relaxed);
        Some(r.digest)
    }

    /// Records the hash of `rel` (path relative to the context), read from
    /// a file that had `stamp` (its stat before or after reading, e.g. the
    /// [`Metadata`] of the open file). A file changed within the last two
    /// seconds is not kept.
    pub fn insert(&self, rel: impl AsRef<[u8]>, stamp: impl Into<Stamp>, d: Digest) {
        let stamp = stamp.into();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        if (now - stamp.mtime_ns).abs() < 2_000_000_000
            || (now - stamp.ctime_ns).abs() < 2_000_000_000
        {
            return;
        }
        let rel = rel.as_ref();
        if rel.len() > u32::MAX as usize {
            return;
        }
        let mut new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        if new.names.len() + rel.len() > u32::MAX as usize || new.recs.len() >= u32::MAX as usize {
            return;
        }
        let off = new.names.len();
        new.names.extend_from_slice(rel);
        new.recs.push(FreshRec {
            off: off as u32,
            len: rel.len() as u32,
            stamp,
            digest: d,
        });
    }

    /// Makes room for `files` more entries whose names are `name_bytes`
    /// long together, so a run that hashes many files grows its buffers
    /// once, not by doubling.
    pub fn reserve(&self, files: usize, name_bytes: usize) {
        let mut new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        new.recs.reserve_exact(files);
        new.names.reserve_exact(name_bytes);
    }

    /// Writes the cache (temp + rename) when this run hashed files it did
    /// not know; otherwise leaves the file's bytes alone, and only marks it
    /// used now when this run confirmed entries of it (as build records
    /// are, so `cache prune` by age keeps a cache that no-op builds read).
    /// Entries this run did not confirm are kept (another image or a later
    /// build may read them) unless they outnumber the ones it did.
    pub fn save(&self, store: &super::Store) -> crate::error::Result<()> {
        let new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        if new.recs.is_empty() {
            if self.used.iter().any(|u| u.load(Ordering::Relaxed)) {
                crate::util::fs::touch(&self.path);
            }
            return Ok(());
        }
        let used = self
            .used
            .iter()
            .filter(|u| u.load(Ordering::Relaxed))
            .count();
        let keep_unused = self.count - used <= used + new.recs.len();
        // Rows refer to the records; the file is written from them, one
        // record at a time, so saving costs 8 bytes per entry, not a copy
        // of the file.
        let mut rows: Vec<Row> = Vec::with_capacity(self.count + new.recs.len());
        rows.extend(new.recs.iter().enumerate().map(|(i, _)| Row {
            i: i as u32,
            old: false,
        }));
        rows.extend(
            (0..self.count)
                .filter(|&i| keep_unused || self.used[i].load(Ordering::Relaxed))
                .map(|i| Row {
                    i: i as u32,
                    old: true,
                }),
        );
        let rec = |r: &Row| -> Rec<'_> {
            if r.old {
                return self.rec(r.i as usize);
            }
            let f = &new.recs[r.i as usize];
            Rec {
                name: &new.names[f.off as usize..(f.off + f.len) as usize],
                stamp: f.stamp,
                digest: f.digest,
            }
        };
        // New entries win over old ones of the same name: they sort first
        // (stable sort) and `dedup` keeps the first.
        rows.sort_by(|a, b| rec(a).name.cmp(rec(b).name));
        rows.dedup_by(|a, b| rec(a).name == rec(b).name);
        let names_len: usize = rows.iter().map(|r| rec(r).name.len()).sum();
        if names_len > u32::MAX as usize {
            return Ok(());
        }
        let count = rows.len();
        store.write_atomic_with(&self.path, |w| {
            encode_to(w, rows.iter().map(rec), count, names_len)
        })?;
        // The text file of the earlier format, beside it, is stale now.
        let _ = std::fs::remove_file(self.path.with_extension("txt"));
        Ok(())
    }
}

/// Writes the file for `count` rows, sorted by name, names unique, whose
/// names are `names_len` bytes together.
fn encode_to<'a, W: Write>(
    w: W,
    rows: impl Iterator<Item = Rec<'a>> + Clone,
    count: usize,
    names_len: usize,
) -> std::io::Result<()> {
    let mut w = Crc32Writer::new(std::io::BufWriter::with_capacity(1 << 16, w));
    w.write_all(MAGIC)?;
    w.write_all(&(count as u64).to_le_bytes())?;
    w.write_all(&(names_len as u64).to_le_bytes())?;
    let mut off = 0u64;
    for r in rows.clone() {
        let mut b = [0u8; RECORD];
        b[0..4].copy_from_slice(&(off as u32).to_le_bytes());
        b[4..8].copy_from_slice(&(r.name.len() as u32).to_le_bytes());
        b[8..16].copy_from_slice(&r.stamp.size.to_le_bytes());
        b[16..24].copy_from_slice(&r.stamp.mtime_ns.to_le_bytes());
        b[24..32].copy_from_slice(&r.stamp.ctime_ns.to_le_bytes());
        b[32..40].copy_from_slice(&r.stamp.ino.to_le_bytes());
        b[40..72].copy_from_slice(&r.digest.0);
        w.write_all(&b)?;
        off += r.name.len() as u64;
    }
    for r in rows {
        w.write_all(r.name)?;
    }
    let crc = w.crc.clone().finalize();
    let mut inner = w.inner;
    inner.write_all(&crc.to_le_bytes())?;
    inner.flush()
}

/// The file's bytes for `rows`, in the order given.
#[cfg(test)]
fn encode(rows: &[(&[u8], Stamp, Digest)]) -> Vec<u8> {
    let mut out = Vec::new();
    let names_len = rows.iter().map(|r| r.0.len()).sum();
    let recs = rows.iter().map(|&(name, stamp, digest)| Rec {
        name,
        stamp,
        digest,
    });
    encode_to(&mut out, recs, rows.len(), names_len).expect("writing to memory");
    out
}

/// Passes bytes on and keeps their CRC-32, for the file's trailer.
struct Crc32Writer<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Crc32Writer<W> {
    fn new(inner: W) -> Self {
        Crc32Writer {
            inner,
            crc: crc32fast::Hasher::new(),
        }
    }
}

impl<W: Write> Write for Crc32Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The number of records if `data` is a whole, intact cache file.
fn check(data: &[u8]) -> Option<usize> {
    if data.len() < HEADER + 4 || &data[..8] != MAGIC {
        return None;
    }
    let count = usize::try_from(u64_at(data, 8)).ok()?;
    let names_len = usize::try_from(u64_at(data, 16)).ok()?;
    let body = count
        .checked_mul(RECORD)?
        .checked_add(HEADER)?
        .checked_add(names_len)?;
    if names_len > u32::MAX as usize
        || count >= u32::MAX as usize
        || body.checked_add(4)? != data.len()
    {
        return None;
    }
    if crc32fast::hash(&data[..body]) != u32_at(data, body) {
        return None;
    }
    // Every name is inside the names. (Their order is not checked: a file
    // out of order can only make lookups miss, never give a wrong hash,
    // as a hit compares the whole name.)
    for i in 0..count {
        let r = HEADER + i * RECORD;
        let end = u32_at(data, r) as usize + u32_at(data, r + 4) as usize;
        if end > names_len {
            return None;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests;

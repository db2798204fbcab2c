//! Stat cache: (path, size, mtime, ctime, inode) → content hash, so an
//! unchanged tree is not read again. One file per context folder.
//!
//! Entries whose mtime or ctime is within two seconds of the moment they
//! were hashed are not kept: a later write in the same timestamp tick could
//! otherwise go unnoticed.
//!
//! The file is binary and read in one read, with no work per entry beyond
//! a bounds check: a header, fixed-size records sorted by a 64-bit hash of
//! the path (a lookup is a binary search over them, then one comparison of
//! the name), the names one after another, and a CRC-32 of all of it. A
//! file that fails any check (another format, cut short, flipped bits) is
//! an empty cache. The file is rewritten only when a build hashed a file
//! the cache did not know.
//!
//! ```text
//! magic "IBSTAT2\n" | count u64 | names_len u64
//! count × { hash u64 | name_off u32 | name_len u32 | size u64 | mtime_ns i64
//!           | ctime_ns i64 | ino u64 | sha256 [32] }        (little-endian)
//! names (names_len bytes) | crc32 u32 of everything before it
//! ```

use crate::digest::Digest;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

const MAGIC: &[u8; 8] = b"IBSTAT2\n";
const HEADER: usize = 24;
const RECORD: usize = 80;

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

/// FNV-1a, 64 bits: stable across builds and platforms (the file keeps it).
fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub struct StatCache {
    path: PathBuf,
    /// The whole file as read (empty when there was none, or a bad one).
    data: Vec<u8>,
    count: usize,
    /// The records' hashes, in order: searched without touching the records.
    hashes: Vec<u64>,
    /// Which old entries this run confirmed.
    used: Vec<AtomicBool>,
    new: Mutex<Vec<(Vec<u8>, Stamp, Digest)>>,
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
        let data = std::fs::read(&path).ok().unwrap_or_default();
        let (data, hashes) = match check(&data) {
            Some(hashes) => (data, hashes),
            None => (Vec::new(), Vec::new()),
        };
        let count = hashes.len();
        let used = (0..count).map(|_| AtomicBool::new(false)).collect();
        StatCache {
            path,
            data,
            count,
            hashes,
            used,
            new: Mutex::new(Vec::new()),
        }
    }

    fn rec(&self, i: usize) -> Rec<'_> {
        let r = &self.data[HEADER + i * RECORD..HEADER + (i + 1) * RECORD];
        let names = HEADER + self.count * RECORD;
        let off = names + u32_at(r, 8) as usize;
        let len = u32_at(r, 12) as usize;
        Rec {
            name: &self.data[off..off + len],
            stamp: Stamp {
                size: u64_at(r, 16),
                mtime_ns: u64_at(r, 24) as i64,
                ctime_ns: u64_at(r, 32) as i64,
                ino: u64_at(r, 40),
            },
            digest: Digest(r[48..80].try_into().expect("32 bytes")),
        }
    }

    fn hash_at(&self, i: usize) -> u64 {
        self.hashes[i]
    }

    /// The first record whose hash is `h` or more. Hashes are uniform, so
    /// the search starts where `h` falls in proportion and widens from
    /// there: a probe or two instead of a binary search's eighteen cache
    /// misses at 200k entries.
    fn first_at_or_above(&self, h: u64) -> usize {
        let hs = &self.hashes;
        let n = hs.len();
        let guess = ((h as u128 * n as u128) >> 64) as usize;
        let (mut lo, mut hi) = (guess, guess);
        let mut step = 8;
        // Everything before `lo` is below `h`; `hi` is `n` or at least `h`.
        while lo > 0 && hs[lo - 1] >= h {
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        step = 8;
        while hi < n && hs[hi] < h {
            hi = (hi + step).min(n);
            step *= 2;
        }
        lo + hs[lo..hi].partition_point(|&x| x < h)
    }

    /// The cached hash of `rel` (its path relative to the context) if the
    /// file's stat is what it was when hashed.
    pub fn lookup(&self, rel: impl AsRef<[u8]>, stamp: impl Into<Stamp>) -> Option<Digest> {
        let rel = rel.as_ref();
        let h = name_hash(rel);
        // First record with this hash; names that share it follow.
        let stamp = stamp.into();
        let mut i = self.first_at_or_above(h);
        while i < self.count && self.hash_at(i) == h {
            let r = self.rec(i);
            if r.name == rel {
                if r.stamp != stamp {
                    return None;
                }
                self.used[i].store(true, Ordering::Relaxed);
                return Some(r.digest);
            }
            i += 1;
        }
        None
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
        self.new
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((rel.to_vec(), stamp, d));
    }

    /// Writes the cache (temp + rename) when this run hashed files it did
    /// not know; otherwise leaves the file alone. Entries this run did not
    /// confirm are kept (another image or a later build may read them)
    /// unless they outnumber the ones it did.
    pub fn save(&self, store: &super::Store) -> crate::error::Result<()> {
        let new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        if new.is_empty() {
            return Ok(());
        }
        let used = self
            .used
            .iter()
            .filter(|u| u.load(Ordering::Relaxed))
            .count();
        let keep_unused = self.count - used <= used + new.len();
        let mut rows: Vec<(u64, &[u8], Stamp, Digest)> = Vec::with_capacity(self.count + new.len());
        // New entries first, so they win over old ones of the same name.
        for (name, s, d) in new.iter() {
            rows.push((name_hash(name), name, *s, *d));
        }
        for i in 0..self.count {
            if keep_unused || self.used[i].load(Ordering::Relaxed) {
                let r = self.rec(i);
                rows.push((self.hash_at(i), r.name, r.stamp, r.digest));
            }
        }
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        rows.dedup_by(|a, b| a.1 == b.1);
        let bytes = encode(&rows);
        store.write_atomic(&self.path, &bytes)?;
        // The text file of the earlier format, beside it, is stale now.
        let _ = std::fs::remove_file(self.path.with_extension("txt"));
        Ok(())
    }
}

/// The file's bytes for `rows`, sorted by (hash, name), names unique.
fn encode(rows: &[(u64, &[u8], Stamp, Digest)]) -> Vec<u8> {
    let names_len: usize = rows.iter().map(|r| r.1.len()).sum();
    let mut out = Vec::with_capacity(HEADER + rows.len() * RECORD + names_len + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&(names_len as u64).to_le_bytes());
    let mut off = 0u64;
    for (h, name, s, d) in rows {
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&(off as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.mtime_ns.to_le_bytes());
        out.extend_from_slice(&s.ctime_ns.to_le_bytes());
        out.extend_from_slice(&s.ino.to_le_bytes());
        out.extend_from_slice(&d.0);
        off += name.len() as u64;
    }
    for (_, name, _, _) in rows {
        out.extend_from_slice(name);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The records' hashes if `data` is a whole, intact cache file.
fn check(data: &[u8]) -> Option<Vec<u64>> {
    if data.len() < HEADER + 4 || &data[..8] != MAGIC {
        return None;
    }
    let count = usize::try_from(u64_at(data, 8)).ok()?;
    let names_len = usize::try_from(u64_at(data, 16)).ok()?;
    let body = count
        .checked_mul(RECORD)?
        .checked_add(HEADER)?
        .checked_add(names_len)?;
    if names_len > u32::MAX as usize || body.checked_add(4)? != data.len() {
        return None;
    }
    if crc32fast::hash(&data[..body]) != u32_at(data, body) {
        return None;
    }
    let mut prev = 0u64;
    let mut hashes = Vec::with_capacity(count);
    for i in 0..count {
        let r = HEADER + i * RECORD;
        let h = u64_at(data, r);
        let end = u32_at(data, r + 8) as usize + u32_at(data, r + 12) as usize;
        if h < prev || end > names_len {
            return None;
        }
        prev = h;
        hashes.push(h);
    }
    Some(hashes)
}

#[cfg(test)]
mod tests;

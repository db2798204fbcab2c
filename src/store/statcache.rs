//! Stat cache: (path, size, mtime, ctime, inode) → content hash, so an
//! unchanged tree is not read again. One file per context folder.
//!
//! Entries whose mtime is within two seconds of the moment they were hashed
//! are not kept: a later write in the same timestamp tick could otherwise go
//! unnoticed.

use crate::digest::Digest;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
        }
    }
}

pub struct StatCache {
    path: PathBuf,
    /// Sorted by path (looked up by binary search: no second copy of the paths).
    old: Vec<(String, Stamp, Digest)>,
    /// Which old entries this run confirmed; only those and `new` are saved.
    used: Vec<AtomicBool>,
    new: Mutex<Vec<(String, Stamp, Digest)>>,
}

impl StatCache {
    /// Loads the cache file; a missing or unreadable file is an empty cache.
    pub fn load(path: PathBuf) -> StatCache {
        let mut old = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            old = text.lines().filter_map(parse_line).collect();
            old.sort_by(|a: &(String, Stamp, Digest), b| a.0.cmp(&b.0));
        }
        let used = old.iter().map(|_| AtomicBool::new(false)).collect();
        StatCache {
            path,
            old,
            used,
            new: Mutex::new(Vec::new()),
        }
    }

    /// The cached hash of `rel` if its metadata is unchanged.
    pub fn lookup(&self, rel: &str, meta: &Metadata) -> Option<Digest> {
        let i = self.old.binary_search_by(|e| e.0.as_str().cmp(rel)).ok()?;
        let (_, stamp, d) = &self.old[i];
        if *stamp != Stamp::of(meta) {
            return None;
        }
        self.used[i].store(true, Ordering::Relaxed);
        Some(*d)
    }

    pub fn insert(&self, rel: &str, meta: &Metadata, d: Digest) {
        if rel.contains(['\n', '\r']) {
            return;
        }
        let stamp = Stamp::of(meta);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        if (now - stamp.mtime_ns).abs() < 2_000_000_000
            || (now - stamp.ctime_ns).abs() < 2_000_000_000
        {
            return;
        }
        self.new
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((rel.to_string(), stamp, d));
    }

    /// Writes the cache (temp + rename) if anything changed.
    pub fn save(&self, store: &super::Store) -> crate::error::Result<()> {
        let new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        let all_used = self.used.iter().all(|u| u.load(Ordering::Relaxed));
        if new.is_empty() && all_used {
            return Ok(());
        }
        let mut rows: Vec<&(String, Stamp, Digest)> = self
            .old
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| u.load(Ordering::Relaxed))
            .map(|(e, _)| e)
            .chain(new.iter())
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        let mut out = String::with_capacity(rows.len() * 120);
        for (k, s, d) in rows {
            out.push_str(&format!(
                "{} {} {} {} {} {}\n",
                d.hex(),
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                s.ino,
                k
            ));
        }
        store.write_atomic(&self.path, out.as_bytes())
    }
}

fn parse_line(line: &str) -> Option<(String, Stamp, Digest)> {
    let mut it = line.splitn(6, ' ');
    let d = Digest::parse_hex(it.next()?)?;
    let size = it.next()?.parse().ok()?;
    let mtime_ns = it.next()?.parse().ok()?;
    let ctime_ns = it.next()?.parse().ok()?;
    let ino = it.next()?.parse().ok()?;
    let path = it.next()?.to_string();
    Some((
        path,
        Stamp {
            size,
            mtime_ns,
            ctime_ns,
            ino,
        },
        d,
    ))
}

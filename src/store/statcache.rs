//! Stat cache: (path, size, mtime, ctime, inode) → content hash, so an
//! unchanged tree is not read again. One file per context folder.
//!
//! Entries whose mtime is within two seconds of the moment they were hashed
//! are not kept: a later write in the same timestamp tick could otherwise go
//! unnoticed.

use crate::digest::Digest;
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;

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
    old: HashMap<String, (Stamp, Digest)>,
    /// Entries used or added in this run; the only ones saved.
    now: Mutex<HashMap<String, (Stamp, Digest)>>,
    changed: std::sync::atomic::AtomicBool,
}

impl StatCache {
    /// Loads the cache file; a missing or unreadable file is an empty cache.
    pub fn load(path: PathBuf) -> StatCache {
        let mut old = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some((k, v)) = parse_line(line) {
                    old.insert(k, v);
                }
            }
        }
        StatCache {
            path,
            old,
            now: Mutex::new(HashMap::new()),
            changed: false.into(),
        }
    }

    /// The cached hash of `rel` if its metadata is unchanged.
    pub fn lookup(&self, rel: &str, meta: &Metadata) -> Option<Digest> {
        let (stamp, d) = self.old.get(rel)?;
        if *stamp != Stamp::of(meta) {
            return None;
        }
        self.now
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel.to_string(), (*stamp, *d));
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
        self.changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.now
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel.to_string(), (stamp, d));
    }

    /// Writes the cache (temp + rename) if anything changed.
    pub fn save(&self, store: &super::Store) -> crate::error::Result<()> {
        let now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = self.old.keys().any(|k| !now.contains_key(k));
        if !self.changed.load(std::sync::atomic::Ordering::Relaxed) && !dropped {
            return Ok(());
        }
        let mut keys: Vec<&String> = now.keys().collect();
        keys.sort();
        let mut out = String::with_capacity(keys.len() * 120);
        for k in keys {
            let (s, d) = &now[k];
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

fn parse_line(line: &str) -> Option<(String, (Stamp, Digest))> {
    let mut it = line.splitn(6, ' ');
    let d = Digest::parse_hex(it.next()?)?;
    let size = it.next()?.parse().ok()?;
    let mtime_ns = it.next()?.parse().ok()?;
    let ctime_ns = it.next()?.parse().ok()?;
    let ino = it.next()?.parse().ok()?;
    let path = it.next()?.to_string();
    Some((
        path,
        (
            Stamp {
                size,
                mtime_ns,
                ctime_ns,
                ino,
            },
            d,
        ),
    ))
}

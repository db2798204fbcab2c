//! The local content-addressed store: blobs by digest, the step cache
//! (step key → layer descriptor), the stat cache and build records.
//!
//! Every write is a temp file renamed into place, so readers never see
//! partial files. Builds hold a shared lock on `lock`; `cache prune` takes
//! it exclusively, so it never deletes what a running build is using.
//!
//! Temp files and folders live in a folder of their own per open store
//! (`tmp/s-<random>/`), held by an exclusive lock on `tmp/s-<random>.lock`
//! for as long as the store is open. The kernel drops that lock when the
//! process ends, however it ends, so opening the store removes the temp
//! folders of killed builds (the lock can be taken) and never those of
//! running ones.
//!
//! Blobs are checked against their names when they are reused ([`verify`]:
//! their size on every reuse, their digest whenever their bytes leave the
//! store for an output or a registry, every blob on `cache verify`); a bad
//! blob is removed and so rebuilt or fetched again.

pub mod fetch;
pub mod statcache;
pub mod verify;

pub use verify::{BadBlob, VerifyReport};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::net::{Http, HttpConfig};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A layer as the store and the manifests know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDesc {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    pub uncompressed_size: u64,
}

/// How many bytes a layer read from the store may decompress to unless
/// told otherwise (`--max-layer-size`): far above any layer a real image
/// has, low enough that a decompression bomb from an untrusted registry
/// stops with an error naming the layer instead of filling the disk.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;

/// The local store, and how downloads into it are made ([`Store::http`]).
pub struct Store {
    root: PathBuf,
    _lock: File,
    http: Http,
    /// This open store's temp folder, and the lock that says it is in use.
    tmp: PathBuf,
    _tmp_lock: File,
    /// The most a layer read from the store may decompress to.
    max_layer_size: u64,
    /// Blobs this open store made from bytes it hashed as it wrote them
    /// ([`Store::commit_made_blob`]): copied out without hashing again.
    made: std::sync::Mutex<std::collections::HashSet<Digest>>,
    /// Bytes of killed builds' temp folders removed when the store opened.
    swept: u64,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.tmp);
        let _ = fs::remove_file(self.tmp.with_extension("lock"));
    }
}

/// The default store location, from the process environment:
/// `$IMGBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/imgbuild`, else
/// `$HOME/.cache/imgbuild`, else `imgbuild-cache` in the temp folder
/// (empty variables count as unset). For the command line and programs
/// that want its default; nothing in the library calls it.
pub fn default_root() -> PathBuf {
    if let Some(d) = std::env::var_os("IMGBUILD_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("imgbuild");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".cache").join("imgbuild");
    }
    std::env::temp_dir().join("imgbuild-cache")
}

impl Store {
    /// Opens (creating) the store and holds a shared lock on it. Downloads
    /// use the default [`HttpConfig`] until [`Store::with_http`] says
    /// otherwise.
    pub fn open(root: &Path) -> Result<Store> {
        Self::open_with(root, false)
    }

    /// Opens the store with an exclusive lock (waits for running builds).
    pub fn open_exclusive(root: &Path) -> Result<Store> {
        Self::open_with(root, true)
    }

    fn open_with(root: &Path, exclusive: bool) -> Result<Store> {
        // Absolute: paths into the store are handed to programs that run
        // in other folders (uv builds a project's wheel in its own).
        let root = &std::path::absolute(root)
            .ctx(|| format!("finding the store folder {}", root.display()))?;
        for sub in ["blobs/sha256", "tmp", "steps", "stat", "records", "locks"] {
            fs::create_dir_all(root.join(sub))
                .ctx(|| format!("creating the store at {}", root.display()))?;
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(root.join("lock"))
            .ctx(|| format!("opening {}", root.join("lock").display()))?;
        if exclusive {
            lock.lock()
        } else {
            lock.lock_shared()
        }
        .ctx(|| format!("locking {}", root.join("lock").display()))?;
        let tmp_root = root.join("tmp");
        let swept = sweep_dead_sessions(&tmp_root);
        let (tmp, tmp_lock) = new_session(&tmp_root)?;
        Ok(Store {
            root: root.to_path_buf(),
            _lock: lock,
            http: Http::default(),
            tmp,
            _tmp_lock: tmp_lock,
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
            made: Default::default(),
            swept,
        })
    }

    /// This open store's temp folder (on the store's file system, removed
    /// when the store is dropped or, after a kill, by the next open).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The store with downloads into it (wheels, .debs, ADD URLs, package
    /// indexes) made with `config`: its trust roots, CA files and proxy.
    pub fn with_http(mut self, config: HttpConfig) -> Store {
        self.http = Http::new(config);
        self
    }

    /// The store whose layers may decompress to at most `bytes` (a base
    /// from an untrusted registry cannot fill the disk). The default is
    /// [`DEFAULT_MAX_LAYER_SIZE`].
    pub fn with_max_layer_size(mut self, bytes: u64) -> Store {
        self.max_layer_size = bytes;
        self
    }

    /// The most a layer read from the store may decompress to.
    pub fn max_layer_size(&self) -> u64 {
        self.max_layer_size
    }

    /// How downloads are made.
    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// A temp file in the store's own folder (same file system as the blobs).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .prefix("tmp-")
            .tempfile_in(&self.tmp)
            .ctx(|| format!("creating a temp file in {}", self.tmp.display()))
    }

    /// Renames a finished temp file into place as blob `d`.
    pub fn commit_blob(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> Result<()> {
        let dest = self.blob_path(d);
        let size = tmp.as_file().metadata().map(|m| m.len()).ok();
        if size.is_some_and(|n| self.blob_ok(d, n)) {
            return Ok(()); // same content already there; the temp file is dropped
        }
        tmp.persist(&dest)
            .map_err(|e| Error::io(format!("storing blob {d}"), e.error))?;
        Ok(())
    }

    /// [`Store::commit_blob`] for a blob whose digest was computed from
    /// the very bytes written to `tmp` (a layer this process just made):
    /// copying it into an output in this process needs no second hash.
    pub fn commit_made_blob(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> Result<()> {
        self.commit_blob(tmp, d)?;
        self.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*d);
        Ok(())
    }

    /// Whether this open store made blob `d` itself ([`Store::commit_made_blob`]).
    pub(crate) fn made_here(&self, d: &Digest) -> bool {
        self.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(d)
    }

    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            let mut tmp = self.temp_file()?;
            tmp.write_all(bytes).ctx(|| "writing a blob".into())?;
            self.commit_blob(tmp, &d)?;
        }
        Ok(d)
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        fs::read(self.blob_path(d)).ctx(|| format!("reading blob {d} from the store"))
    }

    /// [`Store::read_blob`], checked against its digest (a bad blob is
    /// removed: see [`Store::discard_blob`]).
    pub fn read_blob_verified(&self, d: &Digest) -> Result<Vec<u8>> {
        let bytes = self.read_blob(d)?;
        let got = Digest::of(&bytes);
        if got != *d {
            return Err(self.discard_blob(d, None, &format!("hashes to {got}, not its name")));
        }
        Ok(bytes)
    }

    /// Writes a small file atomically (temp + rename).
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        self.write_atomic_with(dest, |w| w.write_all(bytes))
    }

    /// [`Store::write_atomic`] for a file written in parts by `write`.
    pub fn write_atomic_with(
        &self,
        dest: &Path,
        write: impl FnOnce(&mut File) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut tmp = self.temp_file()?;
        write(tmp.as_file_mut()).ctx(|| format!("writing {}", dest.display()))?;
        tmp.persist(dest)
            .map_err(|e| Error::io(format!("writing {}", dest.display()), e.error))?;
        Ok(())
    }

    /// Holds an exclusive lock named after `what` (e.g. an output folder)
    /// until the returned file is dropped.
    pub fn lock_named(&self, what: &Path) -> Result<File> {
        let id = Digest::of(what.as_os_str().as_encoded_bytes());
        let p = self
            .root
            .join("locks")
            .join(format!("{}.lock", &id.hex()[..32]));
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ctx(|| format!("opening {}", p.display()))?;
        f.lock().ctx(|| format!("locking {}", p.display()))?;
        Ok(f)
    }

    fn step_path(&self, key: &Digest) -> PathBuf {
        self.root.join("steps").join(format!("{}.json", key.hex()))
    }

    /// The cached result of a step, if it and its blob are present (with
    /// the size the step recorded: a blob of another size is removed, so
    /// the step is built again).
    pub fn step_get(&self, key: &Digest) -> Option<LayerDesc> {
        let bytes = fs::read(self.step_path(key)).ok()?;
        let desc: LayerDesc = serde_json::from_slice(&bytes).ok()?;
        self.blob_ok(&desc.digest, desc.size).then_some(desc)
    }

    pub fn step_put(&self, key: &Digest, desc: &LayerDesc) -> Result<()> {
        let bytes = serde_json::to_vec(desc).expect("layer descriptor serializes");
        self.write_atomic(&self.step_path(key), &bytes)
    }

    pub fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("records").join(format!("{}.json", id.hex()))
    }

    pub fn stat_path(&self, context: &Path) -> PathBuf {
        let id = Digest::of(context.as_os_str().as_encoded_bytes());
        self.root.join("stat").join(format!("{}.stat", id.hex()))
    }

    /// Removes step entries not used for `older_than`, blobs no remaining step
    /// or record references, and stale temp files. Needs the exclusive lock.
    /// `remove_tree` removes a folder tree (RUN steps' roots may belong to
    /// subordinate ids only the sandbox can remove).
    pub fn prune(
        &self,
        older_than: std::time::Duration,
        remove_tree: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<PruneReport> {
        let now = std::time::SystemTime::now();
        // What opening the store already swept counts as freed here.
        let mut report = PruneReport {
            temp_bytes_freed: self.swept,
            ..PruneReport::default()
        };
        let mut keep = std::collections::HashSet::new();
        let old = |p: &Path| -> bool {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= older_than)
                .unwrap_or(true)
        };
        for e in read_dir(&self.root.join("steps"))? {
            let p = e.path();
            let desc: Option<LayerDesc> = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match desc {
                Some(d) if !old(&p) => {
                    keep.insert(d.digest);
                }
                _ => {
                    fs::remove_file(&p).ctx(|| format!("removing {}", p.display()))?;
                    report.steps_removed += 1;
                }
            }
        }
        for e in read_dir(&self.root.join("records"))? {
            let p = e.path();
            if old(&p) {
                let _ = fs::remove_file(&p);
                continue;
            }
            if let Ok(r) = fs::read(&p)
                .map_err(|_| ())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|_| ()))
            {
                collect_digests(&r, &mut keep);
            }
        }
        for e in read_dir(&self.root.join("blobs/sha256"))? {
            let name = e.file_name();
            let d = name.to_str().and_then(Digest::parse_hex);
            // Referenced, or used recently (downloaded wheels are named by
            // no step; their use refreshes their time).
            if d.is_some_and(|d| keep.contains(&d)) || !old(&e.path()) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(e.path()).ctx(|| format!("removing {}", e.path().display()))?;
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        // Temp files and RUN steps' folders a killed build left (older
        // versions put them straight in tmp/; this store's own folder and
        // its lock stay).
        for e in read_dir(&self.root.join("tmp"))? {
            let p = e.path();
            if p == self.tmp || p == self.tmp.with_extension("lock") {
                continue;
            }
            let size = tree_size(&p);
            if remove_tree(&p).is_ok() || !p.exists() {
                report.temp_bytes_freed += size;
            }
        }
        for e in read_dir(&self.root.join("stat"))? {
            if old(&e.path()) {
                let _ = fs::remove_file(e.path());
            }
        }
        // Python resolutions, base scans, build environments, RUN steps'
        // root filesystems and cache mounts, unpacked ADD archives, git
        // checkouts and COPY heredocs, layer indexes, by age (use refreshes most of them).
        for dir in [
            "pylocks",
            "pyenv",
            "buildenv",
            "rootfs",
            "cache-mounts",
            "archives",
            "git",
            "inline",
            "layer-index",
            "debian-records",
        ] {
            for e in read_dir(&self.root.join(dir)).unwrap_or_default() {
                if old(&e.path()) {
                    let _ = remove_tree(&e.path());
                }
            }
        }
        report.bytes_freed += report.temp_bytes_freed;
        Ok(report)
    }
}

fn collect_digests(v: &serde_json::Value, keep: &mut std::collections::HashSet<Digest>) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(d) = Digest::parse_oci(s) {
                keep.insert(d);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_digests(x, keep)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_digests(x, keep)),
        _ => {}
    }
}

/// Removes the temp folders of stores whose process has ended: their lock
/// can be taken. Best effort: what cannot be removed now (files of a RUN
/// step's subordinate ids, for an unprivileged user) is left for `cache
/// prune`.
fn sweep_dead_sessions(tmp_root: &Path) -> u64 {
    let mut freed = 0;
    let Ok(rd) = fs::read_dir(tmp_root) else {
        return freed;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let Ok(f) = File::options().read(true).write(true).open(&p) else {
            continue;
        };
        if f.try_lock().is_ok() {
            let dir = p.with_extension("");
            let size = tree_size(&dir);
            crate::util::fs::make_removable(&dir);
            if fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                let _ = fs::remove_file(&p);
                freed += size;
            }
        }
    }
    freed
}

/// A new temp folder for this open store, and the held lock that marks it
/// in use.
fn new_session(tmp_root: &Path) -> Result<(PathBuf, File)> {
    fs::create_dir_all(tmp_root).ctx(|| format!("creating {}", tmp_root.display()))?;
    loop {
        let name = format!("s-{:016x}", rand_u64());
        let lock_path = tmp_root.join(format!("{name}.lock"));
        let lock = match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&lock_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("creating {}", lock_path.display()), e)),
        };
        lock.lock()
            .ctx(|| format!("locking {}", lock_path.display()))?;
        let dir = tmp_root.join(&name);
        fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
        return Ok((dir, lock));
    }
}

/// A random number for temp folder names.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The bytes of the files under `p` (not following links).
fn tree_size(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| tree_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

fn read_dir(p: &Path) -> Result<Vec<fs::DirEntry>> {
    let rd = fs::read_dir(p).ctx(|| format!("listing {}", p.display()))?;
    Ok(rd.filter_map(|e| e.ok()).collect())
}

#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub steps_removed: u64,
    pub blobs_removed: u64,
    /// All bytes freed, [`PruneReport::temp_bytes_freed`] included.
    pub bytes_freed: u64,
    /// Of those, the temp files and folders builds killed earlier left.
    pub temp_bytes_freed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store named by a relative path hands out absolute paths: programs
    /// given them (uv building a wheel) run in other folders.
    #[test]
    fn a_relative_store_path_is_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count().saturating_sub(1));
        let rel = PathBuf::from(format!(
            "{up}{}",
            dir.path().display().to_string().trim_start_matches('/')
        ));
        assert!(rel.is_relative());
        let store = Store::open(&rel.join("store")).unwrap();
        assert!(store.root().is_absolute(), "{}", store.root().display());
        assert!(store.root().join("blobs/sha256").is_dir());
    }
}

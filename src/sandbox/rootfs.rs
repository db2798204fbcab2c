//! Root filesystems for RUN steps: the layers below a step applied in order
//! into a folder (OCI whiteouts and opaque folders, hardlinks, symlinks,
//! modes, owners, `security.capability`, sparse files), safely against
//! hostile layers, and cached by chain key in the store.
//!
//! Sparse files come in GNU tar's old format (type `S`, expanded by the tar
//! crate) and in its PAX formats 0.0, 0.1 and 1.0 (the map in PAX records
//! or at the start of the data, the real name in `GNU.sparse.name`), read
//! here: the crate would show a PAX sparse file under its stand-in name
//! with the raw map in it.

use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::util::fs::{lchown, lgetxattr, lsetxattr, mkfifo, remove_any, set_mtime};
use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Version of the extraction rules; part of every chain key.
const ROOTFS_FORMAT: u32 = 2;

/// One layer below a step.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    pub media_type: String,
}

/// The key of the filesystem these layers make, in this order. `own`:
/// whether owners were applied (only root can). Each layer counts by its
/// blob and its diff_id: a config that claims another layer's diff_id
/// gets a key of its own (and fails the diff_id check when extracted),
/// never the other layer's cached tree.
pub fn chain_key(layers: &[LayerRef], own: bool) -> Digest {
    let mut k = KeyHasher::new("rootfs", ROOTFS_FORMAT);
    k.u64(own as u64).u64(layers.len() as u64);
    for l in layers {
        k.digest(&l.digest).digest(&l.diff_id);
    }
    k.finish()
}

/// Reads through, hashing what it reads (a layer's uncompressed bytes,
/// for its diff_id).
struct Hashing<R> {
    inner: R,
    hash: sha2::Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// What extracting one layer met that the root filesystem leaves out.
#[derive(Debug, Default)]
pub struct Skipped {
    pub devices: usize,
}

/// The root filesystem of `layers` (all in the store), made once and kept
/// under `<store>/rootfs/<chain key>`. A cached shorter chain is reused:
/// its tree is cloned with hard links and only the remaining layers are
/// applied. Callers must not modify the returned tree.
pub fn materialize(store: &Store, layers: &[LayerRef], own: bool) -> Result<PathBuf> {
    materialize_keeping(store, layers, 0, own)
}

/// [`materialize`], also keeping the root of the first `keep` layers (the
/// base image's) when it has to be made: later chains on the same base
/// then clone it instead of extracting the base again.
pub fn materialize_keeping(
    store: &Store,
    layers: &[LayerRef],
    keep: usize,
    own: bool,
) -> Result<PathBuf> {
    let base = store.root().join("rootfs");
    if keep > 0 && keep < layers.len() {
        let have_prefix =
            (keep..layers.len()).any(|n| base.join(chain_key(&layers[..n], own).hex()).is_dir());
        if !have_prefix && !base.join(chain_key(layers, own).hex()).is_dir() {
            materialize_keeping(store, &layers[..keep], 0, own)?;
        }
    }
    fs::create_dir_all(&base).ctx(|| format!("creating {}", base.display()))?;
    let key = chain_key(layers, own);
    let dest = base.join(key.hex());
    let _lock = store.lock_named(&dest)?;
    if dest.is_dir() {
        crate::util::fs::touch(&dest);
        return Ok(dest);
    }
    let tmp = tempfile::Builder::new()
        .prefix("rootfs-")
        .tempdir_in(store.tmp_dir())
        .ctx(|| "creating a temp folder".into())?;
    let root = tmp.path().join("root");
    // The longest cached prefix.
    let mut start = 0;
    for n in (1..layers.len()).rev() {
        let p = base.join(chain_key(&layers[..n], own).hex());
        if p.is_dir() {
            clone_tree(&p, &root).ctx(|| format!("cloning {}", p.display()))?;
            start = n;
            break;
        }
    }
    if start == 0 {
        fs::create_dir(&root).ctx(|| format!("creating {}", root.display()))?;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
            .ctx(|| format!("chmod {}", root.display()))?;
    }
    for l in &layers[start..] {
        let blob = store.blob_path(&l.digest);
        let f = File::open(&blob).ctx(|| format!("reading layer {}", l.digest))?;
        let r = crate::layer::read::decompress(
            io::BufReader::with_capacity(1 << 20, f),
            &l.media_type,
            store.max_layer_size(),
        )
        .map_err(|e| Error::Other(format!("layer {}: {e}", l.digest)))?;
        let mut hashing = Hashing {
            inner: r,
            hash: sha2::Sha256::default(),
        };
        apply_tar(&root, &mut hashing, own).map_err(|e| match e {
            ApplyError::Layer(m) => Error::input(&blob, format!("layer {}: {m}", l.digest)),
            ApplyError::Write(p, source) => Error::Io {
                context: format!("applying layer {} at {p}", l.digest),
                source,
            },
        })?;
        // The rest of the stream (the tar's end blocks), then the check
        // that the bytes are the ones the image's config names.
        io::copy(&mut hashing, &mut io::sink())
            .map_err(|e| Error::input(&blob, format!("layer {}: {e}", l.digest)))?;
        let diff_id = Digest::from_hasher(hashing.hash);
        if diff_id != l.diff_id {
            return Err(Error::input(
                &blob,
                format!(
                    "layer {}: its content is {}, not the diff_id {} the image's config names",
                    l.digest,
                    diff_id.oci(),
                    l.diff_id.oci()
                ),
            ));
        }
    }
    fs::rename(&root, &dest).ctx(|| format!("storing {}", dest.display()))?;
    Ok(dest)
}

/// Lexically cleans a path from a layer: no leading '/', '.' dropped, '..'
/// applied. A path that climbs above the root is refused.
pub fn clean(p: &Path) -> std::result::Result<Vec<OsString>, String> {
    let mut out: Vec<OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x.to_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(format!("{}: path climbs out of the root", p.display()));
                }
            }
            Component::Prefix(_) => return Err(format!("{}: not a Unix path", p.display())),
        }
    }
    Ok(out)
}

/// Resolves `comps` inside `root` the way a chroot would: every symlink met
/// is followed, absolute targets start again at `root`, and `..` stops at
/// `root`. The result never leaves `root`.
pub fn resolve_in_root(root: &Path, comps: &[OsString]) -> io::Result<PathBuf> {
    let mut cur: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let p = join(root, &cur);
        if let Ok(m) = fs::symlink_metadata(&p)
            && m.file_type().is_symlink()
        {
            links += 1;
            if links > 40 {
                return Err(io::Error::other(format!(
                    "{}: too many levels of symbolic links",
                    p.display()
                )));
            }
            let target = fs::read_link(&p)?;
            cur.pop();
            if target.is_absolute() {
                cur.clear();
            }
            let mut next: VecDeque<OsString> = target
                .components()
                .filter_map(|c| match c {
                    Component::Normal(x) => Some(x.to_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            next.extend(todo.drain(..));
            todo = next;
        }
    }
    Ok(join(root, &cur))
}

fn join(root: &Path, comps: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

/// Why a layer could not be applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The layer itself: a truncated or malformed tar, a path out of the
    /// root, a link to nothing.
    Layer(String),
    /// Writing the root filesystem failed (a full disk, no permission).
    Write(String, io::Error),
}

impl ApplyError {
    /// A failed file operation on `path`: the writer's fault when the
    /// system says so (no space, no permission, read-only), else the
    /// layer's (what it asked for cannot be made).
    fn at(path: &Path, e: io::Error) -> ApplyError {
        use io::ErrorKind as K;
        match e.kind() {
            K::StorageFull
            | K::QuotaExceeded
            | K::PermissionDenied
            | K::ReadOnlyFilesystem
            | K::OutOfMemory => ApplyError::Write(path.display().to_string(), e),
            _ => ApplyError::Layer(format!("{}: {e}", path.display())),
        }
    }
}

impl From<String> for ApplyError {
    fn from(m: String) -> ApplyError {
        ApplyError::Layer(m)
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Layer(m) => write!(f, "{m}"),
            ApplyError::Write(p, e) => write!(f, "{p}: {e}"),
        }
    }
}

struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: i64,
}

/// Applies one layer's tar stream onto `root`.
pub fn apply_tar<R: Read>(
    root: &Path,
    r: R,
    own: bool,
) -> std::result::Result<Skipped, ApplyError> {
    let mut ar = tar::Archive::new(r);
    let mut skipped = Skipped::default();
    // Paths this layer wrote: an opaque marker hides only lower layers.
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dirs: Vec<DirMeta> = Vec::new();
    let entries = ar.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading the layer: {e}"))?;
        let sparse = pax_sparse(&mut entry)?;
        let raw_path = match &sparse {
            Some(s) => PathBuf::from(OsStr::from_bytes(&s.name)),
            None => entry.path().map_err(|e| e.to_string())?.into_owned(),
        };
        let comps = clean(&raw_path)?;
        let Some((name, parent)) = comps.split_last() else {
            continue; // the root itself
        };
        let kind = entry.header().entry_type();
        let parent_real =
            resolve_in_root(root, parent).map_err(|e| ApplyError::at(&raw_path, e))?;
        let name_b = name.as_bytes();
        if name_b == b".wh..wh..opq" {
            if let Ok(rd) = fs::read_dir(&parent_real) {
                for e in rd.flatten() {
                    let p = e.path();
                    if !created.contains(&p) {
                        remove_any(&p).map_err(|e| ApplyError::at(&p, e))?;
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = name_b.strip_prefix(b".wh.") {
            let p = parent_real.join(OsStr::from_bytes(hidden));
            remove_any(&p).map_err(|e| ApplyError::at(&p, e))?;
            continue;
        }
        if !parent_real.is_dir() {
            mkdir_p(root, &parent_real).map_err(|e| ApplyError::at(&raw_path, e))?;
        }
        let target = parent_real.join(name);
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let existing = fs::symlink_metadata(&target).ok();
        let err = |e: io::Error| ApplyError::at(&raw_path, e);
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match &existing {
                    Some(m) if m.is_dir() => {}
                    Some(_) => {
                        remove_any(&target).map_err(err)?;
                        fs::create_dir(&target).map_err(err)?;
                    }
                    None => fs::create_dir(&target).map_err(err)?,
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).map_err(err)?;
                if own {
                    lchown(&target, uid, gid).map_err(err)?;
                }
                dirs.push(DirMeta {
                    path: target.clone(),
                    mode,
                    mtime,
                });
            }
            T::Regular | T::Continuous | T::GNUSparse | T::Link | T::Symlink | T::Fifo => {
                if existing.is_some() {
                    remove_any(&target).map_err(err)?;
                }
                match kind {
                    T::Link => {
                        let link = entry
                            .link_name()
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| {
                                format!("{}: hardlink without a target", raw_path.display())
                            })?
                            .into_owned();
                        let lc = clean(&link)?;
                        let Some((lname, lparent)) = lc.split_last() else {
                            return Err(
                                format!("{}: hardlink to the root", raw_path.display()).into()
                            );
                        };
                        let src = resolve_in_root(root, lparent).map_err(err)?.join(lname);
                        let m = fs::symlink_metadata(&src).map_err(|e| {
                            format!(
                                "{}: hardlink target {} is missing: {e}",
                                raw_path.display(),
                                link.display()
                            )
                        })?;
                        if m.is_dir() {
                            return Err(format!(
                                "{}: hardlink to a folder {}",
                                raw_path.display(),
                                link.display()
                            )
                            .into());
                        }
                        fs::hard_link(&src, &target).map_err(err)?;
                        created.insert(target);
                        continue;
                    }
                    T::Symlink => {
                        let link = entry
                            .link_name()
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| {
                                format!("{}: symlink without a target", raw_path.display())
                            })?
                            .into_owned();
                        std::os::unix::fs::symlink(&link, &target).map_err(err)?;
                        if own {
                            lchown(&target, uid, gid).map_err(err)?;
                        }
                        set_mtime(&target, mtime).map_err(err)?;
                        created.insert(target);
                        continue;
                    }
                    T::Fifo => {
                        mkfifo(&target).map_err(err)?;
                    }
                    _ => {
                        let mut f = File::options()
                            .write(true)
                            .create_new(true)
                            .open(&target)
                            .map_err(err)?;
                        match &sparse {
                            Some(s) => write_sparse(&mut entry, s, &mut f)
                                .map_err(|e| format!("{}: sparse file: {e}", raw_path.display()))?,
                            None => {
                                io::copy(&mut entry, &mut f).map_err(err)?;
                            }
                        }
                    }
                }
                if own {
                    lchown(&target, uid, gid).map_err(err)?;
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(err)?;
                if let Ok(Some(exts)) = entry.pax_extensions() {
                    for ext in exts.flatten() {
                        if ext.key_bytes() == b"SCHILY.xattr.security.capability" {
                            // Only root may set it; unprivileged builds go without.
                            let _ = lsetxattr(&target, "security.capability", ext.value_bytes());
                        }
                    }
                }
                set_mtime(&target, mtime).map_err(err)?;
            }
            T::Char | T::Block => {
                skipped.devices += 1;
                continue;
            }
            // Global headers, GNU sparse files and the like.
            _ => continue,
        }
        created.insert(target);
    }
    // Folder modes and times last: their contents are written by then.
    for d in dirs.iter().rev() {
        let mode = if own { d.mode } else { d.mode | 0o700 };
        if fs::symlink_metadata(&d.path).is_ok_and(|m| m.is_dir()) {
            fs::set_permissions(&d.path, fs::Permissions::from_mode(mode))
                .map_err(|e| ApplyError::at(&d.path, e))?;
            set_mtime(&d.path, d.mtime).map_err(|e| ApplyError::at(&d.path, e))?;
        }
    }
    Ok(skipped)
}

/// A file stored sparse in one of GNU tar's PAX formats.
struct PaxSparse {
    /// Its real name (the entry's own is a stand-in but in format 0.0).
    name: Vec<u8>,
    /// Its real size.
    size: u64,
    /// (offset, length) of each stored piece, in order; `None` for format
    /// 1.0, where the map starts the entry's data.
    map: Option<Vec<(u64, u64)>>,
}

/// The PAX sparse records of an entry, if any.
fn pax_sparse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> std::result::Result<Option<PaxSparse>, String> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Ok(None);
    };
    let (mut name, mut size, mut major, mut map_text) = (None, None, None, None);
    let (mut offsets, mut lengths) = (Vec::new(), Vec::new());
    let num = |v: &[u8], key: &str| -> std::result::Result<u64, String> {
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| format!("sparse file: {key} is not a number"))
    };
    for ext in exts {
        let ext = ext.map_err(|e| format!("reading the layer: {e}"))?;
        let v = ext.value_bytes();
        match ext.key_bytes() {
            b"GNU.sparse.name" => name = Some(v.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => size = Some(num(v, "its size")?),
            b"GNU.sparse.major" => major = Some(num(v, "GNU.sparse.major")?),
            b"GNU.sparse.map" => map_text = Some(v.to_vec()),
            b"GNU.sparse.offset" => offsets.push(num(v, "GNU.sparse.offset")?),
            b"GNU.sparse.numbytes" => lengths.push(num(v, "GNU.sparse.numbytes")?),
            _ => {}
        }
    }
    if size.is_none() && major.is_none() && map_text.is_none() && offsets.is_empty() {
        return Ok(None);
    }
    // Format 0.0 keeps the real name in the header.
    let name = match name {
        Some(n) => n,
        None => entry.path_bytes().into_owned(),
    };
    let size = size.ok_or("sparse file without its real size")?;
    let map = if major == Some(1) {
        None
    } else if let Some(text) = map_text {
        let nums: Vec<u64> = text
            .split(|b| *b == b',')
            .map(|n| num(n, "GNU.sparse.map"))
            .collect::<std::result::Result<_, _>>()?;
        if !nums.len().is_multiple_of(2) {
            return Err("sparse file: GNU.sparse.map has an odd count".into());
        }
        Some(nums.chunks(2).map(|c| (c[0], c[1])).collect())
    } else if offsets.len() == lengths.len() {
        Some(offsets.into_iter().zip(lengths).collect())
    } else {
        return Err("sparse file: GNU.sparse.offset and numbytes do not pair".into());
    };
    Ok(Some(PaxSparse { name, size, map }))
}

/// Writes a PAX sparse entry's pieces at their offsets in `f` (holes stay
/// holes), the file `s.size` long.
fn write_sparse<R: Read>(r: &mut R, s: &PaxSparse, f: &mut File) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let map = match &s.map {
        Some(m) => m.clone(),
        None => {
            // Format 1.0: decimal lines (count, then offset and length of
            // each piece), padded to a 512-byte block.
            let mut read = 0u64;
            let mut line = || -> io::Result<u64> {
                let mut digits = Vec::new();
                let mut b = [0u8; 1];
                loop {
                    r.read_exact(&mut b)?;
                    read += 1;
                    if b[0] == b'\n' {
                        break;
                    }
                    if !b[0].is_ascii_digit() || digits.len() > 20 {
                        return Err(bad("a malformed sparse map"));
                    }
                    digits.push(b[0]);
                }
                std::str::from_utf8(&digits)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| bad("a malformed sparse map"))
            };
            let n = line()?;
            if n > 1 << 20 {
                return Err(bad("a sparse map of too many pieces"));
            }
            let mut m = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let off = line()?;
                let len = line()?;
                m.push((off, len));
            }
            let pad = (512 - read % 512) % 512;
            io::copy(&mut r.take(pad), &mut io::sink())?;
            m
        }
    };
    for (off, len) in map {
        if off.checked_add(len).is_none_or(|end| end > s.size) {
            return Err(bad("a sparse piece beyond the file's size"));
        }
        f.seek(SeekFrom::Start(off))?;
        let copied = io::copy(&mut r.take(len), f)?;
        if copied != len {
            return Err(bad("the layer ends inside a sparse piece"));
        }
    }
    f.set_len(s.size)
}

/// Creates the missing folders of `p` (already resolved inside `root`).
fn mkdir_p(root: &Path, p: &Path) -> io::Result<()> {
    let rel = p.strip_prefix(root).map_err(io::Error::other)?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a folder",
                    cur.display()
                )));
            }
            Err(_) => {
                fs::create_dir(&cur)?;
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o755))?;
            }
        }
    }
    Ok(())
}

/// Copies a tree: folders made anew with the same mode, owner and time,
/// everything else hard-linked (extraction replaces files, never edits them).
fn clone_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let m = fs::symlink_metadata(src)?;
    fs::create_dir(dst)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        if e.file_type()?.is_dir() {
            clone_tree(&s, &d)?;
        } else {
            fs::hard_link(&s, &d)?;
        }
    }
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        lchown(dst, m.uid() as u64, m.gid() as u64)?;
    }
    fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    set_mtime(dst, m.mtime())
}

/// Copies a tree with new inodes everywhere (for running in place, when
/// overlayfs is not available).
pub fn copy_tree(src: &Path, dst: &Path, own: bool) -> io::Result<()> {
    let m = fs::symlink_metadata(src)?;
    let ft = m.file_type();
    if ft.is_dir() {
        fs::create_dir(dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(0o700))?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()), own)?;
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst)?;
        if let Some(cap) = lgetxattr(src, "security.capability") {
            let _ = lsetxattr(dst, "security.capability", &cap);
        }
    } else {
        mkfifo(dst)?;
    }
    if own {
        lchown(dst, m.uid() as u64, m.gid() as u64)?;
    }
    if !ft.is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    set_mtime(dst, m.mtime())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sparse files as GNU tar writes them, in its old format and its
    /// three PAX formats, come out whole under their real names.
    #[test]
    fn sparse_files_in_every_gnu_format() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        let mut want = vec![0u8; (3 << 20) + 3];
        want[1 << 20..(1 << 20) + 6].copy_from_slice(b"middle");
        want[3 << 20..].copy_from_slice(b"end");
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = File::create(src.join("d/sparse")).unwrap();
            f.seek(SeekFrom::Start(1 << 20)).unwrap();
            f.write_all(b"middle").unwrap();
            f.seek(SeekFrom::Start(3 << 20)).unwrap();
            f.write_all(b"end").unwrap();
        }
        fs::write(src.join("d/plain"), b"plain").unwrap();
        for (name, args) in [
            ("gnu", &["--format=gnu"][..]),
            ("pax-1.0", &["--format=pax", "--sparse-version=1.0"][..]),
            ("pax-0.1", &["--format=pax", "--sparse-version=0.1"][..]),
            ("pax-0.0", &["--format=pax", "--sparse-version=0.0"][..]),
        ] {
            let archive = t.path().join(format!("{name}.tar"));
            let ok = std::process::Command::new("tar")
                .arg("--sparse")
                .args(args)
                .arg("-cf")
                .arg(&archive)
                .args(["-C", src.to_str().unwrap(), "d"])
                .status()
                .unwrap()
                .success();
            assert!(ok, "{name}: GNU tar made the archive");
            let bytes = fs::read(&archive).unwrap();
            assert!(
                name == "gnu" || bytes.windows(10).any(|w| w == b"GNU.sparse"),
                "{name}: the archive holds a PAX sparse file"
            );
            let root = t.path().join(format!("root-{name}"));
            fs::create_dir(&root).unwrap();
            apply_tar(&root, &bytes[..], false).unwrap();
            let got = fs::read(root.join("d/sparse")).unwrap();
            assert_eq!(got.len(), want.len(), "{name}: the real size");
            assert!(
                got == want,
                "{name}: the pieces at their offsets, zeros between"
            );
            assert_eq!(fs::read(root.join("d/plain")).unwrap(), b"plain", "{name}");
            let names: Vec<String> = fs::read_dir(root.join("d"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names.len(), 2, "{name}: no stand-in names: {names:?}");
        }
    }

    /// A PAX sparse map that points beyond the file, or data that ends
    /// inside a piece, is an error, not a short or huge file.
    #[test]
    fn broken_sparse_maps_are_refused() {
        let s = PaxSparse {
            name: b"f".to_vec(),
            size: 10,
            map: Some(vec![(8, 5)]),
        };
        let t = tempfile::tempdir().unwrap();
        let mut f = File::create(t.path().join("f")).unwrap();
        let e = write_sparse(&mut &b"hello"[..], &s, &mut f).unwrap_err();
        assert!(e.to_string().contains("beyond the file"), "{e}");
        let s = PaxSparse {
            map: Some(vec![(0, 8)]),
            ..s
        };
        let e = write_sparse(&mut &b"hello"[..], &s, &mut f).unwrap_err();
        assert!(e.to_string().contains("ends inside"), "{e}");
        let s = PaxSparse { map: None, ..s };
        let e = write_sparse(&mut &b"2\nx\n"[..], &s, &mut f).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_size(data.len() as u64);
            h.set_mtime(1000);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            // Raw names: the builder's own checks would refuse '..'.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// The sandbox reads layers with the same chooser as everything else:
    /// an unknown media type is an error naming it, before anything is
    /// extracted.
    #[test]
    fn unknown_layer_media_types_are_named() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("store")).unwrap();
        let tar = tar_of(&[("f", tar::EntryType::Regular, "", b"x")]);
        let digest = store.put_blob_bytes(&tar).unwrap();
        let layer = |media_type: &str| LayerRef {
            digest,
            diff_id: digest,
            media_type: media_type.into(),
        };
        let e = materialize(&store, &[layer("application/x-tar")], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&digest.to_string())
                && e.contains("unknown layer media type \"application/x-tar\""),
            "{e}"
        );
        let root = materialize(
            &store,
            &[layer("application/vnd.oci.image.layer.v1.tar")],
            false,
        )
        .unwrap();
        assert_eq!(fs::read(root.join("f")).unwrap(), b"x");
    }

    #[test]
    fn whiteouts_and_opaque_folders() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        fs::create_dir(&root).unwrap();
        use tar::EntryType as T;
        let l1 = tar_of(&[
            ("a/", T::Directory, "", b""),
            ("a/x", T::Regular, "", b"x"),
            ("a/y", T::Regular, "", b"y"),
            ("b/", T::Directory, "", b""),
            ("b/old", T::Regular, "", b"o"),
            ("keep", T::Regular, "", b"k"),
            ("hl", T::Link, "keep", b""),
        ]);
        apply_tar(&root, &l1[..], false).unwrap();
        let l2 = tar_of(&[
            ("a/.wh.x", T::Regular, "", b""),
            ("b/", T::Directory, "", b""),
            ("b/new", T::Regular, "", b"n"),
            ("b/.wh..wh..opq", T::Regular, "", b""),
        ]);
        apply_tar(&root, &l2[..], false).unwrap();
        assert!(!root.join("a/x").exists());
        assert!(root.join("a/y").exists());
        assert!(!root.join("b/old").exists(), "opaque hides lower files");
        assert_eq!(
            fs::read(root.join("b/new")).unwrap(),
            b"n",
            "but keeps its own"
        );
        let (m1, m2) = (
            fs::metadata(root.join("keep")).unwrap(),
            fs::metadata(root.join("hl")).unwrap(),
        );
        assert_eq!(m1.ino(), m2.ino());
    }

    #[test]
    fn hostile_layers_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        fs::create_dir(&root).unwrap();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        use tar::EntryType as T;
        // A plain climb is refused.
        let bad = tar_of(&[("../outside/evil", T::Regular, "", b"x")]);
        let e = apply_tar(&root, &bad[..], false).unwrap_err();
        assert!(
            matches!(&e, ApplyError::Layer(m) if m.contains("climbs out")),
            "the layer's fault: {e}"
        );
        // Symlinks (absolute and relative) are followed inside the root only.
        let abs = outside.to_str().unwrap().to_string();
        let l = tar_of(&[
            ("esc", T::Symlink, &abs, b""),
            ("esc/evil", T::Regular, "", b"x"),
            ("up", T::Symlink, "../../../../..", b""),
            ("up/evil2", T::Regular, "", b"x"),
            ("hl", T::Link, "../../../../etc/hostname", b""),
        ]);
        let r = apply_tar(&root, &l[..], false);
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        assert!(
            root.join(abs.trim_start_matches('/'))
                .join("evil")
                .is_file()
        );
        assert!(root.join("evil2").is_file());
        // The hardlink's target resolves inside the root, where it is missing.
        let e = r.unwrap_err().to_string();
        assert!(e.contains("climbs out") || e.contains("missing"), "{e}");
    }

    #[test]
    fn resolution_clamps_at_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/lib/../../..", root.join("loop")).unwrap();
        let r = |s: &str| {
            resolve_in_root(root, &clean(Path::new(s)).unwrap())
                .unwrap()
                .strip_prefix(root)
                .unwrap()
                .to_path_buf()
        };
        assert_eq!(r("lib/x"), Path::new("usr/lib/x"));
        assert_eq!(r("loop/x"), Path::new("x"));
    }
}

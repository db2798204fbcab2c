//! What a step changed, as an OCI layer: from an overlay upper folder
//! (whiteout devices become `.wh.` entries) or by comparing a copy of the
//! root with the original. Entries sorted by path, mtimes clamped to
//! SOURCE_DATE_EPOCH, owners mapped back to the image's.
//!
//! The layer is a function of the root before and after the step, not of
//! how the step got there: both ways give the same bytes. A folder the step
//! deleted and made again (overlayfs marks it opaque) is compared with the
//! lower root like any other: what it no longer holds gets a whiteout, what
//! changed is kept, what is the same is left out. No opaque marker is
//! written, so no unchanged file can be hidden by one, and a machine without
//! overlayfs makes the layer a machine with it makes.
//!
//! Names are bytes ([`TarPath`]) from the walk to the tar: a file the step
//! made with a name that is not UTF-8 is in the layer with that name.

use crate::error::{Error, IoContext, Result};
use crate::layer::compress::Compression;
use crate::layer::files::{commit_layer, start_layer};
use crate::layer::path::TarPath;
use crate::layer::tar::{Entry, EntryKind};
use crate::store::{LayerDesc, Store};
use crate::util::fs::lgetxattr;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Dir,
    /// A regular file; `inode` (device, inode) when it has other links, so
    /// that [`link_hardlinks`] can make the first of them in path order the
    /// file and the others links to it.
    File {
        src: PathBuf,
        size: u64,
        inode: Option<(u64, u64)>,
        /// A compiled Python module whose header names its source's mtime:
        /// the clamped mtime to write there instead (see [`pyc_headers`]).
        pyc_mtime: Option<u32>,
    },
    Symlink(TarPath),
    Hardlink(TarPath),
    Whiteout,
}

#[derive(Clone, Debug)]
struct DEntry {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    cap: Option<Vec<u8>>,
}

pub struct DiffOptions<'a> {
    /// The root the step ran on.
    pub lower: &'a Path,
    /// Mount points the sandbox made (absolute in the image): left out when
    /// they are new, empty and unchanged.
    pub mount_points: &'a [String],
    /// Owners were real (root) rather than the caller mapped to root.
    pub own: bool,
    pub source_date_epoch: u64,
    pub compression: Compression,
    pub threads: usize,
}

impl DiffOptions<'_> {
    fn ids(&self, m: &Metadata) -> (u64, u64) {
        if self.own {
            (m.uid() as u64, m.gid() as u64)
        } else {
            // Only the caller is mapped (to root) in the step's namespace.
            // SAFETY: geteuid and getegid take nothing and cannot fail.
            let (u, g) = unsafe { (libc::geteuid(), libc::getegid()) };
            (
                if m.uid() == u { 0 } else { m.uid() as u64 },
                if m.gid() == g { 0 } else { m.gid() as u64 },
            )
        }
    }

    fn entry(&self, p: &Path, m: &Metadata, kind: Kind) -> DEntry {
        let (uid, gid) = self.ids(m);
        let mtime = (m.mtime().max(0) as u64).min(self.source_date_epoch);
        let cap = if matches!(kind, Kind::File { .. }) {
            lgetxattr(p, "security.capability")
        } else {
            None
        };
        DEntry {
            kind,
            mode: m.mode() & 0o7777,
            uid,
            gid,
            mtime,
            cap,
        }
    }
}

/// The name of the whiteout for `name` (a file name, no '/').
fn whiteout_name(name: &TarPath) -> TarPath {
    let mut b = b".wh.".to_vec();
    b.extend_from_slice(name.as_bytes());
    TarPath::from_bytes(b)
}

/// The names in `dir`, as bytes, sorted.
fn sorted_children(dir: &Path) -> Result<Vec<TarPath>> {
    let mut v: Vec<TarPath> = fs::read_dir(dir)
        .ctx(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| TarPath::from_os(&e.file_name()))
        .collect();
    v.sort();
    Ok(v)
}

/// The layer of an overlay upper folder.
pub fn from_upper(store: &Store, upper: &Path, o: &DiffOptions) -> Result<LayerDesc> {
    let mut out: BTreeMap<TarPath, DEntry> = BTreeMap::new();
    walk_upper(upper, &TarPath::default(), false, o, &mut out)?;
    finish(store, out, upper, o)
}

/// Whether an upper entry is an overlay whiteout (a 0/0 character device).
fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Walks the upper folder `dir` (`rel` in the image). `replaced`: the folder
/// or one above it is opaque (deleted and made again by the step), so the
/// lower root's entries are hidden and the upper folder holds all there is.
fn walk_upper(
    dir: &Path,
    rel: &TarPath,
    replaced: bool,
    o: &DiffOptions,
    out: &mut BTreeMap<TarPath, DEntry>,
) -> Result<()> {
    let names = sorted_children(dir)?;
    if replaced {
        // What the lower folder held and the new one does not: deleted.
        let mut present = HashSet::new();
        for name in &names {
            let m = fs::symlink_metadata(dir.join(name))
                .ctx(|| format!("reading {}", dir.join(name).display()))?;
            if !is_whiteout(&m) {
                present.insert(name);
            }
        }
        whiteouts_for_missing(rel, &present, o, out)?;
    }
    for name in &names {
        let p = dir.join(name);
        let r = rel.join(name);
        let m = fs::symlink_metadata(&p).ctx(|| format!("reading {}", p.display()))?;
        let ft = m.file_type();
        if is_whiteout(&m) {
            // Below an opaque folder, deletions come from the lower root.
            if !replaced {
                let e = o.entry(&p, &m, Kind::Whiteout);
                out.insert(rel.join(&whiteout_name(name)), e);
            }
        } else if ft.is_dir() {
            out.insert(r.clone(), o.entry(&p, &m, Kind::Dir));
            let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
                .iter()
                .any(|x| lgetxattr(&p, x).is_some_and(|v| v == b"y"));
            walk_upper(&p, &r, replaced || opaque, o, out)?;
        } else if same_as_lower(&p, &m, &r, o) {
            // Copied up without a change (opened for writing, locked, or
            // rewritten with the same bytes), or made again as it was.
            continue;
        } else if ft.is_symlink() {
            let t = fs::read_link(&p).ctx(|| format!("reading {}", p.display()))?;
            let kind = Kind::Symlink(TarPath::from_os(t.as_os_str()));
            out.insert(r, o.entry(&p, &m, kind));
        } else if ft.is_file() {
            out.insert(r, o.entry(&p, &m, file_kind(&p, &m)));
        }
        // Sockets, fifos and devices made by a step are not kept.
    }
    Ok(())
}

/// A whiteout for each entry of the lower root's folder `rel` whose name is
/// not in `present` (a deleted folder is one whiteout, not descended into).
fn whiteouts_for_missing(
    rel: &TarPath,
    present: &HashSet<&TarPath>,
    o: &DiffOptions,
    out: &mut BTreeMap<TarPath, DEntry>,
) -> Result<()> {
    let lower_dir = o.lower.join(rel);
    let Ok(lower_names) = sorted_children(&lower_dir) else {
        return Ok(());
    };
    for n in lower_names.iter().filter(|n| !present.contains(n)) {
        let lp = lower_dir.join(n);
        let m = fs::symlink_metadata(&lp).ctx(|| format!("reading {}", lp.display()))?;
        out.insert(
            rel.join(&whiteout_name(n)),
            o.entry(&lp, &m, Kind::Whiteout),
        );
    }
    Ok(())
}

/// Whether `p` (a file or symlink of the upper folder) equals the lower
/// root's entry at `rel`: kind, mode, owner, clamped mtime and bytes.
fn same_as_lower(p: &Path, m: &Metadata, rel: &TarPath, o: &DiffOptions) -> bool {
    let lp = o.lower.join(rel);
    let Ok(lm) = fs::symlink_metadata(&lp) else {
        return false;
    };
    if lm.file_type() != m.file_type()
        || lm.mode() != m.mode()
        || o.ids(&lm) != o.ids(m)
        || lm.len() != m.len()
        || (lm.mtime().max(0) as u64).min(o.source_date_epoch)
            != (m.mtime().max(0) as u64).min(o.source_date_epoch)
        || lgetxattr(&lp, "security.capability") != lgetxattr(p, "security.capability")
    {
        return false;
    }
    if m.file_type().is_symlink() {
        return fs::read_link(p).ok() == fs::read_link(&lp).ok();
    }
    m.file_type().is_file() && same_bytes(p, &lp).unwrap_or(false)
}

fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// A regular file's entry (its links are sorted out by [`link_hardlinks`]).
fn file_kind(p: &Path, m: &Metadata) -> Kind {
    Kind::File {
        src: p.to_path_buf(),
        size: m.len(),
        inode: (m.nlink() > 1).then(|| (m.dev(), m.ino())),
        pyc_mtime: None,
    }
}

/// Compiled Python modules keep working after their sources' mtimes are
/// clamped. A timestamp-based `.pyc` (PEP 552 flags 0) records its source's
/// mtime as the step saw it; when the image's source has another mtime
/// (clamped in this layer, or the lower root's when the step rewrote the
/// source with the same bytes and it was left out), the header is given
/// the image's time, so Python still takes the `.pyc` as
/// current (instead of compiling again at every start, where it cannot
/// write) and the layer does not carry the build's wall-clock time.
fn pyc_headers(out: &mut BTreeMap<TarPath, DEntry>, changed: &Path, o: &DiffOptions) {
    let sources: Vec<(TarPath, TarPath)> = out
        .iter()
        .filter(|(_, e)| matches!(e.kind, Kind::File { .. }))
        .filter_map(|(p, _)| pyc_source(p.as_bytes()).map(|s| (p.clone(), TarPath::from_bytes(s))))
        .collect();
    for (pyc, source) in sources {
        // The source's mtime in the image: this layer's entry, else (left
        // out as unchanged, e.g. rewritten with the same bytes) the lower
        // root's.
        let clamped = match out.get(&source) {
            Some(e) if matches!(e.kind, Kind::File { .. }) => e.mtime,
            Some(_) => continue,
            None => match fs::symlink_metadata(o.lower.join(&source)) {
                Ok(m) if m.is_file() => m.mtime().max(0) as u64,
                _ => continue,
            },
        };
        // The source's time when the step compiled it: where the step left it.
        let Some(real) = [changed, o.lower]
            .iter()
            .find_map(|root| fs::symlink_metadata(root.join(&source)).ok())
            .map(|m| m.mtime().max(0) as u64)
        else {
            continue;
        };
        if real == clamped {
            continue;
        }
        let Some(e) = out.get_mut(&pyc) else { continue };
        let Kind::File { src, pyc_mtime, .. } = &mut e.kind else {
            continue;
        };
        let mut header = [0u8; 16];
        let ok = File::open(&*src).and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut header)
        });
        let flags = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let recorded = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        // Only a header that matches its source as compiled (a stale or
        // hash-based one is left as it is).
        if ok.is_ok() && flags == 0 && recorded == real as u32 {
            *pyc_mtime = Some(clamped as u32);
        }
    }
}

/// The source of a compiled module: `pkg/__pycache__/mod.cpython-311.pyc`
/// (or `.opt-1.pyc`) → `pkg/mod.py`. On bytes, as names are.
fn pyc_source(path: &[u8]) -> Option<Vec<u8>> {
    let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    let name = name.strip_suffix(b".pyc")?;
    let parent = dir.strip_suffix(b"__pycache__")?;
    if !parent.is_empty() && !parent.ends_with(b"/") {
        return None;
    }
    let module = name
        .split(|&b| b == b'.')
        .next()
        .filter(|m| !m.is_empty())?;
    let mut out = parent.to_vec();
    out.extend_from_slice(module);
    out.extend_from_slice(b".py");
    Some(out)
}

/// Files of the layer that share an inode: the first in path order (the
/// order of the tar) is written as the file, the others as hard links to
/// it, so a link never comes before its target.
fn link_hardlinks(out: &mut BTreeMap<TarPath, DEntry>) {
    let mut first: HashMap<(u64, u64), TarPath> = HashMap::new();
    for (path, e) in out.iter_mut() {
        if let Kind::File {
            inode: Some(ino), ..
        } = e.kind
        {
            match first.get(&ino) {
                Some(target) => e.kind = Kind::Hardlink(target.clone()),
                None => {
                    first.insert(ino, path.clone());
                }
            }
        }
    }
}

/// What a copy of the root looked like before the step: ctime per path
/// (every change of content or metadata moves it). Passed between
/// processes as JSON: a list of (name, stamp), a name as a string or,
/// when it is not UTF-8, as its bytes.
#[derive(Debug, Default, PartialEq)]
pub struct Snapshot(HashMap<TarPath, Stamp>);

type Stamp = (i64, i64, u64);

impl Snapshot {
    fn get(&self, rel: &TarPath) -> Option<&Stamp> {
        self.0.get(rel)
    }
}

impl serde::Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Snapshot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Snapshot, D::Error> {
        let v: Vec<(TarPath, Stamp)> = serde::Deserialize::deserialize(d)?;
        Ok(Snapshot(v.into_iter().collect()))
    }
}

pub fn snapshot(root: &Path) -> Result<Snapshot> {
    let mut s = Snapshot::default();
    fn walk(dir: &Path, rel: &TarPath, s: &mut Snapshot) -> Result<()> {
        for name in sorted_children(dir)? {
            let p = dir.join(&name);
            let r = rel.join(&name);
            let m = fs::symlink_metadata(&p).ctx(|| format!("reading {}", p.display()))?;
            s.0.insert(r.clone(), (m.ctime(), m.ctime_nsec(), m.ino()));
            if m.is_dir() {
                walk(&p, &r, s)?;
            }
        }
        Ok(())
    }
    walk(root, &TarPath::default(), &mut s)?;
    Ok(s)
}

/// The layer of a copy of the root the step ran in, against the root.
pub fn from_copy(
    store: &Store,
    copy: &Path,
    before: &Snapshot,
    o: &DiffOptions,
) -> Result<LayerDesc> {
    let mut out: BTreeMap<TarPath, DEntry> = BTreeMap::new();
    fn walk(
        dir: &Path,
        rel: &TarPath,
        before: &Snapshot,
        o: &DiffOptions,
        out: &mut BTreeMap<TarPath, DEntry>,
    ) -> Result<()> {
        let names = sorted_children(dir)?;
        // Deleted since the snapshot: a whiteout (not descended into).
        let present: HashSet<&TarPath> = names.iter().collect();
        whiteouts_for_missing(rel, &present, o, out)?;
        for name in &names {
            let p = dir.join(name);
            let r = rel.join(name);
            let m = fs::symlink_metadata(&p).ctx(|| format!("reading {}", p.display()))?;
            let unchanged = before
                .get(&r)
                .is_some_and(|b| *b == (m.ctime(), m.ctime_nsec(), m.ino()));
            let lower_kind = fs::symlink_metadata(o.lower.join(&r))
                .ok()
                .map(|l| l.file_type());
            let ft = m.file_type();
            if ft.is_dir() {
                if !unchanged || lower_kind.is_some_and(|k| !k.is_dir()) {
                    out.insert(r.clone(), o.entry(&p, &m, Kind::Dir));
                }
                walk(&p, &r, before, o, out)?;
                continue;
            }
            if unchanged || same_as_lower(&p, &m, &r, o) {
                continue;
            }
            if ft.is_symlink() {
                let t = fs::read_link(&p).ctx(|| format!("reading {}", p.display()))?;
                out.insert(
                    r,
                    o.entry(&p, &m, Kind::Symlink(TarPath::from_os(t.as_os_str()))),
                );
            } else if ft.is_file() {
                out.insert(r, o.entry(&p, &m, file_kind(&p, &m)));
            }
        }
        Ok(())
    }
    walk(copy, &TarPath::default(), before, o, &mut out)?;
    // Folders of changed entries, as an overlay's copy-up would have them.
    let paths: Vec<TarPath> = out.keys().cloned().collect();
    for p in paths {
        let mut cur = p.parent();
        while let Some(parent) = cur {
            cur = parent.parent();
            if let std::collections::btree_map::Entry::Vacant(v) = out.entry(parent) {
                let src = copy.join(v.key());
                let m = fs::symlink_metadata(&src).ctx(|| format!("reading {}", src.display()))?;
                v.insert(o.entry(&src, &m, Kind::Dir));
            }
        }
    }
    finish(store, out, copy, o)
}

/// Drops what only the sandbox made or touched, then writes the layer.
/// `changed`: the upper folder or the copy the step ran in.
/// `rel` followed by '/': below it, everything starts with that.
fn dir_prefix(rel: &TarPath) -> TarPath {
    let mut b = rel.as_bytes().to_vec();
    b.push(b'/');
    TarPath::from_bytes(b)
}

fn finish(
    store: &Store,
    mut out: BTreeMap<TarPath, DEntry>,
    changed: &Path,
    o: &DiffOptions,
) -> Result<LayerDesc> {
    let in_lower = |rel: &TarPath| fs::symlink_metadata(o.lower.join(rel)).ok();
    let below = |k: &TarPath, prefix: &TarPath| k.as_bytes().starts_with(prefix.as_bytes());
    // Mount points made for the step: new, empty, and holding nothing kept.
    for mp in o.mount_points {
        let mut rel = TarPath::from(mp.trim_start_matches('/'));
        loop {
            let empty = match out.get(&rel) {
                Some(e) => match &e.kind {
                    Kind::File { size, .. } => *size == 0,
                    Kind::Dir => {
                        let prefix = dir_prefix(&rel);
                        !out.keys().any(|k| below(k, &prefix))
                    }
                    _ => false,
                },
                None => false,
            };
            if empty && in_lower(&rel).is_none() {
                out.remove(&rel);
            }
            match rel.parent() {
                Some(p) => rel = p,
                None => break,
            }
        }
    }
    // Folders that only carry a new mtime (copied up for a mount point, or
    // whose changes were undone): same mode and owner below, nothing inside.
    let dirs: Vec<TarPath> = out
        .iter()
        .filter(|(_, e)| e.kind == Kind::Dir)
        .map(|(k, _)| k.clone())
        .rev()
        .collect();
    for d in dirs {
        let prefix = dir_prefix(&d);
        if out
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| below(k, &prefix))
        {
            continue;
        }
        let e = &out[&d];
        if let Some(lm) = in_lower(&d)
            && lm.is_dir()
        {
            let (uid, gid) = o.ids(&lm);
            if lm.mode() & 0o7777 == e.mode && uid == e.uid && gid == e.gid {
                out.remove(&d);
            }
        }
    }
    link_hardlinks(&mut out);
    pyc_headers(&mut out, changed, o);
    write(store, &out, o)
}

fn write(store: &Store, out: &BTreeMap<TarPath, DEntry>, o: &DiffOptions) -> Result<LayerDesc> {
    let (tmp, mut tw) = start_layer(store, o.compression, o.threads)?;
    let mut buf = vec![0u8; 256 * 1024];
    for (path, e) in out {
        let (kind, mode) = match &e.kind {
            Kind::Dir => (EntryKind::Dir, e.mode),
            Kind::File { size, .. } => (EntryKind::File { size: *size }, e.mode),
            Kind::Symlink(t) => (EntryKind::Symlink { target: t.clone() }, 0o777),
            Kind::Hardlink(t) => (EntryKind::Hardlink { target: t.clone() }, e.mode),
            Kind::Whiteout => (EntryKind::File { size: 0 }, 0),
        };
        let (uid, gid, mtime) = match e.kind {
            Kind::Whiteout => (0, 0, 0),
            _ => (e.uid, e.gid, e.mtime),
        };
        let header = Entry {
            path: path.clone(),
            kind,
            mode,
            uid,
            gid,
            mtime,
        };
        let caps: Vec<(&str, &[u8])> = e
            .cap
            .as_deref()
            .map(|c| vec![("security.capability", c)])
            .unwrap_or_default();
        tw.append_header_xattrs(&header, &caps)
            .ctx(|| "writing the layer".into())?;
        if let Kind::File {
            src,
            size,
            pyc_mtime,
            ..
        } = &e.kind
        {
            let res = match pyc_mtime {
                None => {
                    let mut f = File::open(src).ctx(|| format!("reading {}", src.display()))?;
                    tw.append_data(&mut f, *size, &mut buf)
                }
                Some(t) => {
                    let mut bytes = fs::read(src).ctx(|| format!("reading {}", src.display()))?;
                    if bytes.len() as u64 != *size || bytes.len() < 16 {
                        return Err(Error::Other(format!(
                            "{} changed while its layer was written",
                            src.display()
                        )));
                    }
                    bytes[8..12].copy_from_slice(&t.to_le_bytes());
                    tw.append_data(&mut std::io::Cursor::new(bytes), *size, &mut buf)
                }
            };
            res.map_err(|err| Error::Other(format!("{}: {err}", src.display())))?;
        }
    }
    commit_layer(store, tmp, tw, o.compression)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::testutil::{layer_names, raw};

    fn file(ino: Option<(u64, u64)>) -> DEntry {
        DEntry {
            kind: Kind::File {
                src: PathBuf::from("/x"),
                size: 1,
                inode: ino,
                pyc_mtime: None,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            cap: None,
        }
    }

    #[test]
    fn the_first_link_in_tar_order_is_the_file() {
        // Walked folder by folder, `a/b` comes before `a.b`; in the tar
        // (sorted by path) `a.b` comes first, so it must be the file.
        let mut out = BTreeMap::new();
        let p = TarPath::from;
        out.insert(p("a/b"), file(Some((1, 9))));
        out.insert(p("a.b"), file(Some((1, 9))));
        out.insert(p("c"), file(Some((1, 9))));
        out.insert(p("d"), file(None));
        link_hardlinks(&mut out);
        assert!(matches!(out[&p("a.b")].kind, Kind::File { .. }));
        assert_eq!(out[&p("a/b")].kind, Kind::Hardlink(p("a.b")));
        assert_eq!(out[&p("c")].kind, Kind::Hardlink(p("a.b")));
        assert!(matches!(out[&p("d")].kind, Kind::File { .. }));
    }

    fn pyc_source(path: &str) -> Option<String> {
        super::pyc_source(path.as_bytes()).map(|s| String::from_utf8(s).unwrap())
    }

    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn opts(lower: &Path) -> DiffOptions<'_> {
        DiffOptions {
            lower,
            mount_points: &[],
            own: false,
            source_date_epoch: 0,
            compression: Compression::Gzip,
            threads: 1,
        }
    }

    #[test]
    fn a_copied_root_keeps_names_that_are_not_utf8() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let copy = t.path().join("copy");
        for root in [&lower, &copy] {
            fs::create_dir_all(root.join("etc")).unwrap();
            fs::write(raw(root, b"etc/old\xfd"), "old").unwrap();
            fs::write(root.join("etc/keep"), "keep").unwrap();
        }
        let before = snapshot(&copy).unwrap();
        // The snapshot goes between processes as JSON.
        let json = serde_json::to_vec(&before).unwrap();
        assert_eq!(serde_json::from_slice::<Snapshot>(&json).unwrap(), before);
        fs::remove_file(raw(&copy, b"etc/old\xfd")).unwrap();
        fs::create_dir(raw(&copy, b"d\xff")).unwrap();
        fs::write(raw(&copy, b"d\xff/new\xe9"), "new").unwrap();
        std::os::unix::fs::symlink(OsStr::from_bytes(b"t\xfe"), raw(&copy, b"d\xff/ln")).unwrap();
        let store = Store::open(&t.path().join("store")).unwrap();
        let d = from_copy(&store, &copy, &before, &opts(&lower)).unwrap();
        assert_eq!(
            layer_names(&store, &d),
            [
                (b"d\xff/".to_vec(), None),
                (b"d\xff/ln".to_vec(), Some(b"t\xfe".to_vec())),
                (b"d\xff/new\xe9".to_vec(), None),
                (b"etc/".to_vec(), None),
                (b"etc/.wh.old\xfd".to_vec(), None),
            ]
        );
    }

    #[test]
    fn an_upper_folder_keeps_names_that_are_not_utf8() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        fs::create_dir_all(&lower).unwrap();
        fs::create_dir_all(raw(&upper, b"opt/\x80")).unwrap();
        fs::write(raw(&upper, b"opt/\x80/f\xff"), "f").unwrap();
        std::os::unix::fs::symlink(OsStr::from_bytes(b"\x80/f\xff"), raw(&upper, b"opt/l"))
            .unwrap();
        let store = Store::open(&t.path().join("store")).unwrap();
        let d = from_upper(&store, &upper, &opts(&lower)).unwrap();
        assert_eq!(
            layer_names(&store, &d),
            [
                (b"opt/".to_vec(), None),
                // Sorted by bytes: 'l' is below 0x80.
                (b"opt/l".to_vec(), Some(b"\x80/f\xff".to_vec())),
                (b"opt/\x80/".to_vec(), None),
                (b"opt/\x80/f\xff".to_vec(), None),
            ]
        );
    }

    #[test]
    fn the_source_of_a_compiled_module() {
        assert_eq!(
            pyc_source("usr/lib/pkg/__pycache__/mod.cpython-311.pyc").as_deref(),
            Some("usr/lib/pkg/mod.py")
        );
        assert_eq!(
            pyc_source("a/__pycache__/__init__.cpython-312.opt-1.pyc").as_deref(),
            Some("a/__init__.py")
        );
        assert_eq!(
            pyc_source("__pycache__/x.cpython-311.pyc").as_deref(),
            Some("x.py")
        );
        assert_eq!(pyc_source("a/mod.pyc"), None, "Python 2's layout");
        assert_eq!(pyc_source("a/not__pycache__/m.pyc"), None);
        assert_eq!(pyc_source("a/__pycache__/m.py"), None);
    }
}

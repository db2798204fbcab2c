//! File layers: walk a source folder (or one file) under the ignore rules,
//! hash contents (through the stat cache), and write the layer.

use super::compress::{Compression, LayerWriter};
use super::ignore::{IgnoreRules, Verdict, secret_reason};
use super::path::TarPath;
use super::tar::TarWriter;
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, IoContext, Result};
use crate::oci::Owner;
use crate::store::statcache::{Stamp, StatCache};
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{BufWriter, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Version of the file-layer byte format; part of every file step key.
pub const FILES_FORMAT: u32 = 1;

/// What an entry is. Link targets are bytes, as the link holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File { size: u64, hash: Digest },
    Symlink(TarPath),
    Hardlink(TarPath),
}

#[derive(Clone, Debug)]
pub struct FileEntry {
    /// Path in the layer: relative, no leading '/'. Bytes, as the name is
    /// on disk (UTF-8 or not).
    pub path: TarPath,
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Where the bytes come from: see [`FileEntry::src`].
    pub source: Source,
    /// The mtime collection saw, for the change check of the writer.
    pub(crate) mtime_ns: i64,
}

/// Where an entry's bytes come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A path of its own (empty for what is not read from disk).
    Path(PathBuf),
    /// A collected tree's entry: `root` joined with the entry's layer path
    /// after its first `skip` bytes (the layer folder the tree went to).
    /// The tree's entries share the root, so none holds a path of its
    /// own: on a tree of 200k files that was 10 MB. An entry of this kind
    /// keeps its `path`.
    Under { root: Arc<Path>, skip: u32 },
}

impl FileEntry {
    /// A folder made for the layer (not read from disk).
    pub fn folder(path: &str, mode: u32, uid: u64, gid: u64) -> FileEntry {
        FileEntry {
            path: TarPath::from(path),
            kind: FileKind::Dir,
            mode,
            uid,
            gid,
            source: Source::Path(PathBuf::new()),
            mtime_ns: 0,
        }
    }

    /// The path the entry's bytes are read from.
    pub fn src(&self) -> Cow<'_, Path> {
        match &self.source {
            Source::Path(p) => Cow::Borrowed(p),
            Source::Under { root, skip } => {
                let rest = self
                    .path
                    .as_bytes()
                    .get(*skip as usize..)
                    .unwrap_or_default();
                let rest = rest.strip_prefix(b"/").unwrap_or(rest);
                if rest.is_empty() {
                    Cow::Borrowed(root)
                } else {
                    Cow::Owned(root.join(std::ffi::OsStr::from_bytes(rest)))
                }
            }
        }
    }
}

/// The folders above the entries that the layer does not hold itself
/// (the destination and its parents), top-down. Those come from the
/// destination a definition names, which is text; a folder read from disk
/// (whatever its name) is an entry of the layer itself.
pub fn folders_above(entries: &[FileEntry]) -> Vec<String> {
    let own: std::collections::HashSet<&TarPath> = entries.iter().map(|e| &e.path).collect();
    let mut out = std::collections::BTreeSet::new();
    for e in entries {
        let mut p = e.path.parent();
        while let Some(parent) = p {
            if !own.contains(&parent)
                && let Some(text) = parent.to_str()
            {
                out.insert(text.to_string());
            }
            p = parent.parent();
        }
    }
    out.into_iter().collect()
}

/// What collecting a source found.
#[derive(Debug, Default)]
pub struct Collected {
    pub entries: Vec<FileEntry>,
    pub ignored: usize,
    /// Names here and below are for people: a name that is not UTF-8 shows
    /// its other bytes as `\xNN`.
    pub ignored_examples: Vec<String>,
    pub secrets: Vec<String>,
    pub skipped_special: Vec<String>,
    /// imgbuild's own output or store found inside the source, left out.
    pub skipped_own: Vec<String>,
    pub bytes: u64,
    /// Files whose content had to be read (not in the stat cache).
    pub hashed: usize,
    /// Without [`CollectOptions::hash`]: the files the stat cache did not
    /// know, left with a zero hash, as (layer path, stat cache name), in
    /// entry order.
    pub unhashed: Vec<(TarPath, String)>,
}

pub struct CollectOptions<'a> {
    pub context: &'a Path,
    pub rules: &'a IgnoreRules,
    pub owner: Option<Owner>,
    pub chmod: Option<u32>,
    pub stat: &'a StatCache,
    /// Absolute paths never copied (imgbuild's own output and store).
    pub exclude: &'a [PathBuf],
    /// Hash the files the stat cache does not know (else they are listed
    /// in [`Collected::unhashed`], for a writer that hashes as it copies).
    pub hash: bool,
}

/// Where a single file goes: under `dst` by its own name when `dst` is a
/// folder (ends with '/' or is "."), else at `dst`.
pub fn file_dst(dst: &str, name: &str) -> String {
    if dst.ends_with('/') || dst == "." {
        format!("{dst}/{name}")
    } else {
        dst.to_string()
    }
}

/// Lexically resolves `dst` against `workdir`; returns the layer path
/// without a leading '/' ("" is the root).
pub fn resolve_dst(workdir: &str, dst: &str) -> String {
    let joined = if dst.starts_with('/') {
        dst.to_string()
    } else {
        format!("{workdir}/{dst}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The path of `p` relative to the context, if inside it (and UTF-8).
pub fn context_rel(context: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(context).ok()?;
    let s = rel.to_str()?.to_string();
    Some(if s.is_empty() { String::new() } else { s })
}

/// The path of `p` relative to the context, if inside it, as bytes.
fn context_rel_bytes(context: &Path, p: &Path) -> Option<TarPath> {
    let rel = p.strip_prefix(context).ok()?;
    Some(TarPath::from_os(rel.as_os_str()))
}

/// The stat cache's key for a context path: the name itself, or its
/// escaped form when it is not UTF-8 (the cache's stamp, with the inode,
/// tells files apart whose escaped forms are alike).
pub(crate) fn stat_key(rel: &TarPath) -> Cow<'_, str> {
    match rel.to_str() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(rel.to_string()),
    }
}

/// Collects a folder: its contents land under `dst` (layer path); with
/// `include_top` the folder itself is an entry at `dst`.
pub fn collect_folder(
    src: &Path,
    dst: &str,
    include_top: bool,
    o: &CollectOptions,
) -> Result<Collected> {
    let meta = fs::metadata(src)
        .map_err(|e| Error::input(src, format!("cannot read source folder: {e}")))?;
    if !meta.is_dir() {
        return Err(Error::input(
            src,
            "is not a folder (use source_file for a single file)",
        ));
    }
    // Ignore patterns are anchored at the context root; a folder outside the
    // context is matched relative to itself.
    let base = Base {
        src,
        root: Arc::from(src),
        dst: TarPath::from(dst),
        rel: context_rel_bytes(o.context, src).unwrap_or_default(),
    };
    let mut out = Collected::default();
    let top = o.rules.verdict(&base.rel.for_matching());
    let folders = walk(src, &base.dst, &base, top, o)?;
    // Each folder's findings are put together once, here. Order does not
    // matter: `finish` sorts.
    let mut raw = Vec::with_capacity(folders.iter().map(|w| w.raw.len()).sum::<usize>() + 1);
    let (mut ignored, mut own, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    for mut w in folders {
        raw.append(&mut w.raw);
        ignored.append(&mut w.ignored);
        own.append(&mut w.own);
        excluded.append(&mut w.excluded_dirs);
    }
    if include_top {
        raw.push(Raw {
            path: base.dst.clone(),
            st: Stat::of(&meta),
        });
    }
    out.skipped_own = own.iter().map(TarPath::to_string).collect();
    ignored.sort();
    out.ignored = ignored.len();
    out.ignored_examples = ignored.iter().take(5).map(TarPath::to_string).collect();
    // A re-included file keeps its excluded parent folders.
    if !excluded.is_empty() {
        let mut excluded_dirs: HashMap<TarPath, Stat> =
            excluded.into_iter().map(|r| (r.path, r.st)).collect();
        let mut need: BTreeSet<TarPath> = BTreeSet::new();
        for r in &raw {
            let mut p = r.path.parent();
            while let Some(parent) = p {
                p = parent.parent();
                if excluded_dirs.contains_key(&parent) {
                    need.insert(parent);
                }
            }
        }
        for path in need {
            let st = excluded_dirs.remove(&path).expect("listed above");
            raw.push(Raw { path, st });
        }
    }
    finish(&base, raw, o, &mut out)?;
    Ok(out)
}

/// A file's stat, as much of it as collection needs (a [`Metadata`] is
/// three times the size).
#[derive(Clone, Copy, Debug)]
struct Stat {
    /// Type and permission bits.
    mode: u32,
    nlink: u64,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Stat {
    fn of(m: &Metadata) -> Stat {
        Stat {
            mode: m.mode(),
            nlink: m.nlink(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        }
    }

    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            ino: self.ino,
        }
    }
}

/// Where a collected tree is: on disk, in the layer, relative to the
/// context. An entry's three paths are these joined with its
/// [`Base::child`] path.
struct Base<'a> {
    src: &'a Path,
    /// `src`, shared by the entries.
    root: Arc<Path>,
    dst: TarPath,
    rel: TarPath,
}

impl Base<'_> {
    /// The part of a layer path below `dst` ("" for `dst` itself).
    fn child<'p>(&self, path: &'p TarPath) -> &'p [u8] {
        let rest = path.as_bytes().get(self.dst.len()..).unwrap_or_default();
        rest.strip_prefix(b"/").unwrap_or(rest)
    }

    /// The context path of the entry at layer path `path`, put in `buf`.
    fn rel_into(&self, path: &TarPath, buf: &mut Vec<u8>) {
        let child = self.child(path);
        buf.clear();
        buf.extend_from_slice(self.rel.as_bytes());
        if !self.rel.is_empty() && !child.is_empty() {
            buf.push(b'/');
        }
        buf.extend_from_slice(child);
    }
}

/// An entry found: its layer path (`dst` below which the source's own
/// path is) and its stat. The layer path is made once, as the folder is
/// read, and becomes the entry's.
struct Raw {
    path: TarPath,
    st: Stat,
}

#[derive(Default)]
struct Walked {
    raw: Vec<Raw>,
    ignored: Vec<TarPath>,
    /// Excluded folders that a `!` pattern may re-enter.
    excluded_dirs: Vec<Raw>,
    own: Vec<TarPath>,
}

/// Walks `dir` (at layer path `at`), folders in parallel, and gives what
/// each folder holds, one [`Walked`] a folder. Entries are stat'ed
/// relative to their folder, not by full path. Names are taken as the
/// bytes they are; ignore patterns see them as [`TarPath::for_matching`]
/// gives them; `verdict` is what they say of `dir`, and each entry's is
/// found from it.
fn walk(
    dir: &Path,
    at: &TarPath,
    base: &Base,
    verdict: Verdict,
    o: &CollectOptions,
) -> Result<Vec<Walked>> {
    let rules = o.rules;
    let mut out = Walked::default();
    let mut subdirs: Vec<(PathBuf, TarPath, Verdict)> = Vec::new();
    // Only a folder that holds one of the excluded paths compares names.
    let excludes_here = o.exclude.iter().any(|x| x.parent() == Some(dir));
    let rd =
        fs::read_dir(dir).map_err(|e| Error::input(dir, format!("cannot read folder: {e}")))?;
    // The context path of an entry, for the ignore rules: this folder's
    // part once, each name put after it (no allocation per entry).
    let mut rel_buf = Vec::new();
    base.rel_into(at, &mut rel_buf);
    if !rel_buf.is_empty() {
        rel_buf.push(b'/');
    }
    let rel_dir_len = rel_buf.len();
    for item in rd {
        let e = item.map_err(|e| Error::input(dir, format!("cannot read folder: {e}")))?;
        let name = e.file_name().into_vec();
        let st = Stat::of(
            &e.metadata()
                .map_err(|err| Error::input(e.path(), format!("cannot stat: {err}")))?,
        );
        rel_buf.truncate(rel_dir_len);
        rel_buf.extend_from_slice(&name);
        let path = if at.is_empty() {
            TarPath::from_bytes(name)
        } else {
            let mut b = Vec::with_capacity(at.len() + 1 + name.len());
            b.extend_from_slice(at.as_bytes());
            b.push(b'/');
            b.extend_from_slice(&name);
            TarPath::from_bytes(b)
        };
        if excludes_here {
            let full = e.path();
            if o.exclude.contains(&full) {
                out.own.push(TarPath::from_bytes(&rel_buf[..]));
                continue;
            }
        }
        let mut v = verdict;
        if !rules.is_empty() {
            v = match std::str::from_utf8(&rel_buf) {
                Ok(rel) => rules.verdict_below(verdict, rel),
                Err(_) => {
                    rules.verdict_below(verdict, &TarPath::from_bytes(&rel_buf[..]).for_matching())
                }
            };
            if rules.excludes(v) {
                let rel = TarPath::from_bytes(&rel_buf[..]);
                if st.is_dir() && !rules.can_skip_dir(&rel.for_matching()) {
                    subdirs.push((e.path(), path.clone(), v));
                    out.excluded_dirs.push(Raw { path, st });
                }
                out.ignored.push(rel);
                continue;
            }
        }
        if st.is_dir() {
            subdirs.push((e.path(), path.clone(), v));
        }
        out.raw.push(Raw { path, st });
    }
    // Only the small per-folder lists move up the tree, not their entries
    // (a deep tree would copy each entry once per level).
    let nested: Vec<Vec<Walked>> = subdirs
        .par_iter()
        .map(|(p, at, v)| walk(p, at, base, *v, o))
        .collect::<Result<_>>()?;
    let mut all = Vec::with_capacity(1 + nested.iter().map(Vec::len).sum::<usize>());
    all.push(out);
    all.extend(nested.into_iter().flatten());
    Ok(all)
}

/// Collects one file placed at layer path `dst`.
pub fn collect_file(src: &Path, dst: &str, o: &CollectOptions) -> Result<Collected> {
    let meta = fs::symlink_metadata(src)
        .map_err(|e| Error::input(src, format!("cannot read source file: {e}")))?;
    if meta.is_dir() {
        return Err(Error::input(src, "is a folder (use source_folder)"));
    }
    let base = Base {
        src,
        root: Arc::from(src),
        dst: TarPath::from(dst),
        rel: context_rel_bytes(o.context, src).unwrap_or_else(|| TarPath::from_os(src.as_os_str())),
    };
    let mut out = Collected::default();
    let raw = vec![Raw {
        path: base.dst.clone(),
        st: Stat::of(&meta),
    }];
    finish(&base, raw, o, &mut out)?;
    Ok(out)
}

/// What making an entry finds beside the entry, kept apart from it so
/// that entries are written straight to their place in the list.
struct Side {
    /// Not in the stat cache: the stamp to record with its hash.
    miss: Option<Stamp>,
    /// What few entries have.
    rare: Option<Box<Rare>>,
}

enum Rare {
    /// A file that looks like a secret: why, for the warning.
    Secret(String),
    /// Not a file, folder or link (its entry is a stand-in, dropped).
    Special(String),
    /// Making it failed (its entry is a stand-in).
    Failed(Error),
}

impl Side {
    const PLAIN: Side = Side {
        miss: None,
        rare: None,
    };
}

/// Entries at most this many to a parallel job: a tiny job costs more to
/// hand over than to run.
const BATCH: usize = 512;

/// Entries are made this many at a time, so what is being made stays
/// small beside the entries made, and what they are made from is freed
/// as they are (memory does not double at the end).
const CHUNK: usize = 16 * 1024;

fn finish(base: &Base, mut raw: Vec<Raw>, o: &CollectOptions, out: &mut Collected) -> Result<()> {
    // Layer paths are `dst` joined with the child: their order is the
    // children's. Sorted last first, so that entries are made from the
    // end of `raw`, which gives its memory back as it goes.
    raw.par_sort_unstable_by(|a, b| b.path.cmp(&a.path));
    raw.dedup_by(|a, b| a.path == b.path);
    let n = raw.len();
    let (uid, gid) = o.owner.map(|w| (w.uid, w.gid)).unwrap_or((0, 0));
    // Hard links: the first name of an inode (in layer order) holds the
    // bytes, the others link to it. Indexes are in layer order.
    let mut first_link: HashMap<(u64, u64), usize> = HashMap::new();
    let mut link_to: HashMap<usize, TarPath> = HashMap::new();
    for (i, r) in raw.iter().rev().enumerate() {
        if r.st.nlink > 1 && r.st.kind() == libc::S_IFREG {
            let first = *first_link.entry((r.st.dev, r.st.ino)).or_insert(i);
            if first != i {
                link_to.insert(i, raw[n - 1 - first].path.clone());
            }
        }
    }
    drop(first_link);
    let mut entries: Vec<FileEntry> = Vec::with_capacity(n);
    let mut sides: Vec<Side> = Vec::new();
    let mut to_hash: Vec<(usize, Stamp)> = Vec::new();
    let mut stand_ins: Vec<usize> = Vec::new();
    while !raw.is_empty() {
        let mut chunk = raw.split_off(raw.len() - raw.len().min(CHUNK));
        chunk.reverse();
        raw.shrink_to_fit();
        let first = n - raw.len() - chunk.len();
        debug_assert_eq!(first, entries.len());
        // Entries are written in place (an indexed extend); what else was
        // found is in `sides`, at the same index.
        let mut made = (std::mem::take(&mut entries), std::mem::take(&mut sides));
        made.par_extend(
            chunk
                .into_par_iter()
                .enumerate()
                .with_min_len(BATCH)
                .map_init(Scratch::default, |scratch, (j, r)| {
                    make_entry(base, r, link_to.get(&(first + j)), (uid, gid), o, scratch)
                }),
        );
        (entries, sides) = made;
        for (j, side) in sides.drain(..).enumerate() {
            let i = first + j;
            if let Some(stamp) = side.miss {
                to_hash.push((i, stamp));
            }
            match side.rare.map(|r| *r) {
                None => {}
                Some(Rare::Secret(s)) => out.secrets.push(s),
                Some(Rare::Special(s)) => {
                    out.skipped_special.push(s);
                    stand_ins.push(i);
                }
                Some(Rare::Failed(e)) => return Err(e),
            }
        }
    }
    out.bytes = entries
        .par_iter()
        .map(|e| match e.kind {
            FileKind::File { size, .. } => size,
            _ => 0,
        })
        .sum();
    // A stat cache name, for the files to hash.
    let name = |i: usize, buf: &mut Vec<u8>| {
        base.rel_into(&entries[i].path, buf);
        stat_key(&TarPath::from_bytes(&buf[..])).into_owned()
    };
    if !o.hash {
        let mut buf = Vec::new();
        out.unhashed = to_hash
            .iter()
            .map(|&(i, _)| (entries[i].path.clone(), name(i, &mut buf)))
            .collect();
        out.entries = drop_stand_ins(entries, &stand_ins);
        return Ok(());
    }
    out.hashed = to_hash.len();
    let hashes: Vec<(usize, Digest)> = to_hash
        .par_iter()
        .map_init(Vec::new, |buf, &(i, stamp)| {
            let d = hash_file(&entries[i].src())?;
            o.stat.insert(name(i, buf).as_bytes(), stamp, d);
            Ok((i, d))
        })
        .collect::<Result<_>>()?;
    for (i, d) in hashes {
        if let FileKind::File { hash, .. } = &mut entries[i].kind {
            *hash = d;
        }
    }
    out.entries = drop_stand_ins(entries, &stand_ins);
    Ok(())
}

/// `entries` without those at `stand_ins` (sorted indexes).
fn drop_stand_ins(mut entries: Vec<FileEntry>, stand_ins: &[usize]) -> Vec<FileEntry> {
    if !stand_ins.is_empty() {
        let mut i = 0;
        let mut next = stand_ins.iter().peekable();
        entries.retain(|_| {
            let keep = next.next_if_eq(&&i).is_none();
            i += 1;
            keep
        });
    }
    entries
}

/// What [`make_entry`] keeps from one entry to the next of a run of
/// entries in layer order: room to put the context path in, and where in
/// the stat cache (sorted the same way) the last one was.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    hint: usize,
}

/// The entry for `r`; `link` is the layer path it is a hard link to. An
/// entry that is not made is a stand-in, with why in its side.
fn make_entry(
    base: &Base,
    r: Raw,
    link: Option<&TarPath>,
    owner: (u64, u64),
    o: &CollectOptions,
    scratch: &mut Scratch,
) -> (FileEntry, Side) {
    let rare = |r: Rare| Side {
        miss: None,
        rare: Some(Box::new(r)),
    };
    let stand_in = || FileEntry {
        path: TarPath::default(),
        kind: FileKind::Dir,
        mode: 0,
        uid: 0,
        gid: 0,
        source: Source::Path(PathBuf::new()),
        mtime_ns: 0,
    };
    if !matches!(r.st.kind(), libc::S_IFDIR | libc::S_IFLNK | libc::S_IFREG) {
        base.rel_into(&r.path, &mut scratch.buf);
        let name = TarPath::from_bytes(&scratch.buf[..]).to_string();
        return (stand_in(), rare(Rare::Special(name)));
    }
    match entry_of(base, r, link, owner, o, scratch) {
        Ok((entry, secret, miss)) => {
            let side = match secret {
                None => Side {
                    miss,
                    ..Side::PLAIN
                },
                Some(s) => Side {
                    miss,
                    rare: Some(Box::new(Rare::Secret(s))),
                },
            };
            (entry, side)
        }
        Err(e) => (stand_in(), rare(Rare::Failed(e))),
    }
}

/// The entry of a folder, file or link; a secret's warning; the stamp of
/// a file the stat cache did not know.
fn entry_of(
    base: &Base,
    r: Raw,
    link: Option<&TarPath>,
    (uid, gid): (u64, u64),
    o: &CollectOptions,
    Scratch { buf, hint }: &mut Scratch,
) -> Result<(FileEntry, Option<String>, Option<Stamp>)> {
    let st = &r.st;
    let mut entry = FileEntry {
        path: r.path,
        kind: FileKind::Dir,
        mode: o.chmod.unwrap_or(st.mode & 0o7777),
        uid,
        gid,
        source: Source::Under {
            root: base.root.clone(),
            // The layer folder's name came from a build file (at most 16 MiB).
            skip: u32::try_from(base.dst.len()).expect("a layer folder name under 4 GiB"),
        },
        mtime_ns: st.mtime_ns,
    };
    match st.kind() {
        libc::S_IFLNK => {
            let src = base
                .src
                .join(std::ffi::OsStr::from_bytes(base.child(&entry.path)));
            let target = fs::read_link(&src)
                .map_err(|e| Error::input(&src, format!("cannot read link: {e}")))?;
            entry.kind = FileKind::Symlink(TarPath::from_os(target.as_os_str()));
            entry.mode = 0o777;
            Ok((entry, None, None))
        }
        libc::S_IFREG => {
            if let Some(target) = link {
                entry.kind = FileKind::Hardlink(target.clone());
                entry.mtime_ns = 0;
                return Ok((entry, None, None));
            }
            // The context path, built in `buf`.
            base.rel_into(&entry.path, buf);
            let (secret, found) = match std::str::from_utf8(buf) {
                Ok(rel) => (
                    secret_reason(rel).map(|why| format!("{rel} ({why})")),
                    o.stat.lookup_near(hint, rel, st.stamp()),
                ),
                Err(_) => {
                    let rel = TarPath::from_bytes(&buf[..]);
                    (
                        secret_reason(&rel.for_matching()).map(|why| format!("{rel} ({why})")),
                        o.stat
                            .lookup_near(hint, stat_key(&rel).as_bytes(), st.stamp()),
                    )
                }
            };
            entry.kind = FileKind::File {
                size: st.size,
                hash: found.unwrap_or(Digest([0; 32])),
            };
            Ok((entry, secret, found.is_none().then(|| st.stamp())))
        }
        _ => Ok((entry, None, None)),
    }
}

pub fn hash_file(p: &Path) -> Result<Digest> {
    hash_read(p).map(|(d, _)| d)
}

/// A file's sha256, and the file (read to its end), for a caller that
/// wants its metadata as it was read.
pub(crate) fn hash_read(p: &Path) -> Result<(Digest, File)> {
    let mut f = File::open(p).map_err(|e| Error::input(p, format!("cannot read: {e}")))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::input(p, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok((Digest::from_hasher(h), f))
}

/// Feeds a name into a step key: a UTF-8 name as text (the keys of such
/// names are what they were when names were strings), another as bytes,
/// whose field type differs, so the two never collide.
fn key_name(k: &mut KeyHasher, p: &TarPath) {
    match p.to_str() {
        Some(s) => k.str(s),
        None => k.bytes(p.as_bytes()),
    };
}

/// Entries go into a step key this many at a time: each group gets a key
/// of its own, groups in parallel, and the step key takes the groups'
/// keys in order. The size is fixed, so keys do not depend on the cores.
const KEY_GROUP: usize = 1024;

/// Feeds a file set into a step key.
pub fn key_entries(k: &mut KeyHasher, entries: &[FileEntry]) {
    k.u64(entries.len() as u64);
    let groups: Vec<Digest> = entries
        .par_chunks(KEY_GROUP)
        .map(|group| {
            let mut g = KeyHasher::new("files-group", 1);
            for e in group {
                key_entry(&mut g, e);
            }
            g.finish()
        })
        .collect();
    for d in &groups {
        k.digest(d);
    }
}

fn key_entry(k: &mut KeyHasher, e: &FileEntry) {
    key_name(k, &e.path);
    k.u64(e.mode as u64).u64(e.uid).u64(e.gid);
    match &e.kind {
        FileKind::Dir => {
            k.str("dir");
        }
        FileKind::File { size, hash } => {
            k.str("file").u64(*size).digest(hash);
        }
        FileKind::Symlink(t) => {
            k.str("symlink");
            key_name(k, t);
        }
        FileKind::Hardlink(t) => {
            k.str("hardlink");
            key_name(k, t);
        }
    }
}

/// The tar stream of a new layer: tar → sha256 → compressor → sha256 →
/// a temp file in the store. Finish it with [`commit_layer`].
pub type LayerTar = TarWriter<LayerWriter<BufWriter<File>>>;

pub fn start_layer(
    store: &Store,
    compression: Compression,
    threads: usize,
) -> Result<(tempfile::NamedTempFile, LayerTar)> {
    let tmp = store.temp_file()?;
    let file = tmp.reopen().ctx(|| "opening a temp file".into())?;
    let lw = LayerWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        compression,
        threads,
    )
    .ctx(|| "starting the compressor".into())?;
    Ok((tmp, TarWriter::new(lw)))
}

/// Ends the tar stream and renames the finished blob into the store.
pub fn commit_layer(
    store: &Store,
    tmp: tempfile::NamedTempFile,
    tw: LayerTar,
    compression: Compression,
) -> Result<LayerDesc> {
    let into = || {
        format!(
            "writing the layer into the store {}",
            store.root().display()
        )
    };
    crate::util::fault::point("layer-written");
    let lw = tw.finish().ctx(into)?;
    let (w, written) = lw.finish().ctx(into)?;
    w.into_inner()
        .map_err(|e| Error::io(into(), e.into_error()))?;
    store.commit_made_blob(tmp, &written.digest)?;
    Ok(LayerDesc {
        digest: written.digest,
        diff_id: written.diff_id,
        size: written.size,
        media_type: compression.media_type().to_string(),
        uncompressed_size: written.uncompressed_size,
    })
}

/// Writes the layer for `entries` into the store, in one pass.
pub fn write_layer(
    store: &Store,
    entries: &[FileEntry],
    compression: Compression,
    threads: usize,
    mtime: u64,
    progress: &dyn Fn(u64),
) -> Result<LayerDesc> {
    let o = super::write::WriteOptions {
        compression,
        threads,
        mtime,
        hash: false,
    };
    super::write::write_entries(store, entries, &o, progress, &|_, _, _| {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::testutil::{layer_names, raw};

    /// Options reading `ctx` under `rules`, hashing through `stat`.
    fn options<'a>(
        ctx: &'a Path,
        rules: &'a IgnoreRules,
        stat: &'a StatCache,
    ) -> CollectOptions<'a> {
        CollectOptions {
            context: ctx,
            rules,
            owner: None,
            chmod: None,
            stat,
            exclude: &[],
            hash: true,
        }
    }

    #[test]
    fn dst_resolution() {
        assert_eq!(resolve_dst("/", "."), "");
        assert_eq!(resolve_dst("/root", "."), "root");
        assert_eq!(resolve_dst("/root", "./src"), "root/src");
        assert_eq!(resolve_dst("/root", "/app/"), "app");
        assert_eq!(resolve_dst("/a/b", "../c"), "a/c");
        assert_eq!(resolve_dst("/", "../../x"), "x");
    }

    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn names_that_are_not_utf8_are_copied_as_their_bytes() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(raw(&ctx, b"src/d\xff")).unwrap();
        fs::write(raw(&ctx, b"src/d\xff/f\xe9.txt"), "x").unwrap();
        fs::write(raw(&ctx, b"src/skip\xfe.log"), "x").unwrap();
        fs::write(raw(&ctx, b"src/a\xffb"), "x").unwrap();
        fs::write(raw(&ctx, b"src/a\xff\xfeb"), "x").unwrap();
        std::os::unix::fs::symlink(
            OsStr::from_bytes(b"d\xff/f\xe9.txt"),
            raw(&ctx, b"src/l\xfd"),
        )
        .unwrap();
        let stat = StatCache::load(t.path().join("stat"));
        // `?` takes one stray byte as one character, as BuildKit's matcher does.
        let rules = IgnoreRules::from_patterns(["src/*.log", "src/a?b"]).unwrap();
        let o = options(&ctx, &rules, &stat);
        let c = collect_folder(&ctx.join("src"), "app", false, &o).unwrap();
        assert_eq!(c.ignored, 2);
        assert_eq!(
            c.ignored_examples,
            ["src/a\\xffb", "src/skip\\xfe.log"],
            "shown escaped"
        );
        let got: Vec<&[u8]> = c.entries.iter().map(|e| e.path.as_bytes()).collect();
        assert_eq!(
            got,
            [
                &b"app/a\xff\xfeb"[..],
                b"app/d\xff",
                b"app/d\xff/f\xe9.txt",
                b"app/l\xfd"
            ]
        );
        // The key tells names apart that a lossy reading would merge.
        let key = |entries: &[FileEntry]| {
            let mut k = KeyHasher::new("t", 1);
            key_entries(&mut k, entries);
            k.finish()
        };
        let mut other = c.entries.clone();
        other[0].path = TarPath::from_bytes(b"app/a\xfe\xffb".to_vec());
        assert_ne!(key(&c.entries), key(&other));

        let store = Store::open(&t.path().join("store")).unwrap();
        let d = write_layer(&store, &c.entries, Compression::Gzip, 1, 0, &|_| {}).unwrap();
        assert_eq!(
            layer_names(&store, &d),
            [
                (b"app/a\xff\xfeb".to_vec(), None),
                (b"app/d\xff/".to_vec(), None),
                (b"app/d\xff/f\xe9.txt".to_vec(), None),
                (b"app/l\xfd".to_vec(), Some(b"d\xff/f\xe9.txt".to_vec())),
            ]
        );
        // A second collection finds the hashes in the stat cache.
        let again = collect_folder(&ctx.join("src"), "app", false, &o).unwrap();
        assert_eq!(again.entries.len(), 4);
    }

    /// Entries are keyed in groups of `KEY_GROUP`, in parallel: the key is
    /// the same on one thread and on many, and is what the groups, cut at
    /// fixed places, give by hand.
    #[test]
    fn keys_of_groups_do_not_depend_on_threads() {
        let entry = |i: usize| FileEntry {
            path: TarPath::from(format!("app/{i:05}").as_str()),
            kind: FileKind::File {
                size: i as u64,
                hash: Digest::of(&i.to_be_bytes()),
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            source: Source::Path(PathBuf::new()),
            mtime_ns: 0,
        };
        let entries: Vec<FileEntry> = (0..KEY_GROUP * 2 + 7).map(entry).collect();
        let key = |entries: &[FileEntry], threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut k = KeyHasher::new("t", 1);
                key_entries(&mut k, entries);
                k.finish()
            })
        };
        let one = key(&entries, 1);
        assert_eq!(one, key(&entries, 2));
        assert_eq!(one, key(&entries, 5));
        // By hand: the count, then each group's key in order.
        let mut k = KeyHasher::new("t", 1);
        k.u64(entries.len() as u64);
        for group in entries.chunks(KEY_GROUP) {
            let mut g = KeyHasher::new("files-group", 1);
            for e in group {
                key_entry(&mut g, e);
            }
            k.digest(&g.finish());
        }
        assert_eq!(one, k.finish());
        // Any change to one entry changes the key.
        let mut changed = entries.clone();
        changed[KEY_GROUP].mode = 0o600;
        assert_ne!(one, key(&changed, 2));
    }

    #[test]
    fn utf8_names_are_keyed_as_strings() {
        // The key of a UTF-8 name is the key of the string (a name that is
        // not UTF-8 is keyed as bytes, a field of another type).
        let e = FileEntry {
            path: TarPath::from("app/é"),
            kind: FileKind::Symlink(TarPath::from("t")),
            mode: 0o777,
            uid: 0,
            gid: 0,
            source: Source::Path(PathBuf::new()),
            mtime_ns: 0,
        };
        let mut a = KeyHasher::new("t", 1);
        key_entries(&mut a, &[e]);
        let mut group = KeyHasher::new("files-group", 1);
        group.str("app/é").u64(0o777).u64(0).u64(0);
        group.str("symlink").str("t");
        let mut b = KeyHasher::new("t", 1);
        b.u64(1).digest(&group.finish());
        assert_eq!(a.finish(), b.finish());
    }

    /// What collection finds in a tree of folders, files, symlinks, hard
    /// links, a FIFO and names that are not UTF-8, under ignore rules that
    /// re-include a file below an excluded folder; and the step key of it,
    /// pinned (keys must not change with how collection works).
    #[test]
    fn collection_and_its_key_are_pinned() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        let src = ctx.join("src");
        for d in ["a/b", "skip/keep", "skip/not", "z"] {
            fs::create_dir_all(src.join(d)).unwrap();
        }
        fs::create_dir_all(raw(&src, b"n\xff")).unwrap();
        let files: [(&[u8], &str, u32); 6] = [
            (b"a/b/one.txt", "one", 0o644),
            (b"a/run.sh", "#!/bin/sh", 0o755),
            (b"skip/keep/k.txt", "k", 0o600),
            (b"skip/not/n.txt", "n", 0o644),
            (b"n\xff/f\xe9", "raw", 0o640),
            (b"z/.env", "SECRET=1", 0o644),
        ];
        for (name, body, mode) in files {
            let p = raw(&src, name);
            fs::write(&p, body).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        for d in ["", "a", "a/b", "skip", "skip/keep", "skip/not", "z"] {
            fs::set_permissions(src.join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(raw(&src, b"n\xff"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::hard_link(src.join("a/run.sh"), src.join("a/b/again.sh")).unwrap();
        fs::hard_link(src.join("a/run.sh"), src.join("zz.sh")).unwrap();
        std::os::unix::fs::symlink("b/one.txt", src.join("a/link")).unwrap();
        std::os::unix::fs::symlink(OsStr::from_bytes(b"n\xff/f\xe9"), src.join("l2")).unwrap();
        let fifo = std::ffi::CString::new(src.join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

        let stat = StatCache::load(t.path().join("stat"));
        let rules = IgnoreRules::from_patterns(["src/skip", "!src/skip/keep/k.txt"]).unwrap();
        let owner = Some(Owner { uid: 7, gid: 8 });
        let o = CollectOptions {
            owner,
            ..options(&ctx, &rules, &stat)
        };
        let c = collect_folder(&src, "app", true, &o).unwrap();
        let h = |s: &str| Digest::of(s.as_bytes());
        let file = |s: &str| FileKind::File {
            size: s.len() as u64,
            hash: h(s),
        };
        let p = |b: &[u8]| TarPath::from_bytes(b.to_vec());
        let want: Vec<(TarPath, FileKind, u32)> = vec![
            (p(b"app"), FileKind::Dir, 0o755),
            (p(b"app/a"), FileKind::Dir, 0o755),
            (p(b"app/a/b"), FileKind::Dir, 0o755),
            (p(b"app/a/b/again.sh"), file("#!/bin/sh"), 0o755),
            (p(b"app/a/b/one.txt"), file("one"), 0o644),
            (p(b"app/a/link"), FileKind::Symlink(p(b"b/one.txt")), 0o777),
            (
                p(b"app/a/run.sh"),
                FileKind::Hardlink(p(b"app/a/b/again.sh")),
                0o755,
            ),
            (p(b"app/l2"), FileKind::Symlink(p(b"n\xff/f\xe9")), 0o777),
            (p(b"app/n\xff"), FileKind::Dir, 0o700),
            (p(b"app/n\xff/f\xe9"), file("raw"), 0o640),
            (p(b"app/skip"), FileKind::Dir, 0o755),
            (p(b"app/skip/keep"), FileKind::Dir, 0o755),
            (p(b"app/skip/keep/k.txt"), file("k"), 0o600),
            (p(b"app/z"), FileKind::Dir, 0o755),
            (p(b"app/z/.env"), file("SECRET=1"), 0o644),
            (
                p(b"app/zz.sh"),
                FileKind::Hardlink(p(b"app/a/b/again.sh")),
                0o755,
            ),
        ];
        let got: Vec<(TarPath, FileKind, u32)> = c
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.kind.clone(), e.mode))
            .collect();
        assert_eq!(got, want);
        assert!(c.entries.iter().all(|e| (e.uid, e.gid) == (7, 8)));
        assert_eq!(c.skipped_special, ["src/pipe"]);
        assert_eq!(c.secrets.len(), 1, "{:?}", c.secrets);
        assert_eq!(
            c.ignored_examples,
            ["src/skip", "src/skip/keep", "src/skip/not"]
        );
        assert_eq!(c.hashed, 5);
        assert_eq!(c.bytes, 3 + 9 + 3 + 1 + 8);
        let key = |entries: &[FileEntry]| {
            let mut k = KeyHasher::new("t", 1);
            key_entries(&mut k, entries);
            k.finish().hex()
        };
        // The key this tree has had since entries are keyed in groups.
        const PINNED: &str = "8f0212732bb2b0538a74f8ff305dcda6eb2f31aaaadecf627728fabbe4ce85b7";
        assert_eq!(key(&c.entries), PINNED);
        // With --chmod every entry but symlinks takes the mode given.
        let o = CollectOptions {
            chmod: Some(0o444),
            ..o
        };
        let again = collect_folder(&src, "app", true, &o).unwrap();
        let modes: Vec<u32> = again.entries.iter().map(|e| e.mode).collect();
        assert!(modes.iter().all(|m| *m == 0o444 || *m == 0o777));
        assert_eq!(modes.iter().filter(|m| **m == 0o777).count(), 2);
        // One file collected on its own.
        let one = collect_file(&src.join("a/run.sh"), "bin/run", &o).unwrap();
        assert_eq!(one.entries.len(), 1);
        assert_eq!(one.entries[0].kind, file("#!/bin/sh"));
        assert_eq!(one.entries[0].path, p(b"bin/run"));
    }

    /// A file the stat cache knows is not read again; one edited without a
    /// size change, its mtime even put back, is.
    #[test]
    fn the_stat_cache_skips_unchanged_files_and_catches_edits() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("src")).unwrap();
        let f = ctx.join("src/a.txt");
        fs::write(&f, "one").unwrap();
        fs::write(ctx.join("src/b.txt"), "two").unwrap();
        // The cache keeps only files not changed in the last two seconds.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let store = Store::open(&t.path().join("store")).unwrap();
        let stat_path = store.stat_path(&ctx);
        let rules = IgnoreRules::from_patterns(Vec::<String>::new()).unwrap();
        let collect = || {
            let stat = StatCache::load(stat_path.clone());
            let o = options(&ctx, &rules, &stat);
            let c = collect_folder(&ctx.join("src"), "app", false, &o).unwrap();
            stat.save(&store).unwrap();
            c
        };
        assert_eq!(collect().hashed, 2);
        let again = collect();
        assert_eq!(again.hashed, 0, "both from the cache");
        let mtime = fs::metadata(&f).unwrap().modified().unwrap();
        fs::write(&f, "ONE").unwrap();
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let edited = collect();
        assert_eq!(edited.hashed, 1);
        assert_eq!(
            edited.entries[0].kind,
            FileKind::File {
                size: 3,
                hash: Digest::of(b"ONE")
            }
        );
    }
}

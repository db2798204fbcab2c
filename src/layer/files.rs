//! File layers: walk a source folder (or one file) under the ignore rules,
//! hash contents (through the stat cache), and write the layer.

use super::compress::{Compression, LayerWriter};
use super::ignore::{IgnoreRules, secret_reason};
use super::tar::{Entry, EntryKind, TarWriter};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, IoContext, Result};
use crate::oci::Owner;
use crate::store::statcache::StatCache;
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{BufWriter, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Version of the file-layer byte format; part of every file step key.
pub const FILES_FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File { size: u64, hash: Digest },
    Symlink(String),
    Hardlink(String),
}

#[derive(Clone, Debug)]
pub struct FileEntry {
    /// Path in the layer: relative, no leading '/'.
    pub path: String,
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Where the bytes come from.
    pub src: PathBuf,
    mtime_ns: i64,
}

impl FileEntry {
    /// A folder made for the layer (not read from disk).
    pub fn folder(path: &str, mode: u32, uid: u64, gid: u64) -> FileEntry {
        FileEntry {
            path: path.to_string(),
            kind: FileKind::Dir,
            mode,
            uid,
            gid,
            src: PathBuf::new(),
            mtime_ns: 0,
        }
    }
}

/// The folders above the entries that the layer does not hold itself
/// (the destination and its parents), top-down.
pub fn folders_above(entries: &[FileEntry]) -> Vec<String> {
    let own: std::collections::HashSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut out = std::collections::BTreeSet::new();
    for e in entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !own.contains(parent) {
                out.insert(parent.to_string());
            }
            p = parent;
        }
    }
    out.into_iter().collect()
}

/// What collecting a source found.
#[derive(Debug, Default)]
pub struct Collected {
    pub entries: Vec<FileEntry>,
    pub ignored: usize,
    pub ignored_examples: Vec<String>,
    pub secrets: Vec<String>,
    pub skipped_special: Vec<String>,
    /// imgbuild's own output or store found inside the source, left out.
    pub skipped_own: Vec<String>,
    pub bytes: u64,
    /// Files whose content had to be read (not in the stat cache).
    pub hashed: usize,
}

pub struct CollectOptions<'a> {
    pub context: &'a Path,
    pub rules: &'a IgnoreRules,
    pub owner: Option<Owner>,
    pub chmod: Option<u32>,
    pub stat: &'a StatCache,
    /// Absolute paths never copied (imgbuild's own output and store).
    pub exclude: &'a [PathBuf],
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

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}/{rest}"),
    }
}

fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// The path of `p` relative to the context, if inside it.
pub fn context_rel(context: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(context).ok()?;
    let s = rel.to_str()?.to_string();
    Some(if s.is_empty() { String::new() } else { s })
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
    let base_rel = context_rel(o.context, src).unwrap_or_default();
    let mut out = Collected::default();
    let mut raw: Vec<Raw> = Vec::new();
    if include_top {
        raw.push((dst.to_string(), base_rel.clone(), src.to_path_buf(), meta));
    }
    let mut w = walk(src, "", &base_rel, dst, o)?;
    out.skipped_own = w.own;
    w.ignored.sort();
    raw.extend(w.raw);
    out.ignored = w.ignored.len();
    out.ignored_examples = w.ignored.iter().take(5).cloned().collect();
    let mut excluded_dirs: HashMap<String, (PathBuf, Metadata)> = w
        .excluded_dirs
        .into_iter()
        .map(|(rel, p, m)| (rel, (p, m)))
        .collect();
    // A re-included file keeps its excluded parent folders.
    if !excluded_dirs.is_empty() {
        let mut need: BTreeSet<String> = BTreeSet::new();
        for (_, rel, _, _) in &raw {
            let mut r = rel.as_str();
            while let Some((parent, _)) = r.rsplit_once('/') {
                if excluded_dirs.contains_key(parent) {
                    need.insert(parent.to_string());
                }
                r = parent;
            }
        }
        for rel in need {
            let (path, meta) = excluded_dirs.remove(&rel).expect("listed above");
            let sub = path
                .strip_prefix(src)
                .expect("below root")
                .to_str()
                .expect("utf-8")
                .to_string();
            raw.push((join(dst, &sub), rel, path, meta));
        }
    }
    finish(raw, o, &mut out)?;
    Ok(out)
}

type Raw = (String, String, PathBuf, Metadata);

#[derive(Default)]
struct Walked {
    raw: Vec<Raw>,
    ignored: Vec<String>,
    /// Excluded folders that a `!` pattern may re-enter.
    excluded_dirs: Vec<(String, PathBuf, Metadata)>,
    own: Vec<String>,
}

/// Walks `dir` (at `sub` below the source folder), folders in parallel.
/// Entries are stat'ed relative to their folder, not by full path.
fn walk(dir: &Path, sub: &str, base_rel: &str, dst: &str, o: &CollectOptions) -> Result<Walked> {
    let rules = o.rules;
    let mut out = Walked::default();
    let mut subdirs: Vec<(PathBuf, String)> = Vec::new();
    let rd =
        fs::read_dir(dir).map_err(|e| Error::input(dir, format!("cannot read folder: {e}")))?;
    for item in rd {
        let e = item.map_err(|e| Error::input(dir, format!("cannot read folder: {e}")))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::input(e.path(), "file name is not valid UTF-8"));
        };
        let meta = e
            .metadata()
            .map_err(|err| Error::input(e.path(), format!("cannot stat: {err}")))?;
        let child = join(sub, name);
        let rel = join(base_rel, &child);
        if !o.exclude.is_empty() && o.exclude.iter().any(|x| *x == e.path()) {
            out.own.push(rel);
            continue;
        }
        if !rules.is_empty() && rules.is_excluded(&rel) {
            if meta.is_dir() && !rules.can_skip_dir(&rel) {
                subdirs.push((e.path(), child));
                out.excluded_dirs.push((rel.clone(), e.path(), meta));
            }
            out.ignored.push(rel);
            continue;
        }
        if meta.is_dir() {
            subdirs.push((e.path(), child.clone()));
        }
        out.raw.push((join(dst, &child), rel, e.path(), meta));
    }
    let nested: Vec<Walked> = subdirs
        .par_iter()
        .map(|(p, child)| walk(p, child, base_rel, dst, o))
        .collect::<Result<_>>()?;
    for n in nested {
        out.raw.extend(n.raw);
        out.ignored.extend(n.ignored);
        out.excluded_dirs.extend(n.excluded_dirs);
        out.own.extend(n.own);
    }
    Ok(out)
}

/// Collects one file placed at layer path `dst`.
pub fn collect_file(src: &Path, dst: &str, o: &CollectOptions) -> Result<Collected> {
    let meta = fs::symlink_metadata(src)
        .map_err(|e| Error::input(src, format!("cannot read source file: {e}")))?;
    if meta.is_dir() {
        return Err(Error::input(src, "is a folder (use source_folder)"));
    }
    let rel = context_rel(o.context, src).unwrap_or_else(|| src.display().to_string());
    let mut out = Collected::default();
    finish(
        vec![(dst.to_string(), rel, src.to_path_buf(), meta)],
        o,
        &mut out,
    )?;
    Ok(out)
}

fn finish(
    mut raw: Vec<(String, String, PathBuf, Metadata)>,
    o: &CollectOptions,
    out: &mut Collected,
) -> Result<()> {
    raw.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    raw.dedup_by(|a, b| a.0 == b.0);
    let (uid, gid) = o.owner.map(|w| (w.uid, w.gid)).unwrap_or((0, 0));
    let mut first_link: HashMap<(u64, u64), String> = HashMap::new();
    let mut entries = Vec::with_capacity(raw.len());
    let mut to_hash = Vec::new();
    for (path, rel, src, meta) in raw {
        let ft = meta.file_type();
        let mode = o.chmod.unwrap_or(meta.permissions().mode() & 0o7777);
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            let target = fs::read_link(&src)
                .map_err(|e| Error::input(&src, format!("cannot read link: {e}")))?;
            let Some(target) = target.to_str() else {
                return Err(Error::input(&src, "symlink target is not valid UTF-8"));
            };
            FileKind::Symlink(target.to_string())
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = first_link.get(&(meta.dev(), meta.ino())) {
                    entries.push(FileEntry {
                        path,
                        kind: FileKind::Hardlink(first.clone()),
                        mode,
                        uid,
                        gid,
                        src,
                        mtime_ns: 0,
                    });
                    continue;
                }
                first_link.insert((meta.dev(), meta.ino()), path.clone());
            }
            if let Some(reason) = secret_reason(&rel) {
                out.secrets.push(format!("{rel} ({reason})"));
            }
            out.bytes += meta.len();
            match o.stat.lookup(&rel, &meta) {
                Some(hash) => FileKind::File {
                    size: meta.len(),
                    hash,
                },
                None => {
                    to_hash.push((entries.len(), rel.clone(), meta.clone()));
                    FileKind::File {
                        size: meta.len(),
                        hash: Digest([0; 32]),
                    }
                }
            }
        } else {
            out.skipped_special.push(rel);
            continue;
        };
        let mtime_ns = mtime_ns(&meta);
        let mode = if ft.is_symlink() { 0o777 } else { mode };
        entries.push(FileEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            src,
            mtime_ns,
        });
    }
    out.hashed = to_hash.len();
    let hashes: Vec<(usize, Digest)> = to_hash
        .par_iter()
        .map(|(i, rel, meta)| {
            let d = hash_file(&entries[*i].src)?;
            o.stat.insert(rel, meta, d);
            Ok((*i, d))
        })
        .collect::<Result<_>>()?;
    for (i, d) in hashes {
        if let FileKind::File { hash, .. } = &mut entries[i].kind {
            *hash = d;
        }
    }
    out.entries = entries;
    Ok(())
}

pub fn hash_file(p: &Path) -> Result<Digest> {
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
    Ok(Digest::from_hasher(h))
}

/// Feeds a file set into a step key.
pub fn key_entries(k: &mut KeyHasher, entries: &[FileEntry]) {
    k.u64(entries.len() as u64);
    for e in entries {
        k.str(&e.path).u64(e.mode as u64).u64(e.uid).u64(e.gid);
        match &e.kind {
            FileKind::Dir => {
                k.str("dir");
            }
            FileKind::File { size, hash } => {
                k.str("file").u64(*size).digest(hash);
            }
            FileKind::Symlink(t) => {
                k.str("symlink").str(t);
            }
            FileKind::Hardlink(t) => {
                k.str("hardlink").str(t);
            }
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
    let lw = tw.finish().ctx(|| "writing the layer".into())?;
    let (w, written) = lw.finish().ctx(|| "compressing the layer".into())?;
    w.into_inner()
        .map_err(|e| Error::io("writing the layer", e.into_error()))?;
    store.commit_blob(tmp, &written.digest)?;
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
    let (tmp, mut tw) = start_layer(store, compression, threads)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    for e in entries {
        let kind = match &e.kind {
            FileKind::Dir => EntryKind::Dir,
            FileKind::File { size, .. } => EntryKind::File { size: *size },
            FileKind::Symlink(t) => EntryKind::Symlink { target: t.clone() },
            FileKind::Hardlink(t) => EntryKind::Hardlink { target: t.clone() },
        };
        let header = Entry {
            path: e.path.clone(),
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime,
        };
        tw.append_header(&header)
            .ctx(|| "writing the layer".into())?;
        if let FileKind::File { size, .. } = e.kind {
            let mut f = File::open(&e.src)
                .map_err(|err| Error::input(&e.src, format!("cannot read: {err}")))?;
            tw.append_data(&mut f, size, &mut buf)
                .map_err(|err| Error::input(&e.src, format!("changed during the build: {err}")))?;
            let after = f
                .metadata()
                .map_err(|err| Error::input(&e.src, err.to_string()))?;
            if mtime_ns(&after) != e.mtime_ns || after.len() != size {
                return Err(Error::input(
                    &e.src,
                    "changed during the build; run the build again",
                ));
            }
            done += size;
            progress(done);
        }
    }
    commit_layer(store, tmp, tw, compression)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_resolution() {
        assert_eq!(resolve_dst("/", "."), "");
        assert_eq!(resolve_dst("/root", "."), "root");
        assert_eq!(resolve_dst("/root", "./src"), "root/src");
        assert_eq!(resolve_dst("/root", "/app/"), "app");
        assert_eq!(resolve_dst("/a/b", "../c"), "a/c");
        assert_eq!(resolve_dst("/", "../../x"), "x");
    }
}

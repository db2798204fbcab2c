//! File layers: walk a source folder (or one file) under the ignore rules,
//! hash contents (through the stat cache), and write the layer.

use super::compress::{Compression, LayerWriter};
use super::ignore::{IgnoreRules, secret_reason};
use super::path::TarPath;
use super::tar::TarWriter;
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, IoContext, Result};
use crate::oci::Owner;
use crate::store::statcache::StatCache;
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{BufWriter, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    /// Where the bytes come from.
    pub src: PathBuf,
    /// The mtime collection saw, for the change check of the writer.
    pub(crate) mtime_ns: i64,
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
            src: PathBuf::new(),
            mtime_ns: 0,
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

fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
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
    let base_rel = context_rel_bytes(o.context, src).unwrap_or_default();
    let dst = TarPath::from(dst);
    let mut out = Collected::default();
    let mut raw: Vec<Raw> = Vec::new();
    if include_top {
        raw.push((dst.clone(), base_rel.clone(), src.to_path_buf(), meta));
    }
    let mut w = walk(src, &TarPath::default(), &base_rel, &dst, o)?;
    out.skipped_own = w.own.iter().map(TarPath::to_string).collect();
    w.ignored.sort();
    raw.extend(w.raw);
    out.ignored = w.ignored.len();
    out.ignored_examples = w.ignored.iter().take(5).map(TarPath::to_string).collect();
    let mut excluded_dirs: HashMap<TarPath, (PathBuf, Metadata)> = w
        .excluded_dirs
        .into_iter()
        .map(|(rel, p, m)| (rel, (p, m)))
        .collect();
    // A re-included file keeps its excluded parent folders.
    if !excluded_dirs.is_empty() {
        let mut need: BTreeSet<TarPath> = BTreeSet::new();
        for (_, rel, _, _) in &raw {
            let mut r = rel.parent();
            while let Some(parent) = r {
                r = parent.parent();
                if excluded_dirs.contains_key(&parent) {
                    need.insert(parent);
                }
            }
        }
        for rel in need {
            let (path, meta) = excluded_dirs.remove(&rel).expect("listed above");
            let sub = TarPath::from_os(path.strip_prefix(src).expect("below root").as_os_str());
            raw.push((dst.join(&sub), rel, path, meta));
        }
    }
    finish(raw, o, &mut out)?;
    Ok(out)
}

/// (path in the layer, path relative to the context, path on disk, stat).
type Raw = (TarPath, TarPath, PathBuf, Metadata);

#[derive(Default)]
struct Walked {
    raw: Vec<Raw>,
    ignored: Vec<TarPath>,
    /// Excluded folders that a `!` pattern may re-enter.
    excluded_dirs: Vec<(TarPath, PathBuf, Metadata)>,
    own: Vec<TarPath>,
}

/// Walks `dir` (at `sub` below the source folder), folders in parallel.
/// Entries are stat'ed relative to their folder, not by full path. Names
/// are taken as the bytes they are; ignore patterns see them as
/// [`TarPath::for_matching`] gives them.
fn walk(
    dir: &Path,
    sub: &TarPath,
    base_rel: &TarPath,
    dst: &TarPath,
    o: &CollectOptions,
) -> Result<Walked> {
    let rules = o.rules;
    let mut out = Walked::default();
    let mut subdirs: Vec<(PathBuf, TarPath)> = Vec::new();
    let rd =
        fs::read_dir(dir).map_err(|e| Error::input(dir, format!("cannot read folder: {e}")))?;
    for item in rd {
        let e = item.map_err(|e| Error::input(dir, format!("cannot read folder: {e}")))?;
        let name = TarPath::from_os(&e.file_name());
        let meta = e
            .metadata()
            .map_err(|err| Error::input(e.path(), format!("cannot stat: {err}")))?;
        let child = sub.join(&name);
        let rel = base_rel.join(&child);
        if !o.exclude.is_empty() && o.exclude.iter().any(|x| *x == e.path()) {
            out.own.push(rel);
            continue;
        }
        if !rules.is_empty() && rules.is_excluded(&rel.for_matching()) {
            if meta.is_dir() && !rules.can_skip_dir(&rel.for_matching()) {
                subdirs.push((e.path(), child));
                out.excluded_dirs.push((rel.clone(), e.path(), meta));
            }
            out.ignored.push(rel);
            continue;
        }
        if meta.is_dir() {
            subdirs.push((e.path(), child.clone()));
        }
        out.raw.push((dst.join(&child), rel, e.path(), meta));
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
    let rel =
        context_rel_bytes(o.context, src).unwrap_or_else(|| TarPath::from_os(src.as_os_str()));
    let mut out = Collected::default();
    finish(
        vec![(TarPath::from(dst), rel, src.to_path_buf(), meta)],
        o,
        &mut out,
    )?;
    Ok(out)
}

fn finish(mut raw: Vec<Raw>, o: &CollectOptions, out: &mut Collected) -> Result<()> {
    raw.sort_by(|a, b| a.0.cmp(&b.0));
    raw.dedup_by(|a, b| a.0 == b.0);
    let (uid, gid) = o.owner.map(|w| (w.uid, w.gid)).unwrap_or((0, 0));
    let mut first_link: HashMap<(u64, u64), TarPath> = HashMap::new();
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
            FileKind::Symlink(TarPath::from_os(target.as_os_str()))
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
            if let Some(reason) = secret_reason(&rel.for_matching()) {
                out.secrets.push(format!("{rel} ({reason})"));
            }
            out.bytes += meta.len();
            match o.stat.lookup(&stat_key(&rel), &meta) {
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
            out.skipped_special.push(rel.to_string());
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
    if !o.hash {
        out.unhashed = to_hash
            .iter()
            .map(|(i, rel, _)| (entries[*i].path.clone(), stat_key(rel).into_owned()))
            .collect();
        out.entries = entries;
        return Ok(());
    }
    out.hashed = to_hash.len();
    let hashes: Vec<(usize, Digest)> = to_hash
        .par_iter()
        .map(|(i, rel, meta)| {
            let d = hash_file(&entries[*i].src)?;
            o.stat.insert(&stat_key(rel), meta, d);
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

/// Feeds a name into a step key: a UTF-8 name as text (the keys of such
/// names are what they were when names were strings), another as bytes,
/// whose field type differs, so the two never collide.
fn key_name(k: &mut KeyHasher, p: &TarPath) {
    match p.to_str() {
        Some(s) => k.str(s),
        None => k.bytes(p.as_bytes()),
    };
}

/// Feeds a file set into a step key.
pub fn key_entries(k: &mut KeyHasher, entries: &[FileEntry]) {
    k.u64(entries.len() as u64);
    for e in entries {
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
        let o = CollectOptions {
            context: &ctx,
            rules: &rules,
            owner: None,
            chmod: None,
            stat: &stat,
            exclude: &[],
            hash: true,
        };
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

    #[test]
    fn utf8_keys_are_what_they_were() {
        // The key of a UTF-8 name is the key of the string: caches made
        // before names were bytes still hit.
        let e = FileEntry {
            path: TarPath::from("app/é"),
            kind: FileKind::Symlink(TarPath::from("t")),
            mode: 0o777,
            uid: 0,
            gid: 0,
            src: PathBuf::new(),
            mtime_ns: 0,
        };
        let mut a = KeyHasher::new("t", 1);
        key_entries(&mut a, &[e]);
        let mut b = KeyHasher::new("t", 1);
        b.u64(1).str("app/é").u64(0o777).u64(0).u64(0);
        b.str("symlink").str("t");
        assert_eq!(a.finish(), b.finish());
    }
}

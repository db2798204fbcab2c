//! `ADD` of a local tar archive: recognised by its content (plain tar, or
//! gzip, bzip2, xz or zstd around one, as Docker does) and unpacked once
//! per archive content into the store, where it is collected like a folder.
//! The owners and modes written in the archive are kept beside the
//! unpacked tree, since an unprivileged build cannot set them on disk.

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrapper {
    Plain,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn wrapper(head: &[u8]) -> Wrapper {
    if head.starts_with(&[0x1f, 0x8b]) {
        Wrapper::Gzip
    } else if head.starts_with(b"BZh") {
        Wrapper::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Wrapper::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Wrapper::Zstd
    } else {
        Wrapper::Plain
    }
}

/// A decompressing reader for what the file holds.
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let f = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r
        .fill_buf()
        .ctx(|| format!("reading {}", path.display()))?
        .to_vec();
    Ok(match wrapper(&head) {
        Wrapper::Plain => Box::new(r),
        Wrapper::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Wrapper::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Wrapper::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        Wrapper::Zstd => {
            Box::new(zstd::Decoder::with_buffer(r).ctx(|| format!("reading {}", path.display()))?)
        }
    })
}

/// Whether the file is a tar archive (possibly compressed): its first
/// header block carries a valid checksum.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut r) = open(path) else {
        return false;
    };
    let mut block = [0u8; 512];
    if r.read_exact(&mut block).is_err() {
        return false;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u64::from_str_radix(s, 8).ok());
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u64
            }
        })
        .sum();
    stored == Some(sum) && block.iter().any(|b| *b != 0)
}

/// What the archive says about one entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

pub struct Unpacked {
    /// The unpacked tree.
    pub root: PathBuf,
    /// Owners and modes by path relative to `root`.
    pub meta: BTreeMap<String, Meta>,
    /// Entries not kept (devices, fifos), by path.
    pub skipped: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct MetaFile {
    meta: BTreeMap<String, Meta>,
    skipped: Vec<String>,
}

/// Unpacks the archive (whose content hash is `sha`) into the store once.
pub fn unpack(store: &Store, path: &Path, sha: &Digest) -> Result<Unpacked> {
    let dir = store.root().join("archives").join(sha.hex());
    let meta_path = dir.join("meta.json");
    if let Ok(bytes) = std::fs::read(&meta_path)
        && let Ok(m) = serde_json::from_slice::<MetaFile>(&bytes)
    {
        crate::util::fs::touch(&dir);
        return Ok(Unpacked {
            root: dir.join("root"),
            meta: m.meta,
            skipped: m.skipped,
        });
    }
    let parent = store.root().join("archives");
    std::fs::create_dir_all(&parent).ctx(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(&parent)
        .ctx(|| format!("creating a folder in {}", parent.display()))?;
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).ctx(|| format!("creating {}", root.display()))?;
    let mut meta = BTreeMap::new();
    let mut skipped = Vec::new();
    let bad = |m: String| Error::input(path, m);
    let mut ar = tar::Archive::new(open(path)?);
    for e in ar
        .entries()
        .map_err(|e| bad(format!("not a readable tar archive: {e}")))?
    {
        let mut e = e.map_err(|e| bad(format!("reading the archive: {e}")))?;
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let Some(rel) = clean(&name) else {
            continue; // The root itself.
        };
        let h = e.header();
        let m = Meta {
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mode: h.mode().unwrap_or(0o644) & 0o7777,
        };
        let kind = h.entry_type();
        let target = safe_parent(&root, &rel).map_err(|m| bad(format!("{name}: {m}")))?;
        // A later entry replaces an earlier one, as tar -x does.
        if let Ok(md) = std::fs::symlink_metadata(&target)
            && !(md.is_dir() && kind.is_dir())
        {
            if md.is_dir() {
                std::fs::remove_dir_all(&target)
            } else {
                std::fs::remove_file(&target)
            }
            .ctx(|| format!("replacing {}", target.display()))?;
        }
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                std::fs::create_dir_all(&target)
                    .ctx(|| format!("creating {}", target.display()))?;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let mut f = std::fs::File::create(&target)
                    .ctx(|| format!("creating {}", target.display()))?;
                std::io::copy(&mut e, &mut f)
                    .map_err(|e| bad(format!("{name}: reading the archive: {e}")))?;
            }
            T::Symlink => {
                let link = e
                    .link_name()
                    .map_err(|e| bad(format!("{name}: {e}")))?
                    .unwrap_or_default();
                std::os::unix::fs::symlink(&link, &target)
                    .ctx(|| format!("creating {}", target.display()))?;
            }
            T::Link => {
                let link = e
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let Some(lrel) = clean(&link) else {
                    return Err(bad(format!("{name}: hard link to the root")));
                };
                let src = safe_parent(&root, &lrel).map_err(|m| bad(format!("{name}: {m}")))?;
                std::fs::hard_link(&src, &target)
                    .map_err(|e| bad(format!("{name}: hard link to {link}: {e}")))?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            _ => {
                skipped.push(rel.clone());
                continue;
            }
        }
        if !kind.is_symlink() {
            use std::os::unix::fs::PermissionsExt;
            // Folders stay writable and readable here; the layer gets `mode`.
            let disk = if kind.is_dir() {
                m.mode | 0o700
            } else {
                (m.mode | 0o600) & 0o777
            };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(disk))
                .ctx(|| format!("setting the mode of {}", target.display()))?;
        }
        meta.insert(rel, m);
    }
    let file = MetaFile { meta, skipped };
    std::fs::write(
        tmp.path().join("meta.json"),
        serde_json::to_vec(&file).expect("serializes"),
    )
    .ctx(|| "writing the archive's metadata".into())?;
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another build unpacked it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(Unpacked {
        root: dir.join("root"),
        meta: file.meta,
        skipped: file.skipped,
    })
}

/// An entry's path relative to the archive's root, a `..` never climbing
/// above it; None for the root itself.
fn clean(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

/// The place of `rel` under `root`, its parent folders created; refuses a
/// path that would pass through a symbolic link.
fn safe_parent(root: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
    let mut cur = root.to_path_buf();
    let comps: Vec<&str> = rel.split('/').collect();
    for c in &comps[..comps.len() - 1] {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("passes through {c:?}, which is not a folder")),
            Err(_) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir(&cur).map_err(|e| format!("creating {c}: {e}"))?;
                // Folders the archive implies but does not list.
                std::fs::set_permissions(&cur, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("creating {c}: {e}"))?;
            }
        }
    }
    cur.push(comps[comps.len() - 1]);
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_clamped_to_the_root() {
        assert_eq!(clean("./a/b"), Some("a/b".into()));
        assert_eq!(clean("../../etc/passwd"), Some("etc/passwd".into()));
        assert_eq!(clean("a/../../b"), Some("b".into()));
        assert_eq!(clean("./"), None);
    }

    #[test]
    fn archives_are_recognised_by_content() {
        let t = tempfile::tempdir().unwrap();
        let tarp = t.path().join("x.bin");
        let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "a.txt", &b"hi"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        assert!(is_archive(&tarp));
        let bytes = std::fs::read(&tarp).unwrap();
        let gz = t.path().join("x.gz");
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut e, &bytes).unwrap();
        e.finish().unwrap();
        assert!(is_archive(&gz));
        let xz = t.path().join("x.xz");
        let mut e = liblzma::write::XzEncoder::new(std::fs::File::create(&xz).unwrap(), 1);
        std::io::Write::write_all(&mut e, &bytes).unwrap();
        e.finish().unwrap();
        assert!(is_archive(&xz));
        let plain = t.path().join("notes.tar.gz");
        std::fs::write(&plain, "not an archive at all").unwrap();
        assert!(!is_archive(&plain), "the name does not make an archive");
    }
}

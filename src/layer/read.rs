//! Reading files out of an image's layers without unpacking them: the
//! base's interpreter scan, and `COPY --chown=NAME` (which needs the
//! stage's /etc/passwd and /etc/group as the layers below it leave them).

use crate::error::{Error, Result};
use crate::oci::Owner;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A layer blob as a tar stream, decompressed by its media type, failing
/// once the stream passes `limit` bytes.
pub fn open_layer(path: &Path, media_type: &str, limit: u64) -> Result<Box<dyn Read>> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::input(path, format!("cannot read layer: {e}")))?;
    decompress(
        std::io::BufReader::with_capacity(1 << 20, f),
        media_type,
        limit,
    )
    .map_err(|e| Error::input(path, format!("cannot read layer: {e}")))
}

/// A reader that fails once more than `limit` bytes came through.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit is enough to know it is passed.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "it decompresses to more than {} bytes, the most a layer may hold \
                     (raise it with --max-layer-size)",
                    self.limit
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The tar stream inside a layer blob, by the blob's media type: gzip, zstd
/// or plain tar, in OCI's names and Docker's (nondistributable and foreign
/// layers too). Any other media type is an error that names it; read as a
/// plain tar it would fail later, or worse, not at all.
pub fn decompress<R: std::io::BufRead + 'static>(
    r: R,
    media_type: &str,
    limit: u64,
) -> std::io::Result<Box<dyn Read>> {
    let tar: Box<dyn Read> = match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            Box::new(flate2::read::MultiGzDecoder::new(r))
        }
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Box::new(zstd::Decoder::with_buffer(r)?)
        }
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Box::new(r),
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unknown layer media type {other:?} (not a gzip, zstd or plain tar layer)"),
            ));
        }
    };
    Ok(Box::new(Capped {
        inner: tar,
        left: limit,
        limit,
    }))
}

/// The contents of `wanted` regular files (relative paths) in the image
/// the layers make, bottom layer first. A file deleted by a whiteout or
/// hidden by an opaque folder above it is absent.
pub fn read_files(
    layers: &[(&Path, &str)],
    wanted: &[&str],
    limit: u64,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut open: Vec<&str> = wanted.to_vec();
    for (path, media_type) in layers.iter().rev() {
        if open.is_empty() {
            break;
        }
        let bad = |e: std::io::Error| Error::input(path, format!("cannot read layer: {e}"));
        let mut ar = tar::Archive::new(open_layer(path, media_type, limit)?);
        let mut here: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut hidden: Vec<&str> = Vec::new();
        for e in ar.entries().map_err(bad)? {
            let mut e = e.map_err(bad)?;
            let raw = e.path_bytes();
            let p = String::from_utf8_lossy(&raw)
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string();
            for w in &open {
                let (dir, name) = w.rsplit_once('/').unwrap_or(("", w));
                let wh_dir = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                if p == format!("{wh_dir}.wh.{name}") || p == format!("{wh_dir}.wh..wh..opq") {
                    hidden.push(w);
                } else if p == *w && e.header().entry_type().is_file() {
                    let mut buf = Vec::new();
                    e.read_to_end(&mut buf).map_err(bad)?;
                    here.insert(w.to_string(), buf);
                    break;
                }
            }
        }
        // What this layer holds wins; what it hides ends the search.
        for w in open.clone() {
            if let Some(b) = here.remove(w) {
                found.insert(w.to_string(), b);
                open.retain(|x| *x != w);
            } else if hidden.contains(&w) {
                open.retain(|x| *x != w);
            }
        }
    }
    Ok(found)
}

/// Like [`read_files`] for layers in the store: top-down, only layers whose
/// index holds a wanted path are read, and what they yield is kept beside
/// the index (`COPY --chown=NAME` reads /etc/passwd this way on every miss).
pub fn read_stored_files(
    store: &crate::store::Store,
    layers: &[(crate::digest::Digest, &str)],
    wanted: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>> {
    let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    let mut found = BTreeMap::new();
    let mut open: Vec<&str> = wanted.to_vec();
    for (digest, media_type) in layers.iter().rev() {
        if open.is_empty() {
            break;
        }
        let ix = LayerIndex::cached(store, digest, media_type)?;
        for w in open.clone() {
            if ix.paths.binary_search_by(|p| p.as_str().cmp(w)).is_ok() {
                let cache = store.root().join("layer-index").join(format!(
                    "{}.{}",
                    digest.hex(),
                    w.replace('/', "_")
                ));
                let bytes = match std::fs::read(&cache) {
                    Ok(b) => Some(b),
                    Err(_) => {
                        let blob = store.blob_path(digest);
                        let got = read_files(
                            &[(blob.as_path(), media_type)],
                            &[w],
                            store.max_layer_size(),
                        )?;
                        if let Some(b) = got.get(w) {
                            store.write_atomic(&cache, b)?;
                        }
                        got.get(w).cloned()
                    }
                };
                // Held but no regular file (a link): as absent.
                if let Some(b) = bytes {
                    found.insert(w.to_string(), b);
                }
                open.retain(|x| *x != w);
            } else if ix.whiteouts.iter().any(|h| under(w, h))
                || ix.opaque.iter().any(|o| w != o && under(w, o))
            {
                open.retain(|x| *x != w);
            }
        }
    }
    Ok(found)
}

/// The paths one layer holds, and what it deletes below it: enough to
/// answer "does this folder exist" without reading the layer again.
#[derive(Debug, Default, PartialEq)]
pub struct LayerIndex {
    /// Every entry's path (no leading "./" or trailing "/"), sorted.
    pub paths: Vec<String>,
    /// `.wh.NAME` entries: the path they delete.
    pub whiteouts: Vec<String>,
    /// Folders marked opaque (`.wh..wh..opq`).
    pub opaque: Vec<String>,
}

impl LayerIndex {
    /// Reads a layer's entries once.
    pub fn scan(path: &Path, media_type: &str, limit: u64) -> Result<LayerIndex> {
        let bad = |e: std::io::Error| Error::input(path, format!("cannot read layer: {e}"));
        let mut ar = tar::Archive::new(open_layer(path, media_type, limit)?);
        let mut ix = LayerIndex::default();
        for e in ar.entries().map_err(bad)? {
            let e = e.map_err(bad)?;
            let raw = e.path_bytes();
            let p = String::from_utf8_lossy(&raw)
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string();
            let (dir, name) = p.rsplit_once('/').unwrap_or(("", &p));
            if name == ".wh..wh..opq" {
                ix.opaque.push(dir.to_string());
            } else if let Some(gone) = name.strip_prefix(".wh.") {
                ix.whiteouts.push(if dir.is_empty() {
                    gone.to_string()
                } else {
                    format!("{dir}/{gone}")
                });
            } else if !p.is_empty() {
                ix.paths.push(p);
            }
        }
        ix.paths.sort();
        Ok(ix)
    }

    /// The index of a stored layer, read from `<store>/layer-index/` or
    /// made once and kept there (a layer's content never changes).
    pub fn cached(
        store: &crate::store::Store,
        digest: &crate::digest::Digest,
        media_type: &str,
    ) -> Result<LayerIndex> {
        let dir = store.root().join("layer-index");
        let file = dir.join(digest.hex());
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut ix = LayerIndex::default();
            for line in text.lines() {
                match line.split_at_checked(2) {
                    Some(("p ", p)) => ix.paths.push(p.to_string()),
                    Some(("w ", p)) => ix.whiteouts.push(p.to_string()),
                    Some(("o ", p)) => ix.opaque.push(p.to_string()),
                    _ => {}
                }
            }
            return Ok(ix);
        }
        let ix = LayerIndex::scan(&store.blob_path(digest), media_type, store.max_layer_size())?;
        let mut text = String::new();
        for (tag, list) in [("p", &ix.paths), ("w", &ix.whiteouts), ("o", &ix.opaque)] {
            for p in list.iter().filter(|p| !p.contains('\n')) {
                text.push_str(tag);
                text.push(' ');
                text.push_str(p);
                text.push('\n');
            }
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        store.write_atomic(&file, text.as_bytes())?;
        Ok(ix)
    }

    /// Whether the layer holds `path` or anything below it.
    fn holds(&self, path: &str) -> bool {
        let exact = self
            .paths
            .binary_search_by(|p| p.as_str().cmp(path))
            .is_ok();
        // Children sort after "path/" (other names like "path-x" may
        // come between "path" and them).
        let prefix = format!("{path}/");
        let j = self.paths.partition_point(|p| p.as_str() < prefix.as_str());
        exact || self.paths.get(j).is_some_and(|p| p.starts_with(&prefix))
    }
}

/// Which of `folders` (relative paths) the image the layers make (bottom
/// first) does not have. A path exists when a layer holds it or anything
/// below it, and stops existing under a whiteout or an opaque folder above.
pub fn missing_folders(layers: &[LayerIndex], folders: &[String]) -> Vec<String> {
    let under =
        |p: &str, dir: &str| dir.is_empty() || p == dir || p.starts_with(&format!("{dir}/"));
    let mut exists = vec![false; folders.len()];
    for ix in layers {
        for (i, f) in folders.iter().enumerate() {
            let gone = ix.whiteouts.iter().any(|h| under(f, h))
                || ix.opaque.iter().any(|o| f != o && under(f, o));
            if gone {
                exists[i] = false;
            }
            if ix.holds(f) {
                exists[i] = true;
            }
        }
    }
    folders
        .iter()
        .zip(exists)
        .filter(|(_, e)| !e)
        .map(|(f, _)| f.clone())
        .collect()
}

/// `--chown=USER[:GROUP]` by names or numbers, against the image's
/// /etc/passwd and /etc/group. Without a group, a user named gets its
/// primary group (as docker and buildah do) and a number is also the gid.
pub fn resolve_owner(spec: &str, passwd: &str, group: &str) -> std::result::Result<Owner, String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // The numeric fields of the line for `name`: (id, primary gid).
    let find = |table: &str, name: &str| -> Option<(u64, Option<u64>)> {
        table.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                let id = f.get(2)?.parse().ok()?;
                Some((id, f.get(3).and_then(|g| g.parse().ok())))
            })?
        })
    };
    let (uid, primary) = match u.parse::<u64>() {
        Ok(n) => (n, Some(n)),
        Err(_) => {
            find(passwd, u).ok_or_else(|| format!("no user {u:?} in the image's /etc/passwd"))?
        }
    };
    let gid = match g {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                find(group, g)
                    .ok_or_else(|| format!("no group {g:?} in the image's /etc/group"))?
                    .0
            }
        },
    };
    Ok(Owner { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\ndev:x:1001:50::/home/dev:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:\napp:x:1000:\n";

    #[test]
    fn owners_by_name_and_number() {
        let r = |s| resolve_owner(s, PASSWD, GROUP);
        assert_eq!(
            r("app").unwrap(),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(r("www-data:staff").unwrap(), Owner { uid: 33, gid: 50 });
        assert_eq!(r("app:50").unwrap(), Owner { uid: 1000, gid: 50 });
        assert_eq!(r("7:staff").unwrap(), Owner { uid: 7, gid: 50 });
        assert_eq!(
            r("dev").unwrap(),
            Owner { uid: 1001, gid: 50 },
            "the user's primary group"
        );
        assert_eq!(r("7").unwrap(), Owner { uid: 7, gid: 7 });
        assert!(r("nobody").unwrap_err().contains("no user \"nobody\""));
        assert!(r("app:wheel").unwrap_err().contains("/etc/group"));
    }

    fn layer(dir: &Path, name: &str, files: &[(&str, Option<&str>)]) -> std::path::PathBuf {
        let p = dir.join(name);
        let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
        for (path, body) in files {
            let body = body.unwrap_or("");
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        b.finish().unwrap();
        p
    }

    #[test]
    fn the_top_layer_wins_and_whiteouts_hide() {
        let t = tempfile::tempdir().unwrap();
        let l1 = layer(
            t.path(),
            "1",
            &[("etc/passwd", Some("one")), ("etc/group", Some("g1"))],
        );
        let l2 = layer(t.path(), "2", &[("./etc/passwd", Some("two"))]);
        let l3 = layer(t.path(), "3", &[("etc/.wh.group", None)]);
        let m = "application/vnd.oci.image.layer.v1.tar";
        let got = read_files(
            &[(&l1, m), (&l2, m)],
            &["etc/passwd", "etc/group"],
            u64::MAX,
        )
        .unwrap();
        assert_eq!(got["etc/passwd"], b"two");
        assert_eq!(got["etc/group"], b"g1");
        let got = read_files(&[(&l1, m), (&l2, m), (&l3, m)], &["etc/group"], u64::MAX).unwrap();
        assert!(got.is_empty());
        let dirs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let want = dirs(&["etc", "srv", "etc/x", "et"]);
        let ix = |p: &Path| LayerIndex::scan(p, m, u64::MAX).unwrap();
        let l4 = layer(
            t.path(),
            "4",
            &[("etc/.wh..wh..opq", None), ("etc/x/y", Some("y"))],
        );
        let l5 = layer(t.path(), "5", &[(".wh.etc", None)]);
        let l6 = layer(t.path(), "6", &[("etc-x/a", Some("a"))]);
        assert_eq!(
            missing_folders(&[ix(&l1)], &want),
            dirs(&["srv", "etc/x", "et"])
        );
        assert_eq!(
            missing_folders(&[ix(&l1), ix(&l4)], &want),
            dirs(&["srv", "et"])
        );
        assert_eq!(
            missing_folders(&[ix(&l1), ix(&l4), ix(&l5)], &want),
            want,
            "a whiteout removes the folder and all below it"
        );
        assert_eq!(
            missing_folders(&[ix(&l6)], &dirs(&["etc"])),
            dirs(&["etc"]),
            "etc-x/a is not below etc"
        );
    }

    /// One chooser for every reader of layer blobs: the three compressions
    /// under each of their names, and an error naming any other type (the
    /// chooser here once read it as plain tar, the sandbox's refused it).
    #[test]
    fn layers_decompress_by_media_type_and_unknown_types_are_named() {
        use std::io::Write as _;
        let tar = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        let read = |bytes: &[u8], mt: &str| -> std::io::Result<Vec<u8>> {
            let mut out = Vec::new();
            decompress(std::io::Cursor::new(bytes.to_vec()), mt, u64::MAX)?
                .read_to_end(&mut out)?;
            Ok(out)
        };
        for mt in [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        ] {
            assert_eq!(read(&gz, mt).unwrap(), tar, "{mt}");
        }
        for mt in [
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        ] {
            assert_eq!(read(&zst, mt).unwrap(), tar, "{mt}");
        }
        for mt in [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            "application/vnd.docker.image.rootfs.diff.tar",
        ] {
            assert_eq!(read(&tar, mt).unwrap(), tar, "{mt}");
        }
        for mt in [
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/octet-stream",
            "",
        ] {
            let e = read(&tar, mt).unwrap_err().to_string();
            assert!(
                e.contains(&format!("unknown layer media type {mt:?}")),
                "{e}"
            );
        }
        // Through the path-based reader too, naming the file.
        let d = tempfile::tempdir().unwrap();
        let p = layer(d.path(), "l.tar", &[("f", Some("hi"))]);
        let Err(e) = open_layer(&p, "application/x-tar", u64::MAX) else {
            panic!("an unknown media type was read");
        };
        let e = e.to_string();
        assert!(
            e.contains("l.tar") && e.contains("\"application/x-tar\""),
            "{e}"
        );
        assert!(read_files(&[(p.as_path(), "application/x-tar")], &["f"], u64::MAX).is_err());
    }

    /// A layer that decompresses past the limit fails with an error that
    /// names the limit and its flag; one exactly at the limit reads whole.
    #[test]
    fn a_layer_larger_than_the_limit_is_refused() {
        use std::io::Write as _;
        let big = vec![0u8; 1 << 20];
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&big).unwrap();
            e.finish().unwrap()
        };
        assert!(gz.len() < 1 << 14, "a bomb: {} bytes in", gz.len());
        let mt = "application/vnd.oci.image.layer.v1.tar+gzip";
        let read = |limit: u64| -> std::io::Result<usize> {
            let mut out = Vec::new();
            decompress(std::io::Cursor::new(gz.clone()), mt, limit)?.read_to_end(&mut out)?;
            Ok(out.len())
        };
        assert_eq!(read(1 << 20).unwrap(), 1 << 20);
        let e = read((1 << 20) - 1).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let e = e.to_string();
        assert!(
            e.contains("more than 1048575 bytes") && e.contains("--max-layer-size"),
            "{e}"
        );
    }
}

//! Pushing an image that is already built: an OCI layout, an oci-archive
//! or a docker-archive, its blobs verified into the store first.

use crate::error::{Error, Result};
use crate::oci::types::*;
use crate::registry::{self, Client, PushStats, Reference};
use crate::store::Store;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Pushes `source` (`oci:DIR[:TAG]`, `oci-archive:FILE` or
/// `docker-archive:FILE`) to `target` with `jobs` parallel uploads. Returns
/// the pushed manifest's (or index's) descriptor and what the push did.
pub fn push(
    source: &str,
    target: &Reference,
    store: &Store,
    client: &Client,
    jobs: usize,
) -> Result<(Descriptor, PushStats)> {
    // In the store's temp folder: what a killed push leaves goes with the
    // next command.
    let tmp = tempfile::Builder::new()
        .prefix("push-")
        .tempdir_in(store.tmp_dir())
        .map_err(|e| Error::io("creating a temp folder", e))?;
    let (kind, rest) = source.split_once(':').ok_or_else(|| {
        Error::Usage(format!(
            "source {:?} is not oci:DIR[:TAG], oci-archive:FILE or docker-archive:FILE",
            source
        ))
    })?;
    // Where the image is read from: a layout, or an archive unpacked.
    enum From {
        Layout(PathBuf, Option<String>),
        Docker(PathBuf),
    }
    let from = match kind {
        "oci" => {
            let (dir, tag) = parse_layout_ref(rest);
            From::Layout(dir, tag)
        }
        "oci-archive" | "docker-archive" => {
            let f = std::fs::File::open(rest)
                .map_err(|e| Error::input(rest, format!("cannot read: {e}")))?;
            let mut ar = tar::Archive::new(f);
            for entry in ar
                .entries()
                .map_err(|e| Error::input(rest, format!("not a tar archive: {e}")))?
            {
                let mut entry =
                    entry.map_err(|e| Error::input(rest, format!("not a tar archive: {e}")))?;
                // unpack_in refuses paths that leave the folder.
                entry
                    .unpack_in(tmp.path())
                    .map_err(|e| Error::input(rest, format!("cannot unpack: {e}")))?;
            }
            if kind == "oci-archive"
                || tmp.path().join("index.json").is_file()
                    && !tmp.path().join("manifest.json").is_file()
            {
                From::Layout(tmp.path().to_path_buf(), None)
            } else {
                From::Docker(tmp.path().to_path_buf())
            }
        }
        other => {
            return Err(Error::Usage(format!(
                "unknown source type {other:?} (oci, oci-archive, docker-archive)"
            )));
        }
    };
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    let mut tries = 0;
    loop {
        let (top, blobs) = match &from {
            From::Layout(dir, tag) => import_layout(store, dir, tag.as_deref())?,
            From::Docker(dir) => import_docker_archive(store, dir, rest)?,
        };
        match registry::push(
            client,
            store,
            &registry::PushRequest {
                cached: &Default::default(),
                target,
                tags: std::slice::from_ref(&tag),
                top: &top,
                blobs: &blobs,
                base: None,
            },
            jobs,
        ) {
            // A blob the store held was bad (and is removed now): it is
            // imported again from the source, checked, and pushed.
            Err(Error::CorruptBlob { .. }) if tries < 3 => tries += 1,
            r => return r.map(|st| (top, st)),
        }
    }
}

/// The part after `oci:` of `oci:DIR[:TAG]` → the folder and the tag, if any.
pub fn parse_layout_ref(rest: &str) -> (PathBuf, Option<String>) {
    match rest.rsplit_once(':') {
        Some((d, t)) if !t.contains('/') && !d.is_empty() => {
            (PathBuf::from(d), Some(t.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    }
}

/// Collects every blob of the image tagged in a layout, importing (and
/// verifying) them into the store. Returns the top descriptor and the blobs.
fn import_layout(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
) -> Result<(Descriptor, Vec<Descriptor>)> {
    use crate::oci::layout::{find_tag, read_json};
    let mut top = find_tag(dir, tag)?;
    top.annotations = None;
    let mut blobs: Vec<Descriptor> = Vec::new();
    let manifests: Vec<Descriptor> =
        if top.media_type == MT_INDEX || top.media_type == MT_DOCKER_LIST {
            let ix: Index = read_json(dir, &top.digest)?;
            crate::exec::import_blob(store, dir, &top)?;
            blobs.push(top.clone());
            ix.manifests
        } else {
            vec![top.clone()]
        };
    for m in manifests {
        let manifest: Manifest = read_json(dir, &m.digest)?;
        for d in manifest
            .layers
            .iter()
            .chain(std::iter::once(&manifest.config))
        {
            crate::exec::import_blob(store, dir, d)?;
            if !blobs.iter().any(|b| b.digest == d.digest) {
                blobs.push(d.clone());
            }
        }
        crate::exec::import_blob(store, dir, &m)?;
        blobs.push(Descriptor {
            artifact_type: None,
            platform: None,
            annotations: None,
            ..m
        });
    }
    Ok((top, blobs))
}

/// A docker-archive (manifest.json): its config and layers become a Docker
/// v2 schema 2 manifest, keeping the config's bytes and so the image ID.
fn import_docker_archive(
    store: &Store,
    dir: &Path,
    name: &str,
) -> Result<(Descriptor, Vec<Descriptor>)> {
    let bad = |m: &str| Error::input(name, format!("not a docker-archive: {m}"));
    let text = std::fs::read(dir.join("manifest.json")).map_err(|_| bad("no manifest.json"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|_| bad("manifest.json is not JSON"))?;
    let entries = v
        .as_array()
        .ok_or_else(|| bad("manifest.json is not a list"))?;
    if entries.len() != 1 {
        return Err(bad("it holds several images; push them one at a time"));
    }
    let e = &entries[0];
    let put = |rel: &str, media_type: &str| -> Result<Descriptor> {
        let p = dir.join(rel);
        if !p.starts_with(dir) || rel.contains("..") {
            return Err(bad("a path leaves the archive"));
        }
        let d = crate::layer::files::hash_file(&p)?;
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        let mut head = [0u8; 2];
        let _ = std::fs::File::open(&p).and_then(|mut f| f.read_exact(&mut head));
        let media_type = if media_type.is_empty() {
            if head == [0x1f, 0x8b] {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            } else {
                "application/vnd.docker.image.rootfs.diff.tar"
            }
        } else {
            media_type
        };
        let desc = Descriptor {
            artifact_type: None,
            media_type: media_type.into(),
            digest: d,
            size,
            platform: None,
            annotations: None,
        };
        let tmp = store.temp_file()?;
        std::fs::copy(&p, tmp.path()).map_err(|e| Error::io("copying a blob", e))?;
        store.commit_blob(tmp, &d)?;
        Ok(desc)
    };
    let config = put(
        e["Config"].as_str().ok_or_else(|| bad("no Config"))?,
        MT_DOCKER_CONFIG,
    )?;
    let mut layers = Vec::new();
    for l in e["Layers"].as_array().ok_or_else(|| bad("no Layers"))? {
        layers.push(put(
            l.as_str().ok_or_else(|| bad("a layer path is not text"))?,
            "",
        )?);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MT_DOCKER_MANIFEST.into()),
        config: config.clone(),
        layers: layers.clone(),
        annotations: None,
    };
    let bytes = to_bytes(&manifest);
    let d = store.put_blob_bytes(&bytes)?;
    let top = Descriptor {
        artifact_type: None,
        media_type: MT_DOCKER_MANIFEST.into(),
        digest: d,
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
    };
    let mut blobs = layers;
    blobs.push(config);
    blobs.push(top.clone());
    Ok((top, blobs))
}

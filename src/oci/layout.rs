//! Reading OCI image layouts (bases given as `oci:DIR[:TAG]`, `inspect`).

use super::Platform;
use super::types::*;
use crate::digest::Digest;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One platform's image read from a layout.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    pub dir: PathBuf,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

pub fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

pub fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, d: &Digest) -> Result<T> {
    let p = blob_path(dir, d);
    let bytes =
        std::fs::read(&p).map_err(|e| Error::input(&p, format!("cannot read blob: {e}")))?;
    if Digest::of(&bytes) != *d {
        return Err(Error::input(
            &p,
            format!("blob does not match its digest {d}"),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(&p, format!("not a valid OCI document: {e}")))
}

pub fn read_index(dir: &Path) -> Result<Index> {
    let p = dir.join("index.json");
    let bytes =
        std::fs::read(&p).map_err(|e| Error::input(&p, format!("not an OCI image layout: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::input(&p, format!("invalid index.json: {e}")))
}

/// Finds the descriptor tagged `tag` (or the only one when no tag is given).
pub fn find_tag(dir: &Path, tag: Option<&str>) -> Result<Descriptor> {
    let index = read_index(dir)?;
    let names = |d: &Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(ANN_REF_NAME))
            .cloned()
    };
    match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| names(d).as_deref() == Some(t))
            .cloned()
            .ok_or_else(|| {
                let have: Vec<String> = index.manifests.iter().filter_map(names).collect();
                Error::input(
                    dir,
                    format!(
                        "no image tagged {t:?} (tags: {})",
                        if have.is_empty() {
                            "none".into()
                        } else {
                            have.join(", ")
                        }
                    ),
                )
            }),
        // Artifacts about an image (attestations) are not images.
        None => match index
            .manifests
            .iter()
            .filter(|d| d.artifact_type.is_none())
            .cloned()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => Ok(one.clone()),
            [] => Err(Error::input(dir, "the layout holds no image")),
            _ => Err(Error::input(
                dir,
                "the layout holds several images: name one with oci:DIR:TAG",
            )),
        },
    }
}

fn platform_matches(p: &PlatformJson, want: &Platform) -> bool {
    p.os == want.os
        && p.architecture == want.arch
        && (want.variant.is_none() || p.variant == want.variant)
}

/// Reads the image for `platform` from a layout.
pub fn read_image(dir: &Path, tag: Option<&str>, platform: &Platform) -> Result<LayoutImage> {
    let mut desc = find_tag(dir, tag)?;
    if desc.media_type == MT_INDEX || desc.media_type == MT_DOCKER_LIST {
        let index: Index = read_json(dir, &desc.digest)?;
        let found = index
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| platform_matches(p, platform))
            })
            .cloned();
        desc = found.ok_or_else(|| {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| {
                    d.platform
                        .as_ref()
                        .map(|p| format!("{}/{}", p.os, p.architecture))
                })
                .collect();
            Error::input(
                dir,
                format!(
                    "no {platform} image in the index (it has: {})",
                    have.join(", ")
                ),
            )
        })?;
    }
    let manifest: Manifest = read_json(dir, &desc.digest)?;
    let config: ImageConfig = read_json(dir, &manifest.config.digest)?;
    if config.os != platform.os || config.architecture != platform.arch {
        return Err(Error::input(
            dir,
            format!(
                "the image is {}/{}, but {platform} was asked for",
                config.os, config.architecture
            ),
        ));
    }
    Ok(LayoutImage {
        dir: dir.to_path_buf(),
        manifest_digest: desc.digest,
        manifest,
        config,
    })
}

/// A JSON description of a tagged image in a layout (for `inspect`).
pub fn describe(dir: &Path, tag: Option<&str>) -> Result<serde_json::Value> {
    let desc = find_tag(dir, tag)?;
    let manifests: Vec<(Option<PlatformJson>, Digest)> =
        if desc.media_type == MT_INDEX || desc.media_type == MT_DOCKER_LIST {
            let index: Index = read_json(dir, &desc.digest)?;
            index
                .manifests
                .iter()
                .map(|d| (d.platform.clone(), d.digest))
                .collect()
        } else {
            vec![(None, desc.digest)]
        };
    let mut out = Vec::new();
    for (p, d) in manifests {
        let m: Manifest = read_json(dir, &d)?;
        let c: ImageConfig = read_json(dir, &m.config.digest)?;
        let platform = p
            .map(|p| {
                format!(
                    "{}/{}{}",
                    p.os,
                    p.architecture,
                    p.variant.map(|v| format!("/{v}")).unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("{}/{}", c.os, c.architecture));
        out.push(serde_json::json!({
            "platform": platform,
            "digest": d,
            "config_digest": m.config.digest,
            "layers": m.layers,
            "annotations": m.annotations,
            "config": c,
        }));
    }
    Ok(serde_json::json!({
        "media_type": desc.media_type,
        "digest": desc.digest,
        "manifests": out,
    }))
}

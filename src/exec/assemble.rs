//! An image's documents: each platform's config and manifest, the index
//! over several, and the list of blobs the image is made of; the media
//! types (OCI's or Docker's) and annotations they carry.

use super::BuildOptions;
use super::common::Stack;
use crate::error::{Error, Result};
use crate::layer::compress::MEDIA_TYPE_GZIP;
use crate::oci::Platform;
use crate::oci::types::*;
use crate::output::{ImageOut, PlatformOut};
use crate::plan::ImagePlan;
use crate::plan::record::ImageRecord;
use crate::registry::Reference;
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::Path;

/// The document media types an image is written with.
struct Types {
    manifest: &'static str,
    config: &'static str,
    index: &'static str,
}

const OCI_TYPES: Types = Types {
    manifest: MT_MANIFEST,
    config: MT_CONFIG,
    index: MT_INDEX,
};
const DOCKER_TYPES: Types = Types {
    manifest: MT_DOCKER_MANIFEST,
    config: MT_DOCKER_CONFIG,
    index: MT_DOCKER_LIST,
};

/// The Docker schema 2 name of a layer media type (same bytes).
fn docker_layer_type(mt: &str) -> Result<String> {
    match mt {
        MEDIA_TYPE_GZIP | "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            Ok("application/vnd.docker.image.rootfs.diff.tar.gzip".into())
        }
        crate::layer::compress::MEDIA_TYPE_TAR | "application/vnd.docker.image.rootfs.diff.tar" => {
            Ok("application/vnd.docker.image.rootfs.diff.tar".into())
        }
        other => Err(Error::Usage(format!(
            "Docker media types cannot describe {other} layers: build with --compression gzip or keep OCI media types"
        ))),
    }
}

/// Platform `p`'s config and manifest, written to the store.
pub(super) fn platform(
    store: &Store,
    o: &BuildOptions,
    p: &Platform,
    stack: Stack,
    created: &str,
    git: &BTreeMap<String, String>,
) -> Result<PlatformOut> {
    let Stack {
        mut cfg,
        mut layers,
        mut outs,
        mut annotations,
    } = stack;
    let created = created.to_string();
    let types = if o.docker_media_types {
        &DOCKER_TYPES
    } else {
        &OCI_TYPES
    };
    if o.docker_media_types {
        for l in layers.iter_mut() {
            l.media_type = docker_layer_type(&l.media_type)?;
        }
        for l in outs.iter_mut() {
            l.media_type = docker_layer_type(&l.media_type)?;
        }
    }
    cfg.created = Some(created.clone());
    cfg.architecture = p.arch.clone();
    cfg.os = p.os.clone();
    cfg.variant = p.variant.clone();
    let cfg_bytes = to_bytes(&cfg);
    let config_digest = store.put_blob_bytes(&cfg_bytes)?;
    annotations.insert(ANN_CREATED.into(), created.clone());
    annotations.extend(git.clone());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(types.manifest.into()),
        config: Descriptor {
            artifact_type: None,
            media_type: types.config.into(),
            digest: config_digest,
            size: cfg_bytes.len() as u64,
            platform: None,
            annotations: None,
        },
        layers,
        // Docker schema 2 has no annotations.
        annotations: (!o.docker_media_types).then_some(annotations),
    };
    let m_bytes = to_bytes(&manifest);
    let manifest_digest = store.put_blob_bytes(&m_bytes)?;
    Ok(PlatformOut {
        platform: p.to_string(),
        manifest_digest,
        config_digest,
        layers: outs,
        manifest: Descriptor {
            artifact_type: None,
            media_type: types.manifest.into(),
            digest: manifest_digest,
            size: m_bytes.len() as u64,
            platform: Some(platform_json(p)),
            annotations: None,
        },
        config: cfg,
    })
}

/// The image over its platforms: the index when there are several, the
/// blobs it is made of, and the build record that `plan` explains misses
/// from and `cache prune` keeps blobs by.
pub(super) fn image(
    store: &Store,
    o: &BuildOptions,
    img: &ImagePlan,
    platforms: Vec<PlatformOut>,
    created: &str,
    base_ref: Option<Reference>,
) -> Result<ImageOut> {
    let created = created.to_string();
    let top = if platforms.len() == 1 {
        Descriptor {
            artifact_type: None,
            platform: None,
            ..platforms[0].manifest.clone()
        }
    } else {
        let types = if o.docker_media_types {
            &DOCKER_TYPES
        } else {
            &OCI_TYPES
        };
        let index = Index {
            schema_version: 2,
            media_type: Some(types.index.into()),
            manifests: platforms.iter().map(|p| p.manifest.clone()).collect(),
            annotations: (!o.docker_media_types)
                .then(|| BTreeMap::from([(ANN_CREATED.to_string(), created.clone())])),
        };
        let bytes = to_bytes(&index);
        let d = store.put_blob_bytes(&bytes)?;
        Descriptor {
            artifact_type: None,
            media_type: types.index.into(),
            digest: d,
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
        }
    };
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut push = |d: Descriptor| {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d);
        }
    };
    for p in &platforms {
        for l in &p.layers {
            push(Descriptor {
                artifact_type: None,
                media_type: l.media_type.clone(),
                digest: l.digest,
                size: l.size,
                platform: None,
                annotations: None,
            });
        }
        let cfg_size = std::fs::metadata(store.blob_path(&p.config_digest))
            .map(|m| m.len())
            .unwrap_or(0);
        push(Descriptor {
            artifact_type: None,
            media_type: if o.docker_media_types {
                MT_DOCKER_CONFIG
            } else {
                MT_CONFIG
            }
            .into(),
            digest: p.config_digest,
            size: cfg_size,
            platform: None,
            annotations: None,
        });
        push(Descriptor {
            artifact_type: None,
            platform: None,
            ..p.manifest.clone()
        });
    }
    if platforms.len() > 1 {
        push(top.clone());
    }
    // Remember what this build used, for `plan` explanations and prune.
    ImageRecord::save(
        store,
        &img.record_id,
        &img.steps,
        blobs.iter().map(|b| b.digest).collect(),
    )?;
    Ok(ImageOut {
        id: img.id.clone(),
        reference: img.reference(),
        tag: img.tag.clone(),
        top,
        platforms,
        blobs,
        base_ref,
    })
}

pub fn platform_json(p: &Platform) -> PlatformJson {
    PlatformJson {
        architecture: p.arch.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
    }
}

/// `org.opencontainers.image.source`/`revision` when the context is a git checkout.
pub fn git_annotations(context: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(start) = std::fs::canonicalize(context) else {
        return out;
    };
    let Some(git) = start
        .ancestors()
        .map(|a| a.join(".git"))
        .find(|g| g.is_dir())
    else {
        return out;
    };
    if let Some(rev) = git_head(&git) {
        out.insert("org.opencontainers.image.revision".into(), rev);
    }
    if let Some(url) = git_origin(&git) {
        out.insert("org.opencontainers.image.source".into(), url);
    }
    out
}

fn git_head(git: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref: ") else {
        return (head.len() == 40).then(|| head.to_string());
    };
    if let Ok(s) = std::fs::read_to_string(git.join(r)) {
        return Some(s.trim().to_string());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == r && sha.len() == 40).then(|| sha.to_string())
    })
}

fn git_origin(git: &Path) -> Option<String> {
    let cfg = std::fs::read_to_string(git.join("config")).ok()?;
    let mut in_origin = false;
    for line in cfg.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_origin = l == "[remote \"origin\"]";
        } else if in_origin && let Some(v) = l.strip_prefix("url") {
            let url = v.trim_start().strip_prefix('=')?.trim();
            // Never publish credentials embedded in a remote URL.
            return Some(crate::net::redact(url));
        }
    }
    None
}

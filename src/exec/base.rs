//! The base's layers, placed first on each platform's image: imported
//! from an OCI layout, fetched from a registry when something here needs
//! their bytes, or taken from another image of this build.

use super::BuildOptions;
use super::common::{Built, Stack};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::compress::MEDIA_TYPE_GZIP;
use crate::oci::types::*;
use crate::output::{ImageOut, LayerOut};
use crate::plan::{Action, BasePlan, ImagePlan};
use crate::store::Store;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Platform `pi`'s image before the image's own steps: the base's
/// configuration, layers and annotations.
pub(super) fn stack(
    store: &Store,
    o: &BuildOptions,
    img: &ImagePlan,
    pi: usize,
    images: &[Option<ImageOut>],
    built: &Built,
) -> Result<Stack> {
    let p = &img.platforms[pi];
    let mut cfg = img.base_configs[pi].clone();
    let mut layers: Vec<Descriptor> = Vec::new();
    let mut outs: Vec<LayerOut> = Vec::new();
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    match &img.base {
        BasePlan::Scratch => {
            cfg.rootfs = RootFs {
                kind: "layers".into(),
                diff_ids: vec![],
            };
            cfg.history.clear();
        }
        BasePlan::Layout {
            reference,
            images: bases,
        } => {
            let b = &bases[pi];
            if b.manifest.layers.len() != b.config.rootfs.diff_ids.len() {
                return Err(Error::input(
                    &b.dir,
                    "base manifest and config disagree on the number of layers",
                ));
            }
            for l in &b.manifest.layers {
                import_blob(store, &b.dir, l)?;
            }
            add_base(
                &b.manifest,
                &b.config,
                reference,
                &b.manifest_digest,
                &mut layers,
                &mut outs,
                &mut annotations,
            );
        }
        BasePlan::Remote {
            reference,
            images: bases,
        } => {
            let b = &bases[pi];
            // A RUN step that has to run needs the base's bytes.
            let runs = img.steps.iter().any(|s| {
                s.applies_to(pi)
                    && matches!(s.action, Action::Run(_))
                    && s.cached.is_none()
                    && built.get(&s.key).is_none()
            });
            let fetched: Vec<()> = b
                .manifest
                .layers
                .par_iter()
                .map(|l| match (o.fetch_base_layers || runs, o.client) {
                    (false, _) => Ok(()),
                    (true, Some(c)) => {
                        // A stored layer of another size is removed here,
                        // and so fetched again.
                        store.blob_ok(&l.digest, l.size);
                        c.fetch_blob(reference, &l.digest, store)
                    }
                    (true, None) => Err(Error::Other(
                        "registry base layers need registry access".into(),
                    )),
                })
                .collect::<Result<_>>()?;
            drop(fetched);
            add_base(
                &b.manifest,
                &b.config,
                &reference.to_string(),
                &b.manifest_digest,
                &mut layers,
                &mut outs,
                &mut annotations,
            );
        }
        BasePlan::Image(bi) => {
            let base = images[*bi]
                .as_ref()
                .expect("a base is built before its dependants");
            let bp = base
                .platforms
                .iter()
                .find(|x| x.platform == p.to_string())
                .expect("checked at plan time");
            cfg = bp.config.clone();
            for l in &bp.layers {
                layers.push(Descriptor {
                    artifact_type: None,
                    media_type: l.media_type.clone(),
                    digest: l.digest,
                    size: l.size,
                    platform: None,
                    annotations: None,
                });
                outs.push(LayerOut {
                    cache: "base",
                    step: format!("base image {}", base.id),
                    ..l.clone()
                });
            }
            annotations.insert(
                "org.opencontainers.image.base.name".into(),
                base.reference.clone(),
            );
            annotations.insert(
                "org.opencontainers.image.base.digest".into(),
                bp.manifest_digest.oci(),
            );
        }
    }
    Ok(Stack {
        cfg,
        layers,
        outs,
        annotations,
    })
}

/// Puts a base image's layers first and names the base in the annotations.
fn add_base(
    manifest: &Manifest,
    config: &ImageConfig,
    reference: &str,
    manifest_digest: &Digest,
    layers: &mut Vec<Descriptor>,
    outs: &mut Vec<LayerOut>,
    annotations: &mut BTreeMap<String, String>,
) {
    for (l, diff) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let l = Descriptor {
            artifact_type: None,
            media_type: oci_layer_type(&l.media_type),
            annotations: None,
            platform: None,
            ..l.clone()
        };
        outs.push(LayerOut {
            digest: l.digest,
            diff_id: *diff,
            size: l.size,
            media_type: l.media_type.clone(),
            cache: "base",
            step: format!("base {reference}"),
        });
        layers.push(l);
    }
    annotations.insert(
        "org.opencontainers.image.base.name".into(),
        reference.to_string(),
    );
    annotations.insert(
        "org.opencontainers.image.base.digest".into(),
        manifest_digest.oci(),
    );
}

/// Docker's layer media types name the same bytes as OCI's.
fn oci_layer_type(mt: &str) -> String {
    match mt {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MEDIA_TYPE_GZIP.into(),
        "application/vnd.docker.image.rootfs.diff.tar" => {
            crate::layer::compress::MEDIA_TYPE_TAR.into()
        }
        other => other.into(),
    }
}

/// Brings a base layer from a local layout into the store: a copy, whose
/// bytes are checked against the digest as they are copied (never a hard
/// link, so the store and the layout never change each other).
pub fn import_blob(store: &Store, dir: &Path, d: &Descriptor) -> Result<()> {
    if store.blob_ok(&d.digest, d.size) {
        return Ok(());
    }
    let src = crate::oci::layout::blob_path(dir, &d.digest);
    let meta = std::fs::metadata(&src)
        .map_err(|e| Error::input(&src, format!("base layer missing: {e}")))?;
    if meta.len() != d.size {
        return Err(Error::input(
            &src,
            format!(
                "base layer is {} bytes, its descriptor says {}",
                meta.len(),
                d.size
            ),
        ));
    }
    // Verify every byte before it enters the store under its digest.
    let mut tmp = store.temp_file()?;
    let mut f = std::fs::File::open(&src).ctx(|| format!("reading {}", src.display()))?;
    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
    let (actual, _) = crate::store::verify::hash_copy(&mut f, &mut w)
        .and_then(|r| std::io::Write::flush(&mut w).map(|_| r))
        .ctx(|| format!("copying {}", src.display()))?;
    drop(w);
    if actual != d.digest {
        return Err(Error::input(
            &src,
            format!(
                "base layer does not match its digest {} (it hashes to {actual})",
                d.digest
            ),
        ));
    }
    store.commit_blob(tmp, &d.digest)
}

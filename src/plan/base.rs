//! The base an image stands on: nothing, an OCI layout, another image of
//! the definition, or a registry image. Only manifests and configs are
//! read here; base layers are fetched by execution when a step needs them.

use super::common::unsupported;
use super::{BasePlan, Env, ImagePlan, final_config, python};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Result};
use crate::oci::Platform;
use crate::oci::layout;
use crate::oci::types::ImageConfig;
use crate::registry::{self, Reference};
use crate::sandbox::DEFAULT_PATH;
use crate::spec::{Base, ImageDef};

/// The base and its config per platform; what it is feeds `key`.
pub(super) fn plan_base(
    env: &Env,
    img: &ImageDef,
    done: &[ImagePlan],
    key: &mut KeyHasher,
) -> Result<(BasePlan, Vec<ImageConfig>)> {
    let Env {
        def,
        store,
        o,
        client,
        ..
    } = *env;
    Ok(match &img.base {
        Base::Dockerfile { .. } => unreachable!("replaced by its stages when loaded"),
        Base::DebianNative(_) => {
            key.str("debian-native");
            // The layers come as the image's first steps (below).
            let configs = img
                .platforms
                .iter()
                .map(|p| {
                    let mut c = base_config(p);
                    c.config.env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
                    c.config.cmd = Some(vec!["bash".into()]);
                    c
                })
                .collect();
            (BasePlan::Scratch, configs)
        }
        Base::Scratch => {
            key.str("scratch");
            (
                BasePlan::Scratch,
                img.platforms.iter().map(base_config).collect(),
            )
        }
        Base::Layout { dir, tag } => {
            // The base as written, not the path it was reached by: the
            // base.name annotation must not depend on the working folder.
            let written = format!(
                "oci:{}{}",
                dir.display(),
                tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
            );
            // Relative to the definition's own folder.
            let dir = if dir.is_absolute() {
                dir.clone()
            } else {
                def.dir.join(dir)
            };
            let mut imgs = Vec::new();
            for p in &img.platforms {
                let li =
                    layout::read_image(&dir, tag.as_deref(), p).map_err(|e| Error::InputAt {
                        loc: Box::new(img.base_loc.clone()),
                        message: e.to_string(),
                    })?;
                key.str("layout").digest(&li.manifest_digest);
                imgs.push(li);
            }
            let configs = imgs.iter().map(|li| li.config.clone()).collect();
            (
                BasePlan::Layout {
                    reference: written,
                    images: imgs,
                },
                configs,
            )
        }
        Base::Image(other) => {
            let bi = done
                .iter()
                .position(|p| &p.id == other)
                .expect("bases are planned first");
            let b = &done[bi];
            let mut configs = Vec::new();
            for p in &img.platforms {
                let Some(pi) = b.platforms.iter().position(|x| x == p) else {
                    return Err(Error::Definition {
                        loc: Box::new(img.base_loc.clone()),
                        message: format!(
                            "base image {other:?} is not built for {p} (it has: {})",
                            b.platforms
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                };
                configs.push(final_config(b, pi));
            }
            key.str("image").digest(&b.content_key);
            (BasePlan::Image(bi), configs)
        }
        Base::Debian | Base::Ref(_) => {
            let written = match &img.base {
                Base::Ref(r) => r.clone(),
                _ => format!(
                    "python:{}-slim-bookworm",
                    img.python.as_deref().unwrap_or("3.12")
                ),
            };
            let reference = Reference::parse(&written).map_err(|m| Error::Definition {
                loc: Box::new(img.base_loc.clone()),
                message: m,
            })?;
            let reference = mirrored(reference, o.base_mirror.as_deref());
            let Some(client) = client else {
                return Err(unsupported(
                    &img.base_loc,
                    &format!("registry base {reference} without registry access"),
                    "this command does not reach registries",
                ));
            };
            let images = registry::resolve(client, store, &reference, &img.platforms).map_err(
                |e| match e {
                    Error::Registry { message, status } => Error::Registry {
                        message: format!("{}: base: {message}", img.base_loc),
                        status,
                    },
                    other => other,
                },
            )?;
            for ri in &images {
                key.str("remote").digest(&ri.manifest_digest);
            }
            let configs = images.iter().map(|ri| ri.config.clone()).collect();
            (BasePlan::Remote { reference, images }, configs)
        }
    })
}

/// What RUN steps stand on, per platform, before any step of the image.
pub(super) fn chain(img: &ImageDef, base: &BasePlan, done: &[ImagePlan]) -> Vec<Digest> {
    img.platforms
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let mut k = KeyHasher::new("base", 1);
            match base {
                BasePlan::Scratch => k.str("scratch"),
                BasePlan::Layout { images, .. } => k.digest(&images[pi].manifest_digest),
                BasePlan::Remote { images, .. } => k.digest(&images[pi].manifest_digest),
                BasePlan::Image(bi) => k.digest(&done[*bi].content_key).str(&p.to_string()),
            };
            k.finish()
        })
        .collect()
}

fn base_config(p: &Platform) -> ImageConfig {
    ImageConfig {
        architecture: p.arch.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        rootfs: crate::oci::types::RootFs {
            kind: "layers".into(),
            diff_ids: vec![],
        },
        ..Default::default()
    }
}

/// Applies `--base-registry-mirror HOST[/PREFIX]` to a Docker Hub reference.
pub fn mirrored(r: Reference, mirror: Option<&str>) -> Reference {
    match mirror {
        Some(m) if r.registry == crate::registry::reference::DOCKER_HUB => {
            let (host, prefix) = m
                .trim_end_matches('/')
                .split_once('/')
                .unwrap_or((m.trim_end_matches('/'), ""));
            let repository = if prefix.is_empty() {
                r.repository.clone()
            } else {
                format!("{prefix}/{}", r.repository)
            };
            Reference {
                registry: host.to_string(),
                repository,
                ..r
            }
        }
        _ => r,
    }
}

/// Where the bytes of a base's layers are, for finding its Python.
pub(super) fn base_layers<'a>(
    env: &Env<'a>,
    done: &'a [ImagePlan],
    base: &'a BasePlan,
    platforms: &[Platform],
) -> python::BaseLayers<'a> {
    match base {
        BasePlan::Scratch => python::BaseLayers::None,
        BasePlan::Layout { images, .. } => python::BaseLayers::Blobs(
            images
                .iter()
                .map(|li| {
                    (
                        li.manifest
                            .layers
                            .iter()
                            .zip(&li.config.rootfs.diff_ids)
                            .map(|(l, d)| {
                                (
                                    layout::blob_path(&li.dir, &l.digest),
                                    l.media_type.clone(),
                                    *d,
                                )
                            })
                            .collect(),
                        li.manifest_digest,
                    )
                })
                .collect(),
        ),
        BasePlan::Remote { reference, images } => python::BaseLayers::Remote {
            client: env.client,
            reference,
            images,
            store: env.store,
        },
        BasePlan::Image(bi) => {
            // The image this one is built on: its own base (its Python layers
            // are found through its config's VIRTUAL_ENV and PYTHON_VERSION).
            let b = &done[*bi];
            let sub = base_layers(env, done, &b.base, &b.platforms);
            match sub {
                python::BaseLayers::Blobs(v) => python::BaseLayers::Blobs(
                    platforms
                        .iter()
                        .map(|p| {
                            let i = b.platforms.iter().position(|x| x == p).unwrap_or(0);
                            v[i].clone()
                        })
                        .collect(),
                ),
                other => other,
            }
        }
    }
}

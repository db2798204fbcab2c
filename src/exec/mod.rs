//! Runs a plan: builds every missing layer (all images' file steps at once,
//! in parallel), then assembles configs, manifests and indexes in the store.
//!
//! [`run`] is the driver; each kind of step is built in its own file:
//!
//! | file | steps |
//! |---|---|
//! | `independent.rs` | layers that read nothing below them, built at once: files, Python, Debian packages |
//! | `files.rs` | files layers: fetched or unpacked sources, owned (`--chown`) layers |
//! | `copy_from.rs` | files copied from another image's filesystem |
//! | `run.rs` | RUN steps in the sandbox |
//! | `debian.rs` | native Debian package and state layers |
//! | `base.rs` | the base's layers placed first (layout, registry, another image) |
//! | `assemble.rs` | configs, manifests, indexes, annotations |
//!
//! `common.rs` holds what they share: the layers built so far, the stack a
//! step stands on, and fetching the layers below a step.

mod assemble;
mod base;
mod common;
mod copy_from;
mod debian;
mod files;
mod independent;
mod run;

pub use base::import_blob;

use crate::error::Result;
use crate::oci::types::{Descriptor, History, rfc3339};
use crate::output::{ImageOut, LayerOut};
use crate::plan::{Action, Plan, Step, apply_config};
use crate::progress::ProgressSink;
use crate::store::Store;
use common::{Built, Stack, StepCx};
use std::collections::BTreeMap;

pub struct BuildOptions<'a> {
    /// Compression workers per layer.
    pub threads: usize,
    pub progress: &'a dyn ProgressSink,
    /// Registry access, for base layers.
    pub client: Option<&'a crate::registry::Client>,
    /// Download registry bases' layers into the store (local outputs need
    /// them; a push to the base's registry mounts them instead).
    pub fetch_base_layers: bool,
    /// Images (by plan index) not to build: already up to date where they go.
    pub skip: Vec<bool>,
    /// Docker v2 schema 2 media types instead of OCI's.
    pub docker_media_types: bool,
    /// Secret values by id, for RUN steps' secret mounts.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

pub struct BuildOut {
    pub images: Vec<ImageOut>,
    pub layers_built: usize,
    pub bytes_compressed: u64,
}

/// Builds missing layers and assembles every planned image.
pub fn run(plan: &Plan, store: &Store, o: &BuildOptions) -> Result<BuildOut> {
    // 1. Every missing layer that reads nothing below it, of every image,
    // in parallel.
    let mut built = independent::build(plan, store, o)?;
    // 2. Assemble, bases first; steps that read the layers below them run
    // here, in order.
    let git = assemble::git_annotations(&plan.definition.context);
    let created = rfc3339(plan.options.source_date_epoch);
    // Indexed like plan.images; None for a skipped image.
    let mut images: Vec<Option<ImageOut>> = Vec::new();
    for (ii, img) in plan.images.iter().enumerate() {
        if o.skip.get(ii).copied().unwrap_or(false) {
            images.push(None);
            continue;
        }
        let base_ref = common::image_base_ref(&img.base, &images);
        let mut platforms = Vec::new();
        for (pi, p) in img.platforms.iter().enumerate() {
            let mut stack = base::stack(store, o, img, pi, &images, &built)?;
            let cx = StepCx {
                store,
                plan,
                o,
                img,
                images: &images,
                base_ref: base_ref.as_ref(),
                base_count: stack.layers.len(),
            };
            for s in img.steps.iter().filter(|s| s.applies_to(pi)) {
                step(&cx, s, &mut stack, &mut built, &created)?;
            }
            platforms.push(assemble::platform(store, o, p, stack, &created, &git)?);
        }
        let out = assemble::image(store, o, img, platforms, &created, base_ref)?;
        images.push(Some(out));
    }
    for sc in &plan.stats {
        sc.save(store)?;
    }
    Ok(BuildOut {
        images: images.into_iter().flatten().collect(),
        layers_built: built.count,
        bytes_compressed: built.bytes,
    })
}

/// Puts one step on the image: its layer (stored, built in step 1, or
/// built now on the layers below it), or its edit of the configuration.
fn step(cx: &StepCx, s: &Step, stack: &mut Stack, built: &mut Built, created: &str) -> Result<()> {
    let by = format!("imgbuild {}", s.name);
    if let Action::Config(kind) = &s.action {
        apply_config(&mut stack.cfg, kind);
        stack.cfg.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(by),
            empty_layer: Some(true),
            ..Default::default()
        });
        return Ok(());
    }
    let (desc, cache) = match (&s.cached, built.get(&s.key)) {
        (Some(d), _) => {
            let label = format!("[{}] {}", cx.img.id, common::short(&s.name));
            cx.o.progress.start(&label, 0).finish("cached");
            (d.clone(), "hit")
        }
        (None, Some(d)) => (d.clone(), "miss"),
        (None, None) => {
            let d = match &s.action {
                Action::CopyFrom(cf) => copy_from::build(cx, s, cf, stack)?,
                Action::Run(rs) => run::build(cx, s, rs, stack)?,
                Action::Files {
                    chown: Some(chown), ..
                } => files::build_owned(cx, s, chown, stack)?,
                _ => unreachable!("built in step 1"),
            };
            (built.keep(cx.store, s.key, d)?, "miss")
        }
    };
    stack.cfg.rootfs.diff_ids.push(desc.diff_id);
    stack.cfg.history.push(History {
        created: Some(created.to_string()),
        created_by: Some(by),
        ..Default::default()
    });
    stack.layers.push(Descriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest,
        size: desc.size,
        platform: None,
        annotations: None,
    });
    stack.outs.push(LayerOut {
        digest: desc.digest,
        diff_id: desc.diff_id,
        size: desc.size,
        media_type: desc.media_type,
        cache,
        step: s.name.clone(),
    });
    Ok(())
}

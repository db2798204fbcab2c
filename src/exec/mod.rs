//! Runs a plan: builds every missing layer (all images' file steps at once,
//! in parallel), then puts each image's steps on its base and assembles
//! configs, manifests and indexes in the store — images that do not read
//! each other (a Dockerfile's independent stages, a definition's
//! unrelated images) at the same time, up to one per core.
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
use crate::plan::{Action, BasePlan, ImagePlan, Plan, Step, apply_config};
use crate::progress::ProgressSink;
use crate::store::Store;
pub(crate) use common::find_layer;
use common::{Built, Stack, StepCx};
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

pub struct BuildOptions<'a> {
    /// Compression workers per layer.
    pub threads: usize,
    pub progress: &'a dyn ProgressSink,
    /// Registry access, for base layers.
    pub client: Option<&'a crate::registry::Client>,
    /// Download registry bases' layers into the store (local outputs need
    /// them; a push to the base's registry mounts them instead).
    pub fetch_base_layers: bool,
    /// Layers of registry cache hits still in the registry, by digest:
    /// downloaded (and checked) when a step reads them.
    pub remote_layers: &'a BTreeMap<crate::digest::Digest, crate::registry::cache::CacheLayer>,
    /// Images (by plan index) not to build: already up to date where they go.
    pub skip: Vec<bool>,
    /// Docker v2 schema 2 media types instead of OCI's.
    pub docker_media_types: bool,
    /// Secret values by id, for RUN steps' secret mounts.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets by id, for RUN steps' ssh mounts (`--ssh`).
    pub ssh: BTreeMap<String, std::path::PathBuf>,
    /// Steps marked insecure may run without containment (`--allow
    /// security.insecure`); otherwise such a step fails.
    pub allow_insecure: bool,
    /// Keep the SBOM inventory of each Python layer built, from its
    /// entries as they are written (`--sbom`).
    pub inventories: bool,
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
    let built = independent::build(plan, store, o)?;
    // Layers planning wrote in one pass were built by this build too.
    let mut made: Vec<(crate::digest::Digest, crate::store::LayerDesc)> = Vec::new();
    for (ii, img) in plan.images.iter().enumerate() {
        if o.skip.get(ii).copied().unwrap_or(false) {
            continue;
        }
        for s in &img.steps {
            if let Some(d) = &s.cached
                && plan.made_in_plan.contains(&s.key)
                && !made.iter().any(|(k, _)| *k == s.key)
            {
                made.push((s.key, d.clone()));
            }
        }
    }
    built.extend(made);
    // 2. Assemble every image once the images it reads are: steps that
    // read the layers below them run here, in order within an image, and
    // images that do not read each other (a Dockerfile's independent
    // stages) at the same time.
    let git = assemble::git_annotations(&plan.definition.context);
    let created = rfc3339(plan.options.source_date_epoch);
    let images = schedule(plan, o, |ii, images| {
        if o.skip.get(ii).copied().unwrap_or(false) {
            return Ok(None);
        }
        image(plan, store, o, ii, images, &built, &created, &git).map(Some)
    })?;
    for sc in &plan.stats {
        sc.save(store)?;
    }
    let (layers_built, bytes_compressed) = built.totals();
    Ok(BuildOut {
        images: images.into_iter().flatten().collect(),
        layers_built,
        bytes_compressed,
    })
}

/// The images image `ii` reads: its base and the sources of its copies.
fn image_deps(img: &ImagePlan) -> Vec<usize> {
    let mut deps = Vec::new();
    if let BasePlan::Image(bi) = img.base {
        deps.push(bi);
    }
    for s in &img.steps {
        deps.extend(s.reads_images());
    }
    deps
}

/// Where an image is in [`schedule`].
#[derive(Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Running,
    Done,
}

/// Runs `make` for every image of the plan, each once the images it
/// reads are made, on up to `o.threads` workers (a RUN step may itself
/// use every core, so no more images than cores run at once). `make` is
/// given the images made so far, indexed like `plan.images`. On an error
/// no further image starts; the error of the first image (in plan order)
/// that failed is returned once the running ones end.
fn schedule<F>(plan: &Plan, o: &BuildOptions, make: F) -> Result<Vec<Option<ImageOut>>>
where
    F: Fn(usize, &[Option<ImageOut>]) -> Result<Option<ImageOut>> + Sync,
{
    struct Shared {
        images: Vec<Option<ImageOut>>,
        state: Vec<State>,
        errors: Vec<(usize, crate::error::Error)>,
    }
    let n = plan.images.len();
    let deps: Vec<Vec<usize>> = plan.images.iter().map(image_deps).collect();
    let shared = Mutex::new(Shared {
        images: vec![None; n],
        state: vec![State::Waiting; n],
        errors: Vec::new(),
    });
    let changed = Condvar::new();
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    // The next image whose inputs are made, with a copy of the images
    // made so far; None when there is nothing left to start.
    let next = || -> Option<(usize, Vec<Option<ImageOut>>)> {
        let mut g = lock();
        loop {
            if !g.errors.is_empty() {
                return None;
            }
            let ready = (0..n).find(|&i| {
                g.state[i] == State::Waiting
                    && deps[i].iter().all(|&d| d == i || g.state[d] == State::Done)
            });
            if let Some(i) = ready {
                g.state[i] = State::Running;
                return Some((i, g.images.clone()));
            }
            if !g.state.contains(&State::Running) {
                return None;
            }
            g = changed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    };
    let work = || {
        while let Some((ii, images)) = next() {
            let r = make(ii, &images);
            let mut g = lock();
            g.state[ii] = State::Done;
            match r {
                Ok(out) => g.images[ii] = out,
                Err(e) => g.errors.push((ii, e)),
            }
            drop(g);
            changed.notify_all();
        }
    };
    let workers = o.threads.clamp(1, n.max(1));
    std::thread::scope(|sc| {
        for _ in 1..workers {
            sc.spawn(work);
        }
        work();
    });
    let mut g = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    g.errors.sort_by_key(|(i, _)| *i);
    match g.errors.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(g.images),
    }
}

/// Image `ii`, every platform: its base, its steps, its manifests.
#[allow(clippy::too_many_arguments)]
fn image(
    plan: &Plan,
    store: &Store,
    o: &BuildOptions,
    ii: usize,
    images: &[Option<ImageOut>],
    built: &Built,
    created: &str,
    git: &BTreeMap<String, String>,
) -> Result<ImageOut> {
    let img = &plan.images[ii];
    let base_ref = common::image_base_ref(&img.base, images);
    let mut platforms = Vec::new();
    for (pi, p) in img.platforms.iter().enumerate() {
        let mut stack = base::stack(store, o, img, pi, images, built)?;
        let cx = StepCx {
            store,
            plan,
            o,
            img,
            images,
            base_ref: base_ref.as_ref(),
            base_count: stack.layers.len(),
        };
        for s in img.steps.iter().filter(|s| s.applies_to(pi)) {
            step(&cx, s, &mut stack, built, created)?;
        }
        platforms.push(assemble::platform(store, o, p, stack, created, git)?);
    }
    assemble::image(store, o, img, platforms, created, base_ref)
}

/// Puts one step on the image: its layer (stored, built in step 1, or
/// built now on the layers below it), or its edit of the configuration.
fn step(cx: &StepCx, s: &Step, stack: &mut Stack, built: &Built, created: &str) -> Result<()> {
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
    let (desc, cache) = match &s.cached {
        Some(d) if cx.plan.made_in_plan.contains(&s.key) => {
            let label = format!("[{}] {}", cx.img.id, common::short(&s.name));
            let bar = cx.o.progress.start(&label, d.uncompressed_size);
            bar.set(d.uncompressed_size);
            bar.finish(&format!(
                "{} → {}, read once while planning",
                crate::progress::human(d.uncompressed_size),
                crate::progress::human(d.size)
            ));
            (d.clone(), "miss")
        }
        Some(d) => {
            let label = format!("[{}] {}", cx.img.id, common::short(&s.name));
            match cx.plan.registry_hits.get(&s.key) {
                Some(r) => {
                    cx.o.progress
                        .start(&label, 0)
                        .finish(&format!("cached in {r}"));
                    (d.clone(), "hit-registry")
                }
                None => {
                    cx.o.progress.start(&label, 0).finish("cached");
                    (d.clone(), "hit")
                }
            }
        }
        None => {
            // One builder per step key: an image with the same step waits
            // for it and takes its layer.
            let key_lock = built.key_lock(&s.key);
            let _building = key_lock.lock().unwrap_or_else(|e| e.into_inner());
            match built.get(&s.key) {
                Some(d) => (d, "miss"),
                None => {
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
            }
        }
    };
    stack.cfg.rootfs.diff_ids.push(desc.diff_id);
    stack.cfg.history.push(History {
        created: Some(created.to_string()),
        created_by: Some(by),
        ..Default::default()
    });
    stack.layers.push(Descriptor {
        artifact_type: None,
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

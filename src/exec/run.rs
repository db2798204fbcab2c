//! RUN steps: a command in the sandbox on the layers assembled so far;
//! what it changes becomes the layer.

use super::common::{Stack, StepCx, short};
use crate::error::{Error, Result};
use crate::plan::Step;
use crate::progress::human;
use crate::sandbox::RunStep;
use crate::sandbox::rootfs;
use crate::store::LayerDesc;
use std::path::Path;
use std::time::Instant;

pub(super) fn build(cx: &StepCx, s: &Step, rs: &RunStep, stack: &Stack) -> Result<LayerDesc> {
    let (store, plan, o) = (cx.store, cx.plan, cx.o);
    let label = format!("[{}] {}", cx.img.id, short(&s.name));
    let label = label.as_str();
    let loc = s.loc.to_string();
    if rs.insecure && !o.allow_insecure {
        return Err(Error::Definition {
            loc: Box::new(s.loc.clone()),
            message: "the step asks to run without containment (security insecure); allow it with `--allow security.insecure`".into(),
        });
    }
    let (layers, cfg) = (&stack.layers, &stack.cfg);
    cx.fetch_missing(layers, label)?;
    let refs: Vec<crate::sandbox::rootfs::LayerRef> = layers
        .iter()
        .zip(&cfg.rootfs.diff_ids)
        .map(|(l, d)| crate::sandbox::rootfs::LayerRef {
            digest: l.digest,
            diff_id: *d,
            media_type: l.media_type.clone(),
        })
        .collect();
    // Folders of other images: read-only binds, or the seeds of caches.
    let mut ro_binds = Vec::new();
    let mut cache_seeds = std::collections::BTreeMap::new();
    for m in &rs.image_mounts {
        let source = cx.images[m.image]
            .as_ref()
            .expect("a mounted image is built before its users");
        let root = super::copy_from::source_root(store, source, &m.platform, o)?;
        let comps = rootfs::clean(Path::new(&m.source)).map_err(Error::Other)?;
        let path = rootfs::resolve_in_root(&root, &comps).map_err(|e| {
            Error::Other(format!(
                "{loc}: {label}: {} in image {}: {e}",
                m.source, source.id
            ))
        })?;
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(Error::InputAt {
                loc: Box::new(s.loc.clone()),
                message: format!("{} is not in image {}", m.source, source.id),
            });
        }
        match &m.cache {
            Some(id) => {
                cache_seeds.insert(id.clone(), path);
            }
            None => ro_binds.push((path, m.target.clone())),
        }
    }
    let bar = o.progress.start(label, 0);
    let t = Instant::now();
    let progress = o.progress;
    let prefix = label.to_string();
    // A step may print a secret it was given: hidden in its output and in
    // the message of its failure.
    let masker = crate::util::mask::Masker::new(o.secrets.values().map(Vec::as_slice));
    let out_masker = masker.clone();
    let output = move |line: &str| progress.output(&prefix, &out_masker.mask(line));
    let rcx = crate::sandbox::RunContext {
        name: label,
        loc: &loc,
        layers: refs,
        base_layers: cx.base_count,
        env: cfg.config.env.clone().unwrap_or_default(),
        workdir: cfg.config.working_dir.clone().unwrap_or_default(),
        user: cfg.config.user.clone().unwrap_or_default(),
        secrets: &o.secrets,
        compression: plan.options.compression,
        threads: o.threads,
        source_date_epoch: plan.options.source_date_epoch,
        output: &output,
        ro_binds,
        cache_seeds,
        ssh: &o.ssh,
    };
    let d = crate::sandbox::execute(store, rs, &rcx).map_err(|e| match e {
        crate::error::Error::Step { message, exit } => crate::error::Error::Step {
            message: masker.mask(&message),
            exit,
        },
        other => super::common::blame_store(store, layers, other),
    })?;
    bar.finish(&format!(
        "ran in {:.2}s, {} → {}",
        t.elapsed().as_secs_f64(),
        human(d.uncompressed_size),
        human(d.size)
    ));
    Ok(d)
}

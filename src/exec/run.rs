//! RUN steps: a command in the sandbox on the layers assembled so far;
//! what it changes becomes the layer.

use super::common::{Stack, StepCx, short};
use crate::error::Result;
use crate::plan::Step;
use crate::progress::human;
use crate::sandbox::RunStep;
use crate::store::LayerDesc;
use std::time::Instant;

pub(super) fn build(cx: &StepCx, s: &Step, rs: &RunStep, stack: &Stack) -> Result<LayerDesc> {
    let (store, plan, o) = (cx.store, cx.plan, cx.o);
    let label = format!("[{}] {}", cx.img.id, short(&s.name));
    let label = label.as_str();
    let loc = s.loc.to_string();
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
    let bar = o.progress.start(label, 0);
    let t = Instant::now();
    let progress = o.progress;
    let prefix = label.to_string();
    let output = move |line: &str| progress.output(&prefix, line);
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
    };
    let d = crate::sandbox::execute(store, rs, &rcx)?;
    bar.finish(&format!(
        "ran in {:.2}s, {} → {}",
        t.elapsed().as_secs_f64(),
        human(d.uncompressed_size),
        human(d.size)
    ));
    Ok(d)
}

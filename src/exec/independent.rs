//! Step 1 of a build: every missing layer that reads nothing below it —
//! files without an owner to look up, Python layers, Debian package and
//! state layers — of every image, built at once.

use super::{BuildOptions, Built, debian, files};
use crate::digest::Digest;
use crate::error::Result;
use crate::plan::{Action, Plan};
use crate::progress::human;
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;
use std::time::Instant;

/// Builds them and returns what was built.
pub(super) fn build(plan: &Plan, store: &Store, o: &BuildOptions) -> Result<Built> {
    let todo = select(plan, o);
    // Python steps first fetch (and build) everything they install, once.
    let py_layers: Vec<&crate::python::layer::PyLayer> = todo
        .iter()
        .filter_map(|&(ii, si)| match &plan.images[ii].steps[si].action {
            Action::Python(pl) => Some(pl.as_ref()),
            _ => None,
        })
        .collect();
    let prepared = if py_layers.is_empty() {
        crate::python::build::Prepared::default()
    } else {
        let bar = o.progress.start("Python packages", 0);
        let t = Instant::now();
        let p = crate::python::build::prepare(store, &py_layers, &|m| bar.message(m))?;
        bar.finish(&format!("ready in {:.2}s", t.elapsed().as_secs_f64()));
        p
    };
    let build_one = |&(ii, si): &(usize, usize)| -> Result<(Digest, LayerDesc)> {
        let img = &plan.images[ii];
        let step = &img.steps[si];
        let label = format!("[{}] {}", img.id, step.name);
        let t = Instant::now();
        let (desc, n, bar) = match &step.action {
            Action::Files { .. } => files::build(plan, store, o, step, &label)?,
            Action::Python(pl) => {
                let bar = o.progress.start(&label, pl.bytes);
                let (d, files) = crate::python::build::build_layer(
                    store,
                    pl,
                    &prepared,
                    plan.options.compression,
                    o.threads,
                    plan.options.source_date_epoch,
                )?;
                if o.inventories {
                    use crate::python::wheel::LayerFileKind;
                    let inv = crate::sbom::LayerInventory::of_entries(files.iter().map(|f| {
                        let data = match &f.kind {
                            LayerFileKind::File(d) => Some(d.as_slice()),
                            _ => None,
                        };
                        (f.path.as_str(), data)
                    }));
                    crate::sbom::keep(store, &d.diff_id, &inv)?;
                }
                (d, pl.artifacts.len(), bar)
            }
            Action::Debian(d) => {
                let bar = o.progress.start(&label, 0);
                let d2 = debian::build(store, d, plan, o, &|m| bar.message(m))?;
                (d2, d.packages.len(), bar)
            }
            Action::Config(_) | Action::Run(_) | Action::CopyFrom(_) => {
                unreachable!("config steps make no layer; RUN and copy steps run in order")
            }
        };
        crate::util::fault::point("step-record");
        store.step_put(&step.key, &desc)?;
        bar.finish(&format!(
            "{n} {}, {} → {} in {:.2}s",
            if matches!(step.action, Action::Python(_) | Action::Debian(_)) {
                "packages"
            } else {
                "files"
            },
            human(desc.uncompressed_size),
            human(desc.size),
            t.elapsed().as_secs_f64()
        ));
        Ok((step.key, desc))
    };
    // A Debian base's state layer reads the package records its package
    // layers kept, so it is built after them.
    let is_late = |&(ii, si): &(usize, usize)| matches!(&plan.images[ii].steps[si].action, Action::Debian(d) if d.state);
    let early: Vec<(usize, usize)> = todo.iter().copied().filter(|s| !is_late(s)).collect();
    let late: Vec<(usize, usize)> = todo.iter().copied().filter(is_late).collect();
    let built = Built::default();
    built.extend(early.par_iter().map(build_one).collect::<Result<_>>()?);
    built.extend(late.par_iter().map(build_one).collect::<Result<_>>()?);
    Ok(built)
}

/// The steps built here, as (image, step) indexes: missing layers of the
/// images not skipped, except RUN and copy steps and owned files (they
/// read the layers below them), each key once.
fn select(plan: &Plan, o: &BuildOptions) -> Vec<(usize, usize)> {
    let mut todo: Vec<(usize, usize)> = Vec::new();
    for (ii, img) in plan.images.iter().enumerate() {
        if o.skip.get(ii).copied().unwrap_or(false) {
            continue;
        }
        for (si, s) in img.steps.iter().enumerate() {
            if s.makes_layer()
                && s.cached.is_none()
                && !matches!(
                    s.action,
                    Action::Run(_) | Action::CopyFrom(_) | Action::Files { chown: Some(_), .. }
                )
                && !todo
                    .iter()
                    .any(|(a, b)| plan.images[*a].steps[*b].key == s.key)
            {
                todo.push((ii, si));
            }
        }
    }
    todo
}

//! Layers of a native Debian base: packages fetched by the lock's hashes
//! and assembled, or the dpkg state generated from them.

use super::BuildOptions;
use crate::error::Result;
use crate::plan::{DebianStep, Plan};
use crate::store::{LayerDesc, Store};

/// A layer of a native Debian base: its packages fetched (by the lock's
/// hashes) and assembled, or the state generated from all of them.
pub(super) fn build(
    store: &Store,
    d: &DebianStep,
    plan: &Plan,
    o: &BuildOptions,
    message: &dyn Fn(&str),
) -> Result<LayerDesc> {
    use crate::debian::assemble;
    message(&format!("fetching {} packages", d.packages.len()));
    let paths = assemble::fetch_debs(store, &d.packages)?;
    let debs: Vec<_> = d.packages.iter().cloned().zip(paths).collect();
    let sde = plan.options.source_date_epoch;
    let compression = plan.options.compression;
    message("assembling");
    if !d.state {
        let links: Vec<&str> = d.links.iter().map(String::as_str).collect();
        return Ok(assemble::write_package_layer(
            store,
            &debs,
            &links,
            compression,
            o.threads,
            sde,
        )?
        .desc);
    }
    // The state needs every package's record: kept by the package
    // layers (built first), else read from the archives again.
    let (installed, captured) = assemble::read_packages(store, &debs)?;
    let mut entries = assemble::state_entries(
        &installed,
        &captured,
        &d.packages,
        &d.suites,
        &d.arch,
        sde,
        &d.unpacked,
    )?;
    if d.group > 0 {
        // Only what the new packages change: the files the groups below
        // had (some since changed by `dpkg --configure`) stay theirs.
        let below: Vec<usize> = (0..d.packages.len())
            .filter(|&i| d.packages[i].group < d.group)
            .collect();
        let inst_below: Vec<_> = below.iter().map(|&i| installed[i].clone()).collect();
        let locked_below: Vec<_> = below.iter().map(|&i| d.packages[i].clone()).collect();
        let paths: std::collections::HashSet<&str> = inst_below
            .iter()
            .flat_map(|p| p.list.iter().map(|l| l.trim_start_matches('/')))
            .collect();
        let captured_below: std::collections::BTreeMap<String, Vec<u8>> = captured
            .iter()
            .filter(|(k, _)| paths.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let before = assemble::state_entries(
            &inst_below,
            &captured_below,
            &locked_below,
            &d.suites,
            &d.arch,
            sde,
            &[],
        )?;
        entries.retain(|e| !before.contains(e));
    }
    assemble::write_state_layer(store, &entries, compression, o.threads, sde)
}

//! Files copied from another image of the definition: its layers
//! materialized, the sources (wildcards matched in its filesystem)
//! collected under the destination.

use super::BuildOptions;
use super::common::{Stack, StepCx, at_step};
use crate::error::{Error, Result};
use crate::layer::files;
use crate::output::ImageOut;
use crate::plan::{CopyFrom, Step};
use crate::store::{LayerDesc, Store};

/// The layer of a copy step, on the layers below it (which name the
/// owner, and hold the folders an owned copy does not make again).
pub(super) fn build(cx: &StepCx, s: &Step, cf: &CopyFrom, stack: &Stack) -> Result<LayerDesc> {
    let source = cx.images[cf.source]
        .as_ref()
        .expect("a source image is built before its users");
    let owner = match &cf.owner_name {
        None => cf.chown,
        Some(n) => Some(
            cx.owner_below(n, &stack.layers, &s.name)
                .map_err(|e| at_step(e, s))?,
        ),
    };
    let entries = copy_from(cx.store, cf, owner, source, cx.o).map_err(|e| at_step(e, s))?;
    match owner {
        Some(ids) => super::files::write_owned(cx, entries, ids, &stack.layers, &s.name),
        None => files::write_layer(
            cx.store,
            &entries,
            cx.plan.options.compression,
            cx.o.threads,
            cx.plan.options.source_date_epoch,
            &|_| {},
        ),
    }
}

/// Files of another image's filesystem as a layer.
fn copy_from(
    store: &Store,
    cf: &CopyFrom,
    owner: Option<crate::oci::Owner>,
    source: &ImageOut,
    o: &BuildOptions,
) -> Result<Vec<files::FileEntry>> {
    use crate::sandbox::rootfs;
    let sp = source
        .platforms
        .iter()
        .find(|x| x.platform == cf.platform)
        .ok_or_else(|| Error::Other(format!("image {} has no {}", source.id, cf.platform)))?;
    for l in &sp.layers {
        if !store.has_blob(&l.digest) {
            match (&source.base_ref, o.client) {
                (Some(r), Some(c)) => c.fetch_blob(r, &l.digest, store)?,
                _ => {
                    return Err(Error::Other(format!(
                        "layer {} of image {} is not in the store",
                        l.digest, source.id
                    )));
                }
            }
        }
    }
    let refs: Vec<rootfs::LayerRef> = sp
        .layers
        .iter()
        .map(|l| rootfs::LayerRef {
            digest: l.digest,
            diff_id: l.diff_id,
            media_type: l.media_type.clone(),
        })
        .collect();
    let own = crate::sandbox::mapping()? != crate::sandbox::child::Mapping::Single;
    let root = rootfs::materialize(store, &refs, own)?;
    let no_rules =
        crate::layer::ignore::IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
    let stat = crate::store::statcache::StatCache::load(store.root().join("tmp/copy-from.stat"));
    let co = files::CollectOptions {
        context: &root,
        rules: &no_rules,
        owner,
        chmod: cf.chmod,
        stat: &stat,
        exclude: &[],
    };
    let mut entries: Vec<files::FileEntry> = Vec::new();
    // Wildcards match names in the source image.
    let mut srcs: Vec<String> = Vec::new();
    for src in &cf.srcs {
        if !crate::layer::ignore::has_wildcards(src) {
            srcs.push(src.clone());
            continue;
        }
        let list = |dir: &str| -> Option<Vec<String>> {
            let comps = rootfs::clean(std::path::Path::new(&format!("/{dir}"))).ok()?;
            let path = rootfs::resolve_in_root(&root, &comps).ok()?;
            let rd = std::fs::read_dir(path).ok()?;
            Some(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
            )
        };
        let found = crate::layer::ignore::expand_glob(src, &list).map_err(Error::Other)?;
        if found.is_empty() {
            return Err(Error::Other(format!(
                "{src} matches no file in image {}",
                source.id
            )));
        }
        srcs.extend(found.into_iter().map(|f| format!("/{f}")));
    }
    for src in &srcs {
        let comps = rootfs::clean(std::path::Path::new(src)).map_err(Error::Other)?;
        let path = rootfs::resolve_in_root(&root, &comps)
            .map_err(|e| Error::Other(format!("{src} in image {}: {e}", source.id)))?;
        let meta = std::fs::metadata(&path)
            .map_err(|e| Error::Other(format!("{src} in image {}: {e}", source.id)))?;
        let c = if meta.is_dir() {
            files::collect_folder(&path, &cf.dst, false, &co)?
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dst = if cf.dst_dir || srcs.len() > 1 {
                if cf.dst.is_empty() {
                    name
                } else {
                    format!("{}/{name}", cf.dst)
                }
            } else {
                cf.dst.clone()
            };
            files::collect_file(&path, &dst, &co)?
        };
        entries.extend(c.entries);
    }
    // Sorted, the last source winning a path.
    entries.reverse();
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e.path.clone()));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

//! Files copied from another image of the definition: its layers
//! materialized, the sources (wildcards matched in its filesystem)
//! collected under the destination.

use super::BuildOptions;
use super::common::{Stack, StepCx, at_step, have_layer};
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

/// The root filesystem of another image of the build (one platform),
/// its layers fetched when the store lacks them, made once and shared:
/// callers must not change it.
pub(super) fn source_root(
    store: &Store,
    source: &ImageOut,
    platform: &str,
    o: &BuildOptions,
) -> Result<std::path::PathBuf> {
    use crate::sandbox::rootfs;
    let sp = source
        .platforms
        .iter()
        .find(|x| x.platform == platform)
        .ok_or_else(|| Error::Other(format!("image {} has no {platform}", source.id)))?;
    for l in &sp.layers {
        if !have_layer(store, o, source.base_ref.as_ref(), &l.digest, l.size)? {
            return Err(Error::Other(format!(
                "layer {} of image {} is not in the store",
                l.digest, source.id
            )));
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
    rootfs::materialize(store, &refs, own).map_err(|e| {
        let below: Vec<crate::oci::types::Descriptor> = sp
            .layers
            .iter()
            .map(|l| crate::oci::types::Descriptor {
                artifact_type: None,
                media_type: l.media_type.clone(),
                digest: l.digest,
                size: l.size,
                platform: None,
                annotations: None,
            })
            .collect();
        super::common::blame_store(store, &below, e)
    })
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
    let root = source_root(store, source, &cf.platform, o)?;
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
        hash: true,
    };
    let mut entries: Vec<files::FileEntry> = Vec::new();
    let excluded = crate::layer::ignore::IgnoreRules::from_patterns(&cf.exclude)
        .map_err(|e| Error::Other(format!("--exclude: {e}")))?;
    // Wildcards match names in the source image; with --parents each
    // source keeps the part of its path after a `/./` (else all of it).
    let mut srcs: Vec<(String, Option<String>)> = Vec::new();
    for src in &cf.srcs {
        let (src, cut) = match (cf.parents, src.find("/./")) {
            (true, Some(n)) => (format!("{}/{}", &src[..n], &src[n + 3..]), n + 1),
            (true, None) => (src.clone(), 1),
            (false, _) => (src.clone(), 0),
        };
        let kept = |s: &str| cf.parents.then(|| s[cut.min(s.len())..].to_string());
        if !crate::layer::ignore::has_wildcards(&src) {
            let k = kept(&src);
            srcs.push((src, k));
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
        let found = crate::layer::ignore::expand_glob(&src, &list).map_err(Error::Other)?;
        if found.is_empty() {
            return Err(Error::Other(format!(
                "{src} matches no file in image {}",
                source.id
            )));
        }
        for f in found {
            let f = format!("/{f}");
            let k = kept(&f);
            srcs.push((f, k));
        }
    }
    let several = srcs.len() > 1;
    for (src, kept) in &srcs {
        let comps = rootfs::clean(std::path::Path::new(src)).map_err(Error::Other)?;
        let path = rootfs::resolve_in_root(&root, &comps)
            .map_err(|e| Error::Other(format!("{src} in image {}: {e}", source.id)))?;
        let meta = std::fs::metadata(&path)
            .map_err(|e| Error::Other(format!("{src} in image {}: {e}", source.id)))?;
        let join = |base: &str, rest: &str| match (base.is_empty(), rest.is_empty()) {
            (_, true) => base.to_string(),
            (true, false) => rest.to_string(),
            (false, false) => format!("{base}/{rest}"),
        };
        let mut c = if meta.is_dir() {
            let dst = match kept {
                Some(k) => join(&cf.dst, k.trim_matches('/')),
                None => cf.dst.clone(),
            };
            let mut c = files::collect_folder(&path, &dst, false, &co)?;
            excluded.retain_below(&mut c.entries, &dst, |e| e.path.for_matching().into_owned());
            c
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A file is matched by its name (its path relative to itself).
            if !excluded.is_empty() && excluded.excludes_path(&name) {
                continue;
            }
            let dst = match kept {
                Some(k) => join(&cf.dst, k.trim_matches('/')),
                None if cf.dst_dir || several => join(&cf.dst, &name),
                None => cf.dst.clone(),
            };
            files::collect_file(&path, &dst, &co)?
        };
        entries.append(&mut c.entries);
    }
    // Sorted, the last source winning a path.
    entries.reverse();
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e.path.clone()));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

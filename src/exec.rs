//! Runs a plan: builds every missing layer (all images' file steps at once,
//! in parallel), then assembles configs, manifests and indexes in the store.

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::compress::MEDIA_TYPE_GZIP;
use crate::layer::files;
use crate::oci::Platform;
use crate::oci::types::*;
use crate::output::{ImageOut, LayerOut, PlatformOut};
use crate::plan::record::ImageRecord;
use crate::plan::{Action, BasePlan, Plan, apply_config};
use crate::progress::{ProgressSink, human};
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

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

/// The document media types an image is written with.
struct Types {
    manifest: &'static str,
    config: &'static str,
    index: &'static str,
}

const OCI_TYPES: Types = Types {
    manifest: MT_MANIFEST,
    config: MT_CONFIG,
    index: MT_INDEX,
};
const DOCKER_TYPES: Types = Types {
    manifest: MT_DOCKER_MANIFEST,
    config: MT_DOCKER_CONFIG,
    index: MT_DOCKER_LIST,
};

/// The Docker schema 2 name of a layer media type (same bytes).
fn docker_layer_type(mt: &str) -> Result<String> {
    match mt {
        MEDIA_TYPE_GZIP | "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            Ok("application/vnd.docker.image.rootfs.diff.tar.gzip".into())
        }
        crate::layer::compress::MEDIA_TYPE_TAR | "application/vnd.docker.image.rootfs.diff.tar" => {
            Ok("application/vnd.docker.image.rootfs.diff.tar".into())
        }
        other => Err(Error::Usage(format!(
            "Docker media types cannot describe {other} layers: build with --compression gzip or keep OCI media types"
        ))),
    }
}

pub struct BuildOut {
    pub images: Vec<ImageOut>,
    pub layers_built: usize,
    pub bytes_compressed: u64,
}

/// Builds missing layers and assembles every planned image.
pub fn run(plan: &Plan, store: &Store, o: &BuildOptions) -> Result<BuildOut> {
    // 1. Every missing file layer of every image, in parallel.
    let mut todo: Vec<(usize, usize)> = Vec::new();
    for (ii, img) in plan.images.iter().enumerate() {
        if o.skip.get(ii).copied().unwrap_or(false) {
            continue;
        }
        for (si, s) in img.steps.iter().enumerate() {
            // RUN steps run in order, on the layers below them (step 2).
            if s.makes_layer()
                && s.cached.is_none()
                && !matches!(
                    s.action,
                    Action::Run(_) | Action::CopyFrom(_) | Action::Files { chown: Some(_), .. }
                )
            {
                // Two steps with one key are built once.
                if !todo
                    .iter()
                    .any(|(a, b)| plan.images[*a].steps[*b].key == s.key)
                {
                    todo.push((ii, si));
                }
            }
        }
    }
    let sde = plan.options.source_date_epoch;
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
        let (desc, count) = match &step.action {
            Action::Files { entries, bytes, .. } => {
                let bar = o.progress.start(&label, *bytes);
                let d = files::write_layer(
                    store,
                    entries,
                    plan.options.compression,
                    o.threads,
                    sde,
                    &|n| bar.set(n),
                )?;
                (d, (entries.len(), bar))
            }
            Action::Python(pl) => {
                let bar = o.progress.start(&label, pl.bytes);
                let d = crate::python::build::build_layer(
                    store,
                    pl,
                    &prepared,
                    plan.options.compression,
                    o.threads,
                    sde,
                )?;
                (d, (pl.artifacts.len(), bar))
            }
            Action::Debian(d) => {
                let bar = o.progress.start(&label, 0);
                let d2 = build_debian(store, d, plan, o, &|m| bar.message(m))?;
                (d2, (d.packages.len(), bar))
            }
            Action::Config(_) | Action::Run(_) | Action::CopyFrom(_) => {
                unreachable!("config steps make no layer; RUN and copy steps run in order")
            }
        };
        let (n, bar) = count;
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
    let mut built: Vec<(Digest, LayerDesc)> =
        early.par_iter().map(build_one).collect::<Result<_>>()?;
    let later: Vec<(Digest, LayerDesc)> = late.par_iter().map(build_one).collect::<Result<_>>()?;
    built.extend(later);
    let mut bytes_compressed: u64 = built.iter().map(|(_, d)| d.size).sum();
    let mut layers_built = built.len();
    let mut built: BTreeMap<Digest, LayerDesc> = built.into_iter().collect();

    // 2. Assemble, bases first.
    let git = git_annotations(&plan.definition.context);
    let created = rfc3339(sde);
    // Indexed like plan.images; None for a skipped image.
    let mut images: Vec<Option<ImageOut>> = Vec::new();
    for (ii, img) in plan.images.iter().enumerate() {
        if o.skip.get(ii).copied().unwrap_or(false) {
            images.push(None);
            continue;
        }
        let mut platforms = Vec::new();
        for (pi, p) in img.platforms.iter().enumerate() {
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
                            && !built.contains_key(&s.key)
                    });
                    let fetched: Vec<()> = b
                        .manifest
                        .layers
                        .par_iter()
                        .map(|l| match (o.fetch_base_layers || runs, o.client) {
                            (false, _) => Ok(()),
                            (true, Some(c)) => c.fetch_blob(reference, &l.digest, store),
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
            let base_ref = image_base_ref(&img.base, &images);
            let base_count = layers.len();
            for s in img.steps.iter().filter(|s| s.applies_to(pi)) {
                let by = format!("imgbuild {}", s.name);
                match &s.action {
                    Action::Files { .. }
                    | Action::Python(_)
                    | Action::Run(_)
                    | Action::CopyFrom(_)
                    | Action::Debian(_) => {
                        let (desc, cache) = match (&s.cached, &s.action) {
                            (Some(d), _) => (d.clone(), "hit"),
                            (None, Action::CopyFrom(cf)) => match built.get(&s.key) {
                                Some(d) => (d.clone(), "miss"),
                                None => {
                                    let source = images[cf.source]
                                        .as_ref()
                                        .expect("a source image is built before its users");
                                    let owner = match &cf.owner_name {
                                        None => cf.chown,
                                        Some(n) => Some(
                                            owner_below(
                                                store,
                                                n,
                                                &layers,
                                                base_ref.as_ref(),
                                                o,
                                                &s.name,
                                            )
                                            .map_err(|e| at_step(e, s))?,
                                        ),
                                    };
                                    let entries = copy_from(store, cf, owner, source, o)
                                        .map_err(|e| at_step(e, s))?;
                                    let d = match owner {
                                        Some(ids) => write_owned(
                                            store,
                                            entries,
                                            ids,
                                            &layers,
                                            base_ref.as_ref(),
                                            plan,
                                            o,
                                            &s.name,
                                        )?,
                                        None => files::write_layer(
                                            store,
                                            &entries,
                                            plan.options.compression,
                                            o.threads,
                                            sde,
                                            &|_| {},
                                        )?,
                                    };
                                    keep_built(
                                        store,
                                        s.key,
                                        d,
                                        &mut built,
                                        (&mut layers_built, &mut bytes_compressed),
                                    )?
                                }
                            },
                            (None, Action::Run(rs)) => match built.get(&s.key) {
                                Some(d) => (d.clone(), "miss"),
                                None => {
                                    let label = format!("[{}] {}", img.id, short(&s.name));
                                    let d = run_step(
                                        store,
                                        rs,
                                        &label,
                                        &s.loc.to_string(),
                                        (&layers, base_count),
                                        &cfg,
                                        base_ref.as_ref(),
                                        plan,
                                        o,
                                    )?;
                                    keep_built(
                                        store,
                                        s.key,
                                        d,
                                        &mut built,
                                        (&mut layers_built, &mut bytes_compressed),
                                    )?
                                }
                            },
                            (
                                None,
                                Action::Files {
                                    entries,
                                    chown: Some(chown),
                                    ..
                                },
                            ) => match built.get(&s.key) {
                                Some(d) => (d.clone(), "miss"),
                                None => {
                                    let mut entries = entries.clone();
                                    let owner = match chown {
                                        crate::plan::Chown::Ids(ids) => *ids,
                                        crate::plan::Chown::Name(n) => {
                                            let ids = owner_below(
                                                store,
                                                n,
                                                &layers,
                                                base_ref.as_ref(),
                                                o,
                                                &s.name,
                                            )
                                            .map_err(|e| at_step(e, s))?;
                                            for e in entries.iter_mut() {
                                                e.uid = ids.uid;
                                                e.gid = ids.gid;
                                            }
                                            ids
                                        }
                                    };
                                    let d = write_owned(
                                        store,
                                        entries,
                                        owner,
                                        &layers,
                                        base_ref.as_ref(),
                                        plan,
                                        o,
                                        &s.name,
                                    )?;
                                    keep_built(
                                        store,
                                        s.key,
                                        d,
                                        &mut built,
                                        (&mut layers_built, &mut bytes_compressed),
                                    )?
                                }
                            },
                            (None, _) => (built.get(&s.key).cloned().expect("built above"), "miss"),
                        };
                        cfg.rootfs.diff_ids.push(desc.diff_id);
                        cfg.history.push(History {
                            created: Some(created.clone()),
                            created_by: Some(by),
                            ..Default::default()
                        });
                        layers.push(Descriptor {
                            media_type: desc.media_type.clone(),
                            digest: desc.digest,
                            size: desc.size,
                            platform: None,
                            annotations: None,
                        });
                        outs.push(LayerOut {
                            digest: desc.digest,
                            diff_id: desc.diff_id,
                            size: desc.size,
                            media_type: desc.media_type,
                            cache,
                            step: s.name.clone(),
                        });
                    }
                    Action::Config(kind) => {
                        apply_config(&mut cfg, kind);
                        cfg.history.push(History {
                            created: Some(created.clone()),
                            created_by: Some(by),
                            empty_layer: Some(true),
                            ..Default::default()
                        });
                    }
                }
            }
            let types = if o.docker_media_types {
                &DOCKER_TYPES
            } else {
                &OCI_TYPES
            };
            if o.docker_media_types {
                for l in layers.iter_mut() {
                    l.media_type = docker_layer_type(&l.media_type)?;
                }
                for l in outs.iter_mut() {
                    l.media_type = docker_layer_type(&l.media_type)?;
                }
            }
            cfg.created = Some(created.clone());
            cfg.architecture = p.arch.clone();
            cfg.os = p.os.clone();
            cfg.variant = p.variant.clone();
            let cfg_bytes = to_bytes(&cfg);
            let config_digest = store.put_blob_bytes(&cfg_bytes)?;
            annotations.insert(ANN_CREATED.into(), created.clone());
            annotations.extend(git.clone());
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(types.manifest.into()),
                config: Descriptor {
                    media_type: types.config.into(),
                    digest: config_digest,
                    size: cfg_bytes.len() as u64,
                    platform: None,
                    annotations: None,
                },
                layers,
                // Docker schema 2 has no annotations.
                annotations: (!o.docker_media_types).then_some(annotations),
            };
            let m_bytes = to_bytes(&manifest);
            let manifest_digest = store.put_blob_bytes(&m_bytes)?;
            platforms.push(PlatformOut {
                platform: p.to_string(),
                manifest_digest,
                config_digest,
                layers: outs,
                manifest: Descriptor {
                    media_type: types.manifest.into(),
                    digest: manifest_digest,
                    size: m_bytes.len() as u64,
                    platform: Some(platform_json(p)),
                    annotations: None,
                },
                config: cfg,
            });
        }
        let top = if platforms.len() == 1 {
            Descriptor {
                platform: None,
                ..platforms[0].manifest.clone()
            }
        } else {
            let types = if o.docker_media_types {
                &DOCKER_TYPES
            } else {
                &OCI_TYPES
            };
            let index = Index {
                schema_version: 2,
                media_type: Some(types.index.into()),
                manifests: platforms.iter().map(|p| p.manifest.clone()).collect(),
                annotations: (!o.docker_media_types)
                    .then(|| BTreeMap::from([(ANN_CREATED.to_string(), created.clone())])),
            };
            let bytes = to_bytes(&index);
            let d = store.put_blob_bytes(&bytes)?;
            Descriptor {
                media_type: types.index.into(),
                digest: d,
                size: bytes.len() as u64,
                platform: None,
                annotations: None,
            }
        };
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut push = |d: Descriptor| {
            if !blobs.iter().any(|b| b.digest == d.digest) {
                blobs.push(d);
            }
        };
        for p in &platforms {
            for l in &p.layers {
                push(Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.digest,
                    size: l.size,
                    platform: None,
                    annotations: None,
                });
            }
            let cfg_size = std::fs::metadata(store.blob_path(&p.config_digest))
                .map(|m| m.len())
                .unwrap_or(0);
            push(Descriptor {
                media_type: if o.docker_media_types {
                    MT_DOCKER_CONFIG
                } else {
                    MT_CONFIG
                }
                .into(),
                digest: p.config_digest,
                size: cfg_size,
                platform: None,
                annotations: None,
            });
            push(Descriptor {
                platform: None,
                ..p.manifest.clone()
            });
        }
        if platforms.len() > 1 {
            push(top.clone());
        }
        // Remember what this build used, for `plan` explanations and prune.
        ImageRecord::save(
            store,
            &img.record_id,
            &img.steps,
            blobs.iter().map(|b| b.digest).collect(),
        )?;
        let base_ref = image_base_ref(&img.base, &images);
        images.push(Some(ImageOut {
            id: img.id.clone(),
            reference: img.reference(),
            tag: img.tag.clone(),
            top,
            platforms,
            blobs,
            base_ref,
        }));
    }
    for sc in &plan.stats {
        sc.save(store)?;
    }
    Ok(BuildOut {
        images: images.into_iter().flatten().collect(),
        layers_built,
        bytes_compressed,
    })
}

/// The registry image at the bottom of an image, if any.
fn image_base_ref(
    base: &BasePlan,
    images: &[Option<ImageOut>],
) -> Option<crate::registry::Reference> {
    match base {
        BasePlan::Remote { reference, .. } => Some(reference.clone()),
        BasePlan::Image(bi) => images[*bi].as_ref().and_then(|b| b.base_ref.clone()),
        _ => None,
    }
}

/// A layer of a native Debian base: its packages fetched (by the lock's
/// hashes) and assembled, or the state generated from all of them.
fn build_debian(
    store: &Store,
    d: &crate::plan::DebianStep,
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

/// A layer built during assembly: recorded for its step, counted, and
/// remembered for another image with the same step.
fn keep_built(
    store: &Store,
    key: Digest,
    d: LayerDesc,
    built: &mut BTreeMap<Digest, LayerDesc>,
    (layers, bytes): (&mut usize, &mut u64),
) -> Result<(LayerDesc, &'static str)> {
    store.step_put(&key, &d)?;
    *layers += 1;
    *bytes += d.size;
    built.insert(key, d.clone());
    Ok((d, "miss"))
}

/// An error of a step's own making, placed at the step's definition.
fn at_step(e: Error, s: &crate::plan::Step) -> Error {
    match e {
        Error::Other(m) => Error::InputAt {
            loc: Box::new(s.loc.clone()),
            message: m,
        },
        other => other,
    }
}

/// Files of another image's filesystem as a layer.
fn copy_from(
    store: &Store,
    cf: &crate::plan::CopyFrom,
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

/// Writes a layer whose files have an owner (`--chown`): the folders
/// above them that the layers below lack are made with that owner, as
/// docker and buildah make them.
#[allow(clippy::too_many_arguments)]
fn write_owned(
    store: &Store,
    mut entries: Vec<files::FileEntry>,
    owner: crate::oci::Owner,
    layers: &[Descriptor],
    base_ref: Option<&crate::registry::Reference>,
    plan: &Plan,
    o: &BuildOptions,
    label: &str,
) -> Result<LayerDesc> {
    let above = files::folders_above(&entries);
    if !above.is_empty() {
        fetch_missing(store, layers, base_ref, o, label)?;
        let index = layers
            .iter()
            .map(|l| crate::layer::read::LayerIndex::cached(store, &l.digest, &l.media_type))
            .collect::<Result<Vec<_>>>()?;
        for f in crate::layer::read::missing_folders(&index, &above) {
            entries.push(files::FileEntry::folder(&f, 0o755, owner.uid, owner.gid));
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
    }
    files::write_layer(
        store,
        &entries,
        plan.options.compression,
        o.threads,
        plan.options.source_date_epoch,
        &|_| {},
    )
}

/// A step name cut to a line's worth, for progress labels.
fn short(name: &str) -> String {
    const MAX: usize = 60;
    // A script of several lines (a heredoc) shows as one.
    let name = name.trim().replace('\n', " ⏎ ");
    if name.chars().count() <= MAX {
        return name;
    }
    let cut: String = name.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

/// Every layer below a step must be in the store (a base image's layers
/// may still be in its registry).
fn fetch_missing(
    store: &Store,
    layers: &[Descriptor],
    base_ref: Option<&crate::registry::Reference>,
    o: &BuildOptions,
    label: &str,
) -> Result<()> {
    for l in layers {
        if !store.has_blob(&l.digest) {
            match (base_ref, o.client) {
                (Some(r), Some(c)) => c.fetch_blob(r, &l.digest, store)?,
                _ => {
                    return Err(Error::Other(format!(
                        "{label}: layer {} below the step is not in the store",
                        l.digest
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `--chown=NAME`: the ids in the /etc/passwd and /etc/group the layers
/// below leave.
fn owner_below(
    store: &Store,
    name: &str,
    layers: &[Descriptor],
    base_ref: Option<&crate::registry::Reference>,
    o: &BuildOptions,
    label: &str,
) -> Result<crate::oci::Owner> {
    fetch_missing(store, layers, base_ref, o, label)?;
    let refs: Vec<(crate::digest::Digest, &str)> = layers
        .iter()
        .map(|l| (l.digest, l.media_type.as_str()))
        .collect();
    let files = crate::layer::read::read_stored_files(store, &refs, &["etc/passwd", "etc/group"])?;
    let text = |f: &str| {
        String::from_utf8_lossy(files.get(f).map(Vec::as_slice).unwrap_or_default()).into_owned()
    };
    crate::layer::read::resolve_owner(name, &text("etc/passwd"), &text("etc/group"))
        .map_err(|m| Error::Other(format!("--chown={name}: {m}")))
}

/// Runs a RUN step on the layers assembled so far.
#[allow(clippy::too_many_arguments)]
fn run_step(
    store: &Store,
    rs: &crate::sandbox::RunStep,
    label: &str,
    loc: &str,
    (layers, base_count): (&[Descriptor], usize),
    cfg: &ImageConfig,
    base_ref: Option<&crate::registry::Reference>,
    plan: &Plan,
    o: &BuildOptions,
) -> Result<LayerDesc> {
    fetch_missing(store, layers, base_ref, o, label)?;
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
    let output = move |line: &str| progress.line(&format!("{prefix} | {line}"));
    let cx = crate::sandbox::RunContext {
        name: label,
        loc,
        layers: refs,
        base_layers: base_count,
        env: cfg.config.env.clone().unwrap_or_default(),
        workdir: cfg.config.working_dir.clone().unwrap_or_default(),
        user: cfg.config.user.clone().unwrap_or_default(),
        secrets: &o.secrets,
        compression: plan.options.compression,
        threads: o.threads,
        source_date_epoch: plan.options.source_date_epoch,
        output: &output,
    };
    let d = crate::sandbox::execute(store, rs, &cx)?;
    bar.finish(&format!(
        "ran in {:.2}s, {} → {}",
        t.elapsed().as_secs_f64(),
        human(d.uncompressed_size),
        human(d.size)
    ));
    Ok(d)
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

pub fn platform_json(p: &Platform) -> PlatformJson {
    PlatformJson {
        architecture: p.arch.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
    }
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

/// Brings a base layer from a local layout into the store (hard link when possible).
pub fn import_blob(store: &Store, dir: &Path, d: &Descriptor) -> Result<()> {
    if store.has_blob(&d.digest) {
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
    let actual = crate::layer::files::hash_file(&src)?;
    if actual != d.digest {
        return Err(Error::input(
            &src,
            format!(
                "base layer does not match its digest {} (it hashes to {actual})",
                d.digest
            ),
        ));
    }
    let dest = store.blob_path(&d.digest);
    if std::fs::hard_link(&src, &dest).is_ok() {
        return Ok(());
    }
    let mut tmp = store.temp_file()?;
    let mut f = std::fs::File::open(&src).ctx(|| format!("reading {}", src.display()))?;
    std::io::copy(&mut f, &mut tmp).ctx(|| format!("copying {}", src.display()))?;
    store.commit_blob(tmp, &d.digest)
}

/// `org.opencontainers.image.source`/`revision` when the context is a git checkout.
pub fn git_annotations(context: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(start) = std::fs::canonicalize(context) else {
        return out;
    };
    let Some(git) = start
        .ancestors()
        .map(|a| a.join(".git"))
        .find(|g| g.is_dir())
    else {
        return out;
    };
    if let Some(rev) = git_head(&git) {
        out.insert("org.opencontainers.image.revision".into(), rev);
    }
    if let Some(url) = git_origin(&git) {
        out.insert("org.opencontainers.image.source".into(), url);
    }
    out
}

fn git_head(git: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref: ") else {
        return (head.len() == 40).then(|| head.to_string());
    };
    if let Ok(s) = std::fs::read_to_string(git.join(r)) {
        return Some(s.trim().to_string());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == r && sha.len() == 40).then(|| sha.to_string())
    })
}

fn git_origin(git: &Path) -> Option<String> {
    let cfg = std::fs::read_to_string(git.join("config")).ok()?;
    let mut in_origin = false;
    for line in cfg.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_origin = l == "[remote \"origin\"]";
        } else if in_origin && let Some(v) = l.strip_prefix("url") {
            let url = v.trim_start().strip_prefix('=')?.trim();
            // Never publish credentials embedded in a remote URL.
            return Some(crate::net::redact(url));
        }
    }
    None
}

//! The planner: a definition becomes, per image, a list of steps with typed
//! content keys. File steps are independent of each other and of the base;
//! config steps only edit the image configuration.
//!
//! [`plan`] selects the images and locks native Debian bases; `plan_image`
//! walks one image's layers and hands each to the planner of its kind, one
//! file per kind:
//!
//! | file | layer kinds |
//! |---|---|
//! | `base.rs` | the base: scratch, OCI layout, registry image, another image |
//! | `copy.rs` | `source_folder`, `source_file`, heredocs; ignore rules |
//! | `add.rs` | `ADD` of a URL or of a local archive |
//! | `copy_from.rs` | files copied from another image |
//! | `config.rs` | env, workdir, user, labels, entrypoint, cmd, … (no layer) |
//! | `debian.rs` | native Debian bases and their `apt_packages` |
//! | `run.rs` | `commands` and `apt_packages` run in the sandbox |
//! | `python.rs` | `pip_packages`, `requirements`, `uv_project` |
//!
//! `common.rs` holds what they share. Planning computes keys: it reads the
//! context's files and the lock, but it leaves fetching and unpacking to
//! execution wherever a key can be had without them. Where it cannot, the
//! download stays here, and the module says why: `add.rs` (a URL without a
//! checksum), `python.rs` (a registry base's Python), `debian.rs` (the
//! signed indices, when the lock must be made again).

mod add;
mod base;
mod common;
mod config;
mod copy;
mod copy_from;
mod debian;
mod onepass;
pub mod python;
pub mod record;
mod run;

pub use add::Fetch;
pub use base::mirrored;
pub use config::{apply_config, config_value, expand_env, final_config};
pub use debian::native_apt_layers;
pub use onepass::OnePass;
pub use run::apt_script;

use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Location, Result};
use crate::layer::compress::Compression;
use crate::layer::files::FileEntry;
use crate::oci::Platform;
use crate::oci::layout::LayoutImage;
use crate::oci::types::ImageConfig;
use crate::registry::{Client, Reference, RemoteImage};
use crate::spec::{Base, Definition, ImageDef, LayerKind, Tag};
use crate::store::statcache::StatCache;
use crate::store::{LayerDesc, Store};
use common::{ImageCx, LayerCx};
use record::{ImageRecord, StepRecord};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub compression: Compression,
    pub no_default_ignore: bool,
    /// mtime of every file in a layer, and the image's `created`.
    pub source_date_epoch: u64,
    /// Only these images (and the images they are based on); all when empty.
    pub only: Vec<String>,
    pub profile: Option<String>,
    /// imgbuild's own outputs and store: never copied into a layer even when
    /// they lie inside a source folder.
    pub exclude: Vec<PathBuf>,
    /// Docker Hub bases come from here instead (HOST[/PREFIX]).
    pub base_mirror: Option<String>,
    pub python: python::PyPlanOptions,
    /// Native Debian bases: fail when the lock does not match (`--locked`),
    /// or resolve again whatever it says (`imgbuild lock`).
    pub debian_locked: bool,
    pub debian_relock: bool,
    /// Apt sources ("URI SUITE [COMPONENT...]") for native Debian bases
    /// that name none (`--debian-source`), instead of the host's.
    pub debian_sources: Vec<String>,
    /// Whether a cold files layer may be written while planning, in one
    /// pass (a build; never `plan`), and with how many threads.
    pub one_pass: OnePass,
    pub threads: usize,
    /// Registry step caches to look keys up in (`--cache-from`), first
    /// hit wins; and whether a hit's layer is downloaded while planning (a
    /// build with a local output) or left in the registry (`plan`, and a
    /// push, which mounts it).
    pub cache_from: Vec<crate::registry::cache::CacheRef>,
    pub fetch_cache_hits: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            compression: Compression::Gzip,
            no_default_ignore: false,
            // The caller says (the CLI reads SOURCE_DATE_EPOCH with
            // `source_date_epoch_from_env`); nothing here reads the
            // environment.
            source_date_epoch: 0,
            only: Vec::new(),
            profile: None,
            exclude: Vec::new(),
            base_mirror: None,
            python: python::PyPlanOptions::default(),
            debian_locked: false,
            debian_relock: false,
            debian_sources: Vec::new(),
            one_pass: OnePass::Off,
            threads: 1,
            cache_from: Vec::new(),
            fetch_cache_hits: false,
        }
    }
}

/// `SOURCE_DATE_EPOCH` from the environment, else 0: for the command line,
/// which passes it on in its request. Planning itself never calls it.
pub fn source_date_epoch_from_env() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub struct Plan {
    pub definition: Definition,
    pub options: PlanOptions,
    /// Bases before the images built on them.
    pub images: Vec<ImagePlan>,
    /// One per context folder read.
    pub stats: Vec<StatCache>,
    /// The lock of native Debian bases, and whether planning changed it
    /// (the build writes it then).
    pub debian_lock: Option<(PathBuf, crate::debian::lock::LockFile, bool)>,
    /// Keys of the layers planning wrote in one pass: built by this build,
    /// though execution finds them stored.
    pub made_in_plan: BTreeSet<Digest>,
    /// Steps found in a registry cache (not in the store): key → the
    /// cache repository.
    pub registry_hits: BTreeMap<Digest, String>,
    /// Steps looked up in the registry caches and found in none.
    pub registry_misses: BTreeSet<Digest>,
    /// The layers of those hits not downloaded while planning (a build
    /// with no local output takes them when a step needs their bytes, and
    /// a push mounts them), by layer digest.
    pub remote_layers: BTreeMap<Digest, crate::registry::cache::CacheLayer>,
    /// Planning results shared through a registry cache as data entries
    /// (a base's Python, a resolved `pip_packages` lock), by key: media
    /// type and bytes. `--cache-to` writes those the cache lacks.
    pub cache_data: BTreeMap<Digest, (&'static str, Vec<u8>)>,
}

impl Plan {
    /// The stat cache of files the store holds for layers (downloads,
    /// unpacked archives, heredocs); `plan` puts it last.
    pub fn store_stat(&self) -> &StatCache {
        self.stats
            .last()
            .expect("plan keeps the store's stat cache")
    }
}

#[derive(Clone, Debug)]
pub enum BasePlan {
    Scratch,
    /// One image per platform, in the order of `ImagePlan::platforms`.
    Layout {
        reference: String,
        images: Vec<LayoutImage>,
    },
    /// Another image of this definition (an index into `Plan::images`).
    Image(usize),
    /// An image in a registry: manifests and configs known, layers not fetched.
    Remote {
        reference: Reference,
        images: Vec<RemoteImage>,
    },
}

/// `--chown` of a file layer: ids, or a `USER[:GROUP]` with names.
#[derive(Clone, Debug)]
pub enum Chown {
    Ids(crate::oci::Owner),
    Name(String),
}

#[derive(Clone, Debug)]
pub enum Action {
    /// A layer made of these files.
    /// With `chown`, the layer is made when the layers below are known:
    /// a name is looked up in their /etc/passwd and /etc/group, and the
    /// folders above the files that they lack are made with that owner.
    /// With `fetch`, execution first downloads or unpacks what the files
    /// come from (`entries` is empty then, `bytes` the source's size).
    Files {
        entries: Vec<FileEntry>,
        bytes: u64,
        chown: Option<Chown>,
        fetch: Option<Box<Fetch>>,
    },
    /// A change to the image configuration (no layer).
    Config(LayerKind),
    /// Wheels (and the venv, or the project) installed into a layer.
    Python(Box<crate::python::layer::PyLayer>),
    /// A command run in the sandbox on the layers below (one platform).
    Run(Box<crate::sandbox::RunStep>),
    /// Files copied from another image's filesystem (one platform).
    CopyFrom(Box<CopyFrom>),
    /// Locked Debian packages assembled natively (one platform).
    Debian(Box<DebianStep>),
}

/// A layer of a native Debian base.
#[derive(Clone, Debug)]
pub struct DebianStep {
    pub packages: Vec<crate::debian::lock::LockedPackage>,
    /// Where they came from: the image's apt sources.
    pub suites: Vec<crate::debian::lock::LockedSuite>,
    /// Debian's name of the image's architecture.
    pub arch: String,
    /// Package data (with the merged-/usr links when `links` is not
    /// empty), or the generated state of all `packages`.
    pub state: bool,
    pub links: Vec<String>,
    /// 0 for the base; n after the n-th natively installed `apt_packages`
    /// layer. A state layer of group n > 0 holds only what differs from
    /// the state of the groups below it.
    pub group: u32,
    /// State layers: packages left unpacked for `dpkg --configure`.
    pub unpacked: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct CopyFrom {
    /// The image the files come from (an index into `Plan::images`).
    pub source: usize,
    /// Absolute paths in that image.
    pub srcs: Vec<String>,
    /// Layer path of the destination (no leading '/'); `dst_dir`: it ended
    /// with '/', so a file keeps its name under it.
    pub dst: String,
    pub dst_dir: bool,
    pub chown: Option<crate::oci::Owner>,
    pub chmod: Option<u32>,
    /// The source image's platform to copy from.
    pub platform: String,
    /// `--chown=NAME`: looked up in the layers below when built.
    pub owner_name: Option<String>,
    /// `--exclude` patterns, relative to each source.
    pub exclude: Vec<String>,
    /// `--parents`: each source keeps its path under `dst`.
    pub parents: bool,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub loc: Location,
    pub action: Action,
    pub key: Digest,
    /// The stored layer when the step's key is already built.
    pub cached: Option<LayerDesc>,
    /// For a miss: what changed since the last build of this image.
    pub why: Vec<String>,
    pub notes: Vec<String>,
    /// The step's options, as recorded for explanations.
    pub options: BTreeMap<String, String>,
    /// Only for this platform (an index into `ImagePlan::platforms`);
    /// `None` for every platform.
    pub platform: Option<usize>,
}

impl Step {
    pub fn makes_layer(&self) -> bool {
        matches!(
            self.action,
            Action::Files { .. }
                | Action::Python(_)
                | Action::Run(_)
                | Action::CopyFrom(_)
                | Action::Debian(_)
        )
    }

    /// The other images of the plan (by index) this step reads: the
    /// source of a copy, the images a RUN step mounts folders of.
    pub fn reads_images(&self) -> Vec<usize> {
        match &self.action {
            Action::CopyFrom(cf) => vec![cf.source],
            Action::Run(rs) => rs.image_mounts.iter().map(|m| m.image).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the step belongs to platform `pi`'s image.
    pub fn applies_to(&self, pi: usize) -> bool {
        self.platform.is_none_or(|p| p == pi)
    }

    /// What this step is made from, for the build record.
    pub fn record(&self) -> StepRecord {
        let files = match &self.action {
            Action::Files { fetch: Some(f), .. } => f.record(),
            Action::Files { entries, .. } => entries
                .iter()
                .map(|e| (e.path.to_string(), copy::fingerprint(e)))
                .collect(),
            Action::Config(_) | Action::Run(_) | Action::CopyFrom(_) => BTreeMap::new(),
            Action::Python(pl) => pl.inputs.clone(),
            Action::Debian(d) => d
                .packages
                .iter()
                .map(|p| (p.name.clone(), format!("{} {}", p.version, p.sha256)))
                .collect(),
        };
        StepRecord {
            name: self.name.clone(),
            key: self.key,
            options: self.options.clone(),
            files,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ImagePlan {
    pub id: String,
    pub name: String,
    pub registry: Option<String>,
    pub tag: String,
    /// The tag is `auto` (a content digest).
    pub auto_tag: bool,
    pub platforms: Vec<Platform>,
    pub base: BasePlan,
    /// The base's config per platform (before this image's edits).
    pub base_configs: Vec<ImageConfig>,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    pub record_id: Digest,
    /// Identity of the whole image (feeds `tag = "auto"` and dependants).
    pub content_key: Digest,
    /// The base's Python per platform, when a Python layer needed it.
    pub py_envs: Option<Vec<crate::python::layer::PyEnv>>,
}

impl ImagePlan {
    /// `registry/name:tag`, or `name:tag` without a registry.
    pub fn reference(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}:{}", self.name, self.tag),
            None => format!("{}:{}", self.name, self.tag),
        }
    }
}

/// Plans every selected image of a definition.
pub fn plan(
    def: Definition,
    store: &Store,
    options: PlanOptions,
    client: Option<&Client>,
) -> Result<Plan> {
    let context = std::fs::canonicalize(&def.context)
        .map_err(|e| Error::input(&def.context, format!("cannot open the context folder: {e}")))?;
    // One stat cache per context folder (Dockerfile bases read their own).
    let mut stats: Vec<(PathBuf, StatCache)> =
        vec![(context.clone(), StatCache::load(store.stat_path(&context)))];
    // Files the store holds for layers (unpacked archives, downloads,
    // heredocs) have a stat cache of their own.
    let store_root = store.root().to_path_buf();
    let store_stat = StatCache::load(store.stat_path(&store_root));
    // Select images and their bases, bases first.
    let mut order: Vec<usize> = Vec::new();
    let wanted: Vec<usize> = if options.only.is_empty() {
        (0..def.images.len()).collect()
    } else {
        options
            .only
            .iter()
            .map(|n| {
                def.images.iter().position(|i| &i.id == n).ok_or_else(|| {
                    let have: Vec<&str> = def.images.iter().map(|i| i.id.as_str()).collect();
                    Error::Usage(format!(
                        "no image {n:?} in {} (images: {})",
                        def.file.display(),
                        have.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    fn visit(def: &Definition, i: usize, order: &mut Vec<usize>) {
        if order.contains(&i) {
            return;
        }
        if let Base::Image(b) = &def.images[i].base {
            let bi = def
                .images
                .iter()
                .position(|x| &x.id == b)
                .expect("bases resolved at load");
            visit(def, bi, order);
        }
        // Images files are copied or mounted from come first too.
        for l in &def.images[i].layers {
            let from: Vec<&String> = match l.kind.inner() {
                LayerKind::CopyFrom { image, .. } => vec![image],
                LayerKind::Commands { run, .. } => {
                    run.from_mounts.iter().map(|m| &m.image).collect()
                }
                _ => vec![],
            };
            for image in from {
                if let Some(si) = def.images.iter().position(|x| &x.id == image) {
                    visit(def, si, order);
                }
            }
        }
        order.push(i);
    }
    for i in wanted {
        visit(&def, i, &mut order);
    }
    let debian_lock = debian::lock_debian_bases(&def, &order, &options, store)?;
    let mut images: Vec<ImagePlan> = Vec::new();
    let made = RefCell::new(BTreeSet::new());
    let files_steps = RefCell::new(BTreeSet::new());
    let registry_hits = RefCell::new(BTreeMap::new());
    let registry_misses = RefCell::new(BTreeSet::new());
    let remote_layers = RefCell::new(BTreeMap::new());
    let cache_data = RefCell::new(BTreeMap::new());
    for i in order {
        let img_context = match &def.images[i].context {
            None => context.clone(),
            Some(c) => std::fs::canonicalize(c)
                .map_err(|e| Error::input(c, format!("cannot open the context folder: {e}")))?,
        };
        if !stats.iter().any(|(p, _)| p == &img_context) {
            let sc = StatCache::load(store.stat_path(&img_context));
            stats.push((img_context.clone(), sc));
        }
        let stat = &stats
            .iter()
            .find(|(p, _)| p == &img_context)
            .expect("added above")
            .1;
        let env = Env {
            def: &def,
            context: &img_context,
            store,
            o: &options,
            stat,
            store_stat: (&store_root, &store_stat),
            debian_lock: debian_lock.as_ref().map(|(_, l, _)| l),
            client,
            made: &made,
            files_steps: &files_steps,
            registry_hits: &registry_hits,
            registry_misses: &registry_misses,
            remote_layers: &remote_layers,
            cache_data: &cache_data,
        };
        let img = plan_image(&env, &def.images[i], &images)?;
        images.push(img);
    }
    Ok(Plan {
        definition: def,
        options,
        images,
        stats: stats
            .into_iter()
            .map(|(_, s)| s)
            .chain(std::iter::once(store_stat))
            .collect(),
        debian_lock,
        made_in_plan: made.into_inner(),
        registry_hits: registry_hits.into_inner(),
        registry_misses: registry_misses.into_inner(),
        remote_layers: remote_layers.into_inner(),
        cache_data: cache_data.into_inner(),
    })
}

/// What every image's planning reads besides its own definition.
pub(crate) struct Env<'a> {
    def: &'a Definition,
    context: &'a Path,
    store: &'a Store,
    o: &'a PlanOptions,
    stat: &'a StatCache,
    /// The store's folder and the stat cache of files it holds.
    store_stat: (&'a Path, &'a StatCache),
    debian_lock: Option<&'a crate::debian::lock::LockFile>,
    client: Option<&'a Client>,
    /// Keys of the layers written in one pass, and the names of the
    /// files steps planned so far (the same folder in another image is a
    /// likely hit: it is hashed first).
    made: &'a RefCell<BTreeSet<Digest>>,
    files_steps: &'a RefCell<BTreeSet<String>>,
    registry_hits: &'a RefCell<BTreeMap<Digest, String>>,
    registry_misses: &'a RefCell<BTreeSet<Digest>>,
    remote_layers: &'a RefCell<BTreeMap<Digest, crate::registry::cache::CacheLayer>>,
    cache_data: &'a RefCell<BTreeMap<Digest, (&'static str, Vec<u8>)>>,
}

impl Env<'_> {
    /// The layer of step `key` if it was built before: by this machine
    /// (the store), else by one that wrote it to a registry cache. A
    /// build downloads such a layer into the store, checked against its
    /// entry; an entry that does not check out is a miss with a warning.
    fn cached(&self, key: &Digest) -> Option<LayerDesc> {
        if let Some(d) = self.store.step_get(key) {
            return Some(d);
        }
        let client = self.client?;
        for c in &self.o.cache_from {
            let warn = |e: Error| crate::registry::cache::warn_unused(&c.repo, key, &e);
            let desc = match crate::registry::cache::lookup(client, &c.repo, key) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => {
                    warn(e);
                    continue;
                }
            };
            if self.o.fetch_cache_hits {
                let got = crate::registry::cache::fetch_layer(client, &c.repo, &desc, self.store)
                    .and_then(|()| self.store.step_put(key, &desc));
                if let Err(e) = got {
                    warn(e);
                    continue;
                }
            } else if !self.store.blob_ok(&desc.digest, desc.size) {
                self.remote_layers.borrow_mut().insert(
                    desc.digest,
                    crate::registry::cache::CacheLayer {
                        repo: c.repo.clone(),
                        key: *key,
                        layer: desc.clone(),
                    },
                );
            }
            self.registry_hits
                .borrow_mut()
                .insert(*key, c.repo.to_string());
            return Some(desc);
        }
        if !self.o.cache_from.is_empty() {
            self.registry_misses.borrow_mut().insert(*key);
        }
        None
    }

    /// A planning result of key `key` (`media_type`, see
    /// [`crate::registry::cache`]'s data entries): from `local` in the
    /// store, else from a registry cache (then kept at `local`), else
    /// made by `make` (which keeps it at `local` itself, or not). Bytes
    /// `valid` refuses are not used. Whatever the source, the build's
    /// `--cache-to` writes it where it is missing.
    fn shared_data(
        &self,
        key: &Digest,
        media_type: &'static str,
        local: &Path,
        valid: &dyn Fn(&[u8]) -> bool,
        make: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let found = std::fs::read(local).ok().filter(|b| valid(b));
        let found = found.or_else(|| {
            let client = self.client?;
            self.o.cache_from.iter().find_map(|c| {
                match crate::registry::cache::lookup_data(
                    client, self.store, &c.repo, key, media_type,
                ) {
                    Ok(Some(b)) if valid(&b) => {
                        if let Some(dir) = local.parent() {
                            let _ = std::fs::create_dir_all(dir);
                        }
                        let _ = self.store.write_atomic(local, &b);
                        Some(b)
                    }
                    Ok(Some(_)) => {
                        let e = Error::Other("its data is not what it should hold".into());
                        crate::registry::cache::warn_unused(&c.repo, key, &e);
                        None
                    }
                    Ok(None) => None,
                    Err(e) => {
                        crate::registry::cache::warn_unused(&c.repo, key, &e);
                        None
                    }
                }
            })
        });
        let bytes = match found {
            Some(b) => b,
            None => make()?,
        };
        self.cache_data
            .borrow_mut()
            .insert(*key, (media_type, bytes.clone()));
        Ok(bytes)
    }
}

/// One image's steps: the base, then each layer by its kind's planner.
fn plan_image(env: &Env, img: &ImageDef, done: &[ImagePlan]) -> Result<ImagePlan> {
    let mut key = KeyHasher::new("image", 1);
    let (base, base_configs) = base::plan_base(env, img, done, &mut key)?;
    for p in &img.platforms {
        key.str(&p.to_string());
    }
    let base_chain = base::chain(img, &base, done);
    let (rules, ignore_desc) = copy::ignore_rules(env, img)?;
    let record_id = record_id(env, img);
    let cx = ImageCx {
        env,
        img,
        done,
        base: &base,
        base_configs: &base_configs,
        base_chain: &base_chain,
        rules: &rules,
        ignore_desc: &ignore_desc,
        record_id: &record_id,
        previous: std::cell::OnceCell::new(),
    };
    let mut steps = Steps {
        key,
        list: Vec::new(),
        previous: None,
        store: env.store,
        record_id: &record_id,
    };
    let mut notes = Vec::new();
    if let Base::DebianNative(_) = &img.base {
        steps.add(0, debian::plan_group(&cx, 0, &img.base_loc, &[])?);
    }
    // The workdir in force decides where relative destinations land.
    let mut cfg = base_configs.first().cloned().unwrap_or_default();
    let native_apt = debian::native_apt_layers(img);
    let mut ignore_noted = false;
    let mut py = python::PyState::default();
    // `uv = true`: the uv binary, from its wheel, after the image's layers.
    let uv_layer = img.uv.then(|| crate::spec::Layer {
        loc: img.uv_loc.clone(),
        kind: LayerKind::PipPackages {
            packages: vec!["uv".into()],
            options: Default::default(),
        },
    });
    for (index, l) in img.layers.iter().chain(uv_layer.iter()).enumerate() {
        let lc = LayerCx::new(l, &base_chain, &steps.list);
        let planned = match &lc.layer.kind {
            LayerKind::PipPackages { .. }
            | LayerKind::Requirements { .. }
            | LayerKind::UvProject { .. } => python::plan_entry(&cx, &lc, &mut cfg, &mut py)?,
            LayerKind::CopyFrom { .. } => copy_from::plan(&cx, &lc, &cfg)?,
            LayerKind::AptPackages { .. } if native_apt.iter().any(|(i, _)| *i == index) => {
                let n = native_apt.iter().position(|(i, _)| *i == index);
                let group = n.expect("matched") as u32 + 1;
                debian::plan_group(&cx, group, &lc.layer.loc, &steps.list)?
            }
            LayerKind::Commands { .. } | LayerKind::AptPackages { .. } => {
                if matches!(lc.layer.kind, LayerKind::AptPackages { .. })
                    && matches!(img.base, Base::DebianNative(_))
                {
                    notes.push(format!(
                        "{}: apt_packages after a commands layer run apt in the sandbox (a native install would overwrite what the commands changed in the dpkg state)",
                        lc.layer.loc
                    ));
                }
                run::plan(&cx, &lc.layer, &steps.list)?
            }
            LayerKind::SourceFolder { .. } => {
                vec![copy::plan_folder(&cx, &lc, &cfg, &mut ignore_noted)?]
            }
            LayerKind::SourceFile { .. } => vec![copy::plan_file(&cx, &lc, &cfg)?],
            LayerKind::Inline { .. } => vec![copy::plan_inline(&cx, &lc, &cfg)?],
            LayerKind::AddUrl { .. } => vec![add::plan_url(&cx, &lc, &cfg)?],
            LayerKind::AddArchive { .. } => vec![add::plan_archive(&cx, &lc, &cfg)?],
            LayerKind::AddGit { .. } => vec![add::plan_git(&cx, &lc, &cfg)?],
            _ => vec![config::plan(&cx, &lc, &mut cfg)],
        };
        steps.add(index, planned);
    }
    let Steps {
        key, list: steps, ..
    } = steps;
    if !steps.iter().any(|s| s.makes_layer()) && matches!(img.base, Base::Scratch) {
        notes.push("the image has no layers".into());
    }
    let content_key = key.finish();
    let tag = match &img.tag {
        Tag::Auto => content_key.hex()[..24].to_string(),
        Tag::Explicit(t) => t.clone(),
    };
    Ok(ImagePlan {
        id: img.id.clone(),
        name: img.name.clone(),
        registry: img.registry.clone(),
        tag,
        auto_tag: img.tag == Tag::Auto,
        platforms: img.platforms.clone(),
        base,
        base_configs,
        steps,
        notes,
        record_id,
        content_key,
        py_envs: py.envs,
    })
}

/// Where an image's last build record is kept: its definition file, its
/// id and the profile.
fn record_id(env: &Env, img: &ImageDef) -> Digest {
    let def = env.def;
    let mut k = KeyHasher::new("record", 1);
    k.str(
        &def.file
            .canonicalize()
            .unwrap_or(def.file.clone())
            .display()
            .to_string(),
    )
    .str(&img.id)
    .opt_str(env.o.profile.as_deref());
    k.finish()
}

/// An image's steps as they are planned, and the image key they feed.
struct Steps<'a> {
    key: KeyHasher,
    list: Vec<Step>,
    /// The last build record, loaded on the first miss that needs explaining.
    previous: Option<Option<ImageRecord>>,
    store: &'a Store,
    record_id: &'a Digest,
}

impl Steps<'_> {
    /// Appends the steps of layer `index`: each layer step that misses is
    /// explained from the last build, and every key feeds the image's.
    fn add(&mut self, index: usize, steps: Vec<Step>) {
        for mut step in steps {
            if step.makes_layer() && step.cached.is_none() {
                let prev = self
                    .previous
                    .get_or_insert_with(|| ImageRecord::load(self.store, self.record_id));
                step.why = record::explain(prev.as_ref(), index, &step.record());
            }
            self.key.digest(&step.key);
            self.list.push(step);
        }
    }
}

//! The planner: a definition becomes, per image, a list of steps with typed
//! content keys. File steps are independent of each other and of the base;
//! config steps only edit the image configuration.

pub mod python;
pub mod record;

use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Location, Result};
use crate::layer::compress::{Compression, GZIP_CHUNK};
use crate::layer::files::{self, CollectOptions, FILES_FORMAT, FileEntry, FileKind};
use crate::layer::ignore::{DEFAULT_IGNORES, IgnoreRules};
use crate::oci::Platform;
use crate::oci::layout::{self, LayoutImage};
use crate::oci::types::ImageConfig;
use crate::registry::{self, Client, Reference, RemoteImage};
use crate::sandbox::DEFAULT_PATH;
use crate::spec::{Base, Definition, ImageDef, LayerKind, Tag};
use crate::store::statcache::StatCache;
use crate::store::{LayerDesc, Store};
use record::{ImageRecord, StepRecord};
use std::collections::BTreeMap;
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
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            compression: Compression::Gzip,
            no_default_ignore: false,
            source_date_epoch: source_date_epoch_from_env(),
            only: Vec::new(),
            profile: None,
            exclude: Vec::new(),
            base_mirror: None,
            python: python::PyPlanOptions::default(),
            debian_locked: false,
            debian_relock: false,
            debian_sources: Vec::new(),
        }
    }
}

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
    Files {
        entries: Vec<FileEntry>,
        bytes: u64,
        chown: Option<Chown>,
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

    /// Whether the step belongs to platform `pi`'s image.
    pub fn applies_to(&self, pi: usize) -> bool {
        self.platform.is_none_or(|p| p == pi)
    }

    /// What this step is made from, for the build record.
    pub fn record(&self) -> StepRecord {
        let files = match &self.action {
            Action::Files { entries, .. } => entries
                .iter()
                .map(|e| (e.path.to_string(), fingerprint(e)))
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

/// Applies a config step to an image configuration (Docker's semantics).
pub fn apply_config(cfg: &mut ImageConfig, kind: &LayerKind) {
    let c = &mut cfg.config;
    match kind {
        LayerKind::Env(vars) => {
            for (k, v) in vars {
                let expanded = expand_env(v, cfg);
                cfg.env_set(k, &expanded);
            }
        }
        LayerKind::Workdir(w) => {
            // As docker and buildah: an absolute one as written, a relative
            // one joined to the current one and cleaned.
            let cur = c.working_dir.clone().unwrap_or_else(|| "/".into());
            c.working_dir = Some(if w.starts_with('/') {
                w.clone()
            } else {
                format!("/{}", files::resolve_dst(&cur, w))
            });
        }
        LayerKind::User(u) => c.user = Some(u.clone()),
        LayerKind::Labels(l) => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in l {
                labels.insert(k.clone(), v.clone());
            }
        }
        LayerKind::Entrypoint(e) => {
            c.entrypoint = Some(e.clone());
            // As in Docker, a new entrypoint drops the base's CMD.
            c.cmd = None;
        }
        LayerKind::Cmd(v) => c.cmd = Some(v.clone()),
        LayerKind::Expose(ports) => {
            let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                map.insert(p.clone(), serde_json::json!({}));
            }
        }
        LayerKind::DockerConfig { field, value } => match field.as_str() {
            "Volumes" => {
                let map = c.volumes.get_or_insert_with(BTreeMap::new);
                for v in value.as_array().into_iter().flatten() {
                    if let Some(p) = v.as_str() {
                        map.insert(p.to_string(), serde_json::json!({}));
                    }
                }
            }
            "StopSignal" => c.stop_signal = value.as_str().map(String::from),
            "OnBuild" => {
                let list = c
                    .extra
                    .entry("OnBuild".to_string())
                    .or_insert_with(|| serde_json::json!([]));
                if let (Some(l), Some(s)) = (list.as_array_mut(), value.as_str()) {
                    l.push(serde_json::json!(s));
                }
            }
            other => {
                c.extra.insert(other.to_string(), value.clone());
            }
        },
        _ => {}
    }
}

/// Expands `$VAR` and `${VAR}` from the config's environment; `\$` is a literal `$`.
pub fn expand_env(v: &str, cfg: &ImageConfig) -> String {
    let mut out = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                out.push('$');
                chars.next();
            }
            '$' => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced {
                    if chars.peek() == Some(&'}') {
                        chars.next();
                    } else {
                        out.push_str("${");
                        out.push_str(&name);
                        continue;
                    }
                }
                if name.is_empty() {
                    out.push('$');
                    if braced {
                        out.push_str("{}");
                    }
                } else {
                    out.push_str(cfg.env_get(&name).unwrap_or(""));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn unsupported(loc: &Location, what: &str, issue_hint: &str) -> Error {
    Error::Unsupported {
        what: format!("{loc}: {what}"),
        hint: Some(issue_hint.to_string()),
    }
}

fn base_config(p: &Platform) -> ImageConfig {
    ImageConfig {
        architecture: p.arch.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        rootfs: crate::oci::types::RootFs {
            kind: "layers".into(),
            diff_ids: vec![],
        },
        ..Default::default()
    }
}

/// Plans every selected image of a definition.
/// Applies `--base-registry-mirror HOST[/PREFIX]` to a Docker Hub reference.
pub fn mirrored(r: Reference, mirror: Option<&str>) -> Reference {
    match mirror {
        Some(m) if r.registry == crate::registry::reference::DOCKER_HUB => {
            let (host, prefix) = m
                .trim_end_matches('/')
                .split_once('/')
                .unwrap_or((m.trim_end_matches('/'), ""));
            let repository = if prefix.is_empty() {
                r.repository.clone()
            } else {
                format!("{prefix}/{}", r.repository)
            };
            Reference {
                registry: host.to_string(),
                repository,
                ..r
            }
        }
        _ => r,
    }
}

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
        // Images files are copied from come first too.
        for l in &def.images[i].layers {
            if let LayerKind::CopyFrom { image, .. } = l.kind.inner()
                && let Some(si) = def.images.iter().position(|x| &x.id == image)
            {
                visit(def, si, order);
            }
        }
        order.push(i);
    }
    for i in wanted {
        visit(&def, i, &mut order);
    }
    let debian_lock = lock_debian_bases(&def, &order, &options, store)?;
    let mut images: Vec<ImagePlan> = Vec::new();
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
    })
}

/// What every image's planning reads besides its own definition.
struct Env<'a> {
    def: &'a Definition,
    context: &'a Path,
    store: &'a Store,
    o: &'a PlanOptions,
    stat: &'a StatCache,
    /// The store's folder and the stat cache of files it holds.
    store_stat: (&'a Path, &'a StatCache),
    debian_lock: Option<&'a crate::debian::lock::LockFile>,
    client: Option<&'a Client>,
}

/// The lock entries of every native Debian base the selected images use:
/// kept when they match the request, else resolved from the signed indices
/// (an error with `--locked`).
fn lock_debian_bases(
    def: &Definition,
    order: &[usize],
    o: &PlanOptions,
    store: &Store,
) -> Result<Option<(PathBuf, crate::debian::lock::LockFile, bool)>> {
    use crate::debian::lock::{LOCK_FILE, LockFile};
    let wanted: Vec<&ImageDef> = order
        .iter()
        .map(|&i| &def.images[i])
        .filter(|i| matches!(i.base, Base::DebianNative(_)))
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let path = def.dir.join(LOCK_FILE);
    let mut lock = LockFile::load(&path)?;
    let mut changed = false;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for img in wanted {
        let Base::DebianNative(spec) = &img.base else {
            continue;
        };
        let with_flag;
        let spec: &crate::debian::DebianBase =
            if spec.sources.is_empty() && !o.debian_sources.is_empty() {
                if let Some(bad) = o
                    .debian_sources
                    .iter()
                    .find(|s| s.split_whitespace().count() < 2)
                {
                    return Err(Error::Usage(format!(
                        "--debian-source {bad:?}: expected \"URI SUITE [COMPONENT...]\""
                    )));
                }
                with_flag = crate::debian::DebianBase {
                    sources: o.debian_sources.clone(),
                    ..(**spec).clone()
                };
                &with_flag
            } else {
                spec
            };
        for p in &img.platforms {
            let at = |e: Error| match e {
                Error::Other(m) | Error::Usage(m) => Error::InputAt {
                    loc: Box::new(img.base_loc.clone()),
                    message: m,
                },
                other => other,
            };
            let arch = crate::debian::debian_arch(p).map_err(at)?;
            let suites = crate::debian::suites(spec, &def.dir, &arch).map_err(at)?;
            let apt: Vec<Vec<String>> =
                native_apt_layers(img).into_iter().map(|(_, p)| p).collect();
            let request = crate::debian::request_key(spec, &apt, &arch, &suites).map_err(at)?;
            let fresh = lock
                .find(&img.id, &arch)
                .is_some_and(|b| b.request == request);
            if fresh && !o.debian_relock {
                continue;
            }
            if o.debian_locked {
                return Err(Error::Definition {
                    loc: Box::new(img.base_loc.clone()),
                    message: format!(
                        "{} has no entry for this base on {arch}, or one made for another request (run `imgbuild lock`)",
                        path.display()
                    ),
                });
            }
            let base = crate::debian::resolve_base(spec, &apt, &img.id, &arch, &suites, now, store)
                .map_err(at)?;
            lock.put(base);
            changed = true;
        }
    }
    Ok(Some((path, lock, changed)))
}

fn plan_image(env: &Env, img: &ImageDef, done: &[ImagePlan]) -> Result<ImagePlan> {
    let Env {
        def,
        context,
        store,
        o,
        stat,
        store_stat: (store_root, store_stat),
        client,
        ..
    } = *env;
    let mut key = KeyHasher::new("image", 1);
    let mut notes = Vec::new();
    // Base.
    let (base, base_configs) = match &img.base {
        Base::Dockerfile { .. } => unreachable!("replaced by its stages when loaded"),
        Base::DebianNative(_) => {
            key.str("debian-native");
            // The layers come as the image's first steps (below).
            let configs = img
                .platforms
                .iter()
                .map(|p| {
                    let mut c = base_config(p);
                    c.config.env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
                    c.config.cmd = Some(vec!["bash".into()]);
                    c
                })
                .collect();
            (BasePlan::Scratch, configs)
        }
        Base::Scratch => {
            key.str("scratch");
            (
                BasePlan::Scratch,
                img.platforms.iter().map(base_config).collect(),
            )
        }
        Base::Layout { dir, tag } => {
            // The base as written, not the path it was reached by: the
            // base.name annotation must not depend on the working folder.
            let written = format!(
                "oci:{}{}",
                dir.display(),
                tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
            );
            // Relative to the definition's own folder.
            let dir = if dir.is_absolute() {
                dir.clone()
            } else {
                def.dir.join(dir)
            };
            let mut imgs = Vec::new();
            for p in &img.platforms {
                let li =
                    layout::read_image(&dir, tag.as_deref(), p).map_err(|e| Error::InputAt {
                        loc: Box::new(img.base_loc.clone()),
                        message: e.to_string(),
                    })?;
                key.str("layout").digest(&li.manifest_digest);
                imgs.push(li);
            }
            let configs = imgs.iter().map(|li| li.config.clone()).collect();
            (
                BasePlan::Layout {
                    reference: written,
                    images: imgs,
                },
                configs,
            )
        }
        Base::Image(other) => {
            let bi = done
                .iter()
                .position(|p| &p.id == other)
                .expect("bases are planned first");
            let b = &done[bi];
            let mut configs = Vec::new();
            for p in &img.platforms {
                let Some(pi) = b.platforms.iter().position(|x| x == p) else {
                    return Err(Error::Definition {
                        loc: Box::new(img.base_loc.clone()),
                        message: format!(
                            "base image {other:?} is not built for {p} (it has: {})",
                            b.platforms
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                };
                configs.push(final_config(b, pi));
            }
            key.str("image").digest(&b.content_key);
            (BasePlan::Image(bi), configs)
        }
        Base::Debian | Base::Ref(_) => {
            let written = match &img.base {
                Base::Ref(r) => r.clone(),
                _ => format!(
                    "python:{}-slim-bookworm",
                    img.python.as_deref().unwrap_or("3.12")
                ),
            };
            let reference = Reference::parse(&written).map_err(|m| Error::Definition {
                loc: Box::new(img.base_loc.clone()),
                message: m,
            })?;
            let reference = mirrored(reference, o.base_mirror.as_deref());
            let Some(client) = client else {
                return Err(unsupported(
                    &img.base_loc,
                    &format!("registry base {reference} without registry access"),
                    "this command does not reach registries",
                ));
            };
            let images = registry::resolve(client, store, &reference, &img.platforms).map_err(
                |e| match e {
                    Error::Registry { message, status } => Error::Registry {
                        message: format!("{}: base: {message}", img.base_loc),
                        status,
                    },
                    other => other,
                },
            )?;
            for ri in &images {
                key.str("remote").digest(&ri.manifest_digest);
            }
            let configs = images.iter().map(|ri| ri.config.clone()).collect();
            (BasePlan::Remote { reference, images }, configs)
        }
    };
    for p in &img.platforms {
        key.str(&p.to_string());
    }
    // What RUN steps stand on, per platform, before any step of this image.
    let base_chain: Vec<Digest> = img
        .platforms
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let mut k = KeyHasher::new("base", 1);
            match &base {
                BasePlan::Scratch => k.str("scratch"),
                BasePlan::Layout { images, .. } => k.digest(&images[pi].manifest_digest),
                BasePlan::Remote { images, .. } => k.digest(&images[pi].manifest_digest),
                BasePlan::Image(bi) => k.digest(&done[*bi].content_key).str(&p.to_string()),
            };
            k.finish()
        })
        .collect();
    // Ignore rules: the last `dockerignore` layer, else <context>/.dockerignore,
    // else the built-in defaults.
    let ignore_file = img.layers.iter().rev().find_map(|l| match &l.kind {
        LayerKind::Dockerignore(p) => Some((context.join(p), Some(l.loc.clone()))),
        _ => None,
    });
    let ignore_file = ignore_file.or_else(|| {
        let p = context.join(".dockerignore");
        p.is_file().then_some((p, None))
    });
    let (rules, ignore_desc) = match &ignore_file {
        Some((p, loc)) => {
            let text = std::fs::read_to_string(p).map_err(|e| match loc {
                Some(loc) => Error::Definition {
                    loc: Box::new(loc.clone()),
                    message: format!("cannot read ignore file {}: {e}", p.display()),
                },
                None => Error::input(p, format!("cannot read: {e}")),
            })?;
            let rules = IgnoreRules::parse(&text).map_err(|e| Error::input(p, e.to_string()))?;
            let name = files::context_rel(context, p).unwrap_or_else(|| p.display().to_string());
            (
                rules,
                format!(
                    "{name} ({} patterns)",
                    text.lines()
                        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                        .count()
                ),
            )
        }
        None if o.no_default_ignore => (
            IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty"),
            "none (--no-default-ignore)".to_string(),
        ),
        None => (
            IgnoreRules::from_patterns(DEFAULT_IGNORES).expect("built-in patterns parse"),
            "built-in defaults (VCS folders, Python caches; --no-default-ignore keeps them)"
                .to_string(),
        ),
    };
    let record_id = {
        let mut k = KeyHasher::new("record", 1);
        k.str(
            &def.file
                .canonicalize()
                .unwrap_or(def.file.clone())
                .display()
                .to_string(),
        )
        .str(&img.id)
        .opt_str(o.profile.as_deref());
        k.finish()
    };
    // Loaded only when a step misses and needs explaining.
    let mut previous: Option<Option<ImageRecord>> = None;
    // Steps. The workdir in force decides where relative destinations land.
    let mut cfg = base_configs.first().cloned().unwrap_or_default();
    let mut steps: Vec<Step> = Vec::new();
    if let Base::DebianNative(_) = &img.base {
        for mut step in plan_debian_group(
            env,
            img,
            0,
            &img.base_loc,
            (&base_configs, &base_chain),
            &steps,
        )? {
            explain_miss(&mut step, &mut previous, store, &record_id, 0);
            key.digest(&step.key);
            steps.push(step);
        }
    }
    let native_apt = native_apt_layers(img);
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
        // With an owner, the layers below decide what the layer holds (a
        // name's ids, the folders it makes), so they are part of its key.
        let unwrapped;
        let (l, owner_name) = match &l.kind {
            LayerKind::NamedOwner { owner, inner } => {
                unwrapped = crate::spec::Layer {
                    loc: l.loc.clone(),
                    kind: (**inner).clone(),
                };
                (&unwrapped, Some(owner.clone()))
            }
            _ => (l, None),
        };
        let chown_of = match (&owner_name, l.kind.chown()) {
            (Some(n), _) => Some(Chown::Name(n.clone())),
            (None, Some(ids)) => Some(Chown::Ids(ids)),
            (None, None) => None,
        };
        let below = chown_of.as_ref().map(|_| {
            let mut k = KeyHasher::new("below", 1);
            for d in &base_chain {
                k.digest(d);
            }
            for s in steps.iter().filter(|s| s.makes_layer()) {
                k.digest(&s.key);
            }
            k.finish()
        });
        if matches!(
            l.kind,
            LayerKind::PipPackages { .. }
                | LayerKind::Requirements { .. }
                | LayerKind::UvProject { .. }
        ) {
            if py.envs.is_none()
                && let BasePlan::Image(bi) = &base
                && let Some(be) = &done[*bi].py_envs
            {
                let b = &done[*bi];
                py.envs = Some(
                    img.platforms
                        .iter()
                        .map(|p| {
                            let i = b.platforms.iter().position(|x| x == p).unwrap_or(0);
                            be[i].clone()
                        })
                        .collect(),
                );
            }
            if py.envs.is_none() {
                let layers = match native_packages(env, img, done, &base) {
                    Some(v) => python::BaseLayers::Debian(v),
                    None => base_layers(env, done, &base, &img.platforms),
                };
                py.envs = Some(python::detect(
                    env,
                    img.python.as_deref(),
                    &layers,
                    &base_configs,
                    &img.platforms,
                    &l.loc,
                )?);
            }
            let envs = py.envs.as_ref().expect("set above");
            let skeleton = cfg.env_get("VIRTUAL_ENV") != Some(img.venv.as_str());
            let planned = python::plan_layer(
                env,
                l,
                &img.venv,
                &img.platforms,
                envs,
                skeleton,
                &rules,
                &o.python,
            )?;
            for mut step in planned.steps {
                explain_miss(&mut step, &mut previous, store, &record_id, index);
                key.digest(&step.key);
                steps.push(step);
            }
            if let Some(mut vars) = planned.venv_env {
                let bin = format!("{}/bin", img.venv);
                match cfg.env_get("PATH") {
                    None => vars[1].1 = format!("{bin}:{DEFAULT_PATH}"),
                    // Already on PATH (Flyte's header puts it there): kept once.
                    Some(p) if p.split(':').any(|d| d == bin) => {
                        vars.truncate(1);
                    }
                    Some(_) => {}
                }
                let kind = LayerKind::Env(vars);
                apply_config(&mut cfg, &kind);
                let step_key = config_key(&kind);
                let mut opts = BTreeMap::new();
                opts.insert("value".into(), config_value(&kind));
                key.digest(&step_key);
                steps.push(Step {
                    name: format!("env {} (the venv)", config_value(&kind)),
                    loc: l.loc.clone(),
                    action: Action::Config(kind),
                    key: step_key,
                    cached: None,
                    why: vec![],
                    notes: vec![],
                    options: opts,
                    platform: None,
                });
            }
            continue;
        }
        if let LayerKind::CopyFrom {
            image,
            srcs,
            dst,
            chown,
            chmod,
        } = &l.kind
        {
            let Some(source) = done.iter().position(|p| &p.id == image) else {
                return Err(Error::Definition {
                    loc: Box::new(l.loc.clone()),
                    message: format!("no image {image:?} to copy from"),
                });
            };
            let workdir = cfg
                .config
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into());
            let layer_dst = files::resolve_dst(&workdir, dst);
            let src_img = &done[source];
            for (pi, p) in img.platforms.iter().enumerate() {
                // A stage pinned to one platform (`FROM --platform`) serves all.
                let src_p = if src_img.platforms.contains(p) {
                    p
                } else if let [only] = src_img.platforms.as_slice() {
                    only
                } else {
                    return Err(Error::Definition {
                        loc: Box::new(l.loc.clone()),
                        message: format!("image {image:?} is not built for {p}"),
                    });
                };
                let mut k = KeyHasher::new("copy-from", 1);
                k.digest(&src_img.content_key).str(&src_p.to_string());
                k.u64(srcs.len() as u64);
                for s in srcs {
                    k.str(s);
                }
                k.str(&layer_dst)
                    .u64(dst.ends_with('/') as u64)
                    .str(&format!("{chown:?}"))
                    .str(&format!("{chmod:?}"))
                    .str(o.compression.name())
                    .u64(o.compression.level() as u64)
                    .u64(GZIP_CHUNK as u64)
                    .u64(o.source_date_epoch);
                k.opt_str(owner_name.as_deref());
                if let Some(b) = &below {
                    k.digest(b);
                }
                let step_key = k.finish();
                let mut options = BTreeMap::new();
                options.insert("from".into(), image.clone());
                if let Some(n) = &owner_name {
                    options.insert("chown".into(), n.clone());
                }
                options.insert("src".into(), srcs.join(" "));
                options.insert("dst".into(), format!("/{layer_dst}"));
                let name = format!(
                    "copy --from={image} {} → /{layer_dst}{}",
                    srcs.join(" "),
                    if img.platforms.len() > 1 {
                        format!(" ({p})")
                    } else {
                        String::new()
                    }
                );
                let mut step = Step {
                    name,
                    loc: l.loc.clone(),
                    action: Action::CopyFrom(Box::new(CopyFrom {
                        source,
                        srcs: srcs.clone(),
                        dst: layer_dst.clone(),
                        dst_dir: dst.ends_with('/') || dst == ".",
                        chown: *chown,
                        chmod: *chmod,
                        platform: src_p.to_string(),
                        owner_name: owner_name.clone(),
                    })),
                    key: step_key,
                    cached: store.step_get(&step_key),
                    why: vec![],
                    notes: vec![],
                    options,
                    platform: Some(pi),
                };
                explain_miss(&mut step, &mut previous, store, &record_id, index);
                key.digest(&step.key);
                steps.push(step);
            }
            continue;
        }
        if let Some(n) = native_apt.iter().position(|(i, _)| *i == index) {
            let group = n as u32 + 1;
            for mut step in plan_debian_group(
                env,
                img,
                group,
                &l.loc,
                (&base_configs, &base_chain),
                &steps,
            )? {
                explain_miss(&mut step, &mut previous, store, &record_id, index);
                key.digest(&step.key);
                steps.push(step);
            }
            continue;
        }
        if let LayerKind::Commands { .. } | LayerKind::AptPackages { .. } = &l.kind {
            if matches!(l.kind, LayerKind::AptPackages { .. })
                && matches!(img.base, Base::DebianNative(_))
            {
                notes.push(format!(
                    "{}: apt_packages after a commands layer run apt in the sandbox (a native install would overwrite what the commands changed in the dpkg state)",
                    l.loc
                ));
            }
            for mut step in plan_run(env, l, img, &base_configs, &base_chain, &steps)? {
                explain_miss(&mut step, &mut previous, store, &record_id, index);
                key.digest(&step.key);
                steps.push(step);
            }
            continue;
        }
        let workdir = cfg
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        // A file the store holds (a download, a heredoc) as a layer's file.
        let store_file = |path: &Path, dst: &str, owner: Option<crate::oci::Owner>, mode: u32| {
            let no_rules = IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
            files::collect_file(
                path,
                dst,
                &CollectOptions {
                    context: store_root,
                    rules: &no_rules,
                    owner,
                    chmod: Some(mode),
                    stat: store_stat,
                    exclude: &[],
                },
            )
        };
        let (name, action, mut rec_opts, step_notes) = match &l.kind {
            LayerKind::SourceFolder {
                src,
                dst,
                copy_contents_only,
                chown,
                chmod,
            } => {
                let src_path = context.join(src);
                let src_path = src_path.canonicalize().unwrap_or(src_path);
                let src_name = src_path
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                    .unwrap_or_else(|| src.clone());
                // Flyte's rule: copy_contents_only = false with dst "." puts the folder itself there.
                let derived = !copy_contents_only && (dst == "." || dst == "./");
                let dst_eff = if derived {
                    format!("./{src_name}")
                } else {
                    dst.clone()
                };
                let layer_dst = files::resolve_dst(&workdir, &dst_eff);
                let c = files::collect_folder(
                    &src_path,
                    &layer_dst,
                    derived,
                    &CollectOptions {
                        context,
                        rules: &rules,
                        owner: *chown,
                        chmod: *chmod,
                        stat,
                        exclude: &o.exclude,
                    },
                )
                .map_err(|e| at(l, e))?;
                let mut opts = BTreeMap::new();
                opts.insert("src".into(), src.clone());
                opts.insert("dst".into(), format!("/{layer_dst}"));
                opts.insert("copy_contents_only".into(), copy_contents_only.to_string());
                opts.insert("chown".into(), format!("{chown:?}"));
                opts.insert("chmod".into(), format!("{chmod:?}"));
                opts.insert("ignore".into(), ignore_desc.clone());
                let notes = collect_notes(&c, &ignore_desc, &mut ignore_noted);
                let bytes = c.bytes;
                (
                    format!("source_folder {src} → /{layer_dst}"),
                    Action::Files {
                        entries: c.entries,
                        bytes,
                        chown: chown_of.clone(),
                    },
                    opts,
                    notes,
                )
            }
            LayerKind::AddUrl {
                url,
                dst,
                chown,
                chmod,
                checksum,
            } => {
                let expected = match checksum {
                    None => None,
                    Some(c) => Some(
                        c.strip_prefix("sha256:")
                            .and_then(crate::digest::Digest::parse_hex)
                            .ok_or_else(|| Error::Definition {
                                loc: Box::new(l.loc.clone()),
                                message: format!("--checksum={c}: expected sha256:<64 hex digits>"),
                            })?,
                    ),
                };
                let (path, sha) =
                    crate::store::fetch::fetch_url(store, url, expected, None, "--checksum")
                        .map_err(|e| at(l, e))?;
                // The name is the URL path's last part, as with docker.
                let fname = url
                    .split(['?', '#'])
                    .next()
                    .unwrap_or_default()
                    .split_once("://")
                    .map(|(_, rest)| rest)
                    .and_then(|rest| rest.split_once('/'))
                    .map(|(_, path)| path.rsplit('/').next().unwrap_or_default())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("download")
                    .to_string();
                let target = files::file_dst(dst, &fname);
                let layer_dst = files::resolve_dst(&workdir, &target);
                let c = store_file(&path, &layer_dst, *chown, chmod.unwrap_or(0o600))
                    .map_err(|e| at(l, e))?;
                let mut opts = BTreeMap::new();
                opts.insert("url".into(), crate::net::redact(url));
                opts.insert("sha256".into(), sha.oci());
                opts.insert("dst".into(), format!("/{layer_dst}"));
                opts.insert("chown".into(), format!("{chown:?}"));
                opts.insert("chmod".into(), format!("{chmod:?}"));
                let bytes = c.bytes;
                (
                    format!("add {} → /{layer_dst}", crate::net::redact(url)),
                    Action::Files {
                        entries: c.entries,
                        bytes,
                        chown: chown_of.clone(),
                    },
                    opts,
                    vec![],
                )
            }
            LayerKind::Inline {
                content,
                dst,
                chown,
                chmod,
            } => {
                // The content as a file in the store, collected like any file.
                let sha = crate::digest::Digest::of(content.as_bytes());
                let dir = store.root().join("inline");
                let path = dir.join(sha.hex());
                if path.is_file() {
                    // In use: `cache prune` keeps it.
                    crate::util::fs::touch(&path);
                } else {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                    store.write_atomic(&path, content.as_bytes())?;
                }
                let layer_dst = files::resolve_dst(&workdir, dst);
                let c = store_file(&path, &layer_dst, *chown, chmod.unwrap_or(0o644))
                    .map_err(|e| at(l, e))?;
                let mut opts = BTreeMap::new();
                opts.insert("content".into(), sha.oci());
                opts.insert("dst".into(), format!("/{layer_dst}"));
                opts.insert("chown".into(), format!("{chown:?}"));
                opts.insert("chmod".into(), format!("{chmod:?}"));
                let bytes = c.bytes;
                (
                    format!("copy heredoc → /{layer_dst}"),
                    Action::Files {
                        entries: c.entries,
                        bytes,
                        chown: chown_of.clone(),
                    },
                    opts,
                    vec![],
                )
            }
            LayerKind::AddArchive { src, dst, chown } => {
                let src_path = context.join(src);
                let bytes = std::fs::read(&src_path).map_err(|e| Error::InputAt {
                    loc: Box::new(l.loc.clone()),
                    message: format!("{}: {e}", src_path.display()),
                })?;
                let sha = crate::digest::Digest::of(&bytes);
                drop(bytes);
                let u =
                    crate::layer::archive::unpack(store, &src_path, &sha).map_err(|e| at(l, e))?;
                let layer_dst = files::resolve_dst(&workdir, dst);
                let no_rules = IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
                let mut c = files::collect_folder(
                    &u.root,
                    &layer_dst,
                    false,
                    &CollectOptions {
                        context: store_root,
                        rules: &no_rules,
                        owner: None,
                        chmod: None,
                        stat: store_stat,
                        exclude: &[],
                    },
                )
                .map_err(|e| at(l, e))?;
                // The archive's owners and modes, not the unpacked copy's.
                let prefix = if layer_dst.is_empty() {
                    String::new()
                } else {
                    format!("{layer_dst}/")
                };
                for e in c.entries.iter_mut() {
                    let rel = e.path.strip_prefix(&prefix).unwrap_or(e.path.as_bytes());
                    if let Some(m) = std::str::from_utf8(rel).ok().and_then(|r| u.meta.get(r)) {
                        if !matches!(e.kind, files::FileKind::Symlink(_)) {
                            e.mode = m.mode;
                        }
                        e.uid = m.uid;
                        e.gid = m.gid;
                    }
                    if let Some(o) = chown {
                        e.uid = o.uid;
                        e.gid = o.gid;
                    }
                }
                let mut opts = BTreeMap::new();
                opts.insert("src".into(), src.clone());
                opts.insert("archive".into(), sha.oci());
                opts.insert("dst".into(), format!("/{layer_dst}"));
                opts.insert("chown".into(), format!("{chown:?}"));
                let mut notes = Vec::new();
                if !u.skipped.is_empty() {
                    notes.push(format!(
                        "{} device or fifo entries of the archive are not kept (e.g. {})",
                        u.skipped.len(),
                        u.skipped[0]
                    ));
                }
                let bytes = c.bytes;
                (
                    format!("add {src} (unpacked) → /{layer_dst}"),
                    Action::Files {
                        entries: c.entries,
                        bytes,
                        chown: chown_of.clone(),
                    },
                    opts,
                    notes,
                )
            }
            LayerKind::SourceFile {
                src,
                dst,
                chown,
                chmod,
            } => {
                let src_path = context.join(src);
                let fname = Path::new(src)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let target = files::file_dst(dst, &fname);
                let layer_dst = files::resolve_dst(&workdir, &target);
                if layer_dst.is_empty() {
                    return Err(Error::Definition {
                        loc: Box::new(l.loc.clone()),
                        message: format!("destination {dst:?} is the root folder"),
                    });
                }
                let c = files::collect_file(
                    &src_path,
                    &layer_dst,
                    &CollectOptions {
                        context,
                        rules: &rules,
                        owner: *chown,
                        chmod: *chmod,
                        stat,
                        exclude: &o.exclude,
                    },
                )
                .map_err(|e| at(l, e))?;
                let mut opts = BTreeMap::new();
                opts.insert("src".into(), src.clone());
                opts.insert("dst".into(), format!("/{layer_dst}"));
                opts.insert("chown".into(), format!("{chown:?}"));
                opts.insert("chmod".into(), format!("{chmod:?}"));
                let notes = collect_notes(&c, "", &mut true);
                let bytes = c.bytes;
                (
                    format!("source_file {src} → /{layer_dst}"),
                    Action::Files {
                        entries: c.entries,
                        bytes,
                        chown: chown_of.clone(),
                    },
                    opts,
                    notes,
                )
            }
            LayerKind::Dockerignore(p) => {
                let mut opts = BTreeMap::new();
                opts.insert("file".into(), p.clone());
                (
                    format!("dockerignore {p}"),
                    Action::Config(l.kind.clone()),
                    opts,
                    vec![],
                )
            }
            other => {
                apply_config(&mut cfg, other);
                let mut opts = BTreeMap::new();
                opts.insert("value".into(), config_value(other));
                (
                    format!("{} {}", other.key(), config_value(other)),
                    Action::Config(other.clone()),
                    opts,
                    vec![],
                )
            }
        };
        let step_key = match &action {
            Action::Files { entries, .. } => {
                let mut k = KeyHasher::new("files", FILES_FORMAT);
                k.str(o.compression.name())
                    .u64(o.compression.level() as u64)
                    .u64(GZIP_CHUNK as u64)
                    .u64(o.source_date_epoch);
                files::key_entries(&mut k, entries);
                k.opt_str(owner_name.as_deref());
                if let Some(b) = &below {
                    k.digest(b);
                }
                k.finish()
            }
            Action::Config(kind) => config_key(kind),
            Action::Python(_) => unreachable!("planned by python::plan_layer"),
            Action::Run(_) | Action::CopyFrom(_) | Action::Debian(_) => {
                unreachable!("planned above")
            }
        };
        if let Some(n) = &owner_name {
            rec_opts.insert("chown".into(), n.clone());
        }
        rec_opts.insert("compression".into(), o.compression.name().into());
        rec_opts.insert("source_date_epoch".into(), o.source_date_epoch.to_string());
        let cached = match &action {
            Action::Config(_) => None,
            _ => store.step_get(&step_key),
        };
        let mut step = Step {
            name,
            loc: l.loc.clone(),
            action,
            key: step_key,
            cached,
            why: vec![],
            notes: step_notes,
            options: rec_opts,
            platform: None,
        };
        if step.makes_layer() {
            explain_miss(&mut step, &mut previous, store, &record_id, index);
        }
        if let Action::Files { entries, .. } = &step.action
            && entries.is_empty()
        {
            step.notes.push("no files: the layer is empty".into());
        }
        key.digest(&step_key);
        steps.push(step);
    }
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

/// A missing step's explanation, from the image's last build record
/// (loaded once, on the first miss).
fn explain_miss(
    step: &mut Step,
    previous: &mut Option<Option<ImageRecord>>,
    store: &Store,
    record_id: &Digest,
    index: usize,
) {
    if step.cached.is_some() {
        return;
    }
    let prev = previous.get_or_insert_with(|| ImageRecord::load(store, record_id));
    step.why = record::explain(prev.as_ref(), index, &step.record());
}

/// The `apt_packages` layers of an image on a native Debian base that are
/// resolved and installed natively: those before its first `commands`
/// layer. (index in the image's layers, packages)
pub fn native_apt_layers(img: &ImageDef) -> Vec<(usize, Vec<String>)> {
    if !matches!(img.base, Base::DebianNative(_)) {
        return vec![];
    }
    let mut out = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        match &l.kind {
            LayerKind::Commands { .. } => break,
            LayerKind::AptPackages { packages, .. } => out.push((i, packages.clone())),
            _ => {}
        }
    }
    out
}

/// What runs a native Debian base's uncovered maintainer scripts in the
/// image's own shell: each package's `preinst install` (as dpkg would
/// have run it before unpacking), then `dpkg --configure -a`, with
/// services kept from starting; the logs are dropped so reruns match.
fn dpkg_configure_script(unpacked: &[&crate::debian::lock::LockedPackage], arch: &str) -> String {
    let mut s = String::from(
        "export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8 DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= DPKG_MAINTSCRIPT_NAME=preinst; printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
    );
    for p in unpacked
        .iter()
        .filter(|p| p.scripts.iter().any(|s| s == "preinst"))
    {
        let info = if p.multi_arch.as_deref() == Some("same") {
            format!("{}:{arch}", p.name)
        } else {
            p.name.clone()
        };
        s.push_str(&format!(
            " && DPKG_MAINTSCRIPT_PACKAGE={} DPKG_MAINTSCRIPT_ARCH={} /var/lib/dpkg/info/{info}.preinst install",
            p.name, p.arch
        ));
    }
    s.push_str(" && dpkg --configure -a; rc=$?; rm -f /usr/sbin/policy-rc.d /var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/lib/dpkg/status-old /var/cache/debconf/config.dat-old /var/cache/debconf/templates.dat-old; exit $rc");
    s
}

/// The steps of one package group of a native Debian base, per platform:
/// group 0 (the base) is the variant's packages and the requested ones,
/// group n the n-th native `apt_packages` layer. Each group ends with its
/// state layer and, when some of its packages have maintainer scripts the
/// state does not stand in for, `dpkg --configure` in the sandbox.
fn plan_debian_group(
    env: &Env,
    img: &ImageDef,
    group: u32,
    loc: &Location,
    (base_configs, base_chain): (&[ImageConfig], &[Digest]),
    steps: &[Step],
) -> Result<Vec<Step>> {
    let lock = env.debian_lock.expect("locked before planning");
    let o = env.o;
    let dist = match &img.base {
        Base::DebianNative(d) => d.dist.as_str(),
        _ => "",
    };
    let mut out: Vec<Step> = Vec::new();
    let mut configure_on: Vec<(usize, Vec<String>, String)> = Vec::new();
    for (pi, p) in img.platforms.iter().enumerate() {
        let arch = crate::debian::debian_arch(p)?;
        let locked = lock.find(&img.id, &arch).expect("locked before planning");
        let links: Vec<String> = match (group, arch.as_str()) {
            (0, "amd64") => vec!["bin", "lib", "lib64", "sbin"],
            (0, _) => vec!["bin", "lib", "sbin"],
            _ => vec![],
        }
        .into_iter()
        .map(String::from)
        .collect();
        let mine: Vec<_> = locked
            .packages
            .iter()
            .filter(|p| p.group == group)
            .cloned()
            .collect();
        let upto: Vec<_> = locked
            .packages
            .iter()
            .filter(|p| p.group <= group)
            .cloned()
            .collect();
        let unpacked: Vec<String> = mine
            .iter()
            .filter(|p| crate::debian::fixups::uncovered(p))
            .map(|p| p.name.clone())
            .collect();
        let mut groups = Vec::new();
        if group == 0 {
            let (core, rest): (Vec<_>, Vec<_>) = mine.into_iter().partition(|p| p.core);
            groups.push(("core packages".to_string(), core, links, false));
            groups.push(("packages".to_string(), rest, vec![], false));
        } else {
            groups.push((format!("apt_packages {group}"), mine, vec![], false));
        }
        groups.push(("dpkg state".to_string(), upto, vec![], true));
        for (label, packages, links, state) in groups {
            if packages.is_empty() {
                continue;
            }
            let unpacked = if state { unpacked.clone() } else { vec![] };
            let mut k = KeyHasher::new("debian-layer", 2);
            k.u64(crate::debian::assemble::GENERATOR_VERSION as u64)
                .u64(state as u64)
                .u64(group as u64)
                .strs(&links)
                .strs(&unpacked)
                .str(&arch);
            k.u64(packages.len() as u64);
            for pk in &packages {
                k.str(&pk.name)
                    .str(&pk.version)
                    .str(&pk.arch)
                    .str(&pk.sha256)
                    .u64(pk.group as u64)
                    .u64(pk.auto as u64);
            }
            if state {
                k.u64(locked.suites.len() as u64);
                for su in &locked.suites {
                    k.str(&su.uri).str(&su.suite).strs(&su.components);
                }
            }
            k.str(o.compression.name())
                .u64(o.compression.level() as u64)
                .u64(GZIP_CHUNK as u64)
                .u64(o.source_date_epoch);
            let step_key = k.finish();
            let mut options = BTreeMap::new();
            options.insert("arch".into(), arch.clone());
            options.insert("packages".into(), packages.len().to_string());
            out.push(Step {
                name: format!(
                    "debian {dist} {label} ({}){}",
                    packages.len(),
                    if img.platforms.len() > 1 {
                        format!(" ({p})")
                    } else {
                        String::new()
                    }
                ),
                loc: loc.clone(),
                action: Action::Debian(Box::new(DebianStep {
                    packages,
                    suites: locked.suites.clone(),
                    arch: arch.clone(),
                    state,
                    links,
                    group,
                    unpacked,
                })),
                key: step_key,
                cached: env.store.step_get(&step_key),
                why: vec![],
                notes: vec![],
                options,
                platform: Some(pi),
            });
        }
        if !unpacked.is_empty() {
            let pkgs: Vec<_> = locked
                .packages
                .iter()
                .filter(|p| unpacked.contains(&p.name))
                .collect();
            let why = pkgs
                .iter()
                .map(|p| format!("{} ({})", p.name, p.scripts.join(", ")))
                .collect();
            configure_on.push((pi, why, dpkg_configure_script(&pkgs, &arch)));
        }
    }
    for (pi, why, script) in configure_on {
        // A RUN step over the layers below, as a `commands` layer would be.
        let layer = crate::spec::Layer {
            loc: loc.clone(),
            kind: LayerKind::Commands {
                commands: vec![script],
                group: false,
                run: crate::spec::RunOptions::default(),
            },
        };
        let mut all: Vec<Step> = steps.to_vec();
        all.extend(out.iter().cloned());
        let runs = plan_run(env, &layer, img, base_configs, base_chain, &all)?;
        {
            let why: Vec<String> = why;
            let mut step = runs[pi].clone();
            step.name = format!(
                "debian {dist} dpkg --configure ({}){}",
                why.len(),
                if img.platforms.len() > 1 {
                    format!(" ({})", img.platforms[pi])
                } else {
                    String::new()
                }
            );
            step.notes.push(format!(
                "configured in the sandbox, their maintainer scripts are not covered natively: {}",
                why.join(", ")
            ));
            step.options.remove("command");
            step.options.insert("configure".into(), why.join(", "));
            out.push(step);
        }
    }
    Ok(out)
}

/// What `apt_packages` runs: lists and downloads live in cache mounts, and
/// the logs that record install times are removed so reruns match.
pub fn apt_script(packages: &[String]) -> String {
    let opts = "-o APT::Sandbox::User=root";
    format!(
        "apt-get {opts} update && apt-get {opts} install -y --no-install-recommends {} && rm -f /var/log/dpkg.log /var/log/alternatives.log /var/log/apt/history.log /var/log/apt/term.log /var/log/apt/eipp.log.xz /var/cache/ldconfig/aux-cache",
        packages.join(" ")
    )
}

/// The steps of a `commands` or `apt_packages` layer: one per command (or
/// one for the group) and platform, each keyed by what it runs on.
fn plan_run(
    env: &Env,
    l: &crate::spec::Layer,
    img: &ImageDef,
    base_configs: &[ImageConfig],
    base_chain: &[Digest],
    steps: &[Step],
) -> Result<Vec<Step>> {
    use crate::sandbox::{CacheMount, RUN_FORMAT, RunStep, SecretMount};
    let o = env.o;
    let (scripts, run, extra_env, caches): (
        Vec<String>,
        _,
        Vec<(String, String)>,
        Vec<CacheMount>,
    ) = match &l.kind {
        LayerKind::Commands {
            commands,
            group,
            run,
        } => (
            if *group {
                vec![commands.join(" && ")]
            } else {
                commands.clone()
            },
            run,
            vec![],
            run.cache_mounts
                .iter()
                .map(|t| CacheMount {
                    id: format!("cache:{t}"),
                    target: t.clone(),
                })
                .collect(),
        ),
        LayerKind::AptPackages { packages, run } => (
            vec![apt_script(packages)],
            run,
            vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
            vec![],
        ),
        _ => unreachable!("only RUN kinds"),
    };
    // Bind mounts: what they hold is part of the key.
    let no_rules = IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
    let mut binds: Vec<(PathBuf, String)> = Vec::new();
    let mut bind_key = KeyHasher::new("binds", 1);
    for b in &run.bind_mounts {
        let (src, dst) = b.split_once(':').expect("validated when loaded");
        let path = env.context.join(src);
        let co = CollectOptions {
            context: env.context,
            rules: &no_rules,
            owner: None,
            chmod: None,
            stat: env.stat,
            exclude: &o.exclude,
        };
        let c = if path.is_dir() {
            files::collect_folder(&path, "", false, &co)
        } else {
            files::collect_file(&path, "f", &co)
        }
        .map_err(|e| at(l, e))?;
        bind_key.str(src).str(dst);
        files::key_entries(&mut bind_key, &c.entries);
        binds.push((path, dst.to_string()));
    }
    let bind_key = bind_key.finish();
    let mut out: Vec<Step> = Vec::new();
    for script in &scripts {
        for (pi, p) in img.platforms.iter().enumerate() {
            // The configuration and layers this step stands on.
            let mut cfg = base_configs[pi].clone();
            let mut chain = KeyHasher::new("chain", 1);
            chain.digest(&base_chain[pi]);
            for s in steps.iter().chain(out.iter()).filter(|s| s.applies_to(pi)) {
                match &s.action {
                    Action::Config(k) => apply_config(&mut cfg, k),
                    _ => {
                        chain.digest(&s.key);
                    }
                }
            }
            let chain = chain.finish();
            let mut caches = caches.clone();
            if matches!(l.kind, LayerKind::AptPackages { .. }) {
                for t in ["/var/cache/apt", "/var/lib/apt/lists"] {
                    caches.push(CacheMount {
                        id: format!("apt:{p}:{t}"),
                        target: t.into(),
                    });
                }
            }
            // The base's SHELL (Docker's config field), else /bin/sh -c.
            let mut argv: Vec<String> = cfg
                .config
                .extra
                .get("Shell")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            argv.push(script.clone());
            let rs = RunStep {
                argv,
                env: extra_env.clone(),
                network: run.network,
                caches,
                secrets: run
                    .secret_mounts
                    .iter()
                    .map(|s| SecretMount::parse(s).expect("validated when loaded"))
                    .collect(),
                binds: binds.clone(),
                tmpfs: run.tmpfs_mounts.clone(),
                timeout: run.timeout.map(std::time::Duration::from_secs),
                platform: p.clone(),
                source_date_epoch: !run.no_source_date_epoch,
            };
            let mut k = KeyHasher::new("run", RUN_FORMAT);
            k.digest(&chain).str(&p.to_string());
            k.u64(rs.argv.len() as u64);
            for a in &rs.argv {
                k.str(a);
            }
            let env_list = cfg.config.env.clone().unwrap_or_default();
            k.u64(env_list.len() as u64);
            for e in &env_list {
                k.str(e);
            }
            k.u64(rs.env.len() as u64);
            for (a, b) in &rs.env {
                k.str(a).str(b);
            }
            k.opt_str(cfg.config.working_dir.as_deref())
                .opt_str(cfg.config.user.as_deref())
                .u64(rs.network as u64);
            k.u64(rs.caches.len() as u64);
            for c in &rs.caches {
                k.str(&c.id).str(&c.target);
            }
            k.digest(&bind_key);
            k.u64(rs.tmpfs.len() as u64);
            for t in &rs.tmpfs {
                k.str(t);
            }
            // Secrets by name and place only: never their values.
            k.u64(rs.secrets.len() as u64);
            for s in &rs.secrets {
                k.str(&s.id)
                    .opt_str(s.env.as_deref())
                    .opt_str(s.target.as_deref());
            }
            k.bool(rs.source_date_epoch);
            k.str(o.compression.name())
                .u64(o.compression.level() as u64)
                .u64(o.source_date_epoch);
            let key = k.finish();
            let shown = match &l.kind {
                LayerKind::AptPackages { packages, .. } => {
                    format!("apt_packages {}", packages.join(" "))
                }
                _ => format!("commands {script}"),
            };
            let name = if img.platforms.len() > 1 {
                format!("{shown} ({p})")
            } else {
                shown
            };
            let mut options = BTreeMap::new();
            options.insert("command".into(), script.clone());
            options.insert("layers below".into(), chain.hex()[..16].to_string());
            options.insert(
                "network".into(),
                if rs.network { "host" } else { "none" }.into(),
            );
            options.insert("compression".into(), o.compression.name().into());
            options.insert("source_date_epoch".into(), o.source_date_epoch.to_string());
            let mut notes = Vec::new();
            if !crate::sandbox::can_execute(p) {
                notes.push(format!(
                    "cannot run here: no binfmt_misc handler for {p} on this {} host",
                    crate::oci::host_arch()
                ));
            }
            out.push(Step {
                name,
                loc: l.loc.clone(),
                action: Action::Run(Box::new(rs)),
                key,
                cached: env.store.step_get(&key),
                why: vec![],
                notes,
                options,
                platform: Some(pi),
            });
        }
    }
    Ok(out)
}

/// The locked packages (name, version) per platform of the native Debian
/// base an image stands on, directly or through images of the file.
fn native_packages(
    env: &Env,
    img: &ImageDef,
    done: &[ImagePlan],
    base: &BasePlan,
) -> Option<Vec<Vec<(String, String)>>> {
    let lock = env.debian_lock?;
    // The image whose lock entry holds the base.
    let mut id = img.id.as_str();
    let mut at = base;
    if !matches!(img.base, Base::DebianNative(_)) {
        loop {
            let BasePlan::Image(bi) = at else {
                return None;
            };
            id = done[*bi].id.as_str();
            let native = env
                .def
                .images
                .iter()
                .any(|i| i.id == id && matches!(i.base, Base::DebianNative(_)));
            if native {
                break;
            }
            at = &done[*bi].base;
        }
    }
    img.platforms
        .iter()
        .map(|p| {
            let arch = crate::debian::debian_arch(p).ok()?;
            let b = lock.find(id, &arch)?;
            Some(
                b.packages
                    .iter()
                    .map(|p| (p.name.clone(), p.version.clone()))
                    .collect(),
            )
        })
        .collect()
}

/// Where the bytes of a base's layers are, for finding its Python.
fn base_layers<'a>(
    env: &Env<'a>,
    done: &'a [ImagePlan],
    base: &'a BasePlan,
    platforms: &[Platform],
) -> python::BaseLayers<'a> {
    match base {
        BasePlan::Scratch => python::BaseLayers::None,
        BasePlan::Layout { images, .. } => python::BaseLayers::Blobs(
            images
                .iter()
                .map(|li| {
                    (
                        li.manifest
                            .layers
                            .iter()
                            .map(|l| (layout::blob_path(&li.dir, &l.digest), l.media_type.clone()))
                            .collect(),
                        li.manifest_digest,
                    )
                })
                .collect(),
        ),
        BasePlan::Remote { reference, images } => python::BaseLayers::Remote {
            client: env.client,
            reference,
            images,
            store: env.store,
        },
        BasePlan::Image(bi) => {
            // The image this one is built on: its own base (its Python layers
            // are found through its config's VIRTUAL_ENV and PYTHON_VERSION).
            let b = &done[*bi];
            let sub = base_layers(env, done, &b.base, &b.platforms);
            match sub {
                python::BaseLayers::Blobs(v) => python::BaseLayers::Blobs(
                    platforms
                        .iter()
                        .map(|p| {
                            let i = b.platforms.iter().position(|x| x == p).unwrap_or(0);
                            v[i].clone()
                        })
                        .collect(),
                ),
                other => other,
            }
        }
    }
}

fn at(l: &crate::spec::Layer, e: Error) -> Error {
    match e {
        Error::Input { path, message } => Error::InputAt {
            loc: Box::new(l.loc.clone()),
            message: format!("{}: {message}", path.display()),
        },
        other => other,
    }
}

fn collect_notes(c: &files::Collected, ignore_desc: &str, ignore_noted: &mut bool) -> Vec<String> {
    let mut notes = Vec::new();
    if !*ignore_noted && !ignore_desc.is_empty() {
        notes.push(format!("ignore rules: {ignore_desc}"));
        *ignore_noted = true;
    }
    for own in &c.skipped_own {
        notes.push(format!("left out {own}: imgbuild's own output or store"));
    }
    if c.ignored > 0 {
        notes.push(format!(
            "{} path(s) left out by the ignore rules, e.g. {}",
            c.ignored,
            c.ignored_examples.join(", ")
        ));
    }
    for s in &c.secrets {
        notes.push(format!(
            "warning: likely secret about to enter a layer: {s}; add it to .dockerignore"
        ));
    }
    for s in &c.skipped_special {
        notes.push(format!(
            "skipped {s}: sockets, pipes and devices are not copied"
        ));
    }
    notes
}

fn fingerprint(e: &FileEntry) -> String {
    match &e.kind {
        FileKind::Dir => format!("dir {:o}", e.mode),
        FileKind::File { hash, .. } => format!("{} {:o} {}:{}", hash.short(), e.mode, e.uid, e.gid),
        FileKind::Symlink(t) => format!("-> {t}"),
        FileKind::Hardlink(t) => format!("=> {t}"),
    }
}

/// The key of a config step: every value typed and length-delimited, so
/// `A="1 B=2"` and `A="1", B="2"` differ.
fn config_key(kind: &LayerKind) -> Digest {
    let mut k = KeyHasher::new("config", 2);
    k.str(kind.key());
    match kind {
        LayerKind::Env(v) | LayerKind::Labels(v) => {
            k.u64(v.len() as u64);
            for (name, value) in v {
                k.str(name).str(value);
            }
        }
        LayerKind::Workdir(s) | LayerKind::User(s) | LayerKind::Dockerignore(s) => {
            k.str(s);
        }
        LayerKind::Entrypoint(v) | LayerKind::Cmd(v) | LayerKind::Expose(v) => {
            k.strs(v);
        }
        other => {
            k.str(&config_value(other));
        }
    }
    k.finish()
}

/// A readable rendering of a config step's value (for people, not keys).
pub fn config_value(kind: &LayerKind) -> String {
    let kv = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match kind {
        LayerKind::Env(v) | LayerKind::Labels(v) => kv(v),
        LayerKind::Workdir(s) | LayerKind::User(s) | LayerKind::Dockerignore(s) => s.clone(),
        LayerKind::Entrypoint(v) | LayerKind::Cmd(v) | LayerKind::Expose(v) => {
            serde_json::to_string(v).expect("strings")
        }
        LayerKind::DockerConfig { field, value } => format!("{field}={value}"),
        other => other.key().to_string(),
    }
}

/// The configuration an image ends with for platform index `pi` (no rootfs).
pub fn final_config(img: &ImagePlan, pi: usize) -> ImageConfig {
    let mut cfg = img.base_configs[pi].clone();
    for s in &img.steps {
        if let Action::Config(kind) = &s.action {
            apply_config(&mut cfg, kind);
        }
    }
    cfg
}

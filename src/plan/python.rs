//! Planning of Python layers (`uv_project`, `pip_packages`, `requirements`):
//! a lock becomes, per platform, an install set, a wheel per package, and
//! layers grouped so that a lock update changes few of them.
//!
//! No wheel is downloaded here: step keys come from the lock's hashes (and,
//! for the project itself, from its source files).
//!
//! One download stays in planning: when neither the base's config
//! (`PYTHON_VERSION`) nor a native Debian lock names the base's Python, the
//! layers of a registry base are fetched to find its interpreter (and libc),
//! because which wheels install — and so every Python step's key — depends
//! on them. The answer is cached in the store per base manifest digest, so
//! it happens once per base; the layers fetched then are the ones a RUN
//! step or a local output needs anyway.

use super::common::{ImageCx, LayerCx};
use super::config::config_key;
use super::{Action, BasePlan, Env, Step, apply_config, config_value};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Location, Result};
use crate::layer::files::{self, CollectOptions};
use crate::layer::ignore::IgnoreRules;
use crate::oci::Platform;
use crate::oci::types::ImageConfig;
use crate::python::layer::{ProjectBuild, PyArtifact, PyEnv, PyLayer};
use crate::python::lock::{self, ArtifactLocation, Lock, Resolved, Source, SyncOptions};
use crate::python::markers::{MarkerEnv, normalize_name};
use crate::python::tags::{self, Arch, TagIndex, Target};
use crate::python::uv;
use crate::sandbox::DEFAULT_PATH;
use crate::spec::{LayerKind, PipOptions};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the Python layer format; part of every Python step key.
pub const PY_FORMAT: u32 = 1;
/// A wheel at least this big (per the lock) gets a layer of its own.
pub const BIG_PACKAGE: u64 = 8 << 20;
/// Target size of a layer of small packages.
pub const BUCKET_BUDGET: u64 = 24 << 20;
/// At most this many layers of small packages per Python layer entry.
pub const MAX_BUCKETS: usize = 8;

/// Python state carried through one image's planning.
#[derive(Default)]
pub struct PyState {
    /// Per platform, once known.
    pub envs: Option<Vec<PyEnv>>,
    /// The venv exists (made by an earlier layer or the base).
    pub venv_made: bool,
}

/// Finds the base's interpreter for every platform.
pub(super) fn detect(
    env: &Env,
    python: Option<&str>,
    base: &BaseLayers,
    configs: &[ImageConfig],
    platforms: &[Platform],
    loc: &Location,
) -> Result<Vec<PyEnv>> {
    let mut out = Vec::new();
    for (pi, p) in platforms.iter().enumerate() {
        let cfg = &configs[pi];
        let found = match from_config(cfg) {
            Some(f) => Some(f),
            None if matches!(base, BaseLayers::Debian(_)) => match base {
                BaseLayers::Debian(v) => from_packages(&v[pi]),
                _ => None,
            },
            None if base.has_layers() => scan_cached(env, base, pi)?,
            None => None,
        };
        let want = python.map(parse_version);
        let pe = match (found, want) {
            (Some(f), Some(Some(w))) => {
                if (f.version.0, f.version.1) != (w.0, w.1) {
                    return Err(Error::Definition {
                        loc: Box::new(loc.clone()),
                        message: format!(
                            "the base has Python {}.{}.{} ({}) for {p}, the definition says python = {:?}",
                            f.version.0,
                            f.version.1,
                            f.version.2,
                            f.how,
                            python.unwrap_or_default()
                        ),
                    });
                }
                f
            }
            (Some(f), _) => f,
            (None, Some(Some(w))) => PyEnv {
                interpreter: format!("/usr/bin/python{}.{}", w.0, w.1),
                version: w,
                libc: "glibc".into(),
                libc_version: tags::DEBIAN_BOOKWORM_GLIBC,
                how: format!(
                    "python = {:?} in the definition",
                    python.unwrap_or_default()
                ),
            },
            _ => {
                return Err(Error::Definition {
                    loc: Box::new(loc.clone()),
                    message: format!(
                        "Python layers need an interpreter, and none was found in the base for {p} (no PYTHON_VERSION in its config, no usr/bin/python3.N in its layers); set `python` on the image"
                    ),
                });
            }
        };
        out.push(pe);
    }
    Ok(out)
}

/// `3.12` → (3, 12, 0); `3.12.4` → (3, 12, 4).
fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = it.next()??;
    let minor = it.next()??;
    let patch = it.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// A native Debian base's Python: the newest python3.N-minimal it
/// installs, glibc from libc6.
fn from_packages(pkgs: &[(String, String)]) -> Option<PyEnv> {
    let (name, v) = pkgs
        .iter()
        .filter_map(|(n, v)| {
            let minor: u32 = n
                .strip_prefix("python3.")?
                .strip_suffix("-minimal")?
                .parse()
                .ok()?;
            Some(((minor, n.as_str()), v.as_str()))
        })
        .max()?;
    let upstream = |v: &str| -> Option<(u32, u32, u32)> {
        let v = v.split_once(':').map(|x| x.1).unwrap_or(v);
        parse_version(v.split(['-', '+', '~']).next()?)
    };
    let version = upstream(v)?;
    let glibc = pkgs
        .iter()
        .find(|(n, _)| n == "libc6")
        .and_then(|(_, v)| upstream(v))
        .map(|v| (v.0, v.1))
        .unwrap_or(tags::DEBIAN_BOOKWORM_GLIBC);
    Some(PyEnv {
        interpreter: format!("/usr/bin/python{}.{}", version.0, version.1),
        version,
        libc: "glibc".into(),
        libc_version: glibc,
        how: format!("{} {v} in the native Debian base", name.1),
    })
}

/// Official Python images say where their interpreter is in the config.
fn from_config(cfg: &ImageConfig) -> Option<PyEnv> {
    let v = cfg.env_get("PYTHON_VERSION")?;
    let version = parse_version(v)?;
    Some(PyEnv {
        interpreter: format!("/usr/local/bin/python{}.{}", version.0, version.1),
        version,
        libc: "glibc".into(),
        libc_version: tags::DEBIAN_BOOKWORM_GLIBC,
        how: format!("PYTHON_VERSION={v} in the base's config"),
    })
}

/// A base layer's blob, media type and diff_id.
pub type BaseLayer = (PathBuf, String, Digest);

/// Where a base's layer bytes can be read, per platform.
pub enum BaseLayers<'a> {
    None,
    /// Blobs, their media types and diff_ids, in order, per platform; and
    /// a cache key.
    Blobs(Vec<(Vec<BaseLayer>, Digest)>),
    /// A native Debian base: its locked packages (name, version) per
    /// platform.
    Debian(Vec<Vec<(String, String)>>),
    /// A registry base: layers fetched into the store on demand.
    Remote {
        client: Option<&'a crate::registry::Client>,
        reference: &'a crate::registry::Reference,
        images: &'a [crate::registry::RemoteImage],
        store: &'a Store,
    },
}

impl BaseLayers<'_> {
    fn key(&self, pi: usize) -> Digest {
        match self {
            BaseLayers::None | BaseLayers::Debian(_) => Digest::of(b""),
            BaseLayers::Blobs(v) => v[pi].1,
            BaseLayers::Remote { images, .. } => images[pi].manifest_digest,
        }
    }

    fn has_layers(&self) -> bool {
        match self {
            BaseLayers::None | BaseLayers::Debian(_) => false,
            BaseLayers::Blobs(_) => true,
            BaseLayers::Remote { client, .. } => client.is_some(),
        }
    }

    fn layers(&self, pi: usize) -> Option<Result<Vec<BaseLayer>>> {
        match self {
            BaseLayers::None | BaseLayers::Debian(_) => None,
            BaseLayers::Blobs(v) => Some(Ok(v[pi].0.clone())),
            BaseLayers::Remote {
                client,
                reference,
                images,
                store,
            } => {
                let client = (*client)?;
                let img = &images[pi];
                Some(
                    img.manifest
                        .layers
                        .iter()
                        .zip(&img.config.rootfs.diff_ids)
                        .map(|(l, d)| {
                            if crate::sbom::stored_inventory(store, d).is_none() {
                                client.fetch_blob(reference, &l.digest, store)?;
                            }
                            Ok((store.blob_path(&l.digest), l.media_type.clone(), *d))
                        })
                        .collect(),
                )
            }
        }
    }
}

/// What the base's layers say about its Python: kept in the store by the
/// base's key, and shared through a registry cache (`--cache-from`), so
/// that a machine that has not seen the base needs not download it to
/// know.
fn scan_cached(env: &Env, base: &BaseLayers, pi: usize) -> Result<Option<PyEnv>> {
    let mut k = KeyHasher::new("pyscan", 1);
    k.digest(&base.key(pi));
    let key = k.finish();
    let path = env.store.root().join("pyenv").join(key.hex());
    let parse = |b: &[u8]| serde_json::from_slice::<Option<PyEnv>>(b).ok();
    let bytes = env.shared_data(
        &key,
        crate::registry::cache::MT_PYSCAN,
        &path,
        &|b| parse(b).is_some(),
        &mut || {
            let layers = base.layers(pi).expect("the base has layers")?;
            let found = scan_layers(env.store, &layers)?;
            let bytes = serde_json::to_vec(&found).expect("serializes");
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            env.store.write_atomic(&path, &bytes)?;
            Ok(bytes)
        },
    )?;
    Ok(parse(&bytes).flatten())
}

/// The base's interpreter, its version (from the dpkg status) and its libc,
/// from what its layers hold (their inventories, read once per layer and
/// kept by diff_id: an SBOM of the image reads the same).
pub fn scan_layers(store: &Store, layers: &[BaseLayer]) -> Result<Option<PyEnv>> {
    let mut pythons: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut status: Option<String> = None;
    let mut musl = false;
    for (path, media_type, diff_id) in layers {
        let (inv, _) = crate::sbom::layer_inventory(store, path, media_type, diff_id)
            .map_err(|e| Error::input(path, format!("cannot read base layer: {e}")))?;
        musl |= inv.musl;
        if inv.dpkg_status.is_some() {
            status = inv.dpkg_status;
        }
        for p in inv.pythons {
            for dir in ["usr/local/bin/", "usr/bin/"] {
                if let Some(name) = p.strip_prefix(dir)
                    && let Some(v) = name.strip_prefix("python")
                    && let Some((a, b)) = v.split_once('.')
                    && let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
                {
                    pythons.insert(p.clone(), (a, b));
                }
            }
        }
    }
    // Prefer /usr/local (a Python built into the image) over the distribution's.
    let Some((interp, (a, b))) = pythons
        .iter()
        .filter(|(_, v)| v.0 == 3)
        .max_by_key(|(p, v)| (p.starts_with("usr/local/"), **v))
        .map(|(p, v)| (p.clone(), *v))
    else {
        return Ok(None);
    };
    let pkg_version = |pkg: &str| -> Option<String> {
        let s = status.as_ref()?;
        s.split("\n\n").find_map(|stanza| {
            let mut name = None;
            let mut version = None;
            for line in stanza.lines() {
                if let Some(v) = line.strip_prefix("Package: ") {
                    name = Some(v.trim());
                } else if let Some(v) = line.strip_prefix("Version: ") {
                    version = Some(v.trim());
                }
            }
            (name == Some(pkg))
                .then(|| version.map(str::to_string))
                .flatten()
        })
    };
    // Debian: "3.11.2-6+deb12u6" → 3.11.2.
    let upstream = |v: &str| -> Option<(u32, u32, u32)> {
        let v = v.split_once(':').map(|x| x.1).unwrap_or(v);
        let v = v.split(['-', '+', '~']).next()?;
        parse_version(v)
    };
    let full = if interp.starts_with("usr/bin/") {
        pkg_version(&format!("python{a}.{b}-minimal"))
            .or_else(|| pkg_version(&format!("libpython{a}.{b}-minimal")))
            .and_then(|v| upstream(&v))
            .filter(|v| (v.0, v.1) == (a, b))
    } else {
        None
    };
    let version = full.unwrap_or((a, b, 0));
    let (libc, libc_version) = if musl {
        ("musl".to_string(), (1, 2))
    } else {
        let glibc = pkg_version("libc6")
            .and_then(|v| upstream(&v))
            .map(|v| (v.0, v.1))
            .unwrap_or(tags::DEBIAN_BOOKWORM_GLIBC);
        ("glibc".to_string(), glibc)
    };
    Ok(Some(PyEnv {
        interpreter: format!("/{interp}"),
        version,
        libc,
        libc_version,
        how: format!(
            "/{interp} in the base's layers{}",
            if full.is_some() {
                " (version from the dpkg status)"
            } else {
                ""
            }
        ),
    }))
}

/// A lock ready for the install-set walk.
struct LockInput {
    lock: Lock,
    /// The workspace root (relative artifact paths start here).
    root_dir: PathBuf,
    root: String,
    project: Option<ProjectBuild>,
    extras: Vec<String>,
    groups: Vec<String>,
    /// What to call the layer entry in step names.
    label: String,
    index: Option<String>,
}

fn input_err(loc: &Location, message: String) -> Error {
    Error::InputAt {
        loc: Box::new(loc.clone()),
        message,
    }
}

/// Everything a Python layer entry needs besides the image: resolves
/// requests into locks (with uv) and reads them.
fn lock_input(
    env: &Env,
    kind: &LayerKind,
    loc: &Location,
    python: (u32, u32, u32),
    o: &PyPlanOptions,
) -> Result<LockInput> {
    match kind {
        LayerKind::UvProject {
            pyproject,
            install_project,
            extras,
            groups,
            options,
        } => {
            let p = env.context.join(pyproject);
            let (dir, pyproject_path) = if p.is_dir() {
                (p.clone(), p.join("pyproject.toml"))
            } else {
                (
                    p.parent().map(Path::to_path_buf).unwrap_or_default(),
                    p.clone(),
                )
            };
            if !pyproject_path.is_file() {
                return Err(input_err(
                    loc,
                    format!("{}: no such file", pyproject_path.display()),
                ));
            }
            let lock_path = dir.join("uv.lock");
            if o.relock {
                let uv = uv::ensure(env.store, options.index_url.as_deref())?;
                uv::relock(&uv, &dir)?;
            }
            let text = std::fs::read_to_string(&lock_path).map_err(|e| {
                input_err(
                    loc,
                    format!(
                        "{}: {} (run `uv lock` in {}, or build with --relock)",
                        lock_path.display(),
                        if e.kind() == std::io::ErrorKind::NotFound {
                            "missing".to_string()
                        } else {
                            e.to_string()
                        },
                        dir.display()
                    ),
                )
            })?;
            if let Some(reason) = uv::lock_staleness(&pyproject_path, &text) {
                return Err(input_err(
                    loc,
                    format!(
                        "{} is stale: {reason} (run `uv lock`, or build with --relock)",
                        lock_path.display()
                    ),
                ));
            }
            let lock = Lock::parse(&text, &lock_path.display().to_string())
                .map_err(|e| input_err(loc, e.to_string()))?;
            let name = project_name(&pyproject_path).map_err(|m| input_err(loc, m))?;
            let root = normalize_name(&name);
            // A virtual project (no build system) is never installed, as in `uv sync`.
            let is_virtual = lock
                .packages_named(&root)
                .any(|p| matches!(p.source, Source::Virtual(_)));
            let project = if *install_project && !is_virtual {
                Some(ProjectBuild {
                    dir: dir.clone(),
                    name: name.clone(),
                    index: options.index_url.clone(),
                })
            } else {
                None
            };
            reject_unknown_args(loc, options)?;
            Ok(LockInput {
                lock,
                root_dir: dir,
                root,
                project,
                extras: extras.clone(),
                groups: groups.clone(),
                label: format!("uv_project {pyproject}"),
                index: options.index_url.clone(),
            })
        }
        LayerKind::PipPackages { packages, options } => {
            let label = format!("pip_packages {}", packages.join(" "));
            let mut input =
                resolved_input(env, loc, packages.clone(), options.clone(), python, label)?;
            if let Some(dir) = &options.project {
                // Built like a uv project's own wheel, after its pinned dependencies.
                let dir = env.context.join(dir);
                let name =
                    project_name(&dir.join("pyproject.toml")).map_err(|m| input_err(loc, m))?;
                input.project = Some(ProjectBuild {
                    dir,
                    name,
                    index: options.index_url.clone(),
                });
            }
            Ok(input)
        }
        LayerKind::Requirements { file, options } => {
            let path = env.context.join(file);
            let parsed = uv::parse_requirements_file(&path)?;
            let mut options = options.clone();
            if options.index_url.is_none() {
                options.index_url = parsed.index_url.clone();
            }
            for x in &parsed.extra_index_urls {
                if !options.extra_index_urls.contains(x) {
                    options.extra_index_urls.push(x.clone());
                }
            }
            options.pre |= parsed.pre;
            resolved_input(
                env,
                loc,
                parsed.requirements,
                options,
                python,
                format!("requirements {file}"),
            )
        }
        _ => unreachable!("only Python layer kinds reach here"),
    }
}

/// `extra_args` imgbuild understands for a uv project; anything else is refused
/// rather than silently dropped.
fn reject_unknown_args(loc: &Location, options: &PipOptions) -> Result<()> {
    for a in &options.extra_args {
        if !matches!(
            a.as_str(),
            "--no-dev" | "--locked" | "--frozen" | "--no-cache"
        ) {
            return Err(Error::Definition {
                loc: Box::new(loc.clone()),
                message: format!(
                    "extra_args: {a:?} is not supported for uv_project (use `extras` and `groups` for what to install)"
                ),
            });
        }
    }
    Ok(())
}

fn resolved_input(
    env: &Env,
    _loc: &Location,
    requirements: Vec<String>,
    options: PipOptions,
    python: (u32, u32, u32),
    label: String,
) -> Result<LockInput> {
    let uv = uv::ensure(env.store, options.index_url.as_deref())?;
    let req = uv::ResolveRequest {
        requirements,
        python: format!("{}.{}", python.0, python.1),
        index_url: options.index_url.clone(),
        extra_index_urls: options.extra_index_urls.clone(),
        pre: options.pre,
        extra_args: options.extra_args.clone(),
    };
    // The resolution is shared through a registry cache: a machine that
    // finds it there needs neither uv's resolver nor the index to plan.
    let (key, path) = uv::lock_location(&uv, env.store, &req)?;
    let bytes = env.shared_data(
        &key,
        crate::registry::cache::MT_PYLOCK,
        &path,
        &|b| std::str::from_utf8(b).is_ok_and(|t| Lock::parse(t, "cache").is_ok()),
        &mut || {
            let path = uv::lock_requirements(&uv, env.store, &req)?;
            std::fs::read(&path).map_err(|e| Error::input(&path, format!("cannot read: {e}")))
        },
    )?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::input(&path, "the lock is not UTF-8".to_string()))?;
    let lock = Lock::parse(&text, &path.display().to_string())
        .map_err(|e| Error::input(&path, e.to_string()))?;
    let root = lock
        .root_project()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "imgbuild-requirements".into());
    Ok(LockInput {
        lock,
        root_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        root,
        project: None,
        extras: vec![],
        groups: vec![],
        label,
        index: options.index_url,
    })
}

fn project_name(pyproject: &Path) -> std::result::Result<String, String> {
    let text = std::fs::read_to_string(pyproject)
        .map_err(|e| format!("{}: cannot read: {e}", pyproject.display()))?;
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: not valid TOML: {e}", pyproject.display()))?;
    // PEP 621, else poetry's own table (poetry 1 projects).
    ["project", "tool.poetry"]
        .iter()
        .find_map(|t| {
            let table = t.split('.').try_fold(&doc, |d, k| d.get(k)?.as_table())?;
            table.get("name")?.as_str().map(str::to_string)
        })
        .ok_or_else(|| format!("{}: no [project] name", pyproject.display()))
}

/// Options that reach every Python layer of a build.
#[derive(Clone, Debug, Default)]
pub struct PyPlanOptions {
    /// Run `uv lock` for uv projects before reading their lock.
    pub relock: bool,
}

/// What `plan_layer` adds to the image.
pub struct Planned {
    pub steps: Vec<Step>,
    /// The image config changes once the venv exists.
    pub venv_env: Option<Vec<(String, String)>>,
}

/// The steps of a Python layer entry: the base's interpreter found first
/// (once per image), then the layer's wheels planned; the first entry that
/// makes the venv also puts it on the image's environment.
pub(super) fn plan_entry(
    cx: &ImageCx,
    lc: &LayerCx,
    cfg: &mut ImageConfig,
    py: &mut PyState,
) -> Result<Vec<Step>> {
    let (env, img, done, base) = (cx.env, cx.img, cx.done, cx.base);
    let l = &*lc.layer;
    if py.envs.is_none()
        && let BasePlan::Image(bi) = base
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
        let layers = match super::debian::native_packages(env, img, done, base) {
            Some(v) => BaseLayers::Debian(v),
            None => super::base::base_layers(env, done, base, &img.platforms),
        };
        py.envs = Some(detect(
            env,
            img.python.as_deref(),
            &layers,
            cx.base_configs,
            &img.platforms,
            &l.loc,
        )?);
    }
    let envs = py.envs.as_ref().expect("set above");
    let skeleton = cfg.env_get("VIRTUAL_ENV") != Some(img.venv.as_str());
    let planned = plan_layer(
        env,
        l,
        &img.venv,
        &img.platforms,
        envs,
        skeleton,
        cx.rules,
        &env.o.python,
    )?;
    let mut steps = planned.steps;
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
        apply_config(cfg, &kind);
        let mut opts = BTreeMap::new();
        opts.insert("value".into(), config_value(&kind));
        steps.push(Step {
            name: format!("env {} (the venv)", config_value(&kind)),
            loc: l.loc.clone(),
            key: config_key(&kind),
            action: Action::Config(kind),
            cached: None,
            why: vec![],
            notes: vec![],
            options: opts,
            platform: None,
        });
    }
    Ok(steps)
}

/// Plans one Python layer entry for every platform.
#[allow(clippy::too_many_arguments)]
pub(super) fn plan_layer(
    env: &Env,
    layer: &crate::spec::Layer,
    venv: &str,
    platforms: &[Platform],
    envs: &[PyEnv],
    skeleton: bool,
    rules: &IgnoreRules,
    o: &PyPlanOptions,
) -> Result<Planned> {
    let loc = &layer.loc;
    if let LayerKind::PipPackages { options, .. }
    | LayerKind::Requirements { options, .. }
    | LayerKind::UvProject { options, .. } = &layer.kind
        && !options.secret_mounts.is_empty()
    {
        return Err(Error::Unsupported {
            what: format!("{loc}: secret_mounts on Python layers"),
            hint: Some(
                "wheels are fetched by imgbuild on the host; give index credentials through the index URL's configuration instead".into(),
            ),
        });
    }
    let input = lock_input(env, &layer.kind, loc, envs[0].version, o)?;
    let multi = platforms.len() > 1;
    let mut steps = Vec::new();
    for (pi, p) in platforms.iter().enumerate() {
        let pe = &envs[pi];
        let suffix = if multi {
            format!(" [{p}]")
        } else {
            String::new()
        };
        let arts = select(&input, pe, p, loc)?;
        let mut groups: Vec<(String, Vec<PyArtifact>)> = Vec::new();
        // Big packages alone, in name order; the rest in stable hash buckets.
        let (big, small): (Vec<_>, Vec<_>) = arts
            .into_iter()
            .partition(|a| a.size.is_some_and(|s| s >= BIG_PACKAGE));
        for a in big {
            groups.push((format!("{} {}", a.name, a.version), vec![a]));
        }
        // Pure wheels apart from platform wheels: their buckets are the same
        // on every platform, so they are built, stored and pushed once.
        let (pure, native): (Vec<_>, Vec<_>) = small
            .into_iter()
            .partition(|a| a.sdist || a.filename.ends_with("-none-any.whl"));
        for (label, set) in [("packages", pure), ("platform packages", native)] {
            let total: u64 = set.iter().map(|a| a.size.unwrap_or(0)).sum();
            let n = bucket_count(total);
            let mut buckets: Vec<Vec<PyArtifact>> = vec![Vec::new(); n];
            for a in set {
                buckets[bucket_of(&a.name, n)].push(a);
            }
            for (i, b) in buckets.into_iter().enumerate() {
                if !b.is_empty() {
                    groups.push((format!("{label} {}/{n} ({})", i + 1, b.len()), b));
                }
            }
        }
        let mut parts: Vec<(String, PyLayer)> = Vec::new();
        let base = PyLayer {
            venv: venv.to_string(),
            env: pe.clone(),
            skeleton: false,
            prompt: None,
            artifacts: vec![],
            project: None,
            bytes: 0,
            inputs: BTreeMap::new(),
        };
        if skeleton {
            parts.push((
                format!("venv {venv}"),
                PyLayer {
                    skeleton: true,
                    ..base.clone()
                },
            ));
        }
        for (name, arts) in groups {
            let bytes = arts.iter().map(|a| a.size.unwrap_or(0)).sum();
            parts.push((
                name,
                PyLayer {
                    artifacts: arts,
                    bytes,
                    ..base.clone()
                },
            ));
        }
        if let Some(pb) = &input.project {
            parts.push((
                format!("project {}", pb.name),
                PyLayer {
                    project: Some(pb.clone()),
                    ..base.clone()
                },
            ));
        }
        for (name, mut pl) in parts {
            let (key, inputs) = step_key(env, &pl, rules)?;
            pl.inputs = inputs;
            let mut options = BTreeMap::new();
            options.insert("venv".into(), venv.to_string());
            options.insert(
                "python".into(),
                format!(
                    "{} {}.{}.{}",
                    pe.interpreter, pe.version.0, pe.version.1, pe.version.2
                ),
            );
            options.insert(
                "target".into(),
                format!(
                    "{p} {} {}.{}",
                    pe.libc, pe.libc_version.0, pe.libc_version.1
                ),
            );
            steps.push(Step {
                name: format!("{}: {name}{suffix}", input.label),
                loc: loc.clone(),
                action: Action::Python(Box::new(pl)),
                key,
                cached: env.cached(&key),
                why: vec![],
                notes: vec![],
                options,
                platform: multi.then_some(pi),
            });
        }
    }
    if let Some(first) = steps.first_mut() {
        first.notes.push(format!(
            "Python {}.{}.{} at {} ({})",
            envs[0].version.0,
            envs[0].version.1,
            envs[0].version.2,
            envs[0].interpreter,
            envs[0].how
        ));
    }
    let venv_env = skeleton.then(|| {
        vec![
            ("VIRTUAL_ENV".to_string(), venv.to_string()),
            ("PATH".to_string(), format!("{venv}/bin:${{PATH}}")),
        ]
    });
    let _ = &input.index;
    Ok(Planned { steps, venv_env })
}

/// Layers of small packages: a power of two, from the total size, so the
/// count (and every package's bucket) changes only when the total crosses a
/// doubling.
pub fn bucket_count(total: u64) -> usize {
    let want = total.div_ceil(BUCKET_BUDGET).max(1) as usize;
    want.next_power_of_two().min(MAX_BUCKETS)
}

/// A package's bucket depends on its name only, so a version bump moves no
/// other package.
pub fn bucket_of(name: &str, n: usize) -> usize {
    let d = Digest::of(normalize_name(name).as_bytes());
    (u16::from_be_bytes([d.0[0], d.0[1]]) as usize) % n
}

/// The install set for one platform, with the artifact chosen for each package.
fn select(input: &LockInput, pe: &PyEnv, p: &Platform, loc: &Location) -> Result<Vec<PyArtifact>> {
    let version = format!("{}.{}.{}", pe.version.0, pe.version.1, pe.version.2);
    let menv = MarkerEnv::for_target(&version, &p.arch);
    let opts = SyncOptions {
        roots: vec![input.root.clone()],
        extras: input.extras.clone(),
        groups: input.groups.clone(),
        default_groups: vec![],
        no_install_project: true,
        ..SyncOptions::default()
    };
    let set = lock::install_set_with(&input.lock, &menv, &opts)
        .map_err(|e| input_err(loc, format!("{e} (target {p}, Python {version})")))?;
    let arch = Arch::from_oci(&p.arch).ok_or_else(|| {
        input_err(
            loc,
            format!("Python wheels for {p} are not supported (linux/amd64 and linux/arm64 are)"),
        )
    })?;
    let py = (pe.version.0, pe.version.1);
    let target = if pe.libc == "musl" {
        Target::musllinux(py, arch, pe.libc_version)
    } else {
        Target::manylinux(py, arch, pe.libc_version)
    };
    let index = TagIndex::new(&target);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for r in &set {
        match artifact_for(input, r, &index).map_err(|e| input_err(loc, e))? {
            Some(a) => out.push(a),
            None => missing.push(r),
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|r| {
                let v = r.version.as_deref().unwrap_or("?");
                if r.wheels.is_empty() && r.sdist.is_none() {
                    format!(
                        "{} {v} (source {}: not installable from a lock without building it)",
                        r.name, r.source
                    )
                } else {
                    let have: Vec<&str> = r.wheels.iter().map(|w| w.filename.as_str()).collect();
                    format!(
                        "{} {v} (wheels: {})",
                        r.name,
                        if have.is_empty() {
                            "none".into()
                        } else {
                            have.join(", ")
                        }
                    )
                }
            })
            .collect();
        return Err(input_err(
            loc,
            format!(
                "no wheel for {target}: {}; pin versions that publish wheels for this platform, or choose another Python",
                list.join("; ")
            ),
        ));
    }
    Ok(out)
}

fn artifact_for(
    input: &LockInput,
    r: &Resolved,
    index: &TagIndex,
) -> std::result::Result<Option<PyArtifact>, String> {
    let version = r.version.clone().unwrap_or_default();
    // Paths are relative to the project; a local registry's are already
    // joined to its folder by the lock reader.
    let resolve = |loc: &ArtifactLocation| -> String {
        match loc {
            ArtifactLocation::Url(u) => u.clone(),
            ArtifactLocation::Path(p) => input.root_dir.join(p).display().to_string(),
        }
    };
    let direct = |location: &str| -> Option<String> {
        match &r.source {
            Source::Registry(_) => None,
            _ => Some(if location.starts_with('/') {
                format!("file://{location}")
            } else {
                location.to_string()
            }),
        }
    };
    // uv records no hash for a file of a local folder (a find-links or
    // flat index on disk): its bytes, read now, name it.
    let hash = |locked: &Option<String>,
                size: Option<u64>,
                loc: &ArtifactLocation,
                at: &str|
     -> std::result::Result<Option<(String, Option<u64>)>, String> {
        match (locked, loc) {
            (Some(h), _) => Ok(Some((h.clone(), size))),
            (None, ArtifactLocation::Path(_)) => {
                let bytes = std::fs::read(at)
                    .map_err(|e| format!("{} {version}: reading {at}: {e}", r.name))?;
                Ok(Some((
                    crate::digest::hex_sha256(&bytes),
                    Some(bytes.len() as u64),
                )))
            }
            (None, ArtifactLocation::Url(_)) => Ok(None),
        }
    };
    if let Some(i) = index.best_index(r.wheels.iter().map(|w| &w.wheel)) {
        let w = &r.wheels[i];
        let location = resolve(&w.location);
        let Some((sha256, size)) = hash(&w.sha256, w.size, &w.location, &location)? else {
            return Ok(None);
        };
        return Ok(Some(PyArtifact {
            name: r.name.clone(),
            version,
            filename: w.filename.clone(),
            direct_url: direct(&location),
            location,
            sha256,
            size,
            sdist: false,
        }));
    }
    let Some(s) = r.sdist.as_ref() else {
        return Ok(None);
    };
    let (location, sha256, size) = match &s.location {
        Some(l) => {
            let location = resolve(l);
            let Some((sha256, size)) = hash(&s.sha256, s.size, l, &location)? else {
                return Ok(None);
            };
            (location, sha256, size)
        }
        None => match (&r.source, &s.sha256) {
            (Source::Url { url, .. }, Some(h)) => (url.clone(), h.clone(), s.size),
            _ => return Ok(None),
        },
    };
    let filename = location.rsplit('/').next().unwrap_or(&location).to_string();
    Ok(Some(PyArtifact {
        name: r.name.clone(),
        version,
        filename,
        direct_url: direct(&location),
        location,
        sha256,
        size,
        sdist: true,
    }))
}

/// The step key of a Python layer: the format, the venv and interpreter, every
/// artifact by hash, and for the project its source files.
fn step_key(
    env: &Env,
    pl: &PyLayer,
    rules: &IgnoreRules,
) -> Result<(Digest, BTreeMap<String, String>)> {
    let o = env.o;
    let mut k = KeyHasher::new("python", PY_FORMAT);
    k.str(o.compression.name())
        .u64(o.compression.level() as u64)
        .u64(o.compression.framing())
        .u64(o.source_date_epoch)
        .str(&pl.venv)
        .str(&pl.env.interpreter)
        .u64(pl.env.version.0 as u64)
        .u64(pl.env.version.1 as u64)
        .u64(pl.env.version.2 as u64)
        .bool(pl.skeleton)
        .opt_str(pl.prompt.as_deref());
    let mut files = BTreeMap::new();
    k.u64(pl.artifacts.len() as u64);
    for a in &pl.artifacts {
        k.str(&a.name)
            .str(&a.filename)
            .str(&a.sha256)
            .opt_str(a.direct_url.as_deref())
            .bool(a.sdist);
        files.insert(
            a.name.clone(),
            format!("{} {}", a.version, &a.sha256[..a.sha256.len().min(12)]),
        );
    }
    if let Some(pb) = &pl.project {
        k.str("project").str(&pb.name);
        let mut exclude: Vec<PathBuf> = env.o.exclude.clone();
        for d in [".venv", "dist", "build"] {
            exclude.push(pb.dir.join(d));
        }
        let c = files::collect_folder(
            &pb.dir,
            "",
            false,
            &CollectOptions {
                context: env.context,
                rules,
                owner: None,
                chmod: None,
                stat: env.stat,
                exclude: &exclude,
                hash: true,
            },
        )?;
        files::key_entries(&mut k, &c.entries);
        for e in &c.entries {
            files.insert(e.path.to_string(), super::copy::fingerprint(e));
        }
    }
    Ok((k.finish(), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable() {
        assert_eq!(bucket_count(0), 1);
        assert_eq!(bucket_count(BUCKET_BUDGET), 1);
        assert_eq!(bucket_count(BUCKET_BUDGET + 1), 2);
        assert_eq!(bucket_count(3 * BUCKET_BUDGET), 4);
        assert_eq!(bucket_count(100 * BUCKET_BUDGET), MAX_BUCKETS);
        // A name's bucket does not depend on the version or the spelling.
        assert_eq!(bucket_of("Foo_Bar", 4), bucket_of("foo-bar", 4));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("3.12"), Some((3, 12, 0)));
        assert_eq!(parse_version("3.11.7"), Some((3, 11, 7)));
        assert_eq!(parse_version("x"), None);
    }
}

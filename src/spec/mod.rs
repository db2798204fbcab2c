//! The image model and the definition loader (`imgbuild.toml`, or the same
//! model as JSON).

pub mod node;

pub use crate::debian::DebianBase;
use crate::error::{Error, Location, Result};
pub use crate::oci::{Owner, Platform};
use node::{Node, Source, Table, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFINITION_FILE: &str = "imgbuild.toml";

/// A loaded definition file: named images that share one context folder.
#[derive(Clone, Debug)]
pub struct Definition {
    pub file: PathBuf,
    /// The definition's own folder: relative `oci:` bases start here.
    pub dir: PathBuf,
    /// The build context: relative source paths and ignore rules start here.
    pub context: PathBuf,
    pub images: Vec<ImageDef>,
    /// `cache = { from = [...], to = "..." }`: the registry step caches a
    /// build reads and writes when the command line names none.
    pub cache: crate::registry::cache::CacheOptions,
    /// `sbom = true|false`: attach SBOMs when the command line does not
    /// say (`--sbom`).
    pub sbom: Option<bool>,
    /// `provenance = true|false|"min"|"max"`: likewise for `--provenance`.
    pub provenance: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ImageDef {
    /// The key under `[images]`.
    pub id: String,
    pub loc: Location,
    pub base: Base,
    pub base_loc: Location,
    pub python: Option<String>,
    pub registry: Option<String>,
    /// Repository name (defaults to the image id).
    pub name: String,
    pub tag: Tag,
    pub platforms: Vec<Platform>,
    /// Where Python layers install (default `/opt/venv`).
    pub venv: String,
    /// Put the `uv` binary into the venv (Flyte images carry it).
    pub uv: bool,
    pub uv_loc: Location,
    pub layers: Vec<Layer>,
    /// Where this image's file layers read from, when not the
    /// definition's context (the stages of a Dockerfile base).
    pub context: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// `debian`: `python:<python>-slim-bookworm` from a registry.
    Debian,
    /// `oci:DIR[:TAG]`, a local OCI image layout.
    Layout {
        dir: PathBuf,
        tag: Option<String>,
    },
    /// Another image of the same file.
    Image(String),
    /// A registry reference, resolved by the registry client.
    Ref(String),
    /// `{ debian = "bookworm", packages = [...] }`: built natively from
    /// Debian's packages (see `crate::debian`).
    DebianNative(Box<DebianBase>),
    /// `{ dockerfile = "path", context = "dir" }`: the Dockerfile's target
    /// stage, built first (replaced by its stages when the file is loaded).
    Dockerfile {
        file: PathBuf,
        context: Option<PathBuf>,
        target: Option<String>,
        build_args: BTreeMap<String, String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    Auto,
    Explicit(String),
}

#[derive(Clone, Debug)]
pub struct Layer {
    /// Where the layer's kind key stands.
    pub loc: Location,
    pub kind: LayerKind,
}

/// Options shared by the Python installer layers (mirrors Flyte's PipOption).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipOptions {
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub pre: bool,
    pub extra_args: Vec<String>,
    pub secret_mounts: Vec<String>,
    /// `pip_packages` only: a local project folder (relative to the
    /// context) built into a wheel and installed after the packages, in a
    /// layer of its own; its dependencies must be among the packages.
    pub project: Option<String>,
}

/// Options of the layers that run programs in the image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// `ID`, `ID,env=VAR` or `ID,target=/path`, validated.
    pub secret_mounts: Vec<String>,
    /// Absolute folders kept in the store between builds.
    pub cache_mounts: Vec<String>,
    /// `SRC:DST`: a file or folder of the context, read-only at DST.
    pub bind_mounts: Vec<String>,
    /// Absolute folders that start empty and are not kept (`tmpfs` mounts).
    pub tmpfs_mounts: Vec<String>,
    /// `false` for `network = "none"`.
    pub network: bool,
    /// Seconds.
    pub timeout: Option<u64>,
    /// Folders of another image of the definition (Dockerfile `RUN
    /// --mount=type=bind|cache,from=…`).
    pub from_mounts: Vec<FromMount>,
    /// SSH agent sockets forwarded to the step (`--mount=type=ssh`).
    pub ssh_mounts: Vec<SshMount>,
    /// The step gets no `SOURCE_DATE_EPOCH` of imgbuild's own (a
    /// Dockerfile's RUN: BuildKit passes it only as a declared build arg).
    pub no_source_date_epoch: bool,
    /// `security = "insecure"` (Dockerfile `RUN --security=insecure`): the
    /// step runs without the sandbox's containment (every capability, no
    /// seccomp filter, writable kernel settings), only when the build is
    /// run with `--allow security.insecure`.
    pub insecure: bool,
}

/// A folder of another image mounted into a RUN step: read-only (`bind`),
/// or as a cache that starts as a copy of it (`cache`).
#[derive(Clone, Debug, PartialEq)]
pub struct FromMount {
    /// The image (an id of the definition) the folder is read from.
    pub image: String,
    /// Absolute path in that image.
    pub source: String,
    /// Absolute path in the step.
    pub target: String,
    /// `Some(id)`: a cache mount with this id, seeded from the source.
    pub cache: Option<String>,
}

/// An SSH agent socket forwarded to a RUN step: the socket given as
/// `--ssh ID=…` appears at `target`, and `SSH_AUTH_SOCK` names it.
#[derive(Clone, Debug, PartialEq)]
pub struct SshMount {
    pub id: String,
    pub target: String,
    /// Without `--ssh ID`, fail (true) or run without the socket.
    pub required: bool,
}

/// `90`, `90s`, `10m`, `2h`, `7d` → seconds. A duration that does not fit
/// in 64-bit seconds is an error, not a wrapped or panicking multiply.
pub fn parse_duration(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if num.is_empty() {
        return Err(format!("duration {s:?} is not like 7d, 12h, 30m, 90s or 0"));
    }
    let unit_secs: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("duration {s:?}: unit must be s, m, h or d")),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or_else(|| format!("duration {s:?} is too long (at most {} seconds)", u64::MAX))
}

pub use crate::util::fs::{MAX_DESCRIPTION_SIZE, read_text_capped};

/// A size in bytes as docker's size flags write it (`--shm-size`,
/// `--memory`): a number, then an optional unit `k`, `m`, `g`, `t` or `p`
/// (either case, each 1024 times the last, an optional `i` and `b` after
/// it: `20g`, `512MiB`, `1.5GB`); no unit is bytes.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("size {s:?} is not like 20g, 512m, 1.5GiB or 4096");
    let t = s.trim();
    let end = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(end);
    let rest = rest.trim_start_matches(' ').to_ascii_lowercase();
    let (unit, tail) = rest.split_at(rest.len().min(1));
    let shift = match unit {
        "" | "b" if tail.is_empty() => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    if !matches!(tail, "" | "b" | "i" | "ib") {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes as u64)
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    PipPackages {
        packages: Vec<String>,
        options: PipOptions,
    },
    Requirements {
        file: String,
        options: PipOptions,
    },
    UvProject {
        pyproject: String,
        install_project: bool,
        extras: Vec<String>,
        groups: Vec<String>,
        options: PipOptions,
    },
    AptPackages {
        packages: Vec<String>,
        run: RunOptions,
    },
    Commands {
        commands: Vec<String>,
        /// All commands in one step (joined with `&&`) instead of one each.
        group: bool,
        run: RunOptions,
    },
    Env(Vec<(String, String)>),
    Workdir(String),
    SourceFolder {
        src: String,
        dst: String,
        copy_contents_only: bool,
        chown: Option<Owner>,
        chmod: Option<u32>,
        /// Patterns (`.dockerignore` syntax, relative to the folder) of
        /// paths left out (Dockerfile `COPY --exclude`).
        exclude: Vec<String>,
    },
    SourceFile {
        src: String,
        dst: String,
        chown: Option<Owner>,
        chmod: Option<u32>,
    },
    Dockerignore(String),
    User(String),
    Labels(Vec<(String, String)>),
    Entrypoint(Vec<String>),
    Cmd(Vec<String>),
    Expose(Vec<String>),
    /// A field of Docker's image config that definition files do not set
    /// (Dockerfile VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD): the JSON
    /// name and value; `Volumes` and `OnBuild` add to what is there.
    DockerConfig {
        field: String,
        value: serde_json::Value,
    },
    /// Dockerfile `ADD` of a local tar archive (compressed or not): its
    /// entries unpacked under `dst`, with the owners and modes they carry.
    AddArchive {
        src: String,
        dst: String,
        chown: Option<Owner>,
    },
    /// Dockerfile `ADD URL`: the file downloaded (checked against
    /// `checksum`, `sha256:HEX`, when given) at `dst`, mode 0600 unless
    /// `chmod` says otherwise.
    AddUrl {
        url: String,
        dst: String,
        chown: Option<Owner>,
        chmod: Option<u32>,
        checksum: Option<String>,
    },
    /// Dockerfile `ADD <git repository>`: the files of the commit its ref
    /// names (the folder a subdir names) under `dst`, without `.git`
    /// unless `keep_git_dir`; `checksum` is a commit hash (or its start)
    /// the ref must resolve to. `source` is the URL as written, fragment
    /// and query included.
    AddGit {
        source: String,
        dst: String,
        chown: Option<Owner>,
        chmod: Option<u32>,
        checksum: Option<String>,
        keep_git_dir: bool,
    },
    /// Dockerfile `COPY <<EOF DST`: a file with this content (mode 0644
    /// unless `chmod`).
    Inline {
        content: String,
        dst: String,
        chown: Option<Owner>,
        chmod: Option<u32>,
    },
    /// A file layer (`source_folder`, `source_file`, `copy_from`) whose
    /// owner is given by name (`USER[:GROUP]`): resolved when the layer is
    /// built, from the /etc/passwd and /etc/group of the layers below.
    NamedOwner {
        owner: String,
        inner: Box<LayerKind>,
    },
    /// Files from another image of the definition (Dockerfile `COPY
    /// --from=stage`): a folder's contents, or a file, at `dst`.
    CopyFrom {
        image: String,
        srcs: Vec<String>,
        dst: String,
        chown: Option<Owner>,
        chmod: Option<u32>,
        /// Patterns of paths left out, relative to each source (`COPY
        /// --exclude`).
        exclude: Vec<String>,
        /// `COPY --parents`: each source keeps its path (below a `/./`
        /// in it, else from the root) under `dst`.
        parents: bool,
    },
}

impl LayerKind {
    /// The definition key that names this kind.
    /// The owner a file layer gives its files, by ids.
    pub fn chown(&self) -> Option<Owner> {
        match self {
            LayerKind::SourceFolder { chown, .. }
            | LayerKind::SourceFile { chown, .. }
            | LayerKind::AddArchive { chown, .. }
            | LayerKind::AddUrl { chown, .. }
            | LayerKind::AddGit { chown, .. }
            | LayerKind::Inline { chown, .. }
            | LayerKind::CopyFrom { chown, .. } => *chown,
            _ => None,
        }
    }

    /// The layer itself, without a by-name owner around it.
    pub fn inner(&self) -> &LayerKind {
        match self {
            LayerKind::NamedOwner { inner, .. } => inner.inner(),
            other => other,
        }
    }

    pub fn key(&self) -> &'static str {
        match self {
            LayerKind::PipPackages { .. } => "pip_packages",
            LayerKind::Requirements { .. } => "requirements",
            LayerKind::UvProject { .. } => "uv_project",
            LayerKind::AptPackages { .. } => "apt_packages",
            LayerKind::Commands { .. } => "commands",
            LayerKind::Env(_) => "env",
            LayerKind::Workdir(_) => "workdir",
            LayerKind::SourceFolder { .. } => "source_folder",
            LayerKind::SourceFile { .. } => "source_file",
            LayerKind::Dockerignore(_) => "dockerignore",
            LayerKind::User(_) => "user",
            LayerKind::Labels(_) => "labels",
            LayerKind::Entrypoint(_) => "entrypoint",
            LayerKind::Cmd(_) => "cmd",
            LayerKind::Expose(_) => "expose",
            LayerKind::CopyFrom { .. } => "copy_from",
            LayerKind::DockerConfig { .. } => "docker_config",
            LayerKind::NamedOwner { inner, .. } => inner.key(),
            LayerKind::AddArchive { .. } => "add_archive",
            LayerKind::AddUrl { .. } => "add_url",
            LayerKind::AddGit { .. } => "add_git",
            LayerKind::Inline { .. } => "inline",
        }
    }
}

const KIND_KEYS: &[&str] = &[
    "pip_packages",
    "requirements",
    "uv_project",
    "apt_packages",
    "commands",
    "env",
    "workdir",
    "source_folder",
    "source_file",
    "dockerignore",
    "user",
    "labels",
    "entrypoint",
    "cmd",
    "expose",
];

/// How a definition is given.
pub enum Input<'a> {
    /// A file or a folder holding `imgbuild.toml`.
    Path(&'a Path),
    /// Text (TOML or JSON) with the name to report it under and its context folder.
    Text {
        text: String,
        name: PathBuf,
        context: PathBuf,
    },
}

/// Loads and validates a definition. `profile` applies per-image variants.
/// Images based on a Dockerfile keep that base as written: the facade
/// ([`crate::load`]) expands it into the Dockerfile's stages.
pub fn load(input: Input<'_>, profile: Option<&str>) -> Result<Definition> {
    let (src, context) = match input {
        Input::Path(p) => {
            let file = if p.is_dir() {
                p.join(DEFINITION_FILE)
            } else {
                p.to_path_buf()
            };
            let text = crate::util::fs::read_description(&file).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::input(
                        &file,
                        "no such definition file (write an imgbuild.toml, or pass one)",
                    )
                } else {
                    Error::input(&file, format!("cannot read: {e}"))
                }
            })?;
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            (Source { file, text }, dir)
        }
        Input::Text {
            text,
            name,
            context,
        } => (Source { file: name, text }, context),
    };
    let is_json =
        src.file.extension().is_some_and(|e| e == "json") || src.text.trim_start().starts_with('{');
    let root = if is_json {
        node::parse_json(&src)?
    } else {
        node::parse_toml(&src)?
    };
    let dir = match src.file.parent() {
        Some(p) if src.file.is_file() => {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        }
        _ => context.clone(),
    };
    let mut def = parse_definition(&src, &root, context, profile)?;
    def.dir = dir;
    Ok(def)
}

fn parse_definition(
    src: &Source,
    root: &Node,
    context: PathBuf,
    profile: Option<&str>,
) -> Result<Definition> {
    let top = Table::new(src, "", root)?;
    let context = match top.str("context")? {
        Some(c) => context.join(c),
        None => context,
    };
    let images_t = top.table("images")?;
    let cache = match top.table("cache")? {
        None => Default::default(),
        Some(t) => {
            let one = |key: &str, s: &str| {
                crate::registry::cache::CacheRef::parse(s).map_err(|e| t.err(key, t.get(key), e))
            };
            let from = t.str_list("from", true)?.unwrap_or_default();
            let to = t.str("to")?;
            t.finish()?;
            crate::registry::cache::CacheOptions {
                from: from.iter().map(|s| one("from", s)).collect::<Result<_>>()?,
                to: to.as_deref().map(|s| one("to", s)).transpose()?,
            }
        }
    };
    let sbom = top.bool("sbom")?;
    let provenance = match top.get("provenance") {
        None => None,
        Some(n) => {
            let v = match &n.value {
                node::Value::Bool(b) => b.to_string(),
                node::Value::Str(s) => s.clone(),
                _ => String::new(),
            };
            let mode = v.trim_start_matches("mode=");
            if !matches!(mode, "true" | "false" | "min" | "max") {
                return Err(top.err(
                    "provenance",
                    Some(n),
                    "expected true, false, \"min\" or \"max\"",
                ));
            }
            Some(mode.to_string())
        }
    };
    top.finish()?;
    let images_t = images_t.ok_or_else(|| {
        src.error(
            root.pos,
            "images",
            "no [images.NAME] table: define at least one image",
        )
    })?;
    let mut images = Vec::new();
    let mut profile_seen = false;
    for (id, node) in images_t.entries() {
        let path = format!("images.{id}");
        check_name(src, node, &path, id)?;
        let (img, seen) = parse_image(src, id, &path, node, profile)?;
        profile_seen |= seen;
        images.push(img);
    }
    if images.is_empty() {
        return Err(src.error(images_t.node.pos, "images", "no images defined"));
    }
    if let Some(p) = profile
        && !profile_seen
    {
        return Err(Error::Usage(format!(
            "profile {p:?} is not defined by any image in {}",
            src.file.display()
        )));
    }
    // A bare word names another image of this file, else a Docker Hub image.
    let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
    for img in &mut images {
        if let Base::Image(n) = &img.base {
            if n == &img.id {
                return Err(Error::Definition {
                    loc: Box::new(img.base_loc.clone()),
                    message: format!("image {n:?} cannot be its own base"),
                });
            }
            if !ids.contains(n) {
                img.base = Base::Ref(n.clone());
            }
        }
    }
    // Bases that name another image of this file must not form a cycle.
    for img in &images {
        let mut seen = vec![img.id.as_str()];
        let mut cur = img;
        while let Base::Image(next) = &cur.base {
            if seen.contains(&next.as_str()) {
                return Err(Error::Definition {
                    loc: Box::new(img.base_loc.clone()),
                    message: format!("base images form a cycle: {} → {next}", seen.join(" → ")),
                });
            }
            seen.push(next);
            cur = images
                .iter()
                .find(|i| &i.id == next)
                .expect("resolved above");
        }
    }
    Ok(Definition {
        file: src.file.clone(),
        dir: PathBuf::new(),
        context,
        images,
        cache,
        sbom,
        provenance,
    })
}

fn check_name(src: &Source, node: &Node, path: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(src.error(
            node.pos,
            path,
            format!("image name {id:?} may use only letters, digits, '-', '_' and '.'"),
        ))
    }
}

/// Image-level keys a profile may override.
const OVERRIDABLE: &[&str] = &["base", "python", "registry", "name", "tag", "platforms"];

fn parse_image(
    src: &Source,
    id: &str,
    path: &str,
    node: &Node,
    profile: Option<&str>,
) -> Result<(ImageDef, bool)> {
    let t = Table::new(src, path, node)?;
    let profiles = t.table("profiles")?;
    let mut chosen: Option<Table> = None;
    if let Some(ps) = &profiles {
        for (name, pn) in ps.entries() {
            let pt = Table::new(src, &ps.field(name), pn)?;
            // Validate every profile, not only the chosen one.
            for k in pt.keys() {
                if !OVERRIDABLE.contains(&k) && k != "env" && k != "layers" {
                    return Err(pt.err(
                        k,
                        pt.get(k),
                        format!(
                            "unknown field `{k}` (a profile may set {}, env and layers)",
                            OVERRIDABLE.join(", ")
                        ),
                    ));
                }
            }
            if Some(name.as_str()) == profile {
                chosen = Some(pt);
            }
        }
    }
    let seen = chosen.is_some();
    // A value from the chosen profile wins over the image's own.
    let pick = |key: &str| -> (&Table, bool) {
        match &chosen {
            Some(p) if p.has(key) => (p, true),
            _ => (&t, false),
        }
    };
    let (bt, _) = pick("base");
    let base_loc = bt.loc("base");
    // `base = { dockerfile = "path", context = "dir", target, build_args }`
    // or `base = { debian = "bookworm", packages = [...] }`.
    let df_base = match bt.get("base") {
        Some(n)
            if matches!(n.value, Value::Table(_))
                && bt.table("base")?.is_some_and(|d| d.has("debian")) =>
        {
            let d = bt.table("base")?.expect("a table");
            let dist = d.str("debian")?.expect("checked");
            if dist.is_empty()
                || !dist
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                return Err(d.err(
                    "debian",
                    d.get("debian"),
                    format!("{dist:?} is not a Debian codename like \"bookworm\""),
                ));
            }
            let variant = d.str("variant")?.unwrap_or_else(|| "minbase".into());
            if !matches!(variant.as_str(), "minbase" | "essential") {
                return Err(d.err(
                    "variant",
                    d.get("variant"),
                    format!("variant {variant:?}: expected \"minbase\" or \"essential\""),
                ));
            }
            let packages = d.str_list("packages", false)?.unwrap_or_default();
            let prefer = d
                .str_list("prefer", false)?
                .unwrap_or_else(|| vec!["usr-is-merged".into()]);
            let sources = d.str_list("sources", false)?.unwrap_or_default();
            for s in &sources {
                if s.split_whitespace().count() < 2 || !s.contains("://") {
                    return Err(d.err(
                        "sources",
                        d.get("sources"),
                        format!("source {s:?}: expected \"URI SUITE [COMPONENT…]\""),
                    ));
                }
            }
            let keyrings = d
                .str_list("keyrings", false)?
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect();
            d.finish()?;
            Some(Base::DebianNative(Box::new(DebianBase {
                dist,
                packages,
                variant,
                prefer,
                sources,
                keyrings,
            })))
        }
        Some(n) if matches!(n.value, Value::Table(_)) => {
            let d = bt.table("base")?.expect("a table");
            let file = d.str("dockerfile")?.ok_or_else(|| {
                d.err(
                    "dockerfile",
                    None,
                    "a table base needs `dockerfile = \"path/to/Dockerfile\"` (and may set context, target, build_args)",
                )
            })?;
            let context = d.str("context")?.map(PathBuf::from);
            let target = d.str("target")?;
            let build_args: BTreeMap<String, String> = d
                .str_map("build_args")?
                .unwrap_or_default()
                .into_iter()
                .collect();
            d.finish()?;
            Some(Base::Dockerfile {
                file: PathBuf::from(file),
                context,
                target,
                build_args,
            })
        }
        _ => None,
    };
    let base_str = match df_base {
        Some(_) => None,
        None => bt.str("base")?,
    };
    let (pt_, _) = pick("python");
    let python = pt_.str("python")?;
    if let Some(py) = &python {
        let ok = py.split('.').count() >= 2
            && py
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(pt_.err(
                "python",
                pt_.get("python"),
                format!("python version {py:?} is not like \"3.12\""),
            ));
        }
    }
    let base = match base_str.as_deref() {
        None if df_base.is_some() => df_base.expect("checked"),
        None => return Err(src.error(node.pos, &format!("{path}.base"), "missing `base` (\"scratch\", \"debian\", \"oci:DIR[:TAG]\", an image of this file, or an image reference)")),
        Some(b) => parse_base(b).map_err(|m| Error::Definition { loc: Box::new(base_loc.clone()), message: m })?,
    };
    let (rt, _) = pick("registry");
    let registry = rt
        .str("registry")?
        .map(|r| r.trim_end_matches('/').to_string());
    if let Some(r) = &registry
        && (r.is_empty() || r.contains("://") || r.chars().any(|c| c.is_whitespace()))
    {
        return Err(rt.err(
            "registry",
            rt.get("registry"),
            format!("registry {r:?} should look like host[:port][/namespace]"),
        ));
    }
    let (nt, _) = pick("name");
    let name = nt.str("name")?.unwrap_or_else(|| id.to_string());
    if name.len() > crate::registry::MAX_NAME {
        return Err(nt.err(
            "name",
            nt.get("name"),
            format!(
                "repository name of {} characters: names are at most {}",
                name.len(),
                crate::registry::MAX_NAME
            ),
        ));
    }
    if !valid_repo(&name) {
        return Err(nt.err("name", nt.get("name"), format!("repository name {name:?} must be lowercase letters, digits and separators (., _, -, /)")));
    }
    let (tt, _) = pick("tag");
    let tag = match tt.str("tag")? {
        None => Tag::Explicit("latest".into()),
        Some(s) if s == "auto" => Tag::Auto,
        Some(s) => {
            if !crate::registry::reference::valid_tag(&s) {
                return Err(tt.err(
                    "tag",
                    tt.get("tag"),
                    format!("tag {s:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"),
                ));
            }
            Tag::Explicit(s)
        }
    };
    let (plt, _) = pick("platforms");
    let platforms = match plt.str_list("platforms", true)? {
        None => vec![Platform::host()],
        Some(list) => {
            if list.is_empty() {
                return Err(plt.err("platforms", plt.get("platforms"), "platforms is empty"));
            }
            let mut out: Vec<Platform> = Vec::new();
            for s in &list {
                let p = Platform::parse(s)
                    .map_err(|m| plt.err("platforms", plt.get("platforms"), m))?;
                if out.contains(&p) {
                    return Err(plt.err(
                        "platforms",
                        plt.get("platforms"),
                        format!("platform {p} is listed twice"),
                    ));
                }
                out.push(p);
            }
            out
        }
    };
    let venv = t.str("venv")?.unwrap_or_else(|| "/opt/venv".into());
    if !venv.starts_with('/') || venv.len() < 2 || venv.split('/').any(|c| c == "..") {
        return Err(t.err(
            "venv",
            t.get("venv"),
            format!("venv {venv:?} must be an absolute folder like \"/opt/venv\""),
        ));
    }
    let venv = venv.trim_end_matches('/').to_string();
    let uv_loc = t.loc("uv");
    let uv = t.bool("uv")?.unwrap_or(false);
    let mut layers = Vec::new();
    if let Some(ln) = t.get("layers") {
        layers.extend(parse_layers(src, &t.field("layers"), ln)?);
    }
    if let Some(p) = &chosen {
        if let Some(ln) = p.get("layers") {
            layers.extend(parse_layers(src, &p.field("layers"), ln)?);
        }
        if let Some(env) = p.str_map("env")? {
            check_env(p, "env", &env)?;
            layers.push(Layer {
                loc: p.loc("env"),
                kind: LayerKind::Env(env),
            });
        }
    }
    // Read (and so accept) the keys the profile overrode on the image too.
    for k in OVERRIDABLE {
        let _ = t.get(k);
    }
    t.finish()?;
    if let Some(p) = &chosen {
        p.finish()?;
    }
    Ok((
        ImageDef {
            id: id.to_string(),
            loc: src.loc(node.pos, path),
            base,
            base_loc,
            python,
            registry,
            name,
            tag,
            platforms,
            venv,
            uv,
            uv_loc,
            layers,
            context: None,
        },
        seen,
    ))
}

pub fn parse_base(b: &str) -> std::result::Result<Base, String> {
    let b = b.trim();
    if b.is_empty() {
        return Err("base is empty".into());
    }
    if b == "scratch" {
        return Ok(Base::Scratch);
    }
    if b == "debian" {
        return Ok(Base::Debian);
    }
    if let Some(rest) = b.strip_prefix("oci:") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') && !d.is_empty() => (d, Some(t.to_string())),
            _ => (rest, None),
        };
        if dir.is_empty() {
            return Err("oci: base needs a folder: oci:DIR[:TAG]".into());
        }
        return Ok(Base::Layout {
            dir: PathBuf::from(dir),
            tag,
        });
    }
    if b.contains(char::is_whitespace) {
        return Err(format!("base {b:?} is not an image reference"));
    }
    if !b.contains(['/', ':', '@', '.']) {
        // A bare word: another image of this file if one has that name,
        // else a Docker Hub official image; decided when images are known.
        return Ok(Base::Image(b.to_string()));
    }
    Ok(Base::Ref(b.to_string()))
}

fn valid_repo(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

fn check_env(t: &Table, key: &str, env: &[(String, String)]) -> Result<()> {
    for (k, _) in env {
        let ok =
            !k.is_empty() && !k.contains('=') && !k.chars().any(|c| c.is_whitespace() || c == '\0');
        if !ok {
            return Err(t.err(
                key,
                t.get(key),
                format!("environment variable name {k:?} is not valid"),
            ));
        }
    }
    Ok(())
}

fn parse_layers(src: &Source, path: &str, node: &Node) -> Result<Vec<Layer>> {
    let Value::Array(items) = &node.value else {
        return Err(src.error(
            node.pos,
            path,
            format!(
                "expected an array of layer tables ([[...layers]]), found {}",
                node.type_name()
            ),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, n)| parse_layer(src, &format!("{path}[{i}]"), n))
        .collect()
}

fn parse_mode(t: &Table, key: &str) -> Result<Option<u32>> {
    match t.str(key)? {
        None => Ok(None),
        Some(s) => u32::from_str_radix(&s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Some)
            .ok_or_else(|| {
                t.err(
                    key,
                    t.get(key),
                    format!("mode {s:?} is not an octal mode like \"0644\""),
                )
            }),
    }
}

fn parse_owner(t: &Table, key: &str) -> Result<Option<Owner>> {
    let Some(s) = t.str(key)? else {
        return Ok(None);
    };
    let (u, g) = s.split_once(':').unwrap_or((&s, &s));
    match (u.parse::<u64>(), g.parse::<u64>()) {
        (Ok(uid), Ok(gid)) => Ok(Some(Owner { uid, gid })),
        _ => Err(t.err(
            key,
            t.get(key),
            format!("owner {s:?}: give numeric ids as \"UID[:GID]\" (names need the base's /etc/passwd, which is not supported yet)"),
        )),
    }
}

fn pip_options(t: &Table) -> Result<PipOptions> {
    Ok(PipOptions {
        index_url: t.str("index_url")?,
        extra_index_urls: t.str_list("extra_index_urls", true)?.unwrap_or_default(),
        pre: t.bool("pre")?.unwrap_or(false),
        extra_args: t.str_list("extra_args", false)?.unwrap_or_default(),
        secret_mounts: t.str_list("secret_mounts", true)?.unwrap_or_default(),
        project: None,
    })
}

fn run_options(t: &Table, commands: bool) -> Result<RunOptions> {
    let secret_mounts = t.str_list("secret_mounts", true)?.unwrap_or_default();
    for s in &secret_mounts {
        crate::sandbox::SecretMount::parse(s)
            .map_err(|m| t.err("secret_mounts", t.get("secret_mounts"), m))?;
    }
    let mut o = RunOptions {
        secret_mounts,
        network: true,
        ..Default::default()
    };
    if commands {
        o.cache_mounts = t.str_list("cache_mounts", true)?.unwrap_or_default();
        for c in &o.cache_mounts {
            if !c.starts_with('/') || c.split('/').any(|p| p == "..") {
                return Err(t.err(
                    "cache_mounts",
                    t.get("cache_mounts"),
                    format!(
                        "cache mount {c:?} must be an absolute folder, e.g. \"/root/.cache/pip\""
                    ),
                ));
            }
        }
        o.tmpfs_mounts = t.str_list("tmpfs_mounts", true)?.unwrap_or_default();
        for c in &o.tmpfs_mounts {
            if !c.starts_with('/') || c.split('/').any(|p| p == "..") {
                return Err(t.err(
                    "tmpfs_mounts",
                    t.get("tmpfs_mounts"),
                    format!("tmpfs mount {c:?} must be an absolute folder, e.g. \"/tmp\""),
                ));
            }
        }
        o.bind_mounts = t.str_list("bind_mounts", true)?.unwrap_or_default();
        for b in &o.bind_mounts {
            let ok = b.split_once(':').is_some_and(|(src, dst)| {
                !src.is_empty() && !src.starts_with('/') && dst.starts_with('/')
            });
            if !ok || b.split(['/', ':']).any(|p| p == "..") {
                return Err(t.err(
                    "bind_mounts",
                    t.get("bind_mounts"),
                    format!("bind mount {b:?} must be SRC:DST, SRC inside the context and DST absolute, e.g. \"scripts:/mnt/scripts\""),
                ));
            }
        }
        o.network = match t.str("network")?.as_deref() {
            None | Some("host") | Some("default") => true,
            Some("none") => false,
            Some(other) => {
                return Err(t.err(
                    "network",
                    t.get("network"),
                    format!("network {other:?}: expected \"host\" or \"none\""),
                ));
            }
        };
        o.insecure = match t.str("security")?.as_deref() {
            None | Some("sandbox") => false,
            Some("insecure") => true,
            Some(other) => {
                return Err(t.err(
                    "security",
                    t.get("security"),
                    format!("security {other:?}: expected \"sandbox\" (the default) or \"insecure\" (needs `--allow security.insecure`)"),
                ));
            }
        };
    }
    if let Some(d) = t.str("timeout")? {
        let secs = parse_duration(&d).map_err(|m| t.err("timeout", t.get("timeout"), m))?;
        o.timeout = (secs > 0).then_some(secs);
    }
    Ok(o)
}

fn non_empty(t: &Table, key: &str, v: Vec<String>) -> Result<Vec<String>> {
    if v.is_empty() || v.iter().any(|s| s.trim().is_empty()) {
        return Err(t.err(
            key,
            t.get(key),
            format!("`{key}` needs at least one non-empty entry"),
        ));
    }
    Ok(v)
}

fn parse_layer(src: &Source, path: &str, node: &Node) -> Result<Layer> {
    let t = Table::new(src, path, node)?;
    let kinds: Vec<&str> = t.keys().filter(|k| KIND_KEYS.contains(k)).collect();
    let kind_key = match kinds.as_slice() {
        [k] => *k,
        [] => {
            let hint = t
                .keys()
                .next()
                .map(|k| format!(" (found `{k}`)"))
                .unwrap_or_default();
            return Err(src.error(
                node.pos,
                path,
                format!("a layer needs one kind key: {}{hint}", KIND_KEYS.join(", ")),
            ));
        }
        [_, second, ..] => {
            return Err(t.err(
                second,
                t.get(second),
                format!(
                    "a layer has one kind; found `{}` and `{second}` (split them into two layers)",
                    kinds[0]
                ),
            ));
        }
    };
    let loc = t.loc(kind_key);
    let req_str = |key: &str| -> Result<String> {
        let s = t.str(key)?.unwrap_or_default();
        if s.trim().is_empty() {
            return Err(t.err(key, t.get(key), format!("`{key}` must not be empty")));
        }
        Ok(s)
    };
    let kind = match kind_key {
        "pip_packages" => {
            let packages = non_empty(
                &t,
                kind_key,
                t.str_list(kind_key, true)?.unwrap_or_default(),
            )?;
            let mut options = pip_options(&t)?;
            options.project = t.str("project")?;
            LayerKind::PipPackages { packages, options }
        }
        "requirements" => LayerKind::Requirements {
            file: req_str(kind_key)?,
            options: pip_options(&t)?,
        },
        "uv_project" => LayerKind::UvProject {
            pyproject: req_str(kind_key)?,
            install_project: t.bool("install_project")?.unwrap_or(false),
            extras: t.str_list("extras", true)?.unwrap_or_default(),
            groups: t.str_list("groups", true)?.unwrap_or_default(),
            options: pip_options(&t)?,
        },
        "apt_packages" => {
            let packages = non_empty(
                &t,
                kind_key,
                t.str_list(kind_key, true)?.unwrap_or_default(),
            )?;
            for p in &packages {
                let ok = p.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '.' | '+' | '-' | ':' | '=' | '~' | '/')
                });
                if !ok || p.starts_with('-') {
                    return Err(t.err(
                        kind_key,
                        t.get(kind_key),
                        format!("{p:?} is not a Debian package name (NAME, NAME=VERSION or NAME/RELEASE)"),
                    ));
                }
            }
            LayerKind::AptPackages {
                packages,
                run: run_options(&t, false)?,
            }
        }
        "commands" => LayerKind::Commands {
            commands: non_empty(
                &t,
                kind_key,
                t.str_list(kind_key, true)?.unwrap_or_default(),
            )?,
            group: t.bool("group")?.unwrap_or(false),
            run: run_options(&t, true)?,
        },
        "env" => {
            let env = t.str_map("env")?.unwrap_or_default();
            check_env(&t, "env", &env)?;
            LayerKind::Env(env)
        }
        "labels" => LayerKind::Labels(t.str_map("labels")?.unwrap_or_default()),
        "workdir" => LayerKind::Workdir(req_str(kind_key)?),
        "user" => LayerKind::User(req_str(kind_key)?),
        "dockerignore" => LayerKind::Dockerignore(req_str(kind_key)?),
        "source_folder" => LayerKind::SourceFolder {
            src: req_str(kind_key)?,
            dst: t.str("dst")?.unwrap_or_else(|| ".".into()),
            copy_contents_only: t.bool("copy_contents_only")?.unwrap_or(false),
            chown: parse_owner(&t, "chown")?,
            chmod: parse_mode(&t, "chmod")?,
            exclude: Vec::new(),
        },
        "source_file" => LayerKind::SourceFile {
            src: req_str(kind_key)?,
            dst: t.str("dst")?.unwrap_or_else(|| ".".into()),
            chown: parse_owner(&t, "chown")?,
            chmod: parse_mode(&t, "chmod")?,
        },
        "entrypoint" | "cmd" => {
            let Some(n) = t.get(kind_key) else {
                unreachable!()
            };
            if matches!(n.value, Value::Str(_)) {
                return Err(t.err(kind_key, Some(n), format!("`{kind_key}` takes a list of arguments, e.g. [\"python\", \"-m\", \"app\"]; for a shell command write [\"/bin/sh\", \"-c\", \"...\"]")));
            }
            let v = t.str_list(kind_key, false)?.unwrap_or_default();
            if kind_key == "entrypoint" {
                LayerKind::Entrypoint(v)
            } else {
                LayerKind::Cmd(v)
            }
        }
        "expose" => {
            let Some(n) = t.get("expose") else {
                unreachable!()
            };
            let items: Vec<&Node> = match &n.value {
                Value::Array(a) => a.iter().collect(),
                _ => vec![n],
            };
            let mut ports = Vec::new();
            for x in items {
                let s = match &x.value {
                    Value::Int(i) => i.to_string(),
                    Value::Str(s) => s.clone(),
                    _ => {
                        return Err(t.err(
                            "expose",
                            Some(x),
                            format!(
                                "expected a port like 8080 or \"8080/udp\", found {}",
                                x.type_name()
                            ),
                        ));
                    }
                };
                let (port, proto) = s.split_once('/').unwrap_or((&s, "tcp"));
                let ok = port.parse::<u16>().is_ok_and(|p| p > 0)
                    && matches!(proto, "tcp" | "udp" | "sctp");
                if !ok {
                    return Err(t.err(
                        "expose",
                        Some(x),
                        format!("port {s:?} is not PORT[/tcp|udp|sctp]"),
                    ));
                }
                ports.push(format!("{port}/{proto}"));
            }
            LayerKind::Expose(ports)
        }
        _ => unreachable!("kind keys are listed in KIND_KEYS"),
    };
    t.finish()?;
    Ok(Layer { loc, kind })
}

#[cfg(test)]
mod tests;

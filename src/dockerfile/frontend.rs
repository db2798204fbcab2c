//! A Dockerfile as a definition: each stage the target needs becomes an
//! image of the same model definition files use (FROM → base, COPY/ADD of
//! the context → file layers, RUN → a RUN step, ENV/WORKDIR/USER/LABEL/
//! EXPOSE/CMD/ENTRYPOINT → config), so the same planner, store, sandbox and
//! outputs build it.
//!
//! As BuildKit does, the whole file is parsed and every stage's FROM line
//! and `COPY --from` resolved, then only the stages the target reaches
//! (through `FROM <stage>`, `COPY --from=<stage|index>` and `RUN
//! --mount=from=<stage>`) are translated: a stage the target does not need
//! cannot fail the build with what its instructions mean.
//!
//! Variables follow BuildKit's scoping: ARGs before the first FROM (and
//! the predefined platform ARGs) are visible to FROM lines, and inside a
//! stage once redeclared; `--build-arg` overrides a declared ARG; a stage
//! built on an earlier stage starts with that stage's ARGs and ENVs; an ARG
//! declared without a value stays unset. RUN steps get the stage's ARGs
//! with a value as environment variables. `$VAR` of the image's
//! environment in ENV values is left for the planner, which knows the
//! base's config. `SOURCE_DATE_EPOCH` of the environment counts as a build
//! arg unless one is given (as buildx passes it); a RUN sees it only when
//! its stage declares `ARG SOURCE_DATE_EPOCH`, like any build arg.
//!
//! `COPY --from` takes files from an earlier stage, or from an image (a
//! stage of its own, built first); `--chown` by name is looked up in the
//! stage's /etc/passwd and /etc/group when the layer is built; wildcards
//! in sources match like Go's `filepath.Match` (context files under
//! .dockerignore, or the source image's files); `ADD` unpacks a local tar
//! archive (recognised by content), downloads `http(s)` URLs, checked
//! with `--checksum`, and checks out git repositories (BuildKit's URL
//! forms); RUN heredocs become the step's script; `FROM --platform` pins a
//! stage to one platform. VOLUME, STOPSIGNAL, SHELL
//! (later RUN steps use it), HEALTHCHECK and ONBUILD set the config.
//! `COPY <<EOF` writes the heredoc as a file. `COPY --exclude` patterns
//! (`.dockerignore` syntax) match paths relative to each source (a file by
//! its name); `COPY --parents` keeps each source's path (after a `/./` in
//! it, else from the context's or the stage's root) under the destination;
//! `--link` changes nothing, imgbuild's layers never depend on the ones
//! below. `RUN --mount=type=bind|cache,from=` reads a folder of an earlier
//! stage or an image (read-only, or as a new cache's first content);
//! `--mount=type=ssh` forwards the agent given with `--ssh`. `RUN
//! --security=insecure` runs the step without containment, when the build
//! allows it (`--allow security.insecure`).

use super::expand::expand;
use super::parse::{Cmd, Healthcheck, Inst, Instruction, Mount, parse};
use crate::error::{Error, Location, Result};
use crate::layer::files::resolve_dst;
use crate::layer::ignore::{ComponentGlob, IgnoreRules, expand_glob, has_wildcards};
use crate::spec::{Base, Definition, ImageDef, Layer, LayerKind, Owner, Platform, RunOptions, Tag};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct FrontendOptions<'a> {
    pub dockerfile: &'a Path,
    pub context: &'a Path,
    /// `--build-arg`s. `SOURCE_DATE_EPOCH` of the environment is added
    /// when they do not name it.
    pub build_args: &'a BTreeMap<String, String>,
    /// The stage to build (default: the last).
    pub target: Option<&'a str>,
    pub platforms: Vec<Platform>,
    /// Repository name and tag of the target image.
    pub name: String,
    pub tag: Tag,
    /// `--build-context NAME=…`: replaces the stage or image called NAME
    /// in `FROM` and `COPY --from`.
    pub contexts: &'a BTreeMap<String, NamedContext>,
    /// The ONBUILD triggers in the config of an image a stage is built on
    /// (a registry image or an OCI layout), for the first platform; they
    /// run right after the stage's FROM. `None`: not looked up (they stay
    /// in the config).
    pub base_triggers: Option<&'a BaseTriggers<'a>>,
}

/// Looks up the ONBUILD triggers of an image base: the instructions as the
/// image's config lists them.
pub type BaseTriggers<'a> = dyn Fn(&Base, &Platform) -> Result<Vec<String>> + 'a;

/// What a `--build-context` name stands for.
#[derive(Clone, Debug, PartialEq)]
pub enum NamedContext {
    /// An image: a registry reference or a local OCI layout.
    Image(Base),
    /// A local folder: a stage holding its files (`COPY --from=NAME`,
    /// `FROM NAME`).
    Local(PathBuf),
}

/// The image id of a local folder context's stage.
fn context_stage_id(name: &str) -> String {
    format!("context-{}", name.to_ascii_lowercase())
}

/// The named context `name` stands for: the name as written (not case
/// sensitive), else the same image reference once normalised
/// (`alpine` = `docker.io/library/alpine:latest`).
fn named_context<'c>(
    contexts: &'c BTreeMap<String, NamedContext>,
    name: &str,
) -> Option<(&'c String, &'c NamedContext)> {
    if let Some(hit) = contexts.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        return Some(hit);
    }
    let norm = |n: &str| {
        crate::registry::Reference::parse(n)
            .ok()
            .map(|r| r.to_string())
    };
    let want = norm(name)?;
    contexts
        .iter()
        .find(|(k, _)| norm(k).as_deref() == Some(want.as_str()))
}

/// The base a named context gives `FROM`.
fn context_base(name: &str, c: &NamedContext) -> Base {
    match c {
        NamedContext::Image(b) => b.clone(),
        NamedContext::Local(_) => Base::Image(context_stage_id(name)),
    }
}

/// A stage as the file declares it, resolved whatever the target.
struct Head<'a> {
    id: String,
    alias: Option<String>,
    base: Base,
    /// `FROM <an earlier stage>`: that stage.
    parent: Option<usize>,
    loc: Location,
    /// `FROM --platform=P`: built for P only.
    platform: Option<Platform>,
    body: Vec<&'a Instruction>,
    /// The stages its `COPY --from` and `RUN --mount=from=` read.
    deps: Vec<usize>,
}

/// A stage translated, or an image `COPY --from` names.
struct Stage {
    id: String,
    base: Base,
    loc: Location,
    layers: Vec<Layer>,
    platform: Option<Platform>,
}

/// The variables a stage's instructions see. A stage built on an earlier
/// stage starts with a copy of that stage's.
#[derive(Clone)]
struct Scope {
    /// ARG values and the ENV values this file set, the later one winning.
    vars: BTreeMap<String, String>,
    /// The names whose value came from an ARG, in the order declared:
    /// RUN steps get them as variables (ENV values are in the image's env).
    args: Vec<String>,
    /// ARGs declared without a value: unset, so they expand to nothing.
    unset: BTreeSet<String>,
    /// Where relative mount targets are (the image's workdir as far as
    /// this file says).
    workdir: String,
}

impl Scope {
    fn new() -> Scope {
        Scope {
            vars: BTreeMap::new(),
            args: Vec::new(),
            unset: BTreeSet::new(),
            workdir: "/".into(),
        }
    }

    /// A variable's value for expansion; a name this file does not know
    /// stays as written, for the planner (the base image's env).
    fn lookup(&self, k: &str) -> Option<String> {
        match self.vars.get(k) {
            Some(v) => Some(v.clone()),
            None if self.unset.contains(k) => None,
            None => Some(format!("${{{k}}}")),
        }
    }

    fn set_arg(&mut self, k: &str, v: String) {
        self.vars.insert(k.to_string(), v);
        self.unset.remove(k);
        if !self.args.iter().any(|a| a == k) {
            self.args.push(k.to_string());
        }
    }

    /// `ARG K` with no value from anywhere: an earlier value stays.
    fn declare_unset(&mut self, k: &str) {
        if !self.vars.contains_key(k) {
            self.unset.insert(k.to_string());
        }
    }

    fn set_env(&mut self, k: &str, v: String) {
        self.vars.insert(k.to_string(), v);
        self.unset.remove(k);
        self.args.retain(|a| a != k);
    }

    /// `K=V` words of the ARGs a RUN step gets.
    fn exports(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|k| format!("{k}={}", shell_quote(&self.vars[k])))
            .collect()
    }
}

/// What every stage's translation reads.
struct Cx<'a> {
    o: &'a FrontendOptions<'a>,
    file: &'a Path,
    esc: char,
    rules: IgnoreRules,
    build_args: BTreeMap<String, String>,
    /// ARGs before the first FROM and the predefined ones.
    global: BTreeMap<String, String>,
    heads: Vec<Head<'a>>,
}

fn loc(file: &Path, i: &Instruction, field: &str) -> Location {
    Location {
        file: file.to_path_buf(),
        line: i.line,
        column: 1,
        field: field.to_string(),
    }
}

fn unsupported(file: &Path, i: &Instruction, what: &str) -> Error {
    Error::Unsupported {
        what: format!("{}: {what}", loc(file, i, &i.keyword)),
        hint: Some("Dockerfile support is being built".into()),
    }
}

fn bad(file: &Path, i: &Instruction, msg: impl Into<String>) -> Error {
    Error::Definition {
        loc: Box::new(loc(file, i, &i.keyword)),
        message: msg.into(),
    }
}

/// Reads and translates the Dockerfile.
pub fn load(o: &FrontendOptions) -> Result<Definition> {
    let file = o.dockerfile;
    let text = crate::util::fs::read_description(file)
        .map_err(|e| Error::input(file, format!("cannot read the Dockerfile: {e}")))?;
    let df = parse(&text).map_err(|e| Error::Definition {
        loc: Box::new(Location {
            file: file.to_path_buf(),
            line: e.line,
            column: e.column,
            field: String::new(),
        }),
        message: match e.instruction.is_empty() {
            true => e.message,
            false => format!("{} (in `{}`)", e.message, e.instruction.trim()),
        },
    })?;
    let esc = df.escape;
    let rules = context_ignore_rules(file, o.context)?;
    let mut build_args = o.build_args.clone();
    if !build_args.contains_key("SOURCE_DATE_EPOCH")
        && let Ok(v) = std::env::var("SOURCE_DATE_EPOCH")
    {
        build_args.insert("SOURCE_DATE_EPOCH".into(), v);
    }

    // The file's parts: ARGs before the first FROM, then the stages.
    let mut global_args: Vec<&Instruction> = Vec::new();
    let mut parts: Vec<(&Instruction, Vec<&Instruction>)> = Vec::new();
    for i in &df.instructions {
        match (&i.inst, parts.last_mut()) {
            (Inst::From { .. }, _) => parts.push((i, Vec::new())),
            (_, Some((_, body))) => body.push(i),
            (Inst::Arg(_), None) => global_args.push(i),
            (_, None) => return Err(bad(file, i, "only ARG may come before the first FROM")),
        }
    }
    if parts.is_empty() {
        return Err(Error::Definition {
            loc: Box::new(Location {
                file: file.to_path_buf(),
                line: 1,
                column: 1,
                field: String::new(),
            }),
            message: "the Dockerfile has no FROM".into(),
        });
    }
    // What BuildKit checks while parsing holds in every stage.
    for i in parts.iter().flat_map(|(_, body)| body) {
        if let Inst::Healthcheck(h) = &i.inst {
            healthcheck_value(file, i, h.as_ref())?;
        }
    }

    // Global scope: the predefined platform ARGs, then the file's.
    let platform = o.platforms.first().cloned().unwrap_or_else(Platform::host);
    let host = Platform::host();
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    for (prefix, p) in [("TARGET", &platform), ("BUILD", &host)] {
        global.insert(format!("{prefix}PLATFORM"), p.to_string());
        global.insert(format!("{prefix}OS"), p.os.clone());
        global.insert(format!("{prefix}ARCH"), p.arch.clone());
        global.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    for i in &global_args {
        let Inst::Arg(list) = &i.inst else {
            unreachable!("only ARGs are global")
        };
        for (k, v) in list {
            let v = match (build_args.get(k), v) {
                (Some(b), _) => b.clone(),
                (None, Some(d)) => {
                    expand(d, esc, &|n| global.get(n).cloned()).map_err(|m| bad(file, i, m))?
                }
                // Declared without a value: unset.
                (None, None) => continue,
            };
            global.insert(k.clone(), v);
        }
    }

    // Every stage's FROM line, whatever the target (as BuildKit).
    let mut heads: Vec<Head> = Vec::new();
    for (n, (fi, body)) in parts.into_iter().enumerate() {
        let Inst::From {
            image,
            alias,
            platform: p,
        } = &fi.inst
        else {
            unreachable!("a stage starts with FROM")
        };
        let lookup = |k: &str| global.get(k).cloned();
        let written = image;
        let image = expand(written, esc, &lookup).map_err(|m| bad(file, fi, m))?;
        if image.is_empty() {
            return Err(bad(
                file,
                fi,
                format!("the image name {written:?} is empty once expanded"),
            ));
        }
        let stage_platform = match p {
            None => None,
            Some(p) => {
                let p = expand(p, esc, &lookup).map_err(|m| bad(file, fi, m))?;
                let p = Platform::parse(&p)
                    .map_err(|m| bad(file, fi, format!("--platform={p}: {m}")))?;
                // The platform being built anyway: nothing to pin.
                (o.platforms.len() > 1 || p != platform).then_some(p)
            }
        };
        // Only an earlier stage can be a base; a named context wins over
        // both a stage and an image of that name.
        let named = named_context(o.contexts, &image);
        let parent = stage_named(&heads, &image).filter(|_| named.is_none());
        let base = if let Some((n, c)) = named {
            context_base(n, c)
        } else if image.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(pi) = parent {
            Base::Image(heads[pi].id.clone())
        } else if image.starts_with("oci:") {
            crate::spec::parse_base(&image).map_err(|m| bad(file, fi, m))?
        } else {
            Base::Ref(image.clone())
        };
        // A stage named like a context is replaced by it.
        let (base, body, parent) = match alias.as_deref().and_then(|a| named_context(o.contexts, a))
        {
            Some((n, c)) => (context_base(n, c), Vec::new(), None),
            None => (base, body, parent),
        };
        heads.push(Head {
            id: alias.clone().unwrap_or_else(|| format!("stage-{n}")),
            alias: alias.clone(),
            parent: parent.filter(|_| matches!(base, Base::Image(_))),
            base,
            loc: loc(file, fi, "FROM"),
            platform: stage_platform,
            body,
            deps: Vec::new(),
        });
    }
    // What each stage reads from the others, in every stage (as BuildKit).
    for si in 0..heads.len() {
        let mut deps = Vec::new();
        for i in &heads[si].body {
            match &i.inst {
                Inst::Copy { from: Some(f), .. } => {
                    deps.extend(from_stage(file, esc, i, f, &heads)?);
                }
                Inst::Run { mounts, .. } => {
                    deps.extend(
                        mounts
                            .iter()
                            .filter_map(|m| m.get("from"))
                            .filter_map(|f| stage_named(&heads, f)),
                    );
                }
                _ => {}
            }
        }
        heads[si].deps = deps;
    }
    let target = match o.target {
        None => heads.len() - 1,
        Some(t) => stage_named(&heads, t).ok_or_else(|| {
            Error::Usage(format!(
                "--target {t}: no stage is named so in {}",
                file.display()
            ))
        })?,
    };
    // The stages the target reaches: only these are translated.
    let mut reached = vec![false; heads.len()];
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if !std::mem::replace(&mut reached[s], true) {
            todo.extend(heads[s].parent);
            todo.extend(heads[s].deps.iter().copied());
        }
    }

    let cx = Cx {
        o,
        file,
        esc,
        rules,
        build_args,
        global,
        heads,
    };
    // Images copied from come first; then the stages in file order.
    let mut implicit: Vec<Stage> = Vec::new();
    let mut built: Vec<(Stage, bool)> = Vec::new();
    let mut scopes: Vec<Option<Scope>> = vec![None; cx.heads.len()];
    for si in (0..cx.heads.len()).filter(|&s| reached[s]) {
        let h = &cx.heads[si];
        let mut scope = match h.parent {
            Some(p) => scopes[p]
                .clone()
                .expect("a stage's parent is translated first"),
            None => Scope::new(),
        };
        let layers = stage_layers(&cx, si, &mut scope, &mut implicit)?;
        scopes[si] = Some(scope);
        built.push((
            Stage {
                id: h.id.clone(),
                base: h.base.clone(),
                loc: h.loc.clone(),
                layers,
                platform: h.platform.clone(),
            },
            si == target,
        ));
    }
    let images: Vec<ImageDef> = implicit
        .into_iter()
        .map(|s| (s, false))
        .chain(built)
        .map(|(s, is_target)| ImageDef {
            id: s.id.clone(),
            loc: s.loc.clone(),
            base: s.base.clone(),
            base_loc: s.loc.clone(),
            python: None,
            registry: None,
            name: if is_target {
                o.name.clone()
            } else {
                s.id.clone()
            },
            tag: if is_target { o.tag.clone() } else { Tag::Auto },
            platforms: match &s.platform {
                Some(p) => vec![p.clone()],
                None => o.platforms.clone(),
            },
            venv: "/opt/venv".into(),
            uv: false,
            uv_loc: s.loc.clone(),
            layers: s.layers,
            context: None,
        })
        .collect();
    // `<Dockerfile>.dockerignore` beside the Dockerfile wins over the
    // context's .dockerignore, as with docker.
    let mut images = match own_ignore(file) {
        None => images,
        Some(p) => {
            let p = std::fs::canonicalize(&p).unwrap_or(p);
            images
                .into_iter()
                .map(|mut img: ImageDef| {
                    img.layers.insert(
                        0,
                        Layer {
                            loc: img.loc.clone(),
                            kind: LayerKind::Dockerignore(p.display().to_string()),
                        },
                    );
                    img
                })
                .collect()
        }
    };
    local_context_stages(o, file, &mut images);
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Definition {
        file: file.to_path_buf(),
        dir,
        context: o.context.to_path_buf(),
        images,
        cache: Default::default(),
        sbom: None,
        provenance: None,
    })
}

/// The stage named so (stage names are not case sensitive).
fn stage_named(heads: &[Head], name: &str) -> Option<usize> {
    heads.iter().position(|h| {
        h.alias
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The stage `COPY --from=NAME|INDEX` reads, or `None` for an image. As
/// with BuildKit, the value takes no variables and an index must name a
/// stage (counted from 0).
fn from_stage(
    file: &Path,
    esc: char,
    i: &Instruction,
    f: &str,
    heads: &[Head],
) -> Result<Option<usize>> {
    if expand(f, esc, &|_| None).ok().as_deref() != Some(f) {
        return Err(bad(
            file,
            i,
            format!(
                "--from={f}: variables are not expanded in --from; name a stage whose FROM uses a global ARG instead"
            ),
        ));
    }
    if let Ok(n) = f.parse::<usize>() {
        return match n < heads.len() {
            true => Ok(Some(n)),
            false => Err(bad(
                file,
                i,
                format!(
                    "--from={n}: the file has {} stages, counted from 0",
                    heads.len()
                ),
            )),
        };
    }
    Ok(stage_named(heads, f))
}

/// The layers of stage `si`, its instructions translated with `scope`
/// (which ends as the stage leaves it).
fn stage_layers(
    cx: &Cx,
    si: usize,
    scope: &mut Scope,
    implicit: &mut Vec<Stage>,
) -> Result<Vec<Layer>> {
    let (file, esc) = (cx.file, cx.esc);
    let mut layers: Vec<Layer> = Vec::new();
    // `FROM <a stage with ONBUILD>`: its triggers run first, as if written
    // right after FROM, and the child's config does not keep them.
    let h = &cx.heads[si];
    // An image's triggers, read from its config: only for the stages the
    // target reaches (this function is called for those alone).
    let image_triggers: Vec<Instruction> = match (h.parent, &h.base, cx.o.base_triggers) {
        (None, Base::Ref(_) | Base::Layout { .. }, Some(lookup)) => {
            let platform = h
                .platform
                .clone()
                .unwrap_or_else(|| cx.o.platforms[0].clone());
            let texts = lookup(&h.base, &platform)?;
            let mut parsed = Vec::new();
            for (n, t) in texts.iter().enumerate() {
                let mut df = parse(&format!("{t}\n")).map_err(|e| Error::InputAt {
                    loc: Box::new(h.loc.clone()),
                    message: format!(
                        "the base image's ONBUILD trigger {} ({t:?}): {}",
                        n + 1,
                        e.message
                    ),
                })?;
                for mut i in df.instructions.drain(..) {
                    if matches!(i.inst, Inst::From { .. } | Inst::Onbuild(_)) {
                        return Err(Error::InputAt {
                            loc: Box::new(h.loc.clone()),
                            message: format!(
                                "the base image's ONBUILD trigger {t:?}: {} is not allowed in ONBUILD",
                                i.keyword
                            ),
                        });
                    }
                    // Placed at the FROM line, where it runs.
                    i.line = h.loc.line;
                    i.end_line = h.loc.line;
                    parsed.push(i);
                }
            }
            parsed
        }
        _ => Vec::new(),
    };
    let triggers: Vec<&Instruction> = match h.parent {
        Some(p) => cx.heads[p]
            .body
            .iter()
            .filter_map(|i| match &i.inst {
                Inst::Onbuild(inner) => Some(inner.as_ref()),
                _ => None,
            })
            .collect(),
        None => image_triggers.iter().collect(),
    };
    if !triggers.is_empty() {
        layers.push(Layer {
            loc: h.loc.clone(),
            kind: LayerKind::DockerConfig {
                field: "OnBuild".into(),
                value: serde_json::Value::Null,
            },
        });
    }
    for &i in triggers.iter().chain(&h.body) {
        let at = |field: &str, kind: LayerKind| Layer {
            loc: loc(file, i, field),
            kind,
        };
        let ex = |s: &str| -> Result<String> {
            expand(s, esc, &|k| scope.lookup(k)).map_err(|m| bad(file, i, m))
        };
        match &i.inst {
            Inst::From { .. } => unreachable!("FROM starts a stage"),
            Inst::Arg(list) => {
                // In order: a default sees the ARGs before it.
                for (k, v) in list {
                    let value = match (cx.build_args.get(k), v) {
                        (Some(b), _) => Some(b.clone()),
                        (None, Some(d)) => Some(
                            expand(d, esc, &|n| scope.lookup(n)).map_err(|m| bad(file, i, m))?,
                        ),
                        (None, None) => cx.global.get(k).cloned(),
                    };
                    match value {
                        Some(v) => scope.set_arg(k, v),
                        None => scope.declare_unset(k),
                    }
                }
            }
            Inst::Env(pairs) => {
                // Every value sees the variables as they were before this ENV.
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((k.clone(), ex(v)?));
                }
                for (k, v) in &out {
                    scope.set_env(k, v.clone());
                }
                layers.push(at("ENV", LayerKind::Env(out)));
            }
            Inst::Label(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((ex(k)?, ex(v)?));
                }
                layers.push(at("LABEL", LayerKind::Labels(out)));
            }
            Inst::Workdir(w) => {
                // As written: the planner joins a relative one to the
                // image's workdir, and keeps an absolute one as is.
                let w = ex(w)?;
                scope.workdir = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("/{}", resolve_dst(&scope.workdir, &w))
                };
                layers.push(at("WORKDIR", LayerKind::Workdir(w)));
            }
            Inst::User(u) => layers.push(at("USER", LayerKind::User(ex(u)?))),
            Inst::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    let p = ex(p)?;
                    let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    out.push(format!("{port}/{}", proto.to_ascii_lowercase()));
                }
                layers.push(at("EXPOSE", LayerKind::Expose(out)));
            }
            Inst::Cmd(c) | Inst::Entrypoint(c) => {
                let v = match c {
                    Cmd::Exec(v) => v.clone(),
                    Cmd::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
                };
                let kind = if i.keyword == "CMD" {
                    LayerKind::Cmd(v)
                } else {
                    LayerKind::Entrypoint(v)
                };
                layers.push(at(&i.keyword, kind));
            }
            Inst::Run {
                cmd,
                mounts,
                network,
                security,
                heredocs,
            } => {
                let insecure = match security.as_deref() {
                    None | Some("sandbox") => false,
                    Some("insecure") => true,
                    Some(other) => {
                        return Err(bad(
                            file,
                            i,
                            format!("--security={other}: expected sandbox or insecure"),
                        ));
                    }
                };
                let mut script = match cmd {
                    Cmd::Shell(s) if !heredocs.is_empty() => heredoc_script(s, heredocs),
                    Cmd::Shell(s) => s.clone(),
                    Cmd::Exec(v) => v
                        .iter()
                        .map(|a| shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                // Build args reach the command as variables, not the image.
                let exports = scope.exports();
                if !exports.is_empty() {
                    script = format!("export {}; {script}", exports.join(" "));
                }
                let mut run = RunOptions {
                    network: network.as_deref() != Some("none"),
                    // As BuildKit: only a declared ARG passes it.
                    no_source_date_epoch: true,
                    insecure,
                    ..Default::default()
                };
                for m in mounts {
                    let from = match m.get("from") {
                        Some(f) if m.kind == "bind" || m.kind == "cache" => {
                            Some(from_image(cx, si, i, f, "RUN --mount", implicit)?)
                        }
                        _ => None,
                    };
                    mount_option(file, i, m, from, &scope.workdir, &mut run)?;
                }
                layers.push(at(
                    "RUN",
                    LayerKind::Commands {
                        commands: vec![script],
                        group: false,
                        run,
                    },
                ));
            }
            Inst::Copy { .. } => copy_instruction(cx, si, i, scope, implicit, &mut layers)?,
            Inst::Add { .. } => add_instruction(cx, i, scope, &mut layers)?,
            Inst::Maintainer(m) => layers.push(at(
                "MAINTAINER",
                LayerKind::Labels(vec![("maintainer".into(), m.clone())]),
            )),
            Inst::Volume(paths) => {
                let mut v = Vec::new();
                for p in paths {
                    v.push(serde_json::json!(ex(p)?));
                }
                layers.push(at(
                    "VOLUME",
                    LayerKind::DockerConfig {
                        field: "Volumes".into(),
                        value: serde_json::Value::Array(v),
                    },
                ));
            }
            Inst::StopSignal(sig) => layers.push(at(
                "STOPSIGNAL",
                LayerKind::DockerConfig {
                    field: "StopSignal".into(),
                    value: serde_json::json!(ex(sig)?),
                },
            )),
            // RUN steps after it use this shell (read from the config).
            Inst::Shell(sh) => layers.push(at(
                "SHELL",
                LayerKind::DockerConfig {
                    field: "Shell".into(),
                    value: serde_json::json!(sh),
                },
            )),
            Inst::Healthcheck(h) => layers.push(at(
                "HEALTHCHECK",
                LayerKind::DockerConfig {
                    field: "Healthcheck".into(),
                    value: healthcheck_value(file, i, h.as_ref())?,
                },
            )),
            Inst::Onbuild(inner) => layers.push(at(
                "ONBUILD",
                LayerKind::DockerConfig {
                    field: "OnBuild".into(),
                    // The instruction as written after ONBUILD.
                    value: serde_json::json!(
                        inner
                            .text
                            .trim()
                            .split_once(char::is_whitespace)
                            .map(|(_, rest)| rest.trim())
                            .unwrap_or("")
                    ),
                },
            )),
        }
    }
    Ok(layers)
}

/// The layers of one `COPY` instruction.
fn copy_instruction(
    cx: &Cx,
    si: usize,
    i: &Instruction,
    scope: &mut Scope,
    implicit: &mut Vec<Stage>,
    layers: &mut Vec<Layer>,
) -> Result<()> {
    let (o, file, esc) = (cx.o, cx.file, cx.esc);
    let at = |field: &str, kind: LayerKind| Layer {
        loc: loc(file, i, field),
        kind,
    };
    let ex = |s: &str| -> Result<String> {
        expand(s, esc, &|k| scope.lookup(k)).map_err(|m| bad(file, i, m))
    };
    let Inst::Copy {
        srcs,
        dst,
        from,
        chown,
        chmod,
        heredocs,
        parents,
        exclude,
        ..
    } = &i.inst
    else {
        unreachable!("COPY instructions only");
    };
    let mut exclude_pats = Vec::new();
    for e in exclude {
        let e = ex(e)?;
        IgnoreRules::from_patterns([&e])
            .map_err(|m| bad(file, i, format!("--exclude={e}: {m}")))?;
        exclude_pats.push(e);
    }
    if !heredocs.is_empty() {
        // `COPY <<EOF /path`: each heredoc is a file (named
        // after its delimiter under a destination folder).
        if from.is_some() {
            return Err(bad(file, i, "--from cannot copy heredocs"));
        }
        let (owner, mode, owner_name) =
            owner_and_mode(file, i, chown.as_deref(), chmod.as_deref(), &ex)?;
        let dst = ex(dst)?;
        if heredocs.len() > 1 && !dst.ends_with('/') {
            return Err(bad(
                file,
                i,
                format!("with several heredocs the destination must end with /: {dst:?}"),
            ));
        }
        for h in heredocs {
            let content = if h.expand {
                ex(&h.content)?
            } else {
                h.content.clone()
            };
            let target = if dst.ends_with('/') {
                format!("{dst}{}", h.name)
            } else {
                dst.clone()
            };
            layers.push(at(
                "COPY",
                named(
                    LayerKind::Inline {
                        content,
                        dst: target,
                        chown: owner,
                        chmod: mode,
                    },
                    &owner_name,
                ),
            ));
        }
        return Ok(());
    }
    if let Some(f) = from {
        let image = from_image(cx, si, i, f, "COPY --from", implicit)?;
        let (owner, chmod, owner_name) =
            owner_and_mode(file, i, chown.as_deref(), chmod.as_deref(), &ex)?;
        let mut abs_srcs = Vec::new();
        for s in srcs {
            let s = ex(s)?;
            if has_wildcards(&s) {
                let comp = s.rsplit('/').next().unwrap_or_default();
                ComponentGlob::new(comp).map_err(|e| bad(file, i, format!("{s:?}: {e}")))?;
            }
            abs_srcs.push(if s.starts_with('/') {
                s
            } else {
                format!("/{s}")
            });
        }
        let dst = ex(dst)?;
        if abs_srcs.len() > 1 && !dst.ends_with('/') && !*parents {
            return Err(bad(
                file,
                i,
                format!("with several sources the destination must end with /: {dst:?}"),
            ));
        }
        layers.push(at(
            "COPY",
            named(
                LayerKind::CopyFrom {
                    image,
                    srcs: abs_srcs,
                    dst,
                    chown: owner,
                    chmod,
                    exclude: exclude_pats,
                    parents: *parents,
                },
                &owner_name,
            ),
        ));
        return Ok(());
    }
    let kinds = copy_layers(
        o,
        file,
        i,
        srcs,
        &ex(dst)?,
        chown.as_deref(),
        chmod.as_deref(),
        &ex,
        &cx.rules,
        &Filter {
            exclude: &exclude_pats,
            parents: *parents,
        },
    )?;
    for k in kinds {
        layers.push(at("COPY", k));
    }
    Ok(())
}

/// The image `--from=F` of COPY or RUN --mount reads: a build context of
/// that name (`--build-context`), an earlier stage, or an image (a stage of
/// its own with no instructions, made once).
fn from_image(
    cx: &Cx,
    si: usize,
    i: &Instruction,
    f: &str,
    what: &str,
    implicit: &mut Vec<Stage>,
) -> Result<String> {
    let (file, esc) = (cx.file, cx.esc);
    if f.parse::<usize>().is_err() {
        match named_context(cx.o.contexts, f) {
            Some((n, NamedContext::Local(_))) => return Ok(context_stage_id(n)),
            Some((_, NamedContext::Image(b))) => {
                return Ok(implicit_stage(
                    implicit,
                    b.clone(),
                    loc(file, i, &i.keyword),
                ));
            }
            None => {}
        }
    }
    Ok(match from_stage(file, esc, i, f, &cx.heads)? {
        Some(d) if d >= si => {
            return Err(bad(
                file,
                i,
                format!(
                    "--from={f}: stage {} is not before this one; {what} reads an earlier stage",
                    cx.heads[d].id
                ),
            ));
        }
        Some(d) => cx.heads[d].id.clone(),
        None => {
            let base = if f.starts_with("oci:") {
                crate::spec::parse_base(f).map_err(|m| bad(file, i, m))?
            } else if f.eq_ignore_ascii_case("scratch") {
                return Err(bad(file, i, "--from=scratch has no files"));
            } else {
                crate::registry::Reference::parse(f).map_err(|e| {
                    bad(
                        file,
                        i,
                        format!(
                            "--from={f}: no stage is named so and it is no image reference: {e}"
                        ),
                    )
                })?;
                Base::Ref(f.to_string())
            };
            implicit_stage(implicit, base, loc(file, i, &i.keyword))
        }
    })
}

/// The stage of no instructions on `base` that `COPY --from` of an image
/// reads (one per image).
fn implicit_stage(implicit: &mut Vec<Stage>, base: Base, loc: Location) -> String {
    if let Some(s) = implicit.iter().find(|s| s.base == base) {
        return s.id.clone();
    }
    let id = format!("copy-from-{}", implicit.len());
    implicit.push(Stage {
        id: id.clone(),
        base,
        loc,
        layers: Vec::new(),
        platform: None,
    });
    id
}

/// The stages of the local folder contexts the images read: scratch with
/// the folder's files (under its own `.dockerignore`), first in the list.
fn local_context_stages(o: &FrontendOptions, file: &Path, images: &mut Vec<ImageDef>) {
    let used = |id: &str| {
        images.iter().any(|img| {
            matches!(&img.base, Base::Image(b) if b == id)
                || img.layers.iter().any(|l| match l.kind.inner() {
                    LayerKind::CopyFrom { image, .. } => image == id,
                    LayerKind::Commands { run, .. } => {
                        run.from_mounts.iter().any(|m| m.image == id)
                    }
                    _ => false,
                })
        })
    };
    let mut stages = Vec::new();
    for (name, c) in o.contexts {
        let NamedContext::Local(dir) = c else {
            continue;
        };
        let id = context_stage_id(name);
        if !used(&id) {
            continue;
        }
        let at = Location {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            field: format!("--build-context {name}"),
        };
        stages.push(ImageDef {
            id: id.clone(),
            loc: at.clone(),
            base: Base::Scratch,
            base_loc: at.clone(),
            python: None,
            registry: None,
            name: id,
            tag: Tag::Auto,
            platforms: o.platforms.clone(),
            venv: "/opt/venv".into(),
            uv: false,
            uv_loc: at.clone(),
            layers: vec![Layer {
                loc: at,
                kind: LayerKind::SourceFolder {
                    src: ".".into(),
                    dst: "/".into(),
                    copy_contents_only: true,
                    chown: None,
                    chmod: None,
                    exclude: Vec::new(),
                },
            }],
            context: Some(dir.clone()),
        });
    }
    images.splice(0..0, stages);
}

/// The layers of one `ADD` instruction.
fn add_instruction(
    cx: &Cx,
    i: &Instruction,
    scope: &mut Scope,
    layers: &mut Vec<Layer>,
) -> Result<()> {
    let (o, file, esc) = (cx.o, cx.file, cx.esc);
    let at = |field: &str, kind: LayerKind| Layer {
        loc: loc(file, i, field),
        kind,
    };
    let ex = |s: &str| -> Result<String> {
        expand(s, esc, &|k| scope.lookup(k)).map_err(|m| bad(file, i, m))
    };
    let Inst::Add {
        srcs,
        dst,
        chown,
        chmod,
        checksum,
        keep_git_dir,
        heredocs,
        ..
    } = &i.inst
    else {
        unreachable!("ADD instructions only");
    };
    if !heredocs.is_empty() {
        return Err(unsupported(file, i, "ADD with heredocs"));
    }
    let dst = ex(dst)?;
    let (owner, mode, owner_name) =
        owner_and_mode(file, i, chown.as_deref(), chmod.as_deref(), &ex)?;
    let mut plain: Vec<String> = Vec::new();
    let mut kinds: Vec<LayerKind> = Vec::new();
    let several = srcs.len() > 1;
    for raw in srcs {
        let s = ex(raw)?;
        let lower = s.to_ascii_lowercase();
        if crate::net::git::is_git_source(&s) {
            let sum = match checksum {
                Some(c) => Some(ex(c)?),
                None => None,
            };
            let k = git_layer(
                file,
                i,
                &s,
                &dst,
                several,
                sum,
                (owner, mode),
                *keep_git_dir,
            )?;
            kinds.push(named(k, &owner_name));
            continue;
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            if several && !dst.ends_with('/') {
                return Err(bad(
                    file,
                    i,
                    format!("with several sources the destination must end with /: {dst:?}"),
                ));
            }
            kinds.push(named(
                LayerKind::AddUrl {
                    url: s.clone(),
                    dst: dst.clone(),
                    chown: owner,
                    chmod: mode,
                    checksum: match checksum {
                        Some(c) => Some(ex(c)?),
                        None => None,
                    },
                },
                &owner_name,
            ));
            continue;
        }
        if lower.contains("://") {
            return Err(bad(
                file,
                i,
                format!("{s}: only http and https URLs can be added"),
            ));
        }
        if checksum.is_some() {
            return Err(bad(file, i, "--checksum applies to URLs only"));
        }
        // A local tar archive (by content, as docker) is unpacked.
        let rel = s
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        let path = o.context.join(&rel);
        if !has_wildcards(&rel)
            && !rel.split('/').any(|p| p == "..")
            && path.is_file()
            && crate::layer::archive::is_archive(&path)
        {
            if mode.is_some() {
                return Err(bad(
                    file,
                    i,
                    "--chmod does not apply to an unpacked archive",
                ));
            }
            kinds.push(named(
                LayerKind::AddArchive {
                    src: rel,
                    dst: dst.clone(),
                    chown: owner,
                },
                &owner_name,
            ));
            continue;
        }
        plain.push(raw.clone());
    }
    if !plain.is_empty() {
        kinds.extend(copy_layers(
            o,
            file,
            i,
            &plain,
            &dst,
            chown.as_deref(),
            chmod.as_deref(),
            &ex,
            &cx.rules,
            &Filter {
                exclude: &[],
                parents: false,
            },
        )?);
    }
    for k in kinds {
        layers.push(at("ADD", k));
    }
    Ok(())
}

/// `ADD <git repository>`: the source and `--checksum` (already
/// expanded) are checked here; the ref is resolved when the build is
/// planned.
#[allow(clippy::too_many_arguments)]
fn git_layer(
    file: &Path,
    i: &Instruction,
    src: &str,
    dst: &str,
    several: bool,
    checksum: Option<String>,
    (chown, chmod): (Option<Owner>, Option<u32>),
    keep_git_dir: bool,
) -> Result<LayerKind> {
    if several && !dst.ends_with('/') {
        return Err(bad(
            file,
            i,
            format!("with several sources the destination must end with /: {dst:?}"),
        ));
    }
    crate::net::git::GitSource::parse(src).map_err(|m| bad(file, i, m))?;
    if let Some(c) = &checksum {
        crate::net::git::check_checksum(c)
            .map_err(|m| bad(file, i, format!("--checksum={c}: {m} for a git source")))?;
    }
    Ok(LayerKind::AddGit {
        source: src.to_string(),
        dst: dst.to_string(),
        chown,
        chmod,
        checksum,
        keep_git_dir,
    })
}

/// HEALTHCHECK as the config's Healthcheck (durations in nanoseconds).
fn healthcheck_value(
    file: &Path,
    i: &Instruction,
    h: Option<&Healthcheck>,
) -> Result<serde_json::Value> {
    let Some(h) = h else {
        return Ok(serde_json::json!({"Test": ["NONE"]}));
    };
    let test = match &h.cmd {
        Cmd::Exec(v) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            t
        }
        Cmd::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let mut obj = serde_json::Map::new();
    obj.insert("Test".into(), serde_json::json!(test));
    for (k, v) in &h.options {
        let (name, val) = match k.as_str() {
            "retries" => (
                "Retries",
                serde_json::json!(v.parse::<u64>().map_err(|_| bad(
                    file,
                    i,
                    format!("--retries={v}")
                ))?),
            ),
            other => {
                let ns = go_duration_ns(v).ok_or_else(|| {
                    bad(
                        file,
                        i,
                        format!("--{other}={v}: expected a duration like 30s or 1m30s"),
                    )
                })?;
                let name = match other {
                    "interval" => "Interval",
                    "timeout" => "Timeout",
                    "start-period" => "StartPeriod",
                    _ => "StartInterval",
                };
                (name, serde_json::json!(ns))
            }
        };
        obj.insert(name.into(), val);
    }
    Ok(serde_json::Value::Object(obj))
}

/// `30s`, `1m30s`, `500ms`, `2h` → nanoseconds.
fn go_duration_ns(s: &str) -> Option<u64> {
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Some(total as u64)
}

/// `--chown` and `--chmod` (octal) of COPY/ADD. An owner by name comes
/// back as a placeholder owner plus the name, looked up when the layer is
/// built (see `named`).
fn owner_and_mode(
    file: &Path,
    i: &Instruction,
    chown: Option<&str>,
    chmod: Option<&str>,
    ex: &dyn Fn(&str) -> Result<String>,
) -> Result<(Option<Owner>, Option<u32>, Option<String>)> {
    let mut name = None;
    let owner = match chown {
        None => None,
        Some(c) => {
            let c = ex(c)?;
            if c.is_empty() || c.split(':').count() > 2 || c.split(':').any(str::is_empty) {
                return Err(bad(file, i, format!("--chown={c}: expected USER[:GROUP]")));
            }
            Some(numeric_owner(&c).unwrap_or_else(|| {
                name = Some(c.clone());
                Owner { uid: 0, gid: 0 }
            }))
        }
    };
    let mode = match chmod {
        None => None,
        Some(m) => {
            Some(u32::from_str_radix(m, 8).map_err(|_| bad(file, i, format!("--chmod={m}")))?)
        }
    };
    Ok((owner, mode, name))
}

/// A layer whose owner is a name: resolved in the layers below it.
fn named(kind: LayerKind, name: &Option<String>) -> LayerKind {
    match name {
        None => kind,
        Some(n) => LayerKind::NamedOwner {
            owner: n.clone(),
            inner: Box::new(kind),
        },
    }
}

/// `--chown=UID[:GID]` with numbers (a missing group is the uid).
fn numeric_owner(c: &str) -> Option<Owner> {
    let (u, g) = c.split_once(':').unwrap_or((c, c));
    Some(Owner {
        uid: u.parse().ok()?,
        gid: g.parse().ok()?,
    })
}

/// A word for `/bin/sh -c` that stays one argument.
fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// A RUN --mount as the sandbox's options.
fn mount_option(
    file: &Path,
    i: &Instruction,
    m: &Mount,
    from: Option<String>,
    workdir: &str,
    run: &mut RunOptions,
) -> Result<()> {
    let target = m.get("target").or(m.get("dst")).or(m.get("destination"));
    let abs = |t: &str| {
        if t.starts_with('/') {
            t.to_string()
        } else {
            format!("{}/{t}", workdir.trim_end_matches('/'))
        }
    };
    match m.kind.as_str() {
        "cache" | "bind" if from.is_some() => {
            // A folder of another stage or image: read-only, or the
            // first content of a cache.
            let source = m.get("source").or(m.get("src")).unwrap_or("/");
            let source = format!(
                "/{}",
                source.trim_start_matches("./").trim_start_matches('/')
            );
            if source.split('/').any(|p| p == "..") {
                return Err(bad(
                    file,
                    i,
                    format!("mount source {source:?} leaves the image's root"),
                ));
            }
            let target = abs(target.expect("checked by the parser"));
            let cache = (m.kind == "cache")
                .then(|| m.get("id").map(str::to_string).unwrap_or(target.clone()));
            run.from_mounts.push(crate::spec::FromMount {
                image: from.expect("matched"),
                source,
                target,
                cache,
            });
        }
        "ssh" => {
            let required = match m.get("required") {
                None => false,
                Some(v) => parse_bool(v).ok_or_else(|| {
                    bad(
                        file,
                        i,
                        format!("--mount type=ssh: required={v} is no boolean"),
                    )
                })?,
            };
            run.ssh_mounts.push(crate::spec::SshMount {
                id: m.get("id").unwrap_or("default").to_string(),
                target: match target {
                    Some(t) => abs(t),
                    // BuildKit numbers the ssh mounts of a step from 0.
                    None => format!("/run/buildkit/ssh_agent.{}", run.ssh_mounts.len()),
                },
                required,
            });
        }
        "cache" => {
            run.cache_mounts
                .push(abs(target.expect("checked by the parser")));
        }
        "secret" => {
            let id = m.get("id").map(str::to_string).unwrap_or_else(|| {
                target
                    .and_then(|t| t.rsplit('/').next())
                    .unwrap_or_default()
                    .to_string()
            });
            let mut s = id;
            if let Some(e) = m.get("env") {
                s.push_str(&format!(",env={e}"));
            }
            if let Some(t) = target {
                s.push_str(&format!(",target={}", abs(t)));
            }
            crate::sandbox::SecretMount::parse(&s).map_err(|e| bad(file, i, e))?;
            run.secret_mounts.push(s);
        }
        "bind" => {
            let src = m
                .get("source")
                .or(m.get("src"))
                .unwrap_or(".")
                .trim_start_matches("./")
                .trim_start_matches('/');
            let src = if src.is_empty() { "." } else { src };
            if src.split('/').any(|p| p == "..") {
                return Err(bad(
                    file,
                    i,
                    format!("bind mount source {src:?} leaves the context"),
                ));
            }
            run.bind_mounts.push(format!(
                "{src}:{}",
                abs(target.expect("checked by the parser"))
            ));
        }
        "tmpfs" => run
            .tmpfs_mounts
            .push(abs(target.expect("checked by the parser"))),
        other => return Err(unsupported(file, i, &format!("--mount=type={other}"))),
    }
    Ok(())
}

/// `COPY --exclude` and `--parents`.
struct Filter<'a> {
    /// Patterns of paths left out, relative to each source.
    exclude: &'a [String],
    /// Each source keeps its path under the destination: from the
    /// context's root, or from a `/./` in it.
    parents: bool,
}

/// A source with `--parents`: the part of its path kept under the
/// destination starts after a `/./` in it (BuildKit's pivot), else at the
/// root. Returns (the path without the pivot, the length of the prefix
/// that is not kept).
fn parents_pivot(rel: &str) -> (String, usize) {
    match rel.find("/./") {
        Some(n) => (format!("{}/{}", &rel[..n], &rel[n + 3..]), n + 1),
        None => (rel.to_string(), 0),
    }
}

/// `dst` joined with a relative path kept by `--parents`.
fn join_dst(dst: &str, kept: &str) -> String {
    format!("{}/{kept}", dst.trim_end_matches('/'))
}

/// A mount option's boolean, as BuildKit reads it (Go's ParseBool).
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// COPY/ADD of context files: a folder's contents or a file, at `dst`.
#[allow(clippy::too_many_arguments)]
fn copy_layers(
    o: &FrontendOptions,
    file: &Path,
    i: &Instruction,
    srcs: &[String],
    dst: &str,
    chown: Option<&str>,
    chmod: Option<&str>,
    ex: &dyn Fn(&str) -> Result<String>,
    rules: &IgnoreRules,
    filter: &Filter,
) -> Result<Vec<LayerKind>> {
    let (owner, chmod, owner_name) = owner_and_mode(file, i, chown, chmod, ex)?;
    let excluded = IgnoreRules::from_patterns(filter.exclude)
        .map_err(|m| bad(file, i, format!("--exclude: {m}")))?;
    if srcs.len() > 1 && !dst.ends_with('/') && !filter.parents {
        return Err(bad(
            file,
            i,
            format!("with several sources the destination must end with /: {dst:?}"),
        ));
    }
    // (path in the context, the part of it kept under dst by --parents).
    let mut rels: Vec<(String, Option<String>)> = Vec::new();
    for s in srcs {
        let s = ex(s)?;
        let rel = s.trim_start_matches("./").trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        if rel.split('/').any(|p| p == "..") {
            return Err(bad(file, i, format!("source {s:?} leaves the context")));
        }
        let (rel, cut) = match filter.parents {
            true => parents_pivot(rel),
            false => (rel.to_string(), 0),
        };
        let rel = rel.as_str();
        let kept = |r: &str| filter.parents.then(|| r[cut.min(r.len())..].to_string());
        if !has_wildcards(rel) {
            rels.push((rel.to_string(), kept(rel)));
            continue;
        }
        // Names in the context that .dockerignore keeps, as Docker matches.
        let list = |dir: &str| -> Option<Vec<String>> {
            let rd = std::fs::read_dir(o.context.join(dir)).ok()?;
            Some(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| {
                        let r = if dir.is_empty() {
                            n.clone()
                        } else {
                            format!("{dir}/{n}")
                        };
                        !rules.is_excluded(&r)
                    })
                    .collect(),
            )
        };
        let found = expand_glob(rel, &list).map_err(|m| bad(file, i, m))?;
        if found.is_empty() {
            return Err(Error::InputAt {
                loc: Box::new(loc(file, i, &i.keyword)),
                message: format!("{s:?} matches no file in the context"),
            });
        }
        rels.extend(found.into_iter().map(|f| {
            let k = kept(&f);
            (f, k)
        }));
    }
    if rels.len() > 1 && !dst.ends_with('/') && !filter.parents {
        return Err(bad(
            file,
            i,
            format!("the sources name several files, so the destination must end with /: {dst:?}"),
        ));
    }
    let mut out = Vec::new();
    for (rel, kept) in &rels {
        let rel = rel.as_str();
        let path = o.context.join(rel);
        let meta = std::fs::metadata(&path).map_err(|e| Error::InputAt {
            loc: Box::new(loc(file, i, &i.keyword)),
            message: format!("{}: {e}", path.display()),
        })?;
        let here = match kept.as_deref() {
            Some(k) if !k.is_empty() && k != "." => join_dst(dst, k),
            Some(_) => format!("{}/", dst.trim_end_matches('/')),
            None => dst.to_string(),
        };
        if meta.is_dir() {
            out.push(LayerKind::SourceFolder {
                src: rel.to_string(),
                dst: here,
                copy_contents_only: true,
                chown: owner,
                chmod,
                exclude: filter.exclude.to_vec(),
            });
        } else {
            // A file is matched by its name (the path relative to itself).
            let name = rel.rsplit('/').next().unwrap_or(rel);
            if !excluded.is_empty() && excluded.is_excluded(name) {
                continue;
            }
            out.push(LayerKind::SourceFile {
                src: rel.to_string(),
                dst: here,
                chown: owner,
                chmod,
            });
        }
    }
    Ok(out.into_iter().map(|k| named(k, &owner_name)).collect())
}

/// A RUN with heredocs as one shell script. `RUN <<EOF` alone runs the
/// body as the script (a `#!` body is written to a file and executed, as
/// BuildKit does); otherwise the command line is followed by the bodies, so
/// the shell feeds them to the command as here-documents.
fn heredoc_script(cmd: &str, heredocs: &[super::parse::Heredoc]) -> String {
    let only = heredocs.len() == 1 && {
        let c = cmd.trim();
        let h = &heredocs[0];
        let marker = c
            .trim_start_matches("<<")
            .trim_start_matches('-')
            .trim_matches(|ch| ch == '"' || ch == '\'');
        c.starts_with("<<") && marker == h.name
    };
    if only {
        let body = &heredocs[0].content;
        if body.starts_with("#!") {
            let delim = unused_delimiter(body);
            return format!(
                "f=$(mktemp) && cat > \"$f\" <<'{delim}' && chmod 0700 \"$f\" && \"$f\"; rc=$?; rm -f \"$f\"; exit $rc\n{body}{delim}\n"
            );
        }
        return body.clone();
    }
    let mut out = cmd.to_string();
    out.push('\n');
    for h in heredocs {
        out.push_str(&h.content);
        out.push_str(&h.name);
        out.push('\n');
    }
    out
}

/// A here-document delimiter that is no line of `body`.
fn unused_delimiter(body: &str) -> String {
    let mut d = String::from("IMGBUILD_EOF");
    while body.lines().any(|l| l == d) {
        d.push('_');
    }
    d
}

/// `<Dockerfile>.dockerignore` beside the Dockerfile, if there is one.
fn own_ignore(file: &Path) -> Option<PathBuf> {
    let n = file.file_name()?;
    let mut n = n.to_os_string();
    n.push(".dockerignore");
    Some(file.with_file_name(n)).filter(|p| p.is_file())
}

/// The ignore rules COPY and ADD sources are matched under.
fn context_ignore_rules(file: &Path, context: &Path) -> Result<IgnoreRules> {
    let p = own_ignore(file).unwrap_or_else(|| context.join(".dockerignore"));
    if !p.is_file() {
        return Ok(IgnoreRules::default());
    }
    let text = crate::util::fs::read_description(&p)
        .map_err(|e| Error::input(&p, format!("cannot read: {e}")))?;
    IgnoreRules::parse(&text).map_err(|e| Error::input(&p, e.to_string()))
}

/// Replaces every `base = { dockerfile = … }` of a definition by the
/// Dockerfile's stages (the ones its target needs), placed before the
/// image and named `<image>-base` (the target) and `<image>-base-<stage>`.
/// They read files from the Dockerfile's context: its `context`, else the
/// Dockerfile's folder, both relative to the definition's folder.
pub fn expand_bases(def: &mut Definition) -> Result<()> {
    let mut i = 0;
    while i < def.images.len() {
        let Base::Dockerfile {
            file,
            context,
            target,
            build_args,
        } = def.images[i].base.clone()
        else {
            i += 1;
            continue;
        };
        let img = &def.images[i];
        let file = def.dir.join(file);
        let context = match context {
            Some(c) => def.dir.join(c),
            None => file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| def.dir.clone()),
        };
        if !file.is_file() {
            return Err(Error::Definition {
                loc: Box::new(img.base_loc.clone()),
                message: format!("no Dockerfile at {}", file.display()),
            });
        }
        if !context.is_dir() {
            return Err(Error::Definition {
                loc: Box::new(img.base_loc.clone()),
                message: format!(
                    "the Dockerfile's context {} is no folder",
                    context.display()
                ),
            });
        }
        let prefix = format!("{}-base", img.id);
        let sub = load(&FrontendOptions {
            dockerfile: &file,
            context: &context,
            build_args: &build_args,
            target: target.as_deref(),
            platforms: img.platforms.clone(),
            name: prefix.clone(),
            tag: Tag::Auto,
            contexts: &BTreeMap::new(),
            base_triggers: None,
        })?;
        let n = sub.images.len();
        let target_id = sub.images.last().expect("at least the target").id.clone();
        let rename = |id: &str| {
            if id == target_id {
                prefix.clone()
            } else {
                format!("{prefix}-{id}")
            }
        };
        if let Some(clash) = sub
            .images
            .iter()
            .map(|s| rename(&s.id))
            .find(|id| def.images.iter().any(|x| &x.id == id))
        {
            return Err(Error::Definition {
                loc: Box::new(img.base_loc.clone()),
                message: format!(
                    "the Dockerfile's stage would be named {clash:?}, which an image of this file already is"
                ),
            });
        }
        let stages: Vec<ImageDef> = sub
            .images
            .into_iter()
            .map(|mut s| {
                s.id = rename(&s.id);
                s.name = s.id.clone();
                s.context = Some(context.clone());
                if let Base::Image(b) = &s.base {
                    s.base = Base::Image(rename(b));
                }
                for l in s.layers.iter_mut() {
                    let kind = match &mut l.kind {
                        LayerKind::NamedOwner { inner, .. } => inner.as_mut(),
                        k => k,
                    };
                    if let LayerKind::CopyFrom { image, .. } = kind {
                        *image = rename(image);
                    }
                }
                s
            })
            .collect();
        def.images[i].base = Base::Image(prefix);
        def.images.splice(i..i, stages);
        i += n + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

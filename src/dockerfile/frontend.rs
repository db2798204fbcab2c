//! A Dockerfile as a definition: each stage the target needs becomes an
//! image of the same model definition files use (FROM → base, COPY/ADD of
//! the context → file layers, RUN → a RUN step, ENV/WORKDIR/USER/LABEL/
//! EXPOSE/CMD/ENTRYPOINT → config), so the same planner, store, sandbox and
//! outputs build it. ARGs (global and per stage, `--build-arg`, the
//! predefined platform ARGs) are expanded here; `$VAR` of the image's
//! environment in ENV values is left for the planner, which knows the
//! base's config.
//!
//! `COPY --from` takes files from an earlier stage, or from an image (a
//! stage of its own, built first); `--chown` by name is looked up in the
//! stage's /etc/passwd and /etc/group when the layer is built; wildcards
//! in sources match like Go's `filepath.Match` (context files under
//! .dockerignore, or the source image's files); `ADD` unpacks a local tar
//! archive (recognised by content) and downloads `http(s)` URLs, checked
//! with `--checksum`; RUN heredocs become the step's script; `FROM
//! --platform` pins a stage to one platform. VOLUME, STOPSIGNAL, SHELL
//! (later RUN steps use it), HEALTHCHECK and ONBUILD set the config.
//! `COPY <<EOF` writes the heredoc as a file. Refused with the
//! instruction's line: ADD of git repositories, `--parents`/`--exclude`,
//! `--mount` `from=`, `--security`.

use super::expand::expand;
use super::parse::{Cmd, Inst, Instruction, Mount, parse};
use crate::error::{Error, Location, Result};
use crate::layer::ignore::{ComponentGlob, IgnoreRules, expand_glob, has_wildcards};
use crate::spec::{Base, Definition, ImageDef, Layer, LayerKind, Owner, Platform, RunOptions, Tag};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct FrontendOptions<'a> {
    pub dockerfile: &'a Path,
    pub context: &'a Path,
    pub build_args: &'a BTreeMap<String, String>,
    /// The stage to build (default: the last).
    pub target: Option<&'a str>,
    pub platforms: Vec<Platform>,
    /// Repository name and tag of the target image.
    pub name: String,
    pub tag: Tag,
}

struct Stage {
    id: String,
    alias: Option<String>,
    base: Base,
    loc: Location,
    layers: Vec<Layer>,
    /// `FROM --platform=P`: built for P only.
    platform: Option<Platform>,
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
    let text = std::fs::read_to_string(file)
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
    let platform = o.platforms.first().cloned().unwrap_or_else(Platform::host);
    let host = Platform::host();
    let mut predefined: BTreeMap<String, String> = BTreeMap::new();
    for (prefix, p) in [("TARGET", &platform), ("BUILD", &host)] {
        predefined.insert(format!("{prefix}PLATFORM"), p.to_string());
        predefined.insert(format!("{prefix}OS"), p.os.clone());
        predefined.insert(format!("{prefix}ARCH"), p.arch.clone());
        predefined.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    // ARGs before the first FROM: visible to FROM lines (and redeclared in stages).
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    // Images named by `COPY --from`: built before every stage.
    let mut implicit: Vec<Stage> = Vec::new();
    // Per stage: declared ARGs and ENVs known so far, the workdir.
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut envs: BTreeMap<String, String> = BTreeMap::new();
    // ARGs the stage declared: RUN steps see them as environment variables.
    let mut declared: Vec<String> = Vec::new();
    let mut workdir = String::from("/");
    for i in &df.instructions {
        let here = |field: &str| loc(file, i, field);
        // Values for expansion: stage ARGs, then ENVs this file set; other
        // names stay as written (the planner expands the image's env).
        let lookup_keep =
            |k: &str, args: &BTreeMap<String, String>, envs: &BTreeMap<String, String>| {
                args.get(k)
                    .or_else(|| envs.get(k))
                    .cloned()
                    .or_else(|| Some(format!("${{{k}}}")))
            };
        let ex = |s: &str| -> Result<String> {
            expand(s, esc, &|k| lookup_keep(k, &args, &envs)).map_err(|m| bad(file, i, m))
        };
        if stages.is_empty() && !matches!(i.inst, Inst::From { .. }) {
            let Inst::Arg(list) = &i.inst else {
                return Err(bad(file, i, "only ARG may come before the first FROM"));
            };
            for (k, v) in list {
                let v = o
                    .build_args
                    .get(k)
                    .cloned()
                    .or(v.clone())
                    .unwrap_or_default();
                let v =
                    expand(&v, esc, &|n| global.get(n).cloned()).map_err(|m| bad(file, i, m))?;
                global.insert(k.clone(), v);
            }
            continue;
        }
        match &i.inst {
            Inst::From {
                image,
                alias,
                platform: p,
            } => {
                let lookup = |k: &str| global.get(k).or(predefined.get(k)).cloned();
                let image = expand(image, esc, &lookup).map_err(|m| bad(file, i, m))?;
                let stage_platform = match p {
                    None => None,
                    Some(p) => {
                        let p = expand(p, esc, &lookup).map_err(|m| bad(file, i, m))?;
                        let p = Platform::parse(&p)
                            .map_err(|m| bad(file, i, format!("--platform={p}: {m}")))?;
                        // The platform being built anyway: nothing to pin.
                        (o.platforms.len() > 1 || p != platform).then_some(p)
                    }
                };
                let base = if image.eq_ignore_ascii_case("scratch") {
                    Base::Scratch
                } else if let Some(s) = stages.iter().find(|s| {
                    s.alias
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&image))
                }) {
                    Base::Image(s.id.clone())
                } else if image.starts_with("oci:") {
                    crate::spec::parse_base(&image).map_err(|m| bad(file, i, m))?
                } else {
                    Base::Ref(image.clone())
                };
                let n = stages.len();
                stages.push(Stage {
                    id: alias.clone().unwrap_or_else(|| format!("stage-{n}")),
                    alias: alias.clone(),
                    base,
                    loc: here("FROM"),
                    layers: Vec::new(),
                    platform: stage_platform,
                });
                args = predefined.clone();
                envs.clear();
                declared.clear();
                workdir = "/".into();
            }
            Inst::Arg(list) => {
                let mut vals = Vec::new();
                for (k, v) in list {
                    let v = match o.build_args.get(k) {
                        Some(b) => b.clone(),
                        None => match v {
                            Some(d) => ex(d)?,
                            None => global.get(k).cloned().unwrap_or_default(),
                        },
                    };
                    vals.push((k.clone(), v));
                    if !declared.contains(k) {
                        declared.push(k.clone());
                    }
                }
                args.extend(vals);
            }
            Inst::Env(pairs) => {
                // Every value sees the variables as they were before this ENV.
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((k.clone(), ex(v)?));
                }
                for (k, v) in &out {
                    envs.insert(k.clone(), v.clone());
                }
                push(&mut stages, here("ENV"), LayerKind::Env(out));
            }
            Inst::Label(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((ex(k)?, ex(v)?));
                }
                push(&mut stages, here("LABEL"), LayerKind::Labels(out));
            }
            Inst::Workdir(w) => {
                let w = ex(w)?;
                workdir = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{w}", workdir.trim_end_matches('/'))
                };
                push(
                    &mut stages,
                    here("WORKDIR"),
                    LayerKind::Workdir(workdir.clone()),
                );
            }
            Inst::User(u) => push(&mut stages, here("USER"), LayerKind::User(ex(u)?)),
            Inst::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    let p = ex(p)?;
                    let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    out.push(format!("{port}/{}", proto.to_ascii_lowercase()));
                }
                push(&mut stages, here("EXPOSE"), LayerKind::Expose(out));
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
                push(&mut stages, here(&i.keyword), kind);
            }
            Inst::Run {
                cmd,
                mounts,
                network,
                security,
                heredocs,
            } => {
                if security.as_deref().is_some_and(|s| s != "sandbox") {
                    return Err(unsupported(file, i, "RUN --security=insecure"));
                }
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
                let exports: Vec<String> = declared
                    .iter()
                    .filter(|k| !envs.contains_key(*k))
                    .map(|k| {
                        format!(
                            "{k}={}",
                            shell_quote(args.get(k).map(String::as_str).unwrap_or(""))
                        )
                    })
                    .collect();
                if !exports.is_empty() {
                    script = format!("export {}; {script}", exports.join(" "));
                }
                let mut run = RunOptions {
                    network: network.as_deref() != Some("none"),
                    ..Default::default()
                };
                for m in mounts {
                    mount_option(file, i, m, &workdir, &mut run)?;
                }
                push(
                    &mut stages,
                    here("RUN"),
                    LayerKind::Commands {
                        commands: vec![script],
                        group: false,
                        run,
                    },
                );
            }
            Inst::Copy {
                srcs,
                dst,
                from,
                chown,
                chmod,
                heredocs,
                parents,
                exclude,
                ..
            } => {
                if *parents || !exclude.is_empty() {
                    return Err(unsupported(file, i, "COPY --parents or --exclude"));
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
                            format!(
                                "with several heredocs the destination must end with /: {dst:?}"
                            ),
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
                        push(
                            &mut stages,
                            here("COPY"),
                            named(
                                LayerKind::Inline {
                                    content,
                                    dst: target,
                                    chown: owner,
                                    chmod: mode,
                                },
                                &owner_name,
                            ),
                        );
                    }
                    continue;
                }
                if let Some(f) = from {
                    let f = ex(f)?;
                    let by_name = stages.iter().find(|s| {
                        s.alias
                            .as_deref()
                            .is_some_and(|a| a.eq_ignore_ascii_case(&f))
                    });
                    // `--from=N`: the Nth stage, counted from 0.
                    let by_index = f.parse::<usize>().ok().and_then(|n| stages.get(n));
                    let image = match by_name.or(by_index) {
                        Some(st) => st.id.clone(),
                        None => {
                            // An image: a stage of its own with no instructions.
                            let base = if f.starts_with("oci:") {
                                crate::spec::parse_base(&f).map_err(|m| bad(file, i, m))?
                            } else if f.eq_ignore_ascii_case("scratch") {
                                return Err(bad(file, i, "--from=scratch has no files"));
                            } else {
                                crate::registry::Reference::parse(&f).map_err(|e| {
                                    bad(file, i, format!("--from={f}: no stage is named so and it is no image reference: {e}"))
                                })?;
                                Base::Ref(f.clone())
                            };
                            match implicit.iter().find(|s| s.base == base) {
                                Some(s) => s.id.clone(),
                                None => {
                                    let id = format!("copy-from-{}", implicit.len());
                                    implicit.push(Stage {
                                        id: id.clone(),
                                        alias: None,
                                        base,
                                        loc: here("COPY"),
                                        layers: Vec::new(),
                                        platform: None,
                                    });
                                    id
                                }
                            }
                        }
                    };
                    let (owner, chmod, owner_name) =
                        owner_and_mode(file, i, chown.as_deref(), chmod.as_deref(), &ex)?;
                    let mut abs_srcs = Vec::new();
                    for s in srcs {
                        let s = ex(s)?;
                        if has_wildcards(&s) {
                            let comp = s.rsplit('/').next().unwrap_or_default();
                            ComponentGlob::new(comp)
                                .map_err(|e| bad(file, i, format!("{s:?}: {e}")))?;
                        }
                        abs_srcs.push(if s.starts_with('/') {
                            s
                        } else {
                            format!("/{s}")
                        });
                    }
                    let dst = ex(dst)?;
                    if abs_srcs.len() > 1 && !dst.ends_with('/') {
                        return Err(bad(
                            file,
                            i,
                            format!(
                                "with several sources the destination must end with /: {dst:?}"
                            ),
                        ));
                    }
                    push(
                        &mut stages,
                        here("COPY"),
                        named(
                            LayerKind::CopyFrom {
                                image,
                                srcs: abs_srcs,
                                dst,
                                chown: owner,
                                chmod,
                            },
                            &owner_name,
                        ),
                    );
                    continue;
                }
                let layers = copy_layers(
                    o,
                    file,
                    i,
                    srcs,
                    &ex(dst)?,
                    chown.as_deref(),
                    chmod.as_deref(),
                    &ex,
                    &rules,
                )?;
                for k in layers {
                    push(&mut stages, here("COPY"), k);
                }
            }
            Inst::Add {
                srcs,
                dst,
                chown,
                chmod,
                checksum,
                heredocs,
                ..
            } => {
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
                    if lower.starts_with("git@") || lower.ends_with(".git") {
                        return Err(unsupported(file, i, "ADD of a git repository"));
                    }
                    if lower.starts_with("http://") || lower.starts_with("https://") {
                        if several && !dst.ends_with('/') {
                            return Err(bad(
                                file,
                                i,
                                format!(
                                    "with several sources the destination must end with /: {dst:?}"
                                ),
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
                        &rules,
                    )?);
                }
                for k in kinds {
                    push(&mut stages, here("ADD"), k);
                }
            }
            Inst::Maintainer(m) => push(
                &mut stages,
                here("MAINTAINER"),
                LayerKind::Labels(vec![("maintainer".into(), m.clone())]),
            ),
            Inst::Volume(paths) => {
                let mut v = Vec::new();
                for p in paths {
                    v.push(serde_json::json!(ex(p)?));
                }
                push(
                    &mut stages,
                    here("VOLUME"),
                    LayerKind::DockerConfig {
                        field: "Volumes".into(),
                        value: serde_json::Value::Array(v),
                    },
                );
            }
            Inst::StopSignal(sig) => push(
                &mut stages,
                here("STOPSIGNAL"),
                LayerKind::DockerConfig {
                    field: "StopSignal".into(),
                    value: serde_json::json!(ex(sig)?),
                },
            ),
            // RUN steps after it use this shell (read from the config).
            Inst::Shell(sh) => push(
                &mut stages,
                here("SHELL"),
                LayerKind::DockerConfig {
                    field: "Shell".into(),
                    value: serde_json::json!(sh),
                },
            ),
            Inst::Healthcheck(h) => {
                let value = match h {
                    None => serde_json::json!({"Test": ["NONE"]}),
                    Some(h) => {
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
                                    let ns = go_duration_ns(v)
                                        .ok_or_else(|| bad(file, i, format!("--{other}={v}: expected a duration like 30s or 1m30s")))?;
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
                        serde_json::Value::Object(obj)
                    }
                };
                push(
                    &mut stages,
                    here("HEALTHCHECK"),
                    LayerKind::DockerConfig {
                        field: "Healthcheck".into(),
                        value,
                    },
                );
            }
            Inst::Onbuild(inner) => push(
                &mut stages,
                here("ONBUILD"),
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
            ),
        }
    }
    if stages.is_empty() {
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
    let target = match o.target {
        None => stages.len() - 1,
        Some(t) => stages
            .iter()
            .position(|s| {
                s.alias
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(t))
            })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--target {t}: no stage is named so in {}",
                    file.display()
                ))
            })?,
    };
    // Images copied from come first; then the stages in file order.
    let n_implicit = implicit.len();
    implicit.extend(stages);
    let stages = implicit;
    let target = target + n_implicit;
    // The target and the stages it stands on or copies from.
    let mut needed = vec![target];
    let mut todo = vec![target];
    while let Some(cur) = todo.pop() {
        let mut deps: Vec<&String> = Vec::new();
        if let Base::Image(id) = &stages[cur].base {
            deps.push(id);
        }
        for l in &stages[cur].layers {
            if let LayerKind::CopyFrom { image, .. } = l.kind.inner() {
                deps.push(image);
            }
        }
        for id in deps {
            let si = stages
                .iter()
                .position(|s| &s.id == id)
                .expect("named earlier");
            if !needed.contains(&si) {
                needed.push(si);
                todo.push(si);
            }
        }
    }
    needed.sort();
    let images: Vec<ImageDef> = needed
        .into_iter()
        .map(|si| {
            let s = &stages[si];
            let is_target = si == target;
            ImageDef {
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
                layers: s.layers.clone(),
                context: None,
            }
        })
        .collect();
    // `<Dockerfile>.dockerignore` beside the Dockerfile wins over the
    // context's .dockerignore, as with docker.
    let images = match own_ignore(file) {
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
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Definition {
        file: file.to_path_buf(),
        dir,
        context: o.context.to_path_buf(),
        images,
    })
}

fn push(stages: &mut [Stage], loc: Location, kind: LayerKind) {
    if let Some(s) = stages.last_mut() {
        s.layers.push(Layer { loc, kind });
    }
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
        "cache" => {
            if m.get("from").is_some() {
                return Err(unsupported(file, i, "--mount=type=cache,from="));
            }
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
            if m.get("from").is_some() {
                return Err(unsupported(file, i, "--mount=type=bind,from="));
            }
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
) -> Result<Vec<LayerKind>> {
    let (owner, chmod, owner_name) = owner_and_mode(file, i, chown, chmod, ex)?;
    if srcs.len() > 1 && !dst.ends_with('/') {
        return Err(bad(
            file,
            i,
            format!("with several sources the destination must end with /: {dst:?}"),
        ));
    }
    let mut rels: Vec<String> = Vec::new();
    for s in srcs {
        let s = ex(s)?;
        let rel = s.trim_start_matches("./").trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        if rel.split('/').any(|p| p == "..") {
            return Err(bad(file, i, format!("source {s:?} leaves the context")));
        }
        if !has_wildcards(rel) {
            rels.push(rel.to_string());
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
        rels.extend(found);
    }
    if rels.len() > 1 && !dst.ends_with('/') {
        return Err(bad(
            file,
            i,
            format!("the sources name several files, so the destination must end with /: {dst:?}"),
        ));
    }
    let mut out = Vec::new();
    for rel in &rels {
        let rel = rel.as_str();
        let path = o.context.join(rel);
        let meta = std::fs::metadata(&path).map_err(|e| Error::InputAt {
            loc: Box::new(loc(file, i, &i.keyword)),
            message: format!("{}: {e}", path.display()),
        })?;
        if meta.is_dir() {
            out.push(LayerKind::SourceFolder {
                src: rel.to_string(),
                dst: dst.to_string(),
                copy_contents_only: true,
                chown: owner,
                chmod,
            });
        } else {
            out.push(LayerKind::SourceFile {
                src: rel.to_string(),
                dst: dst.to_string(),
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
    let text =
        std::fs::read_to_string(&p).map_err(|e| Error::input(&p, format!("cannot read: {e}")))?;
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

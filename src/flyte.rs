//! Flyte's image spec (`flyteidl2.imagebuilder.ImageSpec`, as JSON) read
//! into an image definition, with the meaning Flyte's own builder gives
//! each layer: the venv at /opt/venv on PATH, copies of folders copy their
//! contents, the build folder the SDK prepared is the context as it is
//! (it already applied the user's .dockerignore), and secrets by key,
//! group and environment variable. A field imgbuild cannot honour is an
//! error naming the spec's file and the field's path, never dropped.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The image key of a definition made from a spec.
pub const IMAGE: &str = "flyte";

/// How many layers the definition has before the spec's own: the user and
/// environment of Flyte's Dockerfile header.
pub const HEADER_LAYERS: usize = 4;

/// Where Flyte puts the venv.
const VENV: &str = "/opt/venv";

/// What a spec asks for, as an imgbuild definition (JSON model) for an
/// image named [`IMAGE`], with `context` as its context; and how many
/// layers the spec has (the definition's layers from [`HEADER_LAYERS`] on,
/// then Flyte's footer).
pub fn definition_text(spec_path: &Path, context: &Path) -> Result<(String, usize)> {
    let text = crate::util::fs::read_description(spec_path)
        .map_err(|e| Error::input(spec_path, format!("cannot read: {e}")))?;
    let spec: Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(spec_path, format!("not JSON: {e}")))?;
    let image = translate(&spec, context).map_err(|(path, message)| Error::Definition {
        loc: Box::new(crate::error::Location {
            file: spec_path.to_path_buf(),
            line: 0,
            column: 0,
            field: path,
        }),
        message,
    })?;
    let mut images = Map::new();
    images.insert(IMAGE.into(), image);
    let mut def = Map::new();
    def.insert(
        "context".into(),
        Value::String(context.to_string_lossy().into_owned()),
    );
    def.insert("images".into(), Value::Object(images));
    let spec_layers = spec
        .get("layers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok((
        serde_json::to_string_pretty(&Value::Object(def)).expect("JSON"),
        spec_layers,
    ))
}

/// An error at a field of the spec: (its JSON path, the message).
type SpecError = (String, String);

/// A field of a message by its JSON name or its proto name.
fn field<'a>(m: &'a Map<String, Value>, json: &str, proto: &str) -> Option<&'a Value> {
    m.get(json)
        .or_else(|| m.get(proto))
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, at: &str) -> std::result::Result<&'a Map<String, Value>, SpecError> {
    v.as_object()
        .ok_or_else(|| (at.to_string(), "expected an object".into()))
}

fn string(
    m: &Map<String, Value>,
    json: &str,
    proto: &str,
    at: &str,
) -> std::result::Result<Option<String>, SpecError> {
    match field(m, json, proto) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((format!("{at}.{json}"), "expected a string".into())),
    }
}

fn strings(
    m: &Map<String, Value>,
    json: &str,
    proto: &str,
    at: &str,
) -> std::result::Result<Vec<String>, SpecError> {
    match field(m, json, proto) {
        None => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| (format!("{at}.{json}[{i}]"), "expected a string".into()))
            })
            .collect(),
        Some(_) => Err((format!("{at}.{json}"), "expected a list of strings".into())),
    }
}

/// Refuses fields this reader does not know: a newer SDK's addition must
/// not be dropped silently.
fn known(
    m: &Map<String, Value>,
    at: &str,
    names: &[(&str, &str)],
) -> std::result::Result<(), SpecError> {
    for k in m.keys() {
        if !names.iter().any(|(j, p)| k == j || k == p) {
            return Err((
                format!("{at}.{k}"),
                "not supported by imgbuild (unknown field of the image spec)".into(),
            ));
        }
    }
    Ok(())
}

fn translate(spec: &Value, context: &Path) -> std::result::Result<Value, SpecError> {
    let spec = object(spec, "spec")?;
    known(
        spec,
        "spec",
        &[
            ("baseImage", "base_image"),
            ("pythonVersion", "python_version"),
            ("layers", "layers"),
            ("platform", "platform"),
        ],
    )?;
    let base = string(spec, "baseImage", "base_image", "spec")?.ok_or_else(|| {
        (
            "spec.baseImage".to_string(),
            "the image spec names no base image".to_string(),
        )
    })?;
    let mut image = Map::new();
    image.insert("base".into(), Value::String(base));
    if let Some(py) = string(spec, "pythonVersion", "python_version", "spec")? {
        image.insert("python".into(), Value::String(py));
    }
    image.insert("venv".into(), Value::String(VENV.into()));
    let platforms = strings(spec, "platform", "platform", "spec")?;
    if !platforms.is_empty() {
        image.insert("platforms".into(), strings_value(&platforms));
    }
    // Flyte's header: root, the venv's variables and PATH, then the GPU
    // paths, in that order (each ENV sees the ones before it).
    let mut layers: Vec<Value> = vec![
        one("user", Value::String("root".into())),
        env(&[
            ("UV_COMPILE_BYTECODE", "1"),
            ("UV_LINK_MODE", "copy"),
            ("VIRTUALENV", VENV),
            ("UV_PYTHON", &format!("{VENV}/bin/python")),
        ]),
        env(&[("PATH", &format!("{VENV}/bin:$PATH"))]),
        env(&[
            ("PATH", "$PATH:/usr/local/nvidia/bin:/usr/local/cuda/bin"),
            ("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64"),
        ]),
    ];
    debug_assert_eq!(layers.len(), HEADER_LAYERS);
    let list = match field(spec, "layers", "layers") {
        None => vec![],
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(("spec.layers".into(), "expected a list".into())),
    };
    for (i, l) in list.iter().enumerate() {
        let at = format!("spec.layers[{i}]");
        let l = object(l, &at)?;
        if l.len() != 1 {
            return Err((at, "a layer holds exactly one kind".into()));
        }
        let (kind, body) = l.iter().next().expect("one");
        let at = format!("{at}.{kind}");
        let body = object(body, &at)?;
        layers.push(layer(kind, body, &at, context)?);
    }
    // Flyte's footer: a recipe that made the flyte user runs as it, in its
    // home (where the runtime unpacks the code bundle).
    let makes_user = layers.iter().any(|l| {
        l["commands"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c.as_str().is_some_and(creates_flyte_user)))
    });
    if makes_user {
        layers.push(one("user", Value::String("flyte".into())));
        layers.push(one("workdir", Value::String("/home/flyte".into())));
    }
    image.insert("layers".into(), Value::Array(layers));
    Ok(Value::Object(image))
}

/// Whether a command is the one Flyte's default recipe makes its runtime
/// user with.
fn creates_flyte_user(cmd: &str) -> bool {
    cmd.contains("useradd --create-home --shell /bin/bash flyte")
}

fn one(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), v);
    Value::Object(m)
}

fn env(vars: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    for (k, v) in vars {
        m.insert((*k).into(), Value::String((*v).into()));
    }
    one("env", Value::Object(m))
}

fn strings_value(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// `flyteidl2.core.Secret` → imgbuild's `ID[,env=VAR][,target=/path]`.
/// The id is `GROUP_KEY` (or `KEY`), upper case, as Flyte's builder names
/// the host variable it reads; the build gets it with `--secret`.
fn secret_mounts(
    body: &Map<String, Value>,
    at: &str,
) -> std::result::Result<Vec<String>, SpecError> {
    let list = match field(body, "secretMounts", "secret_mounts") {
        None => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err((format!("{at}.secretMounts"), "expected a list".into())),
    };
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let at = format!("{at}.secretMounts[{i}]");
        let s = object(s, &at)?;
        known(
            s,
            &at,
            &[
                ("key", "key"),
                ("group", "group"),
                ("groupVersion", "group_version"),
                ("mountRequirement", "mount_requirement"),
                ("envVar", "env_var"),
            ],
        )?;
        let key = string(s, "key", "key", &at)?
            .ok_or_else(|| (format!("{at}.key"), "a secret needs a key".to_string()))?;
        let group = string(s, "group", "group", &at)?;
        let id: String = match &group {
            Some(g) => format!("{g}_{key}"),
            None => key.clone(),
        }
        .to_ascii_uppercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
        let requirement = string(s, "mountRequirement", "mount_requirement", &at)?;
        let env_var = string(s, "envVar", "env_var", &at)?;
        let mount = match requirement.as_deref() {
            Some("FILE") => {
                let g = group
                    .as_deref()
                    .map(|g| format!("{g}/"))
                    .unwrap_or_default();
                format!("{id},target=/etc/flyte/secrets/{g}{key}")
            }
            None | Some("ANY") | Some("ENV_VAR") => {
                let var = env_var.unwrap_or_else(|| id.clone());
                format!("{id},env={var}")
            }
            Some(other) => {
                return Err((
                    format!("{at}.mountRequirement"),
                    format!("{other:?} is not ANY, ENV_VAR or FILE"),
                ));
            }
        };
        out.push(mount);
    }
    Ok(out)
}

/// PipOptions → the layer's index options; `extra_args` words pass on to
/// the resolver, which refuses those it cannot honour.
fn pip_options(
    out: &mut Map<String, Value>,
    body: &Map<String, Value>,
    at: &str,
) -> std::result::Result<Vec<String>, SpecError> {
    let Some(o) = field(body, "options", "options") else {
        return Ok(vec![]);
    };
    let at = format!("{at}.options");
    let o = object(o, &at)?;
    known(
        o,
        &at,
        &[
            ("indexUrl", "index_url"),
            ("extraIndexUrls", "extra_index_urls"),
            ("pre", "pre"),
            ("extraArgs", "extra_args"),
        ],
    )?;
    if let Some(u) = string(o, "indexUrl", "index_url", &at)? {
        out.insert("index_url".into(), Value::String(u));
    }
    let extra = strings(o, "extraIndexUrls", "extra_index_urls", &at)?;
    if !extra.is_empty() {
        out.insert("extra_index_urls".into(), strings_value(&extra));
    }
    match field(o, "pre", "pre") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("pre".into(), Value::Bool(true));
        }
        Some(_) => return Err((format!("{at}.pre"), "expected true or false".into())),
    }
    Ok(string(o, "extraArgs", "extra_args", &at)?
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default())
}

fn layer(
    kind: &str,
    body: &Map<String, Value>,
    at: &str,
    context: &Path,
) -> std::result::Result<Value, SpecError> {
    let mut out = Map::new();
    let in_context =
        |rel: &str, field: &str| -> std::result::Result<std::path::PathBuf, SpecError> {
            let p = context.join(rel);
            if !p.exists() {
                return Err((
                    format!("{at}.{field}"),
                    format!("{rel:?} is not in the build context {}", context.display()),
                ));
            }
            Ok(p)
        };
    match kind {
        "aptPackages" | "apt_packages" => {
            known(
                body,
                at,
                &[("packages", "packages"), ("secretMounts", "secret_mounts")],
            )?;
            out.insert(
                "apt_packages".into(),
                strings_value(&strings(body, "packages", "packages", at)?),
            );
            put_secrets(&mut out, body, at)?;
        }
        "pipPackages" | "pip_packages" => {
            known(
                body,
                at,
                &[
                    ("packages", "packages"),
                    ("options", "options"),
                    ("secretMounts", "secret_mounts"),
                ],
            )?;
            out.insert(
                "pip_packages".into(),
                strings_value(&strings(body, "packages", "packages", at)?),
            );
            let extra = pip_options(&mut out, body, at)?;
            put_extra(&mut out, extra);
            put_secrets(&mut out, body, at)?;
        }
        "requirements" => {
            known(
                body,
                at,
                &[
                    ("file", "file"),
                    ("options", "options"),
                    ("secretMounts", "secret_mounts"),
                ],
            )?;
            let file = string(body, "file", "file", at)?
                .ok_or_else(|| (format!("{at}.file"), "no requirements file".to_string()))?;
            in_context(&file, "file")?;
            out.insert("requirements".into(), Value::String(file));
            let extra = pip_options(&mut out, body, at)?;
            put_extra(&mut out, extra);
            put_secrets(&mut out, body, at)?;
        }
        "pythonWheels" | "python_wheels" => {
            known(
                body,
                at,
                &[
                    ("dir", "dir"),
                    ("packageName", "package_name"),
                    ("options", "options"),
                    ("secretMounts", "secret_mounts"),
                ],
            )?;
            let dir = string(body, "dir", "dir", at)?
                .ok_or_else(|| (format!("{at}.dir"), "no wheel folder".to_string()))?;
            let abs = in_context(&dir, "dir")?;
            let name = string(body, "packageName", "package_name", at)?
                .ok_or_else(|| (format!("{at}.packageName"), "no package name".to_string()))?;
            out.insert("pip_packages".into(), strings_value(&[name]));
            let mut extra = pip_options(&mut out, body, at)?;
            extra.push("--find-links".into());
            extra.push(abs.to_string_lossy().into_owned());
            put_extra(&mut out, extra);
            put_secrets(&mut out, body, at)?;
        }
        "uvProject" | "uv_project" => {
            known(
                body,
                at,
                &[
                    ("pyproject", "pyproject"),
                    ("uvlock", "uvlock"),
                    ("options", "options"),
                    ("secretMounts", "secret_mounts"),
                    ("sourceDir", "source_dir"),
                ],
            )?;
            // `pyproject` is the project's folder in the context.
            let dir = string(body, "pyproject", "pyproject", at)?
                .ok_or_else(|| (format!("{at}.pyproject"), "no project folder".to_string()))?;
            let pyproject = Path::new(&dir).join("pyproject.toml");
            in_context(&pyproject.to_string_lossy(), "pyproject")?;
            if let Some(lock) = string(body, "uvlock", "uvlock", at)? {
                let expected = Path::new(&dir).join("uv.lock");
                if Path::new(&lock) != expected {
                    return Err((
                        format!("{at}.uvlock"),
                        format!(
                            "{lock:?}: the lock must sit beside pyproject.toml ({})",
                            expected.display()
                        ),
                    ));
                }
                in_context(&lock, "uvlock")?;
            }
            out.insert(
                "uv_project".into(),
                Value::String(pyproject.to_string_lossy().into_owned()),
            );
            let extra = pip_options(&mut out, body, at)?;
            // Flyte says "dependencies only" with --no-install-project.
            let deps_only = extra.iter().any(|a| a == "--no-install-project");
            out.insert("install_project".into(), Value::Bool(!deps_only));
            let rest: Vec<String> = extra
                .into_iter()
                .filter(|a| a != "--no-install-project")
                .collect();
            put_extra(&mut out, rest);
            put_secrets(&mut out, body, at)?;
        }
        "commands" => {
            known(
                body,
                at,
                &[("cmd", "cmd"), ("secretMounts", "secret_mounts")],
            )?;
            out.insert(
                "commands".into(),
                strings_value(&strings(body, "cmd", "cmd", at)?),
            );
            put_secrets(&mut out, body, at)?;
        }
        "workdir" => {
            known(body, at, &[("workdir", "workdir")])?;
            let w = string(body, "workdir", "workdir", at)?
                .ok_or_else(|| (format!("{at}.workdir"), "empty".to_string()))?;
            out.insert("workdir".into(), Value::String(w));
        }
        "copyConfig" | "copy_config" => {
            known(body, at, &[("src", "src"), ("dst", "dst")])?;
            let src = string(body, "src", "src", at)?
                .ok_or_else(|| (format!("{at}.src"), "no source".to_string()))?;
            let dst = string(body, "dst", "dst", at)?.unwrap_or_else(|| ".".into());
            let abs = in_context(&src, "src")?;
            // COPY of a folder copies what it holds.
            if abs.is_dir() {
                out.insert("source_folder".into(), Value::String(src));
                out.insert("copy_contents_only".into(), Value::Bool(true));
            } else {
                out.insert("source_file".into(), Value::String(src));
            }
            out.insert("dst".into(), Value::String(dst));
        }
        "env" => {
            known(body, at, &[("envVariables", "env_variables")])?;
            let vars = match field(body, "envVariables", "env_variables") {
                None => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(_) => return Err((format!("{at}.envVariables"), "expected an object".into())),
            };
            for (k, v) in &vars {
                if !v.is_string() {
                    return Err((format!("{at}.envVariables.{k}"), "expected a string".into()));
                }
            }
            out.insert("env".into(), Value::Object(vars));
        }
        "poetryProject" | "poetry_project" => {
            known(
                body,
                at,
                &[
                    ("pyproject", "pyproject"),
                    ("poetryLock", "poetry_lock"),
                    ("extraArgs", "extra_args"),
                    ("secretMounts", "secret_mounts"),
                ],
            )?;
            let lock = string(body, "poetryLock", "poetry_lock", at)?
                .ok_or_else(|| (format!("{at}.poetryLock"), "no poetry.lock".to_string()))?;
            let lock_path = in_context(&lock, "poetryLock")?;
            let args = string(body, "extraArgs", "extra_args", at)?.unwrap_or_default();
            let words: Vec<&str> = args.split_whitespace().collect();
            if let Some(w) = words.iter().find(|w| **w != "--no-root") {
                return Err((
                    format!("{at}.extraArgs"),
                    format!("{w:?} is not supported for poetry projects"),
                ));
            }
            // Dependencies only: `pyproject` is the file; the whole
            // project: its folder, installed after its dependencies.
            let rel = string(body, "pyproject", "pyproject", at)?
                .ok_or_else(|| (format!("{at}.pyproject"), "no pyproject".to_string()))?;
            let abs = in_context(&rel, "pyproject")?;
            let (dir, pyproject) = if abs.is_dir() {
                (rel.clone(), abs.join("pyproject.toml"))
            } else {
                let parent = Path::new(&rel).parent().unwrap_or(Path::new(""));
                (parent.to_string_lossy().into_owned(), abs.clone())
            };
            let pins =
                poetry_pins(&lock_path, &pyproject).map_err(|m| (format!("{at}.poetryLock"), m))?;
            out.insert("pip_packages".into(), strings_value(&pins));
            if !words.contains(&"--no-root") {
                let dir = if dir.is_empty() { ".".to_string() } else { dir };
                out.insert("project".into(), Value::String(dir));
            }
            put_secrets(&mut out, body, at)?;
        }
        other => {
            return Err((
                at.to_string(),
                format!("{other:?} is not a layer kind imgbuild knows"),
            ));
        }
    }
    Ok(Value::Object(out))
}

/// What `poetry install --no-root` installs from a lock (lock-version 2.1,
/// written by poetry 2): every package that is not optional (extras only)
/// and belongs to a group that is not optional, pinned, with the markers
/// the lock records for those groups.
pub(crate) fn poetry_pins(
    lock: &Path,
    pyproject: &Path,
) -> std::result::Result<Vec<String>, String> {
    let read = |p: &Path| -> std::result::Result<toml::Table, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: not TOML: {e}", p.display()))
    };
    let lock_doc = read(lock)?;
    let version = lock_doc
        .get("metadata")
        .and_then(|m| m.get("lock-version"))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if version != "2.1" {
        return Err(format!(
            "{}: lock-version {version:?}; imgbuild reads lock-version 2.1 (poetry 2 writes it: run `poetry lock`)",
            lock.display()
        ));
    }
    let project = read(pyproject)?;
    let poetry = project.get("tool").and_then(|t| t.get("poetry"));
    if poetry.and_then(|p| p.get("source")).is_some() {
        return Err(format!(
            "{}: [[tool.poetry.source]] package sources are not supported yet",
            pyproject.display()
        ));
    }
    let optional_groups: Vec<&str> = poetry
        .and_then(|p| p.get("group"))
        .and_then(|g| g.as_table())
        .map(|g| {
            g.iter()
                .filter(|(_, v)| v.get("optional").and_then(|o| o.as_bool()) == Some(true))
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut pins = Vec::new();
    for p in lock_doc
        .get("package")
        .and_then(|p| p.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let field = |k: &str| p.get(k).and_then(|v| v.as_str());
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            return Err(format!(
                "{}: a package without name or version",
                lock.display()
            ));
        };
        if p.get("optional").and_then(|o| o.as_bool()) == Some(true) {
            continue;
        }
        let groups: Vec<&str> = p
            .get("groups")
            .and_then(|g| g.as_array())
            .map(|g| g.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_else(|| vec!["main"]);
        let wanted: Vec<&str> = groups
            .into_iter()
            .filter(|g| !optional_groups.contains(g))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        // A marker for all groups, or one per group.
        let marker = match p.get("markers") {
            None => None,
            Some(toml::Value::String(m)) => Some(m.clone()),
            Some(toml::Value::Table(t)) => {
                let per: Vec<String> = wanted
                    .iter()
                    .map(|g| t.get(*g).and_then(|m| m.as_str()).map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
                // A group with no marker installs it everywhere.
                (per.len() == wanted.len()).then(|| {
                    per.iter()
                        .map(|m| format!("({m})"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                })
            }
            Some(_) => {
                return Err(format!(
                    "{}: {name}: markers is neither text nor a table",
                    lock.display()
                ));
            }
        };
        pins.push(match marker {
            Some(m) => format!("{name}=={version} ; {m}"),
            None => format!("{name}=={version}"),
        });
    }
    if pins.is_empty() {
        return Err(format!("{}: no packages to install", lock.display()));
    }
    Ok(pins)
}

fn put_extra(out: &mut Map<String, Value>, extra: Vec<String>) {
    if !extra.is_empty() {
        out.insert("extra_args".into(), strings_value(&extra));
    }
}

fn put_secrets(
    out: &mut Map<String, Value>,
    body: &Map<String, Value>,
    at: &str,
) -> std::result::Result<(), SpecError> {
    let s = secret_mounts(body, at)?;
    if !s.is_empty() {
        out.insert("secret_mounts".into(), strings_value(&s));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (p, body) in [
            ("mysrc/a.py", "print(1)\n"),
            ("req/requirements.txt", "six\n"),
            ("proj/pyproject.toml", "[project]\nname = \"p\"\n"),
            ("proj/uv.lock", "version = 1\n"),
            ("dist/flyte-2.0-py3-none-any.whl", "x"),
            ("settings.yaml", "a: 1\n"),
        ] {
            let f = t.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, body).unwrap();
        }
        t
    }

    fn image(spec: Value, ctx: &Path) -> std::result::Result<Value, SpecError> {
        translate(&spec, ctx)
    }

    #[test]
    fn every_layer_kind_maps_with_flytes_meaning() {
        let t = ctx();
        let spec = serde_json::json!({
            "baseImage": "ghcr.io/flyteorg/flyte:py3.12-v2.12.1",
            "pythonVersion": "3.12",
            "platform": ["linux/amd64", "linux/arm64"],
            "layers": [
                {"aptPackages": {"packages": ["curl", "git"],
                    "secretMounts": [{"key": "pat", "group": "gh", "mountRequirement": "FILE"}]}},
                {"pipPackages": {"packages": ["pandas", "scikit-learn>=1.5"],
                    "options": {"indexUrl": "https://idx.invalid/simple",
                                "extraIndexUrls": ["https://x.invalid/simple"],
                                "pre": true, "extraArgs": "--no-cache"},
                    "secretMounts": [{"key": "GITHUB_PAT", "mountRequirement": "ENV_VAR", "envVar": "GITHUB_PAT"}]}},
                {"requirements": {"file": "req/requirements.txt", "options": {}}},
                {"pythonWheels": {"dir": "dist", "packageName": "flyte", "options": {}}},
                {"uvProject": {"pyproject": "proj", "uvlock": "proj/uv.lock",
                    "options": {"extraArgs": "--no-install-project"}, "sourceDir": "proj"}},
                {"uv_project": {"pyproject": "proj", "options": {}}},
                {"commands": {"cmd": ["echo a", "echo b"]}},
                {"workdir": {"workdir": "/app"}},
                {"copyConfig": {"src": "mysrc", "dst": "./mysrc"}},
                {"copyConfig": {"src": "settings.yaml", "dst": "/etc/app/"}},
                {"env": {"envVariables": {"A": "1", "PATH": "/x:$PATH"}}}
            ]
        });
        let v = image(spec, t.path()).unwrap();
        assert_eq!(v["base"], "ghcr.io/flyteorg/flyte:py3.12-v2.12.1");
        assert_eq!(v["python"], "3.12");
        assert_eq!(v["venv"], VENV);
        assert_eq!(
            v["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
        let layers = v["layers"].as_array().unwrap();
        assert_eq!(layers.len(), HEADER_LAYERS + 11);
        assert_eq!(layers[0]["user"], "root");
        assert_eq!(layers[2]["env"]["PATH"], "/opt/venv/bin:$PATH");
        let l = &layers[HEADER_LAYERS..];
        assert_eq!(l[0]["apt_packages"], serde_json::json!(["curl", "git"]));
        assert_eq!(
            l[0]["secret_mounts"],
            serde_json::json!(["GH_PAT,target=/etc/flyte/secrets/gh/pat"])
        );
        assert_eq!(l[1]["pip_packages"][1], "scikit-learn>=1.5");
        assert_eq!(l[1]["index_url"], "https://idx.invalid/simple");
        assert_eq!(l[1]["extra_index_urls"][0], "https://x.invalid/simple");
        assert_eq!(l[1]["pre"], true);
        assert_eq!(l[1]["extra_args"], serde_json::json!(["--no-cache"]));
        assert_eq!(
            l[1]["secret_mounts"],
            serde_json::json!(["GITHUB_PAT,env=GITHUB_PAT"])
        );
        assert_eq!(l[2]["requirements"], "req/requirements.txt");
        assert_eq!(l[3]["pip_packages"], serde_json::json!(["flyte"]));
        assert_eq!(l[3]["extra_args"][0], "--find-links");
        assert!(l[3]["extra_args"][1].as_str().unwrap().ends_with("/dist"));
        assert_eq!(l[4]["uv_project"], "proj/pyproject.toml");
        assert_eq!(l[4]["install_project"], false, "dependencies only");
        assert!(l[4].get("extra_args").is_none());
        assert_eq!(l[5]["install_project"], true, "snake_case names too");
        assert_eq!(l[6]["commands"], serde_json::json!(["echo a", "echo b"]));
        assert_eq!(l[7]["workdir"], "/app");
        assert_eq!(l[8]["source_folder"], "mysrc");
        assert_eq!(l[8]["copy_contents_only"], true);
        assert_eq!(l[8]["dst"], "./mysrc");
        assert_eq!(l[9]["source_file"], "settings.yaml");
        assert_eq!(l[9]["dst"], "/etc/app/");
        assert_eq!(l[10]["env"]["PATH"], "/x:$PATH");
    }

    /// A lock as poetry 2 writes it: main and dev groups, an optional
    /// group, an extra, and markers (one for all groups, one per group).
    pub(crate) const POETRY_LOCK: &str = r#"# This file is automatically @generated by Poetry 2.1.1 and should not be changed by hand.

[[package]]
name = "six"
version = "1.16.0"
description = "Python 2 and 3 compatibility utilities"
optional = false
python-versions = ">=2.7"
groups = ["main"]
files = []

[[package]]
name = "colorama"
version = "0.4.6"
description = "Cross-platform colored terminal text."
optional = false
python-versions = ">=3.7"
groups = ["main"]
markers = "sys_platform == \"win32\""
files = []

[[package]]
name = "pyflakes"
version = "3.2.0"
description = "passive checker of Python programs"
optional = false
python-versions = ">=3.8"
groups = ["main", "dev"]
markers = {main = "python_version >= \"3.11\"", dev = "python_version >= \"3.8\""}
files = []

[[package]]
name = "packaging"
version = "24.2"
description = "Core utilities for Python packages"
optional = false
python-versions = ">=3.8"
groups = ["docs"]
files = []

[[package]]
name = "idna"
version = "3.10"
description = "Internationalized Domain Names in Applications (IDNA)"
optional = true
python-versions = ">=3.6"
groups = ["main"]
files = []

[extras]
net = ["idna"]

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
content-hash = "0"
"#;

    pub(crate) const POETRY_PYPROJECT: &str = "[project]\nname = \"demo\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\n\n[tool.poetry.group.docs]\noptional = true\n";

    #[test]
    fn a_poetry_lock_becomes_the_pins_poetry_install_installs() {
        let t = ctx();
        std::fs::write(t.path().join("proj/poetry.lock"), POETRY_LOCK).unwrap();
        std::fs::write(t.path().join("proj/pyproject.toml"), POETRY_PYPROJECT).unwrap();
        let v = image(
            serde_json::json!({"baseImage": "b", "layers": [{"poetryProject": {
                "pyproject": "proj/pyproject.toml", "poetryLock": "proj/poetry.lock",
                "extraArgs": " --no-root"}}]}),
            t.path(),
        )
        .unwrap();
        assert!(
            v["layers"][HEADER_LAYERS].get("project").is_none(),
            "--no-root"
        );
        let whole = image(
            serde_json::json!({"baseImage": "b", "layers": [{"poetryProject": {
                "pyproject": "proj", "poetryLock": "proj/poetry.lock"}}]}),
            t.path(),
        )
        .unwrap();
        assert_eq!(
            whole["layers"][HEADER_LAYERS]["project"], "proj",
            "install_project"
        );
        assert_eq!(
            whole["layers"][HEADER_LAYERS]["pip_packages"],
            v["layers"][HEADER_LAYERS]["pip_packages"]
        );
        assert_eq!(
            v["layers"][HEADER_LAYERS]["pip_packages"],
            serde_json::json!([
                "six==1.16.0",
                "colorama==0.4.6 ; sys_platform == \"win32\"",
                "pyflakes==3.2.0 ; (python_version >= \"3.11\") or (python_version >= \"3.8\")",
            ]),
            "the optional docs group and the extra are left out"
        );
        let (at, _) = image(
            serde_json::json!({"baseImage": "b", "layers": [{"poetryProject": {
                "pyproject": "proj/pyproject.toml", "poetryLock": "proj/poetry.lock",
                "extraArgs": "--no-root --only main"}}]}),
            t.path(),
        )
        .unwrap_err();
        assert_eq!(at, "spec.layers[0].poetryProject.extraArgs");
        std::fs::write(
            t.path().join("proj/poetry.lock"),
            POETRY_LOCK.replace("lock-version = \"2.1\"", "lock-version = \"2.0\""),
        )
        .unwrap();
        let (at, m) = image(
            serde_json::json!({"baseImage": "b", "layers": [{"poetryProject": {
                "pyproject": "proj/pyproject.toml", "poetryLock": "proj/poetry.lock",
                "extraArgs": "--no-root"}}]}),
            t.path(),
        )
        .unwrap_err();
        assert_eq!(at, "spec.layers[0].poetryProject.poetryLock");
        assert!(m.contains("poetry lock"), "{m}");
    }

    #[test]
    fn a_recipe_that_makes_the_flyte_user_runs_as_it() {
        let t = ctx();
        let make_user = "if ! id -u flyte >/dev/null 2>&1; then useradd --create-home --shell /bin/bash flyte; fi && mkdir -p /home/flyte && chown -R flyte:flyte /home/flyte && chown -R flyte:flyte /root";
        let v = image(
            serde_json::json!({"baseImage": "b", "layers": [
                {"commands": {"cmd": [make_user]}},
                {"workdir": {"workdir": "/app"}}
            ]}),
            t.path(),
        )
        .unwrap();
        let layers = v["layers"].as_array().unwrap();
        let n = layers.len();
        assert_eq!(layers[n - 2]["user"], "flyte");
        assert_eq!(layers[n - 1]["workdir"], "/home/flyte", "as Flyte's footer");
        let v = image(
            serde_json::json!({"baseImage": "b", "layers": [{"commands": {"cmd": ["echo hi"]}}]}),
            t.path(),
        )
        .unwrap();
        assert_eq!(v["layers"].as_array().unwrap().len(), HEADER_LAYERS + 1);
    }

    #[test]
    fn what_cannot_be_honoured_is_an_error_at_its_field() {
        let t = ctx();
        let cases = [
            (serde_json::json!({"layers": []}), "spec.baseImage"),
            (
                serde_json::json!({"baseImage": "b", "labels": {}}),
                "spec.labels",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"poetryProject": {"pyproject": "p"}}]}),
                "spec.layers[0].poetryProject.poetryLock",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"pixi": {}}]}),
                "spec.layers[0].pixi",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"copyConfig": {"src": "gone", "dst": "."}}]}),
                "spec.layers[0].copyConfig.src",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"pipPackages": {"packages": ["x"], "options": {"newOption": 1}}}]}),
                "spec.layers[0].pipPackages.options.newOption",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"uvProject": {"pyproject": "proj", "uvlock": "other/uv.lock"}}]}),
                "spec.layers[0].uvProject.uvlock",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"commands": {"cmd": ["x"], "secretMounts": [{"group": "g"}]}}]}),
                "spec.layers[0].commands.secretMounts[0].key",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"env": {"envVariables": {"A": 1}}}]}),
                "spec.layers[0].env.envVariables.A",
            ),
            (
                serde_json::json!({"baseImage": "b", "layers": [{"workdir": {"workdir": "/a"}, "env": {}}]}),
                "spec.layers[0]",
            ),
        ];
        for (spec, field) in cases {
            let (at, message) = image(spec.clone(), t.path()).unwrap_err();
            assert_eq!(at, field, "{spec}: {message}");
            assert!(!message.is_empty());
        }
    }

    #[test]
    fn the_definition_names_the_context_and_one_image() {
        let t = ctx();
        let spec = t.path().join("spec.json");
        std::fs::write(
            &spec,
            r#"{"base_image": "debian", "python_version": "3.12"}"#,
        )
        .unwrap();
        let (text, n) = definition_text(&spec, t.path()).unwrap();
        assert_eq!(n, 0);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["context"], t.path().to_string_lossy().as_ref());
        assert_eq!(v["images"][IMAGE]["base"], "debian");
        std::fs::write(&spec, "{").unwrap();
        assert!(definition_text(&spec, t.path()).is_err());
        std::fs::write(&spec, r#"{"baseImage": 3}"#).unwrap();
        let e = definition_text(&spec, t.path()).unwrap_err().to_string();
        assert!(e.contains("spec.json: spec.baseImage"), "{e}");
    }
}

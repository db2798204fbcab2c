//! `imgbuild export dockerfile`: a definition as a Dockerfile, for teams
//! that still build with docker, buildah or kaniko. Each image becomes a
//! stage named after it (an image built on another of the file is `FROM`
//! that stage), so `--target NAME` picks one. File layers, config edits and
//! RUN steps translate one to one and build the same file tree (the tests
//! check this with buildah). Python layers become `uv` commands run in the
//! image: the same packages and versions from the same lock, though not the
//! same bytes as imgbuild's native install.

use crate::error::{Error, Result};
use crate::spec::{Base, Definition, ImageDef, LayerKind, Owner, PipOptions, RunOptions};
use std::fmt::Write as _;
use std::path::Path;

/// What the export needs besides the definition.
pub struct ExportOptions<'a> {
    /// Where uv comes from in RUN steps (`--mount=from=`).
    pub uv_image: &'a str,
}

/// The Dockerfile for `images` (all of the file when empty), bases first.
pub fn dockerfile(def: &Definition, images: &[String], o: &ExportOptions) -> Result<String> {
    let mut order: Vec<usize> = Vec::new();
    fn visit(def: &Definition, i: usize, order: &mut Vec<usize>) {
        if order.contains(&i) {
            return;
        }
        if let Base::Image(b) = &def.images[i].base
            && let Some(bi) = def.images.iter().position(|x| &x.id == b)
        {
            visit(def, bi, order);
        }
        order.push(i);
    }
    for (i, img) in def.images.iter().enumerate() {
        if images.is_empty() || images.contains(&img.id) {
            visit(def, i, &mut order);
        }
    }
    for n in images {
        if !def.images.iter().any(|i| &i.id == n) {
            return Err(Error::Usage(format!(
                "no image {n:?} in {}",
                def.file.display()
            )));
        }
    }
    let context = &def.context;
    let mut out = String::new();
    // `RUN --security` is in BuildKit's labs syntax only.
    let insecure = def.images.iter().any(|i| {
        i.layers.iter().any(
            |l| matches!(&l.kind, crate::spec::LayerKind::Commands { run, .. } if run.insecure),
        )
    });
    let syntax = if insecure { "1-labs" } else { "1" };
    let _ = writeln!(
        out,
        "# syntax=docker/dockerfile:{syntax}\n# Written by `imgbuild export dockerfile` from {}.\n# Build it with the definition's context: docker build -f THIS_FILE {}",
        def.file.display(),
        context.display()
    );
    if !context.join(".dockerignore").is_file() {
        out.push_str("# imgbuild leaves out VCS folders and Python caches when the context has no\n# .dockerignore; docker does not: add them to one to get the same layers.\n");
    }
    for i in order {
        out.push('\n');
        stage(&mut out, def, &def.images[i], o)?;
    }
    Ok(out)
}

fn unsupported(img: &ImageDef, what: &str) -> Error {
    Error::Unsupported {
        what: format!("{}: {what}", img.loc),
        hint: Some("build this image with imgbuild".into()),
    }
}

fn stage(out: &mut String, def: &Definition, img: &ImageDef, o: &ExportOptions) -> Result<()> {
    let from = match &img.base {
        Base::Scratch => "scratch".to_string(),
        Base::Debian => format!(
            "python:{}-slim-bookworm",
            img.python.as_deref().unwrap_or("3.12")
        ),
        Base::Layout { dir, tag } => {
            // buildah and podman read OCI layouts; docker needs it loaded.
            let dir = if dir.is_absolute() {
                dir.clone()
            } else {
                def.dir.join(dir)
            };
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            match tag {
                Some(t) => format!("oci:{}:{t}", dir.display()),
                None => format!("oci:{}", dir.display()),
            }
        }
        Base::Image(id) => id.clone(),
        Base::Ref(r) => r.clone(),
        Base::Dockerfile { .. } => return Err(unsupported(img, "a Dockerfile base")),
        Base::DebianNative(_) => return Err(unsupported(img, "a native Debian base")),
    };
    if img.context.is_some() {
        return Err(unsupported(img, "a stage of a Dockerfile base"));
    }
    let _ = writeln!(out, "FROM {from} AS {}", img.id);
    let mut venv_set = false;
    for l in &img.layers {
        let line = match &l.kind {
            LayerKind::Workdir(w) => format!("WORKDIR {w}"),
            // imgbuild expands a value against the variables set before it
            // in the same table; one ENV sees only earlier instructions.
            LayerKind::Env(vars) if vars.iter().any(|(_, v)| v.contains('$')) => vars
                .iter()
                .map(|kv| format!("ENV {}", pairs(std::slice::from_ref(kv))))
                .collect::<Vec<_>>()
                .join("\n"),
            LayerKind::Env(vars) => format!("ENV {}", pairs(vars)),
            LayerKind::Labels(vars) => format!("LABEL {}", pairs(vars)),
            LayerKind::User(u) => format!("USER {u}"),
            LayerKind::Expose(ports) => format!("EXPOSE {}", ports.join(" ")),
            LayerKind::Entrypoint(v) => format!("ENTRYPOINT {}", json(v)),
            LayerKind::Cmd(v) => format!("CMD {}", json(v)),
            LayerKind::Dockerignore(p) => format!(
                "# The file layers below use {p} as their .dockerignore: copy it to <Dockerfile>.dockerignore."
            ),
            LayerKind::SourceFolder {
                src,
                dst,
                copy_contents_only,
                chown,
                chmod,
                ..
            } => {
                let dst = if !copy_contents_only && (dst == "." || dst == "./") {
                    let name = Path::new(src)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| src.clone());
                    format!("./{name}/")
                } else {
                    dst.clone()
                };
                let src = if src == "." {
                    ".".to_string()
                } else {
                    format!("{}/", src.trim_end_matches('/'))
                };
                copy_line(&owner_flags(chown, chmod), &src, &dst)
            }
            LayerKind::SourceFile {
                src,
                dst,
                chown,
                chmod,
            } => copy_line(&owner_flags(chown, chmod), src, dst),
            LayerKind::Commands {
                commands,
                group,
                run,
            } => {
                let scripts = if *group {
                    vec![commands.join(" && ")]
                } else {
                    commands.clone()
                };
                scripts
                    .iter()
                    .map(|c| format!("RUN {}{}", run_flags(run), c))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            LayerKind::AptPackages { packages, run } => {
                let mut r = run.clone();
                r.cache_mounts.extend([
                    "/var/cache/apt".to_string(),
                    "/var/lib/apt/lists".to_string(),
                ]);
                format!(
                    "RUN {}DEBIAN_FRONTEND=noninteractive {}",
                    run_flags(&r),
                    crate::plan::apt_script(packages)
                )
            }
            LayerKind::UvProject {
                pyproject,
                install_project,
                extras,
                groups,
                options,
            } => {
                let dir = pyproject
                    .trim_end_matches("pyproject.toml")
                    .trim_end_matches('/');
                let dir = if dir.is_empty() { "." } else { dir };
                let at = |f: &str| {
                    if dir == "." {
                        f.to_string()
                    } else {
                        format!("{dir}/{f}")
                    }
                };
                let mut mounts = vec![uv_mount(o)];
                if *install_project {
                    mounts.push(format!(
                        "--mount=type=bind,source={dir},target=/tmp/imgbuild-project,rw"
                    ));
                } else {
                    for f in ["pyproject.toml", "uv.lock"] {
                        mounts.push(format!(
                            "--mount=type=bind,source={},target=/tmp/imgbuild-project/{f}",
                            at(f)
                        ));
                    }
                }
                let mut sync = String::from("uv sync --locked --no-editable --no-dev");
                if !install_project {
                    sync.push_str(" --no-install-project");
                }
                for e in extras {
                    let _ = write!(sync, " --extra {}", word(e));
                }
                for g in groups {
                    let _ = write!(sync, " --group {}", word(g));
                }
                sync.push_str(&index_flags(options));
                python_run(
                    img,
                    &mut venv_set,
                    &mounts,
                    &format!(
                        "cd /tmp/imgbuild-project && UV_PROJECT_ENVIRONMENT={} {sync}",
                        img.venv
                    ),
                )
            }
            LayerKind::PipPackages { packages, options } => {
                if let Some(dir) = &options.project {
                    return Err(Error::Unsupported {
                        what: format!("{}: exporting pip_packages with project = {dir:?}", l.loc),
                        hint: Some("install the project with a uv_project layer".into()),
                    });
                }
                let pkgs: Vec<String> = packages.iter().map(|p| word(p)).collect();
                python_run(
                    img,
                    &mut venv_set,
                    &[uv_mount(o)],
                    &format!(
                        "uv pip install --python {}/bin/python{} {}",
                        img.venv,
                        index_flags(options),
                        pkgs.join(" ")
                    ),
                )
            }
            LayerKind::Requirements { file, options } => python_run(
                img,
                &mut venv_set,
                &[
                    uv_mount(o),
                    format!(
                        "--mount=type=bind,source={},target=/tmp/imgbuild-requirements.txt",
                        word(file)
                    ),
                ],
                &format!(
                    "uv pip install --python {}/bin/python{} -r /tmp/imgbuild-requirements.txt",
                    img.venv,
                    index_flags(options)
                ),
            ),
            other => {
                return Err(unsupported(
                    img,
                    &format!("a {} layer in a Dockerfile export", other.key()),
                ));
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    if img.uv {
        out.push_str(&python_run(
            img,
            &mut venv_set,
            &[uv_mount(o)],
            &format!("uv pip install --python {}/bin/python uv", img.venv),
        ));
        out.push('\n');
    }
    Ok(())
}

/// A RUN of uv in the image; the first one makes the venv and sets the
/// environment imgbuild's Python layers set.
fn python_run(img: &ImageDef, venv_set: &mut bool, mounts: &[String], cmd: &str) -> String {
    let mut s = String::new();
    let mut flags: Vec<String> = mounts.to_vec();
    flags.push("--mount=type=cache,target=/root/.cache/uv".into());
    if !*venv_set {
        *venv_set = true;
        let _ = writeln!(s, "RUN {} uv venv {}", uv_flags(&flags[..1]), img.venv);
        let _ = writeln!(s, "ENV VIRTUAL_ENV={v} PATH={v}/bin:$PATH", v = img.venv);
    }
    let _ = write!(s, "RUN {} {cmd}", uv_flags(&flags));
    s
}

fn uv_flags(flags: &[String]) -> String {
    flags.join(" \\\n    ")
}

fn uv_mount(o: &ExportOptions) -> String {
    format!(
        "--mount=from={},source=/uv,target=/usr/local/bin/uv",
        o.uv_image
    )
}

fn index_flags(o: &PipOptions) -> String {
    let mut s = String::new();
    if let Some(u) = &o.index_url {
        let _ = write!(s, " --index-url {}", word(u));
    }
    for u in &o.extra_index_urls {
        let _ = write!(s, " --extra-index-url {}", word(u));
    }
    if o.pre {
        s.push_str(" --prerelease allow");
    }
    s
}

fn run_flags(r: &RunOptions) -> String {
    let mut f: Vec<String> = Vec::new();
    for c in &r.cache_mounts {
        f.push(format!("--mount=type=cache,target={c},sharing=locked"));
    }
    for b in &r.bind_mounts {
        if let Some((src, dst)) = b.split_once(':') {
            f.push(format!("--mount=type=bind,source={src},target={dst}"));
        }
    }
    for t in &r.tmpfs_mounts {
        f.push(format!("--mount=type=tmpfs,target={t}"));
    }
    for s in &r.secret_mounts {
        let mut parts = s.split(',');
        let id = parts.next().unwrap_or_default();
        let mut m = format!("--mount=type=secret,id={id}");
        for p in parts {
            let _ = write!(m, ",{p}");
        }
        f.push(m);
    }
    if !r.network {
        f.push("--network=none".into());
    }
    if r.insecure {
        f.push("--security=insecure".into());
    }
    if f.is_empty() {
        String::new()
    } else {
        format!("{} \\\n    ", f.join(" \\\n    "))
    }
}

fn owner_flags(chown: &Option<Owner>, chmod: &Option<u32>) -> String {
    let mut s = String::new();
    if let Some(o) = chown {
        let _ = write!(s, "--chown={}:{} ", o.uid, o.gid);
    }
    if let Some(m) = chmod {
        let _ = write!(s, "--chmod={m:04o} ");
    }
    s
}

/// `KEY="value"` pairs with Dockerfile double-quote escapes (`$` left for
/// the same expansion imgbuild does).
fn pairs(vars: &[(String, String)]) -> String {
    vars.iter()
        .map(|(k, v)| {
            format!(
                "{}=\"{}\"",
                quote_key(k),
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_key(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
    {
        k.to_string()
    } else {
        format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

/// `COPY [flags] SRC DST`, in the JSON form when a path needs quoting.
fn copy_line(flags: &str, src: &str, dst: &str) -> String {
    let plain = |p: &str| !p.is_empty() && !p.chars().any(|c| c.is_whitespace() || c == '"');
    if plain(src) && plain(dst) {
        format!("COPY {flags}{src} {dst}")
    } else {
        format!("COPY {flags}{}", json(&[src.to_string(), dst.to_string()]))
    }
}

/// A word for RUN lines: JSON-quoted when it has spaces.
fn word(s: &str) -> String {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        serde_json::to_string(s).expect("serializes")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_and_quoting() {
        let r = RunOptions {
            secret_mounts: vec!["tok,env=TOKEN".into()],
            cache_mounts: vec!["/root/.cache/pip".into()],
            bind_mounts: vec!["scripts:/mnt/s".into()],
            tmpfs_mounts: vec!["/tmp".into()],
            network: false,
            ..Default::default()
        };
        assert_eq!(
            run_flags(&r),
            "--mount=type=cache,target=/root/.cache/pip,sharing=locked \\\n    --mount=type=bind,source=scripts,target=/mnt/s \\\n    --mount=type=tmpfs,target=/tmp \\\n    --mount=type=secret,id=tok,env=TOKEN \\\n    --network=none \\\n    "
        );
        assert_eq!(
            pairs(&[("A".into(), "x \"y\" $B\\".into())]),
            "A=\"x \\\"y\\\" $B\\\\\""
        );
        assert_eq!(
            copy_line("", "my dir/", "/app"),
            "COPY [\"my dir/\",\"/app\"]"
        );
        assert_eq!(
            copy_line("--chown=1:2 ", "src/", "."),
            "COPY --chown=1:2 src/ ."
        );
    }
}

//! Definitions from the places they come from: an `imgbuild.toml` (or the
//! same model as JSON, from a file or text), a Dockerfile, or Flyte's image
//! spec with the build folder the SDK prepared.

pub use crate::dockerfile::frontend::NamedContext;
use crate::error::{Error, Location, Result};
use crate::oci::Platform;
use crate::spec::{self, Definition, Input, Tag};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a definition comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// An `imgbuild.toml`, or a folder holding one. `context` replaces the
    /// definition's own context folder.
    Path {
        path: PathBuf,
        context: Option<PathBuf>,
    },
    /// A definition's text (TOML, or JSON when it starts with `{`), reported
    /// under `name`, with its context folder.
    Text {
        text: String,
        name: PathBuf,
        context: PathBuf,
    },
    /// A Dockerfile and its build context; its target stage (the last one
    /// by default) is the result image, named after the context folder.
    Dockerfile {
        file: PathBuf,
        context: PathBuf,
        build_args: BTreeMap<String, String>,
        target: Option<String>,
        /// Empty: this host's platform.
        platforms: Vec<Platform>,
        /// `--build-context NAME=…` (see [`parse_build_context`]).
        contexts: BTreeMap<String, NamedContext>,
    },
    /// Flyte's `ImageSpec` (JSON) and the build folder the SDK prepared.
    Flyte {
        spec: PathBuf,
        context: PathBuf,
        /// Replace the spec's platforms when not empty.
        platforms: Vec<Platform>,
    },
}

impl Source {
    /// Whether the result is one target image with stages below it (a
    /// Dockerfile), rather than every image of a definition.
    pub fn is_dockerfile(&self) -> bool {
        matches!(self, Source::Dockerfile { .. })
    }

    /// Whether the context holds exactly what should be copied (Flyte's
    /// build folder: the SDK already applied the user's ignore rules).
    pub fn is_prepared_context(&self) -> bool {
        matches!(self, Source::Flyte { .. })
    }
}

/// Loads and validates a definition; `profile` applies per-environment
/// variants. Dockerfile bases (`base = { dockerfile = … }`) are expanded
/// into images of the definition.
pub fn load(source: &Source, profile: Option<&str>) -> Result<Definition> {
    load_with(source, profile, None)
}

/// [`load`], a Dockerfile's image bases' ONBUILD triggers looked up with
/// `triggers` (a build has registry access; loading alone does not).
pub(crate) fn load_with(
    source: &Source,
    profile: Option<&str>,
    triggers: Option<&crate::dockerfile::frontend::BaseTriggers>,
) -> Result<Definition> {
    let mut def = match source {
        Source::Path { path, context } => {
            let mut def = spec::load(Input::Path(path), profile)?;
            if let Some(c) = context {
                def.context = c.clone();
            }
            def
        }
        Source::Text {
            text,
            name,
            context,
        } => spec::load(
            Input::Text {
                text: text.clone(),
                name: name.clone(),
                context: context.clone(),
            },
            profile,
        )?,
        Source::Dockerfile {
            file,
            context,
            build_args,
            target,
            platforms,
            contexts,
        } => {
            return dockerfile(
                file,
                context,
                build_args,
                target.as_deref(),
                platforms,
                contexts,
                triggers,
            );
        }
        Source::Flyte {
            spec,
            context,
            platforms,
        } => return flyte(spec, context, platforms, profile),
    };
    crate::dockerfile::frontend::expand_bases(&mut def)?;
    Ok(def)
}

/// A Dockerfile as a definition: the stages its target needs.
fn dockerfile(
    file: &Path,
    context: &Path,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    platforms: &[Platform],
    contexts: &BTreeMap<String, NamedContext>,
    triggers: Option<&crate::dockerfile::frontend::BaseTriggers>,
) -> Result<Definition> {
    let platforms = if platforms.is_empty() {
        vec![Platform::host()]
    } else {
        platforms.to_vec()
    };
    let name = absolute(context)
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "image".into());
    crate::dockerfile::frontend::load(&crate::dockerfile::frontend::FrontendOptions {
        dockerfile: file,
        context,
        build_args,
        target,
        platforms,
        name,
        tag: Tag::Explicit("latest".into()),
        contexts,
        base_triggers: triggers,
    })
}

/// Flyte's image spec as a definition of one image,
/// [`crate::flyte::IMAGE`]. Errors name the spec's fields.
fn flyte(
    spec_file: &Path,
    context: &Path,
    platforms: &[Platform],
    profile: Option<&str>,
) -> Result<Definition> {
    if !context.is_dir() {
        return Err(Error::input(context, "the build context is not a folder"));
    }
    let context = absolute(context);
    let (mut text, spec_layers) = crate::flyte::definition_text(spec_file, &context)?;
    if !platforms.is_empty() {
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("made as JSON");
        let names: Vec<String> = platforms.iter().map(Platform::to_string).collect();
        v["images"][crate::flyte::IMAGE]["platforms"] = serde_json::json!(names);
        text = v.to_string();
    }
    let mut def = spec::load(
        Input::Text {
            text,
            name: spec_file.to_path_buf(),
            context,
        },
        profile,
    )?;
    for img in &mut def.images {
        let at = |field: &str| Location {
            file: spec_file.to_path_buf(),
            line: 0,
            column: 0,
            field: field.to_string(),
        };
        img.loc = at("spec");
        img.base_loc = at("spec.baseImage");
        img.uv_loc = at("spec");
        for (j, l) in img.layers.iter_mut().enumerate() {
            l.loc = match j.checked_sub(crate::flyte::HEADER_LAYERS) {
                None => at("spec (the venv's environment Flyte's builder sets)"),
                Some(i) if i < spec_layers => at(&format!("spec.layers[{i}]")),
                Some(_) => at("spec (the flyte user Flyte's builder runs as)"),
            };
        }
    }
    Ok(def)
}

/// A canonical absolute path, also for paths that do not exist yet.
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            absolute(parent).join(name)
        }
        _ => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf()),
    }
}

/// One `--build-context` in buildx's form: `NAME=PATH` (a local folder),
/// `NAME=docker-image://REF` or `NAME=oci-layout://PATH[:TAG|@sha256:…]`.
/// Relative paths start at the current folder.
pub fn parse_build_context(s: &str) -> std::result::Result<(String, NamedContext), String> {
    let (name, value) = s
        .split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("--build-context {s:?} is not NAME=VALUE"))?;
    let ctx = if let Some(r) = value.strip_prefix("docker-image://") {
        crate::registry::Reference::parse(r).map_err(|m| format!("--build-context {s:?}: {m}"))?;
        NamedContext::Image(spec::Base::Ref(r.to_string()))
    } else if let Some(l) = value.strip_prefix("oci-layout://") {
        oci_layout_context(s, l)?
    } else if value.contains("://") || value.starts_with("target:") || value.starts_with("git@") {
        return Err(format!(
            "--build-context {s:?}: only a local folder, docker-image:// and oci-layout:// are supported (not URLs, git or bake targets)"
        ));
    } else {
        let dir = absolute(Path::new(value));
        if !dir.is_dir() {
            return Err(format!(
                "--build-context {s:?}: {} is not a folder",
                dir.display()
            ));
        }
        NamedContext::Local(dir)
    };
    Ok((name.to_string(), ctx))
}

/// `oci-layout://PATH[:TAG|@sha256:…]`: a layout image by tag (default
/// `latest`) or by the digest of one of its manifests or indexes.
fn oci_layout_context(s: &str, l: &str) -> std::result::Result<NamedContext, String> {
    let (path, digest) = match l.split_once('@') {
        Some((p, d)) => (p, Some(d)),
        None => (l, None),
    };
    let (dir, tag) = match digest {
        Some(_) => (PathBuf::from(path), None),
        None => match path.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') => (PathBuf::from(d), Some(t.to_string())),
            _ => (PathBuf::from(path), Some("latest".to_string())),
        },
    };
    let dir = absolute(&dir);
    let index = dir.join("index.json");
    let tag = match digest {
        None => tag,
        Some(d) => {
            let bytes = std::fs::read(&index)
                .map_err(|e| format!("--build-context {s:?}: {}: {e}", index.display()))?;
            let ix: crate::oci::types::Index = serde_json::from_slice(&bytes)
                .map_err(|e| format!("--build-context {s:?}: {}: {e}", index.display()))?;
            let m = ix
                .manifests
                .iter()
                .find(|m| m.digest.to_string() == d)
                .ok_or_else(|| {
                    format!("--build-context {s:?}: no image {d} in {}", index.display())
                })?;
            let name = m
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::oci::types::ANN_REF_NAME))
                .ok_or_else(|| {
                    format!(
                        "--build-context {s:?}: {d} has no tag in {}; name it by tag",
                        index.display()
                    )
                })?;
            Some(name.clone())
        }
    };
    if !index.is_file() {
        return Err(format!(
            "--build-context {s:?}: {} is not an OCI layout (no index.json)",
            dir.display()
        ));
    }
    Ok(NamedContext::Image(spec::Base::Layout { dir, tag }))
}

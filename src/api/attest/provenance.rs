//! The provenance of an image: an in-toto statement (v1) with a SLSA
//! provenance (v1) predicate, one per platform manifest.
//!
//! It names every input by digest: the definition (or Dockerfile, or Flyte
//! spec) file, the parameters that are not in it (target, platforms,
//! profile, build args; never a secret, whose values a build only mounts),
//! the bases' manifest digests, the lock files (imgbuild.lock, uv.lock, the
//! locks resolved for `pip_packages`), and the commit of the context when
//! it is a git checkout. Files are named relative to the definition or the
//! context, never by host path; times are the build's `SOURCE_DATE_EPOCH`;
//! so two builds of the same inputs, in other folders and stores, give the
//! same bytes.

use crate::api::Source;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::output::PlatformOut;
use crate::plan::{BasePlan, Plan};
use crate::spec::LayerKind;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

/// The media type (and artifact type) of a statement.
pub const MT_IN_TOTO: &str = "application/vnd.in-toto+json";
const STATEMENT: &str = "https://in-toto.io/Statement/v1";
const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// What kind of build this is, and who built it.
const BUILD_TYPE: &str = "urn:imgbuild:build:v1";
const BUILDER: &str = "urn:imgbuild:builder";

fn sha256(d: &Digest) -> Value {
    json!({"sha256": d.hex()})
}

/// A file's name and digest, as a resolved dependency.
fn file_dep(name: &str, path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(path, format!("cannot read it for the provenance: {e}")))?;
    Ok(json!({"name": name, "digest": sha256(&Digest::of(&bytes))}))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The images `i` is made from, itself first (its bases, the images its
/// steps copy from or mount), each once.
fn closure(plan: &Plan, i: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut todo = vec![i];
    while let Some(j) = todo.pop() {
        if seen.contains(&j) {
            continue;
        }
        seen.push(j);
        let img = &plan.images[j];
        if let BasePlan::Image(b) = img.base {
            todo.push(b);
        }
        for s in &img.steps {
            todo.extend(s.reads_images());
        }
    }
    seen
}

/// The statement about platform manifest `p` of image `i`.
pub fn statement(
    plan: &Plan,
    i: usize,
    p: &PlatformOut,
    name: &str,
    source: &Source,
    mode: super::Provenance,
) -> Result<Vec<u8>> {
    let img = &plan.images[i];
    let def = &plan.definition;
    let mut deps: Vec<Value> = Vec::new();
    // The file the build was asked to build, and what the request adds.
    let mut external = serde_json::Map::new();
    let (kind, file) = match source {
        Source::Path { .. } => ("definition", def.file.as_path()),
        Source::Text { name, text, .. } => {
            external.insert(
                "source".into(),
                json!({"kind": "definition", "name": file_name(name), "digest": sha256(&Digest::of(text.as_bytes()))}),
            );
            ("definition", Path::new(""))
        }
        Source::Dockerfile {
            file,
            build_args,
            target,
            contexts,
            ..
        } => {
            external.insert("buildArgs".into(), json!(build_args));
            if let Some(t) = target {
                external.insert("target".into(), json!(t));
            }
            if !contexts.is_empty() {
                let names: Vec<&String> = contexts.keys().collect();
                external.insert("buildContexts".into(), json!(names));
            }
            ("dockerfile", file.as_path())
        }
        Source::Flyte { spec, .. } => ("flyte-spec", spec.as_path()),
    };
    if !external.contains_key("source") {
        let bytes = std::fs::read(file)
            .map_err(|e| Error::input(file, format!("cannot read it for the provenance: {e}")))?;
        external.insert(
            "source".into(),
            json!({"kind": kind, "name": file_name(file), "digest": sha256(&Digest::of(&bytes))}),
        );
    }
    external.insert("image".into(), json!(img.id));
    let platforms: Vec<String> = img.platforms.iter().map(|x| x.to_string()).collect();
    external.insert("platforms".into(), json!(platforms));
    if let Some(pr) = &plan.options.profile {
        external.insert("profile".into(), json!(pr));
    }
    // What the image is made from.
    let mut named = BTreeSet::new();
    for j in closure(plan, i) {
        let other = &plan.images[j];
        let pi = other
            .platforms
            .iter()
            .position(|x| x.to_string() == p.platform)
            .unwrap_or(0);
        let dep = match &other.base {
            BasePlan::Remote { reference, images } => images.get(pi).map(|b| {
                json!({"uri": format!("docker://{reference}"), "digest": sha256(&b.manifest_digest)})
            }),
            BasePlan::Layout { reference, images } => images.get(pi).map(|b| {
                // The layout's tag, not its folder (a host path).
                let tag = reference.rsplit_once(':').map(|x| x.1).unwrap_or("");
                json!({"name": format!("oci-layout:{tag}"), "digest": sha256(&b.manifest_digest)})
            }),
            BasePlan::Scratch | BasePlan::Image(_) => None,
        };
        if let Some(d) = dep
            && named.insert(d.to_string())
        {
            deps.push(d);
        }
        // uv projects' locks, named from the context.
        for l in plan.definition.images[j]
            .layers
            .iter()
            .filter_map(|l| match l.kind.inner() {
                LayerKind::UvProject { pyproject, .. } => Some(pyproject),
                _ => None,
            })
        {
            // `uv_project` names the project's folder or its pyproject.toml.
            let (p, rel) = (def.context.join(l), Path::new(l));
            let (dir, rel_dir) = if p.is_dir() {
                (p.clone(), rel)
            } else {
                let parent = |x: &Path| x.parent().map(Path::to_path_buf).unwrap_or_default();
                (parent(&p), rel.parent().unwrap_or(Path::new("")))
            };
            let d = file_dep(
                &rel_dir.join("uv.lock").to_string_lossy(),
                &dir.join("uv.lock"),
            )?;
            if named.insert(d.to_string()) {
                deps.push(d);
            }
        }
    }
    if let Some((path, _, _)) = &plan.debian_lock
        && path.is_file()
    {
        deps.push(file_dep(&file_name(path), path)?);
    }
    for (key, (mt, data)) in &plan.cache_data {
        if *mt == crate::registry::cache::MT_PYLOCK {
            deps.push(json!({
                "name": format!("pip_packages lock {}", key.short()),
                "digest": sha256(&Digest::of(data)),
            }));
        }
    }
    if let Some(g) = git_commit(&def.context) {
        deps.push(g);
    }
    let mut run = json!({
        "builder": {"id": BUILDER, "version": {"imgbuild": env!("CARGO_PKG_VERSION")}},
        "metadata": {
            "startedOn": crate::oci::types::rfc3339(plan.options.source_date_epoch),
            "finishedOn": crate::oci::types::rfc3339(plan.options.source_date_epoch),
        },
    });
    if mode == super::Provenance::Max {
        let layers: Vec<Value> = p
            .layers
            .iter()
            .enumerate()
            .map(|(n, l)| {
                // A base layer's step names the base as given (maybe a
                // host path); whether a layer was cached is this
                // machine's business, not the image's.
                let name = if l.cache == "base" {
                    format!("base layer {}", n + 1)
                } else {
                    l.step.clone()
                };
                json!({
                    "name": name,
                    "digest": sha256(&l.digest),
                    "annotations": {"diff_id": l.diff_id.oci()},
                })
            })
            .collect();
        run["byproducts"] = json!(layers);
    }
    let statement = json!({
        "_type": STATEMENT,
        "subject": [{"name": name, "digest": sha256(&p.manifest_digest)}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "sourceDateEpoch": plan.options.source_date_epoch,
                    "compression": format!("{:?}", plan.options.compression).to_lowercase(),
                    "steps": img.steps.iter().filter(|s| s.applies_to(platform_index(img, p))).count(),
                },
                "resolvedDependencies": deps,
            },
            "runDetails": run,
        },
    });
    Ok(serde_json::to_vec_pretty(&statement).expect("serializes"))
}

fn platform_index(img: &crate::plan::ImagePlan, p: &PlatformOut) -> usize {
    img.platforms
        .iter()
        .position(|x| x.to_string() == p.platform)
        .unwrap_or(0)
}

/// The commit checked out in the git work tree holding `dir`, with the
/// `origin` remote's URL when it is a network URL (credentials removed).
fn git_commit(dir: &Path) -> Option<Value> {
    let root = dir.ancestors().find(|d| d.join(".git").is_dir())?;
    let git = root.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let commit = match head.strip_prefix("ref: ") {
        None => head.to_string(),
        Some(r) => match std::fs::read_to_string(git.join(r)) {
            Ok(c) => c.trim().to_string(),
            Err(_) => std::fs::read_to_string(git.join("packed-refs"))
                .ok()?
                .lines()
                .find_map(|l| {
                    let (c, name) = l.split_once(' ')?;
                    (name == r).then(|| c.to_string())
                })?,
        },
    };
    if commit.len() < 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let origin = std::fs::read_to_string(git.join("config"))
        .ok()
        .and_then(|cfg| {
            let mut in_origin = false;
            for line in cfg.lines() {
                let t = line.trim();
                if t.starts_with('[') {
                    in_origin = t == "[remote \"origin\"]";
                } else if in_origin && let Some(u) = t.strip_prefix("url") {
                    return Some(u.trim_start().trim_start_matches('=').trim().to_string());
                }
            }
            None
        })
        .and_then(|u| crate::sbom::public_url(&u));
    let mut v = json!({"name": "context", "digest": {"gitCommit": commit}});
    if let Some(u) = origin {
        v["uri"] = json!(format!("git+{u}"));
    }
    Some(v)
}

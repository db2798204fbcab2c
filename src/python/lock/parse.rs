//! Raw TOML to the model: format version, markers, hashes, sources, artifacts (§1.1–§1.4).

use std::collections::BTreeMap;

use super::super::markers::{Marker, Specifiers, Version, normalize_name};
use super::super::tags::WheelName;
use super::edges::link_edges;
use super::error::LockError;
use super::location::{sdist_location, wheel_location};
use super::model::{
    ConflictItem, Dependency, Lock, Package, Requirement, SdistRef, Source, WheelRef,
};
use super::raw::{
    RawArtifact, RawConflictItem, RawDependency, RawHead, RawLock, RawManifest, RawPackage,
    RawRequirement, RawSource,
};

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A short rendering of a scalar for error messages (no dependency on toml's `display`
/// feature).
fn describe_toml_value(value: &toml::Value) -> String {
    match value {
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

fn syntax_error(text: &str, file: &str, err: &toml::de::Error) -> LockError {
    let location = match err.span() {
        Some(span) => format!("{file}:{}", line_of(text, span.start)),
        None => file.to_string(),
    };
    LockError::Syntax {
        location,
        message: err.message().trim().to_string(),
    }
}

/// Parses `algo:hex`; returns (hash as written, sha256 hex when the algorithm is sha256).
fn parse_hash(raw: &str) -> Result<(String, Option<String>), String> {
    let Some((algo, digest)) = raw.split_once(':') else {
        return Err(format!("`{raw}` is not of the form `algorithm:hex`"));
    };
    let algo = algo.to_ascii_lowercase();
    let expected_len = match algo.as_str() {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        "md5" => Some(32),
        "blake2b" => None,
        _ => return Err(format!("unknown hash algorithm `{algo}` in `{raw}`")),
    };
    if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{raw}` does not end in a hexadecimal digest"));
    }
    if expected_len.is_some_and(|n| n != digest.len()) {
        return Err(format!(
            "`{raw}` has a digest of the wrong length for {algo}"
        ));
    }
    let sha256 = (algo == "sha256").then(|| digest.to_ascii_lowercase());
    Ok((raw.to_string(), sha256))
}

fn convert_source(raw: &RawSource) -> Result<Source, String> {
    let mut found = Vec::new();
    let mut push = |key: &str, value: &Option<String>, make: &dyn Fn(String) -> Source| {
        if let Some(v) = value {
            found.push((key.to_string(), make(v.clone())));
        }
    };
    push("registry", &raw.registry, &Source::Registry);
    push("git", &raw.git, &Source::Git);
    push("url", &raw.url, &|url| Source::Url {
        url,
        subdirectory: raw.subdirectory.clone(),
    });
    push("path", &raw.path, &Source::Path);
    push("directory", &raw.directory, &Source::Directory);
    push("editable", &raw.editable, &Source::Editable);
    push("virtual", &raw.virtual_, &Source::Virtual);
    match found.len() {
        1 => Ok(found.pop().expect("one source").1),
        0 => Err(
            "expected exactly one of registry, git, url, path, directory, editable, virtual".into(),
        ),
        _ => Err(format!(
            "expected exactly one source kind, found {}",
            found
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

struct Builder<'a> {
    file: &'a str,
}

impl Builder<'_> {
    fn invalid(&self, context: &str, field: &str, message: impl Into<String>) -> LockError {
        LockError::Invalid {
            file: self.file.to_string(),
            context: context.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn marker(&self, context: &str, field: &str, text: &str) -> Result<Marker, LockError> {
        Marker::parse(text).map_err(|e| self.invalid(context, field, e.to_string()))
    }

    fn markers(
        &self,
        context: &str,
        field: &str,
        texts: &[String],
    ) -> Result<Vec<Marker>, LockError> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| self.marker(context, &format!("{field}[{i}]"), t))
            .collect()
    }

    fn requirement(&self, field: &str, raw: &RawRequirement) -> Result<Requirement, LockError> {
        Ok(Requirement {
            name: normalize_name(&raw.name),
            extras: raw.extras.iter().map(|e| normalize_name(e)).collect(),
            marker: raw
                .marker
                .as_deref()
                .map(|m| self.marker("manifest", &format!("{field}.marker"), m))
                .transpose()?,
        })
    }

    fn dependencies(
        &self,
        context: &str,
        field: &str,
        raw: &[RawDependency],
    ) -> Result<Vec<Dependency>, LockError> {
        raw.iter()
            .enumerate()
            .map(|(i, d)| {
                let field = format!("{field}[{i}]");
                Ok(Dependency {
                    name: normalize_name(&d.name),
                    version: d.version.clone(),
                    source: d
                        .source
                        .as_ref()
                        .map(convert_source)
                        .transpose()
                        .map_err(|m| self.invalid(context, &format!("{field}.source"), m))?,
                    extras: d.extra.iter().map(|e| normalize_name(e)).collect(),
                    marker: d
                        .marker
                        .as_deref()
                        .map(|m| self.marker(context, &format!("{field}.marker"), m))
                        .transpose()?,
                    target: usize::MAX,
                })
            })
            .collect()
    }

    fn wheel(
        &self,
        context: &str,
        field: &str,
        raw: &RawArtifact,
        source: &Source,
    ) -> Result<WheelRef, LockError> {
        let (location, filename) =
            wheel_location(raw, source).map_err(|m| self.invalid(context, field, m))?;
        let wheel =
            WheelName::parse(&filename).map_err(|e| self.invalid(context, field, e.to_string()))?;
        let (hash, sha256) = match &raw.hash {
            Some(h) => {
                let (hash, sha) = parse_hash(h)
                    .map_err(|m| self.invalid(context, &format!("{field}.hash"), m))?;
                (Some(hash), sha)
            }
            None => (None, None),
        };
        Ok(WheelRef {
            location,
            filename,
            sha256,
            hash,
            size: raw.size,
            wheel,
        })
    }

    fn sdist(
        &self,
        context: &str,
        raw: &RawArtifact,
        source: &Source,
    ) -> Result<SdistRef, LockError> {
        let location = sdist_location(raw, source);
        let (hash, sha256) = match &raw.hash {
            Some(h) => {
                let (hash, sha) =
                    parse_hash(h).map_err(|m| self.invalid(context, "sdist.hash", m))?;
                (Some(hash), sha)
            }
            None => (None, None),
        };
        Ok(SdistRef {
            location,
            sha256,
            hash,
            size: raw.size,
        })
    }

    fn package(&self, index: usize, raw: &RawPackage) -> Result<Package, LockError> {
        let name = normalize_name(&raw.name);
        let context = match &raw.version {
            Some(v) => format!("package `{name}` {v}"),
            None => format!("package `{name}`"),
        };
        if let Some(v) = &raw.version {
            Version::parse(v).map_err(|e| self.invalid(&context, "version", e.to_string()))?;
        }
        let source = match &raw.source {
            Some(s) => convert_source(s).map_err(|m| self.invalid(&context, "source", m))?,
            None => {
                return Err(self.invalid(
                    &context,
                    "source",
                    format!("missing (entry {} of [[package]])", index + 1),
                ));
            }
        };
        let mut optional_dependencies = BTreeMap::new();
        for (extra, deps) in &raw.optional_dependencies {
            let field = format!("optional-dependencies.{extra}");
            optional_dependencies.insert(
                normalize_name(extra),
                self.dependencies(&context, &field, deps)?,
            );
        }
        let mut dependency_groups = BTreeMap::new();
        for (group, deps) in &raw.dev_dependencies {
            let field = format!("dev-dependencies.{group}");
            dependency_groups.insert(
                normalize_name(group),
                self.dependencies(&context, &field, deps)?,
            );
        }
        let wheels = raw
            .wheels
            .iter()
            .enumerate()
            .map(|(i, w)| self.wheel(&context, &format!("wheels[{i}]"), w, &source))
            .collect::<Result<Vec<_>, _>>()?;
        let sdist = raw
            .sdist
            .as_ref()
            .map(|s| self.sdist(&context, s, &source))
            .transpose()?;
        let (provides_extras, declared_groups) = match &raw.metadata {
            Some(m) => (
                m.provides_extras
                    .iter()
                    .map(|e| normalize_name(e))
                    .collect(),
                m.requires_dev.keys().map(|g| normalize_name(g)).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Package {
            resolution_markers: self.markers(
                &context,
                "resolution-markers",
                &raw.resolution_markers,
            )?,
            dependencies: self.dependencies(&context, "dependencies", &raw.dependencies)?,
            name,
            version: raw.version.clone(),
            source,
            optional_dependencies,
            dependency_groups,
            sdist,
            wheels,
            provides_extras,
            declared_groups,
        })
    }
}

/// The format version, checked first so that a future format gets a clear message rather
/// than whatever its new shape would make the full parse say.
fn check_format_version(text: &str, file: &str) -> Result<(), LockError> {
    let head: RawHead = toml::from_str(text).map_err(|e| syntax_error(text, file, &e))?;
    let Some(version) = head.version else {
        return Err(LockError::MissingVersion {
            file: file.to_string(),
        });
    };
    if version.get_ref().as_integer() != Some(1) {
        return Err(LockError::UnsupportedVersion {
            location: format!("{file}:{}", line_of(text, version.span().start)),
            found: describe_toml_value(version.get_ref()),
        });
    }
    Ok(())
}

/// The top-level keys of a lock (everything but `version` and `[[package]]`).
const TOP: &str = "top level";

impl Builder<'_> {
    /// `conflicts`: sets of projects, extras and groups.
    fn conflicts(&self, raw: &[Vec<RawConflictItem>]) -> Result<Vec<Vec<ConflictItem>>, LockError> {
        raw.iter()
            .enumerate()
            .map(|(i, set)| {
                set.iter()
                    .enumerate()
                    .map(|(j, item)| self.conflict_item(&format!("conflicts[{i}][{j}]"), item))
                    .collect()
            })
            .collect()
    }

    fn conflict_item(
        &self,
        field: &str,
        item: &RawConflictItem,
    ) -> Result<ConflictItem, LockError> {
        let package = normalize_name(&item.package);
        match (&item.extra, &item.group) {
            (None, None) => Ok(ConflictItem::Project(package)),
            (Some(e), None) => Ok(ConflictItem::Extra(package, normalize_name(e))),
            (None, Some(g)) => Ok(ConflictItem::Group(package, normalize_name(g))),
            (Some(_), Some(_)) => Err(self.invalid(
                TOP,
                field,
                "an item has either `extra` or `group`, not both",
            )),
        }
    }

    /// `manifest.requirements` and `manifest.dependency-groups`.
    #[allow(clippy::type_complexity)]
    fn manifest(
        &self,
        raw: &RawManifest,
    ) -> Result<(Vec<Requirement>, BTreeMap<String, Vec<Requirement>>), LockError> {
        let requirements = raw
            .requirements
            .iter()
            .enumerate()
            .map(|(i, r)| self.requirement(&format!("requirements[{i}]"), r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut groups = BTreeMap::new();
        for (group, reqs) in &raw.dependency_groups {
            let reqs = reqs
                .iter()
                .enumerate()
                .map(|(i, r)| self.requirement(&format!("dependency-groups.{group}[{i}]"), r))
                .collect::<Result<Vec<_>, _>>()?;
            groups.insert(normalize_name(group), reqs);
        }
        Ok((requirements, groups))
    }
}

impl Lock {
    /// Parses lock text; `file` names the lock in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Lock, LockError> {
        check_format_version(text, file)?;
        let raw: RawLock = toml::from_str(text).map_err(|e| syntax_error(text, file, &e))?;
        let b = Builder { file };

        let requires_python = raw
            .requires_python
            .as_deref()
            .map(|s| {
                Specifiers::parse(s).map_err(|e| b.invalid(TOP, "requires-python", e.to_string()))
            })
            .transpose()?;
        let conflicts = b.conflicts(&raw.conflicts)?;
        let (manifest_requirements, manifest_groups) = b.manifest(&raw.manifest)?;
        let mut packages = raw
            .package
            .iter()
            .enumerate()
            .map(|(i, p)| b.package(i, p))
            .collect::<Result<Vec<_>, _>>()?;
        link_edges(file, &mut packages)?;

        Ok(Lock {
            file: file.to_string(),
            version: 1,
            revision: raw
                .revision
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0),
            requires_python_text: raw.requires_python.clone(),
            requires_python,
            resolution_markers: b.markers(TOP, "resolution-markers", &raw.resolution_markers)?,
            supported_markers: b.markers(TOP, "supported-markers", &raw.supported_markers)?,
            conflicts,
            members: raw
                .manifest
                .members
                .iter()
                .map(|m| normalize_name(m))
                .collect(),
            manifest_requirements,
            manifest_groups,
            packages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::lock::fixtures::*;
    use crate::python::lock::{ArtifactLocation, install_set};

    #[test]
    fn parses_the_demo_lock() {
        let lock = parse(&demo_lock());
        assert_eq!(lock.version, 1);
        assert_eq!(lock.revision, 5);
        assert_eq!(lock.requires_python_text.as_deref(), Some(">=3.10"));
        assert_eq!(lock.resolution_markers.len(), 3);
        assert_eq!(
            lock.root_project().map(|p| p.name.as_str()),
            Some("demo-app")
        );
        let root = lock.packages_named("Demo_App").next().unwrap();
        assert_eq!(root.source, Source::Editable(".".into()));
        assert_eq!(root.extra_names(), ["cli", "empty"]);
        assert_eq!(root.group_names(), ["dev", "docs"]);
        let numpy_edges: Vec<_> = root
            .dependencies
            .iter()
            .filter(|d| d.name == "numpy")
            .map(|d| lock.packages[d.target()].version.clone().unwrap())
            .collect();
        assert_eq!(numpy_edges, ["2.2.6", "2.4.6", "2.5.3"]);
        let anyio = lock.packages_named("anyio").next().unwrap();
        let w = &anyio.wheels[0];
        assert_eq!(w.filename, "anyio-4.15.1-py3-none-any.whl");
        assert_eq!(
            w.location,
            ArtifactLocation::Url(
                "https://index.example/files/anyio-4.15.1-py3-none-any.whl".into()
            )
        );
        assert_eq!(w.sha256.as_deref(), Some(sha('a').as_str()));
        assert_eq!(w.size, Some(1234));
        let sd = anyio.sdist.as_ref().unwrap();
        assert_eq!(sd.size, Some(276966));
        assert_eq!(sd.sha256.as_deref(), Some(sha('b').as_str()));
    }

    #[test]
    fn format_version_and_aliases() {
        let err =
            Lock::parse("# comment\n\nversion = 2\nrevision = 1\n", "app/uv.lock").unwrap_err();
        assert_eq!(
            err.to_string(),
            "app/uv.lock:3: unsupported uv.lock format: key `version` is 2, but only version 1 is supported"
        );
        let err = Lock::parse("version = \"1\"\n", "uv.lock").unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock:1: unsupported uv.lock format: key `version` is \"1\", but only version 1 is supported"
        );
        let err = Lock::parse("revision = 1\n", "uv.lock").unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: key `version` is missing; this does not look like a uv.lock file"
        );
        let err = Lock::parse("version = 1\n[[package]\n", "uv.lock").unwrap_err();
        assert!(
            err.to_string().starts_with("uv.lock:2: invalid uv.lock:"),
            "{err}"
        );
        // Missing revision is 0; unknown keys are ignored; `distribution`, `dependency-groups`
        // and `upload_time` are accepted.
        let text = format!(
            r#"version = 1
requires-python = ">=3.8"
future-key = {{ anything = true }}

[[distribution]]
name = "p"
version = "1.0"
source = {{ editable = "." }}
future-package-key = 1

[distribution.dependency-groups]
Test_Tools = [{{ name = "q" }}]

[[distribution]]
name = "q"
version = "2.0"
source = {{ registry = "{IDX}" }}
wheels = [{{ url = "https://index.example/q-2.0-py3-none-any.whl", hash = "sha256:{}", upload_time = "2025-01-01T00:00:00Z" }}]
"#,
            sha('c')
        );
        let lock = parse(&text);
        assert_eq!(lock.revision, 0);
        assert_eq!(lock.packages.len(), 2);
        let set = install_set(
            &lock,
            "p",
            &env("3.12.7", "amd64"),
            &[],
            &["test-tools"],
            false,
        )
        .unwrap();
        assert_eq!(names(&set), ["q==2.0"]);
    }

    #[test]
    fn field_errors_name_file_package_and_field() {
        let cases: Vec<(String, &str)> = vec![
            (
                format!("version = 1\n{}", pkg("a", "1.0", &[], "dependencies = [{ name = \"b\", marker = \"python_version >= '3.8' and\" }]")),
                "uv.lock: package `a` 1.0: field `dependencies[0].marker`: invalid marker",
            ),
            (
                format!("version = 1\n{}", pkg("a", "1.0", &[], "dependencies = [{ name = \"missing\" }]")),
                "uv.lock: package `a`: field `dependencies[0]`: `missing` matches no [[package]] entry",
            ),
            (
                format!(
                    "version = 1\n{}{}{}",
                    pkg("a", "1.0", &[], "dependencies = [{ name = \"b\" }]"),
                    pure("b", "1.0"),
                    pure("b", "2.0")
                ),
                "uv.lock: package `a`: field `dependencies[0]`: `b` matches 2 [[package]] entries",
            ),
            (
                format!("version = 1\n{}", pkg("a", "1.0", &["a-1.0-py3-none-any.whl"], "").replace("sha256:", "sha1:")),
                "uv.lock: package `a` 1.0: field `wheels[0].hash`: unknown hash algorithm `sha1`",
            ),
            (
                format!("version = 1\n{}", pkg("a", "1.0", &["a-1.0.tar.gz"], "")),
                "uv.lock: package `a` 1.0: field `wheels[0]`: invalid wheel filename `a-1.0.tar.gz`",
            ),
            (
                "version = 1\n[[package]]\nname = \"a\"\nversion = \"1.0\"\nsource = { registry = \"x\", git = \"y\" }\n".to_string(),
                "uv.lock: package `a` 1.0: field `source`: expected exactly one source kind, found registry, git",
            ),
            (
                "version = 1\n[[package]]\nname = \"a\"\nversion = \"1.0\"\n".to_string(),
                "uv.lock: package `a` 1.0: field `source`: missing",
            ),
            (
                "version = 1\nrequires-python = \">=3.x\"\n".to_string(),
                "uv.lock: top level: field `requires-python`: invalid version",
            ),
            (
                "version = 1\n[[package]]\nname = \"a\"\nversion = \"one\"\nsource = { editable = \".\" }\n".to_string(),
                "uv.lock: package `a` one: field `version`: invalid version `one`",
            ),
        ];
        for (text, want) in cases {
            let err = Lock::parse(&text, "uv.lock").expect_err(want);
            assert!(
                err.to_string().starts_with(want),
                "got: {err}\nwant prefix: {want}"
            );
        }
    }

    #[test]
    fn hashes_and_conflict_items() {
        assert!(parse_hash("sha256:abc").is_err());
        assert!(parse_hash("sha256").is_err());
        assert!(parse_hash(&format!("sha256:{}", "g".repeat(64))).is_err());
        assert_eq!(
            parse_hash("blake2b:00ff").unwrap(),
            ("blake2b:00ff".to_string(), None)
        );
        assert_eq!(
            ConflictItem::Extra("proj3".into(), "new".into()).encoded(),
            "extra-5-proj3-new"
        );
        assert_eq!(
            ConflictItem::Group("proj3".into(), "legacy".into()).encoded(),
            "group-5-proj3-legacy"
        );
        assert_eq!(
            ConflictItem::Project("proj3".into()).encoded(),
            "project-5-proj3"
        );
    }
}

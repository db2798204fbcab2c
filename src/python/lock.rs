//! `uv.lock` (format version 1) model, the install-set walk `uv sync` performs, and wheel
//! selection for the resulting packages.
//!
//! * [`Lock::parse`] reads the TOML, checks the format version, parses every marker, hash and
//!   wheel filename, and resolves each dependency edge to the `[[package]]` entry it names
//!   (PYTHON-INSTALL.md §1.1–§1.4), so later steps cannot meet a dangling edge.
//! * [`install_set`] / [`install_set_with`] walk the lock from the roots for one target
//!   environment, with extras and dependency groups, exactly as §1.6 describes (including the
//!   conflict-marker rules of §1.7), and return the packages to install.
//! * [`pick_wheels`] chooses each package's wheel for a [`Target`] (§3.3) and reports every
//!   package that has none.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::markers::{Marker, MarkerEnv, Specifiers, Version, normalize_name};
use super::tags::WheelName;
#[cfg(test)]
use super::tags::{TagIndex, Target};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Everything that can go wrong reading a lock or computing what to install from it.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// TOML syntax error, or a value of the wrong type or a missing required key.
    #[error("{location}: invalid uv.lock: {message}")]
    Syntax {
        /// `file:line` (or just the file when the line is unknown).
        location: String,
        /// The parser's message.
        message: String,
    },
    /// The top-level `version` key is not 1.
    #[error(
        "{location}: unsupported uv.lock format: key `version` is {found}, but only version 1 is supported"
    )]
    UnsupportedVersion {
        /// `file:line` of the `version` key.
        location: String,
        /// The value found.
        found: String,
    },
    /// The top-level `version` key is absent.
    #[error("{file}: key `version` is missing; this does not look like a uv.lock file")]
    MissingVersion {
        /// The lock file.
        file: String,
    },
    /// A field has a value this reader cannot use.
    #[error("{file}: {context}: field `{field}`: {message}")]
    Invalid {
        /// The lock file.
        file: String,
        /// `package `name` version` or `top level`.
        context: String,
        /// The field, e.g. `dependencies[2].marker` or `wheels[0].hash`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A dependency edge names no `[[package]]` entry.
    #[error(
        "{file}: package `{package}`: field `{field}`: `{dependency}` matches no [[package]] entry"
    )]
    UnknownDependency {
        /// The lock file.
        file: String,
        /// The package holding the edge.
        package: String,
        /// The edge's field path.
        field: String,
        /// The edge's target as written (name, and version/source if given).
        dependency: String,
    },
    /// A dependency edge matches several `[[package]]` entries.
    #[error(
        "{file}: package `{package}`: field `{field}`: `{dependency}` matches {count} [[package]] entries; the edge needs `version` and `source` to pick one"
    )]
    AmbiguousDependency {
        /// The lock file.
        file: String,
        /// The package holding the edge.
        package: String,
        /// The edge's field path.
        field: String,
        /// The edge's target as written.
        dependency: String,
        /// How many entries matched.
        count: usize,
    },
    /// The target Python is outside `requires-python`.
    #[error(
        "{file}: target Python {python} does not satisfy the lock's requires-python `{requires_python}`"
    )]
    RequiresPython {
        /// The lock file.
        file: String,
        /// `requires-python` as written.
        requires_python: String,
        /// The target's `python_full_version`.
        python: String,
    },
    /// `supported-markers` is non-empty and none holds for the target.
    #[error(
        "{file}: the target (Python {python}, {machine}) is not compatible with the lock's supported environments (supported-markers: {markers})"
    )]
    UnsupportedEnvironment {
        /// The lock file.
        file: String,
        /// The target's `python_full_version`.
        python: String,
        /// The target's `platform_machine`.
        machine: String,
        /// The `supported-markers` entries.
        markers: String,
    },
    /// A requested root is not in the lock.
    #[error("{file}: root package `{name}` is not in the lock")]
    MissingRoot {
        /// The lock file.
        file: String,
        /// The requested root.
        name: String,
    },
    /// A requested root names several lock entries.
    #[error("{file}: root package `{name}` has {count} entries in the lock; a root must be unique")]
    AmbiguousRoot {
        /// The lock file.
        file: String,
        /// The requested root.
        name: String,
        /// How many entries it has.
        count: usize,
    },
    /// A requested extra is defined by none of the roots.
    #[error("{file}: extra `{extra}` is not defined by {roots} (available extras: {available})")]
    UnknownExtra {
        /// The lock file.
        file: String,
        /// The requested extra.
        extra: String,
        /// The roots, comma-separated.
        roots: String,
        /// The extras the roots define.
        available: String,
    },
    /// A requested dependency group is defined by none of the roots (nor by the workspace).
    #[error(
        "{file}: dependency group `{group}` is not defined by {roots} (available groups: {available})"
    )]
    UnknownGroup {
        /// The lock file.
        file: String,
        /// The requested group.
        group: String,
        /// The roots, comma-separated.
        roots: String,
        /// The groups that exist.
        available: String,
    },
    /// Requested extras/groups that the lock declares mutually exclusive (`conflicts`).
    #[error("{file}: {first} and {second} are incompatible with the declared conflicts")]
    Conflict {
        /// The lock file.
        file: String,
        /// E.g. "Extras `new`" (capitalized, with the kind).
        first: String,
        /// E.g. "`old`" or "group `legacy`".
        second: String,
    },
    /// Dependency edges activated extras that the lock declares mutually exclusive.
    #[error(
        "{file}: found conflicting extras `{package1}[{extra1}]` and `{package2}[{extra2}]` enabled simultaneously"
    )]
    ConflictingExtras {
        /// The lock file.
        file: String,
        /// First package.
        package1: String,
        /// Its extra.
        extra1: String,
        /// Second package.
        package2: String,
        /// Its extra.
        extra2: String,
    },
    /// The walk reached two versions of one package (the lock's forks should prevent this).
    #[error(
        "{file}: package `{name}` was reached at several versions ({versions}) for this target"
    )]
    MultipleVersions {
        /// The lock file.
        file: String,
        /// The package.
        name: String,
        /// The versions reached.
        versions: String,
    },
    /// Some packages have no wheel for the target.
    #[error("{}", no_wheel_message(.target, .missing))]
    #[cfg(test)]
    NoCompatibleWheels {
        /// The target, e.g. `cp312 manylinux_2_36_x86_64`.
        target: String,
        /// One entry per package without a usable wheel.
        missing: Vec<MissingWheel>,
    },
    /// A chosen wheel's filename names a different project or version than its package.
    #[error(
        "package `{package}` {version}: wheel `{filename}` is for `{wheel_name}` {wheel_version}"
    )]
    #[cfg(test)]
    WheelMismatch {
        /// The package.
        package: String,
        /// Its locked version.
        version: String,
        /// The wheel's filename.
        filename: String,
        /// The name in the filename.
        wheel_name: String,
        /// The version in the filename.
        wheel_version: String,
    },
}

#[cfg(test)]
/// A package that [`pick_wheels`] could not serve with a wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingWheel {
    /// Package name.
    pub name: String,
    /// Locked version (`None` for dynamic source-tree versions).
    pub version: Option<String>,
    /// The package source, e.g. ``registry `https://index.example/simple` ``.
    pub source: String,
    /// Filenames of the wheels the lock lists for it.
    pub wheels: Vec<String>,
    /// Whether the lock lists an sdist (which would need a Python build backend).
    pub has_sdist: bool,
}

#[cfg(test)]
impl fmt::Display for MissingWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        write!(f, " ({}): ", self.source)?;
        if self.wheels.is_empty() {
            f.write_str("the lock lists no wheels")?;
        } else {
            write!(f, "none of its wheels fits: {}", self.wheels.join(", "))?;
        }
        if self.has_sdist {
            f.write_str("; an sdist exists, but building it needs Python")
        } else if self.wheels.is_empty() {
            f.write_str(" and no sdist; it must be built from its source")
        } else {
            f.write_str("; there is no sdist to build from")
        }
    }
}

#[cfg(test)]
fn no_wheel_message(target: &str, missing: &[MissingWheel]) -> String {
    let mut msg = format!(
        "{} package{} ha{} no wheel for {target}:",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        if missing.len() == 1 { "s" } else { "ve" },
    );
    for m in missing {
        msg.push_str("\n  - ");
        msg.push_str(&m.to_string());
    }
    msg
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// Where a package comes from (the `source` inline table).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `{ registry = "<index URL or local directory>" }`
    Registry(String),
    /// `{ git = "<url>?<query>#<commit>" }`
    Git(String),
    /// `{ url = "...", subdirectory? }`
    Url {
        /// The archive URL.
        url: String,
        /// Optional subdirectory inside the archive.
        subdirectory: Option<String>,
    },
    /// `{ path = "<file>" }`, relative to the workspace root.
    Path(String),
    /// `{ directory = "<dir>" }`
    Directory(String),
    /// `{ editable = "<dir>" }`
    Editable(String),
    /// `{ virtual = "<dir>" }` (never installed)
    Virtual(String),
}

impl Source {
    /// The source kind: `registry`, `git`, `url`, `path`, `directory`, `editable`, `virtual`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Registry(_) => "registry",
            Source::Git(_) => "git",
            Source::Url { .. } => "url",
            Source::Path(_) => "path",
            Source::Directory(_) => "directory",
            Source::Editable(_) => "editable",
            Source::Virtual(_) => "virtual",
        }
    }

    /// The source's value (URL or path).
    pub fn value(&self) -> &str {
        match self {
            Source::Registry(v)
            | Source::Git(v)
            | Source::Path(v)
            | Source::Directory(v)
            | Source::Editable(v)
            | Source::Virtual(v) => v,
            Source::Url { url, .. } => url,
        }
    }

    /// True when a registry source is a local directory (a flat wheelhouse) rather than a URL.
    pub fn is_local_registry(&self) -> bool {
        matches!(self, Source::Registry(r) if !r.contains("://"))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind(), self.value())?;
        if let Source::Url {
            subdirectory: Some(sub),
            ..
        } = self
        {
            write!(f, " subdirectory `{sub}`")?;
        }
        Ok(())
    }
}

/// Where an artifact is fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArtifactLocation {
    /// A remote URL.
    Url(String),
    /// A path relative to the workspace root (uses `/`).
    Path(String),
}

impl fmt::Display for ArtifactLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactLocation::Url(u) => f.write_str(u),
            ArtifactLocation::Path(p) => f.write_str(p),
        }
    }
}

/// One wheel listed for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelRef {
    /// Where to fetch it.
    pub location: ArtifactLocation,
    /// The wheel filename (percent-decoded).
    pub filename: String,
    /// The SHA-256 digest in lowercase hex, when the lock gives one.
    pub sha256: Option<String>,
    /// The hash exactly as locked (`algo:hex`), whatever the algorithm.
    pub hash: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// The parsed filename.
    pub wheel: WheelName,
}

/// The source distribution listed for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdistRef {
    /// Where to fetch it (`None` when the lock gives only a hash, e.g. for `url` sources whose
    /// source URL is the sdist).
    pub location: Option<ArtifactLocation>,
    /// The SHA-256 digest in lowercase hex.
    pub sha256: Option<String>,
    /// The hash exactly as locked.
    pub hash: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
}

/// A dependency edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// Target name (normalized).
    pub name: String,
    /// Target version, written only when the name is not unique in the lock.
    pub version: Option<String>,
    /// Target source, written only when the name is not unique in the lock.
    pub source: Option<Source>,
    /// Extras of the target this edge activates (normalized).
    pub extras: Vec<String>,
    /// Condition, evaluated only while traversing from the owning package.
    pub marker: Option<Marker>,
    target: usize,
}

impl Dependency {
    #[cfg(test)]
    /// Index of the target in [`Lock::packages`].
    pub fn target(&self) -> usize {
        self.target
    }
}

/// A requirement table from `[manifest]` (`requirements`, `dependency-groups`).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// Name (normalized).
    pub name: String,
    /// Requested extras (normalized).
    pub extras: Vec<String>,
    /// Condition.
    pub marker: Option<Marker>,
}

/// One `[[package]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// Normalized name.
    pub name: String,
    /// Version; `None` for source trees with a dynamic version.
    pub version: Option<String>,
    /// Where it comes from.
    pub source: Source,
    /// Fork markers (informational).
    pub resolution_markers: Vec<Marker>,
    /// Unconditional edges (markers aside).
    pub dependencies: Vec<Dependency>,
    /// Edges per extra (normalized extra names).
    pub optional_dependencies: BTreeMap<String, Vec<Dependency>>,
    /// Edges per dependency group (normalized group names).
    pub dependency_groups: BTreeMap<String, Vec<Dependency>>,
    /// The sdist, if any.
    pub sdist: Option<SdistRef>,
    /// The wheels, in lock order.
    pub wheels: Vec<WheelRef>,
    /// `metadata.provides-extras` (normalized).
    pub provides_extras: Vec<String>,
    /// Keys of `metadata.requires-dev` (normalized).
    pub declared_groups: Vec<String>,
}

impl Package {
    /// Every extra the package defines (edges or metadata), sorted.
    pub fn extra_names(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self
            .optional_dependencies
            .keys()
            .map(String::as_str)
            .chain(self.provides_extras.iter().map(String::as_str))
            .collect();
        set.into_iter().collect()
    }

    /// Every dependency group the package defines (edges or metadata), sorted.
    pub fn group_names(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self
            .dependency_groups
            .keys()
            .map(String::as_str)
            .chain(self.declared_groups.iter().map(String::as_str))
            .collect();
        set.into_iter().collect()
    }
}

/// One entry of a `conflicts` set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictItem {
    /// `{ package }`
    Project(String),
    /// `{ package, extra }`
    Extra(String, String),
    /// `{ package, group }`
    Group(String, String),
}

impl ConflictItem {
    /// The encoding uv uses for this item inside `extra == '…'` conflict markers, e.g.
    /// `extra-5-proj3-new`, `group-5-proj3-legacy`, `project-5-proj3` (the number is the byte
    /// length of the package name).
    pub fn encoded(&self) -> String {
        match self {
            ConflictItem::Project(p) => format!("project-{}-{p}", p.len()),
            ConflictItem::Extra(p, e) => format!("extra-{}-{p}-{e}", p.len()),
            ConflictItem::Group(p, g) => format!("group-{}-{p}-{g}", p.len()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ConflictItem::Project(_) => "package",
            ConflictItem::Extra(..) => "extra",
            ConflictItem::Group(..) => "group",
        }
    }

    fn item_name(&self) -> &str {
        match self {
            ConflictItem::Project(p) => p,
            ConflictItem::Extra(_, n) | ConflictItem::Group(_, n) => n,
        }
    }
}

/// A parsed `uv.lock`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lock {
    /// The file name used in error messages.
    pub file: String,
    /// `version` (always 1).
    pub version: u32,
    /// `revision` (0 when absent).
    pub revision: u32,
    /// `requires-python` as written.
    pub requires_python_text: Option<String>,
    /// `requires-python`, parsed.
    pub requires_python: Option<Specifiers>,
    /// Top-level `resolution-markers`.
    pub resolution_markers: Vec<Marker>,
    /// `supported-markers`.
    pub supported_markers: Vec<Marker>,
    /// `conflicts` sets.
    pub conflicts: Vec<Vec<ConflictItem>>,
    /// `manifest.members` (normalized).
    pub members: Vec<String>,
    /// `manifest.requirements`.
    pub manifest_requirements: Vec<Requirement>,
    /// `manifest.dependency-groups` (normalized group names).
    pub manifest_groups: BTreeMap<String, Vec<Requirement>>,
    /// The `[[package]]` entries in file order.
    pub packages: Vec<Package>,
}

/// A package selected for installation, with its artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Normalized name.
    pub name: String,
    /// Locked version (`None` for dynamic source trees).
    pub version: Option<String>,
    /// Where it comes from.
    pub source: Source,
    /// Wheels in lock order.
    pub wheels: Vec<WheelRef>,
    /// The sdist, if any.
    pub sdist: Option<SdistRef>,
}

// ---------------------------------------------------------------------------------------------
// Raw TOML shapes
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawHead {
    version: Option<toml::Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLock {
    revision: Option<i64>,
    requires_python: Option<String>,
    #[serde(default)]
    resolution_markers: Vec<String>,
    #[serde(default)]
    supported_markers: Vec<String>,
    #[serde(default)]
    conflicts: Vec<Vec<RawConflictItem>>,
    #[serde(default)]
    manifest: RawManifest,
    #[serde(default, alias = "distribution")]
    package: Vec<RawPackage>,
}

#[derive(Deserialize)]
struct RawConflictItem {
    package: String,
    extra: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawManifest {
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    requirements: Vec<RawRequirement>,
    #[serde(default)]
    dependency_groups: BTreeMap<String, Vec<RawRequirement>>,
}

#[derive(Deserialize)]
struct RawRequirement {
    name: String,
    #[serde(default)]
    extras: Vec<String>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPackage {
    name: String,
    version: Option<String>,
    source: Option<RawSource>,
    #[serde(default)]
    resolution_markers: Vec<String>,
    #[serde(default)]
    dependencies: Vec<RawDependency>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<RawDependency>>,
    #[serde(default, alias = "dependency-groups")]
    dev_dependencies: BTreeMap<String, Vec<RawDependency>>,
    sdist: Option<RawArtifact>,
    #[serde(default)]
    wheels: Vec<RawArtifact>,
    metadata: Option<RawMetadata>,
}

#[derive(Deserialize, Default)]
struct RawSource {
    registry: Option<String>,
    git: Option<String>,
    url: Option<String>,
    path: Option<String>,
    directory: Option<String>,
    editable: Option<String>,
    #[serde(rename = "virtual")]
    virtual_: Option<String>,
    subdirectory: Option<String>,
}

#[derive(Deserialize)]
struct RawDependency {
    name: String,
    version: Option<String>,
    source: Option<RawSource>,
    #[serde(default, alias = "extras")]
    extra: Vec<String>,
    marker: Option<String>,
}

#[derive(Deserialize)]
struct RawArtifact {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMetadata {
    #[serde(default)]
    provides_extras: Vec<String>,
    #[serde(default, alias = "dependency-groups")]
    requires_dev: BTreeMap<String, IgnoredAny>,
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

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

/// Percent-decodes `%XX` sequences; malformed sequences are kept as they are,
/// and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The last path segment of a URL (query and fragment removed), percent-decoded.
fn url_filename(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = &url[..end];
    percent_decode(path.rsplit('/').next().unwrap_or(path))
}

fn join_path(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir.is_empty() || dir == "." {
        rel.to_string()
    } else {
        format!("{}/{rel}", dir.trim_end_matches('/'))
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

/// Versions are equal as PEP 440 versions, or as strings when either does not parse.
fn same_version(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
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
        let (location, filename) = if let Some(url) = &raw.url {
            (
                ArtifactLocation::Url(url.clone()),
                raw.filename.clone().unwrap_or_else(|| url_filename(url)),
            )
        } else if let Some(path) = &raw.path {
            let location = match source {
                Source::Registry(dir) if source.is_local_registry() => join_path(dir, path),
                _ => path.clone(),
            };
            let name = path.rsplit('/').next().unwrap_or(path).to_string();
            (
                ArtifactLocation::Path(location),
                raw.filename.clone().unwrap_or(name),
            )
        } else if let Some(filename) = &raw.filename {
            let location = match source {
                Source::Url { url, .. } => ArtifactLocation::Url(url.clone()),
                Source::Path(p) => ArtifactLocation::Path(p.clone()),
                Source::Registry(dir) if source.is_local_registry() => {
                    ArtifactLocation::Path(join_path(dir, filename))
                }
                other => {
                    return Err(self.invalid(
                        context,
                        field,
                        format!("wheel `{filename}` has no `url` or `path`, and its {other} source gives no location"),
                    ));
                }
            };
            (location, filename.clone())
        } else {
            return Err(self.invalid(context, field, "a wheel needs `url`, `path` or `filename`"));
        };
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
        let location = if let Some(url) = &raw.url {
            Some(ArtifactLocation::Url(url.clone()))
        } else if let Some(path) = &raw.path {
            Some(ArtifactLocation::Path(match source {
                Source::Registry(dir) if source.is_local_registry() => join_path(dir, path),
                _ => path.clone(),
            }))
        } else {
            match source {
                Source::Url { url, .. } => Some(ArtifactLocation::Url(url.clone())),
                Source::Path(p) => Some(ArtifactLocation::Path(p.clone())),
                _ => None,
            }
        };
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

/// Resolves one edge to a package index (§1.4).
fn resolve_edge(
    file: &str,
    packages: &[Package],
    by_name: &BTreeMap<String, Vec<usize>>,
    owner: &Package,
    field: &str,
    dep: &Dependency,
) -> Result<usize, LockError> {
    let candidates: Vec<usize> = by_name
        .get(&dep.name)
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|&i| {
            let p = &packages[i];
            let version_ok = match (&dep.version, &p.version) {
                (Some(want), Some(have)) => same_version(want, have),
                (Some(_), None) => false,
                (None, _) => true,
            };
            let source_ok = dep.source.as_ref().is_none_or(|s| *s == p.source);
            version_ok && source_ok
        })
        .collect();
    let describe = || {
        let mut s = dep.name.clone();
        if let Some(v) = &dep.version {
            s.push_str(&format!(" {v}"));
        }
        if let Some(src) = &dep.source {
            s.push_str(&format!(" from {src}"));
        }
        s
    };
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(LockError::UnknownDependency {
            file: file.to_string(),
            package: owner.name.clone(),
            field: field.to_string(),
            dependency: describe(),
        }),
        many => Err(LockError::AmbiguousDependency {
            file: file.to_string(),
            package: owner.name.clone(),
            field: field.to_string(),
            dependency: describe(),
            count: many.len(),
        }),
    }
}

impl Lock {
    /// Parses lock text; `file` names the lock in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Lock, LockError> {
        // The format version first, so a future format gets a clear message rather than
        // whatever its new shape would make the full parse say.
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
        let raw: RawLock = toml::from_str(text).map_err(|e| syntax_error(text, file, &e))?;
        let b = Builder { file };
        let top = "top level";

        let requires_python = raw
            .requires_python
            .as_deref()
            .map(|s| {
                Specifiers::parse(s).map_err(|e| b.invalid(top, "requires-python", e.to_string()))
            })
            .transpose()?;
        let conflicts = raw
            .conflicts
            .iter()
            .enumerate()
            .map(|(i, set)| {
                set.iter()
                    .enumerate()
                    .map(|(j, item)| {
                        let package = normalize_name(&item.package);
                        match (&item.extra, &item.group) {
                            (None, None) => Ok(ConflictItem::Project(package)),
                            (Some(e), None) => Ok(ConflictItem::Extra(package, normalize_name(e))),
                            (None, Some(g)) => Ok(ConflictItem::Group(package, normalize_name(g))),
                            (Some(_), Some(_)) => Err(b.invalid(
                                top,
                                &format!("conflicts[{i}][{j}]"),
                                "an item has either `extra` or `group`, not both",
                            )),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let manifest_requirements = raw
            .manifest
            .requirements
            .iter()
            .enumerate()
            .map(|(i, r)| b.requirement(&format!("requirements[{i}]"), r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut manifest_groups = BTreeMap::new();
        for (group, reqs) in &raw.manifest.dependency_groups {
            let reqs = reqs
                .iter()
                .enumerate()
                .map(|(i, r)| b.requirement(&format!("dependency-groups.{group}[{i}]"), r))
                .collect::<Result<Vec<_>, _>>()?;
            manifest_groups.insert(normalize_name(group), reqs);
        }

        let mut packages = raw
            .package
            .iter()
            .enumerate()
            .map(|(i, p)| b.package(i, p))
            .collect::<Result<Vec<_>, _>>()?;

        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_name.entry(p.name.clone()).or_default().push(i);
        }
        for i in 0..packages.len() {
            let owner = &packages[i];
            let mut targets = Vec::new();
            for (j, dep) in owner.dependencies.iter().enumerate() {
                let field = format!("dependencies[{j}]");
                targets.push(resolve_edge(file, &packages, &by_name, owner, &field, dep)?);
            }
            for (extra, deps) in &owner.optional_dependencies {
                for (j, dep) in deps.iter().enumerate() {
                    let field = format!("optional-dependencies.{extra}[{j}]");
                    targets.push(resolve_edge(file, &packages, &by_name, owner, &field, dep)?);
                }
            }
            for (group, deps) in &owner.dependency_groups {
                for (j, dep) in deps.iter().enumerate() {
                    let field = format!("dev-dependencies.{group}[{j}]");
                    targets.push(resolve_edge(file, &packages, &by_name, owner, &field, dep)?);
                }
            }
            // Same iteration order as above.
            let owner = &mut packages[i];
            let mut it = targets.into_iter();
            let edges = owner
                .dependencies
                .iter_mut()
                .chain(owner.optional_dependencies.values_mut().flatten())
                .chain(owner.dependency_groups.values_mut().flatten());
            for (dep, target) in edges.zip(&mut it) {
                dep.target = target;
            }
        }

        Ok(Lock {
            file: file.to_string(),
            version: 1,
            revision: raw
                .revision
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0),
            requires_python_text: raw.requires_python.clone(),
            requires_python,
            resolution_markers: b.markers(top, "resolution-markers", &raw.resolution_markers)?,
            supported_markers: b.markers(top, "supported-markers", &raw.supported_markers)?,
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

    /// All entries with this (normalized) name.
    pub fn packages_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Package> + 'a {
        let name = normalize_name(name);
        self.packages.iter().filter(move |p| p.name == name)
    }

    /// The lone project at the workspace root: the package whose source is `editable`,
    /// `virtual` or `directory` `"."` (PYTHON-INSTALL.md §1.5).
    pub fn root_project(&self) -> Option<&Package> {
        self.packages.iter().find(|p| {
            matches!(&p.source, Source::Editable(d) | Source::Virtual(d) | Source::Directory(d) if d == ".")
        })
    }

    /// Checks `requires-python` and `supported-markers` against the target (§1.6 step 1).
    ///
    /// `requires-python` is tested against the release part of `python_full_version`
    /// (`3.13.0rc1` counts as `3.13.0`), as pip and uv do for interpreter compatibility.
    pub fn check_target(&self, env: &MarkerEnv) -> Result<(), LockError> {
        if let Some(spec) = &self.requires_python {
            let ok = Version::parse(&env.python_full_version)
                .map(|v| spec.contains(&Version::from_release(v.release())))
                .unwrap_or(false);
            if !ok {
                return Err(LockError::RequiresPython {
                    file: self.file.clone(),
                    requires_python: self.requires_python_text.clone().unwrap_or_default(),
                    python: env.python_full_version.clone(),
                });
            }
        }
        if !self.supported_markers.is_empty()
            && !self
                .supported_markers
                .iter()
                .any(|m| m.evaluate(env, &[], &[]))
        {
            return Err(LockError::UnsupportedEnvironment {
                file: self.file.clone(),
                python: env.python_full_version.clone(),
                machine: env.platform_machine.clone(),
                markers: self
                    .supported_markers
                    .iter()
                    .map(|m| format!("\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
    }

    fn find_root(&self, name: &str) -> Result<usize, LockError> {
        let name = normalize_name(name);
        let found: Vec<usize> = (0..self.packages.len())
            .filter(|&i| self.packages[i].name == name)
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(LockError::MissingRoot {
                file: self.file.clone(),
                name,
            }),
            many => Err(LockError::AmbiguousRoot {
                file: self.file.clone(),
                name,
                count: many.len(),
            }),
        }
    }

    /// Resolves a manifest requirement by name, using the entries' resolution markers when the
    /// name is not unique.
    fn find_by_markers(&self, name: &str, env: &MarkerEnv) -> Result<usize, LockError> {
        let all: Vec<usize> = (0..self.packages.len())
            .filter(|&i| self.packages[i].name == name)
            .collect();
        if all.len() <= 1 {
            return self.find_root(name);
        }
        let matching: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| {
                self.packages[i]
                    .resolution_markers
                    .iter()
                    .any(|m| m.evaluate(env, &[], &[]))
            })
            .collect();
        match matching.as_slice() {
            [one] => Ok(*one),
            _ => Err(LockError::AmbiguousRoot {
                file: self.file.clone(),
                name: name.to_string(),
                count: all.len(),
            }),
        }
    }

    fn edges(&self, package: usize, extra: Option<&str>) -> &[Dependency] {
        let p = &self.packages[package];
        match extra {
            None => &p.dependencies,
            Some(e) => p.optional_dependencies.get(e).map_or(&[], Vec::as_slice),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Install set (§1.6)
// ---------------------------------------------------------------------------------------------

/// What to sync, mirroring `uv sync` flags. `Default` is a plain `uv sync` with no roots,
/// extras or groups; fill in `roots` and the groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Root packages (the synced project, or several workspace members).
    pub roots: Vec<String>,
    /// Extras of the roots (`--extra`). Each must be defined by at least one root.
    pub extras: Vec<String>,
    /// Dependency groups requested explicitly (`--group`). Each must exist.
    pub groups: Vec<String>,
    /// Default groups (`tool.uv.default-groups`, normally `["dev"]`); those that do not exist are
    /// ignored. Apply `--no-dev`/`--no-group` by leaving them out.
    pub default_groups: Vec<String>,
    /// `--only-group`/`--only-dev`: the roots' own dependencies and extras are not installed,
    /// nor are the roots themselves (unless a group reaches them).
    pub only_groups: bool,
    /// `--no-install-project`: the roots are not installed; their dependencies are.
    pub no_install_project: bool,
    /// `--no-install-workspace`: no workspace member (nor root) is installed.
    pub no_install_workspace: bool,
    /// `--no-install-package`: these names are not installed.
    pub no_install_packages: Vec<String>,
}

#[cfg(test)]
/// The packages `uv sync` would install for `root` with these extras and groups (groups must
/// exist; pass default groups through [`install_set_with`] if they may be absent).
/// `include_project = false` is `--no-install-project`. Virtual packages are never returned.
pub fn install_set(
    lock: &Lock,
    root: &str,
    env: &MarkerEnv,
    extras: &[&str],
    groups: &[&str],
    include_project: bool,
) -> Result<Vec<Resolved>, LockError> {
    let opts = SyncOptions {
        roots: vec![root.to_string()],
        extras: extras.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        no_install_project: !include_project,
        ..SyncOptions::default()
    };
    install_set_with(lock, env, &opts)
}

fn describe_pair(a: &ConflictItem, b: &ConflictItem) -> (String, String) {
    let capital = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    if a.kind() == b.kind() {
        (
            format!("{}s `{}`", capital(a.kind()), a.item_name()),
            format!("`{}`", b.item_name()),
        )
    } else {
        (
            format!("{} `{}`", capital(a.kind()), a.item_name()),
            format!("{} `{}`", b.kind(), b.item_name()),
        )
    }
}

type QueueItem<'a> = (usize, Option<&'a str>);

/// Roots, extras and groups after validation (§1.6 steps 1–3).
struct Selection {
    roots: Vec<usize>,
    /// False for `--only-group`: the roots' own dependencies are not walked.
    prod: bool,
    extras: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl Selection {
    fn new(lock: &Lock, opts: &SyncOptions) -> Result<Selection, LockError> {
        let roots = opts
            .roots
            .iter()
            .map(|r| lock.find_root(r))
            .collect::<Result<Vec<_>, _>>()?;
        let root_list = || {
            roots
                .iter()
                .map(|&r| format!("`{}`", lock.packages[r].name))
                .collect::<Vec<_>>()
                .join(", ")
        };

        let extras: BTreeSet<String> = opts.extras.iter().map(|e| normalize_name(e)).collect();
        let defined_extras: BTreeSet<&str> = roots
            .iter()
            .flat_map(|&r| lock.packages[r].extra_names())
            .collect();
        if let Some(extra) = extras.iter().find(|e| !defined_extras.contains(e.as_str())) {
            return Err(LockError::UnknownExtra {
                file: lock.file.clone(),
                extra: extra.clone(),
                roots: root_list(),
                available: join_or_none(defined_extras),
            });
        }

        let defined_groups: BTreeSet<&str> = roots
            .iter()
            .flat_map(|&r| lock.packages[r].group_names())
            .chain(lock.manifest_groups.keys().map(String::as_str))
            .collect();
        let mut groups = BTreeSet::new();
        for g in &opts.groups {
            let g = normalize_name(g);
            if !defined_groups.contains(g.as_str()) {
                return Err(LockError::UnknownGroup {
                    file: lock.file.clone(),
                    group: g,
                    roots: root_list(),
                    available: join_or_none(defined_groups),
                });
            }
            groups.insert(g);
        }
        // Default groups apply only where they exist.
        groups.extend(
            opts.default_groups
                .iter()
                .map(|g| normalize_name(g))
                .filter(|g| defined_groups.contains(g.as_str())),
        );

        Ok(Selection {
            roots,
            prod: !opts.only_groups,
            extras,
            groups,
        })
    }

    /// The roots' selected extras that have edges.
    fn root_extras<'a>(&self, root: &'a Package) -> impl Iterator<Item = &'a String> {
        root.optional_dependencies
            .keys()
            .filter(|e| self.extras.contains(*e))
    }

    /// The conflict items the request activates (§1.6 step 4): each root (when prod) with its
    /// selected extras, and each root's selected groups.
    fn requested_items(&self, lock: &Lock) -> BTreeSet<ConflictItem> {
        let mut items = BTreeSet::new();
        for &r in &self.roots {
            let p = &lock.packages[r];
            if self.prod {
                items.insert(ConflictItem::Project(p.name.clone()));
                for e in self.root_extras(p) {
                    items.insert(ConflictItem::Extra(p.name.clone(), e.clone()));
                }
            }
            for g in p
                .dependency_groups
                .keys()
                .filter(|g| self.groups.contains(*g))
            {
                items.insert(ConflictItem::Group(p.name.clone(), g.clone()));
            }
        }
        items
    }
}

/// The breadth-first walk state (§1.6 steps 5–6).
struct Walk<'a> {
    lock: &'a Lock,
    env: &'a MarkerEnv,
    /// Reached packages, and whether the walk installs them (roots skipped by
    /// `--only-group` are reached but not installed).
    nodes: BTreeMap<usize, bool>,
    queue: VecDeque<QueueItem<'a>>,
    seen: HashSet<QueueItem<'a>>,
    /// Encoded conflict items for `extra == '…'` markers; empty when the lock has no
    /// `conflicts`, as in uv.
    activated: BTreeSet<String>,
}

impl<'a> Walk<'a> {
    fn holds(&self, marker: Option<&Marker>, activated: &BTreeSet<String>) -> bool {
        match marker {
            None => true,
            Some(m) => {
                let items: Vec<&str> = activated.iter().map(String::as_str).collect();
                m.evaluate(self.env, &items, &[])
            }
        }
    }

    /// A package reached through a dependency group (or a workspace-level group): installed
    /// even if it is a root that `--only-group` skipped.
    fn reach_via_group(&mut self, target: usize, prod: bool) {
        match self.nodes.entry(target) {
            Entry::Vacant(v) => {
                v.insert(true);
            }
            Entry::Occupied(mut o) => {
                if !prod {
                    *o.get_mut() = true;
                }
            }
        }
    }

    /// Step 5: roots, their selected groups, and the workspace-level requirements and groups.
    fn seed(&mut self, sel: &Selection) -> Result<(), LockError> {
        let lock = self.lock;
        for &r in &sel.roots {
            let p = &lock.packages[r];
            self.nodes.insert(r, sel.prod);
            if sel.prod {
                self.queue.push_back((r, None));
                for e in sel.root_extras(p) {
                    self.queue.push_back((r, Some(e.as_str())));
                }
            }
            for (g, deps) in &p.dependency_groups {
                if !sel.groups.contains(g) {
                    continue;
                }
                for dep in deps {
                    if self.holds(dep.marker.as_ref(), &self.activated) {
                        self.reach_via_group(dep.target, sel.prod);
                        enqueue(&mut self.queue, &mut self.seen, dep.target, &dep.extras);
                    }
                }
            }
        }
        let none = BTreeSet::new();
        for req in &lock.manifest_requirements {
            if self.holds(req.marker.as_ref(), &none) {
                let target = lock.find_by_markers(&req.name, self.env)?;
                self.nodes.insert(target, sel.prod);
                enqueue(&mut self.queue, &mut self.seen, target, &req.extras);
            }
        }
        for (g, reqs) in &lock.manifest_groups {
            if !sel.groups.contains(g) {
                continue;
            }
            for req in reqs {
                if self.holds(req.marker.as_ref(), &none) {
                    let target = lock.find_by_markers(&req.name, self.env)?;
                    self.reach_via_group(target, sel.prod);
                    enqueue(&mut self.queue, &mut self.seen, target, &req.extras);
                }
            }
        }
        Ok(())
    }

    /// Step 4 (continued), only with `conflicts`: a first traversal over a copy of the queue
    /// collects every extra that a reachable edge activates, so that conflict markers see them
    /// whatever the visiting order. Fails when two activated extras conflict.
    fn collect_activated_extras(
        &mut self,
        mut active_extras: BTreeSet<(String, String)>,
    ) -> Result<(), LockError> {
        let lock = self.lock;
        let mut queue = self.queue.clone();
        let mut seen = self.seen.clone();
        while let Some((p, x)) = queue.pop_front() {
            for dep in lock.edges(p, x) {
                let target_name = &lock.packages[dep.target].name;
                let additional: Vec<(String, String)> = dep
                    .extras
                    .iter()
                    .map(|e| (target_name.clone(), e.clone()))
                    .filter(|pair| !active_extras.contains(pair))
                    .collect();
                // The edge's own extras count while its marker is evaluated.
                let mut activated = self.activated.clone();
                activated.extend(
                    additional
                        .iter()
                        .map(|(pn, e)| ConflictItem::Extra(pn.clone(), e.clone()).encoded()),
                );
                if !self.holds(dep.marker.as_ref(), &activated) {
                    continue;
                }
                self.activated = activated;
                active_extras.extend(additional);
                enqueue(&mut queue, &mut seen, dep.target, &dep.extras);
            }
        }
        for set in &lock.conflicts {
            let hits: Vec<(&String, &String)> = set
                .iter()
                .filter_map(|item| match item {
                    ConflictItem::Extra(p, e)
                        if active_extras.contains(&(p.clone(), e.clone())) =>
                    {
                        Some((p, e))
                    }
                    _ => None,
                })
                .collect();
            if let [(p1, e1), (p2, e2), ..] = hits.as_slice() {
                return Err(LockError::ConflictingExtras {
                    file: lock.file.clone(),
                    package1: (*p1).clone(),
                    extra1: (*e1).clone(),
                    package2: (*p2).clone(),
                    extra2: (*e2).clone(),
                });
            }
        }
        Ok(())
    }

    /// Step 6: the breadth-first traversal. An edge's marker is evaluated only while
    /// traversing from its owner; (package, extra) pairs are visited once.
    fn traverse(&mut self) {
        let lock = self.lock;
        while let Some((p, x)) = self.queue.pop_front() {
            for dep in lock.edges(p, x) {
                if self.holds(dep.marker.as_ref(), &self.activated) {
                    self.nodes.entry(dep.target).or_insert(true);
                    enqueue(&mut self.queue, &mut self.seen, dep.target, &dep.extras);
                }
            }
        }
    }
}

fn enqueue<'a>(
    queue: &mut VecDeque<QueueItem<'a>>,
    seen: &mut HashSet<QueueItem<'a>>,
    target: usize,
    extras: &'a [String],
) {
    if seen.insert((target, None)) {
        queue.push_back((target, None));
    }
    for x in extras {
        if seen.insert((target, Some(x.as_str()))) {
            queue.push_back((target, Some(x.as_str())));
        }
    }
}

/// The install set for the general case (several roots, `--only-group`, install filters).
/// Implements PYTHON-INSTALL.md §1.6 steps 1–7 and the conflict markers of §1.7. The result
/// is sorted by name; a name reached at two versions is an error.
pub fn install_set_with(
    lock: &Lock,
    env: &MarkerEnv,
    opts: &SyncOptions,
) -> Result<Vec<Resolved>, LockError> {
    // Steps 1–3: target preconditions, roots, extras and groups.
    lock.check_target(env)?;
    let sel = Selection::new(lock, opts)?;

    // Step 1 (end) and step 4: declared conflicts among the requested extras and groups, and
    // the items that conflict markers test.
    let requested = sel.requested_items(lock);
    for set in &lock.conflicts {
        let hits: Vec<&ConflictItem> = set.iter().filter(|i| requested.contains(i)).collect();
        if let [a, b, ..] = hits.as_slice() {
            let (first, second) = describe_pair(a, b);
            return Err(LockError::Conflict {
                file: lock.file.clone(),
                first,
                second,
            });
        }
    }
    let has_conflicts = !lock.conflicts.is_empty();
    let mut walk = Walk {
        lock,
        env,
        nodes: BTreeMap::new(),
        queue: VecDeque::new(),
        seen: HashSet::new(),
        activated: if has_conflicts {
            requested.iter().map(ConflictItem::encoded).collect()
        } else {
            BTreeSet::new()
        },
    };

    // Steps 5 and 6.
    walk.seed(&sel)?;
    if has_conflicts {
        let active_extras = requested
            .iter()
            .filter_map(|i| match i {
                ConflictItem::Extra(p, e) => Some((p.clone(), e.clone())),
                _ => None,
            })
            .collect();
        walk.collect_activated_extras(active_extras)?;
    }
    walk.traverse();

    // Step 7: install filters.
    let skip: BTreeSet<String> = opts
        .no_install_packages
        .iter()
        .map(|n| normalize_name(n))
        .collect();
    let mut out: Vec<Resolved> = Vec::new();
    for (&i, &install) in &walk.nodes {
        let p = &lock.packages[i];
        let is_root = sel.roots.contains(&i);
        if !install
            || matches!(p.source, Source::Virtual(_))
            || (opts.no_install_project && is_root)
            || (opts.no_install_workspace && (is_root || lock.members.contains(&p.name)))
            || skip.contains(&p.name)
        {
            continue;
        }
        out.push(Resolved {
            name: p.name.clone(),
            version: p.version.clone(),
            source: p.source.clone(),
            wheels: p.wheels.clone(),
            sdist: p.sdist.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));

    // At most one version per name (§1.4).
    if let Some(pair) = out.windows(2).find(|pair| pair[0].name == pair[1].name) {
        let name = pair[0].name.clone();
        let versions: Vec<String> = out
            .iter()
            .filter(|r| r.name == name)
            .map(|r| r.version.clone().unwrap_or_else(|| "(dynamic)".into()))
            .collect();
        return Err(LockError::MultipleVersions {
            file: lock.file.clone(),
            name,
            versions: versions.join(", "),
        });
    }
    Ok(out)
}

fn join_or_none(items: BTreeSet<&str>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// Wheel choice
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
/// Chooses the wheel for every package (§3.3). Packages without a compatible wheel (including
/// editable, directory and git sources, which have none) are all reported in one
/// [`LockError::NoCompatibleWheels`].
pub fn pick_wheels(set: &[Resolved], t: &Target) -> Result<Vec<(Resolved, WheelRef)>, LockError> {
    let index = TagIndex::new(t);
    let mut picked = Vec::with_capacity(set.len());
    let mut missing = Vec::new();
    for r in set {
        match index.best_index(r.wheels.iter().map(|w| &w.wheel)) {
            Some(i) => {
                let wheel = &r.wheels[i];
                check_wheel_matches(r, wheel)?;
                picked.push((r.clone(), wheel.clone()));
            }
            None => missing.push(MissingWheel {
                name: r.name.clone(),
                version: r.version.clone(),
                source: r.source.to_string(),
                wheels: r.wheels.iter().map(|w| w.filename.clone()).collect(),
                has_sdist: r.sdist.is_some(),
            }),
        }
    }
    if missing.is_empty() {
        Ok(picked)
    } else {
        Err(LockError::NoCompatibleWheels {
            target: t.to_string(),
            missing,
        })
    }
}

#[cfg(test)]
/// The wheel's filename must name the package, at its version or at its version plus a local
/// label that the package version lacks.
fn check_wheel_matches(r: &Resolved, wheel: &WheelRef) -> Result<(), LockError> {
    let version_ok = match &r.version {
        None => true,
        Some(pkg) => match (Version::parse(pkg), Version::parse(&wheel.wheel.version)) {
            (Ok(p), Ok(w)) => p == w || p == w.without_local(),
            _ => *pkg == wheel.wheel.version,
        },
    };
    if wheel.wheel.name == r.name && version_ok {
        Ok(())
    } else {
        Err(LockError::WheelMismatch {
            package: r.name.clone(),
            version: r.version.clone().unwrap_or_default(),
            filename: wheel.filename.clone(),
            wheel_name: wheel.wheel.name.clone(),
            wheel_version: wheel.wheel.version.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tags::Arch;
    use super::*;

    const IDX: &str = "https://index.example/simple";

    fn sha(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    /// A registry package with the given wheels (filenames) and raw TOML lines appended.
    fn pkg(name: &str, version: &str, wheels: &[&str], extra_toml: &str) -> String {
        let mut s = format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = {{ registry = \"{IDX}\" }}\n"
        );
        if !wheels.is_empty() {
            s.push_str("wheels = [\n");
            for w in wheels {
                s.push_str(&format!(
                    "    {{ url = \"https://index.example/files/{w}\", hash = \"sha256:{}\", size = 1234, upload-time = \"2026-01-01T00:00:00Z\" }},\n",
                    sha('a')
                ));
            }
            s.push_str("]\n");
        }
        // After the wheels: the extra text may open sub-tables.
        s.push_str(extra_toml);
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }

    fn pure(name: &str, version: &str) -> String {
        pkg(
            name,
            version,
            &[&format!(
                "{}-{version}-py3-none-any.whl",
                name.replace('-', "_")
            )],
            "",
        )
    }

    /// A project lock modelled on the doc's httpx + numpy example, with extras, groups and
    /// per-architecture dependencies.
    fn demo_lock() -> String {
        let mut s = String::from(
            r#"version = 1
revision = 5
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.12'",
    "python_full_version == '3.11.*'",
    "python_full_version < '3.11'",
]

[options]
exclude-newer = "2026-10-01T00:00:00Z"

[[package]]
name = "demo-app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "anyio" },
    { name = "httpx", extra = ["http2"] },
    { name = "numpy", version = "2.2.6", source = { registry = "https://index.example/simple" }, marker = "python_full_version < '3.11'" },
    { name = "numpy", version = "2.4.6", source = { registry = "https://index.example/simple" }, marker = "python_full_version == '3.11.*'" },
    { name = "numpy", version = "2.5.3", source = { registry = "https://index.example/simple" }, marker = "python_full_version >= '3.12'" },
    { name = "black", marker = "platform_machine == 'aarch64'" },
    { name = "pywin32", marker = "sys_platform == 'win32'" },
    { name = "async-timeout", marker = "python_full_version < '3.11.3'" },
]

[package.optional-dependencies]
cli = [
    { name = "rich" },
]

[package.dev-dependencies]
dev = [
    { name = "pytest" },
]
docs = [
    { name = "mkdocs", marker = "platform_machine == 'x86_64'" },
]

[package.metadata]
requires-dist = [
    { name = "anyio" },
    { name = "rich", marker = "extra == 'cli'" },
]
provides-extras = ["cli", "empty"]

[package.metadata.requires-dev]
dev = [{ name = "pytest" }]
docs = [{ name = "mkdocs" }]
"#,
        );
        s.push_str(&pkg(
            "anyio",
            "4.15.1",
            &["anyio-4.15.1-py3-none-any.whl"],
            "dependencies = [\n    { name = \"exceptiongroup\", marker = \"python_full_version < '3.11'\" },\n    { name = \"idna\" },\n]\nsdist = { url = \"https://index.example/files/anyio-4.15.1.tar.gz\", hash = \"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\", size = 276966 }",
        ));
        s.push_str(&pure("idna", "3.10"));
        s.push_str(&pure("exceptiongroup", "1.3.0"));
        s.push_str(&pure("async-timeout", "5.0.1"));
        s.push_str(&pkg(
            "httpx",
            "0.28.1",
            &["httpx-0.28.1-py3-none-any.whl"],
            "dependencies = [{ name = \"idna\" }]\n\n[package.optional-dependencies]\nhttp2 = [{ name = \"h2\" }]\nbrotli = [{ name = \"brotli\" }]",
        ));
        s.push_str(&pure("h2", "4.2.0"));
        s.push_str(&pure("brotli", "1.1.0"));
        for (v, py) in [("2.2.6", "cp310"), ("2.4.6", "cp311"), ("2.5.3", "cp312")] {
            let wheels = [
                format!("numpy-{v}-{py}-{py}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
                format!("numpy-{v}-{py}-{py}-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
                format!("numpy-{v}-{py}-{py}-win_amd64.whl"),
            ];
            let refs: Vec<&str> = wheels.iter().map(String::as_str).collect();
            let marker = match py {
                "cp310" => "python_full_version < '3.11'",
                "cp311" => "python_full_version == '3.11.*'",
                _ => "python_full_version >= '3.12'",
            };
            s.push_str(&pkg(
                "numpy",
                v,
                &refs,
                &format!("resolution-markers = [\"{marker}\"]"),
            ));
        }
        s.push_str(&pkg(
            "black",
            "25.1.0",
            &["black-25.1.0-py3-none-any.whl"],
            "dependencies = [{ name = \"pathspec\" }]",
        ));
        s.push_str(&pure("pathspec", "0.12.1"));
        s.push_str(&pkg(
            "pywin32",
            "311",
            &["pywin32-311-cp312-cp312-win_amd64.whl"],
            "",
        ));
        s.push_str(&pkg(
            "rich",
            "14.0.0",
            &["rich-14.0.0-py3-none-any.whl"],
            "dependencies = [{ name = \"markdown-it-py\" }]",
        ));
        s.push_str(&pure("markdown-it-py", "3.0.0"));
        s.push_str(&pkg(
            "pytest",
            "8.4.1",
            &["pytest-8.4.1-py3-none-any.whl"],
            "dependencies = [{ name = \"pluggy\" }, { name = \"colorama\", marker = \"sys_platform == 'win32'\" }]",
        ));
        s.push_str(&pure("pluggy", "1.6.0"));
        s.push_str(&pure("colorama", "0.4.6"));
        s.push_str(&pure("mkdocs", "1.6.1"));
        s
    }

    fn parse(text: &str) -> Lock {
        Lock::parse(text, "uv.lock").unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(set: &[Resolved]) -> Vec<String> {
        set.iter()
            .map(|r| match &r.version {
                Some(v) => format!("{}=={v}", r.name),
                None => r.name.clone(),
            })
            .collect()
    }

    fn env(py: &str, arch: &str) -> MarkerEnv {
        MarkerEnv::for_target(py, arch)
    }

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
    fn install_set_default_groups_per_python_and_arch() {
        let lock = parse(&demo_lock());
        let amd = install_set(
            &lock,
            "demo-app",
            &env("3.12.7", "amd64"),
            &[],
            &["dev"],
            true,
        )
        .unwrap();
        assert_eq!(
            names(&amd),
            [
                "anyio==4.15.1",
                "demo-app==0.1.0",
                "h2==4.2.0",
                "httpx==0.28.1",
                "idna==3.10",
                "numpy==2.5.3",
                "pluggy==1.6.0",
                "pytest==8.4.1",
            ]
        );
        // black (and its dependency) only on aarch64.
        let arm = install_set(
            &lock,
            "demo-app",
            &env("3.12.7", "arm64"),
            &[],
            &["dev"],
            true,
        )
        .unwrap();
        let arm_names = names(&arm);
        assert!(arm_names.contains(&"black==25.1.0".to_string()));
        assert!(arm_names.contains(&"pathspec==0.12.1".to_string()));
        assert_eq!(arm.len(), amd.len() + 2);
        // Never: win32-only packages, an extra nobody asked for (httpx[brotli]).
        for set in [&amd, &arm] {
            assert!(
                !set.iter()
                    .any(|r| ["pywin32", "colorama", "brotli", "rich"].contains(&r.name.as_str()))
            );
        }
    }

    #[test]
    fn install_set_python_versions_pick_numpy_forks() {
        let lock = parse(&demo_lock());
        let numpy_for = |py: &str| {
            let set = install_set(&lock, "demo-app", &env(py, "amd64"), &[], &[], true).unwrap();
            let numpy: Vec<_> = set.iter().filter(|r| r.name == "numpy").collect();
            assert_eq!(numpy.len(), 1, "{py}");
            (numpy[0].version.clone().unwrap(), names(&set))
        };
        let (v, set310) = numpy_for("3.10.13");
        assert_eq!(v, "2.2.6");
        assert!(set310.contains(&"exceptiongroup==1.3.0".to_string()));
        let (v, set311) = numpy_for("3.11.2");
        assert_eq!(v, "2.4.6");
        assert!(!set311.contains(&"exceptiongroup==1.3.0".to_string()));
        // The patch version matters: async-timeout is for < 3.11.3.
        assert!(set311.contains(&"async-timeout==5.0.1".to_string()));
        let (_, set31113) = numpy_for("3.11.13");
        assert!(!set31113.contains(&"async-timeout==5.0.1".to_string()));
        let (v, _) = numpy_for("3.12.7");
        assert_eq!(v, "2.5.3");
        let (v, _) = numpy_for("3.14.0");
        assert_eq!(v, "2.5.3");
    }

    #[test]
    fn install_set_extras_groups_and_project_filter() {
        let lock = parse(&demo_lock());
        let e = env("3.12.7", "amd64");
        // A package reachable only through a root extra.
        let with_cli = names(&install_set(&lock, "demo-app", &e, &["CLI"], &[], true).unwrap());
        assert!(with_cli.contains(&"rich==14.0.0".to_string()));
        assert!(with_cli.contains(&"markdown-it-py==3.0.0".to_string()));
        // An extra with no edges (declared in metadata) is accepted and adds nothing.
        let empty = install_set(&lock, "demo-app", &e, &["empty"], &[], true).unwrap();
        let none = install_set(&lock, "demo-app", &e, &[], &[], true).unwrap();
        assert_eq!(names(&empty), names(&none));
        assert!(!names(&none).contains(&"pytest==8.4.1".to_string()));
        // Groups, with a marker evaluated per architecture.
        let docs_amd = names(&install_set(&lock, "demo-app", &e, &[], &["docs"], true).unwrap());
        assert!(docs_amd.contains(&"mkdocs==1.6.1".to_string()));
        assert!(!docs_amd.contains(&"pytest==8.4.1".to_string()));
        let docs_arm = names(
            &install_set(
                &lock,
                "demo-app",
                &env("3.12.7", "arm64"),
                &[],
                &["docs"],
                true,
            )
            .unwrap(),
        );
        assert!(!docs_arm.contains(&"mkdocs==1.6.1".to_string()));
        // --no-install-project drops the editable root but keeps its dependencies.
        let no_project = names(&install_set(&lock, "demo-app", &e, &[], &[], false).unwrap());
        assert!(!no_project.contains(&"demo-app==0.1.0".to_string()));
        assert_eq!(no_project.len(), none.len() - 1);
    }

    #[test]
    fn install_set_only_group_and_filters() {
        let lock = parse(&demo_lock());
        let e = env("3.12.7", "amd64");
        let opts = SyncOptions {
            roots: vec!["demo-app".into()],
            groups: vec!["dev".into()],
            only_groups: true,
            ..SyncOptions::default()
        };
        assert_eq!(
            names(&install_set_with(&lock, &e, &opts).unwrap()),
            ["pluggy==1.6.0", "pytest==8.4.1"]
        );
        // Default groups that do not exist are ignored; explicit ones must exist.
        let opts = SyncOptions {
            roots: vec!["demo-app".into()],
            default_groups: vec!["dev".into(), "lint".into()],
            no_install_packages: vec!["H2".into()],
            ..SyncOptions::default()
        };
        let set = names(&install_set_with(&lock, &e, &opts).unwrap());
        assert!(set.contains(&"pytest==8.4.1".to_string()));
        assert!(!set.contains(&"h2==4.2.0".to_string()));
        let err = install_set(&lock, "demo-app", &e, &[], &["lint"], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: dependency group `lint` is not defined by `demo-app` (available groups: dev, docs)"
        );
        let err = install_set(&lock, "demo-app", &e, &["gui"], &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: extra `gui` is not defined by `demo-app` (available extras: cli, empty)"
        );
        let err = install_set(&lock, "nope", &e, &[], &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: root package `nope` is not in the lock"
        );
        let err = install_set(&lock, "numpy", &e, &[], &[], true).unwrap_err();
        assert!(
            matches!(err, LockError::AmbiguousRoot { count: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn target_preconditions() {
        let lock = parse(&demo_lock());
        let err =
            install_set(&lock, "demo-app", &env("3.9.18", "amd64"), &[], &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: target Python 3.9.18 does not satisfy the lock's requires-python `>=3.10`"
        );
        // A pre-release interpreter is judged by its release part.
        assert!(lock.check_target(&env("3.13.0rc1", "amd64")).is_ok());

        let text = demo_lock().replacen(
            "resolution-markers = [",
            "supported-markers = [\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]\nresolution-markers = [",
            1,
        );
        let lock = parse(&text);
        assert!(lock.check_target(&env("3.12.7", "amd64")).is_ok());
        let err = lock.check_target(&env("3.12.7", "arm64")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: the target (Python 3.12.7, aarch64) is not compatible with the lock's supported environments (supported-markers: \"sys_platform == 'linux' and platform_machine == 'x86_64'\")"
        );
    }

    #[test]
    fn virtual_root_is_never_installed() {
        let text = format!(
            "version = 1\nrequires-python = \">=3.12\"\n\n[[package]]\nname = \"svc\"\nversion = \"0.1.0\"\nsource = {{ virtual = \".\" }}\ndependencies = [{{ name = \"six\" }}]\n{}",
            pure("six", "1.17.0")
        );
        let lock = parse(&text);
        let e = env("3.12.7", "amd64");
        assert_eq!(
            names(&install_set(&lock, "svc", &e, &[], &[], true).unwrap()),
            ["six==1.17.0"]
        );
        assert_eq!(
            names(&install_set(&lock, "svc", &e, &[], &[], false).unwrap()),
            ["six==1.17.0"]
        );
    }

    #[test]
    fn workspace_members_and_manifest_roots() {
        let mut text = String::from(
            r#"version = 1
revision = 3
requires-python = ">=3.11"

[manifest]
members = ["app", "lib-a"]
requirements = [{ name = "six", marker = "sys_platform == 'linux'" }, { name = "colorama", marker = "sys_platform == 'win32'" }]

[manifest.dependency-groups]
dev = [{ name = "iniconfig" }]

[[package]]
name = "app"
version = "1.0.0"
source = { editable = "packages/app" }
dependencies = [{ name = "lib-a" }]

[[package]]
name = "lib-a"
source = { editable = "packages/lib-a" }
dependencies = [{ name = "attrs" }]
"#,
        );
        for (n, v) in [
            ("attrs", "25.3.0"),
            ("six", "1.17.0"),
            ("colorama", "0.4.6"),
            ("iniconfig", "2.1.0"),
        ] {
            text.push_str(&pure(n, v));
        }
        let lock = parse(&text);
        let e = env("3.11.2", "amd64");
        let opts = SyncOptions {
            roots: vec!["app".into()],
            groups: vec!["dev".into()],
            ..SyncOptions::default()
        };
        assert_eq!(
            names(&install_set_with(&lock, &e, &opts).unwrap()),
            [
                "app==1.0.0",
                "attrs==25.3.0",
                "iniconfig==2.1.0",
                "lib-a",
                "six==1.17.0"
            ]
        );
        let opts = SyncOptions {
            no_install_workspace: true,
            ..opts
        };
        assert_eq!(
            names(&install_set_with(&lock, &e, &opts).unwrap()),
            ["attrs==25.3.0", "iniconfig==2.1.0", "six==1.17.0"]
        );
        // A script-style lock: no roots, only manifest requirements.
        let opts = SyncOptions::default();
        assert_eq!(
            names(&install_set_with(&lock, &e, &opts).unwrap()),
            ["six==1.17.0"]
        );
    }

    /// Conflicting extras `old`/`new` and group `legacy` of `proj3`, as uv encodes them.
    fn conflict_lock() -> String {
        let lib = |v: &str, marker: &str| {
            pkg(
                "lib",
                v,
                &[&format!("lib-{v}-py3-none-any.whl")],
                &format!("resolution-markers = [\"{marker}\"]"),
            )
        };
        let mut s = format!(
            r#"version = 1
revision = 3
requires-python = ">=3.12"
conflicts = [[
    {{ package = "proj3", extra = "new" }},
    {{ package = "proj3", extra = "old" }},
    {{ package = "proj3", group = "legacy" }},
]]

[[package]]
name = "proj3"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "helper" }}]

[package.optional-dependencies]
new = [{{ name = "lib", version = "2.0", source = {{ registry = "{IDX}" }} }}]
old = [{{ name = "lib", version = "1.0", source = {{ registry = "{IDX}" }} }}]

[package.dev-dependencies]
legacy = [{{ name = "lib", version = "1.0", source = {{ registry = "{IDX}" }} }}]
"#
        );
        s.push_str(&pkg(
            "helper",
            "1.0",
            &["helper-1.0-py3-none-any.whl"],
            &format!(
                "dependencies = [\n    {{ name = \"lib\", version = \"1.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra == 'extra-5-proj3-old' or extra == 'group-5-proj3-legacy'\" }},\n    {{ name = \"lib\", version = \"2.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra != 'extra-5-proj3-old' and extra != 'group-5-proj3-legacy'\" }},\n]"
            ),
        ));
        s.push_str(&lib(
            "1.0",
            "extra == 'extra-5-proj3-old' or extra == 'group-5-proj3-legacy'",
        ));
        s.push_str(&lib(
            "2.0",
            "extra != 'extra-5-proj3-old' and extra != 'group-5-proj3-legacy'",
        ));
        s
    }

    #[test]
    fn conflict_markers_pick_one_fork() {
        let lock = parse(&conflict_lock());
        let e = env("3.12.7", "amd64");
        let lib_version = |extras: &[&str], groups: &[&str]| {
            let set = install_set(&lock, "proj3", &e, extras, groups, true).unwrap();
            let libs: Vec<_> = set.iter().filter(|r| r.name == "lib").collect();
            assert_eq!(libs.len(), 1);
            libs[0].version.clone().unwrap()
        };
        assert_eq!(lib_version(&[], &[]), "2.0");
        assert_eq!(lib_version(&["new"], &[]), "2.0");
        assert_eq!(lib_version(&["old"], &[]), "1.0");
        assert_eq!(lib_version(&[], &["legacy"]), "1.0");

        let err = install_set(&lock, "proj3", &e, &["new", "old"], &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: Extras `new` and `old` are incompatible with the declared conflicts"
        );
        let err = install_set(&lock, "proj3", &e, &["new"], &["legacy"], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: Extra `new` and group `legacy` are incompatible with the declared conflicts"
        );
    }

    #[test]
    fn conflict_extras_activated_deep_in_the_graph() {
        // root -> a -> lib (fork chosen by plugin[fast]); root -> b -> c -> plugin[fast].
        // `a` is visited before `plugin[fast]` is reached, so only the first traversal
        // makes the marker see the extra.
        let mut s = String::from(
            r#"version = 1
requires-python = ">=3.12"
conflicts = [[{ package = "plugin", extra = "fast" }, { package = "plugin", extra = "slow" }]]

[[package]]
name = "root"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "a" }, { name = "b" }]
"#,
        );
        s.push_str(&pkg(
            "a",
            "1.0",
            &["a-1.0-py3-none-any.whl"],
            &format!(
                "dependencies = [\n    {{ name = \"lib\", version = \"1.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra == 'extra-6-plugin-fast'\" }},\n    {{ name = \"lib\", version = \"2.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra != 'extra-6-plugin-fast'\" }},\n]"
            ),
        ));
        s.push_str(&pkg(
            "b",
            "1.0",
            &["b-1.0-py3-none-any.whl"],
            "dependencies = [{ name = \"c\" }]",
        ));
        s.push_str(&pkg(
            "c",
            "1.0",
            &["c-1.0-py3-none-any.whl"],
            "dependencies = [{ name = \"plugin\", extra = [\"fast\"] }]",
        ));
        s.push_str(&pkg(
            "plugin",
            "1.0",
            &["plugin-1.0-py3-none-any.whl"],
            "\n[package.optional-dependencies]\nfast = [{ name = \"speedup\" }]\nslow = []",
        ));
        s.push_str(&pure("speedup", "1.0"));
        s.push_str(&pure("lib", "1.0"));
        s.push_str(&pure("lib", "2.0"));
        let lock = parse(&s);
        let set = install_set(&lock, "root", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        assert_eq!(
            names(&set),
            [
                "a==1.0",
                "b==1.0",
                "c==1.0",
                "lib==1.0",
                "plugin==1.0",
                "root==0.1.0",
                "speedup==1.0"
            ]
        );
    }

    #[test]
    fn walk_errors_and_only_group_self_reference() {
        // Two unconditional edges to different versions: the lock is inconsistent.
        let mut s = format!(
            "version = 1\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = {{ editable = \".\" }}\ndependencies = [\n    {{ name = \"lib\", version = \"1.0\", source = {{ registry = \"{IDX}\" }} }},\n    {{ name = \"other\" }},\n]\n"
        );
        s.push_str(&pkg(
            "other",
            "1.0",
            &["other-1.0-py3-none-any.whl"],
            &format!("dependencies = [{{ name = \"lib\", version = \"2.0\", source = {{ registry = \"{IDX}\" }} }}]"),
        ));
        s.push_str(&pure("lib", "1.0"));
        s.push_str(&pure("lib", "2.0"));
        let lock = parse(&s);
        let e = env("3.12.7", "amd64");
        let err = install_set(&lock, "root", &e, &[], &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: package `lib` was reached at several versions (1.0, 2.0) for this target"
        );

        // Edges that switch on two conflicting extras.
        let mut s = String::from(
            "version = 1\nconflicts = [[{ package = \"plugin\", extra = \"fast\" }, { package = \"plugin\", extra = \"slow\" }]]\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"plugin\", extra = [\"fast\"] }, { name = \"c\" }]\n",
        );
        s.push_str(&pkg(
            "c",
            "1.0",
            &["c-1.0-py3-none-any.whl"],
            "dependencies = [{ name = \"plugin\", extra = [\"slow\"] }]",
        ));
        s.push_str(&pkg(
            "plugin",
            "1.0",
            &["plugin-1.0-py3-none-any.whl"],
            "\n[package.optional-dependencies]\nfast = []\nslow = []",
        ));
        let lock = parse(&s);
        let err = install_set(&lock, "root", &e, &[], &[], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uv.lock: found conflicting extras `plugin[fast]` and `plugin[slow]` enabled simultaneously"
        );

        // --only-group with a group that names the root itself (`dev = ["root[cli]"]`): the
        // group edge re-enables the root, so it is installed with its dependencies and the
        // extra, as uv does.
        let mut s = String::from(
            "version = 1\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"six\" }]\n\n[package.optional-dependencies]\ncli = [{ name = \"click\" }]\n\n[package.dev-dependencies]\ndev = [{ name = \"root\", extra = [\"cli\"] }, { name = \"pytest\" }]\n",
        );
        for (n, v) in [("six", "1.17.0"), ("click", "8.2.1"), ("pytest", "8.4.1")] {
            s.push_str(&pure(n, v));
        }
        let lock = parse(&s);
        let opts = SyncOptions {
            roots: vec!["root".into()],
            groups: vec!["dev".into()],
            only_groups: true,
            ..SyncOptions::default()
        };
        let set = install_set_with(&lock, &e, &opts).unwrap();
        assert_eq!(
            names(&set),
            ["click==8.2.1", "pytest==8.4.1", "root==1", "six==1.17.0"]
        );
        // Without the group, --only-group installs nothing.
        let opts = SyncOptions {
            groups: vec![],
            ..opts
        };
        assert!(install_set_with(&lock, &e, &opts).unwrap().is_empty());
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
    fn artifact_locations() {
        let text = format!(
            r#"version = 1
requires-python = ">=3.12"

[[package]]
name = "root"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "httpx" }}, {{ name = "torch" }}, {{ name = "local" }}, {{ name = "direct" }}]

[[package]]
name = "httpx"
version = "0.28.1"
source = {{ path = "vendor/httpx-0.28.1-py3-none-any.whl" }}
wheels = [{{ filename = "httpx-0.28.1-py3-none-any.whl", hash = "sha256:{h}" }}]

[[package]]
name = "torch"
version = "2.5.1+cpu"
source = {{ registry = "https://index.example/whl/cpu" }}
wheels = [{{ url = "https://index.example/whl/cpu/torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl?x=1#frag", hash = "sha256:{H}" }}]

[[package]]
name = "local"
version = "1.0"
source = {{ registry = "../wheelhouse" }}
wheels = [{{ path = "local-1.0-py3-none-any.whl" }}]

[[package]]
name = "direct"
version = "3.0"
source = {{ url = "https://index.example/direct-3.0.tar.gz", subdirectory = "pkg" }}
sdist = {{ hash = "sha256:{h}" }}
"#,
            h = sha('d'),
            H = sha('D'),
        );
        let lock = parse(&text);
        let set = install_set(&lock, "root", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        assert_eq!(
            names(&set),
            [
                "direct==3.0",
                "httpx==0.28.1",
                "local==1.0",
                "torch==2.5.1+cpu"
            ]
        );
        let by = |n: &str| set.iter().find(|r| r.name == n).unwrap();
        assert_eq!(
            by("httpx").wheels[0].location,
            ArtifactLocation::Path("vendor/httpx-0.28.1-py3-none-any.whl".into())
        );
        let torch = &by("torch").wheels[0];
        assert_eq!(
            torch.filename,
            "torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl"
        );
        assert_eq!(torch.wheel.version, "2.5.1+cpu");
        assert_eq!(torch.sha256.as_deref(), Some(sha('d').as_str()));
        assert_eq!(
            torch.hash.as_deref(),
            Some(format!("sha256:{}", sha('D')).as_str())
        );
        assert_eq!(
            by("local").wheels[0].location,
            ArtifactLocation::Path("../wheelhouse/local-1.0-py3-none-any.whl".into())
        );
        let direct = by("direct");
        assert_eq!(
            direct.source,
            Source::Url {
                url: "https://index.example/direct-3.0.tar.gz".into(),
                subdirectory: Some("pkg".into())
            }
        );
        assert_eq!(
            direct.sdist.as_ref().unwrap().location,
            Some(ArtifactLocation::Url(
                "https://index.example/direct-3.0.tar.gz".into()
            ))
        );

        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        let err = pick_wheels(&set, &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 package has no wheel for cp312 manylinux_2_36_x86_64:\n  - direct 3.0 (url `https://index.example/direct-3.0.tar.gz` subdirectory `pkg`): the lock lists no wheels; an sdist exists, but building it needs Python"
        );
        let without_direct: Vec<Resolved> =
            set.into_iter().filter(|r| r.name != "direct").collect();
        let picked = pick_wheels(&without_direct, &t).unwrap();
        assert_eq!(picked.len(), 3);
    }

    #[test]
    fn pick_wheels_per_target_and_errors() {
        let lock = parse(&demo_lock());
        let e = env("3.12.7", "arm64");
        let set = install_set(&lock, "demo-app", &e, &[], &["dev"], false).unwrap();
        let picked =
            pick_wheels(&set, &Target::manylinux((3, 12), Arch::Aarch64, (2, 36))).unwrap();
        let numpy = picked.iter().find(|(r, _)| r.name == "numpy").unwrap();
        assert_eq!(
            numpy.1.filename,
            "numpy-2.5.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
        );
        assert_eq!(numpy.1.sha256.as_deref(), Some(sha('a').as_str()));
        assert_eq!(numpy.1.size, Some(1234));
        assert_eq!(picked.len(), set.len());

        // On musl the numpy wheels do not fit; the editable root has no wheels at all.
        let set = install_set(&lock, "demo-app", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        let err = pick_wheels(&set, &Target::musllinux((3, 12), Arch::X86_64, (1, 2))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 packages have no wheel for cp312 musllinux_1_2_x86_64:\n  \
             - demo-app 0.1.0 (editable `.`): the lock lists no wheels and no sdist; it must be built from its source\n  \
             - numpy 2.5.3 (registry `https://index.example/simple`): none of its wheels fits: \
             numpy-2.5.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl, \
             numpy-2.5.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl, \
             numpy-2.5.3-cp312-cp312-win_amd64.whl; there is no sdist to build from"
        );
        match err {
            LockError::NoCompatibleWheels { missing, .. } => {
                assert_eq!(missing[1].name, "numpy");
                assert_eq!(missing[1].wheels.len(), 3);
                assert!(!missing[1].has_sdist);
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn wheel_must_match_its_package() {
        let text = format!(
            "version = 1\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = {{ virtual = \".\" }}\ndependencies = [{{ name = \"a\" }}, {{ name = \"torch\" }}]\n{}{}",
            pkg("a", "1.0", &["b-1.0-py3-none-any.whl"], ""),
            pkg("torch", "2.5.1", &["torch-2.5.1+cpu-py3-none-any.whl"], ""),
        );
        let lock = parse(&text);
        let set = install_set(&lock, "root", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        let err = pick_wheels(&set, &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `a` 1.0: wheel `b-1.0-py3-none-any.whl` is for `b` 1.0"
        );
        // A wheel with a local label serves the package version without it.
        let torch: Vec<Resolved> = set.into_iter().filter(|r| r.name == "torch").collect();
        assert_eq!(pick_wheels(&torch, &t).unwrap().len(), 1);
    }

    #[test]
    fn helpers() {
        assert_eq!(percent_decode("a%2Bb%2bc%zz%4"), "a+b+c%zz%4");
        assert_eq!(percent_decode("a%+Fb%ff"), "a%+Fb\u{fffd}");
        assert_eq!(
            url_filename("https://index.example/x/a-1.0%2Bcpu-py3-none-any.whl#sha256=00"),
            "a-1.0+cpu-py3-none-any.whl"
        );
        assert_eq!(join_path("../wheelhouse/", "x.whl"), "../wheelhouse/x.whl");
        assert_eq!(join_path(".", "x.whl"), "x.whl");
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

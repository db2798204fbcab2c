//! The parsed lock: packages, their sources, artifacts and dependency edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::super::markers::{Marker, MarkerEnv, Specifiers, normalize_name};
use super::super::tags::WheelName;
use super::error::LockError;

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
    pub(super) target: usize,
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

    pub(super) fn kind(&self) -> &'static str {
        match self {
            ConflictItem::Project(_) => "package",
            ConflictItem::Extra(..) => "extra",
            ConflictItem::Group(..) => "group",
        }
    }

    pub(super) fn item_name(&self) -> &str {
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

impl Lock {
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

    pub(super) fn find_root(&self, name: &str) -> Result<usize, LockError> {
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
    pub(super) fn find_by_markers(&self, name: &str, env: &MarkerEnv) -> Result<usize, LockError> {
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

    pub(super) fn edges(&self, package: usize, extra: Option<&str>) -> &[Dependency] {
        let p = &self.packages[package];
        match extra {
            None => &p.dependencies,
            Some(e) => p.optional_dependencies.get(e).map_or(&[], Vec::as_slice),
        }
    }
}

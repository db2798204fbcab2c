//! The TOML shapes of `uv.lock`, as serde reads them before any checking.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
pub(super) struct RawHead {
    pub(super) version: Option<toml::Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawLock {
    pub(super) revision: Option<i64>,
    pub(super) requires_python: Option<String>,
    #[serde(default)]
    pub(super) resolution_markers: Vec<String>,
    #[serde(default)]
    pub(super) supported_markers: Vec<String>,
    #[serde(default)]
    pub(super) conflicts: Vec<Vec<RawConflictItem>>,
    #[serde(default)]
    pub(super) manifest: RawManifest,
    #[serde(default, alias = "distribution")]
    pub(super) package: Vec<RawPackage>,
}

#[derive(Deserialize)]
pub(super) struct RawConflictItem {
    pub(super) package: String,
    pub(super) extra: Option<String>,
    pub(super) group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawManifest {
    #[serde(default)]
    pub(super) members: Vec<String>,
    #[serde(default)]
    pub(super) requirements: Vec<RawRequirement>,
    #[serde(default)]
    pub(super) dependency_groups: BTreeMap<String, Vec<RawRequirement>>,
}

#[derive(Deserialize)]
pub(super) struct RawRequirement {
    pub(super) name: String,
    #[serde(default)]
    pub(super) extras: Vec<String>,
    pub(super) marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawPackage {
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) source: Option<RawSource>,
    #[serde(default)]
    pub(super) resolution_markers: Vec<String>,
    #[serde(default)]
    pub(super) dependencies: Vec<RawDependency>,
    #[serde(default)]
    pub(super) optional_dependencies: BTreeMap<String, Vec<RawDependency>>,
    #[serde(default, alias = "dependency-groups")]
    pub(super) dev_dependencies: BTreeMap<String, Vec<RawDependency>>,
    pub(super) sdist: Option<RawArtifact>,
    #[serde(default)]
    pub(super) wheels: Vec<RawArtifact>,
    pub(super) metadata: Option<RawMetadata>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawSource {
    pub(super) registry: Option<String>,
    pub(super) git: Option<String>,
    pub(super) url: Option<String>,
    pub(super) path: Option<String>,
    pub(super) directory: Option<String>,
    pub(super) editable: Option<String>,
    #[serde(rename = "virtual")]
    pub(super) virtual_: Option<String>,
    pub(super) subdirectory: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawDependency {
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) source: Option<RawSource>,
    #[serde(default, alias = "extras")]
    pub(super) extra: Vec<String>,
    pub(super) marker: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawArtifact {
    pub(super) url: Option<String>,
    pub(super) path: Option<String>,
    pub(super) filename: Option<String>,
    pub(super) hash: Option<String>,
    pub(super) size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawMetadata {
    #[serde(default)]
    pub(super) provides_extras: Vec<String>,
    #[serde(default, alias = "dependency-groups")]
    pub(super) requires_dev: BTreeMap<String, IgnoredAny>,
}

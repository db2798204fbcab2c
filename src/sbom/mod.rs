//! What is in an image: its Debian packages, its Python distributions and
//! its own file layers, read from the package databases its layers write
//! (no guessing from file contents), then made exact with what the build
//! knows (the .deb and wheel sha256s of its locks), and written as SPDX 2.3
//! or CycloneDX 1.6 JSON.
//!
//! Each layer is read once for what it adds to those databases
//! (`var/lib/dpkg/status`, machine-readable Debian copyright files,
//! `*.dist-info/METADATA` under `site-packages`) and what it deletes
//! (whiteouts); the image's inventory is the layers applied in order, so
//! only what the finished image holds is listed. A layer's inventory
//! depends on its bytes only and is kept in the store by diff_id.
//!
//! The documents are written here by hand (serde_json values in a fixed
//! order, times from `SOURCE_DATE_EPOCH`): their bytes must be the same for
//! the same image, on any machine.

pub mod formats;

use crate::digest::Digest;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Version of the layer inventory format (part of its store key).
const INVENTORY_FORMAT: u32 = 2;
/// A database file bigger than this is not read (a dpkg status of a big
/// image is a few MB).
const MAX_DB_FILE: u64 = 64 << 20;

/// What one layer adds to and removes from the package databases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerInventory {
    /// `var/lib/dpkg/status`, when the layer writes it.
    pub dpkg_status: Option<String>,
    /// Licenses named by machine-readable copyright files
    /// (`usr/share/doc/PKG/copyright`), by package.
    pub deb_licenses: BTreeMap<String, String>,
    /// `*.dist-info` folders the layer writes (their path), with what
    /// their METADATA says.
    pub dists: BTreeMap<String, DistMeta>,
    /// Paths the layer deletes, and folders it empties (opaque).
    pub deleted: Vec<String>,
    pub opaque: Vec<String>,
    /// `usr/bin/python3.N` and `usr/local/bin/python3.N` entries (Python
    /// layers look for the base's interpreter here), and whether the layer
    /// has musl's loader.
    #[serde(default)]
    pub pythons: Vec<String>,
    #[serde(default)]
    pub musl: bool,
}

/// The fields of a distribution's METADATA an SBOM uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DistMeta {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
    /// Names of the distributions it requires (not those of extras).
    pub requires: Vec<String>,
}

/// Reads a layer (an uncompressed tar stream) for its inventory.
pub fn scan_layer(r: impl Read) -> Result<LayerInventory> {
    let mut inv = LayerInventory::default();
    let mut ar = tar::Archive::new(r);
    let bad = |e: std::io::Error| Error::Other(format!("reading a layer for its SBOM: {e}"));
    for e in ar.entries().map_err(bad)? {
        let mut e = e.map_err(bad)?;
        let raw = e.path_bytes();
        let path = String::from_utf8_lossy(&raw).into_owned();
        let file = e.header().entry_type().is_file() && e.size() <= MAX_DB_FILE;
        inv.add(&path, file, &mut || {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).map_err(bad)?;
            Ok(buf)
        })?;
    }
    Ok(inv)
}

impl LayerInventory {
    /// The inventory of a layer made from entries in memory (path, and a
    /// regular file's bytes): what [`scan_layer`] reads from its tar.
    pub fn of_entries<'a>(entries: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut inv = LayerInventory::default();
        for (path, data) in entries {
            let _ = inv.add(path, data.is_some(), &mut || {
                Ok(data.unwrap_or_default().to_vec())
            });
        }
        inv
    }

    /// Takes one entry of the layer: `read` gives a regular file's bytes,
    /// called only when they are a database file.
    fn add(
        &mut self,
        path: &str,
        file: bool,
        read: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<()> {
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if name == ".wh..wh..opq" {
            self.opaque.push(dir.to_string());
            return Ok(());
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            self.deleted.push(join(dir, gone));
            return Ok(());
        }
        if path.starts_with("lib/ld-musl-") || path.starts_with("usr/lib/ld-musl-") {
            self.musl = true;
        }
        if (dir == "usr/bin" || dir == "usr/local/bin")
            && name
                .strip_prefix("python")
                .and_then(|v| v.split_once('.'))
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        {
            self.pythons.push(path.to_string());
        }
        if !file {
            return Ok(());
        }
        let mut text = || -> Result<String> { Ok(String::from_utf8_lossy(&read()?).into_owned()) };
        if path == "var/lib/dpkg/status" {
            self.dpkg_status = Some(text()?);
        } else if let Some(pkg) = path
            .strip_prefix("usr/share/doc/")
            .and_then(|p| p.strip_suffix("/copyright"))
            .filter(|p| !p.contains('/'))
        {
            if let Some(l) = copyright_license(&text()?) {
                self.deb_licenses.insert(pkg.to_string(), l);
            }
        } else if name == "METADATA"
            && dir.ends_with(".dist-info")
            && (dir.contains("/site-packages/") || dir.contains("/dist-packages/"))
            && let Some(m) = parse_metadata(&text()?)
        {
            self.dists.insert(dir.to_string(), m);
        }
        Ok(())
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The license of a machine-readable Debian copyright file: the `License`
/// of its `Files: *` paragraph (its first line, the short name).
fn copyright_license(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    if !first.starts_with("Format:") || !first.contains("copyright-format/1.0") {
        return None;
    }
    text.split("\n\n").find_map(|para| {
        let mut files_all = false;
        let mut license = None;
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Files:") {
                files_all = v.split_whitespace().any(|f| f == "*");
            } else if let Some(v) = line.strip_prefix("License:") {
                license = Some(v.trim().to_string()).filter(|l| !l.is_empty());
            }
        }
        files_all.then_some(license).flatten()
    })
}

/// Name, version, license and requirements from a METADATA file's header.
fn parse_metadata(text: &str) -> Option<DistMeta> {
    let mut m = DistMeta::default();
    let mut license_expr = None;
    let mut license = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => m.name = v.to_string(),
            "Version" => m.version = v.to_string(),
            "License-Expression" => license_expr = Some(v.to_string()),
            // Only a short one-line License (many hold the whole text).
            "License" if !v.is_empty() && v.len() <= 64 => license = Some(v.to_string()),
            "Requires-Dist" => {
                let (req, marker) = v.split_once(';').unwrap_or((v, ""));
                if marker.contains("extra") {
                    continue;
                }
                let name: String = req
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                if !name.is_empty() {
                    m.requires.push(normalize(&name));
                }
            }
            _ => {}
        }
    }
    m.license = license_expr.or(license);
    (!m.name.is_empty() && !m.version.is_empty()).then_some(m)
}

pub use crate::python::names::normalize_name as normalize;

/// The media type of a layer inventory shared through a registry step
/// cache (a data entry, so that a runner that does not hold a layer needs
/// not download it to list what it installs).
pub const MT_INVENTORY: &str = "application/vnd.imgbuild.sbom-inventory.v1+json";

/// The key of the inventory of the layer with `diff_id`.
pub fn inventory_key(diff_id: &Digest) -> Digest {
    let mut k = crate::digest::KeyHasher::new("sbom-inventory", INVENTORY_FORMAT);
    k.digest(diff_id);
    k.finish()
}

fn inventory_path(store: &crate::store::Store, diff_id: &Digest) -> std::path::PathBuf {
    store
        .root()
        .join("sbom")
        .join(format!("v{INVENTORY_FORMAT}-{}", diff_id.hex()))
}

/// The inventory of the layer with `diff_id` if the store keeps it, with
/// its bytes.
pub fn stored_inventory(
    store: &crate::store::Store,
    diff_id: &Digest,
) -> Option<(LayerInventory, Vec<u8>)> {
    let bytes = std::fs::read(inventory_path(store, diff_id)).ok()?;
    let inv = serde_json::from_slice(&bytes).ok()?;
    Some((inv, bytes))
}

/// Keeps `bytes`, an inventory's JSON, for the layer with `diff_id`, if
/// they are one; the inventory.
pub fn keep_inventory(
    store: &crate::store::Store,
    diff_id: &Digest,
    bytes: &[u8],
) -> Result<LayerInventory> {
    let inv: LayerInventory = serde_json::from_slice(bytes)
        .map_err(|e| Error::Other(format!("not a layer inventory: {e}")))?;
    write_inventory(store, diff_id, bytes)?;
    Ok(inv)
}

fn write_inventory(store: &crate::store::Store, diff_id: &Digest, bytes: &[u8]) -> Result<()> {
    let path = inventory_path(store, diff_id);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    store.write_atomic(&path, bytes)
}

/// Keeps `inv` as the inventory of the layer with `diff_id`; its bytes.
pub fn keep(
    store: &crate::store::Store,
    diff_id: &Digest,
    inv: &LayerInventory,
) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec(inv).expect("serializes");
    write_inventory(store, diff_id, &bytes)?;
    Ok(bytes)
}

/// The inventory of a stored layer, read once and then kept by diff_id;
/// with its bytes.
pub fn layer_inventory(
    store: &crate::store::Store,
    blob: &std::path::Path,
    media_type: &str,
    diff_id: &Digest,
) -> Result<(LayerInventory, Vec<u8>)> {
    if let Some(found) = stored_inventory(store, diff_id) {
        return Ok(found);
    }
    let r = crate::layer::read::open_layer(blob, media_type, store.max_layer_size())?;
    let inv = scan_layer(r)?;
    let bytes = keep(store, diff_id, &inv)?;
    Ok((inv, bytes))
}

/// An installed Debian package.
#[derive(Clone, Debug, PartialEq)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The source package, when it differs from the name.
    pub source: Option<String>,
    pub license: Option<String>,
    /// Installed packages it depends on (Depends, Pre-Depends).
    pub depends: Vec<String>,
    /// The .deb's sha256 and where it came from, when the build locked it.
    pub sha256: Option<String>,
    pub url: Option<String>,
}

/// An installed Python distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Dist {
    pub name: String,
    pub version: String,
    /// Its `.dist-info` folder in the image.
    pub path: String,
    pub license: Option<String>,
    /// Installed distributions it requires (normalized names).
    pub requires: Vec<String>,
    /// The wheel's file name, sha256 and source, when the build locked it.
    pub wheel: Option<String>,
    pub sha256: Option<String>,
    pub url: Option<String>,
}

/// One of the image's own layers (files, RUN steps): the step that made it.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnLayer {
    pub name: String,
    pub digest: Digest,
    pub diff_id: Digest,
}

/// What the build knows of the packages it installed, from its locks.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// (name, version, arch) → (sha256, URL).
    pub debs: BTreeMap<(String, String, String), (String, String)>,
    /// (normalized name, version) → (wheel file name, sha256, URL if any).
    pub wheels: BTreeMap<(String, String), (String, String, Option<String>)>,
}

/// The inventory of a whole image (one platform).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub debs: Vec<Deb>,
    pub dists: Vec<Dist>,
}

/// Applies the layers' inventories in order: what the finished image holds.
pub fn merge(layers: &[LayerInventory], known: &Known) -> Inventory {
    let mut status: Option<&str> = None;
    let mut licenses: BTreeMap<&str, &str> = BTreeMap::new();
    let mut dists: BTreeMap<&str, &DistMeta> = BTreeMap::new();
    let under =
        |p: &str, dir: &str| dir.is_empty() || p == dir || p.starts_with(&format!("{dir}/"));
    for l in layers {
        for gone in l.deleted.iter().chain(&l.opaque) {
            dists.retain(|p, _| !under(p, gone));
            if under("var/lib/dpkg/status", gone) {
                status = None;
            }
        }
        if let Some(s) = &l.dpkg_status {
            status = Some(s);
        }
        for (k, v) in &l.deb_licenses {
            licenses.insert(k, v);
        }
        for (p, m) in &l.dists {
            dists.insert(p, m);
        }
    }
    let mut debs = status.map(parse_status).unwrap_or_default();
    let installed: BTreeSet<String> = debs.iter().map(|d| d.name.clone()).collect();
    for d in &mut debs {
        d.depends.retain(|n| installed.contains(n));
        d.license = licenses.get(d.name.as_str()).map(|s| s.to_string());
        if let Some((sha, url)) =
            known
                .debs
                .get(&(d.name.clone(), d.version.clone(), d.arch.clone()))
        {
            d.sha256 = Some(sha.clone());
            d.url = Some(url.clone());
        }
    }
    let names: BTreeSet<String> = dists.values().map(|m| normalize(&m.name)).collect();
    let mut out: Vec<Dist> = dists
        .into_iter()
        .map(|(p, m)| {
            let k = (normalize(&m.name), m.version.clone());
            let w = known.wheels.get(&k);
            let mut requires: Vec<String> = m
                .requires
                .iter()
                .filter(|r| names.contains(*r))
                .cloned()
                .collect();
            requires.sort();
            requires.dedup();
            Dist {
                name: m.name.clone(),
                version: m.version.clone(),
                path: p.to_string(),
                license: m.license.clone(),
                requires,
                wheel: w.map(|w| w.0.clone()),
                sha256: w.map(|w| w.1.clone()),
                url: w.and_then(|w| w.2.clone()),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (normalize(&a.name), &a.version, &a.path).cmp(&(normalize(&b.name), &b.version, &b.path))
    });
    Inventory { debs, dists: out }
}

/// The installed packages of a dpkg status file, sorted by name and
/// architecture.
fn parse_status(text: &str) -> Vec<Deb> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut f: BTreeMap<&str, String> = BTreeMap::new();
        let mut last: Option<&str> = None;
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(k) = last
                    && let Some(v) = f.get_mut(k)
                {
                    v.push('\n');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                f.insert(k, v.trim().to_string());
                last = Some(k);
            }
        }
        let installed = f.get("Status").is_some_and(|s| s.ends_with(" installed"));
        let (Some(name), Some(version), true) = (f.get("Package"), f.get("Version"), installed)
        else {
            continue;
        };
        let source = f
            .get("Source")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .filter(|s| !s.is_empty() && s != name);
        let mut depends: Vec<String> = ["Pre-Depends", "Depends"]
            .iter()
            .filter_map(|k| f.get(k))
            .flat_map(|v| v.split([',', '|']))
            .filter_map(|d| {
                let n = d.trim().split([' ', '(', ':']).next()?.trim();
                (!n.is_empty()).then(|| n.to_string())
            })
            .collect();
        depends.sort();
        depends.dedup();
        out.push(Deb {
            name: name.clone(),
            version: version.clone(),
            arch: f.get("Architecture").cloned().unwrap_or_default(),
            source,
            license: None,
            depends,
            sha256: None,
            url: None,
        });
    }
    out.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    out
}

/// A URL as an attestation may show it: no user or password, and no host
/// path (a local file is named by its file name only).
pub fn public_url(location: &str) -> Option<String> {
    let mut u = url::Url::parse(location).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Some(u.to_string())
}

#[cfg(test)]
mod tests;

//! Python fixtures for the integration tests, all made offline:
//!
//! * [`WheelSpec`] / [`write_wheel`]: a valid wheel (METADATA, WHEEL,
//!   entry_points.txt, `.data` entries and a RECORD with
//!   `sha256=<urlsafe base64>,size` rows) written with the `zip` crate;
//! * [`RootProject`] / [`LockedPackage`] / [`write_project`]: a `uv.lock` in
//!   uv's own format (version 1) and the `pyproject.toml` it was locked from,
//!   so the lock is not stale;
//! * [`FileServer`]: a small HTTP/1.1 file server on 127.0.0.1 (GET and HEAD)
//!   that logs every request, standing in for a package index;
//! * [`python_base`] / [`python312_base`]: OCI layouts, written with imgbuild
//!   itself, that look like a Debian Python base (an interpreter file and
//!   `var/lib/dpkg/status`) or an official python image (`PYTHON_VERSION`).

use super::{TarEntry, ib, mkdirs, sha256_hex, write, write_file};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

// ---------------------------------------------------------------------------
// Wheels
// ---------------------------------------------------------------------------

/// What goes into one wheel.
#[derive(Clone, Debug)]
pub struct WheelSpec {
    /// The distribution name as it is spelled in METADATA (e.g. `Tooly_Kit`).
    pub name: String,
    pub version: String,
    /// The compressed tag set, e.g. `py3-none-any` or
    /// `cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64`.
    pub tag: String,
    /// Files at the archive root (`pkg/__init__.py`, ...).
    pub files: Vec<(String, Vec<u8>)>,
    /// The text of `.dist-info/entry_points.txt`.
    pub entry_points: Option<String>,
    /// `.data` entries: (path below `<dist>.data/`, e.g. `scripts/tool` or
    /// `headers/x.h`, bytes, executable). A leading `.data/` is accepted.
    pub data: Vec<(String, Vec<u8>, bool)>,
    /// `Requires-Dist` lines of METADATA.
    pub requires_dist: Vec<String>,
}

impl WheelSpec {
    /// An empty wheel with this tag.
    pub fn new(name: &str, version: &str, tag: &str) -> WheelSpec {
        WheelSpec {
            name: name.into(),
            version: version.into(),
            tag: tag.into(),
            files: Vec::new(),
            entry_points: None,
            data: Vec::new(),
            requires_dist: Vec::new(),
        }
    }

    /// A `py3-none-any` wheel with one module, `<import name>/__init__.py`.
    pub fn pure(name: &str, version: &str) -> WheelSpec {
        let module = import_name(name);
        WheelSpec::new(name, version, "py3-none-any").file(
            &format!("{module}/__init__.py"),
            format!("__version__ = \"{version}\"\n").as_bytes(),
        )
    }

    pub fn file(mut self, path: &str, bytes: &[u8]) -> WheelSpec {
        self.files.push((path.into(), bytes.to_vec()));
        self
    }

    pub fn data(mut self, path: &str, bytes: &[u8], executable: bool) -> WheelSpec {
        let path = path.strip_prefix(".data/").unwrap_or(path);
        self.data.push((path.into(), bytes.to_vec(), executable));
        self
    }

    pub fn entry_points(mut self, text: &str) -> WheelSpec {
        self.entry_points = Some(text.into());
        self
    }

    pub fn requires(mut self, req: &str) -> WheelSpec {
        self.requires_dist.push(req.into());
        self
    }

    /// The name as wheel file and `.dist-info` names escape it.
    pub fn escaped_name(&self) -> String {
        escape_name(&self.name)
    }

    /// `<escaped name>-<version>-<tag>.whl`.
    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", self.escaped_name(), self.version, self.tag)
    }

    /// `<escaped name>-<version>.dist-info`.
    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.escaped_name(), self.version)
    }

    /// `<escaped name>-<version>.data`.
    pub fn data_dir(&self) -> String {
        format!("{}-{}.data", self.escaped_name(), self.version)
    }

    /// The individual tags of the (dot-compressed) tag set.
    pub fn expanded_tags(&self) -> Vec<String> {
        let parts: Vec<&str> = self.tag.split('-').collect();
        assert_eq!(
            parts.len(),
            3,
            "a wheel tag is python-abi-platform: {}",
            self.tag
        );
        let mut out = Vec::new();
        for py in parts[0].split('.') {
            for abi in parts[1].split('.') {
                for plat in parts[2].split('.') {
                    out.push(format!("{py}-{abi}-{plat}"));
                }
            }
        }
        out
    }

    /// Pure-python wheels (`*-none-any`) have Root-Is-Purelib: true.
    pub fn is_purelib(&self) -> bool {
        self.tag.ends_with("-none-any")
    }
}

/// PEP 503 normalisation: lowercase, runs of `-_.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// The wheel-filename escape of a name: runs of `-_.` become `_`.
pub fn escape_name(name: &str) -> String {
    normalize(name).replace('-', "_")
}

/// The module a test package installs: the escaped, lowercase name.
pub fn import_name(name: &str) -> String {
    escape_name(name)
}

/// A wheel written to disk.
#[derive(Clone, Debug)]
pub struct BuiltWheel {
    pub path: PathBuf,
    pub filename: String,
    /// Lowercase hex sha256 of the whole file.
    pub sha256: String,
    pub size: u64,
}

/// Unpadded URL-safe base64, as RECORD rows use it.
pub fn b64_urlsafe_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(ALPHABET[idx as usize] as char);
        }
    }
    out
}

/// `sha256=<urlsafe base64>` of `data`, as in RECORD.
pub fn record_hash(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    format!("sha256={}", b64_urlsafe_nopad(&Sha256::digest(data)))
}

/// The METADATA text of a wheel.
fn metadata_text(spec: &WheelSpec) -> String {
    let mut s = format!(
        "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: test package {}\n",
        spec.name, spec.version, spec.name
    );
    // Provides-Extra for every `extra == '…'` the requirements mention.
    let mut extras: Vec<&str> = spec
        .requires_dist
        .iter()
        .filter_map(|r| r.split_once("extra == "))
        .filter_map(|(_, rest)| rest.split(['\'', '"']).nth(1))
        .collect();
    extras.sort();
    extras.dedup();
    for e in extras {
        s.push_str(&format!("Provides-Extra: {e}\n"));
    }
    for r in &spec.requires_dist {
        s.push_str(&format!("Requires-Dist: {r}\n"));
    }
    s
}

/// The WHEEL text of a wheel.
fn wheel_text(spec: &WheelSpec) -> String {
    let mut s = format!(
        "Wheel-Version: 1.0\nGenerator: imgbuild-tests 1.0\nRoot-Is-Purelib: {}\n",
        spec.is_purelib()
    );
    for t in spec.expanded_tags() {
        s.push_str(&format!("Tag: {t}\n"));
    }
    s
}

/// Writes the wheel into `dir` (created if missing). Entries are written in
/// a fixed order with a fixed timestamp, so the same spec always gives the
/// same bytes.
pub fn write_wheel(dir: &Path, spec: &WheelSpec) -> BuiltWheel {
    use zip::write::SimpleFileOptions;
    mkdirs(dir);
    let dist_info = spec.dist_info();
    let data_dir = spec.data_dir();
    // (path, bytes, unix mode)
    let mut entries: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for (p, b) in &spec.files {
        entries.push((p.clone(), b.clone(), 0o644));
    }
    for (p, b, x) in &spec.data {
        entries.push((
            format!("{data_dir}/{p}"),
            b.clone(),
            if *x { 0o755 } else { 0o644 },
        ));
    }
    entries.push((
        format!("{dist_info}/METADATA"),
        metadata_text(spec).into_bytes(),
        0o644,
    ));
    entries.push((
        format!("{dist_info}/WHEEL"),
        wheel_text(spec).into_bytes(),
        0o644,
    ));
    if let Some(ep) = &spec.entry_points {
        entries.push((
            format!("{dist_info}/entry_points.txt"),
            ep.clone().into_bytes(),
            0o644,
        ));
    }
    let mut record = String::new();
    for (p, b, _) in &entries {
        record.push_str(&format!("{p},{},{}\n", record_hash(b), b.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    entries.push((format!("{dist_info}/RECORD"), record.into_bytes(), 0o644));

    let filename = spec.filename();
    let path = dir.join(&filename);
    let file = fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut zw = zip::ZipWriter::new(file);
    for (p, b, mode) in &entries {
        // Big incompressible files are stored, like real wheels' binaries.
        let method = if b.len() > 1 << 20 {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let opts = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(*mode)
            .large_file(b.len() as u64 >= u64::from(u32::MAX));
        zw.start_file(p.as_str(), opts)
            .unwrap_or_else(|e| panic!("zip entry {p}: {e}"));
        zw.write_all(b).expect("write a zip entry");
    }
    zw.finish().expect("finish the wheel");
    let bytes = fs::read(&path).expect("read the wheel back");
    BuiltWheel {
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
        filename,
        path,
    }
}

/// Parses RECORD text into (path, hash, size) rows (no quoting in the tests'
/// paths, but quoted fields are unquoted).
pub fn parse_record(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            let mut chars = l.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        cur.push('"');
                        chars.next();
                    }
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                    c => cur.push(c),
                }
            }
            fields.push(cur);
            assert_eq!(fields.len(), 3, "a RECORD row has three fields: {l:?}");
            (fields[0].clone(), fields[1].clone(), fields[2].clone())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// uv.lock and pyproject.toml
// ---------------------------------------------------------------------------

/// A requirement (pyproject) or a dependency edge (uv.lock).
#[derive(Clone, Debug)]
pub struct Req {
    pub name: String,
    /// PEP 440 specifier, e.g. `>=1.0` (pyproject and `requires-dist` only).
    pub specifier: Option<String>,
    /// PEP 508 marker. pyproject.toml gets it as written; uv.lock gets
    /// [`lock_marker`] of it.
    pub marker: Option<String>,
    /// Extras of the target to activate.
    pub extras: Vec<String>,
}

impl Req {
    pub fn new(name: &str) -> Req {
        Req {
            name: name.into(),
            specifier: None,
            marker: None,
            extras: Vec::new(),
        }
    }

    pub fn marker(mut self, m: &str) -> Req {
        self.marker = Some(m.into());
        self
    }

    pub fn spec(mut self, s: &str) -> Req {
        self.specifier = Some(s.into());
        self
    }

    pub fn extra(mut self, e: &str) -> Req {
        self.extras.push(e.into());
        self
    }

    /// The PEP 508 string pyproject.toml holds.
    pub fn pep508(&self) -> String {
        let mut s = self.name.clone();
        if !self.extras.is_empty() {
            s.push_str(&format!("[{}]", self.extras.join(",")));
        }
        if let Some(sp) = &self.specifier {
            s.push_str(sp);
        }
        if let Some(m) = &self.marker {
            s.push_str(&format!("; {m}"));
        }
        s
    }
}

/// How the root project appears in the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// `{ virtual = "." }`: no build system; never installed.
    Virtual,
    /// `{ editable = "." }`: a package with a build system.
    Editable,
}

/// The project a lock was made for.
#[derive(Clone, Debug)]
pub struct RootProject {
    pub name: String,
    pub version: String,
    pub source: RootSource,
    pub requires_python: String,
    pub dependencies: Vec<Req>,
    /// `[project.optional-dependencies]`.
    pub extras: Vec<(String, Vec<Req>)>,
    /// `[dependency-groups]`.
    pub groups: Vec<(String, Vec<Req>)>,
}

impl RootProject {
    pub fn new(name: &str) -> RootProject {
        RootProject {
            name: name.into(),
            version: "0.1.0".into(),
            source: RootSource::Virtual,
            requires_python: ">=3.8".into(),
            dependencies: Vec::new(),
            extras: Vec::new(),
            groups: Vec::new(),
        }
    }

    pub fn dep(mut self, r: Req) -> RootProject {
        self.dependencies.push(r);
        self
    }

    pub fn extra(mut self, name: &str, reqs: Vec<Req>) -> RootProject {
        self.extras.push((name.into(), reqs));
        self
    }

    pub fn group(mut self, name: &str, reqs: Vec<Req>) -> RootProject {
        self.groups.push((name.into(), reqs));
        self
    }
}

/// Where a locked wheel comes from.
#[derive(Clone, Debug)]
pub enum WheelLoc {
    /// `url = "…"` (registry or direct URL sources).
    Url(String),
    /// `path = "…"` (local flat-index registries; relative to the index folder).
    Path(String),
}

/// One wheel of a locked package.
#[derive(Clone, Debug)]
pub struct LockedWheel {
    pub loc: WheelLoc,
    /// Lowercase hex sha256.
    pub sha256: String,
    pub size: u64,
}

impl LockedWheel {
    /// The wheel `w` as served from `base_url` (ending in `/`).
    pub fn at(base_url: &str, w: &BuiltWheel) -> LockedWheel {
        LockedWheel {
            loc: WheelLoc::Url(format!("{base_url}{}", w.filename)),
            sha256: w.sha256.clone(),
            size: w.size,
        }
    }

    /// The wheel `w` in a local flat index folder.
    pub fn local(w: &BuiltWheel) -> LockedWheel {
        LockedWheel {
            loc: WheelLoc::Path(w.filename.clone()),
            sha256: w.sha256.clone(),
            size: w.size,
        }
    }
}

/// A `[[package]]` entry from a registry.
#[derive(Clone, Debug)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// `source = { registry = "…" }`: an index URL or a local folder.
    pub registry: String,
    /// Dependency edges (`name`, `marker`, `extras`; specifiers are ignored).
    pub dependencies: Vec<Req>,
    /// `[package.optional-dependencies]`.
    pub extras: Vec<(String, Vec<Req>)>,
    pub wheels: Vec<LockedWheel>,
}

impl LockedPackage {
    pub fn new(name: &str, version: &str, registry: &str) -> LockedPackage {
        LockedPackage {
            name: normalize(name),
            version: version.into(),
            registry: registry.into(),
            dependencies: Vec::new(),
            extras: Vec::new(),
            wheels: Vec::new(),
        }
    }

    pub fn dep(mut self, r: Req) -> LockedPackage {
        self.dependencies.push(r);
        self
    }

    pub fn extra(mut self, name: &str, reqs: Vec<Req>) -> LockedPackage {
        self.extras.push((name.into(), reqs));
        self
    }

    pub fn wheel(mut self, w: LockedWheel) -> LockedPackage {
        self.wheels.push(w);
        self
    }
}

/// The marker as uv writes it into a lock: `python_version` comparisons
/// become `python_full_version` ones (`< '3.10'` stays, `== '3.11'` becomes
/// `== '3.11.*'`, `> '3.11'` becomes `>= '3.12'`, `<= '3.11'` becomes
/// `< '3.12'`). Only the forms the tests use are handled.
pub fn lock_marker(m: &str) -> String {
    let m = m.replace('"', "'");
    let Some(rest) = m.strip_prefix("python_version ") else {
        return m;
    };
    let (op, v) = rest.split_once(' ').expect("python_version OP 'X.Y'");
    let v = v.trim_matches('\'');
    let (maj, min) = v.split_once('.').expect("X.Y");
    let min: u32 = min.parse().expect("minor");
    match op {
        "<" | ">=" => format!("python_full_version {op} '{v}'"),
        "==" => format!("python_full_version == '{v}.*'"),
        "!=" => format!("python_full_version != '{v}.*'"),
        ">" => format!("python_full_version >= '{maj}.{}'", min + 1),
        "<=" => format!("python_full_version < '{maj}.{}'", min + 1),
        other => panic!("lock_marker: unsupported operator {other}"),
    }
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn str_array(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", v.join(", "))
}

/// An edge as uv writes it: `{ name = "x", extra = ["y"], marker = "…" }`.
fn edge(r: &Req) -> String {
    let mut s = format!("{{ name = {}", toml_str(&normalize(&r.name)));
    if !r.extras.is_empty() {
        s.push_str(&format!(", extra = {}", str_array(&r.extras)));
    }
    if let Some(m) = &r.marker {
        s.push_str(&format!(", marker = {}", toml_str(&lock_marker(m))));
    }
    s.push_str(" }");
    s
}

/// A requirement table of `[package.metadata]`:
/// `{ name = "x", extras = ["y"], marker = "…", specifier = ">=1" }`.
fn requirement(r: &Req, extra_marker: Option<&str>) -> String {
    let mut s = format!("{{ name = {}", toml_str(&normalize(&r.name)));
    if !r.extras.is_empty() {
        s.push_str(&format!(", extras = {}", str_array(&r.extras)));
    }
    let marker = match (&r.marker, extra_marker) {
        (None, None) => None,
        (Some(m), None) => Some(lock_marker(m)),
        (None, Some(e)) => Some(format!("extra == '{e}'")),
        (Some(m), Some(e)) => Some(format!("{} and extra == '{e}'", lock_marker(m))),
    };
    if let Some(sp) = &r.specifier {
        s.push_str(&format!(", specifier = {}", toml_str(sp)));
    }
    if let Some(m) = marker {
        s.push_str(&format!(", marker = {}", toml_str(&m)));
    }
    s.push_str(" }");
    s
}

fn edge_list(key: &str, reqs: &[Req]) -> String {
    let mut sorted: Vec<&Req> = reqs.iter().collect();
    sorted.sort_by_key(|r| normalize(&r.name));
    let mut s = format!("{key} = [\n");
    for r in sorted {
        s.push_str(&format!("    {},\n", edge(r)));
    }
    s.push_str("]\n");
    s
}

fn registry_package(p: &LockedPackage) -> String {
    let mut s = String::from("[[package]]\n");
    s.push_str(&format!("name = {}\n", toml_str(&p.name)));
    s.push_str(&format!("version = {}\n", toml_str(&p.version)));
    s.push_str(&format!(
        "source = {{ registry = {} }}\n",
        toml_str(&p.registry)
    ));
    if !p.dependencies.is_empty() {
        s.push_str(&edge_list("dependencies", &p.dependencies));
    }
    s.push_str("wheels = [\n");
    for w in &p.wheels {
        let loc = match &w.loc {
            WheelLoc::Url(u) => format!("url = {}", toml_str(u)),
            WheelLoc::Path(p) => format!("path = {}", toml_str(p)),
        };
        s.push_str(&format!(
            "    {{ {loc}, hash = \"sha256:{}\", size = {} }},\n",
            w.sha256, w.size
        ));
    }
    s.push_str("]\n");
    let extras: Vec<&(String, Vec<Req>)> = p.extras.iter().filter(|(_, r)| !r.is_empty()).collect();
    if !extras.is_empty() {
        s.push_str("\n[package.optional-dependencies]\n");
        for (name, reqs) in extras {
            s.push_str(&edge_list(&toml_key(name), reqs));
        }
    }
    s
}

fn toml_key(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        toml_str(k)
    }
}

fn root_package(r: &RootProject) -> String {
    let mut s = String::from("[[package]]\n");
    s.push_str(&format!("name = {}\n", toml_str(&normalize(&r.name))));
    s.push_str(&format!("version = {}\n", toml_str(&r.version)));
    s.push_str(match r.source {
        RootSource::Virtual => "source = { virtual = \".\" }\n",
        RootSource::Editable => "source = { editable = \".\" }\n",
    });
    if !r.dependencies.is_empty() {
        s.push_str(&edge_list("dependencies", &r.dependencies));
    }
    let extras: Vec<&(String, Vec<Req>)> = r.extras.iter().filter(|(_, v)| !v.is_empty()).collect();
    if !extras.is_empty() {
        s.push_str("\n[package.optional-dependencies]\n");
        for (name, reqs) in &extras {
            s.push_str(&edge_list(&toml_key(name), reqs));
        }
    }
    let groups: Vec<&(String, Vec<Req>)> = r.groups.iter().filter(|(_, v)| !v.is_empty()).collect();
    if !groups.is_empty() {
        s.push_str("\n[package.dev-dependencies]\n");
        for (name, reqs) in &groups {
            s.push_str(&edge_list(&toml_key(name), reqs));
        }
    }
    // [package.metadata]: the inputs, compared with pyproject.toml by `--locked`.
    let mut requires: Vec<(String, String)> = Vec::new();
    for d in &r.dependencies {
        requires.push((normalize(&d.name), requirement(d, None)));
    }
    for (extra, reqs) in &r.extras {
        for d in reqs {
            requires.push((normalize(&d.name), requirement(d, Some(extra))));
        }
    }
    requires.sort();
    s.push_str("\n[package.metadata]\n");
    if requires.is_empty() {
        s.push_str("requires-dist = []\n");
    } else {
        s.push_str("requires-dist = [\n");
        for (_, line) in &requires {
            s.push_str(&format!("    {line},\n"));
        }
        s.push_str("]\n");
    }
    if !r.extras.is_empty() {
        let names: Vec<String> = r.extras.iter().map(|(n, _)| n.clone()).collect();
        s.push_str(&format!("provides-extras = {}\n", str_array(&names)));
    }
    if !r.groups.is_empty() {
        s.push_str("\n[package.metadata.requires-dev]\n");
        for (name, reqs) in &r.groups {
            let mut sorted: Vec<&Req> = reqs.iter().collect();
            sorted.sort_by_key(|q| normalize(&q.name));
            let items: Vec<String> = sorted.iter().map(|q| requirement(q, None)).collect();
            s.push_str(&format!("{} = [{}]\n", toml_key(name), items.join(", ")));
        }
    }
    s
}

/// The text of a `uv.lock` for `root` and `packages` (sorted by name, as uv
/// writes them).
pub fn lock_text(root: &RootProject, packages: &[LockedPackage]) -> String {
    let mut s = format!(
        "version = 1\nrevision = 3\nrequires-python = {}\n",
        toml_str(&root.requires_python)
    );
    let mut blocks: Vec<(String, String, String)> = packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), registry_package(p)))
        .collect();
    blocks.push((
        normalize(&root.name),
        root.version.clone(),
        root_package(root),
    ));
    blocks.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (_, _, b) in blocks {
        s.push('\n');
        s.push_str(&b);
    }
    s
}

/// The text of the `pyproject.toml` the lock was made from.
pub fn pyproject_text(root: &RootProject) -> String {
    let mut s = String::from("[project]\n");
    s.push_str(&format!("name = {}\n", toml_str(&root.name)));
    s.push_str(&format!("version = {}\n", toml_str(&root.version)));
    s.push_str(&format!(
        "requires-python = {}\n",
        toml_str(&root.requires_python)
    ));
    s.push_str("dependencies = [\n");
    for d in &root.dependencies {
        s.push_str(&format!("    {},\n", toml_str(&d.pep508())));
    }
    s.push_str("]\n");
    if !root.extras.is_empty() {
        s.push_str("\n[project.optional-dependencies]\n");
        for (name, reqs) in &root.extras {
            let items: Vec<String> = reqs.iter().map(|r| r.pep508()).collect();
            s.push_str(&format!("{} = {}\n", toml_key(name), str_array(&items)));
        }
    }
    if !root.groups.is_empty() {
        s.push_str("\n[dependency-groups]\n");
        for (name, reqs) in &root.groups {
            let items: Vec<String> = reqs.iter().map(|r| r.pep508()).collect();
            s.push_str(&format!("{} = {}\n", toml_key(name), str_array(&items)));
        }
    }
    if root.source == RootSource::Editable {
        s.push_str(
            "\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
        );
    }
    s
}

/// Writes `dir/pyproject.toml` and `dir/uv.lock`.
pub fn write_project(dir: &Path, root: &RootProject, packages: &[LockedPackage]) {
    mkdirs(dir);
    write(dir, "pyproject.toml", &pyproject_text(root));
    write(dir, "uv.lock", &lock_text(root, packages));
}

/// A virtual uv project `root` at `dir`, locked to pure wheels `index`
/// serves: one per (name, version, the names it requires); the project
/// depends on the first.
pub fn served_project(
    dir: &Path,
    index: &FileServer,
    root: &str,
    wheels: &[(&str, &str, &[&str])],
) {
    let mut packages = Vec::new();
    for (name, version, requires) in wheels {
        let mut spec = WheelSpec::pure(name, version);
        let mut pkg = LockedPackage::new(name, version, &index.url("simple/"));
        for r in *requires {
            spec = spec.requires(r);
            pkg = pkg.dep(Req::new(r));
        }
        let w = write_wheel(&index.root().join("files"), &spec);
        packages.push(pkg.wheel(LockedWheel::at(&index.url("files/"), &w)));
    }
    let root = RootProject::new(root).dep(Req::new(wheels[0].0));
    write_project(dir, &root, &packages);
}

// ---------------------------------------------------------------------------
// A file server standing in for a package index
// ---------------------------------------------------------------------------

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The percent-decoded path, e.g. `/files/x-1.0-py3-none-any.whl`.
    pub path: String,
    pub status: u16,
}

/// Serves a folder over HTTP/1.1 on 127.0.0.1 (a thread per connection,
/// keep-alive, GET and HEAD with Content-Length, 404 for anything missing).
pub struct FileServer {
    pub addr: SocketAddr,
    root: PathBuf,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Starts serving `root` on a free port.
    pub fn start(root: &Path) -> FileServer {
        mkdirs(root);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (root, log, stop) = (root.to_path_buf(), log.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (root, log) = (root.clone(), log.clone());
                    std::thread::spawn(move || serve_connection(conn, &root, &log));
                }
            })
        };
        FileServer {
            addr,
            root: root.to_path_buf(),
            log,
            stop,
            accept: Some(accept),
        }
    }

    /// The folder served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }

    /// The paths of every GET so far.
    pub fn gets(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET")
            .map(|r| r.path)
            .collect()
    }

    /// How many GETs asked for each path.
    pub fn get_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for p in self.gets() {
            *m.entry(p).or_insert(0) += 1;
        }
        m
    }

    pub fn clear_log(&self) {
        self.log.lock().expect("log").clear();
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn serve_connection(conn: TcpStream, root: &Path, log: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut out = conn;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut close = false;
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
                if k == "content-length" {
                    content_length = v.parse().unwrap_or(0);
                }
            }
        }
        if content_length > 0 {
            let mut body = vec![0; content_length];
            if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                return;
            }
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/");
        let path = percent_decode(target.split(['?', '#']).next().unwrap_or("/"));
        let file = (!path.split('/').any(|c| c == ".."))
            .then(|| root.join(path.trim_start_matches('/')))
            .filter(|p| p.is_file());
        let (status, body): (u16, Vec<u8>) = match (&method[..], &file) {
            ("GET" | "HEAD", Some(p)) => (200, fs::read(p).unwrap_or_default()),
            ("GET" | "HEAD", None) => (404, b"not found\n".to_vec()),
            _ => (405, b"method not allowed\n".to_vec()),
        };
        log.lock().expect("log").push(Request {
            method: method.clone(),
            path: path.clone(),
            status,
        });
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" && out.write_all(&body).is_err() {
            return;
        }
        let _ = out.flush();
        if close {
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Python bases
// ---------------------------------------------------------------------------

/// A dpkg status stanza.
fn dpkg_stanza(package: &str, version: &str, source: &str) -> String {
    format!(
        "Package: {package}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
         Installed-Size: 1024\nMaintainer: Test Maintainers <tests@example.invalid>\n\
         Multi-Arch: same\nSource: {source}\nVersion: {version}\n\
         Description: test stanza for {package}\n"
    )
}

const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The PATH the test bases set.
pub fn base_path_env() -> &'static str {
    BASE_PATH
}

fn platforms_toml(platforms: &[&str]) -> String {
    let v: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
    format!("[{}]", v.join(", "))
}

/// Builds the layout `root/<name>-layout` from a definition in `root/<name>`
/// with one `rootfs` source folder (copied to `/`) and `env`; returns the
/// base reference for a definition (`oci:/abs/path:latest`).
fn build_base(
    root: &Path,
    cache: &Path,
    name: &str,
    platforms: &[&str],
    files: &[(&str, Vec<u8>, u32)],
    env: &[(&str, &str)],
) -> String {
    let dir = root.join(name);
    for (p, b, mode) in files {
        write_file(&dir.join("rootfs"), p, b, *mode);
    }
    let env_items: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    write(
        &dir,
        super::DEF,
        &format!(
            "[images.{name}]\nbase = \"scratch\"\nplatforms = {}\n\n\
             [[images.{name}.layers]]\nsource_folder = \"rootfs\"\ndst = \"/\"\ncopy_contents_only = true\n\n\
             [[images.{name}.layers]]\nenv = {{ {} }}\n",
            platforms_toml(platforms),
            env_items.join(", ")
        ),
    );
    let layout = root.join(format!("{name}-layout"));
    ib(&["build"])
        .path_arg(&dir.join(super::DEF))
        .cache(cache)
        .oci_out(&layout)
        .arg("-q")
        .run()
        .ok();
    format!("oci:{}:latest", layout.display())
}

/// A Debian-like Python 3.11.2 base (glibc 2.36) for `platforms`:
/// `/usr/bin/python3.11` (a dummy file) and `var/lib/dpkg/status` with
/// `libc6 2.36-9` and `python3.11-minimal 3.11.2-6`; env PATH and LANG.
pub fn python_base(root: &Path, cache: &Path, platforms: &[&str]) -> String {
    let status = [
        dpkg_stanza("libc6", "2.36-9", "glibc"),
        dpkg_stanza("python3.11-minimal", "3.11.2-6", "python3.11"),
    ]
    .join("\n");
    build_base(
        root,
        cache,
        "pybase311",
        platforms,
        &[
            (
                "usr/bin/python3.11",
                b"not a real interpreter\n".to_vec(),
                0o755,
            ),
            ("var/lib/dpkg/status", status.into_bytes(), 0o644),
        ],
        &[("PATH", BASE_PATH), ("LANG", "C.UTF-8")],
    )
}

/// An official-python-image-like base: env `PYTHON_VERSION=3.12.4`,
/// `/usr/local/bin/python3.12` (a dummy file) and a dpkg status with only
/// `libc6 2.36-9` (the interpreter is not a Debian package there).
pub fn python312_base(root: &Path, cache: &Path, platforms: &[&str]) -> String {
    build_base(
        root,
        cache,
        "pybase312",
        platforms,
        &[
            (
                "usr/local/bin/python3.12",
                b"not a real interpreter either\n".to_vec(),
                0o755,
            ),
            (
                "var/lib/dpkg/status",
                dpkg_stanza("libc6", "2.36-9", "glibc").into_bytes(),
                0o644,
            ),
        ],
        &[
            ("PATH", BASE_PATH),
            ("LANG", "C.UTF-8"),
            ("PYTHON_VERSION", "3.12.4"),
        ],
    )
}

// ---------------------------------------------------------------------------
// Reading what was built
// ---------------------------------------------------------------------------

/// One platform of a built image: its platform string, manifest and config.
pub struct PlatformImage {
    pub platform: String,
    pub manifest: Value,
    pub config: Value,
}

/// Every platform image behind `tag` in the layout at `dir`.
pub fn platform_images(dir: &Path, tag: &str) -> Vec<PlatformImage> {
    let layout = super::Layout::new(dir);
    let top = layout.tagged(tag);
    let digest = top["digest"].as_str().expect("digest");
    let descs: Vec<Value> = if top["mediaType"] == super::MT_INDEX {
        layout.blob_json(digest)["manifests"]
            .as_array()
            .expect("manifests")
            .clone()
    } else {
        vec![top.clone()]
    };
    descs
        .iter()
        .map(|d| {
            let manifest = layout.blob_json(d["digest"].as_str().expect("digest"));
            let config = layout.blob_json(manifest["config"]["digest"].as_str().expect("config"));
            let platform = format!(
                "{}/{}",
                config["os"].as_str().expect("os"),
                config["architecture"].as_str().expect("architecture")
            );
            PlatformImage {
                platform,
                manifest,
                config,
            }
        })
        .collect()
}

/// A layer path without `./`, a leading `/` or a trailing `/`.
pub fn clean_path(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// The file system of one platform image: every layer applied in order
/// (later entries replace earlier ones), keyed by [`clean_path`].
pub fn merged_tree(dir: &Path, img: &PlatformImage) -> BTreeMap<String, TarEntry> {
    let layout = super::Layout::new(dir);
    let mut out = BTreeMap::new();
    for l in img.manifest["layers"].as_array().expect("layers") {
        for e in layout.layer_entries(l) {
            out.insert(clean_path(&e.path), e);
        }
    }
    out
}

/// Platform → merged tree for every platform behind `tag`.
pub fn trees_by_platform(dir: &Path, tag: &str) -> BTreeMap<String, BTreeMap<String, TarEntry>> {
    platform_images(dir, tag)
        .iter()
        .map(|img| (img.platform.clone(), merged_tree(dir, img)))
        .collect()
}

/// The image config's `Env` as a map.
pub fn config_env(config: &Value) -> BTreeMap<String, String> {
    config["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The layers (as JSON objects with `digest`, `step`, `cache`, …) of one
/// platform of the first image in `imgbuild build --format json` output.
pub fn json_layers<'a>(v: &'a Value, platform: &str) -> &'a Vec<Value> {
    v["images"][0]["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .find(|p| p["platform"] == platform)
        .unwrap_or_else(|| panic!("no platform {platform} in {v:#}"))["layers"]
        .as_array()
        .expect("layers")
}

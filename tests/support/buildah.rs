//! buildah as the reference builder the Dockerfile tests compare imgbuild
//! with, and the image trees and configs they compare.
//!
//! - [`buildah_present`]: whether buildah can run (it must in CI).
//! - [`Buildah`]: `buildah --storage-driver vfs --root … --runroot … bud
//!   --isolation chroot`, the only way it works on these machines, and
//!   `buildah push` into an OCI layout.
//! - [`lowercase_path`]: buildah names an `oci:` image after its path, and
//!   names must be lower case.
//! - [`mount_targets`]: where a Dockerfile's RUN steps mount things.
//! - [`absolute_mount_targets`]: the Dockerfile with relative RUN
//!   `--mount` targets joined to the WORKDIR, as BuildKit reads them
//!   (buildah 1.28 refuses relative targets).
//! - [`image_tree`]: the file system of an image in an OCI layout, every
//!   layer applied in memory (whiteouts and opaque folders included), with
//!   each file's bytes: no unpacking to disk, and the base layer parsed once
//!   for every image that shares it.
//! - [`tree_differences`] and [`config_differences`]: what differs between
//!   two images, path by path and field by field.

use super::Layout;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// Whether buildah is installed. In CI (`CI` set) a missing buildah fails
/// the test; elsewhere this prints why and returns false (the test skips).
#[track_caller]
pub fn buildah_present() -> bool {
    let ok = Command::new("buildah")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "buildah is needed in CI (apt-get install buildah)"
        );
        eprintln!("skipping: buildah is not installed (apt-get install buildah)");
    }
    ok
}

/// buildah names an `oci:` image after its path, and a name must be lower
/// case: a path with capitals gets a lower-case copy of the layout under
/// the temp folder (hard links where possible), made once.
pub fn lowercase_path(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    if text.chars().all(|c| !c.is_ascii_uppercase()) {
        return path.to_path_buf();
    }
    let name = text
        .to_ascii_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let dir = std::env::temp_dir().join(format!("imgbuild-test-base-{}", name.trim_matches('-')));
    if dir.join("index.json").is_file() {
        return dir;
    }
    let tmp = tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir");
    fn link_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).expect("mkdir");
        for e in fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            let (src, dst) = (e.path(), to.join(e.file_name()));
            if e.file_type().expect("file type").is_dir() {
                link_tree(&src, &dst);
            } else if fs::hard_link(&src, &dst).is_err() {
                fs::copy(&src, &dst).expect("copy");
            }
        }
    }
    let staged = tmp.path().join("layout");
    link_tree(path, &staged);
    // Another test may have put it in place meanwhile: either copy will do.
    let _ = fs::rename(&staged, &dir);
    assert!(dir.join("index.json").is_file(), "{}", dir.display());
    dir
}

/// buildah with its own storage (vfs) under one folder.
pub struct Buildah {
    root: PathBuf,
    runroot: PathBuf,
    tmp: PathBuf,
}

impl Buildah {
    /// Storage in `dir/root` and `dir/run`; temporary files, and the
    /// folders behind RUN cache mounts, in `dir/tmp` (by default buildah
    /// keeps cache mounts in /var/tmp across builds and test runs).
    pub fn new(dir: &Path) -> Buildah {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("mkdir {}: {e}", tmp.display()));
        Buildah {
            root: dir.join("root"),
            runroot: dir.join("run"),
            tmp,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new("buildah");
        c.args(["--storage-driver", "vfs", "--root"])
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .env("TMPDIR", &self.tmp)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(|e| format!("cannot run buildah: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        Err(format!(
            "buildah {} failed ({}):\n{}",
            args.first().copied().unwrap_or_default(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// `buildah bud --format docker --isolation chroot EXTRA -t TAG -f
    /// DOCKERFILE CTX`, then `buildah push TAG oci:OUT:latest`. Err holds
    /// the end of buildah's stderr.
    ///
    /// buildah keeps Docker's config fields that the OCI config has no
    /// place for (`Shell`, `Healthcheck`, `OnBuild`) only in its Docker
    /// format (with its OCI format it drops them, and SHELL does not even
    /// apply to RUN), and a push to `oci:` drops them again: read the
    /// config with [`Buildah::docker_config`].
    pub fn build_oci(
        &self,
        dockerfile: &Path,
        ctx: &Path,
        extra: &[String],
        tag: &str,
        out: &Path,
    ) -> Result<(), String> {
        let mut bud: Vec<&str> = vec!["bud", "--format", "docker", "--isolation", "chroot"];
        bud.extend(extra.iter().map(String::as_str));
        let (df, cx) = (
            dockerfile.to_str().expect("UTF-8 paths"),
            ctx.to_str().expect("UTF-8 paths"),
        );
        bud.extend(["-t", tag, "-f", df, cx]);
        self.run(&bud)?;
        let dest = format!("oci:{}:latest", out.display());
        self.run(&["push", "-q", tag, &dest])
    }

    /// The image's config as buildah keeps it in Docker's format, shaped
    /// like an OCI config document (`os`, `architecture`, `config`).
    pub fn docker_config(&self, tag: &str) -> Value {
        let out = self
            .command()
            .args(["inspect", "--type", "image", tag])
            .output()
            .expect("run buildah inspect");
        assert!(
            out.status.success(),
            "buildah inspect {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("buildah inspect prints JSON");
        let d = &v["Docker"];
        serde_json::json!({
            "os": d["os"],
            "architecture": d["architecture"],
            "config": d["config"],
        })
    }
}

/// The Dockerfile text with relative `--mount` targets (`target=uv.lock`)
/// joined to the stage's WORKDIR, which is what BuildKit does with them;
/// buildah 1.28 refuses them. WORKDIRs are followed per stage (a stage
/// built FROM another starts in its WORKDIR); variables in WORKDIR are not
/// expanded.
pub fn absolute_mount_targets(dockerfile: &str) -> String {
    let mut workdirs: HashMap<String, String> = HashMap::new();
    let mut stage: Option<String> = None;
    let mut workdir = String::from("/");
    let mut out = String::new();
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "FROM" => {
                if let Some(s) = stage.take() {
                    workdirs.insert(s, workdir.clone());
                }
                let image = words
                    .iter()
                    .skip(1)
                    .find(|w| !w.starts_with("--"))
                    .map(|w| w.to_ascii_lowercase())
                    .unwrap_or_default();
                workdir = workdirs.get(&image).cloned().unwrap_or_else(|| "/".into());
                stage = match words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                    Some(i) => words.get(i + 1).map(|s| s.to_ascii_lowercase()),
                    None => Some(String::new()),
                };
            }
            Some(w) if w == "WORKDIR" => {
                let p = words.get(1).copied().unwrap_or("/");
                workdir = if p.starts_with('/') {
                    p.to_string()
                } else {
                    format!("{}/{p}", workdir.trim_end_matches('/'))
                };
            }
            _ => {}
        }
        let mut line = line.to_string();
        for key in ["target=", "dst=", "destination="] {
            let mut from = 0;
            while let Some(i) = line[from..].find("--mount=").map(|i| i + from) {
                let end = line[i..]
                    .find(char::is_whitespace)
                    .map_or(line.len(), |e| i + e);
                let spec = &line[i..end];
                let fixed: Vec<String> = spec
                    .split(',')
                    .map(|part| match part.strip_prefix(key) {
                        Some(t) if !t.starts_with('/') => {
                            format!("{key}{}/{t}", workdir.trim_end_matches('/'))
                        }
                        _ => part.to_string(),
                    })
                    .collect();
                let fixed = fixed.join(",");
                line.replace_range(i..end, &fixed);
                from = i + fixed.len();
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The paths (relative to `/`, as in an image tree) that the Dockerfile's
/// RUN steps mount something at: their `--mount` targets, relative ones
/// joined to the stage's WORKDIR as [`absolute_mount_targets`] does.
pub fn mount_targets(dockerfile: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in absolute_mount_targets(dockerfile).lines() {
        for word in line.split_whitespace() {
            let Some(spec) = word.strip_prefix("--mount=") else {
                continue;
            };
            for part in spec.split(',') {
                let (key, value) = part.split_once('=').unwrap_or((part, ""));
                if ["target", "dst", "destination"].contains(&key) {
                    let path = value.trim_matches(|c| c == '/' || c == '"');
                    if !path.is_empty() && !targets.iter().any(|t| t == path) {
                        targets.push(path.to_string());
                    }
                }
            }
        }
    }
    targets
}

// ---------------------------------------------------------------------------
// Image trees
// ---------------------------------------------------------------------------

/// What a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file (hard links are files with the target's bytes): its
    /// sha256 and bytes.
    File {
        sha256: String,
        data: Arc<Vec<u8>>,
    },
    Symlink(String),
    /// A device node or fifo: its tar type and device numbers.
    Special(String),
}

/// One path of an image. Two nodes are equal when their mode, owner and
/// content are: the mtime is kept for checks but not compared (builders
/// differ in it by design).
#[derive(Clone, Debug)]
pub struct Node {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub kind: Kind,
}

impl PartialEq for Node {
    fn eq(&self, o: &Node) -> bool {
        (self.mode, self.uid, self.gid, &self.kind) == (o.mode, o.uid, o.gid, &o.kind)
    }
}

impl Eq for Node {}

impl Node {
    /// "dir", "-> target", a file's sha256 (first 12 hex digits) and size.
    pub fn what(&self) -> String {
        match &self.kind {
            Kind::Dir => "dir".into(),
            Kind::File { sha256, data } => format!("file {} {}B", &sha256[..12], data.len()),
            Kind::Symlink(t) => format!("-> {t}"),
            Kind::Special(s) => s.clone(),
        }
    }

    /// The file's bytes, if it is one.
    pub fn data(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::File { data, .. } => Some(data),
            _ => None,
        }
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04o} {}:{} {}",
            self.mode,
            self.uid,
            self.gid,
            self.what()
        )
    }
}

/// Paths (relative, no trailing '/') to what they are.
pub type ImageTree = BTreeMap<String, Node>;

/// One entry of a layer, as read.
#[derive(Clone, Debug)]
struct LayerEntry {
    path: String,
    kind: LayerKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

#[derive(Clone, Debug)]
enum LayerKind {
    Node(Kind),
    HardLink(String),
    Whiteout,
    Opaque,
}

fn clean(p: &str) -> String {
    let p = p.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

/// The entries of one layer blob (gzip, zstd or plain tar).
fn read_layer(layout: &Layout, desc: &Value) -> Vec<LayerEntry> {
    let path = layout.blob_path(desc["digest"].as_str().expect("digest"));
    let file = fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let reader: Box<dyn Read> = match desc["mediaType"].as_str().unwrap_or_default() {
        m if m.ends_with("+gzip") || m.ends_with(".gzip") => Box::new(
            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)),
        ),
        m if m.ends_with("+zstd") => Box::new(zstd::Decoder::new(file).expect("zstd decoder")),
        _ => Box::new(std::io::BufReader::new(file)),
    };
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let raw = String::from_utf8(e.path_bytes().into_owned()).expect("UTF-8 path");
        let path = clean(&raw);
        if path.is_empty() || path == "." {
            continue;
        }
        let h = e.header().clone();
        let (mut uid, mut gid) = (h.uid().unwrap_or(0), h.gid().unwrap_or(0));
        if let Ok(Some(pax)) = e.pax_extensions() {
            for ext in pax.flatten() {
                match (ext.key().ok(), ext.value().ok()) {
                    (Some("uid"), Some(v)) => uid = v.parse().expect("PAX uid"),
                    (Some("gid"), Some(v)) => gid = v.parse().expect("PAX gid"),
                    _ => {}
                }
            }
        }
        let mode = h.mode().unwrap_or(0) & 0o7777;
        let name = path.rsplit('/').next().unwrap_or_default();
        let link = e
            .link_name_bytes()
            .map(|b| String::from_utf8(b.into_owned()).expect("UTF-8 link"))
            .unwrap_or_default();
        let kind = if name == ".wh..wh..opq" {
            LayerKind::Opaque
        } else if name.starts_with(".wh.") {
            LayerKind::Whiteout
        } else {
            match h.entry_type() {
                tar::EntryType::Directory => LayerKind::Node(Kind::Dir),
                tar::EntryType::Symlink => LayerKind::Node(Kind::Symlink(link)),
                tar::EntryType::Link => LayerKind::HardLink(clean(&link)),
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut data = Vec::new();
                    e.read_to_end(&mut data).expect("entry data");
                    LayerKind::Node(Kind::File {
                        sha256: hex_sha256(&data),
                        data: Arc::new(data),
                    })
                }
                t => LayerKind::Node(Kind::Special(format!(
                    "{t:?} {}:{}",
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0)
                ))),
            }
        };
        out.push(LayerEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime: h.mtime().unwrap_or(0),
        });
    }
    out
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Removes `path` and everything below it.
fn remove_below(tree: &mut ImageTree, path: &str, keep_self: bool) {
    let prefix = format!("{path}/");
    let below: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in below {
        tree.remove(&k);
    }
    if !keep_self {
        tree.remove(path);
    }
}

/// Applies one layer: opaque markers first (they hide what the layers
/// below put in that folder), then whiteouts and entries in order.
fn apply_layer(tree: &mut ImageTree, entries: &[LayerEntry]) {
    for e in entries {
        if let LayerKind::Opaque = e.kind {
            let dir = e.path.rsplit_once('/').map_or("", |(d, _)| d);
            if dir.is_empty() {
                tree.clear();
            } else {
                remove_below(tree, dir, true);
            }
        }
    }
    for e in entries {
        let node = match &e.kind {
            LayerKind::Opaque => continue,
            LayerKind::Whiteout => {
                let (dir, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
                let name = name.strip_prefix(".wh.").expect("a whiteout");
                let target = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                remove_below(tree, &target, false);
                continue;
            }
            LayerKind::HardLink(target) => match tree.get(target) {
                Some(n) => n.clone(),
                None => panic!("hard link {} to missing {target}", e.path),
            },
            LayerKind::Node(k) => Node {
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
                kind: k.clone(),
            },
        };
        // Missing parents appear as root's 0755 folders (as unpackers make them).
        let mut parent = e.path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            tree.entry(p.to_string()).or_insert(Node {
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                kind: Kind::Dir,
            });
            parent = p;
        }
        if node.kind != Kind::Dir {
            remove_below(tree, &e.path, true);
        }
        tree.insert(e.path.clone(), node);
    }
}

type TreeCache = Mutex<HashMap<String, Arc<ImageTree>>>;

/// Trees of layer chains already read, keyed by their diff_ids.
fn tree_cache() -> &'static TreeCache {
    static CACHE: OnceLock<TreeCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The file system of the image tagged `tag` in `layout` (its only or
/// first platform). The tree after the first layer is kept for other
/// images with the same first layer.
pub fn image_tree(layout_dir: &Path, tag: &str) -> ImageTree {
    let layout = Layout::new(layout_dir);
    let (manifest, config) = layout.image(tag);
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(layers.len(), diff_ids.len(), "one diff_id per layer");
    let Some(first) = layers.first() else {
        return ImageTree::new();
    };
    let key = diff_ids[0].as_str().expect("diff_id").to_string();
    let cached = tree_cache().lock().expect("cache lock").get(&key).cloned();
    let base = match cached {
        Some(t) => t,
        None => {
            let mut t = ImageTree::new();
            apply_layer(&mut t, &read_layer(&layout, first));
            let t = Arc::new(t);
            tree_cache()
                .lock()
                .expect("cache lock")
                .insert(key, t.clone());
            t
        }
    };
    let mut tree = (*base).clone();
    for l in &layers[1..] {
        apply_layer(&mut tree, &read_layer(&layout, l));
    }
    tree
}

/// The diff_ids of the image tagged `tag` in `layout`.
pub fn diff_ids(layout_dir: &Path, tag: &str) -> Vec<String> {
    let (_, config) = Layout::new(layout_dir).image(tag);
    config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().expect("diff_id").to_string())
        .collect()
}

/// The image config (the whole document) tagged `tag` in `layout`.
pub fn image_config(layout_dir: &Path, tag: &str) -> Value {
    Layout::new(layout_dir).image(tag).1
}

/// The layer blob holding the first layer of `tag` (a base of one layer).
pub fn first_layer_blob(layout_dir: &Path, tag: &str) -> PathBuf {
    let layout = Layout::new(layout_dir);
    let (m, _) = layout.image(tag);
    layout.blob_path(m["layers"][0]["digest"].as_str().expect("digest"))
}

/// One path that differs between two images.
#[derive(Clone, Debug)]
pub struct Difference {
    pub path: String,
    pub ours: Option<Node>,
    pub theirs: Option<Node>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |n: &Option<Node>| n.as_ref().map_or("absent".to_string(), |n| n.to_string());
        write!(
            f,
            "{}: imgbuild {}, buildah {}",
            self.path,
            show(&self.ours),
            show(&self.theirs)
        )
    }
}

/// Every path whose mode, owner or content differs, or that only one image
/// has.
pub fn tree_differences(ours: &ImageTree, theirs: &ImageTree) -> Vec<Difference> {
    let mut keys: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| Difference {
            path: k.clone(),
            ours: ours.get(k).cloned(),
            theirs: theirs.get(k).cloned(),
        })
        .collect()
}

/// The config fields both builders write from a Dockerfile, compared as
/// docker reads them (a missing field, null and an empty list or map are
/// the same), except `Env` (see [`env_list`]). buildah's own
/// `io.buildah.version` label is left out.
pub const CONFIG_FIELDS: &[&str] = &[
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

fn normalized(field: &str, v: &Value) -> Value {
    let mut v = v.clone();
    if field == "Labels"
        && let Some(m) = v.as_object_mut()
    {
        m.remove("io.buildah.version");
    }
    match &v {
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        _ => v,
    }
}

/// `config.Env` as a list of `K=V`.
pub fn env_list(config: &Value) -> Vec<String> {
    config["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().expect("Env entries are strings").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Fields of [`CONFIG_FIELDS`] (and the platform) that differ:
/// (field, imgbuild's value, buildah's value).
pub fn config_differences(ours: &Value, theirs: &Value) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    for f in ["os", "architecture"] {
        if ours[f] != theirs[f] {
            out.push((f.to_string(), ours[f].clone(), theirs[f].clone()));
        }
    }
    for f in CONFIG_FIELDS {
        let (a, b) = (
            normalized(f, &ours["config"][f]),
            normalized(f, &theirs["config"][f]),
        );
        if a != b {
            out.push((f.to_string(), a, b));
        }
    }
    out
}

//! Helpers shared by the integration tests: run the `imgbuild` binary, write
//! small source trees, read OCI layouts and layers, and require the external
//! tools (skopeo, umoci) the tests check images with.

#![allow(dead_code)]

pub mod buildah;
pub mod proxy;
pub mod pybase;
pub mod pyfix;
pub mod registry;
pub mod token;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_imgbuild")
}

// ---------------------------------------------------------------------------
// Running imgbuild
// ---------------------------------------------------------------------------

/// The result of one `imgbuild` run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(args: Vec<String>, out: Output) -> Run {
        Run {
            args,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics (with everything printed) unless the run exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "imgbuild failed:\n{self}");
        self
    }

    /// Stdout as JSON (panics with the output when it is not JSON).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "$ imgbuild {}", self.args.join(" "))?;
        writeln!(f, "exit code: {}", self.code)?;
        writeln!(f, "--- stdout\n{}", self.stdout)?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}

/// A prepared `imgbuild` invocation.
pub struct Ib {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    umask: Option<u32>,
}

/// Starts an `imgbuild` invocation with these arguments.
pub fn ib<S: AsRef<str>>(args: &[S]) -> Ib {
    Ib {
        args: args.iter().map(|a| a.as_ref().to_string()).collect(),
        envs: Vec::new(),
        cwd: None,
        stdin: None,
        umask: None,
    }
}

impl Ib {
    pub fn arg(mut self, a: impl AsRef<str>) -> Ib {
        self.args.push(a.as_ref().to_string());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, a: &[S]) -> Ib {
        self.args.extend(a.iter().map(|s| s.as_ref().to_string()));
        self
    }

    pub fn path_arg(self, p: &Path) -> Ib {
        self.arg(p.to_str().expect("test paths are UTF-8"))
    }

    /// `--cache-dir DIR`.
    pub fn cache(self, dir: &Path) -> Ib {
        self.arg("--cache-dir").path_arg(dir)
    }

    /// `--output oci:DIR`.
    pub fn oci_out(self, dir: &Path) -> Ib {
        self.arg("--output").arg(format!("oci:{}", dir.display()))
    }

    /// `--format json`.
    pub fn json(self) -> Ib {
        self.args(&["--format", "json"])
    }

    pub fn env(mut self, k: &str, v: &str) -> Ib {
        self.envs.push((k.into(), v.into()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Ib {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Ib {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs imgbuild under this umask (through `sh -c 'umask M; exec ...'`).
    pub fn umask(mut self, m: u32) -> Ib {
        self.umask = Some(m);
        self
    }

    fn command(&self) -> Command {
        let mut c = match self.umask {
            None => Command::new(bin()),
            Some(m) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("umask {m:03o} && exec \"$0\" \"$@\""))
                    .arg(bin());
                c
            }
        };
        c.args(&self.args);
        // Nothing from the caller's environment may change what is built.
        for k in ["SOURCE_DATE_EPOCH", "IMGBUILD_CACHE_DIR", "XDG_CACHE_HOME"] {
            c.env_remove(k);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    /// Starts the process; finish it with [`Running::wait`].
    pub fn spawn(self) -> Running {
        let mut child = self.command().spawn().expect("start imgbuild");
        if let Some(bytes) = &self.stdin {
            let mut s = child.stdin.take().expect("piped stdin");
            s.write_all(bytes).expect("write imgbuild's stdin");
        }
        Running {
            args: self.args,
            child,
        }
    }

    pub fn run(self) -> Run {
        self.spawn().wait()
    }
}

pub struct Running {
    args: Vec<String>,
    child: Child,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait(self) -> Run {
        let out = self.child.wait_with_output().expect("wait for imgbuild");
        Run::from_output(self.args, out)
    }
}

/// `imgbuild build PATH --cache-dir CACHE --output oci:OUT --format json -q`,
/// which must succeed; returns its JSON.
#[track_caller]
/// `imgbuild build -f CTX/Dockerfile CTX` into the layout `out`, JSON on
/// stdout, no progress.
pub fn build_dockerfile(ctx: &Path, store: &Path, out: &Path, extra: &[&str]) -> Run {
    ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(ctx)
        .cache(store)
        .oci_out(out)
        .json()
        .arg("-q")
        .args(extra)
        .run()
}

pub fn build_json(def: &Path, cache: &Path, out: &Path, extra: &[&str]) -> Value {
    ib(&["build"])
        .path_arg(def)
        .cache(cache)
        .oci_out(out)
        .json()
        .arg("-q")
        .args(extra)
        .run()
        .ok()
        .json()
}

/// `imgbuild plan PATH --cache-dir CACHE --format json`, which must succeed.
#[track_caller]
pub fn plan_json(def: &Path, cache: &Path, extra: &[&str]) -> Value {
    ib(&["plan"])
        .path_arg(def)
        .cache(cache)
        .json()
        .args(extra)
        .run()
        .ok()
        .json()
}

/// The `cache` field of every layer of every platform of the first image.
pub fn layer_cache_states(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .expect("images")
        .iter()
        .flat_map(|i| i["platforms"].as_array().expect("platforms").iter())
        .flat_map(|p| p["layers"].as_array().expect("layers").iter())
        .map(|l| l["cache"].as_str().expect("cache").to_string())
        .collect()
}

/// The steps of image `name` in `plan --format json` output.
pub fn plan_steps<'a>(plan: &'a Value, name: &str) -> &'a Vec<Value> {
    plan["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no image {name} in the plan: {plan:#}"))["steps"]
        .as_array()
        .expect("steps")
}

// ---------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------

/// Fails the test (never skips it) when `tool` cannot run.
#[track_caller]
pub fn require_tool(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{tool}` is needed by this test but cannot be run: install it with `apt-get install {package}`"
    );
}

/// Runs a tool; panics with its output unless it succeeds. Returns stdout.
#[track_caller]
pub fn tool(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "`{prog} {}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo ARGS` parsed as JSON.
#[track_caller]
pub fn skopeo_json(args: &[&str]) -> Value {
    require_tool("skopeo", "skopeo");
    let out = tool("skopeo", args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo printed no JSON ({e}): {out}"))
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `umoci unpack --image DIR:TAG BUNDLE` (as root); returns the bundle's rootfs.
#[track_caller]
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    require_tool("umoci", "umoci");
    assert!(
        is_root(),
        "umoci unpack keeps file owners only when run as root: run the tests as root"
    );
    let image = format!("{}:{tag}", layout.display());
    tool(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().expect("utf-8")],
    );
    bundle.join("rootfs")
}

// ---------------------------------------------------------------------------
// Writing source trees
// ---------------------------------------------------------------------------

/// Creates the missing folders of `dir` below `root`, each with mode 0755
/// (whatever the test process's umask).
pub fn mkdirs(dir: &Path) {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    for m in missing.iter().rev() {
        fs::create_dir(m).unwrap_or_else(|e| panic!("mkdir {}: {e}", m.display()));
        set_mode(m, 0o755);
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Writes `root/rel` (making parents) with an explicit mode.
pub fn write_file(root: &Path, rel: &str, bytes: impl AsRef<[u8]>, mode: u32) -> PathBuf {
    let p = root.join(rel);
    mkdirs(p.parent().expect("a parent"));
    fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    set_mode(&p, mode);
    p
}

/// An imgbuild.toml in `dir`: image `app` (tag v1) on scratch, the folders
/// `app` and `data` as two layers under `/app` and `/data`, and an env step.
pub fn app_and_data_definition(dir: &Path) -> PathBuf {
    let def = dir.join("imgbuild.toml");
    std::fs::write(
        &def,
        "[images.app]\nbase = \"scratch\"\ntag = \"v1\"\n\
         [[images.app.layers]]\nsource_folder = \"app\"\ndst = \"/app\"\ncopy_contents_only = true\n\
         [[images.app.layers]]\nsource_folder = \"data\"\ndst = \"/data\"\ncopy_contents_only = true\n\
         [[images.app.layers]]\nenv = { A = \"1\" }\n",
    )
    .expect("write imgbuild.toml");
    def
}

/// Writes a text file with mode 0644.
pub fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    write_file(root, rel, text, 0o644)
}

pub fn symlink(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    mkdirs(p.parent().expect("a parent"));
    std::os::unix::fs::symlink(target, &p)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
}

pub fn hardlink(root: &Path, existing: &str, rel: &str) {
    let p = root.join(rel);
    mkdirs(p.parent().expect("a parent"));
    fs::hard_link(root.join(existing), &p)
        .unwrap_or_else(|e| panic!("hard link {}: {e}", p.display()));
}

/// Sets the mtime of a file or folder (not following symlinks' targets:
/// symlinks themselves are left alone).
pub fn set_mtime(p: &Path, t: SystemTime) {
    if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
        return;
    }
    let f = fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    f.set_modified(t)
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", p.display()));
}

/// Sets the mtime of everything below `root` (children first).
pub fn set_tree_mtime(root: &Path, t: SystemTime) {
    let mut all = Vec::new();
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd {
                let e = e.expect("dir entry");
                let ft = e.file_type().expect("file type");
                if ft.is_dir() {
                    walk(&e.path(), out);
                }
                out.push(e.path());
            }
        }
    }
    walk(root, &mut all);
    for p in all {
        set_mtime(&p, t);
    }
    set_mtime(root, t);
}

pub fn epoch(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// `n` deterministic bytes: runs of random bytes and of repetitive text, so
/// a layer holding them is neither trivially compressible nor incompressible.
pub fn mixed_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 64);
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while v.len() < n {
        let r = next();
        let run = 256 + (r % 4096) as usize;
        if r >> 62 == 0 {
            for _ in 0..run / 8 {
                v.extend_from_slice(&next().to_le_bytes());
            }
        } else {
            let line = format!("line {} of a compressible part: {}\n", r % 1000, r >> 40);
            let end = v.len() + run;
            while v.len() < end {
                v.extend_from_slice(line.as_bytes());
            }
        }
    }
    v.truncate(n);
    v
}

/// The definition file name.
pub const DEF: &str = "imgbuild.toml";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_of(&Sha256::digest(bytes))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Reading OCI layouts
// ---------------------------------------------------------------------------

pub fn read_json(p: &Path) -> Value {
    let bytes = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

pub fn hex(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
}

/// An OCI image layout folder.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn index(&self) -> Value {
        read_json(&self.dir.join("index.json"))
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(hex(digest))
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let p = self.blob_path(digest);
        fs::read(&p).unwrap_or_else(|e| panic!("blob {digest} ({}): {e}", p.display()))
    }

    pub fn blob_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest))
            .unwrap_or_else(|e| panic!("blob {digest} is not JSON: {e}"))
    }

    /// The descriptor in index.json tagged `tag`.
    #[track_caller]
    pub fn tagged(&self, tag: &str) -> Value {
        let idx = self.index();
        idx["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
            .unwrap_or_else(|| panic!("no tag {tag} in {idx:#}"))
    }

    /// The tags index.json names.
    pub fn tags(&self) -> Vec<String> {
        self.index()["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .filter_map(|d| {
                d["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .map(String::from)
            })
            .collect()
    }

    /// The platform manifests (digest, manifest) behind tag `tag`.
    pub fn manifests(&self, tag: &str) -> Vec<(String, Value)> {
        let top = self.tagged(tag);
        let d = top["digest"].as_str().expect("digest").to_string();
        if top["mediaType"] == MT_INDEX {
            let idx = self.blob_json(&d);
            idx["manifests"]
                .as_array()
                .expect("manifests")
                .iter()
                .map(|m| {
                    let md = m["digest"].as_str().expect("digest").to_string();
                    let v = self.blob_json(&md);
                    (md, v)
                })
                .collect()
        } else {
            let v = self.blob_json(&d);
            vec![(d, v)]
        }
    }

    /// The only (first) platform's manifest and config behind `tag`.
    pub fn image(&self, tag: &str) -> (Value, Value) {
        let (_, m) = self.manifests(tag).remove(0);
        let c = self.blob_json(m["config"]["digest"].as_str().expect("config digest"));
        (m, c)
    }

    /// Decompressed bytes of a layer descriptor (by its media type).
    /// The layer digests of the image tagged `tag`, in order.
    pub fn layer_digests(&self, tag: &str) -> Vec<String> {
        let (m, _) = self.image(tag);
        m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest").to_string())
            .collect()
    }

    pub fn layer_tar(&self, desc: &Value) -> Vec<u8> {
        let digest = desc["digest"].as_str().expect("digest");
        let blob = self.blob(digest);
        decompress(&blob, desc["mediaType"].as_str().expect("mediaType"))
    }

    /// Entries of a layer.
    pub fn layer_entries(&self, desc: &Value) -> Vec<TarEntry> {
        tar_entries(&self.layer_tar(desc))
    }

    /// Paths (folders with a trailing '/') of every layer of the image, in order.
    pub fn layer_paths(&self, tag: &str) -> Vec<Vec<String>> {
        let (m, _) = self.image(tag);
        m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| self.layer_entries(l).into_iter().map(|e| e.path).collect())
            .collect()
    }

    /// Checks every image in the layout: each blob's sha256 and size match
    /// its descriptor, each layer decompresses to bytes whose sha256 is the
    /// config's diff_id, history pairs with the layers, and each layer's tar
    /// is canonical (see [`check_canonical_tar`]; every entry has mtime
    /// `mtime`). Returns the number of layers checked.
    #[track_caller]
    pub fn verify(&self, mtime: u64) -> usize {
        let layout = read_json(&self.dir.join("oci-layout"));
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let idx = self.index();
        let mut n = 0;
        for d in idx["manifests"].as_array().expect("manifests") {
            n += self.verify_desc(d, mtime);
        }
        n
    }

    fn check_blob(&self, d: &Value) -> Vec<u8> {
        let digest = d["digest"].as_str().expect("digest");
        let bytes = self.blob(digest);
        assert_eq!(sha256_hex(&bytes), hex(digest), "blob {digest} content");
        assert_eq!(
            bytes.len() as u64,
            d["size"].as_u64().expect("size"),
            "blob {digest} size"
        );
        bytes
    }

    fn verify_desc(&self, d: &Value, mtime: u64) -> usize {
        let bytes = self.check_blob(d);
        let v: Value = serde_json::from_slice(&bytes).expect("JSON document");
        match d["mediaType"].as_str() {
            Some(MT_INDEX) => v["manifests"]
                .as_array()
                .expect("manifests")
                .iter()
                .map(|m| self.verify_desc(m, mtime))
                .sum(),
            Some(MT_MANIFEST) => {
                assert_eq!(v["mediaType"], MT_MANIFEST);
                assert_eq!(v["schemaVersion"], 2);
                let cfg_bytes = self.check_blob(&v["config"]);
                let cfg: Value = serde_json::from_slice(&cfg_bytes).expect("config JSON");
                let layers = v["layers"].as_array().expect("layers");
                let diff_ids = cfg["rootfs"]["diff_ids"].as_array().expect("diff_ids");
                assert_eq!(layers.len(), diff_ids.len(), "one diff_id per layer");
                assert_eq!(cfg["rootfs"]["type"], "layers");
                if let Some(p) = d.get("platform") {
                    assert_eq!(p["os"], cfg["os"], "index platform vs config");
                    assert_eq!(p["architecture"], cfg["architecture"]);
                }
                // Tools pair history entries with layers: one non-empty entry each.
                if let Some(h) = cfg["history"].as_array() {
                    let non_empty = h.iter().filter(|e| e["empty_layer"] != true).count();
                    assert_eq!(non_empty, layers.len(), "history vs layers: {cfg:#}");
                }
                for (l, diff) in layers.iter().zip(diff_ids) {
                    let blob = self.check_blob(l);
                    let tar = decompress(&blob, l["mediaType"].as_str().expect("mt"));
                    assert_eq!(
                        format!("sha256:{}", sha256_hex(&tar)),
                        diff.as_str().expect("diff_id"),
                        "diff_id of layer {}",
                        l["digest"]
                    );
                    check_canonical_tar(&tar, mtime);
                }
                layers.len()
            }
            other => panic!("unexpected media type {other:?} in {d}"),
        }
    }
}

pub fn decompress(blob: &[u8], media_type: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match media_type {
        MT_GZIP => {
            // A layer is one or more gzip members (imgbuild writes one per
            // 1 MiB of tar); bytes after the last that are not a member fail.
            let mut d = flate2::read::MultiGzDecoder::new(blob);
            d.read_to_end(&mut out).expect("gunzip layer");
        }
        MT_ZSTD => {
            out = zstd::decode_all(blob).expect("unzstd layer");
        }
        "application/vnd.oci.image.layer.v1.tar" => out = blob.to_vec(),
        other => panic!("unknown layer media type {other}"),
    }
    out
}

/// One entry of a layer tar.
#[derive(Clone, Debug)]
pub struct TarEntry {
    /// As stored, folders with a trailing '/'.
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

pub fn tar_entries(tar_bytes: &[u8]) -> Vec<TarEntry> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        // Long paths come from PAX records; `path_bytes` gives the full one.
        let path = String::from_utf8(e.path_bytes().into_owned()).expect("utf-8 path");
        let link = e
            .link_name_bytes()
            .map(|b| String::from_utf8(b.into_owned()).expect("utf-8 link"));
        let h = e.header().clone();
        let mut uid = h.uid().expect("uid");
        let mut gid = h.gid().expect("gid");
        if let Ok(Some(pax)) = e.pax_extensions() {
            for ext in pax.flatten() {
                match (ext.key().ok(), ext.value().ok()) {
                    (Some("uid"), Some(v)) => uid = v.parse().expect("pax uid"),
                    (Some("gid"), Some(v)) => gid = v.parse().expect("pax gid"),
                    _ => {}
                }
            }
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("entry data");
        out.push(TarEntry {
            path,
            kind: h.entry_type(),
            mode: h.mode().expect("mode"),
            uid,
            gid,
            mtime: h.mtime().expect("mtime"),
            link,
            data,
        });
    }
    out
}

/// Asserts a layer tar is canonical: whole blocks ending with the two zero
/// blocks, entries sorted by path and unique, relative, every mtime `mtime`,
/// owned by root (or by ids >= 1000, which only chown'ed steps use here).
#[track_caller]
pub fn check_canonical_tar(tar_bytes: &[u8], mtime: u64) {
    assert_eq!(tar_bytes.len() % 512, 0, "a tar is whole 512-byte blocks");
    assert!(
        tar_bytes.len() >= 1024 && tar_bytes[tar_bytes.len() - 1024..].iter().all(|&b| b == 0),
        "a tar ends with two zero blocks"
    );
    let entries = tar_entries(tar_bytes);
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e.path.trim_end_matches('/'))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    assert_eq!(paths, sorted, "layer entries sorted and unique");
    for e in &entries {
        assert_eq!(e.mtime, mtime, "mtime of {}", e.path);
        assert!(!e.path.starts_with('/'), "relative path: {}", e.path);
        assert!(
            !e.path.split('/').any(|c| c == ".."),
            "no '..' in {}",
            e.path
        );
        if e.uid != 0 || e.gid != 0 {
            // Only chown'ed steps (which the tests use with ids >= 1000) may
            // have other owners.
            assert!(e.uid >= 1000 && e.gid >= 1000, "owner of {}", e.path);
        }
    }
}

/// Files (recursively) in a folder, relative, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                out.push(
                    path.strip_prefix(base)
                        .expect("below")
                        .to_string_lossy()
                        .into_owned(),
                );
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(base, &path, out);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every path below `root` with (mode, uid, gid, what): a symlink's target,
/// a file's sha256, "dir" or "special". Trees compared across tools.
pub type Tree = std::collections::BTreeMap<String, (u32, u32, u32, String)>;

pub fn file_tree(root: &Path) -> Tree {
    use std::os::unix::fs::MetadataExt;
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                sha256_hex(&fs::read(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                "special".into()
            };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, (m.mode() & 0o7777, m.uid(), m.gid(), what));
        }
    }
    out
}

//! RUN steps without a daemon: the layers below a step become a root
//! filesystem (cached), the command runs in new Linux namespaces on an
//! overlay of it (or a copy), and what it changed becomes a layer.

pub mod child;
pub mod contain;
pub mod diff;
pub mod rootfs;
pub mod seccomp;

use crate::error::{Error, IoContext, Result};
use crate::layer::compress::Compression;
use crate::oci::{Platform, host_arch};
use crate::store::{LayerDesc, Store};
use child::{Bind, ChildSpec, Mapping};
use rootfs::LayerRef;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Version of what a RUN step sees and how its layer is made; part of every
/// RUN step key (2: HOME from the user's passwd entry; a folder made again
/// is compared with the lower root, never written as an opaque folder;
/// compiled modules' headers follow their sources' clamped mtimes).
pub const RUN_FORMAT: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMount {
    pub id: String,
    /// Absolute, in the image.
    pub target: String,
}

/// A secret the step sees: as a file (at `target`, default
/// `/run/secrets/<id>`) and/or as an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMount {
    pub id: String,
    pub env: Option<String>,
    pub target: Option<String>,
}

impl SecretMount {
    /// `ID`, `ID,env=VAR`, `ID,target=/path` (both may be given).
    pub fn parse(s: &str) -> std::result::Result<SecretMount, String> {
        let mut parts = s.split(',');
        let id = parts.next().unwrap_or("").trim();
        let id = id.strip_prefix("id=").unwrap_or(id);
        if id.is_empty() || id.contains('/') {
            return Err(format!(
                "secret {s:?}: expected ID[,env=VAR][,target=/path]"
            ));
        }
        let mut m = SecretMount {
            id: id.to_string(),
            env: None,
            target: None,
        };
        for p in parts {
            match p.trim().split_once('=') {
                Some(("env", v)) if !v.is_empty() => m.env = Some(v.to_string()),
                Some(("target" | "dst", v)) if v.starts_with('/') => m.target = Some(v.to_string()),
                _ => {
                    return Err(format!(
                        "secret {s:?}: unknown part {p:?} (expected env=VAR or target=/absolute/path)"
                    ));
                }
            }
        }
        Ok(m)
    }

    fn file_target(&self) -> Option<String> {
        match (&self.env, &self.target) {
            (_, Some(t)) => Some(t.clone()),
            (None, None) => Some(format!("/run/secrets/{}", self.id)),
            (Some(_), None) => None,
        }
    }
}

/// An SSH agent socket a step reaches at `target`, from `--ssh ID=…`;
/// `SSH_AUTH_SOCK` names the first one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSocket {
    pub id: String,
    pub target: String,
    /// Without a socket for `id`, fail (true) or run without it.
    pub required: bool,
}

/// A folder of another image a step mounts (`--mount=…,from=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageMount {
    /// The image, as its builder numbers them (the plan's index).
    pub image: usize,
    /// That image's platform to read.
    pub platform: String,
    /// Absolute path in that image.
    pub source: String,
    /// Absolute path in the step.
    pub target: String,
    /// `Some(id)`: the cache mount with this id starts as a copy of it;
    /// `None`: mounted read-only.
    pub cache: Option<String>,
}

/// What a RUN step runs, as planned.
#[derive(Clone, Debug)]
pub struct RunStep {
    /// Shell and script (`/bin/sh -c SCRIPT`).
    pub argv: Vec<String>,
    /// Added to the image's environment for this step only.
    pub env: Vec<(String, String)>,
    pub network: bool,
    pub caches: Vec<CacheMount>,
    pub secrets: Vec<SecretMount>,
    /// Files or folders of the context (absolute) and where they appear,
    /// read-only.
    pub binds: Vec<(PathBuf, String)>,
    /// Folders that start empty and are thrown away.
    pub tmpfs: Vec<String>,
    pub timeout: Option<Duration>,
    pub platform: Platform,
    /// SSH agent sockets the step reaches (`--mount=type=ssh`).
    pub ssh: Vec<SshSocket>,
    /// Folders of other images the step mounts: the caller resolves them
    /// into [`RunContext::ro_binds`] and [`RunContext::cache_seeds`].
    pub image_mounts: Vec<ImageMount>,
    /// Whether the step gets `SOURCE_DATE_EPOCH` (the build's, when the
    /// image's env does not set it).
    pub source_date_epoch: bool,
    /// `RUN --security=insecure` (`security = "insecure"`): no
    /// containment beyond the namespaces; run only when the build allows
    /// it (`--allow security.insecure`).
    pub insecure: bool,
}

/// Where and how a step runs.
pub struct RunContext<'a> {
    /// Shown with each output line and in errors.
    pub name: &'a str,
    /// Where the step is defined (file:line:column: field), for errors.
    pub loc: &'a str,
    /// The layers below the step, bottom first, all in the store.
    pub layers: Vec<LayerRef>,
    /// How many of them are the base image's.
    pub base_layers: usize,
    /// The image configuration in force: env, workdir, user.
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    pub compression: Compression,
    pub threads: usize,
    pub source_date_epoch: u64,
    pub output: &'a (dyn Fn(&str) + Sync),
    /// Host folders or files the step sees read-only (a folder of another
    /// image, for `--mount=type=bind,from=`), with where.
    pub ro_binds: Vec<(PathBuf, String)>,
    /// Folders a new cache mount (by id) starts as a copy of.
    pub cache_seeds: BTreeMap<String, PathBuf>,
    /// SSH agent sockets on the host, by id (`--ssh`).
    pub ssh: &'a BTreeMap<String, PathBuf>,
}

/// Docker's default PATH, for images whose config has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Lines of output kept for the error of a failed step.
const TAIL: usize = 20;

/// Whether overlayfs works here: 0 unknown, 1 yes, 2 no.
static OVERLAY: AtomicU8 = AtomicU8::new(0);

/// The ELF machine number of an architecture (for binfmt handlers).
fn elf_machine(arch: &str) -> Option<u16> {
    Some(match arch {
        "amd64" => 0x3e,
        "arm64" => 0xb7,
        "386" => 0x03,
        "arm" => 0x28,
        "ppc64le" => 0x15,
        "s390x" => 0x16,
        "riscv64" => 0xf3,
        _ => return None,
    })
}

/// Whether programs for `p` run on this host: its own architecture, or an
/// enabled binfmt_misc handler for that machine.
pub fn can_execute(p: &Platform) -> bool {
    if p.os != "linux" {
        return false;
    }
    if p.arch == host_arch() {
        return true;
    }
    let Some(machine) = elf_machine(&p.arch) else {
        return false;
    };
    let want = format!("{:02x}{:02x}", machine & 0xff, machine >> 8);
    let Ok(rd) = std::fs::read_dir("/proc/sys/fs/binfmt_misc") else {
        return false;
    };
    rd.flatten().any(|e| {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        text.lines().next() == Some("enabled")
            && text.lines().any(|l| {
                l.strip_prefix("magic ")
                    .is_some_and(|m| m.starts_with("7f454c46") && m.get(36..40) == Some(&want))
            })
    })
}

/// How RUN steps run, for the whole process (the user namespace is
/// chosen once per process): set with
/// [`configure_sandbox`](crate::configure_sandbox) before the first step;
/// the default is what an empty environment gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxOptions {
    /// The user namespace: `auto` (or empty: the caller's subordinate ids
    /// when newuidmap/newgidmap can map them, else the caller alone),
    /// `single` or `range` (insist on one).
    pub userns: String,
    /// The program started as the sandbox (with `__sandbox`); `None`: the
    /// current executable.
    pub helper: Option<PathBuf>,
    /// Copy the layers below a step instead of mounting an overlay.
    pub no_overlay: bool,
}

impl SandboxOptions {
    /// Options from the process environment, read once:
    /// `IMGBUILD_USERNS` (auto, single or range), `IMGBUILD_SANDBOX_HELPER`
    /// (the sandbox program; empty counts as unset) and
    /// `IMGBUILD_NO_OVERLAY` (`1`: copy instead of overlay).
    pub fn from_env() -> SandboxOptions {
        SandboxOptions {
            userns: std::env::var("IMGBUILD_USERNS").unwrap_or_default(),
            helper: std::env::var_os("IMGBUILD_SANDBOX_HELPER")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            no_overlay: std::env::var_os("IMGBUILD_NO_OVERLAY").is_some_and(|v| v == "1"),
        }
    }
}

static OPTIONS: std::sync::OnceLock<SandboxOptions> = std::sync::OnceLock::new();

/// Sets the process's sandbox options; false when they were set (or used)
/// already, which leaves them as they were.
pub fn configure(options: SandboxOptions) -> bool {
    OPTIONS.set(options).is_ok()
}

fn options() -> &'static SandboxOptions {
    OPTIONS.get_or_init(SandboxOptions::default)
}

/// The user namespace steps run in: none as root; else the caller's
/// subordinate ids (/etc/subuid, /etc/subgid) through newuidmap/newgidmap
/// when available, else the caller alone. [`SandboxOptions::userns`]
/// `single` or `range` insists on one.
pub fn mapping() -> Result<Mapping> {
    static M: std::sync::OnceLock<std::result::Result<Mapping, String>> =
        std::sync::OnceLock::new();
    M.get_or_init(detect_mapping).clone().map_err(Error::Usage)
}

fn detect_mapping() -> std::result::Result<Mapping, String> {
    // SAFETY: geteuid takes nothing and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return Ok(Mapping::Root);
    }
    let want = options().userns.as_str();
    if want == "single" {
        return Ok(Mapping::Single);
    }
    let range = subordinate_range(uid);
    match (want, range) {
        (_, Ok(m)) => Ok(m),
        ("range", Err(why)) => Err(format!("IMGBUILD_USERNS=range: {why}")),
        ("" | "auto", Err(_)) => Ok(Mapping::Single),
        (other, _) => Err(format!(
            "IMGBUILD_USERNS={other:?}: expected auto, single or range"
        )),
    }
}

fn subordinate_range(uid: u32) -> std::result::Result<Mapping, String> {
    let on_path = |t: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
    };
    for t in ["newuidmap", "newgidmap"] {
        if !on_path(t) {
            return Err(format!("{t} is not installed (Debian package uidmap)"));
        }
    }
    let name = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
        });
    // newgidmap looks the user up in /etc/subgid too (by name or uid).
    let find = |file: &str, id: u32| -> std::result::Result<(u32, u32), String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.trim().split(':').collect();
                let owner = f.first()?;
                let mine = *owner == id.to_string() || Some(owner.to_string()) == name;
                (mine && f.len() == 3).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))?
            })
            .filter(|(_, n)| *n > 0)
            .ok_or_else(|| format!("{file} has no range for uid {id}"))
    };
    let (uid_start, uid_count) = find("/etc/subuid", uid)?;
    let (gid_start, gid_count) = find("/etc/subgid", uid)?;
    Ok(Mapping::Range {
        uid_start,
        uid_count,
        gid_start,
        gid_count,
    })
}

/// Filesystem work on root filesystems and step folders. With a range of
/// subordinate ids their files belong to ids the caller cannot touch, so
/// the work is done as root of a user namespace with that mapping.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum FsTask {
    Materialize {
        store: PathBuf,
        layers: Vec<LayerRef>,
        /// The base image's layers: their root is kept too.
        keep: usize,
        own: bool,
        /// The store's [`Store::max_layer_size`].
        max_layer_size: u64,
    },
    /// Copies a root and writes the copy's snapshot (JSON) beside it.
    CopyRoot {
        src: PathBuf,
        dst: PathBuf,
        snapshot: PathBuf,
        own: bool,
    },
    Diff {
        store: PathBuf,
        lower: PathBuf,
        /// The overlay's upper folder, or the copy the step ran in.
        changed: PathBuf,
        /// With a copy: its snapshot from before the step.
        snapshot: Option<PathBuf>,
        mount_points: Vec<String>,
        own: bool,
        source_date_epoch: u64,
        compression: Compression,
        threads: usize,
    },
    Remove {
        path: PathBuf,
    },
}

impl FsTask {
    /// Does the work here; the result as JSON.
    pub fn perform(&self) -> Result<serde_json::Value> {
        let v = match self {
            FsTask::Materialize {
                store,
                layers,
                keep,
                own,
                max_layer_size,
            } => {
                let store = Store::open(store)?.with_max_layer_size(*max_layer_size);
                serde_json::to_value(rootfs::materialize_keeping(&store, layers, *keep, *own)?)
            }
            FsTask::CopyRoot {
                src,
                dst,
                snapshot,
                own,
            } => {
                rootfs::copy_tree(src, dst, *own)
                    .ctx(|| format!("copying the root to {}", dst.display()))?;
                let snap = diff::snapshot(dst)?;
                let bytes = serde_json::to_vec(&snap).expect("a snapshot serializes");
                std::fs::write(snapshot, bytes)
                    .ctx(|| format!("writing {}", snapshot.display()))?;
                Ok(serde_json::Value::Null)
            }
            FsTask::Diff {
                store,
                lower,
                changed,
                snapshot,
                mount_points,
                own,
                source_date_epoch,
                compression,
                threads,
            } => {
                let store = Store::open(store)?;
                let o = diff::DiffOptions {
                    lower,
                    mount_points,
                    own: *own,
                    source_date_epoch: *source_date_epoch,
                    compression: *compression,
                    threads: *threads,
                };
                let desc = match snapshot {
                    None => diff::from_upper(&store, changed, &o)?,
                    Some(s) => {
                        let bytes = std::fs::read(s).ctx(|| format!("reading {}", s.display()))?;
                        let before: diff::Snapshot = serde_json::from_slice(&bytes)
                            .map_err(|e| Error::Other(format!("{}: {e}", s.display())))?;
                        diff::from_copy(&store, changed, &before, &o)?
                    }
                };
                serde_json::to_value(desc)
            }
            FsTask::Remove { path } => {
                crate::util::fs::remove_any(path).ctx(|| format!("removing {}", path.display()))?;
                Ok(serde_json::Value::Null)
            }
        };
        Ok(v.expect("results serialize"))
    }
}

/// Does `task` where the files it touches can be handled: here, or as root
/// of a user namespace with the caller's subordinate ids.
fn fs_op(map: Mapping, task: FsTask) -> Result<serde_json::Value> {
    if !matches!(map, Mapping::Range { .. }) {
        return task.perform();
    }
    let exe = helper_exe()?;
    let spec = ChildSpec {
        root: PathBuf::new(),
        upper: None,
        argv: vec![],
        env: vec![],
        cwd: String::new(),
        user: String::new(),
        hostname: String::new(),
        network: true,
        binds: vec![],
        map,
        task: Some(task),
        insecure: false,
    };
    let mut child = Command::new(&exe)
        .arg("__sandbox")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .spawn()
        .ctx(|| format!("starting the sandbox ({})", exe.display()))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(&serde_json::to_vec(&spec).expect("the task serializes"))
        .ctx(|| "starting the sandbox".into())?;
    let out = child
        .wait_with_output()
        .ctx(|| "waiting for the sandbox".into())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let msg = stderr
            .lines()
            .filter_map(|l| l.strip_prefix(child::MARK))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::Other(format!(
            "in the build's user namespace: {}",
            if msg.is_empty() { stderr.trim() } else { &msg }
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Other(format!("the sandbox's answer: {e}")))
}

/// Removes a tree the sandbox made (a step folder, a cached root), also
/// when its files belong to the caller's subordinate ids.
pub fn remove_tree(p: &Path) -> Result<()> {
    if crate::util::fs::remove_any(p).is_ok() {
        return Ok(());
    }
    fs_op(
        mapping()?,
        FsTask::Remove {
            path: p.to_path_buf(),
        },
    )
    .map(|_| ())
}

fn helper_exe() -> Result<PathBuf> {
    if let Some(p) = &options().helper {
        return Ok(p.clone());
    }
    std::env::current_exe().ctx(|| "finding the imgbuild binary for the sandbox".into())
}

/// Runs one step and stores what it changed as a layer.
pub fn execute(store: &Store, st: &RunStep, cx: &RunContext) -> Result<LayerDesc> {
    if !can_execute(&st.platform) {
        return Err(Error::Unsupported {
            what: format!(
                "{}: {}: running programs for {} on this {} host",
                cx.loc,
                cx.name,
                st.platform,
                host_arch()
            ),
            hint: Some(format!(
                "no binfmt_misc handler for {} is registered; install one (e.g. qemu-user-binfmt) or drop the platform",
                st.platform.arch
            )),
        });
    }
    let map = mapping()?;
    // Whether the ids the sandbox sees are the image's (root, or a range).
    let own = map != Mapping::Single;
    let lower: PathBuf = serde_json::from_value(fs_op(
        map,
        FsTask::Materialize {
            store: store.root().to_path_buf(),
            layers: cx.layers.clone(),
            keep: cx.base_layers,
            own,
            max_layer_size: store.max_layer_size(),
        },
    )?)
    .map_err(|e| Error::Other(format!("the root filesystem's path: {e}")))?;
    let tmp = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(store.tmp_dir())
        .ctx(|| "creating a temp folder".into())?;
    let result = execute_in(store, st, cx, &lower, tmp.path(), map);
    crate::util::fs::make_removable(tmp.path());
    if let Err(e) = remove_tree(tmp.path())
        && result.is_ok()
    {
        return Err(e);
    }
    drop(tmp);
    result
}

/// Fills a new cache folder with a copy of `seed` (its contents).
fn seed_cache(seed: &Path, dir: &Path, own: bool) -> Result<()> {
    let meta = std::fs::metadata(seed).ctx(|| format!("reading {}", seed.display()))?;
    if !meta.is_dir() {
        return Err(Error::Other(format!(
            "a cache mount's source {} is no folder",
            seed.display()
        )));
    }
    let rd = std::fs::read_dir(seed).ctx(|| format!("reading {}", seed.display()))?;
    for e in rd {
        let e = e.ctx(|| format!("reading {}", seed.display()))?;
        let to = dir.join(e.file_name());
        rootfs::copy_tree(&e.path(), &to, own).ctx(|| format!("copying {}", e.path().display()))?;
    }
    Ok(())
}

fn execute_in(
    store: &Store,
    st: &RunStep,
    cx: &RunContext,
    lower: &Path,
    tmp: &Path,
    map: Mapping,
) -> Result<LayerDesc> {
    let own = map != Mapping::Single;
    let mut binds: Vec<Bind> = Vec::new();
    let mut mount_points: Vec<String> = ["/proc", "/dev", "/sys"].map(String::from).to_vec();
    for f in ["/etc/resolv.conf", "/etc/hosts"] {
        if !st.network && f == "/etc/resolv.conf" {
            continue;
        }
        if let Ok(bytes) = std::fs::read(f) {
            let copy = tmp.join(f.trim_start_matches("/etc/"));
            std::fs::write(&copy, bytes).ctx(|| format!("writing {}", copy.display()))?;
            binds.push(Bind {
                src: copy,
                dst: f.into(),
                readonly: false,
            });
            mount_points.push(f.into());
        }
    }
    for (src, dst) in st.binds.iter().chain(&cx.ro_binds) {
        binds.push(Bind {
            src: src.clone(),
            dst: dst.clone(),
            readonly: true,
        });
        mount_points.push(dst.clone());
    }
    for (n, dst) in st.tmpfs.iter().enumerate() {
        let dir = tmp.join(format!("tmpfs-{n}"));
        std::fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
        binds.push(Bind {
            src: dir,
            dst: dst.clone(),
            readonly: false,
        });
        mount_points.push(dst.clone());
    }
    let mut locks = Vec::new();
    for c in &st.caches {
        let dir = store
            .root()
            .join("cache-mounts")
            .join(cache_dir_name(&c.id));
        let fresh = !dir.exists();
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        // One step at a time per cache (apt and pip caches are not shareable).
        locks.push(store.lock_named(&dir)?);
        // A new cache `from=` another image starts as a copy of its folder.
        if let Some(seed) = cx.cache_seeds.get(&c.id)
            && fresh
        {
            seed_cache(seed, &dir, own)?;
        }
        // In use: `cache prune` ages caches by this time.
        crate::util::fs::touch(&dir);
        binds.push(Bind {
            src: dir,
            dst: c.target.clone(),
            readonly: false,
        });
        mount_points.push(c.target.clone());
    }
    let mut env: Vec<String> = cx.env.clone();
    let mut set_env = |k: &str, v: &str| {
        env.retain(|e| e.split_once('=').map(|(a, _)| a) != Some(k));
        env.push(format!("{k}={v}"));
    };
    if !cx.env.iter().any(|e| e.starts_with("PATH=")) {
        set_env("PATH", DEFAULT_PATH);
    }
    if st.source_date_epoch && !cx.env.iter().any(|e| e.starts_with("SOURCE_DATE_EPOCH=")) {
        set_env("SOURCE_DATE_EPOCH", &cx.source_date_epoch.to_string());
    }
    for (k, v) in &st.env {
        set_env(k, v);
    }
    if !st.secrets.is_empty() {
        let dir = tmp.join("secrets");
        std::fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
        for s in &st.secrets {
            let Some(value) = cx.secrets.get(&s.id) else {
                return Err(Error::Usage(format!(
                    "{}: {}: secret {:?} was not given (pass --secret id={},src=FILE or id={},env=VAR)",
                    cx.loc, cx.name, s.id, s.id, s.id
                )));
            };
            if let Some(var) = &s.env {
                set_env(var, &String::from_utf8_lossy(value));
            }
            if let Some(target) = s.file_target() {
                let f = dir.join(&s.id);
                write_private(&f, value)?;
                binds.push(Bind {
                    src: f,
                    dst: target.clone(),
                    readonly: true,
                });
                mount_points.push(target);
            }
        }
    }
    for (n, s) in st.ssh.iter().enumerate() {
        let Some(sock) = cx.ssh.get(&s.id) else {
            if s.required {
                return Err(Error::Usage(format!(
                    "{}: {}: the step needs the SSH agent {:?} (pass --ssh {})",
                    cx.loc,
                    cx.name,
                    s.id,
                    if s.id == "default" {
                        "default".to_string()
                    } else {
                        format!("{}=SOCKET", s.id)
                    }
                )));
            }
            continue;
        };
        binds.push(Bind {
            src: sock.clone(),
            dst: s.target.clone(),
            readonly: false,
        });
        mount_points.push(s.target.clone());
        if n == 0 {
            set_env("SSH_AUTH_SOCK", &s.target);
        }
    }
    let mut spec = ChildSpec {
        root: lower.to_path_buf(),
        upper: None,
        argv: st.argv.clone(),
        env,
        cwd: cx.workdir.clone(),
        user: cx.user.clone(),
        hostname: "imgbuild".into(),
        network: st.network,
        binds,
        map,
        task: None,
        insecure: st.insecure,
    };
    let diff = |changed: &Path, snapshot: Option<PathBuf>| -> Result<LayerDesc> {
        let v = fs_op(
            map,
            FsTask::Diff {
                store: store.root().to_path_buf(),
                lower: lower.to_path_buf(),
                changed: changed.to_path_buf(),
                snapshot,
                mount_points: mount_points.clone(),
                own,
                source_date_epoch: cx.source_date_epoch,
                compression: cx.compression,
                threads: cx.threads,
            },
        )?;
        serde_json::from_value(v).map_err(|e| Error::Other(format!("the step's layer: {e}")))
    };
    let no_overlay = options().no_overlay;
    if !no_overlay && OVERLAY.load(Ordering::Relaxed) != 2 {
        let (upper, work, merged) = (tmp.join("upper"), tmp.join("work"), tmp.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d).ctx(|| format!("creating {}", d.display()))?;
        }
        // The root folder of the image keeps the lower root's mode.
        if let Ok(m) = std::fs::metadata(lower) {
            let _ = std::fs::set_permissions(&upper, m.permissions());
        }
        spec.upper = Some((upper.clone(), work, merged));
        match spawn(&spec, st, cx)? {
            Outcome::Done => {
                OVERLAY.store(1, Ordering::Relaxed);
                return diff(&upper, None);
            }
            Outcome::NoOverlay => OVERLAY.store(2, Ordering::Relaxed),
        }
    }
    // A copy of the root, compared with the original afterwards.
    let copy = tmp.join("root");
    let snapshot = tmp.join("snapshot.json");
    fs_op(
        map,
        FsTask::CopyRoot {
            src: lower.to_path_buf(),
            dst: copy.clone(),
            snapshot: snapshot.clone(),
            own,
        },
    )?;
    spec.root = copy.clone();
    spec.upper = None;
    match spawn(&spec, st, cx)? {
        Outcome::Done => diff(&copy, Some(snapshot)),
        Outcome::NoOverlay => unreachable!("no overlay was asked for"),
    }
}

fn write_private(p: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(p)
        .ctx(|| format!("writing {}", p.display()))?;
    f.write_all(bytes)
        .ctx(|| format!("writing {}", p.display()))
}

/// A cache id as a folder name: readable and collision-free.
fn cache_dir_name(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let h = crate::digest::Digest::of(id.as_bytes());
    format!("{clean}-{}", &h.hex()[..12])
}

enum Outcome {
    Done,
    NoOverlay,
}

/// Starts the sandbox helper, streams its output, enforces the timeout.
fn spawn(spec: &ChildSpec, st: &RunStep, cx: &RunContext) -> Result<Outcome> {
    let exe = helper_exe()?;
    let mut child = Command::new(&exe)
        .arg("__sandbox")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        // Only to find newuidmap and newgidmap.
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .spawn()
        .ctx(|| format!("starting the sandbox ({})", exe.display()))?;
    let input = serde_json::to_vec(spec).expect("the step serializes");
    {
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(&input)
            .ctx(|| "starting the sandbox".into())?;
    }
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    for r in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut br = std::io::BufReader::new(r);
            let mut line = Vec::new();
            while br.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let s = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if tx.send(s).is_err() {
                    break;
                }
                line.clear();
            }
        }));
    }
    drop(tx);
    let started = Instant::now();
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut setup_error: Option<String> = None;
    let mut timed_out = false;
    loop {
        let wait = match st.timeout {
            Some(t) => match t.checked_sub(started.elapsed()) {
                Some(left) => left,
                None => {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
            },
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(line) => {
                if let Some(msg) = line.strip_prefix(child::MARK) {
                    setup_error = Some(msg.trim().to_string());
                    continue;
                }
                (cx.output)(&line);
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().ctx(|| "waiting for the sandbox".into())?;
    for r in readers {
        let _ = r.join();
    }
    let tail_text = || {
        if tail.is_empty() {
            " (no output)".to_string()
        } else {
            format!(
                "; last output lines:\n{}",
                tail.iter()
                    .map(|l| format!("  | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
    };
    if timed_out {
        return Err(Error::Step {
            message: format!(
                "{}: {} timed out after {:.0?}{}",
                cx.loc,
                cx.name,
                st.timeout.unwrap_or_default(),
                tail_text()
            ),
            exit: None,
        });
    }
    let code = status.code().unwrap_or(128);
    if code == child::SETUP_FAILED
        && let Some(e) = setup_error
    {
        if e.starts_with(child::NO_OVERLAY) {
            return Ok(Outcome::NoOverlay);
        }
        if let Some(prog) = e.strip_prefix(child::NO_PROGRAM) {
            let prog = prog.trim_start_matches(": ");
            let hint = if st.argv.len() == 3 && st.argv[1] == "-c" && st.argv[0] == prog {
                " (a command in shell form runs under it: give the command as a list \
                 (exec form), or build on a base that has a shell)"
            } else {
                ""
            };
            return Err(Error::Step {
                message: format!(
                    "{}: {}: cannot run {prog}: it is not in the image (or the interpreter its #! line names is not){hint}",
                    cx.loc, cx.name
                ),
                exit: Some(127),
            });
        }
        return Err(Error::Other(format!(
            "{}: {}: the sandbox could not start: {e}",
            cx.loc, cx.name
        )));
    }
    if code != 0 {
        return Err(Error::Step {
            message: format!(
                "{}: {} failed with exit status {code}{}",
                cx.loc,
                cx.name,
                tail_text()
            ),
            exit: Some(code),
        });
    }
    Ok(Outcome::Done)
}

//! RUN steps without a daemon: the layers below a step become a root
//! filesystem (cached), the command runs in new Linux namespaces on an
//! overlay of it (or a copy), and what it changed becomes a layer.

pub mod child;
pub mod diff;
pub mod rootfs;

use crate::error::{Error, IoContext, Result};
use crate::layer::compress::Compression;
use crate::spec::Platform;
use crate::store::{LayerDesc, Store};
use child::{Bind, ChildSpec};
use rootfs::LayerRef;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Version of the RUN layer format; part of every RUN step key.
pub const RUN_FORMAT: u32 = 1;

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
    pub timeout: Option<Duration>,
    pub platform: Platform,
}

/// Where and how a step runs.
pub struct RunContext<'a> {
    /// Shown with each output line and in errors.
    pub name: &'a str,
    /// Where the step is defined (file:line:column: field), for errors.
    pub loc: &'a str,
    /// The layers below the step, bottom first, all in the store.
    pub layers: Vec<LayerRef>,
    /// The image configuration in force: env, workdir, user.
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    pub compression: Compression,
    pub threads: usize,
    pub source_date_epoch: u64,
    pub output: &'a (dyn Fn(&str) + Sync),
}

/// Lines of output kept for the error of a failed step.
const TAIL: usize = 20;

/// Whether overlayfs works here: 0 unknown, 1 yes, 2 no.
static OVERLAY: AtomicU8 = AtomicU8::new(0);

/// The host's architecture as an OCI platform architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "arm" => "arm",
        other => other,
    }
}

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

fn helper_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("IMGBUILD_SANDBOX_HELPER").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
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
    let own = unsafe { libc::geteuid() } == 0;
    let lower = rootfs::materialize(store, &cx.layers, own)?;
    let tmp = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(store.root().join("tmp"))
        .ctx(|| "creating a temp folder".into())?;
    let result = execute_in(store, st, cx, &lower, tmp.path(), own);
    rootfs::make_removable(tmp.path());
    drop(tmp);
    result
}

fn execute_in(
    store: &Store,
    st: &RunStep,
    cx: &RunContext,
    lower: &Path,
    tmp: &Path,
    own: bool,
) -> Result<LayerDesc> {
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
    let mut locks = Vec::new();
    for c in &st.caches {
        let dir = store
            .root()
            .join("cache-mounts")
            .join(cache_dir_name(&c.id));
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        // One step at a time per cache (apt and pip caches are not shareable).
        locks.push(store.lock_named(&dir)?);
        // In use: `cache prune` ages caches by this time.
        rootfs::set_mtime(&dir, now_secs());
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
        set_env("PATH", crate::plan::DEFAULT_PATH);
    }
    if !cx.env.iter().any(|e| e.starts_with("SOURCE_DATE_EPOCH=")) {
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
        userns: !own,
    };
    let diff_opts = diff::DiffOptions {
        lower,
        mount_points: &mount_points,
        own,
        source_date_epoch: cx.source_date_epoch,
        compression: cx.compression,
        threads: cx.threads,
    };
    let no_overlay = std::env::var_os("IMGBUILD_NO_OVERLAY").is_some_and(|v| v == "1");
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
                return diff::from_upper(store, &upper, &diff_opts);
            }
            Outcome::NoOverlay => OVERLAY.store(2, Ordering::Relaxed),
        }
    }
    // A copy of the root, compared with the original afterwards.
    let copy = tmp.join("root");
    rootfs::copy_tree(lower, &copy, own)
        .ctx(|| format!("copying the root to {}", copy.display()))?;
    let before = diff::snapshot(&copy)?;
    spec.root = copy.clone();
    spec.upper = None;
    match spawn(&spec, st, cx)? {
        Outcome::Done => diff::from_copy(store, &copy, &before, &diff_opts),
        Outcome::NoOverlay => unreachable!("no overlay was asked for"),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
        });
    }
    let code = status.code().unwrap_or(128);
    if code == child::SETUP_FAILED
        && let Some(e) = setup_error
    {
        if e.starts_with(child::NO_OVERLAY) {
            return Ok(Outcome::NoOverlay);
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
        });
    }
    Ok(Outcome::Done)
}

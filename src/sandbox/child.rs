//! The sandbox process: `imgbuild __sandbox` reads a [`ChildSpec`] on stdin,
//! enters new namespaces, mounts the root filesystem and runs the command
//! in it. It runs single-threaded from the start of `main`, so it may fork.
//!
//! Process tree: the helper (in the caller's namespaces) → when not root, a
//! child that enters a new user namespace (the helper writes its id maps,
//! itself or through newuidmap/newgidmap for a subordinate range) → pid 1 of
//! a new pid namespace, which mounts and then execs the command. With a
//! subordinate range the helper also does filesystem tasks ([`super::FsTask`])
//! as root of such a namespace, where files of those ids can be handled.
//! Every process below the helper dies with its parent (PDEATHSIG), and all
//! mounts live in a mount namespace that disappears with its last process:
//! nothing outlives a step.

use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Exit status of the helper when it could not set up the step (the
/// command never ran), with a line on stderr starting with [`MARK`].
pub const SETUP_FAILED: i32 = 125;
pub const MARK: &str = "imgbuild-sandbox:";
/// Said after [`MARK`] when overlayfs cannot be mounted here.
pub const NO_OVERLAY: &str = "overlay unavailable";
/// The start of the message when the step's program is not in the image.
pub const NO_PROGRAM: &str = "not in the image";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bind {
    /// On the host.
    pub src: PathBuf,
    /// Absolute, inside the root.
    pub dst: String,
    pub readonly: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildSpec {
    /// The root filesystem: the overlay's lower folder, or (without
    /// `upper`) the folder to run in.
    pub root: PathBuf,
    /// Overlay upper, work and mount folders.
    pub upper: Option<(PathBuf, PathBuf, PathBuf)>,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `USER` of the image config ("" = root).
    pub user: String,
    pub hostname: String,
    pub network: bool,
    pub binds: Vec<Bind>,
    /// The user namespace to enter (none when root).
    pub map: Mapping,
    /// Instead of running a command: a filesystem task done as root of the
    /// user namespace (where files of the mapped range can be made and read).
    #[serde(default)]
    pub task: Option<super::FsTask>,
    /// `RUN --security=insecure`: the command keeps every capability of
    /// the sandbox's root, with no seccomp filter and writable kernel
    /// settings; otherwise [`super::contain`] restricts it.
    #[serde(default)]
    pub insecure: bool,
}

/// How the step's user namespace maps ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mapping {
    /// Run as root: no user namespace, real ids.
    Root,
    /// The caller as root, nothing else (no subordinate ids).
    Single,
    /// The caller as root and 1..=count as the caller's subordinate ids
    /// (written by newuidmap/newgidmap).
    Range {
        uid_start: u32,
        uid_count: u32,
        gid_start: u32,
        gid_count: u32,
    },
}

/// Entry point of `imgbuild __sandbox`. Never returns.
pub fn main() -> ! {
    // The step dies with the imgbuild that started it, however that ends
    // (Ctrl-C, kill, a timeout).
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes two integers and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        std::process::exit(fail(&os_err("dying with imgbuild (prctl)")));
    }
    let mut input = Vec::new();
    let code = match std::io::stdin().read_to_end(&mut input) {
        Err(e) => fail(&format!("reading the step: {e}")),
        Ok(_) => match serde_json::from_slice::<ChildSpec>(&input) {
            Err(e) => fail(&format!("reading the step: {e}")),
            Ok(spec) => {
                // The command gets no stdin.
                if let Ok(null) = std::fs::File::open("/dev/null") {
                    use std::os::fd::AsRawFd;
                    // SAFETY: both are open descriptors of this process.
                    if unsafe { libc::dup2(null.as_raw_fd(), 0) } == -1 {
                        std::process::exit(fail(&os_err("giving the step no stdin")));
                    }
                }
                match run(&spec) {
                    Ok(c) => c,
                    Err(e) => fail(&e),
                }
            }
        },
    };
    std::process::exit(code)
}

fn fail(msg: &str) -> i32 {
    eprintln!("{MARK} {msg}");
    SETUP_FAILED
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn cstr(s: impl AsRef<[u8]>) -> CString {
    CString::new(s.as_ref().to_vec()).unwrap_or_default()
}

fn run(spec: &ChildSpec) -> Result<i32, String> {
    if spec.map == Mapping::Root {
        return inside(spec);
    }
    // SAFETY: geteuid and getegid take nothing and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let (r1, w1) = pipe()?;
    let (r2, w2) = pipe()?;
    // SAFETY: the helper has one thread (it has only read its stdin), so
    // the child may run any code after fork.
    match unsafe { libc::fork() } {
        -1 => Err(os_err("fork")),
        0 => {
            // SAFETY: integers only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
                std::process::exit(fail(&os_err("dying with imgbuild (prctl)")));
            }
            // SAFETY: the parent's pipe ends in this process, closed once;
            // closing a pipe end cannot lose data.
            unsafe {
                libc::close(r1);
                libc::close(w2);
            }
            // SAFETY: integers only.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
                let e = os_err("creating a user namespace");
                std::process::exit(fail(&e));
            }
            write_byte(w1);
            // Wait for the id maps.
            if !read_byte(r2) {
                std::process::exit(fail("the id maps were not written"));
            }
            // Root of the namespace from here on.
            // SAFETY: integers only.
            if unsafe { libc::setresgid(0, 0, 0) } != 0 || unsafe { libc::setresuid(0, 0, 0) } != 0
            {
                std::process::exit(fail(&os_err("becoming root in the user namespace")));
            }
            let code = match inside(spec) {
                Ok(c) => c,
                Err(e) => fail(&e),
            };
            std::process::exit(code)
        }
        pid => {
            // SAFETY: the child's pipe ends in this process, closed once.
            unsafe {
                libc::close(w1);
                libc::close(r2);
            }
            if !read_byte(r1) {
                return Ok(wait(pid));
            }
            let maps = write_maps(pid, uid, gid, spec.map);
            if let Err(e) = maps {
                // SAFETY: integers only. Its result does not matter: the
                // child is reaped below whether it was still alive or not.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                wait(pid);
                return Err(format!("writing the user namespace's id maps: {e}"));
            }
            write_byte(w2);
            Ok(wait(pid))
        }
    }
}

/// Writes the id maps of `pid`'s new user namespace.
fn write_maps(pid: i32, uid: u32, gid: u32, map: Mapping) -> Result<(), String> {
    match map {
        Mapping::Root => Ok(()),
        Mapping::Single => (|| -> std::io::Result<()> {
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
            std::fs::write(format!("/proc/{pid}/uid_map"), format!("0 {uid} 1\n"))?;
            std::fs::write(format!("/proc/{pid}/gid_map"), format!("0 {gid} 1\n"))?;
            Ok(())
        })()
        .map_err(|e| e.to_string()),
        Mapping::Range {
            uid_start,
            uid_count,
            gid_start,
            gid_count,
        } => {
            for (tool, own, start, count) in [
                ("newuidmap", uid, uid_start, uid_count),
                ("newgidmap", gid, gid_start, gid_count),
            ] {
                let out = std::process::Command::new(tool)
                    .args([
                        pid.to_string(),
                        "0".into(),
                        own.to_string(),
                        "1".into(),
                        "1".into(),
                        start.to_string(),
                        count.to_string(),
                    ])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| format!("{tool}: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "{tool}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            Ok(())
        }
    }
}

/// In the user namespace (or as root): a filesystem task, or the command.
fn inside(spec: &ChildSpec) -> Result<i32, String> {
    match &spec.task {
        Some(task) => {
            let v = task.perform().map_err(|e| e.to_string())?;
            println!("{v}");
            Ok(0)
        }
        None => namespaces(spec),
    }
}

fn pipe() -> Result<(i32, i32), String> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is the array of two descriptors pipe2 fills.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("pipe"));
    }
    Ok((fds[0], fds[1]))
}

/// Writes one byte and closes `fd`. A failed write needs no check here: the
/// reader then sees the end of the pipe and fails with its own message.
fn write_byte(fd: i32) {
    // SAFETY: a one-byte buffer for a one-byte write to a pipe end this
    // process owns, closed once.
    unsafe {
        libc::write(fd, b"1".as_ptr() as *const libc::c_void, 1);
        libc::close(fd);
    }
}

fn read_byte(fd: i32) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: a one-byte buffer for a one-byte read from a pipe end this
    // process owns, closed once.
    let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, 1) };
    // SAFETY: as above.
    unsafe { libc::close(fd) };
    n == 1
}

/// Waits for `pid`; its exit code, or 128 + the signal that killed it.
fn wait(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a live int for waitpid to fill.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return SETUP_FAILED;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        SETUP_FAILED
    }
}

fn namespaces(spec: &ChildSpec) -> Result<i32, String> {
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if !spec.network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: integers only.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(os_err("creating namespaces"));
    }
    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(|e| format!("making mounts private: {e}"))?;
    // SAFETY: one thread (see `run`), so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(os_err("fork")),
        0 => {
            // SAFETY: integers only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
                std::process::exit(fail(&os_err("dying with imgbuild (prctl)")));
            }
            let e = init(spec);
            std::process::exit(fail(&e))
        }
        pid => Ok(wait(pid)),
    }
}

pub(super) fn mount(
    src: Option<&str>,
    dst: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let s = src.map(cstr);
    let d = cstr(dst.as_ref().as_os_str().as_bytes());
    let t = fstype.map(cstr);
    let o = data.map(cstr);
    // SAFETY: each pointer is a NUL-terminated string alive for the call,
    // or null where mount(2) allows it.
    let r = unsafe {
        libc::mount(
            s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            d.as_ptr(),
            t.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            o.as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr() as *const libc::c_void),
        )
    };
    if r != 0 {
        return Err(format!(
            "mount {} on {}: {}",
            src.or(fstype).unwrap_or("-"),
            dst.as_ref().display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn bind(src: &Path, dst: &Path, readonly: bool) -> Result<(), String> {
    let s = src.to_string_lossy().to_string();
    mount(Some(&s), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
    if readonly {
        mount(
            None,
            dst,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
            None,
        )?;
    }
    Ok(())
}

/// The device nodes of a step's `/dev`: name, major and minor numbers.
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Makes `/dev/NAME` in the step's own `/dev` (a tmpfs). As root the node
/// is the step's own (mknod), so a step that changes it (chmod, chown,
/// removing it) changes nothing on the host, as in a rootful container
/// runtime. In a user namespace mknod is refused; the host's node is then
/// bound over an empty file, and the step's root, an unprivileged id on
/// the host, cannot change it.
fn device(dev: &Path, name: &str, major: u32, minor: u32) -> Result<(), String> {
    let p = dev.join(name);
    let c = cstr(p.as_os_str().as_encoded_bytes());
    // SAFETY: `c` is a NUL-terminated path; the rest are integers.
    let made = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        )
    } == 0;
    if made {
        // mknod's mode is cut by the umask: set it whole.
        use std::os::unix::fs::PermissionsExt;
        return std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("/dev/{name}: {e}"));
    }
    std::fs::write(&p, b"").map_err(|e| format!("/dev/{name}: {e}"))?;
    bind(&Path::new("/dev").join(name), &p, false)
}

/// A mount point inside the root: made (as an empty file or folder) when
/// missing, never through a symlink that leads outside.
fn mount_point(root: &Path, dst: &str, dir: bool) -> Result<PathBuf, String> {
    let comps = super::rootfs::clean(Path::new(dst))?;
    let p = super::rootfs::resolve_in_root(root, &comps).map_err(|e| format!("{dst}: {e}"))?;
    if std::fs::symlink_metadata(&p).is_err() {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{dst}: {e}"))?;
        }
        if dir {
            std::fs::create_dir(&p).map_err(|e| format!("{dst}: {e}"))?;
        } else {
            std::fs::write(&p, b"").map_err(|e| format!("{dst}: {e}"))?;
        }
    }
    Ok(p)
}

/// Pid 1 of the step: mounts, then becomes the command. Returns only on error.
fn init(spec: &ChildSpec) -> String {
    match setup(spec) {
        Err(e) => e,
        Ok(home) => {
            let argv: Vec<CString> = spec.argv.iter().map(cstr).collect();
            let mut env: Vec<CString> = spec.env.iter().map(cstr).collect();
            // As container runtimes do: HOME from the user's passwd entry
            // when the image sets none.
            if !spec.env.iter().any(|e| e.starts_with("HOME=")) {
                env.push(cstr(format!("HOME={home}")));
            }
            let mut argp: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
            argp.push(std::ptr::null());
            let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
            envp.push(std::ptr::null());
            let prog = resolve_program(&spec.argv[0], &spec.env);
            // Last: the filter is in force from here on.
            if !spec.insecure
                && let Err(e) = super::contain::restrict()
            {
                return e;
            }
            // SAFETY: argv and envp are null-terminated arrays of pointers
            // into CStrings that outlive the call; execve returns only on
            // failure, reported below.
            unsafe { libc::execve(prog.as_ptr(), argp.as_ptr(), envp.as_ptr()) };
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::NotFound {
                // The program, or the interpreter its `#!` line names.
                format!("{NO_PROGRAM}: {}", prog.to_string_lossy())
            } else {
                format!("running {}: {e}", spec.argv[0])
            }
        }
    }
}

fn resolve_program(p: &str, env: &[String]) -> CString {
    if p.contains('/') {
        return cstr(p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let c = format!("{dir}/{p}");
        if Path::new(&c).is_file() {
            return cstr(c);
        }
    }
    cstr(p)
}

/// Returns the home folder of the step's user.
fn setup(spec: &ChildSpec) -> Result<String, String> {
    let root = match &spec.upper {
        Some((upper, work, merged)) => {
            let lower = spec.root.to_string_lossy();
            let opts = format!(
                "lowerdir={lower},upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
            // In a user namespace overlayfs must keep its metadata in
            // user.* xattrs (trusted.* cannot be set there, and without them
            // renaming a folder fails with EXDEV).
            let variants = if spec.map != Mapping::Root {
                [format!("{opts},userxattr"), opts.clone()]
            } else {
                [opts.clone(), format!("{opts},userxattr")]
            };
            let mut last = String::new();
            let mut ok = false;
            for v in &variants {
                match mount(Some("overlay"), merged, Some("overlay"), 0, Some(v)) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if !ok {
                return Err(format!("{NO_OVERLAY}: {last}"));
            }
            merged.clone()
        }
        None => {
            bind(&spec.root, &spec.root, false)?;
            spec.root.clone()
        }
    };
    for b in &spec.binds {
        let dir = std::fs::metadata(&b.src)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        let p = mount_point(&root, &b.dst, dir)?;
        bind(&b.src, &p, b.readonly)?;
    }
    let proc_ = mount_point(&root, "/proc", true)?;
    mount(
        Some("proc"),
        &proc_,
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;
    let dev = mount_point(&root, "/dev", true)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=755,size=65536k"),
    )?;
    for (n, major, minor) in DEVICES {
        device(&dev, n, major, minor)?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(target, dev.join(name));
    }
    for d in ["pts", "shm", "mqueue"] {
        let _ = std::fs::create_dir(dev.join(d));
    }
    let _ = mount(
        Some("devpts"),
        dev.join("pts"),
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    );
    let _ = mount(
        Some("shm"),
        dev.join("shm"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    );
    if std::fs::symlink_metadata(root.join("sys")).is_ok_and(|m| m.is_dir()) {
        if spec.insecure {
            let _ = bind(Path::new("/sys"), &root.join("sys"), true);
        } else {
            read_only_sys(&root.join("sys"));
        }
    }
    if !spec.insecure {
        super::contain::mask(&root)?;
    }
    let h = cstr(&spec.hostname);
    // SAFETY: h holds the name's bytes, the length given.
    if unsafe { libc::sethostname(h.as_ptr(), spec.hostname.len()) } != 0 {
        return Err(os_err("setting the hostname"));
    }
    // Into the root: pivot_root with the old root stacked beneath, then
    // detach it.
    std::env::set_current_dir(&root).map_err(|e| format!("chdir {}: {e}", root.display()))?;
    let dot = cstr(".");
    // SAFETY: dot is a NUL-terminated string alive for both calls.
    if unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } != 0 {
        return Err(os_err("pivot_root"));
    }
    if unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(os_err("detaching the old root"));
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    let (uid, gid, groups, home) = lookup_user(&spec.user)?;
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    if !Path::new(cwd).is_dir() {
        std::fs::create_dir_all(cwd).map_err(|e| format!("creating the workdir {cwd}: {e}"))?;
        if uid != 0 {
            let c = cstr(cwd);
            // SAFETY: c is a NUL-terminated path alive for the call. With
            // only uid 0 mapped the chown cannot succeed; the change of user
            // below then fails with the message that says what to do.
            if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 && spec.map != Mapping::Single {
                return Err(os_err(&format!("giving the workdir {cwd} to {uid}:{gid}")));
            }
        }
    }
    std::env::set_current_dir(cwd).map_err(|e| format!("workdir {cwd}: {e}"))?;
    if !spec.insecure {
        super::contain::drop_bounding()?;
    }
    if uid != 0 || gid != 0 {
        let n = groups.len();
        // SAFETY: groups holds n gids; the rest are integers.
        if spec.map != Mapping::Single && unsafe { libc::setgroups(n, groups.as_ptr()) } != 0 {
            return Err(os_err("setgroups"));
        }
        if unsafe { libc::setgid(gid) } != 0 || unsafe { libc::setuid(uid) } != 0 {
            return Err(format!(
                "user {:?} (uid {uid}, gid {gid}): {}; this unprivileged build maps only uid 0 (give the user subordinate ids in /etc/subuid and /etc/subgid and install newuidmap, or build as root)",
                spec.user,
                std::io::Error::last_os_error()
            ));
        }
        // Changing ids clears the parent-death signal: set it again.
        // SAFETY: integers only.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            return Err(os_err("dying with imgbuild (prctl)"));
        }
    }
    Ok(home)
}

/// A read-only `/sys` at `dst`: a sysfs of its own where the step's
/// namespaces allow one (nothing the host mounted below /sys, such as
/// cgroups, comes with it), else the host's, read-only with every mount
/// below it.
fn read_only_sys(dst: &Path) {
    let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if mount(Some("sysfs"), dst, Some("sysfs"), flags, None).is_ok() {
        return;
    }
    if bind(Path::new("/sys"), dst, true).is_err() {
        return;
    }
    // The remount above covers the top mount only: every mount below it
    // is made read-only too (mount_setattr, Linux 5.12 on).
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clear: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        set: 0x1, // MOUNT_ATTR_RDONLY
        clear: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let d = cstr(dst.as_os_str().as_bytes());
    // SAFETY: d is a NUL-terminated path and attr a mount_attr of the
    // size given, both alive for the call. A kernel without the call
    // leaves the submounts as they were (the files there belong to the
    // host's root, whom a user namespace's root is not).
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            d.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
}

/// `USER` as the image gives it: name or uid, optionally `:group` or `:gid`,
/// looked up in the root's /etc/passwd and /etc/group: uid, gid, groups and
/// home folder (`/` for a uid not in /etc/passwd, as runc has it).
fn lookup_user(user: &str) -> Result<(u32, u32, Vec<libc::gid_t>, String), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let home_of = |uid: u32| {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<&str>>())
            .find(|f| f.len() >= 6 && f[2].parse::<u32>() == Ok(uid))
            .map(|f| f[5].to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    if user.is_empty() || user == "root" || user == "0" {
        return Ok((0, 0, vec![0], home_of(0)));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && (f[0] == u || f[2] == u)).then(|| (f[0].to_string(), f[2], f[3]))
    });
    let (name, uid, gid) = match (&entry, u.parse::<u32>()) {
        (Some((n, uid, gid)), _) => (
            n.clone(),
            uid.parse::<u32>()
                .map_err(|_| format!("/etc/passwd: bad uid for {u}"))?,
            gid.parse::<u32>()
                .map_err(|_| format!("/etc/passwd: bad gid for {u}"))?,
        ),
        (None, Ok(n)) => (String::new(), n, n),
        (None, Err(_)) => {
            return Err(format!("user {u:?} is not in the image's /etc/passwd"));
        }
    };
    let gid = match g {
        None => gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g).then(|| f[2].parse::<u32>().ok())?
                })
                .ok_or_else(|| format!("group {g:?} is not in the image's /etc/group"))?,
        },
    };
    let mut groups = vec![gid];
    if !name.is_empty() {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(n) = f[2].parse::<u32>()
                && !groups.contains(&n)
            {
                groups.push(n);
            }
        }
    }
    Ok((uid, gid, groups, home_of(uid)))
}

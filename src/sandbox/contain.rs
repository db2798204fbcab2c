//! What a RUN step may do, as a container runtime's defaults allow it
//! (Docker's, BuildKit's, buildah's): the capabilities it keeps, the system
//! calls a seccomp filter refuses, the kernel files it cannot read or
//! write, and `no_new_privs`. `RUN --security=insecure` skips all of it.
//!
//! Called by the step's pid 1 ([`super::child`]) in this order: [`mask`]
//! once `/proc` and `/sys` are mounted in the root; [`drop_bounding`]
//! before it changes to the step's user (dropping bounding capabilities
//! takes `CAP_SETPCAP`, which a user other than root no longer has);
//! [`restrict`] last, just before the command is executed.

use std::path::Path;

/// The capabilities a step keeps, by number: Docker's default set less
/// `MKNOD` (no device cgroup here stops a block device made in the root
/// from being opened), `NET_RAW` and `AUDIT_WRITE`, as buildah and podman
/// have it. As a mask: `0x800405fb`.
pub const KEPT_CAPS: &[u32] = &[
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    18, // SYS_CHROOT
    31, // SETFCAP
];

/// [`KEPT_CAPS`] as a bit mask (what `CapEff` shows in /proc/PID/status).
pub fn kept_mask() -> u64 {
    KEPT_CAPS.iter().fold(0u64, |m, c| m | (1u64 << c))
}

/// Files of /proc that tell about the host or act on it: hidden behind
/// an empty file (`/dev/null` bound over them).
const MASKED_FILES: &[&str] = &[
    "proc/kcore",
    "proc/keys",
    "proc/timer_list",
    "proc/latency_stats",
    "proc/sched_debug",
    "proc/timer_stats",
];

/// Folders hidden behind an empty read-only tmpfs.
const MASKED_DIRS: &[&str] = &["proc/acpi", "proc/scsi", "sys/firmware"];

/// Kernel settings and triggers: seen, but read-only.
const READ_ONLY: &[&str] = &[
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Hides and freezes the kernel files of `MASKED_FILES`, `MASKED_DIRS`
/// and `READ_ONLY` under `root` (which has `/proc` and `/sys` mounted).
/// A path the kernel does not have is skipped.
pub fn mask(root: &Path) -> Result<(), String> {
    let locked = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    for f in MASKED_FILES {
        let p = root.join(f);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
            super::child::mount(Some("/dev/null"), &p, None, libc::MS_BIND, None)?;
        }
    }
    for d in MASKED_DIRS {
        let p = root.join(d);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            super::child::mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                libc::MS_RDONLY | locked,
                None,
            )?;
        }
    }
    for r in READ_ONLY {
        let p = root.join(r);
        if std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        let src = p.to_string_lossy().into_owned();
        super::child::mount(Some(&src), &p, None, libc::MS_BIND | libc::MS_REC, None).and_then(
            |()| {
                super::child::mount(
                    None,
                    &p,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
                    None,
                )
            },
        )?;
    }
    Ok(())
}

/// Drops every capability but [`KEPT_CAPS`] from the bounding set, so no
/// program the step runs (setuid or with file capabilities) gets more.
pub fn drop_bounding() -> Result<(), String> {
    for cap in 0..64u32 {
        if KEPT_CAPS.contains(&cap) {
            continue;
        }
        // SAFETY: integers only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            // Past the last capability this kernel knows.
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(os_err(&format!("dropping capability {cap}")));
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The last step before the command runs, as the step's user: effective
/// and permitted capabilities cut to [`KEPT_CAPS`] (a user other than root
/// has none left already), inheritable and ambient ones cleared,
/// `no_new_privs` set, then the seccomp filter installed.
pub fn restrict() -> Result<(), String> {
    let mut head = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: head and data are the header and the two-element array
    // capget and capset read and write for version 3.
    if unsafe { libc::syscall(libc::SYS_capget, &mut head, data.as_mut_ptr()) } != 0 {
        return Err(os_err("reading the capabilities"));
    }
    let keep = kept_mask();
    for (i, d) in data.iter_mut().enumerate() {
        let k = (keep >> (32 * i)) as u32;
        d.effective &= k;
        d.permitted &= k;
        d.inheritable = 0;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capset, &mut head, data.as_ptr()) } != 0 {
        return Err(os_err("reducing the capabilities"));
    }
    // SAFETY: integers only.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(os_err("clearing the ambient capabilities"));
    }
    // SAFETY: integers only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(os_err("setting no_new_privs"));
    }
    super::seccomp::install()
}

//! The seccomp filter of a RUN step: the system calls Docker's default
//! profile does not let a container without `CAP_SYS_ADMIN` (and the
//! other capabilities a step lacks) make, refused with `EPERM` as Docker
//! refuses them. Written as a deny list for this host's architecture
//! (x86_64 or aarch64; a foreign-architecture step runs through an
//! emulator that makes the host's calls), compiled with `seccompiler`.
//!
//! Three filters, all consulted by the kernel for every call (the
//! strictest answer wins):
//! 1. the deny list, with argument checks for `clone` (new namespaces),
//!    `socket` (address families Docker leaves out) and `personality`
//!    (only the personas Docker allows); any call of another ABI (32-bit
//!    x86 on x86_64, 32-bit Arm on aarch64) kills the process, as
//!    libseccomp does for an architecture a filter does not name;
//! 2. `clone3` fails with `ENOSYS`, so the C library falls back to
//!    `clone`, whose flags the first filter can read (Docker does the same);
//! 3. on x86_64, every x32 call (numbers with bit 30 set, which the first
//!    filter would not recognise) fails with `EPERM`.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Calls refused whatever their arguments, by what they would reach.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn denied() -> Vec<i64> {
    let mut v = vec![
        // Mounts and the root: new filesystems, moving or hiding the
        // step's view of the root, detaching what the sandbox mounted.
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_mount_setattr,
        // Namespaces: joining another or making one (clone's flags are
        // checked apart).
        libc::SYS_unshare,
        libc::SYS_setns,
        // The kernel itself: modules, a new kernel, reboot, swap,
        // process accounting, quotas.
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_quotactl_fd,
        // Kernel keyrings are not per container.
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        // Programs and probes run by the kernel, kernel tracing.
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_lookup_dcookie,
        libc::SYS_fanotify_init,
        // Files reached by handle, past the mount the step sees.
        libc::SYS_open_by_handle_at,
        // The host's clock, log, name and terminal.
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_syslog,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_vhangup,
        // Other processes' memory and files beyond what ptrace allows.
        libc::SYS_kcmp,
        libc::SYS_pidfd_getfd,
        libc::SYS_process_madvise,
        // Memory placement across NUMA nodes.
        libc::SYS_mbind,
        libc::SYS_get_mempolicy,
        libc::SYS_set_mempolicy,
        libc::SYS_set_mempolicy_home_node,
        libc::SYS_migrate_pages,
        libc::SYS_move_pages,
        // Page faults handled in user space and io_uring: attack surface
        // Docker's profile leaves out.
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_nfsservctl,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        // I/O ports, and calls of old or unused kernels.
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
        libc::SYS__sysctl,
        libc::SYS_vserver,
        libc::SYS_tuxcall,
        libc::SYS_afs_syscall,
        libc::SYS_security,
        libc::SYS_getpmsg,
        libc::SYS_putpmsg,
    ]);
    v
}

/// Flags of `clone` that make a namespace.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// Address families Docker's profile does not allow for `socket`
/// (DECnet, Econet, ATM SVC, IrDA, WAN pipes, ISDN, CAIF, the kernel crypto
/// API, vsock); and every family from 46 on.
const DENIED_FAMILIES: &[u64] = &[12, 19, 20, 23, 25, 34, 37, 38, 40];
const FIRST_UNKNOWN_FAMILY: u64 = 46;

/// The personas `personality` may set (Linux, 32-bit Linux, and the
/// 2.6-style version of each) and the query `0xffffffff`.
const PERSONAS: &[u64] = &[0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| e.to_string())
}

#[cfg(target_arch = "x86_64")]
const ARCH: Option<TargetArch> = Some(TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
const ARCH: Option<TargetArch> = Some(TargetArch::aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<TargetArch> = None;

/// The programs to install, in order.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn programs() -> Result<Vec<BpfProgram>, String> {
    let arch = ARCH.expect("a supported architecture");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in denied() {
        rules.insert(nr, vec![]);
    }
    let mut clone = Vec::new();
    for f in NAMESPACE_FLAGS {
        clone.push(rule(vec![cond(0, SeccompCmpOp::MaskedEq(*f), *f)?])?);
    }
    rules.insert(libc::SYS_clone, clone);
    let mut socket = Vec::new();
    for f in DENIED_FAMILIES {
        socket.push(rule(vec![cond(0, SeccompCmpOp::Eq, *f)?])?);
    }
    socket.push(rule(vec![cond(
        0,
        SeccompCmpOp::Ge,
        FIRST_UNKNOWN_FAMILY,
    )?])?);
    rules.insert(libc::SYS_socket, socket);
    let mut persona = Vec::new();
    for p in PERSONAS {
        persona.push(cond(0, SeccompCmpOp::Ne, *p)?);
    }
    rules.insert(libc::SYS_personality, vec![rule(persona)?]);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let deny =
        SeccompFilter::new(rules, SeccompAction::Allow, eperm, arch).map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let mut out: Vec<BpfProgram> = vec![
        deny.try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?,
        clone3
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?,
    ];
    #[cfg(target_arch = "x86_64")]
    out.push(x32_filter());
    Ok(out)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn programs() -> Result<Vec<BpfProgram>, String> {
    Err(format!(
        "no seccomp filter for {} hosts (RUN --security=insecure runs without one)",
        std::env::consts::ARCH
    ))
}

/// x32 calls share x86_64's architecture value, with bit 30 set in their
/// number: refused outright.
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        ins(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        ins(JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        ins(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(JGE_K, 0, 1, X32_SYSCALL_BIT),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs the filters on this process; the command it executes next
/// keeps them. Needs `no_new_privs` (or `CAP_SYS_ADMIN`).
pub fn install() -> Result<(), String> {
    for p in programs()? {
        seccompiler::apply_filter(&p).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_this_host() {
        let p = programs().unwrap();
        assert!(p.len() >= 2);
        // seccomp allows at most 4096 instructions per program.
        assert!(p.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }

    #[test]
    fn kept_capabilities_are_buildahs_set() {
        assert_eq!(super::super::contain::kept_mask(), 0x8004_05fb);
    }
}

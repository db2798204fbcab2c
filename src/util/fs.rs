//! File-system calls the standard library does not offer: changing the
//! owner and times of a path without following a symlink, extended
//! attributes, fifos, removing trees whose folders are read-only, files
//! that get their name only once complete ([`NewFile`]), and reading a
//! text file with a bound on its size.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// `p` as a C string (a path holding a NUL byte is an error).
fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// `-1` from a system call becomes the thread's `errno` as an error.
fn check(r: libc::c_int) -> io::Result<()> {
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The most a build description (Dockerfile, definition, `.dockerignore`,
/// Flyte spec) may hold. BuildKit hands the Dockerfile to its frontend in
/// one message of at most 16 MiB, so no Dockerfile that builds there is
/// larger; the bound keeps a huge file from taking many times its size in
/// memory.
pub const MAX_DESCRIPTION_SIZE: u64 = 16 << 20;

/// Reads `r` as UTF-8 text, refusing more than `limit` bytes.
pub fn read_text_capped(r: impl io::Read, limit: u64) -> io::Result<String> {
    let mut text = String::new();
    io::Read::read_to_string(&mut r.take(limit.saturating_add(1)), &mut text)?;
    if text.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is larger than {} MiB, the most imgbuild reads",
                limit >> 20
            ),
        ));
    }
    Ok(text)
}

/// The text file at `p`, refused when larger than [`MAX_DESCRIPTION_SIZE`].
pub fn read_description(p: &Path) -> io::Result<String> {
    read_text_capped(fs::File::open(p)?, MAX_DESCRIPTION_SIZE)
}

/// Sets the owner of `p` without following a symlink.
pub fn lchown(p: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::lchown(c.as_ptr(), uid as libc::uid_t, gid as libc::gid_t) })
}

/// Makes a fifo (mode 0600) at `p`.
pub fn mkfifo(p: &Path) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    check(unsafe { libc::mkfifo(c.as_ptr(), 0o600) })
}

/// Sets the access and modification times (seconds) of `p` without
/// following a symlink.
pub fn set_mtime(p: &Path, secs: i64) -> io::Result<()> {
    let c = cpath(p)?;
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is NUL-terminated and `times` is an array of the two
    // timespecs utimensat reads; both outlive the call.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Marks `p` as used now, for pruning by age. Best effort: a time that
/// cannot be set only lets the entry age sooner.
pub fn touch(p: &Path) {
    let _ = set_mtime(p, crate::util::time::now_secs());
}

/// Sets the extended attribute `name` of `p` (not following a symlink).
pub fn lsetxattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` and `n` are NUL-terminated; `value` is valid for
    // `value.len()` bytes; all outlive the call.
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        )
    })
}

/// The extended attribute `name` of `p` (not following a symlink), if it
/// has one.
pub fn lgetxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = cpath(p).ok()?;
    let n = CString::new(name).ok()?;
    // Most values (file capabilities: 20–24 bytes) fit the first buffer;
    // for a larger one the size is asked for and the value read again.
    let mut len = 256;
    loop {
        let mut buf = vec![0u8; len];
        // SAFETY: `c` and `n` are NUL-terminated; `buf` is writable for
        // `buf.len()` bytes; all outlive the call.
        let r = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                n.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if r >= 0 {
            buf.truncate(r as usize);
            return Some(buf);
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) {
            return None;
        }
        // SAFETY: as above; a null buffer of length 0 only asks the size.
        let size = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
        if size < 0 {
            return None;
        }
        len = size as usize + 1;
    }
}

/// Removes whatever is at `p` (not following a symlink), if anything.
pub fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            make_removable(p);
            fs::remove_dir_all(p)
        }
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the owner write and search permission on every folder below `p`,
/// so a tree with read-only folders (made unprivileged) can be removed.
/// Best effort: what stays read-only makes the removal fail and say so.
pub fn make_removable(p: &Path) {
    let Ok(m) = fs::symlink_metadata(p) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    if m.mode() & 0o700 != 0o700 {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode((m.mode() & 0o7777) | 0o700));
    }
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&e.path());
            }
        }
    }
}

/// A file written in a folder that gets its name only when complete. On
/// Linux it is an unnamed `O_TMPFILE` file, which goes with the process
/// however the process ends (even by SIGKILL), so a killed writer leaves no
/// partial file under any name; on a file system without `O_TMPFILE` it is
/// a `.tmp-` file beside the destination, removed when dropped.
pub struct NewFile {
    file: fs::File,
    /// The named fallback, when the file system has no `O_TMPFILE`.
    named: Option<tempfile::NamedTempFile>,
}

impl NewFile {
    /// A new empty file in `dir` (created with `mode` less the umask).
    pub fn create_in(dir: &Path, mode: u32) -> io::Result<NewFile> {
        let c = cpath(dir)?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            use std::os::fd::FromRawFd;
            // SAFETY: `fd` was just opened and is owned by nothing else.
            let file = unsafe { fs::File::from_raw_fd(fd) };
            return Ok(NewFile { file, named: None });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL) => {}
            _ => return Err(e),
        }
        let named = tempfile::Builder::new()
            .permissions(fs::Permissions::from_mode(mode))
            .prefix(".tmp-")
            .tempfile_in(dir)?;
        let file = named.reopen()?;
        Ok(NewFile {
            file,
            named: Some(named),
        })
    }

    /// The open file, to write (a clone of it writes the same file).
    pub fn file(&self) -> &fs::File {
        &self.file
    }

    /// Names the finished file `dest` (in the same file system), replacing
    /// what was there at once.
    pub fn persist(self, dest: &Path) -> io::Result<()> {
        if let Some(named) = self.named {
            return named.persist(dest).map(|_| ()).map_err(|e| e.error);
        }
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        match link_fd(fd, dest) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            other => return other,
        }
        // link() never replaces: a name of our own first, then a rename.
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        loop {
            let tmp = dir.join(format!(".tmp-{}", rand_name()));
            match link_fd(fd, &tmp) {
                Ok(()) => {
                    return fs::rename(&tmp, dest).inspect_err(|_| {
                        let _ = fs::remove_file(&tmp);
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Gives the open unnamed file `fd` the name `dest`.
fn link_fd(fd: libc::c_int, dest: &Path) -> io::Result<()> {
    let to = cpath(dest)?;
    let from = CString::new(format!("/proc/self/fd/{fd}")).map_err(io::Error::other)?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOENT) || Path::new("/proc/self/fd").exists() {
        return Err(e);
    }
    // No /proc: the descriptor itself (needs CAP_DAC_READ_SEARCH).
    // SAFETY: the strings are NUL-terminated and outlive the call.
    check(unsafe {
        libc::linkat(
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
}

/// A name no other process or thread picks at the same time.
fn rand_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{}-{}-{nanos:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_attributes_of_a_symlink_itself() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink("target", &link).unwrap();
        set_mtime(&link, 1234).unwrap();
        assert_eq!(fs::symlink_metadata(&link).unwrap().mtime(), 1234);
        assert_ne!(fs::metadata(&target).unwrap().mtime(), 1234);
        assert!(set_mtime(&t.path().join("missing"), 1).is_err());
        assert!(lgetxattr(&target, "user.none").is_none());
    }

    #[test]
    fn a_read_only_tree_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d/e");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), b"x").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(t.path().join("d"), fs::Permissions::from_mode(0o500)).unwrap();
        remove_any(&t.path().join("d")).unwrap();
        assert!(!t.path().join("d").exists());
        remove_any(&t.path().join("d")).unwrap();
    }

    #[test]
    fn a_new_file_has_no_name_until_it_is_complete() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let names = || {
            let mut v: Vec<_> = fs::read_dir(t.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let f = NewFile::create_in(t.path(), 0o644).unwrap();
        f.file().write_all(b"first").unwrap();
        assert!(names().is_empty(), "no name while written: {:?}", names());
        f.persist(&t.path().join("out")).unwrap();
        assert_eq!(fs::read(t.path().join("out")).unwrap(), b"first");
        // An existing file is replaced at once.
        let f = NewFile::create_in(t.path(), 0o644).unwrap();
        f.file().try_clone().unwrap().write_all(b"second").unwrap();
        f.persist(&t.path().join("out")).unwrap();
        assert_eq!(fs::read(t.path().join("out")).unwrap(), b"second");
        assert_eq!(names(), vec![std::ffi::OsString::from("out")]);
        // Dropped unfinished: nothing.
        let f = NewFile::create_in(t.path(), 0o644).unwrap();
        f.file().write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(names(), vec![std::ffi::OsString::from("out")]);
    }
}

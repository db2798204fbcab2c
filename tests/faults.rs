//! Builds under faults: killed at an awkward moment, they leave nothing
//! that later commands keep.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

/// A definition copying one file of `mib` MiB of incompressible bytes
/// (compressing it keeps a debug build busy for seconds).
fn big_project(dir: &Path, mib: usize, seed: u64) {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    write_file(dir, "data/blob.bin", bytes, 0o644);
    fs::write(
        dir.join("imgbuild.toml"),
        "[images.app]\nbase = \"scratch\"\ntag = \"v1\"\n[[images.app.layers]]\nsource_folder = \"data\"\ndst = \"/data\"\n",
    )
    .unwrap();
}

/// The entries of the store's temp folder.
fn tmp_entries(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(store.join("tmp"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Temp folders (not their lock files) holding at least one file.
fn busy_sessions(store: &Path) -> Vec<PathBuf> {
    tmp_entries(store)
        .into_iter()
        .filter(|p| p.is_dir() && fs::read_dir(p).is_ok_and(|mut rd| rd.next().is_some()))
        .collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(pid: u32) {
    // SAFETY: integers only; pid is our own child, not yet reaped.
    let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// A build killed with SIGKILL while it writes a layer leaves its temp
/// files; the next command that opens the store removes them, but never
/// the temp files of a build that is still running, which then finishes.
#[test]
fn a_killed_builds_temp_files_go_with_the_next_command_and_a_running_ones_stay() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    big_project(&a, 48, 7);
    big_project(&b, 48, 11);

    let killed = ib(&["build"])
        .path_arg(&a)
        .cache(&store)
        .oci_out(&t.path().join("out-a"))
        .arg("-q")
        .spawn();
    wait_for("the first build's temp files", || {
        !busy_sessions(&store).is_empty()
    });
    kill9(killed.pid());
    assert_eq!(killed.wait().code, -1, "killed by a signal");
    let left = busy_sessions(&store);
    assert_eq!(left.len(), 1, "{:?}", tmp_entries(&store));

    let running = ib(&["build"])
        .path_arg(&b)
        .cache(&store)
        .oci_out(&t.path().join("out-b"))
        .arg("-q")
        .spawn();
    wait_for("the second build's temp files", || {
        busy_sessions(&store).iter().any(|p| !left.contains(p))
    });
    let live: Vec<PathBuf> = busy_sessions(&store)
        .into_iter()
        .filter(|p| !left.contains(p))
        .collect();
    ib(&["plan"]).path_arg(&a).cache(&store).run().ok();
    assert!(!left[0].exists(), "the killed build's folder is removed");
    assert!(live[0].exists(), "the running build's folder stays");
    running.wait().ok();
    assert_eq!(tmp_entries(&store), Vec::<PathBuf>::new(), "nothing left");
    // Leftovers of an older imgbuild (straight in tmp/) are pruned and
    // counted.
    write_file(&store, "tmp/tmp-legacy", vec![7u8; 5000], 0o644);
    write_file(&store, "tmp/run-legacy/rootfs/x", vec![7u8; 3000], 0o644);
    let v = ib(&["cache", "prune", "--format", "json"])
        .cache(&store)
        .run()
        .ok()
        .json();
    assert!(v["bytes_freed"].as_u64().unwrap() >= 8000, "{v}");
    assert_eq!(tmp_entries(&store), Vec::<PathBuf>::new());
    // The store still builds the killed image.
    ib(&["build"])
        .path_arg(&a)
        .cache(&store)
        .oci_out(&t.path().join("out-a"))
        .arg("-q")
        .run()
        .ok();
}

/// A tmpfs of `mib` MiB at `dir`, gone when the value is dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn new(dir: &Path, mib: usize) -> SmallFs {
        mkdirs(dir);
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a {mib} MiB tmpfs at {}", dir.display());
        SmallFs(dir.to_path_buf())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A store on a full disk: the build fails as an I/O failure of the store
/// (exit 5), not as a source file that changed.
#[test]
fn a_full_store_is_an_io_failure_of_the_store() {
    assert!(
        is_root(),
        "run the tests as root (they mount a small tmpfs)"
    );
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    big_project(&proj, 8, 7);
    let small = SmallFs::new(&t.path().join("small"), 4);
    let r = ib(&["build"])
        .path_arg(&proj)
        .cache(&small.0.join("store"))
        .oci_out(&t.path().join("out"))
        .json()
        .run();
    assert_eq!(r.code, 5, "{r}");
    let v = r.json();
    assert_eq!(v["error"]["kind"], "io", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("store") && msg.contains("No space left on device"),
        "names the store and the cause: {msg}"
    );
    assert!(!msg.contains("changed during the build"), "{msg}");
}

//! The fault-injection matrix: builds and pushes killed (SIGKILL) at named
//! points (`IMGBUILD_FAULT_PAUSE` stops the process exactly there), a full
//! store or output file system, a registry killed mid-push and restarted or
//! left down, concurrent builds into one store and one layout. Each row ends
//! complete and verified (skopeo, umoci, the digest of an unkilled build),
//! or with a documented error and nothing half-written: no partial file
//! under any name in an output, nothing left in the store's temp folder.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::registry::{Registry, RegistryOptions};
use support::*;

/// `n` incompressible bytes, the same for the same seed.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A definition copying one file of `mib` MiB of incompressible bytes
/// (compressing it keeps a debug build busy for seconds).
fn big_project(dir: &Path, mib: usize, seed: u64) {
    write_file(dir, "data/blob.bin", noise(mib * 1024 * 1024, seed), 0o644);
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

/// Sends `sig` to `pid`, one of our own children not yet reaped.
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: integers only; pid is our own child, not yet reaped.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

fn kill9(pid: u32) {
    signal(pid, libc::SIGKILL);
}

/// Lets a process stopped at a fault point go on.
fn sigcont(pid: u32) {
    signal(pid, libc::SIGCONT);
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
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
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
    // Nothing of the failed build is left in the store's temp folder.
    assert_eq!(tmp_usage(&small.0.join("store")), (0, 0));
    assert!(!t.path().join("out").join("index.json").exists());
}

// ---------------------------------------------------------------------------
// Helpers of the matrix
// ---------------------------------------------------------------------------

/// Entries and bytes under the store's temp folder (`tmp/`), measured.
fn tmp_usage(store: &Path) -> (usize, u64) {
    fn walk(p: &Path, acc: &mut (usize, u64)) {
        for e in fs::read_dir(p).into_iter().flatten().flatten() {
            let m = e.metadata().unwrap();
            acc.0 += 1;
            if m.is_dir() {
                walk(&e.path(), acc);
            } else {
                acc.1 += m.len();
            }
        }
    }
    let mut acc = (0, 0);
    walk(&store.join("tmp"), &mut acc);
    acc
}

/// Temp-looking names anywhere in the store outside `tmp/` (where no temp
/// file belongs).
fn temp_names(store: &Path) -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(p).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".tmp") || n.starts_with("tmp-") || n.starts_with(".fetch") {
                out.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    for e in fs::read_dir(store).into_iter().flatten().flatten() {
        if e.file_name() != "tmp" {
            walk(&e.path(), &mut out);
        }
    }
    out
}

/// A project of three layers (a file of `kib` KiB of incompressible bytes,
/// a small file, an env) tagged `tag`.
fn project(dir: &Path, kib: usize, seed: u64, tag: &str) -> PathBuf {
    write_file(dir, "data/blob.bin", noise(kib * 1024, seed), 0o644);
    write(dir, "extra.txt", &format!("seed {seed}\n"));
    write(
        dir,
        DEF,
        &format!(
            "[images.app]\nbase = \"scratch\"\ntag = \"{tag}\"\n\
             [[images.app.layers]]\nsource_folder = \"data\"\ndst = \"/data\"\n\
             [[images.app.layers]]\nsource_file = \"extra.txt\"\ndst = \"/etc/\"\n\
             [[images.app.layers]]\nenv = {{ SEED = \"{seed}\" }}\n"
        ),
    );
    dir.to_path_buf()
}

/// `imgbuild build DEF --output OUT -q` with the store `store`.
fn build_to(def: &Path, store: &Path, out: &str) -> Ib {
    ib(&["build"])
        .path_arg(def)
        .cache(store)
        .args(&["--output", out, "-q"])
}

/// The manifest digest of the project's image built in a store of its own,
/// unkilled: what any later build of it must give.
fn reference_digest(proj: &Path) -> String {
    let t = tempfile::tempdir().unwrap();
    let v = build_json(proj, &t.path().join("store"), &t.path().join("out"), &[]);
    v["images"][0]["digest"].as_str().unwrap().to_string()
}

/// The state letter of process `pid` (`T` stopped, `Z` exited), or None.
fn proc_state(pid: u32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Waits until the process stops at its fault point; panics with its
/// output when it ends first.
#[track_caller]
fn wait_stopped(r: Running, point: &str) -> Running {
    let t0 = Instant::now();
    loop {
        match proc_state(r.pid()) {
            Some('T') | Some('t') => return r,
            Some('Z') | None => panic!("imgbuild ended before {point}:\n{}", r.wait()),
            _ => {}
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "imgbuild never reached {point}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `cmd` and waits until it stops at fault point `point`.
#[track_caller]
fn stopped_at(cmd: Ib, point: &str) -> Running {
    wait_stopped(cmd.env("IMGBUILD_FAULT_PAUSE", point).spawn(), point)
}

/// Runs `cmd` until it stops at fault point `point`, then kills it (SIGKILL).
#[track_caller]
fn kill_at(cmd: Ib, point: &str) {
    let r = stopped_at(cmd, point);
    kill9(r.pid());
    assert_eq!(r.wait().code, -1, "killed by a signal");
}

/// The blobs a descriptor names, itself included (manifests and indexes
/// followed), each checked present with its size and digest.
#[track_caller]
fn check_tree(l: &Layout, desc: &Value) {
    let d = desc["digest"].as_str().expect("digest");
    let bytes = l.blob(d);
    assert_eq!(bytes.len() as u64, desc["size"].as_u64().unwrap(), "{d}");
    assert_eq!(sha256_hex(&bytes), hex(d), "blob {d} holds other bytes");
    let mt = desc["mediaType"].as_str().unwrap_or_default();
    if mt.contains("manifest") || mt.contains("index") {
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        for c in v["manifests"].as_array().into_iter().flatten() {
            check_tree(l, c);
        }
        if v["config"].is_object() {
            check_tree(l, &v["config"]);
        }
        for c in v["layers"].as_array().into_iter().flatten() {
            check_tree(l, c);
        }
    }
}

/// An OCI layout folder that any reader takes: nothing in it but
/// `oci-layout`, `index.json` and complete blobs (each file's bytes hash to
/// its name: no temp file, no partial blob under any name), and every blob
/// `index.json` names present and right. Returns index.json's bytes, if any.
#[track_caller]
fn assert_layout_sound(dir: &Path) -> Option<Vec<u8>> {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let n = e.file_name().into_string().unwrap();
        assert!(
            ["oci-layout", "index.json", "blobs"].contains(&n.as_str()),
            "a stray {n} in the layout {}",
            dir.display()
        );
    }
    let blobs = dir.join("blobs");
    for e in fs::read_dir(&blobs).into_iter().flatten().flatten() {
        assert_eq!(
            e.file_name(),
            "sha256",
            "a stray entry in {}",
            blobs.display()
        );
        for b in fs::read_dir(e.path()).unwrap().flatten() {
            let n = b.file_name().into_string().unwrap();
            let bytes = fs::read(b.path()).unwrap();
            assert_eq!(
                sha256_hex(&bytes),
                n,
                "a partial or stray file blobs/sha256/{n}"
            );
        }
    }
    let index = fs::read(dir.join("index.json")).ok()?;
    let l = Layout::new(dir);
    for m in l.index()["manifests"].as_array().expect("manifests") {
        check_tree(&l, m);
    }
    Some(index)
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// skopeo's manifest digest of `image` (e.g. `oci:DIR:TAG`).
fn skopeo_digest(image: &str) -> String {
    skopeo_json(&["inspect", image])["Digest"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------
// kill -9 at N points of a build
// ---------------------------------------------------------------------------

/// A build of a three-layer image into a layout on a file system of its own
/// (so blobs are copied, not linked), killed at `point`. Before the kill
/// the layout holds an earlier image. After it: the layout still reads the
/// earlier image and holds no partial file under any name; the next build
/// of the same input succeeds, gives the digest of an unkilled build, and
/// leaves the store's temp folder empty.
fn killed_layout_build(point: &str) {
    assert!(is_root(), "run the tests as root (they mount a tmpfs)");
    let t = tempfile::tempdir().unwrap();
    let proj = project(&t.path().join("proj"), 3 * 1024, 5, "v1");
    let old = project(&t.path().join("old"), 64, 9, "old");
    let want = reference_digest(&proj);
    let store = t.path().join("store");
    let fs_out = SmallFs::new(&t.path().join("outfs"), 64);
    let layout = fs_out.0.join("layout");

    build_json(&old, &store, &layout, &[]);
    let before = assert_layout_sound(&layout).expect("an index");
    let old_digest = skopeo_digest(&format!("oci:{}:old", layout.display()));

    kill_at(
        ib(&["build"])
            .path_arg(&proj)
            .cache(&store)
            .oci_out(&layout)
            .arg("-q"),
        point,
    );
    let left = tmp_usage(&store);
    assert!(
        left.0 > 0,
        "{point}: the killed build's temp folder stays until the next command"
    );
    if point == "layer-written" {
        // The session's folder and lock, and the layer's temp file in it.
        assert!(
            left.0 >= 3,
            "the killed build left its layer's temp file: {left:?}"
        );
    }
    assert_eq!(
        assert_layout_sound(&layout).as_deref(),
        Some(&before[..]),
        "{point}: the layout's index is the earlier one"
    );
    assert_eq!(
        skopeo_digest(&format!("oci:{}:old", layout.display())),
        old_digest
    );

    let v = build_json(&proj, &store, &layout, &[]);
    assert_eq!(v["images"][0]["digest"], want, "{point}: {v:#}");
    assert_eq!(
        tmp_usage(&store),
        (0, 0),
        "{point}: the killed build left {left:?} (entries, bytes); the next one removed them"
    );
    assert_eq!(temp_names(&store), Vec::<String>::new(), "{point}");
    assert_layout_sound(&layout).expect("an index");
    let mut tags = Layout::new(&layout).tags();
    tags.sort();
    assert_eq!(tags, ["old", "v1"]);
    assert_eq!(skopeo_digest(&format!("oci:{}:v1", layout.display())), want);
    assert_eq!(
        skopeo_digest(&format!("oci:{}:old", layout.display())),
        old_digest
    );
    let rootfs = umoci_unpack(&layout, "v1", &t.path().join("bundle"));
    assert_eq!(
        fs::read(rootfs.join("data/blob.bin")).unwrap(),
        fs::read(proj.join("data/blob.bin")).unwrap()
    );
}

#[test]
fn killed_while_a_layer_is_written_into_the_store() {
    killed_layout_build("layer-written");
}

#[test]
fn killed_after_a_blob_is_stored_before_its_step_record() {
    killed_layout_build("step-record");
}

#[test]
fn killed_while_blobs_are_copied_into_a_layout() {
    killed_layout_build("output-blob");
}

/// Killed while it writes an archive over an earlier one: the earlier
/// archive stays whole and alone in its folder; the next build writes the
/// new one, which skopeo reads with the unkilled build's digest.
#[test]
fn killed_while_an_archive_is_written() {
    assert!(is_root(), "run the tests as root (they mount a tmpfs)");
    let t = tempfile::tempdir().unwrap();
    let proj = project(&t.path().join("proj"), 3 * 1024, 5, "v1");
    let old = project(&t.path().join("old"), 64, 9, "v1");
    let want = reference_digest(&proj);
    let store = t.path().join("store");
    let fs_out = SmallFs::new(&t.path().join("outfs"), 64);
    for kind in ["oci-archive", "docker-archive"] {
        let dir = fs_out.0.join(kind);
        let file = dir.join("app.tar");
        let out = format!("{kind}:{}", file.display());
        build_to(&old, &store, &out).run().ok();
        let before = fs::read(&file).unwrap();
        kill_at(build_to(&proj, &store, &out), "output-archive");
        assert_eq!(names(&dir), ["app.tar"], "{kind}: nothing beside it");
        assert!(
            fs::read(&file).unwrap() == before,
            "{kind}: the earlier archive stays"
        );
        let v = build_to(&proj, &store, &out).json().run().ok().json();
        assert_eq!(v["images"][0]["digest"], want, "{v:#}");
        assert_eq!(tmp_usage(&store), (0, 0));
        assert_eq!(names(&dir), ["app.tar"]);
        let image = match kind {
            "oci-archive" => format!("oci-archive:{}", file.display()),
            _ => format!("docker-archive:{}", file.display()),
        };
        let got = skopeo_json(&["inspect", &image]);
        assert_eq!(got["Env"][0], "SEED=5", "{got:#}");
        if kind == "oci-archive" {
            assert_eq!(got["Digest"], want);
        }
    }
}

/// A RUN step's processes die with a killed imgbuild (the sandbox's pid
/// namespace goes with its init, which dies with imgbuild), nothing stays
/// mounted, and the next build gives the unkilled build's digest.
#[test]
fn killed_while_a_run_step_runs() {
    if !support::pybase::debian_tools_present("killed_while_a_run_step_runs") {
        return;
    }
    assert!(is_root(), "run the tests as root");
    let base = support::pybase::debian_python_base();
    let t = tempfile::tempdir().unwrap();
    let marker = format!("marker-killed-{}", std::process::id());
    let def = write(
        &t.path().join("def"),
        DEF,
        &format!(
            "[images.t]\nbase = \"oci:{}:latest\"\n\
             [[images.t.layers]]\ncommands = [\"sleep 4 & sleep 5; echo {marker} > /done\"]\n",
            base.display()
        ),
    );
    let want = reference_digest(&def);
    let store = t.path().join("store");
    let out = t.path().join("out");
    let running = ib(&["build"])
        .path_arg(&def)
        .cache(&store)
        .oci_out(&out)
        .arg("-q")
        .spawn();
    let procs = || -> Vec<String> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let c = fs::read(e.path().join("cmdline")).ok()?;
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                c.contains(&marker)
                    .then(|| format!("{:?}: {c}", e.file_name()))
            })
            .collect()
    };
    wait_for("the RUN step's shell", || !procs().is_empty());
    kill9(running.pid());
    assert_eq!(running.wait().code, -1);
    wait_for("the step's processes to die", || procs().is_empty());
    let store_s = store.to_str().unwrap();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(mi) = fs::read_to_string(e.path().join("mountinfo")) {
            assert!(
                !mi.contains(store_s),
                "{:?} has a mount in the store",
                e.path()
            );
        }
    }
    assert!(!out.join("index.json").exists());
    let v = build_json(&def, &store, &out, &[]);
    assert_eq!(v["images"][0]["digest"], want, "{v:#}");
    assert_eq!(tmp_usage(&store), (0, 0));
    assert_layout_sound(&out).expect("an index");
}

// ---------------------------------------------------------------------------
// A full output file system
// ---------------------------------------------------------------------------

/// Every output kind on an 8 MiB tmpfs, for a 12 MiB image: exit 5 naming
/// the output and the cause, the earlier output untouched and nothing
/// partial beside it, the store's temp folder empty at once.
#[test]
fn a_full_output_is_an_io_failure_naming_it_and_leaves_nothing_partial() {
    assert!(is_root(), "run the tests as root (they mount a tmpfs)");
    let t = tempfile::tempdir().unwrap();
    let proj = project(&t.path().join("proj"), 12 * 1024, 5, "v1");
    let old = project(&t.path().join("old"), 64, 9, "v1");
    let store = t.path().join("store");
    let small = SmallFs::new(&t.path().join("small"), 8);
    let outputs = [
        (
            "layout",
            format!("oci:{}", small.0.join("layout").display()),
        ),
        (
            "oci-archive",
            format!("oci-archive:{}", small.0.join("oa/app.tar").display()),
        ),
        (
            "docker-archive",
            format!("docker-archive:{}", small.0.join("da/app.tar").display()),
        ),
        (
            "tar",
            format!("type=tar,dest={}", small.0.join("fs/app.tar").display()),
        ),
    ];
    for (kind, out) in &outputs {
        build_to(&old, &store, out).run().ok();
        let dir = match *kind {
            "layout" => small.0.join("layout"),
            _ => Path::new(out.rsplit_once(['=', ':']).unwrap().1)
                .parent()
                .unwrap()
                .to_path_buf(),
        };
        let before_index = (*kind == "layout").then(|| assert_layout_sound(&dir).unwrap());
        let before_names = names(&dir);
        let before_file = (*kind != "layout").then(|| fs::read(dir.join("app.tar")).unwrap());

        let r = build_to(&proj, &store, out).json().run();
        assert_eq!(r.code, 5, "{kind}: {r}");
        let v = r.json();
        assert_eq!(v["error"]["kind"], "io", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(dir.to_str().unwrap()) && msg.contains("No space left on device"),
            "{kind}: names the output and the cause: {msg}"
        );
        assert_eq!(tmp_usage(&store), (0, 0), "{kind}: the store's temp folder");
        if *kind == "layout" {
            assert_eq!(assert_layout_sound(&dir), before_index, "the earlier index");
        } else {
            assert_eq!(
                names(&dir),
                before_names,
                "{kind}: nothing beside the archive"
            );
            assert!(fs::read(dir.join("app.tar")).unwrap() == before_file.unwrap());
        }
    }
}

// ---------------------------------------------------------------------------
// Errors leave the store's temp folder empty at once
// ---------------------------------------------------------------------------

/// A bad input and a failing RUN step: the documented exit code, and the
/// store's temp folder empty as soon as the command has exited.
#[test]
fn failed_builds_leave_the_store_temp_folder_empty() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let proj = project(&t.path().join("proj"), 256, 5, "v1");
    fs::remove_file(proj.join("extra.txt")).unwrap();
    let r = ib(&["build"])
        .path_arg(&proj)
        .cache(&store)
        .oci_out(&t.path().join("out"))
        .json()
        .run();
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(tmp_usage(&store), (0, 0));
    assert!(!t.path().join("out").exists());

    if !support::pybase::debian_tools_present("failed_builds_leave_the_store_temp_folder_empty") {
        return;
    }
    let base = support::pybase::debian_python_base();
    let def = write(
        &t.path().join("run"),
        DEF,
        &format!(
            "[images.t]\nbase = \"oci:{}:latest\"\n\
             [[images.t.layers]]\ncommands = [\"touch /half; exit 3\"]\n",
            base.display()
        ),
    );
    let r = ib(&["build"])
        .path_arg(&def)
        .cache(&store)
        .oci_out(&t.path().join("out"))
        .json()
        .run();
    assert_eq!(r.code, 7, "{r}");
    assert_eq!(tmp_usage(&store), (0, 0));
    assert!(!t.path().join("out").exists());
}

// ---------------------------------------------------------------------------
// Pushes under faults
// ---------------------------------------------------------------------------

/// A 20 MiB image (chunked upload) built into a layout, for pushes.
fn pushable(t: &Path) -> (PathBuf, PathBuf, String) {
    let proj = project(&t.join("proj"), 20 * 1024, 5, "v1");
    let store = t.join("store");
    let layout = t.join("layout");
    let v = build_json(&proj, &store, &layout, &[]);
    let d = v["images"][0]["digest"].as_str().unwrap().to_string();
    (store, layout, d)
}

fn push_cmd(store: &Path, layout: &Path, target: &str) -> Ib {
    ib(&["push", &format!("oci:{}:v1", layout.display()), target])
        .cache(store)
        .json()
        .arg("-q")
}

/// skopeo copies `repo_tag` from the registry into a layout in `dir`
/// (checking every digest); the copy has the manifest digest `want`.
#[track_caller]
fn assert_pulls_back(reg: &Registry, repo_tag: &str, dir: &Path, want: &str) {
    let image = format!("oci:{}:v1", dir.join("copy").display());
    reg.skopeo_pull(repo_tag, &image).unwrap();
    assert_eq!(skopeo_digest(&image), want, "{repo_tag} copied back");
}

/// Killed in the middle of a blob's chunked upload, or after its blobs are
/// up and before the manifest: the tag does not exist; the next push
/// completes and skopeo copies the image back with the built digest.
#[test]
fn a_killed_push_leaves_no_tag_and_the_next_completes() {
    let reg = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let (store, layout, want) = pushable(t.path());
    for (n, point) in ["push-chunk", "push-manifest"].iter().enumerate() {
        let target = format!("{}/team/app{n}:v1", reg.host());
        kill_at(push_cmd(&store, &layout, &target), point);
        let tagged = format!("team/app{n}:v1");
        assert!(reg.skopeo_inspect(&tagged).is_err(), "{point}: no tag yet");
        let left = tmp_usage(&store);
        push_cmd(&store, &layout, &target).run().ok();
        assert_eq!(
            tmp_usage(&store),
            (0, 0),
            "{point}: the killed push left {left:?}"
        );
        assert_eq!(reg.skopeo_inspect(&tagged).unwrap()["Digest"], want);
    }
    assert_pulls_back(&reg, "team/app0:v1", t.path(), &want);
}

/// The registry is killed (SIGKILL) in the middle of a blob's chunked
/// upload and started again on the same port and storage: the push goes on
/// (retries, resumed from the registry's offset) and completes; skopeo
/// copies the image back with the built digest.
#[test]
fn a_registry_killed_mid_push_and_restarted_gets_the_whole_image() {
    let mut reg = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let (store, layout, want) = pushable(t.path());
    let target = format!("{}/team/app:v1", reg.host());
    let r = stopped_at(push_cmd(&store, &layout, &target), "push-chunk");
    reg.kill();
    reg.restart();
    sigcont(r.pid());
    let run = r.wait();
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(reg.skopeo_inspect("team/app:v1").unwrap()["Digest"], want);
    assert_pulls_back(&reg, "team/app:v1", t.path(), &want);
}

/// The registry is killed mid-upload and stays down: the push fails as a
/// registry failure (exit 6) naming the registry, in bounded time; when the
/// registry comes back, no tag points at the incomplete image.
#[test]
fn a_registry_killed_mid_push_and_left_down_is_a_registry_failure() {
    let mut reg = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let (store, layout, _) = pushable(t.path());
    let target = format!("{}/team/app:v1", reg.host());
    let r = stopped_at(push_cmd(&store, &layout, &target), "push-chunk");
    reg.kill();
    let t0 = Instant::now();
    sigcont(r.pid());
    let run = r.wait();
    let took = t0.elapsed();
    assert_eq!(run.code, 6, "{run}");
    assert!(took < Duration::from_secs(90), "gave up after {took:?}");
    let v = run.json();
    assert_eq!(v["error"]["kind"], "registry", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&reg.host()), "names the registry: {msg}");
    assert_eq!(tmp_usage(&store), (0, 0));
    reg.restart();
    assert!(reg.skopeo_inspect("team/app:v1").is_err(), "no tag");
}

// ---------------------------------------------------------------------------
// Concurrent builds into one store and one layout
// ---------------------------------------------------------------------------

/// Four builds at once (two of the same image, two of others), each with
/// its own tag, into one store and one layout: all succeed, the layout's
/// index names every tag (no lost update), and each image reads back with
/// its own digest.
#[test]
fn concurrent_builds_into_one_store_and_one_layout_keep_every_tag() {
    let t = tempfile::tempdir().unwrap();
    let a = project(&t.path().join("a"), 2048, 5, "v1");
    let b = project(&t.path().join("b"), 2048, 6, "v1");
    let c = project(&t.path().join("c"), 1024, 7, "v1");
    let store = t.path().join("store");
    let layout = t.path().join("layout");
    let jobs = [(&a, "a1"), (&a, "a2"), (&b, "b1"), (&c, "c1")];
    for round in 0..2 {
        let running: Vec<_> = jobs
            .iter()
            .map(|(p, tag)| {
                ib(&["build"])
                    .path_arg(p)
                    .cache(&store)
                    .oci_out(&layout)
                    .args(&["-t", &format!("app:{tag}-{round}"), "-q"])
                    .json()
                    .spawn()
            })
            .collect();
        let digests: Vec<String> = running
            .into_iter()
            .map(|r| {
                r.wait().ok().json()["images"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(digests[0], digests[1], "the same image, the same digest");
        assert_layout_sound(&layout).expect("an index");
        let mut tags = Layout::new(&layout).tags();
        tags.sort();
        let mut want: Vec<String> = (0..=round)
            .flat_map(|r| jobs.iter().map(move |(_, t)| format!("{t}-{r}")))
            .collect();
        want.sort();
        assert_eq!(tags, want, "round {round}");
        for ((_, tag), d) in jobs.iter().zip(&digests) {
            assert_eq!(
                &skopeo_digest(&format!("oci:{}:{tag}-{round}", layout.display())),
                d
            );
        }
    }
    assert_eq!(tmp_usage(&store), (0, 0));
}

/// Two builds with stores of their own into one layout: while one holds
/// the layout's index between reading and replacing it (stopped there), the
/// other waits for it; when the first goes on, both tags are in the index
/// (no lost update) and both images read back.
#[test]
fn builds_with_different_stores_update_one_layout_one_at_a_time() {
    let t = tempfile::tempdir().unwrap();
    let a = project(&t.path().join("a"), 256, 5, "a");
    let b = project(&t.path().join("b"), 256, 6, "b");
    let want_b = reference_digest(&b);
    let layout = t.path().join("layout");
    let build = |p: &Path, store: &str| {
        ib(&["build"])
            .path_arg(p)
            .cache(&t.path().join(store))
            .oci_out(&layout)
            .json()
            .arg("-q")
    };
    let first = stopped_at(build(&a, "s1"), "output-index");
    let second = build(&b, "s2").spawn();
    // The second build's blobs (its manifest last) reach the layout; then
    // it waits for the layout's index.
    let l = Layout::new(&layout);
    wait_for("the second build's manifest", || {
        l.blob_path(&want_b).is_file()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !matches!(proc_state(second.pid()), Some('Z') | None),
        "the second build waits for the layout's index"
    );
    sigcont(first.pid());
    first.wait().ok();
    second.wait().ok();
    assert_layout_sound(&layout).expect("an index");
    let mut tags = l.tags();
    tags.sort();
    assert_eq!(tags, ["a", "b"], "no lost update");
    assert_eq!(
        skopeo_digest(&format!("oci:{}:b", layout.display())),
        want_b
    );
    assert_eq!(
        skopeo_digest(&format!("oci:{}:a", layout.display())),
        reference_digest(&a)
    );
}

/// Killed when a `type=local` folder is complete but not yet in place:
/// nothing appears beside the destination (the folder was made in the
/// store's temp folder, on the same file system); the next build writes it
/// and leaves the store's temp folder empty.
#[test]
fn killed_while_a_local_output_is_written() {
    let t = tempfile::tempdir().unwrap();
    let proj = project(&t.path().join("proj"), 512, 5, "v1");
    let store = t.path().join("store");
    let parent = t.path().join("out");
    let out = format!("type=local,dest={}", parent.join("fs").display());
    let cmd = || build_to(&proj, &store, &out);
    kill_at(cmd(), "output-local");
    assert_eq!(names(&parent), Vec::<String>::new(), "nothing beside it");
    cmd().run().ok();
    assert_eq!(names(&parent), ["fs"]);
    assert_eq!(tmp_usage(&store), (0, 0));
    assert_eq!(
        fs::read(parent.join("fs/data/blob.bin")).unwrap(),
        fs::read(proj.join("data/blob.bin")).unwrap()
    );
}

//! Cold builds in one pass: a files layer with no earlier build is written
//! while planning, each file read once and hashed as it is copied. The
//! step key and the layer's bytes must be those of the hash-first path,
//! for gzip and zstd, with one thread and several; the build after it
//! reads no file.

mod support;
use serde_json::Value;
use std::path::Path;
use support::*;

/// A tree with many small files in folders, an empty one, files larger
/// than a read-ahead batch, files at and just over the read-ahead size, a
/// setuid file, nested folders, a symlink, hardlinks and a name that is
/// not UTF-8.
fn tree(root: &Path) {
    for d in 0..6 {
        for f in 0..120 {
            write(root, &format!("tree/d{d}/f{f}.txt"), &format!("{d}/{f}\n"));
        }
    }
    write(root, "tree/empty", "");
    let big: Vec<u8> = (0..3_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
    write_file(root, "tree/big.bin", &big, 0o755);
    write_file(root, "tree/d0/medium.bin", &big[..700_000], 0o600);
    // Both sides of the read-ahead size (256 KiB): read ahead, streamed.
    write_file(root, "tree/d2/at-limit.bin", &big[..256 << 10], 0o644);
    write_file(
        root,
        "tree/d2/over-limit.bin",
        &big[..(256 << 10) + 1],
        0o644,
    );
    write_file(root, "tree/d3/setuid", "#!/bin/sh\n", 0o4755);
    // Files of many folders in one read-ahead batch, top to deep.
    for depth in 0..5 {
        let dirs = "n/".repeat(depth);
        write(
            root,
            &format!("tree/{dirs}leaf{depth}"),
            &format!("{depth}\n"),
        );
    }
    symlink(root, "tree/link", "big.bin");
    hardlink(root, "tree/d1/f1.txt", "tree/d1/again.txt");
    hardlink(root, "tree/d2/at-limit.bin", "tree/d0/same.bin");
    {
        use std::os::unix::ffi::OsStrExt;
        let p = root
            .join("tree")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        std::fs::write(p, "latin-1 name\n").unwrap();
    }
    write(
        root,
        "imgbuild.toml",
        r#"
[images.app]
base = "scratch"
tag = "latest"
[[images.app.layers]]
source_folder = "tree"
dst = "/data"
copy_contents_only = true
"#,
    );
}

/// Builds `dir` into a fresh store with `IMGBUILD_ONE_PASS=mode`
/// (`None`: the build chooses); returns the build's JSON, its stderr and
/// the store.
fn build(
    dir: &Path,
    tag: &str,
    mode: Option<&str>,
    extra: &[&str],
) -> (Value, String, std::path::PathBuf) {
    build_in(dir, &dir.join(format!("cache-{tag}")), tag, mode, extra)
}

/// [`build`] with the store `cache`.
fn build_in(
    dir: &Path,
    cache: &Path,
    tag: &str,
    mode: Option<&str>,
    extra: &[&str],
) -> (Value, String, std::path::PathBuf) {
    let mut b = ib(&["build"])
        .path_arg(dir)
        .cache(cache)
        .oci_out(&dir.join(format!("out-{tag}")))
        .json()
        .args(&["--progress", "plain"])
        .args(extra);
    if let Some(m) = mode {
        b = b.env("IMGBUILD_ONE_PASS", m);
    }
    let r = b.run().ok();
    let stderr = r.stderr.clone();
    (r.json(), stderr, cache.to_path_buf())
}

/// The only layer of the build: (digest, diff_id, cache state).
fn layer(v: &Value) -> (String, String, String) {
    let l = &v["images"][0]["platforms"][0]["layers"][0];
    (
        l["digest"].as_str().unwrap().to_string(),
        l["diff_id"].as_str().unwrap().to_string(),
        l["cache"].as_str().unwrap().to_string(),
    )
}

/// The step's key and cache state as `plan` sees them in `cache`.
fn planned(dir: &Path, cache: &Path, extra: &[&str]) -> (String, String) {
    let p = plan_json(dir, cache, extra);
    let s = &plan_steps(&p, "app")[0];
    (
        s["key"].as_str().unwrap().to_string(),
        s["cache"].as_str().unwrap().to_string(),
    )
}

const MARK: &str = "read once while planning";

#[test]
fn one_pass_and_hash_first_give_the_same_key_and_bytes() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    tree(dir);
    for comp in ["gzip", "zstd"] {
        let mut seen: Vec<(String, String, String, String)> = Vec::new();
        for threads in ["1", "4"] {
            for mode in ["0", "1"] {
                let tag = format!("{comp}-{threads}-{mode}");
                let extra = ["--compression", comp, "-j", threads];
                let (v, stderr, cache) = build(dir, &tag, Some(mode), &extra);
                let (digest, diff_id, state) = layer(&v);
                assert_eq!(state, "miss", "{tag}: built, not taken from the store");
                assert_eq!(
                    stderr.contains(MARK),
                    mode == "1",
                    "{tag}: one pass only when chosen\n{stderr}"
                );
                let (key, planned_state) = planned(dir, &cache, &["--compression", comp]);
                assert_eq!(
                    planned_state, "hit",
                    "{tag}: the layer is stored under its key"
                );
                seen.push((tag, key, digest, diff_id));
            }
        }
        let (first_tag, key, digest, diff_id) = seen[0].clone();
        for (tag, k, d, i) in &seen[1..] {
            assert_eq!(k, &key, "step key of {tag} vs {first_tag}");
            assert_eq!(d, &digest, "layer digest of {tag} vs {first_tag}");
            assert_eq!(i, &diff_id, "diff_id of {tag} vs {first_tag}");
        }
        // A plan of a fresh store (hash first, nothing written) agrees.
        let fresh = dir.join(format!("plan-only-{comp}"));
        let (k, state) = planned(dir, &fresh, &["--compression", comp]);
        assert_eq!((k, state.as_str()), (key.clone(), "miss"));
        assert!(
            !fresh.join("blobs").exists()
                || std::fs::read_dir(fresh.join("blobs/sha256")).map_or(0, |d| d.count()) == 0,
            "plan writes no layer"
        );
    }
    // The tree is the tree: the one-pass layer unpacks to the source files.
    let rootfs = umoci_unpack(&dir.join("out-gzip-4-1"), "latest", &dir.join("bundle"));
    let big = std::fs::read(rootfs.join("data/big.bin")).unwrap();
    assert_eq!(big, std::fs::read(dir.join("tree/big.bin")).unwrap());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/d5/f119.txt")).unwrap(),
        "5/119\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("data/link")).unwrap(),
        Path::new("big.bin")
    );
    for f in [
        "d2/at-limit.bin",
        "d2/over-limit.bin",
        "d0/same.bin",
        "n/n/n/n/leaf4",
    ] {
        assert_eq!(
            std::fs::read(rootfs.join("data").join(f)).unwrap(),
            std::fs::read(dir.join("tree").join(f)).unwrap(),
            "{f}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(rootfs.join("data/d3/setuid"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o4755, "setuid kept");
}

#[test]
fn a_cold_build_is_one_pass_and_the_next_build_reads_no_file() {
    require_tool("strace", "strace");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    tree(dir);
    set_tree_mtime(&dir.join("tree"), epoch(1_600_000_000));
    // The stat cache keeps only files whose change time is settled.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (v, stderr, cache) = build(dir, "cold", None, &[]);
    assert!(stderr.contains(MARK), "a first build is one pass\n{stderr}");
    let (digest, _, state) = layer(&v);
    assert_eq!(state, "miss");
    assert_eq!(v["layers_built"], 1, "{v:#}");

    // Again, under strace: a hit, and no file of the tree opened (its
    // folders are read for their listing and metadata).
    let trace = dir.join("trace");
    let r = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(bin())
        .arg("build")
        .arg(dir)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("-o")
        .arg(format!("oci:{}", dir.join("out-cold").display()))
        .args(["--format", "json", "-q"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v2: Value = serde_json::from_slice(&r.stdout).unwrap();
    let (digest2, _, state2) = layer(&v2);
    assert_eq!((digest2, state2.as_str()), (digest, "hit"));
    let tree_dir = dir.join("tree").canonicalize().unwrap();
    let opened: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*tree_dir.to_string_lossy()) && !l.contains("O_DIRECTORY"))
        .map(str::to_string)
        .collect();
    assert!(
        opened.is_empty(),
        "the no-op build opened files of the tree:\n{}",
        opened.join("\n")
    );

    // Files whose metadata changed (a fresh checkout of the same tree)
    // but whose step the last build had: hashed first, as a hit is likely,
    // and a hit it is.
    set_tree_mtime(&dir.join("tree"), epoch(1_700_000_000));
    let (v3, stderr3, _) = build_in(dir, &cache, "touched", None, &[]);
    assert!(!stderr3.contains(MARK), "hash first\n{stderr3}");
    assert_eq!(layer(&v3).0, layer(&v2).0);
    assert_eq!(layer(&v3).2, "hit");
}

//! End-to-end tests of `imgbuild build`/`plan`/`inspect`/`cache prune`: the
//! binary is run on small trees and its images are read back with this
//! crate's own checks and with real clients (skopeo, umoci).

mod support;

use serde_json::Value;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use support::*;
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// The "rich" tree: every kind of file a layer must carry faithfully.
// ---------------------------------------------------------------------------

/// A component of 150 bytes: a path holding it does not fit ustar, even split.
fn long_name() -> String {
    format!("{}.txt", "n".repeat(146))
}

/// A folder path that makes every path below it longer than 256 bytes.
fn deep_dir() -> String {
    format!(
        "deep/{}/{}/{}/{}",
        "a".repeat(70),
        "b".repeat(70),
        "c".repeat(70),
        "d".repeat(40)
    )
}

/// A path between 100 and 256 bytes that ustar can hold with its prefix field.
fn mid_path() -> String {
    format!("mid/{}/{}/f.txt", "m".repeat(60), "k".repeat(60))
}

const UNICODE_FILE: &str = "ünïcødé/日本語-файл.txt";
const BIG_SIZE: usize = 3 * 1024 * 1024 + 12_345;

enum Item {
    File(String, u32, Vec<u8>),
    Dir(String, u32),
    Symlink(String, String),
    /// (existing, new)
    Hardlink(String, String),
}

/// The items of `src/` (copied with `copy_contents_only = false`).
fn rich_src_items() -> Vec<Item> {
    use Item::*;
    let s = |x: &str| x.to_string();
    vec![
        File(s("run.sh"), 0o755, b"#!/bin/sh\necho hello\n".to_vec()),
        File(s("secret.txt"), 0o600, b"only for root\n".to_vec()),
        File(s("readme.txt"), 0o644, b"read me\n".to_vec()),
        File(s("nested/deep/data.csv"), 0o640, b"a,b\n1,2\n".to_vec()),
        Dir(s("nested"), 0o750),
        Dir(s("nested/deep"), 0o700),
        Symlink(s("link-to-readme"), s("readme.txt")),
        Symlink(s("nested/up"), s("../run.sh")),
        File(s("hard-a.txt"), 0o644, b"one inode, two names\n".to_vec()),
        Hardlink(s("hard-a.txt"), s("nested/hard-b.txt")),
        Dir(s("empty"), 0o755),
        File(
            format!("long/{}", long_name()),
            0o644,
            b"a long name\n".to_vec(),
        ),
        Symlink(s("long-link"), format!("long/{}", long_name())),
        File(
            format!("{}/file.txt", deep_dir()),
            0o644,
            b"a very long path\n".to_vec(),
        ),
        Hardlink(format!("{}/file.txt", deep_dir()), s("z-hard-long.txt")),
        File(mid_path(), 0o644, b"a ustar prefix path\n".to_vec()),
        File(s(UNICODE_FILE), 0o644, "non-ASCII ✓\n".as_bytes().to_vec()),
        File(s("big.bin"), 0o644, mixed_bytes(BIG_SIZE, 42)),
        File(s("empty.txt"), 0o644, Vec::new()),
        File(s("suid"), 0o4755, b"#!/bin/sh\n".to_vec()),
    ]
}

const RICH_TOML: &str = r#"[images.rich]
base = "scratch"
tag = "v1"

[[images.rich.layers]]
workdir = "/root"

# copy_contents_only = false with dst "." puts the folder itself under /root.
[[images.rich.layers]]
source_folder = "src"
dst = "."

# copy_contents_only = true: the contents land in /root.
[[images.rich.layers]]
source_folder = "extra"
dst = "."
copy_contents_only = true

[[images.rich.layers]]
source_folder = "owned"
dst = "/srv/owned"
copy_contents_only = true
chown = "1000:1000"

[[images.rich.layers]]
source_file = "tool.sh"
dst = "/usr/local/bin/"
chmod = "0750"

[[images.rich.layers]]
env = { GREETING = "hello world", PATH = "/usr/local/bin:/usr/bin:/bin" }

[[images.rich.layers]]
cmd = ["/usr/local/bin/tool.sh", "--flag"]
"#;

/// Writes the rich context into `ctx`. `reverse` creates everything in the
/// opposite order; `mtime` (when given) is then set on every path.
fn write_rich_context(ctx: &Path, reverse: bool, mtime: Option<SystemTime>) {
    let mut items = rich_src_items();
    if reverse {
        items.reverse();
        // A hard link needs its first name: make those last.
        let (links, rest): (Vec<Item>, Vec<Item>) = items
            .into_iter()
            .partition(|i| matches!(i, Item::Hardlink(..)));
        items = rest.into_iter().chain(links).collect();
    }
    let src = ctx.join("src");
    mkdirs(&src);
    let mut other: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            write(ctx, "extra/extra-file.txt", "from extra\n");
        }),
        Box::new(|| {
            write_file(ctx, "extra/bin/extra.sh", "#!/bin/sh\n", 0o755);
        }),
        Box::new(|| {
            write(ctx, "owned/o.txt", "owned by 1000\n");
        }),
        Box::new(|| {
            write(ctx, "owned/sub/p.txt", "owned too\n");
        }),
        Box::new(|| {
            write_file(ctx, "tool.sh", "#!/bin/sh\necho tool\n", 0o755);
        }),
        Box::new(|| {
            fs::write(ctx.join(DEF), RICH_TOML).unwrap();
        }),
    ];
    if reverse {
        other.reverse();
    }
    for f in &other {
        f();
    }
    // Folders' modes are set after their contents exist.
    let mut dirs = Vec::new();
    for it in items {
        match it {
            Item::File(p, mode, bytes) => {
                write_file(&src, &p, bytes, mode);
            }
            Item::Dir(p, mode) => {
                mkdirs(&src.join(&p));
                dirs.push((p, mode));
            }
            Item::Symlink(p, t) => symlink(&src, &p, &t),
            Item::Hardlink(a, b) => hardlink(&src, &a, &b),
        }
    }
    for (p, mode) in dirs {
        set_mode(&src.join(p), mode);
    }
    if let Some(t) = mtime {
        set_tree_mtime(ctx, t);
    }
}

fn rich_context(reverse: bool, mtime: Option<SystemTime>) -> TempDir {
    let t = TempDir::new().unwrap();
    write_rich_context(t.path(), reverse, mtime);
    t
}

fn layer_digests(v: &Value) -> Vec<String> {
    v["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Reproducibility
// ---------------------------------------------------------------------------

#[test]
fn same_tree_gives_same_digest_whatever_the_folder_order_mtimes_umask_and_jobs() {
    // Folders made in different orders, with different mtimes.
    let b = rich_context(true, None);
    let a = rich_context(false, None);
    // Only in one tree: an extra name for a file, outside the copied folder
    // (so its link count differs), and paths the default ignores leave out.
    hardlink(a.path(), "src/readme.txt", "outside-link.txt");
    write(a.path(), "src/__pycache__/run.cpython-312.pyc", "bytecode");
    write(a.path(), "src/nested/.git/HEAD", "ref: refs/heads/main\n");
    set_tree_mtime(a.path(), epoch(1_000_000_000));
    set_mtime(&a.path().join("src/run.sh"), epoch(1_234_567_890));
    let work = TempDir::new().unwrap();
    for compression in ["gzip", "zstd"] {
        let run = |ctx: &Path, cache: &str, jobs: &str, umask: Option<u32>| -> Value {
            let out = work.path().join(format!("{cache}-{compression}"));
            let mut cmd = ib(&["build"])
                .path_arg(ctx)
                .cache(&work.path().join(cache))
                .oci_out(&out)
                .json()
                .args(&["-q", "-j", jobs, "--compression", compression]);
            if let Some(m) = umask {
                cmd = cmd.umask(m);
            }
            let v = cmd.run().ok().json();
            // Nothing may come from a cache: each side builds every layer.
            assert!(layer_cache_states(&v).iter().all(|c| c == "miss"), "{v:#}");
            Layout::new(&out).verify(0);
            v
        };
        let va = run(a.path(), "cache-a", "1", None);
        let vb = run(b.path(), "cache-b", "4", Some(0o077));
        assert_eq!(
            layer_digests(&va),
            layer_digests(&vb),
            "{compression}: layers differ"
        );
        assert_eq!(
            va["images"][0]["digest"], vb["images"][0]["digest"],
            "{compression}: manifests differ"
        );
        let mt = if compression == "gzip" {
            MT_GZIP
        } else {
            MT_ZSTD
        };
        let layers = va["images"][0]["platforms"][0]["layers"]
            .as_array()
            .unwrap();
        assert_eq!(layers.len(), 4);
        assert!(layers.iter().all(|l| l["media_type"] == mt), "{va:#}");
        // The source layer holds > 3 MiB (several 1 MiB gzip chunks) of
        // partly compressible bytes.
        let size = layers[0]["size"].as_u64().unwrap() as usize;
        assert!(size > BIG_SIZE / 8 && size < BIG_SIZE / 2, "{va:#}");
    }
    // gzip and zstd are different blobs of the same tree.
    let g = read_json(&work.path().join("cache-a-gzip/index.json"));
    let z = read_json(&work.path().join("cache-a-zstd/index.json"));
    assert_ne!(g["manifests"][0]["digest"], z["manifests"][0]["digest"]);
}

#[test]
fn same_definition_built_twice_in_one_tree_is_byte_identical() {
    // The cache must not change bytes: a cold and a warm build, and a cold
    // build in a fresh store, write identical layouts.
    let ctx = rich_context(false, None);
    let work = TempDir::new().unwrap();
    let v1 = build_json(
        ctx.path(),
        &work.path().join("c1"),
        &work.path().join("o1"),
        &[],
    );
    let v2 = build_json(
        ctx.path(),
        &work.path().join("c1"),
        &work.path().join("o2"),
        &[],
    );
    let v3 = build_json(
        ctx.path(),
        &work.path().join("c2"),
        &work.path().join("o3"),
        &["-j", "3"],
    );
    assert_eq!(layer_cache_states(&v2), ["hit"; 4]);
    assert_eq!(v1["images"][0]["digest"], v2["images"][0]["digest"]);
    assert_eq!(v1["images"][0]["digest"], v3["images"][0]["digest"]);
    for o in ["o2", "o3"] {
        assert_eq!(
            list_files(&work.path().join("o1")),
            list_files(&work.path().join(o))
        );
        assert_eq!(
            fs::read(work.path().join("o1/index.json")).unwrap(),
            fs::read(work.path().join(o).join("index.json")).unwrap()
        );
    }
}

// ---------------------------------------------------------------------------
// 2. umoci unpacks what was built
// ---------------------------------------------------------------------------

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn owner_of(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

#[test]
fn umoci_unpacks_files_modes_owners_links_and_config() {
    let ctx = rich_context(false, None);
    let work = TempDir::new().unwrap();
    let out = work.path().join("layout");
    build_json(ctx.path(), &work.path().join("cache"), &out, &[]);
    let rootfs = umoci_unpack(&out, "v1", &work.path().join("bundle"));

    // copy_contents_only = false, dst "." under workdir /root → /root/src/...
    let src = rootfs.join("root/src");
    let expect_modes = [
        ("run.sh", 0o755),
        ("secret.txt", 0o600),
        ("readme.txt", 0o644),
        ("nested", 0o750),
        ("nested/deep", 0o700),
        ("nested/deep/data.csv", 0o640),
        ("empty", 0o755),
        ("suid", 0o4755),
        ("empty.txt", 0o644),
    ];
    for (p, m) in expect_modes {
        assert_eq!(mode_of(&src.join(p)), m, "mode of /root/src/{p}");
        assert_eq!(owner_of(&src.join(p)), (0, 0), "owner of /root/src/{p}");
    }
    assert_eq!(owner_of(&src), (0, 0));
    assert!(fs::read_dir(src.join("empty")).unwrap().next().is_none());
    assert_eq!(
        fs::read_link(src.join("link-to-readme")).unwrap(),
        PathBuf::from("readme.txt")
    );
    assert_eq!(
        fs::read_link(src.join("nested/up")).unwrap(),
        PathBuf::from("../run.sh")
    );
    assert_eq!(
        fs::read_link(src.join("long-link")).unwrap(),
        PathBuf::from(format!("long/{}", long_name()))
    );
    let ino = |p: &str| fs::metadata(src.join(p)).unwrap().ino();
    assert_eq!(
        ino("hard-a.txt"),
        ino("nested/hard-b.txt"),
        "hard link pair"
    );
    let deep = format!("{}/file.txt", deep_dir());
    assert_eq!(
        ino(&deep),
        ino("z-hard-long.txt"),
        "hard link with a long path"
    );
    assert_ne!(ino("hard-a.txt"), ino("readme.txt"));
    for (p, want) in [
        (format!("long/{}", long_name()), &b"a long name\n"[..]),
        (deep.clone(), &b"a very long path\n"[..]),
        (mid_path(), &b"a ustar prefix path\n"[..]),
        (UNICODE_FILE.to_string(), "non-ASCII ✓\n".as_bytes()),
    ] {
        assert_eq!(fs::read(src.join(&p)).unwrap(), want, "{p}");
    }
    assert!(fs::read(src.join("big.bin")).unwrap() == mixed_bytes(BIG_SIZE, 42));
    // copy_contents_only = true: the contents of extra/ are in /root itself.
    assert_eq!(
        fs::read_to_string(rootfs.join("root/extra-file.txt")).unwrap(),
        "from extra\n"
    );
    assert_eq!(mode_of(&rootfs.join("root/bin/extra.sh")), 0o755);
    assert!(!rootfs.join("root/extra").exists());
    // chown.
    for p in ["srv/owned/o.txt", "srv/owned/sub", "srv/owned/sub/p.txt"] {
        assert_eq!(owner_of(&rootfs.join(p)), (1000, 1000), "owner of /{p}");
    }
    // source_file into a folder, with chmod.
    let tool_sh = rootfs.join("usr/local/bin/tool.sh");
    assert_eq!(mode_of(&tool_sh), 0o750);
    assert_eq!(owner_of(&tool_sh), (0, 0));
    // The runtime config umoci derived from the image config.
    let cfg = read_json(&work.path().join("bundle/config.json"));
    let env: Vec<&str> = cfg["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"GREETING=hello world"), "{env:?}");
    assert!(
        env.contains(&"PATH=/usr/local/bin:/usr/bin:/bin"),
        "{env:?}"
    );
    assert_eq!(
        cfg["process"]["args"],
        serde_json::json!(["/usr/local/bin/tool.sh", "--flag"])
    );
    assert_eq!(cfg["process"]["cwd"], "/root");
}

// ---------------------------------------------------------------------------
// 3. skopeo reads every output kind
// ---------------------------------------------------------------------------

fn small_context() -> TempDir {
    let t = TempDir::new().unwrap();
    write(t.path(), "app/main.py", "print('hi')\n");
    write(t.path(), "app/pkg/mod.py", "X = 1\n");
    write_file(
        t.path(),
        "app/bin/start",
        "#!/bin/sh\nexec python main.py\n",
        0o755,
    );
    fs::write(
        t.path().join(DEF),
        r#"[images.app]
base = "scratch"
tag = "v1"

[[images.app.layers]]
source_folder = "app"
dst = "/app"
copy_contents_only = true

[[images.app.layers]]
env = { GREETING = "hello", MODE = "test" }

[[images.app.layers]]
workdir = "/app"

[[images.app.layers]]
entrypoint = ["/app/bin/start"]
"#,
    )
    .unwrap();
    t
}

#[test]
fn skopeo_reads_layout_and_both_archives() {
    require_tool("skopeo", "skopeo");
    let ctx = small_context();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let layout = work.path().join("layout");
    let v = build_json(ctx.path(), &cache, &layout, &[]);
    let digest = v["images"][0]["digest"].as_str().unwrap();
    let layers = layer_digests(&v);
    let diff_ids: Vec<String> = v["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap().to_string())
        .collect();

    let oci_ref = format!("oci:{}:v1", layout.display());
    let i = skopeo_json(&["inspect", &oci_ref]);
    assert_eq!(i["Digest"], digest);
    assert_eq!(i["Layers"], serde_json::json!(layers));
    assert_eq!(i["Os"], "linux");
    let cfg = skopeo_json(&["inspect", "--config", &oci_ref]);
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["GREETING=hello", "MODE=test"])
    );
    assert_eq!(cfg["config"]["WorkingDir"], "/app");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/app/bin/start"])
    );
    assert_eq!(cfg["rootfs"]["diff_ids"], serde_json::json!(diff_ids));

    // oci-archive: the same manifest, inside a tarball.
    let oa = work.path().join("image.oci.tar");
    let va = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .arg("--output")
        .arg(format!("oci-archive:{}", oa.display()))
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    assert_eq!(va["images"][0]["digest"], digest);
    assert_eq!(
        va["images"][0]["output"],
        format!("oci-archive:{}", oa.display())
    );
    let i = skopeo_json(&["inspect", &format!("oci-archive:{}", oa.display())]);
    assert_eq!(i["Digest"], digest);
    assert_eq!(i["Layers"], serde_json::json!(layers));

    // docker-archive: skopeo reports the uncompressed layers.
    let da = work.path().join("image.docker.tar");
    ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .arg("--output")
        .arg(format!("docker-archive:{}", da.display()))
        .arg("-q")
        .run()
        .ok();
    let dref = format!("docker-archive:{}", da.display());
    let i = skopeo_json(&["inspect", &dref]);
    assert_eq!(i["Layers"], serde_json::json!(diff_ids));
    assert_eq!(i["Env"], serde_json::json!(["GREETING=hello", "MODE=test"]));
    let cfg = skopeo_json(&["inspect", "--config", &dref]);
    assert_eq!(cfg["config"]["WorkingDir"], "/app");
    // The docker-archive names the image in manifest.json.
    let mut ar = tar::Archive::new(fs::File::open(&da).unwrap());
    let mut manifest = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap() == Path::new("manifest.json") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(serde_json::from_str::<Value>(&s).unwrap());
        }
    }
    let manifest = manifest.expect("manifest.json in the docker-archive");
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["app:v1"]));

    // skopeo copy to a dir: keeps the manifest and every blob as they are.
    let copy = work.path().join("copy");
    let copy_ref = format!("dir:{}", copy.display());
    tool(
        "skopeo",
        &["--insecure-policy", "copy", "--quiet", &oci_ref, &copy_ref],
    );
    let m = fs::read(copy.join("manifest.json")).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&m)), digest);
    for l in &layers {
        let blob = fs::read(copy.join(hex(l))).unwrap();
        assert_eq!(sha256_hex(&blob), hex(l));
    }
}

// ---------------------------------------------------------------------------
// 4. Layer bytes: digests, diff_ids and canonical tars
// ---------------------------------------------------------------------------

#[test]
fn layers_match_digests_and_diff_ids_and_are_canonical_tars() {
    let ctx = rich_context(false, None);
    let work = TempDir::new().unwrap();
    for compression in ["gzip", "zstd"] {
        let out = work.path().join(compression);
        build_json(
            ctx.path(),
            &work.path().join("cache"),
            &out,
            &["--compression", compression],
        );
        let layout = Layout::new(&out);
        assert_eq!(layout.verify(0), 4);
        let (m, cfg) = layout.image("v1");
        let l0 = layout.layer_entries(&m["layers"][0]);
        let find = |p: &str| {
            l0.iter()
                .find(|e| e.path == p)
                .unwrap_or_else(|| panic!("{p} not in the layer"))
        };
        // The folder itself, its files with their modes, links as links.
        assert_eq!(find("root/src/").kind, tar::EntryType::Directory);
        assert_eq!(find("root/src/run.sh").mode, 0o755);
        assert_eq!(find("root/src/secret.txt").mode, 0o600);
        let sym = find("root/src/link-to-readme");
        assert_eq!(sym.kind, tar::EntryType::Symlink);
        assert_eq!(sym.link.as_deref(), Some("readme.txt"));
        let hard = find("root/src/nested/hard-b.txt");
        assert_eq!(hard.kind, tar::EntryType::Link);
        assert_eq!(hard.link.as_deref(), Some("root/src/hard-a.txt"));
        assert!(hard.data.is_empty());
        // Long paths (PAX) and long link targets come back whole.
        let deep = format!("root/src/{}/file.txt", deep_dir());
        assert!(deep.len() > 256);
        assert_eq!(find(&deep).data, b"a very long path\n");
        let hl = find("root/src/z-hard-long.txt");
        assert_eq!(hl.kind, tar::EntryType::Link);
        assert_eq!(hl.link.as_deref(), Some(deep.as_str()));
        let ll = find("root/src/long-link");
        assert_eq!(
            ll.link.as_deref(),
            Some(format!("long/{}", long_name()).as_str())
        );
        assert_eq!(
            find(&format!("root/src/{}", mid_path())).data,
            b"a ustar prefix path\n"
        );
        assert_eq!(
            find(&format!("root/src/{UNICODE_FILE}")).data,
            "non-ASCII ✓\n".as_bytes()
        );
        assert!(find("root/src/big.bin").data == mixed_bytes(BIG_SIZE, 42));
        // Owners: root everywhere but in the chown'ed layer.
        assert!(l0.iter().all(|e| e.uid == 0 && e.gid == 0));
        let owned = layout.layer_entries(&m["layers"][2]);
        assert!(!owned.is_empty());
        assert!(
            owned.iter().all(|e| e.uid == 1000 && e.gid == 1000),
            "{owned:?}"
        );
        assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
    }
}

#[test]
fn source_date_epoch_sets_every_mtime_and_the_created_time() {
    let ctx = small_context();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let plain = build_json(ctx.path(), &cache, &work.path().join("plain"), &[]);
    let out = work.path().join("sde");
    let v = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .oci_out(&out)
        .json()
        .arg("-q")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .ok()
        .json();
    // A different mtime is a different layer: never served from the cache.
    assert_eq!(layer_cache_states(&v), ["miss"]);
    assert_ne!(plain["images"][0]["digest"], v["images"][0]["digest"]);
    let layout = Layout::new(&out);
    assert_eq!(layout.verify(1_700_000_000), 1);
    let (_, cfg) = layout.image("v1");
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    for h in cfg["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2023-11-14T22:13:20Z");
    }
    // And it is reproducible too.
    let again = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&work.path().join("cache2"))
        .oci_out(&work.path().join("sde2"))
        .json()
        .arg("-q")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .ok()
        .json();
    assert_eq!(again["images"][0]["digest"], v["images"][0]["digest"]);
}

// ---------------------------------------------------------------------------
// 5. Definition errors name file, line, column and field
// ---------------------------------------------------------------------------

/// Writes `toml` as imgbuild.toml in a fresh folder (with a `src/` folder)
/// and runs `imgbuild <cmd> imgbuild.toml --format json` from there.
fn run_def(cmd: &str, toml: &str) -> Run {
    let t = TempDir::new().unwrap();
    write(t.path(), "src/a.txt", "a\n");
    fs::write(t.path().join(DEF), toml).unwrap();
    let mut c = ib(&[cmd, DEF]).cache(&t.path().join("cache")).json();
    if cmd == "build" {
        c = c.args(&["--output", "oci:out", "-q"]);
    }
    c.cwd(t.path()).run()
}

#[track_caller]
fn expect_error(cmd: &str, toml: &str, code: i32, kind: &str, prefix: &str, contains: &str) {
    let r = run_def(cmd, toml);
    assert_eq!(r.code, code, "{toml}\n{r}");
    let v = r.json();
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(v["error"]["exit_code"], code, "{r}");
    assert_eq!(v["error"]["kind"], kind, "{r}");
    assert!(msg.starts_with(prefix), "want prefix {prefix:?}\n{r}");
    assert!(
        msg.contains(contains),
        "want {contains:?} in the message\n{r}"
    );
    assert!(
        r.stderr.contains(&format!("error: {msg}")),
        "stderr names the error too\n{r}"
    );
}

#[test]
fn bad_definitions_name_file_line_and_field() {
    let head = "[images.app]\nbase = \"scratch\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{head}[[images.app.layers]]\nsource_folder = \"src\"\ndts = \"/app\"\n"),
            "imgbuild.toml:5:1: images.app.layers[0].dts: ",
            "unknown field `dts`",
        ),
        (
            format!("{head}tag = 3\n"),
            "imgbuild.toml:3:1: images.app.tag: ",
            "expected a string, found an integer",
        ),
        (
            format!(
                "{head}\n[[images.app.layers]]\nsource_folder = \"src\"\ncopy_contents_only = \"yes\"\n"
            ),
            "imgbuild.toml:6:1: images.app.layers[0].copy_contents_only: ",
            "expected true or false, found a string",
        ),
        (
            format!(
                "{head}[[images.app.layers]]\nsource_folder = \"src\"\nenv = {{ A = \"1\" }}\n"
            ),
            "imgbuild.toml:5:1: images.app.layers[0].env: ",
            "a layer has one kind; found `source_folder` and `env`",
        ),
        (
            format!("{head}platforms = [\"linux/amd64\", \"linux/sparc\"]\n"),
            "imgbuild.toml:3:1: images.app.platforms: ",
            "unknown architecture \"sparc\"",
        ),
        (
            format!("{head}platforms = [\"windows/amd64\"]\n"),
            "imgbuild.toml:3:1: images.app.platforms: ",
            "only linux images",
        ),
        (
            format!("{head}[[images.app.layers]]\nexpose = [8080, 70000]\n"),
            "imgbuild.toml:4:17: images.app.layers[0].expose: ",
            "port \"70000\"",
        ),
        (
            "[images.app]\nbase = = 1\n".to_string(),
            "imgbuild.toml:2:8: ",
            "invalid TOML",
        ),
        (
            "[images.app]\ntag = \"v1\"\n".to_string(),
            "imgbuild.toml:1:1: images.app.base: ",
            "missing `base`",
        ),
    ];
    for (toml, prefix, contains) in &cases {
        for cmd in ["plan", "build"] {
            expect_error(cmd, toml, 2, "definition", prefix, contains);
        }
    }
}

#[test]
fn a_missing_source_names_the_layer_line() {
    let toml = "[images.app]\nbase = \"scratch\"\n\n[[images.app.layers]]\nworkdir = \"/x\"\n\n[[images.app.layers]]\nsource_folder = \"nope\"\ndst = \"/app\"\n";
    for cmd in ["plan", "build"] {
        let r = run_def(cmd, toml);
        let v = r.json();
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("imgbuild.toml:8:1: images.app.layers[1].source_folder: "),
            "{r}"
        );
        assert!(msg.contains("nope") && msg.contains("No such file"), "{r}");
        assert!(matches!(r.code, 2 | 3), "{r}");
        assert_eq!(v["error"]["exit_code"], r.code);
    }
    let toml =
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_file = \"missing.txt\"\n";
    let r = run_def("build", toml);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("imgbuild.toml:4:1: images.app.layers[0].source_file: ")
            && msg.contains("missing.txt"),
        "{r}"
    );
    // No output is written for a failed build.
    assert!(matches!(r.code, 2 | 3), "{r}");
}

#[test]
fn foreign_platform_run_steps_exit_4_and_unreachable_registry_bases_exit_6() {
    // No binfmt_misc handler runs riscv64 programs on the test machines:
    // a RUN step for it is refused with the platform and the step's place,
    // before anything runs.
    let head = "[images.app]\nbase = \"scratch\"\nplatforms = [\"linux/riscv64\"]\n\n[[images.app.layers]]\nsource_folder = \"src\"\n\n";
    let kinds = [
        "[[images.app.layers]]\napt_packages = [\"curl\"]\n",
        "[[images.app.layers]]\ncommands = [\"echo hi\"]\n",
    ];
    for k in kinds {
        let key = k.lines().nth(1).unwrap().split(' ').next().unwrap();
        expect_error(
            "build",
            &format!("{head}{k}"),
            4,
            "unsupported",
            &format!("imgbuild.toml:9:1: images.app.layers[1].{key}: "),
            "running programs for linux/riscv64",
        );
        let r = run_def("plan", &format!("{head}{k}"));
        assert_eq!(r.code, 0, "{r}");
        assert!(
            r.stdout
                .contains("cannot run here: no binfmt_misc handler for linux/riscv64"),
            "{r}"
        );
    }
    // Registry bases are resolved now; with no registry reachable they fail
    // as registry errors that still name the base's line.
    for base in ["localhost:1/org/img:1", "127.0.0.1:1/python:3.12"] {
        expect_error(
            "build",
            &format!("[images.app]\ntag = \"v1\"\nbase = \"{base}\"\n"),
            6,
            "registry",
            "imgbuild.toml:3:1: images.app.base: ",
            "cannot reach the registry",
        );
    }
}

#[test]
fn usage_and_input_errors_have_their_exit_codes() {
    let t = TempDir::new().unwrap();
    let cache = t.path().join("cache");
    // No definition file: an input problem.
    let r = ib(&["build"])
        .path_arg(&t.path().join("nowhere"))
        .cache(&cache)
        .json()
        .run();
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(r.json()["error"]["kind"], "input");
    // A bad output is a usage error.
    let ctx = small_context();
    let r = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .args(&["--output", "registry:example/app"])
        .json()
        .run();
    assert_eq!(r.code, 2, "{r}");
    // An unknown --image too.
    let r = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .args(&["--image", "nope"])
        .json()
        .cwd(t.path())
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no image \"nope\""), "{r}");
    // inspect of something that is not a layout.
    let r = ib(&["inspect", &format!("oci:{}", t.path().display())])
        .json()
        .run();
    assert_eq!(r.code, 3, "{r}");
    // A transport prefix is not a reference: a usage error.
    let r = ib(&["inspect", "docker://example/app:1"]).json().run();
    assert_eq!(r.code, 2, "{r}");
    // An output that cannot be written is an I/O failure.
    let r = ib(&["build", "--output", "oci:/dev/null/layout"])
        .path_arg(ctx.path())
        .cache(&cache)
        .json()
        .run();
    assert_eq!(r.code, 5, "{r}");
    assert_eq!(r.json()["error"]["kind"], "io");
    // Several images into one archive need {image}.
    let two = TempDir::new().unwrap();
    fs::write(
        two.path().join(DEF),
        "[images.a]\nbase = \"scratch\"\n[images.b]\nbase = \"scratch\"\n",
    )
    .unwrap();
    let archive = two.path().join("one.tar");
    let r = ib(&["build", "--output"])
        .arg(format!("oci-archive:{}", archive.display()))
        .path_arg(two.path())
        .cache(&cache)
        .json()
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("{image}"), "{r}");
    assert!(!archive.exists());
    let r = ib(&["build", "-q", "--output"])
        .arg(format!(
            "oci-archive:{}/{{image}}.tar",
            two.path().display()
        ))
        .path_arg(two.path())
        .cache(&cache)
        .run()
        .ok();
    assert!(
        two.path().join("a.tar").is_file() && two.path().join("b.tar").is_file(),
        "{r}"
    );
    // `cache dir` names the store.
    let out = ib(&["cache", "dir"]).cache(&cache).run().ok().stdout;
    assert_eq!(out.trim(), cache.to_str().unwrap());
    let out = ib(&["cache", "dir"])
        .env("IMGBUILD_CACHE_DIR", "/somewhere/else")
        .run()
        .ok()
        .stdout;
    assert_eq!(out.trim(), "/somewhere/else");
}

// ---------------------------------------------------------------------------
// 6. Concurrent builds sharing one store
// ---------------------------------------------------------------------------

fn tree_with(t: &Path, name: &str, seed: u64) {
    for i in 0..40 {
        write(
            t,
            &format!("src/d{}/f{i}.txt", i % 5),
            &format!("{name} {i}\n"),
        );
    }
    write_file(t, "src/blob.bin", mixed_bytes(2 << 20, seed), 0o644);
    write(t, "shared/common.txt", "the same in every tree\n");
    fs::write(
        t.join(DEF),
        format!(
            "[images.{name}]\nbase = \"scratch\"\n\n[[images.{name}.layers]]\nsource_folder = \"shared\"\ndst = \"/shared\"\ncopy_contents_only = true\n\n[[images.{name}.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\ncopy_contents_only = true\n"
        ),
    )
    .unwrap();
}

#[test]
fn concurrent_builds_share_one_store() {
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    tree_with(a.path(), "alpha", 1);
    tree_with(b.path(), "beta", 2);
    let start = |ctx: &Path, out: &str| {
        ib(&["build"])
            .path_arg(ctx)
            .cache(&cache)
            .oci_out(&work.path().join(out))
            .json()
            .args(&["-q", "-j", "2"])
            .spawn()
    };
    let pa = start(a.path(), "a");
    let pb = start(b.path(), "b");
    let (ra, rb) = (pa.wait().ok(), pb.wait().ok());
    let (va, vb) = (ra.json(), rb.json());
    for (v, out) in [(&va, "a"), (&vb, "b")] {
        assert_eq!(Layout::new(&work.path().join(out)).verify(0), 2);
        assert_eq!(layer_cache_states(v).len(), 2);
    }
    // The shared folder is the same layer in both.
    assert_eq!(layer_digests(&va)[0], layer_digests(&vb)[0]);
    // A third build of each is served from the store.
    for (ctx, out) in [(a.path(), "a3"), (b.path(), "b3")] {
        let v = build_json(ctx, &cache, &work.path().join(out), &[]);
        assert_eq!(layer_cache_states(&v), ["hit", "hit"], "{v:#}");
        assert_eq!(v["layers_built"], 0);
    }
    assert_eq!(
        read_json(&work.path().join("a3/index.json")),
        read_json(&work.path().join("a/index.json"))
    );
    let leftovers = list_files(&cache.join("tmp"));
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    // Two builds of the same tree into the same output, at once, in a cold store.
    let cold = work.path().join("cold");
    let same = |_: usize| {
        ib(&["build"])
            .path_arg(a.path())
            .cache(&cold)
            .oci_out(&work.path().join("same"))
            .json()
            .arg("-q")
            .spawn()
    };
    let runs: Vec<Running> = (0..2).map(same).collect();
    let results: Vec<Value> = runs.into_iter().map(|r| r.wait().ok().json()).collect();
    assert_eq!(
        results[0]["images"][0]["digest"],
        results[1]["images"][0]["digest"]
    );
    assert_eq!(results[0]["images"][0]["digest"], va["images"][0]["digest"]);
    let same_layout = Layout::new(&work.path().join("same"));
    assert_eq!(same_layout.verify(0), 2);
    assert_eq!(same_layout.tags(), ["latest"]);
    let leftovers = list_files(&cold.join("tmp"));
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let stray: Vec<String> = list_files(&work.path().join("same"))
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "temp files left in the layout: {stray:?}");
}

// ---------------------------------------------------------------------------
// 7. The cache, and `plan` explaining misses
// ---------------------------------------------------------------------------

fn cache_context() -> TempDir {
    let t = TempDir::new().unwrap();
    write(t.path(), "src/keep.txt", "unchanged\n");
    write(t.path(), "src/change.txt", "before\n");
    write(t.path(), "src/remove.txt", "going away\n");
    write(t.path(), "other/o.txt", "other layer\n");
    t
}

fn cache_toml(dst: &str) -> String {
    format!(
        "[images.app]\nbase = \"scratch\"\n\n[[images.app.layers]]\nsource_folder = \"src\"\ndst = \"{dst}\"\ncopy_contents_only = true\n\n[[images.app.layers]]\nsource_folder = \"other\"\ndst = \"/other\"\ncopy_contents_only = true\n"
    )
}

#[track_caller]
fn one_miss(plan: &Value) -> (Vec<String>, Vec<String>) {
    let steps = plan_steps(plan, "app");
    let states: Vec<&str> = steps.iter().map(|s| s["cache"].as_str().unwrap()).collect();
    assert_eq!(states, ["miss", "hit"], "{plan:#}");
    assert!(steps[1]["why"].as_array().unwrap().is_empty());
    let why = steps[0]["why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let notes = steps[0]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    (why, notes)
}

#[test]
fn rebuilds_are_cached_and_plan_says_why_a_step_misses() {
    let ctx = cache_context();
    let c = ctx.path();
    fs::write(c.join(DEF), cache_toml("/app")).unwrap();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let out = work.path().join("out");

    // A first plan knows nothing yet.
    let p = plan_json(c, &cache, &[]);
    let steps = plan_steps(&p, "app");
    assert!(steps.iter().all(|s| s["cache"] == "miss"), "{p:#}");
    assert!(
        steps[0]["why"][0].as_str().unwrap().contains("first build"),
        "{p:#}"
    );
    assert_eq!(steps[0]["files"], 3);
    assert_eq!(
        steps[0]["bytes"],
        "unchanged\n".len() + "before\n".len() + "going away\n".len()
    );

    let v1 = build_json(c, &cache, &out, &[]);
    assert_eq!(layer_cache_states(&v1), ["miss", "miss"]);
    assert_eq!(v1["layers_built"], 2);
    let v2 = build_json(c, &cache, &out, &[]);
    assert_eq!(layer_cache_states(&v2), ["hit", "hit"]);
    assert_eq!(v2["layers_built"], 0);
    assert_eq!(v2["bytes_compressed"], 0);
    assert_eq!(v1["images"][0]["digest"], v2["images"][0]["digest"]);
    let p = plan_json(c, &cache, &[]);
    assert!(
        plan_steps(&p, "app").iter().all(|s| s["cache"] == "hit"),
        "{p:#}"
    );

    // Modify one file.
    write(c, "src/change.txt", "after!\n");
    let (why, _) = one_miss(&plan_json(c, &cache, &[]));
    assert!(
        why.iter()
            .any(|w| w.contains("changed") && w.contains("app/change.txt")),
        "{why:?}"
    );
    assert!(!why.iter().any(|w| w.contains("keep.txt")), "{why:?}");
    let v3 = build_json(c, &cache, &out, &[]);
    assert_eq!(layer_cache_states(&v3), ["miss", "hit"]);
    assert_eq!(v3["layers_built"], 1);
    assert_ne!(v3["images"][0]["digest"], v2["images"][0]["digest"]);

    // Add one.
    write(c, "src/added.txt", "new\n");
    let (why, _) = one_miss(&plan_json(c, &cache, &[]));
    assert!(
        why.iter()
            .any(|w| w.contains("added") && w.contains("app/added.txt")),
        "{why:?}"
    );
    build_json(c, &cache, &out, &[]);

    // Remove one.
    fs::remove_file(c.join("src/remove.txt")).unwrap();
    let (why, _) = one_miss(&plan_json(c, &cache, &[]));
    assert!(
        why.iter()
            .any(|w| w.contains("removed") && w.contains("app/remove.txt")),
        "{why:?}"
    );
    build_json(c, &cache, &out, &[]);

    // A mode change alone is a change.
    set_mode(&c.join("src/keep.txt"), 0o600);
    let (why, _) = one_miss(&plan_json(c, &cache, &[]));
    assert!(
        why.iter()
            .any(|w| w.contains("changed") && w.contains("app/keep.txt")),
        "{why:?}"
    );
    build_json(c, &cache, &out, &[]);

    // A different destination is an option change.
    fs::write(c.join(DEF), cache_toml("/srv")).unwrap();
    let (why, _) = one_miss(&plan_json(c, &cache, &[]));
    assert!(
        why.iter()
            .any(|w| w.contains("option dst changed") && w.contains("/app") && w.contains("/srv")),
        "{why:?}"
    );
    // So is another compression (for every layer).
    let p = plan_json(c, &cache, &["--compression", "zstd"]);
    for step in plan_steps(&p, "app") {
        assert_eq!(step["cache"], "miss", "{p:#}");
        assert!(
            step["why"]
                .to_string()
                .contains("option compression changed: gzip → zstd"),
            "{p:#}"
        );
    }
    // Going back is served from the store again.
    fs::write(c.join(DEF), cache_toml("/app")).unwrap();
    let p = plan_json(c, &cache, &[]);
    assert!(
        plan_steps(&p, "app").iter().all(|s| s["cache"] == "hit"),
        "{p:#}"
    );
    // mtime alone changes nothing.
    set_tree_mtime(c, epoch(2_000_000_000));
    let v = build_json(c, &cache, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["hit", "hit"]);
}

#[test]
fn config_only_changes_rebuild_no_layer() {
    let ctx = cache_context();
    let c = ctx.path();
    let with_env = |v: &str| {
        fs::write(
            c.join(DEF),
            format!(
                "{}\n[[images.app.layers]]\nenv = {{ V = \"{v}\" }}\n",
                cache_toml("/app")
            ),
        )
        .unwrap();
    };
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    with_env("1");
    let v1 = build_json(c, &cache, &work.path().join("o1"), &[]);
    with_env("2");
    let v2 = build_json(c, &cache, &work.path().join("o2"), &[]);
    assert_eq!(layer_cache_states(&v2), ["hit", "hit"]);
    assert_eq!(layer_digests(&v1), layer_digests(&v2));
    assert_ne!(v1["images"][0]["digest"], v2["images"][0]["digest"]);
    let (_, cfg) = Layout::new(&work.path().join("o2")).image("latest");
    assert_eq!(cfg["config"]["Env"], serde_json::json!(["V=2"]));
}

// ---------------------------------------------------------------------------
// 8. Ignore rules
// ---------------------------------------------------------------------------

fn ignore_context() -> TempDir {
    let t = TempDir::new().unwrap();
    let c = t.path();
    for p in [
        "x.log",
        "keep.log",
        "sub/x.log",
        "sub/keep.log",
        "docs/a/b.md",
        "docs/top.md",
        "docs/a/b.txt",
        "main.py",
        ".git/config",
        ".git/objects/ab/cdef",
        "__pycache__/main.cpython-312.pyc",
        "pkg/__pycache__/m.cpython-312.pyc",
        "pkg/m.py",
        "pkg/stale.pyc",
        ".venv/bin/python",
    ] {
        write(c, p, p);
    }
    fs::write(
        c.join(DEF),
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_folder = \".\"\ndst = \"/ctx\"\ncopy_contents_only = true\n",
    )
    .unwrap();
    t
}

fn paths_of(layout: &Path) -> Vec<String> {
    Layout::new(layout)
        .layer_paths("latest")
        .remove(0)
        .into_iter()
        .map(|p| p.strip_prefix("ctx/").expect("under /ctx").to_string())
        .collect()
}

#[test]
fn dockerignore_rules_are_anchored_at_the_context_root() {
    let ctx = ignore_context();
    let c = ctx.path();
    write(c, "private/a.txt", "private");
    write(c, "private/public.txt", "public");
    fs::write(
        c.join(".dockerignore"),
        "# comment\n*.log\n!keep.log\ndocs/**/*.md\n\nprivate\n!private/public.txt\n",
    )
    .unwrap();
    let work = TempDir::new().unwrap();
    let p = plan_json(c, &work.path().join("cache"), &[]);
    let notes = plan_steps(&p, "app")[0]["notes"].to_string();
    assert!(notes.contains(".dockerignore (5 patterns)"), "{notes}");
    build_json(c, &work.path().join("cache"), &work.path().join("out"), &[]);
    let paths = paths_of(&work.path().join("out"));
    let has = |p: &str| paths.iter().any(|x| x == p);
    assert!(!has("x.log"), "{paths:?}");
    assert!(has("keep.log"), "{paths:?}");
    assert!(has("sub/x.log"), "root-anchored: {paths:?}");
    assert!(has("sub/keep.log"), "{paths:?}");
    assert!(!has("docs/a/b.md"), "{paths:?}");
    assert!(!has("docs/top.md"), "** spans zero folders: {paths:?}");
    assert!(has("docs/a/b.txt"), "{paths:?}");
    // With a .dockerignore the built-in defaults are not applied.
    assert!(has(".git/config"), "{paths:?}");
    assert!(has("pkg/__pycache__/m.cpython-312.pyc"), "{paths:?}");
    assert!(has(".dockerignore"), "{paths:?}");
    // A file re-included below an excluded folder keeps that folder.
    assert!(has("private/public.txt"), "{paths:?}");
    assert!(has("private/"), "{paths:?}");
    assert!(!has("private/a.txt"), "{paths:?}");
}

#[test]
fn default_ignores_apply_without_a_dockerignore() {
    let ctx = ignore_context();
    let c = ctx.path();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let p = plan_json(c, &cache, &[]);
    let notes = plan_steps(&p, "app")[0]["notes"].to_string();
    assert!(notes.contains("built-in defaults"), "{notes}");
    assert!(notes.contains("left out by the ignore rules"), "{notes}");
    build_json(c, &cache, &work.path().join("out"), &[]);
    let paths = paths_of(&work.path().join("out"));
    for gone in [
        ".git/",
        ".git/config",
        "__pycache__/",
        "pkg/__pycache__/m.cpython-312.pyc",
        "pkg/stale.pyc",
        ".venv/bin/python",
    ] {
        assert!(!paths.iter().any(|x| x == gone), "{gone} kept: {paths:?}");
    }
    for kept in ["x.log", "sub/x.log", "docs/a/b.md", "pkg/m.py", "main.py"] {
        assert!(paths.iter().any(|x| x == kept), "{kept} missing: {paths:?}");
    }
    // --no-default-ignore keeps them.
    let p = plan_json(c, &cache, &["--no-default-ignore"]);
    let notes = plan_steps(&p, "app")[0]["notes"].to_string();
    assert!(notes.contains("--no-default-ignore"), "{notes}");
    build_json(
        c,
        &cache,
        &work.path().join("all"),
        &["--no-default-ignore"],
    );
    let paths = paths_of(&work.path().join("all"));
    for kept in [
        ".git/config",
        ".git/objects/ab/cdef",
        "pkg/__pycache__/m.cpython-312.pyc",
        "pkg/stale.pyc",
        ".venv/bin/python",
    ] {
        assert!(paths.iter().any(|x| x == kept), "{kept} missing: {paths:?}");
    }
}

#[test]
fn likely_secrets_are_warned_about() {
    let ctx = small_context();
    write(ctx.path(), "app/.env", "TOKEN=abc\n");
    write(ctx.path(), "app/.env.example", "TOKEN=\n");
    let work = TempDir::new().unwrap();
    let v = build_json(
        ctx.path(),
        &work.path().join("cache"),
        &work.path().join("o"),
        &[],
    );
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    let w = w[0].as_str().unwrap();
    assert!(w.contains("app/.env") && w.contains("[app]"), "{w}");
    // Still warned about when the layer comes from the cache.
    let v = build_json(
        ctx.path(),
        &work.path().join("cache"),
        &work.path().join("o"),
        &[],
    );
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v:#}");
    // Also on stderr, for people.
    let r = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&work.path().join("cache"))
        .oci_out(&work.path().join("o"))
        .run()
        .ok();
    assert!(
        r.stderr.contains("warning: likely secret") && r.stderr.contains("app/.env"),
        "{r}"
    );
    // Not once it is ignored.
    fs::write(ctx.path().join(".dockerignore"), "**/.env\n").unwrap();
    let v = build_json(
        ctx.path(),
        &work.path().join("cache"),
        &work.path().join("o"),
        &[],
    );
    assert_eq!(v["warnings"], serde_json::json!([]), "{v:#}");
}

// ---------------------------------------------------------------------------
// 9. Several platforms
// ---------------------------------------------------------------------------

#[test]
fn several_platforms_make_an_index_sharing_file_layers() {
    require_tool("skopeo", "skopeo");
    let ctx = small_context();
    let toml = fs::read_to_string(ctx.path().join(DEF)).unwrap().replace(
        "tag = \"v1\"",
        "tag = \"v1\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]",
    );
    fs::write(ctx.path().join(DEF), toml).unwrap();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let out = work.path().join("out");
    let v = build_json(ctx.path(), &cache, &out, &[]);
    let img = &v["images"][0];
    assert_eq!(img["media_type"], MT_INDEX);
    let plats = img["platforms"].as_array().unwrap();
    assert_eq!(plats.len(), 2);
    assert_eq!(plats[0]["platform"], "linux/amd64");
    assert_eq!(plats[1]["platform"], "linux/arm64");
    assert_eq!(plats[0]["layers"], plats[1]["layers"]);
    assert_ne!(plats[0]["config_digest"], plats[1]["config_digest"]);
    assert_eq!(v["layers_built"], 1);
    let layout = Layout::new(&out);
    assert_eq!(layout.verify(0), 2);

    let oci_ref = format!("oci:{}:v1", out.display());
    let raw = skopeo_json(&["inspect", "--raw", &oci_ref]);
    assert_eq!(raw["mediaType"], MT_INDEX);
    let ms = raw["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    let archs: Vec<&str> = ms
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for (m, p) in ms.iter().zip(plats) {
        assert_eq!(m["digest"], p["manifest_digest"]);
        assert_eq!(m["platform"]["os"], "linux");
    }
    let arm = skopeo_json(&["--override-arch", "arm64", "inspect", &oci_ref]);
    assert_eq!(arm["Architecture"], "arm64");
    // skopeo reports the digest of what the reference names: the index.
    assert_eq!(arm["Digest"], img["digest"]);
    assert_eq!(arm["Layers"], serde_json::json!(layer_digests(&v)));
    let cfg = skopeo_json(&["--override-arch", "arm64", "inspect", "--config", &oci_ref]);
    assert_eq!(cfg["architecture"], "arm64");

    // One oci-archive holds the index; a docker-archive cannot.
    let oa = work.path().join("multi.tar");
    ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .arg("--output")
        .arg(format!("oci-archive:{}", oa.display()))
        .arg("-q")
        .run()
        .ok();
    let raw = skopeo_json(&["inspect", "--raw", &format!("oci-archive:{}", oa.display())]);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let r = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .arg("--output")
        .arg(format!(
            "docker-archive:{}",
            work.path().join("d.tar").display()
        ))
        .json()
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("one platform"), "{r}");

    // `inspect` lists both.
    let i = ib(&["inspect", &oci_ref, "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(i["media_type"], MT_INDEX);
    assert_eq!(i["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(i["manifests"][1]["platform"], "linux/arm64");
}

// ---------------------------------------------------------------------------
// 10. Bases
// ---------------------------------------------------------------------------

#[test]
fn an_image_of_the_file_as_base_comes_first() {
    let t = TempDir::new().unwrap();
    let c = t.path();
    write(c, "base/lib.txt", "library\n");
    write(c, "app/main.txt", "application\n");
    fs::write(
        c.join(DEF),
        r#"[images.base]
base = "scratch"
tag = "1"
[[images.base.layers]]
source_folder = "base"
dst = "/opt/lib"
copy_contents_only = true
[[images.base.layers]]
env = { LIB = "yes", PATH = "/opt/lib" }
[[images.base.layers]]
workdir = "/opt"

[images.app]
base = "base"
tag = "2"
[[images.app.layers]]
env = { PATH = "/app:$PATH" }
[[images.app.layers]]
source_folder = "app"
dst = "app"
copy_contents_only = true
"#,
    )
    .unwrap();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let out = work.path().join("out");
    let v = ib(&["build"])
        .path_arg(c)
        .cache(&cache)
        .arg("--output")
        .arg(format!("oci:{}/{{image}}", out.display()))
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    let imgs = v["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(imgs[0]["name"], "base");
    assert_eq!(imgs[1]["name"], "app");
    let base_layers = imgs[0]["platforms"][0]["layers"].as_array().unwrap();
    let app_layers = imgs[1]["platforms"][0]["layers"].as_array().unwrap();
    assert_eq!(app_layers.len(), 2);
    assert_eq!(app_layers[0]["digest"], base_layers[0]["digest"]);
    assert_eq!(app_layers[0]["cache"], "base");
    assert_eq!(app_layers[1]["cache"], "miss");
    let app = Layout::new(&out.join("app"));
    app.verify(0);
    assert_eq!(
        app.layer_paths("2"),
        [vec!["opt/lib/lib.txt"], vec!["opt/app/main.txt"]]
    );
    let (m, cfg) = app.image("2");
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["LIB=yes", "PATH=/app:/opt/lib"])
    );
    assert_eq!(cfg["config"]["WorkingDir"], "/opt");
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.digest"],
        imgs[0]["digest"]
    );
    // `--image app` builds its base as well, from the store.
    let v = ib(&["build"])
        .path_arg(c)
        .cache(&cache)
        .arg("--output")
        .arg(format!(
            "oci:{}/{{image}}",
            work.path().join("again").display()
        ))
        .args(&["--image", "app"])
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    assert_eq!(v["images"][1]["digest"], imgs[1]["digest"], "{v:#}");
    assert_eq!(v["layers_built"], 0);
    // A base must be built for every platform of the images on it.
    let toml = fs::read_to_string(c.join(DEF)).unwrap().replace(
        "base = \"base\"\n",
        "base = \"base\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
    );
    fs::write(c.join(DEF), toml).unwrap();
    let r = ib(&["plan"]).path_arg(c).cache(&cache).json().run();
    assert_eq!(r.code, 2, "{r}");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("images.app.base") && msg.contains("is not built for"),
        "{msg}"
    );
}

#[test]
fn a_layout_built_earlier_can_be_a_base() {
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    // First build: the base image, into <work>/layouts/base.
    let ctx = small_context();
    let base_out = work.path().join("layouts/base");
    let vb = build_json(ctx.path(), &cache, &base_out, &[]);
    // Second definition, in another folder, naming it relatively.
    let app = work.path().join("appctx");
    write(&app, "more/extra.txt", "extra\n");
    fs::write(
        app.join(DEF),
        r#"[images.derived]
base = "oci:../layouts/base:v1"
tag = "d1"
[[images.derived.layers]]
source_folder = "more"
dst = "extra"
copy_contents_only = true
[[images.derived.layers]]
env = { MODE = "derived" }
"#,
    )
    .unwrap();
    let out = work.path().join("derived");
    let v = build_json(&app, &cache, &out, &[]);
    let layers = v["images"][0]["platforms"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0]["digest"],
        vb["images"][0]["platforms"][0]["layers"][0]["digest"]
    );
    assert_eq!(layers[0]["cache"], "base");
    assert_eq!(layers[1]["cache"], "miss");
    let layout = Layout::new(&out);
    assert_eq!(layout.verify(0), 2);
    // Relative destinations resolve against the base's workdir.
    assert_eq!(layout.layer_paths("d1")[1], ["app/extra/extra.txt"]);
    let (m, cfg) = layout.image("d1");
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["GREETING=hello", "MODE=derived"])
    );
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/app/bin/start"])
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.digest"],
        vb["images"][0]["digest"]
    );
    let (_, base_cfg) = Layout::new(&base_out).image("v1");
    assert_eq!(
        cfg["rootfs"]["diff_ids"][0],
        base_cfg["rootfs"]["diff_ids"][0]
    );

    // `inspect` reads the result, as text and as JSON.
    let r = format!("oci:{}:d1", out.display());
    let i = ib(&["inspect", &r, "--format", "json"]).run().ok().json();
    assert_eq!(i["digest"], v["images"][0]["digest"]);
    assert_eq!(i["media_type"], MT_MANIFEST);
    assert_eq!(i["manifests"][0]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        i["manifests"][0]["config"]["config"]["Env"],
        cfg["config"]["Env"]
    );
    let text = ib(&["inspect", &r]).run().ok().stdout;
    assert!(
        text.contains(v["images"][0]["digest"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("MODE=derived"), "{text}");
    // Without a tag, the only image of the layout.
    let i2 = ib(&[
        "inspect",
        &format!("oci:{}", out.display()),
        "--format",
        "json",
    ])
    .run()
    .ok()
    .json();
    assert_eq!(i2["digest"], i["digest"]);

    // A base tag that does not exist names the base line.
    fs::write(
        app.join(DEF),
        "[images.derived]\ntag = \"d1\"\nbase = \"oci:../layouts/base:nope\"\n",
    )
    .unwrap();
    let r = ib(&["build"]).path_arg(&app).cache(&cache).json().run();
    assert!(matches!(r.code, 2 | 3), "{r}");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("imgbuild.toml:3:1: images.derived.base") && msg.contains("nope"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------
// 11. A JSON definition on standard input
// ---------------------------------------------------------------------------

#[test]
fn json_definition_on_stdin_builds_the_same_image_as_toml() {
    let ctx = small_context();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let from_toml = build_json(ctx.path(), &cache, &work.path().join("toml"), &[]);
    let json = serde_json::json!({
        "images": {"app": {
            "base": "scratch",
            "tag": "v1",
            "layers": [
                {"source_folder": "app", "dst": "/app", "copy_contents_only": true},
                {"env": {"GREETING": "hello", "MODE": "test"}},
                {"workdir": "/app"},
                {"entrypoint": ["/app/bin/start"]}
            ]
        }}
    })
    .to_string();
    // From another folder, with a cold store: nothing is shared but the tree.
    let elsewhere = TempDir::new().unwrap();
    let out = work.path().join("json");
    let v = ib(&["build", "--definition", "-", "--context"])
        .path_arg(ctx.path())
        .cache(&work.path().join("cache2"))
        .oci_out(&out)
        .json()
        .arg("-q")
        .cwd(elsewhere.path())
        .stdin(json.clone())
        .run()
        .ok()
        .json();
    assert_eq!(v["images"][0]["digest"], from_toml["images"][0]["digest"]);
    assert_eq!(layer_cache_states(&v), ["miss"]);
    // The same JSON as a file next to the tree.
    let jf = ctx.path().join("def.json");
    fs::write(&jf, &json).unwrap();
    let v = ib(&["build", "--definition"])
        .path_arg(&jf)
        .cache(&cache)
        .oci_out(&work.path().join("jsonfile"))
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    assert_eq!(v["images"][0]["digest"], from_toml["images"][0]["digest"]);
    // Errors in JSON name the field.
    let bad = r#"{"images": {"app": {"base": "scratch", "layers": [{"source_folder": 3}]}}}"#;
    let r = ib(&["build", "--definition", "-", "--context"])
        .path_arg(ctx.path())
        .cache(&cache)
        .json()
        .stdin(bad)
        .run();
    assert_eq!(r.code, 2, "{r}");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("images.app.layers[0].source_folder"), "{msg}");
    assert!(msg.contains("<stdin>"), "{msg}");
}

// ---------------------------------------------------------------------------
// 12. Profiles
// ---------------------------------------------------------------------------

#[test]
fn profiles_override_platforms_tag_and_env() {
    let ctx = small_context();
    let mut toml = fs::read_to_string(ctx.path().join(DEF)).unwrap();
    toml.push_str(
        r#"
[images.app.profiles.prod]
platforms = ["linux/arm64"]
tag = "prod"
name = "team/app-prod"
env = { STAGE = "prod" }
[[images.app.profiles.prod.layers]]
labels = { stage = "prod" }

[images.app.profiles.dev]
env = { STAGE = "dev", DEBUG = "1" }
"#,
    );
    fs::write(ctx.path().join(DEF), toml).unwrap();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let plain = build_json(ctx.path(), &cache, &work.path().join("plain"), &[]);
    let prod = build_json(
        ctx.path(),
        &cache,
        &work.path().join("prod"),
        &["--profile", "prod"],
    );
    let img = &prod["images"][0];
    assert_eq!(img["tag"], "prod");
    assert_eq!(img["reference"], "team/app-prod:prod");
    assert_eq!(img["platforms"][0]["platform"], "linux/arm64");
    assert_eq!(img["platforms"].as_array().unwrap().len(), 1);
    // Same files: the layer is shared with the plain build.
    assert_eq!(layer_digests(&prod), layer_digests(&plain));
    assert_eq!(layer_cache_states(&prod), ["hit"]);
    let (_, cfg) = Layout::new(&work.path().join("prod")).image("prod");
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["GREETING=hello", "MODE=test", "STAGE=prod"])
    );
    assert_eq!(
        cfg["config"]["Labels"],
        serde_json::json!({"stage": "prod"})
    );
    let dev = build_json(
        ctx.path(),
        &cache,
        &work.path().join("dev"),
        &["--profile", "dev"],
    );
    assert_eq!(dev["images"][0]["tag"], "v1");
    assert_eq!(dev["images"][0]["reference"], "app:v1");
    let (_, cfg) = Layout::new(&work.path().join("dev")).image("v1");
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["GREETING=hello", "MODE=test", "STAGE=dev", "DEBUG=1"])
    );
    let (_, plain_cfg) = Layout::new(&work.path().join("plain")).image("v1");
    assert_eq!(
        plain_cfg["config"]["Env"],
        serde_json::json!(["GREETING=hello", "MODE=test"])
    );
    // The plan shows the profile too.
    let p = plan_json(ctx.path(), &cache, &["--profile", "prod"]);
    assert_eq!(
        p["images"][0]["platforms"],
        serde_json::json!(["linux/arm64"])
    );
    // An unknown profile is a usage error.
    let r = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cache)
        .args(&["--profile", "staging"])
        .oci_out(&work.path().join("x"))
        .json()
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("staging"), "{r}");
    assert!(!work.path().join("x").exists());
}

// ---------------------------------------------------------------------------
// 13. Prune
// ---------------------------------------------------------------------------

#[test]
fn prune_empties_the_store_and_a_rebuild_still_works() {
    let ctx = small_context();
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let v1 = build_json(ctx.path(), &cache, &work.path().join("o1"), &[]);
    assert!(!list_files(&cache.join("blobs/sha256")).is_empty());
    let r = ib(&["cache", "prune", "--older-than", "0", "--format", "json"])
        .cache(&cache)
        .run()
        .ok()
        .json();
    assert!(r["blobs_removed"].as_u64().unwrap() >= 3, "{r}");
    assert!(r["steps_removed"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["bytes_freed"].as_u64().unwrap() > 0, "{r}");
    assert!(list_files(&cache.join("blobs/sha256")).is_empty());
    assert!(list_files(&cache.join("steps")).is_empty());
    // The layouts written before keep their own copies.
    Layout::new(&work.path().join("o1")).verify(0);
    let p = plan_json(ctx.path(), &cache, &[]);
    assert_eq!(plan_steps(&p, "app")[0]["cache"], "miss");
    let v2 = build_json(ctx.path(), &cache, &work.path().join("o2"), &[]);
    assert_eq!(layer_cache_states(&v2), ["miss"]);
    assert_eq!(v2["layers_built"], 1);
    assert_eq!(v1["images"][0]["digest"], v2["images"][0]["digest"]);
    Layout::new(&work.path().join("o2")).verify(0);
    // A prune that keeps recent entries keeps the cache working.
    ib(&["cache", "prune", "--older-than", "7d"])
        .cache(&cache)
        .run()
        .ok();
    let v3 = build_json(ctx.path(), &cache, &work.path().join("o3"), &[]);
    assert_eq!(layer_cache_states(&v3), ["hit"]);
    let r = ib(&["cache", "prune", "--older-than", "soon"])
        .cache(&cache)
        .run();
    assert_eq!(r.code, 2, "{r}");
    // Days past 64-bit seconds: a usage error, and nothing removed.
    let r = ib(&["cache", "prune", "--older-than", "999999999999999d"])
        .cache(&cache)
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("is too long"), "{r}");
    let v4 = build_json(ctx.path(), &cache, &work.path().join("o4"), &[]);
    assert_eq!(layer_cache_states(&v4), ["hit"]);
}

/// A no-op build reads the stat cache without rewriting it; it still marks
/// it used, so `cache prune` by age keeps it (as it keeps build records),
#[test]
fn prune_keeps_the_stat_cache_that_no_op_builds_read() {
    let ctx = small_context();
    // The cache keeps only files not changed in the last two seconds.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    let out = work.path().join("o");
    build_json(ctx.path(), &cache, &out, &[]);
    let stat_files = list_files(&cache.join("stat"));
    assert_eq!(stat_files.len(), 1, "{stat_files:?}");
    let stat = cache.join("stat").join(&stat_files[0]);
    let bytes = fs::read(&stat).unwrap();
    // Last used long ago, as far as its time says.
    let long_ago = epoch(1_000_000_000);
    set_mtime(&stat, long_ago);
    let v = build_json(ctx.path(), &cache, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["hit"]);
    assert_eq!(fs::read(&stat).unwrap(), bytes, "not rewritten");
    let mtime = fs::metadata(&stat).unwrap().modified().unwrap();
    assert!(mtime > epoch(1_700_000_000), "marked used: {mtime:?}");
    ib(&["cache", "prune", "--older-than", "7d"])
        .cache(&cache)
        .run()
        .ok();
    assert_eq!(fs::read(&stat).unwrap(), bytes, "kept by prune");
}

// ---------------------------------------------------------------------------
// Outputs and defaults
// ---------------------------------------------------------------------------

#[test]
fn default_output_is_imgbuild_out_under_the_working_folder() {
    let ctx = small_context();
    let cwd = TempDir::new().unwrap();
    let v = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&cwd.path().join("cache"))
        .json()
        .arg("-q")
        .cwd(cwd.path())
        .run()
        .ok()
        .json();
    assert_eq!(v["images"][0]["output"], "oci:imgbuild-out/app");
    let layout = Layout::new(&cwd.path().join("imgbuild-out/app"));
    layout.verify(0);
    assert_eq!(layout.tagged("v1")["digest"], v["images"][0]["digest"]);
    assert!(!ctx.path().join("imgbuild-out").exists());
    // A layout keeps other tags when one is rebuilt.
    let toml = fs::read_to_string(ctx.path().join(DEF))
        .unwrap()
        .replace("tag = \"v1\"", "tag = \"v2\"");
    fs::write(ctx.path().join(DEF), toml).unwrap();
    ib(&["build", "-q"])
        .path_arg(ctx.path())
        .cache(&cwd.path().join("cache"))
        .cwd(cwd.path())
        .run()
        .ok();
    let mut tags = layout.tags();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(layout.verify(0), 2);
    // With two tags, `inspect` needs one named.
    let dir = cwd.path().join("imgbuild-out/app");
    let r = ib(&["inspect", &format!("oci:{}", dir.display())])
        .json()
        .run();
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("oci:DIR:TAG"), "{r}");
    let i = ib(&[
        "inspect",
        &format!("oci:{}:v2", dir.display()),
        "--format",
        "json",
    ])
    .run()
    .ok()
    .json();
    assert_eq!(i["digest"], layout.tagged("v2")["digest"]);
}

#[test]
fn text_output_names_reference_output_and_digest() {
    let ctx = small_context();
    let work = TempDir::new().unwrap();
    let out = work.path().join("o");
    let r = ib(&["build"])
        .path_arg(ctx.path())
        .cache(&work.path().join("cache"))
        .oci_out(&out)
        .run()
        .ok();
    let digest = Layout::new(&out).tagged("v1")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let line = r.stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("app:v1 → oci:"), "{r}");
    assert!(line.contains(&digest), "{r}");
    assert!(line.contains("(1 layers, 1 built)"), "{r}");
}

#[test]
fn every_config_kind_reaches_the_image_config() {
    let t = TempDir::new().unwrap();
    let c = t.path();
    write(c, "a.txt", "a\n");
    fs::write(
        c.join(DEF),
        r#"[images.cfg]
base = "scratch"
tag = "c"
[[images.cfg.layers]]
workdir = "/srv"
[[images.cfg.layers]]
workdir = "app"
[[images.cfg.layers]]
env = { HOME = "/home/app", DATA = "${HOME}/data", PRICE = "\\$5", N = 3 }
[[images.cfg.layers]]
source_file = "a.txt"
[[images.cfg.layers]]
source_file = "a.txt"
dst = "/etc/renamed.txt"
[[images.cfg.layers]]
user = "1000:1000"
[[images.cfg.layers]]
labels = { "org.example.team" = "build", version = "1.2" }
[[images.cfg.layers]]
expose = [8080, "53/udp"]
[[images.cfg.layers]]
cmd = ["--help"]
[[images.cfg.layers]]
entrypoint = ["/bin/tool"]
[[images.cfg.layers]]
cmd = ["serve", "--port", "8080"]
"#,
    )
    .unwrap();
    let work = TempDir::new().unwrap();
    let out = work.path().join("out");
    build_json(c, &work.path().join("cache"), &out, &[]);
    let layout = Layout::new(&out);
    assert_eq!(layout.verify(0), 2);
    // Relative destinations follow the workdir in force: /srv/app.
    assert_eq!(
        layout.layer_paths("c"),
        [vec!["srv/app/a.txt"], vec!["etc/renamed.txt"]]
    );
    let (_, cfg) = layout.image("c");
    let cc = &cfg["config"];
    assert_eq!(cc["WorkingDir"], "/srv/app");
    assert_eq!(
        cc["Env"],
        serde_json::json!(["HOME=/home/app", "DATA=/home/app/data", "PRICE=$5", "N=3"])
    );
    assert_eq!(cc["User"], "1000:1000");
    assert_eq!(
        cc["Labels"],
        serde_json::json!({"org.example.team": "build", "version": "1.2"})
    );
    assert_eq!(
        cc["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    // A later entrypoint drops an earlier CMD, as in Docker.
    assert_eq!(cc["Entrypoint"], serde_json::json!(["/bin/tool"]));
    assert_eq!(cc["Cmd"], serde_json::json!(["serve", "--port", "8080"]));
    let history: Vec<&str> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(history.len(), 11, "{history:?}");
    assert!(history[3].contains("a.txt"), "{history:?}");
}

#[test]
fn special_files_are_skipped_with_a_note() {
    let t = TempDir::new().unwrap();
    let c = t.path();
    write(c, "src/a.txt", "a\n");
    let fifo = c.join("src/pipe");
    tool("mkfifo", &[fifo.to_str().unwrap()]);
    fs::write(
        c.join(DEF),
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/s\"\ncopy_contents_only = true\n",
    )
    .unwrap();
    let work = TempDir::new().unwrap();
    let p = plan_json(c, &work.path().join("cache"), &[]);
    let notes = plan_steps(&p, "app")[0]["notes"].to_string();
    assert!(notes.contains("skipped src/pipe"), "{notes}");
    build_json(c, &work.path().join("cache"), &work.path().join("o"), &[]);
    assert_eq!(
        Layout::new(&work.path().join("o")).layer_paths("latest"),
        [vec!["s/a.txt"]]
    );
}

#[test]
fn large_ids_survive_in_pax_records() {
    let t = TempDir::new().unwrap();
    let c = t.path();
    write(c, "src/a.txt", "a\n");
    fs::write(
        c.join(DEF),
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/s\"\ncopy_contents_only = true\nchown = \"3000000:3000001\"\n",
    )
    .unwrap();
    let work = TempDir::new().unwrap();
    let out = work.path().join("o");
    build_json(c, &work.path().join("cache"), &out, &[]);
    let layout = Layout::new(&out);
    let (m, _) = layout.image("latest");
    let e = layout.layer_entries(&m["layers"][0]);
    assert_eq!((e[0].uid, e[0].gid), (3_000_000, 3_000_001));
    let rootfs = umoci_unpack(&out, "latest", &work.path().join("bundle"));
    assert_eq!(owner_of(&rootfs.join("s/a.txt")), (3_000_000, 3_000_001));
}

// ---------------------------------------------------------------------------
// Bugs found while writing these tests (ignored until fixed in src/).
// ---------------------------------------------------------------------------

#[test]

fn auto_tags_differ_when_configs_differ() {
    let t = TempDir::new().unwrap();
    fs::write(
        t.path().join(DEF),
        r#"[images.a]
base = "scratch"
tag = "auto"
[[images.a.layers]]
env = { A = "1 B=2" }

[images.b]
base = "scratch"
tag = "auto"
[[images.b.layers]]
env = { A = "1", B = "2" }
"#,
    )
    .unwrap();
    let v = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .arg("--output")
        .arg(format!("oci:{}/{{image}}", t.path().join("out").display()))
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    let (a, b) = (&v["images"][0], &v["images"][1]);
    assert_ne!(a["digest"], b["digest"], "the two images differ");
    assert_ne!(
        a["tag"], b["tag"],
        "an auto tag must identify the image, but both got {}",
        a["tag"]
    );
}

#[test]

fn two_images_with_one_tag_into_one_layout_is_refused() {
    let t = TempDir::new().unwrap();
    fs::write(
        t.path().join(DEF),
        "[images.a]\nbase = \"scratch\"\n[[images.a.layers]]\nenv = { A = \"1\" }\n\n[images.b]\nbase = \"scratch\"\n[[images.b.layers]]\nenv = { B = \"2\" }\n",
    )
    .unwrap();
    let out = t.path().join("out");
    let r = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .oci_out(&out)
        .json()
        .arg("-q")
        .run();
    // Either a usage error, or both images can be found in the layout.
    if r.code == 0 {
        let v = r.json();
        let layout = Layout::new(&out);
        let idx = layout.index();
        let digests: Vec<&Value> = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["digest"])
            .collect();
        for img in v["images"].as_array().unwrap() {
            assert!(
                digests.contains(&&img["digest"]),
                "image {} ({}) was reported as written to {} but is not in its index.json: {idx:#}",
                img["name"],
                img["digest"],
                img["output"]
            );
        }
    } else {
        assert_eq!(r.code, 2, "{r}");
    }
}

#[test]

fn git_remote_credentials_never_reach_the_annotations() {
    let t = TempDir::new().unwrap();
    let repo = t.path().join("repo");
    write(&repo, ".git/HEAD", "ref: refs/heads/main\n");
    write(
        &repo,
        ".git/refs/heads/main",
        "0123456789abcdef0123456789abcdef01234567\n",
    );
    write(&repo, "ctx/src/a.txt", "a\n");
    fs::write(
        repo.join("ctx").join(DEF),
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_folder = \"src\"\n",
    )
    .unwrap();
    for (url, want) in [
        (
            "https://user:s3cret@example.com/org/repo.git",
            "https://example.com/org/repo.git",
        ),
        ("https://user:s3cret@example.com", "https://example.com"),
    ] {
        write(
            &repo,
            ".git/config",
            &format!("[remote \"origin\"]\n\turl = {url}\n"),
        );
        let out = t.path().join("out");
        let _ = fs::remove_dir_all(&out);
        build_json(&repo.join("ctx"), &t.path().join("cache"), &out, &[]);
        let (m, _) = Layout::new(&out).image("latest");
        let ann = &m["annotations"];
        assert_eq!(
            ann["org.opencontainers.image.revision"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(ann["org.opencontainers.image.source"], want, "{ann:#}");
        assert!(!ann.to_string().contains("s3cret"), "{ann:#}");
    }
}

#[test]

fn rebuilding_in_the_context_folder_does_not_copy_the_last_output() {
    let t = TempDir::new().unwrap();
    let c = t.path();
    write(c, "main.py", "print('hi')\n");
    fs::write(
        c.join(DEF),
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_folder = \".\"\ndst = \"/app\"\ncopy_contents_only = true\n",
    )
    .unwrap();
    let cache = TempDir::new().unwrap();
    let run = || {
        ib(&["build", "-q"])
            .cache(cache.path())
            .json()
            .cwd(c)
            .run()
            .ok()
            .json()
    };
    let first = run();
    let second = run();
    let layout = Layout::new(&c.join("imgbuild-out/app"));
    let paths = layout.layer_paths("latest").remove(0);
    assert!(
        !paths.iter().any(|p| p.starts_with("app/imgbuild-out")),
        "the previous build's output is in the layer: {paths:?}"
    );
    assert_eq!(
        first["images"][0]["digest"], second["images"][0]["digest"],
        "an unchanged tree rebuilt in place must give the same image"
    );
}

/// A small base layout in `<dir>/base` (tag v1), built from `small_context`.
fn base_layout(dir: &Path, cache: &Path) -> Value {
    let ctx = small_context();
    build_json(ctx.path(), cache, &dir.join("base"), &[])
}

#[test]

fn a_layout_base_gives_one_digest_whatever_the_working_folder() {
    let t = TempDir::new().unwrap();
    let cache = t.path().join("cache");
    base_layout(t.path(), &cache);
    let d = t.path().join("derived");
    write(&d, "m/f.txt", "m\n");
    fs::write(
        d.join(DEF),
        "[images.d]\nbase = \"oci:../base:v1\"\n[[images.d.layers]]\nsource_folder = \"m\"\n",
    )
    .unwrap();
    let digest = |path: &str, cwd: &Path, out: &str| -> Value {
        ib(&["build", path])
            .cache(&cache)
            .oci_out(&t.path().join(out))
            .json()
            .arg("-q")
            .cwd(cwd)
            .run()
            .ok()
            .json()["images"][0]["digest"]
            .clone()
    };
    let from_parent = digest("derived", t.path(), "o1");
    let from_inside = digest(".", &d, "o2");
    let absolute = digest(d.to_str().unwrap(), t.path(), "o3");
    assert_eq!(from_parent, from_inside);
    assert_eq!(from_parent, absolute);
}

#[test]

fn outputs_are_readable_as_the_umask_allows() {
    let ctx = small_context();
    let t = TempDir::new().unwrap();
    let out = t.path().join("layout");
    let oa = t.path().join("image.tar");
    for output in [
        format!("oci:{}", out.display()),
        format!("oci-archive:{}", oa.display()),
    ] {
        ib(&["build", "-q", "--output", &output])
            .path_arg(ctx.path())
            .cache(&t.path().join("cache"))
            .umask(0o022)
            .run()
            .ok();
    }
    let mut files: Vec<PathBuf> = list_files(&out)
        .into_iter()
        .map(|f| out.join(f))
        .filter(|p| p.is_file())
        .collect();
    files.push(oa);
    for f in files {
        assert_eq!(
            mode_of(&f),
            0o644,
            "{} is not readable by others under umask 022",
            f.display()
        );
    }
}

#[test]

fn a_corrupt_base_layer_is_refused() {
    let t = TempDir::new().unwrap();
    let vb = base_layout(t.path(), &t.path().join("cache-base"));
    // Flip one byte of the base's layer: same size, other content.
    let layer = vb["images"][0]["platforms"][0]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = Layout::new(&t.path().join("base")).blob_path(&layer);
    let mut bytes = fs::read(&p).unwrap();
    bytes[40] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    let d = t.path().join("derived");
    write(&d, "m/f.txt", "m\n");
    fs::write(
        d.join(DEF),
        "[images.d]\nbase = \"oci:../base:v1\"\n[[images.d.layers]]\nsource_folder = \"m\"\n",
    )
    .unwrap();
    let cache = t.path().join("cache");
    let r = ib(&["build", "-q"])
        .path_arg(&d)
        .cache(&cache)
        .oci_out(&t.path().join("out"))
        .json()
        .run();
    // Whatever the build says, the store must stay content-addressed.
    for f in list_files(&cache.join("blobs/sha256")) {
        let b = fs::read(cache.join("blobs/sha256").join(&f)).unwrap();
        assert_eq!(
            sha256_hex(&b),
            f,
            "the store holds a blob under a wrong name"
        );
    }
    assert_ne!(r.code, 0, "a corrupt base layer was accepted:\n{r}");
    assert!(r.stderr.contains(hex(&layer)), "{r}");
}

#[test]

fn a_relative_layout_base_is_found_next_to_the_definition() {
    let t = TempDir::new().unwrap();
    let deploy = t.path().join("deploy");
    base_layout(&deploy, &t.path().join("cache"));
    write(t.path(), "src/app/f.txt", "f\n");
    fs::write(
        deploy.join("def.toml"),
        "[images.d]\nbase = \"oci:base:v1\"\n[[images.d.layers]]\nsource_folder = \"app\"\n",
    )
    .unwrap();
    let r = ib(&["build", "-q", "--definition"])
        .path_arg(&deploy.join("def.toml"))
        .arg("--context")
        .path_arg(&t.path().join("src"))
        .cache(&t.path().join("cache"))
        .oci_out(&t.path().join("out"))
        .json()
        .run();
    assert_eq!(r.code, 0, "{r}");
}

#[test]

fn missing_inputs_exit_3() {
    let head = "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\n";
    for (toml, line) in [
        (
            format!("{head}source_folder = \"nope\"\n"),
            "imgbuild.toml:4:1",
        ),
        (
            format!("{head}source_file = \"nope.txt\"\n"),
            "imgbuild.toml:4:1",
        ),
        (
            "[images.app]\nbase = \"oci:no-such-layout:v1\"\n".to_string(),
            "imgbuild.toml:2:1",
        ),
    ] {
        let r = run_def("build", &toml);
        assert_eq!(
            r.code, 3,
            "README: 3 = an input file or folder is missing\n{r}"
        );
        let v = r.json();
        assert_eq!(v["error"]["kind"], "input", "{r}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(line),
            "{r}"
        );
    }
}

#[test]

fn quiet_builds_still_print_warnings() {
    let ctx = small_context();
    write(ctx.path(), "app/.env", "TOKEN=abc\n");
    let work = TempDir::new().unwrap();
    let r = ib(&["build", "-q"])
        .path_arg(ctx.path())
        .cache(&work.path().join("cache"))
        .oci_out(&work.path().join("o"))
        .run()
        .ok();
    assert!(
        r.stderr.contains("warning: likely secret") && r.stderr.contains("app/.env"),
        "-q hides progress, not warnings:\n{r}"
    );
}

/// A Dockerfile, a definition file, a `.dockerignore` or a definition on
/// standard input larger than 16 MiB (the most BuildKit's frontend is
/// handed) is a bad input naming the file, refused before it is parsed,
/// instead of taking many times its size in memory.
#[test]
fn descriptions_over_16_mib_are_refused_by_name() {
    let t = tempfile::tempdir().unwrap();
    let huge = |head: &str| {
        let mut s = String::from(head);
        while s.len() <= 16 << 20 {
            s.push_str(&"x".repeat(60_000));
            s.push_str("\\\n");
        }
        s.push_str("\"\n");
        s
    };
    let store = t.path().join("store");
    let df = write(
        t.path(),
        "df/Dockerfile",
        &huge("FROM scratch\nLABEL big=\""),
    );
    let def = write(
        t.path(),
        "def/imgbuild.toml",
        &huge("[images.a]\nbase = \"scratch\"\nlabels = { big = \""),
    );
    let ctx = t.path().join("ign");
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY . /\n");
    write(&ctx, ".dockerignore", &huge("# "));
    for (r, file) in [
        (
            ib(&["plan", "-f"])
                .path_arg(&df)
                .path_arg(df.parent().unwrap()),
            df.display().to_string(),
        ),
        (ib(&["plan"]).path_arg(&def), def.display().to_string()),
        (
            ib(&["plan", "--definition", "-"]).stdin(fs::read(&def).unwrap()),
            "<stdin>".to_string(),
        ),
        (
            ib(&["build", "-f"])
                .path_arg(&ctx.join("Dockerfile"))
                .path_arg(&ctx)
                .oci_out(&t.path().join("out")),
            ctx.join(".dockerignore").display().to_string(),
        ),
    ] {
        let r = r.cache(&store).json().run();
        assert_eq!(r.code, 3, "{file}: {r}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains(&file) && msg.contains("larger than 16 MiB"),
            "{file}: {msg}"
        );
    }
    assert!(!t.path().join("out").exists());
}

/// What killed builds leave in the store's temp area (a session folder
/// whose lock no process holds, as `tests/faults.rs` shows a SIGKILL
/// leaves it) is removed by the next command that opens the store; when
/// that command is `cache prune`, its report counts those bytes instead of
/// saying it freed nothing.
#[test]
fn prune_counts_the_temp_files_of_killed_builds() {
    let work = TempDir::new().unwrap();
    let cache = work.path().join("cache");
    ib(&["cache", "prune"]).cache(&cache).run().ok();
    let dead = cache.join("tmp/s-00000000deadbeef");
    write_file(&dead, "tmp-layer", vec![7u8; 3 << 20], 0o600);
    write_file(&dead, "run-1/upper/f", vec![1u8; 1 << 20], 0o644);
    fs::write(cache.join("tmp/s-00000000deadbeef.lock"), b"").unwrap();
    let r = ib(&["cache", "prune", "--format", "json"])
        .cache(&cache)
        .run()
        .ok()
        .json();
    assert!(r["temp_bytes_freed"].as_u64().unwrap() >= 4 << 20, "{r}");
    assert!(r["bytes_freed"].as_u64().unwrap() >= 4 << 20, "{r}");
    assert!(!dead.exists());
    assert!(!cache.join("tmp/s-00000000deadbeef.lock").exists());
    let r = ib(&["cache", "prune"]).cache(&cache).run().ok();
    assert!(
        r.stdout
            .contains("freed 0 B (0 B of it killed builds' temp files)"),
        "{r}"
    );
}

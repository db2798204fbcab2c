//! A corrupted store (a flipped byte, a truncated blob) never reaches an
//! output, an archive or a registry, and never changes an image written
//! earlier: real builds, the store damaged on disk between them, results
//! read back with umoci, skopeo and a real registry.

mod support;

use serde_json::Value;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use support::registry::{Registry, RegistryOptions};
use support::*;

/// The big file's bytes (incompressible, so its layer is about as big).
fn data_bytes() -> Vec<u8> {
    mixed_bytes(300_000, 7)
}

/// A context whose imgbuild.toml makes two files layers on scratch.
fn project(dir: &Path) -> PathBuf {
    write(dir, "app/main.py", "print('hello')\n");
    write_file(dir, "data/blob.bin", data_bytes(), 0o644);
    app_and_data_definition(dir)
}

fn build(def: &Path, cache: &Path, out: &str) -> Run {
    ib(&["build"])
        .path_arg(def)
        .cache(cache)
        .args(&["--output", out])
        .json()
        .arg("-q")
        .run()
}

/// The `--output` value of an OCI layout at `dir`.
fn oci(dir: &Path) -> String {
    format!("oci:{}", dir.display())
}

/// The project built once, into the layout `a`, with the store `cache`.
struct Built {
    t: tempfile::TempDir,
    def: PathBuf,
    cache: PathBuf,
    a: PathBuf,
}

impl Built {
    fn new() -> Built {
        let t = tempfile::tempdir().unwrap();
        let def = project(t.path());
        let cache = t.path().join("cache");
        let a = t.path().join("a");
        build(&def, &cache, &oci(&a)).ok();
        Built { t, def, cache, a }
    }
}

/// The digest (`sha256:…`) of the image's biggest layer (the data layer).
fn data_layer(layout: &Path) -> String {
    let l = Layout::new(layout);
    let (_, m) = l.manifests("v1").remove(0);
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|d| d["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn store_blob(cache: &Path, digest: &str) -> PathBuf {
    cache
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Flips a byte of the store's copy of the biggest layer of the image in
/// `layout`; returns that layer's digest.
fn flip_data_layer(layout: &Path, cache: &Path) -> String {
    let d = data_layer(layout);
    flip_byte(&store_blob(cache, &d));
    d
}

/// Flips one byte in the middle of the file, in place (hard links to it
/// see the change).
fn flip_byte(p: &Path) {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap();
    let mid = f.metadata().unwrap().len() / 2;
    let mut b = [0u8];
    f.seek(SeekFrom::Start(mid)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(mid)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
}

/// Cuts the file to half its size, in place.
fn truncate(p: &Path) {
    let f = fs::OpenOptions::new().write(true).open(p).unwrap();
    let n = f.metadata().unwrap().len();
    f.set_len(n / 2).unwrap();
}

/// Every blob of the layout hashes to its name.
#[track_caller]
fn assert_blobs_verify(layout: &Path) {
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "a temp file was left: {name}");
        assert_eq!(
            sha256_hex(&fs::read(e.path()).unwrap()),
            name,
            "blob {name} of {} does not match its name",
            layout.display()
        );
    }
}

/// The layout is complete and right: every blob hashes to its name, and
/// umoci (which checks digests as it reads) unpacks the files built.
#[track_caller]
fn assert_layout_good(layout: &Path, scratch: &Path) {
    assert_blobs_verify(layout);
    let root = umoci_unpack(layout, "v1", scratch);
    assert_eq!(fs::read(root.join("data/blob.bin")).unwrap(), data_bytes());
    assert_eq!(
        fs::read_to_string(root.join("app/main.py")).unwrap(),
        "print('hello')\n"
    );
}

/// The store names the bad blob in a warning, and the build rebuilds it.
#[track_caller]
fn assert_warned(r: &Run, digest: &str) {
    assert!(
        r.stderr.contains("warning") && r.stderr.contains(digest),
        "no warning naming {digest}:\n{r}"
    );
}

#[test]
fn a_flipped_byte_in_the_store_is_found_and_rebuilt() {
    let Built { t, def, cache, a } = Built::new();
    let d = flip_data_layer(&a, &cache);
    let b = t.path().join("b");
    let r = build(&def, &cache, &oci(&b)).ok();
    assert_warned(&r, &d);
    // Also in the JSON report, for callers that read only that.
    let v = r.json();
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains(&d)),
        "{v:#}"
    );
    assert_eq!(v["layers_built"], 1, "{v:#}");
    assert_eq!(data_layer(&b), d, "the rebuilt layer has the same bytes");
    assert_layout_good(&b, &t.path().join("bundle-b"));
    // The store holds the right bytes again, and the plan's hits are true.
    let stored = fs::read(store_blob(&cache, &d)).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&stored)), d);
    let p = plan_json(&def, &cache, &[]);
    assert!(
        plan_steps(&p, "app")
            .iter()
            .filter(|s| s["cache"] != "config")
            .all(|s| s["cache"] == "hit"),
        "{p:#}"
    );
}

#[test]
fn a_truncated_blob_in_the_store_is_found_and_rebuilt() {
    let Built { t, def, cache, a } = Built::new();
    let d = data_layer(&a);
    truncate(&store_blob(&cache, &d));
    // The plan does not call the damaged step a hit.
    let p = ib(&["plan"]).path_arg(&def).cache(&cache).json().run().ok();
    let misses = plan_steps(&p.json(), "app")
        .iter()
        .filter(|s| s["cache"] == "miss")
        .count();
    assert_eq!(misses, 1, "{p}");
    let b = t.path().join("b");
    let r = build(&def, &cache, &oci(&b)).ok();
    assert_eq!(data_layer(&b), d);
    assert_layout_good(&b, &t.path().join("bundle-b"));
    // The warning came from the plan, which removed the blob; the build
    // rebuilt it.
    assert!(p.stderr.contains(&d), "{p}");
    assert_eq!(r.json()["layers_built"], 1, "{r}");
}

#[test]
fn an_earlier_output_is_not_changed_by_a_later_store_corruption() {
    let Built { t, def, cache, a } = Built::new();
    // Every blob of the store damaged in place, the layout's unchanged.
    for e in fs::read_dir(cache.join("blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        if fs::metadata(&p).unwrap().len() > 0 {
            flip_byte(&p);
        }
    }
    assert_layout_good(&a, &t.path().join("bundle-a"));
    // A second write into the same layout leaves its good blobs as they are.
    build(&def, &cache, &oci(&a)).ok();
    assert_layout_good(&a, &t.path().join("bundle-a2"));
}

#[test]
fn cache_verify_finds_and_removes_bad_blobs() {
    let Built { t, def, cache, a } = Built::new();
    let verify = || {
        ib(&["cache", "verify", "--format", "json"])
            .cache(&cache)
            .run()
    };
    let blobs: Vec<PathBuf> = fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let bytes: u64 = blobs.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    let clean = verify();
    assert_eq!(clean.code, 0, "{clean}");
    let v = clean.json();
    assert_eq!(v["blobs_checked"], blobs.len() as u64, "{v:#}");
    assert_eq!(v["bytes_checked"], bytes, "{v:#}");
    assert_eq!(v["bad_removed"], 0, "{v:#}");
    // One flipped, one cut short.
    let d = data_layer(&a);
    let l = Layout::new(&a);
    let config = l.manifests("v1").remove(0).1["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&store_blob(&cache, &d));
    truncate(&store_blob(&cache, &config));
    let r = verify();
    assert_eq!(r.code, 1, "corruption found is not a success:\n{r}");
    let v = r.json();
    assert_eq!(v["blobs_checked"], blobs.len() as u64, "{v:#}");
    assert_eq!(v["bad_removed"], 2, "{v:#}");
    assert_eq!(v["steps_removed"], 1, "the data layer's step: {v:#}");
    let mut bad: Vec<&str> = v["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    bad.sort();
    let mut want = vec![d.as_str(), config.as_str()];
    want.sort();
    assert_eq!(bad, want, "{v:#}");
    assert!(!store_blob(&cache, &d).exists());
    assert!(!store_blob(&cache, &config).exists());
    // Clean again; the next build rebuilds what was removed.
    let again = verify();
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(again.json()["bad_removed"], 0);
    let b = t.path().join("b");
    build(&def, &cache, &oci(&b)).ok();
    assert_layout_good(&b, &t.path().join("bundle-b"));
    // Text form.
    let text = ib(&["cache", "verify"]).cache(&cache).run().ok();
    assert!(text.stdout.contains("removed 0 bad"), "{text}");
}

/// The files of a tar archive, by name.
fn untar(p: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    tool(
        "tar",
        &[
            "-xf",
            p.to_str().unwrap(),
            "-C",
            dir.path().to_str().unwrap(),
        ],
    );
    let mut out = Vec::new();
    for e in fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        out.push((
            e.file_name().into_string().unwrap(),
            fs::read(e.path()).unwrap(),
        ));
    }
    out
}

#[test]
fn archives_never_hold_a_bad_blob() {
    let Built { t, def, cache, a } = Built::new();
    let d = data_layer(&a);
    for (i, kind) in ["oci-archive", "docker-archive"].iter().enumerate() {
        if i == 0 {
            flip_byte(&store_blob(&cache, &d));
        } else {
            truncate(&store_blob(&cache, &d));
        }
        let tar = t.path().join(format!("{kind}.tar"));
        let r = build(&def, &cache, &format!("{kind}:{}", tar.display())).ok();
        assert!(r.stderr.contains(&d), "{r}");
        let files = untar(&tar);
        assert!(files.iter().any(|(n, _)| d.ends_with(n.as_str())));
        for (name, bytes) in &files {
            assert_eq!(&sha256_hex(bytes), name, "{kind}: blob {name} is bad");
        }
    }
    // skopeo reads the oci archive (checking digests) into a layout umoci unpacks.
    require_tool("skopeo", "skopeo");
    let copied = t.path().join("copied");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", t.path().join("oci-archive.tar").display()),
            &format!("oci:{}:v1", copied.display()),
        ],
    );
    assert_layout_good(&copied, &t.path().join("bundle"));
}

#[test]
fn a_push_never_sends_a_bad_blob() {
    require_tool("skopeo", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let Built { t, def, cache, a } = Built::new();
    let d = flip_data_layer(&a, &cache);
    let r = ib(&["build"])
        .path_arg(&def)
        .cache(&cache)
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/app:v1", reg.host())])
        .run()
        .ok();
    assert_warned(&r, &d);
    let v: Value = r.json();
    let pushed = v["images"][0]["pushed"][0]["digest"].as_str().unwrap();
    // What the registry holds is the image built, whole: skopeo copies it
    // (checking every digest) into a layout umoci unpacks.
    let copied = t.path().join("copied");
    reg.skopeo_pull("team/app:v1", &format!("oci:{}:v1", copied.display()))
        .unwrap();
    assert_eq!(Layout::new(&copied).tagged("v1")["digest"], pushed);
    assert_eq!(data_layer(&copied), d);
    assert_layout_good(&copied, &t.path().join("bundle"));
}

#[test]
fn a_run_step_over_a_bad_layer_rebuilds_it_and_imports_the_base_again() {
    let Some(base) = support::pybase::dockerfile_test_base(
        "a_run_step_over_a_bad_layer_rebuilds_it_and_imports_the_base_again",
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    // A copy of the shared base: a store that hard-linked its blobs would
    // otherwise pass the damage on to it.
    let base_copy = t.path().join("base");
    tool(
        "cp",
        &["-r", base.to_str().unwrap(), base_copy.to_str().unwrap()],
    );
    let base = base_copy;
    let ctx = t.path().join("ctx");
    write_file(&ctx, "data/blob.bin", data_bytes(), 0o644);
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\nCOPY data /data\nARG N\nRUN echo $N > /n && sha256sum /data/blob.bin > /sum\n",
            base.display()
        ),
    );
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    build_dockerfile(&ctx, &cache, &a, &["--build-arg", "N=1"]).ok();
    let (_, m) = Layout::new(&a).manifests("latest").remove(0);
    let layers: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let (base_layer, copy_layer) = (layers[0], layers[layers.len() - 2]);
    flip_byte(&store_blob(&cache, base_layer));
    flip_byte(&store_blob(&cache, copy_layer));
    // The RUN step's root filesystem is made from the layers again.
    fs::remove_dir_all(cache.join("rootfs")).ok();
    let b = t.path().join("b");
    let r = build_dockerfile(&ctx, &cache, &b, &["--build-arg", "N=2"]).ok();
    assert_warned(&r, base_layer);
    assert_warned(&r, copy_layer);
    // Found as the RUN step's root was made from them: the step ran in
    // the second round, with the copy rebuilt below it.
    assert!(r.stderr.contains("building again"), "{r}");
    assert_eq!(r.json()["layers_built"], 2, "{r}");
    assert_blobs_verify(&b);
    let root = umoci_unpack(&b, "latest", &t.path().join("bundle"));
    assert_eq!(fs::read_to_string(root.join("n")).unwrap(), "2\n");
    assert_eq!(
        fs::read_to_string(root.join("sum")).unwrap(),
        format!("{}  /data/blob.bin\n", sha256_hex(&data_bytes()))
    );
    // The base's layout gave its layer again; it is untouched.
    assert_blobs_verify(&base);
}

#[test]
fn a_bad_base_layer_from_a_registry_is_fetched_again() {
    let reg = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let def = project(t.path());
    ib(&["build"])
        .path_arg(&def)
        .cache(&t.path().join("push-cache"))
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/base:v1", reg.host())])
        .run()
        .ok();
    // An image on that base, built with a store of its own: the base's
    // layers come from the registry.
    let ctx = t.path().join("on-base");
    write(&ctx, "extra/x.txt", "x\n");
    let def = write(
        &ctx,
        "imgbuild.toml",
        &format!(
            "[images.app]\nbase = \"{}/team/base:v1\"\ntag = \"v1\"\n\
             [[images.app.layers]]\nsource_folder = \"extra\"\ndst = \"/extra\"\n",
            reg.host()
        ),
    );
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    build(&def, &cache, &oci(&a)).ok();
    let d = flip_data_layer(&a, &cache);
    let before = reg.access_log().len();
    let b = t.path().join("b");
    let r = build(&def, &cache, &oci(&b)).ok();
    assert_warned(&r, &d);
    let fetched = reg.access_log()[before..]
        .iter()
        .any(|e| e.method == "GET" && e.path.ends_with(&format!("/blobs/{d}")));
    assert!(fetched, "the layer was not fetched again:\n{r}");
    assert_eq!(r.json()["layers_built"], 0, "{r}");
    assert_layout_good(&b, &t.path().join("bundle"));
}

#[test]
fn pushing_a_layout_over_a_bad_store_blob_imports_it_again() {
    require_tool("skopeo", "skopeo");
    let reg = Registry::start(RegistryOptions::plain());
    let Built { t, cache, a, .. } = Built::new();
    let d = flip_data_layer(&a, &cache);
    let r = ib(&["push", &format!("oci:{}:v1", a.display())])
        .arg(format!("{}/team/pushed:v1", reg.host()))
        .cache(&cache)
        .arg("-q")
        .run()
        .ok();
    assert_warned(&r, &d);
    let copied = t.path().join("copied");
    reg.skopeo_pull("team/pushed:v1", &format!("oci:{}:v1", copied.display()))
        .unwrap();
    assert_layout_good(&copied, &t.path().join("bundle"));
}

#[test]
fn a_filesystem_output_never_unpacks_a_bad_blob() {
    let Built { t, def, cache, a } = Built::new();
    let d = flip_data_layer(&a, &cache);
    let root = t.path().join("root");
    let r = build(&def, &cache, &format!("type=local,dest={}", root.display())).ok();
    assert_warned(&r, &d);
    assert_eq!(fs::read(root.join("data/blob.bin")).unwrap(), data_bytes());
}

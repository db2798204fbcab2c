//! The registry step cache (`--cache-from`, `--cache-to`) against a real
//! registry (Debian's docker-registry): separate stores stand for separate
//! machines; results are checked with skopeo and the registry's access log.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use support::registry::{self as reg, Registry, RegistryOptions};
use support::*;

/// A project of two folder layers and an env step.
fn project(dir: &Path) {
    write(dir, "app/main.py", "print('hello')\n");
    write(dir, "app/pkg/__init__.py", "");
    write_file(dir, "data/blob.bin", mixed_bytes(300_000, 7), 0o644);
    app_and_data_definition(dir);
}

/// `imgbuild build` of `ctx` with the store `store` and `extra` flags.
fn build(ctx: &Path, store: &Path, extra: &[String]) -> Run {
    ib(&["build"])
        .path_arg(ctx)
        .cache(store)
        .json()
        .arg("-q")
        .args(extra)
        .run()
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Where the registry keeps the bytes of `digest` (one file for every
/// repository).
fn blob_data(r: &Registry, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    r.dir()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Layer blob GETs in the access log (manifest GETs are lookups).
fn blob_gets(entries: &[reg::AccessEntry]) -> usize {
    reg::requests_matching(entries, "GET", "/blobs/sha256:").len()
}

#[test]
fn a_fresh_store_builds_from_the_registry_cache_and_a_bad_entry_is_a_miss() {
    require_tool("skopeo", "skopeo");
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    project(&ctx);
    let cache = format!("{}/team/cache", r.host());
    let image = format!("{}/team/app:v1", r.host());

    // Runner 1 builds, pushes and writes the cache.
    let v1 = build(
        &ctx,
        &t.path().join("store1"),
        &strs(&["--push", "--tag", &image, "--cache-to", &cache]),
    )
    .ok()
    .json();
    let pushed = v1["images"][0]["pushed"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v1["cache_export"]["entries_written"], 2, "{v1:#}");
    // The layers were pushed with the image: the cache mounts them.
    assert_eq!(
        v1["cache_export"]["blobs_uploaded"], 1,
        "only the empty config: {v1:#}"
    );
    let log = r.access_log();
    assert!(reg::blob_mounts(&log) >= 2, "{log:#?}");
    // Each entry is an OCI manifest skopeo reads, tagged by step key.
    let tags = skopeo_json(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{cache}"),
    ]);
    let tags: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(
        tags.iter()
            .all(|t| t.starts_with("step-v1-") && t.len() == 72)
    );

    // Runner 2: an empty store, the cache, a local output. Every layer is
    // a registry hit and the image is the one runner 1 pushed.
    let out2 = t.path().join("out2");
    let gets_before = blob_gets(&r.access_log());
    let v2 = build(
        &ctx,
        &t.path().join("store2"),
        &strs(&[
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            "--output",
            &format!("oci:{}", out2.display()),
        ]),
    )
    .ok()
    .json();
    assert_eq!(v2["layers_built"], 0, "{v2:#}");
    assert_eq!(v2["cache_hits_registry"], 2, "{v2:#}");
    assert_eq!(layer_cache_states(&v2), ["hit-registry", "hit-registry"]);
    assert_eq!(v2["images"][0]["digest"], pushed.as_str(), "{v2:#}");
    let inspected = skopeo_json(&["inspect", &format!("oci:{}:v1", out2.display())]);
    assert_eq!(inspected["Digest"], pushed.as_str());
    // A local output needs the bytes: the two layers were downloaded once.
    assert_eq!(blob_gets(&r.access_log()) - gets_before, 2);

    // The definition can name the cache instead of the command line.
    let ctx_def = t.path().join("ctx-def");
    project(&ctx_def);
    let def = fs::read_to_string(ctx_def.join("imgbuild.toml")).unwrap();
    fs::write(
        ctx_def.join("imgbuild.toml"),
        format!("cache = {{ from = [\"{cache}\"] }}\n{def}"),
    )
    .unwrap();
    let v = build(
        &ctx_def,
        &t.path().join("store-def"),
        &strs(&[
            "--output",
            &format!("oci:{}", t.path().join("out-def").display()),
        ]),
    )
    .ok()
    .json();
    assert_eq!(v["cache_hits_registry"], 2, "{v:#}");
    assert_eq!(v["images"][0]["digest"], pushed.as_str(), "{v:#}");

    // `plan` with the cache and an empty store says where each layer is,
    // and downloads nothing.
    let gets_before = blob_gets(&r.access_log());
    let plan = plan_json(
        &ctx,
        &t.path().join("store-plan"),
        &["--cache-from", &cache],
    );
    let states: Vec<&str> = plan_steps(&plan, "app")
        .iter()
        .filter(|s| s["cache"] != "config")
        .map(|s| s["cache"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["hit-registry", "hit-registry"], "{plan:#}");
    assert_eq!(blob_gets(&r.access_log()), gets_before);

    // Writing the cache again after a build that changed nothing sends no
    // blob and no entry.
    let uploads_before = reg::blob_upload_requests(&r.access_log());
    let puts_before = reg::manifest_puts(&r.access_log());
    let v = build(
        &ctx,
        &t.path().join("store2"),
        &strs(&[
            "--cache-to",
            &cache,
            "--output",
            &format!("oci:{}", out2.display()),
        ]),
    )
    .ok()
    .json();
    assert_eq!(v["cache_export"]["entries_present"], 2, "{v:#}");
    assert_eq!(v["cache_export"]["bytes_uploaded"], 0, "{v:#}");
    let log = r.access_log();
    assert_eq!(reg::blob_upload_requests(&log), uploads_before);
    assert_eq!(reg::manifest_puts(&log), puts_before);

    // Poison the data layer's bytes in the registry's storage (same
    // length). A fresh runner is warned, builds that layer from source,
    // and still makes runner 1's image.
    let data_layer = v1["images"][0]["platforms"][0]["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = blob_data(&r, &data_layer);
    let len = fs::metadata(&file).unwrap().len() as usize;
    fs::write(&file, mixed_bytes(len, 99)).unwrap();
    let out3 = t.path().join("out3");
    let v3 = build(
        &ctx,
        &t.path().join("store3"),
        &strs(&[
            "--cache-from",
            &cache,
            "--output",
            &format!("oci:{}", out3.display()),
        ]),
    )
    .ok()
    .json();
    assert_eq!(v3["layers_built"], 1, "{v3:#}");
    assert_eq!(layer_cache_states(&v3), ["hit-registry", "miss"]);
    assert_eq!(v3["images"][0]["digest"], pushed.as_str());
    let warnings = v3["warnings"].to_string();
    assert!(
        warnings.contains("cache") && warnings.contains(&data_layer[7..19]),
        "{v3:#}"
    );

    // An entry that lies about its layer's diff_id (its blob is sound) is
    // a miss too: rewrite the app layer's entry with another diff_id.
    let app_layer = v1["images"][0]["platforms"][0]["layers"][0]["digest"]
        .as_str()
        .unwrap();
    let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")];
    let (tag, mut entry) = tags
        .iter()
        .map(|t| {
            let got = r
                .api_with(
                    "GET",
                    &format!("/v2/team/cache/manifests/{t}"),
                    &accept,
                    None,
                )
                .unwrap();
            (
                t.to_string(),
                serde_json::from_slice::<Value>(&got.body).unwrap(),
            )
        })
        .find(|(_, e)| e["layers"][0]["digest"] == app_layer)
        .expect("the app layer's entry");
    entry["layers"][0]["annotations"]["dev.imgbuild.step.diff-id"] =
        format!("sha256:{}", "0".repeat(64)).into();
    let put = r
        .api_with(
            "PUT",
            &format!("/v2/team/cache/manifests/{tag}"),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            Some(&serde_json::to_vec(&entry).unwrap()),
        )
        .unwrap();
    assert_eq!(put.status, 201, "{}", put.text());
    let out4 = t.path().join("out4");
    let v4 = build(
        &ctx,
        &t.path().join("store4"),
        &strs(&[
            "--cache-from",
            &cache,
            "--output",
            &format!("oci:{}", out4.display()),
        ]),
    )
    .ok()
    .json();
    assert_eq!(layer_cache_states(&v4), ["miss", "miss"], "{v4:#}");
    assert_eq!(v4["images"][0]["digest"], pushed.as_str());
    assert!(v4["warnings"].to_string().contains("diff_id"), "{v4:#}");
}

#[test]
fn cache_flags_are_checked() {
    let t = tempfile::tempdir().unwrap();
    project(t.path());
    for (flag, value, says) in [
        (
            "--cache-from",
            "type=local,src=/tmp/c",
            "only type=registry",
        ),
        (
            "--cache-to",
            "type=registry,ref=127.0.0.1:1/c,mode=all",
            "min or max",
        ),
        ("--cache-to", "type=registry,mode=max", "missing ref"),
    ] {
        let run = build(t.path(), &t.path().join("store"), &strs(&[flag, value]));
        assert_eq!(run.code, 2, "{run}");
        assert!(
            run.stderr.contains(flag) && run.stderr.contains(says),
            "{run}"
        );
    }
    // A cache that cannot be written fails the build, unless
    // ignore-error=true makes it a warning (as buildx's).
    let port = reg::free_port();
    let to = format!("type=registry,ref=127.0.0.1:{port}/c");
    let out = format!("oci:{}", t.path().join("out").display());
    let run = build(
        t.path(),
        &t.path().join("store"),
        &strs(&["--cache-to", &to, "--output", &out]),
    );
    assert_eq!(run.code, 6, "{run}");
    let run = build(
        t.path(),
        &t.path().join("store"),
        &strs(&[
            "--cache-to",
            &format!("{to},ignore-error=true"),
            "--output",
            &out,
        ]),
    )
    .ok();
    let warnings = run.json()["warnings"].clone();
    assert_eq!(warnings.as_array().unwrap().len(), 1, "{run}");
    assert!(
        warnings[0].as_str().unwrap().contains("not written"),
        "{run}"
    );
    let run = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("store"))
        .env("IMGBUILD_CACHE_FROM", "type=gha")
        .run();
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("IMGBUILD_CACHE_FROM"), "{run}");
}

/// A project on the Debian base: a RUN step, then a source folder.
fn run_project(dir: &Path, base: &Path) {
    write(dir, "app/main.py", "print('hello')\n");
    write(dir, "app/util.py", "X = 1\n");
    fs::write(
        dir.join("imgbuild.toml"),
        format!(
            "[images.app]\nbase = \"oci:{}:latest\"\ntag = \"v1\"\n\
             [[images.app.layers]]\ncommands = [\"echo built > /built.txt\"]\n\
             [[images.app.layers]]\nsource_folder = \"app\"\ndst = \"/app\"\ncopy_contents_only = true\n",
            base.display()
        ),
    )
    .unwrap();
}

/// Runners with empty stores, started together, take every step from the
/// cache and push: no layer is downloaded or uploaded, and they push the
/// image runner 1 pushed. Then one changes a source file: only that layer
/// is built and uploaded.
#[test]
fn fresh_runners_push_from_the_cache_without_downloading_a_layer() {
    if !support::pybase::debian_tools_present("fresh_runners_push_from_the_cache") {
        return;
    }
    let base = support::pybase::debian_python_base();
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    run_project(&ctx, &base);
    let cache = format!("{}/team/cache", r.host());
    let image = format!("{}/team/app:v1", r.host());
    let push = |store: &str, extra: &[&str]| {
        let mut a = strs(&["--push", "--tag", &image]);
        a.extend(strs(extra));
        ib(&["build"])
            .path_arg(&ctx)
            .cache(&t.path().join(store))
            .json()
            .arg("-q")
            .args(&a)
    };
    let v1 = push("store1", &["--cache-to", &cache]).run().ok().json();
    let pushed = v1["images"][0]["pushed"][0]["digest"].clone();
    assert_eq!(v1["layers_built"], 2, "{v1:#}");
    assert_eq!(v1["cache_export"]["entries_written"], 2, "{v1:#}");

    let before = r.access_log().len();
    let runners: Vec<_> = ["store2", "store3", "store4"]
        .iter()
        .map(|s| push(s, &["--cache-from", &cache]).spawn())
        .collect();
    for run in runners {
        let v = run.wait().ok().json();
        assert_eq!(v["layers_built"], 0, "{v:#}");
        assert_eq!(v["cache_hits_registry"], 2, "{v:#}");
        assert_eq!(v["images"][0]["pushed"][0]["digest"], pushed, "{v:#}");
        assert_eq!(v["bytes_uploaded"], 0, "{v:#}");
    }
    let log = r.access_log();
    let since = &log[before..];
    assert_eq!(blob_gets(since), 0, "no blob downloaded: {since:#?}");
    assert_eq!(
        reg::blob_uploads_completed(since),
        0,
        "no blob uploaded: {since:#?}"
    );

    // Runner 3 changes a source file and writes the cache: the RUN step is
    // still a hit (still not downloaded), the source layer is built and is
    // the one blob uploaded to the image (the cache mounts it).
    let ctx3 = t.path().join("ctx3");
    run_project(&ctx3, &base);
    write(&ctx3, "app/util.py", "X = 2\n");
    let before = r.access_log().len();
    let v3 = build(
        &ctx3,
        &t.path().join("store3"),
        &strs(&[
            "--push",
            "--tag",
            &format!("{}/team/app:v2", r.host()),
            "--cache-from",
            &cache,
            "--cache-to",
            &cache,
        ]),
    )
    .ok()
    .json();
    assert_eq!(v3["layers_built"], 1, "{v3:#}");
    assert_eq!(
        v3["images"][0]["pushed"][0]["blobs_uploaded"], 2,
        "layer and config: {v3:#}"
    );
    assert_eq!(v3["cache_export"]["entries_written"], 1, "{v3:#}");
    assert_eq!(v3["cache_export"]["entries_present"], 1, "{v3:#}");
    let log = r.access_log();
    assert_eq!(blob_gets(&log[before..]), 0);

    // A RUN step that misses on top of hits needs their bytes: exactly
    // those layers are downloaded (and checked), and the step sees them.
    let ctx5 = t.path().join("ctx5");
    run_project(&ctx5, &base);
    let mut def = fs::read_to_string(ctx5.join("imgbuild.toml")).unwrap();
    def.push_str(
        "[[images.app.layers]]\ncommands = [\"cat /built.txt /app/main.py > /both.txt\"]\n",
    );
    fs::write(ctx5.join("imgbuild.toml"), def).unwrap();
    let before = r.access_log().len();
    let v5 = build(
        &ctx5,
        &t.path().join("store5"),
        &strs(&[
            "--push",
            "--tag",
            &format!("{}/team/app:v5", r.host()),
            "--cache-from",
            &cache,
        ]),
    )
    .ok()
    .json();
    assert_eq!(v5["layers_built"], 1, "{v5:#}");
    assert_eq!(v5["cache_hits_registry"], 2, "{v5:#}");
    let log = r.access_log();
    assert_eq!(blob_gets(&log[before..]), 2, "{:#?}", &log[before..]);
}

/// A multi-stage Dockerfile with RUN steps: `mode=max` writes the builder
/// stage's steps too, `mode=min` only the image's; a fresh runner reading
/// the cache pushes the same image without downloading or uploading a
/// layer.
#[test]
fn a_dockerfile_build_shares_its_steps_through_the_cache() {
    if !support::pybase::debian_tools_present("a_dockerfile_build_shares_its_steps") {
        return;
    }
    let base = support::pybase::debian_python_base();
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dockerfile-multistage");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&fixture)
        .arg(&ctx)
        .status()
        .unwrap();
    assert!(status.success());
    let image = format!("{}/team/df:v1", r.host());
    let df = |store: &str, extra: &[String]| {
        ib(&["build", "-f"])
            .path_arg(&ctx.join("Dockerfile"))
            .path_arg(&ctx)
            .args(&[
                "--build-arg",
                &format!("BASE=oci:{}:latest", base.display()),
            ])
            .cache(&t.path().join(store))
            .json()
            .arg("-q")
            .args(extra)
            .run()
            .ok()
            .json()
    };
    let max = format!("type=registry,ref={}/team/cache,mode=max", r.host());
    let v1 = df(
        "store1",
        &strs(&["--push", "--tag", &image, "--cache-to", &max]),
    );
    let pushed = v1["images"][0]["pushed"][0]["digest"].clone();
    let written_max = v1["cache_export"]["entries_written"].as_u64().unwrap();
    // The same build, from its own store, into a `mode=min` cache.
    let min = format!("{}/team/cache-min", r.host());
    let v = df(
        "store1",
        &strs(&["--push", "--tag", &image, "--cache-to", &min]),
    );
    let written_min = v["cache_export"]["entries_written"].as_u64().unwrap();
    assert!(
        written_min >= 4 && written_max > written_min,
        "max {written_max}, min {written_min}: {v1:#}"
    );

    let before = r.access_log().len();
    let cache_from = format!("{}/team/cache", r.host());
    let v2 = df(
        "store2",
        &strs(&["--push", "--tag", &image, "--cache-from", &cache_from]),
    );
    assert_eq!(v2["layers_built"], 0, "{v2:#}");
    assert_eq!(v2["images"][0]["pushed"][0]["digest"], pushed);
    let log = r.access_log();
    assert_eq!(blob_gets(&log[before..]), 0, "{:#?}", &log[before..]);
    assert_eq!(reg::blob_uploads_completed(&log[before..]), 0);

    // With the `mode=min` cache the builder stage has no entries, but the
    // final stage's `COPY --from` is a hit: the stage is not built at all.
    let v = df(
        "store-min",
        &strs(&["--push", "--tag", &image, "--cache-from", &min]),
    );
    assert_eq!(v["layers_built"], 0, "{v:#}");
    assert_eq!(v["images"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["images"][0]["pushed"][0]["digest"], pushed);
}

/// Runners exporting different changes at the same time leave a cache
/// every later build reads: each change's steps are there, and the steps
/// they share were written once each (identical bytes when written twice).
#[test]
fn runners_writing_different_changes_at_once_leave_a_readable_cache() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let cache = format!("{}/team/cache", r.host());
    let ctxs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let ctx = t.path().join(format!("ctx{i}"));
            project(&ctx);
            write(&ctx, "app/main.py", &format!("print({i})\n"));
            ctx
        })
        .collect();
    let runners: Vec<_> = ctxs
        .iter()
        .enumerate()
        .map(|(i, ctx)| {
            ib(&["build"])
                .path_arg(ctx)
                .cache(&t.path().join(format!("writer{i}")))
                .json()
                .arg("-q")
                .args(&strs(&[
                    "--cache-to",
                    &cache,
                    "--output",
                    &format!("oci:{}", t.path().join(format!("out{i}")).display()),
                ]))
                .spawn()
        })
        .collect();
    let digests: Vec<Value> = runners
        .into_iter()
        .map(|run| run.wait().ok().json()["images"][0]["digest"].clone())
        .collect();
    // Three app layers and one shared data layer: four entries.
    let tags = skopeo_json(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{cache}"),
    ]);
    assert_eq!(tags["Tags"].as_array().unwrap().len(), 4, "{tags:#}");
    for (i, ctx) in ctxs.iter().enumerate() {
        let v = build(
            ctx,
            &t.path().join(format!("reader{i}")),
            &strs(&[
                "--cache-from",
                &cache,
                "--output",
                &format!("oci:{}", t.path().join(format!("read{i}")).display()),
            ]),
        )
        .ok()
        .json();
        assert_eq!(v["layers_built"], 0, "{v:#}");
        assert_eq!(v["images"][0]["digest"], digests[i], "{v:#}");
    }
}

/// The project CI teams deploy: a native Debian base with `apt_packages`,
/// a uv project (its wheel served by a local index), a `commands` layer
/// and a source folder.
fn deploy_project(dir: &Path, index: &pyfix::FileServer) {
    pyfix::served_project(
        &dir.join("proj"),
        index,
        "deployed",
        &[("tinydep", "1.0", &[])],
    );
    write(dir, "app/main.py", "import tinydep\n");
    write(dir, "app/util.py", "X = 1\n");
    write(
        dir,
        "imgbuild.toml",
        "[images.app]\nbase = { debian = \"bookworm\", packages = [\"python3\"] }\ntag = \"v1\"\n\n\
         [[images.app.layers]]\napt_packages = [\"jq\"]\n\n\
         [[images.app.layers]]\nuv_project = \"proj\"\n\n\
         [[images.app.layers]]\ncommands = [\"echo built > /built.txt\"]\n\n\
         [[images.app.layers]]\nsource_folder = \"app\"\ndst = \"/app\"\ncopy_contents_only = true\n",
    );
}

/// Four runners, four stores, one registry. Runner 1 builds the deployed
/// project and writes the cache; runners 2–4 start together with empty
/// stores: every step (Debian package and state layers, the uv project,
/// the RUN step, the source folder) is a registry hit, nothing is fetched
/// from the Debian mirror or the package index, no blob is downloaded or
/// uploaded, and they push runner 1's manifest. Then runner 3 changes a
/// source file: that layer alone is built and uploaded.
#[test]
fn four_runners_share_a_debian_uv_project_through_the_cache() {
    let test = "four_runners_share_a_debian_uv_project_through_the_cache";
    if !support::pybase::have_bookworm_sources(test) {
        return;
    }
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let index = pyfix::FileServer::start(&t.path().join("www"));
    let ctx = t.path().join("ctx");
    deploy_project(&ctx, &index);
    let cache = format!("{}/team/cache", r.host());
    let image = format!("{}/team/app:v1", r.host());
    // Each runner has a HOME and XDG_CACHE_HOME of its own, and its store
    // there (no --cache-dir).
    let runner = |n: &str, ctx: &Path, extra: &[&str]| {
        let home = t.path().join(n);
        fs::create_dir_all(&home).unwrap();
        ib(&["build"])
            .path_arg(ctx)
            .env("HOME", home.to_str().unwrap())
            .env("XDG_CACHE_HOME", home.join(".cache").to_str().unwrap())
            .json()
            .arg("-q")
            .args(&strs(extra))
    };
    let lock = ib(&["lock"])
        .path_arg(&ctx)
        .cache(&t.path().join("locker"))
        .run();
    assert_eq!(lock.code, 0, "{lock}");
    let v1 = runner(
        "runner1",
        &ctx,
        &["--locked", "--push", "--tag", &image, "--cache-to", &cache],
    )
    .run()
    .ok()
    .json();
    let built = v1["layers_built"].as_u64().unwrap();
    assert!(built >= 5, "packages, state, uv, RUN, source: {v1:#}");
    let pushed = v1["images"][0]["pushed"][0]["digest"].clone();
    let manifest1 = skopeo_raw(&r, "team/app:v1");
    assert!(v1["cache_export"]["entries_written"].as_u64().unwrap() >= built);
    assert!(
        t.path().join("runner1/.cache/imgbuild").is_dir(),
        "runner 1's store is under its XDG_CACHE_HOME"
    );

    let before = r.access_log().len();
    let wheels_before = index.requests().len();
    let runners: Vec<_> = ["runner2", "runner3", "runner4"]
        .iter()
        .map(|n| {
            runner(
                n,
                &ctx,
                &[
                    "--locked",
                    "--push",
                    "--tag",
                    &image,
                    "--cache-from",
                    &cache,
                ],
            )
            .spawn()
        })
        .collect();
    for run in runners {
        let v = run.wait().ok().json();
        assert_eq!(v["layers_built"], 0, "{v:#}");
        assert_eq!(v["cache_hits_registry"].as_u64(), Some(built), "{v:#}");
        assert_eq!(v["cache_misses_registry"], 0, "{v:#}");
        assert_eq!(v["images"][0]["pushed"][0]["digest"], pushed, "{v:#}");
        assert_eq!(v["bytes_uploaded"], 0, "{v:#}");
        let states = layer_cache_states(&v);
        assert_eq!(states.len() as u64, built, "{v:#}");
        assert!(states.iter().all(|s| s == "hit-registry"), "{states:?}");
    }
    let log = r.access_log();
    let since = &log[before..];
    assert_eq!(blob_gets(since), 0, "no blob downloaded: {since:#?}");
    assert_eq!(
        reg::blob_uploads_completed(since),
        0,
        "no blob uploaded: {since:#?}"
    );
    assert_eq!(index.requests().len(), wheels_before, "no wheel fetched");
    assert_eq!(
        skopeo_raw(&r, "team/app:v1"),
        manifest1,
        "the same manifest bytes"
    );

    // Runner 3 changes one source file: only the source layer is built,
    // and it is the only layer uploaded (with the new config).
    let ctx3 = t.path().join("ctx3");
    support::pybase::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&ctx)
            .arg(&ctx3),
    );
    write(&ctx3, "app/util.py", "X = 2\n");
    let before = r.access_log().len();
    let v3 = runner(
        "runner3",
        &ctx3,
        &[
            "--locked",
            "--push",
            "--tag",
            &format!("{}/team/app:v2", r.host()),
            "--cache-from",
            &cache,
            "--cache-to",
            &cache,
        ],
    )
    .run()
    .ok()
    .json();
    assert_eq!(v3["layers_built"], 1, "{v3:#}");
    assert_eq!(v3["cache_misses_registry"], 1, "{v3:#}");
    assert_eq!(v3["images"][0]["pushed"][0]["blobs_uploaded"], 2, "{v3:#}");
    assert_eq!(v3["cache_export"]["entries_written"], 1, "{v3:#}");
    let log = r.access_log();
    assert_eq!(blob_gets(&log[before..]), 0, "{:#?}", &log[before..]);
}

/// `skopeo inspect --raw` of `repo_tag` in `r`: the manifest's bytes.
fn skopeo_raw(r: &Registry, repo_tag: &str) -> Vec<u8> {
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/{repo_tag}", r.host()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// What planning a Python layer learns is shared too: the base's Python
/// (read from its layers) and the lock uv resolved for `pip_packages`. A
/// fresh runner building on a registry base downloads no blob (not even
/// the base's layers, which a scan would read) and runs no resolution:
/// every runner installs what runner 1 resolved.
#[test]
fn python_planning_results_come_from_the_cache() {
    let test = "python_planning_results_come_from_the_cache";
    if !support::pybase::python_tools_present(test) || !support::pybase::debian_tools_present(test)
    {
        return;
    }
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let base_ref = support::pybase::push_python_base(&r, "base/py:1");
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "imgbuild.toml",
        &format!(
            "[images.app]\nbase = \"{base_ref}\"\ntag = \"v1\"\n\n\
             [[images.app.layers]]\npip_packages = [\"six==1.16.0\"]\n"
        ),
    );
    let cache = format!("{}/team/cache", r.host());
    let image = format!("{}/team/py:v1", r.host());
    let v1 = build(
        &ctx,
        &t.path().join("store1"),
        &strs(&["--push", "--tag", &image, "--cache-to", &cache]),
    )
    .ok()
    .json();
    let pushed = v1["images"][0]["pushed"][0]["digest"].clone();
    let built = v1["layers_built"].as_u64().unwrap();
    assert!(built >= 1, "{v1:#}");
    // The layers, and two data entries (the base's Python, the lock).
    assert_eq!(
        v1["cache_export"]["entries_written"].as_u64(),
        Some(built + 2),
        "{v1:#}"
    );

    // Runner 2's uv answers --version and records anything else it is
    // asked to do.
    let calls = t.path().join("uv-calls");
    let real_uv =
        support::pybase::run(std::process::Command::new("sh").args(["-c", "command -v uv"]));
    let wrapper = write(
        t.path(),
        "uv-wrapper",
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] || echo \"$@\" >> {}\nexec {} \"$@\"\n",
            calls.display(),
            real_uv.trim()
        ),
    );
    set_mode(&wrapper, 0o755);
    let before = r.access_log().len();
    let v2 = ib(&["build"])
        .path_arg(&ctx)
        .cache(&t.path().join("store2"))
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &image, "--cache-from", &cache])
        .env("IMGBUILD_UV", wrapper.to_str().unwrap())
        .run()
        .ok()
        .json();
    assert_eq!(v2["layers_built"], 0, "{v2:#}");
    assert_eq!(v2["images"][0]["pushed"][0]["digest"], pushed, "{v2:#}");
    let log = r.access_log();
    let gets = reg::requests_matching(&log[before..], "GET", "/blobs/sha256:");
    assert_eq!(gets.len(), 1, "only the base's config: {gets:#?}");
    assert!(gets[0].path.starts_with("/v2/base/py/") && gets[0].bytes < 4096);
    assert!(
        !calls.exists(),
        "uv ran: {}",
        fs::read_to_string(&calls).unwrap_or_default()
    );

    // Exporting again writes nothing: the entries are all there.
    let v3 = build(
        &ctx,
        &t.path().join("store2"),
        &strs(&[
            "--push",
            "--tag",
            &image,
            "--cache-from",
            &cache,
            "--cache-to",
            &cache,
        ]),
    )
    .ok()
    .json();
    assert_eq!(v3["cache_export"]["entries_written"], 0, "{v3:#}");
    assert_eq!(v3["cache_export"]["bytes_uploaded"], 0, "{v3:#}");
}

//! imgbuild against a real registry (Debian's docker-registry) in four
//! modes, checked with skopeo, plus faults injected by a proxy.

mod support;

use serde_json::Value;
use std::fs;
use std::path::Path;
use support::proxy::{Fault, Proxy};
use support::registry::{self as reg, Registry, RegistryOptions};
use support::*;

/// Incompressible bytes, so the compressed layer is about as big.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A context with an imgbuild.toml of two file layers (one of `big`
/// incompressible bytes).
fn project(dir: &Path, big: usize, extra: &str) {
    write(dir, "app/main.py", "print('hello')\n");
    write(dir, "app/pkg/__init__.py", "");
    write_file(dir, "data/blob.bin", random_bytes(big), 0o644);
    let toml = format!(
        "[images.app]\nbase = \"scratch\"\ntag = \"v1\"\n{extra}\n[[images.app.layers]]\nsource_folder = \"app\"\ndst = \"/app\"\ncopy_contents_only = true\n[[images.app.layers]]\nsource_folder = \"data\"\ndst = \"/data\"\ncopy_contents_only = true\n[[images.app.layers]]\nenv = {{ A = \"1\" }}\n"
    );
    fs::write(dir.join("imgbuild.toml"), toml).unwrap();
}

/// Registry flags for imgbuild to reach `r`.
fn reg_args(r: &Registry) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(ca) = r.ca_cert() {
        a.push("--ca-cert".into());
        a.push(ca.display().to_string());
    }
    if let Some((u, _)) = r.creds() {
        a.push("--username".into());
        a.push(u);
        a.push("--password-stdin".into());
    }
    a
}

fn push_build(r: &Registry, ctx: &Path, cache: &Path, repo_tag: &str) -> Run {
    let mut ib = ib(&["build"])
        .path_arg(ctx)
        .cache(cache)
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/{repo_tag}", r.host())])
        .args(&reg_args(r));
    if let Some((_, pw)) = r.creds() {
        ib = ib.stdin(pw);
    }
    ib.run()
}

fn pushed_digest(v: &Value) -> String {
    v["images"][0]["pushed"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn roundtrip(opts: RegistryOptions) {
    require_tool("skopeo", "skopeo");
    let r = Registry::start(opts);
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 200_000, "");
    let cache = t.path().join("cache");
    let v = push_build(&r, t.path(), &cache, "team/app:v1").ok().json();
    let digest = pushed_digest(&v);
    assert_eq!(v["images"][0]["digest"].as_str().unwrap(), digest);
    // skopeo reads back exactly what was pushed.
    let seen = r.skopeo_inspect("team/app:v1").unwrap();
    assert_eq!(seen["Digest"].as_str().unwrap(), digest, "{seen:#}");
    assert_eq!(seen["Layers"].as_array().unwrap().len(), 2);
    // skopeo copies it out to a layout with the same manifest digest.
    let out = t.path().join("copied");
    let mut a = vec!["copy".to_string()];
    a.extend(r.skopeo_src_args());
    a.push(r.docker_ref("team/app:v1"));
    a.push(format!("oci:{}:v1", out.display()));
    reg::skopeo(&a).unwrap();
    let copied = Layout::new(&out).tagged("v1");
    assert_eq!(copied["digest"].as_str().unwrap(), digest);
    // imgbuild exists / inspect agree.
    let mut e = ib(&[
        "exists",
        &format!("{}/team/app:v1", r.host()),
        "--platform",
        "linux/amd64",
    ])
    .args(&reg_args(&r));
    if let Some((_, pw)) = r.creds() {
        e = e.stdin(pw);
    }
    assert_eq!(e.run().code, 0);
}

#[test]
fn push_roundtrip_plain_http() {
    roundtrip(RegistryOptions::plain());
}

#[test]
fn push_roundtrip_basic_auth() {
    roundtrip(RegistryOptions::basic("alice", "s3cret-pass"));
}

#[test]
fn push_roundtrip_tls_with_a_test_ca() {
    roundtrip(RegistryOptions::tls());
}

#[test]
fn push_roundtrip_bearer_tokens() {
    let r = Registry::start(RegistryOptions::bearer("bob", "t0ken-pass", 300, false));
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    let v = push_build(&r, t.path(), &t.path().join("cache"), "team/app:v1")
        .ok()
        .json();
    assert!(r.tokens_issued() > 0, "no token was asked for");
    assert_eq!(
        r.skopeo_inspect("team/app:v1").unwrap()["Digest"]
            .as_str()
            .unwrap(),
        pushed_digest(&v)
    );
}

#[test]
fn wrong_credentials_fail_clearly_without_leaking_them() {
    let r = Registry::start(RegistryOptions::basic("alice", "right-pass"));
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    let run = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .args(&[
            "--push",
            "--tag",
            &format!("{}/team/app:v1", r.host()),
            "--username",
            "alice",
            "--password-stdin",
        ])
        .stdin("wrong-pass-XYZ")
        .run();
    assert_eq!(run.code, 6, "{run}");
    let msg = run.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("401") && msg.contains(&r.host()) && msg.contains("team/app"),
        "{msg}"
    );
    assert!(
        !run.stdout.contains("wrong-pass-XYZ") && !run.stderr.contains("wrong-pass-XYZ"),
        "{run}"
    );
    // Nothing was tagged.
    assert!(r.skopeo_inspect("team/app:v1").is_err());
}

#[test]
fn tls_without_the_ca_is_refused() {
    let r = Registry::start(RegistryOptions::tls());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    let run = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .args(&["--push", "--tag", &format!("{}/team/app:v1", r.host())])
        .run();
    assert_eq!(run.code, 6, "{run}");
}

#[test]
fn repushing_an_unchanged_image_uploads_nothing() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 100_000, "");
    let cache = t.path().join("cache");
    push_build(&r, t.path(), &cache, "team/app:v1").ok();
    let before = reg::blob_upload_requests(&r.access_log());
    assert!(before > 0);
    let v = push_build(&r, t.path(), &cache, "team/app:v1").ok().json();
    assert_eq!(v["bytes_uploaded"], 0, "{v:#}");
    assert_eq!(
        reg::blob_upload_requests(&r.access_log()),
        before,
        "a blob was uploaded again"
    );
    // Also through `imgbuild push` from a layout.
    let out = t.path().join("out");
    ib(&["build"])
        .path_arg(t.path())
        .cache(&cache)
        .oci_out(&out)
        .arg("-q")
        .run()
        .ok();
    let p = ib(&[
        "push",
        &format!("oci:{}:v1", out.display()),
        &format!("{}/team/app:v1", r.host()),
    ])
    .cache(&cache)
    .json()
    .run()
    .ok()
    .json();
    assert_eq!(p["bytes_uploaded"], 0, "{p:#}");
    assert_eq!(reg::blob_upload_requests(&r.access_log()), before);
}

#[test]
fn a_base_pushed_by_skopeo_is_mounted_or_skipped_not_uploaded() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    // A base image, built locally and pushed with skopeo.
    let base_ctx = t.path().join("base");
    project(&base_ctx, 300_000, "");
    let base_out = t.path().join("base-out");
    ib(&["build"])
        .path_arg(&base_ctx)
        .cache(&t.path().join("c0"))
        .oci_out(&base_out)
        .arg("-q")
        .run()
        .ok();
    r.skopeo_push(&format!("oci:{}:v1", base_out.display()), "lib/base:v1")
        .unwrap();
    let bl = Layout::new(&base_out);
    let base_manifest = bl.blob_json(bl.tagged("v1")["digest"].as_str().unwrap());
    let base_layers: Vec<String> = base_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(base_layers.len(), 2);
    // A child on that base, from a cold store, pushed to another repository.
    let child = t.path().join("child");
    write(&child, "src/extra.txt", "child layer\n");
    fs::write(
        child.join("imgbuild.toml"),
        format!(
            "[images.child]\nbase = \"{}/lib/base:v1\"\ntag = \"v1\"\n[[images.child.layers]]\nsource_folder = \"src\"\ndst = \"/srv\"\n",
            r.host()
        ),
    )
    .unwrap();
    let cache = t.path().join("c1");
    let v = push_build(&r, &child, &cache, "team/child:v1").ok().json();
    let layers = v["images"][0]["platforms"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{v:#}");
    assert_eq!(layers[0]["cache"], "base");
    // The base layers were never downloaded into the store...
    for l in layers.iter().filter(|l| l["cache"] == "base") {
        let hex = l["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        assert!(
            !cache.join("blobs/sha256").join(hex).exists(),
            "base layer {hex} was downloaded"
        );
    }
    // ...nor uploaded: only the new layer and the config went up.
    let log = r.access_log();
    let child_uploads: Vec<_> = log
        .iter()
        .filter(|e| e.method == "PUT" && e.path.starts_with("/v2/team/child/blobs/uploads/"))
        .collect();
    assert_eq!(child_uploads.len(), 2, "{child_uploads:#?}");
    assert!(reg::blob_mounts(&log) >= 1, "no cross-repository mount");
    let seen = r.skopeo_inspect("team/child:v1").unwrap();
    assert_eq!(seen["Digest"].as_str().unwrap(), pushed_digest(&v));
    // A local output of the same child does download and verify the base layers.
    let out = t.path().join("child-out");
    ib(&["build"])
        .path_arg(&child)
        .cache(&cache)
        .oci_out(&out)
        .arg("-q")
        .run()
        .ok();
    let lo = Layout::new(&out);
    let m = lo.blob_json(lo.tagged("v1")["digest"].as_str().unwrap());
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        let d = l["digest"].as_str().unwrap();
        assert_eq!(format!("sha256:{}", sha256_hex(&lo.blob(d))), d);
    }
}

#[test]
fn auto_tags_already_pushed_are_up_to_date() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, &format!("registry = \"{}/team\"", r.host()));
    let toml = fs::read_to_string(t.path().join("imgbuild.toml"))
        .unwrap()
        .replace("tag = \"v1\"", "tag = \"auto\"");
    fs::write(t.path().join("imgbuild.toml"), toml).unwrap();
    let cache = t.path().join("cache");
    let first = ib(&["build", "--push"])
        .path_arg(t.path())
        .cache(&cache)
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    assert_eq!(first["images"][0]["up_to_date"], false);
    // Another machine (empty store) finds the tag present and builds nothing.
    let second = ib(&["build", "--push"])
        .path_arg(t.path())
        .cache(&t.path().join("other"))
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    assert_eq!(second["images"][0]["up_to_date"], true, "{second:#}");
    assert_eq!(second["layers_built"], 0);
}

#[test]
fn exists_distinguishes_present_absent_and_error() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    push_build(&r, t.path(), &t.path().join("cache"), "team/app:v1").ok();
    let host = r.host();
    assert_eq!(
        ib(&["exists", &format!("{host}/team/app:v1")]).run().code,
        0
    );
    assert_eq!(
        ib(&[
            "exists",
            &format!("{host}/team/app:v1"),
            "--platform",
            "linux/amd64"
        ])
        .run()
        .code,
        0
    );
    assert_eq!(
        ib(&[
            "exists",
            &format!("{host}/team/app:v1"),
            "--platform",
            "linux/arm64"
        ])
        .run()
        .code,
        1
    );
    assert_eq!(
        ib(&["exists", &format!("{host}/team/app:nope")]).run().code,
        1
    );
    assert_eq!(
        ib(&["exists", &format!("{host}/team/other:v1")]).run().code,
        1
    );
    // Nothing listening: an error, never "present" nor "absent".
    let dead = format!("127.0.0.1:{}", reg::free_port());
    assert_eq!(
        ib(&["exists", &format!("{dead}/team/app:v1")]).run().code,
        6
    );
    // Inspect reads the manifest and config back.
    let v = ib(&["inspect", &format!("{host}/team/app:v1")])
        .run()
        .ok()
        .json();
    assert_eq!(v["config"]["config"]["Env"][0], "A=1", "{v:#}");
}

#[test]
fn push_from_archives() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    let cache = t.path().join("cache");
    for (kind, file) in [("oci-archive", "a.tar"), ("docker-archive", "d.tar")] {
        let f = t.path().join(file);
        ib(&["build"])
            .path_arg(t.path())
            .cache(&cache)
            .args(&["--output", &format!("{kind}:{}", f.display())])
            .arg("-q")
            .run()
            .ok();
        let p = ib(&[
            "push",
            &format!("{kind}:{}", f.display()),
            &format!("{}/arch/{kind}:v1", r.host()),
        ])
        .cache(&t.path().join("fresh"))
        .json()
        .run()
        .ok()
        .json();
        let seen = r.skopeo_inspect(&format!("arch/{kind}:v1")).unwrap();
        assert_eq!(seen["Digest"], p["digest"], "{kind}");
        assert_eq!(seen["Layers"].as_array().unwrap().len(), 2, "{kind}");
    }
}

/// Pushes through the proxy with `faults`; the push must succeed and the
/// result must read back intact.
fn push_through_faults(faults: Vec<Fault>, big: usize) -> (Proxy, Registry, Value) {
    let r = Registry::start(RegistryOptions::plain());
    let proxy = Proxy::start(&r.host());
    for f in faults {
        proxy.add_fault(f);
    }
    let t = tempfile::tempdir().unwrap();
    project(t.path(), big, "");
    let run = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/app:v1", proxy.host())])
        .run();
    assert_eq!(run.code, 0, "{run}");
    let v = run.json();
    assert!(proxy.faults_fired() > 0, "no fault fired");
    let seen = r.skopeo_inspect("team/app:v1").unwrap();
    assert_eq!(seen["Digest"].as_str().unwrap(), pushed_digest(&v));
    // Every blob the tag points at is complete.
    let mut a = vec!["copy".to_string()];
    a.extend(r.skopeo_src_args());
    a.push(r.docker_ref("team/app:v1"));
    let out = t.path().join("check");
    a.push(format!("oci:{}:v1", out.display()));
    reg::skopeo(&a).unwrap();
    (proxy, r, v)
}

#[test]
fn a_500_is_retried() {
    push_through_faults(
        vec![Fault::status("PUT", "/blobs/uploads/", 500, None, 1)],
        50_000,
    );
}

#[test]
fn a_429_with_retry_after_is_honoured() {
    let t0 = std::time::Instant::now();
    push_through_faults(
        vec![Fault::status("HEAD", "/blobs/", 429, Some(1), 1)],
        50_000,
    );
    assert!(
        t0.elapsed().as_secs_f64() >= 1.0,
        "Retry-After was not waited for"
    );
}

#[test]
fn a_connection_dropped_mid_upload_is_resumed() {
    // 20 MB: a chunked upload; the first PATCH is cut after 3 MB.
    let (proxy, _r, v) = push_through_faults(
        vec![Fault::drop_mid_body("PATCH", "/blobs/uploads/", 3 << 20, 1)],
        20 << 20,
    );
    assert!(proxy.count("PATCH", "/blobs/uploads/") >= 2);
    assert!(v["bytes_uploaded"].as_u64().unwrap() > 0);
}

#[test]
fn a_connection_dropped_during_a_small_upload_restarts_it() {
    push_through_faults(
        vec![Fault::drop_mid_body("PUT", "/blobs/uploads/", 1000, 1)],
        200_000,
    );
}

#[test]
fn an_expired_token_is_refreshed_mid_push() {
    // Tokens live 2 s; a Retry-After of 3 s in the middle forces a refresh.
    let r = Registry::start(RegistryOptions::bearer("bob", "pw", 2, false));
    let proxy = Proxy::start(&r.host());
    proxy.add_fault(Fault::status("PUT", "/blobs/uploads/", 429, Some(3), 1));
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 50_000, "");
    let run = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .arg("-q")
        .args(&[
            "--push",
            "--tag",
            &format!("{}/team/app:v1", proxy.host()),
            "--username",
            "bob",
            "--password-stdin",
        ])
        .stdin("pw")
        .run();
    assert_eq!(run.code, 0, "{run}");
    assert!(
        r.tokens_issued() >= 2,
        "the token was not refreshed ({} issued)",
        r.tokens_issued()
    );
    assert_eq!(
        r.skopeo_inspect("team/app:v1").unwrap()["Digest"]
            .as_str()
            .unwrap(),
        pushed_digest(&run.json())
    );
}

#[test]
fn a_failing_push_never_tags_an_incomplete_image() {
    let r = Registry::start(RegistryOptions::plain());
    let proxy = Proxy::start(&r.host());
    // Every upload of the big layer fails: the push must fail, no tag appears.
    proxy.add_fault(Fault::status("PATCH", "/blobs/uploads/", 500, None, 1000));
    proxy.add_fault(Fault::status("PUT", "/blobs/uploads/", 500, None, 1000));
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 20 << 20, "");
    let cache = t.path().join("cache");
    let run = ib(&["build"])
        .path_arg(t.path())
        .cache(&cache)
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/app:v1", proxy.host())])
        .run();
    assert_eq!(run.code, 6, "{run}");
    assert!(
        r.skopeo_inspect("team/app:v1").is_err(),
        "a tag points at an incomplete image"
    );
    assert_eq!(reg::manifest_puts(&r.access_log()), 0);
    // The store is intact: the same build then pushes fine without rebuilding.
    proxy.clear_faults();
    let v = ib(&["build"])
        .path_arg(t.path())
        .cache(&cache)
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/app:v1", proxy.host())])
        .run()
        .ok()
        .json();
    assert_eq!(v["layers_built"], 0);
    assert!(
        fs::read_dir(cache.join("tmp")).unwrap().next().is_none(),
        "temp files left in the store"
    );
}

#[test]
fn docker_media_types_on_request() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(
        t.path(),
        1000,
        "platforms = [\"linux/amd64\", \"linux/arm64\"]",
    );
    let run = ib(&["build", "--media-types", "docker"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/app:v1", r.host())])
        .run()
        .ok();
    let v = run.json();
    assert_eq!(
        v["images"][0]["media_type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let mut a = vec!["inspect".to_string(), "--raw".to_string()];
    a.extend(r.skopeo_inspect_args());
    a.push(r.docker_ref("team/app:v1"));
    let raw: Value = serde_json::from_str(&reg::skopeo(&a).unwrap()).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let m = r.skopeo_inspect("team/app:v1").unwrap();
    assert_eq!(m["Layers"].as_array().unwrap().len(), 2);
    // zstd layers have no Docker media type: a clear usage error.
    let bad = ib(&["build", "--media-types", "docker", "--compression", "zstd"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .args(&["--push", "--tag", &format!("{}/team/app:v2", r.host())])
        .run();
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn credentials_come_from_docker_config_and_credential_helpers() {
    let r = Registry::start(RegistryOptions::basic("carol", "h3lper-pass"));
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    let cfg_dir = t.path().join("docker");
    fs::create_dir_all(&cfg_dir).unwrap();
    // 1. `auths` with base64 user:password.
    let auth = {
        use std::io::Write;
        let mut child = std::process::Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"carol:h3lper-pass")
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    fs::write(
        cfg_dir.join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            r.host()
        ),
    )
    .unwrap();
    let push = |tag: &str, path_env: Option<&str>| {
        let mut b = ib(&["build"])
            .path_arg(t.path())
            .cache(&t.path().join("cache"))
            .json()
            .arg("-q")
            .args(&["--push", "--tag", &format!("{}/team/app:{tag}", r.host())])
            .env("DOCKER_CONFIG", cfg_dir.to_str().unwrap());
        if let Some(p) = path_env {
            b = b.env("PATH", p);
        }
        b.run()
    };
    push("a", None).ok();
    // 2. A credential helper named in credHelpers.
    let bin = t.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-imgbuildtest");
    fs::write(
        &helper,
        "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"carol\",\"Secret\":\"h3lper-pass\"}' \"$server\"\n",
    )
    .unwrap();
    set_mode(&helper, 0o755);
    fs::write(
        cfg_dir.join("config.json"),
        format!(
            "{{\"credHelpers\": {{\"{}\": \"imgbuildtest\"}}}}",
            r.host()
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    push("b", Some(&path)).ok();
    // 3. Without credentials: 401, exit 6.
    fs::write(cfg_dir.join("config.json"), "{}").unwrap();
    assert_eq!(push("c", None).code, 6);
    assert!(r.skopeo_inspect("team/app:a").is_ok() && r.skopeo_inspect("team/app:b").is_ok());
}

#[test]
fn several_tags_and_registries_in_one_run_and_insecure_tls() {
    let a = Registry::start(RegistryOptions::plain());
    let b = Registry::start(RegistryOptions::tls());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    // b's certificate is not trusted: --insecure-registry skips the check for it.
    let v = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/app:v1", a.host())])
        .args(&["--tag", &format!("{}/team/app:stable", a.host())])
        .args(&["--tag", &format!("{}/mirror/app:v1", b.host())])
        .args(&["--insecure-registry", &b.host()])
        .run()
        .ok()
        .json();
    let digest = pushed_digest(&v);
    assert_eq!(v["images"][0]["pushed"].as_array().unwrap().len(), 3);
    for (r, rt) in [
        (&a, "team/app:v1"),
        (&a, "team/app:stable"),
        (&b, "mirror/app:v1"),
    ] {
        assert_eq!(
            r.skopeo_inspect(rt).unwrap()["Digest"].as_str().unwrap(),
            digest,
            "{rt}"
        );
    }
}

#[test]
fn debian_base_comes_from_a_mirror_when_asked() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    // Stand-in for python:3.11-slim-bookworm in the mirror.
    project(&t.path().join("base"), 1000, "");
    push_build(
        &r,
        &t.path().join("base"),
        &t.path().join("c0"),
        "library/python:3.11-slim-bookworm",
    )
    .ok();
    let child = t.path().join("child");
    write(&child, "src/app.py", "print(1)\n");
    fs::write(
        child.join("imgbuild.toml"),
        "[images.app]\nbase = \"debian\"\npython = \"3.11\"\ntag = \"v1\"\n[[images.app.layers]]\nsource_folder = \"src\"\n",
    )
    .unwrap();
    let out = t.path().join("out");
    let v = ib(&["build", "--base-registry-mirror", &r.host()])
        .path_arg(&child)
        .cache(&t.path().join("c1"))
        .oci_out(&out)
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    let layers = v["images"][0]["platforms"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{v:#}");
    assert_eq!(layers[0]["cache"], "base");
    assert!(
        layers[0]["step"]
            .as_str()
            .unwrap()
            .contains("library/python:3.11-slim-bookworm"),
        "{v:#}"
    );
    // The base's env (A=1) is inherited.
    let m = ib(&[
        "inspect",
        &format!("oci:{}:v1", out.display()),
        "--format",
        "json",
    ])
    .run()
    .ok()
    .json();
    assert_eq!(
        m["manifests"][0]["config"]["config"]["Env"][0], "A=1",
        "{m:#}"
    );
}

/// `COPY --from=IMAGE` of a Dockerfile takes files from a registry image
/// (a stage of its own, pulled only as far as needed), with a wildcard and
/// the result pushed back and read with skopeo.
#[test]
fn dockerfile_copy_from_a_registry_image() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    project(&src, 1000, "");
    let run = push_build(&r, &src, &t.path().join("cache"), "team/tools:v1");
    assert_eq!(run.code, 0, "{run}");
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM scratch\nCOPY --from={}/team/tools:v1 /app/*.py /copied/\nCOPY --from={}/team/tools:v1 /data/blob.bin /blob.bin\n",
            r.host(),
            r.host()
        ),
    );
    let out = t.path().join("out");
    let run = ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&t.path().join("cache2"))
        .oci_out(&out)
        .json()
        .arg("-q")
        .args(&["--push", "--tag", &format!("{}/team/copied:v1", r.host())])
        .run();
    assert_eq!(run.code, 0, "{run}");
    let mut a = vec!["copy".to_string()];
    a.extend(r.skopeo_src_args());
    a.push(r.docker_ref("team/copied:v1"));
    let check = t.path().join("check");
    a.push(format!("oci:{}:v1", check.display()));
    reg::skopeo(&a).unwrap();
    let root = umoci_unpack(&check, "v1", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(root.join("copied/main.py")).unwrap(),
        "print('hello')\n"
    );
    assert_eq!(
        fs::read(root.join("blob.bin")).unwrap(),
        fs::read(src.join("data/blob.bin")).unwrap()
    );
    assert!(!root.join("app").exists() && !root.join("copied/pkg").exists());
}

/// The path of an example program built with the tests.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let p = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: scripts/test.sh builds it with `cargo build --examples`",
        p.display()
    );
    p
}

/// `examples/build_and_push.rs` builds a definition and pushes it with the
/// library's public API only: the registry holds the image its report
/// names, and the command line built the same image.
#[test]
fn the_library_example_builds_and_pushes() {
    require_tool("skopeo", "skopeo");
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 50_000, "");
    let target = format!("{}/lib/app:v1", r.host());
    let out = std::process::Command::new(example("build_and_push"))
        .arg(t.path())
        .arg(&target)
        .arg(t.path().join("store"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "example failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = pushed_digest(&v);
    assert_eq!(v["images"][0]["pushed"][0]["reference"], target.as_str());
    assert_eq!(v["layers_built"], 2, "{v:#}");
    assert!(
        stderr.contains(&format!("pushing to {}/lib/app", r.host())),
        "progress reached the caller's sink: {stderr}"
    );
    let inspected = r.skopeo_inspect("lib/app:v1").unwrap();
    assert_eq!(
        inspected["Digest"],
        digest.as_str(),
        "skopeo sees the pushed image"
    );
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
    let cli = push_build(&r, t.path(), &t.path().join("cache"), "cli/app:v1")
        .ok()
        .json();
    assert_eq!(
        pushed_digest(&cli),
        digest,
        "the same image as the command line's"
    );
}

/// `-t` names the image as with `docker buildx build`: the layout carries
/// every tag (and the full name), a docker-archive lists them as its
/// repository tags, and nothing reaches the registry without `--push`.
#[test]
fn a_tag_names_the_output_and_pushes_nothing_without_push() {
    require_tool("skopeo", "skopeo");
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    project(t.path(), 1000, "");
    let before = r.access_log().len();
    let names = [
        format!("{}/team/app:v1", r.host()),
        format!("{}/team/app:stable", r.host()),
    ];
    let out = t.path().join("out");
    let v = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .oci_out(&out)
        .json()
        .arg("-q")
        .args(&["-t", &names[0], "--tag", &names[1]])
        .run()
        .ok()
        .json();
    let digest = v["images"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(v["images"][0]["reference"], names[0].as_str(), "{v}");
    assert_eq!(v["images"][0]["pushed"], serde_json::json!([]), "{v}");
    let index: Value = serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let tagged: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let a = &m["annotations"];
            assert_eq!(m["digest"], digest.as_str());
            (
                a["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .into(),
                a["io.containerd.image.name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        tagged,
        [
            ("v1".to_string(), names[0].clone()),
            ("stable".to_string(), names[1].clone())
        ]
    );
    for tag in ["v1", "stable"] {
        let m = skopeo_json(&["inspect", &format!("oci:{}:{tag}", out.display())]);
        assert_eq!(m["Digest"], digest.as_str(), "{m}");
    }
    // A docker-archive names the image by every tag.
    let archive = t.path().join("app.tar");
    ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .args(&["--output", &format!("docker-archive:{}", archive.display())])
        .arg("-q")
        .args(&["-t", &names[0], "-t", &names[1]])
        .run()
        .ok();
    let m = skopeo_json(&[
        "inspect",
        &format!("docker-archive:{}:{}", archive.display(), names[1]),
    ]);
    assert_eq!(m["Layers"].as_array().unwrap().len(), 2, "{m}");
    assert_eq!(
        r.access_log().len(),
        before,
        "no request without --push:\n{}",
        r.log_tail(20)
    );
    // A digest is no name.
    let bad = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("cache"))
        .args(&[
            "-t",
            &format!("{}/team/app@sha256:{}", r.host(), "a".repeat(64)),
        ])
        .run();
    assert_eq!(bad.code, 2, "{bad}");
}

/// A registry that does not know a manifest's blob yet (another runner is
/// writing the same blob, or its storage is only eventually consistent)
/// is asked again: the manifest lands once the blob is there. A blob that
/// never arrives still fails, with the registry's own error.
#[test]
fn a_manifest_whose_blob_lands_a_moment_later_is_pushed() {
    use imgbuild::digest::Digest;
    use imgbuild::registry::{Client, ClientOptions, Reference};
    let r = Registry::start(RegistryOptions::plain());
    let client = Client::new(ClientOptions {
        insecure: vec![r.host()],
        ..ClientOptions::default()
    })
    .unwrap();
    let target = Reference::parse(&format!("{}/team/late:v1", r.host())).unwrap();
    let t = tempfile::tempdir().unwrap();
    let manifest_for = |config: &[u8]| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": Digest::of(config).oci(),
                "size": config.len(),
            },
            "layers": [],
        }))
        .unwrap()
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let path = t.path().join("config.json");
    fs::write(&path, config).unwrap();
    let manifest = manifest_for(config);

    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let d = Digest::of(config);
            let at = client
                .start_upload(&target, &d, None)
                .unwrap()
                .expect("not there yet");
            client
                .upload(&target, &d, &path, config.len() as u64, None, at)
                .unwrap();
        });
        client
            .put_manifest(
                &target,
                "v1",
                &manifest,
                "application/vnd.oci.image.manifest.v1+json",
            )
            .expect("pushed once the config is there");
    });
    // The registry refused it first: the push really waited for the blob.
    let log = r.access_log();
    let puts: Vec<u16> = reg::requests_matching(&log, "PUT", "/v2/team/late/manifests/v1")
        .iter()
        .map(|e| e.status)
        .collect();
    assert!(puts.len() >= 2 && puts[0] == 400, "{puts:?}");
    assert_eq!(puts.last(), Some(&201), "{puts:?}");
    let raw = reg::skopeo(&[
        "inspect".to_string(),
        "--raw".to_string(),
        "--tls-verify=false".to_string(),
        r.docker_ref("team/late:v1"),
    ])
    .unwrap();
    assert_eq!(raw.as_bytes(), &manifest[..]);

    let never = manifest_for(b"{\"never\":\"uploaded\"}");
    let e = client
        .put_manifest(
            &target,
            "v2",
            &never,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("BLOB_UNKNOWN"), "{e}");
}

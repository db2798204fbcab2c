//! `imgbuild build` with `docker buildx build`'s flags: each flag's effect,
//! read back with real clients (skopeo, umoci, tar) and a real registry.
//! Dockerfiles here start from scratch (COPY and config only), so no base
//! image or RUN sandbox is needed.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use support::registry::{Registry, RegistryOptions};
use support::*;

/// A context with files, a folder, an executable and a symlink, and a
/// Dockerfile that copies them onto scratch and sets a label.
fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    write(&ctx, "app/hello.txt", "hello\n");
    write_file(&ctx, "app/bin/run.sh", "#!/bin/sh\necho run\n", 0o755);
    symlink(&ctx, "app/link", "hello.txt");
    write(&ctx, "etc/conf", "a=1\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nCOPY app/ /app/\nCOPY etc/conf /etc/conf\nLABEL from.dockerfile=yes kept=1\n",
    );
    ctx
}

/// `imgbuild build -f CTX/Dockerfile CTX --cache-dir STORE EXTRA…`.
fn build(ctx: &Path, store: &Path, extra: &[&str]) -> Run {
    ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(ctx)
        .cache(store)
        .args(extra)
        .run()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test paths")
}

/// Every entry below `root`: path → (kind, mode, uid, gid, contents or
/// link target).
fn tree(root: &Path) -> BTreeMap<String, (char, u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let (kind, body) = if m.file_type().is_symlink() {
                (
                    'l',
                    fs::read_link(&p)
                        .unwrap()
                        .display()
                        .to_string()
                        .into_bytes(),
                )
            } else if m.is_dir() {
                todo.push(p.clone());
                ('d', Vec::new())
            } else {
                ('f', fs::read(&p).unwrap())
            };
            out.insert(rel, (kind, m.mode() & 0o7777, m.uid(), m.gid(), body));
        }
    }
    out
}

#[test]
fn output_local_writes_the_tree_umoci_unpacks() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let layout = t.path().join("layout");
    build(&ctx, &store, &["-o", &format!("oci:{}", s(&layout))]).ok();
    let rootfs = umoci_unpack(&layout, "latest", &t.path().join("bundle"));
    let want = tree(&rootfs);
    assert!(want.contains_key("app/bin/run.sh"), "{want:?}");
    // buildx's CSV form and its shorthand (a bare folder) alike.
    let local = t.path().join("local");
    build(
        &ctx,
        &store,
        &["--output", &format!("type=local,dest={}", s(&local))],
    )
    .ok();
    assert_eq!(tree(&local), want);
    let short = t.path().join("short");
    build(&ctx, &store, &["-o", s(&short)]).ok();
    assert_eq!(tree(&short), want);
    // Not to standard output: a folder cannot go there.
    let bad = build(&ctx, &store, &["-o", "type=local,dest=-"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("type=tar,dest=-"), "{bad}");
}

#[test]
fn output_tar_writes_the_tree_as_one_file_or_to_stdout() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let file = t.path().join("fs.tar");
    build(
        &ctx,
        &store,
        &["-o", &format!("type=tar,dest={}", s(&file))],
    )
    .ok();
    let listed = tool("tar", &["-tvf", s(&file)]);
    assert!(listed.contains("app/bin/run.sh"), "{listed}");
    assert!(listed.contains("-rwxr-xr-x"), "{listed}");
    assert!(listed.contains("app/link -> hello.txt"), "{listed}");
    let x = t.path().join("x");
    fs::create_dir(&x).unwrap();
    tool("tar", &["-xf", s(&file), "-C", s(&x)]);
    assert_eq!(fs::read_to_string(x.join("etc/conf")).unwrap(), "a=1\n");
    // `-o -`: the same tar on standard output, and nothing else there.
    let run = build(&ctx, &store, &["-o", "-"]).ok();
    assert_eq!(
        run.stdout.as_bytes(),
        fs::read(&file).unwrap(),
        "{}",
        run.stderr
    );
}

#[test]
fn output_oci_and_docker_archives_and_a_layout_folder() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let oci = t.path().join("img.tar");
    let v = build(
        &ctx,
        &store,
        &[
            "--format",
            "json",
            "-o",
            &format!("type=oci,dest={}", s(&oci)),
        ],
    )
    .ok()
    .json();
    let digest = v["images"][0]["digest"].as_str().unwrap().to_string();
    let m = skopeo_json(&["inspect", &format!("oci-archive:{}", s(&oci))]);
    assert_eq!(m["Digest"], digest.as_str(), "{m}");
    // tar=false: a layout folder.
    let dir = t.path().join("lay");
    build(
        &ctx,
        &store,
        &["-o", &format!("type=oci,dest={},tar=false", s(&dir))],
    )
    .ok();
    let m = skopeo_json(&["inspect", &format!("oci:{}:latest", s(&dir))]);
    assert_eq!(m["Digest"], digest.as_str(), "{m}");
    // type=docker with a name: `docker load`'s format, named so.
    let docker = t.path().join("d.tar");
    build(
        &ctx,
        &store,
        &[
            "-o",
            &format!(
                "type=docker,dest={},name=example.com/team/app:v2",
                s(&docker)
            ),
        ],
    )
    .ok();
    let m = skopeo_json(&[
        "inspect",
        &format!("docker-archive:{}:example.com/team/app:v2", s(&docker)),
    ]);
    assert_eq!(m["Layers"].as_array().unwrap().len(), 2, "{m}");
    // Without dest= a docker output would need a daemon.
    let bad = build(&ctx, &store, &["-o", "type=docker"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("docker load"), "{bad}");
}

#[test]
fn output_registry_and_image_push_and_a_tag_alone_pushes_nothing() {
    require_tool("skopeo", "skopeo");
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let before = r.access_log().len();
    // -t with a local output: named, not pushed.
    let lay = t.path().join("lay");
    let name = format!("{}/team/app:v1", r.host());
    build(
        &ctx,
        &store,
        &[
            "-t",
            &name,
            "-o",
            &format!("type=oci,dest={},tar=false", s(&lay)),
        ],
    )
    .ok();
    assert_eq!(Layout::new(&lay).tags(), vec!["v1".to_string()]);
    assert_eq!(
        r.access_log().len(),
        before,
        "no request without a push:\n{}",
        r.log_tail(20)
    );
    let v = build(
        &ctx,
        &store,
        &[
            "--format",
            "json",
            "-o",
            &format!("type=registry,name={name}"),
        ],
    )
    .ok()
    .json();
    let digest = v["images"][0]["digest"].as_str().unwrap();
    assert_eq!(r.skopeo_inspect("team/app:v1").unwrap()["Digest"], digest);
    // type=image pushes with push=true, to every name (quoted for the commas).
    let out = format!(
        "type=image,\"name={h}/team/app:v2,{h}/other/app:v3\",push=true",
        h = r.host()
    );
    build(&ctx, &store, &["-o", &out]).ok();
    for rt in ["team/app:v2", "other/app:v3"] {
        assert_eq!(r.skopeo_inspect(rt).unwrap()["Digest"], digest, "{rt}");
    }
    // A label changes the config, and the pushed image is that one.
    let out = format!("type=registry,name={}/team/app:v4", r.host());
    let v = build(
        &ctx,
        &store,
        &["--format", "json", "-o", &out, "--label", "pushed=yes"],
    )
    .ok()
    .json();
    let m = r.skopeo_inspect("team/app:v4").unwrap();
    assert_eq!(m["Digest"], v["images"][0]["digest"], "{m}");
    assert_ne!(m["Digest"], digest, "{m}");
    assert_eq!(m["Labels"]["pushed"], "yes", "{m}");
    assert_eq!(m["Labels"]["from.dockerfile"], "yes", "{m}");
}

#[test]
fn load_is_refused_with_the_archive_route() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let run = build(&ctx, &t.path().join("store"), &["--load"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("type=docker,dest="), "{run}");
    assert!(run.stderr.contains("docker load"), "{run}");
    assert!(!t.path().join("imgbuild-out").exists());
}

#[test]
fn labels_go_to_the_config_over_the_dockerfiles() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let out = t.path().join("out");
    build(
        &ctx,
        &t.path().join("store"),
        &[
            "-o",
            &format!("oci:{}", s(&out)),
            "--label",
            "from.dockerfile=cli",
            "--label",
            "org.opencontainers.image.title=app",
        ],
    )
    .ok();
    let (m, c) = Layout::new(&out).image("latest");
    let labels = &c["config"]["Labels"];
    assert_eq!(labels["from.dockerfile"], "cli", "{c}");
    assert_eq!(labels["kept"], "1", "{c}");
    assert_eq!(labels["org.opencontainers.image.title"], "app", "{c}");
    // The manifest names the new config, whose bytes match its digest.
    let cd = m["config"]["digest"].as_str().unwrap();
    assert_eq!(
        format!("sha256:{}", sha256_hex(&Layout::new(&out).blob(cd))),
        cd
    );
    assert_eq!(Layout::new(&out).verify(0), 2);
}

#[test]
fn annotations_reach_manifests_index_and_descriptors() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let one = t.path().join("one");
    build(
        &ctx,
        &store,
        &[
            "-o",
            &format!("oci:{}", s(&one)),
            "--annotation",
            "org.example.plain=p",
            "--annotation",
            "manifest-descriptor:org.example.desc=d",
        ],
    )
    .ok();
    let l = Layout::new(&one);
    let (m, _) = l.image("latest");
    assert_eq!(m["annotations"]["org.example.plain"], "p", "{m}");
    assert!(m["annotations"].get("org.example.desc").is_none(), "{m}");
    assert_eq!(l.tagged("latest")["annotations"]["org.example.desc"], "d");
    // An index for one platform does not exist.
    let bad = build(
        &ctx,
        &store,
        &[
            "-o",
            &format!("oci:{}", s(&one)),
            "--annotation",
            "index:a=b",
        ],
    );
    assert_eq!(bad.code, 2, "{bad}");
    // Two platforms: index, per-platform manifest.
    let two = t.path().join("two");
    build(
        &ctx,
        &store,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("oci:{}", s(&two)),
            "--annotation",
            "index:org.example.idx=i",
            "--annotation",
            "manifest[linux/arm64]:org.example.arm=a",
        ],
    )
    .ok();
    let l = Layout::new(&two);
    let top = l.tagged("latest");
    let index = l.blob_json(top["digest"].as_str().unwrap());
    assert_eq!(index["annotations"]["org.example.idx"], "i", "{index}");
    for d in index["manifests"].as_array().unwrap() {
        let m = l.blob_json(d["digest"].as_str().unwrap());
        let arm = d["platform"]["architecture"] == "arm64";
        assert_eq!(
            m["annotations"].get("org.example.arm").is_some(),
            arm,
            "{m}"
        );
    }
    assert_eq!(l.verify(0), 4);
    let m = skopeo_json(&["inspect", "--raw", &format!("oci:{}:latest", s(&two))]);
    assert_eq!(m["annotations"]["org.example.idx"], "i");
}

#[test]
fn no_cache_builds_every_step_again_and_still_stores_them() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let out = t.path().join("out");
    let o = format!("oci:{}", s(&out));
    let run = |extra: &[&str]| {
        let mut a = vec!["--format", "json", "-o", &o];
        a.extend_from_slice(extra);
        build(&ctx, &store, &a).ok().json()
    };
    let first = run(&[]);
    assert_eq!(first["layers_built"], 2, "{first}");
    assert_eq!(run(&[])["layers_built"], 0);
    let again = run(&["--no-cache"]);
    assert_eq!(again["layers_built"], 2, "{again}");
    assert_eq!(layer_cache_states(&again), ["miss", "miss"]);
    assert_eq!(again["images"][0]["digest"], first["images"][0]["digest"]);
    assert_eq!(run(&[])["layers_built"], 0);
}

#[test]
fn no_cache_filter_builds_only_those_stages_again() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch AS tools\nCOPY etc/conf /conf\n\nFROM scratch\nCOPY app/ /app/\nCOPY --from=tools /conf /etc/conf\n",
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let o = format!("oci:{}", s(&out));
    let run = |extra: &[&str]| {
        let mut a = vec!["--format", "json", "-o", &o];
        a.extend_from_slice(extra);
        build(&ctx, &store, &a).ok().json()
    };
    assert_eq!(run(&[])["layers_built"], 3);
    let v = run(&["--no-cache-filter", "tools"]);
    assert_eq!(v["layers_built"], 1, "{v}");
    assert_eq!(layer_cache_states(&v), ["hit", "hit"], "{v}");
    let bad = build(&ctx, &store, &["-o", &o, "--no-cache-filter", "nope"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("tools"), "{bad}");
}

/// Pushes a scratch image with one file to `r` as `repo_tag` (imgbuild's own push).
fn push_base(r: &Registry, t: &Path, repo_tag: &str, text: &str) {
    let c = t.join(format!("base-{}", repo_tag.replace(['/', ':'], "-")));
    write(&c, "base.txt", text);
    write(&c, "Dockerfile", "FROM scratch\nCOPY base.txt /base.txt\n");
    build(
        &c,
        &t.join("store"),
        &["--push", "-t", &format!("{}/{repo_tag}", r.host())],
    )
    .ok();
}

#[test]
fn pull_resolves_the_base_tag_in_the_registry_each_build() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    push_base(&r, t.path(), "team/base:1", "one\n");
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM {}/team/base:1\nCOPY f /f\n", r.host()),
    );
    write(&ctx, "f", "f\n");
    let out = t.path().join("out");
    let o = format!("oci:{}", s(&out));
    let store = t.path().join("store");
    build(&ctx, &store, &["-o", &o]).ok();
    // The tag moves; --pull sees the new image.
    push_base(&r, t.path(), "team/base:1", "two\n");
    let before = r.access_log().len();
    build(&ctx, &store, &["-o", &o, "--pull"]).ok();
    let asked = r.access_log()[before..]
        .iter()
        .any(|e| e.path == "/v2/team/base/manifests/1");
    assert!(asked, "{}", r.log_tail(20));
    let rootfs = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("base.txt")).unwrap(),
        "two\n"
    );
}

#[test]
fn iidfile_and_quiet_give_the_image_id() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let store = t.path().join("store");
    let out = t.path().join("out");
    let iid = t.path().join("iid");
    let run = build(
        &ctx,
        &store,
        &[
            "-q",
            "-o",
            &format!("oci:{}", s(&out)),
            "--iidfile",
            s(&iid),
        ],
    )
    .ok();
    let (m, _) = Layout::new(&out).image("latest");
    let config = m["config"]["digest"].as_str().unwrap();
    assert_eq!(fs::read_to_string(&iid).unwrap(), config);
    assert_eq!(run.stdout.trim(), config, "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    // Several platforms: the index's digest.
    let two = t.path().join("two");
    build(
        &ctx,
        &store,
        &[
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
            "-o",
            &format!("oci:{}", s(&two)),
            "--iidfile",
            s(&iid),
        ],
    )
    .ok();
    let top = Layout::new(&two).tagged("latest");
    assert_eq!(
        fs::read_to_string(&iid).unwrap(),
        top["digest"].as_str().unwrap()
    );
}

#[test]
fn metadata_file_has_buildx_keys_with_the_outputs_digests() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    let out = t.path().join("out");
    let meta = t.path().join("meta.json");
    build(
        &ctx,
        &t.path().join("store"),
        &[
            "-t",
            "example.com/team/app:v1",
            "-o",
            &format!("type=oci,dest={},tar=false", s(&out)),
            "--metadata-file",
            s(&meta),
            "--label",
            "x=y",
        ],
    )
    .ok();
    let v = read_json(&meta);
    let l = Layout::new(&out);
    let top = l.tagged("v1");
    let (m, _) = l.image("v1");
    assert_eq!(v["containerimage.digest"], top["digest"], "{v}");
    assert_eq!(
        v["containerimage.config.digest"], m["config"]["digest"],
        "{v}"
    );
    assert_eq!(
        v["containerimage.descriptor"]["digest"], top["digest"],
        "{v}"
    );
    assert_eq!(v["containerimage.descriptor"]["size"], top["size"], "{v}");
    assert_eq!(
        v["containerimage.descriptor"]["mediaType"], top["mediaType"],
        "{v}"
    );
    assert_eq!(v["image.name"], "example.com/team/app:v1", "{v}");
}

#[test]
fn build_contexts_replace_images_stages_and_add_folders() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    push_base(&r, t.path(), "team/base:1", "from registry\n");
    // A layout holding another image, by tag.
    let lay_ctx = t.path().join("layctx");
    write(&lay_ctx, "tool", "from layout\n");
    write(&lay_ctx, "Dockerfile", "FROM scratch\nCOPY tool /tool\n");
    let lay = t.path().join("lay");
    build(
        &lay_ctx,
        &t.path().join("store"),
        &["-o", &format!("oci:{}", s(&lay)), "-t", "x/tool:v9"],
    )
    .ok();
    // A plain folder.
    let extra = t.path().join("extra");
    write(&extra, "data/e.txt", "from folder\n");
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox AS builder\nCOPY nothing-here /x\n\nFROM base\nCOPY --from=builder /tool /tool\nCOPY --from=extra data/e.txt /e.txt\n",
    );
    let out = t.path().join("out");
    // The three contexts, the layout's image named by `builder_ref`.
    let with_contexts = |out: &Path, builder_ref: &str| {
        build(
            &ctx,
            &t.path().join("store"),
            &[
                "-o",
                &format!("oci:{}", s(out)),
                "--build-context",
                &format!("base=docker-image://{}/team/base:1", r.host()),
                "--build-context",
                &format!("builder=oci-layout://{}{builder_ref}", s(&lay)),
                "--build-context",
                &format!("extra={}", s(&extra)),
            ],
        )
        .ok()
    };
    with_contexts(&out, ":v9");
    let rootfs = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("base.txt")).unwrap(),
        "from registry\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("tool")).unwrap(),
        "from layout\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("e.txt")).unwrap(),
        "from folder\n"
    );
    // A layout's image by digest too.
    let d = Layout::new(&lay).tagged("v9")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out2 = t.path().join("out2");
    with_contexts(&out2, &format!("@{d}"));
    assert_eq!(
        Layout::new(&out2).tagged("latest")["digest"],
        Layout::new(&out).tagged("latest")["digest"]
    );
    // Only for Dockerfiles, and only the kinds that exist here.
    let bad = build(
        &ctx,
        &t.path().join("store"),
        &["--build-context", "a=https://example.com/x.git"],
    );
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn build_args_from_the_environment_and_platform_lists() {
    let t = tempfile::tempdir().unwrap();
    let ctx = context(t.path());
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nARG FOO\nARG BAR=default\nLABEL foo=$FOO bar=$BAR\nCOPY etc/conf /conf\n",
    );
    let out = t.path().join("out");
    ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&t.path().join("store"))
        .env("FOO", "from-env")
        .args(&[
            "--build-arg",
            "FOO",
            "--build-arg",
            "BAR=given",
            "-o",
            &format!("oci:{}", s(&out)),
        ])
        .args(&[
            "--platform",
            "linux/amd64,linux/arm64",
            "--platform",
            "linux/arm64",
        ])
        .run()
        .ok();
    let l = Layout::new(&out);
    let ms = l.manifests("latest");
    assert_eq!(ms.len(), 2, "{:?}", l.index());
    let c = l.blob_json(ms[0].1["config"]["digest"].as_str().unwrap());
    assert_eq!(c["config"]["Labels"]["foo"], "from-env", "{c}");
    assert_eq!(c["config"]["Labels"]["bar"], "given", "{c}");
}

#[test]
fn definition_builds_take_labels_and_refuse_build_contexts() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "f.txt", "f\n");
    write(
        t.path(),
        DEF,
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_file = \"f.txt\"\ndst = \"/f.txt\"\n",
    );
    let out = t.path().join("out");
    let meta = t.path().join("meta.json");
    ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("store"))
        .args(&[
            "-o",
            &format!("oci:{}", s(&out)),
            "--label",
            "team=core",
            "--metadata-file",
            s(&meta),
        ])
        .run()
        .ok();
    let (_, c) = Layout::new(&out).image("latest");
    assert_eq!(c["config"]["Labels"]["team"], "core", "{c}");
    let v: Value = read_json(&meta);
    assert_eq!(
        v["containerimage.digest"],
        Layout::new(&out).tagged("latest")["digest"]
    );
    let bad = ib(&["build"])
        .path_arg(t.path())
        .cache(&t.path().join("store"))
        .args(&["--build-context", &format!("x={}", s(t.path()))])
        .run();
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("Dockerfile"), "{bad}");
}

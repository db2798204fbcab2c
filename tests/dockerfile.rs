//! `imgbuild build -f Dockerfile CONTEXT`: Dockerfiles translated onto the
//! same planner, file layers and RUN sandbox, checked with umoci and skopeo.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use support::buildah::buildah_present;
use support::*;

use support::pybase::dockerfile_test_base as base;

use support::build_dockerfile as build_df;

fn config(out: &Path) -> Value {
    let (_, c) = Layout::new(out).image("latest");
    c["config"].clone()
}

#[test]
fn a_dockerfile_builds_with_args_copies_runs_and_config() {
    let Some(base) = base("a_dockerfile_builds_with_args_copies_runs_and_config") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(&ctx, "src/app.py", "print('hi')\n");
    write(&ctx, "requirements.txt", "flask==3.0\n");
    write(&ctx, "secret.env", "TOKEN=x\n");
    write(&ctx, ".dockerignore", "secret.env\n");
    write(&ctx, "notes/private.txt", "x\n");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            r#"# syntax=docker/dockerfile:1
ARG BASE=oci:{}:latest
FROM ${{BASE}} AS base
ARG GREETING=hello
ENV APP_HOME=/app \
    GREETING=${{GREETING}}
WORKDIR $APP_HOME
COPY requirements.txt .
COPY . /ctx/
COPY src ./src
RUN echo "$GREETING from $(pwd)" > greeting.txt
RUN --mount=type=bind,source=src,target=/mnt/src --mount=type=cache,target=/root/.cache/x ls /mnt/src > listing.txt
ENV PATH=/opt/venv/bin:$PATH
RUN useradd -m -u 1000 app
USER app
LABEL org.opencontainers.image.title="demo app"
EXPOSE 8000
ENTRYPOINT ["python3"]
CMD ["src/app.py"]
"#,
            base.display()
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = build_df(&ctx, &store, &out, &["--build-arg", "GREETING=bonjour"]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(root.join("app/greeting.txt")).unwrap(),
        "bonjour from /app\n",
        "build args reach RUN, WORKDIR applies"
    );
    assert_eq!(
        fs::read_to_string(root.join("app/listing.txt")).unwrap(),
        "app.py\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("app/requirements.txt")).unwrap(),
        "flask==3.0\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("app/src/app.py")).unwrap(),
        "print('hi')\n"
    );
    assert!(root.join("ctx/src/app.py").is_file());
    assert!(
        !root.join("ctx/secret.env").exists(),
        ".dockerignore applies to COPY"
    );
    assert!(root.join("ctx/notes/private.txt").exists());

    // <Dockerfile>.dockerignore beside the Dockerfile replaces the context's.
    write(&ctx, "Dockerfile.dockerignore", "notes\n");
    let out2 = t.path().join("out-own-ignore");
    let r = build_df(&ctx, &store, &out2, &["--build-arg", "GREETING=bonjour"]);
    assert_eq!(r.code, 0, "{r}");
    let root2 = umoci_unpack(&out2, "latest", &t.path().join("bundle2"));
    assert!(!root2.join("ctx/notes").exists(), "{}", r.stdout);
    assert!(
        root2.join("ctx/secret.env").exists(),
        "only one ignore file applies"
    );
    fs::remove_file(ctx.join("Dockerfile.dockerignore")).unwrap();
    assert!(
        !root.join("mnt/src").exists() || fs::read_dir(root.join("mnt/src")).unwrap().count() == 0
    );
    let c = config(&out);
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"APP_HOME=/app") && env.contains(&"GREETING=bonjour"),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=/opt/venv/bin:/usr/local/sbin:")),
        "$PATH expands against the base's env: {env:?}"
    );
    assert!(
        !env.iter().any(|e| e.starts_with("BASE=")),
        "ARGs stay out of the image"
    );
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["python3"]));
    assert_eq!(c["Cmd"], serde_json::json!(["src/app.py"]));
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "demo app");
    assert!(c["ExposedPorts"]["8000/tcp"].is_object());

    // Again: every layer a hit. A source change rebuilds from that COPY on.
    let again = build_df(&ctx, &store, &out, &["--build-arg", "GREETING=bonjour"]);
    let states = layer_cache_states(&again.json());
    assert!(
        states.iter().all(|s| s == "hit" || s == "base"),
        "{states:?}"
    );
    write(&ctx, "src/app.py", "print('changed')\n");
    let changed = build_df(&ctx, &store, &out, &["--build-arg", "GREETING=bonjour"]);
    let states = layer_cache_states(&changed.json());
    assert_eq!(
        states,
        ["base", "hit", "miss", "miss", "miss", "miss", "miss"],
        "the requirements layer is kept; the rest stands on the changed sources"
    );
}

#[test]
fn stages_are_planned_only_when_the_target_needs_them() {
    let Some(base) = base("stages_are_planned_only_when_the_target_needs_them") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest AS one\nRUN echo one > /one\n\nFROM oci:{}:latest AS two\nRUN echo two > /two\n\nFROM one AS final\nRUN cat /one > /final\n",
            base.display(),
            base.display()
        ),
    );
    let store = t.path().join("store");
    let plan = ib(&["plan", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&store)
        .json()
        .run()
        .ok()
        .json();
    let names: Vec<&str> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "final"], "stage two is not needed");
    let out = t.path().join("out");
    let r = build_df(&ctx, &store, &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let imgs = r.json()["images"].as_array().unwrap().clone();
    assert_eq!(imgs.len(), 1, "only the target is written: {imgs:?}");
    assert_eq!(Layout::new(&out).tags(), ["latest"]);
    let root = umoci_unpack(&out, "latest", &t.path().join("b1"));
    assert_eq!(fs::read_to_string(root.join("final")).unwrap(), "one\n");
    assert!(!root.join("two").exists());
    // --target picks another stage.
    let out2 = t.path().join("out2");
    let r = build_df(&ctx, &store, &out2, &["--target", "two"]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out2, "latest", &t.path().join("b2"));
    assert!(root.join("two").is_file() && !root.join("one").exists());
}

#[test]
fn dockerfile_errors_name_the_line() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    let cases = [
        ("FROM scratch\nRUNN x\n", 2, "2:1: unknown instruction"),
        (
            "FROM scratch\nADD git@example.com:team/repo.git?branch=a&tag=b /src\n",
            2,
            ":2:1: ADD: git@example.com:team/repo.git: only one of ref=, branch= and tag=",
        ),
        (
            "FROM scratch\nCOPY *.nothing /x/\n",
            3,
            "Dockerfile:2:1: COPY: \"*.nothing\" matches no file in the context",
        ),
        (
            "FROM scratch\nCOPY --chown=nosuch Dockerfile /x\n",
            3,
            "Dockerfile:2:1: COPY: --chown=nosuch: no user \"nosuch\" in the image's /etc/passwd",
        ),
        (
            "FROM scratch\nCOPY --chown=a:b:c Dockerfile /x\n",
            2,
            "Dockerfile:2:1: COPY: --chown=a:b:c: expected USER[:GROUP]",
        ),
        (
            "FROM scratch\nADD --checksum=sha256:00 Dockerfile /x\n",
            2,
            "--checksum applies to URLs only",
        ),
        (
            "FROM scratch\nCOPY a.txt b.txt /dst\n",
            2,
            "the destination must end with /",
        ),
        (
            "FROM scratch AS a\nFROM scratch\nCOPY --from=a /x /y\n",
            3,
            "Dockerfile:3:1: COPY: /x in image a",
        ),
        (
            "FROM scratch\nCOPY missing.txt /x\n",
            3,
            "Dockerfile:2:1: COPY: ",
        ),
        ("RUN x\n", 2, "only ARG may come before the first FROM"),
    ];
    for (text, code, want) in cases {
        write(&ctx, "Dockerfile", text);
        let r = build_df(&ctx, &t.path().join("store"), &t.path().join("out"), &[]);
        assert_eq!(r.code, code, "{text}\n{r}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(want), "want {want:?} in {msg:?}");
    }
}

#[test]
fn copy_from_an_earlier_stage() {
    let Some(base) = base("copy_from_an_earlier_stage") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{b}:latest AS builder\nRUN mkdir -p /opt/app/bin && printf 'tool\\n' > /opt/app/bin/tool && chmod 0750 /opt/app/bin/tool && ln -s tool /opt/app/bin/link && echo unused > /unused\n\nFROM oci:{b}:latest\nWORKDIR /srv\nCOPY --from=builder /opt/app /opt/app\nCOPY --from=builder --chown=1000:1000 /opt/app/bin/tool ./\nCOPY --from=0 /opt/app/bin/tool /usr/local/bin/renamed\n",
            b = base.display()
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = build_df(&ctx, &store, &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("b"));
    assert_eq!(
        fs::read_to_string(root.join("opt/app/bin/tool")).unwrap(),
        "tool\n"
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = fs::metadata(root.join("opt/app/bin/tool")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        (m.uid(), m.gid()),
        (0, 0),
        "COPY --from gives root unless --chown"
    );
    assert_eq!(
        fs::read_link(root.join("opt/app/bin/link")).unwrap(),
        Path::new("tool")
    );
    let m = fs::metadata(root.join("srv/tool")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    assert!(root.join("usr/local/bin/renamed").is_file());
    assert!(!root.join("unused").exists(), "only what is copied");
    // Unchanged: all hits.
    let again = build_df(&ctx, &store, &out, &[]);
    let states = layer_cache_states(&again.json());
    assert!(
        states.iter().all(|s| s == "hit" || s == "base"),
        "{states:?}"
    );
}

/// A context using the rest of the Dockerfile syntax: a venv made by
/// `uv venv` and requirements installed into it by `uv pip install` from a
/// local wheel (uv bind-mounted from the host), a stage pinned with `FROM
/// --platform`, wildcards, `--chown` by names a RUN created, `COPY --from`
/// with a wildcard, `ADD` of a local archive and a tmpfs mount. (Debian's
/// buildah 1.28 has no RUN heredocs; they are checked on their own.)
fn features_context(ctx: &Path) -> PathBuf {
    use support::pyfix::{WheelSpec, write_wheel};
    let uv = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v uv"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let uv = fs::canonicalize(uv.trim()).expect("uv on PATH (scripts/test.sh installs it)");
    mkdirs(&ctx.join("tools"));
    fs::copy(&uv, ctx.join("tools/uv")).unwrap();
    write_wheel(
        &ctx.join("wheels"),
        &WheelSpec::pure("demo-dep", "1.2.0")
            .file("demo_dep/util.py", b"def f():\n    return 42\n"),
    );
    write(ctx, "requirements.txt", "demo-dep==1.2.0\n");
    write(ctx, "app/main.py", "print('main')\n");
    write(ctx, "app/util.py", "X = 1\n");
    write(ctx, "app/notes.txt", "not python\n");
    write(ctx, "app/skip.py", "ignored\n");
    write(ctx, ".dockerignore", "app/skip.py\n");
    let arch = ctx.join("archive-src");
    write(&arch, "conf/app.ini", "[app]\n");
    write_file(&arch, "bin/run.sh", "#!/bin/sh\necho run\n", 0o755);
    let status = std::process::Command::new("tar")
        .args(["--owner=101", "--group=202", "--numeric-owner", "-czf"])
        .arg(ctx.join("bundle.tar.gz"))
        .arg("-C")
        .arg(&arch)
        .args(["conf", "bin"])
        .status()
        .unwrap();
    assert!(status.success());
    fs::remove_dir_all(&arch).unwrap();
    write(
        ctx,
        "Dockerfile",
        r#"ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS venv
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,source=tools/uv,target=/usr/local/bin/uv \
    --mount=type=bind,source=wheels,target=/wheels \
    uv venv --no-cache /opt/venv \
 && uv pip install --no-cache --python /opt/venv/bin/python --no-index --find-links /wheels -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
RUN mkdir -p /out && echo one > /out/one.txt && echo two > /out/two.txt && echo x > /out/three.log

FROM ${BASE}
RUN groupadd --gid 2001 devs && useradd --uid 1001 --gid devs --no-create-home --no-log-init dev
COPY --from=venv /opt/venv /opt/venv
COPY --chown=dev:devs app/*.py /srv/app/
COPY --from=venv --chown=dev /out/*.txt /srv/out/
ADD bundle.tar.gz /opt/bundle/
RUN --mount=type=tmpfs,target=/scratch echo scratch > /scratch/file && cp /scratch/file /srv/from-tmpfs.txt
RUN /opt/venv/bin/python -B -c 'import demo_dep.util; print(demo_dep.util.f())' > /srv/dep.txt
USER dev
WORKDIR /srv
"#,
    );
    ctx.to_path_buf()
}

/// The Dockerfile fixtures built by imgbuild and by `buildah bud` (vfs,
/// chroot isolation) on the same base: the same file trees and configs.
#[test]
fn dockerfile_fixtures_build_like_buildah() {
    let Some(base) = base("dockerfile_fixtures_build_like_buildah") else {
        return;
    };
    if !buildah_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let base_arg = format!("BASE=oci:{}:latest", base.display());
    let features = features_context(&t.path().join("features-src"));
    for (name, dockerfile) in [
        ("dockerfile-multistage", "Dockerfile"),
        ("custom-dockerfile", "Dockerfile"),
        ("custom-dockerfile-subfolder", "docker/Dockerfile"),
        ("features", "Dockerfile"),
    ] {
        let ctx = t.path().join(name);
        let from = if name == "features" {
            features.clone()
        } else {
            fixtures.join(name)
        };
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&from)
            .arg(&ctx)
            .status()
            .unwrap();
        assert!(status.success());
        let ours = t.path().join(format!("{name}-imgbuild"));
        let r = ib(&["build", "-f"])
            .path_arg(&ctx.join(dockerfile))
            .path_arg(&ctx)
            .args(&["--build-arg", &base_arg])
            .cache(&t.path().join("store"))
            .oci_out(&ours)
            .json()
            .arg("-q")
            .run();
        assert_eq!(r.code, 0, "{name}: {r}");
        let (a, ta) = same_as_buildah(
            t.path(),
            name,
            &ours,
            &ctx.join(dockerfile),
            &ctx,
            &["--build-arg", &base_arg],
            false,
        );
        if name == "features" {
            // What each construct must do, beyond agreeing with buildah.
            let read = |p: &str| fs::read_to_string(a.join(p)).unwrap();
            assert_eq!(
                read("srv/dep.txt"),
                "42\n",
                "the installed requirement imports"
            );
            assert_eq!(read("srv/from-tmpfs.txt"), "scratch\n");
            assert!(
                !a.join("scratch/file").exists(),
                "tmpfs contents are not kept"
            );
            assert_eq!(ta["srv/app/main.py"].1, 1001, "--chown by name");
            assert_eq!(ta["srv/app/main.py"].2, 2001);
            assert!(!ta.contains_key("srv/app/notes.txt") && !ta.contains_key("srv/app/skip.py"));
            // A user named without a group: its primary group.
            assert_eq!(
                (ta["srv/out/one.txt"].1, ta["srv/out/one.txt"].2),
                (1001, 2001)
            );
            assert!(!ta.contains_key("srv/out/three.log"));
            assert_eq!(
                ta["opt/bundle/bin/run.sh"].0, 0o755,
                "ADD unpacks the archive"
            );
            assert_eq!(
                (
                    ta["opt/bundle/conf/app.ini"].1,
                    ta["opt/bundle/conf/app.ini"].2
                ),
                (101, 202)
            );
        }
    }
}

/// Builds `dockerfile` with `buildah bud` (vfs, chroot isolation) and
/// asserts that its image has the same file tree (paths, modes, owners,
/// contents) and config as imgbuild's `ours` (an OCI layout, tag latest).
/// With `undated_shadow`, /etc/shadow is compared without the dates of
/// the last password change: `ours` was built from a definition, whose
/// `commands` get SOURCE_DATE_EPOCH (0), so useradd dated them 1970, while
/// buildah's RUN has none and dates them today.
/// Returns imgbuild's unpacked root and tree.
fn same_as_buildah(
    t: &Path,
    name: &str,
    ours: &Path,
    dockerfile: &Path,
    ctx: &Path,
    extra: &[&str],
    undated_shadow: bool,
) -> (PathBuf, Tree) {
    let theirs = t.join(format!("{name}-buildah"));
    let broot = t.join("buildah-root");
    let brun = t.join("buildah-run");
    let bah = |args: &[&str]| {
        let out = std::process::Command::new("buildah")
            .args(["--storage-driver", "vfs", "--root"])
            .arg(&broot)
            .arg("--runroot")
            .arg(&brun)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let tag = format!("{name}:latest");
    let mut bud: Vec<&str> = vec!["bud", "--isolation", "chroot"];
    bud.extend(extra);
    bud.extend([
        "-t",
        &tag,
        "-f",
        dockerfile.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    bah(&bud);
    bah(&[
        "push",
        "-q",
        &tag,
        &format!("oci:{}:latest", theirs.display()),
    ]);
    let a = umoci_unpack(ours, "latest", &t.join(format!("{name}-a")));
    let b = umoci_unpack(&theirs, "latest", &t.join(format!("{name}-b")));
    let (mut ta, mut tb) = (file_tree(&a), file_tree(&b));
    // The backup copies shadow-utils leaves differ by how it ran, not by
    // the build (under buildah, /etc/group- holds the old gshadow).
    for (tr, root) in [(&mut ta, &a), (&mut tb, &b)] {
        for f in ["etc/group-", "etc/gshadow-", "etc/passwd-", "etc/shadow-"] {
            tr.remove(f);
        }
        if !undated_shadow {
            continue;
        }
        if let Some(e) = tr.get_mut("etc/shadow") {
            let text = fs::read_to_string(root.join("etc/shadow")).unwrap();
            let undated: String = text
                .lines()
                .map(|l| {
                    let mut f: Vec<&str> = l.split(':').collect();
                    if f.len() > 2 {
                        f[2] = "";
                    }
                    f.join(":") + "\n"
                })
                .collect();
            e.3 = sha256_hex(undated.as_bytes());
        }
    }
    // buildah leaves the empty files it mounted over for RUN steps.
    for f in ["etc/hosts", "etc/resolv.conf"] {
        if !ta.contains_key(f) && tb.get(f).is_some_and(|e| e.3 == sha256_hex(b"")) {
            tb.remove(f);
        }
    }
    let diffs: Vec<String> = ta
        .keys()
        .chain(tb.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| ta.get(*k) != tb.get(*k))
        .map(|k| format!("{k}: imgbuild {:?}, buildah {:?}", ta.get(k), tb.get(k)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{name}: trees differ:\n{}",
        diffs.join("\n")
    );
    let (ca, mut cb) = (config(ours), config(&theirs));
    // buildah signs its images with a label of its own.
    if let Some(l) = cb["Labels"].as_object_mut() {
        l.remove("io.buildah.version");
        if l.is_empty() {
            cb["Labels"] = Value::Null;
        }
    }
    // buildah moves a variable ENV sets again to the end; docker and
    // imgbuild keep its place. The same variables either way.
    let env = |c: &Value| -> Vec<String> {
        let mut v: Vec<String> = c["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(env(&ca), env(&cb), "{name}: config Env");
    for k in [
        "WorkingDir",
        "User",
        "Entrypoint",
        "Cmd",
        "Labels",
        "ExposedPorts",
    ] {
        assert_eq!(ca[k], cb[k], "{name}: config {k}");
    }
    (a, ta)
}

/// A Dockerfile's RUN steps see SOURCE_DATE_EPOCH only as BuildKit passes
/// it: as a build arg (`--build-arg`, or the environment's, as buildx
/// forwards it) that the stage declares. Without it useradd dates the
/// password change today, as under docker and buildah; the layers'
/// mtimes still clamp to SOURCE_DATE_EPOCH (0 when unset). A definition's
/// `commands` keep getting it (0 by default).
#[test]
fn source_date_epoch_reaches_run_only_as_a_declared_build_arg() {
    let Some(base) = base("source_date_epoch_reaches_run_only_as_a_declared_build_arg") else {
        return;
    };
    use std::os::unix::fs::MetadataExt;
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{b}:latest AS plain\n\
             RUN echo \"${{SOURCE_DATE_EPOCH-unset}}\" > /sde-plain && useradd -u 1500 tester\n\
             \n\
             FROM plain\n\
             ARG SOURCE_DATE_EPOCH\n\
             RUN echo \"${{SOURCE_DATE_EPOCH-unset}}\" > /sde-declared\n",
            b = base.display()
        ),
    );
    let store = t.path().join("store");
    let build = |name: &str, extra: &[&str], env: Option<&str>| -> PathBuf {
        let out = t.path().join(format!("out-{name}"));
        let mut cmd = ib(&["build", "-f"])
            .path_arg(&ctx.join("Dockerfile"))
            .path_arg(&ctx)
            .cache(&store)
            .oci_out(&out)
            .json()
            .arg("-q")
            .args(extra);
        if let Some(v) = env {
            cmd = cmd.env("SOURCE_DATE_EPOCH", v);
        }
        let r = cmd.run();
        assert_eq!(r.code, 0, "{name}: {r}");
        umoci_unpack(&out, "latest", &t.path().join(format!("root-{name}")))
    };
    let read = |root: &Path, p: &str| fs::read_to_string(root.join(p)).unwrap();

    let root = build("unset", &[], None);
    assert_eq!(read(&root, "sde-plain"), "unset\n");
    assert_eq!(read(&root, "sde-declared"), "unset\n");
    let shadow = read(&root, "etc/shadow");
    let line = shadow
        .lines()
        .find(|l| l.starts_with("tester:"))
        .unwrap_or_else(|| panic!("{shadow}"));
    let day: u64 = line.split(':').nth(2).unwrap().parse().unwrap_or_else(|_| {
        panic!("useradd dates the password change today: {line}");
    });
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    assert!(day + 1 >= today && day <= today, "{line}, today {today}");
    assert_eq!(
        fs::metadata(root.join("sde-declared")).unwrap().mtime(),
        0,
        "mtimes clamp to 0"
    );

    let root = build(
        "build-arg",
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000000"],
        None,
    );
    assert_eq!(read(&root, "sde-plain"), "unset\n", "not declared there");
    assert_eq!(read(&root, "sde-declared"), "1700000000\n");

    let root = build("env", &[], Some("1700000000"));
    assert_eq!(read(&root, "sde-plain"), "unset\n");
    assert_eq!(read(&root, "sde-declared"), "1700000000\n");
    assert_eq!(
        fs::metadata(root.join("sde-declared")).unwrap().mtime(),
        1_700_000_000,
        "mtimes clamp to SOURCE_DATE_EPOCH"
    );

    // A definition's commands get it, 0 by default.
    let proj = t.path().join("proj");
    write(
        &proj,
        "imgbuild.toml",
        &format!(
            "[images.app]\nbase = \"oci:{b}:latest\"\ntag = \"v1\"\n\n[[images.app.layers]]\ncommands = [\"echo ${{SOURCE_DATE_EPOCH-unset}} > /sde-def\"]\n",
            b = base.display()
        ),
    );
    let out = t.path().join("out-def");
    build_json(&proj, &store, &out, &[]);
    let root = umoci_unpack(&out, "v1", &t.path().join("root-def"));
    assert_eq!(read(&root, "sde-def"), "0\n");
}

#[test]
fn volume_stopsignal_shell_healthcheck_and_onbuild_set_the_config() {
    let Some(base) = base("volume_stopsignal_shell_healthcheck_and_onbuild_set_the_config") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo ${{BASH_VERSION:+bash}} > /shell\nVOLUME /data /logs\nSTOPSIGNAL SIGINT\nHEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://localhost/\nONBUILD RUN echo child\n",
            base.display()
        ),
    );
    let out = t.path().join("out");
    let r = build_df(&ctx, &t.path().join("store"), &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let c = config(&out);
    assert_eq!(c["Shell"], serde_json::json!(["/bin/bash", "-c"]));
    assert!(
        c["Volumes"]["/data"].is_object() && c["Volumes"]["/logs"].is_object(),
        "{c:#}"
    );
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 90_000_000_000u64, "Retries": 3})
    );
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    let root = umoci_unpack(&out, "latest", &t.path().join("b"));
    assert_eq!(
        fs::read_to_string(root.join("shell")).unwrap(),
        "bash\n",
        "SHELL applies to RUN"
    );
}

/// RUN heredocs (a script, a `#!` script, a command's stdin), COPY
/// heredocs, and `ADD` of
/// a URL: checked with `--checksum`, mode 0600, fetched from a loopback
/// server; a wrong checksum fails the build and writes nothing.
#[test]
fn run_heredocs_and_add_of_a_url() {
    let Some(base) = base("run_heredocs_and_add_of_a_url") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let srv = support::pyfix::FileServer::start(&t.path().join("www"));
    let tool = b"#!/bin/sh\necho tool\n";
    write_file(srv.root(), "dl/tool.sh", tool, 0o755);
    let sum = sha256_hex(tool);
    let ctx = t.path().join("ctx");
    let dockerfile = |checksum: &str| {
        format!(
            "FROM oci:{b}:latest\n\
             ARG WHO=heredoc\n\
             RUN <<EOF\n\
             set -e\n\
             echo \"script by $WHO\" > /script.txt\n\
             EOF\n\
             RUN <<'EOF'\n\
             #!/usr/bin/python3\n\
             open('/shebang.txt', 'w').write('from python\\n')\n\
             EOF\n\
             RUN cat > /stdin.txt <<-EOT\n\
             \tindented\n\
             \tEOT\n\
             ADD --checksum=sha256:{checksum} {url} /opt/tools/\n\
             ADD --chmod=0755 {url} /usr/local/bin/tool\n\
             COPY --chmod=0640 <<CONF /etc/app/config.ini\n\
             name = $WHO\n\
             CONF\n\
             COPY <<'A' <<B /etc/two/\n\
             $kept\n\
             A\n\
             second\n\
             B\n",
            b = base.display(),
            url = srv.url("dl/tool.sh"),
        )
    };
    write(&ctx, "Dockerfile", &dockerfile(&sum));
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = build_df(&ctx, &store, &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("script.txt"), "script by heredoc\n");
    assert_eq!(read("shebang.txt"), "from python\n");
    assert_eq!(read("stdin.txt"), "indented\n");
    let tree = file_tree(&root);
    assert_eq!(tree["opt/tools/tool.sh"], (0o600, 0, 0, sum.clone()));
    assert_eq!(tree["usr/local/bin/tool"].0, 0o755);
    assert_eq!(
        read("etc/app/config.ini"),
        "name = heredoc\n",
        "COPY <<EOF expands ARGs"
    );
    assert_eq!(tree["etc/app/config.ini"].0, 0o640);
    assert_eq!(
        read("etc/two/A"),
        "$kept\n",
        "a quoted delimiter keeps $ as is"
    );
    assert_eq!(read("etc/two/B"), "second\n");
    assert!(
        !tree.keys().any(|k| k.starts_with("tmp/tmp")),
        "the #! script's file is removed: {:?}",
        tree.keys()
            .filter(|k| k.starts_with("tmp/"))
            .collect::<Vec<_>>()
    );

    // A checksum that does not match: the build fails naming the line.
    let bad = "0".repeat(64);
    write(&ctx, "Dockerfile", &dockerfile(&bad));
    let out2 = t.path().join("out2");
    let r = build_df(&ctx, &store, &out2, &[]);
    assert_eq!(r.code, 3, "{r}");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("Dockerfile:14:1: ADD") && msg.contains("--checksum says sha256:000"),
        "{msg}"
    );
    assert!(!out2.exists(), "nothing is written");
}

/// `--chown` makes the folders it creates with the owner and leaves the
/// ones below it alone; names resolve against the layers below, so a user
/// created by a later RUN changes the layer.
#[test]
fn chown_makes_missing_folders_and_resolves_names_below() {
    let Some(base) = base("chown_makes_missing_folders_and_resolves_names_below") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(&ctx, "f.txt", "f\n");
    write(&ctx, "d/g.txt", "g\n");
    let df = |uid: u32| {
        format!(
            "FROM oci:{}:latest\n\
             RUN mkdir -p /exist1 /exist2 && useradd -u {uid} dev\n\
             COPY --chown=dev f.txt /new1/deep/\n\
             COPY --chown=dev f.txt /exist1/\n\
             COPY --chown=dev d/ /exist2/\n\
             COPY --chown=dev d/ /new2/deep/\n\
             COPY --chown=www-data:staff f.txt /new3/renamed.txt\n",
            base.display()
        )
    };
    write(&ctx, "Dockerfile", &df(1001));
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = build_df(&ctx, &store, &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("b1"));
    let tr = file_tree(&root);
    let owner = |p: &str| (tr[p].1, tr[p].2);
    for p in ["new1", "new1/deep", "new1/deep/f.txt", "exist1/f.txt"] {
        assert_eq!(owner(p), (1001, 1001), "{p}");
    }
    for p in ["exist2/g.txt", "new2", "new2/deep", "new2/deep/g.txt"] {
        assert_eq!(owner(p), (1001, 1001), "{p}");
    }
    assert_eq!(
        owner("exist1"),
        (0, 0),
        "a folder that exists keeps its owner"
    );
    assert_eq!(owner("exist2"), (0, 0));
    assert_eq!(owner("new3"), (33, 50), "www-data:staff from the base");
    assert_eq!(owner("new3/renamed.txt"), (33, 50));
    assert_eq!(tr["new1"].0, 0o755);

    // The same files, a different uid from the RUN below: those layers change.
    write(&ctx, "Dockerfile", &df(1002));
    let r = build_df(&ctx, &store, &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("b2"));
    let tr = file_tree(&root);
    assert_eq!(
        (tr["new1/deep/f.txt"].1, tr["new1/deep/f.txt"].2),
        (1002, 1002)
    );
}

/// `base = { dockerfile = …, context = … }`: a definition extends the
/// Dockerfile's target stage with its own layers; the stages read their
/// own context (and its .dockerignore), the image layers the definition's.
#[test]
fn a_definition_extends_a_dockerfile_base() {
    let Some(base) = base("a_definition_extends_a_dockerfile_base") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    write(&proj, "docker/ctx/tool.txt", "tool\n");
    write(&proj, "docker/ctx/secret.txt", "keep out\n");
    write(&proj, "docker/ctx/.dockerignore", "secret.txt\n");
    write(
        &proj,
        "docker/Dockerfile",
        &format!(
            "ARG GREETING=hi\nFROM oci:{b}:latest AS build\nRUN echo built > /built.txt\n\nFROM oci:{b}:latest\nARG GREETING\nCOPY . /opt/ctx/\nCOPY --from=build /built.txt /opt/built.txt\nRUN echo $GREETING > /opt/greeting.txt\nENV FROM_DOCKERFILE=1\n",
            b = base.display()
        ),
    );
    write(&proj, "src/app.py", "print('app')\n");
    write(
        &proj,
        "imgbuild.toml",
        r#"[images.app]
base = { dockerfile = "docker/Dockerfile", context = "docker/ctx", build_args = { GREETING = "hello" } }
tag = "v1"

[[images.app.layers]]
source_folder = "src"
dst = "/app"
copy_contents_only = true

[[images.app.layers]]
env = { APP = "1" }
"#,
    );
    let store = t.path().join("store");
    let plan = plan_json(&proj, &store, &[]);
    let names: Vec<&str> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-base-build", "app-base", "app"], "{plan}");
    let out = t.path().join("out");
    let v = build_json(&proj, &store, &out, &[]);
    let tags: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["tag"].as_str())
        .collect();
    assert!(tags.contains(&"v1"), "{v}");
    let root = umoci_unpack(&out, "v1", &t.path().join("bundle"));
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("opt/ctx/tool.txt"), "tool\n");
    assert!(
        !root.join("opt/ctx/secret.txt").exists(),
        "the Dockerfile context's .dockerignore"
    );
    assert_eq!(read("opt/built.txt"), "built\n");
    assert_eq!(
        read("opt/greeting.txt"),
        "hello\n",
        "build_args reach the Dockerfile"
    );
    assert_eq!(read("app/app.py"), "print('app')\n");
    let (_, c) = Layout::new(&out).image("v1");
    let env: Vec<&str> = c["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"FROM_DOCKERFILE=1") && env.contains(&"APP=1"),
        "{env:?}"
    );

    // A Dockerfile that is not there: the definition's line says so.
    write(
        &proj,
        "imgbuild.toml",
        "[images.app]\nbase = { dockerfile = \"nope/Dockerfile\" }\n",
    );
    let r = ib(&["build"]).path_arg(&proj).cache(&store).json().run();
    assert_eq!(r.code, 2, "{r}");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("imgbuild.toml:2:") && msg.contains("no Dockerfile at"),
        "{msg}"
    );
}

/// `imgbuild export dockerfile`: the Dockerfile written for a definition
/// builds with buildah to the same file tree and config as imgbuild's own
/// build of that definition.
#[test]
fn an_exported_dockerfile_builds_the_same_image_with_buildah() {
    let Some(base) = base("an_exported_dockerfile_builds_the_same_image_with_buildah") else {
        return;
    };
    if !buildah_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    write(&proj, "app/main.py", "print('main')\n");
    write(&proj, "app/pkg/__init__.py", "");
    write(&proj, "conf/settings.yaml", "level: info\n");
    write(&proj, "static/index.html", "<p>hi</p>\n");
    write(
        &proj,
        "scripts/setup.sh",
        "echo from-bind > /opt/setup.txt\n",
    );
    write(&proj, ".dockerignore", "**/*.log\n");
    write(&proj, "app/debug.log", "x\n");
    write(
        &proj,
        "imgbuild.toml",
        &format!(
            r#"[images.app]
base = "oci:{b}:latest"
tag = "base"

[[images.app.layers]]
workdir = "/srv"

[[images.app.layers]]
source_folder = "app"
dst = "."
copy_contents_only = false

[[images.app.layers]]
source_file = "conf/settings.yaml"
dst = "/etc/app/"

[[images.app.layers]]
source_folder = "static"
dst = "/var/www/site"
copy_contents_only = true
chown = "33:33"
chmod = "0750"

[[images.app.layers]]
env = {{ APP_ENV = "prod", PATH = "/opt/tools:$PATH", QUOTED = "a \"b\" $APP_ENV" }}

[[images.app.layers]]
commands = ["useradd -u 1000 --no-log-init app", "mkdir -p /var/lib/app && chown app /var/lib/app"]
cache_mounts = ["/var/cache/app-build"]

[[images.app.layers]]
commands = ["sh /mnt/scripts/setup.sh"]
bind_mounts = ["scripts:/mnt/scripts"]
tmpfs_mounts = ["/scratch"]

[[images.app.layers]]
labels = {{ "org.opencontainers.image.title" = "exported app" }}

[[images.app.layers]]
expose = [8080, "53/udp"]

[[images.worker]]
"#,
            b = base.display()
        )
        .replace("[[images.worker]]\n", ""),
    );
    // A second image built on the first: a second stage.
    let mut toml = fs::read_to_string(proj.join("imgbuild.toml")).unwrap();
    toml.push_str(
        r#"
[images.worker]
base = "app"
tag = "latest"

[[images.worker.layers]]
user = "app"

[[images.worker.layers]]
entrypoint = ["python3", "-m", "app.main"]

[[images.worker.layers]]
cmd = ["--worker"]
"#,
    );
    fs::write(proj.join("imgbuild.toml"), toml).unwrap();
    let store = t.path().join("store");
    let ours = t.path().join("ours");
    build_json(&proj, &store, &ours, &[]);
    let exported = t.path().join("Dockerfile.exported");
    let r = ib(&["export", "dockerfile"])
        .path_arg(&proj)
        .args(&["-o", exported.to_str().unwrap()])
        .run();
    assert_eq!(r.code, 0, "{r}");
    let text = fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("FROM app AS worker") && text.contains("--mount=type=bind,source=scripts"),
        "{text}"
    );
    let (root, tr) = same_as_buildah(t.path(), "exported", &ours, &exported, &proj, &[], true);
    assert_eq!(
        tr["var/www/site/index.html"],
        (0o750, 33, 33, sha256_hex(b"<p>hi</p>\n"))
    );
    assert!(root.join("srv/app/main.py").is_file() && !root.join("srv/app/debug.log").exists());
    assert_eq!(
        fs::read_to_string(root.join("opt/setup.txt")).unwrap(),
        "from-bind\n"
    );
}

/// Stages that do not read each other run their RUN steps at the same
/// time: each records when its step started and ended, and the two spans
/// overlap. A step both stages share (same base, same command) is built
/// once; the last stage copies from both.
#[test]
fn independent_stages_run_at_the_same_time() {
    let Some(base) = base("independent_stages_run_at_the_same_time") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    let span = |name: &str| {
        format!("RUN date +%s%N > /{name}.start && sleep 3 && date +%s%N > /{name}.end")
    };
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{base}:latest AS common\n\
             RUN echo shared > /shared\n\
             FROM common AS a\n\
             RUN echo same-in-both > /both\n\
             {}\n\
             FROM common AS b\n\
             RUN echo same-in-both > /both\n\
             {}\n\
             FROM common\n\
             COPY --from=a /a.start /a.end /spans/\n\
             COPY --from=b /b.start /b.end /spans/\n",
            span("a"),
            span("b"),
            base = base.display()
        ),
    );
    let out = t.path().join("out");
    let r = build_df(&ctx, &t.path().join("store"), &out, &["-j", "2"]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let ns = |f: &str| -> u128 {
        fs::read_to_string(root.join("spans").join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (a0, a1, b0, b1) = (ns("a.start"), ns("a.end"), ns("b.start"), ns("b.end"));
    assert!(
        a0 < b1 && b0 < a1,
        "the two stages' steps overlap: a {a0}..{a1}, b {b0}..{b1}"
    );
    // The step both stages have is one layer, built once.
    let v: Value = r.json();
    assert_eq!(
        v["layers_built"].as_u64(),
        Some(6),
        "shared, both (once), a's and b's spans, two copies: {v}"
    );
}

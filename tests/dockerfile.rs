//! `imgbuild build -f Dockerfile CONTEXT`: Dockerfiles translated onto the
//! same planner, file layers and RUN sandbox, checked with umoci and skopeo.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use support::pybase::{debian_python_base, debian_tools_present};
use support::*;

fn base(test: &str) -> Option<PathBuf> {
    if !debian_tools_present(test) {
        return None;
    }
    assert!(is_root(), "{test}: run the tests as root");
    Some(debian_python_base())
}

fn build_df(ctx: &Path, store: &Path, out: &Path, extra: &[&str]) -> Run {
    ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(ctx)
        .cache(store)
        .oci_out(out)
        .json()
        .arg("-q")
        .args(extra)
        .run()
}

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
            "FROM scratch\nCOPY --from=python:3.12 /x /y\n",
            4,
            ":2:1: COPY: COPY --from an image",
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

/// Paths, modes, owners and contents (sha256) of an unpacked root, with
/// symlink targets.
fn tree(root: &Path) -> std::collections::BTreeMap<String, (u32, u32, u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                sha256_hex(&fs::read(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                "special".into()
            };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, (m.mode() & 0o7777, m.uid(), m.gid(), what));
        }
    }
    out
}

/// The Dockerfile fixtures built by imgbuild and by `buildah bud` (vfs,
/// chroot isolation) on the same base: the same file trees and configs.
#[test]
fn dockerfile_fixtures_build_like_buildah() {
    let Some(base) = base("dockerfile_fixtures_build_like_buildah") else {
        return;
    };
    if std::process::Command::new("buildah")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "buildah is needed in CI");
        eprintln!("skipping: buildah is not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let base_arg = format!("BASE=oci:{}:latest", base.display());
    for (name, dockerfile) in [
        ("dockerfile-multistage", "Dockerfile"),
        ("custom-dockerfile", "Dockerfile"),
        ("custom-dockerfile-subfolder", "docker/Dockerfile"),
    ] {
        let ctx = t.path().join(name);
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(fixtures.join(name))
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
        let theirs = t.path().join(format!("{name}-buildah"));
        let broot = t.path().join("buildah-root");
        let brun = t.path().join("buildah-run");
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
        bah(&[
            "bud",
            "--isolation",
            "chroot",
            "--build-arg",
            &base_arg,
            "-t",
            &tag,
            "-f",
            ctx.join(dockerfile).to_str().unwrap(),
            ctx.to_str().unwrap(),
        ]);
        bah(&[
            "push",
            "-q",
            &tag,
            &format!("oci:{}:latest", theirs.display()),
        ]);
        let a = umoci_unpack(&ours, "latest", &t.path().join(format!("{name}-a")));
        let b = umoci_unpack(&theirs, "latest", &t.path().join(format!("{name}-b")));
        let (ta, mut tb) = (tree(&a), tree(&b));
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
        let (ca, mut cb) = (config(&ours), config(&theirs));
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
    }
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

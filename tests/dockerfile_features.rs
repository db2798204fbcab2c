//! Dockerfile instructions with BuildKit's newer meanings: `COPY
//! --exclude`, `--parents` and `--link`, `RUN --mount=…,from=` and
//! `--mount=type=ssh`. Each builds a real Dockerfile with the imgbuild
//! binary and reads the image back with umoci.

mod support;

use serde_json::Value;
use std::fs;
use std::path::Path;

use support::pybase::dockerfile_test_base as base;
use support::*;

use support::build_dockerfile as build_df;

/// Every path of an unpacked root, relative, sorted (folders end with /).
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &e.path(), out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn manifest_layers(out: &Path) -> Vec<String> {
    Layout::new(out).layer_digests("latest")
}

fn context(dir: &Path) {
    write(dir, "app/main.py", "print('main')\n");
    write(dir, "app/notes.txt", "notes\n");
    write(dir, "app/sub/deep.py", "deep\n");
    write(dir, "app/sub/deep.txt", "deep txt\n");
    write(dir, "app/build/out.o", "obj\n");
    write(dir, "pkgs/a/pyproject.toml", "a\n");
    write(dir, "pkgs/b/pyproject.toml", "b\n");
    write(dir, "pkgs/b/README.md", "b readme\n");
    write(dir, "top.txt", "top\n");
}

/// `--exclude` leaves out what its patterns match, relative to each
/// source, for context copies and `COPY --from`; `--parents` keeps the
/// sources' folders (from the root, or after a `/./`), wildcards too.
#[test]
fn copy_exclude_and_parents_from_context_and_stage() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    context(&ctx);
    write(
        &ctx,
        "Dockerfile",
        r#"# syntax=docker/dockerfile:1
FROM scratch AS files
COPY --exclude=*.txt --exclude=build app /src/
COPY --exclude=**/*.txt app /deep/
COPY --exclude=*.txt top.txt app/notes.txt /none/
COPY --parents pkgs/*/pyproject.toml /parents/
COPY --parents ./pkgs/./b/README.md /pivot/
COPY --parents app/sub /kept/

FROM scratch
COPY --from=files --exclude=sub /src /from/
COPY --from=files --parents /parents/pkgs/*/pyproject.toml /fp/
COPY --from=files --parents /parents/./pkgs/a /fpivot/
"#,
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    build_df(&ctx, &store, &out, &["--target", "files"]).ok();
    let root = umoci_unpack(&out, "latest", &t.path().join("b1"));
    let got = tree(&root);
    for want in [
        "src/main.py",
        "src/sub/deep.py",
        "src/sub/deep.txt",
        "deep/main.py",
        "deep/sub/deep.py",
        "deep/build/out.o",
        "parents/pkgs/a/pyproject.toml",
        "parents/pkgs/b/pyproject.toml",
        "pivot/b/README.md",
        "kept/app/sub/deep.py",
        "kept/app/sub/deep.txt",
    ] {
        assert!(got.iter().any(|p| p == want), "{want} missing in {got:#?}");
    }
    for absent in [
        "src/notes.txt",
        "src/build/",
        "src/build/out.o",
        "deep/notes.txt",
        "deep/sub/deep.txt",
        "none/",
        "parents/pkgs/b/README.md",
        "pivot/pkgs/",
    ] {
        assert!(
            !got.iter().any(|p| p == absent),
            "{absent} should be left out: {got:#?}"
        );
    }

    let out2 = t.path().join("out2");
    build_df(&ctx, &store, &out2, &[]).ok();
    let root2 = umoci_unpack(&out2, "latest", &t.path().join("b2"));
    let got = tree(&root2);
    for want in [
        "from/main.py",
        "fp/parents/pkgs/a/pyproject.toml",
        "fp/parents/pkgs/b/pyproject.toml",
        "fpivot/pkgs/a/pyproject.toml",
    ] {
        assert!(got.iter().any(|p| p == want), "{want} missing in {got:#?}");
    }
    assert!(
        !got.iter().any(|p| p.starts_with("from/sub")),
        "COPY --from --exclude=sub: {got:#?}"
    );
    assert_eq!(
        fs::read_to_string(root2.join("fpivot/pkgs/a/pyproject.toml")).unwrap(),
        "a\n"
    );
}

/// `COPY --link` (and `--link=true|false`) builds the same layers as a
/// plain COPY: imgbuild's file layers never read the layers below.
#[test]
fn copy_link_is_accepted_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    context(&ctx);
    let store = t.path().join("store");
    let mut digests = Vec::new();
    for (n, flag) in ["", "--link ", "--link=true ", "--link=false "]
        .iter()
        .enumerate()
    {
        write(
            &ctx,
            "Dockerfile",
            &format!("FROM scratch\nCOPY {flag}app /app/\nCOPY {flag}--chmod=0600 top.txt /top\n"),
        );
        let out = t.path().join(format!("out{n}"));
        build_df(&ctx, &store, &out, &[]).ok();
        digests.push(manifest_layers(&out));
    }
    assert_eq!(digests[0].len(), 2);
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "--link changed the layers: {digests:#?}"
    );
}

/// Bad values name the Dockerfile's line.
#[test]
fn exclude_and_mount_errors_name_the_line() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    context(&ctx);
    let store = t.path().join("store");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\n\nCOPY --exclude=[z-a] app /app/\n",
    );
    let r = build_df(&ctx, &store, &t.path().join("o1"), &[]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stdout.contains("Dockerfile:3"), "{r}");
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch AS a\nFROM scratch AS main\nRUN --mount=type=bind,from=later,target=/m true\nFROM scratch AS later\n",
    );
    let r = build_df(&ctx, &store, &t.path().join("o2"), &["--target", "main"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stdout.contains("Dockerfile:3") && r.stdout.contains("not before"),
        "{r}"
    );
}

/// `RUN --mount=type=bind,from=STAGE` sees the stage's files; `type=cache,
/// from=STAGE` starts with them. The stage's content is part of the key:
/// the same content hits, a change rebuilds the step.
#[test]
fn run_mounts_from_a_stage_see_its_files_and_key_on_them() {
    let Some(base) = base("run_mounts_from_a_stage_see_its_files_and_key_on_them") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(&ctx, "data/v.txt", "one\n");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            r#"FROM scratch AS data
COPY data /d/

FROM oci:{}:latest
RUN --mount=type=bind,from=data,source=/d,target=/mnt/d cat /mnt/d/v.txt > /bound.txt
RUN --mount=type=cache,from=data,source=d,target=/cache,id=seeded cat /cache/v.txt > /cached.txt && echo x > /cache/new
RUN --mount=type=bind,from=data,target=/mnt/all ls /mnt/all/d > /listing.txt
"#,
            base.display()
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let v = build_df(&ctx, &store, &out, &[]).ok().json();
    let root = umoci_unpack(&out, "latest", &t.path().join("b1"));
    assert_eq!(fs::read_to_string(root.join("bound.txt")).unwrap(), "one\n");
    assert_eq!(
        fs::read_to_string(root.join("cached.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("listing.txt")).unwrap(),
        "v.txt\n"
    );
    assert!(!root.join("mnt/d/v.txt").exists(), "the mount is no layer");
    assert!(!root.join("cache/new").exists(), "the cache is no layer");
    let states = layer_cache_states(&v);
    assert!(
        states.iter().filter(|s| *s == "miss").count() >= 3,
        "{states:?}"
    );

    // Same stage content: every step hits.
    let v = build_df(&ctx, &store, &t.path().join("out2"), &[])
        .ok()
        .json();
    let states = layer_cache_states(&v);
    assert!(!states.iter().any(|s| s == "miss"), "{states:?}");

    // A change in the stage: the steps mounting it run again.
    write(&ctx, "data/v.txt", "two\n");
    let out3 = t.path().join("out3");
    let v = build_df(&ctx, &store, &out3, &[]).ok().json();
    let states = layer_cache_states(&v);
    assert!(
        states.iter().filter(|s| *s == "miss").count() >= 2,
        "{states:?}"
    );
    let root = umoci_unpack(&out3, "latest", &t.path().join("b3"));
    assert_eq!(fs::read_to_string(root.join("bound.txt")).unwrap(), "two\n");
    assert_eq!(
        fs::read_to_string(root.join("cached.txt")).unwrap(),
        "two\n",
        "a cache seeded from other content is another cache"
    );
}

/// `RUN --mount=type=ssh` reaches the agent given with `--ssh default`:
/// the socket at /run/buildkit/ssh_agent.0 and SSH_AUTH_SOCK naming it.
/// The agent (a real ssh-agent holding a key from ssh-keygen) answers
/// REQUEST_IDENTITIES with one identity. Without `--ssh`, a required
/// mount fails clearly and an optional one runs without the socket.
#[test]
fn run_mount_ssh_forwards_the_agent() {
    let Some(base) = base("run_mount_ssh_forwards_the_agent") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let sock = t.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = agent.try_wait();
    let agent = Kill(agent);
    let key = t.path().join("id_ed25519");
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test-key",
            "-f",
            key.to_str().unwrap(),
        ],
    );
    let st = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");

    let ctx = t.path().join("ctx");
    // SSH2_AGENTC_REQUEST_IDENTITIES (11) → SSH2_AGENT_IDENTITIES_ANSWER (12)
    // with a count, then the key's comment somewhere in the answer.
    write(
        &ctx,
        "probe.py",
        r#"import os, socket, struct
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["SSH_AUTH_SOCK"])
s.sendall(struct.pack(">IB", 1, 11))
n = struct.unpack(">I", s.recv(4))[0]
body = b""
while len(body) < n:
    body += s.recv(n - len(body))
print(os.environ["SSH_AUTH_SOCK"], body[0], struct.unpack(">I", body[1:5])[0], b"test-key" in body)
"#,
    );
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\nRUN --mount=type=bind,target=/ctx --mount=type=ssh,required=true python3 /ctx/probe.py > /agent.txt\n",
            base.display()
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = build_df(
        &ctx,
        &store,
        &out,
        &["--ssh", &format!("default={}", sock.display())],
    )
    .ok();
    assert!(!r.stdout.contains(sock.to_str().unwrap()), "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("b1"));
    assert_eq!(
        fs::read_to_string(root.join("agent.txt")).unwrap(),
        "/run/buildkit/ssh_agent.0 12 1 True\n"
    );
    assert!(
        !root.join("run/buildkit/ssh_agent.0").exists(),
        "the socket is no layer"
    );

    // `default` alone is $SSH_AUTH_SOCK; the socket is not in the key.
    let r = ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&store)
        .oci_out(&t.path().join("out2"))
        .json()
        .arg("-q")
        .args(&["--ssh", "default"])
        .env("SSH_AUTH_SOCK", sock.to_str().unwrap())
        .run()
        .ok();
    let states = layer_cache_states(&r.json());
    assert!(!states.iter().any(|s| s == "miss"), "{states:?}");

    // Required without --ssh: a clear error naming the line.
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\nRUN --mount=type=ssh,id=deploy,required=true echo never > /x\n",
            base.display()
        ),
    );
    let r = build_df(&ctx, &store, &t.path().join("out3"), &[]);
    assert_eq!(r.code, 2, "{r}");
    let v: Value = r.json();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Dockerfile:2") && msg.contains("--ssh deploy="),
        "{msg}"
    );
    drop(agent);
}

/// `FROM` an image whose config has ONBUILD triggers (here an OCI layout
/// built by imgbuild) runs them right after FROM, in the child's context,
/// and the child's config no longer lists them.
#[test]
fn onbuild_triggers_of_an_image_base_run_in_the_child() {
    let Some(base) = base("onbuild_triggers_of_an_image_base_run_in_the_child") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let parent = t.path().join("parent");
    write(
        &parent,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\n\
             ONBUILD COPY app.txt /app/\n\
             ONBUILD RUN echo \"triggered $(cat /app/app.txt)\" > /app/trigger\n\
             RUN echo parent > /parent\n",
            base.display()
        ),
    );
    let parent_out = t.path().join("parent-out");
    let r = build_df(&parent, &t.path().join("store"), &parent_out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let (_, pc) = Layout::new(&parent_out).image("latest");
    assert_eq!(
        pc["config"]["OnBuild"],
        serde_json::json!([
            "COPY app.txt /app/",
            "RUN echo \"triggered $(cat /app/app.txt)\" > /app/trigger"
        ]),
        "the parent keeps its triggers"
    );
    let child = t.path().join("child");
    write(&child, "app.txt", "child-context\n");
    write(
        &child,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\nRUN cat /app/trigger > /seen\n",
            parent_out.display()
        ),
    );
    let out = t.path().join("child-out");
    let r = build_df(&child, &t.path().join("store"), &out, &[]);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(root.join("seen")).unwrap(),
        "triggered child-context\n",
        "the triggers ran before the child's own steps, on the child's context"
    );
    assert_eq!(fs::read_to_string(root.join("parent")).unwrap(), "parent\n");
    let (_, cc) = Layout::new(&out).image("latest");
    assert!(
        cc["config"]["OnBuild"].is_null()
            || cc["config"]["OnBuild"]
                .as_array()
                .is_some_and(Vec::is_empty),
        "the child does not pass them on: {}",
        cc["config"]
    );
}

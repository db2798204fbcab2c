//! imgbuild's own image (`deploy/imgbuild.toml`) built by imgbuild, then
//! run the way `deploy/kubernetes-job.yaml` runs it: as uid 65532 with no
//! privileges, the Job's own arguments and environment, a workspace and an
//! empty store, pushing with credentials from `DOCKER_CONFIG` to a real
//! registry with the registry step cache.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::registry::{self as reg, Registry, RegistryOptions};
use support::*;

/// The repository's file `rel`.
fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The Job's container `name`: its `args`, and its `env` as (name, value).
fn job_container(yaml: &str, name: &str) -> (Vec<String>, Vec<(String, String)>) {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("- name: {name}"))
        .unwrap_or_else(|| panic!("no container {name} in the Job"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let item_indent = indent(lines[start]);
    let mut args = Vec::new();
    let mut env = Vec::new();
    let mut section = "";
    for l in &lines[start + 1..] {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent(l) <= item_indent {
            break;
        }
        if indent(l) == item_indent + 2 {
            section = t.split(':').next().unwrap();
            continue;
        }
        match section {
            "args" => args.push(t.trim_start_matches("- ").trim_matches('"').to_string()),
            "env" => {
                // `- { name: N, value: V }`
                let inner = t.trim_start_matches("- {").trim_end_matches('}');
                let mut name = String::new();
                let mut value = String::new();
                for part in inner.split(',') {
                    let (k, v) = part.split_once(':').unwrap();
                    let v = v.trim().trim_matches('"').to_string();
                    match k.trim() {
                        "name" => name = v,
                        "value" => value = v,
                        other => panic!("env field {other}"),
                    }
                }
                env.push((name, value));
            }
            _ => {}
        }
    }
    (args, env)
}

/// The project the Job builds: a uv project (its wheel from a local index)
/// and a source folder, on a scratch base with Python 3.11.
fn workspace_project(dir: &Path, index: &pyfix::FileServer) {
    pyfix::served_project(&dir.join("proj"), index, "app", &[("tinydep", "1.0", &[])]);
    write(dir, "src/main.py", "import tinydep\n");
    write(
        dir,
        "imgbuild.toml",
        "[images.app]\nbase = \"scratch\"\npython = \"3.11\"\ntag = \"latest\"\n\n\
         [[images.app.layers]]\nuv_project = \"proj\"\n\n\
         [[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\ncopy_contents_only = true\n",
    );
}

/// Runs `argv` in `rootfs` as uid/gid 65532 (chroot, with /dev and /proc
/// mounted in a mount namespace of its own) with exactly `env`.
fn run_as_job(rootfs: &Path, env: &[(String, String)], argv: &[String]) -> (i32, String, String) {
    let mut script = format!(
        "set -e; mount --rbind /dev {r}/dev; mount -t proc proc {r}/proc; exec env -i",
        r = rootfs.display()
    );
    for (k, v) in env {
        script.push_str(&format!(" '{k}={v}'"));
    }
    script.push_str(&format!(
        " chroot --userspec=65532:65532 {}",
        rootfs.display()
    ));
    for a in argv {
        script.push_str(&format!(" '{a}'"));
    }
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn imgbuilds_own_image_runs_the_kubernetes_job_unprivileged() {
    let test = "imgbuilds_own_image_runs_the_kubernetes_job_unprivileged";
    if !support::pybase::have_bookworm_sources(test) || !support::pybase::python_tools_present(test)
    {
        return;
    }
    assert!(is_root(), "run the tests as root (chroot, mounts)");
    let os = fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !os.contains("VERSION_CODENAME=bookworm") {
        // The binary built here must run on the image's glibc.
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI builds on bookworm"
        );
        eprintln!("skipping {test}: this host's binary may not run on bookworm's glibc");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");

    // The definition as the repository has it, the binary where a release
    // build puts it.
    let repo = t.path().join("repo");
    fs::create_dir_all(repo.join("deploy")).unwrap();
    fs::create_dir_all(repo.join("target/release")).unwrap();
    fs::copy(
        repo_file("deploy/imgbuild.toml"),
        repo.join("deploy/imgbuild.toml"),
    )
    .unwrap();
    fs::copy(bin(), repo.join("target/release/imgbuild")).unwrap();
    let layout = t.path().join("layout");
    let v = ib(&["build"])
        .path_arg(&repo.join("deploy/imgbuild.toml"))
        .cache(&store)
        .oci_out(&layout)
        .json()
        .arg("-q")
        .run()
        .ok()
        .json();
    assert_eq!(v["images"][0]["tag"], "0.1.0", "{v:#}");
    let (_, config) = Layout::new(&layout).image("0.1.0");
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{c:#}");
    assert_eq!(c["Entrypoint"][0], "/usr/local/bin/imgbuild", "{c:#}");
    let image_env: Vec<(String, String)> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let rootfs = umoci_unpack(&layout, "0.1.0", &t.path().join("bundle"));

    // uv is there for the user (pip_packages resolve with it).
    let (code, out, err) = run_as_job(&rootfs, &image_env, &["uv".into(), "--version".into()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("uv 0.13.9"), "{out}");

    // The Job: its arguments with the example registry replaced by a real
    // one that wants credentials, which come from DOCKER_CONFIG as the
    // Secret mounts them.
    let r = Registry::start(RegistryOptions::basic("ci", "s3cret"));
    let yaml = fs::read_to_string(repo_file("deploy/kubernetes-job.yaml")).unwrap();
    assert!(yaml.contains("runAsUser: 65532") && yaml.contains("runAsNonRoot: true"));
    let (args, job_env) = job_container(&yaml, "imgbuild");
    // The pod runs the image's entrypoint with the Job's args.
    let entrypoint: Vec<String> = c["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let args: Vec<String> = entrypoint
        .into_iter()
        .chain(
            args.iter()
                .map(|a| a.replace("registry.example.com", &r.host())),
        )
        .collect();
    assert!(args.contains(&"--cache-from".to_string()), "{args:?}");
    let mut env = image_env.clone();
    env.extend(job_env.iter().cloned());
    let docker = job_env
        .iter()
        .find(|(k, _)| k == "DOCKER_CONFIG")
        .map(|(_, v)| v.clone())
        .expect("the Job sets DOCKER_CONFIG");
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("ci:s3cret")
    };
    write(
        &rootfs.join(docker.trim_start_matches('/')),
        "config.json",
        &format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", r.host()),
    );
    let index = pyfix::FileServer::start(&t.path().join("www"));
    workspace_project(&rootfs.join("workspace/app"), &index);

    let job = || {
        let (code, out, err) = run_as_job(&rootfs, &env, &args);
        assert_eq!(code, 0, "{out}\n{err}");
        serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let first = job();
    let pushed = first["images"][0]["pushed"][0]["digest"].clone();
    assert!(first["layers_built"].as_u64().unwrap() >= 2, "{first:#}");
    // The store is the image's /cache, written by the unprivileged user.
    let cache = rootfs.join("cache");
    assert!(fs::read_dir(&cache).unwrap().next().is_some());
    let img = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "ci:s3cret",
        &format!("docker://{}/team/app:latest", r.host()),
    ]);
    assert_eq!(img["Digest"], pushed, "{img:#}");

    // The next pod starts with an empty store: every step is a registry
    // hit, nothing is uploaded, the same image is pushed.
    for e in fs::read_dir(&cache).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    let before = r.access_log().len();
    let second = job();
    assert_eq!(second["layers_built"], 0, "{second:#}");
    assert_eq!(second["images"][0]["pushed"][0]["digest"], pushed);
    let log = r.access_log();
    assert_eq!(reg::blob_uploads_completed(&log[before..]), 0);
}

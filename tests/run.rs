//! RUN steps (`commands`, `apt_packages`) in the namespace sandbox, on a real
//! Debian base made with mmdebstrap, checked with umoci. Every test also
//! checks that no sandbox process, mount or temp folder outlives its build.

mod support;

use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::pybase::{debian_python_base, debian_tools_present};
use support::*;

/// The base, or None when the tools are missing outside CI (then skipped).
fn base(test: &str) -> Option<PathBuf> {
    if !debian_tools_present(test) {
        return None;
    }
    assert!(
        is_root(),
        "{test}: run the tests as root (umoci unpack keeps owners only then)"
    );
    Some(debian_python_base())
}

fn write_def(dir: &Path, base: &Path, layers: &str) -> PathBuf {
    mkdirs(dir);
    let text = format!(
        "[images.t]\nbase = \"oci:{}:latest\"\n\n{layers}",
        base.display()
    );
    write(dir, "imgbuild.toml", &text)
}

/// Nothing of a build is left: no process whose command line holds
/// `marker`, no mount naming the store, no sandbox temp folder.
#[track_caller]
fn assert_nothing_left(store: &Path, marker: &str) {
    let store_s = store.to_str().unwrap();
    let mut procs = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !marker.is_empty() && cmd.contains(marker) {
            procs.push(format!("{}: {cmd}", name.to_string_lossy()));
        }
        if let Ok(mi) = fs::read_to_string(e.path().join("mountinfo"))
            && mi.contains(store_s)
        {
            procs.push(format!(
                "{} has a mount in the store",
                name.to_string_lossy()
            ));
        }
    }
    assert!(procs.is_empty(), "left behind: {procs:?}");
    let tmp: Vec<String> = fs::read_dir(store.join("tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("run-") || n.starts_with("rootfs-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(tmp.is_empty(), "temp folders left in the store: {tmp:?}");
}

fn layer_digests(out: &Path) -> Vec<String> {
    Layout::new(out).layer_digests("latest")
}

fn last_layer(out: &Path) -> Vec<TarEntry> {
    let lay = Layout::new(out);
    let (m, _) = lay.image("latest");
    let layers = m["layers"].as_array().unwrap();
    lay.layer_entries(&layers[layers.len() - 1])
}

fn paths(entries: &[TarEntry]) -> Vec<String> {
    entries.iter().map(|e| e.path.clone()).collect()
}

#[test]
fn command_changes_become_an_exact_layer_that_umoci_applies() {
    let Some(base) = base("command_changes_become_an_exact_layer_that_umoci_applies") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let def = write_def(
        &t.path().join("def"),
        &base,
        "[[images.t.layers]]\ncommands = [\"mkdir -p /opt/app && echo new > /opt/app/new.txt && chmod 0750 /opt/app/new.txt && ln -s new.txt /opt/app/link && echo changed >> /etc/issue && rm /etc/motd && rm -rf /usr/share/doc && echo \\\"$(id -u) $(hostname) $(pwd)\\\" > /opt/app/who\"]\n",
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let v = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["base", "miss"], "{v:#}");
    assert_nothing_left(&store, "");

    // The layer holds exactly the changes: sorted, clamped mtimes, root
    // owners, whiteouts for the deletions, nothing the sandbox mounted.
    let entries = last_layer(&out);
    let p = paths(&entries);
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(p, sorted, "entries sorted by path");
    for want in [
        "etc/.wh.motd",
        "etc/issue",
        "opt/app/new.txt",
        "opt/app/link",
        "usr/share/.wh.doc",
    ] {
        assert!(p.iter().any(|x| x == want), "{want} missing from {p:?}");
    }
    for e in &entries {
        assert_eq!(
            e.mtime, 0,
            "{}: mtime clamped to SOURCE_DATE_EPOCH (0)",
            e.path
        );
        assert_eq!((e.uid, e.gid), (0, 0), "{}", e.path);
        for never in [
            "proc/",
            "dev/",
            "sys/",
            "etc/resolv.conf",
            "etc/hosts",
            "run/",
        ] {
            assert!(
                !e.path.starts_with(never),
                "{} is the sandbox's, not the step's",
                e.path
            );
        }
    }
    let new = entries
        .iter()
        .find(|e| e.path == "opt/app/new.txt")
        .unwrap();
    assert_eq!(new.mode & 0o7777, 0o750);
    assert!(
        !p.iter().any(|x| x.starts_with("usr/share/doc/")),
        "a deleted folder is one whiteout"
    );

    // umoci applies it: additions, changes and deletions.
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(root.join("opt/app/new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(
        fs::read_link(root.join("opt/app/link")).unwrap(),
        Path::new("new.txt")
    );
    assert!(
        fs::read_to_string(root.join("etc/issue"))
            .unwrap()
            .ends_with("changed\n")
    );
    assert!(!root.join("etc/motd").exists());
    assert!(!root.join("usr/share/doc").exists());
    assert!(
        root.join("usr/share/base-files").is_dir(),
        "the rest is intact"
    );
    assert!(root.join("usr/bin/python3").exists());
    assert_eq!(
        fs::read_to_string(root.join("opt/app/who")).unwrap(),
        "0 imgbuild /\n",
        "runs as the image's root, with its own hostname, in the workdir"
    );

    // A rerun is a hit with the same digest; a build from scratch in a new
    // store makes the same layer.
    let again = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&again), ["base", "hit"]);
    assert_eq!(again["images"][0]["digest"], v["images"][0]["digest"]);
    let out2 = t.path().join("out2");
    build_json(&def, &t.path().join("store2"), &out2, &[]);
    assert_eq!(layer_digests(&out2), layer_digests(&out));
    assert_nothing_left(&store, "");
}

/// A copy of the layout `base` whose image config sets Docker's `Shell`.
fn with_shell(base: &Path, dir: &Path, shell: &[&str]) -> PathBuf {
    let status = Command::new("cp")
        .arg("-a")
        .arg(base)
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let lay = Layout::new(dir);
    let (mut manifest, mut config) = lay.image("latest");
    config["config"]["Shell"] = json!(shell);
    let put = |bytes: Vec<u8>| -> (String, usize) {
        let h = sha256_hex(&bytes);
        fs::write(dir.join("blobs/sha256").join(&h), &bytes).unwrap();
        (format!("sha256:{h}"), bytes.len())
    };
    let (cd, cs) = put(serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(cd);
    manifest["config"]["size"] = json!(cs);
    let (md, ms) = put(serde_json::to_vec(&manifest).unwrap());
    let mut index = lay.index();
    index["manifests"][0]["digest"] = json!(md);
    index["manifests"][0]["size"] = json!(ms);
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    dir.to_path_buf()
}

#[test]
fn steps_use_the_shell_the_base_image_names() {
    let Some(base) = base("steps_use_the_shell_the_base_image_names") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let bash_base = with_shell(&base, &t.path().join("bash-base"), &["/bin/bash", "-c"]);
    let def = write_def(
        &t.path().join("def"),
        &bash_base,
        "[[images.t.layers]]\ncommands = [\"echo ${BASH_VERSION:+bash} > /shell\"]\n",
    );
    let out = t.path().join("out");
    build_json(&def, &t.path().join("store"), &out, &[]);
    let e = last_layer(&out)
        .into_iter()
        .find(|e| e.path == "shell")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&e.data), "bash\n");
}

#[test]
fn bind_mounts_show_context_files_keyed_by_their_contents() {
    let Some(base) = base("bind_mounts_show_context_files_keyed_by_their_contents") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("def");
    write(&dir, "tools/hello.sh", "echo hello from the context\n");
    let def = write_def(
        &dir,
        &base,
        "[[images.t.layers]]\ncommands = [\"sh /mnt/tools/hello.sh > /out && ! touch /mnt/tools/x 2>/dev/null\"]\nbind_mounts = [\"tools:/mnt/tools\"]\n",
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    build_json(&def, &store, &out, &[]);
    let entries = last_layer(&out);
    let p = paths(&entries);
    assert_eq!(p, ["out"], "only what the step wrote, not the mount: {p:?}");
    assert_eq!(
        String::from_utf8_lossy(&entries[0].data),
        "hello from the context\n"
    );
    // The mounted files are part of the key: an edit runs the step again.
    let v = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["base", "hit"]);
    write(&dir, "tools/hello.sh", "echo changed\n");
    let v = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["base", "miss"]);
    let entries = last_layer(&out);
    assert_eq!(String::from_utf8_lossy(&entries[0].data), "changed\n");
    assert_nothing_left(&store, "");
}

#[test]
fn apt_packages_installs_jq_and_a_later_command_runs_it() {
    let Some(base) = base("apt_packages_installs_jq_and_a_later_command_runs_it") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let def = write_def(
        &t.path().join("def"),
        &base,
        "[[images.t.layers]]\napt_packages = [\"jq\"]\n\n[[images.t.layers]]\ncommands = [\"jq -n '1+1' > /two\"]\n",
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let v = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["base", "miss", "miss"], "{v:#}");
    let lay = Layout::new(&out);
    let (m, _) = lay.image("latest");
    let apt = lay.layer_entries(&m["layers"][1]);
    let p = paths(&apt);
    assert!(p.iter().any(|x| x == "usr/bin/jq"), "{p:?}");
    // Package lists and downloads stay in the cache mounts; install logs
    // (which carry times) are not kept.
    for e in &p {
        assert!(
            !(e.ends_with(".deb")
                || e.starts_with("var/log/dpkg.log")
                || e.starts_with("var/log/apt/history.log")
                || (e.starts_with("var/lib/apt/lists/") && e.len() > "var/lib/apt/lists/".len())),
            "{e} should not be in the apt layer"
        );
    }
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    assert_eq!(fs::read_to_string(root.join("two")).unwrap(), "2\n");
    assert!(root.join("usr/bin/jq").is_file());
    // The apt cache persisted in the store for the next build.
    let caches: Vec<_> = fs::read_dir(store.join("cache-mounts")).unwrap().collect();
    assert_eq!(caches.len(), 2, "apt archives and lists");

    // From scratch again: the same layers, byte for byte.
    let out2 = t.path().join("out2");
    let store2 = t.path().join("store2");
    build_json(&def, &store2, &out2, &[]);
    assert_eq!(layer_digests(&out2), layer_digests(&out));
    assert_nothing_left(&store, "");
    assert_nothing_left(&store2, "");
}

#[test]
fn a_failing_command_reports_its_status_and_output_and_caches_nothing() {
    let Some(base) = base("a_failing_command_reports_its_status_and_output_and_caches_nothing")
    else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let marker = format!("marker-fail-{}", std::process::id());
    let def = write_def(
        &t.path().join("def"),
        &base,
        &format!(
            "[[images.t.layers]]\ncommands = [\"echo {marker}-out; echo {marker}-err >&2; touch /half-done; exit 3\"]\n"
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = ib(&["build"])
        .path_arg(&def)
        .cache(&store)
        .oci_out(&out)
        .json()
        .run();
    assert_eq!(r.code, 7, "{r}");
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "step", "{r}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "{}:5:1: images.t.layers[0].commands: ",
            def.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("exit status 3"), "{msg}");
    assert!(
        msg.contains(&format!("{marker}-out")) && msg.contains(&format!("{marker}-err")),
        "{msg}"
    );
    assert!(!out.exists(), "no image is written for a failed build");
    // Nothing cached: the step still misses.
    let plan = plan_json(&def, &store, &[]);
    let steps = plan_steps(&plan, "t");
    assert_eq!(steps[0]["cache"], "miss", "{plan:#}");
    assert_nothing_left(&store, &marker);
}

#[test]
fn timeouts_stop_the_step_and_network_none_has_only_loopback() {
    let Some(base) = base("timeouts_stop_the_step_and_network_none_has_only_loopback") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    // Without a network: /proc/net/dev lists only lo.
    let def = write_def(
        &t.path().join("none"),
        &base,
        "[[images.t.layers]]\ncommands = [\"grep -c : /proc/net/dev > /ifaces\"]\nnetwork = \"none\"\n",
    );
    let out = t.path().join("out");
    build_json(&def, &store, &out, &[]);
    let ifaces = last_layer(&out)
        .into_iter()
        .find(|e| e.path == "ifaces")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ifaces.data), "1\n");

    let marker = format!("marker-timeout-{}", std::process::id());
    let def = write_def(
        &t.path().join("slow"),
        &base,
        &format!(
            "[[images.t.layers]]\ncommands = [\"sleep 300 & sleep 301; echo {marker}\"]\ntimeout = \"2s\"\n"
        ),
    );
    let started = Instant::now();
    let r = ib(&["build"])
        .path_arg(&def)
        .cache(&store)
        .oci_out(&t.path().join("out-slow"))
        .json()
        .run();
    assert_eq!(r.code, 7, "{r}");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 2"),
        "{r}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // The shell and both sleeps are gone (they die with the pid namespace).
    std::thread::sleep(Duration::from_millis(300));
    assert_nothing_left(&store, &marker);
}

#[test]
fn interrupting_imgbuild_stops_the_step_and_leaves_nothing() {
    let Some(base) = base("interrupting_imgbuild_stops_the_step_and_leaves_nothing") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let marker = format!("marker-interrupt-{}", std::process::id());
    let def = write_def(
        &t.path().join("def"),
        &base,
        &format!("[[images.t.layers]]\ncommands = [\"sleep 300; echo {marker}\"]\n"),
    );
    let running = ib(&["build"])
        .path_arg(&def)
        .cache(&store)
        .oci_out(&t.path().join("out"))
        .spawn();
    let pid = running.pid();
    // Wait for the step's shell to run.
    let started = Instant::now();
    let shell_running = || {
        fs::read_dir("/proc").unwrap().flatten().any(|e| {
            fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
    };
    while !shell_running() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGINT to imgbuild alone (not its process group): as a Ctrl-C would.
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r = running.wait();
    assert_ne!(r.code, 0, "{r}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!shell_running(), "the step's processes are gone");
    assert!(!t.path().join("out").exists());
    // What the interrupted build left in the store's temp folder goes with
    // the next prune; nothing is mounted.
    ib(&["cache", "prune", "--older-than", "0"])
        .cache(&store)
        .run()
        .ok();
    assert_nothing_left(&store, &marker);
}

#[test]
fn secrets_stay_out_of_layers_keys_logs_and_output() {
    let Some(base) = base("secrets_stay_out_of_layers_keys_logs_and_output") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let file_secret = "file-secret-VALUE-1f2e";
    let env_secret = "env-secret-VALUE-9a8b";
    let secret_file = write(t.path(), "tok.txt", file_secret);
    let def = write_def(
        &t.path().join("def"),
        &base,
        // The command names the values only by their hashes.
        &format!(
            "[[images.t.layers]]\ncommands = [\"test $(printf %s \\\"$TOKEN\\\" | sha256sum | cut -c1-64) = {} && test $(sha256sum < /run/secrets/tok | cut -c1-64) = {} && test -f /etc/tok2 && echo checked > /ok\"]\nsecret_mounts = [\"tok\", \"tok2,env=TOKEN,target=/etc/tok2\"]\n",
            sha256_hex(env_secret.as_bytes()),
            sha256_hex(file_secret.as_bytes())
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("out");
    let build = |file: &Path, env_value: &str, out: &Path| {
        ib(&["build"])
            .path_arg(&def)
            .cache(&store)
            .oci_out(out)
            .json()
            .arg("--secret")
            .arg(format!("id=tok,src={}", file.display()))
            .args(&["--secret", "id=tok2,env=MY_SECRET"])
            .env("MY_SECRET", env_value)
            .run()
    };
    let r = build(&secret_file, env_secret, &out).ok();
    for s in [file_secret, env_secret] {
        assert!(!r.stdout.contains(s) && !r.stderr.contains(s), "{r}");
    }
    let entries = last_layer(&out);
    let p = paths(&entries);
    assert!(p.iter().any(|x| x == "ok"), "{p:?}");
    assert!(
        !p.iter()
            .any(|x| x.starts_with("run/") || x.starts_with("etc/tok2")),
        "secret mount points are not in the layer: {p:?}"
    );
    // Not in any byte the store or the output keeps.
    for dir in [&store, &out] {
        for f in list_files(dir) {
            // Regular files only (the root filesystems hold fifos).
            if !fs::symlink_metadata(dir.join(&f)).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let bytes = fs::read(dir.join(&f)).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let layer = if bytes.starts_with(&[0x1f, 0x8b]) {
                // Layers are compressed: look inside too.
                decompress(&bytes, MT_GZIP)
            } else {
                Vec::new()
            };
            let inner = String::from_utf8_lossy(&layer);
            for s in [file_secret, env_secret] {
                assert!(!text.contains(s) && !inner.contains(s), "{s} found in {f}");
            }
        }
    }
    // Other values: the step key does not depend on them (a hit).
    let other = write(t.path(), "tok-other.txt", "another-value");
    let again = build(&other, "another-env", &t.path().join("out2")).ok();
    assert_eq!(layer_cache_states(&again.json()), ["base", "hit"]);
    // A secret that is not given is an error naming it.
    let missing = ib(&["build"])
        .path_arg(&def)
        .cache(&t.path().join("store-missing"))
        .oci_out(&t.path().join("out3"))
        .json()
        .run();
    assert_eq!(missing.code, 2, "{missing}");
    assert!(
        missing.stdout.contains("secret \\\"tok\\\" was not given"),
        "{missing}"
    );
    assert_nothing_left(&store, "");
}

/// A step that prints its secrets and fails: the values are masked in its
/// output on stderr and in the failure's message in the JSON result.
#[test]
fn secrets_a_failing_step_prints_are_masked() {
    let Some(base) = base("secrets_a_failing_step_prints_are_masked") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let file_secret = "file-secret-VALUE-77aa";
    let env_secret = "env-secret-VALUE-55bb";
    let secret_file = write(t.path(), "tok.txt", &format!("{file_secret}\n"));
    let def = write_def(
        &t.path().join("def"),
        &base,
        "[[images.t.layers]]\ncommands = [\"cat /run/secrets/tok; echo \\\"token=$TOKEN\\\"; exit 3\"]\nsecret_mounts = [\"tok\", \"tok2,env=TOKEN\"]\n",
    );
    for json in [false, true] {
        let mut cmd = ib(&["build"])
            .path_arg(&def)
            .cache(&t.path().join("store"))
            .oci_out(&t.path().join("out"))
            .arg("--secret")
            .arg(format!("id=tok,src={}", secret_file.display()))
            .args(&["--secret", "id=tok2,env=MY_SECRET"])
            .env("MY_SECRET", env_secret);
        if json {
            cmd = cmd.json();
        }
        let r = cmd.run();
        assert_eq!(r.code, 7, "{r}");
        for s in [file_secret, env_secret] {
            assert!(
                !r.stdout.contains(s) && !r.stderr.contains(s),
                "{s} shown:\n{r}"
            );
        }
        let shown = if json { &r.stdout } else { &r.stderr };
        assert!(shown.contains("token=****"), "masked, not dropped:\n{r}");
    }
}

/// A layer tar whose names are written raw (the tar crate's builder would
/// refuse `..`).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An OCI layout with one uncompressed layer, tagged `latest`.
fn layout_with_layer(dir: &Path, layer: &[u8]) {
    layout_claiming(dir, layer, None);
}

/// [`layout_with_layer`] whose config names `diff_id` (when given) as the
/// layer's, whatever its bytes are.
fn layout_claiming(dir: &Path, layer: &[u8], diff_id: Option<&str>) {
    let blobs = dir.join("blobs/sha256");
    mkdirs(&blobs);
    let put = |bytes: &[u8]| -> String {
        let h = sha256_hex(bytes);
        fs::write(blobs.join(&h), bytes).unwrap();
        format!("sha256:{h}")
    };
    let layer_d = put(layer);
    let claimed = diff_id
        .map(str::to_string)
        .unwrap_or_else(|| layer_d.clone());
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [claimed]},
    }))
    .unwrap();
    let config_d = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_d = put(&manifest);
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": MT_MANIFEST, "digest": manifest_d, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A base whose config names a diff_id its layer does not have is refused
/// (exit 3) before a step runs on it, also when a root filesystem made
/// from a layer that does have that diff_id is cached.
#[test]
fn base_layers_must_match_their_diff_ids() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let honest = raw_tar(&[("honest", tar::EntryType::Regular, "", b"h")]);
    let liar = raw_tar(&[("liar", tar::EntryType::Regular, "", b"l")]);
    let honest_id = format!("sha256:{}", sha256_hex(&honest));
    let build = |name: &str, layer: &[u8], claim: Option<&str>| {
        let layout = t.path().join(format!("base-{name}"));
        layout_claiming(&layout, layer, claim);
        let def = write_def(
            &t.path().join(format!("def-{name}")),
            &layout,
            "[[images.t.layers]]\ncommands = [\"true\"]\n",
        );
        ib(&["build"])
            .path_arg(&def)
            .cache(&store)
            .oci_out(&t.path().join(format!("out-{name}")))
            .json()
            .run()
    };
    // The honest base's root filesystem is made (and kept); it has no
    // shell, so its step cannot run.
    let r = build("honest", &honest, None);
    assert_eq!(r.code, 7, "{r}");
    // The liar claims the honest layer's diff_id.
    let r = build("liar", &liar, Some(&honest_id));
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains(&format!("not the diff_id {honest_id}")),
        "{r}"
    );
}

/// A base layer that unpacks to more than `--max-layer-size` (or
/// `IMGBUILD_MAX_LAYER_SIZE`) stops the build with a bad-input error naming
/// the layer and the flag, before a step runs on it; under the limit the
/// layer is read whole (this base has no shell, so the step then fails for
/// that reason instead).
#[test]
fn a_base_layer_larger_than_the_limit_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let layer = raw_tar(&[("big", tar::EntryType::Regular, "", &vec![0u8; 3 << 20])]);
    let layout = t.path().join("base");
    layout_with_layer(&layout, &layer);
    let def = write_def(
        &t.path().join("def"),
        &layout,
        "[[images.t.layers]]\ncommands = [\"true\"]\n",
    );
    let store = t.path().join("store");
    let build = |extra: &[&str], env: Option<&str>| {
        let mut b = ib(&["build"])
            .path_arg(&def)
            .cache(&store)
            .oci_out(&t.path().join("out"))
            .json()
            .args(extra);
        if let Some(v) = env {
            b = b.env("IMGBUILD_MAX_LAYER_SIZE", v);
        }
        b.run()
    };
    for r in [
        build(&["--max-layer-size", "2m"], None),
        build(&[], Some("2MiB")),
    ] {
        assert_eq!(r.code, 3, "{r}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains("layer sha256:")
                && msg.contains("more than 2097152 bytes")
                && msg.contains("--max-layer-size"),
            "{r}"
        );
        assert!(!t.path().join("out/index.json").exists(), "{r}");
    }
    let r = build(&["--max-layer-size", "4m"], None);
    assert_eq!(r.code, 7, "read whole, then no shell: {r}");
    assert!(r.stdout.contains("/bin/sh"), "{r}");
    let r = build(&["--max-layer-size", "4 apples"], None);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("\"4 apples\""), "{r}");
}

#[test]
fn hostile_base_layers_cannot_write_outside_the_root() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    mkdirs(&outside);
    let abs = outside.to_str().unwrap().to_string();
    let rel_up = "../".repeat(12);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "symlinks",
            raw_tar(&[
                ("esc", tar::EntryType::Symlink, &abs, b""),
                ("esc/pwned", tar::EntryType::Regular, "", b"x"),
                ("up", tar::EntryType::Symlink, &rel_up, b""),
                (
                    &format!("up{}/pwned2", &abs),
                    tar::EntryType::Regular,
                    "",
                    b"x",
                ),
            ]),
        ),
        (
            "climb",
            raw_tar(&[(
                "../../../../../../../../tmp/pwned3",
                tar::EntryType::Regular,
                "",
                b"x",
            )]),
        ),
        (
            "hardlink",
            raw_tar(&[(
                "hl",
                tar::EntryType::Link,
                &format!("{rel_up}etc/passwd"),
                b"",
            )]),
        ),
        ("truncated", {
            let mut t = raw_tar(&[("big", tar::EntryType::Regular, "", &[7u8; 4000])]);
            t.truncate(2048);
            t
        }),
    ];
    for (name, layer) in cases {
        let layout = t.path().join(format!("base-{name}"));
        layout_with_layer(&layout, &layer);
        let def = write_def(
            &t.path().join(format!("def-{name}")),
            &layout,
            "[[images.t.layers]]\ncommands = [\"true\"]\n",
        );
        let store = t.path().join(format!("store-{name}"));
        let r = ib(&["build"])
            .path_arg(&def)
            .cache(&store)
            .oci_out(&t.path().join(format!("out-{name}")))
            .json()
            .run();
        // The base has no shell, so no build succeeds; what matters is
        // where its files went.
        assert_ne!(r.code, 0, "{r}");
        assert_eq!(list_files(&outside), Vec::<String>::new(), "{name}: {r}");
        assert!(!Path::new("/tmp/pwned3").exists());
        if name == "truncated" {
            assert_eq!(r.code, 3, "a corrupt base layer is a bad input: {r}");
            assert!(r.stdout.contains("layer sha256:"), "{r}");
        } else if name != "symlinks" {
            assert!(
                r.stdout.contains("climbs out of the root"),
                "{name}: refused with a reason\n{r}"
            );
            assert_eq!(
                r.code, 3,
                "{name}: a hostile base layer is a bad input: {r}"
            );
        } else {
            // The base has no /bin/sh: the step says so.
            assert_eq!(r.code, 7, "{r}");
            assert!(
                r.stdout
                    .contains("cannot run /bin/sh: it is not in the image"),
                "{r}"
            );
            // Followed inside the root instead.
            let roots: Vec<_> = fs::read_dir(store.join("rootfs"))
                .unwrap()
                .flatten()
                .collect();
            assert_eq!(roots.len(), 1);
            let root = roots[0].path();
            assert!(
                root.join(abs.trim_start_matches('/'))
                    .join("pwned")
                    .is_file()
            );
            assert!(
                root.join(abs.trim_start_matches('/'))
                    .join("pwned2")
                    .is_file()
            );
        }
        assert_nothing_left(&store, "");
    }
}

/// A folder nobody (65534) will own, holding a copy of `base`; its parent
/// is searchable. Returns the temp dir, the folder and the base's copy.
fn nobody_workspace(base: &Path) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    mkdirs(&work);
    fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ubase = work.join("base");
    let status = Command::new("cp")
        .arg("-a")
        .arg(base)
        .arg(&ubase)
        .status()
        .unwrap();
    assert!(status.success());
    (t, work, ubase)
}

/// Gives everything below `work` to nobody.
fn chown_nobody(work: &Path) {
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(work)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `imgbuild ARGS` as nobody, with IMGBUILD_USERNS=`userns`; must succeed.
#[track_caller]
fn as_nobody(work: &Path, userns: &str, args: &[&std::ffi::OsStr]) -> String {
    as_nobody_env(work, userns, &[], args)
}

/// [`as_nobody`] with more environment variables.
#[track_caller]
fn as_nobody_env(
    work: &Path,
    userns: &str,
    env: &[(&str, &str)],
    args: &[&std::ffi::OsStr],
) -> String {
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "env",
        ])
        .arg(format!("HOME={}", work.display()))
        .arg(format!("IMGBUILD_USERNS={userns}"))
        .args(env.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(bin())
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "unprivileged imgbuild {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `build --format json -q` of `def` as nobody into `store` and `out`.
#[track_caller]
fn build_as_nobody(work: &Path, userns: &str, def: &Path, store: &Path, out: &Path) -> Value {
    build_as_nobody_env(work, userns, &[], def, store, out)
}

#[track_caller]
fn build_as_nobody_env(
    work: &Path,
    userns: &str,
    env: &[(&str, &str)],
    def: &Path,
    store: &Path,
    out: &Path,
) -> Value {
    let output = format!("oci:{}", out.display());
    let text = as_nobody_env(
        work,
        userns,
        env,
        &[
            "build".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "-q".as_ref(),
            "--cache-dir".as_ref(),
            store.as_os_str(),
            "--output".as_ref(),
            output.as_ref(),
            def.as_os_str(),
        ],
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn an_unprivileged_user_builds_the_same_layers_as_root() {
    let Some(base) = base("an_unprivileged_user_builds_the_same_layers_as_root") else {
        return;
    };
    if Command::new("setpriv").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "setpriv (util-linux) is needed in CI"
        );
        return;
    }
    // Everything the unprivileged build touches belongs to nobody.
    let (t, work, ubase) = nobody_workspace(&base);
    let layers = "[[images.t.layers]]\ncommands = [\"echo u > /u.txt && rm /etc/motd && mkdir -p /srv/x && chmod 0700 /srv/x\"]\n\n[[images.t.layers]]\napt_packages = [\"jq\"]\n";
    let def = write_def(&work.join("def"), &ubase, layers);
    chown_nobody(&work);

    let root_out = t.path().join("root-out");
    build_json(&def, &t.path().join("root-store"), &root_out, &[]);

    let ustore = work.join("store");
    let uout = work.join("out");
    // Only the caller mapped, even where subordinate ids exist.
    let v = build_as_nobody(&work, "single", &def, &ustore, &uout);
    assert_eq!(layer_cache_states(&v), ["base", "miss", "miss"]);
    assert_eq!(
        layer_digests(&uout),
        layer_digests(&root_out),
        "the same layers with and without root"
    );
    // The user's files really were made by that user.
    assert_eq!(fs::metadata(ustore.join("blobs")).unwrap().uid(), 65534);
    assert_nothing_left(&ustore, "");
}

/// Subordinate ids for nobody (65534) while it lives: `/etc/subuid` and
/// `/etc/subgid` get a range, and are put back as they were on drop. One
/// test at a time holds it (tests of this binary run in parallel).
struct SubIds {
    old: Vec<(PathBuf, Option<Vec<u8>>)>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl SubIds {
    fn grant() -> SubIds {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let files: Vec<PathBuf> = ["/etc/subuid", "/etc/subgid"].map(PathBuf::from).to_vec();
        let old = files
            .iter()
            .map(|p| (p.clone(), fs::read(p).ok()))
            .collect();
        let ids = SubIds { old, _lock: lock };
        for p in &files {
            let mut text = fs::read_to_string(p).unwrap_or_default();
            text.push_str("65534:400000:65536\n");
            fs::write(p, text).unwrap();
        }
        ids
    }
}

impl Drop for SubIds {
    fn drop(&mut self) {
        for (p, old) in &self.old {
            match old {
                Some(b) => {
                    let _ = fs::write(p, b);
                }
                None => {
                    let _ = fs::remove_file(p);
                }
            }
        }
    }
}

/// Whether newuidmap and setpriv are here (they must be in CI).
fn subid_tools_present() -> bool {
    let have = |t: &str| Command::new(t).arg("--help").output().is_ok();
    if !have("newuidmap") || !have("setpriv") {
        assert!(
            std::env::var_os("CI").is_none(),
            "newuidmap (uidmap) and setpriv are needed in CI"
        );
        return false;
    }
    true
}

#[test]
fn subordinate_ids_keep_owners_and_let_steps_switch_users() {
    let Some(base) = base("subordinate_ids_keep_owners_and_let_steps_switch_users") else {
        return;
    };
    if !subid_tools_present() {
        return;
    }
    let _ids = SubIds::grant();
    let (t, work, ubase) = nobody_workspace(&base);
    // A user made by one step; a later step runs as that user.
    let layers = "[[images.t.layers]]\ncommands = [\"useradd -m -u 1000 app && chown app:app /srv && chmod 0640 /etc/shadow\"]\n\n[[images.t.layers]]\nuser = \"app\"\n\n[[images.t.layers]]\ncommands = [\"id -u > /srv/uid && touch /home/app/mine\"]\n";
    let def = write_def(&work.join("def"), &ubase, layers);
    chown_nobody(&work);

    let root_out = t.path().join("root-out");
    build_json(&def, &t.path().join("root-store"), &root_out, &[]);

    let ustore = work.join("store");
    let uout = work.join("out");
    build_as_nobody(&work, "range", &def, &ustore, &uout);
    // The same layers as root: owners other than root kept.
    assert_eq!(layer_digests(&uout), layer_digests(&root_out));
    let entries = last_layer(&uout);
    let uid = entries
        .iter()
        .find(|e| e.path == "srv/uid")
        .expect("srv/uid");
    assert_eq!(String::from_utf8_lossy(&uid.data), "1000\n");
    assert_eq!((uid.uid, uid.gid), (1000, 1000));
    let mine = entries
        .iter()
        .find(|e| e.path == "home/app/mine")
        .expect("mine");
    assert_eq!((mine.uid, mine.gid), (1000, 1000));
    let lay = Layout::new(&uout);
    let (m, _) = lay.image("latest");
    let first = lay.layer_entries(&m["layers"][1]);
    let shadow = first
        .iter()
        .find(|e| e.path == "etc/shadow")
        .expect("shadow");
    assert_eq!(shadow.gid, 42, "shadow keeps its group");
    // The unprivileged store can be pruned (its roots belong to subordinate ids).
    as_nobody(
        &work,
        "range",
        &[
            "cache".as_ref(),
            "prune".as_ref(),
            "--older-than".as_ref(),
            "0".as_ref(),
            "--cache-dir".as_ref(),
            ustore.as_os_str(),
        ],
    );
    assert_eq!(fs::read_dir(ustore.join("rootfs")).unwrap().count(), 0);
    assert_nothing_left(&ustore, "");
}

/// Two versions of a package whose folder keeps most of its files: `demo`
/// 1.0 and 2.0 share `_log.py` and `sub/util.py` byte for byte; 2.0's
/// `__init__` imports from both and from a module 1.0 did not have.
fn demo_wheels(dir: &Path) {
    use support::pyfix::{WheelSpec, write_wheel};
    let shared = [
        ("demo/_log.py", "name = 'logname'\n"),
        ("demo/sub/__init__.py", ""),
        ("demo/sub/util.py", "def util():\n    return 'util'\n"),
    ];
    for (version, init, extra) in [
        ("1.0", "VERSION = '1'\n", None),
        (
            "2.0",
            "from ._log import name\nfrom .sub.util import util\nfrom .more import more\nVERSION = '2'\n",
            Some(("demo/more.py", "more = 'more'\n")),
        ),
    ] {
        let mut spec = WheelSpec::new("demo", version, "py3-none-any")
            .file("demo/__init__.py", init.as_bytes());
        for (p, text) in shared.iter().copied().chain(extra) {
            spec = spec.file(p, text.as_bytes());
        }
        write_wheel(dir, &spec);
    }
}

/// What the steps below start from: /d with nested folders, hard links,
/// symlinks and files owned by others, and a venv holding demo 1.0 (pip
/// from Debian's python3-venv).
const RECREATE_PREP: &str = r#"[[images.t.layers]]
apt_packages = ["python3-venv"]

[[images.t.layers]]
source_folder = "wheels"
dst = "/wheels"

[[images.t.layers]]
commands = ["python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --no-cache-dir --disable-pip-version-check --no-compile --find-links /wheels demo==1.0 && rm -rf /root/.cache"]

[[images.t.layers]]
commands = ["mkdir -p /d/sub/deep /d/gone && echo same > /d/keep && echo old > /d/chg && echo same > /d/sub/k2 && echo deep > /d/sub/deep/k3 && echo same > /d/modeonly && echo same > /d/owneronly && echo same > /d/theirs && chown 7:7 /d/theirs && echo hl > /d/hl1 && ln /d/hl1 /d/hl2 && echo split > /d/split1 && ln /d/split1 /d/split2 && ln -s keep /d/link && ln -s keep /d/relink && echo x > /d/gone/x && echo rm > /d/removed"]
"#;

/// Deletes /d and makes it again, mostly as it was; upgrades demo with pip
/// (which deletes the package's folder and writes it again); then reads
/// what the first two steps kept.
const RECREATE_STEPS: &str = r#"[[images.t.layers]]
commands = ["rm -rf /d && mkdir -p /d/sub/deep && echo same > /d/keep && echo new > /d/chg && echo same > /d/sub/k2 && echo deep > /d/sub/deep/k3 && echo same > /d/modeonly && chmod 0600 /d/modeonly && echo same > /d/owneronly && chown 5:6 /d/owneronly && echo same > /d/theirs && chown 7:7 /d/theirs && echo hl > /d/hl1 && ln /d/hl1 /d/hl2 && echo split > /d/split1 && echo split > /d/split2 && ln /d/keep /d/hlnew && ln -s keep /d/link && ln -s chg /d/relink && echo added > /d/added"]

[[images.t.layers]]
commands = ["/opt/venv/bin/pip install -q --upgrade --no-index --no-cache-dir --disable-pip-version-check --no-compile --find-links /wheels demo==2.0 && rm -rf /root/.cache"]

[[images.t.layers]]
commands = ["PYTHONDONTWRITEBYTECODE=1 /opt/venv/bin/python -c 'import demo; print(demo.VERSION, demo.name, demo.util(), demo.more)' > /check && cat /d/keep /d/sub/k2 /d/sub/deep/k3 /d/hl2 >> /check"]
"#;

/// A step that deletes a folder and makes it again keeps every file of it
/// in the image, in both diff modes (overlay upper folder, copy of the
/// root), as root and unprivileged: the layers are the same bytes each way,
/// hold no opaque marker, and carry only what changed.
#[test]
fn a_folder_a_step_makes_again_keeps_every_file() {
    let Some(base) = base("a_folder_a_step_makes_again_keeps_every_file") else {
        return;
    };
    if !subid_tools_present() {
        return;
    }
    let (t, work, ubase) = nobody_workspace(&base);
    // The starting image, built once.
    let prep_dir = work.join("prep");
    demo_wheels(&prep_dir.join("wheels"));
    let prep_def = write_def(&prep_dir, &ubase, RECREATE_PREP);
    let prep = work.join("prep-out");
    build_json(&prep_def, &t.path().join("prep-store"), &prep, &[]);
    let def = write_def(&work.join("def"), &prep, RECREATE_STEPS);
    chown_nobody(&work);

    let mut results: Vec<(String, Vec<String>, PathBuf)> = Vec::new();
    for copy in [false, true] {
        let env: &[(&str, &str)] = if copy {
            &[("IMGBUILD_NO_OVERLAY", "1")]
        } else {
            &[]
        };
        let mode = if copy { "copy" } else { "overlay" };
        // As root.
        let out = t.path().join(format!("root-{mode}"));
        let mut cmd = ib(&["build"])
            .path_arg(&def)
            .cache(&t.path().join(format!("root-store-{mode}")))
            .oci_out(&out)
            .json()
            .arg("-q");
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        let r = cmd.run();
        assert_eq!(r.code, 0, "root, {mode}: {r}");
        results.push((format!("root, {mode}"), layer_digests(&out), out));
        // As nobody, with subordinate ids (owners other than root kept).
        let _ids = SubIds::grant();
        let uout = work.join(format!("nobody-{mode}"));
        let ustore = work.join(format!("nobody-store-{mode}"));
        build_as_nobody_env(&work, "range", env, &def, &ustore, &uout);
        results.push((format!("nobody, {mode}"), layer_digests(&uout), uout));
        assert_nothing_left(&ustore, "");
    }
    let (first_name, first, out) = &results[0];
    for (name, digests, _) in &results[1..] {
        assert_eq!(digests, first, "{name} vs {first_name}: the same layers");
    }

    // The recreating step's layer: what changed, whiteouts for what went,
    // no opaque marker (it would hide the unchanged files left out).
    let lay = Layout::new(out);
    let (m, _) = lay.image("latest");
    let layers = m["layers"].as_array().unwrap();
    let n = layers.len();
    let recreate = lay.layer_entries(&layers[n - 3]);
    let got: Vec<(String, u32, u64, u64, Option<String>)> = recreate
        .iter()
        .map(|e| {
            (
                e.path.clone(),
                e.mode & 0o7777,
                e.uid,
                e.gid,
                e.link.clone(),
            )
        })
        .collect();
    let want: Vec<(String, u32, u64, u64, Option<String>)> = [
        ("d/", 0o755, 0, 0, None),
        ("d/.wh.gone", 0, 0, 0, None),
        ("d/.wh.removed", 0, 0, 0, None),
        ("d/added", 0o644, 0, 0, None),
        ("d/chg", 0o644, 0, 0, None),
        ("d/hlnew", 0o644, 0, 0, None),
        ("d/modeonly", 0o600, 0, 0, None),
        ("d/owneronly", 0o644, 5, 6, None),
        ("d/relink", 0o777, 0, 0, Some("chg")),
    ]
    .into_iter()
    .map(|(p, mode, u, g, l)| (p.to_string(), mode, u, g, l.map(String::from)))
    .collect();
    // Files made again with the same bytes, mode and owner are left out,
    // links made again as they were too (`split1`/`split2`: two files now
    // with one file's bytes, as before; their link is not recorded).
    assert_eq!(got, want, "the recreating step's layer");
    let upgrade = lay.layer_entries(&layers[n - 2]);
    let up = paths(&upgrade);
    assert!(
        !up.iter().any(|p| p.ends_with(".wh..wh..opq")),
        "no opaque marker: {up:?}"
    );
    let site = up
        .iter()
        .find(|p| p.ends_with("site-packages/demo/more.py"))
        .expect("the upgrade's new module")
        .trim_end_matches("demo/more.py")
        .to_string();
    assert!(
        up.contains(&format!("{site}demo/__init__.py"))
            && up.contains(&format!("{site}.wh.demo-1.0.dist-info"))
            && up
                .iter()
                .any(|p| p.starts_with(&format!("{site}demo-2.0.dist-info/"))),
        "the upgrade's changes: {up:?}"
    );
    assert!(
        !up.contains(&format!("{site}demo/_log.py")),
        "an unchanged module is left out (the folder below it holds it): {up:?}"
    );

    // Every file is there, as the steps left it.
    let root = umoci_unpack(out, "latest", &t.path().join("bundle"));
    assert_eq!(
        fs::read_to_string(root.join("check")).unwrap(),
        "2 logname util more\nsame\nsame\ndeep\nhl\n"
    );
    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(meta("d/modeonly").mode() & 0o7777, 0o600);
    assert_eq!(
        (meta("d/owneronly").uid(), meta("d/owneronly").gid()),
        (5, 6)
    );
    assert_eq!((meta("d/theirs").uid(), meta("d/theirs").gid()), (7, 7));
    assert_eq!(meta("d/hl1").ino(), meta("d/hl2").ino(), "still one file");
    assert_eq!(
        fs::read_link(root.join("d/link")).unwrap(),
        Path::new("keep")
    );
    assert_eq!(
        fs::read_link(root.join("d/relink")).unwrap(),
        Path::new("chg")
    );
    assert_eq!(fs::read_to_string(root.join("d/chg")).unwrap(), "new\n");
    assert!(!root.join("d/gone").exists() && !root.join("d/removed").exists());
    assert_eq!(
        fs::read_to_string(root.join("d/split2")).unwrap(),
        "split\n"
    );
}

/// The smallest form: three RUN steps of a Dockerfile, the third reads
/// files the second made again as they were.
#[test]
fn a_dockerfile_step_reads_files_an_earlier_step_made_again() {
    let Some(base) = base("a_dockerfile_step_reads_files_an_earlier_step_made_again") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\n\
             RUN mkdir -p /d/sub && echo same > /d/keep && echo old > /d/chg && echo same > /d/sub/k2\n\
             RUN rm -rf /d && mkdir -p /d/sub && echo same > /d/keep && echo new > /d/chg && echo same > /d/sub/k2\n\
             RUN cat /d/keep /d/sub/k2\n",
            base.display()
        ),
    );
    for no_overlay in ["0", "1"] {
        let r = ib(&["build", "-f"])
            .path_arg(&ctx.join("Dockerfile"))
            .path_arg(&ctx)
            .cache(&t.path().join(format!("store-{no_overlay}")))
            .oci_out(&t.path().join(format!("out-{no_overlay}")))
            .env("IMGBUILD_NO_OVERLAY", no_overlay)
            .run();
        assert_eq!(r.code, 0, "IMGBUILD_NO_OVERLAY={no_overlay}: {r}");
        // The third step's output: both files.
        let lines: Vec<&str> = r.stderr.lines().map(str::trim).collect();
        let at = lines
            .iter()
            .position(|l| l.ends_with("same"))
            .unwrap_or_else(|| panic!("the third step prints the files:\n{}", r.stderr));
        assert!(lines[at + 1].ends_with("same"), "{}", r.stderr);
    }
}

/// Like container runtimes, a step whose image sets no HOME gets its
/// user's home folder from /etc/passwd (`/` for a uid it does not list); an
/// image's own HOME wins.
#[test]
fn steps_get_the_users_home() {
    let Some(base) = base("steps_get_the_users_home") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let def = write_def(
        &t.path().join("def"),
        &base,
        r#"[[images.t.layers]]
commands = ["echo \"$HOME\" > /h-root && useradd -m -d /srv/apphome app && mkdir /out && chmod 0777 /out"]

[[images.t.layers]]
user = "app"

[[images.t.layers]]
commands = ["echo \"$HOME\" > /out/h-app"]

[[images.t.layers]]
user = "4242"

[[images.t.layers]]
commands = ["echo \"$HOME\" > /out/h-uid"]

[[images.t.layers]]
env = { HOME = "/elsewhere" }

[[images.t.layers]]
commands = ["echo \"$HOME\" > /out/h-env"]
"#,
    );
    let out = t.path().join("out");
    build_json(&def, &t.path().join("store"), &out, &[]);
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("h-root"), "/root\n");
    assert_eq!(read("out/h-app"), "/srv/apphome\n");
    assert_eq!(read("out/h-uid"), "/\n");
    assert_eq!(read("out/h-env"), "/elsewhere\n");
}

/// A module compiled in a step (timestamp-based .pyc, as pip and
/// compileall write them without SOURCE_DATE_EPOCH) still matches its
/// source once the source's mtime is clamped: the header names the clamped
/// time, so Python keeps using it, and the layer holds no wall-clock time.
#[test]
fn compiled_modules_match_their_clamped_sources() {
    let Some(base) = base("compiled_modules_match_their_clamped_sources") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let def = write_def(
        &t.path().join("def"),
        &base,
        "[[images.t.layers]]\ncommands = [\"mkdir -p /opt/m && echo 'X = 1' > /opt/m/mod.py && env -u SOURCE_DATE_EPOCH python3 -m compileall -q /opt/m && python3 -c 'import sys; d = open(sys.argv[1], \\\"rb\\\").read(16); print(int.from_bytes(d[4:8], \\\"little\\\"))' /opt/m/__pycache__/mod.cpython-311.pyc > /opt/flags\"]\n\n[[images.t.layers]]\ncommands = [\"sleep 1 && echo 'X = 1' > /opt/m/mod.py && env -u SOURCE_DATE_EPOCH python3 -m compileall -q -f /opt/m\"]\n",
    );
    let out = t.path().join("out");
    build_json(&def, &t.path().join("store"), &out, &[]);
    let lay = Layout::new(&out);
    let (m, _) = lay.image("latest");
    let layers = m["layers"].as_array().unwrap();
    let entries = lay.layer_entries(&layers[layers.len() - 2]);
    // The second step wrote the source again with the same bytes (left out
    // of its layer) and compiled it again: its header names the image's
    // time of the source, not the rewrite's.
    let again = lay.layer_entries(&layers[layers.len() - 1]);
    assert!(
        !again.iter().any(|e| e.path == "opt/m/mod.py"),
        "the same bytes are left out: {:?}",
        paths(&again)
    );
    let recompiled = &again
        .iter()
        .find(|e| e.path == "opt/m/__pycache__/mod.cpython-311.pyc")
        .expect("the module compiled again")
        .data;
    assert_eq!(&recompiled[8..12], &[0, 0, 0, 0]);
    let get = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p} in {:?}", paths(&entries)))
    };
    assert_eq!(
        String::from_utf8_lossy(&get("opt/flags").data),
        "0\n",
        "the step wrote a timestamp-based .pyc"
    );
    let pyc = &get("opt/m/__pycache__/mod.cpython-311.pyc").data;
    let source = get("opt/m/mod.py");
    assert_eq!(source.mtime, 0, "the source's mtime is clamped");
    assert_eq!(&pyc[4..8], &[0, 0, 0, 0]);
    assert_eq!(
        u32::from_le_bytes(pyc[8..12].try_into().unwrap()) as u64,
        source.mtime,
        "the header names the source's mtime as the image has it"
    );
    assert_eq!(
        u32::from_le_bytes(pyc[12..16].try_into().unwrap()) as usize,
        source.data.len()
    );
    // The same step in another store: the same bytes.
    let out2 = t.path().join("out2");
    build_json(&def, &t.path().join("store2"), &out2, &[]);
    assert_eq!(layer_digests(&out2), layer_digests(&out));
}

//! Native Debian bases: `base = { debian = "bookworm", packages = [...] }`
//! resolved from the host's apt sources (signed indices) into
//! imgbuild.lock, assembled from the .debs without running them, and
//! checked by running the result in a chroot.

mod support;

use std::fs;
use std::path::Path;
use support::*;

/// The host must have apt sources for bookworm; CI does.
fn have_bookworm_sources(test: &str) -> bool {
    let ok = ["/etc/apt/sources.list", "/etc/apt/sources.list.d"]
        .iter()
        .any(|p| {
            let p = Path::new(p);
            let texts: Vec<String> = if p.is_dir() {
                fs::read_dir(p)
                    .map(|rd| {
                        rd.flatten()
                            .filter_map(|e| fs::read_to_string(e.path()).ok())
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                fs::read_to_string(p).into_iter().collect()
            };
            texts.iter().any(|t| t.contains("bookworm"))
        });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI needs apt sources for bookworm"
        );
        eprintln!("skipping {test}: no apt sources for bookworm on this host");
    }
    ok
}

fn project(dir: &Path) {
    write(
        dir,
        "imgbuild.toml",
        "[images.py]\nbase = { debian = \"bookworm\", packages = [\"python3\", \"python3-venv\", \"ca-certificates\"] }\ntag = \"v1\"\n",
    );
}

#[test]
fn a_native_debian_base_builds_runs_and_repeats_to_the_byte() {
    if !have_bookworm_sources("a_native_debian_base_builds_runs_and_repeats_to_the_byte") {
        return;
    }
    assert!(is_root(), "run the tests as root (chroot)");
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    project(&proj);

    // --locked with no lock: an error naming the lock, nothing resolved.
    let r = ib(&["build"])
        .path_arg(&proj)
        .cache(&t.path().join("store"))
        .json()
        .arg("--locked")
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stdout.contains("imgbuild lock"), "{r}");

    let r = ib(&["lock"])
        .path_arg(&proj)
        .json()
        .cache(&t.path().join("store"))
        .run();
    assert_eq!(r.code, 0, "{r}");
    let lock_text = fs::read_to_string(proj.join("imgbuild.lock")).unwrap();
    for name in [
        "base-files",
        "python3",
        "python3-venv",
        "ca-certificates",
        "usr-is-merged",
    ] {
        assert!(
            lock_text.contains(&format!("name = \"{name}\"")),
            "{name} locked"
        );
    }
    assert!(
        !lock_text.contains("name = \"usrmerge\""),
        "usr-is-merged is preferred"
    );

    let out = t.path().join("out");
    let v = build_json(&proj, &t.path().join("store"), &out, &["--locked"]);
    let layers = v["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(layers.len(), 3, "core packages, packages, state: {v}");
    assert_eq!(
        fs::read_to_string(proj.join("imgbuild.lock")).unwrap(),
        lock_text,
        "a build from a lock leaves it as it is"
    );

    let root = umoci_unpack(&out, "v1", &t.path().join("bundle"));
    assert_eq!(
        fs::read_link(root.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        fs::read_link(root.join("var/run")).unwrap(),
        Path::new("/run")
    );
    let run = |cmd: &str| {
        let o = std::process::Command::new("chroot")
            .arg(&root)
            .args(["/bin/sh", "-c", cmd])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (code, text) = run("dpkg --audit && dpkg-query -W -f='${Status}\\n' python3");
    assert_eq!((code, text.trim()), (0, "install ok installed"), "{text}");
    let (code, text) = run(
        "python3 -m venv /tmp/venv && /tmp/venv/bin/python -c 'import json, ssl, sqlite3; print(42)'",
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("42"), "{text}");
    let (code, text) = run("id nobody && getent group shadow");
    assert_eq!(code, 0, "{text}");

    // The same lock in an empty store: the same bytes.
    let out2 = t.path().join("out2");
    let v2 = build_json(&proj, &t.path().join("store2"), &out2, &["--locked"]);
    assert_eq!(
        v2["images"][0]["digest"], v["images"][0]["digest"],
        "two builds from one lock give the same layers"
    );
    // And nothing to do the second time in the same store.
    let v3 = build_json(&proj, &t.path().join("store2"), &out2, &["--locked"]);
    assert!(layer_cache_states(&v3).iter().all(|s| s == "hit"), "{v3}");
}

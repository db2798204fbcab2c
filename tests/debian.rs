//! Native Debian bases: `base = { debian = "bookworm", packages = [...] }`
//! resolved from the host's apt sources (signed indices) into
//! imgbuild.lock, assembled from the .debs without running them, and
//! checked by running the result in a chroot.

mod support;

use std::fs;
use std::path::Path;
use support::*;

/// Runs `cmd` with /bin/sh in a chroot of `root`: exit code and output.
fn in_chroot(root: &Path, cmd: &str) -> (i32, String) {
    let o = std::process::Command::new("chroot")
        .arg(root)
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
    if !support::pybase::have_bookworm_sources(
        "a_native_debian_base_builds_runs_and_repeats_to_the_byte",
    ) {
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
    let run = |cmd: &str| in_chroot(&root, cmd);
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
    // A .deb that does not hash to the lock's sha256: the build fails
    // naming it, and writes nothing.
    let tampered = lock_text.replacen("sha256 = \"", "sha256 = \"0", 1);
    let tampered = {
        // Keep 64 hex digits: drop the last one of the changed hash.
        let i = tampered.find("sha256 = \"0").unwrap() + "sha256 = \"".len();
        let mut t = tampered.clone();
        t.remove(i + 64);
        t
    };
    fs::write(proj.join("imgbuild.lock"), &tampered).unwrap();
    let out3 = t.path().join("out3");
    let r = ib(&["build"])
        .path_arg(&proj)
        .cache(&t.path().join("store3"))
        .oci_out(&out3)
        .json()
        .arg("--locked")
        .run();
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stdout.contains("the lock says sha256:0"),
        "the error names the expected hash: {r}"
    );
    assert!(!out3.exists(), "nothing written");
    fs::write(proj.join("imgbuild.lock"), &lock_text).unwrap();

    // And nothing to do the second time in the same store.
    let v3 = build_json(&proj, &t.path().join("store2"), &out2, &["--locked"]);
    assert!(layer_cache_states(&v3).iter().all(|s| s == "hit"), "{v3}");
}

/// What a native base may lack, have or hold differently compared with
/// `mmdebstrap --variant=minbase` of the same packages, and why.
const ONLY_MMDEBSTRAP: &[(&str, &str)] = &[
    ("dev/", "device nodes: the container runtime provides /dev"),
    (
        "__pycache__/",
        "byte-compiled Python: needs the target's interpreter",
    ),
    (
        "etc/ld.so.cache",
        "ldconfig's cache: the standard library paths work without it",
    ),
    (
        "etc/systemd/",
        "service enablement: nothing starts services in a container",
    ),
    ("var/lib/systemd/", "service enablement"),
    ("etc/rc", "sysvinit links (hwclock)"),
    ("etc/pam.d/common-", "pam-auth-update's files"),
    ("var/lib/pam/", "pam-auth-update's state"),
    ("etc/security/opasswd", "pam-auth-update"),
    (
        "var/cache/debconf/",
        "debconf's database, recreated on demand",
    ),
    (
        "etc/apt/sources.list",
        "mmdebstrap's own sources (the image has debian.sources)",
    ),
    ("etc/fstab", "mmdebstrap's own file"),
    ("etc/hostname", "copied from the build host by mmdebstrap"),
    (
        "etc/resolv.conf",
        "copied from the build host by mmdebstrap",
    ),
    ("var/lib/dpkg/arch", "mmdebstrap's own file"),
    ("-old", "backups left by dpkg and debconf"),
    ("etc/passwd-", "backup left by shadow-utils"),
    ("etc/group-", "backup left by shadow-utils"),
    ("etc/shadow-", "backup left by shadow-utils"),
    ("etc/gshadow-", "backup left by shadow-utils"),
];

fn documented(path: &str) -> Option<&'static str> {
    ONLY_MMDEBSTRAP.iter().find_map(|(pat, why)| {
        let hit = if *pat == "-old" || *pat == "__pycache__/" {
            path.contains(pat.trim_end_matches('/'))
        } else {
            path.starts_with(pat)
        };
        hit.then_some(*why)
    })
}

/// Native minbase + python3 + python3-venv + ca-certificates against
/// mmdebstrap's build of the same packages (same mirror, same
/// SOURCE_DATE_EPOCH): every difference is on the documented list; the
/// result creates a venv whose imports work, passes `dpkg --audit`, and
/// takes one more package with `apt-get install` in imgbuild's sandbox.
#[test]
fn a_native_base_matches_mmdebstrap_but_for_a_documented_list() {
    let test = "a_native_base_matches_mmdebstrap_but_for_a_documented_list";
    if !support::pybase::have_bookworm_sources(test) {
        return;
    }
    if std::process::Command::new("mmdebstrap")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI needs mmdebstrap"
        );
        eprintln!("skipping {test}: no mmdebstrap");
        return;
    }
    assert!(is_root(), "run the tests as root");
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    // No preference: apt's own choice (usrmerge), as mmdebstrap makes it.
    write(
        &proj,
        "imgbuild.toml",
        "[images.py]\nbase = { debian = \"bookworm\", packages = [\"python3\", \"python3-venv\", \"ca-certificates\"], prefer = [] }\ntag = \"v1\"\n\n[images.withjq]\nbase = \"py\"\ntag = \"jq\"\n\n[[images.withjq.layers]]\napt_packages = [\"jq\"]\n",
    );
    let store = t.path().join("store");
    let r = ib(&["lock"]).path_arg(&proj).cache(&store).run();
    assert_eq!(r.code, 0, "{r}");
    let out = t.path().join("out");
    let r = ib(&["build"])
        .path_arg(&proj)
        .cache(&store)
        .oci_out(&out)
        .json()
        .arg("-q")
        .args(&["--image", "py"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run();
    assert_eq!(r.code, 0, "{r}");
    let ours = umoci_unpack(&out, "v1", &t.path().join("ours"));

    let ref_tar = t.path().join("ref.tar");
    let st = std::process::Command::new("mmdebstrap")
        .args([
            "--quiet",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
        ])
        .arg(&ref_tar)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .status()
        .unwrap();
    assert!(st.success());
    let reference = t.path().join("ref");
    mkdirs(&reference);
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&reference)
        .arg("-xf")
        .arg(&ref_tar)
        .status()
        .unwrap();
    assert!(st.success());

    let (a, b) = (file_tree(&ours), file_tree(&reference));
    let mut undocumented = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None if documented(k).is_some() => {}
            None => undocumented.push(format!("only in mmdebstrap's: {k} {v:?}")),
            Some(x) if x == v => {}
            Some(x) => {
                // apt's auto-installed marks: mmdebstrap unpacks the
                // Essential set with dpkg before apt runs, so only later
                // dependencies are marked; imgbuild marks every package
                // that was neither asked for nor Essential/required. The
                // marks agree where both set them.
                let same_states = k == "var/lib/apt/extended_states" && {
                    let names = |p: &Path| {
                        let text = fs::read_to_string(p.join(k)).unwrap();
                        text.lines()
                            .filter_map(|l| l.strip_prefix("Package: "))
                            .map(String::from)
                            .collect::<std::collections::BTreeSet<_>>()
                    };
                    names(&reference).is_subset(&names(&ours))
                };
                if !same_states {
                    undocumented.push(format!("differs: {k}: ours {x:?}, mmdebstrap's {v:?}"));
                }
            }
        }
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        if k != "etc/apt/sources.list.d/debian.sources" {
            undocumented.push(format!("only in ours: {k}"));
        }
    }
    assert!(
        undocumented.is_empty(),
        "{} undocumented differences:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );

    // It works: a venv with working imports, a clean dpkg database.
    let (code, text) = in_chroot(
        &ours,
        "dpkg --audit && python3 -m venv /tmp/v && /tmp/v/bin/python -c 'import ssl, sqlite3, json; print(len(ssl.create_default_context().get_ca_certs()) > 100)'",
    );
    assert_eq!((code, text.trim()), (0, "True"), "{text}");

    // One more package with apt-get, in imgbuild's sandbox.
    let r = ib(&["build"])
        .path_arg(&proj)
        .cache(&store)
        .oci_out(&out)
        .json()
        .arg("-q")
        .args(&["--image", "withjq"])
        .run();
    assert_eq!(r.code, 0, "{r}");
    let withjq = umoci_unpack(&out, "jq", &t.path().join("withjq"));
    let (code, text) = in_chroot(&withjq, "echo '{\"a\": 7}' | jq .a && dpkg --audit");
    assert_eq!((code, text.trim()), (0, "7"), "{text}");
}

/// `apt_packages` on a native base: resolved into the lock and installed
/// natively, each such layer its own package layer plus a small state
/// layer. A package whose maintainer scripts are not covered natively
/// (less: `update-alternatives` to a higher-priority pager) is left
/// unpacked and configured by `dpkg --configure` in the sandbox, and `plan`
/// says which and why. An `apt_packages` after a `commands` layer runs apt
/// in the sandbox. Python layers find the interpreter from the lock.
#[test]
fn apt_packages_on_a_native_base_install_natively() {
    let test = "apt_packages_on_a_native_base_install_natively";
    if !support::pybase::have_bookworm_sources(test) {
        return;
    }
    assert!(is_root(), "run the tests as root (chroot, sandbox)");
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    let base = "base = { debian = \"bookworm\", packages = [\"python3\"] }";
    write(
        &proj,
        "imgbuild.toml",
        &format!(
            "[images.plain]\n{base}\ntag = \"plain\"\n\n\
             [images.app]\n{base}\ntag = \"v1\"\n\n\
             [[images.app.layers]]\napt_packages = [\"jq\", \"less\"]\n\n\
             [[images.app.layers]]\npip_packages = [\"six==1.16.0\"]\n\n\
             [[images.app.layers]]\ncommands = [\"echo made > /made\"]\n\n\
             [[images.app.layers]]\napt_packages = [\"tree\"]\n"
        ),
    );
    let store = t.path().join("store");
    let r = ib(&["lock"]).path_arg(&proj).cache(&store).run();
    assert_eq!(r.code, 0, "{r}");
    let lock: toml::Value =
        toml::from_str(&fs::read_to_string(proj.join("imgbuild.lock")).unwrap()).unwrap();
    let entry = |image: &str, name: &str| -> Option<toml::Value> {
        lock["base"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["image"].as_str() == Some(image))
            .unwrap()["package"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .cloned()
    };
    let jq = entry("app", "jq").expect("jq locked with the base");
    assert_eq!(jq.get("group").and_then(|g| g.as_integer()), Some(1));
    assert_eq!(jq.get("auto").and_then(|a| a.as_bool()), Some(false));
    let libjq = entry("app", "libjq1").expect("jq's dependency locked");
    assert_eq!(libjq.get("auto").and_then(|a| a.as_bool()), Some(true));
    let less = entry("app", "less").unwrap();
    let scripts: Vec<&str> = less["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scripts.contains(&"postinst"), "{less}");
    assert!(entry("app", "tree").is_none(), "after commands: not native");
    assert!(entry("plain", "jq").is_none());

    let r = ib(&["plan"])
        .path_arg(&proj)
        .cache(&store)
        .arg("--locked")
        .run();
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("dpkg --configure"), "{r}");
    assert!(r.stdout.contains("less (postinst, preinst)"), "{r}");
    assert!(
        r.stdout.contains("apt_packages after a commands layer"),
        "{r}"
    );
    assert!(r.stdout.contains("in the native Debian base"), "{r}");

    let out = t.path().join("out");
    let v = build_json(&proj, &store, &out, &["--locked"]);
    let digests = |image: &str| -> Vec<String> {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"].as_str() == Some(image))
            .unwrap_or_else(|| panic!("{image} in {v}"))["platforms"][0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let (plain, app) = (digests("plain"), digests("app"));
    assert_eq!(plain.len(), 3, "{v}");
    assert_eq!(app[..3], plain[..], "the base's layers do not change");

    let root = umoci_unpack(&out, "v1", &t.path().join("bundle"));
    let run = |cmd: &str| in_chroot(&root, cmd);
    let (code, text) = run("jq --version && tree --version && dpkg --audit");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("jq-1.6"), "{text}");
    let (code, text) = run("dpkg-query -W -f='${Package} ${Status}\\n' jq less tree libjq1");
    assert_eq!(code, 0, "{text}");
    for p in ["jq", "less", "tree", "libjq1"] {
        assert!(
            text.contains(&format!("{p} install ok installed")),
            "{p}: {text}"
        );
    }
    // less's postinst ran: its pager outranks more.
    assert_eq!(
        fs::read_link(root.join("etc/alternatives/pager")).unwrap(),
        Path::new("/usr/bin/less")
    );
    let (code, text) =
        run("grep -A2 '^Package: libjq1$' /var/lib/apt/extended_states; apt-mark showmanual jq");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Auto-Installed: 1"), "{text}");
    assert!(text.trim_end().ends_with("jq"), "{text}");
    assert_eq!(fs::read_to_string(root.join("made")).unwrap(), "made\n");
    let (code, text) = run("/opt/venv/bin/python -c 'import six; print(six.__version__)'");
    assert_eq!((code, text.trim()), (0, "1.16.0"), "{text}");
    for gone in ["usr/sbin/policy-rc.d", "var/log/dpkg.log"] {
        assert!(!root.join(gone).exists(), "{gone} left behind");
    }

    // Reproducible: the same lock in an empty store gives the same image.
    let out2 = t.path().join("out2");
    let v2 = build_json(&proj, &t.path().join("store2"), &out2, &["--locked"]);
    let image_digests = |v: &serde_json::Value| -> Vec<String> {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["digest"].to_string())
            .collect()
    };
    assert_eq!(image_digests(&v2), image_digests(&v));
}

/// The README's first command: the `debian-python` fixture, a Python app
/// on a native Debian base, built into an OCI layout with no registry; its
/// command runs in the result.
#[test]
fn the_debian_python_fixture_runs_its_app() {
    if !support::pybase::have_bookworm_sources("the_debian_python_fixture_runs_its_app") {
        return;
    }
    assert!(is_root(), "run the tests as root (chroot)");
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("debian-python");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian-python");
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(&proj)
        .status()
        .unwrap();
    assert!(st.success());
    let _ = fs::remove_file(proj.join("imgbuild.lock"));
    let out = t.path().join("out");
    let v = build_json(&proj, &t.path().join("store"), &out, &[]);
    assert!(
        proj.join("imgbuild.lock").is_file(),
        "the first build locks"
    );
    let cfg = &v["images"][0];
    assert_eq!(cfg["name"], "debian-python", "{v}");
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let (code, text) = in_chroot(&root, "cd /app && exec python3 main.py");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("hello from debian-python on Python 3.11"),
        "{text}"
    );
    // The CA bundle ca-certificates' postinst would have made.
    let cas: usize = text
        .split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no CA count: {text}"));
    assert!(cas > 100, "{text}");
}

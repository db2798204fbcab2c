//! RUN steps are contained as a container runtime contains them: on a real
//! Debian base (mmdebstrap), a step runs `testdata/containment/probe.py`,
//! which tries each escape without harm (writes a kernel setting's own
//! value back, opens `/proc/sysrq-trigger` without writing, makes a block
//! device, mounts, loads a null module, unshares, sets loopback's MTU to
//! what it is) and records what happened in `/facts.txt`, read back from
//! the layer. As root, as an unprivileged user (one id, and subordinate
//! ids), with `RUN --security=insecure` (refused without `--allow
//! security.insecure`, uncontained with it), and against `buildah bud
//! --isolation chroot`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::buildah::{Buildah, buildah_present};
use support::pybase::dockerfile_test_base as base;
use support::*;

const PROBE: &str = include_str!("../testdata/containment/probe.py");

/// Docker's default capabilities less MKNOD, NET_RAW and AUDIT_WRITE.
const KEPT: &str = "00000000800405fb";

/// A context with the probe and a Dockerfile running it (`RUN FLAGS`).
fn dockerfile_ctx(dir: &Path, flags: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    mkdirs(&ctx);
    write(&ctx, "probe.py", PROBE);
    write(
        &ctx,
        "Dockerfile",
        &format!("ARG BASE\nFROM $BASE\nCOPY probe.py /probe.py\nRUN {flags}python3 /probe.py\n"),
    );
    ctx
}

/// A definition running the probe, with more fields on its layer.
fn definition(dir: &Path, base: &Path, fields: &str) -> PathBuf {
    mkdirs(dir);
    write(dir, "probe.py", PROBE);
    write(
        dir,
        "imgbuild.toml",
        &format!(
            "[images.t]\nbase = \"oci:{}:latest\"\n\n[[images.t.layers]]\nsource_file = \"probe.py\"\ndst = \"/probe.py\"\n\n[[images.t.layers]]\ncommands = [\"python3 /probe.py\"]\n{fields}",
            base.display()
        ),
    )
}

/// `/facts.txt` of the image's last layer, as a map.
fn facts(out: &Path) -> BTreeMap<String, String> {
    let lay = Layout::new(out);
    let (m, _) = lay.image("latest");
    let layers = m["layers"].as_array().unwrap();
    let entries = lay.layer_entries(&layers[layers.len() - 1]);
    let f = entries
        .iter()
        .find(|e| e.path == "facts.txt")
        .unwrap_or_else(|| panic!("no facts.txt in the last layer of {}", out.display()));
    String::from_utf8_lossy(&f.data)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What every contained step shows, root or not.
#[track_caller]
fn assert_contained(f: &BTreeMap<String, String>, root: bool) {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("?");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(get(set), KEPT, "{set}: {f:?}");
    }
    assert_eq!(get("CapInh"), "0000000000000000", "{f:?}");
    assert_eq!(get("CapAmb"), "0000000000000000", "{f:?}");
    assert_eq!(get("Seccomp"), "2", "{f:?}");
    assert_eq!(get("NoNewPrivs"), "1", "{f:?}");
    assert_eq!(get("sysro"), "ro", "/proc/sys read-only: {f:?}");
    assert_eq!(get("sysfs"), "ro", "/sys read-only: {f:?}");
    if root {
        assert_eq!(get("procsys"), "EROFS", "{f:?}");
    } else {
        assert!(
            ["EROFS", "EACCES", "EPERM"].contains(&get("procsys")),
            "{f:?}"
        );
    }
    assert!(["EROFS", "absent"].contains(&get("sysrq")), "{f:?}");
    for refused in ["mknod", "mount", "init_module", "unshare", "netadmin"] {
        assert_eq!(get(refused), "EPERM", "{refused}: {f:?}");
    }
    // clone3 is refused as missing, so the C library uses clone.
    assert_eq!(get("clone3"), "ENOSYS", "{f:?}");
    if f.contains_key("x32") {
        assert_eq!(get("x32"), "EPERM", "x32 calls: {f:?}");
    }
    // Masked: nothing to read.
    assert!(["0", "absent"].contains(&get("kcore")), "{f:?}");
    assert!(["0", "absent"].contains(&get("keys")), "{f:?}");
    assert!(["0", "absent"].contains(&get("firmware")), "{f:?}");
    assert_eq!(
        get("devices"),
        "fd,full,mqueue,null,ptmx,pts,random,shm,stderr,stdin,stdout,tty,urandom,zero",
        "{f:?}"
    );
}

#[test]
fn a_step_run_as_root_is_contained() {
    let Some(base) = base("a_step_run_as_root_is_contained") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    // A definition's commands, with the host's network.
    let def = definition(&t.path().join("def"), &base, "network = \"host\"\n");
    let out = t.path().join("out");
    build_json(&def, &t.path().join("store"), &out, &[]);
    assert_contained(&facts(&out), true);
    // A Dockerfile's RUN, `--security=sandbox` spelled out.
    let ctx = dockerfile_ctx(&t.path().join("df"), "--security=sandbox ");
    let out2 = t.path().join("out2");
    let arg = format!("BASE=oci:{}:latest", base.display());
    build_dockerfile(&ctx, &t.path().join("store"), &out2, &["--build-arg", &arg]).ok();
    assert_contained(&facts(&out2), true);
}

/// A step's `/dev` nodes are its own: a step run as root that changes
/// one (here `/dev/null`, set to the mode it has anyway, so that the test
/// harms nothing when it fails) never changes the host's node, whose
/// change time stays put. The step's null device still works.
#[test]
fn a_step_cannot_change_the_hosts_device_nodes() {
    use std::os::unix::fs::MetadataExt;
    let Some(base) = base("a_step_cannot_change_the_hosts_device_nodes") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("def");
    mkdirs(&dir);
    write(
        &dir,
        "imgbuild.toml",
        &format!(
            "[images.t]\nbase = \"oci:{}:latest\"\n\n[[images.t.layers]]\ncommands = [\"chmod 0666 /dev/null && echo gone > /dev/null && stat -c 'null=%t:%T %a' /dev/null > /facts.txt\"]\n",
            base.display()
        ),
    );
    let ctime = || {
        let m = fs::metadata("/dev/null").unwrap();
        (m.ctime(), m.ctime_nsec())
    };
    let before = ctime();
    let out = t.path().join("out");
    build_json(&dir, &t.path().join("store"), &out, &[]);
    assert_eq!(ctime(), before, "the step changed the host's /dev/null");
    // Major 1, minor 3 (hex, as stat prints them), mode 666.
    assert_eq!(facts(&out)["null"], "1:3 666");
}

/// `imgbuild ARGS` as nobody in `work` with IMGBUILD_USERNS=`userns`.
fn as_nobody(work: &Path, userns: &str, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
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
        .arg(bin())
        .args(args)
        .output()
        .unwrap()
}

/// Subordinate ids for nobody while it lives (put back on drop).
struct SubIds(Vec<(PathBuf, Option<Vec<u8>>)>);

impl SubIds {
    fn grant() -> SubIds {
        let files = ["/etc/subuid", "/etc/subgid"].map(PathBuf::from);
        let old = files
            .iter()
            .map(|p| (p.clone(), fs::read(p).ok()))
            .collect();
        for p in &files {
            let mut text = fs::read_to_string(p).unwrap_or_default();
            text.push_str("65534:500000:65536\n");
            fs::write(p, text).unwrap();
        }
        SubIds(old)
    }
}

impl Drop for SubIds {
    fn drop(&mut self) {
        for (p, old) in &self.0 {
            let _ = match old {
                Some(b) => fs::write(p, b),
                None => fs::remove_file(p),
            };
        }
    }
}

#[test]
fn a_step_run_unprivileged_is_contained_the_same_way() {
    let Some(base) = base("a_step_run_unprivileged_is_contained_the_same_way") else {
        return;
    };
    let have = |t: &str| Command::new(t).arg("--help").output().is_ok();
    if !have("setpriv") || !have("newuidmap") {
        assert!(
            std::env::var_os("CI").is_none(),
            "setpriv and newuidmap (uidmap) are needed in CI"
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let work = t.path().join("work");
    mkdirs(&work);
    let ubase = work.join("base");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&ubase)
            .status()
            .unwrap()
            .success()
    );
    let def = definition(&work.join("def"), &ubase, "");
    assert!(
        Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&work)
            .status()
            .unwrap()
            .success()
    );
    let _ids = SubIds::grant();
    for userns in ["single", "range"] {
        let store = work.join(format!("store-{userns}"));
        let out = work.join(format!("out-{userns}"));
        let o = format!("oci:{}", out.display());
        let r = as_nobody(
            &work,
            userns,
            &[
                "build",
                "-q",
                "--cache-dir",
                store.to_str().unwrap(),
                "--output",
                &o,
                def.to_str().unwrap(),
            ],
        );
        assert!(
            r.status.success(),
            "{userns}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_contained(&facts(&out), false);
    }
}

/// The host's own capabilities (what an uncontained step as root has).
fn own_caps() -> String {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string()
}

/// `imgbuild plan` of the Dockerfile in `ctx`, with `--build-arg BUILD_ARG`.
fn plan_dockerfile(ctx: &Path, store: &Path, build_arg: &str) -> Ib {
    ib(&["plan", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(ctx)
        .cache(store)
        .args(&["--build-arg", build_arg])
}

/// The RUN step of a plan's JSON.
fn run_step(plan: &serde_json::Value) -> serde_json::Value {
    plan["images"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap_or("").starts_with("commands"))
        .unwrap_or_else(|| panic!("no RUN step in {plan}"))
        .clone()
}

#[test]
fn insecure_steps_need_allow_and_then_run_uncontained() {
    let Some(base) = base("insecure_steps_need_allow_and_then_run_uncontained") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let ctx = dockerfile_ctx(&t.path().join("df"), "--security=insecure ");
    let arg = format!("BASE=oci:{}:latest", base.display());
    // Refused without --allow, naming the line, before anything runs.
    let out = t.path().join("out");
    let r = build_dockerfile(&ctx, &store, &out, &["--build-arg", &arg]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("Dockerfile:4"), "{r}");
    assert!(r.stderr.contains("--allow security.insecure"), "{r}");
    assert!(!out.exists(), "nothing written: {r}");
    // An entitlement imgbuild does not know is a usage error.
    let r = build_dockerfile(
        &ctx,
        &store,
        &out,
        &["--build-arg", &arg, "--allow", "device"],
    );
    assert_eq!(r.code, 2, "{r}");
    // Shown in plan, text and JSON.
    let plan = plan_dockerfile(&ctx, &store, &arg)
        .args(&["--format", "json"])
        .run()
        .ok()
        .json();
    let run = run_step(&plan);
    assert!(
        run["notes"]
            .to_string()
            .contains("--allow security.insecure"),
        "{run}"
    );
    let text = plan_dockerfile(&ctx, &store, &arg).run().ok();
    assert!(text.stdout.contains("insecure"), "{text}");
    assert!(text.stdout.contains("--allow security.insecure"), "{text}");
    // Allowed: the step has root's capabilities and no filter.
    build_dockerfile(
        &ctx,
        &store,
        &out,
        &["--build-arg", &arg, "--allow", "security.insecure"],
    )
    .ok();
    let f = facts(&out);
    assert_eq!(f["CapEff"], own_caps(), "{f:?}");
    assert_eq!(f["Seccomp"], "0", "{f:?}");
    assert_eq!(f["NoNewPrivs"], "0", "{f:?}");
    assert_eq!(f["sysro"], "rw", "{f:?}");
    assert_eq!(f["procsys"], "ok", "{f:?}");
    assert_eq!(f["unshare"], "ok", "{f:?}");
    // The sandboxed step is another step, with another key.
    let sandboxed = dockerfile_ctx(&t.path().join("df2"), "");
    let plan2 = plan_dockerfile(&sandboxed, &store, &arg)
        .args(&["--format", "json"])
        .run()
        .ok()
        .json();
    let run2 = run_step(&plan2);
    assert!(!run2["notes"].to_string().contains("insecure"), "{run2}");
    assert_ne!(run["key"], run2["key"], "the security mode is in the key");

    // A definition's field: refused without --allow, naming file, line and field.
    let def = definition(&t.path().join("def"), &base, "security = \"insecure\"\n");
    let r = ib(&["build"])
        .path_arg(&def)
        .cache(&store)
        .oci_out(&t.path().join("out3"))
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("imgbuild.toml:9"), "{r}");
    assert!(r.stderr.contains("security = \"insecure\""), "{r}");
    // A value other than sandbox or insecure is a definition error.
    let bad = definition(&t.path().join("bad"), &base, "security = \"loose\"\n");
    let r = ib(&["plan"]).path_arg(&bad).cache(&store).run();
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("security"), "{r}");
}

#[test]
fn containment_matches_buildahs_chroot_isolation() {
    let Some(base) = base("containment_matches_buildahs_chroot_isolation") else {
        return;
    };
    if !buildah_present() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let ctx = dockerfile_ctx(&t.path().join("df"), "");
    let arg = format!("BASE=oci:{}:latest", base.display());
    let ours = t.path().join("ours");
    build_dockerfile(&ctx, &t.path().join("store"), &ours, &["--build-arg", &arg]).ok();
    let theirs = t.path().join("theirs");
    Buildah::new(&t.path().join("buildah"))
        .build_oci(
            &ctx.join("Dockerfile"),
            &ctx,
            &["--build-arg".to_string(), arg.clone()],
            "localhost/containment:latest",
            &theirs,
        )
        .unwrap();
    let (a, b) = (facts(&ours), facts(&theirs));
    // The same facts, but where imgbuild is stricter: no_new_privs (buildah
    // leaves it off), clone3 (buildah 1.28 lets it through), x32 calls and
    // devices (buildah binds the host's /dev).
    for k in [
        "CapEff",
        "CapPrm",
        "CapInh",
        "Seccomp",
        "procsys",
        "sysro",
        "sysfs",
        "sysrq",
        "mknod",
        "mount",
        "init_module",
        "unshare",
        "netadmin",
        "kcore",
        "keys",
        "firmware",
    ] {
        assert_eq!(a.get(k), b.get(k), "{k}: imgbuild {a:?}\nbuildah {b:?}");
    }
    assert_eq!(b["CapEff"], KEPT);
    assert_contained(&a, true);
}

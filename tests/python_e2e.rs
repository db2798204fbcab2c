//! End-to-end tests of `uv_project` layers on a real project
//! (`testdata/python-e2e`: httpx, pydantic, numpy and a console script),
//! locked with the real `uv`, built on a Debian bookworm base made with
//! mmdebstrap, unpacked with umoci and run in a chroot.
//!
//! Needs root (umoci unpack, chroot), mmdebstrap, umoci, skopeo and uv on
//! PATH; `scripts/test.sh` installs them. Outside CI the tests print why and
//! return when mmdebstrap, umoci or uv is missing.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::pybase::{self, run};
use support::*;
use tempfile::TempDir;

const PROJECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/python-e2e");

/// Copies the project (without what `uv` or a local build left in it).
fn copy_tree(src: &Path, dst: &Path) {
    mkdirs(dst);
    for e in fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let e = e.expect("dir entry");
        let name = e.file_name();
        let name = name.to_str().expect("UTF-8 names");
        if matches!(
            name,
            "uv.lock" | ".venv" | "dist" | "imgbuild-out" | "__pycache__"
        ) {
            continue;
        }
        let (from, to) = (e.path(), dst.join(name));
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&from, &to);
        } else {
            fs::copy(&from, &to)
                .unwrap_or_else(|err| panic!("copy {} → {}: {err}", from.display(), to.display()));
            set_mode(&to, 0o644);
        }
    }
}

/// A copy of the project in `tmp/proj` whose definition builds on `base`
/// (for `platforms`, when given), locked with `uv lock`.
fn prepare(tmp: &Path, base: &Path, platforms: &[&str]) -> PathBuf {
    let proj = tmp.join("proj");
    copy_tree(Path::new(PROJECT), &proj);
    let def = proj.join(DEF);
    let text = fs::read_to_string(&def).expect("read imgbuild.toml");
    let placeholder = "base = \"oci:base:latest\"\n";
    assert!(
        text.contains(placeholder),
        "{DEF} names its base as {placeholder}"
    );
    let mut line = format!("base = \"oci:{}:latest\"\n", base.display());
    if !platforms.is_empty() {
        let list: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
        line.push_str(&format!("platforms = [{}]\n", list.join(", ")));
    }
    fs::write(&def, text.replace(placeholder, &line)).expect("write imgbuild.toml");
    run(Command::new("uv")
        .arg("lock")
        .arg("--quiet")
        .current_dir(&proj)
        .env("UV_PYTHON_DOWNLOADS", "never"));
    proj
}

/// `name → versions` of every package in `uv.lock` (a package can have a
/// version per Python range: uv forks the resolution when a dependency's
/// newest release needs a newer Python than `requires-python`).
fn locked_versions(proj: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in lock_packages(proj) {
        if let (Some(n), Some(v)) = (
            p.get("name").and_then(|x| x.as_str()),
            p.get("version").and_then(|x| x.as_str()),
        ) {
            out.entry(n.to_string()).or_default().push(v.to_string());
        }
    }
    out
}

fn lock_packages(proj: &Path) -> Vec<toml::Table> {
    let text = fs::read_to_string(proj.join("uv.lock")).expect("read uv.lock");
    let lock: toml::Table = toml::from_str(&text).expect("uv.lock is TOML");
    lock["package"]
        .as_array()
        .expect("[[package]]")
        .iter()
        .map(|p| p.as_table().expect("a package table").clone())
        .collect()
}

fn version_tuple(v: &str) -> Vec<u32> {
    v.split('.')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("version {v}")))
        .collect()
}

/// The version of `name` the lock gives to Python `python` (X.Y.Z): the only
/// one, or the one whose `python_full_version OP 'V'` marker on the
/// project's dependency holds.
fn locked_for(proj: &Path, name: &str, python: &str) -> String {
    let versions = &locked_versions(proj)[name];
    if let [one] = versions.as_slice() {
        return one.clone();
    }
    let root = lock_packages(proj)
        .into_iter()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("e2e-app"))
        .expect("e2e-app in uv.lock");
    let py = version_tuple(python);
    let deps = root["dependencies"].as_array().expect("dependencies");
    let chosen: Vec<String> = deps
        .iter()
        .filter(|d| d.get("name").and_then(|n| n.as_str()) == Some(name))
        .filter(|d| {
            let marker = d.get("marker").and_then(|m| m.as_str()).unwrap_or("");
            let parts: Vec<&str> = marker.split_whitespace().collect();
            let [var, op, v] = parts.as_slice() else {
                panic!("{name}: a marker this test cannot read: {marker:?}")
            };
            assert_eq!(*var, "python_full_version", "{name}: marker {marker:?}");
            let v = version_tuple(v.trim_matches('\''));
            match *op {
                "<" => py < v,
                "<=" => py <= v,
                ">" => py > v,
                ">=" => py >= v,
                "==" => py == v,
                "!=" => py != v,
                _ => panic!("{name}: marker {marker:?}"),
            }
        })
        .map(|d| d["version"].as_str().expect("version").to_string())
        .collect();
    assert_eq!(chosen.len(), 1, "{name} for Python {python}: {deps:?}");
    chosen[0].clone()
}

/// The distribution's version from its `.dist-info` folder name among `dists`.
fn dist_version(dists: &BTreeMap<String, String>, pkg: &str) -> String {
    let prefix = format!("{pkg}-");
    let found: Vec<&String> = dists
        .keys()
        .filter(|d| {
            d.starts_with(&prefix) && d[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    assert_eq!(found.len(), 1, "one {pkg} installed: {dists:#?}");
    found[0][prefix.len()..]
        .trim_end_matches(".dist-info")
        .to_string()
}

fn build(proj: &Path, cache: &Path, out: &Path) -> Value {
    build_json(proj, cache, out, &[])
}

/// The layers of platform `pi` of the only image in a build's JSON.
fn layers(v: &Value, pi: usize) -> &Vec<Value> {
    v["images"][0]["platforms"][pi]["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers for platform {pi} in {v:#}"))
}

fn field<'a>(l: &'a Value, k: &str) -> &'a str {
    l[k].as_str()
        .unwrap_or_else(|| panic!("layer without {k}: {l}"))
}

/// A step's name without the ` [os/arch]` that multi-platform builds add.
fn step_name(l: &Value) -> &str {
    let s = field(l, "step");
    match s.rsplit_once(" [") {
        Some((name, plat)) if plat.starts_with("linux/") && plat.ends_with(']') => name,
        _ => s,
    }
}

fn steps(ls: &[Value]) -> Vec<&str> {
    ls.iter().map(step_name).collect()
}

fn digests(ls: &[Value]) -> Vec<&str> {
    ls.iter().map(|l| field(l, "digest")).collect()
}

fn caches(ls: &[Value]) -> Vec<&str> {
    ls.iter().map(|l| field(l, "cache")).collect()
}

/// The layers imgbuild made (not the base's).
fn own(ls: &[Value]) -> Vec<Value> {
    ls.iter()
        .filter(|l| l["cache"] != "base")
        .cloned()
        .collect()
}

/// Runs `argv` in `rootfs` as root (chroot, a clean environment); returns stdout.
#[track_caller]
fn in_root(rootfs: &Path, argv: &[&str]) -> String {
    run(Command::new("chroot")
        .arg(rootfs)
        .args(argv)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8"))
}

/// Checks one layer the build made: digest, size and diff_id against the
/// blob, and a canonical tar (sorted, root-owned, mtime 0).
fn check_layer(layout: &Layout, l: &Value) -> Vec<TarEntry> {
    let digest = field(l, "digest");
    let blob = layout.blob(digest);
    assert_eq!(sha256_hex(&blob), hex(digest), "blob of {}", l["step"]);
    assert_eq!(blob.len() as u64, l["size"].as_u64().expect("size"));
    let tar = decompress(&blob, field(l, "media_type"));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&tar)),
        field(l, "diff_id"),
        "diff_id of {}",
        l["step"]
    );
    check_canonical_tar(&tar, 0);
    tar_entries(&tar)
}

/// Dist-info folders in a layer and whether each wheel is pure
/// (`Root-Is-Purelib: true` and only `*-none-any` tags).
fn wheels_in(entries: &[TarEntry]) -> BTreeMap<String, bool> {
    entries
        .iter()
        .filter(|e| e.path.ends_with(".dist-info/WHEEL"))
        .map(|e| {
            let text = String::from_utf8_lossy(&e.data);
            let purelib = text
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case("Root-Is-Purelib: true"));
            let tags: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("Tag:"))
                .map(str::trim)
                .collect();
            let pure = purelib && !tags.is_empty() && tags.iter().all(|t| t.ends_with("-none-any"));
            let dist = e
                .path
                .trim_end_matches("/WHEEL")
                .rsplit('/')
                .next()
                .unwrap_or("");
            (dist.to_string(), pure)
        })
        .collect()
}

#[test]
fn uv_project_builds_runs_and_rebuilds_only_what_changed() {
    if !pybase::python_tools_present("uv_project_builds_runs_and_rebuilds_only_what_changed") {
        return;
    }
    let base = pybase::debian_python_base();
    let tmp = TempDir::new().expect("temp dir");
    let proj = prepare(tmp.path(), &base, &[]);
    let locked = locked_versions(&proj);
    let cache = tmp.path().join("cache");

    // --- cold build
    let out1 = tmp.path().join("out1");
    let v1 = build(&proj, &cache, &out1);
    let ls1 = layers(&v1, 0);
    assert_eq!(
        v1["images"][0]["platforms"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(caches(ls1)[0], "base", "the base's one layer first: {v1:#}");
    assert_eq!(caches(ls1).iter().filter(|c| **c == "base").count(), 1);
    let mine = own(ls1);
    assert!(
        mine.iter().all(|l| l["cache"] == "miss"),
        "a cold build builds every layer: {v1:#}"
    );
    assert_eq!(v1["layers_built"].as_u64(), Some(mine.len() as u64));
    let names = steps(&mine);
    assert!(
        names.iter().all(|s| s.starts_with("uv_project ")),
        "every layer comes from the uv_project entry: {names:?}"
    );
    assert!(
        names[0].ends_with(": venv /opt/venv"),
        "the venv skeleton comes first: {names:?}"
    );
    let numpy_steps: Vec<&&str> = names
        .iter()
        .filter(|s| {
            locked["numpy"]
                .iter()
                .any(|v| s.ends_with(&format!(": numpy {v}")))
        })
        .collect();
    assert_eq!(
        numpy_steps.len(),
        1,
        "numpy (a wheel over 8 MiB) has a layer of its own: {names:?}"
    );
    assert!(
        names.last().expect("layers").ends_with(": project e2e-app"),
        "the project's own wheel is the last layer: {names:?}"
    );

    // Every layer imgbuild wrote is canonical and matches its descriptors.
    let layout1 = Layout::new(&out1);
    let mut where_is = BTreeMap::new();
    for l in &mine {
        for (dist, _) in wheels_in(&check_layer(&layout1, l)) {
            let step = field(l, "step").to_string();
            if let Some(other) = where_is.insert(dist.clone(), step) {
                panic!("{dist} installed twice (also in {other})");
            }
        }
    }
    // Every installed distribution is a locked package at a locked version.
    for dist in where_is.keys() {
        let (name, version) = dist
            .trim_end_matches(".dist-info")
            .split_once('-')
            .unwrap_or_else(|| panic!("dist-info name {dist}"));
        let name = name.to_lowercase().replace('_', "-");
        assert!(
            locked
                .get(&name)
                .is_some_and(|vs| vs.iter().any(|v| v == version)),
            "{dist} is not in uv.lock: {locked:?}"
        );
    }
    let installed: BTreeMap<&str, String> = ["httpx", "pydantic", "numpy", "e2e_app"]
        .into_iter()
        .map(|pkg| (pkg, dist_version(&where_is, pkg)))
        .collect();
    assert!(
        numpy_steps[0].ends_with(&format!(": numpy {}", installed["numpy"])),
        "{numpy_steps:?} vs {installed:?}"
    );
    assert!(
        where_is[&format!("numpy-{}.dist-info", installed["numpy"])].ends_with(numpy_steps[0]),
        "numpy is in its own layer"
    );

    let (manifest, config) = layout1.image("latest");
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(ls1.len()));
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"VIRTUAL_ENV=/opt/venv"), "{env:?}");
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=/opt/venv/bin:/usr/local/sbin:")),
        "{env:?}"
    );

    // --- run it
    let rootfs = umoci_unpack(&out1, "latest", &tmp.path().join("bundle1"));
    let versions = in_root(
        &rootfs,
        &[
            "/opt/venv/bin/python",
            "-c",
            "import platform, httpx, pydantic, numpy; \
             print(platform.python_version(), httpx.__version__, pydantic.VERSION, numpy.__version__)",
        ],
    );
    let python = versions
        .split_whitespace()
        .next()
        .expect("a Python version");
    assert_eq!(
        versions.trim(),
        format!(
            "{python} {} {} {}",
            locked_for(&proj, "httpx", python),
            locked_for(&proj, "pydantic", python),
            locked_for(&proj, "numpy", python)
        ),
        "the versions the lock gives to the base's Python are the ones installed"
    );
    assert_eq!(installed["numpy"], locked_for(&proj, "numpy", python));
    let expected = |greeting: &str| {
        format!(
            "{greeting}\ne2e-app 0.1.0 on python 3.11\nnumpy sum: 4950\n\
             model: {{\"name\":\"e2e\",\"values\":[1,2,3]}}\n\
             url: http://127.0.0.1:8000/items?id=7\n"
        )
    };
    assert_eq!(
        in_root(&rootfs, &["/opt/venv/bin/e2e-app"]),
        expected("hello from e2e-app")
    );
    // The venv's python is the base's interpreter.
    assert_eq!(
        in_root(
            &rootfs,
            &[
                "/opt/venv/bin/python",
                "-c",
                "import sys; print(sys.prefix, sys.base_prefix)"
            ]
        )
        .trim(),
        "/opt/venv /usr"
    );

    // --- the same build again: all hits, the same image
    let out2 = tmp.path().join("out2");
    let v2 = build(&proj, &cache, &out2);
    let ls2 = layers(&v2, 0);
    assert!(
        own(ls2).iter().all(|l| l["cache"] == "hit"),
        "an unchanged project is all cache hits: {v2:#}"
    );
    assert_eq!(v2["layers_built"].as_u64(), Some(0));
    assert_eq!(v2["images"][0]["digest"], v1["images"][0]["digest"]);
    assert_eq!(digests(ls2), digests(ls1));

    // --- one source file changed: only the project's layer is new
    let init = proj.join("src/e2e_app/__init__.py");
    let text = fs::read_to_string(&init).expect("read __init__.py");
    fs::write(
        &init,
        text.replace("hello from e2e-app", "hello again from e2e-app"),
    )
    .expect("write __init__.py");
    let out3 = tmp.path().join("out3");
    let v3 = build(&proj, &cache, &out3);
    let ls3 = layers(&v3, 0);
    assert_eq!(steps(ls3), steps(ls1));
    let (d1, d3) = (digests(ls1), digests(ls3));
    let n = d1.len();
    assert_eq!(
        d3[..n - 1],
        d1[..n - 1],
        "every layer but the project's is unchanged"
    );
    assert_ne!(d3[n - 1], d1[n - 1], "the project's layer changed");
    assert_eq!(caches(ls3)[n - 1], "miss");
    assert!(
        own(&ls3[..n - 1]).iter().all(|l| l["cache"] == "hit"),
        "{v3:#}"
    );
    assert_eq!(v3["layers_built"].as_u64(), Some(1));
    let rootfs3 = umoci_unpack(&out3, "latest", &tmp.path().join("bundle3"));
    assert_eq!(
        in_root(&rootfs3, &["/opt/venv/bin/e2e-app"]),
        expected("hello again from e2e-app")
    );
}

#[test]
fn uv_project_for_two_platforms_shares_pure_python_layers() {
    if !pybase::python_tools_present("uv_project_for_two_platforms_shares_pure_python_layers") {
        return;
    }
    require_tool("skopeo", "skopeo");
    let base = pybase::debian_python_base_multiarch();
    let tmp = TempDir::new().expect("temp dir");
    let proj = prepare(tmp.path(), &base, &["linux/amd64", "linux/arm64"]);
    let locked = locked_versions(&proj);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    let v = build(&proj, &cache, &out);

    let plats: Vec<&str> = v["images"][0]["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|p| p["platform"].as_str().expect("platform"))
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    let layout = Layout::new(&out);
    let top = layout.tagged("latest");
    assert_eq!(top["mediaType"], MT_INDEX);
    assert_eq!(top["digest"], v["images"][0]["digest"]);
    let manifests = layout.manifests("latest");
    assert_eq!(manifests.len(), 2, "one manifest per platform");
    for (pi, (digest, m)) in manifests.iter().enumerate() {
        assert_eq!(
            v["images"][0]["platforms"][pi]["manifest_digest"].as_str(),
            Some(digest.as_str())
        );
        let in_manifest: Vec<&str> = m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest"))
            .collect();
        assert_eq!(in_manifest, digests(layers(&v, pi)));
    }

    let (amd, arm) = (own(layers(&v, 0)), own(layers(&v, 1)));
    assert_eq!(steps(&amd), steps(&arm), "the same steps on both platforms");
    let is_numpy = |step: &str| {
        locked["numpy"]
            .iter()
            .any(|v| step.ends_with(&format!(": numpy {v}")))
    };
    let mut shared = Vec::new();
    for (a, b) in amd.iter().zip(&arm) {
        let step = step_name(a);
        let (ea, eb) = (check_layer(&layout, a), check_layer(&layout, b));
        if is_numpy(step) {
            assert_ne!(a["digest"], b["digest"], "numpy is built per platform");
            let has = |es: &[TarEntry], suffix: &str| es.iter().any(|e| e.path.ends_with(suffix));
            assert!(
                has(&ea, "-x86_64-linux-gnu.so"),
                "amd64 numpy has x86_64 modules"
            );
            assert!(
                has(&eb, "-aarch64-linux-gnu.so"),
                "arm64 numpy has aarch64 modules"
            );
            assert!(!has(&ea, "-aarch64-linux-gnu.so"));
            continue;
        }
        let (wa, wb) = (wheels_in(&ea), wheels_in(&eb));
        if wa.is_empty() {
            continue; // the venv skeleton: no wheels
        }
        assert_eq!(
            wa.keys().collect::<Vec<_>>(),
            wb.keys().collect::<Vec<_>>(),
            "{step}: the same packages on both platforms"
        );
        if wa.values().all(|pure| *pure) {
            assert_eq!(
                a["digest"],
                b["digest"],
                "{step} holds only pure-python wheels ({:?}): one layer for both platforms",
                wa.keys()
            );
            shared.push(step.to_string());
        } else {
            assert_ne!(
                a["digest"], b["digest"],
                "{step} holds platform wheels ({wa:?}): a layer per platform"
            );
        }
        if wa.keys().any(|k| k.starts_with("httpx-")) {
            eprintln!("httpx is in {step} with (dist → pure) {wa:?}");
        }
    }
    eprintln!("layers shared by both platforms: {shared:?}");
    assert!(
        shared.iter().any(|s| s.ends_with(": project e2e-app")),
        "the project's own (pure) wheel is shared: {shared:?}"
    );
    // Pure dependencies (httpx and its pure dependencies) are bucketed apart
    // from platform wheels, so their layers are shared too.
    assert!(
        shared.iter().any(|s| s.contains(": packages ")),
        "a bucket of pure dependencies is shared: {shared:?}"
    );
    assert!(
        amd.iter()
            .any(|l| step_name(l).contains(": platform packages ")),
        "platform wheels (pydantic-core) have buckets of their own"
    );

    // Run the amd64 image: skopeo picks the host's platform from the index.
    let single = tmp.path().join("amd64");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", out.display()),
            &format!("oci:{}:latest", single.display()),
        ],
    );
    let (_, cfg) = Layout::new(&single).image("latest");
    assert_eq!(cfg["architecture"], "amd64");
    let rootfs = umoci_unpack(&single, "latest", &tmp.path().join("bundle"));
    let got = in_root(
        &rootfs,
        &[
            "/opt/venv/bin/python",
            "-c",
            "import platform, httpx, pydantic, numpy; print(platform.machine(), numpy.__version__, int(numpy.arange(10).sum()))",
        ],
    );
    let (machine, numpy, sum) = match got.split_whitespace().collect::<Vec<_>>()[..] {
        [a, b, c] => (a.to_string(), b.to_string(), c.to_string()),
        _ => panic!("unexpected output: {got}"),
    };
    assert_eq!((machine.as_str(), sum.as_str()), ("x86_64", "45"));
    assert!(locked["numpy"].contains(&numpy), "{numpy} vs {locked:?}");
}

/// A uv project whose dependencies come from a folder of wheels beside it
/// (`find-links` on disk, and a flat index of `format = "flat"`): uv's lock
/// names the folder as a relative registry and lists its wheels by name,
/// without hashes. Each wheel is read from that folder once (not from
/// `wheels/wheels/`), named by its bytes, installed, and imports.
#[test]
fn uv_project_with_wheels_from_a_local_folder() {
    if !pybase::python_tools_present("uv_project_with_wheels_from_a_local_folder") {
        return;
    }
    let base = pybase::debian_python_base();
    let tmp = TempDir::new().expect("temp dir");
    for (case, uv_config) in [
        (
            "find-links",
            "[tool.uv]\nfind-links = [\"./wheels\"]\nno-index = true\n",
        ),
        (
            "flat-index",
            "[[tool.uv.index]]\nname = \"local\"\nurl = \"./wheels\"\nformat = \"flat\"\ndefault = true\n",
        ),
    ] {
        let proj = tmp.path().join(case);
        support::pyfix::write_wheel(
            &proj.join("wheels"),
            &support::pyfix::WheelSpec::pure("localpkg", "1.0"),
        );
        write(
            &proj,
            "pyproject.toml",
            &format!(
                "[project]\nname = \"app\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\n\
                 dependencies = [\"localpkg\"]\n\n{uv_config}"
            ),
        );
        write(
            &proj,
            "imgbuild.toml",
            &format!(
                "[images.app]\nbase = \"oci:{}:latest\"\ntag = \"latest\"\n\n\
                 [[images.app.layers]]\nuv_project = \"pyproject.toml\"\n",
                base.display()
            ),
        );
        run(Command::new("uv")
            .args(["lock", "--quiet"])
            .current_dir(&proj)
            .env("UV_PYTHON_DOWNLOADS", "never"));
        let lock = fs::read_to_string(proj.join("uv.lock")).unwrap();
        assert!(
            lock.contains("source = { registry = \"wheels\" }") && !lock.contains("hash = "),
            "{case}: uv locks the folder as a relative registry, without hashes:\n{lock}"
        );
        let out = tmp.path().join(format!("{case}-out"));
        build(&proj, &tmp.path().join(format!("{case}-cache")), &out);
        let root = umoci_unpack(&out, "latest", &tmp.path().join(format!("{case}-bundle")));
        assert_eq!(
            in_root(
                &root,
                &[
                    "/opt/venv/bin/python",
                    "-c",
                    "import localpkg; print(localpkg.__version__)"
                ]
            ),
            "1.0\n",
            "{case}"
        );
    }
}

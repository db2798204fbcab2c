//! Every deployment-pattern fixture that can be built today builds onto
//! `scratch`, and its layers hold exactly the expected paths.

use flate2::read::MultiGzDecoder;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn imgbuild(args: &[&str], cache: &Path) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgbuild"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--format")
        .arg("json")
        .output()
        .expect("run imgbuild");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Paths (with a trailing '/' for folders) of every layer of the image, in order.
fn layer_paths(layout: &Path, v: &Value) -> Vec<Vec<String>> {
    let p = &v["images"][0]["platforms"][0];
    p["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let hex = l["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap();
            let f = std::fs::File::open(layout.join("blobs/sha256").join(hex)).unwrap();
            let mut ar = tar::Archive::new(MultiGzDecoder::new(f));
            ar.entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
                .collect()
        })
        .collect()
}

fn build(name: &str, extra: &[&str]) -> (Value, Vec<Vec<String>>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let dir = fixture(name);
    let output = format!("oci:{}", out.display());
    let mut args = vec!["build", dir.to_str().unwrap(), "--output", &output, "-q"];
    args.extend_from_slice(extra);
    let (code, v, err) = imgbuild(&args, &tmp.path().join("cache"));
    assert_eq!(code, 0, "{name}: {err}");
    let paths = layer_paths(&out, &v);
    (v, paths, tmp)
}

#[test]
fn simple_file() {
    let (v, layers, _t) = build("simple-file", &[]);
    assert_eq!(layers, vec![vec!["root/hello.py".to_string()]]);
    assert_eq!(v["images"][0]["reference"], "simple-file:v1");
}

#[test]
fn full_build_copies_contents_only() {
    let (_, layers, _t) = build("full-build", &[]);
    assert_eq!(
        layers[0],
        [
            "root/README.md",
            "root/main.py",
            "root/pkg/",
            "root/pkg/__init__.py",
            "root/pkg/dep.py"
        ]
    );
}

#[test]
fn package_structure_keeps_its_top_folder() {
    let (_, layers, _t) = build("package-structure", &[]);
    assert_eq!(
        layers[0],
        [
            "root/my_app/",
            "root/my_app/__init__.py",
            "root/my_app/envs.py",
            "root/my_app/workflows/",
            "root/my_app/workflows/__init__.py",
            "root/my_app/workflows/first.py",
            "root/my_app/workflows/second.py"
        ]
    );
}

#[test]
fn python_path_has_two_independent_layers() {
    let (_, layers, _t) = build("python-path", &[]);
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0],
        ["root/src/", "root/src/lib_a/", "root/src/lib_a/__init__.py"]
    );
    assert_eq!(layers[1], ["root/workflows/", "root/workflows/pipeline.py"]);
}

#[test]
fn dynamic_environments_profiles() {
    let (dev, _, _t) = build("dynamic-environments", &[]);
    assert_eq!(dev["images"][0]["tag"], "dev");
    assert_eq!(dev["images"][0]["platforms"].as_array().unwrap().len(), 1);
    let (prod, layers, _t2) = build("dynamic-environments", &["--profile", "production"]);
    let img = &prod["images"][0];
    assert_eq!(img["tag"], "production");
    assert_eq!(img["media_type"], "application/vnd.oci.image.index.v1+json");
    let plats: Vec<&str> = img["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    // The source layer does not differ by platform: one digest for both.
    assert_eq!(
        img["platforms"][0]["layers"][0]["digest"],
        img["platforms"][1]["layers"][0]["digest"]
    );
    assert_eq!(layers[0], ["srv/main.py"]);
    // Same files, so the dev and production layers are the same blob too.
    assert_eq!(
        dev["images"][0]["platforms"][0]["layers"][0]["digest"],
        img["platforms"][0]["layers"][0]["digest"]
    );
}

#[test]
fn pyproject_package_plans_a_venv_and_a_project_layer() {
    // The fixture's base is a registry image; plan it on scratch with the
    // definition's Python so no registry is needed.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pyproject-package");
    copy_tree(&fixture("pyproject-package"), &dir);
    let def = dir.join("imgbuild.toml");
    let text = std::fs::read_to_string(&def).unwrap();
    std::fs::write(
        &def,
        text.replace("base = \"debian\"", "base = \"scratch\""),
    )
    .unwrap();
    let (code, v, err) = imgbuild(&["plan", dir.to_str().unwrap()], &tmp.path().join("c"));
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = v["images"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "uv_project pyproject.toml: venv /opt/venv",
            "uv_project pyproject.toml: project my-pkg",
            "env VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin (the venv)",
        ],
        "{v}"
    );
    // Without `python`, a scratch base has no interpreter to build for.
    let text = std::fs::read_to_string(&def).unwrap();
    std::fs::write(&def, text.replace("python = \"3.12\"\n", "")).unwrap();
    let (code, v, err) = imgbuild(&["plan", dir.to_str().unwrap()], &tmp.path().join("c"));
    assert_eq!(code, 2, "{err}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("imgbuild.toml:7:1: images.pyproject.layers[0].uv_project")
            && msg.contains("set `python`"),
        "{msg}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// What the scratch-based fixtures' images hold is pinned in
/// `testdata/fixture-digests.txt` (config and layer digests; the manifest
/// also names the context's git commit, so it changes with every commit):
/// a change to the engine that changes an image's bytes shows here, and
/// must update the file on purpose (saying why in the commit).
#[test]
fn fixture_digests_are_pinned() {
    let pinned = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fixture-digests.txt"),
    )
    .unwrap();
    let mut got = String::new();
    for line in pinned.lines() {
        let (what, _) = line
            .split_once(": ")
            .expect("FIXTURE[ --profile P]: NAME config=DIGEST layers=DIGEST,…");
        let mut words = what.split(' ');
        let name = words.next().unwrap();
        let extra: Vec<&str> = words.collect();
        let (v, _, _tmp) = build(name, &extra);
        let images: Vec<String> = v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let p = &i["platforms"][0];
                let layers: Vec<&str> = p["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].as_str().unwrap())
                    .collect();
                format!(
                    "{} config={} layers={}",
                    i["name"].as_str().unwrap(),
                    p["config_digest"].as_str().unwrap(),
                    layers.join(",")
                )
            })
            .collect();
        got.push_str(&format!("{what}: {}\n", images.join(" ")));
    }
    assert_eq!(got, pinned, "the fixtures' images changed");
}

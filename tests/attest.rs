//! SBOMs (`--sbom`): what the image installs, from its package databases
//! and the build's locks, as SPDX 2.3 and CycloneDX 1.6 JSON, validated by
//! those projects' own Python tools, checked against `dpkg-query` and
//! `importlib.metadata` in the image, attached to the image in a layout
//! and in a real registry (referrers tag scheme), read back with skopeo.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::pybase::run;
use support::registry::{Registry, RegistryOptions, skopeo};
use support::*;

/// A venv with the SPDX project's `spdx-tools` (its `pyspdxtools`) and the
/// CycloneDX project's `cyclonedx-python-lib`, made once.
fn sbom_tools() -> PathBuf {
    support::pybase::cached_folder("sbom-tools-v1", "installed", |dir| {
        run(Command::new("python3").args(["-m", "venv"]).arg(dir));
        run(Command::new(dir.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "-q",
            "spdx-tools==0.8.5",
            "cyclonedx-python-lib[json-validation]==11.12.0",
        ]));
        fs::write(dir.join("installed"), "").unwrap();
    })
}

const VALIDATE: &str = r#"
import sys
kind, path = sys.argv[1], sys.argv[2]
if kind == "spdx":
    # pyspdxtools, the SPDX project's command: it parses, validates, and
    # exits 1 with the problems on stderr.
    from spdx_tools.spdx.clitools.pyspdxtools import main
    sys.argv = ["pyspdxtools", "-i", path]
    main()
else:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(path).read())
    problems = [str(error)] if error else []
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
"#;

/// Validates `doc` with the project's own tool; panics with its messages.
fn validate(tools: &Path, kind: &str, doc: &[u8]) {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join(format!("sbom.{kind}.json"));
    fs::write(&path, doc).unwrap();
    let o = Command::new(tools.join("bin/python"))
        .args(["-c", VALIDATE, kind])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{kind} document is invalid:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `imgbuild sbom IMAGE --format FORMAT`.
fn sbom_of(image: &str, format: &str) -> Vec<u8> {
    let r = ib(&["sbom", image, "--format", format]).run();
    assert_eq!(r.code, 0, "{r}");
    r.stdout.into_bytes()
}

/// A uv project whose two wheels come from a local index.
fn uv_project(dir: &Path, index: &pyfix::FileServer) {
    pyfix::served_project(
        &dir.join("proj"),
        index,
        "deployed",
        &[("tinydep", "1.0", &["otherdep"]), ("otherdep", "2.0", &[])],
    );
}

/// The packages of an SPDX document that are installed software (not the
/// image, not its layers), as (purl type, name, version, sha256).
fn spdx_packages(doc: &Value) -> Vec<(String, String, String, Option<String>)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
            let kind = purl.strip_prefix("pkg:")?.split('/').next()?.to_string();
            Some((
                kind,
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
                p["checksums"][0]["checksumValue"]
                    .as_str()
                    .map(str::to_string),
            ))
        })
        .collect()
}

/// The Flyte-style project on a native Debian base: every installed
/// package and distribution is listed exactly once with its version (and
/// the hash its lock has), nothing else is; both documents validate.
#[test]
fn the_sbom_lists_exactly_what_the_image_installs() {
    let test = "the_sbom_lists_exactly_what_the_image_installs";
    if !support::pybase::have_bookworm_sources(test) || !support::pybase::python_tools_present(test)
    {
        return;
    }
    assert!(is_root(), "run the tests as root (chroot)");
    let tools = sbom_tools();
    let t = tempfile::tempdir().unwrap();
    let index = pyfix::FileServer::start(&t.path().join("www"));
    let ctx = t.path().join("ctx");
    uv_project(&ctx, &index);
    write(&ctx, "src/main.py", "print('hi')\n");
    write(
        &ctx,
        "imgbuild.toml",
        "[images.app]\nbase = { debian = \"bookworm\", packages = [\"python3\"] }\ntag = \"v1\"\n\n\
         [[images.app.layers]]\napt_packages = [\"jq\"]\n\n\
         [[images.app.layers]]\nuv_project = \"proj\"\n\n\
         [[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\n",
    );
    let out = t.path().join("out");
    let v = ib(&["build"])
        .path_arg(&ctx)
        .cache(&t.path().join("store"))
        .oci_out(&out)
        .json()
        .args(&["-q", "--sbom"])
        .run()
        .ok()
        .json();
    let manifest = v["images"][0]["digest"].as_str().unwrap().to_string();
    let attached = v["images"][0]["attestations"].as_array().unwrap();
    assert_eq!(attached.len(), 2, "{v:#}");
    assert!(attached.iter().all(|a| a["subject"] == manifest.as_str()));

    let image = format!("oci:{}:v1", out.display());
    let spdx = sbom_of(&image, "spdx");
    let cdx = sbom_of(&image, "cyclonedx");
    validate(&tools, "spdx", &spdx);
    validate(&tools, "cyclonedx", &cdx);
    let doc: Value = serde_json::from_slice(&spdx).unwrap();
    let listed = spdx_packages(&doc);

    // Debian: what dpkg says is installed in the image.
    let rootfs = umoci_unpack(&out, "v1", &t.path().join("bundle"));
    let dpkg = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}/var/lib/dpkg", rootfs.display()))
        .args(["-W", "-f", "${db:Status-Status} ${Package} ${Version}\\n"]));
    let installed: BTreeSet<(String, String)> = dpkg
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    let debs: Vec<(String, String)> = listed
        .iter()
        .filter(|p| p.0 == "deb")
        .map(|p| (p.1.clone(), p.2.clone()))
        .collect();
    assert_eq!(debs.len(), installed.len(), "each package once");
    assert_eq!(debs.iter().cloned().collect::<BTreeSet<_>>(), installed);
    assert!(installed.iter().any(|(n, _)| n == "jq"));
    // Every listed package has the .deb hash of the lock.
    let lock: toml::Value =
        toml::from_str(&fs::read_to_string(ctx.join("imgbuild.lock")).unwrap()).unwrap();
    let locked: BTreeSet<(String, String, String)> = lock["base"][0]["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for p in listed.iter().filter(|p| p.0 == "deb") {
        let sha = p.3.clone().unwrap_or_else(|| panic!("{} has no hash", p.1));
        assert!(locked.contains(&(p.1.clone(), p.2.clone(), sha)), "{p:?}");
    }

    // Python: what importlib.metadata finds, for the venv and the system.
    let mut dists = BTreeSet::new();
    for python in ["/opt/venv/bin/python", "/usr/bin/python3"] {
        let out = run(Command::new("chroot").arg(&rootfs).args([
            python,
            "-c",
            "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'], d.version)",
        ]));
        for l in out.lines() {
            let (n, v) = l.split_once(' ').unwrap();
            dists.insert((n.to_string(), v.to_string()));
        }
    }
    let pys: Vec<(String, String)> = listed
        .iter()
        .filter(|p| p.0 == "pypi")
        .map(|p| (p.1.clone(), p.2.clone()))
        .collect();
    assert_eq!(
        pys.iter().cloned().collect::<BTreeSet<_>>(),
        dists,
        "{pys:?}"
    );
    assert_eq!(pys.len(), dists.len(), "each distribution once");
    let uvlock = fs::read_to_string(ctx.join("proj/uv.lock")).unwrap();
    for name in ["tinydep", "otherdep"] {
        let p = listed.iter().find(|p| p.1 == name).unwrap();
        let sha = p.3.as_deref().expect("the wheel's hash");
        assert!(uvlock.contains(&format!("sha256:{sha}")), "{name}");
    }
    // tinydep depends on otherdep; the image contains both.
    let rels = doc["relationships"].as_array().unwrap();
    assert!(rels.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"
        && r["spdxElementId"] == "SPDXRef-pypi-tinydep-1.0"
        && r["relatedSpdxElement"] == "SPDXRef-pypi-otherdep-2.0"));
    // The source folder is a component of its own.
    let cdx: Value = serde_json::from_slice(&cdx).unwrap();
    assert!(
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "file"
                && c["name"].as_str().unwrap().contains("source_folder src")),
        "{cdx:#}"
    );
    // No host path: the context and the store are nowhere in either.
    for (name, bytes) in [
        ("spdx", &spdx),
        ("cyclonedx", &serde_json::to_vec(&cdx).unwrap()),
    ] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(t.path().to_str().unwrap()),
            "{name} names a host path"
        );
    }
}

/// A project with no network: a scratch base with Python 3.11, a uv
/// project from a local index, a source folder.
fn small_project(dir: &Path, index: &pyfix::FileServer) {
    uv_project(dir, index);
    write(dir, "src/main.py", "print('hi')\n");
    write(
        dir,
        "imgbuild.toml",
        "[images.app]\nbase = \"scratch\"\npython = \"3.11\"\ntag = \"v1\"\n\n\
         [[images.app.layers]]\nuv_project = \"proj\"\n\n\
         [[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\n",
    );
}

/// Pushed with `--sbom`: the attestations are artifacts whose subject is
/// the image's manifest, found through the referrers tag; the image is
/// the same as without them; `imgbuild sbom` reads the registry's copy.
#[test]
fn sboms_are_attached_in_the_registry_and_the_layout() {
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let index = pyfix::FileServer::start(&t.path().join("www"));
    let ctx = t.path().join("ctx");
    small_project(&ctx, &index);
    let store = t.path().join("store");
    let out = t.path().join("out");
    let image = format!("{}/team/app:v1", r.host());
    let build = |extra: &[&str]| {
        ib(&["build"])
            .path_arg(&ctx)
            .cache(&store)
            .json()
            .arg("-q")
            .args(extra)
            .run()
            .ok()
            .json()
    };
    let plain = build(&["--push", "--tag", &format!("{}/team/app:plain", r.host())]);
    let v = build(&[
        "--push",
        "--tag",
        &image,
        "--sbom",
        "--output",
        &format!("oci:{}", out.display()),
    ]);
    let digest = v["images"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        plain["images"][0]["digest"],
        digest.as_str(),
        "attaching changes nothing"
    );
    assert!(plain["images"][0].get("attestations").is_none());

    // The referrers tag: an index of the two artifacts.
    let tag = format!("sha256-{}", hex(&digest));
    let tags = skopeo_json(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/team/app", r.host()),
    ]);
    assert!(
        tags["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == tag.as_str()),
        "{tags:#}"
    );
    let raw = |reference: &str| -> Value {
        let text = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/team/app{reference}", r.host()),
        ])
        .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let idx = raw(&format!(":{tag}"));
    let entries = idx["manifests"].as_array().unwrap();
    let types: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["application/spdx+json", "application/vnd.cyclonedx+json"])
    );
    for e in entries {
        let m = raw(&format!("@{}", e["digest"].as_str().unwrap()));
        assert_eq!(m["subject"]["digest"], digest.as_str(), "{m:#}");
        assert_eq!(m["artifactType"], e["artifactType"]);
    }

    // imgbuild reads them back, from the registry and from the layout,
    // the same bytes.
    let listed = ib(&["attestations", &image, "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
    let layout_ref = format!("oci:{}:v1", out.display());
    for format in ["spdx", "cyclonedx"] {
        assert_eq!(
            sbom_of(&image, format),
            sbom_of(&layout_ref, format),
            "{format}"
        );
    }
    // The layout's own image is still the one image without a tag.
    let r2 = ib(&["inspect", &format!("oci:{}", out.display())]).run();
    assert_eq!(r2.code, 0, "{r2}");

    // Again: nothing is listed twice, in the registry or in the layout.
    build(&[
        "--push",
        "--tag",
        &image,
        "--sbom",
        "--output",
        &format!("oci:{}", out.display()),
    ]);
    assert_eq!(
        raw(&format!(":{tag}"))["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let index_json = Layout::new(&out).index();
    let artifacts = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("artifactType").is_some())
        .count();
    assert_eq!(artifacts, 2, "{index_json:#}");

    // A build without --sbom has none to print.
    let other = t.path().join("other");
    build(&["--output", &format!("oci:{}", other.display())]);
    let r3 = ib(&["sbom", &format!("oci:{}:v1", other.display())]).run();
    assert_eq!(r3.code, 1, "{r3}");
    assert!(r3.stderr.contains("--sbom"), "{r3}");
}

/// The same image built from two folders with two stores has the same
/// SBOM, byte for byte; `sbom = true` in the definition asks for it too.
#[test]
fn sboms_are_reproducible_and_definitions_can_ask_for_them() {
    let t = tempfile::tempdir().unwrap();
    let index = pyfix::FileServer::start(&t.path().join("www"));
    let mut docs = Vec::new();
    for n in 0..2 {
        let ctx = t.path().join(format!("ctx{n}"));
        small_project(&ctx, &index);
        let def = fs::read_to_string(ctx.join("imgbuild.toml")).unwrap();
        fs::write(ctx.join("imgbuild.toml"), format!("sbom = true\n{def}")).unwrap();
        let out = t.path().join(format!("out{n}"));
        ib(&["build"])
            .path_arg(&ctx)
            .cache(&t.path().join(format!("store{n}")))
            .oci_out(&out)
            .arg("-q")
            .run()
            .ok();
        let image = format!("oci:{}:v1", out.display());
        docs.push((sbom_of(&image, "spdx"), sbom_of(&image, "cyclonedx")));
    }
    assert_eq!(docs[0], docs[1]);
    // An oci-archive holds them too.
    let archive = t.path().join("app.tar");
    ib(&["build"])
        .path_arg(&t.path().join("ctx0"))
        .cache(&t.path().join("store0"))
        .args(&[
            "-q",
            "--output",
            &format!("oci-archive:{}", archive.display()),
        ])
        .run()
        .ok();
    let unpacked = t.path().join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked));
    let image = format!("oci:{}:v1", unpacked.display());
    assert_eq!(
        (sbom_of(&image, "spdx"), sbom_of(&image, "cyclonedx")),
        docs[0]
    );
    // --sbom=false wins over the definition.
    let out = t.path().join("off");
    ib(&["build"])
        .path_arg(&t.path().join("ctx0"))
        .cache(&t.path().join("store0"))
        .oci_out(&out)
        .args(&["-q", "--sbom=false"])
        .run()
        .ok();
    assert_eq!(
        ib(&["sbom", &format!("oci:{}:v1", out.display())])
            .run()
            .code,
        1
    );
    let bad = ib(&["build", "--sbom=generator=docker/scout-sbom-indexer"])
        .path_arg(&t.path().join("ctx0"))
        .run();
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("no scanner"), "{bad}");
}

/// The provenance statement attached to `image`.
fn provenance_of(image: &str) -> String {
    let r = ib(&["attestations", image, "--show", "provenance"]).run();
    assert_eq!(r.code, 0, "{r}");
    r.stdout
}

/// `git init`, a commit at a fixed time (the same commit in any folder),
/// and an origin whose URL has credentials.
fn git_checkout(dir: &Path) -> String {
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@example.invalid")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.invalid")
            .env("GIT_AUTHOR_DATE", "1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "1700000000 +0000"))
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "app"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://ci:hunter2@git.example.invalid/team/app.git",
    ]);
    git(&["rev-parse", "HEAD"]).trim().to_string()
}

/// `--provenance`: a SLSA v1 statement naming the definition, the uv
/// project's lock and the commit by digest, with no credentials or host
/// paths, the same bytes from two folders and two stores; `mode=max` adds
/// every layer.
#[test]
fn provenance_names_every_input_and_is_reproducible() {
    let t = tempfile::tempdir().unwrap();
    let index = pyfix::FileServer::start(&t.path().join("www"));
    let mut docs = Vec::new();
    let mut commit = String::new();
    let mut digest = String::new();
    for n in 0..2 {
        let ctx = t.path().join(format!("ctx{n}"));
        small_project(&ctx, &index);
        commit = git_checkout(&ctx);
        let out = t.path().join(format!("out{n}"));
        let v = ib(&["build"])
            .path_arg(&ctx)
            .cache(&t.path().join(format!("store{n}")))
            .oci_out(&out)
            .json()
            .args(&["-q", "--provenance=mode=max"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .run()
            .ok()
            .json();
        digest = v["images"][0]["digest"].as_str().unwrap().to_string();
        docs.push(provenance_of(&format!("oci:{}:v1", out.display())));
    }
    assert_eq!(docs[0], docs[1], "the same bytes");
    let text = &docs[0];
    assert!(!text.contains("hunter2"), "no credentials: {text}");
    assert!(
        !text.contains(t.path().to_str().unwrap()),
        "no host path: {text}"
    );
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(v["subject"][0]["digest"]["sha256"], hex(&digest));
    let def = &v["predicate"]["buildDefinition"];
    let ctx = t.path().join("ctx0");
    assert_eq!(
        def["externalParameters"]["source"]["digest"]["sha256"],
        sha256_hex(&fs::read(ctx.join("imgbuild.toml")).unwrap())
    );
    let deps = def["resolvedDependencies"].as_array().unwrap();
    let uvlock = sha256_hex(&fs::read(ctx.join("proj/uv.lock")).unwrap());
    assert!(
        deps.iter()
            .any(|d| d["name"] == "proj/uv.lock" && d["digest"]["sha256"] == uvlock.as_str()),
        "{deps:#?}"
    );
    let git = deps
        .iter()
        .find(|d| d["name"] == "context")
        .expect("the commit");
    assert_eq!(git["digest"]["gitCommit"], commit.as_str());
    assert_eq!(git["uri"], "git+https://git.example.invalid/team/app.git");
    let run = &v["predicate"]["runDetails"];
    assert_eq!(run["metadata"]["startedOn"], "2023-11-14T22:13:20Z");
    // The venv, the packages, the source folder.
    assert_eq!(run["byproducts"].as_array().unwrap().len(), 3, "{run:#}");
}

/// A Dockerfile's build args are parameters of the provenance; a secret
/// the build mounts is not in it.
#[test]
fn provenance_keeps_build_args_and_never_secrets() {
    let test = "provenance_keeps_build_args_and_never_secrets";
    let Some(base) = support::pybase::dockerfile_test_base(test) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!(
            "FROM oci:{}:latest\nARG VERSION\nRUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = s3cr3t-value && echo $VERSION > /v\n",
            base.display()
        ),
    );
    let out = t.path().join("out");
    let r = ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&t.path().join("store"))
        .oci_out(&out)
        .args(&[
            "-q",
            "--build-arg",
            "VERSION=1.2.3",
            "--secret",
            "id=tok,env=TOK",
            "--provenance",
        ])
        .env("TOK", "s3cr3t-value")
        .run();
    assert_eq!(r.code, 0, "{r}");
    let shown = provenance_of(&format!("oci:{}", out.display()));
    let v: Value = serde_json::from_str(&shown).unwrap();
    let ext = &v["predicate"]["buildDefinition"]["externalParameters"];
    assert_eq!(ext["buildArgs"]["VERSION"], "1.2.3", "{ext:#}");
    assert_eq!(ext["source"]["kind"], "dockerfile");
    assert!(!shown.contains("s3cr3t-value"));
}

/// A fresh runner pushing from a warm registry cache with `--sbom` needs
/// no layer to list what the image holds: the layers' inventories are in
/// the cache too. It attaches the SBOM runner 1 attached.
#[test]
fn a_fresh_runner_lists_layers_it_never_downloads() {
    let test = "a_fresh_runner_lists_layers_it_never_downloads";
    if !support::pybase::debian_tools_present(test) {
        return;
    }
    let r = Registry::start(RegistryOptions::plain());
    let base = support::pybase::push_python_base(&r, "base/python:1");
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write(&ctx, "src/main.py", "print('hi')\n");
    write(
        &ctx,
        "imgbuild.toml",
        &format!(
            "[images.app]\nbase = \"{base}\"\ntag = \"v1\"\n\n\
             [[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\n"
        ),
    );
    let cache = format!("{}/team/cache", r.host());
    let image = format!("{}/team/app:v1", r.host());
    let run_with = |store: &str, extra: &[&str]| {
        ib(&["build"])
            .path_arg(&ctx)
            .cache(&t.path().join(store))
            .json()
            .args(&["-q", "--push", "--tag", &image, "--sbom"])
            .args(extra)
            .run()
            .ok()
            .json()
    };
    let v1 = run_with("store1", &["--cache-to", &cache]);
    let before = r.access_log().len();
    let v2 = run_with("store2", &["--cache-from", &cache]);
    assert_eq!(v2["layers_built"], 0, "{v2:#}");
    assert_eq!(
        v2["images"][0]["attestations"],
        v1["images"][0]["attestations"]
    );
    let layers: Vec<String> = v2["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let log = r.access_log();
    let gets = support::registry::requests_matching(&log[before..], "GET", "/blobs/sha256:");
    for g in &gets {
        assert!(
            !layers.iter().any(|d| g.path.ends_with(d.as_str())),
            "a layer was downloaded: {g:?}"
        );
    }
}

//! Flyte's SDK building images through the imgbuild plugin: the real
//! `flyte` package from the package index in a venv, the plugin of
//! `python/imgbuild-flyte` installed beside it and selected by Flyte's
//! config.yaml, images built by Flyte's own `flyte.build` onto a base in a
//! real registry, and read back with skopeo and umoci.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::pybase::{debian_tools_present, run};
use support::registry::{Registry, RegistryOptions, skopeo};
use support::*;

const FLYTE_VERSION: &str = "2.12.1";

/// A venv with flyte and the plugin (flyte kept between runs, the plugin
/// installed again by each test process). Made once per process: the tests
/// of this file run in parallel and must not create or reinstall into the
/// venv while another one uses it.
fn flyte_venv() -> PathBuf {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(make_flyte_venv).clone()
}

fn make_flyte_venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join(format!("target/test-tools/flyte-{FLYTE_VERSION}"));
    let python = venv.join("bin/python");
    let pip = |args: &[&str]| {
        let st = Command::new(&python)
            .args(["-m", "pip", "install", "-q"])
            .args(args)
            .status()
            .unwrap();
        if !st.success() {
            // Started again from nothing on the next run.
            let _ = fs::remove_dir_all(&venv);
            panic!("pip install {args:?} failed");
        }
    };
    if !venv.join("flyte-installed").is_file() {
        let _ = fs::remove_dir_all(&venv);
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        pip(&[&format!("flyte=={FLYTE_VERSION}")]);
        fs::write(venv.join("flyte-installed"), "").unwrap();
    }
    // Built from a copy: pip's setuptools build writes build/ and
    // *.egg-info beside the sources.
    let copy = tempfile::tempdir().unwrap();
    let plugin = copy.path().join("imgbuild-flyte");
    run(Command::new("cp")
        .arg("-r")
        .arg(root.join("python/imgbuild-flyte"))
        .arg(&plugin));
    pip(&["--no-deps", "--force-reinstall", plugin.to_str().unwrap()]);
    venv
}

/// The Flyte program under test: builds the deployment patterns with
/// `flyte.build` and prints `name uri` per image.
const DRIVER: &str = r#"
import json, sys
from pathlib import Path
import flyte

work = Path(sys.argv[1])
base = sys.argv[2]
flyte.init_from_config(str(work / "config.yaml"), root_dir=work)

def on_base(name):
    return flyte.Image.from_base(base).clone(name=name, extendable=True, python_version=(3, 11))

images = {
    # A uv project: its locked dependencies and the project itself.
    "pyproject": on_base("pyproject").with_uv_project(
        work / "proj" / "pyproject.toml", project_install_mode="install_project"
    ),
    # A full build: flyte itself, the sources copied without their folder.
    "full-build": on_base("full-build")
    .with_pip_packages("flyte==FLYTE_VERSION")
    .with_workdir("/root")
    .with_source_folder(Path("full-build/src"), copy_contents_only=True)
    .with_env_vars({"PYTHONPATH": "/root"}),
    # A custom Dockerfile, through imgbuild's Dockerfile frontend.
    "custom": flyte.Image.from_dockerfile(
        work / "custom-dockerfile" / "Dockerfile", registry=sys.argv[3], name="custom"
    ),
}
# A poetry project, dependencies only (Flyte's default).
images["poetry"] = on_base("poetry").with_poetry_project(work / "poetry" / "pyproject.toml")
# ... and with the project itself.
images["poetry-app"] = on_base("poetry-app").with_poetry_project(
    work / "poetry" / "pyproject.toml", project_install_mode="install_project"
)
# A build secret, read from the host's environment by the plugin.
images["secret"] = on_base("secret").with_commands(
    ['test "$MY_TOKEN" = s3cr3t && echo seen > /secret-seen'], secret_mounts=["MY_TOKEN"]
)
# Dynamic environments: one image per stage.
for stage in ("dev", "staging"):
    images[f"service-{stage}"] = (
        on_base("service")
        .with_source_folder(Path("dynamic-environments/app"), copy_contents_only=True)
        .with_env_vars({"STAGE": stage})
    )
out = {name: flyte.build(img).uri for name, img in images.items()}
print("RESULT " + json.dumps(out))
"#;

/// A build that fails: Flyte must raise its ImageBuildError with
/// imgbuild's own message.
const FAILING: &str = r#"
import sys
from pathlib import Path
import flyte
from flyte.errors import ImageBuildError

work = Path(sys.argv[1])
flyte.init_from_config(str(work / "config.yaml"), root_dir=work)
img = (
    flyte.Image.from_base(sys.argv[2])
    .clone(name="broken", extendable=True, python_version=(3, 11))
    .with_commands(["echo about to fail && exit 3"])
)
try:
    flyte.build(img)
except ImageBuildError as e:
    print("IMAGEBUILDERROR " + str(e).replace("\n", " "))
"#;

/// Runs the driver with a fresh Flyte home; (uris by image, imgbuild
/// subcommands it ran, Flyte's output).
fn drive(
    script: &str,
    venv: &Path,
    work: &Path,
    base: &str,
    registry: &str,
    home: &Path,
) -> (serde_json::Map<String, Value>, Vec<String>, String) {
    let calls = work.join("calls.log");
    let _ = fs::remove_file(&calls);
    let wrapper = work.join("imgbuild-wrapper");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\nexec {} \"$@\"\n",
            calls.display(),
            env!("CARGO_BIN_EXE_imgbuild")
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&wrapper));
    fs::create_dir_all(home).unwrap();
    let o = Command::new(venv.join("bin/python"))
        .arg(work.join(script))
        .arg(work)
        .arg(base)
        .arg(registry)
        .current_dir(work)
        .env("HOME", home)
        .env("IMGBUILD_BIN", &wrapper)
        .env("IMGBUILD_CACHE_DIR", work.join("store"))
        .env("MY_TOKEN", "s3cr3t")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "flyte build failed:\n{text}");
    let uris: Value = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|line| serde_json::from_str(line).unwrap())
        .unwrap_or_else(|| Value::Object(Default::default()));
    let calls = fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    (uris.as_object().unwrap().clone(), calls, text)
}

/// A poetry 2 lock: six in main, pyflakes in dev (installed by default),
/// colorama only on Windows, packaging in an optional group.
const POETRY_LOCK: &str = r#"[[package]]
name = "six"
version = "1.16.0"
description = ""
optional = false
python-versions = ">=2.7"
groups = ["main"]
files = []

[[package]]
name = "pyflakes"
version = "3.2.0"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = []

[[package]]
name = "colorama"
version = "0.4.6"
description = ""
optional = false
python-versions = ">=3.7"
groups = ["main"]
markers = "sys_platform == \"win32\""
files = []

[[package]]
name = "packaging"
version = "24.2"
description = ""
optional = false
python-versions = ">=3.8"
groups = ["docs"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
content-hash = "0"
"#;

/// A uv project with one dependency, locked now by uv.
fn uv_project(dir: &Path) {
    write(
        dir,
        "pyproject.toml",
        "[project]\nname = \"demo-pkg\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = [\"six==1.16.0\"]\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    );
    write(
        dir,
        "src/demo_pkg/__init__.py",
        "import six\n\nVALUE = 42\n",
    );
    run(Command::new("uv")
        .args(["lock", "--quiet"])
        .current_dir(dir)
        .env("UV_PYTHON_DOWNLOADS", "never"));
}

#[test]
fn flyte_builds_its_images_through_the_imgbuild_plugin() {
    let test = "flyte_builds_its_images_through_the_imgbuild_plugin";
    if !debian_tools_present(test) {
        return;
    }
    assert!(is_root(), "{test}: run the tests as root (chroot)");
    let venv = flyte_venv();
    let reg = Registry::start(RegistryOptions::plain());
    let base = pybase::push_python_base(&reg, "base/python:3.11");
    let push_to = format!("{}/flyte", reg.host());

    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for f in ["full-build", "dynamic-environments", "custom-dockerfile"] {
        run(Command::new("cp")
            .arg("-r")
            .arg(fixtures.join(f))
            .arg(work.join(f)));
    }
    let df = work.join("custom-dockerfile/Dockerfile");
    let text = fs::read_to_string(&df).unwrap();
    fs::write(
        &df,
        text.replace(
            "ARG BASE=python:3.12-slim-bookworm",
            &format!("ARG BASE={base}"),
        ),
    )
    .unwrap();
    uv_project(&work.join("proj"));
    write(
        &work,
        "poetry/pyproject.toml",
        "[project]\nname = \"poetry-demo\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = [\"six==1.16.0\"]\n\n[tool.poetry.group.docs]\noptional = true\n\n[build-system]\nrequires = [\"poetry-core>=2.0\"]\nbuild-backend = \"poetry.core.masonry.api\"\n",
    );
    write(
        &work,
        "poetry/poetry_demo/__init__.py",
        "import six\n\nVALUE = 7\n",
    );
    write(&work, "poetry/poetry.lock", POETRY_LOCK);
    write(
        &work,
        "config.yaml",
        &format!("image:\n  builder: imgbuild\n  registry: {push_to}\n"),
    );
    write(
        &work,
        "driver.py",
        &DRIVER.replace("FLYTE_VERSION", FLYTE_VERSION),
    );
    write(&work, "failing.py", FAILING);

    // First call: every image is missing, checked, built and pushed.
    let (uris, calls, text) = drive(
        "driver.py",
        &venv,
        &work,
        &base,
        &push_to,
        &t.path().join("home1"),
    );
    assert!(text.contains("not found, building"), "{text}");
    assert_eq!(uris.len(), 8, "{text}");
    let builds = calls.iter().filter(|c| *c == "build").count();
    assert_eq!(builds, 8, "one imgbuild build per image: {calls:?}\n{text}");
    let mut tags = std::collections::BTreeSet::new();
    for (name, uri) in &uris {
        let uri = uri.as_str().unwrap();
        let repo_tag = uri
            .strip_prefix(&format!("{}/", reg.host()))
            .unwrap_or_else(|| panic!("{name}: {uri} is not in the test registry"));
        let v = reg
            .skopeo_inspect(repo_tag)
            .unwrap_or_else(|e| panic!("{name}: {uri}: {e}"));
        assert!(v["Layers"].as_array().is_some_and(|l| !l.is_empty()));
        tags.insert(uri.to_string());
    }
    assert_eq!(tags.len(), 8, "each image has its own tag: {uris:?}");

    // Second call, without Flyte's local image cache (kept beside its
    // config): every image is found by the plugin's checker, nothing built.
    fs::remove_dir_all(work.join("local-cache")).unwrap();
    let (again, calls, text) = drive(
        "driver.py",
        &venv,
        &work,
        &base,
        &push_to,
        &t.path().join("home2"),
    );
    assert_eq!(again, uris, "{text}");
    assert!(
        calls.iter().all(|c| c == "exists") && calls.len() == 8,
        "only existence checks: {calls:?}\n{text}"
    );
    assert!(text.contains("already exists, skipping build"), "{text}");

    // The images do what their layers say.
    let unpack = |name: &str| -> PathBuf {
        let uri = uris[name].as_str().unwrap();
        let layout = t.path().join(format!("layout-{name}"));
        let mut a = vec!["copy".to_string()];
        a.extend(reg.skopeo_src_args());
        a.push(format!("docker://{uri}"));
        a.push(format!("oci:{}:x", layout.display()));
        skopeo(&a).unwrap();
        umoci_unpack(&layout, "x", &t.path().join(format!("bundle-{name}")))
    };
    let chroot = |root: &Path, cmd: &str| -> String {
        let o = Command::new("chroot")
            .arg(root)
            .args(["/bin/sh", "-c", cmd])
            .env_clear()
            .env("PATH", "/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{cmd}: {text}");
        text
    };
    let root = unpack("pyproject");
    let out = chroot(
        &root,
        "/opt/venv/bin/python -c 'import demo_pkg, six; print(demo_pkg.VALUE, six.__version__)'",
    );
    assert_eq!(out.trim(), "42 1.16.0");

    let root = unpack("full-build");
    assert!(
        root.join("root/main.py").is_file(),
        "contents only, in /root"
    );
    assert!(!root.join("root/src").exists());
    // The runtime contract: flyte in the venv, `a0` on PATH.
    let out = chroot(
        &root,
        "command -v a0 && python -c 'import flyte; print(flyte.__version__)'",
    );
    assert!(out.contains("/opt/venv/bin/a0"), "{out}");
    assert!(out.contains(FLYTE_VERSION), "{out}");

    // `poetry install --no-root`: main and dev, not the optional group,
    // not what the markers exclude here.
    let root = unpack("poetry");
    let out = chroot(
        &root,
        "python -c 'import six, pyflakes; print(six.__version__, pyflakes.__version__)'",
    );
    assert_eq!(out.trim(), "1.16.0 3.2.0");
    let site = root.join("opt/venv/lib/python3.11/site-packages");
    assert!(!site.join("colorama").exists(), "Windows only");
    assert!(!site.join("packaging").exists(), "optional group");

    let root = unpack("poetry-app");
    let out = chroot(
        &root,
        "python -c 'import poetry_demo, pyflakes; print(poetry_demo.VALUE)'",
    );
    assert_eq!(
        out.trim(),
        "7",
        "the project installed after its dependencies"
    );

    let root = unpack("secret");
    assert_eq!(
        fs::read_to_string(root.join("secret-seen")).unwrap(),
        "seen\n"
    );
    let leaked = Command::new("grep")
        .args(["-rqs", "s3cr3t"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(!leaked.success(), "the secret's value is in no layer");

    let root = unpack("custom");
    assert!(
        root.join("root/app/__main__.py").is_file(),
        "the Dockerfile's COPY"
    );

    // A failing build surfaces as Flyte's ImageBuildError with imgbuild's
    // message (the step, its exit status, its output).
    let (_, calls, text) = drive(
        "failing.py",
        &venv,
        &work,
        &base,
        &push_to,
        &t.path().join("home3"),
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("IMAGEBUILDERROR "))
        .unwrap_or_else(|| panic!("no ImageBuildError:\n{text}"));
    assert!(
        line.contains("exit status 3") || line.contains("exited with 3"),
        "{line}"
    );
    assert!(line.contains("about to fail"), "{line}");
    assert!(calls.contains(&"build".to_string()), "{calls:?}");

    let dev = unpack("service-dev");
    assert!(dev.join("main.py").is_file() || dev.join("root/main.py").is_file());
}

/// Every file under `dir` (relative path → (mode, bytes or link target)),
/// leaving out byte-compiled files.
fn venv_tree(dir: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.ends_with("__pycache__") {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, (0, target.to_string_lossy().as_bytes().to_vec()));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                let mut bytes = fs::read(&path).unwrap();
                if rel.ends_with(".dist-info/RECORD") {
                    // uv records the .pyc files it compiled (Flyte sets
                    // UV_COMPILE_BYTECODE); those lines are left out.
                    let text = String::from_utf8(bytes).unwrap();
                    bytes = text
                        .lines()
                        .filter(|l| !l.contains("__pycache__/"))
                        .map(|l| format!("{l}\n"))
                        .collect::<String>()
                        .into_bytes();
                }
                out.insert(rel, (mode, bytes));
            }
        }
    }
    out
}

/// What uv's venv has that imgbuild's does not, and why.
const UV_ONLY: &[(&str, &str)] = &[
    (
        "bin/activate",
        "activation scripts: the image enters the venv through PATH and VIRTUAL_ENV",
    ),
    ("bin/deactivate.bat", "activation scripts (Windows)"),
    ("bin/pydoc.bat", "activation scripts (Windows)"),
    (".lock", "uv's lock for concurrent use of the venv"),
    (
        "demo_pkg-0.1.0.dist-info/direct_url.json",
        "uv records the build folder the project came from (/root/.flyte/proj)",
    ),
    (
        "demo_pkg-0.1.0.dist-info/uv_",
        "uv's own build and cache records",
    ),
    (
        "demo_pkg-0.1.0.dist-info/RECORD",
        "lists the three files above",
    ),
];

/// The venv imgbuild installs for a uv project in Flyte's image spec, and
/// the one Flyte's own command makes: `uv venv` then `uv sync --active
/// --inexact --no-editable` with Flyte's environment, run with uv mounted
/// in imgbuild's sandbox on the same base and lock. Same distributions,
/// versions and files (byte for byte, modes too; .pyc left out: Flyte
/// compiles them, imgbuild does not). The source folder lands where
/// Flyte's Dockerfile (`WORKDIR /root`, `COPY src .`) puts it.
#[test]
fn the_venv_matches_what_flytes_uv_sync_makes() {
    let test = "the_venv_matches_what_flytes_uv_sync_makes";
    if !debian_tools_present(test) {
        return;
    }
    assert!(is_root(), "{test}: run the tests as root (sandbox, umoci)");
    let uv = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v uv"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let uv = PathBuf::from(uv.trim());
    assert!(
        uv.is_file(),
        "{test}: uv on PATH (scripts/test.sh puts it there)"
    );
    let base = pybase::debian_python_base();
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    // A project with a console script and a few dependencies.
    write(
        &ctx,
        "proj/pyproject.toml",
        "[project]\nname = \"demo-pkg\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = [\"six==1.16.0\", \"pyflakes==3.2.0\", \"packaging==24.2\"]\n\n[project.scripts]\ndemo = \"demo_pkg:main\"\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    );
    write(
        &ctx,
        "proj/src/demo_pkg/__init__.py",
        "def main():\n    print('demo')\n",
    );
    run(Command::new(&uv)
        .args(["lock", "--quiet"])
        .current_dir(ctx.join("proj"))
        .env("UV_PYTHON_DOWNLOADS", "never"));
    write(&ctx, "src/app/main.py", "print('app')\n");
    write(&ctx, "src/app/util/helpers.py", "X = 1\n");
    write(&ctx, "src/top.py", "import app\n");
    fs::create_dir_all(ctx.join("uvbin")).unwrap();
    fs::copy(&uv, ctx.join("uvbin/uv")).unwrap();
    // The host's trust store, for uv's downloads inside the sandbox (where
    // HTTPS may go through a proxy only the host's store knows).
    let host_ca = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    fs::copy(&host_ca, ctx.join("uvbin/ca.pem")).unwrap();

    for (mode, extra) in [
        ("install_project", ""),
        ("dependencies_only", "--no-install-project"),
    ] {
        // imgbuild's route: the spec Flyte's SDK sends for this Image.
        let spec = serde_json::json!({
            "baseImage": format!("oci:{}:latest", base.display()),
            "pythonVersion": "3.11",
            "layers": [
                {"uvProject": {"pyproject": "proj", "uvlock": "proj/uv.lock",
                               "options": {"extraArgs": extra}}},
                {"workdir": {"workdir": "/root"}},
                {"copyConfig": {"src": "src", "dst": "."}},
            ],
            "platform": ["linux/amd64"],
        });
        fs::write(t.path().join("spec.json"), spec.to_string()).unwrap();
        let ours = t.path().join(format!("ours-{mode}"));
        let r = ib(&["build"])
            .args(&[
                "--flyte-spec",
                &t.path().join("spec.json").to_string_lossy(),
            ])
            .args(&["--context", &ctx.to_string_lossy()])
            .cache(&t.path().join("store"))
            .oci_out(&ours)
            .run();
        assert_eq!(r.code, 0, "{r}");
        let ours = umoci_unpack(&ours, "latest", &t.path().join(format!("b-ours-{mode}")));

        // Flyte's route, as its Dockerfile runs it.
        let sync_args = if mode == "install_project" {
            "--no-editable --project /root/.flyte/proj".to_string()
        } else {
            format!("{extra} --project /root/.flyte/proj")
        };
        let def = format!(
            "context = \"{ctx}\"\n[images.ref]\nbase = \"oci:{base}:latest\"\ntag = \"ref\"\n\n\
             [[images.ref.layers]]\nenv = {{ UV_COMPILE_BYTECODE = \"1\", UV_LINK_MODE = \"copy\", VIRTUALENV = \"/opt/venv\", UV_PYTHON = \"/opt/venv/bin/python\" }}\n\n\
             [[images.ref.layers]]\ncommands = [\"/uvbin/uv venv /opt/venv --python=3.11 && cp -r /src-proj /root/.flyte-proj && mkdir -p /root/.flyte && mv /root/.flyte-proj /root/.flyte/proj && SSL_CERT_FILE=/uvbin/ca.pem VIRTUAL_ENV=/opt/venv /uvbin/uv sync --active --inexact {sync_args} && rm -rf /root/.flyte /root/.cache\"]\n\
             bind_mounts = [\"uvbin:/uvbin\", \"proj:/src-proj\"]\n",
            ctx = ctx.display(),
            base = base.display(),
        );
        let def_dir = t.path().join(format!("ref-{mode}"));
        write(&def_dir, "imgbuild.toml", &def);
        let refout = t.path().join(format!("refout-{mode}"));
        let r = ib(&["build"])
            .path_arg(&def_dir)
            .cache(&t.path().join("store"))
            .oci_out(&refout)
            .run();
        assert_eq!(r.code, 0, "{r}");
        let reference = umoci_unpack(&refout, "ref", &t.path().join(format!("b-ref-{mode}")));

        let (a, b) = (
            venv_tree(&ours.join("opt/venv")),
            venv_tree(&reference.join("opt/venv")),
        );
        let dists = |m: &std::collections::BTreeMap<String, (u32, Vec<u8>)>| -> Vec<String> {
            m.keys()
                .filter(|k| k.ends_with(".dist-info/METADATA"))
                .cloned()
                .collect()
        };
        assert_eq!(dists(&a), dists(&b), "{mode}: distributions and versions");
        assert_eq!(
            dists(&a).iter().any(|d| d.contains("demo_pkg-0.1.0")),
            mode == "install_project"
        );
        let only = |x: &std::collections::BTreeMap<String, (u32, Vec<u8>)>,
                    y: &std::collections::BTreeMap<String, (u32, Vec<u8>)>| {
            x.keys()
                .filter(|k| !y.contains_key(*k))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(
            only(&a, &b).is_empty(),
            "{mode}: only imgbuild's: {:?}",
            only(&a, &b)
        );
        let explained = |k: &String| UV_ONLY.iter().any(|(p, _)| k.contains(p));
        let unexplained: Vec<String> = only(&b, &a).into_iter().filter(|k| !explained(k)).collect();
        assert!(unexplained.is_empty(), "{mode}: only uv's: {unexplained:?}");
        let differ: Vec<&String> = a
            .keys()
            .filter(|k| a[*k] != b[*k] && !explained(k))
            .collect();
        assert!(differ.is_empty(), "{mode}: files that differ: {differ:?}");
        assert!(a.len() > 50, "{mode}: {} files compared", a.len());

        // The source folder's contents in the workdir, as `COPY src .` puts them.
        for f in [
            "root/app/main.py",
            "root/app/util/helpers.py",
            "root/top.py",
        ] {
            assert!(ours.join(f).is_file(), "{f}");
        }
        assert!(!ours.join("root/src").exists());
    }
}

/// The plugin's tasks run through Flyte's SDK in its local run mode: one
/// builds an imgbuild definition, one a Flyte image spec with its build
/// folder, both pushing with the registry cache.
const TASKS: &str = r#"
import json, sys
from pathlib import Path
import flyte
from flyte.io import Dir, File
from imgbuild_flyte.tasks import build_definition, build_flyte_spec

work, registry = Path(sys.argv[1]), sys.argv[3]
flyte.init()
local = flyte.with_runcontext(mode="local")
out = {}
r = local.run(
    build_definition,
    context=Dir.from_local_sync(str(work / "project")),
    target=f"{registry}/team/app:v1",
    cache=f"{registry}/team/cache",
)
out["definition"] = r.outputs()[0]
r = local.run(
    build_flyte_spec,
    spec=File.from_local_sync(str(work / "spec.json")),
    target_image=f"{registry}/team/spec:v1",
    context=Dir.from_local_sync(str(work / "spec-context")),
    cache=f"{registry}/team/cache",
)
out["spec"] = r.outputs()[0]
try:
    local.run(build_definition, context=Dir.from_local_sync(str(work / "broken")), target=f"{registry}/team/broken:v1")
except Exception as e:
    out["error"] = str(e)
print("RESULT " + json.dumps(out))
"#;

#[test]
fn the_plugins_tasks_build_in_flytes_local_run_mode() {
    let test = "the_plugins_tasks_build_in_flytes_local_run_mode";
    if !debian_tools_present(test) {
        return;
    }
    let venv = flyte_venv();
    let reg = Registry::start(RegistryOptions::plain());
    let base = pybase::push_python_base(&reg, "base/python:3.11");
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    write(&work, "project/app/main.py", "print('hi')\n");
    write(
        &work,
        "project/imgbuild.toml",
        &format!(
            "[images.app]\nbase = \"{base}\"\ntag = \"v1\"\n\n\
             [[images.app.layers]]\nsource_folder = \"app\"\ndst = \"/app\"\ncopy_contents_only = true\n"
        ),
    );
    write(&work, "spec-context/src/job.py", "print('job')\n");
    let spec = serde_json::json!({
        "baseImage": base,
        "pythonVersion": "3.11",
        "layers": [
            {"env": {"envVariables": {"STAGE": "prod"}}},
            {"copyConfig": {"src": "src", "dst": "/root"}},
        ],
        "platform": ["linux/amd64"],
    });
    fs::write(work.join("spec.json"), spec.to_string()).unwrap();
    write(
        &work,
        "broken/imgbuild.toml",
        "[images.app]\nbase = \"scratch\"\n[[images.app.layers]]\nsource_folder = \"missing\"\n",
    );
    write(&work, "tasks.py", TASKS);

    let before = reg.access_log().len();
    let (first, calls, text) = drive(
        "tasks.py",
        &venv,
        &work,
        &base,
        &reg.host(),
        &t.path().join("h1"),
    );
    assert_eq!(calls, ["build", "build", "build"], "{text}");
    let uploads_first = support::registry::blob_uploads_completed(&reg.access_log()[before..]);
    assert!(uploads_first >= 2, "{text}");
    for (key, repo) in [("definition", "team/app"), ("spec", "team/spec")] {
        let got = first[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {text}"));
        let (name, digest) = got.split_once('@').unwrap();
        assert_eq!(name, format!("{}/{repo}", reg.host()));
        let v = reg.skopeo_inspect(&format!("{repo}:v1")).unwrap();
        assert_eq!(v["Digest"], digest, "{v:#}");
        if key == "spec" {
            let env = v["Env"].as_array().unwrap();
            assert!(env.iter().any(|e| e == "STAGE=prod"), "{v:#}");
        }
    }
    let err = first["error"].as_str().unwrap();
    assert!(
        err.contains("imgbuild failed") && err.contains("missing"),
        "{err}"
    );

    // A fresh pod (an empty store) builds the same images from the cache:
    // no blob goes up.
    let _ = fs::remove_dir_all(work.join("store"));
    let before = reg.access_log().len();
    let (second, _, text) = drive(
        "tasks.py",
        &venv,
        &work,
        &base,
        &reg.host(),
        &t.path().join("h2"),
    );
    assert_eq!(second["definition"], first["definition"], "{text}");
    assert_eq!(second["spec"], first["spec"], "{text}");
    assert_eq!(
        support::registry::blob_uploads_completed(&reg.access_log()[before..]),
        0,
        "{text}"
    );
}

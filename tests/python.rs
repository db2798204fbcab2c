//! Python layers (`uv_project`) end to end and offline: the tests make their
//! own wheels and `uv.lock` files (tests/support/pyfix.rs), serve the wheels
//! from a local HTTP server, build on a Debian-like Python base written with
//! imgbuild itself, and read the installed venv back out of the layers.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use support::pyfix::*;
use support::*;
use tempfile::TempDir;

const AMD64: &str = "linux/amd64";
const ARM64: &str = "linux/arm64";
const SP311: &str = "opt/venv/lib/python3.11/site-packages";
const MANYLINUX_X86: &str = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64";
const MANYLINUX_ARM: &str = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64";
const MUSL_X86: &str = "cp311-cp311-musllinux_1_2_x86_64";
const MIB: usize = 1024 * 1024;

/// One test's world: a temp folder, a wheel server, a store and a base.
struct World {
    tmp: TempDir,
    server: FileServer,
    cache: PathBuf,
    /// `oci:/…:latest` of the Python base.
    base: String,
}

impl World {
    /// A world on the Python 3.11.2 / glibc 2.36 base with `platforms`.
    fn new(platforms: &[&str]) -> World {
        World::on(python_base, platforms)
    }

    /// A world on the `PYTHON_VERSION=3.12.4` base.
    fn new_312(platforms: &[&str]) -> World {
        World::on(python312_base, platforms)
    }

    fn on(make_base: fn(&Path, &Path, &[&str]) -> String, platforms: &[&str]) -> World {
        let tmp = TempDir::new().expect("temp dir");
        let cache = tmp.path().join("cache");
        let server = FileServer::start(&tmp.path().join("www"));
        let base = make_base(tmp.path(), &cache, platforms);
        World {
            tmp,
            server,
            cache,
            base,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The index URL the locks name.
    fn index(&self) -> String {
        self.server.url("simple/")
    }

    /// Where served wheels live, as a URL prefix.
    fn files_url(&self) -> String {
        self.server.url("files/")
    }

    /// Writes the wheel into the served folder; returns its lock entry.
    fn publish(&self, spec: &WheelSpec) -> LockedWheel {
        let w = write_wheel(&self.server.root().join("files"), spec);
        LockedWheel::at(&self.files_url(), &w)
    }

    /// A locked package with one pure wheel (published).
    fn pure(&self, name: &str, version: &str) -> LockedPackage {
        let w = self.publish(&WheelSpec::pure(name, version));
        LockedPackage::new(name, version, &self.index()).wheel(w)
    }

    /// Writes `app/imgbuild.toml` for image `app` with one `uv_project =
    /// "proj"` layer (plus `layer_extra` lines in that layer table) and the
    /// project itself; returns the definition path.
    fn app(
        &self,
        platforms: &[&str],
        layer_extra: &str,
        root: &RootProject,
        packages: &[LockedPackage],
    ) -> PathBuf {
        let dir = self.path("app");
        write_project(&dir.join("proj"), root, packages);
        let plats: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
        write(
            &dir,
            DEF,
            &format!(
                "[images.app]\nbase = \"{}\"\nplatforms = [{}]\n\n\
                 [[images.app.layers]]\nuv_project = \"proj\"\n{layer_extra}\n",
                self.base,
                plats.join(", ")
            ),
        )
    }

    /// Builds the definition into a fresh output folder `out`; returns the
    /// JSON result and the layout folder.
    #[track_caller]
    fn build(&self, def: &Path, out: &str) -> (Value, PathBuf) {
        let out = self.path(out);
        let v = build_json(def, &self.cache, &out, &[]);
        (v, out)
    }

    /// Runs a build that must fail.
    fn build_fails(&self, def: &Path, out: &str) -> Run {
        let r = ib(&["build"])
            .path_arg(def)
            .cache(&self.cache)
            .oci_out(&self.path(out))
            .arg("-q")
            .run();
        assert_ne!(r.code, 0, "the build should have failed:\n{r}");
        r
    }
}

/// The dist-info folder of `name` `version` in the 3.11 venv.
fn dist_info(name: &str, version: &str) -> String {
    format!("{SP311}/{}-{version}.dist-info", escape_name(name))
}

/// The normalized names of every distribution installed in `tree`'s 3.11 venv.
fn installed(tree: &BTreeMap<String, TarEntry>) -> BTreeSet<String> {
    tree.keys()
        .filter_map(|p| p.strip_prefix(&format!("{SP311}/")))
        .filter(|p| !p.contains('/'))
        .filter_map(|p| p.strip_suffix(".dist-info"))
        .map(|d| normalize(d.rsplit_once('-').expect("name-version").0))
        .collect()
}

fn text(tree: &BTreeMap<String, TarEntry>, path: &str) -> String {
    let e = tree
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in the image; it has {:#?}", tree.keys()));
    String::from_utf8(e.data.clone()).expect("utf-8")
}

/// A layer's step name from the JSON output, without the ` [os/arch]`
/// suffix multi-platform builds add.
fn step(layer: &Value) -> String {
    let s = layer["step"].as_str().unwrap_or_default();
    match s.rsplit_once(" [") {
        Some((head, tail)) if tail.starts_with("linux/") && tail.ends_with(']') => head.to_string(),
        _ => s.to_string(),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Wheel tags
// ---------------------------------------------------------------------------

/// Each platform gets the wheel uv would pick for CPython 3.11 on glibc 2.36:
/// manylinux for its own architecture before the pure fallback, never
/// musllinux, never a manylinux newer than the base's glibc, abi3 before
/// the pure fallback.
#[test]
fn wheel_tags_follow_platform_glibc_and_python() {
    let w = World::new(&[AMD64, ARM64]);
    let variant = |name: &str, tag: &str, label: &str| {
        w.publish(
            &WheelSpec::new(name, "1.0", tag)
                .file(&format!("{name}/__init__.py"), b"")
                .file(&format!("{name}/VARIANT"), label.as_bytes()),
        )
    };
    let idx = w.index();
    let pkgs = vec![
        LockedPackage::new("tagpick", "1.0", &idx)
            .wheel(variant("tagpick", MANYLINUX_ARM, "manylinux-aarch64"))
            .wheel(variant("tagpick", MUSL_X86, "musllinux-x86_64"))
            .wheel(variant("tagpick", MANYLINUX_X86, "manylinux-x86_64"))
            .wheel(variant("tagpick", "py3-none-any", "any")),
        LockedPackage::new("newglibc", "1.0", &idx)
            .wheel(variant(
                "newglibc",
                "cp311-cp311-manylinux_2_38_x86_64",
                "manylinux_2_38-x86_64",
            ))
            .wheel(variant(
                "newglibc",
                "cp311-cp311-manylinux_2_38_aarch64",
                "manylinux_2_38-aarch64",
            ))
            .wheel(variant("newglibc", "py3-none-any", "any")),
        LockedPackage::new("abithree", "1.0", &idx)
            .wheel(variant("abithree", "py3-none-any", "any"))
            .wheel(variant(
                "abithree",
                "cp39-abi3-manylinux_2_28_x86_64",
                "abi3-x86_64",
            )),
        LockedPackage::new("muslonly", "1.0", &idx)
            .wheel(variant("muslonly", MUSL_X86, "musllinux-x86_64"))
            .wheel(variant(
                "muslonly",
                "cp311-cp311-musllinux_1_2_aarch64",
                "musllinux-aarch64",
            ))
            .wheel(variant("muslonly", "py3-none-any", "any")),
    ];
    let mut root = RootProject::new("proj");
    for p in &pkgs {
        root = root.dep(Req::new(&p.name));
    }
    let def = w.app(&[AMD64, ARM64], "", &root, &pkgs);
    let (_, out) = w.build(&def, "out");
    Layout::new(&out).verify(0);
    let trees = trees_by_platform(&out, "latest");
    assert_eq!(
        trees.keys().cloned().collect::<Vec<_>>(),
        vec![AMD64.to_string(), ARM64.to_string()]
    );
    let expected: [(&str, &str, &str); 8] = [
        (AMD64, "tagpick", "manylinux-x86_64"),
        (ARM64, "tagpick", "manylinux-aarch64"),
        (AMD64, "newglibc", "any"),
        (ARM64, "newglibc", "any"),
        (AMD64, "abithree", "abi3-x86_64"),
        (ARM64, "abithree", "any"),
        (AMD64, "muslonly", "any"),
        (ARM64, "muslonly", "any"),
    ];
    for (platform, pkg, label) in expected {
        let tree = &trees[platform];
        assert_eq!(
            text(tree, &format!("{SP311}/{pkg}/VARIANT")),
            label,
            "{pkg} on {platform}"
        );
        // The WHEEL file installed is the chosen wheel's.
        let wheel = text(tree, &format!("{}/WHEEL", dist_info(pkg, "1.0")));
        assert_eq!(
            wheel.contains("Root-Is-Purelib: true"),
            label == "any",
            "{pkg} on {platform}: {wheel}"
        );
    }
}

/// A package whose only wheels are for CPython 3.12 cannot go onto a 3.11
/// base: the build fails naming the package and the target's tags, and
/// writes no image.
#[test]
fn no_compatible_wheel_is_an_error_naming_the_package() {
    let w = World::new(&[AMD64]);
    let idx = w.index();
    let only312 = LockedPackage::new("only312", "2.0", &idx)
        .wheel(
            w.publish(
                &WheelSpec::new(
                    "only312",
                    "2.0",
                    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
                )
                .file("only312/__init__.py", b""),
            ),
        )
        .wheel(
            w.publish(
                &WheelSpec::new(
                    "only312",
                    "2.0",
                    "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
                )
                .file("only312/__init__.py", b""),
            ),
        );
    let fine = w.pure("fine", "1.0");
    let root = RootProject::new("proj")
        .dep(Req::new("fine"))
        .dep(Req::new("only312"));
    let def = w.app(&[AMD64], "", &root, &[fine, only312]);
    let r = w.build_fails(&def, "out");
    assert!(r.stderr.contains("only312"), "names the package:\n{r}");
    assert!(
        !r.stderr.contains("fine 1.0") && !r.stderr.contains("`fine`"),
        "names only the packages without a wheel:\n{r}"
    );
    assert!(r.stderr.contains("cp311"), "names the target's tags:\n{r}");
    assert!(
        !w.path("out/index.json").exists(),
        "no image is written:\n{r}"
    );
}

// ---------------------------------------------------------------------------
// Markers, extras and groups
// ---------------------------------------------------------------------------

/// Edge markers are evaluated per platform against the base's exact Python
/// (3.11.2); extras and groups are installed only when asked for, and the
/// `dev` group is not installed by default.
#[test]
fn markers_extras_and_groups_per_platform() {
    let w = World::new(&[AMD64, ARM64]);
    let names = [
        "always",
        "armonly",
        "x86only",
        "winonly",
        "oldpy",
        "patchlevel",
        "newpatch",
        "clidep",
        "otherdep",
        "devdep",
        "docsdep",
        "transarm",
        "fastdep",
    ];
    let mut pkgs: BTreeMap<&str, LockedPackage> =
        names.iter().map(|n| (*n, w.pure(n, "1.0"))).collect();
    // Transitive edges: always → transarm (aarch64 only); always[fast] → fastdep.
    let always = pkgs.remove("always").expect("always");
    pkgs.insert(
        "always",
        always
            .dep(Req::new("transarm").marker("platform_machine == 'aarch64'"))
            .extra("fast", vec![Req::new("fastdep")]),
    );
    let root = RootProject::new("proj")
        .dep(Req::new("always").extra("fast"))
        .dep(Req::new("armonly").marker("platform_machine == 'aarch64'"))
        .dep(Req::new("x86only").marker("platform_machine == 'x86_64'"))
        .dep(Req::new("winonly").marker("sys_platform == 'win32'"))
        .dep(Req::new("oldpy").marker("python_version < '3.10'"))
        .dep(Req::new("patchlevel").marker("python_full_version < '3.11.3'"))
        .dep(Req::new("newpatch").marker("python_full_version >= '3.11.3'"))
        .extra("cli", vec![Req::new("clidep")])
        .extra("other", vec![Req::new("otherdep")])
        .group("dev", vec![Req::new("devdep")])
        .group("docs", vec![Req::new("docsdep")]);
    let pkgs: Vec<LockedPackage> = pkgs.into_values().collect();
    let def = w.app(
        &[AMD64, ARM64],
        "extras = [\"cli\"]\ngroups = [\"docs\"]",
        &root,
        &pkgs,
    );
    let (_, out) = w.build(&def, "out");
    let trees = trees_by_platform(&out, "latest");
    let common = ["always", "patchlevel", "clidep", "docsdep", "fastdep"];
    let mut amd = set(&common);
    amd.insert("x86only".into());
    let mut arm = set(&common);
    arm.extend(set(&["armonly", "transarm"]));
    assert_eq!(installed(&trees[AMD64]), amd, "linux/amd64");
    assert_eq!(installed(&trees[ARM64]), arm, "linux/arm64");
}

// ---------------------------------------------------------------------------
// What one wheel installs
// ---------------------------------------------------------------------------

const CONSOLE_LAUNCHER: &str = "#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from tooly.cli import main
if __name__ == \"__main__\":
    if sys.argv[0].endswith(\"-script.pyw\"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(\".exe\"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit(main.run())
";

const GUI_LAUNCHER: &str = "#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from tooly.gui import start
if __name__ == \"__main__\":
    if sys.argv[0].endswith(\"-script.pyw\"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(\".exe\"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit(start())
";

/// Entry points become launchers, `.data` goes where uv and pip put it,
/// `#!python` scripts get the venv's shebang, and the dist-info gains
/// INSTALLER, REQUESTED and a RECORD that lists every installed file with
/// its true hash and size.
#[test]
fn entry_points_data_and_record() {
    let w = World::new(&[AMD64]);
    let elf: Vec<u8> = b"\x7fELF\x02\x01\x01\0binary tool bytes\0\x01\x02".to_vec();
    let spec = WheelSpec::pure("tooly", "2.0")
        .file("tooly/cli.py", b"def main(): pass\n")
        .file("tooly/gui.py", b"def start(): pass\n")
        .entry_points(
            "[console_scripts]\ntooly = tooly.cli:main.run\n\n[gui_scripts]\ntooly-gui = tooly.gui:start\n",
        )
        .data("scripts/tooly-helper", b"#!python\nprint('helper')\n", false)
        .data("scripts/binary-tool", &elf, false)
        // Same name as the console script: the launcher wins.
        .data("scripts/tooly", b"#!/bin/sh\necho shadowed\n", true)
        .data("headers/tooly.h", b"#define TOOLY 1\n", false)
        .data("data/share/tooly/readme.txt", b"shared data\n", false)
        .data("purelib/tooly_extra.py", b"X = 1\n", false);
    let pkg = LockedPackage::new("tooly", "2.0", &w.index()).wheel(w.publish(&spec));
    let root = RootProject::new("proj").dep(Req::new("tooly"));
    let def = w.app(&[AMD64], "", &root, &[pkg]);
    let (_, out) = w.build(&def, "out");
    Layout::new(&out).verify(0);
    let tree = &trees_by_platform(&out, "latest")[AMD64];

    let file = |p: &str| -> &TarEntry {
        tree.get(p)
            .unwrap_or_else(|| panic!("{p} missing; have {:#?}", tree.keys()))
    };
    let check = |p: &str, content: &[u8], mode: u32| {
        let e = file(p);
        assert_eq!(e.kind, tar::EntryType::Regular, "{p} is a file");
        assert_eq!(
            String::from_utf8_lossy(&e.data),
            String::from_utf8_lossy(content),
            "content of {p}"
        );
        assert_eq!(e.mode & 0o7777, mode, "mode of {p}: {:o}", e.mode);
    };
    check("opt/venv/bin/tooly", CONSOLE_LAUNCHER.as_bytes(), 0o755);
    check("opt/venv/bin/tooly-gui", GUI_LAUNCHER.as_bytes(), 0o755);
    check(
        "opt/venv/bin/tooly-helper",
        b"#!/opt/venv/bin/python\nprint('helper')\n",
        0o755,
    );
    check("opt/venv/bin/binary-tool", &elf, 0o755);
    check(
        "opt/venv/include/site/python3.11/tooly/tooly.h",
        b"#define TOOLY 1\n",
        0o644,
    );
    check("opt/venv/share/tooly/readme.txt", b"shared data\n", 0o644);
    check(&format!("{SP311}/tooly_extra.py"), b"X = 1\n", 0o644);
    check(
        &format!("{SP311}/tooly/cli.py"),
        b"def main(): pass\n",
        0o644,
    );
    assert!(
        !tree.keys().any(|p| p.contains(".data")),
        "no .data folder is installed"
    );
    let di = dist_info("tooly", "2.0");
    check(&format!("{di}/INSTALLER"), b"uv", 0o644);
    check(&format!("{di}/REQUESTED"), b"", 0o644);

    // RECORD: every installed file of the package, each with its sha256 and size.
    let record = text(tree, &format!("{di}/RECORD"));
    let rows = parse_record(&record);
    let mut listed = BTreeSet::new();
    for (path, hash, size) in &rows {
        let full = clean_path(&resolve(SP311, path));
        assert!(listed.insert(full.clone()), "{path} listed twice");
        if path == "tooly-2.0.data/scripts/tooly" {
            // uv skips a `.data/scripts` file shadowed by an entry point and
            // keeps its wheel RECORD row as it was.
            assert_eq!(
                hash,
                &record_hash(b"#!/bin/sh\necho shadowed\n"),
                "{record}"
            );
            continue;
        }
        if full == format!("{di}/RECORD") {
            assert_eq!((hash.as_str(), size.as_str()), ("", ""), "RECORD's own row");
            continue;
        }
        let e = file(&full);
        assert_eq!(hash, &record_hash(&e.data), "hash of {path} in RECORD");
        assert_eq!(size, &e.data.len().to_string(), "size of {path} in RECORD");
    }
    let expected: BTreeSet<String> = [
        "opt/venv/bin/binary-tool",
        "opt/venv/bin/tooly",
        "opt/venv/bin/tooly-gui",
        "opt/venv/bin/tooly-helper",
        "opt/venv/include/site/python3.11/tooly/tooly.h",
        "opt/venv/share/tooly/readme.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        [
            "tooly/__init__.py",
            "tooly/cli.py",
            "tooly/gui.py",
            "tooly_extra.py",
            "tooly-2.0.dist-info/INSTALLER",
            "tooly-2.0.dist-info/METADATA",
            "tooly-2.0.dist-info/RECORD",
            "tooly-2.0.dist-info/REQUESTED",
            "tooly-2.0.dist-info/WHEEL",
            "tooly-2.0.dist-info/entry_points.txt",
            "tooly-2.0.data/scripts/tooly",
        ]
        .iter()
        .map(|p| format!("{SP311}/{p}")),
    )
    .collect();
    assert_eq!(listed, expected, "RECORD lists exactly the installed files");
    // uv sorts RECORD rows by path.
    let paths: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "RECORD rows are sorted:\n{record}");
}

/// `base/rel` with `..` components resolved (RECORD paths are relative to
/// site-packages).
fn resolve(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    for c in rel.split('/') {
        match c {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            c => parts.push(c),
        }
    }
    parts.join("/")
}

// ---------------------------------------------------------------------------
// The venv
// ---------------------------------------------------------------------------

/// The venv points at the base's interpreter and version; the image config
/// activates it. Checked on the unpacked root file system (umoci).
#[test]
fn venv_skeleton_and_config() {
    let w = World::new(&[AMD64]);
    let pkg = w.pure("tiny", "1.0");
    let root = RootProject::new("proj").dep(Req::new("tiny"));
    let def = w.app(&[AMD64], "", &root, &[pkg]);
    let (v, out) = w.build(&def, "out");
    Layout::new(&out).verify(0);

    let layers = json_layers(&v, AMD64);
    // The base's layer comes first, then the venv skeleton, then the package.
    let steps: Vec<String> = layers.iter().map(step).collect();
    let cache: Vec<&str> = layers
        .iter()
        .map(|l| l["cache"].as_str().expect("cache"))
        .collect();
    assert_eq!(cache, ["base", "miss", "miss"], "{v:#}");
    assert_eq!(steps[1], "uv_project proj: venv /opt/venv", "{v:#}");
    assert_eq!(steps[2], "uv_project proj: packages 1/1 (1)", "{v:#}");

    let img = platform_images(&out, "latest").remove(0);
    let env = config_env(&img.config);
    assert_eq!(
        env.get("VIRTUAL_ENV").map(String::as_str),
        Some("/opt/venv")
    );
    assert_eq!(
        env.get("PATH").cloned(),
        Some(format!("/opt/venv/bin:{}", base_path_env())),
        "PATH: {env:?}"
    );
    assert_eq!(env.get("LANG").map(String::as_str), Some("C.UTF-8"), "kept");

    let rootfs = umoci_unpack(&out, "latest", &w.path("bundle"));
    let venv = rootfs.join("opt/venv");
    let cfg = fs::read_to_string(venv.join("pyvenv.cfg")).expect("pyvenv.cfg");
    let cfg_map: BTreeMap<&str, &str> = cfg.lines().filter_map(|l| l.split_once(" = ")).collect();
    assert_eq!(cfg_map.get("home"), Some(&"/usr/bin"), "{cfg}");
    assert_eq!(cfg_map.get("version_info"), Some(&"3.11.2"), "{cfg}");
    assert_eq!(cfg_map.get("implementation"), Some(&"CPython"), "{cfg}");
    assert_eq!(
        cfg_map.get("include-system-site-packages"),
        Some(&"false"),
        "{cfg}"
    );
    assert!(cfg.ends_with('\n'), "{cfg:?}");
    let link = |p: &str| {
        fs::read_link(venv.join(p))
            .unwrap_or_else(|e| panic!("{p} is not a symlink: {e}"))
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(link("bin/python"), "/usr/bin/python3.11");
    assert_eq!(link("bin/python3"), "python");
    assert_eq!(link("bin/python3.11"), "python");
    assert_eq!(link("lib64"), "lib");
    // bin/python resolves to the base's interpreter inside the rootfs.
    assert_eq!(
        fs::read(rootfs.join("usr/bin/python3.11")).expect("interpreter"),
        b"not a real interpreter\n"
    );
    assert!(
        venv.join("lib/python3.11/site-packages/tiny/__init__.py")
            .is_file()
    );
    assert!(
        venv.join("lib/python3.11/site-packages/tiny-1.0.dist-info/RECORD")
            .is_file()
    );
}

/// On an official-python-like base, `PYTHON_VERSION` names the interpreter
/// (`/usr/local/bin/python3.12`) and its exact version; wheels are chosen
/// for cp312.
#[test]
fn python_version_env_selects_usr_local_interpreter() {
    let w = World::new_312(&[AMD64]);
    let idx = w.index();
    let pick = LockedPackage::new("pick", "1.0", &idx)
        .wheel(
            w.publish(
                &WheelSpec::new(
                    "pick",
                    "1.0",
                    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
                )
                .file("pick/VARIANT", b"cp312"),
            ),
        )
        .wheel(
            w.publish(&WheelSpec::new("pick", "1.0", MANYLINUX_X86).file("pick/VARIANT", b"cp311")),
        )
        .wheel(
            w.publish(&WheelSpec::new("pick", "1.0", "py3-none-any").file("pick/VARIANT", b"any")),
        );
    let patch = w.pure("patchdep", "1.0");
    let root = RootProject::new("proj")
        .dep(Req::new("pick"))
        .dep(Req::new("patchdep").marker("python_full_version >= '3.12.4'"));
    let def = w.app(&[AMD64], "", &root, &[pick, patch]);
    let (_, out) = w.build(&def, "out");
    let tree = &trees_by_platform(&out, "latest")[AMD64];
    let sp = "opt/venv/lib/python3.12/site-packages";
    assert_eq!(text(tree, &format!("{sp}/pick/VARIANT")), "cp312");
    assert!(tree.contains_key(&format!("{sp}/patchdep-1.0.dist-info/METADATA")));
    let cfg = text(tree, "opt/venv/pyvenv.cfg");
    assert!(cfg.contains("home = /usr/local/bin\n"), "{cfg}");
    assert!(cfg.contains("version_info = 3.12.4\n"), "{cfg}");
    let py = &tree["opt/venv/bin/python"];
    assert_eq!(py.kind, tar::EntryType::Symlink);
    assert_eq!(py.link.as_deref(), Some("/usr/local/bin/python3.12"));
    assert!(
        !tree.keys().any(|p| p.contains("python3.11")),
        "no 3.11 paths"
    );
}

// ---------------------------------------------------------------------------
// Layer split
// ---------------------------------------------------------------------------

/// `n` incompressible deterministic bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A big package (≥ 8 MiB wheel) gets a layer of its own; the small ones go
/// into hash buckets; bumping one small package changes exactly one layer.
#[test]
fn layer_split_is_stable_when_one_package_changes() {
    let w = World::new(&[AMD64]);
    let idx = w.index();
    let small = |i: usize, version: &str| -> LockedPackage {
        let name = format!("small{i:02}");
        let spec = WheelSpec::pure(&name, version).file(
            &format!("{name}/blob.bin"),
            &noise(2 * MIB + 300 * 1024, i as u64),
        );
        LockedPackage::new(&name, version, &idx).wheel(w.publish(&spec))
    };
    let big_spec =
        WheelSpec::pure("bigpkg", "1.0").file("bigpkg/blob.bin", &noise(8 * MIB + 4096, 99));
    let big = LockedPackage::new("bigpkg", "1.0", &idx).wheel(w.publish(&big_spec));
    assert!(big.wheels[0].size >= 8 * MIB as u64);
    let mut pkgs: Vec<LockedPackage> = (1..=12).map(|i| small(i, "1.0")).collect();
    pkgs.push(big);
    let mut root = RootProject::new("proj");
    for p in &pkgs {
        root = root.dep(Req::new(&p.name));
    }
    let def = w.app(&[AMD64], "", &root, &pkgs);
    let (v1, out1) = w.build(&def, "out1");
    Layout::new(&out1).verify(0);
    let l1 = json_layers(&v1, AMD64).clone();
    let steps_owned: Vec<String> = l1.iter().map(step).collect();
    let steps: Vec<&str> = steps_owned.iter().map(String::as_str).collect();
    assert!(
        steps.contains(&"uv_project proj: venv /opt/venv"),
        "{steps:#?}"
    );
    assert!(steps.contains(&"uv_project proj: bigpkg 1.0"), "{steps:#?}");
    // Bucket layers: "uv_project proj: packages i/N (k)", together holding the 12.
    let buckets: Vec<(usize, usize, usize)> = steps
        .iter()
        .filter_map(|s| s.strip_prefix("uv_project proj: packages "))
        .map(|s| {
            let (frac, k) = s.split_once(" (").expect("i/N (k)");
            let (i, n) = frac.split_once('/').expect("i/N");
            (
                i.parse().expect("i"),
                n.parse().expect("N"),
                k.trim_end_matches(')').parse().expect("k"),
            )
        })
        .collect();
    assert!(!buckets.is_empty(), "{steps:#?}");
    assert_eq!(buckets.iter().map(|b| b.2).sum::<usize>(), 12, "{steps:#?}");
    let n = buckets[0].1;
    assert!(n.is_power_of_two() && n <= 8, "{steps:#?}");
    assert!(buckets.iter().all(|b| b.1 == n), "{steps:#?}");
    // The big package's layer holds the big package only.
    let layout = Layout::new(&out1);
    let (m1, _) = layout.image("latest");
    let big_idx = steps
        .iter()
        .position(|s| *s == "uv_project proj: bigpkg 1.0")
        .expect("big layer");
    let big_paths: BTreeSet<String> = layout
        .layer_entries(&m1["layers"][big_idx])
        .iter()
        .map(|e| clean_path(&e.path))
        .filter(|p| p.starts_with(&format!("{SP311}/")))
        .filter_map(|p| p[SP311.len() + 1..].split('/').next().map(String::from))
        .collect();
    assert_eq!(big_paths, set(&["bigpkg", "bigpkg-1.0.dist-info"]));

    // Bump small07 to 1.1 and rebuild into a fresh output with the same store.
    let pkgs2: Vec<LockedPackage> = pkgs
        .iter()
        .map(|p| {
            if p.name == "small07" {
                small(7, "1.1")
            } else {
                p.clone()
            }
        })
        .collect();
    write_project(&w.path("app/proj"), &root, &pkgs2);
    let (v2, out2) = w.build(&def, "out2");
    let l2 = json_layers(&v2, AMD64);
    assert_eq!(l1.len(), l2.len(), "same layer count:\n{v1:#}\n{v2:#}");
    let changed: Vec<usize> = (0..l1.len())
        .filter(|&i| l1[i]["digest"] != l2[i]["digest"])
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "exactly one layer changes:\n{v1:#}\n{v2:#}"
    );
    let c = changed[0];
    assert!(
        step(&l2[c]).starts_with("uv_project proj: packages "),
        "the changed layer is a bucket: {}",
        l2[c]
    );
    assert_eq!(l2[c]["cache"], "miss");
    for (i, l) in l2.iter().enumerate() {
        if i != c && l["cache"] != "base" {
            assert_eq!(l["cache"], "hit", "layer {i} is reused: {l}");
        }
    }
    let (m2, _) = Layout::new(&out2).image("latest");
    let entries: Vec<String> = Layout::new(&out2)
        .layer_entries(&m2["layers"][c])
        .iter()
        .map(|e| clean_path(&e.path))
        .collect();
    assert!(
        entries.contains(&format!("{SP311}/small07-1.1.dist-info/RECORD")),
        "{entries:#?}"
    );
    assert!(!entries.iter().any(|p| p.contains("small07-1.0.dist-info")));
}

// ---------------------------------------------------------------------------
// Downloads
// ---------------------------------------------------------------------------

/// Each wheel is downloaded once (even when two platforms use it), and a
/// second build with the same store downloads nothing.
#[test]
fn wheels_are_downloaded_once() {
    let w = World::new(&[AMD64, ARM64]);
    let idx = w.index();
    let a = w.pure("alpha", "1.0");
    let b = w.pure("beta", "1.0");
    let native = LockedPackage::new("native", "1.0", &idx)
        .wheel(w.publish(&WheelSpec::new("native", "1.0", MANYLINUX_X86).file("native/x", b"x")))
        .wheel(w.publish(&WheelSpec::new("native", "1.0", MANYLINUX_ARM).file("native/a", b"a")));
    let root = RootProject::new("proj")
        .dep(Req::new("alpha"))
        .dep(Req::new("beta"))
        .dep(Req::new("native"));
    let def = w.app(&[AMD64, ARM64], "", &root, &[a, b, native]);
    w.server.clear_log();
    let _ = w.build(&def, "out1");
    let counts = w.server.get_counts();
    let expected: BTreeMap<String, usize> = [
        "alpha-1.0-py3-none-any.whl".to_string(),
        "beta-1.0-py3-none-any.whl".to_string(),
        format!("native-1.0-{MANYLINUX_X86}.whl"),
        format!("native-1.0-{MANYLINUX_ARM}.whl"),
    ]
    .into_iter()
    .map(|f| (format!("/files/{f}"), 1))
    .collect();
    assert_eq!(counts, expected, "{:#?}", w.server.requests());

    w.server.clear_log();
    let (_, out2) = w.build(&def, "out2");
    assert_eq!(
        w.server.gets(),
        Vec::<String>::new(),
        "nothing downloaded again"
    );
    assert_eq!(platform_images(&out2, "latest").len(), 2);
}

/// A wheel whose bytes do not match the lock's sha256 fails the build with
/// an error naming the wheel; no image is written.
#[test]
fn hash_mismatch_fails_and_writes_nothing() {
    let w = World::new(&[AMD64]);
    let good = w.pure("good", "1.0");
    let bad = w.pure("tampered", "1.0");
    // Replace the served bytes after locking.
    let served = w.server.root().join("files/tampered-1.0-py3-none-any.whl");
    let mut bytes = fs::read(&served).expect("wheel");
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&served, &bytes).expect("rewrite");
    let root = RootProject::new("proj")
        .dep(Req::new("good"))
        .dep(Req::new("tampered"));
    let def = w.app(&[AMD64], "", &root, &[good, bad]);
    let r = w.build_fails(&def, "out");
    assert!(
        r.stderr.contains("tampered-1.0-py3-none-any.whl"),
        "names the wheel:\n{r}"
    );
    assert!(
        r.stderr.to_lowercase().contains("sha256") || r.stderr.contains("hash"),
        "says what is wrong:\n{r}"
    );
    let out = w.path("out");
    assert!(
        !out.join("index.json").exists(),
        "no image written: {:?}",
        list_files(&out)
    );
    // The bad bytes were not kept in the store.
    let bad_hash = sha256_hex(&bytes);
    for f in list_files(&w.cache) {
        let p = w.cache.join(&f);
        if p.is_file() && fs::metadata(&p).expect("stat").len() == bytes.len() as u64 {
            assert_ne!(
                sha256_hex(&fs::read(&p).expect("read")),
                bad_hash,
                "{f} holds the tampered wheel"
            );
        }
    }
    // Once the index serves the locked bytes again, the same build works.
    bytes[n / 2] ^= 0xff;
    fs::write(&served, &bytes).expect("restore");
    let (_, out) = w.build(&def, "out");
    let tree = &trees_by_platform(&out, "latest")[AMD64];
    assert_eq!(installed(tree), set(&["good", "tampered"]));
}

/// A wheel the installer refuses (a file that would land outside the
/// venv) stops the build as a bad input (exit 3) naming the wheel, and no
/// image is written.
#[test]
fn a_refused_wheel_is_a_bad_input() {
    let w = World::new(&[AMD64]);
    let lw = w.publish(&WheelSpec::pure("evil", "1.0").file("../../../../tmp/evil", b"x"));
    let pkg = LockedPackage::new("evil", "1.0", &w.index()).wheel(lw);
    let root = RootProject::new("proj").dep(Req::new("evil"));
    let def = w.app(&[AMD64], "", &root, &[pkg]);
    let r = w.build_fails(&def, "out");
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("evil-1.0-py3-none-any.whl"), "{r}");
    assert!(!w.path("out").join("index.json").exists());
}

/// Wheels of a local flat index (`source = { registry = "../wheelhouse" }`,
/// `path = …`) are read from disk, relative to the project: no server.
#[test]
fn local_flat_index_wheels() {
    let w = World::new(&[AMD64]);
    let house = w.path("app/wheelhouse");
    let lw = LockedWheel::local(&write_wheel(&house, &WheelSpec::pure("localpkg", "3.1")));
    let pkg = LockedPackage::new("localpkg", "3.1", "../wheelhouse").wheel(lw);
    let root = RootProject::new("proj").dep(Req::new("localpkg"));
    let def = w.app(&[AMD64], "", &root, &[pkg]);
    w.server.clear_log();
    let (_, out) = w.build(&def, "out");
    let tree = &trees_by_platform(&out, "latest")[AMD64];
    assert!(tree.contains_key(&format!("{}/RECORD", dist_info("localpkg", "3.1"))));
    assert!(w.server.requests().is_empty());
}

// ---------------------------------------------------------------------------
// Lock problems
// ---------------------------------------------------------------------------

/// Without uv.lock the build stops (exit 3) and says which file is missing.
#[test]
fn missing_lock_is_reported() {
    let w = World::new(&[AMD64]);
    let pkg = w.pure("tiny", "1.0");
    let root = RootProject::new("proj").dep(Req::new("tiny"));
    let def = w.app(&[AMD64], "", &root, &[pkg]);
    fs::remove_file(w.path("app/proj/uv.lock")).expect("remove the lock");
    let r = w.build_fails(&def, "out");
    assert!(r.stderr.contains("uv.lock"), "names uv.lock:\n{r}");
    let j = ib(&["build"])
        .path_arg(&def)
        .cache(&w.cache)
        .oci_out(&w.path("out"))
        .json()
        .arg("-q")
        .run();
    let e = j.json();
    assert_eq!(e["error"]["kind"], "input", "{e:#}");
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("message")
            .contains("uv.lock"),
        "{e:#}"
    );
    assert!(!w.path("out/index.json").exists());
    // A missing input file: exit code 3 (README, exit codes).
    assert_eq!(e["error"]["exit_code"], 3, "{e:#}");
    assert_eq!(r.code, 3, "exit code:\n{r}");
}

/// A lock that no longer matches pyproject.toml (a dependency was added)
/// is refused, naming uv.lock and suggesting `--relock`.
#[test]
fn stale_lock_is_refused() {
    let w = World::new(&[AMD64]);
    let pkg = w.pure("tiny", "1.0");
    let root = RootProject::new("proj").dep(Req::new("tiny"));
    let def = w.app(&[AMD64], "", &root, &[pkg]);
    // The lock as written is fresh.
    let _ = w.build(&def, "fresh");
    let grown = root.clone().dep(Req::new("requests-mock").spec(">=1.0"));
    write(
        &w.path("app/proj"),
        "pyproject.toml",
        &pyproject_text(&grown),
    );
    let r = w.build_fails(&def, "out");
    assert!(r.stderr.contains("uv.lock"), "names uv.lock:\n{r}");
    assert!(r.stderr.contains("--relock"), "suggests --relock:\n{r}");
    assert!(
        r.stderr.contains("requests-mock"),
        "says what differs:\n{r}"
    );
    assert!(!w.path("out/index.json").exists());
}

// ---------------------------------------------------------------------------
// Platforms
// ---------------------------------------------------------------------------

/// Layers made only of pure-python wheels are the same blob on every
/// platform; a layer with a platform wheel is not.
#[test]
fn pure_layers_are_shared_across_platforms() {
    let w = World::new(&[AMD64, ARM64]);
    let pkgs: Vec<LockedPackage> = ["one", "two", "three", "four"]
        .iter()
        .map(|n| w.pure(n, "1.0"))
        .collect();
    let mut root = RootProject::new("proj");
    for p in &pkgs {
        root = root.dep(Req::new(&p.name));
    }
    let def = w.app(&[AMD64, ARM64], "", &root, &pkgs);
    let (v, out) = w.build(&def, "out");
    Layout::new(&out).verify(0);
    let digests = |platform: &str| -> Vec<(String, String)> {
        json_layers(&v, platform)
            .iter()
            .filter(|l| step(l).starts_with("uv_project proj: packages "))
            .map(|l| (step(l), l["digest"].as_str().expect("digest").to_string()))
            .collect()
    };
    let amd = digests(AMD64);
    assert!(!amd.is_empty(), "{v:#}");
    assert_eq!(amd, digests(ARM64), "pure layers are shared:\n{v:#}");

    // A platform wheel makes its layer platform-specific.
    let native = LockedPackage::new("native", "1.0", &w.index())
        .wheel(w.publish(&WheelSpec::new("native", "1.0", MANYLINUX_X86).file("native/x", b"x")))
        .wheel(w.publish(&WheelSpec::new("native", "1.0", MANYLINUX_ARM).file("native/a", b"a")));
    let mut all = pkgs.clone();
    all.push(native);
    let root2 = root.clone().dep(Req::new("native"));
    write_project(&w.path("app/proj"), &root2, &all);
    let (v2, _) = w.build(&def, "out2");
    let layers_of = |platform: &str, prefix: &str| -> Vec<(String, String)> {
        json_layers(&v2, platform)
            .iter()
            .filter(|l| step(l).starts_with(prefix))
            .map(|l| (step(l), l["digest"].as_str().expect("digest").to_string()))
            .collect()
    };
    // The platform wheel gets a bucket of its own, one per platform ...
    let native_prefix = "uv_project proj: platform packages ";
    let (a, b) = (
        layers_of(AMD64, native_prefix),
        layers_of(ARM64, native_prefix),
    );
    assert_eq!(a.len(), 1, "{v2:#}");
    assert_eq!(a[0].0, b[0].0, "the same step on both platforms");
    assert_ne!(
        a[0].1, b[0].1,
        "the bucket holding `native` differs:\n{v2:#}"
    );
    // ... and the pure buckets stay what they were, shared by both.
    let pure_prefix = "uv_project proj: packages ";
    assert_eq!(layers_of(AMD64, pure_prefix), amd, "{v2:#}");
    assert_eq!(layers_of(ARM64, pure_prefix), amd, "{v2:#}");
}

/// An editable root (a project with a build system) is not installed unless
/// `install_project = true`; its dependencies are.
#[test]
fn editable_root_installs_dependencies_only_by_default() {
    let w = World::new(&[AMD64]);
    let dep = w.pure("depone", "1.0");
    let mut root = RootProject::new("proj").dep(Req::new("depone"));
    root.source = RootSource::Editable;
    let def = w.app(&[AMD64], "", &root, &[dep]);
    let (v, out) = w.build(&def, "out");
    let tree = &trees_by_platform(&out, "latest")[AMD64];
    assert_eq!(installed(tree), set(&["depone"]), "{v:#}");
    assert!(
        !json_layers(&v, AMD64)
            .iter()
            .any(|l| step(l).contains(": project ")),
        "{v:#}"
    );
}

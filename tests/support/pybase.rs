//! Debian bookworm bases with python3 for the Python-layer tests, made with
//! real tools (mmdebstrap from the host's apt sources, umoci) once and kept
//! under `target/test-cache/`, keyed by [`BASE_VERSION`]. A file lock makes
//! tests (and test binaries) that ask at the same time wait for one build.
//!
//! - [`debian_python_base`]: an OCI layout whose tag `latest` is a one-layer
//!   linux/amd64 image: `mmdebstrap --variant=minbase
//!   --include=python3,ca-certificates bookworm` (~30 s the first time).
//! - [`debian_python_base_multiarch`]: an OCI layout whose tag `latest` is an
//!   index of that amd64 image and a linux/arm64 one. Foreign binaries cannot
//!   run here (no binfmt/qemu), so the arm64 root is mmdebstrap's `extract`
//!   variant (python3 and its dependencies unpacked from the arm64 archive
//!   over merged-/usr symlinks, maintainer scripts not run): the same Debian
//!   files, enough to build for but not to run.
//! - [`debian_corpus_base`]: like [`debian_python_base`] with the venv
//!   module, the system pip and adduser, for the Dockerfile corpus.

use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Change it to make every cached base again.
pub const BASE_VERSION: &str = "bookworm-python3-v1";

/// `SOURCE_DATE_EPOCH` of the bases' files.
pub const BASE_EPOCH: &str = "1700000000";

pub const BASE_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `target/test-cache` of this crate.
pub fn test_cache_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("test-cache")
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when the tools the Python end-to-end tests need are here (mmdebstrap,
/// umoci, uv). When one is missing outside CI, prints why and returns false,
/// and the test returns early; in CI (`CI` set) a missing tool fails the test.
#[track_caller]
pub fn python_tools_present(test: &str) -> bool {
    tools_present(test, true)
}

/// Like [`python_tools_present`] for tests that need a Debian base but no
/// uv (mmdebstrap, umoci).
#[track_caller]
pub fn debian_tools_present(test: &str) -> bool {
    tools_present(test, false)
}

#[track_caller]
fn tools_present(test: &str, uv: bool) -> bool {
    let mut tools = vec![
        (
            "mmdebstrap",
            "--version",
            "mmdebstrap (apt-get install mmdebstrap)",
        ),
        ("umoci", "--version", "umoci (apt-get install umoci)"),
    ];
    if uv {
        tools.push((
            "uv",
            "--version",
            "uv (python3 -m pip install uv; scripts/test.sh installs it)",
        ));
    }
    let missing: Vec<&str> = tools
        .into_iter()
        .filter(|(t, a, _)| !have(t, a))
        .map(|(_, _, why)| why)
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: needed in CI but missing: {}",
        missing.join(", ")
    );
    eprintln!(
        "skipping {test}: missing {} (run scripts/test.sh, which installs them)",
        missing.join(", ")
    );
    false
}

/// Runs a command; panics with its output unless it succeeds.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes `test-cache/NAME` with `make(tmp_dir)` unless it is there, under a
/// lock on `test-cache/NAME.lock`. `make` fills a fresh folder that is renamed
/// to NAME only when complete, so an interrupted build is never used.
fn cached(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    cached_with(name, "index.json", make)
}

/// Like the layouts' cache, for any folder: `test-cache/NAME` made by
/// `make(tmp_dir)` once, complete when `make` wrote the file `marker`.
pub fn cached_folder(name: &str, marker: &str, make: impl FnOnce(&Path)) -> PathBuf {
    cached_with(name, marker, make)
}

fn cached_with(name: &str, marker: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let root = test_cache_dir();
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
    let dir = root.join(name);
    let lock_path = root.join(format!("{name}.lock"));
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if !dir.join(marker).is_file() {
        let tmp = root.join(format!("{name}.partial"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).unwrap_or_else(|e| panic!("rm {}: {e}", tmp.display()));
        }
        fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("mkdir {}: {e}", tmp.display()));
        let t0 = std::time::Instant::now();
        eprintln!("making {} (once) ...", dir.display());
        make(&tmp);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("rm {}: {e}", dir.display()));
        }
        fs::rename(&tmp, &dir)
            .unwrap_or_else(|e| panic!("rename {} → {}: {e}", tmp.display(), dir.display()));
        eprintln!("made {} in {:.1?}", dir.display(), t0.elapsed());
    }
    drop(lock);
    dir
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 paths")
}

/// `mmdebstrap ARGS... bookworm OUT` with a fixed `SOURCE_DATE_EPOCH`.
fn mmdebstrap(args: &[&str], out: &Path) {
    run(Command::new("mmdebstrap")
        .env("SOURCE_DATE_EPOCH", BASE_EPOCH)
        .args(args)
        .arg("bookworm")
        .arg(out));
}

/// Adds image `layout:tag` made of one layer (the uncompressed `rootfs`
/// tar, gzipped by umoci) for `arch`, with Debian's PATH.
fn umoci_image(layout: &Path, tag: &str, arch: &str, rootfs: &Path) {
    let image = format!("{}:{tag}", p(layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--os",
        "linux",
        "--architecture",
        arch,
        "--config.env",
        BASE_PATH_ENV,
    ]));
    run(Command::new("umoci").args(["raw", "add-layer", "--image", &image, p(rootfs)]));
}

/// Makes `dir` itself an OCI layout whose tag `latest` is a linux/amd64
/// image of `rootfs` (a tar, removed afterwards).
fn amd64_layout_in(dir: &Path, rootfs: &Path) {
    let layout = dir.join("layout");
    run(Command::new("umoci").args(["init", "--layout", p(&layout)]));
    umoci_image(&layout, "latest", "amd64", rootfs);
    fs::remove_file(rootfs).expect("remove rootfs.tar");
    for e in fs::read_dir(&layout).expect("read layout") {
        let e = e.expect("entry");
        fs::rename(e.path(), dir.join(e.file_name())).expect("move layout entry");
    }
    fs::remove_dir(&layout).expect("rmdir layout");
}

/// An OCI image layout (tag `latest`): Debian bookworm minbase with python3
/// and ca-certificates for linux/amd64, one layer.
pub fn debian_python_base() -> PathBuf {
    cached(&format!("debian-python-base-{BASE_VERSION}"), |dir| {
        let rootfs = dir.join("rootfs.tar");
        mmdebstrap(
            &["--variant=minbase", "--include=python3,ca-certificates"],
            &rootfs,
        );
        amd64_layout_in(dir, &rootfs);
    })
}

/// The packages of [`debian_corpus_base`] beyond minbase.
pub const CORPUS_PACKAGES: &str = "python3,python3-venv,python3-pip,adduser,ca-certificates";

/// An OCI image layout (tag `latest`) for the Dockerfile corpus: like
/// [`debian_python_base`], plus what Python images built on Debian
/// usually have or add first: the venv module (with pip's and setuptools'
/// wheels), the system pip (externally managed, PEP 668) and adduser.
/// Slim like Debian's slim images (no Recommends, which for python3-pip
/// are a compiler; no manuals, translations or docs but copyrights), ~145
/// MB: buildah's vfs driver copies the root for every stage it builds.
pub fn debian_corpus_base() -> PathBuf {
    cached(&format!("debian-corpus-base-{BASE_VERSION}"), |dir| {
        let rootfs = dir.join("rootfs.tar");
        let include = format!("--include={CORPUS_PACKAGES}");
        mmdebstrap(
            &[
                "--variant=minbase",
                "--aptopt=APT::Install-Recommends \"false\"",
                // Merged /usr by the hook, not by the usrmerge package (and
                // the perl it needs).
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                // What Debian's slim images leave out; dpkg keeps leaving it
                // out for packages the images install.
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-include=/usr/share/locale/locale.alias",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                "--dpkgopt=path-exclude=/usr/share/info/*",
                &include,
            ],
            &rootfs,
        );
        amd64_layout_in(dir, &rootfs);
    })
}

/// An OCI image layout whose tag `latest` is an image index of two images:
/// [`debian_python_base`]'s linux/amd64 one and a linux/arm64 one (see the
/// module's notes: built for, never run).
pub fn debian_python_base_multiarch() -> PathBuf {
    let amd64 = debian_python_base();
    cached(
        &format!("debian-python-base-multiarch-{BASE_VERSION}"),
        |dir| {
            let rootfs = dir.join("rootfs-arm64.tar");
            mmdebstrap(
                &[
                    "--variant=extract",
                    "--architectures=arm64",
                    "--include=python3,ca-certificates",
                    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                ],
                &rootfs,
            );
            let layout = dir.join("layout");
            run(Command::new("umoci").args(["init", "--layout", p(&layout)]));
            umoci_image(&layout, "arm64", "arm64", &rootfs);
            fs::remove_file(&rootfs).expect("remove rootfs-arm64.tar");

            // The amd64 image's blobs, linked (or copied) in.
            let blobs = layout.join("blobs/sha256");
            for e in fs::read_dir(amd64.join("blobs/sha256")).expect("read amd64 blobs") {
                let e = e.expect("entry");
                let dst = blobs.join(e.file_name());
                if !dst.exists() && fs::hard_link(e.path(), &dst).is_err() {
                    fs::copy(e.path(), &dst).expect("copy blob");
                }
            }
            let amd64_desc = tagged(&amd64, "latest");
            let arm64_desc = tagged(&layout, "arm64");
            let entry = |d: &Value, arch: &str| {
                json!({
                    "mediaType": d["mediaType"],
                    "digest": d["digest"],
                    "size": d["size"],
                    "platform": {"architecture": arch, "os": "linux"},
                })
            };
            let index = json!({
                "schemaVersion": 2,
                "mediaType": super::MT_INDEX,
                "manifests": [entry(&amd64_desc, "amd64"), entry(&arm64_desc, "arm64")],
            });
            let bytes = serde_json::to_vec(&index).expect("index JSON");
            let digest = super::sha256_hex(&bytes);
            fs::write(blobs.join(&digest), &bytes).expect("write index blob");
            let top = json!({
                "schemaVersion": 2,
                "manifests": [{
                    "mediaType": super::MT_INDEX,
                    "digest": format!("sha256:{digest}"),
                    "size": bytes.len(),
                    "annotations": {"org.opencontainers.image.ref.name": "latest"},
                }],
            });
            fs::write(
                layout.join("index.json"),
                serde_json::to_vec(&top).expect("index.json"),
            )
            .expect("write index.json");
            for e in fs::read_dir(&layout).expect("read layout") {
                let e = e.expect("entry");
                fs::rename(e.path(), dir.join(e.file_name())).expect("move layout entry");
            }
            fs::remove_dir(&layout).expect("rmdir layout");
        },
    )
}

/// The descriptor tagged `tag` in a layout's index.json.
fn tagged(layout: &Path, tag: &str) -> Value {
    super::Layout::new(layout).tagged(tag)
}

/// The Debian base Dockerfile tests build on (`oci:<it>:latest`), at a
/// lowercase path as buildah needs; `None` (with the reason printed) when
/// the tools that make it are missing.
pub fn dockerfile_test_base(test: &str) -> Option<PathBuf> {
    if !debian_tools_present(test) {
        return None;
    }
    assert!(super::is_root(), "{test}: run the tests as root");
    Some(super::buildah::lowercase_path(&debian_python_base()))
}

/// Pushes the Debian bookworm + python3 base ([`debian_python_base`]) to
/// `r` as `repo_tag`; its reference there.
pub fn push_python_base(r: &super::registry::Registry, repo_tag: &str) -> String {
    r.skopeo_push(
        &format!("oci:{}:latest", debian_python_base().display()),
        repo_tag,
    )
    .unwrap_or_else(|e| panic!("pushing the base: {e}"));
    format!("{}/{repo_tag}", r.host())
}

/// The host must have apt sources for bookworm; CI does.
pub fn have_bookworm_sources(test: &str) -> bool {
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

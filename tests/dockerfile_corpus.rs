//! The Dockerfile corpus (`testdata/dockerfile-corpus/`): small, realistic
//! Dockerfiles of the kinds public Python and Debian projects write, each
//! built by imgbuild and by `buildah bud` (1.28, vfs, chroot isolation) on
//! the same Debian base, and compared: every path of the two images (mode,
//! owner, content) and the config. Each case also checks what its image
//! must do, by running commands in a chroot of the image the way `docker
//! run` would (the config's env, working folder and user), on both
//! builders' images. A table of results and times is printed to stderr and
//! written to `target/dockerfile-corpus-results.md`.
//!
//! Inputs are made offline by the test: wheels (greeter 1.0 and 1.1,
//! tinyfmt, devcheck) built by `support::pyfix`, a uv image holding the
//! host's uv, `uv.lock` from the host's `uv lock`, `poetry.lock` from
//! poetry on the host, archives made with tar. Poetry itself (for its
//! case) is fetched once into `target/test-cache` with the host's pip.
//!
//! # Accepted differences
//!
//! A difference between the two images fails the test unless the case
//! lists it as accepted (see [`Accept`]); each accepted difference that
//! occurred is named in the table. They are (the corpus README has the
//! same list):
//!
//! - **RUN mount stubs** (buildah quirk, every case): buildah leaves the
//!   empty `/etc/hosts` (and `/etc/resolv.conf`) it mounted over for RUN.
//! - **Cache-mount stubs** (buildah quirk): buildah 1.28 leaves the empty
//!   folder it made as the mount point of a `--mount=type=cache` target
//!   (e.g. `/root/.cache/pip`) in the layer; BuildKit and imgbuild do not.
//! - **Mount-target stubs** (buildah quirk, every case): buildah removes
//!   the empty folder it made as a RUN step's `--mount` target once the
//!   step ends, but not always: now and then (on a fresh machine, one run
//!   in a few) the folder of a bind mount is still there. An empty folder
//!   only buildah's image has, at one of the Dockerfile's mount targets.
//! - **shadow-utils backups** (buildah quirk): `/etc/group-`, `/etc/gshadow-`,
//!   `/etc/passwd-` and `/etc/shadow-` are the copies useradd/groupadd keep
//!   of the file before their change; under buildah a stale one can remain
//!   (same size and mtime, so shadow-utils does not rewrite it). The files
//!   themselves (`/etc/passwd`, …) must match.
//! - **Env order** (buildah quirk): buildah moves a variable that ENV sets
//!   again to the end of `Env`; docker and imgbuild keep its place. The
//!   same variables with the same values either way.
//! - **Parent-stage ARGs** (buildah quirk): BuildKit starts a stage built
//!   `FROM` another stage with that stage's ARG values (an `ARG X` without a
//!   default keeps the parent's value, and RUN steps see the parent's ARGs);
//!   buildah 1.28 starts it with none. Where a case relies on that, buildah
//!   gets the parent's values as `--build-arg`s, or the one file that shows
//!   the value differs exactly as listed.
//! - **Timestamped bytecode** (time of build): a timestamp-based `.pyc`
//!   records its source file's mtime, which is when pip or uv wrote it;
//!   compared with those four bytes masked, or, where marshal's reference
//!   flags differ too, by asking the base's python3 whether the code
//!   objects are equal.
//! - **Time-of-build logs** (time of build): dpkg's and apt's logs and
//!   ldconfig's cache record when packages were installed; compared by
//!   mode and owner only.
//! - **uv cache timestamps** (time of build): uv's `uv_cache.json` records
//!   when a wheel entered uv's cache (and the RECORD lists its hash).
//! - **Directory order** (build file system): virtualenv writes the RECORD
//!   of the pip it seeds in the order it walks the folder.
//!
//! What buildah 1.28 cannot build is checked on imgbuild's image alone:
//! relative mount targets (buildah refuses `target=uv.lock`; BuildKit joins
//! it to the WORKDIR, so buildah builds a copy of the Dockerfile with the
//! targets joined), heredocs and `HEALTHCHECK --start-interval` (buildah
//! must fail on that case). buildah keeps Docker's config fields (`Shell`,
//! `Healthcheck`) only in its Docker format: it builds with `--format
//! docker` and its config is read with `buildah inspect`.
//!
//! # Known imgbuild defects
//!
//! A case may list an imgbuild defect it shows ([`KnownDefect`]): the
//! failure it causes is expected, and once it no longer shows the case
//! fails until the mark is removed.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use support::buildah::{
    Buildah, Difference, ImageTree, Kind, Node, absolute_mount_targets, buildah_present,
    config_differences, env_list, first_layer_blob, image_config, image_tree, lowercase_path,
    mount_targets, tree_differences,
};
use support::pybase::{self, debian_corpus_base, python_tools_present};
use support::pyfix::{WheelSpec, write_wheel};
use support::{is_root, write, write_file};

/// Poetry's version for the poetry case (its wheels come from the index
/// the host's pip uses, once).
const POETRY_VERSION: &str = "2.2.1";

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

/// How buildah builds a case.
enum ForBuildah {
    /// The same Dockerfile with the same build arguments.
    Same,
    /// With these build arguments added: the values BuildKit would take
    /// from the parent stage (see "Parent-stage ARGs").
    ParentArgs(&'static [&'static str]),
    /// The Dockerfile with relative mount targets joined to the WORKDIR.
    AbsoluteMountTargets,
    /// The Dockerfile with these texts replaced by what buildah 1.28's
    /// parser reads as BuildKit reads the original (see "Parser
    /// differences").
    Rewritten(&'static [(&'static str, &'static str)]),
    /// buildah 1.28 cannot build it: it must fail with this in its error.
    Unsupported(&'static str),
}

/// A difference the comparison accepts (see the module's notes).
#[derive(Clone, Copy, Debug)]
enum Accept {
    /// The empty `/etc/hosts` and `/etc/resolv.conf` buildah mounted over
    /// for RUN steps (accepted in every case).
    RunMountStubs,
    /// Empty folders only buildah's image has, left by cache mounts there.
    CacheMountStubs(&'static [&'static str]),
    /// An empty folder only buildah's image has at a RUN step's `--mount`
    /// target (accepted in every case, for the case's own targets).
    MountTargetStubs,
    /// The shadow-utils backup files differ.
    ShadowBackups,
    /// Env in another order.
    EnvOrder,
    /// Timestamp-based .pyc files differ in the source mtime they record.
    PycTimestamps,
    /// These files record the time of the build: mode and owner compared.
    BuildTimeFiles(&'static [&'static str]),
    /// Files matching these patterns (`*` within one path component) list
    /// the same lines in another order.
    LineOrder(&'static [&'static str]),
    /// uv's `uv_cache.json` in a package's `.dist-info` records when the
    /// wheel entered uv's cache (equal without that `timestamp`), and the
    /// package's RECORD differs only in that file's hash.
    UvCacheInfo,
    /// This file shows a parent-stage ARG: imgbuild's has BuildKit's
    /// content, buildah's has buildah's.
    ParentStageArg {
        path: &'static str,
        buildkit: &'static str,
        buildah: &'static str,
    },
}

impl Accept {
    fn label(&self) -> &'static str {
        match self {
            Accept::RunMountStubs => "RUN mount stubs",
            Accept::CacheMountStubs(_) => "cache-mount stubs",
            Accept::MountTargetStubs => "mount-target stubs",
            Accept::ShadowBackups => "shadow-utils backups",
            Accept::EnvOrder => "env order",
            Accept::PycTimestamps => "timestamped bytecode",
            Accept::BuildTimeFiles(_) => "time-of-build logs",
            Accept::LineOrder(_) => "directory order",
            Accept::UvCacheInfo => "uv cache timestamps",
            Accept::ParentStageArg { .. } => "parent-stage ARGs",
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Accept::PycTimestamps | Accept::BuildTimeFiles(_) | Accept::UvCacheInfo => {
                "time of build"
            }
            Accept::LineOrder(_) => "build file system",
            _ => "buildah quirk",
        }
    }

    /// Whether this accepts the difference `d` in an image whose RUN steps
    /// mount things at `targets` (see [`mount_targets`]).
    fn covers(&self, d: &Difference, targets: &[String]) -> bool {
        let (a, b) = (d.ours.as_ref(), d.theirs.as_ref());
        match self {
            Accept::RunMountStubs => {
                ["etc/hosts", "etc/resolv.conf"].contains(&d.path.as_str())
                    && a.is_none()
                    && b.and_then(Node::data).is_some_and(<[u8]>::is_empty)
            }
            Accept::CacheMountStubs(paths) => {
                a.is_none()
                    && b.is_some_and(|n| n.kind == Kind::Dir)
                    && paths.contains(&d.path.as_str())
            }
            Accept::MountTargetStubs => {
                a.is_none() && b.is_some_and(|n| n.kind == Kind::Dir) && targets.contains(&d.path)
            }
            Accept::ShadowBackups => {
                ["etc/group-", "etc/gshadow-", "etc/passwd-", "etc/shadow-"]
                    .contains(&d.path.as_str())
                    && a.is_some_and(|n| n.data().is_some())
                    && b.is_some_and(|n| n.data().is_some())
            }
            Accept::EnvOrder => false,
            Accept::PycTimestamps => {
                d.path.ends_with(".pyc")
                    && match (a.and_then(Node::data), b.and_then(Node::data)) {
                        (Some(x), Some(y)) => same_but_pyc_mtime(x, y),
                        _ => false,
                    }
                    && a.map(|n| (n.mode, n.uid, n.gid)) == b.map(|n| (n.mode, n.uid, n.gid))
            }
            Accept::BuildTimeFiles(paths) => {
                paths.contains(&d.path.as_str())
                    && matches!((a, b), (Some(x), Some(y))
                        if x.data().is_some() && y.data().is_some()
                            && (x.mode, x.uid, x.gid) == (y.mode, y.uid, y.gid))
            }
            Accept::LineOrder(patterns) => {
                patterns.iter().any(|p| glob_match(p, &d.path))
                    && matches!((a, b), (Some(x), Some(y))
                        if (x.mode, x.uid, x.gid) == (y.mode, y.uid, y.gid)
                            && sorted_lines(x) .is_some()
                            && sorted_lines(x) == sorted_lines(y))
            }
            Accept::UvCacheInfo => {
                let same_meta = matches!((a, b), (Some(x), Some(y))
                    if (x.mode, x.uid, x.gid) == (y.mode, y.uid, y.gid));
                let (Some(x), Some(y)) = (a.and_then(Node::data), b.and_then(Node::data)) else {
                    return false;
                };
                if !same_meta || !d.path.contains(".dist-info/") {
                    return false;
                }
                if d.path.ends_with("/uv_cache.json") {
                    let untimed = |b: &[u8]| {
                        serde_json::from_slice::<Value>(b).ok().map(|mut v| {
                            v.as_object_mut().map(|o| o.remove("timestamp"));
                            v
                        })
                    };
                    untimed(x).is_some() && untimed(x) == untimed(y)
                } else if d.path.ends_with("/RECORD") {
                    let lines = |b: &[u8]| -> Vec<Vec<u8>> {
                        b.split(|&c| c == b'\n')
                            .filter(|l| !l.windows(14).any(|w| w == b"/uv_cache.json"))
                            .map(<[u8]>::to_vec)
                            .collect()
                    };
                    lines(x) == lines(y)
                } else {
                    false
                }
            }
            Accept::ParentStageArg {
                path,
                buildkit,
                buildah,
            } => {
                d.path == *path
                    && a.and_then(Node::data) == Some(buildkit.as_bytes())
                    && b.and_then(Node::data) == Some(buildah.as_bytes())
            }
        }
    }
}

/// Accepted in every case.
const EVERY_CASE: &[Accept] = &[Accept::RunMountStubs, Accept::MountTargetStubs];

/// Two timestamp-based .pyc files (flags 0) with the same header but for
/// the source mtime they record (bytes 8..12).
fn same_pyc_header(a: &[u8], b: &[u8]) -> bool {
    a.len() >= 16
        && b.len() >= 16
        && a[4..8] == [0, 0, 0, 0]
        && a[..8] == b[..8]
        && a[12..16] == b[12..16]
}

/// ... and the same bytes after the header.
fn same_but_pyc_mtime(a: &[u8], b: &[u8]) -> bool {
    same_pyc_header(a, b) && a[16..] == b[16..]
}

/// A file's lines, sorted.
fn sorted_lines(n: &Node) -> Option<Vec<&[u8]>> {
    let mut v: Vec<&[u8]> = n.data()?.split(|&c| c == b'\n').collect();
    v.sort();
    Some(v)
}

/// `pattern` with `*` matching within one path component.
fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len()
        && p.iter().zip(&q).all(|(p, q)| match p.split_once('*') {
            None => p == q,
            Some((pre, suf)) => {
                q.len() >= pre.len() + suf.len() && q.starts_with(pre) && q.ends_with(suf)
            }
        })
}

/// An imgbuild defect a case shows until it is fixed: the case expects
/// the failure that names it (and fails once it no longer shows, so the
/// mark is removed with the fix).
#[derive(Clone, Copy, Debug)]
struct KnownDefect {
    id: &'static str,
    /// Text of the failure it causes.
    shows_as: &'static str,
}

/// One Dockerfile of the corpus.
struct Case {
    /// Its folder under testdata/dockerfile-corpus (Dockerfile and context).
    name: &'static str,
    /// `--target`.
    target: Option<&'static str>,
    /// `--build-arg`s for both builders (BASE and UV_IMAGE come on top).
    args: &'static [&'static str],
    buildah: ForBuildah,
    accepted: &'static [Accept],
    /// imgbuild defects this case shows (reported, not accepted).
    known_defects: &'static [KnownDefect],
    /// What the image must do; run on imgbuild's image and on buildah's.
    check: fn(&Image),
}

const APT_LOGS: &[&str] = &[
    "var/log/dpkg.log",
    "var/log/apt/history.log",
    "var/log/apt/term.log",
    "var/log/apt/eipp.log.xz",
    "var/log/alternatives.log",
    "var/cache/ldconfig/aux-cache",
];

/// Longest first: two run at a time.
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "poetry",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[
                Accept::PycTimestamps,
                Accept::EnvOrder,
                // virtualenv writes the RECORD of the pip it seeds in the
                // order it walks the folder.
                Accept::LineOrder(&["app/.venv/lib/python3.11/site-packages/*.dist-info/RECORD"]),
            ],
            known_defects: &[],
            check: check_poetry,
        },
        Case {
            name: "apt-install-purge",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[Accept::BuildTimeFiles(APT_LOGS)],
            known_defects: &[],
            check: check_apt,
        },
        Case {
            name: "target-stages",
            target: Some("runtime"),
            args: &[],
            buildah: ForBuildah::ParentArgs(&["UID=10001", "GID=10001"]),
            accepted: &[Accept::ShadowBackups, Accept::PycTimestamps],
            known_defects: &[],
            check: check_target_stages,
        },
        Case {
            name: "venv-pip-upgrade",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[Accept::PycTimestamps, Accept::EnvOrder],
            known_defects: &[],
            check: check_venv_pip_upgrade,
        },
        Case {
            name: "uv-sync",
            target: None,
            args: &[],
            buildah: ForBuildah::AbsoluteMountTargets,
            accepted: &[
                Accept::ShadowBackups,
                Accept::PycTimestamps,
                Accept::UvCacheInfo,
            ],
            known_defects: &[],
            check: check_uv_sync,
        },
        Case {
            name: "arg-env-interplay",
            target: None,
            args: &["APP_VERSION=2.4.1", "BUILD_CHANNEL=beta", "BUILD_NUMBER=17"],
            buildah: ForBuildah::Same,
            accepted: &[
                Accept::EnvOrder,
                Accept::ParentStageArg {
                    path: "opt/ledgerd/BUILD_INFO",
                    buildkit: "ledgerd 2.4.1+build.17 amd64 beta --verbose\npython=python3\n",
                    buildah: "ledgerd 2.4.1+build.17 amd64 beta --verbose\npython=unset\n",
                },
            ],
            known_defects: &[],
            check: check_arg_env,
        },
        Case {
            name: "useradd-chown",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[Accept::ShadowBackups],
            known_defects: &[],
            check: check_useradd,
        },
        Case {
            name: "pip-system-cache",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[
                Accept::CacheMountStubs(&["root/.cache", "root/.cache/pip"]),
                Accept::PycTimestamps,
            ],
            known_defects: &[],
            check: check_pip_system,
        },
        Case {
            name: "entrypoint-healthcheck",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[],
            known_defects: &[],
            check: check_entrypoint,
        },
        Case {
            name: "workdir-dockerignore-add",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[],
            known_defects: &[],
            check: check_workdir_ignore_add,
        },
        Case {
            name: "continuations",
            target: None,
            args: &[],
            // buildah 1.28 takes an escaped backslash at a line's end for a
            // continuation; in single quotes it reads the same value.
            buildah: ForBuildah::Rewritten(&[(
                "ENV TRAIL=trailing\\\\backslash\\\\\n",
                "ENV TRAIL='trailing\\backslash\\'\n",
            )]),
            accepted: &[],
            known_defects: &[],
            check: check_continuations,
        },
        Case {
            name: "escape-directive",
            target: None,
            args: &[],
            // buildah 1.28 unescapes ENV values with a backslash whatever
            // the escape directive says; doubled, it reads BuildKit's value.
            buildah: ForBuildah::Rewritten(&[("WIN=C:\\tools\\bin", "WIN=C:\\\\tools\\\\bin")]),
            accepted: &[],
            known_defects: &[],
            check: check_escape_directive,
        },
        Case {
            name: "run-mount-from",
            target: None,
            args: &[],
            buildah: ForBuildah::Same,
            accepted: &[],
            known_defects: &[],
            check: check_run_mount_from,
        },
        Case {
            name: "copy-parents-exclude",
            target: None,
            args: &[],
            buildah: ForBuildah::Unsupported("COPY only supports"),
            accepted: &[],
            known_defects: &[],
            check: check_copy_parents_exclude,
        },
        Case {
            name: "heredocs",
            target: None,
            args: &[],
            buildah: ForBuildah::Unsupported("Unknown instruction"),
            accepted: &[],
            known_defects: &[],
            check: check_heredocs,
        },
    ]
}

// ---------------------------------------------------------------------------
// What each image must do
// ---------------------------------------------------------------------------

const SITE: &str = "lib/python3.11/site-packages";

fn check_venv_pip_upgrade(img: &Image) {
    let site = format!("opt/venv/{SITE}");
    // Every file of the upgraded package, the unchanged ones included.
    for f in ["__init__.py", "cli.py", "phrases.txt", "py.typed"] {
        img.file(&format!("{site}/greeter/{f}"));
    }
    img.file(&format!("{site}/greeter-1.1.dist-info/RECORD"));
    img.absent(&format!("{site}/greeter-1.0.dist-info"));
    img.absent("tmp/requirements.txt");
    assert_eq!(
        img.run(&["python", "/srv/app.py"]),
        "*** hello, world ***\ngreeter 1.1\n"
    );
    assert_eq!(
        img.run(&["greet", "team"]),
        "hello, team\n",
        "console script"
    );
    assert!(
        img.env("PATH")
            .starts_with("/opt/venv/bin:/usr/local/sbin:"),
        "{}",
        img.env("PATH")
    );
    assert_eq!(
        img.config["config"]["Cmd"],
        json!(["python", "/srv/app.py"])
    );
}

fn check_pip_system(img: &Image) {
    assert_eq!(img.config["config"]["WorkingDir"], "/srv/report/");
    let site = "usr/local/lib/python3.11/dist-packages";
    img.file(&format!("{site}/greeter/phrases.txt"));
    img.file("srv/report/report/__pycache__/__main__.cpython-311.pyc");
    assert_eq!(
        img.run(&["python3", "-m", "report"]),
        "*** daily report ***\nhello, team\n"
    );
    assert_eq!(img.run(&["greet"]), "hello, you\n");
    if img.is_imgbuild() {
        img.absent("root/.cache/pip");
    }
}

fn check_uv_sync(img: &Image) {
    let site = format!("app/.venv/{SITE}");
    for p in [
        "greeter/__init__.py",
        "greeter/phrases.txt",
        "tinyfmt/__init__.py",
    ] {
        let n = img.file(&format!("{site}/{p}"));
        assert_eq!((n.uid, n.gid), (999, 999), "{p}: COPY --chown=app:app");
    }
    img.file(&format!(
        "{site}/greeter/__pycache__/__init__.cpython-311.pyc"
    ));
    img.absent(&format!("{site}/devcheck"));
    img.absent("usr/bin/uv");
    img.file("app/uv.lock");
    assert!(img.text("app/.venv/pyvenv.cfg").contains("uv = "));
    assert_eq!(img.config["config"]["User"], "app");
    assert_today(img, "app");
    assert_eq!(
        img.docker_run(&[]),
        "*** hello, stock ***\n3 items, out of stock: washers\n"
    );
    assert_eq!(img.run(&["id", "-un"]), "app\n");
}

fn check_poetry(img: &Image) {
    let site = format!("app/.venv/{SITE}");
    img.file(&format!("{site}/greeter/phrases.txt"));
    img.file(&format!("{site}/tinyfmt/__init__.py"));
    img.absent(&format!("{site}/devcheck"));
    img.absent("opt/poetry");
    img.absent("app/poetry.lock");
    assert_eq!(
        img.docker_run(&[]),
        "*** hello, ledger ***\nbalanced: True\n"
    );
}

fn check_apt(img: &Image) {
    assert_eq!(
        img.config["config"]["Shell"],
        json!(["/bin/bash", "-o", "pipefail", "-c"])
    );
    assert!(
        !img.env_list()
            .iter()
            .any(|e| e.starts_with("DEBIAN_FRONTEND=")),
        "ARGs stay out of the image"
    );
    assert!(img.run(&["jq", "--version"]).starts_with("jq-1.6"));
    assert_eq!(img.run(&["dbtool", "--version"]), "dbtool 1.4\n");
    assert_eq!(img.text("opt/dbtool/VERSION"), "dbtool 1.4\n");
    assert_eq!(
        img.text("opt/dbtool/about.json"),
        "{\n  \"dbtool\": \"dbtool 1.4\"\n}\n"
    );
    img.absent("usr/bin/xz");
    img.absent("tmp/dbtool-1.4.tar.xz");
    assert_eq!(
        img.sh("dpkg-query -W -f '${Status}' jq"),
        "install ok installed"
    );
    assert_eq!(
        img.sh("dpkg-query -W -f '${Status}' xz-utils"),
        "unknown ok not-installed",
        "purged"
    );
    let lists: Vec<&String> = img
        .tree
        .keys()
        .filter(|k| k.starts_with("var/lib/apt/lists/") && !k.ends_with("/partial"))
        .filter(|k| *k != "var/lib/apt/lists/lock")
        .collect();
    assert!(lists.is_empty(), "apt's lists are gone: {lists:?}");
}

/// The last-change field of `user` in /etc/shadow: days since 1970,
/// today's when useradd ran without SOURCE_DATE_EPOCH (as under docker).
fn shadow_last_change(img: &Image, user: &str) -> String {
    let shadow = img.text("etc/shadow");
    let line = shadow
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .unwrap_or_else(|| panic!("no {user} in /etc/shadow:\n{shadow}"));
    line.split(':').nth(2).unwrap_or_default().to_string()
}

fn assert_today(img: &Image, user: &str) {
    let field = shadow_last_change(img, user);
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 86_400;
    let day: u64 = field
        .parse()
        .unwrap_or_else(|_| panic!("{user}'s last password change in /etc/shadow is {field:?}"));
    assert!(
        day + 1 >= today && day <= today,
        "{user}'s last password change: day {day}, today is {today} (SOURCE_DATE_EPOCH leaked into RUN?)"
    );
}

fn check_useradd(img: &Image) {
    assert_eq!(
        img.sh("getent passwd app"),
        "app:x:10001:10001::/home/app:/usr/sbin/nologin\n"
    );
    let worker = img.sh("getent passwd worker");
    assert!(
        worker.ends_with(":/nonexistent:/usr/sbin/nologin\n"),
        "{worker}"
    );
    assert_today(img, "app");
    let owner = |p: &str| {
        let n = img.node(p);
        (n.uid, n.gid)
    };
    for p in [
        "home/app",
        "home/app/service/__main__.py",
        "etc/app/settings.ini",
        "var/lib/app",
        "var/lib/app/state.json",
        "var/log/app",
        "home/app/.config/service/owner",
    ] {
        assert_eq!(owner(p), (10001, 10001), "{p}");
    }
    assert_eq!(img.node("var/lib/app").mode, 0o750);
    assert_eq!(
        owner("etc/app"),
        (10001, 10001),
        "a folder COPY --chown made"
    );
    assert_eq!(owner("etc"), (0, 0), "a folder that was there");
    assert_eq!(
        img.text("home/app/.config/service/owner"),
        "app\n",
        "RUN after USER runs as the user, with the user's HOME"
    );
    assert_eq!(img.config["config"]["User"], "app");
    assert!(img.config["config"]["Volumes"]["/var/lib/app"].is_object());
    assert_eq!(img.docker_run(&[]), "accounts as app on port 8081\n");
}

fn check_target_stages(img: &Image) {
    img.absent("opt/debug");
    img.absent("tests-passed");
    img.absent("src");
    for p in [
        "opt/venv",
        "opt/venv/bin/python",
        "opt/app/app/__main__.py",
        &format!("opt/venv/{SITE}/greeter/__init__.py"),
    ] {
        let n = img.node(p);
        assert_eq!(
            (n.uid, n.gid),
            (10001, 10001),
            "{p}: --chown with the parent stage's ARGs"
        );
    }
    img.absent(&format!("opt/venv/{SITE}/devcheck"));
    assert_today(img, "app");
    assert_eq!(img.config["config"]["User"], "10001:10001");
    assert_eq!(img.config["config"]["WorkingDir"], "/opt/app");
    assert_eq!(img.docker_run(&[]), "hello, ops\n");
}

fn check_arg_env(img: &Image) {
    let want = [
        "APP_NAME=ledgerd",
        "APP_VERSION=2.4.1+build.17",
        "CHANNEL=beta",
        "VERBOSE_FLAG=--verbose",
        "PYTHONPATH=/opt/ledgerd/lib",
        "RELEASE=ledgerd-2.4.1",
    ];
    let env = img.env_list();
    for w in want {
        assert!(env.iter().any(|e| e == w), "{w} in {env:?}");
    }
    for k in [
        "BUILD_CHANNEL",
        "PYTHON",
        "BUILD_NUMBER",
        "TARGETARCH",
        "BASE",
    ] {
        assert!(
            !env.iter().any(|e| e.starts_with(&format!("{k}="))),
            "ARG {k} stays out of Env: {env:?}"
        );
    }
    assert!(
        img.env("PATH")
            .starts_with("/opt/ledgerd/bin:/usr/local/sbin:")
    );
    let labels = &img.config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "ledgerd");
    assert_eq!(labels["org.opencontainers.image.version"], "2.4.1+build.17");
    assert_eq!(img.config["config"]["WorkingDir"], "/opt/ledgerd");
    let info = img.text("opt/ledgerd/BUILD_INFO");
    let python = if img.is_imgbuild() {
        "python3"
    } else {
        "unset"
    };
    assert_eq!(
        info,
        format!("ledgerd 2.4.1+build.17 amd64 beta --verbose\npython={python}\n")
    );
    assert_eq!(img.node("opt/ledgerd/bin/ledgerd").mode, 0o755);
    assert_eq!(img.docker_run(&[]), "ledgerd 2.4.1+build.17 on beta\n");
}

fn check_entrypoint(img: &Image) {
    let c = &img.config["config"];
    assert_eq!(img.node("usr/local/bin/docker-entrypoint.sh").mode, 0o755);
    assert_eq!(img.node("usr/local/bin/healthcheck").mode, 0o755);
    assert_eq!(
        img.node("entrypoint.sh").kind,
        Kind::Symlink("usr/local/bin/docker-entrypoint.sh".into())
    );
    assert_eq!(c["Entrypoint"], json!(["docker-entrypoint.sh"]));
    assert_eq!(c["Cmd"], json!(["gateway"]));
    assert_eq!(
        c["Healthcheck"],
        json!({"Test": ["CMD", "healthcheck"], "Interval": 30_000_000_000u64,
               "Timeout": 3_000_000_000u64, "StartPeriod": 10_000_000_000u64, "Retries": 3})
    );
    assert!(c["ExposedPorts"]["9100/tcp"].is_object() && c["ExposedPorts"]["9101/udp"].is_object());
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert!(c["Volumes"]["/var/lib/gateway"].is_object());
    assert_eq!(c["WorkingDir"], "/opt/gateway");
    assert_eq!(
        c["Labels"]["org.opencontainers.image.title"],
        "metrics-gateway"
    );
    let gw = "gateway on :9100 -> collector-a:9200, collector-b:9200\n";
    assert_eq!(img.docker_run(&["gateway", "--dry-run"]), gw);
    assert_eq!(
        img.docker_run(&["--dry-run"]),
        gw,
        "flags go to the gateway"
    );
    assert_eq!(img.docker_run(&["echo", "other"]), "other\n");
    assert_eq!(
        img.run(&["healthcheck", "--self-test"]),
        "would probe 127.0.0.1:9100\n"
    );
}

fn check_workdir_ignore_add(img: &Image) {
    assert_eq!(img.config["config"]["WorkingDir"], "/app/");
    for p in [
        "app/manage.py",
        "app/webapp/app.py",
        "app/docs/api.md",
        "app/requirements.txt",
        "app/requirements-dev.txt",
        "app/tests/test_app.py",
        "app/webapp/server.log",
        "app/vendor/static-assets.tar.gz",
        "etc/webapp/defaults.ini",
    ] {
        img.file(p);
    }
    for p in [
        "app/.git",
        "app/webapp/__pycache__",
        "app/debug.log",
        "app/.venv",
        "app/docs/internals.md",
        "app/Dockerfile",
        "app/.dockerignore",
    ] {
        img.absent(p);
    }
    let css = img.file("app/static/css/site.css");
    assert_eq!(
        (css.uid, css.gid),
        (1000, 1000),
        "ADD keeps the archive's owners"
    );
    assert_eq!(
        img.text("app/static/manifest.txt"),
        "css/site.css\njs/app.js\nmanifest.txt\n"
    );
    img.dir("app/media");
    assert_eq!(img.docker_run(&[]), "serving /health on :8000\n");
}

fn check_continuations(img: &Image) {
    // A continued line keeps its leading whitespace; comment lines and
    // empty lines inside a continuation are dropped.
    assert_eq!(img.text("out/run-indent"), "hello  world\n");
    assert_eq!(
        img.text("out/env"),
        "hello\t  world|onetwo|trailing\\backslash\\|kept\n"
    );
    let env = env_list(img.config);
    for e in [
        "SPACED=hello\t  world",
        "PLAIN=onetwo",
        "TRAIL=trailing\\backslash\\",
    ] {
        assert!(env.iter().any(|x| x == e), "{e} in {env:?}");
    }
    assert_eq!(img.config["config"]["Labels"]["multi"], "a b");
    assert_eq!(img.config["config"]["Labels"]["other"], "c");
    // `COPY --` ends the flags; a backslash on the last line is dropped.
    assert_eq!(img.text("out/greeting.txt"), "hi\n");
    assert_eq!(img.text("out/last"), "done\n");
}

fn check_escape_directive(img: &Image) {
    // With the escape directive set to a backtick, a backtick continues
    // lines and a backslash is an ordinary character, in RUN and in ENV.
    assert_eq!(img.text("out/escaped"), "C:\\path\\to\\file\n");
    assert_eq!(img.text("out/env"), "C:\\tools\\bin|x|");
    assert_eq!(img.text("out/greeting.txt"), "hi\n");
}

fn check_run_mount_from(img: &Image) {
    // A bind mount of a stage's folder, and a cache seeded from one; the
    // mount points are not left in the image.
    assert_eq!(img.text("srv/data-copy"), "data\n");
    assert_eq!(img.text("srv/mounted-listing"), "bin\nshare\n");
    assert_eq!(img.text("srv/cache-listing"), "data.txt\n");
    assert_eq!(img.node("usr/local/bin/tool").mode, 0o755);
    img.absent("mnt/out");
    img.absent("var/cache/seeded");
    img.absent("out");
    assert_eq!(img.docker_run(&[]), "tool from the builder\n");
}

fn check_copy_parents_exclude(img: &Image) {
    // --exclude patterns are relative to each source (`**/` reaches
    // nested files), from the context and from a stage.
    for p in [
        "app/src/pkg/__init__.py",
        "app/src/pkg/mod.py",
        "app/static/css/site.css",
        "app/static/js/app.js",
        "app/requirements.txt",
    ] {
        img.file(p);
    }
    for p in [
        "app/src/pkg/debug.log",
        "app/src/tests",
        "app/static/js/app.js.map",
    ] {
        img.absent(p);
    }
    // --parents keeps the matched files' folders, from the context's root
    // or from a `/./` in the source.
    assert_eq!(img.text("app/config/dev/settings.toml"), "env = \"dev\"\n");
    assert_eq!(
        img.text("app/config/prod/settings.toml"),
        "env = \"prod\"\n"
    );
    img.absent("app/config/prod/other.toml");
    img.file("app/k8s/base.yaml");
    img.absent("app/deploy");
    assert_eq!(img.docker_run(&[]), "ok\n");
}

fn check_heredocs(img: &Image) {
    assert_eq!(
        img.text("etc/service/service.conf"),
        "[service]\nuser = svc\nlisten = 0.0.0.0:8080\n"
    );
    let entry = img.file("usr/local/bin/entrypoint");
    assert_eq!(entry.mode, 0o755);
    assert!(
        img.text("usr/local/bin/entrypoint")
            .contains("exec \"$@\"\n")
    );
    assert_eq!(
        img.text("etc/service/build.json"),
        "{\"built_by\": \"heredoc\", \"modules\": [\"json\", \"pathlib\"]}\n"
    );
    assert_eq!(img.text("etc/service/python.txt"), "3.11\n");
    assert_eq!(
        img.text("etc/service/NOTICE"),
        "# Generated at build time for svc.\n# Do not edit.\n"
    );
    let data = img.node("var/lib/service");
    let svc = img.sh("id -u svc");
    assert_eq!(data.uid.to_string() + "\n", svc);
    let c = &img.config["config"];
    assert_eq!(
        c["Healthcheck"],
        json!({"Test": ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=4)"],
               "Interval": 30_000_000_000u64, "Timeout": 5_000_000_000u64,
               "StartPeriod": 20_000_000_000u64, "StartInterval": 2_000_000_000u64, "Retries": 3})
    );
    assert_eq!(c["User"], "svc");
    assert_eq!(img.docker_run(&["echo", "ok"]), "ok\n");
    let tmp: Vec<&String> = img.tree.keys().filter(|k| k.starts_with("tmp/")).collect();
    assert!(tmp.is_empty(), "heredoc files are not left: {tmp:?}");
    img.absent("dev/pipes");
}

// ---------------------------------------------------------------------------
// Images to check: the tree in memory, a chroot to run in
// ---------------------------------------------------------------------------

/// A built image: its tree, its config and a mounted root to run in.
struct Image<'a> {
    builder: &'static str,
    tree: &'a ImageTree,
    config: &'a Value,
    root: &'a Path,
}

impl Image<'_> {
    fn is_imgbuild(&self) -> bool {
        self.builder == "imgbuild"
    }

    #[track_caller]
    fn node(&self, p: &str) -> &Node {
        self.tree
            .get(p)
            .unwrap_or_else(|| panic!("{}: no /{p} in the image", self.builder))
    }

    #[track_caller]
    fn file(&self, p: &str) -> &Node {
        let n = self.node(p);
        assert!(
            matches!(n.kind, Kind::File { .. }),
            "{}: /{p} is not a file: {n}",
            self.builder
        );
        n
    }

    #[track_caller]
    fn dir(&self, p: &str) -> &Node {
        let n = self.node(p);
        assert_eq!(n.kind, Kind::Dir, "{}: /{p}", self.builder);
        n
    }

    #[track_caller]
    fn absent(&self, p: &str) {
        assert!(
            !self.tree.contains_key(p),
            "{}: /{p} should not be in the image: {}",
            self.builder,
            self.tree[p]
        );
    }

    #[track_caller]
    fn text(&self, p: &str) -> String {
        let n = self.file(p);
        String::from_utf8(n.data().expect("a file").to_vec()).expect("UTF-8 text")
    }

    fn env_list(&self) -> Vec<String> {
        env_list(self.config)
    }

    fn env(&self, k: &str) -> String {
        self.env_list()
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{k}=")).map(String::from))
            .unwrap_or_default()
    }

    /// (uid, gid, home) of the config's user, looked up in the image.
    fn user(&self) -> (u32, u32, String) {
        let spec = self.config["config"]["User"].as_str().unwrap_or_default();
        let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
        let passwd = self.text("etc/passwd");
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 5 && (f[0] == u || (u.is_empty() && f[2] == "0") || f[2] == u));
        let uid: u32 = match (&entry, u.parse()) {
            (_, Ok(n)) => n,
            (Some(f), _) => f[2].parse().expect("uid"),
            (None, _) => panic!("{}: user {u:?} is not in /etc/passwd", self.builder),
        };
        let gid: u32 = if g.is_empty() {
            entry.as_ref().map_or(uid, |f| f[3].parse().expect("gid"))
        } else {
            g.parse().unwrap_or_else(|_| {
                let group = self.text("etc/group");
                group
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f[0] == g)
                    .map(|f| f[2].parse().expect("gid"))
                    .unwrap_or_else(|| panic!("no group {g}"))
            })
        };
        let home = entry.map_or("/".to_string(), |f| f[5].to_string());
        (uid, gid, home)
    }

    /// Runs `argv` the way `docker run --entrypoint ARGV0 IMAGE ARGS…`
    /// would (the config's env, working folder and user; HOME from
    /// /etc/passwd unless the env sets it), in a chroot. Returns stdout;
    /// panics unless it exits 0.
    #[track_caller]
    fn run(&self, argv: &[&str]) -> String {
        let c = &self.config["config"];
        let (uid, gid, home) = self.user();
        let mut env = self.env_list();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        let wd = c["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/");
        let mut cmd = Command::new("chroot");
        cmd.arg(self.root)
            .arg("/usr/bin/setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(["/usr/bin/env", "-i"])
            .args(&env)
            .args(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", wd])
            .args(argv)
            .env_clear()
            .env("PATH", pybase::BASE_PATH_ENV.trim_start_matches("PATH="));
        let out = cmd.output().expect("run chroot");
        assert!(
            out.status.success(),
            "{}: `{}` failed ({}):\n{}{}",
            self.builder,
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sh -c CMD` as [`Image::run`] runs commands.
    #[track_caller]
    fn sh(&self, cmd: &str) -> String {
        self.run(&["/bin/sh", "-c", cmd])
    }

    /// `docker run IMAGE ARGS…`: the entrypoint with ARGS, or with the
    /// config's Cmd when ARGS is empty.
    #[track_caller]
    fn docker_run(&self, args: &[&str]) -> String {
        let c = &self.config["config"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().expect("a string").to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut argv = strings(&c["Entrypoint"]);
        if args.is_empty() {
            argv.extend(strings(&c["Cmd"]));
        } else {
            argv.extend(args.iter().map(|s| s.to_string()));
        }
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.run(&refs)
    }
}

/// An image's root mounted for running commands: an overlay whose lower
/// folder is the unpacked base (shared by every case) and whose upper
/// folder holds what the image changes from it (made from the image's
/// tree: files, folders, links, and whiteouts for what it removed).
/// Unmounted when dropped.
struct Mounted {
    merged: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.merged).status();
    }
}

fn mount_image(tree: &ImageTree, base: &Base, dir: &Path) -> Mounted {
    use std::os::unix::fs::{lchown, symlink};
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d).expect("mkdir");
    }
    let set_owner_mode = |p: &Path, n: &Node| {
        lchown(p, Some(n.uid as u32), Some(n.gid as u32))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
        if !matches!(n.kind, Kind::Symlink(_)) {
            fs::set_permissions(p, fs::Permissions::from_mode(n.mode))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
        }
    };
    // The folders above a path, as the image has them.
    let ensure_parents = |p: &str| {
        let mut parents = Vec::new();
        let mut cur = p;
        while let Some((parent, _)) = cur.rsplit_once('/') {
            parents.push(parent);
            cur = parent;
        }
        for d in parents.into_iter().rev() {
            let full = upper.join(d);
            if !full.exists() {
                fs::create_dir(&full).expect("mkdir");
                set_owner_mode(&full, &tree[d]);
            }
        }
    };
    for (p, n) in tree {
        if base.tree.get(p) == Some(n) {
            continue;
        }
        ensure_parents(p);
        let full = upper.join(p);
        match &n.kind {
            Kind::Dir => {
                if !full.exists() {
                    fs::create_dir(&full).expect("mkdir");
                }
            }
            Kind::File { data, .. } => fs::write(&full, &**data).expect("write"),
            Kind::Symlink(t) => symlink(t, &full).expect("symlink"),
            Kind::Special(_) => continue,
        }
        set_owner_mode(&full, n);
    }
    for p in base.tree.keys() {
        let parent_kept = p.rsplit_once('/').is_none_or(|(d, _)| tree.contains_key(d));
        if !tree.contains_key(p) && parent_kept {
            ensure_parents(p);
            let c = std::ffi::CString::new(upper.join(p).into_os_string().into_encoded_bytes())
                .expect("a path without NUL");
            // SAFETY: mknod with a valid C string; a 0/0 character device
            // is overlayfs's whiteout.
            let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) };
            assert_eq!(rc, 0, "whiteout {p}: {}", std::io::Error::last_os_error());
        }
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.root.display(),
        upper.display(),
        work.display()
    );
    let out = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount overlay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Mounted { merged }
}

/// The corpus base, unpacked once, and its tree.
struct Base {
    layout: PathBuf,
    root: PathBuf,
    tree: ImageTree,
    diff_ids: Vec<String>,
}

fn unpack_base(layout: &Path, dir: &Path) -> Base {
    let root = dir.join("base-root");
    fs::create_dir_all(&root).expect("mkdir");
    let blob = first_layer_blob(layout, "latest");
    pybase::run(
        Command::new("tar")
            .args(["--numeric-owner", "-xpzf"])
            .arg(&blob)
            .arg("-C")
            .arg(&root),
    );
    Base {
        layout: layout.to_path_buf(),
        root,
        tree: image_tree(layout, "latest"),
        diff_ids: support::buildah::diff_ids(layout, "latest"),
    }
}

// ---------------------------------------------------------------------------
// Inputs made by the test
// ---------------------------------------------------------------------------

/// Everything the cases share.
struct Inputs {
    base: Base,
    uv_image: PathBuf,
    wheels: PathBuf,
    uv: PathBuf,
    poetry: PathBuf,
    work: PathBuf,
}

fn greeter(version: &str) -> WheelSpec {
    let init = format!(
        "\"\"\"Greetings from a phrase book.\"\"\"\nfrom importlib import resources\n\n__version__ = \"{version}\"\n\n\ndef greet(name):\n    phrases = resources.files(__name__).joinpath(\"phrases.txt\").read_text()\n    return f\"{{phrases.splitlines()[0]}}, {{name}}\"\n"
    );
    WheelSpec::new("greeter", version, "py3-none-any")
        .file("greeter/__init__.py", init.as_bytes())
        .file(
            "greeter/cli.py",
            b"import sys\n\nfrom greeter import greet\n\n\ndef main():\n    print(greet(sys.argv[1] if len(sys.argv) > 1 else \"you\"))\n",
        )
        .file("greeter/phrases.txt", b"hello\nbonjour\nhallo\n")
        .file("greeter/py.typed", b"")
        .entry_points("[console_scripts]\ngreet = greeter.cli:main\n")
        .requires("tinyfmt>=2.0")
}

/// The wheels the cases install, in one folder.
fn make_wheels(dir: &Path) {
    write_wheel(dir, &greeter("1.0"));
    write_wheel(dir, &greeter("1.1"));
    write_wheel(
        dir,
        &WheelSpec::new("tinyfmt", "2.0", "py3-none-any").file(
            "tinyfmt/__init__.py",
            b"def banner(text):\n    return f\"*** {text} ***\"\n",
        ),
    );
    write_wheel(
        dir,
        &WheelSpec::new("devcheck", "0.9", "py3-none-any")
            .file("devcheck/__init__.py", b"def ok():\n    return True\n"),
    );
}

/// The host's uv binary (scripts/test.sh puts uv on PATH).
fn host_uv() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v uv"])
        .output()
        .expect("sh");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    fs::canonicalize(&p).unwrap_or_else(|e| panic!("uv on PATH ({p:?}): {e}"))
}

/// An image like uv's own: `/uv` and `/uvx` on an empty root, made with
/// umoci from the host's binaries, cached per uv version.
fn uv_image(uv: &Path) -> PathBuf {
    let version = pybase::run(Command::new(uv).arg("--version"));
    let version = version
        .split_whitespace()
        .nth(1)
        .unwrap_or("unknown")
        .to_string();
    pybase::cached_folder(&format!("uv-image-{version}"), "index.json", |dir| {
        let layout = dir.join("layout");
        let image = format!("{}:latest", layout.display());
        let bundle = dir.join("bundle");
        pybase::run(
            Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout),
        );
        pybase::run(Command::new("umoci").args(["new", "--image", &image]));
        pybase::run(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            "amd64",
        ]));
        pybase::run(
            Command::new("umoci")
                .args(["unpack", "--image", &image])
                .arg(&bundle),
        );
        for b in ["uv", "uvx"] {
            let from = uv.with_file_name(b);
            let to = bundle.join("rootfs").join(b);
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        pybase::run(
            Command::new("umoci")
                .args(["repack", "--image", &image])
                .arg(&bundle),
        );
        fs::remove_dir_all(&bundle).expect("rm bundle");
        for e in fs::read_dir(&layout).expect("read layout") {
            let e = e.expect("entry");
            fs::rename(e.path(), dir.join(e.file_name())).expect("move layout entry");
        }
        fs::remove_dir(&layout).expect("rmdir layout");
    })
}

/// Poetry's wheels for the image's Python (3.11, x86_64 glibc), fetched
/// once with the host's pip from its configured index, and a host venv
/// with poetry installed from them (to lock the poetry case). Returns the
/// cached folder: `wheels/` and `venv/` (run as `venv/bin/python -m
/// poetry`: the folder was renamed after the venv was made).
fn poetry_tools() -> PathBuf {
    pybase::cached_folder(&format!("poetry-{POETRY_VERSION}"), "ready", |dir| {
        let venv = dir.join("venv");
        pybase::run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        let py = venv.join("bin/python");
        let mut dl = Command::new(&py);
        dl.args(["-m", "pip", "download", "-q", "--disable-pip-version-check"])
            .args(["--only-binary=:all:", "--python-version", "3.11"])
            .args(["--implementation", "cp"]);
        for p in [
            "manylinux_2_36_x86_64",
            "manylinux_2_34_x86_64",
            "manylinux_2_28_x86_64",
            "manylinux_2_27_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
            "manylinux_2_5_x86_64",
            "manylinux1_x86_64",
        ] {
            dl.args(["--platform", p]);
        }
        dl.arg("--dest")
            .arg(dir.join("wheels"))
            .arg(format!("poetry=={POETRY_VERSION}"));
        pybase::run(&mut dl);
        pybase::run(
            Command::new(&py)
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(["--no-index", "--find-links"])
                .arg(dir.join("wheels"))
                .arg(format!("poetry=={POETRY_VERSION}")),
        );
        fs::write(dir.join("ready"), "").expect("write marker");
    })
}

fn copy_wheels(wheels: &Path, names: &[&str], to: &Path) {
    support::mkdirs(to);
    for n in names {
        fs::copy(wheels.join(n), to.join(n)).unwrap_or_else(|e| panic!("copy {n}: {e}"));
        support::set_mode(&to.join(n), 0o644);
    }
}

const GREETER_10: &str = "greeter-1.0-py3-none-any.whl";
const GREETER_11: &str = "greeter-1.1-py3-none-any.whl";
const TINYFMT: &str = "tinyfmt-2.0-py3-none-any.whl";
const DEVCHECK: &str = "devcheck-0.9-py3-none-any.whl";

/// A `tar` of `files` (path, bytes, mode) below `dir`, compressed by `flag`.
fn tarball(out: &Path, flag: &str, owner: &str, files: &[(&str, &str, u32)], scratch: &Path) {
    for (p, text, mode) in files {
        write_file(scratch, p, text, *mode);
    }
    let top: Vec<String> = files
        .iter()
        .map(|(p, _, _)| p.split('/').next().expect("a path").to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    support::mkdirs(out.parent().expect("a parent"));
    pybase::run(
        Command::new("tar")
            .args(["--sort=name", "--mtime=@1700000000", "--numeric-owner"])
            .arg(format!("--owner={owner}"))
            .arg(format!("--group={owner}"))
            .arg(flag)
            .arg("-cf")
            .arg(out)
            .arg("-C")
            .arg(scratch)
            .args(&top),
    );
}

/// Copies the case's folder into `ctx` (files 0644, or 0755 when
/// executable; folders 0755, whatever the checkout's umask), then adds
/// what the test makes for it.
fn prepare(case: &Case, inputs: &Inputs, ctx: &Path) {
    let src = corpus_dir().join(case.name);
    fn copy_tree(from: &Path, to: &Path) {
        support::mkdirs(to);
        for e in fs::read_dir(from).expect("read corpus dir") {
            let e = e.expect("entry");
            let (s, d) = (e.path(), to.join(e.file_name()));
            if e.file_type().expect("type").is_dir() {
                copy_tree(&s, &d);
            } else {
                fs::copy(&s, &d).unwrap_or_else(|err| panic!("copy {}: {err}", s.display()));
                let exec = fs::metadata(&s).expect("stat").permissions().mode() & 0o111 != 0;
                support::set_mode(&d, if exec { 0o755 } else { 0o644 });
            }
        }
    }
    copy_tree(&src, ctx);
    let w = &inputs.wheels;
    let scratch = ctx.with_extension("scratch");
    match case.name {
        "venv-pip-upgrade" => {
            copy_wheels(w, &[GREETER_10, TINYFMT], &ctx.join("wheels"));
            copy_wheels(w, &[GREETER_11], &ctx.join("wheels-next"));
        }
        "pip-system-cache" => copy_wheels(w, &[GREETER_11, TINYFMT], &ctx.join("wheels")),
        "target-stages" => copy_wheels(w, &[GREETER_11, TINYFMT, DEVCHECK], &ctx.join("wheels")),
        "uv-sync" => {
            copy_wheels(w, &[GREETER_11, TINYFMT, DEVCHECK], &ctx.join("wheels"));
            pybase::run(
                Command::new(&inputs.uv)
                    .args(["lock", "--offline", "--quiet"])
                    .current_dir(ctx)
                    .env("UV_CACHE_DIR", inputs.work.join("uv-cache"))
                    .env("UV_PYTHON_DOWNLOADS", "never")
                    .env_remove("UV_INDEX_URL")
                    .env_remove("UV_DEFAULT_INDEX"),
            );
            support::set_mode(&ctx.join("uv.lock"), 0o644);
        }
        "poetry" => {
            copy_wheels(w, &[GREETER_11, TINYFMT, DEVCHECK], &ctx.join("vendor"));
            let pw = inputs.poetry.join("wheels");
            let names: Vec<String> = fs::read_dir(&pw)
                .expect("poetry wheels")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            copy_wheels(&pw, &refs, &ctx.join("poetry-wheels"));
            pybase::run(
                Command::new(inputs.poetry.join("venv/bin/python"))
                    .args(["-m", "poetry", "lock", "--no-interaction", "--quiet"])
                    .current_dir(ctx)
                    .env("POETRY_CACHE_DIR", inputs.work.join("poetry-cache"))
                    .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring"),
            );
            support::set_mode(&ctx.join("poetry.lock"), 0o644);
        }
        "apt-install-purge" => tarball(
            &ctx.join("vendor/dbtool-1.4.tar.xz"),
            "-J",
            "0",
            &[
                (
                    "dbtool-1.4/bin/dbtool",
                    "#!/bin/sh\n# Schema migrations, the shell way.\ncase \"$1\" in\n--version) echo \"dbtool 1.4\" ;;\n*) echo \"usage: dbtool --version | migrate\" ;;\nesac\n",
                    0o755,
                ),
                (
                    "dbtool-1.4/share/schema.sql",
                    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);\n",
                    0o644,
                ),
            ],
            &scratch,
        ),
        "workdir-dockerignore-add" => {
            tarball(
                &ctx.join("vendor/static-assets.tar.gz"),
                "-z",
                "1000",
                &[
                    ("css/site.css", "body { margin: 0 }\n", 0o644),
                    ("js/app.js", "console.log('ready');\n", 0o644),
                ],
                &scratch,
            );
            write(ctx, ".git/HEAD", "ref: refs/heads/main\n");
            write(ctx, ".git/config", "[core]\n\tbare = false\n");
            write_file(
                ctx,
                "webapp/__pycache__/app.cpython-311.pyc",
                [0u8, 1, 2, 3],
                0o644,
            );
            write(ctx, "debug.log", "local run\n");
            write(
                ctx,
                "webapp/server.log",
                "kept: only root-level logs are ignored\n",
            );
            write(ctx, ".venv/pyvenv.cfg", "home = /usr/bin\n");
        }
        _ => {}
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dockerfile-corpus")
}

// ---------------------------------------------------------------------------
// Building and comparing
// ---------------------------------------------------------------------------

/// One row of the results table.
#[derive(Default)]
struct Row {
    name: String,
    imgbuild: String,
    imgbuild_secs: f64,
    buildah: String,
    buildah_secs: f64,
    /// Accepted differences that occurred: (label, class, examples).
    accepted: Vec<(String, String, Vec<String>)>,
    /// Known imgbuild defects that showed.
    known: Vec<String>,
    /// Anything that makes the case fail.
    failures: Vec<String>,
}

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

fn run_case(case: &Case, inputs: &Inputs, buildah: &Buildah, store: &Path) -> Row {
    let mut row = Row {
        name: case.name.to_string(),
        ..Row::default()
    };
    let dir = inputs.work.join(case.name);
    let ctx = dir.join("ctx");
    if let Err(e) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare(case, inputs, &ctx)))
    {
        row.failures
            .push(format!("preparing the context: {}", panic_text(e)));
        return row;
    }
    let dockerfile = ctx.join("Dockerfile");
    let mut args: Vec<String> = vec![
        format!("BASE=oci:{}:latest", inputs.base.layout.display()),
        format!("UV_IMAGE=oci:{}:latest", inputs.uv_image.display()),
    ];
    args.extend(case.args.iter().map(|a| a.to_string()));
    let mut flags: Vec<String> = args
        .iter()
        .flat_map(|a| ["--build-arg".to_string(), a.clone()])
        .collect();
    if let Some(t) = case.target {
        flags.extend(["--target".to_string(), t.to_string()]);
    }

    // imgbuild
    let ours = dir.join("imgbuild-out");
    let t0 = Instant::now();
    let r = support::ib(&["build", "-f"])
        .path_arg(&dockerfile)
        .path_arg(&ctx)
        .args(&flags)
        .cache(store)
        .oci_out(&ours)
        .json()
        .arg("-q")
        .run();
    row.imgbuild_secs = t0.elapsed().as_secs_f64();
    let ours_ok = r.code == 0;
    row.imgbuild = if ours_ok { "ok".into() } else { "FAIL".into() };
    if !ours_ok {
        let msg = serde_json::from_str::<Value>(&r.stdout)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(String::from))
            .unwrap_or_else(|| {
                r.stderr
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        row.failures
            .push(format!("imgbuild failed (exit {}): {msg}", r.code));
    }

    // buildah
    let theirs = dir.join("buildah-out");
    let mut bflags = flags.clone();
    let mut bdockerfile = dockerfile.clone();
    match &case.buildah {
        ForBuildah::Same | ForBuildah::Unsupported(_) => {}
        ForBuildah::ParentArgs(extra) => {
            for a in *extra {
                bflags.extend(["--build-arg".to_string(), a.to_string()]);
            }
        }
        ForBuildah::AbsoluteMountTargets => {
            let text = fs::read_to_string(&dockerfile).expect("read Dockerfile");
            bdockerfile = dir.join("Dockerfile.buildah");
            fs::write(&bdockerfile, absolute_mount_targets(&text)).expect("write");
        }
        ForBuildah::Rewritten(edits) => {
            let mut text = fs::read_to_string(&dockerfile).expect("read Dockerfile");
            for (from, to) in *edits {
                assert!(text.contains(from), "{}: no {from:?} to rewrite", case.name);
                text = text.replace(from, to);
            }
            bdockerfile = dir.join("Dockerfile.buildah");
            fs::write(&bdockerfile, text).expect("write");
        }
    }
    let t0 = Instant::now();
    let tag = format!("corpus-{}", case.name);
    let b = buildah.build_oci(&bdockerfile, &ctx, &bflags, &tag, &theirs);
    row.buildah_secs = t0.elapsed().as_secs_f64();
    let theirs_ok = match (&case.buildah, &b) {
        (ForBuildah::Unsupported(want), Err(e)) => {
            if e.contains(want) {
                row.buildah = "unsupported (expected)".into();
            } else {
                row.buildah = "FAIL".into();
                row.failures.push(format!(
                    "buildah failed, but not with {want:?} as expected: {e}"
                ));
            }
            false
        }
        (ForBuildah::Unsupported(want), Ok(())) => {
            row.buildah = "ok (unexpected)".into();
            row.failures.push(format!(
                "buildah built a case it was expected to refuse ({want:?}): drop ForBuildah::Unsupported"
            ));
            false
        }
        (_, Ok(())) => {
            row.buildah = "ok".into();
            true
        }
        (_, Err(e)) => {
            row.buildah = "FAIL".into();
            row.failures.push(e.clone());
            false
        }
    };

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut failures = Vec::new();
        let mut accepted = Vec::new();
        let ours_tree = ours_ok.then(|| image_tree(&ours, "latest"));
        let theirs_tree = theirs_ok.then(|| image_tree(&theirs, "latest"));
        let ours_cfg = ours_ok.then(|| image_config(&ours, "latest"));
        let theirs_cfg = theirs_ok.then(|| buildah.docker_config(&tag));
        if let (Some(a), Some(b), Some(ca), Some(cb)) =
            (&ours_tree, &theirs_tree, &ours_cfg, &theirs_cfg)
        {
            let text = fs::read_to_string(&bdockerfile).expect("read Dockerfile");
            compare(
                case,
                &mount_targets(&text),
                &inputs.base,
                a,
                b,
                ca,
                cb,
                &mut accepted,
                &mut failures,
            );
        }
        for (builder, tree, cfg, layout) in [
            ("imgbuild", &ours_tree, &ours_cfg, &ours),
            ("buildah", &theirs_tree, &theirs_cfg, &theirs),
        ] {
            let (Some(tree), Some(cfg)) = (tree, cfg) else {
                continue;
            };
            let ids = support::buildah::diff_ids(layout, "latest");
            if !ids.starts_with(&inputs.base.diff_ids) {
                failures.push(format!(
                    "{builder}: the image does not start with the base's layer"
                ));
                continue;
            }
            let mount = mount_image(tree, &inputs.base, &dir.join(format!("{builder}-root")));
            let img = Image {
                builder,
                tree,
                config: cfg,
                root: &mount.merged,
            };
            if let Err(e) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.check)(&img)))
            {
                failures.push(format!("{builder}'s image: {}", panic_text(e)));
            }
            // Not on buildah's: its COPY --from rounds mtimes to the
            // nearest second, so about half the .pyc files copied from a
            // stage look stale there (BuildKit truncates, as Python does).
            if builder == "imgbuild" {
                failures.extend(stale_bytecode(builder, tree, &inputs.base.tree));
            }
        }
        (accepted, failures)
    }));
    match outcome {
        Ok((accepted, failures)) => {
            row.accepted = accepted;
            row.failures.extend(failures);
        }
        Err(e) => row.failures.push(format!("comparing: {}", panic_text(e))),
    }
    // Known defects: expected until fixed, then their mark must go.
    for d in case.known_defects {
        let before = row.failures.len();
        row.failures.retain(|f| !f.contains(d.shows_as));
        if row.failures.len() == before {
            row.failures.push(format!(
                "the known imgbuild defect \"{}\" no longer shows: remove it from the case",
                d.id
            ));
        } else {
            row.known.push(d.id.to_string());
        }
    }
    row
}

/// Timestamp-based .pyc files an image's own layers added whose recorded
/// source mtime is not their source's mtime in the image: Python rejects
/// them and compiles the module again on every start (docker keeps the
/// mtimes RUN steps leave, so such files stay valid there).
fn stale_bytecode(builder: &str, tree: &ImageTree, base: &ImageTree) -> Vec<String> {
    let mut stale = Vec::new();
    for (p, n) in tree {
        let Some(data) = n.data() else { continue };
        if !p.ends_with(".pyc") || base.get(p) == Some(n) || data.len() < 16 || data[4..8] != [0; 4]
        {
            continue;
        }
        let Some((dir, file)) = p.rsplit_once("/__pycache__/") else {
            continue;
        };
        let module = file.split('.').next().unwrap_or_default();
        let Some(src) = tree.get(&format!("{dir}/{module}.py")) else {
            continue;
        };
        let recorded = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        if u64::from(recorded) != src.mtime & 0xffff_ffff {
            stale.push(p.clone());
        }
    }
    if stale.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{builder}: stale bytecode: {} timestamp-based .pyc file(s) record a source mtime their source does not have in the image (e.g. /{})",
        stale.len(),
        stale[0]
    )]
}

type Accepted = Vec<(String, String, Vec<String>)>;

/// Whether the code objects of .pyc pairs (bytes after the 16-byte
/// header) are equal, asked of the base's own python3 in a chroot:
/// `marshal` output can differ between two compilations of the same source
/// (its reference flags follow reference counts) while the code is the same.
fn same_code(base: &Base, pairs: &[(&[u8], &[u8])]) -> Vec<bool> {
    use std::io::Write;
    const SCRIPT: &str = "import marshal, struct, sys\n\
        r = sys.stdin.buffer\n\
        def read():\n    (n,) = struct.unpack('<Q', r.read(8))\n    return r.read(n)\n\
        for _ in range(int(sys.argv[1])):\n    a, b = read(), read()\n    \
        print(int(marshal.loads(a[16:]) == marshal.loads(b[16:])))\n";
    let mut child = Command::new("chroot")
        .arg(&base.root)
        .args(["/usr/bin/python3", "-c", SCRIPT])
        .arg(pairs.len().to_string())
        .env_clear()
        .env("PATH", pybase::BASE_PATH_ENV.trim_start_matches("PATH="))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python3 in the base");
    {
        let mut w = child.stdin.take().expect("stdin");
        for (a, b) in pairs {
            for x in [a, b] {
                w.write_all(&(x.len() as u64).to_le_bytes()).expect("write");
                w.write_all(x).expect("write");
            }
        }
    }
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "comparing bytecode failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l == "1")
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn compare(
    case: &Case,
    targets: &[String],
    base: &Base,
    ours: &ImageTree,
    theirs: &ImageTree,
    ours_cfg: &Value,
    theirs_cfg: &Value,
    accepted: &mut Accepted,
    failures: &mut Vec<String>,
) {
    let accepts: Vec<&Accept> = case.accepted.iter().chain(EVERY_CASE).collect();
    let mut seen: BTreeMap<&'static str, (String, Vec<String>)> = BTreeMap::new();
    let mut accept = |a: &Accept, what: String| {
        seen.entry(a.label())
            .or_insert_with(|| (a.class().to_string(), Vec::new()))
            .1
            .push(what)
    };
    let mut unexplained = Vec::new();
    // Bytecode whose header differs only in the mtime but whose bytes
    // differ too: equal if its code is.
    let mut recompiled: Vec<Difference> = Vec::new();
    let pyc_accepted = accepts.iter().any(|a| matches!(a, Accept::PycTimestamps));
    for d in tree_differences(ours, theirs) {
        if let Some(a) = accepts.iter().find(|a| a.covers(&d, targets)) {
            accept(a, d.path.clone());
            continue;
        }
        let headers = match (
            d.ours.as_ref().and_then(Node::data),
            d.theirs.as_ref().and_then(Node::data),
        ) {
            (Some(x), Some(y)) => same_pyc_header(x, y),
            _ => false,
        };
        let owners = d.ours.as_ref().map(|n| (n.mode, n.uid, n.gid))
            == d.theirs.as_ref().map(|n| (n.mode, n.uid, n.gid));
        if pyc_accepted && d.path.ends_with(".pyc") && headers && owners {
            recompiled.push(d);
        } else {
            unexplained.push(d.to_string());
        }
    }
    if !recompiled.is_empty() {
        let pairs: Vec<(&[u8], &[u8])> = recompiled
            .iter()
            .map(|d| {
                (
                    d.ours.as_ref().and_then(Node::data).expect("a file"),
                    d.theirs.as_ref().and_then(Node::data).expect("a file"),
                )
            })
            .collect();
        let same = same_code(base, &pairs);
        for (d, same) in recompiled
            .iter()
            .zip(same.iter().chain(std::iter::repeat(&false)))
        {
            if *same {
                accept(&Accept::PycTimestamps, d.path.clone());
            } else {
                unexplained.push(format!("{d} (other code)"));
            }
        }
    }
    let (env_a, env_b) = (env_list(ours_cfg), env_list(theirs_cfg));
    if env_a != env_b {
        let (mut sa, mut sb) = (env_a.clone(), env_b.clone());
        sa.sort();
        sb.sort();
        if sa == sb && accepts.iter().any(|a| matches!(a, Accept::EnvOrder)) {
            accept(&Accept::EnvOrder, "Env".into());
        } else {
            unexplained.push(format!("config Env: imgbuild {env_a:?}, buildah {env_b:?}"));
        }
    }
    for (f, a, b) in config_differences(ours_cfg, theirs_cfg) {
        unexplained.push(format!("config {f}: imgbuild {a}, buildah {b}"));
    }
    for (label, (class, paths)) in seen {
        accepted.push((label.to_string(), class, paths));
    }
    if !unexplained.is_empty() {
        let n = unexplained.len();
        unexplained.truncate(40);
        failures.push(format!(
            "{n} difference(s) between imgbuild's and buildah's images:\n  {}",
            unexplained.join("\n  ")
        ));
    }
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| Dockerfile | imgbuild | s | buildah | s | differences (class) | result |\n|---|---|---:|---|---:|---|---|\n",
    );
    for r in rows {
        let mut diffs: Vec<String> = r
            .accepted
            .iter()
            .map(|(l, c, p)| format!("{l}: {} path(s) ({c})", p.len()))
            .collect();
        diffs.extend(
            r.known
                .iter()
                .map(|k| format!("{k} (imgbuild defect, known)")),
        );
        let diffs = if diffs.is_empty() {
            "none".to_string()
        } else {
            diffs.join("; ")
        };
        let result = if !r.failures.is_empty() {
            format!("FAIL ({})", r.failures.len())
        } else if !r.known.is_empty() {
            "pass (known defect)".to_string()
        } else {
            "pass".to_string()
        };
        s.push_str(&format!(
            "| {} | {} | {:.1} | {} | {:.1} | {} | {} |\n",
            r.name, r.imgbuild, r.imgbuild_secs, r.buildah, r.buildah_secs, diffs, result
        ));
    }
    s
}

fn details(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        for (l, c, paths) in &r.accepted {
            let shown: Vec<&String> = paths.iter().take(6).collect();
            s.push_str(&format!(
                "- {}: accepted {l} ({c}): {}{}\n",
                r.name,
                shown
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if paths.len() > 6 { ", …" } else { "" }
            ));
        }
        for k in &r.known {
            s.push_str(&format!("- {}: known imgbuild defect: {k}\n", r.name));
        }
        for f in &r.failures {
            s.push_str(&format!(
                "- {}: **failure**: {}\n",
                r.name,
                f.replace('\n', "\n  ")
            ));
        }
    }
    s
}

/// Every corpus Dockerfile built by imgbuild and by buildah: the same
/// trees and configs but for each case's accepted differences, and the
/// checks of what each image must do.
#[test]
fn corpus_builds_like_buildah() {
    let test = "corpus_builds_like_buildah";
    if !python_tools_present(test) || !buildah_present() {
        return;
    }
    assert!(
        is_root(),
        "{test}: run the tests as root (buildah, chroot, overlay mounts)"
    );
    let started = Instant::now();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "corpus-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis()
    ));
    let work_dir = WorkDir::new(work);
    let work = work_dir.path.clone();
    let base_layout = lowercase_path(&debian_corpus_base());
    let uv = host_uv();
    let uv_image = lowercase_path(&uv_image(&uv));
    let wheels = work.join("wheels");
    make_wheels(&wheels);
    let inputs = Arc::new(Inputs {
        base: unpack_base(&base_layout, &work),
        uv_image,
        wheels,
        uv,
        poetry: poetry_tools(),
        work: work.clone(),
    });
    let buildah = Arc::new(Buildah::new(&work.join("buildah")));
    let store = work.join("store");
    // IMGBUILD_CORPUS_CASES=a,b builds only those cases (a quicker check
    // while working on one).
    let only: Option<Vec<String>> = std::env::var("IMGBUILD_CORPUS_CASES")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
        .collect();
    let cases = Arc::new(cases);
    let next = Arc::new(AtomicUsize::new(0));
    let rows: Arc<Mutex<Vec<(usize, Row)>>> = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (inputs, buildah, cases, next, rows, store) = (
                inputs.clone(),
                buildah.clone(),
                cases.clone(),
                next.clone(),
                rows.clone(),
                store.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    eprintln!("corpus: building {} ...", case.name);
                    let row = run_case(case, &inputs, &buildah, &store);
                    eprintln!(
                        "corpus: {} imgbuild {} ({:.1} s), buildah {} ({:.1} s), {} failure(s)",
                        row.name,
                        row.imgbuild,
                        row.imgbuild_secs,
                        row.buildah,
                        row.buildah_secs,
                        row.failures.len()
                    );
                    rows.lock().expect("rows").push((i, row));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let mut rows = std::mem::take(&mut *rows.lock().expect("rows"));
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    let report = format!(
        "# Dockerfile corpus: imgbuild vs buildah\n\nbuildah {} (vfs, chroot isolation), two cases at a time on {} cores, \
         both building in {}; imgbuild's seconds include writing the OCI layout, buildah's are `bud` plus `push oci:`. \
         Total {:.0} s.\n\n{}\n{}",
        buildah_version(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if work_dir.tmpfs {
            "a tmpfs"
        } else {
            "a folder on disk"
        },
        started.elapsed().as_secs_f64(),
        table(&rows),
        details(&rows)
    );
    eprintln!("\n{report}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("dockerfile-corpus-results.md");
    fs::write(&out, &report).expect("write the results");
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| r.name.clone())
        .collect();
    assert!(
        failed.is_empty(),
        "cases with differences or failures not accepted: {failed:?} (see above and {})",
        out.display()
    );
}

/// The test's work folder. Both builders write ~3.5 GB in ~350,000 files
/// (buildah's vfs copies of the root, imgbuild's store), which takes
/// minutes to delete from these machines' disks: the folder is a tmpfs
/// mounted for the test and unmounted after it (a plain folder where it
/// cannot be mounted). `IMGBUILD_CORPUS_KEEP=1` keeps a plain folder for
/// inspection.
struct WorkDir {
    path: PathBuf,
    tmpfs: bool,
    keep: bool,
}

impl WorkDir {
    fn new(path: PathBuf) -> WorkDir {
        remove_stale_work_dirs(path.parent().expect("a parent"));
        fs::create_dir_all(&path).expect("mkdir work");
        let keep = std::env::var_os("IMGBUILD_CORPUS_KEEP").is_some();
        let tmpfs = !keep
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=12g,mode=0755", "corpus"])
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
        if !tmpfs && !keep {
            eprintln!("corpus: no tmpfs for {}: working on disk", path.display());
        }
        WorkDir { path, tmpfs, keep }
    }
}

/// Work folders (`corpus-PID-…`) of runs whose process is gone (killed
/// before it could unmount and remove them).
fn remove_stale_work_dirs(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("corpus-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = Command::new("umount").arg("--lazy").arg(e.path()).status();
        let _ = fs::remove_dir_all(e.path());
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("corpus: kept {}", self.path.display());
            return;
        }
        if self.tmpfs {
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(&self.path)
                .status();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn buildah_version() -> String {
    let out = Command::new("buildah")
        .arg("--version")
        .output()
        .expect("buildah");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or("?")
        .to_string()
}

/// The mount targets the mount-target stubs are accepted at: absolute,
/// relative ones joined to the stage's WORKDIR, each once.
#[test]
fn mount_targets_are_where_run_steps_mount() {
    let text = "FROM base AS a\nWORKDIR /app\n\
                RUN --mount=type=cache,target=/root/.cache/uv \\\n\
                \x20   --mount=type=bind,source=uv.lock,target=uv.lock true\n\
                FROM a\n\
                RUN --mount=type=bind,source=w,dst=/tmp/wheels/ --mount=type=cache,target=/root/.cache/uv true\n";
    assert_eq!(
        mount_targets(text),
        ["root/.cache/uv", "app/uv.lock", "tmp/wheels"]
    );
}

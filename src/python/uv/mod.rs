//! uv, the resolver and builder the Python layers lean on: finding it (or
//! installing it into the store from a package index, without Python),
//! resolving requirement lists into a `uv.lock`, building wheels from source
//! trees and sdists, and a native check of whether a project's `uv.lock`
//! still matches its `pyproject.toml`.
//!
//! Index locations always come from configuration (the request, `uv`'s and
//! pip's environment variables and config files, or the host pip's built-in
//! default); credentials in index URLs never appear in messages.
//!
//! One job per file: this one finds uv ([`ensure`], [`describe`]);
//! [`config`] reads the configured default index; [`index`] reads a simple
//! index's project page (its HTML through [`html`]) and picks uv's wheel;
//! [`install`] puts that wheel's uv into the store; [`run`] runs uv and words
//! its failures; [`resolve`] locks requirement lists; [`requirements`] reads
//! pip requirements files; [`build`] builds wheels; [`stale`] checks a
//! `uv.lock` against its `pyproject.toml`.

use crate::error::{Error, Result};
use crate::python::pep440::Version;
use crate::store::Store;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod build;
mod config;
mod html;
mod index;
mod install;
mod requirements;
mod resolve;
mod run;
mod stale;
#[cfg(test)]
mod testutil;

pub use build::{build_project_wheel, build_sdist_wheel, relock};
pub use install::install_into_store;
pub use requirements::parse_requirements_file;
pub use resolve::{ResolveRequest, lock_location, lock_requirements};
pub use stale::lock_staleness;

/// Hooks for the fuzz targets (`crate::fuzzing`).
#[doc(hidden)]
pub mod fuzzing {
    /// A package index project page, parsed as the resolver reads it.
    pub fn simple_page(body: &[u8]) {
        let _ = super::index::parse_simple_page(body, "https://index.example/simple/p/");
    }
}

use run::{output_retrying, tail};

/// Looks up one environment variable. The uv code reads the process
/// environment only through one of these: each public entry point passes
/// [`process_env`] down to the steps that need a variable (`IMGBUILD_UV`,
/// `PATH`, the index and pip config-file variables, the resolution variables,
/// a requirements file's `${VAR}`s, `SOURCE_DATE_EPOCH`), and tests pass
/// their own.
type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// This process's environment: the one place the uv code reads it.
fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// `name`'s value when it is set and Unicode, as `std::env::var(name).ok()`.
fn env_var(env: Env<'_>, name: &str) -> Option<String> {
    env(name)?.into_string().ok()
}

/// Where the uv in use was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvOrigin {
    /// `$IMGBUILD_UV`.
    Env,
    /// `uv` on `PATH`.
    Path,
    /// A copy installed into the store (`<store>/tools/uv-<version>/uv`).
    Store,
}

impl UvOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            UvOrigin::Env => "IMGBUILD_UV",
            UvOrigin::Path => "PATH",
            UvOrigin::Store => "store",
        }
    }
}

/// A uv executable that answered `--version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uv {
    pub exe: PathBuf,
    /// E.g. `0.13.9`.
    pub version: String,
    pub origin: UvOrigin,
}

/// The search behind [`find`], with the environment passed in. An error means
/// `IMGBUILD_UV` is set but unusable: an explicit choice is never skipped.
pub(super) fn locate(
    store_root: &Path,
    env_uv: Option<OsString>,
    path: Option<OsString>,
) -> Result<Option<Uv>> {
    if let Some(v) = env_uv.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        let exe = if p.components().count() == 1 && !p.is_absolute() {
            search_path(path.as_deref(), &v.to_string_lossy()).unwrap_or(p)
        } else {
            p
        };
        return probe(&exe, UvOrigin::Env)
            .map(Some)
            .map_err(|e| Error::Usage(format!("IMGBUILD_UV={}: {e}", exe.display())));
    }
    if let Some(exe) = search_path(path.as_deref(), "uv")
        && let Ok(uv) = probe(&exe, UvOrigin::Path)
    {
        return Ok(Some(uv));
    }
    for (_, exe) in store_copies(store_root) {
        if let Ok(uv) = probe(&exe, UvOrigin::Store) {
            return Ok(Some(uv));
        }
    }
    Ok(None)
}

pub(super) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn search_path(path: Option<&std::ffi::OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Copies installed into the store, newest first.
fn store_copies(store_root: &Path) -> Vec<(Version, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(store_root.join("tools")) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(v) = name.to_str().and_then(|n| n.strip_prefix("uv-")) else {
            continue;
        };
        let Ok(version) = Version::parse(v) else {
            continue;
        };
        let exe = e.path().join("uv");
        if is_executable(&exe) {
            out.push((version, exe));
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out
}

/// Runs `EXE --version` and reads the version from `uv 0.13.9 (…)`.
pub(super) fn probe(exe: &Path, origin: UvOrigin) -> Result<Uv> {
    let out = output_retrying(Command::new(exe).arg("--version").stdin(Stdio::null()))
        .map_err(|e| Error::Other(format!("cannot run it: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error::Other(format!(
            "`--version` failed ({}): {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 5)
        )));
    }
    let version = parse_version_output(&text).ok_or_else(|| {
        Error::Other(format!(
            "`--version` printed {:?}, not `uv <version>`",
            text.trim()
        ))
    })?;
    Ok(Uv {
        exe: exe.to_path_buf(),
        version,
        origin,
    })
}

fn parse_version_output(s: &str) -> Option<String> {
    let mut words = s.split_whitespace();
    if words.next()? != "uv" {
        return None;
    }
    let v = words.next()?;
    Version::parse(v).ok()?;
    Some(v.to_string())
}

/// The uv to use, installing it into the store from `index` (or the
/// configured default index) when none is found.
pub fn ensure(store: &Store, index: Option<&str>) -> Result<Uv> {
    let env: Env<'_> = &process_env;
    if let Some(uv) = locate(store.root(), env("IMGBUILD_UV"), env("PATH"))? {
        return Ok(uv);
    }
    let index = match index {
        Some(i) => Some(i.to_string()),
        None => config::index_source(env).map(|(url, _)| url),
    };
    let how = "install uv and put it on PATH, set IMGBUILD_UV to its path, or set \
               UV_DEFAULT_INDEX to a package index URL so imgbuild can install uv into its store";
    match index {
        Some(index) => install_into_store(store, &index).map_err(|e| {
            Error::Other(format!(
                "uv is needed for this build and was not found (no IMGBUILD_UV, no `uv` on PATH, \
                 none in {}); installing it from {} failed: {e}. To fix: {how}",
                store.root().join("tools").display(),
                crate::net::redact(&index)
            ))
        }),
        None => Err(Error::Other(format!(
            "uv is needed for this build and was not found (no IMGBUILD_UV, no `uv` on PATH, \
             none in {}), and no package index is configured to install it from. To fix: {how}",
            store.root().join("tools").display()
        ))),
    }
}

/// uv and the package index as this machine is set up, for `doctor`-style
/// reports (index credentials removed).
pub fn describe(store: &Store) -> serde_json::Value {
    let env: Env<'_> = &process_env;
    let found = locate(store.root(), env("IMGBUILD_UV"), env("PATH"));
    let uv = match found {
        Ok(Some(uv)) => serde_json::json!({
            "found": true,
            "path": uv.exe.display().to_string(),
            "version": uv.version,
            "origin": uv.origin.as_str(),
        }),
        Ok(None) => serde_json::json!({
            "found": false,
            "hint": "install uv on PATH, set IMGBUILD_UV, or configure an index (UV_DEFAULT_INDEX) \
                     so imgbuild installs it into its store",
        }),
        Err(e) => serde_json::json!({ "found": false, "error": e.to_string() }),
    };
    let index = match config::index_source(env) {
        Some((url, via)) => serde_json::json!({
            "url": crate::net::redact(&url),
            "configured_via": via,
        }),
        None => serde_json::Value::Null,
    };
    serde_json::json!({
        "uv": uv,
        "default_index": index,
        "tools_dir": store.root().join("tools").display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn version_output() {
        assert_eq!(
            parse_version_output("uv 0.13.9 (1a2b3c 2025-01-01)\n").as_deref(),
            Some("0.13.9")
        );
        assert_eq!(parse_version_output("uv 0.5.0").as_deref(), Some("0.5.0"));
        assert_eq!(parse_version_output("uvx 0.5.0"), None);
        assert_eq!(parse_version_output("uv"), None);
        assert_eq!(parse_version_output("uv not-a-version"), None);
    }

    #[test]
    fn locate_prefers_env_then_path_then_newest_store_copy() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        for v in ["0.4.2", "0.10.1", "0.9.9"] {
            write_exe(&root.join(format!("tools/uv-{v}/uv")), &version_script(v));
        }
        // Not versions, or not executable: ignored.
        write_exe(&root.join("tools/.tmp-uv-x/uv"), &version_script("9.9.9"));
        std::fs::create_dir_all(root.join("tools/uv-11.0.0")).unwrap();
        let none = Some(OsString::new());
        let uv = locate(&root, None, none.clone()).unwrap().unwrap();
        assert_eq!(uv.version, "0.10.1");
        assert_eq!(uv.origin, UvOrigin::Store);
        assert_eq!(uv.exe, root.join("tools/uv-0.10.1/uv"));

        let bin = dir.path().join("bin");
        write_exe(&bin.join("uv"), &version_script("0.13.9"));
        let path = Some(OsString::from(format!("/nonexistent:{}", bin.display())));
        let uv = locate(&root, None, path.clone()).unwrap().unwrap();
        assert_eq!((uv.version.as_str(), uv.origin), ("0.13.9", UvOrigin::Path));

        let chosen = dir.path().join("chosen/uv-custom");
        write_exe(&chosen, &version_script("0.1.0"));
        let uv = locate(&root, Some(chosen.clone().into()), path.clone())
            .unwrap()
            .unwrap();
        assert_eq!((uv.version.as_str(), uv.origin), ("0.1.0", UvOrigin::Env));

        // An explicit IMGBUILD_UV that does not work is an error, never skipped.
        let e = locate(&root, Some(dir.path().join("missing").into()), path).unwrap_err();
        assert!(e.to_string().starts_with("IMGBUILD_UV="), "{e}");
        let broken = dir.path().join("broken");
        write_exe(&broken, "#!/bin/sh\necho oops >&2\nexit 3\n");
        let e = locate(&root, Some(broken.into()), none.clone()).unwrap_err();
        assert!(e.to_string().contains("oops"), "{e}");

        // Nothing anywhere.
        let empty = dir.path().join("empty");
        assert_eq!(locate(&empty, None, none).unwrap(), None);
    }

    #[test]
    fn describe_reports_uv_and_the_index() {
        let (_d, store) = new_store();
        let v = describe(&store);
        assert!(v["uv"]["found"].is_boolean(), "{v}");
        assert!(v["tools_dir"].as_str().unwrap().ends_with("tools"));
        if let Some(url) = v["default_index"]["url"].as_str() {
            assert!(!url.contains('@'), "{url}");
            assert!(v["default_index"]["configured_via"].is_string());
        }
    }
}

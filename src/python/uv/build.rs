//! Building wheels with uv: a project's (in a build environment kept in the
//! store) and an sdist's (pure Python only).

use super::run::{failure, run_uv, uv_command};
use super::{Env, Uv, process_env};
use crate::digest::KeyHasher;
use crate::error::{Error, IoContext, Result};
use crate::python::tags::WheelName;
use crate::store::Store;
use std::path::{Path, PathBuf};

/// Runs `uv build --wheel` for `source` (a project folder or an sdist) into a
/// fresh folder next to `out_dir`'s wheels and moves the one wheel it made
/// into `out_dir`.
fn uv_build(
    uv: &Uv,
    source: &Path,
    out_dir: &Path,
    index: Option<&str>,
    env: Env<'_>,
    what: &dyn Fn() -> String,
) -> Result<PathBuf> {
    uv_build_with(uv, source, out_dir, index, None, env, what)
}

/// `uv build --wheel`, isolated, or with `python` (a prepared build
/// environment) and `--no-build-isolation`.
fn uv_build_with(
    uv: &Uv,
    source: &Path,
    out_dir: &Path,
    index: Option<&str>,
    python: Option<&Path>,
    env: Env<'_>,
    what: &dyn Fn() -> String,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir).ctx(|| format!("creating {}", out_dir.display()))?;
    let fresh = tempfile::Builder::new()
        .prefix(".uv-build-")
        .tempdir_in(out_dir)
        .ctx(|| format!("creating a temp folder in {}", out_dir.display()))?;
    let source_abs = std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf());
    let cwd = if source_abs.is_dir() {
        source_abs.clone()
    } else {
        source_abs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    };
    let mut cmd = uv_command(uv, &cwd);
    cmd.args(["build", "--wheel", "--color", "never", "--out-dir"])
        .arg(fresh.path());
    if let Some(i) = index {
        cmd.args(["--default-index", i]);
    }
    if let Some(py) = python {
        cmd.arg("--no-build-isolation").arg("--python").arg(py);
    }
    cmd.arg(&source_abs);
    if let Some(epoch) = env("SOURCE_DATE_EPOCH") {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    let out = run_uv(cmd, what)?;
    if !out.status.success() {
        return Err(failure(&what(), &out, false));
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(fresh.path())
        .ctx(|| format!("listing {}", fresh.path().display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    let [wheel] = wheels.as_slice() else {
        return Err(Error::Other(format!(
            "{}: uv build made {} wheels, expected one",
            what(),
            wheels.len()
        )));
    };
    let dest = out_dir.join(wheel.file_name().expect("a file name"));
    std::fs::rename(wheel, &dest).ctx(|| format!("moving the wheel to {}", dest.display()))?;
    Ok(dest)
}

#[cfg(test)]
/// Builds the project in `project_dir` into a wheel in `out_dir` and returns
/// its path. `SOURCE_DATE_EPOCH` is passed to the build.
pub fn build_wheel(
    uv: &Uv,
    project_dir: &Path,
    out_dir: &Path,
    index: Option<&str>,
) -> Result<PathBuf> {
    uv_build(uv, project_dir, out_dir, index, &process_env, &|| {
        format!("building a wheel of {}", project_dir.display())
    })
}

/// Builds the project's wheel like [`build_wheel`], in a build environment
/// made once per `[build-system] requires` and kept in the store: an isolated
/// build spends most of its time making that environment, so a rebuild after
/// a source change takes a fraction of the time. Projects without a
/// `[build-system]` table are built isolated.
pub fn build_project_wheel(
    uv: &Uv,
    store: &Store,
    project_dir: &Path,
    out_dir: &Path,
    index: Option<&str>,
) -> Result<PathBuf> {
    let what = || format!("building a wheel of {}", project_dir.display());
    let requires = std::fs::read_to_string(project_dir.join("pyproject.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|doc| {
            let bs = doc.get("build-system")?.as_table()?;
            bs.get("build-backend")?;
            let reqs = bs.get("requires")?.as_array()?;
            reqs.iter()
                .map(|r| r.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
        });
    let Some(mut requires) = requires else {
        return uv_build(uv, project_dir, out_dir, index, &process_env, &what);
    };
    requires.sort();
    let python = build_env(uv, store, &requires, index)?;
    uv_build_with(
        uv,
        project_dir,
        out_dir,
        index,
        Some(&python),
        &process_env,
        &what,
    )
}

/// The interpreter of a build environment holding `requires`, made on first use.
fn build_env(uv: &Uv, store: &Store, requires: &[String], index: Option<&str>) -> Result<PathBuf> {
    let mut k = KeyHasher::new("pybuildenv", 1);
    k.str(&uv.version).strs(requires).opt_str(index);
    let dir = store.root().join("buildenv").join(&k.finish().hex()[..32]);
    let python = dir.join("bin").join("python");
    let ready = dir.join(".imgbuild-ready");
    if ready.is_file() {
        return Ok(python);
    }
    let _lock = store.lock_named(&dir)?;
    if ready.is_file() {
        return Ok(python);
    }
    let what = || format!("making a build environment for {}", requires.join(", "));
    let _ = std::fs::remove_dir_all(&dir);
    let cwd = store.root().to_path_buf();
    let mut venv = uv_command(uv, &cwd);
    venv.args(["venv", "--quiet", "--color", "never"]).arg(&dir);
    let out = run_uv(venv, &what)?;
    if !out.status.success() {
        return Err(failure(&what(), &out, false));
    }
    if !requires.is_empty() {
        let mut install = uv_command(uv, &cwd);
        install
            .args(["pip", "install", "--quiet", "--color", "never", "--python"])
            .arg(&python);
        if let Some(i) = index {
            install.args(["--default-index", i]);
        }
        install.args(requires);
        let out = run_uv(install, &what)?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(failure(&what(), &out, false));
        }
    }
    std::fs::write(&ready, b"").ctx(|| format!("writing {}", ready.display()))?;
    Ok(python)
}

/// Builds a wheel from `package`'s sdist. Only a pure-Python wheel is
/// accepted: one built for this machine says nothing about the image's.
pub fn build_sdist_wheel(
    uv: &Uv,
    sdist: &Path,
    out_dir: &Path,
    index: Option<&str>,
    package: &str,
) -> Result<PathBuf> {
    let wheel = uv_build(uv, sdist, out_dir, index, &process_env, &|| {
        format!(
            "building a wheel of {package} from its source ({})",
            sdist.display()
        )
    })?;
    let filename = wheel
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = WheelName::parse(&filename).map_err(|e| Error::Other(e.to_string()))?;
    if !is_pure_py3(&name) {
        let tags = filename
            .strip_suffix(".whl")
            .unwrap_or(&filename)
            .rsplitn(4, '-')
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("-");
        return Err(Error::Other(format!(
            "package {package} has no wheel for this platform and its source builds a \
             platform-specific wheel ({tags}); publish/use a wheel for the target, or pin a \
             version that has one"
        )));
    }
    Ok(wheel)
}

fn is_pure_py3(w: &WheelName) -> bool {
    w.tags
        .iter()
        .all(|(py, abi, plat)| py.starts_with("py") && abi == "none" && plat == "any")
        && w.tags.iter().any(|(py, _, _)| py.starts_with("py3"))
}

/// Runs `uv lock` in a project folder.
pub fn relock(uv: &Uv, project_dir: &Path) -> Result<()> {
    let mut cmd = uv_command(uv, project_dir);
    cmd.args(["lock", "--color", "never"]);
    let what = || format!("locking {} (uv lock)", project_dir.display());
    let task = crate::progress::start(&what(), 0);
    let out = run_uv(cmd, &what)?;
    if !out.status.success() {
        return Err(failure(&what(), &out, false));
    }
    task.finish("done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn build_wheel_moves_the_one_wheel_out() {
        let (d, _store) = new_store();
        let uv = fake_uv(d.path());
        let project = d.path().join("proj");
        std::fs::create_dir_all(&project).unwrap();
        let out = d.path().join("wheels");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("old-1.0-py3-none-any.whl"), b"old").unwrap();
        let w = build_wheel(&uv, &project, &out, Some("https://index.example/simple")).unwrap();
        assert_eq!(w, out.join("pkg-1.0-py3-none-any.whl"));
        let args = std::fs::read_to_string(&w).unwrap();
        assert!(
            args.starts_with("build --wheel --color never --out-dir ")
                && args.contains("--default-index https://index.example/simple")
                && args.trim_end().ends_with(&project.display().to_string()),
            "{args}"
        );
        let left: BTreeSet<String> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            ["old-1.0-py3-none-any.whl", "pkg-1.0-py3-none-any.whl"]
                .map(String::from)
                .into()
        );
        let broken = d.path().join("broken-proj");
        std::fs::create_dir_all(&broken).unwrap();
        let e = build_wheel(&uv, &broken, &out, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&broken.display().to_string()), "{e}");
        assert!(e.contains("backend failed"), "{e}");
        assert!(!e.contains("tok@"), "{e}");
    }

    #[test]
    fn sdist_builds_must_be_pure_python() {
        let (d, _store) = new_store();
        let uv = fake_uv(d.path());
        let out = d.path().join("out");
        let pure = d.path().join("pkg-1.0.tar.gz");
        std::fs::write(&pure, b"sdist").unwrap();
        let w = build_sdist_wheel(&uv, &pure, &out, None, "pkg").unwrap();
        assert_eq!(w, out.join("pkg-1.0-py3-none-any.whl"));
        let native = d.path().join("native-1.0.tar.gz");
        std::fs::write(&native, b"sdist").unwrap();
        let e = build_sdist_wheel(&uv, &native, &out, None, "native")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("package native has no wheel for this platform")
                && e.contains("(cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64)"),
            "{e}"
        );
        let w = |n: &str| WheelName::parse(n).unwrap();
        assert!(is_pure_py3(&w("a-1-py3-none-any.whl")));
        assert!(is_pure_py3(&w("a-1-py2.py3-none-any.whl")));
        assert!(!is_pure_py3(&w("a-1-py2-none-any.whl")));
        assert!(!is_pure_py3(&w("a-1-cp312-none-any.whl")));
        assert!(!is_pure_py3(&w("a-1-py3-abi3-any.whl")));
        assert!(!is_pure_py3(&w("a-1-py3-none-linux_x86_64.whl")));
    }

    #[test]
    fn relock_runs_uv_lock_in_the_project() {
        let (d, _store) = new_store();
        let uv = fake_uv(d.path());
        let project = d.path().join("my-project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
        relock(&uv, &project).unwrap();
        let lock = std::fs::read_to_string(project.join("uv.lock")).unwrap();
        assert!(lock.contains("# cwd-name: my-project"), "{lock}");
        std::fs::write(project.join("pyproject.toml"), "# fail-me\n").unwrap();
        let e = relock(&uv, &project).unwrap_err().to_string();
        assert!(
            e.contains(&project.display().to_string()) && e.contains("No solution"),
            "{e}"
        );
        // A user's own project keeps uv's advice about it.
        assert!(e.contains("hint: Consider limiting"), "{e}");
    }
}

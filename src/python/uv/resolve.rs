//! Resolving a list of requirements into a `uv.lock` kept in the store, once
//! per request key.

use super::run::{failure, redact_text, run_uv, uv_command};
use super::{Env, Uv, env_var, process_env};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, IoContext, Result};
use crate::python::pep508::Requirement;
use crate::store::Store;
use std::path::PathBuf;

/// Requirements to resolve for one target Python.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveRequest {
    /// PEP 508 requirement strings.
    pub requirements: Vec<String>,
    /// `3.11` (or `3.11.4`).
    pub python: String,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub pre: bool,
    /// Extra `uv lock` arguments.
    pub extra_args: Vec<String>,
}

/// Environment variables that change what `uv lock` resolves.
const RESOLUTION_ENV: &[&str] = &[
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
    "UV_INDEX_STRATEGY",
    "UV_PRERELEASE",
    "UV_RESOLUTION",
    "UV_EXCLUDE_NEWER",
    "UV_CONSTRAINT",
    "UV_OVERRIDE",
];

/// The store key of a resolution: the request, uv's version and the
/// environment variables that steer uv's resolver. The key's version (the
/// `1` in `pylock`) changes whenever the project written for uv does.
fn request_key(req: &ResolveRequest, uv_version: &str, env: Env<'_>) -> Digest {
    let values: Vec<(String, Option<String>)> = RESOLUTION_ENV
        .iter()
        .map(|k| (k.to_string(), env_var(env, k)))
        .collect();
    key_with_env(req, uv_version, &values)
}

fn key_with_env(
    req: &ResolveRequest,
    uv_version: &str,
    env: &[(String, Option<String>)],
) -> Digest {
    let mut k = KeyHasher::new("pylock", 1);
    k.strs(&req.requirements)
        .str(&req.python)
        .opt_str(req.index_url.as_deref())
        .strs(&req.extra_index_urls)
        .bool(req.pre)
        .strs(&req.extra_args)
        .str(uv_version)
        .u64(env.len() as u64);
    for (name, value) in env {
        k.str(name).opt_str(value.as_deref());
    }
    k.finish()
}

/// `uv lock` options a resolution must not be given: they would write
/// elsewhere, not write at all, or lock another project.
const FORBIDDEN_LOCK_ARGS: &[&str] = &[
    "--output",
    "-o",
    "--project",
    "--directory",
    "--script",
    "--check",
    "--check-exists",
    "--locked",
    "--frozen",
    "--dry-run",
    "--help",
    "-h",
];

fn check_extra_args(args: &[String]) -> Result<()> {
    for a in args {
        let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        let bad = a.starts_with("--output")
            || FORBIDDEN_LOCK_ARGS.contains(&flag)
            || (a.starts_with("-o") && !a.starts_with("--"));
        if bad {
            return Err(Error::Usage(format!(
                "extra resolver argument `{a}` is not allowed: imgbuild decides where and how the \
                 lock is written"
            )));
        }
    }
    Ok(())
}

/// `3.11` → (`3`, `python_full_version == '3.11.*'`).
fn python_environment(python: &str) -> Result<(u64, String)> {
    let parts: Vec<&str> = python.trim().split('.').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(Error::Usage(format!(
            "python version {python:?}: expected MAJOR.MINOR such as 3.12"
        )));
    }
    let major: u64 = parts[0].parse().map_err(|_| {
        Error::Usage(format!(
            "python version {python:?}: expected MAJOR.MINOR such as 3.12"
        ))
    })?;
    let marker = if parts.len() == 2 {
        format!("python_full_version == '{}.*'", python.trim())
    } else {
        format!("python_full_version == '{}'", python.trim())
    };
    Ok((major, marker))
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The virtual project `uv lock` resolves. `requires-python` is only a floor
/// the host's interpreter meets; `tool.uv.environments` restricts the
/// resolution to the target Python, so no interpreter of that version is
/// needed.
fn requirements_pyproject(req: &ResolveRequest) -> Result<String> {
    let (major, env_marker) = python_environment(&req.python)?;
    for r in &req.requirements {
        Requirement::parse(r)
            .map_err(|e| Error::Usage(format!("Python requirement `{r}`: {e}")))?;
    }
    let mut s = String::new();
    s.push_str("[project]\nname = \"imgbuild-requirements\"\nversion = \"0\"\n");
    s.push_str(&format!("requires-python = \">={major}\"\n"));
    s.push_str("dependencies = [\n");
    for r in &req.requirements {
        s.push_str(&format!("    {},\n", toml_string(r.trim())));
    }
    s.push_str("]\n\n[tool.uv]\npackage = false\n");
    s.push_str(&format!("environments = [{}]\n", toml_string(&env_marker)));
    Ok(s)
}

fn describe_requirements(reqs: &[String]) -> String {
    let shown: Vec<&str> = reqs.iter().take(8).map(|r| r.trim()).collect();
    let mut s = shown.join(", ");
    if reqs.len() > shown.len() {
        s.push_str(&format!(", and {} more", reqs.len() - shown.len()));
    }
    if s.is_empty() {
        s.push_str("(none)");
    }
    redact_text(&s)
}

/// Resolves `req` into a `uv.lock` kept in the store at
/// `<store>/pylocks/<key>/uv.lock` (next to the `pyproject.toml` it locks,
/// whose root project `imgbuild-requirements` is virtual). A resolution is
/// done once per key; later calls return the stored lock.
pub fn lock_requirements(uv: &Uv, store: &Store, req: &ResolveRequest) -> Result<PathBuf> {
    let task = crate::progress::start("resolve Python requirements (uv lock)", 0);
    let r = lock_requirements_in(uv, store, req, &process_env)?;
    task.finish("done");
    Ok(r)
}

/// The key of `req`'s resolution and where [`lock_requirements`] keeps
/// its lock (after checking the request's arguments).
pub fn lock_location(uv: &Uv, store: &Store, req: &ResolveRequest) -> Result<(Digest, PathBuf)> {
    check_extra_args(&req.extra_args)?;
    let key = request_key(req, &uv.version, &process_env);
    let path = store.root().join("pylocks").join(key.hex()).join("uv.lock");
    Ok((key, path))
}

/// [`lock_requirements`] with the environment passed in.
fn lock_requirements_in(
    uv: &Uv,
    store: &Store,
    req: &ResolveRequest,
    env: Env<'_>,
) -> Result<PathBuf> {
    check_extra_args(&req.extra_args)?;
    let pyproject = requirements_pyproject(req)?;
    let key = request_key(req, &uv.version, env);
    let dir = store.root().join("pylocks").join(key.hex());
    let lock_path = dir.join("uv.lock");
    if lock_path.is_file() {
        return Ok(lock_path);
    }
    let _guard = store.lock_named(&dir)?;
    if lock_path.is_file() {
        return Ok(lock_path);
    }
    // Outside the store: uv looks for workspaces and configuration in the
    // folders above a project.
    let work = tempfile::Builder::new()
        .prefix("imgbuild-pylock-")
        .tempdir()
        .ctx(|| "creating a temp folder for the resolution".into())?;
    std::fs::write(work.path().join("pyproject.toml"), &pyproject)
        .ctx(|| format!("writing {}", work.path().join("pyproject.toml").display()))?;
    let mut cmd = uv_command(uv, work.path());
    cmd.args(["lock", "--color", "never"]);
    if let Some(i) = &req.index_url {
        cmd.args(["--default-index", i]);
    }
    for i in &req.extra_index_urls {
        cmd.args(["--extra-index-url", i]);
    }
    if req.pre {
        cmd.args(["--prerelease", "allow"]);
    }
    cmd.args(&req.extra_args);
    let what = || {
        format!(
            "resolving the Python requirements [{}] for Python {}",
            describe_requirements(&req.requirements),
            req.python
        )
    };
    let out = run_uv(cmd, &what)?;
    if !out.status.success() {
        let mut e = failure(&what(), &out, true);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No interpreter found") {
            e = Error::Other(format!(
                "{e}\n(uv needs some Python 3 interpreter on PATH to resolve, or permission \
                 to download one)"
            ));
        }
        return Err(e);
    }
    let lock = std::fs::read(work.path().join("uv.lock")).map_err(|e| {
        Error::Other(format!(
            "{}: uv lock succeeded but wrote no uv.lock: {e}",
            what()
        ))
    })?;
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    store.write_atomic(&dir.join("pyproject.toml"), pyproject.as_bytes())?;
    store.write_atomic(&lock_path, &lock)?;
    Ok(lock_path)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::collections::BTreeSet;

    fn request(reqs: &[&str]) -> ResolveRequest {
        ResolveRequest {
            requirements: reqs.iter().map(|s| s.to_string()).collect(),
            python: "3.11".into(),
            ..Default::default()
        }
    }

    #[test]
    fn lock_requirements_writes_a_virtual_project_and_keeps_the_lock() {
        let (d, store) = new_store();
        let uv = fake_uv(d.path());
        let mut req = request(&["httpx>=0.27", "tomli; python_version < \"3.11\""]);
        req.index_url = Some("https://index.example/simple".into());
        req.extra_index_urls = vec!["https://extra.example/simple".into()];
        req.pre = true;
        req.extra_args = vec!["--exclude-newer".into(), "2024-06-01T00:00:00Z".into()];
        let lock = lock_requirements(&uv, &store, &req).unwrap();
        assert_eq!(
            lock,
            store
                .root()
                .join("pylocks")
                .join(request_key(&req, "0.0.1", &process_env).hex())
                .join("uv.lock")
        );
        let text = std::fs::read_to_string(&lock).unwrap();
        assert!(
            text.contains(
                "# args: lock --color never --default-index https://index.example/simple \
                 --extra-index-url https://extra.example/simple --prerelease allow \
                 --exclude-newer 2024-06-01T00:00:00Z"
            ),
            "{text}"
        );
        let pyproject = std::fs::read_to_string(lock.with_file_name("pyproject.toml")).unwrap();
        let doc: toml::Table = toml::from_str(&pyproject).unwrap();
        assert_eq!(
            doc["project"]["name"].as_str(),
            Some("imgbuild-requirements")
        );
        assert_eq!(doc["project"]["requires-python"].as_str(), Some(">=3"));
        assert_eq!(
            doc["project"]["dependencies"].as_array().unwrap()[1].as_str(),
            Some("tomli; python_version < \"3.11\"")
        );
        assert_eq!(doc["tool"]["uv"]["package"].as_bool(), Some(false));
        assert_eq!(
            doc["tool"]["uv"]["environments"].as_array().unwrap()[0].as_str(),
            Some("python_full_version == '3.11.*'")
        );
        // Kept: a second call does not run uv (a broken uv would fail).
        let broken = Uv {
            exe: d.path().join("nothing-here"),
            ..uv.clone()
        };
        assert_eq!(lock_requirements(&broken, &store, &req).unwrap(), lock);
        // Only the lock folder is left behind.
        let entries: Vec<_> = std::fs::read_dir(lock.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries.len(), 2, "{entries:?}");
    }

    #[test]
    fn lock_requirements_errors() {
        let (d, store) = new_store();
        let uv = fake_uv(d.path());
        let e = lock_requirements(
            &uv,
            &store,
            &request(&["numpy", "fail-me>=1", "p @ https://u:tok3n@h.example/p.whl"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[numpy, fail-me>=1, p @ https://h.example/p.whl]"),
            "{e}"
        );
        assert!(!e.contains("tok3n"), "{e}");
        assert!(e.contains("Python 3.11"), "{e}");
        assert!(e.contains("No solution found"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(!e.contains("PATH="), "{e}");
        assert!(!e.contains("Using CPython") && !e.contains("hint:"), "{e}");
        assert!(e.contains("(uv: exit code 1)"), "{e}");

        let mut bad = request(&["numpy"]);
        bad.extra_args = vec!["--output-file=x".into()];
        assert!(matches!(
            lock_requirements(&uv, &store, &bad),
            Err(Error::Usage(_))
        ));
        bad.extra_args = vec!["--project".into(), "/elsewhere".into()];
        assert!(matches!(
            lock_requirements(&uv, &store, &bad),
            Err(Error::Usage(_))
        ));

        let e = lock_requirements(&uv, &store, &request(&["./local/dir"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`./local/dir`"), "{e}");
        let mut py = request(&["numpy"]);
        py.python = "three".into();
        assert!(matches!(
            lock_requirements(&uv, &store, &py),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn extra_args_contract() {
        let ok =
            |a: &[&str]| check_extra_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(
            ok(&[
                "--exclude-newer",
                "2024-01-01",
                "--resolution=lowest",
                "--upgrade"
            ])
            .is_ok()
        );
        for bad in [
            "--output-file",
            "--output=x",
            "-o",
            "-ox",
            "--project",
            "--directory=/x",
            "--locked",
            "--frozen",
            "--check",
            "--dry-run",
            "--script",
        ] {
            let e = ok(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn python_environments() {
        assert_eq!(
            python_environment("3.12").unwrap(),
            (3, "python_full_version == '3.12.*'".into())
        );
        assert_eq!(
            python_environment("3.12.4").unwrap(),
            (3, "python_full_version == '3.12.4'".into())
        );
        for bad in ["3", "3.x", "", "3.12.*", "py3.12"] {
            assert!(python_environment(bad).is_err(), "{bad}");
        }
        assert_eq!(toml_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }

    #[test]
    fn resolution_keys_are_stable_and_cover_every_field() {
        let base = ResolveRequest {
            requirements: vec!["httpx>=0.27".into(), "numpy".into()],
            python: "3.12".into(),
            index_url: Some("https://index.example/simple".into()),
            extra_index_urls: vec!["https://extra.example/simple".into()],
            pre: false,
            extra_args: vec!["--exclude-newer".into(), "2024-01-01".into()],
        };
        let env = vec![("UV_INDEX_URL".to_string(), None::<String>)];
        let k = key_with_env(&base, "0.13.9", &env);
        assert_eq!(k, key_with_env(&base.clone(), "0.13.9", &env));
        assert_eq!(
            k.hex(),
            "79fc924af4ff60a32f9e8748b0c7d8f554151e389486fa84821f729cc82f5853",
            "the key encoding changed; bump the key version in KeyHasher::new(\"pylock\", …)"
        );
        let mut variants = Vec::new();
        let mut v = base.clone();
        v.requirements = vec!["httpx>=0.27numpy".into()];
        variants.push(v);
        let mut v = base.clone();
        v.requirements.reverse();
        variants.push(v);
        let mut v = base.clone();
        v.python = "3.13".into();
        variants.push(v);
        let mut v = base.clone();
        v.index_url = None;
        variants.push(v);
        let mut v = base.clone();
        v.extra_index_urls.clear();
        variants.push(v);
        let mut v = base.clone();
        v.pre = true;
        variants.push(v);
        let mut v = base.clone();
        v.extra_args.pop();
        variants.push(v);
        let mut seen = BTreeSet::new();
        seen.insert(k);
        for v in &variants {
            assert!(seen.insert(key_with_env(v, "0.13.9", &env)), "{v:?}");
        }
        assert!(seen.insert(key_with_env(&base, "0.13.10", &env)));
        let env2 = vec![(
            "UV_INDEX_URL".to_string(),
            Some("https://other.example/simple".to_string()),
        )];
        assert!(seen.insert(key_with_env(&base, "0.13.9", &env2)));
    }
}

//! Whether a project's `uv.lock` still matches its `pyproject.toml`, checked
//! natively: [`declared`] reads what a pyproject.toml declares, [`req`] puts
//! both sides' requirements in one shape, [`equivalent`] compares
//! specifiers, markers and direct references by meaning.

mod declared;
mod equivalent;
mod req;

use crate::python::pep440::{Specifiers, Version};
use declared::{Declared, read_declared};
use equivalent::{direct_equivalent, markers_equivalent, specs_equivalent};
use req::{Req, lock_groups, lock_reqs, normalize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `p` (from pyproject.toml) and `l` (from uv.lock) are the same requirement.
/// For names with `tool.uv.sources` entries, markers are not compared (uv
/// splits such requirements per source).
fn same_req(p: &Req, l: &Req, ctx: &Ctx) -> bool {
    let sourced = ctx.sourced.contains(&p.name);
    p.name == l.name
        && p.extras == l.extras
        && specs_equivalent(&p.spec, &l.spec)
        && direct_equivalent(p, l, sourced)
        && (sourced || markers_equivalent(p.marker.as_deref(), l.marker.as_deref(), ctx.python))
}

/// What requirement comparisons depend on.
struct Ctx<'a> {
    /// Names with `tool.uv.sources` entries.
    sourced: &'a BTreeSet<String>,
    /// The lock's `requires-python`.
    python: Option<&'a Specifiers>,
}

/// Reports requirements that are on one side only.
fn compare_reqs(what: &str, project: &[Req], lock: &[Req], ctx: &Ctx, out: &mut Vec<String>) {
    let mut unmatched_names = BTreeSet::new();
    for p in project {
        if lock.iter().any(|l| same_req(p, l, ctx)) {
            continue;
        }
        unmatched_names.insert(p.name.clone());
        let label = format!("{what}{}", p.role);
        let label = label.trim_end();
        let locked: Vec<&str> = lock
            .iter()
            .filter(|l| l.name == p.name)
            .map(|l| l.text.as_str())
            .collect();
        if locked.is_empty() {
            out.push(format!(
                "{label} `{}` is in pyproject.toml but not in uv.lock",
                p.text
            ));
        } else {
            out.push(format!(
                "{label} `{}` in pyproject.toml differs from uv.lock's `{}`",
                p.text,
                locked.join("`, `")
            ));
        }
    }
    for l in lock {
        if unmatched_names.contains(&l.name) || project.iter().any(|p| same_req(p, l, ctx)) {
            continue;
        }
        let label = match what.trim_end() {
            "" => "dependency",
            w => w,
        };
        out.push(format!(
            "{label} `{}` is in uv.lock but no longer in pyproject.toml",
            l.text
        ));
    }
}

fn compare_groups(
    prefix: &str,
    declared: &BTreeMap<String, Vec<Req>>,
    locked: &BTreeMap<String, Vec<Req>>,
    ctx: &Ctx,
    out: &mut Vec<String>,
) {
    for (g, reqs) in declared {
        match locked.get(g) {
            None => out.push(format!(
                "{prefix}dependency group `{g}` is in pyproject.toml but not in uv.lock"
            )),
            Some(l) => compare_reqs(
                &format!("{prefix}dependency group `{g}`: "),
                reqs,
                l,
                ctx,
                out,
            ),
        }
    }
    for g in locked.keys() {
        if !declared.contains_key(g) {
            out.push(format!(
                "{prefix}dependency group `{g}` is in uv.lock but no longer in pyproject.toml"
            ));
        }
    }
}

fn source_path(pkg: &toml::Table) -> Option<(&'static str, &str)> {
    let src = pkg.get("source")?.as_table()?;
    ["editable", "virtual", "directory"]
        .into_iter()
        .find_map(|k| src.get(k).and_then(|v| v.as_str()).map(|p| (k, p)))
}

fn versions_equal(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// Compares one project's declarations with its package entry in the lock.
fn compare_project(
    prefix: &str,
    d: &Declared,
    name: &str,
    packages: &[&toml::Table],
    rel: &str,
    python: Option<&Specifiers>,
    out: &mut Vec<String>,
) {
    let ctx = Ctx {
        sourced: &d.sourced,
        python,
    };
    let pkg = packages.iter().find(|p| {
        p.get("name")
            .and_then(|n| n.as_str())
            .map(normalize)
            .as_deref()
            == Some(name)
            && source_path(p).is_some_and(|(_, path)| {
                path.trim_end_matches('/') == rel || (rel == "." && path.is_empty())
            })
    });
    let Some(pkg) = pkg else {
        out.push(format!(
            "{prefix}uv.lock has no entry for project `{name}` at `{rel}` (renamed, or the lock \
             belongs to another project)"
        ));
        return;
    };
    if let (Some(dv), Some(lv)) = (&d.version, pkg.get("version").and_then(|v| v.as_str()))
        && !versions_equal(dv, lv)
    {
        out.push(format!(
            "{prefix}version differs: pyproject.toml has {dv}, uv.lock has {lv}"
        ));
    }
    let Some(meta) = pkg.get("metadata").and_then(|m| m.as_table()) else {
        // A lock without metadata (uv's metadata-free format) cannot be
        // checked natively.
        return;
    };
    if let Some(declared) = &d.requires_dist {
        let locked = lock_reqs(meta.get("requires-dist"), "");
        compare_reqs(prefix, declared, &locked, &ctx, out);
    }
    if let (Some(declared), Some(locked)) = (&d.extras, meta.get("provides-extras")) {
        let locked: BTreeSet<String> = locked
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(normalize).collect())
            .unwrap_or_default();
        for e in declared.difference(&locked) {
            out.push(format!(
                "{prefix}extra `{e}` is in pyproject.toml but not in uv.lock"
            ));
        }
        for e in locked.difference(declared) {
            out.push(format!(
                "{prefix}extra `{e}` is in uv.lock but no longer in pyproject.toml"
            ));
        }
    }
    let dev = meta
        .get("requires-dev")
        .or_else(|| meta.get("dependency-groups"));
    compare_groups(prefix, &d.groups, &lock_groups(dev), &ctx, out);
}

/// Whether `uv.lock` (its text) is out of date with the `pyproject.toml` at
/// `pyproject`, checked natively: the project's name and version, its
/// dependencies, extras and dependency groups against the lock's recorded
/// metadata, `requires-python`, the `tool.uv` constraints and overrides, and
/// each workspace member's pyproject.toml. Requirements are compared by
/// meaning (normalized names and extras, equivalent specifiers and markers),
/// not text. `Some(reason)` names what differs.
pub fn lock_staleness(pyproject: &Path, lock_text: &str) -> Option<String> {
    let text = match std::fs::read_to_string(pyproject) {
        Ok(t) => t,
        Err(e) => return Some(format!("{} cannot be read: {e}", pyproject.display())),
    };
    let root = match read_declared(&text) {
        Ok(d) => d,
        Err(e) => return Some(format!("{}: {e}", pyproject.display())),
    };
    let lock: toml::Table = match toml::from_str(lock_text) {
        Ok(l) => l,
        Err(e) => return Some(format!("uv.lock cannot be parsed: {e}")),
    };
    let packages: Vec<&toml::Table> = lock
        .get("package")
        .or_else(|| lock.get("distribution"))
        .and_then(|p| p.as_array())
        .map(|a| a.iter().filter_map(|p| p.as_table()).collect())
        .unwrap_or_default();
    let manifest = lock.get("manifest").and_then(|m| m.as_table());
    let members: Vec<String> = manifest
        .and_then(|m| m.get("members"))
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).map(normalize).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut requires_python: Vec<String> = root.requires_python.iter().cloned().collect();
    let locked_python = lock
        .get("requires-python")
        .and_then(|v| v.as_str())
        .and_then(|s| Specifiers::parse(s).ok());
    let python = locked_python.as_ref();
    let root_ctx = Ctx {
        sourced: &root.sourced,
        python,
    };
    match &root.name {
        Some(name) => compare_project("", &root, name, &packages, ".", python, &mut out),
        None => {
            let locked = lock_groups(manifest.and_then(|m| m.get("dependency-groups")));
            compare_groups("", &root.groups, &locked, &root_ctx, &mut out);
        }
    }
    let workspace_root = pyproject.parent().unwrap_or(Path::new("."));
    let ws = Workspace {
        root: workspace_root,
        packages: &packages,
        python,
    };
    for member in &members {
        if root.name.as_deref() == Some(member.as_str()) {
            continue;
        }
        if let Some(declared) = compare_member(&ws, member, &mut out) {
            requires_python.extend(declared.requires_python.iter().cloned());
        }
    }
    if let Some(locked) = lock.get("requires-python").and_then(|v| v.as_str()) {
        compare_requires_python(&requires_python, locked, &mut out);
    }
    let locked_manifest = |k: &str| lock_reqs(manifest.and_then(|m| m.get(k)), "");
    for (key, what) in [
        ("constraints", "constraint "),
        ("overrides", "override "),
        ("build-constraints", "build constraint "),
    ] {
        let declared = root.manifest.get(key).cloned().unwrap_or_default();
        compare_reqs(what, &declared, &locked_manifest(key), &root_ctx, &mut out);
    }
    summarise(out)
}

/// What a workspace member's check needs from the lock.
struct Workspace<'a> {
    root: &'a Path,
    packages: &'a [&'a toml::Table],
    python: Option<&'a Specifiers>,
}

/// Checks one workspace member's pyproject.toml against its lock entry;
/// returns what it declares when it could be read and names `member`.
fn compare_member(ws: &Workspace<'_>, member: &str, out: &mut Vec<String>) -> Option<Declared> {
    let Some((_, rel)) = ws.packages.iter().find_map(|p| {
        let n = p.get("name").and_then(|n| n.as_str()).map(normalize)?;
        (n == *member).then(|| source_path(p)).flatten()
    }) else {
        out.push(format!(
            "uv.lock lists workspace member `{member}` without a source folder"
        ));
        return None;
    };
    let prefix = format!("workspace member `{member}`: ");
    let file = ws.root.join(rel).join("pyproject.toml");
    let declared = match std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot be read: {e}"))
        .and_then(|t| read_declared(&t))
    {
        Ok(d) => d,
        Err(e) => {
            out.push(format!("{prefix}{}: {e}", file.display()));
            return None;
        }
    };
    match &declared.name {
        Some(n) if n == member => {}
        _ => {
            out.push(format!(
                "{prefix}{} does not declare project `{member}`",
                file.display()
            ));
            return None;
        }
    }
    compare_project(&prefix, &declared, member, ws.packages, rel, ws.python, out);
    Some(declared)
}

/// The `requires-python` of the root and members, together, against the lock's.
fn compare_requires_python(requires_python: &[String], locked: &str, out: &mut Vec<String>) {
    if requires_python.is_empty() {
        return;
    }
    let declared = requires_python.join(", ");
    if !specs_equivalent(&declared, locked) {
        let whose = if requires_python.len() > 1 {
            "the workspace's pyproject.toml files have"
        } else {
            "pyproject.toml has"
        };
        out.push(format!(
            "requires-python differs: {whose} `{declared}`, uv.lock has `{locked}`"
        ));
    }
}

/// The first five differences, and how many more there are.
fn summarise(out: Vec<String>) -> Option<String> {
    if out.is_empty() {
        return None;
    }
    let n = out.len();
    let mut shown: Vec<String> = out.into_iter().take(5).collect();
    if n > shown.len() {
        shown.push(format!("and {} more differences", n - 5));
    }
    Some(shown.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project and its lock as uv 0.13.9 wrote it (registry packages left out).
    const PYPROJECT: &str = r#"[project]
name = "Demo_App"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = [
  "httpx[http2,brotli] >= 0.27, <1 ; python_version >= '3.8'",
  "Typing_Extensions",
  "idna==3.*",
]
[project.optional-dependencies]
cli = ["rich>=13", "click; sys_platform == 'linux'"]
[dependency-groups]
dev = ["pytest>=8", {include-group = "lint"}]
lint = ["ruff"]
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"#;

    const LOCK: &str = r#"version = 1
revision = 5
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.13'",
]

[[package]]
name = "demo-app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "httpx", extra = ["brotli", "http2"] },
    { name = "idna" },
    { name = "typing-extensions" },
]

[package.optional-dependencies]
cli = [
    { name = "click", marker = "sys_platform == 'linux'" },
    { name = "rich" },
]

[package.dev-dependencies]
dev = [
    { name = "pytest" },
    { name = "ruff" },
]
lint = [
    { name = "ruff" },
]

[package.metadata]
requires-dist = [
    { name = "click", marker = "sys_platform == 'linux' and extra == 'cli'" },
    { name = "httpx", extras = ["http2", "brotli"], marker = "python_full_version >= '3.8'", specifier = ">=0.27,<1" },
    { name = "idna", specifier = "==3.*" },
    { name = "rich", marker = "extra == 'cli'", specifier = ">=13" },
    { name = "typing-extensions" },
]
provides-extras = ["cli"]

[package.metadata.requires-dev]
dev = [
    { name = "pytest", specifier = ">=8" },
    { name = "ruff" },
]
lint = [{ name = "ruff" }]

[[package]]
name = "idna"
version = "3.10"
source = { registry = "https://index.example/simple" }
"#;

    fn staleness(pyproject: &str, lock: &str) -> Option<String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pyproject.toml");
        std::fs::write(&p, pyproject).unwrap();
        lock_staleness(&p, lock)
    }

    fn stale_after(from: &str, to: &str) -> String {
        assert!(PYPROJECT.contains(from), "{from}");
        staleness(&PYPROJECT.replacen(from, to, 1), LOCK)
            .unwrap_or_else(|| panic!("`{from}` → `{to}` should make the lock stale"))
    }

    #[test]
    fn fresh_lock_is_fresh() {
        assert_eq!(staleness(PYPROJECT, LOCK), None);
        // Equivalent rewrites.
        for (from, to) in [
            ("\"Typing_Extensions\"", "\"typing.extensions\""),
            (">= 0.27, <1", "<1,>=0.27"),
            ("python_version >= '3.8'", "python_full_version >= '3.8'"),
            // Always true under requires-python >= 3.10, as uv sees it too.
            ("python_version >= '3.8'", "python_version >= '3.9'"),
            (
                "requires-python = \">=3.10\"",
                "requires-python = \">= 3.10.0\"",
            ),
            ("[dependency-groups]", "[dependency-groups]\n"),
            ("cli = [", "CLI = ["),
            ("\"idna==3.*\",\n", ""),
        ] {
            let text = PYPROJECT.replacen(from, to, 1);
            let r = staleness(&text, LOCK);
            if from.contains("idna") {
                assert!(r.is_some(), "removing a dependency is a change");
            } else {
                assert_eq!(r, None, "`{from}` → `{to}`");
            }
        }
    }

    #[test]
    fn stale_lock_reasons() {
        let r = stale_after("\"idna==3.*\",", "\"idna==3.*\",\n  \"anyio>=4\",");
        assert_eq!(
            r,
            "dependency `anyio>=4` is in pyproject.toml but not in uv.lock"
        );
        let r = stale_after("\"idna==3.*\",", "\"idna>=3\",");
        assert!(
            r.contains("dependency `idna>=3` in pyproject.toml differs from uv.lock's `idna==3.*`"),
            "{r}"
        );
        let r = stale_after("  \"Typing_Extensions\",\n", "");
        assert_eq!(
            r,
            "dependency `typing-extensions` is in uv.lock but no longer in pyproject.toml"
        );
        let r = stale_after("python_version >= '3.8'", "python_version >= '3.11'");
        assert!(r.contains("httpx"), "{r}");
        let r = stale_after("httpx[http2,brotli]", "httpx[http2]");
        assert!(r.contains("httpx[http2]"), "{r}");
        let r = stale_after(
            "requires-python = \">=3.10\"",
            "requires-python = \">=3.11\"",
        );
        assert_eq!(
            r,
            "requires-python differs: pyproject.toml has `>=3.11`, uv.lock has `>=3.10`"
        );
        let r = stale_after("version = \"0.1.0\"", "version = \"0.2.0\"");
        assert_eq!(
            r,
            "version differs: pyproject.toml has 0.2.0, uv.lock has 0.1.0"
        );
        let r = stale_after("name = \"Demo_App\"", "name = \"other-app\"");
        assert!(r.contains("no entry for project `other-app`"), "{r}");
        let r = stale_after("\"rich>=13\"", "\"rich>=14\"");
        assert!(
            r.contains("optional dependency (extra `cli`) `rich>=14`"),
            "{r}"
        );
        let r = stale_after("cli = [", "tui = [");
        assert!(r.contains("extra `tui` is in pyproject.toml"), "{r}");
        let r = stale_after("lint = [\"ruff\"]", "lint = [\"ruff>=0.5\"]");
        assert!(r.contains("dependency group `lint`: `ruff>=0.5`"), "{r}");
        let r = stale_after(
            "lint = [\"ruff\"]",
            "lint = [\"ruff\"]\ndocs = [\"mkdocs\"]",
        );
        assert!(
            r.contains("dependency group `docs` is in pyproject.toml but not in uv.lock"),
            "{r}"
        );
        let r = stale_after(", {include-group = \"lint\"}", "");
        assert!(
            r.contains("dependency group `dev`: `ruff` is in uv.lock"),
            "{r}"
        );
        let r = stale_after(
            "[dependency-groups]",
            "[tool.uv]\nconstraint-dependencies = [\"idna<4\"]\n[dependency-groups]",
        );
        assert_eq!(
            r,
            "constraint `idna<4` is in pyproject.toml but not in uv.lock"
        );
        let r = stale_after(
            "\"idna==3.*\",",
            "\"idna==3.*\",\n  \"pkg @ https://files.example/pkg-1.0-py3-none-any.whl\",",
        );
        assert!(r.contains("pkg @ https://files.example"), "{r}");
        assert!(
            staleness("[project\n", LOCK)
                .unwrap()
                .contains("cannot be parsed")
        );
        assert!(
            staleness(PYPROJECT, "not = [toml")
                .unwrap()
                .contains("uv.lock cannot be parsed")
        );
    }

    #[test]
    fn many_differences_are_summarised() {
        let text = PYPROJECT.replacen(
            "\"idna==3.*\",",
            "\"a1\", \"a2\", \"a3\", \"a4\", \"a5\", \"a6\", \"a7\",",
            1,
        );
        let r = staleness(&text, LOCK).unwrap();
        assert!(r.ends_with("and 3 more differences"), "{r}");
    }

    #[test]
    fn sources_direct_references_and_dynamic_metadata() {
        let pyproject = r#"[project]
name = "p3"
version = "1.0"
dependencies = [
  "six @ https://files.example/six-1.16.0-py2.py3-none-any.whl",
  "lib",
  "iniconfig",
  "torch",
]
[tool.uv.sources]
lib = { path = "lib", editable = true }
iniconfig = { index = "myidx" }
torch = [
  { index = "cpu", marker = "sys_platform == 'linux'" },
  { index = "other", marker = "sys_platform != 'linux'" },
]
"#;
        let lock = r#"version = 1
revision = 5
requires-python = ">=3.11"

[[package]]
name = "p3"
version = "1.0"
source = { virtual = "." }

[package.metadata]
requires-dist = [
    { name = "iniconfig", index = "https://index.example/simple" },
    { name = "lib", editable = "lib" },
    { name = "six", url = "https://files.example/six-1.16.0-py2.py3-none-any.whl" },
    { name = "torch", marker = "sys_platform == 'linux'", index = "https://cpu.example/simple" },
    { name = "torch", marker = "sys_platform != 'linux'", index = "https://other.example/simple" },
]
"#;
        assert_eq!(staleness(pyproject, lock), None);
        let moved = pyproject.replace("six-1.16.0", "six-1.17.0");
        let r = staleness(&moved, lock).unwrap();
        assert!(r.contains("six @ https://files.example/six-1.17.0"), "{r}");
        let plain = pyproject.replace(
            "six @ https://files.example/six-1.16.0-py2.py3-none-any.whl",
            "six",
        );
        assert!(staleness(&plain, lock).unwrap().contains("`six`"));
        // Dynamic dependencies and version are not checked natively.
        let dynamic = "[project]\nname = \"p3\"\ndynamic = [\"version\", \"dependencies\"]\n";
        assert_eq!(staleness(dynamic, lock), None);
    }

    #[test]
    fn workspaces_and_non_project_roots() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("packages/lib-a")).unwrap();
        std::fs::write(
            root.join("pyproject.toml"),
            "[project]\nname = \"app\"\nversion = \"1\"\nrequires-python = \">=3.10\"\n\
             dependencies = [\"lib-a\"]\n[tool.uv.sources]\nlib-a = { workspace = true }\n\
             [tool.uv.workspace]\nmembers = [\"packages/*\"]\n",
        )
        .unwrap();
        let member = "[project]\nname = \"Lib_A\"\nversion = \"0.1\"\nrequires-python = \">=3.11\"\n\
                      dependencies = [\"attrs>=23\"]\n";
        std::fs::write(root.join("packages/lib-a/pyproject.toml"), member).unwrap();
        let lock = r#"version = 1
revision = 5
requires-python = ">=3.11"

[manifest]
members = ["app", "lib-a"]

[[package]]
name = "app"
version = "1"
source = { editable = "." }

[package.metadata]
requires-dist = [{ name = "lib-a", editable = "packages/lib-a" }]

[[package]]
name = "lib-a"
version = "0.1"
source = { editable = "packages/lib-a" }

[package.metadata]
requires-dist = [{ name = "attrs", specifier = ">=23" }]
"#;
        let check = || lock_staleness(&root.join("pyproject.toml"), lock);
        assert_eq!(check(), None);
        std::fs::write(
            root.join("packages/lib-a/pyproject.toml"),
            member.replace("attrs>=23", "attrs>=24"),
        )
        .unwrap();
        let r = check().unwrap();
        assert!(
            r.starts_with("workspace member `lib-a`: dependency `attrs>=24`"),
            "{r}"
        );
        std::fs::write(
            root.join("packages/lib-a/pyproject.toml"),
            member.replace(">=3.11", ">=3.12"),
        )
        .unwrap();
        assert!(check().unwrap().starts_with("requires-python differs"));
        std::fs::remove_file(root.join("packages/lib-a/pyproject.toml")).unwrap();
        assert!(check().unwrap().contains("cannot be read"));

        // A root without [project]: its groups are in the manifest.
        let virtual_root = "[dependency-groups]\ndev = [\"iniconfig>=1\"]\n\
                            [tool.uv]\nconstraint-dependencies = [\"idna<4\"]\n\
                            override-dependencies = [\"six>=1.10; python_version >= '3.9'\"]\n";
        let lock = r#"version = 1
revision = 5
requires-python = ">=3.11"

[manifest]
constraints = [{ name = "idna", specifier = "<4" }]
overrides = [{ name = "six", marker = "python_full_version >= '3.9'", specifier = ">=1.10" }]

[manifest.dependency-groups]
dev = [{ name = "iniconfig", specifier = ">=1" }]
"#;
        assert_eq!(staleness(virtual_root, lock), None);
        let r = staleness(&virtual_root.replace("idna<4", "idna<5"), lock).unwrap();
        assert!(r.contains("constraint `idna<5`"), "{r}");
        let r = staleness(&virtual_root.replace("iniconfig>=1", "iniconfig>=2"), lock).unwrap();
        assert!(r.contains("dependency group `dev`: `iniconfig>=2`"), "{r}");
    }

    #[test]
    fn legacy_dev_dependencies_join_the_dev_group() {
        let pyproject = "[project]\nname = \"p2\"\nversion = \"1.0\"\ndependencies = []\n\
                         [dependency-groups]\nDev_Tools = [\"pytest\"]\n\
                         [tool.uv]\ndev-dependencies = [\"ruff\"]\n";
        let lock = r#"version = 1
revision = 5
requires-python = ">=3.11"

[[package]]
name = "p2"
version = "1.0"
source = { virtual = "." }

[package.metadata]

[package.metadata.requires-dev]
dev = [{ name = "ruff" }]
dev-tools = [{ name = "pytest" }]
"#;
        assert_eq!(staleness(pyproject, lock), None);
        let r = staleness(&pyproject.replace("\"ruff\"", "\"black\""), lock).unwrap();
        assert!(r.contains("dependency group `dev`"), "{r}");
    }
}

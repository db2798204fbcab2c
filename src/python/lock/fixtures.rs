//! Locks written for the tests, and helpers to read what comes out of them.

use super::{Lock, Resolved};
use crate::python::markers::MarkerEnv;

pub(super) const IDX: &str = "https://index.example/simple";

pub(super) fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

/// A registry package with the given wheels (filenames) and raw TOML lines appended.
pub(super) fn pkg(name: &str, version: &str, wheels: &[&str], extra_toml: &str) -> String {
    let mut s = format!(
        "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = {{ registry = \"{IDX}\" }}\n"
    );
    if !wheels.is_empty() {
        s.push_str("wheels = [\n");
        for w in wheels {
            s.push_str(&format!(
                "    {{ url = \"https://index.example/files/{w}\", hash = \"sha256:{}\", size = 1234, upload-time = \"2026-01-01T00:00:00Z\" }},\n",
                sha('a')
            ));
        }
        s.push_str("]\n");
    }
    // After the wheels: the extra text may open sub-tables.
    s.push_str(extra_toml);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

pub(super) fn pure(name: &str, version: &str) -> String {
    pkg(
        name,
        version,
        &[&format!(
            "{}-{version}-py3-none-any.whl",
            name.replace('-', "_")
        )],
        "",
    )
}

/// A project lock modelled on the doc's httpx + numpy example, with extras, groups and
/// per-architecture dependencies.
pub(super) fn demo_lock() -> String {
    let mut s = String::from(
        r#"version = 1
revision = 5
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.12'",
    "python_full_version == '3.11.*'",
    "python_full_version < '3.11'",
]

[options]
exclude-newer = "2026-10-01T00:00:00Z"

[[package]]
name = "demo-app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "anyio" },
    { name = "httpx", extra = ["http2"] },
    { name = "numpy", version = "2.2.6", source = { registry = "https://index.example/simple" }, marker = "python_full_version < '3.11'" },
    { name = "numpy", version = "2.4.6", source = { registry = "https://index.example/simple" }, marker = "python_full_version == '3.11.*'" },
    { name = "numpy", version = "2.5.3", source = { registry = "https://index.example/simple" }, marker = "python_full_version >= '3.12'" },
    { name = "black", marker = "platform_machine == 'aarch64'" },
    { name = "pywin32", marker = "sys_platform == 'win32'" },
    { name = "async-timeout", marker = "python_full_version < '3.11.3'" },
]

[package.optional-dependencies]
cli = [
    { name = "rich" },
]

[package.dev-dependencies]
dev = [
    { name = "pytest" },
]
docs = [
    { name = "mkdocs", marker = "platform_machine == 'x86_64'" },
]

[package.metadata]
requires-dist = [
    { name = "anyio" },
    { name = "rich", marker = "extra == 'cli'" },
]
provides-extras = ["cli", "empty"]

[package.metadata.requires-dev]
dev = [{ name = "pytest" }]
docs = [{ name = "mkdocs" }]
"#,
    );
    s.push_str(&pkg(
        "anyio",
        "4.15.1",
        &["anyio-4.15.1-py3-none-any.whl"],
        "dependencies = [\n    { name = \"exceptiongroup\", marker = \"python_full_version < '3.11'\" },\n    { name = \"idna\" },\n]\nsdist = { url = \"https://index.example/files/anyio-4.15.1.tar.gz\", hash = \"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\", size = 276966 }",
    ));
    s.push_str(&pure("idna", "3.10"));
    s.push_str(&pure("exceptiongroup", "1.3.0"));
    s.push_str(&pure("async-timeout", "5.0.1"));
    s.push_str(&pkg(
        "httpx",
        "0.28.1",
        &["httpx-0.28.1-py3-none-any.whl"],
        "dependencies = [{ name = \"idna\" }]\n\n[package.optional-dependencies]\nhttp2 = [{ name = \"h2\" }]\nbrotli = [{ name = \"brotli\" }]",
    ));
    s.push_str(&pure("h2", "4.2.0"));
    s.push_str(&pure("brotli", "1.1.0"));
    for (v, py) in [("2.2.6", "cp310"), ("2.4.6", "cp311"), ("2.5.3", "cp312")] {
        let wheels = [
            format!("numpy-{v}-{py}-{py}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            format!("numpy-{v}-{py}-{py}-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
            format!("numpy-{v}-{py}-{py}-win_amd64.whl"),
        ];
        let refs: Vec<&str> = wheels.iter().map(String::as_str).collect();
        let marker = match py {
            "cp310" => "python_full_version < '3.11'",
            "cp311" => "python_full_version == '3.11.*'",
            _ => "python_full_version >= '3.12'",
        };
        s.push_str(&pkg(
            "numpy",
            v,
            &refs,
            &format!("resolution-markers = [\"{marker}\"]"),
        ));
    }
    s.push_str(&pkg(
        "black",
        "25.1.0",
        &["black-25.1.0-py3-none-any.whl"],
        "dependencies = [{ name = \"pathspec\" }]",
    ));
    s.push_str(&pure("pathspec", "0.12.1"));
    s.push_str(&pkg(
        "pywin32",
        "311",
        &["pywin32-311-cp312-cp312-win_amd64.whl"],
        "",
    ));
    s.push_str(&pkg(
        "rich",
        "14.0.0",
        &["rich-14.0.0-py3-none-any.whl"],
        "dependencies = [{ name = \"markdown-it-py\" }]",
    ));
    s.push_str(&pure("markdown-it-py", "3.0.0"));
    s.push_str(&pkg(
        "pytest",
        "8.4.1",
        &["pytest-8.4.1-py3-none-any.whl"],
        "dependencies = [{ name = \"pluggy\" }, { name = \"colorama\", marker = \"sys_platform == 'win32'\" }]",
    ));
    s.push_str(&pure("pluggy", "1.6.0"));
    s.push_str(&pure("colorama", "0.4.6"));
    s.push_str(&pure("mkdocs", "1.6.1"));
    s
}

pub(super) fn parse(text: &str) -> Lock {
    Lock::parse(text, "uv.lock").unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn names(set: &[Resolved]) -> Vec<String> {
    set.iter()
        .map(|r| match &r.version {
            Some(v) => format!("{}=={v}", r.name),
            None => r.name.clone(),
        })
        .collect()
}

pub(super) fn env(py: &str, arch: &str) -> MarkerEnv {
    MarkerEnv::for_target(py, arch)
}

/// Conflicting extras `old`/`new` and group `legacy` of `proj3`, as uv encodes them.
pub(super) fn conflict_lock() -> String {
    let lib = |v: &str, marker: &str| {
        pkg(
            "lib",
            v,
            &[&format!("lib-{v}-py3-none-any.whl")],
            &format!("resolution-markers = [\"{marker}\"]"),
        )
    };
    let mut s = format!(
        r#"version = 1
revision = 3
requires-python = ">=3.12"
conflicts = [[
    {{ package = "proj3", extra = "new" }},
    {{ package = "proj3", extra = "old" }},
    {{ package = "proj3", group = "legacy" }},
]]

[[package]]
name = "proj3"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "helper" }}]

[package.optional-dependencies]
new = [{{ name = "lib", version = "2.0", source = {{ registry = "{IDX}" }} }}]
old = [{{ name = "lib", version = "1.0", source = {{ registry = "{IDX}" }} }}]

[package.dev-dependencies]
legacy = [{{ name = "lib", version = "1.0", source = {{ registry = "{IDX}" }} }}]
"#
    );
    s.push_str(&pkg(
        "helper",
        "1.0",
        &["helper-1.0-py3-none-any.whl"],
        &format!(
            "dependencies = [\n    {{ name = \"lib\", version = \"1.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra == 'extra-5-proj3-old' or extra == 'group-5-proj3-legacy'\" }},\n    {{ name = \"lib\", version = \"2.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra != 'extra-5-proj3-old' and extra != 'group-5-proj3-legacy'\" }},\n]"
        ),
    ));
    s.push_str(&lib(
        "1.0",
        "extra == 'extra-5-proj3-old' or extra == 'group-5-proj3-legacy'",
    ));
    s.push_str(&lib(
        "2.0",
        "extra != 'extra-5-proj3-old' and extra != 'group-5-proj3-legacy'",
    ));
    s
}

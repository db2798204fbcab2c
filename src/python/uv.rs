//! uv, the resolver and builder the Python layers lean on: finding it (or
//! installing it into the store from a package index, without Python),
//! resolving requirement lists into a `uv.lock`, building wheels from source
//! trees and sdists, and a native check of whether a project's `uv.lock`
//! still matches its `pyproject.toml`.
//!
//! Index locations always come from configuration (the request, `uv`'s and
//! pip's environment variables and config files, or the host pip's built-in
//! default); credentials in index URLs never appear in messages.

use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, IoContext, Result};
use crate::python::markers::{Marker, MarkerEnv, MarkerValue, MarkerVar};
use crate::python::pep440::{Specifiers, Version};
use crate::python::pep508::Requirement;
use crate::python::tags::{self, Arch, Target, WheelName};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

// ---------------------------------------------------------------------------------------------
// Finding uv
// ---------------------------------------------------------------------------------------------

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
fn locate(
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

fn is_executable(p: &Path) -> bool {
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
fn probe(exe: &Path, origin: UvOrigin) -> Result<Uv> {
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
    if let Some(uv) = locate(
        store.root(),
        std::env::var_os("IMGBUILD_UV"),
        std::env::var_os("PATH"),
    )? {
        return Ok(uv);
    }
    let index = match index {
        Some(i) => Some(i.to_string()),
        None => default_index(),
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

// ---------------------------------------------------------------------------------------------
// The configured package index
// ---------------------------------------------------------------------------------------------

/// The default package index URL from configuration: `UV_DEFAULT_INDEX`,
/// `UV_INDEX_URL`, `PIP_INDEX_URL`, pip's config files, then the host pip's
/// built-in default. `None` if nothing is configured.
pub fn default_index() -> Option<String> {
    default_index_source().map(|(url, _)| url)
}

/// Like [`default_index`], with where it came from (`UV_DEFAULT_INDEX`, a
/// config file's path, or `pip's built-in default`).
pub fn default_index_source() -> Option<(String, String)> {
    let env = |k: &str| std::env::var(k).ok();
    index_from_config(&env, &pip_config_files(&env))
        .or_else(|| pip_builtin_index().map(|u| (u, "pip's built-in default".to_string())))
}

fn index_from_config(
    env: &dyn Fn(&str) -> Option<String>,
    files: &[PathBuf],
) -> Option<(String, String)> {
    for var in ["UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"] {
        if let Some(v) = env(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            return Some((v, var.to_string()));
        }
    }
    for f in files {
        if let Ok(text) = std::fs::read_to_string(f)
            && let Some(url) = pip_conf_index(&text)
        {
            return Some((url, f.display().to_string()));
        }
    }
    None
}

/// pip's config files, most significant first: `$PIP_CONFIG_FILE`, the user's
/// (`$XDG_CONFIG_HOME/pip/pip.conf`, `~/.pip/pip.conf`), then the system's.
/// `PIP_CONFIG_FILE=/dev/null` turns them all off, as in pip.
fn pip_config_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(f) = env("PIP_CONFIG_FILE").filter(|v| !v.is_empty()) {
        if f == "/dev/null" {
            return out;
        }
        out.push(PathBuf::from(f));
    }
    let home = env("HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    let xdg = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(x) = xdg {
        out.push(x.join("pip/pip.conf"));
    }
    if let Some(h) = &home {
        out.push(h.join(".pip/pip.conf"));
    }
    out.push(PathBuf::from("/etc/pip.conf"));
    out.push(PathBuf::from("/etc/xdg/pip/pip.conf"));
    out
}

/// `[global] index-url` (or `index_url`) of a pip config file.
fn pip_conf_index(text: &str) -> Option<String> {
    let mut section = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_ascii_lowercase();
            continue;
        }
        if section != "global" || line.starts_with([' ', '\t']) {
            continue;
        }
        let Some(sep) = t.find(['=', ':']) else {
            continue;
        };
        let key = t[..sep].trim().to_ascii_lowercase().replace('_', "-");
        let value = t[sep + 1..].split_whitespace().next().unwrap_or("");
        if key == "index-url" && !value.is_empty() {
            return Some(value.to_string());
        }
    }
    None
}

/// The index the host's pip uses when nothing is configured, asked from pip
/// itself.
fn pip_builtin_index() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && (url.starts_with("https://") || url.starts_with("http://")))
        .then_some(url)
}

// ---------------------------------------------------------------------------------------------
// Installing uv into the store
// ---------------------------------------------------------------------------------------------

/// One file of a simple-API project page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexFile {
    filename: String,
    /// Absolute, without the fragment.
    url: String,
    sha256: Option<String>,
    size: Option<u64>,
    yanked: bool,
}

const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Parses a project page: PEP 691 JSON if it is JSON, else PEP 503 HTML.
fn parse_simple_page(body: &[u8], page_url: &str) -> std::result::Result<Vec<IndexFile>, String> {
    let text = String::from_utf8_lossy(body);
    if text.trim_start().starts_with('{') {
        parse_simple_json(&text, page_url)
    } else {
        Ok(parse_simple_html(&text, page_url))
    }
}

fn parse_simple_json(text: &str, page_url: &str) -> std::result::Result<Vec<IndexFile>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON project page: {e}"))?;
    let files = v
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or("the JSON project page has no `files` list")?;
    let mut out = Vec::new();
    for f in files {
        let (Some(filename), Some(url)) = (
            f.get("filename").and_then(|x| x.as_str()),
            f.get("url").and_then(|x| x.as_str()),
        ) else {
            continue;
        };
        let yanked = match f.get("yanked") {
            None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
            Some(_) => true,
        };
        out.push(IndexFile {
            filename: filename.to_string(),
            url: match join_url(page_url, url) {
                Some(u) => strip_fragment(&u).to_string(),
                None => continue,
            },
            sha256: f
                .pointer("/hashes/sha256")
                .and_then(|h| h.as_str())
                .map(str::to_ascii_lowercase),
            size: f.get("size").and_then(|s| s.as_u64()),
            yanked,
        });
    }
    Ok(out)
}

fn parse_simple_html(text: &str, page_url: &str) -> Vec<IndexFile> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut base = page_url.to_string();
    if let Some(i) = lower.find("<base ")
        && let Some(end) = tag_end(text, i)
        && let Some(href) = attributes(&text[i + 5..end]).get("href").cloned().flatten()
        && let Some(joined) = join_url(page_url, &href)
    {
        base = joined;
    }
    let mut pos = 0;
    while let Some(rel) = lower[pos..].find("<a") {
        let start = pos + rel;
        let after = lower.as_bytes().get(start + 2).copied();
        if !after.is_some_and(|c| c.is_ascii_whitespace()) {
            pos = start + 2;
            continue;
        }
        let Some(end) = tag_end(text, start) else {
            break;
        };
        let attrs = attributes(&text[start + 2..end]);
        let close = lower[end..].find("</a").map_or(text.len(), |c| end + c);
        let label = decode_entities(text[end + 1..close.max(end + 1)].trim());
        pos = close.max(end + 1);
        let Some(Some(href)) = attrs.get("href") else {
            continue;
        };
        let Some(full) = join_url(&base, href) else {
            continue;
        };
        let sha256 = full
            .split_once('#')
            .and_then(|(_, frag)| frag.strip_prefix("sha256="))
            .map(str::to_ascii_lowercase);
        let url = strip_fragment(&full).to_string();
        let filename = if label.is_empty() {
            percent_decode(url.rsplit('/').next().unwrap_or(""))
        } else {
            label
        };
        out.push(IndexFile {
            filename,
            url,
            sha256,
            size: None,
            yanked: attrs.contains_key("data-yanked"),
        });
    }
    out
}

/// Index of the `>` closing the tag that starts at `start` (quotes respected).
fn tag_end(text: &str, start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text[start..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(start + i),
            _ => {}
        }
    }
    None
}

/// `name="value" flag name='v' name=v` → lowercase names, decoded values.
fn attributes(s: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        if ns == i {
            break;
        }
        let name = s[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                let v = &s[vs..i.min(b.len())];
                i += 1;
                v
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &s[vs..i]
            };
            out.insert(name, Some(decode_entities(value)));
        } else {
            out.insert(name, None);
        }
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(10)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let decoded = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it
/// is, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(u, _)| u)
}

/// Resolves `href` against `base` as a browser does (WHATWG URL); None when
/// either is not a URL, and such a link is skipped.
fn join_url(base: &str, href: &str) -> Option<String> {
    let joined = url::Url::parse(base).ok()?.join(href.trim()).ok()?;
    Some(joined.into())
}

/// The newest final release of uv with a wheel for `target`, and that wheel.
fn choose_uv_wheel(files: &[IndexFile], target: &Target) -> Option<(IndexFile, WheelName)> {
    let mut by_version: BTreeMap<Version, Vec<(IndexFile, WheelName)>> = BTreeMap::new();
    for f in files {
        if f.yanked || f.sha256.is_none() {
            continue;
        }
        let Ok(w) = WheelName::parse(&f.filename) else {
            continue;
        };
        if w.name != "uv" {
            continue;
        }
        let Ok(v) = Version::parse(&w.version) else {
            continue;
        };
        if v.is_prerelease() {
            continue;
        }
        by_version.entry(v).or_default().push((f.clone(), w));
    }
    for (_, cands) in by_version.into_iter().rev() {
        let names: Vec<WheelName> = cands.iter().map(|(_, w)| w.clone()).collect();
        if let Some(best) = tags::best_wheel(&names, target) {
            let i = names
                .iter()
                .position(|n| n == best)
                .expect("chosen from the list");
            return Some(cands[i].clone());
        }
    }
    None
}

/// This machine as a wheel target (the Python version does not matter for
/// uv's `py3-none-<platform>` wheels).
fn host_target() -> Result<Target> {
    if std::env::consts::OS != "linux" {
        return Err(Error::Other(format!(
            "installing uv into the store is only supported on Linux, not {}",
            std::env::consts::OS
        )));
    }
    let arch = Arch::from_oci(std::env::consts::ARCH).ok_or_else(|| {
        Error::Other(format!(
            "installing uv into the store is not supported on {}",
            std::env::consts::ARCH
        ))
    })?;
    let a = arch.as_str();
    let libcs = [
        format!("/lib/{a}-linux-gnu/libc.so.6"),
        format!("/usr/lib/{a}-linux-gnu/libc.so.6"),
        "/lib64/libc.so.6".to_string(),
        "/usr/lib64/libc.so.6".to_string(),
        "/lib/libc.so.6".to_string(),
        "/usr/lib/libc.so.6".to_string(),
    ];
    for p in &libcs {
        if let Ok(bytes) = std::fs::read(p)
            && let Some(v) = tags::glibc_version_from_libc(&bytes)
        {
            return Ok(Target::manylinux((3, 12), arch, v));
        }
    }
    if Path::new(&format!("/lib/ld-musl-{a}.so.1")).exists() {
        return Ok(Target::musllinux((3, 12), arch, (1, 2)));
    }
    Ok(Target::manylinux(
        (3, 12),
        arch,
        tags::DEBIAN_BOOKWORM_GLIBC,
    ))
}

/// Installs uv into `<store>/tools/uv-<version>/` from a package index
/// (simple API, PEP 691 JSON or PEP 503 HTML), without Python: the newest
/// final release's wheel for this machine, verified against the index's
/// sha256. Concurrent installs of the same version wait for each other.
pub fn install_into_store(store: &Store, index: &str) -> Result<Uv> {
    let shown = crate::net::redact(index);
    let target = host_target()?;
    let (page_url, body) = match crate::net::local_path(index) {
        Some(dir) => {
            let page = dir.join("uv").join("index.html");
            let body = std::fs::read(&page)
                .map_err(|e| Error::input(&page, format!("cannot read: {e}")))?;
            let abs = std::path::absolute(&dir).unwrap_or(dir);
            let page_url = url::Url::from_directory_path(abs.join("uv"))
                .map_err(|()| Error::input(&abs, "cannot be written as a file: URL"))?;
            (page_url.into(), body)
        }
        None => {
            let url = format!("{}/uv/", index.trim_end_matches('/'));
            let body = crate::net::get_bytes_with(&url, 64 << 20, &[("Accept", SIMPLE_ACCEPT)])?;
            (url, body)
        }
    };
    let files = parse_simple_page(&body, &page_url)
        .map_err(|e| Error::Other(format!("{}: {e}", crate::net::redact(&page_url))))?;
    let (file, wheel) = choose_uv_wheel(&files, &target).ok_or_else(|| {
        Error::Other(format!(
            "the index {shown} lists no final release of uv with a wheel for {} and a sha256 \
             ({} files on its page)",
            target.platform_tags()[0],
            files.len()
        ))
    })?;
    let tools = store.root().join("tools");
    std::fs::create_dir_all(&tools).ctx(|| format!("creating {}", tools.display()))?;
    let dest = tools.join(format!("uv-{}", wheel.version));
    let _lock = store.lock_named(&dest)?;
    let exe = dest.join("uv");
    if !is_executable(&exe) {
        let sha = file.sha256.as_deref().expect("chosen wheels have a sha256");
        let blob = crate::store::fetch::fetch_file(store, &file.url, sha, file.size)?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-uv-")
            .tempdir_in(&tools)
            .ctx(|| format!("creating a temp folder in {}", tools.display()))?;
        extract_uv(&blob, &wheel.filename, tmp.path())?;
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .ctx(|| format!("setting the mode of {}", tmp.path().display()))?;
        if dest.exists() {
            // A partial folder from an interrupted install without its lock.
            std::fs::remove_dir_all(&dest).ctx(|| format!("removing {}", dest.display()))?;
        }
        let tmp_path = tmp.keep();
        std::fs::rename(&tmp_path, &dest).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp_path);
            Error::io(format!("moving uv into {}", dest.display()), e)
        })?;
    }
    probe(&exe, UvOrigin::Store).map_err(|e| {
        Error::Other(format!(
            "uv {} installed at {} does not run: {e}",
            wheel.version,
            exe.display()
        ))
    })
}

/// Extracts `*.data/scripts/uv` (and `uvx`) from the wheel into `dir`, mode 0755.
fn extract_uv(wheel: &Path, filename: &str, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let f = std::fs::File::open(wheel).ctx(|| format!("opening {}", wheel.display()))?;
    let bad = |m: String| Error::Other(format!("{filename}: {m}"));
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let mut found = false;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("reading entry {i}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| bad(format!("reading entry {i}: {e}")))?
            .into_owned();
        let mut parts = name.split('/');
        let (Some(top), Some("scripts"), Some(script), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !top.ends_with(".data") || !matches!(script, "uv" | "uvx") {
            continue;
        }
        let out = dir.join(script);
        let mut w = std::fs::File::create(&out).ctx(|| format!("creating {}", out.display()))?;
        std::io::copy(&mut entry, &mut w).map_err(|e| bad(format!("extracting {name}: {e}")))?;
        w.sync_all().ctx(|| format!("writing {}", out.display()))?;
        drop(w);
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755))
            .ctx(|| format!("setting the mode of {}", out.display()))?;
        found |= script == "uv";
    }
    if !found {
        return Err(bad("the wheel has no `<name>.data/scripts/uv`".into()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running uv
// ---------------------------------------------------------------------------------------------

fn uv_command(uv: &Uv, cwd: &Path) -> Command {
    let mut c = Command::new(&uv.exe);
    c.current_dir(cwd)
        .env("UV_NO_PROGRESS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run_uv(mut cmd: Command, what: &dyn Fn() -> String) -> Result<Output> {
    output_retrying(&mut cmd).map_err(|e| Error::Other(format!("{}: cannot run uv: {e}", what())))
}

/// `cmd.output()`, tried again while the executable is busy: a freshly
/// written executable can be, briefly, while another thread forks.
fn output_retrying(cmd: &mut Command) -> std::io::Result<Output> {
    let mut attempt = 0;
    loop {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(26) && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
            }
            r => return r,
        }
    }
}

/// The last `n` lines of `text`, credentials removed, indented.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    if start > 0 {
        out.push_str("  …\n");
    }
    for l in &lines[start..] {
        out.push_str("  ");
        out.push_str(&redact_text(l));
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// Removes `user:password@` from every URL in free text.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || "\"'<>`)]".contains(c))
            .unwrap_or(rest.len());
        match rest[..end].rfind('@') {
            Some(at) => rest = &rest[at + 1..],
            None => {
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A uv failure: `what` and the tail of uv's messages. `ours` is set when the
/// project uv ran on is one imgbuild wrote, so advice to edit it is dropped.
fn failure(what: &str, out: &Output, ours: bool) -> Error {
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.trim().is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let kept: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            let interpreter = t.starts_with("Using CPython ") && t.contains(" interpreter at");
            let advice = ours && t.starts_with("hint:") && t.contains("requires-python");
            !interpreter && !advice
        })
        .collect();
    let status = match out.status.code() {
        Some(c) => format!("exit code {c}"),
        None => out.status.to_string(),
    };
    Error::Other(format!(
        "{what} failed (uv: {status}):\n{}",
        tail(&kept.join("\n"), 25)
    ))
}

// ---------------------------------------------------------------------------------------------
// Resolving requirements into a uv.lock
// ---------------------------------------------------------------------------------------------

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
pub fn request_key(req: &ResolveRequest, uv_version: &str) -> Digest {
    let env: Vec<(String, Option<String>)> = RESOLUTION_ENV
        .iter()
        .map(|k| (k.to_string(), std::env::var(k).ok()))
        .collect();
    key_with_env(req, uv_version, &env)
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
    check_extra_args(&req.extra_args)?;
    let pyproject = requirements_pyproject(req)?;
    let key = request_key(req, &uv.version);
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

/// A requirements file, includes followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequirementsFile {
    /// PEP 508 requirement strings, in file order, duplicates removed.
    pub requirements: Vec<String>,
    /// `--index-url` / `-i` (the last one given).
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order, duplicates removed.
    pub extra_index_urls: Vec<String>,
    /// `--pre`.
    pub pre: bool,
}

impl RequirementsFile {
    #[cfg(test)]
    /// A resolution request for these requirements.
    pub fn to_request(&self, python: &str, extra_args: Vec<String>) -> ResolveRequest {
        ResolveRequest {
            requirements: self.requirements.clone(),
            python: python.to_string(),
            index_url: self.index_url.clone(),
            extra_index_urls: self.extra_index_urls.clone(),
            pre: self.pre,
            extra_args,
        }
    }
}

/// Reads a pip requirements file: comments, blank lines, `\` continuations,
/// `${VAR}` expansion, `-r`/`--requirement` includes (relative to the file
/// that names them), `-i`/`--index-url`, `--extra-index-url`, `--pre`, and
/// `--hash` on requirement lines (dropped: the lock records the index's
/// hashes). Other options (`-e`, `-c`, `--find-links`, …) are errors naming
/// the file and line.
pub fn parse_requirements_file(path: &Path) -> Result<RequirementsFile> {
    let mut out = RequirementsFile::default();
    let mut stack = Vec::new();
    let env = |k: &str| std::env::var(k).ok();
    read_requirements(path, &mut out, &mut stack, &env)?;
    Ok(out)
}

fn read_requirements(
    path: &Path,
    out: &mut RequirementsFile,
    stack: &mut Vec<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    stack.push(canon);
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |line: usize, m: String| Error::input(path, format!("line {line}: {m}"));
    for (line_no, raw) in logical_lines(&text) {
        let line = expand_env(&strip_comment(&raw), env);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('-') {
            let toks: Vec<&str> = line.split_whitespace().collect();
            let mut i = 0;
            while i < toks.len() {
                let tok = toks[i];
                let (flag, inline) = split_option(tok);
                let value = |i: &mut usize| -> Result<String> {
                    if let Some(v) = inline {
                        return Ok(v.to_string());
                    }
                    *i += 1;
                    toks.get(*i)
                        .map(|v| v.to_string())
                        .ok_or_else(|| err(line_no, format!("`{flag}` needs a value")))
                };
                match flag {
                    "-r" | "--requirement" => {
                        let v = value(&mut i)?;
                        if v.contains("://") {
                            return Err(err(
                                line_no,
                                format!("`{flag} {v}`: only local files can be included"),
                            ));
                        }
                        let inc = dir.join(&v);
                        let inc_canon = std::fs::canonicalize(&inc).unwrap_or(inc.clone());
                        if stack.contains(&inc_canon) {
                            return Err(err(
                                line_no,
                                format!("`{flag} {v}` includes a file that includes this one"),
                            ));
                        }
                        if !inc.is_file() {
                            return Err(err(
                                line_no,
                                format!("`{flag} {v}`: {} does not exist", inc.display()),
                            ));
                        }
                        read_requirements(&inc, out, stack, env)?;
                    }
                    "-i" | "--index-url" => out.index_url = Some(value(&mut i)?),
                    "--extra-index-url" => {
                        let v = value(&mut i)?;
                        if !out.extra_index_urls.contains(&v) {
                            out.extra_index_urls.push(v);
                        }
                    }
                    "--pre" if inline.is_none() => out.pre = true,
                    "-e" | "--editable" => {
                        return Err(err(
                            line_no,
                            "editable requirements (`-e`) are not supported in images; use a \
                             `uv_project` layer for a local project"
                                .into(),
                        ));
                    }
                    "-c" | "--constraint" => {
                        return Err(err(
                            line_no,
                            "constraints files (`-c`) are not supported; pin the versions in the \
                             requirements instead"
                                .into(),
                        ));
                    }
                    "-f" | "--find-links" | "--no-index" => {
                        return Err(err(
                            line_no,
                            format!(
                                "`{flag}` is not supported; use `--index-url` or \
                                 `--extra-index-url` with a package index"
                            ),
                        ));
                    }
                    _ => {
                        return Err(err(
                            line_no,
                            format!(
                                "option `{tok}` is not supported (supported: -r, -i/--index-url, \
                                 --extra-index-url, --pre, and --hash after a requirement)"
                            ),
                        ));
                    }
                }
                i += 1;
            }
            continue;
        }
        let requirement = strip_requirement_options(line).map_err(|m| err(line_no, m))?;
        let parsed = Requirement::parse(&requirement).map_err(|m| {
            err(
                line_no,
                format!("`{requirement}` is not a valid requirement: {m}"),
            )
        })?;
        let requirement = match &parsed.url {
            Some(u) => match absolute_reference(u, dir) {
                Some(abs) => requirement.replacen(u.as_str(), &abs, 1),
                None => requirement,
            },
            None => requirement,
        };
        if !out.requirements.contains(&requirement) {
            out.requirements.push(requirement);
        }
    }
    stack.pop();
    Ok(())
}

/// `--flag=value` → (`--flag`, Some(value)); `-rfile` → (`-r`, Some(file)).
fn split_option(tok: &str) -> (&str, Option<&str>) {
    if tok.starts_with("--") {
        return match tok.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (tok, None),
        };
    }
    if tok.len() > 2 && tok.is_char_boundary(2) {
        let (f, v) = tok.split_at(2);
        return (f, Some(v.strip_prefix('=').unwrap_or(v)));
    }
    (tok, None)
}

/// Physical lines joined at trailing `\`, with the first line's number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (n, mut s) = cur.take().unwrap_or((i + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) if !line.trim_start().starts_with('#') => {
                s.push_str(head);
                cur = Some((n, s));
            }
            _ => {
                s.push_str(line);
                out.push((n, s));
            }
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// Drops `# comment` (at the start, or after whitespace).
fn strip_comment(line: &str) -> String {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return line[..i].to_string();
        }
    }
    line.to_string()
}

/// `${NAME}` (uppercase letters, digits, `_`) → its value, as pip does; unset
/// variables are left as written.
fn expand_env(line: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(end)
                if end > 0
                    && after[..end]
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                match env(&after[..end]) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[i..i + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Drops `--hash` options after a requirement; any other option is an error.
fn strip_requirement_options(line: &str) -> std::result::Result<String, String> {
    let b = line.as_bytes();
    let cut = (1..b.len())
        .find(|&i| b[i - 1].is_ascii_whitespace() && line[i..].starts_with("--"))
        .unwrap_or(b.len());
    let toks: Vec<&str> = line[cut..].split_whitespace().collect();
    let mut i = 0;
    while i < toks.len() {
        let (flag, inline) = split_option(toks[i]);
        if flag != "--hash" {
            return Err(format!(
                "option `{}` after a requirement is not supported (only --hash is)",
                toks[i]
            ));
        }
        if inline.is_none() {
            i += 1;
        }
        i += 1;
    }
    Ok(line[..cut].trim().to_string())
}

/// A relative or absolute path after `@` → a `file://` URL; `None` when the
/// reference is already a URL.
fn absolute_reference(reference: &str, dir: &Path) -> Option<String> {
    let path = if let Some(rest) = reference.strip_prefix("file:") {
        if rest.starts_with("//") {
            return None;
        }
        rest
    } else if reference.contains("://") {
        return None;
    } else {
        reference
    };
    let abs = std::path::absolute(dir.join(path)).ok()?;
    Some(format!("file://{}", abs.display()))
}

// ---------------------------------------------------------------------------------------------
// Building wheels
// ---------------------------------------------------------------------------------------------

/// Runs `uv build --wheel` for `source` (a project folder or an sdist) into a
/// fresh folder next to `out_dir`'s wheels and moves the one wheel it made
/// into `out_dir`.
fn uv_build(
    uv: &Uv,
    source: &Path,
    out_dir: &Path,
    index: Option<&str>,
    what: &dyn Fn() -> String,
) -> Result<PathBuf> {
    uv_build_with(uv, source, out_dir, index, None, what)
}

/// `uv build --wheel`, isolated, or with `python` (a prepared build
/// environment) and `--no-build-isolation`.
fn uv_build_with(
    uv: &Uv,
    source: &Path,
    out_dir: &Path,
    index: Option<&str>,
    python: Option<&Path>,
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
    if let Some(epoch) = std::env::var_os("SOURCE_DATE_EPOCH") {
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
    uv_build(uv, project_dir, out_dir, index, &|| {
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
        return uv_build(uv, project_dir, out_dir, index, &what);
    };
    requires.sort();
    let python = build_env(uv, store, &requires, index)?;
    uv_build_with(uv, project_dir, out_dir, index, Some(&python), &what)
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
    let wheel = uv_build(uv, sdist, out_dir, index, &|| {
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
    let out = run_uv(cmd, &what)?;
    if !out.status.success() {
        return Err(failure(&what(), &out, false));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Lock freshness
// ---------------------------------------------------------------------------------------------

fn normalize(name: &str) -> String {
    crate::python::markers::normalize_name(name)
}

/// One requirement as pyproject.toml states it or uv.lock records it.
#[derive(Debug, Clone)]
struct Req {
    /// For messages.
    text: String,
    /// Where it is listed, for messages (`dependency`, `optional dependency (extra `cli`)`).
    role: String,
    name: String,
    extras: BTreeSet<String>,
    spec: String,
    /// A direct reference (`@ url` in pyproject.toml; `url`, `git`, `path`,
    /// `directory` or `editable` in uv.lock).
    direct: Option<String>,
    marker: Option<String>,
}

fn req_from_pep508(
    text: &str,
    role: &str,
    extra: Option<&str>,
) -> std::result::Result<Req, String> {
    let p = Requirement::parse(text).map_err(|e| format!("`{text}` cannot be parsed: {e}"))?;
    let marker = match (p.marker_text, extra) {
        (m, None) => m,
        (None, Some(e)) => Some(format!("extra == '{}'", normalize(e))),
        (Some(m), Some(e)) => Some(format!("({m}) and extra == '{}'", normalize(e))),
    };
    Ok(Req {
        text: text.trim().to_string(),
        role: role.to_string(),
        name: normalize(&p.name),
        extras: p.extras.iter().map(|e| normalize(e)).collect(),
        spec: p.specifiers_text,
        direct: p.url,
        marker,
    })
}

fn req_from_lock(t: &toml::Value, role: &str) -> Option<Req> {
    let t = t.as_table()?;
    let name = normalize(t.get("name")?.as_str()?);
    let extras: BTreeSet<String> = t
        .get("extras")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).map(normalize).collect())
        .unwrap_or_default();
    let spec = t
        .get("specifier")
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string();
    let marker = t.get("marker").and_then(|m| m.as_str()).map(str::to_string);
    let direct = ["url", "git", "path", "directory", "editable"]
        .iter()
        .find_map(|k| {
            t.get(*k)
                .and_then(|v| v.as_str())
                .map(|v| format!("{k}:{v}"))
        });
    let mut text = name.clone();
    if !extras.is_empty() {
        text.push_str(&format!(
            "[{}]",
            extras.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    match &direct {
        Some(d) => text.push_str(&format!(" @ {}", d.split_once(':').map_or("", |x| x.1))),
        None => text.push_str(&spec),
    }
    if let Some(m) = &marker {
        text.push_str(&format!("; {m}"));
    }
    Some(Req {
        text,
        role: role.to_string(),
        name,
        extras,
        spec,
        direct,
        marker,
    })
}

/// Versions that tell specifier sets apart: each operand and its neighbours.
fn probe_versions(specs: &[&Specifiers]) -> Vec<Version> {
    let mut texts: BTreeSet<String> = ["0", "0.0.1", "1", "999"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in specs {
        for sp in &s.0 {
            let Some(v) = sp.version() else { continue };
            let vt = v.to_string();
            let rel: Vec<u64> = v.release().to_vec();
            let epoch = if v.epoch() > 0 {
                format!("{}!", v.epoch())
            } else {
                String::new()
            };
            let join = |r: &[u64]| {
                format!(
                    "{epoch}{}",
                    r.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
                )
            };
            for suffix in ["", "a1", ".dev0", ".post1", "+local"] {
                texts.insert(format!("{vt}{suffix}"));
            }
            for n in 1..=rel.len() {
                let prefix = &rel[..n];
                texts.insert(join(prefix));
                let mut up = prefix.to_vec();
                *up.last_mut().expect("n >= 1") += 1;
                texts.insert(join(&up));
                texts.insert(format!("{}.0", join(&up)));
                if let Some(&last) = prefix.last()
                    && last > 0
                {
                    let mut down = prefix.to_vec();
                    *down.last_mut().expect("n >= 1") -= 1;
                    texts.insert(join(&down));
                    texts.insert(format!("{}.99", join(&down)));
                }
            }
            for extra in [&[0u64][..], &[1], &[0, 0], &[0, 1]] {
                let mut r = rel.clone();
                r.extend_from_slice(extra);
                texts.insert(join(&r));
            }
        }
    }
    texts
        .iter()
        .filter_map(|t| Version::parse(t).ok())
        .collect()
}

/// Whether two specifier lists admit the same versions (tested on the
/// versions around their operands); unparsable lists compare as text.
fn specs_equivalent(a: &str, b: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if squash(a) == squash(b) {
        return true;
    }
    let (Ok(sa), Ok(sb)) = (Specifiers::parse(a), Specifiers::parse(b)) else {
        return false;
    };
    if sa.0.iter().chain(&sb.0).any(|s| s.version().is_none()) {
        return false;
    }
    probe_versions(&[&sa, &sb])
        .iter()
        .all(|v| sa.contains(v) == sb.contains(v))
}

fn collect_literals(m: &Marker, out: &mut Vec<(MarkerVar, String)>) {
    match m {
        Marker::And(items) | Marker::Or(items) => {
            items.iter().for_each(|i| collect_literals(i, out));
        }
        Marker::Compare { lhs, rhs, .. } => match (lhs, rhs) {
            (MarkerValue::Var(v), MarkerValue::Str(s))
            | (MarkerValue::Str(s), MarkerValue::Var(v)) => {
                out.push((*v, s.clone()));
            }
            _ => {}
        },
    }
}

/// Whether two markers hold in the same environments where the Python
/// version is within `python` (the lock's `requires-python`, as uv assumes).
/// They are evaluated on every combination of the values their comparisons
/// mention (and values around the versions); absent markers always hold.
fn markers_equivalent(a: Option<&str>, b: Option<&str>, python: Option<&Specifiers>) -> bool {
    let squash = |s: Option<&str>| s.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
    if squash(a) == squash(b) {
        return true;
    }
    let parse = |m: Option<&str>| m.map(Marker::parse).transpose();
    let (Ok(ma), Ok(mb)) = (parse(a), parse(b)) else {
        return false;
    };
    let mut lits = Vec::new();
    for m in [&ma, &mb].into_iter().flatten() {
        collect_literals(m, &mut lits);
    }
    // Python versions: the interpreter axis (python_version follows it).
    let mut pythons: BTreeSet<String> = ["2.7.18", "3.0.0", "3.12.0", "4.0.0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut strings: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut extras: BTreeSet<String> = BTreeSet::new();
    let mut groups: BTreeSet<String> = BTreeSet::new();
    for (var, lit) in &lits {
        match var {
            MarkerVar::PythonVersion
            | MarkerVar::PythonFullVersion
            | MarkerVar::ImplementationVersion => {
                let base = lit.trim().trim_end_matches(".*");
                if Version::parse(lit.trim()).is_ok() {
                    pythons.insert(lit.trim().to_string());
                }
                if let Ok(v) = Version::parse(base) {
                    let r = v.release();
                    let (maj, min, pat) = (r[0], r.get(1).copied().unwrap_or(0), r.get(2).copied());
                    for mm in [min.saturating_sub(1), min, min + 1] {
                        let p = pat.unwrap_or(0);
                        for pp in [0, p.saturating_sub(1), p, p + 1, 99] {
                            pythons.insert(format!("{maj}.{mm}.{pp}"));
                        }
                    }
                }
            }
            MarkerVar::Extra | MarkerVar::Extras => {
                extras.insert(normalize(lit));
            }
            MarkerVar::DependencyGroups => {
                groups.insert(normalize(lit));
            }
            other => {
                strings.entry(other.name()).or_default().insert(lit.clone());
            }
        }
    }
    if let Some(range) = python {
        pythons.retain(|p| Version::parse(p).is_ok_and(|v| range.contains(&v)));
    }
    let string_axes: Vec<(&'static str, Vec<String>)> = strings
        .into_iter()
        .map(|(k, mut v)| {
            v.insert("imgbuild-other".into());
            (k, v.into_iter().collect())
        })
        .collect();
    let extra_opts: Vec<Option<String>> = std::iter::once(None)
        .chain(extras.into_iter().map(Some))
        .collect();
    let group_opts: Vec<Option<String>> = std::iter::once(None)
        .chain(groups.into_iter().map(Some))
        .collect();
    let mut total = pythons.len() * extra_opts.len() * group_opts.len();
    for (_, vals) in &string_axes {
        total = total.saturating_mul(vals.len());
    }
    if total > 50_000 {
        return false;
    }
    let eval = |m: &Option<Marker>, env: &MarkerEnv, e: &[&str], g: &[&str]| {
        m.as_ref().is_none_or(|m| m.evaluate(env, e, g))
    };
    let mut idx = vec![0usize; string_axes.len()];
    loop {
        for py in &pythons {
            let mut env = MarkerEnv::for_target(py, "x86_64");
            for ((name, vals), &i) in string_axes.iter().zip(&idx) {
                let v = vals[i].clone();
                match *name {
                    "implementation_name" => env.implementation_name = v,
                    "os_name" => env.os_name = v,
                    "platform_machine" => env.platform_machine = v,
                    "platform_python_implementation" => env.platform_python_implementation = v,
                    "platform_release" => env.platform_release = v,
                    "platform_system" => env.platform_system = v,
                    "platform_version" => env.platform_version = v,
                    "sys_platform" => env.sys_platform = v,
                    _ => {}
                }
            }
            for e in &extra_opts {
                let e: Vec<&str> = e.iter().map(String::as_str).collect();
                for g in &group_opts {
                    let g: Vec<&str> = g.iter().map(String::as_str).collect();
                    if eval(&ma, &env, &e, &g) != eval(&mb, &env, &e, &g) {
                        return false;
                    }
                }
            }
        }
        // Next combination of the string axes.
        let mut k = 0;
        loop {
            if k == idx.len() {
                return true;
            }
            idx[k] += 1;
            if idx[k] < string_axes[k].1.len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}

fn direct_equivalent(p: &Req, l: &Req, sourced: bool) -> bool {
    if sourced {
        return true;
    }
    match (&p.direct, &l.direct) {
        (None, None) => true,
        (Some(pu), Some(ld)) => match ld.split_once(':') {
            Some(("url", lu)) if !pu.starts_with("git+") => {
                strip_fragment(pu).trim_end_matches('/') == strip_fragment(lu).trim_end_matches('/')
            }
            _ => true,
        },
        _ => false,
    }
}

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

/// What one pyproject.toml declares.
#[derive(Debug, Default)]
struct Declared {
    /// Normalized `project.name`; `None` without a `[project]` table.
    name: Option<String>,
    version: Option<String>,
    requires_python: Option<String>,
    /// `dependencies` + `optional-dependencies` (with `extra ==` markers);
    /// `None` when either is dynamic.
    requires_dist: Option<Vec<Req>>,
    /// Normalized extra names; `None` when dynamic.
    extras: Option<BTreeSet<String>>,
    /// Dependency groups, `include-group` flattened, legacy
    /// `tool.uv.dev-dependencies` merged into `dev`.
    groups: BTreeMap<String, Vec<Req>>,
    /// Names with `tool.uv.sources` entries.
    sourced: BTreeSet<String>,
    /// `tool.uv` constraint / override / build-constraint dependencies.
    manifest: BTreeMap<&'static str, Vec<Req>>,
}

fn str_list(v: Option<&toml::Value>, field: &str) -> std::result::Result<Vec<String>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = v
        .as_array()
        .ok_or_else(|| format!("`{field}` is not a list"))?;
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{field}` holds a non-string"))
        })
        .collect()
}

fn flatten_group(
    groups: &toml::Table,
    name: &str,
    stack: &mut Vec<String>,
) -> std::result::Result<Vec<String>, String> {
    let norm = normalize(name);
    if stack.contains(&norm) {
        return Err(format!("dependency group `{name}` includes itself"));
    }
    let (_, items) = groups
        .iter()
        .find(|(k, _)| normalize(k) == norm)
        .ok_or_else(|| format!("dependency group `{name}` is included but not defined"))?;
    let items = items
        .as_array()
        .ok_or_else(|| format!("dependency group `{name}` is not a list"))?;
    stack.push(norm);
    let mut out = Vec::new();
    for it in items {
        if let Some(s) = it.as_str() {
            out.push(s.to_string());
        } else if let Some(inc) = it.get("include-group").and_then(|g| g.as_str()) {
            out.extend(flatten_group(groups, inc, stack)?);
        } else {
            return Err(format!(
                "dependency group `{name}` has an entry that is neither a string nor an include-group"
            ));
        }
    }
    stack.pop();
    Ok(out)
}

fn read_declared(text: &str) -> std::result::Result<Declared, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("cannot be parsed: {e}"))?;
    let mut d = Declared::default();
    let tool_uv = doc
        .get("tool")
        .and_then(|t| t.get("uv"))
        .and_then(|t| t.as_table());
    if let Some(project) = doc.get("project").and_then(|p| p.as_table()) {
        d.name = project.get("name").and_then(|n| n.as_str()).map(normalize);
        let dynamic = str_list(project.get("dynamic"), "project.dynamic")?;
        let is_dynamic = |f: &str| dynamic.iter().any(|x| x == f);
        if !is_dynamic("version") {
            d.version = project
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        d.requires_python = project
            .get("requires-python")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if !is_dynamic("dependencies") && !is_dynamic("optional-dependencies") {
            let mut reqs = Vec::new();
            for r in str_list(project.get("dependencies"), "project.dependencies")? {
                reqs.push(req_from_pep508(&r, "dependency", None)?);
            }
            let mut extras = BTreeSet::new();
            if let Some(opt) = project.get("optional-dependencies") {
                let opt = opt
                    .as_table()
                    .ok_or("`project.optional-dependencies` is not a table")?;
                for (extra, list) in opt {
                    extras.insert(normalize(extra));
                    let field = format!("project.optional-dependencies.{extra}");
                    let role = format!("optional dependency (extra `{}`)", normalize(extra));
                    for r in str_list(Some(list), &field)? {
                        reqs.push(req_from_pep508(&r, &role, Some(extra))?);
                    }
                }
            }
            d.requires_dist = Some(reqs);
            d.extras = Some(extras);
        }
    }
    let empty = toml::Table::new();
    let groups = doc
        .get("dependency-groups")
        .and_then(|g| g.as_table())
        .unwrap_or(&empty);
    for name in groups.keys() {
        let role = String::new();
        let list = flatten_group(groups, name, &mut Vec::new())?;
        let entry = d.groups.entry(normalize(name)).or_default();
        for r in list {
            entry.push(req_from_pep508(&r, &role, None)?);
        }
    }
    if let Some(uv) = tool_uv {
        let legacy = str_list(uv.get("dev-dependencies"), "tool.uv.dev-dependencies")?;
        if !legacy.is_empty() {
            let entry = d.groups.entry("dev".into()).or_default();
            for r in legacy {
                entry.push(req_from_pep508(&r, "", None)?);
            }
        }
        if let Some(src) = uv.get("sources").and_then(|s| s.as_table()) {
            d.sourced = src.keys().map(|k| normalize(k)).collect();
        }
        for (field, key) in [
            ("constraint-dependencies", "constraints"),
            ("override-dependencies", "overrides"),
            ("build-constraint-dependencies", "build-constraints"),
        ] {
            let mut reqs = Vec::new();
            for r in str_list(uv.get(field), &format!("tool.uv.{field}"))? {
                reqs.push(req_from_pep508(&r, "", None)?);
            }
            d.manifest.insert(key, reqs);
        }
    }
    Ok(d)
}

fn lock_reqs(v: Option<&toml::Value>, role: &str) -> Vec<Req> {
    v.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| req_from_lock(x, role)).collect())
        .unwrap_or_default()
}

fn lock_groups(v: Option<&toml::Value>) -> BTreeMap<String, Vec<Req>> {
    v.and_then(|v| v.as_table())
        .map(|t| {
            t.iter()
                .map(|(k, list)| (normalize(k), lock_reqs(Some(list), "")))
                .collect()
        })
        .unwrap_or_default()
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
    for member in &members {
        if root.name.as_deref() == Some(member.as_str()) {
            continue;
        }
        let Some((_, rel)) = packages.iter().find_map(|p| {
            let n = p.get("name").and_then(|n| n.as_str()).map(normalize)?;
            (n == *member).then(|| source_path(p)).flatten()
        }) else {
            out.push(format!(
                "uv.lock lists workspace member `{member}` without a source folder"
            ));
            continue;
        };
        let prefix = format!("workspace member `{member}`: ");
        let file = workspace_root.join(rel).join("pyproject.toml");
        let declared = match std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot be read: {e}"))
            .and_then(|t| read_declared(&t))
        {
            Ok(d) => d,
            Err(e) => {
                out.push(format!("{prefix}{}: {e}", file.display()));
                continue;
            }
        };
        match &declared.name {
            Some(n) if n == member => {}
            _ => {
                out.push(format!(
                    "{prefix}{} does not declare project `{member}`",
                    file.display()
                ));
                continue;
            }
        }
        compare_project(&prefix, &declared, member, &packages, rel, python, &mut out);
        requires_python.extend(declared.requires_python.iter().cloned());
    }
    if !requires_python.is_empty()
        && let Some(locked) = lock.get("requires-python").and_then(|v| v.as_str())
    {
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
    let locked_manifest = |k: &str| lock_reqs(manifest.and_then(|m| m.get(k)), "");
    for (key, what) in [
        ("constraints", "constraint "),
        ("overrides", "override "),
        ("build-constraints", "build constraint "),
    ] {
        let declared = root.manifest.get(key).cloned().unwrap_or_default();
        compare_reqs(what, &declared, &locked_manifest(key), &root_ctx, &mut out);
    }
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

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// uv and the package index as this machine is set up, for `doctor`-style
/// reports (index credentials removed).
pub fn describe(store: &Store) -> serde_json::Value {
    let found = locate(
        store.root(),
        std::env::var_os("IMGBUILD_UV"),
        std::env::var_os("PATH"),
    );
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
    let index = match default_index_source() {
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
    use super::*;
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    fn new_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        (dir, store)
    }

    fn write_exe(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn version_script(v: &str) -> String {
        format!("#!/bin/sh\necho \"uv {v} (fake 2024-01-01)\"\n")
    }

    // --- finding uv ---------------------------------------------------------------------------

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

    // --- index configuration ------------------------------------------------------------------

    #[test]
    fn index_from_environment_and_pip_config() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        std::fs::write(
            &conf,
            "# comment\n[install]\nindex-url = https://wrong.example/simple\n\n[global]\n\
             timeout = 60\nindex_url = https://u:p@index.example/simple\n",
        )
        .unwrap();
        let vars: HashMap<&str, &str> = [
            ("PIP_INDEX_URL", "https://pip-env.example/simple"),
            ("UV_INDEX_URL", "https://uv-old.example/simple"),
            ("UV_DEFAULT_INDEX", ""),
        ]
        .into_iter()
        .collect();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        assert_eq!(
            index_from_config(&env, std::slice::from_ref(&conf)),
            Some((
                "https://uv-old.example/simple".into(),
                "UV_INDEX_URL".into()
            ))
        );
        let no_env = |_: &str| None;
        let missing = dir.path().join("missing.conf");
        assert_eq!(
            index_from_config(&no_env, &[missing, conf.clone()]),
            Some((
                "https://u:p@index.example/simple".into(),
                conf.display().to_string()
            ))
        );
        assert_eq!(index_from_config(&no_env, &[]), None);
    }

    #[test]
    fn pip_config_file_order() {
        let vars: HashMap<&str, &str> = [
            ("HOME", "/home/me"),
            ("PIP_CONFIG_FILE", "/etc/custom.conf"),
        ]
        .into_iter()
        .collect();
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        assert_eq!(
            pip_config_files(&env),
            [
                "/etc/custom.conf",
                "/home/me/.config/pip/pip.conf",
                "/home/me/.pip/pip.conf",
                "/etc/pip.conf",
                "/etc/xdg/pip/pip.conf"
            ]
            .map(PathBuf::from)
        );
        let off = |k: &str| (k == "PIP_CONFIG_FILE").then(|| "/dev/null".to_string());
        assert!(pip_config_files(&off).is_empty());
    }

    #[test]
    fn pip_conf_parsing() {
        assert_eq!(
            pip_conf_index("[global]\nindex-url: https://a.example/simple  \n"),
            Some("https://a.example/simple".into())
        );
        assert_eq!(
            pip_conf_index("[GLOBAL]\n; c\nINDEX-URL=https://b.example/simple\n"),
            Some("https://b.example/simple".into())
        );
        assert_eq!(
            pip_conf_index("[global]\nextra-index-url = https://c.example/simple\n"),
            None
        );
        assert_eq!(
            pip_conf_index("index-url = https://d.example/simple\n"),
            None
        );
    }

    // --- credentials --------------------------------------------------------------------------

    #[test]
    fn credentials_are_redacted_in_text() {
        assert_eq!(
            redact_text("error: GET https://user:s3cret@index.example/simple/x/ failed"),
            "error: GET https://index.example/simple/x/ failed"
        );
        assert_eq!(
            redact_text("`https://tok@a.example` and 'http://u:p@b.example:8080/x'"),
            "`https://a.example` and 'http://b.example:8080/x'"
        );
        assert_eq!(
            redact_text("mail me@example.com, see https://a.example/a@b"),
            "mail me@example.com, see https://a.example/a@b"
        );
        assert!(!tail("x https://u:p@h.example/y\n", 3).contains("u:p"));
    }

    // --- simple API pages ---------------------------------------------------------------------

    /// `%+F` once decoded to 0x0F (the hex parser took a sign); a `%`
    /// without two hex digits now stays as written everywhere.
    #[test]
    fn malformed_escapes_stay_as_written() {
        assert_eq!(percent_decode("uv-1.0%2Blocal.whl"), "uv-1.0+local.whl");
        assert_eq!(percent_decode("a%+Fb"), "a%+Fb");
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("a%ff"), "a\u{fffd}");
    }

    #[test]
    fn urls_join_like_a_browser() {
        let page = "https://index.example/simple/uv/";
        assert_eq!(
            join_url(page, "../../packages/ab/uv-1.whl#sha256=00").as_deref(),
            Some("https://index.example/packages/ab/uv-1.whl#sha256=00")
        );
        assert_eq!(
            join_url(page, "/p/uv.whl").as_deref(),
            Some("https://index.example/p/uv.whl")
        );
        assert_eq!(
            join_url(page, "//files.example/uv.whl").as_deref(),
            Some("https://files.example/uv.whl")
        );
        assert_eq!(
            join_url(page, "uv.whl").as_deref(),
            Some("https://index.example/simple/uv/uv.whl")
        );
        assert_eq!(
            join_url(page, "https://other.example/x.whl").as_deref(),
            Some("https://other.example/x.whl")
        );
        assert_eq!(
            join_url("https://index.example/simple/uv", "x.whl").as_deref(),
            Some("https://index.example/simple/x.whl")
        );
        assert_eq!(
            join_url("file:///srv/idx/uv/", "../files/x.whl").as_deref(),
            Some("file:///srv/idx/files/x.whl")
        );
        assert_eq!(
            join_url("http://127.0.0.1:8080/simple/uv/", "./a/../b.whl?x=1#f").as_deref(),
            Some("http://127.0.0.1:8080/simple/uv/b.whl?x=1#f")
        );
        // Percent escapes stay; spaces in a path are escaped, as browsers do.
        assert_eq!(
            join_url(page, "a b/uv-1.0%2Blocal.whl").as_deref(),
            Some("https://index.example/simple/uv/a%20b/uv-1.0%2Blocal.whl")
        );
        // What is no URL is no link.
        assert_eq!(join_url(page, "http://[::1"), None);
        assert_eq!(join_url("not a url", "x.whl"), None);
    }

    #[test]
    fn json_project_page() {
        let page = r#"{
          "meta": {"api-version": "1.1"},
          "name": "uv",
          "files": [
            {"filename": "uv-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "url": "../../files/uv-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "hashes": {"sha256": "ABCDEF"}, "size": 123, "yanked": false},
            {"filename": "uv-0.9.0.tar.gz", "url": "https://files.example/uv-0.9.0.tar.gz",
             "hashes": {}, "yanked": "broken"},
            {"filename": "no-url"}
          ]
        }"#;
        let files = parse_simple_page(page.as_bytes(), "https://index.example/simple/uv/").unwrap();
        assert_eq!(
            files,
            vec![
                IndexFile {
                    filename: "uv-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
                        .into(),
                    url: "https://index.example/files/uv-1.0.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl".into(),
                    sha256: Some("abcdef".into()),
                    size: Some(123),
                    yanked: false,
                },
                IndexFile {
                    filename: "uv-0.9.0.tar.gz".into(),
                    url: "https://files.example/uv-0.9.0.tar.gz".into(),
                    sha256: None,
                    size: None,
                    yanked: true,
                },
            ]
        );
        assert!(parse_simple_page(b"{not json", "https://index.example/").is_err());
    }

    #[test]
    fn html_project_page() {
        let page = r#"<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.0"><title>Links for uv</title></head>
<body><h1>Links for uv</h1>
<a href="../../files/uv-1.0.0-py3-none-any.whl#sha256=AA11" data-requires-python="&gt;=3.8">uv-1.0.0-py3-none-any.whl</a><br/>
<A HREF='https://files.example/uv-1.1.0-py3-none-any.whl?a=1&amp;b=2#sha256=bb22' data-yanked>uv-1.1.0-py3-none-any.whl</A>
<a href="uv-1.2.0%2Blocal-py3-none-any.whl"></a>
<abbr>not a link</abbr>
</body></html>"#;
        let files = parse_simple_page(page.as_bytes(), "https://index.example/simple/uv/").unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files[0].filename, "uv-1.0.0-py3-none-any.whl");
        assert_eq!(
            files[0].url,
            "https://index.example/files/uv-1.0.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("aa11"));
        assert!(!files[0].yanked);
        assert_eq!(
            files[1].url,
            "https://files.example/uv-1.1.0-py3-none-any.whl?a=1&b=2"
        );
        assert!(files[1].yanked);
        assert_eq!(files[1].sha256.as_deref(), Some("bb22"));
        assert_eq!(files[2].filename, "uv-1.2.0+local-py3-none-any.whl");
        assert_eq!(files[2].sha256, None);
        let based = r#"<base href="https://mirror.example/pkgs/"><a href="x/uv-1-py3-none-any.whl">uv-1-py3-none-any.whl</a>"#;
        let files = parse_simple_html(based, "https://index.example/simple/uv/");
        assert_eq!(
            files[0].url,
            "https://mirror.example/pkgs/x/uv-1-py3-none-any.whl"
        );
    }

    fn file(name: &str, yanked: bool) -> IndexFile {
        IndexFile {
            filename: name.into(),
            url: format!("https://files.example/{name}"),
            sha256: Some("00".into()),
            size: None,
            yanked,
        }
    }

    #[test]
    fn newest_final_release_with_a_wheel_for_the_host() {
        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        let files = vec![
            file(
                "uv-0.8.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                false,
            ),
            file("uv-0.8.0-py3-none-musllinux_1_1_x86_64.whl", false),
            file(
                "uv-0.9.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                false,
            ),
            file(
                "uv-0.9.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                false,
            ),
            file(
                "uv-0.10.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                true,
            ),
            file(
                "uv-0.11.0rc1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                false,
            ),
            file("uv-0.12.0-py3-none-manylinux_2_40_x86_64.whl", false),
            file("uv-0.12.0-py3-none-win_amd64.whl", false),
            file("uv-0.12.0.tar.gz", false),
            file("other-9.0-py3-none-any.whl", false),
        ];
        let (f, w) = choose_uv_wheel(&files, &t).unwrap();
        assert_eq!(w.version, "0.9.0");
        assert!(f.filename.contains("x86_64"));
        let arm = Target::manylinux((3, 12), Arch::Aarch64, (2, 36));
        assert_eq!(choose_uv_wheel(&files, &arm).unwrap().1.version, "0.9.0");
        let musl = Target::musllinux((3, 12), Arch::X86_64, (1, 2));
        assert_eq!(choose_uv_wheel(&files, &musl).unwrap().1.version, "0.8.0");
        let mut unhashed = files.clone();
        unhashed.iter_mut().for_each(|f| f.sha256 = None);
        assert!(choose_uv_wheel(&unhashed, &t).is_none());
    }

    // --- installing into the store, end to end, offline ---------------------------------------

    fn fake_uv_wheel(version: &str) -> (String, Vec<u8>) {
        use zip::write::SimpleFileOptions;
        let arch = std::env::consts::ARCH;
        let name = format!("uv-{version}-py3-none-manylinux_2_17_{arch}.manylinux2014_{arch}.whl");
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().unix_permissions(0o644);
        for (path, body) in [
            (
                format!("uv-{version}.dist-info/METADATA"),
                "Name: uv\n".to_string(),
            ),
            (
                format!("uv-{version}.data/scripts/uv"),
                version_script(version),
            ),
            (
                format!("uv-{version}.data/scripts/uvx"),
                "#!/bin/sh\necho uvx\n".to_string(),
            ),
            (format!("uv-{version}.dist-info/RECORD"), String::new()),
        ] {
            w.start_file(path, opts).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        (name, w.finish().unwrap().into_inner())
    }

    type Routes = HashMap<String, (String, Vec<u8>)>;

    /// A one-thread HTTP/1.1 server; returns its base URL and the request heads it saw.
    fn serve(routes: Routes) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(head);
                let (status, ctype, body) = match routes.get(&path) {
                    Some((c, body)) => ("200 OK", c.as_str(), body.as_slice()),
                    None => ("404 Not Found", "text/plain", &b"not found"[..]),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(body);
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn check_installed(store: &Store, uv: &Uv) {
        let dir = store.root().join("tools/uv-0.0.1");
        assert_eq!(uv.version, "0.0.1");
        assert_eq!(uv.origin, UvOrigin::Store);
        assert_eq!(uv.exe, dir.join("uv"));
        for f in ["uv", "uvx"] {
            let m = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o755, "{f}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(store.root().join("tools"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![OsString::from("uv-0.0.1")]);
        let found = locate(store.root(), None, Some(OsString::new()))
            .unwrap()
            .unwrap();
        assert_eq!(&found, uv);
    }

    #[test]
    fn install_from_a_json_index_over_http() {
        let (name, wheel) = fake_uv_wheel("0.0.1");
        let sha = crate::digest::hex_sha256(&wheel);
        let arch = std::env::consts::ARCH;
        let page = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": "uv",
            "files": [
                {"filename": name, "url": format!("../../files/{name}"),
                 "hashes": {"sha256": sha}, "size": wheel.len()},
                {"filename": format!("uv-0.0.2a1-py3-none-manylinux_2_17_{arch}.whl"),
                 "url": "/files/pre.whl", "hashes": {"sha256": "00"}},
                {"filename": format!("uv-0.0.3-py3-none-manylinux_2_17_{arch}.whl"),
                 "url": "/files/yanked.whl", "hashes": {"sha256": "00"}, "yanked": "bad build"},
                {"filename": "uv-0.0.4-py3-none-win_amd64.whl",
                 "url": "/files/win.whl", "hashes": {"sha256": "00"}},
            ]
        });
        let mut routes = Routes::new();
        routes.insert(
            "/simple/uv/".into(),
            (
                "application/vnd.pypi.simple.v1+json".into(),
                page.to_string().into_bytes(),
            ),
        );
        routes.insert(
            format!("/files/{name}"),
            ("application/octet-stream".into(), wheel),
        );
        let (base, seen) = serve(routes);
        let (_d, store) = new_store();
        let uv = install_into_store(&store, &format!("{base}/simple/")).unwrap();
        check_installed(&store, &uv);
        let heads = seen.lock().unwrap().clone();
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains("application/vnd.pypi.simple.v1+json"),
            "{}",
            heads[0]
        );
        assert_eq!(heads.len(), 2, "the page and the wheel");
        // Installed already: only the page is asked for again.
        let again = install_into_store(&store, &format!("{base}/simple")).unwrap();
        assert_eq!(again, uv);
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn install_from_an_html_index_over_http_and_from_a_folder() {
        let (name, wheel) = fake_uv_wheel("0.0.1");
        let sha = crate::digest::hex_sha256(&wheel);
        let page = format!(
            "<html><body>\n<a href=\"../../files/{name}#sha256={sha}\">{name}</a><br>\n\
             <a href=\"../../files/bad.whl#sha256={sha}\" data-yanked=\"\">uv-0.0.9-py3-none-any.whl</a>\n\
             </body></html>"
        );
        let mut routes = Routes::new();
        routes.insert(
            "/simple/uv/".into(),
            ("text/html".into(), page.clone().into_bytes()),
        );
        routes.insert(
            format!("/files/{name}"),
            ("application/octet-stream".into(), wheel.clone()),
        );
        let (base, _) = serve(routes);
        let (_d, store) = new_store();
        let uv = install_into_store(&store, &format!("{base}/simple")).unwrap();
        check_installed(&store, &uv);

        // A simple index laid out in a folder.
        let idx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(idx.path().join("simple/uv")).unwrap();
        std::fs::create_dir_all(idx.path().join("files")).unwrap();
        std::fs::write(idx.path().join("simple/uv/index.html"), &page).unwrap();
        std::fs::write(idx.path().join("files").join(&name), &wheel).unwrap();
        let (_d2, store2) = new_store();
        let uv2 = install_into_store(
            &store2,
            &format!("file://{}", idx.path().join("simple").display()),
        )
        .unwrap();
        check_installed(&store2, &uv2);
    }

    #[test]
    fn install_errors_name_the_index_without_credentials() {
        let mut routes = Routes::new();
        routes.insert(
            "/simple/uv/".into(),
            ("text/html".into(), b"<html><body></body></html>".to_vec()),
        );
        let (base, _) = serve(routes);
        let (_d, store) = new_store();
        let index = base.replace("http://", "http://user:hunter2@") + "/simple";
        let e = install_into_store(&store, &index).unwrap_err().to_string();
        assert!(e.contains("lists no final release of uv"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = install_into_store(&store, &format!("{base}/missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("404"), "{e}");
    }

    #[test]
    fn extraction_needs_the_uv_script() {
        use zip::write::SimpleFileOptions;
        let dir = tempfile::tempdir().unwrap();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("uv-1.data/scripts/other", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        let p = dir.path().join("w.whl");
        std::fs::write(&p, w.finish().unwrap().into_inner()).unwrap();
        let e = extract_uv(&p, "w.whl", dir.path()).unwrap_err().to_string();
        assert!(e.contains("w.whl") && e.contains("scripts/uv"), "{e}");
    }

    // --- running uv (a stand-in script) -------------------------------------------------------

    /// A stand-in for uv: `lock` writes a uv.lock recording its arguments and
    /// the pyproject; `build` writes a wheel named after the source.
    const FAKE_UV: &str = r##"#!/bin/sh
case "$1" in
--version) echo "uv 0.0.1 (fake 2024-01-01)";;
lock)
  if grep -q fail-me pyproject.toml; then
    echo "Using CPython 3.11.7 interpreter at: /usr/bin/python3" >&2
    echo "  × No solution found when resolving dependencies:" >&2
    echo "  ╰─▶ fail-me was not found in https://user:s3cret@index.example/simple" >&2
    echo "hint: Consider limiting your project's supported Python versions using \`requires-python\`." >&2
    exit 1
  fi
  { echo "version = 1"; echo "# args: $*"; echo "# cwd-name: $(basename "$PWD")"; sed 's/^/# /' pyproject.toml; } > uv.lock;;
build)
  out=""; prev=""; src=""
  for a in "$@"; do
    [ "$prev" = "--out-dir" ] && out="$a"
    prev="$a"; src="$a"
  done
  case "$src" in
    *native*) name="pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";;
    *broken*) echo "error: backend failed for https://tok@index.example/simple" >&2; exit 2;;
    *) name="pkg-1.0-py3-none-any.whl";;
  esac
  echo "$*" > "$out/$name"
  echo "Successfully built $out/$name" >&2;;
*) echo "unexpected: $*" >&2; exit 2;;
esac
"##;

    fn fake_uv(dir: &Path) -> Uv {
        let exe = dir.join("fake-uv/uv");
        write_exe(&exe, FAKE_UV);
        probe(&exe, UvOrigin::Path).unwrap()
    }

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
                .join(request_key(&req, "0.0.1").hex())
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

    // --- requirements files -------------------------------------------------------------------

    fn parse_with_env(path: &Path, vars: &[(&str, &str)]) -> Result<RequirementsFile> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let mut out = RequirementsFile::default();
        read_requirements(path, &mut out, &mut Vec::new(), &env)?;
        Ok(out)
    }

    #[test]
    fn requirements_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        std::fs::write(
            d.path().join("requirements.txt"),
            "# top comment\n\
             --index-url https://${IDX_USER}:${IDX_TOKEN}@index.example/simple\n\
             --extra-index-url=https://extra.example/simple\n\
             \n\
             httpx[http2] >= 0.27, \\\n    < 1  # trailing comment\n\
             requests==2.32.3 \\\n    --hash=sha256:aaaa \\\n    --hash sha256:bbbb\n\
             tomli; python_version < \"3.11\"\n\
             pkg @ https://files.example/pkg-1.0-py3-none-any.whl#sha256=cc\n\
             local @ ./vendor/local-1.0-py3-none-any.whl\n\
             -r sub/more.txt\n\
             --pre\n\
             httpx[http2] >= 0.27, < 1\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("sub/more.txt"),
            "-i https://last.example/simple\n--extra-index-url https://extra.example/simple\n\
             numpy  # from an include\n-rdeeper.txt\n",
        )
        .unwrap();
        std::fs::write(d.path().join("sub/deeper.txt"), "attrs\n").unwrap();
        let r = parse_with_env(
            &d.path().join("requirements.txt"),
            &[("IDX_USER", "me"), ("IDX_TOKEN", "t0k")],
        )
        .unwrap();
        let vendor =
            std::path::absolute(d.path().join("./vendor/local-1.0-py3-none-any.whl")).unwrap();
        assert_eq!(
            r.requirements,
            vec![
                "httpx[http2] >= 0.27,     < 1".to_string(),
                "requests==2.32.3".into(),
                "tomli; python_version < \"3.11\"".into(),
                "pkg @ https://files.example/pkg-1.0-py3-none-any.whl#sha256=cc".into(),
                format!("local @ file://{}", vendor.display()),
                "numpy".into(),
                "attrs".into(),
                "httpx[http2] >= 0.27, < 1".into(),
            ]
        );
        // The include came after the first -i: the last one wins, as in pip.
        assert_eq!(r.index_url.as_deref(), Some("https://last.example/simple"));
        assert_eq!(r.extra_index_urls, vec!["https://extra.example/simple"]);
        assert!(r.pre);
        let req = r.to_request("3.12", vec![]);
        assert_eq!(req.python, "3.12");
        assert!(req.pre);
    }

    #[test]
    fn requirements_file_env_expansion() {
        assert_eq!(
            expand_env("https://${USER_X}:${MISSING}@h/${lower}", &|k| {
                (k == "USER_X").then(|| "me".to_string())
            }),
            "https://me:${MISSING}@h/${lower}"
        );
        assert_eq!(expand_env("a ${ b", &|_| None), "a ${ b");
    }

    #[test]
    fn requirements_file_errors_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("req.txt");
        for (text, line, needle) in [
            ("numpy\n-e ./pkg\n", 2, "editable"),
            ("numpy\n\n-c constraints.txt\n", 3, "constraints files"),
            ("--find-links /wheels\n", 1, "--find-links"),
            ("--no-index\n", 1, "--no-index"),
            ("--trusted-host h.example\n", 1, "--trusted-host"),
            ("numpy --install-option=x\n", 1, "--install-option"),
            ("./local/pkg\n", 1, "name @"),
            ("https://files.example/x.whl\n", 1, "name @"),
            ("numpy >= \n", 1, "not a valid requirement"),
            ("a\n-r missing.txt\n", 2, "does not exist"),
            ("-r https://h.example/r.txt\n", 1, "only local files"),
            ("-i\n", 1, "needs a value"),
            ("numpy; python_version <\n", 1, "marker"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = parse_requirements_file(&f).unwrap_err();
            assert!(matches!(e, Error::Input { .. }), "{text}: {e:?}");
            let m = e.to_string();
            assert!(
                m.starts_with(&format!("{}: line {line}: ", f.display())) && m.contains(needle),
                "{text:?}: {m}"
            );
        }
        // Include cycles.
        std::fs::write(d.path().join("a.txt"), "x\n-r b.txt\n").unwrap();
        std::fs::write(d.path().join("b.txt"), "y\n-r a.txt\n").unwrap();
        let e = parse_requirements_file(&d.path().join("a.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.txt: line 2") && e.contains("includes a file"),
            "{e}"
        );
        let e = parse_requirements_file(&d.path().join("nope.txt")).unwrap_err();
        assert!(matches!(e, Error::Input { .. }));
    }

    #[test]
    fn line_handling() {
        assert_eq!(
            logical_lines("a \\\nb\n# c \\\nd\\\n"),
            vec![
                (1, "a b".to_string()),
                (3, "# c \\".to_string()),
                (4, "d".to_string())
            ]
        );
        assert_eq!(
            strip_comment("x @ https://h/x.whl#sha256=1 # c"),
            "x @ https://h/x.whl#sha256=1 "
        );
        assert_eq!(strip_comment("# all"), "");
        assert_eq!(split_option("-rfile.txt"), ("-r", Some("file.txt")));
        assert_eq!(split_option("--index-url=u"), ("--index-url", Some("u")));
        assert_eq!(split_option("--pre"), ("--pre", None));
        assert_eq!(split_option("-e"), ("-e", None));
    }

    // --- PEP 508 ------------------------------------------------------------------------------

    #[test]
    fn specifier_equivalence() {
        assert!(specs_equivalent(">=0.27, <1", ">=0.27,<1"));
        assert!(specs_equivalent("<1, >= 0.27", ">=0.27,<1"));
        assert!(specs_equivalent("~=3.10", ">=3.10, <4"));
        assert!(specs_equivalent("~= 2.2.1", ">=2.2.1,==2.2.*"));
        assert!(specs_equivalent(">=1.0", ">=1"));
        assert!(
            specs_equivalent("==3.*", ">=3.dev0,<4.dev0") || !specs_equivalent("==3.*", ">=3,<4")
        );
        assert!(specs_equivalent("", ""));
        assert!(!specs_equivalent(">=0.27", ">=0.28"));
        assert!(!specs_equivalent(">=0.27", ""));
        assert!(!specs_equivalent(">=1,<2", ">=1,<=2"));
        assert!(!specs_equivalent("==1.0", "==1.0.1"));
        assert!(!specs_equivalent("~=3.10", ">=3.10"));
        assert!(!specs_equivalent("!=1.5", ""));
        assert!(specs_equivalent("===foo", "=== foo"));
        assert!(!specs_equivalent("===foo", "===bar"));
    }

    #[test]
    fn marker_equivalence() {
        let eq = |a: &str, b: &str| markers_equivalent(Some(a), Some(b), None);
        assert!(eq(
            "python_version >= '3.8'",
            "python_full_version >= '3.8'"
        ));
        assert!(eq(
            "python_version < \"3.11\"",
            "python_full_version < '3.11'"
        ));
        assert!(eq(
            "python_version == '3.11'",
            "python_full_version == '3.11.*'"
        ));
        assert!(eq(
            "python_version == '3.11' or sys_platform == 'win32'",
            "sys_platform == 'win32' or python_full_version == '3.11.*'"
        ));
        assert!(eq(
            "(sys_platform == 'linux') and extra == 'cli'",
            "sys_platform == 'linux' and extra == 'CLI'"
        ));
        assert!(eq("os_name == 'nt'", "'nt' == os_name"));
        assert!(!eq(
            "python_version < '3.11'",
            "python_full_version < '3.12'"
        ));
        assert!(!eq("sys_platform == 'linux'", "sys_platform == 'darwin'"));
        assert!(!eq("extra == 'a'", "extra == 'b'"));
        assert!(!eq(
            "platform_machine == 'x86_64' and python_version >= '3.9'",
            "platform_machine == 'x86_64'"
        ));
        assert!(markers_equivalent(None, None, None));
        assert!(!markers_equivalent(
            Some("sys_platform == 'linux'"),
            None,
            None
        ));
        assert!(markers_equivalent(
            Some("python_version >= '2' or python_version < '2'"),
            None,
            None
        ));
        // Under requires-python >= 3.10 both always hold (uv simplifies the same way).
        let range = Specifiers::parse(">=3.10").unwrap();
        let (a, b) = ("python_version >= '3.8'", "python_full_version >= '3.9'");
        assert!(!eq(a, b));
        assert!(markers_equivalent(Some(a), Some(b), Some(&range)));
        assert!(markers_equivalent(Some(a), None, Some(&range)));
        assert!(!markers_equivalent(
            Some("python_version < '3.12'"),
            None,
            Some(&range)
        ));
        assert!(eq(
            "'group-a' in dependency_groups",
            "'Group_A' in dependency_groups"
        ));
    }

    // --- lock freshness -----------------------------------------------------------------------

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

//! Where a locked artifact is fetched from, and its file name.

use url::Url;

use super::model::{ArtifactLocation, Source};
use super::raw::RawArtifact;

/// Percent-decodes `%XX` sequences; malformed sequences are kept as they are,
/// and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The last path segment of a URL (query and fragment removed), percent-decoded: the URL
/// standard's reading of it, as uv takes a wheel's name from its URL. Text that is not an
/// absolute URL with a path falls back to what follows the last `/` before any `?` or `#`.
pub(super) fn url_filename(url: &str) -> String {
    if let Ok(parsed) = Url::parse(url)
        && let Some(last) = parsed.path_segments().and_then(|mut s| s.next_back())
    {
        return percent_decode(last);
    }
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = &url[..end];
    percent_decode(path.rsplit('/').next().unwrap_or(path))
}

/// `rel` under directory `dir` (both `/`-separated paths, not URLs); an absolute `rel`, or
/// a `dir` of `""` or `"."`, leaves `rel` as it is.
fn join_path(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir.is_empty() || dir == "." {
        rel.to_string()
    } else {
        format!("{}/{rel}", dir.trim_end_matches('/'))
    }
}

/// An artifact `path` as the lock writes it: relative to a local registry's directory
/// for such a source, else to the workspace root.
fn artifact_path(path: &str, source: &Source) -> String {
    match source {
        Source::Registry(dir) if source.is_local_registry() => join_path(dir, path),
        _ => path.to_string(),
    }
}

/// Where a wheel is fetched from, and its file name: its `url`, else its `path`, else
/// its `filename` found where the package's source says (a direct URL or file, or a
/// local registry's directory). `Err` says why there is no location.
pub(super) fn wheel_location(
    raw: &RawArtifact,
    source: &Source,
) -> Result<(ArtifactLocation, String), String> {
    if let Some(url) = &raw.url {
        let filename = raw.filename.clone().unwrap_or_else(|| url_filename(url));
        return Ok((ArtifactLocation::Url(url.clone()), filename));
    }
    if let Some(path) = &raw.path {
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        let filename = raw.filename.clone().unwrap_or(name);
        return Ok((
            ArtifactLocation::Path(artifact_path(path, source)),
            filename,
        ));
    }
    let Some(filename) = &raw.filename else {
        return Err("a wheel needs `url`, `path` or `filename`".to_string());
    };
    let location = match source {
        Source::Url { url, .. } => ArtifactLocation::Url(url.clone()),
        Source::Path(p) => ArtifactLocation::Path(p.clone()),
        Source::Registry(dir) if source.is_local_registry() => {
            ArtifactLocation::Path(join_path(dir, filename))
        }
        other => {
            return Err(format!(
                "wheel `{filename}` has no `url` or `path`, and its {other} source gives no location"
            ));
        }
    };
    Ok((location, filename.clone()))
}

/// Where an sdist is fetched from: its `url` or `path`, else a direct URL or file source
/// itself; `None` when the lock gives only a hash for some other source.
pub(super) fn sdist_location(raw: &RawArtifact, source: &Source) -> Option<ArtifactLocation> {
    if let Some(url) = &raw.url {
        Some(ArtifactLocation::Url(url.clone()))
    } else if let Some(path) = &raw.path {
        Some(ArtifactLocation::Path(artifact_path(path, source)))
    } else {
        match source {
            Source::Url { url, .. } => Some(ArtifactLocation::Url(url.clone())),
            Source::Path(p) => Some(ArtifactLocation::Path(p.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::lock::Resolved;
    use crate::python::lock::fixtures::*;
    use crate::python::lock::{install_set, pick_wheels};
    use crate::python::tags::{Arch, Target};

    #[test]
    fn names_and_paths() {
        assert_eq!(percent_decode("a%2Bb%2bc%zz%4"), "a+b+c%zz%4");
        assert_eq!(percent_decode("a%+Fb%ff"), "a%+Fb\u{fffd}");
        assert_eq!(
            url_filename("https://index.example/x/a-1.0%2Bcpu-py3-none-any.whl#sha256=00"),
            "a-1.0+cpu-py3-none-any.whl"
        );
        assert_eq!(join_path("../wheelhouse/", "x.whl"), "../wheelhouse/x.whl");
        assert_eq!(join_path(".", "x.whl"), "x.whl");
    }

    /// Malformed escapes and raw non-ASCII survive (and never panic), in URLs and in
    /// text that is no URL at all.
    #[test]
    fn malformed_urls_keep_their_bytes() {
        assert_eq!(url_filename("file:///x/%aé.whl"), "%aé.whl");
        assert_eq!(url_filename("file:///x/%ff%.whl?q#f"), "\u{fffd}%.whl");
        assert_eq!(url_filename("https://h/a/b%20c.whl"), "b c.whl");
        assert_eq!(url_filename("https://h/a/é.whl"), "é.whl");
        assert_eq!(url_filename("https://h/dir/"), "");
        assert_eq!(url_filename("wheels/%aé.whl#x"), "%aé.whl");
        assert_eq!(url_filename("é%"), "é%");
        assert_eq!(url_filename(""), "");
        assert_eq!(url_filename("mailto:%e9"), "mailto:\u{fffd}");
    }

    #[test]
    fn artifact_locations() {
        let text = format!(
            r#"version = 1
requires-python = ">=3.12"

[[package]]
name = "root"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "httpx" }}, {{ name = "torch" }}, {{ name = "local" }}, {{ name = "direct" }}]

[[package]]
name = "httpx"
version = "0.28.1"
source = {{ path = "vendor/httpx-0.28.1-py3-none-any.whl" }}
wheels = [{{ filename = "httpx-0.28.1-py3-none-any.whl", hash = "sha256:{h}" }}]

[[package]]
name = "torch"
version = "2.5.1+cpu"
source = {{ registry = "https://index.example/whl/cpu" }}
wheels = [{{ url = "https://index.example/whl/cpu/torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl?x=1#frag", hash = "sha256:{H}" }}]

[[package]]
name = "local"
version = "1.0"
source = {{ registry = "../wheelhouse" }}
wheels = [{{ path = "local-1.0-py3-none-any.whl" }}]

[[package]]
name = "direct"
version = "3.0"
source = {{ url = "https://index.example/direct-3.0.tar.gz", subdirectory = "pkg" }}
sdist = {{ hash = "sha256:{h}" }}
"#,
            h = sha('d'),
            H = sha('D'),
        );
        let lock = parse(&text);
        let set = install_set(&lock, "root", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        assert_eq!(
            names(&set),
            [
                "direct==3.0",
                "httpx==0.28.1",
                "local==1.0",
                "torch==2.5.1+cpu"
            ]
        );
        let by = |n: &str| set.iter().find(|r| r.name == n).unwrap();
        assert_eq!(
            by("httpx").wheels[0].location,
            ArtifactLocation::Path("vendor/httpx-0.28.1-py3-none-any.whl".into())
        );
        let torch = &by("torch").wheels[0];
        assert_eq!(
            torch.filename,
            "torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl"
        );
        assert_eq!(torch.wheel.version, "2.5.1+cpu");
        assert_eq!(torch.sha256.as_deref(), Some(sha('d').as_str()));
        assert_eq!(
            torch.hash.as_deref(),
            Some(format!("sha256:{}", sha('D')).as_str())
        );
        assert_eq!(
            by("local").wheels[0].location,
            ArtifactLocation::Path("../wheelhouse/local-1.0-py3-none-any.whl".into())
        );
        let direct = by("direct");
        assert_eq!(
            direct.source,
            Source::Url {
                url: "https://index.example/direct-3.0.tar.gz".into(),
                subdirectory: Some("pkg".into())
            }
        );
        assert_eq!(
            direct.sdist.as_ref().unwrap().location,
            Some(ArtifactLocation::Url(
                "https://index.example/direct-3.0.tar.gz".into()
            ))
        );

        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        let err = pick_wheels(&set, &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 package has no wheel for cp312 manylinux_2_36_x86_64:\n  - direct 3.0 (url `https://index.example/direct-3.0.tar.gz` subdirectory `pkg`): the lock lists no wheels; an sdist exists, but building it needs Python"
        );
        let without_direct: Vec<Resolved> =
            set.into_iter().filter(|r| r.name != "direct").collect();
        let picked = pick_wheels(&without_direct, &t).unwrap();
        assert_eq!(picked.len(), 3);
    }
}

//! A simple-API project page (PEP 691 JSON or PEP 503 HTML) read into its
//! files, and the choice of uv's wheel among them.

use super::html::{attributes, decode_entities, tag_end};
use crate::python::pep440::Version;
use crate::python::tags::{self, Target, WheelName};
use std::collections::BTreeMap;

/// One file of a simple-API project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexFile {
    pub(super) filename: String,
    /// Absolute, without the fragment.
    pub(super) url: String,
    pub(super) sha256: Option<String>,
    pub(super) size: Option<u64>,
    pub(super) yanked: bool,
}

pub(super) const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Parses a project page: PEP 691 JSON if it is JSON, else PEP 503 HTML.
pub(super) fn parse_simple_page(
    body: &[u8],
    page_url: &str,
) -> std::result::Result<Vec<IndexFile>, String> {
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

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it
/// is, and bytes that are not UTF-8 become U+FFFD.
pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(u, _)| u)
}

/// Resolves `href` against `base` as a browser does (WHATWG URL); None when
/// either is not a URL, and such a link is skipped.
pub(super) fn join_url(base: &str, href: &str) -> Option<String> {
    let joined = url::Url::parse(base).ok()?.join(href.trim()).ok()?;
    Some(joined.into())
}

/// The newest final release of uv with a wheel for `target`, and that wheel.
pub(super) fn choose_uv_wheel(
    files: &[IndexFile],
    target: &Target,
) -> Option<(IndexFile, WheelName)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::tags::Arch;

    /// `%+F` once decoded to 0x0F (the hex parser took a sign); a `%`
    /// without two hex digits now stays as written everywhere.
    #[test]
    fn malformed_escapes_stay_as_written() {
        assert_eq!(percent_decode("uv-1.0%2Blocal.whl"), "uv-1.0+local.whl");
        assert_eq!(percent_decode("a%+Fb"), "a%+Fb");
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("a%ff"), "a\u{fffd}");
        // A `%` and one hex digit before a multibyte character.
        assert_eq!(percent_decode("uv-%aé.whl"), "uv-%aé.whl");
        assert_eq!(percent_decode("%é%"), "%é%");
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
}

//! URLs in messages and as local paths.

use std::path::PathBuf;

/// `https://user:secret@host/…` → `https://host/…`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// A local path for `file://` URLs and plain paths; `None` for remote URLs.
pub fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Some(PathBuf::from(percent_decode(rest)));
    }
    (!location.contains("://")).then(|| PathBuf::from(location))
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as
/// it is, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_and_paths() {
        assert_eq!(
            redact("https://u:p@idx.example/simple"),
            "https://idx.example/simple"
        );
        assert_eq!(redact("https://idx.example/a@b"), "https://idx.example/a@b");
        assert_eq!(
            local_path("file:///tmp/a%2Bb.whl"),
            Some(PathBuf::from("/tmp/a+b.whl"))
        );
        assert_eq!(local_path("/tmp/x.whl"), Some(PathBuf::from("/tmp/x.whl")));
        assert_eq!(local_path("https://idx.example/x.whl"), None);
    }

    #[test]
    fn malformed_escapes_stay_as_written() {
        // A `%` before a multi-byte character once sliced it apart.
        assert_eq!(
            local_path("file:///x/%aé.whl"),
            Some(PathBuf::from("/x/%aé.whl"))
        );
        assert_eq!(local_path("file:///x/%"), Some(PathBuf::from("/x/%")));
        assert_eq!(
            local_path("file:///x/%zz%41"),
            Some(PathBuf::from("/x/%zzA"))
        );
        assert_eq!(
            local_path("file:///x/%ff"),
            Some(PathBuf::from("/x/\u{fffd}"))
        );
    }

    #[test]
    fn credentials_are_stripped() {
        let s = redact;
        assert_eq!(s("https://u:p@example.com"), "https://example.com");
        assert_eq!(
            s("https://u:p@example.com/org/repo.git"),
            "https://example.com/org/repo.git"
        );
        assert_eq!(s("https://tok@en@example.com/a"), "https://example.com/a");
        assert_eq!(
            s("git@example.com:org/repo.git"),
            "git@example.com:org/repo.git"
        );
    }
}

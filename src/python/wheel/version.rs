//! PEP 440 versions, as far as comparing a wheel's name and metadata needs.

/// A PEP 440 version reduced to what equality needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pep440 {
    epoch: String,
    /// Trailing zero components removed (`1.0` == `1`).
    release: Vec<String>,
    pre: Option<(&'static str, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Vec<String>,
}

fn trim_number(digits: &str) -> String {
    let t = digits.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// Parse a PEP 440 version (lenient spellings accepted, as the spec says).
pub(super) fn parse_version(input: &str) -> Option<Pep440> {
    let lower = input.trim().to_ascii_lowercase();
    let s = lower.strip_prefix('v').unwrap_or(&lower);
    let (epoch, s) = epoch(s)?;
    let (release, s) = release(s)?;
    let (pre, s) = pre_release(s);
    let (post, s) = post_release(s);
    let (dev, s) = dev_release(s);
    let (local, s) = local_label(s)?;
    s.is_empty().then_some(Pep440 {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// Leading ASCII digits, and what follows them.
fn digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// One optional `-`, `_` or `.` separator skipped.
fn sep(s: &str) -> &str {
    s.strip_prefix(['-', '_', '.']).unwrap_or(s)
}

/// The first of `words` that `s` starts with, and what follows it.
fn word<'a>(s: &'a str, words: &[&'static str]) -> Option<(&'static str, &'a str)> {
    words
        .iter()
        .find_map(|w| s.strip_prefix(w).map(|rest| (*w, rest)))
}

/// The number after a pre, post or dev word (`rest` follows the word), behind an optional
/// separator; none means 0, and then nothing after the word is taken.
fn segment_number(rest: &str) -> (String, &str) {
    let (n, tail) = digits(sep(rest));
    if n.is_empty() {
        ("0".to_string(), rest)
    } else {
        (trim_number(n), tail)
    }
}

/// `N!`, or epoch 0; `None` when the version does not start with a digit.
fn epoch(s: &str) -> Option<(String, &str)> {
    let (first, rest) = digits(s);
    if first.is_empty() {
        return None;
    }
    Some(match rest.strip_prefix('!') {
        Some(after) => (trim_number(first), after),
        None => ("0".to_string(), s),
    })
}

/// `N(.N)*`, trailing zero components removed.
fn release(mut s: &str) -> Option<(Vec<String>, &str)> {
    let mut release = Vec::new();
    loop {
        let (n, rest) = digits(s);
        if n.is_empty() {
            return None;
        }
        release.push(trim_number(n));
        s = rest;
        match s.strip_prefix('.') {
            Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => s = after,
            _ => break,
        }
    }
    while release.len() > 1 && release.last().is_some_and(|x| x == "0") {
        release.pop();
    }
    Some((release, s))
}

/// `a`/`b`/`rc` and their other spellings, with a number.
fn pre_release(s: &str) -> (Option<(&'static str, String)>, &str) {
    let words = ["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"];
    let Some((w, rest)) = word(sep(s), &words) else {
        return (None, s);
    };
    let kind = match w {
        "alpha" | "a" => "a",
        "beta" | "b" => "b",
        _ => "rc",
    };
    let (n, s) = segment_number(rest);
    (Some((kind, n)), s)
}

/// `.postN` and its spellings, or the implicit `-N`.
fn post_release(s: &str) -> (Option<String>, &str) {
    let implicit = s
        .strip_prefix('-')
        .map(digits)
        .filter(|(n, _)| !n.is_empty());
    if let Some((n, tail)) = implicit {
        return (Some(trim_number(n)), tail);
    }
    match word(sep(s), &["post", "rev", "r"]) {
        Some((_, rest)) => {
            let (n, s) = segment_number(rest);
            (Some(n), s)
        }
        None => (None, s),
    }
}

/// `.devN`.
fn dev_release(s: &str) -> (Option<String>, &str) {
    match word(sep(s), &["dev"]) {
        Some((_, rest)) => {
            let (n, s) = segment_number(rest);
            (Some(n), s)
        }
        None => (None, s),
    }
}

/// `+label`, its segments split at `-`, `_`, `.` (numeric ones without leading zeros);
/// `None` when a segment is empty or not alphanumeric.
fn local_label(s: &str) -> Option<(Vec<String>, &str)> {
    let Some(rest) = s.strip_prefix('+') else {
        return Some((Vec::new(), s));
    };
    let mut local = Vec::new();
    for seg in rest.split(['-', '_', '.']) {
        if seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        if seg.chars().all(|c| c.is_ascii_digit()) {
            local.push(trim_number(seg));
        } else {
            local.push(seg.to_string());
        }
    }
    Some((local, ""))
}

/// uv's rule: `found` equals `expected`, or equals `expected` without its
/// local label. Unparseable versions compare as strings.
pub(super) fn versions_match(found: &str, expected: &str) -> bool {
    match (parse_version(found), parse_version(expected)) {
        (Some(f), Some(mut e)) => {
            if f == e {
                return true;
            }
            e.local.clear();
            f == e
        }
        _ => found == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_pep_440() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("1.0.0-beta1", "1.0.0b1"),
            ("1.0alpha", "1.0a0"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev2", "1.0.post2"),
            ("1.0-dev", "1.0.dev0"),
            ("v2.0", "2.0"),
            ("0!1.0", "1.0"),
            ("1.0+Ubuntu-1", "1.0+ubuntu.1"),
            ("2.5.1", "2.5.1+cpu"),
            ("1.0c1", "1.0rc1"),
        ] {
            assert!(versions_match(a, b), "{a} vs {b}");
        }
        for (a, b) in [
            ("1.0", "1.1"),
            ("2.5.1+cpu", "2.5.1"),
            ("1.0a1", "1.0b1"),
            ("1!1.0", "1.0"),
        ] {
            assert!(!versions_match(a, b), "{a} vs {b}");
        }
        assert!(parse_version("1.0.x").is_none());
        assert!(parse_version("").is_none());
    }
}

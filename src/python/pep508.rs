//! PEP 508 requirement strings: `name[extras] specifiers ; marker` or
//! `name[extras] @ url ; marker`.
//!
//! [`Requirement::parse`] is the one requirement parser of the Python code. It
//! checks the specifiers with [`super::pep440`] and the marker with
//! [`super::markers`], and keeps the texts as written next to their parsed
//! forms: callers compare, quote and pass requirements on in the user's
//! spelling.

use super::markers::Marker;
use super::pep440::Specifiers;

/// A requirement string that is not PEP 508. The message says what is wrong,
/// without repeating the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequirementError {
    pub message: String,
}

impl From<String> for RequirementError {
    fn from(message: String) -> Self {
        RequirementError { message }
    }
}

impl From<&str> for RequirementError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// A parsed PEP 508 requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The distribution name as written (see [`super::names::normalize_name`]).
    pub name: String,
    /// The extras as written, in order, empty entries dropped.
    pub extras: Vec<String>,
    /// The version specifiers as written, parentheses and surrounding space
    /// removed; empty for any version (and for a direct reference).
    pub specifiers_text: String,
    /// [`Self::specifiers_text`], parsed.
    pub specifiers: Specifiers,
    /// The direct reference after `@`.
    pub url: Option<String>,
    /// The marker after `;` as written, surrounding space removed.
    pub marker_text: Option<String>,
    /// [`Self::marker_text`], parsed.
    pub marker: Option<Marker>,
}

/// The part of a requirement after its name and extras, split up.
struct Tail<'a> {
    specifiers: &'a str,
    url: Option<&'a str>,
    marker: Option<&'a str>,
}

impl Requirement {
    /// Parses one requirement string (surrounding space ignored).
    pub fn parse(input: &str) -> Result<Requirement, RequirementError> {
        let s = input.trim();
        let (name, rest) = split_name(s)?;
        let (extras, rest) = split_extras(rest)?;
        let tail = match rest.strip_prefix('@') {
            Some(r) => split_url(r)?,
            None => split_specifiers(rest)?,
        };
        let specifiers = if tail.specifiers.is_empty() {
            Specifiers::default()
        } else {
            Specifiers::parse(tail.specifiers).map_err(|e| e.to_string())?
        };
        let (marker_text, marker) = match tail.marker.map(str::trim) {
            None => (None, None),
            Some("") => return Err("empty marker after `;`".into()),
            Some(m) => {
                let parsed = Marker::parse(m).map_err(|e| e.to_string())?;
                (Some(m.to_string()), Some(parsed))
            }
        };
        Ok(Requirement {
            name: name.to_string(),
            extras,
            specifiers_text: tail.specifiers.to_string(),
            specifiers,
            url: tail.url.map(str::to_string),
            marker_text,
            marker,
        })
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The distribution name and what follows it (leading space removed).
fn split_name(s: &str) -> Result<(&str, &str), RequirementError> {
    let name_end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
    let name = &s[..name_end];
    if s.starts_with(['.', '/', '~']) || s[name_end..].starts_with(':') {
        return Err("a bare path or URL needs a name: write `name @ …`".into());
    }
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(
            "expected a distribution name first (a bare path or URL needs `name @ …`)".into(),
        );
    }
    Ok((name, s[name_end..].trim_start()))
}

/// `[a, b]` at the start of `rest`, if there, and what follows it.
fn split_extras(rest: &str) -> Result<(Vec<String>, &str), RequirementError> {
    let Some(r) = rest.strip_prefix('[') else {
        return Ok((Vec::new(), rest));
    };
    let end = r.find(']').ok_or("unclosed `[` in the extras")?;
    let mut extras = Vec::new();
    for e in r[..end].split(',') {
        let e = e.trim();
        if e.is_empty() {
            continue;
        }
        if !e.chars().all(is_name_char) {
            return Err(format!("invalid extra name `{e}`").into());
        }
        extras.push(e.to_string());
    }
    Ok((extras, r[end + 1..].trim_start()))
}

/// What follows `@`: the URL, then nothing or `; marker`.
fn split_url(r: &str) -> Result<Tail<'_>, RequirementError> {
    let r = r.trim_start();
    let end = r.find(char::is_whitespace).unwrap_or(r.len());
    let url = &r[..end];
    if url.is_empty() {
        return Err("missing URL after `@`".into());
    }
    let after = r[end..].trim_start();
    let marker = match after.strip_prefix(';') {
        Some(m) => Some(m),
        None if after.is_empty() => None,
        None => return Err(format!("unexpected `{after}` after the URL").into()),
    };
    Ok(Tail {
        specifiers: "",
        url: Some(url),
        marker,
    })
}

/// Specifiers (bare or in parentheses), then nothing or `; marker`.
fn split_specifiers(rest: &str) -> Result<Tail<'_>, RequirementError> {
    let (v, marker) = match rest.find(';') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut v = v.trim();
    if let Some(inner) = v.strip_prefix('(') {
        v = inner
            .strip_suffix(')')
            .ok_or("unclosed `(` in the version specifiers")?
            .trim();
    }
    Ok(Tail {
        specifiers: v,
        url: None,
        marker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_parts() {
        let p =
            Requirement::parse("Foo_Bar[Ex1, ex2] (>=1.0, <2) ; python_version < '3.11'").unwrap();
        assert_eq!(p.name, "Foo_Bar");
        assert_eq!(p.extras, vec!["Ex1", "ex2"]);
        assert_eq!(p.specifiers_text, ">=1.0, <2");
        assert_eq!(p.specifiers, Specifiers::parse(">=1.0,<2").unwrap());
        assert_eq!(p.url, None);
        assert_eq!(p.marker_text.as_deref(), Some("python_version < '3.11'"));
        assert_eq!(
            p.marker,
            Some(Marker::parse("python_version < '3.11'").unwrap())
        );
        let p =
            Requirement::parse("pkg@ https://h.example/p.whl ; sys_platform == 'linux'").unwrap();
        assert_eq!(p.url.as_deref(), Some("https://h.example/p.whl"));
        assert_eq!(p.specifiers_text, "");
        assert_eq!(p.marker_text.as_deref(), Some("sys_platform == 'linux'"));
        assert_eq!(Requirement::parse("a").unwrap().specifiers_text, "");
        assert_eq!(
            Requirement::parse("a==1.*").unwrap().specifiers_text,
            "==1.*"
        );
        assert_eq!(
            Requirement::parse("  a[] ").unwrap().extras,
            Vec::<String>::new()
        );
    }

    #[test]
    fn malformed_requirements() {
        for bad in [
            "",
            "-a",
            "a b",
            "a[x",
            "a @",
            "a @ https://h/x extra",
            "a (>=1",
            "a >=",
            "a;",
            "a; bogus == 1",
            "a[x y]",
            "a[é]",
            "é",
        ] {
            assert!(Requirement::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let msg = |s: &str| Requirement::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("./pkg"),
            "a bare path or URL needs a name: write `name @ …`"
        );
        assert_eq!(
            msg("https://h.example/x.whl"),
            "a bare path or URL needs a name: write `name @ …`"
        );
        assert_eq!(msg("a[x"), "unclosed `[` in the extras");
        assert_eq!(msg("a[x y]"), "invalid extra name `x y`");
        assert_eq!(msg("a @ "), "missing URL after `@`");
        assert_eq!(msg("a @ u x"), "unexpected `x` after the URL");
        assert_eq!(msg("a (>=1"), "unclosed `(` in the version specifiers");
        assert_eq!(msg("a ;"), "empty marker after `;`");
    }
}

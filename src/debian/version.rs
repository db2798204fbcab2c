//! Debian version numbers, parsed and ordered the way dpkg orders them.
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch ends at the first
//! colon and the revision starts after the last hyphen. Epochs compare as
//! numbers. Upstream and revision compare in alternating runs: a run of
//! non-digits compares character by character, where `~` sorts before
//! everything (even the end of the run), then the end, then letters, then
//! all other characters; a run of digits compares as a number.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A parsed version. It keeps the text it was parsed from, so a lock can
/// write back exactly what the index said.
#[derive(Clone, Debug)]
pub struct Version {
    pub epoch: u64,
    pub upstream: String,
    /// Empty when the version has no hyphen.
    pub revision: String,
    original: String,
}

impl Version {
    /// Parses a version; errors say which part is malformed.
    pub fn parse(s: &str) -> Result<Version> {
        let bad = |why: String| Error::Other(format!("invalid version `{s}`: {why}"));
        let text = s.trim();
        if text.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(bad("it contains whitespace".into()));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(bad("the epoch before `:` is empty".into()));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(format!("the epoch `{e}` is not a number")));
                }
                let epoch = e
                    .parse::<u64>()
                    .map_err(|_| bad(format!("the epoch `{e}` is too large")))?;
                if rest.is_empty() {
                    return Err(bad("nothing follows the epoch".into()));
                }
                (epoch, rest)
            }
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(bad("the revision after the last `-` is empty".into())),
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(bad("the upstream version is empty".into()));
        }
        if let Some(c) = upstream
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+~-:".contains(*c)))
        {
            return Err(bad(format!("`{c}` is not allowed in the upstream version")));
        }
        if let Some(c) = revision
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+~".contains(*c)))
        {
            return Err(bad(format!("`{c}` is not allowed in the revision")));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
            original: text.to_string(),
        })
    }

    /// The text this version was parsed from (surrounding whitespace removed).
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Version> {
        Version::parse(s)
    }
}

/// The canonical text: the epoch only when non-zero (or when the upstream
/// part holds a colon and would otherwise read as an epoch), the revision
/// only when present. [`Version::as_str`] gives the original text.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 || self.upstream.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| compare_part(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equal as dpkg sees it: `1.0`, `0:1.0` and `1.00-0` are all equal.
impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Compares two version strings as dpkg does. Malformed text is compared
/// leniently (a non-numeric epoch is read as part of the upstream version)
/// rather than rejected.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_lenient(a);
    let (eb, ub, rb) = split_lenient(b);
    compare_digits(ea, eb)
        .then_with(|| compare_part(ua.as_bytes(), ub.as_bytes()))
        .then_with(|| compare_part(ra.as_bytes(), rb.as_bytes()))
}

/// Splits into (epoch digits, upstream, revision) without validating.
fn split_lenient(s: &str) -> (&str, &str, &str) {
    let s = s.trim();
    let (epoch, rest) = match s.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, r),
        _ => ("", s),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// Compares two runs of ASCII digits by numeric value, of any length.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The sort weight of one character of a non-digit run; `None` is the end
/// of the run (or of the string).
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares an upstream version or a revision.
fn compare_part(a: &[u8], b: &[u8]) -> Ordering {
    let non_digit = |s: &[u8], i: usize| s.get(i).copied().filter(|c| !c.is_ascii_digit());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        loop {
            let (ca, cb) = (non_digit(a, i), non_digit(b, j));
            if ca.is_none() && cb.is_none() {
                break;
            }
            let (wa, wb) = (weight(ca), weight(cb));
            if wa != wb {
                return wa.cmp(&wb);
            }
            // Equal weights mean both sides have a character here.
            i += 1;
            j += 1;
        }
        let (si, sj) = (i, j);
        while a.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        // Both runs are ASCII digits, so the slices are valid UTF-8.
        let da = std::str::from_utf8(&a[si..i]).unwrap_or("");
        let db = std::str::from_utf8(&b[sj..j]).unwrap_or("");
        let ord = compare_digits(da, db);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// A version relation in a dependency field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Relation {
    /// Reads an operator; the obsolete `<` and `>` mean `<=` and `>=` as in
    /// dpkg.
    pub fn parse(op: &str) -> Option<Relation> {
        Some(match op {
            "<<" => Relation::Lt,
            "<=" | "<" => Relation::Le,
            "=" => Relation::Eq,
            ">=" | ">" => Relation::Ge,
            ">>" => Relation::Gt,
            _ => return None,
        })
    }

    /// The operator as written in control files.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Lt => "<<",
            Relation::Le => "<=",
            Relation::Eq => "=",
            Relation::Ge => ">=",
            Relation::Gt => ">>",
        }
    }

    /// Whether a comparison result (`have` compared with `wanted`) meets
    /// the relation.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Relation::Lt => ord == Ordering::Less,
            Relation::Le => ord != Ordering::Greater,
            Relation::Eq => ord == Ordering::Equal,
            Relation::Ge => ord != Ordering::Less,
            Relation::Gt => ord == Ordering::Greater,
        }
    }
}

impl FromStr for Relation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Relation> {
        Relation::parse(s).ok_or_else(|| {
            Error::Other(format!(
                "invalid version relation `{s}`: expected one of <<, <=, =, >=, >>"
            ))
        })
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `version` stands in relation `rel` to `wanted`
/// (e.g. `satisfies("2.36-9", Relation::Ge, "2.34")`).
pub fn satisfies(version: &str, rel: Relation, wanted: &str) -> bool {
    rel.holds(compare(version, wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    const TABLE: &[(&str, &str, Ordering)] = &[
        ("1.0~rc1", "1.0", Less),
        ("1.0", "1.0+b1", Less),
        ("1:0.1", "2.0", Greater),
        ("2.30-1", "2.30-1+deb12u1", Less),
        ("1.0-1", "1.0-1~bpo", Greater),
        ("1.0-1~bpo12+1", "1.0-1", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~", "1.0", Less),
        ("1.0~~a", "1.0~~", Greater),
        ("1.0", "1.0", Equal),
        ("1.0", "1.00", Equal),
        ("1.01", "1.1", Equal),
        ("1.002", "1.1", Greater),
        ("007", "7", Equal),
        ("1.10", "1.9", Greater),
        ("1.0a", "1.0", Greater),
        ("1.0a", "1.0+", Less),
        ("1.0a", "1.0.", Less),
        ("1.0+", "1.0.", Less),
        ("1.0-", "1.0", Equal),
        ("1.0a", "1.0b", Less),
        ("1.0Z", "1.0a", Less),
        ("1.0", "1.0-0", Equal),
        ("1.0-1", "1.0", Greater),
        ("0:1.0", "1.0", Equal),
        ("1:1.0", "1.0", Greater),
        ("2:0", "10:0", Less),
        ("1.0-1", "1.0-2", Less),
        ("1.0-10", "1.0-9", Greater),
        ("1.2.3-4-5", "1.2.3-4-4", Greater),
        ("1.2-3-5", "1.2-4-0", Less),
        ("5.36.0-7+deb12u1", "5.36.0-7", Greater),
        ("3.11.2-6+deb12u6", "3.11.2-6+deb12u10", Less),
        ("2.36-9+deb12u10", "2.36-9+deb12u9", Greater),
        ("12.4+deb12u5", "12.4", Greater),
        ("1.0", "1.0.0", Less),
        ("1.0+dfsg", "1.0", Greater),
        ("1.0+dfsg", "1.0a", Greater),
        (
            "99999999999999999999999",
            "99999999999999999999998",
            Greater,
        ),
        ("a", "b", Less),
        ("0.0.0+git20240101", "0.0.0", Greater),
        ("1:2.3~rc1-1", "1:2.3-1", Less),
    ];

    #[test]
    fn comparison_table() {
        for &(a, b, want) in TABLE {
            assert_eq!(compare(a, b), want, "compare({a:?}, {b:?})");
            assert_eq!(compare(b, a), want.reverse(), "compare({b:?}, {a:?})");
            if let (Ok(va), Ok(vb)) = (Version::parse(a), Version::parse(b)) {
                assert_eq!(va.cmp(&vb), want, "Version {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn parses_parts() {
        let v = Version::parse("1:2.36-9+deb12u4").unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (1, "2.36", "9+deb12u4")
        );
        let v = Version::parse("1.2.3-4-5").unwrap();
        assert_eq!((v.upstream.as_str(), v.revision.as_str()), ("1.2.3-4", "5"));
        let v = Version::parse(" 20230311 ").unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (0, "20230311", "")
        );
        assert_eq!(v.as_str(), "20230311");
        let v = Version::parse("1:2:3-1").unwrap();
        assert_eq!((v.epoch, v.upstream.as_str()), (1, "2:3"));
    }

    #[test]
    fn display_is_canonical_and_original_is_kept() {
        let v = Version::parse("0:1.0-1").unwrap();
        assert_eq!(v.to_string(), "1.0-1");
        assert_eq!(v.as_str(), "0:1.0-1");
        assert_eq!(Version::parse("2:1.0").unwrap().to_string(), "2:1.0");
        assert_eq!(Version::parse("0:1:2").unwrap().to_string(), "0:1:2");
        for s in ["1.0", "1:2.3~rc1-1+b2", "1.2.3-4-5"] {
            assert_eq!(Version::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Version::parse("1.0").unwrap(),
            Version::parse("0:1.00-0").unwrap()
        );
    }

    #[test]
    fn rejects_malformed() {
        for (s, why) in [
            ("", "empty"),
            ("1.0 1", "whitespace"),
            (":1.0", "epoch"),
            ("a:1.0", "not a number"),
            ("1:", "nothing follows"),
            ("1.0-", "revision"),
            ("-1", "upstream version is empty"),
            ("1.0_1", "`_`"),
            ("1.0-1:2", "epoch"),
        ] {
            let e = Version::parse(s).unwrap_err().to_string();
            assert!(
                e.contains(why) && e.contains(&format!("`{s}`")),
                "{s:?}: {e}"
            );
        }
    }

    #[test]
    fn relations() {
        for (op, rel) in [
            ("<<", Relation::Lt),
            ("<=", Relation::Le),
            ("<", Relation::Le),
            ("=", Relation::Eq),
            (">=", Relation::Ge),
            (">", Relation::Ge),
            (">>", Relation::Gt),
        ] {
            assert_eq!(Relation::parse(op), Some(rel));
            assert_eq!(op.parse::<Relation>().unwrap(), rel);
        }
        assert!(Relation::parse("==").is_none());
        assert!("!=".parse::<Relation>().is_err());
        assert_eq!(Relation::Gt.to_string(), ">>");

        assert!(satisfies("2.36-9", Relation::Ge, "2.34"));
        assert!(!satisfies("2.36-9", Relation::Lt, "2.36"));
        assert!(satisfies("2.36~rc1", Relation::Lt, "2.36"));
        assert!(satisfies("1.0", Relation::Le, "1.0"));
        assert!(satisfies("1.0", Relation::Eq, "0:1.0"));
        assert!(!satisfies("1.0", Relation::Gt, "1.0"));
        assert!(satisfies("1.0-1+b1", Relation::Gt, "1.0-1"));
        assert!(satisfies("1.0", Relation::Ge, "1.0"));
    }
}

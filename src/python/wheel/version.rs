//! Comparing a wheel's version in its name and metadata with the lock's,
//! by the one PEP 440 model ([`crate::python::pep440`]).

use crate::python::pep440::Version;

/// Whether `version` is a PEP 440 version (any spelling the spec allows).
pub(super) fn is_version(version: &str) -> bool {
    Version::parse(version).is_ok()
}

/// Whether the version `found` (a wheel's name or metadata) is the
/// `expected` one (the lock's): equal as PEP 440 versions, or equal to
/// `expected` without its local label (the lock names `2.5.1+cpu`, the
/// metadata says `2.5.1`). Texts that are no versions must be the same
/// text.
pub(super) fn versions_match(found: &str, expected: &str) -> bool {
    match (Version::parse(found), Version::parse(expected)) {
        (Ok(f), Ok(e)) => f == e || f == e.without_local(),
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
        assert!(!is_version("1.0.x"));
        assert!(!is_version(""));
    }
}

//! Distribution, extra and dependency-group names.

/// Normalizes a distribution, extra or group name (PEP 503 / PEP 685): ASCII lowercase, and
/// every run of `-`, `_` and `.` becomes a single `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
                in_sep = true;
            }
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_names() {
        for (input, want) in [
            ("Foo_Bar", "foo-bar"),
            ("zope.interface", "zope-interface"),
            ("a--_.b", "a-b"),
            ("PyYAML", "pyyaml"),
            ("already-normal", "already-normal"),
        ] {
            assert_eq!(normalize_name(input), want, "{input}");
        }
    }
}

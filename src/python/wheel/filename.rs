//! Wheel file names (`name-ver(-build)?-py-abi-plat.whl`) and project names.

use super::version::is_version;

pub use crate::python::names::normalize_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct WheelFilename {
    pub(super) name: String,
    pub(super) version: String,
}

/// `%XX` escapes decoded (a `%` not followed by two hex digits stays as it
/// is, as every other decoder here keeps it); escapes that make no UTF-8
/// are an error.
fn percent_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| format!("percent escapes in {s:?} are not UTF-8"))
}

pub(super) fn parse_wheel_filename(filename: &str) -> Result<WheelFilename, String> {
    let base = filename.rsplit('/').next().unwrap_or(filename);
    let base = percent_decode(base)?;
    let stem = base
        .strip_suffix(".whl")
        .ok_or_else(|| "does not end in .whl".to_string())?;
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty component".to_string());
    }
    match parts.len() {
        5 => {}
        6 => {
            if !parts[2].starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!(
                    "build tag {:?} does not start with a digit",
                    parts[2]
                ));
            }
        }
        n => {
            return Err(format!(
                "expected name-version(-build)?-python-abi-platform, found {n} dash-separated parts"
            ));
        }
    }
    if !is_version(parts[1]) {
        return Err(format!("invalid version {:?}", parts[1]));
    }
    Ok(WheelFilename {
        name: parts[0].to_string(),
        version: parts[1].to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::WheelError;
    use crate::python::wheel::fixtures::*;

    #[test]
    fn project_names_normalise() {
        assert_eq!(normalize_name("Foo.Bar__baz-"), "foo-bar-baz-");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }

    #[test]
    fn bad_file_names() {
        for name in [
            "demo-1.0.zip",
            "demo-py3-none-any.whl",
            "demo-1.0-x-py3-none-any.whl",
            "demo-1.0-1-2-py3-none-any.whl",
            "demo-one-py3-none-any.whl",
        ] {
            let e = err(&demo_wheel(), name);
            assert!(matches!(e, WheelError::Filename { .. }), "{name}: {e:?}");
        }
        // A build tag is fine.
        assert!(install(&demo_wheel(), "demo-1.0-1build-py3-none-any.whl").is_ok());
    }

    /// A malformed escape once failed here while every other decoder kept
    /// it; now all keep it, and the name is judged as written.
    #[test]
    fn percent_escapes_in_file_names() {
        assert_eq!(percent_decode("a%2Bb%2bc").unwrap(), "a+b+c");
        assert_eq!(percent_decode("a%zz%4").unwrap(), "a%zz%4");
        assert_eq!(percent_decode("%+F").unwrap(), "%+F");
        assert!(percent_decode("%ff").is_err());
        let e = err(&demo_wheel(), "demo-1.0%zz-py3-none-any.whl");
        assert!(
            matches!(&e, WheelError::Filename { reason, .. } if reason.contains("1.0%zz")),
            "{e:?}"
        );
    }
}

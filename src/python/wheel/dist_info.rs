//! The wheel's `.dist-info`: finding it and checking WHEEL and METADATA (§4.1).

use std::collections::BTreeSet;

use super::archive::Member;
use super::error::WheelError;
use super::filename::{WheelFilename, normalize_name};
use super::version::versions_match;

/// The one top-level `*.dist-info` directory, whose name must match the file name's
/// `{name}-{version}` (names compared normalised, versions as PEP 440 versions).
pub(super) fn find_dist_info(
    wheel: &str,
    fname: &WheelFilename,
    members: &[Member],
) -> Result<String, WheelError> {
    let mut found = BTreeSet::new();
    for m in members {
        let (first, rest) = m.path.split_once('/').unwrap_or((&m.path, ""));
        if first.ends_with(".dist-info") && (m.dir || !rest.is_empty()) {
            found.insert(first.to_string());
        }
    }
    let mut iter = found.into_iter();
    let Some(dist_info) = iter.next() else {
        return Err(WheelError::invalid(
            wheel,
            "*.dist-info",
            "no top-level .dist-info directory",
        ));
    };
    if let Some(other) = iter.next() {
        return Err(WheelError::invalid(
            wheel,
            &other,
            format!("more than one .dist-info directory (also {dist_info})"),
        ));
    }
    let prefix = dist_info.strip_suffix(".dist-info").unwrap_or(&dist_info);
    let expected = format!("{}-{}", fname.name, fname.version);
    // `{name}-{version}`; try every dash so a (non-compliant) dash in the
    // name does not matter.
    let matches = prefix.match_indices('-').any(|(i, _)| {
        let (name, version) = (&prefix[..i], &prefix[i + 1..]);
        normalize_name(name) == normalize_name(&fname.name)
            && versions_match(version, &fname.version)
    });
    if !matches {
        return Err(WheelError::invalid(
            wheel,
            &dist_info,
            format!("does not match the wheel file name (expected {expected}.dist-info)"),
        ));
    }
    Ok(dist_info)
}

/// WHEEL: a 1.x `Wheel-Version` (0.1 and newer minors only warn) and a
/// `Root-Is-Purelib` of `true` or `false`.
pub(super) fn check_wheel_file(
    wheel: &str,
    path: &str,
    text: &str,
    warnings: &mut Vec<String>,
) -> Result<(), WheelError> {
    let headers = parse_headers(text);
    let Some(version) = header(&headers, "Wheel-Version") else {
        return Err(WheelError::invalid(wheel, path, "no Wheel-Version"));
    };
    let Some((major, minor)) = version.split_once('.') else {
        return Err(WheelError::invalid(
            wheel,
            path,
            format!("invalid Wheel-Version {version:?}"),
        ));
    };
    if (major, minor) == ("0", "1") {
        warnings.push(format!("{wheel}: ancient Wheel-Version 0.1"));
    } else if major != "1" {
        return Err(WheelError::WheelVersion {
            wheel: wheel.to_string(),
            member: path.to_string(),
            version: version.to_string(),
        });
    } else if minor > "0" {
        warnings.push(format!(
            "{wheel}: Wheel-Version {version} is newer than 1.0"
        ));
    }
    match header(&headers, "Root-Is-Purelib") {
        Some(v) if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") => Ok(()),
        Some(v) => Err(WheelError::invalid(
            wheel,
            path,
            format!("invalid Root-Is-Purelib {v:?}"),
        )),
        None => Err(WheelError::invalid(wheel, path, "no Root-Is-Purelib")),
    }
}

/// METADATA: `Name` and `Version`, which must match the file name's; returned as written.
pub(super) fn check_metadata(
    wheel: &str,
    fname: &WheelFilename,
    path: &str,
    text: &str,
) -> Result<(String, String), WheelError> {
    let headers = parse_headers(text);
    let name =
        header(&headers, "Name").ok_or_else(|| WheelError::invalid(wheel, path, "no Name"))?;
    let version = header(&headers, "Version")
        .ok_or_else(|| WheelError::invalid(wheel, path, "no Version"))?;
    if normalize_name(name) != normalize_name(&fname.name) {
        return Err(WheelError::invalid(
            wheel,
            path,
            format!(
                "Name {name:?} does not match the wheel file name ({:?})",
                fname.name
            ),
        ));
    }
    if !versions_match(version, &fname.version) {
        return Err(WheelError::invalid(
            wheel,
            path,
            format!(
                "Version {version:?} does not match the wheel file name ({:?})",
                fname.version
            ),
        ));
    }
    Ok((name.to_string(), version.to_string()))
}

/// Parse an RFC 822 style header block (WHEEL, METADATA): `Key: value`
/// lines, indented continuation lines, stopping at the first blank line.
/// Values are trimmed; keys containing whitespace are ignored.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
                *value = value.trim().to_string();
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        headers.push((key.to_string(), value.trim().to_string()));
    }
    headers
}

fn header<'a>(headers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;
    use crate::python::wheel::install_wheel;
    use std::io::Cursor;

    #[test]
    fn missing_wheel_and_metadata_files() {
        let mut entries = demo_entries();
        entries.retain(|e| !e.0.ends_with("/WHEEL"));
        let e = err(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Missing { member, .. } if member == "demo-1.0.dist-info/WHEEL"),
            "{e:?}"
        );
        let mut entries = demo_entries();
        entries.retain(|e| !e.0.ends_with("/METADATA"));
        let e = err(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Missing { member, .. } if member == "demo-1.0.dist-info/METADATA"),
            "{e:?}"
        );
    }

    #[test]
    fn dist_info_name_mismatch() {
        let entries: Vec<Entry> = demo_entries()
            .into_iter()
            .map(|(n, d, m)| (n.replace("demo-1.0.dist-info", "other-1.0.dist-info"), d, m))
            .collect();
        let e = err(
            &wheel("other-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Invalid { member, reason, .. }
                if member == "other-1.0.dist-info" && reason.contains("expected demo-1.0.dist-info")),
            "{e:?}"
        );
        // Version mismatch in the directory name, too.
        let entries: Vec<Entry> = demo_entries()
            .into_iter()
            .map(|(n, d, m)| (n.replace("demo-1.0.dist-info", "demo-1.1.dist-info"), d, m))
            .collect();
        assert!(matches!(
            err(
                &wheel("demo-1.1.dist-info", &entries),
                "demo-1.0-py3-none-any.whl"
            ),
            WheelError::Invalid { .. }
        ));
    }

    #[test]
    fn dist_info_name_normalisation_is_accepted() {
        let entries = vec![
            entry("yaml/__init__.py", b"", 0o644),
            entry(
                "PyYAML-6.0.2.dist-info/METADATA",
                &metadata("PyYAML", "6.0.2"),
                0o644,
            ),
            entry(
                "PyYAML-6.0.2.dist-info/WHEEL",
                &wheel_file("cp312-cp312-linux_x86_64", false),
                0o644,
            ),
        ];
        let out = install(
            &wheel("PyYAML-6.0.2.dist-info", &entries),
            "pyyaml-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl",
        )
        .unwrap();
        assert_eq!(out.dist_info, "PyYAML-6.0.2.dist-info");
        assert!(paths(&out.files).contains(&format!("{SP}/PyYAML-6.0.2.dist-info/RECORD")));
    }

    #[test]
    fn multiple_or_no_dist_info() {
        let mut entries = demo_entries();
        entries.push(entry("extra-1.0.dist-info/METADATA", b"x", 0o644));
        assert!(matches!(
            err(&wheel("demo-1.0.dist-info", &entries), "demo-1.0-py3-none-any.whl"),
            WheelError::Invalid { reason, .. } if reason.contains("more than one")
        ));
        let e = err(
            &zip_bytes(&[entry("demo/x.py", b"", 0o644)]),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Invalid { reason, .. } if reason.contains("no top-level")),
            "{e:?}"
        );
    }

    #[test]
    fn unsupported_wheel_version() {
        let e = err(
            &demo_with(
                "demo-1.0.dist-info/WHEEL",
                b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            ),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::WheelVersion { member, version, .. }
                if member == "demo-1.0.dist-info/WHEEL" && version == "2.0"),
            "{e:?}"
        );
        // Newer minor: a warning only.
        let out = install(
            &demo_with(
                "demo-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.1\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            ),
            "demo-1.0-py3-none-any.whl",
        )
        .unwrap();
        assert_eq!(out.warnings.len(), 1);
        // Missing or malformed fields.
        for bad in [
            &b"Root-Is-Purelib: true\n"[..],
            b"Wheel-Version: 1\nRoot-Is-Purelib: true\n",
            b"Wheel-Version: 1.0\n",
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: maybe\n",
        ] {
            let e = err(
                &demo_with("demo-1.0.dist-info/WHEEL", bad),
                "demo-1.0-py3-none-any.whl",
            );
            assert!(matches!(e, WheelError::Invalid { .. }), "{e:?}");
        }
    }

    #[test]
    fn metadata_name_and_version_checks() {
        let e = err(
            &demo_with("demo-1.0.dist-info/METADATA", &metadata("other", "1.0")),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Invalid { member, reason, .. }
            if member == "demo-1.0.dist-info/METADATA" && reason.starts_with("Name")),
            "{e:?}"
        );
        let e = err(
            &demo_with("demo-1.0.dist-info/METADATA", &metadata("demo", "1.1")),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Invalid { reason, .. } if reason.starts_with("Version")),
            "{e:?}"
        );
        // Equivalent spellings and a local label only in the file name are fine.
        assert!(
            install(
                &demo_with("demo-1.0.dist-info/METADATA", &metadata("Demo", "1.0.0")),
                "demo-1.0-py3-none-any.whl"
            )
            .is_ok()
        );
        assert!(install(&demo_wheel(), "demo-1.0%2Bcpu-py3-none-any.whl").is_ok());
        assert!(
            install(
                &demo_wheel(),
                "https://example.org/w/demo-1.0+cpu-py3-none-any.whl"
            )
            .is_ok()
        );
    }

    #[test]
    fn wheel_supplied_installer_is_replaced() {
        let mut entries = demo_entries();
        entries.push(entry("demo-1.0.dist-info/INSTALLER", b"pip\n", 0o644));
        let out = install(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        )
        .unwrap();
        assert_eq!(
            content(&out.files, &format!("{SP}/demo-1.0.dist-info/INSTALLER")),
            "uv"
        );
        let record = content(&out.files, &format!("{SP}/demo-1.0.dist-info/RECORD"));
        assert_eq!(record.matches("/INSTALLER,").count(), 1);
    }

    #[test]
    fn requested_and_installer_are_optional() {
        let mut t = target();
        t.requested = false;
        t.installer = String::new();
        let files =
            install_wheel(Cursor::new(demo_wheel()), "demo-1.0-py3-none-any.whl", &t).unwrap();
        let p = paths(&files);
        assert!(!p.iter().any(|p| p.ends_with("/REQUESTED")));
        assert!(!p.iter().any(|p| p.ends_with("/INSTALLER")));
        let record = content(&files, &format!("{SP}/demo-1.0.dist-info/RECORD"));
        assert!(!record.contains("REQUESTED") && !record.contains("INSTALLER"));
    }
}

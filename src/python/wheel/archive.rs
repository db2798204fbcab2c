//! Reading the zip archive: the whole-file digest, then every member, validated.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};
use zip::ZipArchive;
use zip::result::ZipError;

use super::InstallExtras;
use super::error::WheelError;
use super::hash::hex_lower;

pub(super) fn check_archive_digest<R: Read + Seek>(
    zip: &mut R,
    wheel: &str,
    extras: &InstallExtras,
) -> Result<(), WheelError> {
    let io_err = |source| WheelError::Io {
        wheel: wheel.to_string(),
        source,
    };
    zip.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size: u64 = 0;
    loop {
        let n = match zip.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    zip.seek(SeekFrom::Start(0)).map_err(io_err)?;
    if let Some(expected) = extras.expected_size
        && expected != size
    {
        return Err(WheelError::ArchiveSize {
            wheel: wheel.to_string(),
            expected,
            actual: size,
        });
    }
    if let Some(expected) = &extras.expected_sha256 {
        let actual = hex_lower(&hasher.finalize());
        let expected_norm = expected
            .strip_prefix("sha256:")
            .unwrap_or(expected)
            .to_ascii_lowercase();
        if actual != expected_norm {
            return Err(WheelError::ArchiveHash {
                wheel: wheel.to_string(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

#[derive(Debug)]
pub(super) struct Member {
    /// Normalised path (no `.`/empty components, no trailing `/`).
    pub(super) path: String,
    pub(super) dir: bool,
    pub(super) exec: bool,
    pub(super) data: Vec<u8>,
}

const S_IFMT: u32 = 0o170000;

const S_IFDIR: u32 = 0o040000;

const S_IFLNK: u32 = 0o120000;

/// Validate and normalise an archive member name.
fn normalize_member_path(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains('\0') {
        return Err("NUL byte in name");
    }
    if name.contains('\\') {
        return Err("backslash in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("`..` component"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err("empty path");
    }
    Ok(parts.join("/"))
}

pub(super) fn read_members<R: Read + Seek>(
    reader: R,
    wheel: &str,
) -> Result<Vec<Member>, WheelError> {
    let mut archive = open_archive(reader, wheel)?;
    let mut members = Vec::with_capacity(archive.len());
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for index in 0..archive.len() {
        members.push(read_member(&mut archive, index, wheel, &mut seen)?);
    }
    Ok(members)
}

fn zip_err(wheel: &str, member: &str, source: ZipError) -> WheelError {
    WheelError::Zip {
        wheel: wheel.to_string(),
        member: member.to_string(),
        source,
    }
}

/// The archive, once its central directory names no entry twice and every local header
/// agrees with it.
fn open_archive<R: Read + Seek>(reader: R, wheel: &str) -> Result<ZipArchive<R>, WheelError> {
    let mut archive = ZipArchive::new(reader).map_err(|e| zip_err(wheel, "(archive)", e))?;
    if archive.has_duplicate_names() {
        let start = archive.central_directory_start();
        let name = find_duplicate_central_name(archive.into_inner(), start)
            .unwrap_or_else(|| "(central directory)".to_string());
        return Err(WheelError::Duplicate {
            wheel: wheel.to_string(),
            member: name,
        });
    }
    archive
        .validate_header_consistency()
        .map_err(|e| WheelError::Inconsistent {
            wheel: wheel.to_string(),
            member: "(archive)".to_string(),
            reason: e.to_string(),
        })?;
    Ok(archive)
}

/// Entry `index`, validated: no symlink, a safe name that no earlier entry normalised
/// to (`seen` maps normalised names to the names as written), no directory with content.
fn read_member<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    wheel: &str,
    seen: &mut BTreeMap<String, String>,
) -> Result<Member, WheelError> {
    let mut entry = archive
        .by_index(index)
        .map_err(|e| zip_err(wheel, &format!("(entry #{index})"), e))?;
    let raw = entry
        .name()
        .map_err(|e| zip_err(wheel, &format!("(entry #{index})"), e))?
        .into_owned();
    let mode = entry.unix_mode();
    if mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
        return Err(WheelError::Unsupported {
            wheel: wheel.to_string(),
            member: raw,
            reason: "symlink".to_string(),
        });
    }
    let dir = raw.ends_with('/') || mode.is_some_and(|m| m & S_IFMT == S_IFDIR);
    let path = normalize_member_path(&raw).map_err(|reason| WheelError::UnsafePath {
        wheel: wheel.to_string(),
        member: raw.clone(),
        reason,
    })?;
    if let Some(previous) = seen.insert(path.clone(), raw.clone()) {
        return Err(WheelError::Duplicate {
            wheel: wheel.to_string(),
            member: if previous == raw {
                raw
            } else {
                format!("{previous} / {raw}")
            },
        });
    }
    let mut data = Vec::new();
    if !dir {
        let hint = usize::try_from(entry.size().min(1 << 26)).unwrap_or(0);
        data.reserve(hint);
        entry.read_to_end(&mut data).map_err(|e| WheelError::Zip {
            wheel: wheel.to_string(),
            member: raw.clone(),
            source: ZipError::Io(e),
        })?;
    } else if entry.size() != 0 {
        return Err(WheelError::Unsupported {
            wheel: wheel.to_string(),
            member: raw,
            reason: "directory entry with content".to_string(),
        });
    }
    let exec = !dir && mode.is_some_and(|m| m & 0o111 != 0);
    Ok(Member {
        path,
        dir,
        exec,
        data,
    })
}

/// Walk the central directory from `start` and return the first name that
/// occurs twice (only used to name the culprit in an error).
fn find_duplicate_central_name<R: Read + Seek>(mut reader: R, start: u64) -> Option<String> {
    reader.seek(SeekFrom::Start(start)).ok()?;
    let mut names = BTreeSet::new();
    loop {
        let mut fixed = [0u8; 46];
        reader.read_exact(&mut fixed).ok()?;
        if fixed[..4] != [0x50, 0x4b, 0x01, 0x02] {
            return None;
        }
        let le16 = |at: usize| u16::from_le_bytes([fixed[at], fixed[at + 1]]);
        let (name_len, extra_len, comment_len) = (le16(28), le16(30), le16(32));
        let mut name = vec![0u8; usize::from(name_len)];
        reader.read_exact(&mut name).ok()?;
        let skip = i64::from(extra_len) + i64::from(comment_len);
        reader.seek(SeekFrom::Current(skip)).ok()?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if !names.insert(name.clone()) {
            return Some(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;
    use std::io::Cursor;
    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    #[test]
    fn path_traversal_and_absolute_paths() {
        for (name, why) in [
            ("../x", "`..` component"),
            ("demo/../../x", "`..` component"),
            ("/etc/passwd", "absolute path"),
            ("demo\\x.py", "backslash in name"),
        ] {
            let mut entries = demo_entries();
            entries.push(entry(name, b"evil", 0o644));
            let e = err(
                &wheel("demo-1.0.dist-info", &entries),
                "demo-1.0-py3-none-any.whl",
            );
            match &e {
                WheelError::UnsafePath { member, reason, .. } => {
                    assert_eq!(member, name);
                    assert_eq!(*reason, why);
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicate_entries() {
        let mut entries = demo_entries();
        entries.push(entry("demo/zz1.py", b"one", 0o644));
        entries.push(entry("demo/zz2.py", b"two", 0o644));
        let bytes = wheel("demo-1.0.dist-info", &entries);
        // Local header and central directory entry of zz2 both renamed.
        let bytes = patch(&bytes, b"demo/zz2.py", b"demo/zz1.py", 2);
        let e = err(&bytes, "demo-1.0-py3-none-any.whl");
        assert!(
            matches!(&e, WheelError::Duplicate { member, .. } if member == "demo/zz1.py"),
            "{e:?}"
        );

        // Two names that normalise to the same path.
        let mut entries = demo_entries();
        entries.push(entry("demo/./cli.py", DEMO_CLI, 0o644));
        let e = err(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Duplicate { member, .. } if member == "demo/cli.py / demo/./cli.py"),
            "{e:?}"
        );
    }

    #[test]
    fn local_header_mismatch() {
        let mut entries = demo_entries();
        entries.push(entry("demo/zz2.py", b"two", 0o644));
        let bytes = wheel("demo-1.0.dist-info", &entries);
        // Only the local header (it comes first) is renamed.
        let bytes = patch(&bytes, b"demo/zz2.py", b"demo/zz3.py", 1);
        let e = err(&bytes, "demo-1.0-py3-none-any.whl");
        assert!(matches!(e, WheelError::Inconsistent { .. }), "{e:?}");
    }

    #[test]
    fn symlink_entries_are_refused() {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("demo/link", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let e = err(&bytes, "demo-1.0-py3-none-any.whl");
        assert!(
            matches!(&e, WheelError::Unsupported { member, .. } if member == "demo/link"),
            "{e:?}"
        );
    }
}

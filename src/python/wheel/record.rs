//! RECORD: reading the wheel's, checking members against it, writing ours (§4.5).

use std::collections::BTreeMap;

use super::archive::Member;
use super::error::WheelError;
use super::hash::digest_b64;

/// Normalise a RECORD path: leading `/` stripped, `./` and empty components
/// dropped. Never fails; a bad path simply matches no member.
fn normalize_record_path(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// One RECORD row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RecordRow {
    pub(super) path: String,
    /// `algo=digest`, or empty.
    pub(super) hash: String,
    pub(super) size: Option<u64>,
}

/// CSV rows with their 1-based line numbers.
type CsvRows = Vec<(usize, Vec<String>)>;

/// Parse RECORD CSV with the csv crate, as uv reads it (`"` quoting with
/// `""` escapes, `\n`/`\r\n`/`\r` line ends, empty lines skipped; a quote
/// left open runs to the end of the file). Returns rows with the 1-based
/// line they start on; 1 to 3 fields per row.
pub(super) fn parse_record_csv(text: &str) -> Result<CsvRows, (usize, String)> {
    // Line ends before `to`: LF, CRLF and a lone CR each count once.
    let line_ends = |from: usize, to: usize| {
        let b = text.as_bytes();
        (from..to)
            .filter(|&i| b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')))
            .count()
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let (mut at, mut line) = (0, 1);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let byte = e.position().map_or(0, |p| p.byte() as usize);
            (1 + line_ends(0, byte.min(text.len())), e.to_string())
        })?;
        // The reader's position is where it started looking, before the
        // empty lines it skipped.
        let mut start = record.position().map_or(at, |p| p.byte() as usize);
        while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        line += line_ends(at, start);
        at = start;
        if record.len() > 3 {
            return Err((line, format!("{} fields, expected 3", record.len())));
        }
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(rows)
}

/// RECORD as uv writes it: the csv crate's defaults (a field quoted only
/// when it holds `,`, `"`, CR or LF; `\n` after each row), an absent size
/// an empty field.
pub(super) fn write_record(rows: &[RecordRow]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for row in rows {
        let size = row.size.map(|n| n.to_string()).unwrap_or_default();
        w.write_record([row.path.as_str(), row.hash.as_str(), size.as_str()])
            .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// The wheel's RECORD (`path` names it in errors) as normalised path → (line, row).
/// A path listed twice must carry the same values both times.
pub(super) fn read_record(
    wheel: &str,
    path: &str,
    text: &str,
) -> Result<BTreeMap<String, (usize, RecordRow)>, WheelError> {
    let record_err = |line, reason: String| WheelError::Record {
        wheel: wheel.to_string(),
        member: path.to_string(),
        line,
        reason,
    };
    let rows = parse_record_csv(text).map_err(|(line, reason)| record_err(line, reason))?;
    let mut map: BTreeMap<String, (usize, RecordRow)> = BTreeMap::new();
    for (line, fields) in rows {
        let row_path = normalize_record_path(&fields[0]);
        if row_path.is_empty() {
            return Err(record_err(line, "empty path".into()));
        }
        let hash = fields.get(1).cloned().unwrap_or_default();
        let size = match fields.get(2).map(String::as_str) {
            None | Some("") => None,
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| record_err(line, format!("invalid size {s:?}")))?,
            ),
        };
        let row = RecordRow {
            path: row_path.clone(),
            hash,
            size,
        };
        match map.get(&row_path) {
            Some((_, existing)) if *existing == row => {}
            Some((first, _)) => {
                return Err(record_err(
                    line,
                    format!(
                        "{row_path} listed twice (first on line {first}) with different values"
                    ),
                ));
            }
            None => {
                map.insert(row_path, (line, row));
            }
        }
    }
    Ok(map)
}

/// Check a member against its RECORD row (on `line` of `record_member`): size when
/// given, hash when given (any algorithm [`digest_b64`] knows; padding ignored).
pub(super) fn verify(
    wheel: &str,
    record_member: &str,
    line: usize,
    row: &RecordRow,
    m: &Member,
) -> Result<(), WheelError> {
    if let Some(expected) = row.size
        && expected != m.data.len() as u64
    {
        return Err(WheelError::Size {
            wheel: wheel.to_string(),
            member: m.path.clone(),
            expected,
            actual: m.data.len() as u64,
        });
    }
    if row.hash.is_empty() {
        return Ok(());
    }
    let record_err = |reason| WheelError::Record {
        wheel: wheel.to_string(),
        member: record_member.to_string(),
        line,
        reason,
    };
    let Some((algorithm, expected)) = row.hash.split_once('=') else {
        return Err(record_err(format!(
            "hash {:?} for {} is not algo=digest",
            row.hash, m.path
        )));
    };
    let Some(actual) = digest_b64(algorithm, &m.data) else {
        return Err(record_err(format!(
            "unsupported hash algorithm {algorithm:?} for {}",
            m.path
        )));
    };
    if actual != expected.trim_end_matches('=') {
        return Err(WheelError::Hash {
            wheel: wheel.to_string(),
            member: m.path.clone(),
            expected: row.hash.clone(),
            actual: format!("{algorithm}={actual}"),
        });
    }
    Ok(())
}

/// Path of `dest` (relative to the venv) as seen from `site_packages`, the form
/// RECORD uses (`../../../bin/tool`).
pub(super) fn path_from_site_packages(site_packages: &str, dest: &str) -> String {
    let base: Vec<&str> = site_packages.split('/').collect();
    let target: Vec<&str> = dest.split('/').collect();
    let common = base
        .iter()
        .zip(&target)
        .take_while(|(a, b)| a == b)
        .count()
        // Never strip the file name itself.
        .min(target.len() - 1);
    let mut parts: Vec<&str> = vec![".."; base.len() - common];
    parts.extend_from_slice(&target[common..]);
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;
    use crate::python::wheel::hash::{base64_urlsafe_nopad, record_hash};
    use sha2::{Digest, Sha512};

    #[test]
    fn csv_parser_and_writer() {
        let rows = parse_record_csv("a,b,1\n\"x,\"\"y\"\"\",,\r\n\nlast").unwrap();
        assert_eq!(
            rows,
            vec![
                (1, vec!["a".into(), "b".into(), "1".into()]),
                (2, vec!["x,\"y\"".into(), "".into(), "".into()]),
                (4, vec!["last".into()]),
            ]
        );
        assert_eq!(
            parse_record_csv("a,b,c,d\n").unwrap_err(),
            (1, "4 fields, expected 3".to_string())
        );
        assert_eq!(
            parse_record_csv("\"a\nb\",,\r\rc,,\n\n\nd,e,f,g\n").unwrap_err(),
            (7, "4 fields, expected 3".to_string())
        );
        // A quote left open once failed; like uv (which reads RECORD with
        // the same crate) it now runs to the end of the file, and the row
        // names a file the wheel does not hold, which healing drops.
        assert_eq!(
            parse_record_csv("\"open,b,c\nx,,\n").unwrap(),
            vec![(1, vec!["open,b,c\nx,,\n".into()])]
        );
        let out = write_record(&[RecordRow {
            path: "x,\"y\"".into(),
            hash: String::new(),
            size: None,
        }]);
        assert_eq!(out, b"\"x,\"\"y\"\"\",,\n");
        let out = write_record(&[
            RecordRow {
                path: "../../../bin/a b".into(),
                hash: "sha256=x".into(),
                size: Some(7),
            },
            RecordRow {
                path: "cr\rlf\n".into(),
                hash: String::new(),
                size: Some(0),
            },
        ]);
        assert_eq!(out, b"../../../bin/a b,sha256=x,7\n\"cr\rlf\n\",,0\n");
    }

    #[test]
    fn record_paths() {
        let sp = "lib/python3.12/site-packages";
        let rel = |dest| path_from_site_packages(sp, dest);
        assert_eq!(rel("bin/tool"), "../../../bin/tool");
        assert_eq!(rel("lib/python3.12/site-packages/x/y.py"), "x/y.py");
        assert_eq!(rel("lib/python3.12/z.py"), "../z.py");
        assert_eq!(rel("share/a/b"), "../../../share/a/b");
    }

    #[test]
    fn pure_wheel_record_is_exact() {
        let out = install(&demo_wheel(), "demo-1.0-py3-none-any.whl").unwrap();
        let record = content(&out.files, &format!("{SP}/demo-1.0.dist-info/RECORD"));
        let sub = DEMO_SUB_LAUNCHER.as_bytes();
        let gui = content(&out.files, "opt/venv/bin/demo-gui");
        let expected = [
            rec_line("../../../bin/demo", DEMO_LAUNCHER.as_bytes()),
            rec_line("../../../bin/demo-gui", gui.as_bytes()),
            rec_line("../../../bin/demo-sub", sub),
            "demo-1.0.dist-info/INSTALLER,sha256=5hhM4Q4mYTT9z6QB6PGpUAW81PGNFrYrdXMj4oM_6ak,2\n"
                .to_string(),
            rec_line("demo-1.0.dist-info/METADATA", &metadata("demo", "1.0")),
            "demo-1.0.dist-info/RECORD,,\n".to_string(),
            "demo-1.0.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
                .to_string(),
            rec_line(
                "demo-1.0.dist-info/WHEEL",
                &wheel_file("py3-none-any", true),
            ),
            rec_line("demo-1.0.dist-info/entry_points.txt", DEMO_EP),
            rec_line("demo/__init__.py", DEMO_INIT),
            rec_line("demo/cli.py", DEMO_CLI),
        ]
        .concat();
        assert_eq!(record, expected);
    }

    #[test]
    fn data_wheel_record_is_exact() {
        let out = data_install();
        let launcher = bytes_of(&out.files, "opt/venv/bin/dup");
        let record = content(&out.files, &format!("{SP}/Data_Pkg-2.0.dist-info/RECORD"));
        let expected = [
            rec_line("../../../bin/bin-tool", ELF),
            rec_line("../../../bin/dup", &launcher),
            rec_line("../../../bin/plain.sh", PLAIN_SH),
            rec_line("../../../bin/tool.py", TOOL_PY_INSTALLED),
            rec_line(
                "../../../include/site/python3.12/data-pkg/datapkg.h",
                HEADER,
            ),
            rec_line("../../../share/datapkg/config.json", CONFIG),
            // Skipped script: the row stays as it was.
            rec_line("Data_Pkg-2.0.data/scripts/dup", DUP),
            "Data_Pkg-2.0.dist-info/INSTALLER,sha256=5hhM4Q4mYTT9z6QB6PGpUAW81PGNFrYrdXMj4oM_6ak,2\n"
                .to_string(),
            rec_line(
                "Data_Pkg-2.0.dist-info/METADATA",
                &metadata("Data_Pkg", "2.0"),
            ),
            "Data_Pkg-2.0.dist-info/RECORD,,\n".to_string(),
            "Data_Pkg-2.0.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
                .to_string(),
            rec_line(
                "Data_Pkg-2.0.dist-info/WHEEL",
                &wheel_file("py3-none-any", true),
            ),
            rec_line(
                "Data_Pkg-2.0.dist-info/entry_points.txt",
                b"[console_scripts]\ndup = datapkg:main\n",
            ),
            rec_line("datapkg.pth", PTH),
            rec_line("datapkg/__init__.py", INIT),
            rec_line("datapkg_extra.py", EXTRA),
        ]
        .concat();
        assert_eq!(record, expected);
    }

    #[test]
    fn record_healing_quoting_and_odd_paths() {
        let a = b"A = 1\n";
        let b = b"B = 2\n";
        let c = b"C = 3\n";
        let mut entries = vec![
            entry("demo/__init__.py", DEMO_INIT, 0o644),
            entry("demo/a,b.py", a, 0o644),
            entry("demo/abs.py", b, 0o644),
            entry("demo/unlisted.py", c, 0o644),
            entry(
                "demo-1.0.dist-info/METADATA",
                &metadata("demo", "1.0"),
                0o644,
            ),
            entry(
                "demo-1.0.dist-info/WHEEL",
                &wheel_file("py3-none-any", true),
                0o644,
            ),
            entry("demo-1.0.dist-info/RECORD.jws", b"signature", 0o644),
        ];
        let record = [
            rec_line("./demo/__init__.py", DEMO_INIT),
            format!("\"demo/a,b.py\",{},{}\r\n", record_hash(a), a.len()),
            rec_line("/demo/abs.py", b),
            rec_line("demo/missing.py", b"gone"),
            "\n".to_string(),
            rec_line("demo-1.0.dist-info/METADATA", &metadata("demo", "1.0")),
            format!(
                "demo-1.0.dist-info/WHEEL,{}=,\n",
                record_hash(&wheel_file("py3-none-any", true))
            ),
            "/demo-1.0.dist-info/RECORD,,".to_string(),
        ]
        .concat();
        entries.push(entry("demo-1.0.dist-info/RECORD", record.as_bytes(), 0o644));
        let out = install(&zip_bytes(&entries), "demo-1.0-py3-none-any.whl").unwrap();
        let written = content(&out.files, &format!("{SP}/demo-1.0.dist-info/RECORD"));
        let expected = [
            "demo-1.0.dist-info/INSTALLER,sha256=5hhM4Q4mYTT9z6QB6PGpUAW81PGNFrYrdXMj4oM_6ak,2\n"
                .to_string(),
            rec_line("demo-1.0.dist-info/METADATA", &metadata("demo", "1.0")),
            "demo-1.0.dist-info/RECORD,,\n".to_string(),
            "demo-1.0.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
                .to_string(),
            // Kept verbatim (padding included), size absent as in the wheel.
            format!(
                "demo-1.0.dist-info/WHEEL,{}=,\n",
                record_hash(&wheel_file("py3-none-any", true))
            ),
            rec_line("demo/__init__.py", DEMO_INIT),
            format!("\"demo/a,b.py\",{},{}\n", record_hash(a), a.len()),
            rec_line("demo/abs.py", b),
            format!("demo/unlisted.py,,{}\n", c.len()),
        ]
        .concat();
        assert_eq!(written, expected);
        // The signature file is installed but not listed.
        assert_eq!(
            content(&out.files, &format!("{SP}/demo-1.0.dist-info/RECORD.jws")),
            "signature"
        );
    }

    #[test]
    fn bad_record_hash() {
        // RECORD made for the original content; swap the content afterwards.
        let mut entries = demo_entries();
        let mut record = String::new();
        for (name, data, _) in &entries {
            if !name.ends_with('/') {
                record.push_str(&rec_line(name, data));
            }
        }
        entries[2].1 = b"def main():\n    return 1\n".to_vec(); // same size
        entries.push(entry("demo-1.0.dist-info/RECORD", record.as_bytes(), 0o644));
        let e = err(&zip_bytes(&entries), "demo-1.0-py3-none-any.whl");
        match &e {
            WheelError::Hash {
                wheel,
                member,
                expected,
                actual,
            } => {
                assert_eq!(wheel, "demo-1.0-py3-none-any.whl");
                assert_eq!(member, "demo/cli.py");
                assert_eq!(expected, &record_hash(DEMO_CLI));
                assert_eq!(actual, &record_hash(b"def main():\n    return 1\n"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string()
                .starts_with("demo-1.0-py3-none-any.whl: demo/cli.py: ")
        );
    }

    #[test]
    fn bad_record_size_and_algorithm() {
        let mut entries = demo_entries();
        entries.push(entry(
            "demo-1.0.dist-info/RECORD",
            format!("demo/cli.py,{},999\n", record_hash(DEMO_CLI)).as_bytes(),
            0o644,
        ));
        let e = err(&zip_bytes(&entries), "demo-1.0-py3-none-any.whl");
        assert!(
            matches!(&e, WheelError::Size { member, expected: 999, .. } if member == "demo/cli.py"),
            "{e:?}"
        );

        let mut entries = demo_entries();
        entries.push(entry(
            "demo-1.0.dist-info/RECORD",
            format!("demo/cli.py,md5=abc,{}\n", DEMO_CLI.len()).as_bytes(),
            0o644,
        ));
        let e = err(&zip_bytes(&entries), "demo-1.0-py3-none-any.whl");
        assert!(
            matches!(&e, WheelError::Record { member, line: 1, reason, .. }
                if member == "demo-1.0.dist-info/RECORD" && reason.contains("md5")),
            "{e:?}"
        );

        // sha512 rows are verified too.
        let mut entries = demo_entries();
        let digest = base64_urlsafe_nopad(&Sha512::digest(DEMO_CLI));
        entries.push(entry(
            "demo-1.0.dist-info/RECORD",
            format!("demo/cli.py,sha512={digest},{}\n", DEMO_CLI.len()).as_bytes(),
            0o644,
        ));
        assert!(install(&zip_bytes(&entries), "demo-1.0-py3-none-any.whl").is_ok());
    }

    #[test]
    fn missing_record() {
        let e = err(&zip_bytes(&demo_entries()), "demo-1.0-py3-none-any.whl");
        assert!(
            matches!(&e, WheelError::Missing { member, .. } if member == "demo-1.0.dist-info/RECORD"),
            "{e:?}"
        );
    }
}

//! deb822 control data: Packages indices, .deb control files and the dpkg
//! status file.
//!
//! Values keep their bytes exactly (continuation lines, `.` lines, trailing
//! spaces), because the generated dpkg status must be byte-identical to what
//! dpkg writes. A paragraph parsed from well-formed input writes back
//! unchanged.

use crate::error::{Error, Result};

/// One paragraph (stanza): its fields in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paragraph {
    pub fields: Vec<Field>,
}

/// One field of a paragraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The name as written (names compare case-insensitively).
    pub name: String,
    /// The bytes after `Name:` up to the end of the field, without the
    /// single space after the colon. Continuation lines are included with
    /// their newline and leading whitespace; trailing spaces are kept.
    pub value: String,
}

impl Field {
    /// A field with the given name and raw value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The value without surrounding whitespace.
    pub fn trimmed(&self) -> &str {
        self.value.trim()
    }

    #[cfg(test)]
    /// The continuation lines of the value, each without its leading
    /// whitespace and trailing spaces (e.g. the entries of `Conffiles`).
    pub fn continuation_lines(&self) -> impl Iterator<Item = &str> {
        self.value.split('\n').skip(1).map(str::trim)
    }

    #[cfg(test)]
    /// Appends `Name: value\n` to `out`. No space follows the colon when
    /// the value is empty or starts on the next line, as dpkg writes it.
    pub fn write_to(&self, out: &mut String) {
        out.push_str(&self.name);
        out.push(':');
        if !(self.value.is_empty() || self.value.starts_with('\n')) {
            out.push(' ');
        }
        out.push_str(&self.value);
        out.push('\n');
    }
}

impl Paragraph {
    /// The field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The raw value of the field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(name).map(|f| f.value.as_str())
    }

    /// The value of `name` without surrounding whitespace; for one-line
    /// fields such as Package, Version or Architecture.
    pub fn get_trimmed(&self, name: &str) -> Option<&str> {
        self.field(name).map(Field::trimmed)
    }

    #[cfg(test)]
    /// Sets the raw value of `name`: in place when the field exists (its
    /// position and written name are kept), otherwise appended.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .fields
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(f) => f.value = value,
            None => self.fields.push(Field::new(name, value)),
        }
    }

    #[cfg(test)]
    /// Removes the field named `name` and returns it.
    pub fn remove(&mut self, name: &str) -> Option<Field> {
        let at = self
            .fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))?;
        Some(self.fields.remove(at))
    }

    #[cfg(test)]
    /// The paragraph as text: one `Name: value\n` per field, no blank line.
    pub fn write(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    #[cfg(test)]
    /// Appends the paragraph as text to `out` (see [`Paragraph::write`]).
    pub fn write_to(&self, out: &mut String) {
        for f in &self.fields {
            f.write_to(out);
        }
    }
}

#[cfg(test)]
/// Paragraphs as a file: each one followed by a blank line, as dpkg writes
/// its status file.
pub fn write_all(paragraphs: &[Paragraph]) -> String {
    let mut out = String::new();
    for p in paragraphs {
        p.write_to(&mut out);
        out.push('\n');
    }
    out
}

#[cfg(test)]
/// Parses deb822 text into paragraphs (errors name the text "control data").
pub fn parse(text: &str) -> Result<Vec<Paragraph>> {
    parse_named(text, "control data")
}

/// Parses deb822 text into paragraphs; `origin` names the text (a file or
/// index) in error messages.
///
/// Paragraphs are separated by lines that are empty or hold only spaces and
/// tabs. Lines starting with `#` in the first column are comments and are
/// dropped, as deb822 allows. Field names must be unique in a paragraph.
pub fn parse_named(text: &str, origin: &str) -> Result<Vec<Paragraph>> {
    let err =
        |line: usize, message: String| Error::input(origin, format!("line {line}: {message}"));
    let mut out = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let lineno = n + 1;
        if line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            if !fields.is_empty() {
                out.push(Paragraph {
                    fields: std::mem::take(&mut fields),
                });
            }
            continue;
        }
        match line.as_bytes()[0] {
            b'#' => {}
            b' ' | b'\t' => {
                let Some(last) = fields.last_mut() else {
                    return Err(err(
                        lineno,
                        "continuation line (starting with whitespace) before any field".into(),
                    ));
                };
                last.value.push('\n');
                last.value.push_str(line);
            }
            _ => {
                let Some((name, rest)) = line.split_once(':') else {
                    return Err(err(
                        lineno,
                        format!(
                            "`{}` has no colon; a field is written `Name: value`",
                            line.trim_end()
                        ),
                    ));
                };
                if name.is_empty() {
                    return Err(err(lineno, "field name before `:` is empty".into()));
                }
                if name.starts_with('-')
                    || name
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(err(
                        lineno,
                        format!(
                            "invalid field name `{name}` (no whitespace, and it must not start with `-`)"
                        ),
                    ));
                }
                if fields.iter().any(|f| f.name.eq_ignore_ascii_case(name)) {
                    return Err(err(
                        lineno,
                        format!("field `{name}` appears twice in one paragraph"),
                    ));
                }
                let value = rest.strip_prefix(' ').unwrap_or(rest);
                fields.push(Field::new(name, value));
            }
        }
    }
    if !fields.is_empty() {
        out.push(Paragraph { fields });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libgdbm6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 128
Maintainer: Someone <someone@example.org>
Architecture: amd64
Multi-Arch: same
Source: gdbm
Version: 1.23-3
Depends: libc6 (>= 2.34)
Description: GNU dbm database routines (runtime version) 
 GNU dbm ('gdbm') is a library of database functions that use extendible
 hashing and works similarly to the standard UNIX 'dbm' functions.  
 .
 The basic use of GDBM is to store key/data pairs in a data file, thus
 providing a persistent version of the 'associative array' type.
Homepage: https://gnu.invalid/gdbm

Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Conffiles:
 /etc/debian_version 1d2b3c4e5f60718293a4b5c6d7e8f901
 /etc/host.conf 4eb63731c9f5e30903ac4fc07a7fe3d6
 /etc/issue 7f5f0e5b0a3d3c6d7e8f9a0b1c2d3e4f obsolete
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files.

";

    #[test]
    fn round_trips_byte_for_byte() {
        let paras = parse(STATUS).unwrap();
        assert_eq!(paras.len(), 2);
        assert_eq!(write_all(&paras), STATUS);
        // Each paragraph alone, too.
        let first_end = STATUS.find("\n\n").unwrap() + 1;
        assert_eq!(paras[0].write(), &STATUS[..first_end]);
    }

    #[test]
    fn values_keep_exact_bytes() {
        let paras = parse(STATUS).unwrap();
        let d = paras[0].get("description").unwrap();
        assert!(d.starts_with("GNU dbm database routines (runtime version) \n GNU dbm"));
        assert!(d.contains("'dbm' functions.  \n .\n The basic"));
        assert!(d.ends_with("'associative array' type."));
        let c = paras[1].field("Conffiles").unwrap();
        assert!(c.value.starts_with("\n /etc/debian_version "));
        let entries: Vec<&str> = c.continuation_lines().collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[2],
            "/etc/issue 7f5f0e5b0a3d3c6d7e8f9a0b1c2d3e4f obsolete"
        );
        assert_eq!(paras[1].get_trimmed("ESSENTIAL"), Some("yes"));
        assert_eq!(paras[0].get("Nope"), None);
    }

    #[test]
    fn conffiles_alone_round_trips() {
        let text = "Conffiles:\n /etc/a 00112233445566778899aabbccddeeff\n /etc/b ffeeddccbbaa99887766554433221100\n";
        let paras = parse(text).unwrap();
        assert_eq!(
            paras[0].fields[0].value,
            "\n /etc/a 00112233445566778899aabbccddeeff\n /etc/b ffeeddccbbaa99887766554433221100"
        );
        assert_eq!(paras[0].write(), text);
    }

    #[test]
    fn separators_comments_and_missing_final_newline() {
        let text = "# a comment\nA: 1\n# inside\nB: two\n  more\n\n \t\n\n\nC: 3";
        let paras = parse(text).unwrap();
        assert_eq!(paras.len(), 2);
        assert_eq!(paras[0].fields.len(), 2);
        assert_eq!(paras[0].get("b"), Some("two\n  more"));
        assert_eq!(paras[1].write(), "C: 3\n");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n\n# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn empty_value_and_extra_spaces() {
        let paras = parse("Empty:\nSpaced:  two spaces\nTight:x\n").unwrap();
        assert_eq!(paras[0].get("Empty"), Some(""));
        assert_eq!(paras[0].get("Spaced"), Some(" two spaces"));
        assert_eq!(paras[0].get("Tight"), Some("x"));
        assert_eq!(paras[0].write(), "Empty:\nSpaced:  two spaces\nTight: x\n");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("A: 1\nnot a field\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("not a field") && e.contains("colon"),
            "{e}"
        );
        let e = parse(" leading\nA: 1\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("continuation"), "{e}");
        let e = parse("A: 1\na: 2\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let e = parse_named("A: 1\n\nBad Name: 2\n", "Packages")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Packages: line 3") && e.contains("Bad Name"),
            "{e}"
        );
        let e = parse(": x\n").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut p = parse("Package: a\nVersion: 1\nDepends: b\n")
            .unwrap()
            .remove(0);
        p.set("version", "2");
        p.set("Status", "install ok installed");
        assert_eq!(p.remove("DEPENDS").unwrap().value, "b");
        assert_eq!(
            p.write(),
            "Package: a\nVersion: 2\nStatus: install ok installed\n"
        );
    }
}

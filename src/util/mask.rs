//! Hiding secret values in text shown to people or programs: a RUN step's
//! output lines and the messages of its failure go through [`Masker`]
//! before they reach stderr or the JSON result.

/// What secret values are replaced by.
pub const MASK: &str = "****";

/// Replaces every known secret value in text.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// Longest first, so a value that holds another is hidden whole.
    needles: Vec<String>,
}

impl Masker {
    /// A masker for these secret values. Each value is hidden as a whole,
    /// without its trailing newline (files often end with one), and line
    /// by line (output comes a line at a time); lines shorter than four
    /// characters are not hidden on their own (they would mask common
    /// text, not secrets).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Masker {
        let mut needles: Vec<String> = Vec::new();
        for v in values {
            let Ok(text) = std::str::from_utf8(v) else {
                continue;
            };
            let whole = text.trim_end_matches(['\n', '\r']);
            if !whole.is_empty() {
                needles.push(whole.to_string());
            }
            for line in whole.lines() {
                let line = line.trim_end_matches('\r');
                if line.chars().count() >= 4 && line != whole {
                    needles.push(line.to_string());
                }
            }
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        needles.dedup();
        Masker { needles }
    }

    /// `text` with every secret value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_whole_and_by_line() {
        let m = Masker::new([
            b"s3cr3t-token\n".as_slice(),
            b"line-one\nline-two\nab\n".as_slice(),
            b"".as_slice(),
            b"\xff\xfe".as_slice(),
        ]);
        assert_eq!(m.mask("got s3cr3t-token!"), "got ****!");
        assert_eq!(m.mask("x line-two y"), "x **** y");
        assert_eq!(
            m.mask("ab stays"),
            "ab stays",
            "short lines alone are not hidden"
        );
        assert_eq!(m.mask("line-one\nline-two\nab"), "****");
        assert_eq!(m.mask("nothing here"), "nothing here");
        assert_eq!(Masker::default().mask("as is"), "as is");
    }

    #[test]
    fn a_value_holding_another_is_hidden_whole() {
        let m = Masker::new([b"abcd".as_slice(), b"abcdefgh".as_slice()]);
        assert_eq!(m.mask("abcdefgh abcd"), "**** ****");
    }
}

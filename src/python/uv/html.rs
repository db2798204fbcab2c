//! The little HTML a PEP 503 project page needs: where a tag ends, its
//! attributes, and character references.

use std::collections::BTreeMap;

/// Index of the `>` closing the tag that starts at `start` (quotes respected).
pub(super) fn tag_end(text: &str, start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text[start..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(start + i),
            _ => {}
        }
    }
    None
}

/// `name="value" flag name='v' name=v` → lowercase names, decoded values.
pub(super) fn attributes(s: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        if ns == i {
            break;
        }
        let name = s[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                let v = &s[vs..i.min(b.len())];
                i += 1;
                v
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &s[vs..i]
            };
            out.insert(name, Some(decode_entities(value)));
        } else {
            out.insert(name, None);
        }
    }
    out
}

pub(super) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // `;` is ASCII, so the byte search needs no character boundary.
        let window = &rest.as_bytes()[..rest.len().min(10)];
        let Some(semi) = window.iter().position(|&b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let decoded = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_references() {
        assert_eq!(
            decode_entities("a &amp; b &lt;&#x41;&#66;&gt;"),
            "a & b <AB>"
        );
        assert_eq!(decode_entities("&bogus; & &#xZZ;"), "&bogus; & &#xZZ;");
        // A multibyte character where the reference's ten bytes end.
        assert_eq!(decode_entities("&abcdefgh€;x"), "&abcdefgh€;x");
        assert_eq!(decode_entities("&#x€€€€;"), "&#x€€€€;");
    }

    #[test]
    fn tags_and_attributes() {
        let text = "<a href='x>y' data-yanked>label</a>";
        assert_eq!(tag_end(text, 0), Some(25));
        let attrs = attributes(&text[2..25]);
        assert_eq!(attrs.get("href"), Some(&Some("x>y".to_string())));
        assert_eq!(attrs.get("data-yanked"), Some(&None));
        let attrs = attributes(" é=\"ü\" x=é");
        assert_eq!(attrs.get("é"), Some(&Some("ü".to_string())));
        assert_eq!(attrs.get("x"), Some(&Some("é".to_string())));
    }
}

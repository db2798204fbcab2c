//! Names as a layer's tar carries them: raw bytes.
//!
//! A Linux file name is any bytes but '/' and NUL, and a tar header holds
//! bytes, so a name read from disk goes into a layer unchanged, whether or
//! not it is UTF-8 (Docker copies such files too). Text is only made of a
//! name where a person reads it ([`TarPath`]'s `Display`: invalid bytes as
//! `\xNN`) or where a pattern is matched ([`TarPath::for_matching`]).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A path inside a layer (relative, '/'-separated, no leading '/'), or a
/// link target, as bytes. Ordered by bytes, as `String` is, so a tree of
/// UTF-8 names sorts as it did when names were strings.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TarPath(Vec<u8>);

impl TarPath {
    pub fn from_bytes(b: impl Into<Vec<u8>>) -> TarPath {
        TarPath(b.into())
    }

    pub fn from_os(s: &OsStr) -> TarPath {
        TarPath(s.as_bytes().to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    pub fn as_path(&self) -> &Path {
        Path::new(self.as_os_str())
    }

    /// The name as text when it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `self/rest`, or the other one when either is empty.
    pub fn join(&self, rest: &TarPath) -> TarPath {
        match (self.is_empty(), rest.is_empty()) {
            (true, _) => rest.clone(),
            (_, true) => self.clone(),
            _ => {
                let mut b = Vec::with_capacity(self.len() + 1 + rest.len());
                b.extend_from_slice(&self.0);
                b.push(b'/');
                b.extend_from_slice(&rest.0);
                TarPath(b)
            }
        }
    }

    /// The part before the last '/', if there is one.
    pub fn parent(&self) -> Option<TarPath> {
        let i = self.0.iter().rposition(|&b| b == b'/')?;
        Some(TarPath(self.0[..i].to_vec()))
    }

    /// The rest after `prefix` (bytes), if the path starts with it.
    pub fn strip_prefix(&self, prefix: &str) -> Option<&[u8]> {
        self.0.strip_prefix(prefix.as_bytes())
    }

    /// The text ignore patterns are matched against. A UTF-8 name is
    /// itself; in another, each byte that is not part of a valid UTF-8
    /// sequence becomes one U+FFFD. That is how BuildKit's matcher (Go
    /// regular expressions over the raw name) sees it: `?` and `*` take
    /// such a byte as one character, literal text must match the valid
    /// parts exactly.
    pub fn for_matching(&self) -> Cow<'_, str> {
        if let Some(s) = self.to_str() {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(self.len() + 8);
        for chunk in self.0.utf8_chunks() {
            out.push_str(chunk.valid());
            for _ in chunk.invalid() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
        Cow::Owned(out)
    }
}

impl From<&str> for TarPath {
    fn from(s: &str) -> TarPath {
        TarPath(s.as_bytes().to_vec())
    }
}

impl From<String> for TarPath {
    fn from(s: String) -> TarPath {
        TarPath(s.into_bytes())
    }
}

impl From<&String> for TarPath {
    fn from(s: &String) -> TarPath {
        TarPath(s.as_bytes().to_vec())
    }
}

impl AsRef<[u8]> for TarPath {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// On disk the name is these bytes: `dir.join(&name)`.
impl AsRef<Path> for TarPath {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

/// A UTF-8 name as a string, another as its bytes (a JSON array of
/// numbers); either reads back as the same name.
impl serde::Serialize for TarPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.to_str() {
            Some(t) => s.serialize_str(t),
            None => s.serialize_bytes(&self.0),
        }
    }
}

impl<'de> serde::Deserialize<'de> for TarPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TarPath, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TarPath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name as a string or as bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TarPath, E> {
                Ok(TarPath::from(v))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<TarPath, E> {
                Ok(TarPath::from_bytes(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<TarPath, A::Error> {
                let mut b = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(x) = a.next_element::<u8>()? {
                    b.push(x);
                }
                Ok(TarPath(b))
            }
        }
        d.deserialize_any(V)
    }
}

impl PartialEq<str> for TarPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for TarPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// For people: a UTF-8 name as it is, other bytes as `\xNN`.
impl fmt::Display for TarPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TarPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_read_as_themselves() {
        let p = TarPath::from("app/café.txt");
        assert_eq!(p.to_string(), "app/café.txt");
        assert_eq!(p.for_matching(), "app/café.txt");
        assert_eq!(p.to_str(), Some("app/café.txt"));
    }

    #[test]
    fn other_bytes_are_escaped_for_people_and_replaced_for_patterns() {
        let p = TarPath::from_bytes(b"d\xff/f\xe9\xe2\x82.txt".to_vec());
        assert_eq!(p.to_string(), "d\\xff/f\\xe9\\xe2\\x82.txt");
        assert_eq!(p.to_str(), None);
        // One U+FFFD per stray byte, as Go's decoder counts them.
        assert_eq!(p.for_matching(), "d\u{fffd}/f\u{fffd}\u{fffd}\u{fffd}.txt");
        assert_eq!(format!("{p:?}"), "\"d\\xff/f\\xe9\\xe2\\x82.txt\"");
    }

    #[test]
    fn joins_and_parents_work_on_bytes() {
        let a = TarPath::from_bytes(b"a\xff".to_vec());
        let b = TarPath::from("b");
        assert_eq!(a.join(&b).as_bytes(), b"a\xff/b");
        assert_eq!(TarPath::default().join(&b), b);
        assert_eq!(a.join(&TarPath::default()), a);
        assert_eq!(a.join(&b).parent(), Some(a.clone()));
        assert_eq!(a.parent(), None);
        assert_eq!(a.join(&b).strip_prefix("a"), Some(&b"\xff/b"[..]));
    }

    #[test]
    fn names_survive_json() {
        for p in [
            TarPath::from("a/é"),
            TarPath::from_bytes(b"a/\xff\xfe".to_vec()),
        ] {
            let j = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<TarPath>(&j).unwrap(), p, "{j}");
        }
        assert_eq!(serde_json::to_string(&TarPath::from("a")).unwrap(), "\"a\"");
    }

    #[test]
    fn order_is_byte_order_as_for_strings() {
        let mut v = [
            TarPath::from("é"),
            TarPath::from_bytes(b"\xff".to_vec()),
            TarPath::from("a/b"),
            TarPath::from("a.b"),
        ];
        v.sort();
        let mut s = ["é", "a/b", "a.b"];
        s.sort();
        assert_eq!(v[..3].iter().map(|p| p.to_string()).collect::<Vec<_>>(), s);
        assert_eq!(v[3].as_bytes(), b"\xff");
    }
}

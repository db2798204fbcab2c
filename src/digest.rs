//! Digests and typed, length-delimited cache keys.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest(h.finalize().into())
    }
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
    /// `sha256:<hex>`
    pub fn oci(&self) -> String {
        format!("sha256:{}", self.hex())
    }
    pub fn parse_hex(s: &str) -> Option<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }
    /// Parses `sha256:<64 hex>`.
    pub fn parse_oci(s: &str) -> Option<Digest> {
        Digest::parse_hex(s.strip_prefix("sha256:")?)
    }
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.oci())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse_oci(&s).ok_or_else(|| serde::de::Error::custom(format!("bad digest {s:?}")))
    }
}

/// Builds a step key: sha256 over a typed, length-delimited encoding.
///
/// Every field is written as a one-byte type tag, a big-endian u64 length and
/// the bytes, so `("num","py")` and `("nump","y")` never collide, nor does a
/// string with the same bytes as a digest.
pub struct KeyHasher(Sha256);

impl KeyHasher {
    /// Starts a key for a step kind; `version` is the engine's layer-format version
    /// for that kind, bumped whenever the bytes it produces change.
    pub fn new(kind: &str, version: u32) -> KeyHasher {
        let mut k = KeyHasher(Sha256::new());
        k.str("imgbuild-step-key");
        k.str(kind);
        k.u64(version as u64);
        k
    }
    fn field(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        self.0.update([tag]);
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.field(b's', s.as_bytes())
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.field(b'b', b)
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.field(b'u', &v.to_be_bytes())
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.field(b't', &[v as u8])
    }
    pub fn digest(&mut self, d: &Digest) -> &mut Self {
        self.field(b'd', &d.0)
    }
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.field(b'n', &[]),
            Some(s) => self.str(s),
        }
    }
    /// A list: its length first, then each element.
    pub fn strs<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.field(b'l', &(items.len() as u64).to_be_bytes());
        for s in items {
            self.str(s.as_ref());
        }
        self
    }
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.0)
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Digest::of(bytes).hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_length_delimited() {
        let mut a = KeyHasher::new("t", 1);
        a.str("num").str("py");
        let mut b = KeyHasher::new("t", 1);
        b.str("nump").str("y");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn keys_are_typed() {
        let d = Digest::of(b"x");
        let mut a = KeyHasher::new("t", 1);
        a.digest(&d);
        let mut b = KeyHasher::new("t", 1);
        b.bytes(&d.0);
        assert_ne!(a.finish(), b.finish());
        let mut c = KeyHasher::new("t", 1);
        c.opt_str(None);
        let mut e = KeyHasher::new("t", 1);
        e.str("");
        assert_ne!(c.finish(), e.finish());
    }

    #[test]
    fn version_changes_key() {
        assert_ne!(
            KeyHasher::new("t", 1).finish(),
            KeyHasher::new("t", 2).finish()
        );
    }

    #[test]
    fn digest_roundtrip() {
        let d = Digest::of(b"hello");
        assert_eq!(
            d.oci(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Digest::parse_oci(&d.oci()), Some(d));
        assert_eq!(Digest::parse_oci("sha256:zz"), None);
    }
}

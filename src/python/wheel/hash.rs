//! Digests and encodings RECORD uses.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// URL-safe base64 without padding (RFC 4648 §5), as RECORD uses.
pub fn base64_urlsafe_nopad(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Lowercase hex.
pub fn hex_lower(data: &[u8]) -> String {
    hex::encode(data)
}

/// The RECORD hash field for `data`: `sha256=<urlsafe base64, no padding>`.
pub fn record_hash(data: &[u8]) -> String {
    format!("sha256={}", base64_urlsafe_nopad(&Sha256::digest(data)))
}

/// Digest `data` with a RECORD algorithm name; `None` if unsupported.
pub(super) fn digest_b64(algorithm: &str, data: &[u8]) -> Option<String> {
    Some(match algorithm {
        "sha256" => base64_urlsafe_nopad(&Sha256::digest(data)),
        "sha384" => base64_urlsafe_nopad(&Sha384::digest(data)),
        "sha512" => base64_urlsafe_nopad(&Sha512::digest(data)),
        "sha224" => base64_urlsafe_nopad(&Sha224::digest(data)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders() {
        for (input, output) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (b"\xfb\xff\xbf", "-_-_"),
        ] {
            assert_eq!(base64_urlsafe_nopad(input), output);
        }
        assert_eq!(hex_lower(&[0x00, 0x7f, 0xab, 0xff]), "007fabff");
        // The two fixed rows the doc gives.
        assert_eq!(
            record_hash(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(
            record_hash(b"uv"),
            "sha256=5hhM4Q4mYTT9z6QB6PGpUAW81PGNFrYrdXMj4oM_6ak"
        );
        assert_eq!(
            hex_lower(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

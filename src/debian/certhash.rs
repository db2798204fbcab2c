//! OpenSSL's subject-name hash of a certificate (what `openssl rehash`
//! names the `<hash>.0` links in /etc/ssl/certs after): SHA-1 over the
//! subject's canonical encoding, its first four bytes read little-endian.
//! The canonical encoding re-encodes every string value as UTF8String,
//! trimmed, with runs of whitespace made one space and ASCII lowercased,
//! and concatenates the relative distinguished names without the outer
//! SEQUENCE.
//!
//! Hand-written because it must equal OpenSSL's `X509_NAME_hash` exactly
//! and no crate computes that canonical form; the unit test compares it with
//! `openssl x509 -subject_hash` for every certificate the host ships. The
//! PEM is read by rustls-pki-types.

use sha1::{Digest, Sha1};

/// One DER element: tag, and where its content and the whole element are.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

fn read(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((
        Tlv {
            tag,
            content: &b[head..end],
            whole: &b[..end],
        },
        &b[end..],
    ))
}

fn children(mut b: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, rest) = read(b)?;
        out.push(t);
        b = rest;
    }
    Some(out)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A string value as UTF-8, by its ASN.1 type; None for other types.
fn text(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        0x0c | 0x13 | 0x16 | 0x1a => Some(String::from_utf8_lossy(v).into_owned()),
        // T61String: read as Latin-1, as OpenSSL does.
        0x14 => Some(v.iter().map(|&b| b as char).collect()),
        // BMPString (UCS-2) and UniversalString (UCS-4), big-endian.
        0x1e => Some(
            v.chunks(2)
                .filter_map(|c| char::from_u32(u32::from(c[0]) << 8 | u32::from(*c.get(1)?)))
                .collect(),
        ),
        0x1c => Some(
            v.chunks(4)
                .filter_map(|c| {
                    (c.len() == 4)
                        .then(|| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .and_then(char::from_u32)
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Trimmed, inner whitespace runs made one space, ASCII lowercased.
fn canon(s: &str) -> String {
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let mut out = String::new();
    let mut pending = false;
    for c in s.trim_matches(space).chars() {
        if space(c) {
            pending = true;
            continue;
        }
        if pending {
            out.push(' ');
            pending = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The subject-name hash of a DER certificate, as 8 hex digits.
pub fn subject_hash_der(cert: &[u8]) -> Option<String> {
    let (cert, _) = read(cert)?;
    let tbs = children(cert.content)?;
    let fields = children(tbs.first()?.content)?;
    // serial, signature, issuer, validity, subject, after an optional [0] version.
    let skip = usize::from(fields.first()?.tag == 0xa0);
    let subject = fields.get(skip + 4)?;
    let mut enc = Vec::new();
    for rdn in children(subject.content)? {
        let mut set = Vec::new();
        for ava in children(rdn.content)? {
            let parts = children(ava.content)?;
            let (oid, value) = (parts.first()?, parts.get(1)?);
            let value = match text(value.tag, value.content) {
                Some(s) => der(0x0c, canon(&s).as_bytes()),
                None => value.whole.to_vec(),
            };
            let mut seq = oid.whole.to_vec();
            seq.extend(value);
            set.extend(der(0x30, &seq));
        }
        enc.extend(der(0x31, &set));
    }
    let md = Sha1::digest(&enc);
    Some(format!(
        "{:08x}",
        u32::from_le_bytes([md[0], md[1], md[2], md[3]])
    ))
}

/// The subject-name hash of the first certificate of a PEM file.
pub fn subject_hash_pem(pem: &[u8]) -> Option<String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    subject_hash_der(&CertificateDer::from_pem_slice(pem).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strings() {
        assert_eq!(canon("  Foo   Bar\tBAZ "), "foo bar baz");
        assert_eq!(canon("Ünï  Côde"), "Ünï côde");
    }

    /// The first CERTIFICATE section counts, whatever comes before it (the
    /// old reader gave up on a file with any byte that was not UTF-8); a
    /// file without one, or with a body that is not base64, has no hash.
    #[test]
    fn pem_sections() {
        let Ok(cert) = std::fs::read("/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt") else {
            eprintln!("skipping: no ISRG_Root_X1.crt");
            return;
        };
        let want = subject_hash_pem(&cert).expect("a certificate");
        let mut with_key = b"Latin-1 comment: \xe9t\xe9\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec();
        with_key.extend_from_slice(&cert);
        assert_eq!(subject_hash_pem(&with_key).as_deref(), Some(want.as_str()));
        assert_eq!(subject_hash_pem(b"no certificate here"), None);
        assert_eq!(
            subject_hash_pem(
                b"-----BEGIN CERTIFICATE-----\n*not base64*\n-----END CERTIFICATE-----\n"
            ),
            None
        );
    }

    /// Every certificate the host's ca-certificates ships hashes as the
    /// host's OpenSSL says.
    #[test]
    fn hashes_match_openssl() {
        let dir = std::path::Path::new("/usr/share/ca-certificates/mozilla");
        let Ok(rd) = std::fs::read_dir(dir) else {
            eprintln!("skipping: no {}", dir.display());
            return;
        };
        let mut checked = 0;
        for e in rd.flatten().take(400) {
            let p = e.path();
            let Ok(out) = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-subject_hash", "-in"])
                .arg(&p)
                .output()
            else {
                assert!(std::env::var_os("CI").is_none(), "CI needs openssl");
                eprintln!("skipping: no openssl");
                return;
            };
            let want = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let got = subject_hash_pem(&std::fs::read(&p).unwrap());
            assert_eq!(got.as_deref(), Some(want.as_str()), "{}", p.display());
            checked += 1;
        }
        assert!(checked > 100, "{checked}");
    }
}

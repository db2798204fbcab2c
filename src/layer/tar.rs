//! A deterministic tar writer: ustar headers, PAX records only where ustar
//! cannot hold a value (long paths or link targets, huge sizes or ids).
//!
//! Written here rather than with the tar crate's `Builder` (the crate still
//! reads layers): every header byte is part of a layer's digest, so which
//! fields are set, when PAX is used and how its records are ordered are
//! pinned by this file and its layer-format version, not by a dependency.

use std::io::{self, Read, Write};

/// What a tar entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File { size: u64 },
    Dir,
    Symlink { target: String },
    Hardlink { target: String },
}

/// One entry's metadata. `path` is relative, '/'-separated, without a
/// leading '/' and (for directories) without a trailing '/'.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

const BLOCK: usize = 512;
const MAX_OCTAL_8: u64 = 0o7777777;
const MAX_OCTAL_12: u64 = 0o77777777777;

pub struct TarWriter<W: Write> {
    w: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W) -> Self {
        TarWriter { w }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Writes the header (and PAX record if needed) for `e`. For files the
    /// caller then writes exactly `size` bytes with [`TarWriter::append_data`].
    pub fn append_header(&mut self, e: &Entry) -> io::Result<()> {
        self.append_header_xattrs(e, &[])
    }

    /// [`TarWriter::append_header`] with extended attributes (as PAX
    /// `SCHILY.xattr.*` records), e.g. `security.capability`.
    pub fn append_header_xattrs(&mut self, e: &Entry, xattrs: &[(&str, &[u8])]) -> io::Result<()> {
        let mut name = e.path.clone();
        if e.kind == EntryKind::Dir && !name.ends_with('/') {
            name.push('/');
        }
        let (typeflag, size, link) = match &e.kind {
            EntryKind::File { size } => (b'0', *size, ""),
            EntryKind::Dir => (b'5', 0, ""),
            EntryKind::Symlink { target } => (b'2', 0, target.as_str()),
            EntryKind::Hardlink { target } => (b'1', 0, target.as_str()),
        };
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let split = split_ustar_name(&name);
        if split.is_none() {
            pax.push(("path".into(), name.clone().into_bytes()));
        }
        if link.len() > 100 {
            pax.push(("linkpath".into(), link.as_bytes().to_vec()));
        }
        if size > MAX_OCTAL_12 {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        if e.uid > MAX_OCTAL_8 {
            pax.push(("uid".into(), e.uid.to_string().into_bytes()));
        }
        if e.gid > MAX_OCTAL_8 {
            pax.push(("gid".into(), e.gid.to_string().into_bytes()));
        }
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.to_vec()));
        }
        if !pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &pax {
                body.extend_from_slice(&pax_record(k, v));
            }
            let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let mut pax_name = format!("PaxHeaders/{base}");
            pax_name.truncate(100);
            while !pax_name.is_char_boundary(pax_name.len()) {
                pax_name.pop();
            }
            let h = header(
                ("", &pax_name),
                0o644,
                0,
                0,
                body.len() as u64,
                e.mtime,
                b'x',
                "",
            );
            self.w.write_all(&h)?;
            self.w.write_all(&body)?;
            self.pad(body.len() as u64)?;
        }
        let (prefix, short) = split.unwrap_or(("", truncate_bytes(&name, 100)));
        let link_field = truncate_bytes(link, 100);
        let h = header(
            (prefix, short),
            e.mode & 0o7777,
            e.uid.min(MAX_OCTAL_8),
            e.gid.min(MAX_OCTAL_8),
            size.min(MAX_OCTAL_12),
            e.mtime.min(MAX_OCTAL_12),
            typeflag,
            link_field,
        );
        self.w.write_all(&h)
    }

    /// Copies exactly `size` bytes of file data and pads to a block. A
    /// source that yields fewer or more bytes is an error (the file changed
    /// while it was being read).
    pub fn append_data<R: Read>(&mut self, r: &mut R, size: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = r.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while it was being read",
                ));
            }
            self.w.write_all(&buf[..n])?;
            left -= n as u64;
        }
        if r.read(&mut buf[..1])? != 0 {
            return Err(io::Error::other("file grew while it was being read"));
        }
        self.pad(size)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.w)
    }
}

fn truncate_bytes(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Splits a name into ustar (prefix, name) if it fits, at a '/'.
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    if name.len() > 256 {
        return None;
    }
    // The prefix is at most 155 bytes and the rest at most 100.
    let bytes = name.as_bytes();
    for i in (0..bytes.len().min(156)).rev() {
        if bytes[i] == b'/' && i > 0 {
            let rest = &name[i + 1..];
            if rest.len() <= 100 && !rest.is_empty() {
                return Some((&name[..i], rest));
            }
            if rest.len() > 100 {
                return None;
            }
        }
    }
    None
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> <key>=<value>\n" where len counts itself.
    let base = key.len() + value.len() + 3;
    let mut len = base + base.to_string().len();
    if len.to_string().len() + base != len {
        len = base + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
    field[field.len() - 1] = 0;
}

#[allow(clippy::too_many_arguments)]
fn header(
    name: (&str, &str),
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &str,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.1.len()].copy_from_slice(name.1.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[345..345 + name.0.len()].copy_from_slice(name.0.as_bytes());
    // Checksum: sum of all bytes with the checksum field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for v in ["a", &"x".repeat(93), &"y".repeat(94), &"z".repeat(995)] {
            let r = pax_record("path", v.as_bytes());
            let s = String::from_utf8(r.clone()).unwrap();
            let n: usize = s.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(n, r.len(), "{s}");
        }
    }

    #[test]
    fn ustar_split() {
        assert_eq!(split_ustar_name("a/b"), Some(("", "a/b")));
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let (p, n) = split_ustar_name(&long).unwrap();
        assert_eq!(p.len(), 120);
        assert_eq!(n.len(), 50);
        assert_eq!(split_ustar_name(&"x".repeat(101)), None);
        assert_eq!(split_ustar_name(&format!("a/{}", "x".repeat(101))), None);
    }
}

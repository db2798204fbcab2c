//! A deterministic tar writer: ustar headers, PAX records only where ustar
//! cannot hold a value (long paths or link targets, huge sizes or ids) or
//! where a name is not UTF-8.
//!
//! Written here rather than with the tar crate's `Builder` (the crate still
//! reads layers): every header byte is part of a layer's digest, so which
//! fields are set, when PAX is used and how its records are ordered are
//! pinned by this file and its layer-format version, not by a dependency.
//!
//! Names are bytes. A name (or link target) that is not UTF-8 is written
//! as Go's archive/tar (and so Docker) writes a non-ASCII one: in a PAX
//! `path` (`linkpath`) record holding the raw bytes, here preceded by
//! `hdrcharset=BINARY`, which tells readers that decode PAX values as
//! UTF-8 (as POSIX has them) to take the bytes as they are. The ustar
//! fields hold the same bytes, cut to fit, for readers without PAX. UTF-8
//! names are written as before, in the ustar fields alone when they fit.

use std::io::{self, Read, Write};

/// What a tar entry is. Targets are `P`: text for the layers imgbuild
/// makes up, [`super::path::TarPath`] (bytes) for names read from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind<P = String> {
    File { size: u64 },
    Dir,
    Symlink { target: P },
    Hardlink { target: P },
}

/// One entry's metadata. `path` is relative, '/'-separated, without a
/// leading '/' and (for directories) without a trailing '/'.
#[derive(Clone, Debug)]
pub struct Entry<P = String> {
    pub path: P,
    pub kind: EntryKind<P>,
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
    pub fn append_header<P: AsRef<[u8]>>(&mut self, e: &Entry<P>) -> io::Result<()> {
        self.append_header_xattrs(e, &[])
    }

    /// [`TarWriter::append_header`] with extended attributes (as PAX
    /// `SCHILY.xattr.*` records), e.g. `security.capability`.
    pub fn append_header_xattrs<P: AsRef<[u8]>>(
        &mut self,
        e: &Entry<P>,
        xattrs: &[(&str, &[u8])],
    ) -> io::Result<()> {
        let path = e.path.as_ref();
        let name: std::borrow::Cow<[u8]> =
            if matches!(e.kind, EntryKind::Dir) && path.last() != Some(&b'/') {
                let mut n = Vec::with_capacity(path.len() + 1);
                n.extend_from_slice(path);
                n.push(b'/');
                n.into()
            } else {
                path.into()
            };
        let (typeflag, size, link): (u8, u64, &[u8]) = match &e.kind {
            EntryKind::File { size } => (b'0', *size, b""),
            EntryKind::Dir => (b'5', 0, b""),
            EntryKind::Symlink { target } => (b'2', 0, target.as_ref()),
            EntryKind::Hardlink { target } => (b'1', 0, target.as_ref()),
        };
        let name_text = std::str::from_utf8(&name).is_ok();
        let link_text = std::str::from_utf8(link).is_ok();
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if !name_text || !link_text {
            pax.push(("hdrcharset".into(), b"BINARY".to_vec()));
        }
        let split = split_ustar_name(&name);
        if split.is_none() || !name_text {
            pax.push(("path".into(), name.to_vec()));
        }
        if link.len() > 100 || !link_text {
            pax.push(("linkpath".into(), link.to_vec()));
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
            let trimmed = trim_end_slashes(&name);
            let base = match trimmed.iter().rposition(|&b| b == b'/') {
                Some(i) => &trimmed[i + 1..],
                None => trimmed,
            };
            let mut pax_name = b"PaxHeaders/".to_vec();
            pax_name.extend_from_slice(base);
            let pax_name = truncate_bytes(&pax_name, 100);
            let h = header(
                (b"", pax_name),
                0o644,
                0,
                0,
                body.len() as u64,
                e.mtime,
                b'x',
                b"",
            );
            self.w.write_all(&h)?;
            self.w.write_all(&body)?;
            self.pad(body.len() as u64)?;
        }
        let (prefix, short) = split.unwrap_or((b"", truncate_bytes(&name, 100)));
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

    /// Pads file data of `len` bytes to a block: for data written
    /// through [`TarWriter::get_mut`] instead of `append_data`.
    pub fn pad(&mut self, len: u64) -> io::Result<()> {
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

/// The first `n` bytes of `s` or fewer: a cut never splits a UTF-8
/// sequence (it backs off over at most three continuation bytes, so a
/// UTF-8 name is cut where a string would be).
fn truncate_bytes(s: &[u8], n: usize) -> &[u8] {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while end > 0 && n - end < 3 && (s[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    &s[..end]
}

fn trim_end_slashes(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &s[..end]
}

/// Splits a name into ustar (prefix, name) if it fits, at a '/'.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    if name.len() > 256 {
        return None;
    }
    // The prefix is at most 155 bytes and the rest at most 100.
    for i in (0..name.len().min(156)).rev() {
        if name[i] == b'/' && i > 0 {
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

/// Writes `v` as zero-padded octal digits ending in a NUL, filling the
/// field (the callers cap `v` to what fits). By hand: this runs several
/// times per entry, and a formatter costs more than the digits.
fn octal(field: &mut [u8], mut v: u64) {
    let (last, digits) = field.split_last_mut().expect("a field is not empty");
    *last = 0;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    debug_assert_eq!(v, 0, "the value fits the field");
}

#[allow(clippy::too_many_arguments)]
fn header(
    name: (&[u8], &[u8]),
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &[u8],
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.1.len()].copy_from_slice(name.1);
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[345..345 + name.0.len()].copy_from_slice(name.0);
    // Checksum: sum of all bytes with the checksum field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    // Six digits, a NUL and a space.
    octal(&mut h[148..155], sum as u64);
    h[155] = b' ';
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_are_what_the_formatter_wrote() {
        // The digits written by hand are those of `{:0w$o}` plus a NUL.
        let values = [
            0u64, 1, 7, 8, 0o644, 0o4755, 0o7777, 4095, 65534, 262_144, 262_145,
        ];
        for width in [7usize, 8, 12] {
            let max = (1u64 << (3 * (width - 1))) - 1;
            for v in values.iter().copied().chain([max, max / 3]) {
                if v > max {
                    continue;
                }
                let mut field = vec![b'x'; width];
                octal(&mut field, v);
                let want = format!("{:0w$o}\0", v, w = width - 1);
                assert_eq!(field, want.as_bytes(), "{v} in {width}");
            }
        }
    }

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
        assert_eq!(split_ustar_name(b"a/b"), Some((&b""[..], &b"a/b"[..])));
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let (p, n) = split_ustar_name(long.as_bytes()).unwrap();
        assert_eq!(p.len(), 120);
        assert_eq!(n.len(), 50);
        assert_eq!(split_ustar_name("x".repeat(101).as_bytes()), None);
        assert_eq!(
            split_ustar_name(format!("a/{}", "x".repeat(101)).as_bytes()),
            None
        );
    }

    fn one(e: &Entry<crate::layer::path::TarPath>) -> Vec<u8> {
        let mut tw = TarWriter::new(Vec::new());
        tw.append_header(e).unwrap();
        tw.finish().unwrap()
    }

    fn entry(
        path: &[u8],
        kind: EntryKind<crate::layer::path::TarPath>,
    ) -> Entry<crate::layer::path::TarPath> {
        Entry {
            path: crate::layer::path::TarPath::from_bytes(path.to_vec()),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// The PAX records of the first header of `tar`, as (key, value bytes).
    fn pax_records(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        assert_eq!(tar[156], b'x', "a PAX header comes first");
        let size = usize::from_str_radix(
            std::str::from_utf8(&tar[124..135])
                .unwrap()
                .trim_matches(char::from(0)),
            8,
        )
        .unwrap();
        let mut body = &tar[512..512 + size];
        let mut out = Vec::new();
        while !body.is_empty() {
            let sp = body.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&body[..sp]).unwrap().parse().unwrap();
            let rec = &body[sp + 1..len];
            assert_eq!(body[len - 1], b'\n');
            let eq = rec.iter().position(|&b| b == b'=').unwrap();
            out.push((
                String::from_utf8(rec[..eq].to_vec()).unwrap(),
                rec[eq + 1..rec.len() - 1].to_vec(),
            ));
            body = &body[len..];
        }
        out
    }

    #[test]
    fn a_name_that_is_not_utf8_goes_into_pax_as_raw_bytes() {
        let tar = one(&entry(b"app/caf\xe9.txt", EntryKind::File { size: 0 }));
        assert_eq!(
            pax_records(&tar),
            [
                ("hdrcharset".to_string(), b"BINARY".to_vec()),
                ("path".to_string(), b"app/caf\xe9.txt".to_vec()),
            ]
        );
        // The pseudo-entry and the ustar fields hold the bytes too.
        assert!(tar[..100].starts_with(b"PaxHeaders/caf\xe9.txt\0"));
        let main = &tar[1024..1536];
        assert_eq!(&main[..13], b"app/caf\xe9.txt\0");
        // The tar crate reads back the exact bytes.
        let mut ar = ::tar::Archive::new(&tar[..]);
        let names: Vec<Vec<u8>> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().into_owned())
            .collect();
        assert_eq!(names, [b"app/caf\xe9.txt".to_vec()]);
    }

    #[test]
    fn folders_and_link_targets_that_are_not_utf8() {
        let tar = one(&entry(b"d\xff", EntryKind::Dir));
        assert_eq!(
            pax_records(&tar),
            [
                ("hdrcharset".to_string(), b"BINARY".to_vec()),
                ("path".to_string(), b"d\xff/".to_vec()),
            ]
        );
        // A UTF-8 link name with a target that is not: only linkpath.
        let target = crate::layer::path::TarPath::from_bytes(b"../t\xfe\xfd".to_vec());
        let tar = one(&entry(b"l", EntryKind::Symlink { target }));
        assert_eq!(
            pax_records(&tar),
            [
                ("hdrcharset".to_string(), b"BINARY".to_vec()),
                ("linkpath".to_string(), b"../t\xfe\xfd".to_vec()),
            ]
        );
        let main = &tar[1024..1536];
        assert_eq!(&main[157..164], b"../t\xfe\xfd\0");
        let mut ar = ::tar::Archive::new(&tar[..]);
        let e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), b"l");
        assert_eq!(&*e.link_name_bytes().unwrap(), b"../t\xfe\xfd");
    }

    #[test]
    fn a_long_name_that_is_not_utf8_is_cut_in_ustar_and_whole_in_pax() {
        let mut name = "d/".repeat(60).into_bytes();
        name.extend_from_slice(&[0xff; 150]);
        let tar = one(&entry(&name, EntryKind::File { size: 0 }));
        let recs = pax_records(&tar);
        assert_eq!(recs[1], ("path".to_string(), name.clone()));
        let mut ar = ::tar::Archive::new(&tar[..]);
        let e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), &name[..]);
    }

    #[test]
    fn utf8_names_need_no_pax_and_are_written_as_strings_were() {
        // A String entry and a byte entry with the same UTF-8 name give the
        // same bytes, with no PAX header when the name fits.
        for name in [
            "app/café.txt",
            "ü/ß",
            &format!("{}/ñ{}", "d".repeat(150), "x".repeat(98)),
        ] {
            let text = Entry {
                path: name.to_string(),
                kind: EntryKind::File { size: 0 },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
            };
            let mut tw = TarWriter::new(Vec::new());
            tw.append_header(&text).unwrap();
            let a = tw.finish().unwrap();
            let b = one(&entry(name.as_bytes(), EntryKind::File { size: 0 }));
            assert_eq!(a, b, "{name}");
            assert_ne!(a[156], b'x', "{name}: no PAX header");
        }
    }

    #[test]
    fn a_cut_never_splits_a_utf8_sequence() {
        let s = format!("{}é", "a".repeat(99));
        assert_eq!(truncate_bytes(s.as_bytes(), 100), "a".repeat(99).as_bytes());
        // Long runs of stray continuation bytes are cut where asked.
        assert_eq!(truncate_bytes(&[0x80; 120], 100).len(), 97);
        // A long base name with a multibyte character across byte 100 of
        // its PAX pseudo-entry's name is cut before that character.
        let name = format!("{}/{}é{}", "d".repeat(200), "b".repeat(88), "c".repeat(20));
        let tar = one(&entry(name.as_bytes(), EntryKind::File { size: 0 }));
        let field = &tar[..100];
        let end = field.iter().position(|&b| b == 0).unwrap_or(100);
        assert!(std::str::from_utf8(&field[..end]).is_ok());
    }
}

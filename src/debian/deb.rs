//! Reading .deb packages: the outer ar archive, the control.tar members and
//! the data.tar as a stream. Nothing is unpacked to disk.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The ar archive's global header.
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// Size of one ar member header.
const AR_HEADER_LEN: usize = 60;

/// How a tar member of the .deb is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
    Lzma,
}

impl Compression {
    /// The compression named by a member's suffix (after "control.tar" or "data.tar").
    fn from_suffix(suffix: &str) -> Option<Compression> {
        Some(match suffix {
            "" => Compression::None,
            ".gz" => Compression::Gzip,
            ".xz" => Compression::Xz,
            ".zst" => Compression::Zstd,
            ".bz2" => Compression::Bzip2,
            ".lzma" => Compression::Lzma,
            _ => return None,
        })
    }
}

/// Where one ar member's content lies in the file.
#[derive(Clone, Debug)]
struct Member {
    name: String,
    offset: u64,
    size: u64,
    compression: Compression,
}

/// An opened .deb: the ar archive's members located (debian-binary "2.0\n",
/// control.tar[.gz|.xz|.zst], data.tar[.gz|.xz|.zst|.bz2|.lzma|]), checked.
#[derive(Clone, Debug)]
pub struct Deb {
    path: PathBuf,
    control: Member,
    data: Member,
}

impl Deb {
    /// Opens a .deb and locates its members. Only the ar headers and
    /// debian-binary are read here.
    pub fn open(path: &Path) -> Result<Deb> {
        let mut file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
        let file_len = file
            .metadata()
            .ctx(|| format!("reading {}", path.display()))?
            .len();
        let bad = |msg: String| Error::input(path, msg);

        let mut magic = [0u8; 8];
        let complete =
            read_full(&mut file, &mut magic).ctx(|| format!("reading {}", path.display()))?;
        if !complete || &magic != AR_MAGIC {
            return Err(bad("not a .deb: missing the ar archive header".into()));
        }

        let mut pos = AR_MAGIC.len() as u64;
        let mut seen_version = false;
        let mut control: Option<Member> = None;
        let mut data: Option<Member> = None;
        while data.is_none() {
            let mut header = [0u8; AR_HEADER_LEN];
            let complete =
                read_full(&mut file, &mut header).ctx(|| format!("reading {}", path.display()))?;
            if !complete {
                break;
            }
            let (name, size) = parse_ar_header(&header)
                .map_err(|msg| bad(format!("ar header at offset {pos}: {msg}")))?;
            let offset = pos + AR_HEADER_LEN as u64;
            if offset.checked_add(size).is_none_or(|end| end > file_len) {
                return Err(bad(format!("member {name} is truncated")));
            }

            if !seen_version {
                if name != "debian-binary" {
                    return Err(bad(format!(
                        "not a .deb: first member is {name}, expected debian-binary"
                    )));
                }
                if size > 64 {
                    return Err(bad("debian-binary is too large".into()));
                }
                let mut version = vec![0u8; size as usize];
                file.read_exact(&mut version)
                    .ctx(|| format!("reading {}: debian-binary", path.display()))?;
                if !version.starts_with(b"2.") || !version.ends_with(b"\n") {
                    return Err(bad(format!(
                        "debian-binary: unsupported format version {:?} (expected 2.x)",
                        String::from_utf8_lossy(&version).trim_end()
                    )));
                }
                seen_version = true;
            } else if name.starts_with('_') {
                // Reserved for local additions; dpkg skips these too.
            } else if let Some(suffix) = name.strip_prefix("control.tar") {
                if control.is_some() {
                    return Err(bad(format!("duplicate control member {name}")));
                }
                let compression = Compression::from_suffix(suffix)
                    .filter(|c| {
                        matches!(
                            c,
                            Compression::None
                                | Compression::Gzip
                                | Compression::Xz
                                | Compression::Zstd
                        )
                    })
                    .ok_or_else(|| bad(format!("unsupported control member {name}")))?;
                control = Some(Member {
                    name,
                    offset,
                    size,
                    compression,
                });
            } else if let Some(suffix) = name.strip_prefix("data.tar") {
                if control.is_none() {
                    return Err(bad(format!("member {name} comes before control.tar")));
                }
                let compression = Compression::from_suffix(suffix)
                    .ok_or_else(|| bad(format!("unsupported data member {name}")))?;
                data = Some(Member {
                    name,
                    offset,
                    size,
                    compression,
                });
            } else {
                return Err(bad(format!("unexpected member {name}")));
            }

            // Members are padded to an even offset.
            pos = offset + size + (size & 1);
            file.seek(SeekFrom::Start(pos))
                .ctx(|| format!("reading {}", path.display()))?;
        }

        if !seen_version {
            return Err(bad("not a .deb: empty ar archive".into()));
        }
        let control = control.ok_or_else(|| bad("no control.tar member".into()))?;
        let data = data.ok_or_else(|| bad("no data.tar member".into()))?;
        Ok(Deb {
            path: path.to_path_buf(),
            control,
            data,
        })
    }

    /// The .deb's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data member's name (e.g. "data.tar.xz"), for messages.
    pub fn data_member(&self) -> &str {
        &self.data.name
    }

    /// The control member's name (e.g. "control.tar.xz"), for messages.
    pub fn control_member(&self) -> &str {
        &self.control.name
    }

    /// The control.tar members (control, md5sums, conffiles, preinst,
    /// postinst, prerm, postrm, triggers, shlibs, symbols, templates,
    /// config, ...), by name without "./". Only regular files are kept.
    pub fn control_files(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        let member = &self.control.name;
        let bad = |e: std::io::Error| Error::input(&self.path, format!("{member}: {e}"));
        let mut archive = tar::Archive::new(self.member_reader(&self.control)?);
        let mut files = BTreeMap::new();
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let kind = entry.header().entry_type();
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8(raw).map_err(|_| {
                Error::input(&self.path, format!("{member}: member name is not UTF-8"))
            })?;
            let name = name.trim_start_matches("./").trim_end_matches('/');
            if name.is_empty() || name == "." {
                continue;
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                continue;
            }
            let name = name.to_string();
            let mut content = Vec::with_capacity(entry.size().min(1 << 20) as usize);
            entry
                .read_to_end(&mut content)
                .map_err(|e| Error::input(&self.path, format!("{member}: {name}: {e}")))?;
            if files.insert(name.clone(), content).is_some() {
                return Err(Error::input(
                    &self.path,
                    format!("{member}: {name} appears twice"),
                ));
            }
        }
        Ok(files)
    }

    /// The data.tar as a decompressing stream, for the caller to read with
    /// `tar::Archive`. Entries are meant to be streamed once; nothing is
    /// buffered beyond the decompressor's window.
    pub fn data_reader(&self) -> Result<Box<dyn Read + '_>> {
        self.member_reader(&self.data)
    }

    /// A decompressing reader over one member's bytes.
    fn member_reader(&self, member: &Member) -> Result<Box<dyn Read + '_>> {
        let mut file = File::open(&self.path).ctx(|| format!("opening {}", self.path.display()))?;
        file.seek(SeekFrom::Start(member.offset))
            .ctx(|| format!("reading {}: {}", self.path.display(), member.name))?;
        let raw = BufReader::with_capacity(1 << 16, file.take(member.size));
        Ok(match member.compression {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
            Compression::Lzma => {
                let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                    .map_err(|e| Error::input(&self.path, format!("{}: {e}", member.name)))?;
                Box::new(liblzma::bufread::XzDecoder::new_stream(raw, stream))
            }
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(raw)
                    .map_err(|e| Error::input(&self.path, format!("{}: {e}", member.name)))?,
            ),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        })
    }
}

/// Fills `buf` completely; false when the input ended before the first byte.
/// A partial fill is an error.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "truncated ar header",
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Parses one 60-byte ar header: name (16 bytes, GNU trailing '/' allowed)
/// and size (10 decimal digits); the header must end with "`\n".
fn parse_ar_header(h: &[u8; AR_HEADER_LEN]) -> std::result::Result<(String, u64), String> {
    if &h[58..60] != b"`\n" {
        return Err("bad header terminator".into());
    }
    let name = std::str::from_utf8(&h[0..16]).map_err(|_| "member name is not UTF-8")?;
    let name = name.trim_end_matches(' ');
    let name = name.strip_suffix('/').unwrap_or(name);
    if name.is_empty() {
        return Err("empty member name".into());
    }
    let size = std::str::from_utf8(&h[48..58]).map_err(|_| "size is not ASCII")?;
    let size: u64 = size
        .trim_end_matches(' ')
        .parse()
        .map_err(|_| format!("bad member size {:?}", size.trim_end()))?;
    Ok((name.to_string(), size))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Builds an ar archive from (name, content) pairs, as dpkg-deb lays it out.
    pub(crate) fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = AR_MAGIC.to_vec();
        for (name, content) in members {
            let header = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                "100644",
                content.len()
            );
            assert_eq!(header.len(), AR_HEADER_LEN);
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(content);
            if content.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    /// Appends one entry with its name written byte for byte (the tar
    /// crate's own path setters drop the "./" that dpkg-deb writes). Long
    /// names get a GNU long-name entry, as dpkg-deb writes them.
    pub(crate) fn append_raw(
        b: &mut tar::Builder<Vec<u8>>,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) {
        let name_field = |h: &mut tar::Header, bytes: &[u8]| {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name = [0; 100];
            gnu.name[..bytes.len()].copy_from_slice(bytes);
        };
        if path.len() > 99 {
            let mut long = tar::Header::new_gnu();
            long.set_entry_type(tar::EntryType::GNULongName);
            name_field(&mut long, b"././@LongLink");
            long.set_mode(0o644);
            long.set_size(path.len() as u64 + 1);
            long.set_cksum();
            let mut content = path.as_bytes().to_vec();
            content.push(0);
            b.append(&long, &content[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        name_field(&mut h, &path.as_bytes()[..path.len().min(99)]);
        if let Some(link) = link {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    /// A tar archive of (path, mode, content) regular files plus directories
    /// (paths ending in '/'), names kept exactly as given.
    pub(crate) fn tar_of(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, mode, content) in entries {
            let kind = if path.ends_with('/') {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            };
            append_raw(&mut b, path, kind, *mode, content, None);
        }
        b.into_inner().unwrap()
    }

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn sample_data() -> Vec<u8> {
        tar_of(&[
            ("./", 0o755, b""),
            ("./usr/", 0o755, b""),
            ("./usr/bin/", 0o755, b""),
            ("./usr/bin/hello", 0o755, b"#!/bin/sh\necho hi\n"),
        ])
    }

    fn data_names(deb: &Deb) -> Vec<String> {
        let mut a = tar::Archive::new(deb.data_reader().unwrap());
        a.entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
            .collect()
    }

    #[test]
    fn reads_members_with_every_data_compression() {
        let dir = tempfile::tempdir().unwrap();
        let control = gzip(&tar_of(&[
            ("./", 0o755, b""),
            ("./control", 0o644, b"Package: hello\nArchitecture: all\n"),
            ("./postinst", 0o755, b"#!/bin/sh\n"),
        ]));
        let data = sample_data();
        let mut zst = Vec::new();
        zstd::stream::copy_encode(&data[..], &mut zst, 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let options = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&options).unwrap();
        let mut lzma = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        lzma.write_all(&data).unwrap();
        let lzma = lzma.finish().unwrap();
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("data.tar", data.clone()),
            ("data.tar.gz", gzip(&data)),
            ("data.tar.xz", xz(&data)),
            ("data.tar.zst", zst),
            ("data.tar.bz2", bz),
            ("data.tar.lzma", lzma),
        ];
        for (member, bytes) in &variants {
            let deb = ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &control),
                (member, bytes),
            ]);
            let p = write(dir.path(), &format!("{member}.deb"), &deb);
            let d = Deb::open(&p).unwrap();
            assert_eq!(d.data_member(), *member);
            let files = d.control_files().unwrap();
            assert_eq!(
                files.keys().collect::<Vec<_>>(),
                vec!["control", "postinst"]
            );
            assert_eq!(files["postinst"], b"#!/bin/sh\n");
            assert_eq!(
                data_names(&d),
                vec!["./", "./usr/", "./usr/bin/", "./usr/bin/hello"],
                "{member}"
            );
        }
    }

    #[test]
    fn accepts_gnu_names_and_odd_padding() {
        let dir = tempfile::tempdir().unwrap();
        // A tar member is always even-sized, so an odd "_" member (which
        // dpkg skips) exercises the padding.
        let control = tar_of(&[("./control", 0o644, b"Package: x\n")]);
        let data = xz(&sample_data());
        let mut bytes = AR_MAGIC.to_vec();
        for (name, content) in [
            ("debian-binary/", &b"2.0\n"[..]),
            ("control.tar/", &control[..]),
            ("_odd/", &b"abc"[..]),
            ("data.tar.xz/", &data[..]),
        ] {
            let h = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                "100644",
                content.len()
            );
            bytes.extend_from_slice(h.as_bytes());
            bytes.extend_from_slice(content);
            if content.len() % 2 == 1 {
                bytes.push(b'\n');
            }
        }
        let p = write(dir.path(), "gnu.deb", &bytes);
        let d = Deb::open(&p).unwrap();
        assert_eq!(d.control_member(), "control.tar");
        assert_eq!(d.control_files().unwrap()["control"], b"Package: x\n");
        assert_eq!(data_names(&d).len(), 4);
    }

    #[test]
    fn rejects_bad_archives() {
        let dir = tempfile::tempdir().unwrap();
        let control = gzip(&tar_of(&[("./control", 0o644, b"Package: x\n")]));
        let data = xz(&sample_data());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("notar.deb", b"hello world".to_vec(), "ar archive header"),
            (
                "version.deb",
                ar(&[("debian-binary", b"3.0\n"), ("control.tar.gz", &control)]),
                "format version",
            ),
            (
                "order.deb",
                ar(&[("control.tar.gz", &control), ("debian-binary", b"2.0\n")]),
                "first member",
            ),
            (
                "nodata.deb",
                ar(&[("debian-binary", b"2.0\n"), ("control.tar.gz", &control)]),
                "no data.tar",
            ),
            (
                "comp.deb",
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar.gz", &control),
                    ("data.tar.rar", &data),
                ]),
                "unsupported data member",
            ),
            (
                "extra.deb",
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("evil", b"x"),
                    ("control.tar.gz", &control),
                ]),
                "unexpected member evil",
            ),
        ];
        for (name, bytes, want) in cases {
            let p = write(dir.path(), name, &bytes);
            let err = Deb::open(&p).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains(name), "{name}: {err}");
        }

        // Truncated member.
        let mut bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &control),
            ("data.tar.xz", &data),
        ]);
        bytes.truncate(bytes.len() - 10);
        let p = write(dir.path(), "short.deb", &bytes);
        let err = Deb::open(&p).unwrap_err().to_string();
        assert!(err.contains("data.tar.xz is truncated"), "{err}");

        // Corrupt compressed control: the error names the member.
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", b"not gzip at all"),
            ("data.tar.xz", &data),
        ]);
        let p = write(dir.path(), "corrupt.deb", &bytes);
        let err = Deb::open(&p)
            .unwrap()
            .control_files()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("corrupt.deb") && err.contains("control.tar.gz"),
            "{err}"
        );
    }
}

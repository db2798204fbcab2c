//! The file-layer writer: a sorted list of entries becomes one tar stream
//! (tar → sha256 → compressor → sha256 → the store), near the system-call
//! floor per file.
//!
//! Small files are read ahead by reader threads in batches (many files in
//! one buffer), each file with one `openat` relative to its open folder
//! (`O_NOFOLLOW`), one `read` of its
//! size plus one byte (a short read is its end), one `fstat` on the open
//! file for the change check, and one `close`; the writing thread appends
//! the batches in entry order, so the bytes do not depend on the number of
//! readers. Large files are streamed by the writing thread. Memory is
//! bounded by the read-ahead window ([`BATCH_BYTES`], [`BATCHES_AHEAD`]
//! per reader), not by the number of files.
//!
//! With `hash`, every file's sha256 is computed from the bytes as they are
//! copied (the hash [`super::files::hash_file`] gives): a step key can then
//! be made from the same single read that wrote the layer.

use super::compress::Compression;
use super::files::{FileEntry, FileKind, LayerTar, commit_layer, start_layer};
use super::tar::{Entry, EntryKind};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{LayerDesc, Store};
use sha2::{Digest as _, Sha256};
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

/// Files up to this size are read ahead in batches; larger ones are
/// streamed by the writing thread.
pub const SMALL_FILE: u64 = 256 << 10;
/// A batch holds files of about this many bytes at most (one file of up
/// to [`SMALL_FILE`] more).
pub const BATCH_BYTES: usize = 1 << 20;
/// A batch holds at most this many files.
pub const BATCH_FILES: usize = 512;
/// Batches each reader may have read that the writer has not taken yet.
pub const BATCHES_AHEAD: usize = 2;

/// How a layer is written.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Compression workers, and readers of small files.
    pub threads: usize,
    /// Every entry's mtime.
    pub mtime: u64,
    /// Hash each file's bytes as they are copied.
    pub hash: bool,
}

/// A hashed file: its entry's index, its sha256 and its metadata read
/// after its bytes (for the stat cache).
pub type HashSink<'a> = &'a (dyn Fn(usize, Digest, &Metadata) + Sync);

/// Writes the layer of `entries` (sorted by path) into the store. With
/// `o.hash`, `hashed` is called once for each file entry with the hash of
/// the bytes written for it, from any thread.
pub fn write_entries(
    store: &Store,
    entries: &[FileEntry],
    o: &WriteOptions,
    progress: &dyn Fn(u64),
    hashed: HashSink,
) -> Result<LayerDesc> {
    let (tmp, mut tw) = start_layer(store, o.compression, o.threads)?;
    let batches = batches(entries);
    let readers = o.threads.clamp(1, batches.len().max(1));
    std::thread::scope(|sc| -> Result<()> {
        let mut rxs: Vec<Receiver<Result<Batch>>> = Vec::with_capacity(readers);
        let mut backs: Vec<Sender<Vec<u8>>> = Vec::with_capacity(readers);
        for r in 0..readers {
            let (tx, rx) = sync_channel(BATCHES_AHEAD);
            // Buffers the writer is done with go back to their reader.
            let (back_tx, back_rx) = channel();
            rxs.push(rx);
            backs.push(back_tx);
            let batches = &batches;
            sc.spawn(move || {
                read_batches(entries, batches, r, readers, o.hash, hashed, tx, back_rx)
            });
        }
        // Dropping `rxs` on an early return stops the readers.
        let chans = (&rxs[..], &backs[..]);
        write_all(
            store, entries, &batches, chans, &mut tw, o, progress, hashed,
        )
    })?;
    commit_layer(store, tmp, tw, o.compression)
}

/// Groups the small files of `entries` into batches of entry indexes, in
/// order.
fn batches(entries: &[FileEntry]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut bytes = 0usize;
    for (i, e) in entries.iter().enumerate() {
        if let FileKind::File { size, .. } = e.kind
            && size <= SMALL_FILE
        {
            cur.push(i);
            bytes += size as usize;
            if cur.len() >= BATCH_FILES || bytes >= BATCH_BYTES {
                out.push(std::mem::take(&mut cur));
                bytes = 0;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The writer's ends of the readers' channels: batches in, buffers back.
type Channels<'a> = (&'a [Receiver<Result<Batch>>], &'a [Sender<Vec<u8>>]);

/// The bytes of a batch's files, one after another, with each one's end.
struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

/// Reader `r` of `n`: reads batches r, r+n, r+2n, … and sends each (or
/// its first error, then stops), reusing the buffers that come `back`.
#[allow(clippy::too_many_arguments)]
fn read_batches(
    entries: &[FileEntry],
    batches: &[Vec<usize>],
    r: usize,
    n: usize,
    hash: bool,
    hashed: HashSink,
    tx: SyncSender<Result<Batch>>,
    back: Receiver<Vec<u8>>,
) {
    let mut dir = Folder::default();
    for b in batches.iter().skip(r).step_by(n) {
        // Exactly what the files hold (and the one byte that tells a file
        // that grew): the buffer never grows while read into.
        let need: u64 = b
            .iter()
            .map(|&i| match entries[i].kind {
                FileKind::File { size, .. } => size,
                _ => 0,
            })
            .sum();
        let mut data = back.try_recv().unwrap_or_default();
        data.clear();
        data.reserve(need as usize + 1);
        let mut batch = Batch {
            data,
            ends: Vec::with_capacity(b.len()),
        };
        let mut res = Ok(());
        for &i in b {
            match read_small(&entries[i], &mut dir, &mut batch.data) {
                Ok(meta) => {
                    if hash {
                        let start = batch.ends.last().copied().unwrap_or(0);
                        hashed(i, Digest::of(&batch.data[start..]), &meta);
                    }
                    batch.ends.push(batch.data.len());
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        let stop = res.is_err();
        if tx.send(res.map(|_| batch)).is_err() || stop {
            return;
        }
    }
}

/// Opens a file of the layer: never through a symlink put in its place.
fn open(e: &FileEntry) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(e.src())
        .map_err(|err| open_err(e, err))
}

/// The open folder of the last file a reader opened, so that the files
/// of a folder (which are next to each other in layer order) are opened
/// by name relative to it: the kernel then looks up one name, not every
/// folder of the path again.
#[derive(Default)]
struct Folder {
    path: PathBuf,
    fd: Option<OwnedFd>,
    /// The name being opened, NUL-terminated (reused).
    name: Vec<u8>,
}

/// Opens a small file of the layer relative to its folder (opened when it
/// differs from the last one), never through a symlink put in its place.
fn open_in(e: &FileEntry, dir: &mut Folder) -> Result<File> {
    let src = e.src();
    let (Some(parent), Some(name)) = (src.parent(), src.file_name()) else {
        return open(e);
    };
    if dir.fd.is_none() || dir.path != parent {
        dir.fd = None;
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(parent)
            .map_err(|err| Error::input(e.src(), format!("cannot read: {err}")))?;
        dir.fd = Some(fd.into());
        dir.path.clear();
        dir.path.push(parent);
    }
    let fd = dir.fd.as_ref().expect("opened above");
    dir.name.clear();
    dir.name.extend_from_slice(name.as_bytes());
    dir.name.push(0);
    // SAFETY: `name` is NUL-terminated and `fd` an open folder.
    let got = unsafe {
        libc::openat(
            fd.as_raw_fd(),
            dir.name.as_ptr().cast(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if got < 0 {
        return Err(open_err(e, std::io::Error::last_os_error()));
    }
    // SAFETY: `got` is a file descriptor just opened and owned by nobody else.
    Ok(unsafe { File::from_raw_fd(got) })
}

/// The error of opening a file of the layer.
fn open_err(e: &FileEntry, err: std::io::Error) -> Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        Error::input(
            e.src(),
            "changed during the build (now a symlink); run the build again",
        )
    } else {
        Error::input(e.src(), format!("cannot read: {err}"))
    }
}

/// The change check after a file is read: its size and mtime are still
/// those planning saw.
fn unchanged(e: &FileEntry, f: &File, size: u64) -> Result<Metadata> {
    let after = f
        .metadata()
        .map_err(|err| Error::input(e.src(), err.to_string()))?;
    let mtime = after.mtime() * 1_000_000_000 + after.mtime_nsec();
    if mtime != e.mtime_ns || after.len() != size {
        return Err(Error::input(
            e.src(),
            "changed during the build; run the build again",
        ));
    }
    Ok(after)
}

/// Appends a small file's bytes to `buf`: one read of its size plus one
/// byte, which a file that did not grow answers short.
fn read_small(e: &FileEntry, dir: &mut Folder, buf: &mut Vec<u8>) -> Result<Metadata> {
    let FileKind::File { size, .. } = e.kind else {
        unreachable!("batches hold files")
    };
    let f = open_in(e, dir)?;
    let start = buf.len();
    let want = size as usize + 1;
    buf.resize(start + want, 0);
    let mut got = 0usize;
    let res = loop {
        match (&f).read(&mut buf[start + got..start + want]) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                got += n;
                if got >= size as usize {
                    break Ok(());
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
    };
    res.map_err(|err| Error::input(e.src(), format!("cannot read: {err}")))?;
    if got > size as usize {
        return Err(Error::input(
            e.src(),
            "changed during the build: file grew while it was being read",
        ));
    }
    if got < size as usize {
        return Err(Error::input(
            e.src(),
            "changed during the build: file shrank while it was being read",
        ));
    }
    buf.truncate(start + got);
    unchanged(e, &f, size)
}

/// The error of writing into the store.
fn store_err(store: &Store, err: std::io::Error) -> Error {
    Error::io(
        format!(
            "writing the layer into the store {}",
            store.root().display()
        ),
        err,
    )
}

/// The writing thread: every entry's header, then its bytes from its batch
/// or streamed from the file.
#[allow(clippy::too_many_arguments)]
fn write_all(
    store: &Store,
    entries: &[FileEntry],
    batches: &[Vec<usize>],
    (rxs, backs): Channels,
    tw: &mut LayerTar,
    o: &WriteOptions,
    progress: &dyn Fn(u64),
    hashed: HashSink,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut done = 0u64;
    // The batch being written, its number and the next file in it.
    let mut cur: Option<Batch> = None;
    let mut next_batch = 0usize;
    let mut in_batch = 0usize;
    for (i, e) in entries.iter().enumerate() {
        // Names are borrowed: nothing is allocated per entry here.
        let kind = match &e.kind {
            FileKind::Dir => EntryKind::Dir,
            FileKind::File { size, .. } => EntryKind::File { size: *size },
            FileKind::Symlink(t) => EntryKind::Symlink {
                target: t.as_bytes(),
            },
            FileKind::Hardlink(t) => EntryKind::Hardlink {
                target: t.as_bytes(),
            },
        };
        let header = Entry {
            path: e.path.as_bytes(),
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: o.mtime,
        };
        tw.append_header(&header)
            .map_err(|err| store_err(store, err))?;
        let FileKind::File { size, .. } = e.kind else {
            continue;
        };
        if size <= SMALL_FILE {
            if cur.is_none() {
                debug_assert!(batches[next_batch].first() == Some(&i));
                let b = rxs[next_batch % rxs.len()].recv().map_err(|_| {
                    Error::io(
                        "reading the layer's files".to_string(),
                        std::io::Error::other("a reader stopped"),
                    )
                })??;
                cur = Some(b);
                next_batch += 1;
                in_batch = 0;
            }
            let b = cur.as_ref().expect("taken above");
            let start = if in_batch == 0 {
                0
            } else {
                b.ends[in_batch - 1]
            };
            let end = b.ends[in_batch];
            tw.get_mut()
                .write_all(&b.data[start..end])
                .and_then(|_| tw.pad(size))
                .map_err(|err| store_err(store, err))?;
            in_batch += 1;
            done += size;
            if in_batch == b.ends.len() {
                let done_with = cur.take().expect("taken above");
                let _ = backs[(next_batch - 1) % backs.len()].send(done_with.data);
                progress(done);
            }
        } else {
            if buf.is_empty() {
                buf = vec![0u8; 256 * 1024];
            }
            let f = open(e)?;
            let mut r = HashRead {
                r: &f,
                h: o.hash.then(Sha256::new),
            };
            tw.append_data(&mut r, size, &mut buf).map_err(|err| {
                // Writing the layer into the store failed (a full disk), or
                // reading the source did (it shrank while read).
                if writer_fault(&err) {
                    store_err(store, err)
                } else {
                    Error::input(e.src(), format!("changed during the build: {err}"))
                }
            })?;
            let meta = unchanged(e, &f, size)?;
            if let Some(h) = r.h {
                hashed(i, Digest::from_hasher(h), &meta);
            }
            done += size;
            progress(done);
        }
    }
    Ok(())
}

/// A reader that hashes what it reads.
struct HashRead<R: Read> {
    r: R,
    h: Option<Sha256>,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        if let Some(h) = &mut self.h {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Whether an error while copying into a layer is the writer's: the
/// store's file system is full, over quota or read-only.
pub(crate) fn writer_fault(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::FileTooLarge
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::files::{CollectOptions, collect_folder, hash_file};
    use crate::layer::ignore::IgnoreRules;
    use crate::store::statcache::StatCache;
    use std::fs;
    use std::path::Path;
    use std::sync::Mutex;

    fn tree(root: &Path) {
        for d in 0..3 {
            fs::create_dir_all(root.join(format!("src/d{d}"))).unwrap();
            for f in 0..700 {
                fs::write(root.join(format!("src/d{d}/f{f}")), format!("{d}.{f}")).unwrap();
            }
        }
        fs::write(root.join("src/empty"), "").unwrap();
        let big: Vec<u8> = (0..(SMALL_FILE as usize * 3)).map(|i| i as u8).collect();
        fs::write(root.join("src/big"), big).unwrap();
    }

    /// Collects `root/src` without hashes, as a one-pass build does.
    fn collect(root: &Path) -> Vec<FileEntry> {
        let stat = StatCache::load(root.join("stat"));
        let rules = IgnoreRules::from_patterns(Vec::<&str>::new()).unwrap();
        let o = CollectOptions {
            context: root,
            rules: &rules,
            owner: None,
            chmod: None,
            stat: &stat,
            exclude: &[],
            hash: false,
        };
        let c = collect_folder(&root.join("src"), "app", false, &o).unwrap();
        assert!(c.unhashed.len() > 3 * 700 - 2, "nothing hashed");
        c.entries
    }

    fn write(store: &Store, entries: &[FileEntry], threads: usize) -> Result<LayerDesc> {
        let o = WriteOptions {
            compression: Compression::Gzip,
            threads,
            mtime: 0,
            hash: true,
        };
        let got = Mutex::new(Vec::new());
        let d = write_entries(store, entries, &o, &|_| {}, &|i, h, _| {
            got.lock().unwrap().push((i, h))
        })?;
        let got = got.into_inner().unwrap();
        let files = entries
            .iter()
            .filter(|e| matches!(e.kind, FileKind::File { .. }))
            .count();
        assert_eq!(got.len(), files, "every file hashed once");
        for (i, h) in got {
            assert_eq!(
                h,
                hash_file(&entries[i].src()).unwrap(),
                "{:?}",
                entries[i].path
            );
        }
        Ok(d)
    }

    #[test]
    fn hashes_are_those_of_the_files_and_bytes_do_not_depend_on_readers() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        let entries = collect(t.path());
        let store = Store::open(&t.path().join("store")).unwrap();
        let one = write(&store, &entries, 1).unwrap();
        let four = write(&store, &entries, 4).unwrap();
        assert_eq!(one.digest, four.digest);
        assert_eq!(one.diff_id, four.diff_id);
    }

    #[test]
    fn a_file_changed_after_collection_stops_the_layer() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        tree(root);
        let store = Store::open(&root.join("store")).unwrap();
        let expect = |e: Error, name: &str| {
            let msg = e.to_string();
            assert!(msg.contains("changed during the build"), "{msg}");
            assert!(msg.contains(name), "{msg}");
        };
        // A small file that grew.
        let entries = collect(root);
        fs::write(root.join("src/d1/f5"), "longer than it was").unwrap();
        expect(write(&store, &entries, 2).unwrap_err(), "d1/f5");
        // A small file that shrank.
        let entries = collect(root);
        fs::write(root.join("src/d2/f9"), "").unwrap();
        expect(write(&store, &entries, 2).unwrap_err(), "d2/f9");
        // A file replaced by a symlink.
        let entries = collect(root);
        fs::remove_file(root.join("src/d0/f3")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("src/d0/f3")).unwrap();
        expect(write(&store, &entries, 1).unwrap_err(), "d0/f3");
        // A large (streamed) file that shrank.
        let entries = collect(root);
        fs::write(root.join("src/big"), "short").unwrap();
        expect(write(&store, &entries, 2).unwrap_err(), "src/big");
        // Nothing half-written is left in the store's temp folder.
        let left = fs::read_dir(store.tmp_dir()).map_or(0, |d| d.count());
        assert_eq!(left, 0);
    }
}

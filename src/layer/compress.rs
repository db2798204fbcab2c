//! The one layer writer: tar bytes in → sha256 (diff_id) → compressor →
//! sha256 (digest) → temp file. Gzip is compressed in fixed-size chunks on a
//! worker pool, each chunk primed with the previous chunk's last 32 KiB, so
//! the output bytes are the same for 1 and N threads.
//!
//! The chunking is ours on top of flate2's raw deflate: no gzip crate gives
//! output that is the same for any thread count, and the chunk size and
//! priming are part of the layer format (they define the digests).

use crate::digest::Digest;
use flate2::{Compress, FlushCompress, Status};
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

pub const MEDIA_TYPE_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Uncompressed bytes per gzip chunk. Part of the layer format: changing it
/// changes digests (bump the layer-format version with it).
pub const GZIP_CHUNK: usize = 1 << 20;
const DICT: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE_GZIP,
            Compression::Zstd => MEDIA_TYPE_ZSTD,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
    /// The level used; part of every layer key.
    pub fn level(self) -> i32 {
        match self {
            Compression::Gzip => 1,
            Compression::Zstd => 3,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(format!("unknown compression {s:?} (gzip or zstd)")),
        }
    }
}

/// Counts and hashes what passes through.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The result of writing one layer.
#[derive(Clone, Debug)]
pub struct Written {
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub digest: Digest,
    pub size: u64,
}

fn pools() -> &'static Mutex<HashMap<usize, Arc<rayon::ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

/// A compression pool of `threads` workers, shared by every layer in the process.
fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
    map.entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("compress-{i}"))
                    .build()
                    .expect("compression thread pool"),
            )
        })
        .clone()
}

enum Engine<W: Write> {
    Gzip(ParGzip<HashingWriter<W>>),
    Zstd(zstd::stream::write::Encoder<'static, HashingWriter<W>>),
}

/// Accepts the uncompressed layer (tar) bytes and writes the compressed blob.
pub struct LayerWriter<W: Write> {
    diff: Sha256,
    uncompressed: u64,
    engine: Engine<W>,
}

impl<W: Write + Send> LayerWriter<W> {
    pub fn new(out: W, compression: Compression, threads: usize) -> io::Result<Self> {
        let out = HashingWriter::new(out);
        let threads = threads.max(1);
        let engine = match compression {
            Compression::Gzip => {
                Engine::Gzip(ParGzip::new(out, compression.level() as u32, threads)?)
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, compression.level())?;
                // Always in worker mode (>= 1 worker): zstd's output then does
                // not depend on the number of workers.
                enc.multithread(threads as u32)?;
                Engine::Zstd(enc)
            }
        };
        Ok(LayerWriter {
            diff: Sha256::new(),
            uncompressed: 0,
            engine,
        })
    }

    pub fn finish(self) -> io::Result<(W, Written)> {
        let out = match self.engine {
            Engine::Gzip(g) => g.finish()?,
            Engine::Zstd(z) => z.finish()?,
        };
        let (w, digest, size) = out.finish();
        Ok((
            w,
            Written {
                diff_id: Digest::from_hasher(self.diff),
                uncompressed_size: self.uncompressed,
                digest,
                size,
            },
        ))
    }
}

impl<W: Write + Send> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.diff.update(buf);
        self.uncompressed += buf.len() as u64;
        match &mut self.engine {
            Engine::Gzip(g) => g.write_all(buf)?,
            Engine::Zstd(z) => z.write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Gzip member written as independent raw-deflate chunks ended by sync
/// flushes (the last by a final block), with a fixed header (no name, mtime 0).
pub struct ParGzip<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    chunk: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

impl<W: Write> ParGzip<W> {
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&GZIP_HEADER)?;
        Ok(ParGzip {
            out,
            level,
            threads,
            chunk: Vec::with_capacity(GZIP_CHUNK),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
            pending: VecDeque::new(),
        })
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(GZIP_CHUNK));
        let dict = std::mem::take(&mut self.dict);
        if !last {
            let start = chunk.len().saturating_sub(DICT);
            self.dict = chunk[start..].to_vec();
        }
        let level = self.level;
        if self.threads <= 1 {
            let bytes = deflate_chunk(&chunk, &dict, level, last)?;
            return self.out.write_all(&bytes);
        }
        // Bound the work in flight: memory stays ~ 3 chunks per thread.
        while self.pending.len() > self.threads * 2 {
            self.drain_one()?;
        }
        let (tx, rx) = sync_channel(1);
        pool(self.threads).spawn(move || {
            let _ = tx.send(deflate_chunk(&chunk, &dict, level, last));
        });
        self.pending.push_back(rx);
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let bytes = rx
                .recv()
                .map_err(|_| io::Error::other("compression worker stopped"))??;
            self.out.write_all(&bytes)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        self.crc.update(buf);
        self.total += n as u64;
        while !buf.is_empty() {
            let room = GZIP_CHUNK - self.chunk.len();
            let take = room.min(buf.len());
            self.chunk.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.chunk.len() == GZIP_CHUNK {
                self.dispatch(false)?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compresses one chunk as raw deflate, primed with `dict`, ending with a
/// sync flush (or the final block when `last`). A fresh compressor per chunk:
/// a reset one may keep match state from an earlier chunk, and then the
/// bytes would depend on which worker compressed what.
fn deflate_chunk(input: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    {
        if !dict.is_empty() {
            c.set_dictionary(dict).map_err(io::Error::other)?;
        }
        let mut out: Vec<u8> = Vec::with_capacity(input.len() / 2 + 4096);
        let flush = if last {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        let start_in = c.total_in();
        loop {
            let consumed = (c.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(64 * 1024));
            }
            let status = c
                .compress_vec(&input[consumed..], &mut out, flush)
                .map_err(io::Error::other)?;
            let consumed = (c.total_in() - start_in) as usize;
            let room_left = out.capacity() - out.len();
            match status {
                Status::StreamEnd => break,
                _ if !last && consumed == input.len() && room_left > 0 => break,
                Status::BufError if room_left > 0 => {
                    return Err(io::Error::other("deflate made no progress"));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut x: u64 = 0x9e3779b97f4a7c15;
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (x >> 60) < 6 {
                v.extend_from_slice(b"def main(argv):\n    return argv[0] if argv else None\n");
            } else {
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v.truncate(n);
        v
    }

    fn write_all(data: &[u8], c: Compression, threads: usize) -> (Vec<u8>, Written) {
        let mut w = LayerWriter::new(Vec::new(), c, threads).unwrap();
        for part in data.chunks(7919) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn gzip_same_bytes_for_any_thread_count_and_roundtrips() {
        for n in [
            0,
            1,
            GZIP_CHUNK - 1,
            GZIP_CHUNK,
            GZIP_CHUNK + 1,
            3 * GZIP_CHUNK + 12345,
        ] {
            let data = sample(n);
            let (one, w1) = write_all(&data, Compression::Gzip, 1);
            let (four, w4) = write_all(&data, Compression::Gzip, 4);
            assert_eq!(one, four, "n={n}");
            assert_eq!(w1.digest, w4.digest);
            assert_eq!(w1.digest, Digest::of(&one));
            assert_eq!(w1.size, one.len() as u64);
            assert_eq!(w1.diff_id, Digest::of(&data));
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "n={n}");
        }
    }

    #[test]
    fn gzip_chunk_to_worker_assignment_does_not_matter() {
        // Incompressible and compressible runs, many chunks: each worker sees
        // a different sequence of chunks for 2 and 3 threads.
        let mut data = sample(9 * GZIP_CHUNK + 5);
        let mut x: u32 = 7;
        for (i, b) in data.iter_mut().enumerate() {
            if (i / (GZIP_CHUNK / 3)).is_multiple_of(2) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                *b = (x >> 16) as u8;
            }
        }
        let (one, _) = write_all(&data, Compression::Gzip, 1);
        for t in [2, 3] {
            let (many, _) = write_all(&data, Compression::Gzip, t);
            assert_eq!(one, many, "threads={t}");
        }
    }

    #[test]
    fn zstd_same_bytes_for_any_thread_count_and_roundtrips() {
        let data = sample(5 * GZIP_CHUNK + 77);
        let (one, w1) = write_all(&data, Compression::Zstd, 1);
        let (two, _) = write_all(&data, Compression::Zstd, 2);
        assert_eq!(one, two);
        assert_eq!(w1.diff_id, Digest::of(&data));
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
    }
}

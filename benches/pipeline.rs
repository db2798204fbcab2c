//! Kernels of the layer pipeline: the layer writer (sha256 → compressor →
//! sha256) for gzip on 1 and 2 threads and zstd, and the tar writer.
//! Run: `cargo bench --bench pipeline`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imgbuild::layer::compress::{Compression, LayerWriter};
use imgbuild::layer::tar::{Entry, EntryKind, TarWriter};
use std::hint::black_box;
use std::io::{self, Write};

/// Mixed data: source-like text lines and 512-byte pseudo-random runs; three
/// quarters of the bytes are the random runs, so it compresses far less than
/// a source tree does (the kernels are slower on it than on real trees).
fn sample(n: usize) -> Vec<u8> {
    let text = b"def handler(event, context):\n    return {\"status\": 200, \"body\": event.get(\"body\")}\n";
    let mut v = Vec::with_capacity(n);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(3) {
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            }
        } else {
            v.extend_from_slice(text);
        }
    }
    v.truncate(n);
    v
}

struct Sink;
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(black_box(b).len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn layer_writer(c: &mut Criterion) {
    let data = sample(64 << 20);
    let mut g = c.benchmark_group("layer_writer");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    for (name, comp, threads) in [
        ("gzip1_1thread", Compression::Gzip, 1),
        ("gzip1_2threads", Compression::Gzip, 2),
        ("zstd3_1worker", Compression::Zstd, 1),
        ("zstd3_2workers", Compression::Zstd, 2),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = LayerWriter::new(Sink, comp, threads).unwrap();
                for part in data.chunks(256 << 10) {
                    w.write_all(part).unwrap();
                }
                black_box(w.finish().unwrap().1)
            })
        });
    }
    g.finish();
}

fn tar_writer(c: &mut Criterion) {
    // 10,000 files of 4 KiB.
    let body = sample(4096);
    let mut g = c.benchmark_group("tar_writer");
    g.throughput(Throughput::Bytes(10_000 * 4096));
    g.sample_size(10);
    g.bench_function("10k_x_4k", |b| {
        let mut buf = vec![0u8; 64 << 10];
        b.iter(|| {
            let mut tw = TarWriter::new(Sink);
            for i in 0..10_000 {
                let e = Entry {
                    path: format!("app/pkg{:03}/module_{i:05}.py", i / 100),
                    kind: EntryKind::File {
                        size: body.len() as u64,
                    },
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                };
                tw.append_header(&e).unwrap();
                tw.append_data(&mut &body[..], body.len() as u64, &mut buf)
                    .unwrap();
            }
            black_box(tw.finish().unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, layer_writer, tar_writer);
criterion_main!(benches);

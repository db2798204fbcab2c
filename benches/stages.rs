//! The stages of a files layer on a tree of many tiny files (the shape of
//! vendored code), one criterion group each, so that a regression points
//! at its stage:
//!
//! - `walk`: collecting the tree with an empty stat cache and no hashing
//!   (folder listing, one stat per entry, the entries);
//! - `stat`: collecting it with a warm stat cache (what a no-op rebuild
//!   does: walk, stat, look every file up);
//! - `hash`: sha256 of every file, on all cores, as collection hashes;
//! - `tar`: the uncompressed tar stream of the entries, reading each file;
//! - `compress`: the layer writer (sha256 → gzip or zstd → sha256) over
//!   that tar stream, held in memory;
//! - `layer`: the whole one-pass writer into a store (read ahead, tar,
//!   compress, hash every file), as a cold build runs it;
//! - `floor_list` and `floor_read`: only the system calls, on both cores,
//!   with nothing kept: listing every folder and `statx`-ing every entry
//!   (what a no-op cannot do without), and that plus `openat`, `read` and
//!   `close` of every file (what a cold build cannot do without). They
//!   bound what the stages above can reach on this machine.
//!
//! The tree is generated once into `target/bench-trees/` (deterministic;
//! 400 folders × 500 files of ~40 bytes unless `STAGES_TREE=DIRSxFILES`
//! says otherwise; `cargo test` runs each stage once on 8 × 50). Run:
//! `cargo bench --bench stages`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imgbuild::layer::compress::{Compression, LayerWriter};
use imgbuild::layer::files::{self, CollectOptions, Collected, FileKind};
use imgbuild::layer::ignore::IgnoreRules;
use imgbuild::layer::tar::{Entry, EntryKind, TarWriter};
use imgbuild::layer::write::{WriteOptions, write_entries};
use imgbuild::store::Store;
use imgbuild::store::statcache::StatCache;
use rayon::prelude::*;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The tree: `dirs` folders of `files` files, made once (mtimes fixed in
/// the past so that the stat cache keeps every entry).
fn tree() -> PathBuf {
    // `cargo test` runs each stage once as a check, on a small tree.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default = if measuring { "400x500" } else { "8x50" };
    let spec = std::env::var("STAGES_TREE").unwrap_or_else(|_| default.into());
    let (dirs, files) = spec
        .split_once('x')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .expect("STAGES_TREE is DIRSxFILES, e.g. 400x500");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-trees")
        .join(format!("tiny-{dirs}x{files}"));
    let done = root.join(".complete");
    if done.exists() {
        return root.join("tree");
    }
    let _ = fs::remove_dir_all(&root);
    let tree = root.join("tree");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let words = [
        "import", "def", "return", "self", "value", "config", "from", "class", "None", "len",
    ];
    for d in 0..dirs {
        let dir = tree.join(format!("pkg{d:04}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            let mut body = String::new();
            while body.len() < 36 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push_str(words[(x % words.len() as u64) as usize]);
                body.push(' ');
            }
            body.push('\n');
            let p = dir.join(format!("m{f:04}.py"));
            fs::write(&p, &body).unwrap();
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
    // The stat cache keeps no file changed (ctime) in the last 2 s.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    fs::write(&done, "").unwrap();
    tree
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

fn collect(tree: &Path, stat: &StatCache, hash: bool) -> Collected {
    let rules = IgnoreRules::default();
    let o = CollectOptions {
        context: tree,
        rules: &rules,
        owner: None,
        chmod: None,
        stat,
        exclude: &[],
        hash,
    };
    files::collect_folder(tree, "app", false, &o).unwrap()
}

fn tar_stream(c: &Collected, out: impl Write) -> impl Write {
    let mut tw = TarWriter::new(out);
    let mut buf = vec![0u8; 64 << 10];
    for e in &c.entries {
        let kind = match &e.kind {
            FileKind::Dir => EntryKind::Dir,
            FileKind::File { size, .. } => EntryKind::File { size: *size },
            _ => unreachable!("the tree has files and folders only"),
        };
        let h = Entry {
            path: e.path.clone(),
            kind,
            mode: e.mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        tw.append_header(&h).unwrap();
        if let FileKind::File { size, .. } = e.kind {
            let mut f = File::open(e.src()).unwrap();
            tw.append_data(&mut f, size, &mut buf).unwrap();
        }
    }
    tw.finish().unwrap()
}

fn stages(c: &mut Criterion) {
    let tree = tree();
    let scratch = tempfile::tempdir().unwrap();
    let cold = StatCache::load(scratch.path().join("none"));
    let entries = collect(&tree, &cold, false);
    let n = entries.entries.len() as u64;
    // A stat cache that knows every file (saved through a store).
    let store = Store::open(&scratch.path().join("store")).unwrap();
    let warm_path = scratch.path().join("warm.stat");
    let warm = StatCache::load(warm_path.clone());
    let hashed = collect(&tree, &warm, true);
    warm.save(&store).unwrap();
    let warm = StatCache::load(warm_path);
    let mut tar = Vec::new();
    tar_stream(&hashed, &mut tar);

    let mut g = c.benchmark_group("stages");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("walk", |b| {
        b.iter(|| black_box(collect(&tree, &cold, false)))
    });
    g.bench_function("stat", |b| {
        b.iter(|| {
            let c = collect(&tree, &warm, false);
            assert!(
                c.unhashed.is_empty(),
                "the warm stat cache knows every file"
            );
            black_box(c)
        })
    });
    g.bench_function("hash", |b| {
        b.iter(|| {
            entries
                .entries
                .par_iter()
                .filter(|e| matches!(e.kind, FileKind::File { .. }))
                .for_each(|e| {
                    black_box(files::hash_file(&e.src()).unwrap());
                })
        })
    });
    g.bench_function("tar", |b| b.iter(|| black_box(tar_stream(&hashed, Sink))));
    g.throughput(Throughput::Bytes(tar.len() as u64));
    for (name, comp) in [
        ("compress_gzip", Compression::Gzip),
        ("compress_zstd", Compression::Zstd),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = LayerWriter::new(Sink, comp, 2).unwrap();
                for part in tar.chunks(256 << 10) {
                    w.write_all(part).unwrap();
                }
                black_box(w.finish().unwrap().1)
            })
        });
    }
    g.throughput(Throughput::Elements(n));
    let wo = WriteOptions {
        compression: Compression::Gzip,
        threads: 2,
        mtime: 0,
        hash: true,
    };
    g.bench_function("layer", |b| {
        b.iter(|| {
            black_box(write_entries(&store, &entries.entries, &wo, &|_| {}, &|_, _, _| {}).unwrap())
        })
    });
    g.bench_function("floor_list", |b| b.iter(|| black_box(floor(&tree, false))));
    g.bench_function("floor_read", |b| b.iter(|| black_box(floor(&tree, true))));
    g.finish();
}

/// The system calls alone: every folder listed and every entry stat'ed,
/// folders in parallel; with `read`, every file also opened relative to
/// its folder, read and closed. Returns the entries (and bytes) seen.
fn floor(dir: &Path, read: bool) -> u64 {
    let rd = fs::read_dir(dir).unwrap();
    let dirfd = File::open(dir).unwrap();
    let mut subdirs = Vec::new();
    let mut seen = 0u64;
    let mut buf = [0u8; 4096];
    for e in rd {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        seen += 1;
        if meta.is_dir() {
            subdirs.push(e.path());
        } else if read && meta.is_file() {
            use std::os::fd::AsRawFd;
            use std::os::unix::ffi::OsStrExt;
            let name = std::ffi::CString::new(e.file_name().as_bytes()).unwrap();
            // SAFETY: a NUL-terminated name, an open folder, a buffer of
            // its stated length; the descriptor is closed here.
            unsafe {
                let fd = libc::openat(
                    dirfd.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDONLY | libc::O_NOFOLLOW,
                );
                assert!(fd >= 0, "openat");
                seen += libc::read(fd, buf.as_mut_ptr().cast(), buf.len()).max(0) as u64;
                libc::close(fd);
            }
        }
    }
    seen + subdirs.par_iter().map(|d| floor(d, read)).sum::<u64>()
}

criterion_group!(benches, stages);
criterion_main!(benches);

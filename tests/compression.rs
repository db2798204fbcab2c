//! gzip and zstd layers at any thread count: a tree holding a file of many
//! compression chunks gives the same blobs with `-j 1`, `-j 2` and `-j 4`;
//! a gzip layer is a stream of gzip members that GNU gzip checks and
//! decompresses to its diff_id, and skopeo copies and umoci unpacks into the
//! source tree.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use support::*;
use tempfile::TempDir;

/// Uncompressed bytes of the big file: nine 1 MiB gzip members or zstd
/// frames, and a partial last one.
const BIG: usize = 9 * 1024 * 1024 + 777;

fn context() -> TempDir {
    let ctx = TempDir::new().unwrap();
    write(
        ctx.path(),
        DEF,
        r#"[images.c]
base = "scratch"
tag = "v1"
[[images.c.layers]]
source_folder = "app"
dst = "/app"
copy_contents_only = true
"#,
    );
    write_file(ctx.path(), "app/big.bin", mixed_bytes(BIG, 11), 0o644);
    // Zeros compress to almost nothing: chunks of very different sizes.
    write_file(ctx.path(), "app/zeros.bin", vec![0u8; 3 << 20], 0o600);
    for i in 0..300 {
        write(
            ctx.path(),
            &format!("app/src/m{i:03}.py"),
            &format!("def f{i}(x):\n    return x * {i}\n"),
        );
    }
    set_tree_mtime(ctx.path(), epoch(1_600_000_000));
    ctx
}

/// Builds the context with `compression` on `jobs` threads into a fresh
/// cache; returns the build's JSON and the layout.
fn build(ctx: &Path, work: &Path, compression: &str, jobs: &str) -> (Value, PathBuf) {
    let name = format!("{compression}-{jobs}");
    let out = work.join(format!("out-{name}"));
    let v = build_json(
        ctx,
        &work.join(format!("cache-{name}")),
        &out,
        &["--compression", compression, "-j", jobs],
    );
    assert!(layer_cache_states(&v).iter().all(|c| c == "miss"), "{v:#}");
    (v, out)
}

#[test]
fn gzip_and_zstd_layers_are_the_same_blobs_for_1_2_and_4_threads() {
    let ctx = context();
    let work = TempDir::new().unwrap();
    for compression in ["gzip", "zstd"] {
        let (v1, out1) = build(ctx.path(), work.path(), compression, "1");
        let layer1 = Layout::new(&out1).layer_digests("v1");
        assert_eq!(layer1.len(), 1);
        let blob1 = Layout::new(&out1).blob(&layer1[0]);
        assert!(
            blob1.len() > 1 << 20,
            "{compression}: {} bytes",
            blob1.len()
        );
        for jobs in ["2", "4"] {
            let (v, out) = build(ctx.path(), work.path(), compression, jobs);
            assert_eq!(
                v1["images"][0]["digest"], v["images"][0]["digest"],
                "{compression}: -j 1 and -j {jobs} gave different images"
            );
            let layer = Layout::new(&out).layer_digests("v1");
            assert_eq!(layer, layer1, "{compression} -j {jobs}");
            assert_eq!(
                Layout::new(&out).blob(&layer[0]),
                blob1,
                "{compression} -j {jobs}"
            );
        }
    }
}

#[test]
fn gzip_layers_of_many_members_are_read_by_gzip_skopeo_and_umoci() {
    let ctx = context();
    let work = TempDir::new().unwrap();
    let (_, out) = build(ctx.path(), work.path(), "gzip", "2");
    let layout = Layout::new(&out);
    assert_eq!(layout.verify(0), 1);
    let (m, cfg) = layout.image("v1");
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], MT_GZIP, "{m:#}");
    let path = layout.blob_path(layer["digest"].as_str().unwrap());
    let blob = fs::read(&path).unwrap();

    // One member per 1 MiB of tar, each starting with the same fixed header
    // (no name, mtime 0, unknown OS), each ending with its CRC-32 and size.
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    assert_eq!(blob[..10], header);
    let members = members(&blob);
    assert!(members.len() >= 12, "{} members", members.len());
    assert!(members.iter().all(|m| blob[m.0..m.0 + 10] == header));

    // GNU gzip checks every member and gives back the tar of the diff_id.
    tool("gzip", &["-t", path.to_str().unwrap()]);
    let copy = work.path().join("layer.gz");
    fs::copy(&path, &copy).unwrap();
    tool("gzip", &["-d", copy.to_str().unwrap()]);
    let tar = fs::read(work.path().join("layer")).unwrap();
    assert_eq!(
        cfg["rootfs"]["diff_ids"][0].as_str().unwrap(),
        format!("sha256:{}", sha256_hex(&tar))
    );
    let sizes: usize = members.iter().map(|m| m.1).sum();
    assert_eq!(sizes, tar.len());
    assert!(members[..members.len() - 1].iter().all(|m| m.1 == 1 << 20));

    // skopeo copies the image (decompressing and recompressing nothing)
    // into a new layout, and umoci unpacks that layout into the tree.
    let copied = work.path().join("copied");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:v1", out.display()),
            &format!("oci:{}:v1", copied.display()),
        ],
    );
    let rootfs = umoci_unpack(&copied, "v1", &work.path().join("bundle"));
    assert_eq!(
        fs::read(rootfs.join("app/big.bin")).unwrap(),
        fs::read(ctx.path().join("app/big.bin")).unwrap()
    );
    assert_eq!(
        fs::read(rootfs.join("app/zeros.bin")).unwrap(),
        vec![0u8; 3 << 20]
    );
    for i in 0..300 {
        assert_eq!(
            fs::read_to_string(rootfs.join(format!("app/src/m{i:03}.py"))).unwrap(),
            format!("def f{i}(x):\n    return x * {i}\n")
        );
    }
}

/// The members of a gzip stream: (offset, uncompressed size), found by
/// decompressing one member at a time.
fn members(blob: &[u8]) -> Vec<(usize, usize)> {
    use std::io::Read;
    let mut v = Vec::new();
    let mut at = 0;
    while at < blob.len() {
        let mut r = &blob[at..];
        let mut d = flate2::bufread::GzDecoder::new(&mut r);
        let mut out = Vec::new();
        d.read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("member at {at}: {e}"));
        drop(d);
        v.push((at, out.len()));
        at = blob.len() - r.len();
    }
    v
}

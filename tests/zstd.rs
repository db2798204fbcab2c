//! zstd layers end to end: a layer of several zstd frames is the same blob
//! for 1 and 2 threads, and real clients read it (skopeo inspects it and
//! decompresses it, GNU tar unpacks the result), giving back the source tree.

mod support;

use serde_json::Value;
use std::fs;
use std::path::Path;
use support::*;
use tempfile::TempDir;

/// Uncompressed bytes of the big file: several 1 MiB zstd frames.
const BIG: usize = 7 * 1024 * 1024 + 4321;

/// The frames of a zstd stream: (compressed length, content size).
fn frames(mut z: &[u8]) -> Vec<(usize, u64)> {
    let mut v = Vec::new();
    while !z.is_empty() {
        let n = zstd::zstd_safe::find_frame_compressed_size(z)
            .unwrap_or_else(|e| panic!("not a zstd frame at {} bytes from the end: {e}", z.len()));
        let size = zstd::zstd_safe::get_frame_content_size(&z[..n])
            .unwrap()
            .expect("content size in every frame header");
        v.push((n, size));
        z = &z[n..];
    }
    v
}

fn context() -> TempDir {
    let ctx = TempDir::new().unwrap();
    write(
        ctx.path(),
        DEF,
        r#"[images.z]
base = "scratch"
tag = "v1"
[[images.z.layers]]
source_folder = "app"
dst = "/app"
copy_contents_only = true
[[images.z.layers]]
source_file = "small.txt"
dst = "/etc/small.txt"
"#,
    );
    write_file(ctx.path(), "app/big.bin", mixed_bytes(BIG, 7), 0o644);
    write_file(ctx.path(), "app/bin/run.sh", "#!/bin/sh\necho hi\n", 0o755);
    for i in 0..200 {
        write(
            ctx.path(),
            &format!("app/many/f{i:03}.txt"),
            &format!("file {i}\n"),
        );
    }
    write(ctx.path(), "small.txt", "small\n");
    set_tree_mtime(ctx.path(), epoch(1_500_000_000));
    ctx
}

#[test]
fn zstd_layers_are_the_same_for_any_thread_count_and_read_by_umoci_and_skopeo() {
    let ctx = context();
    let work = TempDir::new().unwrap();
    let build = |name: &str, jobs: &str| {
        let out = work.path().join(format!("out-{name}"));
        let v = build_json(
            ctx.path(),
            &work.path().join(format!("cache-{name}")),
            &out,
            &["--compression", "zstd", "-j", jobs],
        );
        assert!(layer_cache_states(&v).iter().all(|c| c == "miss"), "{v:#}");
        (v, out)
    };
    let (v1, out1) = build("one", "1");
    let (v2, out2) = build("two", "2");
    assert_eq!(
        v1["images"][0]["digest"], v2["images"][0]["digest"],
        "1 and 2 threads gave different images: {v1:#} {v2:#}"
    );
    assert_eq!(
        fs::read(out1.join("index.json")).unwrap(),
        fs::read(out2.join("index.json")).unwrap()
    );

    let layout = Layout::new(&out2);
    assert_eq!(layout.verify(0), 2);
    let (m, _cfg) = layout.image("v1");
    let layers = m["layers"].as_array().unwrap();
    assert!(layers.iter().all(|l| l["mediaType"] == MT_ZSTD), "{m:#}");
    // The big layer is a stream of independent frames, 1 MiB of tar each
    // but the last; it decompresses to its diff_id.
    let blob = layout.blob(layers[0]["digest"].as_str().unwrap());
    let fr = frames(&blob);
    assert!(fr.len() >= 4, "{} frames", fr.len());
    assert!(fr[..fr.len() - 1].iter().all(|f| f.1 == 1 << 20), "{fr:?}");
    let tar = zstd::decode_all(&blob[..]).unwrap();
    assert_eq!(fr.iter().map(|f| f.1).sum::<u64>(), tar.len() as u64);
    let (_, cfg) = layout.image("v1");
    assert_eq!(
        cfg["rootfs"]["diff_ids"][0].as_str().unwrap(),
        format!("sha256:{}", sha256_hex(&tar))
    );

    // skopeo reads the image and names its zstd layers.
    let oci = format!("oci:{}:v1", out2.display());
    let raw = skopeo_json(&["inspect", "--raw", &oci]);
    assert_eq!(raw["layers"], m["layers"]);
    let info = skopeo_json(&["inspect", &oci]);
    let digests: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let named: Vec<&Value> = info["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(named, digests, "{info:#}");

    // skopeo decompresses every frame of every layer (with its own zstd
    // decoder) to the diff_ids, and GNU tar unpacks the tree from them.
    // (Debian's umoci 0.4 refuses tar+zstd layers whatever their framing.)
    let plain = work.path().join("plain");
    tool(
        "skopeo",
        &[
            "copy",
            "--dest-decompress",
            &oci,
            &format!("dir:{}", plain.display()),
        ],
    );
    let rootfs = work.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    for (i, diff) in cfg["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let diff = diff.as_str().unwrap();
        let tar = plain.join(hex(diff));
        let bytes =
            fs::read(&tar).unwrap_or_else(|e| panic!("layer {i}: skopeo wrote no {diff} ({e})"));
        assert_eq!(sha256_hex(&bytes), hex(diff), "layer {i}");
        tool(
            "tar",
            &["-xf", tar.to_str().unwrap(), "-C", rootfs.to_str().unwrap()],
        );
    }
    check_tree(&rootfs, ctx.path());
}

fn check_tree(rootfs: &Path, ctx: &Path) {
    assert_eq!(
        fs::read(rootfs.join("app/big.bin")).unwrap(),
        fs::read(ctx.join("app/big.bin")).unwrap()
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("app/bin/run.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    for i in 0..200 {
        assert_eq!(
            fs::read_to_string(rootfs.join(format!("app/many/f{i:03}.txt"))).unwrap(),
            format!("file {i}\n")
        );
    }
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/small.txt")).unwrap(),
        "small\n"
    );
}

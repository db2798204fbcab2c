//! Names that are not UTF-8 (Linux allows any bytes but '/' and NUL in a
//! name; Docker copies such files): copied from the context or made by a
//! RUN step, they land in the layer as their exact bytes, in PAX records
//! as Go's archive/tar writes them, and real clients (umoci, GNU tar)
//! unpack them under the same bytes. `.dockerignore` patterns still match
//! them, a stray byte counting as one character as in BuildKit.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use support::pybase::{debian_python_base, debian_tools_present};
use support::*;

fn raw(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// One entry of a layer, every name as bytes.
#[derive(Debug, PartialEq)]
struct RawEntry {
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    data: Vec<u8>,
}

fn raw_entries(tar_bytes: &[u8]) -> Vec<RawEntry> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.entries()
        .expect("tar entries")
        .map(|e| {
            let mut e = e.expect("tar entry");
            let path = e.path_bytes().into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            RawEntry { path, link, data }
        })
        .collect()
}

fn entry(path: &[u8], link: Option<&[u8]>, data: &[u8]) -> RawEntry {
    RawEntry {
        path: path.to_vec(),
        link: link.map(<[u8]>::to_vec),
        data: data.to_vec(),
    }
}

/// The decompressed last layer of the image tagged `tag`.
fn last_layer_tar(out: &Path, tag: &str) -> Vec<u8> {
    let lay = Layout::new(out);
    let (m, _) = lay.image(tag);
    let layers = m["layers"].as_array().unwrap();
    lay.layer_tar(&layers[layers.len() - 1])
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// GNU tar unpacks `tar_bytes` into `dir`.
fn gnu_tar_unpack(tar_bytes: &[u8], dir: &Path) {
    require_tool("tar", "tar");
    fs::create_dir_all(dir).unwrap();
    let file = dir.with_extension("tar");
    fs::write(&file, tar_bytes).unwrap();
    tool(
        "tar",
        &["-xf", file.to_str().unwrap(), "-C", dir.to_str().unwrap()],
    );
}

/// A context whose `src/` holds a file, a folder (with files) and a
/// symlink (to a target) whose names are not UTF-8, a UTF-8 name that is
/// not ASCII, and two files `.dockerignore` drops.
fn write_context(ctx: &Path) {
    let src = ctx.join("src");
    mkdirs(&raw(&src, b"d\xff\xfe"));
    fs::write(raw(&src, b"caf\xe9.txt"), "latin-1 name\n").unwrap();
    fs::write(raw(&src, b"d\xff\xfe/inner.txt"), "in a folder\n").unwrap();
    fs::write(raw(&src, b"d\xff\xfe/n\x80"), "deep\n").unwrap();
    std::os::unix::fs::symlink(
        OsStr::from_bytes(b"d\xff\xfe/n\x80"),
        raw(&src, b"link\xfd"),
    )
    .unwrap();
    fs::write(src.join("utf8-é.txt"), "plain\n").unwrap();
    fs::write(raw(&src, b"drop\xff.log"), "ignored by *\n").unwrap();
    fs::write(raw(&src, b"x\xffy"), "ignored by ?\n").unwrap();
    // `?` is one character: one stray byte, not two.
    fs::write(raw(&src, b"x\xff\xfey"), "kept\n").unwrap();
    write(ctx, ".dockerignore", "src/*.log\nsrc/x?y\n");
}

/// What `src/` becomes under /app.
fn expected_app() -> Vec<RawEntry> {
    vec![
        entry(b"app/caf\xe9.txt", None, b"latin-1 name\n"),
        entry(b"app/d\xff\xfe/", None, b""),
        entry(b"app/d\xff\xfe/inner.txt", None, b"in a folder\n"),
        entry(b"app/d\xff\xfe/n\x80", None, b"deep\n"),
        entry(b"app/link\xfd", Some(b"d\xff\xfe/n\x80"), b""),
        entry("app/utf8-é.txt".as_bytes(), None, b"plain\n"),
        entry(b"app/x\xff\xfey", None, b"kept\n"),
    ]
}

fn app_entries(tar_bytes: &[u8]) -> Vec<RawEntry> {
    raw_entries(tar_bytes)
        .into_iter()
        .filter(|e| e.path.starts_with(b"app/"))
        .collect()
}

/// The unpacked tree holds every name with its bytes.
#[track_caller]
fn check_unpacked(app: &Path) {
    assert_eq!(
        fs::read(raw(app, b"caf\xe9.txt")).unwrap(),
        b"latin-1 name\n"
    );
    assert!(raw(app, b"d\xff\xfe").is_dir());
    assert_eq!(fs::read(raw(app, b"d\xff\xfe/n\x80")).unwrap(), b"deep\n");
    assert_eq!(
        fs::read_link(raw(app, b"link\xfd"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"d\xff\xfe/n\x80"
    );
    assert_eq!(fs::read(raw(app, b"link\xfd")).unwrap(), b"deep\n");
    assert_eq!(fs::read(app.join("utf8-é.txt")).unwrap(), b"plain\n");
    assert!(!raw(app, b"drop\xff.log").exists());
    assert!(!raw(app, b"x\xffy").exists());
    let mut names: Vec<Vec<u8>> = fs::read_dir(app)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            &b"caf\xe9.txt"[..],
            b"d\xff\xfe",
            b"link\xfd",
            "utf8-é.txt".as_bytes(),
            b"x\xff\xfey"
        ]
    );
}

#[test]
fn context_names_that_are_not_utf8_are_copied_as_their_bytes() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write_context(&ctx);
    write(
        &ctx,
        "imgbuild.toml",
        "[images.app]\nbase = \"scratch\"\ntag = \"v1\"\n\n[[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\ncopy_contents_only = true\n",
    );
    let out = t.path().join("out");
    let v = build_json(&ctx, &t.path().join("cache"), &out, &[]);
    assert_eq!(layer_cache_states(&v), ["miss"], "{v:#}");

    // The layer holds the exact bytes, for names and link targets.
    let tar_bytes = last_layer_tar(&out, "v1");
    assert_eq!(app_entries(&tar_bytes), expected_app());
    // Sorted by bytes, each once.
    let paths: Vec<Vec<u8>> = raw_entries(&tar_bytes)
        .into_iter()
        .map(|e| e.path)
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(paths, sorted);
    // As PAX records with the raw bytes (and hdrcharset=BINARY); a UTF-8
    // name needs none.
    assert!(contains(&tar_bytes, b" hdrcharset=BINARY\n"));
    assert!(contains(&tar_bytes, b" path=app/caf\xe9.txt\n"));
    assert!(contains(&tar_bytes, b" path=app/d\xff\xfe/\n"));
    assert!(contains(&tar_bytes, b" linkpath=d\xff\xfe/n\x80\n"));
    assert!(!contains(&tar_bytes, " path=app/utf8-é.txt\n".as_bytes()));

    // A second build finds everything in the cache: the keys are stable.
    let again = build_json(&ctx, &t.path().join("cache"), &out, &[]);
    assert_eq!(layer_cache_states(&again), ["hit"], "{again:#}");
    assert_eq!(again["images"][0]["digest"], v["images"][0]["digest"]);

    // Real clients unpack the same bytes.
    let rootfs = umoci_unpack(&out, "v1", &t.path().join("bundle"));
    check_unpacked(&rootfs.join("app"));
    let gnu = t.path().join("gnu");
    gnu_tar_unpack(&tar_bytes, &gnu);
    check_unpacked(&gnu.join("app"));
}

#[test]
fn a_dockerfile_copy_keeps_names_that_are_not_utf8() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write_context(&ctx);
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY src /app/\n");
    let out = t.path().join("out");
    ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&t.path().join("cache"))
        .oci_out(&out)
        .json()
        .arg("-q")
        .run()
        .ok();
    let tar_bytes = last_layer_tar(&out, "latest");
    assert_eq!(app_entries(&tar_bytes), expected_app());
    let rootfs = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    check_unpacked(&rootfs.join("app"));
}

#[test]
fn ignored_names_are_shown_escaped() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    write_context(&ctx);
    write(
        &ctx,
        "imgbuild.toml",
        "[images.app]\nbase = \"scratch\"\n\n[[images.app.layers]]\nsource_folder = \"src\"\ndst = \"/app\"\ncopy_contents_only = true\n",
    );
    let plan = plan_json(&ctx, &t.path().join("cache"), &[]);
    let text = plan.to_string();
    assert!(text.contains("drop\\\\xff.log"), "{plan:#}");
    assert!(!text.contains('\u{fffd}'), "{plan:#}");
}

#[test]
fn a_run_step_keeps_the_bytes_of_the_names_it_makes() {
    let test = "a_run_step_keeps_the_bytes_of_the_names_it_makes";
    if !debian_tools_present(test) {
        return;
    }
    assert!(is_root(), "{test}: run the tests as root");
    let base = debian_python_base();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("def");
    mkdirs(&dir);
    // The shell's printf makes the bytes: \377 is 0xff, \376 is 0xfe. A
    // second step deletes a file the first made: a whiteout of its bytes.
    let text = format!(
        "[images.t]\nbase = \"oci:{}:latest\"\n\n[[images.t.layers]]\ncommands = ['{}']\n\n[[images.t.layers]]\ncommands = ['{}']\n",
        base.display(),
        r#"mkdir -p /opt/n && printf data > "/opt/n/f$(printf "\377")" && mkdir "/opt/n/d$(printf "\376")" && ln -s "f$(printf "\377")" /opt/n/l && touch "/opt/n/old$(printf "\375")""#,
        r#"rm "/opt/n/old$(printf "\375")""#,
    );
    let def = write(&dir, "imgbuild.toml", &text);
    let store = t.path().join("store");
    let out = t.path().join("out");
    let v = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&v), ["base", "miss", "miss"], "{v:#}");

    let lay = Layout::new(&out);
    let (m, _) = lay.image("latest");
    let layers = m["layers"].as_array().unwrap();
    let made = lay.layer_tar(&layers[1]);
    let got: Vec<RawEntry> = raw_entries(&made)
        .into_iter()
        .filter(|e| e.path.starts_with(b"opt/n/") && e.path != b"opt/n/")
        .collect();
    assert_eq!(
        got,
        [
            entry(b"opt/n/d\xfe/", None, b""),
            entry(b"opt/n/f\xff", None, b"data"),
            entry(b"opt/n/l", Some(b"f\xff"), b""),
            entry(b"opt/n/old\xfd", None, b""),
        ]
    );
    assert!(contains(&made, b" path=opt/n/f\xff\n"));
    let deleted: Vec<Vec<u8>> = raw_entries(&lay.layer_tar(&layers[2]))
        .into_iter()
        .map(|e| e.path)
        .filter(|p| p.starts_with(b"opt/n/") && p != b"opt/n/")
        .collect();
    assert_eq!(deleted, [b"opt/n/.wh.old\xfd".to_vec()]);

    let again = build_json(&def, &store, &out, &[]);
    assert_eq!(layer_cache_states(&again), ["base", "hit", "hit"]);
    assert_eq!(again["images"][0]["digest"], v["images"][0]["digest"]);

    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let n = root.join("opt/n");
    assert_eq!(fs::read(raw(&n, b"f\xff")).unwrap(), b"data");
    assert!(raw(&n, b"d\xfe").is_dir());
    assert_eq!(
        fs::read_link(n.join("l")).unwrap().as_os_str().as_bytes(),
        b"f\xff"
    );
    assert!(!raw(&n, b"old\xfd").exists(), "the whiteout applies");
}

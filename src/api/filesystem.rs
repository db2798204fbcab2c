//! buildx's `type=local` and `type=tar` outputs: the image's final
//! filesystem (its layers applied in order, whiteouts honoured) written
//! as a folder or as one tar file, one subfolder per platform when the
//! image has several.

use crate::error::{Error, IoContext, Result};
use crate::output::{ImageOut, Output, WriteStats};
use crate::store::Store;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `img`'s filesystem to `out` (a `Local` or `Tar` output).
pub fn write(out: &Output, store: &Store, img: &ImageOut) -> Result<WriteStats> {
    match out {
        Output::Local(dest) => write_local(dest, store, img),
        Output::Tar(dest) => write_tar(dest, store, img),
        other => Err(Error::Usage(format!(
            "{} is an image output, not a filesystem",
            other.display()
        ))),
    }
}

/// The folder each platform's tree goes to below the output: none for one
/// platform, `os_arch[_variant]` for several (as BuildKit names them).
fn platform_dirs(img: &ImageOut) -> Vec<PathBuf> {
    if img.platforms.len() == 1 {
        return vec![PathBuf::new()];
    }
    img.platforms
        .iter()
        .map(|p| PathBuf::from(p.platform.replace('/', "_")))
        .collect()
}

/// Applies every platform's layers under `root`.
fn unpack_into(root: &Path, store: &Store, img: &ImageOut) -> Result<WriteStats> {
    // Owners can be applied only by root; others get their own files.
    // SAFETY: geteuid takes nothing and cannot fail.
    let own = unsafe { libc::geteuid() } == 0;
    let mut stats = WriteStats::default();
    for (p, sub) in img.platforms.iter().zip(platform_dirs(img)) {
        let dir = root.join(sub);
        fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        for l in &p.layers {
            // Checked first: a bad blob is removed (and the build run
            // again), never unpacked.
            store.verify_blob(&l.digest, l.size)?;
            let blob = store.blob_path(&l.digest);
            let r = crate::layer::read::open_layer(&blob, &l.media_type, store.max_layer_size())?;
            crate::sandbox::rootfs::apply_tar(&dir, r, own).map_err(|e| match e {
                crate::sandbox::rootfs::ApplyError::Write(p, source) => Error::io(
                    format!("unpacking layer {} into {}: {p}", l.digest, dir.display()),
                    source,
                ),
                crate::sandbox::rootfs::ApplyError::Layer(m) => {
                    Error::input(&blob, format!("layer {}: {m}", l.digest))
                }
            })?;
            stats.blobs_written += 1;
            stats.bytes_written += l.size;
        }
    }
    Ok(stats)
}

/// A new folder is made and renamed into place, so a failed build leaves
/// nothing: in the store's temp folder when it is on `dest`'s file system
/// (a killed build's goes with the next command), else beside `dest`. An
/// existing folder is written into, as buildx does.
fn write_local(dest: &Path, store: &Store, img: &ImageOut) -> Result<WriteStats> {
    if dest.is_dir() {
        return unpack_into(dest, store, img);
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).ok();
    let near = match dev(store.tmp_dir()).is_some() && dev(store.tmp_dir()) == dev(parent) {
        true => store.tmp_dir(),
        false => parent,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-local-")
        .tempdir_in(near)
        .ctx(|| format!("creating a folder in {}", near.display()))?;
    // The tree's root gets the usual folder mode (a layer may set another).
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .ctx(|| format!("writing {}", dest.display()))?;
    let stats = unpack_into(tmp.path(), store, img)?;
    crate::util::fault::point("output-local");
    let path = tmp.keep();
    fs::rename(&path, dest).map_err(|e| {
        let _ = crate::sandbox::remove_tree(&path);
        Error::io(format!("writing {}", dest.display()), e)
    })?;
    Ok(stats)
}

/// The tree is unpacked into the store's temp folder, then written as a
/// tar (owners, modes, symlinks kept; paths relative, folders first).
fn write_tar(dest: &Path, store: &Store, img: &ImageOut) -> Result<WriteStats> {
    let stdout = dest == Path::new("-");
    if stdout {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            return Err(Error::Usage(
                "tar:- would write a tar to the terminal: redirect standard output or give a file"
                    .into(),
            ));
        }
    }
    let tree = tempfile::Builder::new()
        .prefix("tar-out-")
        .tempdir_in(store.tmp_dir())
        .ctx(|| "creating a temp folder".into())?;
    let stats = unpack_into(tree.path(), store, img);
    let res = stats.and_then(|stats| {
        // Named only once complete (a kill leaves nothing at `dest`).
        let tmp = match stdout {
            true => crate::util::fs::NewFile::create_in(store.tmp_dir(), 0o600)
                .ctx(|| format!("creating a temp file in {}", store.tmp_dir().display()))?,
            false => {
                let parent = dest
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
                crate::util::fs::NewFile::create_in(parent, 0o644)
                    .ctx(|| format!("writing {}", dest.display()))?
            }
        };
        let io = |e: std::io::Error| Error::io(format!("writing {}", dest.display()), e);
        let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.file().try_clone().map_err(io)?));
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Complete);
        append_tree(&mut b, tree.path(), Path::new("")).map_err(io)?;
        b.into_inner().and_then(|mut w| w.flush()).map_err(io)?;
        if stdout {
            let mut f = tmp.file().try_clone().map_err(io)?;
            std::io::Seek::rewind(&mut f).map_err(io)?;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut f, &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("writing the tar to standard output", e))?;
        } else {
            tmp.persist(dest).map_err(io)?;
        }
        Ok(stats)
    });
    // The tree may hold read-only folders; removed the sandbox's way.
    let _ = crate::sandbox::remove_tree(&tree.keep());
    res
}

/// Every entry below `dir`, sorted by name, under `rel`.
fn append_tree<W: Write>(b: &mut tar::Builder<W>, dir: &Path, rel: &Path) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let r = rel.join(&n);
        b.append_path_with_name(&p, &r)?;
        if fs::symlink_metadata(&p)?.is_dir() {
            append_tree(b, &p, &r)?;
        }
    }
    Ok(())
}

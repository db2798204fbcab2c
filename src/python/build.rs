//! Making Python layers: fetch every artifact (verified, into the store),
//! build what must be built on the host (the project, pure sdists), then
//! install wheels natively and write each layer.

use super::layer::{PyArtifact, PyLayer};
use super::uv;
use super::venv::{VenvOptions, create_venv};
use super::wheel::{
    InstallExtras, LayerFile, LayerFileKind, install_wheel_with, merge_layer_files,
};
use crate::error::{Error, IoContext, Result};
use crate::layer::compress::Compression;
use crate::layer::files::{commit_layer, start_layer};
use crate::layer::tar::{Entry, EntryKind};
use crate::store::{LayerDesc, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Concurrent downloads (they wait on the network, not on the CPU).
pub const FETCH_JOBS: usize = 8;

/// Wheels ready to install: artifact sha256 → wheel file (for sdists, the
/// wheel built from them) and file name; project → its built wheel.
#[derive(Default)]
pub struct Prepared {
    wheels: BTreeMap<String, (PathBuf, String)>,
    projects: BTreeMap<PathBuf, (PathBuf, String)>,
}

/// Fetches every artifact of `layers` (each once) with bounded parallelism,
/// then builds projects and sdists with uv.
pub fn prepare(store: &Store, layers: &[&PyLayer], progress: &dyn Fn(&str)) -> Result<Prepared> {
    let mut todo: BTreeMap<String, &PyArtifact> = BTreeMap::new();
    for l in layers {
        for a in &l.artifacts {
            todo.entry(a.sha256.clone()).or_insert(a);
        }
    }
    let todo: Vec<_> = todo.into_values().collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<PathBuf>)>> = Mutex::new(Vec::new());
    let jobs = FETCH_JOBS.min(todo.len()).max(1);
    let task = crate::progress::start(
        &format!("download {} wheels and sdists", todo.len()),
        todo.iter().filter_map(|a| a.size).sum(),
    );
    task.items(0, todo.len() as u64);
    let fetched = Mutex::new((0u64, 0u64));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(a) = todo.get(i) else { break };
                    let r = crate::store::fetch::fetch_file(store, &a.location, &a.sha256, a.size)
                        .map_err(|e| {
                            e.within(&format!("{} {} ({})", a.name, a.version, a.filename))
                        });
                    results.lock().expect("not poisoned").push((i, r));
                    let mut g = fetched.lock().unwrap_or_else(|e| e.into_inner());
                    g.0 += 1;
                    g.1 += a.size.unwrap_or(0);
                    task.items(g.0, todo.len() as u64);
                    task.set(g.1);
                }
            });
        }
    });
    let mut results = results.into_inner().expect("not poisoned");
    if results.iter().all(|(_, r)| r.is_ok()) {
        task.finish(&format!("{} files", todo.len()));
    }
    results.sort_by_key(|(i, _)| *i);
    let mut out = Prepared::default();
    for (i, r) in results {
        let a = todo[i];
        let path = r?;
        if a.sdist {
            progress(&format!("building {} {} from its sdist", a.name, a.version));
            let (wheel, name) = build_sdist(store, &path, &a.filename, &a.name)?;
            out.wheels.insert(a.sha256.clone(), (wheel, name));
        } else {
            out.wheels
                .insert(a.sha256.clone(), (path, a.filename.clone()));
        }
    }
    for l in layers {
        if let Some(pb) = &l.project
            && !out.projects.contains_key(&pb.dir)
        {
            progress(&format!("building {} with uv build", pb.name));
            let uv = uv::ensure(store, pb.index.as_deref())?;
            let tmp = tempfile::Builder::new()
                .prefix("wheel-")
                .tempdir_in(store.tmp_dir())
                .ctx(|| "making a build folder".into())?;
            let wheel =
                uv::build_project_wheel(&uv, store, &pb.dir, tmp.path(), pb.index.as_deref())?;
            let kept = keep(store, &wheel)?;
            let name = wheel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.projects.insert(pb.dir.clone(), (kept, name));
        }
    }
    Ok(out)
}

/// Keeps a built wheel in the store under its hash.
fn keep(store: &Store, path: &std::path::Path) -> Result<PathBuf> {
    let d = crate::layer::files::hash_file(path)?;
    if !store.has_blob(&d) {
        let mut tmp = store.temp_file()?;
        let mut f = std::fs::File::open(path).ctx(|| format!("reading {}", path.display()))?;
        std::io::copy(&mut f, &mut tmp).ctx(|| "writing to the store".into())?;
        store.commit_blob(tmp, &d)?;
    }
    Ok(store.blob_path(&d))
}

fn build_sdist(
    store: &Store,
    sdist: &std::path::Path,
    filename: &str,
    package: &str,
) -> Result<(PathBuf, String)> {
    let uv = uv::ensure(store, None)?;
    let dir = tempfile::Builder::new()
        .prefix("sdist-")
        .tempdir_in(store.tmp_dir())
        .ctx(|| "making a build folder".into())?;
    // uv recognises an sdist by its file name.
    let named = dir.path().join(filename);
    std::fs::copy(sdist, &named).ctx(|| format!("copying {filename}"))?;
    let out = dir.path().join("out");
    let wheel = uv::build_sdist_wheel(&uv, &named, &out, None, package)?;
    let name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((keep(store, &wheel)?, name))
}

/// Installs a Python step's wheels (or makes its venv) and writes the
/// layer; the layer and its entries (an SBOM lists what they install
/// without reading the layer again).
pub fn build_layer(
    store: &Store,
    pl: &PyLayer,
    prepared: &Prepared,
    compression: Compression,
    threads: usize,
    mtime: u64,
) -> Result<(LayerDesc, Vec<LayerFile>)> {
    let t = pl.install_target();
    let mut parts: Vec<Vec<LayerFile>> = Vec::new();
    if pl.skeleton {
        parts.push(create_venv(
            &pl.venv,
            &pl.env.interpreter,
            pl.env.version,
            &VenvOptions {
                prompt: pl.prompt.clone(),
                ..VenvOptions::default()
            },
        ));
    }
    let install =
        |path: &PathBuf, filename: &str, extras: &InstallExtras| -> Result<Vec<LayerFile>> {
            let f = std::fs::File::open(path).ctx(|| format!("reading {}", path.display()))?;
            // A wheel the installer refuses (a RECORD that does not match,
            // a path out of the venv) is a bad input, named by its file.
            let w = install_wheel_with(std::io::BufReader::new(f), filename, &t, extras)
                .map_err(|e| Error::input(path, e.to_string()))?;
            for warning in &w.warnings {
                tracing_warn(&format!("{filename}: {warning}"));
            }
            Ok(w.files)
        };
    let installed: Vec<Result<Vec<LayerFile>>> = {
        use rayon::prelude::*;
        pl.artifacts
            .par_iter()
            .map(|a| {
                let (path, filename) = prepared
                    .wheels
                    .get(&a.sha256)
                    .ok_or_else(|| Error::Other(format!("{}: not fetched", a.filename)))?;
                let extras = InstallExtras {
                    direct_url: a.direct_url.clone(),
                    // Verified when fetched; a built sdist has its own hash.
                    expected_sha256: None,
                    expected_size: None,
                };
                install(path, filename, &extras)
            })
            .collect()
    };
    for r in installed {
        parts.push(r?);
    }
    if let Some(pb) = &pl.project {
        let (path, filename) = prepared
            .projects
            .get(&pb.dir)
            .ok_or_else(|| Error::Other(format!("{}: project not built", pb.name)))?;
        parts.push(install(path, filename, &InstallExtras::default())?);
    }
    let files = merge_layer_files(parts).map_err(|e| {
        Error::Other(format!(
            "two packages of one layer install different files at {} (the lock installs conflicting packages)",
            e.path
        ))
    })?;
    let desc = write_layer(store, &files, compression, threads, mtime)?;
    Ok((desc, files))
}

fn tracing_warn(msg: &str) {
    eprintln!("warning: {msg}");
}

/// Writes in-memory entries (sorted by path) as a layer.
pub fn write_layer(
    store: &Store,
    files: &[LayerFile],
    compression: Compression,
    threads: usize,
    mtime: u64,
) -> Result<LayerDesc> {
    let (tmp, mut tw) = start_layer(store, compression, threads)?;
    let mut buf = vec![0u8; 64 * 1024];
    for f in files {
        let kind = match &f.kind {
            LayerFileKind::Dir => EntryKind::Dir,
            LayerFileKind::File(data) => EntryKind::File {
                size: data.len() as u64,
            },
            LayerFileKind::Symlink(t) => EntryKind::Symlink { target: t.clone() },
        };
        tw.append_header(&Entry {
            path: f.path.clone(),
            kind,
            mode: f.mode,
            uid: 0,
            gid: 0,
            mtime,
        })
        .ctx(|| "writing the layer".into())?;
        if let LayerFileKind::File(data) = &f.kind {
            tw.append_data(&mut data.as_slice(), data.len() as u64, &mut buf)
                .ctx(|| "writing the layer".into())?;
        }
    }
    commit_layer(store, tmp, tw, compression)
}

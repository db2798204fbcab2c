//! Files layers. Most come with their files collected by planning; a
//! download with a checksum or a local archive is fetched or unpacked here
//! first and then collected from the store exactly as planning collects
//! the store's files, so the layer's bytes do not depend on which of the
//! two did it. A git commit is fetched and checked out here, once per
//! store (`git/` in it), and collected with the modes git gives. Owned
//! layers (`--chown`) are built on the layers below.

use super::BuildOptions;
use super::common::{Stack, StepCx, at_step};
use crate::error::{Error, Result};
use crate::layer::files::{self, CollectOptions, Collected, FileEntry};
use crate::layer::ignore::IgnoreRules;
use crate::oci::types::Descriptor;
use crate::plan::{Action, Chown, Fetch, Plan, Step};
use crate::progress::Task;
use crate::store::{LayerDesc, Store};
use std::borrow::Cow;

/// A files layer that reads nothing below it; returns it with its number
/// of files and the progress bar to finish.
pub(super) fn build(
    plan: &Plan,
    store: &Store,
    o: &BuildOptions,
    step: &Step,
    label: &str,
) -> Result<(LayerDesc, usize, Box<dyn Task>)> {
    let (entries, bytes) = entries(plan, store, o, step, label)?;
    let bar = o.progress.start(label, bytes);
    let d = files::write_layer(
        store,
        &entries,
        plan.options.compression,
        o.threads,
        plan.options.source_date_epoch,
        &|n| bar.set(n),
    )?;
    Ok((d, entries.len(), bar))
}

/// A files layer with an owner: a name is looked up in the layers below,
/// and the folders above the files that they lack are made with it.
pub(super) fn build_owned(
    cx: &StepCx,
    s: &Step,
    chown: &Chown,
    stack: &Stack,
) -> Result<LayerDesc> {
    let (entries, _) = entries(cx.plan, cx.store, cx.o, s, &s.name)?;
    let mut entries = entries.into_owned();
    let owner = match chown {
        Chown::Ids(ids) => *ids,
        Chown::Name(n) => {
            let ids = cx
                .owner_below(n, &stack.layers, &s.name)
                .map_err(|e| at_step(e, s))?;
            for e in entries.iter_mut() {
                e.uid = ids.uid;
                e.gid = ids.gid;
            }
            ids
        }
    };
    write_owned(cx, entries, owner, &stack.layers, &s.name)
}

/// Writes a layer whose files have an owner (`--chown`): the folders
/// above them that the layers below lack are made with that owner, as
/// docker and buildah make them.
pub(super) fn write_owned(
    cx: &StepCx,
    mut entries: Vec<FileEntry>,
    owner: crate::oci::Owner,
    layers: &[Descriptor],
    label: &str,
) -> Result<LayerDesc> {
    let store = cx.store;
    let above = files::folders_above(&entries);
    if !above.is_empty() {
        cx.fetch_missing(layers, label)?;
        let index = layers
            .iter()
            .map(|l| crate::layer::read::LayerIndex::cached(store, &l.digest, &l.media_type))
            .collect::<Result<Vec<_>>>()?;
        for f in crate::layer::read::missing_folders(&index, &above) {
            entries.push(FileEntry::folder(&f, 0o755, owner.uid, owner.gid));
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
    }
    files::write_layer(
        store,
        &entries,
        cx.plan.options.compression,
        cx.o.threads,
        cx.plan.options.source_date_epoch,
        &|_| {},
    )
}

/// A files step's entries and their size: as planned, or fetched first.
fn entries<'s>(
    plan: &Plan,
    store: &Store,
    o: &BuildOptions,
    step: &'s Step,
    label: &str,
) -> Result<(Cow<'s, [FileEntry]>, u64)> {
    let Action::Files {
        entries,
        bytes,
        fetch,
        ..
    } = &step.action
    else {
        unreachable!("a files step")
    };
    let Some(f) = fetch else {
        return Ok((Cow::Borrowed(entries.as_slice()), *bytes));
    };
    let note = |n: &str| o.progress.line(&format!("{label}: note: {n}"));
    let c = fetched(plan, store, f, &note).map_err(|e| match e {
        // Placed at the layer, as planning places its input errors.
        Error::Input { path, message } => Error::InputAt {
            loc: Box::new(step.loc.clone()),
            message: format!("{}: {message}", path.display()),
        },
        Error::Registry { message, status } if matches!(**f, Fetch::Git { .. }) => {
            Error::Registry {
                message: format!("{}: {message}", step.loc),
                status,
            }
        }
        other => other,
    })?;
    Ok((Cow::Owned(c.entries), c.bytes))
}

/// Downloads or unpacks a fetched source into the store and collects its
/// files there.
fn fetched(plan: &Plan, store: &Store, f: &Fetch, note: &dyn Fn(&str)) -> Result<Collected> {
    let no_rules = IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
    let options = |owner, chmod| CollectOptions {
        context: store.root(),
        rules: &no_rules,
        owner,
        chmod,
        stat: plan.store_stat(),
        exclude: &[],
        hash: true,
    };
    match f {
        Fetch::Url {
            url,
            sha,
            dst,
            chown,
            mode,
        } => {
            let (path, _) =
                crate::store::fetch::fetch_url(store, url, Some(*sha), None, "--checksum")?;
            files::collect_file(&path, dst, &options(*chown, Some(*mode)))
        }
        Fetch::Git {
            src,
            resolved,
            keep_git_dir,
            dst,
            chown,
            chmod,
        } => {
            let tree = git_tree(store, src, resolved, *keep_git_dir)?;
            // The subdir: a folder inside the checkout (a symlink may not
            // lead out of it).
            let dir = std::fs::canonicalize(tree.join(&src.subdir))
                .ok()
                .filter(|d| d.starts_with(&tree) && d.is_dir())
                .ok_or_else(|| {
                    Error::input(
                        src.display(),
                        format!("no folder {:?} in commit {}", src.subdir, resolved.commit),
                    )
                })?;
            let mut c = files::collect_folder(&dir, dst, false, &options(*chown, *chmod))?;
            if chmod.is_none() {
                // Git keeps only the executable bit: the modes it gives
                // with umask 022, whatever this process's umask.
                for e in c.entries.iter_mut() {
                    e.mode = match e.kind {
                        files::FileKind::Symlink(_) => e.mode,
                        files::FileKind::Dir => 0o755,
                        _ if e.mode & 0o100 != 0 => 0o755,
                        _ => 0o644,
                    };
                }
            }
            Ok(c)
        }
        Fetch::Archive {
            path,
            sha,
            dst,
            chown,
        } => {
            // The key names the bytes planning hashed: an archive changed
            // since is not unpacked under their name.
            let now = files::hash_file(path)?;
            if now != *sha {
                return Err(Error::input(
                    path,
                    format!("changed during the build (planned as {sha}, now {now})"),
                ));
            }
            let u = crate::layer::archive::unpack(store, path, sha)?;
            let mut c = files::collect_folder(&u.root, dst, false, &options(None, None))?;
            // The archive's owners and modes, not the unpacked copy's.
            let prefix = if dst.is_empty() {
                String::new()
            } else {
                format!("{dst}/")
            };
            for e in c.entries.iter_mut() {
                let rel = e.path.strip_prefix(&prefix).unwrap_or(e.path.as_bytes());
                if let Some(m) = std::str::from_utf8(rel).ok().and_then(|r| u.meta.get(r)) {
                    if !matches!(e.kind, files::FileKind::Symlink(_)) {
                        e.mode = m.mode;
                    }
                    e.uid = m.uid;
                    e.gid = m.gid;
                }
                if let Some(o) = chown {
                    e.uid = o.uid;
                    e.gid = o.gid;
                }
            }
            if !u.skipped.is_empty() {
                note(&format!(
                    "{} device or fifo entries of the archive are not kept (e.g. {})",
                    u.skipped.len(),
                    u.skipped[0]
                ));
            }
            Ok(c)
        }
    }
}

/// The checkout of `r` in the store (`git/COMMIT-…/tree`), fetched first
/// when no earlier build left it; returns its canonical path.
fn git_tree(
    store: &Store,
    src: &crate::net::git::GitSource,
    r: &crate::net::git::Resolved,
    keep_git_dir: bool,
) -> Result<std::path::PathBuf> {
    let mut name = r.commit.clone();
    if !src.submodules {
        name.push_str("-nosub");
    }
    if keep_git_dir {
        // .git holds the branch or tag: one checkout per ref.
        let refname = r.refname.as_deref().unwrap_or("");
        let h = crate::digest::Digest::of(refname.as_bytes());
        name.push_str(&format!("-git-{}", &h.hex()[..12]));
    }
    let parent = store.root().join("git");
    let done = parent.join(&name);
    let canonical = |p: &std::path::Path| {
        std::fs::canonicalize(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
    };
    if done.join("tree").is_dir() {
        crate::util::fs::touch(&done);
        return canonical(&done.join("tree"));
    }
    std::fs::create_dir_all(&parent)
        .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    // In the store's temp folder (same file system): a killed checkout goes
    // with the next command.
    let tmp = tempfile::Builder::new()
        .prefix("git-fetch-")
        .tempdir_in(store.tmp_dir())
        .map_err(|e| Error::io(format!("creating a folder in {}", parent.display()), e))?;
    let git = crate::net::git::Git::new(store.http().config(), store.tmp_dir())?;
    git.checkout(src, r, &tmp.path().join("tree"), keep_git_dir)?;
    let fetched = tmp.keep();
    if let Err(e) = std::fs::rename(&fetched, &done) {
        let _ = std::fs::remove_dir_all(&fetched);
        // Another build may have put the same commit there first.
        if !done.join("tree").is_dir() {
            return Err(Error::io(format!("keeping {}", done.display()), e));
        }
    }
    canonical(&done.join("tree"))
}

//! Hashes for the files collection left unhashed (those the stat cache did
//! not know), in one of two ways:
//!
//! - hash first: each file is read and hashed now, the key made from the
//!   hashes, and execution writes the layer only if the key misses (a
//!   warm rebuild, where the stat cache knows most files, or where the
//!   last build of this image had this step, so a hit is likely);
//! - one pass: when a hit is unlikely (a first build, a fresh runner), the
//!   layer is written now, each file read once and hashed as it is copied;
//!   the key is made from those hashes and the layer stored under it, so
//!   execution takes it as built. The bytes and the key are the same
//!   either way.
//!
//! Either way the stat cache learns the hashes, so the next build reads
//! metadata only. `imgbuild plan` never writes: it always hashes first.

use super::common::{ImageCx, LayerCx};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::files::{Collected, FileEntry, FileKind};
use crate::layer::write::{WriteOptions, write_entries};
use crate::store::LayerDesc;
use rayon::prelude::*;
use std::fs::Metadata;
use std::sync::OnceLock;

/// Whether a build may write a cold files layer while planning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnePass {
    /// Never (`imgbuild plan`, and what a plan alone does).
    #[default]
    Off,
    /// When no hit is likely: the stat cache knows at most half the files,
    /// neither the last build of the image nor an image planned before it
    /// in this build had a step of this name, and no registry cache is
    /// read.
    Auto,
    /// Whenever files are unhashed (tests compare both ways).
    Always,
}

/// Gives every unhashed file of `c` its hash, hashing first or writing the
/// layer in one pass (then returned) as the module says. `name` is the
/// step's.
pub(super) fn hash_or_write(
    cx: &ImageCx,
    lc: &LayerCx,
    name: &str,
    c: &mut Collected,
) -> Result<Option<LayerDesc>> {
    let seen = !cx.env.files_steps.borrow_mut().insert(name.to_string());
    if c.unhashed.is_empty() {
        return Ok(None);
    }
    let o = cx.env.o;
    let files = c
        .entries
        .iter()
        .filter(|e| matches!(e.kind, FileKind::File { .. }))
        .count();
    // Each entry's stat cache name, for the files to hash: put side by
    // side in one buffer while the list is given back, as (start, end)
    // in it, `NONE` for an entry not to hash. Ends are u32, 8 bytes an
    // entry (4 GiB of names is over 100 million files, refused).
    let mut unhashed = std::mem::take(&mut c.unhashed).into_iter().peekable();
    let mut all_names = String::new();
    const NONE: (u32, u32) = (u32::MAX, 0);
    let mut spans: Vec<(u32, u32)> = vec![NONE; c.entries.len()];
    let mut fits = true;
    for (i, e) in c.entries.iter().enumerate() {
        while unhashed.next_if(|(p, _)| *p < e.path).is_some() {}
        if let Some((_, n)) = unhashed.next_if(|(p, _)| *p == e.path) {
            let (a, b) = (all_names.len(), all_names.len() + n.len());
            fits &= b < u32::MAX as usize;
            spans[i] = (a as u32, b as u32);
            all_names.push_str(&n);
        }
    }
    drop(unhashed);
    if !fits {
        return Err(Error::Other(format!(
            "{name}: the names of its files take more than 4 GiB"
        )));
    }
    let name_of = |i: usize| {
        let (a, b) = spans[i];
        (a != NONE.0).then(|| &all_names[a as usize..b as usize])
    };
    c.hashed = spans.iter().filter(|s| s.0 != NONE.0).count();
    let one_pass = lc.chown.is_none()
        && match o.one_pass {
            OnePass::Off => false,
            OnePass::Always => true,
            // A registry cache may well have the step: hash first, look
            // it up, and build only on a miss.
            OnePass::Auto => {
                c.hashed * 2 > files && !seen && !recorded(cx, name) && o.cache_from.is_empty()
            }
        };
    let stat = cx.env.stat;
    stat.reserve(c.hashed, all_names.len());
    let hashes: Vec<OnceLock<Digest>> = (0..c.entries.len()).map(|_| OnceLock::new()).collect();
    let mut made = None;
    if one_pass {
        let wo = WriteOptions {
            compression: o.compression,
            threads: o.threads.max(1),
            mtime: o.source_date_epoch,
            hash: true,
        };
        let sink = |i: usize, d: Digest, meta: &Metadata| {
            if let Some(n) = name_of(i) {
                stat.insert(n, meta, d);
                let _ = hashes[i].set(d);
            }
        };
        made = Some(write_entries(
            cx.env.store,
            &c.entries,
            &wo,
            &|_| {},
            &sink,
        )?);
    } else {
        let entries = &c.entries;
        (0..entries.len())
            .into_par_iter()
            .filter_map(|i| name_of(i).map(|n| (i, n)))
            .try_for_each(|(i, n)| -> Result<()> {
                let (d, meta) = hash_file(&entries[i])?;
                stat.insert(n, &meta, d);
                let _ = hashes[i].set(d);
                Ok(())
            })?;
    }
    for (e, h) in c.entries.iter_mut().zip(hashes) {
        if let (FileKind::File { hash, .. }, Some(d)) = (&mut e.kind, h.into_inner()) {
            *hash = d;
        }
    }
    Ok(made)
}

/// Whether the last build of this image had a step named `name`.
fn recorded(cx: &ImageCx, name: &str) -> bool {
    cx.previous
        .get_or_init(|| super::record::ImageRecord::load(cx.env.store, cx.record_id))
        .as_ref()
        .is_some_and(|r| r.steps.iter().any(|s| s.name == name))
}

/// A file's sha256 and its metadata read on the open file after it.
fn hash_file(e: &FileEntry) -> Result<(Digest, Metadata)> {
    let (d, f) = crate::layer::files::hash_read(&e.src())?;
    let meta = f
        .metadata()
        .map_err(|err| Error::input(e.src(), format!("cannot read: {err}")))?;
    Ok((d, meta))
}

//! What the builders of the step kinds share: the layers built so far,
//! the image a step is put on, and the layers below it.

use super::BuildOptions;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::{Descriptor, ImageConfig};
use crate::output::{ImageOut, LayerOut};
use crate::plan::{BasePlan, ImagePlan, Plan, Step};
use crate::registry::Reference;
use crate::store::{LayerDesc, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The layers this build made, by step key (two steps with one key are
/// built once), and how many and how big they are. Shared by the images
/// built at the same time: each step key has its own lock, held while the
/// step is built, so a second image with the same step waits and takes
/// the first one's layer.
#[derive(Default)]
pub(super) struct Built {
    inner: Mutex<BuiltLayers>,
    building: Mutex<BTreeMap<Digest, Arc<Mutex<()>>>>,
}

#[derive(Default)]
struct BuiltLayers {
    map: BTreeMap<Digest, LayerDesc>,
    count: usize,
    bytes: u64,
}

impl Built {
    fn layers(&self) -> std::sync::MutexGuard<'_, BuiltLayers> {
        // A worker that panicked left whole entries only.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &Digest) -> Option<LayerDesc> {
        self.layers().map.get(key).cloned()
    }

    /// The lock of step `key`: whoever holds it builds the step.
    pub fn key_lock(&self, key: &Digest) -> Arc<Mutex<()>> {
        let mut b = self.building.lock().unwrap_or_else(|e| e.into_inner());
        b.entry(*key).or_default().clone()
    }

    /// A layer built for step `key`: recorded in the store for the step,
    /// counted, and remembered for another image with the same step.
    pub fn keep(&self, store: &Store, key: Digest, d: LayerDesc) -> Result<LayerDesc> {
        crate::util::fault::point("step-record");
        store.step_put(&key, &d)?;
        let mut l = self.layers();
        l.count += 1;
        l.bytes += d.size;
        l.map.insert(key, d.clone());
        Ok(d)
    }

    /// Layers built (and already recorded) in parallel.
    pub fn extend(&self, layers: Vec<(Digest, LayerDesc)>) {
        let mut l = self.layers();
        for (key, d) in layers {
            l.count += 1;
            l.bytes += d.size;
            l.map.insert(key, d);
        }
    }

    /// How many layers were built, and their compressed bytes.
    pub fn totals(&self) -> (usize, u64) {
        let l = self.layers();
        (l.count, l.bytes)
    }
}

/// One platform's image as its steps are put on it.
pub(super) struct Stack {
    pub cfg: ImageConfig,
    pub layers: Vec<Descriptor>,
    pub outs: Vec<LayerOut>,
    pub annotations: BTreeMap<String, String>,
}

/// What a step built in order reads besides the stack below it.
pub(super) struct StepCx<'a, 'b> {
    pub store: &'a Store,
    pub plan: &'a Plan,
    pub o: &'a BuildOptions<'b>,
    pub img: &'a ImagePlan,
    /// The images assembled so far (indexed like `plan.images`).
    pub images: &'a [Option<ImageOut>],
    /// The registry image at the bottom of this one, where missing base
    /// layers come from.
    pub base_ref: Option<&'a Reference>,
    /// How many of the stack's layers are the base's.
    pub base_count: usize,
}

/// Whether layer `digest` is in the store, fetching it when it is not from
/// where it came: a registry cache hit's repository (checked against its
/// entry), else `base_ref`, the registry image at the bottom of the image.
/// False when it is nowhere to be had.
pub(super) fn have_layer(
    store: &Store,
    o: &BuildOptions,
    base_ref: Option<&Reference>,
    digest: &Digest,
    size: u64,
) -> Result<bool> {
    find_layer(store, o.client, o.remote_layers, base_ref, digest, size)
}

/// [`have_layer`] for callers outside a build's execution (attestations
/// read the finished image's layers).
pub(crate) fn find_layer(
    store: &Store,
    client: Option<&crate::registry::Client>,
    remote_layers: &BTreeMap<Digest, crate::registry::cache::CacheLayer>,
    base_ref: Option<&Reference>,
    digest: &Digest,
    size: u64,
) -> Result<bool> {
    if store.blob_ok(digest, size) {
        return Ok(true);
    }
    let Some(c) = client else {
        return Ok(false);
    };
    if let Some(hit) = remote_layers.get(digest) {
        crate::registry::cache::fetch_hit(c, hit, store)?;
        return Ok(true);
    }
    match base_ref {
        Some(r) => c.fetch_blob(r, digest, store).map(|()| true),
        None => Ok(false),
    }
}

impl StepCx<'_, '_> {
    /// Every layer below a step must be in the store (a base image's
    /// layers may still be in its registry).
    pub fn fetch_missing(&self, layers: &[Descriptor], label: &str) -> Result<()> {
        for l in layers {
            if !have_layer(self.store, self.o, self.base_ref, &l.digest, l.size)? {
                return Err(Error::Other(format!(
                    "{label}: layer {} below the step is not in the store",
                    l.digest
                )));
            }
        }
        Ok(())
    }

    /// `--chown=NAME`: the ids in the /etc/passwd and /etc/group the
    /// layers below leave.
    pub fn owner_below(
        &self,
        name: &str,
        layers: &[Descriptor],
        label: &str,
    ) -> Result<crate::oci::Owner> {
        self.fetch_missing(layers, label)?;
        let refs: Vec<(Digest, &str)> = layers
            .iter()
            .map(|l| (l.digest, l.media_type.as_str()))
            .collect();
        let files =
            crate::layer::read::read_stored_files(self.store, &refs, &["etc/passwd", "etc/group"])?;
        let text = |f: &str| {
            String::from_utf8_lossy(files.get(f).map(Vec::as_slice).unwrap_or_default())
                .into_owned()
        };
        crate::layer::read::resolve_owner(name, &text("etc/passwd"), &text("etc/group"))
            .map_err(|m| Error::Other(format!("--chown={name}: {m}")))
    }
}

/// An extraction of `layers` that failed on what it read: when one of
/// their blobs no longer hashes to its digest (it is then removed), the
/// store's corruption is the cause, and the build is run again; otherwise
/// the error as it was (a layer that does not match its config, say).
pub(super) fn blame_store(store: &Store, layers: &[Descriptor], e: Error) -> Error {
    if !matches!(e, Error::Input { .. } | Error::Other(_)) {
        return e;
    }
    // Every layer checked (each bad one removed), the first reported.
    let mut bad = None;
    for l in layers {
        if let Err(c @ Error::CorruptBlob { .. }) = store.verify_blob(&l.digest, l.size) {
            bad.get_or_insert(c);
        }
    }
    bad.unwrap_or(e)
}

/// The registry image at the bottom of an image, if any.
pub(super) fn image_base_ref(base: &BasePlan, images: &[Option<ImageOut>]) -> Option<Reference> {
    match base {
        BasePlan::Remote { reference, .. } => Some(reference.clone()),
        BasePlan::Image(bi) => images[*bi].as_ref().and_then(|b| b.base_ref.clone()),
        _ => None,
    }
}

/// An error of a step's own making, placed at the step's definition.
pub(super) fn at_step(e: Error, s: &Step) -> Error {
    match e {
        Error::Other(m) => Error::InputAt {
            loc: Box::new(s.loc.clone()),
            message: m,
        },
        other => other,
    }
}

/// A step name cut to a line's worth, for progress labels.
pub(super) fn short(name: &str) -> String {
    const MAX: usize = 60;
    // A script of several lines (a heredoc) shows as one.
    let name = name.trim().replace('\n', " ⏎ ");
    if name.chars().count() <= MAX {
        return name;
    }
    let cut: String = name.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn long_step_names_are_cut_to_a_line() {
        assert_eq!(short("  echo hi\n"), "echo hi");
        assert_eq!(short("a\nb"), "a ⏎ b");
        let long = "x".repeat(100);
        let s = short(&long);
        assert_eq!(s.chars().count(), 60);
        assert!(s.ends_with('…'));
    }
}

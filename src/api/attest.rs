//! Attestations of a build (`--sbom`): documents about each platform
//! manifest, attached to it as OCI 1.1 artifacts whose `subject` is that
//! manifest. A layout output lists them in its index.json; a push puts
//! them beside the image and makes them findable through the registry's
//! referrers API or, where it has none, the referrers tag scheme
//! (`sha256-<subject hex>`, an index of the subject's referrers).
//!
//! The image itself is not changed by attaching: artifacts point at it,
//! it never points at them.

mod provenance;

use crate::digest::Digest;
use crate::error::Result;
use crate::oci::types::{Descriptor, MT_MANIFEST};
use crate::output::{Artifact, ImageOut};
use crate::plan::{Action, Plan};
use crate::sbom::{self, Known, OwnLayer};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};

/// Which attestations a build attaches; `None` leaves it to the
/// definition (`sbom = true`, `provenance = "min"`), off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attest {
    /// SPDX and CycloneDX SBOMs of each platform.
    pub sbom: Option<bool>,
    /// A SLSA provenance statement of each platform.
    pub provenance: Option<Provenance>,
}

/// How much a provenance statement says (buildx's `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    Off,
    /// The build's parameters and resolved dependencies.
    Min,
    /// Those, and every layer with the step that made it.
    Max,
}

impl Provenance {
    /// `true`, `false`, `min`, `max`, `mode=min`, `mode=max` (buildx's
    /// values for `--provenance`).
    pub fn parse(s: &str) -> std::result::Result<Provenance, String> {
        match s.trim().trim_start_matches("mode=") {
            "true" | "1" | "min" => Ok(Provenance::Min),
            "false" | "0" => Ok(Provenance::Off),
            "max" => Ok(Provenance::Max),
            other => Err(format!(
                "{other:?}: expected true, false, mode=min or mode=max"
            )),
        }
    }
}

impl Attest {
    /// What the build does, the definition's switches filling the gaps.
    pub(super) fn resolve(&self, def: &crate::spec::Definition) -> Attest {
        Attest {
            sbom: Some(self.sbom.or(def.sbom).unwrap_or(false)),
            provenance: Some(
                self.provenance
                    .or(def
                        .provenance
                        .as_deref()
                        .and_then(|p| Provenance::parse(p).ok()))
                    .unwrap_or(Provenance::Off),
            ),
        }
    }

    pub fn any(&self) -> bool {
        self.sbom == Some(true)
            || matches!(self.provenance, Some(Provenance::Min | Provenance::Max))
    }
}

const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";

/// What the build's locks say of the packages it installed: every image
/// of the plan (a base built in the same plan installed some).
fn known(plan: &Plan) -> Known {
    let mut k = Known::default();
    for s in plan.images.iter().flat_map(|i| &i.steps) {
        match &s.action {
            Action::Debian(d) => {
                for p in &d.packages {
                    let url =
                        sbom::public_url(&format!("{}/{}", p.uri.trim_end_matches('/'), p.path));
                    k.debs.insert(
                        (p.name.clone(), p.version.clone(), p.arch.clone()),
                        (p.sha256.clone(), url.unwrap_or_default()),
                    );
                }
            }
            Action::Python(py) => {
                for a in &py.artifacts {
                    if a.sdist {
                        // Built here into a wheel: its hash is the sdist's.
                        continue;
                    }
                    k.wheels.insert(
                        (sbom::normalize(&a.name), a.version.clone()),
                        (
                            a.filename.clone(),
                            a.sha256.clone(),
                            sbom::public_url(&a.location),
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    k
}

/// The layers of `plan`'s image `i` that are its own files (files, RUN and
/// copy steps; package layers are listed by package instead).
fn own_layers(plan: &Plan, i: usize, store: &Store) -> BTreeSet<Digest> {
    plan.images[i]
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                Action::Files { .. } | Action::Run(_) | Action::CopyFrom(_)
            )
        })
        .filter_map(|s| s.cached.clone().or_else(|| store.step_get(&s.key)))
        .map(|d| d.digest)
        .collect()
}

/// Puts `bytes` in the store; their descriptor.
fn put(store: &Store, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
    let digest = store.put_blob_bytes(bytes)?;
    Ok(Descriptor {
        media_type: media_type.into(),
        artifact_type: None,
        digest,
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
    })
}

/// An artifact manifest of `artifact_type` holding `doc`, about `subject`.
fn artifact(
    store: &Store,
    subject: &Descriptor,
    artifact_type: &str,
    doc: &[u8],
    created: u64,
) -> Result<Artifact> {
    let config = put(store, EMPTY_TYPE, EMPTY)?;
    let layer = put(store, artifact_type, doc)?;
    let subject = Descriptor {
        media_type: subject.media_type.clone(),
        artifact_type: None,
        digest: subject.digest,
        size: subject.size,
        platform: None,
        annotations: None,
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        crate::oci::types::rfc3339(created),
    );
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "artifactType": artifact_type,
        "config": config,
        "layers": [layer],
        "subject": subject,
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&m).expect("serializes");
    let mut manifest = put(store, MT_MANIFEST, &bytes)?;
    manifest.artifact_type = Some(artifact_type.to_string());
    manifest.annotations = Some(annotations);
    Ok(Artifact {
        subject,
        manifest,
        blobs: vec![config, layer],
    })
}

/// The attestations of `built`, image `i` of `plan`, one per document and
/// platform. Layers not in the store are fetched from where they came
/// (a registry cache, the base's registry).
#[allow(clippy::too_many_arguments)]
pub(super) fn attachments(
    plan: &Plan,
    i: usize,
    built: &ImageOut,
    name: &str,
    source: &super::Source,
    store: &Store,
    client: Option<&crate::registry::Client>,
    attest: &Attest,
) -> Result<(Vec<Artifact>, SharedData)> {
    let mut out = Vec::new();
    let mut shared = BTreeMap::new();
    if let Some(mode @ (Provenance::Min | Provenance::Max)) = attest.provenance {
        let created = plan.options.source_date_epoch;
        for p in &built.platforms {
            let doc = provenance::statement(plan, i, p, name, source, mode)?;
            out.push(artifact(
                store,
                &p.manifest,
                provenance::MT_IN_TOTO,
                &doc,
                created,
            )?);
        }
    }
    if attest.sbom != Some(true) {
        return Ok((out, shared));
    }
    let known = known(plan);
    let own = own_layers(plan, i, store);
    let created = plan.options.source_date_epoch;
    for p in &built.platforms {
        // Layers read at once, one per core (the base's were read while
        // the build ran).
        use rayon::prelude::*;
        let read: Vec<(sbom::LayerInventory, Vec<u8>)> = p
            .layers
            .par_iter()
            .map(|l| layer_inventory(plan, built, store, client, l))
            .collect::<Result<_>>()?;
        let mut invs = Vec::new();
        for (l, (inv, bytes)) in p.layers.iter().zip(read) {
            shared.insert(sbom::inventory_key(&l.diff_id), (sbom::MT_INVENTORY, bytes));
            invs.push(inv);
        }
        let inv = sbom::merge(&invs, &known);
        let layers: Vec<OwnLayer> = p
            .layers
            .iter()
            .filter(|l| own.contains(&l.digest))
            .map(|l| OwnLayer {
                name: l.step.clone(),
                digest: l.digest,
                diff_id: l.diff_id,
            })
            .collect();
        let subject = sbom::formats::Subject {
            name: name.to_string(),
            digest: p.manifest_digest,
            platform: p.platform.clone(),
        };
        let docs = [
            (
                sbom::formats::MT_SPDX,
                sbom::formats::spdx(&subject, &inv, &layers, created),
            ),
            (
                sbom::formats::MT_CYCLONEDX,
                sbom::formats::cyclonedx(&subject, &inv, &layers, created),
            ),
        ];
        for (mt, doc) in docs {
            out.push(artifact(store, &p.manifest, mt, &doc, created)?);
        }
    }
    Ok((out, shared))
}

/// The base layers of `plan`'s images that can be read now (a layout's
/// blobs, or a registry base's already in the store) and whose inventory
/// the store lacks: (blob, media type, diff_id).
pub(super) fn base_layers(plan: &Plan, store: &Store) -> Vec<(std::path::PathBuf, String, Digest)> {
    use crate::plan::BasePlan;
    let mut out: Vec<(std::path::PathBuf, String, Digest)> = Vec::new();
    let mut add = |path: std::path::PathBuf, mt: &str, diff_id: &Digest| {
        if path.is_file()
            && !out.iter().any(|(_, _, d)| d == diff_id)
            && sbom::stored_inventory(store, diff_id).is_none()
        {
            out.push((path, mt.to_string(), *diff_id));
        }
    };
    for img in &plan.images {
        match &img.base {
            BasePlan::Layout { images, .. } => {
                for li in images {
                    for (l, d) in li.manifest.layers.iter().zip(&li.config.rootfs.diff_ids) {
                        add(
                            crate::oci::layout::blob_path(&li.dir, &l.digest),
                            &l.media_type,
                            d,
                        );
                    }
                }
            }
            BasePlan::Remote { images, .. } => {
                for ri in images {
                    for (l, d) in ri.manifest.layers.iter().zip(&ri.config.rootfs.diff_ids) {
                        if store.blob_ok(&l.digest, l.size) {
                            add(store.blob_path(&l.digest), &l.media_type, d);
                        }
                    }
                }
            }
            BasePlan::Scratch | BasePlan::Image(_) => {}
        }
    }
    out
}

/// Reads `layers` for their inventories into the store (one thread, beside
/// the build); the SBOM then finds them there. A layer that cannot be read
/// is left for the SBOM to report.
pub(super) fn prescan(store: &Store, layers: &[(std::path::PathBuf, String, Digest)]) {
    for (path, mt, diff_id) in layers {
        let _ = sbom::layer_inventory(store, path, mt, diff_id);
    }
}

/// Layer inventories the build read, by key, as registry cache data
/// entries (`--cache-to` writes those the cache lacks).
pub(super) type SharedData = BTreeMap<Digest, (&'static str, Vec<u8>)>;

/// The inventory of layer `l`: kept in the store, else from a registry
/// cache (`--cache-from`, so that a layer left in the registry is not
/// downloaded to be listed), else read from the layer (fetched from where
/// it came when the store lacks it). With its bytes, to share.
fn layer_inventory(
    plan: &Plan,
    built: &ImageOut,
    store: &Store,
    client: Option<&crate::registry::Client>,
    l: &crate::output::LayerOut,
) -> Result<(sbom::LayerInventory, Vec<u8>)> {
    if let Some(found) = sbom::stored_inventory(store, &l.diff_id) {
        return Ok(found);
    }
    let key = sbom::inventory_key(&l.diff_id);
    if let Some(c) = client {
        for from in &plan.options.cache_from {
            match crate::registry::cache::lookup_data(
                c,
                store,
                &from.repo,
                &key,
                sbom::MT_INVENTORY,
            )
            .and_then(|b| {
                b.map(|b| sbom::keep_inventory(store, &l.diff_id, &b).map(|i| (i, b)))
                    .transpose()
            }) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => crate::registry::cache::warn_unused(&from.repo, &key, &e),
            }
        }
    }
    let found = crate::exec::find_layer(
        store,
        client,
        &plan.remote_layers,
        built.base_ref.as_ref(),
        &l.digest,
        l.size,
    )?;
    if !found {
        return Err(crate::error::Error::Other(format!(
            "[{}] SBOM: layer {} ({}) is not in the store and cannot be fetched",
            built.id, l.digest, l.step
        )));
    }
    sbom::layer_inventory(
        store,
        &store.blob_path(&l.digest),
        &l.media_type,
        &l.diff_id,
    )
}

/// An attestation found attached to an image.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attached {
    /// The platform of the manifest it is about (`os/arch[/variant]`), when
    /// the image is an index that says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub subject: Digest,
    pub artifact_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// Where an image is: `oci:DIR[:TAG]`, or a reference in a registry.
enum Located {
    Layout(std::path::PathBuf),
    Registry(crate::registry::Reference),
}

fn platform_name(p: &crate::oci::types::PlatformJson) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// A platform manifest: its digest and, from an index, its platform.
type Subject = (Digest, Option<String>);

/// The platform manifests of the image `image` names.
fn subjects(image: &str, client: &crate::registry::Client) -> Result<(Located, Vec<Subject>)> {
    use crate::oci::types::{Index, MT_DOCKER_LIST, MT_INDEX};
    let (located, top_type, top_bytes) = match image.strip_prefix("oci:") {
        Some(rest) => {
            let (dir, tag) = super::parse_layout_ref(rest);
            let top = crate::oci::layout::find_tag(&dir, tag.as_deref())?;
            let path = crate::oci::layout::blob_path(&dir, &top.digest);
            let bytes = std::fs::read(&path)
                .map_err(|e| crate::error::Error::input(&path, format!("cannot read: {e}")))?;
            (Located::Layout(dir), top.media_type, (top.digest, bytes))
        }
        None => {
            let r = crate::registry::Reference::parse(image).map_err(crate::error::Error::Usage)?;
            let (bytes, mt, digest) = client.get_manifest(&r)?.ok_or_else(|| {
                crate::error::Error::Other(format!("{r}: not found in the registry"))
            })?;
            (Located::Registry(r), mt, (digest, bytes))
        }
    };
    let (top_digest, bytes) = top_bytes;
    let out = if top_type == MT_INDEX || top_type == MT_DOCKER_LIST {
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| crate::error::Error::Other(format!("{image}: not a valid index: {e}")))?;
        index
            .manifests
            .iter()
            .filter(|d| d.artifact_type.is_none())
            .map(|d| (d.digest, d.platform.as_ref().map(platform_name)))
            .collect()
    } else {
        vec![(top_digest, None)]
    };
    Ok((located, out))
}

/// The attestations attached to the image `image` (`oci:DIR[:TAG]` or a
/// registry reference): in a layout, its index.json's artifacts about the
/// image's manifests; in a registry, their referrers.
pub fn attestations(image: &str, client: &crate::registry::Client) -> Result<Vec<Attached>> {
    let (located, subjects) = subjects(image, client)?;
    let mut out = Vec::new();
    match &located {
        Located::Layout(dir) => {
            let index = crate::oci::layout::read_index(dir)?;
            for d in index.manifests.iter().filter(|d| d.artifact_type.is_some()) {
                let Ok(bytes) = std::fs::read(crate::oci::layout::blob_path(dir, &d.digest)) else {
                    continue;
                };
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let Some(s) = v["subject"]["digest"].as_str().and_then(Digest::parse_oci) else {
                    continue;
                };
                if let Some((_, p)) = subjects.iter().find(|(x, _)| *x == s) {
                    out.push(Attached {
                        platform: p.clone(),
                        subject: s,
                        artifact_type: d.artifact_type.clone().unwrap_or_default(),
                        digest: d.digest,
                        size: d.size,
                    });
                }
            }
        }
        Located::Registry(r) => {
            for (s, p) in &subjects {
                for d in crate::registry::referrers::referrers(client, r, s)? {
                    out.push(Attached {
                        platform: p.clone(),
                        subject: *s,
                        artifact_type: d.artifact_type.clone().unwrap_or_default(),
                        digest: d.digest,
                        size: d.size,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The document of an attestation of `artifact_type` about `image`'s
/// manifest for `platform` (the only one when `None`), checked against its
/// digest; `None` when none is attached.
pub fn attached_document(
    image: &str,
    artifact_type: &str,
    platform: Option<&str>,
    client: &crate::registry::Client,
    store: &Store,
) -> Result<Option<Vec<u8>>> {
    let all = attestations(image, client)?;
    let wanted: Vec<&Attached> = all
        .iter()
        .filter(|a| a.artifact_type == artifact_type)
        .filter(|a| platform.is_none_or(|p| a.platform.as_deref() == Some(p)))
        .collect();
    let a = match wanted.as_slice() {
        [] => return Ok(None),
        [a] => *a,
        _ => {
            let have: Vec<String> = wanted.iter().filter_map(|a| a.platform.clone()).collect();
            return Err(crate::error::Error::Usage(format!(
                "{image} has an attestation of type {artifact_type} for each of {}: pick one with --platform",
                have.join(", ")
            )));
        }
    };
    let (located, _) = subjects(image, client)?;
    let read = |d: &Digest| -> Result<Vec<u8>> {
        match &located {
            Located::Layout(dir) => {
                let path = crate::oci::layout::blob_path(dir, d);
                let bytes = std::fs::read(&path)
                    .map_err(|e| crate::error::Error::input(&path, format!("cannot read: {e}")))?;
                if Digest::of(&bytes) != *d {
                    return Err(crate::error::Error::input(
                        &path,
                        "does not match its digest",
                    ));
                }
                Ok(bytes)
            }
            Located::Registry(r) => {
                client.fetch_blob(r, d, store)?;
                store.read_blob_verified(d)
            }
        }
    };
    let manifest = match &located {
        Located::Layout(_) => read(&a.digest)?,
        Located::Registry(r) => {
            let at = crate::registry::Reference {
                tag: None,
                digest: Some(a.digest),
                ..r.clone()
            };
            client
                .get_manifest(&at)?
                .map(|(b, _, _)| b)
                .ok_or_else(|| crate::error::Error::Other(format!("{at}: not found")))?
        }
    };
    let m: crate::oci::types::Manifest = serde_json::from_slice(&manifest).map_err(|e| {
        crate::error::Error::Other(format!("attestation {}: not a manifest: {e}", a.digest))
    })?;
    let doc = m
        .layers
        .iter()
        .find(|l| l.media_type == artifact_type)
        .ok_or_else(|| {
            crate::error::Error::Other(format!(
                "attestation {} holds no {artifact_type} document",
                a.digest
            ))
        })?;
    read(&doc.digest).map(Some)
}

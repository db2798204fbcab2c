//! Artifacts about a manifest (attestations), pushed and found as the
//! distribution spec 1.1 says: an artifact manifest names its `subject`;
//! a registry with the referrers API indexes it (and says so with the
//! `OCI-Subject` header); for one without (Debian's docker-registry 2.8),
//! the pusher keeps the subject's referrers in an image index tagged
//! `sha256-<subject hex>` (the referrers tag scheme). Readers ask the API
//! first, then the tag.

use super::client::Body;
use super::{Client, PushStats, Reference};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::{Descriptor, Index, MT_INDEX};
use crate::store::Store;

/// One artifact to push: its manifest, the blobs it names, its subject.
pub struct Referrer<'a> {
    pub manifest: &'a Descriptor,
    pub blobs: &'a [Descriptor],
    pub subject: &'a Descriptor,
}

/// The referrers tag of `subject`.
pub fn tag_of(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// Pushes `artifacts` into `target` (whose subjects are already there):
/// blobs, then each manifest by digest; then, for the subjects the
/// registry did not index, the tag index with the artifacts added (one
/// of the same type and digest is kept once).
pub fn push_referrers(
    client: &Client,
    store: &Store,
    target: &Reference,
    artifacts: &[Referrer],
) -> Result<PushStats> {
    let mut stats = PushStats::default();
    let mut tagged: Vec<(Digest, Vec<Descriptor>)> = Vec::new();
    for a in artifacts {
        for b in a.blobs {
            match client.start_upload(target, &b.digest, None)? {
                None => stats.blobs_present += 1,
                Some(loc) => {
                    let n = client.upload(
                        target,
                        &b.digest,
                        &store.blob_path(&b.digest),
                        b.size,
                        None,
                        loc,
                    )?;
                    stats.blobs_uploaded += 1;
                    stats.bytes_uploaded += n;
                }
            }
        }
        let bytes = store.read_blob_verified(&a.manifest.digest)?;
        let indexed = client.put_manifest_subject(
            target,
            &a.manifest.digest.oci(),
            &bytes,
            &a.manifest.media_type,
        )?;
        stats.bytes_uploaded += bytes.len() as u64;
        if !indexed {
            let entry = Descriptor {
                platform: None,
                ..a.manifest.clone()
            };
            match tagged.iter_mut().find(|(s, _)| *s == a.subject.digest) {
                Some((_, v)) => v.push(entry),
                None => tagged.push((a.subject.digest, vec![entry])),
            }
        }
    }
    for (subject, new) in tagged {
        let tag = tag_of(&subject);
        let mut index = tag_index(client, target, &tag)?.unwrap_or(Index {
            schema_version: 2,
            media_type: Some(MT_INDEX.into()),
            manifests: vec![],
            annotations: None,
        });
        let before = index.manifests.clone();
        for d in new {
            if !index.manifests.iter().any(|m| m.digest == d.digest) {
                index.manifests.push(d);
            }
        }
        if index.manifests != before {
            let bytes = serde_json::to_vec(&index).expect("serializes");
            client.put_manifest(target, &tag, &bytes, MT_INDEX)?;
            stats.bytes_uploaded += bytes.len() as u64;
        }
    }
    Ok(stats)
}

/// The index tagged `tag` in `repo`, if there is one.
fn tag_index(client: &Client, repo: &Reference, tag: &str) -> Result<Option<Index>> {
    let r = Reference {
        tag: Some(tag.to_string()),
        digest: None,
        ..repo.clone()
    };
    let Some((bytes, mt, _)) = client.get_manifest(&r)? else {
        return Ok(None);
    };
    if mt != MT_INDEX {
        return Err(Error::Other(format!(
            "{r} is a {mt}, not the image index the referrers tag scheme keeps"
        )));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Other(format!("{r}: not a valid image index: {e}")))
}

/// The artifacts about `subject` in `repo` (descriptors with their
/// artifact types): the referrers API where the registry has it, else the
/// referrers tag.
pub fn referrers(client: &Client, repo: &Reference, subject: &Digest) -> Result<Vec<Descriptor>> {
    let scopes = [format!("repository:{}:pull", repo.repository)];
    let path = format!("/v2/{}/referrers/{}", repo.repository, subject.oci());
    let mut resp = client.send(
        repo,
        "GET",
        &path,
        &scopes,
        &[("Accept", MT_INDEX.to_string())],
        &Body::Empty,
    )?;
    if resp.status == 200
        && resp
            .header("content-type")
            .is_some_and(|t| t.starts_with(MT_INDEX))
    {
        let bytes = resp.bytes(4 << 20)?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Other(format!("{repo}: the referrers of {subject}: {e}")))?;
        return Ok(index.manifests);
    }
    Ok(tag_index(client, repo, &tag_of(subject))?
        .map(|i| i.manifests)
        .unwrap_or_default())
}

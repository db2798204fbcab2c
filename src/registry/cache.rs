//! A step cache kept in a registry repository (`--cache-from`,
//! `--cache-to`): what one machine built, another finds by key.
//!
//! Each step key has an entry of its own: a small OCI image manifest
//! tagged `step-v1-<key hex>` in the cache repository, whose one layer is
//! the step's layer and whose annotations carry the key, the layer's
//! diff_id and its uncompressed size. So a lookup is one manifest GET per
//! step (a miss is a 404), and a write touches no shared object: two
//! machines that write the same key write the same bytes (an entry holds
//! no clock and no host), and writers of different keys write different
//! tags. The registry refuses an entry whose layer it does not hold, so an
//! entry is never visible before its blob is.
//!
//! An entry is trusted only as far as its bytes check out: its embedded key
//! must be the key looked up, and a layer taken from the cache is hashed
//! as it is downloaded (digest, then diff_id and size of what it
//! decompresses to). A mismatch is a miss with a warning, never a layer.
//!
//! Some planning results are worth sharing too, though they are no layer:
//! what a base's layers say about its Python (found by reading them, so a
//! fresh runner would download the base to learn it) and the lock uv
//! resolved for `pip_packages` (a fresh runner would need uv and the
//! package index). Such a *data entry* has the same tag scheme, keyed by
//! the planning step's own key, artifact type `application/vnd.imgbuild.data.v1`,
//! and its one blob (a few hundred bytes to some kB) also inline in the
//! manifest as the descriptor's `data`, so that reading it is the one GET.
//! Its bytes are checked against the descriptor's digest.
//!
//! The entry JSON is written here by hand (fixed field order, no
//! whitespace) because its bytes are what every machine must agree on.

use super::client::Body;
use super::{Client, Reference};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::types::{Descriptor, MT_MANIFEST};
use crate::store::{LayerDesc, Store};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Tag prefix of an entry; the number is the entry format.
pub const TAG_PREFIX: &str = "step-v1-";
/// The artifact type of an entry manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.imgbuild.step.v1";
/// The OCI empty descriptor's media type, bytes and digest: an entry's
/// config.
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";
const A_KEY: &str = "dev.imgbuild.step.key";
const A_DIFF_ID: &str = "dev.imgbuild.step.diff-id";
const A_SIZE: &str = "dev.imgbuild.step.uncompressed-size";
/// The artifact type of a data entry.
pub const DATA_ARTIFACT_TYPE: &str = "application/vnd.imgbuild.data.v1";
/// The media types of data entries' blobs: a base's Python as planning
/// found it (JSON), and a lock uv resolved (TOML).
pub const MT_PYSCAN: &str = "application/vnd.imgbuild.pyscan.v1+json";
pub const MT_PYLOCK: &str = "application/vnd.imgbuild.pylock.v1+toml";
/// Data at most this big is also inline in its entry.
const MAX_INLINE: usize = 24 << 10;
/// The most an entry may take (a step entry is about 700 bytes; a data
/// entry holds up to [`MAX_INLINE`] bytes, base64-encoded).
const MAX_ENTRY: u64 = 64 << 10;
/// The most a data entry's blob may hold.
const MAX_DATA: u64 = 16 << 20;

/// How a build uses the cache: `--cache-from` (any number, the first that
/// has a key wins) and `--cache-to`.
#[derive(Clone, Debug, Default)]
pub struct CacheOptions {
    pub from: Vec<CacheRef>,
    pub to: Option<CacheRef>,
}

impl CacheOptions {
    pub fn is_empty(&self) -> bool {
        self.from.is_empty() && self.to.is_none()
    }
}

/// One cache repository, as `--cache-from`/`--cache-to` name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRef {
    /// The repository entries are in (a tag or digest in the flag is not
    /// used: each entry has its own tag).
    pub repo: Reference,
    /// buildx's `mode=max`: also write entries of layers in no output
    /// (earlier stages). The default, `min`, writes those of the images
    /// built.
    pub max: bool,
    /// buildx's `ignore-error=true`: a failed write is a warning. Writes
    /// fail the build otherwise.
    pub ignore_error: bool,
}

impl CacheRef {
    /// Parses `REF` or buildx's `type=registry,ref=REF[,mode=min|max]
    /// [,ignore-error=true|false]`.
    pub fn parse(s: &str) -> std::result::Result<CacheRef, String> {
        let s = s.trim();
        if !s.contains('=') {
            return Ok(CacheRef {
                repo: parse_repo(s)?,
                max: false,
                ignore_error: false,
            });
        }
        let (mut repo, mut max, mut ignore_error) = (None, false, false);
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected key=value"))?;
            match k.trim() {
                "type" if v == "registry" => {}
                "type" => {
                    return Err(format!(
                        "cache type {v:?} is not supported (only type=registry)"
                    ));
                }
                "ref" => repo = Some(parse_repo(v)?),
                "mode" => {
                    max = match v {
                        "min" => false,
                        "max" => true,
                        _ => return Err(format!("mode={v}: expected min or max")),
                    }
                }
                "ignore-error" => {
                    ignore_error = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("ignore-error={v}: expected true or false")),
                    }
                }
                // Options other cache exporters take that mean nothing
                // here (entries are never compressed again, never
                // re-encoded).
                "compression" | "compression-level" | "force-compression" | "oci-mediatypes"
                | "image-manifest" => {}
                other => return Err(format!("unknown cache option {other:?}")),
            }
        }
        Ok(CacheRef {
            repo: repo.ok_or("missing ref=REPOSITORY")?,
            max,
            ignore_error,
        })
    }
}

fn parse_repo(s: &str) -> std::result::Result<Reference, String> {
    let r = Reference::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(Reference {
        tag: None,
        digest: None,
        ..r
    })
}

/// The tag of `key`'s entry.
pub fn entry_tag(key: &Digest) -> String {
    format!("{TAG_PREFIX}{}", key.hex())
}

/// The descriptor of the empty config every entry has.
fn empty_config() -> Descriptor {
    Descriptor {
        artifact_type: None,
        media_type: EMPTY_TYPE.into(),
        digest: Digest::of(EMPTY),
        size: EMPTY.len() as u64,
        platform: None,
        annotations: None,
    }
}

/// The bytes of `key`'s entry for `layer`: the same on every machine.
pub fn entry_bytes(key: &Digest, layer: &LayerDesc) -> Vec<u8> {
    let mut annotations = BTreeMap::new();
    annotations.insert(A_DIFF_ID.to_string(), layer.diff_id.oci());
    annotations.insert(A_KEY.to_string(), key.oci());
    annotations.insert(A_SIZE.to_string(), layer.uncompressed_size.to_string());
    let doc = EntryOut {
        schema_version: 2,
        media_type: MT_MANIFEST,
        artifact_type: ARTIFACT_TYPE,
        config: empty_config(),
        layers: [Descriptor {
            artifact_type: None,
            media_type: layer.media_type.clone(),
            digest: layer.digest,
            size: layer.size,
            platform: None,
            annotations: Some(annotations),
        }],
    };
    serde_json::to_vec(&doc).expect("an entry serializes")
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryOut {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'static str,
    config: Descriptor,
    layers: [Descriptor; 1],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryIn {
    schema_version: u32,
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// The layer `bytes` say `key` has, if they are an entry of that key.
pub fn parse_entry(key: &Digest, bytes: &[u8]) -> std::result::Result<LayerDesc, String> {
    let e: EntryIn = serde_json::from_slice(bytes).map_err(|e| format!("not an entry: {e}"))?;
    if e.schema_version != 2 || e.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err("not an imgbuild step entry".into());
    }
    if e.config.digest != Digest::of(EMPTY) {
        return Err("its config is not the empty config".into());
    }
    let [layer] = &e.layers[..] else {
        return Err(format!("it has {} layers, not 1", e.layers.len()));
    };
    if !layer.media_type.contains(".layer.") {
        return Err(format!("{:?} is not a layer media type", layer.media_type));
    }
    let a = layer.annotations.clone().unwrap_or_default();
    let get = |k: &str| a.get(k).ok_or_else(|| format!("annotation {k} is missing"));
    let said = Digest::parse_oci(get(A_KEY)?).ok_or("its key is not a digest")?;
    if said != *key {
        return Err(format!("it is the entry of another key ({said})"));
    }
    Ok(LayerDesc {
        digest: layer.digest,
        diff_id: Digest::parse_oci(get(A_DIFF_ID)?).ok_or("its diff_id is not a digest")?,
        size: layer.size,
        media_type: layer.media_type.clone(),
        uncompressed_size: get(A_SIZE)?
            .parse()
            .map_err(|_| "its uncompressed size is not a number")?,
    })
}

/// `key`'s entry in `repo`: the layer it names, or `None` for no entry.
/// An entry that is not one (or not this key's) is an error saying why.
pub fn lookup(client: &Client, repo: &Reference, key: &Digest) -> Result<Option<LayerDesc>> {
    if is_bad(repo, key) {
        return Ok(None);
    }
    let Some(bytes) = get_entry(client, repo, key)? else {
        return Ok(None);
    };
    parse_entry(key, &bytes)
        .map(Some)
        .map_err(|why| Error::Other(format!("cache entry {repo}:{}: {why}", entry_tag(key))))
}

/// The bytes of the entry tagged for `key` in `repo`, if there is one
/// (one GET; an entry bigger than any entry is refused).
fn get_entry(client: &Client, repo: &Reference, key: &Digest) -> Result<Option<Vec<u8>>> {
    let tag = entry_tag(key);
    let r = Reference {
        tag: Some(tag.clone()),
        ..repo.clone()
    };
    let Some((bytes, _, _)) = client.get_manifest(&r)? else {
        return Ok(None);
    };
    if bytes.len() as u64 > MAX_ENTRY {
        return Err(Error::Other(format!(
            "cache entry {repo}:{tag} is {} bytes, too big to be one",
            bytes.len()
        )));
    }
    Ok(Some(bytes))
}

/// Downloads the layer of an entry into the store and checks it: its
/// digest as it arrives (bytes that do not match are never stored), then
/// the diff_id and size of what it decompresses to. A blob whose digest
/// matches is what it says it is and stays; an entry that lies about its
/// diff_id or size is an error (the step is then a miss).
pub fn fetch_layer(
    client: &Client,
    repo: &Reference,
    layer: &LayerDesc,
    store: &Store,
) -> Result<()> {
    client.fetch_blob(repo, &layer.digest, store)?;
    {
        let mut r = crate::layer::read::open_layer(
            &store.blob_path(&layer.digest),
            &layer.media_type,
            layer.uncompressed_size.saturating_add(1),
        )?;
        let (diff_id, n) = crate::store::verify::hash_copy(&mut r, &mut std::io::sink())
            .map_err(|e| Error::Other(format!("reading layer {}: {e}", layer.digest)))?;
        if diff_id != layer.diff_id || n != layer.uncompressed_size {
            return Err(Error::Other(format!(
                "layer {} decompresses to {n} bytes with diff_id {diff_id}, \
                 not the {} bytes with {} its entry says",
                layer.digest, layer.uncompressed_size, layer.diff_id
            )));
        }
        Ok(())
    }
}

/// A layer a registry cache holds that the store does not (yet): where it
/// is, and what its entry says it is.
#[derive(Clone, Debug)]
pub struct CacheLayer {
    pub repo: Reference,
    /// The step's key.
    pub key: Digest,
    pub layer: LayerDesc,
}

/// Entries (cache repository, key) found bad in this process: a build
/// that found one while building plans again without it.
static BAD: std::sync::Mutex<Vec<(String, Digest)>> = std::sync::Mutex::new(Vec::new());

fn is_bad(repo: &Reference, key: &Digest) -> bool {
    let repo = repo.to_string();
    BAD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|(r, k)| *r == repo && k == key)
}

/// The warning for an entry of `repo` that is not used: the step is a miss.
pub fn warn_unused(repo: &Reference, key: &Digest, e: &Error) {
    crate::progress::warning(&format!(
        "warning: cache {repo}: step {}: {e}; not used",
        key.short()
    ));
}

/// Downloads a hit's layer when a step needs its bytes (see
/// [`fetch_layer`]). Bytes that do not check out mark the entry bad and
/// give an [`Error::CorruptBlob`], so that the build plans again, with the
/// step a miss.
pub fn fetch_hit(client: &Client, hit: &CacheLayer, store: &Store) -> Result<()> {
    let key = &hit.key;
    fetch_layer(client, &hit.repo, &hit.layer, store).map_err(|e| {
        BAD.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((hit.repo.to_string(), *key));
        warn_unused(&hit.repo, key, &e);
        Error::CorruptBlob {
            path: store.blob_path(&hit.layer.digest),
            message: format!(
                "cache {}: the layer of step {} did not check out",
                hit.repo,
                key.short()
            ),
        }
    })
}

/// What writing entries did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExportStats {
    /// Entries written (the others were there already).
    pub entries_written: u64,
    pub entries_present: u64,
    pub blobs_uploaded: u64,
    pub bytes_uploaded: u64,
}

/// Whether `repo` holds `key`'s entry for `layer`, byte for byte (one
/// HEAD): then there is nothing to write.
pub fn has_entry(
    client: &Client,
    repo: &Reference,
    key: &Digest,
    layer: &LayerDesc,
) -> Result<bool> {
    holds(client, repo, key, &entry_bytes(key, layer))
}

/// Whether the entry tagged for `key` in `repo` is `bytes`.
fn holds(client: &Client, repo: &Reference, key: &Digest, bytes: &[u8]) -> Result<bool> {
    let tag = entry_tag(key);
    let r = Reference {
        tag: Some(tag.clone()),
        ..repo.clone()
    };
    let scopes = [format!("repository:{}:pull,push", repo.repository)];
    let path = format!("/v2/{}/manifests/{tag}", repo.repository);
    let head = client.send(
        &r,
        "HEAD",
        &path,
        &scopes,
        &[("Accept", MT_MANIFEST.to_string())],
        &Body::Empty,
    )?;
    let have = head
        .header("docker-content-digest")
        .and_then(Digest::parse_oci);
    Ok(head.status == 200 && have == Some(Digest::of(bytes)))
}

/// Puts the empty config entries share into `repo`, if it is not there
/// (the registry refuses a manifest whose config it does not hold).
pub fn put_config(
    client: &Client,
    store: &Store,
    repo: &Reference,
    stats: &mut ExportStats,
) -> Result<()> {
    let config = empty_config();
    if let Some(loc) = client.start_upload(repo, &config.digest, None)? {
        let d = store.put_blob_bytes(EMPTY)?;
        stats.bytes_uploaded +=
            client.upload(repo, &d, &store.blob_path(&d), config.size, None, loc)?;
        stats.blobs_uploaded += 1;
    }
    Ok(())
}

/// Writes `key`'s entry for `layer` into `repo` (after [`put_config`]).
/// The layer goes up first: mounted from `mount_from` (a repository of the
/// same registry that has it, such as the image just pushed), else
/// uploaded from the store as it is (checked, never compressed again).
pub fn put_entry(
    client: &Client,
    store: &Store,
    repo: &Reference,
    key: &Digest,
    layer: &LayerDesc,
    mount_from: Option<&str>,
    stats: &mut ExportStats,
) -> Result<()> {
    if let Some(loc) = client.start_upload(repo, &layer.digest, mount_from)? {
        store.verify_blob(&layer.digest, layer.size)?;
        let n = client.upload(
            repo,
            &layer.digest,
            &store.blob_path(&layer.digest),
            layer.size,
            mount_from,
            loc,
        )?;
        if n > 0 {
            stats.blobs_uploaded += 1;
            stats.bytes_uploaded += n;
        }
    }
    let bytes = entry_bytes(key, layer);
    client.put_manifest(repo, &entry_tag(key), &bytes, MT_MANIFEST)?;
    stats.entries_written += 1;
    stats.bytes_uploaded += bytes.len() as u64;
    Ok(())
}

/// The bytes of `key`'s data entry holding `data` of `media_type`: the
/// same on every machine.
pub fn data_entry_bytes(key: &Digest, media_type: &str, data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let mut annotations = BTreeMap::new();
    annotations.insert(A_KEY.to_string(), key.oci());
    let doc = DataEntryOut {
        schema_version: 2,
        media_type: MT_MANIFEST,
        artifact_type: DATA_ARTIFACT_TYPE,
        config: empty_config(),
        layers: [DataDesc {
            media_type: media_type.to_string(),
            digest: Digest::of(data),
            size: data.len() as u64,
            data: (data.len() <= MAX_INLINE)
                .then(|| base64::engine::general_purpose::STANDARD.encode(data)),
            annotations,
        }],
    };
    serde_json::to_vec(&doc).expect("an entry serializes")
}

#[derive(serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataDesc {
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DataEntryOut {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'static str,
    config: Descriptor,
    layers: [DataDesc; 1],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataEntryIn {
    schema_version: u32,
    artifact_type: Option<String>,
    layers: Vec<DataDesc>,
}

/// What `bytes`, `key`'s data entry, says: the blob's descriptor, and its
/// bytes when they are inline (checked against the digest).
fn parse_data_entry(
    key: &Digest,
    media_type: &str,
    bytes: &[u8],
) -> std::result::Result<(Digest, u64, Option<Vec<u8>>), String> {
    use base64::Engine as _;
    let e: DataEntryIn = serde_json::from_slice(bytes).map_err(|e| format!("not an entry: {e}"))?;
    if e.schema_version != 2 || e.artifact_type.as_deref() != Some(DATA_ARTIFACT_TYPE) {
        return Err("not an imgbuild data entry".into());
    }
    let [d] = &e.layers[..] else {
        return Err(format!("it has {} blobs, not 1", e.layers.len()));
    };
    if d.media_type != media_type {
        return Err(format!("it holds {}, not {media_type}", d.media_type));
    }
    let said = d
        .annotations
        .get(A_KEY)
        .and_then(|k| Digest::parse_oci(k))
        .ok_or("its key is missing")?;
    if said != *key {
        return Err(format!("it is the entry of another key ({said})"));
    }
    if d.size > MAX_DATA {
        return Err(format!("its blob is {} bytes, too big", d.size));
    }
    let inline = match &d.data {
        None => None,
        Some(b64) => {
            let data = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("its inline data is not base64: {e}"))?;
            if Digest::of(&data) != d.digest || data.len() as u64 != d.size {
                return Err("its inline data does not match its digest".into());
            }
            Some(data)
        }
    };
    Ok((d.digest, d.size, inline))
}

/// `key`'s data in `repo` (of `media_type`), checked against its digest;
/// `None` for no entry. One GET when the data is inline, else a second for
/// the blob (kept in the store, checked as it arrives).
pub fn lookup_data(
    client: &Client,
    store: &Store,
    repo: &Reference,
    key: &Digest,
    media_type: &str,
) -> Result<Option<Vec<u8>>> {
    let Some(bytes) = get_entry(client, repo, key)? else {
        return Ok(None);
    };
    let bad = |why: String| Error::Other(format!("cache entry {repo}:{}: {why}", entry_tag(key)));
    let (digest, size, inline) = parse_data_entry(key, media_type, &bytes).map_err(bad)?;
    if let Some(data) = inline {
        return Ok(Some(data));
    }
    client.fetch_blob(repo, &digest, store)?;
    let data = store.read_blob_verified(&digest)?;
    if data.len() as u64 != size {
        return Err(bad(format!("its blob is {} bytes, not {size}", data.len())));
    }
    Ok(Some(data))
}

/// Whether `repo` holds `key`'s data entry for `data`, byte for byte.
pub fn has_data(
    client: &Client,
    repo: &Reference,
    key: &Digest,
    media_type: &str,
    data: &[u8],
) -> Result<bool> {
    holds(client, repo, key, &data_entry_bytes(key, media_type, data))
}

/// Writes `key`'s data entry into `repo` (after [`put_config`]): the
/// small blob, then the entry.
pub fn put_data(
    client: &Client,
    store: &Store,
    repo: &Reference,
    key: &Digest,
    media_type: &str,
    data: &[u8],
    stats: &mut ExportStats,
) -> Result<()> {
    let bytes = data_entry_bytes(key, media_type, data);
    let d = store.put_blob_bytes(data)?;
    if let Some(loc) = client.start_upload(repo, &d, None)? {
        stats.bytes_uploaded +=
            client.upload(repo, &d, &store.blob_path(&d), data.len() as u64, None, loc)?;
        stats.blobs_uploaded += 1;
    }
    client.put_manifest(repo, &entry_tag(key), &bytes, MT_MANIFEST)?;
    stats.entries_written += 1;
    stats.bytes_uploaded += bytes.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> LayerDesc {
        LayerDesc {
            digest: Digest::of(b"blob"),
            diff_id: Digest::of(b"tar"),
            size: 4,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            uncompressed_size: 3,
        }
    }

    #[test]
    fn entries_round_trip_and_are_the_same_everywhere() {
        let key = Digest::of(b"key");
        let bytes = entry_bytes(&key, &layer());
        assert_eq!(bytes, entry_bytes(&key, &layer()));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(' ') && !text.contains('\n'), "{text}");
        assert!(text.contains(ARTIFACT_TYPE));
        assert_eq!(parse_entry(&key, &bytes).unwrap(), layer());
        assert!(entry_tag(&key).len() <= 128);
    }

    #[test]
    fn an_entry_of_another_key_or_shape_is_refused() {
        let key = Digest::of(b"key");
        let bytes = entry_bytes(&key, &layer());
        let err = parse_entry(&Digest::of(b"other"), &bytes).unwrap_err();
        assert!(err.contains("another key"), "{err}");
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["layers"][0]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let err = parse_entry(&key, &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("not a layer"), "{err}");
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["artifactType"] = "application/vnd.other".into();
        assert!(parse_entry(&key, &serde_json::to_vec(&v).unwrap()).is_err());
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let l = v["layers"][0].clone();
        v["layers"] = serde_json::json!([l, l]);
        let err = parse_entry(&key, &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("2 layers"), "{err}");
        assert!(parse_entry(&key, b"{}").is_err());
    }

    #[test]
    fn cache_refs_take_buildx_syntax() {
        let plain = CacheRef::parse("127.0.0.1:5000/team/cache").unwrap();
        assert_eq!(plain.repo.repository, "team/cache");
        assert!(!plain.max && !plain.ignore_error);
        let bx = CacheRef::parse(
            "type=registry,ref=127.0.0.1:5000/team/cache:buildcache,mode=max,ignore-error=true",
        )
        .unwrap();
        assert_eq!(bx.repo, plain.repo, "the tag is not used");
        assert!(bx.max && bx.ignore_error);
        for bad in [
            "type=local,dest=/tmp/x",
            "type=registry",
            "type=registry,ref=r/c,mode=all",
            "type=registry,ref=r/c,color=red",
        ] {
            assert!(CacheRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_entries_round_trip_and_are_checked() {
        let key = Digest::of(b"scan");
        let data = br#"{"interpreter":"/usr/bin/python3.11"}"#;
        let bytes = data_entry_bytes(&key, MT_PYSCAN, data);
        assert_eq!(bytes, data_entry_bytes(&key, MT_PYSCAN, data));
        let (d, n, inline) = parse_data_entry(&key, MT_PYSCAN, &bytes).unwrap();
        assert_eq!((d, n), (Digest::of(data), data.len() as u64));
        assert_eq!(inline.as_deref(), Some(&data[..]));
        let err = parse_data_entry(&key, MT_PYLOCK, &bytes).unwrap_err();
        assert!(err.contains("not application/vnd.imgbuild.pylock"), "{err}");
        let err = parse_data_entry(&Digest::of(b"x"), MT_PYSCAN, &bytes).unwrap_err();
        assert!(err.contains("another key"), "{err}");
        // Inline bytes that are not what the digest says are refused.
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        use base64::Engine as _;
        v["layers"][0]["data"] = base64::engine::general_purpose::STANDARD
            .encode(br#"{"interpreter":"/usr/bin/python3.99"}"#)
            .into();
        let err = parse_data_entry(&key, MT_PYSCAN, &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        // A step entry is not a data entry.
        let step = entry_bytes(&key, &layer());
        assert!(parse_data_entry(&key, MT_PYSCAN, &step).is_err());
        // Big data is left out of the entry (read as a blob).
        let big = vec![b'x'; MAX_INLINE + 1];
        let (_, _, inline) =
            parse_data_entry(&key, MT_PYLOCK, &data_entry_bytes(&key, MT_PYLOCK, &big)).unwrap();
        assert!(inline.is_none());
    }
}

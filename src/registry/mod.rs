//! Registry I/O over the OCI distribution API: references, auth, pulls of
//! bases (manifests and configs; layers only when their bytes are needed),
//! pushes and existence checks.

pub mod auth;
pub mod cache;
pub mod client;
pub mod reference;
pub mod referrers;

pub use client::{Client, ClientOptions};
pub use reference::{MAX_NAME, Reference};

use crate::digest::Digest;
pub use crate::error::RegistryErrorKind;
use crate::error::{Error, RegistryStatus, Result};
use crate::oci::Platform;
use crate::oci::types::*;
use crate::store::Store;
use rayon::prelude::*;

/// One platform's image in a registry: manifest and config, no layer bytes.
#[derive(Clone, Debug)]
pub struct RemoteImage {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

fn platform_matches(p: &PlatformJson, want: &Platform) -> bool {
    p.os == want.os
        && p.architecture == want.arch
        && (want.variant.is_none() || p.variant == want.variant)
}

/// A registry failure of `kind` about `r`'s repository.
fn failure(r: &Reference, kind: RegistryErrorKind, http: u16, message: String) -> Error {
    Error::Registry {
        message,
        status: RegistryStatus::new(kind, http, &r.registry, &r.repository),
    }
}

fn parse<T: serde::de::DeserializeOwned>(r: &Reference, what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        failure(
            r,
            RegistryErrorKind::Protocol,
            200,
            format!("{r}: {what} is not valid: {e}"),
        )
    })
}

/// Resolves `r` to one image per platform, fetching (and verifying) the
/// manifests and configs; layers stay in the registry.
pub fn resolve(
    client: &Client,
    store: &Store,
    r: &Reference,
    platforms: &[Platform],
) -> Result<Vec<RemoteImage>> {
    let (bytes, mt, digest) = client.get_manifest(r)?.ok_or_else(|| {
        failure(
            r,
            RegistryErrorKind::NotFound,
            404,
            format!("{r}: not found (check the repository and tag)"),
        )
    })?;
    let is_index = mt == MT_INDEX || mt == MT_DOCKER_LIST;
    let index: Option<Index> = if is_index {
        Some(parse(r, "the index", &bytes)?)
    } else {
        None
    };
    let mut out = Vec::new();
    for p in platforms {
        let (m_bytes, m_digest) = match &index {
            Some(ix) => {
                let d = ix
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|x| platform_matches(x, p)))
                    .ok_or_else(|| {
                        let have: Vec<String> = ix
                            .manifests
                            .iter()
                            .filter_map(|d| {
                                d.platform
                                    .as_ref()
                                    .map(|x| format!("{}/{}", x.os, x.architecture))
                            })
                            .collect();
                        failure(
                            r,
                            RegistryErrorKind::NotFound,
                            404,
                            format!("{r}: no {p} image (it has: {})", have.join(", ")),
                        )
                    })?;
                let pinned = Reference {
                    digest: Some(d.digest),
                    tag: None,
                    ..r.clone()
                };
                let (b, _, dg) = client.get_manifest(&pinned)?.ok_or_else(|| {
                    failure(
                        r,
                        RegistryErrorKind::NotFound,
                        404,
                        format!("{pinned}: listed in the index but not found"),
                    )
                })?;
                (b, dg)
            }
            None => (bytes.clone(), digest),
        };
        let manifest: Manifest = parse(r, "the manifest", &m_bytes)?;
        client.fetch_blob(r, &manifest.config.digest, store)?;
        let config: ImageConfig = parse(
            r,
            "the image config",
            &store.read_blob(&manifest.config.digest)?,
        )?;
        if config.os != p.os || config.architecture != p.arch {
            return Err(failure(
                r,
                RegistryErrorKind::Protocol,
                200,
                format!(
                    "{r}: the image is {}/{}, but {p} was asked for",
                    config.os, config.architecture
                ),
            ));
        }
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(failure(
                r,
                RegistryErrorKind::Protocol,
                200,
                format!("{r}: manifest and config disagree on the number of layers"),
            ));
        }
        out.push(RemoteImage {
            manifest_digest: m_digest,
            manifest,
            config,
        });
    }
    Ok(out)
}

/// Whether `r` exists with every platform asked for (any image when none is).
pub fn exists(client: &Client, r: &Reference, platforms: &[Platform]) -> Result<bool> {
    let Some((bytes, mt, _)) = client.get_manifest(r)? else {
        return Ok(false);
    };
    if platforms.is_empty() {
        return Ok(true);
    }
    if mt == MT_INDEX || mt == MT_DOCKER_LIST {
        let ix: Index = parse(r, "the index", &bytes)?;
        return Ok(platforms.iter().all(|p| {
            ix.manifests
                .iter()
                .any(|d| d.platform.as_ref().is_some_and(|x| platform_matches(x, p)))
        }));
    }
    let m: Manifest = parse(r, "the manifest", &bytes)?;
    let scopes = [format!("repository:{}:pull", r.repository)];
    let path = format!("/v2/{}/blobs/{}", r.repository, m.config.digest.oci());
    let mut resp = client.send(r, "GET", &path, &scopes, &[], &client::Body::Empty)?;
    if resp.status != 200 {
        return Err(client::registry_error(
            &r.registry,
            &r.repository,
            "reading the image config",
            resp.status,
            "",
        ));
    }
    let cfg: ImageConfig = parse(r, "the image config", &resp.bytes(16 << 20)?)?;
    Ok(platforms.len() == 1 && cfg.os == platforms[0].os && cfg.architecture == platforms[0].arch)
}

/// An image to push: where, under which tags, its top document and blobs,
/// and the registry image its base layers came from.
pub struct PushRequest<'a> {
    pub target: &'a Reference,
    pub tags: &'a [String],
    pub top: &'a Descriptor,
    pub blobs: &'a [Descriptor],
    pub base: Option<&'a Reference>,
    /// Layers of registry cache hits the store does not hold, by digest:
    /// mounted from their cache repository (same registry), else fetched
    /// from it, checked, and uploaded.
    pub cached: &'a std::collections::BTreeMap<Digest, cache::CacheLayer>,
}

/// What a push did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PushStats {
    pub blobs_uploaded: u64,
    pub blobs_present: u64,
    pub bytes_uploaded: u64,
}

/// Pushes an image whose documents are all in the store. Blobs missing from
/// the store are mounted from (or fetched through) `base`. Manifests go up
/// only after every blob is confirmed, the tags last.
pub fn push(
    client: &Client,
    store: &Store,
    req: &PushRequest,
    parallel: usize,
) -> Result<PushStats> {
    let PushRequest {
        target,
        tags,
        top,
        blobs,
        base,
        cached,
    } = *req;
    let is_doc = |d: &Descriptor| {
        matches!(
            d.media_type.as_str(),
            MT_MANIFEST | MT_INDEX | MT_DOCKER_MANIFEST | MT_DOCKER_LIST
        )
    };
    let files: Vec<&Descriptor> = blobs.iter().filter(|d| !is_doc(d)).collect();
    // Where a blob the store lacks can be mounted from: its cache
    // repository, else the base's, on the target's registry.
    let mount_from = |d: &Digest| {
        cached
            .get(d)
            .map(|c| &c.repo)
            .or(base)
            .filter(|b| b.registry == target.registry)
            .map(|b| b.repository.clone())
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parallel.max(1))
        .build()
        .map_err(|e| Error::Other(format!("starting upload threads: {e}")))?;
    let repo = format!("{}/{}", target.registry, target.repository);
    let all = crate::progress::start(&format!("[{repo}] push blobs"), 0);
    let total: u64 = files.iter().map(|d| d.size).sum();
    all.set_total(total);
    let done = std::sync::Mutex::new((0u64, 0u64));
    let tick = |bytes: u64| {
        let mut g = done.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        g.1 += bytes;
        all.items(g.0, files.len() as u64);
        all.set(g.1);
    };
    all.items(0, files.len() as u64);
    let results: Vec<(u64, bool)> = pool.install(|| {
        files
            .par_iter()
            .map(|d| {
                let task =
                    crate::progress::start(&format!("[{repo}] push {}", d.digest.short()), d.size);
                // HEAD, mount, or a new upload session; bytes only when needed.
                let mount_from = mount_from(&d.digest);
                let Some(location) =
                    client.start_upload(target, &d.digest, mount_from.as_deref())?
                else {
                    task.finish("already there");
                    tick(d.size);
                    return Ok((0, false));
                };
                // Never send bad bytes: the blob is hashed before the
                // upload starts (a bad one is removed; a base's layer is
                // fetched again, another is rebuilt by building again).
                let mut bad = None;
                let good = store.blob_ok(&d.digest, d.size)
                    && match store.verify_blob(&d.digest, d.size) {
                        Ok(()) => true,
                        Err(e @ Error::CorruptBlob { .. }) => {
                            bad = Some(e);
                            false
                        }
                        Err(e) => return Err(e),
                    };
                if !good && let Some(hit) = cached.get(&d.digest) {
                    // A cache hit's layer on another registry.
                    task.message("fetching from the cache");
                    cache::fetch_hit(client, hit, store)?;
                } else if !good {
                    // A base layer never downloaded that could not be
                    // mounted, or a bad one the base has.
                    let Some(b) = base else {
                        return Err(bad.unwrap_or_else(|| {
                            Error::Other(format!(
                                "blob {} is neither in the store nor in a base",
                                d.digest
                            ))
                        }));
                    };
                    task.message("fetching from the base");
                    if let Err(e) = client.fetch_blob(b, &d.digest, store) {
                        return Err(bad.unwrap_or(e));
                    }
                }
                task.message("uploading");
                let n = client.upload(
                    target,
                    &d.digest,
                    &store.blob_path(&d.digest),
                    d.size,
                    mount_from.as_deref(),
                    location,
                )?;
                task.set(d.size);
                task.finish(&if n > 0 {
                    format!("uploaded {}", crate::progress::human(n))
                } else {
                    "mounted".to_string()
                });
                tick(d.size);
                Ok((n, n > 0))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    all.finish(&format!("{} blob(s)", files.len()));
    let mut stats = PushStats::default();
    for (n, uploaded) in results {
        if uploaded {
            stats.blobs_uploaded += 1;
            stats.bytes_uploaded += n;
        } else {
            stats.blobs_present += 1;
        }
    }
    crate::util::fault::point("push-manifest");
    // Per-platform manifests of an index first (by digest), then the tags.
    if top.media_type == MT_INDEX || top.media_type == MT_DOCKER_LIST {
        for d in blobs
            .iter()
            .filter(|d| d.media_type == MT_MANIFEST || d.media_type == MT_DOCKER_MANIFEST)
        {
            client.put_manifest(
                target,
                &d.digest.oci(),
                &store.read_blob_verified(&d.digest)?,
                &d.media_type,
            )?;
        }
    }
    let top_bytes = store.read_blob_verified(&top.digest)?;
    let task = crate::progress::start(&format!("[{repo}] push manifest and tags"), 0);
    for t in tags {
        client.put_manifest(target, t, &top_bytes, &top.media_type)?;
    }
    task.finish(&tags.join(", "));
    Ok(stats)
}

/// A JSON description of an image in a registry (for `inspect`).
pub fn describe(client: &Client, r: &Reference) -> Result<serde_json::Value> {
    let (bytes, mt, digest) = client.get_manifest(r)?.ok_or_else(|| {
        failure(
            r,
            RegistryErrorKind::NotFound,
            404,
            format!("{r}: not found (check the repository and tag)"),
        )
    })?;
    let doc: serde_json::Value = parse(r, "the manifest", &bytes)?;
    let mut out = serde_json::json!({"reference": r.to_string(), "media_type": mt, "digest": digest, "manifest": doc});
    if mt == MT_MANIFEST || mt == MT_DOCKER_MANIFEST {
        let m: Manifest = parse(r, "the manifest", &bytes)?;
        let scopes = [format!("repository:{}:pull", r.repository)];
        let path = format!("/v2/{}/blobs/{}", r.repository, m.config.digest.oci());
        let mut resp = client.send(r, "GET", &path, &scopes, &[], &client::Body::Empty)?;
        if resp.status == 200 {
            let cfg = resp.bytes(16 << 20)?;
            if Digest::of(&cfg) == m.config.digest {
                out["config"] = parse(r, "the image config", &cfg)?;
            }
        }
    }
    Ok(out)
}

//! `--label` and `--annotation` on a built image: the config gets the
//! labels (after the Dockerfile's or definition's own), manifests, the
//! index and their descriptors get the annotations, in buildx's syntax.
//! New blobs go to the store; the image's digests change accordingly.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::Platform;
use crate::oci::types::*;
use crate::output::ImageOut;
use crate::store::Store;
use std::collections::BTreeMap;

/// Where an annotation goes (buildx's `TYPE:` prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotationTarget {
    /// Each platform's manifest (the default).
    Manifest,
    /// The image index (several platforms).
    Index,
    /// The manifest's descriptor: in the index, or in an OCI layout's
    /// `index.json` for one platform.
    ManifestDescriptor,
    /// The index's descriptor in an OCI layout's `index.json`.
    IndexDescriptor,
}

/// One `--annotation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub targets: Vec<AnnotationTarget>,
    /// `[os/arch]`: only that platform's manifest (or descriptor).
    pub platform: Option<Platform>,
    pub key: String,
    pub value: String,
}

impl Annotation {
    /// buildx's form: `KEY=VALUE`, or `TYPE[,TYPE…][[PLATFORM]]:KEY=VALUE`
    /// with TYPE one of `manifest`, `index`, `manifest-descriptor`,
    /// `index-descriptor`.
    pub fn parse(s: &str) -> std::result::Result<Annotation, String> {
        let (k, value) = s
            .split_once('=')
            .ok_or_else(|| format!("--annotation {s:?} is not [TYPE:]KEY=VALUE"))?;
        let (prefix, key) = match k.split_once(':') {
            Some((p, key)) => (Some(p), key),
            None => (None, k),
        };
        if key.is_empty() {
            return Err(format!("--annotation {s:?} has an empty key"));
        }
        let mut targets = Vec::new();
        let mut platform = None;
        if let Some(p) = prefix {
            let types = match p.split_once('[') {
                Some((t, rest)) => {
                    let plat = rest.strip_suffix(']').ok_or_else(|| {
                        format!("--annotation {s:?}: a platform is written [os/arch]")
                    })?;
                    platform = Some(
                        Platform::parse(plat).map_err(|m| format!("--annotation {s:?}: {m}"))?,
                    );
                    t
                }
                None => p,
            };
            for t in types.split(',').filter(|t| !t.is_empty()) {
                targets.push(match t {
                    "manifest" => AnnotationTarget::Manifest,
                    "index" => AnnotationTarget::Index,
                    "manifest-descriptor" => AnnotationTarget::ManifestDescriptor,
                    "index-descriptor" => AnnotationTarget::IndexDescriptor,
                    other => {
                        return Err(format!(
                            "--annotation {s:?}: {other:?} is not one of manifest, index, manifest-descriptor, index-descriptor"
                        ));
                    }
                });
            }
        }
        if targets.is_empty() {
            targets.push(AnnotationTarget::Manifest);
        }
        Ok(Annotation {
            targets,
            platform,
            key: key.to_string(),
            value: value.to_string(),
        })
    }

    fn applies(&self, t: AnnotationTarget, platform: Option<&str>) -> bool {
        self.targets.contains(&t)
            && match (&self.platform, platform) {
                (None, _) => true,
                (Some(want), Some(p)) => Platform::parse(p).is_ok_and(|p| &p == want),
                (Some(_), None) => false,
            }
    }
}

/// Gives `img` the labels and annotations; nothing changes when both are
/// empty. `docker_media_types`: Docker's schema 2 has no annotations.
pub fn apply(
    store: &Store,
    img: &mut ImageOut,
    labels: &BTreeMap<String, String>,
    annotations: &[Annotation],
    docker_media_types: bool,
) -> Result<()> {
    if labels.is_empty() && annotations.is_empty() {
        return Ok(());
    }
    if docker_media_types && !annotations.is_empty() {
        return Err(Error::Usage(
            "--annotation needs OCI media types: Docker's schema 2 manifests have no annotations (drop --media-types docker)".into(),
        ));
    }
    let several = img.platforms.len() > 1;
    for a in annotations {
        if !several && a.targets.contains(&AnnotationTarget::Index) {
            return Err(Error::Usage(format!(
                "--annotation index:{}: a one-platform image has no index; build several platforms or use manifest:",
                a.key
            )));
        }
    }
    let mut replaced: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    for p in &mut img.platforms {
        let plat = Some(p.platform.as_str());
        let old_manifest = p.manifest_digest;
        let old_config = p.config_digest;
        let mut manifest: serde_json::Value = read_json(store, &old_manifest)?;
        if !labels.is_empty() {
            let mut config: serde_json::Value = read_json(store, &old_config)?;
            let c = &mut config["config"];
            if !c.is_object() {
                *c = serde_json::json!({});
            }
            let l = &mut c["Labels"];
            if !l.is_object() {
                *l = serde_json::json!({});
            }
            for (k, v) in labels {
                l[k] = serde_json::Value::String(v.clone());
            }
            let bytes = serde_json::to_vec(&config).expect("json");
            let d = store.put_blob_bytes(&bytes)?;
            manifest["config"]["digest"] = serde_json::Value::String(d.to_string());
            manifest["config"]["size"] = serde_json::json!(bytes.len());
            let mt = manifest["config"]["mediaType"]
                .as_str()
                .unwrap_or(MT_CONFIG)
                .to_string();
            replaced.insert(
                old_config,
                Descriptor {
                    artifact_type: None,
                    media_type: mt,
                    digest: d,
                    size: bytes.len() as u64,
                    platform: None,
                    annotations: None,
                },
            );
            p.config_digest = d;
            p.config
                .config
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(labels.clone());
        }
        let own: Vec<&Annotation> = annotations
            .iter()
            .filter(|a| a.applies(AnnotationTarget::Manifest, plat))
            .collect();
        if !own.is_empty() {
            let m = &mut manifest["annotations"];
            if !m.is_object() {
                *m = serde_json::json!({});
            }
            for a in own {
                m[&a.key] = serde_json::Value::String(a.value.clone());
            }
        }
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let d = store.put_blob_bytes(&bytes)?;
        p.manifest_digest = d;
        p.manifest.digest = d;
        p.manifest.size = bytes.len() as u64;
        for a in annotations
            .iter()
            .filter(|a| a.applies(AnnotationTarget::ManifestDescriptor, plat))
        {
            p.manifest
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(a.key.clone(), a.value.clone());
        }
        replaced.insert(
            old_manifest,
            Descriptor {
                artifact_type: None,
                platform: None,
                ..p.manifest.clone()
            },
        );
    }
    if several {
        let old = img.top.digest;
        let mut index: serde_json::Value = read_json(store, &old)?;
        index["manifests"] = serde_json::to_value(
            img.platforms
                .iter()
                .map(|p| p.manifest.clone())
                .collect::<Vec<_>>(),
        )
        .expect("json");
        let own: Vec<&Annotation> = annotations
            .iter()
            .filter(|a| a.applies(AnnotationTarget::Index, None))
            .collect();
        if !own.is_empty() {
            let m = &mut index["annotations"];
            if !m.is_object() {
                *m = serde_json::json!({});
            }
            for a in own {
                m[&a.key] = serde_json::Value::String(a.value.clone());
            }
        }
        let bytes = serde_json::to_vec(&index).expect("json");
        let d = store.put_blob_bytes(&bytes)?;
        img.top.digest = d;
        img.top.size = bytes.len() as u64;
        replaced.insert(old, img.top.clone());
    } else {
        let m = &img.platforms[0].manifest;
        img.top = Descriptor {
            artifact_type: None,
            platform: None,
            ..m.clone()
        };
    }
    let top_target = match several {
        true => AnnotationTarget::IndexDescriptor,
        false => AnnotationTarget::ManifestDescriptor,
    };
    if several {
        for a in annotations.iter().filter(|a| a.applies(top_target, None)) {
            img.top
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(a.key.clone(), a.value.clone());
        }
    }
    for b in &mut img.blobs {
        if let Some(n) = replaced.get(&b.digest) {
            *b = Descriptor {
                artifact_type: None,
                annotations: None,
                ..n.clone()
            };
        }
    }
    Ok(())
}

fn read_json(store: &Store, d: &Digest) -> Result<serde_json::Value> {
    let bytes = store.read_blob(d)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(store.blob_path(d), format!("not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_in_buildx_syntax() {
        let a = Annotation::parse("org.example.a=b=c").unwrap();
        assert_eq!(a.targets, vec![AnnotationTarget::Manifest]);
        assert_eq!((a.key.as_str(), a.value.as_str()), ("org.example.a", "b=c"));
        let a = Annotation::parse("index,manifest-descriptor:k=v").unwrap();
        assert_eq!(
            a.targets,
            vec![
                AnnotationTarget::Index,
                AnnotationTarget::ManifestDescriptor
            ]
        );
        let a = Annotation::parse("manifest[linux/arm64]:k=https://x").unwrap();
        assert_eq!(a.platform, Some(Platform::parse("linux/arm64").unwrap()));
        assert_eq!(a.value, "https://x");
        assert!(Annotation::parse("nope:k=v").is_err());
        assert!(Annotation::parse("k").is_err());
        assert!(Annotation::parse("manifest[linux/amd64:k=v").is_err());
    }
}

//! An assembled image: its manifests (or index), configs and every blob
//! it needs, as outputs write it and the JSON result describes it.

use crate::digest::Digest;
use crate::oci::types::{Descriptor, ImageConfig};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct LayerOut {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    /// "hit", "hit-registry" (found in a `--cache-from` cache), "miss" or
    /// "base".
    pub cache: &'static str,
    pub step: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlatformOut {
    pub platform: String,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<LayerOut>,
    #[serde(skip)]
    pub manifest: Descriptor,
    #[serde(skip)]
    pub config: ImageConfig,
}

#[derive(Clone, Debug)]
pub struct ImageOut {
    pub id: String,
    pub reference: String,
    pub tag: String,
    /// The manifest (one platform) or index (several) to tag.
    pub top: Descriptor,
    pub platforms: Vec<PlatformOut>,
    /// Every blob the image needs, in a stable order.
    pub blobs: Vec<Descriptor>,
    /// The registry image at the bottom of this image, if any: its layers
    /// may be mounted from there instead of uploaded.
    pub base_ref: Option<crate::registry::Reference>,
}

//! What the planners of the layer kinds share: the image being planned,
//! the layer at hand, and how a layer's step is finished.

use super::{Action, BasePlan, Chown, Env, ImagePlan, Step};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Location};
use crate::layer::ignore::IgnoreRules;
use crate::oci::types::ImageConfig;
use crate::spec::{ImageDef, Layer, LayerKind};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The image being planned: what each of its layers' planning reads.
pub(super) struct ImageCx<'a> {
    pub env: &'a Env<'a>,
    pub img: &'a ImageDef,
    /// The images planned before this one (its bases among them).
    pub done: &'a [ImagePlan],
    pub base: &'a BasePlan,
    /// The base's config per platform.
    pub base_configs: &'a [ImageConfig],
    /// What RUN steps stand on, per platform, before any step of this image.
    pub base_chain: &'a [Digest],
    pub rules: &'a IgnoreRules,
    /// The ignore rules, for notes.
    pub ignore_desc: &'a str,
    /// Where the image's last build record is, and the record once read.
    pub record_id: &'a Digest,
    pub previous: std::cell::OnceCell<Option<super::record::ImageRecord>>,
}

/// One layer of the image, with the owner it is made with.
pub(super) struct LayerCx<'a> {
    /// The layer, without a by-name owner around it.
    pub layer: Cow<'a, Layer>,
    /// `--chown=NAME`, looked up in the layers below when built.
    pub owner_name: Option<String>,
    pub chown: Option<Chown>,
    /// With an owner, the layers below decide what the layer holds (a
    /// name's ids, the folders it makes), so they are part of its key.
    pub below: Option<Digest>,
}

impl<'a> LayerCx<'a> {
    pub fn new(l: &'a Layer, base_chain: &[Digest], steps: &[Step]) -> Self {
        let (layer, owner_name) = match &l.kind {
            LayerKind::NamedOwner { owner, inner } => (
                Cow::Owned(Layer {
                    loc: l.loc.clone(),
                    kind: (**inner).clone(),
                }),
                Some(owner.clone()),
            ),
            _ => (Cow::Borrowed(l), None),
        };
        let chown = match (&owner_name, layer.kind.chown()) {
            (Some(n), _) => Some(Chown::Name(n.clone())),
            (None, Some(ids)) => Some(Chown::Ids(ids)),
            (None, None) => None,
        };
        let below = chown.as_ref().map(|_| {
            let mut k = KeyHasher::new("below", 1);
            for d in base_chain {
                k.digest(d);
            }
            for s in steps.iter().filter(|s| s.makes_layer()) {
                k.digest(&s.key);
            }
            k.finish()
        });
        LayerCx {
            layer,
            owner_name,
            chown,
            below,
        }
    }

    /// The key parts every owned layer ends with: the owner's name and
    /// the layers below.
    pub fn key_owner(&self, k: &mut KeyHasher) {
        k.opt_str(self.owner_name.as_deref());
        if let Some(b) = &self.below {
            k.digest(b);
        }
    }

    /// A step of this layer that applies to every platform: a files layer
    /// (looked up in the store) or a config edit. Its options get the
    /// owner, compression and time they are made with.
    pub fn step(
        &self,
        cx: &ImageCx,
        name: String,
        action: Action,
        key: Digest,
        mut options: BTreeMap<String, String>,
        notes: Vec<String>,
    ) -> Step {
        let o = cx.env.o;
        if let Some(n) = &self.owner_name {
            options.insert("chown".into(), n.clone());
        }
        options.insert("compression".into(), o.compression.name().into());
        options.insert("source_date_epoch".into(), o.source_date_epoch.to_string());
        let cached = match &action {
            Action::Config(_) => None,
            _ => cx.env.cached(&key),
        };
        let mut step = Step {
            name,
            loc: self.layer.loc.clone(),
            action,
            key,
            cached,
            why: vec![],
            notes,
            options,
            platform: None,
        };
        if let Action::Files {
            entries,
            fetch: None,
            ..
        } = &step.action
            && entries.is_empty()
        {
            step.notes.push("no files: the layer is empty".into());
        }
        step
    }

    /// An error of this layer's files, placed at the layer.
    pub fn at(&self, e: Error) -> Error {
        at(&self.layer.loc, e)
    }
}

/// An input error placed at a definition's location.
pub(super) fn at(loc: &Location, e: Error) -> Error {
    match e {
        Error::Input { path, message } => Error::InputAt {
            loc: Box::new(loc.clone()),
            message: format!("{}: {message}", path.display()),
        },
        other => other,
    }
}

/// The working folder relative destinations land in.
pub(super) fn workdir(cfg: &ImageConfig) -> String {
    cfg.config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

pub(super) fn unsupported(loc: &Location, what: &str, issue_hint: &str) -> Error {
    Error::Unsupported {
        what: format!("{loc}: {what}"),
        hint: Some(issue_hint.to_string()),
    }
}

//! Files copied from another image of the definition (`COPY --from`): one
//! step per platform, keyed by the source image's content key and what is
//! copied where; the files are read from its filesystem by execution.

use super::common::{ImageCx, LayerCx, workdir};
use super::{Action, CopyFrom, Step};
use crate::digest::KeyHasher;
use crate::error::{Error, Result};
use crate::layer::files;
use crate::oci::types::ImageConfig;
use crate::spec::LayerKind;
use std::collections::BTreeMap;

pub(super) fn plan(cx: &ImageCx, lc: &LayerCx, cfg: &ImageConfig) -> Result<Vec<Step>> {
    let LayerKind::CopyFrom {
        image,
        srcs,
        dst,
        chown,
        chmod,
        exclude,
        parents,
    } = &lc.layer.kind
    else {
        unreachable!("a copy from an image")
    };
    let (img, done, o) = (cx.img, cx.done, cx.env.o);
    let l = &lc.layer;
    let owner_name = &lc.owner_name;
    let Some(source) = done.iter().position(|p| &p.id == image) else {
        return Err(Error::Definition {
            loc: Box::new(l.loc.clone()),
            message: format!("no image {image:?} to copy from"),
        });
    };
    let layer_dst = files::resolve_dst(&workdir(cfg), dst);
    let src_img = &done[source];
    let mut out = Vec::new();
    for (pi, p) in img.platforms.iter().enumerate() {
        // A stage pinned to one platform (`FROM --platform`) serves all.
        let src_p = if src_img.platforms.contains(p) {
            p
        } else if let [only] = src_img.platforms.as_slice() {
            only
        } else {
            return Err(Error::Definition {
                loc: Box::new(l.loc.clone()),
                message: format!("image {image:?} is not built for {p}"),
            });
        };
        let mut k = KeyHasher::new("copy-from", 1);
        k.digest(&src_img.content_key).str(&src_p.to_string());
        k.u64(srcs.len() as u64);
        for s in srcs {
            k.str(s);
        }
        k.str(&layer_dst)
            .u64(dst.ends_with('/') as u64)
            .str(&format!("{chown:?}"))
            .str(&format!("{chmod:?}"))
            .str(o.compression.name())
            .u64(o.compression.level() as u64)
            .u64(o.compression.framing())
            .u64(o.source_date_epoch);
        k.u64(exclude.len() as u64);
        for e in exclude {
            k.str(e);
        }
        k.bool(*parents);
        lc.key_owner(&mut k);
        let step_key = k.finish();
        let mut options = BTreeMap::new();
        options.insert("from".into(), image.clone());
        if let Some(n) = &owner_name {
            options.insert("chown".into(), n.clone());
        }
        options.insert("src".into(), srcs.join(" "));
        if !exclude.is_empty() {
            options.insert("exclude".into(), exclude.join(" "));
        }
        if *parents {
            options.insert("parents".into(), "true".into());
        }
        options.insert("dst".into(), format!("/{layer_dst}"));
        let name = format!(
            "copy --from={image} {} → /{layer_dst}{}",
            srcs.join(" "),
            if img.platforms.len() > 1 {
                format!(" ({p})")
            } else {
                String::new()
            }
        );
        out.push(Step {
            name,
            loc: l.loc.clone(),
            action: Action::CopyFrom(Box::new(CopyFrom {
                source,
                srcs: srcs.clone(),
                dst: layer_dst.clone(),
                dst_dir: dst.ends_with('/') || dst == ".",
                chown: *chown,
                chmod: *chmod,
                platform: src_p.to_string(),
                owner_name: owner_name.clone(),
                exclude: exclude.clone(),
                parents: *parents,
            })),
            key: step_key,
            cached: cx.env.cached(&step_key),
            why: vec![],
            notes: vec![],
            options,
            platform: Some(pi),
        });
    }
    Ok(out)
}

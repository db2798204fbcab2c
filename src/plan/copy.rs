//! Files from the context (`source_folder`, `source_file`) and heredocs:
//! collected with their content hashes now, so the step key is the files'
//! own (paths, modes, owners, contents); the layer is written by execution.

use super::Action;
use super::common::{ImageCx, LayerCx, workdir};
use super::{Env, Step};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Result};
use crate::layer::files::{self, CollectOptions, FILES_FORMAT, FileEntry, FileKind};
use crate::layer::ignore::{DEFAULT_IGNORES, IgnoreRules};
use crate::oci::types::ImageConfig;
use crate::spec::{ImageDef, LayerKind};
use std::collections::BTreeMap;
use std::path::Path;

/// The image's ignore rules and how to name them: the last `dockerignore`
/// layer, else <context>/.dockerignore, else the built-in defaults.
pub(super) fn ignore_rules(env: &Env, img: &ImageDef) -> Result<(IgnoreRules, String)> {
    let (context, o) = (env.context, env.o);
    let ignore_file = img.layers.iter().rev().find_map(|l| match &l.kind {
        LayerKind::Dockerignore(p) => Some((context.join(p), Some(l.loc.clone()))),
        _ => None,
    });
    let ignore_file = ignore_file.or_else(|| {
        let p = context.join(".dockerignore");
        p.is_file().then_some((p, None))
    });
    Ok(match &ignore_file {
        Some((p, loc)) => {
            let text = std::fs::read_to_string(p).map_err(|e| match loc {
                Some(loc) => Error::Definition {
                    loc: Box::new(loc.clone()),
                    message: format!("cannot read ignore file {}: {e}", p.display()),
                },
                None => Error::input(p, format!("cannot read: {e}")),
            })?;
            let rules = IgnoreRules::parse(&text).map_err(|e| Error::input(p, e.to_string()))?;
            let name = files::context_rel(context, p).unwrap_or_else(|| p.display().to_string());
            (
                rules,
                format!(
                    "{name} ({} patterns)",
                    text.lines()
                        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                        .count()
                ),
            )
        }
        None if o.no_default_ignore => (
            IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty"),
            "none (--no-default-ignore)".to_string(),
        ),
        None => (
            IgnoreRules::from_patterns(DEFAULT_IGNORES).expect("built-in patterns parse"),
            "built-in defaults (VCS folders, Python caches; --no-default-ignore keeps them)"
                .to_string(),
        ),
    })
}

/// `source_folder`: a folder of the context (or its contents) under `dst`.
pub(super) fn plan_folder(
    cx: &ImageCx,
    lc: &LayerCx,
    cfg: &ImageConfig,
    ignore_noted: &mut bool,
) -> Result<Step> {
    let LayerKind::SourceFolder {
        src,
        dst,
        copy_contents_only,
        chown,
        chmod,
        exclude,
    } = &lc.layer.kind
    else {
        unreachable!("a source_folder layer")
    };
    let context = cx.env.context;
    let src_path = context.join(src);
    let src_path = src_path.canonicalize().unwrap_or(src_path);
    let src_name = src_path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| src.clone());
    // Flyte's rule: copy_contents_only = false with dst "." puts the folder itself there.
    let derived = !copy_contents_only && (dst == "." || dst == "./");
    let dst_eff = if derived {
        format!("./{src_name}")
    } else {
        dst.clone()
    };
    let layer_dst = files::resolve_dst(&workdir(cfg), &dst_eff);
    let mut co = context_options(cx, *chown, *chmod);
    // Hashes are left to `onepass`, which may take them from the layer's
    // own read.
    co.hash = cx.env.o.one_pass == super::OnePass::Off;
    let mut c = files::collect_folder(&src_path, &layer_dst, derived, &co).map_err(|e| lc.at(e))?;
    // `COPY --exclude`: patterns relative to the folder.
    let excluded = IgnoreRules::from_patterns(exclude).map_err(|e| Error::Definition {
        loc: Box::new(lc.layer.loc.clone()),
        message: format!("exclude pattern: {e}"),
    })?;
    excluded.retain_below(&mut c.entries, &layer_dst, |e| {
        e.path.for_matching().into_owned()
    });
    let mut opts = BTreeMap::new();
    opts.insert("src".into(), src.clone());
    opts.insert("dst".into(), format!("/{layer_dst}"));
    opts.insert("copy_contents_only".into(), copy_contents_only.to_string());
    opts.insert("chown".into(), format!("{chown:?}"));
    opts.insert("chmod".into(), format!("{chmod:?}"));
    opts.insert("ignore".into(), cx.ignore_desc.to_string());
    if !exclude.is_empty() {
        opts.insert("exclude".into(), exclude.join(" "));
    }
    let name = format!("source_folder {src} → /{layer_dst}");
    let made = super::onepass::hash_or_write(cx, lc, &name, &mut c).map_err(|e| lc.at(e))?;
    let notes = collect_notes(&c, cx.ignore_desc, ignore_noted);
    let mut step = files_step(cx, lc, name, c, opts, notes);
    // A store that already had the key (another profile or image of the
    // same files) had the layer: the one just written is the same blob,
    // and the step is a hit.
    if let Some(d) = made
        && step.cached.is_none()
    {
        crate::util::fault::point("step-record");
        cx.env.store.step_put(&step.key, &d)?;
        cx.env.made.borrow_mut().insert(step.key);
        step.cached = Some(d);
    }
    Ok(step)
}

/// How the context's files are read for a layer with `owner` and `chmod`:
/// under the image's ignore rules, never the output or the store.
fn context_options<'a>(
    cx: &'a ImageCx,
    owner: Option<crate::oci::Owner>,
    chmod: Option<u32>,
) -> CollectOptions<'a> {
    CollectOptions {
        context: cx.env.context,
        rules: cx.rules,
        owner,
        chmod,
        stat: cx.env.stat,
        exclude: &cx.env.o.exclude,
        hash: true,
    }
}

/// `source_file`: one file of the context at `dst`.
pub(super) fn plan_file(cx: &ImageCx, lc: &LayerCx, cfg: &ImageConfig) -> Result<Step> {
    let LayerKind::SourceFile {
        src,
        dst,
        chown,
        chmod,
    } = &lc.layer.kind
    else {
        unreachable!("a source_file layer")
    };
    let context = cx.env.context;
    let src_path = context.join(src);
    let fname = Path::new(src)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let target = files::file_dst(dst, &fname);
    let layer_dst = files::resolve_dst(&workdir(cfg), &target);
    if layer_dst.is_empty() {
        return Err(Error::Definition {
            loc: Box::new(lc.layer.loc.clone()),
            message: format!("destination {dst:?} is the root folder"),
        });
    }
    let c = files::collect_file(&src_path, &layer_dst, &context_options(cx, *chown, *chmod))
        .map_err(|e| lc.at(e))?;
    let mut opts = BTreeMap::new();
    opts.insert("src".into(), src.clone());
    opts.insert("dst".into(), format!("/{layer_dst}"));
    opts.insert("chown".into(), format!("{chown:?}"));
    opts.insert("chmod".into(), format!("{chmod:?}"));
    let notes = collect_notes(&c, "", &mut true);
    Ok(files_step(
        cx,
        lc,
        format!("source_file {src} → /{layer_dst}"),
        c,
        opts,
        notes,
    ))
}

/// A heredoc (`COPY <<EOF`): its content as a file in the store,
/// collected like any file.
pub(super) fn plan_inline(cx: &ImageCx, lc: &LayerCx, cfg: &ImageConfig) -> Result<Step> {
    let LayerKind::Inline {
        content,
        dst,
        chown,
        chmod,
    } = &lc.layer.kind
    else {
        unreachable!("an inline layer")
    };
    let store = cx.env.store;
    let sha = Digest::of(content.as_bytes());
    let dir = store.root().join("inline");
    let path = dir.join(sha.hex());
    if path.is_file() {
        // In use: `cache prune` keeps it.
        crate::util::fs::touch(&path);
    } else {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        store.write_atomic(&path, content.as_bytes())?;
    }
    let layer_dst = files::resolve_dst(&workdir(cfg), dst);
    let c =
        store_file(cx, &path, &layer_dst, *chown, chmod.unwrap_or(0o644)).map_err(|e| lc.at(e))?;
    let mut opts = BTreeMap::new();
    opts.insert("content".into(), sha.oci());
    opts.insert("dst".into(), format!("/{layer_dst}"));
    opts.insert("chown".into(), format!("{chown:?}"));
    opts.insert("chmod".into(), format!("{chmod:?}"));
    Ok(files_step(
        cx,
        lc,
        format!("copy heredoc → /{layer_dst}"),
        c,
        opts,
        vec![],
    ))
}

/// A file the store holds (a download, a heredoc) as a layer's file.
pub(super) fn store_file(
    cx: &ImageCx,
    path: &Path,
    dst: &str,
    owner: Option<crate::oci::Owner>,
    mode: u32,
) -> Result<files::Collected> {
    let (store_root, store_stat) = cx.env.store_stat;
    let no_rules = IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
    files::collect_file(
        path,
        dst,
        &CollectOptions {
            context: store_root,
            rules: &no_rules,
            owner,
            chmod: Some(mode),
            stat: store_stat,
            exclude: &[],
            hash: true,
        },
    )
}

/// The step of a layer of collected files, keyed by the files themselves.
pub(super) fn files_step(
    cx: &ImageCx,
    lc: &LayerCx,
    name: String,
    c: files::Collected,
    opts: BTreeMap<String, String>,
    notes: Vec<String>,
) -> Step {
    let o = cx.env.o;
    let mut k = KeyHasher::new("files", FILES_FORMAT);
    k.str(o.compression.name())
        .u64(o.compression.level() as u64)
        .u64(o.compression.framing())
        .u64(o.source_date_epoch);
    files::key_entries(&mut k, &c.entries);
    lc.key_owner(&mut k);
    let action = Action::Files {
        entries: c.entries,
        bytes: c.bytes,
        chown: lc.chown.clone(),
        fetch: None,
    };
    lc.step(cx, name, action, k.finish(), opts, notes)
}

pub(super) fn collect_notes(
    c: &files::Collected,
    ignore_desc: &str,
    ignore_noted: &mut bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !*ignore_noted && !ignore_desc.is_empty() {
        notes.push(format!("ignore rules: {ignore_desc}"));
        *ignore_noted = true;
    }
    for own in &c.skipped_own {
        notes.push(format!("left out {own}: imgbuild's own output or store"));
    }
    if c.ignored > 0 {
        notes.push(format!(
            "{} path(s) left out by the ignore rules, e.g. {}",
            c.ignored,
            c.ignored_examples.join(", ")
        ));
    }
    for s in &c.secrets {
        notes.push(format!(
            "warning: likely secret about to enter a layer: {s}; add it to .dockerignore"
        ));
    }
    for s in &c.skipped_special {
        notes.push(format!(
            "skipped {s}: sockets, pipes and devices are not copied"
        ));
    }
    notes
}

pub(super) fn fingerprint(e: &FileEntry) -> String {
    match &e.kind {
        FileKind::Dir => format!("dir {:o}", e.mode),
        FileKind::File { hash, .. } => format!("{} {:o} {}:{}", hash.short(), e.mode, e.uid, e.gid),
        FileKind::Symlink(t) => format!("-> {t}"),
        FileKind::Hardlink(t) => format!("=> {t}"),
    }
}

//! `ADD` of a URL, of a local tar archive and of a git repository.
//!
//! A local archive is keyed by the digest of its bytes (with where it
//! goes and who owns it): planning hashes the file and leaves unpacking to
//! execution, which collects the unpacked tree exactly as before, so the
//! layer is the same.
//!
//! A URL with `--checksum` is keyed by that checksum: execution downloads
//! it (nothing at all when the step is cached). Without a checksum only
//! the content can name it, so planning downloads it to compute the key,
//! as BuildKit does; the file is kept in the store and execution reads it
//! from there.
//!
//! A git repository is keyed by the commit its ref names: planning asks
//! the server with `git ls-remote` (a few bytes, no files), checks
//! `--checksum` against the commit, and leaves the clone to execution,
//! which fetches that one commit only when the layer is not cached. The
//! same commit is a cache hit; a new commit on the branch, a new layer.

use super::common::{ImageCx, LayerCx, workdir};
use super::copy::{files_step, store_file};
use super::{Action, Step};
use crate::digest::{Digest, KeyHasher};
use crate::error::{Error, Result};
use crate::layer::files::{self, FILES_FORMAT};
use crate::net::git::{Git, GitSource, Resolved};
use crate::oci::Owner;
use crate::oci::types::ImageConfig;
use crate::spec::LayerKind;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Version of how fetched files become a layer's files (unpacking
/// included); part of their step keys.
const ADD_FORMAT: u32 = 1;

/// Where the files of a layer come from when execution has to fetch or
/// unpack them first.
#[derive(Clone, Debug)]
pub enum Fetch {
    /// A local tar archive, known by the digest of its bytes: unpacked
    /// into the store and collected under `dst` (a layer path) with the
    /// owners and modes the archive names, or `chown`'s.
    Archive {
        path: PathBuf,
        sha: Digest,
        dst: String,
        chown: Option<Owner>,
    },
    /// A download that must hash to `sha` (its `--checksum`), as the
    /// file `dst` with `mode`.
    Url {
        url: String,
        sha: Digest,
        dst: String,
        chown: Option<Owner>,
        mode: u32,
    },
    /// A git commit, checked out (without `.git` unless `keep_git_dir`),
    /// the folder `src.subdir` of it collected under `dst` with files
    /// 0644 or 0755 and folders 0755 (as git gives them; `chmod` sets
    /// one mode instead).
    Git {
        src: GitSource,
        resolved: Resolved,
        keep_git_dir: bool,
        dst: String,
        chown: Option<Owner>,
        chmod: Option<u32>,
    },
}

impl Fetch {
    /// What the step is made from, for the build record.
    pub fn record(&self) -> BTreeMap<String, String> {
        let (dst, what) = match self {
            Fetch::Archive { dst, sha, .. } => (dst, format!("archive {}", sha.short())),
            Fetch::Url { dst, sha, .. } => (dst, format!("download {}", sha.short())),
            Fetch::Git { dst, resolved, .. } => (dst, format!("git {}", resolved.commit)),
        };
        BTreeMap::from([(dst.clone(), what)])
    }
}

/// `ADD <url>`: the file, named by the URL path's last part under a
/// folder destination, mode 0600 unless `--chmod` says otherwise.
pub(super) fn plan_url(cx: &ImageCx, lc: &LayerCx, cfg: &ImageConfig) -> Result<Step> {
    let LayerKind::AddUrl {
        url,
        dst,
        chown,
        chmod,
        checksum,
    } = &lc.layer.kind
    else {
        unreachable!("an ADD of a URL")
    };
    let expected = match checksum {
        None => None,
        Some(c) => Some(
            c.strip_prefix("sha256:")
                .and_then(Digest::parse_hex)
                .ok_or_else(|| Error::Definition {
                    loc: Box::new(lc.layer.loc.clone()),
                    message: format!("--checksum={c}: expected sha256:<64 hex digits>"),
                })?,
        ),
    };
    let target = files::file_dst(dst, &url_file_name(url));
    let layer_dst = files::resolve_dst(&workdir(cfg), &target);
    let mode = chmod.unwrap_or(0o600);
    let name = format!("add {} → /{layer_dst}", crate::net::redact(url));
    let mut opts = BTreeMap::new();
    opts.insert("url".into(), crate::net::redact(url));
    let opts_rest = |opts: &mut BTreeMap<String, String>, sha: &Digest| {
        opts.insert("sha256".into(), sha.oci());
        opts.insert("dst".into(), format!("/{layer_dst}"));
        opts.insert("chown".into(), format!("{chown:?}"));
        opts.insert("chmod".into(), format!("{chmod:?}"));
    };
    match expected {
        Some(sha) => {
            opts_rest(&mut opts, &sha);
            let mut k = fetched_key(
                cx,
                "add-url",
                &|k: &mut KeyHasher| {
                    k.digest(&sha);
                },
                &layer_dst,
                *chown,
            );
            k.u64(mode as u64);
            lc.key_owner(&mut k);
            let action = Action::Files {
                entries: vec![],
                bytes: 0,
                chown: lc.chown.clone(),
                fetch: Some(Box::new(Fetch::Url {
                    url: url.clone(),
                    sha,
                    dst: layer_dst,
                    chown: *chown,
                    mode,
                })),
            };
            Ok(lc.step(cx, name, action, k.finish(), opts, vec![]))
        }
        None => {
            let (path, sha) =
                crate::store::fetch::fetch_url(cx.env.store, url, None, None, "--checksum")
                    .map_err(|e| lc.at(e))?;
            opts_rest(&mut opts, &sha);
            let c = store_file(cx, &path, &layer_dst, *chown, mode).map_err(|e| lc.at(e))?;
            Ok(files_step(cx, lc, name, c, opts, vec![]))
        }
    }
}

/// The name a download gets in a folder: the URL path's last part, as
/// with docker.
fn url_file_name(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, path)| path.rsplit('/').next().unwrap_or_default())
        .filter(|n| !n.is_empty())
        .unwrap_or("download")
        .to_string()
}

/// `ADD <archive>` of the context: the archive's files under `dst`.
pub(super) fn plan_archive(cx: &ImageCx, lc: &LayerCx, cfg: &ImageConfig) -> Result<Step> {
    let LayerKind::AddArchive { src, dst, chown } = &lc.layer.kind else {
        unreachable!("an ADD of an archive")
    };
    let src_path = cx.env.context.join(src);
    let unreadable = |e: String| Error::InputAt {
        loc: Box::new(lc.layer.loc.clone()),
        message: format!("{}: {e}", src_path.display()),
    };
    let size = std::fs::metadata(&src_path)
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    // Read once, in pieces: memory does not grow with the archive.
    let sha = files::hash_file(&src_path).map_err(|e| match e {
        Error::Input { message, .. } => unreadable(message),
        other => other,
    })?;
    let layer_dst = files::resolve_dst(&workdir(cfg), dst);
    let mut k = fetched_key(
        cx,
        "add-archive",
        &|k: &mut KeyHasher| {
            k.digest(&sha);
        },
        &layer_dst,
        *chown,
    );
    lc.key_owner(&mut k);
    let mut opts = BTreeMap::new();
    opts.insert("src".into(), src.clone());
    opts.insert("archive".into(), sha.oci());
    opts.insert("dst".into(), format!("/{layer_dst}"));
    opts.insert("chown".into(), format!("{chown:?}"));
    let action = Action::Files {
        entries: vec![],
        bytes: size,
        chown: lc.chown.clone(),
        fetch: Some(Box::new(Fetch::Archive {
            path: src_path.clone(),
            sha,
            dst: layer_dst.clone(),
            chown: *chown,
        })),
    };
    let name = format!("add {src} (unpacked) → /{layer_dst}");
    Ok(lc.step(cx, name, action, k.finish(), opts, vec![]))
}

/// `ADD <git repository>`: the ref resolved to a commit now, the
/// checkout left to execution.
pub(super) fn plan_git(cx: &ImageCx, lc: &LayerCx, cfg: &ImageConfig) -> Result<Step> {
    let LayerKind::AddGit {
        source,
        dst,
        chown,
        chmod,
        checksum,
        keep_git_dir,
    } = &lc.layer.kind
    else {
        unreachable!("an ADD of a git repository")
    };
    let loc = &lc.layer.loc;
    let src = GitSource::parse(source).map_err(|message| Error::Definition {
        loc: Box::new(loc.clone()),
        message,
    })?;
    let store = cx.env.store;
    let git = Git::new(store.http().config(), store.tmp_dir())?;
    let resolved = git.resolve(&src).map_err(|e| fetch_at(lc, e))?;
    let reference = src.reference.as_deref().unwrap_or("the default branch");
    for (what, sum) in [
        ("the URL's checksum", src.commit.as_ref()),
        ("--checksum", checksum.as_ref()),
    ] {
        if let Some(sum) = sum
            && !resolved.matches(sum)
        {
            return Err(Error::InputAt {
                loc: Box::new(loc.clone()),
                message: format!(
                    "{}: {reference} is commit {}, {what} says {sum}",
                    src.display(),
                    resolved.commit
                ),
            });
        }
    }
    let layer_dst = files::resolve_dst(&workdir(cfg), dst);
    let source_key = |k: &mut KeyHasher| {
        k.str(&resolved.commit)
            .str(&src.subdir)
            .bool(src.submodules)
            .bool(*keep_git_dir);
        // With .git kept, the branch or tag it has is part of the files.
        if *keep_git_dir {
            k.opt_str(resolved.refname.as_deref());
        }
    };
    let mut k = fetched_key(cx, "add-git", &source_key, &layer_dst, *chown);
    match chmod {
        None => k.bool(false),
        Some(m) => k.bool(true).u64(*m as u64),
    };
    lc.key_owner(&mut k);
    let mut opts = BTreeMap::new();
    opts.insert("git".into(), src.display());
    opts.insert("commit".into(), resolved.commit.clone());
    if let Some(r) = &resolved.refname {
        opts.insert("ref".into(), r.clone());
    }
    opts.insert("keep_git_dir".into(), keep_git_dir.to_string());
    opts.insert("dst".into(), format!("/{layer_dst}"));
    opts.insert("chown".into(), format!("{chown:?}"));
    opts.insert("chmod".into(), format!("{chmod:?}"));
    let name = format!(
        "add {} ({}) → /{layer_dst}",
        src.display(),
        &resolved.commit[..12.min(resolved.commit.len())]
    );
    let action = Action::Files {
        entries: vec![],
        bytes: 0,
        chown: lc.chown.clone(),
        fetch: Some(Box::new(Fetch::Git {
            src,
            resolved,
            keep_git_dir: *keep_git_dir,
            dst: layer_dst,
            chown: *chown,
            chmod: *chmod,
        })),
    };
    Ok(lc.step(cx, name, action, k.finish(), opts, vec![]))
}

/// A fetch failure placed at the layer: a download failure keeps its
/// kind (and exit code) with the location in front.
fn fetch_at(lc: &LayerCx, e: Error) -> Error {
    match e {
        Error::Registry { message, status } => Error::Registry {
            message: format!("{}: {message}", lc.layer.loc),
            status,
        },
        other => lc.at(other),
    }
}

/// The start of a fetched layer's key: how layers are written, what the
/// files come from (by digest, never by path or URL), where they go and
/// who owns them.
fn fetched_key(
    cx: &ImageCx,
    kind: &str,
    source: &dyn Fn(&mut KeyHasher),
    dst: &str,
    chown: Option<Owner>,
) -> KeyHasher {
    let o = cx.env.o;
    let mut k = KeyHasher::new(kind, ADD_FORMAT);
    k.u64(FILES_FORMAT as u64)
        .str(o.compression.name())
        .u64(o.compression.level() as u64)
        .u64(o.compression.framing())
        .u64(o.source_date_epoch);
    source(&mut k);
    k.str(dst);
    match chown {
        None => k.bool(false),
        Some(ow) => k.bool(true).u64(ow.uid).u64(ow.gid),
    };
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_named_by_the_url_path() {
        assert_eq!(
            url_file_name("https://h.example/a/b/tool.sh?x=1#f"),
            "tool.sh"
        );
        assert_eq!(url_file_name("https://h.example/dir/"), "download");
        assert_eq!(url_file_name("https://h.example"), "download");
    }

    #[test]
    fn fetched_files_are_recorded_by_digest() {
        let sha = Digest::of(b"x");
        let f = Fetch::Archive {
            path: PathBuf::from("/ctx/a.tar"),
            sha,
            dst: "opt".into(),
            chown: None,
        };
        assert_eq!(
            f.record(),
            BTreeMap::from([("opt".to_string(), format!("archive {}", sha.short()))])
        );
    }
}

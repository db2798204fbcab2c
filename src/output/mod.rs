//! Writing built images: OCI image layout folders, oci-archive and
//! docker-archive tarballs (to a file or standard output). Blobs go first,
//! the index (which names the image) last and atomically, so a reader never
//! sees a half-written image. Blobs are copied (or reflinked) out of the
//! store and hashed on the way, never hard-linked, so a bad blob never
//! reaches an output and a later corruption of the store never changes one
//! (see `store::verify`). Also where `--output` is read, in imgbuild's
//! `TYPE:PATH` spelling and in buildx's CSV form; the filesystem outputs
//! buildx has (`type=local`, `type=tar`) are written by the build facade,
//! which can unpack layers.

pub mod image;

pub use image::{ImageOut, LayerOut, PlatformOut};

use crate::error::{Error, IoContext, Result};
use crate::layer::tar::{Entry, EntryKind, TarWriter};
use crate::oci::types::*;
use crate::registry::Reference;
use crate::store::Store;
use crate::util::fs::NewFile;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// An OCI image layout folder.
    Layout(PathBuf),
    /// A tar of an OCI image layout; `-` is standard output.
    OciArchive(PathBuf),
    /// A tarball `docker load` reads; `-` is standard output.
    DockerArchive(PathBuf),
    /// The image's final filesystem in a folder (buildx's `type=local`);
    /// one subfolder per platform (`linux_amd64`) when there are several.
    Local(PathBuf),
    /// The same filesystem as one tar file (buildx's `type=tar`); `-` is
    /// standard output.
    Tar(PathBuf),
}

/// One `--output` as buildx reads it: a local output, and/or the image
/// names and whether to push them (`type=image`, `type=registry`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OutputSpec {
    /// Where the image is written on this machine; `None` for
    /// `type=image`/`type=registry`.
    pub output: Option<Output>,
    /// `name=`: names the image carries (as `--tag` does).
    pub names: Vec<String>,
    /// `push=true` (or `type=registry`): push to the names.
    pub push: bool,
}

pub const IMAGE_PLACEHOLDER: &str = "{image}";

/// Where images go when no output is named: a layout per image.
pub const DEFAULT: &str = "oci:imgbuild-out/{image}";

/// The `TYPE:PATH` prefixes of imgbuild's own spelling.
const PREFIXES: [&str; 3] = ["oci:", "oci-archive:", "docker-archive:"];

impl OutputSpec {
    /// Reads an `--output` value: imgbuild's `oci:DIR`, `oci-archive:FILE`,
    /// `docker-archive:FILE`; buildx's CSV form `type=…,dest=…,name=…,
    /// push=…,tar=…`; or buildx's shorthands (`-` for a tar of the
    /// filesystem on standard output, any other value without `=` for a
    /// folder of it).
    pub fn parse(s: &str) -> std::result::Result<OutputSpec, String> {
        if PREFIXES.iter().any(|p| s.starts_with(p)) {
            return Output::parse_prefixed(s).map(|o| OutputSpec {
                output: Some(o),
                ..OutputSpec::default()
            });
        }
        if !s.contains('=') {
            // `WORD:…` reads as a mistyped output type rather than a folder
            // (`./WORD:…` or type=local,dest= name such a folder).
            if let Some((kind, _)) = s.split_once(':')
                && !kind.is_empty()
                && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            {
                return Err(format!(
                    "unknown output type {kind:?} (oci, oci-archive, docker-archive, or buildx's type=…; a folder named so is written ./{s})"
                ));
            }
            let output = match s {
                "" => return Err("--output is empty".into()),
                "-" => Output::Tar(PathBuf::from("-")),
                dir => Output::Local(PathBuf::from(dir)),
            };
            return Ok(OutputSpec {
                output: Some(output),
                ..OutputSpec::default()
            });
        }
        let fields = csv_fields(s)?;
        let mut kind = None;
        let mut dest: Option<String> = None;
        let mut spec = OutputSpec::default();
        let mut tar = true;
        let mut tar_given = false;
        for f in &fields {
            let Some((k, v)) = f.split_once('=') else {
                return Err(format!("--output {s:?}: {f:?} is not KEY=VALUE"));
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "type" => kind = Some(v.to_string()),
                "dest" => dest = Some(v.to_string()),
                "name" => spec.names.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(String::from),
                ),
                "push" => spec.push = parse_bool(s, "push", v)?,
                "tar" => {
                    tar = parse_bool(s, "tar", v)?;
                    tar_given = true;
                }
                other => {
                    return Err(format!(
                        "--output {s:?}: {other}= is not supported (understood: type, dest, name, push, tar)"
                    ));
                }
            }
        }
        let kind = kind.ok_or_else(|| format!("--output {s:?} has no type="))?;
        let need_dest = |what: &str| {
            dest.clone()
                .filter(|d| !d.is_empty())
                .ok_or_else(|| format!("--output {s:?}: type={kind} needs dest= ({what})"))
        };
        if tar_given && kind != "oci" {
            return Err(format!(
                "--output {s:?}: tar= is understood for type=oci only"
            ));
        }
        if spec.push && !matches!(kind.as_str(), "image" | "registry") {
            return Err(format!(
                "--output {s:?}: push= is understood for type=image only"
            ));
        }
        spec.output = match kind.as_str() {
            "oci" if !tar => {
                let d = need_dest("the layout folder")?;
                if d == "-" {
                    return Err(format!(
                        "--output {s:?}: an OCI layout folder (tar=false) cannot go to standard output"
                    ));
                }
                Some(Output::Layout(PathBuf::from(d)))
            }
            "oci" => Some(Output::OciArchive(PathBuf::from(need_dest("a file, or - for standard output")?))),
            "oci-layout" => Some(Output::Layout(PathBuf::from(need_dest("the layout folder")?))),
            "docker" => Some(Output::DockerArchive(PathBuf::from(dest.clone().filter(|d| !d.is_empty()).ok_or_else(|| {
                format!("--output {s:?}: type=docker without dest= loads the image into a Docker daemon, and imgbuild has none: give dest=FILE and run `docker load -i FILE`")
            })?))),
            "local" => {
                let d = need_dest("a folder")?;
                if d == "-" {
                    return Err(format!(
                        "--output {s:?}: type=local writes a folder and cannot go to standard output; use type=tar,dest=-"
                    ));
                }
                Some(Output::Local(PathBuf::from(d)))
            }
            "tar" => Some(Output::Tar(PathBuf::from(need_dest("a file, or - for standard output")?))),
            "image" => None,
            "registry" => {
                spec.push = true;
                None
            }
            other => {
                return Err(format!(
                    "--output {s:?}: type={other} is not one of oci, docker, image, registry, local, tar"
                ));
            }
        };
        if spec.output.is_none() && dest.is_some() {
            return Err(format!(
                "--output {s:?}: type={kind} writes to a registry and takes no dest="
            ));
        }
        Ok(spec)
    }
}

/// The fields of a CSV line, as buildx reads `--output`: commas separate
/// fields, a field in double quotes may hold commas (`"name=a,b"`), a
/// doubled quote is a quote.
fn csv_fields(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(s.as_bytes());
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => Ok(rec.iter().map(String::from).collect()),
        Ok(false) => Err("--output is empty".into()),
        Err(e) => Err(format!("--output {s:?}: not a CSV line: {e}")),
    }
}

fn parse_bool(s: &str, key: &str, v: &str) -> std::result::Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "t" => Ok(true),
        "false" | "0" | "f" => Ok(false),
        _ => Err(format!("--output {s:?}: {key}={v} is not true or false")),
    }
}

impl Output {
    /// An output that writes somewhere on this machine, in either spelling
    /// (see [`OutputSpec::parse`]); `type=image`/`type=registry` are
    /// refused here.
    pub fn parse(s: &str) -> std::result::Result<Output, String> {
        OutputSpec::parse(s)?.output.ok_or_else(|| {
            format!("output {s:?} writes nothing on this machine; use --push for a registry")
        })
    }

    fn parse_prefixed(s: &str) -> std::result::Result<Output, String> {
        let (kind, path) = s.split_once(':').ok_or_else(|| {
            format!(
                "output {s:?} is not TYPE:PATH (oci:DIR, oci-archive:FILE, docker-archive:FILE)"
            )
        })?;
        if path.is_empty() {
            return Err(format!("output {s:?} has no path"));
        }
        let p = PathBuf::from(path);
        match kind {
            "oci" => Ok(Output::Layout(p)),
            "oci-archive" => Ok(Output::OciArchive(p)),
            "docker-archive" => Ok(Output::DockerArchive(p)),
            other => Err(format!(
                "unknown output type {other:?} (oci, oci-archive, docker-archive)"
            )),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Output::Layout(p)
            | Output::OciArchive(p)
            | Output::DockerArchive(p)
            | Output::Local(p)
            | Output::Tar(p) => p,
        }
    }

    /// Whether it goes to standard output (`-`).
    pub fn is_stdout(&self) -> bool {
        !matches!(self, Output::Layout(_) | Output::Local(_)) && self.path() == Path::new("-")
    }

    /// Whether it holds the image's filesystem rather than the image.
    pub fn is_filesystem(&self) -> bool {
        matches!(self, Output::Local(_) | Output::Tar(_))
    }

    fn with_path(&self, p: PathBuf) -> Output {
        match self {
            Output::Layout(_) => Output::Layout(p),
            Output::OciArchive(_) => Output::OciArchive(p),
            Output::DockerArchive(_) => Output::DockerArchive(p),
            Output::Local(_) => Output::Local(p),
            Output::Tar(_) => Output::Tar(p),
        }
    }

    pub fn has_placeholder(&self) -> bool {
        self.path().to_string_lossy().contains(IMAGE_PLACEHOLDER)
    }

    /// The output for one image (`{image}` replaced by its name).
    pub fn for_image(&self, id: &str) -> Output {
        let s = self.path().to_string_lossy().replace(IMAGE_PLACEHOLDER, id);
        self.with_path(PathBuf::from(s))
    }

    pub fn display(&self) -> String {
        let (k, p) = match self {
            Output::Layout(p) => ("oci", p),
            Output::OciArchive(p) => ("oci-archive", p),
            Output::DockerArchive(p) => ("docker-archive", p),
            Output::Local(p) => ("local", p),
            Output::Tar(p) => ("tar", p),
        };
        format!("{k}:{}", p.display())
    }
}

/// How much a write copied.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct WriteStats {
    pub blobs_written: u64,
    pub bytes_written: u64,
}

pub fn write(out: &Output, store: &Store, img: &ImageOut) -> Result<WriteStats> {
    write_named(out, store, img, &[])
}

/// [`write()`] under the given names instead of the image's own (`--tag`):
/// a layout gets one tag per name (with the full name in
/// `io.containerd.image.name`, as BuildKit's OCI exporter writes it), a
/// docker archive lists every name in its repository tags.
pub fn write_named(
    out: &Output,
    store: &Store,
    img: &ImageOut,
    names: &[Reference],
) -> Result<WriteStats> {
    write_attested(out, store, img, names, &[])
}

/// [`write_named`] with artifacts about the image (attestations): a layout
/// and an oci-archive list them in their index.json; a docker-archive,
/// which `docker load` reads through its manifest.json, has no place for
/// them.
pub fn write_attested(
    out: &Output,
    store: &Store,
    img: &ImageOut,
    names: &[Reference],
    artifacts: &[Artifact],
) -> Result<WriteStats> {
    let tops = tagged_as(img, names);
    let repo_tags: Vec<String> = if names.is_empty() {
        vec![img.reference.clone()]
    } else {
        names.iter().map(|r| r.to_string()).collect()
    };
    let docker = matches!(out, Output::DockerArchive(_)).then_some(&repo_tags[..]);
    let artifacts = if docker.is_some() { &[][..] } else { artifacts };
    match out {
        Output::Layout(dir) => {
            let mut stats = write_layout(dir, store, img, &tops)?;
            if !artifacts.is_empty() {
                let s = write_artifacts(dir, store, artifacts)?;
                stats.blobs_written += s.blobs_written;
                stats.bytes_written += s.bytes_written;
            }
            Ok(stats)
        }
        Output::OciArchive(f) | Output::DockerArchive(f) if f == Path::new("-") => {
            // Standard output: the whole archive, then copied out at once,
            // so a failed build writes nothing there.
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err(Error::Usage(format!(
                    "{} would write an archive to the terminal: redirect standard output or give a file",
                    out.display()
                )));
            }
            let tmp = store.temp_file()?;
            let stats = write_archive(tmp.path(), store, img, &tops, docker, artifacts)?;
            let mut f = fs::File::open(tmp.path()).ctx(|| "reading the archive back".into())?;
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut f, &mut stdout)
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::io("writing the archive to standard output", e))?;
            Ok(stats)
        }
        Output::OciArchive(f) | Output::DockerArchive(f) => {
            write_archive(f, store, img, &tops, docker, artifacts)
        }
        Output::Local(_) | Output::Tar(_) => Err(Error::Usage(format!(
            "{} holds the image's filesystem, which the build writes (not output::write)",
            out.display()
        ))),
    }
}

/// The image's top descriptor once per name it is written under.
fn tagged_as(img: &ImageOut, names: &[Reference]) -> Vec<Descriptor> {
    if names.is_empty() {
        return vec![tagged(img)];
    }
    names
        .iter()
        .map(|r| {
            let mut top = img.top.clone();
            let a = top.annotations.get_or_insert_with(BTreeMap::new);
            a.insert(ANN_REF_NAME.to_string(), r.tag.clone().unwrap_or_default());
            a.insert(ANN_IMAGE_NAME.to_string(), r.to_string());
            top
        })
        .collect()
}

/// The full name of a tagged image in an index, as containerd and BuildKit
/// write it.
const ANN_IMAGE_NAME: &str = "io.containerd.image.name";

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn tagged(img: &ImageOut) -> Descriptor {
    let mut top = img.top.clone();
    top.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANN_REF_NAME.to_string(), img.tag.clone());
    top
}

fn write_layout(
    dir: &Path,
    store: &Store,
    img: &ImageOut,
    tops: &[Descriptor],
) -> Result<WriteStats> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).ctx(|| format!("creating {}", blobs.display()))?;
    let layout_file = dir.join("oci-layout");
    if !layout_file.exists() {
        atomic_write(&layout_file, OCI_LAYOUT)?;
    }
    // Blobs at once, one per core: each is hashed as it is copied.
    use rayon::prelude::*;
    let written: Vec<Option<u64>> = img
        .blobs
        .par_iter()
        .map(|b| -> Result<Option<u64>> {
            let dest = blobs.join(b.digest.hex());
            // Already there from an earlier write (same name, same size).
            if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == b.size) {
                return Ok(None);
            }
            // A copy (or a reflink) of the store's blob, verified as it is
            // made, never a hard link: a later corruption of the store must
            // not change this image. A file named only once complete: an
            // error (a full disk, a bad blob) or a kill leaves no partial
            // blob under any name.
            let tmp =
                NewFile::create_in(&blobs, 0o644).ctx(|| format!("writing {}", dest.display()))?;
            store
                .export_blob(&b.digest, b.size, tmp.file())
                .map_err(|e| e.within(&format!("writing {}", dir.display())))?;
            crate::util::fault::point("output-blob");
            tmp.persist(&dest)
                .ctx(|| format!("writing {}", dest.display()))?;
            Ok(Some(b.size))
        })
        .collect::<Result<_>>()?;
    let mut stats = WriteStats::default();
    for n in written.into_iter().flatten() {
        stats.blobs_written += 1;
        stats.bytes_written += n;
    }
    // The index last: replace an image with the same tag, keep the others.
    // Builds sharing the output folder (whatever their stores) update it
    // one at a time: a lock on the folder itself.
    let _lock = fs::File::open(dir)
        .and_then(|f| f.lock().map(|()| f))
        .ctx(|| format!("locking {}", dir.display()))?;
    let old = fs::read(dir.join("index.json")).ok();
    let mut index = match &old {
        Some(bytes) => serde_json::from_slice::<Index>(bytes).map_err(|e| {
            Error::input(
                dir.join("index.json"),
                format!("existing index.json is invalid: {e}"),
            )
        })?,
        None => Index {
            schema_version: 2,
            media_type: Some(MT_INDEX.into()),
            manifests: vec![],
            annotations: None,
        },
    };
    crate::util::fault::point("output-index");
    let ref_name = |d: &Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(ANN_REF_NAME))
            .cloned()
    };
    let replaced: Vec<Option<String>> = tops.iter().map(ref_name).collect();
    index.manifests.retain(|d| !replaced.contains(&ref_name(d)));
    index.manifests.extend(tops.iter().cloned());
    let bytes = to_bytes(&index);
    // A rebuild that changed nothing leaves the index as it is.
    if old.as_deref() != Some(bytes.as_slice()) {
        atomic_write(&dir.join("index.json"), &bytes)?;
    }
    Ok(stats)
}

/// An artifact about a manifest (an attestation): its manifest, with
/// `artifact_type` set, the blobs it names, and its subject.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub manifest: Descriptor,
    pub blobs: Vec<Descriptor>,
    pub subject: Descriptor,
}

/// Adds `artifacts` to the layout `dir` (after the images they are about):
/// their blobs, and their manifests in index.json, untagged and with their
/// artifact type, where OCI 1.1 readers find a manifest's referrers. An
/// artifact of the same type about the same subject is replaced.
pub fn write_artifacts(dir: &Path, store: &Store, artifacts: &[Artifact]) -> Result<WriteStats> {
    let blobs = dir.join("blobs/sha256");
    let mut stats = WriteStats::default();
    for b in artifacts
        .iter()
        .flat_map(|a| a.blobs.iter().chain(std::iter::once(&a.manifest)))
    {
        let dest = blobs.join(b.digest.hex());
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == b.size) {
            continue;
        }
        let tmp =
            NewFile::create_in(&blobs, 0o644).ctx(|| format!("writing {}", dest.display()))?;
        store
            .export_blob(&b.digest, b.size, tmp.file())
            .map_err(|e| e.within(&format!("writing {}", dir.display())))?;
        tmp.persist(&dest)
            .ctx(|| format!("writing {}", dest.display()))?;
        stats.blobs_written += 1;
        stats.bytes_written += b.size;
    }
    let _lock = fs::File::open(dir)
        .and_then(|f| f.lock().map(|()| f))
        .ctx(|| format!("locking {}", dir.display()))?;
    let path = dir.join("index.json");
    let old = fs::read(&path).ctx(|| format!("reading {}", path.display()))?;
    let mut index: Index = serde_json::from_slice(&old)
        .map_err(|e| Error::input(&path, format!("existing index.json is invalid: {e}")))?;
    // What each artifact already listed is about.
    let about = |d: &Descriptor| -> Option<(String, crate::digest::Digest)> {
        let t = d.artifact_type.clone()?;
        let bytes = fs::read(blobs.join(d.digest.hex())).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let s = crate::digest::Digest::parse_oci(v["subject"]["digest"].as_str()?)?;
        Some((t, s))
    };
    let new: Vec<(String, crate::digest::Digest)> = artifacts
        .iter()
        .map(|a| {
            (
                a.manifest.artifact_type.clone().unwrap_or_default(),
                a.subject.digest,
            )
        })
        .collect();
    index
        .manifests
        .retain(|d| about(d).is_none_or(|k| !new.contains(&k)));
    index
        .manifests
        .extend(artifacts.iter().map(|a| a.manifest.clone()));
    let bytes = to_bytes(&index);
    if old != bytes {
        atomic_write(&path, &bytes)?;
    }
    Ok(stats)
}

fn atomic_write(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = NewFile::create_in(dir, 0o644).ctx(|| format!("writing {}", dest.display()))?;
    tmp.file()
        .write_all(bytes)
        .ctx(|| format!("writing {}", dest.display()))?;
    tmp.persist(dest)
        .ctx(|| format!("writing {}", dest.display()))
}

fn file_entry(path: &str, size: u64) -> Entry {
    Entry {
        path: path.into(),
        kind: EntryKind::File { size },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
    }
}

fn dir_entry(path: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: EntryKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
    }
}

/// An oci-archive, or with `repo_tags` a docker-archive naming the image so.
fn write_archive(
    dest: &Path,
    store: &Store,
    img: &ImageOut,
    tops: &[Descriptor],
    repo_tags: Option<&[String]>,
    artifacts: &[Artifact],
) -> Result<WriteStats> {
    let docker = repo_tags.is_some();
    if docker && img.platforms.len() > 1 {
        return Err(Error::Usage(format!(
            "a docker-archive holds one platform, but {} is built for {}; use oci-archive or build one platform",
            img.id,
            img.platforms
                .iter()
                .map(|p| p.platform.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    // Named only once complete: a failed or killed build leaves nothing.
    let tmp = NewFile::create_in(dir, 0o644).ctx(|| format!("writing {}", dest.display()))?;
    let mut tw = TarWriter::new(BufWriter::new(
        tmp.file()
            .try_clone()
            .ctx(|| "reopening a temp file".into())?,
    ));
    let io = |e: std::io::Error| Error::io(format!("writing {}", dest.display()), e);
    let mut small: Vec<(String, Vec<u8>)> = Vec::new();
    let index = Index {
        schema_version: 2,
        media_type: Some(MT_INDEX.into()),
        manifests: tops
            .iter()
            .chain(artifacts.iter().map(|a| &a.manifest))
            .cloned()
            .collect(),
        annotations: None,
    };
    small.push(("index.json".into(), to_bytes(&index)));
    if let Some(repo_tags) = repo_tags {
        let p = &img.platforms[0];
        let manifest = serde_json::json!([{
            "Config": format!("blobs/sha256/{}", p.config_digest.hex()),
            "RepoTags": repo_tags,
            "Layers": p.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }]);
        small.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).expect("json"),
        ));
        let top_layer = p.layers.last().map(|l| l.digest.hex()).unwrap_or_default();
        let mut repositories = serde_json::Map::new();
        for name in repo_tags {
            let (repo, tag) = name.rsplit_once(':').expect("references carry a tag");
            let tags = repositories
                .entry(repo.to_string())
                .or_insert_with(|| serde_json::json!({}));
            tags[tag] = serde_json::Value::String(top_layer.clone());
        }
        small.push((
            "repositories".into(),
            serde_json::to_vec(&repositories).expect("json"),
        ));
    }
    small.push(("oci-layout".into(), OCI_LAYOUT.to_vec()));
    small.sort();
    tw.append_header(&dir_entry("blobs")).map_err(io)?;
    tw.append_header(&dir_entry("blobs/sha256")).map_err(io)?;
    let mut blobs: Vec<_> = img
        .blobs
        .iter()
        .chain(
            artifacts
                .iter()
                .flat_map(|a| a.blobs.iter().chain(std::iter::once(&a.manifest))),
        )
        .collect();
    blobs.sort_by_key(|b| b.digest);
    blobs.dedup_by_key(|b| b.digest);
    let mut buf = vec![0u8; 256 * 1024];
    let mut stats = WriteStats::default();
    for b in blobs {
        // The blob's bytes are hashed as they go into the archive; a bad
        // blob fails the write (the temp archive is dropped) and is
        // removed from the store.
        tw.append_header(&file_entry(
            &format!("blobs/sha256/{}", b.digest.hex()),
            b.size,
        ))
        .map_err(io)?;
        store
            .copy_blob_verified(&b.digest, b.size, tw.get_mut())
            .map_err(|e| e.within(&format!("writing {}", dest.display())))?;
        tw.pad(b.size).map_err(io)?;
        stats.blobs_written += 1;
        stats.bytes_written += b.size;
    }
    for (name, bytes) in &small {
        tw.append_header(&file_entry(name, bytes.len() as u64))
            .map_err(io)?;
        tw.append_data(&mut &bytes[..], bytes.len() as u64, &mut buf)
            .map_err(io)?;
    }
    let w = tw.finish().map_err(io)?;
    w.into_inner().map_err(|e| io(e.into_error()))?;
    crate::util::fault::point("output-archive");
    tmp.persist(dest).map_err(io)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_in_both_spellings() {
        assert_eq!(
            Output::parse("oci:out").unwrap(),
            Output::Layout("out".into())
        );
        assert_eq!(
            Output::parse("type=oci,dest=img.tar").unwrap(),
            Output::OciArchive("img.tar".into())
        );
        assert_eq!(
            Output::parse("type=docker,dest=img.tar").unwrap(),
            Output::DockerArchive("img.tar".into())
        );
        assert!(
            Output::parse("type=registry")
                .unwrap_err()
                .contains("--push")
        );
        assert_eq!(Output::parse("out").unwrap(), Output::Local("out".into()));
        assert_eq!(Output::parse("-").unwrap(), Output::Tar("-".into()));
        assert_eq!(
            Output::parse("type=oci,dest=lay,tar=false").unwrap(),
            Output::Layout("lay".into())
        );
        assert_eq!(
            Output::parse("type=local,dest=root").unwrap(),
            Output::Local("root".into())
        );
        assert_eq!(
            Output::parse("type=tar,dest=-").unwrap(),
            Output::Tar("-".into())
        );
        let s = OutputSpec::parse("type=image,\"name=r/a:1,r/b:2\",push=true").unwrap();
        assert_eq!((s.output, s.names.len(), s.push), (None, 2, true));
        let s = OutputSpec::parse("type=registry,name=r/a:1").unwrap();
        assert!(s.push);
        assert!(
            Output::parse("type=docker")
                .unwrap_err()
                .contains("docker load")
        );
        assert!(
            Output::parse("type=local,dest=-")
                .unwrap_err()
                .contains("standard output")
        );
        assert!(
            Output::parse("type=oci,dest=x,compression=zstd")
                .unwrap_err()
                .contains("compression=")
        );
        assert!(
            Output::parse("type=oci")
                .unwrap_err()
                .contains("needs dest=")
        );
        assert!(
            Output::parse("zip:x")
                .unwrap_err()
                .contains("unknown output type")
        );
        assert_eq!(
            Output::parse("./zip:x").unwrap(),
            Output::Local("./zip:x".into())
        );
    }
}

//! Plan and build: a definition's images built into the store, written to
//! a local output and/or pushed, with a report of what happened (the data
//! the command line's JSON carries).

use super::filesystem;
use super::load::{Source, absolute, load};
use super::mutate::{self, Annotation};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::exec::{self, BuildOptions};
use crate::layer::compress::Compression;
use crate::output::{self, Output, PlatformOut};
use crate::plan::{self, Plan, PlanOptions};
use crate::progress::ProgressSink;
use crate::registry::cache::{self, CacheOptions, CacheRef, ExportStats};
use crate::registry::{self, Client, Reference};
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to plan: a definition and how its layers are made.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    pub source: Source,
    pub profile: Option<String>,
    /// Only these images (and the images they are based on); all when empty.
    pub images: Vec<String>,
    pub compression: Compression,
    /// Keep VCS folders and Python caches when the context has no
    /// `.dockerignore`.
    pub no_default_ignore: bool,
    /// Run `uv lock` for uv projects first.
    pub relock: bool,
    /// Native Debian bases: build only from `imgbuild.lock`.
    pub locked: bool,
    /// Apt sources for native Debian bases that name none.
    pub debian_sources: Vec<String>,
    /// Docker Hub bases come from this mirror (HOST[/PREFIX]).
    pub base_mirror: Option<String>,
    /// `mtime` of every file in a layer and the image's `created`.
    pub source_date_epoch: u64,
    /// Read no step from the cache: every layer is built again (and
    /// stored, so the next build hits).
    pub no_cache: bool,
    /// Build these images (a Dockerfile's stages) again, as `no_cache`
    /// does for all.
    pub no_cache_filter: Vec<String>,
    /// Whether a build writes a cold files layer while planning, reading
    /// each file once (default: when no hit is likely). `plan` never does.
    pub one_pass: plan::OnePass,
    /// Registry step caches read (`--cache-from`) and written
    /// (`--cache-to`).
    pub cache: CacheOptions,
}

impl PlanRequest {
    /// A request for `source` with the defaults of the command line.
    pub fn new(source: Source) -> PlanRequest {
        PlanRequest {
            source,
            profile: None,
            images: Vec::new(),
            compression: Compression::Gzip,
            no_default_ignore: false,
            relock: false,
            locked: false,
            debian_sources: Vec::new(),
            base_mirror: None,
            source_date_epoch: 0,
            no_cache: false,
            no_cache_filter: Vec::new(),
            one_pass: plan::OnePass::Auto,
            cache: CacheOptions::default(),
        }
    }
}

/// Plans the images of `req`: steps, keys, cache hits. `output` (where the
/// build will write) and the store are kept out of every layer.
pub fn plan(
    req: &PlanRequest,
    store: &Store,
    output: Option<&Output>,
    client: Option<&Client>,
) -> Result<Plan> {
    plan_for(req, store, output, client, None)
}

/// [`plan`] for a build with `threads` workers (`Some`): cold files layers
/// may then be written while planning, as `req.one_pass` says.
fn plan_for(
    req: &PlanRequest,
    store: &Store,
    output: Option<&Output>,
    client: Option<&Client>,
    threads: Option<usize>,
) -> Result<Plan> {
    // A Dockerfile stage on an image runs the image's ONBUILD triggers:
    // its config is read from the layout or the registry.
    let triggers = |base: &crate::spec::Base, p: &crate::oci::Platform| -> Result<Vec<String>> {
        let config = match base {
            crate::spec::Base::Layout { dir, tag } => {
                crate::oci::layout::read_image(dir, tag.as_deref(), p)?.config
            }
            crate::spec::Base::Ref(r) => {
                let Some(client) = client else {
                    return Ok(Vec::new());
                };
                let reference = crate::registry::Reference::parse(r).map_err(Error::Usage)?;
                let reference = plan::mirrored(reference, req.base_mirror.as_deref());
                let images =
                    crate::registry::resolve(client, store, &reference, std::slice::from_ref(p))?;
                match images.into_iter().next() {
                    Some(i) => i.config,
                    None => return Ok(Vec::new()),
                }
            }
            _ => return Ok(Vec::new()),
        };
        Ok(config
            .config
            .extra
            .get("OnBuild")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    };
    let def = super::load::load_with(&req.source, req.profile.as_deref(), Some(&triggers))?;
    let mut exclude = vec![absolute(store.root())];
    if let Some(out) = output {
        for img in &def.images {
            exclude.push(absolute(out.for_image(&img.id).path()));
        }
        if *out == Output::parse(output::DEFAULT).expect("valid") {
            exclude.push(absolute(Path::new("imgbuild-out")));
        }
    }
    let options = PlanOptions {
        exclude,
        base_mirror: req.base_mirror.clone(),
        compression: req.compression,
        no_default_ignore: req.no_default_ignore || req.source.is_prepared_context(),
        only: req.images.clone(),
        profile: req.profile.clone(),
        python: plan::python::PyPlanOptions { relock: req.relock },
        debian_locked: req.locked,
        debian_sources: req.debian_sources.clone(),
        source_date_epoch: req.source_date_epoch,
        debian_relock: false,
        one_pass: threads.map_or(plan::OnePass::Off, |_| req.one_pass),
        threads: threads.unwrap_or(1),
        // The command line's caches, else the definition's.
        cache_from: if req.cache.from.is_empty() {
            def.cache.from.clone()
        } else {
            req.cache.from.clone()
        },
        // A local output needs the layers; a push mounts them, and `plan`
        // only says where they are.
        fetch_cache_hits: threads.is_some() && output.is_some(),
    };
    let mut plan = plan::plan(def, store, options, client)?;
    for name in &req.no_cache_filter {
        if !plan.images.iter().any(|i| i.id.eq_ignore_ascii_case(name)) {
            let ids: Vec<&str> = plan.images.iter().map(|i| i.id.as_str()).collect();
            return Err(Error::Usage(format!(
                "--no-cache-filter {name}: no stage or image is named so (there are: {})",
                ids.join(", ")
            )));
        }
    }
    for img in &mut plan.images {
        if req.no_cache
            || req
                .no_cache_filter
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&img.id))
        {
            for s in &mut img.steps {
                // A layer written while planning is this build's own.
                if !plan.made_in_plan.contains(&s.key) {
                    s.cached = None;
                }
            }
        }
    }
    Ok(plan)
}

/// What `lock` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct LockReport {
    /// The lock file.
    pub lock: PathBuf,
    pub bases: Vec<LockedBase>,
}

/// One native Debian base of a lock.
#[derive(Clone, Debug, Serialize)]
pub struct LockedBase {
    pub image: String,
    pub arch: String,
    /// How many packages it installs.
    pub packages: usize,
}

/// Resolves every native Debian base of the definition again and writes
/// `imgbuild.lock`.
pub fn lock(req: &PlanRequest, store: &Store, client: &Client) -> Result<LockReport> {
    let def = load(&req.source, req.profile.as_deref())?;
    let options = PlanOptions {
        only: req.images.clone(),
        profile: req.profile.clone(),
        debian_relock: true,
        debian_sources: req.debian_sources.clone(),
        ..PlanOptions::default()
    };
    let plan = plan::plan(def, store, options, Some(client))?;
    let Some((path, lock, _)) = &plan.debian_lock else {
        return Err(Error::Usage(
            "no image of the definition has a native Debian base (base = { debian = … })".into(),
        ));
    };
    lock.save(path)?;
    Ok(LockReport {
        lock: path.clone(),
        bases: lock
            .bases
            .iter()
            .map(|b| LockedBase {
                image: b.image.clone(),
                arch: b.arch.clone(),
                packages: b.packages.len(),
            })
            .collect(),
    })
}

/// What to build and where it goes.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    pub plan: PlanRequest,
    /// Where images are written locally; `None` with a push writes nothing.
    pub output: Option<Output>,
    /// Push each selected image to `registry/name:tag` of the definition,
    /// or to `tags` when given.
    pub push: bool,
    /// The names of the (one) selected image, as `docker buildx build -t`:
    /// the references it is pushed to with `push`, and the names the local
    /// output carries (layout tags, an archive's repository tags). Naming
    /// never pushes by itself.
    pub tags: Vec<Reference>,
    /// Parallel uploads.
    pub push_jobs: usize,
    /// Docker v2 schema 2 media types instead of OCI's.
    pub docker_media_types: bool,
    /// Secret values by id, for RUN steps' secret mounts.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets by id, for RUN steps' ssh mounts.
    pub ssh: BTreeMap<String, std::path::PathBuf>,
    /// Compression workers per layer.
    pub threads: usize,
    /// Labels added to the result image's config, over its own.
    pub labels: BTreeMap<String, String>,
    /// Annotations on the result image's manifests, index and descriptors.
    pub annotations: Vec<Annotation>,
    /// Let steps marked `RUN --security=insecure` (`security =
    /// "insecure"`) run without containment (buildx's `--allow
    /// security.insecure`); without it such a build is refused.
    pub allow_insecure: bool,
    /// Attestations attached to each result image (`--sbom`).
    pub attest: super::attest::Attest,
}

impl BuildRequest {
    /// A build of `plan` into the default output, as the command line does
    /// without flags.
    pub fn new(plan: PlanRequest) -> BuildRequest {
        BuildRequest {
            plan,
            output: Some(Output::parse(output::DEFAULT).expect("valid")),
            push: false,
            tags: Vec::new(),
            push_jobs: 4,
            docker_media_types: false,
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            labels: BTreeMap::new(),
            annotations: Vec::new(),
            allow_insecure: false,
            attest: Default::default(),
        }
    }
}

/// One pushed reference.
#[derive(Clone, Debug, Serialize)]
pub struct Pushed {
    pub reference: String,
    pub digest: Digest,
    pub blobs_uploaded: u64,
    pub blobs_present: u64,
    pub bytes_uploaded: u64,
}

/// What became of one image.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ImageReport {
    /// `tag = "auto"` and every target already holds it: not built.
    UpToDate {
        name: String,
        reference: String,
        tag: String,
        up_to_date: bool,
        /// The references that hold it.
        pushed: Vec<String>,
    },
    Built {
        name: String,
        reference: String,
        tag: String,
        /// The local output written, if any (`oci:DIR`, …).
        output: Option<String>,
        /// The manifest's digest (one platform) or the index's (several).
        digest: Digest,
        media_type: String,
        /// The size of that manifest or index.
        size: u64,
        platforms: Vec<PlatformOut>,
        up_to_date: bool,
        pushed: Vec<Pushed>,
        /// The attestations attached to the image's manifests.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        attestations: Vec<AttestationReport>,
    },
}

/// One attestation attached to a platform manifest.
#[derive(Clone, Debug, Serialize)]
pub struct AttestationReport {
    pub artifact_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The manifest it is about.
    pub subject: Digest,
}

/// The result of a build: what the command line prints as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct BuildReport {
    pub images: Vec<ImageReport>,
    pub layers_built: usize,
    pub bytes_compressed: u64,
    pub bytes_written: u64,
    pub bytes_uploaded: u64,
    /// Steps whose layers came from a registry cache (`--cache-from`).
    pub cache_hits_registry: usize,
    /// Steps looked up in the registry caches and found in none (so built
    /// here, or taken from the store when it had them after all).
    pub cache_misses_registry: usize,
    /// What writing the registry cache did (`--cache-to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_export: Option<ExportStats>,
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

/// Plans and builds `req`: missing layers are built into `store`, each
/// result image is written to the output and pushed. Registry access
/// (bases, pushes, `tag = "auto"` checks) goes through `client`; progress
/// and warnings go to `progress`.
pub fn build(
    req: &BuildRequest,
    store: &Store,
    client: &Client,
    progress: &dyn ProgressSink,
) -> Result<BuildReport> {
    // The store's warnings (bad blobs found and removed) also go into the
    // report, for callers that read only the JSON.
    let progress = &Recorded {
        inner: progress,
        kept: std::sync::Mutex::new(Vec::new()),
    };
    // Phases given no sink (index fetches, downloads, pushes) report here.
    let r = crate::progress::with_sink(progress, || {
        let mut tries = 0;
        loop {
            match build_with(req, store, client, progress) {
                // A bad blob was found (and removed) as an output, a push or
                // an extraction read it: building again rebuilds or fetches
                // it. Nothing was half-written: indexes and manifests go
                // last. Each round removes a bad blob; a store that keeps
                // giving bad bytes fails after a few.
                Err(Error::CorruptBlob { .. }) if tries < CORRUPT_RETRIES => {
                    tries += 1;
                    progress.warning("warning: building again without the bad blob");
                }
                r => return r,
            }
        }
    });
    r.map(|mut report| {
        let kept = progress.kept.lock().unwrap_or_else(|e| e.into_inner());
        report.warnings.extend(kept.iter().cloned());
        report
    })
}

/// A step that runs without containment needs the build's consent, as
/// buildx's `--allow security.insecure`: without it the build is refused
/// before anything runs, naming the step.
fn check_entitlements(plan: &Plan, req: &BuildRequest) -> Result<()> {
    if req.allow_insecure {
        return Ok(());
    }
    for s in plan.images.iter().flat_map(|i| &i.steps) {
        if let plan::Action::Run(rs) = &s.action
            && rs.insecure
        {
            let asked = if req.plan.source.is_dockerfile() {
                "RUN --security=insecure"
            } else {
                "security = \"insecure\""
            };
            return Err(Error::Definition {
                loc: Box::new(s.loc.clone()),
                message: format!(
                    "{asked} runs the step without containment; it is refused unless the build is run with `--allow security.insecure`"
                ),
            });
        }
    }
    Ok(())
}

/// A sink that passes everything on and keeps the store's warnings.
struct Recorded<'a> {
    inner: &'a dyn ProgressSink,
    kept: std::sync::Mutex<Vec<String>>,
}

impl ProgressSink for Recorded<'_> {
    fn line(&self, msg: &str) {
        self.inner.line(msg)
    }
    fn warning(&self, msg: &str) {
        if msg.starts_with("warning: store blob")
            || msg.starts_with("warning: building again")
            || msg.starts_with("warning: cache ")
        {
            self.kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(msg.to_string());
        }
        self.inner.warning(msg)
    }
    fn start(&self, label: &str, total: u64) -> Box<dyn crate::progress::Task> {
        self.inner.start(label, total)
    }
    fn output(&self, label: &str, line: &str) {
        self.inner.output(label, line)
    }
}

/// How many times a build runs again after finding bad blobs in the store.
const CORRUPT_RETRIES: usize = 3;

fn build_with(
    req: &BuildRequest,
    store: &Store,
    client: &Client,
    progress: &dyn ProgressSink,
) -> Result<BuildReport> {
    let t0 = Instant::now();
    let out = req.output.as_ref();
    let push = req.push;
    let planning = progress.start("load and plan", 0);
    let plan = plan_for(&req.plan, store, out, Some(client), Some(req.threads))?;
    planning.finish(&format!(
        "{} image(s), {} step(s)",
        plan.images.len(),
        plan.images.iter().map(|i| i.steps.len()).sum::<usize>()
    ));
    check_entitlements(&plan, req)?;
    if let Some((path, lock, true)) = &plan.debian_lock {
        lock.save(path)?;
    }
    // A Dockerfile's result is its target stage (the last image); the stages
    // below it are built into the store only, as docker does.
    let dockerfile_target = req
        .plan
        .source
        .is_dockerfile()
        .then(|| plan.images.len() - 1);
    let is_result = |i: usize| dockerfile_target.is_none_or(|t| t == i);
    if let Some(out) = out
        && dockerfile_target.is_none()
    {
        check_output_fits(&plan, out)?;
    }
    let selected: Vec<usize> = (0..plan.images.len())
        .filter(|&i| req.plan.images.is_empty() || req.plan.images.contains(&plan.images[i].id))
        .filter(|&i| is_result(i))
        .collect();
    let targets = push_targets(&plan, &selected, push, &req.tags)?;
    let names = output_names(&plan, &selected, &req.tags)?;
    let mut skip = up_to_date(&plan, &targets, push && out.is_none(), client)?;
    // A stage asked to be built again (`--no-cache`, `--no-cache-filter`)
    // is built even when nothing reads it anew.
    let forced = |i: usize| {
        req.plan.no_cache
            || req
                .plan
                .no_cache_filter
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&plan.images[i].id))
    };
    skip_unread_stages(&plan, &|i| is_result(i) || forced(i), &mut skip);
    let mut warnings = Vec::new();
    for (i, img) in plan.images.iter().enumerate() {
        if skip[i] {
            continue;
        }
        for n in img.steps.iter().flat_map(|s| &s.notes) {
            if n.starts_with("warning:") {
                let w = format!("[{}] {n}", img.id);
                progress.warning(&w);
                warnings.push(w);
            }
        }
    }
    // An SBOM reads the base's layers: while the build runs, not after.
    let sbom_wanted = req.attest.resolve(&plan.definition).sbom == Some(true);
    let prescan = if sbom_wanted {
        super::attest::base_layers(&plan, store)
    } else {
        Vec::new()
    };
    let res = std::thread::scope(|sc| {
        let pre =
            (!prescan.is_empty()).then(|| sc.spawn(|| super::attest::prescan(store, &prescan)));
        let res = exec::run(
            &plan,
            store,
            &BuildOptions {
                threads: req.threads,
                progress,
                client: Some(client),
                fetch_base_layers: out.is_some(),
                remote_layers: &plan.remote_layers,
                skip: skip.clone(),
                docker_media_types: req.docker_media_types,
                secrets: req.secrets.clone(),
                ssh: req.ssh.clone(),
                allow_insecure: req.allow_insecure,
                inventories: sbom_wanted,
            },
        );
        if let Some(h) = pre {
            let _ = h.join();
        }
        res
    })?;
    let mut report = BuildReport {
        images: Vec::new(),
        layers_built: res.layers_built,
        bytes_compressed: res.bytes_compressed,
        bytes_written: 0,
        bytes_uploaded: 0,
        cache_hits_registry: plan.registry_hits.len(),
        cache_misses_registry: plan.registry_misses.len(),
        cache_export: None,
        warnings,
        duration_ms: 0,
    };
    // What attestations read that a registry cache can share.
    let mut shared_data = super::attest::SharedData::new();
    for (i, img) in plan.images.iter().enumerate() {
        if !is_result(i) {
            continue;
        }
        if skip[i] {
            report.images.push(ImageReport::UpToDate {
                name: img.id.clone(),
                reference: img.reference(),
                tag: img.tag.clone(),
                up_to_date: true,
                pushed: targets[i].iter().map(|r| r.to_string()).collect(),
            });
            continue;
        }
        let mut built = res
            .images
            .iter()
            .find(|x| x.id == img.id)
            .expect("built")
            .clone();
        mutate::apply(
            store,
            &mut built,
            &req.labels,
            &req.annotations,
            req.docker_media_types,
        )?;
        let built = &built;
        let attest = req.attest.resolve(&plan.definition);
        let artifacts = if attest.any() {
            let name = match names[i].as_ref().and_then(|n| n.first()) {
                Some(r) => r.to_string(),
                None => built.reference.clone(),
            };
            let task = progress.start(&format!("[{}] attestations", img.id), 0);
            let (a, shared) = super::attest::attachments(
                &plan,
                i,
                built,
                &name,
                &req.plan.source,
                store,
                Some(client),
                &attest,
            )?;
            task.finish(&format!("{} document(s)", a.len()));
            shared_data.extend(shared);
            a
        } else {
            Vec::new()
        };
        let mut written = None;
        if let Some(out) = out {
            let target = out.for_image(&built.id);
            let task = progress.start(&format!("[{}] write {}", img.id, target.display()), 0);
            let stats = match &names[i] {
                _ if target.is_filesystem() => filesystem::write(&target, store, built)?,
                refs => output::write_attested(
                    &target,
                    store,
                    built,
                    refs.as_deref().unwrap_or_default(),
                    &artifacts,
                )?,
            };
            if !artifacts.is_empty()
                && (target.is_filesystem() || matches!(target, Output::DockerArchive(_)))
            {
                progress.warning(&format!(
                    "warning: [{}] attestations go into OCI layouts, oci-archives and pushes, not into {}",
                    img.id,
                    target.display()
                ));
            }
            task.finish(&crate::progress::human(stats.bytes_written));
            report.bytes_written += stats.bytes_written;
            written = Some(target.display());
        }
        let mut pushed = Vec::new();
        for (repo, tags) in group_by_repository(&targets[i]) {
            progress.line(&format!(
                "[{}] pushing to {}/{} ({})",
                img.id,
                repo.registry,
                repo.repository,
                tags.join(", ")
            ));
            let st = registry::push(
                client,
                store,
                &registry::PushRequest {
                    target: &repo,
                    tags: &tags,
                    top: &built.top,
                    blobs: &built.blobs,
                    base: built.base_ref.as_ref(),
                    cached: &plan.remote_layers,
                },
                req.push_jobs,
            )?;
            report.bytes_uploaded += st.bytes_uploaded;
            if !artifacts.is_empty() {
                let refs: Vec<registry::referrers::Referrer> = artifacts
                    .iter()
                    .map(|a| registry::referrers::Referrer {
                        manifest: &a.manifest,
                        blobs: &a.blobs,
                        subject: &a.subject,
                    })
                    .collect();
                let at = registry::referrers::push_referrers(client, store, &repo, &refs)?;
                report.bytes_uploaded += at.bytes_uploaded;
            }
            for t in &tags {
                pushed.push(Pushed {
                    reference: repo.with_tag(t).to_string(),
                    digest: built.top.digest,
                    blobs_uploaded: st.blobs_uploaded,
                    blobs_present: st.blobs_present,
                    bytes_uploaded: st.bytes_uploaded,
                });
            }
        }
        let (reference, tag) = match names[i].as_ref().and_then(|n| n.first()) {
            Some(r) => (r.to_string(), r.tag.clone().unwrap_or_default()),
            None => (built.reference.clone(), built.tag.clone()),
        };
        report.images.push(ImageReport::Built {
            name: built.id.clone(),
            reference,
            tag,
            output: written,
            digest: built.top.digest,
            media_type: built.top.media_type.clone(),
            size: built.top.size,
            platforms: built.platforms.clone(),
            up_to_date: false,
            pushed,
            attestations: artifacts
                .iter()
                .map(|a| AttestationReport {
                    artifact_type: a.manifest.artifact_type.clone().unwrap_or_default(),
                    digest: a.manifest.digest,
                    size: a.manifest.size,
                    subject: a.subject.digest,
                })
                .collect(),
        });
    }
    let cache_to = req
        .plan
        .cache
        .to
        .as_ref()
        .or(plan.definition.cache.to.as_ref());
    if let Some(to) = cache_to {
        let stats = export_cache(
            &plan,
            &shared_data,
            store,
            client,
            to,
            &skip,
            &is_result,
            &targets,
        );
        match stats {
            Ok(s) => report.cache_export = Some(s),
            // The report gets the warning from the sink, which keeps the
            // cache's warnings.
            Err(e) if to.ignore_error => {
                progress.warning(&format!("warning: cache {}: not written: {e}", to.repo))
            }
            Err(e) => return Err(e),
        }
    }
    report.duration_ms = t0.elapsed().as_millis() as u64;
    // A plan of many files takes milliseconds to free, entry by entry:
    // freed on a thread of its own, the report is not held up by it.
    std::thread::spawn(move || drop(plan));
    Ok(report)
}

/// Writes the entries of the steps built or used into the cache `to`: the
/// images' own steps (`mode=min`), or every image's (`mode=max`, earlier
/// stages too). A layer pushed to the same registry is mounted from there.
#[allow(clippy::too_many_arguments)]
fn export_cache(
    plan: &Plan,
    shared: &super::attest::SharedData,
    store: &Store,
    client: &Client,
    to: &CacheRef,
    skip: &[bool],
    is_result: &dyn Fn(usize) -> bool,
    targets: &[Vec<Reference>],
) -> Result<ExportStats> {
    let mut entries: BTreeMap<Digest, (LayerDesc, Option<String>)> = BTreeMap::new();
    for (i, img) in plan.images.iter().enumerate() {
        if skip[i] || !(to.max || is_result(i)) {
            continue;
        }
        let mount = targets[i]
            .iter()
            .find(|t| t.registry == to.repo.registry)
            .map(|t| t.repository.clone());
        for s in img.steps.iter().filter(|s| s.makes_layer()) {
            // Built or stored, else a hit still in its cache repository
            // (mounted from there when the image is not on this registry).
            let (desc, mount) = match (store.step_get(&s.key), &s.cached) {
                (Some(d), _) => (d, mount.clone()),
                (None, Some(d)) => {
                    let origin = plan
                        .remote_layers
                        .get(&d.digest)
                        .map(|c| &c.repo)
                        .filter(|o| o.registry == to.repo.registry)
                        .map(|o| o.repository.clone());
                    (d.clone(), mount.clone().or(origin))
                }
                (None, None) => continue,
            };
            entries.entry(s.key).or_insert((desc, mount));
        }
    }
    let task = crate::progress::start(&format!("[{}] write cache", to.repo), 0);
    // One HEAD per entry, in parallel; an unchanged build stops there.
    let missing: Vec<_> = entries
        .par_iter()
        .map(
            |(key, (desc, _))| Ok((!cache::has_entry(client, &to.repo, key, desc)?).then_some(key)),
        )
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    // Planning's results, and what attestations read (layer inventories).
    let data: BTreeMap<&Digest, &(&str, Vec<u8>)> =
        plan.cache_data.iter().chain(shared.iter()).collect();
    let data_missing: Vec<_> = data
        .par_iter()
        .map(|(key, (mt, data))| {
            Ok((!cache::has_data(client, &to.repo, key, mt, data)?).then_some(*key))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut stats = ExportStats {
        entries_present: (entries.len() - missing.len() + data.len() - data_missing.len()) as u64,
        ..ExportStats::default()
    };
    if !missing.is_empty() || !data_missing.is_empty() {
        cache::put_config(client, store, &to.repo, &mut stats)?;
    }
    for key in data_missing {
        let (mt, bytes) = data[key];
        cache::put_data(client, store, &to.repo, key, mt, bytes, &mut stats)?;
    }
    let written = missing
        .par_iter()
        .map(|key| {
            let (desc, mount) = &entries[*key];
            let mut s = ExportStats::default();
            if mount.is_none()
                && !store.blob_ok(&desc.digest, desc.size)
                && let Some(hit) = plan.remote_layers.get(&desc.digest)
            {
                cache::fetch_hit(client, hit, store)?;
            }
            cache::put_entry(client, store, &to.repo, key, desc, mount.as_deref(), &mut s)?;
            Ok(s)
        })
        .collect::<Result<Vec<_>>>()?;
    for s in written {
        stats.entries_written += s.entries_written;
        stats.blobs_uploaded += s.blobs_uploaded;
        stats.bytes_uploaded += s.bytes_uploaded;
    }
    task.finish(&format!(
        "{} entries written, {} already there",
        stats.entries_written, stats.entries_present
    ));
    Ok(stats)
}

/// Several images can share one output only as a layout, under different
/// tags (or with `{image}` in the path).
fn check_output_fits(plan: &Plan, out: &Output) -> Result<()> {
    if plan.images.len() <= 1 || out.has_placeholder() {
        return Ok(());
    }
    for (i, x) in plan.images.iter().enumerate() {
        if let Some(y) = plan.images[..i].iter().find(|y| y.tag == x.tag) {
            return Err(Error::Usage(format!(
                "images {} and {} both have tag {:?} and would replace each other in {}: give them different tags, put {{image}} in the output path, or pick one with --image",
                y.id,
                x.id,
                x.tag,
                out.display()
            )));
        }
    }
    if !matches!(out, Output::Layout(_)) {
        let names: Vec<&str> = plan.images.iter().map(|i| i.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "{} images ({}) but one output file: put {{image}} in the path or pick one with --image",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

/// Push targets per image: `tags` (for the one selected image), else
/// `registry/name:tag` of the definition.
fn push_targets(
    plan: &Plan,
    selected: &[usize],
    push: bool,
    tags: &[Reference],
) -> Result<Vec<Vec<Reference>>> {
    let mut targets: Vec<Vec<Reference>> = vec![Vec::new(); plan.images.len()];
    if !push {
        return Ok(targets);
    }
    if !tags.is_empty() {
        if selected.len() != 1 {
            return Err(Error::Usage(format!(
                "--tag names one image's references, but {} images are selected: pick one with --image",
                selected.len()
            )));
        }
        targets[selected[0]] = tags.to_vec();
        return Ok(targets);
    }
    for &i in selected {
        let img = &plan.images[i];
        if img.registry.is_none() {
            return Err(Error::Usage(format!(
                "image {} has no `registry` to push to: set it in the definition or pass --tag REF",
                img.id
            )));
        }
        targets[i] = vec![Reference::parse(&img.reference()).map_err(Error::Usage)?];
    }
    Ok(targets)
}

/// The names `--tag` gives the one selected image's local output; None
/// where an image keeps its definition's name.
fn output_names(
    plan: &Plan,
    selected: &[usize],
    tags: &[Reference],
) -> Result<Vec<Option<Vec<Reference>>>> {
    let mut names = vec![None; plan.images.len()];
    if tags.is_empty() {
        return Ok(names);
    }
    if selected.len() != 1 {
        return Err(Error::Usage(format!(
            "--tag names one image, but {} images are selected: pick one with --image",
            selected.len()
        )));
    }
    names[selected[0]] = Some(tags.to_vec());
    Ok(names)
}

/// `tag = "auto"`: an image every target already holds with every platform
/// is up to date and not built (unless another image to build stands on it).
/// Marks the images no output and no step to build needs: a Dockerfile's
/// earlier stage whose every reader (`COPY --from`, a RUN mount) is a hit,
/// as BuildKit leaves a stage whose results are all cached. An image
/// another image is built on, and one `wanted`, is always built.
fn skip_unread_stages(plan: &Plan, wanted: &dyn Fn(usize) -> bool, skip: &mut [bool]) {
    for i in (0..plan.images.len()).rev() {
        if skip[i] || wanted(i) {
            continue;
        }
        let needed = plan.images.iter().enumerate().any(|(j, x)| {
            !skip[j]
                && j != i
                && (matches!(x.base, plan::BasePlan::Image(b) if b == i)
                    || x.steps
                        .iter()
                        .any(|s| s.cached.is_none() && s.reads_images().contains(&i)))
        });
        skip[i] = !needed;
    }
}

fn up_to_date(
    plan: &Plan,
    targets: &[Vec<Reference>],
    check: bool,
    client: &Client,
) -> Result<Vec<bool>> {
    let mut skip = vec![false; plan.images.len()];
    if !check {
        return Ok(skip);
    }
    for i in (0..plan.images.len()).rev() {
        let img = &plan.images[i];
        let needed = plan.images.iter().enumerate().any(|(j, x)| {
            !skip[j] && j != i && matches!(x.base, plan::BasePlan::Image(b) if b == i)
        });
        if !img.auto_tag || targets[i].is_empty() || needed {
            continue;
        }
        let mut all = true;
        for t in &targets[i] {
            all &= registry::exists(client, t, &img.platforms)?;
        }
        skip[i] = all;
    }
    Ok(skip)
}

/// Targets grouped by repository (one push per repository, its tags
/// together), in the order first named.
fn group_by_repository(targets: &[Reference]) -> Vec<(Reference, Vec<String>)> {
    let mut groups: Vec<(Reference, Vec<String>)> = Vec::new();
    for t in targets {
        let tag = t.tag.clone().unwrap_or_else(|| "latest".into());
        match groups
            .iter_mut()
            .find(|(r, _)| r.registry == t.registry && r.repository == t.repository)
        {
            Some((_, tags)) => tags.push(tag),
            None => groups.push((t.clone(), vec![tag])),
        }
    }
    groups
}

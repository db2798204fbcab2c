//! The `imgbuild` command line: parse, call the library, render the result.

use clap::{Args, Parser, Subcommand, ValueEnum};
use imgbuild::error::{Error, Result, exit};
use imgbuild::layer::compress::Compression;
use imgbuild::oci::Platform;
use imgbuild::output::{self, Output};
use imgbuild::plan::{self, Action};
use imgbuild::progress::{Mode as ProgressMode, Progress, ProgressSink, human};
use imgbuild::registry::Reference;
use imgbuild::store::{self, Store};
use imgbuild::{BuildRequest, ImageReport, PlanRequest, Source};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "imgbuild",
    version,
    about = "Daemonless, reproducible OCI image builds"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build images from a definition into an OCI layout or archive.
    Build(Box<BuildArgs>),
    /// Show the steps of a build, their keys and whether they are cached.
    Plan(DefArgs),
    /// Show an image in an OCI layout (oci:DIR[:TAG]) or a registry (REF).
    Inspect(InspectArgs),
    /// Push an OCI layout, oci-archive or docker-archive to a registry.
    Push(PushArgs),
    /// Exit 0 if REF exists (with every --platform), 1 if it does not, 6 on any error.
    Exists(ExistsArgs),
    /// Print the SBOM attached to an image (oci:DIR[:TAG] or REF; build with --sbom).
    Sbom(SbomArgs),
    /// List the attestations attached to an image (oci:DIR[:TAG] or REF).
    Attestations(AttestationsArgs),
    /// Report the host tools imgbuild uses (uv for Python layers) and where they come from.
    Doctor {
        /// Install uv into the store when it is not on PATH.
        #[arg(long)]
        install_uv: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[arg(long, env = "IMGBUILD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Resolve native Debian bases from their signed indices into imgbuild.lock.
    Lock(DefArgs),
    /// Write a definition in another format (a Dockerfile).
    Export {
        #[command(subcommand)]
        what: ExportCmd,
    },
    /// Manage the local store.
    Cache {
        #[command(subcommand)]
        cmd: CacheCmd,
    },
}

#[derive(Subcommand)]
enum ExportCmd {
    /// A Dockerfile equivalent to the definition: one stage per image.
    Dockerfile(ExportDockerfileArgs),
}

#[derive(Args)]
struct ExportDockerfileArgs {
    /// An imgbuild.toml, or a folder holding one.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The definition as a file (TOML or JSON), or - for standard input; replaces PATH.
    #[arg(long)]
    definition: Option<String>,
    /// Build Flyte's image spec (flyteidl2 ImageSpec as JSON) with --context as the
    /// build folder the SDK prepared; replaces PATH.
    #[arg(long = "flyte-spec", value_name = "SPEC.json")]
    flyte_spec: Option<PathBuf>,
    /// The build context for --definition.
    #[arg(long)]
    context: Option<PathBuf>,
    /// Only these images (and their bases); repeatable.
    #[arg(long = "image")]
    images: Vec<String>,
    /// Apply a per-environment profile.
    #[arg(long)]
    profile: Option<String>,
    /// Write the Dockerfile here instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// The image RUN steps take uv from (`--mount=from=`) for Python layers.
    #[arg(long, default_value = "ghcr.io/astral-sh/uv:latest")]
    uv_image: String,
}

#[derive(Subcommand)]
enum CacheCmd {
    /// Remove cache entries not used recently, and blobs nothing references.
    Prune {
        /// Remove entries older than this (e.g. 7d, 12h, 30m, 0 for all).
        #[arg(long, default_value = "7d")]
        older_than: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[arg(long, env = "IMGBUILD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Re-hash every blob of the store; remove those that do not match
    /// their digest (their steps are rebuilt, their base layers fetched
    /// again by the next build). Exit 0 when all are good, 1 when bad
    /// blobs were found and removed.
    Verify {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[arg(long, env = "IMGBUILD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Print the store's location.
    Dir {
        #[arg(long, env = "IMGBUILD_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Args)]
struct DefArgs {
    /// An imgbuild.toml, or a folder holding one; with --file, the build context.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// A registry step cache to read: REPOSITORY, or buildx's
    /// type=registry,ref=REPOSITORY (repeatable; the first that has a step
    /// wins). Default: $IMGBUILD_CACHE_FROM (whitespace-separated).
    #[arg(long = "cache-from", value_name = "REF")]
    cache_from: Vec<String>,
    /// Build this Dockerfile instead of a definition (PATH is its context).
    #[arg(long = "file", short = 'f')]
    file: Option<PathBuf>,
    /// A Dockerfile ARG value, KEY=VALUE (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// The Dockerfile stage to build (default: the last).
    #[arg(long)]
    target: Option<String>,
    /// Platforms of a Dockerfile build, e.g. linux/amd64,linux/arm64, or
    /// `local` (default: this host's); repeatable.
    #[arg(long = "platform", value_delimiter = ',')]
    platforms: Vec<String>,
    /// A Dockerfile's named context (repeatable): NAME=PATH (a folder),
    /// NAME=docker-image://REF or NAME=oci-layout://PATH[:TAG|@sha256:…];
    /// it replaces the stage or image NAME in FROM and COPY --from.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    build_contexts: Vec<String>,
    /// The definition as a file (TOML or JSON), or - for standard input; replaces PATH.
    #[arg(long)]
    definition: Option<String>,
    /// Build Flyte's image spec (flyteidl2 ImageSpec as JSON) with --context as the
    /// build folder the SDK prepared; replaces PATH.
    #[arg(long = "flyte-spec", value_name = "SPEC.json")]
    flyte_spec: Option<PathBuf>,
    /// The build context for --definition (default: the definition's folder, or . for stdin).
    #[arg(long)]
    context: Option<PathBuf>,
    /// Build only these images (and their bases); repeatable.
    #[arg(long = "image")]
    images: Vec<String>,
    /// Apply a per-environment profile.
    #[arg(long)]
    profile: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[arg(long, default_value = "gzip")]
    compression: Compression,
    /// Copy VCS folders and Python caches when there is no .dockerignore.
    #[arg(long)]
    no_default_ignore: bool,
    /// Run `uv lock` for uv projects first (a missing or stale uv.lock is an error otherwise).
    #[arg(long)]
    relock: bool,
    /// Native Debian bases: build only from imgbuild.lock, failing when it does not match.
    #[arg(long)]
    locked: bool,
    /// Native Debian bases without `sources`: take packages from this apt source,
    /// "URI SUITE [COMPONENT...]", instead of the host's apt sources; repeatable.
    #[arg(long = "debian-source", value_name = "URI SUITE [COMPONENT...]")]
    debian_sources: Vec<String>,
    /// The local store (default: $XDG_CACHE_HOME/imgbuild).
    #[arg(long, env = "IMGBUILD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The most one layer of a base image may decompress to, in docker's
    /// size units (20g, 512m); a larger layer is an error naming it.
    #[arg(
        long = "max-layer-size",
        value_name = "SIZE",
        env = "IMGBUILD_MAX_LAYER_SIZE",
        default_value = "64g",
        value_parser = imgbuild::spec::parse_size
    )]
    max_layer_size: u64,
    #[command(flatten)]
    registry: RegistryArgs,
}

impl DefArgs {
    /// The store, trusting `--ca-cert` for its downloads and holding
    /// layers to `--max-layer-size`.
    fn store(&self) -> Result<Store> {
        Ok(
            open_store_trusting(&self.cache_dir, &self.registry.ca_cert)?
                .with_max_layer_size(self.max_layer_size),
        )
    }
}

#[derive(Args, Clone, Default)]
struct RegistryArgs {
    /// Allow plain HTTP, or TLS without certificate checks, for this registry host[:port]; repeatable.
    #[arg(long = "insecure-registry")]
    insecure: Vec<String>,
    /// Trust this CA certificate (PEM) besides the system's; repeatable.
    #[arg(long = "ca-cert")]
    ca_cert: Vec<PathBuf>,
    /// User name for the registries of this command (with --password-stdin).
    #[arg(long)]
    username: Option<String>,
    /// Read the password or token from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Take Docker Hub bases from this mirror (HOST[/PREFIX]).
    #[arg(long, env = "IMGBUILD_BASE_REGISTRY_MIRROR")]
    base_registry_mirror: Option<String>,
}

impl RegistryArgs {
    fn client(&self, registries: Vec<String>) -> Result<imgbuild::registry::Client> {
        let credentials = match (&self.username, self.password_stdin) {
            (Some(u), true) => {
                let mut pw = String::new();
                std::io::stdin()
                    .read_to_string(&mut pw)
                    .map_err(|e| Error::io("reading the password from standard input", e))?;
                let pw = pw.trim_end_matches(['\n', '\r']).to_string();
                Some(imgbuild::registry::auth::Credentials {
                    username: u.clone(),
                    secret: pw,
                })
            }
            (Some(_), false) => {
                return Err(Error::Usage("--username needs --password-stdin".into()));
            }
            (None, true) => return Err(Error::Usage("--password-stdin needs --username".into())),
            (None, false) => None,
        };
        let base = imgbuild::registry::ClientOptions::from_env();
        imgbuild::registry::Client::new(imgbuild::registry::ClientOptions {
            insecure: self.insecure.clone(),
            http: imgbuild::HttpConfig {
                ca_certs: self.ca_cert.clone(),
                ..base.http
            },
            credentials,
            credentials_for: registries,
            docker_config: base.docker_config,
        })
    }
}

#[derive(Args)]
struct PushArgs {
    /// oci:DIR[:TAG], oci-archive:FILE or docker-archive:FILE
    source: String,
    /// Where to: REGISTRY/REPOSITORY[:TAG]
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[arg(long, env = "IMGBUILD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Parallel uploads.
    #[arg(long, short, default_value_t = 4)]
    jobs: usize,
    #[command(flatten)]
    progress: ProgressArgs,
}

/// How progress is shown on stderr (results go to stdout either way).
#[derive(Args)]
struct ProgressArgs {
    /// auto (tty on a terminal outside CI, plain otherwise), plain, tty,
    /// quiet (or none), rawjson. Default: $IMGBUILD_PROGRESS, else
    /// $BUILDKIT_PROGRESS, else auto.
    #[arg(long, value_name = "MODE")]
    progress: Option<String>,
    /// No progress on stderr, only warnings and errors (--progress quiet).
    #[arg(long, short)]
    quiet: bool,
}

impl ProgressArgs {
    /// The sink these flags ask for; `verb` heads the live view.
    fn sink(&self, verb: &str) -> Result<Progress> {
        let from_env = |v: &str| std::env::var(v).ok().filter(|s| !s.trim().is_empty());
        let (mode, from) = match &self.progress {
            Some(m) => (m.clone(), "--progress".to_string()),
            None => match from_env("IMGBUILD_PROGRESS") {
                Some(m) => (m, "IMGBUILD_PROGRESS".into()),
                None => match from_env("BUILDKIT_PROGRESS") {
                    Some(m) => (m, "BUILDKIT_PROGRESS".into()),
                    None => ("auto".into(), "--progress".into()),
                },
            },
        };
        // CI: set by CI services; their logs get lines, not a live view.
        let mode = ProgressMode::parse(&mode, std::env::var_os("CI").is_some())
            .map_err(|m| Error::Usage(format!("{from}: {m}")))?;
        let mode = if self.quiet {
            ProgressMode::Quiet
        } else {
            mode
        };
        Ok(Progress::new(mode, verb))
    }
}

#[derive(Args)]
struct ExistsArgs {
    reference: String,
    /// Require these platforms (os/arch[/variant]); repeatable.
    #[arg(long = "platform")]
    platforms: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Args)]
struct SbomArgs {
    /// oci:DIR[:TAG], or an image reference in a registry
    reference: String,
    /// The document's format.
    #[arg(long = "format", value_parser = ["spdx", "cyclonedx"], default_value = "spdx")]
    sbom_format: String,
    /// The platform's SBOM (os/arch[/variant]), for an image of several.
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long, env = "IMGBUILD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
struct AttestationsArgs {
    /// oci:DIR[:TAG], or an image reference in a registry
    reference: String,
    /// Print one attestation's document instead of the list: provenance,
    /// spdx or cyclonedx.
    #[arg(long, value_parser = ["provenance", "spdx", "cyclonedx"])]
    show: Option<String>,
    /// With --show: the platform's (os/arch[/variant]), for an image of several.
    #[arg(long)]
    platform: Option<String>,
    #[arg(long, env = "IMGBUILD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    def: DefArgs,
    /// Push the images to their registry (registry/name:tag of the definition, or --tag).
    #[arg(long)]
    push: bool,
    /// Name the image (repeatable): the tags of the local output, and with
    /// --push the references pushed to instead of the definition's.
    #[arg(long = "tag", short = 't')]
    tags: Vec<String>,
    /// Parallel uploads when pushing.
    #[arg(long, default_value_t = 4)]
    push_jobs: usize,
    /// Media types of the image's documents: oci (default) or docker (v2 schema 2).
    #[arg(long, default_value = "oci", value_parser = ["oci", "docker"])]
    media_types: String,
    /// oci:DIR, oci-archive:FILE or docker-archive:FILE, or buildx's
    /// type=oci|docker|image|registry|local|tar[,dest=…][,name=…][,push=…][,tar=…],
    /// DIR (type=local) or - (type=tar to standard output); `{image}` in
    /// the path stands for the image name. Default: oci:imgbuild-out/{image}.
    #[arg(long, short)]
    output: Vec<String>,
    /// Refused: there is no Docker daemon to load into (use
    /// --output type=docker,dest=FILE, then `docker load -i FILE`).
    #[arg(long)]
    load: bool,
    /// A label on the image's config, KEY=VALUE (repeatable; over the
    /// definition's or Dockerfile's).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// An annotation, [TYPE[,TYPE…][[PLATFORM]]:]KEY=VALUE with TYPE one of
    /// manifest (default), index, manifest-descriptor, index-descriptor (repeatable).
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    annotations: Vec<String>,
    /// Attach an SBOM of each platform (SPDX 2.3 and CycloneDX 1.6 JSON) to
    /// the image, as OCI artifacts in layouts and pushes: --sbom or
    /// --sbom=true|false (default: the definition's `sbom`, else false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    sbom: Option<String>,
    /// Attach a SLSA provenance statement (in-toto) of each platform:
    /// --provenance, --provenance=true|false|mode=min|mode=max (default:
    /// the definition's `provenance`, else false).
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "min", require_equals = true)]
    provenance: Option<String>,
    /// Write the steps this build made or used to a registry step cache:
    /// REPOSITORY, or buildx's type=registry,ref=REPOSITORY[,mode=min|max]
    /// [,ignore-error=true]. Default: $IMGBUILD_CACHE_TO.
    #[arg(long = "cache-to", value_name = "REF")]
    cache_to: Option<String>,
    /// Read no step from the cache (results are still stored).
    #[arg(long)]
    no_cache: bool,
    /// Build these stages (or images) again, ignoring their cache (repeatable).
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// Resolve base image tags in the registry (always done: no resolution is cached).
    #[arg(long)]
    pull: bool,
    /// Write the image ID (the config digest; the index digest for several
    /// platforms) to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Write buildx's build result metadata (containerimage.digest, …) as JSON to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// A secret for RUN steps' secret_mounts: id=ID,src=FILE or id=ID,env=VAR
    /// (repeatable). Values never enter layers, cache keys, logs or output.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    secrets: Vec<String>,
    /// An SSH agent for RUN steps' ssh mounts: `default` ($SSH_AUTH_SOCK) or
    /// ID=SOCKET (repeatable). Never part of cache keys or output.
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    ssh: Vec<String>,
    /// An entitlement, as buildx's: `security.insecure` lets steps marked
    /// `RUN --security=insecure` (`security = "insecure"`) run without
    /// containment; `network.host` is accepted (steps have the host's
    /// network unless they ask for none). Repeatable, or comma-separated.
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_delimiter = ',')]
    allow: Vec<String>,
    #[command(flatten)]
    progress: ProgressArgs,
}

/// Whether `--allow` lets insecure steps run; an entitlement imgbuild does
/// not know is a usage error.
fn allow_insecure(allow: &[String]) -> Result<bool> {
    let mut insecure = false;
    for e in allow {
        match e.trim() {
            "security.insecure" => insecure = true,
            "network.host" => {}
            other => {
                return Err(Error::Usage(format!(
                    "--allow {other}: expected security.insecure or network.host"
                )));
            }
        }
    }
    Ok(insecure)
}

#[derive(Args)]
struct InspectArgs {
    /// oci:DIR[:TAG], or an image reference in a registry
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// glibc's allocator, set for a build: lists as large as the tree (the
/// entries of 200k files are 27 MB) go straight to the system and back
/// when freed, instead of glibc raising its threshold after the first such
/// free and keeping them in its heaps, where later allocations fragment
/// them; and one heap per core, not eight, for a process whose work runs
/// on a pool as large as the cores. Peak RSS of a cold 200k-file build:
/// 106 MiB -> 95 MiB; the 1 GB tree's build time is unchanged. Settings
/// given in glibc's own environment variables are left alone.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets the allocator's parameters; this runs
        // before any other thread exists.
        unsafe {
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            }
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, cores);
            }
        }
    }
}

fn main() {
    // The RUN sandbox's own process: before anything starts a thread.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__sandbox") {
        imgbuild::sandbox_helper_main();
    }
    tune_allocator();
    let cli = Cli::parse();
    // IMGBUILD_USERNS, IMGBUILD_SANDBOX_HELPER, IMGBUILD_NO_OVERLAY: how RUN
    // steps run (see SandboxOptions::from_env).
    imgbuild::configure_sandbox(imgbuild::SandboxOptions::from_env());
    let (format, res) = match cli.cmd {
        Cmd::Build(a) => (a.def.format, build(*a)),
        Cmd::Plan(a) => (a.format, plan_cmd(a)),
        Cmd::Lock(a) => (a.format, lock_cmd(a)),
        Cmd::Inspect(a) => (a.format, inspect(a)),
        Cmd::Push(a) => (a.format, push_cmd(a)),
        Cmd::Sbom(a) => (Format::Text, sbom_cmd(a)),
        Cmd::Attestations(a) => (a.format, attestations_cmd(a)),
        Cmd::Exists(a) => {
            let format = a.format;
            match exists_cmd(a) {
                Ok(present) => {
                    if format == Format::Json {
                        println!("{}", json!({"present": present}));
                    }
                    std::process::exit(if present { exit::OK } else { exit::FAILURE });
                }
                Err(e) => {
                    // Never "present" on error: a distinct exit code.
                    let e = match e {
                        Error::Registry { .. } => e,
                        other => Error::Registry {
                            message: other.to_string(),
                            status: imgbuild::RegistryStatus::new(
                                imgbuild::RegistryErrorKind::Other,
                                0,
                                "",
                                "",
                            ),
                        },
                    };
                    (format, Err(e))
                }
            }
        }
        Cmd::Doctor {
            install_uv,
            format,
            cache_dir,
        } => (format, doctor(install_uv, format, cache_dir)),
        Cmd::Export {
            what: ExportCmd::Dockerfile(a),
        } => (Format::Text, export_dockerfile(&a)),
        Cmd::Cache { cmd } => match cmd {
            CacheCmd::Prune {
                older_than,
                format,
                cache_dir,
            } => (format, prune(older_than, format, cache_dir)),
            CacheCmd::Verify { format, cache_dir } => (format, verify_store(format, cache_dir)),
            CacheCmd::Dir { cache_dir } => {
                println!(
                    "{}",
                    cache_dir.unwrap_or_else(store::default_root).display()
                );
                (Format::Text, Ok(()))
            }
        },
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        if format == Format::Json {
            let v = json!({"error": {"kind": e.kind(), "message": e.to_string(), "exit_code": e.exit_code()}});
            println!("{v}");
        }
        std::process::exit(e.exit_code());
    }
    std::process::exit(exit::OK);
}

fn doctor(install_uv: bool, format: Format, cache_dir: Option<PathBuf>) -> Result<()> {
    let store = open_store(&cache_dir)?;
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": store.root().display().to_string(),
        "uv": imgbuild::doctor(&store, install_uv)?,
    });
    match format {
        Format::Json => println!("{v}"),
        Format::Text => {
            println!("imgbuild {}", env!("CARGO_PKG_VERSION"));
            println!("store: {}", store.root().display());
            let uv = &v["uv"]["uv"];
            if uv["found"].as_bool() == Some(true) {
                println!(
                    "uv: {} ({}, from {})",
                    uv["path"].as_str().unwrap_or("?"),
                    uv["version"].as_str().unwrap_or("?"),
                    uv["origin"].as_str().unwrap_or("?")
                );
            } else {
                println!(
                    "uv: not found ({})",
                    uv["hint"].as_str().unwrap_or("install uv on PATH")
                );
            }
            let idx = &v["uv"]["default_index"];
            match idx["url"].as_str() {
                Some(u) => println!(
                    "package index: {u} ({})",
                    idx["configured_via"].as_str().unwrap_or("?")
                ),
                None => println!("package index: none configured"),
            }
        }
    }
    Ok(())
}

/// The store at `--cache-dir` (or its default), downloading with the
/// environment's HTTP configuration (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the
/// proxy variables).
fn open_store(dir: &Option<PathBuf>) -> Result<Store> {
    open_store_trusting(dir, &[])
}

/// The store, its downloads (ADD of URLs and git repositories, wheels,
/// Debian packages) also trusting the `--ca-cert` files.
fn open_store_trusting(dir: &Option<PathBuf>, ca_certs: &[PathBuf]) -> Result<Store> {
    let mut http = imgbuild::HttpConfig::from_env();
    http.ca_certs.extend(ca_certs.iter().cloned());
    Ok(Store::open(&dir.clone().unwrap_or_else(store::default_root))?.with_http(http))
}

/// Where the definition comes from: PATH, `--definition FILE|-` (with
/// `--context`), `--file` (a Dockerfile, PATH its context) or
/// `--flyte-spec` (with `--context`).
fn source(path: &Path, definition: Option<&str>, context: Option<&Path>) -> Result<Source> {
    Ok(match definition {
        None => Source::Path {
            path: path.to_path_buf(),
            context: None,
        },
        Some("-") => {
            let text = imgbuild::spec::read_text_capped(
                std::io::stdin(),
                imgbuild::spec::MAX_DESCRIPTION_SIZE,
            )
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => Error::input(
                    Path::new("<stdin>"),
                    format!("cannot read the definition: {e}"),
                ),
                _ => Error::io("reading the definition from standard input", e),
            })?;
            Source::Text {
                text,
                name: PathBuf::from("<stdin>"),
                context: context
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(".")),
            }
        }
        Some(d) => Source::Path {
            path: PathBuf::from(d),
            context: context.map(Path::to_path_buf),
        },
    })
}

fn parse_platforms(list: &[String]) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for p in list.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        // As buildx: `local` is this host's platform.
        let p = match p {
            "local" => Platform::host(),
            _ => Platform::parse(p).map_err(|m| Error::Usage(format!("--platform: {m}")))?,
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The source of `plan`, `build` and `lock`.
fn def_source(a: &DefArgs) -> Result<Source> {
    if a.file.is_some() && a.definition.is_some() {
        return Err(Error::Usage(
            "--file (a Dockerfile) and --definition cannot be used together".into(),
        ));
    }
    if let Some(spec) = &a.flyte_spec {
        if a.file.is_some() || a.definition.is_some() {
            return Err(Error::Usage(
                "--flyte-spec cannot be used with --file or --definition".into(),
            ));
        }
        let context = a.context.clone().ok_or_else(|| {
            Error::Usage("--flyte-spec needs --context: the build folder Flyte prepared".into())
        })?;
        return Ok(Source::Flyte {
            spec: spec.clone(),
            context,
            platforms: parse_platforms(&a.platforms)?,
        });
    }
    if let Some(file) = &a.file {
        let mut build_args = std::collections::BTreeMap::new();
        for kv in &a.build_args {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    build_args.insert(k.to_string(), v.to_string());
                }
                // Like docker: a bare name takes the value from the environment.
                _ => {
                    if let Ok(v) = std::env::var(kv) {
                        build_args.insert(kv.clone(), v);
                    }
                }
            }
        }
        let mut contexts = std::collections::BTreeMap::new();
        for c in &a.build_contexts {
            let (name, ctx) = imgbuild::parse_build_context(c).map_err(Error::Usage)?;
            contexts.insert(name, ctx);
        }
        return Ok(Source::Dockerfile {
            file: file.clone(),
            context: a.path.clone(),
            build_args,
            target: a.target.clone(),
            platforms: parse_platforms(&a.platforms)?,
            contexts,
        });
    }
    if !a.build_contexts.is_empty() {
        return Err(Error::Usage(
            "--build-context names a Dockerfile's FROM and COPY --from sources: it needs --file (a Dockerfile)".into(),
        ));
    }
    source(&a.path, a.definition.as_deref(), a.context.as_deref())
}

fn plan_request(a: &DefArgs) -> Result<PlanRequest> {
    Ok(PlanRequest {
        profile: a.profile.clone(),
        images: a.images.clone(),
        compression: a.compression,
        no_default_ignore: a.no_default_ignore,
        relock: a.relock,
        locked: a.locked,
        debian_sources: a.debian_sources.clone(),
        base_mirror: a.registry.base_registry_mirror.clone(),
        source_date_epoch: plan::source_date_epoch_from_env(),
        one_pass: one_pass_from_env(),
        cache: imgbuild::registry::cache::CacheOptions {
            from: cache_refs("--cache-from", &a.cache_from, "IMGBUILD_CACHE_FROM")?,
            to: None,
        },
        ..PlanRequest::new(def_source(a)?)
    })
}

/// Registry caches named by a flag, else by the environment variable
/// `var` (whitespace-separated, for CI settings).
fn cache_refs(
    flag: &str,
    given: &[String],
    var: &str,
) -> Result<Vec<imgbuild::registry::cache::CacheRef>> {
    let from_env;
    let (refs, whence): (Vec<&str>, &str) = if given.is_empty() {
        from_env = std::env::var(var).unwrap_or_default();
        (from_env.split_whitespace().collect(), var)
    } else {
        (given.iter().map(String::as_str).collect(), flag)
    };
    refs.into_iter()
        .map(|s| {
            imgbuild::registry::cache::CacheRef::parse(s)
                .map_err(|e| Error::Usage(format!("{whence} {s}: {e}")))
        })
        .collect()
}

/// `IMGBUILD_ONE_PASS`: `0` always hashes a cold files layer's files
/// before writing it, `1` always writes it in one pass; otherwise the
/// build chooses (the bytes and keys are the same either way).
fn one_pass_from_env() -> plan::OnePass {
    match std::env::var("IMGBUILD_ONE_PASS").as_deref() {
        Ok("0") => plan::OnePass::Off,
        Ok("1") => plan::OnePass::Always,
        _ => plan::OnePass::Auto,
    }
}

/// `imgbuild export dockerfile`.
fn export_dockerfile(a: &ExportDockerfileArgs) -> Result<()> {
    let src = source(&a.path, a.definition.as_deref(), a.context.as_deref())?;
    let def = imgbuild::load(&src, a.profile.as_deref())?;
    let text = imgbuild::export_dockerfile(&def, &a.images, &a.uv_image)?;
    match &a.output {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(p) => {
            let tmp = p.with_extension("imgbuild-tmp");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, p))
                .map_err(|e| Error::io(format!("writing {}", p.display()), e))
        }
    }
}

/// `imgbuild lock`: resolves every native Debian base again and writes
/// imgbuild.lock.
fn lock_cmd(a: DefArgs) -> Result<()> {
    let store = a.store()?;
    let client = a.registry.client(Vec::new())?;
    let r = imgbuild::lock(&plan_request(&a)?, &store, &client)?;
    if a.format == Format::Json {
        println!("{}", serde_json::to_string(&r).expect("json"));
    } else {
        for b in &r.bases {
            println!("{} {}: {} packages", b.image, b.arch, b.packages);
        }
        println!("wrote {}", r.lock.display());
    }
    Ok(())
}

fn build(a: BuildArgs) -> Result<()> {
    let jobs = a
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    if a.load {
        return Err(Error::Usage(
            "--load puts the image into a Docker daemon, and imgbuild runs without one: write it with --output type=docker,dest=FILE, then run `docker load -i FILE`".into(),
        ));
    }
    // As with `docker buildx build`: --tag names the image, only --push
    // (or an output with push=true, type=registry) pushes. With a push and
    // no local output, nothing is written locally.
    let mut push = a.push;
    let mut names = a.tags.clone();
    let mut local: Option<Output> = None;
    for o in &a.output {
        let spec = output::OutputSpec::parse(o).map_err(Error::Usage)?;
        push |= spec.push;
        names.extend(spec.names);
        if let Some(out) = spec.output
            && local.replace(out).is_some()
        {
            return Err(Error::Usage(
                "several --output values write on this machine: give one (a registry output may come besides it)".into(),
            ));
        }
    }
    let image_only = !a.output.is_empty() && local.is_none();
    let output = match local {
        Some(o) => Some(o),
        None if push || image_only => None,
        None => Some(Output::parse(output::DEFAULT).expect("valid")),
    };
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let tags: Vec<Reference> = names
        .iter()
        .map(|t| {
            let r = Reference::parse(t).map_err(|m| Error::Usage(format!("--tag: {m}")))?;
            match r.tag {
                Some(_) if r.digest.is_none() => Ok(r),
                _ => Err(Error::Usage(format!(
                    "--tag {t}: a tag names a tagged reference (NAME:TAG), not a digest"
                ))),
            }
        })
        .collect::<Result<_>>()?;
    let labels = a
        .labels
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some(("", _)) => Err(Error::Usage(format!("--label {kv:?}: the key is empty"))),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            // Like docker: a bare key is a label with an empty value.
            None => Ok((kv.clone(), String::new())),
        })
        .collect::<Result<std::collections::BTreeMap<_, _>>>()?;
    let annotations = a
        .annotations
        .iter()
        .map(|s| imgbuild::Annotation::parse(s).map_err(Error::Usage))
        .collect::<Result<Vec<_>>>()?;
    let to_stdout = output.as_ref().is_some_and(Output::is_stdout);
    let store = a.def.store()?;
    let client = a
        .def
        .registry
        .client(tags.iter().map(|r| r.registry.clone()).collect())?;
    let req = BuildRequest {
        plan: {
            let mut plan = PlanRequest {
                no_cache: a.no_cache,
                no_cache_filter: a.no_cache_filter.clone(),
                ..plan_request(&a.def)?
            };
            let to = cache_refs("--cache-to", a.cache_to.as_slice(), "IMGBUILD_CACHE_TO")?;
            if to.len() > 1 {
                return Err(Error::Usage(
                    "IMGBUILD_CACHE_TO: one cache to write, not several".into(),
                ));
            }
            plan.cache.to = to.into_iter().next();
            plan
        },
        output,
        push,
        tags,
        push_jobs: a.push_jobs,
        docker_media_types: a.media_types == "docker",
        secrets: read_secrets(&a.secrets)?,
        ssh: read_ssh(&a.ssh)?,
        threads: jobs,
        labels,
        annotations,
        allow_insecure: allow_insecure(&a.allow)?,
        attest: imgbuild::Attest {
            sbom: a.sbom.as_deref().map(parse_sbom_flag).transpose()?,
            provenance: a
                .provenance
                .as_deref()
                .map(|v| {
                    imgbuild::Provenance::parse(v)
                        .map_err(|e| Error::Usage(format!("--provenance={v}: {e}")))
                })
                .transpose()?,
        },
    };
    let progress = a.progress.sink("Building")?;
    let report = imgbuild::build(&req, &store, &client, &progress).inspect_err(|e| {
        progress.error(&e.to_string());
    })?;
    if report.layers_built > 0 && a.def.format == Format::Text && !a.progress.quiet {
        progress.line(&format!(
            "built {} layer(s), {} compressed, in {:.2}s",
            report.layers_built,
            human(report.bytes_compressed),
            report.duration_ms as f64 / 1000.0
        ));
    }
    progress.close();
    let image_result = req.output.as_ref().is_none_or(|o| !o.is_filesystem()) || req.push;
    if let Some(f) = &a.iidfile {
        let id = image_id(&report)?;
        write_file(f, id.as_bytes())?;
    }
    if let Some(f) = &a.metadata_file {
        let v = metadata(&report, &names, image_result);
        write_file(
            f,
            serde_json::to_string_pretty(&v).expect("json").as_bytes(),
        )?;
    }
    if a.def.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
        return Ok(());
    }
    if a.progress.quiet {
        // As buildx: the image ID alone (nothing when the archive itself
        // goes to standard output).
        if !to_stdout && image_result {
            for id in image_ids(&report) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let say = |line: String| match to_stdout {
        true => eprintln!("{line}"),
        false => println!("{line}"),
    };
    for img in &report.images {
        match img {
            ImageReport::UpToDate { name, pushed, .. } => {
                say(format!("{name} is up to date ({})", pushed.join(", ")));
            }
            ImageReport::Built {
                reference,
                output,
                digest,
                platforms,
                pushed,
                ..
            } => {
                let dest: Vec<&str> = output
                    .iter()
                    .map(String::as_str)
                    .chain(pushed.iter().map(|p| p.reference.as_str()))
                    .collect();
                let layers = platforms.first().map(|p| p.layers.len()).unwrap_or(0);
                let built = platforms
                    .iter()
                    .flat_map(|p| &p.layers)
                    .filter(|l| l.cache == "miss")
                    .count();
                say(format!(
                    "{reference} → {} {digest} ({layers} layers, {built} built)",
                    dest.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The image ID buildx reports (`--iidfile`, `-q`) of each built image:
/// the config digest of a one-platform image, else the index's digest.
fn image_ids(report: &imgbuild::BuildReport) -> Vec<String> {
    report
        .images
        .iter()
        .filter_map(|i| match i {
            // As buildx: a pushed image is named by its manifest (or
            // index) digest, a local one by its config digest (the index
            // digest when it has several platforms).
            ImageReport::Built {
                digest,
                platforms,
                pushed,
                ..
            } => Some(match &platforms[..] {
                [p] if pushed.is_empty() => p.config_digest.to_string(),
                _ => digest.to_string(),
            }),
            ImageReport::UpToDate { .. } => None,
        })
        .collect()
}

/// The one image ID `--iidfile` holds.
fn image_id(report: &imgbuild::BuildReport) -> Result<String> {
    match &image_ids(report)[..] {
        [id] => Ok(id.clone()),
        ids => Err(Error::Usage(format!(
            "--iidfile holds one image's ID, but {} images were built: pick one with --image",
            ids.len()
        ))),
    }
}

/// buildx's `--metadata-file` keys for each built image: flat for one
/// image, by image name for several (as `buildx bake` writes them).
/// `image_result`: the build made an image (not only a filesystem).
fn metadata(
    report: &imgbuild::BuildReport,
    names: &[String],
    image_result: bool,
) -> serde_json::Value {
    let mut per_image = serde_json::Map::new();
    for img in &report.images {
        let ImageReport::Built {
            name,
            digest,
            media_type,
            size,
            platforms,
            ..
        } = img
        else {
            continue;
        };
        let mut m = serde_json::Map::new();
        if image_result {
            if let [p] = &platforms[..] {
                m.insert(
                    "containerimage.config.digest".into(),
                    json!(p.config_digest.to_string()),
                );
            }
            m.insert(
                "containerimage.descriptor".into(),
                json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}),
            );
            m.insert("containerimage.digest".into(), json!(digest.to_string()));
            if !names.is_empty() {
                m.insert("image.name".into(), json!(names.join(",")));
            }
        }
        per_image.insert(name.clone(), serde_json::Value::Object(m));
    }
    if per_image.len() == 1 {
        return per_image.into_iter().next().expect("one").1;
    }
    serde_json::Value::Object(per_image)
}

/// Writes a small result file (`--iidfile`, `--metadata-file`) atomically.
fn write_file(p: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = p.with_extension("imgbuild-tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, p))
        .map_err(|e| Error::io(format!("writing {}", p.display()), e))
}

fn plan_cmd(a: DefArgs) -> Result<()> {
    let store = a.store()?;
    let client = a.registry.client(Vec::new())?;
    let plan = imgbuild::plan(&plan_request(&a)?, &store, None, Some(&client))?;
    for sc in &plan.stats {
        sc.save(&store)?;
    }
    let mut out = Vec::new();
    for img in &plan.images {
        let base = match &img.base {
            plan::BasePlan::Scratch => "scratch".to_string(),
            plan::BasePlan::Layout { reference, .. } => reference.clone(),
            plan::BasePlan::Image(i) => format!("image {}", plan.images[*i].id),
            plan::BasePlan::Remote { reference, images } => {
                format!(
                    "{reference}@{}",
                    images
                        .first()
                        .map(|i| i.manifest_digest.oci())
                        .unwrap_or_default()
                )
            }
        };
        let platforms: Vec<String> = img.platforms.iter().map(|p| p.to_string()).collect();
        let mut steps = Vec::new();
        if a.format == Format::Text {
            println!(
                "image {} ({}) for {}, base {}",
                img.id,
                img.reference(),
                platforms.join(", "),
                base
            );
        }
        for (i, s) in img.steps.iter().enumerate() {
            let from_registry = plan.registry_hits.get(&s.key);
            let state = match (&s.action, &s.cached) {
                (Action::Config(_), _) => "config",
                (_, Some(_)) if from_registry.is_some() => "hit-registry",
                (_, Some(_)) => "hit",
                (_, None) => "miss",
            };
            // ADD of an archive or a checksummed URL is fetched when built:
            // its files are not known yet.
            let fetched_later = match &s.action {
                Action::Files {
                    fetch: Some(f),
                    bytes,
                    ..
                } => Some(match f.as_ref() {
                    plan::Fetch::Archive { .. } => {
                        format!(" ({} archive, unpacked when built)", human(*bytes))
                    }
                    plan::Fetch::Url { .. } => " (downloaded when built)".to_string(),
                    plan::Fetch::Git { .. } => " (checked out when built)".to_string(),
                }),
                _ => None,
            };
            let (files, bytes) = match &s.action {
                Action::Files { fetch: Some(_), .. } => (None, None),
                Action::Files { entries, bytes, .. } => (Some(entries.len()), Some(*bytes)),
                Action::Python(pl) => (Some(pl.artifacts.len()), Some(pl.bytes)),
                Action::Debian(d) => (
                    Some(d.packages.len()),
                    Some(d.packages.iter().map(|p| p.size).sum()),
                ),
                Action::Config(_) | Action::Run(_) | Action::CopyFrom(_) => (None, None),
            };
            if a.format == Format::Text {
                let size = match (files, bytes, &fetched_later) {
                    (_, _, Some(later)) => later.clone(),
                    (Some(f), Some(b), _) => format!(" ({f} entries, {})", human(b)),
                    _ => String::new(),
                };
                println!(
                    "  {:>2}. {:<6} {}  {}{size}",
                    i + 1,
                    state,
                    s.key.short(),
                    s.name
                );
                if let Some(r) = from_registry {
                    println!("        hit (registry): {r}");
                }
                for w in &s.why {
                    println!("        why: {w}");
                }
                for n in &s.notes {
                    println!("        note: {n}");
                }
            }
            steps.push(json!({
                "name": s.name,
                "key": s.key,
                "cache": state,
                "cache_from": from_registry,
                "location": s.loc.to_string(),
                "files": files,
                "bytes": bytes,
                "why": s.why,
                "notes": s.notes,
            }));
        }
        for n in &img.notes {
            if a.format == Format::Text {
                println!("  note: {n}");
            }
        }
        out.push(json!({
            "name": img.id,
            "reference": img.reference(),
            "tag": img.tag,
            "platforms": platforms,
            "base": base,
            "steps": steps,
            "notes": img.notes,
        }));
    }
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"images": out})).expect("json")
        );
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<()> {
    let Some(rest) = a.reference.strip_prefix("oci:") else {
        let r = Reference::parse(&a.reference).map_err(Error::Usage)?;
        let client = a.registry.client(vec![r.registry.clone()])?;
        let v = imgbuild::registry::describe(&client, &r)?;
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    };
    let (dir, tag) = imgbuild::parse_layout_ref(rest);
    let v = imgbuild::oci::layout::describe(&dir, tag.as_deref())?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v).expect("json")),
        Format::Text => {
            println!(
                "{} {}",
                v["media_type"].as_str().unwrap_or(""),
                v["digest"].as_str().unwrap_or("")
            );
            for m in v["manifests"].as_array().into_iter().flatten() {
                println!(
                    "platform {} manifest {}",
                    m["platform"].as_str().unwrap_or("?"),
                    m["digest"].as_str().unwrap_or("")
                );
                println!("  config {}", m["config_digest"].as_str().unwrap_or(""));
                let c = &m["config"]["config"];
                for k in [
                    "Env",
                    "Entrypoint",
                    "Cmd",
                    "WorkingDir",
                    "User",
                    "Labels",
                    "ExposedPorts",
                ] {
                    if !c[k].is_null() {
                        println!("  {k}: {}", c[k]);
                    }
                }
                for l in m["layers"].as_array().into_iter().flatten() {
                    println!(
                        "  layer {} {:>10}  {}",
                        l["digest"].as_str().unwrap_or(""),
                        l["size"],
                        l["mediaType"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}

fn push_cmd(a: PushArgs) -> Result<()> {
    let target = Reference::parse(&a.reference).map_err(Error::Usage)?;
    let store = open_store(&a.cache_dir)?;
    let client = a.registry.client(vec![target.registry.clone()])?;
    let progress = a.progress.sink("Pushing")?;
    let (top, st) = imgbuild::progress::with_sink(&progress, || {
        imgbuild::push(&a.source, &target, &store, &client, a.jobs)
    })
    .inspect_err(|e| progress.error(&e.to_string()))?;
    progress.close();
    match a.format {
        Format::Json => println!(
            "{}",
            json!({"reference": target.to_string(), "digest": top.digest, "blobs_uploaded": st.blobs_uploaded, "blobs_present": st.blobs_present, "bytes_uploaded": st.bytes_uploaded})
        ),
        Format::Text => println!(
            "{target} {} ({} blobs uploaded, {} already there, {})",
            top.digest,
            st.blobs_uploaded,
            st.blobs_present,
            human(st.bytes_uploaded)
        ),
    }
    Ok(())
}

fn registry_of(reference: &str) -> Vec<String> {
    match reference.strip_prefix("oci:") {
        Some(_) => Vec::new(),
        None => Reference::parse(reference)
            .map(|r| vec![r.registry])
            .unwrap_or_default(),
    }
}

fn sbom_cmd(a: SbomArgs) -> Result<()> {
    print_attached(
        &a.reference,
        &a.sbom_format,
        a.platform.as_deref(),
        &a.registry,
        &a.cache_dir,
    )
}

/// Prints the document of the attestation `what` (provenance, spdx or
/// cyclonedx) attached to `reference`.
fn print_attached(
    reference: &str,
    what: &str,
    platform: Option<&str>,
    registry: &RegistryArgs,
    cache_dir: &Option<PathBuf>,
) -> Result<()> {
    let client = registry.client(registry_of(reference))?;
    let store = open_store(cache_dir)?;
    let (mt, flag) = match what {
        "cyclonedx" => (imgbuild::sbom::formats::MT_CYCLONEDX, "--sbom"),
        "provenance" => ("application/vnd.in-toto+json", "--provenance"),
        _ => (imgbuild::sbom::formats::MT_SPDX, "--sbom"),
    };
    let doc = imgbuild::attached_document(reference, mt, platform, &client, &store)?.ok_or_else(
        || {
            Error::Other(format!(
                "{reference}: no {what} attestation is attached{} (build it with {flag})",
                platform.map(|p| format!(" for {p}")).unwrap_or_default()
            ))
        },
    )?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&doc)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| Error::io("writing the document to standard output", e))
}

fn attestations_cmd(a: AttestationsArgs) -> Result<()> {
    if let Some(what) = &a.show {
        return print_attached(
            &a.reference,
            what,
            a.platform.as_deref(),
            &a.registry,
            &a.cache_dir,
        );
    }
    let client = a.registry.client(registry_of(&a.reference))?;
    let all = imgbuild::attestations(&a.reference, &client)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&all).expect("json")),
        Format::Text => {
            for x in &all {
                println!(
                    "{} {} {}{}",
                    x.digest,
                    x.artifact_type,
                    x.subject,
                    x.platform
                        .as_deref()
                        .map(|p| format!(" {p}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn exists_cmd(a: ExistsArgs) -> Result<bool> {
    let r = Reference::parse(&a.reference).map_err(Error::Usage)?;
    let platforms = a
        .platforms
        .iter()
        .map(|p| Platform::parse(p).map_err(Error::Usage))
        .collect::<Result<Vec<_>>>()?;
    let client = a.registry.client(vec![r.registry.clone()])?;
    imgbuild::registry::exists(&client, &r, &platforms)
}

/// `--sbom=VALUE`: a boolean as buildx takes it; buildx's scanner options
/// (`generator=IMAGE`) mean nothing here (the SBOM is read, not scanned).
fn parse_sbom_flag(v: &str) -> Result<bool> {
    match v.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other if other.starts_with("generator=") => Err(Error::Usage(format!(
            "--sbom={other}: imgbuild makes the SBOM from its own locks and the image's package databases; there is no scanner image to choose (use --sbom or --sbom=false)"
        ))),
        other => Err(Error::Usage(format!(
            "--sbom={other}: expected true or false"
        ))),
    }
}

/// `--ssh default|ID[=SOCKET[,SOCKET…]]` (docker buildx's form): an agent
/// socket per id; `default`, or an id without a path, is $SSH_AUTH_SOCK.
/// Only the first socket of a list is forwarded; key files are refused.
fn read_ssh(args: &[String]) -> Result<std::collections::BTreeMap<String, std::path::PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = std::collections::BTreeMap::new();
    for a in args {
        let (id, paths) = a.split_once('=').unwrap_or((a.as_str(), ""));
        if id.is_empty() {
            return Err(Error::Usage(format!(
                "--ssh {a}: expected default or ID=SOCKET"
            )));
        }
        let path = match paths.split(',').find(|p| !p.is_empty()) {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .map(std::path::PathBuf::from)
                .ok_or_else(|| Error::Usage(format!("--ssh {a}: $SSH_AUTH_SOCK is not set")))?,
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| Error::Usage(format!("--ssh {a}: {}: {e}", path.display())))?;
        if !meta.file_type().is_socket() {
            return Err(Error::Usage(format!(
                "--ssh {a}: {} is no socket (only agent sockets are forwarded, not key files)",
                path.display()
            )));
        }
        out.insert(id.to_string(), path);
    }
    Ok(out)
}

/// `--secret id=ID,src=FILE` / `id=ID,env=VAR` (docker buildx's form).
fn read_secrets(args: &[String]) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    for a in args {
        let mut id = None;
        let mut value = None;
        for part in a.split(',') {
            match part.split_once('=') {
                Some(("id", v)) if !v.is_empty() => id = Some(v.to_string()),
                Some(("src" | "source", f)) => {
                    value =
                        Some(std::fs::read(f).map_err(|e| {
                            Error::Usage(format!("--secret {a}: cannot read {f}: {e}"))
                        })?)
                }
                Some(("env", var)) => {
                    value = Some(
                        std::env::var_os(var)
                            .ok_or_else(|| {
                                Error::Usage(format!("--secret {a}: ${var} is not set"))
                            })?
                            .into_encoded_bytes(),
                    )
                }
                Some(("type", "file" | "env")) => {}
                _ => {
                    return Err(Error::Usage(format!(
                        "--secret {a}: expected id=ID,src=FILE or id=ID,env=VAR"
                    )));
                }
            }
        }
        let Some(id) = id else {
            return Err(Error::Usage(format!("--secret {a}: missing id=ID")));
        };
        let value = match value {
            Some(v) => v,
            // Like buildx: a bare id reads the variable of that name.
            None => std::env::var_os(&id)
                .ok_or_else(|| Error::Usage(format!("--secret {a}: give src=FILE or env=VAR")))?
                .into_encoded_bytes(),
        };
        out.insert(id, value);
    }
    Ok(out)
}

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    imgbuild::spec::parse_duration(s)
        .map(std::time::Duration::from_secs)
        .map_err(Error::Usage)
}

fn verify_store(format: Format, cache_dir: Option<PathBuf>) -> Result<()> {
    // The shared lock, as builds take: blobs are renamed into place whole,
    // so a running build never shows this a partial one.
    let store = Store::open(&cache_dir.unwrap_or_else(store::default_root))?;
    let r = imgbuild::verify_store(&store)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string(&r).expect("json")),
        Format::Text => {
            for b in &r.bad {
                println!("bad: {} ({}): {}", b.digest, b.path.display(), b.reason);
            }
            println!(
                "checked {} blobs ({}), removed {} bad blob(s) and {} step entries",
                r.blobs_checked,
                human(r.bytes_checked),
                r.bad_removed,
                r.steps_removed
            );
        }
    }
    if r.bad_removed > 0 {
        std::process::exit(exit::FAILURE);
    }
    Ok(())
}

fn prune(older_than: String, format: Format, cache_dir: Option<PathBuf>) -> Result<()> {
    let d = parse_duration(&older_than)?;
    let store = Store::open_exclusive(&cache_dir.unwrap_or_else(store::default_root))?;
    let r = imgbuild::prune(&store, d)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string(&r).expect("json")),
        Format::Text => println!(
            "removed {} step entries and {} blobs, freed {} ({} of it killed builds' temp files)",
            r.steps_removed,
            r.blobs_removed,
            human(r.bytes_freed),
            human(r.temp_bytes_freed)
        ),
    }
    Ok(())
}

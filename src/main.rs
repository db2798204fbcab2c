//! The `imgbuild` command line: parse, call the library, render the result.

use clap::{Args, Parser, Subcommand, ValueEnum};
use imgbuild::error::{Error, Result, exit};
use imgbuild::exec::{self, BuildOptions, human};
use imgbuild::layer::compress::Compression;
use imgbuild::output::{self, Output};
use imgbuild::plan::{self, Action, Plan, PlanOptions};
use imgbuild::progress::Progress;
use imgbuild::registry::Reference;
use imgbuild::spec::{self, Input};
use imgbuild::store::{self, Store};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    Build(BuildArgs),
    /// Show the steps of a build, their keys and whether they are cached.
    Plan(DefArgs),
    /// Show an image in an OCI layout (oci:DIR[:TAG]) or a registry (REF).
    Inspect(InspectArgs),
    /// Push an OCI layout, oci-archive or docker-archive to a registry.
    Push(PushArgs),
    /// Exit 0 if REF exists (with every --platform), 1 if it does not, 6 on any error.
    Exists(ExistsArgs),
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
    /// Build this Dockerfile instead of a definition (PATH is its context).
    #[arg(long = "file", short = 'f')]
    file: Option<PathBuf>,
    /// A Dockerfile ARG value, KEY=VALUE (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// The Dockerfile stage to build (default: the last).
    #[arg(long)]
    target: Option<String>,
    /// Platforms of a Dockerfile build, e.g. linux/amd64,linux/arm64 (default: this host's).
    #[arg(long = "platform", value_delimiter = ',')]
    platforms: Vec<String>,
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
    #[command(flatten)]
    registry: RegistryArgs,
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
        imgbuild::registry::Client::new(imgbuild::registry::ClientOptions {
            insecure: self.insecure.clone(),
            ca_certs: self.ca_cert.clone(),
            credentials,
            credentials_for: registries,
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
struct BuildArgs {
    #[command(flatten)]
    def: DefArgs,
    /// Push the images to their registry (registry/name:tag of the definition, or --tag).
    #[arg(long)]
    push: bool,
    /// Push under this reference instead (repeatable: several tags or registries).
    #[arg(long = "tag", short = 't')]
    tags: Vec<String>,
    /// Parallel uploads when pushing.
    #[arg(long, default_value_t = 4)]
    push_jobs: usize,
    /// Media types of the image's documents: oci (default) or docker (v2 schema 2).
    #[arg(long, default_value = "oci", value_parser = ["oci", "docker"])]
    media_types: String,
    /// oci:DIR, oci-archive:FILE or docker-archive:FILE; `{image}` in the path
    /// stands for the image name. Default: oci:imgbuild-out/{image}.
    #[arg(long, short)]
    output: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// A secret for RUN steps' secret_mounts: id=ID,src=FILE or id=ID,env=VAR
    /// (repeatable). Values never enter layers, cache keys, logs or output.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    secrets: Vec<String>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
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

fn main() {
    // The RUN sandbox's own process: before anything starts a thread.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__sandbox") {
        imgbuild::sandbox::child::main();
    }
    let cli = Cli::parse();
    let (format, res) = match cli.cmd {
        Cmd::Build(a) => (a.def.format, build(a)),
        Cmd::Plan(a) => (a.format, plan_cmd(a)),
        Cmd::Lock(a) => (a.format, lock_cmd(a)),
        Cmd::Inspect(a) => (a.format, inspect(a)),
        Cmd::Push(a) => (a.format, push_cmd(a)),
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
                            status: 0,
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
    if install_uv {
        imgbuild::python::uv::ensure(&store, None)?;
    }
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": store.root().display().to_string(),
        "uv": imgbuild::python::uv::describe(&store),
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

const DEFAULT_OUTPUT: &str = "oci:imgbuild-out/{image}";

fn open_store(dir: &Option<PathBuf>) -> Result<Store> {
    Store::open(&dir.clone().unwrap_or_else(store::default_root))
}

/// A definition from PATH, or from `--definition FILE|-` (with `--context`).
fn load_definition(
    path: &Path,
    definition: Option<&str>,
    context: Option<&Path>,
    profile: Option<&str>,
) -> Result<imgbuild::spec::Definition> {
    Ok(match definition {
        None => spec::load(Input::Path(path), profile)?,
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::io("reading the definition from standard input", e))?;
            let context = context
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            spec::load(
                Input::Text {
                    text,
                    name: PathBuf::from("<stdin>"),
                    context,
                },
                profile,
            )?
        }
        Some(d) => {
            let mut def = spec::load(Input::Path(Path::new(d)), profile)?;
            if let Some(c) = context {
                def.context = c.to_path_buf();
            }
            def
        }
    })
}

/// A definition from Flyte's image spec: one image, [`imgbuild::flyte::IMAGE`],
/// its platforms from --platform when given.
fn flyte_definition(a: &DefArgs) -> Result<imgbuild::spec::Definition> {
    let spec = a.flyte_spec.as_deref().expect("checked by the caller");
    let context = a.context.clone().ok_or_else(|| {
        Error::Usage("--flyte-spec needs --context: the build folder Flyte prepared".into())
    })?;
    if !context.is_dir() {
        return Err(Error::input(&context, "the build context is not a folder"));
    }
    let context = absolute(&context);
    let (mut text, spec_layers) = imgbuild::flyte::definition_text(spec, &context)?;
    if !a.platforms.is_empty() {
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("made as JSON");
        v["images"][imgbuild::flyte::IMAGE]["platforms"] = serde_json::json!(a.platforms);
        text = v.to_string();
    }
    let mut def = spec::load(
        Input::Text {
            text,
            name: spec.to_path_buf(),
            context,
        },
        a.profile.as_deref(),
    )?;
    // Errors name the spec's fields, not the definition made from it.
    for img in &mut def.images {
        let at = |field: &str| imgbuild::error::Location {
            file: spec.to_path_buf(),
            line: 0,
            column: 0,
            field: field.to_string(),
        };
        img.loc = at("spec");
        img.base_loc = at("spec.baseImage");
        img.uv_loc = at("spec");
        for (j, l) in img.layers.iter_mut().enumerate() {
            l.loc = match j.checked_sub(imgbuild::flyte::HEADER_LAYERS) {
                None => at("spec (the venv's environment Flyte's builder sets)"),
                Some(i) if i < spec_layers => at(&format!("spec.layers[{i}]")),
                Some(_) => at("spec (the flyte user Flyte's builder runs as)"),
            };
        }
    }
    Ok(def)
}

/// `imgbuild export dockerfile`.
fn export_dockerfile(a: &ExportDockerfileArgs) -> Result<()> {
    let def = load_definition(
        &a.path,
        a.definition.as_deref(),
        a.context.as_deref(),
        a.profile.as_deref(),
    )?;
    let text = imgbuild::export::dockerfile(
        &def,
        &a.images,
        &imgbuild::export::ExportOptions {
            uv_image: &a.uv_image,
        },
    )?;
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

fn load_plan(
    a: &DefArgs,
    store: &Store,
    output: Option<&Output>,
    client: Option<&imgbuild::registry::Client>,
) -> Result<Plan> {
    let def = match (&a.file, &a.definition) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "--file (a Dockerfile) and --definition cannot be used together".into(),
            ));
        }
        _ if a.flyte_spec.is_some() && (a.file.is_some() || a.definition.is_some()) => {
            return Err(Error::Usage(
                "--flyte-spec cannot be used with --file or --definition".into(),
            ));
        }
        (None, None) if a.flyte_spec.is_some() => flyte_definition(a)?,
        (Some(f), None) => dockerfile_definition(a, f)?,
        (None, d) => load_definition(
            &a.path,
            d.as_deref(),
            a.context.as_deref(),
            a.profile.as_deref(),
        )?,
    };
    // imgbuild's own output and store never go into a layer.
    let mut exclude = vec![absolute(store.root())];
    if let Some(out) = output {
        for img in &def.images {
            exclude.push(absolute(out.for_image(&img.id).path()));
        }
        if *out == Output::parse(DEFAULT_OUTPUT).expect("valid") {
            exclude.push(absolute(Path::new("imgbuild-out")));
        }
    }
    let options = PlanOptions {
        exclude,
        base_mirror: a.registry.base_registry_mirror.clone(),
        compression: a.compression,
        // Flyte's build folder holds what the SDK chose to copy.
        no_default_ignore: a.no_default_ignore || a.flyte_spec.is_some(),
        only: a.images.clone(),
        profile: a.profile.clone(),
        python: plan::python::PyPlanOptions { relock: a.relock },
        debian_locked: a.locked,
        debian_sources: a.debian_sources.clone(),
        ..PlanOptions::default()
    };
    plan::plan(def, store, options, client)
}

/// Writes the lock of native Debian bases when planning changed it.
fn save_debian_lock(plan: &Plan) -> Result<()> {
    if let Some((path, lock, true)) = &plan.debian_lock {
        lock.save(path)?;
    }
    Ok(())
}

/// `imgbuild lock`: resolves every native Debian base again and writes
/// imgbuild.lock.
fn lock_cmd(a: DefArgs) -> Result<()> {
    let store = open_store(&a.cache_dir)?;
    let client = a.registry.client(Vec::new())?;
    let def = load_definition(
        &a.path,
        a.definition.as_deref(),
        a.context.as_deref(),
        a.profile.as_deref(),
    )?;
    let options = PlanOptions {
        only: a.images.clone(),
        profile: a.profile.clone(),
        debian_relock: true,
        debian_sources: a.debian_sources.clone(),
        ..PlanOptions::default()
    };
    let plan = plan::plan(def, &store, options, Some(&client))?;
    let Some((path, lock, _)) = &plan.debian_lock else {
        return Err(Error::Usage(
            "no image of the definition has a native Debian base (base = { debian = … })".into(),
        ));
    };
    lock.save(path)?;
    let bases: Vec<serde_json::Value> = lock
        .bases
        .iter()
        .map(|b| json!({"image": b.image, "arch": b.arch, "packages": b.packages.len()}))
        .collect();
    if a.format == Format::Json {
        println!(
            "{}",
            json!({"lock": path.display().to_string(), "bases": bases})
        );
    } else {
        for b in &lock.bases {
            println!("{} {}: {} packages", b.image, b.arch, b.packages.len());
        }
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `build -f Dockerfile [CONTEXT]`: the Dockerfile as a definition.
fn dockerfile_definition(a: &DefArgs, file: &Path) -> Result<spec::Definition> {
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
    let platforms = if a.platforms.is_empty() {
        vec![spec::Platform::host()]
    } else {
        a.platforms
            .iter()
            .map(|p| spec::Platform::parse(p).map_err(|m| Error::Usage(format!("--platform: {m}"))))
            .collect::<Result<Vec<_>>>()?
    };
    let context = a.path.clone();
    let name = absolute(&context)
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "image".into());
    imgbuild::dockerfile::frontend::load(&imgbuild::dockerfile::frontend::FrontendOptions {
        dockerfile: file,
        context: &context,
        build_args: &build_args,
        target: a.target.as_deref(),
        platforms,
        name,
        tag: spec::Tag::Explicit("latest".into()),
    })
}

/// A canonical absolute path, also for paths that do not exist yet.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            absolute(parent).join(name)
        }
        _ => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf()),
    }
}

fn build(a: BuildArgs) -> Result<()> {
    let t0 = Instant::now();
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
    let push = a.push || !a.tags.is_empty();
    // With --push and no --output, nothing is written locally.
    let out = match (&a.output, push) {
        (Some(o), _) => Some(Output::parse(o).map_err(Error::Usage)?),
        (None, false) => Some(Output::parse(DEFAULT_OUTPUT).expect("valid")),
        (None, true) => None,
    };
    let extra_tags: Vec<Reference> = a
        .tags
        .iter()
        .map(|t| Reference::parse(t).map_err(|m| Error::Usage(format!("--tag: {m}"))))
        .collect::<Result<_>>()?;
    let store = open_store(&a.def.cache_dir)?;
    let registries: Vec<String> = extra_tags.iter().map(|r| r.registry.clone()).collect();
    let client = a.def.registry.client(registries)?;
    let plan = load_plan(&a.def, &store, out.as_ref(), Some(&client))?;
    save_debian_lock(&plan)?;
    // A Dockerfile's result is its target stage (the last image); the stages
    // below it are built into the store only, as docker does.
    let dockerfile_target = a.def.file.is_some().then(|| plan.images.len() - 1);
    let is_result = |i: usize| dockerfile_target.is_none_or(|t| t == i);
    if let Some(out) = &out
        && dockerfile_target.is_none()
        && plan.images.len() > 1
        && !out.has_placeholder()
    {
        let names: Vec<&str> = plan.images.iter().map(|i| i.id.as_str()).collect();
        // One layout can hold several images only under different tags.
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
            return Err(Error::Usage(format!(
                "{} images ({}) but one output file: put {{image}} in the path or pick one with --image",
                names.len(),
                names.join(", ")
            )));
        }
    }
    // Push targets per image: --tag, else registry/name:tag of the definition.
    let selected: Vec<usize> = (0..plan.images.len())
        .filter(|&i| a.def.images.is_empty() || a.def.images.contains(&plan.images[i].id))
        .filter(|&i| is_result(i))
        .collect();
    let mut targets: Vec<Vec<Reference>> = vec![Vec::new(); plan.images.len()];
    if push {
        if !extra_tags.is_empty() {
            if selected.len() != 1 {
                return Err(Error::Usage(format!(
                    "--tag names one image's references, but {} images are selected: pick one with --image",
                    selected.len()
                )));
            }
            targets[selected[0]] = extra_tags.clone();
        } else {
            for &i in &selected {
                let img = &plan.images[i];
                if img.registry.is_none() {
                    return Err(Error::Usage(format!(
                        "image {} has no `registry` to push to: set it in the definition or pass --tag REF",
                        img.id
                    )));
                }
                targets[i] = vec![Reference::parse(&img.reference()).map_err(Error::Usage)?];
            }
        }
    }
    // tag = "auto": a target that already holds the tag with every platform
    // is up to date; such an image is not built (unless another image needs it).
    let mut skip = vec![false; plan.images.len()];
    if push && out.is_none() {
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
                all &= imgbuild::registry::exists(&client, t, &img.platforms)?;
            }
            skip[i] = all;
        }
    }
    let progress = Progress::auto(a.quiet);
    let mut warnings = Vec::new();
    for (i, img) in plan.images.iter().enumerate() {
        if skip[i] {
            continue;
        }
        for s in &img.steps {
            for n in &s.notes {
                if n.starts_with("warning:") {
                    // Warnings are printed even with -q.
                    eprintln!("[{}] {n}", img.id);
                    warnings.push(format!("[{}] {n}", img.id));
                }
            }
        }
    }
    let res = exec::run(
        &plan,
        &store,
        &BuildOptions {
            threads: jobs,
            progress: &progress,
            client: Some(&client),
            fetch_base_layers: out.is_some(),
            skip: skip.clone(),
            docker_media_types: a.media_types == "docker",
            secrets: read_secrets(&a.secrets)?,
        },
    )?;
    let mut images_json = Vec::new();
    let mut bytes_written = 0;
    let mut bytes_uploaded = 0;
    for (i, img) in plan.images.iter().enumerate() {
        if skip[i] {
            let refs: Vec<String> = targets[i].iter().map(|r| r.to_string()).collect();
            if a.def.format == Format::Text {
                println!("{} is up to date ({})", img.id, refs.join(", "));
            }
            images_json.push(json!({
                "name": img.id,
                "reference": img.reference(),
                "tag": img.tag,
                "up_to_date": true,
                "pushed": refs,
            }));
            continue;
        }
        if !is_result(i) {
            continue;
        }
        let built_img = res.images.iter().find(|x| x.id == img.id).expect("built");
        let mut target_json = serde_json::Value::Null;
        if let Some(out) = &out {
            let target = out.for_image(&built_img.id);
            let stats = output::write(&target, &store, built_img)?;
            bytes_written += stats.bytes_written;
            target_json = json!(target.display());
        }
        // Push: one call per repository, its tags together.
        let mut pushed = Vec::new();
        let mut groups: Vec<(Reference, Vec<String>)> = Vec::new();
        for t in &targets[i] {
            let tag = t.tag.clone().unwrap_or_else(|| "latest".into());
            match groups
                .iter_mut()
                .find(|(r, _)| r.registry == t.registry && r.repository == t.repository)
            {
                Some((_, tags)) => tags.push(tag),
                None => groups.push((t.clone(), vec![tag])),
            }
        }
        for (repo, tags) in &groups {
            progress.line(&format!(
                "[{}] pushing to {}/{} ({})",
                img.id,
                repo.registry,
                repo.repository,
                tags.join(", ")
            ));
            let st = imgbuild::registry::push(
                &client,
                &store,
                &imgbuild::registry::PushRequest {
                    target: repo,
                    tags,
                    top: &built_img.top,
                    blobs: &built_img.blobs,
                    base: built_img.base_ref.as_ref(),
                },
                a.push_jobs,
            )?;
            bytes_uploaded += st.bytes_uploaded;
            for t in tags {
                pushed.push(json!({
                    "reference": repo.with_tag(t).to_string(),
                    "digest": built_img.top.digest,
                    "blobs_uploaded": st.blobs_uploaded,
                    "blobs_present": st.blobs_present,
                    "bytes_uploaded": st.bytes_uploaded,
                }));
            }
        }
        let built = built_img
            .platforms
            .iter()
            .flat_map(|p| &p.layers)
            .filter(|l| l.cache == "miss")
            .count();
        let total = built_img
            .platforms
            .first()
            .map(|p| p.layers.len())
            .unwrap_or(0);
        if a.def.format == Format::Text {
            let mut dest: Vec<String> = Vec::new();
            if let Some(o) = &out {
                dest.push(o.for_image(&built_img.id).display());
            }
            for (r, tags) in &groups {
                dest.extend(tags.iter().map(|t| r.with_tag(t).to_string()));
            }
            println!(
                "{} → {} {} ({} layers, {} built)",
                built_img.reference,
                dest.join(", "),
                built_img.top.digest,
                total,
                built
            );
        }
        images_json.push(json!({
            "name": built_img.id,
            "reference": built_img.reference,
            "tag": built_img.tag,
            "output": target_json,
            "digest": built_img.top.digest,
            "media_type": built_img.top.media_type,
            "platforms": built_img.platforms,
            "up_to_date": false,
            "pushed": pushed,
        }));
    }
    if a.def.format == Format::Json {
        let v = json!({
            "images": images_json,
            "layers_built": res.layers_built,
            "bytes_compressed": res.bytes_compressed,
            "bytes_written": bytes_written,
            "bytes_uploaded": bytes_uploaded,
            "warnings": warnings,
            "duration_ms": t0.elapsed().as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if res.layers_built > 0 {
        progress.line(&format!(
            "built {} layer(s), {} compressed, in {:.2}s",
            res.layers_built,
            human(res.bytes_compressed),
            t0.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

fn plan_cmd(a: DefArgs) -> Result<()> {
    let store = open_store(&a.cache_dir)?;
    let client = a.registry.client(Vec::new())?;
    let plan = load_plan(&a, &store, None, Some(&client))?;
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
            let state = match (&s.action, &s.cached) {
                (Action::Config(_), _) => "config",
                (_, Some(_)) => "hit",
                (_, None) => "miss",
            };
            let (files, bytes) = match &s.action {
                Action::Files { entries, bytes, .. } => (Some(entries.len()), Some(*bytes)),
                Action::Python(pl) => (Some(pl.artifacts.len()), Some(pl.bytes)),
                Action::Debian(d) => (
                    Some(d.packages.len()),
                    Some(d.packages.iter().map(|p| p.size).sum()),
                ),
                Action::Config(_) | Action::Run(_) | Action::CopyFrom(_) => (None, None),
            };
            if a.format == Format::Text {
                let size = match (files, bytes) {
                    (Some(f), Some(b)) => format!(" ({f} entries, {})", human(b)),
                    _ => String::new(),
                };
                println!(
                    "  {:>2}. {:<6} {}  {}{size}",
                    i + 1,
                    state,
                    s.key.short(),
                    s.name
                );
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
    let (dir, tag) = match rest.rsplit_once(':') {
        Some((d, t)) if !t.contains('/') && !d.is_empty() => {
            (PathBuf::from(d), Some(t.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    };
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

/// Collects every blob of the image tagged in a layout, importing (and
/// verifying) them into the store. Returns the top descriptor and the blobs.
fn import_layout(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
) -> Result<(
    imgbuild::oci::types::Descriptor,
    Vec<imgbuild::oci::types::Descriptor>,
)> {
    use imgbuild::oci::layout::{find_tag, read_json};
    use imgbuild::oci::types::*;
    let mut top = find_tag(dir, tag)?;
    top.annotations = None;
    let mut blobs: Vec<Descriptor> = Vec::new();
    let manifests: Vec<Descriptor> =
        if top.media_type == MT_INDEX || top.media_type == MT_DOCKER_LIST {
            let ix: Index = read_json(dir, &top.digest)?;
            exec::import_blob(store, dir, &top)?;
            blobs.push(top.clone());
            ix.manifests
        } else {
            vec![top.clone()]
        };
    for m in manifests {
        let manifest: Manifest = read_json(dir, &m.digest)?;
        for d in manifest
            .layers
            .iter()
            .chain(std::iter::once(&manifest.config))
        {
            exec::import_blob(store, dir, d)?;
            if !blobs.iter().any(|b| b.digest == d.digest) {
                blobs.push(d.clone());
            }
        }
        exec::import_blob(store, dir, &m)?;
        blobs.push(Descriptor {
            platform: None,
            annotations: None,
            ..m
        });
    }
    Ok((top, blobs))
}

fn push_cmd(a: PushArgs) -> Result<()> {
    let target = Reference::parse(&a.reference).map_err(Error::Usage)?;
    let store = open_store(&a.cache_dir)?;
    let client = a.registry.client(vec![target.registry.clone()])?;
    let tmp = tempfile::tempdir().map_err(|e| Error::io("creating a temp folder", e))?;
    let (kind, rest) = a.source.split_once(':').ok_or_else(|| {
        Error::Usage(format!(
            "source {:?} is not oci:DIR[:TAG], oci-archive:FILE or docker-archive:FILE",
            a.source
        ))
    })?;
    let (top, blobs) = match kind {
        "oci" => {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') && !d.is_empty() => {
                    (PathBuf::from(d), Some(t.to_string()))
                }
                _ => (PathBuf::from(rest), None),
            };
            import_layout(&store, &dir, tag.as_deref())?
        }
        "oci-archive" | "docker-archive" => {
            let f = std::fs::File::open(rest)
                .map_err(|e| Error::input(rest, format!("cannot read: {e}")))?;
            let mut ar = tar::Archive::new(f);
            for entry in ar
                .entries()
                .map_err(|e| Error::input(rest, format!("not a tar archive: {e}")))?
            {
                let mut entry =
                    entry.map_err(|e| Error::input(rest, format!("not a tar archive: {e}")))?;
                // unpack_in refuses paths that leave the folder.
                entry
                    .unpack_in(tmp.path())
                    .map_err(|e| Error::input(rest, format!("cannot unpack: {e}")))?;
            }
            if kind == "oci-archive"
                || tmp.path().join("index.json").is_file()
                    && !tmp.path().join("manifest.json").is_file()
            {
                import_layout(&store, tmp.path(), None)?
            } else {
                import_docker_archive(&store, tmp.path(), rest)?
            }
        }
        other => {
            return Err(Error::Usage(format!(
                "unknown source type {other:?} (oci, oci-archive, docker-archive)"
            )));
        }
    };
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    let st = imgbuild::registry::push(
        &client,
        &store,
        &imgbuild::registry::PushRequest {
            target: &target,
            tags: std::slice::from_ref(&tag),
            top: &top,
            blobs: &blobs,
            base: None,
        },
        a.jobs,
    )?;
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

/// A docker-archive (manifest.json): its config and layers become a Docker
/// v2 schema 2 manifest, keeping the config's bytes and so the image ID.
fn import_docker_archive(
    store: &Store,
    dir: &Path,
    name: &str,
) -> Result<(
    imgbuild::oci::types::Descriptor,
    Vec<imgbuild::oci::types::Descriptor>,
)> {
    use imgbuild::oci::types::*;
    let bad = |m: &str| Error::input(name, format!("not a docker-archive: {m}"));
    let text = std::fs::read(dir.join("manifest.json")).map_err(|_| bad("no manifest.json"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|_| bad("manifest.json is not JSON"))?;
    let entries = v
        .as_array()
        .ok_or_else(|| bad("manifest.json is not a list"))?;
    if entries.len() != 1 {
        return Err(bad("it holds several images; push them one at a time"));
    }
    let e = &entries[0];
    let put = |rel: &str, media_type: &str| -> Result<Descriptor> {
        let p = dir.join(rel);
        if !p.starts_with(dir) || rel.contains("..") {
            return Err(bad("a path leaves the archive"));
        }
        let d = imgbuild::layer::files::hash_file(&p)?;
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        let mut head = [0u8; 2];
        let _ = std::fs::File::open(&p).and_then(|mut f| f.read_exact(&mut head));
        let media_type = if media_type.is_empty() {
            if head == [0x1f, 0x8b] {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            } else {
                "application/vnd.docker.image.rootfs.diff.tar"
            }
        } else {
            media_type
        };
        let desc = Descriptor {
            media_type: media_type.into(),
            digest: d,
            size,
            platform: None,
            annotations: None,
        };
        let tmp = store.temp_file()?;
        std::fs::copy(&p, tmp.path()).map_err(|e| Error::io("copying a blob", e))?;
        store.commit_blob(tmp, &d)?;
        Ok(desc)
    };
    let config = put(
        e["Config"].as_str().ok_or_else(|| bad("no Config"))?,
        MT_DOCKER_CONFIG,
    )?;
    let mut layers = Vec::new();
    for l in e["Layers"].as_array().ok_or_else(|| bad("no Layers"))? {
        layers.push(put(
            l.as_str().ok_or_else(|| bad("a layer path is not text"))?,
            "",
        )?);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MT_DOCKER_MANIFEST.into()),
        config: config.clone(),
        layers: layers.clone(),
        annotations: None,
    };
    let bytes = to_bytes(&manifest);
    let d = store.put_blob_bytes(&bytes)?;
    let top = Descriptor {
        media_type: MT_DOCKER_MANIFEST.into(),
        digest: d,
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
    };
    let mut blobs = layers;
    blobs.push(config);
    blobs.push(top.clone());
    Ok((top, blobs))
}

fn exists_cmd(a: ExistsArgs) -> Result<bool> {
    let r = Reference::parse(&a.reference).map_err(Error::Usage)?;
    let platforms = a
        .platforms
        .iter()
        .map(|p| imgbuild::spec::Platform::parse(p).map_err(Error::Usage))
        .collect::<Result<Vec<_>>>()?;
    let client = a.registry.client(vec![r.registry.clone()])?;
    imgbuild::registry::exists(&client, &r, &platforms)
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

fn prune(older_than: String, format: Format, cache_dir: Option<PathBuf>) -> Result<()> {
    let d = parse_duration(&older_than)?;
    let store = Store::open_exclusive(&cache_dir.unwrap_or_else(store::default_root))?;
    let r = store.prune(d, &imgbuild::sandbox::remove_tree)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string(&r).expect("json")),
        Format::Text => println!(
            "removed {} step entries and {} blobs, freed {}",
            r.steps_removed,
            r.blobs_removed,
            human(r.bytes_freed)
        ),
    }
    Ok(())
}

//! The `imgbuild` command line: parse, call the library, render the result.

use clap::{Args, Parser, Subcommand, ValueEnum};
use imgbuild::error::{Error, Result, exit};
use imgbuild::exec::{self, BuildOptions, human};
use imgbuild::layer::compress::Compression;
use imgbuild::oci::output::{self, Output};
use imgbuild::plan::{self, Action, Plan, PlanOptions};
use imgbuild::progress::Progress;
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
    /// Show an image in an OCI layout (oci:DIR[:TAG]).
    Inspect(InspectArgs),
    /// Manage the local store.
    Cache {
        #[command(subcommand)]
        cmd: CacheCmd,
    },
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
    /// An imgbuild.toml, or a folder holding one.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The definition as a file (TOML or JSON), or - for standard input; replaces PATH.
    #[arg(long)]
    definition: Option<String>,
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
    /// The local store (default: $XDG_CACHE_HOME/imgbuild).
    #[arg(long, env = "IMGBUILD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    def: DefArgs,
    /// oci:DIR, oci-archive:FILE or docker-archive:FILE; `{image}` in the path
    /// stands for the image name. Default: oci:imgbuild-out/{image}.
    #[arg(long, short)]
    output: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// oci:DIR[:TAG]
    reference: String,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

fn main() {
    let cli = Cli::parse();
    let (format, res) = match cli.cmd {
        Cmd::Build(a) => (a.def.format, build(a)),
        Cmd::Plan(a) => (a.format, plan_cmd(a)),
        Cmd::Inspect(a) => (a.format, inspect(a)),
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

const DEFAULT_OUTPUT: &str = "oci:imgbuild-out/{image}";

fn open_store(dir: &Option<PathBuf>) -> Result<Store> {
    Store::open(&dir.clone().unwrap_or_else(store::default_root))
}

fn load_plan(a: &DefArgs, store: &Store, output: Option<&Output>) -> Result<Plan> {
    let def = match &a.definition {
        None => spec::load(Input::Path(&a.path), a.profile.as_deref())?,
        Some(d) if d == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::io("reading the definition from standard input", e))?;
            let context = a.context.clone().unwrap_or_else(|| PathBuf::from("."));
            spec::load(
                Input::Text {
                    text,
                    name: PathBuf::from("<stdin>"),
                    context,
                },
                a.profile.as_deref(),
            )?
        }
        Some(d) => {
            let p = Path::new(d);
            let mut def = spec::load(Input::Path(p), a.profile.as_deref())?;
            if let Some(c) = &a.context {
                def.context = c.clone();
            }
            def
        }
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
        compression: a.compression,
        no_default_ignore: a.no_default_ignore,
        only: a.images.clone(),
        profile: a.profile.clone(),
        ..PlanOptions::default()
    };
    plan::plan(def, store, options)
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
    let out = Output::parse(a.output.as_deref().unwrap_or(DEFAULT_OUTPUT)).map_err(Error::Usage)?;
    let store = open_store(&a.def.cache_dir)?;
    let plan = load_plan(&a.def, &store, Some(&out))?;
    if plan.images.len() > 1 && !out.has_placeholder() {
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
    let progress = Progress::auto(a.quiet);
    let mut warnings = Vec::new();
    for img in &plan.images {
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
        },
    )?;
    let mut images_json = Vec::new();
    let mut bytes_written = 0;
    for img in &res.images {
        let target = out.for_image(&img.id);
        let stats = output::write(&target, &store, img)?;
        bytes_written += stats.bytes_written;
        let built = img
            .platforms
            .iter()
            .flat_map(|p| &p.layers)
            .filter(|l| l.cache == "miss")
            .count();
        let total = img.platforms.first().map(|p| p.layers.len()).unwrap_or(0);
        if a.def.format == Format::Text {
            println!(
                "{} → {} {} ({} layers, {} built)",
                img.reference,
                target.display(),
                img.top.digest,
                total,
                built
            );
        }
        images_json.push(json!({
            "name": img.id,
            "reference": img.reference,
            "tag": img.tag,
            "output": target.display(),
            "digest": img.top.digest,
            "media_type": img.top.media_type,
            "platforms": img.platforms,
        }));
    }
    if a.def.format == Format::Json {
        let v = json!({
            "images": images_json,
            "layers_built": res.layers_built,
            "bytes_compressed": res.bytes_compressed,
            "bytes_written": bytes_written,
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
    let plan = load_plan(&a, &store, None)?;
    plan.stat.save(&store)?;
    let mut out = Vec::new();
    for img in &plan.images {
        let base = match &img.base {
            plan::BasePlan::Scratch => "scratch".to_string(),
            plan::BasePlan::Layout { reference, .. } => reference.clone(),
            plan::BasePlan::Image(i) => format!("image {}", plan.images[*i].id),
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
                Action::Files { entries, bytes } => (Some(entries.len()), Some(*bytes)),
                Action::Config(_) => (None, None),
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
        return Err(Error::Unsupported {
            what: format!("inspecting {:?}", a.reference),
            hint: Some(
                "registry references arrive with registry support; give oci:DIR[:TAG]".into(),
            ),
        });
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

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Usage(format!("duration {s:?} is not like 7d, 12h, 30m or 0")))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(Error::Usage(format!(
                "duration {s:?}: unit must be s, m, h or d"
            )));
        }
    };
    Ok(std::time::Duration::from_secs(secs))
}

fn prune(older_than: String, format: Format, cache_dir: Option<PathBuf>) -> Result<()> {
    let d = parse_duration(&older_than)?;
    let store = Store::open_exclusive(&cache_dir.unwrap_or_else(store::default_root))?;
    let r = store.prune(d)?;
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

//! Builds a definition and pushes its image, using only imgbuild's public
//! API, as a deployer linking the crate would.
//!
//! ```text
//! cargo run --example build_and_push -- DEFINITION REFERENCE [STORE]
//! ```
//!
//! DEFINITION is an `imgbuild.toml` (or a folder holding one) with one
//! image; REFERENCE is where it goes (`registry/repository:tag`; plain HTTP
//! for loopback registries). Prints the build report as JSON.
//!
//! The program, not the library, decides what comes from the environment:
//! here trust roots, proxy and Docker's credentials as the command line
//! takes them ([`ClientOptions::from_env`], [`HttpConfig::from_env`]), and
//! a registry failure is told apart by its kind.

use imgbuild::progress::ProgressSink;
use imgbuild::registry::{Client, ClientOptions, Reference, RegistryErrorKind};
use imgbuild::store::Store;
use imgbuild::{BuildRequest, Error, HttpConfig, PlanRequest, Source};
use std::path::PathBuf;
use std::sync::Mutex;

/// Progress kept as lines, shown on stderr when the build ends.
#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl ProgressSink for Collect {
    fn line(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_string());
    }
    fn warning(&self, msg: &str) {
        self.line(&format!("warning: {msg}"));
    }
    fn start(&self, label: &str, _total: u64) -> Box<dyn imgbuild::progress::Task> {
        self.line(&format!("{label}: started"));
        imgbuild::progress::Silent.start(label, 0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: build_and_push DEFINITION REFERENCE [STORE]");
        std::process::exit(2);
    }
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        // What the registry said, for a person to act on.
        if let Error::Registry { status, .. } = &e {
            match status.kind {
                RegistryErrorKind::Unauthorized | RegistryErrorKind::Denied => eprintln!(
                    "hint: log in to {} with push rights for {} (Docker's config.json)",
                    status.registry, status.repository
                ),
                RegistryErrorKind::RateLimited | RegistryErrorKind::Unavailable => {
                    eprintln!("hint: {} is busy; run again later", status.registry)
                }
                RegistryErrorKind::Transport => {
                    eprintln!("hint: check the network and the trust roots (SSL_CERT_FILE)")
                }
                _ => {}
            }
        }
        std::process::exit(e.exit_code());
    }
}

fn run(args: &[String]) -> imgbuild::Result<()> {
    let target = Reference::parse(&args[1]).map_err(imgbuild::Error::Usage)?;
    let store_dir = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(imgbuild::store::default_root);
    let store = Store::open(&store_dir)?.with_http(HttpConfig::from_env());
    let client = Client::new(ClientOptions {
        credentials_for: vec![target.registry.clone()],
        ..ClientOptions::from_env()
    })?;
    let req = BuildRequest {
        output: None,
        push: true,
        tags: vec![target],
        ..BuildRequest::new(PlanRequest::new(Source::Path {
            path: PathBuf::from(&args[0]),
            context: None,
        }))
    };
    let progress = Collect::default();
    let report = imgbuild::build(&req, &store, &client, &progress)?;
    for line in progress.0.lock().unwrap().iter() {
        eprintln!("{line}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("a report serializes")
    );
    Ok(())
}

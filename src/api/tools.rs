//! The command line's smaller jobs, for callers of the library too: the
//! sandbox helper's entry point, the host tools report, Dockerfile export,
//! store pruning.

use crate::error::Result;
pub use crate::sandbox::SandboxOptions;
use crate::spec::Definition;
use crate::store::{PruneReport, Store, VerifyReport};

/// The RUN sandbox's own process. A program that links imgbuild and builds
/// RUN steps must call this first thing in `main` when its first argument
/// is `__sandbox` (the sandbox starts the current executable with it, or
/// [`SandboxOptions::helper`]); it does not return.
pub fn sandbox_helper_main() -> ! {
    crate::sandbox::child::main()
}

/// Sets how this process runs RUN steps (user namespace, sandbox
/// program, overlay or copy); call it before the first build. False when
/// the options were set or used already (they stay as they were). Without
/// it, steps run with [`SandboxOptions::default`]; the command line passes
/// [`SandboxOptions::from_env`].
pub fn configure_sandbox(options: SandboxOptions) -> bool {
    crate::sandbox::configure(options)
}

/// Which uv Python layers use and where it comes from, and the default
/// package index (`install_uv`: install uv into the store when missing).
pub fn doctor(store: &Store, install_uv: bool) -> Result<serde_json::Value> {
    if install_uv {
        crate::python::uv::ensure(store, None)?;
    }
    Ok(crate::python::uv::describe(store))
}

/// A Dockerfile for `images` of the definition (all when empty), one stage
/// per image; Python layers take uv from `uv_image`.
pub fn export_dockerfile(def: &Definition, images: &[String], uv_image: &str) -> Result<String> {
    crate::export::dockerfile(def, images, &crate::export::ExportOptions { uv_image })
}

/// Removes store entries unused for `older_than` and blobs nothing
/// references (the store must be opened exclusively).
pub fn prune(store: &Store, older_than: std::time::Duration) -> Result<PruneReport> {
    store.prune(older_than, &crate::sandbox::remove_tree)
}

/// Re-hashes every blob of the store; removes the bad ones (and the step
/// entries naming them, so those steps are built again). Takes no more
/// than the shared lock builds hold.
pub fn verify_store(store: &Store) -> Result<VerifyReport> {
    store.verify_all()
}

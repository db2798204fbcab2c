//! A testing hook: named points of a build where the process can be made to
//! stop, so a test kills it exactly there (SIGKILL) instead of by timing.
//!
//! `IMGBUILD_FAULT_PAUSE=<point>` makes the process stop itself (SIGSTOP,
//! every thread at once) the first time it reaches that point; the test sees
//! the process stopped (state `T` in `/proc/PID/stat`) and kills it, or
//! does something else and lets it go on (SIGCONT). Unset,
//! a point costs one read of a cached value. The points:
//!
//! - `layer-written`: a file layer's bytes are in a temp file of the store,
//!   not yet renamed into place;
//! - `step-record`: a layer's blob is in the store, the step's cache entry
//!   not yet written;
//! - `output-blob`: a blob is being placed into an OCI layout folder (the
//!   layout's index not written yet);
//! - `output-index`: a layout's blobs are in place and its index read
//!   (under the layout's lock), not yet replaced;
//! - `output-local`: a `type=local` folder is complete, not yet renamed
//!   into place;
//! - `output-archive`: an archive's blobs are written to its temp file, not
//!   yet named;
//! - `push-chunk`: a chunk of a blob's upload is in the registry, the rest
//!   not yet;
//! - `push-manifest`: a push's blobs are in the registry, its manifests and
//!   tags not yet.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stops the process here when `IMGBUILD_FAULT_PAUSE` names `name` (the
/// first time only: a test that lets the process go on sees it run to its
/// end).
pub fn point(name: &str) {
    static PAUSE: OnceLock<Option<String>> = OnceLock::new();
    static FIRED: AtomicBool = AtomicBool::new(false);
    let want = PAUSE.get_or_init(|| std::env::var("IMGBUILD_FAULT_PAUSE").ok());
    if want.as_deref() == Some(name) && !FIRED.swap(true, Ordering::SeqCst) {
        // SAFETY: raise takes an integer; SIGSTOP cannot be caught.
        unsafe { libc::raise(libc::SIGSTOP) };
    }
}

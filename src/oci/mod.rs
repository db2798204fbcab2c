//! OCI's own vocabulary: platforms, descriptors, manifests, image configs,
//! and reading image layouts. A leaf of the crate: it imports nothing of it
//! but digests and errors, and everything else may import it.

pub mod layout;
pub mod platform;
pub mod types;

pub use platform::{Platform, host_arch};
pub use types::Owner;

//! The library's front door: what the command line does, for a program that
//! links the crate. Load a definition ([`load`]), plan it ([`plan`]), build
//! it into the store and write or push the results ([`build`]), push an
//! image already built ([`push`]); registry access, the store and progress
//! are passed in ([`registry::Client`](crate::registry::Client),
//! [`Store`](crate::store::Store), [`ProgressSink`](crate::progress::ProgressSink)),
//! nothing is read from the environment here.
//!
//! ```no_run
//! use imgbuild::{BuildRequest, PlanRequest, Source};
//! # fn main() -> imgbuild::Result<()> {
//! let store = imgbuild::store::Store::open(std::path::Path::new("/tmp/store"))?;
//! let client = imgbuild::registry::Client::new(Default::default())?;
//! let req = BuildRequest {
//!     output: Some(imgbuild::output::Output::parse("oci:out").unwrap()),
//!     ..BuildRequest::new(PlanRequest::new(Source::Path {
//!         path: "imgbuild.toml".into(),
//!         context: None,
//!     }))
//! };
//! let report = imgbuild::build(&req, &store, &client, &imgbuild::progress::Silent)?;
//! println!("{}", serde_json::to_string(&report).unwrap());
//! # Ok(())
//! # }
//! ```

mod attest;
mod build;
mod filesystem;
mod load;
mod mutate;
mod push;
mod tools;

pub use crate::error::{RegistryErrorKind, RegistryStatus};
pub use crate::net::{HttpConfig, HttpProxy};
pub use attest::{Attached, Attest, Provenance, attached_document, attestations};
pub use build::{
    AttestationReport, BuildReport, BuildRequest, ImageReport, LockReport, LockedBase, PlanRequest,
    Pushed, build, lock, plan,
};
pub use load::{NamedContext, Source, load, parse_build_context};
pub use mutate::{Annotation, AnnotationTarget};
pub use push::{parse_layout_ref, push};
pub use tools::{
    SandboxOptions, configure_sandbox, doctor, export_dockerfile, prune, sandbox_helper_main,
    verify_store,
};

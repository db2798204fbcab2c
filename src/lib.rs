//! imgbuild: a daemonless OCI image build engine.
//!
//! A program that links the crate uses the facade at its root: [`load`] a
//! definition, Dockerfile or Flyte spec ([`Source`]), [`plan()`] it,
//! [`build`] ([`BuildRequest`] → [`BuildReport`]), or [`push`] an image already
//! built. The command line is one caller of it.
//!
//! Inside, data flows one way: [`spec::load`] → [`plan::plan`] →
//! `exec::run` → [`output::write`] / [`registry::push`]. Each stage is a
//! function of the previous stage's value and the files it names. Modules
//! import only modules below them in this list (the `layering` test reads
//! every `use crate::…` and fails on an upward import or a cycle):
//!
//! | level | modules | job |
//! |---|---|---|
//! | fuzzing | `fuzzing` (hidden) | one entry point per parser for the fuzz targets under `fuzz/` |
//! | facade | `api` (re-exported here) | load → plan → build → write/push, options and reports |
//! | frontends | `dockerfile`, `flyte`, `export` | Dockerfiles, Flyte specs, Dockerfiles out |
//! | execution | `exec` | runs a plan's steps in parallel, assembles images |
//! | planning | `plan` | steps and typed keys per layer kind, `plan` explanations |
//! | definition | `spec` | the definition model and its TOML/JSON loader |
//! | inventory | `sbom` | what an image's layers install, as SPDX and CycloneDX documents |
//! | producers | `python`, `debian`, `sandbox` | wheels → venv layers, .debs → base layers, RUN steps → diff layers |
//! | outputs | `output`, `registry` | layouts and archives; the distribution client |
//! | layers | `layer` | the one deterministic tar → digest → compress writer, file layers, ignore rules |
//! | storage | `store` | content-addressed blobs, step records, verified downloads |
//! | plumbing | `progress`, `net`, `util` | progress sinks, the HTTP stack, fs and clock helpers |
//! | leaves | `oci`, `digest`, `error` | OCI types and platforms, digests and keys, errors |

mod api;
pub(crate) mod debian;
pub mod digest;
pub(crate) mod dockerfile;
pub mod error;
pub(crate) mod exec;
pub(crate) mod export;
pub(crate) mod flyte;
#[doc(hidden)]
pub mod fuzzing;
pub mod layer;
pub(crate) mod net;
pub mod oci;
pub mod output;
pub mod plan;
pub mod progress;
pub(crate) mod python;
pub mod registry;
pub(crate) mod sandbox;
pub mod sbom;
pub mod spec;
pub mod store;
pub(crate) mod util;

pub use api::*;
pub use error::{Error, Result};

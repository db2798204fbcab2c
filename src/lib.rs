//! imgbuild: a daemonless OCI image build engine.
//!
//! Data flows one way: [`spec::load`] → [`plan::plan`] → [`exec::run`] →
//! [`output::write`]. Each stage is a function of the previous stage's
//! value and the files it names.

pub mod debian;
pub mod digest;
pub mod dockerfile;
pub mod error;
pub mod exec;
pub mod export;
pub mod flyte;
pub mod layer;
pub mod net;
pub mod oci;
pub mod output;
pub mod plan;
pub mod progress;
pub mod python;
pub mod registry;
pub mod sandbox;
pub mod spec;
pub mod store;
pub mod util;

pub use error::{Error, Result};

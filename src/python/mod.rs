//! Python layers: a uv lock (or a resolved request) becomes wheels installed
//! into the image's virtualenv, natively, without running Python.
//!
//! [`lock`] reads `uv.lock` and walks the install set for one target
//! ([`markers`] evaluates environment markers, [`tags`] ranks wheel tags);
//! [`wheel`] unpacks one wheel into venv paths (launchers, `.data`, RECORD);
//! [`venv`] writes the virtualenv skeleton for the base's interpreter;
//! [`layer`] is what a layer is made of; [`uv`] runs uv on the host where
//! building or resolving is needed; [`build`] makes the layers (artifacts
//! come into the store, verified, through `store::fetch`).

pub mod build;
pub mod layer;
pub mod lock;
pub mod markers;
pub mod names;
pub mod pep440;
pub mod pep508;
pub mod tags;
pub mod uv;
pub mod venv;
pub mod wheel;

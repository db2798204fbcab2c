//! `uv.lock` (format version 1) model, the install-set walk `uv sync` performs, and wheel
//! selection for the resulting packages.
//!
//! * [`Lock::parse`] reads the TOML, checks the format version, parses every marker, hash and
//!   wheel filename, and resolves each dependency edge to the `[[package]]` entry it names
//!   (PYTHON-INSTALL.md §1.1–§1.4), so later steps cannot meet a dangling edge.
//! * [`install_set`] / [`install_set_with`] walk the lock from the roots for one target
//!   environment, with extras and dependency groups, exactly as §1.6 describes (including the
//!   conflict-marker rules of §1.7), and return the packages to install.
//! * [`pick_wheels`] chooses each package's wheel for a [`Target`] (§3.3) and reports every
//!   package that has none.
//!
//! One job per file: [`model`] is the parsed lock; [`raw`] is the TOML as serde reads it and
//! [`parse`] turns it into the model, with [`location`] working out where each artifact comes
//! from and [`edges`] tying every dependency edge to its package; [`walk`] computes the install
//! set; [`pick`] chooses wheels; [`error`] says what went wrong.

mod edges;
mod error;
mod location;
mod model;
mod parse;
#[cfg(test)]
mod pick;
mod raw;
mod walk;

#[cfg(test)]
mod fixtures;

// The module's surface, kept whole for callers outside it (not every item has one yet).
#[allow(unused_imports)]
pub use error::LockError;
#[cfg(test)]
#[allow(unused_imports)]
pub use error::MissingWheel;
#[allow(unused_imports)]
pub use model::{
    ArtifactLocation, ConflictItem, Dependency, Lock, Package, Requirement, Resolved, SdistRef,
    Source, WheelRef,
};
#[cfg(test)]
pub use pick::pick_wheels;
#[cfg(test)]
pub use walk::install_set;
pub use walk::{SyncOptions, install_set_with};

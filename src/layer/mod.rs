//! Layer producers and the one deterministic writer they share.

pub mod archive;
pub mod compress;
pub mod files;
pub mod ignore;
pub mod path;
pub mod read;
pub mod tar;
#[cfg(test)]
pub(crate) mod testutil;
pub mod write;

//! Layer producers and the one deterministic writer they share.

pub mod compress;
pub mod files;
pub mod ignore;
pub mod tar;

//! Small helpers every layer of the crate may use: file-system calls the
//! standard library lacks (owners and times of symlinks, extended
//! attributes, removal of read-only trees) and the clock. Nothing here knows
//! about images, layers or the store.

pub mod fs;
pub mod time;

//! Small helpers every layer of the crate may use: file-system calls the
//! standard library lacks (owners and times of symlinks, extended
//! attributes, removal of read-only trees, files named only when complete),
//! the clock, secret masking, and a testing hook that stops the process at
//! named points ([`fault`]). Nothing here knows about images, layers or the store.

pub mod fault;
pub mod fs;
pub mod mask;
pub mod time;

//! Small helpers every layer of the crate may use: file-system calls the
//! standard library lacks (owners and times of symlinks, extended
//! attributes, removal of read-only trees), the clock, and secret masking.
//! Nothing here knows about images, layers or the store.

pub mod fs;
pub mod mask;
pub mod time;

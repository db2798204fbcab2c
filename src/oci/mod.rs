//! OCI documents, layouts and archives.

pub mod layout;
pub mod output;
pub mod types;

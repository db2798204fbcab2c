//! Why a wheel could not be installed.

use std::io;

use zip::result::ZipError;

/// Why a wheel could not be installed. Every variant names the wheel file;
/// `member` is the archive member (or `RECORD`, `WHEEL`, … file) concerned.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("{wheel}: invalid wheel file name: {reason}")]
    Filename { wheel: String, reason: String },
    #[error("{wheel}: reading the wheel failed: {source}")]
    Io {
        wheel: String,
        #[source]
        source: io::Error,
    },
    #[error("{wheel}: wheel file has sha256 {actual}, expected {expected}")]
    ArchiveHash {
        wheel: String,
        expected: String,
        actual: String,
    },
    #[error("{wheel}: wheel file is {actual} bytes, expected {expected}")]
    ArchiveSize {
        wheel: String,
        expected: u64,
        actual: u64,
    },
    #[error("{wheel}: {member}: invalid zip archive: {source}")]
    Zip {
        wheel: String,
        member: String,
        #[source]
        source: ZipError,
    },
    #[error("{wheel}: {member}: inconsistent zip archive: {reason}")]
    Inconsistent {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error("{wheel}: {member}: duplicate archive entry")]
    Duplicate { wheel: String, member: String },
    #[error("{wheel}: {member}: unsafe path: {reason}")]
    UnsafePath {
        wheel: String,
        member: String,
        reason: &'static str,
    },
    #[error("{wheel}: {member}: unsupported archive entry: {reason}")]
    Unsupported {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error("{wheel}: {member}: missing from the wheel")]
    Missing { wheel: String, member: String },
    #[error("{wheel}: {member}: {reason}")]
    Invalid {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error("{wheel}: {member}: unsupported Wheel-Version {version} (only 1.x is supported)")]
    WheelVersion {
        wheel: String,
        member: String,
        version: String,
    },
    #[error("{wheel}: {member}: line {line}: {reason}")]
    Record {
        wheel: String,
        member: String,
        line: usize,
        reason: String,
    },
    #[error("{wheel}: {member}: content hash is {actual}, RECORD says {expected}")]
    Hash {
        wheel: String,
        member: String,
        expected: String,
        actual: String,
    },
    #[error("{wheel}: {member}: content is {actual} bytes, RECORD says {expected}")]
    Size {
        wheel: String,
        member: String,
        expected: u64,
        actual: u64,
    },
    #[error("{wheel}: {member}: entry point `{name}`: {reason}")]
    EntryPoint {
        wheel: String,
        member: String,
        name: String,
        reason: String,
    },
    #[error(
        "{wheel}: {member}: installs to {path}, which another file of this wheel also installs to"
    )]
    Conflict {
        wheel: String,
        member: String,
        path: String,
    },
}

impl WheelError {
    /// [`WheelError::Invalid`]: `member` of `wheel` is wrong for `reason`.
    pub(super) fn invalid(wheel: &str, member: &str, reason: impl Into<String>) -> WheelError {
        WheelError::Invalid {
            wheel: wheel.to_string(),
            member: member.to_string(),
            reason: reason.into(),
        }
    }
}

//! Typed errors and the exit codes the CLI maps them to.

use std::path::PathBuf;

/// Exit codes (documented in the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INPUT: i32 = 3;
    pub const UNSUPPORTED: i32 = 4;
    pub const IO: i32 = 5;
    pub const REGISTRY: i32 = 6;
    pub const STEP: i32 = 7;
}

/// Where in a definition something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based; 0 when unknown (e.g. JSON given on stdin without positions).
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `images.app.layers[2].dst`.
    pub field: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{loc}: {message}")]
    Definition { loc: Box<Location>, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// An input problem found through a definition: where it was named.
    #[error("{loc}: {message}")]
    InputAt { loc: Box<Location>, message: String },
    #[error("{what} is not supported yet{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unsupported { what: String, hint: Option<String> },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A registry or network failure; the message names registry,
    /// repository, HTTP status and what to do (never credentials), and
    /// `status` says the same for a program: what kind of failure, the
    /// HTTP status, where.
    #[error("{message}")]
    Registry {
        message: String,
        status: RegistryStatus,
    },
    /// A RUN step's command failed or timed out (the message names the
    /// step, its exit status and its last output lines).
    #[error("{message}")]
    Step {
        message: String,
        /// The command's exit status (128 when a signal ended it); `None`
        /// when it timed out.
        exit: Option<i32>,
    },
    /// A blob in the local store does not match its digest (a flipped
    /// byte, a truncated file). The blob has been removed, so building
    /// again rebuilds or re-fetches it; the build facade does that once by
    /// itself.
    #[error("{path}: {message}")]
    CorruptBlob { path: PathBuf, message: String },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Definition { .. } | Error::Usage(_) => exit::USAGE,
            Error::Input { .. } | Error::InputAt { .. } => exit::INPUT,
            Error::Unsupported { .. } => exit::UNSUPPORTED,
            Error::Io { .. } | Error::CorruptBlob { .. } => exit::IO,
            Error::Registry { .. } => exit::REGISTRY,
            Error::Step { .. } => exit::STEP,
            Error::Other(_) => exit::FAILURE,
        }
    }

    /// The same failure (the same kind and exit code), its message led by
    /// `what` (what was being done when it happened).
    pub fn within(self, what: &str) -> Error {
        let lead = |m: String| format!("{what}: {m}");
        match self {
            Error::Definition { loc, message } => Error::Definition {
                loc,
                message: lead(message),
            },
            Error::Usage(m) => Error::Usage(lead(m)),
            Error::Input { path, message } => Error::Input {
                path,
                message: lead(message),
            },
            Error::InputAt { loc, message } => Error::InputAt {
                loc,
                message: lead(message),
            },
            Error::Unsupported { what: w, hint } => Error::Unsupported {
                what: lead(w),
                hint,
            },
            Error::Io { context, source } => Error::Io {
                context: lead(context),
                source,
            },
            Error::Registry { message, status } => Error::Registry {
                message: lead(message),
                status,
            },
            Error::Step { message, exit } => Error::Step {
                message: lead(message),
                exit,
            },
            Error::CorruptBlob { path, message } => Error::CorruptBlob {
                path,
                message: lead(message),
            },
            Error::Other(m) => Error::Other(lead(m)),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    /// What a registry failure was ([`Error::Registry`]); `None` for other
    /// errors.
    pub fn registry_status(&self) -> Option<&RegistryStatus> {
        match self {
            Error::Registry { status, .. } => Some(status),
            _ => None,
        }
    }

    /// A short machine-readable kind for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Definition { .. } => "definition",
            Error::Usage(_) => "usage",
            Error::Input { .. } | Error::InputAt { .. } => "input",
            Error::Unsupported { .. } => "unsupported",
            Error::Io { .. } => "io",
            Error::CorruptBlob { .. } => "corrupt-blob",
            Error::Registry { .. } => "registry",
            Error::Step { .. } => "step",
            Error::Other(_) => "failure",
        }
    }
}

/// What went wrong with a registry (or a download server), for a program
/// to act on: [`Error::Registry`] carries it beside the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryStatus {
    pub kind: RegistryErrorKind,
    /// The HTTP status of the answer; 0 when there was none (the host was
    /// not reached, or the failure came before a request).
    pub http: u16,
    /// The registry's host (`host[:port]`), or the download's; empty when
    /// unknown.
    pub registry: String,
    /// The repository, when the failure concerns one; else empty.
    pub repository: String,
}

impl RegistryStatus {
    /// A failure of `kind` at `registry`/`repository` with HTTP `http`.
    pub fn new(
        kind: RegistryErrorKind,
        http: u16,
        registry: impl Into<String>,
        repository: impl Into<String>,
    ) -> RegistryStatus {
        RegistryStatus {
            kind,
            http,
            registry: registry.into(),
            repository: repository.into(),
        }
    }
}

/// Kinds of registry failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistryErrorKind {
    /// No credentials, or the registry refused them (HTTP 401).
    Unauthorized,
    /// The credentials lack permission (HTTP 403).
    Denied,
    /// No such repository, tag, manifest, blob or platform (HTTP 404).
    NotFound,
    /// Too many requests (HTTP 429).
    RateLimited,
    /// The registry refused the size of an upload (HTTP 413).
    TooLarge,
    /// The registry failed (HTTP 5xx); trying later may work.
    Unavailable,
    /// No answer: the host could not be reached, TLS failed, the
    /// connection dropped.
    Transport,
    /// An answer that breaks the protocol: a document that does not parse,
    /// bytes that do not match their digest, a missing header or token.
    Protocol,
    /// The registry credentials could not be read (Docker's config, a
    /// credential helper).
    Credentials,
    /// Any other HTTP status.
    Http,
    /// A failure that is not the registry's, reported as one (e.g. by
    /// `imgbuild exists`, which answers only present, absent or failed).
    Other,
}

impl RegistryErrorKind {
    /// The kind of an answer with HTTP `status` and the distribution API's
    /// error `code` (`errors[0].code` of the body, or empty).
    pub fn from_http(status: u16, code: &str) -> RegistryErrorKind {
        match (status, code) {
            (401, _) | (_, "UNAUTHORIZED") => RegistryErrorKind::Unauthorized,
            (403, _) | (_, "DENIED") => RegistryErrorKind::Denied,
            (404, _)
            | (_, "NAME_UNKNOWN" | "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN") => {
                RegistryErrorKind::NotFound
            }
            (429, _) | (_, "TOOMANYREQUESTS") => RegistryErrorKind::RateLimited,
            (413, _) => RegistryErrorKind::TooLarge,
            (500.., _) => RegistryErrorKind::Unavailable,
            (0, _) => RegistryErrorKind::Transport,
            _ => RegistryErrorKind::Http,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a context string to io errors.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_kinds_follow_the_status_then_the_code() {
        use RegistryErrorKind as K;
        for (status, code, kind) in [
            (401, "", K::Unauthorized),
            (401, "NAME_UNKNOWN", K::Unauthorized),
            (403, "", K::Denied),
            (400, "DENIED", K::Denied),
            (404, "", K::NotFound),
            (400, "MANIFEST_UNKNOWN", K::NotFound),
            (400, "NAME_UNKNOWN", K::NotFound),
            (400, "BLOB_UNKNOWN", K::NotFound),
            (429, "", K::RateLimited),
            (400, "TOOMANYREQUESTS", K::RateLimited),
            (413, "", K::TooLarge),
            (500, "", K::Unavailable),
            (503, "", K::Unavailable),
            (0, "", K::Transport),
            (400, "", K::Http),
            (405, "UNSUPPORTED", K::Http),
        ] {
            assert_eq!(
                RegistryErrorKind::from_http(status, code),
                kind,
                "{status} {code}"
            );
        }
    }

    #[test]
    fn a_registry_error_shows_its_message_and_keeps_its_exit_code() {
        let e = Error::Registry {
            message: "r.example/team/app: getting manifest v1: HTTP 404".into(),
            status: RegistryStatus::new(RegistryErrorKind::NotFound, 404, "r.example", "team/app"),
        };
        assert_eq!(
            e.to_string(),
            "r.example/team/app: getting manifest v1: HTTP 404"
        );
        assert_eq!((e.exit_code(), e.kind()), (exit::REGISTRY, "registry"));
        assert_eq!(e.registry_status().unwrap().repository, "team/app");
        assert!(Error::Other("x".into()).registry_status().is_none());
        let step = Error::Step {
            message: "step failed".into(),
            exit: Some(3),
        };
        assert_eq!((step.exit_code(), step.kind()), (exit::STEP, "step"));
    }
}

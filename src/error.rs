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
    /// repository, HTTP status and what to do (never credentials).
    #[error("{message}")]
    Registry { message: String, status: u16 },
    /// A RUN step's command failed or timed out (the message names the
    /// step, its exit status and its last output lines).
    #[error("{message}")]
    Step { message: String },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Definition { .. } | Error::Usage(_) => exit::USAGE,
            Error::Input { .. } | Error::InputAt { .. } => exit::INPUT,
            Error::Unsupported { .. } => exit::UNSUPPORTED,
            Error::Io { .. } => exit::IO,
            Error::Registry { .. } => exit::REGISTRY,
            Error::Step { .. } => exit::STEP,
            Error::Other(_) => exit::FAILURE,
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

    /// A short machine-readable kind for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Definition { .. } => "definition",
            Error::Usage(_) => "usage",
            Error::Input { .. } | Error::InputAt { .. } => "input",
            Error::Unsupported { .. } => "unsupported",
            Error::Io { .. } => "io",
            Error::Registry { .. } => "registry",
            Error::Step { .. } => "step",
            Error::Other(_) => "failure",
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

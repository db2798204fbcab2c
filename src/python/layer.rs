//! What a Python layer is made of, as planning decides it and the layer
//! builder installs it: the interpreter found in the base, the artifacts,
//! the project to build.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The interpreter a venv is made for, as found in the base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PyEnv {
    /// Absolute path of the base's interpreter, e.g. `/usr/bin/python3.11`.
    pub interpreter: String,
    pub version: (u32, u32, u32),
    /// `glibc` (manylinux) or `musl` (musllinux) and its version.
    pub libc: String,
    pub libc_version: (u32, u32),
    /// How it was found, for `plan`.
    pub how: String,
}

/// One artifact to install.
#[derive(Clone, Debug)]
pub struct PyArtifact {
    pub name: String,
    pub version: String,
    /// The wheel (or sdist) file name.
    pub filename: String,
    /// URL or absolute path.
    pub location: String,
    pub sha256: String,
    pub size: Option<u64>,
    /// For wheels from a URL or file (not an index): `direct_url.json`.
    pub direct_url: Option<String>,
    /// A source distribution, built into a pure wheel on the host.
    pub sdist: bool,
}

/// The project itself, built with `uv build` when its layer is made.
#[derive(Clone, Debug)]
pub struct ProjectBuild {
    pub dir: PathBuf,
    pub name: String,
    pub index: Option<String>,
}

/// What a Python step's layer is made of.
#[derive(Clone, Debug)]
pub struct PyLayer {
    pub venv: String,
    pub env: PyEnv,
    /// Write the venv skeleton (pyvenv.cfg, bin/python links).
    pub skeleton: bool,
    pub prompt: Option<String>,
    pub artifacts: Vec<PyArtifact>,
    pub project: Option<ProjectBuild>,
    /// Estimated uncompressed bytes (wheel sizes), for progress.
    pub bytes: u64,
    /// What the step is made from (package → version and hash, project
    /// file → fingerprint), for `plan` explanations.
    pub inputs: BTreeMap<String, String>,
}

impl PyLayer {
    /// The shebang target of launchers: the venv's own interpreter.
    pub fn install_target(&self) -> super::wheel::InstallTarget {
        super::wheel::InstallTarget {
            venv: self.venv.clone(),
            python: (self.env.version.0, self.env.version.1),
            interpreter: format!("{}/bin/python", self.venv),
            installer: "uv".into(),
            requested: true,
        }
    }
}

//! Install one wheel into a virtual environment, producing OCI layer entries
//! instead of files on disk.
//!
//! The rules follow PYTHON-INSTALL.md §4 (uv 0.13.9 behaviour, checked byte
//! for byte against `uv sync`): validation (§4.1), placement (§4.2),
//! `#!python` rewriting (§4.3), entry-point launchers (§4.4), the files uv
//! adds to `.dist-info` and the rewritten `RECORD` (§4.5), and modes (§4.6).
//! No bytecode is produced (§4.7: uv does not compile by default).
//!
//! Checked end to end against uv 0.13.9 (`uv pip install` of real and
//! synthetic wheels, compared file by file): contents, RECORDs, launchers,
//! modes and paths are byte-identical. Two details differ from the report's
//! wording and follow uv: a `\r\n` ending the `#!python` line counts as one
//! line ending, and the reserved script names are exactly those listed at
//! `is_reserved_script_name` (case-insensitive), not every `pypy*`.
//! uv also writes `uv_cache.json` (a timestamp) for wheels installed from a
//! local path; being uv-internal and non-deterministic, it is not produced.
//!
//! Deliberately stricter than uv (uv accepts these, we refuse them):
//! * every `RECORD` row that carries a hash is checked against the member's
//!   content (and its size, when given); unknown hash algorithms are refused;
//! * duplicate archive entries are refused even when identical;
//! * symlink entries, backslashes and NUL bytes in names are refused;
//! * two members (or a member and a launcher) installing to the same path are
//!   refused instead of the later one silently winning;
//! * a top-level `*.data` directory other than `{dist-info prefix}.data` is
//!   refused instead of being copied into site-packages verbatim;
//! * WHEEL must have `Root-Is-Purelib: true|false` (uv treats a missing or
//!   odd value as platlib, which in a venv is the same directory anyway).
//!
//! One job per file: [`filename`] and [`version`] read the wheel's file name,
//! [`archive`] reads and validates the zip, [`dist_info`] checks WHEEL and
//! METADATA, [`record`] reads, checks and writes RECORD, [`entry_points`] and
//! [`scripts`] make what goes into `bin/`, [`install`] places every file and
//! [`files`] is what comes out (and how several outputs merge).

mod archive;
mod dist_info;
mod entry_points;
mod error;
mod filename;
mod files;
mod hash;
mod install;
mod record;
mod scripts;
mod version;

#[cfg(test)]
mod fixtures;

use std::io::{Read, Seek};

// The module's surface, kept whole for callers outside it (not every item has one yet).
#[allow(unused_imports)]
pub use error::WheelError;
#[allow(unused_imports)]
pub use filename::normalize_name;
#[allow(unused_imports)]
pub use files::{
    DIR_MODE, EXEC_MODE, FILE_MODE, LayerConflict, LayerFile, LayerFileKind, SYMLINK_MODE,
    merge_layer_files,
};
#[allow(unused_imports)]
pub use hash::{base64_urlsafe_nopad, hex_lower, record_hash};
#[allow(unused_imports)]
pub use scripts::shebang;

/// Hooks for the fuzz targets (`crate::fuzzing`): the installer's text
/// parsers, each on one file's text.
#[doc(hidden)]
pub mod fuzzing {
    /// A wheel file name.
    pub fn filename(text: &str) {
        let _ = super::filename::parse_wheel_filename(text);
    }

    /// `RECORD`.
    pub fn record(text: &str) {
        let _ = super::record::parse_record_csv(text);
    }

    /// `METADATA`, checked against a wheel file name as the installer does.
    pub fn metadata(text: &str) {
        let wheel = "pkg-1.0-py3-none-any.whl";
        if let Ok(f) = super::filename::parse_wheel_filename(wheel) {
            let _ = super::dist_info::check_metadata(wheel, &f, "pkg-1.0.dist-info/METADATA", text);
        }
    }

    /// `entry_points.txt`.
    pub fn entry_points(text: &str) {
        let _ = super::entry_points::parse_entry_points(text);
    }
}

use archive::{check_archive_digest, read_members};
use filename::parse_wheel_filename;
use install::Installer;

/// Where and how a wheel is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallTarget {
    /// Absolute venv path as seen at run time, e.g. `/opt/venv`.
    pub venv: String,
    /// Target CPython `(major, minor)`, e.g. `(3, 12)`. Site-packages is
    /// `lib/python{major}.{minor}/site-packages` (free-threaded builds, whose
    /// directory is `python3.Yt`, are not supported).
    pub python: (u32, u32),
    /// Shebang target for scripts and launchers, normally the venv's own
    /// `bin/python` (`/opt/venv/bin/python`), not the base interpreter.
    pub interpreter: String,
    /// Content of `.dist-info/INSTALLER` (uv writes `uv`); empty = no file.
    pub installer: String,
    /// Write an empty `.dist-info/REQUESTED` (uv sync does for every package).
    pub requested: bool,
}

/// Optional inputs beyond [`InstallTarget`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallExtras {
    /// For a wheel taken from a direct URL or a local file (not from a
    /// registry): its URL. Writes `direct_url.json` as
    /// `{"url":"<url>","archive_info":{}}` (§4.5). `None` for registry wheels.
    pub direct_url: Option<String>,
    /// Expected SHA-256 of the whole wheel file (lowercase hex, from
    /// `uv.lock`), checked before unpacking.
    pub expected_sha256: Option<String>,
    /// Expected size in bytes of the whole wheel file (from `uv.lock`).
    pub expected_size: Option<u64>,
}

/// Everything [`install_wheel_with`] found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelInstall {
    /// Layer entries, sorted by path.
    pub files: Vec<LayerFile>,
    /// The wheel's `.dist-info` directory name, verbatim (e.g.
    /// `PyYAML-6.0.2.dist-info`).
    pub dist_info: String,
    /// `Name` from METADATA.
    pub name: String,
    /// `Version` from METADATA.
    pub version: String,
    /// Non-fatal findings (uv prints these as warnings).
    pub warnings: Vec<String>,
}

#[cfg(test)]
/// Install a wheel (see [`install_wheel_with`]); registry wheel, no archive
/// hash check.
pub fn install_wheel<R: Read + Seek>(
    zip: R,
    wheel_filename: &str,
    t: &InstallTarget,
) -> Result<Vec<LayerFile>, WheelError> {
    install_wheel_with(zip, wheel_filename, t, &InstallExtras::default()).map(|w| w.files)
}

/// Install a wheel: validate it, place its files in the venv described by
/// `t`, write launchers and the installer metadata, and return the layer
/// entries (sorted by path; every ancestor directory included, down from the
/// first component of the venv path).
///
/// `wheel_filename` is the wheel's file name (`name-ver(-build)?-py-abi-plat.whl`);
/// percent escapes (`%2B`) are decoded and anything up to the last `/` is
/// ignored, so a URL works too.
pub fn install_wheel_with<R: Read + Seek>(
    mut zip: R,
    wheel_filename: &str,
    t: &InstallTarget,
    extras: &InstallExtras,
) -> Result<WheelInstall, WheelError> {
    let wheel = wheel_filename.to_string();
    let fname = parse_wheel_filename(wheel_filename).map_err(|reason| WheelError::Filename {
        wheel: wheel.clone(),
        reason,
    })?;
    if extras.expected_sha256.is_some() || extras.expected_size.is_some() {
        check_archive_digest(&mut zip, &wheel, extras)?;
    }
    let members = read_members(zip, &wheel)?;
    Installer::new(wheel, fname, t, extras).run(members)
}

//! Everything that can go wrong reading a lock or computing what to install from it.

#[cfg(test)]
use std::fmt;

/// Everything that can go wrong reading a lock or computing what to install from it.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// TOML syntax error, or a value of the wrong type or a missing required key.
    #[error("{location}: invalid uv.lock: {message}")]
    Syntax {
        /// `file:line` (or just the file when the line is unknown).
        location: String,
        /// The parser's message.
        message: String,
    },
    /// The top-level `version` key is not 1.
    #[error(
        "{location}: unsupported uv.lock format: key `version` is {found}, but only version 1 is supported"
    )]
    UnsupportedVersion {
        /// `file:line` of the `version` key.
        location: String,
        /// The value found.
        found: String,
    },
    /// The top-level `version` key is absent.
    #[error("{file}: key `version` is missing; this does not look like a uv.lock file")]
    MissingVersion {
        /// The lock file.
        file: String,
    },
    /// A field has a value this reader cannot use.
    #[error("{file}: {context}: field `{field}`: {message}")]
    Invalid {
        /// The lock file.
        file: String,
        /// `package `name` version` or `top level`.
        context: String,
        /// The field, e.g. `dependencies[2].marker` or `wheels[0].hash`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A dependency edge names no `[[package]]` entry.
    #[error(
        "{file}: package `{package}`: field `{field}`: `{dependency}` matches no [[package]] entry"
    )]
    UnknownDependency {
        /// The lock file.
        file: String,
        /// The package holding the edge.
        package: String,
        /// The edge's field path.
        field: String,
        /// The edge's target as written (name, and version/source if given).
        dependency: String,
    },
    /// A dependency edge matches several `[[package]]` entries.
    #[error(
        "{file}: package `{package}`: field `{field}`: `{dependency}` matches {count} [[package]] entries; the edge needs `version` and `source` to pick one"
    )]
    AmbiguousDependency {
        /// The lock file.
        file: String,
        /// The package holding the edge.
        package: String,
        /// The edge's field path.
        field: String,
        /// The edge's target as written.
        dependency: String,
        /// How many entries matched.
        count: usize,
    },
    /// The target Python is outside `requires-python`.
    #[error(
        "{file}: target Python {python} does not satisfy the lock's requires-python `{requires_python}`"
    )]
    RequiresPython {
        /// The lock file.
        file: String,
        /// `requires-python` as written.
        requires_python: String,
        /// The target's `python_full_version`.
        python: String,
    },
    /// `supported-markers` is non-empty and none holds for the target.
    #[error(
        "{file}: the target (Python {python}, {machine}) is not compatible with the lock's supported environments (supported-markers: {markers})"
    )]
    UnsupportedEnvironment {
        /// The lock file.
        file: String,
        /// The target's `python_full_version`.
        python: String,
        /// The target's `platform_machine`.
        machine: String,
        /// The `supported-markers` entries.
        markers: String,
    },
    /// A requested root is not in the lock.
    #[error("{file}: root package `{name}` is not in the lock")]
    MissingRoot {
        /// The lock file.
        file: String,
        /// The requested root.
        name: String,
    },
    /// A requested root names several lock entries.
    #[error("{file}: root package `{name}` has {count} entries in the lock; a root must be unique")]
    AmbiguousRoot {
        /// The lock file.
        file: String,
        /// The requested root.
        name: String,
        /// How many entries it has.
        count: usize,
    },
    /// A requested extra is defined by none of the roots.
    #[error("{file}: extra `{extra}` is not defined by {roots} (available extras: {available})")]
    UnknownExtra {
        /// The lock file.
        file: String,
        /// The requested extra.
        extra: String,
        /// The roots, comma-separated.
        roots: String,
        /// The extras the roots define.
        available: String,
    },
    /// A requested dependency group is defined by none of the roots (nor by the workspace).
    #[error(
        "{file}: dependency group `{group}` is not defined by {roots} (available groups: {available})"
    )]
    UnknownGroup {
        /// The lock file.
        file: String,
        /// The requested group.
        group: String,
        /// The roots, comma-separated.
        roots: String,
        /// The groups that exist.
        available: String,
    },
    /// Requested extras/groups that the lock declares mutually exclusive (`conflicts`).
    #[error("{file}: {first} and {second} are incompatible with the declared conflicts")]
    Conflict {
        /// The lock file.
        file: String,
        /// E.g. "Extras `new`" (capitalized, with the kind).
        first: String,
        /// E.g. "`old`" or "group `legacy`".
        second: String,
    },
    /// Dependency edges activated extras that the lock declares mutually exclusive.
    #[error(
        "{file}: found conflicting extras `{package1}[{extra1}]` and `{package2}[{extra2}]` enabled simultaneously"
    )]
    ConflictingExtras {
        /// The lock file.
        file: String,
        /// First package.
        package1: String,
        /// Its extra.
        extra1: String,
        /// Second package.
        package2: String,
        /// Its extra.
        extra2: String,
    },
    /// The walk reached two versions of one package (the lock's forks should prevent this).
    #[error(
        "{file}: package `{name}` was reached at several versions ({versions}) for this target"
    )]
    MultipleVersions {
        /// The lock file.
        file: String,
        /// The package.
        name: String,
        /// The versions reached.
        versions: String,
    },
    /// Some packages have no wheel for the target.
    #[error("{}", no_wheel_message(.target, .missing))]
    #[cfg(test)]
    NoCompatibleWheels {
        /// The target, e.g. `cp312 manylinux_2_36_x86_64`.
        target: String,
        /// One entry per package without a usable wheel.
        missing: Vec<MissingWheel>,
    },
    /// A chosen wheel's filename names a different project or version than its package.
    #[error(
        "package `{package}` {version}: wheel `{filename}` is for `{wheel_name}` {wheel_version}"
    )]
    #[cfg(test)]
    WheelMismatch {
        /// The package.
        package: String,
        /// Its locked version.
        version: String,
        /// The wheel's filename.
        filename: String,
        /// The name in the filename.
        wheel_name: String,
        /// The version in the filename.
        wheel_version: String,
    },
}

#[cfg(test)]
/// A package that [`pick_wheels`] could not serve with a wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingWheel {
    /// Package name.
    pub name: String,
    /// Locked version (`None` for dynamic source-tree versions).
    pub version: Option<String>,
    /// The package source, e.g. ``registry `https://index.example/simple` ``.
    pub source: String,
    /// Filenames of the wheels the lock lists for it.
    pub wheels: Vec<String>,
    /// Whether the lock lists an sdist (which would need a Python build backend).
    pub has_sdist: bool,
}

#[cfg(test)]
impl fmt::Display for MissingWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        write!(f, " ({}): ", self.source)?;
        if self.wheels.is_empty() {
            f.write_str("the lock lists no wheels")?;
        } else {
            write!(f, "none of its wheels fits: {}", self.wheels.join(", "))?;
        }
        if self.has_sdist {
            f.write_str("; an sdist exists, but building it needs Python")
        } else if self.wheels.is_empty() {
            f.write_str(" and no sdist; it must be built from its source")
        } else {
            f.write_str("; there is no sdist to build from")
        }
    }
}

#[cfg(test)]
fn no_wheel_message(target: &str, missing: &[MissingWheel]) -> String {
    let mut msg = format!(
        "{} package{} ha{} no wheel for {target}:",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        if missing.len() == 1 { "s" } else { "ve" },
    );
    for m in missing {
        msg.push_str("\n  - ");
        msg.push_str(&m.to_string());
    }
    msg
}

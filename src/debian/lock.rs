//! The lock of native Debian bases: for each image and architecture, the
//! signed suites it was resolved from and every package (name, version,
//! architecture, sha256, size, path in the mirror). Builds from a lock
//! fetch .debs by hash and never read an index.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The lock file's name, beside the definition.
pub const LOCK_FILE: &str = "imgbuild.lock";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u32,
    #[serde(default, rename = "base")]
    pub bases: Vec<LockedBase>,
}

/// One image's Debian base for one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockedBase {
    pub image: String,
    pub arch: String,
    /// The typed key of what was asked (distribution, packages, variant,
    /// preferences, sources, keyrings): a lock made for another request
    /// is stale.
    pub request: String,
    #[serde(default, rename = "suite")]
    pub suites: Vec<LockedSuite>,
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
}

/// A suite as verified when the lock was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockedSuite {
    pub uri: String,
    pub suite: String,
    /// sha256 of the InRelease file that was verified.
    pub inrelease: String,
    /// Its `Date`, in unix seconds.
    pub date: i64,
    #[serde(default = "main_component")]
    pub components: Vec<String>,
}

fn main_component() -> Vec<String> {
    vec!["main".into()]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// The package's own Architecture (`all` or the image's).
    pub arch: String,
    pub sha256: String,
    pub size: u64,
    /// Where the .deb is below `uri` (the Packages index's Filename).
    pub path: String,
    pub uri: String,
    /// Neither requested nor Essential nor required (apt's auto flag).
    #[serde(default)]
    pub auto: bool,
    #[serde(default)]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_arch: Option<String>,
    /// The seed group (Essential/required) or the requested packages:
    /// package layers are split along it.
    #[serde(default)]
    pub core: bool,
    /// 0 for the base; n for the packages the image's n-th `apt_packages`
    /// layer added (each such layer is a package layer of its own).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub group: u32,
    /// The maintainer scripts the package carries among `preinst`,
    /// `postinst` and `config`: read from the .deb when locked, so that
    /// planning knows which packages need configuring in the sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LockFile {
    /// Reads a lock; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<LockFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile {
                    version: 1,
                    bases: vec![],
                });
            }
            Err(e) => return Err(Error::input(path, format!("cannot read: {e}"))),
        };
        let lock: LockFile = toml::from_str(&text)
            .map_err(|e| Error::input(path, format!("not a valid lock file: {e}")))?;
        if lock.version != 1 {
            return Err(Error::input(
                path,
                format!(
                    "lock version {} is not 1 (run `imgbuild lock`)",
                    lock.version
                ),
            ));
        }
        Ok(lock)
    }

    /// Writes the lock (sorted, so the same content gives the same bytes)
    /// through a temporary file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut l = self.clone();
        l.version = 1;
        l.bases
            .sort_by(|a, b| (&a.image, &a.arch).cmp(&(&b.image, &b.arch)));
        for b in &mut l.bases {
            b.packages.sort_by(|x, y| x.name.cmp(&y.name));
        }
        let body = toml::to_string(&l).map_err(|e| Error::Other(format!("lock: {e}")))?;
        let text = format!(
            "# Written by `imgbuild lock`: the Debian packages of native Debian bases.\n# Commit it; `imgbuild build --locked` fails when it no longer matches.\n{body}"
        );
        // Named only once complete: a failed or killed write leaves the
        // earlier lock and nothing beside it.
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::util::fs::NewFile::create_in(dir, 0o644)
            .and_then(|f| {
                std::io::Write::write_all(&mut f.file(), text.as_bytes())?;
                f.persist(path)
            })
            .map_err(|e| Error::input(path, format!("cannot write: {e}")))
    }

    pub fn find(&self, image: &str, arch: &str) -> Option<&LockedBase> {
        self.bases
            .iter()
            .find(|b| b.image == image && b.arch == arch)
    }

    /// Puts `base` in place of the entry for its image and architecture.
    pub fn put(&mut self, base: LockedBase) {
        self.bases
            .retain(|b| !(b.image == base.image && b.arch == base.arch));
        self.bases.push(base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_round_trips_byte_for_byte() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(LOCK_FILE);
        let mut l = LockFile::default();
        l.put(LockedBase {
            image: "app".into(),
            arch: "amd64".into(),
            request: "sha256:00".into(),
            suites: vec![LockedSuite {
                uri: "http://mirror.invalid/debian".into(),
                suite: "bookworm".into(),
                inrelease: "ab".into(),
                date: 1_700_000_000,
                components: vec!["main".into()],
            }],
            packages: vec![
                LockedPackage {
                    name: "zlib1g".into(),
                    version: "1:1.2.13.dfsg-1".into(),
                    arch: "amd64".into(),
                    sha256: "cd".into(),
                    size: 10,
                    path: "pool/main/z/zlib/zlib1g.deb".into(),
                    uri: "http://mirror.invalid/debian".into(),
                    auto: true,
                    essential: false,
                    multi_arch: Some("same".into()),
                    core: true,
                    group: 1,
                    scripts: vec![],
                },
                LockedPackage {
                    name: "base-files".into(),
                    version: "12.4+deb12u1".into(),
                    arch: "amd64".into(),
                    sha256: "ef".into(),
                    size: 20,
                    path: "pool/main/b/base-files/base-files.deb".into(),
                    uri: "http://mirror.invalid/debian".into(),
                    auto: false,
                    essential: true,
                    multi_arch: None,
                    core: true,
                    group: 0,
                    scripts: vec!["postinst".into(), "preinst".into()],
                },
            ],
        });
        l.save(&p).unwrap();
        let first = std::fs::read(&p).unwrap();
        let back = LockFile::load(&p).unwrap();
        assert_eq!(back.bases[0].packages[0].name, "base-files", "sorted");
        back.save(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), first);
        assert!(
            LockFile::load(&t.path().join("none"))
                .unwrap()
                .bases
                .is_empty()
        );
        std::fs::write(&p, "version = 2\n").unwrap();
        assert!(
            LockFile::load(&p)
                .unwrap_err()
                .to_string()
                .contains("imgbuild lock")
        );
    }
}

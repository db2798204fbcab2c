//! Debian bases built natively from .deb packages: repository metadata
//! (signed InRelease, Packages indices), dependency resolution into a lock,
//! and assembly of the packages into layers without running them.

pub mod assemble;
pub mod certhash;
pub mod control;
pub mod deb;
pub mod dpkgdb;
pub mod fixups;
pub mod lock;
pub mod repo;
pub mod resolve;
pub mod version;

use crate::digest::KeyHasher;
use crate::error::{Error, Result};
use crate::oci::Platform;
use lock::{LockedBase, LockedPackage, LockedSuite};
use std::path::{Path, PathBuf};

/// The keyring Debian hosts keep for the archive, used when neither the
/// source nor the definition names one.
const HOST_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Debian's name for a platform's architecture.
pub fn debian_arch(p: &Platform) -> Result<String> {
    Ok(match (p.arch.as_str(), p.variant.as_deref()) {
        ("amd64", _) => "amd64",
        ("arm64", _) => "arm64",
        ("arm", Some("v7")) => "armhf",
        ("arm", Some("v5")) => "armel",
        ("386", _) => "i386",
        ("ppc64le", _) => "ppc64el",
        ("s390x", _) => "s390x",
        ("riscv64", _) => "riscv64",
        _ => {
            return Err(Error::Usage(format!(
                "platform {p} has no Debian architecture"
            )));
        }
    }
    .to_string())
}

/// A source as used for one base: a mirror, one suite, its components.
#[derive(Clone, Debug)]
pub struct SuiteSource {
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
    pub keyrings: Vec<PathBuf>,
}

/// A Debian base made from packages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebianBase {
    /// The distribution's codename, e.g. "bookworm"; its suites are it and
    /// `<it>-*` (updates, security) in the configured sources.
    pub dist: String,
    /// Installed on top of the variant's packages.
    pub packages: Vec<String>,
    /// "minbase" (Essential, Priority: required, apt) or "essential".
    pub variant: String,
    /// Alternatives chosen when a dependency offers them.
    pub prefer: Vec<String>,
    /// `URI SUITE [COMPONENT…]` lines; empty: the host's apt sources.
    pub sources: Vec<String>,
    /// OpenPGP keyrings for the sources without a `signed-by`; relative
    /// paths against the definition's folder.
    pub keyrings: Vec<PathBuf>,
}

/// The suites a base is resolved from: the definition's `sources`, else
/// the host's apt sources whose suite is the distribution or `<dist>-*`
/// (backports left out: apt does not pick from them by default).
pub fn suites(spec: &DebianBase, def_dir: &Path, arch: &str) -> Result<Vec<SuiteSource>> {
    let mut default_keyrings: Vec<PathBuf> = spec
        .keyrings
        .iter()
        .map(|k| {
            if k.is_absolute() {
                k.clone()
            } else {
                def_dir.join(k)
            }
        })
        .collect();
    for k in &default_keyrings {
        if !k.is_file() {
            return Err(Error::input(k, "no such keyring file"));
        }
    }
    if default_keyrings.is_empty() && Path::new(HOST_KEYRING).is_file() {
        default_keyrings.push(PathBuf::from(HOST_KEYRING));
    }
    let sources: Vec<repo::Source> = if spec.sources.is_empty() {
        repo::host_sources(Path::new("/"))?
    } else {
        let mut text = String::new();
        for s in &spec.sources {
            let words: Vec<&str> = s.split_whitespace().collect();
            let comps = if words.len() > 2 {
                words[2..].join(" ")
            } else {
                "main".to_string()
            };
            text.push_str(&format!("deb {} {} {comps}\n", words[0], words[1]));
        }
        repo::parse_one_line(&text, Path::new("<definition sources>"))?
    };
    let mut out = Vec::new();
    for s in &sources {
        if !s.architectures.is_empty() && !s.architectures.iter().any(|a| a == arch) {
            continue;
        }
        for suite in &s.suites {
            let ours = suite == &spec.dist
                || (suite.starts_with(&format!("{}-", spec.dist))
                    && !suite.ends_with("-backports"));
            if !ours {
                continue;
            }
            out.push(SuiteSource {
                uri: s.uri.clone(),
                suite: suite.clone(),
                components: s.components.clone(),
                keyrings: repo::keyrings_for(s, &default_keyrings)?,
            });
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "no apt source offers {} for {arch}: add it to the host's apt sources or set `sources` in the base",
            spec.dist
        )));
    }
    Ok(out)
}

/// The typed key of what a base asks for: a lock entry made for another
/// request is stale.
/// `apt`: the packages of the image's natively installed `apt_packages`
/// layers, in order.
pub fn request_key(
    spec: &DebianBase,
    apt: &[Vec<String>],
    arch: &str,
    suites: &[SuiteSource],
) -> Result<String> {
    let mut k = KeyHasher::new("debian-request", 2);
    k.str(&spec.dist).str(arch).str(&spec.variant);
    k.strs(&spec.packages).strs(&spec.prefer);
    k.u64(apt.len() as u64);
    for a in apt {
        k.strs(a);
    }
    k.u64(suites.len() as u64);
    for s in suites {
        k.str(&s.uri).str(&s.suite).strs(&s.components);
        k.u64(s.keyrings.len() as u64);
        for kr in &s.keyrings {
            let bytes =
                std::fs::read(kr).map_err(|e| Error::input(kr, format!("cannot read: {e}")))?;
            k.digest(&crate::digest::Digest::of(&bytes));
        }
    }
    Ok(k.finish().oci())
}

/// Resolves a base for one architecture from the signed indices: the
/// lock entry to build from. `now` (unix seconds) checks Valid-Until.
/// Each `apt` layer adds the closure of its packages to what the base and
/// the layers before it hold, as `apt-get install` on that system would.
/// The .debs are fetched into the store to learn their maintainer scripts.
pub fn resolve_base(
    spec: &DebianBase,
    apt: &[Vec<String>],
    image: &str,
    arch: &str,
    suites: &[SuiteSource],
    now: i64,
    store: &crate::store::Store,
) -> Result<LockedBase> {
    let mut indices: Vec<(String, Vec<control::Paragraph>)> = Vec::new();
    let mut uri_of: Vec<(String, String)> = Vec::new();
    let mut locked_suites = Vec::new();
    let n_indices: usize = suites.iter().map(|s| 1 + s.components.len()).sum();
    let fetching = crate::progress::start(&format!("[{image}] apt indices ({arch})"), 0);
    fetching.items(0, n_indices as u64);
    for s in suites {
        fetching.message(&format!("{} InRelease", s.suite));
        let rel = repo::fetch_release(&s.uri, &s.suite, &s.keyrings, now)?;
        fetching.items(
            indices.len() as u64 + locked_suites.len() as u64 + 1,
            n_indices as u64,
        );
        locked_suites.push(LockedSuite {
            uri: s.uri.clone(),
            suite: s.suite.clone(),
            inrelease: rel.inrelease_sha256.clone(),
            date: rel.date,
            components: s.components.clone(),
        });
        for c in &s.components {
            fetching.message(&format!("{}/{c} Packages", s.suite));
            let text = repo::fetch_packages(&s.uri, &s.suite, c, arch, &rel)?;
            let label = format!("{}/{c}", s.suite);
            let paras = control::parse_named(&text, &label)?;
            uri_of.push((label.clone(), s.uri.clone()));
            indices.push((label, paras));
            fetching.items(
                indices.len() as u64 + locked_suites.len() as u64,
                n_indices as u64,
            );
        }
    }
    fetching.finish(&format!(
        "{} packages listed",
        indices.iter().map(|(_, p)| p.len()).sum::<usize>()
    ));
    let resolving = crate::progress::start(&format!("[{image}] resolve packages ({arch})"), 0);
    let variant: resolve::Variant = spec.variant.parse()?;
    let req = resolve::Request {
        arch: arch.to_string(),
        variant,
        include: spec.packages.clone(),
        prefer: spec.prefer.clone(),
    };
    let names = |include: Vec<String>| -> Result<Vec<String>> {
        Ok(resolve::resolve(
            &indices,
            &resolve::Request {
                include,
                ..req.clone()
            },
        )?
        .into_iter()
        .map(|r| r.name)
        .collect())
    };
    // The variant's own set: the first package layer.
    let core = names(vec![])?;
    // What the base and each apt layer hold: packages enter the group that
    // first needs them; those already there stay (as apt keeps installed
    // packages), asked for again so that the closure keeps them.
    let mut include = spec.packages.clone();
    let mut group_of: Vec<(String, u32)> = names(include.clone())?
        .into_iter()
        .map(|n| (n, 0))
        .collect();
    for (i, layer) in apt.iter().enumerate() {
        include.extend(layer.iter().cloned());
        let mut with_held = include.clone();
        with_held.extend(group_of.iter().map(|(n, _)| n.clone()));
        for n in names(with_held)? {
            if !group_of.iter().any(|(m, _)| *m == n) {
                group_of.push((n, i as u32 + 1));
            }
        }
    }
    let all = resolve::resolve(
        &indices,
        &resolve::Request {
            include: {
                let mut v = include.clone();
                v.extend(group_of.iter().map(|(n, _)| n.clone()));
                v
            },
            ..req.clone()
        },
    )?;
    let auto_of: Vec<(String, bool)> = resolve::resolve(
        &indices,
        &resolve::Request {
            include: include.clone(),
            ..req.clone()
        },
    )?
    .into_iter()
    .map(|r| (r.name, r.auto))
    .collect();
    let mut packages: Vec<LockedPackage> = all
        .into_iter()
        .map(|r| {
            let uri = uri_of
                .iter()
                .find(|(l, _)| l == &r.source)
                .map(|(_, u)| u.clone())
                .unwrap_or_default();
            // Auto marks as apt leaves them: a package nobody asked for.
            let auto = auto_of
                .iter()
                .find(|(n, _)| *n == r.name)
                .map(|(_, a)| *a)
                .unwrap_or(!r.essential && r.priority.as_deref() != Some("required"));
            LockedPackage {
                core: core.contains(&r.name),
                group: group_of
                    .iter()
                    .find(|(n, _)| *n == r.name)
                    .map(|(_, g)| *g)
                    .unwrap_or(0),
                name: r.name,
                version: r.version,
                arch: r.arch,
                sha256: r.sha256,
                size: r.size,
                path: r.filename,
                uri,
                auto,
                essential: r.essential,
                multi_arch: r.multi_arch,
                scripts: vec![],
            }
        })
        .collect();
    resolving.finish(&format!("{} packages", packages.len()));
    let debs = assemble::fetch_debs(store, &packages)?;
    let reading = crate::progress::start(&format!("[{image}] read maintainer scripts"), 0);
    let scripts: Vec<Vec<String>> = {
        use rayon::prelude::*;
        debs.par_iter()
            .map(|path| {
                let files = deb::Deb::open(path)?.control_files()?;
                Ok(["config", "postinst", "preinst"]
                    .into_iter()
                    .filter(|s| files.contains_key(*s))
                    .map(String::from)
                    .collect())
            })
            .collect::<Result<_>>()?
    };
    for (p, s) in packages.iter_mut().zip(scripts) {
        p.scripts = s;
    }
    reading.finish(&format!("{} packages", packages.len()));
    Ok(LockedBase {
        image: image.to_string(),
        arch: arch.to_string(),
        request: request_key(spec, apt, arch, suites)?,
        suites: locked_suites,
        packages,
    })
}

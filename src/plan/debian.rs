//! Native Debian bases: the lock of their packages (kept, or resolved
//! from the signed indices), and their layers: packages grouped into
//! layers, the dpkg state, and `dpkg --configure` in the sandbox for the
//! maintainer scripts the state does not stand in for. The `.deb` files
//! are fetched by execution; the keys come from the lock's hashes.
//!
//! Making the lock (none yet, or one for another request) downloads the
//! signed package indices here: the lock is what every key of the base is
//! computed from. `--locked` forbids it, and a lock that matches is used
//! as it is.

use super::common::ImageCx;
use super::{Action, BasePlan, DebianStep, Env, ImagePlan, PlanOptions, Step, run};
use crate::digest::KeyHasher;
use crate::error::{Error, Location, Result};
use crate::spec::{Base, Definition, ImageDef, LayerKind};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The lock entries of every native Debian base the selected images use:
/// kept when they match the request, else resolved from the signed indices
/// (an error with `--locked`).
pub(super) fn lock_debian_bases(
    def: &Definition,
    order: &[usize],
    o: &PlanOptions,
    store: &Store,
) -> Result<Option<(PathBuf, crate::debian::lock::LockFile, bool)>> {
    use crate::debian::lock::{LOCK_FILE, LockFile};
    let wanted: Vec<&ImageDef> = order
        .iter()
        .map(|&i| &def.images[i])
        .filter(|i| matches!(i.base, Base::DebianNative(_)))
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let path = def.dir.join(LOCK_FILE);
    let mut lock = LockFile::load(&path)?;
    let mut changed = false;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for img in wanted {
        let Base::DebianNative(spec) = &img.base else {
            continue;
        };
        let with_flag;
        let spec: &crate::debian::DebianBase =
            if spec.sources.is_empty() && !o.debian_sources.is_empty() {
                if let Some(bad) = o
                    .debian_sources
                    .iter()
                    .find(|s| s.split_whitespace().count() < 2)
                {
                    return Err(Error::Usage(format!(
                        "--debian-source {bad:?}: expected \"URI SUITE [COMPONENT...]\""
                    )));
                }
                with_flag = crate::debian::DebianBase {
                    sources: o.debian_sources.clone(),
                    ..(**spec).clone()
                };
                &with_flag
            } else {
                spec
            };
        for p in &img.platforms {
            let at = |e: Error| match e {
                Error::Other(m) | Error::Usage(m) => Error::InputAt {
                    loc: Box::new(img.base_loc.clone()),
                    message: m,
                },
                other => other,
            };
            let arch = crate::debian::debian_arch(p).map_err(at)?;
            let suites = crate::debian::suites(spec, &def.dir, &arch).map_err(at)?;
            let apt: Vec<Vec<String>> =
                native_apt_layers(img).into_iter().map(|(_, p)| p).collect();
            let request = crate::debian::request_key(spec, &apt, &arch, &suites).map_err(at)?;
            let fresh = lock
                .find(&img.id, &arch)
                .is_some_and(|b| b.request == request);
            if fresh && !o.debian_relock {
                continue;
            }
            if o.debian_locked {
                return Err(Error::Definition {
                    loc: Box::new(img.base_loc.clone()),
                    message: format!(
                        "{} has no entry for this base on {arch}, or one made for another request (run `imgbuild lock`)",
                        path.display()
                    ),
                });
            }
            let base = crate::debian::resolve_base(spec, &apt, &img.id, &arch, &suites, now, store)
                .map_err(at)?;
            lock.put(base);
            changed = true;
        }
    }
    Ok(Some((path, lock, changed)))
}

/// The `apt_packages` layers of an image on a native Debian base that are
/// resolved and installed natively: those before its first `commands`
/// layer. (index in the image's layers, packages)
pub fn native_apt_layers(img: &ImageDef) -> Vec<(usize, Vec<String>)> {
    if !matches!(img.base, Base::DebianNative(_)) {
        return vec![];
    }
    let mut out = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        match &l.kind {
            LayerKind::Commands { .. } => break,
            LayerKind::AptPackages { packages, .. } => out.push((i, packages.clone())),
            _ => {}
        }
    }
    out
}

/// What runs a native Debian base's uncovered maintainer scripts in the
/// image's own shell: each package's `preinst install` (as dpkg would
/// have run it before unpacking), then `dpkg --configure -a`, with
/// services kept from starting; the logs are dropped so reruns match.
fn dpkg_configure_script(unpacked: &[&crate::debian::lock::LockedPackage], arch: &str) -> String {
    let mut s = String::from(
        "export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8 DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= DPKG_MAINTSCRIPT_NAME=preinst; printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
    );
    for p in unpacked
        .iter()
        .filter(|p| p.scripts.iter().any(|s| s == "preinst"))
    {
        let info = if p.multi_arch.as_deref() == Some("same") {
            format!("{}:{arch}", p.name)
        } else {
            p.name.clone()
        };
        s.push_str(&format!(
            " && DPKG_MAINTSCRIPT_PACKAGE={} DPKG_MAINTSCRIPT_ARCH={} /var/lib/dpkg/info/{info}.preinst install",
            p.name, p.arch
        ));
    }
    s.push_str(" && dpkg --configure -a; rc=$?; rm -f /usr/sbin/policy-rc.d /var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/lib/dpkg/status-old /var/cache/debconf/config.dat-old /var/cache/debconf/templates.dat-old; exit $rc");
    s
}

/// The steps of one package group of a native Debian base, per platform:
/// group 0 (the base) is the variant's packages and the requested ones,
/// group n the n-th native `apt_packages` layer. Each group ends with its
/// state layer and, when some of its packages have maintainer scripts the
/// state does not stand in for, `dpkg --configure` in the sandbox.
pub(super) fn plan_group(
    cx: &ImageCx,
    group: u32,
    loc: &Location,
    steps: &[Step],
) -> Result<Vec<Step>> {
    let (env, img) = (cx.env, cx.img);
    let lock = env.debian_lock.expect("locked before planning");
    let o = env.o;
    let dist = match &img.base {
        Base::DebianNative(d) => d.dist.as_str(),
        _ => "",
    };
    let mut out: Vec<Step> = Vec::new();
    let mut configure_on: Vec<(usize, Vec<String>, String)> = Vec::new();
    for (pi, p) in img.platforms.iter().enumerate() {
        let arch = crate::debian::debian_arch(p)?;
        let locked = lock.find(&img.id, &arch).expect("locked before planning");
        let links: Vec<String> = match (group, arch.as_str()) {
            (0, "amd64") => vec!["bin", "lib", "lib64", "sbin"],
            (0, _) => vec!["bin", "lib", "sbin"],
            _ => vec![],
        }
        .into_iter()
        .map(String::from)
        .collect();
        let mine: Vec<_> = locked
            .packages
            .iter()
            .filter(|p| p.group == group)
            .cloned()
            .collect();
        let upto: Vec<_> = locked
            .packages
            .iter()
            .filter(|p| p.group <= group)
            .cloned()
            .collect();
        let unpacked: Vec<String> = mine
            .iter()
            .filter(|p| crate::debian::fixups::uncovered(p))
            .map(|p| p.name.clone())
            .collect();
        let mut groups = Vec::new();
        if group == 0 {
            let (core, rest): (Vec<_>, Vec<_>) = mine.into_iter().partition(|p| p.core);
            groups.push(("core packages".to_string(), core, links, false));
            groups.push(("packages".to_string(), rest, vec![], false));
        } else {
            groups.push((format!("apt_packages {group}"), mine, vec![], false));
        }
        groups.push(("dpkg state".to_string(), upto, vec![], true));
        for (label, packages, links, state) in groups {
            if packages.is_empty() {
                continue;
            }
            let unpacked = if state { unpacked.clone() } else { vec![] };
            let mut k = KeyHasher::new("debian-layer", 2);
            k.u64(crate::debian::assemble::GENERATOR_VERSION as u64)
                .u64(state as u64)
                .u64(group as u64)
                .strs(&links)
                .strs(&unpacked)
                .str(&arch);
            k.u64(packages.len() as u64);
            for pk in &packages {
                k.str(&pk.name)
                    .str(&pk.version)
                    .str(&pk.arch)
                    .str(&pk.sha256)
                    .u64(pk.group as u64)
                    .u64(pk.auto as u64);
            }
            if state {
                k.u64(locked.suites.len() as u64);
                for su in &locked.suites {
                    k.str(&su.uri).str(&su.suite).strs(&su.components);
                }
            }
            k.str(o.compression.name())
                .u64(o.compression.level() as u64)
                .u64(o.compression.framing())
                .u64(o.source_date_epoch);
            let step_key = k.finish();
            let mut options = BTreeMap::new();
            options.insert("arch".into(), arch.clone());
            options.insert("packages".into(), packages.len().to_string());
            out.push(Step {
                name: format!(
                    "debian {dist} {label} ({}){}",
                    packages.len(),
                    if img.platforms.len() > 1 {
                        format!(" ({p})")
                    } else {
                        String::new()
                    }
                ),
                loc: loc.clone(),
                action: Action::Debian(Box::new(DebianStep {
                    packages,
                    suites: locked.suites.clone(),
                    arch: arch.clone(),
                    state,
                    links,
                    group,
                    unpacked,
                })),
                key: step_key,
                cached: env.cached(&step_key),
                why: vec![],
                notes: vec![],
                options,
                platform: Some(pi),
            });
        }
        if !unpacked.is_empty() {
            let pkgs: Vec<_> = locked
                .packages
                .iter()
                .filter(|p| unpacked.contains(&p.name))
                .collect();
            let why = pkgs
                .iter()
                .map(|p| format!("{} ({})", p.name, p.scripts.join(", ")))
                .collect();
            configure_on.push((pi, why, dpkg_configure_script(&pkgs, &arch)));
        }
    }
    for (pi, why, script) in configure_on {
        // A RUN step over the layers below, as a `commands` layer would be.
        let layer = crate::spec::Layer {
            loc: loc.clone(),
            kind: LayerKind::Commands {
                commands: vec![script],
                group: false,
                run: crate::spec::RunOptions::default(),
            },
        };
        let mut all: Vec<Step> = steps.to_vec();
        all.extend(out.iter().cloned());
        let runs = run::plan(cx, &layer, &all)?;
        {
            let why: Vec<String> = why;
            let mut step = runs[pi].clone();
            step.name = format!(
                "debian {dist} dpkg --configure ({}){}",
                why.len(),
                if img.platforms.len() > 1 {
                    format!(" ({})", img.platforms[pi])
                } else {
                    String::new()
                }
            );
            step.notes.push(format!(
                "configured in the sandbox, their maintainer scripts are not covered natively: {}",
                why.join(", ")
            ));
            step.options.remove("command");
            step.options.insert("configure".into(), why.join(", "));
            out.push(step);
        }
    }
    Ok(out)
}

/// The locked packages (name, version) per platform of the native Debian
/// base an image stands on, directly or through images of the file.
pub(super) fn native_packages(
    env: &Env,
    img: &ImageDef,
    done: &[ImagePlan],
    base: &BasePlan,
) -> Option<Vec<Vec<(String, String)>>> {
    let lock = env.debian_lock?;
    // The image whose lock entry holds the base.
    let mut id = img.id.as_str();
    let mut at = base;
    if !matches!(img.base, Base::DebianNative(_)) {
        loop {
            let BasePlan::Image(bi) = at else {
                return None;
            };
            id = done[*bi].id.as_str();
            let native = env
                .def
                .images
                .iter()
                .any(|i| i.id == id && matches!(i.base, Base::DebianNative(_)));
            if native {
                break;
            }
            at = &done[*bi].base;
        }
    }
    img.platforms
        .iter()
        .map(|p| {
            let arch = crate::debian::debian_arch(p).ok()?;
            let b = lock.find(id, &arch)?;
            Some(
                b.packages
                    .iter()
                    .map(|p| (p.name.clone(), p.version.clone()))
                    .collect(),
            )
        })
        .collect()
}

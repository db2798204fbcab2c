//! Wheel choice for the packages of an install set (§3.3).

use super::super::markers::Version;
use super::super::tags::{TagIndex, Target};
use super::error::{LockError, MissingWheel};
use super::model::{Resolved, WheelRef};

#[cfg(test)]
/// Chooses the wheel for every package (§3.3). Packages without a compatible wheel (including
/// editable, directory and git sources, which have none) are all reported in one
/// [`LockError::NoCompatibleWheels`].
pub fn pick_wheels(set: &[Resolved], t: &Target) -> Result<Vec<(Resolved, WheelRef)>, LockError> {
    let index = TagIndex::new(t);
    let mut picked = Vec::with_capacity(set.len());
    let mut missing = Vec::new();
    for r in set {
        match index.best_index(r.wheels.iter().map(|w| &w.wheel)) {
            Some(i) => {
                let wheel = &r.wheels[i];
                check_wheel_matches(r, wheel)?;
                picked.push((r.clone(), wheel.clone()));
            }
            None => missing.push(MissingWheel {
                name: r.name.clone(),
                version: r.version.clone(),
                source: r.source.to_string(),
                wheels: r.wheels.iter().map(|w| w.filename.clone()).collect(),
                has_sdist: r.sdist.is_some(),
            }),
        }
    }
    if missing.is_empty() {
        Ok(picked)
    } else {
        Err(LockError::NoCompatibleWheels {
            target: t.to_string(),
            missing,
        })
    }
}

#[cfg(test)]
/// The wheel's filename must name the package, at its version or at its version plus a local
/// label that the package version lacks.
fn check_wheel_matches(r: &Resolved, wheel: &WheelRef) -> Result<(), LockError> {
    let version_ok = match &r.version {
        None => true,
        Some(pkg) => match (Version::parse(pkg), Version::parse(&wheel.wheel.version)) {
            (Ok(p), Ok(w)) => p == w || p == w.without_local(),
            _ => *pkg == wheel.wheel.version,
        },
    };
    if wheel.wheel.name == r.name && version_ok {
        Ok(())
    } else {
        Err(LockError::WheelMismatch {
            package: r.name.clone(),
            version: r.version.clone().unwrap_or_default(),
            filename: wheel.filename.clone(),
            wheel_name: wheel.wheel.name.clone(),
            wheel_version: wheel.wheel.version.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::lock::fixtures::*;
    use crate::python::lock::install_set;
    use crate::python::tags::Arch;

    #[test]
    fn pick_wheels_per_target_and_errors() {
        let lock = parse(&demo_lock());
        let e = env("3.12.7", "arm64");
        let set = install_set(&lock, "demo-app", &e, &[], &["dev"], false).unwrap();
        let picked =
            pick_wheels(&set, &Target::manylinux((3, 12), Arch::Aarch64, (2, 36))).unwrap();
        let numpy = picked.iter().find(|(r, _)| r.name == "numpy").unwrap();
        assert_eq!(
            numpy.1.filename,
            "numpy-2.5.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
        );
        assert_eq!(numpy.1.sha256.as_deref(), Some(sha('a').as_str()));
        assert_eq!(numpy.1.size, Some(1234));
        assert_eq!(picked.len(), set.len());

        // On musl the numpy wheels do not fit; the editable root has no wheels at all.
        let set = install_set(&lock, "demo-app", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        let err = pick_wheels(&set, &Target::musllinux((3, 12), Arch::X86_64, (1, 2))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 packages have no wheel for cp312 musllinux_1_2_x86_64:\n  \
             - demo-app 0.1.0 (editable `.`): the lock lists no wheels and no sdist; it must be built from its source\n  \
             - numpy 2.5.3 (registry `https://index.example/simple`): none of its wheels fits: \
             numpy-2.5.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl, \
             numpy-2.5.3-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl, \
             numpy-2.5.3-cp312-cp312-win_amd64.whl; there is no sdist to build from"
        );
        match err {
            LockError::NoCompatibleWheels { missing, .. } => {
                assert_eq!(missing[1].name, "numpy");
                assert_eq!(missing[1].wheels.len(), 3);
                assert!(!missing[1].has_sdist);
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn wheel_must_match_its_package() {
        let text = format!(
            "version = 1\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = {{ virtual = \".\" }}\ndependencies = [{{ name = \"a\" }}, {{ name = \"torch\" }}]\n{}{}",
            pkg("a", "1.0", &["b-1.0-py3-none-any.whl"], ""),
            pkg("torch", "2.5.1", &["torch-2.5.1+cpu-py3-none-any.whl"], ""),
        );
        let lock = parse(&text);
        let set = install_set(&lock, "root", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        let err = pick_wheels(&set, &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `a` 1.0: wheel `b-1.0-py3-none-any.whl` is for `b` 1.0"
        );
        // A wheel with a local label serves the package version without it.
        let torch: Vec<Resolved> = set.into_iter().filter(|r| r.name == "torch").collect();
        assert_eq!(pick_wheels(&torch, &t).unwrap().len(), 1);
    }
}

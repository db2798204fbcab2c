//! Comparing requirements by meaning: specifier lists that admit the same
//! versions, markers that hold in the same environments, direct references
//! to the same place.

use super::req::{Req, normalize};
use crate::python::markers::{Marker, MarkerEnv, MarkerValue, MarkerVar};
use crate::python::pep440::{Specifiers, Version};
use crate::python::uv::index::strip_fragment;
use std::collections::{BTreeMap, BTreeSet};

/// Versions that tell specifier sets apart: each operand and its neighbours.
fn probe_versions(specs: &[&Specifiers]) -> Vec<Version> {
    let mut texts: BTreeSet<String> = ["0", "0.0.1", "1", "999"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for s in specs {
        for sp in &s.0 {
            let Some(v) = sp.version() else { continue };
            let vt = v.to_string();
            let rel: Vec<u64> = v.release().to_vec();
            let epoch = if v.epoch() > 0 {
                format!("{}!", v.epoch())
            } else {
                String::new()
            };
            let join = |r: &[u64]| {
                format!(
                    "{epoch}{}",
                    r.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
                )
            };
            for suffix in ["", "a1", ".dev0", ".post1", "+local"] {
                texts.insert(format!("{vt}{suffix}"));
            }
            for n in 1..=rel.len() {
                let prefix = &rel[..n];
                texts.insert(join(prefix));
                let mut up = prefix.to_vec();
                *up.last_mut().expect("n >= 1") += 1;
                texts.insert(join(&up));
                texts.insert(format!("{}.0", join(&up)));
                if let Some(&last) = prefix.last()
                    && last > 0
                {
                    let mut down = prefix.to_vec();
                    *down.last_mut().expect("n >= 1") -= 1;
                    texts.insert(join(&down));
                    texts.insert(format!("{}.99", join(&down)));
                }
            }
            for extra in [&[0u64][..], &[1], &[0, 0], &[0, 1]] {
                let mut r = rel.clone();
                r.extend_from_slice(extra);
                texts.insert(join(&r));
            }
        }
    }
    texts
        .iter()
        .filter_map(|t| Version::parse(t).ok())
        .collect()
}

/// Whether two specifier lists admit the same versions (tested on the
/// versions around their operands); unparsable lists compare as text.
pub(super) fn specs_equivalent(a: &str, b: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if squash(a) == squash(b) {
        return true;
    }
    let (Ok(sa), Ok(sb)) = (Specifiers::parse(a), Specifiers::parse(b)) else {
        return false;
    };
    if sa.0.iter().chain(&sb.0).any(|s| s.version().is_none()) {
        return false;
    }
    probe_versions(&[&sa, &sb])
        .iter()
        .all(|v| sa.contains(v) == sb.contains(v))
}

fn collect_literals(m: &Marker, out: &mut Vec<(MarkerVar, String)>) {
    match m {
        Marker::And(items) | Marker::Or(items) => {
            items.iter().for_each(|i| collect_literals(i, out));
        }
        Marker::Compare { lhs, rhs, .. } => match (lhs, rhs) {
            (MarkerValue::Var(v), MarkerValue::Str(s))
            | (MarkerValue::Str(s), MarkerValue::Var(v)) => {
                out.push((*v, s.clone()));
            }
            _ => {}
        },
    }
}

/// Whether two markers hold in the same environments where the Python
/// version is within `python` (the lock's `requires-python`, as uv assumes).
/// They are evaluated on every combination of the values their comparisons
/// mention (and values around the versions); absent markers always hold.
pub(super) fn markers_equivalent(
    a: Option<&str>,
    b: Option<&str>,
    python: Option<&Specifiers>,
) -> bool {
    let squash = |s: Option<&str>| s.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
    if squash(a) == squash(b) {
        return true;
    }
    let parse = |m: Option<&str>| m.map(Marker::parse).transpose();
    let (Ok(ma), Ok(mb)) = (parse(a), parse(b)) else {
        return false;
    };
    let mut lits = Vec::new();
    for m in [&ma, &mb].into_iter().flatten() {
        collect_literals(m, &mut lits);
    }
    let axes = Axes::from_literals(&lits, python);
    if axes.combinations() > 50_000 {
        return false;
    }
    axes.all_agree(&ma, &mb)
}

/// The values markers are evaluated on: Python versions, the string
/// variables' values, and the extras and groups (each also absent).
struct Axes {
    /// The interpreter axis (python_version follows it).
    pythons: BTreeSet<String>,
    strings: Vec<(&'static str, Vec<String>)>,
    extras: Vec<Option<String>>,
    groups: Vec<Option<String>>,
}

impl Axes {
    fn from_literals(lits: &[(MarkerVar, String)], python: Option<&Specifiers>) -> Axes {
        let mut pythons: BTreeSet<String> = ["2.7.18", "3.0.0", "3.12.0", "4.0.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut strings: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        let mut extras: BTreeSet<String> = BTreeSet::new();
        let mut groups: BTreeSet<String> = BTreeSet::new();
        for (var, lit) in lits {
            match var {
                MarkerVar::PythonVersion
                | MarkerVar::PythonFullVersion
                | MarkerVar::ImplementationVersion => python_neighbours(lit, &mut pythons),
                MarkerVar::Extra | MarkerVar::Extras => {
                    extras.insert(normalize(lit));
                }
                MarkerVar::DependencyGroups => {
                    groups.insert(normalize(lit));
                }
                other => {
                    strings.entry(other.name()).or_default().insert(lit.clone());
                }
            }
        }
        if let Some(range) = python {
            pythons.retain(|p| Version::parse(p).is_ok_and(|v| range.contains(&v)));
        }
        let or_absent = |set: BTreeSet<String>| -> Vec<Option<String>> {
            std::iter::once(None)
                .chain(set.into_iter().map(Some))
                .collect()
        };
        Axes {
            pythons,
            strings: strings
                .into_iter()
                .map(|(k, mut v)| {
                    v.insert("imgbuild-other".into());
                    (k, v.into_iter().collect())
                })
                .collect(),
            extras: or_absent(extras),
            groups: or_absent(groups),
        }
    }

    fn combinations(&self) -> usize {
        let mut total = self.pythons.len() * self.extras.len() * self.groups.len();
        for (_, vals) in &self.strings {
            total = total.saturating_mul(vals.len());
        }
        total
    }

    /// Whether `a` and `b` agree on every combination.
    fn all_agree(&self, a: &Option<Marker>, b: &Option<Marker>) -> bool {
        let mut idx = vec![0usize; self.strings.len()];
        loop {
            if !self.agree_on_strings(&idx, a, b) {
                return false;
            }
            // Next combination of the string axes.
            let mut k = 0;
            loop {
                if k == idx.len() {
                    return true;
                }
                idx[k] += 1;
                if idx[k] < self.strings[k].1.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
        }
    }

    /// Whether `a` and `b` agree for the string values picked by `idx`, on
    /// every Python, extra and group.
    fn agree_on_strings(&self, idx: &[usize], a: &Option<Marker>, b: &Option<Marker>) -> bool {
        let eval = |m: &Option<Marker>, env: &MarkerEnv, e: &[&str], g: &[&str]| {
            m.as_ref().is_none_or(|m| m.evaluate(env, e, g))
        };
        for py in &self.pythons {
            let mut env = MarkerEnv::for_target(py, "x86_64");
            for ((name, vals), &i) in self.strings.iter().zip(idx) {
                set_string_var(&mut env, name, vals[i].clone());
            }
            for e in &self.extras {
                let e: Vec<&str> = e.iter().map(String::as_str).collect();
                for g in &self.groups {
                    let g: Vec<&str> = g.iter().map(String::as_str).collect();
                    if eval(a, &env, &e, &g) != eval(b, &env, &e, &g) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// A version literal and the Python versions around it.
fn python_neighbours(lit: &str, pythons: &mut BTreeSet<String>) {
    let base = lit.trim().trim_end_matches(".*");
    if Version::parse(lit.trim()).is_ok() {
        pythons.insert(lit.trim().to_string());
    }
    if let Ok(v) = Version::parse(base) {
        let r = v.release();
        let (maj, min, pat) = (r[0], r.get(1).copied().unwrap_or(0), r.get(2).copied());
        for mm in [min.saturating_sub(1), min, min + 1] {
            let p = pat.unwrap_or(0);
            for pp in [0, p.saturating_sub(1), p, p + 1, 99] {
                pythons.insert(format!("{maj}.{mm}.{pp}"));
            }
        }
    }
}

fn set_string_var(env: &mut MarkerEnv, name: &str, v: String) {
    match name {
        "implementation_name" => env.implementation_name = v,
        "os_name" => env.os_name = v,
        "platform_machine" => env.platform_machine = v,
        "platform_python_implementation" => env.platform_python_implementation = v,
        "platform_release" => env.platform_release = v,
        "platform_system" => env.platform_system = v,
        "platform_version" => env.platform_version = v,
        "sys_platform" => env.sys_platform = v,
        _ => {}
    }
}

pub(super) fn direct_equivalent(p: &Req, l: &Req, sourced: bool) -> bool {
    if sourced {
        return true;
    }
    match (&p.direct, &l.direct) {
        (None, None) => true,
        (Some(pu), Some(ld)) => match ld.split_once(':') {
            Some(("url", lu)) if !pu.starts_with("git+") => {
                strip_fragment(pu).trim_end_matches('/') == strip_fragment(lu).trim_end_matches('/')
            }
            _ => true,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifier_equivalence() {
        assert!(specs_equivalent(">=0.27, <1", ">=0.27,<1"));
        assert!(specs_equivalent("<1, >= 0.27", ">=0.27,<1"));
        assert!(specs_equivalent("~=3.10", ">=3.10, <4"));
        assert!(specs_equivalent("~= 2.2.1", ">=2.2.1,==2.2.*"));
        assert!(specs_equivalent(">=1.0", ">=1"));
        assert!(
            specs_equivalent("==3.*", ">=3.dev0,<4.dev0") || !specs_equivalent("==3.*", ">=3,<4")
        );
        assert!(specs_equivalent("", ""));
        assert!(!specs_equivalent(">=0.27", ">=0.28"));
        assert!(!specs_equivalent(">=0.27", ""));
        assert!(!specs_equivalent(">=1,<2", ">=1,<=2"));
        assert!(!specs_equivalent("==1.0", "==1.0.1"));
        assert!(!specs_equivalent("~=3.10", ">=3.10"));
        assert!(!specs_equivalent("!=1.5", ""));
        assert!(specs_equivalent("===foo", "=== foo"));
        assert!(!specs_equivalent("===foo", "===bar"));
    }

    #[test]
    fn marker_equivalence() {
        let eq = |a: &str, b: &str| markers_equivalent(Some(a), Some(b), None);
        assert!(eq(
            "python_version >= '3.8'",
            "python_full_version >= '3.8'"
        ));
        assert!(eq(
            "python_version < \"3.11\"",
            "python_full_version < '3.11'"
        ));
        assert!(eq(
            "python_version == '3.11'",
            "python_full_version == '3.11.*'"
        ));
        assert!(eq(
            "python_version == '3.11' or sys_platform == 'win32'",
            "sys_platform == 'win32' or python_full_version == '3.11.*'"
        ));
        assert!(eq(
            "(sys_platform == 'linux') and extra == 'cli'",
            "sys_platform == 'linux' and extra == 'CLI'"
        ));
        assert!(eq("os_name == 'nt'", "'nt' == os_name"));
        assert!(!eq(
            "python_version < '3.11'",
            "python_full_version < '3.12'"
        ));
        assert!(!eq("sys_platform == 'linux'", "sys_platform == 'darwin'"));
        assert!(!eq("extra == 'a'", "extra == 'b'"));
        assert!(!eq(
            "platform_machine == 'x86_64' and python_version >= '3.9'",
            "platform_machine == 'x86_64'"
        ));
        assert!(markers_equivalent(None, None, None));
        assert!(!markers_equivalent(
            Some("sys_platform == 'linux'"),
            None,
            None
        ));
        assert!(markers_equivalent(
            Some("python_version >= '2' or python_version < '2'"),
            None,
            None
        ));
        // Under requires-python >= 3.10 both always hold (uv simplifies the same way).
        let range = Specifiers::parse(">=3.10").unwrap();
        let (a, b) = ("python_version >= '3.8'", "python_full_version >= '3.9'");
        assert!(!eq(a, b));
        assert!(markers_equivalent(Some(a), Some(b), Some(&range)));
        assert!(markers_equivalent(Some(a), None, Some(&range)));
        assert!(!markers_equivalent(
            Some("python_version < '3.12'"),
            None,
            Some(&range)
        ));
        assert!(eq(
            "'group-a' in dependency_groups",
            "'Group_A' in dependency_groups"
        ));
    }
}

//! `entry_points.txt`: console and GUI scripts (§4.4).

use std::collections::BTreeMap;

use super::error::WheelError;
use super::scripts::{is_activate_name, is_reserved_script_name, valid_bin_name};

/// One console or GUI script from `entry_points.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EntryPoint {
    pub(super) name: String,
    pub(super) module: String,
    /// Dotted attribute path, e.g. `main` or `cli.main`.
    pub(super) function: String,
}

/// Scripts by name.
pub(super) type ScriptMap = BTreeMap<String, EntryPoint>;

fn is_object_ref_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Parse `module:attr [extras]`; extras are checked for shape, then ignored.
fn parse_entry_point_value(value: &str) -> Result<(String, String), String> {
    let value = value.trim();
    let Some((module, rest)) = value.split_once(':') else {
        return Err(format!("`{value}` is not of the form module:attr"));
    };
    let module = module.trim_end();
    if module.is_empty() || !module.chars().all(is_object_ref_char) {
        return Err(format!("invalid module in `{value}`"));
    }
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !is_object_ref_char(c))
        .unwrap_or(rest.len());
    let function = &rest[..end];
    if function.is_empty() {
        return Err(format!("invalid attribute in `{value}`"));
    }
    let tail = rest[end..].trim();
    if !tail.is_empty() {
        let inner = tail
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| format!("unexpected `{tail}` in `{value}`"))?;
        let segments: Vec<&str> = inner.trim().split(',').collect();
        let last = segments.len() - 1;
        let bad = segments
            .iter()
            .enumerate()
            .any(|(i, s)| s.is_empty() && !(i == last && i > 0));
        if bad {
            return Err(format!("malformed extras in `{value}`"));
        }
    }
    Ok((module.to_string(), function.to_string()))
}

/// `entry_points.txt` is an INI file: `[section]` headers, `key = value`
/// lines (only `=` delimits; keys are case-sensitive), full-line `#`/`;`
/// comments. Returns console and GUI scripts (later duplicates win).
pub(super) fn parse_entry_points(text: &str) -> Result<(ScriptMap, ScriptMap), (String, String)> {
    let mut console = BTreeMap::new();
    let mut gui = BTreeMap::new();
    let mut section: Option<&str> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim());
            continue;
        }
        let target = match section {
            Some("console_scripts") => &mut console,
            Some("gui_scripts") => &mut gui,
            _ => continue,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err((line.to_string(), "has no value (only `=` delimits)".into()));
        };
        let name = key.trim().to_string();
        let (module, function) =
            parse_entry_point_value(value).map_err(|reason| (name.clone(), reason))?;
        target.insert(
            name.clone(),
            EntryPoint {
                name,
                module,
                function,
            },
        );
    }
    Ok((console, gui))
}

/// The launchers to write for `entry_points.txt` (`text`, at `member`; `None` when the
/// wheel has none): console and GUI scripts together, a GUI script replacing a console
/// script of the same name. pip's versioned `pip3.N` becomes `pip3.<minor>`. A name
/// that is no file name or shadows the interpreter is refused; activation-script names
/// only warn, as uv does.
pub(super) fn launchers(
    wheel: &str,
    member: &str,
    text: Option<&str>,
    minor: u32,
    warnings: &mut Vec<String>,
) -> Result<ScriptMap, WheelError> {
    let entry_point_err = |name, reason| WheelError::EntryPoint {
        wheel: wheel.to_string(),
        member: member.to_string(),
        name,
        reason,
    };
    let (mut console, gui) = match text {
        Some(text) => {
            parse_entry_points(text).map_err(|(name, reason)| entry_point_err(name, reason))?
        }
        None => (BTreeMap::new(), BTreeMap::new()),
    };
    // pip's versioned launchers: drop `pip3.N`, add `pip3.<target minor>`.
    console.retain(|name, _| {
        !name
            .split_once('.')
            .is_some_and(|(l, r)| l == "pip3" && r.parse::<u8>().is_ok())
    });
    if let Some(pip3) = console.get("pip3").cloned() {
        let name = format!("pip3.{minor}");
        console.insert(name.clone(), EntryPoint { name, ..pip3 });
    }
    let mut launchers = console;
    launchers.extend(gui);
    for ep in launchers.values() {
        let problem = if !valid_bin_name(&ep.name) {
            Some("not a valid file name")
        } else if is_reserved_script_name(&ep.name) {
            Some("name is reserved for the venv's interpreter")
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(entry_point_err(ep.name.clone(), reason.to_string()));
        }
        if is_activate_name(&ep.name) {
            warnings.push(format!(
                "{wheel}: entry point `{}` is reserved for venv activation scripts",
                ep.name
            ));
        }
    }
    Ok(launchers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;

    #[test]
    fn entry_point_values() {
        let ok = |v: &str| parse_entry_point_value(v).unwrap();
        assert_eq!(ok("foo.bar:main"), ("foo.bar".into(), "main".into()));
        assert_eq!(
            ok("foomod:main_bar [bar,baz]"),
            ("foomod".into(), "main_bar".into())
        );
        assert_eq!(
            ok("pylutron_caseta.cli:lap_pair[cli]"),
            ("pylutron_caseta.cli".into(), "lap_pair".into())
        );
        assert_eq!(ok("  m  :  a.b.c  "), ("m".into(), "a.b.c".into()));
        assert_eq!(ok("m:f [a, b,]"), ("m".into(), "f".into()));
        for bad in [
            "",
            ":weh",
            "foomod:main_bar [bar",
            "pylutron_caseta",
            "weh:",
            "a:b:c",
            "m:f []",
            "m:f [,a]",
            "m:f x",
        ] {
            assert!(parse_entry_point_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entry_points_ini_rules() {
        let (console, gui) = parse_entry_points(
            "[console_scripts]\nTool = m:f\ntool = m:g\ntool = m:h\n; c\n[gui_scripts]\n[other]\nno value line\n",
        )
        .unwrap();
        assert_eq!(console.len(), 2);
        assert_eq!(console["Tool"].function, "f");
        assert_eq!(console["tool"].function, "h");
        assert!(gui.is_empty());
        let err =
            parse_entry_points("[console_scripts]\nscript: package.module:main\n").unwrap_err();
        assert_eq!(err.0, "script: package.module:main");
    }

    #[test]
    fn pip3_versioned_launcher() {
        let entries = vec![
            entry("pip/__init__.py", b"", 0o644),
            entry("pip-24.0.dist-info/METADATA", &metadata("pip", "24.0"), 0o644),
            entry("pip-24.0.dist-info/WHEEL", &wheel_file("py3-none-any", true), 0o644),
            entry(
                "pip-24.0.dist-info/entry_points.txt",
                b"[console_scripts]\npip = pip._internal.cli.main:main\npip3 = pip._internal.cli.main:main\npip3.11 = pip._internal.cli.main:main\npip3.x = a:b\n",
                0o644,
            ),
        ];
        let out = install(
            &wheel("pip-24.0.dist-info", &entries),
            "pip-24.0-py3-none-any.whl",
        )
        .unwrap();
        let bins: Vec<String> = paths(&out.files)
            .into_iter()
            .filter_map(|p| p.strip_prefix("opt/venv/bin/").map(str::to_string))
            .collect();
        assert_eq!(bins, ["pip", "pip3", "pip3.12", "pip3.x"]);
        assert_eq!(
            content(&out.files, "opt/venv/bin/pip3.12"),
            content(&out.files, "opt/venv/bin/pip3")
        );
    }

    #[test]
    fn activate_names_warn() {
        let mut entries = demo_entries();
        entries[5] = entry(
            "demo-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\nactivate.demo = demo.cli:main\nactivate-demo = demo.cli:main\n",
            0o644,
        );
        let out = install(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        )
        .unwrap();
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(out.warnings[0].contains("`activate.demo`"));
    }

    #[test]
    fn reserved_and_invalid_entry_point_names() {
        for (ep, name) in [
            ("python = m:f", "python"),
            ("python3.12t = m:f", "python3.12t"),
            ("PyPy3 = m:f", "PyPy3"),
            ("a/b = m:f", "a/b"),
            ("bad = nocolon", "bad"),
        ] {
            let e = err(
                &demo_with(
                    "demo-1.0.dist-info/entry_points.txt",
                    format!("[console_scripts]\n{ep}\n").as_bytes(),
                ),
                "demo-1.0-py3-none-any.whl",
            );
            assert!(
                matches!(&e, WheelError::EntryPoint { member, name: n, .. }
                    if member == "demo-1.0.dist-info/entry_points.txt" && n == name),
                "{ep}: {e:?}"
            );
        }
        // Each case checked against uv 0.13.9.
        for name in [
            "python",
            "pythonw",
            "python3",
            "python3.11",
            "python3.255",
            "python3.9t",
            "pypy",
            "pypy3",
            "graalpy",
            "Python",
            "PyPy3",
            "Python3.12T",
            "GRAALPY",
        ] {
            assert!(is_reserved_script_name(name), "{name}");
        }
        for name in [
            "python3.x",
            "python-tool",
            "python3.256",
            "python3.12d",
            "python4",
            "pypy3.12",
            "pypy3.12t",
            "pypyx",
            "pypyw",
            "graalpy3",
            "graalpy3.12",
            "graalpyw",
        ] {
            assert!(!is_reserved_script_name(name), "{name}");
        }
    }
}

//! What goes into `bin/`: shebangs, `#!python` rewriting (§4.3), entry-point launchers (§4.4)
//! and the names a script may not take.

/// The shebang uv writes for `interpreter` (§4.3): `#!<path>`, or a
/// `/bin/sh` trampoline when the line would exceed 127 bytes or the path
/// contains a space. No trailing newline.
pub fn shebang(interpreter: &str) -> String {
    if 2 + interpreter.len() + 1 > 127 || interpreter.contains(' ') {
        let quoted = interpreter.replace('\'', "'\"'\"'");
        format!("#!/bin/sh\n'''exec' '{quoted}' \"$0\" \"$@\"\n' '''")
    } else {
        format!("#!{interpreter}")
    }
}

/// The launcher uv writes for a console or GUI entry point (§4.4).
pub(super) fn launcher_script(shebang: &str, module: &str, function: &str) -> String {
    let import = function
        .split_once('.')
        .map_or(function, |(first, _)| first);
    let mut s = String::new();
    s.push_str(shebang);
    s.push('\n');
    s.push_str("# -*- coding: utf-8 -*-\n");
    s.push_str("import sys\n");
    s.push_str(&format!("from {module} import {import}\n"));
    s.push_str("if __name__ == \"__main__\":\n");
    s.push_str("    if sys.argv[0].endswith(\"-script.pyw\"):\n");
    s.push_str("        sys.argv[0] = sys.argv[0][:-11]\n");
    s.push_str("    elif sys.argv[0].endswith(\".exe\"):\n");
    s.push_str("        sys.argv[0] = sys.argv[0][:-4]\n");
    s.push_str(&format!("    sys.exit({function}())\n"));
    s
}

/// Replace the first line of a `#!python` script with `shebang` + `\n`.
/// The first line ends at the first `\n`, `\r\n` or lone `\r` (checked
/// against uv 0.13.9: `#!python\r\nx` becomes `#!<python>\nx`, while
/// `#!python\r\r\nx` keeps the second `\r\n`).
pub(super) fn rewrite_python_shebang(data: &[u8], shebang: &str) -> Vec<u8> {
    let rest = match data.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(i) if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') => &data[i + 2..],
        Some(i) => &data[i + 1..],
        None => &[],
    };
    let mut out = Vec::with_capacity(shebang.len() + 1 + rest.len());
    out.extend_from_slice(shebang.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(rest);
    out
}

/// Names a script or launcher must not take in `bin/` (they would shadow
/// the venv's interpreter links). Checked against uv 0.13.9, which compares
/// case-insensitively and refuses `python`, `pythonw`, `python3`,
/// `python3.N`, `python3.Nt` (N < 256), `pypy`, `pypy3` and `graalpy`, but
/// accepts e.g. `pypy3.12`, `pypyx`, `graalpy3` and `python3.256`.
pub(super) fn is_reserved_script_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if matches!(
        name.as_str(),
        "python" | "pythonw" | "python3" | "pypy" | "pypy3" | "graalpy"
    ) {
        return true;
    }
    if let Some(minor) = name.strip_prefix("python3.") {
        let minor = minor.strip_suffix('t').unwrap_or(minor);
        return minor.parse::<u8>().is_ok();
    }
    false
}

/// Names of the venv's activation scripts; uv 0.13.9 warns (for entry
/// points) but installs.
pub(super) fn is_activate_name(name: &str) -> bool {
    name == "activate" || name == "activate_this.py" || name.starts_with("activate.")
}

pub(super) fn valid_bin_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;
    use crate::python::wheel::install_wheel;
    use std::io::Cursor;

    #[test]
    fn python_shebang_rewrite_variants() {
        let sb = "#!/opt/venv/bin/python";
        // Expected bytes as uv 0.13.9 wrote them.
        for (input, output) in [
            (
                &b"#!python\r\nx\r\n"[..],
                &b"#!/opt/venv/bin/python\nx\r\n"[..],
            ),
            (b"#!python\rx\n", b"#!/opt/venv/bin/python\nx\n"),
            (b"#!python\r\r\nx\n", b"#!/opt/venv/bin/python\n\r\nx\n"),
            (b"#!python\n\nx\n", b"#!/opt/venv/bin/python\n\nx\n"),
            (b"#!python -x\r\nx\r\n", b"#!/opt/venv/bin/python\nx\r\n"),
        ] {
            assert_eq!(rewrite_python_shebang(input, sb), output);
        }
        assert_eq!(
            rewrite_python_shebang(b"#!pythonw -u\nx\n", sb),
            b"#!/opt/venv/bin/python\nx\n"
        );
        assert_eq!(
            rewrite_python_shebang(b"#!python", sb),
            b"#!/opt/venv/bin/python\n"
        );
    }

    #[test]
    fn shebang_simple_and_trampoline() {
        assert_eq!(shebang("/opt/venv/bin/python"), "#!/opt/venv/bin/python");
        // The doc's example (venv path containing a space).
        assert_eq!(
            shebang("scratch/with space/bin/python"),
            "#!/bin/sh\n'''exec' 'scratch/with space/bin/python' \"$0\" \"$@\"\n' '''"
        );
        // 2 + 124 + 1 = 127: still a plain shebang; one more byte: trampoline.
        let p124 = format!("/{}", "a".repeat(123));
        assert_eq!(shebang(&p124), format!("#!{p124}"));
        let p125 = format!("/{}", "a".repeat(124));
        assert_eq!(
            shebang(&p125),
            format!("#!/bin/sh\n'''exec' '{p125}' \"$0\" \"$@\"\n' '''")
        );
        // Single quotes are escaped the way uv does.
        assert_eq!(
            shebang("/o'k dir/python"),
            "#!/bin/sh\n'''exec' '/o'\"'\"'k dir/python' \"$0\" \"$@\"\n' '''"
        );
    }

    #[test]
    fn launcher_matches_the_doc_pytest_example() {
        let text = launcher_script(
            &shebang("/opt/venv/bin/python"),
            "_pytest.config",
            "_console_main",
        );
        let expected = "#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from _pytest.config import _console_main
if __name__ == \"__main__\":
    if sys.argv[0].endswith(\"-script.pyw\"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(\".exe\"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit(_console_main())
";
        assert_eq!(text, expected);
        assert_eq!(text.len(), 318);
    }

    #[test]
    fn trampoline_used_for_launchers_and_scripts() {
        let mut t = target();
        t.venv = "/opt/my venv".into();
        t.interpreter = "/opt/my venv/bin/python".into();
        let tramp = "#!/bin/sh\n'''exec' '/opt/my venv/bin/python' \"$0\" \"$@\"\n' '''\n";
        let files =
            install_wheel(Cursor::new(demo_wheel()), "demo-1.0-py3-none-any.whl", &t).unwrap();
        let launcher = content(&files, "opt/my venv/bin/demo");
        assert_eq!(
            launcher,
            DEMO_LAUNCHER.replacen("#!/opt/venv/bin/python\n", tramp, 1)
        );
        let files = install_wheel(
            Cursor::new(wheel("Data_Pkg-2.0.dist-info", &data_entries())),
            "Data_Pkg-2.0-py3-none-any.whl",
            &t,
        )
        .unwrap();
        assert_eq!(
            content(&files, "opt/my venv/bin/tool.py"),
            format!("{tramp}print('tool')\n")
        );
    }

    #[test]
    fn short_and_empty_scripts_are_copied_unchanged() {
        let mut entries = demo_entries();
        entries.push(entry("demo-1.0.data/scripts/short", b"#!pyth", 0o644));
        entries.push(entry("demo-1.0.data/scripts/empty", b"", 0o644));
        let out = install(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        )
        .unwrap();
        assert_eq!(bytes_of(&out.files, "opt/venv/bin/short"), b"#!pyth");
        assert_eq!(bytes_of(&out.files, "opt/venv/bin/empty"), b"");
        assert_eq!(file(&out.files, "opt/venv/bin/short").mode, 0o755);
        assert_eq!(file(&out.files, "opt/venv/bin/empty").mode, 0o755);
        let record = content(&out.files, &format!("{SP}/demo-1.0.dist-info/RECORD"));
        assert!(record.contains(&rec_line("../../../bin/short", b"#!pyth")));
        assert!(record.contains(&rec_line("../../../bin/empty", b"")));
    }

    #[test]
    fn pure_wheel_launchers_are_byte_exact() {
        let out = install(&demo_wheel(), "demo-1.0-py3-none-any.whl").unwrap();
        assert_eq!(content(&out.files, "opt/venv/bin/demo"), DEMO_LAUNCHER);
        assert_eq!(
            content(&out.files, "opt/venv/bin/demo-sub"),
            DEMO_SUB_LAUNCHER
        );
        // GUI scripts have the same content on Linux.
        assert_eq!(
            content(&out.files, "opt/venv/bin/demo-gui"),
            DEMO_LAUNCHER
                .replace("import main", "import gui")
                .replace("exit(main", "exit(gui")
        );
    }
}

//! Wheels built in memory for the tests, and helpers to look into what an install produced.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::*;

pub(super) const SP: &str = "opt/venv/lib/python3.12/site-packages";

pub(super) fn target() -> InstallTarget {
    InstallTarget {
        venv: "/opt/venv".into(),
        python: (3, 12),
        interpreter: "/opt/venv/bin/python".into(),
        installer: "uv".into(),
        requested: true,
    }
}

/// One archive entry: name (trailing `/` = directory), content, unix mode.
pub(super) type Entry = (String, Vec<u8>, u32);

pub(super) fn entry(name: &str, data: &[u8], mode: u32) -> Entry {
    (name.to_string(), data.to_vec(), mode)
}

pub(super) fn zip_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, mode) in entries {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(*mode);
        if name.ends_with('/') {
            w.add_directory(name.as_str(), opts).unwrap();
        } else {
            w.start_file(name.as_str(), opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

pub(super) fn rec_line(path: &str, data: &[u8]) -> String {
    format!("{path},{},{}\n", record_hash(data), data.len())
}

/// A wheel whose RECORD lists every file correctly (RECORD last).
pub(super) fn wheel(dist_info: &str, entries: &[Entry]) -> Vec<u8> {
    let mut record = String::new();
    for (name, data, _) in entries {
        if !name.ends_with('/') {
            record.push_str(&rec_line(name, data));
        }
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    let mut all = entries.to_vec();
    all.push(entry(
        &format!("{dist_info}/RECORD"),
        record.as_bytes(),
        0o644,
    ));
    zip_bytes(&all)
}

pub(super) fn wheel_file(tag: &str, purelib: bool) -> Vec<u8> {
    format!("Wheel-Version: 1.0\nGenerator: test (1.0)\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n")
        .into_bytes()
}

pub(super) fn metadata(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nLong description.\n")
        .into_bytes()
}

pub(super) fn install(bytes: &[u8], filename: &str) -> Result<WheelInstall, WheelError> {
    install_wheel_with(
        Cursor::new(bytes.to_vec()),
        filename,
        &target(),
        &InstallExtras::default(),
    )
}

pub(super) fn file<'a>(files: &'a [LayerFile], path: &str) -> &'a LayerFile {
    files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} not in {:#?}", paths(files)))
}

pub(super) fn content(files: &[LayerFile], path: &str) -> String {
    match &file(files, path).kind {
        LayerFileKind::File(data) => String::from_utf8(data.clone()).unwrap(),
        other => panic!("{path} is {other:?}"),
    }
}

pub(super) fn bytes_of(files: &[LayerFile], path: &str) -> Vec<u8> {
    match &file(files, path).kind {
        LayerFileKind::File(data) => data.clone(),
        other => panic!("{path} is {other:?}"),
    }
}

pub(super) fn paths(files: &[LayerFile]) -> Vec<String> {
    files.iter().map(|f| f.path.clone()).collect()
}

pub(super) const DEMO_INIT: &[u8] = b"__version__ = '1.0'\n";

pub(super) const DEMO_CLI: &[u8] = b"def main():\n    return 0\n";

pub(super) const DEMO_EP: &[u8] = b"[console_scripts]\ndemo = demo.cli:main\ndemo-sub = demo.cli : app.run [extra1, extra2]\n\n# comment\n[gui_scripts]\ndemo-gui=demo.cli:gui\n\n[demo.plugins]\nignored = x:y\n";

pub(super) fn demo_entries() -> Vec<Entry> {
    vec![
        entry("demo/", b"", 0o755),
        entry("demo/__init__.py", DEMO_INIT, 0o644),
        entry("demo/cli.py", DEMO_CLI, 0o644),
        entry(
            "demo-1.0.dist-info/METADATA",
            &metadata("demo", "1.0"),
            0o644,
        ),
        entry(
            "demo-1.0.dist-info/WHEEL",
            &wheel_file("py3-none-any", true),
            0o644,
        ),
        entry("demo-1.0.dist-info/entry_points.txt", DEMO_EP, 0o644),
    ]
}

pub(super) fn demo_wheel() -> Vec<u8> {
    wheel("demo-1.0.dist-info", &demo_entries())
}

pub(super) const DEMO_LAUNCHER: &str = "#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from demo.cli import main
if __name__ == \"__main__\":
    if sys.argv[0].endswith(\"-script.pyw\"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(\".exe\"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit(main())
";

pub(super) const DEMO_SUB_LAUNCHER: &str = "#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from demo.cli import app
if __name__ == \"__main__\":
    if sys.argv[0].endswith(\"-script.pyw\"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(\".exe\"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit(app.run())
";

pub(super) const TOOL_PY: &[u8] = b"#!python\nprint('tool')\n";

pub(super) const TOOL_PY_INSTALLED: &[u8] = b"#!/opt/venv/bin/python\nprint('tool')\n";

pub(super) const ELF: &[u8] = b"\x7fELF\x02\x01\x01\x00binary\x00\xff";

pub(super) const PLAIN_SH: &[u8] = b"#!/bin/sh\necho plain\n";

pub(super) const DUP: &[u8] = b"#!python\nimport datapkg; datapkg.main()\n";

pub(super) const HEADER: &[u8] = b"#define DATAPKG 1\n";

pub(super) const CONFIG: &[u8] = b"{\"a\": 1}\n";

pub(super) const PTH: &[u8] = b"import datapkg\n";

pub(super) const EXTRA: &[u8] = b"X = 1\n";

pub(super) const INIT: &[u8] = b"def main():\n    pass\n";

pub(super) fn data_entries() -> Vec<Entry> {
    let d = "Data_Pkg-2.0.data";
    vec![
        entry("datapkg/__init__.py", INIT, 0o644),
        entry(&format!("{d}/scripts/tool.py"), TOOL_PY, 0o644),
        entry(&format!("{d}/scripts/bin-tool"), ELF, 0o755),
        entry(&format!("{d}/scripts/plain.sh"), PLAIN_SH, 0o644),
        entry(&format!("{d}/scripts/dup"), DUP, 0o755),
        entry(&format!("{d}/headers/datapkg.h"), HEADER, 0o644),
        entry(
            &format!("{d}/data/share/datapkg/config.json"),
            CONFIG,
            0o644,
        ),
        entry(
            &format!("{d}/data/lib/python3.12/site-packages/datapkg.pth"),
            PTH,
            0o644,
        ),
        entry(&format!("{d}/purelib/datapkg_extra.py"), EXTRA, 0o644),
        entry(
            "Data_Pkg-2.0.dist-info/METADATA",
            &metadata("Data_Pkg", "2.0"),
            0o644,
        ),
        entry(
            "Data_Pkg-2.0.dist-info/WHEEL",
            &wheel_file("py3-none-any", true),
            0o644,
        ),
        entry(
            "Data_Pkg-2.0.dist-info/entry_points.txt",
            b"[console_scripts]\ndup = datapkg:main\n",
            0o644,
        ),
    ]
}

pub(super) fn data_install() -> WheelInstall {
    install(
        &wheel("Data_Pkg-2.0.dist-info", &data_entries()),
        "Data_Pkg-2.0-py3-none-any.whl",
    )
    .unwrap()
}

pub(super) fn demo_with(replace: &str, data: &[u8]) -> Vec<u8> {
    let mut entries = demo_entries();
    let slot = entries.iter_mut().find(|e| e.0 == replace).unwrap();
    slot.1 = data.to_vec();
    wheel("demo-1.0.dist-info", &entries)
}

pub(super) fn err(bytes: &[u8], filename: &str) -> WheelError {
    install(bytes, filename).unwrap_err()
}

/// Replace `from` by `to` (same length) in the raw zip; `count` = how
/// many occurrences, starting with the first.
pub(super) fn patch(bytes: &[u8], from: &[u8], to: &[u8], count: usize) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut done = 0;
    let mut i = 0;
    while done < count {
        let at = out[i..]
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present")
            + i;
        out[at..at + from.len()].copy_from_slice(to);
        i = at + from.len();
        done += 1;
    }
    out
}

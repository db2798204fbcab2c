//! Create a virtual environment as OCI layer entries, without running Python
//! (PYTHON-INSTALL.md §5: what `uv venv /opt/venv --python <interpreter>`
//! writes with uv 0.13.9).
//!
//! Produced:
//! * the venv directory (and its ancestors), `bin/`, `lib/`,
//!   `lib/python3.Y/`, `lib/python3.Y/site-packages/` (0755);
//! * `.gitignore` (`*`) and `CACHEDIR.TAG`, 0644, no trailing newline;
//! * `pyvenv.cfg`, 0644;
//! * symlinks `bin/python -> <base interpreter, as given>`,
//!   `bin/python3 -> python`, `bin/python3.Y -> python`, `lib64 -> lib`.
//!
//! Not produced, on purpose:
//! * the activation scripts (`activate`, `activate.csh`, `.fish`, `.nu`,
//!   `.xsh`, `.ps1`, `.bat` files, `pydoc.bat`, `activate_this.py`): the
//!   report does not give their text (only that they are uv's templates with
//!   five placeholders), so they cannot be reproduced byte for byte here.
//!   An image puts `/opt/venv/bin` on `PATH` instead.
//! * `_virtualenv.py` / `_virtualenv.pth`: uv 0.13.9 writes them only for
//!   Python < 3.10, and their text is not given either.
//! * uv's `.lock` file (a concurrency lock, not needed in an image).

use super::wheel::{DIR_MODE, FILE_MODE, LayerFile, LayerFileKind, SYMLINK_MODE};

/// The uv version whose output this module reproduces (written as
/// `uv = …` in `pyvenv.cfg`).
pub const UV_VERSION: &str = "0.13.9";

/// Content of `CACHEDIR.TAG` (43 bytes, no newline).
pub const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55";

/// Content of `.gitignore` (1 byte, no newline).
pub const GITIGNORE: &str = "*";

/// Knobs for [`create_venv`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenvOptions {
    /// Written as `uv = <version>`; defaults to [`UV_VERSION`].
    pub uv_version: String,
    /// `prompt = <name>` line. `uv venv` writes none unless `--prompt` is
    /// given; a project venv made by `uv sync` gets the root project name.
    pub prompt: Option<String>,
    /// `include-system-site-packages = true` (uv's `--system-site-packages`).
    pub include_system_site_packages: bool,
}

impl Default for VenvOptions {
    fn default() -> Self {
        VenvOptions {
            uv_version: UV_VERSION.to_string(),
            prompt: None,
            include_system_site_packages: false,
        }
    }
}

/// The `home` value: the directory holding the base interpreter (the path
/// as given, not resolved).
fn home_of(base_python: &str) -> &str {
    match base_python.rfind('/') {
        Some(0) => "/",
        Some(i) => &base_python[..i],
        None => "",
    }
}

/// `pyvenv.cfg` exactly as uv writes it: `key = value` lines, each ending in
/// `\n`, in uv's order.
pub fn pyvenv_cfg(base_python: &str, version: (u32, u32, u32), t: &VenvOptions) -> String {
    let mut cfg = String::new();
    cfg.push_str(&format!("home = {}\n", home_of(base_python)));
    cfg.push_str("implementation = CPython\n");
    cfg.push_str(&format!("uv = {}\n", t.uv_version));
    cfg.push_str(&format!(
        "version_info = {}.{}.{}\n",
        version.0, version.1, version.2
    ));
    cfg.push_str(&format!(
        "include-system-site-packages = {}\n",
        t.include_system_site_packages
    ));
    if let Some(prompt) = &t.prompt {
        cfg.push_str(&format!("prompt = {prompt}\n"));
    }
    cfg
}

/// The venv skeleton for `venv` (absolute, e.g. `/opt/venv`) on top of the
/// base interpreter `base_python` (e.g. `/usr/local/bin/python3.12`) of
/// CPython `version` (full, e.g. `(3, 12, 1)`). Sorted by path; every
/// ancestor directory of the venv is included.
pub fn create_venv(
    venv: &str,
    base_python: &str,
    version: (u32, u32, u32),
    t: &VenvOptions,
) -> Vec<LayerFile> {
    let root = venv.trim_matches('/');
    let at = |rel: &str| -> String {
        if root.is_empty() {
            rel.to_string()
        } else if rel.is_empty() {
            root.to_string()
        } else {
            format!("{root}/{rel}")
        }
    };
    let dir = |path: String| LayerFile {
        path,
        kind: LayerFileKind::Dir,
        mode: DIR_MODE,
    };
    let file = |path: String, data: &str| LayerFile {
        path,
        kind: LayerFileKind::File(data.as_bytes().to_vec()),
        mode: FILE_MODE,
    };
    let link = |path: String, target: &str| LayerFile {
        path,
        kind: LayerFileKind::Symlink(target.to_string()),
        mode: SYMLINK_MODE,
    };

    let mut out = Vec::new();
    // Ancestors of the venv, then the venv itself.
    let mut end = 0;
    while let Some(i) = root[end..].find('/') {
        end += i;
        out.push(dir(root[..end].to_string()));
        end += 1;
    }
    if !root.is_empty() {
        out.push(dir(root.to_string()));
    }

    let (major, minor, _) = version;
    let lib_python = format!("lib/python{major}.{minor}");
    out.push(file(at(".gitignore"), GITIGNORE));
    out.push(file(at("CACHEDIR.TAG"), CACHEDIR_TAG));
    out.push(file(at("pyvenv.cfg"), &pyvenv_cfg(base_python, version, t)));
    out.push(dir(at("bin")));
    out.push(link(at("bin/python"), base_python));
    out.push(link(at(&format!("bin/python{major}")), "python"));
    out.push(link(at(&format!("bin/python{major}.{minor}")), "python"));
    out.push(dir(at("lib")));
    out.push(dir(at(&lib_python)));
    out.push(dir(at(&format!("{lib_python}/site-packages"))));
    // 64-bit POSIX, not macOS: uv links lib64 -> lib.
    out.push(link(at("lib64"), "lib"));

    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(files: &[LayerFile]) -> Vec<(String, String, u32)> {
        files
            .iter()
            .map(|f| {
                let kind = match &f.kind {
                    LayerFileKind::Dir => "dir".to_string(),
                    LayerFileKind::File(data) => {
                        format!("file {:?}", String::from_utf8(data.clone()).unwrap())
                    }
                    LayerFileKind::Symlink(target) => format!("-> {target}"),
                };
                (f.path.clone(), kind, f.mode)
            })
            .collect()
    }

    #[test]
    fn pyvenv_cfg_matches_the_doc() {
        // §5: `uv venv /opt/venv --python /usr/bin/python3.11` with uv 0.13.9.
        let expected = "home = /usr/bin\n\
                        implementation = CPython\n\
                        uv = 0.13.9\n\
                        version_info = 3.11.2\n\
                        include-system-site-packages = false\n";
        assert_eq!(
            pyvenv_cfg("/usr/bin/python3.11", (3, 11, 2), &VenvOptions::default()),
            expected
        );
    }

    #[test]
    fn pyvenv_cfg_prompt_and_options() {
        let t = VenvOptions {
            uv_version: "0.12.5".into(),
            prompt: Some("proj5".into()),
            include_system_site_packages: true,
        };
        assert_eq!(
            pyvenv_cfg("/usr/local/bin/python3.12", (3, 12, 1), &t),
            "home = /usr/local/bin\n\
             implementation = CPython\n\
             uv = 0.12.5\n\
             version_info = 3.12.1\n\
             include-system-site-packages = true\n\
             prompt = proj5\n"
        );
    }

    #[test]
    fn home_is_the_unresolved_parent() {
        assert_eq!(home_of("/usr/bin/python3"), "/usr/bin");
        assert_eq!(home_of("/usr/local/bin/python3.12"), "/usr/local/bin");
        assert_eq!(home_of("/python3"), "/");
        assert_eq!(home_of("python3"), "");
    }

    #[test]
    fn venv_layout_matches_the_doc() {
        let files = create_venv(
            "/opt/venv",
            "/usr/bin/python3.11",
            (3, 11, 2),
            &VenvOptions::default(),
        );
        let cfg = pyvenv_cfg("/usr/bin/python3.11", (3, 11, 2), &VenvOptions::default());
        let expected: Vec<(String, String, u32)> = vec![
            ("opt", "dir".to_string(), 0o755),
            ("opt/venv", "dir".to_string(), 0o755),
            ("opt/venv/.gitignore", "file \"*\"".to_string(), 0o644),
            (
                "opt/venv/CACHEDIR.TAG",
                "file \"Signature: 8a477f597d28d172789f06886806bc55\"".to_string(),
                0o644,
            ),
            ("opt/venv/bin", "dir".to_string(), 0o755),
            (
                "opt/venv/bin/python",
                "-> /usr/bin/python3.11".to_string(),
                0o777,
            ),
            ("opt/venv/bin/python3", "-> python".to_string(), 0o777),
            ("opt/venv/bin/python3.11", "-> python".to_string(), 0o777),
            ("opt/venv/lib", "dir".to_string(), 0o755),
            ("opt/venv/lib/python3.11", "dir".to_string(), 0o755),
            (
                "opt/venv/lib/python3.11/site-packages",
                "dir".to_string(),
                0o755,
            ),
            ("opt/venv/lib64", "-> lib".to_string(), 0o777),
            ("opt/venv/pyvenv.cfg", format!("file {cfg:?}"), 0o644),
        ]
        .into_iter()
        .map(|(p, k, m)| (p.to_string(), k, m))
        .collect();
        assert_eq!(summary(&files), expected);
        assert_eq!(CACHEDIR_TAG.len(), 43);
    }

    #[test]
    fn venv_for_official_image_python() {
        let files = create_venv(
            "/opt/venv/",
            "/usr/local/bin/python3.12",
            (3, 12, 7),
            &VenvOptions::default(),
        );
        let s = summary(&files);
        assert!(s.contains(&(
            "opt/venv/bin/python".into(),
            "-> /usr/local/bin/python3.12".into(),
            0o777
        )));
        assert!(s.contains(&("opt/venv/bin/python3.12".into(), "-> python".into(), 0o777)));
        assert!(s.contains(&(
            "opt/venv/lib/python3.12/site-packages".into(),
            "dir".into(),
            0o755
        )));
        let cfg = files
            .iter()
            .find(|f| f.path == "opt/venv/pyvenv.cfg")
            .unwrap();
        assert_eq!(
            cfg.kind,
            LayerFileKind::File(
                b"home = /usr/local/bin\nimplementation = CPython\nuv = 0.13.9\nversion_info = 3.12.7\ninclude-system-site-packages = false\n".to_vec()
            )
        );
        // No activation scripts and no _virtualenv files (see module docs).
        assert!(!files.iter().any(|f| f.path.contains("activate")));
        assert!(!files.iter().any(|f| f.path.contains("_virtualenv")));
    }

    #[test]
    fn deterministic_and_sorted() {
        let a = create_venv(
            "/opt/venv",
            "/usr/bin/python3.12",
            (3, 12, 1),
            &VenvOptions::default(),
        );
        let b = create_venv(
            "/opt/venv",
            "/usr/bin/python3.12",
            (3, 12, 1),
            &VenvOptions::default(),
        );
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(a, sorted);
    }

    #[test]
    fn merges_with_a_wheel_install() {
        use super::super::wheel::{InstallTarget, install_wheel, merge_layer_files};
        use std::io::{Cursor, Write};
        use zip::write::SimpleFileOptions;

        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let files: [(&str, &[u8]); 3] = [
            ("m.py", b"X = 1\n"),
            ("m-1.0.dist-info/METADATA", b"Name: m\nVersion: 1.0\n"),
            (
                "m-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            ),
        ];
        for (name, data) in files {
            w.start_file(name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.start_file("m-1.0.dist-info/RECORD", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"m-1.0.dist-info/RECORD,,\n").unwrap();
        let zip = w.finish().unwrap().into_inner();
        let t = InstallTarget {
            venv: "/opt/venv".into(),
            python: (3, 12),
            interpreter: "/opt/venv/bin/python".into(),
            installer: "uv".into(),
            requested: true,
        };
        let wheel = install_wheel(Cursor::new(zip), "m-1.0-py3-none-any.whl", &t).unwrap();
        let venv = create_venv(
            "/opt/venv",
            "/usr/local/bin/python3.12",
            (3, 12, 7),
            &VenvOptions::default(),
        );
        let merged = merge_layer_files([venv.clone(), wheel.clone()]).unwrap();
        assert_eq!(merged.len(), venv.len() + wheel.len() - 5); // opt, opt/venv, lib, lib/python3.12, site-packages
        assert!(
            merged
                .iter()
                .any(|f| f.path == "opt/venv/lib/python3.12/site-packages/m.py")
        );
    }
}

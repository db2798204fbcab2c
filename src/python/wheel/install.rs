//! The installer proper: placing members in the venv, adding launchers and the files uv adds,
//! and turning it all into layer entries.

use std::collections::{BTreeMap, BTreeSet};

use super::archive::Member;
use super::dist_info::{check_metadata, check_wheel_file, find_dist_info};
use super::entry_points::{ScriptMap, launchers};
use super::error::WheelError;
use super::filename::{WheelFilename, normalize_name};
use super::files::{DIR_MODE, EXEC_MODE, FILE_MODE, LayerFile, LayerFileKind};
use super::hash::record_hash;
use super::record::{RecordRow, path_from_site_packages, read_record, verify, write_record};
use super::scripts::{
    is_activate_name, is_reserved_script_name, launcher_script, rewrite_python_shebang, shebang,
};
use super::{InstallExtras, InstallTarget, WheelInstall};

/// Join two `/`-separated relative paths, either of which may be empty.
fn join_rel(base: &str, sub: &str) -> String {
    match (base.is_empty(), sub.is_empty()) {
        (true, _) => sub.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{sub}"),
    }
}

/// JSON string literal, from serde_json as uv writes direct_url.json (`"`,
/// `\` and control characters escaped, everything else verbatim).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A file to emit, addressed relative to the venv root.
struct Placed {
    /// Relative to the venv root, e.g. `bin/tool`.
    dest: String,
    data: Vec<u8>,
    mode: u32,
    /// The archive member (for error messages).
    member: String,
}

/// What the `.dist-info` directory says, read before any member is placed.
struct DistInfo {
    /// The directory name, verbatim (`PyYAML-6.0.2.dist-info`).
    dir: String,
    /// `{name}-{version}.data`, the wheel's data directory.
    data_dir: String,
    /// `Name` and `Version` from METADATA.
    name: String,
    version: String,
    /// `{dir}/RECORD`.
    record_path: String,
    /// The wheel's RECORD rows by normalised path, with the line of each.
    record: BTreeMap<String, (usize, RecordRow)>,
    /// Whether the wheel's RECORD member is executable (ours keeps that mode).
    record_exec: bool,
    /// `{dir}/entry_points.txt`.
    entry_points_path: String,
}

/// Where a member goes.
struct Destination {
    /// Relative to the venv root; `None` = nowhere (the `X.data/` directory itself).
    dest: Option<String>,
    /// It comes from `X.data/scripts/`.
    script: bool,
}

/// Files, directories and RECORD rows gathered so far.
#[derive(Default)]
struct Output {
    placed: Vec<Placed>,
    dirs: BTreeSet<String>,
    rows: Vec<RecordRow>,
}

impl Output {
    /// A file generated here (launcher, INSTALLER, …): placed with a fresh RECORD row.
    fn add_generated(
        &mut self,
        dest: String,
        row_path: String,
        data: Vec<u8>,
        mode: u32,
        member: String,
    ) {
        self.rows.push(RecordRow {
            path: row_path,
            hash: record_hash(&data),
            size: Some(data.len() as u64),
        });
        self.placed.push(Placed {
            dest,
            data,
            mode,
            member,
        });
    }
}

pub(super) struct Installer<'a> {
    wheel: String,
    fname: WheelFilename,
    t: &'a InstallTarget,
    extras: &'a InstallExtras,
    /// `lib/python3.Y/site-packages`, relative to the venv root.
    site_packages: String,
    warnings: Vec<String>,
}

impl<'a> Installer<'a> {
    pub(super) fn new(
        wheel: String,
        fname: WheelFilename,
        t: &'a InstallTarget,
        extras: &'a InstallExtras,
    ) -> Self {
        let site_packages = format!("lib/python{}.{}/site-packages", t.python.0, t.python.1);
        Installer {
            wheel,
            fname,
            t,
            extras,
            site_packages,
            warnings: Vec::new(),
        }
    }

    fn invalid(&self, member: &str, reason: impl Into<String>) -> WheelError {
        WheelError::invalid(&self.wheel, member, reason)
    }

    fn text<'m>(&self, members: &'m [Member], path: &str) -> Result<&'m str, WheelError> {
        let member = members
            .iter()
            .find(|m| !m.dir && m.path == path)
            .ok_or_else(|| WheelError::Missing {
                wheel: self.wheel.clone(),
                member: path.to_string(),
            })?;
        std::str::from_utf8(&member.data).map_err(|_| self.invalid(path, "not valid UTF-8"))
    }

    /// Path of `dest` (relative to the venv) as RECORD writes it.
    fn record_path(&self, dest: &str) -> String {
        path_from_site_packages(&self.site_packages, dest)
    }

    pub(super) fn run(mut self, members: Vec<Member>) -> Result<WheelInstall, WheelError> {
        let dist = self.read_dist_info(&members)?;
        let launchers = self.launchers(&members, &dist)?;
        let shebang = shebang(&self.t.interpreter);
        let mut out = Output::default();
        self.place_members(members, &dist, &launchers, &shebang, &mut out)?;
        self.add_launchers(&launchers, &dist, &shebang, &mut out);
        self.add_installer_files(&dist, &mut out);
        self.add_record(&dist, &mut out);
        let files = self.to_layer(out.placed, out.dirs)?;
        Ok(WheelInstall {
            files,
            dist_info: dist.dir,
            name: dist.name,
            version: dist.version,
            warnings: self.warnings,
        })
    }

    /// Find `.dist-info`, check WHEEL and METADATA against the file name, read RECORD.
    fn read_dist_info(&mut self, members: &[Member]) -> Result<DistInfo, WheelError> {
        let dir = find_dist_info(&self.wheel, &self.fname, members)?;
        let prefix = dir.strip_suffix(".dist-info").unwrap_or(&dir).to_string();

        let wheel_path = format!("{dir}/WHEEL");
        let wheel_text = self.text(members, &wheel_path)?;
        check_wheel_file(&self.wheel, &wheel_path, wheel_text, &mut self.warnings)?;

        let metadata_path = format!("{dir}/METADATA");
        let metadata_text = self.text(members, &metadata_path)?;
        let (name, version) =
            check_metadata(&self.wheel, &self.fname, &metadata_path, metadata_text)?;

        let record_path = format!("{dir}/RECORD");
        let record_text = self.text(members, &record_path)?;
        let record = read_record(&self.wheel, &record_path, record_text)?;
        let record_exec = members.iter().any(|m| m.path == record_path && m.exec);
        Ok(DistInfo {
            data_dir: format!("{prefix}.data"),
            entry_points_path: format!("{dir}/entry_points.txt"),
            dir,
            name,
            version,
            record_path,
            record,
            record_exec,
        })
    }

    /// The launchers `entry_points.txt` asks for (§4.4), if it is there.
    fn launchers(&mut self, members: &[Member], dist: &DistInfo) -> Result<ScriptMap, WheelError> {
        let path = &dist.entry_points_path;
        let text = match members.iter().find(|m| !m.dir && m.path == *path) {
            Some(_) => Some(self.text(members, path)?),
            None => None,
        };
        launchers(&self.wheel, path, text, self.t.python.1, &mut self.warnings)
    }

    /// Every archive member to its place, with its (healed, verified) RECORD row.
    fn place_members(
        &mut self,
        members: Vec<Member>,
        dist: &DistInfo,
        launchers: &ScriptMap,
        shebang: &str,
        out: &mut Output,
    ) -> Result<(), WheelError> {
        let dir = &dist.dir;
        let generated: BTreeSet<String> = [
            (!self.t.installer.is_empty()).then(|| format!("{dir}/INSTALLER")),
            self.t.requested.then(|| format!("{dir}/REQUESTED")),
            self.extras
                .direct_url
                .is_some()
                .then(|| format!("{dir}/direct_url.json")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let signatures = [format!("{dir}/RECORD.jws"), format!("{dir}/RECORD.p7s")];
        let normalized = normalize_name(&dist.name);

        for m in members {
            let Destination { dest, script } = self.destination(&m, &dist.data_dir, &normalized)?;
            if m.dir {
                if let Some(dest) = dest
                    && !dest.is_empty()
                {
                    out.dirs.insert(dest);
                }
                continue;
            }
            let dest = dest.expect("files always have a destination");
            if m.path == dist.record_path {
                continue;
            }
            if generated.contains(&m.path) {
                // Ours replaces the wheel's copy (and its RECORD row).
                continue;
            }
            // The RECORD row (healed, §4.1) and its verification.
            let mut row = match dist.record.get(&m.path) {
                Some((line, row)) => {
                    verify(&self.wheel, &dist.record_path, *line, row, &m)?;
                    Some(row.clone())
                }
                None if signatures.contains(&m.path) => None,
                None => Some(RecordRow {
                    path: m.path.clone(),
                    hash: String::new(),
                    size: Some(m.data.len() as u64),
                }),
            };

            let member = m.path;
            let mut data = m.data;
            let mut mode = if m.exec { EXEC_MODE } else { FILE_MODE };
            if script {
                if self.shadowed_by_launcher(&dest, &member, launchers)? {
                    // The launcher wins; the row keeps its archive path.
                    out.rows.extend(row);
                    continue;
                }
                mode = EXEC_MODE;
                if data.starts_with(b"#!python") {
                    data = rewrite_python_shebang(&data, shebang);
                    if let Some(row) = row.as_mut() {
                        row.hash = record_hash(&data);
                        row.size = Some(data.len() as u64);
                    }
                }
            }
            if let Some(mut row) = row {
                row.path = self.record_path(&dest);
                out.rows.push(row);
            }
            out.placed.push(Placed {
                dest,
                data,
                mode,
                member,
            });
        }
        Ok(())
    }

    /// Where member `m` goes (§4.2): `X.data/<key>/…` by key, anything else into
    /// site-packages. Other `*.data` directories and malformed data entries are refused.
    fn destination(
        &self,
        m: &Member,
        data_dir: &str,
        normalized: &str,
    ) -> Result<Destination, WheelError> {
        let (first, rest) = m.path.split_once('/').unwrap_or((&m.path, ""));
        let is_tree = m.dir || !rest.is_empty();
        let sp = &self.site_packages;
        if first != data_dir || !is_tree {
            if first != data_dir && first.ends_with(".data") && is_tree {
                return Err(self.invalid(
                    &m.path,
                    format!("unexpected data directory {first} (expected {data_dir})"),
                ));
            }
            return Ok(Destination {
                dest: Some(format!("{sp}/{}", m.path)),
                script: false,
            });
        }
        let (key, sub) = rest.split_once('/').unwrap_or((rest, ""));
        let base = match key {
            // `X.data/` itself does not exist after installation.
            "" => None,
            "purelib" | "platlib" => Some(sp.clone()),
            "headers" => Some(format!(
                "include/site/python{}.{}/{normalized}",
                self.t.python.0, self.t.python.1
            )),
            "data" => Some(String::new()),
            "scripts" => Some("bin".to_string()),
            other => {
                return Err(self.invalid(&m.path, format!("unknown wheel data type {other:?}")));
            }
        };
        if base.is_some() && sub.is_empty() && !m.dir {
            return Err(self.invalid(&m.path, "must be a directory"));
        }
        let mut script = false;
        if key == "scripts" && !sub.is_empty() {
            if m.dir || sub.contains('/') {
                return Err(self.invalid(
                    &m.path,
                    "directories are not allowed in the scripts directory",
                ));
            }
            script = true;
        }
        Ok(Destination {
            dest: base.map(|base| join_rel(&base, sub)),
            script,
        })
    }

    /// A script from `X.data/scripts/` that a launcher of the same name replaces (`true`);
    /// otherwise its name is checked.
    fn shadowed_by_launcher(
        &mut self,
        dest: &str,
        member: &str,
        launchers: &ScriptMap,
    ) -> Result<bool, WheelError> {
        let file_name = dest.strip_prefix("bin/").unwrap_or(dest);
        let match_name = file_name
            .strip_suffix(".exe")
            .or_else(|| file_name.strip_suffix("-script.py"))
            .or_else(|| file_name.strip_suffix(".pya"))
            .unwrap_or(file_name);
        if launchers.contains_key(match_name) {
            return Ok(true);
        }
        if is_reserved_script_name(file_name) {
            return Err(self.invalid(member, "script name is reserved for the venv's interpreter"));
        }
        if is_activate_name(file_name) {
            self.warnings.push(format!(
                "{}: script `{file_name}` is reserved for venv activation scripts",
                self.wheel
            ));
        }
        Ok(false)
    }

    /// One launcher in `bin/` per entry point.
    fn add_launchers(
        &self,
        launchers: &ScriptMap,
        dist: &DistInfo,
        shebang: &str,
        out: &mut Output,
    ) {
        for ep in launchers.values() {
            let dest = format!("bin/{}", ep.name);
            let data = launcher_script(shebang, &ep.module, &ep.function).into_bytes();
            let row_path = self.record_path(&dest);
            out.add_generated(
                dest,
                row_path,
                data,
                EXEC_MODE,
                dist.entry_points_path.clone(),
            );
        }
    }

    /// INSTALLER, REQUESTED, direct_url.json (§4.5).
    fn add_installer_files(&self, dist: &DistInfo, out: &mut Output) {
        let sp = &self.site_packages;
        let mut add = |rel: String, data: Vec<u8>| {
            out.add_generated(format!("{sp}/{rel}"), rel.clone(), data, FILE_MODE, rel);
        };
        if !self.t.installer.is_empty() {
            add(
                format!("{}/INSTALLER", dist.dir),
                self.t.installer.clone().into_bytes(),
            );
        }
        if self.t.requested {
            add(format!("{}/REQUESTED", dist.dir), Vec::new());
        }
        if let Some(url) = &self.extras.direct_url {
            let json = format!("{{\"url\":{},\"archive_info\":{{}}}}", json_string(url));
            add(format!("{}/direct_url.json", dist.dir), json.into_bytes());
        }
    }

    /// RECORD itself, listing every row; its own row has neither hash nor size.
    fn add_record(&self, dist: &DistInfo, out: &mut Output) {
        out.rows.push(RecordRow {
            path: dist.record_path.clone(),
            hash: String::new(),
            size: None,
        });
        out.rows.sort();
        out.placed.push(Placed {
            dest: format!("{}/{}", self.site_packages, dist.record_path),
            data: write_record(&out.rows),
            mode: if dist.record_exec {
                EXEC_MODE
            } else {
                FILE_MODE
            },
            member: dist.record_path.clone(),
        });
    }

    /// Turn venv-relative placements into sorted layer entries with every
    /// ancestor directory, refusing two things at one path.
    fn to_layer(
        &self,
        placed: Vec<Placed>,
        dirs: BTreeSet<String>,
    ) -> Result<Vec<LayerFile>, WheelError> {
        let venv = self.t.venv.trim_matches('/');
        let full = |rel: &str| -> String {
            match (venv.is_empty(), rel.is_empty()) {
                (true, _) => rel.to_string(),
                (false, true) => venv.to_string(),
                (false, false) => format!("{venv}/{rel}"),
            }
        };
        let mut out: BTreeMap<String, LayerFile> = BTreeMap::new();
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        let mut all_dirs: BTreeSet<String> = BTreeSet::new();
        let add_ancestors = |all_dirs: &mut BTreeSet<String>, path: &str| {
            let mut end = 0;
            while let Some(i) = path[end..].find('/') {
                end += i;
                all_dirs.insert(path[..end].to_string());
                end += 1;
            }
        };
        for d in &dirs {
            let path = full(d);
            add_ancestors(&mut all_dirs, &path);
            all_dirs.insert(path);
        }
        for p in placed {
            let path = full(&p.dest);
            add_ancestors(&mut all_dirs, &path);
            if let Some(previous) = owner.insert(path.clone(), p.member.clone()) {
                return Err(WheelError::Conflict {
                    wheel: self.wheel.clone(),
                    member: format!("{previous} / {}", p.member),
                    path,
                });
            }
            out.insert(
                path.clone(),
                LayerFile {
                    path,
                    kind: LayerFileKind::File(p.data),
                    mode: p.mode,
                },
            );
        }
        for d in all_dirs {
            if d.is_empty() {
                continue;
            }
            if let Some(member) = owner.get(&d) {
                return Err(WheelError::Conflict {
                    wheel: self.wheel.clone(),
                    member: member.clone(),
                    path: d,
                });
            }
            out.insert(
                d.clone(),
                LayerFile {
                    path: d,
                    kind: LayerFileKind::Dir,
                    mode: DIR_MODE,
                },
            );
        }
        Ok(out.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;
    use crate::python::wheel::hash::hex_lower;
    use crate::python::wheel::{install_wheel, install_wheel_with};
    use sha2::{Digest, Sha256};
    use std::io::Cursor;

    #[test]
    fn direct_url_strings_are_escaped_as_uv_writes_them() {
        assert_eq!(
            json_string("a\"b\\c\n\u{1}/é"),
            "\"a\\\"b\\\\c\\n\\u0001/é\""
        );
    }

    #[test]
    fn pure_wheel_layout_modes_and_dirs() {
        let out = install(&demo_wheel(), "demo-1.0-py3-none-any.whl").unwrap();
        assert_eq!(out.dist_info, "demo-1.0.dist-info");
        assert_eq!((out.name.as_str(), out.version.as_str()), ("demo", "1.0"));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        let expected: Vec<(String, &str, u32)> = [
            ("opt", "d", 0o755),
            ("opt/venv", "d", 0o755),
            ("opt/venv/bin", "d", 0o755),
            ("opt/venv/bin/demo", "f", 0o755),
            ("opt/venv/bin/demo-gui", "f", 0o755),
            ("opt/venv/bin/demo-sub", "f", 0o755),
            ("opt/venv/lib", "d", 0o755),
            ("opt/venv/lib/python3.12", "d", 0o755),
            (SP, "d", 0o755),
            (&format!("{SP}/demo"), "d", 0o755),
            (&format!("{SP}/demo-1.0.dist-info"), "d", 0o755),
            (&format!("{SP}/demo-1.0.dist-info/INSTALLER"), "f", 0o644),
            (&format!("{SP}/demo-1.0.dist-info/METADATA"), "f", 0o644),
            (&format!("{SP}/demo-1.0.dist-info/RECORD"), "f", 0o644),
            (&format!("{SP}/demo-1.0.dist-info/REQUESTED"), "f", 0o644),
            (&format!("{SP}/demo-1.0.dist-info/WHEEL"), "f", 0o644),
            (
                &format!("{SP}/demo-1.0.dist-info/entry_points.txt"),
                "f",
                0o644,
            ),
            (&format!("{SP}/demo/__init__.py"), "f", 0o644),
            (&format!("{SP}/demo/cli.py"), "f", 0o644),
        ]
        .iter()
        .map(|(p, k, m)| (p.to_string(), *k, *m))
        .collect();
        let actual: Vec<(String, &str, u32)> = out
            .files
            .iter()
            .map(|f| {
                let k = match f.kind {
                    LayerFileKind::Dir => "d",
                    LayerFileKind::File(_) => "f",
                    LayerFileKind::Symlink(_) => "l",
                };
                (f.path.clone(), k, f.mode)
            })
            .collect();
        assert_eq!(actual, expected);
        assert_eq!(bytes_of(&out.files, &format!("{SP}/demo/cli.py")), DEMO_CLI);
        assert_eq!(
            content(&out.files, &format!("{SP}/demo-1.0.dist-info/INSTALLER")),
            "uv"
        );
        assert_eq!(
            content(&out.files, &format!("{SP}/demo-1.0.dist-info/REQUESTED")),
            ""
        );
    }

    #[test]
    fn install_wheel_returns_the_same_files() {
        let a = install_wheel(
            Cursor::new(demo_wheel()),
            "demo-1.0-py3-none-any.whl",
            &target(),
        )
        .unwrap();
        let b = install(&demo_wheel(), "demo-1.0-py3-none-any.whl")
            .unwrap()
            .files;
        assert_eq!(a, b);
    }

    #[test]
    fn deterministic_across_runs_and_archive_order() {
        let first = install(&demo_wheel(), "demo-1.0-py3-none-any.whl").unwrap();
        let second = install(&demo_wheel(), "demo-1.0-py3-none-any.whl").unwrap();
        assert_eq!(first, second);
        let mut reversed = demo_entries();
        reversed.reverse();
        let third = install(
            &wheel("demo-1.0.dist-info", &reversed),
            "demo-1.0-py3-none-any.whl",
        )
        .unwrap();
        assert_eq!(first.files, third.files);
        let sorted = paths(&first.files);
        let mut resorted = sorted.clone();
        resorted.sort();
        assert_eq!(sorted, resorted);
    }

    #[test]
    fn data_wheel_placement_and_modes() {
        let out = data_install();
        let f = &out.files;
        // `#!python` rewritten, 0755.
        assert_eq!(bytes_of(f, "opt/venv/bin/tool.py"), TOOL_PY_INSTALLED);
        assert_eq!(file(f, "opt/venv/bin/tool.py").mode, 0o755);
        // Binary unchanged, executable.
        assert_eq!(bytes_of(f, "opt/venv/bin/bin-tool"), ELF);
        assert_eq!(file(f, "opt/venv/bin/bin-tool").mode, 0o755);
        // Non-`#!python` script unchanged but made executable.
        assert_eq!(bytes_of(f, "opt/venv/bin/plain.sh"), PLAIN_SH);
        assert_eq!(file(f, "opt/venv/bin/plain.sh").mode, 0o755);
        // The entry point wins over the same-named script.
        let dup = content(f, "opt/venv/bin/dup");
        assert!(dup.starts_with("#!/opt/venv/bin/python\n# -*- coding: utf-8 -*-\n"));
        assert!(dup.contains("from datapkg import main\n"));
        // Headers go under the normalised dist name.
        assert_eq!(
            bytes_of(f, "opt/venv/include/site/python3.12/data-pkg/datapkg.h"),
            HEADER
        );
        assert_eq!(
            file(f, "opt/venv/include/site/python3.12/data-pkg/datapkg.h").mode,
            0o644
        );
        // data/ goes to the venv root.
        assert_eq!(bytes_of(f, "opt/venv/share/datapkg/config.json"), CONFIG);
        assert_eq!(bytes_of(f, &format!("{SP}/datapkg.pth")), PTH);
        // purelib/ goes to site-packages.
        assert_eq!(bytes_of(f, &format!("{SP}/datapkg_extra.py")), EXTRA);
        // No .data directory survives.
        assert!(
            !f.iter().any(|x| x.path.contains(".data")),
            "{:#?}",
            paths(f)
        );
        for d in [
            "opt/venv/include",
            "opt/venv/include/site",
            "opt/venv/include/site/python3.12",
            "opt/venv/include/site/python3.12/data-pkg",
            "opt/venv/share",
            "opt/venv/share/datapkg",
        ] {
            assert_eq!(file(f, d).kind, LayerFileKind::Dir, "{d}");
        }
    }

    #[test]
    fn platlib_wheel() {
        let so: &[u8] = b"\x7fELF shared object";
        let entries = vec![
            entry("native/__init__.py", b"from ._ext import *\n", 0o644),
            entry("native/_ext.cpython-312-x86_64-linux-gnu.so", so, 0o755),
            entry("native.libs/libfoo-1a2b3c.so.1", so, 0o775),
            entry("native-1.0.data/platlib/native_plat.py", b"P = 1\n", 0o644),
            entry(
                "native-1.0.dist-info/METADATA",
                &metadata("native", "1.0"),
                0o644,
            ),
            entry(
                "native-1.0.dist-info/WHEEL",
                &wheel_file("cp312-cp312-manylinux_2_17_x86_64", false),
                0o644,
            ),
        ];
        let out = install(
            &wheel("native-1.0.dist-info", &entries),
            "native-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        let f = &out.files;
        assert_eq!(file(f, &format!("{SP}/native/__init__.py")).mode, 0o644);
        assert_eq!(
            file(
                f,
                &format!("{SP}/native/_ext.cpython-312-x86_64-linux-gnu.so")
            )
            .mode,
            0o755
        );
        assert_eq!(
            file(f, &format!("{SP}/native.libs/libfoo-1a2b3c.so.1")).mode,
            0o755
        );
        assert_eq!(bytes_of(f, &format!("{SP}/native_plat.py")), b"P = 1\n");
        let record = content(f, &format!("{SP}/native-1.0.dist-info/RECORD"));
        assert!(record.contains(&rec_line("native_plat.py", b"P = 1\n")));
        assert!(!paths(f).iter().any(|p| p.contains("/bin")));
    }

    #[test]
    fn data_directory_errors() {
        let cases: [(&str, &str); 4] = [
            ("demo-1.0.data/unknown/x", "unknown wheel data type"),
            ("demo-1.0.data/scripts/sub/x", "directories are not allowed"),
            ("demo-1.0.data/scripts/python3.12", "reserved"),
            ("Demo-1.0.data/purelib/x.py", "unexpected data directory"),
        ];
        for (name, why) in cases {
            let mut entries = demo_entries();
            entries.push(entry(name, b"x", 0o644));
            let e = err(
                &wheel("demo-1.0.dist-info", &entries),
                "demo-1.0-py3-none-any.whl",
            );
            assert!(
                matches!(&e, WheelError::Invalid { member, reason, .. } if member == name && reason.contains(why)),
                "{name}: {e:?}"
            );
        }
        let mut entries = demo_entries();
        entries.push(entry("demo-1.0.data/scripts/sub/", b"", 0o755));
        assert!(matches!(
            err(
                &wheel("demo-1.0.dist-info", &entries),
                "demo-1.0-py3-none-any.whl"
            ),
            WheelError::Invalid { .. }
        ));
    }

    #[test]
    fn conflicting_destinations() {
        let mut entries = demo_entries();
        entries.push(entry("demo-1.0.data/purelib/demo/cli.py", DEMO_CLI, 0o644));
        let e = err(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Conflict { path, .. } if path == &format!("{SP}/demo/cli.py")),
            "{e:?}"
        );
        // A data file where a launcher goes.
        let mut entries = demo_entries();
        entries.push(entry("demo-1.0.data/data/bin/demo", b"x", 0o644));
        let e = err(
            &wheel("demo-1.0.dist-info", &entries),
            "demo-1.0-py3-none-any.whl",
        );
        assert!(
            matches!(&e, WheelError::Conflict { path, .. } if path == "opt/venv/bin/demo"),
            "{e:?}"
        );
    }

    #[test]
    fn archive_digest_and_direct_url() {
        let bytes = demo_wheel();
        let sha = hex_lower(&Sha256::digest(&bytes));
        let extras = InstallExtras {
            direct_url: Some("https://example.org/p/demo-1.0-py3-none-any.whl".into()),
            expected_sha256: Some(sha.clone()),
            expected_size: Some(bytes.len() as u64),
        };
        let mut reader = Cursor::new(bytes.clone());
        reader.set_position(17); // must not matter
        let out =
            install_wheel_with(reader, "demo-1.0-py3-none-any.whl", &target(), &extras).unwrap();
        let json = r#"{"url":"https://example.org/p/demo-1.0-py3-none-any.whl","archive_info":{}}"#;
        assert_eq!(
            content(
                &out.files,
                &format!("{SP}/demo-1.0.dist-info/direct_url.json")
            ),
            json
        );
        let record = content(&out.files, &format!("{SP}/demo-1.0.dist-info/RECORD"));
        assert!(record.contains(&rec_line(
            "demo-1.0.dist-info/direct_url.json",
            json.as_bytes()
        )));

        let wrong = InstallExtras {
            expected_sha256: Some("00".repeat(32)),
            ..InstallExtras::default()
        };
        let e = install_wheel_with(
            Cursor::new(bytes.clone()),
            "demo-1.0-py3-none-any.whl",
            &target(),
            &wrong,
        )
        .unwrap_err();
        assert!(
            matches!(&e, WheelError::ArchiveHash { actual, .. } if *actual == sha),
            "{e:?}"
        );
        let wrong = InstallExtras {
            expected_size: Some(1),
            ..InstallExtras::default()
        };
        let e = install_wheel_with(
            Cursor::new(bytes),
            "demo-1.0-py3-none-any.whl",
            &target(),
            &wrong,
        )
        .unwrap_err();
        assert!(
            matches!(e, WheelError::ArchiveSize { expected: 1, .. }),
            "{e:?}"
        );
    }
}

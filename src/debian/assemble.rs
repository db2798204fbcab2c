//! Assembling locked packages into layers without running them: the
//! .debs' data archives streamed into package layers (merged /usr: the
//! `bin`, `sbin` and `lib*` folders of packages land under `usr/` and the
//! top-level names become links), and a small state layer with what dpkg
//! and the maintainer scripts would have written that is known natively
//! (the dpkg database, users and groups, the /bin/sh diversion).

use super::deb::Deb;
use super::dpkgdb::{self, Installed};
use super::lock::LockedPackage;
use crate::error::{Error, IoContext, Result};
use crate::layer::compress::Compression;
use crate::layer::files::{commit_layer, start_layer};
use crate::layer::tar::{Entry, EntryKind};
use crate::store::{LayerDesc, Store};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

/// Bumped when what the generators write changes: part of every key.
pub const GENERATOR_VERSION: u32 = 4;

/// Top-level folders that merged /usr turns into links to `usr/<name>`.
pub const USR_ALIASES: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Whether the state layer is generated from this file of a package.
fn wanted(path: &str) -> bool {
    matches!(
        path,
        "usr/share/base-passwd/passwd.master" | "usr/share/base-passwd/group.master"
    ) || super::fixups::wants(path)
}

/// Brings every locked .deb into the store (8 at a time), each checked
/// against the lock's sha256 and size before it is kept.
pub fn fetch_debs(store: &Store, pkgs: &[LockedPackage]) -> Result<Vec<PathBuf>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .map_err(|e| Error::Other(format!("starting downloads: {e}")))?;
    let task = crate::progress::start(
        &format!("download {} .debs", pkgs.len()),
        pkgs.iter().map(|p| p.size).sum::<u64>(),
    );
    let done = std::sync::Mutex::new((0u64, 0u64));
    task.items(0, pkgs.len() as u64);
    let paths = pool.install(|| {
        pkgs.par_iter()
            .map(|p| {
                let url = format!(
                    "{}/{}",
                    p.uri.trim_end_matches('/'),
                    p.path.trim_start_matches('/')
                );
                let digest = crate::digest::Digest::parse_hex(&p.sha256).ok_or_else(|| {
                    Error::Other(format!(
                        "{}: the lock's sha256 is not 64 hex digits",
                        p.name
                    ))
                })?;
                let path = crate::store::fetch::fetch_url(
                    store,
                    &url,
                    Some(digest),
                    Some(p.size),
                    "the lock",
                )
                .map(|(path, _)| path)?;
                let mut g = done.lock().unwrap_or_else(|e| e.into_inner());
                g.0 += 1;
                g.1 += p.size;
                task.items(g.0, pkgs.len() as u64);
                task.set(g.1);
                Ok(path)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    task.finish(&format!("{} packages", pkgs.len()));
    Ok(paths)
}

/// What writing a package layer made.
pub struct PackageLayer {
    pub desc: LayerDesc,
}

/// Where a data.tar path goes in a merged-/usr tree; None for the alias
/// folders themselves (they are links).
fn merged(path: &str) -> Option<String> {
    let top = path.split('/').next().unwrap_or_default();
    if USR_ALIASES.contains(&top) {
        if path == top {
            return None;
        }
        return Some(format!("usr/{path}"));
    }
    Some(path.to_string())
}

/// Writes one package layer from `debs` (in order). With `links`, the
/// merged-/usr links and base-files' `/var/run` and `/var/lock` links are
/// part of it (the first layer).
pub fn write_package_layer(
    store: &Store,
    debs: &[(LockedPackage, PathBuf)],
    links: &[&str],
    compression: Compression,
    threads: usize,
    sde: u64,
) -> Result<PackageLayer> {
    let (tmp, mut tw) = start_layer(store, compression, threads)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut dirs: HashSet<String> = HashSet::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let header = |path: String, kind: EntryKind, mode: u32, uid: u64, gid: u64| Entry {
        path,
        kind,
        mode,
        uid,
        gid,
        mtime: sde,
    };
    for l in links {
        tw.append_header(&header(
            (*l).to_string(),
            EntryKind::Symlink {
                target: format!("usr/{l}"),
            },
            0o777,
            0,
            0,
        ))
        .ctx(|| "writing a package layer".into())?;
        dirs.insert((*l).to_string());
    }
    for (pkg, path) in debs {
        let deb = Deb::open(path)?;
        let mut pkg_captured: Captured = BTreeMap::new();
        let mut each = |e: &mut dpkgdb::DataEntry<'_, '_>| -> Result<()> {
            let raw = e.path_bytes().into_owned();
            let name = String::from_utf8(raw)
                .map_err(|_| Error::input(path, "a data.tar path is not UTF-8".to_string()))?;
            let rel = name.trim_start_matches("./").trim_end_matches('/');
            if rel.is_empty() {
                return Ok(());
            }
            let Some(mut rel) = merged(rel) else {
                return Ok(());
            };
            let h = e.header();
            let mode = h.mode().unwrap_or(0o644) & 0o7777;
            let (uid, gid) = (h.uid().unwrap_or(0), h.gid().unwrap_or(0));
            let ty = h.entry_type();
            // base-files ships /var/run and /var/lock as folders; its
            // postinst makes them links, as every Debian image has them.
            if pkg.name == "base-files" && ty.is_dir() && (rel == "var/run" || rel == "var/lock") {
                let target = if rel == "var/run" {
                    "/run"
                } else {
                    "/run/lock"
                };
                tw.append_header(&header(
                    rel.clone(),
                    EntryKind::Symlink {
                        target: target.into(),
                    },
                    0o777,
                    0,
                    0,
                ))
                .ctx(|| "writing a package layer".into())?;
                dirs.insert(rel);
                return Ok(());
            }
            if ty.is_dir() {
                if !dirs.insert(rel.clone()) {
                    return Ok(());
                }
                tw.append_header(&header(rel, EntryKind::Dir, mode, uid, gid))
                    .ctx(|| "writing a package layer".into())?;
                return Ok(());
            }
            if let Some(other) = files.insert(rel.clone(), pkg.name.clone()) {
                return Err(Error::Other(format!(
                    "{} and {} both ship /{rel}",
                    other, pkg.name
                )));
            }
            if ty.is_symlink() {
                let target = e
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                tw.append_header(&header(rel, EntryKind::Symlink { target }, 0o777, uid, gid))
                    .ctx(|| "writing a package layer".into())?;
            } else if ty.is_hard_link() {
                let target = e
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let target = merged(target.trim_start_matches("./")).unwrap_or(target);
                tw.append_header(&header(rel, EntryKind::Hardlink { target }, mode, uid, gid))
                    .ctx(|| "writing a package layer".into())?;
            } else if ty.is_file() {
                let size = e.size();
                tw.append_header(&header(
                    rel.clone(),
                    EntryKind::File { size },
                    mode,
                    uid,
                    gid,
                ))
                .ctx(|| "writing a package layer".into())?;
                if wanted(&rel) {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes)
                        .map_err(|err| Error::input(path, format!("/{rel}: {err}")))?;
                    tw.append_data(&mut bytes.as_slice(), size, &mut buf)
                        .ctx(|| "writing a package layer".into())?;
                    pkg_captured.insert(std::mem::take(&mut rel), bytes);
                } else {
                    tw.append_data(e, size, &mut buf)
                        .map_err(|err| Error::input(path, format!("/{rel}: {err}")))?;
                }
            } else {
                return Err(Error::input(
                    path,
                    format!("/{rel}: devices and fifos are not installed natively"),
                ));
            }
            Ok(())
        };
        let record = PackageRecord {
            installed: dpkgdb::read_package(&deb, &mut each)?,
            captured: pkg_captured,
        };
        save_record(store, &pkg.sha256, &record);
    }
    let desc = commit_layer(store, tmp, tw, compression)?;
    Ok(PackageLayer { desc })
}

/// Files captured from the packages' data, by path.
pub type Captured = BTreeMap<String, Vec<u8>>;

/// What the state layer needs of one package, kept in the store by the
/// .deb's sha256 when its package layer is written (so the state layer
/// does not decode the data archive again).
#[derive(serde::Serialize, serde::Deserialize)]
struct PackageRecord {
    installed: Installed,
    captured: Captured,
}

fn record_path(store: &Store, sha256: &str) -> PathBuf {
    store
        .root()
        .join("debian-records")
        .join(format!("{sha256}.json"))
}

/// Keeps a package's record; a record that cannot be written is only a
/// slower state layer, so failures are ignored.
fn save_record(store: &Store, sha256: &str, r: &PackageRecord) {
    let p = record_path(store, sha256);
    if let (Some(dir), Ok(bytes)) = (p.parent(), serde_json::to_vec(r)) {
        let _ = std::fs::create_dir_all(dir);
        let _ = store.write_atomic(&p, &bytes);
    }
}

fn load_record(store: &Store, sha256: &str) -> Option<PackageRecord> {
    let p = record_path(store, sha256);
    let r = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
    crate::util::fs::touch(&p);
    Some(r)
}

/// Every package's database record and the captured files: kept from its
/// package layer, else from a pass over its data archive that writes
/// nothing.
pub fn read_packages(
    store: &Store,
    debs: &[(LockedPackage, PathBuf)],
) -> Result<(Vec<Installed>, Captured)> {
    let read: Vec<(Installed, Captured)> = debs
        .par_iter()
        .map(|(pkg, path)| {
            if let Some(r) = load_record(store, &pkg.sha256) {
                return Ok((r.installed, r.captured));
            }
            let deb = Deb::open(path)?;
            let mut captured = BTreeMap::new();
            let mut each = |e: &mut dpkgdb::DataEntry<'_, '_>| -> Result<()> {
                let raw = e.path_bytes().into_owned();
                let name = String::from_utf8_lossy(&raw);
                let rel = name.trim_start_matches("./");
                if let Some(rel) = merged(rel)
                    && wanted(&rel)
                {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes)
                        .map_err(|err| Error::input(path, format!("/{rel}: {err}")))?;
                    captured.insert(rel, bytes);
                }
                Ok(())
            };
            Ok((dpkgdb::read_package(&deb, &mut each)?, captured))
        })
        .collect::<Result<_>>()?;
    let mut installed = Vec::new();
    let mut captured = BTreeMap::new();
    for (i, c) in read {
        installed.push(i);
        captured.extend(c);
    }
    Ok((installed, captured))
}

/// What one entry of the state layer is.
#[derive(PartialEq)]
pub enum StateKind {
    File(Vec<u8>),
    Dir,
    Link(String),
}

/// One entry of the state layer.
#[derive(PartialEq)]
pub struct StateEntry {
    pub path: String,
    pub kind: StateKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl StateEntry {
    pub fn file(path: &str, bytes: Vec<u8>, mode: u32, uid: u64, gid: u64) -> StateEntry {
        StateEntry {
            path: path.to_string(),
            kind: StateKind::File(bytes),
            mode,
            uid,
            gid,
        }
    }

    pub fn dir(path: &str, mode: u32, uid: u64, gid: u64) -> StateEntry {
        StateEntry {
            path: path.to_string(),
            kind: StateKind::Dir,
            mode,
            uid,
            gid,
        }
    }

    pub fn link(path: &str, target: &str) -> StateEntry {
        StateEntry {
            path: path.to_string(),
            kind: StateKind::Link(target.to_string()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        }
    }
}

fn file(path: &str, bytes: Vec<u8>, mode: u32, gid: u64) -> StateEntry {
    StateEntry::file(path, bytes, mode, 0, gid)
}

/// The users and groups base-passwd's scripts install and `shadowconfig
/// on` converts: `/etc/passwd` and `/etc/group` from its master files with
/// the password fields moved to `/etc/shadow` and `/etc/gshadow` (the last
/// change day from SOURCE_DATE_EPOCH).
pub fn users(captured: &BTreeMap<String, Vec<u8>>, sde: u64) -> Result<Vec<StateEntry>> {
    let get = |p: &str| {
        captured
            .get(p)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| Error::Other(format!("no package ships /{p} (is base-passwd locked?)")))
    };
    let passwd_master = get("usr/share/base-passwd/passwd.master")?;
    let group_master = get("usr/share/base-passwd/group.master")?;
    let day = sde / 86_400;
    let mut passwd = String::new();
    let mut shadow = String::new();
    for line in passwd_master.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return Err(Error::Other(format!("passwd.master: bad line {line:?}")));
        }
        passwd.push_str(&format!("{}:x:{}\n", f[0], f[2..].join(":")));
        shadow.push_str(&format!("{}:{}:{day}:0:99999:7:::\n", f[0], f[1]));
    }
    let mut group = String::new();
    let mut gshadow = String::new();
    for line in group_master.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            return Err(Error::Other(format!("group.master: bad line {line:?}")));
        }
        group.push_str(&format!("{}:x:{}\n", f[0], f[2..].join(":")));
        gshadow.push_str(&format!("{}:{}::{}\n", f[0], f[1], f[3]));
    }
    const SHADOW_GID: u64 = 42;
    Ok(vec![
        file("etc/passwd", passwd.into_bytes(), 0o644, 0),
        file("etc/group", group.into_bytes(), 0o644, 0),
        file("etc/shadow", shadow.into_bytes(), 0o640, SHADOW_GID),
        file("etc/gshadow", gshadow.into_bytes(), 0o640, SHADOW_GID),
    ])
}

/// The image's apt sources: the suites it was locked from, as the
/// official images write them (deb822, one paragraph per mirror).
fn apt_sources(suites: &[super::lock::LockedSuite], keyring: bool) -> StateEntry {
    let mut text = String::new();
    let mut uris: Vec<&str> = Vec::new();
    for s in suites {
        if !uris.contains(&s.uri.as_str()) {
            uris.push(&s.uri);
        }
    }
    for u in uris {
        let mine: Vec<&super::lock::LockedSuite> = suites.iter().filter(|s| s.uri == u).collect();
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "Types: deb\nURIs: {u}\nSuites: {}\nComponents: {}\n",
            mine.iter()
                .map(|s| s.suite.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            mine[0].components.join(" ")
        ));
        if keyring {
            text.push_str("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n");
        }
    }
    file(
        "etc/apt/sources.list.d/debian.sources",
        text.into_bytes(),
        0o644,
        0,
    )
}

/// The generated state of `installed`: the dpkg database and what the
/// covered maintainer scripts would have made, in path order. Packages
/// named in `unpacked` are left `install ok unpacked`, for `dpkg
/// --configure` to finish in the sandbox.
pub fn state_entries(
    installed: &[Installed],
    captured: &BTreeMap<String, Vec<u8>>,
    locked: &[LockedPackage],
    suites: &[super::lock::LockedSuite],
    arch: &str,
    sde: u64,
    unpacked: &[String],
) -> Result<Vec<StateEntry>> {
    let mut out: Vec<StateEntry> = Vec::new();
    let has = |name: &str| installed.iter().any(|p| p.name == name);
    // dash's postinst diverts /bin/sh (its data already links sh to dash).
    let mut diversions = Vec::new();
    if has("dash") {
        // In the order dpkg keeps them after dash's postinst.
        for (from, to) in [
            (
                "/usr/share/man/man1/sh.1.gz",
                "/usr/share/man/man1/sh.distrib.1.gz",
            ),
            ("/bin/sh", "/bin/sh.distrib"),
        ] {
            diversions.push((from.to_string(), to.to_string(), "dash".to_string()));
        }
    }
    for (path, mut bytes, mode) in dpkgdb::database(installed, &diversions)? {
        if path == format!("{}/status", dpkgdb::ADMINDIR) && !unpacked.is_empty() {
            let mut text = String::from_utf8(bytes).expect("written as text");
            for name in unpacked {
                let from = format!("Package: {name}\nStatus: install ok installed\n");
                if !text.contains(&from) {
                    return Err(Error::Other(format!(
                        "{name}: no status stanza to leave unpacked"
                    )));
                }
                text = text.replacen(
                    &from,
                    &format!("Package: {name}\nStatus: install ok unpacked\n"),
                    1,
                );
            }
            bytes = text.into_bytes();
        }
        match path.strip_suffix('/') {
            Some(dir) => out.push(StateEntry::dir(dir, mode, 0, 0)),
            None => out.push(file(&path, bytes, mode, 0)),
        }
    }
    if has("base-passwd") {
        out.extend(users(captured, sde)?);
    }
    out.extend(super::fixups::fixups(installed, captured));
    if has("apt") {
        if !suites.is_empty() {
            out.push(apt_sources(suites, has("debian-archive-keyring")));
        }
        for l in ["var/cache/apt/archives/lock", "var/lib/apt/lists/lock"] {
            out.push(file(l, vec![], 0o640, 0));
        }
        // apt's auto-installed marks, by name (apt keeps its own order).
        let mut text = String::new();
        for p in locked.iter().filter(|p| p.auto) {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!(
                "Package: {}\nArchitecture: {arch}\nAuto-Installed: 1\n",
                p.name
            ));
        }
        out.push(file(
            "var/lib/apt/extended_states",
            text.into_bytes(),
            0o644,
            0,
        ));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|b, a| a.path == b.path);
    Ok(out)
}

/// Writes state entries as a layer.
pub fn write_state_layer(
    store: &Store,
    out: &[StateEntry],
    compression: Compression,
    threads: usize,
    sde: u64,
) -> Result<LayerDesc> {
    let (tmp, mut tw) = start_layer(store, compression, threads)?;
    let mut buf = vec![0u8; 64 * 1024];
    for e in out {
        let kind = match &e.kind {
            StateKind::Dir => EntryKind::Dir,
            StateKind::Link(t) => EntryKind::Symlink { target: t.clone() },
            StateKind::File(b) => EntryKind::File {
                size: b.len() as u64,
            },
        };
        tw.append_header(&Entry {
            path: e.path.clone(),
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: sde,
        })
        .ctx(|| "writing the state layer".into())?;
        if let StateKind::File(b) = &e.kind {
            tw.append_data(&mut b.as_slice(), b.len() as u64, &mut buf)
                .ctx(|| "writing the state layer".into())?;
        }
    }
    commit_layer(store, tmp, tw, compression)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_paths() {
        assert_eq!(merged("bin/ls").as_deref(), Some("usr/bin/ls"));
        assert_eq!(merged("lib64/ld.so").as_deref(), Some("usr/lib64/ld.so"));
        assert_eq!(merged("bin"), None);
        assert_eq!(merged("binx/a").as_deref(), Some("binx/a"));
        assert_eq!(merged("usr/bin/x").as_deref(), Some("usr/bin/x"));
    }

    #[test]
    fn users_from_the_master_files() {
        let mut c = BTreeMap::new();
        c.insert(
            "usr/share/base-passwd/passwd.master".to_string(),
            b"root:*:0:0:root:/root:/bin/bash\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n".to_vec(),
        );
        c.insert(
            "usr/share/base-passwd/group.master".to_string(),
            b"root:*:0:\nshadow:*:42:\n".to_vec(),
        );
        let f = users(&c, 1_700_000_000).unwrap();
        let text = |p: &str| match &f.iter().find(|x| x.path == p).unwrap().kind {
            StateKind::File(b) => String::from_utf8(b.clone()).unwrap(),
            _ => panic!("{p} is no file"),
        };
        assert_eq!(
            text("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(
            text("etc/shadow"),
            "root:*:19675:0:99999:7:::\nnobody:*:19675:0:99999:7:::\n"
        );
        assert_eq!(text("etc/group"), "root:x:0:\nshadow:x:42:\n");
        assert_eq!(text("etc/gshadow"), "root:*::\nshadow:*::\n");
        let sh = f.iter().find(|x| x.path == "etc/shadow").unwrap();
        assert_eq!((sh.mode, sh.gid), (0o640, 42));
    }
}

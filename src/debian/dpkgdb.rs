//! The dpkg database (/var/lib/dpkg) for packages assembled natively: what
//! dpkg itself would have written after unpacking and configuring them,
//! byte for byte, without running dpkg.
//!
//! Hand-written because its bytes are dpkg's: the status file, the `.list`
//! and `.md5sums` files must equal what dpkg writes, and no crate writes them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

use md5::{Digest, Md5};

use super::deb::Deb;
use crate::error::{Error, Result};

/// Where the database lives, relative to the image root.
pub const ADMINDIR: &str = "var/lib/dpkg";

/// Control members that are maintainer scripts and get mode 0755.
const SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm", "config"];

/// What a package contributes to the database; filled while its data.tar
/// is streamed once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Installed {
    pub name: String,
    /// The Architecture field.
    pub arch: String,
    pub multi_arch_same: bool,
    /// The control file as shipped.
    pub control: Vec<u8>,
    /// The control.tar members by name. When the package ships no md5sums,
    /// one is generated from data.tar, as dpkg does while unpacking.
    pub control_files: BTreeMap<String, Vec<u8>>,
    /// data.tar member paths in archive order, as dpkg lists them ("/." for
    /// the root, "/usr", "/usr/bin/x" ... no trailing slash).
    pub list: Vec<String>,
    /// md5 (hex) of each conffile's content, taken from data.tar.
    pub conffile_md5: BTreeMap<String, String>,
}

impl Installed {
    /// The name dpkg gives the package's info files: `name:arch` for
    /// Multi-Arch: same packages, else `name`.
    pub fn info_name(&self) -> String {
        if self.multi_arch_same {
            format!("{}:{}", self.name, self.arch)
        } else {
            self.name.clone()
        }
    }
}

/// The data.tar entry handed to `read_package`'s callback.
pub type DataEntry<'a, 'b> = tar::Entry<'a, Box<dyn Read + 'b>>;

/// Streams a .deb's data.tar once: calls `each(entry)` for every member (so
/// the caller can write it into a layer) and returns the Installed record
/// (list and conffile md5s computed on the way). The callback may read the
/// entry's content or leave it; hashing sees the bytes either way.
pub fn read_package(
    deb: &Deb,
    each: &mut dyn FnMut(&mut DataEntry<'_, '_>) -> Result<()>,
) -> Result<Installed> {
    let path = deb.path();
    let mut control_files = deb.control_files()?;
    let control = control_files
        .get("control")
        .cloned()
        .ok_or_else(|| Error::input(path, format!("{}: no control file", deb.control_member())))?;
    let head = Head::parse(&control)
        .map_err(|m| Error::input(path, format!("{}: control: {m}", deb.control_member())))?;
    let conffiles = match control_files.get("conffiles") {
        Some(c) => parse_conffiles(c)
            .map_err(|m| Error::input(path, format!("{}: conffiles: {m}", deb.control_member())))?,
        None => Vec::new(),
    };
    let wanted: HashSet<&str> = conffiles
        .iter()
        .filter(|c| !c.remove_on_upgrade)
        .map(|c| c.path.as_str())
        .collect();
    // dpkg records the md5 of every file when the package ships no md5sums.
    let hash_all = !control_files.contains_key("md5sums");

    let member = deb.data_member().to_string();
    let bad = |m: String| Error::input(path, format!("{member}: {m}"));
    let tap = Rc::new(RefCell::new(TapState::default()));
    let reader: Box<dyn Read + '_> = Box::new(Tap {
        inner: deb.data_reader()?,
        state: tap.clone(),
    });
    let mut archive = tar::Archive::new(reader);
    let mut list = Vec::new();
    let mut hashes: HashMap<String, String> = HashMap::new();
    let mut generated = String::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let name = dpkg_path(&entry.path_bytes()).map_err(&bad)?;
        let hash_this = kind.is_file() && (hash_all || wanted.contains(name.as_str()));
        if hash_this {
            *tap.borrow_mut() = TapState {
                hasher: Some(Md5::new()),
                left: entry.size(),
            };
        }
        each(&mut entry)?;
        let mut hash = None;
        if hash_this {
            std::io::copy(&mut entry, &mut std::io::sink())
                .map_err(|e| bad(format!("{name}: {e}")))?;
            let state = std::mem::take(&mut *tap.borrow_mut());
            let hasher = state.hasher.expect("hashing was enabled for this entry");
            if state.left != 0 {
                return Err(bad(format!("{name}: content is truncated")));
            }
            hash = Some(hex::encode(hasher.finalize()));
        } else if kind.is_hard_link() {
            // A hard link has its target's content, so its target's hash.
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad(format!("{name}: hard link without a target")))?;
            let target = dpkg_path(&target).map_err(&bad)?;
            hash = hashes.get(&target).cloned();
            if hash.is_none() && wanted.contains(name.as_str()) {
                return Err(bad(format!(
                    "conffile {name} is a hard link to {target}, whose content was not hashed"
                )));
            }
        }
        if let Some(hash) = hash {
            if hash_all {
                generated.push_str(&format!("{hash}  {}\n", &name[1..]));
            }
            hashes.insert(name.clone(), hash);
        }
        list.push(name);
    }

    let mut conffile_md5 = BTreeMap::new();
    for c in conffiles.iter().filter(|c| !c.remove_on_upgrade) {
        let md5 = hashes.get(&c.path).ok_or_else(|| {
            bad(format!(
                "conffile {} is not a regular file in the package",
                c.path
            ))
        })?;
        conffile_md5.insert(c.path.clone(), md5.clone());
    }
    if hash_all {
        control_files.insert("md5sums".into(), generated.into_bytes());
    }

    let installed = Installed {
        name: head.name,
        arch: head.arch,
        multi_arch_same: head.multi_arch_same,
        control,
        control_files,
        list,
        conffile_md5,
    };
    // Surface control-file problems now, while the .deb can be named.
    status_stanza(&installed).map_err(|e| Error::input(path, e.to_string()))?;
    triggers_of(&installed).map_err(|e| Error::input(path, e.to_string()))?;
    Ok(installed)
}

/// The status stanza exactly as dpkg writes it for
/// `Status: install ok installed`, ending in a newline.
pub fn status_stanza(p: &Installed) -> Result<String> {
    let bad = |m: String| Error::input(format!("{} (control file)", p.name), m);
    let text = std::str::from_utf8(&p.control).map_err(|_| bad("not UTF-8".into()))?;
    let fields = parse_stanza(text).map_err(&bad)?;

    // dpkg's known fields keep its spelling and order; the rest follow in
    // control-file order under their own names.
    let mut known: BTreeMap<&'static str, &str> = BTreeMap::new();
    let mut other: Vec<(&str, &str)> = Vec::new();
    let mut seen = HashSet::new();
    for (name, value) in &fields {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(bad(format!("duplicate field {name}")));
        }
        match canonical_field(name) {
            Some(canon) => {
                known.insert(canon, value);
            }
            None => other.push((name, value)),
        }
    }

    let mut out = String::new();
    for &field in STATUS_ORDER {
        let value = known.get(field).copied().unwrap_or("");
        match field {
            "Package" => put(&mut out, field, &p.name),
            "Essential" | "Protected" => {
                if !value.is_empty()
                    && parse_bool(value).map_err(|m| bad(format!("{field}: {m}")))?
                {
                    put(&mut out, field, "yes");
                }
            }
            "Status" => put(&mut out, field, "install ok installed"),
            "Priority" => {
                let lower = value.to_ascii_lowercase();
                match lower.as_str() {
                    "required" | "important" | "standard" | "optional" | "extra" => {
                        put(&mut out, field, &lower)
                    }
                    _ => put(&mut out, field, value),
                }
            }
            "Multi-Arch" => {
                let lower = value.to_ascii_lowercase();
                match lower.as_str() {
                    "" | "no" => {}
                    "same" | "foreign" | "allowed" => put(&mut out, field, &lower),
                    _ => return Err(bad(format!("Multi-Arch: bad value {value:?}"))),
                }
            }
            "Version" => put(
                &mut out,
                field,
                &normalize_version(value).unwrap_or_else(|| value.into()),
            ),
            "Replaces" | "Provides" | "Depends" | "Pre-Depends" | "Recommends" | "Suggests"
            | "Breaks" | "Conflicts" | "Enhances" => put(
                &mut out,
                field,
                &normalize_relations(value).unwrap_or_else(|| value.into()),
            ),
            "Conffiles" => {
                let conffiles = match p.control_files.get("conffiles") {
                    Some(c) => parse_conffiles(c).map_err(|m| bad(format!("conffiles: {m}")))?,
                    None => Vec::new(),
                };
                if conffiles.is_empty() {
                    continue;
                }
                out.push_str("Conffiles:\n");
                for c in &conffiles {
                    let (hash, flag) = if c.remove_on_upgrade {
                        // Never unpacked, so dpkg never learns a hash.
                        ("newconffile", " remove-on-upgrade")
                    } else {
                        let md5 = p.conffile_md5.get(&c.path).ok_or_else(|| {
                            bad(format!("no md5 recorded for conffile {}", c.path))
                        })?;
                        (md5.as_str(), "")
                    };
                    out.push_str(&format!(" {} {hash}{flag}\n", c.path));
                }
            }
            _ => put(&mut out, field, value),
        }
    }
    for (name, value) in other {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

/// Appends "Name: value" unless the value is empty, as dpkg skips empty fields.
fn put(out: &mut String, name: &str, value: &str) {
    if !value.is_empty() {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
}

/// The whole database: (path relative to the image root, bytes, mode).
/// Paths ending in '/' are directories. It holds var/lib/dpkg/status
/// (stanzas sorted by package name), `info/<pkg>[:arch].{list,md5sums,...}`
/// (maintainer scripts 0755, others 0644), info/format, triggers/File and
/// `triggers/<name>` from the packages' interest lines (in `pkgs` order, the
/// order dpkg would have unpacked them), the diversions file when
/// `diversions` (path, diverted-to, package) is not empty, and the empty
/// lock files and directories a dpkg tree has. Entries are sorted by path.
pub fn database(
    pkgs: &[Installed],
    diversions: &[(String, String, String)],
) -> Result<Vec<(String, Vec<u8>, u32)>> {
    let mut out: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let mut file = |path: String, bytes: Vec<u8>, mode: u32| out.push((path, bytes, mode));
    for dir in [
        "",
        "alternatives/",
        "info/",
        "parts/",
        "triggers/",
        "updates/",
    ] {
        file(format!("{ADMINDIR}/{dir}"), Vec::new(), 0o755);
    }
    file(format!("{ADMINDIR}/lock"), Vec::new(), 0o640);
    file(format!("{ADMINDIR}/lock-frontend"), Vec::new(), 0o640);
    file(format!("{ADMINDIR}/triggers/Lock"), Vec::new(), 0o600);
    file(format!("{ADMINDIR}/triggers/Unincorp"), Vec::new(), 0o644);
    file(format!("{ADMINDIR}/info/format"), b"1\n".to_vec(), 0o644);

    // Status, sorted by name then architecture.
    let mut order: Vec<&Installed> = pkgs.iter().collect();
    order.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    let mut status = String::new();
    let mut names = HashSet::new();
    for p in &order {
        check_name(p)?;
        if !names.insert(p.info_name()) {
            return Err(Error::input(
                format!("{} (control file)", p.name),
                format!("package {} is given twice", p.info_name()),
            ));
        }
        status.push_str(&status_stanza(p)?);
        status.push('\n');
    }
    file(format!("{ADMINDIR}/status"), status.into_bytes(), 0o644);

    // Info files.
    for p in pkgs {
        let base = format!("{ADMINDIR}/info/{}", p.info_name());
        let mut list = String::new();
        for path in &p.list {
            list.push_str(path);
            list.push('\n');
        }
        file(format!("{base}.list"), list.into_bytes(), 0o644);
        for (member, bytes) in &p.control_files {
            // dpkg keeps every control member but the control file itself,
            // skipping names with a dot (and any "list", which it owns).
            if member == "control" || member == "list" || member.contains(['.', '/']) {
                continue;
            }
            let mode = if SCRIPTS.contains(&member.as_str()) {
                0o755
            } else {
                0o644
            };
            file(format!("{base}.{member}"), bytes.clone(), mode);
        }
    }

    // Trigger interests, registered in unpack order.
    let mut file_triggers: Vec<(String, String, bool)> = Vec::new();
    let mut explicit: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for p in pkgs {
        let who = p.info_name();
        for (trigger, noawait) in triggers_of(p)? {
            if trigger.starts_with('/') {
                match file_triggers
                    .iter_mut()
                    .find(|(path, pkg, _)| *path == trigger && *pkg == who)
                {
                    Some(existing) => existing.2 = noawait,
                    None => file_triggers.push((trigger, who.clone(), noawait)),
                }
            } else {
                let interested = explicit.entry(trigger).or_default();
                interested.retain(|(pkg, _)| *pkg != who);
                interested.push((who.clone(), noawait));
            }
        }
    }
    let suffix = |noawait: bool| if noawait { "/noawait" } else { "" };
    if !file_triggers.is_empty() {
        let mut text = String::new();
        for (path, pkg, noawait) in &file_triggers {
            text.push_str(&format!("{path} {pkg}{}\n", suffix(*noawait)));
        }
        file(
            format!("{ADMINDIR}/triggers/File"),
            text.into_bytes(),
            0o644,
        );
    }
    for (trigger, interested) in explicit {
        let mut text = String::new();
        for (pkg, noawait) in interested {
            text.push_str(&format!("{pkg}{}\n", suffix(noawait)));
        }
        file(
            format!("{ADMINDIR}/triggers/{trigger}"),
            text.into_bytes(),
            0o644,
        );
    }

    if !diversions.is_empty() {
        let mut text = String::new();
        for (from, to, package) in diversions {
            for line in [from, to, package] {
                if line.is_empty() || line.contains('\n') {
                    return Err(Error::input(
                        format!("{ADMINDIR}/diversions"),
                        format!("bad diversion ({from:?}, {to:?}, {package:?})"),
                    ));
                }
                text.push_str(line);
                text.push('\n');
            }
        }
        file(format!("{ADMINDIR}/diversions"), text.into_bytes(), 0o644);
    }

    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// dpkg's fields in the order it writes them to the status file.
const STATUS_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
];

/// Fields dpkg knows but keeps out of an installed package's stanza: state
/// it writes itself (Status, Config-Version, Conffiles, Triggers-*) and
/// archive details that only belong in the available file.
const DROPPED: &[&str] = &[
    "Status",
    "Config-Version",
    "Conffiles",
    "Triggers-Pending",
    "Triggers-Awaited",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Revision",
    "Package-Revision",
    "Package_Revision",
];

/// dpkg's spelling of a known field (matched without regard to case,
/// including its old aliases), or None for a field it carries through as is.
/// Dropped fields map to a name outside STATUS_ORDER.
fn canonical_field(name: &str) -> Option<&'static str> {
    let alias = match name.to_ascii_lowercase().as_str() {
        "recommended" => Some("Recommends"),
        "optional" => Some("Suggests"),
        "class" => Some("Priority"),
        _ => None,
    };
    alias.or_else(|| {
        STATUS_ORDER
            .iter()
            .chain(DROPPED)
            .find(|k| k.eq_ignore_ascii_case(name))
            .copied()
    })
}

/// The fields of a one-stanza control file: (name, value), where a value
/// keeps its continuation lines byte for byte (joined by '\n') and loses
/// only leading blanks and trailing whitespace, as dpkg's parser does.
fn parse_stanza(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut ended = false;
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            ended = !fields.is_empty();
            continue;
        }
        if ended {
            return Err(format!("line {}: more than one stanza", n + 1));
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields
                .last_mut()
                .ok_or_else(|| format!("line {}: continuation line before any field", n + 1))?;
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected \"Field: value\"", n + 1))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("line {}: bad field name {name:?}", n + 1));
        }
        fields.push((
            name.to_string(),
            value.trim_start_matches([' ', '\t']).into(),
        ));
    }
    for (_, value) in &mut fields {
        let trimmed = value.trim_end().len();
        value.truncate(trimmed);
    }
    if fields.is_empty() {
        return Err("empty control file".into());
    }
    Ok(fields)
}

/// The few control fields needed before the stanza is written.
struct Head {
    name: String,
    arch: String,
    multi_arch_same: bool,
}

impl Head {
    fn parse(control: &[u8]) -> std::result::Result<Head, String> {
        let text = std::str::from_utf8(control).map_err(|_| "not UTF-8".to_string())?;
        let fields = parse_stanza(text)?;
        let get = |want: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(want))
                .map(|(_, v)| v.as_str())
        };
        let name = get("Package").ok_or("no Package field")?.to_string();
        let arch = get("Architecture")
            .ok_or("no Architecture field")?
            .to_string();
        let multi_arch_same = get("Multi-Arch").is_some_and(|v| v.eq_ignore_ascii_case("same"));
        let head = Head {
            name,
            arch,
            multi_arch_same,
        };
        check_name_parts(&head.name, &head.arch)?;
        Ok(head)
    }
}

/// Rejects package and architecture names dpkg would refuse; they end up
/// in file names.
fn check_name_parts(name: &str, arch: &str) -> std::result::Result<(), String> {
    let name_ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !name_ok {
        return Err(format!("bad package name {name:?}"));
    }
    let arch_ok = !arch.is_empty()
        && arch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !arch_ok {
        return Err(format!("bad architecture {arch:?}"));
    }
    Ok(())
}

fn check_name(p: &Installed) -> Result<()> {
    check_name_parts(&p.name, &p.arch)
        .map_err(|m| Error::input(format!("{} (control file)", p.name), m))
}

fn parse_bool(value: &str) -> std::result::Result<bool, String> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(format!("expected yes or no, got {value:?}"))
    }
}

/// One line of the conffiles control file.
struct Conffile {
    path: String,
    /// Listed so dpkg removes it on upgrade; not shipped in data.tar.
    remove_on_upgrade: bool,
}

/// Parses the conffiles control file: one absolute path per line, optionally
/// after a flag ("remove-on-upgrade"); blank lines are skipped.
fn parse_conffiles(bytes: &[u8]) -> std::result::Result<Vec<Conffile>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            continue;
        }
        let (flag, path) = if line.starts_with('/') {
            (None, line)
        } else {
            match line.split_once(' ') {
                Some((flag, path)) => (Some(flag), path.trim_start()),
                None => (None, line),
            }
        };
        let remove_on_upgrade = match flag {
            None => false,
            Some("remove-on-upgrade") => true,
            Some(other) => return Err(format!("unknown flag {other:?} in {line:?}")),
        };
        if !path.starts_with('/') {
            return Err(format!("{path:?} is not an absolute path"));
        }
        out.push(Conffile {
            path: path.to_string(),
            remove_on_upgrade,
        });
    }
    Ok(out)
}

/// The package's trigger interests from its triggers control file:
/// (trigger name or path, noawait), in file order. Activations are ignored
/// (they are pending work, not state of an installed package).
fn triggers_of(p: &Installed) -> Result<Vec<(String, bool)>> {
    let Some(bytes) = p.control_files.get("triggers") else {
        return Ok(Vec::new());
    };
    let bad = |m: String| Error::input(format!("{} (triggers control file)", p.name), m);
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (directive, name) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(format!("bad line {line:?}")))?;
        let name = name.trim();
        let noawait = match directive {
            "interest" | "interest-await" => false,
            "interest-noawait" => true,
            "activate" | "activate-await" | "activate-noawait" => continue,
            _ => return Err(bad(format!("unknown directive {directive:?}"))),
        };
        let printable = !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic());
        let file_ok = !name.starts_with('/') || !name.contains("/../");
        let explicit_ok = name.starts_with('/')
            || !(name.contains('/') || ["File", "Unincorp", "Lock", ".", ".."].contains(&name));
        if !(printable && file_ok && explicit_ok) {
            return Err(bad(format!("bad trigger name {name:?}")));
        }
        out.push((name.to_string(), noawait));
    }
    Ok(out)
}

/// A data.tar member name as dpkg records it: leading "./" and "/" dropped,
/// trailing "/" dropped, then rooted at "/" ("./" becomes "/.").
fn dpkg_path(raw: &[u8]) -> std::result::Result<String, String> {
    let s = std::str::from_utf8(raw).map_err(|_| {
        format!(
            "member name {:?} is not UTF-8",
            String::from_utf8_lossy(raw)
        )
    })?;
    let mut s = s;
    while s.len() > 1 && s.ends_with('/') {
        s = &s[..s.len() - 1];
    }
    loop {
        if let Some(rest) = s.strip_prefix("./") {
            s = rest;
        } else if let Some(rest) = s.strip_prefix('/') {
            s = rest;
        } else {
            break;
        }
    }
    if s.is_empty() {
        return Ok("/.".into());
    }
    Ok(format!("/{s}"))
}

/// A version as dpkg prints it: a zero epoch dropped unless a colon
/// elsewhere needs it. None when it does not parse (then it stays as is).
fn normalize_version(v: &str) -> Option<String> {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (e.parse::<u32>().ok()?, r)
        }
        None => (0, v),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    if upstream.is_empty() || rest.ends_with('-') || rest.contains(char::is_whitespace) {
        return None;
    }
    let mut out = String::new();
    if epoch != 0 || upstream.contains(':') || revision.contains(':') {
        out.push_str(&format!("{epoch}:"));
    }
    out.push_str(upstream);
    if !revision.is_empty() {
        out.push('-');
        out.push_str(revision);
    }
    Some(out)
}

/// A relationship field as dpkg prints it: "a (>= 1), b | c:any".
/// None when something does not parse (then it stays as is).
fn normalize_relations(value: &str) -> Option<String> {
    let mut out = String::new();
    for (i, group) in value.split(',').enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, alternative) in group.split('|').enumerate() {
            if j > 0 {
                out.push_str(" | ");
            }
            out.push_str(&normalize_relation(alternative)?);
        }
    }
    Some(out)
}

fn normalize_relation(s: &str) -> Option<String> {
    let s = s.trim();
    let end = s
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    if name.is_empty() || name.contains([')', '[', ']', '<', '>']) {
        return None;
    }
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Some(name.to_string());
    }
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?.trim();
    let (op, version) = ["<<", "<=", ">=", ">>", "=", "<", ">"]
        .iter()
        .find_map(|op| inner.strip_prefix(op).map(|v| (*op, v)))?;
    // The single-character forms are obsolete spellings of <= and >=.
    let op = match op {
        "<" => "<=",
        ">" => ">=",
        op => op,
    };
    let version = version.trim();
    if version.is_empty() || version.contains(['(', ')']) {
        return None;
    }
    Some(format!("{name} ({op} {})", normalize_version(version)?))
}

/// Hashing state shared with the reader under the tar archive.
#[derive(Default)]
struct TapState {
    hasher: Option<Md5>,
    /// Content bytes of the current entry still to hash.
    left: u64,
}

/// Passes the data.tar stream through, hashing the current entry's content
/// when asked, so entries are read only once.
struct Tap<'a> {
    inner: Box<dyn Read + 'a>,
    state: Rc<RefCell<TapState>>,
}

impl Read for Tap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.borrow_mut();
        let TapState { hasher, left } = &mut *state;
        if let Some(hasher) = hasher {
            let take = (n as u64).min(*left) as usize;
            hasher.update(&buf[..take]);
            *left -= take as u64;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::deb::tests::{append_raw, ar, gzip, tar_of, xz};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn md5_hex(b: &[u8]) -> String {
        hex::encode(Md5::digest(b))
    }

    const CONTROL: &str = "\
Description: a test package
 with a second line with trailing spaces   
 .
 and more
Homepage: https://example.invalid/hello
Depends: libc6 (>= 2.34),libfoo(<<2)|  libbar
Version: 0:1.0-1
Architecture: amd64
X-Custom-Field: kept
Maintainer: Someone <someone@example.invalid>
Multi-Arch: same
Essential: no
Priority: Optional
Package: hello
Installed-Size: 12
Section: utils
Source: hello-src
Protected: yes
Pre-Depends: dpkg (>= 1.15)
Cnf-Extra: last
";

    const TRIGGERS: &str = "\
# comment
interest-noawait /usr/share/hello/plugins
interest hello-refresh
interest-await /usr/lib/hello
activate-noawait ldconfig
";

    /// A .deb built by hand: control.tar.gz and data.tar.xz in an ar archive.
    fn build_deb(dir: &Path, control: &str, with_md5sums: bool) -> PathBuf {
        let conf = b"setting=1\n";
        let bin = b"\x7fELF pretend\n";
        let md5sums = format!("{}  usr/bin/hello\n", md5_hex(bin));
        let mut ctl: Vec<(&str, u32, &[u8])> = vec![
            ("./", 0o755, b""),
            ("./control", 0o644, control.as_bytes()),
            (
                "./conffiles",
                0o644,
                b"/etc/hello.conf\nremove-on-upgrade /etc/old.conf\n",
            ),
            ("./postinst", 0o755, b"#!/bin/sh\nexit 0\n"),
            ("./triggers", 0o644, TRIGGERS.as_bytes()),
            ("./shlibs", 0o644, b"libhello 1 hello\n"),
            ("./odd.name", 0o644, b"skipped by dpkg\n"),
        ];
        if with_md5sums {
            ctl.push(("./md5sums", 0o644, md5sums.as_bytes()));
        }
        let control_tar = gzip(&tar_of(&ctl));

        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
            let mode = if kind.is_dir() { 0o755 } else { 0o644 };
            append_raw(&mut b, path, kind, mode, data, link);
        };
        use tar::EntryType as T;
        add("./", T::Directory, b"", None);
        add("./etc/", T::Directory, b"", None);
        add("./etc/hello.conf", T::Regular, conf, None);
        add("./usr/", T::Directory, b"", None);
        add("./usr/bin/", T::Directory, b"", None);
        add("./usr/bin/hello", T::Regular, bin, None);
        add("./usr/bin/hi", T::Symlink, b"", Some("hello"));
        add("./usr/bin/hello2", T::Link, b"", Some("./usr/bin/hello"));
        let long = format!("./usr/share/{}/file", "d".repeat(120));
        add(&long, T::Regular, b"", None);
        let data_tar = xz(&b.into_inner().unwrap());

        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &control_tar),
            ("data.tar.xz", &data_tar),
        ]);
        let p = dir.join("hello.deb");
        std::fs::write(&p, deb).unwrap();
        p
    }

    #[test]
    fn reads_a_handmade_package() {
        let dir = tempfile::tempdir().unwrap();
        let p = build_deb(dir.path(), CONTROL, true);
        let deb = Deb::open(&p).unwrap();
        let mut streamed = Vec::new();
        let mut read_conf = Vec::new();
        let pkg = read_package(&deb, &mut |e| {
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            // Read one file fully and leave the others unread: hashing must
            // see the bytes either way.
            if path == "./etc/hello.conf" {
                e.read_to_end(&mut read_conf).unwrap();
            }
            streamed.push(path);
            Ok(())
        })
        .unwrap();
        assert_eq!(read_conf, b"setting=1\n");
        assert_eq!(streamed.len(), 9);
        assert_eq!(pkg.name, "hello");
        assert_eq!(pkg.arch, "amd64");
        assert!(pkg.multi_arch_same);
        assert_eq!(pkg.info_name(), "hello:amd64");
        let long = format!("/usr/share/{}/file", "d".repeat(120));
        assert_eq!(
            pkg.list,
            vec![
                "/.",
                "/etc",
                "/etc/hello.conf",
                "/usr",
                "/usr/bin",
                "/usr/bin/hello",
                "/usr/bin/hi",
                "/usr/bin/hello2",
                long.as_str(),
            ]
        );
        assert_eq!(
            pkg.conffile_md5,
            BTreeMap::from([("/etc/hello.conf".to_string(), md5_hex(b"setting=1\n"))])
        );
        // The shipped md5sums is kept as is.
        assert_eq!(
            pkg.control_files["md5sums"],
            format!("{}  usr/bin/hello\n", md5_hex(b"\x7fELF pretend\n")).into_bytes()
        );

        let stanza = status_stanza(&pkg).unwrap();
        let want = format!(
            "\
Package: hello
Protected: yes
Status: install ok installed
Priority: optional
Section: utils
Installed-Size: 12
Maintainer: Someone <someone@example.invalid>
Architecture: amd64
Multi-Arch: same
Source: hello-src
Version: 1.0-1
Depends: libc6 (>= 2.34), libfoo (<< 2) | libbar
Pre-Depends: dpkg (>= 1.15)
Conffiles:
 /etc/hello.conf {}
 /etc/old.conf newconffile remove-on-upgrade
Description: a test package
 with a second line with trailing spaces   
 .
 and more
Homepage: https://example.invalid/hello
X-Custom-Field: kept
Cnf-Extra: last
",
            md5_hex(b"setting=1\n")
        );
        assert_eq!(stanza, want);
    }

    #[test]
    fn generates_md5sums_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = build_deb(dir.path(), CONTROL, false);
        let pkg = read_package(&Deb::open(&p).unwrap(), &mut |_| Ok(())).unwrap();
        let bin = md5_hex(b"\x7fELF pretend\n");
        let long = format!("usr/share/{}/file", "d".repeat(120));
        let want = format!(
            "{}  etc/hello.conf\n{bin}  usr/bin/hello\n{bin}  usr/bin/hello2\n{}  {long}\n",
            md5_hex(b"setting=1\n"),
            md5_hex(b""),
        );
        assert_eq!(String::from_utf8_lossy(&pkg.control_files["md5sums"]), want);
    }

    #[test]
    fn database_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = build_deb(dir.path(), CONTROL, true);
        let hello = read_package(&Deb::open(&p).unwrap(), &mut |_| Ok(())).unwrap();
        // A second, plain package interested in the same file trigger and
        // the explicit one, listed first in unpack order.
        let other = Installed {
            name: "aaa".into(),
            arch: "all".into(),
            multi_arch_same: false,
            control: b"Package: aaa\nVersion: 1\nArchitecture: all\nDescription: x\n".to_vec(),
            control_files: BTreeMap::from([(
                "triggers".to_string(),
                b"interest hello-refresh\ninterest /usr/share/hello/plugins\n".to_vec(),
            )]),
            list: vec!["/.".into()],
            conffile_md5: BTreeMap::new(),
        };
        let diversions = vec![(
            "/bin/sh".to_string(),
            "/bin/sh.distrib".to_string(),
            "dash".to_string(),
        )];
        let db = database(&[other.clone(), hello.clone()], &diversions).unwrap();
        let get = |path: &str| {
            db.iter()
                .find(|(p, _, _)| p == path)
                .map(|(_, b, m)| (String::from_utf8(b.clone()).unwrap(), *m))
                .unwrap_or_else(|| panic!("{path} missing"))
        };
        let mut sorted = db.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(db, sorted);

        let status = get("var/lib/dpkg/status").0;
        assert_eq!(
            status,
            format!(
                "{}\n{}\n",
                status_stanza(&other).unwrap(),
                status_stanza(&hello).unwrap()
            )
        );
        assert!(status.starts_with("Package: aaa\nStatus: install ok installed\n"));
        assert_eq!(get("var/lib/dpkg/info/format"), ("1\n".into(), 0o644));
        assert_eq!(get("var/lib/dpkg/info/aaa.list"), ("/.\n".into(), 0o644));
        assert_eq!(get("var/lib/dpkg/info/hello:amd64.list").1, 0o644);
        assert!(
            get("var/lib/dpkg/info/hello:amd64.list")
                .0
                .starts_with("/.\n/etc\n/etc/hello.conf\n/usr\n")
        );
        assert_eq!(get("var/lib/dpkg/info/hello:amd64.postinst").1, 0o755);
        assert_eq!(get("var/lib/dpkg/info/hello:amd64.shlibs").1, 0o644);
        assert_eq!(
            get("var/lib/dpkg/info/hello:amd64.conffiles").0,
            "/etc/hello.conf\nremove-on-upgrade /etc/old.conf\n"
        );
        assert!(db.iter().all(|(p, _, _)| !p.ends_with(".control")
            && !p.contains("odd.name")
            && !p.ends_with("hello:amd64.odd")));
        assert_eq!(
            get("var/lib/dpkg/triggers/File").0,
            "/usr/share/hello/plugins aaa\n/usr/share/hello/plugins hello:amd64/noawait\n\
             /usr/lib/hello hello:amd64\n"
        );
        assert_eq!(
            get("var/lib/dpkg/triggers/hello-refresh").0,
            "aaa\nhello:amd64\n"
        );
        assert!(
            db.iter()
                .all(|(p, _, _)| p != "var/lib/dpkg/triggers/ldconfig")
        );
        assert_eq!(
            get("var/lib/dpkg/diversions").0,
            "/bin/sh\n/bin/sh.distrib\ndash\n"
        );
        assert_eq!(get("var/lib/dpkg/lock"), (String::new(), 0o640));
        assert_eq!(get("var/lib/dpkg/lock-frontend"), (String::new(), 0o640));
        assert_eq!(get("var/lib/dpkg/triggers/Lock"), (String::new(), 0o600));
        assert_eq!(
            get("var/lib/dpkg/triggers/Unincorp"),
            (String::new(), 0o644)
        );
        assert_eq!(get("var/lib/dpkg/updates/"), (String::new(), 0o755));

        // Without diversions there is no diversions file; a package given
        // twice is refused.
        let plain = Installed {
            control_files: BTreeMap::new(),
            ..other.clone()
        };
        let db = database(std::slice::from_ref(&plain), &[]).unwrap();
        assert!(db.iter().all(|(p, _, _)| p != "var/lib/dpkg/diversions"));
        assert!(db.iter().all(|(p, _, _)| p != "var/lib/dpkg/triggers/File"));
        let err = database(&[other.clone(), other], &[]).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
    }

    #[test]
    fn control_errors_name_the_deb() {
        let dir = tempfile::tempdir().unwrap();
        for (control, want) in [
            ("Architecture: all\n", "no Package field"),
            ("Package: ../x\nArchitecture: all\n", "bad package name"),
            (
                "Package: x1\nArchitecture: all\nEssential: maybe\n",
                "expected yes or no",
            ),
            (
                "Package: x1\nArchitecture: all\nDepends: a\ndepends: b\n",
                "duplicate field",
            ),
            (" continued\n", "continuation line"),
        ] {
            let p = build_deb(dir.path(), control, true);
            let err = read_package(&Deb::open(&p).unwrap(), &mut |_| Ok(()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{control:?}: {err}");
            assert!(err.contains("hello.deb"), "{control:?}: {err}");
        }
    }

    #[test]
    fn data_errors_name_the_deb_and_member() {
        let dir = tempfile::tempdir().unwrap();
        let control = gzip(&tar_of(&[(
            "./control",
            0o644,
            b"Package: x1\nArchitecture: all\n",
        )]));
        let data = xz(&tar_of(&[
            ("./", 0o755, b""),
            ("./big", 0o644, &[7u8; 100_000]),
        ]));
        let cut = &data[..data.len() / 2];
        let p = dir.path().join("cut.deb");
        std::fs::write(
            &p,
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &control),
                ("data.tar.xz", cut),
            ]),
        )
        .unwrap();
        let err = read_package(&Deb::open(&p).unwrap(), &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cut.deb") && err.contains("data.tar.xz"),
            "{err}"
        );
    }

    #[test]
    fn normalizes_like_dpkg() {
        assert_eq!(normalize_version("0:1.2-3").as_deref(), Some("1.2-3"));
        assert_eq!(normalize_version("2:1.2").as_deref(), Some("2:1.2"));
        assert_eq!(normalize_version("0:1:2-3").as_deref(), Some("0:1:2-3"));
        assert_eq!(normalize_version("1.0-"), None);
        assert_eq!(
            normalize_relations("a:any(>=1) |b, c (< 2)").as_deref(),
            Some("a:any (>= 1) | b, c (<= 2)")
        );
        assert_eq!(normalize_relations("a, "), None);
        assert_eq!(dpkg_path(b"./").unwrap(), "/.");
        assert_eq!(dpkg_path(b".").unwrap(), "/.");
        assert_eq!(dpkg_path(b"./usr/bin/").unwrap(), "/usr/bin");
        assert_eq!(dpkg_path(b"usr/x").unwrap(), "/usr/x");
        assert_eq!(dpkg_path(b"/usr/x").unwrap(), "/usr/x");
    }

    // ---- Against dpkg itself. ----

    /// Skips (or fails under CI) when something the test needs is missing.
    fn skip(why: &str) {
        if std::env::var_os("CI").is_some() {
            panic!("cannot run the dpkg comparison under CI: {why}");
        }
        eprintln!("skipping: {why}");
    }

    /// Packages chosen for coverage: an Essential package with a preinst
    /// that honours DPKG_ROOT, Description lines with trailing spaces,
    /// conffiles, templates and config, Multi-Arch: same libraries (one
    /// with a file trigger), explicit and file trigger interests.
    const REAL: &[&str] = &[
        "base-passwd",
        "libgdbm6",
        "ca-certificates",
        "libzstd1",
        "mawk",
        "debianutils",
        "libc-bin",
        "libgdk-pixbuf-2.0-0",
    ];

    #[test]
    fn matches_dpkg_for_real_packages() {
        if Command::new("dpkg").arg("--version").output().is_err() {
            return skip("dpkg is not installed");
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip("dpkg --root needs root to chown unpacked files");
        }
        let tmp = tempfile::tempdir().unwrap();
        let debs_dir = tmp.path().join("debs");
        std::fs::create_dir(&debs_dir).unwrap();
        let got = Command::new("apt-get")
            .arg("download")
            .args(REAL)
            .current_dir(&debs_dir)
            .output();
        match got {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return skip(&format!(
                    "apt-get download failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return skip(&format!("apt-get not runnable: {e}")),
        }
        // In REAL order, which is the order dpkg unpacks them in below.
        let mut debs = Vec::new();
        for name in REAL {
            let prefix = format!("{name}_");
            let found = std::fs::read_dir(&debs_dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&prefix)
                })
                .unwrap_or_else(|| panic!("{name} was not downloaded"));
            debs.push(found);
        }

        let summary = compare_with_dpkg(tmp.path(), &debs);
        eprintln!("real packages: {summary}");
    }

    /// Unpacks `debs` (in order) with dpkg into an empty root under `tmp`,
    /// generates our database for the same packages, and asserts that every
    /// file dpkg wrote under info/ and triggers/ (bytes and mode), the lock
    /// files and the status file match. Returns what was compared.
    fn compare_with_dpkg(tmp: &Path, debs: &[PathBuf]) -> String {
        use std::os::unix::fs::PermissionsExt;
        // dpkg's tree: an empty admin dir; maintainer scripts run without
        // chroot against DPKG_ROOT (of the packages used here only
        // base-passwd has a preinst, the one script --unpack runs, and it
        // writes under DPKG_ROOT/etc).
        let root = tmp.join("root");
        let admin = root.join(ADMINDIR);
        for d in ["info", "updates", "triggers"] {
            std::fs::create_dir_all(admin.join(d)).unwrap();
        }
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(admin.join("status"), b"").unwrap();
        let out = Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-not-root",
                "--force-depends",
                "--force-script-chrootless",
                "--unpack",
            ])
            .args(debs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dpkg --unpack failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        // Ours, streaming each data.tar once.
        let mut pkgs = Vec::new();
        for d in debs {
            let deb = Deb::open(d).unwrap();
            let mut n = 0;
            let pkg = read_package(&deb, &mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, pkg.list.len());
            pkgs.push(pkg);
        }
        let db = database(&pkgs, &[]).unwrap();
        let ours: BTreeMap<&str, (&[u8], u32)> = db
            .iter()
            .map(|(p, b, m)| (p.as_str(), (b.as_slice(), *m)))
            .collect();

        // Every file dpkg wrote under info/ and triggers/, and its lock
        // files, byte for byte and mode for mode.
        let mut compared = Vec::new();
        let mut theirs_files = Vec::new();
        for sub in ["info", "triggers"] {
            for e in std::fs::read_dir(admin.join(sub)).unwrap() {
                let e = e.unwrap();
                theirs_files.push((format!("{sub}/"), e.path()));
            }
        }
        for name in ["lock", "lock-frontend"] {
            theirs_files.push((String::new(), admin.join(name)));
        }
        for (sub, path) in theirs_files {
            let rel = format!(
                "{ADMINDIR}/{sub}{}",
                path.file_name().unwrap().to_string_lossy()
            );
            let theirs = std::fs::read(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
            let (bytes, our_mode) = ours
                .get(rel.as_str())
                .unwrap_or_else(|| panic!("dpkg wrote {rel}; we did not"));
            assert!(
                *bytes == theirs.as_slice(),
                "{rel} differs:\n--- dpkg\n{}\n--- ours\n{}",
                String::from_utf8_lossy(&theirs),
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(*our_mode, mode, "{rel} mode");
            compared.push(rel);
        }
        // And nothing under info/ or triggers/ that dpkg did not write.
        for (p, _, _) in &db {
            let under = p.starts_with(&format!("{ADMINDIR}/info/"))
                || p.starts_with(&format!("{ADMINDIR}/triggers/"));
            if under && !p.ends_with('/') {
                assert!(compared.contains(p), "we wrote {p}; dpkg did not");
            }
        }

        // The status file: dpkg's unpacked stanzas become ours once the
        // status says installed and each "newconffile" placeholder is the
        // md5 of the file dpkg unpacked (as <path>.dpkg-new); dpkg fills
        // those in when it configures.
        let theirs = std::fs::read_to_string(admin.join("status")).unwrap();
        let mut fixed = String::new();
        let mut conffiles = 0;
        for line in theirs.split_inclusive('\n') {
            if line == "Status: install ok unpacked\n" {
                fixed.push_str("Status: install ok installed\n");
            } else if let Some(path) = line
                .strip_prefix(' ')
                .and_then(|l| l.strip_suffix(" newconffile\n"))
            {
                let unpacked =
                    std::fs::read(root.join(format!("{}.dpkg-new", &path[1..]))).unwrap();
                fixed.push_str(&format!(" {path} {}\n", md5_hex(&unpacked)));
                conffiles += 1;
            } else {
                assert!(!line.starts_with("Config-Version:"), "{line}");
                fixed.push_str(line);
            }
        }
        assert!(conffiles > 0, "no conffiles compared");
        let (status, _) = ours[&*format!("{ADMINDIR}/status")];
        assert_eq!(String::from_utf8_lossy(status), fixed);
        compared.sort();
        format!(
            "status matched ({} stanzas, {conffiles} conffile md5s); {} files matched: {}",
            pkgs.len(),
            compared.len(),
            compared.join(" ")
        )
    }

    /// Packages built by dpkg-deb itself, one per compression it offers,
    /// with what real archives rarely combine: no md5sums (dpkg generates
    /// one), a hard link, an empty file, a long name, a remove-on-upgrade
    /// conffile, shuffled and unknown control fields, loosely spaced
    /// relations, and trigger interests shared between packages.
    #[test]
    fn matches_dpkg_for_built_packages() {
        use std::os::unix::fs::PermissionsExt;
        let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
        if !have("dpkg") || !have("dpkg-deb") {
            return skip("dpkg or dpkg-deb is not installed");
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip("dpkg --root needs root to chown unpacked files");
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut debs = Vec::new();
        for (i, z) in ["xz", "zstd", "gzip", "none"].iter().enumerate() {
            let name = format!("hello-{z}");
            let dir = tmp.path().join(&name);
            let mkdir = |rel: &str| {
                let d = dir.join(rel);
                std::fs::create_dir_all(&d).unwrap();
                d
            };
            let write = |rel: &str, bytes: &[u8], mode: u32| {
                let p = dir.join(rel);
                std::fs::write(&p, bytes).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            };
            mkdir("DEBIAN");
            mkdir("etc");
            mkdir(&format!("usr/lib/{name}"));
            let long = format!("usr/share/{name}/{}", "d".repeat(110));
            mkdir(&long);
            let multi_arch = if i == 0 { "Multi-Arch: same\n" } else { "" };
            let control = format!(
                "Description: a test package \n with trailing spaces  \n .\n end\n\
                 X-Unknown: {z}\n\
                 Depends: libc6(>=2.34) |libfoo ,  bar:any\n\
                 Version: 0:2.0-{i}\n\
                 Priority: Optional\n\
                 Essential: yes\n\
                 {multi_arch}\
                 Architecture: amd64\n\
                 Maintainer: Someone <someone@example.invalid>\n\
                 Package: {name}\n\
                 Protected: no\n\
                 Homepage: https://example.invalid/\n"
            );
            write("DEBIAN/control", control.as_bytes(), 0o644);
            write(
                "DEBIAN/conffiles",
                format!("/etc/{name}.conf\nremove-on-upgrade /etc/{name}-gone.conf\n").as_bytes(),
                0o644,
            );
            write(
                "DEBIAN/triggers",
                format!(
                    "interest-noawait /usr/share/{name}\ninterest shared-trigger\n\
                     interest-await /usr/lib/shared-dir\nactivate-noawait ldconfig\n"
                )
                .as_bytes(),
                0o644,
            );
            write("DEBIAN/postinst", b"#!/bin/sh\nexit 0\n", 0o755);
            write(&format!("etc/{name}.conf"), b"setting = 1\n", 0o644);
            write(&format!("usr/lib/{name}/x"), z.as_bytes(), 0o755);
            std::fs::hard_link(
                dir.join(format!("usr/lib/{name}/x")),
                dir.join(format!("usr/lib/{name}/y")),
            )
            .unwrap();
            write(&format!("usr/lib/{name}/empty"), b"", 0o644);
            write(&format!("{long}/f"), b"long\n", 0o644);
            std::os::unix::fs::symlink("x", dir.join(format!("usr/lib/{name}/link"))).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

            let deb = tmp.path().join(format!("{name}.deb"));
            let out = Command::new("dpkg-deb")
                .args([&format!("-Z{z}"), "--root-owner-group", "--build"])
                .arg(&dir)
                .arg(&deb)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "dpkg-deb --build failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            debs.push(deb);
        }
        let summary = compare_with_dpkg(tmp.path(), &debs);
        eprintln!("dpkg-deb built packages: {summary}");
    }
}

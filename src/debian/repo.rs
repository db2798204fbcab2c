//! Debian repository metadata: the apt sources a host has configured, signed
//! `InRelease` files checked with `gpgv`, and `Packages` indices checked
//! against the hashes the signed file lists.
//!
//! Mirrors always come from configuration (apt sources or flags), never from
//! this code. Nothing unverified is parsed: the Release fields are read from
//! the text `gpgv` vouches for, and an index is decompressed only after its
//! size and sha256 match the signed Release.

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::net::{get_bytes, redact};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The largest InRelease accepted; real ones are a few hundred kilobytes.
const INRELEASE_LIMIT: u64 = 64 << 20;
/// The largest decompressed index accepted when the Release does not give
/// the uncompressed size.
const INDEX_LIMIT: u64 = 4 << 30;
/// Attempts per download (connection drops and 5xx answers are retried).
const ATTEMPTS: u32 = 3;
/// Index compressions, most preferred first.
const INDEX_EXTENSIONS: [&str; 5] = [".xz", ".gz", ".zst", ".bz2", ""];

// -----------------------------------------------------------------------------
// Sources
// -----------------------------------------------------------------------------

/// One apt source: a mirror URI with its suites and components.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// Keyring files named by `Signed-By` or `signed-by=`.
    pub signed_by: Vec<PathBuf>,
    /// Set when `Signed-By` holds something other than keyring paths (an
    /// inline key block, key fingerprints). [`keyrings_for`] reports it, so
    /// an unusable entry only fails when it is used.
    pub signed_by_unsupported: Option<String>,
    /// `Architectures` or `arch=`; empty means the host's.
    pub architectures: Vec<String>,
    /// The file the source came from, for messages.
    pub file: PathBuf,
}

impl Source {
    fn new(uri: &str, file: &Path) -> Source {
        Source {
            uri: uri.to_string(),
            suites: Vec::new(),
            components: Vec::new(),
            signed_by: Vec::new(),
            signed_by_unsupported: None,
            architectures: Vec::new(),
            file: file.to_path_buf(),
        }
    }

    /// Reads a `Signed-By` value: keyring paths separated by commas or
    /// spaces. Anything else is recorded as unsupported.
    fn set_signed_by(&mut self, value: &str) {
        if value.contains("BEGIN PGP PUBLIC KEY BLOCK") {
            self.signed_by_unsupported = Some(
                "Signed-By holds an inline key block, which is not supported; \
                 save the key to a file and name that file in Signed-By"
                    .into(),
            );
            return;
        }
        for token in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            if token.starts_with('/') {
                self.signed_by.push(PathBuf::from(token));
            } else {
                self.signed_by_unsupported = Some(format!(
                    "Signed-By value {token:?} is not an absolute keyring path \
                     (key fingerprints are not supported; name the keyring file)"
                ));
            }
        }
    }
}

/// The `deb` sources configured on a host whose root is `root` ("/"
/// normally): `etc/apt/sources.list`, then `etc/apt/sources.list.d/*.list`
/// and `*.sources` in name order. `deb-src` entries and disabled ones are
/// skipped. Signed-By paths are taken to be inside `root`.
pub fn host_sources(root: &Path) -> Result<Vec<Source>> {
    let etc = root.join("etc/apt");
    let mut files = Vec::new();
    let list = etc.join("sources.list");
    if list.is_file() {
        files.push(list);
    }
    let dir = etc.join("sources.list.d");
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut parts = Vec::new();
            for entry in entries {
                let entry = entry.ctx(|| format!("reading {}", dir.display()))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                // apt ignores names with other characters (backups, editor files).
                let plain = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if plain && (name.ends_with(".list") || name.ends_with(".sources")) {
                    parts.push(entry.path());
                }
            }
            parts.sort();
            files.extend(parts.into_iter().filter(|p| p.is_file()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    }
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).ctx(|| format!("reading {}", file.display()))?;
        let mut found = if file.extension().is_some_and(|e| e == "sources") {
            parse_deb822(&text, &file)?
        } else {
            parse_one_line(&text, &file)?
        };
        for s in &mut found {
            for k in &mut s.signed_by {
                *k = under_root(root, k);
            }
        }
        out.extend(found);
    }
    Ok(out)
}

fn under_root(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new("/") {
        return path.to_path_buf();
    }
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Parses the one-line format: `deb [options] uri suite component...`.
/// Options read are `arch=` and `signed-by=`; others (`trusted=` among
/// them) change nothing here, since every suite is verified.
pub fn parse_one_line(text: &str, file: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |message: String| Error::input(file, format!("line {}: {message}", i + 1));
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match kind {
            "deb" => {}
            "deb-src" => continue,
            other => {
                return Err(at(format!(
                    "unknown entry type {other:?} (expected deb or deb-src)"
                )));
            }
        }
        let rest = rest.trim_start();
        let (options, rest) = match rest.strip_prefix('[') {
            Some(r) => {
                let end = r
                    .find(']')
                    .ok_or_else(|| at("the [ option list is not closed".into()))?;
                (&r[..end], &r[end + 1..])
            }
            None => ("", rest),
        };
        let mut words = rest.split_whitespace();
        let uri = words
            .next()
            .ok_or_else(|| at("the mirror URI is missing".into()))?;
        let suite = words
            .next()
            .ok_or_else(|| at(format!("the suite after {uri} is missing")))?;
        let mut source = Source::new(uri, file);
        source.suites.push(suite.to_string());
        source.components = words.map(String::from).collect();
        if source.components.is_empty() && !suite.ends_with('/') {
            return Err(at(format!(
                "suite {suite} has no components (only a suite ending in / may omit them)"
            )));
        }
        for option in options.split_whitespace() {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| at(format!("option {option:?} is not key=value")))?;
            match key {
                "arch" => source.architectures = split_list(value),
                "signed-by" => source.set_signed_by(value),
                _ => {}
            }
        }
        out.push(source);
    }
    Ok(out)
}

/// Parses the deb822 format (`*.sources`): paragraphs with `Types`, `URIs`,
/// `Suites`, `Components`, `Signed-By`, `Architectures` and `Enabled`. Each
/// URI of a paragraph becomes one [`Source`].
pub fn parse_deb822(text: &str, file: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for para in paragraphs(text, file)? {
        let at = |message: String| {
            Error::input(file, format!("paragraph at line {}: {message}", para.line))
        };
        let need = |name: &str| {
            para.get(name)
                .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| at(format!("{name} is missing or empty")))
        };
        if let Some(v) = para.get("Enabled") {
            match parse_bool(v) {
                Some(true) => {}
                Some(false) => continue,
                None => return Err(at(format!("Enabled: {v:?} is not yes or no"))),
            }
        }
        let mut deb = false;
        for t in need("Types")? {
            match t.as_str() {
                "deb" => deb = true,
                "deb-src" => {}
                other => {
                    return Err(at(format!(
                        "unknown type {other:?} in Types (expected deb or deb-src)"
                    )));
                }
            }
        }
        if !deb {
            continue;
        }
        let uris = need("URIs")?;
        let suites = need("Suites")?;
        let components = match para.get("Components") {
            Some(v) => split_list(v),
            None => Vec::new(),
        };
        if components.is_empty() && !suites.iter().all(|s| s.ends_with('/')) {
            return Err(at(
                "Components is missing (only suites ending in / may omit it)".into(),
            ));
        }
        for uri in &uris {
            let mut source = Source::new(uri, file);
            source.suites = suites.clone();
            source.components = components.clone();
            if let Some(v) = para.get("Architectures") {
                source.architectures = split_list(v);
            }
            if let Some(v) = para.get("Signed-By") {
                source.set_signed_by(v);
            }
            out.push(source);
        }
    }
    Ok(out)
}

/// The keyrings to verify a source with: its Signed-By, else `default`
/// (a `--keyring` flag, or the distribution keyring the caller found).
pub fn keyrings_for(source: &Source, default: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if let Some(why) = &source.signed_by_unsupported {
        return Err(Error::input(
            &source.file,
            format!("source {}: {why}", redact(&source.uri)),
        ));
    }
    if !source.signed_by.is_empty() {
        return Ok(source.signed_by.clone());
    }
    if default.is_empty() {
        return Err(Error::input(
            &source.file,
            format!(
                "source {} has no Signed-By and no default keyring was given; \
                 add Signed-By or name a keyring",
                redact(&source.uri)
            ),
        ));
    }
    Ok(default.to_vec())
}

/// Splits a list written with spaces or commas.
fn split_list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Some(true),
        "no" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

// -----------------------------------------------------------------------------
// deb822 paragraphs
// -----------------------------------------------------------------------------

/// One deb822 paragraph. Field names compare without case, as apt does.
struct Paragraph {
    /// 1-based line of its first field.
    line: usize,
    /// Name as written, and value: the first line's text, then each
    /// continuation line trimmed, joined by newlines.
    fields: Vec<(String, String)>,
}

impl Paragraph {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits deb822 text into paragraphs. Lines starting with `#` are comments
/// wherever they are; blank lines end a paragraph.
fn paragraphs(text: &str, origin: &Path) -> Result<Vec<Paragraph>> {
    let mut out = Vec::new();
    let mut current: Option<Paragraph> = None;
    for (i, line) in text.lines().enumerate() {
        let at = |message: &str| Error::input(origin, format!("line {}: {message}", i + 1));
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let field = current
                .as_mut()
                .and_then(|p| p.fields.last_mut())
                .ok_or_else(|| at("a continuation line outside any field"))?;
            field.1.push('\n');
            field.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| at("expected `Field: value`"))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(at(&format!("{name:?} is not a field name")));
        }
        let para = current.get_or_insert_with(|| Paragraph {
            line: i + 1,
            fields: Vec::new(),
        });
        if para.get(name).is_some() {
            return Err(at(&format!("field {name} appears twice in one paragraph")));
        }
        para.fields
            .push((name.to_string(), value.trim().to_string()));
    }
    out.extend(current);
    Ok(out)
}

// -----------------------------------------------------------------------------
// Release files
// -----------------------------------------------------------------------------

/// A parsed, verified Release file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    /// `Suite`, or `Codename` when the file has no `Suite`.
    pub suite: String,
    pub codename: Option<String>,
    pub version: Option<String>,
    /// Unix seconds.
    pub date: i64,
    /// Unix seconds; set on suites that must be refreshed (security).
    pub valid_until: Option<i64>,
    /// Indices can be fetched under `by-hash/SHA256/<hex>`.
    pub acquire_by_hash: bool,
    /// `No-Support-for-Architecture-all: Packages`: `all` packages sit in
    /// each architecture's Packages file, not in a `binary-all` one.
    pub no_support_for_architecture_all: bool,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Path → (size, sha256 hex), from the SHA256 section.
    pub sha256: BTreeMap<String, (u64, String)>,
    /// sha256 of the InRelease bytes as fetched, to pin the suite in a lock;
    /// empty when the Release was parsed from text alone.
    pub inrelease_sha256: String,
}

/// Parses a Release body (the text `gpgv` verified). `what` names its
/// source in errors.
pub fn parse_release(body: &str, what: &str) -> Result<Release> {
    let origin = Path::new(what);
    let err = |message: String| Error::input(origin, message);
    let mut paras = paragraphs(body, origin)?;
    if paras.len() != 1 {
        return Err(err(format!(
            "a Release file has one paragraph, this one has {}",
            paras.len()
        )));
    }
    let p = paras.remove(0);
    let text = |name: &str| p.get(name).map(str::to_string);
    let list = |name: &str| p.get(name).map(split_list).unwrap_or_default();
    let suite = p
        .get("Suite")
        .or(p.get("Codename"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("the Release has neither Suite nor Codename".into()))?
        .to_string();
    let date = p
        .get("Date")
        .ok_or_else(|| err("the Release has no Date".into()))
        .and_then(|v| parse_date(v, &format!("{what}: Date")))?;
    let valid_until = p
        .get("Valid-Until")
        .map(|v| parse_date(v, &format!("{what}: Valid-Until")))
        .transpose()?;
    let acquire_by_hash = match p.get("Acquire-By-Hash") {
        None => false,
        Some(v) => {
            parse_bool(v).ok_or_else(|| err(format!("Acquire-By-Hash: {v:?} is not yes or no")))?
        }
    };
    let no_support_for_architecture_all = p
        .get("No-Support-for-Architecture-all")
        .is_some_and(|v| v.split_whitespace().any(|w| w == "Packages"));
    let table = p.get("SHA256").ok_or_else(|| {
        err("the Release has no SHA256 section (only SHA256 hashes are trusted)".into())
    })?;
    let mut sha256 = BTreeMap::new();
    for entry in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = entry.split_whitespace();
        let (Some(hex), Some(size), Some(path), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(err(format!(
                "SHA256 entry {entry:?} is not `<sha256> <size> <path>`"
            )));
        };
        if Digest::parse_hex(hex).is_none() {
            return Err(err(format!(
                "SHA256 entry {entry:?}: {hex:?} is not 64 hex digits"
            )));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| err(format!("SHA256 entry {entry:?}: {size:?} is not a size")))?;
        let value = (size, hex.to_ascii_lowercase());
        if let Some(before) = sha256.insert(path.to_string(), value.clone())
            && before != value
        {
            return Err(err(format!(
                "SHA256 lists {path} twice with different sizes or hashes"
            )));
        }
    }
    Ok(Release {
        origin: text("Origin"),
        label: text("Label"),
        suite,
        codename: text("Codename"),
        version: text("Version"),
        date,
        valid_until,
        acquire_by_hash,
        no_support_for_architecture_all,
        architectures: list("Architectures"),
        components: list("Components"),
        sha256,
        inrelease_sha256: String::new(),
    })
}

/// Fails when `now` (unix seconds) is past the Release's Valid-Until. A
/// stale or replayed suite is refused at fetch time; replays from a pinned
/// lock do not call this.
pub fn check_valid_until(r: &Release, now: i64, what: &str) -> Result<()> {
    match r.valid_until {
        Some(until) if now > until => Err(Error::input(
            what,
            format!(
                "the Release of suite {} expired: Valid-Until is {} ({until}), now is {} ({now}); \
                 the mirror serves stale metadata",
                r.suite,
                format_date(until),
                format_date(now)
            ),
        )),
        _ => Ok(()),
    }
}

/// Parses an RFC 2822 date as Debian's archive tools write it ("Sat, 11 Jul
/// 2026 09:12:34 UTC") into unix seconds. The weekday and the seconds are
/// optional, and a weekday that does not match the date is let pass, as apt
/// lets it; the zone is UTC, GMT, UT, Z or a `+hhmm`/`-hhmm` offset (RFC
/// 2822 would read any other name, CEST included, as UTC: refused here).
pub fn parse_date(text: &str, what: &str) -> Result<i64> {
    date_seconds(text).map_err(|why| {
        Error::Other(format!(
            "{what}: {text:?} is not a date like \"Sat, 11 Jul 2026 09:12:34 UTC\": {why}"
        ))
    })
}

fn date_seconds(text: &str) -> std::result::Result<i64, String> {
    static PARSER: jiff::fmt::rfc2822::DateTimeParser =
        jiff::fmt::rfc2822::DateTimeParser::new().relaxed_weekday(true);
    let zone = text.split_whitespace().next_back().unwrap_or_default();
    if !matches!(zone, "UTC" | "GMT" | "UT" | "Z") && !zone.starts_with(['+', '-']) {
        return Err(format!("{zone:?} is not a time zone"));
    }
    PARSER
        .parse_timestamp(text.trim())
        .map(|t| t.as_second())
        .map_err(|e| e.to_string())
}

/// Unix seconds as Debian writes dates, for messages.
fn format_date(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string(),
        Err(_) => format!("{secs} seconds since 1970"),
    }
}

// -----------------------------------------------------------------------------
// Signatures
// -----------------------------------------------------------------------------

/// Checks a clearsigned InRelease with `gpgv` against `keyrings` and returns
/// the signed text as `gpgv` outputs it. At least one signature must be good
/// (made with a strong hash by a valid key in the keyrings) and none bad;
/// signatures by keys not in the keyrings are ignored, as apt does. `what`
/// names the file in errors.
pub fn verify_inrelease(signed: &[u8], keyrings: &[PathBuf], what: &str) -> Result<Vec<u8>> {
    verify_with("gpgv", signed, keyrings, what)
}

fn verify_with(program: &str, signed: &[u8], keyrings: &[PathBuf], what: &str) -> Result<Vec<u8>> {
    let fail = |message: String| Error::input(what, message);
    if keyrings.is_empty() {
        return Err(fail(
            "no keyring to verify the signature with (set Signed-By or name a keyring)".into(),
        ));
    }
    check_clearsigned(signed).map_err(|m| fail(format!("not a clearsigned InRelease: {m}")))?;
    let dir = tempfile::tempdir().ctx(|| "creating a temporary directory for gpgv".into())?;
    let input = dir.path().join("InRelease");
    std::fs::write(&input, signed).ctx(|| format!("writing {}", input.display()))?;
    let body = dir.path().join("body");
    let mut cmd = Command::new(program);
    // Status lines on stdout, the verified text to a file, and a private
    // home so the user's gnupg files are neither read nor created.
    cmd.arg("--homedir")
        .arg(dir.path())
        .args(["--status-fd", "1", "--output"])
        .arg(&body);
    for (i, k) in keyrings.iter().enumerate() {
        cmd.arg("--keyring").arg(keyring_arg(k, dir.path(), i)?);
    }
    cmd.arg(&input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!(
                "cannot verify the signature: {program} is not installed \
                 (install the gpgv package)"
            )));
        }
        Err(e) => return Err(Error::io(format!("running {program} on {what}"), e)),
    };
    let status = String::from_utf8_lossy(&out.stdout);
    let report = SigReport::read(&status);
    let keyring_list = keyrings
        .iter()
        .map(|k| k.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let log = String::from_utf8_lossy(&out.stderr);
    let log: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("gpgv:"))
        .collect();
    let log_tail = log[log.len().saturating_sub(3)..].join(" / ");
    if let Some(bad) = report.sigs.iter().find_map(|s| s.bad.as_ref()) {
        return Err(fail(format!(
            "BAD signature from key {bad}: the file was altered or corrupted (nothing was kept)"
        )));
    }
    if report.plaintexts != 1 {
        return Err(fail(format!(
            "gpgv found no single signed text to check (it said: {log_tail})"
        )));
    }
    let good: Vec<&Sig> = report.sigs.iter().filter(|s| s.is_good()).collect();
    if good.is_empty() {
        let reasons: Vec<String> = report.sigs.iter().map(Sig::why_not).collect();
        let reasons = if reasons.is_empty() {
            format!("gpgv found no signature (it said: {log_tail})")
        } else {
            reasons.join("; ")
        };
        return Err(fail(format!(
            "no good signature by a key in {keyring_list}: {reasons}"
        )));
    }
    // gpgv exits non-zero when some signature's key is unknown; that is
    // fine beside a good one, anything else (such as a failed write of the
    // text) is not.
    let explained =
        report.sigs.iter().all(|s| s.is_good() || s.no_key) && report.sigs.iter().any(|s| s.no_key);
    if !out.status.success() && !explained {
        return Err(fail(format!("gpgv failed ({}): {log_tail}", out.status)));
    }
    std::fs::read(&body).ctx(|| format!("reading the text gpgv verified from {what}"))
}

/// The keyring path to give gpgv: absolute (gpgv reads a bare name from
/// its home directory), and dearmored into `dir` when the file is ASCII
/// armored, which gpgv cannot read.
fn keyring_arg(keyring: &Path, dir: &Path, index: usize) -> Result<PathBuf> {
    let abs = std::path::absolute(keyring).ctx(|| format!("resolving {}", keyring.display()))?;
    let bytes = std::fs::read(&abs)
        .map_err(|e| Error::input(&abs, format!("cannot read the keyring: {e}")))?;
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN PGP") {
        return Ok(abs);
    }
    let binary = dearmor(&bytes).map_err(|m| Error::input(&abs, m))?;
    let path = dir.join(format!("keyring-{index}.gpg"));
    std::fs::write(&path, binary).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Decodes every `PUBLIC KEY BLOCK` of an ASCII-armored keyring.
fn dearmor(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the armored keyring is not text")?;
    let mut out = Vec::new();
    let mut blocks = 0;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "-----BEGIN PGP PUBLIC KEY BLOCK-----" {
            continue;
        }
        blocks += 1;
        let mut b64 = String::new();
        let mut headers = true;
        let mut ended = false;
        for l in lines.by_ref() {
            if l == "-----END PGP PUBLIC KEY BLOCK-----" {
                ended = true;
                break;
            }
            // Armor headers ("Comment: …") come first; base64 has no ':'.
            if headers && l.contains(':') {
                continue;
            }
            headers = false;
            // The line starting with '=' is the armor checksum.
            if !l.starts_with('=') {
                b64.push_str(l);
            }
        }
        if !ended {
            return Err("the armored keyring has an unterminated key block".into());
        }
        out.extend(base64_decode(&b64)?);
    }
    if blocks == 0 {
        return Err("the armored file holds no PGP PUBLIC KEY BLOCK".into());
    }
    Ok(out)
}

/// The base64 body of an armored block (RFC 4880 §6: standard alphabet,
/// padded); padding may be left off, nothing else is forgiven.
fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(text)
        .map_err(|e| format!("the armored key block is not base64: {e}"))
}

/// Hooks for the fuzz targets (`crate::fuzzing`).
#[doc(hidden)]
pub mod fuzzing {
    /// The frame check of a clearsigned InRelease.
    pub fn clearsigned(signed: &[u8]) {
        let _ = super::check_clearsigned(signed);
    }
}

/// Checks the frame of a clearsigned file: nothing before the header, one
/// signed text, one signature block, nothing after. Text outside the
/// signed part is never accepted, even if gpgv would skip it.
fn check_clearsigned(signed: &[u8]) -> std::result::Result<(), String> {
    let text = std::str::from_utf8(signed).map_err(|_| "the file is not UTF-8 text")?;
    #[derive(PartialEq)]
    enum At {
        Start,
        Text,
        Signature,
        End,
    }
    let mut at = At::Start;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let n = i + 1;
        match at {
            At::Start if line.is_empty() => {}
            At::Start if line == "-----BEGIN PGP SIGNED MESSAGE-----" => at = At::Text,
            At::Start => return Err(format!("line {n}: text before the signed message")),
            At::Text if line == "-----BEGIN PGP SIGNATURE-----" => at = At::Signature,
            At::Text if line.starts_with("-----") => {
                return Err(format!("line {n}: unexpected armor line {line:?}"));
            }
            At::Signature if line == "-----END PGP SIGNATURE-----" => at = At::End,
            At::Signature if line.starts_with("-----") => {
                return Err(format!("line {n}: unexpected armor line {line:?}"));
            }
            At::End if !line.is_empty() => {
                return Err(format!("line {n}: text after the signature"));
            }
            _ => {}
        }
    }
    if at != At::End {
        return Err("expected BEGIN PGP SIGNED MESSAGE, the text, and one signature block".into());
    }
    Ok(())
}

/// What gpgv's status lines say about one signature.
#[derive(Default)]
struct Sig {
    good: Option<String>,
    /// Fingerprint and hash algorithm from VALIDSIG.
    valid: Option<(String, u32)>,
    bad: Option<String>,
    /// ERRSIG with its key id and return code.
    error: Option<(String, String)>,
    no_key: bool,
    expired_key: Option<String>,
    revoked_key: Option<String>,
    expired_sig: bool,
}

impl Sig {
    /// OpenPGP hash algorithms 1, 2 and 3 (MD5, SHA-1, RIPEMD-160) are weak.
    fn weak_hash(&self) -> bool {
        self.valid
            .as_ref()
            .is_some_and(|(_, h)| (1..=3).contains(h))
    }

    fn is_good(&self) -> bool {
        self.good.is_some() && self.valid.is_some() && !self.weak_hash() && self.bad.is_none()
    }

    fn why_not(&self) -> String {
        if let Some((key, rc)) = &self.error {
            return if self.no_key {
                format!("key {key} is not in the keyrings")
            } else {
                format!("the signature by key {key} could not be checked (gpgv code {rc})")
            };
        }
        if let Some(k) = &self.expired_key {
            return format!("key {k} has expired");
        }
        if let Some(k) = &self.revoked_key {
            return format!("key {k} is revoked");
        }
        if self.expired_sig {
            return "the signature has expired".into();
        }
        if self.weak_hash() {
            let (fpr, hash) = self.valid.as_ref().expect("weak_hash implies VALIDSIG");
            return format!("the signature by {fpr} uses weak hash algorithm {hash}");
        }
        "the signature is not valid".into()
    }
}

/// gpgv's status output, one entry per signature.
struct SigReport {
    sigs: Vec<Sig>,
    plaintexts: usize,
}

impl SigReport {
    fn read(status: &str) -> SigReport {
        let mut report = SigReport {
            sigs: Vec::new(),
            plaintexts: 0,
        };
        for line in status.lines() {
            let Some(rest) = line.strip_prefix("[GNUPG:] ") else {
                continue;
            };
            let mut words = rest.split(' ');
            let keyword = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            let first = args.first().copied().unwrap_or("").to_string();
            if keyword == "PLAINTEXT" {
                report.plaintexts += 1;
                continue;
            }
            if keyword == "NEWSIG" || report.sigs.is_empty() {
                report.sigs.push(Sig::default());
                if keyword == "NEWSIG" {
                    continue;
                }
            }
            let sig = report.sigs.last_mut().expect("pushed above");
            let key_and_uid = || args.join(" ");
            match keyword {
                "GOODSIG" => sig.good = Some(key_and_uid()),
                "BADSIG" => sig.bad = Some(key_and_uid()),
                "VALIDSIG" => {
                    // Field 8 is the hash algorithm.
                    let hash = args.get(7).and_then(|h| h.parse().ok()).unwrap_or(0);
                    sig.valid = Some((first, hash));
                }
                "ERRSIG" => {
                    let rc = args.get(5).copied().unwrap_or("").to_string();
                    sig.no_key |= rc == "9";
                    sig.error = Some((first, rc));
                }
                "NO_PUBKEY" => sig.no_key = true,
                "EXPKEYSIG" => sig.expired_key = Some(key_and_uid()),
                "REVKEYSIG" => sig.revoked_key = Some(key_and_uid()),
                "EXPSIG" => sig.expired_sig = true,
                _ => {}
            }
        }
        // A leading entry with nothing in it (status lines before NEWSIG).
        report.sigs.retain(|s| {
            s.good.is_some()
                || s.valid.is_some()
                || s.bad.is_some()
                || s.error.is_some()
                || s.expired_key.is_some()
                || s.revoked_key.is_some()
                || s.expired_sig
                || s.no_key
        });
        report
    }
}

// -----------------------------------------------------------------------------
// Fetching
// -----------------------------------------------------------------------------

/// `<uri>/dists/<suite>`, with apt's `file:/path` spelled as a URL.
fn suite_url(uri: &str, suite: &str) -> String {
    let uri = uri.trim_end_matches('/');
    let uri = match uri.strip_prefix("file:") {
        Some(rest) if !rest.starts_with("//") => format!("file://{rest}"),
        _ => uri.to_string(),
    };
    format!("{uri}/dists/{}", suite.trim_matches('/'))
}

/// At most `limit + 1` bytes of `url` (one more, so that callers can tell
/// an oversized answer), with retries on transient failures.
fn download(url: &str, limit: u64) -> Result<Vec<u8>> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300 << attempt));
        }
        match get_bytes(url, limit.saturating_add(1)) {
            Ok(bytes) => return Ok(bytes),
            Err(e)
                if matches!(e, Error::Other(_) | Error::Io { .. })
                    || e.registry_status().is_some_and(|s| s.http >= 500) =>
            {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Fetches `<uri>/dists/<suite>/InRelease`, verifies it against
/// `keyrings`, parses it, checks that it is the suite asked for and that
/// its Valid-Until has not passed at `now` (unix seconds).
pub fn fetch_release(uri: &str, suite: &str, keyrings: &[PathBuf], now: i64) -> Result<Release> {
    let url = format!("{}/InRelease", suite_url(uri, suite));
    let shown = redact(&url);
    if suite.ends_with('/') {
        return Err(Error::Unsupported {
            what: format!("the flat repository {shown} (a suite ending in /)"),
            hint: Some("use a repository with a dists/ tree".into()),
        });
    }
    let signed = download(&url, INRELEASE_LIMIT)?;
    if signed.len() as u64 > INRELEASE_LIMIT {
        return Err(Error::input(
            &shown,
            format!("larger than {INRELEASE_LIMIT} bytes; not an InRelease file"),
        ));
    }
    let r = read_inrelease(&signed, keyrings, &shown)?;
    check_suite(&r, suite, &shown)?;
    check_valid_until(&r, now, &shown)?;
    Ok(r)
}

/// Verifies and parses InRelease bytes already at hand (a pinned copy, for
/// instance). Valid-Until is not checked here: a replay must not depend on
/// the clock.
pub fn read_inrelease(signed: &[u8], keyrings: &[PathBuf], what: &str) -> Result<Release> {
    let body = verify_inrelease(signed, keyrings, what)?;
    let text = String::from_utf8(body)
        .map_err(|e| Error::input(what, format!("the signed text is not UTF-8: {e}")))?;
    let mut r = parse_release(&text, what)?;
    r.inrelease_sha256 = Digest::of(signed).hex();
    Ok(r)
}

/// A mirror must not answer for one suite with another suite's (validly
/// signed) Release. `bookworm/updates` style names match on the codename.
fn check_suite(r: &Release, suite: &str, what: &str) -> Result<()> {
    let asked = suite.trim_matches('/');
    let head = asked.split('/').next().unwrap_or(asked);
    let codename = r.codename.as_deref();
    if r.suite == asked || codename == Some(asked) || codename == Some(head) {
        return Ok(());
    }
    Err(Error::input(
        what,
        format!(
            "asked for suite {asked}, but the signed Release is for Suite {} (Codename {}); \
             the mirror serves another suite's metadata",
            r.suite,
            codename.unwrap_or("none")
        ),
    ))
}

/// Fetches `<component>/binary-<arch>/Packages` of a suite and returns its
/// text. The compressed form the Release lists is preferred (.xz, .gz,
/// .zst, .bz2, then plain), fetched by hash when the Release says
/// Acquire-By-Hash (falling back to the plain name if the by-hash copy is
/// missing), and checked for size and sha256 against `r` before it is
/// decompressed. A mismatch fails naming the URL and both hashes; nothing
/// is kept.
pub fn fetch_packages(
    uri: &str,
    suite: &str,
    component: &str,
    arch: &str,
    r: &Release,
) -> Result<String> {
    let base = suite_url(uri, suite);
    let dir = format!("{component}/binary-{arch}");
    let Some((ext, path, size, hex)) = INDEX_EXTENSIONS.iter().find_map(|ext| {
        let path = format!("{dir}/Packages{ext}");
        r.sha256
            .get(&path)
            .map(|(size, hex)| (*ext, path, *size, hex.clone()))
    }) else {
        return Err(Error::input(
            redact(&format!("{base}/Release")),
            format!(
                "the signed Release of suite {suite} lists no {dir}/Packages index \
                 (Components: {}; Architectures: {})",
                r.components.join(" "),
                r.architectures.join(" ")
            ),
        ));
    };
    let plain_url = format!("{base}/{path}");
    let (bytes, url) = if r.acquire_by_hash {
        let by_hash = format!("{base}/{dir}/by-hash/SHA256/{hex}");
        match download(&by_hash, size) {
            Ok(bytes) => (bytes, by_hash),
            // Mirrors sometimes lag behind on by-hash; the hash check below
            // holds either way.
            Err(first) => match download(&plain_url, size) {
                Ok(bytes) => (bytes, plain_url),
                Err(second) => {
                    return Err(Error::Other(format!(
                        "cannot fetch {path} of suite {suite}: {first}; then {second}"
                    )));
                }
            },
        }
    } else {
        (download(&plain_url, size)?, plain_url)
    };
    check_bytes(&bytes, size, &hex, &url, "the signed Release")?;
    // The uncompressed entry, when listed, bounds and checks the output too.
    let unpacked = if ext.is_empty() {
        bytes
    } else {
        let expected = r.sha256.get(&format!("{dir}/Packages"));
        let limit = expected.map_or(INDEX_LIMIT, |(s, _)| s.saturating_add(1));
        let text = decompress(&bytes, ext, limit, &url)?;
        if let Some((size, hex)) = expected {
            let what = format!("{url} (decompressed)");
            check_bytes(
                &text,
                *size,
                hex,
                &what,
                "the signed Release's uncompressed entry",
            )?;
        }
        text
    };
    String::from_utf8(unpacked)
        .map_err(|e| Error::input(redact(&url), format!("the index is not UTF-8 text: {e}")))
}

/// Checks downloaded bytes against the size and sha256 `claim` gives.
fn check_bytes(bytes: &[u8], size: u64, hex: &str, url: &str, claim: &str) -> Result<()> {
    let got = if bytes.len() as u64 > size {
        format!("more than {size} bytes")
    } else {
        let actual = Digest::of(bytes).hex();
        if bytes.len() as u64 == size && actual.eq_ignore_ascii_case(hex) {
            return Ok(());
        }
        format!("{} bytes with sha256:{actual}", bytes.len())
    };
    Err(Error::input(
        redact(url),
        format!("got {got}, {claim} says {size} bytes with sha256:{hex} (nothing was kept)"),
    ))
}

fn decompress(bytes: &[u8], ext: &str, limit: u64, url: &str) -> Result<Vec<u8>> {
    let reader: Box<dyn Read + '_> = match ext {
        ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(bytes)),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        ".zst" => Box::new(
            zstd::stream::read::Decoder::new(bytes)
                .ctx(|| format!("starting to decompress {}", redact(url)))?,
        ),
        ".bz2" => Box::new(bzip2::read::MultiBzDecoder::new(bytes)),
        _ => return Ok(bytes.to_vec()),
    };
    let mut out = Vec::new();
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::input(redact(url), format!("cannot decompress: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    // ------------------------------------------------------------------ sources

    #[test]
    fn one_line_sources() {
        let text = "\
# a comment line
deb [arch=amd64 signed-by=/x.gpg] http://mirror.example/archive stable main contrib # trailing
deb-src http://mirror.example/archive stable main

deb [ arch=amd64,arm64 trusted=yes ] https://user:pw@mirror.example/sec stable-security main
   deb http://mirror.example/flat ./
";
        let f = Path::new("/etc/apt/sources.list");
        let s = parse_one_line(text, f).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].uri, "http://mirror.example/archive");
        assert_eq!(s[0].suites, ["stable"]);
        assert_eq!(s[0].components, ["main", "contrib"]);
        assert_eq!(s[0].architectures, ["amd64"]);
        assert_eq!(s[0].signed_by, [PathBuf::from("/x.gpg")]);
        assert_eq!(s[0].file, f);
        assert_eq!(s[1].architectures, ["amd64", "arm64"]);
        assert!(s[1].signed_by.is_empty());
        assert_eq!(s[1].suites, ["stable-security"]);
        assert_eq!(s[2].suites, ["./"]);
        assert!(s[2].components.is_empty());

        let e = parse_one_line("deb http://m.example stable main\ndeb-foo x y z\n", f)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sources.list: line 2:") && e.contains("deb-foo"),
            "{e}"
        );
        let e = parse_one_line("deb http://m.example stable\n", f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("no components"), "{e}");
        let e = parse_one_line("deb [arch=amd64 http://m.example stable main\n", f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not closed"), "{e}");
    }

    #[test]
    fn deb822_sources() {
        let text = "\
Types: deb
# a comment inside a paragraph
URIs: http://mirror.example/archive https://mirror2.example/archive
Suites: stable stable-updates
Components: main
Signed-By: /usr/share/keyrings/some-keyring.gpg

Types: deb
URIs: http://mirror.example/disabled
Suites: stable
Components: main
Enabled: no

types: deb-src deb
uris: http://mirror.example/sec
suites: stable-security
components: main non-free
architectures: amd64 arm64

Types: deb-src
URIs: http://mirror.example/src
Suites: stable
Components: main

Types: deb
URIs: http://mirror.example/inline
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 aGVsbG8=
 -----END PGP PUBLIC KEY BLOCK-----
";
        let f = Path::new("/etc/apt/sources.list.d/x.sources");
        let s = parse_deb822(text, f).unwrap();
        assert_eq!(s.len(), 4, "{s:#?}");
        assert_eq!(s[0].uri, "http://mirror.example/archive");
        assert_eq!(s[1].uri, "https://mirror2.example/archive");
        for x in &s[..2] {
            assert_eq!(x.suites, ["stable", "stable-updates"]);
            assert_eq!(x.components, ["main"]);
            assert_eq!(
                x.signed_by,
                [PathBuf::from("/usr/share/keyrings/some-keyring.gpg")]
            );
        }
        assert_eq!(s[2].uri, "http://mirror.example/sec");
        assert_eq!(s[2].components, ["main", "non-free"]);
        assert_eq!(s[2].architectures, ["amd64", "arm64"]);
        assert!(s[2].signed_by.is_empty());
        assert_eq!(s[3].uri, "http://mirror.example/inline");
        assert!(s[3].signed_by_unsupported.is_some());

        // Keyrings: Signed-By first, then the default; inline keys fail on use.
        let default = [PathBuf::from("/default.gpg")];
        assert_eq!(keyrings_for(&s[0], &default).unwrap(), s[0].signed_by);
        assert_eq!(keyrings_for(&s[2], &default).unwrap(), default);
        let e = keyrings_for(&s[2], &[]).unwrap_err().to_string();
        assert!(e.contains("no Signed-By") && e.contains("/sec"), "{e}");
        let e = keyrings_for(&s[3], &default).unwrap_err().to_string();
        assert!(
            e.contains("x.sources") && e.contains("inline key block"),
            "{e}"
        );

        let e = parse_deb822("Types: deb\nURIs: http://m.example\nComponents: main\n", f)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1") && e.contains("Suites is missing"),
            "{e}"
        );
        let e = parse_deb822("Types: deb\nURIs http://m.example\n", f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_deb822("Types: deb\nSuites: a\nSuites: b\n", f)
            .unwrap_err()
            .to_string();
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn host_sources_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/apt");
        std::fs::create_dir_all(etc.join("sources.list.d")).unwrap();
        std::fs::write(
            etc.join("sources.list"),
            "deb [signed-by=/k/one.gpg] http://mirror.example/a stable main\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("sources.list.d/b.sources"),
            "Types: deb\nURIs: http://mirror.example/b\nSuites: s\nComponents: main\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("sources.list.d/a.list"),
            "deb http://mirror.example/c s main\n",
        )
        .unwrap();
        // Not a source file: ignored.
        std::fs::write(
            etc.join("sources.list.d/d.list.disabled"),
            "deb http://mirror.example/d s main\n",
        )
        .unwrap();
        let s = host_sources(root.path()).unwrap();
        let uris: Vec<&str> = s.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "http://mirror.example/a",
                "http://mirror.example/c",
                "http://mirror.example/b"
            ]
        );
        assert_eq!(s[0].signed_by, [root.path().join("k/one.gpg")]);
        // A root with no apt configuration has no sources.
        let empty = tempfile::tempdir().unwrap();
        assert!(host_sources(empty.path()).unwrap().is_empty());
    }

    // ------------------------------------------------------------------ dates

    #[test]
    fn dates() {
        let d = |s: &str| parse_date(s, "test").unwrap();
        assert_eq!(d("Thu, 01 Jan 1970 00:00:00 UTC"), 0);
        // 1970..2026 is 56 years with 14 leap days: 20454 days. Jan..Jun 2026
        // is 181 days, plus 10 to the 11th: 20645 days = 1_783_728_000 s,
        // plus 10:16:37 = 36_997 s.
        assert_eq!(d("Sat, 11 Jul 2026 10:16:37 UTC"), 1_783_764_997);
        // 10957 days to 2000, +59 to 29 Feb = 11016 days = 951_782_400 s, + 12 h.
        assert_eq!(d("Tue, 29 Feb 2000 12:00:00 UTC"), 951_825_600);
        // 20454 days to 2026, +334 (Jan..Nov) +1 = 20789 days, + 02:22:30.
        assert_eq!(d("Wed, 02 Dec 2026 02:22:30 UTC"), 1_796_178_150);
        // The well-known billennium, in UTC and with an offset.
        assert_eq!(d("Sun, 09 Sep 2001 01:46:40 UTC"), 1_000_000_000);
        assert_eq!(d("Sun, 09 Sep 2001 03:46:40 +0200"), 1_000_000_000);
        assert_eq!(d("Sat, 08 Sep 2001 20:46:40 -0500"), 1_000_000_000);
        // 54 years with 13 leap days: 19723 days. No weekday, no seconds, GMT.
        assert_eq!(d("1 Jan 2024 00:00 GMT"), 1_704_067_200);
        for bad in [
            "Sat, 31 Feb 2026 00:00:00 UTC",
            "Sat, 29 Feb 2026 00:00:00 UTC",
            "Sat, 11 Foo 2026 00:00:00 UTC",
            "Sat, 11 Jul 2026 24:00:00 UTC",
            "Sat, 11 Jul 2026 10:16:37",
            "Sat, 11 Jul 2026 10:16:37 CEST",
            "Sat, 11 Jul 2026 10:16:37 +02",
            "Xyz, 11 Jul 2026 10:16:37 UTC",
            "2026-07-11T10:16:37Z",
            "",
        ] {
            let e = parse_date(bad, "R: Date").unwrap_err().to_string();
            assert!(e.starts_with("R: Date: "), "{bad:?}: {e}");
        }
        assert_eq!(format_date(1_783_764_997), "Sat, 11 Jul 2026 10:16:37 UTC");
        assert_eq!(format_date(951_825_600), "Tue, 29 Feb 2000 12:00:00 UTC");
        assert_eq!(format_date(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        for t in [1_796_178_150, 1_704_067_200, 1_000_000_000] {
            assert_eq!(d(&format_date(t)), t);
        }
        assert_eq!(
            format_date(i64::MAX),
            format!("{} seconds since 1970", i64::MAX)
        );
    }

    /// What the calendar crate decides where the hand-written parser was
    /// silent or stricter: a weekday that does not match still passes (as
    /// apt lets it), a two-digit year is read as RFC 2822's obsolete form,
    /// a zone name other than UTC, GMT, UT or Z is refused.
    #[test]
    fn date_edge_cases() {
        let d = |s: &str| parse_date(s, "test").map_err(|e| e.to_string());
        assert_eq!(d("Mon, 11 Jul 2026 10:16:37 UTC"), Ok(1_783_764_997));
        assert_eq!(d("Sat, 11 Jul 26 10:16:37 UTC"), Ok(1_783_764_997));
        for bad in [
            "Sat, 11 Jul 2026 10:16:37 EST",
            "Sat, 11 Jul 2026 10:16:37 +9900",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    // ------------------------------------------------------------------ Release

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn release_text(extra: &str, table: &str) -> String {
        format!(
            "Origin: Example\n\
             Label: Example-Security\n\
             Suite: stable-security\n\
             Codename: trixie-security\n\
             Version: 13\n\
             Date: Sat, 11 Jul 2026 10:16:37 UTC\n\
             {extra}\
             Architectures: amd64 arm64\n\
             Components: updates/main updates/contrib\n\
             Description: a test\n\
             MD5Sum:\n \
             d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages\n\
             SHA256:\n{table}"
        )
    }

    #[test]
    fn release_parsing() {
        let table = format!(
            " {EMPTY_SHA}        0 main/binary-amd64/Packages\n \
             {}   1234 main/binary-amd64/Packages.xz\n",
            EMPTY_SHA.to_uppercase()
        );
        let extra = "Valid-Until: Sat, 18 Jul 2026 10:16:37 UTC\n\
                     Acquire-By-Hash: yes\n\
                     No-Support-for-Architecture-all: Packages\n";
        let r = parse_release(&release_text(extra, &table), "R").unwrap();
        assert_eq!(r.origin.as_deref(), Some("Example"));
        assert_eq!(r.label.as_deref(), Some("Example-Security"));
        assert_eq!(r.suite, "stable-security");
        assert_eq!(r.codename.as_deref(), Some("trixie-security"));
        assert_eq!(r.version.as_deref(), Some("13"));
        assert_eq!(r.date, 1_783_764_997);
        // Seven days later.
        assert_eq!(r.valid_until, Some(1_783_764_997 + 7 * 86400));
        assert!(r.acquire_by_hash);
        assert!(r.no_support_for_architecture_all);
        assert_eq!(r.architectures, ["amd64", "arm64"]);
        assert_eq!(r.components, ["updates/main", "updates/contrib"]);
        assert_eq!(r.sha256.len(), 2);
        assert_eq!(
            r.sha256["main/binary-amd64/Packages"],
            (0, EMPTY_SHA.to_string())
        );
        // Hashes are kept in lowercase.
        assert_eq!(
            r.sha256["main/binary-amd64/Packages.xz"],
            (1234, EMPTY_SHA.to_string())
        );
        assert!(r.inrelease_sha256.is_empty());

        // A main suite: no Valid-Until, no by-hash.
        let r = parse_release(&release_text("", &table), "R").unwrap();
        assert_eq!(r.valid_until, None);
        assert!(!r.acquire_by_hash);
        assert!(!r.no_support_for_architecture_all);

        let bad = |extra: &str, table: &str| {
            parse_release(
                &release_text(extra, table),
                "http://m.example/dists/s/InRelease",
            )
            .unwrap_err()
            .to_string()
        };
        let e = bad("", " abc 1 main/binary-amd64/Packages\n");
        assert!(e.contains("InRelease") && e.contains("not 64 hex"), "{e}");
        let e = bad("", &format!(" {EMPTY_SHA} x main/binary-amd64/Packages\n"));
        assert!(e.contains("not a size"), "{e}");
        let e = bad("", &format!(" {EMPTY_SHA} 1\n"));
        assert!(e.contains("is not `<sha256> <size> <path>`"), "{e}");
        let e = bad("Valid-Until: tomorrow\n", &table);
        assert!(e.contains("Valid-Until") && e.contains("tomorrow"), "{e}");
        let e = bad("Acquire-By-Hash: maybe\n", &table);
        assert!(e.contains("Acquire-By-Hash"), "{e}");
        let e = parse_release("Suite: s\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n", "R")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no SHA256"), "{e}");
        let e = parse_release("Suite: s\nSHA256:\n", "R")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no Date"), "{e}");
        let e = parse_release("Suite: s\n\nSuite: t\n", "R")
            .unwrap_err()
            .to_string();
        assert!(e.contains("one paragraph"), "{e}");
    }

    #[test]
    fn valid_until_boundaries() {
        let table = format!(" {EMPTY_SHA} 0 main/binary-amd64/Packages\n");
        let r = parse_release(
            &release_text("Valid-Until: Sat, 18 Jul 2026 10:16:37 UTC\n", &table),
            "R",
        )
        .unwrap();
        let until = r.valid_until.unwrap();
        check_valid_until(&r, r.date, "R").unwrap();
        check_valid_until(&r, until - 1, "R").unwrap();
        check_valid_until(&r, until, "R").unwrap();
        let e = check_valid_until(&r, until + 1, "http://m.example/dists/s/InRelease")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("InRelease")
                && e.contains("stable-security")
                && e.contains("expired")
                && e.contains("Sat, 18 Jul 2026 10:16:37 UTC")
                && e.contains("Sat, 18 Jul 2026 10:16:38 UTC"),
            "{e}"
        );
        // Without Valid-Until, any time is fine.
        let r = parse_release(&release_text("", &table), "R").unwrap();
        check_valid_until(&r, i64::MAX, "R").unwrap();
    }

    // ------------------------------------------------------------------ signatures

    fn base64_encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn armor_decoding() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(base64_encode(b"hello world"), "aGVsbG8gd29ybGQ=");
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        let armored = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\
                       Comment: test\n\
                       \n\
                       aGVsbG8g\n\
                       d29ybGQ=\n\
                       =abcd\n\
                       -----END PGP PUBLIC KEY BLOCK-----\n";
        assert_eq!(dearmor(armored.as_bytes()).unwrap(), b"hello world");
        assert!(dearmor(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\naGVs\n").is_err());
        assert!(base64_decode("a*b").is_err());
    }

    /// The armor decoder once stopped at the first `=` and read on past
    /// whitespace; now a block body is base64 to its end or an error.
    #[test]
    fn armor_bodies_are_strict_base64() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ").unwrap(), b"hello world");
        assert!(base64_decode("aGVs=bG8g").is_err());
        assert!(base64_decode("aGVs bG8g").is_err());
        assert!(base64_decode("aGVsbG8gd29ybGQ=junk").is_err());
    }

    #[test]
    fn gpgv_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("empty.gpg");
        std::fs::write(&keyring, b"").unwrap();
        let keyrings = [keyring.clone()];

        // Not a clearsigned file at all.
        let e = verify_inrelease(b"garbage\n", &keyrings, "http://m.example/InRelease")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.example/InRelease") && e.contains("not a clearsigned"),
            "{e}"
        );
        // Text outside the signed part.
        let framed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: s\n\
                      -----BEGIN PGP SIGNATURE-----\n\naGVsbG8gd29ybGQ=\n\
                      -----END PGP SIGNATURE-----\n";
        for bad in [
            format!("Suite: evil\n{framed}"),
            format!("{framed}Suite: evil\n"),
        ] {
            let e = verify_inrelease(bad.as_bytes(), &keyrings, "X")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("before the signed") || e.contains("after the signature"),
                "{e}"
            );
        }
        // The right frame around a signature that is garbage: gpgv says no.
        let e = verify_inrelease(framed.as_bytes(), &keyrings, "X")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("X: ") && e.contains("no good signature"),
            "{e}"
        );
        assert!(e.contains(&keyring.display().to_string()), "{e}");
        // No keyring, a missing keyring, a missing gpgv.
        let e = verify_inrelease(framed.as_bytes(), &[], "X")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no keyring"), "{e}");
        let missing = dir.path().join("missing.gpg");
        let e = verify_inrelease(framed.as_bytes(), std::slice::from_ref(&missing), "X")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.gpg") && e.contains("cannot read"),
            "{e}"
        );
        let e = verify_with("imgbuild-no-such-gpgv", framed.as_bytes(), &keyrings, "X")
            .unwrap_err()
            .to_string();
        assert!(e.contains("install the gpgv package"), "{e}");
    }

    #[test]
    fn status_lines() {
        let good = "[GNUPG:] PLAINTEXT 74 0 \n[GNUPG:] NEWSIG\n\
                    [GNUPG:] GOODSIG AAAA Someone\n\
                    [GNUPG:] VALIDSIG FFFF 2026-07-11 1 0 4 0 1 8 01 FFFF\n\
                    [GNUPG:] NEWSIG\n\
                    [GNUPG:] ERRSIG BBBB 1 8 01 1 9 EEEE\n[GNUPG:] NO_PUBKEY BBBB\n\
                    [GNUPG:] NEWSIG\n\
                    [GNUPG:] GOODSIG CCCC Weak\n\
                    [GNUPG:] VALIDSIG DDDD 2026-07-11 1 0 4 0 1 2 01 DDDD\n\
                    [GNUPG:] NEWSIG\n[GNUPG:] EXPKEYSIG 1111 Old\n\
                    [GNUPG:] VALIDSIG 2222 2026-07-11 1 0 4 0 1 8 01 2222\n";
        let r = SigReport::read(good);
        assert_eq!(r.plaintexts, 1);
        assert_eq!(r.sigs.len(), 4);
        assert!(r.sigs[0].is_good());
        assert!(!r.sigs[1].is_good() && r.sigs[1].no_key);
        assert!(r.sigs[1].why_not().contains("BBBB is not in the keyrings"));
        assert!(!r.sigs[2].is_good());
        assert!(r.sigs[2].why_not().contains("weak hash"));
        assert!(!r.sigs[3].is_good());
        assert!(r.sigs[3].why_not().contains("expired"));
    }

    // ------------------------------------------------------------------ Packages from a local mirror

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(bytes, 6)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzEncoder::new(bytes, flate2::Compression::default())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn packages_from_a_local_mirror() {
        let root = tempfile::tempdir().unwrap();
        let uri = format!("file://{}", root.path().display());
        let dir = root.path().join("dists/s/main/binary-amd64");
        std::fs::create_dir_all(dir.join("by-hash/SHA256")).unwrap();
        let text = b"Package: base-files\nVersion: 13.8\n\nPackage: dash\nVersion: 0.5\n";
        let packed = xz(text);
        let packed_hex = Digest::of(&packed).hex();
        let text_hex = Digest::of(text).hex();
        let table = |xz_hex: &str, text_hex: &str| {
            format!(
                " {text_hex} {} main/binary-amd64/Packages\n {xz_hex} {} main/binary-amd64/Packages.xz\n",
                text.len(),
                packed.len()
            )
        };
        let by_hash = "Acquire-By-Hash: yes\n";
        let r = parse_release(&release_text(by_hash, &table(&packed_hex, &text_hex)), "R").unwrap();

        // Only the by-hash copy exists, so that is what was read.
        std::fs::write(dir.join("by-hash/SHA256").join(&packed_hex), &packed).unwrap();
        let got = fetch_packages(&uri, "s", "main", "amd64", &r).unwrap();
        assert_eq!(got.as_bytes(), text);

        // A Release naming another hash: the by-hash name is missing, the
        // plain name is read and does not match.
        std::fs::write(dir.join("Packages.xz"), &packed).unwrap();
        let other = Digest::of(b"other").hex();
        let r2 = parse_release(&release_text(by_hash, &table(&other, &text_hex)), "R").unwrap();
        let e = fetch_packages(&uri, "s", "main", "amd64", &r2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("main/binary-amd64/Packages.xz")
                && e.contains(&format!("sha256:{packed_hex}"))
                && e.contains(&format!("says {} bytes with sha256:{other}", packed.len()))
                && e.contains("nothing was kept"),
            "{e}"
        );

        // Without by-hash the plain name is used; the uncompressed entry is
        // checked after decompression.
        let r3 = parse_release(&release_text("", &table(&packed_hex, &other)), "R").unwrap();
        let e = fetch_packages(&uri, "s", "main", "amd64", &r3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(decompressed)") && e.contains(&text_hex), "{e}");

        // A size mismatch.
        let wrong_size = format!(
            " {packed_hex} {} main/binary-amd64/Packages.xz\n",
            packed.len() - 1
        );
        let r4 = parse_release(&release_text("", &wrong_size), "R").unwrap();
        let e = fetch_packages(&uri, "s", "main", "amd64", &r4)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("more than {} bytes", packed.len() - 1)),
            "{e}"
        );

        // Only a .gz listed, given as a plain path.
        let packed_gz = gz(text);
        std::fs::write(dir.join("Packages.gz"), &packed_gz).unwrap();
        let gz_table = format!(
            " {} {} main/binary-amd64/Packages.gz\n",
            Digest::of(&packed_gz).hex(),
            packed_gz.len()
        );
        let r5 = parse_release(&release_text("", &gz_table), "R").unwrap();
        let plain_path = root.path().display().to_string();
        let got = fetch_packages(&plain_path, "s", "main", "amd64", &r5).unwrap();
        assert_eq!(got.as_bytes(), text);

        // A component the Release does not list.
        let e = fetch_packages(&uri, "s", "contrib", "amd64", &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lists no contrib/binary-amd64/Packages"), "{e}");
    }

    #[test]
    fn suite_urls_and_names() {
        assert_eq!(
            suite_url("http://m.example/a/", "s"),
            "http://m.example/a/dists/s"
        );
        assert_eq!(suite_url("file:/srv/m", "s"), "file:///srv/m/dists/s");
        assert_eq!(suite_url("file:///srv/m", "s"), "file:///srv/m/dists/s");
        let table = format!(" {EMPTY_SHA} 0 x\n");
        let r = parse_release(&release_text("", &table), "R").unwrap();
        check_suite(&r, "stable-security", "R").unwrap();
        check_suite(&r, "trixie-security", "R").unwrap();
        check_suite(&r, "trixie-security/updates", "R").unwrap();
        let e = check_suite(&r, "stable", "R").unwrap_err().to_string();
        assert!(
            e.contains("asked for suite stable") && e.contains("stable-security"),
            "{e}"
        );
    }

    // ------------------------------------------------------------------ online

    /// Online tests skip when the host has no sources or no network, unless
    /// CI is set.
    fn skip(why: impl std::fmt::Display) {
        if std::env::var_os("CI").is_some() {
            panic!("cannot run an online test: {why} (CI is set)");
        }
        println!("skipping: {why}");
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn default_keyrings() -> Vec<PathBuf> {
        let p = PathBuf::from("/usr/share/keyrings/debian-archive-keyring.gpg");
        if p.exists() { vec![p] } else { Vec::new() }
    }

    fn host_arch() -> String {
        if let Ok(out) = Command::new("dpkg").arg("--print-architecture").output()
            && out.status.success()
        {
            let arch = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !arch.is_empty() {
                return arch;
            }
        }
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string()
    }

    struct Online {
        source: Source,
        suite: String,
        keyrings: Vec<PathBuf>,
        /// The first suite's InRelease as fetched.
        signed: Vec<u8>,
    }

    fn online() -> Option<Online> {
        let sources = match host_sources(Path::new("/")) {
            Ok(s) => s,
            Err(e) => {
                skip(format!("cannot read the host's apt sources: {e}"));
                return None;
            }
        };
        let Some(source) = sources
            .into_iter()
            .find(|s| s.suites.first().is_some_and(|x| !x.ends_with('/')))
        else {
            skip("the host has no deb sources");
            return None;
        };
        let keyrings = match keyrings_for(&source, &default_keyrings()) {
            Ok(k) => k,
            Err(e) => {
                skip(e);
                return None;
            }
        };
        let suite = source.suites[0].clone();
        let url = format!("{}/InRelease", suite_url(&source.uri, &suite));
        match get_bytes(&url, INRELEASE_LIMIT) {
            Ok(signed) => Some(Online {
                source,
                suite,
                keyrings,
                signed,
            }),
            Err(e) => {
                skip(format!("no network: {e}"));
                None
            }
        }
    }

    #[test]
    fn online_inrelease_verification() {
        let Some(o) = online() else { return };
        let t = Instant::now();
        let r = fetch_release(&o.source.uri, &o.suite, &o.keyrings, now()).unwrap();
        println!("fetch_release {}: {:?}", o.suite, t.elapsed());
        assert!(r.suite == o.suite || r.codename.as_deref() == Some(o.suite.as_str()));
        assert!(!r.sha256.is_empty());
        assert_eq!(r.inrelease_sha256.len(), 64);

        let t = Instant::now();
        let body = verify_inrelease(&o.signed, &o.keyrings, "InRelease").unwrap();
        println!("verify_inrelease: {:?}", t.elapsed());
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("\nSHA256:\n") && !text.contains("BEGIN PGP"));
        let r = read_inrelease(&o.signed, &o.keyrings, "InRelease").unwrap();
        assert_eq!(r.inrelease_sha256, Digest::of(&o.signed).hex());

        // One byte changed in the Date line of the signed text.
        let mut tampered = o.signed.clone();
        let at = tampered
            .windows(7)
            .position(|w| w == b"\nDate: ")
            .expect("a Date line");
        let digit = (at..tampered.len())
            .find(|&i| tampered[i].is_ascii_digit())
            .unwrap();
        tampered[digit] = if tampered[digit] == b'9' {
            b'8'
        } else {
            tampered[digit] + 1
        };
        let e = verify_inrelease(&tampered, &o.keyrings, "tampered InRelease")
            .unwrap_err()
            .to_string();
        println!("tampered: {e}");
        assert!(
            e.starts_with("tampered InRelease: ") && e.contains("BAD signature"),
            "{e}"
        );

        // An unrelated keyring.
        let removed = PathBuf::from("/usr/share/keyrings/debian-archive-removed-keys.gpg");
        if removed.exists() {
            let e = verify_inrelease(&o.signed, std::slice::from_ref(&removed), "InRelease")
                .unwrap_err()
                .to_string();
            println!("unrelated keyring: {e}");
            assert!(
                e.contains("no good signature") && e.contains("not in the keyrings"),
                "{e}"
            );
        } else {
            println!(
                "skipping the unrelated-keyring check: {} is absent",
                removed.display()
            );
        }

        // The same keyrings, ASCII-armored (gpgv cannot read those itself).
        let dir = tempfile::tempdir().unwrap();
        let mut armored_keyrings = Vec::new();
        for (i, k) in o.keyrings.iter().enumerate() {
            let mut armored = String::from("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n");
            let b64 = base64_encode(&std::fs::read(k).unwrap());
            for line in b64.as_bytes().chunks(64) {
                armored.push_str(std::str::from_utf8(line).unwrap());
                armored.push('\n');
            }
            armored.push_str("=XXXX\n-----END PGP PUBLIC KEY BLOCK-----\n");
            let asc = dir.path().join(format!("keyring-{i}.asc"));
            std::fs::write(&asc, armored).unwrap();
            armored_keyrings.push(asc);
        }
        verify_inrelease(&o.signed, &armored_keyrings, "InRelease").unwrap();
    }

    #[test]
    fn online_valid_until() {
        let Some(o) = online() else { return };
        let sources = host_sources(Path::new("/")).unwrap();
        for source in &sources {
            let Ok(keyrings) = keyrings_for(source, &default_keyrings()) else {
                continue;
            };
            for suite in &source.suites {
                let t = Instant::now();
                let r = match fetch_release(&source.uri, suite, &keyrings, now()) {
                    Ok(r) => r,
                    Err(e) => panic!("{suite}: {e}"),
                };
                println!("fetch_release {suite}: {:?}", t.elapsed());
                let Some(until) = r.valid_until else { continue };
                check_valid_until(&r, r.date, suite).unwrap();
                check_valid_until(&r, until, suite).unwrap();
                let e = check_valid_until(&r, until + 1, suite)
                    .unwrap_err()
                    .to_string();
                println!("expired: {e}");
                assert!(e.contains(&r.suite) && e.contains("expired"), "{e}");
                return;
            }
        }
        println!(
            "skipping: no suite in the host's sources (first: {}) has Valid-Until",
            o.suite
        );
    }

    #[test]
    fn online_packages() {
        let Some(o) = online() else { return };
        let r = fetch_release(&o.source.uri, &o.suite, &o.keyrings, now()).unwrap();
        let component = if o.source.components.iter().any(|c| c == "main") {
            "main".to_string()
        } else {
            o.source.components[0].clone()
        };
        let arch = host_arch();
        let t = Instant::now();
        let text = fetch_packages(&o.source.uri, &o.suite, &component, &arch, &r).unwrap();
        println!(
            "fetch_packages {}/{component}/{arch}: {} bytes in {:?}",
            o.suite,
            text.len(),
            t.elapsed()
        );
        assert!(text.contains("Package: base-files\n"));

        // The Release's entry for that index altered.
        let path = INDEX_EXTENSIONS
            .iter()
            .map(|ext| format!("{component}/binary-{arch}/Packages{ext}"))
            .find(|p| r.sha256.contains_key(p))
            .unwrap();
        let mut altered = r.clone();
        let real = altered.sha256[&path].1.clone();
        let fake = Digest::of(b"not the index").hex();
        altered.sha256.get_mut(&path).unwrap().1 = fake.clone();
        let t = Instant::now();
        let e = fetch_packages(&o.source.uri, &o.suite, &component, &arch, &altered)
            .unwrap_err()
            .to_string();
        println!("altered Release ({:?}): {e}", t.elapsed());
        assert!(
            e.contains(&path) && e.contains(&real) && e.contains(&fake),
            "{e}"
        );
    }
}

//! Git sources (Dockerfile `ADD <git repository>`), fetched with the host's
//! `git` as BuildKit does.
//!
//! - [`is_git_source`] and [`GitSource::parse`] read BuildKit's spellings:
//!   `https://…/repo.git`, `http://…/repo.git`, `git://…`, `ssh://…` and
//!   `user@host:path`, with the fragment `#ref:subdir` or the query form
//!   `?ref=…` / `?branch=…` / `?tag=…`, `&checksum=…` (alias `commit`),
//!   `&subdir=…`, `&submodules=false`.
//! - [`Git::resolve`] turns the ref into a commit with `git ls-remote` (a
//!   small request: planning does it, so the commit can key the layer).
//! - [`Git::checkout`] fetches that one commit (`--depth=1`) into a folder
//!   and checks it out, submodules included; execution does it, and only
//!   when the layer is not cached.
//!
//! git runs without the system's or the user's git configuration (as in
//! BuildKit: the same commit checks out the same files on every machine),
//! never prompts, speaks only http, https, git and ssh (submodules
//! included), trusts the CA files of the [`HttpConfig`] when it names any
//! (`GIT_SSL_CAINFO`), goes through its proxy (the environment's proxy
//! variables, which git reads itself, or one the caller set), and uses
//! `SSH_AUTH_SOCK` for ssh (in batch mode). Every message shows the repository's URL without the
//! credentials it may carry.

use super::{HttpConfig, redact};
use crate::error::{Error, RegistryErrorKind, RegistryStatus, Result};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A git repository and what to take from it, as a Dockerfile names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitSource {
    /// What git is given: the URL without BuildKit's fragment and query.
    pub remote: String,
    /// The branch, tag, ref or full commit to check out; `None`: the
    /// default branch. `?branch=B` is `refs/heads/B`, `?tag=T`
    /// `refs/tags/T`.
    pub reference: Option<String>,
    /// The commit the ref must resolve to (`?checksum=` or `?commit=`): a
    /// full hash or its start.
    pub commit: Option<String>,
    /// The folder of the repository to add, relative ("" for all of it).
    pub subdir: String,
    /// Whether submodules are checked out too (default yes).
    pub submodules: bool,
}

/// A ref resolved to a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The commit (lowercase hex).
    pub commit: String,
    /// The full name of the ref that named it (`refs/heads/main`,
    /// `refs/tags/v1`, `HEAD`); `None` when a commit was given.
    pub refname: Option<String>,
    /// The annotated tag object the ref pointed at, if any.
    pub tag_object: Option<String>,
}

impl Resolved {
    /// Whether `checksum` (a full hash or its start, any case) names the
    /// commit or the annotated tag it was reached through.
    pub fn matches(&self, checksum: &str) -> bool {
        let c = checksum.to_ascii_lowercase();
        !c.is_empty()
            && (self.commit.starts_with(&c)
                || self.tag_object.as_ref().is_some_and(|t| t.starts_with(&c)))
    }
}

/// Whether BuildKit takes `src` as a git repository: `git://` and `ssh://`
/// URLs, `http(s)://` URLs whose path ends with `.git`, and scp-like
/// `user@host:path`.
pub fn is_git_source(src: &str) -> bool {
    if let Some((scheme, rest)) = scheme_split(src) {
        return match scheme.to_ascii_lowercase().as_str() {
            "git" | "ssh" => true,
            "http" | "https" => {
                let end = rest.find(['?', '#']).unwrap_or(rest.len());
                let path = rest[..end].find('/').map(|i| &rest[i..end]);
                path.is_some_and(|p| p.ends_with(".git"))
            }
            _ => false,
        };
    }
    scp_like(src).is_some()
}

/// `scheme://rest` when `src` starts with a scheme of letters and digits.
fn scheme_split(src: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = src.split_once("://")?;
    (!scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some((scheme, rest))
}

/// `(user, host, path)` of an scp-like address `user@host:path`.
fn scp_like(src: &str) -> Option<(&str, &str, &str)> {
    let (user, rest) = src.split_once('@')?;
    let (host, path) = rest.split_once(':')?;
    let user_ok = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (user_ok && host_ok).then_some((user, host, path))
}

impl GitSource {
    /// Reads a git source (one [`is_git_source`] accepts); the error says
    /// what is wrong with it (credentials left out).
    pub fn parse(src: &str) -> std::result::Result<GitSource, String> {
        let (body, fragment) = match src.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (src, None),
        };
        let (remote, query) = match body.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (body, None),
        };
        let shown = redact(remote);
        if remote.is_empty() || remote.ends_with("://") {
            return Err(format!("{shown}: no repository"));
        }
        let mut s = GitSource {
            remote: remote.to_string(),
            reference: None,
            commit: None,
            subdir: String::new(),
            submodules: true,
        };
        let mut subdir: Option<String> = None;
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .map_err(|_| format!("{shown}: query {k}= is not UTF-8"))?
                    .into_owned();
                let k = k.to_ascii_lowercase();
                let once = |slot: &Option<String>| match slot {
                    Some(_) => Err(format!("{shown}: query {k}= is given twice")),
                    None => Ok(()),
                };
                match k.as_str() {
                    "ref" | "branch" | "tag" => {
                        if s.reference.is_some() {
                            return Err(format!(
                                "{shown}: only one of ref=, branch= and tag= can be given"
                            ));
                        }
                        s.reference = Some(match k.as_str() {
                            "branch" => format!("refs/heads/{v}"),
                            "tag" => format!("refs/tags/{v}"),
                            _ => v,
                        });
                    }
                    "checksum" | "commit" => {
                        once(&s.commit)?;
                        s.commit = Some(v);
                    }
                    "subdir" => {
                        once(&subdir)?;
                        subdir = Some(v);
                    }
                    "submodules" => {
                        s.submodules = parse_bool(&v).ok_or_else(|| {
                            format!("{shown}: submodules={v}: expected true or false")
                        })?;
                    }
                    _ => {
                        return Err(format!(
                            "{shown}: unknown query {k}= (expected ref, branch, tag, checksum, commit, subdir or submodules)"
                        ));
                    }
                }
            }
        }
        if let Some(f) = fragment {
            let (r, d) = f.split_once(':').unwrap_or((f, ""));
            if !r.is_empty() {
                if s.reference.is_some() {
                    return Err(format!(
                        "{shown}: the ref is given both in the query and after #"
                    ));
                }
                s.reference = Some(r.to_string());
            }
            if !d.is_empty() {
                if subdir.is_some() {
                    return Err(format!(
                        "{shown}: the subdir is given both in the query and after #"
                    ));
                }
                subdir = Some(d.to_string());
            }
        }
        if s.reference.is_none()
            && let Some(c) = &s.commit
            && is_full_hash(c)
        {
            s.reference = Some(c.clone());
        }
        if let Some(r) = &s.reference {
            check_ref(r).map_err(|m| format!("{shown}: ref {r:?}: {m}"))?;
        }
        if let Some(c) = &s.commit {
            check_checksum(c).map_err(|m| format!("{shown}: checksum {c:?}: {m}"))?;
        }
        if let Some(d) = subdir {
            s.subdir = clean_subdir(&d).map_err(|m| format!("{shown}: subdir {d:?}: {m}"))?;
        }
        Ok(s)
    }

    /// `URL#ref:subdir` for messages, without credentials.
    pub fn display(&self) -> String {
        let mut s = redact(&self.remote);
        if self.reference.is_some() || !self.subdir.is_empty() {
            s.push('#');
            s.push_str(self.reference.as_deref().unwrap_or(""));
        }
        if !self.subdir.is_empty() {
            s.push(':');
            s.push_str(&self.subdir);
        }
        s
    }

    /// The host (with its port) the repository is on, for error reports.
    fn host(&self) -> String {
        if let Some((_, rest)) = scheme_split(&self.remote) {
            let end = rest.find('/').unwrap_or(rest.len());
            let auth = &rest[..end];
            return auth.rsplit('@').next().unwrap_or_default().to_string();
        }
        scp_like(&self.remote)
            .map(|(_, h, _)| h.to_string())
            .unwrap_or_default()
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// A full commit hash: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn is_full_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a commit checksum must look like: 7 to 64 hex digits.
pub fn check_checksum(c: &str) -> std::result::Result<(), String> {
    if (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("expected a commit hash (7 to 64 hex digits)".into())
    }
}

/// A ref git can be given on its command line: no leading `-`, no
/// whitespace or control characters, nothing git's ref names forbid.
fn check_ref(r: &str) -> std::result::Result<(), String> {
    if r.starts_with('-') {
        return Err("must not start with -".into());
    }
    if r.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        || r.contains("..")
        || r.contains("@{")
        || r.ends_with('/')
        || r.ends_with(".lock")
    {
        return Err("is not a valid git ref name".into());
    }
    Ok(())
}

/// A subdir as a clean relative path ("" for the root).
fn clean_subdir(d: &str) -> std::result::Result<String, String> {
    let mut parts = Vec::new();
    for p in d.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err("must stay inside the repository".into()),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// How git is run for one build: the environment every call gets.
pub struct Git {
    env: Vec<(&'static str, OsString)>,
    /// The CA bundle written for git, removed with this value.
    _ca: Option<tempfile::NamedTempFile>,
}

impl Git {
    /// git with the trust of `config`: when it names CA files (or other
    /// system roots), they are written as one bundle into `tmp` for git.
    pub fn new(config: &HttpConfig, tmp: &Path) -> Result<Git> {
        let mut env: Vec<(&'static str, OsString)> = vec![
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
            ("GIT_ALLOW_PROTOCOL", "http:https:git:ssh".into()),
            ("GIT_HTTP_LOW_SPEED_LIMIT", "1".into()),
            ("GIT_HTTP_LOW_SPEED_TIME", "120".into()),
            ("LC_ALL", "C".into()),
        ];
        if std::env::var_os("GIT_SSH_COMMAND").is_none() && std::env::var_os("GIT_SSH").is_none() {
            env.push(("GIT_SSH_COMMAND", "ssh -o BatchMode=yes".into()));
        }
        // A proxy the caller names (the environment's, git reads itself).
        if let Some(p) = config.proxy.as_ref().map(|p| &p.0)
            && !p.is_from_env()
        {
            let scheme = match p.protocol() {
                ureq::ProxyProtocol::Https => "https",
                _ => "http",
            };
            let auth = match (p.username(), p.password()) {
                (Some(u), Some(pw)) => format!("{u}:{pw}@"),
                (Some(u), None) => format!("{u}@"),
                _ => String::new(),
            };
            let url = format!("{scheme}://{auth}{}:{}", p.host(), p.port());
            env.push(("GIT_CONFIG_COUNT", "1".into()));
            env.push(("GIT_CONFIG_KEY_0", "http.proxy".into()));
            env.push(("GIT_CONFIG_VALUE_0", url.into()));
        }
        let mut ca = None;
        if !config.ca_certs.is_empty()
            || config.system_ca_file.is_some()
            || config.system_ca_dir.is_some()
        {
            let certs = super::load_roots(config)?;
            let mut f = tempfile::Builder::new()
                .prefix(".git-ca-")
                .suffix(".pem")
                .tempfile_in(tmp)
                .map_err(|e| Error::io(format!("creating a file in {}", tmp.display()), e))?;
            for c in &certs {
                let b64 = base64_pem(c.der());
                writeln!(
                    f,
                    "-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----"
                )
                .map_err(|e| Error::io("writing the CA bundle for git", e))?;
            }
            f.flush()
                .map_err(|e| Error::io("writing the CA bundle for git", e))?;
            env.push(("GIT_SSL_CAINFO", f.path().as_os_str().to_owned()));
            ca = Some(f);
        }
        Ok(Git { env, _ca: ca })
    }

    /// Runs git in `dir` (or here); its stdout, or its stderr (credentials
    /// of `src` left out) as the error.
    fn run(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        src: &GitSource,
    ) -> std::result::Result<String, String> {
        let mut c = Command::new("git");
        if let Some(d) = dir {
            c.arg("-C").arg(d);
        }
        c.args(args);
        for v in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_NAMESPACE",
            "GIT_CEILING_DIRECTORIES",
        ] {
            c.env_remove(v);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(std::process::Stdio::null());
        let out = c.output().map_err(|e| {
            format!("cannot run git (needed for ADD of a git repository; install git): {e}")
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let err = scrub(err.trim(), &src.remote);
            Err(if err.is_empty() {
                format!("git {} failed ({})", args[0], out.status)
            } else {
                err
            })
        }
    }

    /// The commit `src`'s ref names now (`git ls-remote`); a full commit
    /// hash is taken as it is, without asking the server.
    pub fn resolve(&self, src: &GitSource) -> Result<Resolved> {
        if let Some(r) = &src.reference
            && is_full_hash(r)
        {
            return Ok(Resolved {
                commit: r.to_ascii_lowercase(),
                refname: None,
                tag_object: None,
            });
        }
        let want = src.reference.as_deref().unwrap_or("HEAD");
        // A pattern matches a tag's name, not its peeled `^{}` line.
        let peeled = format!("{want}^{{}}");
        let out = self
            .run(None, &["ls-remote", &src.remote, want, &peeled], src)
            .map_err(|m| {
                fetch_error(
                    src,
                    RegistryErrorKind::Transport,
                    format!("cannot list the refs of {}: {m}", redact(&src.remote)),
                )
            })?;
        let refs: Vec<(&str, &str)> = out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(oid, name)| (oid.trim(), name.trim()))
            .collect();
        let find = |name: &str| refs.iter().find(|(_, n)| *n == name).map(|(o, _)| *o);
        let candidates: Vec<String> = if want == "HEAD" || want.starts_with("refs/") {
            vec![want.to_string()]
        } else {
            // git's own order for a short name.
            vec![
                format!("refs/{want}"),
                format!("refs/tags/{want}"),
                format!("refs/heads/{want}"),
            ]
        };
        for c in &candidates {
            if let Some(peeled) = find(&format!("{c}^{{}}")) {
                return Ok(Resolved {
                    commit: peeled.to_ascii_lowercase(),
                    refname: Some(c.clone()),
                    tag_object: find(c).map(str::to_ascii_lowercase),
                });
            }
            if let Some(o) = find(c) {
                return Ok(Resolved {
                    commit: o.to_ascii_lowercase(),
                    refname: Some(c.clone()),
                    tag_object: None,
                });
            }
        }
        let hint = if want.bytes().all(|b| b.is_ascii_hexdigit()) {
            " (a commit must be given in full: 40 hex digits)"
        } else {
            ""
        };
        Err(fetch_error(
            src,
            RegistryErrorKind::NotFound,
            format!(
                "{}: no branch, tag or ref {want:?}{hint}",
                redact(&src.remote)
            ),
        ))
    }

    /// Fetches the commit `r` of `src` into the new folder `dir` and checks
    /// it out (submodules too, unless `src` says not to). Without
    /// `keep_git_dir` every `.git` is removed afterwards; with it, the
    /// branch or tag the ref named points at the commit.
    pub fn checkout(
        &self,
        src: &GitSource,
        r: &Resolved,
        dir: &Path,
        keep_git_dir: bool,
    ) -> Result<()> {
        let fail = |m: String| {
            fetch_error(
                src,
                RegistryErrorKind::Transport,
                format!("fetching {} at {}: {m}", redact(&src.remote), r.commit),
            )
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let d = Some(dir);
        self.run(d, &["init", "-q", "--template="], src)
            .map_err(fail)?;
        let head = |git: &Git| {
            git.run(
                d,
                &["rev-parse", "--verify", "-q", "FETCH_HEAD^{commit}"],
                src,
            )
            .map(|s| s.trim().to_ascii_lowercase())
        };
        let first = match r.refname.as_deref() {
            Some(n) => n,
            None => r.commit.as_str(),
        };
        let fetch = |what: &str| {
            self.run(
                d,
                &["fetch", "-q", "--depth=1", "--no-tags", &src.remote, what],
                src,
            )
        };
        let mut got = fetch(first).and_then(|_| head(self));
        if got.as_deref().ok() != Some(r.commit.as_str()) && first != r.commit {
            // The ref moved since it was resolved: the commit itself.
            got = fetch(&r.commit).and_then(|_| head(self));
        }
        match got {
            Ok(c) if c == r.commit => {}
            Ok(c) => {
                return Err(fail(format!(
                    "{} now names {c}, not the commit planned",
                    first
                )));
            }
            Err(m) => return Err(fail(m)),
        }
        self.run(
            d,
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "--detach",
                &r.commit,
            ],
            src,
        )
        .map_err(fail)?;
        if src.submodules && dir.join(".gitmodules").is_file() {
            self.run(
                d,
                &[
                    "submodule",
                    "update",
                    "-q",
                    "--init",
                    "--recursive",
                    "--depth=1",
                ],
                src,
            )
            .map_err(|m| fail(format!("submodules: {m}")))?;
        }
        if keep_git_dir {
            match r.refname.as_deref() {
                Some(n) if n.starts_with("refs/heads/") => {
                    let b = &n["refs/heads/".len()..];
                    self.run(d, &["checkout", "-q", "-B", b], src)
                        .map_err(fail)?;
                }
                Some(n) if n.starts_with("refs/tags/") => {
                    self.run(d, &["update-ref", n, &r.commit], src)
                        .map_err(fail)?;
                }
                _ => {}
            }
            // The remote, never its credentials.
            self.run(d, &["remote", "add", "origin", &redact(&src.remote)], src)
                .map_err(fail)?;
        } else {
            remove_git_dirs(dir)?;
        }
        Ok(())
    }
}

/// A fetch failure of `src`, reported like other download failures.
fn fetch_error(src: &GitSource, kind: RegistryErrorKind, message: String) -> Error {
    Error::Registry {
        message,
        status: RegistryStatus::new(kind, 0, src.host(), ""),
    }
}

/// Removes every `.git` (the repository's and submodules') under `dir`.
fn remove_git_dirs(dir: &Path) -> Result<()> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let p = e.path();
        let ft = e
            .file_type()
            .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
        if e.file_name() == ".git" {
            if ft.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            }
            .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
        } else if ft.is_dir() {
            remove_git_dirs(&p)?;
        }
    }
    Ok(())
}

/// `text` with the URL `remote` shown without its credentials.
fn scrub(text: &str, remote: &str) -> String {
    let shown = redact(remote);
    let mut out = text.replace(remote, &shown);
    if let Some((_, rest)) = scheme_split(remote) {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            let userinfo = &rest[..at];
            if !userinfo.is_empty() {
                out = out.replace(&format!("{userinfo}@"), "");
                out = out.replace(userinfo, "***");
            }
        }
    }
    out
}

/// DER bytes as PEM's base64 body: 64 characters a line.
fn base64_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let s = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(s.len() + s.len() / 64 + 1);
    for chunk in s.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;

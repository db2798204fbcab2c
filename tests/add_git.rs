//! Dockerfile `ADD <git repository>`: repositories served by git's smart
//! HTTP (`git http-backend` behind a small server started here on
//! 127.0.0.1), images checked with umoci.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

// ---------------------------------------------------------------------------
// A smart HTTP git server
// ---------------------------------------------------------------------------

/// One request the server answered: method, path and whether it asked
/// for objects (a fetch, not only a list of refs).
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    fetch: bool,
}

/// `git http-backend` (CGI) behind a thread-per-connection HTTP/1.1
/// server on 127.0.0.1; serves the bare repositories under `root`.
struct GitServer {
    port: u16,
    log: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
}

impl GitServer {
    fn start(root: &Path) -> GitServer {
        GitServer::listen(root, |conn, root, log| {
            let _ = serve(conn, root, log);
        })
    }

    /// Accepts connections on a free loopback port, each handled by
    /// `handle` (the connection, the repositories' folder, the log) on a
    /// thread of its own.
    fn listen<H>(root: &Path, handle: H) -> GitServer
    where
        H: Fn(TcpStream, &Path, &Mutex<Vec<Hit>>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, l, s) = (root.to_path_buf(), log.clone(), stop.clone());
        let handle = Arc::new(handle);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, l, handle) = (root.clone(), l.clone(), handle.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(60)));
                    handle(conn, &root, &l);
                });
            }
        });
        GitServer { port, log, stop }
    }

    /// The same over HTTPS, with a certificate for 127.0.0.1 that the CA
    /// `dir/ca.crt` (made here) signs.
    fn start_tls(root: &Path, dir: &Path) -> GitServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        support::registry::make_tls(dir);
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.crt"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        GitServer::listen(root, move |conn, root, log| {
            let Ok(tls) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let _ = serve(rustls::StreamOwned::new(tls, conn), root, log);
        })
    }

    fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }

    /// How many object fetches were served so far.
    fn fetches(&self) -> usize {
        self.log.lock().unwrap().iter().filter(|h| h.fetch).count()
    }

    fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.path.clone())
            .collect()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers one request with `git http-backend`.
fn serve(mut conn: impl Read + Write, root: &Path, log: &Mutex<Vec<Hit>>) -> std::io::Result<()> {
    let mut r = BufReader::new(&mut conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = headers.get("content-length").and_then(|v| v.parse().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    // A fetch asks for objects ("command=fetch" in protocol v2); a gzip
    // body (large requests only) is counted as one too.
    let fetch = method == "POST"
        && (body.windows(13).any(|w| w == b"command=fetch")
            || headers.contains_key("content-encoding"));
    log.lock().unwrap().push(Hit {
        path: format!("{method} {target}"),
        fetch,
    });
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = headers.get("content-type") {
        cmd.env("CONTENT_TYPE", t);
    }
    if let Some(e) = headers.get("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    if let Some(p) = headers.get("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out)?;
    let _ = writer.join();
    let _ = child.wait();
    // CGI: headers, a blank line, the body.
    let (head, rest) = match find(&out, b"\r\n\r\n") {
        Some(i) => (&out[..i], &out[i + 4..]),
        None => match find(&out, b"\n\n") {
            Some(i) => (&out[..i], &out[i + 2..]),
            None => (&out[..0], &out[..]),
        },
    };
    let mut status = "200 OK".to_string();
    let mut resp_headers = String::new();
    for h in String::from_utf8_lossy(head).lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            Some(_) => {
                resp_headers.push_str(h.trim_end());
                resp_headers.push_str("\r\n");
            }
            None => {}
        }
    }
    drop(r);
    let w = &mut conn;
    write!(
        w,
        "HTTP/1.1 {status}\r\n{resp_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        rest.len()
    )?;
    w.write_all(rest)?;
    w.flush()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Repositories
// ---------------------------------------------------------------------------

/// git for the test's own repositories: no user configuration, fixed
/// author and dates.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work tree and the bare repository the server serves as `repo.git`:
/// branch main (a README, an executable script, a symlink, a subfolder
/// with a nested folder and a relative symlink), branch dev (one more
/// file in sub/), an annotated tag v1 and a lightweight tag light on
/// main's first commit.
struct Repo {
    work: PathBuf,
    bare: PathBuf,
}

impl Repo {
    fn new(t: &Path, srv_root: &Path) -> Repo {
        require_tool("git", "git");
        let work = t.join("work");
        fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        write(&work, "README.md", "hello\n");
        write_file(&work, "bin/run.sh", b"#!/bin/sh\necho run\n", 0o755);
        write(&work, "sub/dir/a.txt", "a\n");
        write(&work, "sub/b.txt", "b\n");
        symlink(&work, "link", "README.md");
        symlink(&work, "sub/lnk", "dir/a.txt");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "first"]);
        git(&work, &["tag", "-a", "v1", "-m", "v1"]);
        git(&work, &["tag", "light"]);
        git(&work, &["checkout", "-q", "-b", "dev"]);
        write(&work, "sub/dev.txt", "dev\n");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "dev"]);
        git(&work, &["checkout", "-q", "main"]);
        let bare = srv_root.join("repo.git");
        fs::create_dir_all(srv_root).unwrap();
        git(
            srv_root,
            &["clone", "-q", "--bare", work.to_str().unwrap(), "repo.git"],
        );
        Repo { work, bare }
    }

    fn head(&self, rev: &str) -> String {
        git(&self.bare, &["rev-parse", rev])
    }

    /// A new commit on main, pushed to the served repository.
    fn commit_on_main(&self, file: &str, text: &str) {
        write(&self.work, file, text);
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", file]);
        git(
            &self.work,
            &["push", "-q", self.bare.to_str().unwrap(), "main"],
        );
    }
}

// ---------------------------------------------------------------------------
// Builds and trees
// ---------------------------------------------------------------------------

fn build(ctx: &Path, dockerfile: &str, store: &Path, out: &Path) -> Run {
    write(ctx, "Dockerfile", dockerfile);
    build_dockerfile(ctx, store, out, &[])
}

fn message(r: &Run) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every path under `root` (relative) with its mode, owner and what it
/// is: the file's text, a symlink's target or "dir".
fn tree(root: &Path) -> BTreeMap<String, (u32, u32, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, u32, String)>) {
        let mut names: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = fs::symlink_metadata(&p).unwrap();
            let what = if md.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                "dir".to_string()
            } else {
                String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
            };
            let mode = md.permissions().mode() & 0o7777;
            out.insert(rel, (mode, md.uid(), what));
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn layer_digests(out: &Path) -> Vec<String> {
    Layout::new(out).layer_digests("latest")
}

fn setup(name: &str) -> Option<(tempfile::TempDir, GitServer, Repo)> {
    if !is_root() {
        eprintln!("{name}: skipped: umoci keeps owners only as root");
        return None;
    }
    let t = tempfile::tempdir().unwrap();
    let srv_root = t.path().join("srv");
    let repo = Repo::new(t.path(), &srv_root);
    let srv = GitServer::start(&srv_root);
    Some((t, srv, repo))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Branches, tags (annotated and not), subdirs in both URL forms,
/// `--keep-git-dir`, `--chown`/`--chmod`: files, modes, symlinks and
/// `.git` as BuildKit gives them.
#[test]
fn add_git_checks_out_refs_subdirs_and_modes() {
    let Some((t, srv, repo)) = setup("add_git_checks_out_refs_subdirs_and_modes") else {
        return;
    };
    let url = srv.url("repo.git");
    let main = repo.head("main");
    let df = format!(
        "FROM scratch\n\
         ADD {url} /all/\n\
         ADD {url}#dev:sub /dev-sub\n\
         ADD {url}?tag=v1&subdir=sub/dir /tagged/\n\
         ADD --keep-git-dir=true {url}#main /kept/\n\
         ADD --chown=1000:1001 --chmod=0750 {url}#light:sub /owned/\n\
         WORKDIR /w\n\
         ADD --checksum={short} {url}?branch=main&subdir=bin rel\n",
        short = &main[..10]
    );
    let ctx = t.path().join("ctx");
    let store = t.path().join("store");
    let out = t.path().join("out");
    let r = build(&ctx, &df, &store, &out);
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let tr = tree(&root);
    let get = |p: &str| {
        tr.get(p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} missing: {:?}", tr.keys().collect::<Vec<_>>()))
    };
    // The whole default branch: modes from git, symlinks kept, no .git.
    assert_eq!(get("all/README.md"), (0o644, 0, "hello\n".into()));
    assert_eq!(
        get("all/bin/run.sh"),
        (0o755, 0, "#!/bin/sh\necho run\n".into())
    );
    assert_eq!(get("all/bin"), (0o755, 0, "dir".into()));
    assert_eq!(get("all/link").2, "-> README.md");
    assert_eq!(get("all/sub/lnk").2, "-> dir/a.txt");
    assert!(
        !tr.contains_key("all/.git"),
        "no .git without --keep-git-dir"
    );
    assert!(!tr.contains_key("all/sub/dev.txt"), "main has no dev.txt");
    // A branch's subdir, its contents at the destination.
    assert_eq!(get("dev-sub/dev.txt").2, "dev\n");
    assert_eq!(get("dev-sub/dir/a.txt").2, "a\n");
    assert!(!tr.contains_key("dev-sub/README.md"));
    // The query form; an annotated tag.
    assert_eq!(get("tagged/a.txt"), (0o644, 0, "a\n".into()));
    assert_eq!(tr.keys().filter(|k| k.starts_with("tagged/")).count(), 1);
    // .git kept, on branch main at the commit.
    assert_eq!(get("kept/.git").2, "dir");
    assert_eq!(get("kept/.git/HEAD").2, "ref: refs/heads/main\n");
    let kept_head = git(&root.join("kept"), &["rev-parse", "HEAD"]);
    assert_eq!(kept_head, main);
    let remote = git(&root.join("kept"), &["remote", "get-url", "origin"]);
    assert_eq!(remote, url);
    // --chown and --chmod apply to every file and folder.
    assert_eq!(get("owned/b.txt"), (0o750, 1000, "b\n".into()));
    assert_eq!(get("owned/dir").0, 0o750);
    assert_eq!(get("owned/dir").1, 1000);
    // A relative destination under WORKDIR, a short --checksum.
    assert_eq!(get("w/rel/run.sh").0, 0o755);

    // `plan` names the commit without fetching anything.
    let fetches = srv.fetches();
    let plan = ib(&["plan", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&store)
        .json()
        .run();
    assert_eq!(plan.code, 0, "{plan}");
    assert!(
        plan.stdout
            .contains(&format!("repo.git ({}) → /all", &main[..12])),
        "{}",
        plan.stdout
    );
    assert_eq!(srv.fetches(), fetches, "planning only lists refs");
}

/// The same commit gives the same layer on two fresh stores; a second
/// build is a cache hit that fetches nothing; a new commit on the branch
/// is a new layer.
#[test]
fn add_git_is_reproducible_cached_and_rebuilt_on_a_new_commit() {
    let Some((t, srv, repo)) = setup("add_git_is_reproducible_cached_and_rebuilt_on_a_new_commit")
    else {
        return;
    };
    let url = srv.url("repo.git");
    let df = format!("FROM scratch\nADD {url}#main /src/\n");
    let ctx = t.path().join("ctx");
    let (s1, s2) = (t.path().join("store1"), t.path().join("store2"));
    let r = build(&ctx, &df, &s1, &t.path().join("o1"));
    assert_eq!(r.code, 0, "{r}");
    let fetches = srv.fetches();
    assert!(
        fetches >= 1,
        "the first build fetches: {:?}",
        srv.requests()
    );
    // A different umask changes nothing either.
    write(&ctx, "Dockerfile", &df);
    let r2 = ib(&["build", "-f"])
        .path_arg(&ctx.join("Dockerfile"))
        .path_arg(&ctx)
        .cache(&s2)
        .oci_out(&t.path().join("o2"))
        .json()
        .arg("-q")
        .umask(0o077)
        .run();
    assert_eq!(r2.code, 0, "{r2}");
    let d1 = layer_digests(&t.path().join("o1"));
    assert_eq!(d1.len(), 1);
    assert_eq!(
        d1,
        layer_digests(&t.path().join("o2")),
        "same commit, same layer bytes"
    );

    // Again on the first store: a cache hit, nothing fetched.
    let before = srv.fetches();
    let r3 = build(&ctx, &df, &s1, &t.path().join("o3"));
    assert_eq!(r3.code, 0, "{r3}");
    assert_eq!(layer_cache_states(&r3.json()), ["hit"], "{}", r3.stdout);
    assert_eq!(srv.fetches(), before, "a cached commit is not fetched");
    assert_eq!(layer_digests(&t.path().join("o3")), d1);

    // A new commit on main: rebuilt with the new file.
    repo.commit_on_main("new.txt", "new\n");
    let r4 = build(&ctx, &df, &s1, &t.path().join("o4"));
    assert_eq!(r4.code, 0, "{r4}");
    assert_eq!(layer_cache_states(&r4.json()), ["miss"], "{}", r4.stdout);
    let d4 = layer_digests(&t.path().join("o4"));
    assert_ne!(d4, d1);
    let root = umoci_unpack(&t.path().join("o4"), "latest", &t.path().join("b4"));
    assert_eq!(
        fs::read_to_string(root.join("src/new.txt")).unwrap(),
        "new\n"
    );

    // A full commit that no ref points at any more is fetched by itself.
    let old = repo.head("main");
    repo.commit_on_main("newer.txt", "newer\n");
    let df = format!("FROM scratch\nADD {url}#{old} /src/\n");
    let r5 = build(&ctx, &df, &t.path().join("store5"), &t.path().join("o5"));
    assert_eq!(r5.code, 0, "{r5}");
    assert_eq!(
        layer_digests(&t.path().join("o5")),
        d4,
        "the same commit, the same layer"
    );
}

/// Unknown refs, unreachable repositories, missing subdirs and checksums
/// that do not match fail naming the Dockerfile's line and the ref, with
/// no credentials shown and nothing written.
#[test]
fn add_git_errors_name_the_line_and_the_ref() {
    let Some((t, srv, repo)) = setup("add_git_errors_name_the_line_and_the_ref") else {
        return;
    };
    let url = srv.url("repo.git");
    let secret_url = url.replace("http://", "http://user:s3cret@");
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://tok:s3cret@127.0.0.1:{port}/gone.git")
    };
    let main = repo.head("main");
    let wrong = "0".repeat(40);
    let cases: Vec<(String, i32, Vec<String>)> = vec![
        (
            format!("ADD {secret_url}#nosuch /x/"),
            6,
            vec!["Dockerfile:2:1: ADD".into(), "\"nosuch\"".into()],
        ),
        (
            format!("ADD {closed}#main /x/"),
            6,
            vec!["Dockerfile:2:1: ADD".into(), "gone.git".into()],
        ),
        (
            format!("ADD {url}#main:nosuch/dir /x/"),
            3,
            vec![
                "Dockerfile:2:1: ADD".into(),
                "no folder \"nosuch/dir\"".into(),
                main.clone(),
            ],
        ),
        (
            format!("ADD {url}#main:README.md /x/"),
            3,
            vec!["no folder \"README.md\"".into()],
        ),
        (
            format!("ADD --checksum={wrong} {secret_url}#main /x/"),
            3,
            vec![
                "Dockerfile:2:1: ADD".into(),
                format!("main is commit {main}, --checksum says {wrong}"),
            ],
        ),
        (
            format!("ADD {url}?tag=v1&checksum=abcdef0 /x/"),
            3,
            vec![
                "refs/tags/v1 is commit".into(),
                "the URL's checksum says abcdef0".into(),
            ],
        ),
        (
            format!("ADD --checksum=sha256:{wrong} {url} /x/"),
            2,
            vec!["Dockerfile:2:1: ADD".into(), "commit hash".into()],
        ),
        (
            format!("ADD {url}?branch=a&tag=b /x/"),
            2,
            vec!["only one of ref=, branch= and tag=".into()],
        ),
        (
            format!("ADD {url}#main:../up /x/"),
            2,
            vec!["inside the repository".into()],
        ),
        (
            format!("ADD {url}#{} /x/", &main[..7]),
            6,
            vec!["a commit must be given in full".into()],
        ),
    ];
    let ctx = t.path().join("ctx");
    let store = t.path().join("store");
    for (n, (line, code, wants)) in cases.iter().enumerate() {
        let out = t.path().join(format!("out{n}"));
        let r = build(&ctx, &format!("FROM scratch\n{line}\n"), &store, &out);
        assert_eq!(r.code, *code, "{line}: {r}");
        let m = message(&r);
        for w in wants {
            assert!(m.contains(w.as_str()), "{line}: {w:?} not in {m:?}");
        }
        assert!(
            !m.contains("s3cret") && !r.stderr.contains("s3cret"),
            "{m}\n{}",
            r.stderr
        );
        assert!(!out.exists(), "{line}: nothing is written");
    }
    // The right checksum (full, in the query) builds.
    let r = build(
        &ctx,
        &format!("FROM scratch\nADD {url}?ref=main&checksum={main} /x/\n"),
        &store,
        &t.path().join("ok"),
    );
    assert_eq!(r.code, 0, "{r}");
}

/// Over HTTPS, git trusts the CA the build is given (`SSL_CERT_FILE`
/// here) and nothing else.
#[test]
fn add_git_over_https_trusts_the_given_ca() {
    let Some((t, _srv, _repo)) = setup("add_git_over_https_trusts_the_given_ca") else {
        return;
    };
    let tls_dir = t.path().join("tls");
    fs::create_dir_all(&tls_dir).unwrap();
    let srv = GitServer::start_tls(&t.path().join("srv"), &tls_dir);
    let url = srv.url("repo.git").replace("http://", "https://");
    let ctx = t.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM scratch\nADD {url}#dev:sub /s/\n"),
    );
    let run = |store: &str, out: &str, ca: Option<&Path>| {
        let mut c = ib(&["build", "-f"])
            .path_arg(&ctx.join("Dockerfile"))
            .path_arg(&ctx)
            .cache(&t.path().join(store))
            .oci_out(&t.path().join(out))
            .json()
            .arg("-q");
        if let Some(ca) = ca {
            c = c.env("SSL_CERT_FILE", ca.to_str().unwrap());
        }
        c.run()
    };
    let untrusted = run("s1", "o1", None);
    assert_eq!(untrusted.code, 6, "{untrusted}");
    assert!(
        message(&untrusted).contains("Dockerfile:2:1: ADD"),
        "{untrusted}"
    );
    let r = run("s2", "o2", Some(&tls_dir.join("ca.crt")));
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&t.path().join("o2"), "latest", &t.path().join("b"));
    assert_eq!(fs::read_to_string(root.join("s/dev.txt")).unwrap(), "dev\n");
}

/// Submodules are checked out too (their `.git` files removed), unless
/// the URL says `submodules=false`; `git://` is served by `git daemon`.
#[test]
fn add_git_checks_out_submodules_and_speaks_git_protocol() {
    let Some((t, srv, repo)) = setup("add_git_checks_out_submodules_and_speaks_git_protocol")
    else {
        return;
    };
    // A second repository, a submodule of the first at mod/.
    let lib = t.path().join("lib");
    fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q", "-b", "main"]);
    write(&lib, "lib.txt", "lib\n");
    git(&lib, &["add", "-A"]);
    git(&lib, &["commit", "-q", "-m", "lib"]);
    git(
        &t.path().join("srv"),
        &["clone", "-q", "--bare", lib.to_str().unwrap(), "lib.git"],
    );
    git(
        &repo.work,
        &["submodule", "add", "-q", &srv.url("lib.git"), "mod"],
    );
    git(&repo.work, &["commit", "-q", "-m", "submodule"]);
    git(
        &repo.work,
        &["push", "-q", repo.bare.to_str().unwrap(), "main"],
    );

    let url = srv.url("repo.git");
    let df = format!(
        "FROM scratch\nADD {url}#main /with/\nADD {url}?branch=main&submodules=false /without/\n"
    );
    let ctx = t.path().join("ctx");
    let r = build(&ctx, &df, &t.path().join("store"), &t.path().join("out"));
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&t.path().join("out"), "latest", &t.path().join("b"));
    let tr = tree(&root);
    assert_eq!(tr["with/mod/lib.txt"], (0o644, 0, "lib\n".into()));
    assert!(!tr.contains_key("with/mod/.git"), "{:?}", tr.keys());
    assert!(tr.contains_key("with/.gitmodules"));
    assert_eq!(tr["without/mod"].2, "dir");
    assert!(!tr.contains_key("without/mod/lib.txt"));

    // git:// through git daemon on a free port.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut daemon = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", t.path().join("srv").display()),
        ])
        .arg(t.path().join("srv"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    // Ready when it accepts connections.
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let df = format!("FROM scratch\nADD git://127.0.0.1:{port}/repo.git#dev:sub /s/\n");
    let r = build(
        &ctx,
        &df,
        &t.path().join("store"),
        &t.path().join("out-git"),
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(r.code, 0, "{r}");
    let root = umoci_unpack(&t.path().join("out-git"), "latest", &t.path().join("b2"));
    assert_eq!(fs::read_to_string(root.join("s/dev.txt")).unwrap(), "dev\n");
}

/// Whether Debian's buildah takes `ADD <git repository>`; when it does,
/// its tree and imgbuild's are the same.
#[test]
fn add_git_matches_buildah_when_it_supports_git() {
    let Some((t, srv, _repo)) = setup("add_git_matches_buildah_when_it_supports_git") else {
        return;
    };
    if !support::buildah::buildah_present() {
        return;
    }
    let url = srv.url("repo.git");
    let df = format!("FROM scratch\nADD {url}#main:sub /s/\nADD {url}#dev /d/\n");
    let ctx = t.path().join("ctx");
    let ours = t.path().join("ours");
    let r = build(&ctx, &df, &t.path().join("store"), &ours);
    assert_eq!(r.code, 0, "{r}");
    let theirs = t.path().join("theirs");
    let b = support::buildah::Buildah::new(&t.path().join("buildah"));
    if let Err(e) = b.build_oci(&ctx.join("Dockerfile"), &ctx, &[], "addgit", &theirs) {
        // buildah 1.28 (Debian bookworm) takes the URL as a file to
        // download: nothing to compare with.
        eprintln!("buildah does not add git repositories: {e}");
        return;
    }
    let their_tree = support::buildah::image_tree(&theirs, "latest");
    if !their_tree.contains_key("s/b.txt") {
        // A buildah that downloads the URL as a file instead.
        eprintln!(
            "buildah does not check out git repositories: {:?}",
            their_tree.keys().collect::<Vec<_>>()
        );
        return;
    }
    let diffs = support::buildah::tree_differences(
        &support::buildah::image_tree(&ours, "latest"),
        &their_tree,
    );
    assert!(diffs.is_empty(), "{diffs:?}");
}

//! A real registry for tests: Debian's `docker-registry` (distribution 2.8)
//! on a free 127.0.0.1 port, with no auth, htpasswd Basic auth, TLS (a CA
//! and server certificate made with the `openssl` CLI), or bearer tokens
//! from a token server running in the test process ([`super::token`]).
//!
//! The registry's output (logrus lines on stderr, the Apache-style access
//! log on stdout) goes to one file; [`Registry::access_log`] parses the
//! access-log lines. The process is SIGKILLed on drop and its folders removed.
//!
//! Tools needed (a test FAILS naming the Debian package when one is
//! missing): docker-registry, openssl, apache2-utils (htpasswd, Basic auth
//! only), curl (TLS mode only), skopeo (the skopeo helpers).

use super::token::{TokenConfig, TokenServer, base64, openssl};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How clients authenticate.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    /// htpasswd (bcrypt) Basic auth with one user.
    Basic { user: String, pass: String },
    /// Token auth: the token server accepts `user`/`pass` (Basic, or the
    /// OAuth2 password grant), signs tokens valid for `token_ttl_secs`, and
    /// gives anonymous requests pull-only tokens when `anonymous_pull`.
    Bearer {
        user: String,
        pass: String,
        token_ttl_secs: u64,
        anonymous_pull: bool,
    },
}

#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    pub auth: Auth,
    /// Serve HTTPS with a certificate from a test CA ([`Registry::ca_cert`]).
    pub tls: bool,
}

impl RegistryOptions {
    /// Plain HTTP, no auth.
    pub fn plain() -> RegistryOptions {
        RegistryOptions::default()
    }

    /// Plain HTTP, Basic auth as `user`/`pass`.
    pub fn basic(user: &str, pass: &str) -> RegistryOptions {
        RegistryOptions {
            auth: Auth::Basic {
                user: user.into(),
                pass: pass.into(),
            },
            tls: false,
        }
    }

    /// Plain HTTP, bearer tokens for `user`/`pass` living `ttl` seconds.
    pub fn bearer(user: &str, pass: &str, ttl: u64, anonymous_pull: bool) -> RegistryOptions {
        RegistryOptions {
            auth: Auth::Bearer {
                user: user.into(),
                pass: pass.into(),
                token_ttl_secs: ttl,
                anonymous_pull,
            },
            tls: false,
        }
    }

    /// HTTPS, no auth.
    pub fn tls() -> RegistryOptions {
        RegistryOptions {
            auth: Auth::None,
            tls: true,
        }
    }

    /// The same auth over HTTPS.
    pub fn with_tls(mut self) -> RegistryOptions {
        self.tls = true;
        self
    }
}

/// One line of the access log (Apache combined format, written by
/// distribution once the handler has returned).
#[derive(Clone, Debug, PartialEq)]
pub struct AccessEntry {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string (without '?'), empty when none.
    pub query: String,
    pub status: u16,
    /// RESPONSE body bytes as logged (not the request body).
    pub bytes: u64,
    pub user_agent: String,
}

impl AccessEntry {
    /// Whether the query has `key` (e.g. "mount", "digest").
    pub fn has_param(&self, key: &str) -> bool {
        self.query
            .split('&')
            .any(|kv| kv.split('=').next() == Some(key))
    }
}

/// A running registry. Killed (SIGKILL) and its folders removed on drop.
pub struct Registry {
    opts: RegistryOptions,
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    log_path: PathBuf,
    token: Option<TokenServer>,
    syncs: AtomicUsize,
}

/// A response from [`Registry::api`] / [`Registry::http`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::proxy::find_header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Every manifest media type, for `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

const SYNC_QUERY: &str = "imgbuild-harness-sync";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Fails the test (never skips it) unless `prog` is on PATH.
#[track_caller]
pub fn require_program(prog: &str, package: &str) {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            fs::metadata(d.join(prog)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    });
    assert!(
        found,
        "`{prog}` is needed by this test but is not installed: install it with `apt-get install {package}`"
    );
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

impl Registry {
    /// Starts a registry; panics with the log's tail when it is not serving
    /// `/v2/` within 10 s.
    pub fn start(opts: RegistryOptions) -> Registry {
        require_program("docker-registry", "docker-registry");
        require_program("openssl", "openssl");
        if matches!(opts.auth, Auth::Basic { .. }) {
            require_program("htpasswd", "apache2-utils");
        }
        if opts.tls {
            require_program("curl", "curl");
        }
        let dir = tempfile::Builder::new()
            .prefix("imgbuild-registry-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        fs::create_dir(root.join("storage")).expect("mkdir storage");

        let tls_yaml = if opts.tls {
            make_tls(&root);
            format!(
                ", tls: {{certificate: \"{}\", key: \"{}\"}}",
                p(&root.join("server.crt")),
                p(&root.join("server.key"))
            )
        } else {
            String::new()
        };

        let mut token = None;
        let auth_yaml = match &opts.auth {
            Auth::None => String::new(),
            Auth::Basic { user, pass } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                let file = root.join("htpasswd");
                fs::write(&file, &out.stdout).expect("write htpasswd");
                format!(
                    "auth: {{htpasswd: {{realm: basic-realm, path: \"{}\"}}}}\n",
                    p(&file)
                )
            }
            Auth::Bearer {
                user,
                pass,
                token_ttl_secs,
                anonymous_pull,
            } => {
                let tdir = root.join("token");
                fs::create_dir(&tdir).expect("mkdir token");
                let ts = TokenServer::start(
                    &tdir,
                    TokenConfig {
                        service: "imgbuild-test-registry".into(),
                        issuer: "imgbuild-test-issuer".into(),
                        user: user.clone(),
                        pass: pass.clone(),
                        ttl_secs: *token_ttl_secs,
                        anonymous_pull: *anonymous_pull,
                    },
                );
                let yaml = format!(
                    "auth: {{token: {{realm: \"{}\", service: {}, issuer: {}, rootcertbundle: \"{}\"}}}}\n",
                    ts.realm(),
                    ts.config().service,
                    ts.config().issuer,
                    p(&ts.cert_path())
                );
                token = Some(ts);
                yaml
            }
        };

        let log_path = root.join("registry.log");
        let mut last_err = String::new();
        // A port found free can be taken before the registry binds it: retry.
        for _attempt in 0..3 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log: {{level: info, accesslog: {{disabled: false}}}}\n\
                 storage: {{filesystem: {{rootdirectory: \"{}\"}}, delete: {{enabled: true}}, maintenance: {{uploadpurging: {{enabled: false}}}}}}\n\
                 http: {{addr: \"127.0.0.1:{port}\", secret: imgbuild-test-secret{tls_yaml}}}\n\
                 {auth_yaml}",
                p(&root.join("storage"))
            );
            let cfg_path = root.join("config.yml");
            fs::write(&cfg_path, &config).expect("write registry config");
            let _ = fs::remove_file(&log_path);
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("open registry log");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run docker-registry ({e}): install it with `apt-get install docker-registry`"
                    )
                });
            let ca = opts.tls.then(|| root.join("ca.crt"));
            match wait_ready(&mut child, port, ca.as_deref()) {
                Ok(()) => {
                    return Registry {
                        opts,
                        dir,
                        child,
                        port,
                        log_path,
                        token,
                        syncs: AtomicUsize::new(0),
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = format!(
                        "{e}\n--- registry config\n{config}--- log tail\n{}",
                        tail(&log, 40)
                    );
                    if !log.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("the test registry did not come up: {last_err}");
    }

    /// Kills the registry process (SIGKILL), as a crash would; its storage
    /// stays for [`Registry::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the registry again on the same port with the same storage and
    /// configuration; panics with the log's tail unless it serves `/v2/`.
    pub fn restart(&mut self) {
        self.kill();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open registry log");
        self.child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("run docker-registry");
        let ca = self.opts.tls.then(|| self.dir.path().join("ca.crt"));
        if let Err(e) = wait_ready(&mut self.child, self.port, ca.as_deref()) {
            panic!(
                "the test registry did not come back: {e}\n{}",
                self.log_tail(40)
            );
        }
    }

    /// "127.0.0.1:PORT" (the TLS certificate names 127.0.0.1 and localhost).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
    pub fn base_url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// The test CA's certificate (PEM) when TLS is on.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("ca.crt"))
    }

    /// A folder holding only `ca.crt` (for skopeo's `--cert-dir` and the
    /// like) when TLS is on.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("certs.d"))
    }

    /// The user and password, for Basic and Bearer.
    pub fn creds(&self) -> Option<(String, String)> {
        match &self.opts.auth {
            Auth::None => None,
            Auth::Basic { user, pass } | Auth::Bearer { user, pass, .. } => {
                Some((user.clone(), pass.clone()))
            }
        }
    }

    /// The folder holding the registry's storage, config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token server, in Bearer mode.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// Tokens the token server issued over HTTP so far (0 unless Bearer).
    pub fn tokens_issued(&self) -> usize {
        self.token.as_ref().map_or(0, TokenServer::issued)
    }

    /// `docker://HOST/REPO_TAG`.
    pub fn docker_ref(&self, repo_tag: &str) -> String {
        format!("docker://{}/{repo_tag}", self.host())
    }

    fn skopeo_args(&self, prefix: &str, with_creds: bool) -> Vec<String> {
        let mut a = Vec::new();
        match self.cert_dir() {
            Some(d) => {
                a.push(format!("--{prefix}cert-dir"));
                a.push(p(&d).to_string());
            }
            None => a.push(format!("--{prefix}tls-verify=false")),
        }
        if with_creds && let Some((u, pw)) = self.creds() {
            a.push(format!("--{prefix}creds"));
            a.push(format!("{u}:{pw}"));
        }
        a
    }

    /// Arguments for `skopeo copy … docker://THIS/…`: TLS and credentials.
    pub fn skopeo_dest_args(&self) -> Vec<String> {
        self.skopeo_args("dest-", true)
    }

    /// Arguments for `skopeo copy docker://THIS/… …` (`--src-*`).
    pub fn skopeo_src_args(&self) -> Vec<String> {
        self.skopeo_args("src-", true)
    }

    /// Arguments for `skopeo inspect docker://THIS/…` (`--tls-verify`,
    /// `--cert-dir`, `--creds`).
    pub fn skopeo_inspect_args(&self) -> Vec<String> {
        self.skopeo_args("", true)
    }

    /// The same without credentials (anonymous access).
    pub fn skopeo_inspect_args_anonymous(&self) -> Vec<String> {
        self.skopeo_args("", false)
    }

    /// `skopeo copy SRC docker://THIS/REPO_TAG` (e.g. SRC = "oci:DIR:TAG").
    pub fn skopeo_push(&self, src: &str, repo_tag: &str) -> Result<String, String> {
        let mut a = vec!["copy".to_string()];
        a.extend(self.skopeo_dest_args());
        a.push(src.to_string());
        a.push(self.docker_ref(repo_tag));
        skopeo(&a)
    }

    /// `skopeo copy docker://THIS/REPO_TAG DEST` (e.g. DEST = "oci:DIR:TAG"):
    /// skopeo checks every digest as it reads.
    pub fn skopeo_pull(&self, repo_tag: &str, dest: &str) -> Result<String, String> {
        let mut a = vec!["copy".to_string()];
        a.extend(self.skopeo_src_args());
        a.push(self.docker_ref(repo_tag));
        a.push(dest.to_string());
        skopeo(&a)
    }

    /// `skopeo inspect docker://THIS/REPO_TAG` parsed (has "Digest", "Layers").
    pub fn skopeo_inspect(&self, repo_tag: &str) -> Result<Value, String> {
        let mut a = vec!["inspect".to_string()];
        a.extend(self.skopeo_inspect_args());
        a.push(self.docker_ref(repo_tag));
        let out = skopeo(&a)?;
        serde_json::from_str(&out).map_err(|e| format!("skopeo printed no JSON ({e}): {out}"))
    }

    /// Every access-log line so far. Makes one request of its own first and
    /// waits until it is logged, so every request answered before the call
    /// is in the list (the registry logs a request after answering it);
    /// those sync requests are left out.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst);
        let marker = format!("{SYNC_QUERY}={n}");
        let _ = self.http("GET", &format!("/v2/?{marker}"), &[], None);
        let t0 = Instant::now();
        loop {
            let all = parse_access_log(&self.log_text());
            if all.iter().any(|e| e.query == marker) || t0.elapsed() > Duration::from_secs(5) {
                return all
                    .into_iter()
                    .filter(|e| !e.query.starts_with(SYNC_QUERY))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The whole log (logrus lines and access-log lines).
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_text(), n)
    }

    /// One request, without auth: a raw HTTP/1.1 exchange in plain mode,
    /// `curl --cacert` in TLS mode. `path` is the path and query.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        http_to(
            &self.host(),
            self.ca_cert().as_deref(),
            method,
            path,
            headers,
            body,
        )
    }

    /// One request with the configured credentials: Basic, or a bearer token
    /// minted for the repository in `path` (all actions; not counted in
    /// [`Registry::tokens_issued`]).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        self.api_with(method, path, &[], body)
    }

    /// [`Registry::api`] with extra headers.
    pub fn api_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        let auth = match (&self.opts.auth, &self.token) {
            (Auth::None, _) => None,
            (Auth::Basic { user, pass }, _) => Some(format!(
                "Basic {}",
                base64(format!("{user}:{pass}").as_bytes())
            )),
            (Auth::Bearer { user, .. }, Some(ts)) => {
                let access = match repo_of(path) {
                    Some(r) => vec![(
                        "repository".to_string(),
                        r,
                        vec!["pull".into(), "push".into(), "delete".into()],
                    )],
                    None => vec![(
                        "registry".to_string(),
                        "catalog".to_string(),
                        vec!["*".into()],
                    )],
                };
                Some(format!("Bearer {}", ts.mint(user, &access)))
            }
            (Auth::Bearer { .. }, None) => unreachable!("bearer mode has a token server"),
        };
        let mut h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        h.extend_from_slice(headers);
        self.http(method, path, &h, body)
    }

    /// Whether `HEAD /v2/REPO/blobs/DIGEST` answers 200.
    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        self.api("HEAD", &format!("/v2/{repo}/blobs/{digest}"), None)
            .is_ok_and(|r| r.status == 200)
    }

    /// The manifest's digest (Docker-Content-Digest) and bytes, if present.
    /// (distribution answers 404 to a GET of an OCI manifest whose Accept
    /// header does not list the OCI media types, so all four are sent.)
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        let r = self
            .api_with(
                "GET",
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", MANIFEST_ACCEPT)],
                None,
            )
            .ok()?;
        (r.status == 200).then(|| {
            (
                r.header("docker-content-digest").unwrap_or("").to_string(),
                r.body,
            )
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- test registry {} ({}) log tail:\n{}",
                self.host(),
                self.dir.path().display(),
                self.log_tail(40)
            );
        }
    }
}

/// Waits until the registry answers `GET /v2/` (200, or 401 with auth).
fn wait_ready(child: &mut Child, port: u16, ca: Option<&Path>) -> Result<(), String> {
    let t0 = Instant::now();
    let host = format!("127.0.0.1:{port}");
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("docker-registry exited early ({st})"));
        }
        if t0.elapsed() > START_TIMEOUT {
            return Err(format!(
                "docker-registry is not serving /v2/ after {START_TIMEOUT:?}"
            ));
        }
        if TcpStream::connect(&host).is_ok() {
            match http_to(&host, ca, "GET", "/v2/", &[], None) {
                Ok(r) if r.status == 200 || r.status == 401 => return Ok(()),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One request to `host`: plain HTTP when `ca` is None, else HTTPS through
/// curl trusting `ca`.
fn http_to(
    host: &str,
    ca: Option<&Path>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    match ca {
        None => raw_http(host, method, path, headers, body),
        Some(ca) => curl(host, ca, method, path, headers, body),
    }
}

/// The repository named in a `/v2/NAME/(blobs|manifests|tags)/…` path.
pub fn repo_of(path: &str) -> Option<String> {
    let rest = path.split('?').next()?.strip_prefix("/v2/")?;
    for marker in ["/blobs/", "/manifests/", "/tags/"] {
        if let Some(i) = rest.rfind(marker) {
            return Some(rest[..i].to_string());
        }
    }
    None
}

/// Makes a CA, and a server certificate for IP:127.0.0.1 and DNS:localhost
/// signed by it (EC P-256), in `root`; `root/certs.d/ca.crt` is a copy of
/// the CA.
pub fn make_tls(root: &Path) {
    let f = |n: &str| root.join(n).to_str().expect("utf-8").to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a: Vec<&str> = vec!["req", "-x509", "-new"];
    a.extend(ec);
    let (ca_key, ca_crt) = (f("ca.key"), f("ca.crt"));
    a.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_crt,
        "-subj",
        "/CN=imgbuild test CA",
        "-days",
        "2",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&a);
    let (key, csr, crt, ext) = (
        f("server.key"),
        f("server.csr"),
        f("server.crt"),
        f("server.ext"),
    );
    let mut a: Vec<&str> = vec!["req", "-new"];
    a.extend(ec);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(&a);
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    let serial = format!(
        "0x{:x}{:08x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos())
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-set_serial",
        &serial,
        "-days",
        "2",
        "-out",
        &crt,
        "-extfile",
        &ext,
    ]);
    fs::create_dir(root.join("certs.d")).expect("mkdir certs.d");
    fs::copy(&ca_crt, root.join("certs.d/ca.crt")).expect("copy ca.crt");
}

/// One HTTPS request through `curl --cacert CA`.
fn curl(
    host: &str,
    ca: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-S",
        "--http1.1",
        "--max-time",
        "20",
        "--cacert",
        p(ca),
    ]);
    if method == "HEAD" {
        c.arg("-I");
    } else {
        c.args(["-i", "-X", method]);
    }
    for (k, v) in headers {
        c.arg("-H").arg(format!("{k}: {v}"));
    }
    c.arg("-H").arg("Expect:");
    if body.is_some() {
        c.args(["-H", "Content-Type: application/octet-stream"]);
        c.args(["--data-binary", "@-"]);
    }
    c.arg(format!("https://{host}{path}"));
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot run curl ({e}): install it with `apt-get install curl`"))?;
    let mut stdin = child.stdin.take().expect("piped");
    if let Some(b) = body {
        stdin.write_all(b).map_err(|e| e.to_string())?;
    }
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_response(&out.stdout, method == "HEAD")
}

/// One raw HTTP/1.1 request over plain TCP (Connection: close).
pub fn raw_http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let mut s = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes)
        .map_err(|e| format!("send to {host}: {e}"))?;
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        // A server that answers before reading the whole body resets the
        // connection: keep the answer when it arrived in full.
        return parse_response(&out, method == "HEAD")
            .map_err(|_| format!("read from {host}: {e}"));
    }
    parse_response(&out, method == "HEAD")
}

/// Parses a whole response (as `curl -i` prints or as read until close),
/// skipping 1xx heads. Bodies are taken as what follows the head (chunked
/// bodies are decoded).
fn parse_response(bytes: &[u8], head_only: bool) -> Result<HttpResponse, String> {
    let mut r = BufReader::new(bytes);
    loop {
        let head = super::proxy::read_head(&mut r)
            .map_err(|e| format!("bad response: {e}"))?
            .ok_or("empty response")?;
        let status: u16 = head
            .start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {:?}", head.start))?;
        if (100..200).contains(&status) {
            continue;
        }
        let mut body = Vec::new();
        if !head_only {
            let chunked = super::proxy::find_header(&head.headers, "transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            if chunked {
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                        break;
                    }
                    let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                        .map_err(|_| format!("bad chunk size {line:?}"))?;
                    if n == 0 {
                        break;
                    }
                    let mut chunk = vec![0; n + 2];
                    r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
                    body.extend_from_slice(&chunk[..n]);
                }
            } else {
                r.read_to_end(&mut body).map_err(|e| e.to_string())?;
            }
        }
        return Ok(HttpResponse {
            status,
            headers: head.headers,
            body,
        });
    }
}

/// Parses the access-log lines of a registry log:
/// `IP - USER [DATE] "METHOD URI PROTO" STATUS BYTES "REFERER" "UA"`.
pub fn parse_access_log(text: &str) -> Vec<AccessEntry> {
    text.lines().filter_map(parse_access_line).collect()
}

fn parse_access_line(line: &str) -> Option<AccessEntry> {
    if line.starts_with("time=") {
        return None;
    }
    let after_date = &line[line.find("] \"")? + 3..];
    let end = after_date.find('"')?;
    let mut req = after_date[..end].split(' ');
    let method = req.next()?.to_string();
    let uri = req.next()?;
    let mut rest = after_date[end + 1..].split_whitespace();
    let status = rest.next()?.parse().ok()?;
    let bytes = rest.next()?.parse().unwrap_or(0);
    let user_agent = after_date[end + 1..]
        .rsplit('"')
        .nth(1)
        .unwrap_or("")
        .to_string();
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    Some(AccessEntry {
        method,
        path: path.to_string(),
        query: query.to_string(),
        status,
        bytes,
        user_agent,
    })
}

fn is_upload_path(e: &AccessEntry) -> bool {
    e.path.starts_with("/v2/") && e.path.contains("/blobs/uploads/")
}

/// POST, PATCH and PUT requests under `/v2/…/blobs/uploads/` (whatever
/// their status).
pub fn blob_upload_requests(entries: &[AccessEntry]) -> usize {
    entries
        .iter()
        .filter(|e| matches!(e.method.as_str(), "POST" | "PATCH" | "PUT") && is_upload_path(e))
        .count()
}

/// Blob uploads completed: PUT …/blobs/uploads/…?digest= answered 201, plus
/// POST ?digest= (monolithic) answered 201 without a mount.
pub fn blob_uploads_completed(entries: &[AccessEntry]) -> usize {
    entries
        .iter()
        .filter(|e| {
            is_upload_path(e)
                && e.status == 201
                && ((e.method == "PUT") || (e.method == "POST" && !e.has_param("mount")))
        })
        .count()
}

/// Upload sessions started: POST …/blobs/uploads/ answered 202.
pub fn blob_upload_sessions(entries: &[AccessEntry]) -> usize {
    entries
        .iter()
        .filter(|e| e.method == "POST" && is_upload_path(e) && e.status == 202)
        .count()
}

/// Cross-repository mounts that worked: POST ?mount=…&from=… answered 201.
pub fn blob_mounts(entries: &[AccessEntry]) -> usize {
    entries
        .iter()
        .filter(|e| {
            e.method == "POST" && is_upload_path(e) && e.has_param("mount") && e.status == 201
        })
        .count()
}

/// PATCH requests (chunks) to uploads.
pub fn blob_patches(entries: &[AccessEntry]) -> usize {
    entries
        .iter()
        .filter(|e| e.method == "PATCH" && is_upload_path(e))
        .count()
}

/// Manifest PUTs answered 201.
pub fn manifest_puts(entries: &[AccessEntry]) -> usize {
    entries
        .iter()
        .filter(|e| e.method == "PUT" && e.path.contains("/manifests/") && e.status == 201)
        .count()
}

/// Entries with `method` ("*" for any) whose path contains `path_contains`.
pub fn requests_matching<'a>(
    entries: &'a [AccessEntry],
    method: &str,
    path_contains: &str,
) -> Vec<&'a AccessEntry> {
    entries
        .iter()
        .filter(|e| (method == "*" || e.method == method) && e.path.contains(path_contains))
        .collect()
}

/// Runs `skopeo --insecure-policy ARGS` (the policy file plays no part in
/// these tests); Ok(stdout) or Err(the command and its stderr).
pub fn skopeo<S: AsRef<str>>(args: &[S]) -> Result<String, String> {
    require_program("skopeo", "skopeo");
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run skopeo: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`skopeo {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

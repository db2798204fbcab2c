//! A bearer-token server for distribution's `token` auth, run as a thread of
//! the test process: `GET /token?service=S&scope=repository:R:pull,push`
//! (Basic credentials, or none for anonymous pulls) and the OAuth2 form
//! `POST /token` (grant_type=password) answer
//! `{"token", "access_token", "expires_in"}` with an RS256 JWT that
//! distribution verifies against `token.crt`.
//!
//! Everything is made with std, `sha2`, `serde_json` and the `openssl`
//! command-line tool (one `openssl dgst -sign` per token).

use super::proxy::{find_header, read_head};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the token server accepts and how long its tokens live.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// The `service` (JWT `aud`) the registry expects.
    pub service: String,
    /// The JWT `iss` the registry expects.
    pub issuer: String,
    pub user: String,
    pub pass: String,
    /// The lifetime the registry enforces, and `expires_in` in the answer.
    pub ttl_secs: u64,
    /// Anonymous requests get pull-only tokens (otherwise 401).
    pub anonymous_pull: bool,
}

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub method: String,
    /// The authenticated user (None: anonymous or bad credentials).
    pub user: Option<String>,
    /// The `scope` values asked for, one scope each.
    pub scopes: Vec<String>,
    /// 200 when a token was issued, 401 otherwise (400 for a bad request).
    pub status: u16,
    /// The access granted, as `type:name:actions` strings.
    pub granted: Vec<String>,
}

/// distribution accepts a token up to this long after its `exp` (and before
/// its `nbf`): `registry/auth/token` has `Leeway = 60 * time.Second`. The
/// server back-dates `exp` by it so that the registry really refuses a token
/// once `ttl_secs` have passed; see [`TokenServer::start`].
pub const REGISTRY_LEEWAY_SECS: u64 = 60;

/// A running token server. Stops on drop.
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    cfg: TokenConfig,
    key: PathBuf,
    kid: String,
    issued: AtomicUsize,
    serial: AtomicUsize,
    log: Mutex<Vec<TokenRequest>>,
}

impl TokenServer {
    /// Makes an RSA key and its self-signed certificate in `dir`
    /// (`token.key`, `token.crt`) and starts serving on 127.0.0.1 (a free port).
    pub fn start(dir: &Path, cfg: TokenConfig) -> TokenServer {
        let key = dir.join("token.key");
        let crt = dir.join("token.crt");
        openssl(&["genrsa", "-out", p(&key), "2048"]);
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            p(&key),
            "-subj",
            "/CN=token",
            "-days",
            "2",
            "-out",
            p(&crt),
        ]);
        let spki = openssl(&["pkey", "-in", p(&key), "-pubout", "-outform", "DER"]);
        let kid = libtrust_key_id(&spki);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("token server address");
        let state = Arc::new(State {
            cfg,
            key,
            kid,
            issued: AtomicUsize::new(0),
            serial: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, state, stop))
        };
        TokenServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/token`, the realm for the registry's config.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The certificate whose key signs the tokens (the registry's `rootcertbundle`).
    pub fn cert_path(&self) -> PathBuf {
        self.state.key.with_file_name("token.crt")
    }

    pub fn config(&self) -> &TokenConfig {
        &self.state.cfg
    }

    /// The libtrust key id in every token's header.
    pub fn kid(&self) -> &str {
        &self.state.kid
    }

    /// Tokens issued over HTTP so far ([`TokenServer::mint`] does not count).
    pub fn issued(&self) -> usize {
        self.state.issued.load(Ordering::SeqCst)
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log.lock().expect("token log").clone()
    }

    /// A token for `sub` with this access (`(type, name, actions)`), made
    /// without HTTP and not counted: for the harness's own API calls.
    pub fn mint(&self, sub: &str, access: &[(String, String, Vec<String>)]) -> String {
        self.state.sign(sub, access)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = serve(s, &state);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Answers one request and closes the connection.
fn serve(s: TcpStream, state: &State) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let Some(head) = read_head(&mut r)? else {
        return Ok(());
    };
    let mut parts = head.start.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = parse_form(query);
    let mut basic = find_header(&head.headers, "authorization").and_then(parse_basic);
    if method == "POST" {
        let n: usize = find_header(&head.headers, "content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        let form = parse_form(&String::from_utf8_lossy(&body));
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if field("grant_type").as_deref() == Some("password") {
            basic = Some((
                field("username").unwrap_or_default(),
                field("password").unwrap_or_default(),
            ));
        }
        params.extend(form);
    }
    // Scopes: every `scope` parameter, each possibly several space-separated.
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let mut rec = TokenRequest {
        method: method.clone(),
        user: None,
        scopes: scopes.clone(),
        status: 401,
        granted: Vec::new(),
    };
    let (status, body) = if path != "/token" || !(method == "GET" || method == "POST") {
        rec.status = 404;
        (404, json!({"error": "not found"}))
    } else {
        let cfg = &state.cfg;
        let who = match &basic {
            Some((u, pw)) if *u == cfg.user && *pw == cfg.pass => Some(Some(u.clone())),
            Some(_) => None,
            None if cfg.anonymous_pull => Some(None),
            None => None,
        };
        match who {
            None => (401, json!({"error": "invalid credentials"})),
            Some(user) => {
                let access = grant(&scopes, user.is_some());
                let token = state.sign(user.as_deref().unwrap_or(""), &access);
                state.issued.fetch_add(1, Ordering::SeqCst);
                rec.user = user;
                rec.status = 200;
                rec.granted = access
                    .iter()
                    .map(|(t, n, a)| format!("{t}:{n}:{}", a.join(",")))
                    .collect();
                let mut v = json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": cfg.ttl_secs,
                });
                if method == "POST" {
                    v["scope"] = Value::String(scopes.join(" "));
                }
                (200, v)
            }
        }
    };
    state.log.lock().expect("token log").push(rec);
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        out.push_str("WWW-Authenticate: Basic realm=\"token\"\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// The access a user gets: everything asked for on repositories (and the
/// catalog) when authenticated, only `pull` when anonymous.
fn grant(scopes: &[String], authenticated: bool) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for s in scopes {
        // type:name:actions, where the name may hold ':' (a host:port prefix).
        let Some((t, rest)) = s.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let actions: Vec<String> = actions
            .split(',')
            .filter(|a| authenticated || *a == "pull")
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        let allowed_type = t == "repository" || (t == "registry" && authenticated);
        if !allowed_type || actions.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(t2, n2, _)| t2 == t && n2 == name) {
            Some((_, _, a)) => {
                for x in actions {
                    if !a.contains(&x) {
                        a.push(x);
                    }
                }
            }
            None => out.push((t.to_string(), name.to_string(), actions)),
        }
    }
    out
}

impl State {
    fn sign(&self, sub: &str, access: &[(String, String, Vec<String>)]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        // distribution adds REGISTRY_LEEWAY_SECS to `exp` (and takes it from
        // `nbf`) when verifying: back-date `exp` so the token stops working
        // after ttl_secs. `nbf` is left at now - 1 (the leeway covers clock
        // steps anyway).
        let exp = (now + self.cfg.ttl_secs) as i64 - REGISTRY_LEEWAY_SECS as i64;
        let claims = json!({
            "iss": self.cfg.issuer,
            "sub": sub,
            "aud": self.cfg.service,
            "exp": exp,
            "nbf": now - 1,
            "iat": now,
            "jti": format!("imgbuild-test-{}-{serial}", std::process::id()),
            "access": access
                .iter()
                .map(|(t, n, a)| json!({"type": t, "name": n, "actions": a}))
                .collect::<Vec<_>>(),
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let sig = openssl_stdin(
            &["dgst", "-sha256", "-sign", p(&self.key)],
            signing_input.as_bytes(),
        );
        format!("{signing_input}.{}", base64url(&sig))
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Runs `openssl ARGS`; panics with its stderr unless it succeeds. Returns stdout.
#[track_caller]
pub fn openssl(args: &[&str]) -> Vec<u8> {
    openssl_stdin(args, b"")
}

#[track_caller]
pub fn openssl_stdin(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): install it with `apt-get install openssl`")
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("write to openssl");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for openssl");
    assert!(
        out.status.success(),
        "`openssl {}` failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The libtrust key id of a public key given as SPKI DER: base32 (RFC 4648,
/// no padding) of the first 30 bytes of its sha256, in groups of 4 joined by ':'.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let h = Sha256::digest(spki_der);
    let b32 = base32(&h[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(A[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(A[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// base64url without padding (JWT segments).
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Standard base64 with padding (Basic credentials).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard or url-safe base64, padded or not; None when malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
    let s = s.trim();
    STANDARD_PAD_INDIFFERENT
        .decode(s)
        .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(s))
        .ok()
}

/// `Basic BASE64(user:pass)` → (user, pass).
fn parse_basic(v: &str) -> Option<(String, String)> {
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(base64_decode(rest)?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `a=1&b=x%20y` → [(a, 1), (b, "x y")] (`+` is a space).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Decodes the claims of a JWT (no signature check), for tests.
pub fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64_decode(part).expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

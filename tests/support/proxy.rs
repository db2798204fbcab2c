//! A fault-injecting plain-HTTP reverse proxy for registry tests.
//!
//! `Proxy::start("127.0.0.1:PORT")` listens on another free 127.0.0.1 port
//! and forwards every HTTP/1.1 request to the upstream: it parses the request
//! head, forwards the body (Content-Length or chunked, re-chunked as it
//! goes), and relays the response (Content-Length, chunked or until close).
//! Client connections are kept alive; each request goes upstream on a fresh
//! connection (`Connection: close`), so a fault never leaves a half-used
//! upstream connection behind.
//!
//! The client's `Host` header is forwarded unchanged, so distribution builds
//! its absolute `Location` URLs with the proxy's address already; `Location`
//! headers naming the upstream's host:port are rewritten to the proxy's all
//! the same. `Expect: 100-continue` is answered by the proxy itself.
//!
//! Tests program faults with [`Proxy::add_fault`] and read what went through
//! with [`Proxy::requests`] / [`Proxy::uploaded_bytes`].

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A fault for the next `times` requests whose method equals `method` ("*"
/// or "" for any) and whose request target (path and query) contains
/// `path_contains`. Faults are tried in the order they were added; the first
/// with `times` left applies.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward the head and the first `after_bytes` body bytes, then close
    /// both connections: the registry sees an unexpected EOF; the client
    /// sees its connection closed mid-request (EOF when it reads: the proxy
    /// half-closes and swallows the rest of the body, so the client never
    /// gets a broken pipe instead). When the body is not longer than
    /// `after_bytes`, all of it is forwarded and the connections are closed
    /// before the response comes back.
    DropMidBody {
        method: String,
        path_contains: String,
        after_bytes: u64,
        times: usize,
    },
    /// Read the request (body and all) and answer `status` (e.g. 500, 503,
    /// 429) with a distribution-style JSON error, without forwarding it.
    /// `retry_after` adds a `Retry-After: N` header.
    Status {
        method: String,
        path_contains: String,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    },
    /// Forward the whole request and wait for the registry's answer, then
    /// close the client's connection without relaying it (the request took
    /// effect; the client cannot know).
    DropResponse {
        method: String,
        path_contains: String,
        times: usize,
    },
}

impl Fault {
    /// `DropMidBody` with these fields.
    pub fn drop_mid_body(
        method: &str,
        path_contains: &str,
        after_bytes: u64,
        times: usize,
    ) -> Fault {
        Fault::DropMidBody {
            method: method.into(),
            path_contains: path_contains.into(),
            after_bytes,
            times,
        }
    }

    /// `Status` with these fields.
    pub fn status(
        method: &str,
        path_contains: &str,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    ) -> Fault {
        Fault::Status {
            method: method.into(),
            path_contains: path_contains.into(),
            status,
            retry_after,
            times,
        }
    }

    /// `DropResponse` with these fields.
    pub fn drop_response(method: &str, path_contains: &str, times: usize) -> Fault {
        Fault::DropResponse {
            method: method.into(),
            path_contains: path_contains.into(),
            times,
        }
    }

    fn parts(&mut self) -> (&str, &str, &mut usize) {
        match self {
            Fault::DropMidBody {
                method,
                path_contains,
                times,
                ..
            }
            | Fault::Status {
                method,
                path_contains,
                times,
                ..
            }
            | Fault::DropResponse {
                method,
                path_contains,
                times,
            } => (method, path_contains, times),
        }
    }

    /// A short name for the request log.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::DropMidBody { .. } => "drop-mid-body",
            Fault::Status { .. } => "status",
            Fault::DropResponse { .. } => "drop-response",
        }
    }
}

/// One request the proxy handled.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Request body bytes read from the client (decoded, for chunked bodies).
    pub body_received: u64,
    /// Request body bytes forwarded to the registry.
    pub body_forwarded: u64,
    /// The status the client got (None: the connection was dropped).
    pub status: Option<u16>,
    /// The fault applied, if any ([`Fault::kind`]).
    pub fault: Option<&'static str>,
}

impl ProxyRequest {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A PATCH, PUT or POST of blob data (`/blobs/uploads/`).
    pub fn is_blob_upload(&self) -> bool {
        matches!(self.method.as_str(), "PATCH" | "PUT" | "POST")
            && self.path().contains("/blobs/uploads/")
    }
}

struct Shared {
    upstream: String,
    faults: Mutex<Vec<Fault>>,
    fired: Mutex<Vec<&'static str>>,
    log: Mutex<Vec<ProxyRequest>>,
    conns: Mutex<Vec<TcpStream>>,
    proxy_host: String,
}

/// A running proxy. Stops (and closes every connection) on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream`
    /// ("127.0.0.1:PORT", a plain-HTTP server).
    pub fn start(upstream: &str) -> Proxy {
        assert!(
            upstream.starts_with("127.0.0.1:") || upstream.starts_with("localhost:"),
            "the test proxy only forwards to this machine, not to {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            faults: Mutex::new(Vec::new()),
            fired: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            proxy_host: addr.to_string(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, shared, stop))
        };
        Proxy {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// "127.0.0.1:PORT" of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The upstream it forwards to.
    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    pub fn add_fault(&self, f: Fault) {
        self.shared.faults.lock().expect("faults").push(f);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.lock().expect("faults").clear();
    }

    /// How many times a fault was applied so far.
    pub fn faults_fired(&self) -> usize {
        self.shared.fired.lock().expect("fired").len()
    }

    /// Every request handled so far, in the order they were answered (each
    /// is recorded before the client can see its answer).
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.shared.log.lock().expect("log").clone()
    }

    /// Forgets the requests handled so far (counters start again at 0).
    pub fn reset_log(&self) {
        self.shared.log.lock().expect("log").clear();
    }

    /// Request body bytes forwarded to the registry by PATCH and PUT (and
    /// POST) requests to `/blobs/uploads/`: the blob bytes that reached it.
    pub fn uploaded_bytes(&self) -> u64 {
        self.requests()
            .iter()
            .filter(|r| r.is_blob_upload())
            .map(|r| r.body_forwarded)
            .sum()
    }

    /// Request body bytes forwarded for requests matching `method` ("*" for
    /// any) whose target contains `path_contains`.
    pub fn body_bytes(&self, method: &str, path_contains: &str) -> u64 {
        self.requests()
            .iter()
            .filter(|r| method_matches(method, &r.method) && r.target.contains(path_contains))
            .map(|r| r.body_forwarded)
            .sum()
    }

    /// How many requests match `method` ("*" for any) and `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| method_matches(method, &r.method) && r.target.contains(path_contains))
            .count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.shared.conns.lock().expect("conns").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn method_matches(pattern: &str, method: &str) -> bool {
    pattern.is_empty() || pattern == "*" || pattern.eq_ignore_ascii_case(method)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                if let Ok(c) = s.try_clone() {
                    shared.conns.lock().expect("conns").push(c);
                }
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(s, &shared);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 framing
// ---------------------------------------------------------------------------

/// A request or response head: the start line and the header fields in order.
#[derive(Clone, Debug)]
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

/// The first value of header `name` (case-insensitive).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads a head (up to the empty line). Ok(None) on EOF before any byte.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() && total == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside an HTTP head",
            ));
        }
        total += n;
        if total > 256 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP head too long",
            ));
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // tolerate empty lines between messages
            }
            break;
        }
        lines.push(text);
    }
    let start = lines.remove(0);
    let headers = lines
        .into_iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Some(Head { start, headers }))
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    find_header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Option<u64> {
    find_header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

fn request_body(headers: &[(String, String)]) -> Body {
    if is_chunked(headers) {
        Body::Chunked
    } else {
        match content_length(headers) {
            Some(n) if n > 0 => Body::Length(n),
            _ => Body::None,
        }
    }
}

fn response_body(method: &str, status: u16, headers: &[(String, String)]) -> Body {
    if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
        Body::None
    } else if is_chunked(headers) {
        Body::Chunked
    } else {
        match content_length(headers) {
            Some(0) => Body::None,
            Some(n) => Body::Length(n),
            None => Body::UntilClose,
        }
    }
}

/// Copies a body from `r` to `w` (`w` None: read and discard), stopping
/// after `limit` payload bytes when given. Chunked bodies are decoded and
/// re-chunked. Returns (payload bytes read, payload bytes written, whether
/// the whole body was copied).
fn copy_body(
    r: &mut impl BufRead,
    mut w: Option<&mut dyn Write>,
    kind: Body,
    limit: Option<u64>,
) -> io::Result<(u64, u64, bool)> {
    let mut read = 0u64;
    let mut written = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let chunked = kind == Body::Chunked;
    // Copies exactly `n` bytes (or until EOF when n is None), honouring the limit.
    let mut copy_n = |r: &mut dyn BufRead,
                      w: &mut Option<&mut dyn Write>,
                      n: Option<u64>,
                      read: &mut u64,
                      written: &mut u64|
     -> io::Result<bool> {
        let mut left = n;
        loop {
            if left == Some(0) {
                return Ok(true);
            }
            let mut want = buf.len() as u64;
            if let Some(l) = left {
                want = want.min(l);
            }
            if let Some(lim) = limit {
                if *written >= lim {
                    return Ok(false);
                }
                want = want.min(lim - *written);
            }
            let got = r.read(&mut buf[..want as usize])?;
            if got == 0 {
                if left.is_none() {
                    return Ok(true);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a body",
                ));
            }
            *read += got as u64;
            if let Some(w) = w.as_mut() {
                if chunked {
                    write!(w, "{got:x}\r\n")?;
                }
                w.write_all(&buf[..got])?;
                if chunked {
                    w.write_all(b"\r\n")?;
                }
            }
            *written += got as u64;
            if let Some(l) = left.as_mut() {
                *l -= got as u64;
            }
        }
    };
    let complete = match kind {
        Body::None => true,
        Body::Length(n) => copy_n(r, &mut w, Some(n), &mut read, &mut written)?,
        Body::UntilClose => copy_n(r, &mut w, None, &mut read, &mut written)?,
        Body::Chunked => loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body",
                ));
            }
            let size_text = line.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {line:?}"),
                )
            })?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                if let Some(w) = w.as_mut() {
                    w.write_all(b"0\r\n\r\n")?;
                }
                break true;
            }
            if !copy_n(r, &mut w, Some(size), &mut read, &mut written)? {
                break false;
            }
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        },
    };
    if let Some(w) = w.as_mut() {
        w.flush()?;
    }
    Ok((read, written, complete))
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A distribution-style error answer.
fn error_response(status: u16, retry_after: Option<u64>, close: bool) -> Vec<u8> {
    let code = match status {
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let body = format!(
        "{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"fault injected by the test proxy\",\"detail\":{{}}}}]}}\n"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    if let Some(s) = retry_after {
        out.push_str(&format!("Retry-After: {s}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

impl Shared {
    /// The fault for this request, if any (its `times` is used up by one).
    fn take_fault(&self, method: &str, target: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().expect("faults");
        for f in faults.iter_mut() {
            let (m, p, times) = f.parts();
            if *times > 0 && method_matches(m, method) && target.contains(p) {
                *times -= 1;
                let kind = f.kind();
                self.fired.lock().expect("fired").push(kind);
                return Some(f.clone());
            }
        }
        None
    }

    fn record(&self, r: ProxyRequest) {
        self.log.lock().expect("log").push(r);
    }

    /// `Location` values naming the upstream now name the proxy.
    fn rewrite_location(&self, v: &str) -> String {
        for scheme in ["http://", "https://"] {
            let up = format!("{scheme}{}", self.upstream);
            if let Some(rest) = v.strip_prefix(&up) {
                return format!("http://{}{rest}", self.proxy_host);
            }
        }
        v.to_string()
    }
}

/// Serves one client connection: requests one after another (keep-alive).
fn serve(client: TcpStream, sh: &Shared) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut cr = BufReader::with_capacity(64 * 1024, client.try_clone()?);
    let mut cw = client;
    loop {
        // Clients told not to verify TLS (skopeo's --dest-tls-verify=false)
        // try HTTPS first and fall back to HTTP when that fails: refuse a
        // TLS ClientHello (or anything else that is not HTTP) at once
        // rather than wait for a line end that never comes.
        let first = cr.fill_buf()?.first().copied();
        match first {
            None => return Ok(()),
            Some(b) if !b.is_ascii_alphabetic() && b != b'\r' && b != b'\n' => {
                let _ = cw.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = cw.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(_) => {}
        }
        let Some(head) = read_head(&mut cr)? else {
            return Ok(());
        };
        let mut start = head.start.split_whitespace();
        let method = start.next().unwrap_or("").to_string();
        let target = start.next().unwrap_or("/").to_string();
        let version = start.next().unwrap_or("HTTP/1.1").to_string();
        let client_close = version == "HTTP/1.0"
            || find_header(&head.headers, "connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let body = request_body(&head.headers);
        if find_header(&head.headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            cw.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut rec = ProxyRequest {
            method: method.clone(),
            target: target.clone(),
            body_received: 0,
            body_forwarded: 0,
            status: None,
            fault: None,
        };
        let fault = sh.take_fault(&method, &target);
        rec.fault = fault.as_ref().map(Fault::kind);

        if let Some(Fault::Status {
            status,
            retry_after,
            ..
        }) = fault
        {
            let (got, _, _) = copy_body(&mut cr, None, body, None)?;
            rec.body_received = got;
            rec.status = Some(status);
            sh.record(rec);
            cw.write_all(&error_response(status, retry_after, client_close))?;
            cw.flush()?;
            if client_close {
                return Ok(());
            }
            continue;
        }

        let upstream = match TcpStream::connect(&sh.upstream) {
            Ok(u) => u,
            Err(e) => {
                // Answer 502 (after reading the body) so the client sees why.
                let (got, _, _) = copy_body(&mut cr, None, body, None)?;
                rec.body_received = got;
                rec.status = Some(502);
                sh.record(rec);
                let msg = format!("proxy: cannot reach {}: {e}\n", sh.upstream);
                write!(
                    cw,
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                    msg.len()
                )?;
                return Ok(());
            }
        };
        upstream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut uw = io::BufWriter::with_capacity(64 * 1024, upstream.try_clone()?);
        let mut ur = BufReader::with_capacity(64 * 1024, upstream.try_clone()?);

        // The request head, less hop-by-hop fields.
        let mut out = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in &head.headers {
            let lk = k.to_ascii_lowercase();
            if HOP_BY_HOP.contains(&lk.as_str()) {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        uw.write_all(out.as_bytes())?;

        let limit = match &fault {
            Some(Fault::DropMidBody { after_bytes, .. }) => Some(*after_bytes),
            _ => None,
        };
        let copied = copy_body(&mut cr, Some(&mut uw), body, limit);
        let (got, sent, _complete) = match copied {
            Ok(x) => x,
            Err(e) => {
                // The client went away mid-body: pass the EOF on.
                let _ = upstream.shutdown(Shutdown::Both);
                sh.record(rec);
                return Err(e);
            }
        };
        uw.flush()?;
        rec.body_received = got;
        rec.body_forwarded = sent;
        if let Some(Fault::DropMidBody { .. }) = fault {
            let _ = upstream.shutdown(Shutdown::Both);
            sh.record(rec);
            // Close towards the client, but read (and drop) whatever it still
            // sends: it then sees the connection closed (EOF) every time,
            // rather than EOF or a broken pipe depending on timing.
            let _ = cw.shutdown(Shutdown::Write);
            let _ = cw.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = io::copy(&mut cr, &mut io::sink());
            let _ = cw.shutdown(Shutdown::Both);
            return Ok(());
        }

        // The response; 1xx answers are skipped (the proxy sent its own 100).
        let resp = loop {
            let Some(h) = read_head(&mut ur)? else {
                sh.record(rec);
                let _ = cw.shutdown(Shutdown::Both);
                return Ok(());
            };
            let status: u16 = h
                .start
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if (100..200).contains(&status) {
                continue;
            }
            break (status, h);
        };
        let (status, rhead) = resp;
        // Recorded before the client can see the answer: a test that reads
        // the log once its client is done finds every request in it.
        rec.status = Some(status);
        if let Some(Fault::DropResponse { .. }) = fault {
            let _ = copy_body(
                &mut ur,
                None,
                response_body(&method, status, &rhead.headers),
                None,
            );
            rec.status = None;
            sh.record(rec);
            let _ = upstream.shutdown(Shutdown::Both);
            let _ = cw.shutdown(Shutdown::Both);
            return Ok(());
        }
        sh.record(rec);
        let rbody = response_body(&method, status, &rhead.headers);
        let close_after = client_close || rbody == Body::UntilClose;
        let mut out = format!("{}\r\n", rhead.start);
        for (k, v) in &rhead.headers {
            let lk = k.to_ascii_lowercase();
            if HOP_BY_HOP.contains(&lk.as_str()) {
                continue;
            }
            if lk == "location" {
                out.push_str(&format!("{k}: {}\r\n", sh.rewrite_location(v)));
            } else {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if close_after {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bw = io::BufWriter::with_capacity(64 * 1024, &mut cw);
        bw.write_all(out.as_bytes())?;
        // A close-delimited response goes to the client as is (it reads to EOF).
        let (_, _, _) = copy_body(&mut ur, Some(&mut bw), rbody, None)?;
        bw.flush()?;
        drop(bw);
        let _ = upstream.shutdown(Shutdown::Both);
        if close_after {
            let _ = cw.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

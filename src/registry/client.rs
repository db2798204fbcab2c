//! An OCI distribution client over blocking HTTP (ureq): auth challenges,
//! retries with backoff, manifests, blob HEAD/GET/mount/upload.

use super::auth::{self, Challenge, Credentials};
use super::reference::Reference;
use crate::digest::Digest;
use crate::error::{Error, RegistryErrorKind, RegistryStatus, Result};
use crate::net::HttpConfig;
use crate::store::Store;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::Agent;

/// Blobs at most this large go up in one PUT; larger ones in PATCH chunks.
pub const MONOLITHIC_MAX: u64 = 8 << 20;
/// Chunk size for chunked uploads.
pub const CHUNK: u64 = 16 << 20;
const MAX_TRIES: u32 = 5;

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How a [`Client`] reaches registries. The default trusts the
/// distribution's CA bundle, uses no proxy and no stored credentials;
/// [`ClientOptions::from_env`] is what the command line starts from.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Trust roots (and extra CA certificates, PEM) and proxy.
    pub http: HttpConfig,
    /// Credentials given on the command line, for these registries (all when empty).
    pub credentials: Option<Credentials>,
    pub credentials_for: Vec<String>,
    /// Docker's `config.json`, for stored credentials and credential
    /// helpers (see [`auth::docker_config_from_env`]); `None`: none.
    pub docker_config: Option<PathBuf>,
}

impl ClientOptions {
    /// Options from the process environment, read once: the HTTP
    /// configuration ([`HttpConfig::from_env`]: `SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, the proxy variables) and Docker's config
    /// ([`auth::docker_config_from_env`]: `DOCKER_CONFIG`, `HOME`).
    pub fn from_env() -> ClientOptions {
        ClientOptions {
            http: HttpConfig::from_env(),
            docker_config: auth::docker_config_from_env(),
            ..ClientOptions::default()
        }
    }
}

struct HostState {
    base: String,
    challenge: Option<Challenge>,
    creds: Option<Option<Credentials>>,
    /// scope → (token, expiry)
    tokens: HashMap<String, (String, Instant)>,
}

pub struct Client {
    /// (verifying, for --insecure-registry hosts), made on first use so a
    /// build that never reaches a registry does not load the system's roots.
    agents: std::sync::OnceLock<std::result::Result<(Agent, Agent), String>>,
    opts: ClientOptions,
    hosts: Mutex<HashMap<String, Arc<Mutex<HostState>>>>,
}

/// What to send.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<ureq::Body>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn bytes(&mut self, limit: u64) -> Result<Vec<u8>> {
        match self.body.take() {
            None => Ok(Vec::new()),
            Some(b) => b
                .into_with_config()
                .limit(limit)
                .read_to_vec()
                .map_err(|e| Error::Other(format!("reading a registry response: {e}"))),
        }
    }
}

pub fn registry_error(registry: &str, repo: &str, what: &str, status: u16, body: &str) -> Error {
    let detail = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(String::from))
        .unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"][0]["code"].as_str().map(String::from))
        .unwrap_or_default();
    let hint = match (status, code.as_str()) {
        (401, _) => "check the credentials (docker login, --username/--password-stdin)",
        (403, _) => "the credentials lack permission for this repository",
        (404, _) | (_, "NAME_UNKNOWN") | (_, "MANIFEST_UNKNOWN") => "check the repository and tag",
        (413, _) => "the registry refused the size of the upload (check its body size limit)",
        (429, _) => "rate limited by the registry; try later or authenticate",
        (s, _) if s >= 500 => "the registry failed; try again later",
        _ => "see the registry's message",
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {code} {detail}")
    };
    Error::Registry {
        message: format!("{registry}/{repo}: {what}: HTTP {status}{detail} ({hint})"),
        status: RegistryStatus::new(
            RegistryErrorKind::from_http(status, &code),
            status,
            registry,
            repo,
        ),
    }
}

/// A registry failure of `kind` about `r`'s repository.
fn failure(r: &Reference, kind: RegistryErrorKind, http: u16, message: String) -> Error {
    Error::Registry {
        message,
        status: RegistryStatus::new(kind, http, &r.registry, &r.repository),
    }
}

fn transport_error(r: &Reference, what: &str, e: &ureq::Error) -> Error {
    failure(
        r,
        RegistryErrorKind::Transport,
        0,
        format!("{}: {what}: {e}", r.registry),
    )
}

fn retryable(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
    ) || e.to_string().contains("connection")
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        for f in &opts.http.ca_certs {
            if !f.is_file() {
                return Err(Error::input(f, "no such CA certificate file"));
            }
        }
        Ok(Client {
            agents: std::sync::OnceLock::new(),
            opts,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    fn agents(&self) -> Result<&(Agent, Agent)> {
        let made = self.agents.get_or_init(|| {
            let make = |skip_verify: bool| {
                crate::net::agent(&self.opts.http, skip_verify, 5).map_err(|e| e.to_string())
            };
            Ok((make(false)?, make(true)?))
        });
        made.as_ref().map_err(|m| Error::Other(m.clone()))
    }

    fn agent_for(&self, r: &Reference) -> Result<&Agent> {
        let (secure, insecure) = self.agents()?;
        Ok(if self.opts.insecure.iter().any(|h| h == &r.registry) {
            insecure
        } else {
            secure
        })
    }

    fn allowed_plain(&self, r: &Reference) -> bool {
        r.is_loopback() || self.opts.insecure.iter().any(|h| h == &r.registry)
    }

    /// The host's state, probing https (then http where allowed) on first use.
    fn host(&self, r: &Reference) -> Result<Arc<Mutex<HostState>>> {
        let key = r.registry.clone();
        if let Some(h) = self
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(h.clone());
        }
        let api = r.api_host().to_string();
        let mut last = None;
        let mut chosen = None;
        let schemes: &[&str] = if self.allowed_plain(r) {
            &["https", "http"]
        } else {
            &["https"]
        };
        for scheme in schemes {
            let url = format!("{scheme}://{api}/v2/");
            match self.agent_for(r)?.get(&url).call() {
                Ok(resp) => {
                    let challenge = resp
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .and_then(auth::parse_challenge);
                    chosen = Some((format!("{scheme}://{api}"), challenge));
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let (base, challenge) = match chosen {
            Some(c) => c,
            None => {
                let e = last.expect("tried at least one scheme");
                let hint = if !self.allowed_plain(r) {
                    " (plain HTTP is used only for localhost or hosts named with --insecure-registry; for a private CA use --ca-cert)"
                } else {
                    ""
                };
                return Err(failure(
                    r,
                    RegistryErrorKind::Transport,
                    0,
                    format!("{}: cannot reach the registry: {e}{hint}", r.registry),
                ));
            }
        };
        let state = Arc::new(Mutex::new(HostState {
            base,
            challenge,
            creds: None,
            tokens: HashMap::new(),
        }));
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Ok(hosts.entry(key).or_insert(state).clone())
    }

    fn credentials(&self, r: &Reference, st: &mut HostState) -> Result<Option<Credentials>> {
        if let Some(c) = &st.creds {
            return Ok(c.clone());
        }
        let explicit = self.opts.credentials.clone().filter(|_| {
            self.opts.credentials_for.is_empty() || self.opts.credentials_for.contains(&r.registry)
        });
        let c = match explicit {
            Some(c) => Some(c),
            None => match &self.opts.docker_config {
                Some(path) => auth::from_docker_config(path, &r.registry)
                    .map_err(|m| failure(r, RegistryErrorKind::Credentials, 0, m))?,
                None => None,
            },
        };
        st.creds = Some(c.clone());
        Ok(c)
    }

    /// The Authorization header for `scopes` on this host, fetching a token if needed.
    fn authorization(
        &self,
        r: &Reference,
        st: &mut HostState,
        scopes: &[String],
        force: bool,
    ) -> Result<Option<String>> {
        let Some(ch) = st.challenge.clone() else {
            return Ok(None);
        };
        match ch {
            Challenge::Basic => Ok(self.credentials(r, st)?.map(|c| auth::basic_header(&c))),
            Challenge::Bearer { realm, service, .. } => {
                let key = scopes.join(" ");
                if !force
                    && let Some((t, exp)) = st.tokens.get(&key)
                    && Instant::now() < *exp
                {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let url = token_url(&realm, service.as_deref(), scopes).map_err(|m| {
                    failure(
                        r,
                        RegistryErrorKind::Protocol,
                        401,
                        format!("{}: {m}", r.registry),
                    )
                })?;
                let creds = self.credentials(r, st)?;
                let mut req = self.agent_for(r)?.get(&url);
                if let Some(c) = &creds {
                    req = req.header("Authorization", &auth::basic_header(c));
                }
                let resp = req
                    .call()
                    .map_err(|e| transport_error(r, "getting a token", &e))?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .unwrap_or_default();
                if status != 200 {
                    return Err(registry_error(
                        &r.registry,
                        &r.repository,
                        "getting a token",
                        status,
                        &String::from_utf8_lossy(&body),
                    ));
                }
                let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
                    failure(
                        r,
                        RegistryErrorKind::Protocol,
                        status,
                        format!("{}: the token server answered no JSON", r.registry),
                    )
                })?;
                let token = v["token"]
                    .as_str()
                    .or(v["access_token"].as_str())
                    .unwrap_or_default()
                    .to_string();
                if token.is_empty() {
                    return Err(failure(
                        r,
                        RegistryErrorKind::Protocol,
                        status,
                        format!("{}: the token server gave no token", r.registry),
                    ));
                }
                // Refresh a little before the token runs out.
                let ttl = v["expires_in"].as_u64().unwrap_or(60).max(2);
                let exp = Instant::now() + Duration::from_secs(ttl)
                    - Duration::from_secs(ttl.min(30) / 2);
                st.tokens.insert(key, (token.clone(), exp));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends a request with auth, retrying 401 once (fresh token) and
    /// 429/5xx/connection failures with backoff (honouring Retry-After).
    pub fn send(
        &self,
        r: &Reference,
        method: &str,
        url_or_path: &str,
        scopes: &[String],
        headers: &[(&str, String)],
        body: &Body,
    ) -> Result<Resp> {
        let host = self.host(r)?;
        let mut force = false;
        let mut tries = 0;
        loop {
            tries += 1;
            let (url, authz) = {
                let mut st = host.lock().unwrap_or_else(|e| e.into_inner());
                let url =
                    if url_or_path.starts_with("http://") || url_or_path.starts_with("https://") {
                        url_or_path.to_string()
                    } else {
                        format!("{}{url_or_path}", st.base)
                    };
                (url, self.authorization(r, &mut st, scopes, force)?)
            };
            let result = self.send_once(
                self.agent_for(r)?,
                method,
                &url,
                authz.as_deref(),
                headers,
                body,
            );
            match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 && tries < 3 {
                        let ch = resp
                            .headers()
                            .get("www-authenticate")
                            .and_then(|v| v.to_str().ok())
                            .and_then(auth::parse_challenge);
                        let mut st = host.lock().unwrap_or_else(|e| e.into_inner());
                        let had = st.challenge.clone();
                        if ch.is_some() {
                            st.challenge = ch;
                        }
                        // Retry when we learned how to authenticate or the token may have expired.
                        if st.challenge.is_some() && (had != st.challenge || !force) {
                            force = true;
                            continue;
                        }
                    }
                    if (status == 429 || status >= 500) && tries < MAX_TRIES {
                        let wait = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(|s| Duration::from_secs(s.min(60)))
                            .unwrap_or_else(|| backoff(tries));
                        std::thread::sleep(wait);
                        continue;
                    }
                    let headers = resp
                        .headers()
                        .iter()
                        .filter_map(|(k, v)| {
                            v.to_str()
                                .ok()
                                .map(|v| (k.as_str().to_string(), v.to_string()))
                        })
                        .collect();
                    return Ok(Resp {
                        status,
                        headers,
                        body: Some(resp.into_body()),
                    });
                }
                Err(e)
                    if retryable(&e) && tries < MAX_TRIES && !matches!(body, Body::File { .. }) =>
                {
                    std::thread::sleep(backoff(tries));
                }
                Err(e) => {
                    return Err(transport_error(
                        r,
                        &format!("{method} {}", redact_query(&url)),
                        &e,
                    ));
                }
            }
        }
    }

    fn send_once(
        &self,
        agent: &Agent,
        method: &str,
        url: &str,
        authz: Option<&str>,
        headers: &[(&str, String)],
        body: &Body,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut b = ureq::http::Request::builder().method(method).uri(url);
        if let Some(a) = authz {
            b = b.header("Authorization", a);
        }
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        match body {
            Body::Empty => {
                let needs_len = matches!(method, "PUT" | "POST" | "PATCH");
                if needs_len {
                    b = b.header("Content-Length", "0");
                }
                let req = b.body(()).map_err(|e| ureq::Error::BadUri(e.to_string()))?;
                agent.run(req)
            }
            Body::Bytes(bytes) => {
                let req = b
                    .body(bytes.to_vec())
                    .map_err(|e| ureq::Error::BadUri(e.to_string()))?;
                agent.run(req)
            }
            Body::File { path, offset, len } => {
                use std::io::Seek;
                let mut f = std::fs::File::open(path)?;
                f.seek(std::io::SeekFrom::Start(*offset))?;
                let reader = f.take(*len);
                b = b.header("Content-Length", len.to_string());
                let req = b
                    .body(ureq::SendBody::from_owned_reader(reader))
                    .map_err(|e| ureq::Error::BadUri(e.to_string()))?;
                agent.run(req)
            }
        }
    }

    /// GETs a manifest (or index). Verifies its digest when the reference pins one.
    pub fn get_manifest(&self, r: &Reference) -> Result<Option<(Vec<u8>, String, Digest)>> {
        let scopes = [format!("repository:{}:pull", r.repository)];
        let path = format!("/v2/{}/manifests/{}", r.repository, r.manifest_ref());
        let mut resp = self.send(
            r,
            "GET",
            &path,
            &scopes,
            &[("Accept", MANIFEST_ACCEPT.to_string())],
            &Body::Empty,
        )?;
        if resp.status == 404 {
            return Ok(None);
        }
        let bytes = resp.bytes(8 << 20)?;
        if resp.status != 200 {
            return Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("getting manifest {}", r.manifest_ref()),
                resp.status,
                &String::from_utf8_lossy(&bytes),
            ));
        }
        let digest = Digest::of(&bytes);
        if let Some(want) = r.digest
            && want != digest
        {
            return Err(failure(
                r,
                RegistryErrorKind::Protocol,
                200,
                format!("{r}: the manifest received hashes to {digest}, not the digest asked for"),
            ));
        }
        if let Some(h) = resp
            .header("docker-content-digest")
            .and_then(Digest::parse_oci)
            && h != digest
        {
            return Err(failure(
                r,
                RegistryErrorKind::Protocol,
                200,
                format!("{r}: the manifest received hashes to {digest}, but the registry says {h}"),
            ));
        }
        let mt = resp
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let mt = if mt.is_empty() || mt == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(String::from))
                .unwrap_or_default()
        } else {
            mt
        };
        Ok(Some((bytes, mt, digest)))
    }

    /// HEAD of a blob: its size if the repository has it.
    pub fn blob_size(&self, r: &Reference, scopes: &[String], d: &Digest) -> Result<Option<u64>> {
        let path = format!("/v2/{}/blobs/{}", r.repository, d.oci());
        let resp = self.send(r, "HEAD", &path, scopes, &[], &Body::Empty)?;
        match resp.status {
            200 => Ok(Some(
                resp.header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            s => Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("checking blob {}", d.short()),
                s,
                "",
            )),
        }
    }

    /// Downloads a blob into the store, verifying every byte.
    pub fn fetch_blob(&self, r: &Reference, d: &Digest, store: &Store) -> Result<()> {
        if store.has_blob(d) {
            return Ok(());
        }
        let scopes = [format!("repository:{}:pull", r.repository)];
        let path = format!("/v2/{}/blobs/{}", r.repository, d.oci());
        let mut resp = self.send(r, "GET", &path, &scopes, &[], &Body::Empty)?;
        if resp.status != 200 {
            let body = resp.bytes(1 << 16).unwrap_or_default();
            return Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("downloading blob {}", d.short()),
                resp.status,
                &String::from_utf8_lossy(&body),
            ));
        }
        let mut reader = resp
            .body
            .take()
            .expect("body")
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let task = crate::progress::start(
            &format!("[{}/{}] pull {}", r.registry, r.repository, d.short()),
            resp.header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        );
        let mut got_bytes = 0u64;
        let mut tmp = store.temp_file()?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                failure(
                    r,
                    RegistryErrorKind::Transport,
                    0,
                    format!(
                        "{}/{}: downloading blob {}: {e}",
                        r.registry,
                        r.repository,
                        d.short()
                    ),
                )
            })?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| Error::io("writing a downloaded blob", e))?;
            got_bytes += n as u64;
            task.set(got_bytes);
        }
        let got = Digest::from_hasher(h);
        if got != *d {
            return Err(failure(
                r,
                RegistryErrorKind::Protocol,
                200,
                format!(
                    "{}/{}: blob {d} arrived with digest {got}; nothing was stored",
                    r.registry, r.repository
                ),
            ));
        }
        store.commit_blob(tmp, d)?;
        task.finish(&crate::progress::human(got_bytes));
        Ok(())
    }

    /// An upload's `Location` resolved against the registry's base URL.
    fn upload_url(&self, r: &Reference, location: &str) -> Result<String> {
        let host = self.host(r)?;
        let base = host.lock().unwrap_or_else(|e| e.into_inner()).base.clone();
        resolve_location(&base, location).map_err(|m| {
            failure(
                r,
                RegistryErrorKind::Protocol,
                202,
                format!("{}/{}: {m}", r.registry, r.repository),
            )
        })
    }

    fn push_scopes(r: &Reference, from: Option<&str>) -> Vec<String> {
        let mut scopes = vec![format!("repository:{}:pull,push", r.repository)];
        if let Some(f) = from
            && f != r.repository
        {
            scopes.push(format!("repository:{f}:pull"));
        }
        scopes
    }

    /// HEAD, then a mount from `from` or a new upload session: None when the
    /// repository has the blob (already, or mounted), else the upload's location.
    pub fn start_upload(
        &self,
        r: &Reference,
        d: &Digest,
        from: Option<&str>,
    ) -> Result<Option<String>> {
        let scopes = Self::push_scopes(r, from);
        if self.blob_size(r, &scopes, d)?.is_some() {
            return Ok(None);
        }
        let start = match from {
            Some(f) if f != r.repository => format!(
                "/v2/{}/blobs/uploads/?mount={}&from={f}",
                r.repository,
                d.oci()
            ),
            _ => format!("/v2/{}/blobs/uploads/", r.repository),
        };
        let resp = self.send(r, "POST", &start, &scopes, &[], &Body::Empty)?;
        if resp.status == 201 {
            return Ok(None); // mounted
        }
        if resp.status != 202 {
            return Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("starting the upload of {}", d.short()),
                resp.status,
                "",
            ));
        }
        Ok(Some(self.upload_url(
            r,
            resp.header("location").unwrap_or_default(),
        )?))
    }

    /// Uploads the file into the session at `location`; returns the bytes sent.
    pub fn upload(
        &self,
        r: &Reference,
        d: &Digest,
        path: &Path,
        size: u64,
        from: Option<&str>,
        location: String,
    ) -> Result<u64> {
        let scopes = Self::push_scopes(r, from);
        let mut location = location;
        if size <= MONOLITHIC_MAX {
            // One PUT; after a dropped connection start a fresh upload.
            let mut attempt = 0;
            let resp = loop {
                attempt += 1;
                let url = with_digest(&location, d);
                let sent = self.send(
                    r,
                    "PUT",
                    &url,
                    &scopes,
                    &[("Content-Type", "application/octet-stream".into())],
                    &Body::File {
                        path,
                        offset: 0,
                        len: size,
                    },
                );
                match sent {
                    Ok(resp) => break resp,
                    Err(e) if attempt >= MAX_TRIES => return Err(e),
                    Err(_) => {
                        std::thread::sleep(backoff(attempt));
                        location = self.new_session(r, &scopes, d)?;
                    }
                }
            };
            if resp.status != 201 {
                return Err(registry_error(
                    &r.registry,
                    &r.repository,
                    &format!("uploading blob {}", d.short()),
                    resp.status,
                    "",
                ));
            }
            return Ok(size);
        }
        // Chunked: PATCH with Content-Range; after a dropped connection ask
        // the registry how much it has and go on from there.
        let mut offset = 0u64;
        let mut failures = 0;
        while offset < size {
            let len = CHUNK.min(size - offset);
            let headers = [
                ("Content-Type", "application/octet-stream".to_string()),
                ("Content-Range", format!("{}-{}", offset, offset + len - 1)),
            ];
            match self.send(
                r,
                "PATCH",
                &location,
                &scopes,
                &headers,
                &Body::File { path, offset, len },
            ) {
                Ok(resp) if resp.status == 202 => {
                    crate::util::fault::point("push-chunk");
                    location = self.upload_url(r, resp.header("location").unwrap_or(&location))?;
                    offset = resp
                        .header("range")
                        .and_then(range_end)
                        .map(|e| e + 1)
                        .unwrap_or(offset + len);
                }
                Ok(resp) if resp.status == 416 || resp.status >= 500 => {
                    failures += 1;
                    match self.upload_offset(r, &scopes, &location, failures, resp.status)? {
                        Some(o) => offset = o,
                        None => {
                            location = self.new_session(r, &scopes, d)?;
                            offset = 0;
                        }
                    }
                }
                Ok(resp) => {
                    return Err(registry_error(
                        &r.registry,
                        &r.repository,
                        &format!("uploading blob {}", d.short()),
                        resp.status,
                        "",
                    ));
                }
                Err(e) => {
                    failures += 1;
                    if failures > MAX_TRIES {
                        return Err(e);
                    }
                    std::thread::sleep(backoff(failures));
                    match self.upload_offset(r, &scopes, &location, failures, 0)? {
                        Some(o) => offset = o,
                        None => {
                            location = self.new_session(r, &scopes, d)?;
                            offset = 0;
                        }
                    }
                }
            }
        }
        let resp = self.send(
            r,
            "PUT",
            &with_digest(&location, d),
            &scopes,
            &[],
            &Body::Empty,
        )?;
        if resp.status != 201 {
            return Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("finishing the upload of {}", d.short()),
                resp.status,
                "",
            ));
        }
        Ok(size)
    }

    /// Asks the registry how many bytes of an upload it holds.
    /// Asks the registry how many bytes of an upload it holds; None when the
    /// session cannot be resumed (some registries drop it after a broken
    /// request), so the caller starts a new one.
    fn upload_offset(
        &self,
        r: &Reference,
        scopes: &[String],
        location: &str,
        failures: u32,
        status: u16,
    ) -> Result<Option<u64>> {
        if failures > MAX_TRIES {
            return Err(registry_error(
                &r.registry,
                &r.repository,
                "uploading a blob",
                status,
                "",
            ));
        }
        let resp = self.send(r, "GET", location, scopes, &[], &Body::Empty)?;
        if resp.status != 204 {
            return Ok(None);
        }
        Ok(Some(
            resp.header("range")
                .and_then(range_end)
                .map(|e| e + 1)
                .unwrap_or(0),
        ))
    }

    /// Starts a fresh upload session; returns its location.
    fn new_session(&self, r: &Reference, scopes: &[String], d: &Digest) -> Result<String> {
        let start = format!("/v2/{}/blobs/uploads/", r.repository);
        let resp = self.send(r, "POST", &start, scopes, &[], &Body::Empty)?;
        if resp.status != 202 {
            return Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("restarting the upload of {}", d.short()),
                resp.status,
                "",
            ));
        }
        self.upload_url(r, resp.header("location").unwrap_or_default())
    }

    pub fn put_manifest(
        &self,
        r: &Reference,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<()> {
        self.put_manifest_subject(r, reference, bytes, media_type)
            .map(|_| ())
    }

    /// [`Client::put_manifest`]; whether the registry said it indexed the
    /// manifest's `subject` (the `OCI-Subject` header of a registry with
    /// the referrers API).
    pub fn put_manifest_subject(
        &self,
        r: &Reference,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<bool> {
        let scopes = [format!("repository:{}:pull,push", r.repository)];
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut resp = self.send(
                r,
                "PUT",
                &path,
                &scopes,
                &[("Content-Type", media_type.to_string())],
                &Body::Bytes(bytes),
            )?;
            if resp.status == 201 {
                return Ok(resp.header("oci-subject").is_some());
            }
            let body = resp.bytes(1 << 16).unwrap_or_default();
            // Every caller has uploaded or found each blob the manifest
            // names before it pushes it, so a registry that does not know
            // one yet is catching up: another client writing the same blob
            // at this moment (distribution rewrites the repository's link
            // to it in place), or storage that is only eventually
            // consistent. Asked again shortly, it knows it.
            if resp.status == 400 && names_unknown_blob(&body) && tries < MAX_TRIES {
                std::thread::sleep(backoff(tries) / 2);
                continue;
            }
            return Err(registry_error(
                &r.registry,
                &r.repository,
                &format!("pushing manifest {reference}"),
                resp.status,
                &String::from_utf8_lossy(&body),
            ));
        }
    }
}

/// Whether a registry's error body says a blob (or manifest) that a
/// manifest names is unknown to it.
fn names_unknown_blob(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    v["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            matches!(
                e["code"].as_str(),
                Some("MANIFEST_BLOB_UNKNOWN" | "BLOB_UNKNOWN")
            )
        })
    })
}

fn backoff(tries: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(tries.min(6)))
}

/// The token request: the realm with `service` and one `scope` per scope
/// added to its query (form-encoded, as the distribution spec's token
/// servers read it).
fn token_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
) -> std::result::Result<String, String> {
    let mut url = url::Url::parse(realm)
        .map_err(|e| format!("the token realm {realm:?} is not a URL ({e})"))?;
    if service.is_some() || !scopes.is_empty() {
        let mut query = url.query_pairs_mut();
        if let Some(s) = service {
            query.append_pair("service", s);
        }
        for s in scopes {
            query.append_pair("scope", s);
        }
    }
    Ok(url.into())
}

/// `location` (absolute, or relative as RFC 3986 allows) resolved against
/// `base`.
fn resolve_location(base: &str, location: &str) -> std::result::Result<String, String> {
    url::Url::parse(base)
        .and_then(|b| b.join(location.trim()))
        .map(String::from)
        .map_err(|e| format!("the upload location {location:?} is not a URL ({e})"))
}

fn with_digest(location: &str, d: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={}", urlencode(&d.oci()))
}

/// `0-1234` → 1234.
fn range_end(v: &str) -> Option<u64> {
    v.trim()
        .trim_start_matches("bytes=")
        .split_once('-')?
        .1
        .trim()
        .parse()
        .ok()
}

fn redact_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn urlencode(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_naming_an_unknown_blob_is_told_apart() {
        // distribution's answer while another client rewrites the blob's link.
        assert!(names_unknown_blob(
            br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:a868"}]}"#
        ));
        assert!(names_unknown_blob(
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
        ));
        assert!(!names_unknown_blob(
            br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#
        ));
        assert!(!names_unknown_blob(b"<html>bad gateway</html>"));
    }

    #[test]
    fn registry_errors_keep_their_message_and_say_what_kind() {
        let e = registry_error(
            "r.example",
            "team/app",
            "getting manifest v1",
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        );
        assert_eq!(
            e.to_string(),
            "r.example/team/app: getting manifest v1: HTTP 404: MANIFEST_UNKNOWN manifest unknown (check the repository and tag)"
        );
        assert_eq!(
            e.registry_status(),
            Some(&RegistryStatus::new(
                RegistryErrorKind::NotFound,
                404,
                "r.example",
                "team/app"
            ))
        );
        for (status, body, kind, hint) in [
            (
                401,
                "",
                RegistryErrorKind::Unauthorized,
                "check the credentials",
            ),
            (403, "", RegistryErrorKind::Denied, "lack permission"),
            (429, "", RegistryErrorKind::RateLimited, "rate limited"),
            (413, "", RegistryErrorKind::TooLarge, "body size limit"),
            (
                502,
                "not json",
                RegistryErrorKind::Unavailable,
                "try again later",
            ),
            (
                400,
                r#"{"errors":[{"code":"NAME_UNKNOWN","message":"no such repository"}]}"#,
                RegistryErrorKind::NotFound,
                "check the repository and tag",
            ),
            (
                400,
                "",
                RegistryErrorKind::Http,
                "see the registry's message",
            ),
        ] {
            let e = registry_error("r.example", "team/app", "pushing", status, body);
            let st = e.registry_status().unwrap();
            assert_eq!((st.kind, st.http), (kind, status), "{e}");
            assert!(e.to_string().contains(hint), "{e}");
            assert_eq!(e.exit_code(), crate::error::exit::REGISTRY);
        }
    }

    #[test]
    fn urlencode_keeps_only_unreserved_characters() {
        assert_eq!(
            urlencode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(urlencode("a-b_c.d~e f+g"), "a-b_c.d~e%20f%2Bg");
        assert_eq!(urlencode("ü"), "%C3%BC");
    }

    #[test]
    fn token_urls_carry_service_and_scopes() {
        let scopes = [
            "repository:a/b:pull,push".to_string(),
            "repository:c:pull".to_string(),
        ];
        assert_eq!(
            token_url(
                "https://auth.example/token",
                Some("registry.example"),
                &scopes
            )
            .unwrap(),
            "https://auth.example/token?service=registry.example\
             &scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Ac%3Apull"
        );
        // A realm with a query keeps it; nothing to add adds no '?'.
        assert_eq!(
            token_url("https://auth.example/token?x=1", None, &scopes[1..]).unwrap(),
            "https://auth.example/token?x=1&scope=repository%3Ac%3Apull"
        );
        assert_eq!(
            token_url("https://auth.example/token", None, &[]).unwrap(),
            "https://auth.example/token"
        );
        // A realm that is no absolute URL was once requested as written.
        let e = token_url("/token", None, &scopes).unwrap_err();
        assert!(e.contains("\"/token\" is not a URL"), "{e}");
    }

    #[test]
    fn upload_locations_resolve_against_the_registry() {
        let base = "http://127.0.0.1:5000";
        for (location, want) in [
            (
                "/v2/a/blobs/uploads/u?_state=x%3D",
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x%3D",
            ),
            (
                "v2/a/blobs/uploads/u",
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u",
            ),
            (
                "https://blobs.example/up/u?sig=1",
                "https://blobs.example/up/u?sig=1",
            ),
            ("", "http://127.0.0.1:5000/"),
        ] {
            assert_eq!(
                resolve_location(base, location).unwrap(),
                want,
                "{location}"
            );
        }
        assert!(resolve_location(base, "http://[::1").is_err());
    }
}

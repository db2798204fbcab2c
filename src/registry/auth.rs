//! Credentials and the registry auth challenge flow.
//!
//! Credentials come from `--username`/`--password-stdin`, else Docker's
//! config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: `auths`,
//! `credHelpers`, `credsStore` through `docker-credential-*` helpers). They
//! are never logged or printed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(rest);
            Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        _ => None,
    }
}

/// `a="x", b=y, c="p,q"` → map (quoted values may hold commas).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let key = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Where Docker's config lives, from the process environment:
/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` (an empty
/// `DOCKER_CONFIG` counts as unset); `None` without either. Read by
/// [`ClientOptions::from_env`](super::ClientOptions::from_env), not when
/// credentials are looked up.
pub fn docker_config_from_env() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys Docker's config may use for a registry.
fn config_keys(registry: &str) -> Vec<String> {
    if registry == super::reference::DOCKER_HUB {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

/// Looks up credentials for `registry` in Docker's config at `path` (a
/// missing file holds none). Errors name the file or helper, never a
/// secret.
pub fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Credentials>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let cfg: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
    let keys = config_keys(registry);
    if let Some(helpers) = cfg.get("credHelpers").and_then(|v| v.as_object()) {
        for k in &keys {
            if let Some(h) = helpers.get(k).and_then(|v| v.as_str()) {
                return helper_get(h, k);
            }
        }
    }
    if let Some(auths) = cfg.get("auths").and_then(|v| v.as_object()) {
        for k in &keys {
            let Some(entry) = auths.get(k) else { continue };
            if let Some(a) = entry
                .get("auth")
                .and_then(|v| v.as_str())
                .filter(|a| !a.is_empty())
            {
                let decoded = base64_decode(a)
                    .ok_or_else(|| format!("{}: auths.{k}.auth is not base64", path.display()))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| format!("{}: auths.{k}.auth is not text", path.display()))?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| {
                    format!("{}: auths.{k}.auth is not user:password", path.display())
                })?;
                return Ok(Some(Credentials {
                    username: u.into(),
                    secret: p.into(),
                }));
            }
            let u = entry.get("username").and_then(|v| v.as_str());
            let p = entry.get("password").and_then(|v| v.as_str());
            if let (Some(u), Some(p)) = (u, p) {
                return Ok(Some(Credentials {
                    username: u.into(),
                    secret: p.into(),
                }));
            }
            if let Some(t) = entry.get("identitytoken").and_then(|v| v.as_str()) {
                return Ok(Some(Credentials {
                    username: "<token>".into(),
                    secret: t.into(),
                }));
            }
        }
    }
    if let Some(store) = cfg
        .get("credsStore")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    {
        for k in &keys {
            if let Some(c) = helper_get(store, k)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> get` with the server on stdin.
fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("credential helper {prog}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(server.as_bytes())
        .map_err(|e| format!("credential helper {prog}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("credential helper {prog}: {e}"))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout);
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "credential helper {prog} failed for {server} ({})",
            out.status
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("credential helper {prog} gave no JSON"))?;
    let u = v
        .get("Username")
        .and_then(|x| x.as_str())
        .unwrap_or_default();
    let s = v.get("Secret").and_then(|x| x.as_str()).unwrap_or_default();
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: u.into(),
        secret: s.into(),
    }))
}

/// Standard base64 with padding, as Basic credentials carry it.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64, padded or not (Docker's config writes it padded; some
/// tools drop the padding). Anything else, the URL-safe alphabet included,
/// is refused, as Docker refuses it.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode(s.trim())
        .ok()
}

pub fn basic_header(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{}:{}", c.username, c.secret).as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into())
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn base64_roundtrip() {
        for s in ["", "a", "ab", "abc", "user:pa:ss", "ünï"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"a"), "YQ==");
    }

    /// The decoder once took the URL-safe alphabet too and skipped `=`
    /// wherever it stood; Docker's config holds standard base64 only.
    #[test]
    fn base64_decoding_is_standard() {
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert_eq!(base64_decode(" dXNlcjpwYXNz\n").unwrap(), b"user:pass");
        assert_eq!(base64_decode("-_8"), None);
        assert_eq!(base64_decode("Y=Q="), None);
        assert_eq!(base64_decode("YQ=="), base64_decode("YQ"));
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let c = Credentials {
            username: "u".into(),
            secret: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}

//! Image references, parsed and normalised the way Docker does:
//! `python:3.12` → `docker.io/library/python:3.12`.

use crate::digest::Digest;
use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry `host[:port]`, normalised (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path, e.g. `library/python`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// The longest registry-and-repository name (Docker's reference grammar).
pub const MAX_NAME: usize = 255;
/// The longest reference: a name, `:` and a 128-character tag, `@` and a
/// sha256 digest.
const MAX_REFERENCE: usize = MAX_NAME + 1 + 128 + 1 + 71;

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty image reference".into());
        }
        // A reference is a name of at most 255 characters (as Docker's
        // reference grammar limits it), a tag of at most 128 and a digest:
        // a longer string is refused before it is quoted in any message.
        if s.len() > MAX_REFERENCE {
            return Err(format!(
                "{:?}…: an image reference is at most {MAX_REFERENCE} characters, not {}",
                s.chars().take(40).collect::<String>(),
                s.len()
            ));
        }
        if s.contains("://") {
            return Err(format!(
                "{s:?}: an image reference has no scheme (write host/repo:tag)"
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let dig = Digest::parse_oci(d)
                    .ok_or_else(|| format!("{s:?}: digest {d:?} is not sha256:<64 hex>"))?;
                (r, Some(dig))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(format!("{s:?}: tag {t:?} is not valid"));
        }
        if name.len() > MAX_NAME {
            return Err(format!(
                "{:?}…: a repository name with its registry is at most {MAX_NAME} characters, not {}",
                name.chars().take(40).collect::<String>(),
                name.len()
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let ok = !repository.is_empty()
            && repository.split('/').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    })
                    && p.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && p.ends_with(|c: char| c.is_ascii_alphanumeric())
            });
        if !ok {
            return Err(format!(
                "{s:?}: repository {repository:?} must be lowercase letters, digits and separators"
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".into())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.oci(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Whether plain HTTP is allowed without being asked for (loopback only).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.registry);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(s).unwrap();
        (
            r.registry,
            r.repository,
            r.tag,
            r.digest.map(|d| d.hex()[..4].to_string()),
        )
    }

    #[test]
    fn names_are_bounded_and_never_quoted_whole() {
        let at_limit = format!("reg.example:5000/{}", "a".repeat(MAX_NAME - 17));
        assert_eq!(at_limit.len(), MAX_NAME);
        assert!(Reference::parse(&format!("{at_limit}:v1")).is_ok());
        let over = format!("reg.example:5000/{}", "a".repeat(MAX_NAME - 16));
        let e = Reference::parse(&over).unwrap_err();
        assert!(e.contains("at most 255 characters, not 256"), "{e}");
        let huge = format!("app{}", "a".repeat(100 << 20));
        let e = Reference::parse(&huge).unwrap_err();
        assert!(e.len() < 200, "{}", &e[..200]);
    }

    #[test]
    fn normalises_like_docker() {
        let h = "a".repeat(64);
        let s = |x: &str| x.to_string();
        assert_eq!(
            p("python:3.12"),
            (s("docker.io"), s("library/python"), Some(s("3.12")), None)
        );
        assert_eq!(
            p("python"),
            (s("docker.io"), s("library/python"), Some(s("latest")), None)
        );
        assert_eq!(
            p("org/app"),
            (s("docker.io"), s("org/app"), Some(s("latest")), None)
        );
        assert_eq!(
            p("index.docker.io/library/debian:12"),
            (s("docker.io"), s("library/debian"), Some(s("12")), None)
        );
        assert_eq!(
            p("localhost/app"),
            (s("localhost"), s("app"), Some(s("latest")), None)
        );
        assert_eq!(
            p("localhost:5000/a/b:v1"),
            (s("localhost:5000"), s("a/b"), Some(s("v1")), None)
        );
        assert_eq!(
            p("127.0.0.1:5000/app"),
            (s("127.0.0.1:5000"), s("app"), Some(s("latest")), None)
        );
        assert_eq!(
            p("ghcr.io/org/app:1.0"),
            (s("ghcr.io"), s("org/app"), Some(s("1.0")), None)
        );
        assert_eq!(
            p(&format!("app@sha256:{h}")),
            (s("docker.io"), s("library/app"), None, Some(s("aaaa")))
        );
        assert_eq!(
            p(&format!("r.example:443/app:v2@sha256:{h}")),
            (s("r.example:443"), s("app"), Some(s("v2")), Some(s("aaaa")))
        );
        assert_eq!(
            Reference::parse("python:3.12").unwrap().to_string(),
            "docker.io/library/python:3.12"
        );
        assert_eq!(
            Reference::parse("python").unwrap().api_host(),
            DOCKER_HUB_API
        );
        assert!(Reference::parse("127.0.0.1:5000/x").unwrap().is_loopback());
        assert!(!Reference::parse("r.example/x").unwrap().is_loopback());
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "https://r.example/app",
            "App",
            "app:bad tag",
            "app@sha256:12",
            "r.example/",
            "a//b",
            "-a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}

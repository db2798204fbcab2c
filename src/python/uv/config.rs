//! The configured default package index: uv's and pip's environment
//! variables, pip's config files, then the host pip's built-in default.

use super::{Env, env_var};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The default package index URL from configuration: `UV_DEFAULT_INDEX`,
/// `UV_INDEX_URL`, `PIP_INDEX_URL`, pip's config files, then the host pip's
/// built-in default; with where it came from (the variable's name, a config
/// file's path, or `pip's built-in default`). `None` if nothing is configured.
pub(super) fn index_source(env: Env<'_>) -> Option<(String, String)> {
    index_from_config(env, &pip_config_files(env))
        .or_else(|| pip_builtin_index().map(|u| (u, "pip's built-in default".to_string())))
}

fn index_from_config(env: Env<'_>, files: &[PathBuf]) -> Option<(String, String)> {
    for var in ["UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"] {
        if let Some(v) = env_var(env, var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            return Some((v, var.to_string()));
        }
    }
    for f in files {
        if let Ok(text) = std::fs::read_to_string(f)
            && let Some(url) = pip_conf_index(&text)
        {
            return Some((url, f.display().to_string()));
        }
    }
    None
}

/// pip's config files, most significant first: `$PIP_CONFIG_FILE`, the user's
/// (`$XDG_CONFIG_HOME/pip/pip.conf`, `~/.pip/pip.conf`), then the system's.
/// `PIP_CONFIG_FILE=/dev/null` turns them all off, as in pip.
fn pip_config_files(env: Env<'_>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(f) = env_var(env, "PIP_CONFIG_FILE").filter(|v| !v.is_empty()) {
        if f == "/dev/null" {
            return out;
        }
        out.push(PathBuf::from(f));
    }
    let home = env_var(env, "HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let xdg = env_var(env, "XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(x) = xdg {
        out.push(x.join("pip/pip.conf"));
    }
    if let Some(h) = &home {
        out.push(h.join(".pip/pip.conf"));
    }
    out.push(PathBuf::from("/etc/pip.conf"));
    out.push(PathBuf::from("/etc/xdg/pip/pip.conf"));
    out
}

/// `[global] index-url` (or `index_url`) of a pip config file.
fn pip_conf_index(text: &str) -> Option<String> {
    let mut section = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_ascii_lowercase();
            continue;
        }
        if section != "global" || line.starts_with([' ', '\t']) {
            continue;
        }
        let Some(sep) = t.find(['=', ':']) else {
            continue;
        };
        let key = t[..sep].trim().to_ascii_lowercase().replace('_', "-");
        let value = t[sep + 1..].split_whitespace().next().unwrap_or("");
        if key == "index-url" && !value.is_empty() {
            return Some(value.to_string());
        }
    }
    None
}

/// The index the host's pip uses when nothing is configured, asked from pip
/// itself.
fn pip_builtin_index() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && (url.starts_with("https://") || url.starts_with("http://")))
        .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    #[test]
    fn index_from_environment_and_pip_config() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        std::fs::write(
            &conf,
            "# comment\n[install]\nindex-url = https://wrong.example/simple\n\n[global]\n\
             timeout = 60\nindex_url = https://u:p@index.example/simple\n",
        )
        .unwrap();
        let vars: HashMap<&str, &str> = [
            ("PIP_INDEX_URL", "https://pip-env.example/simple"),
            ("UV_INDEX_URL", "https://uv-old.example/simple"),
            ("UV_DEFAULT_INDEX", ""),
        ]
        .into_iter()
        .collect();
        let env = |k: &str| vars.get(k).map(OsString::from);
        assert_eq!(
            index_from_config(&env, std::slice::from_ref(&conf)),
            Some((
                "https://uv-old.example/simple".into(),
                "UV_INDEX_URL".into()
            ))
        );
        let no_env = |_: &str| None;
        let missing = dir.path().join("missing.conf");
        assert_eq!(
            index_from_config(&no_env, &[missing, conf.clone()]),
            Some((
                "https://u:p@index.example/simple".into(),
                conf.display().to_string()
            ))
        );
        assert_eq!(index_from_config(&no_env, &[]), None);
    }

    #[test]
    fn pip_config_file_order() {
        let vars: HashMap<&str, &str> = [
            ("HOME", "/home/me"),
            ("PIP_CONFIG_FILE", "/etc/custom.conf"),
        ]
        .into_iter()
        .collect();
        let env = |k: &str| vars.get(k).map(OsString::from);
        assert_eq!(
            pip_config_files(&env),
            [
                "/etc/custom.conf",
                "/home/me/.config/pip/pip.conf",
                "/home/me/.pip/pip.conf",
                "/etc/pip.conf",
                "/etc/xdg/pip/pip.conf"
            ]
            .map(PathBuf::from)
        );
        let off = |k: &str| (k == "PIP_CONFIG_FILE").then(|| OsString::from("/dev/null"));
        assert!(pip_config_files(&off).is_empty());
    }

    #[test]
    fn pip_conf_parsing() {
        assert_eq!(
            pip_conf_index("[global]\nindex-url: https://a.example/simple  \n"),
            Some("https://a.example/simple".into())
        );
        assert_eq!(
            pip_conf_index("[GLOBAL]\n; c\nINDEX-URL=https://b.example/simple\n"),
            Some("https://b.example/simple".into())
        );
        assert_eq!(
            pip_conf_index("[global]\nextra-index-url = https://c.example/simple\n"),
            None
        );
        assert_eq!(
            pip_conf_index("index-url = https://d.example/simple\n"),
            None
        );
    }
}

//! Config layers (env, workdir, user, labels, entrypoint, cmd, expose,
//! Dockerfile-only fields, dockerignore): no layer, an edit of the image
//! configuration keyed by its typed value.

use super::common::{ImageCx, LayerCx};
use super::{Action, ImagePlan, Step};
use crate::digest::{Digest, KeyHasher};
use crate::layer::files;
use crate::oci::types::ImageConfig;
use crate::spec::LayerKind;
use std::collections::BTreeMap;

/// The step of a config layer; applies it to `cfg`, the configuration in
/// force for the layers after it.
pub(super) fn plan(cx: &ImageCx, lc: &LayerCx, cfg: &mut ImageConfig) -> Step {
    let kind = &lc.layer.kind;
    let mut opts = BTreeMap::new();
    let name = match kind {
        LayerKind::Dockerignore(p) => {
            opts.insert("file".into(), p.clone());
            format!("dockerignore {p}")
        }
        other => {
            apply_config(cfg, other);
            opts.insert("value".into(), config_value(other));
            format!("{} {}", other.key(), config_value(other))
        }
    };
    lc.step(
        cx,
        name,
        Action::Config(kind.clone()),
        config_key(kind),
        opts,
        vec![],
    )
}

/// Applies a config step to an image configuration (Docker's semantics).
pub fn apply_config(cfg: &mut ImageConfig, kind: &LayerKind) {
    let c = &mut cfg.config;
    match kind {
        LayerKind::Env(vars) => {
            for (k, v) in vars {
                let expanded = expand_env(v, cfg);
                cfg.env_set(k, &expanded);
            }
        }
        LayerKind::Workdir(w) => {
            // As docker and buildah: an absolute one as written, a relative
            // one joined to the current one and cleaned.
            let cur = c.working_dir.clone().unwrap_or_else(|| "/".into());
            c.working_dir = Some(if w.starts_with('/') {
                w.clone()
            } else {
                format!("/{}", files::resolve_dst(&cur, w))
            });
        }
        LayerKind::User(u) => c.user = Some(u.clone()),
        LayerKind::Labels(l) => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in l {
                labels.insert(k.clone(), v.clone());
            }
        }
        LayerKind::Entrypoint(e) => {
            c.entrypoint = Some(e.clone());
            // As in Docker, a new entrypoint drops the base's CMD.
            c.cmd = None;
        }
        LayerKind::Cmd(v) => c.cmd = Some(v.clone()),
        LayerKind::Expose(ports) => {
            let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                map.insert(p.clone(), serde_json::json!({}));
            }
        }
        LayerKind::DockerConfig { field, value } => match field.as_str() {
            "Volumes" => {
                let map = c.volumes.get_or_insert_with(BTreeMap::new);
                for v in value.as_array().into_iter().flatten() {
                    if let Some(p) = v.as_str() {
                        map.insert(p.to_string(), serde_json::json!({}));
                    }
                }
            }
            "StopSignal" => c.stop_signal = value.as_str().map(String::from),
            // null: the triggers ran (a child of the image), none are kept.
            "OnBuild" if value.is_null() => {
                c.extra.remove("OnBuild");
            }
            "OnBuild" => {
                let list = c
                    .extra
                    .entry("OnBuild".to_string())
                    .or_insert_with(|| serde_json::json!([]));
                if let (Some(l), Some(s)) = (list.as_array_mut(), value.as_str()) {
                    l.push(serde_json::json!(s));
                }
            }
            other => {
                c.extra.insert(other.to_string(), value.clone());
            }
        },
        _ => {}
    }
}

/// Expands `$VAR` and `${VAR}` from the config's environment; `\$` is a literal `$`.
pub fn expand_env(v: &str, cfg: &ImageConfig) -> String {
    let mut out = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                out.push('$');
                chars.next();
            }
            '$' => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced {
                    if chars.peek() == Some(&'}') {
                        chars.next();
                    } else {
                        out.push_str("${");
                        out.push_str(&name);
                        continue;
                    }
                }
                if name.is_empty() {
                    out.push('$');
                    if braced {
                        out.push_str("{}");
                    }
                } else {
                    out.push_str(cfg.env_get(&name).unwrap_or(""));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The key of a config step: every value typed and length-delimited, so
/// `A="1 B=2"` and `A="1", B="2"` differ.
pub(super) fn config_key(kind: &LayerKind) -> Digest {
    let mut k = KeyHasher::new("config", 2);
    k.str(kind.key());
    match kind {
        LayerKind::Env(v) | LayerKind::Labels(v) => {
            k.u64(v.len() as u64);
            for (name, value) in v {
                k.str(name).str(value);
            }
        }
        LayerKind::Workdir(s) | LayerKind::User(s) | LayerKind::Dockerignore(s) => {
            k.str(s);
        }
        LayerKind::Entrypoint(v) | LayerKind::Cmd(v) | LayerKind::Expose(v) => {
            k.strs(v);
        }
        other => {
            k.str(&config_value(other));
        }
    }
    k.finish()
}

/// A readable rendering of a config step's value (for people, not keys).
pub fn config_value(kind: &LayerKind) -> String {
    let kv = |v: &[(String, String)]| {
        v.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match kind {
        LayerKind::Env(v) | LayerKind::Labels(v) => kv(v),
        LayerKind::Workdir(s) | LayerKind::User(s) | LayerKind::Dockerignore(s) => s.clone(),
        LayerKind::Entrypoint(v) | LayerKind::Cmd(v) | LayerKind::Expose(v) => {
            serde_json::to_string(v).expect("strings")
        }
        LayerKind::DockerConfig { field, value } => format!("{field}={value}"),
        other => other.key().to_string(),
    }
}

/// The configuration an image ends with for platform index `pi` (no rootfs).
pub fn final_config(img: &ImagePlan, pi: usize) -> ImageConfig {
    let mut cfg = img.base_configs[pi].clone();
    for s in &img.steps {
        if let Action::Config(kind) = &s.action {
            apply_config(&mut cfg, kind);
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(vars: &[&str]) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.config.env = Some(vars.iter().map(|s| s.to_string()).collect());
        c
    }

    #[test]
    fn env_values_expand_from_the_config() {
        let c = with_env(&["A=1", "PATH=/bin"]);
        assert_eq!(expand_env("$A-${A}", &c), "1-1");
        assert_eq!(expand_env("${PATH}:/x \\$A", &c), "/bin:/x $A");
        assert_eq!(expand_env("$NONE.", &c), ".");
        assert_eq!(expand_env("${A", &c), "${A");
    }

    #[test]
    fn config_keys_are_typed() {
        let one = LayerKind::Env(vec![("A".into(), "1 B=2".into())]);
        let two = LayerKind::Env(vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_ne!(config_key(&one), config_key(&two));
        assert_ne!(
            config_key(&LayerKind::User("x".into())),
            config_key(&LayerKind::Workdir("x".into()))
        );
    }

    #[test]
    fn a_new_entrypoint_drops_the_cmd() {
        let mut c = ImageConfig::default();
        apply_config(&mut c, &LayerKind::Cmd(vec!["sh".into()]));
        apply_config(&mut c, &LayerKind::Entrypoint(vec!["app".into()]));
        assert_eq!(c.config.cmd, None);
        apply_config(&mut c, &LayerKind::Workdir("srv".into()));
        apply_config(&mut c, &LayerKind::Workdir("../opt".into()));
        assert_eq!(c.config.working_dir.as_deref(), Some("/opt"));
    }
}

//! One requirement as pyproject.toml states it or uv.lock records it.

use crate::python::pep508::Requirement;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn normalize(name: &str) -> String {
    crate::python::markers::normalize_name(name)
}

/// One requirement as pyproject.toml states it or uv.lock records it.
#[derive(Debug, Clone)]
pub(super) struct Req {
    /// For messages.
    pub(super) text: String,
    /// Where it is listed, for messages (`dependency`, `optional dependency (extra `cli`)`).
    pub(super) role: String,
    pub(super) name: String,
    pub(super) extras: BTreeSet<String>,
    pub(super) spec: String,
    /// A direct reference (`@ url` in pyproject.toml; `url`, `git`, `path`,
    /// `directory` or `editable` in uv.lock).
    pub(super) direct: Option<String>,
    pub(super) marker: Option<String>,
}

pub(super) fn req_from_pep508(
    text: &str,
    role: &str,
    extra: Option<&str>,
) -> std::result::Result<Req, String> {
    let p = Requirement::parse(text).map_err(|e| format!("`{text}` cannot be parsed: {e}"))?;
    let marker = match (p.marker_text, extra) {
        (m, None) => m,
        (None, Some(e)) => Some(format!("extra == '{}'", normalize(e))),
        (Some(m), Some(e)) => Some(format!("({m}) and extra == '{}'", normalize(e))),
    };
    Ok(Req {
        text: text.trim().to_string(),
        role: role.to_string(),
        name: normalize(&p.name),
        extras: p.extras.iter().map(|e| normalize(e)).collect(),
        spec: p.specifiers_text,
        direct: p.url,
        marker,
    })
}

pub(super) fn req_from_lock(t: &toml::Value, role: &str) -> Option<Req> {
    let t = t.as_table()?;
    let name = normalize(t.get("name")?.as_str()?);
    let extras: BTreeSet<String> = t
        .get("extras")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).map(normalize).collect())
        .unwrap_or_default();
    let spec = t
        .get("specifier")
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string();
    let marker = t.get("marker").and_then(|m| m.as_str()).map(str::to_string);
    let direct = ["url", "git", "path", "directory", "editable"]
        .iter()
        .find_map(|k| {
            t.get(*k)
                .and_then(|v| v.as_str())
                .map(|v| format!("{k}:{v}"))
        });
    let mut text = name.clone();
    if !extras.is_empty() {
        text.push_str(&format!(
            "[{}]",
            extras.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    match &direct {
        Some(d) => text.push_str(&format!(" @ {}", d.split_once(':').map_or("", |x| x.1))),
        None => text.push_str(&spec),
    }
    if let Some(m) = &marker {
        text.push_str(&format!("; {m}"));
    }
    Some(Req {
        text,
        role: role.to_string(),
        name,
        extras,
        spec,
        direct,
        marker,
    })
}

pub(super) fn lock_reqs(v: Option<&toml::Value>, role: &str) -> Vec<Req> {
    v.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| req_from_lock(x, role)).collect())
        .unwrap_or_default()
}

pub(super) fn lock_groups(v: Option<&toml::Value>) -> BTreeMap<String, Vec<Req>> {
    v.and_then(|v| v.as_table())
        .map(|t| {
            t.iter()
                .map(|(k, list)| (normalize(k), lock_reqs(Some(list), "")))
                .collect()
        })
        .unwrap_or_default()
}

//! What one pyproject.toml declares: name, version, `requires-python`,
//! dependencies and extras, dependency groups, and `tool.uv` sources,
//! constraints and overrides.

use super::req::{Req, normalize, req_from_pep508};
use std::collections::{BTreeMap, BTreeSet};

/// What one pyproject.toml declares.
#[derive(Debug, Default)]
pub(super) struct Declared {
    /// Normalized `project.name`; `None` without a `[project]` table.
    pub(super) name: Option<String>,
    pub(super) version: Option<String>,
    pub(super) requires_python: Option<String>,
    /// `dependencies` + `optional-dependencies` (with `extra ==` markers);
    /// `None` when either is dynamic.
    pub(super) requires_dist: Option<Vec<Req>>,
    /// Normalized extra names; `None` when dynamic.
    pub(super) extras: Option<BTreeSet<String>>,
    /// Dependency groups, `include-group` flattened, legacy
    /// `tool.uv.dev-dependencies` merged into `dev`.
    pub(super) groups: BTreeMap<String, Vec<Req>>,
    /// Names with `tool.uv.sources` entries.
    pub(super) sourced: BTreeSet<String>,
    /// `tool.uv` constraint / override / build-constraint dependencies.
    pub(super) manifest: BTreeMap<&'static str, Vec<Req>>,
}

fn str_list(v: Option<&toml::Value>, field: &str) -> std::result::Result<Vec<String>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = v
        .as_array()
        .ok_or_else(|| format!("`{field}` is not a list"))?;
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{field}` holds a non-string"))
        })
        .collect()
}

fn flatten_group(
    groups: &toml::Table,
    name: &str,
    stack: &mut Vec<String>,
) -> std::result::Result<Vec<String>, String> {
    let norm = normalize(name);
    if stack.contains(&norm) {
        return Err(format!("dependency group `{name}` includes itself"));
    }
    let (_, items) = groups
        .iter()
        .find(|(k, _)| normalize(k) == norm)
        .ok_or_else(|| format!("dependency group `{name}` is included but not defined"))?;
    let items = items
        .as_array()
        .ok_or_else(|| format!("dependency group `{name}` is not a list"))?;
    stack.push(norm);
    let mut out = Vec::new();
    for it in items {
        if let Some(s) = it.as_str() {
            out.push(s.to_string());
        } else if let Some(inc) = it.get("include-group").and_then(|g| g.as_str()) {
            out.extend(flatten_group(groups, inc, stack)?);
        } else {
            return Err(format!(
                "dependency group `{name}` has an entry that is neither a string nor an include-group"
            ));
        }
    }
    stack.pop();
    Ok(out)
}

pub(super) fn read_declared(text: &str) -> std::result::Result<Declared, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("cannot be parsed: {e}"))?;
    let mut d = Declared::default();
    let tool_uv = doc
        .get("tool")
        .and_then(|t| t.get("uv"))
        .and_then(|t| t.as_table());
    if let Some(project) = doc.get("project").and_then(|p| p.as_table()) {
        d.name = project.get("name").and_then(|n| n.as_str()).map(normalize);
        let dynamic = str_list(project.get("dynamic"), "project.dynamic")?;
        let is_dynamic = |f: &str| dynamic.iter().any(|x| x == f);
        if !is_dynamic("version") {
            d.version = project
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        d.requires_python = project
            .get("requires-python")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if !is_dynamic("dependencies") && !is_dynamic("optional-dependencies") {
            let mut reqs = Vec::new();
            for r in str_list(project.get("dependencies"), "project.dependencies")? {
                reqs.push(req_from_pep508(&r, "dependency", None)?);
            }
            let mut extras = BTreeSet::new();
            if let Some(opt) = project.get("optional-dependencies") {
                let opt = opt
                    .as_table()
                    .ok_or("`project.optional-dependencies` is not a table")?;
                for (extra, list) in opt {
                    extras.insert(normalize(extra));
                    let field = format!("project.optional-dependencies.{extra}");
                    let role = format!("optional dependency (extra `{}`)", normalize(extra));
                    for r in str_list(Some(list), &field)? {
                        reqs.push(req_from_pep508(&r, &role, Some(extra))?);
                    }
                }
            }
            d.requires_dist = Some(reqs);
            d.extras = Some(extras);
        }
    }
    let empty = toml::Table::new();
    let groups = doc
        .get("dependency-groups")
        .and_then(|g| g.as_table())
        .unwrap_or(&empty);
    for name in groups.keys() {
        let role = String::new();
        let list = flatten_group(groups, name, &mut Vec::new())?;
        let entry = d.groups.entry(normalize(name)).or_default();
        for r in list {
            entry.push(req_from_pep508(&r, &role, None)?);
        }
    }
    if let Some(uv) = tool_uv {
        let legacy = str_list(uv.get("dev-dependencies"), "tool.uv.dev-dependencies")?;
        if !legacy.is_empty() {
            let entry = d.groups.entry("dev".into()).or_default();
            for r in legacy {
                entry.push(req_from_pep508(&r, "", None)?);
            }
        }
        if let Some(src) = uv.get("sources").and_then(|s| s.as_table()) {
            d.sourced = src.keys().map(|k| normalize(k)).collect();
        }
        for (field, key) in [
            ("constraint-dependencies", "constraints"),
            ("override-dependencies", "overrides"),
            ("build-constraint-dependencies", "build-constraints"),
        ] {
            let mut reqs = Vec::new();
            for r in str_list(uv.get(field), &format!("tool.uv.{field}"))? {
                reqs.push(req_from_pep508(&r, "", None)?);
            }
            d.manifest.insert(key, reqs);
        }
    }
    Ok(d)
}

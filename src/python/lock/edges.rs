//! Each dependency edge resolved to the `[[package]]` entry it names (§1.4).

use std::collections::BTreeMap;

use super::super::markers::Version;
use super::error::LockError;
use super::model::{Dependency, Package};

/// Points every edge of every package at its target's index, or fails naming the edge.
pub(super) fn link_edges(file: &str, packages: &mut [Package]) -> Result<(), LockError> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in packages.iter().enumerate() {
        by_name.entry(p.name.clone()).or_default().push(i);
    }
    for i in 0..packages.len() {
        let targets = edge_targets(file, packages, &by_name, &packages[i])?;
        // Same iteration order as in `edge_targets`.
        let owner = &mut packages[i];
        let edges = owner
            .dependencies
            .iter_mut()
            .chain(owner.optional_dependencies.values_mut().flatten())
            .chain(owner.dependency_groups.values_mut().flatten());
        for (dep, target) in edges.zip(targets) {
            dep.target = target;
        }
    }
    Ok(())
}

/// The targets of `owner`'s edges: dependencies, then extras, then groups.
fn edge_targets(
    file: &str,
    packages: &[Package],
    by_name: &BTreeMap<String, Vec<usize>>,
    owner: &Package,
) -> Result<Vec<usize>, LockError> {
    let mut targets = Vec::new();
    for (j, dep) in owner.dependencies.iter().enumerate() {
        let field = format!("dependencies[{j}]");
        targets.push(resolve_edge(file, packages, by_name, owner, &field, dep)?);
    }
    for (extra, deps) in &owner.optional_dependencies {
        for (j, dep) in deps.iter().enumerate() {
            let field = format!("optional-dependencies.{extra}[{j}]");
            targets.push(resolve_edge(file, packages, by_name, owner, &field, dep)?);
        }
    }
    for (group, deps) in &owner.dependency_groups {
        for (j, dep) in deps.iter().enumerate() {
            let field = format!("dev-dependencies.{group}[{j}]");
            targets.push(resolve_edge(file, packages, by_name, owner, &field, dep)?);
        }
    }
    Ok(targets)
}
/// Versions are equal as PEP 440 versions, or as strings when either does not parse.
fn same_version(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Resolves one edge to a package index (§1.4).
fn resolve_edge(
    file: &str,
    packages: &[Package],
    by_name: &BTreeMap<String, Vec<usize>>,
    owner: &Package,
    field: &str,
    dep: &Dependency,
) -> Result<usize, LockError> {
    let candidates: Vec<usize> = by_name
        .get(&dep.name)
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|&i| {
            let p = &packages[i];
            let version_ok = match (&dep.version, &p.version) {
                (Some(want), Some(have)) => same_version(want, have),
                (Some(_), None) => false,
                (None, _) => true,
            };
            let source_ok = dep.source.as_ref().is_none_or(|s| *s == p.source);
            version_ok && source_ok
        })
        .collect();
    let describe = || {
        let mut s = dep.name.clone();
        if let Some(v) = &dep.version {
            s.push_str(&format!(" {v}"));
        }
        if let Some(src) = &dep.source {
            s.push_str(&format!(" from {src}"));
        }
        s
    };
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(LockError::UnknownDependency {
            file: file.to_string(),
            package: owner.name.clone(),
            field: field.to_string(),
            dependency: describe(),
        }),
        many => Err(LockError::AmbiguousDependency {
            file: file.to_string(),
            package: owner.name.clone(),
            field: field.to_string(),
            dependency: describe(),
            count: many.len(),
        }),
    }
}

//! The install-set walk `uv sync` performs for one target (§1.6, conflict markers §1.7).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use super::super::markers::{Marker, MarkerEnv, Version, normalize_name};
use super::error::LockError;
use super::model::{ConflictItem, Lock, Package, Resolved, Source};

/// What to sync, mirroring `uv sync` flags. `Default` is a plain `uv sync` with no roots,
/// extras or groups; fill in `roots` and the groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Root packages (the synced project, or several workspace members).
    pub roots: Vec<String>,
    /// Extras of the roots (`--extra`). Each must be defined by at least one root.
    pub extras: Vec<String>,
    /// Dependency groups requested explicitly (`--group`). Each must exist.
    pub groups: Vec<String>,
    /// Default groups (`tool.uv.default-groups`, normally `["dev"]`); those that do not exist are
    /// ignored. Apply `--no-dev`/`--no-group` by leaving them out.
    pub default_groups: Vec<String>,
    /// `--only-group`/`--only-dev`: the roots' own dependencies and extras are not installed,
    /// nor are the roots themselves (unless a group reaches them).
    pub only_groups: bool,
    /// `--no-install-project`: the roots are not installed; their dependencies are.
    pub no_install_project: bool,
    /// `--no-install-workspace`: no workspace member (nor root) is installed.
    pub no_install_workspace: bool,
    /// `--no-install-package`: these names are not installed.
    pub no_install_packages: Vec<String>,
}

#[cfg(test)]
/// The packages `uv sync` would install for `root` with these extras and groups (groups must
/// exist; pass default groups through [`install_set_with`] if they may be absent).
/// `include_project = false` is `--no-install-project`. Virtual packages are never returned.
pub fn install_set(
    lock: &Lock,
    root: &str,
    env: &MarkerEnv,
    extras: &[&str],
    groups: &[&str],
    include_project: bool,
) -> Result<Vec<Resolved>, LockError> {
    let opts = SyncOptions {
        roots: vec![root.to_string()],
        extras: extras.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        no_install_project: !include_project,
        ..SyncOptions::default()
    };
    install_set_with(lock, env, &opts)
}

fn describe_pair(a: &ConflictItem, b: &ConflictItem) -> (String, String) {
    let capital = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    if a.kind() == b.kind() {
        (
            format!("{}s `{}`", capital(a.kind()), a.item_name()),
            format!("`{}`", b.item_name()),
        )
    } else {
        (
            format!("{} `{}`", capital(a.kind()), a.item_name()),
            format!("{} `{}`", b.kind(), b.item_name()),
        )
    }
}

type QueueItem<'a> = (usize, Option<&'a str>);

/// Roots, extras and groups after validation (§1.6 steps 1–3).
struct Selection {
    roots: Vec<usize>,
    /// False for `--only-group`: the roots' own dependencies are not walked.
    prod: bool,
    extras: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl Selection {
    fn new(lock: &Lock, opts: &SyncOptions) -> Result<Selection, LockError> {
        let roots = opts
            .roots
            .iter()
            .map(|r| lock.find_root(r))
            .collect::<Result<Vec<_>, _>>()?;
        let root_list = || {
            roots
                .iter()
                .map(|&r| format!("`{}`", lock.packages[r].name))
                .collect::<Vec<_>>()
                .join(", ")
        };

        let extras: BTreeSet<String> = opts.extras.iter().map(|e| normalize_name(e)).collect();
        let defined_extras: BTreeSet<&str> = roots
            .iter()
            .flat_map(|&r| lock.packages[r].extra_names())
            .collect();
        if let Some(extra) = extras.iter().find(|e| !defined_extras.contains(e.as_str())) {
            return Err(LockError::UnknownExtra {
                file: lock.file.clone(),
                extra: extra.clone(),
                roots: root_list(),
                available: join_or_none(defined_extras),
            });
        }

        let defined_groups: BTreeSet<&str> = roots
            .iter()
            .flat_map(|&r| lock.packages[r].group_names())
            .chain(lock.manifest_groups.keys().map(String::as_str))
            .collect();
        let mut groups = BTreeSet::new();
        for g in &opts.groups {
            let g = normalize_name(g);
            if !defined_groups.contains(g.as_str()) {
                return Err(LockError::UnknownGroup {
                    file: lock.file.clone(),
                    group: g,
                    roots: root_list(),
                    available: join_or_none(defined_groups),
                });
            }
            groups.insert(g);
        }
        // Default groups apply only where they exist.
        groups.extend(
            opts.default_groups
                .iter()
                .map(|g| normalize_name(g))
                .filter(|g| defined_groups.contains(g.as_str())),
        );

        Ok(Selection {
            roots,
            prod: !opts.only_groups,
            extras,
            groups,
        })
    }

    /// The roots' selected extras that have edges.
    fn root_extras<'a>(&self, root: &'a Package) -> impl Iterator<Item = &'a String> {
        root.optional_dependencies
            .keys()
            .filter(|e| self.extras.contains(*e))
    }

    /// The conflict items the request activates (§1.6 step 4): each root (when prod) with its
    /// selected extras, and each root's selected groups.
    fn requested_items(&self, lock: &Lock) -> BTreeSet<ConflictItem> {
        let mut items = BTreeSet::new();
        for &r in &self.roots {
            let p = &lock.packages[r];
            if self.prod {
                items.insert(ConflictItem::Project(p.name.clone()));
                for e in self.root_extras(p) {
                    items.insert(ConflictItem::Extra(p.name.clone(), e.clone()));
                }
            }
            for g in p
                .dependency_groups
                .keys()
                .filter(|g| self.groups.contains(*g))
            {
                items.insert(ConflictItem::Group(p.name.clone(), g.clone()));
            }
        }
        items
    }
}

/// The breadth-first walk state (§1.6 steps 5–6).
struct Walk<'a> {
    lock: &'a Lock,
    env: &'a MarkerEnv,
    /// Reached packages, and whether the walk installs them (roots skipped by
    /// `--only-group` are reached but not installed).
    nodes: BTreeMap<usize, bool>,
    queue: VecDeque<QueueItem<'a>>,
    seen: HashSet<QueueItem<'a>>,
    /// Encoded conflict items for `extra == '…'` markers; empty when the lock has no
    /// `conflicts`, as in uv.
    activated: BTreeSet<String>,
}

impl<'a> Walk<'a> {
    fn holds(&self, marker: Option<&Marker>, activated: &BTreeSet<String>) -> bool {
        match marker {
            None => true,
            Some(m) => {
                let items: Vec<&str> = activated.iter().map(String::as_str).collect();
                m.evaluate(self.env, &items, &[])
            }
        }
    }

    /// A package reached through a dependency group (or a workspace-level group): installed
    /// even if it is a root that `--only-group` skipped.
    fn reach_via_group(&mut self, target: usize, prod: bool) {
        match self.nodes.entry(target) {
            Entry::Vacant(v) => {
                v.insert(true);
            }
            Entry::Occupied(mut o) => {
                if !prod {
                    *o.get_mut() = true;
                }
            }
        }
    }

    /// Step 5: roots, their selected groups, and the workspace-level requirements and groups.
    fn seed(&mut self, sel: &Selection) -> Result<(), LockError> {
        let lock = self.lock;
        for &r in &sel.roots {
            let p = &lock.packages[r];
            self.nodes.insert(r, sel.prod);
            if sel.prod {
                self.queue.push_back((r, None));
                for e in sel.root_extras(p) {
                    self.queue.push_back((r, Some(e.as_str())));
                }
            }
            for (g, deps) in &p.dependency_groups {
                if !sel.groups.contains(g) {
                    continue;
                }
                for dep in deps {
                    if self.holds(dep.marker.as_ref(), &self.activated) {
                        self.reach_via_group(dep.target, sel.prod);
                        enqueue(&mut self.queue, &mut self.seen, dep.target, &dep.extras);
                    }
                }
            }
        }
        let none = BTreeSet::new();
        for req in &lock.manifest_requirements {
            if self.holds(req.marker.as_ref(), &none) {
                let target = lock.find_by_markers(&req.name, self.env)?;
                self.nodes.insert(target, sel.prod);
                enqueue(&mut self.queue, &mut self.seen, target, &req.extras);
            }
        }
        for (g, reqs) in &lock.manifest_groups {
            if !sel.groups.contains(g) {
                continue;
            }
            for req in reqs {
                if self.holds(req.marker.as_ref(), &none) {
                    let target = lock.find_by_markers(&req.name, self.env)?;
                    self.reach_via_group(target, sel.prod);
                    enqueue(&mut self.queue, &mut self.seen, target, &req.extras);
                }
            }
        }
        Ok(())
    }

    /// Step 4 (continued), only with `conflicts`: a first traversal over a copy of the queue
    /// collects every extra that a reachable edge activates, so that conflict markers see them
    /// whatever the visiting order. Fails when two activated extras conflict.
    fn collect_activated_extras(
        &mut self,
        mut active_extras: BTreeSet<(String, String)>,
    ) -> Result<(), LockError> {
        let lock = self.lock;
        let mut queue = self.queue.clone();
        let mut seen = self.seen.clone();
        while let Some((p, x)) = queue.pop_front() {
            for dep in lock.edges(p, x) {
                let target_name = &lock.packages[dep.target].name;
                let additional: Vec<(String, String)> = dep
                    .extras
                    .iter()
                    .map(|e| (target_name.clone(), e.clone()))
                    .filter(|pair| !active_extras.contains(pair))
                    .collect();
                // The edge's own extras count while its marker is evaluated.
                let mut activated = self.activated.clone();
                activated.extend(
                    additional
                        .iter()
                        .map(|(pn, e)| ConflictItem::Extra(pn.clone(), e.clone()).encoded()),
                );
                if !self.holds(dep.marker.as_ref(), &activated) {
                    continue;
                }
                self.activated = activated;
                active_extras.extend(additional);
                enqueue(&mut queue, &mut seen, dep.target, &dep.extras);
            }
        }
        for set in &lock.conflicts {
            let hits: Vec<(&String, &String)> = set
                .iter()
                .filter_map(|item| match item {
                    ConflictItem::Extra(p, e)
                        if active_extras.contains(&(p.clone(), e.clone())) =>
                    {
                        Some((p, e))
                    }
                    _ => None,
                })
                .collect();
            if let [(p1, e1), (p2, e2), ..] = hits.as_slice() {
                return Err(LockError::ConflictingExtras {
                    file: lock.file.clone(),
                    package1: (*p1).clone(),
                    extra1: (*e1).clone(),
                    package2: (*p2).clone(),
                    extra2: (*e2).clone(),
                });
            }
        }
        Ok(())
    }

    /// Step 6: the breadth-first traversal. An edge's marker is evaluated only while
    /// traversing from its owner; (package, extra) pairs are visited once.
    fn traverse(&mut self) {
        let lock = self.lock;
        while let Some((p, x)) = self.queue.pop_front() {
            for dep in lock.edges(p, x) {
                if self.holds(dep.marker.as_ref(), &self.activated) {
                    self.nodes.entry(dep.target).or_insert(true);
                    enqueue(&mut self.queue, &mut self.seen, dep.target, &dep.extras);
                }
            }
        }
    }
}

fn enqueue<'a>(
    queue: &mut VecDeque<QueueItem<'a>>,
    seen: &mut HashSet<QueueItem<'a>>,
    target: usize,
    extras: &'a [String],
) {
    if seen.insert((target, None)) {
        queue.push_back((target, None));
    }
    for x in extras {
        if seen.insert((target, Some(x.as_str()))) {
            queue.push_back((target, Some(x.as_str())));
        }
    }
}

/// The install set for the general case (several roots, `--only-group`, install filters).
/// Implements PYTHON-INSTALL.md §1.6 steps 1–7 and the conflict markers of §1.7. The result
/// is sorted by name; a name reached at two versions is an error.
pub fn install_set_with(
    lock: &Lock,
    env: &MarkerEnv,
    opts: &SyncOptions,
) -> Result<Vec<Resolved>, LockError> {
    // Steps 1–3: target preconditions, roots, extras and groups.
    lock.check_target(env)?;
    let sel = Selection::new(lock, opts)?;

    // Step 1 (end) and step 4: declared conflicts among the requested extras and groups, and
    // the items that conflict markers test.
    let requested = sel.requested_items(lock);
    check_requested_conflicts(lock, &requested)?;
    let has_conflicts = !lock.conflicts.is_empty();
    let mut walk = Walk {
        lock,
        env,
        nodes: BTreeMap::new(),
        queue: VecDeque::new(),
        seen: HashSet::new(),
        activated: if has_conflicts {
            requested.iter().map(ConflictItem::encoded).collect()
        } else {
            BTreeSet::new()
        },
    };

    // Steps 5 and 6.
    walk.seed(&sel)?;
    if has_conflicts {
        let active_extras = requested
            .iter()
            .filter_map(|i| match i {
                ConflictItem::Extra(p, e) => Some((p.clone(), e.clone())),
                _ => None,
            })
            .collect();
        walk.collect_activated_extras(active_extras)?;
    }
    walk.traverse();

    let out = installed(lock, &sel, opts, &walk.nodes);
    check_one_version_each(lock, &out)?;
    Ok(out)
}

/// Fails when one `conflicts` set holds two of the requested items.
fn check_requested_conflicts(
    lock: &Lock,
    requested: &BTreeSet<ConflictItem>,
) -> Result<(), LockError> {
    for set in &lock.conflicts {
        let hits: Vec<&ConflictItem> = set.iter().filter(|i| requested.contains(i)).collect();
        if let [a, b, ..] = hits.as_slice() {
            let (first, second) = describe_pair(a, b);
            return Err(LockError::Conflict {
                file: lock.file.clone(),
                first,
                second,
            });
        }
    }
    Ok(())
}

/// Step 7: the reached packages the install filters keep, sorted by name and version.
fn installed(
    lock: &Lock,
    sel: &Selection,
    opts: &SyncOptions,
    nodes: &BTreeMap<usize, bool>,
) -> Vec<Resolved> {
    let skip: BTreeSet<String> = opts
        .no_install_packages
        .iter()
        .map(|n| normalize_name(n))
        .collect();
    let mut out: Vec<Resolved> = Vec::new();
    for (&i, &install) in nodes {
        let p = &lock.packages[i];
        let is_root = sel.roots.contains(&i);
        if !install
            || matches!(p.source, Source::Virtual(_))
            || (opts.no_install_project && is_root)
            || (opts.no_install_workspace && (is_root || lock.members.contains(&p.name)))
            || skip.contains(&p.name)
        {
            continue;
        }
        out.push(Resolved {
            name: p.name.clone(),
            version: p.version.clone(),
            source: p.source.clone(),
            wheels: p.wheels.clone(),
            sdist: p.sdist.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
    out
}

/// At most one version per name (§1.4); `out` is sorted by name.
fn check_one_version_each(lock: &Lock, out: &[Resolved]) -> Result<(), LockError> {
    if let Some(pair) = out.windows(2).find(|pair| pair[0].name == pair[1].name) {
        let name = pair[0].name.clone();
        let versions: Vec<String> = out
            .iter()
            .filter(|r| r.name == name)
            .map(|r| r.version.clone().unwrap_or_else(|| "(dynamic)".into()))
            .collect();
        return Err(LockError::MultipleVersions {
            file: lock.file.clone(),
            name,
            versions: versions.join(", "),
        });
    }
    Ok(())
}

fn join_or_none(items: BTreeSet<&str>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }
}

impl Lock {
    /// Checks `requires-python` and `supported-markers` against the target (§1.6 step 1).
    ///
    /// `requires-python` is tested against the release part of `python_full_version`
    /// (`3.13.0rc1` counts as `3.13.0`), as pip and uv do for interpreter compatibility.
    pub fn check_target(&self, env: &MarkerEnv) -> Result<(), LockError> {
        if let Some(spec) = &self.requires_python {
            let ok = Version::parse(&env.python_full_version)
                .map(|v| spec.contains(&Version::from_release(v.release())))
                .unwrap_or(false);
            if !ok {
                return Err(LockError::RequiresPython {
                    file: self.file.clone(),
                    requires_python: self.requires_python_text.clone().unwrap_or_default(),
                    python: env.python_full_version.clone(),
                });
            }
        }
        if !self.supported_markers.is_empty()
            && !self
                .supported_markers
                .iter()
                .any(|m| m.evaluate(env, &[], &[]))
        {
            return Err(LockError::UnsupportedEnvironment {
                file: self.file.clone(),
                python: env.python_full_version.clone(),
                machine: env.platform_machine.clone(),
                markers: self
                    .supported_markers
                    .iter()
                    .map(|m| format!("\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

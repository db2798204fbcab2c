//! Dependency closure over Packages indices: the packages of a minbase or
//! essential Debian base plus requested includes, chosen as apt chooses.
//!
//! The algorithm (DEBIAN-NATIVE.md §4.2) reproduced apt's choice exactly.
//! Seed Essential packages (plus Priority: required and apt for minbase) and
//! the includes, all before walking. Then follow Pre-Depends and Depends,
//! taking the first installable alternative of each clause that nothing
//! selected satisfies yet. Recommends and Suggests are not followed. The
//! image has one architecture, so `:any` qualifiers are dropped.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use crate::debian::control::Paragraph;
use crate::debian::version::{self, Relation, Version};
use crate::error::{Error, Result};

#[cfg(test)]
/// Packages preferred when a clause offers them as alternatives.
pub const DEFAULT_PREFER: &[&str] = &["usr-is-merged"];

/// One alternative of a dependency clause.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dep {
    pub name: String,
    /// The architecture qualifier after `:` (`any`, `native` or an
    /// architecture name).
    pub arch: Option<String>,
    /// The version constraint; the version text as written.
    pub rel: Option<(Relation, String)>,
}

impl Dep {
    /// Whether the qualifier admits a package of the image's architecture:
    /// none, `any`, `native` or that architecture.
    pub fn arch_matches(&self, arch: &str) -> bool {
        match self.arch.as_deref() {
            None | Some("any") | Some("native") => true,
            Some(a) => a == arch,
        }
    }

    /// Whether version `have` meets the constraint (always when unversioned).
    pub fn version_matches(&self, have: &str) -> bool {
        self.rel
            .as_ref()
            .is_none_or(|(rel, wanted)| version::satisfies(have, *rel, wanted))
    }
}

/// Written as in control files: `name[:arch] [(op version)]`.
impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((rel, v)) = &self.rel {
            write!(f, " ({rel} {v})")?;
        }
        Ok(())
    }
}

/// A clause as written: alternatives joined by ` | `.
fn clause_text(clause: &[Dep]) -> String {
    clause
        .iter()
        .map(Dep::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
/// Parses a relation field (Depends, Pre-Depends, Conflicts, Provides, …)
/// into comma-separated clauses of `|` alternatives. Architecture lists
/// `[…]` and build profiles `<…>` are checked for syntax and dropped; every
/// alternative is kept. Use [`parse_depends_for`] to evaluate them.
pub fn parse_depends(field: &str) -> Result<Vec<Vec<Dep>>> {
    parse_relations(field, None)
}

/// Like [`parse_depends`], but drops alternatives whose architecture list
/// excludes `arch` or whose build profiles need an active profile (none is
/// active). A clause left with no alternative is dropped.
pub fn parse_depends_for(field: &str, arch: &str) -> Result<Vec<Vec<Dep>>> {
    parse_relations(field, Some(arch))
}

fn parse_relations(field: &str, arch: Option<&str>) -> Result<Vec<Vec<Dep>>> {
    let mut out = Vec::new();
    for clause in field.split(',') {
        if clause.trim().is_empty() {
            continue;
        }
        let mut alternatives = Vec::new();
        for alt in clause.split('|') {
            let dep = parse_alternative(alt, arch).map_err(|why| {
                Error::Other(format!("invalid relation `{}`: {why}", clause.trim()))
            })?;
            alternatives.extend(dep);
        }
        if !alternatives.is_empty() {
            out.push(alternatives);
        }
    }
    Ok(out)
}

/// Parses `name[:arch] [(op version)] [[archs]] [<profiles>…]`; `None` when
/// `arch` is given and the restrictions exclude it.
fn parse_alternative(text: &str, arch: Option<&str>) -> std::result::Result<Option<Dep>, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an alternative is empty".into());
    }
    let end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<'))
        .unwrap_or(s.len());
    let word = &s[..end];
    let mut rest = s[end..].trim_start();
    let (name, qualifier) = match word.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (word, None),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(format!("`{word}` is not a valid package name"));
    }
    if let Some(q) = qualifier
        && (q.is_empty() || !q.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(format!("`{q}` is not a valid architecture qualifier"));
    }
    let mut rel = None;
    if let Some(after) = rest.strip_prefix('(') {
        let close = after.find(')').ok_or("`(` is not closed")?;
        let inner = after[..close].trim();
        let op_len = inner
            .find(|c: char| !matches!(c, '<' | '>' | '='))
            .unwrap_or(inner.len());
        let (op, wanted) = (&inner[..op_len], inner[op_len..].trim());
        if op.is_empty() {
            return Err(format!(
                "`({inner})` needs a relation (<<, <=, =, >=, >>) before the version"
            ));
        }
        let r = Relation::parse(op)
            .ok_or_else(|| format!("`{op}` is not a version relation (use <<, <=, =, >= or >>)"))?;
        if wanted.is_empty() {
            return Err(format!("no version after `{op}`"));
        }
        Version::parse(wanted).map_err(|e| e.to_string())?;
        rel = Some((r, wanted.to_string()));
        rest = after[close + 1..].trim_start();
    }
    let mut arch_ok = true;
    let (mut profile_groups, mut profile_ok) = (0, false);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or("`[` is not closed")?;
            let allowed = arch_list_allows(&after[..close], arch.unwrap_or(""))?;
            arch_ok &= arch.is_none() || allowed;
            rest = after[close + 1..].trim_start();
        } else if let Some(after) = rest.strip_prefix('<') {
            let close = after.find('>').ok_or("`<` is not closed")?;
            profile_groups += 1;
            profile_ok |= profiles_allow(&after[..close])?;
            rest = after[close + 1..].trim_start();
        } else {
            return Err(format!("unexpected `{rest}` after `{word}`"));
        }
    }
    let keep = arch.is_none() || (arch_ok && (profile_groups == 0 || profile_ok));
    Ok(keep.then(|| Dep {
        name: name.to_string(),
        arch: qualifier.map(str::to_string),
        rel,
    }))
}

/// Evaluates an architecture list such as `amd64 arm64` or `!i386`.
fn arch_list_allows(list: &str, arch: &str) -> std::result::Result<bool, String> {
    let terms: Vec<&str> = list.split_whitespace().collect();
    if terms.is_empty() {
        return Err("the architecture list `[]` is empty".into());
    }
    let negated = terms.iter().filter(|t| t.starts_with('!')).count();
    if negated != 0 && negated != terms.len() {
        return Err(format!(
            "the architecture list `[{list}]` mixes negated and plain entries"
        ));
    }
    let hit = terms
        .iter()
        .any(|t| arch_term_matches(t.trim_start_matches('!'), arch));
    Ok(if negated > 0 { !hit } else { hit })
}

/// Whether an architecture or wildcard (`any`, `linux-any`, `any-<cpu>`)
/// names `arch`. Debian architectures here are all Linux ones.
fn arch_term_matches(term: &str, arch: &str) -> bool {
    let cpu = match arch {
        "armhf" | "armel" => "arm",
        a => a,
    };
    term == arch
        || term == "any"
        || term == "linux-any"
        || term.strip_prefix("linux-") == Some(arch)
        || term.strip_prefix("any-") == Some(cpu)
}

/// Evaluates one `<…>` group with no build profile active: true when every
/// term is negated.
fn profiles_allow(group: &str) -> std::result::Result<bool, String> {
    let terms: Vec<&str> = group.split_whitespace().collect();
    if terms.is_empty() {
        return Err("the build-profile list `<>` is empty".into());
    }
    Ok(terms.iter().all(|t| t.starts_with('!')))
}

/// One version of a package from one index.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub version: Version,
    /// The package's Architecture: the target or `all`.
    pub arch: &'a str,
    /// The label of the index it came from.
    pub source: &'a str,
    pub paragraph: &'a Paragraph,
}

impl<'a> Candidate<'a> {
    /// Whether the package says `Essential: yes`.
    pub fn essential(&self) -> bool {
        self.paragraph
            .get_trimmed("Essential")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    }

    /// The Priority field.
    pub fn priority(&self) -> Option<&'a str> {
        self.paragraph.get_trimmed("Priority")
    }

    /// Whether the package has `Priority: required`.
    pub fn required(&self) -> bool {
        self.priority()
            .is_some_and(|p| p.eq_ignore_ascii_case("required"))
    }

    /// The clauses of a relation field for `arch`; errors name the package.
    pub fn relations(&self, field: &str, arch: &str) -> Result<Vec<Vec<Dep>>> {
        match self.paragraph.get(field) {
            None => Ok(Vec::new()),
            Some(v) => parse_depends_for(v, arch)
                .map_err(|e| Error::Other(format!("{}: {field}: {e}", self.describe()))),
        }
    }

    /// `name version (from label)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} (from {})",
            self.name,
            self.version.as_str(),
            self.source
        )
    }
}

/// Every version of every package of one architecture (plus `all`) over a
/// set of indices.
#[derive(Debug)]
pub struct Index<'a> {
    arch: String,
    /// Highest version first; equal versions keep the order of the indices.
    packages: BTreeMap<&'a str, Vec<Candidate<'a>>>,
    /// Names seen only for other architectures, with one such architecture.
    other_arch: BTreeMap<&'a str, &'a str>,
}

impl<'a> Index<'a> {
    /// Collects the packages of `arch` and `all` from labelled indices.
    pub fn new(indices: &'a [(String, Vec<Paragraph>)], arch: &str) -> Result<Index<'a>> {
        let mut packages: BTreeMap<&'a str, Vec<Candidate<'a>>> = BTreeMap::new();
        let mut other_arch = BTreeMap::new();
        for (label, paragraphs) in indices {
            for (n, p) in paragraphs.iter().enumerate() {
                let missing = |field: &str, what: &str| {
                    Error::Other(format!(
                        "index {label}: paragraph {} ({what}) has no {field} field",
                        n + 1
                    ))
                };
                let name = p
                    .get_trimmed("Package")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("Package", "unnamed"))?;
                let pkg_arch = p
                    .get_trimmed("Architecture")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("Architecture", name))?;
                if pkg_arch != arch && pkg_arch != "all" {
                    other_arch.entry(name).or_insert(pkg_arch);
                    continue;
                }
                let text = p
                    .get_trimmed("Version")
                    .ok_or_else(|| missing("Version", name))?;
                let version = Version::parse(text)
                    .map_err(|e| Error::Other(format!("index {label}: package {name}: {e}")))?;
                packages.entry(name).or_default().push(Candidate {
                    name,
                    version,
                    arch: pkg_arch,
                    source: label,
                    paragraph: p,
                });
            }
        }
        for versions in packages.values_mut() {
            versions.sort_by(|a, b| b.version.cmp(&a.version));
        }
        other_arch.retain(|name, _| !packages.contains_key(name));
        Ok(Index {
            arch: arch.to_string(),
            packages,
            other_arch,
        })
    }

    /// The target architecture.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// All versions of `name`, highest first.
    pub fn versions(&self, name: &str) -> &[Candidate<'a>] {
        self.packages.get(name).map_or(&[], Vec::as_slice)
    }

    /// Package names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.packages.keys().copied()
    }
}

/// Which base to build, following mmdebstrap's variants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Essential, Priority: required, and apt.
    #[default]
    Minbase,
    /// Essential packages only.
    Essential,
}

impl Variant {
    /// The name used in definitions: `minbase` or `essential`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Minbase => "minbase",
            Variant::Essential => "essential",
        }
    }
}

impl FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Variant> {
        match s {
            "minbase" => Ok(Variant::Minbase),
            "essential" => Ok(Variant::Essential),
            _ => Err(Error::Usage(format!(
                "unknown Debian variant `{s}`: expected minbase or essential"
            ))),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The image's architecture, e.g. `amd64`.
    pub arch: String,
    pub variant: Variant,
    /// Extra packages: `name` or `name=version` (pins that version).
    pub include: Vec<String>,
    /// Packages chosen first when a clause or a virtual package offers them.
    pub prefer: Vec<String>,
}

impl Request {
    #[cfg(test)]
    /// A minbase request for `arch` with no includes and the default prefer
    /// list.
    pub fn new(arch: impl Into<String>) -> Request {
        Request {
            arch: arch.into(),
            variant: Variant::Minbase,
            include: Vec::new(),
            prefer: DEFAULT_PREFER.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One package of the result: what a lock records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    /// The version exactly as the index wrote it.
    pub version: String,
    /// The package's Architecture (may be `all`).
    pub arch: String,
    pub filename: String,
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
    pub multi_arch: Option<String>,
    pub essential: bool,
    pub priority: Option<String>,
    /// Not requested, not Essential, not required: apt would mark it
    /// auto-installed.
    pub auto: bool,
    /// Which suite/index it came from (the caller's label for the index).
    pub source: String,
}

/// A package providing a virtual name, with the provided version if any.
struct Provide<'c, 'a> {
    by: &'c Candidate<'a>,
    version: Option<String>,
}

/// How an alternative could be installed.
enum Pick<'c, 'a> {
    One(&'c Candidate<'a>),
    /// A virtual package with several providers and none preferred.
    Many(Vec<&'a str>),
    /// Not installable; the reason.
    No(String),
}

struct Resolver<'c, 'a> {
    index: &'c Index<'a>,
    arch: &'c str,
    prefer: &'c [String],
    /// The version to install for each name: the highest, or the pinned one.
    chosen: BTreeMap<&'a str, &'c Candidate<'a>>,
    /// Virtual name → providers among the chosen versions.
    providers: HashMap<String, Vec<Provide<'c, 'a>>>,
    /// Selected or queued packages.
    selected: BTreeMap<&'a str, &'c Candidate<'a>>,
}

impl<'c, 'a> Resolver<'c, 'a> {
    fn new(
        index: &'c Index<'a>,
        prefer: &'c [String],
        pins: &BTreeMap<&str, &'c Candidate<'a>>,
    ) -> Result<Resolver<'c, 'a>> {
        let arch = index.arch();
        let mut chosen = BTreeMap::new();
        for (name, versions) in &index.packages {
            chosen.insert(*name, pins.get(name).copied().unwrap_or(&versions[0]));
        }
        let mut providers: HashMap<String, Vec<Provide<'c, 'a>>> = HashMap::new();
        for c in chosen.values().copied() {
            for clause in c.relations("Provides", arch)? {
                let bad = |why: String| {
                    Error::Other(format!(
                        "{}: Provides: `{}`: {why}",
                        c.describe(),
                        clause_text(&clause)
                    ))
                };
                if clause.len() > 1 {
                    return Err(bad("alternatives are not allowed in Provides".into()));
                }
                for d in &clause {
                    let version = match &d.rel {
                        None => None,
                        Some((Relation::Eq, v)) => Some(v.clone()),
                        Some((r, _)) => {
                            return Err(bad(format!("only `=` is allowed, not `{r}`")));
                        }
                    };
                    providers
                        .entry(d.name.clone())
                        .or_default()
                        .push(Provide { by: c, version });
                }
            }
        }
        Ok(Resolver {
            index,
            arch,
            prefer,
            chosen,
            providers,
            selected: BTreeMap::new(),
        })
    }

    /// Whether a provided version meets a dependency: any provide meets an
    /// unversioned one, only a matching `(= v)` meets a versioned one.
    fn provide_matches(p: &Provide<'_, '_>, d: &Dep) -> bool {
        match (&d.rel, &p.version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((rel, wanted)), Some(v)) => version::satisfies(v, *rel, wanted),
        }
    }

    /// Selected packages that provide `d` with a matching version.
    fn selected_providers<'s>(
        &'s self,
        d: &'s Dep,
    ) -> impl Iterator<Item = &'c Candidate<'a>> + 's {
        self.providers
            .get(&d.name)
            .into_iter()
            .flatten()
            .filter(move |p| self.selected.contains_key(p.by.name) && Self::provide_matches(p, d))
            .map(|p| p.by)
    }

    /// Whether a selected or queued package satisfies `d`.
    fn satisfied(&self, d: &Dep) -> bool {
        if !d.arch_matches(self.arch) {
            return false;
        }
        if let Some(c) = self.selected.get(d.name.as_str())
            && d.version_matches(c.version.as_str())
        {
            return true;
        }
        self.selected_providers(d).next().is_some()
    }

    /// How `d` could be installed: a real package whose chosen version
    /// matches, else a virtual with one matching provider (or a preferred
    /// one among several).
    fn installable(&self, d: &Dep) -> Pick<'c, 'a> {
        if !d.arch_matches(self.arch) {
            return Pick::No(format!(
                "{d}: a single-architecture {} image has no {} packages",
                self.arch,
                d.arch.as_deref().unwrap_or_default()
            ));
        }
        let mut why = None;
        if let Some(c) = self.chosen.get(d.name.as_str()).copied() {
            if d.version_matches(c.version.as_str()) {
                return Pick::One(c);
            }
            why = Some(format!(
                "{} {} does not satisfy {d}",
                c.name,
                c.version.as_str()
            ));
        }
        let all = self.providers.get(&d.name).map_or(&[][..], Vec::as_slice);
        let mut matching: Vec<&'c Candidate<'a>> = Vec::new();
        for p in all.iter().filter(|p| Self::provide_matches(p, d)) {
            if !matching.iter().any(|c| c.name == p.by.name) {
                matching.push(p.by);
            }
        }
        match matching.len() {
            0 => Pick::No(why.unwrap_or_else(|| {
                if all.is_empty() {
                    self.absent(&d.name)
                } else {
                    let names: Vec<String> = all
                        .iter()
                        .map(|p| match &p.version {
                            Some(v) => format!("{} (= {v})", p.by.name),
                            None => p.by.name.to_string(),
                        })
                        .collect();
                    format!(
                        "{d}: provided only by {} without a matching version \
                         (an unversioned Provides does not satisfy a versioned dependency)",
                        names.join(", ")
                    )
                }
            })),
            1 => Pick::One(matching[0]),
            _ => self
                .prefer
                .iter()
                .find_map(|p| matching.iter().copied().find(|c| c.name == p.as_str()))
                .map_or_else(
                    || Pick::Many(matching.iter().map(|c| c.name).collect()),
                    Pick::One,
                ),
        }
    }

    /// Why `name` is not there, with a hint when possible.
    fn absent(&self, name: &str) -> String {
        if let Some(other) = self.index.other_arch.get(name) {
            return format!(
                "{name} is not available for {} (only for other architectures such as {other})",
                self.arch
            );
        }
        let names = self
            .index
            .names()
            .chain(self.providers.keys().map(String::as_str));
        match suggest(name, names) {
            Some(s) => format!(
                "{name} is not in any index for {} (did you mean `{s}`?)",
                self.arch
            ),
            None => format!("{name} is not in any index for {}", self.arch),
        }
    }

    /// Picks the package for an unsatisfied clause of `owner`'s `field`.
    fn choose(
        &self,
        owner: &Candidate<'a>,
        field: &str,
        clause: &[Dep],
    ) -> Result<&'c Candidate<'a>> {
        for p in self.prefer {
            for d in clause.iter().filter(|d| d.name == *p) {
                if let Pick::One(c) = self.installable(d) {
                    return Ok(c);
                }
            }
        }
        let mut reasons = Vec::new();
        for d in clause {
            match self.installable(d) {
                Pick::One(c) => return Ok(c),
                Pick::Many(names) => {
                    return Err(Error::Other(format!(
                        "{}: {field}: `{}`: {} is a virtual package provided by {}; \
                         add one of them to prefer or include it",
                        owner.describe(),
                        clause_text(clause),
                        d.name,
                        names.join(", ")
                    )));
                }
                Pick::No(why) => reasons.push(why),
            }
        }
        Err(Error::Other(format!(
            "{}: {field}: `{}` cannot be satisfied: {}",
            owner.describe(),
            clause_text(clause),
            reasons.join("; ")
        )))
    }

    /// Selects `seed`, then follows Pre-Depends and Depends breadth first.
    fn walk(&mut self, seed: &[&'c Candidate<'a>]) -> Result<()> {
        let mut queue = VecDeque::new();
        for &c in seed {
            if self.selected.insert(c.name, c).is_none() {
                queue.push_back(c);
            }
        }
        while let Some(c) = queue.pop_front() {
            for field in ["Pre-Depends", "Depends"] {
                for clause in c.relations(field, self.arch)? {
                    if clause.iter().any(|d| self.satisfied(d)) {
                        continue;
                    }
                    let pick = self.choose(c, field, &clause)?;
                    if self.selected.insert(pick.name, pick).is_none() {
                        queue.push_back(pick);
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the final set: every dependency satisfied, no Conflicts or
    /// Breaks between two selected packages.
    fn check(&self) -> Result<()> {
        for c in self.selected.values() {
            for field in ["Pre-Depends", "Depends"] {
                for clause in c.relations(field, self.arch)? {
                    if !clause.iter().any(|d| self.satisfied(d)) {
                        return Err(Error::Other(format!(
                            "{}: {field}: `{}` is not satisfied by the selected packages",
                            c.describe(),
                            clause_text(&clause)
                        )));
                    }
                }
            }
            for (field, verb) in [("Conflicts", "conflicts with"), ("Breaks", "breaks")] {
                for clause in c.relations(field, self.arch)? {
                    for d in clause.iter().filter(|d| d.arch_matches(self.arch)) {
                        let real = self
                            .selected
                            .get(d.name.as_str())
                            .copied()
                            .filter(|o| d.version_matches(o.version.as_str()));
                        let hit = real
                            .into_iter()
                            .chain(self.selected_providers(d))
                            .find(|o| o.name != c.name);
                        if let Some(o) = hit {
                            return Err(Error::Other(format!(
                                "{} {verb} {} ({field}: {d})",
                                c.describe(),
                                o.describe()
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Resolves the package set of a Debian base.
///
/// `indices`: (label, parsed Packages paragraphs) per suite/component;
/// packages of the target arch and of arch all are candidates; the
/// candidate for a name is its highest version over all indices (on a tie,
/// the first index listed). The result is sorted by name.
pub fn resolve(indices: &[(String, Vec<Paragraph>)], req: &Request) -> Result<Vec<Resolved>> {
    let arch = req.arch.trim();
    if arch.is_empty() || arch == "all" || arch.contains(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "`{}` is not a target architecture (e.g. amd64, arm64)",
            req.arch
        )));
    }
    let index = Index::new(indices, arch)?;

    // Includes: names, and pinned versions that replace the candidate.
    let mut pins: BTreeMap<&str, &Candidate> = BTreeMap::new();
    // (name, text as given, pinned)
    let mut wanted: Vec<(&str, &str, bool)> = Vec::new();
    for inc in &req.include {
        let text = inc.trim();
        let (name, pinned) = match text.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (text, None),
        };
        if name.is_empty() || pinned == Some("") {
            return Err(Error::Usage(format!(
                "include `{inc}`: expected `name` or `name=version`"
            )));
        }
        if let Some(v) = pinned {
            let versions = index.versions(name);
            if versions.is_empty() {
                // Reported below with a spelling hint.
                wanted.push((name, text, true));
                continue;
            }
            let c = versions
                .iter()
                .find(|c| c.version.as_str() == v)
                .or_else(|| {
                    versions
                        .iter()
                        .find(|c| version::compare(c.version.as_str(), v) == Ordering::Equal)
                })
                .ok_or_else(|| {
                    let available: Vec<String> = versions
                        .iter()
                        .map(|c| format!("{} ({})", c.version.as_str(), c.source))
                        .collect();
                    Error::Other(format!(
                        "include `{text}`: no version {v} of {name} for {arch}; available: {}",
                        available.join(", ")
                    ))
                })?;
            if let Some(prev) = pins.insert(name, c)
                && prev.version != c.version
            {
                return Err(Error::Usage(format!(
                    "{name} is included with two versions: {} and {}",
                    prev.version.as_str(),
                    c.version.as_str()
                )));
            }
        }
        wanted.push((name, text, pinned.is_some()));
    }

    let mut r = Resolver::new(&index, &req.prefer, &pins)?;
    let minbase = req.variant == Variant::Minbase;
    let mut seed: Vec<&Candidate> = r
        .chosen
        .values()
        .copied()
        .filter(|c| c.essential() || (minbase && c.required()))
        .collect();
    let mut requested: BTreeSet<&str> = BTreeSet::new();
    if minbase {
        let apt = r.chosen.get("apt").copied().ok_or_else(|| {
            Error::Other(format!(
                "the minbase variant needs apt, but no index has apt for {arch}"
            ))
        })?;
        seed.push(apt);
        requested.insert(apt.name);
    }
    for (name, text, pinned) in wanted {
        let probe = Dep {
            name: name.to_string(),
            arch: None,
            rel: None,
        };
        let c = match r.installable(&probe) {
            Pick::One(c) if c.name == name || !pinned => c,
            _ if pinned && r.providers.contains_key(name) => {
                return Err(Error::Other(format!(
                    "include `{text}`: {name} is a virtual package; only a real package's version can be pinned"
                )));
            }
            Pick::One(_) | Pick::No(_) => {
                return Err(Error::Other(format!(
                    "include `{text}`: {}",
                    r.absent(name)
                )));
            }
            Pick::Many(names) => {
                return Err(Error::Other(format!(
                    "include `{text}`: {name} is a virtual package provided by {}; \
                     include one of them or add one to prefer",
                    names.join(", ")
                )));
            }
        };
        seed.push(c);
        requested.insert(c.name);
    }

    r.walk(&seed)?;
    r.check()?;

    let mut out = Vec::with_capacity(r.selected.len());
    for c in r.selected.values() {
        let field = |name: &str| {
            c.paragraph
                .get_trimmed(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::Other(format!(
                        "{}: the index entry has no {name} field",
                        c.describe()
                    ))
                })
        };
        let filename = field("Filename")?;
        let sha256 = field("SHA256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Other(format!(
                "{}: SHA256 `{sha256}` is not 64 hex digits",
                c.describe()
            )));
        }
        let size = field("Size")?;
        let size = size.parse::<u64>().map_err(|_| {
            Error::Other(format!(
                "{}: Size `{size}` is not a byte count",
                c.describe()
            ))
        })?;
        let essential = c.essential();
        out.push(Resolved {
            name: c.name.to_string(),
            version: c.version.as_str().to_string(),
            arch: c.arch.to_string(),
            filename: filename.to_string(),
            sha256: sha256.to_ascii_lowercase(),
            size,
            multi_arch: c.paragraph.get_trimmed("Multi-Arch").map(str::to_string),
            essential,
            priority: c.priority().map(str::to_string),
            auto: !requested.contains(c.name) && !essential && !c.required(),
            source: c.source.to_string(),
        });
    }
    Ok(out)
}

/// The closest name to `name` within a small edit distance, if any.
fn suggest<'n>(name: &str, names: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for candidate in names {
        if candidate == name || candidate.len().abs_diff(name.len()) > limit {
            continue;
        }
        let d = edit_distance(name, candidate);
        if d <= limit && best.is_none_or(|(bd, bn)| (d, candidate) < (bd, bn)) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, n)| n)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of
/// two adjacent characters as one edit each.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // Rows i-2, i-1 and i of the table.
    let mut older = vec![0usize; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur = vec![0usize; width];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(older[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut older, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[width - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::control;

    fn dep(name: &str, arch: Option<&str>, rel: Option<(Relation, &str)>) -> Dep {
        Dep {
            name: name.into(),
            arch: arch.map(Into::into),
            rel: rel.map(|(r, v)| (r, v.to_string())),
        }
    }

    #[test]
    fn parses_relation_fields() {
        let got = parse_depends(
            "libc6 (>= 2.34), perl:any, gpgv | gpgv2 (>>1.0)|gpgv1,\n debconf (>= 0.5) | debconf-2.0 ,",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                vec![dep("libc6", None, Some((Relation::Ge, "2.34")))],
                vec![dep("perl", Some("any"), None)],
                vec![
                    dep("gpgv", None, None),
                    dep("gpgv2", None, Some((Relation::Gt, "1.0"))),
                    dep("gpgv1", None, None),
                ],
                vec![
                    dep("debconf", None, Some((Relation::Ge, "0.5"))),
                    dep("debconf-2.0", None, None),
                ],
            ]
        );
        assert_eq!(
            parse_depends("a (< 1), b ( = 1:2.0-1 )").unwrap(),
            vec![
                vec![dep("a", None, Some((Relation::Le, "1")))],
                vec![dep("b", None, Some((Relation::Eq, "1:2.0-1")))],
            ]
        );
        assert!(parse_depends("").unwrap().is_empty());
        assert_eq!(
            clause_text(&parse_depends("x:amd64 (>= 1) | y").unwrap()[0]),
            "x:amd64 (>= 1) | y"
        );
    }

    #[test]
    fn evaluates_arch_lists_and_profiles() {
        let field = "a [amd64], b [!amd64], c [linux-any] <!nocheck>, d <nocheck>, \
                     e [i386] | f, g <stage1> <!stage2 !nodoc>";
        let all = parse_depends(field).unwrap();
        assert_eq!(all.len(), 6);
        let amd64 = parse_depends_for(field, "amd64").unwrap();
        let names: Vec<Vec<&str>> = amd64
            .iter()
            .map(|c| c.iter().map(|d| d.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a"], vec!["c"], vec!["f"], vec!["g"]]);
        let arm64 = parse_depends_for(field, "arm64").unwrap();
        assert_eq!(arm64[0][0].name, "b");
        assert_eq!(parse_depends_for("x [any-arm]", "armhf").unwrap().len(), 1);
    }

    #[test]
    fn relation_errors_name_the_clause() {
        for (field, why) in [
            ("a (>= )", "no version"),
            ("a (1.0)", "needs a relation"),
            ("a (=> 1.0)", "`=>`"),
            ("a (>= 1.0", "not closed"),
            ("a | | b", "empty"),
            ("a b", "unexpected `b`"),
            ("Bad_Name", "not a valid package name"),
            ("a:", "architecture qualifier"),
            ("a [amd64 !i386]", "mixes"),
            ("a (>= 1 0)", "whitespace"),
        ] {
            let e = parse_depends(field).unwrap_err().to_string();
            assert!(e.contains(why), "{field:?}: {e}");
            assert!(
                e.contains(field.split(',').next().unwrap().trim()),
                "{field:?}: {e}"
            );
        }
    }

    fn stanza(name: &str, version: &str, arch: &str, extra: &str) -> String {
        let mut s = format!("Package: {name}\nVersion: {version}\nArchitecture: {arch}\n");
        for line in extra.lines() {
            s.push_str(line.trim());
            s.push('\n');
        }
        let sha = format!("{:02X}", name.len()).repeat(32);
        let size = 100 + name.len();
        s.push_str(&format!(
            "Filename: pool/main/{name}_{version}_{arch}.deb\nSize: {size}\nSHA256: {sha}\n\n"
        ));
        s
    }

    fn index(label: &str, stanzas: &[String]) -> (String, Vec<Paragraph>) {
        (
            label.to_string(),
            control::parse(&stanzas.concat()).unwrap(),
        )
    }

    /// A small archive shaped like bookworm's base.
    fn base() -> Vec<String> {
        vec![
            stanza(
                "libc6",
                "2.36-9",
                "amd64",
                "Priority: required\nMulti-Arch: same\nDepends: libgcc-s1",
            ),
            stanza("libgcc-s1", "12.2.0-14", "amd64", "Priority: optional"),
            stanza(
                "dash",
                "0.5.12-2",
                "amd64",
                "Essential: yes\nPriority: required\nPre-Depends: libc6 (>= 2.34), debianutils (>= 5.6-0.1)",
            ),
            stanza(
                "debianutils",
                "5.7-0.5",
                "amd64",
                "Essential: yes\nPriority: required",
            ),
            stanza(
                "base-files",
                "12.4+deb12u5",
                "amd64",
                "Essential: yes\nPriority: required\nPre-Depends: awk",
            ),
            stanza(
                "mawk",
                "1.3.4.20200120-3.1",
                "amd64",
                "Priority: required\nMulti-Arch: foreign\nProvides: awk",
            ),
            stanza(
                "gawk",
                "1:5.2.1-2",
                "amd64",
                "Priority: optional\nProvides: awk",
            ),
            stanza(
                "init-system-helpers",
                "1.65.2",
                "all",
                "Priority: required\nDepends: usrmerge | usr-is-merged, perl-base (>= 5.20.1-3)",
            ),
            stanza(
                "perl-base",
                "5.36.0-7",
                "amd64",
                "Essential: yes\nPriority: required",
            ),
            stanza(
                "usrmerge",
                "35",
                "all",
                "Priority: optional\nDepends: perl:any, libfile-find-rule-perl",
            ),
            stanza(
                "libfile-find-rule-perl",
                "0.34-3",
                "all",
                "Priority: optional\nDepends: perl:any",
            ),
            stanza(
                "perl",
                "5.36.0-7",
                "amd64",
                "Priority: standard\nMulti-Arch: allowed\nDepends: perl-base (= 5.36.0-7)",
            ),
            stanza(
                "usr-is-merged",
                "35",
                "all",
                "Priority: optional\nMulti-Arch: foreign",
            ),
            stanza(
                "tzdata",
                "2024a-0+deb12u1",
                "all",
                "Priority: required\nMulti-Arch: foreign",
            ),
            stanza(
                "apt",
                "2.6.1",
                "amd64",
                "Priority: important\nDepends: libc6 (>= 2.34), gpgv | gpgv2",
            ),
            stanza("gpgv", "2.2.40-1.1", "amd64", "Priority: important"),
            stanza(
                "python3",
                "3.11.2-1+b1",
                "amd64",
                "Priority: optional\nDepends: python3-minimal (= 3.11.2-1+b1), libpython3-stdlib (= 3.11.2-1+b1)",
            ),
            stanza(
                "python3-minimal",
                "3.11.2-1+b1",
                "amd64",
                "Priority: optional",
            ),
            stanza(
                "libpython3-stdlib",
                "3.11.2-1+b1",
                "amd64",
                "Priority: optional",
            ),
            stanza("cowsay", "3.03+dfsg2-8", "all", "Priority: optional"),
            stanza("hello", "2.10-3", "arm64", "Priority: optional"),
            stanza("libc6", "2.99-1", "arm64", "Priority: required"),
        ]
    }

    fn names(set: &[Resolved]) -> Vec<&str> {
        set.iter().map(|r| r.name.as_str()).collect()
    }

    fn get<'r>(set: &'r [Resolved], name: &str) -> &'r Resolved {
        set.iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} not selected: {:?}", names(set)))
    }

    fn resolve_with(stanzas: &[String], req: &Request) -> Result<Vec<Resolved>> {
        resolve(&[index("main", stanzas)], req)
    }

    fn with_includes(include: &[&str]) -> Request {
        let mut req = Request::new("amd64");
        req.include = include.iter().map(|s| s.to_string()).collect();
        req
    }

    #[test]
    fn minbase_seeds_essential_required_and_apt() {
        let set = resolve_with(&base(), &Request::new("amd64")).unwrap();
        assert_eq!(
            names(&set),
            vec![
                "apt",
                "base-files",
                "dash",
                "debianutils",
                "gpgv",
                "init-system-helpers",
                "libc6",
                "libgcc-s1",
                "mawk",
                "perl-base",
                "tzdata",
                "usr-is-merged",
            ]
        );
        // awk is satisfied by the seeded mawk, not an ambiguity between
        // mawk and gawk.
        assert!(!names(&set).contains(&"gawk"));
    }

    #[test]
    fn essential_variant_seeds_only_essential() {
        let mut req = Request::new("amd64");
        req.variant = Variant::Essential;
        // base-files needs awk, which mawk and gawk provide; neither is
        // Essential, so the choice needs the prefer list.
        let e = resolve_with(&base(), &req).unwrap_err().to_string();
        assert!(
            e.contains("base-files")
                && e.contains("awk")
                && e.contains("gawk, mawk")
                && e.contains("prefer"),
            "{e}"
        );
        req.prefer.push("mawk".into());
        let set = resolve_with(&base(), &req).unwrap();
        assert_eq!(
            names(&set),
            vec![
                "base-files",
                "dash",
                "debianutils",
                "libc6",
                "libgcc-s1",
                "mawk",
                "perl-base"
            ]
        );
        // Required packages are not auto-installed, even when pulled in.
        assert!(get(&set, "libgcc-s1").auto);
        assert!(!get(&set, "libc6").auto && !get(&set, "mawk").auto && !get(&set, "dash").auto);
    }

    #[test]
    fn first_installable_alternative_skips_missing_ones() {
        let mut stanzas = base();
        stanzas.push(stanza(
            "tool",
            "1.0-1",
            "amd64",
            "Depends: not-here | libc6 (>= 3) | cowsay, gpgv | gpgv2",
        ));
        let set = resolve_with(&stanzas, &with_includes(&["tool"])).unwrap();
        assert!(names(&set).contains(&"cowsay"));
        assert!(get(&set, "cowsay").auto);
        assert!(!names(&set).contains(&"not-here"));
    }

    #[test]
    fn unsatisfiable_clause_names_package_and_clause() {
        let mut stanzas = base();
        stanzas.push(stanza(
            "broken",
            "1.0",
            "amd64",
            "Depends: libc6 (>= 3) | nothere (>= 1)",
        ));
        let e = resolve_with(&stanzas, &with_includes(&["broken"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("broken 1.0 (from main): Depends: `libc6 (>= 3) | nothere (>= 1)`"),
            "{e}"
        );
        assert!(
            e.contains("libc6 2.36-9 does not satisfy libc6 (>= 3)"),
            "{e}"
        );
        assert!(e.contains("nothere is not in any index"), "{e}");
    }

    #[test]
    fn versioned_dependency_needs_versioned_provides() {
        let mut stanzas = base();
        stanzas.push(stanza("needs-x", "1", "amd64", "Depends: x-virtual (>= 2)"));
        stanzas.push(stanza("plain-x", "1", "amd64", "Provides: x-virtual"));
        let e = resolve_with(&stanzas, &with_includes(&["needs-x"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plain-x") && e.contains("unversioned Provides"),
            "{e}"
        );

        stanzas.push(stanza(
            "versioned-x",
            "1",
            "amd64",
            "Provides: x-virtual (= 2.1)",
        ));
        let set = resolve_with(&stanzas, &with_includes(&["needs-x"])).unwrap();
        assert!(names(&set).contains(&"versioned-x"));
        assert!(!names(&set).contains(&"plain-x"));

        // A selected unversioned provider does not satisfy it either.
        let set = resolve_with(&stanzas, &with_includes(&["plain-x", "needs-x"])).unwrap();
        assert!(names(&set).contains(&"versioned-x"));
    }

    #[test]
    fn virtual_with_one_provider() {
        let mut stanzas = base();
        stanzas.push(stanza(
            "wants-mta",
            "1",
            "all",
            "Depends: mail-transport-agent",
        ));
        stanzas.push(stanza(
            "tiny-mta",
            "2.0-1",
            "amd64",
            "Provides: mail-transport-agent\nConflicts: mail-transport-agent",
        ));
        let set = resolve_with(&stanzas, &with_includes(&["wants-mta"])).unwrap();
        // A package conflicting with a virtual it provides is no conflict.
        assert!(names(&set).contains(&"tiny-mta"));

        // A second provider makes it ambiguous unless preferred.
        stanzas.push(stanza(
            "big-mta",
            "4.0-1",
            "amd64",
            "Provides: mail-transport-agent",
        ));
        let e = resolve_with(&stanzas, &with_includes(&["wants-mta"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wants-mta") && e.contains("big-mta, tiny-mta"),
            "{e}"
        );
        let mut req = with_includes(&["wants-mta"]);
        req.prefer.push("big-mta".into());
        let set = resolve_with(&stanzas, &req).unwrap();
        assert!(names(&set).contains(&"big-mta") && !names(&set).contains(&"tiny-mta"));
        // An include may name a virtual with one preferred provider.
        let mut req = with_includes(&["mail-transport-agent"]);
        req.prefer.push("tiny-mta".into());
        let set = resolve_with(&stanzas, &req).unwrap();
        assert!(!get(&set, "tiny-mta").auto);
    }

    #[test]
    fn prefer_list_chooses_usr_is_merged() {
        let set = resolve_with(&base(), &Request::new("amd64")).unwrap();
        assert!(names(&set).contains(&"usr-is-merged"));
        assert!(!names(&set).contains(&"usrmerge") && !names(&set).contains(&"perl"));

        // Without the prefer list the first alternative wins and brings in
        // perl through `perl:any`.
        let mut req = Request::new("amd64");
        req.prefer.clear();
        let set = resolve_with(&base(), &req).unwrap();
        for n in ["usrmerge", "perl", "libfile-find-rule-perl"] {
            assert!(names(&set).contains(&n), "{n}: {:?}", names(&set));
        }
        assert!(!names(&set).contains(&"usr-is-merged"));
    }

    #[test]
    fn highest_version_across_indices() {
        let security = vec![
            stanza(
                "libc6",
                "2.36-9+deb12u4",
                "amd64",
                "Priority: required\nMulti-Arch: same\nDepends: libgcc-s1",
            ),
            stanza("tzdata", "2024a-0+deb12u1", "all", "Priority: required"),
            stanza("gpgv", "2.2.40-1", "amd64", "Priority: important"),
        ];
        let indices = [
            index("bookworm/main", &base()),
            index("bookworm-security/main", &security),
        ];
        let set = resolve(&indices, &Request::new("amd64")).unwrap();
        let libc = get(&set, "libc6");
        assert_eq!(
            (libc.version.as_str(), libc.source.as_str()),
            ("2.36-9+deb12u4", "bookworm-security/main")
        );
        assert_eq!(libc.filename, "pool/main/libc6_2.36-9+deb12u4_amd64.deb");
        // An older version in the later index loses.
        assert_eq!(get(&set, "gpgv").source, "bookworm/main");
        // The same version in both: the first index listed wins.
        assert_eq!(get(&set, "tzdata").source, "bookworm/main");
    }

    #[test]
    fn arch_all_and_other_architectures() {
        let set = resolve_with(&base(), &Request::new("amd64")).unwrap();
        let tz = get(&set, "tzdata");
        assert_eq!(tz.arch, "all");
        assert_eq!(tz.multi_arch.as_deref(), Some("foreign"));
        let libc = get(&set, "libc6");
        // The arm64 libc6 has a higher version but is not a candidate.
        assert_eq!(
            (libc.arch.as_str(), libc.version.as_str()),
            ("amd64", "2.36-9")
        );
        assert_eq!(libc.multi_arch.as_deref(), Some("same"));
        assert_eq!(libc.size, 105);
        assert_eq!(libc.sha256, "05".repeat(32));
        assert_eq!(libc.priority.as_deref(), Some("required"));
        // Hex digits are written in lower case.
        assert_eq!(get(&set, "usr-is-merged").sha256, "0d".repeat(32));

        let e = resolve_with(&base(), &with_includes(&["hello"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hello is not available for amd64") && e.contains("arm64"),
            "{e}"
        );

        // For arm64, only libc6 2.99-1 exists, and most of the base is
        // missing for it, so that resolution names what breaks.
        let e = resolve_with(&base(), &Request::new("arm64"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("for arm64"), "{e}");
    }

    #[test]
    fn include_pins_an_older_version() {
        let security = vec![stanza(
            "libc6",
            "2.36-9+deb12u4",
            "amd64",
            "Priority: required\nDepends: libgcc-s1",
        )];
        let indices = [index("main", &base()), index("security", &security)];
        let set = resolve(&indices, &with_includes(&["libc6=2.36-9"])).unwrap();
        let libc = get(&set, "libc6");
        assert_eq!(
            (libc.version.as_str(), libc.source.as_str()),
            ("2.36-9", "main")
        );
        assert!(!libc.auto);

        let e = resolve(&indices, &with_includes(&["libc6=2.35-1"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no version 2.35-1 of libc6")
                && e.contains("2.36-9+deb12u4 (security), 2.36-9 (main)"),
            "{e}"
        );

        let e = resolve(
            &indices,
            &with_includes(&["libc6=2.36-9", "libc6=2.36-9+deb12u4"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("two versions"), "{e}");
    }

    #[test]
    fn pinned_version_must_satisfy_dependents() {
        let mut stanzas = base();
        stanzas.push(stanza(
            "python3-minimal",
            "3.11.2-1",
            "amd64",
            "Priority: optional",
        ));
        let e = resolve_with(
            &stanzas,
            &with_includes(&["python3", "python3-minimal=3.11.2-1"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("python3 3.11.2-1+b1")
                && e.contains("python3-minimal 3.11.2-1 does not satisfy"),
            "{e}"
        );
    }

    #[test]
    fn conflicts_and_breaks_are_detected() {
        let mut stanzas = base();
        stanzas.push(stanza("a-tool", "1.0", "amd64", "Conflicts: cowsay"));
        let e = resolve_with(&stanzas, &with_includes(&["a-tool", "cowsay"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a-tool 1.0 (from main) conflicts with cowsay 3.03+dfsg2-8 (from main)"),
            "{e}"
        );
        assert!(resolve_with(&stanzas, &with_includes(&["a-tool"])).is_ok());

        stanzas.push(stanza("b-tool", "1.0", "amd64", "Breaks: libc6 (<< 2.37)"));
        let e = resolve_with(&stanzas, &with_includes(&["b-tool"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b-tool 1.0 (from main) breaks libc6 2.36-9")
                && e.contains("Breaks: libc6 (<< 2.37)"),
            "{e}"
        );

        stanzas.push(stanza(
            "c-tool",
            "1.0",
            "amd64",
            "Breaks: libc6 (<< 2.30)\nConflicts: awk",
        ));
        let e = resolve_with(&stanzas, &with_includes(&["c-tool"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c-tool 1.0 (from main) conflicts with mawk"),
            "{e}"
        );
    }

    #[test]
    fn missing_include_suggests_a_spelling() {
        let e = resolve_with(&base(), &with_includes(&["pyhton3"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("include `pyhton3`") && e.contains("did you mean `python3`?"),
            "{e}"
        );
        let e = resolve_with(&base(), &with_includes(&["zzzzzzzzzz"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zzzzzzzzzz is not in any index for amd64") && !e.contains("did you mean"),
            "{e}"
        );
        let e = resolve_with(&base(), &with_includes(&["cowsey=1.0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `cowsay`?"), "{e}");
        let e = resolve_with(&base(), &with_includes(&["=1.0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("name=version"), "{e}");
    }

    #[test]
    fn auto_flags() {
        let set = resolve_with(&base(), &with_includes(&["python3"])).unwrap();
        let auto: Vec<&str> = set
            .iter()
            .filter(|r| r.auto)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            auto,
            vec![
                "gpgv",
                "libgcc-s1",
                "libpython3-stdlib",
                "python3-minimal",
                "usr-is-merged"
            ]
        );
        assert!(get(&set, "dash").essential);
        assert!(!get(&set, "apt").auto && !get(&set, "python3").auto);
    }

    #[test]
    fn foreign_arch_qualifier_is_not_satisfiable() {
        let mut stanzas = base();
        stanzas.push(stanza(
            "cross",
            "1",
            "amd64",
            "Depends: libc6:i386 | libc6:amd64 (>= 2)",
        ));
        let set = resolve_with(&stanzas, &with_includes(&["cross"])).unwrap();
        assert!(names(&set).contains(&"cross"));
        stanzas.push(stanza("cross2", "1", "amd64", "Depends: libc6:i386"));
        let e = resolve_with(&stanzas, &with_includes(&["cross2"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no i386 packages"), "{e}");
    }

    #[test]
    fn variant_and_request_defaults() {
        assert_eq!("essential".parse::<Variant>().unwrap(), Variant::Essential);
        assert!("buildd".parse::<Variant>().is_err());
        let req = Request::new("arm64");
        assert_eq!(
            (req.variant, req.prefer.as_slice()),
            (Variant::Minbase, &["usr-is-merged".to_string()][..])
        );
        assert!(resolve_with(&base(), &Request::new("all")).is_err());
    }

    #[test]
    fn spelling_distance() {
        assert_eq!(edit_distance("pyhton3", "python3"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            suggest("libc", ["libc6", "libcap2"].into_iter()),
            Some("libc6")
        );
    }
}

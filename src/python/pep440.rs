//! PEP 440 versions and version specifiers.
//!
//! * [`Version`]: epoch, release, pre/post/dev and local label, with the specification's
//!   ordering (`1.0 == 1.0.0`, `1.0.dev0 < 1.0a1 < 1.0 < 1.0.post1`, local above public).
//! * [`Specifier`] and [`Specifiers`]: the operators `== != < <= > >= ~= ===`, including
//!   `==X.*` / `!=X.*` prefix matching.
//!
//! Requirement strings ([`super::pep508`]) and environment markers ([`super::markers`])
//! are built on these.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// PEP 440 versions
// ---------------------------------------------------------------------------------------------

/// Error for an unparsable version or specifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version `{input}`: {reason}")]
pub struct VersionError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

impl VersionError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        VersionError {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

/// Pre-release kinds, in ascending order (`a` < `b` < `rc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreKind {
    /// `a`, `alpha`
    Alpha,
    /// `b`, `beta`
    Beta,
    /// `rc`, `c`, `pre`, `preview`
    Rc,
}

impl PreKind {
    fn as_str(self) -> &'static str {
        match self {
            PreKind::Alpha => "a",
            PreKind::Beta => "b",
            PreKind::Rc => "rc",
        }
    }
}

/// One dot-separated segment of a local version label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LocalSegment {
    /// All ASCII digits; compared numerically.
    Num(u64),
    /// Contains a letter; stored lowercase and compared lexicographically.
    Text(String),
}

impl Ord for LocalSegment {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (LocalSegment::Num(a), LocalSegment::Num(b)) => a.cmp(b),
            (LocalSegment::Text(a), LocalSegment::Text(b)) => a.cmp(b),
            // A numeric segment sorts above an alphanumeric one.
            (LocalSegment::Num(_), LocalSegment::Text(_)) => Ordering::Greater,
            (LocalSegment::Text(_), LocalSegment::Num(_)) => Ordering::Less,
        }
    }
}

impl PartialOrd for LocalSegment {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LocalSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalSegment::Num(n) => write!(f, "{n}"),
            LocalSegment::Text(s) => f.write_str(s),
        }
    }
}

/// A PEP 440 version. Equality and ordering follow the specification: trailing zeros in the
/// release are insignificant (`1.0 == 1.0.0`), `1.0.dev0 < 1.0a1 < 1.0 < 1.0.post1`, and a local
/// label sorts above the same public version.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(PreKind, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalSegment>,
}

impl Version {
    /// Builds a final release from its components, e.g. `Version::from_release(&[3, 12, 7])`.
    /// An empty slice gives `0`.
    pub fn from_release(release: &[u64]) -> Version {
        Version {
            epoch: 0,
            release: if release.is_empty() {
                vec![0]
            } else {
                release.to_vec()
            },
            pre: None,
            post: None,
            dev: None,
            local: Vec::new(),
        }
    }

    /// Parses a version, accepting every spelling PEP 440 allows (leading `v`, `-`/`_`/`.`
    /// separators, `alpha`/`c`/`preview`, implicit numbers, `1.0-1` post releases, any case).
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        let lower = input.trim().to_ascii_lowercase();
        let mut c = Cursor::new(&lower);
        c.eat("v");
        let first = c
            .number(input)?
            .ok_or_else(|| VersionError::new(input, "expected a release number"))?;
        let mut epoch = 0;
        let mut release = vec![first];
        if c.eat("!") {
            epoch = first;
            release[0] = c
                .number(input)?
                .ok_or_else(|| VersionError::new(input, "expected a release number after `!`"))?;
        }
        while c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            c.bump();
            release.push(c.number(input)?.unwrap_or(0));
        }

        // Pre-release: [-_.]? (alpha|beta|preview|pre|rc|a|b|c) [-_.]? N?
        let mut pre = None;
        let save = c.pos;
        c.separator();
        let kind = [
            ("alpha", PreKind::Alpha),
            ("beta", PreKind::Beta),
            ("preview", PreKind::Rc),
            ("pre", PreKind::Rc),
            ("rc", PreKind::Rc),
            ("a", PreKind::Alpha),
            ("b", PreKind::Beta),
            ("c", PreKind::Rc),
        ]
        .into_iter()
        .find(|(word, _)| c.eat(word));
        match kind {
            Some((_, kind)) => {
                c.separator();
                pre = Some((kind, c.number(input)?.unwrap_or(0)));
            }
            None => c.pos = save,
        }

        // Post-release: -N | [-_.]? (post|rev|r) [-_.]? N?
        let mut post = None;
        let save = c.pos;
        if c.peek() == Some(b'-') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            c.bump();
            post = c.number(input)?;
        } else {
            c.separator();
            if ["post", "rev", "r"].into_iter().any(|word| c.eat(word)) {
                c.separator();
                post = Some(c.number(input)?.unwrap_or(0));
            } else {
                c.pos = save;
            }
        }

        // Development release: [-_.]? dev [-_.]? N?
        let mut dev = None;
        let save = c.pos;
        c.separator();
        if c.eat("dev") {
            c.separator();
            dev = Some(c.number(input)?.unwrap_or(0));
        } else {
            c.pos = save;
        }

        // Local label: + [a-z0-9]+ ([-_.][a-z0-9]+)*
        let mut local = Vec::new();
        if c.eat("+") {
            loop {
                let start = c.pos;
                while c.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
                    c.bump();
                }
                let segment = &lower[start..c.pos];
                if segment.is_empty() {
                    return Err(VersionError::new(input, "empty segment in local label"));
                }
                local.push(if segment.bytes().all(|b| b.is_ascii_digit()) {
                    LocalSegment::Num(
                        segment.parse().map_err(|_| {
                            VersionError::new(input, "number too large in local label")
                        })?,
                    )
                } else {
                    LocalSegment::Text(segment.to_string())
                });
                if !c.separator() {
                    break;
                }
            }
        }

        if c.pos != lower.len() {
            return Err(VersionError::new(
                input,
                format!("unexpected `{}`", &lower[c.pos..]),
            ));
        }
        Ok(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// The epoch (`N!`), 0 when absent.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The release numbers as written (trailing zeros kept).
    pub fn release(&self) -> &[u64] {
        &self.release
    }

    /// True for pre-releases and development releases (as `packaging` defines it).
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// The public version (the local label removed).
    pub fn without_local(&self) -> Version {
        Version {
            local: Vec::new(),
            ..self.clone()
        }
    }

    fn release_trimmed(&self) -> &[u64] {
        let mut end = self.release.len();
        while end > 1 && self.release[end - 1] == 0 {
            end -= 1;
        }
        &self.release[..end]
    }

    // Sort keys for the suffix segments, mirroring the specification's ordering.
    fn pre_key(&self) -> (u8, Option<PreKind>, u64) {
        match self.pre {
            // A bare `.devN` release sorts before every pre-release of that release.
            None if self.post.is_none() && self.dev.is_some() => (0, None, 0),
            Some((kind, n)) => (1, Some(kind), n),
            None => (2, None, 0),
        }
    }

    fn post_key(&self) -> (u8, u64) {
        match self.post {
            None => (0, 0),
            Some(n) => (1, n),
        }
    }

    fn dev_key(&self) -> (u8, u64) {
        match self.dev {
            Some(n) => (0, n),
            None => (1, 0),
        }
    }

    /// Same epoch and release, ignoring trailing zeros.
    fn same_release(&self, other: &Version) -> bool {
        self.epoch == other.epoch && self.release_trimmed() == other.release_trimmed()
    }

    /// Release prefix match used by `==X.*`: the candidate's release is padded with zeros to
    /// the prefix length and its first components must equal the prefix.
    fn matches_prefix(&self, epoch: u64, prefix: &[u64]) -> bool {
        self.epoch == epoch
            && prefix
                .iter()
                .enumerate()
                .all(|(i, p)| self.release.get(i).copied().unwrap_or(0) == *p)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| {
                let len = self.release.len().max(other.release.len());
                (0..len)
                    .map(|i| {
                        let a = self.release.get(i).copied().unwrap_or(0);
                        let b = other.release.get(i).copied().unwrap_or(0);
                        a.cmp(&b)
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| self.post_key().cmp(&other.post_key()))
            .then_with(|| self.dev_key().cmp(&other.dev_key()))
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        self.release_trimmed().hash(state);
        self.pre_key().hash(state);
        self.post_key().hash(state);
        self.dev_key().hash(state);
        self.local.hash(state);
    }
}

impl fmt::Display for Version {
    /// The normalized form, e.g. `1!2.0rc1.post2.dev3+ubuntu.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        for (i, n) in self.release.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        if let Some((kind, n)) = self.pre {
            write!(f, "{}{n}", kind.as_str())?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = self.dev {
            write!(f, ".dev{n}")?;
        }
        for (i, seg) in self.local.iter().enumerate() {
            f.write_str(if i == 0 { "+" } else { "." })?;
            write!(f, "{seg}")?;
        }
        Ok(())
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

/// Byte cursor for the version parser (input is already lowercase).
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.pos + offset).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Consumes one optional `-`, `_` or `.`.
    fn separator(&mut self) -> bool {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.')) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Reads a run of digits, if any.
    fn number(&mut self, input: &str) -> Result<Option<u64>, VersionError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.bump();
        }
        if start == self.pos {
            return Ok(None);
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        digits
            .parse()
            .map(Some)
            .map_err(|_| VersionError::new(input, format!("number `{digits}` is too large")))
    }
}

// ---------------------------------------------------------------------------------------------
// PEP 440 specifiers
// ---------------------------------------------------------------------------------------------

/// A PEP 440 comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecOp {
    /// `==` (with `wildcard`, `==X.*`)
    Eq,
    /// `!=` (with `wildcard`, `!=X.*`)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~=`
    Compatible,
    /// `===`
    Arbitrary,
}

impl SpecOp {
    fn as_str(self) -> &'static str {
        match self {
            SpecOp::Eq => "==",
            SpecOp::Ne => "!=",
            SpecOp::Lt => "<",
            SpecOp::Le => "<=",
            SpecOp::Gt => ">",
            SpecOp::Ge => ">=",
            SpecOp::Compatible => "~=",
            SpecOp::Arbitrary => "===",
        }
    }
}

/// One PEP 440 version specifier such as `>=3.10`, `==3.11.*` or `~=2.2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specifier {
    op: SpecOp,
    /// The operand as written (trimmed), used by `===`.
    literal: String,
    /// The parsed operand; for `===` it is `None` when the operand is not a valid version.
    version: Option<Version>,
    wildcard: bool,
}

impl Specifier {
    /// Parses `OP VERSION`.
    pub fn parse(input: &str) -> Result<Specifier, VersionError> {
        let text = input.trim();
        let ops = [
            ("===", SpecOp::Arbitrary),
            ("~=", SpecOp::Compatible),
            ("==", SpecOp::Eq),
            ("!=", SpecOp::Ne),
            ("<=", SpecOp::Le),
            (">=", SpecOp::Ge),
            ("<", SpecOp::Lt),
            (">", SpecOp::Gt),
        ];
        let Some((op, rest)) = ops
            .iter()
            .find_map(|(s, op)| text.strip_prefix(s).map(|rest| (*op, rest)))
        else {
            return Err(VersionError::new(
                input,
                "a specifier must start with one of == != < <= > >= ~= ===",
            ));
        };
        Specifier::from_parts(op, rest).map_err(|e| VersionError::new(input, e.reason))
    }

    /// Builds a specifier from an operator and its operand text.
    pub fn from_parts(op: SpecOp, operand: &str) -> Result<Specifier, VersionError> {
        let literal = operand.trim();
        if literal.is_empty() {
            return Err(VersionError::new(operand, "missing version after operator"));
        }
        if op == SpecOp::Arbitrary {
            return Ok(Specifier {
                op,
                literal: literal.to_string(),
                version: Version::parse(literal).ok(),
                wildcard: false,
            });
        }
        let (text, wildcard) = match literal.strip_suffix(".*") {
            Some(prefix) => (prefix, true),
            None => (literal, false),
        };
        if wildcard && !matches!(op, SpecOp::Eq | SpecOp::Ne) {
            return Err(VersionError::new(
                literal,
                "`.*` is only allowed with `==` and `!=`",
            ));
        }
        let version = Version::parse(text)?;
        if wildcard
            && (version.pre.is_some()
                || version.post.is_some()
                || version.dev.is_some()
                || !version.local.is_empty())
        {
            return Err(VersionError::new(
                literal,
                "a `.*` prefix may only contain an epoch and release numbers",
            ));
        }
        if !version.local.is_empty() && !matches!(op, SpecOp::Eq | SpecOp::Ne) {
            return Err(VersionError::new(
                literal,
                "a local version label is only allowed with `==` and `!=`",
            ));
        }
        if op == SpecOp::Compatible && version.release.len() < 2 {
            return Err(VersionError::new(
                literal,
                "`~=` needs at least two release numbers",
            ));
        }
        Ok(Specifier {
            op,
            literal: literal.to_string(),
            version: Some(version),
            wildcard,
        })
    }

    /// The operand version (`None` only for a `===` whose operand is not a version).
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    /// Whether `candidate` satisfies this specifier (pre-releases are always allowed, as in
    /// marker evaluation).
    pub fn contains(&self, candidate: &Version) -> bool {
        let Some(spec) = &self.version else {
            // `===` with a non-version operand: compare the normalized text.
            return candidate.to_string().eq_ignore_ascii_case(&self.literal);
        };
        match self.op {
            SpecOp::Arbitrary => candidate.to_string().eq_ignore_ascii_case(&self.literal),
            SpecOp::Eq => self.equal(candidate, spec),
            SpecOp::Ne => !self.equal(candidate, spec),
            SpecOp::Le => candidate.without_local() <= *spec,
            SpecOp::Ge => candidate.without_local() >= *spec,
            SpecOp::Lt => {
                // `<V` must not match a pre-release of V itself unless V is one. For a final V
                // that is every other version with V's release (they all sort below V); for
                // V = X.postN it is only X.postN.devM.
                if candidate >= spec {
                    false
                } else if spec.is_prerelease() || !candidate.same_release(spec) {
                    true
                } else {
                    spec.post.is_some()
                        && !(candidate.pre.is_none()
                            && candidate.post == spec.post
                            && candidate.dev.is_some())
                }
            }
            SpecOp::Gt => {
                // `>V` must not match a post-release or a local version of V itself unless V is
                // a post-release.
                if candidate <= spec {
                    false
                } else if !candidate.same_release(spec) {
                    true
                } else if spec.dev.is_some() || spec.post.is_some() {
                    candidate.without_local() != *spec
                } else {
                    candidate.pre != spec.pre
                }
            }
            SpecOp::Compatible => {
                let prefix = &spec.release[..spec.release.len() - 1];
                candidate.without_local() >= *spec && candidate.matches_prefix(spec.epoch, prefix)
            }
        }
    }

    fn equal(&self, candidate: &Version, spec: &Version) -> bool {
        if self.wildcard {
            candidate.matches_prefix(spec.epoch, &spec.release)
        } else if spec.local.is_empty() {
            candidate.without_local() == *spec
        } else {
            candidate == spec
        }
    }
}

impl fmt::Display for Specifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.version, self.op) {
            (Some(v), op) if op != SpecOp::Arbitrary => {
                write!(
                    f,
                    "{}{v}{}",
                    op.as_str(),
                    if self.wildcard { ".*" } else { "" }
                )
            }
            _ => write!(f, "==={}", self.literal),
        }
    }
}

impl FromStr for Specifier {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Specifier::parse(s)
    }
}

/// A comma-separated list of specifiers, all of which must hold (e.g. `>=3.10, <4`). An empty
/// list matches every version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Specifiers(pub Vec<Specifier>);

impl Specifiers {
    /// Parses a comma-separated specifier list.
    pub fn parse(input: &str) -> Result<Specifiers, VersionError> {
        if input.trim().is_empty() {
            return Ok(Specifiers(Vec::new()));
        }
        input
            .split(',')
            .map(|part| Specifier::parse(part).map_err(|e| VersionError::new(input, e.reason)))
            .collect::<Result<Vec<_>, _>>()
            .map(Specifiers)
    }

    /// Whether `candidate` satisfies every specifier.
    pub fn contains(&self, candidate: &Version) -> bool {
        self.0.iter().all(|s| s.contains(candidate))
    }
}

impl fmt::Display for Specifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl FromStr for Specifiers {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Specifiers::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn version_parse_and_normalize() {
        for (input, want) in [
            ("1.0", "1.0"),
            ("v1.0", "1.0"),
            ("  2.5.1+CPU ", "2.5.1+cpu"),
            ("1!2.0", "1!2.0"),
            ("1.0a1", "1.0a1"),
            ("1.0alpha1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0pre", "1.0rc0"),
            ("1.0preview3", "1.0rc3"),
            ("1.0-1", "1.0.post1"),
            ("1.0.post", "1.0.post0"),
            ("1.0rev2", "1.0.post2"),
            ("1.0r", "1.0.post0"),
            ("1.0_dev3", "1.0.dev3"),
            ("1.0.DEV", "1.0.dev0"),
            ("1.0a1.post2.dev3", "1.0a1.post2.dev3"),
            ("1.0+ubuntu-1_2", "1.0+ubuntu.1.2"),
            ("1.0+01", "1.0+1"),
            ("3.13.0rc1", "3.13.0rc1"),
            ("2024.01.15", "2024.1.15"),
        ] {
            assert_eq!(v(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn version_parse_errors() {
        for bad in [
            "",
            "a",
            "1.0+",
            "1.0+a..b",
            "1.0 1",
            "1.0-",
            "1.0.x",
            "!1.0",
            "99999999999999999999999",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should fail");
        }
        let err = Version::parse("1.0.x").unwrap_err();
        assert_eq!(err.input, "1.0.x");
        assert!(err.to_string().contains("1.0.x"), "{err}");
    }

    #[test]
    fn version_ordering_table() {
        // Strictly ascending, per PEP 440's ordering rules.
        let ordered = [
            "0.9",
            "1.0.dev0",
            "1.0.dev1",
            "1.0a1.dev0",
            "1.0a1",
            "1.0a1.post0.dev0",
            "1.0a1.post0",
            "1.0a2",
            "1.0b1",
            "1.0rc1.dev5",
            "1.0rc1",
            "1.0",
            "1.0+abc",
            "1.0+abc.1",
            "1.0+1",
            "1.0+2",
            "1.0+10",
            "1.0.post0.dev0",
            "1.0.post0",
            "1.0.post1",
            "1.0.1",
            "1.1.dev0",
            "1.1",
            "1.10",
            "2.0",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
        }
    }

    #[test]
    fn version_equality_ignores_trailing_zeros_and_spelling() {
        use std::collections::HashSet;
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("1", "1.0.0.0"),
            ("1.0a1", "1.0.0alpha1"),
            ("1.0.post1", "1.0-1"),
            ("1.0+Local", "1.0+local"),
            ("0!1.0", "1.0"),
        ] {
            assert_eq!(v(a), v(b), "{a} == {b}");
            let set: HashSet<Version> = [v(a), v(b)].into_iter().collect();
            assert_eq!(set.len(), 1, "hash of {a} and {b}");
        }
        assert_ne!(v("1.0"), v("1.0+local"));
        assert_ne!(v("1.0"), v("1.0.post0"));
    }

    #[test]
    fn specifier_table() {
        // (specifier, candidate, expected)
        let table = [
            (">=3.10", "3.12.7", true),
            (">=3.10", "3.9.18", false),
            ("<3.11", "3.10.13", true),
            ("<3.11", "3.11.0", false),
            ("<3.11", "3.11.0rc1", false), // <V excludes pre-releases of V
            ("<3.11rc2", "3.11.0rc1", true),
            ("<3.11", "3.10.0rc1", true),
            ("<=3.11", "3.11.0+local", true),
            (">3.11", "3.11.0.post1", false), // >V excludes post-releases of V
            (">3.11.post0", "3.11.0.post1", true),
            (">3.11", "3.11.0+local", false),
            (">3.11", "3.11.1", true),
            ("==3.11.*", "3.11.9", true),
            ("==3.11.*", "3.11.0rc1", true),
            ("==3.11.*", "3.12.0", false),
            ("==3.*", "3.12.7", true),
            ("==3.11.0.*", "3.11", true),
            ("!=3.11.*", "3.11.2", false),
            ("!=3.11.*", "3.12.2", true),
            ("==3.11", "3.11.0", true),
            ("==3.11", "3.11.0+local", true),
            ("==3.11+local", "3.11.0+local", true),
            ("==3.11+local", "3.11.0", false),
            ("!=3.11", "3.11.0", false),
            ("~=2.2", "2.9", true),
            ("~=2.2", "3.0", false),
            ("~=2.2", "2.1", false),
            ("~=1.4.5", "1.4.9", true),
            ("~=1.4.5", "1.5.0", false),
            ("~=2.2.post3", "2.2.post4", true),
            // "of V itself": other pre/post/local versions sharing V's release still compare.
            ("<1.0.post1", "1.0rc1", true),
            ("<1.0.post1", "1.0", true),
            ("<1.0.post1", "1.0.post1.dev0", false),
            ("<1.0", "1.0.dev0+local", false),
            (">1.0a1", "1.0.post1", true),
            (">1.0a1", "1.0+local", true),
            (">1.0a1", "1.0a1.post1", false),
            (">1.0.dev0", "1.0.post1", true),
            (">1.0.dev0", "1.0.dev0+local", false),
            (">1.0.post1", "1.0.post1+local", false),
            (">1.0", "1.0.post1+local", false),
            ("===3.12.7", "3.12.7", true),
            ("===3.12", "3.12.0", false),
        ];
        for (spec, candidate, want) in table {
            let s = Specifier::parse(spec).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.contains(&v(candidate)), want, "{candidate} in {spec}");
        }
    }

    #[test]
    fn specifier_errors_and_lists() {
        for bad in [
            "3.10",
            ">=",
            "~=3",
            ">=3.*",
            "==3.1a1.*",
            "<3.0+local",
            "=>3.10",
        ] {
            assert!(Specifier::parse(bad).is_err(), "{bad}");
        }
        let list = Specifiers::parse(">=3.10, <4,!=3.11.*").unwrap();
        assert_eq!(list.to_string(), ">=3.10, <4, !=3.11.*");
        assert!(list.contains(&v("3.12.7")));
        assert!(!list.contains(&v("3.11.2")));
        assert!(!list.contains(&v("4.0")));
        assert!(Specifiers::parse("").unwrap().contains(&v("1.0")));
        assert!(Specifiers::parse(">=3.10,").is_err());
    }
}

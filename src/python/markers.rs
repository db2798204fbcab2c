//! PEP 508 environment markers, plus the small PEP 440 version model they need.
//!
//! * [`Version`], [`Specifier`] and [`Specifiers`]: PEP 440 versions (epoch, release,
//!   pre/post/dev, local label) with the specification's ordering, and the specifier operators
//!   `== != < <= > >= ~= ===` including `==X.*` / `!=X.*` prefix matching.
//! * [`MarkerEnv`]: the values of the marker variables for one image target.
//! * [`Marker`]: a parsed marker expression; [`Marker::evaluate`] decides it for an
//!   environment, a set of active extras and a set of active dependency groups.
//!
//! Comparison rules (PYTHON-INSTALL.md §2.2):
//! * Version variables (`python_version`, `python_full_version`, `implementation_version`)
//!   use PEP 440 specifier semantics: the right-hand operand is the specifier literal and the
//!   left-hand one is the candidate, as in `packaging`. If either side does not parse, the
//!   comparison falls back to the string rules.
//! * `platform_release` / `platform_version` compare as versions when both sides parse, else
//!   as strings.
//! * String rules: `==`/`!=` are exact, `in`/`not in` are substring tests (left in right),
//!   `<=`/`>=`/`~=`/`===` behave like `==`, `<`/`>` are false.
//! * `extra` compares PEP 685-normalized names against the active extras; only `==`/`!=` can be
//!   true. `extras` and `dependency_groups` (PEP 751 sets) support `'x' in extras`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Normalizes a distribution, extra or group name (PEP 503 / PEP 685): ASCII lowercase, and
/// every run of `-`, `_` and `.` becomes a single `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
                in_sep = true;
            }
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

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

// ---------------------------------------------------------------------------------------------
// Marker environment
// ---------------------------------------------------------------------------------------------

/// Values of the PEP 508 marker variables for one target interpreter and platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerEnv {
    /// `implementation_name`, e.g. `cpython`.
    pub implementation_name: String,
    /// `implementation_version`, e.g. `3.12.7` or `3.13.0rc1`.
    pub implementation_version: String,
    /// `os_name`, e.g. `posix`.
    pub os_name: String,
    /// `platform_machine`, e.g. `x86_64` or `aarch64`.
    pub platform_machine: String,
    /// `platform_python_implementation`, e.g. `CPython`.
    pub platform_python_implementation: String,
    /// `platform_release` (kernel release at run time; empty for build-time targets).
    pub platform_release: String,
    /// `platform_system`, e.g. `Linux`.
    pub platform_system: String,
    /// `platform_version` (kernel version string; empty for build-time targets).
    pub platform_version: String,
    /// `python_full_version`, e.g. `3.12.7`.
    pub python_full_version: String,
    /// `python_version` (major.minor), e.g. `3.12`.
    pub python_version: String,
    /// `sys_platform`, e.g. `linux`.
    pub sys_platform: String,
}

impl MarkerEnv {
    /// The environment of CPython `python_full_version` on Linux for an OCI architecture
    /// (`amd64` or `arm64`; the `uname -m` spellings `x86_64` and `aarch64` are accepted too,
    /// any other value is used verbatim as `platform_machine`). `platform_release` and
    /// `platform_version` are empty because the kernel is only known at run time (uv does the
    /// same for cross targets).
    pub fn for_target(python_full_version: &str, arch: &str) -> MarkerEnv {
        let full = python_full_version.trim();
        let python_version = match Version::parse(full) {
            Ok(v) => format!(
                "{}.{}",
                v.release()[0],
                v.release().get(1).copied().unwrap_or(0)
            ),
            Err(_) => full.split('.').take(2).collect::<Vec<_>>().join("."),
        };
        let machine = match arch.trim() {
            "amd64" | "x86_64" | "x86-64" => "x86_64",
            "arm64" | "aarch64" | "arm64/v8" => "aarch64",
            other => other,
        };
        MarkerEnv {
            implementation_name: "cpython".to_string(),
            implementation_version: full.to_string(),
            os_name: "posix".to_string(),
            platform_machine: machine.to_string(),
            platform_python_implementation: "CPython".to_string(),
            platform_release: String::new(),
            platform_system: "Linux".to_string(),
            platform_version: String::new(),
            python_full_version: full.to_string(),
            python_version,
            sys_platform: "linux".to_string(),
        }
    }

    /// The value of an environment variable; `None` for `extra`, `extras` and
    /// `dependency_groups`, which come from the evaluation context instead.
    pub fn get(&self, var: MarkerVar) -> Option<&str> {
        Some(match var {
            MarkerVar::ImplementationName => &self.implementation_name,
            MarkerVar::ImplementationVersion => &self.implementation_version,
            MarkerVar::OsName => &self.os_name,
            MarkerVar::PlatformMachine => &self.platform_machine,
            MarkerVar::PlatformPythonImplementation => &self.platform_python_implementation,
            MarkerVar::PlatformRelease => &self.platform_release,
            MarkerVar::PlatformSystem => &self.platform_system,
            MarkerVar::PlatformVersion => &self.platform_version,
            MarkerVar::PythonFullVersion => &self.python_full_version,
            MarkerVar::PythonVersion => &self.python_version,
            MarkerVar::SysPlatform => &self.sys_platform,
            MarkerVar::Extra | MarkerVar::Extras | MarkerVar::DependencyGroups => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Marker syntax tree
// ---------------------------------------------------------------------------------------------

/// A marker variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerVar {
    /// `implementation_name`
    ImplementationName,
    /// `implementation_version`
    ImplementationVersion,
    /// `os_name` (alias `os.name`)
    OsName,
    /// `platform_machine` (alias `platform.machine`)
    PlatformMachine,
    /// `platform_python_implementation` (aliases `platform.python_implementation`,
    /// `python_implementation`)
    PlatformPythonImplementation,
    /// `platform_release`
    PlatformRelease,
    /// `platform_system`
    PlatformSystem,
    /// `platform_version` (alias `platform.version`)
    PlatformVersion,
    /// `python_full_version`
    PythonFullVersion,
    /// `python_version`
    PythonVersion,
    /// `sys_platform` (alias `sys.platform`)
    SysPlatform,
    /// `extra`
    Extra,
    /// `extras` (PEP 751 set)
    Extras,
    /// `dependency_groups` (PEP 751 set)
    DependencyGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarKind {
    Version,
    VersionOrString,
    String,
    Extra,
    Set,
}

impl MarkerVar {
    /// Looks up a variable by its PEP 508 name or one of the deprecated dotted aliases.
    pub fn from_name(name: &str) -> Option<MarkerVar> {
        Some(match name {
            "implementation_name" => MarkerVar::ImplementationName,
            "implementation_version" => MarkerVar::ImplementationVersion,
            "os_name" | "os.name" => MarkerVar::OsName,
            "platform_machine" | "platform.machine" => MarkerVar::PlatformMachine,
            "platform_python_implementation"
            | "platform.python_implementation"
            | "python_implementation" => MarkerVar::PlatformPythonImplementation,
            "platform_release" => MarkerVar::PlatformRelease,
            "platform_system" => MarkerVar::PlatformSystem,
            "platform_version" | "platform.version" => MarkerVar::PlatformVersion,
            "python_full_version" => MarkerVar::PythonFullVersion,
            "python_version" => MarkerVar::PythonVersion,
            "sys_platform" | "sys.platform" => MarkerVar::SysPlatform,
            "extra" => MarkerVar::Extra,
            "extras" => MarkerVar::Extras,
            "dependency_groups" => MarkerVar::DependencyGroups,
            _ => return None,
        })
    }

    /// The canonical PEP 508 name.
    pub fn name(self) -> &'static str {
        match self {
            MarkerVar::ImplementationName => "implementation_name",
            MarkerVar::ImplementationVersion => "implementation_version",
            MarkerVar::OsName => "os_name",
            MarkerVar::PlatformMachine => "platform_machine",
            MarkerVar::PlatformPythonImplementation => "platform_python_implementation",
            MarkerVar::PlatformRelease => "platform_release",
            MarkerVar::PlatformSystem => "platform_system",
            MarkerVar::PlatformVersion => "platform_version",
            MarkerVar::PythonFullVersion => "python_full_version",
            MarkerVar::PythonVersion => "python_version",
            MarkerVar::SysPlatform => "sys_platform",
            MarkerVar::Extra => "extra",
            MarkerVar::Extras => "extras",
            MarkerVar::DependencyGroups => "dependency_groups",
        }
    }

    fn kind(self) -> VarKind {
        match self {
            MarkerVar::PythonVersion
            | MarkerVar::PythonFullVersion
            | MarkerVar::ImplementationVersion => VarKind::Version,
            MarkerVar::PlatformRelease | MarkerVar::PlatformVersion => VarKind::VersionOrString,
            MarkerVar::Extra => VarKind::Extra,
            MarkerVar::Extras | MarkerVar::DependencyGroups => VarKind::Set,
            _ => VarKind::String,
        }
    }
}

/// One operand of a marker comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerValue {
    /// An environment variable.
    Var(MarkerVar),
    /// A quoted string literal (without its quotes).
    Str(String),
}

/// A marker comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerOp {
    /// `==`
    Eq,
    /// `!=`
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
    /// `in`
    In,
    /// `not in`
    NotIn,
}

impl MarkerOp {
    fn as_str(self) -> &'static str {
        match self {
            MarkerOp::Eq => "==",
            MarkerOp::Ne => "!=",
            MarkerOp::Lt => "<",
            MarkerOp::Le => "<=",
            MarkerOp::Gt => ">",
            MarkerOp::Ge => ">=",
            MarkerOp::Compatible => "~=",
            MarkerOp::Arbitrary => "===",
            MarkerOp::In => "in",
            MarkerOp::NotIn => "not in",
        }
    }

    fn spec_op(self) -> Option<SpecOp> {
        Some(match self {
            MarkerOp::Eq => SpecOp::Eq,
            MarkerOp::Ne => SpecOp::Ne,
            MarkerOp::Lt => SpecOp::Lt,
            MarkerOp::Le => SpecOp::Le,
            MarkerOp::Gt => SpecOp::Gt,
            MarkerOp::Ge => SpecOp::Ge,
            MarkerOp::Compatible => SpecOp::Compatible,
            MarkerOp::Arbitrary => SpecOp::Arbitrary,
            MarkerOp::In | MarkerOp::NotIn => return None,
        })
    }
}

/// A parsed PEP 508 marker expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// All of the operands hold.
    And(Vec<Marker>),
    /// At least one operand holds.
    Or(Vec<Marker>),
    /// `lhs op rhs`; at most one side is a variable.
    Compare {
        /// Left operand.
        lhs: MarkerValue,
        /// Operator.
        op: MarkerOp,
        /// Right operand.
        rhs: MarkerValue,
    },
}

/// A marker syntax error. `position` is a byte offset into the marker text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid marker `{input}` at position {position}: {message}")]
pub struct MarkerError {
    /// The marker text.
    pub input: String,
    /// Byte offset of the problem.
    pub position: usize,
    /// What was expected or found.
    pub message: String,
}

impl Marker {
    /// Parses a marker expression (the part after `;` in a PEP 508 requirement).
    pub fn parse(input: &str) -> Result<Marker, MarkerError> {
        let tokens = tokenize(input)?;
        let mut parser = Parser {
            input,
            tokens,
            pos: 0,
        };
        let marker = parser.parse_or()?;
        if let Some(tok) = parser.tokens.get(parser.pos) {
            return Err(parser.error(
                tok.start,
                format!(
                    "unexpected {} after the end of the marker",
                    tok.kind.describe()
                ),
            ));
        }
        Ok(marker)
    }

    /// Evaluates the marker. `extras` are the active extras (for `extra == "x"` and
    /// `"x" in extras`) and `groups` the active dependency groups (for
    /// `"x" in dependency_groups`); both are compared after PEP 685 normalization.
    pub fn evaluate(&self, env: &MarkerEnv, extras: &[&str], groups: &[&str]) -> bool {
        let ctx = EvalContext {
            env,
            extras: extras.iter().map(|e| normalize_name(e)).collect(),
            groups: groups.iter().map(|g| normalize_name(g)).collect(),
        };
        self.eval(&ctx)
    }

    fn eval(&self, ctx: &EvalContext<'_>) -> bool {
        match self {
            Marker::And(items) => items.iter().all(|m| m.eval(ctx)),
            Marker::Or(items) => items.iter().any(|m| m.eval(ctx)),
            Marker::Compare { lhs, op, rhs } => eval_compare(ctx, lhs, *op, rhs),
        }
    }
}

impl FromStr for Marker {
    type Err = MarkerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Marker::parse(s)
    }
}

impl fmt::Display for MarkerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarkerValue::Var(v) => f.write_str(v.name()),
            MarkerValue::Str(s) if s.contains('\'') => write!(f, "\"{s}\""),
            MarkerValue::Str(s) => write!(f, "'{s}'"),
        }
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::Compare { lhs, op, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            Marker::And(items) => {
                for (i, m) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    if matches!(m, Marker::Or(_)) {
                        write!(f, "({m})")?;
                    } else {
                        write!(f, "{m}")?;
                    }
                }
                Ok(())
            }
            Marker::Or(items) => {
                for (i, m) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{m}")?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

struct EvalContext<'a> {
    env: &'a MarkerEnv,
    extras: Vec<String>,
    groups: Vec<String>,
}

fn eval_compare(ctx: &EvalContext<'_>, lhs: &MarkerValue, op: MarkerOp, rhs: &MarkerValue) -> bool {
    match (lhs, rhs) {
        (MarkerValue::Var(var), MarkerValue::Str(lit)) => eval_var(ctx, *var, op, lit, true),
        (MarkerValue::Str(lit), MarkerValue::Var(var)) => eval_var(ctx, *var, op, lit, false),
        (MarkerValue::Str(a), MarkerValue::Str(b)) => compare_version_or_string(a, op, b),
        // Rejected by the parser; never true.
        (MarkerValue::Var(_), MarkerValue::Var(_)) => false,
    }
}

/// Evaluates `var op literal` (`var_on_left`) or `literal op var`.
fn eval_var(
    ctx: &EvalContext<'_>,
    var: MarkerVar,
    op: MarkerOp,
    literal: &str,
    var_on_left: bool,
) -> bool {
    match var.kind() {
        VarKind::Extra => {
            let wanted = normalize_name(literal);
            let active = ctx.extras.contains(&wanted);
            match op {
                MarkerOp::Eq => active,
                MarkerOp::Ne => !active,
                _ => false,
            }
        }
        VarKind::Set => {
            let set = if var == MarkerVar::Extras {
                &ctx.extras
            } else {
                &ctx.groups
            };
            let member = set.contains(&normalize_name(literal));
            match (op, var_on_left) {
                (MarkerOp::In, false) => member,
                (MarkerOp::NotIn, false) => !member,
                _ => false,
            }
        }
        kind => {
            let value = ctx.env.get(var).unwrap_or("");
            let (l, r) = if var_on_left {
                (value, literal)
            } else {
                (literal, value)
            };
            if kind == VarKind::String {
                compare_strings(l, op, r)
            } else {
                compare_version_or_string(l, op, r)
            }
        }
    }
}

/// PEP 440 comparison of candidate `l` against specifier `op r` when both parse, else the string
/// rules.
fn compare_version_or_string(l: &str, op: MarkerOp, r: &str) -> bool {
    if op == MarkerOp::Arbitrary {
        return l.trim().eq_ignore_ascii_case(r.trim());
    }
    if let Some(spec_op) = op.spec_op()
        && let (Ok(candidate), Ok(spec)) = (Version::parse(l), Specifier::from_parts(spec_op, r))
    {
        return spec.contains(&candidate);
    }
    compare_strings(l, op, r)
}

fn compare_strings(l: &str, op: MarkerOp, r: &str) -> bool {
    match op {
        MarkerOp::Eq | MarkerOp::Le | MarkerOp::Ge | MarkerOp::Compatible | MarkerOp::Arbitrary => {
            l == r
        }
        MarkerOp::Ne => l != r,
        MarkerOp::Lt | MarkerOp::Gt => false,
        MarkerOp::In => r.contains(l),
        MarkerOp::NotIn => !r.contains(l),
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and parser
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokKind {
    LParen,
    RParen,
    Str(String),
    Word(String),
    Op(MarkerOp),
}

impl TokKind {
    fn describe(&self) -> String {
        match self {
            TokKind::LParen => "`(`".to_string(),
            TokKind::RParen => "`)`".to_string(),
            TokKind::Str(s) => format!("string '{s}'"),
            TokKind::Word(w) => format!("`{w}`"),
            TokKind::Op(op) => format!("operator `{}`", op.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokKind,
    start: usize,
}

fn tokenize(input: &str) -> Result<Vec<Token>, MarkerError> {
    let err = |position: usize, message: String| MarkerError {
        input: input.to_string(),
        position,
        message,
    };
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                tokens.push(Token {
                    kind: TokKind::LParen,
                    start,
                });
                i += 1;
            }
            b')' => {
                tokens.push(Token {
                    kind: TokKind::RParen,
                    start,
                });
                i += 1;
            }
            b'\'' | b'"' => {
                let Some(len) = input[i + 1..].find(b as char) else {
                    return Err(err(
                        start,
                        format!("unterminated string starting with {}", b as char),
                    ));
                };
                tokens.push(Token {
                    kind: TokKind::Str(input[i + 1..i + 1 + len].to_string()),
                    start,
                });
                i += len + 2;
            }
            b'=' | b'!' | b'<' | b'>' | b'~' => {
                let rest = &input[i..];
                let (op, len) = if rest.starts_with("===") {
                    (MarkerOp::Arbitrary, 3)
                } else if rest.starts_with("==") {
                    (MarkerOp::Eq, 2)
                } else if rest.starts_with("!=") {
                    (MarkerOp::Ne, 2)
                } else if rest.starts_with("<=") {
                    (MarkerOp::Le, 2)
                } else if rest.starts_with(">=") {
                    (MarkerOp::Ge, 2)
                } else if rest.starts_with("~=") {
                    (MarkerOp::Compatible, 2)
                } else if rest.starts_with('<') {
                    (MarkerOp::Lt, 1)
                } else if rest.starts_with('>') {
                    (MarkerOp::Gt, 1)
                } else {
                    return Err(err(
                        start,
                        format!("unknown operator starting with `{}`", b as char),
                    ));
                };
                tokens.push(Token {
                    kind: TokKind::Op(op),
                    start,
                });
                i += len;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.'))
                {
                    i += 1;
                }
                tokens.push(Token {
                    kind: TokKind::Word(input[start..i].to_string()),
                    start,
                });
            }
            _ => {
                let c = input[i..].chars().next().unwrap_or('?');
                return Err(err(start, format!("unexpected character `{c}`")));
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, position: usize, message: impl Into<String>) -> MarkerError {
        MarkerError {
            input: self.input.to_string(),
            position,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<&TokKind> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn here(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.input.len(), |t| t.start)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(TokKind::Word(w)) if w == word)
    }

    fn parse_or(&mut self) -> Result<Marker, MarkerError> {
        let mut items = vec![self.parse_and()?];
        while self.peek_word("or") {
            self.pos += 1;
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Marker::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Marker, MarkerError> {
        let mut items = vec![self.parse_atom()?];
        while self.peek_word("and") {
            self.pos += 1;
            items.push(self.parse_atom()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Marker::And(items)
        })
    }

    fn parse_atom(&mut self) -> Result<Marker, MarkerError> {
        if self.peek() == Some(&TokKind::LParen) {
            let open = self.here();
            self.pos += 1;
            let inner = self.parse_or()?;
            if self.peek() != Some(&TokKind::RParen) {
                let at = self.here();
                return Err(self.error(
                    at,
                    format!("expected `)` to close the `(` at position {open}"),
                ));
            }
            self.pos += 1;
            return Ok(inner);
        }
        let lhs_pos = self.here();
        let lhs = self.parse_value()?;
        let op = self.parse_op()?;
        let rhs_pos = self.here();
        let rhs = self.parse_value()?;
        if matches!(lhs, MarkerValue::Var(_)) && matches!(rhs, MarkerValue::Var(_)) {
            return Err(self.error(
                rhs_pos.max(lhs_pos),
                "cannot compare two marker variables; one side must be a quoted string",
            ));
        }
        Ok(Marker::Compare { lhs, op, rhs })
    }

    fn parse_value(&mut self) -> Result<MarkerValue, MarkerError> {
        let at = self.here();
        match self.peek().cloned() {
            Some(TokKind::Str(s)) => {
                self.pos += 1;
                Ok(MarkerValue::Str(s))
            }
            Some(TokKind::Word(w)) => match MarkerVar::from_name(&w) {
                Some(var) => {
                    self.pos += 1;
                    Ok(MarkerValue::Var(var))
                }
                None => Err(self.error(at, format!("unknown marker variable `{w}`"))),
            },
            Some(other) => Err(self.error(
                at,
                format!(
                    "expected a marker variable or a quoted string, found {}",
                    other.describe()
                ),
            )),
            None => Err(self.error(
                at,
                "expected a marker variable or a quoted string, found the end of the marker",
            )),
        }
    }

    fn parse_op(&mut self) -> Result<MarkerOp, MarkerError> {
        let at = self.here();
        match self.peek().cloned() {
            Some(TokKind::Op(op)) => {
                self.pos += 1;
                Ok(op)
            }
            Some(TokKind::Word(w)) if w == "in" => {
                self.pos += 1;
                Ok(MarkerOp::In)
            }
            Some(TokKind::Word(w)) if w == "not" => {
                self.pos += 1;
                if self.peek_word("in") {
                    self.pos += 1;
                    Ok(MarkerOp::NotIn)
                } else {
                    let at = self.here();
                    Err(self.error(at, "expected `in` after `not`"))
                }
            }
            Some(other) => Err(self.error(
                at,
                format!("expected a comparison operator, found {}", other.describe()),
            )),
            None => Err(self.error(
                at,
                "expected a comparison operator, found the end of the marker",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn normalize_names() {
        for (input, want) in [
            ("Foo_Bar", "foo-bar"),
            ("zope.interface", "zope-interface"),
            ("a--_.b", "a-b"),
            ("PyYAML", "pyyaml"),
            ("already-normal", "already-normal"),
        ] {
            assert_eq!(normalize_name(input), want, "{input}");
        }
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

    #[test]
    fn env_for_targets() {
        let amd = MarkerEnv::for_target("3.12.7", "amd64");
        assert_eq!(amd.python_version, "3.12");
        assert_eq!(amd.python_full_version, "3.12.7");
        assert_eq!(amd.implementation_version, "3.12.7");
        assert_eq!(amd.platform_machine, "x86_64");
        assert_eq!(amd.sys_platform, "linux");
        assert_eq!(amd.platform_system, "Linux");
        assert_eq!(amd.os_name, "posix");
        assert_eq!(amd.implementation_name, "cpython");
        assert_eq!(amd.platform_python_implementation, "CPython");
        assert_eq!(amd.platform_release, "");
        let arm = MarkerEnv::for_target("3.13.0rc1", "arm64");
        assert_eq!(arm.platform_machine, "aarch64");
        assert_eq!(arm.python_version, "3.13");
        assert_eq!(
            MarkerEnv::for_target("3.11.2", "aarch64").platform_machine,
            "aarch64"
        );
        assert_eq!(
            MarkerEnv::for_target("3.11.2", "riscv64").platform_machine,
            "riscv64"
        );
    }

    fn eval(marker: &str, env: &MarkerEnv, extras: &[&str]) -> bool {
        Marker::parse(marker)
            .unwrap_or_else(|e| panic!("{e}"))
            .evaluate(env, extras, &[])
    }

    #[test]
    fn evaluation_table() {
        let amd = MarkerEnv::for_target("3.12.7", "amd64");
        let arm = MarkerEnv::for_target("3.12.7", "arm64");
        let py311 = MarkerEnv::for_target("3.11.2", "amd64");
        // (marker, amd64 3.12.7, arm64 3.12.7, amd64 3.11.2)
        let table = [
            ("python_full_version >= '3.12'", true, true, false),
            ("python_full_version < '3.11.3'", false, false, true),
            ("python_full_version == '3.11.*'", false, false, true),
            ("python_full_version == '3.12.*'", true, true, false),
            ("python_version > '3.11'", true, true, false),
            ("python_version == '3.12'", true, true, false),
            ("python_version ~= '3.10'", true, true, true),
            ("python_version in '3.11 3.12'", true, true, true),
            ("python_version not in '3.11'", true, true, false),
            ("'3.11' < python_version", true, true, false),
            ("platform_machine == 'x86_64'", true, false, true),
            ("platform_machine == 'aarch64'", false, true, false),
            ("platform_machine != 'aarch64'", true, false, true),
            ("platform_machine in 'x86_64 aarch64'", true, true, true),
            ("'arch' in platform_machine", false, true, false),
            ("platform_machine == 'X86_64'", false, false, false),
            ("sys_platform == 'linux'", true, true, true),
            (
                "sys_platform != 'win32' and sys_platform != 'cygwin'",
                true,
                true,
                true,
            ),
            ("sys.platform == 'linux'", true, true, true),
            ("os.name == 'posix'", true, true, true),
            (
                "platform_python_implementation == 'CPython'",
                true,
                true,
                true,
            ),
            ("python_implementation != 'PyPy'", true, true, true),
            ("implementation_name == 'pypy'", false, false, false),
            ("platform_system == 'Linux'", true, true, true),
            ("implementation_version >= '3.12'", true, true, false),
            // String ordering: `<`/`>` never hold, `<=`/`>=` act like `==`.
            ("sys_platform < 'zzz'", false, false, false),
            ("sys_platform >= 'linux'", true, true, true),
            ("sys_platform ~= 'linux'", true, true, true),
            // Version | String fields are empty for build-time targets.
            ("platform_release == ''", true, true, true),
            ("platform_release >= '5.0'", false, false, false),
            ("'SMP' in platform_version", false, false, false),
            // Literal on both sides.
            ("'a' == 'a'", true, true, true),
            ("'1.0' < '2.0'", true, true, true),
            // Precedence: `and` binds tighter than `or`.
            (
                "platform_machine == 'aarch64' and python_version < '3.12' or sys_platform == 'linux'",
                true,
                true,
                true,
            ),
            (
                "platform_machine == 'aarch64' and (python_version < '3.12' or sys_platform == 'win32')",
                false,
                false,
                false,
            ),
            (
                "sys_platform == 'win32' or platform_machine == 'aarch64' and python_full_version >= '3.12'",
                false,
                true,
                false,
            ),
            (
                "(sys_platform == 'win32' or platform_machine == 'aarch64') and python_full_version >= '3.12'",
                false,
                true,
                false,
            ),
            ("((python_version >= '3.11'))", true, true, true),
            (
                "sys_platform == 'linux' or platform_machine == 'aarch64' and python_full_version < '3.0'",
                true,
                true,
                true,
            ),
            (
                "(sys_platform == 'linux' or platform_machine == 'aarch64') and python_full_version < '3.0'",
                false,
                false,
                false,
            ),
        ];
        for (marker, want_amd, want_arm, want_311) in table {
            assert_eq!(eval(marker, &amd, &[]), want_amd, "amd64 3.12.7: {marker}");
            assert_eq!(eval(marker, &arm, &[]), want_arm, "arm64 3.12.7: {marker}");
            assert_eq!(
                eval(marker, &py311, &[]),
                want_311,
                "amd64 3.11.2: {marker}"
            );
        }
    }

    #[test]
    fn prerelease_interpreter() {
        // PEP 440 specifier semantics, as `packaging` evaluates markers: a release candidate of
        // 3.13 is neither `< 3.13` (pre-releases of V are excluded) nor `>= 3.13`, but it is in
        // `== 3.13.*` and in the ranges around it.
        let rc = MarkerEnv::for_target("3.13.0rc1", "amd64");
        for (marker, want) in [
            ("python_full_version >= '3.13'", false),
            ("python_full_version < '3.13'", false),
            ("python_full_version == '3.13.*'", true),
            ("python_full_version >= '3.12'", true),
            ("python_full_version < '3.14'", true),
            ("python_full_version >= '3.13.0rc1'", true),
            ("python_full_version > '3.13.0b4'", true),
            ("python_version == '3.13'", true),
            ("python_full_version === '3.13.0rc1'", true),
            ("python_full_version == '3.13.0'", false),
        ] {
            assert_eq!(eval(marker, &rc, &[]), want, "3.13.0rc1: {marker}");
        }
    }

    #[test]
    fn extras_and_groups() {
        let env = MarkerEnv::for_target("3.12.7", "amd64");
        assert!(eval("extra == 'cli'", &env, &["cli"]));
        assert!(eval("extra == 'CLI'", &env, &["cli"]));
        assert!(eval("extra == 'foo_bar'", &env, &["Foo.Bar"]));
        assert!(eval("'cli' == extra", &env, &["cli"]));
        assert!(!eval("extra == 'cli'", &env, &[]));
        assert!(eval("extra != 'cli'", &env, &[]));
        assert!(!eval("extra != 'cli'", &env, &["cli"]));
        assert!(!eval("extra > 'cli'", &env, &["cli"]));
        assert!(!eval("extra in 'cli'", &env, &["cli"]));
        // Several active items: `!=` must not pretend `extra` is a single string.
        let active = ["extra-5-proj3-old", "group-5-proj3-legacy"];
        let conflict = "extra != 'extra-5-proj3-new' or extra == 'extra-5-proj3-old'";
        assert!(eval(conflict, &env, &active));
        assert!(!eval("extra == 'extra-5-proj3-new'", &env, &active));
        assert!(!eval("extra != 'extra-5-proj3-old'", &env, &active));
        assert!(eval(
            "sys_platform == 'linux' and extra == 'group-5-proj3-legacy'",
            &env,
            &active
        ));
        // PEP 751 sets.
        let m = Marker::parse("'docs' in dependency_groups and 'CLI' in extras").unwrap();
        assert!(m.evaluate(&env, &["cli"], &["docs"]));
        assert!(!m.evaluate(&env, &["cli"], &[]));
        let m = Marker::parse("'docs' not in dependency_groups").unwrap();
        assert!(m.evaluate(&env, &[], &[]));
        assert!(!m.evaluate(&env, &[], &["docs"]));
    }

    #[test]
    fn parse_shapes_and_display() {
        let m =
            Marker::parse(r#"python_version>="3.8"and(os_name=='nt'or'x'not  in   sys_platform)"#)
                .unwrap();
        assert_eq!(
            m.to_string(),
            "python_version >= '3.8' and (os_name == 'nt' or 'x' not in sys_platform)"
        );
        let m = Marker::parse("sys_platform == 'linux' or sys_platform == \"it's\"").unwrap();
        assert_eq!(
            m.to_string(),
            "sys_platform == 'linux' or sys_platform == \"it's\""
        );
        match Marker::parse("os_name == 'x'").unwrap() {
            Marker::Compare { lhs, op, rhs } => {
                assert_eq!(lhs, MarkerValue::Var(MarkerVar::OsName));
                assert_eq!(op, MarkerOp::Eq);
                assert_eq!(rhs, MarkerValue::Str("x".into()));
            }
            other => panic!("unexpected {other:?}"),
        }
        // `and` binds tighter: a or (b and c).
        match Marker::parse("os_name == 'a' or os_name == 'b' and os_name == 'c'").unwrap() {
            Marker::Or(items) => {
                assert_eq!(items.len(), 2);
                assert!(matches!(items[1], Marker::And(ref v) if v.len() == 2));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_markers_report_positions() {
        // (marker, byte position, message fragment)
        let table = [
            ("", 0, "found the end"),
            ("python_version", 14, "expected a comparison operator"),
            ("python_version >= ", 18, "found the end"),
            ("python_version >= '3.8", 18, "unterminated string"),
            (
                "python_verison >= '3.8'",
                0,
                "unknown marker variable `python_verison`",
            ),
            ("python_version => '3.8'", 15, "unknown operator"),
            ("python_version = '3.8'", 15, "unknown operator"),
            ("os_name == 'a' and", 18, "found the end"),
            ("(os_name == 'a'", 15, "expected `)`"),
            ("os_name == 'a')", 14, "unexpected `)`"),
            ("os_name == 'a' xor os_name == 'b'", 15, "unexpected `xor`"),
            ("os_name not 'a'", 12, "expected `in` after `not`"),
            (
                "os_name == sys_platform",
                11,
                "cannot compare two marker variables",
            ),
            ("os_name == 'a' and $", 19, "unexpected character `$`"),
            ("'a' 'b'", 4, "expected a comparison operator"),
            (
                "os_name == ==",
                11,
                "expected a marker variable or a quoted string",
            ),
        ];
        for (marker, position, fragment) in table {
            let err = Marker::parse(marker).expect_err(marker);
            assert_eq!(err.position, position, "{marker}: {err}");
            assert!(err.message.contains(fragment), "{marker}: {err}");
            assert!(
                err.to_string().contains(&format!("position {position}")),
                "{err}"
            );
        }
    }

    #[test]
    fn invalid_version_operands_fall_back_to_strings() {
        let env = MarkerEnv::for_target("3.12.7", "amd64");
        // `~=` with one release number is not a valid specifier: string rules (acts like ==).
        assert!(!eval("python_version ~= '3'", &env, &[]));
        assert!(eval("python_version != 'three'", &env, &[]));
        assert!(!eval("python_version == 'three'", &env, &[]));
        assert!(!eval("python_version < 'three'", &env, &[]));
    }
}

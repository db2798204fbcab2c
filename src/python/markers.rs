//! PEP 508 environment markers.
//!
//! * [`MarkerEnv`]: the values of the marker variables for one image target.
//! * [`Marker`]: a parsed marker expression; [`Marker::evaluate`] decides it for an
//!   environment, a set of active extras and a set of active dependency groups.
//!
//! The PEP 440 versions and specifiers markers compare with live in [`super::pep440`]
//! (re-exported here, as is [`normalize_name`], for the paths that name them here).
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

pub use super::names::normalize_name;
use super::pep440::{SpecOp, Specifier};
pub use super::pep440::{Specifiers, Version};
use std::fmt;
use std::str::FromStr;

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
            depth: 0,
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
    /// How many `(` are open: bounded, so hostile input cannot exhaust the
    /// stack (parsing, evaluating and dropping all recurse per level).
    depth: usize,
}

/// The deepest nesting of parentheses a marker may have; real markers use
/// two or three levels.
const MAX_DEPTH: usize = 64;

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
            if self.depth == MAX_DEPTH {
                return Err(self.error(
                    open,
                    format!("parentheses nested more than {MAX_DEPTH} deep"),
                ));
            }
            self.pos += 1;
            self.depth += 1;
            let inner = self.parse_or()?;
            self.depth -= 1;
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
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let ok = format!("{}python_version >= '3'{}", "(".repeat(64), ")".repeat(64));
        assert!(Marker::parse(&ok).is_ok());
        for n in [65, 50_000] {
            let deep = format!("{}python_version >= '3'{}", "(".repeat(n), ")".repeat(n));
            let e = Marker::parse(&deep).unwrap_err();
            assert!(e.message.contains("nested more than 64 deep"), "{e:?}");
            assert_eq!(e.position, 64);
        }
        let chain = format!(
            "{}python_version >= '3'",
            "(python_version >= '3' and ".repeat(100)
        );
        assert!(Marker::parse(&chain).is_err());
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

//! `.dockerignore` matching with Docker's semantics (moby/patternmatcher as
//! used by BuildKit and buildah), which differ from gitignore:
//!
//! * Every pattern is anchored at the context root: `*.log` matches `x.log`
//!   but not `sub/x.log`, and `foo` matches `foo` but not `a/foo`.
//! * A pattern that matches a directory also matches everything beneath it
//!   (`foo` excludes `foo/bar/baz`).
//! * The last pattern that matches a path (or one of its parent directories)
//!   decides: a plain pattern excludes, a `!` pattern re-includes, and a `!`
//!   pattern can re-include a path below an excluded directory.
//!
//! Glob syntax: `*` is any run of characters except `/`, `?` is one character
//! except `/`, `**` spans any number of path segments, `[...]` is a character
//! class (ranges, `^` negation; `!` is a literal, not a negation) and `\`
//! escapes the next character.
//!
//! Patterns are cleaned like Go's `filepath.Clean`, a leading `/` is dropped,
//! and each pattern is compiled once into a small token program run by a
//! backtracking matcher; the common shapes (plain path, `dir/**`, `**/name`)
//! take string-comparison fast paths, as they do in moby.

/// Built-in rules used when a context has no ignore file: VCS folders and
/// Python/tool caches at any depth.
pub const DEFAULT_IGNORES: &[&str] = &[
    "**/.git",
    "**/.hg",
    "**/.svn",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "**/.venv",
    "**/.mypy_cache",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.tox",
    "**/.nox",
    "**/.ipynb_checkpoints",
    "**/.DS_Store",
];

/// A malformed ignore pattern. `line` is 1-based: the line of the ignore file
/// for [`IgnoreRules::parse`], the position in the list for
/// [`IgnoreRules::from_patterns`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PatternError {
    pub line: usize,
    pub message: String,
}

/// What the patterns say of one path: the last pattern that matches it or
/// one of its parents, if any. Passed from a folder to its entries by
/// [`IgnoreRules::verdict_below`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict(Option<usize>);

/// An ordered list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// The pattern as written, whitespace-trimmed.
    original: String,
    negated: bool,
    matcher: Matcher,
}

/// How a pattern is matched; mirrors the four match kinds moby chooses from.
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard at all: the path must equal the pattern.
    Exact(String),
    /// Literal text followed by a trailing `**`: a plain prefix test.
    Prefix(String),
    /// A leading `**` followed only by literal text: a suffix test, plus
    /// `**/name` matching `name` itself.
    Suffix(Suffix),
    /// Anything else.
    Glob(Glob),
}

#[derive(Debug, Clone)]
struct Suffix {
    /// The text after the leading `**`.
    text: String,
    /// `text` + "/": found inside a path when a parent ends with `text`.
    text_slash: String,
    /// For `**/name`: `name` and `name/`.
    bare: Option<(String, String)>,
    /// For `**/name` where `name` has no '/': the test is just "some path
    /// component equals `name`".
    component: bool,
}

impl Suffix {
    fn new(text: &str) -> Suffix {
        Suffix {
            text: text.to_string(),
            text_slash: format!("{text}/"),
            bare: text
                .strip_prefix('/')
                .map(|b| (b.to_string(), format!("{b}/"))),
            component: text.len() > 1 && text.starts_with('/') && !text[1..].contains('/'),
        }
    }

    /// Does `rel`, or one of its parents, end with the text (or equal the
    /// bare name)? A parent ends with the text exactly when the text
    /// followed by '/' occurs in `rel`.
    fn matches_self_or_parent(&self, path: &PathView) -> bool {
        let rel = path.rel;
        if self.component {
            let name = &self.text[1..];
            return path.components().any(|c| c == name);
        }
        rel.ends_with(&self.text)
            || rel.contains(&self.text_slash)
            || self
                .bare
                .as_ref()
                .is_some_and(|(b, bs)| rel == b || rel.starts_with(bs.as_str()))
    }
}

#[derive(Debug, Clone)]
struct Glob {
    tokens: Vec<Token>,
    /// Every matching string starts with this.
    literal_prefix: String,
    /// Every matching string ends with this.
    literal_suffix: String,
    /// Number of `/` every matching string contains, when that is fixed.
    slashes: Option<usize>,
}

#[derive(Debug, Clone)]
enum Token {
    /// Literal text.
    Lit(String),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` before more pattern text: empty, or anything ending in `/`
    /// (moby's `(.*/)?`).
    DirStar,
    /// `**` at the end of the pattern: anything (moby's `.*`).
    AnyStar,
    /// `[...]`.
    Class(Class),
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

impl IgnoreRules {
    /// Parses the text of an ignore file the way moby's `ignorefile.ReadAll`
    /// does: a UTF-8 BOM is dropped, lines whose first character is `#` are
    /// comments, other lines are trimmed and blank ones skipped.
    pub fn parse(text: &str) -> Result<IgnoreRules, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = IgnoreRules::default();
        for (index, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            rules.push(line, index + 1)?;
        }
        Ok(rules)
    }

    /// Patterns given directly (no comments), e.g. the built-in defaults.
    /// They are trimmed and cleaned as in a file; blank entries are skipped.
    pub fn from_patterns<I: IntoIterator<Item = S>, S: AsRef<str>>(
        pats: I,
    ) -> Result<IgnoreRules, PatternError> {
        let mut rules = IgnoreRules::default();
        for (index, pat) in pats.into_iter().enumerate() {
            rules.push(pat.as_ref(), index + 1)?;
        }
        Ok(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `rel` is relative to the context root, '/'-separated, no leading "./"
    /// or "/". The context root itself ("" or ".") is never excluded.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let rel = normalize_rel(rel);
        if rel.is_empty() || rel == "." {
            return false;
        }
        // The last matching pattern decides, so search from the end.
        self.last_match(rel).is_some_and(|i| !self.rules[i].negated)
    }

    /// The verdict for `rel` (relative to the context root) found by
    /// matching it and each of its parents, for the folder a walk starts
    /// in. The context root itself has no verdict.
    pub fn verdict(&self, rel: &str) -> Verdict {
        let rel = normalize_rel(rel);
        if rel.is_empty() || rel == "." {
            return Verdict::default();
        }
        Verdict(self.last_match(rel))
    }

    /// The verdict for `rel` when `parent` is the verdict of the folder
    /// holding it: only the patterns after the one that decided the folder
    /// can change it, and only by matching `rel` itself, since a pattern
    /// that matches a parent was already counted for the folder. A walk
    /// that passes verdicts down pays one match per pattern and entry,
    /// not one per pattern, entry and parent.
    pub fn verdict_below(&self, parent: Verdict, rel: &str) -> Verdict {
        let rel = normalize_rel(rel);
        let start = parent.0.map_or(0, |i| i + 1);
        if start >= self.rules.len() || rel.is_empty() || rel == "." {
            return parent;
        }
        let slashes = rel.bytes().filter(|&b| b == b'/').count();
        match self.rules[start..]
            .iter()
            .rposition(|r| r.matcher.matches_self(rel, slashes))
        {
            Some(i) => Verdict(Some(start + i)),
            None => parent,
        }
    }

    /// Whether a path with this verdict is left out.
    pub fn excludes(&self, v: Verdict) -> bool {
        v.0.is_some_and(|i| !self.rules[i].negated)
    }

    /// True when the directory `rel_dir` is excluded and no `!` pattern that
    /// could override that exclusion can match anything below it, so a walk
    /// may skip the whole subtree. Conservative: false whenever unsure.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let dir = normalize_rel(rel_dir);
        if dir.is_empty() || dir == "." {
            return false;
        }
        let Some(last) = self.last_match(dir) else {
            return false;
        };
        if self.rules[last].negated {
            return false;
        }
        // The pattern that excludes `dir` also matches everything below it,
        // so only `!` patterns after it can re-include a descendant.
        let later = &self.rules[last + 1..];
        if !later.iter().any(|r| r.negated) {
            return true;
        }
        let mut dir_slash = String::with_capacity(dir.len() + 1);
        dir_slash.push_str(dir);
        dir_slash.push('/');
        !later
            .iter()
            .any(|r| r.negated && r.matcher.could_match_below(&dir_slash))
    }

    /// Whether `rel` is left out when a folder is copied under these rules
    /// (as `COPY --exclude` does): the last pattern matching it decides,
    /// else the decision for the nearest folder above it that a pattern
    /// matches (a pattern that matches a folder leaves out what is below).
    pub fn excludes_path(&self, rel: &str) -> bool {
        let rel = normalize_rel(rel);
        if rel.is_empty() || rel == "." {
            return false;
        }
        let mut out = false;
        let mut end = 0;
        loop {
            let next = rel[end..].find('/').map(|n| end + n);
            let prefix = &rel[..next.unwrap_or(rel.len())];
            if let Some(i) = self.last_match(prefix) {
                out = !self.rules[i].negated;
            }
            match next {
                Some(n) => end = n + 1,
                None => return out,
            }
        }
    }

    /// Keeps the entries of a copied tree whose path (as `path` gives it,
    /// relative to the layer) under `dst` (a layer path) the rules keep.
    pub fn retain_below<T>(&self, entries: &mut Vec<T>, dst: &str, path: impl Fn(&T) -> String) {
        if self.is_empty() {
            return;
        }
        let dst = dst.trim_matches('/');
        entries.retain(|e| {
            let p = path(e);
            let rel = match dst.is_empty() {
                true => p.as_str(),
                false => match p.strip_prefix(dst) {
                    Some("") => return true,
                    Some(r) if r.starts_with('/') => &r[1..],
                    _ => return true,
                },
            };
            !self.excludes_path(rel)
        });
    }

    /// The original pattern texts (whitespace-trimmed, `!` included), in order.
    pub fn patterns(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.original.clone()).collect()
    }

    fn last_match(&self, rel: &str) -> Option<usize> {
        let mut inline = [0usize; INLINE_SLASHES];
        let heap: Vec<usize>;
        let mut n = 0;
        let mut fits = true;
        for (i, b) in rel.bytes().enumerate() {
            if b == b'/' {
                if n == INLINE_SLASHES {
                    fits = false;
                    break;
                }
                inline[n] = i;
                n += 1;
            }
        }
        let slashes: &[usize] = if fits {
            &inline[..n]
        } else {
            heap = rel.match_indices('/').map(|(i, _)| i).collect();
            &heap
        };
        let path = PathView { rel, slashes };
        self.rules
            .iter()
            .rposition(|r| r.matcher.matches_self_or_parent(&path))
    }

    fn push(&mut self, raw: &str, line: usize) -> Result<(), PatternError> {
        let original = raw.trim();
        if original.is_empty() {
            return Ok(());
        }
        let err = |message: String| PatternError { line, message };
        let (negated, body) = match original.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, original),
        };
        let cleaned = if body.is_empty() {
            String::new()
        } else {
            let c = clean_path(body);
            match c.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => c,
            }
        };
        if negated && (cleaned.is_empty() || cleaned == "/") {
            // moby: `!` alone (or `!/`, which cleans to `!`) is rejected.
            return Err(err(format!(
                "illegal exclusion pattern {original:?}: nothing after '!'"
            )));
        }
        let matcher =
            compile(&cleaned).map_err(|m| err(format!("bad pattern {original:?}: {m}")))?;
        self.rules.push(Rule {
            original: original.to_string(),
            negated,
            matcher,
        });
        Ok(())
    }
}

/// Drops a leading "./" or "/" and a trailing "/" so callers' small
/// variations don't change results.
fn normalize_rel(rel: &str) -> &str {
    let mut r = rel;
    while let Some(rest) = r.strip_prefix("./") {
        r = rest.trim_start_matches('/');
    }
    r.trim_start_matches('/').trim_end_matches('/')
}

/// Lexical path cleaning with the rules of Go's `filepath.Clean` on Unix.
fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Glob,
}

/// One path component matched like Go's `filepath.Match` (what COPY and
/// ADD sources use): `*`, `?`, classes and `\\` escapes; `**` is `*`.
#[derive(Debug, Clone)]
pub struct ComponentGlob(Matcher);

impl ComponentGlob {
    pub fn new(pat: &str) -> Result<ComponentGlob, String> {
        let mut p = pat.to_string();
        while p.contains("**") {
            p = p.replace("**", "*");
        }
        compile(&p).map(ComponentGlob)
    }

    pub fn matches(&self, name: &str) -> bool {
        match &self.0 {
            Matcher::Exact(s) => s == name,
            Matcher::Glob(g) => g.matches(name),
            // Not produced without `**`.
            Matcher::Prefix(_) | Matcher::Suffix(_) => false,
        }
    }
}

/// The paths a source pattern (relative, '/'-separated) matches, sorted.
/// `list` gives the names in a folder ("" is the root), or None when the
/// path is no folder.
pub fn expand_glob(
    pattern: &str,
    list: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Vec<String>, String> {
    let mut found: Vec<String> = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        let join = |dir: &str, name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        if has_wildcards(comp) {
            let g = ComponentGlob::new(comp).map_err(|e| format!("{pattern:?}: {e}"))?;
            for dir in &found {
                let mut names = list(dir).unwrap_or_default();
                names.sort();
                for n in names.iter().filter(|n| g.matches(n)) {
                    next.push(join(dir, n));
                }
            }
        } else {
            for dir in &found {
                if list(dir).is_some() {
                    next.push(join(dir, comp));
                }
            }
        }
        found = next;
    }
    found.sort();
    Ok(found)
}

/// Whether a source path has wildcards to expand.
pub fn has_wildcards(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Compiles a cleaned pattern. The choice of match kind follows moby's
/// `Pattern.compile` step by step, since it is observable (e.g. `**foo` is a
/// suffix test and matches `xfoo`, while `a**b` does not match `axb`).
/// Syntax errors follow Go's `filepath.Match`, which moby uses to validate.
fn compile(pat: &str) -> Result<Matcher, String> {
    let chars: Vec<char> = pat.chars().collect();
    let mut kind = Kind::Exact;
    let mut tokens: Vec<Token> = Vec::new();
    let mut lit = String::new();
    let flush = |lit: &mut String, tokens: &mut Vec<Token>| {
        if !lit.is_empty() {
            tokens.push(Token::Lit(std::mem::take(lit)));
        }
    };
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                flush(&mut lit, &mut tokens);
                if i == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        tokens.push(Token::AnyStar);
                        kind = Kind::Glob;
                    }
                } else {
                    tokens.push(Token::DirStar);
                    kind = Kind::Glob;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                flush(&mut lit, &mut tokens);
                tokens.push(Token::Star);
                kind = Kind::Glob;
            }
            '?' => {
                flush(&mut lit, &mut tokens);
                tokens.push(Token::One);
                kind = Kind::Glob;
            }
            '\\' => {
                let Some(&next) = chars.get(i) else {
                    return Err("trailing backslash".to_string());
                };
                i += 1;
                lit.push(next);
                kind = Kind::Glob;
            }
            '[' => {
                let (class, next) = parse_class(&chars, i)?;
                i = next;
                flush(&mut lit, &mut tokens);
                tokens.push(Token::Class(class));
                kind = Kind::Glob;
            }
            ']' => {
                lit.push(']');
                kind = Kind::Glob;
            }
            c => lit.push(c),
        }
        step += 1;
    }
    flush(&mut lit, &mut tokens);
    Ok(match kind {
        Kind::Exact => Matcher::Exact(pat.to_string()),
        // Only reached when the pattern is literal text ending in `**`.
        Kind::Prefix => Matcher::Prefix(pat[..pat.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(Suffix::new(&pat[2..])),
        Kind::Glob => Matcher::Glob(Glob::new(tokens)),
    })
}

/// Parses a character class whose `[` is just before `chars[i]`, with the
/// syntax rules of Go's `filepath.Match`: optional `^`, then one or more
/// items (a character, `\`-escaped character or `lo-hi` range) and `]`.
/// A `]` or `-` is only allowed as the first item when escaped.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Class, usize), String> {
    let mut negated = false;
    if chars.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Class { negated, ranges }, i + 1));
        }
        let lo = class_char(chars, &mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(chars, &mut i)?;
        }
        if lo > hi {
            return Err(format!("invalid character class range {lo:?}-{hi:?}"));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let mut c = *chars
        .get(*i)
        .ok_or_else(|| "unterminated character class".to_string())?;
    if c == '-' || c == ']' {
        return Err(format!("unescaped {c:?} in character class"));
    }
    if c == '\\' {
        *i += 1;
        c = *chars
            .get(*i)
            .ok_or_else(|| "unterminated character class".to_string())?;
    }
    *i += 1;
    Ok(c)
}

impl Glob {
    fn new(mut tokens: Vec<Token>) -> Glob {
        // `(.*/)?(.*/)?` is the same as `(.*/)?`; collapsing keeps
        // backtracking linear for patterns like `a/**/**/b`.
        tokens.dedup_by(|b, a| matches!((a, b), (Token::DirStar, Token::DirStar)));
        let literal_prefix = match tokens.first() {
            Some(Token::Lit(l)) => l.clone(),
            _ => String::new(),
        };
        let literal_suffix = match tokens.last() {
            Some(Token::Lit(l)) => l.clone(),
            _ => String::new(),
        };
        let mut slashes = Some(0);
        for t in &tokens {
            slashes = match (slashes, t) {
                (Some(n), Token::Lit(l)) => Some(n + l.matches('/').count()),
                (Some(n), Token::One | Token::Star) => Some(n),
                (Some(n), Token::Class(c)) if !c.matches('/') => Some(n),
                _ => None,
            };
        }
        Glob {
            tokens,
            literal_prefix,
            literal_suffix,
            slashes,
        }
    }

    fn matches(&self, s: &str) -> bool {
        // (The emptiness checks skip a needless memcmp call; this is hot.)
        (self.literal_prefix.is_empty() || s.starts_with(&self.literal_prefix))
            && (self.literal_suffix.is_empty() || s.ends_with(&self.literal_suffix))
            && match_tokens(&self.tokens, s, false)
    }
}

/// Paths with more slashes than this are still handled, with an allocation.
const INLINE_SLASHES: usize = 32;

/// A path being matched, with the byte offsets of its slashes found once and
/// shared by all patterns.
struct PathView<'a> {
    rel: &'a str,
    slashes: &'a [usize],
}

impl<'a> PathView<'a> {
    /// The parent directories, shortest first ("a", "a/b" for "a/b/c").
    fn parents(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.slashes.iter().map(|&i| &self.rel[..i])
    }

    fn components(&self) -> impl Iterator<Item = &'a str> + '_ {
        let ends = self.slashes.iter().copied().chain([self.rel.len()]);
        let starts = [0].into_iter().chain(self.slashes.iter().map(|&i| i + 1));
        starts.zip(ends).map(|(a, b)| &self.rel[a..b])
    }

    /// `rel` or the parent of `rel` that contains exactly `n` slashes.
    fn with_slashes(&self, n: usize) -> Option<&'a str> {
        match self.slashes.len().cmp(&n) {
            std::cmp::Ordering::Equal => Some(self.rel),
            std::cmp::Ordering::Greater => Some(&self.rel[..self.slashes[n]]),
            std::cmp::Ordering::Less => None,
        }
    }
}

impl Matcher {
    /// moby's `MatchesOrParentMatches` for one pattern: does it match the
    /// path or any of its parent directories?
    fn matches_self_or_parent(&self, path: &PathView) -> bool {
        let rel = path.rel;
        match self {
            Matcher::Exact(e) => rel
                .strip_prefix(e.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            // A parent starting with `p` implies `rel` does.
            Matcher::Prefix(p) => rel.starts_with(p.as_str()),
            Matcher::Suffix(sfx) => sfx.matches_self_or_parent(path),
            Matcher::Glob(g) => {
                if !g.literal_prefix.is_empty() && !rel.starts_with(&g.literal_prefix) {
                    return false;
                }
                match g.slashes {
                    // Only the candidate with exactly `n` slashes can match.
                    Some(n) => path.with_slashes(n).is_some_and(|cand| g.matches(cand)),
                    None => g.matches(rel) || path.parents().any(|cand| g.matches(cand)),
                }
            }
        }
    }

    /// Does this pattern match `rel` itself (which has `slashes` slashes)?
    /// May also say yes when it matches only a parent of `rel`: callers
    /// combine the answer with the parent's own.
    fn matches_self(&self, rel: &str, slashes: usize) -> bool {
        match self {
            Matcher::Exact(e) => rel == e,
            Matcher::Prefix(p) => rel.starts_with(p.as_str()),
            Matcher::Suffix(sfx) => {
                rel.ends_with(&sfx.text) || sfx.bare.as_ref().is_some_and(|(b, _)| rel == b)
            }
            Matcher::Glob(g) => g.slashes.is_none_or(|n| n == slashes) && g.matches(rel),
        }
    }

    /// Could this pattern match some path `dir_slash + rest` (`dir_slash`
    /// ends with '/')? May say yes when unsure, never no when it could.
    fn could_match_below(&self, dir_slash: &str) -> bool {
        match self {
            Matcher::Exact(e) => e.starts_with(dir_slash),
            Matcher::Prefix(p) => p.starts_with(dir_slash) || dir_slash.starts_with(p.as_str()),
            Matcher::Suffix(_) => true,
            Matcher::Glob(g) => {
                let lp = g.literal_prefix.as_str();
                (lp.starts_with(dir_slash) || dir_slash.starts_with(lp))
                    && match_tokens(&g.tokens, dir_slash, true)
            }
        }
    }
}

/// Backtracking match of `toks` against all of `s`. With `partial`, also
/// true when `s` is used up while tokens remain (some continuation of `s`
/// could match).
fn match_tokens(toks: &[Token], s: &str, partial: bool) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    if partial && s.is_empty() {
        return true;
    }
    match first {
        Token::Lit(l) => match s.strip_prefix(l.as_str()) {
            Some(r) => match_tokens(rest, r, partial),
            None => partial && l.starts_with(s),
        },
        Token::One => {
            let mut it = s.chars();
            match it.next() {
                Some(c) if c != '/' => match_tokens(rest, it.as_str(), partial),
                _ => false,
            }
        }
        Token::Class(class) => {
            let mut it = s.chars();
            match it.next() {
                Some(c) if class.matches(c) => match_tokens(rest, it.as_str(), partial),
                _ => false,
            }
        }
        Token::Star => {
            if rest.is_empty() && !partial {
                return !s.contains('/');
            }
            let mut r = s;
            loop {
                if match_tokens(rest, r, partial) {
                    return true;
                }
                let mut it = r.chars();
                match it.next() {
                    Some(c) if c != '/' => r = it.as_str(),
                    _ => return false,
                }
            }
        }
        // Like Go's regexp `.`, the `**` forms do not cross a newline.
        Token::DirStar => {
            if match_tokens(rest, s, partial) {
                return true;
            }
            for (i, b) in s.bytes().enumerate() {
                match b {
                    b'\n' => return false,
                    b'/' if match_tokens(rest, &s[i + 1..], partial) => return true,
                    _ => {}
                }
            }
            // In partial mode `**` can swallow the rest of `s` too.
            partial
        }
        Token::AnyStar => {
            if rest.is_empty() {
                return !s.contains('\n');
            }
            let mut r = s;
            loop {
                if match_tokens(rest, r, partial) {
                    return true;
                }
                let mut it = r.chars();
                match it.next() {
                    Some(c) if c != '\n' => r = it.as_str(),
                    _ => return false,
                }
            }
        }
    }
}

/// Likely secrets: returns `Some(reason)` when a relative path looks like a
/// credential file. Looks at the file name, and at the last two components
/// for directory-qualified names like `.aws/credentials`. Names compare
/// ASCII-case-insensitively. Template files (`.env.example`, `.env.sample`,
/// `.env.template`, `.env.dist`, `.env.defaults`) are not reported.
pub fn secret_reason(rel: &str) -> Option<&'static str> {
    let rel = rel.trim_end_matches('/');
    let mut comps = rel.rsplit('/');
    let name = comps.next().filter(|n| !n.is_empty())?;
    let parent = comps.next().unwrap_or("");
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let has_ext = |ext: &str| {
        name.len() > ext.len()
            && name.is_char_boundary(name.len() - ext.len())
            && eq(&name[name.len() - ext.len()..], ext)
    };

    if eq(parent, ".aws") && (eq(name, "credentials") || eq(name, "config")) {
        return Some("AWS credentials/config file");
    }
    if eq(parent, ".docker") && eq(name, "config.json") {
        return Some("Docker client config (may hold registry auth)");
    }
    if eq(parent, ".kube") && eq(name, "config") {
        return Some("Kubernetes kubeconfig");
    }
    if eq(parent, "gcloud") && (eq(name, "credentials.db") || eq(name, "access_tokens.db")) {
        return Some("Google Cloud SDK credentials");
    }

    if eq(name, ".env") {
        return Some("dotenv file (environment secrets)");
    }
    if let Some(variant) = name
        .get(..5)
        .filter(|head| eq(head, ".env."))
        .map(|_| &name[5..])
        .filter(|v| !v.is_empty())
    {
        let template = ["example", "sample", "template", "dist", "defaults"]
            .iter()
            .any(|t| eq(variant, t));
        return (!template).then_some("dotenv file (environment secrets)");
    }
    const SSH_KEYS: &[&str] = &[
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
    ];
    if SSH_KEYS.iter().any(|k| eq(name, k)) {
        return Some("SSH private key");
    }
    const NAMED: &[(&str, &str)] = &[
        ("credentials", "credentials file"),
        ("credentials.json", "credentials file"),
        (".netrc", "netrc file (login credentials)"),
        ("_netrc", "netrc file (login credentials)"),
        (".pypirc", "PyPI config (may hold upload tokens)"),
        (".npmrc", "npm config (may hold auth tokens)"),
        (".git-credentials", "git credential store"),
        (".pgpass", "PostgreSQL password file"),
        (".htpasswd", "htpasswd file"),
    ];
    if let Some((_, reason)) = NAMED.iter().find(|(n, _)| eq(name, n)) {
        return Some(reason);
    }
    const EXTS: &[(&str, &str)] = &[
        (".pem", "PEM file (may hold a private key)"),
        (".key", "private key file"),
        (".p12", "PKCS#12 key store"),
        (".pfx", "PKCS#12 key store"),
        (".jks", "Java key store"),
        (".keystore", "key store"),
        (".ppk", "PuTTY private key"),
        (".kdbx", "KeePass database"),
    ];
    EXTS.iter()
        .find(|(ext, _)| has_ext(ext))
        .map(|(_, reason)| *reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(pats: &[&str]) -> IgnoreRules {
        IgnoreRules::from_patterns(pats).unwrap()
    }

    fn defaults() -> IgnoreRules {
        IgnoreRules::from_patterns(DEFAULT_IGNORES).unwrap()
    }

    #[test]
    fn component_globs_and_expansion() {
        let g = ComponentGlob::new("*.py").unwrap();
        assert!(g.matches("a.py") && !g.matches("a.pyc"));
        assert!(
            ComponentGlob::new("file[0-9].txt")
                .unwrap()
                .matches("file3.txt")
        );
        assert!(ComponentGlob::new("[a-").is_err());
        let tree = [
            "a.py",
            "b.py",
            "c.txt",
            "pkg/x.py",
            "pkg/y.txt",
            "other/z.py",
        ];
        let list = |dir: &str| -> Option<Vec<String>> {
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            if !dir.is_empty() && !tree.iter().any(|t| t.starts_with(&prefix)) {
                return None;
            }
            let mut names: Vec<String> = tree
                .iter()
                .filter_map(|t| t.strip_prefix(&prefix))
                .map(|r| r.split('/').next().unwrap().to_string())
                .collect();
            names.dedup();
            Some(names)
        };
        assert_eq!(expand_glob("*.py", &list).unwrap(), ["a.py", "b.py"]);
        assert_eq!(
            expand_glob("*/*.py", &list).unwrap(),
            ["other/z.py", "pkg/x.py"]
        );
        assert_eq!(
            expand_glob("pkg/*", &list).unwrap(),
            ["pkg/x.py", "pkg/y.txt"]
        );
        assert!(expand_glob("*.rs", &list).unwrap().is_empty());
    }

    #[test]
    fn matching_table() {
        #[rustfmt::skip]
        let rows: &[(&[&str], &str, bool)] = &[
            // Anchored at the root.
            (&["*.log"], "x.log", true),
            (&["*.log"], "sub/x.log", false),
            (&["*.log"], "x.log.txt", false),
            (&["foo"], "foo", true),
            (&["foo"], "a/foo", false),
            (&["foo"], "foobar", false),
            (&["*/bar"], "x/bar", true),
            (&["*/bar"], "x/y/bar", false),
            // Parent directories.
            (&["foo"], "foo/x/y", true),
            (&["foo/bar"], "foo/bar/baz", true),
            (&["foo/bar"], "foo/barbaz", false),
            (&["*/bar"], "x/bar/z", true),
            (&["foo*"], "foobar/baz", true),
            (&["*"], "a", true),
            (&["*"], "a/b/c", true),
            (&["dir/"], "dir/file", true),
            // `**` forms.
            (&["**/foo"], "foo", true),
            (&["**/foo"], "a/b/foo", true),
            (&["**/foo"], "a/b/foo/c", true),
            (&["**/foo"], "a/xfoo", false),
            (&["foo/**"], "foo/x", true),
            (&["foo/**"], "foo/a/b", true),
            (&["foo/**"], "foo", false),
            (&["foo/**"], "foobar", false),
            (&["foo/**/"], "foo/x", true),
            (&["a/**/b"], "a/b", true),
            (&["a/**/b"], "a/x/y/b", true),
            (&["a/**/b"], "a/b/c", true),
            (&["a/**/b"], "a/xb", false),
            (&["a/**/**/b"], "a/x/y/b", true),
            (&["**/*.md"], "README.md", true),
            (&["**/*.md"], "docs/x/y.md", true),
            (&["**/*.md"], "docs/x.mdx", false),
            (&["docs/**/*.md"], "docs/c.md", true),
            (&["docs/**/*.md"], "docs/a/b/c.md", true),
            (&["docs/**/*.md"], "c.md", false),
            (&["docs/**/*.md"], "docs/c.txt", false),
            (&["**/a/**"], "x/a/y", true),
            (&["**/a/**"], "a/y", true),
            (&["**/a/**"], "x/ab/y", false),
            (&["**"], "x", true),
            (&["**"], "a/b", true),
            // moby quirks: `**foo` is a suffix test; mid-pattern `**`
            // without a slash is `(.*/)?`.
            (&["**foo"], "xfoo", true),
            (&["**foo"], "a/xfoo", true),
            (&["a**b"], "ab", true),
            (&["a**b"], "a/x/b", true),
            (&["a**b"], "axb", false),
            // `?`.
            (&["?.txt"], "a.txt", true),
            (&["?.txt"], "ab.txt", false),
            (&["a?b"], "a/b", false),
            (&["caf?"], "caf\u{e9}", true),
            // Classes.
            (&["file[0-9].txt"], "file5.txt", true),
            (&["file[0-9].txt"], "filea.txt", false),
            (&["file[^0-9].txt"], "filea.txt", true),
            (&["file[^0-9].txt"], "file5.txt", false),
            (&["[!a]bc"], "!bc", true),
            (&["[!a]bc"], "abc", true),
            (&["[!a]bc"], "xbc", false),
            (&["[a-cx]"], "x", true),
            (&["[a-cx]"], "d", false),
            (&["[\\]]x"], "]x", true),
            (&["[*]"], "*", true),
            (&["[*]"], "a", false),
            // Escapes and characters that are special only in regexps.
            (&["a\\*b"], "a*b", true),
            (&["a\\*b"], "axb", false),
            (&["\\[x\\]"], "[x]", true),
            (&["a\\?"], "a?", true),
            (&["a\\?"], "ab", false),
            (&["\\!foo"], "!foo", true),
            (&["!!foo"], "!foo", false),
            (&["*", "!!foo"], "!foo", false),
            (&["*", "!!foo"], "foo", true),
            (&["a.b"], "a.b", true),
            (&["a.b"], "axb", false),
            (&["a+b(c)|{d}$"], "a+b(c)|{d}$", true),
            (&["*.b"], "x.b", true),
            (&["*.b"], "xxb", false),
            // Negation and last-match-wins.
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "x.md", true),
            (&["!README.md", "*.md"], "README.md", true),
            (&["*", "!keep"], "keep", false),
            (&["*", "!keep"], "keep/x", false),
            (&["*", "!keep"], "other/x", true),
            (&["foo", "!foo/keep"], "foo/keep", false),
            (&["foo", "!foo/keep"], "foo/keep/x", false),
            (&["foo", "!foo/keep"], "foo/other", true),
            (&["foo", "!foo/keep", "foo/keep/x"], "foo/keep/x", true),
            (&["!foo"], "foo", false),
            (&["**/*.log", "!important/*.log"], "important/a.log", false),
            (&["**/*.log", "!important/*.log"], "important/x/a.log", true),
            // Cleaning.
            (&["/foo"], "foo", true),
            (&["./foo"], "foo", true),
            (&["foo/./bar//baz"], "foo/bar/baz", true),
            (&["foo/../bar"], "bar", true),
            (&["foo/../bar"], "foo", false),
            (&["!/foo"], "foo", false),
            (&["  spaced.txt  "], "spaced.txt", true),
            (&["! foo", "x"], "foo", false),
            // `.`, `/` and `..` patterns match nothing.
            (&["."], "x", false),
            (&["/"], "x", false),
            (&["./"], "x", false),
            (&["../x"], "x", false),
            // Caller-side normalization.
            (&["foo"], "./foo/bar", true),
            (&["foo"], "foo/", true),
            (&["*"], "", false),
            (&["*"], ".", false),
        ];
        for (i, (pats, path, want)) in rows.iter().enumerate() {
            let r = rules(pats);
            assert_eq!(
                r.is_excluded(path),
                *want,
                "row {i}: patterns {pats:?}, path {path:?}"
            );
            assert_eq!(
                r.excludes(walked_verdict(&r, path)),
                *want,
                "row {i}, verdicts passed down: patterns {pats:?}, path {path:?}"
            );
        }
    }

    /// The verdict a walk reaches for `path`: from the root down, each
    /// folder's verdict passed to the next component.
    fn walked_verdict(r: &IgnoreRules, path: &str) -> Verdict {
        let path = normalize_rel(path);
        let mut v = Verdict::default();
        let mut end = 0;
        loop {
            let next = path[end..].find('/').map(|n| end + n);
            v = r.verdict_below(v, &path[..next.unwrap_or(path.len())]);
            match next {
                Some(n) => end = n + 1,
                None => return v,
            }
        }
    }

    #[test]
    fn verdicts_passed_down_agree_with_whole_path_matching() {
        // Every prefix of every path, under pattern lists where later
        // patterns re-include or re-exclude what earlier ones decided.
        let lists: &[&[&str]] = &[
            DEFAULT_IGNORES,
            &["a", "!a/b", "a/b/c"],
            &["**/x", "!**/x/keep", "x/keep/*.tmp"],
            &["*/b/*", "!a/*/c", "a/**"],
            &["a?/[bc]*", "!**.md", "**/d/"],
            &["foo*/**", "!foo1/bar", "*/bar/baz"],
        ];
        let paths = [
            "a/b/c/d.txt",
            "a/x/c",
            "x/keep/y.tmp",
            "q/x/keep/z",
            "a1/b/d/e.md",
            "foo1/bar/baz",
            "src/.git/config",
            "pkg/__pycache__/m.pyc",
            "deep/er/still/.venv/bin/python",
        ];
        for pats in lists {
            let r = rules(pats);
            for p in paths {
                let mut end = 0;
                while let Some(n) = p[end..].find('/').map(|n| end + n).or(Some(p.len())) {
                    let prefix = &p[..n];
                    assert_eq!(
                        r.excludes(walked_verdict(&r, prefix)),
                        r.is_excluded(prefix),
                        "patterns {pats:?}, path {prefix:?}"
                    );
                    assert_eq!(walked_verdict(&r, prefix), r.verdict(prefix));
                    if n == p.len() {
                        break;
                    }
                    end = n + 1;
                }
            }
        }
    }

    #[test]
    fn deep_paths() {
        // More slashes than the inline buffer holds.
        let deep: String = (0..50).map(|i| format!("d{i}/")).collect::<String>() + "f.pyc";
        assert!(defaults().is_excluded(&deep));
        assert!(rules(&["d0/d1/*/d3"]).is_excluded(&deep));
        assert!(rules(&["**/d45/d46"]).is_excluded(&deep));
        assert!(rules(&["d*/**/d4?/*.pyc"]).is_excluded(&deep));
        assert!(!rules(&["d*/**/d4?/*.py"]).is_excluded(&deep));
        assert!(!rules(&["*/*.pyc"]).is_excluded(&deep));
    }

    #[test]
    fn match_kinds_follow_moby() {
        let kind = |p: &str| match compile(p).unwrap() {
            Matcher::Exact(_) => "exact",
            Matcher::Prefix(_) => "prefix",
            Matcher::Suffix(_) => "suffix",
            Matcher::Glob(_) => "glob",
        };
        assert_eq!(kind("a/b.c"), "exact");
        assert_eq!(kind("a/**"), "prefix");
        assert_eq!(kind("**/a.b"), "suffix");
        assert_eq!(kind("**"), "suffix");
        assert_eq!(kind("**/*.md"), "glob");
        assert_eq!(kind("a\\b"), "glob");
        assert_eq!(kind("a]"), "glob");
    }

    #[test]
    fn parse_file() {
        let text =
            "\u{feff}# comment\n\n*.log\n   \n  # not a comment\n!  keep.log \r\n/abs/./x//\n#tail";
        let r = IgnoreRules::parse(text).unwrap();
        assert_eq!(
            r.patterns(),
            ["*.log", "# not a comment", "!  keep.log", "/abs/./x//"]
        );
        assert!(r.is_excluded("a.log"));
        assert!(!r.is_excluded("keep.log"));
        assert!(r.is_excluded("# not a comment"));
        assert!(r.is_excluded("abs/x/y"));
        assert!(!r.is_excluded("#tail"));

        let bom_comment = IgnoreRules::parse("\u{feff}#x\nfoo").unwrap();
        assert_eq!(bom_comment.patterns(), ["foo"]);

        let empty = IgnoreRules::parse("# only\n\n   \n").unwrap();
        assert!(empty.is_empty());
        assert!(!empty.is_excluded("anything"));
        assert!(!empty.can_skip_dir("anything"));
    }

    #[test]
    fn malformed_patterns() {
        let e = IgnoreRules::parse("ok\n# c\n\nbad[\nlater").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.to_string().starts_with("line 4: "), "{e}");
        assert!(e.message.contains("bad["), "{e}");

        for (text, line) in [
            ("a\n!", 2),
            ("! ", 1),
            ("x\ny\n!/", 3),
            ("trailing\\", 1),
            ("[]", 1),
            ("[^]", 1),
            ("[a-]", 1),
            ("[-a]", 1),
            ("[z-a]", 1),
            ("a/[b", 1),
            ("[\\", 1),
        ] {
            let e = IgnoreRules::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }

        let e = IgnoreRules::from_patterns(["a", "", "b[c"]).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn skip_dirs() {
        // No `!` patterns: excluded means skippable.
        let r = rules(&["node_modules", "*.tmp"]);
        assert!(r.can_skip_dir("node_modules"));
        assert!(r.can_skip_dir("node_modules/sub"));
        assert!(r.can_skip_dir("x.tmp"));
        assert!(!r.can_skip_dir("src"));
        assert!(!r.can_skip_dir("src/node_modules"));

        #[rustfmt::skip]
        let rows: &[(&[&str], &str, bool)] = &[
            (&["build", "!build/keep.txt"], "build", false),
            (&["build", "!build/keep.txt"], "build/sub", true),
            (&["build", "!**/keep.txt"], "build", false),
            (&["build", "!docs/*.md"], "build", true),
            (&["!build/keep.txt", "build"], "build", true),
            (&["build", "!build*/x"], "build", false),
            (&["build", "!b?ild/x"], "build", false),
            (&["build", "![a-c]uild/x"], "build", false),
            (&["build", "![d-z]uild/x"], "build", true),
            (&["build", "!other/**"], "build", true),
            (&["build", "!build/**"], "build", false),
            (&["build", "!bu**"], "build", false),
            (&["build", "!*/x"], "build", false),
            (&["build", "!*"], "build", false),
            (&["build", "!*.md"], "build", true),
            (&["build", "!x/*/y"], "build", true),
            (&["a", "!a/b/c"], "a/b", false),
            (&["a", "!a/b/c"], "a/x", true),
            (&["a", "!a/b/c"], "a", false),
            (&["*", "!src"], "src", false),
            (&["*", "!src"], "target", true),
            (&["*", "!src/*.rs"], "target", true),
            (&["*", "!src/*.rs"], "src", false),
            (&["**/.git", "!**/.gitkeep"], ".git", false),
            (&["**/.git", "!docs/**/x"], ".git", true),
        ];
        for (i, (pats, dir, want)) in rows.iter().enumerate() {
            let r = rules(pats);
            assert_eq!(
                r.can_skip_dir(dir),
                *want,
                "row {i}: patterns {pats:?}, dir {dir:?}"
            );
        }

        // Whenever a dir is skippable, everything below it must be excluded.
        let paths = [
            "build/keep.txt",
            "build/x/y.md",
            "build/other",
            "tmp/a.md",
            "tmp/b/c",
            "docs/a.md",
            "docs/x/a.md",
            "a/b/c",
            "a/b/d",
            "a/x",
            "src/main.rs",
        ];
        let lists: &[&[&str]] = &[
            &["build", "!build/keep.txt", "!**/*.md", "tmp", "!docs/*.md"],
            &["*", "!docs/*.md", "a", "!a/b/c"],
            &["**", "!*/b/?", "build/**"],
            &["a/**", "!a/*/c", "tmp", "!t*/b"],
        ];
        for pats in lists {
            let r = rules(pats);
            for p in paths {
                let mut dir = p;
                while let Some((parent, _)) = dir.rsplit_once('/') {
                    dir = parent;
                    if r.can_skip_dir(dir) {
                        assert!(r.is_excluded(p), "{pats:?}: skipped {dir} but {p} is kept");
                    }
                }
            }
        }
        let r = rules(lists[0]);
        assert!(!r.can_skip_dir("build"));
        assert!(r.can_skip_dir("tmp"));
        assert!(r.is_excluded("tmp/a.md"));
        assert!(!r.is_excluded("build/x/y.md"));
    }

    #[test]
    fn default_ignores() {
        let r = defaults();
        assert_eq!(r.patterns().len(), DEFAULT_IGNORES.len());
        for p in [
            ".git",
            ".git/config",
            "vendor/lib/.git/HEAD",
            "pkg/__pycache__/m.cpython-312.pyc",
            "a/b/.venv/bin/python",
            "x.pyc",
            "deep/er/mod.pyo",
            ".mypy_cache/3.12/x.json",
            "sub/.DS_Store",
            "nb/.ipynb_checkpoints/a.ipynb",
        ] {
            assert!(r.is_excluded(p), "{p} should be excluded");
        }
        for p in [
            "src/app.py",
            ".gitignore",
            "a/.github/workflows/ci.yml",
            "pyc",
            "venv/x",
        ] {
            assert!(!r.is_excluded(p), "{p} should be kept");
        }
        assert!(r.can_skip_dir("a/b/.venv"));
        assert!(r.can_skip_dir(".git"));
        assert!(!r.can_skip_dir("src"));
    }

    #[test]
    fn secrets() {
        for (p, want) in [
            (".env", true),
            ("app/.env.local", true),
            (".env.production", true),
            (".envrc", false),
            (".env.example", false),
            ("config/.env.sample", false),
            ("environment.py", false),
            ("id_rsa", true),
            ("home/.ssh/id_ed25519", true),
            ("id_rsa.pub", false),
            ("id_ecdsa", true),
            ("certs/server.pem", true),
            ("certs/SERVER.PEM", true),
            ("tls.key", true),
            ("a.p12", true),
            ("b.pfx", true),
            ("vault.kdbx", true),
            ("credentials", true),
            ("secrets/credentials.json", true),
            (".netrc", true),
            (".pypirc", true),
            ("web/.npmrc", true),
            ("src/main.rs", false),
            ("config.json", false),
            ("pem", false),
            (".key", false),
            ("keys/", false),
            ("", false),
            (".env\u{e9}", false),
            ("a/.env.\u{e9}", true),
            ("x.p\u{e9}", false),
            ("\u{e9}\u{e9}\u{e9}.key", true),
        ] {
            assert_eq!(secret_reason(p).is_some(), want, "{p:?}");
        }
        assert_eq!(
            secret_reason("home/.aws/credentials"),
            Some("AWS credentials/config file")
        );
        assert_eq!(secret_reason("x/credentials"), Some("credentials file"));
        assert_eq!(
            secret_reason(".docker/config.json"),
            Some("Docker client config (may hold registry auth)")
        );
        assert_eq!(secret_reason("id_dsa"), Some("SSH private key"));
    }

    #[test]
    fn clean_like_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a//b", "a/b"),
            ("a/./b/", "a/b"),
            ("a/../..", ".."),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("/", "/"),
            ("//", "/"),
            ("a/b/../c", "a/c"),
        ] {
            assert_eq!(clean_path(input), want, "{input:?}");
        }
    }
}

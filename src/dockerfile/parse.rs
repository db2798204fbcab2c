//! The Dockerfile syntax: parser directives (`# syntax=`, `# escape=`),
//! comments, line continuations, heredocs, shell and exec (JSON) forms,
//! instruction flags (`--mount=…`, `--from=…`, …). Every instruction keeps
//! where it starts, and every error names its line and column and quotes the
//! instruction. Variables are not expanded here (see [`mod@super::expand`]).

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Dockerfile {
    pub escape: char,
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    /// 1-based line where the instruction starts, and where it ends
    /// (continuations and heredocs included).
    pub line: usize,
    pub end_line: usize,
    /// Upper case.
    pub keyword: String,
    pub inst: Inst,
    /// The first line as written, for messages.
    pub text: String,
}

/// A command: shell form (run with the image's shell) or exec form.
#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// `<<-`: leading tabs were removed from every line.
    pub strip_tabs: bool,
    /// An unquoted delimiter: the content is subject to expansion.
    pub expand: bool,
}

/// `RUN --mount=type=…,key=value,…`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    /// bind (default), cache, secret, tmpfs or ssh.
    pub kind: String,
    /// In order; flags without a value (`readonly`) have "true".
    pub options: Vec<(String, String)>,
}

impl Mount {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Healthcheck {
    pub cmd: Cmd,
    /// interval, timeout, start-period, start-interval, retries.
    pub options: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Inst {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run {
        cmd: Cmd,
        mounts: Vec<Mount>,
        network: Option<String>,
        security: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    Copy {
        srcs: Vec<String>,
        dst: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
        link: bool,
        parents: bool,
        exclude: Vec<String>,
        heredocs: Vec<Heredoc>,
    },
    Add {
        srcs: Vec<String>,
        dst: String,
        chown: Option<String>,
        chmod: Option<String>,
        checksum: Option<String>,
        link: bool,
        keep_git_dir: bool,
        heredocs: Vec<Heredoc>,
    },
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Entrypoint(Cmd),
    Cmd(Cmd),
    Shell(Vec<String>),
    StopSignal(String),
    /// `None` for `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The instruction's first line as written ("" when none).
    pub instruction: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)?;
        if !self.instruction.is_empty() {
            write!(f, " (in `{}`)", self.instruction.trim())?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// A logical line: physical pieces joined, with where each piece came from.
struct Logical {
    text: String,
    /// (offset in `text`, line, column of that offset)
    pieces: Vec<(usize, usize, usize)>,
    first: String,
    line: usize,
}

impl Logical {
    /// Line and column of a byte offset into `text`.
    fn pos(&self, offset: usize) -> (usize, usize) {
        let (start, line, col) = self
            .pieces
            .iter()
            .rev()
            .find(|(s, _, _)| *s <= offset)
            .copied()
            .unwrap_or((0, self.line, 1));
        (
            line,
            col + self.text[start..offset.min(self.text.len())]
                .chars()
                .count(),
        )
    }

    fn err(&self, offset: usize, msg: impl Into<String>) -> ParseError {
        let (line, column) = self.pos(offset);
        ParseError {
            line,
            column,
            message: msg.into(),
            instruction: self.first.clone(),
        }
    }
}

const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "VOLUME",
    "ENTRYPOINT",
    "CMD",
    "SHELL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

/// Parses a whole Dockerfile.
///
/// Lines are read as BuildKit reads them: the first line of an instruction
/// loses its leading whitespace, continued lines keep theirs, comment and
/// blank lines inside a continuation are skipped, and an escape character
/// ends a line as a continuation only when it is not itself escaped. A
/// continuation on the last line just ends the instruction.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Physical lines with their line ends (heredoc bodies keep them).
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some(n) = lines
        .iter()
        .position(|l| l.strip_suffix('\n').unwrap_or(l).len() > MAX_LINE)
    {
        return Err(ParseError {
            line: n + 1,
            column: 1,
            message: format!("dockerfile line greater than max allowed size of {MAX_LINE}"),
            instruction: String::new(),
        });
    }
    let mut escape = '\\';
    let mut syntax = None;
    let mut seen: Vec<String> = Vec::new();
    let mut i = 0;
    // Parser directives: only at the very top, each at most once.
    while i < lines.len() {
        let Some((key, value)) = directive(trim_newline(lines[i])) else {
            break;
        };
        let fail = |message: String| ParseError {
            line: i + 1,
            column: 1,
            message,
            instruction: trim_newline(lines[i]).to_string(),
        };
        if seen.contains(&key) {
            return Err(fail(format!("only one {key} parser directive can be used")));
        }
        match key.as_str() {
            "escape" => {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => return Err(fail(format!("escape must be \\ or `, not {other:?}"))),
                }
            }
            "syntax" => syntax = Some(value),
            _ => {}
        }
        seen.push(key);
        i += 1;
    }
    let mut instructions = Vec::new();
    while i < lines.len() {
        let Some((logical, next)) = join_continuations(&lines, i, escape) else {
            i += 1;
            continue;
        };
        i = next;
        let (inst, next) = instruction(&logical, &lines, i, escape, false)?;
        i = next;
        instructions.push(inst);
    }
    if instructions.is_empty() {
        return Err(ParseError {
            line: lines.len().max(1),
            column: 1,
            message: "file with no instructions".into(),
            instruction: String::new(),
        });
    }
    Ok(Dockerfile {
        escape,
        syntax,
        instructions,
    })
}

/// The longest physical line BuildKit reads (its line scanner's buffer, less
/// the line end). Longer lines are refused rather than held in memory many
/// times over on their way into a config.
const MAX_LINE: usize = 65_535;

/// A physical line without its line end (`\n`, `\r\n`, stray `\r`s).
fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// `# key=value` with a known key; None ends the directives.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (k, v) = rest.split_once('=')?;
    let k = k.trim().to_ascii_lowercase();
    let v = v.trim();
    if v.is_empty()
        || !k.starts_with(|c: char| c.is_ascii_alphabetic())
        || !k.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    matches!(k.as_str(), "escape" | "syntax" | "check").then(|| (k, v.to_string()))
}

/// The line without a trailing continuation (the escape character, then
/// only spaces and tabs), and whether it had one. An escape character that
/// is itself escaped (`\\` at the end) is no continuation.
fn continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(body) if body.is_empty() || !body.ends_with(escape) => (body, true),
        _ => (line, false),
    }
}

/// Joins the physical lines of the instruction starting at `start`; None
/// when that line holds no instruction (blank, a comment).
fn join_continuations(lines: &[&str], start: usize, escape: char) -> Option<(Logical, usize)> {
    let raw = trim_newline(lines[start]);
    let lead = raw.len() - raw.trim_start().len();
    let first = &raw[lead..];
    if first.starts_with('#') {
        return None;
    }
    let (body, mut more) = continuation(first, escape);
    if body.is_empty() && !more {
        return None;
    }
    let mut l = Logical {
        text: body.to_string(),
        pieces: vec![(0, start + 1, lead + 1)],
        first: raw.to_string(),
        line: start + 1,
    };
    let mut i = start + 1;
    while more && i < lines.len() {
        let raw = trim_newline(lines[i]);
        i += 1;
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') {
            // Blank and comment lines inside a continued instruction.
            continue;
        }
        let (body, m) = continuation(raw, escape);
        l.pieces.push((l.text.len(), i, 1));
        l.text.push_str(body);
        more = m;
    }
    if l.text.trim().is_empty() {
        return None;
    }
    Some((l, i))
}

/// An instruction's parts after its keyword, for the function that reads
/// that keyword's arguments.
#[derive(Clone, Copy)]
struct Args<'a> {
    l: &'a Logical,
    flags: &'a Flags,
    /// The arguments after the flags, and where they start in `l.text`.
    args: &'a str,
    args_at: usize,
    /// Where the flags start.
    rest_start: usize,
    keyword: &'a str,
    escape: char,
}

impl Args<'_> {
    /// An error when the instruction has no arguments.
    fn need(&self, what: &str) -> Result<(), ParseError> {
        if self.args.trim().is_empty() {
            Err(self.l.err(
                self.args_at.min(self.l.text.len()),
                format!("{} needs {what}", self.keyword),
            ))
        } else {
            Ok(())
        }
    }
}

/// The bodies of an instruction's heredocs, read from the lines after it
/// (`next` moves past them): each runs to a line that is its delimiter
/// (after leading tabs for `<<-`).
fn read_heredocs(
    l: &Logical,
    markers: Vec<(String, bool, bool)>,
    lines: &[&str],
    next: &mut usize,
) -> Result<Vec<Heredoc>, ParseError> {
    let mut heredocs = Vec::new();
    for (name, strip_tabs, expand) in markers {
        let mut content = String::new();
        let start_line = *next;
        loop {
            let Some(raw) = lines.get(*next) else {
                return Err(ParseError {
                    line: start_line,
                    column: 1,
                    message: format!("heredoc <<{name} is not terminated (no line {name:?})"),
                    instruction: l.first.clone(),
                });
            };
            *next += 1;
            let line = if strip_tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if trim_newline(line) == name {
                break;
            }
            content.push_str(line);
        }
        heredocs.push(Heredoc {
            name,
            content,
            strip_tabs,
            expand,
        });
    }
    Ok(heredocs)
}

fn instruction(
    l: &Logical,
    lines: &[&str],
    mut next: usize,
    escape: char,
    in_onbuild: bool,
) -> Result<(Instruction, usize), ParseError> {
    let text = l.text.as_str();
    let kw_start = text.len() - text.trim_start().len();
    let kw_end = text[kw_start..]
        .find(char::is_whitespace)
        .map(|n| kw_start + n)
        .unwrap_or(text.len());
    let keyword = text[kw_start..kw_end].to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(l.err(
            kw_start,
            format!("unknown instruction {:?}", &text[kw_start..kw_end]),
        ));
    }
    if in_onbuild && matches!(keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(l.err(kw_start, format!("{keyword} is not allowed in ONBUILD")));
    }
    let rest_start = kw_end + (text[kw_end..].len() - text[kw_end..].trim_start().len());
    let flags = Flags::take(l, rest_start)?;
    let args_at = flags.end;
    let args = &text[args_at..];
    // Heredocs (RUN, COPY and ADD in shell form): their bodies follow the
    // instruction's last line.
    let heredocs = if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD")
        && json_args(args).map_or(true, |j| j.is_none())
    {
        let markers = heredocs_in_line(text).map_err(|m| l.err(rest_start, m))?;
        read_heredocs(l, markers, lines, &mut next)?
    } else {
        Vec::new()
    };
    let a = Args {
        l,
        flags: &flags,
        args,
        args_at,
        rest_start,
        keyword: &keyword,
        escape,
    };
    let inst = match keyword.as_str() {
        "FROM" => inst_from(&a)?,
        "RUN" => inst_run(&a, heredocs)?,
        "COPY" | "ADD" => inst_copy_or_add(&a, heredocs)?,
        "ENV" | "LABEL" => inst_env_or_label(&a)?,
        "ARG" => inst_arg(&a)?,
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => inst_single_value(&a)?,
        "EXPOSE" => inst_expose(&a)?,
        "VOLUME" => inst_volume(&a)?,
        "ENTRYPOINT" | "CMD" => inst_cmd_or_entrypoint(&a)?,
        "SHELL" => inst_shell(&a)?,
        "HEALTHCHECK" => inst_healthcheck(&a)?,
        "ONBUILD" => inst_onbuild(&a, lines, &mut next)?,
        _ => unreachable!("keywords are listed"),
    };
    Ok((
        Instruction {
            line: l.line,
            end_line: next.max(l.line),
            keyword,
            inst,
            text: l.first.clone(),
        },
        next,
    ))
}

fn inst_from(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        ..
    } = *a;
    let platform = flags.value("platform");
    flags.done(l, &["platform"])?;
    a.need("an image")?;
    let words = words_at(args, args_at);
    Ok(match words.as_slice() {
        [(image, _)] => Inst::From {
            image: image.clone(),
            alias: None,
            platform,
        },
        [(image, _), (as_, _), (name, _)] if as_.eq_ignore_ascii_case("as") => Inst::From {
            image: image.clone(),
            alias: Some(name.clone()),
            platform,
        },
        _ => return Err(l.err(args_at, "expected FROM [--platform=P] IMAGE [AS NAME]")),
    })
}

fn inst_run(a: &Args<'_>, heredocs: Vec<Heredoc>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        rest_start,
        ..
    } = *a;
    let mut mounts = Vec::new();
    for (v, at) in flags.values("mount") {
        mounts.push(parse_mount(&v).map_err(|m| l.err(at, m))?);
    }
    let network = flags.value("network");
    if let Some(n) = &network
        && !matches!(n.as_str(), "default" | "none" | "host")
    {
        return Err(l.err(
            rest_start,
            format!("--network={n}: expected default, none or host"),
        ));
    }
    let security = flags.value("security");
    flags.done(l, &["mount", "network", "security"])?;
    if heredocs.is_empty() {
        a.need("a command")?;
    }
    Ok(Inst::Run {
        cmd: command(args).map_err(|m| l.err(args_at, m))?,
        mounts,
        network,
        security,
        heredocs,
    })
}

fn inst_copy_or_add(a: &Args<'_>, heredocs: Vec<Heredoc>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        rest_start,
        keyword,
        ..
    } = *a;
    let allowed: &[&str] = if keyword == "COPY" {
        &["from", "chown", "chmod", "link", "parents", "exclude"]
    } else {
        &["chown", "chmod", "checksum", "link", "keep-git-dir"]
    };
    let from = flags.value("from");
    let chown = flags.value("chown");
    let chmod = flags.value("chmod");
    let checksum = flags.value("checksum");
    let link = flags.bool("link").map_err(|(m, at)| l.err(at, m))?;
    let parents = flags.bool("parents").map_err(|(m, at)| l.err(at, m))?;
    let keep_git_dir = flags.bool("keep-git-dir").map_err(|(m, at)| l.err(at, m))?;
    let exclude: Vec<String> = flags
        .values("exclude")
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    if let Some(m) = &chmod
        && !(m.len() <= 4 && !m.is_empty() && m.chars().all(|c| ('0'..='7').contains(&c)))
    {
        return Err(l.err(
            rest_start,
            format!("--chmod={m}: expected an octal mode like 0755"),
        ));
    }
    flags.done(l, allowed)?;
    a.need("a source and a destination")?;
    let mut paths = path_list(args, args_at).map_err(|m| l.err(args_at, m))?;
    if paths.len() < 2 && heredocs.is_empty() {
        return Err(l.err(
            args_at,
            format!("{keyword} needs at least one source and a destination"),
        ));
    }
    let (dst, _) = paths.pop().expect("two or more");
    let srcs: Vec<String> = paths.into_iter().map(|(p, _)| p).collect();
    Ok(if keyword == "COPY" {
        Inst::Copy {
            srcs,
            dst,
            from,
            chown,
            chmod,
            link,
            parents,
            exclude,
            heredocs,
        }
    } else {
        Inst::Add {
            srcs,
            dst,
            chown,
            chmod,
            checksum,
            link,
            keep_git_dir,
            heredocs,
        }
    })
}

fn inst_env_or_label(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        keyword,
        escape,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("KEY=VALUE")?;
    let pairs = key_values(l, args, args_at, escape, keyword == "ENV")?;
    Ok(if keyword == "ENV" {
        Inst::Env(pairs)
    } else {
        Inst::Label(pairs)
    })
}

fn inst_arg(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        escape,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("a name")?;
    let mut out = Vec::new();
    for (w, at) in shell_words(l, args, args_at, escape, true)? {
        match w.split_once('=') {
            Some((k, v)) => {
                check_name(l, k, at)?;
                out.push((k.to_string(), Some(v.to_string())));
            }
            None => {
                check_name(l, &w, at)?;
                out.push((w, None));
            }
        }
    }
    Ok(Inst::Arg(out))
}

fn inst_single_value(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        keyword,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("a value")?;
    let v = args.trim().to_string();
    Ok(match keyword {
        "WORKDIR" => Inst::Workdir(v),
        "USER" => Inst::User(v),
        "STOPSIGNAL" => Inst::StopSignal(v),
        _ => Inst::Maintainer(v),
    })
}

fn inst_expose(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("a port")?;
    Ok(Inst::Expose(
        words_at(args, args_at)
            .into_iter()
            .map(|(w, _)| w)
            .collect(),
    ))
}

fn inst_volume(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("a path")?;
    Ok(Inst::Volume(
        path_list(args, args_at)
            .map_err(|m| l.err(args_at, m))?
            .into_iter()
            .map(|(w, _)| w)
            .collect(),
    ))
}

fn inst_cmd_or_entrypoint(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        keyword,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("a command")?;
    let cmd = command(args).map_err(|m| l.err(args_at, m))?;
    Ok(if keyword == "CMD" {
        Inst::Cmd(cmd)
    } else {
        Inst::Entrypoint(cmd)
    })
}

fn inst_shell(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        ..
    } = *a;
    flags.done(l, &[])?;
    Ok(match command(args).map_err(|m| l.err(args_at, m))? {
        Cmd::Exec(v) if !v.is_empty() => Inst::Shell(v),
        _ => {
            return Err(l.err(
                args_at,
                "SHELL takes a JSON array, e.g. [\"/bin/bash\", \"-c\"]",
            ));
        }
    })
}

fn inst_healthcheck(a: &Args<'_>) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        ..
    } = *a;
    let options: Vec<(String, String)> = [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ]
    .iter()
    .filter_map(|k| flags.value(k).map(|v| (k.to_string(), v)))
    .collect();
    flags.done(
        l,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    // The first word is the type; the rest is the command (BuildKit's
    // order of checks and its messages).
    let a = args.trim();
    let (typ, rest) = a.split_once(char::is_whitespace).unwrap_or((a, ""));
    let rest_at = args_at + (args.len() - args.trim_start().len()) + typ.len();
    if typ.is_empty() {
        return Err(l.err(args_at, "HEALTHCHECK requires at least one argument"));
    }
    Ok(match typ.to_ascii_uppercase().as_str() {
        "NONE" if rest.trim().is_empty() => Inst::Healthcheck(None),
        "NONE" => return Err(l.err(rest_at, "HEALTHCHECK NONE takes no arguments")),
        "CMD" => {
            let cmd = command(rest).map_err(|m| l.err(rest_at, m))?;
            if matches!(&cmd, Cmd::Shell(c) if c.is_empty())
                || matches!(&cmd, Cmd::Exec(v) if v.is_empty())
            {
                return Err(l.err(rest_at, "Missing command after HEALTHCHECK CMD"));
            }
            Inst::Healthcheck(Some(Healthcheck { cmd, options }))
        }
        _ => {
            return Err(l.err(
                args_at,
                format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"),
            ));
        }
    })
}

fn inst_onbuild(a: &Args<'_>, lines: &[&str], next: &mut usize) -> Result<Inst, ParseError> {
    let Args {
        l,
        flags,
        args,
        args_at,
        escape,
        ..
    } = *a;
    flags.done(l, &[])?;
    a.need("an instruction")?;
    let inner = Logical {
        text: args.to_string(),
        pieces: vec![(0, l.pos(args_at).0, l.pos(args_at).1)],
        first: l.first.clone(),
        line: l.line,
    };
    let (i, n) = instruction(&inner, lines, *next, escape, true)?;
    *next = n;
    Ok(Inst::Onbuild(Box::new(i)))
}

/// The heredoc markers of an instruction's line, in order, as (name,
/// strip leading tabs, expand): the line is split into words as a shell
/// would, keeping quotes and escapes, and a word is a marker when it is
/// `[digits]<<[-]WORD` with a single word after the `<<`. So `<<` inside
/// quotes, inside a longer word (`$((1<<3))`) or followed by a space is not
/// a marker, and a delimiter with any quoted part is not expanded.
fn heredocs_in_line(line: &str) -> Result<Vec<(String, bool, bool)>, String> {
    // An unbalanced quote means no markers, as the shell would not see any.
    let Ok(words) = lex_words(line, true, true) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for w in words {
        let digits = w.len() - w.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let Some(rest) = w[digits..].strip_prefix("<<") else {
            continue;
        };
        let (strip_tabs, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let unquoted = lex_words(rest, false, false)
            .map_err(|q| format!("heredoc delimiter {rest:?}: unterminated {q} quote"))?;
        let [name] = unquoted.as_slice() else {
            continue;
        };
        let quoted = lex_words(rest, true, false)
            .map_err(|q| format!("heredoc delimiter {rest:?}: unterminated {q} quote"))?;
        let quotes = |s: &str| s.matches(['\'', '"']).count();
        let expand = quoted.first().is_some_and(|q| quotes(q) == quotes(name));
        out.push((name.clone(), strip_tabs, expand));
    }
    Ok(out)
}

/// Splits `s` into words as a POSIX shell would, with `\` as the escape:
/// with `raw_quotes` the quote characters stay in the words, with
/// `raw_escapes` the backslashes do. `$` is kept as written. An unbalanced
/// quote is an error naming it.
fn lex_words(s: &str, raw_quotes: bool, raw_escapes: bool) -> Result<Vec<String>, char> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if raw_escapes {
                    word.push('\\');
                }
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '\'' | '"' => {
                in_word = true;
                if raw_quotes {
                    word.push(c);
                }
                loop {
                    match chars.next() {
                        None => return Err(c),
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            None => return Err(c),
                            Some(n) => {
                                if raw_escapes || !matches!(n, '"' | '\\' | '$') {
                                    word.push('\\');
                                }
                                word.push(n);
                            }
                        },
                        Some(x) => word.push(x),
                    }
                }
                if raw_quotes {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Leading `--name[=value]` flags of an instruction.
struct Flags {
    list: Vec<(String, Option<String>, usize)>,
    end: usize,
}

impl Flags {
    /// The `--name[=value]` words at the start of the arguments, read as
    /// BuildKit reads them: quotes and `\` work inside a flag, and a word
    /// `--` ends the flags (so `COPY -- --odd-name /dst` copies
    /// `--odd-name`).
    fn take(l: &Logical, start: usize) -> Result<Flags, ParseError> {
        let text = &l.text;
        let mut i = start;
        let mut list = Vec::new();
        loop {
            i += text[i..].len() - text[i..].trim_start().len();
            if !text[i..].starts_with("--") {
                break;
            }
            let at = i;
            let mut word = String::new();
            let mut quote: Option<char> = None;
            let mut chars = text[i..].char_indices().peekable();
            let mut end = text.len();
            while let Some((off, c)) = chars.next() {
                match (quote, c) {
                    (None, c) if c.is_whitespace() => {
                        end = i + off;
                        break;
                    }
                    (None, '"' | '\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (_, '\\') => match chars.next() {
                        Some((_, n)) => word.push(n),
                        None if quote.is_some() => quote = None,
                        None => {}
                    },
                    (_, c) => word.push(c),
                }
            }
            i = end;
            if word == "--" {
                i += text[i..].len() - text[i..].trim_start().len();
                break;
            }
            let tok = &word[2..];
            let (name, value) = match tok.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (tok, None),
            };
            if name.is_empty() {
                return Err(l.err(at, format!("bad flag {word:?}")));
            }
            list.push((name.to_ascii_lowercase(), value, at));
        }
        Ok(Flags { list, end: i })
    }

    fn value(&self, name: &str) -> Option<String> {
        self.list
            .iter()
            .rev()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, v, _)| v.clone())
    }

    fn values(&self, name: &str) -> Vec<(String, usize)> {
        self.list
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, v, at)| v.clone().map(|v| (v, *at)))
            .collect()
    }

    fn bool(&self, name: &str) -> Result<bool, (String, usize)> {
        match self.list.iter().rev().find(|(n, _, _)| n == name) {
            None => Ok(false),
            Some((_, None, _)) => Ok(true),
            Some((_, Some(v), at)) => match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err((format!("--{name}={other}: expected true or false"), *at)),
            },
        }
    }

    /// Errors for flags this instruction does not take.
    fn done(&self, l: &Logical, allowed: &[&str]) -> Result<(), ParseError> {
        for (n, v, at) in &self.list {
            if !allowed.contains(&n.as_str()) {
                let kw = l
                    .text
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                return Err(l.err(*at, format!("unknown flag --{n} for {kw}")));
            }
            let takes_bool = matches!(n.as_str(), "link" | "parents" | "keep-git-dir");
            if v.is_none() && !takes_bool {
                return Err(l.err(*at, format!("--{n} needs a value (--{n}=…)")));
            }
        }
        Ok(())
    }
}

fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut kind = "bind".to_string();
    let mut options = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (part.to_ascii_lowercase(), "true".to_string()),
        };
        if k == "type" {
            kind = v;
        } else {
            options.push((k, v));
        }
    }
    if !matches!(kind.as_str(), "bind" | "cache" | "secret" | "tmpfs" | "ssh") {
        return Err(format!(
            "--mount type={kind}: expected bind, cache, secret, tmpfs or ssh"
        ));
    }
    let m = Mount { kind, options };
    let needs_target = matches!(m.kind.as_str(), "bind" | "cache" | "tmpfs");
    let target = m.get("target").or(m.get("dst")).or(m.get("destination"));
    if needs_target && target.is_none() {
        return Err(format!("--mount type={}: target=PATH is required", m.kind));
    }
    if m.kind == "secret" && m.get("id").is_none() && target.is_none() {
        return Err("--mount type=secret: id=ID (or target=PATH) is required".into());
    }
    Ok(m)
}

/// The arguments as a JSON array of strings (exec form), None when they are
/// not JSON (shell form), or an error when they are a JSON array holding
/// something other than strings, as BuildKit decides.
fn json_args(args: &str) -> Result<Option<Vec<String>>, String> {
    let t = args.trim();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Exec form when the arguments are a JSON array of strings, else shell form.
fn command(args: &str) -> Result<Cmd, String> {
    Ok(match json_args(args)? {
        Some(v) => Cmd::Exec(v),
        None => Cmd::Shell(args.trim().to_string()),
    })
}

/// Whitespace-separated words with their offsets.
fn words_at(s: &str, base: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(st)) => {
                out.push((s[st..i].to_string(), base + st));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((s[st..].to_string(), base + st));
    }
    out
}

/// A JSON array of paths, or whitespace-separated paths.
fn path_list(s: &str, base: usize) -> Result<Vec<(String, usize)>, String> {
    Ok(match json_args(s)? {
        Some(v) => v.into_iter().map(|p| (p, base)).collect(),
        None => words_at(s, base),
    })
}

/// Words as a shell would split them: quotes removed, the escape character
/// keeping the next one. `$` stays for later expansion, kept literal (as
/// `\$`) where quoting made it so.
///
/// With `split` false the whole text is one word whose unquoted whitespace
/// is kept as written (ENV's and LABEL's `KEY VALUE` form).
fn shell_words(
    l: &Logical,
    s: &str,
    base: usize,
    escape: char,
    split: bool,
) -> Result<Vec<(String, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<(char, usize)> = None;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(('\'', _)) => {
                if c == '\'' {
                    quote = None;
                } else if c == '$' {
                    cur.push(escape);
                    cur.push('$');
                } else {
                    cur.push(c);
                }
            }
            Some(('"', _)) => {
                if c == '"' {
                    quote = None;
                } else if c == escape {
                    match chars.next() {
                        Some((_, '$')) => {
                            cur.push(escape);
                            cur.push('$');
                        }
                        Some((_, n)) if n == '"' || n == escape => cur.push(n),
                        Some((_, n)) => {
                            cur.push(c);
                            cur.push(n);
                        }
                        None => cur.push(c),
                    }
                } else {
                    cur.push(c);
                }
            }
            _ => {
                if c.is_whitespace() && split {
                    if let Some(st) = start.take() {
                        out.push((std::mem::take(&mut cur), base + st));
                    }
                    continue;
                }
                start.get_or_insert(i);
                if c == '"' || c == '\'' {
                    quote = Some((c, i));
                } else if c == escape {
                    match chars.next() {
                        Some((_, '$')) => {
                            cur.push(escape);
                            cur.push('$');
                        }
                        Some((_, n)) => cur.push(n),
                        None => {}
                    }
                } else {
                    cur.push(c);
                }
            }
        }
    }
    if let Some((q, at)) = quote {
        return Err(l.err(base + at, format!("unterminated {q} quote")));
    }
    if let Some(st) = start {
        out.push((cur, base + st));
    }
    Ok(out)
}

fn check_name(l: &Logical, name: &str, at: usize) -> Result<(), ParseError> {
    if name.is_empty() {
        return Err(l.err(at, "a name must not be empty"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        return Err(l.err(at, format!("bad name {name:?}")));
    }
    Ok(())
}

/// `KEY=VALUE …`, or (ENV and LABEL's old form) `KEY VALUE…`.
fn key_values(
    l: &Logical,
    s: &str,
    base: usize,
    escape: char,
    env: bool,
) -> Result<Vec<(String, String)>, ParseError> {
    let kw = if env { "ENV" } else { "LABEL" };
    let words = shell_words(l, s, base, escape, true)?;
    let first_has_eq = words.first().is_some_and(|(w, _)| w.contains('='));
    if !first_has_eq {
        // Old form: the first word is the key, everything after the
        // whitespace that follows it is the value, one word with its inner
        // whitespace kept.
        let (key, at) = words.first().cloned().expect("arguments were checked");
        check_name(l, &key, at)?;
        let raw = s.trim();
        let Some(sep) = raw.find(char::is_whitespace) else {
            return Err(l.err(at, format!("{kw} must have two arguments")));
        };
        let value_text = raw[sep..].trim_start();
        let value_at = base + (s.len() - s.trim_start().len()) + (raw.len() - value_text.len());
        let value = shell_words(l, value_text, value_at, escape, false)?
            .into_iter()
            .map(|(w, _)| w)
            .next()
            .unwrap_or_default();
        return Ok(vec![(key, value)]);
    }
    let mut out = Vec::new();
    for (w, at) in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(l.err(
                at,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ));
        };
        check_name(l, k, at)?;
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Instruction {
        let d = parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.instructions.len(), 1, "{d:#?}");
        d.instructions.into_iter().next().unwrap()
    }

    fn err(s: &str) -> ParseError {
        parse(s).expect_err("must fail")
    }

    #[test]
    fn directives_comments_and_continuations() {
        let d = parse(
            "# syntax=docker/dockerfile:1.7\n# escape=`\n\n# a comment\nFROM python:3.12 AS base\nRUN apt-get update && `\n    # a comment inside\n\n    apt-get install -y curl\n",
        )
        .unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1.7"));
        assert_eq!(d.instructions.len(), 2);
        assert_eq!(
            d.instructions[0].inst,
            Inst::From {
                image: "python:3.12".into(),
                alias: Some("base".into()),
                platform: None
            }
        );
        let r = &d.instructions[1];
        assert_eq!((r.line, r.end_line), (6, 9));
        assert_eq!(
            r.inst,
            Inst::Run {
                cmd: Cmd::Shell("apt-get update &&     apt-get install -y curl".into()),
                mounts: vec![],
                network: None,
                security: None,
                heredocs: vec![]
            }
        );
        // A directive after the first instruction is a plain comment.
        let d = parse("FROM a\n# escape=`\nRUN x \\\n  y\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert!(
            matches!(&d.instructions[1].inst, Inst::Run { cmd: Cmd::Shell(s), .. } if s == "x   y")
        );
    }

    #[test]
    fn exec_and_shell_forms() {
        assert_eq!(
            one("CMD [\"python\", \"-m\", \"app\"]").inst,
            Inst::Cmd(Cmd::Exec(vec!["python".into(), "-m".into(), "app".into()]))
        );
        assert_eq!(
            one("ENTRYPOINT python -m app").inst,
            Inst::Entrypoint(Cmd::Shell("python -m app".into()))
        );
        // Not valid JSON: shell form, as Docker does.
        assert_eq!(
            one("CMD [\"a\", 'b']").inst,
            Inst::Cmd(Cmd::Shell("[\"a\", 'b']".into()))
        );
        assert_eq!(
            one("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]").inst,
            Inst::Shell(vec![
                "/bin/bash".into(),
                "-o".into(),
                "pipefail".into(),
                "-c".into()
            ])
        );
        assert_eq!(
            one("run [\"echo\", \"a\\\"b\"]").keyword,
            "RUN",
            "keywords are case-insensitive"
        );
    }

    #[test]
    fn run_mounts_and_network() {
        let i = one(
            "RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked --mount=type=secret,id=tok,env=TOKEN --mount=type=bind,source=req.txt,target=/tmp/req.txt,ro --network=none uv pip install -r /tmp/req.txt",
        );
        let Inst::Run {
            cmd,
            mounts,
            network,
            ..
        } = i.inst
        else {
            panic!()
        };
        assert_eq!(cmd, Cmd::Shell("uv pip install -r /tmp/req.txt".into()));
        assert_eq!(network.as_deref(), Some("none"));
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].kind, "cache");
        assert_eq!(mounts[0].get("target"), Some("/root/.cache/uv"));
        assert_eq!(mounts[0].get("sharing"), Some("locked"));
        assert_eq!(mounts[1].kind, "secret");
        assert_eq!(mounts[1].get("env"), Some("TOKEN"));
        assert_eq!(mounts[2].kind, "bind");
        assert_eq!(mounts[2].get("ro"), Some("true"));
        // A mount without a type is a bind mount.
        let Inst::Run { mounts, .. } = one("RUN --mount=target=/src,source=. make").inst else {
            panic!()
        };
        assert_eq!(mounts[0].kind, "bind");
    }

    #[test]
    fn heredocs() {
        let d = parse("FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nCOPY <<-\"CONF\" /etc/app.conf\n\tkey=value\n\tCONF\nRUN python3 <<'PY' > /out\nprint(1)\nPY\nUSER app\n").unwrap();
        assert_eq!(d.instructions.len(), 5);
        let Inst::Run { heredocs, cmd, .. } = &d.instructions[1].inst else {
            panic!()
        };
        assert_eq!(cmd, &Cmd::Shell("<<EOF".into()));
        assert_eq!(heredocs[0].content, "set -e\necho $HOME\n");
        assert!(heredocs[0].expand);
        assert_eq!(d.instructions[1].end_line, 5);
        let Inst::Copy {
            heredocs,
            dst,
            srcs,
            ..
        } = &d.instructions[2].inst
        else {
            panic!()
        };
        assert_eq!(
            (dst.as_str(), srcs.as_slice()),
            ("/etc/app.conf", ["<<-\"CONF\"".to_string()].as_slice())
        );
        assert_eq!(heredocs[0].content, "key=value\n");
        assert!(heredocs[0].strip_tabs && !heredocs[0].expand);
        let Inst::Run { heredocs, .. } = &d.instructions[3].inst else {
            panic!()
        };
        assert_eq!(heredocs[0].name, "PY");
        assert_eq!(d.instructions[4].inst, Inst::User("app".into()));
        // `<<` inside a word that is no heredoc marker.
        let Inst::Run { heredocs, .. } = one("RUN echo $((1<<3))").inst else {
            panic!()
        };
        assert!(heredocs.is_empty());
    }

    #[test]
    fn copy_and_add_flags() {
        let i = one("COPY --from=builder --chown=app:app --chmod=0755 --link /opt/venv /opt/venv");
        assert_eq!(
            i.inst,
            Inst::Copy {
                srcs: vec!["/opt/venv".into()],
                dst: "/opt/venv".into(),
                from: Some("builder".into()),
                chown: Some("app:app".into()),
                chmod: Some("0755".into()),
                link: true,
                parents: false,
                exclude: vec![],
                heredocs: vec![]
            }
        );
        let Inst::Copy { srcs, dst, .. } = one("COPY [\"a b.txt\", \"c\", \"/dst/\"]").inst else {
            panic!()
        };
        assert_eq!(
            (srcs, dst.as_str()),
            (vec!["a b.txt".to_string(), "c".into()], "/dst/")
        );
        let Inst::Add { checksum, srcs, .. } =
            one("ADD --checksum=sha256:abc https://example.com/x.tgz /x/").inst
        else {
            panic!()
        };
        assert_eq!(checksum.as_deref(), Some("sha256:abc"));
        assert_eq!(srcs, ["https://example.com/x.tgz"]);
    }

    #[test]
    fn env_arg_label_forms() {
        assert_eq!(
            one("ENV A=1 B=\"two words\" C='$lit' D=\\$esc E=${A:-x}").inst,
            Inst::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "\\$lit".into()),
                ("D".into(), "\\$esc".into()),
                ("E".into(), "${A:-x}".into()),
            ])
        );
        assert_eq!(
            one("ENV PATH /opt/venv/bin:$PATH").inst,
            Inst::Env(vec![("PATH".into(), "/opt/venv/bin:$PATH".into())])
        );
        assert_eq!(
            one("ENV MSG hello   world").inst,
            Inst::Env(vec![("MSG".into(), "hello   world".into())])
        );
        assert_eq!(
            one("ARG PY=3.12 FLAG").inst,
            Inst::Arg(vec![
                ("PY".into(), Some("3.12".into())),
                ("FLAG".into(), None)
            ])
        );
        assert_eq!(
            one("LABEL org.opencontainers.image.title=\"My app\" v=1").inst,
            Inst::Label(vec![
                ("org.opencontainers.image.title".into(), "My app".into()),
                ("v".into(), "1".into())
            ])
        );
    }

    #[test]
    fn the_other_instructions() {
        assert_eq!(one("WORKDIR /app").inst, Inst::Workdir("/app".into()));
        assert_eq!(
            one("EXPOSE 8080 53/udp").inst,
            Inst::Expose(vec!["8080".into(), "53/udp".into()])
        );
        assert_eq!(
            one("VOLUME [\"/data\", \"/logs\"]").inst,
            Inst::Volume(vec!["/data".into(), "/logs".into()])
        );
        assert_eq!(one("VOLUME /data").inst, Inst::Volume(vec!["/data".into()]));
        assert_eq!(
            one("STOPSIGNAL SIGTERM").inst,
            Inst::StopSignal("SIGTERM".into())
        );
        assert_eq!(one("HEALTHCHECK NONE").inst, Inst::Healthcheck(None));
        assert_eq!(
            one("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/").inst,
            Inst::Healthcheck(Some(Healthcheck {
                cmd: Cmd::Shell("curl -f http://localhost/".into()),
                options: vec![
                    ("interval".into(), "5s".into()),
                    ("retries".into(), "3".into())
                ]
            }))
        );
        let Inst::Onbuild(inner) = one("ONBUILD RUN make").inst else {
            panic!()
        };
        assert_eq!(inner.keyword, "RUN");
        assert_eq!(
            one("FROM --platform=$BUILDPLATFORM golang:1.22 as build").inst,
            Inst::From {
                image: "golang:1.22".into(),
                alias: Some("build".into()),
                platform: Some("$BUILDPLATFORM".into())
            }
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = err("FROM a\nRUNN make\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("unknown instruction"), "{e}");
        assert_eq!(e.instruction, "RUNN make");
        let e = err("FROM a\nCOPY --form=x a /b\n");
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.message.contains("unknown flag --form for COPY"), "{e}");
        let e = err("FROM a\nRUN --mount=type=nfs,target=/x true\n");
        assert_eq!((e.line, e.column), (2, 5));
        assert!(e.message.contains("type=nfs"), "{e}");
        let e = err("FROM a\nCOPY onlyone\n");
        assert!(e.message.contains("at least one source"), "{e}");
        let e = err("FROM a\nENV A=1 \\\n  B\n");
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.message.contains("can't find = in \"B\""), "{e}");
        let e = err("FROM a\nENV A=\"open\n");
        assert_eq!((e.line, e.column), (2, 7), "{e}");
        assert!(e.message.contains("unterminated"), "{e}");
        let e = err("FROM a\nRUN <<EOF\necho\n");
        assert!(e.message.contains("heredoc <<EOF is not terminated"), "{e}");
        let e = err("# escape=x\nFROM a\n");
        assert_eq!(e.line, 1);
        let e = err("FROM a b c d\n");
        assert!(
            e.message.contains("FROM [--platform=P] IMAGE [AS NAME]"),
            "{e}"
        );
        let e = err("FROM a\nSHELL /bin/bash -c\n");
        assert!(e.message.contains("JSON array"), "{e}");
        let e = err("FROM a\nONBUILD FROM b\n");
        assert!(e.message.contains("not allowed in ONBUILD"), "{e}");
        let e = err("FROM a\nCOPY --chmod=u+x a /b\n");
        assert!(e.message.contains("octal"), "{e}");
        let e = err("FROM a\nWORKDIR\n");
        assert!(e.message.contains("WORKDIR needs a value"), "{e}");
        assert_eq!(e.to_string(), "2:8: WORKDIR needs a value (in `WORKDIR`)");
    }

    /// The line, flag, form and heredoc rules of BuildKit's parser, one row
    /// each: the instruction after `FROM a` a Dockerfile parses to.
    #[test]
    fn buildkit_line_rules() {
        let run = |s: &str| Inst::Run {
            cmd: Cmd::Shell(s.into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        };
        let env = |k: &str, v: &str| Inst::Env(vec![(k.into(), v.into())]);
        let copy = |src: &str, from: Option<&str>, chown: Option<&str>| Inst::Copy {
            srcs: vec![src.into()],
            dst: "/b".into(),
            from: from.map(Into::into),
            chown: chown.map(Into::into),
            chmod: None,
            link: false,
            parents: false,
            exclude: vec![],
            heredocs: vec![],
        };
        let rows: Vec<(&str, Inst)> = vec![
            // A continued line keeps its leading whitespace.
            ("RUN echo hello\\\n  world\n", run("echo hello  world")),
            ("ENV F hello\\\n  world\n", env("F", "hello  world")),
            ("ENV F a\\\n\tb   c\n", env("F", "a\tb   c")),
            // Comment and blank lines inside a continuation are skipped.
            ("RUN a \\\n# c\n    # d\n\n  b\n", run("a   b")),
            // Spaces and tabs after the escape still continue the line.
            ("RUN a \\  \t\n b\n", run("a  b")),
            // Windows line ends.
            ("RUN a \\\r\n  b\r\n", run("a   b")),
            // An escape on the last line is dropped.
            ("RUN echo hi \\", run("echo hi")),
            // A line that is only the escape continues.
            ("RUN a\\\n\\\nb\n", run("ab")),
            // An escaped escape at the end is no continuation.
            (
                "ENV C trailing\\\\backslash\\\\\n",
                env("C", "trailing\\backslash\\"),
            ),
            // `--` ends the flags.
            ("COPY -- --odd /b\n", copy("--odd", None, None)),
            // Quotes inside a flag's value.
            (
                "COPY --chown=\"app:app\" --from='build stage' a /b\n",
                copy("a", Some("build stage"), Some("app:app")),
            ),
            // `<<` in quotes or in a JSON string is no heredoc.
            ("RUN echo \"<<EOF\"\n", run("echo \"<<EOF\"")),
            ("RUN echo '<<EOF' x\n", run("echo '<<EOF' x")),
            // `<<` followed by a space is no heredoc.
            ("RUN cat << EOF\n", run("cat << EOF")),
            ("RUN cat <<- EOF\n", run("cat <<- EOF")),
            (
                "RUN [\"sh\", \"-c\", \"cat <<EOF\"]\n",
                Inst::Run {
                    cmd: Cmd::Exec(vec!["sh".into(), "-c".into(), "cat <<EOF".into()]),
                    mounts: vec![],
                    network: None,
                    security: None,
                    heredocs: vec![],
                },
            ),
            // A backtick escape directive.
            ("RUN dir C:\\ `\n  /b\n", run("dir C:\\   /b")),
        ];
        for (text, want) in rows {
            let escape = if text.contains('`') {
                "# escape=`\n"
            } else {
                ""
            };
            let d = parse(&format!("{escape}FROM a\n{text}"))
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(d.instructions.len(), 2, "{text:?}: {d:#?}");
            assert_eq!(d.instructions[1].inst, want, "{text:?}");
        }
        // Heredoc delimiters: (line, name, strip tabs, expand).
        for (line, name, strip, expand) in [
            ("COPY <<file.txt /dst", "file.txt", false, true),
            ("RUN cat <<$EOF", "$EOF", false, true),
            ("RUN cat <<eo'f'", "eof", false, false),
            ("RUN cat <<\"EO F\"", "EO F", false, false),
            ("RUN cat <<-'X'", "X", true, false),
            ("RUN 3<<EOF cat /dev/fd/3", "EOF", false, true),
        ] {
            let text = format!(
                "FROM a\n{line}\n\tbody\n{}{name}\nUSER u\n",
                if strip { "\t" } else { "" }
            );
            let d = parse(&text).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(d.instructions.len(), 3, "{line}: {d:#?}");
            let hs = match &d.instructions[1].inst {
                Inst::Run { heredocs, .. } | Inst::Copy { heredocs, .. } => heredocs.clone(),
                other => panic!("{line}: {other:?}"),
            };
            assert_eq!(hs.len(), 1, "{line}");
            assert_eq!(
                (hs[0].name.as_str(), hs[0].strip_tabs, hs[0].expand),
                (name, strip, expand),
                "{line}"
            );
            let body = if strip { "body\n" } else { "\tbody\n" };
            assert_eq!(hs[0].content, body, "{line}");
        }
        // Rejections, with BuildKit's messages: (text after FROM, line, message).
        for (text, line, want) in [
            (
                "CMD [ \"echo\", [ \"nested\" ] ]\n",
                2,
                "arrays must be comprised of strings only",
            ),
            (
                "RUN [\"a\", 1]\n",
                2,
                "arrays must be comprised of strings only",
            ),
            (
                "HEALTHCHECK\n",
                2,
                "HEALTHCHECK requires at least one argument",
            ),
            (
                "HEALTHCHECK CMD\n",
                2,
                "Missing command after HEALTHCHECK CMD",
            ),
            (
                "HEALTHCHECK CMD []\n",
                2,
                "Missing command after HEALTHCHECK CMD",
            ),
            (
                "HEALTHCHECK CURL x\n",
                2,
                "Unknown type \"CURL\" in HEALTHCHECK (try CMD)",
            ),
            (
                "HEALTHCHECK NONE x\n",
                2,
                "HEALTHCHECK NONE takes no arguments",
            ),
            ("ENV A\n", 2, "ENV must have two arguments"),
            ("LABEL A\n", 2, "LABEL must have two arguments"),
            ("ENV A=1 B\n", 2, "can't find = in \"B\""),
        ] {
            let e = err(&format!("FROM a\n{text}"));
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(want), "{text:?}: {e}");
        }
        for text in ["", "\n\n", "# only a comment\n", "  # indented\n\n"] {
            let e = err(text);
            assert_eq!(e.message, "file with no instructions", "{text:?}");
        }
        let long = format!("FROM a\nLABEL big={}\n", "x".repeat(MAX_LINE));
        let e = err(&long);
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "dockerfile line greater than max allowed size of 65535")
        );
        let fits = format!("FROM a\nLABEL b={}\n", "x".repeat(MAX_LINE - 8));
        assert_eq!(parse(&fits).unwrap().instructions.len(), 2);
        let e = err("# escape=`\n# escape=\\\nFROM a\n");
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "only one escape parser directive can be used")
        );
        // Accepted HEALTHCHECK forms.
        assert_eq!(one("HEALTHCHECK NONE").inst, Inst::Healthcheck(None));
        assert_eq!(
            one("HEALTHCHECK --interval=5s CMD [\"curl\", \"-f\", \"x\"]").inst,
            Inst::Healthcheck(Some(Healthcheck {
                cmd: Cmd::Exec(vec!["curl".into(), "-f".into(), "x".into()]),
                options: vec![("interval".into(), "5s".into())],
            }))
        );
        assert_eq!(
            one("healthcheck cmd curl -f x || exit 1").inst,
            Inst::Healthcheck(Some(Healthcheck {
                cmd: Cmd::Shell("curl -f x || exit 1".into()),
                options: vec![],
            }))
        );
    }

    /// Every case of the malformed corpus fails at its line and column.
    #[test]
    fn malformed_corpus() {
        let text = include_str!("../../testdata/dockerfiles/malformed.txt");
        let mut cases = 0;
        for case in text.split("=== ").skip(1) {
            let (head, body) = case.split_once('\n').unwrap();
            let (pos, want) = head.split_once(' ').unwrap();
            let (line, col) = pos.split_once(':').unwrap();
            let e = err(body);
            assert_eq!(
                (e.line.to_string(), e.column.to_string()),
                (line.to_string(), col.to_string()),
                "{head}: {e}"
            );
            assert!(e.message.contains(want), "{head}: {e}");
            cases += 1;
        }
        assert!(cases >= 14);
    }

    fn keywords(d: &Dockerfile) -> Vec<&str> {
        d.instructions.iter().map(|i| i.keyword.as_str()).collect()
    }

    #[test]
    fn corpus_flyte_style() {
        let d = parse(include_str!(
            "../../testdata/dockerfiles/flyte-style.Dockerfile"
        ))
        .unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1.10"));
        assert_eq!(
            keywords(&d),
            [
                "FROM", "FROM", "USER", "COPY", "ARG", "ARG", "ENV", "RUN", "ENV", "RUN", "RUN",
                "RUN", "COPY", "WORKDIR", "ENV", "USER", "WORKDIR"
            ]
        );
        let Inst::Env(vars) = &d.instructions[6].inst else {
            panic!()
        };
        assert_eq!(vars.len(), 4, "runs of spaces separate pairs: {vars:?}");
        let Inst::Run { mounts, cmd, .. } = &d.instructions[10].inst else {
            panic!()
        };
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[1].get("src"), Some("proj/uv.lock"));
        assert_eq!(mounts[1].get("rw"), Some("true"));
        assert!(
            matches!(cmd, Cmd::Shell(c) if c.starts_with("VIRTUAL_ENV=${VIRTUAL_ENV-/opt/venv} uv sync"))
        );
        let Inst::Run { mounts, .. } = &d.instructions[11].inst else {
            panic!()
        };
        assert_eq!(
            (mounts[0].kind.as_str(), mounts[0].get("env")),
            ("secret", Some("MYTOKEN"))
        );
    }

    #[test]
    fn corpus_multistage() {
        let d = parse(include_str!(
            "../../testdata/dockerfiles/multistage.Dockerfile"
        ))
        .unwrap();
        assert_eq!(&keywords(&d)[..4], ["ARG", "ARG", "FROM", "ARG"]);
        let froms: Vec<_> = d
            .instructions
            .iter()
            .filter_map(|i| match &i.inst {
                Inst::From {
                    image,
                    alias,
                    platform,
                } => Some((image.as_str(), alias.as_deref(), platform.as_deref())),
                _ => None,
            })
            .collect();
        assert_eq!(
            froms,
            [
                ("${BASE}", Some("builder"), Some("$BUILDPLATFORM")),
                ("${BASE}", None, None)
            ]
        );
        let run = d.instructions.iter().find(|i| i.keyword == "RUN").unwrap();
        assert_eq!((run.line, run.end_line), (8, 10));
        assert_eq!(
            run.inst,
            Inst::Run {
                cmd: Cmd::Shell("python -m venv /opt/venv  && /opt/venv/bin/pip install --no-cache-dir         -r requirements.txt".into()),
                mounts: vec![],
                network: None,
                security: None,
                heredocs: vec![]
            }
        );
        let hc = d
            .instructions
            .iter()
            .find(|i| i.keyword == "HEALTHCHECK")
            .unwrap();
        let Inst::Healthcheck(Some(h)) = &hc.inst else {
            panic!()
        };
        assert_eq!(
            h.options,
            [
                ("interval".to_string(), "30s".to_string()),
                ("timeout".into(), "3s".into())
            ]
        );
        let label = d
            .instructions
            .iter()
            .find(|i| i.keyword == "LABEL")
            .unwrap();
        assert_eq!(
            label.inst,
            Inst::Label(vec![
                (
                    "org.opencontainers.image.source".into(),
                    "https://example.com/app".into()
                ),
                ("maintainer".into(), "team@example.com".into())
            ])
        );
        assert_eq!(
            d.instructions.last().unwrap().inst,
            Inst::Cmd(Cmd::Exec(vec!["--port".into(), "8000".into()]))
        );
    }

    #[test]
    fn corpus_heredocs() {
        let d = parse(include_str!(
            "../../testdata/dockerfiles/heredocs.Dockerfile"
        ))
        .unwrap();
        assert_eq!(
            keywords(&d),
            [
                "FROM", "RUN", "COPY", "RUN", "ADD", "ONBUILD", "SHELL", "RUN"
            ]
        );
        let Inst::Run { heredocs, cmd, .. } = &d.instructions[1].inst else {
            panic!()
        };
        assert_eq!(cmd, &Cmd::Shell("<<EOT bash".into()));
        assert_eq!(
            heredocs[0].content,
            "  set -eux\n  apt-get update\n  apt-get install -y --no-install-recommends jq\n"
        );
        let Inst::Copy { heredocs, dst, .. } = &d.instructions[2].inst else {
            panic!()
        };
        assert_eq!(dst, "/etc/app/config.ini");
        assert_eq!(heredocs[0].content, "[app]\nname = demo\n");
        let Inst::Run { heredocs, .. } = &d.instructions[3].inst else {
            panic!()
        };
        assert_eq!(heredocs.len(), 2);
        assert!(!heredocs[0].expand && heredocs[1].expand);
        assert_eq!(heredocs[1].content, "echo second\n");
    }

    #[test]
    fn corpus_backtick_escape() {
        let d = parse(include_str!(
            "../../testdata/dockerfiles/backtick-escape.Dockerfile"
        ))
        .unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.instructions[1].inst, Inst::Workdir("C:\\app".into()));
        let Inst::Copy { dst, .. } = &d.instructions[2].inst else {
            panic!()
        };
        assert_eq!(dst, "C:\\app\\", "a backslash is no escape here");
        let Inst::Run { cmd, .. } = &d.instructions[3].inst else {
            panic!()
        };
        assert_eq!(
            cmd,
            &Cmd::Shell(
                "powershell -Command     $ErrorActionPreference = 'Stop';     Write-Host \"hello\""
                    .into()
            )
        );
        assert_eq!(
            d.instructions[4].inst,
            Inst::Env(vec![("GREETING".into(), "a \"quoted\" word".into())])
        );
    }
}

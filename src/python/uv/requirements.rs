//! pip requirements files read into requirement strings and index options.

#[cfg(test)]
use super::resolve::ResolveRequest;
use super::{Env, env_var, process_env};
use crate::error::{Error, Result};
use crate::python::pep508::Requirement;
use std::path::{Path, PathBuf};

/// A requirements file, includes followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequirementsFile {
    /// PEP 508 requirement strings, in file order, duplicates removed.
    pub requirements: Vec<String>,
    /// `--index-url` / `-i` (the last one given).
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order, duplicates removed.
    pub extra_index_urls: Vec<String>,
    /// `--pre`.
    pub pre: bool,
}

impl RequirementsFile {
    #[cfg(test)]
    /// A resolution request for these requirements.
    pub fn to_request(&self, python: &str, extra_args: Vec<String>) -> ResolveRequest {
        ResolveRequest {
            requirements: self.requirements.clone(),
            python: python.to_string(),
            index_url: self.index_url.clone(),
            extra_index_urls: self.extra_index_urls.clone(),
            pre: self.pre,
            extra_args,
        }
    }
}

/// Reads a pip requirements file: comments, blank lines, `\` continuations,
/// `${VAR}` expansion, `-r`/`--requirement` includes (relative to the file
/// that names them), `-i`/`--index-url`, `--extra-index-url`, `--pre`, and
/// `--hash` on requirement lines (dropped: the lock records the index's
/// hashes). Other options (`-e`, `-c`, `--find-links`, …) are errors naming
/// the file and line.
pub fn parse_requirements_file(path: &Path) -> Result<RequirementsFile> {
    let mut out = RequirementsFile::default();
    let mut stack = Vec::new();
    read_requirements(path, &mut out, &mut stack, &process_env)?;
    Ok(out)
}

/// One file being read: where it is, for includes and messages.
struct Reading<'a> {
    path: &'a Path,
    dir: &'a Path,
    env: Env<'a>,
}

impl Reading<'_> {
    fn err(&self, line: usize, m: String) -> Error {
        Error::input(self.path, format!("line {line}: {m}"))
    }
}

fn read_requirements(
    path: &Path,
    out: &mut RequirementsFile,
    stack: &mut Vec<PathBuf>,
    env: Env<'_>,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    stack.push(canon);
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = Reading { path, dir, env };
    for (line_no, raw) in logical_lines(&text) {
        let line = expand_env(&strip_comment(&raw), env);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('-') {
            read_option_line(&file, line_no, line, out, stack)?;
        } else {
            read_requirement_line(&file, line_no, line, out)?;
        }
    }
    stack.pop();
    Ok(())
}

/// A line of options: `-r`, `-i`, `--extra-index-url`, `--pre`; others are
/// errors that say what to do instead.
fn read_option_line(
    file: &Reading<'_>,
    line_no: usize,
    line: &str,
    out: &mut RequirementsFile,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let err = |m: String| file.err(line_no, m);
    let toks: Vec<&str> = line.split_whitespace().collect();
    let mut i = 0;
    while i < toks.len() {
        let tok = toks[i];
        let (flag, inline) = split_option(tok);
        let value = |i: &mut usize| -> Result<String> {
            if let Some(v) = inline {
                return Ok(v.to_string());
            }
            *i += 1;
            toks.get(*i)
                .map(|v| v.to_string())
                .ok_or_else(|| err(format!("`{flag}` needs a value")))
        };
        match flag {
            "-r" | "--requirement" => {
                let v = value(&mut i)?;
                include(file, line_no, flag, &v, out, stack)?;
            }
            "-i" | "--index-url" => out.index_url = Some(value(&mut i)?),
            "--extra-index-url" => {
                let v = value(&mut i)?;
                if !out.extra_index_urls.contains(&v) {
                    out.extra_index_urls.push(v);
                }
            }
            "--pre" if inline.is_none() => out.pre = true,
            _ => return Err(err(unsupported_option(flag, tok))),
        }
        i += 1;
    }
    Ok(())
}

/// `-r FILE`: reads `v` (relative to the including file) into `out`.
fn include(
    file: &Reading<'_>,
    line_no: usize,
    flag: &str,
    v: &str,
    out: &mut RequirementsFile,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let err = |m: String| file.err(line_no, m);
    if v.contains("://") {
        return Err(err(format!(
            "`{flag} {v}`: only local files can be included"
        )));
    }
    let inc = file.dir.join(v);
    let inc_canon = std::fs::canonicalize(&inc).unwrap_or(inc.clone());
    if stack.contains(&inc_canon) {
        return Err(err(format!(
            "`{flag} {v}` includes a file that includes this one"
        )));
    }
    if !inc.is_file() {
        return Err(err(format!(
            "`{flag} {v}`: {} does not exist",
            inc.display()
        )));
    }
    read_requirements(&inc, out, stack, file.env)
}

/// Why an option is refused, and what to do instead.
fn unsupported_option(flag: &str, tok: &str) -> String {
    match flag {
        "-e" | "--editable" => "editable requirements (`-e`) are not supported in images; use a \
                                `uv_project` layer for a local project"
            .into(),
        "-c" | "--constraint" => "constraints files (`-c`) are not supported; pin the versions \
                                  in the requirements instead"
            .into(),
        "-f" | "--find-links" | "--no-index" => format!(
            "`{flag}` is not supported; use `--index-url` or `--extra-index-url` with a package \
             index"
        ),
        _ => format!(
            "option `{tok}` is not supported (supported: -r, -i/--index-url, \
             --extra-index-url, --pre, and --hash after a requirement)"
        ),
    }
}

/// A requirement line: `--hash` options dropped, checked as PEP 508, a local
/// path after `@` made absolute; added unless already listed.
fn read_requirement_line(
    file: &Reading<'_>,
    line_no: usize,
    line: &str,
    out: &mut RequirementsFile,
) -> Result<()> {
    let requirement = strip_requirement_options(line).map_err(|m| file.err(line_no, m))?;
    let parsed = Requirement::parse(&requirement).map_err(|m| {
        file.err(
            line_no,
            format!("`{requirement}` is not a valid requirement: {m}"),
        )
    })?;
    let requirement = match &parsed.url {
        Some(u) => match absolute_reference(u, file.dir) {
            Some(abs) => requirement.replacen(u.as_str(), &abs, 1),
            None => requirement,
        },
        None => requirement,
    };
    if !out.requirements.contains(&requirement) {
        out.requirements.push(requirement);
    }
    Ok(())
}

/// `--flag=value` → (`--flag`, Some(value)); `-rfile` → (`-r`, Some(file)).
fn split_option(tok: &str) -> (&str, Option<&str>) {
    if tok.starts_with("--") {
        return match tok.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (tok, None),
        };
    }
    if tok.len() > 2 && tok.is_char_boundary(2) {
        let (f, v) = tok.split_at(2);
        return (f, Some(v.strip_prefix('=').unwrap_or(v)));
    }
    (tok, None)
}

/// Physical lines joined at trailing `\`, with the first line's number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (n, mut s) = cur.take().unwrap_or((i + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) if !line.trim_start().starts_with('#') => {
                s.push_str(head);
                cur = Some((n, s));
            }
            _ => {
                s.push_str(line);
                out.push((n, s));
            }
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// Drops `# comment` (at the start, or after whitespace).
fn strip_comment(line: &str) -> String {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return line[..i].to_string();
        }
    }
    line.to_string()
}

/// `${NAME}` (uppercase letters, digits, `_`) → its value, as pip does; unset
/// variables are left as written.
fn expand_env(line: &str, env: Env<'_>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(end)
                if end > 0
                    && after[..end]
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                match env_var(env, &after[..end]) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[i..i + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Drops `--hash` options after a requirement; any other option is an error.
fn strip_requirement_options(line: &str) -> std::result::Result<String, String> {
    let b = line.as_bytes();
    let cut = (1..b.len())
        .find(|&i| b[i - 1].is_ascii_whitespace() && line[i..].starts_with("--"))
        .unwrap_or(b.len());
    let toks: Vec<&str> = line[cut..].split_whitespace().collect();
    let mut i = 0;
    while i < toks.len() {
        let (flag, inline) = split_option(toks[i]);
        if flag != "--hash" {
            return Err(format!(
                "option `{}` after a requirement is not supported (only --hash is)",
                toks[i]
            ));
        }
        if inline.is_none() {
            i += 1;
        }
        i += 1;
    }
    Ok(line[..cut].trim().to_string())
}

/// A relative or absolute path after `@` → a `file://` URL; `None` when the
/// reference is already a URL.
fn absolute_reference(reference: &str, dir: &Path) -> Option<String> {
    let path = if let Some(rest) = reference.strip_prefix("file:") {
        if rest.starts_with("//") {
            return None;
        }
        rest
    } else if reference.contains("://") {
        return None;
    } else {
        reference
    };
    let abs = std::path::absolute(dir.join(path)).ok()?;
    Some(format!("file://{}", abs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn parse_with_env(path: &Path, vars: &[(&str, &str)]) -> Result<RequirementsFile> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let mut out = RequirementsFile::default();
        read_requirements(path, &mut out, &mut Vec::new(), &env)?;
        Ok(out)
    }

    #[test]
    fn requirements_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        std::fs::write(
            d.path().join("requirements.txt"),
            "# top comment\n\
             --index-url https://${IDX_USER}:${IDX_TOKEN}@index.example/simple\n\
             --extra-index-url=https://extra.example/simple\n\
             \n\
             httpx[http2] >= 0.27, \\\n    < 1  # trailing comment\n\
             requests==2.32.3 \\\n    --hash=sha256:aaaa \\\n    --hash sha256:bbbb\n\
             tomli; python_version < \"3.11\"\n\
             pkg @ https://files.example/pkg-1.0-py3-none-any.whl#sha256=cc\n\
             local @ ./vendor/local-1.0-py3-none-any.whl\n\
             -r sub/more.txt\n\
             --pre\n\
             httpx[http2] >= 0.27, < 1\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("sub/more.txt"),
            "-i https://last.example/simple\n--extra-index-url https://extra.example/simple\n\
             numpy  # from an include\n-rdeeper.txt\n",
        )
        .unwrap();
        std::fs::write(d.path().join("sub/deeper.txt"), "attrs\n").unwrap();
        let r = parse_with_env(
            &d.path().join("requirements.txt"),
            &[("IDX_USER", "me"), ("IDX_TOKEN", "t0k")],
        )
        .unwrap();
        let vendor =
            std::path::absolute(d.path().join("./vendor/local-1.0-py3-none-any.whl")).unwrap();
        assert_eq!(
            r.requirements,
            vec![
                "httpx[http2] >= 0.27,     < 1".to_string(),
                "requests==2.32.3".into(),
                "tomli; python_version < \"3.11\"".into(),
                "pkg @ https://files.example/pkg-1.0-py3-none-any.whl#sha256=cc".into(),
                format!("local @ file://{}", vendor.display()),
                "numpy".into(),
                "attrs".into(),
                "httpx[http2] >= 0.27, < 1".into(),
            ]
        );
        // The include came after the first -i: the last one wins, as in pip.
        assert_eq!(r.index_url.as_deref(), Some("https://last.example/simple"));
        assert_eq!(r.extra_index_urls, vec!["https://extra.example/simple"]);
        assert!(r.pre);
        let req = r.to_request("3.12", vec![]);
        assert_eq!(req.python, "3.12");
        assert!(req.pre);
    }

    #[test]
    fn requirements_file_env_expansion() {
        assert_eq!(
            expand_env("https://${USER_X}:${MISSING}@h/${lower}", &|k| {
                (k == "USER_X").then(|| OsString::from("me"))
            }),
            "https://me:${MISSING}@h/${lower}"
        );
        assert_eq!(expand_env("a ${ b", &|_| None), "a ${ b");
    }

    #[test]
    fn requirements_file_errors_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("req.txt");
        for (text, line, needle) in [
            ("numpy\n-e ./pkg\n", 2, "editable"),
            ("numpy\n\n-c constraints.txt\n", 3, "constraints files"),
            ("--find-links /wheels\n", 1, "--find-links"),
            ("--no-index\n", 1, "--no-index"),
            ("--trusted-host h.example\n", 1, "--trusted-host"),
            ("numpy --install-option=x\n", 1, "--install-option"),
            ("./local/pkg\n", 1, "name @"),
            ("https://files.example/x.whl\n", 1, "name @"),
            ("numpy >= \n", 1, "not a valid requirement"),
            ("a\n-r missing.txt\n", 2, "does not exist"),
            ("-r https://h.example/r.txt\n", 1, "only local files"),
            ("-i\n", 1, "needs a value"),
            ("numpy; python_version <\n", 1, "marker"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = parse_requirements_file(&f).unwrap_err();
            assert!(matches!(e, Error::Input { .. }), "{text}: {e:?}");
            let m = e.to_string();
            assert!(
                m.starts_with(&format!("{}: line {line}: ", f.display())) && m.contains(needle),
                "{text:?}: {m}"
            );
        }
        // Include cycles.
        std::fs::write(d.path().join("a.txt"), "x\n-r b.txt\n").unwrap();
        std::fs::write(d.path().join("b.txt"), "y\n-r a.txt\n").unwrap();
        let e = parse_requirements_file(&d.path().join("a.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.txt: line 2") && e.contains("includes a file"),
            "{e}"
        );
        let e = parse_requirements_file(&d.path().join("nope.txt")).unwrap_err();
        assert!(matches!(e, Error::Input { .. }));
    }

    #[test]
    fn line_handling() {
        assert_eq!(
            logical_lines("a \\\nb\n# c \\\nd\\\n"),
            vec![
                (1, "a b".to_string()),
                (3, "# c \\".to_string()),
                (4, "d".to_string())
            ]
        );
        assert_eq!(
            strip_comment("x @ https://h/x.whl#sha256=1 # c"),
            "x @ https://h/x.whl#sha256=1 "
        );
        assert_eq!(strip_comment("# all"), "");
        assert_eq!(split_option("-rfile.txt"), ("-r", Some("file.txt")));
        assert_eq!(split_option("--index-url=u"), ("--index-url", Some("u")));
        assert_eq!(split_option("--pre"), ("--pre", None));
        assert_eq!(split_option("-e"), ("-e", None));
    }
}

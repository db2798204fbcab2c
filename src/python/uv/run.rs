//! Running uv: the command every run starts from, and failures worded with
//! the tail of uv's messages, credentials removed.

use super::Uv;
use crate::error::{Error, Result};
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub(super) fn uv_command(uv: &Uv, cwd: &Path) -> Command {
    let mut c = Command::new(&uv.exe);
    c.current_dir(cwd)
        .env("UV_NO_PROGRESS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub(super) fn run_uv(mut cmd: Command, what: &dyn Fn() -> String) -> Result<Output> {
    output_retrying(&mut cmd).map_err(|e| Error::Other(format!("{}: cannot run uv: {e}", what())))
}

/// `cmd.output()`, tried again while the executable is busy: a freshly
/// written executable can be, briefly, while another thread forks.
pub(super) fn output_retrying(cmd: &mut Command) -> std::io::Result<Output> {
    let mut attempt = 0;
    loop {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(26) && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
            }
            r => return r,
        }
    }
}

/// The last `n` lines of `text`, credentials removed, indented.
pub(super) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    if start > 0 {
        out.push_str("  …\n");
    }
    for l in &lines[start..] {
        out.push_str("  ");
        out.push_str(&redact_text(l));
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// Removes `user:password@` from every URL in free text.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || "\"'<>`)]".contains(c))
            .unwrap_or(rest.len());
        match rest[..end].rfind('@') {
            Some(at) => rest = &rest[at + 1..],
            None => {
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A uv failure: `what` and the tail of uv's messages. `ours` is set when the
/// project uv ran on is one imgbuild wrote, so advice to edit it is dropped.
pub(super) fn failure(what: &str, out: &Output, ours: bool) -> Error {
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.trim().is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let kept: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            let interpreter = t.starts_with("Using CPython ") && t.contains(" interpreter at");
            let advice = ours && t.starts_with("hint:") && t.contains("requires-python");
            !interpreter && !advice
        })
        .collect();
    let status = match out.status.code() {
        Some(c) => format!("exit code {c}"),
        None => out.status.to_string(),
    };
    Error::Other(format!(
        "{what} failed (uv: {status}):\n{}",
        tail(&kept.join("\n"), 25)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_in_text() {
        assert_eq!(
            redact_text("error: GET https://user:s3cret@index.example/simple/x/ failed"),
            "error: GET https://index.example/simple/x/ failed"
        );
        assert_eq!(
            redact_text("`https://tok@a.example` and 'http://u:p@b.example:8080/x'"),
            "`https://a.example` and 'http://b.example:8080/x'"
        );
        assert_eq!(
            redact_text("mail me@example.com, see https://a.example/a@b"),
            "mail me@example.com, see https://a.example/a@b"
        );
        assert!(!tail("x https://u:p@h.example/y\n", 3).contains("u:p"));
    }
}

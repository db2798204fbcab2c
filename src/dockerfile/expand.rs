//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
//! `${VAR+alt}` as Docker expands them in ENV, ARG, COPY, WORKDIR, USER,
//! LABEL, EXPOSE, FROM and the like (not in RUN, where the shell does it).
//! The escape character before `$` keeps it literal.

/// Expands `s` with `lookup`; `escape` is the Dockerfile's escape character.
pub fn expand(
    s: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        // '$'
        match chars.get(i + 1) {
            Some('{') => {
                let close =
                    find_close(&chars, i + 2).ok_or_else(|| format!("missing '}}' in {s:?}"))?;
                let inner: String = chars[i + 2..close].iter().collect();
                out.push_str(&braced(&inner, escape, lookup, s)?);
                i = close + 1;
            }
            Some(&n) if n == '_' || n.is_ascii_alphabetic() => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j] == '_' || chars[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the '}' closing a `${` whose contents start at `from`
/// (nested `${…}` in a default are skipped).
fn find_close(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    inner: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    whole: &str,
) -> Result<String, String> {
    let name_end = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("bad substitution ${{{inner}}} in {whole:?}"));
    }
    let rest = &inner[name_end..];
    let value = lookup(name);
    let (op, word) = if let Some(w) = rest.strip_prefix(":-") {
        (":-", w)
    } else if let Some(w) = rest.strip_prefix(":+") {
        (":+", w)
    } else if let Some(w) = rest.strip_prefix('-') {
        ("-", w)
    } else if let Some(w) = rest.strip_prefix('+') {
        ("+", w)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(format!(
            "unsupported modifier {rest:?} in ${{{inner}}} (use :-, -, :+ or +)"
        ));
    };
    let word = || expand(word, escape, lookup);
    Ok(match op {
        "" => value.unwrap_or_default(),
        ":-" => match value {
            Some(v) if !v.is_empty() => v,
            _ => word()?,
        },
        "-" => match value {
            Some(v) => v,
            None => word()?,
        },
        ":+" => match value {
            Some(v) if !v.is_empty() => word()?,
            _ => String::new(),
        },
        _ => match value {
            Some(_) => word()?,
            None => String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Result<String, String> {
        let vars = |k: &str| match k {
            "A" => Some("a".to_string()),
            "EMPTY" => Some(String::new()),
            "PY" => Some("3.12".to_string()),
            _ => None,
        };
        expand(s, '\\', &vars)
    }

    #[test]
    fn forms() {
        assert_eq!(ex("$A/${A}/x$A.y").unwrap(), "a/a/xa.y");
        assert_eq!(ex("${NOPE}|$NOPE|").unwrap(), "||");
        assert_eq!(ex("${NOPE:-d}|${EMPTY:-d}|${A:-d}").unwrap(), "d|d|a");
        assert_eq!(ex("${NOPE-d}|${EMPTY-d}|${A-d}").unwrap(), "d||a");
        assert_eq!(ex("${NOPE:+s}|${EMPTY:+s}|${A:+s}").unwrap(), "||s");
        assert_eq!(ex("${NOPE+s}|${EMPTY+s}|${A+s}").unwrap(), "|s|s");
        assert_eq!(ex("python:${PY}-slim").unwrap(), "python:3.12-slim");
        assert_eq!(ex("${NOPE:-${A}-x}").unwrap(), "a-x", "nested default");
    }

    #[test]
    fn literals_and_escapes() {
        assert_eq!(
            ex("\\$A and $ and $1 and 100$").unwrap(),
            "$A and $ and $1 and 100$"
        );
        assert_eq!(expand("`$A", '`', &|_| Some("x".into())).unwrap(), "$A");
    }

    #[test]
    fn errors() {
        assert!(ex("${A").unwrap_err().contains("missing '}'"));
        assert!(ex("${}").unwrap_err().contains("bad substitution"));
        assert!(ex("${A/x/y}").unwrap_err().contains("unsupported modifier"));
    }
}

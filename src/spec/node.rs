//! A small value tree with source positions, built from TOML (with spans) or
//! JSON (spans where the parser can give them), and a reader that turns
//! it into typed values with errors naming file, line and field.

use crate::error::{Error, Location, Result};
use std::cell::RefCell;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Node>),
    Table(Vec<(String, Node)>),
    Other(&'static str),
}

#[derive(Clone, Debug)]
pub struct Node {
    /// Byte offset of the value (or its key) in the source, if known.
    pub pos: Option<usize>,
    pub value: Value,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
            Value::Other(t) => t,
        }
    }
}

/// The text a definition came from, to turn offsets into lines.
pub struct Source {
    pub file: PathBuf,
    pub text: String,
}

impl Source {
    /// The 1-based line and column (in characters) of a byte offset. An
    /// offset inside a multi-byte character names that character.
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        let mut pos = pos.min(self.text.len());
        while !self.text.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &self.text[..pos];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, before[line_start..].chars().count() + 1)
    }

    pub fn loc(&self, pos: Option<usize>, field: &str) -> Location {
        let (line, column) = pos.map(|p| self.line_col(p)).unwrap_or((0, 0));
        Location {
            file: self.file.clone(),
            line,
            column,
            field: field.to_string(),
        }
    }

    pub fn error(&self, pos: Option<usize>, field: &str, message: impl Into<String>) -> Error {
        Error::Definition {
            loc: Box::new(self.loc(pos, field)),
            message: message.into(),
        }
    }
}

/// Parses TOML into a node tree with positions.
pub fn parse_toml(src: &Source) -> Result<Node> {
    let doc = toml_edit::Document::parse(src.text.as_str()).map_err(|e| {
        let pos = e.span().map(|s| s.start);
        let msg = e.message().trim().to_string();
        src.error(pos, "", format!("invalid TOML: {msg}"))
    })?;
    Ok(from_table(doc.as_table(), Some(0)))
}

fn from_table(t: &toml_edit::Table, pos: Option<usize>) -> Node {
    let mut entries = Vec::new();
    for (k, item) in t.iter() {
        let kpos = t.key(k).and_then(|k| k.span()).map(|s| s.start);
        entries.push((k.to_string(), from_item(item, kpos)));
    }
    Node {
        pos: t.span().map(|s| s.start).or(pos),
        value: Value::Table(entries),
    }
}

fn from_item(item: &toml_edit::Item, kpos: Option<usize>) -> Node {
    match item {
        toml_edit::Item::None => Node {
            pos: kpos,
            value: Value::Other("nothing"),
        },
        toml_edit::Item::Value(v) => from_value(v, kpos),
        toml_edit::Item::Table(t) => from_table(t, kpos),
        toml_edit::Item::ArrayOfTables(a) => Node {
            pos: kpos,
            value: Value::Array(a.iter().map(|t| from_table(t, kpos)).collect()),
        },
    }
}

fn from_value(v: &toml_edit::Value, kpos: Option<usize>) -> Node {
    use toml_edit::Value as V;
    let pos = kpos.or(v.span().map(|s| s.start));
    let value = match v {
        V::String(s) => Value::Str(s.value().clone()),
        V::Integer(i) => Value::Int(*i.value()),
        V::Float(f) => Value::Float(*f.value()),
        V::Boolean(b) => Value::Bool(*b.value()),
        V::Datetime(_) => Value::Other("a datetime"),
        V::Array(a) => Value::Array(
            a.iter()
                .map(|x| from_value(x, x.span().map(|s| s.start)))
                .collect(),
        ),
        V::InlineTable(t) => {
            let mut entries = Vec::new();
            for (k, x) in t.iter() {
                let kp = t.key(k).and_then(|k| k.span()).map(|s| s.start);
                entries.push((k.to_string(), from_value(x, kp)));
            }
            Value::Table(entries)
        }
    };
    Node { pos, value }
}

/// Parses JSON into a node tree with positions (a small parser of our own:
/// serde_json keeps no positions once parsing succeeds).
pub fn parse_json(src: &Source) -> Result<Node> {
    let mut p = JsonParser {
        s: src.text.as_bytes(),
        i: 0,
    };
    let fail = |pos: usize, msg: &str| src.error(Some(pos), "", format!("invalid JSON: {msg}"));
    p.ws();
    let node = p.value(0).map_err(|(pos, m)| fail(pos, &m))?;
    p.ws();
    if p.i != p.s.len() {
        return Err(fail(p.i, "trailing characters after the definition"));
    }
    Ok(node)
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

type JResult<T> = std::result::Result<T, (usize, String)>;

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> JResult<T> {
        Err((self.i.min(self.s.len()), msg.into()))
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> JResult<Node> {
        if depth > 64 {
            return self.err("nested too deeply");
        }
        let pos = self.i;
        let value = match self.s.get(self.i) {
            None => return self.err("unexpected end of input"),
            Some(b'{') => {
                self.i += 1;
                let mut entries: Vec<(String, Node)> = Vec::new();
                self.ws();
                if !self.eat(b"}") {
                    loop {
                        self.ws();
                        let kpos = self.i;
                        if self.s.get(self.i) != Some(&b'"') {
                            return self.err("expected a string key");
                        }
                        let k = self.string()?;
                        if entries.iter().any(|(e, _)| *e == k) {
                            return Err((kpos, format!("duplicate key {k:?}")));
                        }
                        self.ws();
                        if !self.eat(b":") {
                            return self.err("expected ':'");
                        }
                        self.ws();
                        let mut v = self.value(depth + 1)?;
                        v.pos = Some(kpos);
                        entries.push((k, v));
                        self.ws();
                        if self.eat(b",") {
                            continue;
                        }
                        if self.eat(b"}") {
                            break;
                        }
                        return self.err("expected ',' or '}'");
                    }
                }
                Value::Table(entries)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if !self.eat(b"]") {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(b",") {
                            continue;
                        }
                        if self.eat(b"]") {
                            break;
                        }
                        return self.err("expected ',' or ']'");
                    }
                }
                Value::Array(items)
            }
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') if self.eat(b"true") => Value::Bool(true),
            Some(b'f') if self.eat(b"false") => Value::Bool(false),
            Some(b'n') if self.eat(b"null") => Value::Other("null"),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
                if let Ok(i) = text.parse::<i64>() {
                    Value::Int(i)
                } else if let Ok(f) = text.parse::<f64>() {
                    Value::Float(f)
                } else {
                    return Err((start, format!("bad number {text:?}")));
                }
            }
            Some(_) => return self.err("expected a value"),
        };
        Ok(Node {
            pos: Some(pos),
            value,
        })
    }

    fn hex4(&mut self) -> JResult<u32> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|b| std::str::from_utf8(b).ok());
        // Four hex digits: from_str_radix alone would take a sign ("+041").
        let v = h
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        match v {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("bad \\u escape"),
        }
    }

    fn string(&mut self) -> JResult<String> {
        self.i += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated string");
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if !self.eat(b"\\u") {
                                    return self.err("lone surrogate in \\u escape");
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err("bad surrogate pair");
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            match char::from_u32(cp) {
                                Some(ch) => ch,
                                None => return self.err("bad \\u escape"),
                            }
                        }
                        _ => return self.err("bad escape"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return self.err("control character in string"),
                c => out.push(c),
            }
        }
        String::from_utf8(out).or_else(|_| self.err("string is not valid UTF-8"))
    }
}

/// Reads one table, tracking which keys were used so unknown keys are errors.
pub struct Table<'a> {
    pub src: &'a Source,
    pub path: String,
    pub node: &'a Node,
    entries: &'a [(String, Node)],
    used: RefCell<Vec<&'a str>>,
}

impl<'a> Table<'a> {
    pub fn new(src: &'a Source, path: &str, node: &'a Node) -> Result<Table<'a>> {
        match &node.value {
            Value::Table(entries) => Ok(Table {
                src,
                path: path.to_string(),
                node,
                entries,
                used: RefCell::new(Vec::new()),
            }),
            _ => Err(src.error(
                node.pos,
                path,
                format!("expected a table, found {}", node.type_name()),
            )),
        }
    }

    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        let (k, n) = self.entries.iter().find(|(k, _)| k == key)?;
        self.used.borrow_mut().push(k.as_str());
        Some(n)
    }

    pub fn entries(&self) -> &'a [(String, Node)] {
        for (k, _) in self.entries {
            self.used.borrow_mut().push(k.as_str());
        }
        self.entries
    }

    pub fn err(&self, key: &str, node: Option<&Node>, msg: impl Into<String>) -> Error {
        let pos = node.and_then(|n| n.pos).or(self.node.pos);
        self.src.error(pos, &self.field(key), msg)
    }

    pub fn loc(&self, key: &str) -> Location {
        let pos = self
            .entries
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, n)| n.pos)
            .or(self.node.pos);
        self.src.loc(pos, &self.field(key))
    }

    fn type_err(&self, key: &str, n: &Node, want: &str) -> Error {
        self.err(
            key,
            Some(n),
            format!("expected {want}, found {}", n.type_name()),
        )
    }

    pub fn str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match &n.value {
                Value::Str(s) => Ok(Some(s.clone())),
                _ => Err(self.type_err(key, n, "a string")),
            },
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match &n.value {
                Value::Bool(b) => Ok(Some(*b)),
                _ => Err(self.type_err(key, n, "true or false")),
            },
        }
    }

    /// A list of strings; a single string is accepted as a list of one when `single` is set.
    pub fn str_list(&self, key: &str, single: bool) -> Result<Option<Vec<String>>> {
        let Some(n) = self.get(key) else {
            return Ok(None);
        };
        match &n.value {
            Value::Str(s) if single => Ok(Some(vec![s.clone()])),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, x)| match &x.value {
                    Value::Str(s) => Ok(s.clone()),
                    _ => Err(self.src.error(
                        x.pos.or(n.pos),
                        &format!("{}[{i}]", self.field(key)),
                        format!("expected a string, found {}", x.type_name()),
                    )),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            _ => Err(self.type_err(key, n, "an array of strings")),
        }
    }

    /// A table of string values (numbers and booleans are written as text), in source order.
    pub fn str_map(&self, key: &str) -> Result<Option<Vec<(String, String)>>> {
        let Some(n) = self.get(key) else {
            return Ok(None);
        };
        let Value::Table(entries) = &n.value else {
            return Err(self.type_err(key, n, "a table of strings"));
        };
        entries
            .iter()
            .map(|(k, v)| {
                let s = match &v.value {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => f.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(self.src.error(
                            v.pos.or(n.pos),
                            &format!("{}.{k}", self.field(key)),
                            format!("expected a string, found {}", v.type_name()),
                        ));
                    }
                };
                Ok((k.clone(), s))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    pub fn table(&self, key: &str) -> Result<Option<Table<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => Table::new(self.src, &self.field(key), n).map(Some),
        }
    }

    /// Errors on the first key that was never read.
    pub fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        for (k, n) in self.entries {
            if !used.contains(&k.as_str()) {
                return Err(self.src.error(
                    n.pos.or(self.node.pos),
                    &self.field(k),
                    format!("unknown field `{k}`"),
                ));
            }
        }
        Ok(())
    }
}

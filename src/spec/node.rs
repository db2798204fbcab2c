//! A small value tree with source positions, built from TOML (with spans) or
//! JSON (spans where the parser can give them), and a reader that turns
//! it into typed values with errors naming file, line and field.

use crate::error::{Error, Location, Result};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

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
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.text[..pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        (line, col)
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

/// Parses JSON into a node tree (positions are not kept; errors name the field).
pub fn parse_json(src: &Source) -> Result<Node> {
    let v: serde_json::Value = serde_json::from_str(&src.text).map_err(|e| Error::Definition {
        loc: Box::new(Location {
            file: src.file.clone(),
            line: e.line(),
            column: e.column(),
            field: String::new(),
        }),
        message: format!("invalid JSON: {e}"),
    })?;
    Ok(from_json(&v))
}

fn from_json(v: &serde_json::Value) -> Node {
    use serde_json::Value as J;
    let value = match v {
        J::Null => Value::Other("null"),
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::Str(s.clone()),
        J::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        J::Object(o) => Value::Table(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    };
    Node { pos: None, value }
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

pub fn display_path(p: &Path) -> String {
    p.display().to_string()
}

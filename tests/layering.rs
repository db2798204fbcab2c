//! The crate's modules import one way: each top-level module of `src/` may
//! use only the modules below it in [`ORDER`] (which is also the table in
//! `src/lib.rs`). Read from the source: every `crate::NAME` outside
//! comments counts, in code and in unit tests alike. A module above its
//! place, or two modules that import each other, fail the test with the
//! file and line of each offending import.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Top-level modules, from the top (the facade) down to the leaves.
const ORDER: &[&str] = &[
    "fuzzing",
    "api",
    "dockerfile",
    "flyte",
    "export",
    "exec",
    "plan",
    "spec",
    "sbom",
    "python",
    "debian",
    "sandbox",
    "output",
    "registry",
    "layer",
    "store",
    "progress",
    "net",
    "util",
    "oci",
    "digest",
    "error",
];

/// One import of `to` by a file of module `from`.
#[derive(Debug)]
struct Import {
    from: String,
    to: String,
    at: String,
}

/// The `crate::NAME` references of one file's text, with their lines,
/// leaving out comments.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` names several.
            if name.is_empty() && after.starts_with('{') {
                let group = &after[1..after.find('}').unwrap_or(after.len())];
                for part in group.split(',') {
                    let m: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !m.is_empty() {
                        out.push((n + 1, m));
                    }
                }
            } else if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

/// Every import between different top-level modules under `src`.
fn imports(src: &Path) -> Vec<Import> {
    fn walk(dir: &Path, src: &Path, out: &mut Vec<Import>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, src, out);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
            let top = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if top == "main" || top == "lib" {
                continue;
            }
            for (line, to) in references(&fs::read_to_string(&p).unwrap()) {
                if to != top {
                    out.push(Import {
                        from: top.clone(),
                        to,
                        at: format!("src/{rel}:{line}"),
                    });
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(src, src, &mut out);
    out
}

/// What breaks the order: imports of a module at or above the importer,
/// and modules missing from [`ORDER`].
fn violations(imports: &[Import]) -> Vec<String> {
    let rank = |m: &str| ORDER.iter().position(|x| *x == m);
    let mut bad = Vec::new();
    for i in imports {
        match (rank(&i.from), rank(&i.to)) {
            (Some(f), Some(t)) if t <= f => bad.push(format!(
                "{}: {} imports {}, which stands above it",
                i.at, i.from, i.to
            )),
            (None, _) => bad.push(format!("{}: module {} is not in ORDER", i.at, i.from)),
            (_, None) => bad.push(format!("{}: module {} is not in ORDER", i.at, i.to)),
            _ => {}
        }
    }
    bad
}

/// Module pairs that import each other (a cycle of two), for the message.
fn cycles(imports: &[Import]) -> Vec<String> {
    let mut edges: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for i in imports {
        edges.entry((&i.from, &i.to)).or_insert(&i.at);
    }
    edges
        .iter()
        .filter(|((a, b), _)| a < b && edges.contains_key(&(*b, *a)))
        .map(|((a, b), at)| format!("{a} ⇄ {b} ({at} and {})", edges[&(*b, *a)]))
        .collect()
}

#[test]
fn modules_import_only_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let imports = imports(&src);
    assert!(
        imports.len() > 100,
        "the reader finds the crate's imports ({} found)",
        imports.len()
    );
    let mut bad = violations(&imports);
    bad.extend(cycles(&imports).into_iter().map(|c| format!("cycle: {c}")));
    assert!(
        bad.is_empty(),
        "imports against the order:\n{}",
        bad.join("\n")
    );
    // Every top-level module of src/ has its place.
    for e in fs::read_dir(&src).unwrap().flatten() {
        let name = e
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        assert!(
            name == "main" || name == "lib" || ORDER.contains(&name.as_str()),
            "src/{name} has no place in ORDER"
        );
    }
}

#[test]
fn the_reader_catches_an_upward_import_and_a_cycle() {
    let refs = references(
        "use crate::store::Store; // crate::exec in a comment\nuse crate::{digest::Digest, error::Result};\nlet x = crate::util::time::now_secs();\n",
    );
    let names: Vec<&str> = refs.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["store", "digest", "error", "util"]);
    let imp = |from: &str, to: &str| Import {
        from: from.into(),
        to: to.into(),
        at: format!("src/{from}/x.rs:1"),
    };
    let bad = violations(&[imp("store", "exec"), imp("exec", "store")]);
    assert_eq!(
        bad,
        ["src/store/x.rs:1: store imports exec, which stands above it"]
    );
    assert_eq!(
        cycles(&[imp("store", "exec"), imp("exec", "store")]).len(),
        1
    );
    assert_eq!(violations(&[imp("nowhere", "store")]).len(), 1);
}

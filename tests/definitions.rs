//! A corpus of bad definitions (testdata/definitions): each file's first
//! line says which error it must give, with its line, column and field.

use imgbuild::spec::{self, Input};
use std::path::Path;

#[test]
fn every_bad_definition_reports_its_position() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/definitions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is missing");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let want = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .expect("first line is `# expect: …`");
        let err =
            spec::load(Input::Path(&f), None).expect_err(&format!("{} should fail", f.display()));
        assert_eq!(err.exit_code(), 2, "{}: {err}", f.display());
        let got = err.to_string();
        let got = got
            .strip_prefix(&format!("{}:", f.display()))
            .unwrap_or(&got);
        assert!(
            got.starts_with(want),
            "{}\n got: {got}\nwant: {want}…",
            f.display()
        );
    }
}

use super::*;

fn p(s: &str) -> GitSource {
    GitSource::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn e(s: &str) -> String {
    GitSource::parse(s).expect_err(s)
}

#[test]
fn git_sources_are_told_apart_as_buildkit_does() {
    for yes in [
        "https://h.example/org/repo.git",
        "http://127.0.0.1:8080/repo.git#main:sub",
        "HTTPS://h.example/repo.git?branch=main",
        "git://h.example/repo",
        "ssh://git@h.example/org/repo",
        "git@h.example:org/repo.git",
        "deploy_key-1@git.h.example:repo",
    ] {
        assert!(is_git_source(yes), "{yes}");
    }
    for no in [
        "https://h.example/archive.tar.gz",
        "https://h.example/repo.git/file",
        "https://h.example/x?y=.git",
        "https://h.example.git",
        "ftp://h.example/repo.git",
        "file:///srv/repo.git",
        "repo.git",
        "./a@b:c",
        "dir/a@b:c",
        "a@b/c:d",
    ] {
        assert!(!is_git_source(no), "{no}");
    }
}

#[test]
fn fragments_name_a_ref_and_a_subdir() {
    let s = p("https://h.example/repo.git#v1.2:docs/api/");
    assert_eq!(s.remote, "https://h.example/repo.git");
    assert_eq!(s.reference.as_deref(), Some("v1.2"));
    assert_eq!(s.subdir, "docs/api");
    assert!(s.submodules && s.commit.is_none());

    let s = p("git@h.example:org/repo.git#:sub");
    assert_eq!(s.remote, "git@h.example:org/repo.git");
    assert_eq!(s.reference, None);
    assert_eq!(s.subdir, "sub");

    let s = p("https://h.example/repo.git#");
    assert_eq!((s.reference, s.subdir.as_str()), (None, ""));
    let s = p("https://h.example/repo.git#refs/pull/42/head");
    assert_eq!(s.reference.as_deref(), Some("refs/pull/42/head"));
    assert_eq!(p("https://h.example/repo.git#main:./a/./b").subdir, "a/b");
}

#[test]
fn queries_name_branches_tags_checksums_and_subdirs() {
    let s = p("https://h.example/repo.git?branch=main&subdir=docs");
    assert_eq!(s.reference.as_deref(), Some("refs/heads/main"));
    assert_eq!(s.subdir, "docs");
    let s = p("https://h.example/repo.git?tag=v1&checksum=abcdef1");
    assert_eq!(s.reference.as_deref(), Some("refs/tags/v1"));
    assert_eq!(s.commit.as_deref(), Some("abcdef1"));
    let s = p("https://h.example/repo.git?ref=pull/42/head&submodules=false");
    assert_eq!(s.reference.as_deref(), Some("pull/42/head"));
    assert!(!s.submodules);
    // A full commit alone is the ref.
    let full = "0123456789abcdef0123456789abcdef01234567";
    let s = p(&format!("https://h.example/repo.git?commit={full}"));
    assert_eq!(s.reference.as_deref(), Some(full));
    // A query and a fragment that say different things.
    let s = p("https://h.example/repo.git?ref=main#:sub%20dir");
    assert_eq!(s.reference.as_deref(), Some("main"));
    assert_eq!(s.subdir, "sub%20dir", "a fragment is taken as written");
    assert_eq!(
        p("https://h.example/repo.git?subdir=a%20b").subdir,
        "a b",
        "query values are decoded"
    );
}

#[test]
fn bad_sources_say_what_is_wrong_without_credentials() {
    let m = e("https://u:secret@h.example/repo.git?branch=a&tag=b");
    assert!(m.contains("only one of ref=, branch= and tag="), "{m}");
    assert!(
        !m.contains("secret") && m.contains("https://h.example/repo.git"),
        "{m}"
    );
    assert!(e("https://h.example/repo.git?ref=a#b").contains("both in the query and after #"));
    assert!(e("https://h.example/repo.git?subdir=a#:b").contains("both in the query"));
    assert!(e("https://h.example/repo.git?depth=1").contains("unknown query depth="));
    assert!(e("https://h.example/repo.git?checksum=xyz").contains("checksum \"xyz\""));
    assert!(e("https://h.example/repo.git#-upload-pack=x").contains("must not start with -"));
    assert!(e("https://h.example/repo.git#a..b").contains("not a valid git ref"));
    assert!(e("https://h.example/repo.git#main:../etc").contains("inside the repository"));
    assert!(e("https://h.example/repo.git?submodules=maybe").contains("true or false"));
}

#[test]
fn display_and_host_leave_credentials_out() {
    let s = p("https://tok:pw@h.example:8443/repo.git#main:docs");
    assert_eq!(s.display(), "https://h.example:8443/repo.git#main:docs");
    assert_eq!(s.host(), "h.example:8443");
    assert_eq!(p("git@h.example:org/r.git").host(), "h.example");
    let text = "fatal: unable to access 'https://tok:pw@h.example:8443/repo.git/': 403";
    let out = scrub(text, &s.remote);
    assert!(!out.contains("pw") && !out.contains("tok"), "{out}");
    assert!(out.contains("https://h.example:8443/repo.git/"), "{out}");
}

#[test]
fn checksums_match_the_commit_or_its_tag() {
    let r = Resolved {
        commit: "abcdef0123456789abcdef0123456789abcdef01".into(),
        refname: Some("refs/tags/v1".into()),
        tag_object: Some("1111111111111111111111111111111111111111".into()),
    };
    assert!(r.matches("ABCDEF0"));
    assert!(r.matches(&r.commit.clone()));
    assert!(r.matches("1111111"));
    assert!(!r.matches("abcdef1"));
    assert!(!r.matches(""));
    assert!(check_checksum("abc").is_err() && check_checksum("abcdef0").is_ok());
    assert!(is_full_hash(&r.commit) && !is_full_hash("abcdef0"));
}

#[test]
fn pem_lines_are_64_characters() {
    let body = base64_pem(&[7u8; 100]);
    let lines: Vec<&str> = body.lines().collect();
    // 100 bytes are 136 base64 characters.
    assert_eq!(
        lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
        [64, 64, 8]
    );
    assert!(body.ends_with('\n'));
}

#[test]
fn git_gets_the_callers_proxy_and_ca_bundle() {
    let t = tempfile::tempdir().unwrap();
    let get = |g: &Git, k: &str| {
        g.env
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    let plain = Git::new(&HttpConfig::default(), t.path()).unwrap();
    assert_eq!(get(&plain, "GIT_SSL_CAINFO"), None, "git's own roots");
    assert_eq!(get(&plain, "GIT_CONFIG_COUNT"), None);
    assert_eq!(get(&plain, "GIT_TERMINAL_PROMPT").as_deref(), Some("0"));

    let config = HttpConfig {
        proxy: Some(super::super::HttpProxy::new("http://u:p@127.0.0.1:3128").unwrap()),
        system_ca_file: Some(t.path().join("none.pem")),
        ..HttpConfig::default()
    };
    let g = Git::new(&config, t.path()).unwrap();
    assert_eq!(get(&g, "GIT_CONFIG_KEY_0").as_deref(), Some("http.proxy"));
    assert_eq!(
        get(&g, "GIT_CONFIG_VALUE_0").as_deref(),
        Some("http://u:p@127.0.0.1:3128")
    );
    let bundle = get(&g, "GIT_SSL_CAINFO").expect("a bundle");
    assert!(bundle.starts_with(t.path().to_str().unwrap()), "{bundle}");
    assert!(Path::new(&bundle).is_file());
    drop(g);
    assert!(!Path::new(&bundle).exists(), "removed with the value");
}

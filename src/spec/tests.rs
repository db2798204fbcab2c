use super::*;

fn load_str(text: &str, profile: Option<&str>) -> Result<Definition> {
    load(
        Input::Text {
            text: text.to_string(),
            name: PathBuf::from("imgbuild.toml"),
            context: PathBuf::from("/ctx"),
        },
        profile,
    )
}

fn err_text(text: &str) -> String {
    load_str(text, None).unwrap_err().to_string()
}

const FULL: &str = r#"
[images.app]
base = "debian"
python = "3.12"
registry = "registry.example.com/team/"
name = "app"
tag = "auto"
platforms = ["linux/amd64", "linux/arm64/v8"]

[[images.app.layers]]
apt_packages = ["curl", "git"]

[[images.app.layers]]
uv_project = "pyproject.toml"
install_project = true
index_url = "https://mirror.example/simple"

[[images.app.layers]]
source_folder = "src"
dst = "/root"
copy_contents_only = true
chown = "1000:1000"
chmod = "0755"

[[images.app.layers]]
env = { LOG_LEVEL = "info", WORKERS = 4 }

[[images.app.layers]]
commands = ["python -m compileall /root"]

[[images.app.layers]]
expose = [8080, "53/udp"]

[[images.app.layers]]
entrypoint = ["python", "-m", "app"]

[images.app.profiles.production]
base = "oci:/layouts/base:v1"
platforms = ["linux/amd64"]
env = { STAGE = "prod" }

[images.worker]
base = "app"
[[images.worker.layers]]
cmd = ["worker"]
"#;

#[test]
fn parses_every_field() {
    let d = load_str(FULL, None).unwrap();
    assert_eq!(d.images.len(), 2);
    let app = &d.images[0];
    assert_eq!(app.base, Base::Debian);
    assert_eq!(app.registry.as_deref(), Some("registry.example.com/team"));
    assert_eq!(app.tag, Tag::Auto);
    assert_eq!(
        app.platforms[1],
        Platform {
            os: "linux".into(),
            arch: "arm64".into(),
            variant: None
        }
    );
    assert_eq!(app.layers.len(), 7);
    assert_eq!(
        app.layers[2].kind,
        LayerKind::SourceFolder {
            src: "src".into(),
            dst: "/root".into(),
            copy_contents_only: true,
            chown: Some(Owner {
                uid: 1000,
                gid: 1000
            }),
            chmod: Some(0o755),
            exclude: vec![],
        }
    );
    assert_eq!(
        app.layers[3].kind,
        LayerKind::Env(vec![
            ("LOG_LEVEL".into(), "info".into()),
            ("WORKERS".into(), "4".into())
        ])
    );
    assert_eq!(
        app.layers[5].kind,
        LayerKind::Expose(vec!["8080/tcp".into(), "53/udp".into()])
    );
    assert_eq!(app.layers[2].loc.line, 19);
    assert_eq!(d.images[1].base, Base::Image("app".into()));
}

#[test]
fn profile_overrides_base_platforms_and_env() {
    let d = load_str(FULL, Some("production")).unwrap();
    let app = &d.images[0];
    assert_eq!(
        app.base,
        Base::Layout {
            dir: "/layouts/base".into(),
            tag: Some("v1".into())
        }
    );
    assert_eq!(app.platforms.len(), 1);
    assert_eq!(
        app.layers.last().unwrap().kind,
        LayerKind::Env(vec![("STAGE".into(), "prod".into())])
    );
    let e = load_str(FULL, Some("staging")).unwrap_err();
    assert!(
        e.to_string().contains("profile \"staging\" is not defined"),
        "{e}"
    );
}

#[test]
fn json_is_the_same_model() {
    let json = r#"{"images": {"app": {"base": "scratch", "tag": "v1",
        "layers": [{"source_folder": "src", "copy_contents_only": true}, {"env": {"A": "1"}}]}}}"#;
    let d = load(
        Input::Text {
            text: json.into(),
            name: "def.json".into(),
            context: ".".into(),
        },
        None,
    )
    .unwrap();
    assert_eq!(d.images[0].tag, Tag::Explicit("v1".into()));
    assert_eq!(d.images[0].layers.len(), 2);
    let bad = r#"{"images": {"app": {"base": "scratch", "layers": [{"source_folder": 3}]}}}"#;
    let e = load(
        Input::Text {
            text: bad.into(),
            name: "def.json".into(),
            context: ".".into(),
        },
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("images.app.layers[0].source_folder"),
        "{e}"
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            "[images.a]\nbase = \"scratch\"\n[[images.a.layers]]\nsource_folder = \"x\"\ndts = \"/y\"\n",
            "imgbuild.toml:5:1: images.a.layers[0].dts: unknown field `dts`",
        ),
        (
            "[images.a]\nbase = \"scratch\"\n[[images.a.layers]]\nenv = { A = \"1\" }\nuser = \"x\"\n",
            "imgbuild.toml:5:1: images.a.layers[0].user: a layer has one kind",
        ),
        (
            "[images.a]\nbase = \"scratch\"\nplatforms = [\"windows/amd64\"]\n",
            "imgbuild.toml:3:1: images.a.platforms: platform \"windows/amd64\": only linux",
        ),
        (
            "[images.a]\nbase = \"scratch\"\ntag = \"bad tag\"\n",
            "imgbuild.toml:3:1: images.a.tag: tag \"bad tag\"",
        ),
        (
            "[images.a]\nbase = \"scratch\"\n\n[[images.a.layers]]\ncopy_contents_only = true\n",
            "imgbuild.toml:4:1: images.a.layers[0]: a layer needs one kind key",
        ),
        (
            "[images.a]\nbase = \"scratch\"\n[[images.a.layers]]\nsource_folder = \"s\"\nchown = \"app\"\n",
            "imgbuild.toml:5:1: images.a.layers[0].chown: owner \"app\"",
        ),
        (
            "[images.a]\nbase = \"scratch\"\n[[images.a.layers]]\nentrypoint = \"python app.py\"\n",
            "imgbuild.toml:4:1: images.a.layers[0].entrypoint: `entrypoint` takes a list",
        ),
        (
            "[images.a]\nbase = \"b\"\n[images.b]\nbase = \"a\"\n",
            "imgbuild.toml:2:1: images.a.base: base images form a cycle",
        ),
        (
            "[images.a]\nbase = \"scratch\"\nname = \"App\"\n",
            "imgbuild.toml:3:1: images.a.name: repository name \"App\"",
        ),
        (
            "[images.a]\npython = \"3.12\"\n",
            "imgbuild.toml:1:1: images.a.base: missing `base`",
        ),
        (
            "[images.a]\nbase = \"scratch\"\nlayers = 3\n",
            "imgbuild.toml:3:1: images.a.layers: expected an array",
        ),
        (
            "[images.a]\nbase = \"scratch\"\n[[images.a.layers]]\nexpose = [70000]\n",
            "imgbuild.toml:4:11: images.a.layers[0].expose: port \"70000\"",
        ),
        (
            "[images.a]\nbase = = 1\n",
            "imgbuild.toml:2:8: invalid TOML",
        ),
        (
            "[imagez.a]\nbase = \"scratch\"\n",
            "imgbuild.toml:1:2: imagez: unknown field",
        ),
    ];
    for (text, want) in cases {
        let got = err_text(text);
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}…");
    }
}

#[test]
fn base_forms() {
    assert_eq!(parse_base("scratch"), Ok(Base::Scratch));
    assert_eq!(
        parse_base("oci:out/app"),
        Ok(Base::Layout {
            dir: "out/app".into(),
            tag: None
        })
    );
    assert_eq!(
        parse_base("oci:./x:v2"),
        Ok(Base::Layout {
            dir: "./x".into(),
            tag: Some("v2".into())
        })
    );
    assert_eq!(
        parse_base("python:3.12-slim"),
        Ok(Base::Ref("python:3.12-slim".into()))
    );
    assert_eq!(
        parse_base("localhost:5000/a/b@sha256:00"),
        Ok(Base::Ref("localhost:5000/a/b@sha256:00".into()))
    );
    // A bare word that is not an image of the file is a Docker Hub image.
    let d = load_str("[images.a]\nbase = \"alpine\"\n", None).unwrap();
    assert_eq!(d.images[0].base, Base::Ref("alpine".into()));
}

#[test]
fn json_errors_have_positions_too() {
    let bad = "{\"images\": {\"app\": {\"base\": \"scratch\",\n  \"layers\": [{\"source_folder\": \"src\",\n    \"dts\": \"/x\"}]}}}";
    let e = load(
        Input::Text {
            text: bad.into(),
            name: "def.json".into(),
            context: ".".into(),
        },
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("def.json:3:5: images.app.layers[0].dts: unknown field"),
        "{e}"
    );
    for (text, want) in [
        (
            "{\"images\": {\"a\": {\"base\": \"scratch\",}}}",
            "def.json:1:37: invalid JSON: expected a string key",
        ),
        (
            "{\"images\": {\"a\": {}, \"a\": {}}}",
            "def.json:1:22: invalid JSON: duplicate key \"a\"",
        ),
        (
            "{\"images\": {\"a\": {\"base\": \"\\u+041\"}}}",
            "def.json:1:30: invalid JSON: bad \\u escape",
        ),
        (
            "{\"images\": {\"a\": {\"base\": \"\\u00e4\\ud83d\\ude00\"}}} x",
            "def.json:1:51: invalid JSON: trailing characters",
        ),
        // A bad escape whose character is not ASCII: the position names
        // that character (slicing inside it panicked).
        (
            "{\"images\": {\"a\": {\"base\": \"x\\\u{e9}\"}}}",
            "def.json:1:30: invalid JSON: bad escape",
        ),
        // Columns count characters, not bytes.
        (
            "{\"images\": {\"\u{e9}\u{e9}\": {}, \"\u{e9}\u{e9}\": {}}}",
            "def.json:1:23: invalid JSON: duplicate key \"\u{e9}\u{e9}\"",
        ),
    ] {
        let e = load(
            Input::Text {
                text: text.into(),
                name: "def.json".into(),
                context: ".".into(),
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with(want), "\n got: {e}\nwant: {want}");
    }
    let ok = "{\"images\": {\"a\": {\"base\": \"scratch\", \"tag\": \"v\\u0031\"}}}";
    let d = load(
        Input::Text {
            text: ok.into(),
            name: "def.json".into(),
            context: ".".into(),
        },
        None,
    )
    .unwrap();
    assert_eq!(d.images[0].tag, Tag::Explicit("v1".into()));
}

#[test]
fn a_repository_name_longer_than_a_reference_allows_is_refused() {
    let e = err_text(&format!(
        "[images.app]\nbase = \"scratch\"\nname = \"{}\"\n",
        "a".repeat(300)
    ));
    assert!(
        e.contains("images.app.name: repository name of 300 characters: names are at most 255"),
        "{e}"
    );
}

#[test]
fn durations_and_their_limits() {
    assert_eq!(parse_duration("90"), Ok(90));
    assert_eq!(parse_duration(" 10m "), Ok(600));
    assert_eq!(parse_duration("2h"), Ok(7200));
    assert_eq!(parse_duration("7d"), Ok(604_800));
    assert_eq!(parse_duration("0"), Ok(0));
    // 213503982334601 days is the last whole day of u64 seconds; the
    // multiply once wrapped (release) or panicked (debug) past it.
    assert_eq!(
        parse_duration("213503982334601d"),
        Ok(213_503_982_334_601 * 86_400)
    );
    for long in [
        "213503982334602d",
        "999999999999999d",
        "99999999999999999999",
    ] {
        let e = parse_duration(long).unwrap_err();
        assert!(e.contains("is too long"), "{long}: {e}");
    }
    for (bad, says) in [
        ("soon", "is not like"),
        ("d", "is not like"),
        ("7x", "unit must be"),
    ] {
        let e = parse_duration(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

/// Sizes mean what docker's size flags mean: binary units, either case,
/// optional `i`/`b`; anything else is refused by name.
#[test]
fn sizes_are_read_as_docker_reads_them() {
    for (s, want) in [
        ("4096", 4096),
        ("4096b", 4096),
        ("1k", 1024),
        ("1KiB", 1024),
        ("512m", 512 << 20),
        ("512 MB", 512 << 20),
        ("20g", 20 << 30),
        ("1.5GiB", 3 << 29),
        ("2t", 2 << 40),
        ("0", 0),
    ] {
        assert_eq!(super::parse_size(s), Ok(want), "{s}");
    }
    for s in [
        "",
        "g",
        "12x",
        "1gg",
        "1bb",
        "-1g",
        "1.2.3m",
        "1e9",
        "99999999999p",
    ] {
        let e = super::parse_size(s).unwrap_err();
        assert!(e.contains(&format!("{s:?}")), "{s}: {e}");
    }
}

#[test]
fn a_registry_cache_can_be_named_in_the_definition() {
    let d = load_str(
        "cache = { from = [\"ci.example/team/cache\", \"type=registry,ref=ci.example/base/cache\"], to = \"type=registry,ref=ci.example/team/cache,mode=max\" }\n[images.app]\nbase = \"scratch\"\n",
        None,
    )
    .unwrap();
    let from: Vec<String> = d.cache.from.iter().map(|c| c.repo.to_string()).collect();
    assert_eq!(from, ["ci.example/team/cache", "ci.example/base/cache"]);
    let to = d.cache.to.unwrap();
    assert!(to.max);
    assert_eq!(to.repo.repository, "team/cache");
    // One string is a list of one.
    let d = load_str(
        "[cache]\nfrom = \"ci.example/c\"\n[images.app]\nbase = \"scratch\"\n",
        None,
    )
    .unwrap();
    assert_eq!(d.cache.from.len(), 1);
    assert!(d.cache.to.is_none());
    // Bad values name the file, the line and the field.
    let e = err_text("[cache]\nto = \"type=local,dest=x\"\n[images.app]\nbase = \"scratch\"\n");
    assert!(
        e.contains("imgbuild.toml:2") && e.contains("cache.to"),
        "{e}"
    );
    assert!(e.contains("only type=registry"), "{e}");
    let e = err_text("[cache]\nfrom = [\"r/c\"]\nsize = 3\n[images.app]\nbase = \"scratch\"\n");
    assert!(
        e.contains("cache.size") && e.contains("unknown field"),
        "{e}"
    );
}

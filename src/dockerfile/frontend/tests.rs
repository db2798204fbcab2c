//! The Dockerfile translated without building: which stages, and what
//! their instructions say once variables are expanded.

use super::*;

/// `text` as a Dockerfile in a fresh context (with a file `f.txt`),
/// translated for `target` with `args` as `--build-arg`s.
fn translate(text: &str, target: Option<&str>, args: &[(&str, &str)]) -> Result<Definition> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
    std::fs::write(dir.path().join("f.txt"), "f\n").unwrap();
    let build_args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load(&FrontendOptions {
        dockerfile: &dir.path().join("Dockerfile"),
        context: dir.path(),
        build_args: &build_args,
        target,
        platforms: vec![Platform::host()],
        name: "img".into(),
        tag: Tag::Auto,
        contexts: &BTreeMap::new(),
    })
}

fn ids(def: &Definition) -> Vec<&str> {
    def.images.iter().map(|i| i.id.as_str()).collect()
}

fn image<'a>(def: &'a Definition, id: &str) -> &'a ImageDef {
    def.images.iter().find(|i| i.id == id).unwrap()
}

/// The labels an image's LABEL instructions set, in order.
fn labels(img: &ImageDef) -> Vec<(String, String)> {
    img.layers
        .iter()
        .filter_map(|l| match &l.kind {
            LayerKind::Labels(v) => Some(v.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn label(img: &ImageDef, k: &str) -> String {
    labels(img)
        .into_iter()
        .rev()
        .find(|(a, _)| a == k)
        .unwrap_or_else(|| panic!("no label {k}"))
        .1
}

fn scripts(img: &ImageDef) -> Vec<String> {
    img.layers
        .iter()
        .filter_map(|l| match &l.kind {
            LayerKind::Commands { commands, .. } => Some(commands.join("\n")),
            _ => None,
        })
        .collect()
}

fn err(text: &str, target: Option<&str>) -> String {
    match translate(text, target, &[]) {
        Ok(def) => panic!("no error; stages {:?}", ids(&def)),
        Err(e) => e.to_string(),
    }
}

/// A stage the target does not reach is not translated: what its
/// instructions mean cannot fail the build (BuildKit dispatches only the
/// reached stages). Syntax, and what BuildKit checks for every stage
/// (parsing, FROM lines, --from values), still applies to the whole file.
#[test]
fn only_the_stages_the_target_reaches_are_translated() {
    let text = "FROM scratch AS base\n\
                COPY f.txt /f.txt\n\
                \n\
                FROM base AS app\n\
                ARG UID\n\
                ARG GID\n\
                COPY --chown=$UID:$GID f.txt /home/\n\
                ADD git@example.com:team/repo.git /src\n\
                RUN --mount=type=bind,from=base,target=/b true\n";
    let def = translate(text, Some("base"), &[]).unwrap();
    assert_eq!(ids(&def), ["base"]);
    // The target itself still fails on them, naming the line.
    let e = err(text, None);
    assert!(
        e.contains("Dockerfile:7:1: COPY: --chown=:: expected USER[:GROUP]"),
        "{e}"
    );

    // Reached through COPY --from by index and by name, and FROM <stage>.
    let graph = "FROM scratch AS a\nCOPY f.txt /a\n\
                 FROM scratch AS b\nCOPY f.txt /b\n\
                 FROM scratch AS c\nCOPY --from=0 /a /a\n\
                 FROM scratch AS unused\nCOPY --chown=a:b:c f.txt /x\n\
                 FROM c AS d\nCOPY --from=B /b /b\n";
    let def = translate(graph, None, &[]).unwrap();
    assert_eq!(ids(&def), ["a", "b", "c", "d"]);
    let def = translate(graph, Some("c"), &[]).unwrap();
    assert_eq!(ids(&def), ["a", "c"]);

    // The whole file: unknown instructions and flags, HEALTHCHECK options,
    // --from with variables or a stage index that does not exist, and
    // every FROM line.
    let unused =
        |line: &str| format!("FROM scratch AS t\nCOPY f.txt /f\nFROM scratch AS u\n{line}\n");
    for (line, want) in [
        ("RUNN true", ":4:1: unknown instruction"),
        ("COPY --nope f.txt /f", ":4:6: unknown flag --nope"),
        (
            "HEALTHCHECK --interval=soon CMD true",
            ":4:1: HEALTHCHECK: --interval=soon",
        ),
        (
            "COPY --from=$X /a /a",
            ":4:1: COPY: --from=$X: variables are not expanded",
        ),
        (
            "COPY --from=7 /a /a",
            ":4:1: COPY: --from=7: the file has 2 stages",
        ),
    ] {
        let e = err(&unused(line), Some("t"));
        assert!(e.contains(want), "{line}: want {want:?} in {e}");
    }
    let e = err("FROM scratch AS t\nFROM $NOPE AS u\n", Some("t"));
    assert!(
        e.contains(":2:1: FROM: the image name \"$NOPE\" is empty once expanded"),
        "{e}"
    );

    // COPY --from reads an earlier stage only.
    let e = err(
        "FROM scratch AS t\nCOPY --from=u /x /x\nFROM scratch AS u\nCOPY f.txt /x\n",
        Some("t"),
    );
    assert!(
        e.contains(":2:1: COPY: --from=u: stage u is not before this one"),
        "{e}"
    );
}

/// BuildKit's scoping: a stage on an earlier stage starts with its ARGs
/// and ENVs; a redeclared ARG keeps the inherited value unless a
/// `--build-arg` or a global ARG gives one; predefined ARGs need
/// redeclaring; an ARG declared without a value is unset; RUN steps get
/// the ARGs with a value.
#[test]
fn a_stage_on_an_earlier_stage_keeps_its_args_and_envs() {
    let text = "ARG GLOBAL=g\n\
                ARG BOTH=from-global\n\
                ARG NOVALUE\n\
                FROM scratch AS base\n\
                ARG UID=1000\n\
                ARG BOTH=from-base\n\
                ARG MODE=arg\n\
                ENV HOME_DIR=/home/app MODE=env\n\
                \n\
                FROM base AS child\n\
                ARG UID\n\
                ARG GLOBAL\n\
                ARG BOTH\n\
                ARG NOVALUE\n\
                ARG TARGETARCH\n\
                ARG DEFAULTED=${UID}-x\n\
                COPY --chown=$UID f.txt $HOME_DIR/\n\
                LABEL uid=$UID global=$GLOBAL both=$BOTH novalue=${NOVALUE-unset} \
                      mode=$MODE arch=$TARGETARCH defaulted=$DEFAULTED\n\
                RUN true\n";
    let def = translate(text, None, &[]).unwrap();
    let child = image(&def, "child");
    assert_eq!(
        label(child, "uid"),
        "1000",
        "inherited from the parent stage"
    );
    assert_eq!(label(child, "global"), "g");
    assert_eq!(
        label(child, "both"),
        "from-global",
        "a redeclared global ARG takes the global value, as in BuildKit"
    );
    assert_eq!(label(child, "novalue"), "unset");
    assert_eq!(label(child, "mode"), "env", "the later ENV wins");
    assert_eq!(label(child, "arch"), Platform::host().arch);
    assert_eq!(label(child, "defaulted"), "1000-x");
    let copy = child
        .layers
        .iter()
        .find_map(|l| match &l.kind {
            LayerKind::SourceFile { dst, chown, .. } => Some((dst.clone(), *chown)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        copy,
        (
            "/home/app/".to_string(),
            Some(Owner {
                uid: 1000,
                gid: 1000
            })
        ),
        "the parent's ENV expands in the child"
    );
    assert_eq!(
        scripts(child),
        [
            "export UID=1000 BOTH=from-global GLOBAL=g TARGETARCH=".to_string()
                + &Platform::host().arch
                + " DEFAULTED=1000-x; true"
        ],
        "RUN gets the ARGs with a value, not those an ENV replaced"
    );

    // --build-arg wins over defaults, in the parent and the child.
    let def = translate(text, None, &[("UID", "2000"), ("NOVALUE", "given")]).unwrap();
    let child = image(&def, "child");
    assert_eq!(label(child, "uid"), "2000");
    assert_eq!(label(child, "novalue"), "given");
    assert_eq!(label(child, "defaulted"), "2000-x");

    // A stage on an image starts empty.
    let def = translate(
        "FROM scratch AS one\nARG A=1\nENV E=2\nFROM scratch AS two\nARG A\nLABEL a=${A-unset}\n",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(label(image(&def, "two"), "a"), "unset");
}

/// WORKDIR reaches the image as written: an absolute one keeps its
/// trailing slash (docker, BuildKit and buildah keep it); a relative one
/// is joined to the current one and cleaned, as BuildKit does.
#[test]
fn workdir_is_kept_as_written() {
    let def = translate(
        "FROM scratch AS one\nWORKDIR /app/\nFROM one AS two\nWORKDIR sub/./x/..\n",
        None,
        &[],
    )
    .unwrap();
    let mut cfg = crate::oci::types::ImageConfig::default();
    let mut seen = Vec::new();
    for img in &def.images {
        for l in &img.layers {
            crate::plan::apply_config(&mut cfg, &l.kind);
            seen.push(cfg.config.working_dir.clone().unwrap_or_default());
        }
    }
    assert_eq!(seen, ["/app/", "/app/sub"]);
}

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
        base_triggers: None,
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

/// `FROM <a stage with ONBUILD>` runs the stage's triggers right after
/// FROM, then clears them from the child's config.
#[test]
fn onbuild_triggers_of_a_stage_run_in_its_children() {
    let def = translate(
        "FROM scratch AS base\nONBUILD LABEL from=trigger\nONBUILD COPY f.txt /t.txt\nLABEL own=base\n\
         FROM base\nLABEL child=yes\n",
        None,
        &[],
    )
    .unwrap();
    let child = image(&def, "stage-1");
    let kinds: Vec<&LayerKind> = child.layers.iter().map(|l| &l.kind).collect();
    assert!(matches!(
        kinds[0],
        LayerKind::DockerConfig { field, value } if field == "OnBuild" && value.is_null()
    ));
    assert_eq!(
        labels(child),
        vec![
            ("from".to_string(), "trigger".to_string()),
            ("child".to_string(), "yes".to_string())
        ]
    );
    assert!(matches!(kinds[2], LayerKind::SourceFile { dst, .. } if dst == "/t.txt"));
    // The stage itself keeps its triggers in its config, not run.
    let base = image(&def, "base");
    assert_eq!(labels(base), vec![("own".to_string(), "base".to_string())]);
}

/// `RUN --mount=…,from=` names the image it reads; ssh mounts get
/// BuildKit's defaults; bad values name the line.
#[test]
fn run_mounts_from_and_ssh_translate() {
    let def = translate(
        "FROM scratch AS data\nCOPY f.txt /d/f.txt\nFROM scratch\n\
         RUN --mount=type=bind,from=data,source=d,target=m --mount=type=cache,from=data,target=/c --mount=type=ssh --mount=type=ssh,id=git,target=/s,required=true true\n",
        None,
        &[],
    )
    .unwrap();
    let img = image(&def, "stage-1");
    let run = img
        .layers
        .iter()
        .find_map(|l| match &l.kind {
            LayerKind::Commands { run, .. } => Some(run.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        run.from_mounts,
        vec![
            crate::spec::FromMount {
                image: "data".into(),
                source: "/d".into(),
                target: "/m".into(),
                cache: None
            },
            crate::spec::FromMount {
                image: "data".into(),
                source: "/".into(),
                target: "/c".into(),
                cache: Some("/c".into())
            }
        ]
    );
    assert_eq!(
        run.ssh_mounts,
        vec![
            crate::spec::SshMount {
                id: "default".into(),
                target: "/run/buildkit/ssh_agent.0".into(),
                required: false
            },
            crate::spec::SshMount {
                id: "git".into(),
                target: "/s".into(),
                required: true
            }
        ]
    );
    let e = err(
        "FROM scratch\nRUN --mount=type=ssh,required=maybe true\n",
        None,
    );
    assert!(
        e.contains("Dockerfile:2") && e.contains("required=maybe"),
        "{e}"
    );
    let e = err("FROM scratch\nCOPY --exclude=[z-a] f.txt /x\n", None);
    assert!(e.contains("Dockerfile:2") && e.contains("--exclude"), "{e}");
    let e = err(
        "FROM scratch AS first\nRUN --mount=type=bind,from=later,target=/m true\nFROM scratch AS later\n",
        Some("first"),
    );
    assert!(
        e.contains("Dockerfile:2") && e.contains("not before"),
        "{e}"
    );
}

/// `COPY --parents` keeps the path (after a `/./`); `--exclude` drops a
/// file source by its name and passes patterns on for folders.
#[test]
fn copy_parents_and_exclude_translate() {
    let def = translate(
        "FROM scratch\nCOPY --parents ./f.txt /p/\nCOPY --exclude=*.txt f.txt /none/\n",
        None,
        &[],
    )
    .unwrap();
    let img = &def.images[0];
    let files: Vec<String> = img
        .layers
        .iter()
        .filter_map(|l| match &l.kind {
            LayerKind::SourceFile { dst, .. } => Some(dst.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(files, vec!["/p/f.txt".to_string()]);
    assert_eq!(parents_pivot("a/./b/c"), ("a/b/c".to_string(), 2));
    assert_eq!(parents_pivot("a/b"), ("a/b".to_string(), 0));
}

//! Install sets for the test locks.

use super::*;
use crate::python::lock::fixtures::*;

#[test]
fn install_set_default_groups_per_python_and_arch() {
    let lock = parse(&demo_lock());
    let amd = install_set(
        &lock,
        "demo-app",
        &env("3.12.7", "amd64"),
        &[],
        &["dev"],
        true,
    )
    .unwrap();
    assert_eq!(
        names(&amd),
        [
            "anyio==4.15.1",
            "demo-app==0.1.0",
            "h2==4.2.0",
            "httpx==0.28.1",
            "idna==3.10",
            "numpy==2.5.3",
            "pluggy==1.6.0",
            "pytest==8.4.1",
        ]
    );
    // black (and its dependency) only on aarch64.
    let arm = install_set(
        &lock,
        "demo-app",
        &env("3.12.7", "arm64"),
        &[],
        &["dev"],
        true,
    )
    .unwrap();
    let arm_names = names(&arm);
    assert!(arm_names.contains(&"black==25.1.0".to_string()));
    assert!(arm_names.contains(&"pathspec==0.12.1".to_string()));
    assert_eq!(arm.len(), amd.len() + 2);
    // Never: win32-only packages, an extra nobody asked for (httpx[brotli]).
    for set in [&amd, &arm] {
        assert!(
            !set.iter()
                .any(|r| ["pywin32", "colorama", "brotli", "rich"].contains(&r.name.as_str()))
        );
    }
}

#[test]
fn install_set_python_versions_pick_numpy_forks() {
    let lock = parse(&demo_lock());
    let numpy_for = |py: &str| {
        let set = install_set(&lock, "demo-app", &env(py, "amd64"), &[], &[], true).unwrap();
        let numpy: Vec<_> = set.iter().filter(|r| r.name == "numpy").collect();
        assert_eq!(numpy.len(), 1, "{py}");
        (numpy[0].version.clone().unwrap(), names(&set))
    };
    let (v, set310) = numpy_for("3.10.13");
    assert_eq!(v, "2.2.6");
    assert!(set310.contains(&"exceptiongroup==1.3.0".to_string()));
    let (v, set311) = numpy_for("3.11.2");
    assert_eq!(v, "2.4.6");
    assert!(!set311.contains(&"exceptiongroup==1.3.0".to_string()));
    // The patch version matters: async-timeout is for < 3.11.3.
    assert!(set311.contains(&"async-timeout==5.0.1".to_string()));
    let (_, set31113) = numpy_for("3.11.13");
    assert!(!set31113.contains(&"async-timeout==5.0.1".to_string()));
    let (v, _) = numpy_for("3.12.7");
    assert_eq!(v, "2.5.3");
    let (v, _) = numpy_for("3.14.0");
    assert_eq!(v, "2.5.3");
}

#[test]
fn install_set_extras_groups_and_project_filter() {
    let lock = parse(&demo_lock());
    let e = env("3.12.7", "amd64");
    // A package reachable only through a root extra.
    let with_cli = names(&install_set(&lock, "demo-app", &e, &["CLI"], &[], true).unwrap());
    assert!(with_cli.contains(&"rich==14.0.0".to_string()));
    assert!(with_cli.contains(&"markdown-it-py==3.0.0".to_string()));
    // An extra with no edges (declared in metadata) is accepted and adds nothing.
    let empty = install_set(&lock, "demo-app", &e, &["empty"], &[], true).unwrap();
    let none = install_set(&lock, "demo-app", &e, &[], &[], true).unwrap();
    assert_eq!(names(&empty), names(&none));
    assert!(!names(&none).contains(&"pytest==8.4.1".to_string()));
    // Groups, with a marker evaluated per architecture.
    let docs_amd = names(&install_set(&lock, "demo-app", &e, &[], &["docs"], true).unwrap());
    assert!(docs_amd.contains(&"mkdocs==1.6.1".to_string()));
    assert!(!docs_amd.contains(&"pytest==8.4.1".to_string()));
    let docs_arm = names(
        &install_set(
            &lock,
            "demo-app",
            &env("3.12.7", "arm64"),
            &[],
            &["docs"],
            true,
        )
        .unwrap(),
    );
    assert!(!docs_arm.contains(&"mkdocs==1.6.1".to_string()));
    // --no-install-project drops the editable root but keeps its dependencies.
    let no_project = names(&install_set(&lock, "demo-app", &e, &[], &[], false).unwrap());
    assert!(!no_project.contains(&"demo-app==0.1.0".to_string()));
    assert_eq!(no_project.len(), none.len() - 1);
}

#[test]
fn install_set_only_group_and_filters() {
    let lock = parse(&demo_lock());
    let e = env("3.12.7", "amd64");
    let opts = SyncOptions {
        roots: vec!["demo-app".into()],
        groups: vec!["dev".into()],
        only_groups: true,
        ..SyncOptions::default()
    };
    assert_eq!(
        names(&install_set_with(&lock, &e, &opts).unwrap()),
        ["pluggy==1.6.0", "pytest==8.4.1"]
    );
    // Default groups that do not exist are ignored; explicit ones must exist.
    let opts = SyncOptions {
        roots: vec!["demo-app".into()],
        default_groups: vec!["dev".into(), "lint".into()],
        no_install_packages: vec!["H2".into()],
        ..SyncOptions::default()
    };
    let set = names(&install_set_with(&lock, &e, &opts).unwrap());
    assert!(set.contains(&"pytest==8.4.1".to_string()));
    assert!(!set.contains(&"h2==4.2.0".to_string()));
    let err = install_set(&lock, "demo-app", &e, &[], &["lint"], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: dependency group `lint` is not defined by `demo-app` (available groups: dev, docs)"
    );
    let err = install_set(&lock, "demo-app", &e, &["gui"], &[], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: extra `gui` is not defined by `demo-app` (available extras: cli, empty)"
    );
    let err = install_set(&lock, "nope", &e, &[], &[], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: root package `nope` is not in the lock"
    );
    let err = install_set(&lock, "numpy", &e, &[], &[], true).unwrap_err();
    assert!(
        matches!(err, LockError::AmbiguousRoot { count: 3, .. }),
        "{err}"
    );
}

#[test]
fn target_preconditions() {
    let lock = parse(&demo_lock());
    let err = install_set(&lock, "demo-app", &env("3.9.18", "amd64"), &[], &[], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: target Python 3.9.18 does not satisfy the lock's requires-python `>=3.10`"
    );
    // A pre-release interpreter is judged by its release part.
    assert!(lock.check_target(&env("3.13.0rc1", "amd64")).is_ok());

    let text = demo_lock().replacen(
        "resolution-markers = [",
        "supported-markers = [\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]\nresolution-markers = [",
        1,
    );
    let lock = parse(&text);
    assert!(lock.check_target(&env("3.12.7", "amd64")).is_ok());
    let err = lock.check_target(&env("3.12.7", "arm64")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: the target (Python 3.12.7, aarch64) is not compatible with the lock's supported environments (supported-markers: \"sys_platform == 'linux' and platform_machine == 'x86_64'\")"
    );
}

#[test]
fn virtual_root_is_never_installed() {
    let text = format!(
        "version = 1\nrequires-python = \">=3.12\"\n\n[[package]]\nname = \"svc\"\nversion = \"0.1.0\"\nsource = {{ virtual = \".\" }}\ndependencies = [{{ name = \"six\" }}]\n{}",
        pure("six", "1.17.0")
    );
    let lock = parse(&text);
    let e = env("3.12.7", "amd64");
    assert_eq!(
        names(&install_set(&lock, "svc", &e, &[], &[], true).unwrap()),
        ["six==1.17.0"]
    );
    assert_eq!(
        names(&install_set(&lock, "svc", &e, &[], &[], false).unwrap()),
        ["six==1.17.0"]
    );
}

#[test]
fn workspace_members_and_manifest_roots() {
    let mut text = String::from(
        r#"version = 1
revision = 3
requires-python = ">=3.11"

[manifest]
members = ["app", "lib-a"]
requirements = [{ name = "six", marker = "sys_platform == 'linux'" }, { name = "colorama", marker = "sys_platform == 'win32'" }]

[manifest.dependency-groups]
dev = [{ name = "iniconfig" }]

[[package]]
name = "app"
version = "1.0.0"
source = { editable = "packages/app" }
dependencies = [{ name = "lib-a" }]

[[package]]
name = "lib-a"
source = { editable = "packages/lib-a" }
dependencies = [{ name = "attrs" }]
"#,
    );
    for (n, v) in [
        ("attrs", "25.3.0"),
        ("six", "1.17.0"),
        ("colorama", "0.4.6"),
        ("iniconfig", "2.1.0"),
    ] {
        text.push_str(&pure(n, v));
    }
    let lock = parse(&text);
    let e = env("3.11.2", "amd64");
    let opts = SyncOptions {
        roots: vec!["app".into()],
        groups: vec!["dev".into()],
        ..SyncOptions::default()
    };
    assert_eq!(
        names(&install_set_with(&lock, &e, &opts).unwrap()),
        [
            "app==1.0.0",
            "attrs==25.3.0",
            "iniconfig==2.1.0",
            "lib-a",
            "six==1.17.0"
        ]
    );
    let opts = SyncOptions {
        no_install_workspace: true,
        ..opts
    };
    assert_eq!(
        names(&install_set_with(&lock, &e, &opts).unwrap()),
        ["attrs==25.3.0", "iniconfig==2.1.0", "six==1.17.0"]
    );
    // A script-style lock: no roots, only manifest requirements.
    let opts = SyncOptions::default();
    assert_eq!(
        names(&install_set_with(&lock, &e, &opts).unwrap()),
        ["six==1.17.0"]
    );
}

#[test]
fn conflict_markers_pick_one_fork() {
    let lock = parse(&conflict_lock());
    let e = env("3.12.7", "amd64");
    let lib_version = |extras: &[&str], groups: &[&str]| {
        let set = install_set(&lock, "proj3", &e, extras, groups, true).unwrap();
        let libs: Vec<_> = set.iter().filter(|r| r.name == "lib").collect();
        assert_eq!(libs.len(), 1);
        libs[0].version.clone().unwrap()
    };
    assert_eq!(lib_version(&[], &[]), "2.0");
    assert_eq!(lib_version(&["new"], &[]), "2.0");
    assert_eq!(lib_version(&["old"], &[]), "1.0");
    assert_eq!(lib_version(&[], &["legacy"]), "1.0");

    let err = install_set(&lock, "proj3", &e, &["new", "old"], &[], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: Extras `new` and `old` are incompatible with the declared conflicts"
    );
    let err = install_set(&lock, "proj3", &e, &["new"], &["legacy"], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: Extra `new` and group `legacy` are incompatible with the declared conflicts"
    );
}

#[test]
fn conflict_extras_activated_deep_in_the_graph() {
    // root -> a -> lib (fork chosen by plugin[fast]); root -> b -> c -> plugin[fast].
    // `a` is visited before `plugin[fast]` is reached, so only the first traversal
    // makes the marker see the extra.
    let mut s = String::from(
        r#"version = 1
requires-python = ">=3.12"
conflicts = [[{ package = "plugin", extra = "fast" }, { package = "plugin", extra = "slow" }]]

[[package]]
name = "root"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "a" }, { name = "b" }]
"#,
    );
    s.push_str(&pkg(
        "a",
        "1.0",
        &["a-1.0-py3-none-any.whl"],
        &format!(
            "dependencies = [\n    {{ name = \"lib\", version = \"1.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra == 'extra-6-plugin-fast'\" }},\n    {{ name = \"lib\", version = \"2.0\", source = {{ registry = \"{IDX}\" }}, marker = \"extra != 'extra-6-plugin-fast'\" }},\n]"
        ),
    ));
    s.push_str(&pkg(
        "b",
        "1.0",
        &["b-1.0-py3-none-any.whl"],
        "dependencies = [{ name = \"c\" }]",
    ));
    s.push_str(&pkg(
        "c",
        "1.0",
        &["c-1.0-py3-none-any.whl"],
        "dependencies = [{ name = \"plugin\", extra = [\"fast\"] }]",
    ));
    s.push_str(&pkg(
        "plugin",
        "1.0",
        &["plugin-1.0-py3-none-any.whl"],
        "\n[package.optional-dependencies]\nfast = [{ name = \"speedup\" }]\nslow = []",
    ));
    s.push_str(&pure("speedup", "1.0"));
    s.push_str(&pure("lib", "1.0"));
    s.push_str(&pure("lib", "2.0"));
    let lock = parse(&s);
    let set = install_set(&lock, "root", &env("3.12.7", "amd64"), &[], &[], true).unwrap();
    assert_eq!(
        names(&set),
        [
            "a==1.0",
            "b==1.0",
            "c==1.0",
            "lib==1.0",
            "plugin==1.0",
            "root==0.1.0",
            "speedup==1.0"
        ]
    );
}

#[test]
fn walk_errors_and_only_group_self_reference() {
    // Two unconditional edges to different versions: the lock is inconsistent.
    let mut s = format!(
        "version = 1\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = {{ editable = \".\" }}\ndependencies = [\n    {{ name = \"lib\", version = \"1.0\", source = {{ registry = \"{IDX}\" }} }},\n    {{ name = \"other\" }},\n]\n"
    );
    s.push_str(&pkg(
        "other",
        "1.0",
        &["other-1.0-py3-none-any.whl"],
        &format!("dependencies = [{{ name = \"lib\", version = \"2.0\", source = {{ registry = \"{IDX}\" }} }}]"),
    ));
    s.push_str(&pure("lib", "1.0"));
    s.push_str(&pure("lib", "2.0"));
    let lock = parse(&s);
    let e = env("3.12.7", "amd64");
    let err = install_set(&lock, "root", &e, &[], &[], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: package `lib` was reached at several versions (1.0, 2.0) for this target"
    );

    // Edges that switch on two conflicting extras.
    let mut s = String::from(
        "version = 1\nconflicts = [[{ package = \"plugin\", extra = \"fast\" }, { package = \"plugin\", extra = \"slow\" }]]\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"plugin\", extra = [\"fast\"] }, { name = \"c\" }]\n",
    );
    s.push_str(&pkg(
        "c",
        "1.0",
        &["c-1.0-py3-none-any.whl"],
        "dependencies = [{ name = \"plugin\", extra = [\"slow\"] }]",
    ));
    s.push_str(&pkg(
        "plugin",
        "1.0",
        &["plugin-1.0-py3-none-any.whl"],
        "\n[package.optional-dependencies]\nfast = []\nslow = []",
    ));
    let lock = parse(&s);
    let err = install_set(&lock, "root", &e, &[], &[], true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uv.lock: found conflicting extras `plugin[fast]` and `plugin[slow]` enabled simultaneously"
    );

    // --only-group with a group that names the root itself (`dev = ["root[cli]"]`): the
    // group edge re-enables the root, so it is installed with its dependencies and the
    // extra, as uv does.
    let mut s = String::from(
        "version = 1\n[[package]]\nname = \"root\"\nversion = \"1\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"six\" }]\n\n[package.optional-dependencies]\ncli = [{ name = \"click\" }]\n\n[package.dev-dependencies]\ndev = [{ name = \"root\", extra = [\"cli\"] }, { name = \"pytest\" }]\n",
    );
    for (n, v) in [("six", "1.17.0"), ("click", "8.2.1"), ("pytest", "8.4.1")] {
        s.push_str(&pure(n, v));
    }
    let lock = parse(&s);
    let opts = SyncOptions {
        roots: vec!["root".into()],
        groups: vec!["dev".into()],
        only_groups: true,
        ..SyncOptions::default()
    };
    let set = install_set_with(&lock, &e, &opts).unwrap();
    assert_eq!(
        names(&set),
        ["click==8.2.1", "pytest==8.4.1", "root==1", "six==1.17.0"]
    );
    // Without the group, --only-group installs nothing.
    let opts = SyncOptions {
        groups: vec![],
        ..opts
    };
    assert!(install_set_with(&lock, &e, &opts).unwrap().is_empty());
}

//! What maintainer scripts of a minimal Debian system leave behind,
//! written natively from the packages' own files: a table keyed by package
//! name, checked against mmdebstrap's result in the tests. Scripts of
//! other packages are not run yet.

use super::assemble::StateEntry;
use super::dpkgdb::Installed;
use std::collections::BTreeMap;

/// One `update-alternatives --install` of a package's postinst.
struct Alternative {
    package: &'static str,
    name: &'static str,
    link: &'static str,
    path: &'static str,
    priority: u32,
    /// (name, link, path), in the order of their names.
    slaves: &'static [(&'static str, &'static str, &'static str)],
}

const WHICH_MAN: &[(&str, &str, &str)] = &[
    (
        "which.1.gz",
        "/usr/share/man/man1/which.1.gz",
        "/usr/share/man/man1/which.debianutils.1.gz",
    ),
    (
        "which.de1.gz",
        "/usr/share/man/de/man1/which.1.gz",
        "/usr/share/man/de/man1/which.debianutils.1.gz",
    ),
    (
        "which.es1.gz",
        "/usr/share/man/es/man1/which.1.gz",
        "/usr/share/man/es/man1/which.debianutils.1.gz",
    ),
    (
        "which.fr1.gz",
        "/usr/share/man/fr/man1/which.1.gz",
        "/usr/share/man/fr/man1/which.debianutils.1.gz",
    ),
    (
        "which.it1.gz",
        "/usr/share/man/it/man1/which.1.gz",
        "/usr/share/man/it/man1/which.debianutils.1.gz",
    ),
    (
        "which.ja1.gz",
        "/usr/share/man/ja/man1/which.1.gz",
        "/usr/share/man/ja/man1/which.debianutils.1.gz",
    ),
    (
        "which.pl1.gz",
        "/usr/share/man/pl/man1/which.1.gz",
        "/usr/share/man/pl/man1/which.debianutils.1.gz",
    ),
    (
        "which.sl1.gz",
        "/usr/share/man/sl/man1/which.1.gz",
        "/usr/share/man/sl/man1/which.debianutils.1.gz",
    ),
];

const ALTERNATIVES: &[Alternative] = &[
    Alternative {
        package: "mawk",
        name: "awk",
        link: "/usr/bin/awk",
        path: "/usr/bin/mawk",
        priority: 5,
        slaves: &[
            (
                "awk.1.gz",
                "/usr/share/man/man1/awk.1.gz",
                "/usr/share/man/man1/mawk.1.gz",
            ),
            ("nawk", "/usr/bin/nawk", "/usr/bin/mawk"),
            (
                "nawk.1.gz",
                "/usr/share/man/man1/nawk.1.gz",
                "/usr/share/man/man1/mawk.1.gz",
            ),
        ],
    },
    Alternative {
        package: "debianutils",
        name: "which",
        link: "/usr/bin/which",
        path: "/usr/bin/which.debianutils",
        priority: 0,
        slaves: WHICH_MAN,
    },
    Alternative {
        package: "util-linux",
        name: "pager",
        link: "/usr/bin/pager",
        path: "/bin/more",
        priority: 50,
        slaves: &[(
            "pager.1.gz",
            "/usr/share/man/man1/pager.1.gz",
            "/usr/share/man/man1/more.1.gz",
        )],
    },
    Alternative {
        package: "tar",
        name: "rmt",
        link: "/usr/sbin/rmt",
        path: "/usr/sbin/rmt-tar",
        priority: 50,
        slaves: &[(
            "rmt.8.gz",
            "/usr/share/man/man8/rmt.8.gz",
            "/usr/share/man/man8/rmt-tar.8.gz",
        )],
    },
    Alternative {
        package: "bash",
        name: "builtins.7.gz",
        link: "/usr/share/man/man7/builtins.7.gz",
        path: "/usr/share/man/man7/bash-builtins.7.gz",
        priority: 10,
        slaves: &[],
    },
];

/// Packages whose maintainer scripts (`preinst`, `postinst`, `config`)
/// the state layer stands in for: what they make is written natively, or
/// left out on purpose (.pyc files, PAM and debconf state, service links;
/// the README lists them). Checked against mmdebstrap's result of the same
/// package set in the tests. Any other package with such a script is left
/// unpacked and configured by `dpkg --configure` in the sandbox.
pub const COVERED: &[&str] = &[
    "adduser",
    "apt",
    "base-files",
    "base-passwd",
    "bash",
    "ca-certificates",
    "coreutils",
    "dash",
    "debconf",
    "debian-archive-keyring",
    "debianutils",
    "dpkg",
    "e2fsprogs",
    "init-system-helpers",
    "libc-bin",
    "libc6",
    "libgcrypt20",
    "libgssapi-krb5-2",
    "libpam-modules",
    "libpam-runtime",
    "libpam0g",
    "libpython3.11-minimal",
    "login",
    "mawk",
    "openssl",
    "passwd",
    "perl",
    "perl-base",
    "python3",
    "python3-distutils",
    "python3-lib2to3",
    "python3-minimal",
    "python3.11",
    "python3.11-minimal",
    "python3.11-venv",
    "readline-common",
    "tar",
    "tzdata",
    "usr-is-merged",
    "usrmerge",
    "util-linux",
    "util-linux-extra",
];

/// Whether a locked package has maintainer scripts the state layer does
/// not stand in for.
pub fn uncovered(p: &super::lock::LockedPackage) -> bool {
    !p.scripts.is_empty() && !COVERED.contains(&p.name.as_str())
}

/// Files the fixups read from the packages' data.
pub fn wants(path: &str) -> bool {
    matches!(
        path,
        "usr/share/base-files/motd"
            | "usr/share/base-files/profile"
            | "usr/share/base-files/dot.bashrc"
            | "usr/share/base-files/dot.profile"
            | "usr/share/base-files/info.dir"
            | "usr/share/readline/inputrc"
            | "usr/share/libc-bin/nsswitch.conf"
            | "usr/share/debianutils/shells"
    ) || path.starts_with("usr/share/debianutils/shells.d/")
        || (path.starts_with("usr/share/ca-certificates/") && path.ends_with(".crt"))
}

fn rel(p: &str) -> String {
    p.trim_start_matches('/').to_string()
}

/// The entries the covered scripts would have made.
pub fn fixups(installed: &[Installed], files: &BTreeMap<String, Vec<u8>>) -> Vec<StateEntry> {
    let has = |n: &str| installed.iter().any(|p| p.name == n);
    let get = |p: &str| files.get(p).cloned();
    let mut out: Vec<StateEntry> = Vec::new();
    if has("base-files") {
        for (from, to, mode) in [
            ("usr/share/base-files/motd", "etc/motd", 0o644),
            ("usr/share/base-files/profile", "etc/profile", 0o644),
            ("usr/share/base-files/dot.bashrc", "root/.bashrc", 0o644),
            ("usr/share/base-files/dot.profile", "root/.profile", 0o644),
            ("usr/share/base-files/info.dir", "usr/share/info/dir", 0o644),
        ] {
            if let Some(b) = get(from) {
                out.push(StateEntry::file(to, b, mode, 0, 0));
            }
        }
        for d in [
            "media",
            "mnt",
            "opt",
            "srv",
            "etc/opt",
            "var/opt",
            "usr/local",
            "usr/local/bin",
            "usr/local/etc",
            "usr/local/games",
            "usr/local/include",
            "usr/local/lib",
            "usr/local/sbin",
            "usr/local/share",
            "usr/local/share/man",
            "usr/local/src",
        ] {
            out.push(StateEntry::dir(d, 0o755, 0, 0));
        }
        out.push(StateEntry::link("usr/local/man", "share/man"));
        out.push(StateEntry::dir("var/mail", 0o2775, 0, 8));
        out.push(StateEntry::link("var/spool/mail", "../mail"));
        out.push(StateEntry::dir("run/lock", 0o1777, 0, 0));
        out.push(StateEntry::link("etc/dpkg/origins/default", "debian"));
        out.push(StateEntry::file("var/log/wtmp", vec![], 0o664, 0, 43));
        out.push(StateEntry::file("var/log/btmp", vec![], 0o660, 0, 43));
        out.push(StateEntry::file("var/log/lastlog", vec![], 0o664, 0, 43));
    }
    if has("login") {
        out.push(StateEntry::file("var/log/faillog", vec![], 0o644, 0, 0));
        out.push(StateEntry::file("etc/subuid", vec![], 0o644, 0, 0));
        out.push(StateEntry::file("etc/subgid", vec![], 0o644, 0, 0));
    }
    if has("passwd") || has("base-passwd") {
        out.push(StateEntry::file("etc/.pwd.lock", vec![], 0o600, 0, 0));
    }
    if has("libpam-runtime") {
        out.push(StateEntry::file("etc/environment", vec![], 0o644, 0, 0));
    }
    if has("tzdata") {
        out.push(StateEntry::link(
            "etc/localtime",
            "/usr/share/zoneinfo/Etc/UTC",
        ));
        out.push(StateEntry::file(
            "etc/timezone",
            b"Etc/UTC\n".to_vec(),
            0o644,
            0,
            0,
        ));
    }
    if has("readline-common")
        && let Some(b) = get("usr/share/readline/inputrc")
    {
        out.push(StateEntry::file("etc/inputrc", b, 0o644, 0, 0));
    }
    if has("libc-bin")
        && let Some(b) = get("usr/share/libc-bin/nsswitch.conf")
    {
        out.push(StateEntry::file("etc/nsswitch.conf", b, 0o644, 0, 0));
    }
    if has("debianutils") {
        out.extend(shells(files));
    }
    if has("python3.11-minimal") {
        out.push(StateEntry::dir("usr/local/lib/python3.11", 0o755, 0, 0));
        out.push(StateEntry::dir(
            "usr/local/lib/python3.11/dist-packages",
            0o755,
            0,
            0,
        ));
        out.push(StateEntry::dir("var/lib/python", 0o755, 0, 0));
        out.push(StateEntry::file(
            "var/lib/python/python3.11_installed",
            vec![],
            0o644,
            0,
            0,
        ));
    }
    if has("python3") {
        out.push(StateEntry::file(
            "etc/python3/debian_config",
            b"[DEFAULT]\n# how to byte-compile (comma separated: standard, optimize)\nbyte-compile = standard\n".to_vec(),
            0o644,
            0,
            0,
        ));
    }
    if has("apt") {
        for d in [
            "var/cache/apt/archives/partial",
            "var/lib/apt/lists/partial",
        ] {
            out.push(StateEntry::dir(d, 0o700, 42, 0));
        }
    }
    for a in ALTERNATIVES.iter().filter(|a| has(a.package)) {
        out.extend(alternative(a));
    }
    if has("ca-certificates") {
        out.extend(certificates(files));
    }
    out
}

fn alternative(a: &Alternative) -> Vec<StateEntry> {
    let mut out = vec![
        StateEntry::link(&rel(a.link), &format!("/etc/alternatives/{}", a.name)),
        StateEntry::link(&format!("etc/alternatives/{}", a.name), a.path),
    ];
    let mut admin = format!("auto\n{}\n", a.link);
    for (name, link, path) in a.slaves {
        admin.push_str(&format!("{name}\n{link}\n"));
        out.push(StateEntry::link(
            &rel(link),
            &format!("/etc/alternatives/{name}"),
        ));
        out.push(StateEntry::link(&format!("etc/alternatives/{name}"), path));
    }
    admin.push_str(&format!("\n{}\n{}\n", a.path, a.priority));
    for (_, _, path) in a.slaves {
        admin.push_str(&format!("{path}\n"));
    }
    admin.push('\n');
    out.push(StateEntry::file(
        &format!("var/lib/dpkg/alternatives/{}", a.name),
        admin.into_bytes(),
        0o644,
        0,
        0,
    ));
    out
}

/// `/etc/shells` and debianutils' state: the template's shells, then each
/// `shells.d` file's (by name), each with its merged-/usr twin.
fn shells(files: &BTreeMap<String, Vec<u8>>) -> Vec<StateEntry> {
    let Some(template) = files.get("usr/share/debianutils/shells") else {
        return vec![];
    };
    let template = String::from_utf8_lossy(template).into_owned();
    let listed = |t: &str| -> Vec<String> {
        t.lines()
            .map(str::trim)
            .filter(|l| l.starts_with('/'))
            .map(String::from)
            .collect()
    };
    let mut shells = listed(&template);
    for (p, b) in files {
        if p.starts_with("usr/share/debianutils/shells.d/") {
            for s in listed(&String::from_utf8_lossy(b)) {
                if !shells.contains(&s) {
                    shells.push(s);
                }
            }
        }
    }
    let twin = |s: &str| {
        let top = s
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        super::assemble::USR_ALIASES
            .contains(&top)
            .then(|| format!("/usr{s}"))
    };
    let mut text = template.clone();
    let in_template = listed(&template);
    for s in shells.iter().filter(|s| !in_template.contains(s)) {
        text.push_str(s);
        text.push('\n');
    }
    let mut state = String::new();
    for s in &shells {
        state.push_str(&format!("{s}\n"));
        if let Some(t) = twin(s) {
            state.push_str(&format!("{t}\n"));
        }
    }
    for s in &shells {
        if let Some(t) = twin(s)
            && !shells.contains(&t)
        {
            text.push_str(&format!("{t}\n"));
        }
    }
    vec![
        StateEntry::file("etc/shells", text.into_bytes(), 0o644, 0, 0),
        StateEntry::file("var/lib/shells.state", state.into_bytes(), 0o644, 0, 0),
    ]
}

/// What ca-certificates' postinst and `update-ca-certificates` write:
/// the configuration selecting every certificate, a `.pem` link for each,
/// the bundle, and the subject-hash links `openssl rehash` makes.
fn certificates(files: &BTreeMap<String, Vec<u8>>) -> Vec<StateEntry> {
    let prefix = "usr/share/ca-certificates/";
    let certs: Vec<(&String, &Vec<u8>)> = files
        .iter()
        .filter(|(p, _)| p.starts_with(prefix) && p.ends_with(".crt"))
        .collect();
    let mut conf = String::from(
        "# This file lists certificates that you wish to use or to ignore to be\n# installed in /etc/ssl/certs.\n# update-ca-certificates(8) will update /etc/ssl/certs by reading this file.\n#\n# This is autogenerated by dpkg-reconfigure ca-certificates.\n# Certificates should be installed under /usr/share/ca-certificates\n# and files with extension '.crt' is recognized as available certs.\n#\n# line begins with # is comment.\n# line begins with ! is certificate filename to be deselected.\n#\n",
    );
    let mut bundle = Vec::new();
    let mut hashes: BTreeMap<String, u32> = BTreeMap::new();
    let mut out = vec![StateEntry::dir(
        "usr/local/share/ca-certificates",
        0o755,
        0,
        0,
    )];
    for (p, bytes) in &certs {
        let name = &p[prefix.len()..];
        conf.push_str(name);
        conf.push('\n');
        bundle.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        let base = name
            .rsplit('/')
            .next()
            .unwrap_or(name)
            .trim_end_matches(".crt");
        let pem = base
            .replace(' ', "_")
            .replace(['(', ')'], "=")
            .replace(',', "_");
        out.push(StateEntry::link(
            &format!("etc/ssl/certs/{pem}.pem"),
            &format!("/{p}"),
        ));
        if let Some(h) = super::certhash::subject_hash_pem(bytes) {
            let n = hashes.entry(h.clone()).or_insert(0u32);
            out.push(StateEntry::link(
                &format!("etc/ssl/certs/{h}.{n}"),
                &format!("{pem}.pem"),
            ));
            *n += 1;
        }
    }
    out.push(StateEntry::file(
        "etc/ca-certificates.conf",
        conf.into_bytes(),
        0o644,
        0,
        0,
    ));
    out.push(StateEntry::file(
        "etc/ssl/certs/ca-certificates.crt",
        bundle,
        0o644,
        0,
        0,
    ));
    out
}

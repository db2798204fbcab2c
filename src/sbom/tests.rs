use super::formats::{Subject, cyclonedx, spdx};
use super::*;

/// A tar of (path, bytes); a path ending in `/` is a folder.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut h = tar::Header::new_ustar();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(bytes.len() as u64);
        }
        h.set_mode(0o644);
        b.append_data(&mut h, path, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u10\n\
Depends: libgcc-s1\n\nPackage: jq\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1\n\
Depends: libjq1 (= 1.6-2.1), libc6 (>= 2.34)\n\nPackage: gone\nStatus: deinstall ok config-files\n\
Architecture: amd64\nVersion: 1\n";

const COPYRIGHT: &str = "Format: https://example.invalid/copyright-format/1.0/\nUpstream-Name: jq\n\n\
Files: *\nCopyright: someone\nLicense: MIT\n\nFiles: docs/*\nLicense: CC-BY-3.0\n";

fn metadata(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}\nbody text\nLicense: not read\n"
    )
}

fn layers() -> Vec<LayerInventory> {
    let sp = "opt/venv/lib/python3.11/site-packages";
    let one = tar_of(&[
        ("var/lib/dpkg/status", STATUS.as_bytes()),
        ("usr/share/doc/jq/copyright", COPYRIGHT.as_bytes()),
        (
            "usr/share/doc/libc6/copyright",
            b"not machine readable\nLicense: GPL\n",
        ),
        (
            &format!("{sp}/Old_Pkg-1.0.dist-info/METADATA"),
            metadata("Old_Pkg", "1.0", "").as_bytes(),
        ),
        (
            &format!("{sp}/httpx-0.27.0.dist-info/METADATA"),
            metadata(
                "httpx",
                "0.27.0",
                "License-Expression: BSD-3-Clause\nRequires-Dist: idna\nRequires-Dist: brotli; extra == 'brotli'\nRequires-Dist: missing-dep>=1",
            )
            .as_bytes(),
        ),
        (
            "usr/share/doc/python3-foo/METADATA",
            metadata("not-a-dist", "1", "").as_bytes(),
        ),
    ]);
    let two = tar_of(&[
        (&format!("{sp}/.wh.Old_Pkg-1.0.dist-info"), b""),
        (
            &format!("{sp}/idna-3.7.dist-info/METADATA"),
            metadata("idna", "3.7", "").as_bytes(),
        ),
    ]);
    vec![scan_layer(&one[..]).unwrap(), scan_layer(&two[..]).unwrap()]
}

#[test]
fn layers_are_read_for_their_databases_and_applied_in_order() {
    let l = layers();
    assert!(l[0].dpkg_status.is_some());
    assert_eq!(l[0].deb_licenses.get("jq").map(String::as_str), Some("MIT"));
    assert!(
        !l[0].deb_licenses.contains_key("libc6"),
        "not machine-readable"
    );
    assert_eq!(l[0].dists.len(), 2, "only dist-info under site-packages");
    let inv = merge(&l, &Known::default());
    let debs: Vec<(&str, &str)> = inv
        .debs
        .iter()
        .map(|d| (d.name.as_str(), d.version.as_str()))
        .collect();
    assert_eq!(debs, [("jq", "1.6-2.1"), ("libc6", "2.36-9+deb12u10")]);
    let jq = &inv.debs[0];
    assert_eq!(jq.depends, ["libc6"], "only installed packages");
    assert_eq!(jq.license.as_deref(), Some("MIT"));
    assert_eq!(inv.debs[1].source.as_deref(), Some("glibc"));
    let dists: Vec<&str> = inv.dists.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(dists, ["httpx", "idna"], "the deleted one is gone");
    assert_eq!(inv.dists[0].requires, ["idna"]);
    assert_eq!(inv.dists[0].license.as_deref(), Some("BSD-3-Clause"));
}

#[test]
fn known_hashes_make_entries_exact() {
    let mut known = Known::default();
    known.debs.insert(
        ("jq".into(), "1.6-2.1".into(), "amd64".into()),
        (
            "ab".repeat(32),
            "http://mirror.invalid/pool/j/jq.deb".into(),
        ),
    );
    known.wheels.insert(
        ("httpx".into(), "0.27.0".into()),
        (
            "httpx-0.27.0-py3-none-any.whl".into(),
            "cd".repeat(32),
            None,
        ),
    );
    let inv = merge(&layers(), &known);
    assert_eq!(inv.debs[0].sha256, Some("ab".repeat(32)));
    assert_eq!(inv.debs[1].sha256, None, "libc6 was not locked");
    assert_eq!(
        inv.dists[0].wheel.as_deref(),
        Some("httpx-0.27.0-py3-none-any.whl")
    );
    assert_eq!(inv.dists[1].sha256, None);
}

#[test]
fn documents_are_the_same_for_the_same_image() {
    let inv = merge(&layers(), &Known::default());
    let subject = Subject {
        name: "reg.invalid/app:v1".into(),
        digest: Digest::of(b"manifest"),
        platform: "linux/amd64".into(),
    };
    let own = [OwnLayer {
        name: "source_folder src".into(),
        digest: Digest::of(b"layer"),
        diff_id: Digest::of(b"tar"),
    }];
    let a = spdx(&subject, &inv, &own, 1_700_000_000);
    assert_eq!(a, spdx(&subject, &inv, &own, 1_700_000_000));
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let purls: Vec<&str> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert!(purls.contains(&"pkg:deb/debian/libc6@2.36-9+deb12u10?arch=amd64&upstream=glibc"));
    assert!(purls.contains(&"pkg:pypi/httpx@0.27.0"));
    let c = cyclonedx(&subject, &inv, &own, 1_700_000_000);
    let v: serde_json::Value = serde_json::from_slice(&c).unwrap();
    assert_eq!(v["components"].as_array().unwrap().len(), 5);
    assert!(v["serialNumber"].as_str().unwrap().starts_with("urn:uuid:"));
}

#[test]
fn urls_lose_credentials_and_host_paths() {
    assert_eq!(
        public_url("https://user:secret@index.invalid/f/x.whl").as_deref(),
        Some("https://index.invalid/f/x.whl")
    );
    assert_eq!(public_url("/home/me/wheels/x.whl"), None);
    assert_eq!(public_url("file:///home/me/wheels/x.whl"), None);
}

#[test]
fn entries_in_memory_give_the_inventory_their_tar_gives() {
    let sp = "opt/venv/lib/python3.11/site-packages";
    let meta = metadata("idna", "3.7", "Requires-Dist: x");
    let files: Vec<(String, Option<Vec<u8>>)> = vec![
        (format!("{sp}/idna-3.7.dist-info/"), None),
        (
            format!("{sp}/idna-3.7.dist-info/METADATA"),
            Some(meta.clone().into_bytes()),
        ),
        ("usr/bin/python3.11".into(), Some(b"ELF".to_vec())),
        (
            "var/lib/dpkg/status".into(),
            Some(STATUS.as_bytes().to_vec()),
        ),
        (format!("{sp}/.wh.gone-1.dist-info"), Some(Vec::new())),
    ];
    let tar: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_deref().unwrap_or_default()))
        .collect();
    let scanned = scan_layer(&tar_of(&tar)[..]).unwrap();
    let direct = LayerInventory::of_entries(files.iter().map(|(p, d)| (p.as_str(), d.as_deref())));
    assert_eq!(scanned, direct);
    assert_eq!(direct.dists.len(), 1);
    assert_eq!(direct.pythons, ["usr/bin/python3.11"]);
    assert_eq!(direct.deleted, [format!("{sp}/gone-1.dist-info")]);
}

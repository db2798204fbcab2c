//! SPDX 2.3 and CycloneDX 1.6 JSON documents of an image's inventory.
//!
//! Identifiers are derived from what they name (package, architecture,
//! version; the image's manifest digest), never random, and times come
//! from the build's `SOURCE_DATE_EPOCH`: the same image gives the same
//! bytes. Licenses are given as the package declares them: CycloneDX takes
//! them as names; SPDX as `LicenseRef-` identifiers with the declared text
//! (a Debian short name such as `GPL-2+` is not an SPDX identifier).

use super::{Deb, Dist, Inventory, OwnLayer, normalize};
use crate::digest::Digest;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The media types (and artifact types) of the two documents.
pub const MT_SPDX: &str = "application/spdx+json";
pub const MT_CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// The image a document describes.
#[derive(Clone, Debug)]
pub struct Subject {
    /// `registry/name:tag` (or `name:tag`).
    pub name: String,
    /// The platform manifest's digest.
    pub digest: Digest,
    /// `os/arch[/variant]`.
    pub platform: String,
}

use crate::oci::types::rfc3339 as time;

fn tool() -> String {
    format!("imgbuild-{}", env!("CARGO_PKG_VERSION"))
}

/// A package URL's version: `:` (an epoch) and other specials escaped.
fn purl_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PURL).to_string()
}

const PURL: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+');

pub fn deb_purl(d: &Deb) -> String {
    let mut p = format!(
        "pkg:deb/debian/{}@{}?arch={}",
        purl_part(&d.name),
        purl_part(&d.version),
        purl_part(&d.arch)
    );
    if let Some(s) = &d.source {
        p.push_str(&format!("&upstream={}", purl_part(s)));
    }
    p
}

pub fn dist_purl(d: &Dist) -> String {
    format!(
        "pkg:pypi/{}@{}",
        purl_part(&normalize(&d.name)),
        purl_part(&d.version)
    )
}

/// A URL as SPDX's `downloadLocation` takes it: the spec's pattern wants
/// a host name ending in a 2–5 letter top-level label (no IP address);
/// another URL is said in `sourceInfo` instead.
fn spdx_location(url: &Option<String>) -> (String, Option<String>) {
    let Some(u) = url else {
        return ("NOASSERTION".into(), None);
    };
    let ok = url::Url::parse(u).ok().is_some_and(|p| {
        matches!(p.host(), Some(url::Host::Domain(d)) if d
            .rsplit('.')
            .next()
            .is_some_and(|tld| (2..=5).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_lowercase()))
            && d.contains('.'))
    });
    if ok {
        (u.clone(), None)
    } else {
        ("NOASSERTION".into(), Some(format!("downloaded from {u}")))
    }
}

/// Letters, digits, `.` and `-` only (SPDX identifiers).
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn deb_ref(d: &Deb) -> String {
    format!("deb-{}-{}", d.name, d.arch)
}

/// The distributions' references, in order: name and version, and a
/// number when one is installed twice (a base's and a venv's).
fn dist_refs(dists: &[Dist]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    dists
        .iter()
        .map(|d| {
            let r = format!("pypi-{}-{}", normalize(&d.name), d.version);
            let n = seen.entry(r.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { r } else { format!("{r}-{n}") }
        })
        .collect()
}

/// What an SPDX package of an installed package says.
struct SpdxPackage<'a> {
    id: &'a str,
    name: &'a str,
    version: &'a str,
    url: &'a Option<String>,
    sha256: &'a Option<String>,
    purl: String,
    /// Its declared license's identifier (or NOASSERTION).
    license: String,
}

/// An installed package as SPDX lists it; `info` goes into `sourceInfo`
/// with the URL it came from when that is no SPDX download location.
fn spdx_package(p: SpdxPackage, info: Option<String>) -> Value {
    let (location, from) = spdx_location(p.url);
    let mut v = json!({
        "SPDXID": p.id,
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": location,
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": p.license,
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": p.purl,
        }],
    });
    if let Some(s) = p.sha256 {
        v["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": s}]);
    }
    let info: Vec<String> = info.into_iter().chain(from).collect();
    if !info.is_empty() {
        v["sourceInfo"] = json!(info.join("; "));
    }
    v
}

fn depends_on(id: &str, to: &str) -> Value {
    json!({
        "spdxElementId": id,
        "relationshipType": "DEPENDS_ON",
        "relatedSpdxElement": to,
    })
}

/// The SPDX 2.3 JSON document.
pub fn spdx(subject: &Subject, inv: &Inventory, layers: &[OwnLayer], created: u64) -> Vec<u8> {
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": subject.name,
        "versionInfo": subject.digest.oci(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!("platform {}", subject.platform),
    })];
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    // Declared name → LicenseRef id (`+` spelled out; a number when two
    // names would give one id).
    let mut licenses: BTreeMap<String, String> = BTreeMap::new();
    let mut license = |l: &Option<String>| -> String {
        let Some(l) = l else {
            return "NOASSERTION".into();
        };
        if let Some((id, _)) = licenses.iter().find(|(_, name)| *name == l) {
            return id.clone();
        }
        let base = format!("LicenseRef-{}", id_part(&l.replace('+', "-plus")));
        let mut id = base.clone();
        let mut n = 1;
        while licenses.contains_key(&id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        licenses.insert(id.clone(), l.clone());
        id
    };
    let contains = |id: &str| {
        json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        })
    };
    let by_deb: BTreeMap<&str, String> = inv
        .debs
        .iter()
        .map(|d| (d.name.as_str(), format!("SPDXRef-{}", id_part(&deb_ref(d)))))
        .collect();
    for d in &inv.debs {
        let id = &by_deb[d.name.as_str()];
        let built_from = d
            .source
            .as_ref()
            .map(|s| format!("built from the Debian source package {s}"));
        let p = spdx_package(
            SpdxPackage {
                id,
                name: &d.name,
                version: &d.version,
                url: &d.url,
                sha256: &d.sha256,
                purl: deb_purl(d),
                license: license(&d.license),
            },
            built_from,
        );
        packages.push(p);
        rels.push(contains(id));
        let on = d.depends.iter().filter_map(|n| by_deb.get(n.as_str()));
        rels.extend(on.map(|to| depends_on(id, to)));
    }
    let ids: Vec<String> = dist_refs(&inv.dists)
        .iter()
        .map(|r| format!("SPDXRef-{}", id_part(r)))
        .collect();
    let mut by_dist: BTreeMap<String, &String> = BTreeMap::new();
    for (d, id) in inv.dists.iter().zip(&ids) {
        by_dist.entry(normalize(&d.name)).or_insert(id);
    }
    for (d, id) in inv.dists.iter().zip(&ids) {
        let mut p = spdx_package(
            SpdxPackage {
                id,
                name: &d.name,
                version: &d.version,
                url: &d.url,
                sha256: &d.sha256,
                purl: dist_purl(d),
                license: license(&d.license),
            },
            None,
        );
        p["comment"] = json!(format!("installed at /{}", d.path));
        if let Some(w) = &d.wheel {
            p["packageFileName"] = json!(w);
        }
        packages.push(p);
        rels.push(contains(id));
        let on = d.requires.iter().filter_map(|n| by_dist.get(n));
        rels.extend(on.map(|to| depends_on(id, to)));
    }
    for l in layers {
        let id = format!("SPDXRef-layer-{}", l.diff_id.hex());
        packages.push(json!({
            "SPDXID": id,
            "name": l.name,
            "versionInfo": l.digest.oci(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "ARCHIVE",
            "checksums": [{"algorithm": "SHA256", "checksumValue": l.digest.hex()}],
            "comment": format!("a layer of the image, diff_id {}", l.diff_id.oci()),
        }));
        rels.push(contains(&id));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} ({})", subject.name, subject.platform),
        "documentNamespace": format!("urn:imgbuild:spdx:{}", subject.digest.hex()),
        "creationInfo": {"created": time(created), "creators": [format!("Tool: {}", tool())]},
        "packages": packages,
        "relationships": rels,
    });
    if !licenses.is_empty() {
        doc["hasExtractedLicensingInfos"] = licenses
            .into_iter()
            .map(|(id, name)| {
                json!({
                    "licenseId": id,
                    "name": name,
                    "extractedText": format!("License: {name} (as the package declares it)"),
                })
            })
            .collect();
    }
    serde_json::to_vec_pretty(&doc).expect("serializes")
}

/// `urn:uuid:` from the first 16 bytes of a digest (a name-based id).
fn uuid(d: &Digest) -> String {
    let h = d.hex();
    format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// An installed package as CycloneDX lists it.
fn cdx_library(
    bom_ref: &str,
    name: &str,
    version: &str,
    purl: String,
    sha256: &Option<String>,
    license: &Option<String>,
    url: &Option<String>,
) -> Value {
    let mut c = json!({
        "type": "library",
        "bom-ref": bom_ref,
        "name": name,
        "version": version,
        "purl": purl,
    });
    if let Some(s) = sha256 {
        c["hashes"] = json!([{"alg": "SHA-256", "content": s}]);
    }
    if let Some(l) = license {
        c["licenses"] = json!([{"license": {"name": l}}]);
    }
    if let Some(u) = url {
        c["externalReferences"] = json!([{"type": "distribution", "url": u}]);
    }
    c
}

/// The CycloneDX 1.6 JSON document.
pub fn cyclonedx(subject: &Subject, inv: &Inventory, layers: &[OwnLayer], created: u64) -> Vec<u8> {
    let mut components = Vec::new();
    let mut deps = Vec::new();
    let mut all = Vec::new();
    let debs: BTreeMap<&str, String> = inv
        .debs
        .iter()
        .map(|d| (d.name.as_str(), deb_ref(d)))
        .collect();
    for d in &inv.debs {
        let r = deb_ref(d);
        components.push(cdx_library(
            &r,
            &d.name,
            &d.version,
            deb_purl(d),
            &d.sha256,
            &d.license,
            &d.url,
        ));
        let on: Vec<&String> = d
            .depends
            .iter()
            .filter_map(|n| debs.get(n.as_str()))
            .collect();
        deps.push(json!({"ref": r, "dependsOn": on}));
        all.push(r);
    }
    let refs = dist_refs(&inv.dists);
    let mut dists: BTreeMap<String, &String> = BTreeMap::new();
    for (d, r) in inv.dists.iter().zip(&refs) {
        dists.entry(normalize(&d.name)).or_insert(r);
    }
    for (d, r) in inv.dists.iter().zip(&refs) {
        let r = r.clone();
        let mut c = cdx_library(
            &r,
            &d.name,
            &d.version,
            dist_purl(d),
            &d.sha256,
            &d.license,
            &d.url,
        );
        c["properties"] = json!([{"name": "imgbuild:path", "value": format!("/{}", d.path)}]);
        if let Some(w) = &d.wheel {
            c["properties"]
                .as_array_mut()
                .expect("an array")
                .push(json!({"name": "imgbuild:wheel", "value": w}));
        }
        components.push(c);
        let on: Vec<&String> = d
            .requires
            .iter()
            .filter_map(|n| dists.get(n).copied())
            .collect();
        deps.push(json!({"ref": r, "dependsOn": on}));
        all.push(r);
    }
    for l in layers {
        let r = format!("layer-{}", l.diff_id.hex());
        components.push(json!({
            "type": "file",
            "bom-ref": r,
            "name": l.name,
            "version": l.digest.oci(),
            "hashes": [{"alg": "SHA-256", "content": l.digest.hex()}],
        }));
        all.push(r);
    }
    deps.insert(0, json!({"ref": "image", "dependsOn": all}));
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": uuid(&subject.digest),
        "version": 1,
        "metadata": {
            "timestamp": time(created),
            "tools": {"components": [{
                "type": "application",
                "name": "imgbuild",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject.name,
                "version": subject.digest.oci(),
                "properties": [{"name": "imgbuild:platform", "value": subject.platform}],
            },
        },
        "components": components,
        "dependencies": deps,
    });
    serde_json::to_vec_pretty(&doc).expect("serializes")
}

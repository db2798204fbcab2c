//! Entry points for the fuzz targets under `fuzz/`: one function per parser
//! that reads user or network input, taking the raw bytes a fuzzer makes.
//! Each calls the parser the way imgbuild does (the Dockerfile frontend,
//! the definition loader, the base-layer applier, …) and drops the result;
//! an error is a fine answer, a panic, an overflow or a hang is a bug.
//!
//! Parsers that read files (Dockerfiles, Flyte specs, requirements files,
//! `.deb`s, poetry locks) get the bytes written into a temporary folder
//! first. Not part of the library's API: it may change with the parsers.

use crate::api::{Source, load};
use crate::debian;
use crate::oci::Platform;
use crate::oci::types::{ImageConfig, Index, Manifest};
use crate::python;
use crate::registry::{Reference, auth};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A folder kept for the whole fuzzing process: the build context and the
/// place input files are written to. A fuzzer ends by exiting (or being
/// killed), so nothing drops it: it is named by the process id, and the
/// folders of processes that are gone are removed when the next one starts.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let name = e.file_name();
                let pid = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("imgbuild-fuzz-"))
                    .and_then(|p| p.parse::<u32>().ok());
                if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("imgbuild-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        dir
    })
}

/// Writes `data` to `name` in the scratch folder and returns its path.
fn file(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, data).expect("writing the input file");
    p
}

/// The text of `data`, if it is UTF-8 (the parsers take `&str`; their
/// callers check UTF-8 before).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `data` split at its first NUL byte: two inputs from one.
fn two(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A Dockerfile: parsed and translated by the frontend into a definition,
/// as `imgbuild build -f` does (empty context, no registry).
pub fn dockerfile(data: &[u8]) {
    let context = scratch().join("context");
    let _ = std::fs::create_dir_all(&context);
    let file = file("Dockerfile", data);
    let _ = load(
        &Source::Dockerfile {
            file,
            context,
            build_args: BTreeMap::new(),
            target: None,
            platforms: Vec::new(),
            contexts: BTreeMap::new(),
        },
        None,
    );
}

fn definition(data: &[u8], name: &str) {
    let Some(text) = text(data) else { return };
    let _ = load(
        &Source::Text {
            text: text.to_string(),
            name: PathBuf::from(name),
            context: scratch().to_path_buf(),
        },
        Some("dev"),
    );
}

/// An `imgbuild.toml` definition, loaded and validated.
pub fn definition_toml(data: &[u8]) {
    definition(data, "imgbuild.toml")
}

/// A JSON definition, loaded and validated.
pub fn definition_json(data: &[u8]) {
    definition(data, "imgbuild.json")
}

/// A Flyte image spec (JSON), translated and loaded.
pub fn flyte_spec(data: &[u8]) {
    let spec = file("spec.json", data);
    let _ = load(
        &Source::Flyte {
            spec,
            context: scratch().to_path_buf(),
            platforms: Vec::new(),
        },
        None,
    );
}

/// `.dockerignore` rules, then matched against a few paths.
pub fn dockerignore(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(rules) = crate::layer::ignore::IgnoreRules::parse(text) {
        for p in ["a", "a/b/c.txt", ".git/config", "src/main.rs", "x/y/z/"] {
            let _ = rules.can_skip_dir(p);
            // A walk passes verdicts from folders to entries; it must
            // reach what matching the whole path says.
            let mut v = Default::default();
            let mut at = 0;
            for part in p.trim_end_matches('/').split('/') {
                at += part.len();
                v = rules.verdict_below(v, &p[..at]);
                at += 1;
            }
            assert_eq!(rules.excludes(v), rules.is_excluded(p), "{p:?}");
        }
        let _ = rules.patterns();
    }
}

/// A `uv.lock`.
pub fn uv_lock(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = python::lock::Lock::parse(text, "uv.lock");
}

/// A poetry lock (then a `pyproject.toml` after a NUL byte), read into the
/// pins `poetry install` installs.
pub fn poetry_lock(data: &[u8]) {
    let (lock, pyproject) = two(data);
    let lock = file("poetry.lock", lock);
    let pyproject = file("pyproject.toml", pyproject);
    let _ = crate::flyte::poetry_pins(&lock, &pyproject);
}

/// A PEP 440 version, or specifiers: both parsed, compared and shown.
pub fn pep440(data: &[u8]) {
    use python::pep440::{Specifiers, Version};
    let Some(text) = text(data) else { return };
    let (a, b) = text.split_once(';').unwrap_or((text, "1.0"));
    let va = Version::parse(a);
    if let Ok(v) = &va {
        let _ = v.to_string();
        let _ = v.without_local();
    }
    if let (Ok(v), Ok(w)) = (&va, Version::parse(b)) {
        let _ = v.cmp(&w);
    }
    if let Ok(s) = Specifiers::parse(a) {
        let _ = s.to_string();
        if let Ok(v) = Version::parse(b) {
            let _ = s.contains(&v);
        }
    }
}

/// A PEP 508 requirement, its markers evaluated.
pub fn pep508(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(r) = python::pep508::Requirement::parse(text) {
        let _ = format!("{r:?}");
    }
    if let Ok(m) = python::markers::Marker::parse(text) {
        let env = python::markers::MarkerEnv::for_target("3.12.3", "amd64");
        let _ = m.evaluate(&env, &["test"], &["dev"]);
        let _ = m.to_string();
    }
}

/// A wheel file name, as the tag matcher and the installer read it.
pub fn wheel_name(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = python::tags::WheelName::parse(text);
    python::wheel::fuzzing::filename(text);
}

/// A wheel's `RECORD`.
pub fn wheel_record(data: &[u8]) {
    let Some(text) = text(data) else { return };
    python::wheel::fuzzing::record(text);
}

/// A wheel's `METADATA` (and `WHEEL`, the same format).
pub fn wheel_metadata(data: &[u8]) {
    let Some(text) = text(data) else { return };
    python::wheel::fuzzing::metadata(text);
}

/// A wheel's `entry_points.txt`.
pub fn wheel_entry_points(data: &[u8]) {
    let Some(text) = text(data) else { return };
    python::wheel::fuzzing::entry_points(text);
}

/// A requirements file (includes stay in the scratch folder, or name
/// files that do not exist).
pub fn requirements(data: &[u8]) {
    let path = file("requirements.txt", data);
    let _ = python::uv::parse_requirements_file(&path);
}

/// A package index project page (PEP 691 JSON or PEP 503 HTML).
pub fn simple_index(data: &[u8]) {
    python::uv::fuzzing::simple_page(data);
}

/// deb822 control data (Packages indices, status files).
pub fn debian_control(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(ps) = debian::control::parse_named(text, "Packages") {
        for p in &ps {
            let _ = p.get_trimmed("Package");
            let _ = p.field("Description").map(|f| f.trimmed().len());
        }
    }
}

/// A Release file, and the frame of a clearsigned InRelease.
pub fn debian_release(data: &[u8]) {
    debian::repo::fuzzing::clearsigned(data);
    let Some(text) = text(data) else { return };
    if let Ok(r) = debian::repo::parse_release(text, "Release") {
        let _ = debian::repo::check_valid_until(&r, 1_800_000_000, "Release");
    }
}

/// APT sources: one-line (`sources.list`) and deb822 (`.sources`) forms.
pub fn debian_sources(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = debian::repo::parse_one_line(text, Path::new("sources.list"));
    let _ = debian::repo::parse_deb822(text, Path::new("debian.sources"));
}

/// Two Debian versions (split at a NUL byte), parsed and compared.
pub fn debian_version(data: &[u8]) {
    let (a, b) = two(data);
    let (Some(a), Some(b)) = (text(a), text(b)) else {
        return;
    };
    if let Ok(v) = debian::version::Version::parse(a) {
        let _ = v.to_string();
    }
    let _ = debian::version::compare(a, b);
    let _ = debian::version::compare(b, a);
}

/// A `Depends`-style relation field.
pub fn debian_depends(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = debian::resolve::parse_depends_for(text, "amd64");
}

/// A `.deb`: its ar members, control files and data tar read through.
pub fn deb_package(data: &[u8]) {
    let path = file("package.deb", data);
    let Ok(deb) = debian::deb::Deb::open(&path) else {
        return;
    };
    let _ = debian::dpkgdb::read_package(&deb, &mut |e| {
        let _ = std::io::copy(e, &mut std::io::sink());
        Ok(())
    });
}

/// An image reference, shown and parsed again.
pub fn image_reference(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(r) = Reference::parse(text) {
        let _ = Reference::parse(&r.to_string());
        let _ = r.manifest_ref();
    }
    let _ = Platform::parse(text);
}

/// A `WWW-Authenticate` header.
pub fn www_authenticate(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = auth::parse_challenge(text);
}

/// An OCI (or Docker) manifest, index or image config, decoded as the
/// registry client decodes them, and written back.
pub fn oci_document(data: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        let _ = crate::oci::types::to_bytes(&m);
    }
    if let Ok(i) = serde_json::from_slice::<Index>(data) {
        let _ = crate::oci::types::to_bytes(&i);
    }
    if let Ok(c) = serde_json::from_slice::<ImageConfig>(data) {
        let _ = crate::oci::types::to_bytes(&c);
    }
}

/// A base layer's tar stream, applied into an empty root as RUN steps'
/// root filesystems are made.
pub fn base_layer_tar(data: &[u8]) {
    let root = tempfile::tempdir_in(scratch()).expect("a root folder");
    let _ = crate::sandbox::rootfs::apply_tar(root.path(), data, false);
}

/// A layer's tar stream read for its SBOM inventory (dpkg status,
/// copyright files, dist-info METADATA, whiteouts), applied as the image's
/// only layer and written as both SBOM formats.
pub fn sbom_layer(data: &[u8]) {
    let Ok(inv) = crate::sbom::scan_layer(data) else {
        return;
    };
    let all = crate::sbom::merge(std::slice::from_ref(&inv), &Default::default());
    let subject = crate::sbom::formats::Subject {
        name: "fuzz:latest".into(),
        digest: crate::digest::Digest::of(data),
        platform: "linux/amd64".into(),
    };
    let _ = crate::sbom::formats::spdx(&subject, &all, &[], 0);
    let _ = crate::sbom::formats::cyclonedx(&subject, &all, &[], 0);
}

#[cfg(test)]
mod tests {
    /// A fuzz target's name and its entry point.
    type Target = (&'static str, fn(&[u8]));

    /// Every entry point, by its fuzz target's name.
    const TARGETS: &[Target] = &[
        ("base_layer_tar", super::base_layer_tar),
        ("deb_package", super::deb_package),
        ("debian_control", super::debian_control),
        ("debian_depends", super::debian_depends),
        ("debian_release", super::debian_release),
        ("debian_sources", super::debian_sources),
        ("debian_version", super::debian_version),
        ("definition_json", super::definition_json),
        ("definition_toml", super::definition_toml),
        ("dockerfile", super::dockerfile),
        ("dockerignore", super::dockerignore),
        ("flyte_spec", super::flyte_spec),
        ("image_reference", super::image_reference),
        ("oci_document", super::oci_document),
        ("pep440", super::pep440),
        ("pep508", super::pep508),
        ("poetry_lock", super::poetry_lock),
        ("requirements", super::requirements),
        ("sbom_layer", super::sbom_layer),
        ("simple_index", super::simple_index),
        ("uv_lock", super::uv_lock),
        ("wheel_entry_points", super::wheel_entry_points),
        ("wheel_metadata", super::wheel_metadata),
        ("wheel_name", super::wheel_name),
        ("wheel_record", super::wheel_record),
        ("www_authenticate", super::www_authenticate),
    ];

    /// Each target's hand-made seeds, and a few odd inputs, go through its
    /// entry point without a panic (what the fuzzers start from), and
    /// every fuzz target has an entry point here.
    #[test]
    fn every_entry_point_takes_its_seeds() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for (name, f) in TARGETS {
            let mut inputs: Vec<Vec<u8>> = vec![
                Vec::new(),
                b"\0".to_vec(),
                vec![0xff; 600],
                b"a\n\n b\r\n[".to_vec(),
            ];
            if let Ok(dir) = std::fs::read_dir(fuzz.join("seeds").join(name)) {
                inputs.extend(dir.flatten().map(|e| std::fs::read(e.path()).unwrap()));
            }
            for i in &inputs {
                f(i);
            }
        }
        let mut targets: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
            .unwrap()
            .flatten()
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        targets.sort();
        let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
        assert_eq!(targets, names, "fuzz/fuzz_targets/ and TARGETS agree");
    }
}

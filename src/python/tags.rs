//! Wheel filenames and platform compatibility tags (PEP 425, PEP 427, PEP 600, PEP 656).
//!
//! * [`WheelName::parse`] splits `name-version[-build]-py-abi-plat.whl`, expanding dotted
//!   compressed tag sets into every (python, abi, platform) combination.
//! * [`supported_tags`] lists the tags a CPython 3.Y interpreter on Linux accepts, most
//!   preferred first, in exactly the order `packaging.tags` produces (PYTHON-INSTALL.md §3.1,
//!   §3.2): the python/abi part is the outer loop and the platform the inner one.
//! * [`best_wheel`] / [`TagIndex::best_index`] choose among a package's wheels (§3.3): the wheel
//!   whose best tag ranks highest, then the highest build tag, then the first listed.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

/// A wheel filename that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid wheel filename `{filename}`: {reason}")]
pub struct WheelNameError {
    /// The filename as given.
    pub filename: String,
    /// What was wrong with it.
    pub reason: String,
}

/// A wheel build tag (`-1-`, `-2b-`). Ordered by number, then by the rest as a string; a wheel
/// without one ranks below every wheel that has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildTag {
    /// Leading digits.
    pub number: u64,
    /// Whatever follows the digits.
    pub suffix: String,
}

impl Ord for BuildTag {
    fn cmp(&self, other: &Self) -> Ordering {
        self.number
            .cmp(&other.number)
            .then_with(|| self.suffix.cmp(&other.suffix))
    }
}

impl PartialOrd for BuildTag {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BuildTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.number, self.suffix)
    }
}

/// A parsed wheel filename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// The filename as given (without any directory part).
    pub filename: String,
    /// The distribution name, PEP 503-normalized (`PyYAML` gives `pyyaml`).
    pub name: String,
    /// The version exactly as it appears in the filename.
    pub version: String,
    /// The optional build tag.
    pub build: Option<BuildTag>,
    /// Every (python, abi, platform) tag the filename expands to, lowercase, in filename order.
    pub tags: Vec<(String, String, String)>,
}

impl WheelName {
    /// Parses `name-version[-build]-python-abi-platform.whl`. A leading directory (`/` or
    /// `\\`) is ignored.
    pub fn parse(filename: &str) -> Result<WheelName, WheelNameError> {
        let err = |reason: &str| WheelNameError {
            filename: filename.to_string(),
            reason: reason.to_string(),
        };
        let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
        let stem = base
            .strip_suffix(".whl")
            .ok_or_else(|| err("the name must end in `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [name, version, py, abi, plat] => (*name, *version, None, *py, *abi, *plat),
            [name, version, build, py, abi, plat] => {
                (*name, *version, Some(*build), *py, *abi, *plat)
            }
            _ => {
                return Err(err(
                    "expected 5 or 6 `-`-separated parts: name-version[-build]-python-abi-platform",
                ));
            }
        };
        if name.is_empty() || version.is_empty() {
            return Err(err("empty name or version"));
        }
        let build = match build {
            None => None,
            Some(tag) => {
                let digits = tag.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(err("the build tag must start with a digit"));
                }
                Some(BuildTag {
                    number: tag[..digits]
                        .parse()
                        .map_err(|_| err("build number too large"))?,
                    suffix: tag[digits..].to_string(),
                })
            }
        };
        let split = |field: &str, what: &str| -> Result<Vec<String>, WheelNameError> {
            let items: Vec<String> = field.split('.').map(str::to_ascii_lowercase).collect();
            if items.iter().any(String::is_empty) {
                return Err(err(&format!("empty {what} tag")));
            }
            Ok(items)
        };
        let pys = split(py, "python")?;
        let abis = split(abi, "abi")?;
        let plats = split(plat, "platform")?;
        let mut tags = Vec::with_capacity(pys.len() * abis.len() * plats.len());
        for p in &pys {
            for a in &abis {
                for pl in &plats {
                    tags.push((p.clone(), a.clone(), pl.clone()));
                }
            }
        }
        Ok(WheelName {
            filename: base.to_string(),
            name: crate::python::names::normalize_name(name),
            version: version.to_string(),
            build,
            tags,
        })
    }
}

impl fmt::Display for WheelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.filename)
    }
}

/// CPU architecture of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `amd64` / `x86_64`
    X86_64,
    /// `arm64` / `aarch64`
    Aarch64,
}

impl Arch {
    /// Maps an OCI architecture (`amd64`, `arm64`) or a `uname -m` name (`x86_64`, `aarch64`).
    pub fn from_oci(arch: &str) -> Option<Arch> {
        match arch {
            "amd64" | "x86_64" => Some(Arch::X86_64),
            "arm64" | "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The `uname -m` spelling used in platform tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The oldest glibc minor version with a manylinux tag for this architecture (2.5 for
    /// x86_64, 2.17 for aarch64).
    pub fn manylinux_floor(self) -> u32 {
        match self {
            Arch::X86_64 => 5,
            Arch::Aarch64 => 17,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// glibc of Debian 12 "bookworm" (the one distribution verified in PYTHON-INSTALL.md §3.4).
pub const DEBIAN_BOOKWORM_GLIBC: (u32, u32) = (2, 36);

/// The interpreter and platform wheels are chosen for.
///
/// `glibc` is the base image's glibc (`(2, 36)` for Debian 12). When `musl` is `Some`, the
/// target is a musl system (e.g. Alpine, musl 1.2): only `musllinux_*` tags apply and `glibc`
/// is ignored (manylinux and musllinux are never mixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// CPython (major, minor), e.g. `(3, 12)`.
    pub python: (u32, u32),
    /// CPU architecture.
    pub arch: Arch,
    /// glibc (major, minor) of the base image.
    pub glibc: (u32, u32),
    /// musl (major, minor) for musl-based images.
    pub musl: Option<(u32, u32)>,
}

impl Target {
    /// A glibc (manylinux) target.
    pub fn manylinux(python: (u32, u32), arch: Arch, glibc: (u32, u32)) -> Target {
        Target {
            python,
            arch,
            glibc,
            musl: None,
        }
    }

    /// A musl (musllinux) target.
    pub fn musllinux(python: (u32, u32), arch: Arch, musl: (u32, u32)) -> Target {
        Target {
            python,
            arch,
            glibc: (0, 0),
            musl: Some(musl),
        }
    }

    /// Platform tags, most preferred first (PYTHON-INSTALL.md §3.1), ending in `linux_ARCH`.
    pub fn platform_tags(&self) -> Vec<String> {
        let arch = self.arch.as_str();
        let mut out = Vec::new();
        match self.musl {
            Some((major, minor)) => {
                for m in (0..=minor).rev() {
                    out.push(format!("musllinux_{major}_{m}_{arch}"));
                }
            }
            None => {
                let (major, minor) = self.glibc;
                if major == 2 {
                    let floor = self.arch.manylinux_floor();
                    for m in (floor..=minor).rev() {
                        out.push(format!("manylinux_2_{m}_{arch}"));
                        // Legacy aliases follow their PEP 600 equivalent immediately.
                        let legacy = match (m, self.arch) {
                            (17, _) => Some("manylinux2014"),
                            (12, Arch::X86_64) => Some("manylinux2010"),
                            (5, Arch::X86_64) => Some("manylinux1"),
                            _ => None,
                        };
                        if let Some(legacy) = legacy {
                            out.push(format!("{legacy}_{arch}"));
                        }
                    }
                }
            }
        }
        out.push(format!("linux_{arch}"));
        out
    }
}

impl fmt::Display for Target {
    /// E.g. `cp312 manylinux_2_36_x86_64` or `cp312 musllinux_1_2_aarch64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pmaj, pmin) = self.python;
        match self.musl {
            Some((maj, min)) => write!(f, "cp{pmaj}{pmin} musllinux_{maj}_{min}_{}", self.arch),
            None => write!(
                f,
                "cp{pmaj}{pmin} manylinux_{}_{}_{}",
                self.glibc.0, self.glibc.1, self.arch
            ),
        }
    }
}

/// All (python, abi, platform) tags the target accepts, most preferred first
/// (PYTHON-INSTALL.md §3.2; the same order as `packaging.tags.cpython_tags` followed by
/// `compatible_tags`). With P platform tags there are 27·P + 15 entries for CPython 3.12.
pub fn supported_tags(t: &Target) -> Vec<(String, String, String)> {
    let plats = t.platform_tags();
    let (major, minor) = t.python;
    let cp = |m: u32| format!("cp{major}{m}");
    let mut out = Vec::new();
    let block = |py: &str, abi: &str, out: &mut Vec<(String, String, String)>| {
        for p in &plats {
            out.push((py.to_string(), abi.to_string(), p.clone()));
        }
    };
    let here = cp(minor);
    // 1. The interpreter's own ABI.
    block(&here, &here, &mut out);
    // 2. The stable ABI (CPython >= 3.2), then no ABI, then older stable ABIs down to cp32.
    let abi3 = major == 3 && minor >= 2;
    if abi3 {
        block(&here, "abi3", &mut out);
    }
    block(&here, "none", &mut out);
    if abi3 {
        for m in (2..minor).rev() {
            block(&cp(m), "abi3", &mut out);
        }
    }
    // 3. Generic Python tags with a platform: pyXY, pyX, then older minors down to pyX0.
    let py_versions: Vec<String> = std::iter::once(format!("py{major}{minor}"))
        .chain(std::iter::once(format!("py{major}")))
        .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
        .collect();
    for py in &py_versions {
        block(py, "none", &mut out);
    }
    // 4. Pure wheels: the interpreter tag first, then the generic Python tags.
    out.push((here.clone(), "none".to_string(), "any".to_string()));
    for py in &py_versions {
        out.push((py.clone(), "none".to_string(), "any".to_string()));
    }
    out
}

/// Rank lookup for one target's supported tags (0 is most preferred).
#[derive(Debug, Clone)]
pub struct TagIndex {
    ranks: HashMap<(String, String, String), usize>,
}

impl TagIndex {
    /// Builds the lookup for `target`.
    pub fn new(target: &Target) -> TagIndex {
        let mut ranks = HashMap::new();
        for (i, tag) in supported_tags(target).into_iter().enumerate() {
            ranks.entry(tag).or_insert(i);
        }
        TagIndex { ranks }
    }

    /// The rank of the wheel's best tag, or `None` when the wheel is incompatible.
    pub fn rank(&self, wheel: &WheelName) -> Option<usize> {
        wheel
            .tags
            .iter()
            .filter_map(|tag| self.ranks.get(tag).copied())
            .min()
    }

    /// Position of the best compatible wheel: lowest rank, then highest build tag (no build tag
    /// is lowest), then the earliest in the given order.
    pub fn best_index<'a>(&self, wheels: impl IntoIterator<Item = &'a WheelName>) -> Option<usize> {
        let mut best: Option<(usize, usize, Option<&BuildTag>)> = None;
        for (i, wheel) in wheels.into_iter().enumerate() {
            let Some(rank) = self.rank(wheel) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((_, best_rank, best_build)) => {
                    rank < *best_rank || (rank == *best_rank && wheel.build.as_ref() > *best_build)
                }
            };
            if better {
                best = Some((i, rank, wheel.build.as_ref()));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

/// The wheel uv would pick for `t` (PYTHON-INSTALL.md §3.3), or `None` if none is compatible.
pub fn best_wheel<'a>(wheels: &'a [WheelName], t: &Target) -> Option<&'a WheelName> {
    TagIndex::new(t).best_index(wheels).map(|i| &wheels[i])
}

/// Finds the glibc version in the bytes of a base image's `libc.so.6`, without running it.
/// Prefers the banner (`... stable release version 2.36.`); otherwise returns the highest
/// `GLIBC_2.N` symbol version, which can be lower than the real release when a release added no
/// symbols.
pub fn glibc_version_from_libc(bytes: &[u8]) -> Option<(u32, u32)> {
    fn parse_pair(rest: &[u8]) -> Option<(u32, u32)> {
        let major_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if major_len == 0 || rest.get(major_len) != Some(&b'.') {
            return None;
        }
        let minor = &rest[major_len + 1..];
        let minor_len = minor.iter().take_while(|b| b.is_ascii_digit()).count();
        if minor_len == 0 {
            return None;
        }
        let major = std::str::from_utf8(&rest[..major_len]).ok()?.parse().ok()?;
        let minor = std::str::from_utf8(&minor[..minor_len])
            .ok()?
            .parse()
            .ok()?;
        Some((major, minor))
    }
    fn occurrences<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        (0..hay.len().saturating_sub(needle.len() - 1))
            .filter(move |&i| hay[i..].starts_with(needle))
            .map(move |i| &hay[i + needle.len()..])
    }
    if let Some(v) = occurrences(bytes, b"stable release version ").find_map(parse_pair) {
        return Some(v);
    }
    if let Some(v) = occurrences(bytes, b"release version ").find_map(parse_pair) {
        return Some(v);
    }
    occurrences(bytes, b"GLIBC_").filter_map(parse_pair).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t3(p: &str, a: &str, pl: &str) -> (String, String, String) {
        (p.to_string(), a.to_string(), pl.to_string())
    }

    fn wheels(names: &[&str]) -> Vec<WheelName> {
        names
            .iter()
            .map(|n| WheelName::parse(n).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    #[test]
    fn parse_wheel_filenames() {
        let w = WheelName::parse("anyio-4.15.1-py3-none-any.whl").unwrap();
        assert_eq!(w.name, "anyio");
        assert_eq!(w.version, "4.15.1");
        assert_eq!(w.build, None);
        assert_eq!(w.tags, vec![t3("py3", "none", "any")]);

        let w = WheelName::parse("six-1.17.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(
            w.tags,
            vec![t3("py2", "none", "any"), t3("py3", "none", "any")]
        );

        let w = WheelName::parse(
            "numpy-2.5.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(
            w.tags,
            vec![
                t3("cp312", "cp312", "manylinux_2_17_x86_64"),
                t3("cp312", "cp312", "manylinux2014_x86_64"),
            ]
        );

        let w = WheelName::parse("PyYAML-6.0.2-cp312-cp312-musllinux_1_1_aarch64.whl").unwrap();
        assert_eq!(w.name, "pyyaml");
        assert_eq!(
            w.filename,
            "PyYAML-6.0.2-cp312-cp312-musllinux_1_1_aarch64.whl"
        );

        let w = WheelName::parse("zope.interface-7.2-cp312-cp312-win_amd64.whl").unwrap();
        assert_eq!(w.name, "zope-interface");

        let w = WheelName::parse("pkg-1.0-12b-py3-none-any.whl").unwrap();
        assert_eq!(
            w.build,
            Some(BuildTag {
                number: 12,
                suffix: "b".into()
            })
        );

        let w = WheelName::parse("torch-2.5.1+cpu-cp312-cp312-linux_x86_64.whl").unwrap();
        assert_eq!(w.version, "2.5.1+cpu");

        let w = WheelName::parse(
            "dir/sub/cryptography-50.0.2-cp311-abi3.abi3t-manylinux_2_34_x86_64.whl",
        )
        .unwrap();
        assert_eq!(
            w.filename,
            "cryptography-50.0.2-cp311-abi3.abi3t-manylinux_2_34_x86_64.whl"
        );
        assert_eq!(w.tags.len(), 2);
        assert_eq!(w.tags[1], t3("cp311", "abi3t", "manylinux_2_34_x86_64"));

        let w = WheelName::parse("Mixed-1.0-CP312-ABI3-ANY.whl").unwrap();
        assert_eq!(w.tags, vec![t3("cp312", "abi3", "any")]);
    }

    #[test]
    fn reject_bad_wheel_filenames() {
        for (bad, fragment) in [
            ("anyio-4.15.1.tar.gz", "`.whl`"),
            ("anyio-4.15.1-py3-none.whl", "5 or 6"),
            ("a-1-2-3-py3-none-any.whl", "5 or 6"),
            ("pkg-1.0-b1-py3-none-any.whl", "build tag"),
            ("pkg-1.0-py3..py2-none-any.whl", "empty python tag"),
            ("-1.0-py3-none-any.whl", "empty name"),
        ] {
            let err = WheelName::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(fragment), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn platform_tags_counts_and_aliases() {
        let x86 = Target::manylinux((3, 12), Arch::X86_64, (2, 36)).platform_tags();
        assert_eq!(x86.len(), 36);
        assert_eq!(x86[0], "manylinux_2_36_x86_64");
        let pos = |v: &[String], s: &str| v.iter().position(|x| x == s).unwrap();
        assert_eq!(
            pos(&x86, "manylinux2014_x86_64"),
            pos(&x86, "manylinux_2_17_x86_64") + 1
        );
        assert_eq!(
            pos(&x86, "manylinux2010_x86_64"),
            pos(&x86, "manylinux_2_12_x86_64") + 1
        );
        assert_eq!(
            pos(&x86, "manylinux1_x86_64"),
            pos(&x86, "manylinux_2_5_x86_64") + 1
        );
        assert_eq!(x86[34], "manylinux1_x86_64");
        assert_eq!(x86[35], "linux_x86_64");

        let arm = Target::manylinux((3, 12), Arch::Aarch64, (2, 36)).platform_tags();
        assert_eq!(arm.len(), 22);
        assert_eq!(
            &arm[19..],
            [
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
        assert!(
            !arm.iter()
                .any(|p| p.contains("2010") || p.contains("manylinux1"))
        );

        let musl = Target::musllinux((3, 12), Arch::X86_64, (1, 2)).platform_tags();
        assert_eq!(
            musl,
            [
                "musllinux_1_2_x86_64",
                "musllinux_1_1_x86_64",
                "musllinux_1_0_x86_64",
                "linux_x86_64"
            ]
        );

        // A glibc older than the architecture's floor leaves only linux_ARCH.
        let old = Target::manylinux((3, 12), Arch::Aarch64, (2, 16)).platform_tags();
        assert_eq!(old, ["linux_aarch64"]);
    }

    #[test]
    fn supported_tag_order_cp312_x86_64() {
        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        let tags = supported_tags(&t);
        assert_eq!(tags.len(), 987);
        let head: Vec<_> = tags[..10].to_vec();
        let want: Vec<_> = (27..=36)
            .rev()
            .map(|m| t3("cp312", "cp312", &format!("manylinux_2_{m}_x86_64")))
            .collect();
        assert_eq!(head, want);
        // Block boundaries: each python/abi pair spans the 36 platform tags.
        assert_eq!(tags[35], t3("cp312", "cp312", "linux_x86_64"));
        assert_eq!(tags[36], t3("cp312", "abi3", "manylinux_2_36_x86_64"));
        assert_eq!(tags[72], t3("cp312", "none", "manylinux_2_36_x86_64"));
        assert_eq!(tags[108], t3("cp311", "abi3", "manylinux_2_36_x86_64"));
        assert_eq!(tags[12 * 36], t3("cp32", "abi3", "manylinux_2_36_x86_64"));
        assert_eq!(tags[13 * 36], t3("py312", "none", "manylinux_2_36_x86_64"));
        assert_eq!(tags[14 * 36], t3("py3", "none", "manylinux_2_36_x86_64"));
        assert_eq!(tags[15 * 36], t3("py311", "none", "manylinux_2_36_x86_64"));
        assert_eq!(tags[27 * 36 - 1], t3("py30", "none", "linux_x86_64"));
        let tail: Vec<_> = tags[tags.len() - 15..].to_vec();
        let mut want_tail = vec![
            t3("cp312", "none", "any"),
            t3("py312", "none", "any"),
            t3("py3", "none", "any"),
        ];
        want_tail.extend(
            (0..=11)
                .rev()
                .map(|m| t3(&format!("py3{m}"), "none", "any")),
        );
        assert_eq!(tail, want_tail);
        // No duplicates.
        let unique: std::collections::HashSet<_> = tags.iter().collect();
        assert_eq!(unique.len(), tags.len());
        // The python/abi tag outranks the platform.
        let idx = TagIndex::new(&t);
        let a = idx.rank(&WheelName::parse("c-1-cp311-abi3-manylinux_2_17_x86_64.whl").unwrap());
        let b = idx.rank(&WheelName::parse("c-1-cp39-abi3-manylinux_2_34_x86_64.whl").unwrap());
        assert!(a < b);
    }

    #[test]
    fn supported_tag_order_cp312_aarch64_and_musl() {
        let arm = supported_tags(&Target::manylinux((3, 12), Arch::Aarch64, (2, 36)));
        assert_eq!(arm.len(), 609);
        let head: Vec<_> = arm[..10].to_vec();
        let want: Vec<_> = (27..=36)
            .rev()
            .map(|m| t3("cp312", "cp312", &format!("manylinux_2_{m}_aarch64")))
            .collect();
        assert_eq!(head, want);
        assert_eq!(arm[19], t3("cp312", "cp312", "manylinux_2_17_aarch64"));
        assert_eq!(arm[20], t3("cp312", "cp312", "manylinux2014_aarch64"));
        assert_eq!(arm[21], t3("cp312", "cp312", "linux_aarch64"));
        assert_eq!(arm[22], t3("cp312", "abi3", "manylinux_2_36_aarch64"));
        assert_eq!(arm[608], t3("py30", "none", "any"));

        let musl = supported_tags(&Target::musllinux((3, 12), Arch::X86_64, (1, 2)));
        assert_eq!(musl.len(), 123);
        assert_eq!(
            &musl[..6],
            [
                t3("cp312", "cp312", "musllinux_1_2_x86_64"),
                t3("cp312", "cp312", "musllinux_1_1_x86_64"),
                t3("cp312", "cp312", "musllinux_1_0_x86_64"),
                t3("cp312", "cp312", "linux_x86_64"),
                t3("cp312", "abi3", "musllinux_1_2_x86_64"),
                t3("cp312", "abi3", "musllinux_1_1_x86_64"),
            ]
        );
        assert!(!musl.iter().any(|(_, _, p)| p.starts_with("manylinux")));

        // cp311: 27 blocks become 25 (one fewer abi3 and one fewer pyXY block).
        let cp311 = supported_tags(&Target::manylinux((3, 11), Arch::X86_64, (2, 36)));
        assert_eq!(cp311.len(), 25 * 36 + 14);
    }

    #[test]
    fn best_wheel_picks() {
        let numpy = wheels(&[
            "numpy-2.5.3-cp312-cp312-macosx_14_0_arm64.whl",
            "numpy-2.5.3-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
            "numpy-2.5.3-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
            "numpy-2.5.3-cp312-cp312-musllinux_1_2_aarch64.whl",
            "numpy-2.5.3-cp312-cp312-musllinux_1_2_x86_64.whl",
            "numpy-2.5.3-cp312-cp312-win_amd64.whl",
            "numpy-2.5.3-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        ]);
        let pick = |t: Target| best_wheel(&numpy, &t).map(|w| w.filename.as_str());
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::Aarch64, (2, 36))),
            Some("numpy-2.5.3-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl")
        );
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::X86_64, (2, 36))),
            Some("numpy-2.5.3-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl")
        );
        assert_eq!(
            pick(Target::musllinux((3, 12), Arch::X86_64, (1, 2))),
            Some("numpy-2.5.3-cp312-cp312-musllinux_1_2_x86_64.whl")
        );
        // glibc 2.17 is too old for every Linux wheel here.
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::X86_64, (2, 17))),
            None
        );
        // cp311 has no wheel at all.
        assert_eq!(
            pick(Target::manylinux((3, 11), Arch::X86_64, (2, 36))),
            None
        );

        // abi3: the newest glibc that fits wins among equal python/abi tags.
        let crypto = wheels(&[
            "cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl",
            "cryptography-50.0.2-cp311-abi3-manylinux_2_34_x86_64.whl",
            "cryptography-50.0.2-cp311-abi3-musllinux_1_2_x86_64.whl",
            "cryptography-50.0.2-cp39-abi3-manylinux_2_34_x86_64.whl",
            "cryptography-50.0.2-cp311-abi3-win_amd64.whl",
        ]);
        let pick = |t: Target| best_wheel(&crypto, &t).map(|w| w.filename.as_str());
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::X86_64, (2, 36))),
            Some("cryptography-50.0.2-cp311-abi3-manylinux_2_34_x86_64.whl")
        );
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::X86_64, (2, 31))),
            Some("cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl")
        );
        assert_eq!(
            pick(Target::musllinux((3, 12), Arch::X86_64, (1, 2))),
            Some("cryptography-50.0.2-cp311-abi3-musllinux_1_2_x86_64.whl")
        );
        // cp310 cannot use cp311-abi3 but can use cp39-abi3.
        assert_eq!(
            pick(Target::manylinux((3, 10), Arch::X86_64, (2, 36))),
            Some("cryptography-50.0.2-cp39-abi3-manylinux_2_34_x86_64.whl")
        );

        // A binary wheel beats the pure one; the pure one is the fallback elsewhere.
        let mixed = wheels(&[
            "pydantic_core-2.41.0-py3-none-any.whl",
            "pydantic_core-2.41.0-cp312-cp312-musllinux_1_1_x86_64.whl",
            "pydantic_core-2.41.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ]);
        let pick = |t: Target| best_wheel(&mixed, &t).map(|w| w.filename.as_str());
        assert_eq!(
            pick(Target::musllinux((3, 12), Arch::X86_64, (1, 2))),
            Some("pydantic_core-2.41.0-cp312-cp312-musllinux_1_1_x86_64.whl")
        );
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::X86_64, (2, 36))),
            Some("pydantic_core-2.41.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
        );
        assert_eq!(
            pick(Target::manylinux((3, 12), Arch::Aarch64, (2, 36))),
            Some("pydantic_core-2.41.0-py3-none-any.whl")
        );

        // Plain linux_ARCH ranks last among binary tags but is accepted.
        let plain = wheels(&[
            "x-1.0-cp312-cp312-linux_x86_64.whl",
            "x-1.0-py3-none-any.whl",
        ]);
        assert_eq!(
            best_wheel(&plain, &Target::manylinux((3, 12), Arch::X86_64, (2, 36)))
                .map(|w| w.filename.as_str()),
            Some("x-1.0-cp312-cp312-linux_x86_64.whl")
        );
    }

    #[test]
    fn best_wheel_ties() {
        let t = Target::manylinux((3, 12), Arch::X86_64, (2, 36));
        // Same tag: the higher build tag wins; no build tag is lowest.
        let ws = wheels(&[
            "x-1.0-py3-none-any.whl",
            "x-1.0-2-py3-none-any.whl",
            "x-1.0-10-py3-none-any.whl",
            "x-1.0-2a-py3-none-any.whl",
        ]);
        assert_eq!(
            best_wheel(&ws, &t).unwrap().filename,
            "x-1.0-10-py3-none-any.whl"
        );
        // A better tag beats a higher build tag.
        let ws = wheels(&["x-1.0-9-py3-none-any.whl", "x-1.0-cp312-none-any.whl"]);
        assert_eq!(
            best_wheel(&ws, &t).unwrap().filename,
            "x-1.0-cp312-none-any.whl"
        );
        // Full tie: the first listed wins.
        let ws = wheels(&["x-1.0-py2.py3-none-any.whl", "x-1.0-py3-none-any.whl"]);
        assert_eq!(
            best_wheel(&ws, &t).unwrap().filename,
            "x-1.0-py2.py3-none-any.whl"
        );
        assert_eq!(TagIndex::new(&t).best_index(&ws), Some(0));
        assert_eq!(best_wheel(&[], &t), None);
    }

    #[test]
    fn target_display_and_arch() {
        assert_eq!(
            Target::manylinux((3, 12), Arch::X86_64, DEBIAN_BOOKWORM_GLIBC).to_string(),
            "cp312 manylinux_2_36_x86_64"
        );
        assert_eq!(
            Target::musllinux((3, 13), Arch::Aarch64, (1, 2)).to_string(),
            "cp313 musllinux_1_2_aarch64"
        );
        assert_eq!(Arch::from_oci("amd64"), Some(Arch::X86_64));
        assert_eq!(Arch::from_oci("arm64"), Some(Arch::Aarch64));
        assert_eq!(Arch::from_oci("s390x"), None);
    }

    #[test]
    fn glibc_detection() {
        let banner = b"\x00\x7fELF junk GLIBC_2.2.5\x00GLIBC_2.34\x00GNU C Library (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36.\nCopyright";
        assert_eq!(glibc_version_from_libc(banner), Some((2, 36)));
        let symbols =
            b"\x00GLIBC_2.2.5\x00GLIBC_2.17\x00GLIBC_2.28\x00GLIBC_PRIVATE\x00GLIBC_2.3\x00";
        assert_eq!(glibc_version_from_libc(symbols), Some((2, 28)));
        assert_eq!(glibc_version_from_libc(b"musl libc"), None);
        assert_eq!(glibc_version_from_libc(b""), None);
    }
}

//! Platforms (`os/arch[/variant]`) as OCI names them.

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
/// An image platform: `linux/amd64`, `linux/arm/v7`.
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            arch: host_arch().into(),
            variant: None,
        }
    }

    pub fn parse(s: &str) -> std::result::Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!("platform {s:?} is not os/arch[/variant]"));
        }
        let os = parts[0].to_ascii_lowercase();
        if os != "linux" {
            return Err(format!("platform {s:?}: only linux images are built"));
        }
        let arch = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => "amd64".to_string(),
            "aarch64" | "arm64" => "arm64".to_string(),
            a @ ("arm" | "386" | "ppc64le" | "s390x" | "riscv64" | "mips64le" | "loong64") => {
                a.to_string()
            }
            other => return Err(format!("platform {s:?}: unknown architecture {other:?}")),
        };
        let mut variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        if arch == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform { os, arch, variant })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The host's architecture as an OCI platform architecture.
pub fn host_arch() -> &'static str {
    oci_arch(std::env::consts::ARCH)
}

/// The OCI architecture of a Rust target architecture (`x86_64` → `amd64`).
fn oci_arch(rust_arch: &'static str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_architecture_table() {
        // The sandbox and platform defaults once used two tables that
        // disagreed on 32-bit x86.
        assert_eq!(oci_arch("x86"), "386");
        assert_eq!(oci_arch("x86_64"), "amd64");
        assert_eq!(oci_arch("aarch64"), "arm64");
        assert_eq!(Platform::host().arch, host_arch());
        for a in ["386", "amd64", "arm64", "ppc64le", "s390x", "riscv64"] {
            let p = Platform::parse(&format!("linux/{a}")).unwrap();
            assert_eq!(p.arch, a);
        }
    }
}

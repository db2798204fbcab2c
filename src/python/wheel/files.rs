//! The layer entries an install produces, and merging several sources of them.

use std::collections::BTreeMap;

/// Mode of directories in the layer.
pub const DIR_MODE: u32 = 0o755;

/// Mode of regular, non-executable files.
pub const FILE_MODE: u32 = 0o644;

/// Mode of executables, scripts and launchers.
pub const EXEC_MODE: u32 = 0o755;

/// Mode recorded for symlinks (Linux always reports `lrwxrwxrwx`).
pub const SYMLINK_MODE: u32 = 0o777;

/// One entry of an OCI layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFile {
    /// Relative path, no leading or trailing `/`, e.g.
    /// `opt/venv/lib/python3.12/site-packages/x/__init__.py`.
    pub path: String,
    pub kind: LayerFileKind,
    /// Permission bits only (no file-type bits).
    pub mode: u32,
}

/// What a [`LayerFile`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerFileKind {
    Dir,
    File(Vec<u8>),
    /// Symlink with this target, stored verbatim.
    Symlink(String),
}

/// Two layer sources put different things at one path.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{path}: written twice with different content, kind or mode")]
pub struct LayerConflict {
    pub path: String,
}

/// Merge layer entries from several sources (the venv, then each wheel in a
/// fixed order) into one sorted list. Identical entries collapse to one;
/// a path written twice with different content, kind or mode is an error
/// (PYTHON-INSTALL.md §6, namespace packages).
pub fn merge_layer_files(
    parts: impl IntoIterator<Item = Vec<LayerFile>>,
) -> Result<Vec<LayerFile>, LayerConflict> {
    let mut all: BTreeMap<String, LayerFile> = BTreeMap::new();
    for part in parts {
        for file in part {
            match all.get(&file.path) {
                Some(existing) if *existing == file => {}
                Some(_) => return Err(LayerConflict { path: file.path }),
                None => {
                    all.insert(file.path.clone(), file);
                }
            }
        }
    }
    Ok(all.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::wheel::fixtures::*;

    #[test]
    fn merge_layers() {
        let a = vec![
            LayerFile {
                path: "opt".into(),
                kind: LayerFileKind::Dir,
                mode: DIR_MODE,
            },
            LayerFile {
                path: "opt/x".into(),
                kind: LayerFileKind::File(b"1".to_vec()),
                mode: FILE_MODE,
            },
        ];
        let b = vec![
            LayerFile {
                path: "opt".into(),
                kind: LayerFileKind::Dir,
                mode: DIR_MODE,
            },
            LayerFile {
                path: "opt/x".into(),
                kind: LayerFileKind::File(b"1".to_vec()),
                mode: FILE_MODE,
            },
            LayerFile {
                path: "a".into(),
                kind: LayerFileKind::Dir,
                mode: DIR_MODE,
            },
        ];
        let merged = merge_layer_files([a.clone(), b]).unwrap();
        assert_eq!(paths(&merged), ["a", "opt", "opt/x"]);
        let c = vec![LayerFile {
            path: "opt/x".into(),
            kind: LayerFileKind::File(b"2".to_vec()),
            mode: FILE_MODE,
        }];
        assert_eq!(
            merge_layer_files([a, c]).unwrap_err(),
            LayerConflict {
                path: "opt/x".into()
            }
        );
    }
}

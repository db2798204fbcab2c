//! Helpers the uv tests share: a store, executables, and a stand-in uv.

use super::{Uv, UvOrigin, probe};
use crate::store::Store;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(super) fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

pub(super) fn write_exe(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub(super) fn version_script(v: &str) -> String {
    format!("#!/bin/sh\necho \"uv {v} (fake 2024-01-01)\"\n")
}

/// A stand-in for uv: `lock` writes a uv.lock recording its arguments and
/// the pyproject; `build` writes a wheel named after the source.
pub(super) const FAKE_UV: &str = r##"#!/bin/sh
case "$1" in
--version) echo "uv 0.0.1 (fake 2024-01-01)";;
lock)
  if grep -q fail-me pyproject.toml; then
echo "Using CPython 3.11.7 interpreter at: /usr/bin/python3" >&2
echo "  × No solution found when resolving dependencies:" >&2
echo "  ╰─▶ fail-me was not found in https://user:s3cret@index.example/simple" >&2
echo "hint: Consider limiting your project's supported Python versions using \`requires-python\`." >&2
exit 1
  fi
  { echo "version = 1"; echo "# args: $*"; echo "# cwd-name: $(basename "$PWD")"; sed 's/^/# /' pyproject.toml; } > uv.lock;;
build)
  out=""; prev=""; src=""
  for a in "$@"; do
[ "$prev" = "--out-dir" ] && out="$a"
prev="$a"; src="$a"
  done
  case "$src" in
*native*) name="pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";;
*broken*) echo "error: backend failed for https://tok@index.example/simple" >&2; exit 2;;
*) name="pkg-1.0-py3-none-any.whl";;
  esac
  echo "$*" > "$out/$name"
  echo "Successfully built $out/$name" >&2;;
*) echo "unexpected: $*" >&2; exit 2;;
esac
"##;

pub(super) fn fake_uv(dir: &Path) -> Uv {
    let exe = dir.join("fake-uv/uv");
    write_exe(&exe, FAKE_UV);
    probe(&exe, UvOrigin::Path).unwrap()
}

//! Test helpers for names that are not UTF-8, shared by the layer and RUN
//! diff tests.

use crate::store::{LayerDesc, Store};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `dir` joined with a name given as bytes.
pub(crate) fn raw(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// (path, link target) bytes of every entry of a gzip layer.
pub(crate) fn layer_names(store: &Store, d: &LayerDesc) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let blob = store.read_blob(&d.digest).unwrap();
    let mut ar = ::tar::Archive::new(flate2::read::MultiGzDecoder::new(&blob[..]));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            (e.path_bytes().into_owned(), link)
        })
        .collect()
}

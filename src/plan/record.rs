//! Build records: what each step of an image was made from at its last
//! build, so `plan` can say why a step misses.

use crate::digest::Digest;
use crate::error::Result;
use crate::layer::files::FileEntry;
use crate::plan::{Action, Step};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub key: Digest,
    pub options: BTreeMap<String, String>,
    /// Layer path → short fingerprint (hash, mode, owner, link target).
    pub files: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    pub steps: Vec<StepRecord>,
    /// Blobs the last build produced (kept by `cache prune` while the record lives).
    pub blobs: Vec<Digest>,
}

impl ImageRecord {
    pub fn load(store: &Store, id: &Digest) -> Option<ImageRecord> {
        let bytes = std::fs::read(store.record_path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Saves the record of a build unless the stored one has the same step
    /// keys and blobs (checked through a small summary, so a no-op build does
    /// not rewrite a record of every file).
    pub fn save(store: &Store, id: &Digest, steps: &[Step], blobs: Vec<Digest>) -> Result<()> {
        let path = store.record_path(id);
        let summary_path = path.with_extension("keys");
        let mut summary = String::new();
        for s in steps {
            summary.push_str(&s.key.hex());
            summary.push('\n');
        }
        summary.push_str("--\n");
        for b in &blobs {
            summary.push_str(&b.hex());
            summary.push('\n');
        }
        if path.is_file()
            && std::fs::read(&summary_path).ok().as_deref() == Some(summary.as_bytes())
        {
            // Touch both so prune sees them as in use.
            for p in [&path, &summary_path] {
                let _ = std::fs::File::options()
                    .append(true)
                    .open(p)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            }
            return Ok(());
        }
        let record = RecordOut {
            steps: steps.iter().map(StepOut).collect(),
            blobs,
        };
        store.write_atomic_with(&path, |f| {
            let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
            serde_json::to_writer(&mut w, &record)?;
            w.flush()
        })?;
        store.write_atomic(&summary_path, summary.as_bytes())
    }
}

/// An [`ImageRecord`] as it is written: each step's files are taken from
/// the step while they are written, not gathered into a map first (for a
/// step of 200k files that map and its JSON were the build's peak memory).
#[derive(Serialize)]
struct RecordOut<'a> {
    steps: Vec<StepOut<'a>>,
    blobs: Vec<Digest>,
}

/// A [`StepRecord`] as it is written, from the step.
struct StepOut<'a>(&'a Step);

impl Serialize for StepOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let step = self.0;
        let mut st = s.serialize_struct("StepRecord", 4)?;
        st.serialize_field("name", &step.name)?;
        st.serialize_field("key", &step.key)?;
        st.serialize_field("options", &step.options)?;
        match &step.action {
            Action::Files {
                fetch: None,
                entries,
                ..
            } => st.serialize_field("files", &FilesOut(entries))?,
            _ => st.serialize_field("files", &step.record().files)?,
        }
        st.end()
    }
}

/// A file layer's entries as the record's map of layer path to fingerprint
/// (entries are in layer order, which is the map's).
struct FilesOut<'a>(&'a [FileEntry]);

impl Serialize for FilesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(
            self.0
                .iter()
                .map(|e| (e.path.to_string(), super::copy::fingerprint(e))),
        )
    }
}

fn list(label: &str, items: &[&String]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let shown: Vec<&str> = items.iter().take(5).map(|s| s.as_str()).collect();
    let more = if items.len() > 5 {
        format!(" (+{} more)", items.len() - 5)
    } else {
        String::new()
    };
    Some(format!(
        "{label} {}: {}{more}",
        items.len(),
        shown.join(", ")
    ))
}

/// Why `now` (step `index`) misses, compared with the previous build.
pub fn explain(prev: Option<&ImageRecord>, index: usize, now: &StepRecord) -> Vec<String> {
    let Some(prev) = prev else {
        return vec!["first build of this image (no earlier build recorded)".into()];
    };
    let old = prev
        .steps
        .iter()
        .find(|s| s.name == now.name)
        .or_else(|| prev.steps.get(index));
    let Some(old) = old else {
        return vec!["new step".into()];
    };
    if old.key == now.key {
        return vec!["its layer is no longer in the store (pruned?)".into()];
    }
    let mut why = Vec::new();
    for (k, v) in &now.options {
        match old.options.get(k) {
            Some(o) if o != v => why.push(format!("option {k} changed: {o} → {v}")),
            None => why.push(format!("option {k} added: {v}")),
            _ => {}
        }
    }
    let added: Vec<&String> = now
        .files
        .keys()
        .filter(|k| !old.files.contains_key(*k))
        .collect();
    let removed: Vec<&String> = old
        .files
        .keys()
        .filter(|k| !now.files.contains_key(*k))
        .collect();
    let changed: Vec<&String> = now
        .files
        .iter()
        .filter(|(k, v)| old.files.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    why.extend(list("files added", &added));
    why.extend(list("files removed", &removed));
    why.extend(list("files changed", &changed));
    if why.is_empty() {
        why.push("the engine's layer format changed".into());
    }
    why
}

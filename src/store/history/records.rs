//! Reading and writing version records: a record is written relative to its first
//! parent's files when that is smaller ([`codec::encode_version_against`]), and read back
//! by reading that parent's record first (at most [`codec::MAX_RECORD_DEPTH`] deep).

use std::collections::HashMap;

use crate::model::{Entry, Version, VersionId};

use super::super::frame::TreeId;
use super::super::{Handles, Store, StoreError, unframe};
use super::{HistoryStore, codec, corrupt, key};

/// The key of a version record.
pub(in crate::store) fn version_key(id: VersionId) -> Vec<u8> {
    key(b'v', &[&id.0.to_be_bytes()])
}

/// Decodes a framed version record, reading the records a relative one is written against.
///
/// # Errors
/// sled failed, or the record (or one it is written against) does not decode.
pub(in crate::store) fn version_record(
    h: &Handles,
    key: &[u8],
    v: &[u8],
) -> Result<Version, StoreError> {
    FilesRead::default().version(h, key, v)
}

/// The files of the versions read so far by one scan of many records (a log, every
/// version): a chain of relative records is read once, not once per record.
#[derive(Debug, Default)]
pub(in crate::store) struct FilesRead(HashMap<VersionId, Vec<Entry>>);

impl FilesRead {
    /// Decodes a framed version record (see [`version_record`]).
    ///
    /// # Errors
    /// sled failed, or the record (or one it is written against) does not decode.
    pub(in crate::store) fn version(
        &mut self,
        h: &Handles,
        key: &[u8],
        v: &[u8],
    ) -> Result<Version, StoreError> {
        let v = self.decode(h, key, v, codec::MAX_RECORD_DEPTH)?;
        self.0.insert(v.id, v.entries.clone());
        Ok(v)
    }

    fn decode(
        &mut self,
        h: &Handles,
        key: &[u8],
        v: &[u8],
        hops: u8,
    ) -> Result<Version, StoreError> {
        let bytes = unframe(TreeId::History, key, v)?;
        let mut failed = None;
        let version = codec::decode_version_with(bytes, |base| {
            if let Some(files) = self.0.get(&base) {
                return Some(files.clone());
            }
            let found = hops
                .checked_sub(1)
                .ok_or_else(|| corrupt("a chain of relative version records too long"))
                .and_then(|hops| {
                    let k = version_key(base);
                    match h.history.get(&k)? {
                        Some(v) => self.decode(h, &k, &v, hops).map(|v| Some(v.entries)),
                        None => Ok(None),
                    }
                });
            found.unwrap_or_else(|e| {
                failed = Some(e);
                None
            })
        });
        match (version, failed) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(corrupt(e)),
        }
    }
}

/// The version records one batch writes: each is written against its first parent's
/// files, found among those written before it in the batch or in the store.
#[derive(Debug, Default)]
pub(in crate::store) struct Records(HashMap<VersionId, (Vec<Entry>, u8)>);

impl Records {
    /// Writes a version record and its index entries into `batch`.
    pub(in crate::store) fn add(
        &mut self,
        store: &Store,
        h: &Handles,
        batch: &mut sled::Batch,
        v: &Version,
    ) {
        let base = v
            .parents
            .first()
            .and_then(|&p| self.files_of(h, p).map(|f| (p, f)));
        let value = codec::encode_version_against(
            v,
            base.as_ref()
                .map(|(id, (entries, depth))| codec::RecordBase {
                    id: *id,
                    entries,
                    depth: *depth,
                }),
        );
        let depth = codec::record_base(&value).map_or(0, |(_, d)| d);
        let [rec, by_loc, by_hash] = HistoryStore::version_keys(v);
        batch.insert(rec.clone(), store.frame(TreeId::History, &rec, &value));
        // Index entries are not framed: a salvage rebuilds them from the version records.
        batch.insert(by_loc, &[]);
        batch.insert(by_hash, &[]);
        self.0.insert(v.id, (v.entries.clone(), depth));
    }

    /// The files of version `id` and its record's depth; `None` when it is not there or
    /// does not read (its child is then written whole).
    fn files_of(&self, h: &Handles, id: VersionId) -> Option<(Vec<Entry>, u8)> {
        if let Some(found) = self.0.get(&id) {
            return Some(found.clone());
        }
        let k = version_key(id);
        let v = h.history.get(&k).ok()??;
        let depth =
            codec::record_base(unframe(TreeId::History, &k, &v).ok()?).map_or(0, |(_, d)| d);
        let version = version_record(h, &k, &v).ok()?;
        Some((version.entries, depth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Location, Origin};

    /// Version `id` of one three-file skill whose first file changes every time.
    fn version(id: u64) -> Version {
        let entry = |path: &str, blob: u64| Entry {
            path: path.into(),
            blob: format!("{blob:064x}"),
            size: 10,
            mode: 0o644,
            symlink: None,
        };
        Version {
            id: VersionId(id),
            location: Location::collection("default", "skills/a"),
            content_hash: format!("{id:064x}"),
            single_file: false,
            entries: vec![entry("SKILL.md", id), entry("a.md", 0), entry("b.md", 0)],
            parents: id
                .checked_sub(1)
                .filter(|&p| p > 0)
                .map(VersionId)
                .into_iter()
                .collect(),
            time_ms: id as i64,
            origin: Origin::Watch,
            message: None,
            tags: Vec::new(),
        }
    }

    #[test]
    fn chains_of_relative_records_read_back_and_survive_removals() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let hs = store.history().unwrap();
        let mut all: Vec<Version> = (1..=20).map(version).collect();
        // Half in one batch (written against each other), half one by one.
        hs.put_versions(&all[..10]).unwrap();
        for v in &all[10..] {
            hs.put_versions(std::slice::from_ref(v)).unwrap();
        }
        let depths: Vec<u8> = store
            .with(|h| {
                Ok(h.history
                    .scan_prefix([b'v'])
                    .values()
                    .map(|v| {
                        let v = v.unwrap();
                        let bytes = crate::store::frame::decode(&v)
                            .unwrap()
                            .value
                            .unwrap()
                            .to_vec();
                        codec::record_base(&bytes).map_or(0, |(_, d)| d)
                    })
                    .collect())
            })
            .unwrap();
        let max = codec::MAX_RECORD_DEPTH;
        let expected: Vec<u8> = (0..20u8).map(|n| n % (max + 1)).collect();
        assert_eq!(depths, expected);
        assert_eq!(hs.all_versions().unwrap(), all);

        // Versions 2 to 12 go; 13, written against 12, is rewritten against 1.
        let removed: Vec<Version> = all.drain(1..12).collect();
        all[1].parents = vec![VersionId(1)];
        hs.remove(&[], &removed, &all[1..2]).unwrap();
        assert_eq!(hs.all_versions().unwrap(), all);
        assert_eq!(hs.totals().unwrap(), hs.recount().unwrap());
    }
}

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
    decode(h, key, v, codec::MAX_RECORD_DEPTH)
}

fn decode(h: &Handles, key: &[u8], v: &[u8], hops: u8) -> Result<Version, StoreError> {
    let bytes = unframe(TreeId::History, key, v)?;
    let mut failed = None;
    let version = codec::decode_version_with(bytes, |base| {
        let found = hops
            .checked_sub(1)
            .ok_or_else(|| corrupt("a chain of relative version records too long"))
            .and_then(|hops| {
                let k = version_key(base);
                match h.history.get(&k)? {
                    Some(v) => decode(h, &k, &v, hops).map(|v| Some(v.entries)),
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

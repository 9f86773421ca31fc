//! Store tree for the write-back operations log.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `operations` | operation id, big-endian u64 (so keys sort by id) | framed JSON [`OperationRecord`] |
//!
//! Ids are assigned here: one past the largest ever written, starting at 1.

use crate::model::OperationRecord;

use super::frame::TreeId;
use super::{Store, StoreError, unframe};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: TreeId::Operations.name(),
        detail: e.to_string(),
    }
}

fn decode(key: &[u8], v: &[u8]) -> Result<OperationRecord, StoreError> {
    serde_json::from_slice(unframe(TreeId::Operations, key, v)?).map_err(corrupt)
}

impl Store {
    /// The id the next recorded operation gets.
    ///
    /// # Errors
    /// sled failed.
    pub fn next_operation_id(&self) -> Result<u64, StoreError> {
        self.with(|h| {
            Ok(h.operations
                .last()?
                .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
                .map_or(1, |id| id + 1))
        })
    }

    /// Writes (or rewrites) one operation record and flushes.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_operation(&self, op: &OperationRecord) -> Result<(), StoreError> {
        let v = serde_json::to_vec(op).map_err(corrupt)?;
        let k = op.id.to_be_bytes();
        let v = self.frame(TreeId::Operations, &k, &v);
        self.with(|h| {
            h.operations.insert(k, v)?;
            Ok(())
        })?;
        self.flush()
    }

    /// One operation record.
    ///
    /// # Errors
    /// sled failed; the record does not decode.
    pub fn operation(&self, id: u64) -> Result<Option<OperationRecord>, StoreError> {
        let k = id.to_be_bytes();
        self.with(|h| h.operations.get(k)?.map(|v| decode(&k, &v)).transpose())
    }

    /// Every operation record, oldest first.
    ///
    /// # Errors
    /// sled failed; a record does not decode.
    pub fn all_operations(&self) -> Result<Vec<OperationRecord>, StoreError> {
        self.with(|h| {
            h.operations
                .iter()
                .map(|kv| {
                    let (k, v) = kv?;
                    decode(&k, &v)
                })
                .collect()
        })
    }
}

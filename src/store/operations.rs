//! Store tree for the write-back operations log.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `operations` | operation id, big-endian u64 (so keys sort by id) | JSON [`OperationRecord`] |
//!
//! Ids are assigned here: one past the largest ever written, starting at 1.

use crate::model::OperationRecord;

use super::{Store, StoreError};

const TREE: &str = "operations";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: TREE,
        detail: e.to_string(),
    }
}

impl Store {
    fn operations(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(TREE)?)
    }

    /// The id the next recorded operation gets.
    ///
    /// # Errors
    /// sled failed.
    pub fn next_operation_id(&self) -> Result<u64, StoreError> {
        Ok(self
            .operations()?
            .last()?
            .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
            .map_or(1, |id| id + 1))
    }

    /// Writes (or rewrites) one operation record and flushes.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_operation(&self, op: &OperationRecord) -> Result<(), StoreError> {
        let v = serde_json::to_vec(op).map_err(corrupt)?;
        self.operations()?.insert(op.id.to_be_bytes(), v)?;
        self.flush()
    }

    /// One operation record.
    ///
    /// # Errors
    /// sled failed; the record does not decode.
    pub fn operation(&self, id: u64) -> Result<Option<OperationRecord>, StoreError> {
        self.operations()?
            .get(id.to_be_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }

    /// Every operation record, oldest first.
    ///
    /// # Errors
    /// sled failed; a record does not decode.
    pub fn all_operations(&self) -> Result<Vec<OperationRecord>, StoreError> {
        self.operations()?
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(corrupt)
            })
            .collect()
    }
}

/// Operation records as they are written: [`Store::watch_operations`].
pub struct OperationWatch {
    sub: sled::Subscriber,
}

impl std::fmt::Debug for OperationWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperationWatch")
    }
}

impl OperationWatch {
    /// The next record written (a rewrite of an old one too); None when the store closes.
    /// Read promptly: sled holds at most 1024 unread records before writers wait.
    pub async fn next(&mut self) -> Option<OperationRecord> {
        loop {
            match (&mut self.sub).await? {
                sled::Event::Insert { value, .. } => match serde_json::from_slice(&value) {
                    Ok(rec) => return Some(rec),
                    Err(e) => tracing::warn!("{}", corrupt(e)),
                },
                sled::Event::Remove { .. } => {}
            }
        }
    }
}

impl Store {
    /// Every operation record written from now on, as it is written.
    ///
    /// # Errors
    /// sled failed.
    pub fn watch_operations(&self) -> Result<OperationWatch, StoreError> {
        Ok(OperationWatch {
            sub: self.operations()?.watch_prefix(Vec::<u8>::new()),
        })
    }
}

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

/// Operation records as they are written: [`Store::watch_operations`].
pub struct OperationWatch {
    store: Store,
    /// The subscription to the database in use (made again after a reopen or repair).
    sub: Option<sled::Subscriber>,
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
            let Some(sub) = self.sub.as_mut() else {
                if self.store.is_closed() {
                    return None;
                }
                // The store is being reopened or repaired: follow the new database.
                match self
                    .store
                    .with(|h| Ok(h.operations.watch_prefix(Vec::<u8>::new())))
                {
                    Ok(s) => self.sub = Some(s),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                }
                continue;
            };
            match sub.await {
                None => self.sub = None,
                Some(sled::Event::Insert { key, value }) => match decode(&key, &value) {
                    Ok(rec) => return Some(rec),
                    Err(e) => tracing::warn!("{e}"),
                },
                Some(sled::Event::Remove { .. }) => {}
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
        let sub = self.with(|h| Ok(h.operations.watch_prefix(Vec::<u8>::new())))?;
        Ok(OperationWatch {
            store: self.clone(),
            sub: Some(sub),
        })
    }
}

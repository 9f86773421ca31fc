//! Store tree for the write-back operations log.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `operations` | operation id, big-endian u64 (so keys sort by id) | framed JSON [`OperationRecord`] |
//!
//! An operation's id is reserved, and its `running` record written and flushed, before the
//! operation does anything ([`Store::begin_operation`]); ids come from the `operation`
//! counter (see [`super::ids`]), so concurrent operations never share one and a crash never
//! makes one reused.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `swept.after_operation` | framed: the last operation id handed out when the managed folders were last swept whole (u64 LE) |
//!
//! Every write into a managed folder belongs to an operation, so a write that may have
//! left a staging or parking copy behind (a kill between two of its syscalls) always
//! follows an id handed out after the last whole sweep: while the counter still equals
//! `swept.after_operation`, no leftover can exist and the start-up sweep is skipped
//! ([`Store::sweep_owed`]). A store without the key (new, salvaged, or written by an older
//! version) owes a sweep.

use crate::model::OperationRecord;

use super::frame::{self, TreeId};
use super::ids::{IdKind, highest};
use super::{Handles, Store, StoreError, unframe};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: TreeId::Operations.name(),
        detail: e.to_string(),
    }
}

fn decode(key: &[u8], v: &[u8]) -> Result<OperationRecord, StoreError> {
    serde_json::from_slice(unframe(TreeId::Operations, key, v)?).map_err(corrupt)
}

/// The highest operation id in the log (where the counter starts when it does not exist).
fn highest_stored(h: &Handles) -> Result<u64, StoreError> {
    Ok(highest(h.operations.last()?.map(|(k, _)| k)))
}

/// `meta` key of the last operation id a whole sweep came after.
const SWEPT_KEY: &[u8] = b"swept.after_operation";

impl Store {
    /// The last operation id handed out (0 when none ever was).
    ///
    /// # Errors
    /// sled failed; the counter does not decode.
    pub fn last_operation_id(&self) -> Result<u64, StoreError> {
        self.last_id(IdKind::Operation, highest_stored)
    }

    /// Whether the managed folders may hold leftovers of a write: an operation began since
    /// they were last swept whole (`last` is [`Store::last_operation_id`]), or no whole
    /// sweep is on record.
    ///
    /// # Errors
    /// sled failed.
    pub fn sweep_owed(&self, last: u64) -> Result<bool, StoreError> {
        // A value that does not decode is as good as none: sweep.
        let swept = self.with(|h| Ok(self.meta_number(h, SWEPT_KEY).ok().flatten()))?;
        Ok(swept != Some(last))
    }

    /// Records that the managed folders were swept whole with `last` the last operation id
    /// handed out before the sweep began. Not flushed: a record lost in a crash only costs
    /// the next start a sweep.
    ///
    /// # Errors
    /// sled failed.
    pub fn swept_after(&self, last: u64) -> Result<(), StoreError> {
        let v = frame::encode(
            TreeId::Meta,
            self.next_stamp(),
            SWEPT_KEY,
            Some(&last.to_le_bytes()),
        );
        self.with(|h| {
            h.meta.insert(SWEPT_KEY, v)?;
            Ok(())
        })
    }

    /// Reserves a fresh id for `op` and stores it as it is (normally `running`), flushed:
    /// from here on the id is taken for good.
    ///
    /// # Errors
    /// sled failed.
    pub fn begin_operation(&self, op: &mut OperationRecord) -> Result<u64, StoreError> {
        op.id = self.allocate_id(IdKind::Operation, highest_stored)?;
        self.put_operation(op)?;
        Ok(op.id)
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
        // A store being repaired or reopened: the watch subscribes once it is back.
        let sub = self
            .with(|h| Ok(h.operations.watch_prefix(Vec::<u8>::new())))
            .ok();
        Ok(OperationWatch {
            store: self.clone(),
            sub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OperationStatus;

    fn record() -> OperationRecord {
        serde_json::from_str(
            r#"{"id":0,"time_ms":1,"operation":"sync_pull","targets":[],
            "files_restored":[],"files_merged":[],"files_conflicted":[],
            "safety_snapshots":[],"touched":[],"success":false,"error":null,
            "status":"running"}"#,
        )
        .unwrap()
    }

    #[test]
    fn reserved_ids_survive_a_restart_and_old_logs_continue() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Store::open(d.path()).unwrap();
            // A log written before the counter existed: ids 1 and 7.
            for id in [1, 7] {
                let rec = OperationRecord { id, ..record() };
                s.put_operation(&rec).unwrap();
            }
            let mut r = record();
            assert_eq!(s.begin_operation(&mut r).unwrap(), 8);
            assert_eq!(
                s.operation(8).unwrap().unwrap().status(),
                OperationStatus::Running
            );
            // No further flush: the reservation itself was durable.
        }
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.begin_operation(&mut record()).unwrap(), 9);
        let ids: Vec<u64> = s.all_operations().unwrap().iter().map(|o| o.id).collect();
        assert_eq!(ids, [1, 7, 8, 9]);
    }

    #[test]
    fn a_sweep_is_owed_until_one_is_recorded_and_again_after_the_next_operation() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Store::open(d.path()).unwrap();
            // A log written before the counter existed: its highest id counts.
            s.put_operation(&OperationRecord { id: 3, ..record() })
                .unwrap();
            assert_eq!(s.last_operation_id().unwrap(), 3);
            assert!(s.sweep_owed(3).unwrap(), "no sweep on record");
            s.swept_after(3).unwrap();
            assert!(!s.sweep_owed(3).unwrap());
            s.flush().unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        assert!(!s.sweep_owed(s.last_operation_id().unwrap()).unwrap());
        s.begin_operation(&mut record()).unwrap();
        let last = s.last_operation_id().unwrap();
        assert_eq!(last, 4);
        assert!(s.sweep_owed(last).unwrap(), "an operation began since");
    }
}

//! Id allocation: operation, version and snapshot ids are dense (`1, 2, 3…` per kind),
//! unique under concurrent callers and never handed out twice, not even after a crash.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `ids.<kind>` | framed: the last id handed out (u64 LE) |
//!
//! Each kind has a counter in `meta`, advanced with one compare-and-swap
//! (`update_and_fetch`), so two threads never get the same id. A counter that is absent
//! (a new store, or one written before counters existed, when ids came from sled's
//! `generate_id` and jumped by about a million at every start) starts after the highest
//! id present, so existing stores keep working and continue from there. No counter ever
//! hands out a version or snapshot id at or below the store's `id_floor`: a salvage of a damaged store raises
//! the floor above every id it found and carries the old counters over, so ids of records
//! it could not save are not handed out again either.
//!
//! Durability: the counter is flushed with whatever first names the id. Operation ids are
//! flushed at once with their `running` record ([`Store::begin_operation`]); a version or
//! snapshot id is flushed with its record. Should the process die before that flush, the
//! counter step is lost together with everything that named the id, so handing it out
//! again cannot confuse two things. Ids of removed versions and snapshots are not reused:
//! the counter only moves forward.

use super::frame::{self, TreeId};
use super::{Handles, Store, StoreError, unframe};

/// What an id numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Operation,
    Version,
    Snapshot,
}

impl IdKind {
    pub(super) const ALL: [IdKind; 3] = [IdKind::Operation, IdKind::Version, IdKind::Snapshot];

    pub(super) fn key(self) -> &'static [u8] {
        match self {
            IdKind::Operation => b"ids.operation",
            IdKind::Version => b"ids.version",
            IdKind::Snapshot => b"ids.snapshot",
        }
    }
}

/// The id carried by the last key of `keys` (ids are big-endian at the end of each key).
pub(super) fn highest(last_key: Option<sled::IVec>) -> u64 {
    last_key
        .and_then(|k| {
            let k = k.as_ref();
            let start = k.len().checked_sub(8)?;
            k[start..].try_into().ok().map(u64::from_be_bytes)
        })
        .unwrap_or(0)
}

/// The number a framed counter holds; `None` when it is not one.
fn counter(key: &[u8], v: &[u8]) -> Option<u64> {
    unframe(TreeId::Meta, key, v)
        .ok()?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

impl Store {
    /// Hands out the next id of `kind`. `present` gives the highest id of that kind already
    /// stored; it is asked only when the counter does not exist yet.
    ///
    /// # Errors
    /// sled failed.
    pub(super) fn allocate_id(
        &self,
        kind: IdKind,
        present: impl FnOnce(&Handles) -> Result<u64, StoreError>,
    ) -> Result<u64, StoreError> {
        let key = kind.key();
        self.with(|h| {
            // The floor is what a salvage found of versions and snapshots.
            let floor = match kind {
                IdKind::Operation => 0,
                IdKind::Version | IdKind::Snapshot => self.id_floor(h)?,
            };
            let start = match h.meta.get(key)? {
                Some(_) => 0,
                None => present(h)?,
            }
            .max(floor);
            let mut next = 0;
            h.meta.update_and_fetch(key, |old| {
                let last = old
                    .and_then(|v| counter(key, v))
                    .unwrap_or(start)
                    .max(floor);
                next = last.saturating_add(1);
                Some(frame::encode(
                    TreeId::Meta,
                    self.next_stamp(),
                    key,
                    Some(&next.to_le_bytes()),
                ))
            })?;
            Ok(next)
        })
    }

    /// The last id of `kind` handed out: its counter, or when there is none yet, what
    /// `present` gives (the highest id stored, as [`Store::allocate_id`] would start from).
    ///
    /// # Errors
    /// sled failed.
    pub(super) fn last_id(
        &self,
        kind: IdKind,
        present: impl FnOnce(&Handles) -> Result<u64, StoreError>,
    ) -> Result<u64, StoreError> {
        let key = kind.key();
        self.with(|h| match h.meta.get(key)?.and_then(|v| counter(key, &v)) {
            Some(n) => Ok(n),
            None => present(h),
        })
    }

    /// Raises the counter of `kind` to at least `last` (a salvage carrying counters over).
    pub(super) fn raise_counter(
        &self,
        h: &Handles,
        kind: IdKind,
        last: u64,
    ) -> Result<(), StoreError> {
        let key = kind.key();
        h.meta.update_and_fetch(key, |old| {
            let now = old.and_then(|v| counter(key, v)).unwrap_or(0).max(last);
            Some(frame::encode(
                TreeId::Meta,
                self.next_stamp(),
                key,
                Some(&now.to_le_bytes()),
            ))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn ids_are_dense_unique_under_threads_and_continue_after_reopen() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Arc::new(Store::open(d.path()).unwrap());
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let s = Arc::clone(&s);
                    std::thread::spawn(move || {
                        (0..50)
                            .map(|_| s.allocate_id(IdKind::Snapshot, |_| Ok(0)).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let all: BTreeSet<u64> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            assert_eq!(all, (1..=400).collect());
            assert_eq!(s.allocate_id(IdKind::Version, |_| Ok(0)).unwrap(), 1);
            s.flush().unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        let never_asked = |_: &Handles| -> Result<u64, StoreError> { panic!("the counter exists") };
        assert_eq!(s.allocate_id(IdKind::Snapshot, never_asked).unwrap(), 401);
        assert_eq!(s.allocate_id(IdKind::Version, never_asked).unwrap(), 2);
    }

    #[test]
    fn a_store_without_counters_continues_after_its_highest_id() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert_eq!(
            s.allocate_id(IdKind::Version, |_| Ok(2_000_003)).unwrap(),
            2_000_004
        );
        assert_eq!(highest(None), 0);
        assert_eq!(
            highest(Some(sled::IVec::from(&b"v\0\0\0\0\0\0\0\x07"[..]))),
            7
        );
    }
}

//! Store trees for live drift: the event journal and the last known drift state.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `journal` | cursor, big-endian u64 (so keys sort by cursor) | JSON [`Event`] |
//! | `state` | artifact key (bytes) | JSON [`KnownDrift`] |
//!
//! Cursors are assigned here, monotonically: the next cursor is one past the largest ever
//! written (kept in `meta` as `next_cursor`, a framed u64 LE, so pruning the journal never
//! reuses one, and a repaired store salvages it). Both trees are derived: a repair starts
//! them afresh.

use std::sync::atomic::Ordering;

use crate::model::{Event, KnownDrift};

use super::frame::TreeId;
use super::{Store, StoreError};

const NEXT_CURSOR: &str = "next_cursor";

fn corrupt(tree: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    }
}

impl Store {
    /// The cursor the next appended event will get.
    ///
    /// # Errors
    /// sled failed.
    pub fn next_cursor(&self) -> Result<u64, StoreError> {
        self.with(|h| {
            let stored = self.meta_number(h, NEXT_CURSOR.as_bytes())?.unwrap_or(1);
            let after_last = h
                .journal
                .range(..self.journal_limit().saturating_add(1).to_be_bytes())
                .next_back()
                .transpose()?
                .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
                .map_or(1, |c| c + 1);
            Ok(stored.max(after_last))
        })
    }

    /// Appends events (their cursors already assigned, ascending) and flushes, so an event
    /// is durable before anyone is told about it.
    ///
    /// # Errors
    /// sled failed.
    pub fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for e in events {
            let v = serde_json::to_vec(e).map_err(|e| corrupt("journal", e))?;
            batch.insert(&e.cursor.to_be_bytes(), v);
        }
        let next = self.frame(
            TreeId::Meta,
            NEXT_CURSOR.as_bytes(),
            &(last.cursor + 1).to_le_bytes(),
        );
        let mut keys = Vec::with_capacity(events.len());
        for e in events {
            keys.push(e.cursor.to_be_bytes());
        }
        let result = self
            .with(|h| {
                h.journal.apply_batch(batch)?;
                h.counts.journal_events.add(keys.len() as i64);
                h.meta.insert(NEXT_CURSOR, next)?;
                Ok(())
            })
            .and_then(|()| self.flush());
        let durable = &self.shared.journal_durable;
        if let Err(e) = result {
            // Not durable, so not appended. Their cursors are handed out again, and sled,
            // failed after the I/O error, may refuse to take them back out of its memory:
            // until a later append is durable, reads stop before them.
            let _ = self.with(|h| {
                for k in &keys {
                    h.journal.remove(k)?;
                }
                Ok(())
            });
            if let Some(counts) = self.counts() {
                counts.journal_events.forget();
            }
            durable.fetch_min(events[0].cursor.saturating_sub(1), Ordering::SeqCst);
            return Err(e);
        }
        if durable.load(Ordering::SeqCst) != u64::MAX {
            durable.store(last.cursor, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The last cursor a read may return (see `Shared::journal_durable`).
    fn journal_limit(&self) -> u64 {
        self.shared.journal_durable.load(Ordering::SeqCst)
    }

    /// Events with a cursor greater than `after`, ascending, at most `limit`.
    ///
    /// # Errors
    /// sled failed, or an event does not decode.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        let durable = self.journal_limit();
        if after >= durable {
            return Ok(Vec::new());
        }
        let end = durable.saturating_add(1).to_be_bytes();
        self.with(|h| {
            h.journal
                .range(start..end)
                .take(limit)
                .map(|kv| {
                    let (_, v) = kv?;
                    serde_json::from_slice(&v).map_err(|e| corrupt("journal", e))
                })
                .collect()
        })
    }

    /// The oldest cursor still in the journal, if any.
    ///
    /// # Errors
    /// sled failed.
    pub fn first_cursor(&self) -> Result<Option<u64>, StoreError> {
        self.with(|h| {
            Ok(h.journal
                .first()?
                .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
                .filter(|&c| c <= self.journal_limit()))
        })
    }

    /// Number of events in the journal (0 when the store cannot answer): a counter, after
    /// one count the first time.
    pub fn journal_len(&self) -> usize {
        let limit = self.journal_limit();
        self.with(|h| {
            Ok(if limit == u64::MAX {
                h.counts.journal_events.get_or(|| h.journal.len() as u64) as usize
            } else {
                h.journal
                    .range(..limit.saturating_add(1).to_be_bytes())
                    .count()
            })
        })
        .unwrap_or(0)
    }

    /// Drops events beyond `max_events` (oldest first) and older than `min_time_ms`.
    ///
    /// # Errors
    /// sled failed.
    pub fn prune_journal(&self, max_events: usize, min_time_ms: i64) -> Result<usize, StoreError> {
        self.with(|h| {
            let mut removed = 0;
            let len = h.counts.journal_events.get_or(|| h.journal.len() as u64);
            let excess = (len as usize).saturating_sub(max_events);
            for kv in h.journal.iter() {
                let (k, v) = kv?;
                let old = serde_json::from_slice::<Event>(&v)
                    .map(|e| e.time_ms < min_time_ms)
                    .unwrap_or(true);
                if removed < excess || old {
                    if h.journal.remove(k)?.is_some() {
                        h.counts.journal_events.add(-1);
                    }
                    removed += 1;
                } else {
                    break;
                }
            }
            Ok(removed)
        })
    }

    /// The drift state persisted by the last run, by artifact key.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn known_drift(&self) -> Result<Vec<(String, KnownDrift)>, StoreError> {
        self.with(|h| {
            h.state
                .iter()
                .map(|kv| {
                    let (k, v) = kv?;
                    Ok((
                        String::from_utf8_lossy(&k).into_owned(),
                        serde_json::from_slice(&v).map_err(|e| corrupt("state", e))?,
                    ))
                })
                .collect()
        })
    }

    /// Records changed drift states (`None` removes one). Flushed with the journal.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_known_drift<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a KnownDrift>)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in changes {
            match v {
                Some(v) => batch.insert(
                    k.as_bytes(),
                    serde_json::to_vec(v).map_err(|e| corrupt("state", e))?,
                ),
                None => batch.remove(k.as_bytes()),
            }
        }
        self.with(|h| Ok(h.state.apply_batch(batch)?))
    }

    /// Replaces the whole drift state (after a repair started the derived trees afresh).
    ///
    /// # Errors
    /// sled failed.
    pub fn replace_known_drift<'a>(
        &self,
        all: impl IntoIterator<Item = (&'a str, &'a KnownDrift)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in all {
            batch.insert(
                k.as_bytes(),
                serde_json::to_vec(v).map_err(|e| corrupt("state", e))?,
            );
        }
        self.with(|h| {
            h.state.clear()?;
            h.state.apply_batch(batch)?;
            Ok(())
        })
    }
}

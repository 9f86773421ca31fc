//! Sizes the store keeps as counters, so that `Status` asks them for free: the number of
//! journal events, of files covered by the hash cache, and the history's totals (versions,
//! snapshots, their logical bytes, blobs and their stored bytes). Each is unknown until
//! first asked (one scan then, never on the start-up path) and from then on kept by every
//! write of its tree. They belong to one open database: a reopened or repaired store starts
//! unknown again, and a salvage that writes records wholesale forgets them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

const UNKNOWN: u64 = u64::MAX;

/// One counter.
#[derive(Debug)]
pub(super) struct Counter(AtomicU64);

impl Default for Counter {
    fn default() -> Self {
        Counter(AtomicU64::new(UNKNOWN))
    }
}

impl Counter {
    /// The count, from `scan` the first time.
    pub(super) fn get_or(&self, scan: impl FnOnce() -> u64) -> u64 {
        match self.0.load(Ordering::Acquire) {
            UNKNOWN => {
                let n = scan();
                // A write between the scan and this store is counted by the scan or lost
                // by a few: the figure is for display. Keep whatever a racing scan set.
                let _ = self
                    .0
                    .compare_exchange(UNKNOWN, n, Ordering::AcqRel, Ordering::Acquire);
                self.0.load(Ordering::Acquire)
            }
            n => n,
        }
    }

    /// Makes the count unknown again: the next ask scans (after a write that may have
    /// half happened).
    pub(super) fn forget(&self) {
        self.0.store(UNKNOWN, Ordering::Release);
    }

    /// Adds `delta` (which may be negative) once the count is known.
    pub(super) fn add(&self, delta: i64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != UNKNOWN).then(|| n.saturating_add_signed(delta))
            });
    }
}

/// The history's totals, as a full count over its trees gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryTotals {
    pub versions: u64,
    pub snapshots: u64,
    /// Sum of every version's uncompressed size.
    pub logical_bytes: u64,
    pub blobs: u64,
    /// Bytes the blobs take stored (compressed frames plus their headers).
    pub blob_bytes: u64,
}

/// A change to [`HistoryTotals`]: what one write added (positive) or removed (negative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct HistoryDelta {
    pub(super) versions: i64,
    pub(super) snapshots: i64,
    pub(super) logical_bytes: i64,
    pub(super) blobs: i64,
    pub(super) blob_bytes: i64,
}

impl HistoryDelta {
    /// A version record written where `old` (its logical bytes) stood, if one did.
    pub(super) fn version_written(&mut self, old: Option<u64>, new: u64) {
        self.version_removed(old);
        self.versions += 1;
        self.logical_bytes += new as i64;
    }

    /// A version record removed, if it was there (its logical bytes).
    pub(super) fn version_removed(&mut self, old: Option<u64>) {
        if let Some(old) = old {
            self.versions -= 1;
            self.logical_bytes -= old as i64;
        }
    }

    /// A blob value of `new` bytes written where one of `old` bytes stood, if one did.
    pub(super) fn blob_written(&mut self, old: Option<u64>, new: u64) {
        self.blob_removed(old);
        self.blobs += 1;
        self.blob_bytes += new as i64;
    }

    /// A blob value removed, if it was there (its stored bytes).
    pub(super) fn blob_removed(&mut self, old: Option<u64>) {
        if let Some(old) = old {
            self.blobs -= 1;
            self.blob_bytes -= old as i64;
        }
    }
}

impl HistoryTotals {
    fn apply(&mut self, d: HistoryDelta) {
        let add = |n: &mut u64, d: i64| *n = n.saturating_add_signed(d);
        add(&mut self.versions, d.versions);
        add(&mut self.snapshots, d.snapshots);
        add(&mut self.logical_bytes, d.logical_bytes);
        add(&mut self.blobs, d.blobs);
        add(&mut self.blob_bytes, d.blob_bytes);
    }
}

/// The history's totals, kept exact: every write of the history trees runs under its lock
/// with the change it makes ([`HistoryTally::write`]), and the first count runs under the
/// same lock, so no write falls between the count and the counter.
#[derive(Debug, Default)]
pub(super) struct HistoryTally(Mutex<Option<HistoryTotals>>);

impl HistoryTally {
    fn lock(&self) -> MutexGuard<'_, Option<HistoryTotals>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The totals, from `count` the first time.
    pub(super) fn get_or<E>(
        &self,
        count: impl FnOnce() -> Result<HistoryTotals, E>,
    ) -> Result<HistoryTotals, E> {
        let mut t = self.lock();
        if let Some(t) = *t {
            return Ok(t);
        }
        let n = count()?;
        *t = Some(n);
        Ok(n)
    }

    /// Runs `write`, which returns the change it made, and applies that change once the
    /// totals are known. A failed write changes nothing it counts (sled batches are
    /// atomic); the caller forgets the totals where that is not so.
    pub(super) fn write<T, E>(
        &self,
        write: impl FnOnce() -> Result<(T, HistoryDelta), E>,
    ) -> Result<T, E> {
        let mut t = self.lock();
        let (r, d) = write()?;
        if let Some(t) = t.as_mut() {
            t.apply(d);
        }
        Ok(r)
    }

    /// Makes the totals unknown again: the next ask counts.
    pub(super) fn forget(&self) {
        *self.lock() = None;
    }
}

/// The counters of one open database.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) journal_events: Counter,
    pub(super) history: HistoryTally,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_until_asked_then_kept() {
        let c = Counter::default();
        c.add(5);
        assert_eq!(
            c.get_or(|| 10),
            10,
            "changes before the first scan are in it"
        );
        c.add(3);
        c.add(-4);
        assert_eq!(c.get_or(|| unreachable!()), 9);
    }

    #[test]
    fn history_deltas_rewrite_and_remove() {
        let tally = HistoryTally::default();
        let first = HistoryTotals {
            versions: 2,
            logical_bytes: 30,
            ..Default::default()
        };
        assert_eq!(tally.get_or(|| Ok::<_, ()>(first)), Ok(first));
        tally
            .write(|| {
                let mut d = HistoryDelta::default();
                d.version_written(None, 7);
                d.version_written(Some(10), 12);
                d.blob_written(None, 100);
                d.blob_written(Some(100), 90);
                Ok::<_, ()>(((), d))
            })
            .unwrap();
        let now = tally.get_or(|| Err(())).unwrap();
        assert_eq!(
            now,
            HistoryTotals {
                versions: 3,
                snapshots: 0,
                logical_bytes: 39,
                blobs: 1,
                blob_bytes: 90,
            }
        );
        let failed: Result<(), ()> = tally.write(|| Err(()));
        assert!(failed.is_err());
        tally
            .write(|| {
                let mut d = HistoryDelta::default();
                d.version_removed(Some(7));
                d.version_removed(None);
                d.blob_removed(Some(90));
                Ok::<_, ()>(((), d))
            })
            .unwrap();
        assert_eq!(
            tally.get_or(|| Err(())).unwrap(),
            HistoryTotals {
                versions: 2,
                logical_bytes: 32,
                ..Default::default()
            }
        );
        tally.forget();
        assert_eq!(tally.get_or(|| Err::<HistoryTotals, _>(1)), Err(1));
    }
}

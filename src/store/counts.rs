//! Sizes the store keeps as counters, so that `Status` asks them for free: the number of
//! journal events and of files covered by the hash cache. Each is unknown until first
//! asked (one scan then, never on the start-up path) and from then on kept by every write
//! of its tree. They belong to one open database: a reopened or repaired store starts
//! unknown again.

use std::sync::atomic::{AtomicU64, Ordering};

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

/// The counters of one open database.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) journal_events: Counter,
    pub(super) files_indexed: Counter,
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
}

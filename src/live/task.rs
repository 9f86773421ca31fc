//! The live task's loop: it gathers change hints until the settle window passes (or, for a
//! sync cookie, until the changes before it have settled), takes project changes and
//! reloaded configurations, ticks the periodic reconcile and the upkeep, and hands each
//! batch to the worker on the blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::engine::SideMemo;
use crate::history::time::now_ms;
use crate::transient::is_cookie;
use crate::watcher::{Hint, Overflow, Watcher};

use super::upkeep::Backlog;
use super::upkeep::HOUSEKEEPING;
use super::worker::{Dirty, Worker};
use super::{Control, LiveError, Task};

impl Task {
    /// Builds the watcher and does the first full reconcile, so the state is complete
    /// before the socket opens. Returns the running part.
    ///
    /// # Errors
    /// The worker panicked.
    pub async fn start(self) -> Result<Running, LiveError> {
        let config = self.live.engine.config();
        let watch = &config.watch;
        let (tx, rx) = mpsc::channel(watch.queue_capacity.max(1));
        let overflow = Arc::new(Overflow::default());
        let watcher = Watcher::new(
            tx,
            Arc::clone(&overflow),
            watch.force_polling,
            Duration::from_millis(watch.poll_interval_ms),
        );
        let _ = self.live.poll_now.set(watcher.poll_now());
        let worker = Worker {
            live: Arc::clone(&self.live),
            watcher,
            memo: SideMemo::default(),
            project_problems: BTreeMap::new(),
            collection_problems: BTreeMap::new(),
            discovery_problems: Vec::new(),
            config_problems: Vec::new(),
            seen: Arc::clone(&config),
            pending_snapshots: BTreeSet::new(),
            last_snapshot_ms: HashMap::new(),
            last_prune_ms: now_ms(),
            backlog: Backlog::default(),
            journal_gap: false,
            cursor_known: false,
            store_changed: None,
            applied_generation: 0,
        };
        let store = self.live.engine.store().generations();
        let conditions = self.live.engine.store().conditions();
        let worker = apply(
            worker,
            Dirty {
                full: true,
                projects: true,
                ..Dirty::default()
            },
            true,
        )
        .await?;
        Ok(Running {
            worker,
            hints: rx,
            overflow,
            control: self.control,
            config: self.config,
            store,
            conditions,
        })
    }
}

/// The live task after its first reconcile.
pub struct Running {
    worker: Worker,
    hints: mpsc::Receiver<Hint>,
    overflow: Arc<Overflow>,
    control: mpsc::Receiver<Control>,
    config: config::Shared,
    /// Reopens and repairs of the store.
    store: tokio::sync::watch::Receiver<crate::store::Generation>,
    /// The store's condition (shown as a problem, and so as an event).
    conditions: tokio::sync::watch::Receiver<crate::store::Condition>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

async fn apply(worker: Worker, dirty: Dirty, initial: bool) -> Result<Worker, LiveError> {
    tokio::task::spawn_blocking(move || {
        let mut worker = worker;
        worker.apply(dirty, initial);
        worker
    })
    .await
    .map_err(|e| LiveError::Worker(e.to_string()))
}

/// Keeps the state current until `shutdown`.
///
/// # Errors
/// The worker panicked.
pub async fn run(running: Running, shutdown: CancellationToken) -> Result<(), LiveError> {
    let Running {
        mut worker,
        mut hints,
        overflow,
        mut control,
        mut config,
        mut store,
        mut conditions,
    } = running;
    let (mut settle, mut max_settle, period) = timings(&config.borrow().config.watch);
    let mut reconcile = tokio::time::interval_at(Instant::now() + period, period);
    let mut upkeep = tokio::time::interval(HOUSEKEEPING);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut dirty = Dirty::default();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(h) = hints.recv() => {
                dirty.paths = gather(h, &mut hints, settle, max_settle).await;
            }
            _ = overflow.notify.notified() => {}
            Some(c) = control.recv() => match c {
                Control::Refresh(ack) => {
                    dirty.projects = true;
                    dirty.acks.push(ack);
                }
                Control::Reconcile(ack) => {
                    dirty.full = true;
                    dirty.acks.push(ack);
                }
            },
            Ok(()) = config.changed() => {
                let effective = Arc::clone(&config.borrow_and_update());
                let period;
                (settle, max_settle, period) = timings(&effective.config.watch);
                reconcile = tokio::time::interval_at(Instant::now() + period, period);
                worker.reconfigure(&effective, &mut dirty);
            }
            Ok(()) = store.changed() => {
                // A reopened or repaired store: rebuild what the daemon derives from it.
                // (the batch sees the new generation and rebuilds).
                tracing::info!("the store was reopened or repaired; full reconcile");
                store.borrow_and_update();
                dirty.full = true;
            }
            Ok(()) = conditions.changed() => {
                conditions.borrow_and_update();
            }
            _ = reconcile.tick() => {
                tracing::debug!("periodic reconcile");
                dirty.full = true;
            }
            _ = upkeep.tick(), if worker.upkeep_due() => {
                dirty.housekeeping = true;
            }
        }
        if overflow.take() {
            tracing::info!("file events were lost; full reconcile");
            while let Ok(h) = hints.try_recv() {
                dirty.paths.extend(h.paths);
            }
            dirty.full = true;
        }
        worker = apply(worker, dirty, false).await?;
    }
    Ok(())
}

/// The hints of one batch, starting with `first`.
///
/// Without a sync cookie: until the settle window passes with no new hint (at most
/// `max_settle`; a file just emptied may be half-saved by a writer descheduled between
/// truncate and write, so it gets up to the longest settle to be written).
///
/// Once a cookie is among them, the batch ends with it: the changes before it still settle
/// (quiet for `settle` since the last one, none half-saved, at most `max_settle` in all),
/// the hints after it wait for the next batch, and a cookie alone is answered at once. A
/// barrier thus waits only for what was pending when it began.
async fn gather(
    first: Hint,
    hints: &mut mpsc::Receiver<Hint>,
    settle: Duration,
    max_settle: Duration,
) -> BTreeSet<PathBuf> {
    let started = Instant::now();
    let mut batch = Batch::default();
    batch.take(first);
    while !batch.cookie {
        let left = max_settle.saturating_sub(started.elapsed());
        if left.is_zero() {
            return batch.paths;
        }
        match tokio::time::timeout(settle.min(left), hints.recv()).await {
            Ok(Some(h)) => batch.take(h),
            Ok(None) => return batch.paths,
            Err(_) if recently_written(&batch.paths, max_settle) => {}
            Err(_) => return batch.paths,
        }
    }
    let Some(last) = batch.last_change else {
        return batch.paths;
    };
    loop {
        let left = max_settle.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        let unsettled = settle.saturating_sub(last.elapsed());
        if !unsettled.is_zero() {
            tokio::time::sleep(unsettled.min(left)).await;
        } else if recently_written(&batch.paths, max_settle) {
            tokio::time::sleep(settle.min(left)).await;
        } else {
            break;
        }
    }
    batch.paths
}

/// The hints gathered so far.
#[derive(Default)]
struct Batch {
    paths: BTreeSet<PathBuf>,
    /// When the last change (not a cookie) arrived.
    last_change: Option<Instant>,
    /// Whether a sync cookie arrived.
    cookie: bool,
}

impl Batch {
    fn take(&mut self, hint: Hint) {
        for p in hint.paths {
            if is_cookie(&p) {
                self.cookie = true;
            } else {
                self.last_change = Some(Instant::now());
            }
            self.paths.insert(p);
        }
    }
}

/// Whether any of `paths` (up to a bound, to keep bursts cheap; sync cookies aside) is an
/// empty file modified less than `window` ago: perhaps the middle of a truncate-then-write
/// save whose writer was descheduled. (Renames are atomic; other files need no extra wait.
/// A file really emptied costs at most one `max_settle` of delay.)
fn recently_written(paths: &BTreeSet<PathBuf>, window: Duration) -> bool {
    const MAX_CHECKED: usize = 256;
    if paths.len() > MAX_CHECKED {
        return false;
    }
    let now = SystemTime::now();
    paths.iter().filter(|p| !is_cookie(p)).any(|p| {
        std::fs::symlink_metadata(p)
            .ok()
            .filter(|m| m.is_file() && m.len() == 0)
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age < window)
    })
}

/// Settle window, longest settle, and reconcile period.
fn timings(watch: &config::Watch) -> (Duration, Duration, Duration) {
    let period = match watch.reconcile_secs {
        0 => Duration::from_secs(365 * 24 * 3600),
        s => Duration::from_secs(s),
    };
    (
        Duration::from_millis(watch.settle_ms),
        Duration::from_millis(watch.max_settle_ms.max(watch.settle_ms)),
        period,
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SETTLE: Duration = Duration::from_millis(20);
    const MAX_SETTLE: Duration = Duration::from_millis(1000);

    fn hint(p: &str) -> Hint {
        Hint {
            paths: vec![PathBuf::from(p)],
        }
    }

    fn cookie(n: u64) -> Hint {
        Hint {
            paths: vec![PathBuf::from("/h").join(crate::transient::cookie_name(n))],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_cookie_alone_is_answered_at_once() {
        let (_tx, mut rx) = mpsc::channel(8);
        let t = Instant::now();
        let batch = gather(cookie(1), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cookie_waits_for_the_changes_before_it_to_settle_and_no_more() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(cookie(1)).await.unwrap();
        tx.send(hint("/p/after.md")).await.unwrap();
        let t = Instant::now();
        let batch = gather(hint("/p/before.md"), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), SETTLE, "the change before the cookie settles");
        assert!(batch.contains(Path::new("/p/before.md")));
        assert!(
            !batch.contains(Path::new("/p/after.md")),
            "a change after the cookie waits for the next batch"
        );
        assert_eq!(rx.recv().await, Some(hint("/p/after.md")));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_cookie_a_burst_settles_after_its_last_hint() {
        let (tx, mut rx) = mpsc::channel(8);
        let sender = tokio::spawn(async move {
            for i in 0..3 {
                tokio::time::sleep(SETTLE / 2).await;
                tx.send(hint(&format!("/p/{i}.md"))).await.unwrap();
            }
            tx
        });
        let t = Instant::now();
        let batch = gather(hint("/p/first.md"), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(batch.len(), 4);
        assert_eq!(t.elapsed(), SETTLE / 2 * 3 + SETTLE);
        drop(sender.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn an_emptied_file_before_a_cookie_is_given_time_to_be_written() {
        let d = tempfile::tempdir().unwrap();
        let emptied = d.path().join("hello.md");
        std::fs::write(&emptied, b"").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(cookie(1)).await.unwrap();
        let first = Hint {
            paths: vec![emptied.clone()],
        };
        let writer = tokio::spawn(async move {
            tokio::time::sleep(SETTLE * 3).await;
            std::fs::write(&emptied, b"saved\n").unwrap();
        });
        let t = Instant::now();
        gather(first, &mut rx, SETTLE, MAX_SETTLE).await;
        writer.await.unwrap();
        assert!(t.elapsed() >= SETTLE * 3, "{:?}", t.elapsed());
        assert!(t.elapsed() < MAX_SETTLE, "{:?}", t.elapsed());
    }
}

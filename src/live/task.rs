//! The live task's loop: it gathers change hints until the settle window passes, takes
//! project changes and reloaded configurations, ticks the periodic reconcile and the upkeep,
//! and hands each batch to the worker on the blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::engine::SideMemo;
use crate::history::time::now_ms;
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
            Duration::from_millis(watch.poll_interval_ms.max(10)),
        );
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
    let mut reconcile = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut upkeep = tokio::time::interval(HOUSEKEEPING);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut dirty = Dirty::default();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(h) = hints.recv() => {
                dirty.paths.extend(h.paths);
                let started = Instant::now();
                loop {
                    let left = max_settle.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(settle.min(left), hints.recv()).await {
                        Ok(Some(h)) => dirty.paths.extend(h.paths),
                        Ok(None) => break,
                        // Quiet for a settle window; but a file just emptied may be half-saved
                        // by a writer that was descheduled between truncate and write: give
                        // it up to the longest settle to be written.
                        Err(_) if recently_written(&dirty.paths, max_settle) => {}
                        Err(_) => break,
                    }
                }
            }
            _ = overflow.notify.notified() => {}
            Some(c) = control.recv() => match c {
                Control::Refresh(ack) => {
                    dirty.projects = true;
                    dirty.acks.push(ack);
                }
            },
            Ok(()) = config.changed() => {
                let effective = Arc::clone(&config.borrow_and_update());
                let period;
                (settle, max_settle, period) = timings(&effective.config.watch);
                reconcile = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
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

/// Whether any of `paths` (up to a bound, to keep bursts cheap) is an empty file modified
/// less than `window` ago: perhaps the middle of a truncate-then-write save whose writer
/// was descheduled. (Renames are atomic; other files need no extra wait. A file really
/// emptied costs at most one `max_settle` of delay.)
fn recently_written(paths: &BTreeSet<PathBuf>, window: Duration) -> bool {
    const MAX_CHECKED: usize = 256;
    if paths.len() > MAX_CHECKED {
        return false;
    }
    let now = SystemTime::now();
    paths.iter().any(|p| {
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

//! The live task's loop: it gathers change hints until the settle window passes (or, for a
//! sync cookie, until the changes before it have settled), takes project changes and
//! reloaded configurations, ticks the periodic reconcile, and hands each
//! batch to the worker on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::engine::SideMemo;
use crate::watcher::{Hint, Overflow, Watcher};

use super::recorder::Recorder;
use super::settle::{Batch, gather};
use super::upkeep::Backlog;
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
            backlog: Backlog::default(),
            recorder: Recorder::start(Arc::clone(&self.live)),
            journal_gap: false,
            known_drift_behind: false,
            cursor_known: false,
            store_changed: None,
            applied_generation: 0,
            rewatched: false,
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
    let mut held = Batch::default();
    loop {
        let mut dirty = Dirty::default();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(h) = hints.recv() => {
                held.take(h);
                dirty.paths = gather(&mut held, &mut hints, settle, max_settle).await;
            }
            // Changes still in progress after their batch's complete ones went on.
            () = std::future::ready(()), if !held.is_empty() => {
                dirty.paths = gather(&mut held, &mut hints, settle, max_settle).await;
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
                dirty.store_condition = true;
            }
            _ = reconcile.tick() => {
                tracing::debug!("periodic reconcile");
                dirty.full = true;
            }
        }
        if overflow.take() {
            tracing::info!("file events were lost; full reconcile");
            dirty
                .paths
                .append(&mut std::mem::take(&mut held).into_paths());
            while let Ok(h) = hints.try_recv() {
                dirty.paths.extend(h.paths);
            }
            dirty.full = true;
        }
        worker = apply(worker, dirty, false).await?;
    }
    // The history recorder finishes the changes handed to it and stops.
    tokio::task::spawn_blocking(move || drop(worker))
        .await
        .map_err(|e| LiveError::Worker(e.to_string()))
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

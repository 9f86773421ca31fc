//! Live drift: the always-current state of every deployed artifact, kept up to date from
//! file events, and the events that describe its changes.
//!
//! [`Live`] is shared by the RPC layer (reads: drift, projects, subscriptions, sync
//! barriers) and one background task, [`run`], which owns the watcher and the side memo.
//! The task gathers change hints until the settle window passes with no new one, then
//! recomputes only what the changed paths can affect (the artifacts containing them, the
//! projects whose deployment files or collections changed) on the blocking pool, diffs the
//! result against the previous state, appends the events to the journal (flushed) and only
//! then publishes the new state and broadcasts the events.
//!
//! A lost hint (full queue, kernel overflow), a periodic tick or a projects change makes a
//! full reconcile instead: every side is re-walked by `stat` through the hash index, so only
//! files whose metadata changed are read, and the result equals a from-scratch scan.
//!
//! Submodules: `task` (the loop: hints, control messages, reloads, timers), `settle` (which
//! hints make a batch),
//! `worker` (one batch), `recompute` (its drift, across threads), `gate` (which projects a
//! full batch may compute while its watch walk goes on), `upkeep` (the history work a batch
//! hands over), `recorder` (the thread that records it, bulk work in short store batches),
//! `barrier`
//! (the sync-to-now cookies every query and write-back waits for; history queries also wait
//! for the history work queued before them). [`crate::daemon::run`] creates both halves with [`new`], runs the
//! first reconcile before the socket opens and supervises [`run`].

mod barrier;
mod gate;
mod recompute;
mod recorder;
mod settle;
mod task;
mod upkeep;
mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::drift::DriftKind;
use crate::engine::{Engine, EngineError};
use crate::formats::Problem;
use crate::model::{ArtifactReport, Event};
use crate::paths::canonical;
use crate::projects::KnownProject;
use crate::watcher::PollNow;

pub use task::{Running, run};

/// The current drift of everything, as last computed.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Cursor of the last event (0 before any).
    pub cursor: u64,
    /// Every artifact's drift, in sync ones included: per project, by
    /// [`ArtifactReport::key`]. Shared between states, so a batch copies only the projects it
    /// recomputes.
    pub reports: BTreeMap<PathBuf, Arc<Reports>>,
    /// Problems met: discovery, collections, deployment files.
    pub problems: Vec<Problem>,
    /// Every known project, ignored and missing ones included.
    pub projects: Vec<KnownProject>,
    /// Roots watched by polling, and why.
    pub polled: BTreeMap<PathBuf, String>,
    /// Number of watched roots.
    pub watched_roots: usize,
    /// Whether SkillMeat's home is watched by kernel events (sync cookies are written
    /// there).
    pub home_watched: bool,
}

/// One project's reports, by [`ArtifactReport::key`].
pub type Reports = BTreeMap<String, ArtifactReport>;

impl State {
    /// How a sync barrier finds what it must wait for: whether SkillMeat's home is watched
    /// by kernel events, whether any root is, and how many roots are polled.
    pub fn watching(&self) -> (bool, bool, usize) {
        (
            self.home_watched,
            self.watched_roots > self.polled.len(),
            self.polled.len(),
        )
    }

    /// Every report.
    pub fn all(&self) -> impl Iterator<Item = &ArtifactReport> + '_ {
        self.reports.values().flat_map(|r| r.values())
    }

    /// Reports of one project, or of every present project.
    pub fn reports_of<'a>(
        &'a self,
        project: Option<&'a Path>,
    ) -> Box<dyn Iterator<Item = &'a ArtifactReport> + 'a> {
        match project {
            None => Box::new(self.all()),
            Some(p) => Box::new(self.reports.get(p).into_iter().flat_map(|r| r.values())),
        }
    }
}

/// Reports by [`ArtifactReport::key`], borrowed from per-project [`Reports`].
type View<'a> = BTreeMap<&'a String, &'a ArtifactReport>;

/// The reports of `projects` in `reports` (every project for `None`), flattened without
/// copying a report: a full reconcile compares the whole tree's reports, and copies of
/// them made the first batch's peak.
fn flatten<'a>(
    reports: &'a BTreeMap<PathBuf, Arc<Reports>>,
    projects: Option<&BTreeSet<PathBuf>>,
) -> View<'a> {
    reports
        .iter()
        .filter(|(p, _)| projects.is_none_or(|s| s.contains(*p)))
        .flat_map(|(_, r)| r.iter())
        .collect()
}

enum Control {
    /// The set of projects may have changed (add / remove / ignore).
    Refresh(oneshot::Sender<()>),
    /// A sync barrier that no cookie can serve asks for a full reconcile.
    Reconcile(oneshot::Sender<()>),
}

/// What the RPC layer shares with the live task.
#[derive(Debug)]
pub struct Live {
    engine: Arc<Engine>,
    state: RwLock<Arc<State>>,
    events: broadcast::Sender<Arc<Event>>,
    control: mpsc::Sender<Control>,
    cookies: Mutex<HashMap<String, oneshot::Sender<()>>>,
    next_cookie: AtomicU64,
    /// Asks the poller for a walk now; set when the live task starts.
    poll_now: OnceLock<PollNow>,
    subscriber_buffer: usize,
    claims: crate::operations::Claims,
    /// Tells subscribers to replace their state: the number of resyncs so far and why
    /// the last one was sent.
    resyncs: tokio::sync::watch::Sender<(u64, &'static str)>,
    /// History work: the number of the last batch of it queued, and of the last batch
    /// whose work is done (versions and bases recorded, or dropped while the store cannot
    /// take them).
    history_queued: AtomicU64,
    history_done: tokio::sync::watch::Sender<u64>,
    /// Counts the changes of the way folders are watched ([`State::watching`], or a kernel
    /// watcher replaced), sent once the state that shows the change is published: sync
    /// barriers planned before it are planned again.
    rewatched: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Refresh(_) => "Control::Refresh",
            Control::Reconcile(_) => "Control::Reconcile",
        })
    }
}

/// Why a sync barrier failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("changes were not observed within {}s (waiting for: {})", .after.as_secs(), .waiting.join(", "))]
    Timeout {
        after: std::time::Duration,
        /// What the barrier was still waiting for: a folder, the polled folders, a reconcile.
        waiting: Vec<String>,
    },
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl Live {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// A copy of the current state.
    pub fn state(&self) -> Arc<State> {
        Arc::clone(&self.state.read().expect("state lock poisoned"))
    }

    /// Runs `f` on the current state without copying it.
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().expect("state lock poisoned"))
    }

    /// A new subscription to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Follows the resyncs: the state changed without events a subscriber could replay
    /// (the journal could not be written, or the store was repaired).
    pub fn resyncs(&self) -> tokio::sync::watch::Receiver<(u64, &'static str)> {
        self.resyncs.subscribe()
    }

    /// Tells every subscriber to resync, with `reason`.
    fn resync(&self, reason: &'static str) {
        self.resyncs.send_modify(|r| *r = (r.0 + 1, reason));
    }

    /// Artifacts daemon operations are writing (their events carry the operation id).
    pub fn claims(&self) -> &crate::operations::Claims {
        &self.claims
    }

    /// The bound of each subscriber's queue.
    pub fn subscriber_buffer(&self) -> usize {
        self.subscriber_buffer
    }

    /// Tells the live task that projects were added, removed or ignored, and waits until
    /// the state reflects it.
    ///
    /// # Errors
    /// The live task is gone (shutting down).
    pub async fn refresh_projects(&self) -> Result<(), SyncError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Refresh(tx))
            .await
            .map_err(|_| SyncError::ShuttingDown)?;
        rx.await.map_err(|_| SyncError::ShuttingDown)
    }

    /// Drift of one project (by folder) or of every present, not ignored project.
    ///
    /// # Errors
    /// The project is unknown or its folder is gone.
    pub fn drift(
        &self,
        project: Option<&Path>,
        include_in_sync: bool,
    ) -> Result<(u64, Vec<ArtifactReport>, Vec<Problem>), EngineError> {
        let project = project.map(canonical);
        self.with_state(|s| {
            if let Some(p) = &project {
                let k = s
                    .projects
                    .iter()
                    .find(|k| &k.path == p)
                    .ok_or_else(|| EngineError::UnknownProject { path: p.clone() })?;
                if k.missing {
                    return Err(EngineError::MissingProject { path: p.clone() });
                }
            }
            let reports = s
                .reports_of(project.as_deref())
                .filter(|r| include_in_sync || r.kind.is_drift())
                .cloned()
                .collect();
            let problems = s
                .problems
                .iter()
                .filter(|pr| match (&project, &pr.project) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                })
                .cloned()
                .collect();
            Ok((s.cursor, reports, problems))
        })
    }
}

/// Creates the shared live state and the task that keeps it current. The task must be
/// spawned with [`run`]; the state is empty until its first reconcile. The task follows the
/// engine's configuration in force.
pub fn new(engine: Arc<Engine>) -> (Arc<Live>, Task) {
    let (control_tx, control_rx) = mpsc::channel(16);
    let buffer = engine.config().journal.subscriber_buffer.max(1);
    let config = engine.config_watch();
    let (events, _) = broadcast::channel(buffer);
    let live = Arc::new(Live {
        engine,
        state: RwLock::new(Arc::new(State::default())),
        events,
        control: control_tx,
        cookies: Mutex::new(HashMap::new()),
        next_cookie: AtomicU64::new(0),
        poll_now: OnceLock::new(),
        subscriber_buffer: buffer,
        claims: crate::operations::Claims::default(),
        resyncs: tokio::sync::watch::channel((0, "")).0,
        history_queued: AtomicU64::new(0),
        history_done: tokio::sync::watch::channel(0).0,
        rewatched: tokio::sync::watch::channel(0).0,
    });
    (
        Arc::clone(&live),
        Task {
            live,
            control: control_rx,
            config,
        },
    )
}

/// The live task, before it runs.
#[derive(Debug)]
pub struct Task {
    live: Arc<Live>,
    control: mpsc::Receiver<Control>,
    config: crate::config::Shared,
}

/// Why the live task stopped.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the live worker failed: {0}")]
    Worker(String),
}

/// Whether a report matches a drift-type filter (by its old or new type).
pub fn drift_matches(filter: &[DriftKind], old: Option<DriftKind>, new: Option<DriftKind>) -> bool {
    filter.is_empty()
        || [old, new]
            .into_iter()
            .flatten()
            .any(|k| filter.contains(&k))
}

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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::drift::DriftKind;
use crate::engine::{Collections, Engine, EngineError, SideMemo};
use crate::formats::Problem;
use crate::formats::collection::collections_dir;
use crate::formats::deployment;
use crate::journal;
use crate::model::{ArtifactReport, Event, Location, Origin, SnapshotTarget};
use crate::paths::canonical;
use crate::projects::KnownProject;
use crate::watcher::{COOKIE_PREFIX, Depth, Hint, Overflow, Watcher};

/// How often pending automatic snapshots and retention are looked at.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How often retention runs.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// Profile roots watched even before they hold a deployment file.
const KNOWN_ROOTS: [&str; 4] = [".claude", ".codex", ".gemini", ".cursor"];

/// How long a sync barrier waits for its cookies.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

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
}

/// One project's reports, by [`ArtifactReport::key`].
pub type Reports = BTreeMap<String, ArtifactReport>;

impl State {
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

/// The reports of `projects` in `reports`, flattened.
fn flatten(reports: &BTreeMap<PathBuf, Arc<Reports>>, projects: &BTreeSet<PathBuf>) -> Reports {
    projects
        .iter()
        .filter_map(|p| reports.get(p))
        .flat_map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

enum Control {
    /// The set of projects may have changed (add / remove / ignore).
    Refresh(oneshot::Sender<()>),
    /// A reloaded configuration to apply, or why `daemon.toml` could not be used (the
    /// running configuration stays, and the problem is reported).
    Reload(Result<Box<Config>, Problem>, oneshot::Sender<()>),
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
    subscriber_buffer: usize,
    claims: crate::operations::Claims,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Control::Refresh(_) => "Control::Refresh",
            Control::Reload(..) => "Control::Reload",
        })
    }
}

/// Why a sync barrier failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("changes were not observed within {}s (roots: {})", SYNC_TIMEOUT.as_secs(), .0.join(", "))]
    Timeout(Vec<String>),
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

    /// Hands a reloaded configuration to the live task (or the problem that kept it from
    /// loading), and waits until the state reflects it: discovery rerun, timings, polling
    /// and journal limits applied. Queue sizes are not changed here (see
    /// [`Config::reload`]).
    ///
    /// # Errors
    /// The live task is gone (shutting down).
    pub async fn reload(&self, config: Result<Config, Problem>) -> Result<(), SyncError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Reload(config.map(Box::new), tx))
            .await
            .map_err(|_| SyncError::ShuttingDown)?;
        rx.await.map_err(|_| SyncError::ShuttingDown)
    }

    /// A sync-to-now barrier, like Watchman's cookies: writes a cookie file in SkillMeat's
    /// home (kernel events share one ordered queue) and in every polled root, and returns
    /// once the live task has applied the batch containing each, so every change made
    /// before the call is in the state.
    ///
    /// # Errors
    /// A cookie was not seen in time, or the daemon is shutting down.
    pub async fn sync(&self) -> Result<(), SyncError> {
        let mut dirs = vec![self.engine.paths().skillmeat_home.clone()];
        dirs.extend(self.with_state(|s| s.polled.keys().cloned().collect::<Vec<_>>()));
        let mut waits = Vec::new();
        for dir in dirs {
            let name = format!(
                "{COOKIE_PREFIX}{}-{}",
                std::process::id(),
                self.next_cookie.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(&name);
            let (tx, rx) = oneshot::channel();
            self.cookies
                .lock()
                .expect("cookie lock poisoned")
                .insert(name.clone(), tx);
            if let Err(e) = std::fs::write(&path, b"") {
                tracing::debug!(path = %path.display(), error = %e, "cannot write a sync cookie");
                self.cookies
                    .lock()
                    .expect("cookie lock poisoned")
                    .remove(&name);
                continue;
            }
            waits.push((path, name, rx));
        }
        let mut late = Vec::new();
        for (path, name, rx) in waits {
            let result = tokio::time::timeout(SYNC_TIMEOUT, rx).await;
            let _ = std::fs::remove_file(&path);
            self.cookies
                .lock()
                .expect("cookie lock poisoned")
                .remove(&name);
            match result {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(SyncError::ShuttingDown),
                Err(_) => late.push(path.parent().unwrap_or(&path).display().to_string()),
            }
        }
        if late.is_empty() {
            Ok(())
        } else {
            Err(SyncError::Timeout(late))
        }
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

/// The hints of one batch.
#[derive(Debug, Default)]
struct Dirty {
    paths: BTreeSet<PathBuf>,
    full: bool,
    projects: bool,
    acks: Vec<oneshot::Sender<()>>,
    /// Only history upkeep (pending snapshots, retention) is due.
    housekeeping: bool,
}

/// The live task's own state, moved to the blocking pool for each batch.
struct Worker {
    live: Arc<Live>,
    watcher: Watcher,
    memo: SideMemo,
    /// Roots of each active project, as last listed.
    project_problems: BTreeMap<PathBuf, Vec<Problem>>,
    collection_problems: BTreeMap<String, Vec<Problem>>,
    discovery_problems: Vec<Problem>,
    /// Why the last reload of `daemon.toml` failed, until one succeeds.
    config_problems: Vec<Problem>,
    journal_limits: crate::config::Journal,
    history: crate::config::History,
    /// Roots whose changes settled but whose automatic snapshot is rate-limited.
    pending_snapshots: BTreeSet<SnapshotTarget>,
    /// When each root's automatic snapshot was last attempted.
    last_snapshot_ms: HashMap<SnapshotTarget, i64>,
    last_prune_ms: i64,
    /// History work found by the last batch, done after its answer is published.
    backlog: Backlog,
}

/// History work waiting to be done.
#[derive(Debug, Default)]
struct Backlog {
    bases: Vec<crate::engine::Base>,
    captures: Vec<(Location, PathBuf, SnapshotTarget)>,
}

/// Creates the shared live state and the task that keeps it current. The task must be
/// spawned with [`run`]; the state is empty until its first reconcile.
pub fn new(engine: Arc<Engine>, config: &Config) -> (Arc<Live>, Task) {
    let (control_tx, control_rx) = mpsc::channel(16);
    let buffer = config.journal.subscriber_buffer.max(1);
    let (events, _) = broadcast::channel(buffer);
    let live = Arc::new(Live {
        engine,
        state: RwLock::new(Arc::new(State::default())),
        events,
        control: control_tx,
        cookies: Mutex::new(HashMap::new()),
        next_cookie: AtomicU64::new(0),
        subscriber_buffer: buffer,
        claims: crate::operations::Claims::default(),
    });
    (
        Arc::clone(&live),
        Task {
            live,
            control: control_rx,
            config: config.clone(),
        },
    )
}

/// The live task, before it runs.
#[derive(Debug)]
pub struct Task {
    live: Arc<Live>,
    control: mpsc::Receiver<Control>,
    config: Config,
}

/// Why the live task stopped.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot create a file watcher: {0}")]
    Watcher(#[from] notify::Error),
    #[error("the live worker failed: {0}")]
    Worker(String),
}

impl Task {
    /// Builds the watcher and does the first full reconcile, so the state is complete
    /// before the socket opens. Returns the running part.
    ///
    /// # Errors
    /// No watcher could be created, or the worker panicked.
    pub async fn start(self) -> Result<Running, LiveError> {
        let watch = self.config.watch.clone();
        let (tx, rx) = mpsc::channel(watch.queue_capacity.max(1));
        let overflow = Arc::new(Overflow::default());
        let watcher = Watcher::new(
            tx,
            Arc::clone(&overflow),
            watch.force_polling,
            Duration::from_millis(watch.poll_interval_ms.max(10)),
        )?;
        let worker = Worker {
            live: Arc::clone(&self.live),
            watcher,
            memo: SideMemo::default(),
            project_problems: BTreeMap::new(),
            collection_problems: BTreeMap::new(),
            discovery_problems: Vec::new(),
            config_problems: Vec::new(),
            journal_limits: self.config.journal.clone(),
            history: self.config.history.clone(),
            pending_snapshots: BTreeSet::new(),
            last_snapshot_ms: HashMap::new(),
            last_prune_ms: now_ms(),
            backlog: Backlog::default(),
        };
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
        })
    }
}

/// The live task after its first reconcile.
pub struct Running {
    worker: Worker,
    hints: mpsc::Receiver<Hint>,
    overflow: Arc<Overflow>,
    control: mpsc::Receiver<Control>,
    config: Config,
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
        config,
    } = running;
    let (mut settle, mut max_settle, period) = timings(&config.watch);
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
                Control::Reload(Ok(config), ack) => {
                    let period;
                    (settle, max_settle, period) = timings(&config.watch);
                    reconcile =
                        tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    worker.reload(*config, &mut dirty);
                    dirty.acks.push(ack);
                }
                Control::Reload(Err(problem), ack) => {
                    worker.config_problems = vec![problem];
                    dirty.acks.push(ack);
                }
            },
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
fn timings(watch: &crate::config::Watch) -> (Duration, Duration, Duration) {
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Worker {
    fn engine(&self) -> &Engine {
        &self.live.engine
    }

    /// Applies a reloaded configuration: discovery (the projects are listed again), polling
    /// and journal limits. Switching polling on or off rewatches every root.
    fn reload(&mut self, config: Config, dirty: &mut Dirty) {
        self.watcher
            .set_poll_interval(Duration::from_millis(config.watch.poll_interval_ms.max(10)));
        if self.watcher.force_polling() != config.watch.force_polling {
            self.watcher.set_force_polling(config.watch.force_polling);
            dirty.full = true;
        }
        self.journal_limits = config.journal.clone();
        self.config_problems.clear();
        self.live.engine.set_config(config);
        dirty.projects = true;
    }

    /// Folders to watch for `projects`.
    fn wanted_roots(&self, projects: &[KnownProject]) -> BTreeMap<PathBuf, Depth> {
        let home = &self.engine().paths().skillmeat_home;
        let mut roots = BTreeMap::from([(home.clone(), Depth::Flat)]);
        roots.insert(collections_dir(home), Depth::Recursive);
        roots.insert(home.join("cache"), Depth::Flat);
        for k in projects.iter().filter(|k| !k.ignored && !k.missing) {
            roots.insert(k.path.clone(), Depth::Flat);
            let mut names = deployment::profile_roots(&k.path);
            names.extend(KNOWN_ROOTS.iter().map(|s| s.to_string()));
            for n in names {
                let p = k.path.join(n);
                if p.is_dir() {
                    roots.insert(p, Depth::Recursive);
                }
            }
        }
        roots
    }

    /// Whether queued history work, a pending snapshot or retention is due.
    fn upkeep_due(&self) -> bool {
        !self.backlog.bases.is_empty()
            || !self.backlog.captures.is_empty()
            || !self.pending_snapshots.is_empty()
            || now_ms() - self.last_prune_ms >= PRUNE_EVERY_MS
    }

    /// Queues new content to become versions, and the changed roots for snapshots.
    fn queue_history(
        &mut self,
        previous: &BTreeMap<String, ArtifactReport>,
        changed: &[(String, Option<ArtifactReport>)],
    ) {
        let home = self.live.engine.paths().skillmeat_home.clone();
        let mut seen = BTreeSet::new();
        for (key, new) in changed {
            let Some(new) = new else { continue };
            let old = previous.get(key);
            if new.project_sha.is_some() && old.is_none_or(|o| o.project_sha != new.project_sha) {
                let rel = new.artifact_path.to_string_lossy();
                let loc = Location::project(&new.project, &new.profile_root, &rel);
                if seen.insert(loc.clone()) {
                    let path = new.project.join(&new.profile_root).join(&new.artifact_path);
                    let target = SnapshotTarget::Project(new.project.clone());
                    self.backlog.captures.push((loc, path, target));
                }
            }
            if let (Some(_), Some(rel)) = (&new.collection_sha, &new.collection_path)
                && old.is_none_or(|o| o.collection_sha != new.collection_sha)
            {
                let loc = Location::collection(&new.collection, &rel.to_string_lossy());
                if seen.insert(loc.clone()) {
                    let path = collections_dir(&home).join(&new.collection).join(rel);
                    let target = SnapshotTarget::Collection(new.collection.clone());
                    self.backlog.captures.push((loc, path, target));
                }
            }
        }
    }

    /// Does the queued history work: deployment bases, new versions, then snapshots.
    fn drain_history(&mut self) {
        let backlog = std::mem::take(&mut self.backlog);
        if backlog.bases.is_empty() && backlog.captures.is_empty() {
            return;
        }
        let started = Instant::now();
        let engine = Arc::clone(&self.live.engine);
        engine.record_bases(&backlog.bases);
        let history = engine.history();
        for (loc, path, target) in &backlog.captures {
            if let Err(e) = history.capture(loc, path, Origin::Watch, None) {
                tracing::warn!(location = %loc, "cannot record a version: {e}");
            }
            self.pending_snapshots.insert(target.clone());
        }
        tracing::debug!(
            bases = backlog.bases.len(),
            versions = backlog.captures.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "history recorded"
        );
    }

    /// Takes the automatic snapshots that are due, and runs retention hourly.
    fn upkeep(&mut self) {
        let engine = Arc::clone(&self.live.engine);
        let history = engine.history();
        let now = now_ms();
        let interval = i64::try_from(self.history.auto_snapshot_interval_secs)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        let due: Vec<SnapshotTarget> = self
            .pending_snapshots
            .iter()
            .filter(|t| {
                self.last_snapshot_ms
                    .get(*t)
                    .is_none_or(|&last| now - last >= interval)
            })
            .cloned()
            .collect();
        for t in due {
            self.pending_snapshots.remove(&t);
            self.last_snapshot_ms.insert(t.clone(), now);
            match history.auto_snapshot(&t, now, interval) {
                Ok(Some(id)) => tracing::debug!(target = %t, ?id, "automatic snapshot"),
                Ok(None) => {}
                Err(e) => tracing::warn!(target = %t, "automatic snapshot failed: {e}"),
            }
        }
        if now - self.last_prune_ms >= PRUNE_EVERY_MS {
            self.last_prune_ms = now;
            let protected: std::collections::HashSet<String> = self
                .live
                .with_state(|s| s.all().filter_map(|r| r.deployed_sha.clone()).collect());
            match history.prune(now, &self.history.retention, &protected) {
                Ok(r) => tracing::info!(?r, "history retention"),
                Err(e) => tracing::warn!("history retention failed: {e}"),
            }
        }
    }

    fn apply(&mut self, dirty: Dirty, initial: bool) {
        if dirty.housekeeping && dirty.paths.is_empty() && !dirty.full && !dirty.projects {
            self.drain_history();
            self.upkeep();
            return;
        }
        let started = Instant::now();
        let engine = Arc::clone(&self.live.engine);
        let home = engine.paths().skillmeat_home.clone();
        let mut cookies: Vec<String> = dirty
            .paths
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .filter(|n| n.starts_with(COOKIE_PREFIX))
            .map(str::to_string)
            .collect();
        if dirty.full {
            // A full reconcile reads the disk after this point, so it reflects every change
            // made before any barrier already waiting, even when the cookie's own event was
            // among the lost ones.
            let waiting = self.live.cookies.lock().expect("cookie lock poisoned");
            cookies.extend(waiting.keys().cloned());
        }
        let paths: Vec<&PathBuf> = dirty
            .paths
            .iter()
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(COOKIE_PREFIX))
            })
            .collect();
        let old = self.live.state();
        let cache_dir = home.join("cache");
        // A project folder that vanished (or reappeared) changes the project set.
        let known_dirs: BTreeSet<&PathBuf> = old.projects.iter().map(|k| &k.path).collect();
        let rediscover = dirty.full
            || dirty.projects
            || paths.iter().any(|p| {
                p.starts_with(&cache_dir)
                    || *p == &home.join(crate::config::FILE_NAME)
                    || known_dirs.contains(p)
                    || p.ancestors()
                        .any(|a| known_dirs.contains(&a.to_path_buf()) && !a.is_dir())
            });
        let projects = if rediscover {
            match engine.known_projects() {
                Ok((list, problems)) => {
                    self.discovery_problems = problems;
                    list
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot list projects");
                    old.projects.clone()
                }
            }
        } else {
            old.projects.clone()
        };
        let active: BTreeSet<PathBuf> = projects
            .iter()
            .filter(|k| !k.ignored && !k.missing)
            .map(|k| k.path.clone())
            .collect();

        if dirty.full {
            self.memo.clear();
        }
        for p in &paths {
            self.memo.invalidate(p);
        }

        // Watch what is wanted now; folders newly watched may hold changes made before the
        // watch existed, so their projects are recomputed from disk.
        let (added_roots, fell_back) = self.watcher.set_roots(&self.wanted_roots(&projects));
        for r in &added_roots {
            self.memo.invalidate(r);
        }

        let colls = collections_dir(&home);
        let mut affected: BTreeSet<PathBuf> = BTreeSet::new();
        if rediscover {
            affected.extend(active.iter().cloned());
        } else {
            let mut dirty_collections = BTreeSet::new();
            for p in paths.iter().copied().chain(added_roots.iter()) {
                if let Ok(rest) = p.strip_prefix(&colls)
                    && let Some(name) = rest.components().next()
                {
                    dirty_collections.insert(name.as_os_str().to_string_lossy().into_owned());
                }
                if let Some(project) = p.ancestors().find(|a| active.contains(*a)) {
                    affected.insert(project.to_path_buf());
                }
            }
            if !dirty_collections.is_empty() {
                for r in old.all() {
                    if dirty_collections.contains(&r.collection) && active.contains(&r.project) {
                        affected.insert(r.project.clone());
                    }
                }
            }
        }

        // Unaffected projects keep their reports (shared); affected and vanished ones are
        // the scope of this batch's comparison.
        let mut reports: BTreeMap<PathBuf, Arc<Reports>> = old
            .reports
            .iter()
            .filter(|(p, _)| active.contains(*p) && !affected.contains(*p))
            .map(|(p, r)| (p.clone(), Arc::clone(r)))
            .collect();
        let mut scope: BTreeSet<PathBuf> = affected.clone();
        scope.extend(old.reports.keys().filter(|p| !active.contains(*p)).cloned());
        self.project_problems
            .retain(|p, _| active.contains(p) && !affected.contains(p));
        let computed = self.compute(&affected);
        for (project, mut r) in computed {
            self.backlog.bases.append(&mut r.bases);
            let mine: Reports = r.artifacts.into_iter().map(|a| (a.key(), a)).collect();
            reports.insert(project.clone(), Arc::new(mine));
            self.project_problems.insert(project, r.problems);
        }

        let mut problems = self.config_problems.clone();
        problems.extend(self.discovery_problems.iter().cloned());
        problems.extend(self.collection_problems.values().flatten().cloned());
        problems.extend(self.project_problems.values().flatten().cloned());

        let store = engine.store();
        let (previous, current) = if initial {
            let persisted = match store.known_drift() {
                Ok(v) => v.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the last known drift state");
                    BTreeMap::new()
                }
            };
            let all: BTreeSet<PathBuf> = reports.keys().cloned().collect();
            (persisted, flatten(&reports, &all))
        } else {
            (flatten(&old.reports, &scope), flatten(&reports, &scope))
        };
        let mut events = journal::diff(&previous, &current, None);
        self.live.claims.attribute(&mut events);
        events.extend(journal::problem_events(&old.problems, &problems));
        for (root, reason) in &fell_back {
            tracing::warn!(root = %root.display(), "{reason}");
            events.push(Event::polling(&root.display().to_string(), reason));
        }
        let changes: Vec<(String, Option<ArtifactReport>)> = previous
            .keys()
            .chain(current.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| previous.get(*k) != current.get(*k))
            .map(|k| (k.clone(), current.get(k).cloned()))
            .collect();

        let mut cursor = old.cursor;
        if initial {
            cursor = store.next_cursor().map(|c| c - 1).unwrap_or(0);
        }
        let time = now_ms();
        for e in &mut events {
            cursor += 1;
            e.cursor = cursor;
            e.time_ms = time;
        }
        if let Err(e) = store.put_known_drift(&changes) {
            tracing::error!(error = %e, "cannot persist the drift state");
        }
        if let Err(e) = store.append_events(&events) {
            tracing::error!(error = %e, "cannot append to the journal");
        }
        if !events.is_empty() {
            let max_age = i64::try_from(self.journal_limits.max_age_days)
                .unwrap_or(i64::MAX / 2)
                .saturating_mul(86_400_000);
            if let Err(e) =
                store.prune_journal(self.journal_limits.max_events, time.saturating_sub(max_age))
            {
                tracing::warn!(error = %e, "cannot prune the journal");
            }
        }
        {
            let mut s = self.live.state.write().expect("state lock poisoned");
            *s = Arc::new(State {
                cursor,
                reports,
                problems,
                projects,
                polled: self.watcher.polled().clone(),
                watched_roots: self.watcher.roots().len(),
            });
        }
        for e in events {
            let _ = self.live.events.send(Arc::new(e));
        }
        // History after the events went out: new content becomes versions, roots get
        // snapshots. The first reconcile leaves it to the running task, so the socket opens
        // sooner. Barriers are released after the versions are recorded, so `--sync` also
        // covers history (`smctl log` right after an edit shows it).
        self.queue_history(&previous, &changes);
        if !initial {
            self.drain_history();
        }
        let mut waiting = self.live.cookies.lock().expect("cookie lock poisoned");
        for c in cookies {
            if let Some(tx) = waiting.remove(&c) {
                let _ = tx.send(());
            }
        }
        drop(waiting);
        for ack in dirty.acks {
            let _ = ack.send(());
        }
        if !initial {
            self.upkeep();
        }
        tracing::debug!(
            paths = paths.len(),
            projects = affected.len(),
            full = dirty.full,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch applied"
        );
    }

    /// Recomputes `projects`, on both cores when there are several.
    fn compute(
        &mut self,
        projects: &BTreeSet<PathBuf>,
    ) -> Vec<(PathBuf, crate::engine::DriftReport)> {
        let engine = Arc::clone(&self.live.engine);
        let home = engine.paths().skillmeat_home.clone();
        let list: Vec<&PathBuf> = projects.iter().collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(list.len())
            .max(1);
        let mut out = Vec::new();
        if workers == 1 {
            let mut colls = Collections::new(&home);
            for p in list {
                out.push((
                    p.clone(),
                    engine.project_drift(p, &mut colls, &mut self.memo),
                ));
            }
            self.note_collections(&colls);
            return out;
        }
        let chunk = list.len().div_ceil(workers);
        let memo = &self.memo;
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = list
                .chunks(chunk)
                .map(|part| {
                    let engine = &engine;
                    let home = &home;
                    let mut memo = memo.clone();
                    scope.spawn(move || {
                        let mut colls = Collections::new(home);
                        let r: Vec<_> = part
                            .iter()
                            .map(|p| ((*p).clone(), engine.project_drift(p, &mut colls, &mut memo)))
                            .collect();
                        (r, memo, colls)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("drift worker panicked"))
                .collect()
        });
        for (r, memo, colls) in results {
            out.extend(r);
            self.memo.absorb(memo);
            self.note_collections(&colls);
        }
        out
    }

    fn note_collections(&mut self, colls: &Collections) {
        for (name, problems) in colls.problems_by_name() {
            self.collection_problems.insert(name, problems);
        }
    }
}

/// Whether a report matches a drift-type filter (by its old or new type).
pub fn drift_matches(filter: &[DriftKind], old: Option<DriftKind>, new: Option<DriftKind>) -> bool {
    filter.is_empty()
        || [old, new]
            .into_iter()
            .flatten()
            .any(|k| filter.contains(&k))
}

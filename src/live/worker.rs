//! One batch of the live task: list the projects when needed, watch what is wanted,
//! recompute what the changed paths can affect, diff, journal, publish, broadcast.
//!
//! [`Worker::apply`] runs on the blocking pool; [`super::task`] hands it each batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use itertools::{EitherOrBoth, Itertools};
use tokio::sync::oneshot;

use crate::config::{Config, Effective};
use crate::engine::{Engine, SideMemo};
use crate::formats::Problem;
use crate::formats::collection::collections_dir;
use crate::formats::deployment;
use crate::hash::scan::Scan;
use crate::history::time::now_ms;
use crate::journal;
use crate::model::{ArtifactReport, Event};
use crate::projects::KnownProject;
use crate::transient::is_cookie;
use crate::watcher::{Depth, Watcher};

use super::recompute::{self, Prior};
use super::recorder::Recorder;
use super::upkeep::Backlog;
use super::{Live, Reports, State, flatten};

/// Profile roots watched even before they hold a deployment file.
const KNOWN_ROOTS: [&str; 4] = [".claude", ".codex", ".gemini", ".cursor"];

/// The hints of one batch.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    pub(super) paths: BTreeSet<PathBuf>,
    pub(super) full: bool,
    pub(super) projects: bool,
    pub(super) acks: Vec<oneshot::Sender<()>>,
    /// Every project's drift is recomputed (from the memoised sides): the configuration
    /// changed.
    pub(super) all_projects: bool,
    /// The store's condition changed: its problem is to be reported (or cleared).
    pub(super) store_condition: bool,
}

/// The live task's own state, moved to the blocking pool for each batch.
pub(super) struct Worker {
    pub(super) live: Arc<Live>,
    pub(super) watcher: Watcher,
    pub(super) memo: SideMemo,
    /// Problems of each active project's deployment files, as last computed.
    pub(super) project_problems: BTreeMap<PathBuf, Vec<Problem>>,
    pub(super) collection_problems: BTreeMap<String, Vec<Problem>>,
    pub(super) discovery_problems: Vec<Problem>,
    /// What kept the last reload of `daemon.toml` from applying wholly.
    pub(super) config_problems: Vec<Problem>,
    /// The configuration last adjusted to (to tell what a reload changed); settings are
    /// read from the engine where they are used.
    pub(super) seen: Arc<Config>,
    /// History work found by the batch being applied.
    pub(super) backlog: Backlog,
    /// Records history and answers each batch's barriers once its changes are recorded.
    pub(super) recorder: Recorder,
    /// The journal could not be written: the live state moved on without events, so the
    /// next batch that can write it diffs against the persisted state instead.
    pub(super) journal_gap: bool,
    /// The persisted drift state missed a batch's changes (its write failed).
    pub(super) known_drift_behind: bool,
    /// The store told the cursor to continue from (not yet, while it is being repaired).
    pub(super) cursor_known: bool,
    /// The store was reopened or repaired since the last batch.
    pub(super) store_changed: Option<crate::store::Generation>,
    /// The store generation the live state was last rebuilt for.
    pub(super) applied_generation: u64,
    /// A reload replaced the way every root is watched (polling switched on or off); the
    /// next published state tells sync barriers so.
    pub(super) rewatched: bool,
}

impl Worker {
    fn engine(&self) -> &Engine {
        &self.live.engine
    }

    /// The configuration in force.
    pub(super) fn config(&self) -> Arc<Config> {
        self.live.engine.config()
    }

    /// Adjusts to a reloaded configuration: polling (switching it on or off rewatches every
    /// root), discovery (the projects are listed again), retention (run at the next upkeep
    /// when its policy changed), and the problems that kept the file from applying wholly.
    /// The task loop re-arms its timers; every other setting is read where it is used.
    pub(super) fn reconfigure(&mut self, effective: &Effective, dirty: &mut Dirty) {
        let config = &effective.config;
        self.watcher
            .set_poll_interval(Duration::from_millis(config.watch.poll_interval_ms));
        if self.watcher.force_polling() != config.watch.force_polling {
            self.watcher.set_force_polling(config.watch.force_polling);
            self.rewatched = true;
            dirty.full = true;
        }
        if self.seen.history.retention != config.history.retention {
            self.recorder.prune_soon();
        }
        self.config_problems = effective.problems.clone();
        self.seen = Arc::clone(config);
        dirty.projects = true;
        dirty.all_projects = true;
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

    pub(super) fn apply(&mut self, mut dirty: Dirty, initial: bool) {
        crate::faults::point("live.batch");
        // Whichever batch comes first after a reopen or repair rebuilds what the daemon
        // derives from the store (a sync barrier's batch included).
        let generation = *self.live.engine.store().generations().borrow();
        if generation.number != self.applied_generation {
            self.applied_generation = generation.number;
            self.store_changed = Some(generation);
            dirty.full = true;
            dirty.projects = true;
        }
        let mut cookies: Vec<String> = dirty
            .paths
            .iter()
            .filter(|p| is_cookie(p))
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_string()))
            .collect();
        if !initial
            && !dirty.full
            && !dirty.projects
            && !dirty.store_condition
            && cookies.len() == dirty.paths.len()
        {
            // Only sync cookies: every change before them is in the state already (batches
            // are applied in the order of their hints), so they are answered as soon as the
            // changes of earlier batches are recorded.
            self.recorder.answer(cookies, dirty.acks);
            return;
        }
        let started = Instant::now();
        let engine = Arc::clone(&self.live.engine);
        let home = engine.paths().skillmeat_home.clone();
        if dirty.full {
            // A full reconcile reads the disk after this point, so it reflects every change
            // made before any barrier already waiting, even when the cookie's own event was
            // among the lost ones.
            let waiting = self.live.cookies.lock().expect("cookie lock poisoned");
            cookies.extend(waiting.keys().cloned());
        }
        let paths: Vec<&PathBuf> = dirty.paths.iter().filter(|p| !is_cookie(p)).collect();
        let old = self.live.state();
        let cache_dir = home.join("cache");
        // A project folder that vanished (or reappeared) changes the project set.
        let known_dirs: BTreeSet<&Path> = old.projects.iter().map(|k| k.path.as_path()).collect();
        let config_file = home.join(crate::config::FILE_NAME);
        let rediscover = dirty.full
            || dirty.projects
            || paths.iter().any(|p| {
                p.starts_with(&cache_dir)
                    || **p == config_file
                    || known_dirs.contains(p.as_path())
                    || p.ancestors().any(|a| known_dirs.contains(a) && !a.is_dir())
            });
        let discovering = Instant::now();
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
        let discover_ms = discovering.elapsed().as_millis() as u64;
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
        // watch existed, so their projects are recomputed from disk. What is wanted changes
        // only with the project set or the entries of a project's (or the home's) own
        // folders and profile roots, so an edit deeper down skips the listing.
        let relist = rediscover
            || initial
            || paths.iter().any(|p| {
                p.ancestors()
                    .skip(1)
                    .take(2)
                    .any(|a| a == home || known_dirs.contains(a))
            });
        let store = engine.store();
        let changed = self.store_changed.take();
        let derived_lost = changed.is_some_and(|g| g.derived_lost);
        if changed.is_some() {
            self.cursor_known = false;
        }
        // The folders newly watched are listed as they are watched, so their hash walks
        // below read nothing from the disk again. The persisted drift state, when this
        // batch must diff against it (at start, and after events could not be journaled:
        // the journal's readers missed them), is read meanwhile on a thread of its own.
        let watching = Instant::now();
        let mut scan = Scan::new();
        let read_persisted = (initial || self.journal_gap) && !derived_lost;
        // A full batch recomputes every project (its memo emptied above): each is computed
        // as soon as the roots it reads are watched, while the walk goes on.
        let gated = dirty.full && relist;
        let mut early = None;
        let ((added_roots, fell_back), (persisted, read_ms)) = std::thread::scope(|s| {
            let reader = read_persisted.then(|| s.spawn(|| read_known_drift(store)));
            let join = || {
                reader.map_or((None, 0), |r| {
                    r.join().expect("drift state reader panicked")
                })
            };
            let wanted = relist.then(|| self.wanted_roots(&projects));
            let walked = match wanted {
                Some(wanted) if gated => {
                    let mut read = None;
                    let prior = || {
                        let r = join();
                        let prior = prior_of(r.0.as_ref(), initial, &old);
                        read = Some(r);
                        prior
                    };
                    let mut both = recompute::while_walking(
                        &mut self.watcher,
                        &wanted,
                        &active,
                        &home,
                        &engine,
                        &self.memo,
                        prior,
                    );
                    let walked = std::mem::take(&mut both.walked);
                    early = Some(both);
                    return (walked, read.expect("read before the drift threads start"));
                }
                Some(wanted) => self.watcher.set_roots(&wanted, Some(&mut scan)),
                None => (Vec::new(), Vec::new()),
            };
            (walked, join())
        });
        let watch_ms = match &early {
            Some(both) => both.walk_ms,
            None => {
                for r in &added_roots {
                    self.memo.invalidate(r);
                }
                watching.elapsed().as_millis() as u64
            }
        };

        let colls = collections_dir(&home);
        let mut affected: BTreeSet<PathBuf> = BTreeSet::new();
        if dirty.full || dirty.all_projects {
            affected.extend(active.iter().cloned());
        } else {
            // A project listed anew (added, found, no longer ignored, back) is recomputed;
            // the others keep their reports unless their own paths changed, so adding a
            // project costs its size, not that of every project known.
            if rediscover {
                let before: BTreeMap<&PathBuf, &KnownProject> =
                    old.projects.iter().map(|k| (&k.path, k)).collect();
                affected.extend(
                    projects
                        .iter()
                        .filter(|k| active.contains(&k.path) && before.get(&k.path) != Some(k))
                        .map(|k| k.path.clone()),
                );
            }
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
                    if dirty_collections.contains(r.collection.as_str())
                        && active.contains(&r.project)
                    {
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
        let computing = Instant::now();
        let (computed, scanned, compute_ms) = match early {
            // Computed while the walk went on: the time it took past the walk's end.
            Some(both) => (self.merge(both.parts), both.folders, both.past_walk_ms),
            None => {
                let scanned = scan.len();
                self.memo
                    .use_scan((!scan.is_empty()).then(|| Arc::new(scan)));
                let prior = prior_of(persisted.as_ref(), initial, &old);
                let computed = self.compute(&affected, &prior);
                self.memo.use_scan(None);
                (computed, scanned, computing.elapsed().as_millis() as u64)
            }
        };
        for (project, mut r) in computed {
            self.backlog.bases.append(&mut r.bases);
            reports.insert(project.clone(), Arc::new(r.reports));
            self.project_problems.insert(project, r.problems);
        }

        let mut problems = self.config_problems.clone();
        let (condition, detail) = store.condition();
        if condition != crate::store::Condition::Ok {
            problems.push(Problem::new(
                store.dir(),
                format!("{}: {detail}", condition.describe()),
            ));
        }
        problems.extend(self.discovery_problems.iter().cloned());
        problems.extend(self.collection_problems.values().flatten().cloned());
        problems.extend(self.project_problems.values().flatten().cloned());

        // The projects compared, against what: every project the persisted state or the
        // batch knows, the present ones at start or after a repair, else the scope. Only
        // those whose reports differ are flattened and diffed (keys name their project, so
        // the others add no event and no change): after a warm restart, none.
        let (before, compared): (&Prior, BTreeSet<&PathBuf>) = match &persisted {
            Some(p) => (p, p.keys().chain(reports.keys()).collect()),
            None if initial || derived_lost => (&old.reports, reports.keys().collect()),
            None => (&old.reports, scope.iter().collect()),
        };
        let differing: BTreeSet<PathBuf> = compared
            .into_iter()
            .filter(|p| before.get(*p).map(|r| &**r) != reports.get(*p).map(|r| &**r))
            .cloned()
            .collect();
        let previous = flatten(before, Some(&differing));
        let current = flatten(&reports, Some(&differing));
        let claims = &self.live.claims;
        let mut events = journal::diff(&previous, &current, None, |r| claims.operation_of(r));
        events.extend(journal::problem_events(&old.problems, &problems));
        for (root, reason) in &fell_back {
            tracing::warn!(root = %root.display(), "{reason}");
            events.push(Event::polling(&root.display().to_string(), reason));
        }
        // One merge of the two sorted views.
        let changes: Vec<(&String, Option<&ArtifactReport>)> = previous
            .iter()
            .merge_join_by(current.iter(), |(a, _), (b, _)| a.cmp(b))
            .filter_map(|e| match e {
                EitherOrBoth::Left((k, _)) => Some((*k, None)),
                EitherOrBoth::Right((k, n)) => Some((*k, Some(*n))),
                EitherOrBoth::Both((k, o), (_, n)) => (o != n).then_some((*k, Some(*n))),
            })
            .collect();

        // Cursors continue from the store's (never reused, never skipped): events that
        // cannot be journaled are not sent; subscribers get a resync instead.
        let mut cursor = old.cursor;
        if !self.cursor_known
            && let Ok(next) = store.next_cursor()
        {
            cursor = cursor.max(next - 1);
            self.cursor_known = true;
        }
        let time = now_ms();
        let mut journaled = self.cursor_known;
        if journaled {
            let mut c = cursor;
            for e in &mut events {
                c += 1;
                e.cursor = c;
                e.time_ms = time;
            }
            match store.append_events(&events) {
                Ok(()) => {
                    // The events are durable: their cursors are told, whatever follows.
                    cursor = c;
                    // Persisted a project at a time: the projects whose reports changed.
                    let of = |p: &'_ Path| -> Vec<&ArtifactReport> {
                        reports
                            .get(p)
                            .map(|r| r.values().collect())
                            .unwrap_or_default()
                    };
                    let known = if derived_lost || self.known_drift_behind {
                        store.replace_known_drift(reports.keys().map(|p| (p.as_path(), of(p))))
                    } else {
                        let touched: BTreeSet<&Path> = changes
                            .iter()
                            .filter_map(|(k, _)| previous.get(*k).or(current.get(*k)))
                            .map(|r| r.project.as_path())
                            .collect();
                        store.put_known_drift(touched.into_iter().map(|p| (p, of(p))))
                    };
                    // Behind, the next start would tell these changes again: rewritten
                    // whole by the next batch that can.
                    self.known_drift_behind = known.is_err();
                    if let Err(e) = known {
                        tracing::warn!(error = %e, "cannot write the known drift state");
                    }
                }
                Err(e) => {
                    if !self.journal_gap {
                        tracing::error!(error = %e, "cannot write the journal; subscribers are resynced until it works again");
                    }
                    journaled = false;
                }
            }
        }
        if journaled && self.journal_gap {
            tracing::info!(events = events.len(), "the journal works again; caught up");
        }
        let resync = if derived_lost {
            Some("store_repaired")
        } else if !journaled && (!changes.is_empty() || !events.is_empty() || !self.journal_gap) {
            Some("journal_unavailable")
        } else {
            None
        };
        if !journaled {
            events.clear();
        }
        self.journal_gap = !journaled;
        if !events.is_empty() {
            let limits = &self.config().journal;
            let max_age = i64::try_from(limits.max_age_days)
                .unwrap_or(i64::MAX / 2)
                .saturating_mul(86_400_000);
            if let Err(e) = store.prune_journal(limits.max_events, time.saturating_sub(max_age)) {
                tracing::warn!(error = %e, "cannot prune the journal");
            }
        }
        let state = State {
            cursor,
            reports: reports.clone(),
            problems,
            projects,
            polled: self.watcher.polled().clone(),
            watched_roots: self.watcher.roots().len(),
            home_watched: self.watcher.roots().contains_key(&home)
                && !self.watcher.polled().contains_key(&home),
        };
        let rewatched = std::mem::take(&mut self.rewatched) || state.watching() != old.watching();
        *self.live.state.write().expect("state lock poisoned") = Arc::new(state);
        if rewatched {
            self.live.rewatched.send_modify(|n| *n += 1);
        }
        for e in events {
            let _ = self.live.events.send(Arc::new(e));
        }
        if let Some(reason) = resync {
            self.live.resync(reason);
        }
        // History after the events went out, on the recorder's thread: new content becomes
        // versions before the barriers are answered (`smctl log` right after an edit shows
        // it); bases and first-seen content are recorded in the background (history queries
        // and write-backs wait for them; see `Live::sync_history`), and roots get snapshots.
        if initial {
            // Everything is first seen, so bulk work, which no barrier waits for: the
            // barriers are answered before it is queued (a history query that passes them
            // still waits for it, its number taken first). The recorder plans it.
            let number = self.backlog.reserve(&self.live);
            self.recorder.answer(cookies, dirty.acks);
            let job = self.queue_first_seen(&reports, number);
            self.recorder.send(job);
        } else {
            let changed = changes.iter().filter_map(|(k, r)| Some(*k).zip(*r));
            let mut job = self.queue_history(&previous, changed, None);
            job.cookies = cookies;
            job.acks = dirty.acks;
            self.recorder.send(job);
        }
        // After the first, the recorder gives the memory back once its backlog is done
        // (the first answer does not wait for that).
        if dirty.full && !initial {
            crate::heap::release_freed();
        }
        tracing::debug!(
            paths = paths.len(),
            projects = affected.len(),
            full = dirty.full,
            discover_ms,
            watch_ms,
            scanned,
            read_ms,
            compute_ms,
            differing = differing.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch applied"
        );
    }
}

/// The reports a batch computes against: the first batch against the drift persisted by the
/// last run, later ones against the state in memory. Either is what a deployment file that
/// cannot be read now held.
fn prior_of(persisted: Option<&Prior>, initial: bool, old: &State) -> Prior {
    match (persisted, initial) {
        (Some(p), true) => p.clone(),
        _ => old.reports.clone(),
    }
}

/// The persisted drift state, each project's reports keyed by artifact (`None` when it
/// cannot be read: the batch then diffs against the state in memory), and the
/// milliseconds the read took.
fn read_known_drift(store: &crate::store::Store) -> (Option<Prior>, u64) {
    let reading = Instant::now();
    let persisted = match store.known_drift() {
        Ok(v) => Some(by_project(v)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the last known drift state");
            None
        }
    };
    (persisted, reading.elapsed().as_millis() as u64)
}

/// Each project's reports keyed by artifact.
fn by_project(projects: Vec<(PathBuf, Vec<ArtifactReport>)>) -> BTreeMap<PathBuf, Arc<Reports>> {
    projects
        .into_iter()
        .map(|(p, reports)| {
            (
                p,
                Arc::new(reports.into_iter().map(|r| (r.key(), r)).collect()),
            )
        })
        .collect()
}

//! Recomputing the projects a batch affects: one thread per available core, each taking
//! the next project as soon as it is free (so a large project does not leave the other
//! threads idle at the end), each with its own copy of the side memo, merged back after.
//! A full batch takes its projects from the [`Gate`] while its watch walk goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::engine::{Base, Collections, DriftReport, Engine, SideMemo};
use crate::formats::Problem;
use crate::hash::scan::Scan;
use crate::watcher::{Depth, Watcher};

use super::Reports;
use super::gate::Gate;
use super::worker::Worker;

/// Each project's previous reports.
pub(super) type Prior = BTreeMap<PathBuf, Arc<Reports>>;

/// What one drift thread computed, with the memo and collections it read, to merge.
type Part = (Vec<(PathBuf, Computed)>, SideMemo, Collections);

/// One project's drift, its reports keyed by artifact where they were computed (on the
/// drift threads, not in the batch's serial part).
pub(super) struct Computed {
    pub(super) reports: Reports,
    pub(super) problems: Vec<Problem>,
    pub(super) bases: Vec<Base>,
}

impl From<DriftReport> for Computed {
    fn from(r: DriftReport) -> Computed {
        Computed {
            reports: r.artifacts.into_iter().map(|a| (a.key(), a)).collect(),
            problems: r.problems,
            bases: r.bases,
        }
    }
}

impl Worker {
    /// Recomputes `projects`, one thread per available core (at most one per project), in
    /// the order of `projects`, with the listings the side memo was given.
    pub(super) fn compute(
        &mut self,
        projects: &BTreeSet<PathBuf>,
        prior: &Prior,
    ) -> Vec<(PathBuf, Computed)> {
        let engine = Arc::clone(&self.live.engine);
        let list: Vec<&PathBuf> = projects.iter().collect();
        if workers(list.len()) == 1 {
            // One project, the usual edit: computed here, the memo not copied.
            let mut colls = Collections::new(&engine.paths().skillmeat_home);
            let out = list
                .into_iter()
                .map(|p| {
                    let report =
                        engine.project_drift(p, previous(prior, p), &mut colls, &mut self.memo);
                    (p.clone(), report.into())
                })
                .collect();
            self.note_collections(&colls);
            return out;
        }
        let at = AtomicUsize::new(0);
        let next = || {
            let p = list.get(at.fetch_add(1, Ordering::Relaxed))?;
            Some(((*p).clone(), None))
        };
        let parts = spread(&engine, &self.memo, prior, list.len(), &next);
        self.merge(parts)
    }

    /// Merges what drift threads computed: their memos, the collections' problems, and
    /// the reports, in the order of their projects.
    pub(super) fn merge(&mut self, parts: Vec<Part>) -> Vec<(PathBuf, Computed)> {
        let mut out = Vec::new();
        for (done, memo, colls) in parts {
            out.extend(done);
            self.memo.absorb(memo);
            self.note_collections(&colls);
        }
        out.sort_by(|(a, _), (b, _)| a.cmp(b));
        out
    }

    fn note_collections(&mut self, colls: &Collections) {
        for (name, problems) in colls.problems_by_name() {
            self.collection_problems.insert(name, problems);
        }
    }
}

/// A watch walk and the drift computed while it went on.
pub(super) struct WhileWalking {
    /// [`Watcher::set_roots`]'s answer.
    pub walked: (Vec<PathBuf>, Vec<(PathBuf, String)>),
    /// For [`Worker::merge`].
    pub parts: Vec<Part>,
    /// Folders the walk listed.
    pub folders: usize,
    pub walk_ms: u64,
    /// How long the drift threads went on after the walk.
    pub past_walk_ms: u64,
}

/// Watches `wanted` and meanwhile recomputes `projects`, each as soon as the roots it reads
/// are watched, with the listings the walk read of them ([`Gate`]); `prior` is asked for
/// once, before the first project.
pub(super) fn while_walking(
    watcher: &mut Watcher,
    wanted: &BTreeMap<PathBuf, Depth>,
    projects: &BTreeSet<PathBuf>,
    home: &Path,
    engine: &Engine,
    memo: &SideMemo,
    prior: impl FnOnce() -> Prior,
) -> WhileWalking {
    let started = Instant::now();
    let new: Vec<PathBuf> = watcher
        .to_watch(wanted)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let gate = Gate::new(projects, &new, home);
    std::thread::scope(|s| {
        let walker = s.spawn(|| {
            let _closing = gate.closing();
            let listed = |root: &Path, scan: Scan| gate.watched(root, scan);
            let walked = watcher.set_roots_listed(wanted, Some(&listed));
            (walked, started.elapsed())
        });
        let prior = prior();
        let next = || gate.next().map(|(p, scan)| (p, Some(scan)));
        let parts = spread(engine, memo, &prior, projects.len(), &next);
        let computed = started.elapsed();
        let (walked, walk) = walker.join().expect("watch walk panicked");
        WhileWalking {
            walked,
            parts,
            folders: gate.folders(),
            walk_ms: walk.as_millis() as u64,
            past_walk_ms: computed.saturating_sub(walk).as_millis() as u64,
        }
    })
}

/// One thread per available core (at most `count`), each computing the projects `next`
/// hands out until it has none, with the listings it hands along (else the memo's).
fn spread(
    engine: &Engine,
    memo: &SideMemo,
    prior: &Prior,
    count: usize,
    next: &(dyn Fn() -> Option<(PathBuf, Option<Scan>)> + Sync),
) -> Vec<Part> {
    let home = &engine.paths().skillmeat_home;
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers(count))
            .map(|_| {
                let mut memo = memo.clone();
                scope.spawn(move || {
                    let mut colls = Collections::new(home);
                    let mut done = Vec::new();
                    while let Some((p, scan)) = next() {
                        if let Some(scan) = scan {
                            memo.use_scan(Some(Arc::new(scan)));
                        }
                        let report =
                            engine.project_drift(&p, previous(prior, &p), &mut colls, &mut memo);
                        done.push((p, Computed::from(report)));
                    }
                    memo.use_scan(None);
                    (done, memo, colls)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|h| h.join().expect("drift worker panicked"))
            .collect()
    })
}

/// Threads for `count` projects: one per available core, at most one per project.
fn workers(count: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count)
        .max(1)
}

fn previous<'a>(
    prior: &'a Prior,
    project: &PathBuf,
) -> impl Iterator<Item = &'a crate::model::ArtifactReport> {
    prior.get(project).into_iter().flat_map(|r| r.values())
}

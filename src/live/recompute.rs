//! Recomputing the projects a batch affects: one thread per available core, each taking
//! the next project from a shared counter (so a large project does not leave the other
//! threads idle at the end), each with its own copy of the side memo, merged back after.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::engine::{Collections, DriftReport};

use super::Reports;
use super::worker::Worker;

impl Worker {
    /// Recomputes `projects`, one thread per available core (at most one per project), in
    /// the order of `projects`. `prior` holds the previous reports of each project.
    pub(super) fn compute(
        &mut self,
        projects: &BTreeSet<PathBuf>,
        prior: &BTreeMap<PathBuf, Arc<Reports>>,
    ) -> Vec<(PathBuf, DriftReport)> {
        let prior_of = |p: &PathBuf| prior.get(p).into_iter().flat_map(|r| r.values());
        let engine = Arc::clone(&self.live.engine);
        let home = engine.paths().skillmeat_home.clone();
        let list: Vec<&PathBuf> = projects.iter().collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(list.len())
            .max(1);
        if workers == 1 {
            let mut colls = Collections::new(&home);
            let out = list
                .into_iter()
                .map(|p| {
                    let report = engine.project_drift(p, prior_of(p), &mut colls, &mut self.memo);
                    (p.clone(), report)
                })
                .collect();
            self.note_collections(&colls);
            return out;
        }
        let next = AtomicUsize::new(0);
        let memo = &self.memo;
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let (engine, home, prior_of, list, next) =
                        (&engine, &home, &prior_of, &list, &next);
                    let mut memo = memo.clone();
                    scope.spawn(move || {
                        let mut colls = Collections::new(home);
                        let mut done = Vec::new();
                        while let Some(p) = list.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let report =
                                engine.project_drift(p, prior_of(p), &mut colls, &mut memo);
                            done.push(((*p).clone(), report));
                        }
                        (done, memo, colls)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("drift worker panicked"))
                .collect()
        });
        let mut out = Vec::with_capacity(list.len());
        for (done, memo, colls) in results {
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

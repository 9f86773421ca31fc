//! What a batch hands to history: the worker turns the batch's changed artifacts into
//! history work ([`Worker::queue_history`]) and sends it, with the batch's barriers, to the
//! history recorder ([`super::recorder`]), which records it on its own thread (and, for the
//! first batch, whose every artifact is first seen, also plans it there).
//!
//! A change of content already seen becomes a version before the batch's barriers are
//! released (the recorder releases them once it is recorded): every settled save is a
//! version, read while it is current, and `smctl log` right after an edit shows it. Bulk
//! work — bases (the content each deployment was deployed with) and content seen for the
//! first time (a project just added, every artifact after a cold start) — is queued and
//! recorded by the recorder in short store batches, oldest batch first, while the worker
//! goes on with the next change; history queries and write-backs wait for the bulk work
//! queued before them ([`super::Live::sync_history`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use crate::engine::Base;
use crate::formats::collection::collections_dir;
use crate::history::Capture;
use crate::model::{ArtifactReport, Location, Origin, SnapshotTarget};

use super::worker::Worker;
use super::{Live, Reports, View};

/// One piece of history work: content to record, and the root whose automatic snapshot
/// it makes due (none for a base: the deployment itself changed nothing).
#[derive(Debug)]
pub(super) struct Work {
    pub(super) capture: Capture,
    pub(super) root: Option<SnapshotTarget>,
}

impl Work {
    fn base(b: Base) -> Work {
        Work {
            capture: Capture::Base {
                location: b.location,
                path: b.path,
                content_hash: b.content_hash,
            },
            root: None,
        }
    }

    /// The content the watcher settled on (hashing to `hash`) as a version, when it is
    /// recorded while the file still holds it.
    fn version(location: Location, path: PathBuf, hash: &str, root: SnapshotTarget) -> Work {
        Work {
            capture: Capture::Version {
                location,
                path,
                origin: Origin::Watch,
                message: None,
                expect: Some(hash.to_string()),
            },
            root: Some(root),
        }
    }

    pub(super) fn location(&self) -> &Location {
        self.capture.location()
    }

    pub(super) fn is_base(&self) -> bool {
        matches!(self.capture, Capture::Base { .. })
    }
}

/// What one batch hands to the recorder.
#[derive(Debug, Default)]
pub(super) struct Job {
    /// The batch's number among those with history work (0: none).
    pub(super) number: u64,
    /// Changes of content already seen: recorded before `cookies` and `acks` are answered.
    pub(super) changes: Vec<Work>,
    /// Bases and first-seen content, recorded in the background, oldest batch first.
    pub(super) bulk: Vec<Work>,
    /// The first batch's bulk work, still to be planned.
    pub(super) first_seen: Option<FirstSeen>,
    /// The sync cookies the batch answers.
    pub(super) cookies: Vec<String>,
    /// The control messages (project refresh, reconcile) the batch answers.
    pub(super) acks: Vec<oneshot::Sender<()>>,
}

/// The worker's side of the history work of the batch being applied.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    /// Bases found by the batch being applied.
    pub(super) bases: Vec<Base>,
    /// The number of the last batch that had history work.
    batch: u64,
}

impl Backlog {
    /// Numbers the next batch with history work. Before the batch's barriers are released:
    /// a history query that passed them waits for this work.
    pub(super) fn reserve(&mut self, live: &Live) -> u64 {
        self.batch += 1;
        live.history_queued.store(self.batch, Ordering::Release);
        self.batch
    }
}

impl Worker {
    /// Turns the batch's history work into a [`Job`] ([`plan`]), the bases the batch found
    /// included.
    ///
    /// `reserved` is the job's number when [`Backlog::reserve`] took it already (the job
    /// then carries it even with nothing to record).
    pub(super) fn queue_history<'a>(
        &mut self,
        previous: &View<'_>,
        changed: impl Iterator<Item = (&'a String, &'a ArtifactReport)>,
        reserved: Option<u64>,
    ) -> Job {
        let home = &self.live.engine.paths().skillmeat_home;
        let bases = std::mem::take(&mut self.backlog.bases);
        let (changes, bulk) = plan(home, bases, previous, changed);
        if bulk.is_empty() && changes.is_empty() && reserved.is_none() {
            return Job::default();
        }
        let number = reserved.unwrap_or_else(|| self.backlog.reserve(&self.live));
        Job {
            number,
            changes,
            bulk,
            ..Job::default()
        }
    }

    /// The first batch's history work, planned by the recorder ([`FirstSeen::plan`]):
    /// every artifact it found (the previous run may have stopped with its bulk work
    /// undone; the drift state it persisted does not say) and the bases. `reports` are
    /// shared, not copied.
    pub(super) fn queue_first_seen(
        &mut self,
        reports: &BTreeMap<PathBuf, Arc<Reports>>,
        number: u64,
    ) -> Job {
        Job {
            number,
            first_seen: Some(FirstSeen {
                home: self.live.engine.paths().skillmeat_home.clone(),
                reports: reports.clone(),
                bases: std::mem::take(&mut self.backlog.bases),
            }),
            ..Job::default()
        }
    }
}

/// Every artifact a start found, to be planned as bulk work on the recorder's thread:
/// that takes tens of milliseconds on a large tree, which the first answer does not wait
/// for.
#[derive(Debug)]
pub(super) struct FirstSeen {
    home: PathBuf,
    reports: BTreeMap<PathBuf, Arc<Reports>>,
    bases: Vec<Base>,
}

impl FirstSeen {
    /// The bulk work: all of it first seen (content already recorded is skipped when its
    /// turn comes, for the cost of a lookup).
    pub(super) fn plan(self) -> Vec<Work> {
        // Project by project: no location is in two projects' reports but a collection's,
        // whose work is the same from either.
        let all = self.reports.values().flat_map(|r| r.iter());
        let (changes, bulk) = plan(&self.home, self.bases, &View::new(), all);
        debug_assert!(
            changes.is_empty(),
            "nothing is known before the first batch"
        );
        bulk
    }
}

/// The history work of `changed` artifacts and `bases`: artifacts whose content differs
/// from `previous` become versions — changes (recorded before the batch's barriers are
/// answered) when their location had content already, bulk work when the content is seen
/// for the first time — and bases become bulk work (first-seen content that is a base
/// queued now is recorded as that base). Returns the changes and the bulk work, each in
/// the order it is recorded.
fn plan<'a>(
    home: &Path,
    bases: Vec<Base>,
    previous: &View<'_>,
    changed: impl Iterator<Item = (&'a String, &'a ArtifactReport)>,
) -> (Vec<Work>, Vec<Work>) {
    // First-seen content that is a base queued now is recorded as that base.
    let based: HashSet<(&Location, &str)> = bases
        .iter()
        .map(|b| (&b.location, b.content_hash.as_str()))
        .collect();
    let mut seen = BTreeSet::new();
    let (mut changes, mut first_seen) = (Vec::new(), Vec::new());
    for (key, new) in changed {
        let old = previous.get(key);
        let mut found = |loc: Location, hash: &str, path, root, known: bool| {
            // A change of known content is always a version (back to the base's
            // content too: the newest version must be what the file holds).
            if (!known && based.contains(&(&loc, hash))) || !seen.insert(loc.clone()) {
                return;
            }
            let work = Work::version(loc, path, hash, root);
            if known {
                changes.push(work);
            } else {
                first_seen.push(work);
            }
        };
        if let Some(sha) = &new.project_sha
            && old.is_none_or(|o| o.project_sha != new.project_sha)
        {
            let loc = new.project_location();
            let path = new.project.join(&new.profile_root).join(&new.artifact_path);
            let root = SnapshotTarget::Project(new.project.clone());
            let known = old.is_some_and(|o| o.project_sha.is_some());
            found(loc, &sha.to_string(), path, root, known);
        }
        if let (Some(sha), Some(rel)) = (&new.collection_sha, &new.collection_path)
            && old.is_none_or(|o| o.collection_sha != new.collection_sha)
            && let Some(loc) = new.collection_location()
        {
            let path = collections_dir(home).join(&new.collection).join(rel);
            let root = SnapshotTarget::Collection(new.collection.to_string());
            let known = old.is_some_and(|o| o.collection_sha.is_some());
            found(loc, &sha.to_string(), path, root, known);
        }
    }
    drop(based);
    let mut bulk: Vec<Work> = bases.into_iter().map(Work::base).collect();
    bulk.append(&mut first_seen);
    // Bases first, then new content; collection copies first in each: a deployment's
    // base and first version attach to the collection version it was deployed from,
    // which must exist by then.
    bulk.sort_by_key(|w| (!w.is_base(), !is_collection(w.location())));
    changes.sort_by_key(|w| !is_collection(w.location()));
    (changes, bulk)
}

pub(super) fn is_collection(loc: &Location) -> bool {
    matches!(loc.scope, crate::model::Scope::Collection(_))
}

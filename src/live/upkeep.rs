//! History upkeep between batches: new content becomes versions, deployments get their
//! base versions, changed roots get their automatic snapshot once the rate limit allows,
//! and retention runs hourly.
//!
//! The worker queues the work while applying a batch ([`Worker::queue_history`]). A change
//! of content already seen becomes a version before the batch's barriers are released:
//! every settled save is a version, read while it is current, and `smctl log` right after
//! an edit shows it. Bulk work — bases (the content each deployment was deployed with) and
//! content seen for the first time (a project just added, every artifact after a cold
//! start) — is done after the release, in slices of at most [`SLICE`], oldest batch first,
//! so it never holds back a batch or a barrier by more than one slice. The number of the
//! last batch whose bulk work is done is published for history queries and write-backs
//! ([`super::Live::sync_history`]).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::engine::Base;
use crate::formats::collection::collections_dir;
use crate::history::Capture;
use crate::history::time::now_ms;
use crate::model::{ArtifactReport, Location, Origin, SnapshotTarget};

use super::worker::Worker;

/// How often pending automatic snapshots and retention are looked at.
pub(super) const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How often retention runs.
pub(super) const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The longest stretch of bulk history work done at once between batches.
pub(super) const SLICE: Duration = Duration::from_millis(20);

/// One piece of history work: content to record, and the root whose automatic snapshot
/// it makes due (none for a base: the deployment itself changed nothing).
#[derive(Debug)]
struct Work {
    capture: Capture,
    root: Option<SnapshotTarget>,
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

    fn version(location: Location, path: PathBuf, root: SnapshotTarget) -> Work {
        Work {
            capture: Capture::Version {
                location,
                path,
                origin: Origin::Watch,
                message: None,
            },
            root: Some(root),
        }
    }

    fn location(&self) -> &Location {
        self.capture.location()
    }

    fn is_base(&self) -> bool {
        matches!(self.capture, Capture::Base { .. })
    }
}

/// History work waiting to be done.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    /// Bases found by the batch being applied (queued by [`Worker::queue_history`]).
    pub(super) bases: Vec<Base>,
    /// Changes of content already seen, found by the batch being applied (recorded by
    /// [`Worker::record_versions`] before the batch is answered).
    changes: Vec<Work>,
    /// Bulk work of earlier batches, tagged with the batch's number, oldest first.
    queued: VecDeque<(u64, Work)>,
    /// The number of the last batch that queued bulk work.
    batch: u64,
}

impl Worker {
    /// Whether history work is waiting.
    pub(super) fn history_pending(&self) -> bool {
        !self.backlog.queued.is_empty() || !self.backlog.changes.is_empty()
    }

    /// Whether queued history work, a pending snapshot or retention is due.
    pub(super) fn upkeep_due(&self) -> bool {
        self.history_pending()
            || !self.pending_snapshots.is_empty()
            || now_ms() - self.last_prune_ms >= PRUNE_EVERY_MS
    }

    /// Queues the batch's history work: `changed` artifacts whose content differs from
    /// `previous` become versions (before the batch is answered when their location had
    /// content already), content seen for the first time and bases become bulk work
    /// (first-seen content that is a base queued now is recorded as that base).
    ///
    /// At start `previous` is empty and `changed` is every artifact: the last run may
    /// have stopped with its bulk work undone (the drift state it persisted does not say),
    /// so all of it is queued again; content already recorded is skipped when its turn
    /// comes, for the cost of a lookup.
    pub(super) fn queue_history<'a>(
        &mut self,
        previous: &BTreeMap<String, ArtifactReport>,
        changed: impl Iterator<Item = (&'a String, &'a ArtifactReport)>,
    ) {
        let home = self.live.engine.paths().skillmeat_home.clone();
        // First-seen content that is a base queued now is recorded as that base.
        let based: HashSet<(&Location, &str)> = self
            .backlog
            .bases
            .iter()
            .map(|b| (&b.location, b.content_hash.as_str()))
            .collect();
        let mut seen = BTreeSet::new();
        let mut first_seen = Vec::new();
        for (key, new) in changed {
            let old = previous.get(key);
            let mut found = |loc: Location, hash: &str, path, root, known: bool| {
                // A change of known content is always a version (back to the base's
                // content too: the newest version must be what the file holds).
                if (!known && based.contains(&(&loc, hash))) || !seen.insert(loc.clone()) {
                    return;
                }
                let work = Work::version(loc, path, root);
                if known {
                    self.backlog.changes.push(work);
                } else {
                    first_seen.push(work);
                }
            };
            if let Some(sha) = &new.project_sha
                && old.is_none_or(|o| o.project_sha != new.project_sha)
            {
                let rel = new.artifact_path.to_string_lossy();
                let loc = Location::project(&new.project, &new.profile_root, &rel);
                let path = new.project.join(&new.profile_root).join(&new.artifact_path);
                let root = SnapshotTarget::Project(new.project.clone());
                let known = old.is_some_and(|o| o.project_sha.is_some());
                found(loc, sha, path, root, known);
            }
            if let (Some(sha), Some(rel)) = (&new.collection_sha, &new.collection_path)
                && old.is_none_or(|o| o.collection_sha != new.collection_sha)
            {
                let loc = Location::collection(&new.collection, &rel.to_string_lossy());
                let path = collections_dir(&home).join(&new.collection).join(rel);
                let root = SnapshotTarget::Collection(new.collection.clone());
                let known = old.is_some_and(|o| o.collection_sha.is_some());
                found(loc, sha, path, root, known);
            }
        }
        drop(based);
        let mut bulk: Vec<Work> = std::mem::take(&mut self.backlog.bases)
            .into_iter()
            .map(Work::base)
            .collect();
        bulk.append(&mut first_seen);
        if bulk.is_empty() {
            return;
        }
        // Bases first, then new content; collection copies first in each: a deployment's
        // base and first version attach to the collection version it was deployed from,
        // which must exist by then.
        bulk.sort_by_key(|w| (!w.is_base(), !is_collection(w.location())));
        let batch = self.backlog.batch + 1;
        self.backlog.batch = batch;
        self.backlog
            .queued
            .extend(bulk.into_iter().map(|w| (batch, w)));
        // Before the batch's barriers are released: a history query that passed them
        // waits for this work.
        self.live.history_queued.store(batch, Ordering::Release);
    }

    /// Records the batch's changed content as versions (collection content first, so that
    /// new project content finds the collection version it was deployed from), in one
    /// store batch. Bulk work still queued for the same location goes first (a base, so
    /// the new version's parent is it) or is dropped (first-seen content, superseded by
    /// this version); the rest of the backlog waits for its turn.
    pub(super) fn record_versions(&mut self) {
        let mut changes = std::mem::take(&mut self.backlog.changes);
        if changes.is_empty() {
            return;
        }
        // A full, failed or repairing store takes no history; the work is dropped (not
        // kept: memory stays bounded however long the outage), and the next change of each
        // artifact is recorded once the store works again.
        if let Err(e) = self.live.engine.store().writable() {
            tracing::debug!(dropped = changes.len(), error = %e, "history not recorded");
            return;
        }
        changes.sort_by_key(|w| !is_collection(w.location()));
        let started = Instant::now();
        let mut work = self.take_queued_at(&changes);
        let ahead = work.len();
        work.append(&mut changes);
        let recorded = self.record(work, None);
        self.publish_bulk_done();
        tracing::debug!(
            recorded,
            ahead,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "history recorded"
        );
    }

    /// Removes the queued bulk work at the locations of `changes`: their bases, to be
    /// recorded now (after a queued collection base of the same content, which a base
    /// whose copy already changed is recorded from: one for each content, however many
    /// artifacts share it); first-seen content is dropped.
    fn take_queued_at(&mut self, changes: &[Work]) -> Vec<Work> {
        if self.backlog.queued.is_empty() {
            return Vec::new();
        }
        let at: BTreeSet<&Location> = changes.iter().map(Work::location).collect();
        let mut hashes: BTreeSet<String> = self
            .backlog
            .queued
            .iter()
            .filter_map(|(_, w)| match &w.capture {
                Capture::Base {
                    location,
                    content_hash,
                    ..
                } if at.contains(location) => Some(content_hash.clone()),
                _ => None,
            })
            .collect();
        let (mut sources, mut ahead) = (Vec::new(), Vec::new());
        let mut kept = VecDeque::with_capacity(self.backlog.queued.len());
        for (batch, work) in self.backlog.queued.drain(..) {
            match &work.capture {
                Capture::Base { location, .. } if at.contains(location) => ahead.push(work),
                Capture::Version { location, .. } if at.contains(location) => {}
                Capture::Base {
                    location,
                    content_hash,
                    ..
                } if is_collection(location) && hashes.remove(content_hash) => {
                    sources.push(work);
                }
                _ => kept.push_back((batch, work)),
            }
        }
        self.backlog.queued = kept;
        sources.append(&mut ahead);
        sources
    }

    /// Records `work` in one store batch (one flush for all of it), taking work from the
    /// front of the bulk backlog after it while `until` allows. Returns how many versions
    /// were recorded.
    fn record(&mut self, work: Vec<Work>, until: Option<Instant>) -> usize {
        let engine = Arc::clone(&self.live.engine);
        let history = engine.history();
        let mut batch = history.batch();
        let mut add = |work: Work| {
            if until.is_some() {
                crate::faults::point("history.bulk");
            }
            if let Err(e) = batch.add(&work.capture) {
                tracing::warn!(location = %work.location(), "cannot record a version: {e}");
            }
            if let Some(root) = work.root {
                self.pending_snapshots.insert(root);
            }
        };
        for w in work {
            add(w);
        }
        if let Some(until) = until {
            while let Some((_, w)) = self.backlog.queued.pop_front() {
                add(w);
                if Instant::now() >= until {
                    break;
                }
            }
        }
        match batch.commit() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cannot record versions: {e}");
                0
            }
        }
    }

    /// Does queued bulk work, oldest first, for at most about `budget` (at least one
    /// piece), in one store batch, then publishes how far it got.
    pub(super) fn record_bulk(&mut self, budget: Duration) {
        if self.backlog.queued.is_empty() {
            // Nothing left, perhaps done ahead of its turn by `record_versions`.
            self.publish_bulk_done();
            return;
        }
        if let Err(e) = self.live.engine.store().writable() {
            tracing::debug!(dropped = self.backlog.queued.len(), error = %e, "history not recorded");
            self.backlog.queued.clear();
            self.publish_bulk_done();
            return;
        }
        let started = Instant::now();
        let left = self.backlog.queued.len();
        let recorded = self.record(Vec::new(), Some(started + budget));
        self.publish_bulk_done();
        tracing::debug!(
            done = left - self.backlog.queued.len(),
            recorded,
            left = self.backlog.queued.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "bulk history recorded"
        );
    }

    /// Publishes the number of the last batch whose bulk work is all done.
    fn publish_bulk_done(&self) {
        let done = self
            .backlog
            .queued
            .front()
            .map_or(self.backlog.batch, |(batch, _)| batch - 1);
        self.live.history_done.send_if_modified(|d| {
            let newer = *d < done;
            if newer {
                *d = done;
            }
            newer
        });
    }

    /// Takes the automatic snapshots that are due, and runs retention hourly (and right
    /// after a reload changed its policy).
    pub(super) fn upkeep(&mut self) {
        // A snapshot waits for the bases still queued (it would miss them).
        if !self.backlog.queued.is_empty() {
            return;
        }
        let engine = Arc::clone(&self.live.engine);
        if engine.store().writable().is_err() {
            self.pending_snapshots.clear();
            return;
        }
        let history = engine.history();
        let config = self.config();
        let now = now_ms();
        let interval = i64::try_from(config.history.auto_snapshot_interval_secs)
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
            match history.prune(now, &config.history.retention, &protected) {
                Ok(r) => tracing::info!(?r, "history retention"),
                Err(e) => tracing::warn!("history retention failed: {e}"),
            }
        }
    }
}

fn is_collection(loc: &Location) -> bool {
    matches!(loc.scope, crate::model::Scope::Collection(_))
}

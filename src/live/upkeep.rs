//! History upkeep between batches: new content becomes versions, changed roots get their
//! automatic snapshot once the rate limit allows, and retention runs hourly.
//!
//! The worker queues the work while applying a batch ([`Worker::queue_history`]) and does it
//! after the batch's answer is published.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::formats::collection::collections_dir;
use crate::history::time::now_ms;
use crate::model::{ArtifactReport, Location, Origin, SnapshotTarget};

use super::worker::Worker;

/// How often pending automatic snapshots and retention are looked at.
pub(super) const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How often retention runs.
pub(super) const PRUNE_EVERY_MS: i64 = 3_600_000;

/// History work waiting to be done.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    pub(super) bases: Vec<crate::engine::Base>,
    pub(super) captures: Vec<(Location, PathBuf, SnapshotTarget)>,
}

impl Worker {
    /// Whether queued history work, a pending snapshot or retention is due.
    pub(super) fn upkeep_due(&self) -> bool {
        !self.backlog.bases.is_empty()
            || !self.backlog.captures.is_empty()
            || !self.pending_snapshots.is_empty()
            || now_ms() - self.last_prune_ms >= PRUNE_EVERY_MS
    }

    /// Queues new content to become versions, and the changed roots for snapshots.
    pub(super) fn queue_history(
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
    pub(super) fn drain_history(&mut self) {
        let mut backlog = std::mem::take(&mut self.backlog);
        // Collection content first, so that new project content finds the collection
        // version it was deployed from.
        backlog
            .captures
            .sort_by_key(|(loc, _, _)| !matches!(loc.scope, crate::model::Scope::Collection(_)));
        if backlog.bases.is_empty() && backlog.captures.is_empty() {
            return;
        }
        // A full, failed or repairing store takes no history; the work is dropped (not
        // kept: memory stays bounded however long the outage), and the next change of each
        // artifact is recorded once the store works again.
        if let Err(e) = self.live.engine.store().writable() {
            tracing::debug!(dropped = backlog.captures.len(), error = %e, "history not recorded");
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

    /// Takes the automatic snapshots that are due, and runs retention hourly (and right
    /// after a reload changed its policy).
    pub(super) fn upkeep(&mut self) {
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

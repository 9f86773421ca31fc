//! Snapshots: what a snapshot of a collection or project covers, taking one (on request,
//! as an operation's safety net, or automatically once changes settle) and reading them.

use std::path::PathBuf;

use crate::formats::{collection, deployment};
use crate::model::{Location, Origin, Snapshot, SnapshotId, SnapshotTarget, Version, VersionId};

use super::{History, HistoryError, Prepared, time};

/// Whether an automatic snapshot may be taken now: the last one (if any) is at least
/// `min_interval_ms` old. A clock that went backwards allows one.
pub fn auto_snapshot_due(last_ms: Option<i64>, now_ms: i64, min_interval_ms: i64) -> bool {
    match last_ms {
        None => true,
        Some(last) => now_ms < last || now_ms - last >= min_interval_ms,
    }
}

impl History {
    /// The artifacts a snapshot of `target` covers, with their paths on disk.
    ///
    /// # Errors
    /// The collection or project does not exist.
    pub fn members_on_disk(
        &self,
        target: &SnapshotTarget,
    ) -> Result<Vec<(Location, PathBuf)>, HistoryError> {
        let mut out = Vec::new();
        match target {
            SnapshotTarget::Collection(name) => {
                let c = collection::read(&self.home, name);
                if !c.dir.join("collection.toml").is_file() {
                    return Err(HistoryError::NotFound(format!("collection {name:?}")));
                }
                for f in ["collection.toml", "collection.lock"] {
                    out.push((Location::collection(name, f), c.dir.join(f)));
                }
                for a in &c.artifacts {
                    let loc = Location::collection(name, &a.path.to_string_lossy());
                    out.push((loc, c.dir.join(&a.path)));
                }
            }
            SnapshotTarget::Project(p) => {
                if !p.is_dir() {
                    return Err(HistoryError::NotFound(format!("project {}", p.display())));
                }
                for file in deployment::read_project(p) {
                    let root = p.join(&file.root);
                    out.push((
                        Location::project(p, &file.root, deployment::FILE_NAME),
                        root.join(deployment::FILE_NAME),
                    ));
                    for r in &file.records {
                        let rel = r.artifact_path.to_string_lossy();
                        out.push((
                            Location::project(p, &file.root, &rel),
                            root.join(&r.artifact_path),
                        ));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Takes a snapshot of `target` now: every covered artifact's current content becomes
    /// (or reuses) a version.
    ///
    /// # Errors
    /// The target does not exist; an artifact cannot be read; the store failed.
    pub fn snapshot(
        &self,
        target: &SnapshotTarget,
        origin: Origin,
        message: Option<&str>,
    ) -> Result<SnapshotId, HistoryError> {
        let _w = self.lock();
        let (members, new) = self.capture_members(target, origin)?;
        self.record_snapshot(target, time::now_ms(), origin, message, members, &new)
    }

    /// Captures every artifact `target` covers: the members' ids and the new versions
    /// (whose blobs are written, not yet flushed).
    pub(super) fn capture_members(
        &self,
        target: &SnapshotTarget,
        origin: Origin,
    ) -> Result<(Vec<VersionId>, Vec<Version>), HistoryError> {
        let mut members = Vec::new();
        let mut new = Vec::new();
        for (loc, path) in self.members_on_disk(target)? {
            match self.prepare(&loc, &path, origin, None, None)? {
                Prepared::Same(id) => members.push(id),
                Prepared::New(v) => {
                    members.push(v.id);
                    new.push(*v);
                }
                Prepared::Nothing => {}
            }
        }
        Ok((members, new))
    }

    /// Records a snapshot and its new versions durably: blobs flushed first, then the
    /// records naming them in one batch, flushed.
    pub(super) fn record_snapshot(
        &self,
        target: &SnapshotTarget,
        time_ms: i64,
        origin: Origin,
        message: Option<&str>,
        members: Vec<VersionId>,
        new: &[Version],
    ) -> Result<SnapshotId, HistoryError> {
        self.store.flush()?;
        let snap = Snapshot {
            id: self.store.next_snapshot_id()?,
            target: target.clone(),
            time_ms,
            origin,
            message: message.map(str::to_string),
            members,
        };
        self.store.put_snapshot(new, &snap)?;
        self.store.flush()?;
        Ok(snap.id)
    }

    /// The call for "changes under `target` settled": takes an automatic snapshot (origin
    /// `watch`) unless one was taken less than `min_interval_ms` ago, or nothing changed
    /// since the last snapshot of `target`. Returns the new snapshot's id.
    ///
    /// # Errors
    /// As [`History::snapshot`].
    pub fn auto_snapshot(
        &self,
        target: &SnapshotTarget,
        now_ms: i64,
        min_interval_ms: i64,
    ) -> Result<Option<SnapshotId>, HistoryError> {
        let _w = self.lock();
        let last = self.store.last_auto_snapshot(target)?;
        if !auto_snapshot_due(last, now_ms, min_interval_ms) {
            return Ok(None);
        }
        let previous = self
            .store
            .all_snapshots()?
            .into_iter()
            .rfind(|s| &s.target == target);
        // Capture first; a snapshot equal to the previous one is not recorded.
        let (members, new) = self.capture_members(target, Origin::Watch)?;
        if new.is_empty() && previous.is_some_and(|p| p.members == members) {
            return Ok(None);
        }
        let id = self.record_snapshot(target, now_ms, Origin::Watch, None, members, &new)?;
        self.store.set_last_auto_snapshot(target, now_ms)?;
        self.store.flush()?;
        Ok(Some(id))
    }

    /// One snapshot.
    ///
    /// # Errors
    /// [`HistoryError::NotFound`]; the store failed.
    pub fn snapshot_record(&self, id: SnapshotId) -> Result<Snapshot, HistoryError> {
        self.store
            .snapshot(id)?
            .ok_or_else(|| HistoryError::NotFound(format!("snapshot {id}")))
    }

    /// A page of snapshots, newest first, optionally of one target: at most `limit` (1 to
    /// 100) items strictly after `cursor`; the next cursor when more remain.
    ///
    /// # Errors
    /// A bad limit, an unknown cursor; the store failed.
    pub fn snapshots(
        &self,
        target: Option<&SnapshotTarget>,
        limit: usize,
        cursor: Option<SnapshotId>,
    ) -> Result<(Vec<Snapshot>, Option<SnapshotId>), HistoryError> {
        if limit == 0 {
            return Err(HistoryError::Invalid("limit must be at least 1".into()));
        }
        let limit = limit.min(100);
        let mut all: Vec<Snapshot> = self
            .store
            .all_snapshots()?
            .into_iter()
            .filter(|s| target.is_none_or(|t| &s.target == t))
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse((s.time_ms, s.id)));
        let start = match cursor {
            None => 0,
            Some(c) => {
                all.iter()
                    .position(|s| s.id == c)
                    .ok_or_else(|| HistoryError::NotFound(format!("cursor {c}")))?
                    + 1
            }
        };
        let page: Vec<Snapshot> = all.iter().skip(start).take(limit).cloned().collect();
        let next = (start + page.len() < all.len())
            .then(|| page.last().map(|s| s.id))
            .flatten();
        Ok((page, next))
    }

    /// The versions a snapshot names.
    ///
    /// # Errors
    /// A member is missing; the store failed.
    pub fn members(&self, snap: &Snapshot) -> Result<Vec<Version>, HistoryError> {
        snap.members.iter().map(|&id| self.version(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_snapshot_rate_limit() {
        assert!(auto_snapshot_due(None, 1000, 500));
        assert!(!auto_snapshot_due(Some(800), 1000, 500));
        assert!(auto_snapshot_due(Some(500), 1000, 500));
        assert!(auto_snapshot_due(Some(2000), 1000, 500));
    }
}

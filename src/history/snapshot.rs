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

/// A snapshot's members and the versions new among them.
type Captured = (Vec<VersionId>, Vec<Version>);

/// What [`History::auto_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSnapshot {
    /// Taken, with this id.
    Taken(SnapshotId),
    /// Not due yet, or nothing changed since the last snapshot.
    NotTaken,
    /// A member is being saved: nothing was recorded.
    Unsettled,
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
        let (members, new) = self
            .capture_members(target, origin, &|_| None)?
            .expect("nothing expected: every member is as found");
        self.record_snapshot(target, time::now_ms(), origin, message, members, &new)
    }

    /// Captures every artifact `target` covers: the members' ids and the new versions
    /// (whose blobs are written, not yet flushed). A member for which `settled` names a
    /// content hash must hold that content (or be absent when it names none): `None` when
    /// one does not, a save under way.
    pub(super) fn capture_members(
        &self,
        target: &SnapshotTarget,
        origin: Origin,
        settled: &dyn Fn(&Location) -> Option<String>,
    ) -> Result<Option<Captured>, HistoryError> {
        let mut members = Vec::new();
        let mut new = Vec::new();
        for (loc, path) in self.members_on_disk(target)? {
            let expect = settled(&loc);
            match self.prepare(&loc, &path, origin, None, expect.as_deref())? {
                Prepared::Same(id) => members.push(id),
                Prepared::New(v) => {
                    members.push(v.id);
                    new.push(*v);
                }
                Prepared::Nothing if expect.is_some() => return Ok(None),
                Prepared::Nothing => {}
            }
        }
        Ok(Some((members, new)))
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
    /// since the last snapshot of `target`.
    ///
    /// `settled` names, for the artifacts the watcher knows, the content it settled on.
    /// A file that holds something else is being saved again: no snapshot is taken then
    /// ([`AutoSnapshot::Unsettled`]; ask again later), so a snapshot never holds a file
    /// caught mid-save.
    ///
    /// # Errors
    /// As [`History::snapshot`].
    pub fn auto_snapshot(
        &self,
        target: &SnapshotTarget,
        now_ms: i64,
        min_interval_ms: i64,
        settled: &dyn Fn(&Location) -> Option<String>,
    ) -> Result<AutoSnapshot, HistoryError> {
        let _w = self.lock();
        let last = self.store.last_auto_snapshot(target)?;
        if !auto_snapshot_due(last, now_ms, min_interval_ms) {
            return Ok(AutoSnapshot::NotTaken);
        }
        let previous = self
            .store
            .all_snapshots()?
            .into_iter()
            .rfind(|s| &s.target == target);
        // Capture first; a snapshot equal to the previous one is not recorded.
        let Some((members, new)) = self.capture_members(target, Origin::Watch, settled)? else {
            return Ok(AutoSnapshot::Unsettled);
        };
        if new.is_empty() && previous.is_some_and(|p| p.members == members) {
            return Ok(AutoSnapshot::NotTaken);
        }
        let id = self.record_snapshot(target, now_ms, Origin::Watch, None, members, &new)?;
        self.store.set_last_auto_snapshot(target, now_ms)?;
        self.store.flush()?;
        Ok(AutoSnapshot::Taken(id))
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

    /// An automatic snapshot taken while an artifact is mid-save (emptied by a truncate
    /// the watcher has not settled) records nothing and says so; once the file holds the
    /// content the watcher settled on, it is taken with that content.
    #[test]
    fn an_automatic_snapshot_waits_for_a_save_under_way() {
        let (d, h) = crate::history::tests::setup();
        let project = d.path().join("proj");
        let file = project.join(".claude/commands/a.md");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "settled\n").unwrap();
        let settled = crate::hash::content_hash(&file, crate::hash::Variant::Legacy).unwrap();
        let record = format!(
            "[[deployed]]\nartifact_name = \"a\"\nartifact_type = \"command\"\nfrom_collection = \"default\"\ndeployed_at = \"2026-01-05T15:07:49\"\nartifact_path = \"commands/a.md\"\ncontent_hash = \"{settled}\"\n"
        );
        std::fs::write(project.join(".claude").join(deployment::FILE_NAME), record).unwrap();
        let target = SnapshotTarget::Project(project.clone());
        let loc = Location::project(&project, ".claude", "commands/a.md");
        let seen = |l: &Location| (*l == loc).then(|| settled.clone());

        std::fs::write(&file, "").unwrap();
        assert_eq!(
            h.auto_snapshot(&target, 1_000, 0, &seen).unwrap(),
            AutoSnapshot::Unsettled
        );
        assert!(h.versions_of(&loc).unwrap().is_empty(), "nothing recorded");

        std::fs::write(&file, "settled\n").unwrap();
        let AutoSnapshot::Taken(id) = h.auto_snapshot(&target, 2_000, 0, &seen).unwrap() else {
            panic!("taken once the save is done");
        };
        let members = h.members(&h.snapshot_record(id).unwrap()).unwrap();
        let hashes: Vec<&str> = members
            .iter()
            .filter(|v| v.location == loc)
            .map(|v| v.content_hash.as_str())
            .collect();
        assert_eq!(hashes, [settled.as_str()]);
        assert_eq!(
            h.auto_snapshot(&target, 3_000, 0, &seen).unwrap(),
            AutoSnapshot::NotTaken,
            "nothing changed since"
        );
    }
}

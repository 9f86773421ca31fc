//! `rollback`: one artifact to a version, tag, snapshot member or time; a whole collection or
//! project to a snapshot; each exactly (`replace`) or keeping local edits (`preserve`).

use std::collections::BTreeSet;
use std::path::Path;

use crate::formats::lock_write;
use crate::formats::rollback_audit::{self, RollbackRecord};
use crate::formats::{collection, timestamp};
use crate::history::content::Content;
use crate::history::time;
use crate::merge::Tree;
use crate::model::{
    AuditEntry, Location, OperationRecord, Origin, Scope, Snapshot, SnapshotId, SnapshotTarget,
};

use super::content::{
    MergeReport, changed_paths, file_label, is_bookkeeping, managed_root, normalized,
    preserve_merge, read_opt, tree_of, write_content,
};
use super::selective;
use super::target::{find_deployment, names};
use super::{OpError, OpReport, Operations, RollbackMode, RollbackTo, lock_entry};

/// One artifact a whole-target preserve rollback writes.
struct PreserveWrite {
    loc: Location,
    /// The merged content; None removes the artifact.
    content: Option<Content>,
    /// The collection artifact's name and type, for its lock entry.
    lock_entry: Option<(String, String)>,
}

impl Operations<'_> {
    /// How SkillMeat's rollback audit names our snapshot `id` (see [`selective`]).
    fn skillmeat_id_of(&self, id: SnapshotId) -> Result<String, OpError> {
        let s = self.history().snapshot_record(id)?;
        Ok(selective::skillmeat_snapshot_id(
            s.time_ms,
            s.message.as_deref(),
        ))
    }

    /// The newest snapshot of `target` taken at or before `ms`.
    fn snapshot_at(&self, target: &SnapshotTarget, ms: i64) -> Result<SnapshotId, OpError> {
        let mut cursor = None;
        loop {
            let (page, next) = self.history().snapshots(Some(target), 100, cursor)?;
            if let Some(s) = page.iter().find(|s| s.time_ms <= ms) {
                return Ok(s.id);
            }
            match next {
                Some(n) => cursor = Some(n),
                None => {
                    return Err(OpError::NotFound(format!(
                        "a snapshot of {target} at or before {}",
                        time::format(ms)
                    )));
                }
            }
        }
    }

    /// Rolls one artifact (a project's deployment, or a collection's artifact) back to a
    /// version (`v12`, a tag), its member in a snapshot (`s7`), or its version current at a
    /// time. A collection rollback also sets the lock entry and appends to SkillMeat's
    /// rollback audit; a project rollback leaves the deployment record alone (drift then
    /// says how the copy relates to it).
    ///
    /// In [`RollbackMode::Preserve`] the result is a three-way merge: base = the newest
    /// version in history whose content differs from the current content (the last state
    /// the daemon recorded before the current edits), local = the current content, remote
    /// = the target. Edits made since that version are kept, everything else returns to the
    /// target, overlapping edits get SkillMeat's markers (binary conflicts keep the current
    /// bytes) and are reported.
    ///
    /// With `paths` (relative to the artifact), only those files (or folders) are rolled
    /// back, the rest stays as it is (a `selective_rollback`, audited as SkillMeat's
    /// `selective` with its paths).
    ///
    /// # Errors
    /// Unknown artifact, version or snapshot, nothing that old, no base for preserve, a
    /// path naming nothing; otherwise see [`OpError`].
    #[allow(clippy::too_many_arguments)]
    pub fn rollback(
        &self,
        artifact: &str,
        project: Option<&Path>,
        collection_name: Option<&str>,
        to: &RollbackTo,
        mode: RollbackMode,
        paths: &[String],
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let paths = selective::normalise(paths).map_err(OpError::Invalid)?;
        if !paths.is_empty() && mode == RollbackMode::Preserve {
            return Err(OpError::Invalid(
                "--paths restores the chosen files exactly; it does not go with --mode preserve"
                    .into(),
            ));
        }
        let home = self.home().to_path_buf();
        let (loc, coll_entry) = match (project, collection_name) {
            (Some(p), None) => {
                let d = find_deployment(&home, p, artifact)?;
                (d.project_loc(), None)
            }
            (None, Some(c)) => {
                let coll = collection::read(&home, c);
                if !coll.dir.join("collection.toml").is_file() {
                    return Err(OpError::NotFound(format!("collection {c:?}")));
                }
                let a = coll
                    .artifacts
                    .iter()
                    .find(|a| names(artifact, &a.name, &a.artifact_type, &a.path))
                    .ok_or_else(|| {
                        OpError::NotFound(format!("artifact {artifact:?} in collection {c:?}"))
                    })?;
                (
                    Location::collection(c, &a.path.to_string_lossy()),
                    Some((coll.dir.clone(), a.name.clone(), a.artifact_type.clone())),
                )
            }
            _ => {
                return Err(OpError::Invalid(
                    "give either a project or a collection".into(),
                ));
            }
        };
        let h = self.history();
        let mut target_snapshot = None;
        let version = match to {
            RollbackTo::Spec(to) => match to.parse::<SnapshotId>() {
                Ok(sid) => {
                    let snap = h.snapshot_record(sid)?;
                    target_snapshot = Some((snap.time_ms, snap.message.clone()));
                    h.members(&snap)?
                        .into_iter()
                        .find(|v| v.location == loc)
                        .ok_or_else(|| OpError::NotFound(format!("{loc} in snapshot {sid}")))?
                }
                Err(()) => h.resolve_version(to)?,
            },
            RollbackTo::At(ms) => h
                .versions_of(&loc)?
                .into_iter()
                .find(|v| v.time_ms <= *ms)
                .ok_or_else(|| {
                    OpError::NotFound(format!(
                        "a version of {loc} at or before {}",
                        time::format(*ms)
                    ))
                })?,
        };
        let to_label = match to {
            RollbackTo::Spec(s) => s.clone(),
            RollbackTo::At(_) => version.id.to_string(),
        };
        let collection_side = matches!(loc.scope, Scope::Collection(_));
        let norm = |c: Content| {
            if collection_side {
                c.deployed_copy()
            } else {
                c
            }
        };
        let target_content = norm(h.content_of(&version)?);
        let dest = loc.on_disk(&home);
        let root = managed_root(&home, &loc);
        let label = loc.display_path();
        let current = read_opt(&dest, loc.variant())?;
        let mut report = OpReport {
            resolved: Some(version.id.to_string()),
            ..OpReport::default()
        };
        let mut merged_labels = Vec::new();
        let (target_ms, target_msg) =
            target_snapshot.unwrap_or_else(|| (version.time_ms, version.message.clone()));
        let target_id = selective::skillmeat_snapshot_id(target_ms, target_msg.as_deref());
        let content = match mode {
            RollbackMode::Replace if !paths.is_empty() => {
                let chosen = selective::select(current.as_ref(), &target_content, &paths)
                    .map_err(|e| OpError::Invalid(format!("{loc}: {e}")))?;
                report.changed = changed_paths(current.as_ref(), Some(&chosen))
                    .iter()
                    .map(|p| file_label(&label, p))
                    .collect();
                Some(chosen)
            }
            RollbackMode::Replace => {
                report.changed = changed_paths(current.as_ref(), Some(&target_content))
                    .iter()
                    .map(|p| file_label(&label, p))
                    .collect();
                Some(target_content)
            }
            RollbackMode::Preserve => {
                let local = current.as_ref().map(tree_of).unwrap_or_default();
                let mut base = None;
                for v in h.versions_of(&loc)? {
                    let t = tree_of(&norm(h.content_of(&v)?));
                    if current.is_none() || t != local {
                        base = Some((v.id, t));
                        break;
                    }
                }
                let (base_id, base) = base.ok_or_else(|| {
                    OpError::Precondition(format!(
                        "no recorded version of {loc} before its current content, so there \
                         are no local changes to tell apart; use --mode replace"
                    ))
                })?;
                let (c, r) = preserve_merge(&label, &base, current.as_ref(), &target_content);
                report.changed = r.changed;
                report.conflicts = r.conflicts;
                report.merged = r.merged;
                report.base = Some(base_id.to_string());
                merged_labels = r.merged_labels;
                c
            }
        };
        if dry_run {
            report.dry_run = true;
            return Ok(report);
        }
        report.merged.clear();
        let target = match &loc.scope {
            Scope::Collection(n) => SnapshotTarget::Collection(n.clone()),
            Scope::Project(p) => SnapshotTarget::Project(p.clone()),
        };
        let changed = report.changed.clone();
        let conflicted: Vec<String> = report.conflicts.iter().map(|c| c.path.clone()).collect();
        let operation = if paths.is_empty() {
            "rollback"
        } else {
            "selective_rollback"
        };
        let mut rec = OperationRecord::new(operation, vec![loc.to_string()]);
        rec.paths = paths.clone();
        let rec = self.logged(rec, |rec| {
            let snap = self.safety_snapshot(
                rec,
                target,
                Origin::Rollback,
                &format!("rollback of {label} to {to_label}"),
            )?;
            self.touch(rec, loc.clone(), snap, None)?;
            if let (Some((_, name, ty)), Scope::Collection(n)) = (&coll_entry, &loc.scope)
                && content.is_some()
            {
                let lock = Location::collection(n, lock_write::FILE_NAME);
                self.touch(rec, lock, snap, Some(lock_entry(name, ty)))?;
            }
            match &content {
                Some(c) => write_content(&self.writer, &root, &dest, c)?,
                None => {
                    self.writer.remove(&root, &dest)?;
                }
            }
            rec.files_restored = changed.clone();
            rec.files_merged = merged_labels.clone();
            rec.files_conflicted = conflicted.clone();
            if let (Some((dir, name, ty)), Scope::Collection(n)) = (&coll_entry, &loc.scope) {
                if content.is_some() {
                    self.update_lock(dir, name, ty, &dest)?;
                }
                let preserve = mode == RollbackMode::Preserve;
                let id = rollback_audit::append(
                    &self.writer,
                    &home,
                    &RollbackRecord {
                        collection_name: n.clone(),
                        source_snapshot_id: self.skillmeat_id_of(snap)?,
                        target_snapshot_id: target_id.clone(),
                        operation_type: if preserve { "intelligent" } else { "selective" }.into(),
                        files_restored: changed.clone(),
                        files_merged: merged_labels.clone(),
                        conflicts_pending: conflicted.clone(),
                        preserve_changes_enabled: preserve,
                        success: true,
                        selective_paths: Some(if paths.is_empty() {
                            vec![loc.path.clone()]
                        } else {
                            paths.iter().map(|p| format!("{}/{p}", loc.path)).collect()
                        }),
                        ..RollbackRecord::default()
                    },
                    timestamp::now_local(),
                )?;
                rec.audit_entries.push(AuditEntry {
                    collection: n.clone(),
                    id,
                });
            }
            Ok(())
        })?;
        report.record = Some(rec);
        Ok(report)
    }

    /// Replaces a whole collection or project with snapshot `to` (SkillMeat's replace
    /// mode): every artifact and bookkeeping file the snapshot holds is written back, and
    /// what it covers now but did not then is removed. A collection rollback appends to
    /// SkillMeat's rollback audit. In [`RollbackMode::Preserve`], each artifact is merged
    /// instead and local changes are kept (see `rollback_all_preserve`).
    ///
    /// # Errors
    /// `to` is not a snapshot of `target`; otherwise see [`OpError`].
    pub fn rollback_all(
        &self,
        target: &SnapshotTarget,
        to: &RollbackTo,
        mode: RollbackMode,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let h = self.history();
        let sid: SnapshotId = match to {
            RollbackTo::Spec(to) => to.parse().map_err(|()| {
                OpError::Invalid(format!(
                    "{to:?}: rolling back a whole {target} needs a snapshot id (s<N>); give an \
                     artifact to roll back to a version or tag"
                ))
            })?,
            RollbackTo::At(ms) => self.snapshot_at(target, *ms)?,
        };
        let snap = h.snapshot_record(sid)?;
        if &snap.target != target {
            return Err(OpError::Invalid(format!(
                "snapshot {sid} is of {}, not of {target}",
                snap.target
            )));
        }
        if mode == RollbackMode::Preserve {
            return self.rollback_all_preserve(target, sid, &snap, dry_run);
        }
        let home = self.home().to_path_buf();
        let then = h.members(&snap)?;
        let mut locs: BTreeSet<Location> = then.iter().map(|v| v.location.clone()).collect();
        locs.extend(h.members_on_disk(target)?.into_iter().map(|(l, _)| l));
        // Artifacts first, the files that describe them last.
        let mut order: Vec<Location> = locs
            .iter()
            .filter(|l| !is_bookkeeping(l))
            .cloned()
            .collect();
        order.extend(locs.iter().filter(|l| is_bookkeeping(l)).cloned());
        let mut changed = Vec::new();
        for loc in &order {
            let now = read_opt(&loc.on_disk(&home), loc.variant())?;
            let old = then
                .iter()
                .find(|v| &v.location == loc)
                .map(|v| h.content_of(v))
                .transpose()?;
            let label = loc.display_path();
            changed.extend(
                changed_paths(now.as_ref(), old.as_ref())
                    .iter()
                    .map(|p| file_label(&label, p)),
            );
        }
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                resolved: Some(sid.to_string()),
                ..OpReport::default()
            });
        }
        let rec = OperationRecord::new("rollback", vec![target.to_string()]);
        let rec = self.logged(rec, |rec| {
            let safety = self.safety_snapshot(
                rec,
                target.clone(),
                Origin::Rollback,
                &format!("rollback of {target} to {sid}"),
            )?;
            for loc in &order {
                self.touch(rec, loc.clone(), safety, None)?;
            }
            for loc in &order {
                let files = self.restore(loc, sid)?;
                rec.files_restored.extend(files);
            }
            if let SnapshotTarget::Collection(n) = target {
                let id = rollback_audit::append(
                    &self.writer,
                    &home,
                    &RollbackRecord {
                        collection_name: n.clone(),
                        source_snapshot_id: self.skillmeat_id_of(safety)?,
                        target_snapshot_id: self.skillmeat_id_of(sid)?,
                        operation_type: "simple".into(),
                        files_restored: rec.files_restored.clone(),
                        success: true,
                        ..RollbackRecord::default()
                    },
                    timestamp::now_local(),
                )?;
                rec.audit_entries.push(AuditEntry {
                    collection: n.clone(),
                    id,
                });
            }
            Ok(())
        })?;
        Ok(OpReport {
            changed: rec.files_restored.clone(),
            record: Some(rec),
            resolved: Some(sid.to_string()),
            ..OpReport::default()
        })
    }

    /// [`Operations::rollback_all`] in [`RollbackMode::Preserve`]: every artifact snapshot
    /// `sid` holds gets the single-artifact preserve merge, with one base for the whole
    /// target: its newest snapshot (the last state the daemon recorded of it). An artifact
    /// unchanged since then returns to the snapshot, edits made since are kept, overlapping
    /// ones marked. Artifacts the snapshot does not hold are kept; those it holds but that
    /// are gone now are restored. `collection.toml` and `.skillmeat-deployed.toml` are left
    /// as they are; in a collection, the lock entries of the artifacts written are updated
    /// and SkillMeat's rollback audit gets an `intelligent` entry.
    fn rollback_all_preserve(
        &self,
        target: &SnapshotTarget,
        sid: SnapshotId,
        snap: &Snapshot,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let h = self.history();
        let home = self.home().to_path_buf();
        let (newest, _) = h.snapshots(Some(target), 1, None)?;
        let last = match newest.first() {
            Some(s) => h.members(s)?,
            None => Vec::new(),
        };
        let coll = match target {
            SnapshotTarget::Collection(n) => Some(collection::read(&home, n)),
            SnapshotTarget::Project(_) => None,
        };
        let mut report = OpReport {
            resolved: Some(sid.to_string()),
            ..OpReport::default()
        };
        let mut merged_labels = Vec::new();
        let mut writes: Vec<PreserveWrite> = Vec::new();
        for v in h.members(snap)? {
            let loc = v.location.clone();
            if is_bookkeeping(&loc) {
                continue;
            }
            let label = loc.display_path();
            let target_content = normalized(&loc, h.content_of(&v)?);
            let current = read_opt(&loc.on_disk(&home), loc.variant())?;
            let (content, r) = match &current {
                None => {
                    let changed = changed_paths(None, Some(&target_content))
                        .iter()
                        .map(|p| file_label(&label, p))
                        .collect();
                    let r = MergeReport {
                        conflicts: Vec::new(),
                        merged: Vec::new(),
                        changed,
                        merged_labels: Vec::new(),
                    };
                    (Some(target_content), r)
                }
                Some(cur) => {
                    let base = match last.iter().find(|l| l.location == loc) {
                        Some(l) => tree_of(&normalized(&loc, h.content_of(l)?)),
                        None => Tree::default(),
                    };
                    preserve_merge(&label, &base, Some(cur), &target_content)
                }
            };
            report.conflicts.extend(r.conflicts);
            report.merged.extend(r.merged);
            merged_labels.extend(r.merged_labels);
            if r.changed.is_empty() {
                continue;
            }
            report.changed.extend(r.changed);
            let entry = coll.as_ref().and_then(|c| {
                c.artifacts
                    .iter()
                    .find(|a| a.path == Path::new(&loc.path))
                    .map(|a| (a.name.clone(), a.artifact_type.clone()))
            });
            writes.push(PreserveWrite {
                loc,
                content,
                lock_entry: entry,
            });
        }
        report.base = newest.first().map(|s| s.id.to_string());
        if dry_run {
            report.dry_run = true;
            return Ok(report);
        }
        report.merged.clear();
        let changed = report.changed.clone();
        let conflicted: Vec<String> = report.conflicts.iter().map(|c| c.path.clone()).collect();
        let rec = OperationRecord::new("rollback", vec![target.to_string()]);
        let rec = self.logged(rec, |rec| {
            let safety = self.safety_snapshot(
                rec,
                target.clone(),
                Origin::Rollback,
                &format!("rollback of {target} to {sid} keeping local changes"),
            )?;
            for w in &writes {
                self.touch(rec, w.loc.clone(), safety, None)?;
                if let (SnapshotTarget::Collection(n), Some((name, ty)), Some(_)) =
                    (target, &w.lock_entry, &w.content)
                {
                    let lock = Location::collection(n, lock_write::FILE_NAME);
                    self.touch(rec, lock, safety, Some(lock_entry(name, ty)))?;
                }
            }
            for w in &writes {
                let root = managed_root(&home, &w.loc);
                let dest = w.loc.on_disk(&home);
                match &w.content {
                    Some(c) => write_content(&self.writer, &root, &dest, c)?,
                    None => {
                        self.writer.remove(&root, &dest)?;
                    }
                }
                if let (Some(c), Some((name, ty)), Some(_)) = (&coll, &w.lock_entry, &w.content) {
                    self.update_lock(&c.dir, name, ty, &dest)?;
                }
            }
            rec.files_restored = changed.clone();
            rec.files_merged = merged_labels.clone();
            rec.files_conflicted = conflicted.clone();
            if let SnapshotTarget::Collection(n) = target {
                let id = rollback_audit::append(
                    &self.writer,
                    &home,
                    &RollbackRecord {
                        collection_name: n.clone(),
                        source_snapshot_id: self.skillmeat_id_of(safety)?,
                        target_snapshot_id: self.skillmeat_id_of(sid)?,
                        operation_type: "intelligent".into(),
                        files_restored: changed.clone(),
                        files_merged: merged_labels.clone(),
                        conflicts_pending: conflicted.clone(),
                        preserve_changes_enabled: true,
                        success: true,
                        ..RollbackRecord::default()
                    },
                    timestamp::now_local(),
                )?;
                rec.audit_entries.push(AuditEntry {
                    collection: n.clone(),
                    id,
                });
            }
            Ok(())
        })?;
        report.record = Some(rec);
        Ok(report)
    }
}

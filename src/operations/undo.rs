//! `undo`: put back exactly what one operation changed, from its safety snapshots.
//!
//! The rule (also in the README):
//! - plain `undo` takes the newest operation whose writes are in place (succeeded, left
//!   conflicts, or was interrupted after its last write) and is not undone yet; never one
//!   that failed or was put back, nor an undo (`undo N` of an undo redoes);
//! - `undo N` refuses, naming them, when later operations changed what N changed (the same
//!   artifact, the same record of a bookkeeping file, or a whole file N edited): undo
//!   those first, newest first. Operations undone since do not count;
//! - what N changed is put back as N changed it: an artifact whole, a deployment record or
//!   a `collection.lock` entry as that one record (every other record stays as it is now),
//!   a whole file a whole-collection rollback rewrote as that file, and the entries N
//!   appended to SkillMeat's rollback audit are removed.
//!
//! An undo is itself an operation with its own safety snapshots, so it can be undone too
//! (which does not bring removed rollback-audit entries back).

use std::collections::{BTreeMap, BTreeSet};

use crate::formats::deployment_write::{self, RecordKey};
use crate::formats::{lock_write, rollback_audit};
use crate::model::{
    Location, OperationRecord, OperationStatus, Origin, RecordRef, Scope, SnapshotId,
    SnapshotTarget, Touched,
};

use super::content::{changed_paths, file_label, managed_root, read_opt, write_content};
use super::{OpError, OpReport, Operations};

/// Which operations are undone: an operation is undone by the newest undo of it that took
/// effect and is not undone itself.
struct UndoneBy(BTreeMap<u64, u64>);

impl UndoneBy {
    fn new(all: &[OperationRecord]) -> UndoneBy {
        let mut by = BTreeMap::new();
        // Newest first: whether an undo is undone itself is known before it is reached,
        // since only newer operations can undo it.
        let mut ops: Vec<&OperationRecord> = all.iter().collect();
        ops.sort_by_key(|o| std::cmp::Reverse(o.id));
        for o in ops {
            if let Some(t) = o.undoes
                && o.took_effect()
                && !by.contains_key(&o.id)
            {
                by.entry(t).or_insert(o.id);
            }
        }
        UndoneBy(by)
    }

    /// The undo that undid `id`, if it is undone.
    fn undone_by(&self, id: u64) -> Option<u64> {
        self.0.get(&id).copied()
    }

    /// Whether `o`'s writes are in place now: it took effect and is not undone.
    fn live(&self, o: &OperationRecord) -> bool {
        o.took_effect() && self.undone_by(o.id).is_none()
    }
}

/// The old bytes of the file at `loc` in snapshot `snap` (None: it did not exist then).
fn bytes_then(
    ops: &Operations<'_>,
    loc: &Location,
    snap: SnapshotId,
) -> Result<Option<Vec<u8>>, OpError> {
    let h = ops.history();
    let version = h
        .members(&h.snapshot_record(snap)?)?
        .into_iter()
        .find(|v| &v.location == loc);
    Ok(match version {
        Some(v) => h.content_of(&v)?.files.into_iter().next().map(|f| f.bytes),
        None => None,
    })
}

/// How a record is named in reports: `.claude/.skillmeat-deployed.toml [canvas]`.
fn record_label(loc: &Location, r: &RecordRef) -> String {
    let name = match r {
        RecordRef::Deployment { name, .. } => name.clone(),
        RecordRef::LockEntry {
            name,
            artifact_type,
        } => format!("{name}::{artifact_type}"),
    };
    format!("{} [{name}]", loc.display_path())
}

impl Operations<'_> {
    /// Writes back what `loc` was in snapshot `snap` (removing it if it was absent).
    pub(super) fn restore(&self, loc: &Location, snap: SnapshotId) -> Result<Vec<String>, OpError> {
        let h = self.history();
        let record = h.snapshot_record(snap)?;
        let version = h.members(&record)?.into_iter().find(|v| &v.location == loc);
        let root = managed_root(self.home(), loc);
        let dest = loc.on_disk(self.home());
        let before = read_opt(&dest, loc.variant())?;
        let label = loc.display_path();
        match version {
            Some(v) => {
                let content = h.content_of(&v)?;
                let changed = changed_paths(before.as_ref(), Some(&content));
                if !changed.is_empty() || before.is_none() {
                    write_content(&self.writer, &root, &dest, &content)?;
                }
                Ok(changed.iter().map(|p| file_label(&label, p)).collect())
            }
            None => {
                self.writer.remove(&root, &dest)?;
                Ok(changed_paths(before.as_ref(), None)
                    .iter()
                    .map(|p| file_label(&label, p))
                    .collect())
            }
        }
    }

    /// Puts back the one record `r` of the bookkeeping file at `loc` as it was in `snap`;
    /// with `dry_run` only says whether it would change.
    fn restore_record(
        &self,
        loc: &Location,
        r: &RecordRef,
        snap: SnapshotId,
        dry_run: bool,
    ) -> Result<Vec<String>, OpError> {
        let then = bytes_then(self, loc, snap)?;
        let path = loc.on_disk(self.home());
        let changed = match (r, &loc.scope) {
            (
                RecordRef::Deployment {
                    name,
                    artifact_type,
                    profile_id,
                },
                Scope::Project(project),
            ) => {
                let key = RecordKey {
                    name,
                    artifact_type,
                    profile_id: profile_id.as_deref(),
                };
                if dry_run {
                    let now = std::fs::read(&path).ok();
                    let new = deployment_write::restore_record_bytes(
                        &path,
                        now.as_deref(),
                        then.as_deref(),
                        key,
                    )?;
                    now.as_deref() != Some(new.as_bytes())
                } else {
                    deployment_write::restore_record(
                        &self.writer,
                        project,
                        &loc.root,
                        key,
                        then.as_deref(),
                    )?
                }
            }
            (
                RecordRef::LockEntry {
                    name,
                    artifact_type,
                },
                Scope::Collection(_),
            ) => {
                if dry_run {
                    let now = std::fs::read(&path).ok();
                    let new = lock_write::restore_entry_bytes(
                        &path,
                        now.as_deref(),
                        then.as_deref(),
                        name,
                        artifact_type,
                    )?;
                    now.as_deref() != Some(new.as_bytes())
                } else {
                    let dir = managed_root(self.home(), loc);
                    lock_write::restore_entry(
                        &self.writer,
                        &dir,
                        name,
                        artifact_type,
                        then.as_deref(),
                    )?
                }
            }
            _ => {
                return Err(OpError::Invalid(format!(
                    "{loc}: the operations log names a record this file cannot hold"
                )));
            }
        };
        Ok(if changed {
            vec![record_label(loc, r)]
        } else {
            Vec::new()
        })
    }

    /// What putting back `t` would change, without writing.
    fn preview(&self, t: &Touched) -> Result<Vec<String>, OpError> {
        if let Some(r) = &t.record {
            return self.restore_record(&t.location, r, t.snapshot, true);
        }
        let h = self.history();
        let v = h
            .members(&h.snapshot_record(t.snapshot)?)?
            .into_iter()
            .find(|v| v.location == t.location);
        let now = read_opt(&t.location.on_disk(self.home()), t.location.variant())?;
        let then = v.map(|v| h.content_of(&v)).transpose()?;
        let label = t.location.display_path();
        Ok(changed_paths(now.as_ref(), then.as_ref())
            .iter()
            .map(|p| file_label(&label, p))
            .collect())
    }

    /// Picks the operation to undo (see the module doc) and checks it may be undone alone.
    fn undo_target(&self, id: Option<u64>) -> Result<OperationRecord, OpError> {
        let all = self.engine.store().all_operations()?;
        let undone = UndoneBy::new(&all);
        let target = match id {
            Some(id) => all
                .iter()
                .find(|o| o.id == id)
                .ok_or_else(|| OpError::NotFound(format!("operation {id}")))?,
            None => all
                .iter()
                .rev()
                .find(|o| o.operation != "undo" && !o.touched.is_empty() && undone.live(o))
                .ok_or_else(|| OpError::Precondition("no operation to undo".into()))?,
        };
        let n = target.id;
        if !target.took_effect() {
            let why = match target.status() {
                OperationStatus::Running => "is still running".to_string(),
                OperationStatus::Interrupted => {
                    "was interrupted, and what it had written was put back at the next start"
                        .to_string()
                }
                _ => "failed, and what it had written was put back".to_string(),
            };
            return Err(OpError::Precondition(format!(
                "operation {n} {why}: nothing to undo"
            )));
        }
        if target.touched.is_empty() {
            return Err(OpError::Precondition(format!(
                "operation {n} changed nothing; nothing to undo"
            )));
        }
        if let Some(by) = undone.undone_by(n) {
            return Err(OpError::Precondition(format!(
                "operation {n} was already undone by operation {by}"
            )));
        }
        // Later operations whose writes are in place and overlap N's. An undo of an
        // operation newer than N only cancels that operation, so it does not count.
        let later: Vec<u64> = all
            .iter()
            .filter(|o| o.id > n && undone.live(o))
            .filter(|o| o.undoes.is_none_or(|u| u < n))
            .filter(|o| {
                o.touched
                    .iter()
                    .any(|t| target.touched.iter().any(|mine| mine.overlaps(t)))
            })
            .map(|o| o.id)
            .collect();
        if !later.is_empty() {
            let list: Vec<String> = later.iter().map(u64::to_string).collect();
            let first = later.last().expect("not empty");
            return Err(OpError::Precondition(format!(
                "operation {n} cannot be undone on its own: later operation(s) {} changed the \
                 same files since; undo those first, newest first (`smctl undo {first}`)",
                list.join(", ")
            )));
        }
        Ok(target.clone())
    }

    /// Puts back what operation `id` (default: see the module doc) changed, from its
    /// safety snapshots. Itself an operation, with its own safety snapshots, so it can be
    /// undone too.
    ///
    /// # Errors
    /// No such operation, nothing to undo, later operations changed the same files;
    /// otherwise see [`OpError`].
    pub fn undo(&self, id: Option<u64>, dry_run: bool) -> Result<OpReport, OpError> {
        let target = self.undo_target(id)?;
        let mut targets: Vec<SnapshotTarget> = Vec::new();
        for t in &target.touched {
            let st = self.history().snapshot_record(t.snapshot)?.target;
            if !targets.contains(&st) {
                targets.push(st);
            }
        }
        let audit_labels: Vec<String> = target
            .audit_entries
            .iter()
            .map(|a| format!("rollback audit of {} [{}]", a.collection, a.id))
            .collect();
        if dry_run {
            let mut changed = Vec::new();
            for t in &target.touched {
                changed.extend(self.preview(t)?);
            }
            changed.extend(audit_labels);
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let mut rec = OperationRecord::new("undo", target.targets.clone());
        rec.undoes = Some(target.id);
        let rec = self.logged(rec, |rec| {
            let mut snaps = BTreeMap::new();
            for st in &targets {
                let s = self.safety_snapshot(
                    rec,
                    st.clone(),
                    Origin::Rollback,
                    &format!("undo of operation {}", target.id),
                )?;
                snaps.insert(st.clone(), s);
            }
            let mut seen = BTreeSet::new();
            for t in &target.touched {
                let st = self.history().snapshot_record(t.snapshot)?.target;
                if seen.insert((t.location.clone(), t.record.clone())) {
                    self.touch(rec, t.location.clone(), snaps[&st], t.record.clone())?;
                }
            }
            for t in &target.touched {
                let files = match &t.record {
                    Some(r) => self.restore_record(&t.location, r, t.snapshot, false)?,
                    None => self.restore(&t.location, t.snapshot)?,
                };
                rec.files_restored.extend(files);
            }
            for (a, label) in target.audit_entries.iter().zip(&audit_labels) {
                if rollback_audit::remove_entry(&self.writer, self.home(), &a.collection, &a.id)? {
                    rec.files_restored.push(label.clone());
                }
            }
            Ok(())
        })?;
        Ok(OpReport {
            changed: rec.files_restored.clone(),
            record: Some(rec),
            ..OpReport::default()
        })
    }
}

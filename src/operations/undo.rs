//! `undo`: put back what an operation touched, from its safety snapshots.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Location, OperationRecord, Origin, SnapshotId, SnapshotTarget};

use super::content::{changed_paths, file_label, managed_root, read_opt, write_content};
use super::{OpError, OpReport, Operations};

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

    /// Restores what operation `id` (default: the last one that changed something and was
    /// not undone yet) touched, from its safety snapshots. Itself an operation, with its
    /// own safety snapshots, so it can be undone too.
    ///
    /// # Errors
    /// No such operation, nothing to undo; otherwise see [`OpError`].
    pub fn undo(&self, id: Option<u64>, dry_run: bool) -> Result<OpReport, OpError> {
        let store = self.engine.store();
        let all = store.all_operations()?;
        let undone: BTreeSet<u64> = all
            .iter()
            .filter(|o| o.success)
            .filter_map(|o| o.undoes)
            .collect();
        let target = match id {
            Some(id) => store
                .operation(id)?
                .ok_or_else(|| OpError::NotFound(format!("operation {id}")))?,
            None => all
                .iter()
                .rev()
                .find(|o| o.operation != "undo" && !o.touched.is_empty() && !undone.contains(&o.id))
                .cloned()
                .ok_or_else(|| OpError::Precondition("no operation to undo".into()))?,
        };
        if target.touched.is_empty() {
            return Err(OpError::Precondition(format!(
                "operation {} changed nothing; nothing to undo",
                target.id
            )));
        }
        let mut targets: Vec<SnapshotTarget> = Vec::new();
        for t in &target.touched {
            let st = self.history().snapshot_record(t.snapshot)?.target;
            if !targets.contains(&st) {
                targets.push(st);
            }
        }
        if dry_run {
            let mut changed = Vec::new();
            for t in &target.touched {
                let h = self.history();
                let v = h
                    .members(&h.snapshot_record(t.snapshot)?)?
                    .into_iter()
                    .find(|v| v.location == t.location);
                let now = read_opt(&t.location.on_disk(self.home()), t.location.variant())?;
                let then = v.map(|v| h.content_of(&v)).transpose()?;
                let label = t.location.display_path();
                changed.extend(
                    changed_paths(now.as_ref(), then.as_ref())
                        .iter()
                        .map(|p| file_label(&label, p)),
                );
            }
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
            for t in &target.touched {
                let st = self.history().snapshot_record(t.snapshot)?.target;
                self.touch(rec, t.location.clone(), snaps[&st]);
            }
            for t in &target.touched {
                let files = self.restore(&t.location, t.snapshot)?;
                rec.files_restored.extend(files);
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

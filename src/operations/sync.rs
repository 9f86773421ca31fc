//! `sync pull` (collection → project, a redeploy) and `sync push` (project → collection).

use std::path::Path;

use crate::formats::lock_write;
use crate::hash::{self, Variant};
use crate::history::content::Content;
use crate::model::{Location, OperationRecord, Origin, SnapshotTarget};

use super::content::{changed_paths, file_label, read_opt, write_content};
use super::target::{Deployed, find_deployment};
use super::{OpError, OpReport, Operations, lock_entry};

impl Operations<'_> {
    /// Collection → project: replaces the project copy with the collection's (as a deploy
    /// copies it) and records the new copy's hash in the deployment.
    ///
    /// # Errors
    /// See [`OpError`]; files are as they were unless the error says otherwise.
    pub fn sync_pull(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let incoming = read_opt(&d.collection_path(), Variant::DeployedCopy)?.ok_or_else(|| {
            OpError::NotFound(format!("collection copy {}", d.collection_path().display()))
        })?;
        let current = read_opt(&d.project_path(), Variant::Legacy)?;
        let label = d.project_loc().display_path();
        let changed: Vec<String> = changed_paths(current.as_ref(), Some(&incoming))
            .iter()
            .map(|p| file_label(&label, p))
            .collect();
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let from = self.head(&d.collection_loc(), &d.collection_path());
        let rec = OperationRecord::new("sync_pull", vec![d.project_loc().to_string()]);
        let rec = self.logged(rec, |rec| self.pull_into(rec, &d, &incoming, &changed))?;
        self.record_made(
            &rec,
            &d.project_loc(),
            &d.project_path(),
            Origin::Sync,
            from.as_ref(),
        );
        Ok(OpReport {
            record: Some(rec),
            changed,
            ..OpReport::default()
        })
    }

    /// The writes of a pull inside operation `rec`: a safety snapshot of the project, the
    /// collection's content `incoming` over the project copy, the record's new hash.
    pub(super) fn pull_into(
        &self,
        rec: &mut OperationRecord,
        d: &Deployed,
        incoming: &Content,
        changed: &[String],
    ) -> Result<(), OpError> {
        let label = d.project_loc().display_path();
        self.snapshot_deployment(rec, d, Origin::Sync, &format!("sync pull {label}"), true)?;
        write_content(&self.writer, &d.managed(), &d.project_path(), incoming)?;
        rec.files_restored.extend_from_slice(changed);
        let h = hash::content_hash(&d.project_path(), Variant::Legacy)?;
        self.update_deployment(d, h)
    }

    /// Project → collection: replaces the collection copy with the project's, then sets the
    /// lock entry and the deployment record so both sides agree.
    ///
    /// # Errors
    /// See [`OpError`].
    pub fn sync_push(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let incoming = read_opt(&d.project_path(), Variant::Legacy)?
            .ok_or_else(|| {
                OpError::NotFound(format!("project copy {}", d.project_path().display()))
            })?
            .deployed_copy();
        let current = read_opt(&d.collection_path(), Variant::DeployedCopy)?;
        let label = d.collection_loc().display_path();
        let changed: Vec<String> = changed_paths(current.as_ref(), Some(&incoming))
            .iter()
            .map(|p| file_label(&label, p))
            .collect();
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let from = self.head(&d.project_loc(), &d.project_path());
        let coll = d.record.from_collection.clone();
        let rec = OperationRecord::new(
            "sync_push",
            vec![d.collection_loc().to_string(), d.project_loc().to_string()],
        );
        let rec = self.logged(rec, |rec| {
            let what = format!("sync push {}", d.project_loc().display_path());
            let cs = self.safety_snapshot(
                rec,
                SnapshotTarget::Collection(coll.clone()),
                Origin::Sync,
                &what,
            )?;
            let ps = self.safety_snapshot(
                rec,
                SnapshotTarget::Project(d.project.clone()),
                Origin::Sync,
                &what,
            )?;
            self.touch(rec, d.collection_loc(), cs, None)?;
            self.touch(
                rec,
                Location::collection(&coll, lock_write::FILE_NAME),
                cs,
                Some(lock_entry(&d.record.artifact_name, &d.record.artifact_type)),
            )?;
            self.touch(rec, d.deployment_file_loc(), ps, Some(d.record_ref()))?;
            write_content(
                &self.writer,
                &d.collection_dir,
                &d.collection_path(),
                &incoming,
            )?;
            rec.files_restored = changed.clone();
            self.update_lock(
                &d.collection_dir,
                &d.record.artifact_name,
                &d.record.artifact_type,
                &d.collection_path(),
            )?;
            let h = hash::content_hash(&d.project_path(), Variant::Legacy)?;
            self.update_deployment(&d, h)
        })?;
        self.record_made(
            &rec,
            &d.collection_loc(),
            &d.collection_path(),
            Origin::Sync,
            from.as_ref(),
        );
        Ok(OpReport {
            record: Some(rec),
            changed,
            ..OpReport::default()
        })
    }
}

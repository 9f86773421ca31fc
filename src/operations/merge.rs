//! `merge`: the three-way merge of a deployment's project copy with its collection copy, on
//! the base history recorded for the deployment.

use std::path::Path;

use crate::hash::Variant;
use crate::merge::{self, Resolution};
use crate::model::{OperationRecord, OperationStatus, Origin, Version};

use super::content::{MergeReport, merged_content, read_opt, report_merge, tree_of, write_content};
use super::target::{Deployed, find_deployment};
use super::{OpError, OpReport, Operations};

impl Operations<'_> {
    /// The deployment's base version: a version whose hash is the record's `content_hash`,
    /// preferably at the project copy, then at the collection copy, then anywhere.
    fn base_of(&self, d: &Deployed) -> Result<Option<Version>, OpError> {
        let h = self.history();
        for loc in [Some(d.project_loc()), Some(d.collection_loc()), None] {
            if let Some(v) = h
                .find_by_hash(loc.as_ref(), &d.record.content_hash)?
                .into_iter()
                .next()
            {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Three-way merge into the project copy: base = the deployment's recorded content
    /// (from history), local = the project copy, remote = the collection copy.
    ///
    /// # Errors
    /// [`OpError::Precondition`] when history has no version with the deployment's hash;
    /// otherwise see [`OpError`].
    pub fn merge(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
        resolution: Resolution,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let base_v = self.base_of(&d)?.ok_or_else(|| {
            OpError::Precondition(format!(
                "no known base for {}: history has no version with the deployment's hash {}; \
                 compare the two copies with `smctl diff collection project --artifact {artifact} --project {}` \
                 and use `smctl sync pull` or `smctl sync push`",
                d.project_loc(),
                d.record.content_hash,
                d.project.display()
            ))
        })?;
        let base = tree_of(&self.history().content_of(&base_v)?);
        let local_c = read_opt(&d.project_path(), Variant::Legacy)?;
        let remote_c = read_opt(&d.collection_path(), Variant::DeployedCopy)?;
        let local = local_c.as_ref().map(tree_of).unwrap_or_default();
        let remote = remote_c.as_ref().map(tree_of).unwrap_or_default();
        let m = merge::merge_trees(&base, &local, &remote, resolution);
        let label = d.project_loc().display_path();
        let MergeReport {
            conflicts,
            merged: merged_files,
            changed,
            merged_labels,
        } = report_merge(&label, &m, &local, "collection");
        let base_name = Some(base_v.id.to_string());
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                conflicts,
                merged: merged_files,
                base: base_name,
                ..OpReport::default()
            });
        }
        let result = merged_content(&m, local_c.as_ref(), remote_c.as_ref());
        let unresolved = m.has_unresolved();
        let unresolved_paths: Vec<String> = conflicts
            .iter()
            .filter(|c| c.resolved.is_none())
            .map(|c| c.path.clone())
            .collect();
        let rec = OperationRecord::new("merge", vec![d.project_loc().to_string()]);
        let updates_record = !unresolved && remote_c.is_some();
        let rec = self.logged(rec, |rec| {
            let what = format!("merge {label}");
            self.snapshot_deployment(rec, &d, Origin::Merge, &what, updates_record)?;
            rec.files_merged = merged_labels.clone();
            rec.files_conflicted = conflicts.iter().map(|c| c.path.clone()).collect();
            if !changed.is_empty() {
                write_content(&self.writer, &d.managed(), &d.project_path(), &result)?;
            }
            if updates_record && let Some(remote) = &remote_c {
                self.update_deployment(&d, remote.hash())?;
            }
            if unresolved {
                // Written with markers for the user to resolve: done, but not a success.
                rec.status = Some(OperationStatus::Conflicted);
                rec.error = Some(format!(
                    "{} file(s) left in conflict, to resolve by hand: {}",
                    unresolved_paths.len(),
                    unresolved_paths.join(", ")
                ));
            }
            Ok(())
        })?;
        Ok(OpReport {
            record: Some(rec),
            changed,
            conflicts,
            base: base_name,
            ..OpReport::default()
        })
    }
}

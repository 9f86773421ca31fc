//! `merge`: brings the collection copy's changes into a deployment's project copy, on a
//! base found in the version graph; `merge --continue`: records a merge whose conflicts the
//! user resolved by hand.
//!
//! The plan ([`Operations::merge_plan`]) compares the version the project holds now with
//! the one the collection holds:
//! - the same content, or the collection's version already part of the project's history
//!   (an ancestor), or the collection unchanged since the base → nothing to merge;
//! - the project's version an ancestor of the collection's, or the project unchanged since
//!   the base → fast-forward: the collection's content is copied (no markers, no merge
//!   version; the new project version has the collection's as second parent);
//! - otherwise a three-way merge on the nearest common ancestor ([`Graph::merge_base`]);
//!   when the graph links none (history older than the graph), the version whose hash
//!   is the deployment record's `content_hash`.
//!
//! A clean merge records the result as a version with two parents: the project's previous
//! version and the collection version merged in, so the next merge starts from there and
//! never raises the same conflicts again. A merge left with conflicts records which version
//! it merged in; once the user resolved the markers, `merge --continue` records the merge
//! version (and the deployment's new base) the clean merge would have.
//!
//! [`Graph::merge_base`]: crate::history::graph::Graph::merge_base

use std::path::Path;

use crate::hash::Variant;
use crate::merge::text::{MARKER_LOCAL, MARKER_REMOTE};
use crate::merge::{self, Resolution};
use crate::model::{OperationRecord, OperationStatus, Origin, Version};

use super::content::{
    changed_paths, file_label, merged_content, read_opt, report_merge, tree_of, write_content,
};
use super::target::{Deployed, find_deployment};
use super::{Conflict, MergedFile, OpError, OpReport, Operations};
use crate::history::content::Content;

/// What a merge will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    UpToDate,
    FastForward,
    ThreeWay,
}

/// The merge's plan: what to do, from which base, and why.
struct Plan {
    kind: Kind,
    base: Option<Version>,
    /// The collection version merged in.
    incoming: Option<Version>,
    reason: String,
}

/// A merge worked out in memory, ready to write.
pub(super) struct PreparedMerge {
    pub(super) kind: Kind,
    pub(super) base: Option<String>,
    pub(super) reason: String,
    pub(super) incoming: Option<Version>,
    /// What to write over the project copy; `None` when nothing changes.
    pub(super) result: Option<Content>,
    /// The deployment record's new hash, when no conflict is left.
    pub(super) record_hash: Option<String>,
    pub(super) changed: Vec<String>,
    pub(super) conflicts: Vec<Conflict>,
    pub(super) merged: Vec<MergedFile>,
    pub(super) merged_labels: Vec<String>,
    /// Files left with conflicts to resolve by hand.
    pub(super) unresolved: Vec<String>,
}

impl PreparedMerge {
    fn report(&self, dry_run: bool, record: Option<OperationRecord>) -> OpReport {
        OpReport {
            record,
            dry_run,
            changed: self.changed.clone(),
            conflicts: self.conflicts.clone(),
            merged: if dry_run {
                self.merged.clone()
            } else {
                Vec::new()
            },
            base: self.base.clone(),
            base_reason: Some(self.reason.clone()),
            ..OpReport::default()
        }
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

impl Operations<'_> {
    /// The version with the deployment's recorded hash, preferably at the project copy,
    /// then at the collection copy, then anywhere.
    fn recorded_base(&self, d: &Deployed) -> Result<Option<Version>, OpError> {
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

    /// Decides how to merge `d` (see the module doc).
    fn merge_plan(&self, d: &Deployed) -> Result<Plan, OpError> {
        let local = self.head(&d.project_loc(), &d.project_path());
        let incoming = self.head(&d.collection_loc(), &d.collection_path());
        if let (Some(l), Some(r)) = (&local, &incoming) {
            let plan = |kind, base: Option<&Version>, reason: String| Plan {
                kind,
                base: base.cloned(),
                incoming: Some(r.clone()),
                reason,
            };
            if l.content_hash == r.content_hash {
                let why = format!(
                    "nothing to merge: the project's {} and the collection's {} hold the same content",
                    l.id, r.id
                );
                return Ok(plan(Kind::UpToDate, Some(r), why));
            }
            let graph = self.history().graph()?;
            if graph.is_ancestor(r.id, l.id) {
                let why = format!(
                    "nothing to merge: the collection's {} is already part of the project's {}",
                    r.id, l.id
                );
                return Ok(plan(Kind::UpToDate, Some(r), why));
            }
            if graph.is_ancestor(l.id, r.id) {
                let why = format!(
                    "fast-forward: the project's {} is an ancestor of the collection's {}",
                    l.id, r.id
                );
                return Ok(plan(Kind::FastForward, Some(l), why));
            }
            if let Some(b) = graph.merge_base(l.id, r.id) {
                let b = self.history().version(b)?;
                let nearest = format!(
                    "{}, the nearest common ancestor of the project's {} and the collection's {}",
                    b.id, l.id, r.id
                );
                if b.content_hash == r.content_hash {
                    let why =
                        format!("nothing to merge: the collection is unchanged since {nearest}");
                    return Ok(plan(Kind::UpToDate, Some(&b), why));
                }
                if b.content_hash == l.content_hash {
                    let why = format!("fast-forward: the project is unchanged since {nearest}");
                    return Ok(plan(Kind::FastForward, Some(&b), why));
                }
                return Ok(plan(Kind::ThreeWay, Some(&b), format!("base {nearest}")));
            }
        }
        let base = self.recorded_base(d)?.ok_or_else(|| {
            OpError::Precondition(format!(
                "no known base for {}: the version graph links no common ancestor and history has \
                 no version with the deployment's hash {}; compare the two copies with \
                 `smctl diff collection project --artifact {} --project {}` and use \
                 `smctl sync pull` or `smctl sync push`",
                d.project_loc(),
                d.record.content_hash,
                d.record.artifact_name,
                d.project.display()
            ))
        })?;
        let reason = format!(
            "base {}, the version with the deployment's recorded hash {} (the version graph \
             links no common ancestor of the two copies)",
            base.id,
            short(&d.record.content_hash)
        );
        Ok(Plan {
            kind: Kind::ThreeWay,
            base: Some(base),
            incoming,
            reason,
        })
    }

    /// Merges the collection copy into the project copy (LOCAL = project, REMOTE =
    /// collection) as planned by the version graph; `resolution` settles conflicts
    /// (`--strategy`).
    ///
    /// # Errors
    /// [`OpError::Precondition`] when no base is known; otherwise see [`OpError`].
    pub fn merge(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
        resolution: Resolution,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let m = self.prepare_merge(&d, resolution)?;
        if dry_run || m.kind == Kind::UpToDate {
            return Ok(m.report(dry_run, None));
        }
        let mut rec = OperationRecord::new("merge", vec![d.project_loc().to_string()]);
        rec.merged_from = m.incoming.as_ref().map(|v| v.id);
        let rec = self.logged(rec, |rec| {
            self.apply_merge(rec, &d, &m)?;
            if !m.unresolved.is_empty() {
                // Written with markers for the user to resolve: done, but not a success.
                rec.status = Some(OperationStatus::Conflicted);
                rec.error = Some(format!(
                    "{} file(s) left in conflict, to resolve by hand, then record the merge \
                     with `smctl merge --continue`: {}",
                    m.unresolved.len(),
                    m.unresolved.join(", ")
                ));
            }
            Ok(())
        })?;
        self.after_merge(&rec, &d, &m);
        Ok(m.report(false, Some(rec)))
    }

    /// Works out the merge of `d` in memory: the plan, the merged content and its report.
    pub(super) fn prepare_merge(
        &self,
        d: &Deployed,
        resolution: Resolution,
    ) -> Result<PreparedMerge, OpError> {
        let plan = self.merge_plan(d)?;
        let mut m = PreparedMerge {
            kind: plan.kind,
            base: plan.base.as_ref().map(|b| b.id.to_string()),
            reason: plan.reason,
            incoming: plan.incoming,
            result: None,
            record_hash: None,
            changed: Vec::new(),
            conflicts: Vec::new(),
            merged: Vec::new(),
            merged_labels: Vec::new(),
            unresolved: Vec::new(),
        };
        let label = d.project_loc().display_path();
        let local_c = read_opt(&d.project_path(), Variant::Legacy)?;
        let remote_c = read_opt(&d.collection_path(), Variant::DeployedCopy)?;
        match plan.kind {
            Kind::UpToDate => {}
            Kind::FastForward => {
                let incoming = remote_c.ok_or_else(|| {
                    OpError::NotFound(format!("collection copy {}", d.collection_path().display()))
                })?;
                m.changed = changed_paths(local_c.as_ref(), Some(&incoming))
                    .iter()
                    .map(|p| file_label(&label, p))
                    .collect();
                m.record_hash = Some(incoming.hash());
                m.result = Some(incoming);
            }
            Kind::ThreeWay => {
                let base_v = plan.base.as_ref().expect("a three-way plan has a base");
                let base = tree_of(&self.history().content_of(base_v)?);
                let local = local_c.as_ref().map(tree_of).unwrap_or_default();
                let remote = remote_c.as_ref().map(tree_of).unwrap_or_default();
                let tm = merge::merge_trees(&base, &local, &remote, resolution);
                let r = report_merge(&label, &tm, &local, "collection");
                m.unresolved = r
                    .conflicts
                    .iter()
                    .filter(|c| c.resolved.is_none())
                    .map(|c| c.path.clone())
                    .collect();
                if !tm.has_unresolved() {
                    m.record_hash = remote_c.as_ref().map(Content::hash);
                }
                if !r.changed.is_empty() {
                    m.result = Some(merged_content(&tm, local_c.as_ref(), remote_c.as_ref()));
                }
                (m.changed, m.conflicts, m.merged, m.merged_labels) =
                    (r.changed, r.conflicts, r.merged, r.merged_labels);
            }
        }
        Ok(m)
    }

    /// The writes of merge `m` inside operation `rec`: a safety snapshot of the project,
    /// the merged content, and (no conflict left) the record's new base.
    pub(super) fn apply_merge(
        &self,
        rec: &mut OperationRecord,
        d: &Deployed,
        m: &PreparedMerge,
    ) -> Result<(), OpError> {
        let label = d.project_loc().display_path();
        let what = format!("merge {label}");
        let updates_record = m.record_hash.is_some();
        self.snapshot_deployment(rec, d, Origin::Merge, &what, updates_record)?;
        if m.kind == Kind::FastForward {
            rec.files_restored.extend(m.changed.iter().cloned());
        }
        rec.files_merged.extend(m.merged_labels.iter().cloned());
        rec.files_conflicted
            .extend(m.conflicts.iter().map(|c| c.path.clone()));
        if let Some(result) = &m.result {
            write_content(&self.writer, &d.managed(), &d.project_path(), result)?;
        }
        if let Some(h) = &m.record_hash {
            self.update_deployment(d, h.clone())?;
        }
        Ok(())
    }

    /// After merge `m` was written: a clean merge becomes a version with the collection's
    /// as second parent (a fast-forward: origin `sync`).
    pub(super) fn after_merge(&self, rec: &OperationRecord, d: &Deployed, m: &PreparedMerge) {
        let origin = match m.kind {
            Kind::UpToDate => return,
            Kind::FastForward => Origin::Sync,
            Kind::ThreeWay => Origin::Merge,
        };
        if m.unresolved.is_empty() {
            self.record_made(
                rec,
                &d.project_loc(),
                &d.project_path(),
                origin,
                m.incoming.as_ref(),
            );
        }
    }

    /// Records the merge of `artifact` left with conflicts, now resolved by hand: the
    /// project's content becomes a merge version whose second parent is the version that
    /// merge brought in, and the deployment record takes that version's hash.
    ///
    /// # Errors
    /// [`OpError::Precondition`] when conflict markers are left, or no merge of this
    /// deployment is waiting (its last merge was clean, or already continued).
    pub fn merge_continue(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let target = d.project_loc().to_string();
        let last = self
            .engine
            .store()
            .all_operations()?
            .into_iter()
            .filter(|o| {
                matches!(
                    o.operation.as_str(),
                    "merge" | "merge_continue" | "propagate"
                ) && o.targets.contains(&target)
                    && o.took_effect()
            })
            .max_by_key(|o| o.id);
        let waiting = last
            .filter(|o| {
                o.operation != "merge_continue" && o.status() == OperationStatus::Conflicted
            })
            .and_then(|o| o.merged_from.map(|v| (o.id, v)));
        let Some((merge_id, from)) = waiting else {
            return Err(OpError::Precondition(format!(
                "no merge of {target} is waiting to be continued: its last merge left no \
                 conflicts, was continued already, or was undone"
            )));
        };
        let label = d.project_loc().display_path();
        let current = read_opt(&d.project_path(), Variant::Legacy)?.ok_or_else(|| {
            OpError::NotFound(format!("project copy {}", d.project_path().display()))
        })?;
        let marked: Vec<String> = current
            .files
            .iter()
            .filter(|f| {
                f.bytes.split(|&b| b == b'\n').any(|line| {
                    line.starts_with(MARKER_LOCAL.as_bytes())
                        || line.starts_with(MARKER_REMOTE.as_bytes())
                })
            })
            .map(|f| file_label(&label, &f.path))
            .collect();
        if !marked.is_empty() {
            return Err(OpError::Precondition(format!(
                "conflict markers are still in {}; resolve them, then run `smctl merge --continue` again",
                marked.join(", ")
            )));
        }
        let from = self.history().version(from)?;
        let reason = format!(
            "records the project's content as the merge of the collection's {} (operation {merge_id})",
            from.id
        );
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                base_reason: Some(reason),
                ..OpReport::default()
            });
        }
        let mut rec = OperationRecord::new("merge_continue", vec![target]);
        rec.merged_from = Some(from.id);
        let rec = self.logged(rec, |rec| {
            let what = format!("merge --continue {label}");
            self.snapshot_deployment(rec, &d, Origin::Merge, &what, true)?;
            self.update_deployment(&d, from.content_hash.clone())
        })?;
        self.record_made(
            &rec,
            &d.project_loc(),
            &d.project_path(),
            Origin::Merge,
            Some(&from),
        );
        Ok(OpReport {
            record: Some(rec),
            base_reason: Some(reason),
            ..OpReport::default()
        })
    }
}

//! `propagate`: brings a collection artifact's current content into every project it is
//! deployed to, as one operation.
//!
//! Each deployment is classified as drift is: `outdated` → pulled; `modified` or `conflict`
//! → left alone with the reason, or with `merge` merged like `smctl merge` (a project
//! still in conflict is listed); in sync → nothing; anything else (missing, removed,
//! unreadable) → left alone with the reason. The whole propagation has one operation id:
//! each project gets its own safety snapshot and is touched in the same record, so one
//! `undo` puts every project back. A project whose writes fail is reported and the others
//! go on; what the failing project had already written stays listed for undo.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::drift::{self, DriftKind, Side};
use crate::hash::{self, HashError, Variant};
use crate::history::content::Content;
use crate::merge::Resolution;
use crate::model::{OperationRecord, OperationStatus, Origin};

use super::content::{changed_paths, file_label, read_opt};
use super::merge::{Kind, PreparedMerge};
use super::target::{Deployed, find_deployment};
use super::{Conflict, OpError, Operations};

/// What propagation does in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// In sync (or nothing to merge): nothing to do.
    None,
    Pull,
    Merge,
    /// Left alone; the reason says why.
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Pull => "pull",
            Action::Merge => "merge",
            Action::Skip => "skip",
        }
    }
}

/// One project's part of a propagation.
#[derive(Debug, Clone)]
pub struct ProjectOutcome {
    pub project: PathBuf,
    /// The deployment's drift before.
    pub drift_before: DriftKind,
    pub action: Action,
    pub reason: String,
    /// Files that change (or would).
    pub changed: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// Why this project's writes failed (the others went on).
    pub error: Option<String>,
    /// The deployment's drift after (None for dry runs).
    pub drift_after: Option<DriftKind>,
}

/// What a propagation did (or would do).
#[derive(Debug, Clone, Default)]
pub struct PropagateReport {
    pub record: Option<OperationRecord>,
    pub dry_run: bool,
    pub collection: String,
    pub projects: Vec<ProjectOutcome>,
}

/// One deployment and what to write there.
struct Planned {
    d: Deployed,
    outcome: ProjectOutcome,
    work: Work,
}

enum Work {
    Nothing,
    Pull(Box<Content>),
    Merge(Box<PreparedMerge>),
}

/// A deployment found in a project, or why the project's deployment could not be read.
type Found = Result<Deployed, (PathBuf, OpError)>;

fn side(path: &std::path::Path, variant: Variant) -> Side {
    match hash::content_hash(path, variant) {
        Ok(h) => Side::Hash(h),
        Err(HashError::NotFound { .. }) => Side::Absent,
        Err(e) => Side::Unreadable(e.to_string()),
    }
}

/// The drift of deployment `d` now (its record read again).
fn drift_of(home: &std::path::Path, d: &Deployed) -> DriftKind {
    let record = find_deployment(home, &d.project, &d.record.artifact_path.to_string_lossy())
        .map(|d| d.record.content_hash)
        .unwrap_or_else(|_| d.record.content_hash.clone());
    drift::classify(
        &record,
        &side(&d.collection_path(), Variant::DeployedCopy),
        &side(&d.project_path(), Variant::Legacy),
    )
    .kind
}

impl Operations<'_> {
    /// Every deployment of `artifact` (from `collection`, or from the one collection it is
    /// deployed from), in project order.
    fn deployments_of(
        &self,
        artifact: &str,
        collection: Option<&str>,
    ) -> Result<(String, Vec<Found>), OpError> {
        let (projects, _) = self
            .engine
            .known_projects()
            .map_err(|e| OpError::Precondition(format!("cannot list the projects: {e}")))?;
        let mut found = Vec::new();
        for p in projects.iter().filter(|p| !p.ignored && !p.missing) {
            match find_deployment(self.home(), &p.path, artifact) {
                Ok(d) if collection.is_none_or(|c| c == d.record.from_collection) => {
                    found.push(Ok(d));
                }
                Ok(_) | Err(OpError::NotFound(_)) => {}
                Err(e) => found.push(Err((p.path.clone(), e))),
            }
        }
        let collections: BTreeSet<&str> = found
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .map(|d| d.record.from_collection.as_str())
            .collect();
        let name = match (collection, collections.len()) {
            (Some(c), _) => c.to_string(),
            (None, 0) => {
                return Err(OpError::NotFound(format!(
                    "a deployment of {artifact:?} in any known project (see `smctl project list`)"
                )));
            }
            (None, 1) => collections.first().unwrap().to_string(),
            (None, _) => {
                return Err(OpError::Invalid(format!(
                    "{artifact:?} is deployed from several collections ({}); choose one with --collection",
                    collections.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        };
        Ok((name, found))
    }

    fn plan_project(&self, d: Deployed, merge: bool, resolution: Resolution) -> Planned {
        let drift_before = drift_of(self.home(), &d);
        let mut outcome = ProjectOutcome {
            project: d.project.clone(),
            drift_before,
            action: Action::Skip,
            reason: String::new(),
            changed: Vec::new(),
            conflicts: Vec::new(),
            error: None,
            drift_after: None,
        };
        let label = d.project_loc().display_path();
        let mut work = Work::Nothing;
        let skip = |outcome: &mut ProjectOutcome, why: String| {
            outcome.action = Action::Skip;
            outcome.reason = why;
        };
        match drift_before {
            DriftKind::InSync => {
                outcome.action = Action::None;
                outcome.reason = "in sync".into();
            }
            DriftKind::Outdated => match read_opt(&d.collection_path(), Variant::DeployedCopy) {
                Ok(Some(incoming)) => {
                    let current = read_opt(&d.project_path(), Variant::Legacy).ok().flatten();
                    outcome.changed = changed_paths(current.as_ref(), Some(&incoming))
                        .iter()
                        .map(|p| file_label(&label, p))
                        .collect();
                    outcome.action = Action::Pull;
                    outcome.reason =
                        "outdated: the project's copy is unchanged since it was deployed".into();
                    work = Work::Pull(Box::new(incoming));
                }
                Ok(None) => skip(&mut outcome, "the collection copy is gone".into()),
                Err(e) => skip(
                    &mut outcome,
                    format!("cannot read the collection copy: {e}"),
                ),
            },
            DriftKind::Modified | DriftKind::Conflict if merge => {
                match self.prepare_merge(&d, resolution) {
                    Ok(m) if m.kind == Kind::UpToDate => {
                        outcome.action = Action::None;
                        outcome.reason = m.reason.clone();
                    }
                    Ok(m) => {
                        outcome.action = Action::Merge;
                        outcome.reason = m.reason.clone();
                        outcome.changed = m.changed.clone();
                        outcome.conflicts = m.conflicts.clone();
                        work = Work::Merge(Box::new(m));
                    }
                    Err(e) => skip(&mut outcome, format!("cannot merge: {e}")),
                }
            }
            DriftKind::Modified => skip(
                &mut outcome,
                "modified: the project's copy has local edits; left alone (--merge merges them)"
                    .into(),
            ),
            DriftKind::Conflict => skip(
                &mut outcome,
                "conflict: both copies changed; left alone (--merge merges them)".into(),
            ),
            other => skip(&mut outcome, format!("{}: left alone", other.as_str())),
        }
        Planned { d, outcome, work }
    }

    /// Brings the collection's current `artifact` into every project it is deployed to
    /// (see the module doc); with `merge`, projects with local edits are merged with
    /// `resolution` instead of left alone.
    ///
    /// # Errors
    /// No deployment found; several collections and none chosen; the operation could not
    /// be recorded. A failure in one project is reported in its outcome instead.
    pub fn propagate(
        &self,
        artifact: &str,
        collection: Option<&str>,
        dry_run: bool,
        merge: bool,
        resolution: Resolution,
    ) -> Result<PropagateReport, OpError> {
        let (collection, found) = self.deployments_of(artifact, collection)?;
        let mut plans = Vec::new();
        let mut unreadable = Vec::new();
        for d in found {
            match d {
                Ok(d) => plans.push(self.plan_project(d, merge, resolution)),
                Err((project, e)) => unreadable.push(ProjectOutcome {
                    project,
                    drift_before: DriftKind::Error,
                    action: Action::Skip,
                    reason: "the deployment cannot be read".into(),
                    changed: Vec::new(),
                    conflicts: Vec::new(),
                    error: Some(e.to_string()),
                    drift_after: None,
                }),
            }
        }
        let acting: Vec<&Planned> = plans
            .iter()
            .filter(|p| !matches!(p.work, Work::Nothing))
            .collect();
        if dry_run || acting.is_empty() {
            return Ok(PropagateReport {
                record: None,
                dry_run,
                collection,
                projects: plans
                    .into_iter()
                    .map(|p| p.outcome)
                    .chain(unreadable)
                    .collect(),
            });
        }
        let from = acting
            .first()
            .and_then(|p| self.head(&p.d.collection_loc(), &p.d.collection_path()));
        let targets = acting
            .iter()
            .map(|p| p.d.project_loc().to_string())
            .collect();
        let mut rec = OperationRecord::new("propagate", targets);
        rec.merged_from = from.as_ref().map(|v| v.id);
        let rec = self.logged(rec, |rec| {
            let mut failed = Vec::new();
            let mut conflicted = Vec::new();
            for p in plans.iter_mut() {
                let result = match &p.work {
                    Work::Nothing => continue,
                    Work::Pull(incoming) => {
                        self.pull_into(rec, &p.d, incoming, &p.outcome.changed)
                    }
                    Work::Merge(m) => self.apply_merge(rec, &p.d, m).map(|()| {
                        if !m.unresolved.is_empty() {
                            conflicted.push(p.d.project.display().to_string());
                        }
                    }),
                };
                if let Err(e) = result {
                    tracing::warn!(project = %p.d.project.display(), "propagation failed here: {e}");
                    failed.push(format!("{}: {e}", p.d.project.display()));
                    p.outcome.error = Some(e.to_string());
                }
            }
            let mut problems = Vec::new();
            if !conflicted.is_empty() {
                rec.status = Some(OperationStatus::Conflicted);
                problems.push(format!(
                    "left in conflict, to resolve by hand: {}",
                    conflicted.join(", ")
                ));
            }
            if !failed.is_empty() {
                problems.push(format!("failed: {}", failed.join("; ")));
            }
            if !problems.is_empty() {
                rec.error = Some(problems.join("; "));
            }
            Ok(())
        })?;
        for p in &mut plans {
            if p.outcome.error.is_none() {
                match &p.work {
                    Work::Nothing => {}
                    Work::Pull(_) => {
                        self.record_made(
                            &rec,
                            &p.d.project_loc(),
                            &p.d.project_path(),
                            Origin::Sync,
                            from.as_ref(),
                        );
                    }
                    Work::Merge(m) => self.after_merge(&rec, &p.d, m),
                }
            }
            p.outcome.drift_after = Some(drift_of(self.home(), &p.d));
        }
        Ok(PropagateReport {
            record: Some(rec),
            dry_run: false,
            collection,
            projects: plans
                .into_iter()
                .map(|p| p.outcome)
                .chain(unreadable)
                .collect(),
        })
    }
}

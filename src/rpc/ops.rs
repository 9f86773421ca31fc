//! The write-back RPCs: sync pull/push, merge, propagate, undo, rollback and the
//! operations log.
//! Each handler validates its arguments, runs [`crate::operations`] on the blocking pool
//! and converts the result here. One that may have written (anything but a dry run or the
//! log) answers only once the live state includes its writes: the sync barrier after the
//! last write covers every event of it, so the next answer agrees with what was written.

use tonic::{Request, Response, Status};

use crate::history::time;
use crate::merge::{Resolution, Side};
use crate::model::{OperationRecord, SnapshotTarget};
use crate::operations::{OpError, OpReport, Operations, PropagateReport, RollbackMode, RollbackTo};
use crate::paths::canonical;
use crate::writer::Writer;

use super::{DaemonService, path_arg, pb, status};

fn info(o: &OperationRecord) -> pb::OperationInfo {
    pb::OperationInfo {
        id: o.id,
        time: time::format(o.time_ms),
        operation: o.operation.clone(),
        targets: o.targets.clone(),
        files_restored: o.files_restored.clone(),
        files_merged: o.files_merged.clone(),
        files_conflicted: o.files_conflicted.clone(),
        safety_snapshots: o.safety_snapshots.iter().map(ToString::to_string).collect(),
        success: o.success,
        error: o.error.clone().unwrap_or_default(),
        undoes: o.undoes.unwrap_or(0),
        status: o.status().as_str().to_string(),
        recovery: o
            .recovery
            .as_ref()
            .map(|r| r.actions.clone())
            .unwrap_or_default(),
        recovery_kept: o.recovery.as_ref().is_some_and(|r| r.kept),
        paths: o.paths.clone(),
    }
}

fn conflict_pb(c: crate::operations::Conflict) -> pb::MergeConflict {
    pb::MergeConflict {
        path: c.path,
        kind: c.kind,
        binary: c.binary,
        resolved: c.resolved.unwrap_or_default(),
    }
}

fn resolution(p: pb::MergePreference) -> Resolution {
    match p {
        pb::MergePreference::Unspecified | pb::MergePreference::Markers => Resolution::Markers,
        pb::MergePreference::Local => Resolution::Prefer(Side::Local),
        pb::MergePreference::Collection => Resolution::Prefer(Side::Remote),
        pb::MergePreference::Union => Resolution::Union,
    }
}

fn propagate_response(r: PropagateReport) -> pb::PropagateResponse {
    pb::PropagateResponse {
        operation: r.record.as_ref().map(info),
        dry_run: r.dry_run,
        collection: r.collection,
        projects: r
            .projects
            .into_iter()
            .map(|p| pb::ProjectPropagation {
                project: p.project.display().to_string(),
                drift_before: p.drift_before.as_str().to_string(),
                action: p.action.as_str().to_string(),
                reason: p.reason,
                changed: p.changed,
                conflicts: p.conflicts.into_iter().map(conflict_pb).collect(),
                error: p.error.unwrap_or_default(),
                drift_after: p
                    .drift_after
                    .map(|d| d.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

fn response(r: OpReport) -> pb::OperationResponse {
    pb::OperationResponse {
        operation: r.record.as_ref().map(info),
        dry_run: r.dry_run,
        changed: r.changed,
        conflicts: r.conflicts.into_iter().map(conflict_pb).collect(),
        merged: r
            .merged
            .into_iter()
            .map(|f| pb::MergedFile {
                path: f.path,
                deleted: f.content.is_none(),
                content: f.content.unwrap_or_default(),
            })
            .collect(),
        base_version: r.base.unwrap_or_default(),
        resolved_to: r.resolved.unwrap_or_default(),
        base_reason: r.base_reason.unwrap_or_default(),
    }
}

fn required(name: &str, v: &str) -> Result<(), Status> {
    if v.is_empty() {
        Err(Status::invalid_argument(format!("{name} is required")))
    } else {
        Ok(())
    }
}

impl DaemonService {
    /// Runs `f` on the blocking pool with an [`Operations`] over the engine; when it
    /// `writes`, returns once the live state includes what it wrote (failed operations
    /// included: they may have written part of their work).
    async fn operate<T, F>(&self, writes: bool, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Operations<'_>) -> Result<T, OpError> + Send + 'static,
    {
        // An operation finds its bases and versions in history: what was queued so far is
        // recorded first.
        if let Err(e) = self.live.sync_history().await {
            tracing::warn!(error = %e, "an operation starts before the history of every change is recorded");
        }
        let live = std::sync::Arc::clone(&self.live);
        let result = tokio::task::spawn_blocking(move || {
            f(&Operations::new(live.engine(), Writer::new()).with_claims(live.claims()))
        })
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?;
        if writes && let Err(e) = self.live.sync().await {
            // The write is done either way; the answer must not say otherwise.
            tracing::warn!(error = %e, "the live state may not show an operation's writes yet");
        }
        result.map_err(status::operation)
    }

    pub(super) async fn do_sync(
        &self,
        req: Request<pb::SyncRequest>,
        push: bool,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        let req = req.into_inner();
        required("artifact", &req.artifact)?;
        let project = canonical(&path_arg("project", &req.project)?);
        let r = self
            .operate(!req.dry_run, move |ops| {
                if push {
                    ops.sync_push(&project, &req.artifact, req.dry_run)
                } else {
                    ops.sync_pull(&project, &req.artifact, req.dry_run)
                }
            })
            .await?;
        Ok(Response::new(response(r)))
    }

    pub(super) async fn do_merge(
        &self,
        req: Request<pb::MergeRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        let req = req.into_inner();
        required("artifact", &req.artifact)?;
        let project = canonical(&path_arg("project", &req.project)?);
        let resolution = resolution(req.prefer());
        let r = self
            .operate(!req.dry_run, move |ops| {
                if req.continue_merge {
                    ops.merge_continue(&project, &req.artifact, req.dry_run)
                } else {
                    ops.merge(&project, &req.artifact, req.dry_run, resolution)
                }
            })
            .await?;
        Ok(Response::new(response(r)))
    }

    pub(super) async fn do_propagate(
        &self,
        req: Request<pb::PropagateRequest>,
    ) -> Result<Response<pb::PropagateResponse>, Status> {
        let req = req.into_inner();
        required("artifact", &req.artifact)?;
        let resolution = resolution(req.prefer());
        let r = self
            .operate(!req.dry_run, move |ops| {
                let coll = (!req.collection.is_empty()).then_some(req.collection.as_str());
                ops.propagate(&req.artifact, coll, req.dry_run, req.merge, resolution)
            })
            .await?;
        Ok(Response::new(propagate_response(r)))
    }

    pub(super) async fn do_undo(
        &self,
        req: Request<pb::UndoRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        let req = req.into_inner();
        let id = (req.operation != 0).then_some(req.operation);
        let r = self
            .operate(!req.dry_run, move |ops| ops.undo(id, req.dry_run))
            .await?;
        Ok(Response::new(response(r)))
    }

    pub(super) async fn do_rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        let req = req.into_inner();
        let to = match (req.to.is_empty(), req.at.is_empty()) {
            (false, true) => RollbackTo::Spec(req.to.clone()),
            (true, false) => RollbackTo::At(
                time::parse(&req.at, time::now_ms()).map_err(Status::invalid_argument)?,
            ),
            (true, true) => return Err(Status::invalid_argument("to or at is required")),
            (false, false) => {
                return Err(Status::invalid_argument("give either to or at, not both"));
            }
        };
        let mode = match req.mode() {
            pb::RollbackMode::Unspecified | pb::RollbackMode::Replace => RollbackMode::Replace,
            pb::RollbackMode::Preserve => RollbackMode::Preserve,
        };
        let project = if req.project.is_empty() {
            None
        } else {
            Some(canonical(&path_arg("project", &req.project)?))
        };
        let collection = (!req.collection.is_empty()).then_some(req.collection);
        if req.artifact.is_empty() {
            if !req.paths.is_empty() {
                return Err(Status::invalid_argument(
                    "--paths needs an artifact: it chooses files inside one",
                ));
            }
            let target = match (project, collection) {
                (Some(p), None) => SnapshotTarget::Project(p),
                (None, Some(c)) => SnapshotTarget::Collection(c),
                _ => {
                    return Err(Status::invalid_argument(
                        "give either a project or a collection",
                    ));
                }
            };
            let r = self
                .operate(!req.dry_run, move |ops| {
                    ops.rollback_all(&target, &to, mode, req.dry_run)
                })
                .await?;
            return Ok(Response::new(response(r)));
        }
        let r = self
            .operate(!req.dry_run, move |ops| {
                ops.rollback(
                    &req.artifact,
                    project.as_deref(),
                    collection.as_deref(),
                    &to,
                    mode,
                    &req.paths,
                    req.dry_run,
                )
            })
            .await?;
        Ok(Response::new(response(r)))
    }

    pub(super) async fn do_audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        let since = req.into_inner().since;
        let since_ms = if since.is_empty() {
            None
        } else {
            Some(time::parse(&since, time::now_ms()).map_err(Status::invalid_argument)?)
        };
        let ops = self.operate(false, move |ops| ops.audit(since_ms)).await?;
        Ok(Response::new(pb::AuditResponse {
            operations: ops.iter().map(info).collect(),
        }))
    }
}

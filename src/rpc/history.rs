//! The history RPCs: snapshots, version log, tags, diff, export and import. Each handler
//! validates its arguments, runs [`crate::history::History`] on the blocking pool and
//! converts domain types to protocol messages here. The log and diff first wait for the
//! sync barrier (unless `stale_ok`), so versions of changes made just before are in.

use std::path::PathBuf;

use tonic::{Request, Response, Status};

use crate::engine::{Engine, EngineError};
use crate::history::diff::{FileDiff, Operand, Subject};
use crate::history::time;
use crate::model::{Location, Origin, Scope, Snapshot, SnapshotId, SnapshotTarget, Version};
use crate::paths::canonical;

use super::{DaemonService, path_arg, pb, status};

fn target_of(t: Option<&pb::SnapshotTarget>) -> Result<Option<SnapshotTarget>, Status> {
    let Some(t) = t else { return Ok(None) };
    match (t.collection.is_empty(), t.project.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(SnapshotTarget::Collection(t.collection.clone()))),
        (true, false) => Ok(Some(SnapshotTarget::Project(canonical(&path_arg(
            "project", &t.project,
        )?)))),
        (false, false) => Err(Status::invalid_argument(
            "give a collection or a project, not both",
        )),
    }
}

fn target_pb(t: &SnapshotTarget) -> pb::SnapshotTarget {
    match t {
        SnapshotTarget::Collection(n) => pb::SnapshotTarget {
            collection: n.clone(),
            project: String::new(),
        },
        SnapshotTarget::Project(p) => pb::SnapshotTarget {
            collection: String::new(),
            project: p.display().to_string(),
        },
    }
}

fn snapshot_pb(s: &Snapshot) -> pb::SnapshotInfo {
    pb::SnapshotInfo {
        id: s.id.to_string(),
        target: Some(target_pb(&s.target)),
        time: time::format(s.time_ms),
        origin: s.origin.as_str().into(),
        message: s.message.clone().unwrap_or_default(),
        artifacts: s.members.len() as u32,
    }
}

fn version_pb(v: &Version, files: bool) -> pb::VersionInfo {
    let (scope, owner) = match &v.location.scope {
        Scope::Collection(n) => ("collection", n.clone()),
        Scope::Project(p) => ("project", p.display().to_string()),
    };
    pb::VersionInfo {
        id: v.id.to_string(),
        scope: scope.into(),
        owner,
        profile_root: v.location.root.clone(),
        artifact_path: v.location.path.clone(),
        content_hash: v.content_hash.clone(),
        parent: v.parent().map(|p| p.to_string()).unwrap_or_default(),
        parents: v.parents.iter().map(ToString::to_string).collect(),
        time: time::format(v.time_ms),
        origin: v.origin.as_str().into(),
        message: v.message.clone().unwrap_or_default(),
        tags: v.tags.clone(),
        size: v.logical_bytes(),
        files: if files {
            v.entries
                .iter()
                .map(|e| pb::VersionFile {
                    path: e.path.clone(),
                    blob: e.blob.clone(),
                    size: e.size,
                    mode: e.mode,
                    symlink: e.symlink.clone().unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn diff_pb(d: FileDiff) -> pb::FileDiff {
    pb::FileDiff {
        path: d.path,
        status: d.status.as_str().into(),
        binary: d.binary,
        unified: d.unified,
        hunks: d
            .hunks
            .into_iter()
            .map(|h| pb::DiffHunk {
                header: h.header,
                lines: h.lines,
            })
            .collect(),
        lines_added: d.lines_added,
        lines_removed: d.lines_removed,
    }
}

fn snapshot_id(s: &str) -> Result<SnapshotId, Status> {
    s.parse()
        .map_err(|()| Status::invalid_argument(format!("{s:?} is not a snapshot id (s<N>)")))
}

/// The selector's project folder, canonical, if any.
fn selector_project(sel: &pb::ArtifactSelector) -> Result<Option<PathBuf>, Status> {
    if sel.project.is_empty() {
        Ok(None)
    } else {
        Ok(Some(canonical(&path_arg("project", &sel.project)?)))
    }
}

fn locate(
    e: &Engine,
    sel: &pb::ArtifactSelector,
    project: Option<&PathBuf>,
) -> Result<Location, EngineError> {
    let coll = (!sel.collection.is_empty()).then_some(sel.collection.as_str());
    Ok(e.history()
        .locate(&sel.artifact, project.map(PathBuf::as_path), coll)?)
}

impl DaemonService {
    pub(super) async fn do_create_snapshot(
        &self,
        req: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        let req = req.into_inner();
        let target = target_of(req.target.as_ref())?
            .ok_or_else(|| Status::invalid_argument("give a collection or a project"))?;
        let message = (!req.message.is_empty()).then_some(req.message);
        let snap = self
            .blocking(move |e| {
                let h = e.history();
                let id = h.snapshot(&target, Origin::Manual, message.as_deref())?;
                Ok(h.snapshot_record(id)?)
            })
            .await?;
        Ok(Response::new(pb::CreateSnapshotResponse {
            snapshot: Some(snapshot_pb(&snap)),
        }))
    }

    pub(super) async fn do_list_snapshots(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let req = req.into_inner();
        let target = target_of(req.target.as_ref())?;
        let limit = if req.limit == 0 {
            50
        } else {
            req.limit as usize
        };
        let cursor = if req.cursor.is_empty() {
            None
        } else {
            Some(snapshot_id(&req.cursor)?)
        };
        let (page, next) = self
            .blocking(move |e| Ok(e.history().snapshots(target.as_ref(), limit, cursor)?))
            .await?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            snapshots: page.iter().map(snapshot_pb).collect(),
            next_cursor: next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    pub(super) async fn do_get_snapshot(
        &self,
        req: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::GetSnapshotResponse>, Status> {
        let id = snapshot_id(&req.into_inner().id)?;
        let (snap, versions) = self
            .blocking(move |e| {
                let s = e.history().snapshot_record(id)?;
                let v = e.history().members(&s)?;
                Ok((s, v))
            })
            .await?;
        Ok(Response::new(pb::GetSnapshotResponse {
            snapshot: Some(snapshot_pb(&snap)),
            versions: versions.iter().map(|v| version_pb(v, false)).collect(),
        }))
    }

    pub(super) async fn do_artifact_log(
        &self,
        req: Request<pb::ArtifactLogRequest>,
    ) -> Result<Response<pb::ArtifactLogResponse>, Status> {
        let req = req.into_inner();
        let graph = req.graph;
        let sel = req
            .artifact
            .filter(|s| !s.artifact.is_empty())
            .ok_or_else(|| Status::invalid_argument("artifact is required"))?;
        let project = selector_project(&sel)?;
        self.fresh(req.stale_ok).await?;
        let versions = self
            .blocking(move |e| {
                let loc = locate(e, &sel, project.as_ref())?;
                if graph {
                    Ok(e.history().lineage(std::slice::from_ref(&loc))?)
                } else {
                    Ok(e.history().versions_of(&loc)?)
                }
            })
            .await?;
        Ok(Response::new(pb::ArtifactLogResponse {
            versions: versions.iter().map(|v| version_pb(v, false)).collect(),
        }))
    }

    pub(super) async fn do_get_version(
        &self,
        req: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::GetVersionResponse>, Status> {
        let spec = req.into_inner().version;
        let v = self
            .blocking(move |e| Ok(e.history().resolve_version(&spec)?))
            .await?;
        Ok(Response::new(pb::GetVersionResponse {
            version: Some(version_pb(&v, true)),
        }))
    }

    pub(super) async fn do_tag_version(
        &self,
        req: Request<pb::TagVersionRequest>,
    ) -> Result<Response<pb::TagVersionResponse>, Status> {
        let req = req.into_inner();
        let v = self
            .blocking(move |e| {
                let h = e.history();
                let id = h.resolve_version(&req.version)?.id;
                Ok(h.tag(id, &req.tag)?)
            })
            .await?;
        Ok(Response::new(pb::TagVersionResponse {
            version: Some(version_pb(&v, false)),
        }))
    }

    pub(super) async fn do_diff(
        &self,
        req: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        let req = req.into_inner();
        let now = time::now_ms();
        let a = Operand::parse(&req.a, now).map_err(|e| status::history(&e))?;
        let b = Operand::parse(&req.b, now).map_err(|e| status::history(&e))?;
        let sel = req.subject.unwrap_or_default();
        let project = selector_project(&sel)?;
        self.fresh(req.stale_ok).await?;
        let files = self
            .blocking(move |e| {
                let mut subject = Subject::default();
                if !sel.artifact.is_empty() {
                    subject.artifact = Some(locate(e, &sel, project.as_ref())?);
                }
                subject.target = match (&project, sel.collection.is_empty()) {
                    (Some(p), _) => Some(SnapshotTarget::Project(p.clone())),
                    (None, false) => Some(SnapshotTarget::Collection(sel.collection.clone())),
                    (None, true) => None,
                };
                Ok(e.history().diff(&a, &b, subject)?)
            })
            .await?;
        Ok(Response::new(pb::DiffResponse {
            files: files.into_iter().map(diff_pb).collect(),
        }))
    }

    pub(super) async fn do_export_snapshot(
        &self,
        req: Request<pb::ExportSnapshotRequest>,
    ) -> Result<Response<pb::ExportSnapshotResponse>, Status> {
        let req = req.into_inner();
        let id = snapshot_id(&req.id)?;
        let path = path_arg("path", &req.path)?;
        let parent = path
            .parent()
            .filter(|p| p.is_dir())
            .ok_or_else(|| Status::invalid_argument(format!("{}: no such folder", req.path)))?;
        let parent = canonical(parent);
        let paths = self.live.engine().paths();
        let managed = [
            crate::formats::collection::collections_dir(&paths.skillmeat_home),
            paths.state_dir.clone(),
        ];
        if managed.iter().any(|m| parent.starts_with(canonical(m))) {
            return Err(Status::invalid_argument(format!(
                "{}: will not write inside a collection or the daemon's state folder",
                req.path
            )));
        }
        let dest = parent.join(path.file_name().unwrap_or_default());
        let shown = dest.display().to_string();
        let bytes = self
            .blocking(move |e| Ok(e.history().export(id, &dest)?))
            .await?;
        Ok(Response::new(pb::ExportSnapshotResponse {
            bytes,
            path: shown,
        }))
    }

    pub(super) async fn do_import_snapshot(
        &self,
        req: Request<pb::ImportSnapshotRequest>,
    ) -> Result<Response<pb::ImportSnapshotResponse>, Status> {
        let req = req.into_inner();
        let path = if req.skillmeat_snapshots {
            None
        } else {
            Some(path_arg("path", &req.path)?)
        };
        let (report, snaps) = self
            .blocking(move |e| {
                let h = e.history();
                let limits = e.config().history.import.clone();
                let r = match &path {
                    Some(p) => h.import(p, &limits)?,
                    None => h.import_skillmeat_snapshots(&limits)?,
                };
                let snaps = r
                    .snapshots
                    .iter()
                    .map(|&id| h.snapshot_record(id))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((r, snaps))
            })
            .await?;
        Ok(Response::new(pb::ImportSnapshotResponse {
            snapshots: snaps.iter().map(snapshot_pb).collect(),
            new_versions: report.new_versions,
            skipped: report.skipped,
        }))
    }
}

//! `impl SkillmeatDaemon for DaemonService`: one method per RPC of the proto. Status, drift,
//! project and shutdown requests are answered here; `Watch`, history and write-back
//! requests go to their handlers in `watch`, `history` and `ops`.

use tonic::{Request, Response, Status};

use crate::drift::DriftKind;
use crate::formats::collection::collections_dir;

use super::{DaemonService, PROTOCOL_VERSION, convert, path_arg, pb, status, watch};

#[tonic::async_trait]
impl pb::skillmeat_daemon_server::SkillmeatDaemon for DaemonService {
    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.fresh(req.into_inner().stale_ok).await?;
        // Every figure below is a counter or a read of a few small files: the answer costs
        // the same whatever the number of projects and versions.
        let (totals, store_bytes, history, inotify_watches) = self
            .blocking(|e| {
                // The status answers whatever the store's condition: history counts are
                // left out while it cannot answer, and its condition says why.
                let history = e.history().stats().ok();
                let store_bytes = history
                    .as_ref()
                    .map_or_else(|| e.store().size_on_disk(), |h| h.store_bytes);
                let watches = crate::watcher::count::inotify_watches();
                Ok((e.totals()?, store_bytes, history, watches))
            })
            .await?;
        let history = history.map(|s| pb::HistoryStats {
            store_bytes: s.store_bytes,
            logical_bytes: s.logical_bytes,
            unique_compressed_bytes: s.unique_compressed_bytes,
            versions: s.versions,
            snapshots: s.snapshots,
            blobs: s.blobs,
        });
        let paths = self.live.engine().paths();
        let store = self.live.engine().store();
        let (projects, deployments, cursor, watched_roots, polled_roots, mut problems) =
            self.live.with_state(|s| {
                (
                    s.projects.iter().filter(|k| !k.ignored).count() as u32,
                    s.all().filter(|r| r.kind != DriftKind::Added).count() as u32,
                    s.cursor,
                    s.watched_roots as u32,
                    s.polled
                        .iter()
                        .map(|(p, r)| pb::PolledRoot {
                            path: p.display().to_string(),
                            reason: r.clone(),
                        })
                        .collect(),
                    s.problems.clone(),
                )
            });
        for p in totals.problems {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        Ok(Response::new(pb::StatusResponse {
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            protocol_version: PROTOCOL_VERSION,
            pid: u64::from(std::process::id()),
            uptime_seconds: totals.uptime_seconds,
            socket_path: paths.socket.display().to_string(),
            state_dir: paths.state_dir.display().to_string(),
            skillmeat_home: paths.skillmeat_home.display().to_string(),
            collections: totals.collections,
            projects,
            artifacts: totals.collection_artifacts + deployments,
            files_indexed: totals.files_indexed,
            files_read: totals.files_read,
            problems: problems.into_iter().map(convert::problem).collect(),
            watched_roots,
            polled_roots,
            cursor,
            journal_first_cursor: store.first_cursor().ok().flatten().unwrap_or(0),
            journal_events: store.journal_len() as u64,
            history,
            store_bytes,
            inotify_watches,
            store: Some(convert::store_health(&store.health())),
        }))
    }

    async fn shutdown(
        &self,
        _req: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        tracing::info!("shutdown requested over RPC");
        self.shutdown.cancel();
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn get_drift(
        &self,
        req: Request<pb::GetDriftRequest>,
    ) -> Result<Response<pb::GetDriftResponse>, Status> {
        let req = req.into_inner();
        let project = if req.project.is_empty() {
            None
        } else {
            Some(path_arg("project", &req.project)?)
        };
        self.fresh(req.stale_ok && !req.sync).await?;
        let (cursor, reports, problems) = self
            .live
            .drift(project.as_deref(), req.include_in_sync)
            .map_err(status::engine)?;
        let collections = collections_dir(&self.live.engine().paths().skillmeat_home);
        Ok(Response::new(pb::GetDriftResponse {
            artifacts: reports
                .into_iter()
                .map(|a| convert::artifact(a, &collections))
                .collect(),
            problems: problems.into_iter().map(convert::problem).collect(),
            cursor,
        }))
    }

    async fn add_project(
        &self,
        req: Request<pb::AddProjectRequest>,
    ) -> Result<Response<pb::AddProjectResponse>, Status> {
        let req = req.into_inner();
        let path = path_arg("path", &req.path)?;
        let force = req.force;
        let added = self.blocking(move |e| e.add_project(&path, force)).await?;
        self.live.refresh_projects().await.map_err(status::sync)?;
        // That project alone: the answer costs its size, not that of every project known.
        let project = self.live.with_state(|s| {
            let k = s.projects.iter().find(|k| k.path == added)?;
            Some(convert::project(s, k))
        });
        let project = self.read_roots(project.into_iter().collect()).await?.pop();
        Ok(Response::new(pb::AddProjectResponse { project }))
    }

    async fn remove_project(
        &self,
        req: Request<pb::RemoveProjectRequest>,
    ) -> Result<Response<pb::RemoveProjectResponse>, Status> {
        let path = path_arg("path", &req.into_inner().path)?;
        self.blocking(move |e| e.remove_project(&path)).await?;
        self.live.refresh_projects().await.map_err(status::sync)?;
        Ok(Response::new(pb::RemoveProjectResponse {}))
    }

    async fn ignore_project(
        &self,
        req: Request<pb::IgnoreProjectRequest>,
    ) -> Result<Response<pb::IgnoreProjectResponse>, Status> {
        let req = req.into_inner();
        let path = path_arg("path", &req.path)?;
        let ignored = !req.unignore;
        self.blocking(move |e| e.ignore_project(&path, ignored))
            .await?;
        self.live.refresh_projects().await.map_err(status::sync)?;
        Ok(Response::new(pb::IgnoreProjectResponse {}))
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        self.fresh(req.into_inner().stale_ok).await?;
        let (projects, problems) = self.live.with_state(convert::projects);
        let projects = self.read_roots(projects).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects,
            problems,
        }))
    }

    type WatchStream = watch::WatchStream;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.do_watch(req).await
    }

    // ---- history (handlers in rpc/history.rs)

    async fn create_snapshot(
        &self,
        req: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        self.do_create_snapshot(req).await
    }

    async fn list_snapshots(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        self.do_list_snapshots(req).await
    }

    async fn get_snapshot(
        &self,
        req: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::GetSnapshotResponse>, Status> {
        self.do_get_snapshot(req).await
    }

    async fn artifact_log(
        &self,
        req: Request<pb::ArtifactLogRequest>,
    ) -> Result<Response<pb::ArtifactLogResponse>, Status> {
        self.do_artifact_log(req).await
    }

    async fn get_version(
        &self,
        req: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::GetVersionResponse>, Status> {
        self.do_get_version(req).await
    }

    async fn tag_version(
        &self,
        req: Request<pb::TagVersionRequest>,
    ) -> Result<Response<pb::TagVersionResponse>, Status> {
        self.do_tag_version(req).await
    }

    async fn diff(
        &self,
        req: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        self.do_diff(req).await
    }

    async fn export_snapshot(
        &self,
        req: Request<pb::ExportSnapshotRequest>,
    ) -> Result<Response<pb::ExportSnapshotResponse>, Status> {
        self.do_export_snapshot(req).await
    }

    async fn import_snapshot(
        &self,
        req: Request<pb::ImportSnapshotRequest>,
    ) -> Result<Response<pb::ImportSnapshotResponse>, Status> {
        self.do_import_snapshot(req).await
    }

    // ---- write-back (handlers in rpc/ops.rs)

    async fn sync_pull(
        &self,
        req: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        self.do_sync(req, false).await
    }

    async fn sync_push(
        &self,
        req: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        self.do_sync(req, true).await
    }

    async fn merge(
        &self,
        req: Request<pb::MergeRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        self.do_merge(req).await
    }

    async fn propagate(
        &self,
        req: Request<pb::PropagateRequest>,
    ) -> Result<Response<pb::PropagateResponse>, Status> {
        self.do_propagate(req).await
    }

    async fn undo(
        &self,
        req: Request<pb::UndoRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        self.do_undo(req).await
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::OperationResponse>, Status> {
        self.do_rollback(req).await
    }

    async fn audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        self.do_audit(req).await
    }

    // ---- desktop notifications (handlers in rpc/notify.rs)

    async fn notify_status(
        &self,
        req: Request<pb::NotifyStatusRequest>,
    ) -> Result<Response<pb::NotifyStatusResponse>, Status> {
        self.do_notify_status(req).await
    }

    async fn notify_test(
        &self,
        req: Request<pb::NotifyTestRequest>,
    ) -> Result<Response<pb::NotifyTestResponse>, Status> {
        self.do_notify_test(req).await
    }

    async fn notify_mute(
        &self,
        req: Request<pb::NotifyMuteRequest>,
    ) -> Result<Response<pb::NotifyMuteResponse>, Status> {
        self.do_notify_mute(req).await
    }

    async fn notify_unmute(
        &self,
        req: Request<pb::NotifyUnmuteRequest>,
    ) -> Result<Response<pb::NotifyUnmuteResponse>, Status> {
        self.do_notify_unmute(req).await
    }
}

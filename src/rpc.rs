//! The gRPC layer: generated types stay here, the engine's domain types stay out.
//!
//! [`DaemonService`] implements `skillmeat.daemon.v1.SkillmeatDaemon` over an [`Engine`]:
//! each RPC validates its arguments, runs the engine on the blocking pool and converts
//! the result; engine errors become statuses with the right code in one place
//! ([`status_of`]). [`check_peer`] admits only callers with the daemon's own uid.

mod history;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use crate::drift::DriftKind;
use crate::engine::{ArtifactReport, Engine, EngineError};
use crate::formats::Problem;
use crate::projects::Source;

/// The generated protocol types and stubs.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("skillmeat.daemon.v1");

    /// Encoded descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("skillmeat_descriptor");
}

/// Version of the protocol in `proto/`; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct DaemonService {
    engine: Arc<Engine>,
    shutdown: CancellationToken,
}

impl DaemonService {
    /// A service over `engine`; the `Shutdown` RPC cancels `shutdown`.
    pub fn new(engine: Arc<Engine>, shutdown: CancellationToken) -> Self {
        DaemonService { engine, shutdown }
    }

    /// Runs `f` on the blocking pool with the engine.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Status::internal(format!("worker failed: {e}")))?
            .map_err(status_of)
    }
}

/// Admits only connections whose peer has the daemon's uid.
///
/// # Errors
/// `PERMISSION_DENIED` for any other uid, or when the peer's credentials are unknown.
#[allow(clippy::result_large_err)]
pub fn check_peer(req: Request<()>) -> Result<Request<()>, Status> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match req
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|i| i.peer_cred)
    {
        Some(cred) if cred.uid() == me => Ok(req),
        Some(cred) => Err(Status::permission_denied(format!(
            "uid {} may not use this daemon (it serves uid {me})",
            cred.uid()
        ))),
        None => Err(Status::permission_denied(
            "peer credentials are unavailable on this connection",
        )),
    }
}

/// The status an engine error answers with.
pub fn status_of(e: EngineError) -> Status {
    let msg = e.to_string();
    match e {
        EngineError::NotAFolder { .. } => Status::invalid_argument(msg),
        EngineError::UnknownProject { .. } => Status::not_found(msg),
        EngineError::MissingProject { .. } | EngineError::NotManual { .. } => {
            Status::failed_precondition(msg)
        }
        EngineError::Store(_) => Status::internal(msg),
        EngineError::History(h) => history::status_of(&h),
    }
}

/// A path argument: present and absolute (the client resolves relative ones).
#[allow(clippy::result_large_err)]
fn path_arg(name: &str, value: &str) -> Result<PathBuf, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{name} is required")));
    }
    if value.contains('\0') {
        return Err(Status::invalid_argument(format!(
            "{name} contains a NUL byte"
        )));
    }
    let p = PathBuf::from(value);
    if !p.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "{name} must be an absolute path, got {value:?}"
        )));
    }
    Ok(p)
}

fn problem(p: Problem) -> pb::Problem {
    pb::Problem {
        path: p.path.display().to_string(),
        message: p.message,
        project: p
            .project
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    }
}

fn drift_type(k: DriftKind) -> pb::DriftType {
    match k {
        DriftKind::InSync => pb::DriftType::InSync,
        DriftKind::Modified => pb::DriftType::Modified,
        DriftKind::Outdated => pb::DriftType::Outdated,
        DriftKind::Conflict => pb::DriftType::Conflict,
        DriftKind::Removed => pb::DriftType::Removed,
        DriftKind::Added => pb::DriftType::Added,
        DriftKind::Missing => pb::DriftType::Missing,
        DriftKind::Error => pb::DriftType::Error,
    }
}

fn artifact(a: ArtifactReport) -> pb::ArtifactDrift {
    pb::ArtifactDrift {
        project: a.project.display().to_string(),
        profile_root: a.profile_root,
        name: a.name,
        artifact_type: a.artifact_type,
        drift_type: drift_type(a.kind).into(),
        deployed_sha: a.deployed_sha,
        collection_sha: a.collection_sha,
        project_sha: a.project_sha,
        collection_version: a.collection_version,
        project_version: a.project_version,
        last_deployed: a.last_deployed,
        recommendation: a.recommendation.to_string(),
        collection: a.collection,
        artifact_path: a.artifact_path.display().to_string(),
        error: a.error.unwrap_or_default(),
        change_origin: a.change_origin.to_string(),
    }
}

fn source(s: Source) -> pb::ProjectSource {
    match s {
        Source::Manual => pb::ProjectSource::Manual,
        Source::Registry => pb::ProjectSource::Registry,
        Source::Scan => pb::ProjectSource::Scan,
    }
}

#[tonic::async_trait]
impl pb::skillmeat_daemon_server::SkillmeatDaemon for DaemonService {
    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let totals = self.blocking(|e| e.totals()).await?;
        let history = self.history_stats().await?;
        let paths = self.engine.paths();
        Ok(Response::new(pb::StatusResponse {
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            protocol_version: PROTOCOL_VERSION,
            pid: u64::from(std::process::id()),
            uptime_seconds: totals.uptime_seconds,
            socket_path: paths.socket.display().to_string(),
            state_dir: paths.state_dir.display().to_string(),
            skillmeat_home: paths.skillmeat_home.display().to_string(),
            collections: totals.collections,
            projects: totals.projects,
            artifacts: totals.artifacts,
            files_indexed: totals.files_indexed,
            files_read: totals.files_read,
            problems: totals.problems.into_iter().map(problem).collect(),
            history: Some(history),
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
        let include = req.include_in_sync;
        let report = self
            .blocking(move |e| e.drift(project.as_deref(), include))
            .await?;
        Ok(Response::new(pb::GetDriftResponse {
            artifacts: report.artifacts.into_iter().map(artifact).collect(),
            problems: report.problems.into_iter().map(problem).collect(),
        }))
    }

    async fn add_project(
        &self,
        req: Request<pb::AddProjectRequest>,
    ) -> Result<Response<pb::AddProjectResponse>, Status> {
        let path = path_arg("path", &req.into_inner().path)?;
        let added = self.blocking(move |e| e.add_project(&path)).await?;
        let (projects, _) = self.list().await?;
        let project = projects
            .into_iter()
            .find(|p| p.path == added.display().to_string());
        Ok(Response::new(pb::AddProjectResponse { project }))
    }

    async fn remove_project(
        &self,
        req: Request<pb::RemoveProjectRequest>,
    ) -> Result<Response<pb::RemoveProjectResponse>, Status> {
        let path = path_arg("path", &req.into_inner().path)?;
        self.blocking(move |e| e.remove_project(&path)).await?;
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
        Ok(Response::new(pb::IgnoreProjectResponse {}))
    }

    async fn list_projects(
        &self,
        _req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let (projects, problems) = self.list().await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects,
            problems,
        }))
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
}

impl DaemonService {
    async fn list(&self) -> Result<(Vec<pb::ProjectInfo>, Vec<pb::Problem>), Status> {
        let (summaries, problems) = self.blocking(|e| e.project_summaries()).await?;
        let projects = summaries
            .into_iter()
            .map(|s| {
                let count = |k| s.drift.get(&k).copied().unwrap_or(0);
                pb::ProjectInfo {
                    path: s.project.path.display().to_string(),
                    sources: s
                        .project
                        .sources
                        .iter()
                        .map(|&x| source(x).into())
                        .collect(),
                    missing: s.project.missing,
                    profile_roots: s.profile_roots.clone(),
                    deployments: s.deployments,
                    drift: Some(pb::DriftSummary {
                        in_sync: count(DriftKind::InSync),
                        modified: count(DriftKind::Modified),
                        outdated: count(DriftKind::Outdated),
                        conflict: count(DriftKind::Conflict),
                        removed: count(DriftKind::Removed),
                        added: count(DriftKind::Added),
                        missing: count(DriftKind::Missing),
                        error: count(DriftKind::Error),
                    }),
                    ignored: s.project.ignored,
                }
            })
            .collect();
        Ok((projects, problems.into_iter().map(problem).collect()))
    }
}

//! The gRPC layer: generated types stay here, the engine's domain types stay out.
//!
//! [`DaemonService`] implements `skillmeat.daemon.v1.SkillmeatDaemon` over an [`Engine`]:
//! each RPC validates its arguments, runs the engine on the blocking pool and converts
//! the result; engine errors become statuses with the right code in one place
//! ([`status_of`]). [`check_peer`] admits only callers with the daemon's own uid.

mod history;
mod ops;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use crate::drift::DriftKind;
use crate::engine::{ArtifactReport, Engine, EngineError};
use crate::formats::Problem;
use crate::formats::collection::collections_dir;
use crate::journal::{ChangedSide, Event, EventKind};
use crate::live::{Live, State, SyncError};
use crate::projects::Source;

/// The generated protocol types and stubs.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("skillmeat.daemon.v1");

    /// Encoded descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("skillmeat_descriptor");
}

pub use crate::protocol::PROTOCOL_VERSION;

/// Default period of `Watch` heartbeats.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Journal events read per page while replaying.
const REPLAY_PAGE: usize = 512;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct DaemonService {
    live: Arc<Live>,
    shutdown: CancellationToken,
}

impl DaemonService {
    /// A service over the live state; the `Shutdown` RPC cancels `shutdown`.
    pub fn new(live: Arc<Live>, shutdown: CancellationToken) -> Self {
        DaemonService { live, shutdown }
    }

    /// Runs `f` on the blocking pool with the engine.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let engine = Arc::clone(self.live.engine());
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

/// The protocol form of a report; `collections` is SkillMeat's collections folder.
fn artifact(a: ArtifactReport, collections: &Path) -> pb::ArtifactDrift {
    let collection_path = a
        .collection_path
        .as_ref()
        .map(|rel| {
            collections
                .join(&a.collection)
                .join(rel)
                .display()
                .to_string()
        })
        .unwrap_or_default();
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
        collection_path,
    }
}

fn sync_status(e: SyncError) -> Status {
    match e {
        SyncError::Timeout(_) => Status::deadline_exceeded(e.to_string()),
        SyncError::ShuttingDown => Status::unavailable(e.to_string()),
    }
}

fn event_kind(k: EventKind) -> pb::EventKind {
    match k {
        EventKind::DriftChanged => pb::EventKind::DriftChanged,
        EventKind::HashChanged => pb::EventKind::HashChanged,
        EventKind::DeploymentAdded => pb::EventKind::DeploymentAdded,
        EventKind::DeploymentRemoved => pb::EventKind::DeploymentRemoved,
        EventKind::Unreadable => pb::EventKind::Unreadable,
        EventKind::InvalidFile => pb::EventKind::InvalidFile,
        EventKind::RootPolling => pb::EventKind::RootPolling,
    }
}

fn changed_side(c: ChangedSide) -> pb::ChangedSide {
    match c {
        ChangedSide::None => pb::ChangedSide::None,
        ChangedSide::Collection => pb::ChangedSide::Collection,
        ChangedSide::Project => pb::ChangedSide::Project,
        ChangedSide::Both => pb::ChangedSide::Both,
        ChangedSide::Record => pb::ChangedSide::Record,
    }
}

fn event(e: &Event) -> pb::DriftEvent {
    let drift = |k: Option<DriftKind>| k.map_or(pb::DriftType::Unspecified, drift_type).into();
    pb::DriftEvent {
        cursor: e.cursor,
        time_unix_ms: e.time_ms,
        kind: event_kind(e.kind).into(),
        project: e.project.clone(),
        profile_root: e.profile_root.clone(),
        name: e.name.clone(),
        artifact_type: e.artifact_type.clone(),
        old_drift: drift(e.old_drift),
        new_drift: drift(e.new_drift),
        deployed_sha: e.deployed_sha.clone(),
        collection_sha: e.collection_sha.clone(),
        project_sha: e.project_sha.clone(),
        recommendation: e.recommendation.clone(),
        changed_side: changed_side(e.changed).into(),
        message: e.message.clone(),
        operation: e.operation.clone(),
    }
}

/// What a `Watch` subscriber asked to see.
#[derive(Debug, Clone, Default)]
struct Filter {
    projects: Vec<PathBuf>,
    types: Vec<String>,
    drift: Vec<DriftKind>,
}

impl Filter {
    #[allow(clippy::result_large_err)]
    fn from_request(req: &pb::WatchRequest) -> Result<Filter, Status> {
        let projects = req
            .projects
            .iter()
            .map(|p| path_arg("projects", p).map(|p| crate::engine::canonical(&p)))
            .collect::<Result<_, _>>()?;
        let drift = req
            .drift_types
            .iter()
            .map(|&t| match pb::DriftType::try_from(t) {
                Ok(pb::DriftType::InSync) => Ok(DriftKind::InSync),
                Ok(pb::DriftType::Modified) => Ok(DriftKind::Modified),
                Ok(pb::DriftType::Outdated) => Ok(DriftKind::Outdated),
                Ok(pb::DriftType::Conflict) => Ok(DriftKind::Conflict),
                Ok(pb::DriftType::Removed) => Ok(DriftKind::Removed),
                Ok(pb::DriftType::Added) => Ok(DriftKind::Added),
                Ok(pb::DriftType::Missing) => Ok(DriftKind::Missing),
                Ok(pb::DriftType::Error) => Ok(DriftKind::Error),
                _ => Err(Status::invalid_argument(format!("unknown drift type {t}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            projects,
            types: req.artifact_types.clone(),
            drift,
        })
    }

    fn event(&self, e: &Event) -> bool {
        let project_ok = self.projects.is_empty()
            || self
                .projects
                .iter()
                .any(|p| p.as_os_str() == e.project.as_str());
        let type_ok = self.types.is_empty()
            || e.artifact_type.is_empty()
            || self.types.contains(&e.artifact_type);
        let drift_ok = matches!(e.kind, EventKind::InvalidFile | EventKind::RootPolling)
            || crate::live::drift_matches(&self.drift, e.old_drift, e.new_drift);
        project_ok && type_ok && drift_ok
    }

    fn report(&self, r: &ArtifactReport) -> bool {
        (self.projects.is_empty() || self.projects.contains(&r.project))
            && (self.types.is_empty() || self.types.contains(&r.artifact_type))
            && crate::live::drift_matches(&self.drift, None, Some(r.kind))
    }
}

fn resync(state: &State, filter: &Filter, reason: &str, collections: &Path) -> pb::WatchResponse {
    pb::WatchResponse {
        message: Some(pb::watch_response::Message::Resync(pb::Resync {
            cursor: state.cursor,
            artifacts: state
                .all()
                .filter(|r| filter.report(r))
                .cloned()
                .map(|a| artifact(a, collections))
                .collect(),
            reason: reason.to_string(),
        })),
    }
}

fn event_message(e: &Event) -> pb::WatchResponse {
    pb::WatchResponse {
        message: Some(pb::watch_response::Message::Event(event(e))),
    }
}

fn heartbeat(cursor: u64) -> pb::WatchResponse {
    pb::WatchResponse {
        message: Some(pb::watch_response::Message::Heartbeat(pb::Heartbeat {
            cursor,
        })),
    }
}

/// Feeds one `Watch` subscriber: replay, then live events, resyncs and heartbeats. Ends
/// when the subscriber goes away or the daemon shuts down.
async fn feed(
    live: Arc<Live>,
    mut sub: broadcast::Receiver<Arc<Event>>,
    since: Option<u64>,
    filter: Filter,
    period: Duration,
    tx: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    shutdown: CancellationToken,
) {
    let store = live.engine().store().clone();
    let collections = collections_dir(&live.engine().paths().skillmeat_home);
    let now = live.with_state(|s| s.cursor);
    let mut last = now;
    if let Some(since) = since {
        let first = store.first_cursor().ok().flatten();
        let expired = since > now || first.map_or(since < now, |f| since + 1 < f);
        if expired {
            let msg = live.with_state(|s| {
                last = s.cursor;
                resync(s, &filter, "cursor_expired", &collections)
            });
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
        } else {
            let mut after = since;
            while after < now {
                let page = match store.events_after(after, REPLAY_PAGE) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                };
                if page.is_empty() {
                    break;
                }
                for e in page.iter().filter(|e| e.cursor <= now) {
                    if filter.event(e) && tx.send(Ok(event_message(e))).await.is_err() {
                        return;
                    }
                }
                after = page.last().map_or(now, |e| e.cursor);
            }
        }
    }
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tx.closed() => return,
            _ = beat.tick() => heartbeat(last),
            r = sub.recv() => match r {
                Ok(e) if e.cursor <= last => continue,
                Ok(e) => {
                    last = e.cursor;
                    if !filter.event(&e) {
                        continue;
                    }
                    event_message(&e)
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "a Watch subscriber fell behind; resyncing it");
                    live.with_state(|s| {
                        last = s.cursor;
                        resync(s, &filter, "lagged", &collections)
                    })
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(Ok(msg)).await.is_err() {
            return;
        }
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
        let (totals, store_bytes, inotify_watches) = self
            .blocking(|e| {
                let watches = crate::watcher::inotify_watches();
                Ok((e.totals()?, e.store().size_on_disk(), watches))
            })
            .await?;
        let history = self.history_stats().await?;
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
            problems: problems.into_iter().map(problem).collect(),
            watched_roots,
            polled_roots,
            cursor,
            journal_first_cursor: store.first_cursor().ok().flatten().unwrap_or(0),
            journal_events: store.journal_len() as u64,
            history: Some(history),
            store_bytes,
            inotify_watches,
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
        if req.sync {
            self.live.sync().await.map_err(sync_status)?;
        }
        let (cursor, reports, problems) = self
            .live
            .drift(project.as_deref(), req.include_in_sync)
            .map_err(status_of)?;
        let collections = collections_dir(&self.live.engine().paths().skillmeat_home);
        Ok(Response::new(pb::GetDriftResponse {
            artifacts: reports
                .into_iter()
                .map(|a| artifact(a, &collections))
                .collect(),
            problems: problems.into_iter().map(problem).collect(),
            cursor,
        }))
    }

    async fn add_project(
        &self,
        req: Request<pb::AddProjectRequest>,
    ) -> Result<Response<pb::AddProjectResponse>, Status> {
        let path = path_arg("path", &req.into_inner().path)?;
        let added = self.blocking(move |e| e.add_project(&path)).await?;
        self.live.refresh_projects().await.map_err(sync_status)?;
        let project = self
            .list()
            .0
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
        self.live.refresh_projects().await.map_err(sync_status)?;
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
        self.live.refresh_projects().await.map_err(sync_status)?;
        Ok(Response::new(pb::IgnoreProjectResponse {}))
    }

    async fn list_projects(
        &self,
        _req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let (projects, problems) = self.list();
        Ok(Response::new(pb::ListProjectsResponse {
            projects,
            problems,
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = req.into_inner();
        let filter = Filter::from_request(&req)?;
        if req.sync {
            self.live.sync().await.map_err(sync_status)?;
        }
        let period = match req.heartbeat_ms {
            0 => HEARTBEAT,
            ms => Duration::from_millis(u64::from(ms).max(50)),
        };
        // Subscribe before reading the cursor, so no event falls between replay and live.
        let sub = self.live.subscribe();
        let (tx, rx) = mpsc::channel(self.live.subscriber_buffer());
        tokio::spawn(feed(
            Arc::clone(&self.live),
            sub,
            req.since_cursor,
            filter,
            period,
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
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
}

impl DaemonService {
    fn list(&self) -> (Vec<pb::ProjectInfo>, Vec<pb::Problem>) {
        self.live.with_state(|s| {
            let projects = s
                .projects
                .iter()
                .map(|k| {
                    let mut summary = pb::DriftSummary::default();
                    let mut deployments = 0;
                    for r in s.reports_of(Some(&k.path)) {
                        if r.kind != DriftKind::Added {
                            deployments += 1;
                        }
                        let slot = match r.kind {
                            DriftKind::InSync => &mut summary.in_sync,
                            DriftKind::Modified => &mut summary.modified,
                            DriftKind::Outdated => &mut summary.outdated,
                            DriftKind::Conflict => &mut summary.conflict,
                            DriftKind::Removed => &mut summary.removed,
                            DriftKind::Added => &mut summary.added,
                            DriftKind::Missing => &mut summary.missing,
                            DriftKind::Error => &mut summary.error,
                        };
                        *slot += 1;
                    }
                    let live = !k.missing && !k.ignored;
                    pb::ProjectInfo {
                        path: k.path.display().to_string(),
                        sources: k.sources.iter().map(|&x| source(x).into()).collect(),
                        missing: k.missing,
                        profile_roots: if live {
                            crate::formats::deployment::profile_roots(&k.path)
                        } else {
                            Vec::new()
                        },
                        deployments,
                        drift: Some(summary),
                        ignored: k.ignored,
                    }
                })
                .collect();
            (projects, s.problems.iter().cloned().map(problem).collect())
        })
    }
}

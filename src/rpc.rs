//! The gRPC layer: generated types stay here, the engine's domain types stay out.
//!
//! [`DaemonService`] implements `skillmeat.daemon.v1.SkillmeatDaemon` over the live state:
//! each RPC validates its arguments, runs the engine on the blocking pool and converts the
//! result. [`check_peer`] admits only callers with the daemon's own uid.
//!
//! Answers are fresh by default: a query about the current state first passes the live
//! sync barrier ([`Live::sync`]) unless its request sets `stale_ok`, and a write-back
//! returns only once the live state includes its own writes.
//!
//! - `service`: the trait impl, one method per RPC;
//! - `convert`: domain → protocol messages (drift reports, events, problems, projects);
//! - `watch`: the `Watch` stream (filter, replay, live events, resync, heartbeats);
//! - `status`: which `tonic::Status` each domain error answers with;
//! - `history`, `ops`, `notify`: the history, write-back and desktop notification
//!   handlers;
//! - `lazy`: services built on their first call (reflection).

mod convert;
mod history;
mod lazy;
mod notify;
mod ops;
mod service;
mod status;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

use crate::engine::{Engine, EngineError};
use crate::live::Live;
use crate::notifier::Notifier;

/// The generated protocol types and stubs, compiled once in the wire crate.
pub use lazy::Lazy;
pub use skillmeatd_proto::pb;

pub use skillmeatd_proto::PROTOCOL_VERSION;

/// The `SkillmeatDaemon` service (its RPC methods are in `service`): the live state it
/// answers from, the desktop notifier, and the token its `Shutdown` RPC cancels.
#[derive(Debug, Clone)]
pub struct DaemonService {
    live: Arc<Live>,
    notifier: Arc<Notifier>,
    shutdown: CancellationToken,
}

impl DaemonService {
    /// A service over the live state and the notifier; the `Shutdown` RPC cancels
    /// `shutdown`.
    pub fn new(live: Arc<Live>, notifier: Arc<Notifier>, shutdown: CancellationToken) -> Self {
        DaemonService {
            live,
            notifier,
            shutdown,
        }
    }

    /// Waits until every change made before the request is in the live state, unless the
    /// caller accepts a possibly stale answer.
    async fn fresh(&self, stale_ok: bool) -> Result<(), Status> {
        if stale_ok {
            return Ok(());
        }
        self.live.sync().await.map_err(status::sync)
    }

    /// As [`DaemonService::fresh`], and then waits for the history work found so far
    /// (queries of versions: new content is recorded a little after the drift shows it).
    async fn fresh_history(&self, stale_ok: bool) -> Result<(), Status> {
        if stale_ok {
            return Ok(());
        }
        self.live.sync_history().await.map_err(status::sync)
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
            .map_err(status::engine)
    }

    /// Fills in the projects' profile roots on the blocking pool (each is a read of the
    /// project's folder), outside the state's lock.
    async fn read_roots(
        &self,
        mut projects: Vec<pb::ProjectInfo>,
    ) -> Result<Vec<pb::ProjectInfo>, Status> {
        tokio::task::spawn_blocking(move || {
            convert::read_roots(&mut projects);
            projects
        })
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))
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

/// Names the daemon's version and protocol in the headers of an answer (every service's,
/// errors included), so clients compare them without a `Status` call of their own.
pub fn name_version(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    headers.insert(
        skillmeatd_proto::VERSION_HEADER,
        http::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    headers.insert(
        skillmeatd_proto::PROTOCOL_HEADER,
        http::HeaderValue::from(PROTOCOL_VERSION),
    );
    response
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

//! The `Watch` stream: a subscriber's filter, the replay from a cursor, then live events,
//! resyncs and heartbeats, fed through a bounded channel so a slow subscriber never slows
//! the daemon (it gets a `resync` instead). When the daemon shuts down, the stream ends
//! with `UNAVAILABLE` and the reason, and a subscriber that does not read never holds the
//! shutdown up.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::drift::DriftKind;
use crate::formats::collection::collections_dir;
use crate::live::{Live, State};
use crate::model::ArtifactReport;
use crate::model::{Event, EventKind};

use super::convert::{artifact, event};
use super::{DaemonService, path_arg, pb};

/// Default period of `Watch` heartbeats.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Journal events read per page while replaying.
const REPLAY_PAGE: usize = 512;

/// The stream a `Watch` call answers with.
pub(super) type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

impl DaemonService {
    /// Answers `Watch`: validates the filter, waits for the sync barrier (unless
    /// `stale_ok`), and
    /// spawns the task that feeds the subscriber until it goes away or the daemon stops.
    pub(super) async fn do_watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let req = req.into_inner();
        let filter = Filter::from_request(&req)?;
        self.fresh(req.stale_ok && !req.sync).await?;
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
            .map(|p| path_arg("projects", p).map(|p| crate::paths::canonical(&p)))
            .collect::<Result<_, _>>()?;
        let drift = req
            .drift_types
            .iter()
            .map(|&t| {
                DriftKind::from_wire(t)
                    .ok_or_else(|| Status::invalid_argument(format!("unknown drift type {t}")))
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
            && (self.types.is_empty() || self.types.iter().any(|t| *t == r.artifact_type))
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

/// What a subscriber is told when the daemon shuts down.
const SHUTTING_DOWN: &str = "skillmeatd is shutting down";

/// Sends `msg` to the subscriber; `false` when it went away or the daemon shuts down first
/// (the subscriber is then told why, if its buffer has room).
async fn send(
    tx: &mpsc::Sender<Result<pb::WatchResponse, Status>>,
    msg: Result<pb::WatchResponse, Status>,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        sent = tx.send(msg) => sent.is_ok(),
        () = shutdown.cancelled() => {
            closing(tx);
            false
        }
    }
}

/// Tells the subscriber the daemon is going away, without waiting for room.
fn closing(tx: &mpsc::Sender<Result<pb::WatchResponse, Status>>) {
    let _ = tx.try_send(Err(Status::unavailable(SHUTTING_DOWN)));
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
    let mut resyncs = live.resyncs();
    resyncs.borrow_and_update();
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
            if !send(&tx, Ok(msg), &shutdown).await {
                return;
            }
        } else {
            let mut after = since;
            while after < now {
                let page = match store.events_after(after, REPLAY_PAGE) {
                    Ok(p) => p,
                    Err(e) => {
                        // The journal cannot be read now: the full state instead.
                        tracing::info!(error = %e, "cannot replay the journal; resyncing a subscriber");
                        let msg = live.with_state(|s| {
                            last = s.cursor;
                            resync(s, &filter, "journal_unavailable", &collections)
                        });
                        if tx.send(Ok(msg)).await.is_err() {
                            return;
                        }
                        break;
                    }
                };
                if page.is_empty() {
                    break;
                }
                for e in page.iter().filter(|e| e.cursor <= now) {
                    if filter.event(e) && !send(&tx, Ok(event_message(e)), &shutdown).await {
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
            _ = shutdown.cancelled() => {
                closing(&tx);
                return;
            }
            _ = tx.closed() => return,
            _ = beat.tick() => heartbeat(last),
            Ok(()) = resyncs.changed() => {
                let reason = resyncs.borrow_and_update().1;
                live.with_state(|s| {
                    last = s.cursor;
                    resync(s, &filter, reason, &collections)
                })
            }
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
                Err(broadcast::error::RecvError::Closed) => {
                    closing(&tx);
                    return;
                }
            },
        };
        if !send(&tx, Ok(msg), &shutdown).await {
            return;
        }
    }
}

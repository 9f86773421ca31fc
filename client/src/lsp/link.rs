//! The language server's link to the daemon: connect, load the drift of every project,
//! follow `Watch`, and reconnect with backoff when the daemon goes away.
//!
//! [`run`] is one long-lived task; it sends [`Update`]s to the backend over a bounded
//! channel. Loading first (`GetDrift`, which answers with its event cursor) and then
//! watching from that cursor leaves no gap. An event makes the link fetch its project's
//! drift again (`GetDrift` answers from the daemon's memory in milliseconds) unless a
//! fetch already covered that cursor, so a burst of events costs one fetch; a `resync`
//! replaces everything. When the stream fails or ends, the link reports [`Update::Gone`]
//! once and retries with exponential backoff.
//!
//! The first connection starts the daemon when nothing answers, as every smctl command
//! does (`SKILLMEATD_NO_AUTOSTART` turns it off); reconnections never do, so a daemon the
//! user stopped stays stopped until they (or their service manager) start it again.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use skillmeatd_proto::paths::Paths;
use skillmeatd_proto::{connect, pb};

use crate::session::{self, Client};

/// Heartbeat period asked of the daemon (a dead connection is noticed by the transport
/// long before; heartbeats keep idle connections honest).
const HEARTBEAT_MS: u32 = 5_000;
/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the link tells the backend.
#[derive(Debug)]
pub enum Update {
    /// Connected: a client for queries and operations, and every project's drift.
    Connected {
        client: Client,
        artifacts: Vec<pb::ArtifactDrift>,
    },
    /// One project's drift, fetched again after an event.
    Project {
        project: String,
        artifacts: Vec<pb::ArtifactDrift>,
    },
    /// Everything, after a resync or an event that named no project.
    All(Vec<pb::ArtifactDrift>),
    /// The daemon is not answering; `first` is true on the first failure of an outage.
    Gone { reason: String, first: bool },
}

/// How the link connects.
#[derive(Debug, Clone)]
pub struct Options {
    pub paths: Paths,
    /// Start the daemon when nothing answers the first connection.
    pub autostart: bool,
}

/// The wait before reconnection attempt `attempt` (0-based): doubling from 100 ms to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF_MIN
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX)
}

async fn connect(options: &Options, first: bool) -> Result<Client, String> {
    if first && options.autostart {
        return session::open(&options.paths).await.map_err(|f| f.message);
    }
    let channel = connect::channel(&options.paths.socket)
        .await
        .map_err(|e| format!("no answer on {} ({e})", options.paths.socket.display()))?;
    let mut client = session::client(channel);
    client
        .status(pb::StatusRequest { stale_ok: true })
        .await
        .map_err(|s| s.message().to_string())?;
    Ok(client)
}

async fn drift(client: &mut Client, project: &str) -> Result<pb::GetDriftResponse, tonic::Status> {
    let req = pb::GetDriftRequest {
        project: project.to_string(),
        include_in_sync: true,
        sync: false,
        stale_ok: false,
    };
    match client.get_drift(req).await {
        Ok(r) => Ok(r.into_inner()),
        // A project forgotten since the event: it has no artifacts any more.
        Err(s) if s.code() == tonic::Code::NotFound && !project.is_empty() => {
            Ok(pb::GetDriftResponse::default())
        }
        Err(s) => Err(s),
    }
}

/// Runs until the backend goes away (its receiver is dropped).
pub async fn run(options: Options, tx: mpsc::Sender<Update>) {
    let mut attempt = 0u32;
    let mut first = true;
    let mut outage_reported = false;
    loop {
        let reason = match connect(&options, first).await {
            Ok(client) => {
                attempt = 0;
                outage_reported = false;
                match follow(client, &tx).await {
                    Ok(()) => return,
                    Err(reason) => reason,
                }
            }
            Err(reason) => reason,
        };
        first = false;
        let update = Update::Gone {
            reason,
            first: !outage_reported,
        };
        outage_reported = true;
        if tx.send(update).await.is_err() {
            return;
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

/// Loads, then follows the event stream. `Ok` when the backend went away; `Err` with the
/// reason when the daemon did.
async fn follow(mut client: Client, tx: &mpsc::Sender<Update>) -> Result<(), String> {
    let gone = |s: tonic::Status| format!("the daemon stopped answering ({})", s.message());
    let all = drift(&mut client, "").await.map_err(gone)?;
    let mut fresh: HashMap<String, u64> = HashMap::new();
    let mut fresh_all = all.cursor;
    let req = pb::WatchRequest {
        since_cursor: Some(all.cursor),
        heartbeat_ms: HEARTBEAT_MS,
        ..Default::default()
    };
    let mut stream = client.watch(req).await.map_err(gone)?.into_inner();
    let connected = Update::Connected {
        client: client.clone(),
        artifacts: all.artifacts,
    };
    if tx.send(connected).await.is_err() {
        return Ok(());
    }
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err("the daemon closed the connection".into()),
            Err(s) => return Err(gone(s)),
        };
        use pb::watch_response::Message;
        let update = match msg.message {
            Some(Message::Event(e)) if e.project.is_empty() => {
                if e.cursor <= fresh_all {
                    continue;
                }
                let r = drift(&mut client, "").await.map_err(gone)?;
                fresh_all = r.cursor;
                fresh.clear();
                Update::All(r.artifacts)
            }
            Some(Message::Event(e)) => {
                if e.cursor <= fresh_all.max(fresh.get(&e.project).copied().unwrap_or(0)) {
                    continue;
                }
                let r = drift(&mut client, &e.project).await.map_err(gone)?;
                fresh.insert(e.project.clone(), r.cursor);
                Update::Project {
                    project: e.project,
                    artifacts: r.artifacts,
                }
            }
            Some(Message::Resync(r)) => {
                fresh_all = r.cursor;
                fresh.clear();
                Update::All(r.artifacts)
            }
            Some(Message::Heartbeat(_)) | None => continue,
        };
        if tx.send(update).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(3200));
        assert_eq!(backoff(6), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(5));
    }
}

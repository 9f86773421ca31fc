//! What the worker and a notification backend ([`super::desktop`], [`super::macos`]) say
//! to each other, and the status both keep up to date for `smctl notify status`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::history::time;
use crate::notification::{Mute, Notice, Settings};

/// First wait before reconnecting; doubled after each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long one call to the notification server may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The key of `smctl notify test` notifications.
pub const TEST_KEY: &str = "test";

/// Worker → backend.
#[derive(Debug)]
pub enum EdgeCmd {
    Show(Notice),
    Close(String),
    /// Show now and say how it went.
    Test(Notice, oneshot::Sender<Result<u32, String>>),
}

/// Backend → worker.
#[derive(Debug)]
pub enum EdgeEvent {
    /// The person chose `action` on the notification of `key`.
    Action { key: String, action: String },
    /// The notification of `key` is gone (dismissed, expired, or the server went away).
    Closed(String),
}

/// The notification server in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub name: String,
    pub vendor: String,
    pub version: String,
    pub spec_version: String,
}

/// The last notification shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub time_ms: i64,
    pub key: String,
    pub summary: String,
    pub replaced: bool,
}

/// Everything `smctl notify status` shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// `freedesktop` or `macos`.
    pub backend: &'static str,
    pub enabled: bool,
    /// `notify.desktop = true`: a missing server needs action.
    pub required: bool,
    pub server: Option<ServerInfo>,
    pub capabilities: Vec<String>,
    /// Why notifications cannot be shown now (None when they can).
    pub problem: Option<String>,
    pub problem_since_ms: i64,
    /// When the backend tries again (ms since the epoch; 0 = not waiting).
    pub retry_at_ms: i64,
    pub mutes: Vec<Mute>,
    pub quiet_hours: String,
    pub in_quiet_hours: bool,
    /// Changes waiting for quiet hours to end.
    pub held: u64,
    pub last: Option<Shown>,
    /// Notifications shown (new) and updated in place.
    pub shown: u64,
    pub updated: u64,
    /// Dropped because the queue to a slow server was full.
    pub overflow: u64,
    /// Drift events missed because the worker fell behind (then re-read from the state).
    pub lagged: u64,
    /// Not shown because no server was reachable.
    pub unsent: u64,
    /// What the last action did, or why it failed.
    pub last_action: String,
}

impl Report {
    pub fn new(settings: &Settings) -> Report {
        Report {
            backend: if cfg!(target_os = "macos") {
                "macos"
            } else {
                "freedesktop"
            },
            enabled: settings.enabled(),
            required: settings.desktop == Some(true),
            server: None,
            capabilities: Vec::new(),
            problem: None,
            problem_since_ms: 0,
            retry_at_ms: 0,
            mutes: Vec::new(),
            quiet_hours: settings
                .quiet_hours
                .map(|q| q.to_string())
                .unwrap_or_default(),
            in_quiet_hours: false,
            held: 0,
            last: None,
            shown: 0,
            updated: 0,
            overflow: 0,
            lagged: 0,
            unsent: 0,
            last_action: String::new(),
        }
    }
}

/// The report as shared between the worker, the backend and the RPC layer.
pub type SharedReport = Arc<Mutex<Report>>;

/// Runs `f` on the report.
pub fn update<T>(report: &SharedReport, f: impl FnOnce(&mut Report) -> T) -> T {
    f(&mut report.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Records the current problem; it is logged once, not at every retry.
pub fn problem(report: &SharedReport, message: String, retry_in: Option<Duration>) {
    update(report, |r| {
        if r.problem.as_deref() != Some(message.as_str()) {
            tracing::warn!("desktop notifications: {message}; retrying with backoff");
            r.problem = Some(message);
            r.problem_since_ms = time::now_ms();
        }
        r.server = None;
        r.capabilities.clear();
        r.retry_at_ms = retry_in.map_or(0, |d| time::now_ms() + d.as_millis() as i64);
    });
}

/// Records that a server answers.
pub fn available(report: &SharedReport, info: ServerInfo, capabilities: Vec<String>) {
    update(report, |r| {
        if r.problem.take().is_some() || r.server.is_none() {
            tracing::info!(
                server = %info.name,
                version = %info.version,
                capabilities = ?capabilities,
                "desktop notifications: server available"
            );
        }
        r.server = Some(info);
        r.capabilities = capabilities;
        r.retry_at_ms = 0;
    });
}

/// Records a notification the server accepted.
pub fn shown(report: &SharedReport, notice: &Notice, replaced: bool) {
    update(report, |r| {
        if replaced {
            r.updated += 1;
        } else {
            r.shown += 1;
        }
        r.last = Some(Shown {
            time_ms: time::now_ms(),
            key: notice.key.clone(),
            summary: notice.summary.clone(),
            replaced,
        });
    });
}

/// Exponential backoff between reconnection attempts.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The wait before the next attempt (and doubles the one after).
    pub fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..12).map(|_| b.next().as_secs()).collect();
        assert_eq!(&waits[..5], [1, 2, 4, 8, 16]);
        assert_eq!(waits[11], 300);
        b.reset();
        assert_eq!(b.next(), BACKOFF_MIN);
    }

    #[test]
    fn a_problem_is_recorded_once_until_it_changes() {
        let r: SharedReport = Arc::new(Mutex::new(Report::new(&Settings::default())));
        problem(&r, "no bus".into(), Some(Duration::from_secs(1)));
        let since = update(&r, |r| r.problem_since_ms);
        problem(&r, "no bus".into(), Some(Duration::from_secs(2)));
        assert_eq!(update(&r, |r| r.problem_since_ms), since);
        available(&r, ServerInfo::default(), vec!["actions".into()]);
        assert!(update(&r, |r| r.problem.is_none() && r.server.is_some()));
    }
}

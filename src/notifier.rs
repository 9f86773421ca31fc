//! Desktop notifications, the running part: drift events and the operations log in,
//! notifications on the person's desktop out, actions back.
//!
//! Three tasks, joined by bounded channels, none on the drift path:
//! - the **worker** ([`worker`]) subscribes to the live events (a broadcast: the live
//!   task never waits for it; when it falls behind, the lag is counted and the current
//!   state re-read) and to the operations log, runs the pure [`Policy`], and hands what
//!   is due to the edge through a queue of `notify.queue_capacity` entries: when a slow
//!   server lets it fill up, notifications are dropped and counted (`overflow`), never
//!   waited for;
//! - the **edge** ([`desktop`] on Linux and the BSDs: the freedesktop Notifications API on
//!   the session bus; [`macos`] on macOS) owns the connection, retries with backoff,
//!   reports its problem once (log, `smctl notify status`, `smctl doctor`) and turns
//!   `ActionInvoked` / `NotificationClosed` into events for the worker;
//! - **actions** ([`actions`]) run on their own tasks: "Pull", "Push" and "Merge" call the
//!   same [`crate::operations`] code the RPCs call (SkillMeat's lock, a safety snapshot,
//!   an entry in `smctl audit`); "Show diff" writes a unified diff file under the state
//!   directory and opens it with `notify.show_diff_with` (`xdg-open`, `open` on macOS);
//!   "Mute project" mutes it for `notify.action_mute_secs`.
//!
//! [`Notifier::new`] gives the handle the RPC layer holds and the worker, which
//! [`crate::daemon::run`] runs under the supervisor; the worker follows `[notify]` in the
//! configuration in force ([`crate::config::Shared`]). The backend is the worker's own
//! task: when it ends unexpectedly (a panic), the worker fails, and the supervisor stops
//! the daemon on the one shutdown path.

mod actions;
#[cfg(not(target_os = "macos"))]
mod desktop;
mod edge;
#[cfg(target_os = "macos")]
mod macos;
mod worker;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::history::time;
use crate::live::Live;
use crate::notification::{Mute, Settings};
use crate::store::{Store, StoreError};

pub use edge::{Report, ServerInfo, Shown};

/// Requests to the worker.
#[derive(Debug)]
enum Control {
    /// The stored mutes changed.
    Mutes(oneshot::Sender<()>),
    Test(oneshot::Sender<Result<u32, NotifyError>>),
}

/// Why a notification request could not be done.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("desktop notifications are off (notify.desktop = false in daemon.toml)")]
    Disabled,
    #[error("no notification was shown: {0}")]
    Unavailable(String),
    #[error("{} is muted in daemon.toml (notify.mute); remove it there", .0.display())]
    MutedByConfig(PathBuf),
    #[error("{} is not an absolute path", .0.display())]
    NotAbsolute(PathBuf),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The handle of the running notifier.
#[derive(Debug)]
pub struct Notifier {
    control: mpsc::Sender<Control>,
    report: Arc<Mutex<Report>>,
    store: Store,
}

impl Notifier {
    /// The handle, and the worker to run until `shutdown` (it starts the backend when
    /// notifications are on). Subscribes to `live` at once, so the events of the first
    /// scan (changes made while the daemon was stopped) are seen.
    ///
    /// # Errors
    /// The store cannot be watched or read.
    pub fn new(
        live: Arc<Live>,
        shutdown: CancellationToken,
    ) -> Result<
        (
            Arc<Notifier>,
            impl std::future::Future<Output = Result<(), String>> + Send + 'static,
        ),
        NotifyError,
    > {
        let store = live.engine().store().clone();
        let settings: Settings = live.engine().config().notify.clone();
        let (control, rx) = mpsc::channel(16);
        let report = Arc::new(Mutex::new(Report::new(&settings)));
        let w = worker::Worker::new(Arc::clone(&live), settings, Arc::clone(&report))?;
        let notifier = Arc::new(Notifier {
            control,
            report,
            store,
        });
        Ok((notifier, w.run(rx, shutdown)))
    }

    /// What the notifier knows: server, capabilities, mutes, the last notification,
    /// counters, the current problem.
    pub fn status(&self) -> Report {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Shows a test notification now, whatever the policy says; returns the server's id.
    ///
    /// # Errors
    /// Notifications are off, or the server is unreachable (the reason is given).
    pub async fn test(&self) -> Result<u32, NotifyError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Test(tx))
            .await
            .map_err(|_| NotifyError::ShuttingDown)?;
        rx.await.map_err(|_| NotifyError::ShuttingDown)?
    }

    /// Mutes `path` (a project, or a folder of projects) until `until_ms` (None: until
    /// unmuted). Stored, so it survives restarts.
    ///
    /// # Errors
    /// The path is relative; the store failed.
    pub async fn mute(&self, path: PathBuf, until_ms: Option<i64>) -> Result<(), NotifyError> {
        if !path.is_absolute() {
            return Err(NotifyError::NotAbsolute(path));
        }
        let store = self.store.clone();
        let mute = Mute {
            path,
            until_ms,
            from_config: false,
        };
        blocking(move || store.put_mute(&mute)).await?;
        self.mutes_changed().await
    }

    /// Removes the mute of `path` made with [`Notifier::mute`]; whether there was one.
    ///
    /// # Errors
    /// The path is muted by `daemon.toml` (and not by smctl); the store failed.
    pub async fn unmute(&self, path: PathBuf) -> Result<bool, NotifyError> {
        let store = self.store.clone();
        let p = path.clone();
        let had = blocking(move || store.remove_mute(&p)).await?;
        self.mutes_changed().await?;
        let by_config = self
            .status()
            .mutes
            .iter()
            .any(|m| m.from_config && m.path == path);
        if !had && by_config {
            return Err(NotifyError::MutedByConfig(path));
        }
        Ok(had)
    }

    async fn mutes_changed(&self) -> Result<(), NotifyError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Mutes(tx))
            .await
            .map_err(|_| NotifyError::ShuttingDown)?;
        rx.await.map_err(|_| NotifyError::ShuttingDown)
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, NotifyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| NotifyError::ShuttingDown)?
        .map_err(NotifyError::from)
}

/// The stored mutes in force now.
fn stored_mutes(store: &Store) -> Result<Vec<Mute>, StoreError> {
    store.mutes(time::now_ms())
}

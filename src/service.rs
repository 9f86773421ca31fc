//! Living under a service manager: readiness, watchdog and socket activation.
//!
//! systemd runs `skillmeatd run` as a `Type=notify` unit (see `systemd/skillmeatd.service`):
//! the daemon says `READY=1` once its socket answers, `STOPPING=1` the moment shutdown
//! begins, and `WATCHDOG=1` at half the interval the manager asked for (`WATCHDOG_USEC`),
//! from a task on the daemon's runtime, so a wedged runtime stops the pings and gets the
//! daemon restarted. With `skillmeatd.socket` the manager owns the listening socket and
//! hands it over (`LISTEN_FDS`); the daemon then serves on it and leaves the socket file
//! alone on exit. Outside systemd (launchd, a terminal, `skillmeatd start`) none of the
//! variables are set and every function here does nothing.
//!
//! [`crate::daemon::run`] calls [`listener`] and [`announce_ready`]; nothing else does.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::daemon::{DaemonError, bind_socket};

/// Where the listening socket came from, which decides who removes its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOwner {
    /// The daemon bound it and removes the file on exit.
    Daemon,
    /// The service manager passed it in (socket activation) and keeps the file.
    ServiceManager,
}

/// The socket to serve on: the one the service manager passed in, if any, else a fresh
/// one bound at `socket` by [`bind_socket`].
///
/// # Errors
/// The passed descriptor is not a listening Unix socket, or binding failed.
pub fn listener(socket: &Path) -> Result<(UnixListener, SocketOwner), DaemonError> {
    let invalid = |problem: String| DaemonError::Insecure {
        path: socket.to_path_buf(),
        problem,
    };
    let fds: Vec<_> = sd_notify::listen_fds()
        .map_err(|e| invalid(format!("socket activation: {e}")))?
        .collect();
    let Some(&fd) = fds.first() else {
        return Ok((bind_socket(socket)?, SocketOwner::Daemon));
    };
    if fds.len() > 1 {
        tracing::warn!(
            count = fds.len(),
            "several sockets passed in; serving on the first"
        );
    }
    // SAFETY: LISTEN_PID names this process, so the manager passed `fd` to us alone and
    // nothing else in the process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let std_listener = std::os::unix::net::UnixListener::from(owned);
    let addr = std_listener.local_addr().map_err(|e| {
        invalid(format!(
            "socket activation: descriptor {fd} is not a Unix socket ({e})"
        ))
    })?;
    let passed: Option<PathBuf> = addr.as_pathname().map(Path::to_path_buf);
    if passed.as_deref() != Some(socket) {
        tracing::warn!(
            passed = ?passed,
            expected = %socket.display(),
            "the service manager's socket is not where clients look; check ListenStream="
        );
    }
    std_listener
        .set_nonblocking(true)
        .map_err(|e| invalid(format!("socket activation: {e}")))?;
    let listener = UnixListener::from_std(std_listener)
        .map_err(|e| invalid(format!("socket activation: {e}")))?;
    tracing::info!(socket = ?passed, "serving on the socket passed by the service manager");
    Ok((listener, SocketOwner::ServiceManager))
}

/// Tells the service manager the daemon serves, then keeps its watchdog fed until
/// `shutdown` is cancelled, when it says `STOPPING=1`. Must be called on the runtime.
pub fn announce_ready(socket: &Path, shutdown: CancellationToken) {
    let status = format!("serving on {}", socket.display());
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    let period = sd_notify::watchdog_enabled().map(ping_period);
    if let Some(p) = period {
        tracing::info!(
            every_ms = p.as_millis() as u64,
            "feeding the service manager's watchdog"
        );
    }
    tokio::spawn(async move {
        if let Some(period) = period {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => send(&[NotifyState::Watchdog]),
                    _ = shutdown.cancelled() => break,
                }
            }
        } else {
            shutdown.cancelled().await;
        }
        announce_stopping();
    });
}

/// Tells the service manager that shutdown has begun. Sent by the task above the moment
/// shutdown starts, and again on the shutdown path itself once RPCs have drained, so it is
/// sent even when the runtime stops before the task runs (a repeat is harmless).
pub fn announce_stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Half the watchdog interval (as `sd_watchdog_enabled(3)` advises), never zero.
fn ping_period(interval: Duration) -> Duration {
    (interval / 2).max(Duration::from_millis(1))
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("could not notify the service manager: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_twice_per_interval() {
        assert_eq!(
            ping_period(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(ping_period(Duration::ZERO), Duration::from_millis(1));
    }
}

//! Living under a service manager: readiness, stopping and the watchdog.
//!
//! systemd runs `skillmeatd run` as a `Type=notify` unit (see `systemd/skillmeatd.service`):
//! the daemon says `READY=1` once its socket answers, `STOPPING=1` the moment shutdown
//! begins, and `WATCHDOG=1` at half the interval the manager asked for (`WATCHDOG_USEC`),
//! from a task on the daemon's runtime, so a wedged runtime stops the pings and gets the
//! daemon restarted. (A socket the manager passes in is taken by [`crate::socket`].) Outside
//! systemd (launchd, a terminal, `skillmeatd start`) none of the variables are set and every
//! function here does nothing.
//!
//! [`crate::daemon::run`] calls [`announce_ready`] and [`announce_stopping`] and runs
//! [`watchdog`] among its supervised tasks; nothing else does.

use std::path::Path;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Tells the service manager the daemon serves.
pub fn announce_ready(socket: &Path) {
    let status = format!("serving on {}", socket.display());
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// The watchdog task: keeps the service manager's watchdog fed (when it asked for one)
/// until `shutdown` is cancelled, then says `STOPPING=1` at once.
pub async fn watchdog(shutdown: CancellationToken) {
    let period = sd_notify::watchdog_enabled().map(ping_period);
    if let Some(period) = period {
        tracing::info!(
            every_ms = period.as_millis() as u64,
            "feeding the service manager's watchdog"
        );
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
}

/// Tells the service manager that shutdown has begun. Sent by [`watchdog`] the moment
/// shutdown starts, and again on the shutdown path itself once the tasks have ended (a
/// repeat is harmless).
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

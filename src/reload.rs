//! Reloading `daemon.toml` on SIGHUP (`systemctl --user reload skillmeatd`), without a
//! restart and without dropping `Watch` subscribers.
//!
//! [`run`] waits for SIGHUP, reads and validates the file, and hands the result to the live
//! task ([`Live::reload`]), which applies what can change while running: discovery (the
//! projects are listed again), the watch timings, polling, and the journal limits;
//! `[notify]` goes to the [`Notifier`]. Queue
//! sizes cannot change without a restart; they keep their values and the log says so. A
//! file that cannot be used is logged with its line, the running configuration stays, and
//! the problem shows in `smctl status` until a reload succeeds.
//!
//! [`crate::daemon::run`] installs the signal handler before the socket opens (SIGHUP's
//! default action would kill the daemon) and spawns [`run`].

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::Signal;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::formats::Problem;
use crate::live::Live;
use crate::notifier::Notifier;

/// Reloads the configuration on every SIGHUP received on `hangups`, until `shutdown`.
pub async fn run(
    live: Arc<Live>,
    notifier: Arc<Notifier>,
    mut hangups: Signal,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                tracing::info!("SIGHUP received: reloading the configuration");
                reload(&live, &notifier).await;
            }
        }
    }
}

/// One reload: read, compare, hand over, log.
async fn reload(live: &Live, notifier: &Notifier) {
    let home = live.engine().paths().skillmeat_home.clone();
    let file: PathBuf = home.join(config::FILE_NAME);
    let loaded = tokio::task::spawn_blocking(move || Config::load(&home))
        .await
        .unwrap_or_else(|e| {
            Err(config::ConfigError {
                path: file.clone(),
                message: format!("reading failed: {e}"),
            })
        });
    let handed = match loaded {
        Ok(new) => {
            let change = live.engine().config().reload(&new);
            for name in &change.needs_restart {
                tracing::warn!(
                    setting = name,
                    "{name} changed; it needs a restart to take effect (keeping the running value)"
                );
            }
            let notify = change.effective.notify.clone();
            let handed = live.reload(Ok(change.effective)).await;
            notifier.reload(notify).await;
            if handed.is_ok() {
                tracing::info!(applied = ?change.applied, "configuration reloaded");
            }
            handed
        }
        Err(e) => {
            tracing::error!("{e}; keeping the running configuration");
            live.reload(Err(Problem::new(
                &e.path,
                format!(
                    "{} (not reloaded; the daemon keeps its previous configuration)",
                    e.message
                ),
            )))
            .await
        }
    };
    if let Err(e) = handed {
        tracing::debug!("reload not applied: {e}");
    }
}

//! Reloading `daemon.toml` on SIGHUP (`systemctl --user reload skillmeatd`), without a
//! restart and without dropping `Watch` subscribers.
//!
//! [`run`] owns the configuration in force: on each SIGHUP it reads and validates the file,
//! compares it key by key with the running configuration ([`Config::reload`]) and publishes
//! the result on the channel every consumer reads ([`config::Effective`]). Keys that apply
//! live take effect from there: discovery runs again, the live task re-arms its timings and
//! polling, the journal limits, history upkeep (automatic snapshot interval, retention) and
//! import limits are read where they are used. Keys that size queues made at start keep
//! their running values; each is named in the log and in `smctl status` until a restart. A
//! file that cannot be used is logged with its line, the running configuration stays, and
//! the problem shows in `smctl status` until a reload succeeds.
//!
//! [`crate::daemon::run`] installs the signal handler before the socket opens (SIGHUP's
//! default action would kill the daemon) and runs [`run`] among its supervised tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::Signal;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, Effective};
use crate::formats::Problem;

/// Reloads `<home>/daemon.toml` on every SIGHUP received on `hangups` and publishes it on
/// `config`, until `shutdown`.
pub async fn run(
    home: PathBuf,
    config: config::Publisher,
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
                reload(&home, &config).await;
            }
        }
    }
}

/// One reload: read, compare, publish, log.
async fn reload(home: &Path, publisher: &config::Publisher) {
    let file: PathBuf = home.join(config::FILE_NAME);
    let loaded = {
        let home = home.to_path_buf();
        tokio::task::spawn_blocking(move || Config::load(&home))
            .await
            .unwrap_or_else(|e| {
                Err(config::ConfigError {
                    path: file.clone(),
                    message: format!("reading failed: {e}"),
                })
            })
    };
    let running = Arc::clone(&publisher.borrow().config);
    let effective = match loaded {
        Ok(new) => {
            let change = running.reload(&new);
            let mut problems = Vec::new();
            for key in &change.needs_restart {
                tracing::warn!(
                    setting = key,
                    "{key} changed; it needs a restart to take effect (keeping the running value)"
                );
                let value = config::value_of(&change.effective, key).unwrap_or_default();
                problems.push(Problem::new(
                    &file,
                    format!(
                        "{key} changed; it needs a restart to take effect (running with {value})"
                    ),
                ));
            }
            tracing::info!(
                applied = ?change.applied,
                needs_restart = ?change.needs_restart,
                "configuration reloaded"
            );
            Effective {
                config: Arc::new(change.effective),
                problems,
            }
        }
        Err(e) => {
            tracing::error!("{e}; keeping the running configuration");
            Effective {
                config: running,
                problems: vec![Problem::new(
                    &e.path,
                    format!(
                        "{} (not reloaded; the daemon keeps its previous configuration)",
                        e.message
                    ),
                )],
            }
        }
    };
    publisher.send_replace(Arc::new(effective));
}

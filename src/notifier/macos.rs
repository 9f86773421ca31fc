//! macOS: the system's notification API through notify-rust (Notification Center).
//!
//! The API has no in-place updates, no closing and no actions for a process that is not
//! an app bundle, so every notice is shown as a new notification and actions are not
//! offered (`smctl notify status` lists no capabilities). The daemon must run in the
//! person's GUI session (`launchctl bootstrap gui/$UID`, which `smctl service install`
//! does) for Notification Center to accept it.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::edge::{EdgeCmd, EdgeEvent, ServerInfo, SharedReport, available, problem, shown};

/// Serves `cmds` until `shutdown`.
pub async fn run(
    mut cmds: mpsc::Receiver<EdgeCmd>,
    _events: mpsc::Sender<EdgeEvent>,
    report: SharedReport,
    shutdown: CancellationToken,
) {
    available(
        &report,
        ServerInfo {
            name: "Notification Center".into(),
            vendor: "Apple".into(),
            ..ServerInfo::default()
        },
        vec!["body".into()],
    );
    loop {
        let cmd = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = cmds.recv() => match c { Some(c) => c, None => return },
        };
        let (notice, reply) = match cmd {
            EdgeCmd::Close(_) => continue,
            EdgeCmd::Show(n) => (n, None),
            EdgeCmd::Test(n, tx) => (n, Some(tx)),
        };
        let n = notice.clone();
        let sent = tokio::task::spawn_blocking(move || {
            notify_rust::Notification::new()
                .appname("skillmeatd")
                .summary(&n.summary)
                .body(&n.body)
                .show()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match sent {
            Ok(()) => shown(&report, &notice, false),
            Err(e) => problem(&report, format!("Notification Center refused: {e}"), None),
        }
        if let Some(tx) = reply {
            let _ = tx.send(
                match &report.lock().unwrap_or_else(|e| e.into_inner()).problem {
                    Some(p) => Err(p.clone()),
                    None => Ok(0),
                },
            );
        }
    }
}

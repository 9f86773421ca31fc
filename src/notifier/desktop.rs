//! The freedesktop Notifications API (`org.freedesktop.Notifications`) on the session bus,
//! through zbus on the daemon's runtime.
//!
//! [`run`] connects to the session bus (`DBUS_SESSION_BUS_ADDRESS`, else
//! `$XDG_RUNTIME_DIR/bus`), asks the server for `GetServerInformation` and
//! `GetCapabilities` (actions are offered only when it lists `actions`; bodies are escaped
//! when it lists `body-markup`), and then serves the worker's commands. It keeps one id
//! per notification key so a project's notification is replaced (`replaces_id`), and
//! forwards `ActionInvoked` / `NotificationClosed` for its own ids.
//!
//! No bus, no server, a server that goes away (`NameOwnerChanged`) or a bus connection
//! that drops: the problem is recorded once, what the worker sends meanwhile is counted as
//! unsent, and the connection is tried again with exponential backoff (a server that
//! appears is picked up at once). Every call has a timeout ([`CALL_TIMEOUT`]), so a
//! server that hangs costs the queue, never the daemon.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use zbus::Variant;

use super::edge::{
    Backoff, CALL_TIMEOUT, EdgeCmd, EdgeEvent, ServerInfo, SharedReport, available, problem, shown,
    update,
};

const NAME: &str = "org.freedesktop.Notifications";
/// The `app_name` notifications carry.
const APP_NAME: &str = "skillmeatd";

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;
    fn get_server_information(&self) -> zbus::Result<(String, String, String, String)>;
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Variant<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;
    fn close_notification(&self, id: u32) -> zbus::Result<()>;
    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
}

/// The server as last seen.
struct Server {
    info: ServerInfo,
    caps: Vec<String>,
}

/// Notification ids by key, both ways.
#[derive(Default)]
struct Ids {
    by_key: HashMap<String, u32>,
    by_id: HashMap<u32, String>,
}

impl Ids {
    fn set(&mut self, key: &str, id: u32) {
        if let Some(old) = self.by_key.insert(key.to_string(), id) {
            self.by_id.remove(&old);
        }
        self.by_id.insert(id, key.to_string());
    }
    fn remove_id(&mut self, id: u32) -> Option<String> {
        let key = self.by_id.remove(&id)?;
        self.by_key.remove(&key);
        Some(key)
    }
    fn remove_key(&mut self, key: &str) -> Option<u32> {
        let id = self.by_key.remove(key)?;
        self.by_id.remove(&id);
        Some(id)
    }
}

/// How a connection ended.
enum Ended {
    Shutdown,
    Lost(String),
}

/// Serves `cmds` until `shutdown` (or until the worker goes away).
pub async fn run(
    mut cmds: mpsc::Receiver<EdgeCmd>,
    events: mpsc::Sender<EdgeEvent>,
    report: SharedReport,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut ids = Ids::default();
    loop {
        let ended = match connect().await {
            Ok(conn) => serve(conn, &mut cmds, &events, &report, &shutdown, &mut ids).await,
            Err(e) => Ended::Lost(e),
        };
        // Whatever was shown is out of our hands now.
        for key in std::mem::take(&mut ids).by_key.into_keys() {
            let _ = events.send(EdgeEvent::Closed(key)).await;
        }
        let why = match ended {
            Ended::Shutdown => return,
            Ended::Lost(why) => why,
        };
        // A connection that worked starts the backoff over.
        if update(&report, |r| r.problem.is_none()) {
            backoff.reset();
        }
        let wait = backoff.next();
        problem(&report, why, Some(wait));
        let deadline = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(cmd) => unsent(cmd, &report),
                },
            }
        }
    }
}

/// A command that cannot be carried out: counted, and a test is told why.
fn unsent(cmd: EdgeCmd, report: &SharedReport) {
    let why = update(report, |r| {
        r.unsent += u64::from(!matches!(cmd, EdgeCmd::Close(_)));
        r.problem.clone().unwrap_or_default()
    });
    if let EdgeCmd::Test(_, tx) = cmd {
        let _ = tx.send(Err(why));
    }
}

async fn connect() -> Result<zbus::Connection, String> {
    let build = async {
        zbus::connection::Builder::session()
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(CALL_TIMEOUT, build).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to the session bus: {e}")),
        Err(_) => Err(format!(
            "the session bus did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

/// Asks the server who it is and what it can do.
async fn query(proxy: &NotificationsProxy<'_>) -> Result<Server, String> {
    let why = |e: zbus::Error| match &e {
        zbus::Error::MethodError(name, _, _)
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown" =>
        {
            format!("no notification server ({NAME}) on the session bus")
        }
        _ => format!("the notification server failed: {e}"),
    };
    let (name, vendor, version, spec_version) =
        proxy.get_server_information().await.map_err(why)?;
    let caps = proxy.get_capabilities().await.map_err(why)?;
    Ok(Server {
        info: ServerInfo {
            name,
            vendor,
            version,
            spec_version,
        },
        caps,
    })
}

async fn serve(
    conn: zbus::Connection,
    cmds: &mut mpsc::Receiver<EdgeCmd>,
    events: &mpsc::Sender<EdgeEvent>,
    report: &SharedReport,
    shutdown: &CancellationToken,
    ids: &mut Ids,
) -> Ended {
    let lost = |e: zbus::Error| Ended::Lost(format!("session bus: {e}"));
    let proxy = match NotificationsProxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
    {
        Ok(p) => p,
        Err(e) => return lost(e),
    };
    let bus = match zbus::fdo::DBusProxy::new(&conn).await {
        Ok(b) => b,
        Err(e) => return lost(e),
    };
    let (mut owners, mut actions, mut closes) = match tokio::try_join!(
        bus.receive_name_owner_changed_with_args(&[(0, NAME)]),
        proxy.receive_action_invoked(),
        proxy.receive_notification_closed(),
    ) {
        Ok(s) => s,
        Err(e) => return lost(e),
    };
    let mut backoff = Backoff::default();
    let mut server: Option<Server> = None;
    let mut retry = Instant::now();
    loop {
        if server.is_none() && Instant::now() >= retry {
            match query(&proxy).await {
                Ok(s) => {
                    available(report, s.info.clone(), s.caps.clone());
                    backoff.reset();
                    server = Some(s);
                }
                Err(why) => {
                    let wait = backoff.next();
                    problem(report, why, Some(wait));
                    retry = Instant::now() + wait;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ended::Shutdown,
            _ = tokio::time::sleep_until(retry), if server.is_none() => {}
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { return Ended::Shutdown };
                let Some(s) = &server else {
                    unsent(cmd, report);
                    continue;
                };
                if let Err(why) = handle(&proxy, s, cmd, ids, report).await {
                    // The server stopped answering: ask again before the next command.
                    server = None;
                    let wait = backoff.next();
                    problem(report, why, Some(wait));
                    retry = Instant::now() + wait;
                }
            }
            change = owners.next() => {
                let Some(change) = change else { return Ended::Lost("the session bus went away".into()) };
                let gone = change.args().map(|a| a.new_owner().is_none()).unwrap_or(true);
                server = None;
                if gone {
                    for key in std::mem::take(ids).by_key.into_keys() {
                        let _ = events.send(EdgeEvent::Closed(key)).await;
                    }
                    let wait = backoff.next();
                    problem(report, format!("the notification server ({NAME}) went away"), Some(wait));
                    retry = Instant::now() + wait;
                } else {
                    retry = Instant::now();
                }
            }
            signal = actions.next() => {
                let Some(signal) = signal else { return Ended::Lost("the session bus went away".into()) };
                if let Ok(a) = signal.args()
                    && let Some(key) = ids.by_id.get(&a.id)
                {
                    let _ = events.send(EdgeEvent::Action { key: key.clone(), action: a.action_key.clone() }).await;
                }
            }
            signal = closes.next() => {
                let Some(signal) = signal else { return Ended::Lost("the session bus went away".into()) };
                if let Ok(a) = signal.args()
                    && let Some(key) = ids.remove_id(a.id)
                {
                    let _ = events.send(EdgeEvent::Closed(key)).await;
                }
            }
        }
    }
}

/// Body text as the server reads it: escaped where it parses markup.
fn body(server: &Server, text: &str) -> String {
    if server.caps.iter().any(|c| c == "body-markup") {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    } else {
        text.to_string()
    }
}

/// Carries out one command. `Err` when the server did not answer (or refused).
async fn handle(
    proxy: &NotificationsProxy<'_>,
    server: &Server,
    cmd: EdgeCmd,
    ids: &mut Ids,
    report: &SharedReport,
) -> Result<(), String> {
    let (notice, reply) = match cmd {
        EdgeCmd::Close(key) => {
            if let Some(id) = ids.remove_key(&key) {
                proxy
                    .close_notification(id)
                    .await
                    .map_err(|e| format!("the notification server failed: {e}"))?;
            }
            return Ok(());
        }
        EdgeCmd::Show(n) => (n, None),
        EdgeCmd::Test(n, tx) => (n, Some(tx)),
    };
    let replaces = if notice.replace {
        ids.by_key.get(&notice.key).copied().unwrap_or(0)
    } else {
        0
    };
    let with_actions = server.caps.iter().any(|c| c == "actions");
    let actions: Vec<&str> = if with_actions {
        notice
            .actions
            .iter()
            .flat_map(|a| [a.key(), a.label()])
            .collect()
    } else {
        Vec::new()
    };
    let hints = HashMap::from([
        ("urgency", Variant::from(1u8)),
        ("desktop-entry", Variant::from(APP_NAME)),
    ]);
    let sent = proxy
        .notify(
            APP_NAME,
            replaces,
            "",
            &notice.summary,
            &body(server, &notice.body),
            &actions,
            hints,
            -1,
        )
        .await
        .map_err(|e| format!("the notification server failed: {e}"));
    match sent {
        Ok(id) => {
            ids.set(&notice.key, id);
            shown(report, &notice, replaces != 0);
            if let Some(tx) = reply {
                let _ = tx.send(Ok(id));
            }
            Ok(())
        }
        Err(why) => {
            update(report, |r| r.unsent += 1);
            if let Some(tx) = reply {
                let _ = tx.send(Err(why.clone()));
            }
            Err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_their_key() {
        let mut ids = Ids::default();
        ids.set("/p", 1);
        ids.set("/p", 2);
        assert_eq!(ids.by_id.len(), 1);
        assert_eq!(ids.remove_id(1), None);
        assert_eq!(ids.remove_id(2), Some("/p".into()));
        assert_eq!(ids.remove_key("/p"), None);
    }

    #[test]
    fn bodies_are_escaped_only_for_markup_servers() {
        let mut s = Server {
            info: ServerInfo::default(),
            caps: vec!["body".into()],
        };
        assert_eq!(body(&s, "a <b> & c"), "a <b> & c");
        s.caps.push("body-markup".into());
        assert_eq!(body(&s, "a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}

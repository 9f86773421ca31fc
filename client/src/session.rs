//! Opening a session with the daemon: connect, start it when nobody answers, and compare
//! versions.
//!
//! When nothing answers on the socket, smctl runs `skillmeatd start` (the binary beside
//! smctl or on `PATH`) with the same home, state directory and socket, says so on stderr,
//! and connects again; `SKILLMEATD_NO_AUTOSTART=1` turns this off.
//!
//! The version check costs no round trip: the daemon names its version and protocol in
//! the headers of every answer, and the first answer that reaches smctl is compared with
//! smctl's own; when they differ, smctl warns on stderr (once) and goes on. A command's
//! first request is its own, so `smctl drift` is one request on a fresh connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use skillmeatd_proto::paths::Paths;
use skillmeatd_proto::{PROTOCOL_HEADER, PROTOCOL_VERSION, VERSION_HEADER, connect, pb};
use tonic::codegen::http;
use tonic::transport::Channel;

use crate::failure::Failure;
use crate::locate;

/// An answer's headers, looked at as they arrive.
type Answer = http::Response<tonic::body::Body>;

/// The daemon's channel, with every answer's version headers checked.
pub type Transport = tower::util::MapResponse<Channel, fn(Answer) -> Answer>;

/// The generated client stub over the daemon's socket.
pub type Client = pb::skillmeat_daemon_client::SkillmeatDaemonClient<Transport>;

/// A client over `channel` that checks the daemon's version on its first answer.
pub fn client(channel: Channel) -> Client {
    Client::new(tower::util::MapResponse::new(channel, check_version))
}

/// Set to `1` (or any value but `0` and empty) to never start the daemon automatically.
pub const ENV_NO_AUTOSTART: &str = "SKILLMEATD_NO_AUTOSTART";
/// How long to keep trying to connect after starting the daemon.
const RETRY_FOR: Duration = Duration::from_secs(5);

/// Connects to the daemon of `paths`, starting it first when allowed and needed.
///
/// # Errors
/// Exit 3 when no daemon answers (and autostart is off or failed).
pub async fn open(paths: &Paths) -> Result<Client, Failure> {
    let channel = match connect::channel(&paths.socket).await {
        Ok(ch) => ch,
        Err(_) if autostart_disabled(std::env::var(ENV_NO_AUTOSTART).ok().as_deref()) => {
            return Err(not_running(paths, ""));
        }
        Err(_) => {
            autostart(paths).await?;
            retry(paths).await?
        }
    };
    Ok(client(channel))
}

/// Compares the version headers of the first answer with smctl's own and warns once when
/// they differ. A daemon that names no version is older than these headers.
fn check_version(answer: Answer) -> Answer {
    static CHECKED: AtomicBool = AtomicBool::new(false);
    if !CHECKED.swap(true, Ordering::Relaxed) {
        let header = |name| answer.headers().get(name).and_then(|v| v.to_str().ok());
        let protocol = header(PROTOCOL_HEADER).and_then(|p| p.parse().ok());
        if let Some(w) = mismatch(
            env!("CARGO_PKG_VERSION"),
            PROTOCOL_VERSION,
            header(VERSION_HEADER),
            protocol,
        ) {
            eprintln!("smctl: warning: {w}");
        }
    }
    answer
}

fn not_running(paths: &Paths, why: &str) -> Failure {
    Failure::new(
        3,
        format!(
            "skillmeatd is not running (no answer on {}){why}; start it with `skillmeatd start`",
            paths.socket.display()
        ),
    )
}

/// Whether the variable's value asks for no autostart.
fn autostart_disabled(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

async fn autostart(paths: &Paths) -> Result<(), Failure> {
    let bin = locate::skillmeatd(None)
        .map_err(|e| not_running(paths, &format!(" and it cannot be started: {e}")))?;
    let out = tokio::process::Command::new(&bin)
        .arg("--skillmeat-home")
        .arg(&paths.skillmeat_home)
        .arg("--state-dir")
        .arg(&paths.state_dir)
        .arg("--socket")
        .arg(&paths.socket)
        .arg("start")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| not_running(paths, &format!(" and {} failed to run: {e}", bin.display())))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(not_running(
            paths,
            &format!(" and `skillmeatd start` failed: {}", err.trim()),
        ));
    }
    eprintln!(
        "smctl: started skillmeatd ({}) on {} (log: {}); set {ENV_NO_AUTOSTART}=1 to turn this off",
        bin.display(),
        paths.socket.display(),
        paths.log_file().display()
    );
    Ok(())
}

/// Connects again for a short while: `skillmeatd start` returns once its daemon answers,
/// so the first try normally succeeds.
async fn retry(paths: &Paths) -> Result<Channel, Failure> {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match connect::channel(&paths.socket).await {
            Ok(ch) => return Ok(ch),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(not_running(
                    paths,
                    &format!(" even after starting it ({e})"),
                ));
            }
        }
    }
}

/// What to tell the user when the daemon's version or protocol is not smctl's (`None`
/// when the daemon did not name them: it predates these headers).
fn mismatch(
    own_version: &str,
    own_protocol: u32,
    daemon_version: Option<&str>,
    daemon_protocol: Option<u32>,
) -> Option<String> {
    let (Some(daemon_version), Some(daemon_protocol)) = (daemon_version, daemon_protocol) else {
        return Some(format!(
            "skillmeatd does not name its version, so it is older than smctl {own_version}; \
             restart the daemon after an upgrade (`skillmeatd stop && skillmeatd start`)"
        ));
    };
    if own_protocol != daemon_protocol {
        Some(format!(
            "skillmeatd {daemon_version} speaks protocol {daemon_protocol}, smctl {own_version} \
             speaks protocol {own_protocol}: some requests may fail; run the skillmeatd that \
             came with this smctl (`skillmeatd stop && skillmeatd start`)"
        ))
    } else if own_version != daemon_version {
        Some(format!(
            "skillmeatd is version {daemon_version}, smctl is {own_version} (same protocol \
             {own_protocol}); restart the daemon after an upgrade (`skillmeatd stop && \
             skillmeatd start`)"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_version_and_protocol_is_quiet() {
        assert_eq!(mismatch("0.1.0", 1, Some("0.1.0"), Some(1)), None);
    }

    #[test]
    fn protocol_difference_is_named() {
        let w = mismatch("0.1.0", 1, Some("0.2.0"), Some(2)).unwrap();
        assert!(w.contains("protocol 2") && w.contains("protocol 1"), "{w}");
    }

    #[test]
    fn version_difference_alone_is_named() {
        let w = mismatch("0.1.0", 1, Some("0.1.1"), Some(1)).unwrap();
        assert!(w.contains("0.1.1") && w.contains("same protocol 1"), "{w}");
    }

    #[test]
    fn a_daemon_naming_no_version_is_older() {
        let w = mismatch("0.1.0", 1, None, None).unwrap();
        assert!(w.contains("older than smctl 0.1.0"), "{w}");
    }

    #[test]
    fn autostart_switch() {
        assert!(!autostart_disabled(None));
        assert!(!autostart_disabled(Some("")));
        assert!(!autostart_disabled(Some("0")));
        assert!(autostart_disabled(Some("1")));
        assert!(autostart_disabled(Some("yes")));
    }
}

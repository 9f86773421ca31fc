//! A private desktop for the notification tests: a session bus of its own
//! (`dbus-daemon --session` on a socket in the test's folder) and python-dbusmock's
//! `notification_daemon` template as the notification server, from the venv made by
//! `tests/support/dbusmock-venv.sh`. The tests read what the server was asked through the
//! mock's `GetCalls` and make it emit `ActionInvoked`, over zbus.
//!
//! `SKILLMEATD_SKIP_INTEROP=1` skips these tests (like the other tests that need Python
//! packages); otherwise a failing venv fails the test with the script's output.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zbus::zvariant::OwnedVariant;

use super::Env;
use super::skillmeat::{SKIP_VAR, support_script};

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const MOCK_IFACE: &str = "org.freedesktop.DBus.Mock";

fn mock_python() -> &'static Result<PathBuf, String> {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PY.get_or_init(|| {
        let script = support_script("dbusmock-venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().last().map(PathBuf::from) {
            Some(py) if out.status.success() && py.exists() => Ok(py),
            _ => Err(format!(
                "{} failed ({}):\n{stdout}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    })
}

/// One `Notify` call the server received.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The id the server answered with.
    pub id: u32,
    pub replaces_id: u32,
    pub summary: String,
    pub body: String,
    /// Flat: key, label, key, label, …
    pub actions: Vec<String>,
}

/// A session bus and a notification server on it, stopped when dropped.
pub struct Desktop {
    dir: PathBuf,
    bus: Child,
    mock: Option<Child>,
    capabilities: String,
    /// The bus's address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    rt: tokio::runtime::Runtime,
}

impl Desktop {
    /// A bus and a server advertising `capabilities` (space-separated, e.g. "body
    /// actions"), or None when skipped.
    pub fn start(env: &Env, capabilities: &str, test: &str) -> Option<Desktop> {
        if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
            eprintln!("{test}: skipped ({SKIP_VAR}=1): needs python-dbusmock");
            return None;
        }
        if let Err(e) = mock_python() {
            panic!(
                "{test} needs python-dbusmock and it could not be set up (set {SKIP_VAR}=1 to skip):\n{e}"
            );
        }
        let dir = env.path("desktop");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("bus");
        let address = format!("unix:path={}", socket.display());
        let bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("bus.log")).unwrap())
            .spawn()
            .expect("dbus-daemon (Debian: dbus-daemon) must be installed");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut d = Desktop {
            dir,
            bus,
            mock: None,
            capabilities: capabilities.to_string(),
            address,
            rt,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The socket file appears at bind(), a moment before the bus listens on it.
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        d.start_server();
        Some(d)
    }

    /// Starts the notification server (again) and waits until it owns its name.
    pub fn start_server(&mut self) {
        let py = mock_python().as_ref().unwrap();
        let params = format!("{{\"capabilities\": \"{}\"}}", self.capabilities);
        let mut child = Command::new(py)
            .args([
                "-m",
                "dbusmock",
                "--template",
                "notification_daemon",
                "-p",
                &params,
            ])
            .arg("-l")
            .arg(self.calls_log())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("mock.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.server_present() {
            if let Some(s) = child.try_wait().unwrap() {
                panic!(
                    "dbusmock exited ({s}): {}",
                    std::fs::read_to_string(self.dir.join("mock.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "dbusmock did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.mock = Some(child);
    }

    /// The server's log: one line per call, `<unix time, ms precision> <method> <args>`
    /// (a body's newlines continue a line).
    pub fn calls_log(&self) -> PathBuf {
        self.dir.join("calls.log")
    }

    /// Stops the notification server (the bus stays).
    pub fn stop_server(&mut self) {
        if let Some(mut c) = self.mock.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn connection(&self) -> zbus::Connection {
        self.rt.block_on(async {
            zbus::connection::Builder::address(self.address.as_str())
                .build()
                .await
                .unwrap()
        })
    }

    fn server_present(&self) -> bool {
        let conn = self.connection();
        self.rt.block_on(async {
            let reply = conn
                .call_method(
                    Some("org.freedesktop.DBus"),
                    "/org/freedesktop/DBus",
                    Some("org.freedesktop.DBus"),
                    "NameHasOwner",
                    &(NAME,),
                )
                .await
                .unwrap();
            reply.body().deserialize::<bool>().unwrap()
        })
    }

    fn all_calls(&self) -> Vec<(u64, String, Vec<OwnedVariant>)> {
        let conn = self.connection();
        self.rt.block_on(async {
            let reply = conn
                .call_method(Some(NAME), PATH, Some(MOCK_IFACE), "GetCalls", &())
                .await
                .unwrap();
            reply.body().deserialize().unwrap()
        })
    }

    /// How many calls of `method` the server received.
    pub fn calls(&self, method: &str) -> usize {
        self.all_calls()
            .iter()
            .filter(|(_, m, _)| m == method)
            .count()
    }

    /// Every `Notify` the server received, in order.
    pub fn notifications(&self) -> Vec<Notify> {
        let mut next_id = 1;
        self.all_calls()
            .into_iter()
            .filter(|(_, m, _)| m == "Notify")
            .map(|(_, _, args)| {
                let mut a = args.into_iter();
                let _app = a.next();
                let replaces_id = u32::try_from(a.next().unwrap()).unwrap();
                let _icon = a.next();
                let summary = String::try_from(a.next().unwrap()).unwrap();
                let body = String::try_from(a.next().unwrap()).unwrap();
                let actions = Vec::<String>::try_from(a.next().unwrap()).unwrap();
                let id = if replaces_id != 0 {
                    replaces_id
                } else {
                    next_id += 1;
                    next_id - 1
                };
                Notify {
                    id,
                    replaces_id,
                    summary,
                    body,
                    actions,
                }
            })
            .collect()
    }

    /// Waits until the server received at least `n` notifications; returns them all.
    pub fn wait_for(&self, n: usize, what: &str) -> Vec<Notify> {
        super::eventually(Duration::from_secs(30), what, || {
            let all = self.notifications();
            (all.len() >= n).then_some(all)
        })
    }

    /// Makes the server emit `ActionInvoked(id, key)`, as when the person clicks.
    pub fn invoke(&self, id: u32, key: &str) {
        let conn = self.connection();
        self.rt.block_on(async {
            let args: Vec<zbus::Variant<'_>> = vec![id.into(), key.into()];
            conn.call_method(
                Some(NAME),
                PATH,
                Some(MOCK_IFACE),
                "EmitSignal",
                &(NAME, "ActionInvoked", "us", args),
            )
            .await
            .unwrap();
        });
    }

    /// A daemon command on this desktop's bus.
    pub fn command(&self, env: &Env) -> Command {
        let mut c = env.command(&super::skillmeatd_bin());
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        c
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop_server();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

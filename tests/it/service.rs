//! Running under a service manager: the files `smctl service install` writes (checked by
//! `systemd-analyze verify` where it exists), readiness/watchdog/stopping notifications on a
//! real notify socket, socket activation through `systemd-socket-activate`, autostart from
//! smctl, the version handshake, and `skillmeatd run --check-config`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Env, skillmeatd_bin, smctl_bin, write};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// smctl with no way to reach a user service manager, whatever the machine has.
fn smctl_no_manager(env: &Env, args: &[&str]) -> Output {
    env.command(&smctl_bin())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_CONFIG_HOME", env.path("config"))
        .args(args)
        .output()
        .unwrap()
}

/// The path of a tool, if it is installed.
fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Splits `smctl service install --print` output into (path, content) pairs.
fn printed_files(out: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for line in out.lines() {
        match line.strip_prefix("# /") {
            Some(p) if files.is_empty() || p.ends_with(".service") || p.ends_with(".socket") => {
                files.push((PathBuf::from(format!("/{p}")), String::new()));
            }
            _ => {
                let last = files.last_mut().expect("output starts with a path");
                last.1 += line;
                last.1.push('\n');
            }
        }
    }
    files
}

#[test]
fn printed_units_run_the_real_binary_and_pass_systemd_analyze() {
    let env = Env::new();
    let out = smctl_no_manager(
        &env,
        &["service", "install", "--print", "--socket-activation"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = printed_files(&text(&out.stdout));
    let names: Vec<_> = files.iter().map(|(p, _)| p.clone()).collect();
    let unit_dir = env.path("config/systemd/user");
    assert_eq!(
        names,
        [
            unit_dir.join("skillmeatd.service"),
            unit_dir.join("skillmeatd.socket")
        ]
    );
    assert!(!unit_dir.exists(), "--print wrote something");
    let daemon = skillmeatd_bin().canonicalize().unwrap();
    let service = &files[0].1;
    assert!(
        service.contains(&format!("\nExecStart=\"{}\" run\n", daemon.display())),
        "{service}"
    );
    // Desktop notifications: the per-user session bus, by specifier.
    assert!(
        service.contains("\nEnvironment=DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus\n"),
        "{service}"
    );
    // The harness names state directory and socket: the daemon gets the same.
    assert!(service.contains(&format!(
        "\nEnvironment=\"SKILLMEATD_SOCKET={}\"\n",
        env.socket.display()
    )));
    assert!(
        files[1]
            .1
            .contains(&format!("\nListenStream={}\n", env.socket.display()))
    );

    let Some(analyze) = tool("systemd-analyze") else {
        eprintln!("skipped systemd-analyze verify: not installed");
        return;
    };
    let dir = env.path("verify");
    for (p, content) in &files {
        write(&dir.join(p.file_name().unwrap()), content);
    }
    let runtime = env.path("xdg-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let verify = Command::new(analyze)
        .args(["--user", "verify"])
        .arg(dir.join("skillmeatd.service"))
        .arg(dir.join("skillmeatd.socket"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .current_dir(&dir)
        .output()
        .unwrap();
    // verify exits 0 even for unknown keys; it warns on stderr, so that must be empty.
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
}

#[test]
fn install_without_a_user_manager_writes_and_explains() {
    let env = Env::new();
    let out = smctl_no_manager(&env, &["service", "install"]);
    let err = text(&out.stderr);
    let unit = env.path("config/systemd/user/skillmeatd.service");
    assert!(unit.is_file(), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot be used here")
            && err.contains("systemctl --user enable --now skillmeatd.service")
            && err.contains("skillmeatd start"),
        "{err}"
    );
    // The state directory is there for the service's logs, private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env.state_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn install_no_start_then_status_then_uninstall() {
    let env = Env::new();
    let out = smctl_no_manager(&env, &["service", "install", "--no-start"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unit = env.path("config/systemd/user/skillmeatd.service");
    assert!(
        std::fs::read_to_string(&unit)
            .unwrap()
            .contains("Type=notify")
    );

    let out = smctl_no_manager(&env, &["service", "status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "no daemon answers");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["installed"], true);
    assert_eq!(v["answers"], false);
    assert_eq!(v["file"], unit.display().to_string());
    assert!(
        v["program"].as_str().unwrap().contains(
            &skillmeatd_bin()
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        )
    );

    let out = smctl_no_manager(&env, &["service", "uninstall", "--dry-run"]);
    assert!(text(&out.stdout).contains("would remove"));
    assert!(unit.exists());
    let out = smctl_no_manager(&env, &["service", "uninstall"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!unit.exists());
    let out = smctl_no_manager(&env, &["service", "uninstall"]);
    assert!(text(&out.stderr).contains("no skillmeatd service is installed"));
}

#[test]
fn launchd_agent_is_written_with_real_paths() {
    let env = Env::new();
    let out = env
        .command(&smctl_bin())
        .args(["service", "install", "--manager", "launchd", "--no-start"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plist = env
        .home
        .join("Library/LaunchAgents/dev.skillmeat.skillmeatd.plist");
    let body = std::fs::read_to_string(&plist).unwrap();
    let daemon = skillmeatd_bin().canonicalize().unwrap();
    assert!(
        body.contains(&format!("<string>{}</string>", daemon.display())),
        "{body}"
    );
    assert!(body.contains(&format!(
        "<string>{}</string>",
        env.state_dir.join("skillmeatd.log").display()
    )));
    assert!(body.contains("<key>RunAtLoad</key>"));
}

#[test]
fn a_missing_daemon_binary_is_named() {
    let env = Env::new();
    let out = smctl_no_manager(
        &env,
        &[
            "service",
            "install",
            "--print",
            "--daemon-bin",
            "/nonexistent/skillmeatd",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/skillmeatd is not an executable"));
}

/// A notify socket like systemd's: a datagram socket whose messages we read with a bound.
struct Notify {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn new(env: &Env) -> Notify {
        let path = env.path("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Notify { socket, path }
    }

    /// The next message, or a panic after the bound.
    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("no notification in time");
        text(&buf[..n])
    }
}

/// A process killed when dropped (so a failing test leaves no daemon behind).
struct Reaped(Option<Child>);

impl Reaped {
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.0.take().unwrap();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().unwrap()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn tells_the_service_manager_ready_watchdog_and_stopping() {
    let env = Env::new();
    let notify = Notify::new(&env);
    let log = std::fs::File::create(env.path("daemon.log")).unwrap();
    let mut daemon = Reaped(Some(
        env.command(&skillmeatd_bin())
            .arg("run")
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    ));
    let first = notify.next();
    assert!(first.lines().any(|l| l == "READY=1"), "{first}");
    // READY comes after the socket is bound: the daemon answers right away.
    assert!(env.smctl_json(&["status"])["pid"].as_u64().is_some());
    // Pings at half the 200 ms interval.
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(notify.next().trim(), "WATCHDOG=1");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let status = daemon.terminate();
    assert!(status.success());
    let mut rest = Vec::new();
    loop {
        let m = notify.next();
        if m.lines().any(|l| l == "STOPPING=1") {
            break;
        }
        rest.push(m);
        assert!(rest.len() < 100, "no STOPPING=1 among {rest:?}");
    }
}

#[test]
fn serves_on_a_socket_passed_by_the_service_manager() {
    let Some(activate) = tool("systemd-socket-activate") else {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    };
    let env = Env::new();
    let dir = env.socket.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(env.path("daemon.log")).unwrap();
    let mut cmd = Command::new(activate);
    cmd.arg("-l").arg(&env.socket);
    for (k, v) in [
        ("HOME", env.home.as_os_str()),
        ("SKILLMEATD_STATE_DIR", env.state_dir.as_os_str()),
        ("SKILLMEATD_SOCKET", env.socket.as_os_str()),
    ] {
        cmd.arg("-E").arg(format!("{k}={}", Path::new(v).display()));
    }
    let mut daemon = Reaped(Some(
        cmd.arg(skillmeatd_bin())
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    ));
    // The manager listens before the daemon runs; the first connection starts it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.socket.exists() {
        assert!(Instant::now() < deadline, "socket never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = env.smctl_json(&["status"]);
    assert_eq!(s["socket"], env.socket.display().to_string());
    let pid = s["pid"].as_u64().unwrap();
    assert_eq!(pid, u64::from(daemon.0.as_ref().unwrap().id()));
    assert!(daemon.terminate().success());
    let log = std::fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(log.contains("passed by the service manager"), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    // The manager owns the socket file: the daemon leaves it for the next activation.
    assert!(env.socket.exists());
}

/// Stops the daemon of `env` when dropped, whatever happened.
struct StopOnDrop<'a>(&'a Env);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.command(&skillmeatd_bin()).arg("stop").output();
    }
}

#[test]
fn smctl_starts_the_daemon_when_none_answers() {
    let env = Env::new();
    let _stop = StopOnDrop(&env);
    let out = env
        .command(&smctl_bin())
        .env_remove("SKILLMEATD_NO_AUTOSTART")
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("started skillmeatd"), "{err}");
    assert!(err.contains(&env.socket.display().to_string()), "{err}");
    // Same versions on both sides: no handshake warning.
    assert!(!err.contains("warning"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state_dir"], env.state_dir.display().to_string());
    let pid = v["pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    // Now it runs: no second start.
    let out = env
        .command(&smctl_bin())
        .env_remove("SKILLMEATD_NO_AUTOSTART")
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("started"),
        "{}",
        text(&out.stderr)
    );
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["pid"], v["pid"]);

    let stop = env.command(&skillmeatd_bin()).arg("stop").output().unwrap();
    assert!(stop.status.success(), "{}", text(&stop.stderr));
}

#[test]
fn autostart_can_be_turned_off() {
    let env = Env::new();
    let out = env
        .command(&smctl_bin())
        .env("SKILLMEATD_NO_AUTOSTART", "1")
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!env.socket.exists());
    assert!(!env.state_dir.join("skillmeatd.pid").exists());
}

#[test]
fn a_running_daemon_gives_no_handshake_warning() {
    let env = Env::new();
    let _d = env.daemon();
    let out = env.smctl(&["drift", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

fn check_config(env: &Env) -> (i32, String, String) {
    let out = env
        .command(&skillmeatd_bin())
        .args(["run", "--check-config"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn check_config_accepts_good_and_missing_files() {
    let env = Env::new();
    let (code, out, _) = check_config(&env);
    assert_eq!(code, 0);
    assert!(out.contains("defaults in use"), "{out}");
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[discovery]\nscan = [\"~/code\"]\n",
    );
    let (code, out, err) = check_config(&env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("daemon.toml: ok"), "{out}");
    // Checking starts nothing.
    assert!(!env.socket.exists() && !env.state_dir.exists());
}

#[test]
fn check_config_names_the_line_and_suggests_the_key() {
    let env = Env::new();
    let file = env.skillmeat_home.join("daemon.toml");
    write(&file, "[discovery]\nscan = []\nmax_dept = 3\n");
    let (code, out, err) = check_config(&env);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("did you mean `max_depth`?"), "{err}");

    write(&file, "[discovery]\nregistry = \"yes\"\n");
    let (code, _, err) = check_config(&env);
    assert_eq!(code, 1);
    assert!(err.contains("line 2") && err.contains("registry"), "{err}");

    // The daemon itself refuses the same file with the same words.
    write(&file, "[discovry]\n");
    let out = env.command(&skillmeatd_bin()).arg("run").output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("did you mean `discovery`?"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_login_session_bus_is_not_frozen_into_the_unit() {
    let env = Env::new();
    let out = env
        .command(&smctl_bin())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:abstract=/tmp/dbus-login,guid=1",
        )
        .env("XDG_CONFIG_HOME", env.path("config"))
        .args(["service", "install", "--print", "--manager", "systemd"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unit = text(&out.stdout);
    assert!(unit.contains("\nExecStart="), "{unit}");
    assert!(
        !unit.contains("\nEnvironment=DBUS_SESSION_BUS_ADDRESS"),
        "{unit}"
    );
}

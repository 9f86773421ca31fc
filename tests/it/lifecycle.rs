//! Starting, stopping and guarding the daemon: one per state directory, a private socket,
//! stale sockets replaced and live ones left alone, one clean shutdown path.

use std::os::unix::fs::PermissionsExt;

use crate::common::{Env, skillmeatd_bin, version_line};

fn run(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env.command(&skillmeatd_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_status_stop_in_the_background() {
    let env = Env::new();
    let (code, out, err) = run(&env, &["start"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("started"), "{out}");
    let (code, out, _) = run(&env, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("running"), "{out}");
    let pid: u32 = std::fs::read_to_string(env.state_dir.join("skillmeatd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    let (code, out, _) = run(&env, &["start"]);
    assert_eq!(code, 0);
    assert!(out.contains("already running"), "{out}");

    // A second foreground daemon for the same state directory is refused by the lock.
    let (code, _, err) = run(&env, &["run"]);
    assert_ne!(code, 0);
    assert!(err.contains("already runs"), "{err}");

    let (code, out, err) = run(&env, &["stop"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!env.socket.exists(), "socket left behind");
    assert!(
        !env.state_dir.join("skillmeatd.pid").exists(),
        "pid file left behind"
    );
    let (code, out, _) = run(&env, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not running"));
    let log = std::fs::read_to_string(env.state_dir.join("skillmeatd.log")).unwrap();
    assert!(log.contains("stopped cleanly"), "{log}");
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let env = Env::new();
        let mut d = env.daemon();
        let status = d.signal_and_wait(sig);
        assert!(status.success(), "signal {sig}: {status}\n{}", d.log_text());
        assert!(!env.socket.exists());
        assert!(d.log_text().contains("stopped cleanly"));
    }
}

#[test]
fn socket_folder_is_private() {
    let env = Env::new();
    let _d = env.daemon();
    let mode = std::fs::metadata(env.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn stale_socket_is_replaced() {
    let env = Env::new();
    std::fs::create_dir_all(env.socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        env.socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // A socket file nobody listens on: what a crash leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&env.socket).unwrap());
    assert!(env.socket.exists());
    let _d = env.daemon();
    let s = env.smctl_json(&["status"]);
    assert_eq!(s["socket"], env.socket.display().to_string());
}

#[test]
fn a_live_socket_is_never_stolen() {
    let env = Env::new();
    let _first = env.daemon();
    // Another daemon with another state directory but the same socket.
    let other_state = env.path("other-state");
    let out = env
        .command(&skillmeatd_bin())
        .env("SKILLMEATD_STATE_DIR", &other_state)
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("live daemon already answers"));
    assert_eq!(
        env.smctl_json(&["status"])["state_dir"],
        env.state_dir.display().to_string()
    );
}

#[test]
fn a_file_in_the_socket_place_is_left_alone() {
    let env = Env::new();
    crate::common::write(&env.socket, "precious");
    let out = env.command(&skillmeatd_bin()).arg("run").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&env.socket).unwrap(), "precious");
}

#[test]
fn smctl_says_when_the_daemon_is_not_running() {
    let env = Env::new();
    let out = env.smctl(&["drift"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not running"), "{err}");
    assert!(err.contains(&env.socket.display().to_string()), "{err}");
    assert!(err.contains("skillmeatd start"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn status_reports_versions_and_paths() {
    let env = Env::new();
    let _d = env.daemon();
    let s = env.smctl_json(&["status"]);
    assert_eq!(s["daemon_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["protocol_version"], 1);
    assert_eq!(
        s["skillmeat_home"],
        env.skillmeat_home.display().to_string()
    );
    assert_eq!(s["collections"], 0);
    let out = env.smctl(&["status", "--format", "table"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("protocol:"));
    // Same version and protocol: smctl's check of the answer's headers says nothing.
    let out = env.smctl(&["drift"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// Only a process with the daemon's uid may call it. Needs root to act as another user.
#[test]
fn other_users_are_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client under another uid");
        return;
    }
    let env = Env::new();
    let _d = env.daemon();
    // Open the way to the socket so the uid check itself is what refuses.
    for p in [env.dir.path(), env.socket.parent().unwrap()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&env.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The checkout may be private (a 0700 `mktemp -d` clone): give the other uid its own
    // copy of smctl in the (now open) test folder.
    let smctl = env.dir.path().join("smctl-for-another-user");
    std::fs::copy(crate::common::smctl_bin(), &smctl).unwrap();
    std::fs::set_permissions(&smctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = {
        use std::os::unix::process::CommandExt;
        env.command(&smctl)
            .current_dir(env.dir.path())
            .arg("status")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uid 65534 may not use this daemon"), "{err}");
}

#[test]
fn version_names_the_protocol_and_the_revision() {
    let out = std::process::Command::new(skillmeatd_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        version_line("skillmeatd")
    );
}

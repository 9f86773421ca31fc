//! Supervised tasks with the real binary: a background task that dies stops the daemon with
//! a failure exit (so the service manager restarts it) instead of leaving it serving a frozen
//! state. Faults are injected through `SKILLMEATD_FAULTS`, which only test builds read.

use std::time::Duration;

use crate::common::{Artifact, Env, make_collection, skillmeatd_bin, write};

#[test]
fn a_panic_in_the_live_worker_stops_the_daemon_with_a_failure_exit() {
    let env = Env::new();
    let coll = make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::command("hello")],
    );
    let mut cmd = env.command(&skillmeatd_bin());
    // The first batch is the initial scan; the second is the first change after start.
    cmd.env("SKILLMEATD_FAULTS", "live.batch=panic@2");
    let mut d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");

    write(&coll.join("commands/hello.md"), "edited\n");
    let status = d.wait_exit(Duration::from_secs(30));
    let log = d.log_text();
    assert_eq!(status.code(), Some(1), "{status}\n{log}");
    assert!(
        log.contains("the live worker task failed") && log.contains("injected fault"),
        "{log}"
    );
    // It went down the one shutdown path: store flushed, socket and pid file removed.
    assert!(log.contains("flushing the store"), "{log}");
    assert!(!env.socket.exists(), "the socket was left behind");
    assert!(!env.state_dir.join("skillmeatd.pid").exists());
    // A fresh start (what the service manager does) serves again.
    let _d = env.daemon();
    env.smctl_json(&["drift", "--sync"]);
}

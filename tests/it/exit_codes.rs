//! Exit codes that tell the truth: `smctl watch` exits 3 with a message, and a last
//! `closed` object, when the daemon goes away; a closed pipe ends any printing command
//! quietly with 0 (no panic, nothing on stderr).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Artifact, Env, deploy, make_collection, smctl_bin};

/// Starts `smctl watch --format json` and returns once it is subscribed (its first
/// heartbeat arrived), with its stdout reader.
fn watching(env: &Env) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = env
        .command(&smctl_bin())
        .args(["watch", "--format", "json", "--heartbeat-ms", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    assert_eq!(v["type"], "heartbeat", "{v}");
    (child, out)
}

/// Waits (bounded) for `child` to end; its exit code, the rest of its stdout as JSON
/// objects, and its stderr.
fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (Option<i32>, Vec<Value>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "smctl watch still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let objects = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (child.wait().unwrap().code(), objects, err)
}

#[test]
fn finding_14_watch_exits_3_with_a_closed_line_when_the_daemon_stops() {
    let env = Env::new();
    let mut d = env.daemon();
    let (child, out) = watching(&env);
    assert!(d.signal_and_wait(libc::SIGTERM).success());
    let (code, objects, err) = finish(child, out);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("the daemon went away") && err.contains("shutting down"),
        "{err}"
    );
    let last = objects.last().unwrap_or_else(|| panic!("no closed line"));
    assert_eq!(last["type"], "closed", "{objects:#?}");
    assert!(
        last["reason"].as_str().unwrap().contains("shutting down"),
        "{last}"
    );

    // Killed outright, it cannot say goodbye: the reason is the broken connection.
    let mut d = env.daemon();
    let (child, out) = watching(&env);
    assert!(!d.signal_and_wait(libc::SIGKILL).success());
    let (code, objects, err) = finish(child, out);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("the daemon went away"), "{err}");
    assert_eq!(objects.last().unwrap()["type"], "closed", "{objects:#?}");
}

#[test]
fn finding_14_a_closed_pipe_ends_every_printing_command_quietly() {
    let env = Env::new();
    let arts = [Artifact::skill("review"), Artifact::command("hello")];
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let _d = env.daemon();
    let p = project.to_str().unwrap();
    env.smctl_json(&["project", "add", p]);
    env.smctl_json(&["snapshot", "create", p]);
    let commands: &[&[&str]] = &[
        &["completions", "bash"],
        &["completions", "zsh"],
        &["man"],
        &["status"],
        &["drift", "--all"],
        &["drift", "--all", "--format", "table"],
        &["project", "list"],
        &["snapshot", "list"],
        &["log", "review", "--project", p],
        &["audit"],
        &["doctor"],
        &["watch", "--format", "json", "--heartbeat-ms", "50"],
        &["service", "install", "--print"],
    ];
    for args in commands {
        let mut child = env
            .command(&smctl_bin())
            .args(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before smctl writes its first byte.
        drop(child.stdout.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "smctl {args:?} still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "smctl {args:?}: {err}");
        assert!(err.is_empty(), "smctl {args:?}: {err}");
    }
}

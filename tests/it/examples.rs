//! The example clients in `client/examples/` — Python's grpcio and Node's @grpc/grpc-js,
//! each with its library's defaults — against the real daemon: the drift `GetDrift`
//! reports, then the event of an edit made while they `Watch`.
//!
//! Their libraries come from `tests/support/grpc-python.sh` (grpcio and the stubs generated
//! from `proto/`) and `tests/support/grpc-node.sh` (`npm ci` of the example's lockfile).

use std::path::PathBuf;
use std::process::Command;

use crate::common::Env;
use crate::common::clients::{Running, edit_review, install, project_with_drift};

fn example(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("client/examples")
        .join(rel)
}

/// Runs the example `cmd` against a fresh daemon and checks what it prints.
fn drift_then_watch(mut cmd: Command) {
    let env = Env::new();
    let project = project_with_drift(&env);
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    cmd.env("SKILLMEATD_SOCKET", &env.socket).args([
        "--project",
        project.to_str().unwrap(),
        "--events",
        "1",
    ]);
    let mut client = Running::spawn(cmd);

    let drift = client.until("watching for changes");
    assert!(
        drift[0].starts_with("drift of 2 artifacts (cursor "),
        "{drift:?}"
    );
    let rows: Vec<Vec<&str>> = drift[1..drift.len() - 1]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["hello", "command", "modified"],
            vec!["review", "skill", "in", "sync"]
        ],
        "{drift:?}"
    );

    edit_review(&project);
    let event: Vec<String> = client.line().split_whitespace().map(String::from).collect();
    assert_eq!(event, ["review", "skill", "in", "sync", "->", "modified"]);
    client.success();
}

#[test]
fn python_example_prints_drift_then_an_event() {
    let python = install("grpc-python.sh");
    let stubs = python.parent().unwrap().parent().unwrap().join("stubs");
    let mut cmd = Command::new(python);
    cmd.arg(example("python/drift_then_watch.py"))
        .env("PYTHONPATH", stubs);
    drift_then_watch(cmd);
}

#[test]
fn node_example_prints_drift_then_an_event() {
    let node_modules = install("grpc-node.sh");
    let mut cmd = Command::new("node");
    cmd.arg(example("node/drift-then-watch.js"))
        .env("NODE_PATH", node_modules);
    drift_then_watch(cmd);
}

//! A third-party gRPC stack talks to the daemon: Python's grpcio (from PyPI) with its
//! default channel settings — so the socket path, percent-encoded, is the `:authority` —
//! and stubs generated from our proto by `grpc_tools.protoc`, over the Unix socket. It
//! checks the standard health service and server reflection, gets the same drift `smctl`
//! sees, and subscribes to `Watch` to receive the event of an edit made after it subscribed.
//!
//! The venv is made by `tests/support/grpc-python.sh` (CI runs it up front).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::clients::{edit_review, install, project_with_drift};
use crate::common::{Env, drift_pairs};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn python_grpcio_checks_health_and_gets_drift() {
    let python = install("grpc-python.sh");
    let stubs = python.parent().unwrap().parent().unwrap().join("stubs");
    let env = Env::new();
    let project = project_with_drift(&env);
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);

    let mut child = Command::new(&python)
        .arg(repo().join("tests/support/grpc_client.py"))
        .arg("--stubs")
        .arg(&stubs)
        .arg("--socket")
        .arg(&env.socket)
        .arg("--project")
        .arg(&project)
        .args(["--watch", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it says it is watching (from Status's cursor), the edit is made: its event
    // must reach Python on the stream, live or replayed.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    stderr.read_line(&mut said).unwrap();
    assert!(
        said.starts_with("watching since "),
        "grpc_client.py: {said}"
    );
    edit_review(&project);
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let out = child.wait_with_output().unwrap();
    let err = rest.join().unwrap();
    assert!(out.status.success(), "grpc_client.py failed: {said}{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["health"][""], "SERVING", "{v:#}");
    assert_eq!(
        v["health"]["skillmeat.daemon.v1.SkillmeatDaemon"],
        "SERVING"
    );
    let services = v["reflection"]["services"].as_array().unwrap();
    for s in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "skillmeat.daemon.v1.SkillmeatDaemon",
    ] {
        assert!(services.iter().any(|x| x == s), "{s} not in {services:?}");
    }
    assert_eq!(
        v["reflection"]["service_file"],
        "skillmeat/daemon/v1/daemon.proto"
    );
    assert_eq!(v["status"]["daemon_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["status"]["protocol_version"], 1);

    // Python's view of the drift is smctl's, down to the enum names.
    let mut seen: Vec<(String, String)> = v["drift"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["drift_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("hello".to_string(), "DRIFT_TYPE_MODIFIED".to_string()),
            ("review".to_string(), "DRIFT_TYPE_IN_SYNC".to_string())
        ]
    );

    // The edit made after subscribing arrived as a drift event, with the proto's names.
    let since = v["watch_since"].as_u64().unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v:#}");
    let e = &events[0];
    assert_eq!(e["name"], "review", "{e:#}");
    assert_eq!(e["kind"], "EVENT_KIND_DRIFT_CHANGED");
    assert_eq!(e["old_drift"], "DRIFT_TYPE_IN_SYNC");
    assert_eq!(e["new_drift"], "DRIFT_TYPE_MODIFIED");
    assert_eq!(e["changed_side"], "CHANGED_SIDE_PROJECT");
    assert_eq!(e["project"], project.to_str().unwrap());
    assert!(e["cursor"].as_str().unwrap().parse::<u64>().unwrap() > since);

    let smctl = env.smctl_json(&["drift", "--sync", project.to_str().unwrap(), "--all"]);
    assert_eq!(
        drift_pairs(&smctl),
        [
            ("hello".to_string(), "modified".to_string()),
            ("review".to_string(), "modified".to_string())
        ]
    );
}

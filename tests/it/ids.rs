//! Ids people see and type: operation ids are reserved before an operation starts, unique
//! under concurrent requests and never reused, not even after a crash; version and snapshot
//! ids are dense (`v1, v2, …`, `s1, …`) across restarts.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use serde_json::Value;

use crate::common::skillmeatd_bin;
use crate::common::world::{World, edit};

fn id_of(v: &Value, prefix: char) -> u64 {
    v.as_str()
        .and_then(|s| s.strip_prefix(prefix))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a {prefix} id: {v}"))
}

#[test]
fn finding_2_operation_ids_are_never_reused_after_a_crash() {
    let w = World::new();
    {
        let _d = w.start();
        let one = w.json(&["sync", "pull", "canvas", "--project", w.p(), "--yes"]);
        assert_eq!(one["operation"]["id"], 1, "{one}");
    }
    // The next operation dies right after its id was reserved.
    let mut cmd = w.env.command(&skillmeatd_bin());
    cmd.env("SKILLMEATD_FAULTS", "op.reserved=abort");
    let mut armed = w.env.daemon_cmd(cmd, &[], &w.env.socket, "armed.log");
    edit(&w.project_skill().join("SKILL.md"), "line one", "line 1");
    let out = w
        .env
        .smctl(&["sync", "push", "canvas", "--project", w.p(), "--yes"]);
    assert!(!out.status.success());
    let status = armed.wait_exit(Duration::from_secs(30));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", armed.log_text());
    drop(armed);

    let _d = w.env.daemon();
    let three = w.json(&["sync", "push", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(
        three["operation"]["id"], 3,
        "id 2 is taken for good: {three}"
    );
    let audit = w.json(&["audit"]);
    let ops = audit["operations"].as_array().unwrap();
    let ids: Vec<u64> = ops.iter().map(|o| o["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3], "{audit}");
    assert_eq!(ops[1]["status"], "interrupted", "{audit}");
    assert_eq!(ops[1]["operation"], "sync_push");
    // Each safety snapshot names its own operation.
    let list = w.json(&["snapshot", "list"]);
    let messages: Vec<&str> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["message"].as_str())
        .filter(|m| m.contains("(operation "))
        .collect();
    for n in [1, 3] {
        let named = messages
            .iter()
            .filter(|m| m.ends_with(&format!("(operation {n})")))
            .count();
        assert!(
            named >= 1,
            "no safety snapshot names operation {n}: {messages:?}"
        );
    }
    assert_eq!(
        w.json(&["undo", "--yes"])["operation"]["undoes"],
        3,
        "undo takes the newest operation, not an older one with a reused number"
    );
}

#[test]
fn finding_2_concurrent_operations_never_share_an_id() {
    let w = World::new();
    let _d = w.start();
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let cmd = {
                let mut c = w.env.command(&crate::common::smctl_bin());
                c.args(["sync", "pull", "canvas", "--project", w.p(), "--yes"])
                    .args(["--format", "json"]);
                c
            };
            std::thread::spawn(move || {
                let mut cmd = cmd;
                cmd.output().unwrap()
            })
        })
        .collect();
    let mut ids: Vec<u64> = runs
        .into_iter()
        .map(|t| {
            let out = t.join().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            v["operation"]["id"].as_u64().unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn finding_13_version_and_snapshot_ids_stay_dense_across_restarts() {
    let w = World::new();
    let first = {
        let _d = w.start();
        id_of(&w.json(&["snapshot", "create", "default"])["id"], 's')
    };
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    let _d = w.env.daemon();
    let second = id_of(&w.json(&["snapshot", "create", "default"])["id"], 's');
    assert!(
        second > first && second - first <= 2,
        "s{first}, then s{second} after a restart"
    );
    let log = w.json(&["log", "canvas"]);
    let versions: Vec<u64> = log["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| id_of(&v["id"], 'v'))
        .collect();
    assert!(versions.len() >= 2, "{log}");
    assert!(
        versions.iter().all(|&v| v < 50),
        "version ids stay small: {versions:?}"
    );
    let snaps = w.json(&["snapshot", "list"]);
    let ids: Vec<u64> = snaps["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| id_of(&s["id"], 's'))
        .collect();
    assert!(
        ids.iter().all(|&s| s < 50),
        "snapshot ids stay small: {ids:?}"
    );
}

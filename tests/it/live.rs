//! Live drift with the real binaries: edits become events (exactly once), renames,
//! bursts, lost events, restarts, slow subscribers and polling roots (saves in progress and
//! completed writes: `settle`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Artifact, Env, assert_matches_scratch, deploy, make_collection, write};

pub(super) fn three() -> Vec<Artifact> {
    vec![
        Artifact::skill("review"),
        Artifact::command("hello"),
        Artifact::agent("helper"),
    ]
}

/// A home with one collection and one project holding `artifacts`, a running daemon and
/// the project registered.
pub(super) fn setup(env: &Env, artifacts: &[Artifact]) -> (std::path::PathBuf, std::path::PathBuf) {
    let coll = make_collection(&env.skillmeat_home, "default", artifacts);
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        artifacts,
    );
    (coll, project)
}

pub(super) fn add(env: &Env, project: &Path) {
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
}

/// (name, old_drift, new_drift) of drift events.
pub(super) fn transitions(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "drift_changed")
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["old_drift"].as_str().unwrap_or("-").to_string(),
                e["new_drift"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

pub(super) fn t(name: &str, old: &str, new: &str) -> (String, String, String) {
    (name.into(), old.into(), new.into())
}

/// Asserts that `events` take `name` from `from` to `to` in one event, or in two through
/// `via` (the state after the first of two writes made one after the other, when the
/// daemon handled each completed write on its own), and hold nothing else.
fn assert_steps(events: &[Value], name: &str, from: &str, via: &str, to: &str) {
    let got = transitions(events);
    assert!(
        got == [t(name, from, to)] || got == [t(name, from, via), t(name, via, to)],
        "{name}: {from} -> {to} (or through {via}) expected: {events:#?}"
    );
}

#[test]
fn edits_become_exactly_the_right_events() {
    let env = Env::new();
    let (coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let root = project.join(".claude");

    let c = env.cursor();
    write(&root.join("commands/hello.md"), "local edit\n");
    let ev = env.events_since(c);
    assert_eq!(
        transitions(&ev),
        [t("hello", "in_sync", "modified")],
        "{ev:#?}"
    );
    assert_eq!(ev[0]["changed_side"], "project");
    assert_eq!(ev[0]["recommendation"], "push_to_collection");
    assert_eq!(ev[0]["artifact_type"], "command");
    assert_eq!(ev[0]["profile_root"], ".claude");
    assert!(ev[0]["project_sha"].as_str().unwrap().len() == 64);

    let c = env.cursor();
    write(&coll.join("agents/helper.md"), "upstream edit\n");
    let ev = env.events_since(c);
    assert_eq!(
        transitions(&ev),
        [t("helper", "in_sync", "outdated")],
        "{ev:#?}"
    );
    assert_eq!(ev[0]["changed_side"], "collection");

    let c = env.cursor();
    write(&root.join("skills/review/SKILL.md"), "mine\n");
    write(&coll.join("skills/review/refs/guide.md"), "theirs\n");
    let ev = env.events_since(c);
    assert_steps(&ev, "review", "in_sync", "modified", "conflict");

    // Revert: back in sync.
    let c = env.cursor();
    let review = Artifact::skill("review");
    for (f, content) in &review.files {
        write(&root.join("skills/review").join(f), content);
        write(&coll.join("skills/review").join(f), content);
    }
    let ev = env.events_since(c);
    assert_steps(&ev, "review", "conflict", "outdated", "in_sync");

    // Deleting a deployed copy: missing.
    let c = env.cursor();
    std::fs::remove_file(root.join("agents/helper.md")).unwrap();
    let ev = env.events_since(c);
    assert_eq!(
        transitions(&ev),
        [t("helper", "outdated", "missing")],
        "{ev:#?}"
    );

    // Rewriting identical content is not an event.
    let c = env.cursor();
    write(&root.join("commands/hello.md"), "local edit\n");
    assert!(env.events_since(c).is_empty());
}

#[test]
fn renames_into_and_out_of_an_artifact() {
    let env = Env::new();
    let (_coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let outside = project.join("notes.md");
    let inside = project.join(".claude/skills/review/notes.md");
    write(&outside, "moved in\n");

    let c = env.cursor();
    std::fs::rename(&outside, &inside).unwrap();
    assert_eq!(
        transitions(&env.events_since(c)),
        [t("review", "in_sync", "modified")]
    );
    let c = env.cursor();
    std::fs::rename(&inside, &outside).unwrap();
    assert_eq!(
        transitions(&env.events_since(c)),
        [t("review", "modified", "in_sync")]
    );
    // A whole artifact folder renamed away and back.
    let c = env.cursor();
    let dir = project.join(".claude/skills/review");
    std::fs::rename(&dir, project.join("parked")).unwrap();
    assert_eq!(
        transitions(&env.events_since(c)),
        [t("review", "in_sync", "missing")]
    );
    let c = env.cursor();
    std::fs::rename(project.join("parked"), &dir).unwrap();
    assert_eq!(
        transitions(&env.events_since(c)),
        [t("review", "missing", "in_sync")]
    );
}

fn many(n: usize) -> Vec<Artifact> {
    (0..n)
        .map(|i| Artifact::skill(Box::leak(format!("s{i:03}").into_boxed_str())))
        .collect()
}

fn burst(root: &Path, skills: usize, writes: usize) {
    for i in 0..writes {
        let s = i % skills;
        write(
            &root.join(format!("skills/s{s:03}/f{}.md", i % 7)),
            format!("write {i}\n"),
        );
    }
}

#[test]
fn a_burst_of_ten_thousand_writes_ends_as_a_scan_would() {
    let env = Env::new();
    let arts = many(100);
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("proj");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let _d = env.daemon();
    add(&env, &project);
    burst(&project.join(".claude"), 100, 8_000);
    burst(&coll, 50, 2_000);
    assert_matches_scratch(&env, &[&project]);
    let v = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(v["drift_count"], 100, "every skill was written");
}

#[test]
fn lost_events_are_recovered_by_a_rescan() {
    let env = Env::new();
    // A queue of one hint: a burst overflows it, which must trigger a full reconcile.
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[watch]\nqueue_capacity = 1\n",
    );
    let arts = many(40);
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("proj");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let d = env.daemon();
    add(&env, &project);
    burst(&project.join(".claude"), 40, 2_000);
    burst(&coll, 20, 500);
    assert_matches_scratch(&env, &[&project]);
    assert!(
        d.log_text().contains("file events were lost"),
        "the overflow path was not taken:\n{}",
        d.log_text()
    );
}

#[test]
fn restart_and_resume_yield_every_event_once() {
    let env = Env::new();
    let (coll, project) = setup(&env, &three());
    let start;
    {
        let _d = env.daemon();
        add(&env, &project);
        start = env.cursor();
        write(&project.join(".claude/commands/hello.md"), "one\n");
        env.smctl_json(&["drift", "--sync"]);
    }
    // Changed while the daemon was down: reported at the next start.
    write(&coll.join("agents/helper.md"), "two\n");
    let _d = env.daemon();
    write(&project.join(".claude/skills/review/SKILL.md"), "three\n");
    let ev = env.events_since(start);
    let cursors: Vec<u64> = ev.iter().map(|e| e["cursor"].as_u64().unwrap()).collect();
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        cursors, sorted,
        "cursors must be strictly increasing: {cursors:?}"
    );
    assert_eq!(
        transitions(&ev),
        [
            t("hello", "in_sync", "modified"),
            t("helper", "in_sync", "outdated"),
            t("review", "in_sync", "modified"),
        ]
    );
}

#[test]
fn polling_fallback_is_reported_and_still_detects() {
    let env = Env::new();
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[watch]\npoll_interval_ms = 100\n",
    );
    let (_coll, project) = setup(&env, &three());
    let mut cmd = env.command(&crate::common::skillmeatd_bin());
    cmd.env("SKILLMEATD_FAULT_WATCH_LIMIT", "1");
    let _d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    add(&env, &project);
    let s = env.smctl_json(&["status"]);
    let polled = s["polled_roots"].as_array().unwrap();
    assert!(!polled.is_empty());
    assert!(
        polled[0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_user_watches"),
        "{s:#}"
    );
    let c = env.cursor();
    write(&project.join(".claude/commands/hello.md"), "edit\n");
    assert_eq!(
        transitions(&env.events_since(c)),
        [t("hello", "in_sync", "modified")]
    );
    let table = env.smctl(&["status", "--format", "table"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("polled:"));
}

#[test]
fn new_roots_and_projects_are_picked_up_without_restart() {
    let env = Env::new();
    let (_coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    // A new profile root appears, deployed to later.
    let c = env.cursor();
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".codex",
        &[Artifact::command("hello")],
    );
    let ev = env.events_since(c);
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "deployment_added" && e["profile_root"] == ".codex"),
        "{ev:#?}"
    );
    let c = env.cursor();
    write(&project.join(".codex/commands/hello.md"), "codex edit\n");
    assert_eq!(
        transitions(&env.events_since(c)),
        [t("hello", "in_sync", "modified")]
    );
    // A deployment file made invalid is an event, and the other roots keep working.
    let c = env.cursor();
    write(
        &project.join(".codex/.skillmeat-deployed.toml"),
        "[[deployed]\n",
    );
    let ev = env.events_since(c);
    assert!(ev.iter().any(|e| e["kind"] == "invalid_file"), "{ev:#?}");
}

/// A subscriber that does not read falls behind; it gets RESYNC, then live events.
#[test]
fn a_slow_subscriber_gets_resync_then_live_events() {
    use skillmeatd::rpc::pb;
    let env = Env::new();
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[journal]\nsubscriber_buffer = 4\n",
    );
    let arts: Vec<Artifact> = (0..600)
        .map(|i| Artifact::command(Box::leak(format!("c{i:03}").into_boxed_str())))
        .collect();
    let (_coll, project) = setup(&env, &arts);
    let _d = env.daemon();
    add(&env, &project);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = skillmeatd::connect::channel(&env.socket).await.unwrap();
        let mut client = pb::skillmeat_daemon_client::SkillmeatDaemonClient::new(channel);
        let mut stream = client
            .watch(pb::WatchRequest {
                heartbeat_ms: 60_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // Not reading while 600 events happen.
        for i in 0..600 {
            write(
                &project.join(format!(".claude/commands/c{i:03}.md")),
                "edited\n",
            );
        }
        env.smctl_json(&["drift", "--sync"]);
        // A resync carries the state current when the subscriber lagged (changes are
        // processed as they complete, so that may be mid-burst); with the events after
        // it, the subscriber ends with the full state.
        let mut resync = None;
        let mut modified = std::collections::BTreeSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while resync.is_none() || modified.len() < 600 {
            let msg = tokio::time::timeout_at(deadline, stream.message())
                .await
                .expect("no RESYNC with the full state before the deadline")
                .unwrap()
                .unwrap();
            match msg.message {
                Some(pb::watch_response::Message::Resync(r)) => {
                    modified = r
                        .artifacts
                        .iter()
                        .filter(|a| a.drift_type == pb::DriftType::Modified as i32)
                        .map(|a| a.name.clone())
                        .collect();
                    resync = Some(r);
                }
                Some(pb::watch_response::Message::Event(e)) if resync.is_some() => {
                    if e.new_drift == pb::DriftType::Modified as i32 {
                        modified.insert(e.name);
                    } else {
                        modified.remove(&e.name);
                    }
                }
                _ => {}
            }
        }
        let r = resync.unwrap();
        assert_eq!(r.reason, "lagged");
        // After the resync, live events arrive again, in order.
        write(
            &project.join(".claude/commands/c000.md"),
            "---\ndescription: c\n---\nRun it.\n",
        );
        loop {
            let msg = tokio::time::timeout_at(deadline, stream.message())
                .await
                .expect("no live event after RESYNC")
                .unwrap()
                .unwrap();
            match msg.message {
                Some(pb::watch_response::Message::Event(e)) if e.name == "c000" => {
                    assert!(e.cursor > r.cursor);
                    assert_eq!(e.new_drift, pb::DriftType::InSync as i32);
                    break;
                }
                Some(pb::watch_response::Message::Event(e)) => {
                    assert!(e.cursor > r.cursor, "an event from before the resync")
                }
                _ => {}
            }
        }
    });
}

#[test]
fn heartbeats_carry_the_cursor_and_filters_apply() {
    let env = Env::new();
    let (_coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let c = env.cursor();
    write(&project.join(".claude/commands/hello.md"), "edit\n");
    write(&project.join(".claude/agents/helper.md"), "edit\n");
    env.smctl_json(&["drift", "--sync"]);
    let out = env
        .command(&crate::common::smctl_bin())
        .args(["watch", "--format", "json", "--since", &c.to_string()])
        .args(["--type", "agent", "--heartbeat-ms", "50", "--count", "1"])
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&Value> = lines.iter().filter(|v| v["type"] == "event").collect();
    assert_eq!(events.len(), 1, "{lines:#?}");
    assert_eq!(events[0]["name"], "helper");

    // A live subscriber with nothing happening gets heartbeats with the latest cursor.
    let now = env.cursor();
    let mut child = env
        .command(&crate::common::smctl_bin())
        .args(["watch", "--format", "json", "--heartbeat-ms", "50"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let beat: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(beat["type"], "heartbeat");
    assert_eq!(beat["cursor"], now);
}

#[test]
fn watch_filters_by_drift_kind() {
    let env = Env::new();
    let (coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let c = env.cursor();
    write(&project.join(".claude/commands/hello.md"), "edit\n");
    env.smctl_json(&["drift", "--sync"]);
    write(&coll.join("agents/helper.md"), "upstream\n");
    env.smctl_json(&["drift", "--sync"]);
    // The events (from, to) a `watch --since c` with these filters replays, up to `count`.
    let replay = |filters: &[&str], count: usize| -> Vec<(String, String, String)> {
        let out = env
            .command(&crate::common::smctl_bin())
            .args(["watch", "--format", "json", "--since", &c.to_string()])
            .args(["--count", &count.to_string()])
            .args(filters)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        transitions(&lines)
    };
    assert_eq!(
        replay(&["--drift", "outdated"], 1),
        [t("helper", "in_sync", "outdated")]
    );
    // `in-sync`, spelt with a dash on the command line, matches the events leaving it.
    assert_eq!(
        replay(&["--drift", "in-sync"], 2),
        [
            t("hello", "in_sync", "modified"),
            t("helper", "in_sync", "outdated")
        ]
    );
    let out = env.smctl(&["watch", "--drift", "stale"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in-sync, modified, outdated"), "{err}");
}

/// The watcher skips exactly the transient names SkillMeat and the daemon make: a user's
/// file that only looks like one is seen at once, not at the next periodic reconcile.
#[test]
fn a_user_file_named_like_a_transaction_temporary_makes_an_event() {
    let env = Env::new();
    let (_, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let skill = project.join(".claude/skills/review");

    let c = env.cursor();
    write(&skill.join("notes.txn-1.md"), "my notes\n");
    let ev = env.events_since(c);
    assert_eq!(
        transitions(&ev),
        [t("review", "in_sync", "modified")],
        "{ev:#?}"
    );
}

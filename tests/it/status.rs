//! `smctl status` counts what it shows from counters: they must agree with a full count
//! (what a freshly started daemon reports) after every kind of change, and follow the
//! collections and the watched folders as they change.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Artifact, Env, deploy, eventually, make_collection, write};

/// The history figures of `smctl status`.
fn history(s: &Value) -> Value {
    let mut h = s["history"].clone();
    // The store's size on disk moves with sled's own housekeeping.
    h.as_object_mut().unwrap().remove("store_bytes");
    h
}

/// The inotify watches the daemon `pid` holds, as the kernel lists them.
fn watches_of(pid: u64) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|t| t.lines().filter(|l| l.starts_with("inotify wd:")).count() as u64)
        .sum()
}

#[test]
fn history_counts_agree_with_a_recount_after_edits_snapshots_tags_and_a_restart() {
    let env = Env::new();
    let arts = [Artifact::skill("canvas"), Artifact::command("hello")];
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("code/app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    // Asked once: the counters are known from here on.
    let first = history(&env.smctl_json(&["status"]));
    for i in 0..3 {
        write(
            &project.join(".claude/commands/hello.md"),
            format!("edit {i}\n"),
        );
        write(
            &coll.join("skills/canvas/SKILL.md"),
            format!("---\nname: x\n---\nv{i}\n"),
        );
        env.smctl_json(&["drift", "--sync"]);
        env.smctl_json(&["snapshot", "create", "-m", &format!("s{i}")]);
    }
    let log = env.smctl_json(&["log", "canvas"]);
    let version = log["versions"][1]["id"].as_str().unwrap().to_string();
    env.smctl_json(&["tag", &version, "good"]);
    // The sync barrier waits for the captures of every change before it.
    env.smctl_json(&["drift", "--sync"]);
    let counted = history(&env.smctl_json(&["status"]));
    assert!(counted["snapshots"].as_u64() >= Some(3), "{counted:#}");
    assert_ne!(counted, first, "the edits and snapshots are counted");
    assert!(counted["versions"].as_u64().unwrap() >= 6, "{counted:#}");
    assert!(counted["blobs"].as_u64().unwrap() > 0, "{counted:#}");
    // A restarted daemon counts everything afresh.
    drop(d);
    let _d = env.daemon();
    assert_eq!(history(&env.smctl_json(&["status"])), counted);
}

#[test]
fn collection_counts_follow_the_manifest() {
    let env = Env::new();
    let coll = make_collection(&env.skillmeat_home, "default", &[Artifact::skill("canvas")]);
    let _d = env.daemon();
    let s = env.smctl_json(&["status"]);
    assert_eq!(
        (s["collections"].as_u64(), s["artifacts"].as_u64()),
        (Some(1), Some(1))
    );
    // Rewritten just after it was read: read again all the same.
    let manifest = coll.join("collection.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let more = format!(
        "{text}\n[[artifacts]]\nname = \"hello\"\ntype = \"command\"\npath = \"commands/hello.md\"\norigin = \"local\"\nadded = \"x\"\n"
    );
    write(&manifest, &more);
    let s = env.smctl_json(&["status"]);
    assert_eq!(s["artifacts"].as_u64(), Some(2), "{s:#}");
    make_collection(&env.skillmeat_home, "second", &[Artifact::skill("one")]);
    let s = env.smctl_json(&["status"]);
    assert_eq!(
        (s["collections"].as_u64(), s["artifacts"].as_u64()),
        (Some(2), Some(3))
    );
}

#[test]
fn the_watch_count_follows_new_folders() {
    let env = Env::new();
    let arts = [Artifact::skill("canvas")];
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("code/app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let pid = u64::from(d.pid());
    let before = eventually(Duration::from_secs(20), "the first count", || {
        let s = env.smctl_json(&["status"]);
        let n = s["inotify_watches"].as_u64()?;
        (n == watches_of(pid)).then_some(n)
    });
    assert!(before > 0);
    for i in 0..5 {
        std::fs::create_dir_all(project.join(format!(".claude/skills/canvas/new{i}"))).unwrap();
    }
    // Counted again in the background, at most every two seconds.
    let after = eventually(
        Duration::from_secs(30),
        "a count of the new folders",
        || {
            let n = env.smctl_json(&["status"])["inotify_watches"].as_u64()?;
            (n >= before + 5 && n == watches_of(pid)).then_some(n)
        },
    );
    assert_eq!(after, watches_of(pid));
}

//! What the settle window holds back, with the real binaries: a completed write is final
//! and becomes its event at once; saves still in progress (truncate before close,
//! delete-then-create, write-then-rename) make one event, or none when the content is
//! unchanged; a file held open does not hold back complete writes elsewhere; a SkillMeat
//! deploy goes from outdated to in sync without flapping.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::live::{add, setup, t, three, transitions};
use crate::common::subscriber::Subscriber;
use crate::common::{Daemon, Env, write};

#[test]
fn editor_saves_make_exactly_one_event() {
    let env = Env::new();
    let (_coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let skill = project.join(".claude/skills/review/SKILL.md");

    // vim / VS Code: write a temporary file, then rename it over the original.
    let c = env.cursor();
    write(&skill.with_file_name(".SKILL.md.swp"), "v1\n");
    std::fs::rename(skill.with_file_name(".SKILL.md.swp"), &skill).unwrap();
    let ev = env.events_since(c);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(transitions(&ev), [t("review", "in_sync", "modified")]);

    // Truncate, then write.
    let c = env.cursor();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&skill).unwrap();
        f.flush().unwrap();
        f.write_all(b"v2\n").unwrap();
    }
    let ev = env.events_since(c);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["kind"], "hash_changed");

    // Delete, then create.
    let c = env.cursor();
    std::fs::remove_file(&skill).unwrap();
    std::fs::write(&skill, "v3\n").unwrap();
    let ev = env.events_since(c);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["kind"], "hash_changed");
}

#[test]
fn twenty_delete_then_recreate_saves_of_unchanged_content_raise_no_event() {
    let env = Env::new();
    let (_coll, project) = setup(&env, &three());
    let _d = env.daemon();
    add(&env, &project);
    let root = project.join(".claude");
    let c = env.cursor();
    for file in ["skills/review/SKILL.md", "commands/hello.md"] {
        let file = root.join(file);
        let content = std::fs::read(&file).unwrap();
        for _ in 0..20 {
            std::fs::remove_file(&file).unwrap();
            // A writer descheduled between the two halves, past the settle window.
            std::thread::sleep(Duration::from_millis(25));
            std::fs::write(&file, &content).unwrap();
            // The next save comes a moment later, as a person saves.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(env.events_since(c), Vec::<Value>::new());

    // The same with a change makes one event per file.
    for file in ["skills/review/SKILL.md", "commands/hello.md"] {
        let file = root.join(file);
        std::fs::remove_file(&file).unwrap();
        std::thread::sleep(Duration::from_millis(25));
        std::fs::write(&file, "changed\n").unwrap();
    }
    let ev = env.events_since(c);
    let mut seen = transitions(&ev);
    seen.sort();
    assert_eq!(
        seen,
        [
            t("hello", "in_sync", "modified"),
            t("review", "in_sync", "modified")
        ],
        "{ev:#?}"
    );
}

#[test]
fn a_skillmeat_deploy_is_one_event_per_artifact_without_flapping() {
    let env = Env::new();
    let Some(sm) = crate::common::skillmeat::SkillMeat::new(&env, "deploy without flapping") else {
        return;
    };
    let (p1, p2) = (env.path("p1"), env.path("p2"));
    crate::common::skillmeat::make_home(&env, &p1, &p2);
    let project = p1.canonicalize().unwrap();
    let p = project.to_str().unwrap();
    let _d = env.daemon();
    add(&env, &project);
    // Both collection copies change (a folder and a file): outdated.
    let coll = env.skillmeat_home.join("collections/default");
    for file in ["skills/review-skill/SKILL.md", "commands/hello.md"] {
        let text = std::fs::read_to_string(coll.join(file)).unwrap();
        write(&coll.join(file), format!("{text}\nRedeployed line.\n"));
    }
    let c = env.cursor();
    let drift = env.smctl_json(&["drift", p]);
    let outdated: Vec<&str> = drift["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["drift_type"] == "outdated")
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(outdated, ["hello", "review-skill"], "{drift}");
    let c = env
        .events_since(c)
        .last()
        .map_or(c, |e| e["cursor"].as_u64().unwrap());

    // One SkillMeat deploy of both: each goes from outdated to in sync, with nothing
    // in between (no modified, missing or conflict while the copy and record land).
    sm.run(&[
        "deploy",
        "review-skill",
        "hello",
        "--project",
        p,
        "--overwrite",
    ]);
    let ev = env.events_since(c);
    let mut seen = transitions(&ev);
    seen.sort();
    assert_eq!(
        seen,
        [
            t("hello", "outdated", "in_sync"),
            t("review-skill", "outdated", "in_sync")
        ],
        "{ev:#?}"
    );
}

/// A completed write is final and becomes its event at once, though its first kernel
/// events (the truncate, the write) said a save was under way: with a settle window of ten
/// seconds, the event still comes well before a fraction of it. A save in progress (the
/// file still open) waits until it completes.
#[test]
fn a_completed_write_is_an_event_without_waiting_for_the_settle_window() {
    let env = Env::new();
    let LongSettle {
        _daemon,
        project,
        root,
        mut sub,
    } = long_settle(&env);
    // A fifth of the settle window: only a write processed without waiting for any part
    // of it (as a quarter, once) is seen within it.
    let bound = Duration::from_secs(2);

    // Truncate, write, close.
    let t = Instant::now();
    std::fs::write(root.join("skills/review/SKILL.md"), "edited\n").unwrap();
    modified_within(&mut sub, "review", t, bound);

    // Written but still open: held back; closed: complete, and seen at once.
    let open = half_saved(&root.join("commands/hello.md"));
    let stale = env.smctl_json(&["drift", project.to_str().unwrap(), "--no-sync"]);
    assert!(
        !stale.to_string().contains("\"hello\""),
        "a save in progress is not yet in the state: {stale:#}"
    );
    let t = Instant::now();
    drop(open);
    modified_within(&mut sub, "hello", t, bound);
}

/// A deployment record is written after the copies it describes. When the record's change
/// is seen before the copy's (here the copy is still open, so its save settles, while the
/// record is complete), the copy is read again rather than judged as it was before: the
/// deployment goes from outdated to in sync, never through `modified`.
#[test]
fn a_record_seen_before_its_copy_reads_the_copy_again() {
    let env = Env::new();
    let LongSettle {
        _daemon,
        project: _,
        root,
        mut sub,
    } = long_settle(&env);
    let bound = Duration::from_secs(2);
    let coll = env
        .skillmeat_home
        .join("collections/default/commands/hello.md");
    let new = format!("{}\nA new line.\n", std::fs::read_to_string(&coll).unwrap());
    write(&coll, &new);
    let e = sub.wait_for(bound * 5, drift_changed("hello"));
    assert_eq!(e["new_drift"], "outdated", "{e:#}");
    let (old_hash, new_hash) = (
        e["deployed_sha"].as_str().unwrap().to_string(),
        e["collection_sha"].as_str().unwrap().to_string(),
    );
    let c = e["cursor"].as_u64().unwrap();

    // The deploy: the copy is written (still open), then the record names its new hash.
    let copy = {
        use std::io::Write as _;
        let mut f = std::fs::File::create(root.join("commands/hello.md")).unwrap();
        f.write_all(new.as_bytes()).unwrap();
        f.flush().unwrap();
        f
    };
    let record = root.join(".skillmeat-deployed.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains(&old_hash), "{text}");
    let started = Instant::now();
    std::fs::write(&record, text.replace(&old_hash, &new_hash)).unwrap();
    let e = sub.wait_for(bound, drift_changed("hello"));
    assert_eq!(
        (&e["old_drift"], &e["new_drift"]),
        (&"outdated".into(), &"in_sync".into()),
        "{e:#}"
    );
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());

    // The copy's own save completes: nothing more to say.
    drop(copy);
    let ev = env.events_since(c);
    assert_eq!(
        transitions(&ev),
        [t("hello", "outdated", "in_sync")],
        "{ev:#?}"
    );
}

/// A file held open for writing does not hold back a completed write elsewhere: with a
/// settle window of ten seconds, a save of another artifact made while the first file is
/// still open becomes its event at once, the open file stays out of the state, and its
/// event comes when it is closed.
#[test]
fn a_file_held_open_does_not_hold_back_a_completed_write_elsewhere() {
    let env = Env::new();
    let LongSettle {
        _daemon,
        project,
        root,
        mut sub,
    } = long_settle(&env);
    let bound = Duration::from_secs(2);

    let open = half_saved(&root.join("commands/hello.md"));
    let t = Instant::now();
    std::fs::write(root.join("skills/review/SKILL.md"), "edited\n").unwrap();
    modified_within(&mut sub, "review", t, bound);
    let now = env.smctl_json(&["drift", project.to_str().unwrap(), "--no-sync"]);
    assert!(
        !now.to_string().contains("\"hello\""),
        "the file still open is not yet in the state: {now:#}"
    );

    let t = Instant::now();
    drop(open);
    modified_within(&mut sub, "hello", t, bound);
}

/// A three-artifact project watched with a settle window of ten seconds, and a subscriber
/// connected to its events from now on (connected: what follows times the daemon, not the
/// client's start).
struct LongSettle {
    _daemon: Daemon,
    project: PathBuf,
    root: PathBuf,
    sub: Subscriber,
}

fn long_settle(env: &Env) -> LongSettle {
    let (_coll, project) = setup(env, &three());
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[watch]\nsettle_ms = 10000\nmax_settle_ms = 20000\n",
    );
    let daemon = env.daemon();
    add(env, &project);
    let start = env.cursor();
    let mut sub = Subscriber::start(
        env,
        &["--since", &start.to_string(), "--heartbeat-ms", "100"],
    );
    sub.wait_for(Duration::from_secs(30), |v| v["type"] == "heartbeat");
    LongSettle {
        _daemon: daemon,
        root: project.join(".claude"),
        project,
        sub,
    }
}

/// Matches the `drift_changed` event of the artifact `name`.
fn drift_changed(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["type"] == "event" && v["name"] == name && v["kind"] == "drift_changed"
}

/// Waits for the artifact `name` to turn `modified`, which must come within `bound` of
/// `since`.
fn modified_within(sub: &mut Subscriber, name: &'static str, since: Instant, bound: Duration) {
    let e = sub.wait_for(bound, drift_changed(name));
    assert_eq!(e["new_drift"], "modified", "{e:#}");
    assert!(since.elapsed() < bound, "{:?}", since.elapsed());
}

/// A file written but still open: a save in progress until the handle is dropped.
fn half_saved(path: &Path) -> std::fs::File {
    use std::io::Write as _;
    let mut open = std::fs::File::create(path).unwrap();
    open.write_all(b"half a save\n").unwrap();
    open.flush().unwrap();
    open
}

//! SIGHUP reloads `daemon.toml` with the real binaries: discovery, polling, journal limits
//! and history settings change live, queue sizes are reported as needing a restart (in the
//! log and in `smctl status`), a broken file keeps the running configuration and shows in
//! `smctl status`, and `Watch` streams survive.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::subscriber::Subscriber;
use crate::common::{Artifact, Env, deploy, eventually, make_collection, write};

const WAIT: Duration = Duration::from_secs(30);

fn arts() -> Vec<Artifact> {
    vec![Artifact::skill("review"), Artifact::command("hello")]
}

/// A collection and a project under `<tmp>/code/app` that only a scan of `code` finds.
fn setup(env: &Env) -> std::path::PathBuf {
    make_collection(&env.skillmeat_home, "default", &arts());
    let project = env.path("code/app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts());
    project
}

fn known(env: &Env, project: &Path) -> bool {
    env.smctl_json(&["project", "list"])["projects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["path"] == project.to_str().unwrap())
}

fn config_problem(env: &Env) -> Option<String> {
    let s = env.smctl_json(&["status"]);
    s["problems"].as_array().unwrap().iter().find_map(|p| {
        p["path"]
            .as_str()
            .unwrap()
            .ends_with("daemon.toml")
            .then(|| p["message"].as_str().unwrap().to_string())
    })
}

fn scan_config(env: &Env, extra: &str) -> String {
    format!(
        "[discovery]\nscan = [\"{}\"]\nregistry = false\n{extra}",
        env.path("code").display()
    )
}

#[test]
fn sighup_applies_discovery_and_watch_streams_keep_streaming() {
    let env = Env::new();
    let project = setup(&env);
    let d = env.daemon();
    let start = env.cursor();
    let mut sub = Subscriber::start(&env, &["--since", &start.to_string()]);
    env.smctl_json(&["drift", "--sync"]);
    assert!(
        !known(&env, &project),
        "not found before the scan is configured"
    );

    write(
        &env.skillmeat_home.join("daemon.toml"),
        scan_config(
            &env,
            "[journal]\nsubscriber_buffer = 7\nmax_events = 5000\n",
        ),
    );
    // Editing the file alone changes nothing: the daemon reloads on SIGHUP.
    env.smctl_json(&["drift", "--sync"]);
    assert!(!known(&env, &project));
    d.signal(libc::SIGHUP);
    eventually(WAIT, "the scanned project", || {
        known(&env, &project).then_some(())
    });
    let log = d.log_text();
    assert!(
        log.contains("journal.subscriber_buffer") && log.contains("needs a restart"),
        "{log}"
    );
    assert!(!log.contains("watch.queue_capacity changed"), "{log}");
    // `smctl status` names it too, with the value in force, until a restart.
    let msg = config_problem(&env).expect("the key waiting for a restart in status");
    assert!(
        msg.contains("journal.subscriber_buffer") && msg.contains("running with 1024"),
        "{msg}"
    );

    // The stream opened before the reload still delivers, on the same connection.
    write(&project.join(".claude/commands/hello.md"), "edited\n");
    let e = sub.wait_for(WAIT, |v| {
        v["type"] == "event" && v["name"] == "hello" && v["new_drift"] == "modified"
    });
    assert_eq!(e["project"], project.to_str().unwrap());
    assert!(sub.alive(), "smctl watch ended across the reload");
    assert!(d.log_text().contains("configuration reloaded"));
}

#[test]
fn a_broken_file_keeps_the_running_configuration_and_is_reported() {
    let env = Env::new();
    let project = setup(&env);
    write(
        &env.skillmeat_home.join("daemon.toml"),
        scan_config(&env, ""),
    );
    let mut d = env.daemon();
    assert!(known(&env, &project));

    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[discovery]\nscna = []\n",
    );
    d.signal(libc::SIGHUP);
    let msg = eventually(WAIT, "the configuration problem in status", || {
        config_problem(&env)
    });
    assert!(
        msg.contains("line 2") && msg.contains("did you mean `scan`?"),
        "{msg}"
    );
    assert!(msg.contains("previous configuration"), "{msg}");
    assert!(d.alive());
    assert!(d.log_text().contains("keeping the running configuration"));
    // The old discovery settings still hold.
    env.smctl_json(&["drift", "--sync"]);
    assert!(known(&env, &project));

    // Fixed and reloaded: the problem goes away.
    write(
        &env.skillmeat_home.join("daemon.toml"),
        scan_config(&env, ""),
    );
    d.signal(libc::SIGHUP);
    eventually(WAIT, "the problem to clear", || {
        config_problem(&env).is_none().then_some(())
    });
}

#[test]
fn sighup_switches_polling_on_and_changes_are_still_seen() {
    let env = Env::new();
    let project = setup(&env);
    write(
        &env.skillmeat_home.join("daemon.toml"),
        scan_config(&env, ""),
    );
    let d = env.daemon();
    let polled = |s: &Value| s["polled_roots"].as_array().unwrap().len();
    assert_eq!(polled(&env.smctl_json(&["status"])), 0);

    write(
        &env.skillmeat_home.join("daemon.toml"),
        scan_config(
            &env,
            "[watch]\nforce_polling = true\npoll_interval_ms = 100\n",
        ),
    );
    d.signal(libc::SIGHUP);
    let s = eventually(WAIT, "polled roots", || {
        let s = env.smctl_json(&["status"]);
        (polled(&s) > 0).then_some(s)
    });
    assert_eq!(polled(&s), s["watched_roots"].as_u64().unwrap() as usize);
    assert!(
        s["polled_roots"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("force_polling"),
        "{s:#}"
    );
    write(&project.join(".claude/commands/hello.md"), "edited\n");
    let v = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(v["drift_count"], 1, "{v:#}");
}

/// Queries made while SIGHUP switches polling on and off are all answered: a barrier
/// planned against the way of watching that a switch just replaced is planned again
/// (its cookie file would never be seen by the kernel watcher the switch dropped).
#[test]
fn queries_during_polling_switches_are_all_answered() {
    let env = Env::new();
    let project = setup(&env);
    let file = env.skillmeat_home.join("daemon.toml");
    write(&file, scan_config(&env, ""));
    let d = env.daemon();
    let polled = |s: &Value| s["polled_roots"].as_array().unwrap().len();
    env.smctl_json(&["status"]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut switching = Vec::new();
    let mut failures = std::thread::scope(|s| {
        let queries = s.spawn(|| {
            let mut failures = Vec::new();
            let mut asked = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || asked < 20 {
                let out = env.smctl(&["status", "--format", "json"]);
                asked += 1;
                if !out.status.success() {
                    failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            failures
        });
        for round in 0..30 {
            let on = round % 2 == 0;
            let extra = if on {
                "[watch]\nforce_polling = true\npoll_interval_ms = 100\n"
            } else {
                ""
            };
            write(&file, scan_config(&env, extra));
            d.signal(libc::SIGHUP);
            eventually(WAIT, "the switch", || {
                let out = env.smctl(&["status", "--format", "json"]);
                if !out.status.success() {
                    switching.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                let s: Value = serde_json::from_slice(&out.stdout).ok()?;
                ((polled(&s) > 0) == on).then_some(())
            });
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        queries.join().unwrap()
    });
    failures.append(&mut switching);
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    write(&project.join(".claude/commands/hello.md"), "edited\n");
    let v = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(v["drift_count"], 1, "{v:#}");
}

/// The automatic snapshots of `project`.
fn auto_snapshots(env: &Env, project: &Path) -> usize {
    env.smctl_json(&["snapshot", "list", project.to_str().unwrap()])["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["origin"] == "watch")
        .count()
}

#[test]
fn sighup_applies_the_automatic_snapshot_interval() {
    let env = Env::new();
    let project = setup(&env);
    let file = env.skillmeat_home.join("daemon.toml");
    let hello = project.join(".claude/commands/hello.md");
    write(
        &file,
        scan_config(&env, "[history]\nauto_snapshot_interval_secs = 3600\n"),
    );
    let d = env.daemon();
    // The first change gets its automatic snapshot at once (none was taken before) ...
    write(&hello, "one\n");
    eventually(WAIT, "the first automatic snapshot", || {
        (auto_snapshots(&env, &project) == 1).then_some(())
    });
    // ... the next one waits for the interval.
    write(&hello, "two\n");
    env.smctl_json(&["drift", "--sync"]);
    assert_eq!(auto_snapshots(&env, &project), 1);

    write(
        &file,
        scan_config(&env, "[history]\nauto_snapshot_interval_secs = 1\n"),
    );
    d.signal(libc::SIGHUP);
    eventually(WAIT, "the snapshot the shorter interval allows", || {
        (auto_snapshots(&env, &project) == 2).then_some(())
    });
    let log = d.log_text();
    assert!(
        log.contains("configuration reloaded")
            && log.contains("history.auto_snapshot_interval_secs"),
        "{log}"
    );
}

#[test]
fn sighup_applies_retention_at_once() {
    let env = Env::new();
    let project = setup(&env);
    let file = env.skillmeat_home.join("daemon.toml");
    let hello = project.join(".claude/commands/hello.md");
    write(
        &file,
        scan_config(&env, "[history]\nauto_snapshot_interval_secs = 3600\n"),
    );
    let d = env.daemon();
    let log = || env.smctl_json(&["log", "hello", "--project", project.to_str().unwrap()]);
    let origins = |log: &Value| -> Vec<String> {
        log["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["origin"].as_str().unwrap().to_string())
            .collect()
    };
    eventually(WAIT, "the deployed base in history", || {
        (origins(&log()) == ["deploy"]).then_some(())
    });
    for content in ["one\n", "two\n", "three\n"] {
        write(&hello, content);
        env.smctl_json(&["drift", "--sync"]);
    }
    // The deployed base, and each edit: everything younger than an hour is kept.
    assert_eq!(origins(&log()), ["watch", "watch", "watch", "deploy"]);
    let newest = log()["versions"][0]["id"].clone();

    // One version per week: the newest edit and the still deployed base stay; of the two
    // older edits, only one the automatic snapshot holds may stay.
    write(
        &file,
        scan_config(
            &env,
            "[history]\nauto_snapshot_interval_secs = 3600\n\
             [history.retention]\nkeep_all_secs = 0\nhourly_secs = 0\ndaily_secs = 0\n",
        ),
    );
    d.signal(libc::SIGHUP);
    let after = eventually(WAIT, "retention by the new policy", || {
        let l = log();
        (origins(&l).len() < 4).then_some(l)
    });
    assert_eq!(after["versions"][0]["id"], newest, "{after:#}");
    assert_eq!(origins(&after).last().unwrap(), "deploy", "{after:#}");
    assert!(d.log_text().contains("history retention"));
}

//! Desktop notifications with the real binaries on a private session bus, with
//! python-dbusmock's notification server standing in for the desktop's: one edit makes
//! one notification naming the artifact and its drift; the next change updates it in
//! place; a burst stays within the rate limit; a mute silences a project across restarts;
//! quiet hours hold everything and end with one summary; an action chosen on a
//! notification runs the operation (in `smctl audit`) or opens a diff; no bus at all and a
//! server that goes away leave drift served and the problem reported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::desktop::Desktop;
use crate::common::{Artifact, Daemon, Env, age, deploy, eventually, make_collection, write};

const WAIT: Duration = Duration::from_secs(30);

fn skill(name: &'static str) -> Artifact {
    Artifact {
        name,
        kind: "skill",
        files: vec![(
            "SKILL.md",
            "---\nname: x\nversion: 1.0.0\n---\nline one\nline two\n",
        )],
    }
}

/// A collection with `names` deployed into `<tmp>/<project>` (aged, so hashes are cached).
fn project(env: &Env, project: &str, names: &[&'static str]) -> PathBuf {
    let arts: Vec<Artifact> = names.iter().map(|n| skill(n)).collect();
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let dir = env.path(project);
    deploy(&env.skillmeat_home, "default", &dir, ".claude", &arts);
    age(&coll);
    age(&dir);
    dir.canonicalize().unwrap()
}

fn config(env: &Env, notify: &str) {
    write(
        &env.skillmeat_home.join("daemon.toml"),
        format!("[discovery]\nregistry = false\n\n[notify]\n{notify}\n"),
    );
}

fn start(env: &Env, desktop: &Desktop, projects: &[&Path]) -> Daemon {
    let d = env.daemon_cmd(desktop.command(env), &[], &env.socket, "daemon.log");
    for p in projects {
        env.smctl_json(&["project", "add", p.to_str().unwrap()]);
    }
    d
}

fn edit(path: &Path, line: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(line);
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn skill_md(project: &Path, name: &str) -> PathBuf {
    project.join(format!(".claude/skills/{name}/SKILL.md"))
}

fn status(env: &Env) -> Value {
    env.smctl_json(&["notify", "status"])
}

#[test]
fn one_edit_one_notification_then_updated_in_place() {
    let env = Env::new();
    let Some(desktop) = Desktop::start(&env, "body actions", "one_edit") else {
        return;
    };
    let app = project(&env, "app", &["canvas", "review"]);
    config(&env, "coalesce_ms = 300");
    let _d = start(&env, &desktop, &[&app]);

    edit(&skill_md(&app, "canvas"), "my edit");
    let shown = desktop.wait_for(1, "the first notification");
    assert_eq!(shown[0].summary, "app: canvas modified");
    assert!(
        shown[0].body.contains("edited in the project")
            && shown[0].body.contains(app.to_str().unwrap()),
        "{}",
        shown[0].body
    );
    assert_eq!(
        shown[0].actions,
        ["diff", "Show diff", "push", "Push", "mute", "Mute project"]
    );
    // Nothing else follows from that one edit.
    env.smctl_json(&["drift", "--sync"]);
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(desktop.notifications().len(), 1);

    // The next change of the project updates the same notification.
    edit(&skill_md(&app, "review"), "another edit");
    let shown = desktop.wait_for(2, "the update");
    assert_eq!(shown[1].replaces_id, shown[0].id, "{shown:#?}");
    assert_eq!(shown[1].summary, "app: 2 artifacts drifted");
    assert!(
        shown[1]
            .body
            .starts_with("canvas modified, review modified"),
        "{}",
        shown[1].body
    );

    let s = status(&env);
    assert_eq!(s["available"], true, "{s}");
    assert_eq!(s["server"]["name"], "mock-notify");
    assert_eq!(s["capabilities"], serde_json::json!(["body", "actions"]));
    assert_eq!(
        (s["shown"].as_u64(), s["updated"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["last"]["summary"], "app: 2 artifacts drifted");

    // `smctl notify test` shows one now.
    let t = env.smctl_json(&["notify", "test"]);
    let shown = desktop.wait_for(3, "the test notification");
    assert_eq!(t["id"].as_u64(), Some(u64::from(shown[2].id)));
    assert_eq!(shown[2].summary, "skillmeatd: test notification");
}

#[test]
fn a_burst_of_40_edits_raises_at_most_3_notifications() {
    let env = Env::new();
    let Some(desktop) = Desktop::start(&env, "body actions", "burst") else {
        return;
    };
    let names: Vec<&'static str> = (0..40)
        .map(|i| &*Box::leak(format!("s{i:02}").into_boxed_str()))
        .collect();
    let app = project(&env, "app", &names);
    config(&env, "coalesce_ms = 100");
    let _d = start(&env, &desktop, &[&app]);

    let started = std::time::Instant::now();
    for (i, n) in names.iter().enumerate() {
        edit(&skill_md(&app, n), "burst");
        let next = Duration::from_millis(12 * (i as u64 + 1));
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    assert!(started.elapsed() < Duration::from_millis(1500));
    // Drift is served whatever the notifications do.
    let drift = env.smctl_json(&["drift", app.to_str().unwrap(), "--sync"]);
    assert_eq!(drift["artifacts"].as_array().unwrap().len(), 40);
    let first = desktop.wait_for(1, "a notification");
    // Let every window (100 ms) end several times over, then count.
    std::thread::sleep(Duration::from_millis(1500));
    let shown = desktop.notifications();
    assert!((1..=3).contains(&shown.len()), "{shown:#?}");
    for n in &shown[1..] {
        assert_eq!(n.replaces_id, first[0].id, "updated in place: {shown:#?}");
    }
    let s = status(&env);
    assert_eq!(s["shown"].as_u64(), Some(1), "{s}");
}

#[test]
fn a_muted_project_stays_silent_across_restarts() {
    let env = Env::new();
    let Some(desktop) = Desktop::start(&env, "body actions", "mute") else {
        return;
    };
    let app = project(&env, "app", &["canvas"]);
    let lib = env.path("lib");
    deploy(
        &env.skillmeat_home,
        "default",
        &lib,
        ".claude",
        &[skill("canvas")],
    );
    age(&lib);
    let lib = lib.canonicalize().unwrap();
    config(&env, "coalesce_ms = 200");
    let mut d = start(&env, &desktop, &[&app, &lib]);

    let m = env.smctl_json(&["notify", "mute", app.to_str().unwrap()]);
    assert_eq!(m["until"], "");
    // Restarted: the mute was stored.
    d.signal_and_wait(libc::SIGTERM);
    let _d = start(&env, &desktop, &[]);
    let s = status(&env);
    assert_eq!(s["mutes"][0]["path"], app.to_str().unwrap(), "{s}");
    assert_eq!(s["mutes"][0]["from_config"], false);

    edit(&skill_md(&app, "canvas"), "muted edit");
    env.smctl_json(&["drift", "--sync"]);
    // The unmuted project's edit, made after, is told; the muted one's never is.
    edit(&skill_md(&lib, "canvas"), "edit");
    let shown = desktop.wait_for(1, "the unmuted project's notification");
    std::thread::sleep(Duration::from_millis(600));
    let shown_after = desktop.notifications();
    assert_eq!(shown_after.len(), 1, "{shown_after:#?}");
    assert_eq!(shown[0].summary, "lib: canvas modified");

    // Unmuted: the next change is told (the collection moved: both now conflict).
    let u = env.smctl_json(&["notify", "unmute", app.to_str().unwrap()]);
    assert_eq!(u["removed"], true);
    edit(
        &env.skillmeat_home
            .join("collections/default/skills/canvas/SKILL.md"),
        "upstream",
    );
    eventually(WAIT, "the unmuted project's notification", || {
        desktop
            .notifications()
            .iter()
            .any(|n| n.summary == "app: canvas conflict")
            .then_some(())
    });
    let m = env.smctl_json(&["notify", "mute", app.to_str().unwrap(), "--for", "2h"]);
    assert!(m["until"].as_str().unwrap().ends_with('Z'), "{m}");
    let bad = env.smctl(&["notify", "mute", app.to_str().unwrap(), "--for", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("30m, 2h"));
}

#[test]
fn quiet_hours_hold_notifications_then_one_summary() {
    let env = Env::new();
    let Some(desktop) = Desktop::start(&env, "body actions", "quiet") else {
        return;
    };
    let app = project(&env, "app", &["canvas", "review"]);
    // Quiet from an hour ago until 15 s from now (UTC, the daemon's time zone here).
    let now = chrono::Utc::now().time();
    let q = |t: chrono::NaiveTime| t.format("%H:%M:%S").to_string();
    let end = now + chrono::Duration::seconds(15);
    config(
        &env,
        &format!(
            "coalesce_ms = 100\nquiet_hours = \"{}-{}\"",
            q(now - chrono::Duration::hours(1)),
            q(end)
        ),
    );
    let mut cmd = desktop.command(&env);
    cmd.env("TZ", "UTC");
    let _d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    env.smctl_json(&["project", "add", app.to_str().unwrap()]);

    edit(&skill_md(&app, "canvas"), "quiet edit");
    edit(&skill_md(&app, "review"), "quiet edit");
    env.smctl_json(&["drift", "--sync"]);
    eventually(WAIT, "both changes held", || {
        let s = status(&env);
        (s["held"].as_u64() == Some(2)).then_some(())
    });
    let s = status(&env);
    assert_eq!(s["in_quiet_hours"], true, "{s}");
    assert!(
        desktop.notifications().is_empty(),
        "nothing shown in quiet hours"
    );

    let shown = desktop.wait_for(1, "the summary after the quiet hours");
    assert_eq!(
        shown[0].summary,
        "During quiet hours: 2 changes in 1 project"
    );
    assert_eq!(shown[0].body, "app: canvas modified, review modified");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(desktop.notifications().len(), 1, "one summary");
}

#[test]
fn actions_run_the_operation_and_show_the_diff() {
    let env = Env::new();
    let Some(desktop) = Desktop::start(&env, "body actions", "actions") else {
        return;
    };
    let app = project(&env, "app", &["canvas"]);
    let opened = env.path("opened");
    std::fs::create_dir_all(&opened).unwrap();
    config(
        &env,
        &format!(
            "coalesce_ms = 200\nshow_diff_with = [\"cp\", \"-t\", \"{}\"]",
            opened.display()
        ),
    );
    let _d = start(&env, &desktop, &[&app]);

    let coll_md = env
        .skillmeat_home
        .join("collections/default/skills/canvas/SKILL.md");
    let text = std::fs::read_to_string(&coll_md).unwrap();
    write(&coll_md, text.replace("line two", "line 2"));
    let shown = desktop.wait_for(1, "the outdated notification");
    assert_eq!(shown[0].summary, "app: canvas outdated");
    assert_eq!(
        shown[0].actions,
        ["diff", "Show diff", "pull", "Pull", "mute", "Mute project"]
    );

    // "Show diff": a diff file, handed to the opener.
    desktop.invoke(shown[0].id, "diff");
    let diff = eventually(WAIT, "the opened diff", || {
        let f = std::fs::read_dir(&opened).ok()?.next()?.ok()?.path();
        std::fs::read_to_string(f).ok().filter(|t| !t.is_empty())
    });
    assert!(
        diff.contains("-line 2") && diff.contains("+line two"),
        "{diff}"
    );

    // "Pull": the daemon's own operation, logged.
    desktop.invoke(shown[0].id, "pull");
    let audit = eventually(WAIT, "the pull in the audit", || {
        let a = env.smctl_json(&["audit"]);
        let ops = a["operations"].as_array()?.clone();
        // Its record is there from the start, as `running`, until it ends.
        (!ops.is_empty() && ops[0]["status"] != "running").then_some(ops)
    });
    assert_eq!(audit[0]["operation"], "sync_pull");
    assert_eq!(audit[0]["success"], true);
    assert_eq!(audit[0]["safety_snapshots"].as_array().unwrap().len(), 1);
    let drift = env.smctl_json(&["drift", app.to_str().unwrap(), "--sync"]);
    assert!(drift["artifacts"].as_array().unwrap().is_empty(), "{drift}");
    let s = status(&env);
    assert!(
        s["last_action"]
            .as_str()
            .unwrap()
            .starts_with("pull canvas"),
        "{s}"
    );

    // In sync again: the notification, now untrue, was closed.
    eventually(WAIT, "the notification closed", || {
        (desktop.calls("CloseNotification") == 1).then_some(())
    });

    // "Mute project" mutes it for notify.action_mute_secs.
    edit(&skill_md(&app, "canvas"), "local edit");
    let shown = desktop.wait_for(2, "the modified notification");
    assert_eq!(shown[1].summary, "app: canvas modified");
    assert_eq!(
        shown[1].replaces_id, 0,
        "a closed notification is not replaced"
    );
    desktop.invoke(shown[1].id, "mute");
    let s = eventually(WAIT, "the mute", || {
        let s = status(&env);
        (!s["mutes"].as_array()?.is_empty()).then_some(s)
    });
    assert!(
        s["mutes"][0]["until"].as_str().unwrap().ends_with('Z'),
        "{s}"
    );
}

#[test]
fn without_a_bus_drift_is_served_and_the_problem_reported_once() {
    let env = Env::new();
    let app = project(&env, "app", &["canvas"]);
    let d = env.daemon();
    env.smctl_json(&["project", "add", app.to_str().unwrap()]);
    edit(&skill_md(&app, "canvas"), "edit");
    let drift = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(drift["artifacts"][0]["drift_type"], "modified");

    let s = eventually(WAIT, "the problem", || {
        let s = status(&env);
        (s["problem"] != "").then_some(s)
    });
    assert_eq!(s["available"], false);
    assert!(
        s["problem"].as_str().unwrap().contains("session bus"),
        "{s}"
    );
    let first_retry = s["next_retry"].as_str().unwrap().to_string();
    assert!(!first_retry.is_empty());
    let test = env.smctl(&["notify", "test"]);
    assert_eq!(test.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&test.stderr).contains("session bus"),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    // Retried (with backoff), logged once.
    eventually(WAIT, "a retry", || {
        (status(&env)["next_retry"] != first_retry.as_str()).then_some(())
    });
    let log = d.log_text();
    assert_eq!(
        log.matches("desktop notifications: cannot connect").count(),
        1,
        "{log}"
    );
    // notify.desktop unset: no bus is no problem, but doctor says why nothing is shown.
    let check = doctor_check(&env, 0);
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["message"].as_str().unwrap().contains("session bus"),
        "{check}"
    );
    // notify.desktop = true: it needs action.
    config(&env, "desktop = true");
    d.signal(libc::SIGHUP);
    eventually(WAIT, "the reload", || {
        (status(&env)["required"] == true).then_some(())
    });
    let check = doctor_check(&env, 1);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("DBUS_SESSION_BUS_ADDRESS"),
        "{check}"
    );
}

/// `smctl doctor`'s notifications check; asserts its exit code. The SkillMeat CLI is
/// kept out of `PATH` (its check is skipped then).
fn doctor_check(env: &Env, code: i32) -> Value {
    let no_bin = env.path("empty-bin");
    std::fs::create_dir_all(&no_bin).unwrap();
    let out = env
        .command(&crate::common::smctl_bin())
        .args(["doctor", "--format", "json"])
        .env("PATH", &no_bin)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let doctor: Value = serde_json::from_slice(&out.stdout).unwrap();
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notifications")
        .cloned()
        .unwrap_or_else(|| panic!("{doctor}"))
}

#[test]
fn a_server_that_goes_away_is_reported_and_picked_up_again() {
    let env = Env::new();
    let Some(mut desktop) = Desktop::start(&env, "body", "server_goes_away") else {
        return;
    };
    let app = project(&env, "app", &["canvas"]);
    config(&env, "coalesce_ms = 100");
    let _d = start(&env, &desktop, &[&app]);
    eventually(WAIT, "the server", || {
        (status(&env)["available"] == true).then_some(())
    });

    desktop.stop_server();
    let s = eventually(WAIT, "the problem", || {
        let s = status(&env);
        (s["problem"] != "").then_some(s)
    });
    assert!(s["problem"].as_str().unwrap().contains("went away"), "{s}");
    edit(&skill_md(&app, "canvas"), "edit");
    let drift = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(drift["artifacts"][0]["drift_type"], "modified");

    // Back: noticed at once (NameOwnerChanged), and used. No actions without the capability.
    desktop.start_server();
    eventually(WAIT, "the server again", || {
        (status(&env)["available"] == true).then_some(())
    });
    edit(&skill_md(&app, "canvas"), "edit again");
    env.smctl_json(&["notify", "test"]);
    let shown = desktop.wait_for(1, "a notification");
    assert!(shown.iter().all(|n| n.actions.is_empty()), "{shown:#?}");
}

#[test]
fn bad_notify_settings_are_refused_with_the_reason() {
    let env = Env::new();
    for (toml, needle) in [
        ("coalesce_ms = 700000", "notify.coalesce_ms"),
        ("quiet_hours = \"22:00\"", "quiet_hours"),
        ("kinds = [\"modifed\"]", "modified"),
        ("desktp = true", "did you mean `desktop`?"),
    ] {
        config(&env, toml);
        let out = env
            .command(&crate::common::skillmeatd_bin())
            .args(["run", "--check-config"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{toml}: {err}");
    }
}

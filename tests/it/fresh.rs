//! Fresh answers by default: every query reflects the changes made before it, with no
//! flag and no pause, on the real binaries; `--no-sync` answers at once; write-backs
//! return only once the live state includes their writes; polled folders are fresh
//! without waiting for the poll interval.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use skillmeatd::hash::{Variant, content_hash};

use crate::common::{Artifact, Env, age, deploy, drift_pairs, make_collection, write};

/// A collection `default` with the command `hello`, deployed into `<tmp>/app/.claude`.
/// Returns the collection and the (canonical) project.
fn setup(env: &Env, daemon_toml: Option<&str>) -> (PathBuf, PathBuf) {
    let coll = make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::command("hello")],
    );
    let project = env.path("app");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &[Artifact::command("hello")],
    );
    if let Some(toml) = daemon_toml {
        write(&env.skillmeat_home.join("daemon.toml"), toml);
    }
    age(&coll);
    age(&project);
    (coll, project.canonicalize().unwrap())
}

fn add(env: &Env, project: &Path) {
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
}

/// `echo "$line" >> path`.
fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// The entry of `name` in a drift answer.
fn entry<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
}

/// The exit code of `smctl drift PROJECT --exit-code` with `extra` arguments.
fn drift_exit(env: &Env, project: &Path, extra: &[&str]) -> i32 {
    let out = env.smctl(
        &[
            &[
                "drift",
                project.to_str().unwrap(),
                "--exit-code",
                "--format",
                "json",
            ][..],
            extra,
        ]
        .concat(),
    );
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.code().unwrap()
}

/// The first sequence: `echo x >> .claude/commands/hello.md; smctl drift`, ten
/// times in a row, each answer showing exactly the content just written.
#[test]
fn an_edit_is_in_the_very_next_drift_ten_times_in_a_row() {
    let env = Env::new();
    let (_coll, project) = setup(&env, None);
    let _d = env.daemon();
    add(&env, &project);
    let hello = project.join(".claude/commands/hello.md");
    for i in 0..10 {
        append(&hello, &format!("x{i}"));
        let v = env.smctl_json(&["drift", project.to_str().unwrap()]);
        let e = entry(&v, "hello").unwrap_or_else(|| panic!("edit {i}: no drift: {v:#}"));
        assert_eq!(e["drift_type"], "modified", "edit {i}: {v:#}");
        assert_eq!(
            e["project_sha"].as_str().unwrap(),
            content_hash(&hello, Variant::Legacy).unwrap(),
            "edit {i}: the answer is older than the edit"
        );
    }
}

/// `smctl status`, `smctl project list` and `smctl log` answer about the state after the
/// change made just before them.
#[test]
fn status_projects_and_log_are_fresh_by_default() {
    let env = Env::new();
    let (_coll, project) = setup(&env, None);
    let _d = env.daemon();
    add(&env, &project);
    let p = project.to_str().unwrap();
    let artifacts = env.smctl_json(&["status"])["artifacts"].as_u64().unwrap();

    // An agent added to the collection and deployed: one more collection artifact (read
    // from disk by each Status) and one more deployment (from the live state), at once.
    let both = [Artifact::command("hello"), Artifact::agent("helper")];
    make_collection(&env.skillmeat_home, "default", &both);
    deploy(&env.skillmeat_home, "default", &project, ".claude", &both);
    let status = env.smctl_json(&["status"]);
    assert_eq!(
        status["artifacts"].as_u64(),
        Some(artifacts + 2),
        "{status:#}"
    );

    let hello = project.join(".claude/commands/hello.md");
    append(&hello, "local edit");
    let list = env.smctl_json(&["project", "list"]);
    let mine = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == p)
        .unwrap();
    assert_eq!(mine["drift"]["modified"], 1, "{list:#}");

    append(&hello, "another edit");
    let log = env.smctl_json(&["log", "hello", "--project", p]);
    assert_eq!(
        log["versions"][0]["content_hash"].as_str().unwrap(),
        content_hash(&hello, Variant::Legacy).unwrap(),
        "the newest version is the content just written: {log:#}"
    );
}

/// `--no-sync` answers from the state as it is, without waiting for a batch held back
/// (here a file just emptied, which waits up to `max_settle_ms` to be written); the
/// default waits for it. `--sync`, the old spelling of the default, is still accepted.
#[test]
fn no_sync_answers_at_once_and_the_default_waits_for_pending_changes() {
    let env = Env::new();
    let (_coll, project) = setup(&env, Some("[watch]\nmax_settle_ms = 3000\n"));
    let _d = env.daemon();
    add(&env, &project);
    let p = project.to_str().unwrap();
    assert_eq!(drift_exit(&env, &project, &["--sync"]), 0);

    // A save that truncated the file and has not written it yet (still open: a closed
    // file is final and processed at once).
    let _saving = std::fs::File::create(project.join(".claude/commands/hello.md")).unwrap();
    let stale = env.smctl_json(&["drift", p, "--no-sync"]);
    assert_eq!(drift_pairs(&stale), [], "{stale:#}");
    let fresh = env.smctl_json(&["drift", p]);
    assert_eq!(
        drift_pairs(&fresh),
        [("hello".to_string(), "modified".to_string())]
    );
    // The last of --sync and --no-sync wins.
    assert_eq!(drift_exit(&env, &project, &["--sync", "--no-sync"]), 1);
    assert_eq!(drift_exit(&env, &project, &["--no-sync", "--sync"]), 1);
    for args in [
        &["status", "--no-sync"][..],
        &["project", "list", "--no-sync"],
        &["log", "hello", "--project", p, "--no-sync"],
    ] {
        env.smctl_json(args);
    }
}

/// A sync cookie is answered as soon as it is seen: it is an empty file just written, and
/// must never wait the longest settle window as a half-saved file would.
#[test]
fn the_barrier_never_waits_the_longest_settle_window_for_its_own_cookie() {
    let env = Env::new();
    // So long that a single wait for it would fail the bound below.
    let (_coll, project) = setup(&env, Some("[watch]\nmax_settle_ms = 30000\n"));
    let _d = env.daemon();
    add(&env, &project);
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(drift_exit(&env, &project, &["--sync"]), 0);
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "three barriers took {:?}",
        started.elapsed()
    );
}

/// The second sequence: right after a write-back returns, even an answer that
/// does not wait (`--no-sync`) shows its result; so does the default one
/// (`smctl sync push X --project P --yes && smctl drift --exit-code`).
#[test]
fn every_write_back_is_in_the_live_state_when_it_returns() {
    let env = Env::new();
    let (coll, project) = setup(&env, None);
    let _d = env.daemon();
    add(&env, &project);
    let p = project.to_str().unwrap();
    let hello = project.join(".claude/commands/hello.md");
    let kind = |env: &Env| {
        let v = env.smctl_json(&["drift", p, "--all", "--no-sync"]);
        entry(&v, "hello").unwrap()["drift_type"]
            .as_str()
            .unwrap()
            .to_string()
    };
    append(&hello, "local edit");
    env.smctl_json(&["sync", "push", "hello", "--project", p, "--yes"]);
    assert_eq!(drift_exit(&env, &project, &["--no-sync"]), 0, "after push");
    assert_eq!(drift_exit(&env, &project, &[]), 0, "after push");

    append(&coll.join("commands/hello.md"), "upstream edit");
    env.smctl_json(&["sync", "pull", "hello", "--project", p, "--yes"]);
    assert_eq!(drift_exit(&env, &project, &["--no-sync"]), 0, "after pull");
    assert_eq!(drift_exit(&env, &project, &[]), 0, "after pull");
    // The deployed content is in history: the base of the merge and the rollback below.
    let snap = env.smctl_json(&["snapshot", "create", p])["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Both sides edited: a merge writes the project copy, undo puts it back.
    let text = std::fs::read_to_string(&hello).unwrap();
    write(&hello, format!("Local first line.\n{text}"));
    append(&coll.join("commands/hello.md"), "another upstream edit");
    env.smctl_json(&["drift", p]);
    assert_eq!(kind(&env), "conflict");
    env.smctl_json(&["merge", "hello", "--project", p, "--yes"]);
    assert_eq!(kind(&env), "modified", "after merge");
    env.smctl_json(&["undo", "--yes"]);
    assert_eq!(kind(&env), "conflict", "after undo");

    // Back to the deployed content: only the collection's edit remains.
    env.smctl_json(&["rollback", "hello", "--project", p, "--to", &snap, "--yes"]);
    assert_eq!(kind(&env), "outdated", "after rollback");
}

/// Every folder polled (the watch limit exhausted) and a poll interval no test waits
/// for: the barrier asks for a walk now instead of waiting for the next one, and writes
/// nothing into the project.
#[test]
fn polled_folders_are_fresh_without_waiting_for_the_poll_interval() {
    let env = Env::new();
    let (_coll, project) = setup(&env, Some("[watch]\npoll_interval_ms = 60000\n"));
    let mut cmd = env.command(&crate::common::skillmeatd_bin());
    cmd.env("SKILLMEATD_FAULT_WATCH_LIMIT", "1");
    let _d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    add(&env, &project);
    let status = env.smctl_json(&["status"]);
    assert!(
        status["watched_roots"].as_u64()
            == Some(status["polled_roots"].as_array().unwrap().len() as u64),
        "every root is polled: {status:#}"
    );
    let hello = project.join(".claude/commands/hello.md");
    for i in 0..3 {
        append(&hello, &format!("x{i}"));
        let v = env.smctl_json(&["drift", project.to_str().unwrap()]);
        assert_eq!(
            entry(&v, "hello").map(|e| e["project_sha"].clone()),
            Some(content_hash(&hello, Variant::Legacy).unwrap().into()),
            "edit {i}: {v:#}"
        );
    }
    let cookies: Vec<_> = walkdir::WalkDir::new(&project)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| skillmeatd::transient::is_cookie(e.path()))
        .collect();
    assert!(cookies.is_empty(), "{cookies:?}");
}

/// Twenty commands `cmd00`…`cmd19` of a collection `default`, deployed into `<tmp>/app`
/// (aged, so their content is hashed, not assumed). Returns the names and the (canonical)
/// project.
fn twenty_deployments(env: &Env) -> (Vec<&'static str>, PathBuf) {
    // Artifact names are `&'static str`.
    let names: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("cmd{i:02}").into_boxed_str()))
        .collect();
    let arts: Vec<Artifact> = names.iter().map(|n| Artifact::command(n)).collect();
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    age(&coll);
    age(&project);
    (names, project.canonicalize().unwrap())
}

/// `smctl log` of `name` in `project`, as JSON (`Null` when it fails).
/// How many of `names` have a version yet, asked without waiting for the history backlog.
fn recorded_so_far(env: &Env, project: &Path, names: &[&str]) -> usize {
    names
        .iter()
        .filter(|n| {
            log_of(env, project, n, &["--no-sync"])["versions"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
        })
        .count()
}

fn log_of(env: &Env, project: &Path, name: &str, extra: &[&str]) -> Value {
    let p = project.to_str().unwrap();
    let mut args = vec!["log", name, "--project", p, "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.smctl(&args);
    serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
}

/// Recording the history of a project just added is not on the drift path. With each
/// base and first version taking 100 ms longer to record (fault `history.bulk=slow`), a
/// project of twenty deployments is added and its drift answered while most of its
/// history is still queued; `smctl log`, a history query, waits until it is recorded and
/// shows each base.
#[test]
fn drift_does_not_wait_for_bases_and_log_does() {
    let env = Env::new();
    let (names, project) = twenty_deployments(&env);
    let p = project.to_str().unwrap();
    let mut cmd = env.command(&crate::common::skillmeatd_bin());
    cmd.env(skillmeatd::faults::ENV, "history.bulk=slow");
    let _d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");

    add(&env, &project);
    let drift = env.smctl_json(&["drift", p, "--all"]);
    assert_eq!(
        drift["artifacts"].as_array().map(Vec::len),
        Some(20),
        "drift answers with every deployment: {drift:#}"
    );
    let log = |name: &str, extra: &[&str]| log_of(&env, &project, name, extra);
    let recorded = recorded_so_far(&env, &project, &names);
    assert!(
        recorded < 20,
        "2 s of bases were not all recorded when drift answered ({recorded} of 20)"
    );
    for n in &names {
        let file = project.join(format!(".claude/commands/{n}.md"));
        let v = log(n, &[]);
        assert_eq!(v["versions"][0]["origin"], "deploy", "{n}: {v:#}");
        assert_eq!(
            v["versions"][0]["content_hash"].as_str(),
            Some(content_hash(&file, Variant::Legacy).unwrap().as_str()),
            "{n}: {v:#}"
        );
    }
}

/// An edit made while the history backlog of a project just added is still being
/// recorded (each base 100 ms slower, fault `history.bulk=slow`) does not wait for it: the
/// sync barrier after the edit answers once the edit is a version, its base (still queued)
/// recorded first as its parent, while most other bases are still queued. Once the
/// backlog is done, every base is there once and the history counters agree with a
/// recount by a restarted daemon.
#[test]
fn an_edit_during_the_history_backlog_is_a_version_without_waiting_for_it() {
    let env = Env::new();
    let (names, project) = twenty_deployments(&env);
    let p = project.to_str().unwrap();
    let mut cmd = env.command(&crate::common::skillmeatd_bin());
    cmd.env(skillmeatd::faults::ENV, "history.bulk=slow");
    let d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    add(&env, &project);

    // The last deployment in the backlog's order.
    let edited = project.join(".claude/commands/cmd19.md");
    let deployed = content_hash(&edited, Variant::Legacy).unwrap();
    write(&edited, "edited during the backlog\n");
    env.smctl_json(&["drift", p, "--sync"]);
    let v = log_of(&env, &project, "cmd19", &["--no-sync"]);
    let versions = v["versions"].as_array().cloned().unwrap_or_default();
    assert_eq!(versions.len(), 2, "the edit and its base: {v:#}");
    assert_eq!(
        (
            versions[0]["origin"].as_str(),
            versions[0]["content_hash"].as_str()
        ),
        (
            Some("watch"),
            Some(content_hash(&edited, Variant::Legacy).unwrap().as_str())
        ),
        "{v:#}"
    );
    assert_eq!(
        (
            versions[1]["origin"].as_str(),
            versions[1]["content_hash"].as_str()
        ),
        (Some("deploy"), Some(deployed.as_str())),
        "{v:#}"
    );
    assert_eq!(versions[0]["parents"][0], versions[1]["id"], "{v:#}");
    let recorded = recorded_so_far(&env, &project, &names);
    assert!(
        recorded < 20,
        "the edit waited for the backlog ({recorded} of 20 recorded)"
    );

    // `smctl log` waits for the backlog: every base once, the edit's history unchanged.
    for n in &names {
        let v = log_of(&env, &project, n, &[]);
        let want = if *n == "cmd19" { 2 } else { 1 };
        assert_eq!(
            v["versions"].as_array().map(Vec::len),
            Some(want),
            "{n}: {v:#}"
        );
        assert_eq!(v["versions"][want - 1]["origin"], "deploy", "{n}: {v:#}");
    }
    // The store's size on disk moves with sled's own housekeeping.
    let history = |env: &Env| {
        let mut h = env.smctl_json(&["status"])["history"].clone();
        h.as_object_mut().unwrap().remove("store_bytes");
        h
    };
    let counted = history(&env);
    drop(d);
    let _d = env.daemon();
    assert_eq!(history(&env), counted, "the counters agree with a recount");
}

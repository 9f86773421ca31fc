//! Write-back operations with the real binaries: sync pull/push, merge (clean, conflicting,
//! without a base, dry run), undo, rollback, the confirmation rule, a held SkillMeat lock,
//! and the operations log.

use std::path::Path;

use serde_json::Value;
use skillmeatd::hash::{Variant, content_hash};

use crate::common::world::{SKILL_MD, World, edit, files, pair, skill};
use crate::common::{Artifact, Env, age, deploy, make_collection, write};

#[test]
fn sync_pull_fixes_outdated_and_needs_yes_without_a_terminal() {
    let w = World::new();
    let _d = w.start();
    assert_eq!(w.drift(), pair("in_sync"));
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    assert_eq!(w.drift(), pair("outdated"));
    let before = files(&w.project);

    // stdin is not a terminal here: without --yes it refuses, writing nothing.
    let out = w.env.smctl(&["sync", "pull", "canvas", "--project", w.p()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A dry run needs no --yes and writes nothing.
    let dry = w.json(&["sync", "pull", "canvas", "--project", w.p(), "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["operation"], Value::Null);
    assert_eq!(
        dry["changed"],
        serde_json::json!([".claude/skills/canvas/SKILL.md"])
    );
    assert_eq!(files(&w.project), before);

    let cursor = w.env.cursor();
    let r = w.json(&["sync", "pull", "canvas", "--project", w.p(), "--yes"]);
    let op = &r["operation"];
    assert_eq!(op["operation"], "sync_pull");
    // The drift events our writes cause name the operation.
    let events = w.env.events_since(cursor);
    let ours = events
        .iter()
        .find(|e| e["name"] == "canvas" && e["new_drift"] == "in_sync")
        .unwrap_or_else(|| panic!("no event for canvas: {events:?}"));
    assert_eq!(
        ours["operation"],
        op["id"].as_u64().unwrap().to_string(),
        "{ours}"
    );
    assert_eq!(op["success"], true);
    assert!(op["safety_snapshots"][0].as_str().unwrap().starts_with('s'));
    assert_eq!(
        std::fs::read(w.project_skill().join("SKILL.md")).unwrap(),
        std::fs::read(w.coll.join("skills/canvas/SKILL.md")).unwrap()
    );
    assert_eq!(
        w.recorded_hash(),
        content_hash(&w.project_skill(), Variant::Legacy).unwrap()
    );
    assert_eq!(w.drift(), pair("in_sync"));
    // The safety snapshot holds the project as it was.
    let snap = w.json(&[
        "snapshot",
        "show",
        op["safety_snapshots"][0].as_str().unwrap(),
    ]);
    assert_eq!(snap["origin"], "sync", "{snap}");
}

#[test]
fn sync_push_fixes_modified_and_updates_the_lock() {
    let w = World::new();
    let _d = w.start();
    edit(&w.project_skill().join("SKILL.md"), "line three", "line 3!");
    write(&w.project_skill().join("refs/new.md"), "new\n");
    assert_eq!(w.drift(), pair("modified"));
    let r = w.json(&["sync", "push", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(r["operation"]["operation"], "sync_push");
    assert_eq!(
        r["operation"]["safety_snapshots"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        files(&w.coll.join("skills/canvas")),
        files(&w.project_skill())
    );
    let lock: toml::Table = std::fs::read_to_string(w.coll.join("collection.lock"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        lock["lock"]["entries"]["canvas::skill"]["content_hash"].as_str(),
        Some(
            content_hash(&w.coll.join("skills/canvas"), Variant::Legacy)
                .unwrap()
                .as_str()
        )
    );
    assert_eq!(
        w.recorded_hash(),
        content_hash(&w.project_skill(), Variant::Legacy).unwrap()
    );
    assert_eq!(w.drift(), pair("in_sync"));
}

#[test]
fn merge_combines_edits_dry_run_writes_nothing_and_undo_restores() {
    let w = World::new();
    let _d = w.start();
    assert_eq!(w.drift(), pair("in_sync"));
    // The deployed content is in history (the merge base).
    w.json(&["snapshot", "create", w.p()]);
    edit(
        &w.project_skill().join("SKILL.md"),
        "line one",
        "line ONE (local)",
    );
    edit(
        &w.coll.join("skills/canvas/SKILL.md"),
        "line five",
        "line FIVE (collection)",
    );
    assert_eq!(w.drift(), pair("conflict"));
    let before = files(&w.project);
    let recorded = w.recorded_hash();

    let dry = w.json(&["merge", "canvas", "--project", w.p(), "--dry-run"]);
    assert_eq!(dry["conflicts"], serde_json::json!([]), "{dry}");
    let merged = dry["merged"][0]["content"].as_str().unwrap();
    assert!(merged.contains("line ONE (local)") && merged.contains("line FIVE (collection)"));
    assert!(dry["base_version"].as_str().unwrap().starts_with('v'));
    assert_eq!(files(&w.project), before, "a dry run writes nothing");

    let r = w.json(&["merge", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(r["operation"]["operation"], "merge");
    let text = std::fs::read_to_string(w.project_skill().join("SKILL.md")).unwrap();
    assert!(text.contains("line ONE (local)"), "{text}");
    assert!(text.contains("line FIVE (collection)"), "{text}");
    // No conflict left: the collection's content is the new base; the project keeps its
    // own edit on top of it.
    assert_eq!(
        w.recorded_hash(),
        content_hash(&w.coll.join("skills/canvas"), Variant::DeployedCopy).unwrap()
    );
    assert_eq!(w.drift(), pair("modified"));

    let u = w.json(&["undo", "--yes"]);
    assert_eq!(u["operation"]["operation"], "undo");
    assert_eq!(u["operation"]["undoes"], r["operation"]["id"]);
    assert_eq!(
        files(&w.project),
        before,
        "undo restores the project byte for byte"
    );
    assert_eq!(w.recorded_hash(), recorded);
    assert_eq!(w.drift(), pair("conflict"));

    let audit = w.json(&["audit"]);
    let ops: Vec<&str> = audit["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["merge", "undo"], "{audit}");
    let first = &audit["operations"][0];
    assert_eq!(first["success"], true);
    assert_eq!(
        first["files_merged"],
        serde_json::json!([".claude/skills/canvas/SKILL.md"])
    );
    assert!(!first["safety_snapshots"].as_array().unwrap().is_empty());
    let later = w.json(&["audit", "--since", "2030-01-01T00:00"]);
    assert_eq!(later["operations"], serde_json::json!([]));
}

/// Runs smctl with `--format json`; its exit code and parsed stdout.
fn json_and_code(env: &Env, args: &[&str]) -> (Option<i32>, Value) {
    let out = env.smctl(&[args, &["--format", "json"]].concat());
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "smctl {args:?}: not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

#[test]
fn finding_14_a_merge_that_leaves_conflict_markers_exits_1_and_lists_the_files() {
    let w = World::new();
    let _d = w.start();
    w.json(&["snapshot", "create", w.p()]);
    edit(
        &w.project_skill().join("SKILL.md"),
        "line three",
        "line three (local)",
    );
    edit(
        &w.coll.join("skills/canvas/SKILL.md"),
        "line three",
        "line three (collection)",
    );
    let recorded = w.recorded_hash();
    let (code, r) = json_and_code(&w.env, &["merge", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(code, Some(1), "conflicts left are not a success: {r}");
    assert_eq!(r["operation"]["success"], false, "{r}");
    assert_eq!(r["operation"]["status"], "conflicted", "{r}");
    assert!(
        r["operation"]["error"]
            .as_str()
            .unwrap()
            .contains(".claude/skills/canvas/SKILL.md"),
        "{r}"
    );
    let c = &r["conflicts"][0];
    assert_eq!(c["path"], ".claude/skills/canvas/SKILL.md", "{r}");
    assert_eq!(c["kind"], "both_modified");
    assert_eq!(c["binary"], false);
    assert_eq!(
        r["operation"]["files_conflicted"],
        serde_json::json!([".claude/skills/canvas/SKILL.md"])
    );
    let text = std::fs::read_to_string(w.project_skill().join("SKILL.md")).unwrap();
    assert!(
        text.contains("<<<<<<< LOCAL (current)\nline three (local)\n"),
        "{text}"
    );
    assert!(
        text.contains("=======\nline three (collection)\n>>>>>>> REMOTE (incoming)"),
        "{text}"
    );
    assert_eq!(
        w.recorded_hash(),
        recorded,
        "the record waits for the conflict"
    );

    // Plain undo takes the conflicted merge (it wrote files) and puts the copy back.
    let undo = w.json(&["undo", "--yes"]);
    assert_eq!(undo["operation"]["undoes"], r["operation"]["id"], "{undo}");
    assert!(
        !std::fs::read_to_string(w.project_skill().join("SKILL.md"))
            .unwrap()
            .contains("<<<<<<<")
    );
    // In text the same: exit 1, and the output says the files ARE written, with markers.
    let out = w.env.smctl(&[
        "merge",
        "canvas",
        "--project",
        w.p(),
        "--yes",
        "--format",
        "table",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ARE written") && text.contains("conflict markers"),
        "{text}"
    );
    assert!(text.contains(".claude/skills/canvas/SKILL.md"), "{text}");
    w.json(&["undo", "--yes"]);
    // --prefer collection resolves it the other way.
    let r = w.json(&[
        "merge",
        "canvas",
        "--project",
        w.p(),
        "--prefer",
        "collection",
        "--yes",
    ]);
    assert_eq!(r["conflicts"][0]["resolved"], "collection", "{r}");
    assert_eq!(
        std::fs::read(w.project_skill().join("SKILL.md")).unwrap(),
        std::fs::read(w.coll.join("skills/canvas/SKILL.md")).unwrap()
    );
    assert_eq!(w.drift(), pair("in_sync"));
}

#[test]
fn merge_without_a_known_base_is_refused() {
    let w = World::new();
    // Both copies changed before the daemon ever saw the deployed content.
    edit(&w.project_skill().join("SKILL.md"), "line one", "line 1");
    edit(
        &w.coll.join("skills/canvas/SKILL.md"),
        "line five",
        "line 5",
    );
    let _d = w.start();
    assert_eq!(w.drift(), pair("conflict"));
    let before = files(&w.project);
    let out = w
        .env
        .smctl(&["merge", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no known base") && err.contains("smctl diff"),
        "{err}"
    );
    assert_eq!(files(&w.project), before);
}

#[test]
fn a_held_skillmeat_lock_fails_the_write_and_changes_nothing() {
    let w = World::new();
    let _d = w.start();
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    assert_eq!(w.drift(), pair("outdated"));
    let before = files(&w.project);
    let lock = skillmeatd::writer::lock_path(&w.project_skill());
    let held = std::fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    let out = w
        .env
        .smctl(&["sync", "pull", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another process"), "{err}");
    drop(held);
    assert_eq!(files(&w.project), before, "nothing changed");
    let audit = w.json(&["audit"]);
    let op = &audit["operations"][0];
    assert_eq!(op["success"], false, "{audit}");
    assert!(
        op["error"]
            .as_str()
            .unwrap()
            .contains("locked by another process")
    );
    assert_eq!(w.drift(), pair("outdated"));
}

#[test]
fn rollback_of_a_collection_artifact_updates_lock_and_audit() {
    let w = World::new();
    let _d = w.start();
    let snap = w.json(&["snapshot", "create", "default"]);
    let sid = snap["id"].as_str().unwrap();
    let original = files(&w.coll.join("skills/canvas"));
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    let r = w.json(&[
        "rollback",
        "canvas",
        "--collection",
        "default",
        "--to",
        sid,
        "--yes",
    ]);
    assert_eq!(r["operation"]["operation"], "rollback", "{r}");
    assert_eq!(r["changed"], serde_json::json!(["skills/canvas/SKILL.md"]));
    assert_eq!(files(&w.coll.join("skills/canvas")), original);
    let audit = std::fs::read_to_string(
        w.env
            .skillmeat_home
            .join("audit/default_rollback_audit.toml"),
    )
    .unwrap();
    // SkillMeat's file names states the way SkillMeat does (YYYYMMDD-HHMMSS-ffffff), never
    // with our ids.
    let entry: toml::Table = audit.parse().unwrap();
    let entry = &entry["entries"].as_array().unwrap()[0];
    for key in ["source_snapshot_id", "target_snapshot_id"] {
        let id = entry[key].as_str().unwrap();
        let shape: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(shape, [8, 6, 6], "{key} = {id:?}: {audit}");
        assert!(
            id.chars().all(|c| c.is_ascii_digit() || c == '-'),
            "{audit}"
        );
    }
    assert!(!audit.contains(&format!("\"{sid}\"")), "{audit}");
    let lock: toml::Table = std::fs::read_to_string(w.coll.join("collection.lock"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        lock["lock"]["entries"]["canvas::skill"]["content_hash"].as_str(),
        Some(
            content_hash(&w.coll.join("skills/canvas"), Variant::Legacy)
                .unwrap()
                .as_str()
        )
    );
    assert_eq!(w.drift(), pair("in_sync"));
}

/// SkillMeat's sync-check entry for `name`, if it reports one.
fn skillmeat_drift(sm: &crate::common::skillmeat::SkillMeat, project: &Path, name: &str) -> Value {
    let v = sm.sync_check(project);
    v["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn skillmeat_cli_agrees_after_sync_pull_and_push() {
    let env = Env::new();
    let Some(sm) = crate::common::skillmeat::SkillMeat::new(&env, "operations interop") else {
        return;
    };
    let (p1, p2) = (env.path("p1"), env.path("p2"));
    crate::common::skillmeat::make_home(&env, &p1, &p2);
    let project = p1.canonicalize().unwrap();
    let p = project.to_str().unwrap();
    let coll_skill = env
        .skillmeat_home
        .join("collections/default/skills/review-skill");
    let proj_skill = project.join(".claude/skills/review-skill");
    let _d = env.daemon();
    env.smctl_json(&["project", "add", p]);

    // Collection changed: SkillMeat and we call it outdated; a pull fixes it for both.
    let md = coll_skill.join("SKILL.md");
    let text = std::fs::read_to_string(&md).unwrap();
    write(&md, format!("{text}\nPulled line.\n"));
    let theirs = skillmeat_drift(&sm, &project, "review-skill");
    assert_eq!(theirs["drift_type"], "outdated", "{theirs}");
    env.smctl_json(&["sync", "pull", "review-skill", "--project", p, "--yes"]);
    assert_eq!(
        skillmeat_drift(&sm, &project, "review-skill"),
        Value::Null,
        "SkillMeat sees no drift after our sync pull"
    );

    // Project changed: a push makes collection, lock and record agree for SkillMeat too.
    let md = proj_skill.join("SKILL.md");
    let text = std::fs::read_to_string(&md).unwrap();
    write(&md, format!("{text}\nPushed line.\n"));
    env.smctl_json(&["sync", "push", "review-skill", "--project", p, "--yes"]);
    assert_eq!(
        skillmeat_drift(&sm, &project, "review-skill"),
        Value::Null,
        "SkillMeat sees no drift after our sync push"
    );
    let drift = env.smctl_json(&["drift", p, "--sync"]);
    assert!(
        drift["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "review-skill"),
        "{drift}"
    );

    // A SkillMeat deploy made while the daemon runs is picked up: the command changes in
    // the collection (outdated), SkillMeat redeploys it, and the drift is gone with the
    // record change reported as such.
    let coll_cmd = env
        .skillmeat_home
        .join("collections/default/commands/hello.md");
    let text = std::fs::read_to_string(&coll_cmd).unwrap();
    write(&coll_cmd, format!("{text}\nRedeployed line.\n"));
    let drift = env.smctl_json(&["drift", p, "--sync"]);
    let hello = drift["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "hello")
        .cloned();
    assert_eq!(
        hello.map(|a| a["drift_type"].clone()),
        Some("outdated".into()),
        "{drift}"
    );
    let cursor = env.cursor();
    sm.run(&["deploy", "hello", "--project", p, "--overwrite"]);
    let drift = env.smctl_json(&["drift", p, "--sync"]);
    assert!(
        drift["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "hello"),
        "after SkillMeat's deploy: {drift}"
    );
    let events = env.events_since(cursor);
    assert!(
        events.iter().any(|e| e["name"] == "hello"
            && e["old_drift"] == "outdated"
            && e["new_drift"] == "in_sync"),
        "{events:#?}"
    );

    // SkillMeat still lists the collection and undeploys what we wrote.
    sm.run(&["list"]);
    sm.run(&["undeploy", "review-skill", "--project", p, "--force"]);
    assert!(
        !proj_skill.exists(),
        "SkillMeat removed the folder we wrote"
    );
}

#[test]
fn whole_rollbacks_restore_a_collection_and_a_project_from_a_snapshot() {
    let w = World::new();
    let _d = w.start();
    let cs = w.json(&["snapshot", "create", "default"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ps = w.json(&["snapshot", "create", w.p()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let coll_before = files(&w.coll);
    let project_before = files(&w.project);
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    write(&w.coll.join("skills/canvas/extra.md"), "extra\n");
    edit(&w.project_skill().join("SKILL.md"), "line four", "line 4");

    // A version is not a whole-target state.
    let out = w
        .env
        .smctl(&["rollback", "--collection", "default", "--to", "v1", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs a snapshot id"), "{err}");
    // A dry run lists what would change and writes nothing.
    let dry = w.json(&[
        "rollback",
        "--collection",
        "default",
        "--to",
        &cs,
        "--dry-run",
    ]);
    let mut changed: Vec<&str> = dry["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        ["skills/canvas/SKILL.md", "skills/canvas/extra.md"]
    );

    w.json(&["rollback", "--collection", "default", "--to", &cs, "--yes"]);
    assert_eq!(files(&w.coll), coll_before);
    let audit = std::fs::read_to_string(
        w.env
            .skillmeat_home
            .join("audit/default_rollback_audit.toml"),
    )
    .unwrap();
    assert!(audit.contains("operation_type = \"simple\""), "{audit}");

    let r = w.json(&["rollback", "--project", w.p(), "--to", &ps, "--yes"]);
    assert_eq!(r["operation"]["targets"][0], format!("project {}", w.p()));
    assert_eq!(files(&w.project), project_before);
    assert_eq!(w.drift(), pair("in_sync"));
}

/// Runs a write with `args` and returns its operation id and the drift events of canvas
/// it caused.
fn events_of(w: &World, args: &[&str]) -> (String, Vec<Value>) {
    w.env.smctl_json(&["drift", "--sync"]);
    let cursor = w.env.cursor();
    let r = w.json(args);
    let id = r["operation"]["id"].as_u64().unwrap().to_string();
    let events: Vec<Value> = w
        .env
        .events_since(cursor)
        .into_iter()
        .filter(|e| e["name"] == "canvas")
        .collect();
    assert!(!events.is_empty(), "{args:?} caused no event for canvas");
    (id, events)
}

#[test]
fn whole_rollbacks_and_undo_name_their_operation_in_drift_events() {
    let w = World::new();
    let _d = w.start();
    let ps = w.json(&["snapshot", "create", w.p()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cs = w.json(&["snapshot", "create", "default"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    edit(&w.project_skill().join("SKILL.md"), "line four", "line 4");
    assert_eq!(w.drift(), pair("modified"));

    for args in [
        vec!["rollback", "--project", w.p(), "--to", &ps, "--yes"],
        vec!["undo", "--yes"],
    ] {
        let (id, events) = events_of(&w, &args);
        for e in &events {
            assert_eq!(e["operation"], id.as_str(), "{args:?}: {e}");
        }
    }
    assert_eq!(w.drift(), pair("modified"), "undo put the edit back");

    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    assert_eq!(w.drift(), pair("conflict"));
    for args in [
        vec!["rollback", "--collection", "default", "--to", &cs, "--yes"],
        vec!["undo", "--yes"],
    ] {
        let (id, events) = events_of(&w, &args);
        for e in &events {
            assert_eq!(e["operation"], id.as_str(), "{args:?}: {e}");
        }
    }

    // A whole-project rollback keeping local edits: the edit recorded in the newest
    // snapshot goes, the one made since stays.
    w.json(&["snapshot", "create", w.p()]);
    edit(&w.project_skill().join("SKILL.md"), "line one", "line 1");
    let args = [
        "rollback",
        "--project",
        w.p(),
        "--to",
        &ps,
        "--mode",
        "preserve",
        "--yes",
    ];
    let (id, events) = events_of(&w, &args);
    for e in &events {
        assert_eq!(e["operation"], id.as_str(), "{args:?}: {e}");
    }
    let text = std::fs::read_to_string(w.project_skill().join("SKILL.md")).unwrap();
    assert!(
        text.contains("line 1") && text.contains("line four"),
        "{text}"
    );
}

/// Runs smctl `args` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn smctl_on_terminal(env: &Env, args: &[&str], answer: &str) -> (Option<i32>, String) {
    use std::io::Write as _;
    let line = std::iter::once(crate::common::smctl_bin().display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = env
        .command(Path::new("script"))
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn on_a_terminal_the_change_is_shown_and_confirmed() {
    let w = World::new();
    let _d = w.start();
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    let before = files(&w.project);
    let args = ["sync", "pull", "canvas", "--project", w.p()];
    let (code, text) = smctl_on_terminal(&w.env, &args, "n\n");
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("would change  .claude/skills/canvas/SKILL.md"),
        "{text}"
    );
    assert!(
        text.contains("proceed? [y/N]") && text.contains("cancelled"),
        "{text}"
    );
    assert_eq!(files(&w.project), before);
    let (code, text) = smctl_on_terminal(&w.env, &args, "y\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("sync_pull"), "{text}");
    assert_eq!(
        std::fs::read(w.project_skill().join("SKILL.md")).unwrap(),
        std::fs::read(w.coll.join("skills/canvas/SKILL.md")).unwrap()
    );
}

/// Polls (bounded) until the wall clock is past `ms`.
fn wait_until_past(ms: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while skillmeatd::history::time::now_ms() <= ms {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock did not move"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn rollback_at_a_time_picks_the_version_current_then() {
    use skillmeatd::history::time;
    let w = World::new();
    let _d = w.start();
    let ps = w.json(&["snapshot", "create", w.p()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let original = files(&w.project_skill());
    // A whole second after the first snapshot, so that `--at` (second precision) falls
    // between the two states.
    let mid = (time::now_ms() / 1000 + 1) * 1000;
    wait_until_past(mid + 1000);
    edit(&w.project_skill().join("SKILL.md"), "line two", "line 2");
    w.json(&["snapshot", "create", w.p()]);
    edit(&w.project_skill().join("SKILL.md"), "line 2", "line II");
    let at = time::format(mid);

    // Nothing that old: a clear error, nothing written.
    let before = files(&w.project);
    let out = w.env.smctl(&[
        "rollback",
        "canvas",
        "--project",
        w.p(),
        "--at",
        "2020-01-01T00:00",
        "--yes",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at or before 2020-01-01T00:00:00Z"), "{err}");
    assert_eq!(files(&w.project), before);
    // --to and --at exclude each other.
    let out = w.env.smctl(&[
        "rollback",
        "canvas",
        "--project",
        w.p(),
        "--to",
        "v1",
        "--at",
        "2h",
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(2));

    // A whole project at that time is its first snapshot.
    let dry = w.json(&["rollback", "--project", w.p(), "--at", &at, "--dry-run"]);
    assert_eq!(dry["resolved_to"], ps.as_str(), "{dry}");
    assert_eq!(
        dry["changed"],
        serde_json::json!([".claude/skills/canvas/SKILL.md"]),
        "{dry}"
    );
    assert_eq!(files(&w.project), before, "a dry run writes nothing");

    let r = w.json(&[
        "rollback",
        "canvas",
        "--project",
        w.p(),
        "--at",
        &at,
        "--yes",
    ]);
    assert_eq!(r["operation"]["operation"], "rollback", "{r}");
    assert_eq!(files(&w.project_skill()), original);
    let audit = w.json(&["audit"]);
    assert!(
        audit["operations"][0]["safety_snapshots"][0]
            .as_str()
            .is_some_and(|s| s != ps),
        "{audit}"
    );
    w.json(&["undo", "--yes"]);
    assert_eq!(files(&w.project), before, "undo restores");
}

/// A rollback `--at` a relative time, confirmed on a terminal, runs what the preview
/// resolved, however long the user took to answer: the time is resolved once.
#[test]
fn a_confirmed_rollback_at_a_time_runs_what_the_preview_showed() {
    use std::io::{Read as _, Write as _};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use skillmeatd::history::time;
    let w = World::new();
    let _d = w.start();
    let skill_md = w.project_skill().join("SKILL.md");
    edit(&skill_md, "line two", "line 2");
    w.drift();
    let first_edit = files(&w.project_skill());
    let recorded_first = time::now_ms();
    wait_until_past(recorded_first + 4000);
    edit(&skill_md, "line 2", "line II");
    w.drift();
    let recorded_second = time::now_ms();

    // `--at 3s` names the first edit now; by the time the user answers, it would name the
    // second one.
    let line = format!(
        "{} rollback canvas --project '{}' --at 3s",
        crate::common::smctl_bin().display(),
        w.p()
    );
    let mut child = w
        .env
        .command(Path::new("script"))
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = Arc::clone(&shown);
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text().contains("proceed? [y/N]") {
        assert!(Instant::now() < deadline, "no prompt: {}", text());
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_until_past(recorded_second + 3500);
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let text = text();
    assert!(status.success(), "{text}");
    assert!(text.contains("rollback canvas to v"), "{text}");
    assert_eq!(files(&w.project_skill()), first_edit, "{text}");
}

#[test]
fn preserve_keeps_edits_since_the_last_recorded_version_and_restores_the_rest() {
    let w = World::new();
    let _d = w.start();
    let s1 = w.json(&["snapshot", "create", w.p()])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A recorded change, then a local edit after it.
    write(
        &w.project_skill().join("refs/guide.md"),
        "guide, second draft\n",
    );
    w.json(&["snapshot", "create", w.p()]);
    edit(
        &w.project_skill().join("SKILL.md"),
        "line one",
        "line ONE (local)",
    );
    let before = files(&w.project);

    let args = |extra: &str| {
        vec![
            "rollback".to_string(),
            "canvas".into(),
            "--project".into(),
            w.p().into(),
            "--to".into(),
            s1.clone(),
            "--mode".into(),
            "preserve".into(),
            extra.into(),
        ]
    };
    let dry_args = args("--dry-run");
    let dry = w.json(&dry_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        dry["changed"],
        serde_json::json!([".claude/skills/canvas/refs/guide.md"]),
        "{dry}"
    );
    assert_eq!(dry["conflicts"], serde_json::json!([]));
    assert!(dry["base_version"].as_str().unwrap().starts_with('v'));
    assert_eq!(files(&w.project), before, "a dry run writes nothing");

    let yes_args = args("--yes");
    let r = w.json(&yes_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r["operation"]["operation"], "rollback", "{r}");
    assert_eq!(
        std::fs::read_to_string(w.project_skill().join("refs/guide.md")).unwrap(),
        "guide\n",
        "the recorded change is rolled back"
    );
    let text = std::fs::read_to_string(w.project_skill().join("SKILL.md")).unwrap();
    assert_eq!(
        text,
        SKILL_MD.replace("line one", "line ONE (local)"),
        "the local edit is kept"
    );
    assert_eq!(
        r["operation"]["files_restored"],
        serde_json::json!([".claude/skills/canvas/refs/guide.md"])
    );

    w.json(&["undo", "--yes"]);
    assert_eq!(files(&w.project), before, "undo restores");
}

#[test]
fn preserve_marks_overlapping_edits_and_reports_them() {
    let w = World::new();
    let _d = w.start();
    let blob = w.coll.join("skills/canvas/refs/blob.bin");
    write(&blob, b"\0target");
    let s1 = w.json(&["snapshot", "create", "default"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let skill_md = w.coll.join("skills/canvas/SKILL.md");
    edit(&skill_md, "line three", "line three (recorded)");
    write(&blob, b"\0recorded");
    w.json(&["snapshot", "create", "default"]);
    edit(&skill_md, "line three (recorded)", "line three (local)");
    write(&blob, b"\0local");
    let r = w.json(&[
        "rollback",
        "canvas",
        "--collection",
        "default",
        "--to",
        &s1,
        "--mode",
        "preserve",
        "--yes",
    ]);
    let c = &r["conflicts"][0];
    assert_eq!(c["path"], "skills/canvas/SKILL.md", "{r}");
    assert_eq!(c["kind"], "both_modified");
    assert_eq!(c["binary"], false);
    let b = &r["conflicts"][1];
    assert_eq!(b["path"], "skills/canvas/refs/blob.bin", "{r}");
    assert_eq!(b["binary"], true);
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        b"\0local",
        "a binary conflict keeps the current bytes"
    );
    assert_eq!(
        r["operation"]["files_conflicted"],
        serde_json::json!(["skills/canvas/SKILL.md", "skills/canvas/refs/blob.bin"])
    );
    let text = std::fs::read_to_string(&skill_md).unwrap();
    assert!(
        text.contains("<<<<<<< LOCAL (current)\nline three (local)\n=======\nline three\n>>>>>>> REMOTE (incoming)"),
        "{text}"
    );
    let audit = std::fs::read_to_string(
        w.env
            .skillmeat_home
            .join("audit/default_rollback_audit.toml"),
    )
    .unwrap();
    assert!(
        audit.contains("operation_type = \"intelligent\""),
        "{audit}"
    );
    assert!(audit.contains("preserve_changes_enabled = true"), "{audit}");
}

/// Makes the daemon record the current content as versions and run its automatic
/// snapshot of what changed: the first `--sync` records the versions and queues the
/// snapshot, which the daemon takes (or, rate-limited, skips) before it answers the second.
/// No other automatic snapshot follows within the rate limit, so later edits stay
/// unrecorded.
fn record_now(env: &Env) {
    env.smctl_json(&["drift", "--sync"]);
    env.smctl_json(&["drift", "--sync"]);
}

#[test]
fn whole_project_preserve_restores_recorded_changes_and_keeps_local_ones() {
    let env = Env::new();
    let arts = [skill(), Artifact::command("hello")];
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    age(&project);
    let project = project.canonicalize().unwrap();
    let p = project.to_str().unwrap();
    let _d = env.daemon();
    env.smctl_json(&["project", "add", p]);
    let s1 = env.smctl_json(&["snapshot", "create", p])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let command = project.join(".claude/commands/hello.md");
    let original_command = std::fs::read(&command).unwrap();
    // A change the daemon records (a version and a snapshot)...
    write(&command, "---\ndescription: c\n---\nRun it twice.\n");
    record_now(&env);
    env.smctl_json(&["snapshot", "create", p]);
    // ...then a local edit of another artifact and an artifact added since.
    let skill_md = project.join(".claude/skills/canvas/SKILL.md");
    edit(&skill_md, "line one", "line ONE (local)");
    let added = project.join(".claude/skills/extra/SKILL.md");
    write(&added, "---\nname: extra\n---\n# Extra\n");
    let before = files(&project);

    let args = |extra: &'static str| {
        vec![
            "rollback",
            "--project",
            p,
            "--to",
            &s1,
            "--mode",
            "preserve",
            extra,
        ]
    };
    let dry = env.smctl_json(&args("--dry-run"));
    assert_eq!(
        dry["changed"],
        serde_json::json!([".claude/commands/hello.md"]),
        "{dry}"
    );
    assert_eq!(dry["conflicts"], serde_json::json!([]), "{dry}");
    assert_eq!(files(&project), before, "a dry run writes nothing");

    let r = env.smctl_json(&args("--yes"));
    assert_eq!(r["operation"]["operation"], "rollback", "{r}");
    assert_eq!(
        r["operation"]["files_restored"],
        serde_json::json!([".claude/commands/hello.md"]),
        "{r}"
    );
    assert_eq!(
        std::fs::read(&command).unwrap(),
        original_command,
        "the recorded change is rolled back"
    );
    assert_eq!(
        std::fs::read_to_string(&skill_md).unwrap(),
        SKILL_MD.replace("line one", "line ONE (local)"),
        "the local edit is kept"
    );
    assert_eq!(
        std::fs::read_to_string(&added).unwrap(),
        "---\nname: extra\n---\n# Extra\n",
        "an artifact added since the snapshot is kept"
    );

    env.smctl_json(&["undo", "--yes"]);
    assert_eq!(files(&project), before, "undo restores");
}

#[test]
fn whole_collection_preserve_updates_only_the_written_lock_entries() {
    let env = Env::new();
    let arts = [skill(), Artifact::command("hello")];
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    age(&coll);
    let _d = env.daemon();
    let s1 = env.smctl_json(&["snapshot", "create", "default"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let command = coll.join("commands/hello.md");
    let original_command = std::fs::read(&command).unwrap();
    write(&command, "---\ndescription: c\n---\nRun it twice.\n");
    record_now(&env);
    env.smctl_json(&["snapshot", "create", "default"]);
    let skill_md = coll.join("skills/canvas/SKILL.md");
    edit(&skill_md, "line one", "line ONE (local)");
    let lock_text = || std::fs::read_to_string(coll.join("collection.lock")).unwrap();
    let lock_before: toml::Table = lock_text().parse().unwrap();
    let toml_before = std::fs::read(coll.join("collection.toml")).unwrap();
    let before = files(&coll);

    let r = env.smctl_json(&[
        "rollback",
        "--collection",
        "default",
        "--to",
        &s1,
        "--mode",
        "preserve",
        "--yes",
    ]);
    assert_eq!(
        r["operation"]["files_restored"],
        serde_json::json!(["commands/hello.md"]),
        "{r}"
    );
    assert_eq!(std::fs::read(&command).unwrap(), original_command);
    assert_eq!(
        std::fs::read_to_string(&skill_md).unwrap(),
        SKILL_MD.replace("line one", "line ONE (local)"),
        "the local edit is kept"
    );
    assert_eq!(
        std::fs::read(coll.join("collection.toml")).unwrap(),
        toml_before
    );
    let lock: toml::Table = lock_text().parse().unwrap();
    let entries = &lock["lock"]["entries"];
    assert_eq!(
        entries["hello::command"]["content_hash"].as_str(),
        Some(content_hash(&command, Variant::Legacy).unwrap().as_str())
    );
    assert_eq!(
        entries["canvas::skill"], lock_before["lock"]["entries"]["canvas::skill"],
        "an artifact not written keeps its lock entry"
    );
    let audit =
        std::fs::read_to_string(env.skillmeat_home.join("audit/default_rollback_audit.toml"))
            .unwrap();
    assert!(
        audit.contains("operation_type = \"intelligent\""),
        "{audit}"
    );
    assert!(audit.contains("preserve_changes_enabled = true"), "{audit}");

    env.smctl_json(&["undo", "--yes"]);
    assert_eq!(files(&coll), before, "undo restores");
}

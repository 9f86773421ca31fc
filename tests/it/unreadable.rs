//! Bad input never gives destructive advice: a deployment whose record, deployment file or
//! collection cannot be read, or whose copy holds a symlink loop or an unreadable file, is
//! `error` with the exact reason — in `smctl drift`, in `Watch` events, after a restart and
//! when an operation is asked for — never `removed` (advice: delete the copy) or `added`
//! (advice: deploy over it).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Artifact, Env, deploy, make_collection, write};

fn arts() -> Vec<Artifact> {
    vec![Artifact::skill("review"), Artifact::command("hello")]
}

/// A collection of two artifacts deployed into `<tmp>/app/.claude`, a daemon watching it,
/// and the cursor before any damage.
fn setup(env: &Env) -> (PathBuf, crate::common::Daemon, u64) {
    make_collection(&env.skillmeat_home, "default", &arts());
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts());
    let d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let v = env.smctl_json(&["drift", "--sync", "--all"]);
    assert!(
        v["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["drift_type"] == "in_sync"),
        "{v:#}"
    );
    let cursor = env.cursor();
    (project, d, cursor)
}

/// Every artifact of a full drift answer, by name.
fn by_name(env: &Env) -> std::collections::BTreeMap<String, Value> {
    env.smctl_json(&["drift", "--sync", "--all"])["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a.clone()))
        .collect()
}

fn assert_error(a: &Value, reason: &str) {
    assert_eq!(a["drift_type"], "error", "{a:#}");
    assert_eq!(a["recommendation"], "review_manually", "{a:#}");
    let error = a["error"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "wanted {reason:?} in {a:#}");
}

/// No answer or event advises a write on the strength of bad input.
fn assert_no_destructive_advice(env: &Env, since: u64) {
    let all = by_name(env);
    for a in all.values() {
        assert!(
            a["drift_type"] != "removed" && a["drift_type"] != "added",
            "{a:#}"
        );
    }
    for e in env.events_since(since) {
        assert!(
            e["new_drift"] != "removed" && e["new_drift"] != "added",
            "{e:#}"
        );
        assert!(
            e["kind"] != "deployment_removed" && e["kind"] != "deployment_added",
            "{e:#}"
        );
    }
}

fn deployment_file(project: &Path) -> PathBuf {
    project.join(".claude/.skillmeat-deployed.toml")
}

#[test]
fn finding_10_a_record_of_the_wrong_type_is_error_with_the_exact_reason() {
    let env = Env::new();
    let (project, _d, cursor) = setup(&env);
    let file = deployment_file(&project);
    let text = std::fs::read_to_string(&file).unwrap();
    write(
        &file,
        text.replacen("artifact_type = \"skill\"", "artifact_type = 42", 1),
    );
    let all = by_name(&env);
    assert_error(
        &all["review"],
        "deployed[0]: artifact_type: expected a string, found an integer",
    );
    assert_eq!(all["review"]["type"], "skill", "its identity is kept");
    assert_eq!(all["hello"]["drift_type"], "in_sync");
    assert_eq!(all.len(), 2, "{all:#?}");
    // Watch subscribers hear that it became unreadable, with the reason.
    let events = env.events_since(cursor);
    let e = events
        .iter()
        .find(|e| e["name"] == "review" && e["new_drift"] == "error")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(e["kind"], "unreadable");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("artifact_type: expected a string, found an integer"),
        "{e:#}"
    );
    assert_no_destructive_advice(&env, cursor);
    // An operation on it is refused with the reason, and writes nothing.
    let out = env.smctl(&[
        "sync",
        "pull",
        "review",
        "--project",
        project.to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be read") && err.contains("expected a string, found an integer"),
        "{err}"
    );
}

#[test]
fn finding_10_a_malformed_collection_toml_makes_its_deployments_error_not_removed() {
    let env = Env::new();
    let (_project, _d, cursor) = setup(&env);
    let manifest = env
        .skillmeat_home
        .join("collections/default/collection.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    write(&manifest, format!("{good}\n[[artifacts]\nname = \"x\"\n"));
    let all = by_name(&env);
    for name in ["review", "hello"] {
        assert_error(&all[name], "collection.toml: invalid TOML at line");
    }
    assert_no_destructive_advice(&env, cursor);

    // One bad entry makes only the artifact it may be unknown.
    let cursor = env.cursor();
    write(
        &manifest,
        good.replacen("type = \"command\"", "type = 3", 1),
    );
    let all = by_name(&env);
    assert_error(
        &all["hello"],
        "(hello): type: expected a string, found an integer",
    );
    assert_eq!(
        all["review"]["drift_type"], "in_sync",
        "{:#}",
        all["review"]
    );
    assert_no_destructive_advice(&env, cursor);
}

#[test]
fn finding_10_an_unreadable_deployment_file_keeps_its_deployments_as_error() {
    let env = Env::new();
    let (project, d, _) = setup(&env);
    // A second profile root deploys only the command, so the collection is in use there.
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".codex",
        &[Artifact::command("hello")],
    );
    env.smctl_json(&["drift", "--sync"]);
    let cursor = env.cursor();
    let file = deployment_file(&project);
    let text = std::fs::read_to_string(&file).unwrap();
    write(&file, &text[..text.len() / 2]);
    let check = |env: &Env| {
        let v = env.smctl_json(&["drift", "--sync", "--all"]);
        let rows: Vec<&Value> = v["artifacts"].as_array().unwrap().iter().collect();
        let of = |root: &str, name: &str| {
            rows.iter()
                .find(|a| a["profile_root"] == root && a["name"] == name)
                .copied()
                .unwrap_or_else(|| panic!("no {root} {name} in {v:#}"))
        };
        // What the broken file held is unreadable, not gone; what it may hold is unknown,
        // not `added`.
        assert_error(of(".claude", "review"), "invalid TOML");
        assert_error(of(".claude", "hello"), "invalid TOML");
        assert_eq!(of(".codex", "hello")["drift_type"], "in_sync");
        for a in &rows {
            assert!(
                a["drift_type"] != "added" && a["drift_type"] != "removed",
                "{a:#}"
            );
        }
    };
    check(&env);
    assert_no_destructive_advice(&env, cursor);
    // After a restart, the last known state still says what the file held.
    drop(d);
    let _d = env.daemon();
    check(&env);
}

#[test]
fn finding_11_a_symlink_loop_or_an_unreadable_file_on_either_side_is_error() {
    let env = Env::new();
    let (project, _d, cursor) = setup(&env);
    let copy = project.join(".claude/skills/review");
    std::os::unix::fs::symlink("loop", copy.join("loop")).unwrap();
    assert_error(&by_name(&env)["review"], "symbolic link loop");
    std::fs::remove_file(copy.join("loop")).unwrap();
    // A linked folder containing its own link is a loop too.
    std::os::unix::fs::symlink(".", copy.join("self")).unwrap();
    assert_error(&by_name(&env)["review"], "symbolic link loop");
    std::fs::remove_file(copy.join("self")).unwrap();
    assert_eq!(by_name(&env)["review"]["drift_type"], "in_sync");

    // The collection side, and a loop that is the artifact itself.
    let source = env.skillmeat_home.join("collections/default/skills/review");
    std::os::unix::fs::symlink("a", source.join("b")).unwrap();
    std::os::unix::fs::symlink("b", source.join("a")).unwrap();
    assert_error(&by_name(&env)["review"], "symbolic link loop");
    let command = project.join(".claude/commands/hello.md");
    std::fs::remove_file(&command).unwrap();
    std::os::unix::fs::symlink("hello.md", &command).unwrap();
    assert_error(&by_name(&env)["hello"], "symbolic link loop");
    assert_no_destructive_advice(&env, cursor);

    // An unreadable file (permissions mean nothing to root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        std::fs::remove_file(source.join("a")).unwrap();
        std::fs::remove_file(source.join("b")).unwrap();
        let guide = copy.join("refs/guide.md");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&guide, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert_error(&by_name(&env)["review"], "Permission denied");
        std::fs::set_permissions(&guide, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

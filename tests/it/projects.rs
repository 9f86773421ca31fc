//! Which projects the daemon knows: by hand, from SkillMeat's registry (cache.db), by scanning
//! configured folders; ignored and missing ones.

use crate::common::{Artifact, Env, deploy, make_collection, write};

fn paths(v: &serde_json::Value) -> Vec<String> {
    v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

fn canon(p: &std::path::Path) -> String {
    p.canonicalize().unwrap().display().to_string()
}

#[test]
fn add_list_remove_and_missing() {
    let env = Env::new();
    make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::command("hello")],
    );
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &[Artifact::command("hello")],
    );
    let _d = env.daemon();
    let added = env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    assert_eq!(added["projects"][0]["deployments"], 1);
    let v = env.smctl_json(&["project", "list"]);
    assert_eq!(paths(&v), [canon(&project)]);
    assert_eq!(v["projects"][0]["found_by"], serde_json::json!(["manual"]));
    assert_eq!(
        v["projects"][0]["profile_roots"],
        serde_json::json!([".claude"])
    );

    // A vanished folder stays listed as missing.
    let canonical = canon(&project);
    std::fs::rename(&project, env.path("moved")).unwrap();
    env.smctl_json(&["drift", "--sync"]);
    let v = env.smctl_json(&["project", "list"]);
    assert_eq!(paths(&v), std::slice::from_ref(&canonical));
    assert_eq!(v["projects"][0]["missing"], true);
    let out = env.smctl(&["drift", "--sync", &canonical]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no longer exists"));
    let v = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(v["drift_count"], 0);

    env.smctl_json(&["project", "remove", &canonical]);
    assert!(paths(&env.smctl_json(&["project", "list"])).is_empty());
}

#[test]
fn bad_arguments_are_refused() {
    let env = Env::new();
    let _d = env.daemon();
    let out = env.smctl(&["project", "add", env.path("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
    let out = env.smctl(&["project", "remove", env.dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not added by hand"));
}

/// SkillMeat 0.74.0's registry: table `projects` in cache.db, a sentinel row, soft deletes.
fn make_registry(env: &Env, rows: &[(&str, &str, Option<&str>)]) {
    let db = env.skillmeat_home.join("cache/cache.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE IF NOT EXISTS projects (id VARCHAR PRIMARY KEY, name VARCHAR, path VARCHAR,
           description TEXT, created_at DATETIME, updated_at DATETIME, last_fetched DATETIME,
           status VARCHAR, error_message TEXT, deleted_at DATETIME,
           default_deployment_profile_ids JSON, owner_id VARCHAR, owner_type VARCHAR,
           visibility VARCHAR);",
    )
    .unwrap();
    for (id, path, deleted) in rows {
        conn.execute(
            "INSERT INTO projects (id, name, path, status, deleted_at) VALUES (?1, 'n', ?2, 'stale', ?3)",
            rusqlite::params![id, path, deleted],
        )
        .unwrap();
    }
}

#[test]
fn registry_projects_appear_without_setup_and_new_rows_without_restart() {
    let env = Env::new();
    make_collection(&env.skillmeat_home, "default", &[Artifact::agent("helper")]);
    let one = env.path("one");
    let two = env.path("two");
    for p in [&one, &two] {
        deploy(
            &env.skillmeat_home,
            "default",
            p,
            ".claude",
            &[Artifact::agent("helper")],
        );
    }
    write(&two.join(".claude/agents/helper.md"), "edited\n");
    make_registry(
        &env,
        &[
            (
                "collection_artifacts_global",
                "~/.skillmeat/collections",
                None,
            ),
            ("a1", one.to_str().unwrap(), None),
            ("gone", "/nonexistent/deleted", Some("2026-01-01 00:00:00")),
        ],
    );
    let _d = env.daemon();
    let v = env.smctl_json(&["project", "list"]);
    assert_eq!(paths(&v), [canon(&one)]);
    assert_eq!(
        v["projects"][0]["found_by"],
        serde_json::json!(["registry"])
    );

    make_registry(&env, &[("a2", two.to_str().unwrap(), None)]);
    let v = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(v["drift_count"], 1);
    assert_eq!(v["artifacts"][0]["project"], canon(&two));

    // Ignore hides it for good; undo shows it again.
    env.smctl_json(&["project", "ignore", two.to_str().unwrap()]);
    assert_eq!(env.smctl_json(&["drift", "--sync"])["drift_count"], 0);
    let v = env.smctl_json(&["project", "list"]);
    assert_eq!(v["projects"][1]["ignored"], true);
    env.smctl_json(&["project", "ignore", "--undo", two.to_str().unwrap()]);
    assert_eq!(env.smctl_json(&["drift", "--sync"])["drift_count"], 1);
}

#[test]
fn a_broken_registry_is_a_warning() {
    let env = Env::new();
    write(
        &env.skillmeat_home.join("cache/cache.db"),
        "this is not sqlite, just junk bytes",
    );
    let _d = env.daemon();
    let out = env.smctl(&["project", "list", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(paths(&v).is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cache.db"));
}

#[test]
fn configured_folders_are_scanned() {
    let env = Env::new();
    make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::command("hello")],
    );
    let code = env.path("code");
    let found = code.join("team/app");
    deploy(
        &env.skillmeat_home,
        "default",
        &found,
        ".cursor",
        &[Artifact::command("hello")],
    );
    deploy(
        &env.skillmeat_home,
        "default",
        &code.join("node_modules/pkg"),
        ".claude",
        &[Artifact::command("hello")],
    );
    write(
        &env.skillmeat_home.join("daemon.toml"),
        format!(
            "[discovery]\nscan = [\"{}\"]\nmax_depth = 3\n",
            code.display()
        ),
    );
    let _d = env.daemon();
    let v = env.smctl_json(&["project", "list"]);
    assert_eq!(paths(&v), [canon(&found)]);
    assert_eq!(v["projects"][0]["found_by"], serde_json::json!(["scan"]));
    assert_eq!(
        v["projects"][0]["profile_roots"],
        serde_json::json!([".cursor"])
    );
}

#[test]
fn a_bad_config_stops_the_daemon_with_the_line() {
    let env = Env::new();
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[discovery]\nscna = []\n",
    );
    let out = env
        .command(&crate::common::skillmeatd_bin())
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("daemon.toml") && err.contains("line 2") && err.contains("scna"),
        "{err}"
    );
}

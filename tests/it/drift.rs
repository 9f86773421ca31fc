//! `smctl drift` on SkillMeat-shaped homes: every drift type for skills, commands and
//! agents, several profile roots, bad files reported without hiding the rest, and the hash
//! cache re-reading only what changed.

use crate::common::{Artifact, Env, age, deploy, drift_pairs, make_collection, write};

fn three() -> Vec<Artifact> {
    vec![
        Artifact::skill("review"),
        Artifact::command("hello"),
        Artifact::agent("helper"),
    ]
}

fn pair(name: &str, kind: &str) -> (String, String) {
    (name.to_string(), kind.to_string())
}

#[test]
fn every_drift_type_for_every_artifact_type() {
    let env = Env::new();
    let coll = make_collection(&env.skillmeat_home, "default", &three());
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &three(),
    );
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let p = project.to_str().unwrap();

    let v = env.smctl_json(&["drift", "--sync", p]);
    assert_eq!(v["drift_detected"], false, "{v:#}");
    assert_eq!(v["drift_count"], 0);
    let all = env.smctl_json(&["drift", "--sync", p, "--all"]);
    assert_eq!(
        drift_pairs(&all),
        [
            pair("hello", "in_sync"),
            pair("helper", "in_sync"),
            pair("review", "in_sync")
        ]
    );

    // Project edit → modified; collection edit → outdated; both → conflict.
    write(&project.join(".claude/commands/hello.md"), "local edit\n");
    write(&coll.join("agents/helper.md"), "upstream edit\n");
    write(&project.join(".claude/skills/review/SKILL.md"), "mine\n");
    write(&coll.join("skills/review/refs/guide.md"), "theirs\n");
    let v = env.smctl_json(&["drift", "--sync", p]);
    assert_eq!(
        drift_pairs(&v),
        [
            pair("hello", "modified"),
            pair("helper", "outdated"),
            pair("review", "conflict")
        ]
    );
    assert_eq!(v["drift_detected"], true);
    assert_eq!(v["drift_count"], 3);
    let hello = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "hello")
        .unwrap();
    assert_eq!(hello["type"], "command");
    assert_eq!(hello["recommendation"], "push_to_collection");
    assert_eq!(hello["last_deployed"], "2026-03-13T15:13:08Z");
    assert_eq!(
        hello["project_sha"].as_str().unwrap(),
        skillmeatd::hash::content_hash(
            &project.join(".claude/commands/hello.md"),
            skillmeatd::hash::Variant::Legacy
        )
        .unwrap()
    );
    for key in [
        "name",
        "type",
        "drift_type",
        "collection_sha",
        "project_sha",
        "collection_version",
        "project_version",
        "last_deployed",
        "recommendation",
    ] {
        assert!(
            hello.get(key).is_some(),
            "sync-check field {key} missing: {hello:#}"
        );
    }
    let helper = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "helper")
        .unwrap();
    assert_eq!(helper["recommendation"], "pull_from_collection");

    // Revert everything → in sync again.
    for a in three() {
        for (f, content) in &a.files {
            let rel = if f.is_empty() {
                a.rel()
            } else {
                format!("{}/{f}", a.rel())
            };
            write(&project.join(".claude").join(&rel), content);
            write(&coll.join(&rel), content);
        }
    }
    let v = env.smctl_json(&["drift", "--sync", p, "--exit-code"]);
    assert_eq!(v["drift_count"], 0, "{v:#}");

    // A deleted deployed copy is `missing` (SkillMeat would call it unchanged).
    std::fs::remove_file(project.join(".claude/commands/hello.md")).unwrap();
    let v = env.smctl_json(&["drift", "--sync", p]);
    assert_eq!(drift_pairs(&v), [pair("hello", "missing")]);

    // Exit code 1 with --exit-code when drifted.
    let out = env.smctl(&["drift", "--sync", p, "--exit-code", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn removed_and_added_follow_the_collection() {
    let env = Env::new();
    let mut arts = three();
    arts.push(Artifact::skill("extra"));
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &three(),
    );
    // The command leaves the collection: rewrite the manifest without it.
    let kept: Vec<Artifact> = arts.into_iter().filter(|a| a.name != "hello").collect();
    make_collection(&env.skillmeat_home, "default", &kept);
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let v = env.smctl_json(&["drift", "--sync", project.to_str().unwrap()]);
    assert_eq!(
        drift_pairs(&v),
        [pair("extra", "added"), pair("hello", "removed")]
    );
    let extra = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "extra")
        .unwrap();
    assert_eq!(extra["recommendation"], "deploy_to_project");
    assert!(extra["project_sha"].is_null());
    assert_eq!(extra["collection_version"], "1.0.0");
}

#[test]
fn every_profile_root_is_checked() {
    let env = Env::new();
    make_collection(&env.skillmeat_home, "default", &three());
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &three(),
    );
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".codex",
        &[Artifact::skill("review")],
    );
    write(
        &project.join(".codex/skills/review/SKILL.md"),
        "codex-only edit\n",
    );
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let v = env.smctl_json(&["drift", "--sync", project.to_str().unwrap()]);
    let arts = v["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 1, "{v:#}");
    assert_eq!(arts[0]["profile_root"], ".codex");
    assert_eq!(arts[0]["drift_type"], "modified");
}

#[test]
fn a_broken_project_does_not_hide_the_others() {
    let env = Env::new();
    make_collection(&env.skillmeat_home, "default", &three());
    let good = env.path("good");
    let bad = env.path("bad");
    deploy(&env.skillmeat_home, "default", &good, ".claude", &three());
    write(&good.join(".claude/commands/hello.md"), "edit\n");
    write(
        &bad.join(".claude/.skillmeat-deployed.toml"),
        "[[deployed]]\nartifact_name = \"x",
    );
    deploy(&env.skillmeat_home, "default", &bad, ".codex", &three());
    write(
        &bad.join(".gemini/.skillmeat-deployed.toml"),
        "[[deployed]]\nartifact_name = \"half\"\n",
    );
    let _d = env.daemon();
    for p in [&good, &bad] {
        env.smctl_json(&["project", "add", p.to_str().unwrap()]);
    }
    let out = env.smctl(&["drift", "--sync", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The record that cannot be read is reported as what it is, never skipped.
    assert_eq!(
        drift_pairs(&v),
        [pair("half", "error"), pair("hello", "modified")]
    );
    let of = |name: &str| {
        v["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    let canonical = |p: &std::path::Path| p.canonicalize().unwrap().display().to_string();
    assert_eq!(of("hello")["project"], canonical(&good));
    assert_eq!(of("half")["project"], canonical(&bad));
    assert!(
        of("half")["error"]
            .as_str()
            .unwrap()
            .contains("deployed[0]: missing required key(s): artifact_type"),
        "{v:#}"
    );
    let problems = v["problems"].as_array().unwrap();
    let text = serde_json::to_string(problems).unwrap();
    assert!(text.contains("invalid TOML at line"), "{text}");
    assert!(text.contains("missing required key(s)"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning:"));
}

#[test]
fn malformed_collection_is_reported_and_drift_goes_on() {
    let env = Env::new();
    let coll = make_collection(&env.skillmeat_home, "default", &three());
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &three(),
    );
    write(&coll.join("collection.lock"), "[lock\n");
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let v = env.smctl_json(&["drift", "--sync", project.to_str().unwrap()]);
    assert_eq!(v["drift_count"], 0);
    assert!(
        serde_json::to_string(&v["problems"])
            .unwrap()
            .contains("collection.lock")
    );
}

#[test]
fn unknown_project_is_a_clear_error() {
    let env = Env::new();
    let _d = env.daemon();
    let out = env.smctl(&["drift", "--sync", env.dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a known project"));
}

fn files_read(env: &Env) -> u64 {
    env.smctl_json(&["status"])["files_read"].as_u64().unwrap()
}

#[test]
fn hashes_are_cached_across_calls_and_restarts() {
    let env = Env::new();
    let coll = make_collection(&env.skillmeat_home, "default", &three());
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &three(),
    );
    age(&coll);
    age(&project);
    let p = project.to_str().unwrap();
    {
        let _d = env.daemon();
        env.smctl_json(&["project", "add", p]);
        env.smctl_json(&["drift", "--sync", p]);
        let first = files_read(&env);
        assert_eq!(first, 8, "2 skills of 2 files + 4 single files");
        env.smctl_json(&["drift", "--sync", p]);
        assert_eq!(files_read(&env), first, "a second drift re-read files");
        // One edited file re-reads only its artifact.
        write(&project.join(".claude/commands/hello.md"), "edit\n");
        age(&project.join(".claude/commands/hello.md"));
        env.smctl_json(&["drift", "--sync", p]);
        assert_eq!(files_read(&env), first + 1);
    }
    let _d = env.daemon();
    let v = env.smctl_json(&["drift", "--sync", p]);
    assert_eq!(drift_pairs(&v), [pair("hello", "modified")]);
    // hello.md was hashed as the daemon saw the edit, within the racy window of its
    // change time: that hash may be taken again (git re-hashes racily clean entries too).
    assert!(files_read(&env) <= 1, "a restart re-read unchanged files");
}

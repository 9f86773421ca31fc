//! `smctl propagate`, the version graph and selective rollback on a home the released
//! SkillMeat CLI built: one skill deployed by `skillmeat deploy` into three projects, edits
//! on both sides, a dry run, a propagation that pulls the clean projects, one that merges
//! the edited one, SkillMeat's own drift check, undo, a second round of edits, selective
//! rollbacks of a project and of the collection, and SkillMeat still at work afterwards.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::skillmeat::SkillMeat;
use crate::common::world::{edit, files};
use crate::common::{Env, write};

const SKILL: &str = "review-skill";

/// The outcome of `project` in a propagate answer.
fn outcome<'a>(r: &'a Value, project: &Path) -> &'a Value {
    r["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project"] == project.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} missing from {r}", project.display()))
}

/// SkillMeat's sync-check entry for the skill in `project` (Null: no drift).
fn skillmeat_drift(sm: &SkillMeat, project: &Path) -> Value {
    sm.sync_check(project)["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == SKILL)
        .cloned()
        .unwrap_or(Value::Null)
}

fn skill_md(project: &Path) -> PathBuf {
    project.join(".claude/skills/review-skill/SKILL.md")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn propagate_pulls_merges_undoes_and_skillmeat_agrees() {
    let env = Env::new();
    let Some(sm) = SkillMeat::new(&env, "propagate interop") else {
        return;
    };
    let (p1, p2, p3) = (env.path("p1"), env.path("p2"), env.path("p3"));
    crate::common::skillmeat::make_home(&env, &p1, &p2);
    std::fs::create_dir_all(&p3).unwrap();
    let p3 = p3.canonicalize().unwrap();
    sm.run(&[
        "deploy",
        SKILL,
        "--project",
        p3.to_str().unwrap(),
        "--overwrite",
        "--format",
        "json",
    ]);
    let (p1, p2) = (p1.canonicalize().unwrap(), p2.canonicalize().unwrap());
    let projects = [&p1, &p2, &p3];
    let coll_md = env
        .skillmeat_home
        .join("collections/default/skills/review-skill/SKILL.md");

    let _d = env.daemon();
    for p in projects {
        env.smctl_json(&["project", "add", p.to_str().unwrap()]);
    }
    // The deployed content is recorded (each deployment's base) before anything changes.
    env.smctl_json(&["drift", "--sync", "--all"]);

    // p1 edits one line, the collection another.
    edit(
        &skill_md(&p1),
        "Read the diff, then list risks.",
        "Read the diff, then list risks and missing tests.",
    );
    edit(&coll_md, "# Review skill", "# Review skill (team)");
    env.smctl_json(&["drift", "--sync", "--all"]);
    let before: Vec<_> = projects.iter().map(|p| files(p)).collect();

    // A dry run lists every project and writes nothing.
    let dry = env.smctl_json(&["propagate", SKILL, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["operation"].is_null(), "{dry}");
    assert_eq!(outcome(&dry, &p1)["action"], "skip", "{dry}");
    assert_eq!(outcome(&dry, &p1)["drift_before"], "conflict", "{dry}");
    for p in [&p2, &p3] {
        assert_eq!(outcome(&dry, p)["action"], "pull", "{dry}");
        assert_eq!(outcome(&dry, p)["drift_before"], "outdated", "{dry}");
    }
    let after: Vec<_> = projects.iter().map(|p| files(p)).collect();
    assert_eq!(after, before, "a dry run writes nothing");

    // Without a terminal and without --yes: refused, exit 2, nothing written.
    let refused = env.smctl(&["propagate", SKILL]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        projects.iter().map(|p| files(p)).collect::<Vec<_>>(),
        before
    );

    // --yes pulls the clean projects and leaves the edited one.
    let r = env.smctl_json(&["propagate", SKILL, "--yes"]);
    let op = r["operation"]["id"].as_u64().unwrap();
    assert_eq!(r["operation"]["operation"], "propagate", "{r}");
    assert_eq!(
        r["operation"]["safety_snapshots"].as_array().unwrap().len(),
        2,
        "{r}"
    );
    assert_eq!(outcome(&r, &p1)["action"], "skip");
    assert!(
        outcome(&r, &p1)["reason"]
            .as_str()
            .unwrap()
            .contains("--merge"),
        "{r}"
    );
    for p in [&p2, &p3] {
        assert_eq!(outcome(&r, p)["action"], "pull", "{r}");
        assert_eq!(outcome(&r, p)["drift_after"], "in_sync", "{r}");
        assert_eq!(read(&skill_md(p)), read(&coll_md));
        // SkillMeat's own drift check agrees.
        assert_eq!(skillmeat_drift(&sm, p), Value::Null, "{}", p.display());
    }
    assert_eq!(files(&p1), before[0], "the edited project is left alone");

    // One undo puts every project back.
    let u = env.smctl_json(&["undo", "--yes"]);
    assert_eq!(u["operation"]["undoes"], op, "{u}");
    assert_eq!(
        projects.iter().map(|p| files(p)).collect::<Vec<_>>(),
        before
    );

    // --merge: the clean ones pulled again, the edited one merged with both edits.
    let r = env.smctl_json(&["propagate", SKILL, "--merge", "--yes"]);
    assert_eq!(r["operation"]["status"], "succeeded", "{r}");
    let m = outcome(&r, &p1);
    assert_eq!(m["action"], "merge", "{r}");
    assert_eq!(m["conflicts"], serde_json::json!([]), "{r}");
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("nearest common ancestor"),
        "{r}"
    );
    let merged = read(&skill_md(&p1));
    assert!(merged.contains("# Review skill (team)"), "{merged}");
    assert!(merged.contains("list risks and missing tests."), "{merged}");
    assert!(!merged.contains("<<<<<<<"), "{merged}");
    for p in [&p2, &p3] {
        assert_eq!(outcome(&r, p)["action"], "pull", "{r}");
        assert_eq!(skillmeat_drift(&sm, p), Value::Null, "{}", p.display());
    }

    // The merged version has two parents: p1's previous one and the collection's.
    let log = env.smctl_json(&["log", SKILL, "--project", p1.to_str().unwrap(), "--graph"]);
    let versions = log["versions"].as_array().unwrap();
    let merge_v = versions
        .iter()
        .find(|v| v["origin"] == "merge" && v["owner"] == p1.to_str().unwrap())
        .unwrap_or_else(|| panic!("{log}"));
    let parents = merge_v["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 2, "{merge_v}");
    let by_id = |id: &Value| versions.iter().find(|v| &v["id"] == id).unwrap();
    assert_eq!(by_id(&parents[0])["owner"], p1.to_str().unwrap());
    assert_eq!(by_id(&parents[1])["location"], "collection default");
    let merged_in = parents[1].as_str().unwrap().to_string();
    for key in ["id", "location", "parents", "origin", "time", "hash"] {
        assert!(!merge_v[key].is_null(), "{key} missing: {merge_v}");
    }

    // Second round: the collection changes the line it changed before, p1 another one.
    // With the deployed version as base this would conflict on the first line; the graph
    // gives the version merged in last time, so it merges cleanly.
    edit(
        &coll_md,
        "# Review skill (team)",
        "# Review skill (team, v2)",
    );
    edit(
        &skill_md(&p1),
        "name: review-skill",
        "name: review-skill\nmodel: opus",
    );
    env.smctl_json(&["drift", "--sync", "--all"]);
    let r = env.smctl_json(&["propagate", SKILL, "--merge", "--yes"]);
    let m = outcome(&r, &p1);
    assert_eq!(m["action"], "merge", "{r}");
    assert_eq!(
        m["conflicts"],
        serde_json::json!([]),
        "no old conflict: {r}"
    );
    assert!(m["reason"].as_str().unwrap().contains(&merged_in), "{r}");
    let text = read(&skill_md(&p1));
    for want in ["# Review skill (team, v2)", "model: opus", "missing tests."] {
        assert!(text.contains(want), "{want:?} missing: {text}");
    }

    // Selective rollback of a project: only the named file goes back.
    let checklist = p2.join(".claude/skills/review-skill/checklist.txt");
    let old_checklist = read(&checklist);
    let p2s = p2.to_str().unwrap();
    env.smctl_json(&["drift", "--sync", "--all"]);
    let first = env.smctl_json(&["log", SKILL, "--project", p2s]);
    let oldest = first["versions"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    write(&checklist, "Checklist:\n- nothing\n");
    let md_now = read(&skill_md(&p2));
    env.smctl_json(&["drift", "--sync", "--all"]);
    let r = env.smctl_json(&[
        "rollback",
        SKILL,
        "--project",
        p2s,
        "--to",
        &oldest,
        "--paths",
        "checklist.txt",
        "--yes",
    ]);
    assert_eq!(r["operation"]["operation"], "selective_rollback", "{r}");
    assert_eq!(
        r["operation"]["paths"],
        serde_json::json!(["checklist.txt"]),
        "{r}"
    );
    assert_eq!(read(&checklist), old_checklist);
    assert_eq!(
        read(&skill_md(&p2)),
        md_now,
        "the other files stay as they are"
    );
    let audit = env.smctl_json(&["audit"]);
    let last = audit["operations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["operation"], "selective_rollback");
    assert_eq!(last["paths"], serde_json::json!(["checklist.txt"]));

    // Selective rollback of the collection: SkillMeat's audit says selective, with its
    // paths and snapshot ids in SkillMeat's own form.
    let coll_checklist = env
        .skillmeat_home
        .join("collections/default/skills/review-skill/checklist.txt");
    let coll_log = env.smctl_json(&["log", SKILL, "--collection", "default"]);
    let coll_oldest = coll_log["versions"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let original_checklist = read(&coll_checklist);
    write(&coll_checklist, "Checklist:\n- changed\n");
    let coll_md_now = read(&coll_md);
    env.smctl_json(&["drift", "--sync", "--all"]);
    env.smctl_json(&[
        "rollback",
        SKILL,
        "--collection",
        "default",
        "--to",
        &coll_oldest,
        "--paths",
        "checklist.txt",
        "--yes",
    ]);
    assert_eq!(read(&coll_checklist), original_checklist);
    assert_eq!(read(&coll_md), coll_md_now);
    let audit_file = env.skillmeat_home.join("audit/default_rollback_audit.toml");
    let audit: toml::Table = read(&audit_file).parse().unwrap();
    let entry = audit["entries"].as_array().unwrap().last().unwrap();
    assert_eq!(
        entry["operation_type"].as_str(),
        Some("selective"),
        "{entry}"
    );
    assert_eq!(
        entry["selective_paths"],
        toml::Value::Array(vec!["skills/review-skill/checklist.txt".into()])
    );
    for key in ["source_snapshot_id", "target_snapshot_id"] {
        let id = entry[key].as_str().unwrap();
        let shape: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(shape, [8, 6, 6], "{key} = {id:?}");
    }
    let raw = read(&audit_file);
    assert!(!raw.contains(&format!("\"{coll_oldest}\"")), "{raw}");

    // SkillMeat still lists, deploys and undeploys.
    let list = sm.run(&["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(SKILL));
    sm.run(&[
        "deploy",
        "hello",
        "--project",
        p3.to_str().unwrap(),
        "--overwrite",
        "--format",
        "json",
    ]);
    assert!(p3.join(".claude/commands/hello.md").is_file());
    sm.run(&["undeploy", SKILL, "--project", p2s, "--force"]);
    assert!(!p2.join(".claude/skills/review-skill").exists());
}

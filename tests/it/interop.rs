//! skillmeatd against files written by the real SkillMeat CLI (0.74.0): the hashes it records
//! in `.skillmeat-deployed.toml` and `collection.lock` are the hashes `skillmeatd hash`
//! computes, and `smctl drift` classifies project edits, collection edits and both for a
//! skill, a command and an agent, agreeing with `skillmeat sync-check` on skills.
//!
//! Known difference, asserted so that a fixed SkillMeat shows up here: `sync-check` calls
//! every deployed command and agent `removed` (it looks for skills only); skillmeatd finds
//! them through the record's `artifact_path`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::skillmeat::SkillMeat;
use crate::common::{Env, skillmeatd_bin, write};

const SKILL_MD: &str = "---\nname: review-skill\ndescription: Review code changes carefully.\n---\n# Review\n\nRead the diff, then list risks.\n";
const CHECKLIST: &str = "- tests\n- docs\n";
const COMMAND_MD: &str = "---\ndescription: Say hello\n---\nSay hello to $ARGUMENTS.\n";
const AGENT_MD: &str =
    "---\nname: helper\ndescription: A helpful agent.\n---\nYou help with small tasks.\n";

/// The three deployed artifacts: name, type, path below the collection or `.claude`, and
/// the file each edit touches (relative to that path; "" for single-file artifacts).
const ARTIFACTS: [(&str, &str, &str, &str); 3] = [
    (
        "review-skill",
        "skill",
        "skills/review-skill",
        "refs/checklist.txt",
    ),
    ("hello", "command", "commands/hello.md", ""),
    ("helper", "agent", "agents/helper.md", ""),
];

/// `skillmeatd hash PATHS…` (no daemon), one hash per path in order.
fn skillmeatd_hash(env: &Env, paths: &[PathBuf]) -> Vec<String> {
    let out = env
        .command(&skillmeatd_bin())
        .arg("hash")
        .args(paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skillmeatd hash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), paths.len());
    hashes
}

fn read_toml(path: &Path) -> toml::Table {
    std::fs::read_to_string(path)
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Drift entries by artifact name.
fn by_name(v: &Value) -> BTreeMap<String, Value> {
    v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a.clone()))
        .collect()
}

/// Appends a line to the file an edit of artifact `i` touches below `base`.
fn edit(base: &Path, i: usize, line: &str) {
    let (_, _, rel, inner) = ARTIFACTS[i];
    let file = if inner.is_empty() {
        base.join(rel)
    } else {
        base.join(rel).join(inner)
    };
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(line);
    write(&file, text);
}

/// `smctl drift` and `skillmeat sync-check` after an edit: every artifact is `expected`
/// for skillmeatd with the hashes `skillmeatd hash` gives now; for the skill, sync-check
/// says the same; commands and agents are `removed` for sync-check only.
fn check_drift(
    env: &Env,
    sm: &SkillMeat,
    project: &Path,
    coll: &Path,
    expected: &str,
    recommendation: &str,
) {
    let claude = project.join(".claude");
    let mut paths: Vec<PathBuf> = ARTIFACTS.iter().map(|a| claude.join(a.2)).collect();
    paths.extend(ARTIFACTS.iter().map(|a| coll.join(a.2)));
    let now = skillmeatd_hash(env, &paths);

    let ours = env.smctl_json(&["drift", "--sync", project.to_str().unwrap()]);
    assert_eq!(ours["drift_count"], 3, "{ours:#}");
    let ours = by_name(&ours);
    for (i, (name, kind, _, _)) in ARTIFACTS.iter().enumerate() {
        let a = &ours[*name];
        assert_eq!(a["type"], *kind, "{a:#}");
        assert_eq!(a["drift_type"], expected, "{name}: {a:#}");
        assert_eq!(a["recommendation"], recommendation, "{name}: {a:#}");
        assert_eq!(a["project_sha"], now[i].as_str(), "{name}: {a:#}");
        assert_eq!(a["collection_sha"], now[3 + i].as_str(), "{name}: {a:#}");
    }

    let theirs = sm.sync_check(project);
    let theirs = by_name(&theirs);
    let skill = &theirs["review-skill"];
    let mine = &ours["review-skill"];
    for key in [
        "drift_type",
        "collection_sha",
        "project_sha",
        "recommendation",
    ] {
        assert_eq!(
            skill[key], mine[key],
            "{key}: sync-check {skill:#} vs {mine:#}"
        );
    }
    for name in ["hello", "helper"] {
        assert_eq!(
            theirs[name]["drift_type"], "removed",
            "sync-check no longer calls deployed {name} removed: update the README's list of \
             differences ({:#})",
            theirs[name]
        );
        assert_ne!(ours[name]["drift_type"], "removed");
    }
}

#[test]
fn interop_skillmeat_cli_hashes_and_drift() {
    let env = Env::new();
    let Some(sm) = SkillMeat::new(&env, "interop_skillmeat_cli_hashes_and_drift") else {
        return;
    };
    let src = env.path("src");
    write(&src.join("review-skill/SKILL.md"), SKILL_MD);
    write(&src.join("review-skill/refs/checklist.txt"), CHECKLIST);
    write(&src.join("hello.md"), COMMAND_MD);
    write(&src.join("helper.md"), AGENT_MD);
    std::fs::create_dir_all(env.path("project")).unwrap();
    // SkillMeat records the path it is given; give it the real one.
    let project = env.path("project").canonicalize().unwrap();
    let p = project.to_str().unwrap();

    sm.run(&["init", "--name", "default"]);
    for (kind, file) in [
        ("skill", "review-skill"),
        ("command", "hello.md"),
        ("agent", "helper.md"),
    ] {
        let path = src.join(file);
        sm.run(&[
            "add",
            kind,
            path.to_str().unwrap(),
            "-y",
            "--dangerously-skip-permissions",
        ]);
    }
    sm.run(&[
        "deploy",
        "review-skill",
        "hello",
        "helper",
        "--project",
        p,
        "--format",
        "json",
    ]);
    let coll = env.skillmeat_home.join("collections/default");
    let claude = project.join(".claude");

    // (1) Every hash SkillMeat recorded is the hash skillmeatd computes.
    let deployed = read_toml(&claude.join(".skillmeat-deployed.toml"));
    let records = deployed["deployed"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{deployed:#?}");
    let mut paths = vec![];
    let mut recorded = vec![];
    for r in records {
        let root = r["profile_root_dir"].as_str().unwrap();
        paths.push(
            project
                .join(root)
                .join(r["artifact_path"].as_str().unwrap()),
        );
        recorded.push(r["content_hash"].as_str().unwrap().to_string());
        assert_eq!(r["collection_sha"].as_str(), r["content_hash"].as_str());
    }
    let manifest = read_toml(&coll.join("collection.toml"));
    let coll_path = |name: &str, kind: &str| -> PathBuf {
        let a = manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"].as_str() == Some(name) && a["type"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("{name}::{kind} not in collection.toml"));
        coll.join(a["path"].as_str().unwrap())
    };
    let lock = read_toml(&coll.join("collection.lock"));
    let entries = lock["lock"]["entries"].as_table().unwrap();
    assert_eq!(entries.len(), 3, "{lock:#?}");
    let mut locked = BTreeMap::new();
    for (key, e) in entries {
        let (name, kind) = key.split_once("::").unwrap();
        paths.push(coll_path(name, kind));
        let h = e["content_hash"].as_str().unwrap().to_string();
        recorded.push(h.clone());
        locked.insert(name.to_string(), h);
    }
    assert_eq!(skillmeatd_hash(&env, &paths), recorded, "{paths:#?}");

    // The daemon reports the same hashes, and nothing drifted.
    let _d = env.daemon();
    env.smctl_json(&["project", "add", p]);
    let v = env.smctl_json(&["drift", "--sync", p]);
    assert_eq!(v["drift_count"], 0, "{v:#}");
    let all = by_name(&env.smctl_json(&["drift", "--sync", p, "--all"]));
    assert_eq!(all.len(), 3, "{all:#?}");
    for r in records {
        let name = r["artifact_name"].as_str().unwrap();
        let a = &all[name];
        assert_eq!(a["drift_type"], "in_sync", "{a:#}");
        assert_eq!(a["type"], r["artifact_type"].as_str().unwrap());
        assert_eq!(a["deployed_sha"], r["content_hash"].as_str().unwrap());
        assert_eq!(a["project_sha"], r["content_hash"].as_str().unwrap());
        assert_eq!(a["collection_sha"], locked[name].as_str());
    }

    // (2)+(3) Project edits → modified.
    let originals: Vec<String> = ARTIFACTS
        .iter()
        .map(|a| {
            let f = if a.3.is_empty() {
                claude.join(a.2)
            } else {
                claude.join(a.2).join(a.3)
            };
            std::fs::read_to_string(f).unwrap()
        })
        .collect();
    for i in 0..ARTIFACTS.len() {
        edit(&claude, i, "local edit\n");
    }
    check_drift(&env, &sm, &project, &coll, "modified", "push_to_collection");
    // sync-check recorded the modification in the deployment file; skillmeatd still reads it.
    let text = std::fs::read_to_string(claude.join(".skillmeat-deployed.toml")).unwrap();
    assert!(text.contains("modification_detected_at"), "{text}");

    // Project reverted, collection edited → outdated.
    for (i, a) in ARTIFACTS.iter().enumerate() {
        let f = if a.3.is_empty() {
            claude.join(a.2)
        } else {
            claude.join(a.2).join(a.3)
        };
        write(&f, &originals[i]);
        edit(&coll, i, "upstream edit\n");
    }
    check_drift(
        &env,
        &sm,
        &project,
        &coll,
        "outdated",
        "pull_from_collection",
    );

    // Both edited → conflict.
    for i in 0..ARTIFACTS.len() {
        edit(&claude, i, "local edit again\n");
    }
    check_drift(&env, &sm, &project, &coll, "conflict", "review_manually");
}

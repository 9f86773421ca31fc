//! First run on a home built by the real SkillMeat CLI: with no set-up at all (no
//! `smctl project add`, no `daemon.toml`), the daemon finds every project SkillMeat deployed
//! to through SkillMeat's own registry (`~/.skillmeat/cache/cache.db`) and reports their
//! drift, including a project that had `skillmeat init --project-path` run in it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::skillmeat::{SkillMeat, support_script};
use crate::common::{Env, drift_pairs, write};

fn pair(name: &str, kind: &str) -> (String, String) {
    (name.to_string(), kind.to_string())
}

#[test]
fn first_run_finds_skillmeat_projects_through_its_registry() {
    let env = Env::new();
    let Some(sm) = SkillMeat::new(
        &env,
        "first_run_finds_skillmeat_projects_through_its_registry",
    ) else {
        return;
    };
    // init --name default, add a skill, a command and an agent, deploy them into p1; run the
    // in-project init in p2, then deploy into p2 (tests/support/SKILLMEAT-CLI.md).
    let (p1, p2) = (env.path("p1"), env.path("p2"));
    let script = support_script("make-skillmeat-home.sh");
    let out = sm
        .command(&script)
        .args([&env.home, &p1, &p2])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p1 = p1.canonicalize().unwrap();
    let p2 = p2.canonicalize().unwrap();
    assert!(p2.join(".skillmeat/manifest.toml").is_file());
    assert!(!p1.join(".skillmeat").exists());

    let _d = env.daemon();

    let list = env.smctl_json(&["project", "list"]);
    let found: BTreeMap<PathBuf, Value> = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (PathBuf::from(p["path"].as_str().unwrap()), p.clone()))
        .collect();
    assert_eq!(
        found.keys().cloned().collect::<Vec<_>>(),
        [p1.clone(), p2.clone()],
        "{list:#}"
    );
    for p in found.values() {
        assert_eq!(p["found_by"], serde_json::json!(["registry"]), "{p:#}");
        assert_eq!(p["missing"], false);
        assert_eq!(p["profile_roots"], serde_json::json!([".claude"]), "{p:#}");
        assert_eq!(p["deployments"], 3, "{p:#}");
    }

    // Everything SkillMeat just deployed is in sync, in both projects.
    let v = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(v["drift_count"], 0, "{v:#}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v:#}");
    let all = env.smctl_json(&["drift", "--sync", "--all"]);
    let arts = all["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 6, "{all:#}");
    for p in [&p1, &p2] {
        let here: Vec<&Value> = arts
            .iter()
            .filter(|a| a["project"] == p.to_str().unwrap())
            .collect();
        assert_eq!(here.len(), 3, "{}: {all:#}", p.display());
        assert!(here.iter().all(|a| a["drift_type"] == "in_sync"), "{all:#}");
    }

    // One edit in each project, seen per project and together.
    write(&p1.join(".claude/commands/hello.md"), "Say goodbye.\n");
    write(
        &p2.join(".claude/skills/review-skill/SKILL.md"),
        "---\nname: review-skill\n---\nReview nothing.\n",
    );
    let d1 = env.smctl_json(&["drift", "--sync", p1.to_str().unwrap()]);
    assert_eq!(drift_pairs(&d1), [pair("hello", "modified")], "{d1:#}");
    let d2 = env.smctl_json(&["drift", "--sync", p2.to_str().unwrap()]);
    assert_eq!(
        drift_pairs(&d2),
        [pair("review-skill", "modified")],
        "{d2:#}"
    );
    let both = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(both["drift_count"], 2, "{both:#}");
    let mut per_project: Vec<(String, String)> = both["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["project"].as_str().unwrap().to_string(),
                a["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    per_project.sort();
    assert_eq!(
        per_project,
        [
            (p1.display().to_string(), "hello".to_string()),
            (p2.display().to_string(), "review-skill".to_string())
        ]
    );
    let list = env.smctl_json(&["project", "list"]);
    for p in list["projects"].as_array().unwrap() {
        assert_eq!(p["drift"]["modified"], 1, "{p:#}");
    }
}

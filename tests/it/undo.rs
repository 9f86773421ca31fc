//! Undo is exact: plain `smctl undo` takes the last operation whose writes are in place
//! (never one that failed), `smctl undo N` puts back only N's own changes — a deployment
//! record as that one record — and refuses, naming them, when later operations changed
//! the same files.

use serde_json::Value;
use skillmeatd::hash::{Variant, content_hash};

use crate::common::world::{World, edit, files, skill};
use crate::common::{Artifact, drift_pairs};

fn two_skills() -> Vec<Artifact> {
    vec![skill(), Artifact::skill("review")]
}

/// The deployment record of `name`: (content_hash, deployed_at).
fn record(w: &World, name: &str) -> (String, String) {
    let text = std::fs::read_to_string(w.project.join(".claude/.skillmeat-deployed.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let r = doc["deployed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["artifact_name"].as_str() == Some(name))
        .unwrap();
    (
        r["content_hash"].as_str().unwrap().to_string(),
        r["deployed_at"].as_str().unwrap().to_string(),
    )
}

fn pull(w: &World, name: &str) -> Value {
    w.json(&["sync", "pull", name, "--project", w.p(), "--yes"])
}

#[test]
fn finding_4_undo_of_an_earlier_operation_reverts_only_its_own_record() {
    let w = World::with(two_skills);
    let _d = w.start();
    let deployment = w.project.join(".claude/.skillmeat-deployed.toml");
    let original = std::fs::read(&deployment).unwrap();
    let canvas_before = files(&w.project_skill());
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    edit(
        &w.coll.join("skills/review/SKILL.md"),
        "Do things.",
        "Do more.",
    );
    let one = pull(&w, "canvas");
    let two = pull(&w, "review");
    assert_eq!(
        (
            one["operation"]["id"].as_u64(),
            two["operation"]["id"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let review_after_two = record(&w, "review");

    let undo = w.json(&["undo", "1", "--yes"]);
    assert_eq!(undo["operation"]["undoes"], 1, "{undo}");
    assert_eq!(files(&w.project_skill()), canvas_before);
    assert_eq!(
        record(&w, "review"),
        review_after_two,
        "operation 2's record of another artifact is kept"
    );
    let mut drift = drift_pairs(&w.env.smctl_json(&["drift", w.p(), "--all", "--sync"]));
    drift.sort();
    assert_eq!(
        drift,
        [
            ("canvas".to_string(), "outdated".to_string()),
            ("review".to_string(), "in_sync".to_string())
        ]
    );
    // Undoing the other one too gives back the deployment file byte for byte.
    w.json(&["undo", "2", "--yes"]);
    assert_eq!(std::fs::read(&deployment).unwrap(), original);
}

#[test]
fn finding_4_undo_refuses_while_later_operations_changed_the_same_artifact() {
    let w = World::new();
    let _d = w.start();
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    let before = files(&w.project);
    pull(&w, "canvas");
    edit(
        &w.project_skill().join("SKILL.md"),
        "line four",
        "line 4 (mine)",
    );
    w.json(&["sync", "push", "canvas", "--project", w.p(), "--yes"]);

    let out = w.env.smctl(&["undo", "1", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("later operation(s) 2") && err.contains("smctl undo 2"),
        "{err}"
    );
    // Newest first, as the message says, and then operation 1 goes too.
    assert_eq!(w.json(&["undo", "--yes"])["operation"]["undoes"], 2);
    assert_eq!(w.json(&["undo", "1", "--yes"])["operation"]["undoes"], 1);
    assert_eq!(files(&w.project), before, "the project is as it was");
    let out = w.env.smctl(&["undo", "1", "--yes"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already undone by operation 4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn finding_4_plain_undo_skips_a_failed_operation_whose_writes_were_put_back() {
    let w = World::with(two_skills);
    let _d = w.start();
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    edit(
        &w.coll.join("skills/review/SKILL.md"),
        "Do things.",
        "Do more.",
    );
    pull(&w, "canvas");
    let review = w.project.join(".claude/skills/review");
    let review_before = files(&review);
    let canvas_after = files(&w.project_skill());
    // SkillMeat holds the deployment file: the second pull writes the skill folder, then
    // cannot update the record, fails, and puts the folder back.
    let deployment = w.project.join(".claude/.skillmeat-deployed.toml");
    let held = std::fs::File::create(skillmeatd::writer::lock_path(&deployment)).unwrap();
    held.lock().unwrap();
    let out = w
        .env
        .smctl(&["sync", "pull", "review", "--project", w.p(), "--yes"]);
    drop(held);
    assert!(!out.status.success());
    assert_eq!(
        files(&review),
        review_before,
        "the failed pull was put back"
    );
    let audit = w.json(&["audit"]);
    let failed = &audit["operations"][1];
    assert_eq!(failed["status"], "failed", "{audit}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("put back the previous"),
        "{audit}"
    );
    assert_eq!(
        content_hash(&review, Variant::Legacy).unwrap(),
        record(&w, "review").0,
        "record and copy still agree"
    );

    let out = w.env.smctl(&["undo", "2", "--yes"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let undo = w.json(&["undo", "--yes"]);
    assert_eq!(
        undo["operation"]["undoes"], 1,
        "the last successful one: {undo}"
    );
    assert_ne!(files(&w.project_skill()), canvas_after);
}

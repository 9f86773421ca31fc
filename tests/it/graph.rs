//! The version graph with the real binaries: a deployment's line forks from the
//! collection's, a merge has two parents, the merge base comes from the graph (so a merge
//! resolved by hand and recorded with `merge --continue` never raises its conflicts again),
//! front matter merges key by key, and `log --graph` draws it.

use serde_json::Value;

use crate::common::world::{World, edit, pair};

/// Runs smctl with `--format json`: exit code and parsed stdout.
fn json_and_code(w: &World, args: &[&str]) -> (Option<i32>, Value) {
    let out = w.env.smctl(&[args, &["--format", "json"]].concat());
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "smctl {args:?}: not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

fn versions(v: &Value) -> &Vec<Value> {
    v["versions"].as_array().unwrap()
}

#[test]
fn a_merge_resolved_by_hand_and_continued_never_raises_its_conflicts_again() {
    let w = World::new();
    let _d = w.start();
    w.json(&["snapshot", "create", w.p()]);
    let md = w.project_skill().join("SKILL.md");
    let coll_md = w.coll.join("skills/canvas/SKILL.md");

    // The deployment's first version is a branch of the collection version deployed.
    let log = w.json(&["log", "canvas", "--project", w.p(), "--graph"]);
    let first = versions(&log)
        .iter()
        .find(|v| v["scope"] == "project")
        .unwrap_or_else(|| panic!("{log}"));
    let fork = first["parents"][0].as_str().unwrap();
    let forked_from = versions(&log).iter().find(|v| v["id"] == fork).unwrap();
    assert_eq!(forked_from["location"], "collection default", "{log}");
    assert_eq!(forked_from["hash"], first["hash"]);

    edit(&md, "line three", "line three (local)");
    edit(&coll_md, "line three", "line three (collection)");
    let (code, r) = json_and_code(&w, &["merge", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(code, Some(1), "{r}");
    let reason = r["base_reason"].as_str().unwrap();
    assert!(reason.contains("nearest common ancestor"), "{r}");
    assert!(
        reason.contains(fork),
        "the base is the version deployed: {r}"
    );

    // Markers left: --continue refuses.
    let out = w
        .env
        .smctl(&["merge", "canvas", "--project", w.p(), "--continue", "--yes"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conflict markers are still in"), "{err}");

    // Resolved by hand, then recorded.
    let text = std::fs::read_to_string(&md).unwrap();
    let start = text.find("<<<<<<<").unwrap();
    let end =
        text.find(">>>>>>> REMOTE (incoming)\n").unwrap() + ">>>>>>> REMOTE (incoming)\n".len();
    let resolved = format!("{}line three (resolved)\n{}", &text[..start], &text[end..]);
    std::fs::write(&md, &resolved).unwrap();
    let c = w.json(&["merge", "canvas", "--project", w.p(), "--continue", "--yes"]);
    assert_eq!(c["operation"]["operation"], "merge_continue", "{c}");
    assert_eq!(c["operation"]["success"], true, "{c}");
    assert_eq!(
        std::fs::read_to_string(&md).unwrap(),
        resolved,
        "nothing rewritten"
    );
    assert_eq!(w.drift(), pair("modified"));
    let again = w
        .env
        .smctl(&["merge", "canvas", "--project", w.p(), "--continue", "--yes"]);
    assert_ne!(again.status.code(), Some(0), "only once");

    // Second round: neighbouring front matter keys and body lines on each side.
    edit(&md, "name: canvas", "name: canvas-app");
    edit(&md, "line one", "line one (local)");
    edit(&coll_md, "version: 1.0.0", "version: 1.1.0");
    edit(&coll_md, "line five", "line five (collection)");
    let (code, r) = json_and_code(&w, &["merge", "canvas", "--project", w.p(), "--yes"]);
    assert_eq!(code, Some(0), "no old conflict comes back: {r}");
    assert_eq!(r["conflicts"], serde_json::json!([]), "{r}");
    let text = std::fs::read_to_string(&md).unwrap();
    for want in [
        "name: canvas-app\nversion: 1.1.0\n",
        "line one (local)",
        "line three (resolved)",
        "line five (collection)",
    ] {
        assert!(text.contains(want), "{want:?} missing from {text}");
    }
    assert!(!text.contains("<<<<<<<"), "{text}");

    // The merge version has two parents: the project's previous one and the collection's.
    let log = w.json(&["log", "canvas", "--project", w.p(), "--graph"]);
    let merges: Vec<&Value> = versions(&log)
        .iter()
        .filter(|v| v["origin"] == "merge" && v["scope"] == "project")
        .collect();
    assert_eq!(
        merges.len(),
        2,
        "the continued merge and the clean one: {log}"
    );
    for m in merges {
        let parents = m["parents"].as_array().unwrap();
        assert_eq!(parents.len(), 2, "{m}");
        let second = versions(&log)
            .iter()
            .find(|v| v["id"] == parents[1])
            .unwrap();
        assert_eq!(second["location"], "collection default", "{m}");
    }
    // Drawn: every version on one line with its location, the merges bending in.
    let out = w.env.smctl(&[
        "log",
        "canvas",
        "--project",
        w.p(),
        "--graph",
        "--format",
        "table",
    ]);
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(drawn.lines().any(|l| l.starts_with("|\\")), "{drawn}");
    assert!(drawn.contains("collection default") && drawn.contains(&format!("project {}", w.p())));
    assert_eq!(
        drawn.lines().filter(|l| l.contains('*')).count(),
        versions(&log).len(),
        "{drawn}"
    );
}

#[test]
fn one_side_unchanged_fast_forwards_or_has_nothing_to_merge() {
    let w = World::new();
    let _d = w.start();
    w.json(&["snapshot", "create", w.p()]);
    edit(
        &w.coll.join("skills/canvas/SKILL.md"),
        "line two",
        "line two (collection)",
    );
    assert_eq!(w.drift(), pair("outdated"));
    let r = w.json(&["merge", "canvas", "--project", w.p(), "--yes"]);
    assert!(
        r["base_reason"]
            .as_str()
            .unwrap()
            .starts_with("fast-forward"),
        "{r}"
    );
    assert_eq!(w.drift(), pair("in_sync"));
    let log = w.json(&["log", "canvas", "--project", w.p()]);
    assert!(
        versions(&log).iter().all(|v| v["origin"] != "merge"),
        "no merge version: {log}"
    );
    let r = w.json(&["merge", "canvas", "--project", w.p(), "--yes"]);
    assert!(
        r["base_reason"]
            .as_str()
            .unwrap()
            .starts_with("nothing to merge"),
        "{r}"
    );
    assert!(r["operation"].is_null(), "{r}");
}

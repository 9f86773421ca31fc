//! Edits of real-looking deployment files: the formats doc's exact tomli_w example, old
//! records, unknown keys and comments, and the file on disk through the writer.

use super::*;

const A: &str = "2e7442e246b43330c40e3a09313bc002a3c08b28261f35ac64d1f6a4201944a5";
const R: &str = "5ec9df752dd35fd591508f19feae1f0853aa8c794052866b4b3d21e1f61654cf";
const N: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// The formats doc's example (§2.3), byte for byte as tomli_w writes it.
fn doc_example() -> String {
    format!(
        r#"[[deployed]]
artifact_name = "canvas-design"
artifact_type = "skill"
from_collection = "default"
deployed_at = "2026-01-05T15:07:49.157370"
artifact_path = "skills/canvas-design"
content_hash = "{A}"
local_modifications = false
version_lineage = [
    "{A}",
]
modification_detected_at = "2026-03-12T16:29:40.293257"
merge_base_snapshot = "{A}"
deployment_profile_id = "claude_code"
platform = "claude_code"
profile_root_dir = ".claude"
artifact_uuid = "3f2a9c1d5e7b4a6c8d9e0f1a2b3c4d5e"
collection_sha = "{A}"

[[deployed]]
artifact_name = "review"
artifact_type = "command"
from_collection = "default"
deployed_at = "2026-03-13T15:13:08"
artifact_path = "commands/review.md"
content_hash = "{R}"
local_modifications = false
merge_base_snapshot = "{R}"
deployment_profile_id = "claude_code"
platform = "claude_code"
profile_root_dir = ".claude"
collection_sha = "{R}"
"#
    )
}

fn update(hash: &str) -> RecordUpdate {
    RecordUpdate {
        content_hash: hash.to_string(),
        deployed_at: "2026-11-25T10:00:00.000001".to_string(),
    }
}

fn key<'a>(name: &'a str, ty: &'a str) -> RecordKey<'a> {
    RecordKey {
        name,
        artifact_type: ty,
        profile_id: None,
    }
}

fn edit_text(text: &str, k: RecordKey<'_>, hash: &str) -> String {
    update_record_bytes(Path::new("t.toml"), text.as_bytes(), k, &update(hash)).unwrap()
}

#[test]
fn the_newest_record_gains_its_lineage_where_skillmeat_writes_it() {
    let out = edit_text(&doc_example(), key("review.md", "command"), N);
    let example = doc_example();
    let first = &example[..example
        .find("\n[[deployed]]\nartifact_name = \"review\"")
        .unwrap()];
    assert!(out.starts_with(first), "the other record is untouched");
    let want = format!(
        r#"
[[deployed]]
artifact_name = "review"
artifact_type = "command"
from_collection = "default"
deployed_at = "2026-11-25T10:00:00.000001"
artifact_path = "commands/review.md"
content_hash = "{N}"
local_modifications = false
version_lineage = [
    "{R}",
    "{N}",
]
merge_base_snapshot = "{N}"
deployment_profile_id = "claude_code"
platform = "claude_code"
profile_root_dir = ".claude"
collection_sha = "{N}"
"#
    );
    assert_eq!(&out[first.len()..], want);
}

#[test]
fn an_existing_lineage_is_extended_and_the_detection_mark_dropped() {
    let out = edit_text(&doc_example(), key("canvas-design", "skill"), N);
    let rec = &out[..out
        .find("\n[[deployed]]\nartifact_name = \"review\"")
        .unwrap()];
    assert!(
        rec.contains(&format!(
            "version_lineage = [\n    \"{A}\",\n    \"{N}\",\n]\nmerge_base_snapshot = \"{N}\"\n"
        )),
        "{rec}"
    );
    assert!(!rec.contains("modification_detected_at"));
    assert!(rec.contains("artifact_uuid = \"3f2a9c1d5e7b4a6c8d9e0f1a2b3c4d5e\""));
    // Writing the same hash again does not grow the lineage.
    let again = edit_text(&out, key("canvas-design", "skill"), N);
    assert_eq!(again.matches(N).count(), out.matches(N).count());
}

#[test]
fn unknown_keys_comments_and_spacing_survive() {
    let text = format!(
        "# kept comment\n[[deployed]]\nartifact_name = \"a\"\nartifact_type = \"skill\"\nfrom_collection = \"default\"\ndeployed_at = \"2026-01-01T00:00:00\"\nartifact_path = \"skills/a\"\ncontent_hash   =   \"{A}\"  # trailing\nfuture_key = {{ nested = [1, 2] }}\nlocal_modifications = false\ncollection_sha = \"{A}\"\n\n[deployed.extra]\nx = 1\n"
    );
    let out = edit_text(&text, key("a", "skill"), N);
    assert!(out.starts_with("# kept comment\n[[deployed]]\n"), "{out}");
    assert!(
        out.contains(&format!("content_hash   =   \"{N}\"  # trailing\n")),
        "{out}"
    );
    assert!(out.contains("future_key = { nested = [1, 2] }\n"), "{out}");
    assert!(out.contains("[deployed.extra]\nx = 1\n"), "{out}");
    let table: toml::Table = out.parse().unwrap();
    let rec = &table["deployed"][0];
    assert_eq!(rec["merge_base_snapshot"].as_str(), Some(N));
    assert_eq!(rec["collection_sha"].as_str(), Some(N));
}

#[test]
fn old_records_get_the_missing_keys_in_skillmeat_order() {
    // Pre-profile records: keys 1–5 and only the deprecated `collection_sha`.
    let text = format!(
        "[[deployed]]\nartifact_name = \"a\"\nartifact_type = \"skill\"\nfrom_collection = \"default\"\ndeployed_at = \"2025-01-01T00:00:00\"\nartifact_path = \"skills/a\"\ncollection_sha = \"{A}\"\n"
    );
    let out = edit_text(&text, key("a", "skill"), N);
    let keys: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "artifact_name",
            "artifact_type",
            "from_collection",
            "deployed_at",
            "artifact_path",
            "content_hash",
            "version_lineage",
            "merge_base_snapshot",
            "collection_sha"
        ]
    );
    assert!(out.contains(&format!(
        "version_lineage = [\n    \"{A}\",\n    \"{N}\",\n]\n"
    )));
}

#[test]
fn records_are_matched_by_name_type_and_profile() {
    let rec = |profile: &str, hash: &str| {
        format!(
            "[[deployed]]\nartifact_name = \"a.md\"\nartifact_type = \"command\"\nfrom_collection = \"default\"\ndeployed_at = \"t\"\nartifact_path = \"commands/a.md\"\ncontent_hash = \"{hash}\"\n{profile}"
        )
    };
    let text = format!(
        "{}\n{}",
        rec("deployment_profile_id = \"codex\"\n", A),
        rec("", R)
    );
    let out = edit_text(&text, key("a", "command"), N);
    let table: toml::Table = out.parse().unwrap();
    let hashes: Vec<&str> = table["deployed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["content_hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, [A, N], "no profile means claude_code");

    let err = update_record_bytes(
        Path::new("t.toml"),
        text.as_bytes(),
        key("a", "agent"),
        &update(N),
    )
    .unwrap_err();
    assert!(
        matches!(err, DeploymentWriteError::NoRecord { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("no deployment record for a (agent"),
        "{err}"
    );
}

#[test]
fn the_inline_form_is_accepted() {
    let text = format!(
        "deployed = [\n    {{ artifact_name = \"a\", artifact_type = \"skill\", from_collection = \"d\", deployed_at = \"t\", artifact_path = \"skills/a\", content_hash = \"{A}\" }},\n]\n"
    );
    let out = edit_text(&text, key("a", "skill"), N);
    let f = deployment::parse(Path::new("t.toml"), ".claude", out.as_bytes());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!(f.records[0].content_hash, N);
}

#[test]
fn bad_files_are_refused_with_the_path() {
    for bad in [&b"[[deployed]\n"[..], b"\xff\xfe", b"deployed = 3\n"] {
        let err = update_record_bytes(
            Path::new("/p/.claude/x.toml"),
            bad,
            key("a", "skill"),
            &update(N),
        )
        .unwrap_err();
        assert!(
            matches!(err, DeploymentWriteError::Unreadable { .. }),
            "{err}"
        );
        assert!(err.to_string().starts_with("/p/.claude/x.toml: "), "{err}");
    }
}

#[test]
fn the_file_on_disk_is_rewritten_under_skillmeats_lock() {
    let project = tempfile::tempdir().unwrap();
    let root = project.path().join(".claude");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join(FILE_NAME), doc_example()).unwrap();
    let w = Writer::new();
    update_record(
        &w,
        project.path(),
        ".claude",
        key("review", "command"),
        &update(N),
    )
    .unwrap();
    assert!(
        root.join("..skillmeat-deployed.toml.skillmeat-lock")
            .is_file()
    );
    let f = deployment::read_file(project.path(), ".claude");
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!(f.records[1].content_hash, N);
    assert_eq!(f.records[0].content_hash, A);

    let before = std::fs::read(root.join(FILE_NAME)).unwrap();
    let err = update_record(
        &w,
        project.path(),
        ".claude",
        key("nope", "skill"),
        &update(N),
    )
    .unwrap_err();
    assert!(matches!(err, DeploymentWriteError::NoRecord { .. }));
    assert_eq!(std::fs::read(root.join(FILE_NAME)).unwrap(), before);

    let other = tempfile::tempdir().unwrap();
    let err = update_record(
        &w,
        other.path(),
        ".claude",
        key("review", "command"),
        &update(N),
    )
    .unwrap_err();
    assert!(matches!(err, DeploymentWriteError::Missing { .. }), "{err}");
}

#[test]
fn restoring_one_record_leaves_every_other_record_as_it_is() {
    let path = Path::new(".skillmeat-deployed.toml");
    let then = doc_example();
    // Later, both records changed (two operations); undoing the first one's change puts
    // back only its record.
    let one =
        update_record_bytes(path, then.as_bytes(), key("review", "command"), &update(N)).unwrap();
    let both = update_record_bytes(
        path,
        one.as_bytes(),
        key("canvas-design", "skill"),
        &update(N),
    )
    .unwrap();
    let undone = restore_record_bytes(
        path,
        Some(both.as_bytes()),
        Some(then.as_bytes()),
        key("review", "command"),
    )
    .unwrap();
    let f = deployment::parse(path, ".claude", undone.as_bytes());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!(
        f.records[0].content_hash, N,
        "the other record keeps its change"
    );
    assert_eq!(f.records[1].content_hash, R);
    // Undoing both, in reverse order, gives back the file byte for byte.
    let all = restore_record_bytes(
        path,
        Some(undone.as_bytes()),
        Some(then.as_bytes()),
        key("canvas-design", "skill"),
    )
    .unwrap();
    assert_eq!(all, then);
}

#[test]
fn a_record_that_did_not_exist_then_is_removed_and_one_removed_since_comes_back() {
    let path = Path::new(".skillmeat-deployed.toml");
    let then = doc_example();
    let review_only = restore_record_bytes(
        path,
        Some(then.as_bytes()),
        None,
        key("canvas-design", "skill"),
    )
    .unwrap();
    let f = deployment::parse(path, ".claude", review_only.as_bytes());
    assert_eq!(f.records.len(), 1);
    assert_eq!(f.records[0].artifact_name, "review");
    let back = restore_record_bytes(
        path,
        Some(review_only.as_bytes()),
        Some(then.as_bytes()),
        key("canvas-design", "skill"),
    )
    .unwrap();
    let f = deployment::parse(path, ".claude", back.as_bytes());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    let names: Vec<&str> = f.records.iter().map(|r| r.artifact_name.as_str()).collect();
    assert_eq!(names, ["review", "canvas-design"]);
    // Nothing then and nothing now: nothing changes.
    assert_eq!(
        restore_record_bytes(path, Some(then.as_bytes()), None, key("nope", "skill")).unwrap(),
        then
    );
}

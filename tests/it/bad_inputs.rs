//! The corpus of hand-made bad inputs (`tests/data/bad-inputs/`): every reader, every
//! edit of a SkillMeat file and the merge get each one and must answer with a clean error
//! (or a sound result), never a panic. The fuzz targets (`fuzz/`) explore the same entry
//! points with generated inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use skillmeatd::formats::{
    collection, config, deployment, deployment_write, lock_write, parse_toml, rollback_audit,
};
use skillmeatd::merge::{Tree, selfcheck};

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bad-inputs")
        .join(kind);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

const HASH: &str = "1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn deployment_files_give_problems_and_edits_refuse_them() {
    let path = Path::new("/p/.claude/.skillmeat-deployed.toml");
    for (name, bytes) in corpus("deployment") {
        let f = deployment::parse(path, ".claude", &bytes);
        assert!(!f.problems.is_empty(), "{name}: no problem reported");
        for p in &f.problems {
            assert_eq!(p.path, path, "{name}: problem without the file's path");
            assert!(!p.message.is_empty(), "{name}");
        }
        let key = deployment_write::RecordKey {
            name: "a",
            artifact_type: "skill",
            profile_id: None,
        };
        let update = deployment_write::RecordUpdate {
            content_hash: HASH.into(),
            deployed_at: "2026-11-25T10:00:00".into(),
        };
        match deployment_write::update_record_bytes(path, &bytes, key, &update) {
            Err(e) => assert!(
                e.to_string().starts_with(&path.display().to_string()),
                "{name}: {e}"
            ),
            // A record that could be found was edited: the result must still be TOML.
            Ok(text) => {
                parse_toml(text.as_bytes())
                    .unwrap_or_else(|e| panic!("{name}: edit broke the file: {e}"));
            }
        }
    }
}

#[test]
fn collection_files_give_problems() {
    let dir = Path::new("/home/u/.skillmeat/collections/default");
    for (name, bytes) in corpus("collection-manifest") {
        let c = collection::parse("default", dir, &bytes, None);
        assert!(
            !c.problems.is_empty(),
            "manifest {name}: no problem reported"
        );
    }
    for (name, bytes) in corpus("collection-lock") {
        let c = collection::parse("default", dir, b"artifacts = []\n", Some(&bytes));
        assert!(!c.problems.is_empty(), "lock {name}: no problem reported");
        let update = lock_write::LockUpdate {
            content_hash: HASH.into(),
            fetched: "2026-11-25T10:00:00".into(),
        };
        let edited = lock_write::update_entry_bytes(
            &dir.join("collection.lock"),
            Some(&bytes),
            "a",
            "skill",
            &update,
        );
        if let Ok(text) = edited {
            let c = collection::parse("default", dir, b"", Some(text.as_bytes()));
            assert_eq!(
                c.lock.get("a::skill").map(String::as_str),
                Some(HASH),
                "lock {name}"
            );
        }
    }
}

#[test]
fn config_files_fall_back_to_the_default_collection() {
    for (name, bytes) in corpus("config") {
        let name_found = parse_toml(&bytes).map(|t| config::active_collection(&t));
        assert!(
            matches!(name_found.as_deref(), Err(_) | Ok("default")),
            "{name}: {name_found:?}"
        );
    }
}

#[test]
fn audit_files_are_never_appended_to_when_unreadable() {
    let path = Path::new("/home/u/.skillmeat/audit/default_rollback_audit.toml");
    let record = rollback_audit::RollbackRecord {
        collection_name: "default".into(),
        operation_type: "simple".into(),
        ..Default::default()
    };
    let now = chrono::NaiveDateTime::default();
    for (name, bytes) in corpus("rollback-audit") {
        let err = rollback_audit::append_bytes(path, Some(&bytes), &record, now).unwrap_err();
        assert!(err.to_string().contains("not appending"), "{name}: {err}");
    }
}

#[test]
fn merges_of_odd_texts_keep_every_property() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-inputs/merge");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10);
    for case in cases {
        let side = |s: &str| std::fs::read(case.join(s)).ok();
        let (b, l, r) = (side("base"), side("local"), side("remote"));
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if let (Some(b), Some(l), Some(r)) = (&b, &l, &r) {
            selfcheck::check_text(b, l, r).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let tree = |c: &Option<Vec<u8>>| -> Tree {
            c.iter()
                .map(|c| (PathBuf::from("SKILL.md"), c.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        selfcheck::check_tree(&tree(&b), &tree(&l), &tree(&r))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

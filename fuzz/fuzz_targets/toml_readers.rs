//! Any bytes as each SkillMeat file the daemon reads or edits: readers must report
//! problems, never panic; an edit that succeeds must leave a file its reader accepts.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use skillmeatd::formats::{
    collection, config, deployment, deployment_write, lock_write, parse_toml, rollback_audit,
};

const HASH: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fuzz_target!(|bytes: &[u8]| {
    let dir = Path::new("/c");
    let deployed = Path::new("/p/.claude/.skillmeat-deployed.toml");

    let before = deployment::parse(deployed, ".claude", bytes);
    let _ = collection::parse("default", dir, bytes, Some(bytes));
    if let Ok(t) = parse_toml(bytes) {
        let _ = config::active_collection(&t);
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
    if let Ok(text) = deployment_write::update_record_bytes(deployed, bytes, key, &update) {
        let after = deployment::parse(deployed, ".claude", text.as_bytes());
        assert!(
            after.records.len() >= before.records.len(),
            "an edit lost records"
        );
    }

    let lock = lock_write::LockUpdate {
        content_hash: HASH.into(),
        fetched: "2026-11-25T10:00:00".into(),
    };
    if let Ok(text) = lock_write::update_entry_bytes(
        &dir.join("collection.lock"),
        Some(bytes),
        "a",
        "skill",
        &lock,
    ) {
        let c = collection::parse("default", dir, b"", Some(text.as_bytes()));
        assert_eq!(c.lock.get("a::skill").map(String::as_str), Some(HASH));
    }

    let record = rollback_audit::RollbackRecord {
        collection_name: "default".into(),
        operation_type: "simple".into(),
        ..Default::default()
    };
    if let Ok((text, id)) = rollback_audit::append_bytes(
        Path::new("/a.toml"),
        Some(bytes),
        &record,
        Default::default(),
    ) {
        let t = parse_toml(text.as_bytes()).expect("an appended audit file is TOML");
        let entries = t["entries"].as_array().expect("entries");
        assert_eq!(entries.last().unwrap()["id"].as_str(), Some(id.as_str()));
    }
});

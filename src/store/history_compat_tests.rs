//! Stores written by earlier releases open and read the same.

use super::history::HistoryStore;
use super::*;
use crate::model::{Entry, Origin};

/// A version record exactly as the release before parent lists wrote it.
fn old_record(id: u64, parent: Option<u64>) -> String {
    let parent = parent.map_or("null".to_string(), |p| p.to_string());
    format!(
        r#"{{"id":{id},"location":{{"scope":{{"collection":"default"}},"root":"","path":"skills/a"}},"content_hash":"h{id}","single_file":false,"entries":[{{"path":"SKILL.md","blob":"{blob}","size":1,"mode":420}}],"parent":{parent},"time_ms":{id},"origin":"watch"}}"#,
        blob = "00".repeat(32)
    )
}

#[test]
fn a_store_written_before_parent_lists_opens_and_keeps_its_lines() {
    let d = tempfile::tempdir().unwrap();
    {
        let store = Store::open(d.path()).unwrap();
        let h = store.history().unwrap();
        let mut batch = sled::Batch::default();
        for (id, parent) in [(1, None), (2, Some(1))] {
            let v: Version = serde_json::from_str(&old_record(id, parent)).unwrap();
            let [rec, by_loc, by_hash] = HistoryStore::version_keys(&v);
            let json = old_record(id, parent).into_bytes();
            batch.insert(rec.clone(), store.frame(TreeId::History, &rec, &json));
            batch.insert(by_loc.clone(), store.frame(TreeId::History, &by_loc, &[]));
            batch.insert(by_hash.clone(), store.frame(TreeId::History, &by_hash, &[]));
        }
        store.with(|t| Ok(t.history.apply_batch(batch)?)).unwrap();
        h.flush().unwrap();
        drop(h);
        store.close().unwrap();
    }
    let store = Store::open(d.path()).unwrap();
    let h = store.history().unwrap();
    let loc = Location::collection("default", "skills/a");
    let versions = h.versions_at(&loc).unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[0].parents.is_empty());
    assert_eq!(versions[1].parents, vec![VersionId(1)]);

    // A merge recorded on top keeps both parents and the old ones read on.
    let merged = Version {
        id: VersionId(3),
        location: loc.clone(),
        content_hash: "h3".into(),
        single_file: false,
        entries: vec![Entry {
            path: "SKILL.md".into(),
            blob: "00".repeat(32),
            size: 1,
            mode: 0o644,
            symlink: None,
        }],
        parents: vec![VersionId(2), VersionId(1)],
        time_ms: 3,
        origin: Origin::Merge,
        message: None,
        tags: Vec::new(),
    };
    h.put_versions(std::slice::from_ref(&merged)).unwrap();
    assert_eq!(h.version(VersionId(3)).unwrap(), Some(merged));
    assert_eq!(h.all_versions().unwrap().len(), 3);
}

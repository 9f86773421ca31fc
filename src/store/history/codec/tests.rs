//! Round trips of the record encodings, and damaged records.

use super::*;

fn version() -> Version {
    Version {
        id: VersionId(300),
        location: Location::project(std::path::Path::new("/p/app"), ".claude", "skills/a"),
        content_hash: "ab".repeat(32),
        single_file: false,
        entries: vec![
            Entry {
                path: "SKILL.md".into(),
                blob: "0f".repeat(32),
                size: 1234,
                mode: 0o644,
                symlink: None,
            },
            Entry {
                path: "link".into(),
                blob: "not-a-hash".into(),
                size: 0,
                mode: 0o755,
                symlink: Some("SKILL.md".into()),
            },
        ],
        parents: vec![VersionId(7), VersionId(2)],
        time_ms: -5,
        origin: Origin::Merge,
        message: Some("merged".into()),
        tags: vec!["good".into(), "best".into()],
    }
}

#[test]
fn versions_round_trip_and_read_json() {
    let v = version();
    let bin = encode_version(&v);
    assert_eq!(decode_version(&bin).unwrap(), v);
    assert!(bin.len() * 2 < serde_json::to_vec(&v).unwrap().len());
    assert_eq!(decode_version(&serde_json::to_vec(&v).unwrap()).unwrap(), v);
    let bare = Version {
        location: Location::collection("default", "agents/x.md"),
        content_hash: "ABCD".into(),
        single_file: true,
        entries: Vec::new(),
        parents: Vec::new(),
        message: None,
        tags: Vec::new(),
        time_ms: i64::MAX,
        ..v
    };
    assert_eq!(decode_version(&encode_version(&bare)).unwrap(), bare);
}

#[test]
fn relative_records_copy_runs_of_their_base() {
    let base = version();
    let mut v = Version {
        id: VersionId(301),
        parents: vec![base.id],
        ..version()
    };
    v.entries[0].blob = "1f".repeat(32);
    v.entries.push(Entry {
        path: "added.md".into(),
        ..v.entries[0].clone()
    });
    let against = RecordBase {
        id: base.id,
        entries: &base.entries,
        depth: 3,
    };
    let rel = encode_version_against(&v, Some(against));
    assert_eq!(rel[0], FORMAT_RELATIVE);
    assert_eq!(record_base(&rel), Some((base.id, 4)));
    assert_eq!(record_base(&encode_version(&v)), None);
    let files = |id: VersionId| (id == base.id).then(|| base.entries.clone());
    assert_eq!(decode_version_with(&rel, files).unwrap(), v);
    // Without its base's files it does not read; nor against other files.
    assert!(decode_version(&rel).is_err());
    assert!(decode_version_with(&rel, |_| Some(Vec::new())).is_err());
    for cut in 0..rel.len() {
        assert!(
            decode_version_with(&rel[..cut], files).is_err(),
            "cut at {cut}"
        );
    }
    // Too deep a chain, or no saving: written whole.
    let deep = RecordBase {
        depth: MAX_RECORD_DEPTH,
        ..against
    };
    assert_eq!(encode_version_against(&v, Some(deep))[0], FORMAT);
    let unrelated = RecordBase {
        entries: &[],
        ..against
    };
    assert_eq!(encode_version_against(&v, Some(unrelated))[0], FORMAT);
}

#[test]
fn snapshots_round_trip_and_read_json() {
    let s = Snapshot {
        id: SnapshotId(9),
        target: SnapshotTarget::Collection("default".into()),
        time_ms: 1_764_000_000_000,
        origin: Origin::Watch,
        message: None,
        members: [5, 900, 3, u64::MAX, 0].map(VersionId).to_vec(),
    };
    assert_eq!(decode_snapshot(&encode_snapshot(&s)).unwrap(), s);
    assert_eq!(
        decode_snapshot(&serde_json::to_vec(&s).unwrap()).unwrap(),
        s
    );
}

#[test]
fn damaged_records_are_errors() {
    let bin = encode_version(&version());
    for cut in 0..bin.len() {
        assert!(decode_version(&bin[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bin.clone();
    longer.push(0);
    assert!(decode_version(&longer).is_err());
    assert!(decode_snapshot(&[FORMAT, 0xFF, 0xFF, 0xFF]).is_err());
    assert!(decode_version(&[2, 0]).is_err());
}

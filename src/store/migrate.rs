//! Layout versions: checking the version of an opened store and converting one written by
//! an earlier daemon, in place, when it is opened (called by `heal`'s open).
//!
//! | version | what changed |
//! |---|---|
//! | 1 | bare values |
//! | 2 | every value a self-verifying frame ([`super::frame`]) |
//! | 3 | version and snapshot records in the compact encoding ([`super::history::codec`]); history index entries empty, not framed; a file's later contents stored as deltas against its earlier ones |
//!
//! Each conversion can be interrupted and run again: the layout version is written last.
//!
//! Also here: the segment size sled opens a store with ([`segment_size`]), which sled
//! fixes when it creates the store.

use std::collections::HashMap;
use std::path::Path;

use crate::model::{Entry, VersionId};

use super::frame::{self, Frame, TreeId};
use super::history::codec;
use super::{Handles, SCHEMA, SCHEMA_KEY, StoreError, unframe};

/// The segment size new stores are made with. sled's default, 512 KiB, which every store
/// made before had, left a history store 2.2–2.4 times its keys and values on disk; with
/// 128 KiB, 1.8 times (`cargo bench --bench history_space`), and values of the sizes the
/// history writes still stay in the segments.
const SEGMENT_SIZE: usize = 128 * 1024;

/// sled's default segment size.
const SLED_SEGMENT_SIZE: usize = 512 * 1024;

/// The segment size to open the store in `dir` with: the one it was made with, read from
/// sled's `conf` file (sled refuses any other); [`SEGMENT_SIZE`] for a new store. A store
/// whose `conf` is missing or unreadable while its data is there was made by an earlier
/// daemon, with sled's default.
pub(super) fn segment_size(dir: &Path) -> usize {
    // The text is followed by a binary checksum.
    match std::fs::read(dir.join("conf")) {
        Ok(conf) => String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
            .unwrap_or(SLED_SEGMENT_SIZE),
        Err(_) if !dir.join("db").exists() => SEGMENT_SIZE,
        Err(_) => SLED_SEGMENT_SIZE,
    }
}

/// Checks the layout version, writing it into a new store and converting a version 1 store.
pub(super) fn check_schema(dir: &Path, h: &Handles) -> Result<(), StoreError> {
    let found = match h.meta.get(SCHEMA_KEY)? {
        None if h.meta.is_empty() && h.history.is_empty() && h.projects.is_empty() => None,
        None => {
            return Err(StoreError::Corrupt {
                tree: "meta",
                detail: "the layout version is missing".into(),
            });
        }
        Some(v) if v.starts_with(&frame::MAGIC) => Some(
            unframe(TreeId::Meta, SCHEMA_KEY, &v)?
                .try_into()
                .map(u32::from_le_bytes)
                .unwrap_or(u32::MAX),
        ),
        Some(v) => Some(
            v.as_ref()
                .try_into()
                .map(u32::from_le_bytes)
                .unwrap_or(u32::MAX),
        ),
    };
    match found {
        Some(SCHEMA) => return Ok(()),
        Some(1) => {
            convert_v1(h)?;
            convert_v2(h)?;
        }
        Some(2) => convert_v2(h)?,
        None => {}
        Some(found) => {
            return Err(StoreError::Schema {
                path: dir.to_path_buf(),
                found,
            });
        }
    }
    let v = frame::encode(TreeId::Meta, 0, SCHEMA_KEY, Some(&SCHEMA.to_le_bytes()));
    h.meta.insert(SCHEMA_KEY, v)?;
    h.db.flush()?;
    Ok(())
}

/// Frames every record of a version 1 store (numbers in meta become LE).
fn convert_v1(h: &Handles) -> Result<(), StoreError> {
    tracing::info!("converting the store to framed records (layout version {SCHEMA})");
    for id in [
        TreeId::Projects,
        TreeId::History,
        TreeId::Operations,
        TreeId::Meta,
    ] {
        let tree = h.tree(id);
        let mut batch = sled::Batch::default();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let value = match (id, k.as_ref()) {
                (TreeId::Meta, b"next_cursor") => v
                    .as_ref()
                    .try_into()
                    .map(|b| u64::from_be_bytes(b).to_le_bytes().to_vec())
                    .unwrap_or_default(),
                (TreeId::Meta, _) => continue,
                _ => v.to_vec(),
            };
            batch.insert(k.clone(), frame::encode(id, 0, &k, Some(&value)));
        }
        tree.apply_batch(batch)?;
    }
    Ok(())
}

/// Rewrites the JSON version and snapshot records of a layout 2 store in the compact
/// encoding (keeping their stamps), drops the frames of its index entries, then stores each file's later contents as deltas
/// against the earlier ones. Safe to run again after a crash: what is converted is skipped.
fn convert_v2(h: &Handles) -> Result<(), StoreError> {
    tracing::info!(
        "converting history to compact records and delta blobs (layout version {SCHEMA})"
    );
    let mut batch = sled::Batch::default();
    // Versions in id order: each written against its first parent's files, read before it.
    let mut files: HashMap<VersionId, (Vec<Entry>, u8)> = HashMap::new();
    for kv in h.history.iter() {
        let (k, v) = kv?;
        let Ok(Frame {
            stamp,
            value: Some(value),
            ..
        }) = frame::decode(&v)
        else {
            continue;
        };
        if matches!(k.first(), Some(b'l' | b'h')) {
            // Index entries lose their frames.
            batch.insert(k.clone(), &[]);
            continue;
        }
        if value.first() != Some(&b'{') {
            continue;
        }
        let compact = match k.first() {
            Some(b'v') => codec::decode_version(value).ok().map(|v| {
                let base = v.parents.first().and_then(|p| {
                    files.get(p).map(|(entries, depth)| codec::RecordBase {
                        id: *p,
                        entries,
                        depth: *depth,
                    })
                });
                let c = codec::encode_version_against(&v, base);
                let depth = codec::record_base(&c).map_or(0, |(_, d)| d);
                files.insert(v.id, (v.entries, depth));
                c
            }),
            Some(b's') => codec::decode_snapshot(value)
                .ok()
                .map(|s| codec::encode_snapshot(&s)),
            _ => None,
        };
        if let Some(c) = compact {
            batch.insert(
                k.clone(),
                frame::encode(TreeId::History, stamp, &k, Some(&c)),
            );
        }
    }
    h.history.apply_batch(batch)?;
    let packed = super::blobs::repack_blobs(h)?;
    tracing::info!(blobs = packed, "blobs stored as deltas");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VersionId;
    use crate::model::{Entry, Location, Origin, Snapshot, SnapshotId, SnapshotTarget, Version};
    use crate::store::Store;
    use crate::store::blobs::{blob_value, read_blob};
    use crate::store::history::version_record;
    use sha2::Digest;

    #[test]
    fn a_store_keeps_the_segment_size_it_was_made_with() {
        let dir = tempfile::tempdir().unwrap();
        let conf = |path: &Path| {
            String::from_utf8_lossy(&std::fs::read(path.join("conf")).unwrap()).into_owned()
        };
        // Made by an earlier daemon, with sled's default.
        let old = dir.path().join("old");
        drop(sled::Config::new().path(&old).open().unwrap());
        let store = Store::open(&old).unwrap();
        store.flush().unwrap();
        drop(store);
        assert!(
            conf(&old).contains("segment_size: 524288"),
            "{}",
            conf(&old)
        );
        let new = dir.path().join("new");
        drop(Store::open(&new).unwrap());
        assert!(
            conf(&new).contains("segment_size: 131072"),
            "{}",
            conf(&new)
        );
        // And it opens again with it.
        drop(Store::open(&new).unwrap());
    }

    fn prose(seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..6000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 60 == 59 {
                    b'\n'
                } else {
                    b"skill agent drift "[(x % 18) as usize]
                }
            })
            .collect()
    }

    fn version(id: u64, blob: &[u8; 32], parent: Option<u64>) -> Version {
        Version {
            id: VersionId(id),
            location: Location::collection("default", "skills/a"),
            content_hash: hex::encode([id as u8; 32]),
            single_file: false,
            entries: vec![
                Entry {
                    path: "SKILL.md".into(),
                    blob: hex::encode(blob),
                    size: 6000,
                    mode: 0o644,
                    symlink: None,
                },
                // Unchanged from version to version.
                Entry {
                    path: "refs/notes.md".into(),
                    blob: "ab".repeat(32),
                    size: 12,
                    mode: 0o644,
                    symlink: None,
                },
            ],
            parents: parent.map(VersionId).into_iter().collect(),
            time_ms: id as i64,
            origin: Origin::Watch,
            message: None,
            tags: Vec::new(),
        }
    }

    /// Rewrites a store as layout 2 wrote it: JSON records, framed index entries, whole
    /// blobs.
    fn downgrade(store: &Store) {
        store
            .with(|h| {
                for kv in h.history.iter() {
                    let (k, v) = kv?;
                    if matches!(k[0], b'l' | b'h') {
                        let framed = frame::encode(TreeId::History, 0, &k, Some(&[]));
                        h.history.insert(&k, framed)?;
                        continue;
                    }
                    let f = frame::decode(&v).unwrap();
                    let json = match k[0] {
                        b'v' => serde_json::to_vec(&version_record(h, &k, &v).unwrap()),
                        b's' => {
                            serde_json::to_vec(&codec::decode_snapshot(f.value.unwrap()).unwrap())
                        }
                        _ => continue,
                    }
                    .unwrap();
                    h.history
                        .insert(&k, frame::encode(TreeId::History, f.stamp, &k, Some(&json)))?;
                }
                for k in h.blobs.iter().keys() {
                    let sha: [u8; 32] = k?.as_ref().try_into().unwrap();
                    let bytes = read_blob(h, &sha)?.unwrap();
                    h.blobs.insert(sha, blob_value(&bytes)?)?;
                }
                let v = frame::encode(TreeId::Meta, 0, SCHEMA_KEY, Some(&2u32.to_le_bytes()));
                h.meta.insert(SCHEMA_KEY, v)?;
                Ok(())
            })
            .unwrap();
        store.flush().unwrap();
    }

    #[test]
    fn a_layout_2_store_opens_with_compact_records_and_delta_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut contents = vec![prose(1)];
        for n in 0..3 {
            let mut next = contents[n].clone();
            next[600 * n..600 * n + 20].copy_from_slice(b"a line rewritten....");
            contents.push(next);
        }
        let shas: Vec<[u8; 32]> = contents
            .iter()
            .map(|c| sha2::Sha256::digest(c).into())
            .collect();
        let versions: Vec<Version> = (0..4)
            .map(|n| {
                version(
                    n as u64 + 1,
                    &shas[n],
                    n.checked_sub(0).filter(|&p| p > 0).map(|p| p as u64),
                )
            })
            .collect();
        let snaps = [
            Snapshot {
                id: SnapshotId(1),
                target: SnapshotTarget::Collection("default".into()),
                time_ms: 1,
                origin: Origin::Manual,
                message: Some("first".into()),
                members: vec![VersionId(1)],
            },
            Snapshot {
                id: SnapshotId(2),
                target: SnapshotTarget::Collection("default".into()),
                time_ms: 4,
                origin: Origin::Watch,
                message: None,
                members: vec![VersionId(4)],
            },
        ];
        {
            let store = Store::open(&path).unwrap();
            let hs = store.history().unwrap();
            for (n, c) in contents.iter().enumerate() {
                assert!(hs.put_blob(&shas[n], c, None).unwrap());
            }
            hs.put_snapshot(&versions, &snaps[0]).unwrap();
            hs.put_snapshot(&[], &snaps[1]).unwrap();
            downgrade(&store);
            assert_eq!(hs.blob_totals().unwrap().deltas, 0);
        }
        let store = Store::open(&path).unwrap();
        let hs = store.history().unwrap();
        assert_eq!(hs.all_versions().unwrap(), versions);
        assert_eq!(hs.all_snapshots().unwrap(), snaps.to_vec());
        for (n, c) in contents.iter().enumerate() {
            assert_eq!(hs.blob(&shas[n]).unwrap().as_ref(), Some(c));
        }
        let totals = hs.blob_totals().unwrap();
        assert_eq!(totals.deltas, 3, "{totals:?}");
        store
            .with(|h| {
                // The first version whole, the next ones written against their parents.
                let formats: Vec<u8> = h
                    .history
                    .scan_prefix([b'v'])
                    .values()
                    .map(|v| frame::decode(&v.unwrap()).unwrap().value.unwrap()[0])
                    .collect();
                assert_eq!(
                    formats,
                    [
                        codec::FORMAT,
                        codec::FORMAT_RELATIVE,
                        codec::FORMAT_RELATIVE,
                        codec::FORMAT_RELATIVE
                    ]
                );
                let index: Vec<_> = h.history.scan_prefix([b'l']).values().collect();
                assert_eq!(index.len(), 4);
                assert!(index.iter().all(|v| v.as_ref().unwrap().is_empty()));
                let schema = h.meta.get(SCHEMA_KEY)?.unwrap();
                assert_eq!(
                    unframe(TreeId::Meta, SCHEMA_KEY, &schema)?,
                    SCHEMA.to_le_bytes()
                );
                Ok(())
            })
            .unwrap();
    }
}

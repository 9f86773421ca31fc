//! The history trees: content-addressed blobs and the records of versions, snapshots and
//! tags (see [`crate::history`] for what they mean).
//!
//! | tree | key | value |
//! |---|---|---|
//! | `history_blobs` | SHA-256 of the bytes (32 bytes) | whole, or a delta against an earlier blob (see [`super::blobs`]): it verifies itself by its hash |
//! | `history` | `v` + version id (u64 BE) | [`Version`] in the compact encoding ([`codec`]; JSON in stores of layout 2 and before) |
//! | `history` | `l` + location key + id (u64 BE) | empty (not framed): versions of one location |
//! | `history` | `h` + hex content hash + location key + id | empty (not framed): versions by SkillMeat hash |
//! | `history` | `s` + snapshot id (u64 BE) | [`Snapshot`] in the compact encoding |
//! | `history` | `t` + tag name | version id (u64 BE) |
//! | `history` | `a` + target key | time of the last automatic snapshot (i64 LE, ms) |
//! | `history` | `i` + archive path | empty: a SkillMeat snapshot already imported |
//!
//! Every other `history` value is a framed record ([`super::frame`]) holding the value shown
//! (in stores of layout 2 and before, index entries were framed too).
//! A location key is `c` + collection name, or `p` + absolute project path, then NUL,
//! profile root, NUL, artifact path, NUL. Every record change goes through one
//! `sled::Batch` on the `history` tree, so a version never exists without its index
//! entries. Blobs are written (and flushed by the caller) before any record names them.

pub mod codec;
mod records;

use std::os::unix::ffi::OsStrExt;

use crate::model::{Location, Scope, Snapshot, SnapshotId, SnapshotTarget, Version, VersionId};

pub use super::blobs::{BlobTotals, Delta, MAX_DEPTH};
use super::frame::TreeId;
use super::history_totals::{Touched, apply_counted};
use super::ids::{IdKind, highest};
use super::{Store, StoreError, unframe};
pub(super) use records::{FilesRead, Records, version_key, version_record};

/// The history trees of an open [`Store`] (whichever database the store has in use).
#[derive(Debug, Clone)]
pub struct HistoryStore {
    pub(super) store: Store,
}

pub(super) fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: "history",
        detail: detail.to_string(),
    }
}

/// The key bytes of a location.
pub(super) fn location_key(loc: &Location) -> Vec<u8> {
    let mut k = Vec::new();
    match &loc.scope {
        Scope::Collection(name) => {
            k.push(b'c');
            k.extend_from_slice(name.as_bytes());
        }
        Scope::Project(path) => {
            k.push(b'p');
            k.extend_from_slice(path.as_os_str().as_bytes());
        }
    }
    for part in [loc.root.as_bytes(), loc.path.as_bytes()] {
        k.push(0);
        k.extend_from_slice(part);
    }
    k.push(0);
    k
}

fn target_key(t: &SnapshotTarget) -> Vec<u8> {
    match t {
        SnapshotTarget::Collection(n) => [b"c".as_slice(), n.as_bytes()].concat(),
        SnapshotTarget::Project(p) => [b"p".as_slice(), p.as_os_str().as_bytes()].concat(),
    }
}

pub(super) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![prefix];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub(super) fn id_of(tail: &[u8]) -> Result<u64, StoreError> {
    tail.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt("index key does not end with an id"))
}

impl Store {
    /// The history trees of this store.
    ///
    /// # Errors
    /// sled could not open the trees.
    pub fn history(&self) -> Result<HistoryStore, StoreError> {
        Ok(HistoryStore {
            store: self.clone(),
        })
    }
}

/// Decodes a framed snapshot record.
fn snapshot_record(key: &[u8], v: &[u8]) -> Result<Snapshot, StoreError> {
    codec::decode_snapshot(unframe(TreeId::History, key, v)?).map_err(corrupt)
}

/// The key of a snapshot record.
pub(super) fn snapshot_key(id: SnapshotId) -> Vec<u8> {
    key(b's', &[&id.0.to_be_bytes()])
}

/// The key of a tag.
pub(super) fn tag_key(name: &str) -> Vec<u8> {
    key(b't', &[name.as_bytes()])
}

impl HistoryStore {
    /// Makes every write so far durable.
    ///
    /// # Errors
    /// The flush failed.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }

    /// The next version id (`v1`, `v2`, …), never handed out before (see [`super::ids`]).
    ///
    /// # Errors
    /// sled failed.
    pub fn next_version_id(&self) -> Result<VersionId, StoreError> {
        self.store
            .allocate_id(IdKind::Version, |h| {
                Ok(highest(
                    h.history
                        .scan_prefix([b'v'])
                        .keys()
                        .next_back()
                        .transpose()?,
                ))
            })
            .map(VersionId)
    }

    /// The next snapshot id (`s1`, `s2`, …), never handed out before.
    ///
    /// # Errors
    /// sled failed.
    pub fn next_snapshot_id(&self) -> Result<SnapshotId, StoreError> {
        self.store
            .allocate_id(IdKind::Snapshot, |h| {
                Ok(highest(
                    h.history
                        .scan_prefix([b's'])
                        .keys()
                        .next_back()
                        .transpose()?,
                ))
            })
            .map(SnapshotId)
    }

    /// Bytes the whole store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.store.size_on_disk()
    }

    // ------------------------------------------------------------ versions

    pub(super) fn version_keys(v: &Version) -> [Vec<u8>; 3] {
        let id = v.id.0.to_be_bytes();
        let loc = location_key(&v.location);
        [
            key(b'v', &[&id]),
            key(b'l', &[&loc, &id]),
            key(b'h', &[v.content_hash.as_bytes(), &loc, &id]),
        ]
    }

    /// Writes (or rewrites) versions with their index entries, atomically.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_versions(&self, versions: &[Version]) -> Result<(), StoreError> {
        self.store.with(|h| {
            let mut batch = sled::Batch::default();
            let mut records = Records::default();
            for v in versions {
                records.add(&self.store, h, &mut batch, v);
            }
            apply_counted(h, batch, &Touched::wrote(versions))
        })
    }

    /// Writes new versions and a snapshot naming them, atomically.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_snapshot(&self, versions: &[Version], snap: &Snapshot) -> Result<(), StoreError> {
        let touched = Touched {
            snapshots_written: &[snap.id],
            ..Touched::wrote(versions)
        };
        self.store.with(|h| {
            let mut batch = sled::Batch::default();
            let mut records = Records::default();
            for v in versions {
                records.add(&self.store, h, &mut batch, v);
            }
            let k = snapshot_key(snap.id);
            let value = codec::encode_snapshot(snap);
            batch.insert(k.clone(), self.store.frame(TreeId::History, &k, &value));
            apply_counted(h, batch, &touched)
        })
    }

    /// One version.
    ///
    /// # Errors
    /// sled failed, or the record does not decode.
    pub fn version(&self, id: VersionId) -> Result<Option<Version>, StoreError> {
        let k = key(b'v', &[&id.0.to_be_bytes()]);
        self.store.with(|h| {
            h.history
                .get(&k)?
                .map(|v| version_record(h, &k, &v))
                .transpose()
        })
    }

    /// Every version of one location, in id order.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn versions_at(&self, loc: &Location) -> Result<Vec<Version>, StoreError> {
        let prefix = key(b'l', &[&location_key(loc)]);
        self.store.with(|h| {
            let mut read = FilesRead::default();
            let mut out = Vec::new();
            for k in h.history.scan_prefix(&prefix).keys() {
                let k = k?;
                let rec = version_key(VersionId(id_of(&k[prefix.len()..])?));
                if let Some(v) = h.history.get(&rec)? {
                    out.push(read.version(h, &rec, &v)?);
                }
            }
            Ok(out)
        })
    }

    /// Ids of the versions whose SkillMeat hash is `hash`, at `loc` or anywhere.
    ///
    /// # Errors
    /// sled failed.
    pub fn versions_with_hash(
        &self,
        hash: &str,
        loc: Option<&Location>,
    ) -> Result<Vec<VersionId>, StoreError> {
        let loc = loc.map(location_key).unwrap_or_default();
        let prefix = key(b'h', &[hash.as_bytes(), &loc]);
        self.store.with(|h| {
            let mut out = Vec::new();
            for k in h.history.scan_prefix(&prefix).keys() {
                let k = k?;
                if k.len() < prefix.len() + 8 {
                    return Err(corrupt("hash index key too short"));
                }
                out.push(VersionId(id_of(&k[k.len() - 8..])?));
            }
            Ok(out)
        })
    }

    /// Every version, in id order.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn all_versions(&self) -> Result<Vec<Version>, StoreError> {
        self.store.with(|h| {
            let mut read = FilesRead::default();
            h.history
                .scan_prefix([b'v'])
                .map(|kv| {
                    let (k, v) = kv?;
                    read.version(h, &k, &v)
                })
                .collect()
        })
    }

    // ------------------------------------------------------------ snapshots and tags

    /// One snapshot.
    ///
    /// # Errors
    /// sled failed, or the record does not decode.
    pub fn snapshot(&self, id: SnapshotId) -> Result<Option<Snapshot>, StoreError> {
        let k = snapshot_key(id);
        self.store.with(|h| {
            h.history
                .get(&k)?
                .map(|v| snapshot_record(&k, &v))
                .transpose()
        })
    }

    /// Every snapshot, in id order.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn all_snapshots(&self) -> Result<Vec<Snapshot>, StoreError> {
        self.store.with(|h| {
            h.history
                .scan_prefix([b's'])
                .map(|kv| {
                    let (k, v) = kv?;
                    snapshot_record(&k, &v)
                })
                .collect()
        })
    }

    /// The version a tag names.
    ///
    /// # Errors
    /// sled failed.
    pub fn tag(&self, name: &str) -> Result<Option<VersionId>, StoreError> {
        let k = tag_key(name);
        self.store.with(|h| {
            h.history
                .get(&k)?
                .map(|v| id_of(unframe(TreeId::History, &k, &v)?).map(VersionId))
                .transpose()
        })
    }

    /// Points tag `name` at `version` (already carrying the tag), taking it off `previous`.
    ///
    /// # Errors
    /// sled failed.
    pub fn set_tag(
        &self,
        name: &str,
        version: &Version,
        previous: Option<&Version>,
    ) -> Result<(), StoreError> {
        let wrote: Vec<Version> = previous.into_iter().chain([version]).cloned().collect();
        self.store.with(|h| {
            let mut batch = sled::Batch::default();
            let mut records = Records::default();
            for v in &wrote {
                records.add(&self.store, h, &mut batch, v);
            }
            let k = tag_key(name);
            let v = self
                .store
                .frame(TreeId::History, &k, &version.id.0.to_be_bytes());
            batch.insert(k, v);
            apply_counted(h, batch, &Touched::wrote(&wrote))
        })
    }

    /// When the last automatic snapshot of `target` was taken (ms since the epoch).
    ///
    /// # Errors
    /// sled failed.
    pub fn last_auto_snapshot(&self, target: &SnapshotTarget) -> Result<Option<i64>, StoreError> {
        let k = key(b'a', &[&target_key(target)]);
        self.store.with(|h| {
            Ok(h.history.get(&k)?.and_then(|v| {
                unframe(TreeId::History, &k, &v)
                    .ok()?
                    .try_into()
                    .ok()
                    .map(i64::from_le_bytes)
            }))
        })
    }

    /// Records when the last automatic snapshot of `target` was taken.
    ///
    /// # Errors
    /// sled failed.
    pub fn set_last_auto_snapshot(
        &self,
        target: &SnapshotTarget,
        time_ms: i64,
    ) -> Result<(), StoreError> {
        let k = key(b'a', &[&target_key(target)]);
        let v = self
            .store
            .frame(TreeId::History, &k, &time_ms.to_le_bytes());
        self.store.with(|h| {
            h.history.insert(k, v)?;
            Ok(())
        })
    }

    /// Removes snapshots and versions, rewriting `relinked` versions (whose parents went),
    /// atomically. Tags naming a removed version go with it. Tombstones tell a salvage
    /// that these records were removed.
    ///
    /// # Errors
    /// sled failed.
    pub fn remove(
        &self,
        snapshots: &[SnapshotId],
        versions: &[Version],
        relinked: &[Version],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut buried = Vec::new();
        for s in snapshots {
            let k = snapshot_key(*s);
            batch.remove(k.clone());
            buried.push(k);
        }
        for v in versions {
            for k in Self::version_keys(v) {
                batch.remove(k);
            }
            buried.push(key(b'v', &[&v.id.0.to_be_bytes()]));
            for t in &v.tags {
                batch.remove(tag_key(t));
                buried.push(tag_key(t));
            }
        }
        let removed: Vec<VersionId> = versions.iter().map(|v| v.id).collect();
        let touched = Touched {
            versions_removed: &removed,
            snapshots_removed: snapshots,
            ..Touched::wrote(relinked)
        };
        self.store.with(|h| {
            // Written against their new first parents, which stay.
            let mut records = Records::default();
            for v in relinked {
                records.add(&self.store, h, &mut batch, v);
            }
            self.store.bury(h, TreeId::History, &buried)?;
            apply_counted(h, batch, &touched)?;
            h.newest.forget(versions.iter().chain(relinked));
            Ok(())
        })
    }

    /// Whether the archive at `path` (a SkillMeat snapshot) was imported before.
    ///
    /// # Errors
    /// sled failed.
    pub fn imported(&self, path: &str) -> Result<bool, StoreError> {
        let k = key(b'i', &[path.as_bytes()]);
        self.store.with(|h| Ok(h.history.contains_key(&k)?))
    }

    /// Remembers that the archive at `path` was imported.
    ///
    /// # Errors
    /// sled failed.
    pub fn mark_imported(&self, path: &str) -> Result<(), StoreError> {
        let k = key(b'i', &[path.as_bytes()]);
        let v = self.store.frame(TreeId::History, &k, &[]);
        self.store.with(|h| {
            h.history.insert(k, v)?;
            Ok(())
        })
    }
}

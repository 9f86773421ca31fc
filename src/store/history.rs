//! The history trees: content-addressed blobs and the records of versions, snapshots and
//! tags (see [`crate::history`] for what they mean).
//!
//! | tree | key | value |
//! |---|---|---|
//! | `history_blobs` | SHA-256 of the bytes (32 bytes) | raw length (u64 LE) + zstd level 3 frame |
//! | `history` | `v` + version id (u64 BE) | JSON [`Version`] |
//! | `history` | `l` + location key + id (u64 BE) | empty: versions of one location |
//! | `history` | `h` + hex content hash + location key + id | empty: versions by SkillMeat hash |
//! | `history` | `s` + snapshot id (u64 BE) | JSON [`Snapshot`] |
//! | `history` | `t` + tag name | version id (u64 BE) |
//! | `history` | `a` + target key | time of the last automatic snapshot (i64 LE, ms) |
//! | `history` | `i` + archive path | empty: a SkillMeat snapshot already imported |
//!
//! A location key is `c` + collection name, or `p` + absolute project path, then NUL,
//! profile root, NUL, artifact path, NUL. Every record change goes through one
//! `sled::Batch` on the `history` tree, so a version never exists without its index
//! entries. Blobs are written (and flushed by the caller) before any record names them.

use std::os::unix::ffi::OsStrExt;

use crate::model::{Location, Scope, Snapshot, SnapshotId, SnapshotTarget, Version, VersionId};

use super::ids::{IdKind, highest};
use super::{Store, StoreError};

/// zstd level for blobs: fast, and most artifacts are small text.
const ZSTD_LEVEL: i32 = 3;

/// Totals over the blob tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobTotals {
    pub blobs: u64,
    /// Bytes stored (compressed frames plus their 8-byte headers).
    pub compressed_bytes: u64,
    /// Bytes the blobs hold once decompressed.
    pub raw_bytes: u64,
}

/// The history trees of an open [`Store`].
#[derive(Debug, Clone)]
pub struct HistoryStore {
    store: Store,
    blobs: sled::Tree,
    records: sled::Tree,
}

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: "history",
        detail: detail.to_string(),
    }
}

/// The key bytes of a location.
fn location_key(loc: &Location) -> Vec<u8> {
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

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![prefix];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn id_of(tail: &[u8]) -> Result<u64, StoreError> {
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
            blobs: self.db.open_tree("history_blobs")?,
            records: self.db.open_tree("history")?,
            store: self.clone(),
        })
    }
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
        let present = || {
            Ok(highest(
                self.records
                    .scan_prefix([b'v'])
                    .keys()
                    .next_back()
                    .transpose()?,
            ))
        };
        Ok(VersionId(self.store.allocate_id(IdKind::Version, present)?))
    }

    /// The next snapshot id (`s1`, `s2`, …), never handed out before.
    ///
    /// # Errors
    /// sled failed.
    pub fn next_snapshot_id(&self) -> Result<SnapshotId, StoreError> {
        let present = || {
            Ok(highest(
                self.records
                    .scan_prefix([b's'])
                    .keys()
                    .next_back()
                    .transpose()?,
            ))
        };
        Ok(SnapshotId(
            self.store.allocate_id(IdKind::Snapshot, present)?,
        ))
    }

    /// Bytes the whole store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.store.size_on_disk()
    }

    // ------------------------------------------------------------ blobs

    /// Whether a blob is stored.
    ///
    /// # Errors
    /// sled failed.
    pub fn has_blob(&self, sha: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.blobs.contains_key(sha)?)
    }

    /// Stores `bytes` under their SHA-256 `sha` unless already there; returns whether it
    /// was new. The caller computed `sha` from `bytes`.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_blob(&self, sha: &[u8; 32], bytes: &[u8]) -> Result<bool, StoreError> {
        if self.blobs.contains_key(sha)? {
            return Ok(false);
        }
        let frame = zstd::bulk::compress(bytes, ZSTD_LEVEL)
            .map_err(|e| corrupt(format!("compressing a blob: {e}")))?;
        let mut v = Vec::with_capacity(8 + frame.len());
        v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        v.extend_from_slice(&frame);
        self.blobs.insert(sha, v)?;
        Ok(true)
    }

    /// The bytes of a blob, if stored.
    ///
    /// # Errors
    /// sled failed, or the stored frame does not decompress to its recorded length.
    pub fn blob(&self, sha: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(v) = self.blobs.get(sha)? else {
            return Ok(None);
        };
        if v.len() < 8 {
            return Err(corrupt("blob record shorter than its header"));
        }
        let len = u64::from_le_bytes(v[..8].try_into().expect("8 bytes")) as usize;
        let bytes = zstd::bulk::decompress(&v[8..], len)
            .map_err(|e| corrupt(format!("blob {}: {e}", hex::encode(sha))))?;
        if bytes.len() != len {
            return Err(corrupt(format!("blob {}: wrong length", hex::encode(sha))));
        }
        Ok(Some(bytes))
    }

    /// Every stored blob's id.
    ///
    /// # Errors
    /// sled failed.
    pub fn blob_ids(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.blobs
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("blob key is not 32 bytes"))
            })
            .collect()
    }

    /// Removes a blob; returns the bytes it occupied.
    ///
    /// # Errors
    /// sled failed.
    pub fn remove_blob(&self, sha: &[u8; 32]) -> Result<u64, StoreError> {
        Ok(self.blobs.remove(sha)?.map_or(0, |v| v.len() as u64))
    }

    /// Counts and sizes of the blob tree.
    ///
    /// # Errors
    /// sled failed.
    pub fn blob_totals(&self) -> Result<BlobTotals, StoreError> {
        let mut t = BlobTotals::default();
        for v in self.blobs.iter().values() {
            let v = v?;
            t.blobs += 1;
            t.compressed_bytes += v.len() as u64;
            if v.len() >= 8 {
                t.raw_bytes += u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
            }
        }
        Ok(t)
    }

    // ------------------------------------------------------------ versions

    fn version_keys(v: &Version) -> [Vec<u8>; 3] {
        let id = v.id.0.to_be_bytes();
        let loc = location_key(&v.location);
        [
            key(b'v', &[&id]),
            key(b'l', &[&loc, &id]),
            key(b'h', &[v.content_hash.as_bytes(), &loc, &id]),
        ]
    }

    fn add_version(batch: &mut sled::Batch, v: &Version) {
        let [rec, by_loc, by_hash] = Self::version_keys(v);
        batch.insert(
            rec,
            serde_json::to_vec(v).expect("a version always serializes"),
        );
        batch.insert(by_loc, &[]);
        batch.insert(by_hash, &[]);
    }

    /// Writes (or rewrites) versions with their index entries, atomically.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_versions(&self, versions: &[Version]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for v in versions {
            Self::add_version(&mut batch, v);
        }
        self.records.apply_batch(batch)?;
        Ok(())
    }

    /// Writes new versions and a snapshot naming them, atomically.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_snapshot(&self, versions: &[Version], snap: &Snapshot) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for v in versions {
            Self::add_version(&mut batch, v);
        }
        batch.insert(
            key(b's', &[&snap.id.0.to_be_bytes()]),
            serde_json::to_vec(snap).expect("a snapshot always serializes"),
        );
        self.records.apply_batch(batch)?;
        Ok(())
    }

    /// One version.
    ///
    /// # Errors
    /// sled failed, or the record does not decode.
    pub fn version(&self, id: VersionId) -> Result<Option<Version>, StoreError> {
        self.records
            .get(key(b'v', &[&id.0.to_be_bytes()]))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }

    /// Every version of one location, in id order.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn versions_at(&self, loc: &Location) -> Result<Vec<Version>, StoreError> {
        let prefix = key(b'l', &[&location_key(loc)]);
        let mut out = Vec::new();
        for k in self.records.scan_prefix(&prefix).keys() {
            let k = k?;
            let id = VersionId(id_of(&k[prefix.len()..])?);
            if let Some(v) = self.version(id)? {
                out.push(v);
            }
        }
        Ok(out)
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
        let mut out = Vec::new();
        for k in self.records.scan_prefix(&prefix).keys() {
            let k = k?;
            if k.len() < prefix.len() + 8 {
                return Err(corrupt("hash index key too short"));
            }
            out.push(VersionId(id_of(&k[k.len() - 8..])?));
        }
        Ok(out)
    }

    /// Every version, in id order.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn all_versions(&self) -> Result<Vec<Version>, StoreError> {
        self.records
            .scan_prefix([b'v'])
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(corrupt))
            .collect()
    }

    // ------------------------------------------------------------ snapshots and tags

    /// One snapshot.
    ///
    /// # Errors
    /// sled failed, or the record does not decode.
    pub fn snapshot(&self, id: SnapshotId) -> Result<Option<Snapshot>, StoreError> {
        self.records
            .get(key(b's', &[&id.0.to_be_bytes()]))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }

    /// Every snapshot, in id order.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn all_snapshots(&self) -> Result<Vec<Snapshot>, StoreError> {
        self.records
            .scan_prefix([b's'])
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(corrupt))
            .collect()
    }

    /// The version a tag names.
    ///
    /// # Errors
    /// sled failed.
    pub fn tag(&self, name: &str) -> Result<Option<VersionId>, StoreError> {
        self.records
            .get(key(b't', &[name.as_bytes()]))?
            .map(|v| id_of(&v).map(VersionId))
            .transpose()
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
        let mut batch = sled::Batch::default();
        if let Some(p) = previous {
            Self::add_version(&mut batch, p);
        }
        Self::add_version(&mut batch, version);
        batch.insert(key(b't', &[name.as_bytes()]), &version.id.0.to_be_bytes());
        self.records.apply_batch(batch)?;
        Ok(())
    }

    /// When the last automatic snapshot of `target` was taken (ms since the epoch).
    ///
    /// # Errors
    /// sled failed.
    pub fn last_auto_snapshot(&self, target: &SnapshotTarget) -> Result<Option<i64>, StoreError> {
        Ok(self
            .records
            .get(key(b'a', &[&target_key(target)]))?
            .and_then(|v| v.as_ref().try_into().ok().map(i64::from_le_bytes)))
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
        self.records
            .insert(key(b'a', &[&target_key(target)]), &time_ms.to_le_bytes())?;
        Ok(())
    }

    /// Removes snapshots and versions, rewriting `relinked` versions (whose parents went),
    /// atomically. Tags naming a removed version go with it.
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
        for s in snapshots {
            batch.remove(key(b's', &[&s.0.to_be_bytes()]));
        }
        for v in versions {
            for k in Self::version_keys(v) {
                batch.remove(k);
            }
            for t in &v.tags {
                batch.remove(key(b't', &[t.as_bytes()]));
            }
        }
        for v in relinked {
            Self::add_version(&mut batch, v);
        }
        self.records.apply_batch(batch)?;
        Ok(())
    }

    /// Whether the archive at `path` (a SkillMeat snapshot) was imported before.
    ///
    /// # Errors
    /// sled failed.
    pub fn imported(&self, path: &str) -> Result<bool, StoreError> {
        Ok(self.records.contains_key(key(b'i', &[path.as_bytes()]))?)
    }

    /// Remembers that the archive at `path` was imported.
    ///
    /// # Errors
    /// sled failed.
    pub fn mark_imported(&self, path: &str) -> Result<(), StoreError> {
        self.records.insert(key(b'i', &[path.as_bytes()]), &[])?;
        Ok(())
    }
}

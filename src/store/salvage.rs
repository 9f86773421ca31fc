//! The salvage reader: finds the store's records and blobs in the raw bytes of a damaged
//! store, without sled, and copies what it can verify into a fresh store.
//!
//! A scan ([`scan`], a pure function over bytes, fuzzed) looks for two things in every
//! file of the damaged folder (sled's `db`, `blobs/*`, snapshots, anything):
//! - record frames ([`super::frame`]): magic, lengths and a checksum make each one verify
//!   itself; of several frames of one key (older copies linger in sled's log) the newest
//!   stamp wins, and a tombstone means the record was removed;
//! - blobs: a zstd frame preceded by its raw length, whose bytes hash (SHA-256) to a blob
//!   a salvaged version needs; a delta blob is a record frame (tree `Blobs`), resolved once
//!   the blob it is a delta against is saved (and kept as a delta).
//!
//! [`salvage_into`] then writes what verifies into the new store: project marks, versions
//! whose every blob was found (their index entries rebuilt), snapshots whose every version
//! was saved, tags of saved versions, the operations log, the event cursor, the id floor and the id counters
//! (new ids never reuse a salvaged or a lost one). What could not be saved is listed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use sha2::Digest;

use crate::model::{OperationRecord, Snapshot, Version, VersionId};

use super::blobs::{blob_value, read_blob};
use super::frame::{self, Frame, TreeId};
use super::history::codec::{decode_snapshot, decode_version_with, encode_snapshot, record_base};
use super::history::{Delta, Records, id_of, snapshot_key, tag_key};
use super::{Handles, ProjectMark, Store, StoreError};

/// The zstd frame magic number, as it appears in bytes.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Largest blob a salvage decompresses.
pub const MAX_BLOB: u64 = 1 << 30;
/// Files larger than this are not read whole (scanned in windows instead).
const WINDOW: usize = 64 << 20;

/// Something a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// A record frame that verifies.
    Record(Frame<'a>),
    /// A frame's magic whose frame does not verify (damaged, or cut by the window).
    BadRecord { offset: usize },
    /// A zstd frame that may be a blob: its offset (of the length header) and the raw
    /// length the header claims.
    Blob { offset: usize, len: u64 },
}

/// Scans `bytes` for record frames and blob candidates, in order of offset.
pub fn scan<'a>(bytes: &'a [u8], mut found: impl FnMut(Found<'a>)) {
    let records = memchr::memmem::find_iter(bytes, &frame::MAGIC);
    let mut skip_until = 0;
    for at in records {
        if at < skip_until {
            continue;
        }
        match frame::decode(&bytes[at..]) {
            Ok(f) => {
                skip_until = at + f.len();
                found(Found::Record(f));
            }
            Err(_) => found(Found::BadRecord { offset: at }),
        }
    }
    for at in memchr::memmem::find_iter(bytes, &ZSTD_MAGIC) {
        if at < 8 {
            continue;
        }
        let len = u64::from_le_bytes(bytes[at - 8..at].try_into().expect("8 bytes"));
        if len <= MAX_BLOB {
            found(Found::Blob {
                offset: at - 8,
                len,
            });
        }
    }
}

/// The blob whose value (length header and zstd frame) starts at `offset`, if it
/// decompresses to exactly the length it claims: its SHA-256 and bytes.
pub fn blob_at(bytes: &[u8], offset: usize) -> Option<([u8; 32], Vec<u8>)> {
    let header = bytes.get(offset..offset + 8)?;
    let len = u64::from_le_bytes(header.try_into().ok()?);
    if len > MAX_BLOB {
        return None;
    }
    let frame = bytes.get(offset + 8..)?;
    let mut decoder = zstd::stream::read::Decoder::with_buffer(frame)
        .ok()?
        .single_frame();
    let mut out = Vec::new();
    (&mut decoder).take(len + 1).read_to_end(&mut out).ok()?;
    if out.len() as u64 != len {
        return None;
    }
    let sha: [u8; 32] = sha2::Sha256::digest(&out).into();
    Some((sha, out))
}

/// A blob id from its hex form.
fn parse_sha(hex_id: &str) -> Option<[u8; 32]> {
    hex::decode(hex_id).ok()?.try_into().ok()
}

/// What a salvage saved, and what it could not.
#[derive(Debug, Default)]
pub struct Salvaged {
    pub marks: usize,
    pub versions: usize,
    pub snapshots: usize,
    pub tags: usize,
    pub blobs: usize,
    pub operations: usize,
    pub mutes: usize,
    pub unsaved: Vec<String>,
}

impl Salvaged {
    /// One line for the report and the log.
    pub fn summary(&self) -> String {
        format!(
            "{} project marks, {} versions, {} snapshots, {} tags, {} blobs, {} operations, {} mutes",
            self.marks,
            self.versions,
            self.snapshots,
            self.tags,
            self.blobs,
            self.operations,
            self.mutes
        )
    }
}

/// A record's tree and key.
type RecordKey = (TreeId, Vec<u8>);

/// The newest frame of each key.
#[derive(Debug, Default)]
struct Newest {
    /// The stamp and value (`None`: removed) of each record.
    records: HashMap<RecordKey, (u64, Option<Vec<u8>>)>,
    bad: usize,
    max_stamp: u64,
}

impl Newest {
    fn add(&mut self, f: &Frame<'_>) {
        self.max_stamp = self.max_stamp.max(f.stamp);
        let slot = self
            .records
            .entry((f.tree, f.key.to_vec()))
            .or_insert((0, None));
        // Equal stamps (records converted from layout 1) keep the record over a tombstone.
        if f.stamp > slot.0 || (f.stamp == slot.0 && f.value.is_some()) {
            *slot = (f.stamp, f.value.map(<[u8]>::to_vec));
        }
    }

    /// The live records of `tree` (tombstoned ones dropped), by key.
    fn tree(&self, tree: TreeId) -> BTreeMap<&[u8], &[u8]> {
        self.records
            .iter()
            .filter(|((t, _), _)| *t == tree)
            .filter_map(|((_, k), (_, v))| Some((k.as_slice(), v.as_deref()?)))
            .collect()
    }
}

/// Every file below `dir`, except the salvage report.
fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.file_name() != super::health::REPORT)
        .map(|e| e.into_path())
        .collect()
}

/// Calls `f` on the bytes of `path`, whole or (when large) in overlapping windows.
fn each_window(path: &Path, mut f: impl FnMut(&[u8])) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; WINDOW];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() >= 2 * WINDOW {
            f(&buf);
            // Keep the tail: a record may straddle the cut.
            buf.drain(..buf.len() - WINDOW);
        }
    }
    if !buf.is_empty() {
        f(&buf);
    }
}

/// Salvages the damaged store in `damaged` into the fresh database `h` of `store`.
///
/// # Errors
/// Writing into the fresh store failed.
pub(super) fn salvage_into(
    store: &Store,
    h: &Handles,
    damaged: &Path,
) -> Result<Salvaged, StoreError> {
    let paths = files(damaged);
    let mut newest = Newest::default();
    // Files holding blob candidates, read again once the needed blobs are known.
    let mut with_blobs: Vec<&PathBuf> = Vec::new();
    for p in &paths {
        let mut blobs = false;
        each_window(p, |bytes| {
            scan(bytes, |found| match found {
                Found::Record(f) => newest.add(&f),
                Found::BadRecord { .. } => newest.bad += 1,
                Found::Blob { .. } => blobs = true,
            })
        });
        if blobs {
            with_blobs.push(p);
        }
    }
    store
        .shared
        .stamp
        .fetch_max(newest.max_stamp, Ordering::SeqCst);
    let mut out = Salvaged::default();
    if newest.bad > 0 {
        out.unsaved.push(format!(
            "{} damaged record copies could not be read (older copies of the same records may \
             have been saved)",
            newest.bad
        ));
    }

    // Project marks.
    for (k, v) in newest.tree(TreeId::Projects) {
        match serde_json::from_slice::<ProjectMark>(v) {
            Ok(m) if m != ProjectMark::default() => {
                h.projects.insert(k, store.frame(TreeId::Projects, k, v))?;
                out.marks += 1;
            }
            Ok(_) => {}
            Err(e) => out.unsaved.push(format!(
                "project mark of {}: {e}",
                String::from_utf8_lossy(k)
            )),
        }
    }

    // Notification mutes.
    for (k, v) in newest.tree(TreeId::Mutes) {
        h.mutes.insert(k, store.frame(TreeId::Mutes, k, v))?;
        out.mutes += 1;
    }

    // Operations log.
    for (k, v) in newest.tree(TreeId::Operations) {
        match serde_json::from_slice::<OperationRecord>(v) {
            Ok(_) => {
                h.operations
                    .insert(k, store.frame(TreeId::Operations, k, v))?;
                out.operations += 1;
            }
            Err(e) => out.unsaved.push(format!("an operation record: {e}")),
        }
    }

    // Versions, and the blobs they need.
    let history = newest.tree(TreeId::History);
    let mut versions: BTreeMap<VersionId, Version> = BTreeMap::new();
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut records: Vec<&[u8]> = Vec::new();
    for (k, v) in &history {
        match k.first() {
            Some(b'v') => records.push(v),
            Some(b's') => match decode_snapshot(v) {
                Ok(s) => snapshots.push(s),
                Err(e) => out.unsaved.push(format!("a snapshot record: {e}")),
            },
            _ => {}
        }
    }
    // Version records, relative ones once the record they are written against is read.
    loop {
        let before = records.len();
        records.retain(|v| {
            let decoded =
                decode_version_with(v, |base| versions.get(&base).map(|b| b.entries.clone()));
            match decoded {
                Ok(ver) => {
                    versions.insert(ver.id, ver);
                    false
                }
                Err(_) if record_base(v).is_some_and(|(b, _)| !versions.contains_key(&b)) => true,
                Err(e) => {
                    out.unsaved.push(format!("a version record: {e}"));
                    false
                }
            }
        });
        if records.len() == before {
            break;
        }
    }
    for v in records {
        let base = record_base(v)
            .map(|(b, _)| b.to_string())
            .unwrap_or_default();
        out.unsaved.push(format!(
            "a version record written against {base}, whose record was not found"
        ));
    }
    // Delta blobs, and the bases their chains need.
    let deltas: BTreeMap<[u8; 32], (Delta<'_>, &[u8])> = newest
        .tree(TreeId::Blobs)
        .into_iter()
        .filter_map(|(k, v)| Some((k.try_into().ok()?, (Delta::parse(v)?, v))))
        .collect();
    let mut needed: HashSet<[u8; 32]> = HashSet::new();
    let mut todo: Vec<[u8; 32]> = versions
        .values()
        .flat_map(|v| &v.entries)
        .filter_map(|e| parse_sha(&e.blob))
        .collect();
    while let Some(sha) = todo.pop() {
        if needed.insert(sha)
            && let Some((d, _)) = deltas.get(&sha)
        {
            todo.push(d.base);
        }
    }
    let mut have: HashSet<[u8; 32]> = HashSet::new();
    for p in with_blobs {
        each_window(p, |bytes| {
            let mut offsets = Vec::new();
            scan(bytes, |found| {
                if let Found::Blob { offset, .. } = found {
                    offsets.push(offset);
                }
            });
            for offset in offsets {
                if let Some((sha, data)) = blob_at(bytes, offset)
                    && needed.contains(&sha)
                    && !have.contains(&sha)
                    && let Ok(value) = blob_value(&data)
                    && h.blobs.insert(sha, value).is_ok()
                {
                    have.insert(sha);
                }
            }
        });
    }
    // Deltas whose base is saved, until no more resolve.
    loop {
        let mut resolved = 0;
        for (sha, (d, value)) in &deltas {
            if have.contains(sha) || !needed.contains(sha) || !have.contains(&d.base) {
                continue;
            }
            let sound = read_blob(h, &d.base)
                .ok()
                .flatten()
                .and_then(|base| d.apply(&base))
                .is_some_and(|bytes| <[u8; 32]>::from(sha2::Sha256::digest(&bytes)) == *sha);
            if sound {
                h.blobs
                    .insert(sha, store.frame(TreeId::Blobs, sha, value))?;
                have.insert(*sha);
                resolved += 1;
            }
        }
        if resolved == 0 {
            break;
        }
    }
    out.blobs = have.len();
    let mut saved: BTreeMap<VersionId, Version> = BTreeMap::new();
    for (id, v) in versions {
        let missing: Vec<&str> = v
            .entries
            .iter()
            .filter(|e| !parse_sha(&e.blob).is_some_and(|s| have.contains(&s)))
            .map(|e| e.path.as_str())
            .collect();
        if missing.is_empty() {
            saved.insert(id, v);
        } else {
            out.unsaved.push(format!(
                "version {id} of {}: the content of {} was not found",
                v.location,
                missing
                    .iter()
                    .map(|p| if p.is_empty() { "the file" } else { p })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let ids: Vec<VersionId> = saved.keys().copied().collect();
    let mut batch = sled::Batch::default();
    let mut written = Records::default();
    for v in saved.values_mut() {
        v.parents.retain(|p| ids.contains(p));
        written.add(store, h, &mut batch, v);
    }
    out.versions = saved.len();

    // Snapshots whose every version was saved; tags of saved versions.
    snapshots.sort_by_key(|s| s.id);
    let mut floor = saved.keys().map(|v| v.0).max().unwrap_or(0);
    for s in snapshots {
        floor = floor.max(s.id.0);
        let lost: Vec<String> = s
            .members
            .iter()
            .filter(|m| !saved.contains_key(m))
            .map(ToString::to_string)
            .collect();
        if lost.is_empty() {
            let k = snapshot_key(s.id);
            batch.insert(
                k.clone(),
                store.frame(TreeId::History, &k, &encode_snapshot(&s)),
            );
            out.snapshots += 1;
        } else {
            out.unsaved.push(format!(
                "snapshot {} of {}: its versions {} were not saved",
                s.id,
                s.target,
                lost.join(", ")
            ));
        }
    }
    for (k, v) in &history {
        match k.first() {
            Some(b't') => {
                let Ok(id) = id_of(v).map(VersionId) else {
                    continue;
                };
                let name = String::from_utf8_lossy(&k[1..]).into_owned();
                if saved.get(&id).is_some_and(|ver| ver.tags.contains(&name)) {
                    let tk = tag_key(&name);
                    batch.insert(tk.clone(), store.frame(TreeId::History, &tk, v));
                    out.tags += 1;
                } else {
                    out.unsaved
                        .push(format!("tag {name}: its version {id} was not saved"));
                }
            }
            Some(b'a' | b'i') => {
                batch.insert(k.to_vec(), store.frame(TreeId::History, k, v));
            }
            _ => {}
        }
    }
    h.history.apply_batch(batch)?;
    h.newest.clear();
    // Records and blobs were written wholesale: the totals are counted afresh when asked.
    h.counts.history.forget();
    store.raise_id_floor(h, floor)?;

    // The event cursor never goes back.
    let meta = newest.tree(TreeId::Meta);
    if let Some(next) = meta
        .get(b"next_cursor".as_slice())
        .and_then(|v| (*v).try_into().ok().map(u64::from_le_bytes))
    {
        h.meta.insert(
            b"next_cursor",
            store.frame(TreeId::Meta, b"next_cursor", &next.to_le_bytes()),
        )?;
    }
    if let Some(f) = meta
        .get(super::ID_FLOOR_KEY)
        .and_then(|v| (*v).try_into().ok().map(u64::from_le_bytes))
    {
        store.raise_id_floor(h, f)?;
    }
    // Counters never go back either: ids of records not saved are not handed out again.
    for kind in super::ids::IdKind::ALL {
        if let Some(last) = meta
            .get(kind.key())
            .and_then(|v| (*v).try_into().ok().map(u64::from_le_bytes))
        {
            store.raise_counter(h, kind, last)?;
        }
    }
    h.db.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_finds_frames_and_blobs_among_garbage() {
        let rec = frame::encode(TreeId::Projects, 9, b"/p", Some(b"{\"manual\":true}"));
        let data = b"hello blob".repeat(50);
        let blob = blob_value(&data).unwrap();
        let mut bytes = b"garbage".to_vec();
        bytes.extend_from_slice(&rec);
        bytes.extend_from_slice(&[0xF0, b'S', b'M', b'R', 1, 2]);
        bytes.extend_from_slice(&blob);
        bytes.extend_from_slice(b"tail");
        let mut found = Vec::new();
        scan(&bytes, |f| found.push(f));
        assert!(matches!(found[0], Found::Record(f) if f.key == b"/p" && f.stamp == 9));
        assert!(matches!(found[1], Found::BadRecord { .. }));
        let Found::Blob { offset, len } = found[2] else {
            panic!("{found:?}")
        };
        assert_eq!(len, data.len() as u64);
        let (sha, got) = blob_at(&bytes, offset).unwrap();
        assert_eq!(got, data);
        assert_eq!(sha, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
    }
}

//! Store trees for live drift: the event journal and the last known drift state.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `journal` | cursor, big-endian u64 (so keys sort by cursor) | JSON [`Event`] |
//! | `drift` | project path, NUL, record number (u32 BE) | format byte 2, then up to 48 of the project's [`KnownDrift`]s in postcard |
//!
//! Cursors are assigned here, monotonically: the next cursor is one past the largest ever
//! written (kept in `meta` as `next_cursor`, a framed u64 LE, so pruning the journal never
//! reuses one, and a repaired store salvages it). Both trees are derived: a repair starts
//! them afresh.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::model::{Event, KnownDrift};

use super::frame::TreeId;
use super::{Store, StoreError};

const NEXT_CURSOR: &str = "next_cursor";

/// Events per sled batch when appending (see [`Store::append_events`]).
const APPEND_CHUNK: usize = 256;

fn corrupt(tree: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    }
}

impl Store {
    /// The cursor the next appended event will get.
    ///
    /// # Errors
    /// sled failed.
    pub fn next_cursor(&self) -> Result<u64, StoreError> {
        self.with(|h| {
            let stored = self.meta_number(h, NEXT_CURSOR.as_bytes())?.unwrap_or(1);
            let after_last = h
                .journal
                .range(..self.journal_limit().saturating_add(1).to_be_bytes())
                .next_back()
                .transpose()?
                .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
                .map_or(1, |c| c + 1);
            Ok(stored.max(after_last))
        })
    }

    /// Appends events (their cursors already assigned, ascending) and flushes, so an event
    /// is durable before anyone is told about it.
    ///
    /// # Errors
    /// sled failed.
    pub fn append_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        // Applied in chunks, flushed once: sled keeps every node a batch replaces until the
        // batch ends, so a start's thousands of events in one batch would peak at tens of
        // megabytes that the allocator keeps. A crash between chunks leaves a durable prefix
        // whose drift state was not written: the next start tells those changes again, as
        // after a crash between the journal and the drift state.
        let mut batches = Vec::with_capacity(events.len().div_ceil(APPEND_CHUNK));
        for chunk in events.chunks(APPEND_CHUNK) {
            let mut batch = sled::Batch::default();
            for e in chunk {
                let v = serde_json::to_vec(e).map_err(|e| corrupt("journal", e))?;
                batch.insert(&e.cursor.to_be_bytes(), v);
            }
            batches.push(batch);
        }
        let next = self.frame(
            TreeId::Meta,
            NEXT_CURSOR.as_bytes(),
            &(last.cursor + 1).to_le_bytes(),
        );
        let mut keys = Vec::with_capacity(events.len());
        for e in events {
            keys.push(e.cursor.to_be_bytes());
        }
        let result = self
            .with(|h| {
                for batch in batches {
                    h.journal.apply_batch(batch)?;
                }
                h.counts.journal_events.add(keys.len() as i64);
                h.meta.insert(NEXT_CURSOR, next)?;
                Ok(())
            })
            .and_then(|()| self.flush());
        let durable = &self.shared.journal_durable;
        if let Err(e) = result {
            // Not durable, so not appended. Their cursors are handed out again, and sled,
            // failed after the I/O error, may refuse to take them back out of its memory:
            // until a later append is durable, reads stop before them.
            let _ = self.with(|h| {
                for k in &keys {
                    h.journal.remove(k)?;
                }
                Ok(())
            });
            if let Some(counts) = self.counts() {
                counts.journal_events.forget();
            }
            durable.fetch_min(events[0].cursor.saturating_sub(1), Ordering::SeqCst);
            return Err(e);
        }
        if durable.load(Ordering::SeqCst) != u64::MAX {
            durable.store(last.cursor, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The last cursor a read may return (see `Shared::journal_durable`).
    fn journal_limit(&self) -> u64 {
        self.shared.journal_durable.load(Ordering::SeqCst)
    }

    /// Events with a cursor greater than `after`, ascending, at most `limit`.
    ///
    /// # Errors
    /// sled failed, or an event does not decode.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        let durable = self.journal_limit();
        if after >= durable {
            return Ok(Vec::new());
        }
        let end = durable.saturating_add(1).to_be_bytes();
        self.with(|h| {
            h.journal
                .range(start..end)
                .take(limit)
                .map(|kv| {
                    let (_, v) = kv?;
                    serde_json::from_slice(&v).map_err(|e| corrupt("journal", e))
                })
                .collect()
        })
    }

    /// The oldest cursor still in the journal, if any.
    ///
    /// # Errors
    /// sled failed.
    pub fn first_cursor(&self) -> Result<Option<u64>, StoreError> {
        self.with(|h| {
            Ok(h.journal
                .first()?
                .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
                .filter(|&c| c <= self.journal_limit()))
        })
    }

    /// Number of events in the journal (0 when the store cannot answer): a counter, after
    /// one count the first time.
    pub fn journal_len(&self) -> usize {
        let limit = self.journal_limit();
        self.with(|h| {
            Ok(if limit == u64::MAX {
                h.counts.journal_events.get_or(|| h.journal.len() as u64) as usize
            } else {
                h.journal
                    .range(..limit.saturating_add(1).to_be_bytes())
                    .count()
            })
        })
        .unwrap_or(0)
    }

    /// Drops events beyond `max_events` (oldest first) and older than `min_time_ms`.
    ///
    /// # Errors
    /// sled failed.
    pub fn prune_journal(&self, max_events: usize, min_time_ms: i64) -> Result<usize, StoreError> {
        self.with(|h| {
            let mut removed = 0;
            let len = h.counts.journal_events.get_or(|| h.journal.len() as u64);
            let excess = (len as usize).saturating_sub(max_events);
            for kv in h.journal.iter() {
                let (k, v) = kv?;
                let old = serde_json::from_slice::<Event>(&v)
                    .map(|e| e.time_ms < min_time_ms)
                    .unwrap_or(true);
                if removed < excess || old {
                    if h.journal.remove(k)?.is_some() {
                        h.counts.journal_events.add(-1);
                    }
                    removed += 1;
                } else {
                    break;
                }
            }
            Ok(removed)
        })
    }

    /// The drift state persisted by the last run, by project (in the order of their paths'
    /// bytes).
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn known_drift(&self) -> Result<Vec<(PathBuf, Vec<KnownDrift>)>, StoreError> {
        self.with(|h| {
            let mut out: Vec<(PathBuf, Vec<KnownDrift>)> = Vec::new();
            for kv in h.drift.iter() {
                let (k, v) = kv?;
                let Some(end) = k.iter().position(|&b| b == 0) else {
                    return Err(corrupt("drift", "a record's key names no project"));
                };
                let project = Path::new(OsStr::from_bytes(&k[..end]));
                let reports = decode_project(&v).map_err(|e| corrupt("drift", e))?;
                // A project's records are adjacent: their keys share its path and the NUL.
                match out.last_mut() {
                    Some((p, all)) if p == project => all.extend(reports),
                    _ => out.push((project.to_path_buf(), reports)),
                }
            }
            Ok(out)
        })
    }

    /// Records the drift state of the projects given (an empty list removes a project's).
    /// Flushed with the journal.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_known_drift<'a>(
        &self,
        projects: impl IntoIterator<Item = (&'a Path, Vec<&'a KnownDrift>)>,
    ) -> Result<(), StoreError> {
        let projects: Vec<_> = projects.into_iter().collect();
        self.with(|h| {
            let mut batch = sled::Batch::default();
            for (project, reports) in &projects {
                for kv in h.drift.scan_prefix(project_prefix(project)) {
                    batch.remove(kv?.0);
                }
                add_records(&mut batch, project, reports)?;
            }
            Ok(h.drift.apply_batch(batch)?)
        })
    }

    /// Replaces the whole drift state (after a repair started the derived trees afresh, or
    /// when the state on disk fell behind).
    ///
    /// # Errors
    /// sled failed.
    pub fn replace_known_drift<'a>(
        &self,
        projects: impl IntoIterator<Item = (&'a Path, Vec<&'a KnownDrift>)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (project, reports) in projects {
            add_records(&mut batch, project, &reports)?;
        }
        self.with(|h| {
            h.drift.clear()?;
            h.drift.apply_batch(batch)?;
            Ok(())
        })
    }
}

/// Reports per record: a record stays well under the size above which sled writes a value
/// to a file of its own (a quarter of a segment, 32 KiB for the stores made now).
const REPORTS_PER_RECORD: usize = 48;

/// The keys of a project's records begin with its path and a NUL (which no path holds).
fn project_prefix(project: &Path) -> Vec<u8> {
    let mut key = project.as_os_str().as_bytes().to_vec();
    key.push(0);
    key
}

/// Adds a project's drift state to `batch` as records keyed `path NUL n` (n a big-endian
/// u32), in order.
fn add_records(
    batch: &mut sled::Batch,
    project: &Path,
    reports: &[&KnownDrift],
) -> Result<(), StoreError> {
    for (chunk, n) in reports.chunks(REPORTS_PER_RECORD).zip(0u32..) {
        let mut key = project_prefix(project);
        key.extend_from_slice(&n.to_be_bytes());
        batch.insert(key, encode_project(chunk)?);
    }
    Ok(())
}

/// The format byte that opens a project's drift state record. 1 (hashes as text) was
/// never released; a record of another format does not decode, and the state is then
/// rebuilt as a new store's is.
const DRIFT_FORMAT: u8 = 2;

fn encode_project(reports: &[&KnownDrift]) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![DRIFT_FORMAT];
    postcard::to_io(reports, &mut out).map_err(|e| corrupt("drift", e))?;
    Ok(out)
}

fn decode_project(bytes: &[u8]) -> Result<Vec<KnownDrift>, String> {
    match bytes.split_first() {
        Some((&DRIFT_FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown drift state format {other}")),
        None => Err("empty drift state record".into()),
    }
}

/// Opens the drift state's tree, converting an earlier daemon's first.
pub(super) fn open_drift(db: &sled::Db) -> Result<sled::Tree, sled::Error> {
    let drift = db.open_tree("drift")?;
    convert_legacy_state(db, &drift)?;
    Ok(drift)
}

/// Moves a drift state kept by an earlier daemon (tree `state`: one JSON record per
/// artifact) into `drift` (one record per project), then drops `state`. Called when the
/// store is opened; run again whole if interrupted, as `state` goes only after `drift` is
/// written and flushed. A record that does not decode is left out: the state is derived,
/// and its artifact is told as new once.
fn convert_legacy_state(db: &sled::Db, drift: &sled::Tree) -> Result<(), sled::Error> {
    if !db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == LEGACY_STATE.as_bytes())
    {
        return Ok(());
    }
    let legacy = db.open_tree(LEGACY_STATE)?;
    let mut by_project: BTreeMap<PathBuf, Vec<KnownDrift>> = BTreeMap::new();
    let mut undecodable = 0usize;
    for kv in legacy.iter() {
        let (_, v) = kv?;
        match serde_json::from_slice::<KnownDrift>(&v) {
            Ok(r) => by_project.entry(r.project.clone()).or_default().push(r),
            Err(_) => undecodable += 1,
        }
    }
    if undecodable > 0 {
        tracing::warn!(
            undecodable,
            "drift state records of an earlier version left out"
        );
    }
    let mut batch = sled::Batch::default();
    for (project, reports) in &by_project {
        let reports: Vec<&KnownDrift> = reports.iter().collect();
        if let Err(e) = add_records(&mut batch, project, &reports) {
            tracing::warn!(error = %e, project = %project.display(), "drift state left out");
        }
    }
    drift.apply_batch(batch)?;
    db.flush()?;
    db.drop_tree(LEGACY_STATE)?;
    Ok(())
}

/// The tree of an earlier daemon's drift state.
const LEGACY_STATE: &str = "state";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::DriftKind;

    fn report(project: &str, name: &str, kind: DriftKind) -> KnownDrift {
        KnownDrift {
            project: PathBuf::from(project),
            profile_root: ".claude".into(),
            name: name.into(),
            artifact_type: "skill".into(),
            kind,
            recommendation: "push_to_collection".into(),
            change_origin: "local_modification".into(),
            deployed_sha: Some("d".repeat(64).into()),
            collection_sha: Some("c".repeat(64).into()),
            project_sha: Some("written by hand".into()),
            collection_version: Some("1.0.0".into()),
            project_version: None,
            last_deployed: Some("2026-12-01T10:00:00.123456Z".into()),
            collection: "default".into(),
            artifact_path: PathBuf::from(format!("skills/{name}")),
            collection_path: Some(PathBuf::from(format!("skills/{name}"))),
            error: Some("project side: permission denied".into()),
        }
    }

    #[test]
    fn a_project_record_decodes_to_what_was_encoded() {
        let a = report("/p", "a", DriftKind::Modified);
        let b = report("/p", "b", DriftKind::Conflict);
        let bytes = encode_project(&[&a, &b]).unwrap();
        assert_eq!(decode_project(&bytes).unwrap(), vec![a, b]);
        assert!(decode_project(&[9, 0]).unwrap_err().contains("format 9"));
        assert!(decode_project(&bytes[..bytes.len() - 3]).is_err());
        assert!(decode_project(&[]).is_err());
    }

    #[test]
    fn an_earlier_daemons_state_is_moved_into_one_record_per_project() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let legacy = db.open_tree(LEGACY_STATE).unwrap();
        let reports = [
            report("/p", "a", DriftKind::Modified),
            report("/p", "b", DriftKind::Outdated),
            report("/q", "a", DriftKind::Missing),
        ];
        for r in &reports {
            legacy
                .insert(r.key(), serde_json::to_vec(r).unwrap())
                .unwrap();
        }
        legacy.insert("broken", &b"{"[..]).unwrap();
        let drift = db.open_tree("drift").unwrap();
        convert_legacy_state(&db, &drift).unwrap();
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == LEGACY_STATE.as_bytes()),
            "the earlier tree is dropped"
        );
        let record = |p: &str| {
            let key = [project_prefix(Path::new(p)), 0u32.to_be_bytes().to_vec()].concat();
            decode_project(&drift.get(key).unwrap().unwrap()).unwrap()
        };
        assert_eq!(record("/p"), reports[..2]);
        assert_eq!(record("/q"), reports[2..]);
        assert_eq!(drift.len(), 2);
        // Nothing to do the second time.
        convert_legacy_state(&db, &drift).unwrap();
        assert_eq!(drift.len(), 2);
    }

    #[test]
    fn an_append_larger_than_a_batch_is_kept_whole_and_in_order() {
        let d = tempfile::tempdir().unwrap();
        let n = APPEND_CHUNK as u64 * 2 + 7;
        let events: Vec<Event> = (1..=n)
            .map(|c| Event {
                cursor: c,
                ..Event::polling(&format!("/p{c}"), "a reason")
            })
            .collect();
        {
            let store = Store::open(d.path()).unwrap();
            store.append_events(&events).unwrap();
            assert_eq!(store.journal_len(), events.len());
        }
        let store = Store::open(d.path()).unwrap();
        let read = store.events_after(0, usize::MAX).unwrap();
        let projects = |e: &[Event]| e.iter().map(|e| e.project.clone()).collect::<Vec<_>>();
        assert_eq!(projects(&read), projects(&events));
        assert_eq!(read.last().unwrap().cursor, n);
        assert_eq!(store.next_cursor().unwrap(), n + 1);
        assert_eq!(
            store.events_after(APPEND_CHUNK as u64, 3).unwrap()[0].cursor,
            APPEND_CHUNK as u64 + 1
        );
    }

    #[test]
    fn a_projects_records_are_replaced_whole_and_removed_with_it() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let many: Vec<KnownDrift> = (0..100)
            .map(|i| report("/p", &format!("s{i:03}"), DriftKind::Modified))
            .collect();
        let other = report("/p2", "a", DriftKind::Outdated);
        let keys = |s: &Store| {
            let mut k: Vec<String> = s
                .known_drift()
                .unwrap()
                .into_iter()
                .flat_map(|(_, reports)| reports)
                .map(|r| r.key())
                .collect();
            k.sort();
            k
        };
        store
            .put_known_drift([
                (Path::new("/p"), many.iter().collect()),
                (Path::new("/p2"), vec![&other]),
            ])
            .unwrap();
        assert_eq!(keys(&store).len(), 101);
        // Fewer reports than records before: the records left over go.
        store
            .put_known_drift([(Path::new("/p"), many[..3].iter().collect())])
            .unwrap();
        let mut want: Vec<String> = many[..3].iter().map(KnownDrift::key).collect();
        want.push(other.key());
        want.sort();
        assert_eq!(keys(&store), want);
        // `/p` is a prefix of `/p2`'s path: removing it leaves `/p2` alone.
        store.put_known_drift([(Path::new("/p"), vec![])]).unwrap();
        assert_eq!(keys(&store), [other.key()]);
        store
            .replace_known_drift([(Path::new("/p"), many.iter().collect())])
            .unwrap();
        assert_eq!(keys(&store).len(), 100);
        let first = &store.known_drift().unwrap()[0].1[0];
        assert_eq!(first, &many[0]);
    }
}

//! The history's totals (versions, snapshots, logical bytes, blobs and their stored bytes)
//! kept as counters, so that `Status` reads them without loading every record.
//!
//! Every write of version or snapshot records goes through [`apply_counted`], which reads
//! what each record replaces before applying its batch, under the tally's lock; blob writes
//! are counted in [`super::blobs`]. [`HistoryStore::recount`] is the full count the
//! counters start from (and that tests compare them with).

use crate::model::{SnapshotId, Version, VersionId};

use super::counts::{HistoryDelta, HistoryTotals};
use super::history::{HistoryStore, snapshot_key, version_key, version_record};
use super::{Handles, StoreError};

/// The records one batch of the history tree writes or removes.
#[derive(Debug, Default)]
pub(super) struct Touched<'a> {
    pub(super) versions_written: &'a [Version],
    pub(super) versions_removed: &'a [VersionId],
    pub(super) snapshots_written: &'a [SnapshotId],
    pub(super) snapshots_removed: &'a [SnapshotId],
}

impl<'a> Touched<'a> {
    /// A batch that writes `versions` and nothing else.
    pub(super) fn wrote(versions: &'a [Version]) -> Self {
        Touched {
            versions_written: versions,
            ..Touched::default()
        }
    }
}

/// The logical bytes of the stored version `id`, if there is one.
fn stored_logical(h: &Handles, id: VersionId) -> Result<Option<u64>, StoreError> {
    let k = version_key(id);
    h.history
        .get(&k)?
        .map(|v| version_record(h, &k, &v).map(|v| v.logical_bytes()))
        .transpose()
}

/// Applies `batch` to the history tree and counts what it `touched` in the totals, then
/// notes the versions it wrote as their locations' newest.
///
/// # Errors
/// sled failed, or a record being replaced does not decode.
pub(super) fn apply_counted(
    h: &Handles,
    batch: sled::Batch,
    touched: &Touched<'_>,
) -> Result<(), StoreError> {
    h.counts.history.write(|| -> Result<_, StoreError> {
        let mut d = HistoryDelta::default();
        for v in touched.versions_written {
            d.version_written(stored_logical(h, v.id)?, v.logical_bytes());
        }
        for id in touched.versions_removed {
            d.version_removed(stored_logical(h, *id)?);
        }
        for s in touched.snapshots_written {
            if !h.history.contains_key(snapshot_key(*s))? {
                d.snapshots += 1;
            }
        }
        for s in touched.snapshots_removed {
            if h.history.contains_key(snapshot_key(*s))? {
                d.snapshots -= 1;
            }
        }
        h.history.apply_batch(batch)?;
        Ok(((), d))
    })?;
    h.newest.note(touched.versions_written);
    Ok(())
}

impl HistoryStore {
    /// The history's totals: counters, after one full count the first time.
    ///
    /// # Errors
    /// sled failed, or a record does not decode (during the first count).
    pub fn totals(&self) -> Result<HistoryTotals, StoreError> {
        self.store.with(|h| h.counts.history.get_or(|| count(h)))
    }

    /// The history's totals counted from every record and blob (what the counters must
    /// agree with).
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn recount(&self) -> Result<HistoryTotals, StoreError> {
        self.store.with(count)
    }
}

fn count(h: &Handles) -> Result<HistoryTotals, StoreError> {
    let mut t = HistoryTotals::default();
    for kv in h.history.scan_prefix([b'v']) {
        let (k, v) = kv?;
        t.versions += 1;
        t.logical_bytes += version_record(h, &k, &v)?.logical_bytes();
    }
    t.snapshots = h.history.scan_prefix([b's']).count() as u64;
    for v in h.blobs.iter().values() {
        t.blobs += 1;
        t.blob_bytes += v?.len() as u64;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::config::Retention;
    use crate::history::History;
    use crate::model::{Location, Origin, SnapshotTarget};
    use crate::store::Store;

    /// A collection `c` of one skill `a` in SkillMeat home `home`; returns the skill's
    /// folder.
    fn collection(home: &std::path::Path) -> std::path::PathBuf {
        let dir = home.join("collections/c");
        std::fs::create_dir_all(dir.join("skills/a")).unwrap();
        std::fs::write(
            dir.join("collection.toml"),
            "[collection]\nname = \"c\"\nversion = \"1.0.0\"\ncreated = \"x\"\nupdated = \"x\"\n\n\
             [[artifacts]]\nname = \"a\"\ntype = \"skill\"\npath = \"skills/a\"\norigin = \"local\"\nadded = \"x\"\n",
        )
        .unwrap();
        dir.join("skills/a")
    }

    fn agree(store: &Store, what: &str) {
        let h = store.history().unwrap();
        assert_eq!(h.totals().unwrap(), h.recount().unwrap(), "after {what}");
    }

    #[test]
    fn counters_agree_with_a_recount_after_every_kind_of_write() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let art = collection(&home);
        let store = Store::open(&d.path().join("store")).unwrap();
        let h = History::open(&store, home.clone()).unwrap();
        let loc = Location::collection("c", "skills/a");
        // Known (zero) from here on: every later figure is the counters'.
        assert_eq!(store.history().unwrap().totals().unwrap().versions, 0);

        let mut ids = Vec::new();
        for i in 0..6 {
            std::fs::write(art.join("SKILL.md"), format!("edit {i}\n").repeat(i + 1)).unwrap();
            std::fs::write(art.join(format!("ref{}.md", i % 2)), format!("r{i}")).unwrap();
            ids.extend(h.capture(&loc, &art, Origin::Manual, None).unwrap());
            agree(&store, "a capture");
        }
        // The same content again: no new version, nothing counted.
        assert!(
            h.capture(&loc, &art, Origin::Manual, None)
                .unwrap()
                .is_none()
        );
        agree(&store, "a capture of unchanged content");
        let target = SnapshotTarget::Collection("c".into());
        for i in 0..3 {
            std::fs::write(art.join("SKILL.md"), format!("snapshot {i}\n")).unwrap();
            h.snapshot(&target, Origin::Manual, None).unwrap();
            agree(&store, "a snapshot");
        }
        h.tag(ids[1], "keep").unwrap();
        h.tag(ids[2], "keep").unwrap();
        agree(&store, "tags (versions rewritten)");
        let t = store.history().unwrap().totals().unwrap();
        assert!(t.versions >= 9, "{t:?}");
        assert_eq!(t.snapshots, 3);
        assert!(t.blobs > 0 && t.blob_bytes > 0 && t.logical_bytes > 0);

        // Retention a year on: all but the newest of each group go, blobs with them.
        let later = crate::history::time::now_ms() + 365 * 86_400_000;
        let report = h
            .prune(later, &Retention::default(), &HashSet::new())
            .unwrap();
        assert!(report.versions_removed > 0 && report.blobs_removed > 0);
        agree(&store, "retention");
        let after = store.history().unwrap().totals().unwrap();
        assert!(after.versions < t.versions && after.snapshots < t.snapshots);
        assert!(after.blobs < t.blobs);

        // A salvage of this store into a fresh one whose totals were already asked.
        let copy = d.path().join("copy");
        store.close().unwrap();
        std::fs::create_dir_all(&copy).unwrap();
        for e in std::fs::read_dir(d.path().join("store")).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
            }
        }
        let fresh = Store::open(&d.path().join("fresh")).unwrap();
        assert_eq!(fresh.history().unwrap().totals().unwrap().versions, 0);
        let salvaged = fresh
            .with(|hs| super::super::salvage::salvage_into(&fresh, hs, &copy))
            .unwrap();
        assert!(salvaged.versions > 0, "{}", salvaged.summary());
        agree(&fresh, "a salvage");
        assert_eq!(
            fresh.history().unwrap().totals().unwrap().versions,
            after.versions
        );
    }
}

//! The newest version of each location, remembered for one open database.
//!
//! Recording a version needs its parent, the newest version of its location (latest time,
//! then highest id). Finding it by reading every version of the location made each capture
//! cost as much as the location's whole history, and pulled that history through sled's
//! page cache at every edit. The memo answers with one read once a location has been
//! scanned. It belongs to one open database ([`super::Handles`]): a reopened or repaired
//! store starts empty.
//!
//! It stays right because every write of version records notes what it wrote after the
//! batch is applied ([`Newest::note`], from [`super::history_totals::apply_counted`]),
//! every removal forgets the locations it touched
//! ([`Newest::forget`]), and a scan that fills an entry runs under the memo's lock, so a
//! write cannot slip between the scan and the entry. A remembered id whose record is gone
//! or moved is scanned again. The memo holds at most [`MAX_LOCATIONS`] entries (one per
//! artifact copy); past that it starts afresh.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::model::Version;

/// Most locations remembered at once.
pub(super) const MAX_LOCATIONS: usize = 4096;

/// Location key → (time, id) of its newest version.
#[derive(Debug, Default)]
pub(super) struct Newest {
    map: Mutex<HashMap<Vec<u8>, (i64, u64)>>,
}

impl Newest {
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, (i64, u64)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes note of versions just written: each becomes its location's newest when it is
    /// newer than the one remembered. A location not remembered stays so (its next lookup
    /// scans).
    pub(super) fn note<'a>(&self, versions: impl IntoIterator<Item = &'a Version>) {
        let mut map = self.lock();
        for v in versions {
            if let Some(known) = map.get_mut(&super::history::location_key(&v.location)) {
                *known = (*known).max((v.time_ms, v.id.0));
            }
        }
    }

    /// Forgets the locations of versions just removed or rewritten.
    pub(super) fn forget<'a>(&self, versions: impl IntoIterator<Item = &'a Version>) {
        let mut map = self.lock();
        for v in versions {
            map.remove(&super::history::location_key(&v.location));
        }
    }

    /// Forgets everything (after records were written wholesale, by a salvage).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

/// Remembers `newest` for `key` in a locked memo, keeping it within its bound.
pub(super) fn remember(
    map: &mut HashMap<Vec<u8>, (i64, u64)>,
    key: Vec<u8>,
    newest: Option<&Version>,
) {
    let Some(v) = newest else {
        map.remove(&key);
        return;
    };
    if map.len() >= MAX_LOCATIONS && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, (v.time_ms, v.id.0));
}

impl super::history::HistoryStore {
    /// The newest version of `loc` (latest time, then highest id), if it has any.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn newest_at(
        &self,
        loc: &crate::model::Location,
    ) -> Result<Option<Version>, super::StoreError> {
        let key = super::history::location_key(loc);
        self.store.with(|h| {
            let mut map = h.newest.lock();
            if let Some(&(_, id)) = map.get(&key)
                && let Some(v) = self.version(crate::model::VersionId(id))?
                && v.location == *loc
            {
                return Ok(Some(v));
            }
            let newest = self
                .versions_at(loc)?
                .into_iter()
                .max_by_key(|v| (v.time_ms, v.id));
            remember(&mut map, key, newest.as_ref());
            Ok(newest)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Location, Origin, VersionId};
    use crate::store::Store;

    use super::Version;

    fn version(id: u64, loc: &Location, time_ms: i64) -> Version {
        Version {
            id: VersionId(id),
            location: loc.clone(),
            content_hash: format!("h{id}"),
            single_file: true,
            entries: Vec::new(),
            parents: Vec::new(),
            time_ms,
            origin: Origin::Watch,
            message: None,
            tags: Vec::new(),
        }
    }

    #[test]
    fn the_newest_follows_every_write_and_removal() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let h = store.history().unwrap();
        let a = Location::collection("default", "skills/a");
        let b = Location::collection("default", "skills/b");
        let newest = |loc: &Location| h.newest_at(loc).unwrap().map(|v| v.id.0);
        assert_eq!(newest(&a), None);

        h.put_versions(&[version(1, &a, 10), version(2, &b, 10)])
            .unwrap();
        assert_eq!(newest(&a), Some(1));
        h.put_versions(&[version(3, &a, 20)]).unwrap();
        assert_eq!(newest(&a), Some(3), "a write after the scan is seen");
        // An imported version: a higher id, an older time.
        h.put_versions(&[version(4, &a, 15)]).unwrap();
        assert_eq!(newest(&a), Some(3), "time first, then id");
        h.put_versions(&[version(5, &a, 20)]).unwrap();
        assert_eq!(newest(&a), Some(5), "the same time: the higher id");
        assert_eq!(newest(&b), Some(2));

        // Retention removes the newest (it never does in practice; the memo must not care).
        h.remove(&[], &[version(5, &a, 20), version(3, &a, 20)], &[])
            .unwrap();
        assert_eq!(newest(&a), Some(4));
        // A record that vanished behind the memo's back (a repair) is scanned again.
        store
            .with(|t| {
                Ok(t.history
                    .remove(super::super::history::key(b'v', &[&4u64.to_be_bytes()]))?)
            })
            .unwrap();
        assert_eq!(newest(&a), Some(1));
    }

    #[test]
    fn the_memo_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let h = store.history().unwrap();
        let n = super::MAX_LOCATIONS as u64 + 10;
        let versions: Vec<Version> = (1..=n)
            .map(|i| version(i, &Location::collection("c", &format!("skills/s{i}")), 1))
            .collect();
        h.put_versions(&versions).unwrap();
        for v in &versions {
            assert_eq!(h.newest_at(&v.location).unwrap().map(|v| v.id), Some(v.id));
        }
        let remembered = store.with(|t| Ok(t.newest.lock().len())).unwrap();
        assert!(remembered <= super::MAX_LOCATIONS, "{remembered}");
        assert!(remembered > 0);
    }
}

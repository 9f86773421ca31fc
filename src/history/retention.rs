//! Staggered retention: everything for the last hour, then one per hour for a day, one per
//! day for a month, one per week after that (all configurable).
//!
//! [`select`] is a pure function over plain items; [`History::prune`] applies it to
//! snapshots (per target) and then to versions (per location), never removing a version
//! that a kept snapshot names, that is tagged, that a deployment still records as its
//! `content_hash`, or that is the newest of its artifact. Blobs no version names any
//! more are then collected.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::config::Retention;

use super::content::parse_sha;
use super::{History, HistoryError};
use crate::model::{SnapshotId, Version, VersionId};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One thing retention decides about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<G> {
    pub id: u64,
    /// Items are thinned within their group (an artifact, or a snapshot target).
    pub group: G,
    pub time_ms: i64,
    /// Kept whatever its age.
    pub pinned: bool,
}

/// The ids to remove. Within each group the newest item is always kept; an item younger
/// than `keep_all` is kept; older ones are kept if they are the newest of their hour, day
/// or week bucket (buckets are fixed in time, so repeated runs agree).
pub fn select<G: Ord + Clone>(items: &[Item<G>], now_ms: i64, policy: &Retention) -> BTreeSet<u64> {
    let mut groups: BTreeMap<G, Vec<&Item<G>>> = BTreeMap::new();
    for i in items {
        groups.entry(i.group.clone()).or_default().push(i);
    }
    let keep_all = policy.keep_all_secs as i64 * 1000;
    let hourly = policy.hourly_secs as i64 * 1000;
    let daily = policy.daily_secs as i64 * 1000;
    let mut remove = BTreeSet::new();
    for (_, mut list) in groups {
        list.sort_by_key(|i| std::cmp::Reverse((i.time_ms, i.id)));
        let mut seen = HashSet::new();
        for (n, i) in list.into_iter().enumerate() {
            let age = now_ms - i.time_ms;
            let bucket = if age < hourly {
                (0u8, i.time_ms.div_euclid(HOUR_MS))
            } else if age < daily {
                (1, i.time_ms.div_euclid(DAY_MS))
            } else {
                (2, i.time_ms.div_euclid(7 * DAY_MS))
            };
            // Every kept item occupies its bucket, so older ones in it go.
            let first_in_bucket = seen.insert(bucket);
            if !(n == 0 || age < keep_all || first_in_bucket || i.pinned) {
                remove.insert(i.id);
            }
        }
    }
    remove
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub snapshots_removed: u64,
    pub versions_removed: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
}

impl History {
    /// Thins history by `policy` as of `now_ms`. `protected_hashes` are the content hashes
    /// deployments still record; versions with those hashes stay.
    ///
    /// # Errors
    /// The store failed (what was removed before the failure stays removed; no version
    /// ever names a missing blob, since blobs go last).
    pub fn prune(
        &self,
        now_ms: i64,
        policy: &Retention,
        protected_hashes: &HashSet<String>,
    ) -> Result<PruneReport, HistoryError> {
        let _w = self.lock();
        let store = self.store();
        let snapshots = store.all_snapshots()?;
        let snap_items: Vec<Item<_>> = snapshots
            .iter()
            .map(|s| Item {
                id: s.id.0,
                group: s.target.clone(),
                time_ms: s.time_ms,
                pinned: false,
            })
            .collect();
        let drop_snaps = select(&snap_items, now_ms, policy);
        let in_kept_snapshot: HashSet<VersionId> = snapshots
            .iter()
            .filter(|s| !drop_snaps.contains(&s.id.0))
            .flat_map(|s| s.members.iter().copied())
            .collect();

        let versions = store.all_versions()?;
        let items: Vec<Item<_>> = versions
            .iter()
            .map(|v| Item {
                id: v.id.0,
                group: v.location.clone(),
                time_ms: v.time_ms,
                pinned: !v.tags.is_empty()
                    || protected_hashes.contains(&v.content_hash)
                    || in_kept_snapshot.contains(&v.id),
            })
            .collect();
        let drop_versions = select(&items, now_ms, policy);

        // Children of removed versions point at their nearest kept ancestors.
        let parents_of: HashMap<VersionId, &[VersionId]> = versions
            .iter()
            .map(|v| (v.id, v.parents.as_slice()))
            .collect();
        let kept_ancestors = |parents: &[VersionId]| {
            let mut out: Vec<VersionId> = Vec::new();
            let mut todo: Vec<VersionId> = parents.iter().rev().copied().collect();
            let mut seen = HashSet::new();
            while let Some(id) = todo.pop() {
                if !seen.insert(id) {
                    continue;
                }
                if drop_versions.contains(&id.0) {
                    let up = parents_of.get(&id).copied().unwrap_or_default();
                    todo.extend(up.iter().rev().copied());
                } else if !out.contains(&id) {
                    out.push(id);
                }
            }
            out
        };
        let mut removed = Vec::new();
        let mut relinked = Vec::new();
        let mut kept = Vec::new();
        for v in &versions {
            if drop_versions.contains(&v.id.0) {
                removed.push(v.clone());
            } else {
                let p = kept_ancestors(&v.parents);
                if p != v.parents {
                    let mut v2 = v.clone();
                    v2.parents = p;
                    relinked.push(v2);
                }
                kept.push(v.clone());
            }
        }
        let snap_ids: Vec<SnapshotId> = drop_snaps.iter().map(|&i| SnapshotId(i)).collect();
        store.remove(&snap_ids, &removed, &relinked)?;
        store.flush()?;

        // The blobs kept versions name, and the bases their deltas need.
        let mut referenced: HashSet<[u8; 32]> = HashSet::new();
        let mut todo: Vec<[u8; 32]> = kept
            .iter()
            .flat_map(|v: &Version| v.entries.iter().filter_map(|e| parse_sha(&e.blob)))
            .collect();
        while let Some(sha) = todo.pop() {
            if referenced.insert(sha)
                && let Some(base) = store.blob_base(&sha)?
            {
                todo.push(base);
            }
        }
        let mut report = PruneReport {
            snapshots_removed: snap_ids.len() as u64,
            versions_removed: removed.len() as u64,
            ..Default::default()
        };
        for sha in store.blob_ids()? {
            if !referenced.contains(&sha) {
                report.bytes_freed += store.remove_blob(&sha)?;
                report.blobs_removed += 1;
            }
        }
        store.flush()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Location, Origin};
    use crate::store::Store;

    fn item(id: u64, group: &'static str, age_ms: i64, pinned: bool) -> Item<&'static str> {
        Item {
            id,
            group,
            time_ms: 1_000 * DAY_MS - age_ms,
            pinned,
        }
    }

    #[test]
    fn tiers_thin_older_items() {
        let now = 1_000 * DAY_MS;
        let p = Retention::default();
        let items = vec![
            item(1, "a", 10 * 60_000, false),        // 10 min: kept (last hour)
            item(2, "a", 20 * 60_000, false),        // kept (last hour)
            item(3, "a", 2 * HOUR_MS + 1000, false), // 2h bucket
            item(4, "a", 2 * HOUR_MS + 2000, false), // same hour bucket, older: removed
            item(5, "a", 3 * DAY_MS + 1000, false),  // daily
            item(6, "a", 3 * DAY_MS + 2000, false),  // same day: removed
            item(7, "a", 3 * DAY_MS + 3000, true),   // same day but pinned
            item(8, "a", 100 * DAY_MS, false),       // weekly
            item(9, "a", 100 * DAY_MS + 1, false),   // same week: removed
            item(10, "b", 400 * DAY_MS, false),      // newest of its group: kept
        ];
        let removed = select(&items, now, &p);
        assert_eq!(removed, BTreeSet::from([4, 6, 9]));
    }

    /// One version per text at `loc`, written directly with old times (all within one
    /// old day: only one would survive by age alone).
    fn versions(
        h: &History,
        dir: &std::path::Path,
        loc: &Location,
        texts: &[String],
    ) -> Vec<VersionId> {
        let f = dir.join("a.md");
        let mut ids = Vec::new();
        let mut previous: Option<crate::model::Version> = None;
        for (n, text) in texts.iter().enumerate() {
            std::fs::write(&f, text).unwrap();
            let c = super::super::content::Content::read(&f, loc.variant()).unwrap();
            let hash = c.hash();
            let v = h
                .new_version(
                    loc,
                    &c,
                    hash,
                    ids.last().copied().into_iter().collect(),
                    previous.as_ref(),
                    now() - 40 * DAY_MS + n as i64 * 1000,
                    Origin::Watch,
                    None,
                )
                .unwrap();
            h.store().put_versions(std::slice::from_ref(&v)).unwrap();
            ids.push(v.id);
            previous = Some(v);
        }
        ids
    }

    /// Prunes the versions of five texts (the first deployed, the second tagged).
    fn prune_five(
        texts: [&str; 5],
    ) -> (
        History,
        Vec<VersionId>,
        super::PruneReport,
        tempfile::TempDir,
    ) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("s")).unwrap();
        let h = History::open(&store, d.path().join("home")).unwrap();
        let loc = Location::collection("c", "agents/a.md");
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let ids = versions(&h, d.path(), &loc, &texts);
        h.tag(ids[1], "keep-me").unwrap();
        let deployed = h.version(ids[0]).unwrap().content_hash;
        let before = h.stats().unwrap();
        assert_eq!((before.versions, before.blobs), (5, 5));
        let report = h
            .prune(now(), &Retention::default(), &HashSet::from([deployed]))
            .unwrap();
        assert_eq!(report.versions_removed, 2);
        let left: Vec<VersionId> = h.versions_of(&loc).unwrap().iter().map(|v| v.id).collect();
        assert_eq!(left, [ids[4], ids[1], ids[0]]);
        // The newest now descends from the tagged one.
        assert_eq!(h.version(ids[4]).unwrap().parents, vec![ids[1]]);
        assert!(h.check().unwrap().is_empty());
        (h, ids, report, d)
    }

    #[test]
    fn prune_keeps_what_it_must_and_frees_blobs() {
        let (h, _, report, _d) = prune_five(["deployed", "tagged", "plain-1", "plain-2", "newest"]);
        assert_eq!(report.blobs_removed, 2);
        assert!(report.bytes_freed > 0);
        let after = h.stats().unwrap();
        assert_eq!((after.versions, after.blobs), (3, 3));
    }

    #[test]
    fn prune_keeps_the_bases_of_kept_deltas() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let text: String = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let texts: Vec<String> = (0..5).map(|n| format!("{text}edit {n}\n")).collect();
        let (h, ids, report, _d) = prune_five(std::array::from_fn(|n| texts[n].as_str()));
        assert!(h.store().blob_totals().unwrap().deltas >= 4);
        // The newest is a delta on the removed ones' contents: they stay as its bases.
        assert_eq!(report.blobs_removed, 0);
        let newest = h.content_of(&h.version(ids[4]).unwrap()).unwrap();
        assert_eq!(newest.files[0].bytes, texts[4].as_bytes());
    }

    fn now() -> i64 {
        crate::history::time::now_ms()
    }
}

//! Where content came from: the [`History`] side of the version graph. Builds the
//! [`Graph`], finds the version a location holds now, and records the version an operation
//! made together with the versions it was made from (a pull, a push, a merge), never
//! making a cycle. Called by [`crate::operations`] and the RPC layer's log.

use std::path::Path;

use crate::model::{Location, Origin, Version, VersionId};

use super::graph::Graph;
use super::{History, HistoryError, Pending, Prepared};

impl History {
    /// Where content first seen at `loc` with SkillMeat hash `hash` came from: the newest
    /// version with that hash at another location, preferring a collection's (a project's
    /// first version is a branch of the collection version it was deployed from).
    pub(crate) fn fork_point(
        &self,
        loc: &Location,
        hash: &str,
    ) -> Result<Option<VersionId>, HistoryError> {
        self.fork_point_in(loc, hash, &Pending::default())
    }

    /// As [`History::fork_point`], among the versions recorded and those `pending` in a
    /// batch.
    pub(super) fn fork_point_in(
        &self,
        loc: &Location,
        hash: &str,
        pending: &Pending,
    ) -> Result<Option<VersionId>, HistoryError> {
        let stored = pending.stored_with_hash(hash, || {
            let mut out = Vec::new();
            for id in self.store.versions_with_hash(hash, None)? {
                if let Some(v) = self.store.version(id)? {
                    out.push((rank(&v), v.location));
                }
            }
            Ok::<_, HistoryError>(out)
        })?;
        let in_batch = pending.with_hash(hash).map(|v| (rank(v), &v.location));
        let best = stored
            .iter()
            .map(|(r, l)| (*r, l))
            .chain(in_batch)
            .filter(|(_, l)| *l != loc)
            .map(|(r, _)| r)
            .max();
        Ok(best.map(|b| b.2))
    }

    /// The graph of every version in the store.
    ///
    /// # Errors
    /// The store failed.
    pub fn graph(&self) -> Result<Graph, HistoryError> {
        Ok(Graph::new(&self.store.all_versions()?))
    }

    /// Every version linked by parents to a version of one of `locations` (the collection's
    /// and every deployment's line of one artifact, with whatever they were merged with),
    /// children before parents, newest first.
    ///
    /// # Errors
    /// The store failed.
    pub fn lineage(&self, locations: &[Location]) -> Result<Vec<Version>, HistoryError> {
        let all = self.store.all_versions()?;
        let graph = Graph::new(&all);
        let start: Vec<VersionId> = all
            .iter()
            .filter(|v| locations.contains(&v.location))
            .map(|v| v.id)
            .collect();
        let order = graph.newest_first(&graph.component(&start));
        let mut by_id: std::collections::HashMap<VersionId, Version> =
            all.into_iter().map(|v| (v.id, v)).collect();
        Ok(order.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// The version `loc` holds now (the content at `path`), recorded first if it is new;
    /// `None` when there is nothing at `path`.
    ///
    /// # Errors
    /// The content cannot be read; the store failed.
    pub fn head(&self, loc: &Location, path: &Path) -> Result<Option<Version>, HistoryError> {
        let _w = self.lock();
        match self.prepare(loc, path, Origin::Watch, None, None)? {
            Prepared::Same(id) => Ok(Some(self.version(id)?)),
            Prepared::New(v) => {
                self.store.flush()?;
                self.store.put_versions(std::slice::from_ref(&v))?;
                self.store.flush()?;
                Ok(Some(*v))
            }
            Prepared::Nothing => Ok(None),
        }
    }

    /// Records the content an operation just wrote at `path` as the version of `loc` made
    /// from `from` (besides the previous version at `loc`). When that content is already the
    /// newest version (the watcher was quicker, or nothing changed), the links are added to
    /// it, and a watcher's version made at or after `since_ms` takes `origin`. A link that
    /// would make a cycle is left out. Returns the version.
    ///
    /// # Errors
    /// The content cannot be read; the store failed.
    pub fn record_made(
        &self,
        loc: &Location,
        path: &Path,
        origin: Origin,
        from: &[VersionId],
        message: Option<&str>,
        since_ms: i64,
    ) -> Result<Option<VersionId>, HistoryError> {
        let graph = self.graph()?;
        let _w = self.lock();
        let mut v = match self.prepare(loc, path, origin, message, None)? {
            Prepared::New(v) => *v,
            Prepared::Same(id) => {
                let mut v = self.version(id)?;
                if v.origin == Origin::Watch && v.time_ms >= since_ms {
                    v.origin = origin;
                    if v.message.is_none() {
                        v.message = message.map(str::to_string);
                    }
                }
                v
            }
            Prepared::Nothing => return Ok(None),
        };
        for &f in from {
            if !graph.contains(v.id) || !graph.is_ancestor(v.id, f) {
                v.add_parent(f);
            }
        }
        self.store.flush()?;
        self.store.put_versions(std::slice::from_ref(&v))?;
        self.store.flush()?;
        Ok(Some(v.id))
    }
}

/// How a version ranks as a fork point: a collection's first, then the newest.
fn rank(v: &Version) -> (bool, i64, VersionId) {
    (
        matches!(v.location.scope, crate::model::Scope::Collection(_)),
        v.time_ms,
        v.id,
    )
}

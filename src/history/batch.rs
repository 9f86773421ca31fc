//! Recording many captures durably at once: the live worker's history work (changed
//! content, first-seen content, deployment bases) and the single captures of
//! [`History::capture`] and [`History::capture_base`] all go through a [`Batch`].
//!
//! A batch reads each capture's content and writes its blobs as it is added; its version
//! records wait in memory. [`Batch::commit`] flushes the blobs, writes every record in one
//! sled batch and flushes again: two syncs however many versions, and no record names a
//! blob that may be lost. A batch dropped without commit leaves only unreferenced blobs,
//! which retention collects.
//!
//! Captures of one batch see each other's versions: a base recorded before a change at
//! the same location is the change's parent, and a collection version recorded first is
//! the fork point of a deployment's first version and the source of an adopted base.
//!
//! A base whose copy has changed by the time it is recorded (bases are recorded after the
//! drift answer, between batches) is *adopted*: the same content is usually in history
//! already, at the collection it was deployed from, and the base version is made from that
//! version's files (blobs are shared by hash; nothing is read from disk), with it as its
//! parent, as a first version forked from the collection would have.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::MutexGuard;

use crate::model::{Location, Origin, Version, VersionId};

use super::{History, HistoryError, Prepared, time};

/// One piece of content to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// The content at `path` as a new version of `location`, unless it equals the
    /// location's newest version. With `expect` (the content hash the watcher settled
    /// on), only that content: a file that no longer holds it is being saved again, and
    /// whatever it holds mid-save is never a version; that save's own batch records what
    /// it settles on.
    Version {
        location: Location,
        path: PathBuf,
        origin: Origin,
        message: Option<String>,
        expect: Option<String>,
    },
    /// A deployment's base (origin `deploy`): the content at `path` when it still hashes
    /// to `content_hash` (else adopted from a version with that hash elsewhere), unless a
    /// version of `location` has that hash already.
    Base {
        location: Location,
        path: PathBuf,
        content_hash: String,
    },
}

impl Capture {
    /// Where the content is recorded.
    pub fn location(&self) -> &Location {
        match self {
            Capture::Version { location, .. } | Capture::Base { location, .. } => location,
        }
    }
}

/// Captures being recorded together; see the module doc. Holds the history's write lock.
pub struct Batch<'h> {
    history: &'h History,
    _write: MutexGuard<'h, ()>,
    pending: Pending,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("pending", &self.pending.versions.len())
            .finish_non_exhaustive()
    }
}

impl History {
    /// Starts a batch of captures (other writers wait until it is committed or dropped).
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            history: self,
            _write: self.lock(),
            pending: Pending::default(),
        }
    }

    /// Records the content of the artifact at `loc` (read from `path`) as a new version,
    /// unless it equals the artifact's newest version. Returns the new version's id.
    ///
    /// # Errors
    /// The artifact cannot be read; the store failed.
    pub fn capture(
        &self,
        loc: &Location,
        path: &Path,
        origin: Origin,
        message: Option<&str>,
    ) -> Result<Option<VersionId>, HistoryError> {
        self.capture_one(&Capture::Version {
            location: loc.clone(),
            path: path.to_path_buf(),
            origin,
            message: message.map(str::to_string),
            expect: None,
        })
    }

    /// Records the content at `path` as a deployment's base (origin `deploy`) when it still
    /// hashes to `content_hash` and no version of `loc` has that hash yet (see
    /// [`Capture::Base`]).
    ///
    /// # Errors
    /// The store failed; the artifact cannot be read.
    pub fn capture_base(
        &self,
        loc: &Location,
        path: &Path,
        content_hash: &str,
    ) -> Result<Option<VersionId>, HistoryError> {
        self.capture_one(&Capture::Base {
            location: loc.clone(),
            path: path.to_path_buf(),
            content_hash: content_hash.to_string(),
        })
    }

    /// One capture, in a batch of its own.
    fn capture_one(&self, capture: &Capture) -> Result<Option<VersionId>, HistoryError> {
        let mut batch = self.batch();
        let id = batch.add(capture)?;
        batch.commit()?;
        Ok(id)
    }
}

impl Batch<'_> {
    /// Reads `capture`'s content and, when it is new, writes its blobs and keeps its
    /// version for [`Batch::commit`]. Returns the new version's id.
    ///
    /// # Errors
    /// The content cannot be read; the store failed. The batch stays usable.
    pub fn add(&mut self, capture: &Capture) -> Result<Option<VersionId>, HistoryError> {
        let h = self.history;
        let p = &self.pending;
        let new = match capture {
            Capture::Version {
                location,
                path,
                origin,
                message,
                expect,
            } => match h.prepare_in(
                location,
                path,
                *origin,
                message.as_deref(),
                expect.as_deref(),
                p,
            )? {
                Prepared::New(v) => Some(*v),
                Prepared::Same(_) | Prepared::Nothing => None,
            },
            Capture::Base {
                location,
                path,
                content_hash,
            } => {
                let recorded = !h
                    .store
                    .versions_with_hash(content_hash, Some(location))?
                    .is_empty()
                    || p.with_hash(content_hash).any(|v| v.location == *location);
                if recorded {
                    None
                } else {
                    match h.prepare_in(
                        location,
                        path,
                        Origin::Deploy,
                        None,
                        Some(content_hash),
                        p,
                    )? {
                        Prepared::New(v) => Some(*v),
                        Prepared::Same(_) => None,
                        // The copy changed since it hashed to the record.
                        Prepared::Nothing => self.adopt(location, content_hash)?,
                    }
                }
            }
        };
        Ok(new.map(|v| {
            let id = v.id;
            self.pending.push(v);
            id
        }))
    }

    /// The versions waiting for [`Batch::commit`].
    pub fn len(&self) -> usize {
        self.pending.versions.len()
    }

    /// Whether no version waits for [`Batch::commit`].
    pub fn is_empty(&self) -> bool {
        self.pending.versions.is_empty()
    }

    /// Records the batch's versions durably: blobs flushed first, then every record in
    /// one sled batch, flushed. Returns how many were recorded.
    ///
    /// # Errors
    /// The store failed: none of the batch's versions is recorded.
    pub fn commit(self) -> Result<usize, HistoryError> {
        let versions = self.pending.versions;
        if versions.is_empty() {
            return Ok(0);
        }
        let store = &self.history.store;
        store.flush()?;
        store.put_versions(&versions)?;
        store.flush()?;
        Ok(versions.len())
    }

    /// A base of `loc` made from a version with `content_hash` elsewhere (a collection's
    /// first, then the newest); `None` when history holds none.
    fn adopt(&self, loc: &Location, content_hash: &str) -> Result<Option<Version>, HistoryError> {
        let h = self.history;
        let Some(from) = h.fork_point_in(loc, content_hash, &self.pending)? else {
            return Ok(None);
        };
        let source = match self.pending.with_hash(content_hash).find(|v| v.id == from) {
            Some(v) => v.clone(),
            None => h.version(from)?,
        };
        let mut v = source.clone();
        v.id = h.store.next_version_id()?;
        v.location = loc.clone();
        v.parents = vec![source.id];
        v.time_ms = time::now_ms();
        v.origin = Origin::Deploy;
        v.message = None;
        v.tags = Vec::new();
        tracing::debug!(location = %loc, from = %source.id, "deployment base recorded from an earlier version");
        Ok(Some(v))
    }
}

/// Versions prepared by a batch and not yet written: what its later captures must see
/// besides the store. Indexed by location and by hash, and the stored versions with a hash
/// are read once per batch (a deployment's first version or base looks them up to find
/// the version it forks from; many artifacts may share one content).
#[derive(Debug, Default)]
pub(super) struct Pending {
    versions: Vec<Version>,
    /// Location → index of its newest pending version.
    newest: HashMap<Location, usize>,
    /// Hash → indexes of the pending versions with it.
    by_hash: HashMap<String, Vec<usize>>,
    /// Hash → the stored versions with it, as fork point candidates.
    stored: RefCell<HashMap<String, Rc<[Candidate]>>>,
}

/// A version that content first seen elsewhere may fork from: its rank (a collection's
/// first, then the newest) and its location.
pub(super) type Candidate = ((bool, i64, VersionId), Location);

impl Pending {
    fn push(&mut self, v: Version) {
        let i = self.versions.len();
        let newer = self
            .newest
            .get(&v.location)
            .is_none_or(|&n| (self.versions[n].time_ms, self.versions[n].id) < (v.time_ms, v.id));
        if newer {
            self.newest.insert(v.location.clone(), i);
        }
        self.by_hash
            .entry(v.content_hash.clone())
            .or_default()
            .push(i);
        self.versions.push(v);
    }

    /// The newest pending version of `loc`.
    pub(super) fn newest_at(&self, loc: &Location) -> Option<&Version> {
        self.newest.get(loc).map(|&i| &self.versions[i])
    }

    /// The pending versions whose SkillMeat hash is `hash`.
    pub(super) fn with_hash<'a>(&'a self, hash: &str) -> impl Iterator<Item = &'a Version> {
        self.by_hash
            .get(hash)
            .into_iter()
            .flatten()
            .map(|&i| &self.versions[i])
    }

    /// The stored versions with `hash` as fork point candidates, read by `load` the first
    /// time the batch asks.
    pub(super) fn stored_with_hash<E>(
        &self,
        hash: &str,
        load: impl FnOnce() -> Result<Vec<Candidate>, E>,
    ) -> Result<Rc<[Candidate]>, E> {
        if let Some(c) = self.stored.borrow().get(hash) {
            return Ok(Rc::clone(c));
        }
        let c: Rc<[Candidate]> = load()?.into();
        self.stored
            .borrow_mut()
            .insert(hash.to_string(), Rc::clone(&c));
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Variant, content_hash};
    use crate::history::tests::setup;

    /// A collection base, a deployment base adopted from it (the copy changed first) and
    /// the change itself, in one batch: each sees the ones before it.
    #[test]
    fn captures_of_one_batch_see_each_other() {
        let (d, h) = setup();
        let coll = d.path().join("coll.md");
        let copy = d.path().join("copy.md");
        std::fs::write(&coll, "deployed\n").unwrap();
        std::fs::write(&copy, "edited\n").unwrap();
        let deployed = content_hash(&coll, Variant::DeployedCopy).unwrap();
        let c_loc = Location::collection("default", "commands/x.md");
        let p_loc = Location::project(d.path(), ".claude", "commands/x.md");
        let mut batch = h.batch();
        let c = batch
            .add(&Capture::Base {
                location: c_loc.clone(),
                path: coll.clone(),
                content_hash: deployed.clone(),
            })
            .unwrap()
            .unwrap();
        let base = Capture::Base {
            location: p_loc.clone(),
            path: copy.clone(),
            content_hash: deployed.clone(),
        };
        let b = batch.add(&base).unwrap().unwrap();
        assert_eq!(batch.add(&base).unwrap(), None, "a base is recorded once");
        let change = Capture::Version {
            location: p_loc.clone(),
            path: copy.clone(),
            origin: Origin::Watch,
            message: None,
            expect: None,
        };
        let e = batch.add(&change).unwrap().unwrap();
        assert_eq!(batch.add(&change).unwrap(), None, "the same content twice");
        assert!(
            h.version(c).is_err(),
            "nothing is recorded before the commit"
        );
        assert_eq!(batch.commit().unwrap(), 3);
        let base = h.version(b).unwrap();
        assert_eq!(
            (base.origin, base.parents.clone(), &base.content_hash),
            (Origin::Deploy, vec![c], &deployed)
        );
        assert_eq!(base.entries, h.version(c).unwrap().entries);
        assert_eq!(h.version(e).unwrap().parents, vec![b]);
        assert!(h.check().unwrap().is_empty());
    }

    /// A batch dropped before its commit records nothing.
    #[test]
    fn a_dropped_batch_records_nothing() {
        let (d, h) = setup();
        let f = d.path().join("a.md");
        std::fs::write(&f, "a\n").unwrap();
        let loc = Location::collection("c", "agents/a.md");
        let capture = Capture::Version {
            location: loc.clone(),
            path: f,
            origin: Origin::Watch,
            message: None,
            expect: None,
        };
        let mut batch = h.batch();
        batch.add(&capture).unwrap().unwrap();
        drop(batch);
        assert!(h.versions_of(&loc).unwrap().is_empty());
        assert!(h.batch().add(&capture).unwrap().is_some());
    }

    /// A change whose file is being saved again by the time it is recorded (here: emptied
    /// by the next save's truncate) records nothing; the content the watcher settled on
    /// is recorded.
    #[test]
    fn a_change_is_recorded_only_while_the_file_holds_what_the_watcher_saw() {
        let (d, h) = setup();
        let f = d.path().join("a.md");
        let loc = Location::project(d.path(), ".claude", "commands/a.md");
        std::fs::write(&f, "edited\n").unwrap();
        let seen = content_hash(&f, Variant::Legacy).unwrap();
        let change = |expect: &str| Capture::Version {
            location: loc.clone(),
            path: f.clone(),
            origin: Origin::Watch,
            message: None,
            expect: Some(expect.to_string()),
        };
        std::fs::write(&f, "").unwrap();
        let mut batch = h.batch();
        assert_eq!(batch.add(&change(&seen)).unwrap(), None, "mid-save content");
        std::fs::write(&f, "edited\n").unwrap();
        let id = batch.add(&change(&seen)).unwrap().unwrap();
        batch.commit().unwrap();
        let versions = h.versions_of(&loc).unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!((versions[0].id, &versions[0].content_hash), (id, &seen));
    }
}

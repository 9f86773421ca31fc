//! History: every version of every artifact the daemon has seen, and snapshots of whole
//! collections and projects, deduplicated and compressed in the store.
//!
//! - A *blob* is a file's bytes, stored once under their SHA-256 (zstd, or a zstd delta).
//! - A *version* is one content of one artifact at one [`Location`]: its SkillMeat content
//!   hash, a manifest (relative path → blob, mode, symlink target), its parent (the
//!   previous version at that location), time, [`Origin`], message and tags.
//! - A *snapshot* is a named, timestamped set of versions covering a collection (its
//!   artifacts plus `collection.toml` and `collection.lock`) or a project (its deployed
//!   artifacts plus each `.skillmeat-deployed.toml`).
//!
//! Collection artifacts are read as a deploy would copy them ([`crate::hash::Variant::DeployedCopy`]),
//! project artifacts as they are ([`crate::hash::Variant::Legacy`]), so a version's hash is directly
//! comparable with a deployment record's `content_hash`.
//!
//! [`History`] is the synchronous API the engine (deployment bases), the live task's upkeep
//! (versions, automatic snapshots, retention), the operations (safety snapshots, restores)
//! and the RPC layer call. Every method that writes returns only after the write is
//! flushed. Submodules: `snapshot` (what a snapshot covers, taking and reading them),
//! [`content`] (reading trees from disk and writing them back), [`retention`] (which
//! versions to keep, a pure function), [`archive`] (export and import), [`diff`] (unified
//! diffs between any two states), [`time`] (parsing and printing instants), [`graph`] (the
//! version graph across locations: ancestry, merge bases) and `lineage` (building it,
//! recording where an operation's content came from), `batch` (many captures recorded
//! with one flush; bases adopted from an earlier version when their copy changed first).
//! The types live in [`crate::model`], their encodings in [`crate::store::history`].

pub mod archive;
mod batch;
pub mod content;
pub mod diff;
pub mod graph;
mod lineage;
pub mod retention;
mod snapshot;
pub mod time;

pub use batch::{Batch, Capture};
pub use snapshot::{AutoSnapshot, auto_snapshot_due};

use batch::Pending;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::hash::HashError;
use crate::index::HashIndex;
use crate::model::{Entry, Location, Origin, Snapshot, SnapshotId, Version, VersionId};
use crate::store::history::HistoryStore;
use crate::store::{Store, StoreError};

use content::Content;

/// Why a history operation failed. Each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: refused: {problem}; nothing was imported", path.display())]
    Hostile { path: PathBuf, problem: String },
    #[error("{}: restored content hashes to {found}, expected {expected}", path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("version {version} names blob {blob}, which is missing from the store")]
    MissingBlob { version: VersionId, blob: String },
    #[error(
        "version {version} is unavailable: the stored content of {} is damaged (blob {blob}); \
         other versions are not affected",
        if file.is_empty() { "its file" } else { file.as_str() }
    )]
    DamagedBlob {
        version: VersionId,
        file: String,
        blob: String,
    },
}

impl HistoryError {
    pub(crate) fn io<'a>(
        path: &'a Path,
        op: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| HistoryError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}

/// Sizes and counts for `smctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the whole store takes on disk.
    pub store_bytes: u64,
    /// Sum of every version's uncompressed size (what keeping full copies would take).
    pub logical_bytes: u64,
    /// Bytes of the distinct blobs, compressed.
    pub unique_compressed_bytes: u64,
    pub versions: u64,
    pub snapshots: u64,
    pub blobs: u64,
}

/// The result of preparing one capture.
enum Prepared {
    /// The content equals this existing version.
    Same(VersionId),
    /// A new version (its blobs already written).
    New(Box<Version>),
    /// Nothing to record (gone, or not the expected content).
    Nothing,
}

/// The history of a SkillMeat home.
#[derive(Debug)]
pub struct History {
    store: HistoryStore,
    index: HashIndex,
    home: PathBuf,
    /// Serialises writers, so that collecting unreferenced blobs never races a capture.
    write: Mutex<()>,
}

impl History {
    /// History over `store` for the SkillMeat home `skillmeat_home`.
    ///
    /// # Errors
    /// The store's history trees cannot be opened.
    pub fn open(store: &Store, skillmeat_home: PathBuf) -> Result<History, HistoryError> {
        Ok(History {
            store: store.history()?,
            index: HashIndex::new(store.clone()),
            home: skillmeat_home,
            write: Mutex::new(()),
        })
    }

    pub fn skillmeat_home(&self) -> &Path {
        &self.home
    }

    pub(crate) fn store(&self) -> &HistoryStore {
        &self.store
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest version of `loc` (latest time, then highest id), among those recorded
    /// and those `pending` in a batch.
    fn newest(&self, loc: &Location, pending: &Pending) -> Result<Option<Version>, HistoryError> {
        let stored = self.store.newest_at(loc)?;
        Ok(match (stored, pending.newest_at(loc)) {
            (Some(s), Some(p)) if (s.time_ms, s.id) > (p.time_ms, p.id) => Some(s),
            (_, Some(p)) => Some(p.clone()),
            (s, None) => s,
        })
    }

    /// Reads `path` and, when its content is new for `loc`, writes its blobs (not yet
    /// flushed) and returns the version to record.
    fn prepare(
        &self,
        loc: &Location,
        path: &Path,
        origin: Origin,
        message: Option<&str>,
        expect: Option<&str>,
    ) -> Result<Prepared, HistoryError> {
        self.prepare_in(loc, path, origin, message, expect, &Pending::default())
    }

    /// As [`History::prepare`], seeing the versions `pending` in a batch as recorded.
    fn prepare_in(
        &self,
        loc: &Location,
        path: &Path,
        origin: Origin,
        message: Option<&str>,
        expect: Option<&str>,
        pending: &Pending,
    ) -> Result<Prepared, HistoryError> {
        let newest = self.newest(loc, pending)?;
        let variant = loc.variant();
        // The hash index answers from a stat walk when nothing changed: no bytes read.
        match self.index.hash(path, variant) {
            Ok(h) => {
                if let Some(n) = newest.as_ref().filter(|n| n.content_hash == h) {
                    return Ok(Prepared::Same(n.id));
                }
                // Not the expected content (a base whose copy changed): nothing to read.
                if expect.is_some_and(|e| e != h) {
                    return Ok(Prepared::Nothing);
                }
            }
            Err(HashError::NotFound { .. }) => return Ok(Prepared::Nothing),
            Err(e) => return Err(e.into()),
        }
        let content = match Content::read(path, variant) {
            Ok(c) => c,
            Err(HistoryError::Hash(HashError::NotFound { .. })) => return Ok(Prepared::Nothing),
            Err(e) => return Err(e),
        };
        let hash = content.hash();
        if expect.is_some_and(|e| e != hash) {
            return Ok(Prepared::Nothing);
        }
        if let Some(n) = newest.as_ref().filter(|n| n.content_hash == hash) {
            return Ok(Prepared::Same(n.id));
        }
        let mut parents: Vec<VersionId> = newest.iter().map(|n| n.id).collect();
        if parents.is_empty()
            && let Some(fork) = self.fork_point_in(loc, &hash, pending)?
        {
            parents.push(fork);
        }
        Ok(Prepared::New(Box::new(self.new_version(
            loc,
            &content,
            hash,
            parents,
            newest.as_ref(),
            time::now_ms(),
            origin,
            message,
        )?)))
    }

    /// Writes the blobs of `content` (as deltas on `previous`'s when smaller), builds its version.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_version(
        &self,
        loc: &Location,
        content: &Content,
        hash: String,
        parents: Vec<VersionId>,
        previous: Option<&Version>,
        time_ms: i64,
        origin: Origin,
        message: Option<&str>,
    ) -> Result<Version, HistoryError> {
        let before = content::blobs_by_path(previous);
        let mut entries = Vec::with_capacity(content.files.len());
        for f in &content.files {
            let sha = content::sha256(&f.bytes);
            self.store
                .put_blob(&sha, &f.bytes, before.get(f.path.as_str()))?;
            entries.push(Entry {
                path: f.path.clone(),
                blob: hex::encode(sha),
                size: f.bytes.len() as u64,
                mode: f.mode,
                symlink: f.symlink.clone(),
            });
        }
        Ok(Version {
            id: self.store.next_version_id()?,
            location: loc.clone(),
            content_hash: hash,
            single_file: content.single_file,
            entries,
            parents,
            time_ms,
            origin,
            message: message.map(str::to_string),
            tags: Vec::new(),
        })
    }

    /// One version.
    ///
    /// # Errors
    /// [`HistoryError::NotFound`]; the store failed.
    pub fn version(&self, id: VersionId) -> Result<Version, HistoryError> {
        self.store
            .version(id)?
            .ok_or_else(|| HistoryError::NotFound(format!("version {id}")))
    }

    /// A version named by id (`v12`) or tag.
    ///
    /// # Errors
    /// Neither a version nor a tag of that name exists.
    pub fn resolve_version(&self, spec: &str) -> Result<Version, HistoryError> {
        if let Ok(id) = spec.parse::<VersionId>()
            && let Some(v) = self.store.version(id)?
        {
            return Ok(v);
        }
        match self.store.tag(spec)? {
            Some(id) => self.version(id),
            None => Err(HistoryError::NotFound(format!("version or tag {spec:?}"))),
        }
    }

    /// Every version of `loc`, newest first.
    ///
    /// # Errors
    /// The store failed.
    pub fn versions_of(&self, loc: &Location) -> Result<Vec<Version>, HistoryError> {
        let mut v = self.store.versions_at(loc)?;
        v.sort_by_key(|v| std::cmp::Reverse((v.time_ms, v.id)));
        Ok(v)
    }

    /// Versions whose SkillMeat hash is `content_hash`, at `loc` or anywhere; newest first.
    ///
    /// # Errors
    /// The store failed.
    pub fn find_by_hash(
        &self,
        loc: Option<&Location>,
        content_hash: &str,
    ) -> Result<Vec<Version>, HistoryError> {
        let mut out = Vec::new();
        for id in self.store.versions_with_hash(content_hash, loc)? {
            out.push(self.version(id)?);
        }
        out.sort_by_key(|v| std::cmp::Reverse((v.time_ms, v.id)));
        Ok(out)
    }

    /// Tags a version (a tag names one version; tagging again moves it). Tagged versions
    /// are never pruned.
    ///
    /// # Errors
    /// An empty or id-like name; the version does not exist; the store failed.
    pub fn tag(&self, id: VersionId, name: &str) -> Result<Version, HistoryError> {
        let name = name.trim();
        if name.is_empty()
            || name.parse::<VersionId>().is_ok()
            || name.parse::<SnapshotId>().is_ok()
            || name.starts_with('@')
            || matches!(name, "collection" | "project")
        {
            return Err(HistoryError::Invalid(format!(
                "{name:?} cannot be a tag: it would read as an id, a time or a keyword"
            )));
        }
        let _w = self.lock();
        let mut v = self.version(id)?;
        let previous = match self.store.tag(name)? {
            Some(p) if p == id => None,
            Some(p) => {
                let mut pv = self.version(p)?;
                pv.tags.retain(|t| t != name);
                Some(pv)
            }
            None => None,
        };
        if !v.tags.iter().any(|t| t == name) {
            v.tags.push(name.to_string());
        }
        self.store.set_tag(name, &v, previous.as_ref())?;
        self.store.flush()?;
        Ok(v)
    }

    /// The files of a version, read back from their blobs.
    ///
    /// # Errors
    /// A blob is missing or corrupt.
    pub fn content_of(&self, v: &Version) -> Result<Content, HistoryError> {
        let mut files = Vec::with_capacity(v.entries.len());
        for e in &v.entries {
            let sha = content::parse_sha(&e.blob).ok_or_else(|| HistoryError::MissingBlob {
                version: v.id,
                blob: e.blob.clone(),
            })?;
            let bytes = match self.store.blob(&sha) {
                Err(StoreError::BadBlob { .. }) => {
                    return Err(HistoryError::DamagedBlob {
                        version: v.id,
                        file: e.path.clone(),
                        blob: e.blob.clone(),
                    });
                }
                other => other?,
            }
            .ok_or_else(|| HistoryError::MissingBlob {
                version: v.id,
                blob: e.blob.clone(),
            })?;
            files.push(content::FileContent {
                path: e.path.clone(),
                mode: e.mode,
                symlink: e.symlink.clone(),
                bytes,
            });
        }
        Ok(Content {
            single_file: v.single_file,
            files,
        })
    }

    /// Writes version `id` to `dest` (which must not exist), atomically, after checking the
    /// written copy hashes to the version's SkillMeat hash.
    ///
    /// # Errors
    /// `dest` exists or its folder does not; a blob is missing; the check failed (nothing
    /// is left behind).
    pub fn materialize(&self, id: VersionId, dest: &Path) -> Result<(), HistoryError> {
        let v = self.version(id)?;
        let content = self.content_of(&v)?;
        content.write_to(dest, v.location.variant(), &v.content_hash)
    }

    /// Sizes and counts, from the store's counters.
    ///
    /// # Errors
    /// The store failed.
    pub fn stats(&self) -> Result<Stats, HistoryError> {
        let t = self.store.totals()?;
        Ok(Stats {
            store_bytes: self.store.size_on_disk(),
            logical_bytes: t.logical_bytes,
            unique_compressed_bytes: t.blob_bytes,
            versions: t.versions,
            snapshots: t.snapshots,
            blobs: t.blobs,
        })
    }

    /// Checks that every version's blobs are present; returns the problems found.
    ///
    /// # Errors
    /// The store failed.
    pub fn check(&self) -> Result<Vec<String>, HistoryError> {
        let blobs: HashSet<[u8; 32]> = self.store.blob_ids()?.into_iter().collect();
        let mut problems = Vec::new();
        for v in self.store.all_versions()? {
            for e in &v.entries {
                if !content::parse_sha(&e.blob).is_some_and(|s| blobs.contains(&s)) {
                    problems.push(format!("{}: missing blob {}", v.id, e.blob));
                }
            }
        }
        for s in self.store.all_snapshots()? {
            for m in &s.members {
                if self.store.version(*m)?.is_none() {
                    problems.push(format!("{}: missing version {m}", s.id));
                }
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Variant;

    /// A history on a fresh store in a temporary folder (its SkillMeat home `home`).
    pub(super) fn setup() -> (tempfile::TempDir, History) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("store")).unwrap();
        let h = History::open(&store, d.path().join("home")).unwrap();
        (d, h)
    }

    #[test]
    fn capture_dedups_links_parents_and_materializes() {
        let (d, h) = setup();
        let art = d.path().join("proj/.claude/skills/x");
        std::fs::create_dir_all(art.join("refs")).unwrap();
        std::fs::write(art.join("SKILL.md"), "one\n").unwrap();
        std::fs::write(art.join("refs/g.md"), "g\n").unwrap();
        let loc = Location::project(&d.path().join("proj"), ".claude", "skills/x");
        let v1 = h
            .capture(&loc, &art, Origin::Manual, None)
            .unwrap()
            .unwrap();
        assert_eq!(h.capture(&loc, &art, Origin::Manual, None).unwrap(), None);
        std::fs::write(art.join("SKILL.md"), "two, longer\n").unwrap();
        let v2 = h
            .capture(&loc, &art, Origin::Watch, Some("edit"))
            .unwrap()
            .unwrap();
        let log = h.versions_of(&loc).unwrap();
        assert_eq!(log.iter().map(|v| v.id).collect::<Vec<_>>(), [v2, v1]);
        assert_eq!(log[0].parents, vec![v1]);
        assert!(log[1].parents.is_empty());
        assert_eq!(
            log[0].content_hash,
            crate::hash::content_hash(&art, Variant::Legacy).unwrap()
        );
        let out = d.path().join("restored");
        h.materialize(v1, &out).unwrap();
        assert_eq!(std::fs::read(out.join("SKILL.md")).unwrap(), b"one\n");
        assert_eq!(
            crate::hash::content_hash(&out, Variant::Legacy).unwrap(),
            log[1].content_hash
        );
        assert!(
            h.materialize(v1, &out).is_err(),
            "an existing dest is refused"
        );
        let found = h.find_by_hash(None, &log[1].content_hash).unwrap();
        assert_eq!(found[0].id, v1);
        assert!(h.check().unwrap().is_empty());
    }

    #[test]
    fn base_capture_only_for_the_recorded_hash() {
        let (d, h) = setup();
        let f = d.path().join("cmd.md");
        std::fs::write(&f, "x").unwrap();
        let loc = Location::collection("default", "commands/cmd.md");
        assert_eq!(h.capture_base(&loc, &f, &"0".repeat(64)).unwrap(), None);
        let good = crate::hash::content_hash(&f, Variant::DeployedCopy).unwrap();
        let v = h.capture_base(&loc, &f, &good).unwrap().unwrap();
        assert_eq!(h.version(v).unwrap().origin, Origin::Deploy);
        assert_eq!(h.capture_base(&loc, &f, &good).unwrap(), None);
    }

    #[test]
    fn tags_move_and_resolve() {
        let (d, h) = setup();
        let f = d.path().join("a.md");
        let loc = Location::collection("c", "agents/a.md");
        std::fs::write(&f, "1").unwrap();
        let v1 = h.capture(&loc, &f, Origin::Manual, None).unwrap().unwrap();
        std::fs::write(&f, "22").unwrap();
        let v2 = h.capture(&loc, &f, Origin::Manual, None).unwrap().unwrap();
        h.tag(v1, "good").unwrap();
        assert_eq!(h.resolve_version("good").unwrap().id, v1);
        h.tag(v2, "good").unwrap();
        assert_eq!(h.resolve_version("good").unwrap().id, v2);
        assert!(h.version(v1).unwrap().tags.is_empty());
        assert!(h.tag(v1, "v7").is_err());
    }
}

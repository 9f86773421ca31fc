//! The daemon's persistent store: one sled database under the state directory.
//!
//! This module owns sled: tree names, key layouts and encodings live here and nowhere else;
//! the rest of the daemon sees domain types. Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `projects` | absolute project path (bytes) | JSON [`ProjectMark`] |
//! | `hashes` | variant tag byte + absolute path (bytes) | [`CachedHash`], fixed layout |
//! | `meta` | name | bytes (`schema` = format version) |
//!
//! The journal and drift-state trees are described in [`journal`]; the history trees
//! (blobs, versions, snapshots, tags) in [`history`]; the operations log in [`operations`];
//! the notification mutes in [`mutes`]. The values are domain types from [`crate::model`]
//! (and [`crate::notification::Mute`]); the store knows nothing of who makes them.
//!
//! Writes that answer an RPC are flushed before the answer ([`Store::flush`]). Opened once
//! by [`crate::daemon::run`]; the index, history and engine share clones of it.

pub mod history;
mod journal;
mod mutes;
mod operations;

pub use operations::OperationWatch;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::hash::Variant;

/// Layout version of the trees; bumped when an encoding changes incompatibly.
const SCHEMA: u32 = 1;

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("store at {} has layout version {found}, this daemon reads {SCHEMA}", path.display())]
    Schema { path: PathBuf, found: u32 },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
}

/// What the user said about a project folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectMark {
    /// Registered by hand with `smctl project add`.
    #[serde(default)]
    pub manual: bool,
    /// Hidden for good with `smctl project ignore`.
    #[serde(default)]
    pub ignored: bool,
}

/// A content hash remembered together with the stamp digest of what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedHash {
    /// [`crate::hash::Listing::stamp_digest`] of the files read.
    pub stamp_digest: [u8; 32],
    /// A file changed too close to hashing time to trust the stamp; recompute next time.
    pub racy: bool,
    /// How many files the hash covered.
    pub files: u64,
    /// The hex content hash.
    pub hash: String,
}

impl CachedHash {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + 1 + 8 + self.hash.len());
        v.extend_from_slice(&self.stamp_digest);
        v.push(u8::from(self.racy));
        v.extend_from_slice(&self.files.to_le_bytes());
        v.extend_from_slice(self.hash.as_bytes());
        v
    }

    fn decode(v: &[u8]) -> Option<CachedHash> {
        if v.len() < 41 {
            return None;
        }
        Some(CachedHash {
            stamp_digest: v[..32].try_into().ok()?,
            racy: v[32] != 0,
            files: u64::from_le_bytes(v[33..41].try_into().ok()?),
            hash: String::from_utf8(v[41..].to_vec()).ok()?,
        })
    }
}

/// The open store.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    projects: sled::Tree,
    hashes: sled::Tree,
    journal: sled::Tree,
    state: sled::Tree,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// # Errors
    /// sled cannot open the folder (permissions, another process holds it), or the store
    /// was written by an incompatible version.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.to_path_buf(),
                source,
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema")? {
            None => {
                meta.insert("schema", &SCHEMA.to_le_bytes())?;
            }
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_le_bytes)
                    .unwrap_or(u32::MAX);
                if found != SCHEMA {
                    return Err(StoreError::Schema {
                        path: dir.to_path_buf(),
                        found,
                    });
                }
            }
        }
        Ok(Store {
            projects: db.open_tree("projects")?,
            hashes: db.open_tree("hashes")?,
            journal: db.open_tree("journal")?,
            state: db.open_tree("state")?,
            meta,
            db,
        })
    }

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// The flush failed (disk full, I/O error).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Every project folder the user said something about.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn project_marks(&self) -> Result<Vec<(PathBuf, ProjectMark)>, StoreError> {
        self.projects
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let mark = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    tree: "projects",
                    detail: e.to_string(),
                })?;
                Ok((PathBuf::from(std::ffi::OsStr::from_bytes(&k)), mark))
            })
            .collect()
    }

    /// Sets (or, for a default mark, clears) what the user said about `path`, durably.
    ///
    /// # Errors
    /// sled failed.
    pub fn set_project_mark(&self, path: &Path, mark: &ProjectMark) -> Result<(), StoreError> {
        let key = path.as_os_str().as_bytes();
        if *mark == ProjectMark::default() {
            self.projects.remove(key)?;
        } else {
            let v = serde_json::to_vec(mark).expect("a mark always serializes");
            self.projects.insert(key, v)?;
        }
        self.flush()
    }

    /// The mark of one project, default if none.
    ///
    /// # Errors
    /// sled failed, or the record does not decode.
    pub fn project_mark(&self, path: &Path) -> Result<ProjectMark, StoreError> {
        match self.projects.get(path.as_os_str().as_bytes())? {
            None => Ok(ProjectMark::default()),
            Some(v) => serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "projects",
                detail: e.to_string(),
            }),
        }
    }

    fn hash_key(variant: Variant, path: &Path) -> Vec<u8> {
        let mut k = vec![variant.tag()];
        k.extend_from_slice(path.as_os_str().as_bytes());
        k
    }

    /// The cached hash of `path`, if any. A record that does not decode counts as absent.
    ///
    /// # Errors
    /// sled failed.
    pub fn cached_hash(
        &self,
        variant: Variant,
        path: &Path,
    ) -> Result<Option<CachedHash>, StoreError> {
        Ok(self
            .hashes
            .get(Self::hash_key(variant, path))?
            .and_then(|v| CachedHash::decode(&v)))
    }

    /// Remembers the hash of `path` (flushed with the next [`Store::flush`], or by sled's
    /// own timer: a lost cache entry only costs a re-read).
    ///
    /// # Errors
    /// sled failed.
    pub fn put_hash(
        &self,
        variant: Variant,
        path: &Path,
        entry: &CachedHash,
    ) -> Result<(), StoreError> {
        self.hashes
            .insert(Self::hash_key(variant, path), entry.encode())?;
        Ok(())
    }

    /// Number of files covered by cached hashes.
    pub fn files_indexed(&self) -> u64 {
        self.hashes
            .iter()
            .values()
            .filter_map(Result::ok)
            .filter_map(|v| CachedHash::decode(&v))
            .map(|c| c.files)
            .sum()
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_hashes_survive_reopen() {
        let d = tempfile::tempdir().unwrap();
        let entry = CachedHash {
            stamp_digest: [7; 32],
            racy: false,
            files: 3,
            hash: "ab".repeat(32),
        };
        {
            let s = Store::open(d.path()).unwrap();
            let mark = ProjectMark {
                manual: true,
                ignored: false,
            };
            s.set_project_mark(Path::new("/p/one"), &mark).unwrap();
            s.put_hash(Variant::Legacy, Path::new("/p/one/x"), &entry)
                .unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.project_marks().unwrap().len(), 1);
        assert!(s.project_mark(Path::new("/p/one")).unwrap().manual);
        assert_eq!(
            s.cached_hash(Variant::Legacy, Path::new("/p/one/x"))
                .unwrap(),
            Some(entry)
        );
        assert_eq!(
            s.cached_hash(Variant::DeployedCopy, Path::new("/p/one/x"))
                .unwrap(),
            None
        );
        assert_eq!(s.files_indexed(), 3);
        s.set_project_mark(Path::new("/p/one"), &ProjectMark::default())
            .unwrap();
        assert!(s.project_marks().unwrap().is_empty());
    }
}

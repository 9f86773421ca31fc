//! Project marks (what the user said about a project folder) and the hash cache.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `projects` | absolute project path (bytes) | framed JSON [`ProjectMark`]; removing one leaves a tombstone |
//! | `hashes` | variant tag byte + absolute path (bytes) | [`CachedHash`], fixed layout (derived: not framed, not salvaged) |

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::hash::Variant;

use super::frame::TreeId;
use super::{Store, StoreError, unframe};

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

impl Store {
    /// Every project folder the user said something about.
    ///
    /// # Errors
    /// sled failed, or a record does not decode.
    pub fn project_marks(&self) -> Result<Vec<(PathBuf, ProjectMark)>, StoreError> {
        self.with(|h| {
            let mut out = Vec::new();
            for kv in h.projects.iter() {
                let (k, v) = kv?;
                let mark = decode_mark(&k, &v)?;
                if mark != ProjectMark::default() {
                    out.push((PathBuf::from(std::ffi::OsStr::from_bytes(&k)), mark));
                }
            }
            Ok(out)
        })
    }

    /// Sets (or, for a default mark, clears) what the user said about `path`, durably.
    ///
    /// # Errors
    /// sled failed.
    pub fn set_project_mark(&self, path: &Path, mark: &ProjectMark) -> Result<(), StoreError> {
        let key = path.as_os_str().as_bytes();
        self.with(|h| {
            if *mark == ProjectMark::default() {
                h.projects.remove(key)?;
                self.bury(h, TreeId::Projects, &[key.to_vec()])?;
            } else {
                let v = serde_json::to_vec(mark).expect("a mark always serializes");
                h.projects
                    .insert(key, self.frame(TreeId::Projects, key, &v))?;
            }
            Ok(())
        })?;
        self.flush()
    }

    /// The mark of one project, default if none.
    ///
    /// # Errors
    /// sled failed, or the record does not decode.
    pub fn project_mark(&self, path: &Path) -> Result<ProjectMark, StoreError> {
        let key = path.as_os_str().as_bytes();
        self.with(|h| match h.projects.get(key)? {
            None => Ok(ProjectMark::default()),
            Some(v) => decode_mark(key, &v),
        })
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
        self.with(|h| {
            Ok(h.hashes
                .get(Self::hash_key(variant, path))?
                .and_then(|v| CachedHash::decode(&v)))
        })
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
        self.with(|h| {
            let old = h
                .hashes
                .insert(Self::hash_key(variant, path), entry.encode())?;
            let old_files = old
                .and_then(|v| CachedHash::decode(&v))
                .map_or(0, |c| c.files);
            h.counts
                .files_indexed
                .add(entry.files as i64 - old_files as i64);
            Ok(())
        })
    }

    /// Number of files covered by cached hashes (0 when the store cannot answer): a
    /// counter, after one scan the first time.
    pub fn files_indexed(&self) -> u64 {
        self.with(|h| {
            Ok(h.counts.files_indexed.get_or(|| {
                h.hashes
                    .iter()
                    .values()
                    .filter_map(Result::ok)
                    .filter_map(|v| CachedHash::decode(&v))
                    .map(|c| c.files)
                    .sum()
            }))
        })
        .unwrap_or(0)
    }
}

fn decode_mark(key: &[u8], v: &[u8]) -> Result<ProjectMark, StoreError> {
    serde_json::from_slice(unframe(TreeId::Projects, key, v)?).map_err(|e| StoreError::Corrupt {
        tree: "projects",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::hash::Variant;
    use crate::store::Store;

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

//! Project marks: what the user said about a project folder.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `projects` | absolute project path (bytes) | framed JSON [`ProjectMark`]; removing one leaves a tombstone |

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
    use crate::store::Store;

    #[test]
    fn marks_survive_reopen() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Store::open(d.path()).unwrap();
            let mark = ProjectMark {
                manual: true,
                ignored: false,
            };
            s.set_project_mark(Path::new("/p/one"), &mark).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.project_marks().unwrap().len(), 1);
        assert!(s.project_mark(Path::new("/p/one")).unwrap().manual);
        s.set_project_mark(Path::new("/p/one"), &ProjectMark::default())
            .unwrap();
        assert!(s.project_marks().unwrap().is_empty());
    }
}

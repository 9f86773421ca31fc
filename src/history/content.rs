//! An artifact's content in memory: reading it from disk exactly as SkillMeat's hash reads
//! it, hashing it the same way, and writing it back atomically with a hash check.
//!
//! Reading goes through [`crate::hash::walk`], so a version holds precisely the files its
//! SkillMeat hash covers, and [`Content::hash`] over them equals
//! [`crate::hash::content_hash`] of the folder at that moment.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use crate::hash::{self, Variant};
use crate::model::Version;

use super::HistoryError;

/// One file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Relative, `/`-separated; empty for a single-file artifact.
    pub path: String,
    pub mode: u32,
    /// The link target when the file was a symbolic link.
    pub symlink: Option<String>,
    pub bytes: Vec<u8>,
}

/// An artifact's files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    pub single_file: bool,
    pub files: Vec<FileContent>,
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The blob of each file of `version` (none without one), by path: the bases a new
/// content of the same files is stored against.
pub(super) fn blobs_by_path(version: Option<&Version>) -> HashMap<&str, [u8; 32]> {
    version
        .into_iter()
        .flat_map(|v| &v.entries)
        .filter_map(|e| Some((e.path.as_str(), parse_sha(&e.blob)?)))
        .collect()
}

/// A hex blob id back to bytes.
pub fn parse_sha(hex_id: &str) -> Option<[u8; 32]> {
    hex::decode(hex_id).ok()?.try_into().ok()
}

/// Orders relative paths component by component, as SkillMeat's hash feeds them.
pub fn component_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

impl Content {
    /// Reads the artifact at `path` as `variant` hashes it.
    ///
    /// # Errors
    /// As [`hash::walk`]; a file that cannot be read; a name that is not UTF-8 (SkillMeat
    /// cannot hash those either).
    pub fn read(path: &Path, variant: Variant) -> Result<Content, HistoryError> {
        let listing = hash::walk(path, variant)?;
        let mut files = Vec::with_capacity(listing.files.len());
        for f in &listing.files {
            let abs = listing.path_of(f);
            let rel = String::from_utf8(f.rel.clone()).map_err(|_| {
                HistoryError::Invalid(format!("{}: file name is not UTF-8", abs.display()))
            })?;
            let bytes = crate::regular::read(&abs).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    HistoryError::Hash(hash::HashError::NotFound { path: abs.clone() })
                } else {
                    HistoryError::io(&abs, "read")(e)
                }
            })?;
            let meta = fs::metadata(&abs).map_err(HistoryError::io(&abs, "stat"))?;
            let symlink = fs::symlink_metadata(&abs)
                .ok()
                .filter(|m| m.file_type().is_symlink())
                .and_then(|_| fs::read_link(&abs).ok())
                .map(|t| t.to_string_lossy().into_owned());
            files.push(FileContent {
                path: rel,
                mode: meta.mode() & 0o7777,
                symlink,
                bytes,
            });
        }
        Ok(Content {
            single_file: listing.single_file,
            files,
        })
    }

    /// SkillMeat's content hash of these files: SHA-256 of the bytes for a single file;
    /// otherwise of every relative path followed by its bytes, in component order.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        let mut order: Vec<&FileContent> = self.files.iter().collect();
        order.sort_by(|a, b| component_order(&a.path, &b.path));
        for f in order {
            if !self.single_file {
                h.update(f.path.as_bytes());
            }
            h.update(&f.bytes);
        }
        hex::encode(h.finalize())
    }

    /// Keeps only what a deploy would copy (names on SkillMeat's ignore list dropped).
    pub fn deployed_copy(mut self) -> Content {
        self.files
            .retain(|f| !f.path.split('/').any(|c| hash::copy_ignores(c.as_bytes())));
        self
    }

    /// Writes the content to `dest` (which must not exist) through a temporary sibling,
    /// checks the copy hashes to `expected` with `variant`, then renames it into place.
    ///
    /// # Errors
    /// `dest` exists or its parent folder does not; an I/O error; the hash check failed.
    /// Nothing is left behind on failure.
    pub fn write_to(
        &self,
        dest: &Path,
        variant: Variant,
        expected: &str,
    ) -> Result<(), HistoryError> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(HistoryError::Invalid(format!(
                "{}: already exists; not overwriting it",
                dest.display()
            )));
        }
        let parent = dest
            .parent()
            .filter(|p| p.is_dir())
            .ok_or_else(|| HistoryError::NotFound(format!("folder of {}", dest.display())))?;
        let name = dest
            .file_name()
            .ok_or_else(|| HistoryError::Invalid(format!("{}: no file name", dest.display())))?;
        let tmp = crate::transient::sibling(&parent.join(name), "restore");
        let _ = fs::remove_dir_all(&tmp).or_else(|_| fs::remove_file(&tmp));
        let result = self.write_tree(&tmp).and_then(|()| {
            let found = hash::content_hash(&tmp, variant)?;
            if found != expected {
                return Err(HistoryError::HashMismatch {
                    path: dest.to_path_buf(),
                    expected: expected.to_string(),
                    found,
                });
            }
            fs::rename(&tmp, dest).map_err(HistoryError::io(dest, "rename into place"))
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp).or_else(|_| fs::remove_file(&tmp));
        }
        result
    }

    fn write_tree(&self, at: &Path) -> Result<(), HistoryError> {
        if self.single_file {
            let f = self.files.first().ok_or_else(|| {
                HistoryError::Invalid("a single-file version without a file".into())
            })?;
            return write_file(at, f);
        }
        fs::create_dir(at).map_err(HistoryError::io(at, "create folder"))?;
        for f in &self.files {
            let rel = Path::new(&f.path);
            if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(HistoryError::Invalid(format!(
                    "{}: path leaves the artifact",
                    f.path
                )));
            }
            let p = at.join(rel);
            if let Some(dir) = p.parent() {
                fs::create_dir_all(dir).map_err(HistoryError::io(dir, "create folder"))?;
            }
            match f
                .symlink
                .as_deref()
                .filter(|t| link_stays_inside(&f.path, t))
            {
                Some(target) => std::os::unix::fs::symlink(target, &p)
                    .map_err(HistoryError::io(&p, "create symlink"))?,
                None => write_file(&p, f)?,
            }
        }
        Ok(())
    }
}

fn write_file(p: &Path, f: &FileContent) -> Result<(), HistoryError> {
    fs::write(p, &f.bytes).map_err(HistoryError::io(p, "write"))?;
    let mode = if f.mode == 0 { 0o644 } else { f.mode & 0o777 };
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(HistoryError::io(p, "chmod"))
}

/// Whether a relative symlink at `link` (relative to the artifact) pointing at `target`
/// stays inside the artifact. Other links are restored as plain copies of their bytes.
pub fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth: Vec<&str> = link.split('/').collect();
    depth.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            other => depth.push(other),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_skillmeat_for_folders_and_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/b.md"), b"1").unwrap();
        std::fs::write(d.path().join("a.md"), b"2").unwrap();
        std::fs::write(d.path().join("a b.md"), b"3").unwrap();
        std::os::unix::fs::symlink("a.md", d.path().join("link.md")).unwrap();
        let c = Content::read(d.path(), Variant::Legacy).unwrap();
        assert_eq!(
            c.hash(),
            hash::content_hash(d.path(), Variant::Legacy).unwrap()
        );
        let link = c.files.iter().find(|f| f.path == "link.md").unwrap();
        assert_eq!(link.symlink.as_deref(), Some("a.md"));
        let single = Content::read(&d.path().join("a.md"), Variant::Legacy).unwrap();
        assert_eq!(
            single.hash(),
            hash::content_hash(&d.path().join("a.md"), Variant::Legacy).unwrap()
        );
        let out = d.path().join("copy");
        c.write_to(&out, Variant::Legacy, &c.hash()).unwrap();
        assert!(
            std::fs::symlink_metadata(out.join("link.md"))
                .unwrap()
                .is_symlink()
        );
    }

    #[test]
    fn a_failed_check_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let c = Content {
            single_file: true,
            files: vec![FileContent {
                path: String::new(),
                mode: 0o644,
                symlink: None,
                bytes: b"x".to_vec(),
            }],
        };
        let out = d.path().join("x.md");
        assert!(matches!(
            c.write_to(&out, Variant::Legacy, "nope"),
            Err(HistoryError::HashMismatch { .. })
        ));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn links_inside_and_out() {
        assert!(link_stays_inside("a/b", "../c"));
        assert!(link_stays_inside("a", "b/c"));
        assert!(!link_stays_inside("a", "../c"));
        assert!(!link_stays_inside("a/b", "/etc/passwd"));
    }
}

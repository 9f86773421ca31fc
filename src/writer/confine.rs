//! Keeping every write inside its managed folder.
//!
//! A destination is accepted only if it names something strictly below the managed root
//! with plain components (no `..`, no absolute detour), and every folder on the way
//! resolves inside the root: a symlinked folder is followed only when its target is
//! inside too. Missing folders on the way are created (and listed, so a failed write can
//! remove them again).

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::WriteError;

/// Where a destination lives once checked.
#[derive(Debug)]
pub(super) struct Target {
    /// The canonical managed root.
    pub root: PathBuf,
    /// The folder holding the destination (inside `root`, symlinks resolved).
    pub dir: PathBuf,
    /// The destination's file name.
    pub name: OsString,
    /// Folders created on the way, outermost first.
    pub created: Vec<PathBuf>,
}

impl Target {
    /// The destination itself (not resolved: it may be a symlink, which is never followed).
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Removes the folders this check created, innermost first, if nothing but the
    /// destination's lock file (made by this write) landed in them.
    pub fn undo_created(&self) {
        if self.created.last() == Some(&self.dir) {
            let _ = std::fs::remove_file(super::lock_path(&self.path()));
        }
        remove_empty(&self.created);
    }

    /// Whether `path` resolves inside the root.
    pub fn resolves_inside(&self, path: &Path) -> bool {
        path.canonicalize()
            .is_ok_and(|p| p.starts_with(&self.root) && p != self.root)
    }
}

/// Checks `dest` (absolute, or relative to `root`) against `root`.
///
/// With `create`, missing folders on the way are made; without, a missing folder yields
/// `Ok(None)` (nothing there to act on).
///
/// # Errors
/// [`WriteError::Outside`] for a destination not strictly below `root`,
/// [`WriteError::SymlinkEscape`] for a folder on the way that resolves outside it,
/// [`WriteError::Io`] when the root or a folder cannot be read or made.
pub(super) fn confine(
    root: &Path,
    dest: &Path,
    create: bool,
) -> Result<Option<Target>, WriteError> {
    let canonical_root = root
        .canonicalize()
        .map_err(|e| WriteError::io(root, "resolve managed folder", e))?;
    let abs = if dest.is_absolute() {
        dest.to_path_buf()
    } else {
        root.join(dest)
    };
    let outside = || WriteError::Outside {
        path: abs.clone(),
        root: root.to_path_buf(),
    };
    let rel = abs
        .strip_prefix(root)
        .or_else(|_| abs.strip_prefix(&canonical_root))
        .map_err(|_| outside())?;
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(outside()),
        })
        .collect::<Result<_, _>>()?;
    let Some((name, folders)) = parts.split_last() else {
        return Err(outside());
    };

    let mut dir = canonical_root.clone();
    let mut created = Vec::new();
    for part in folders {
        let next = dir.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.is_dir() => dir = next,
            Ok(m) if m.file_type().is_symlink() => {
                let resolved = next
                    .canonicalize()
                    .ok()
                    .filter(|p| p.starts_with(&canonical_root) && p.is_dir());
                match resolved {
                    Some(p) => dir = p,
                    None => {
                        return Err(WriteError::SymlinkEscape {
                            path: next,
                            root: root.to_path_buf(),
                        });
                    }
                }
            }
            Ok(_) => {
                let e = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
                return Err(WriteError::io(&next, "enter folder", e));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                if let Err(e) = std::fs::create_dir(&next) {
                    remove_empty(&created);
                    return Err(WriteError::io(&next, "create folder", e));
                }
                created.push(next.clone());
                dir = next;
            }
            Err(e) => return Err(WriteError::io(&next, "inspect", e)),
        }
    }
    Ok(Some(Target {
        root: canonical_root,
        dir,
        name: name.to_os_string(),
        created,
    }))
}

/// Removes `dirs` innermost first, each only if empty.
fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_inside_are_accepted_and_folders_made() {
        let d = tempfile::tempdir().unwrap();
        let t = confine(d.path(), Path::new("a/b/c.md"), true)
            .unwrap()
            .unwrap();
        assert_eq!(t.path(), d.path().canonicalize().unwrap().join("a/b/c.md"));
        assert_eq!(t.created.len(), 2);
        t.undo_created();
        assert!(!d.path().join("a").exists());
        let abs = d.path().join("x.md");
        assert!(confine(d.path(), &abs, false).unwrap().is_some());
        assert!(
            confine(d.path(), Path::new("no/such/x"), false)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn escapes_are_refused_with_the_path() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            let err = confine(&root, Path::new(bad), true).unwrap_err();
            assert!(matches!(err, WriteError::Outside { .. }), "{bad}: {err}");
        }
        assert!(matches!(
            confine(&root, &root, true).unwrap_err(),
            WriteError::Outside { .. }
        ));
        std::fs::create_dir(d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), root.join("link")).unwrap();
        let err = confine(&root, Path::new("link/x.md"), true).unwrap_err();
        assert!(matches!(err, WriteError::SymlinkEscape { .. }), "{err}");
        assert!(err.to_string().contains("link"), "{err}");

        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("inner")).unwrap();
        let t = confine(&root, Path::new("inner/x.md"), true)
            .unwrap()
            .unwrap();
        assert_eq!(t.dir, root.canonicalize().unwrap().join("real"));
    }
}

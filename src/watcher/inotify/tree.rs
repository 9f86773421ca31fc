//! The watch table: every folder the inotify instance watches, by its watch descriptor,
//! with where it is and how it is watched.
//!
//! A folder is held as its parent's descriptor and its own name; only a folder watched on
//! its own (a root, or one whose parent is not watched) is held by its whole path. A path
//! is found from the nearest such folder above it, a name at a time. Held as whole paths,
//! twice (by descriptor, and back by path), the 20,200 folders of 100,000 files took
//! 4.2 MB of the daemon's heap.

use std::ffi::{CString, OsStr};
use std::hash::BuildHasher;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};
use inotify::WatchMask;

/// No watch descriptor: the kernel hands out descriptors from 1.
const NONE: i32 = 0;

/// The most folders a path is followed up through; a longer chain is a corrupt table.
const MAX_DEPTH: usize = 4096;

/// One folder watched.
#[derive(Debug)]
pub(super) struct Folder {
    /// The folder it was reached through ([`NONE`]: none, and `name` is its whole path).
    parent: i32,
    name: Arc<OsStr>,
    /// Its inode (0: not known), to tell it from another folder put at its path since.
    pub ino: u64,
    /// Whether folders created below it are watched too.
    pub recursive: bool,
    /// Whether it is a root (its own deletion is a change).
    pub root: bool,
}

/// The watches held, shared by the thread reading events and the watcher's calls.
#[derive(Debug)]
pub(super) struct Tree {
    fd: Arc<OwnedFd>,
    folders: HashMap<i32, Folder>,
    /// Each folder with a parent, found by (parent, name).
    children: HashTable<i32>,
    /// Each folder without one, by its whole path.
    tops: HashMap<PathBuf, i32>,
    /// Every name a folder bears, once.
    names: HashSet<Arc<OsStr>>,
    /// foldhash, seeded per table (the walk hashes the place of every folder it watches).
    hasher: DefaultHashBuilder,
}

/// Adds (or updates) the watch of the folder `dir` on the inotify instance `fd`.
///
/// # Errors
/// As `inotify_add_watch(2)`: the folder is gone, the watch limit is reached.
pub(super) fn add_watch(fd: &OwnedFd, dir: &Path, mask: WatchMask) -> io::Result<i32> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `fd` is an open descriptor and `path` a NUL-terminated string that outlives
    // the call.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask.bits()) };
    if wd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(wd)
    }
}

/// Where the folder named `name` in the folder `parent` sits in the index of children.
fn place_hash(hasher: &DefaultHashBuilder, parent: i32, name: &OsStr) -> u64 {
    hasher.hash_one((parent, name.as_bytes()))
}

impl Tree {
    /// An empty table of the watches of the inotify instance `fd`.
    pub(super) fn new(fd: Arc<OwnedFd>) -> Tree {
        Tree {
            fd,
            folders: HashMap::new(),
            children: HashTable::new(),
            tops: HashMap::new(),
            names: HashSet::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The inotify instance.
    pub(super) fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// The folder watched by `wd`.
    pub(super) fn folder(&self, wd: i32) -> Option<&Folder> {
        self.folders.get(&wd)
    }

    /// The folder named `name` in the folder `parent`.
    fn child(&self, parent: i32, name: &OsStr) -> Option<i32> {
        let h = place_hash(&self.hasher, parent, name);
        self.children
            .find(h, |c| {
                self.folders
                    .get(c)
                    .is_some_and(|f| f.parent == parent && *f.name == *name)
            })
            .copied()
    }

    /// The watch descriptor of the folder at `path`, as last noted.
    pub(super) fn find(&self, path: &Path) -> Option<i32> {
        let (top, wd) = path
            .ancestors()
            .find_map(|a| self.tops.get(a).map(|&wd| (a, wd)))?;
        let rest = path.strip_prefix(top).ok()?;
        rest.components().try_fold(wd, |wd, c| match c {
            Component::Normal(name) => self.child(wd, name),
            _ => None,
        })
    }

    /// The path of the folder `wd`, as last noted.
    pub(super) fn path(&self, wd: i32) -> Option<PathBuf> {
        let mut names = Vec::new();
        let mut at = wd;
        for _ in 0..MAX_DEPTH {
            let f = self.folders.get(&at)?;
            names.push(&*f.name);
            if f.parent == NONE {
                let mut path = PathBuf::with_capacity(names.iter().map(|n| n.len() + 1).sum());
                path.extend(names.iter().rev());
                return Some(path);
            }
            at = f.parent;
        }
        None
    }

    /// Records the watch `wd` of the folder at `path`, reached from the folder `parent`
    /// (`None`: found by its path). The same folder reached by a second path keeps one
    /// descriptor: the last path wins.
    pub(super) fn note(
        &mut self,
        wd: i32,
        parent: Option<i32>,
        path: &Path,
        ino: u64,
        recursive: bool,
        root: bool,
    ) {
        let parent = if root {
            NONE
        } else {
            parent
                .or_else(|| path.parent().and_then(|p| self.find(p)))
                .filter(|&p| p != wd)
                .unwrap_or(NONE)
        };
        let name = self.intern(match path.file_name() {
            Some(n) if parent != NONE => n,
            _ => path.as_os_str(),
        });
        self.forget(wd);
        // Whatever was found at that place before is found there no more.
        if parent == NONE {
            self.tops.insert(path.to_path_buf(), wd);
        } else {
            let h = place_hash(&self.hasher, parent, &name);
            match self.child(parent, &name) {
                Some(before) => {
                    if let Ok(mut e) = self.children.find_entry(h, |&c| c == before) {
                        *e.get_mut() = wd;
                    }
                }
                None => {
                    let Tree {
                        folders,
                        children,
                        hasher,
                        ..
                    } = self;
                    children.insert_unique(h, wd, |c| {
                        folders
                            .get(c)
                            .map_or(0, |f| place_hash(hasher, f.parent, &f.name))
                    });
                }
            }
        }
        self.folders.insert(
            wd,
            Folder {
                parent,
                name,
                ino,
                recursive,
                root,
            },
        );
    }

    /// Forgets the folder `wd` (its watch dropped, or about to be noted anew) and where it
    /// is found, if it is still found there.
    pub(super) fn forget(&mut self, wd: i32) {
        let Some(f) = self.folders.remove(&wd) else {
            return;
        };
        if f.parent == NONE {
            if self.tops.get(Path::new(&f.name)) == Some(&wd) {
                self.tops.remove(Path::new(&f.name));
            }
        } else {
            let h = place_hash(&self.hasher, f.parent, &f.name);
            if let Ok(e) = self.children.find_entry(h, |&c| c == wd) {
                e.remove();
            }
        }
        // The set's reference and this one: no other folder bears the name.
        if Arc::strong_count(&f.name) == 2 {
            self.names.remove(&*f.name);
        }
    }

    /// The name `name`, shared with the folders that bear it already.
    fn intern(&mut self, name: &OsStr) -> Arc<OsStr> {
        if let Some(n) = self.names.get(name) {
            return Arc::clone(n);
        }
        let n: Arc<OsStr> = Arc::from(name);
        self.names.insert(Arc::clone(&n));
        n
    }

    /// Drops the watches of a folder gone from `dir` (renamed away or deleted), unless
    /// the folder watched at `dir` is still there (another one was swapped away).
    pub(super) fn gone(&mut self, dir: &Path) {
        let here = std::fs::symlink_metadata(dir).ok().filter(|m| m.is_dir());
        let watched = self.find(dir).and_then(|wd| self.folders.get(&wd));
        if let (Some(m), Some(f)) = (here, watched)
            && f.ino != 0
            && f.ino == m.ino()
        {
            return;
        }
        self.remove(dir, true);
    }

    /// Whether the folder `wd` lies below `dir` (watched as `dir_wd`).
    fn lies_below(&self, wd: i32, dir: &Path, dir_wd: Option<i32>) -> bool {
        let mut at = wd;
        for _ in 0..MAX_DEPTH {
            let Some(f) = self.folders.get(&at) else {
                return false;
            };
            if f.parent == NONE {
                let top = Path::new(&f.name);
                // A top above `dir` holds folders below it only through `dir`'s own path.
                return top.starts_with(dir)
                    || (dir.starts_with(top) && self.path(wd).is_some_and(|p| p.starts_with(dir)));
            }
            if Some(f.parent) == dir_wd {
                return true;
            }
            at = f.parent;
        }
        false
    }

    /// Drops the watches of `dir` and, with `below`, of every folder below it but the
    /// roots watched on their own.
    pub(super) fn remove(&mut self, dir: &Path, below: bool) {
        let dir_wd = self.find(dir);
        let mut gone: Vec<i32> = dir_wd.into_iter().collect();
        if below {
            gone.extend(self.folders.iter().filter_map(|(&wd, f)| {
                (Some(wd) != dir_wd && !f.root && self.lies_below(wd, dir, dir_wd)).then_some(wd)
            }));
        }
        for wd in gone {
            self.forget(wd);
            // SAFETY: `fd` is an open descriptor; a descriptor the kernel has dropped
            // already only makes the call fail.
            unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;

    use super::*;

    fn tree() -> Tree {
        // SAFETY: inotify_init1 has no preconditions; the descriptor it returns is owned here.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Tree::new(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A table watching a new temporary folder as a root.
    fn rooted() -> (tempfile::TempDir, Tree, i32) {
        let dir = tempfile::tempdir().unwrap();
        let mut t = tree();
        let root = watch(&mut t, dir.path(), None, true);
        (dir, t, root)
    }

    /// Watches `path` (made if needed) as the walk would, from `parent`.
    fn watch(t: &mut Tree, path: &Path, parent: Option<i32>, root: bool) -> i32 {
        std::fs::create_dir_all(path).unwrap();
        let wd = add_watch(&Arc::clone(t.fd()), path, WatchMask::CREATE).unwrap();
        let ino = std::fs::metadata(path).unwrap().ino();
        t.note(wd, parent, path, ino, true, root);
        wd
    }

    #[test]
    fn folders_are_found_by_path_and_give_their_path() {
        let (dir, mut t, root) = rooted();
        let a = watch(&mut t, &dir.path().join("a"), Some(root), false);
        let b = watch(&mut t, &dir.path().join("a/b"), Some(a), false);
        // Found by its path alone, as a folder created below a watched one is.
        let c = watch(&mut t, &dir.path().join("a/b/c"), None, false);
        for (wd, rel) in [(root, ""), (a, "a"), (b, "a/b"), (c, "a/b/c")] {
            let path = dir.path().join(rel);
            assert_eq!(t.find(&path), Some(wd), "{rel}");
            assert_eq!(t.path(wd).as_deref(), Some(path.as_path()), "{rel}");
        }
        assert_eq!(t.find(&dir.path().join("a/x")), None);
        assert_eq!(t.find(Path::new("/")), None);
        assert!(t.folder(c).is_some_and(|f| !f.root && f.recursive));
    }

    #[test]
    fn removing_a_folder_drops_every_folder_below_it_but_roots() {
        let (dir, mut t, root) = rooted();
        let a = watch(&mut t, &dir.path().join("a"), Some(root), false);
        let b = watch(&mut t, &dir.path().join("a/b"), Some(a), false);
        let own = watch(&mut t, &dir.path().join("a/own"), None, true);
        let below_own = watch(&mut t, &dir.path().join("a/own/x"), Some(own), false);
        let other = watch(&mut t, &dir.path().join("ab"), Some(root), false);
        t.remove(&dir.path().join("a"), true);
        assert_eq!(t.find(&dir.path().join("a")), None);
        assert!(t.folder(a).is_none() && t.folder(b).is_none());
        assert!(t.folder(own).is_some(), "a root below stays");
        assert!(
            t.folder(below_own).is_none(),
            "as before: only roots are kept"
        );
        assert_eq!(t.find(&dir.path().join("ab")), Some(other));
        assert_eq!(t.find(dir.path()), Some(root));
        // Without `below`, only the folder itself goes.
        t.remove(dir.path(), false);
        assert!(t.folder(root).is_none());
        assert!(t.folder(other).is_some());
    }

    #[test]
    fn the_last_path_a_folder_is_reached_by_wins() {
        let (dir, mut t, root) = rooted();
        let real = watch(&mut t, &dir.path().join("real"), Some(root), false);
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        // The kernel gives the same folder the same descriptor.
        let again = watch(&mut t, &dir.path().join("link"), Some(root), false);
        assert_eq!(again, real);
        assert_eq!(t.find(&dir.path().join("link")), Some(real));
        assert_eq!(t.find(&dir.path().join("real")), None);
        assert_eq!(t.path(real), Some(dir.path().join("link")));
        t.forget(real);
        assert_eq!(t.find(&dir.path().join("link")), None);
        assert_eq!(t.path(real), None);
    }

    #[test]
    fn a_folder_put_where_another_was_replaces_it() {
        let (dir, mut t, root) = rooted();
        let old = watch(&mut t, &dir.path().join("a"), Some(root), false);
        std::fs::rename(dir.path().join("a"), dir.path().join("gone")).unwrap();
        let new = watch(&mut t, &dir.path().join("a"), Some(root), false);
        assert_ne!(old, new);
        assert_eq!(t.find(&dir.path().join("a")), Some(new));
        // The old folder keeps its record until its watch goes, but is not found there.
        t.forget(old);
        assert_eq!(t.find(&dir.path().join("a")), Some(new));
    }

    #[test]
    fn a_name_is_held_once_while_a_folder_bears_it() {
        let (dir, mut t, root) = rooted();
        let a = watch(&mut t, &dir.path().join("a"), Some(root), false);
        let b = watch(&mut t, &dir.path().join("b"), Some(root), false);
        let a_refs = watch(&mut t, &dir.path().join("a/refs"), Some(a), false);
        let b_refs = watch(&mut t, &dir.path().join("b/refs"), Some(b), false);
        let held = |t: &Tree, n: &str| t.names.contains(OsStr::new(n));
        let name = |t: &Tree, wd| Arc::clone(&t.folder(wd).unwrap().name);
        assert!(Arc::ptr_eq(&name(&t, a_refs), &name(&t, b_refs)));
        // The root's whole path, `a`, `b` and `refs`.
        assert_eq!(t.names.len(), 4);
        t.remove(&dir.path().join("a/refs"), true);
        assert!(held(&t, "refs"), "b/refs still bears it");
        assert_eq!(t.find(&dir.path().join("b/refs")), Some(b_refs));
        t.remove(&dir.path().join("b"), true);
        assert!(!held(&t, "refs") && !held(&t, "b"));
        assert!(held(&t, "a"));
        // Noted again under the same name, a folder keeps it held.
        let again = watch(&mut t, &dir.path().join("a"), Some(root), false);
        assert_eq!(again, a);
        assert!(held(&t, "a"));
        assert_eq!(t.names.len(), 2);
    }
}

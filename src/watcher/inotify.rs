//! Kernel events on Linux: one inotify instance, read by a thread of its own, watching
//! each folder below a recursive root.
//!
//! notify's recursive watch walks a root with `walkdir` and stats every entry to find the
//! folders, then sends one message to its event thread per watch; on 100,000 files in
//! 20,200 folders that took 0.56 s on a quiet machine. This walk reads each folder's
//! entries with their types (no stat but for symbolic links) and adds the watches itself:
//! 0.23 s for the same tree. The watch of a folder is added before its entries are read,
//! so nothing created meanwhile is missed.
//!
//! Below a recursive root, a folder created or renamed into place is watched (with
//! everything in it) before its hint is sent; a folder renamed away or deleted drops its
//! watches, so no event is ever reported under a path it no longer has. A root's own
//! deletion or move is a removal of the root. A kernel queue overflow raises
//! [`Overflow`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::mpsc;

use super::{Depth, Hint, Overflow, Stage, WatchError, count};
use crate::transient::is_transient;

/// What every folder is watched for; a root also for its own deletion or move.
const MASK: WatchMask = WatchMask::ATTRIB
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::MODIFY)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO);
const ROOT_MASK: WatchMask = MASK
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF);

/// The watches held: each folder's descriptor, and back. Shared by the thread reading
/// events and the watcher's calls, behind one lock.
struct Tree {
    watches: Watches,
    folders: HashMap<WatchDescriptor, Folder>,
    by_path: HashMap<Arc<Path>, WatchDescriptor>,
}

struct Folder {
    path: Arc<Path>,
    /// Its inode (0: not known), to tell it from another folder put at its path since.
    ino: u64,
    /// Whether folders created below it are watched too.
    recursive: bool,
    /// Whether it is a root (its own deletion is a change).
    root: bool,
}

/// The Linux kernel watcher; dropping it stops its thread.
pub(super) struct Kernel {
    tree: Arc<Mutex<Tree>>,
    /// Written to wake the thread when stopping.
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

fn lock(tree: &Mutex<Tree>) -> MutexGuard<'_, Tree> {
    tree.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tree {
    /// Watches `dir` (and, when `recursive`, every folder below it, following symbolic
    /// links to folders once). Folders that vanish meanwhile are skipped.
    ///
    /// # Errors
    /// A watch cannot be added (the limit, permissions).
    fn add(&mut self, dir: &Path, recursive: bool, root: bool) -> io::Result<()> {
        let ino = std::fs::metadata(dir).map_or(0, |m| m.ino());
        let mut pending = vec![(dir.to_path_buf(), ino)];
        let mut first = true;
        while let Some((d, ino)) = pending.pop() {
            let is_root = root && std::mem::take(&mut first);
            match self.watch_one(&d, ino, recursive, is_root) {
                Ok(()) => {}
                Err(e) if d != dir && vanished(&e) => continue,
                Err(e) => return Err(e),
            }
            if !recursive {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(t) = e.file_type() else { continue };
                let path = e.path();
                if is_transient(&path) {
                    continue;
                }
                if t.is_dir() {
                    pending.push((path, e.ino()));
                } else if t.is_symlink() && links_to_new_folder(&path) {
                    pending.push((path, 0));
                }
            }
        }
        Ok(())
    }

    fn watch_one(&mut self, dir: &Path, ino: u64, recursive: bool, root: bool) -> io::Result<()> {
        let mask = if root { ROOT_MASK } else { MASK };
        let wd = self.watches.add(dir, mask)?;
        let path: Arc<Path> = Arc::from(dir);
        // The same folder reached by a second path keeps one descriptor: the last path wins.
        if let Some(old) = self.folders.insert(
            wd.clone(),
            Folder {
                path: Arc::clone(&path),
                ino,
                recursive,
                root,
            },
        ) && old.path != path
            && self.by_path.get(&old.path) == Some(&wd)
        {
            self.by_path.remove(&old.path);
        }
        self.by_path.insert(path, wd);
        Ok(())
    }

    /// Drops the watches of a folder gone from `dir` (renamed away or deleted), unless
    /// the folder watched at `dir` is still there (another one was swapped away).
    fn gone(&mut self, dir: &Path) {
        let here = std::fs::symlink_metadata(dir).ok().filter(|m| m.is_dir());
        let watched = self.by_path.get(dir).and_then(|wd| self.folders.get(wd));
        if let (Some(m), Some(f)) = (here, watched)
            && f.ino != 0
            && f.ino == m.ino()
        {
            return;
        }
        self.remove(dir, true);
    }

    /// Drops the watches of `dir` and, with `below`, of every folder below it but the
    /// roots watched on their own.
    fn remove(&mut self, dir: &Path, below: bool) {
        let gone: Vec<(Arc<Path>, WatchDescriptor)> = if below {
            self.by_path
                .iter()
                .filter(|(p, wd)| {
                    &***p == dir
                        || (p.starts_with(dir) && !self.folders.get(*wd).is_some_and(|f| f.root))
                })
                .map(|(p, wd)| (Arc::clone(p), wd.clone()))
                .collect()
        } else {
            self.by_path
                .get_key_value(dir)
                .map(|(p, wd)| (Arc::clone(p), wd.clone()))
                .into_iter()
                .collect()
        };
        for (p, wd) in gone {
            self.by_path.remove(&p);
            self.folders.remove(&wd);
            let _ = self.watches.remove(wd);
        }
    }
}

/// Whether a watch failed because its folder is gone (or no longer a folder).
fn vanished(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

/// Whether the symbolic link at `path` leads to a folder that is not one of its own
/// ancestors (a loop).
fn links_to_new_folder(path: &Path) -> bool {
    let Ok(target) = std::fs::metadata(path) else {
        return false;
    };
    target.is_dir()
        && !path.ancestors().skip(1).any(|a| {
            std::fs::metadata(a).is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
}

impl Kernel {
    /// Starts the inotify instance and its reading thread.
    ///
    /// # Errors
    /// inotify cannot be initialised (the instance limit), or the thread cannot start.
    pub(super) fn start(tx: mpsc::Sender<Hint>, overflow: Arc<Overflow>) -> io::Result<Kernel> {
        let inotify = Inotify::init()?;
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and owned by nothing else.
        let (read, wake) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let tree = Arc::new(Mutex::new(Tree {
            watches: inotify.watches(),
            folders: HashMap::new(),
            by_path: HashMap::new(),
        }));
        let reader = Reader {
            tree: Arc::clone(&tree),
            inotify,
            wake: read,
            tx,
            overflow,
        };
        let thread = std::thread::Builder::new()
            .name("skillmeatd-inotify".into())
            .spawn(move || reader.run())?;
        Ok(Kernel {
            tree,
            wake,
            thread: Some(thread),
        })
    }

    /// Watches `root` (for [`Depth::Recursive`], with every folder below it).
    ///
    /// # Errors
    /// The watch limit is exhausted, or a folder cannot be watched; nothing of `root` is
    /// left watched then.
    pub(super) fn watch(&mut self, root: &Path, depth: Depth) -> Result<(), WatchError> {
        let mut tree = lock(&self.tree);
        tree.add(root, depth == Depth::Recursive, true)
            .map_err(|e| {
                tree.remove(root, true);
                if e.raw_os_error() == Some(libc::ENOSPC) {
                    WatchError::Limit
                } else {
                    WatchError::Other(e.to_string())
                }
            })
    }

    /// Stops watching `root` (watched with `depth`).
    pub(super) fn unwatch(&mut self, root: &Path, depth: Depth) {
        lock(&self.tree).remove(root, depth == Depth::Recursive);
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // SAFETY: writes one byte from a valid buffer to the pipe this watcher owns.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reading thread's side; it ends once its `wake` pipe is written to.
struct Reader {
    tree: Arc<Mutex<Tree>>,
    inotify: Inotify,
    wake: OwnedFd,
    tx: mpsc::Sender<Hint>,
    overflow: Arc<Overflow>,
}

impl Reader {
    fn run(mut self) {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.inotify.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the call's duration.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    // Out of memory, say: events may be lost meanwhile; try again shortly.
                    tracing::error!(error = %e, "cannot wait for file events; reconciling");
                    self.overflow.raise();
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                continue;
            }
            if fds[1].revents != 0 {
                // The watcher is stopping.
                return;
            }
            if fds[0].revents != 0 {
                self.read(&mut buffer);
            }
        }
    }

    /// Reads every event waiting and sends their hints.
    fn read(&mut self, buffer: &mut [u8]) {
        loop {
            let mut hints: Vec<Hint> = Vec::new();
            match self.inotify.read_events(buffer) {
                Ok(events) => {
                    let mut tree = lock(&self.tree);
                    let mut moved = Moved::default();
                    for e in events {
                        if let Some((path, stage)) =
                            self.event(&mut tree, &mut moved, e.wd, e.mask, e.name)
                        {
                            push(&mut hints, path, stage);
                        }
                    }
                    self.apply(&mut tree, moved);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read file events; reconciling");
                    self.overflow.raise();
                    return;
                }
            }
            for h in hints {
                if self.tx.try_send(h).is_err() {
                    self.overflow.raise();
                }
            }
        }
    }

    /// Drops the watches of the folders gone, then watches the folders come: a folder
    /// swapped with another (`RENAME_EXCHANGE`) reports its arrival before the other's
    /// departure from the same path, and must end up watched.
    fn apply(&self, tree: &mut Tree, moved: Moved) {
        if moved.gone.is_empty() && moved.came.is_empty() {
            return;
        }
        for p in &moved.gone {
            tree.gone(p);
        }
        for p in &moved.came {
            if let Err(e) = tree.add(p, true, false)
                && !vanished(&e)
            {
                tracing::warn!(folder = %p.display(), error = %e, "cannot watch a new folder; reconciling");
                self.overflow.raise();
            }
        }
        count::changed();
    }

    /// One event: notes the folders gone and come (below recursive roots), and returns
    /// the path and stage of the change it reports.
    fn event(
        &self,
        tree: &mut Tree,
        moved: &mut Moved,
        wd: WatchDescriptor,
        mask: EventMask,
        name: Option<&OsStr>,
    ) -> Option<(PathBuf, Stage)> {
        if mask.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("the kernel dropped file events; reconciling");
            self.overflow.raise();
            return None;
        }
        let folder = tree.folders.get(&wd)?;
        let (recursive, root) = (folder.recursive, folder.root);
        let path = match name {
            Some(n) => folder.path.join(n),
            None => folder.path.to_path_buf(),
        };
        if mask.contains(EventMask::IGNORED) {
            if let Some(f) = tree.folders.remove(&wd)
                && tree.by_path.get(&f.path) == Some(&wd)
            {
                tree.by_path.remove(&f.path);
            }
            count::changed();
            return None;
        }
        if mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
            // A folder below a root reports its own end through its parent.
            return root.then_some((path, Stage::Removed));
        }
        if mask.contains(EventMask::ISDIR) {
            if mask.intersects(EventMask::MOVED_FROM | EventMask::DELETE) {
                moved.gone.push(path.clone());
            }
            if recursive
                && mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
                && !is_transient(&path)
            {
                moved.came.push(path.clone());
            }
        }
        if is_transient(&path) {
            return None;
        }
        Some((path, stage(mask)?))
    }
}

/// The folders one read of events saw go and come.
#[derive(Default)]
struct Moved {
    gone: Vec<PathBuf>,
    came: Vec<PathBuf>,
}

/// How far along the change an event reports is; `None` for events that change nothing.
fn stage(mask: EventMask) -> Option<Stage> {
    Some(
        if mask.intersects(EventMask::CLOSE_WRITE | EventMask::MOVED_TO) {
            Stage::Complete
        } else if mask.intersects(EventMask::MOVED_FROM | EventMask::DELETE) {
            Stage::Removed
        } else if mask.contains(EventMask::ATTRIB) {
            Stage::Attributes
        } else if mask.intersects(EventMask::CREATE | EventMask::MODIFY) {
            Stage::Writing
        } else {
            return None;
        },
    )
}

/// Adds a change to `hints`, joining the last hint when it has the same stage (the order
/// of changes is kept).
fn push(hints: &mut Vec<Hint>, path: PathBuf, stage: Stage) {
    match hints.last_mut() {
        Some(h) if h.stage == stage => h.paths.push(path),
        _ => hints.push(Hint {
            paths: vec![path],
            stage,
        }),
    }
}

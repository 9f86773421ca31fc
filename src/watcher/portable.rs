//! Kernel events where inotify is not used (macOS's FSEvents, the BSDs' kqueue): notify's
//! recommended watcher, its callbacks turned into hints on notify's threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::{Depth, Hint, Listed, Overflow, Stage, WatchError, count};
use crate::hash::scan::Scan;
use crate::transient::is_transient;

/// notify's recommended watcher.
pub(super) struct Kernel(notify::RecommendedWatcher);

impl Kernel {
    /// Starts notify's watcher.
    ///
    /// # Errors
    /// notify cannot start it.
    pub(super) fn start(
        tx: mpsc::Sender<Hint>,
        overflow: Arc<Overflow>,
    ) -> Result<Kernel, notify::Error> {
        notify::recommended_watcher(handler(tx, overflow)).map(Kernel)
    }

    /// Watches each of `roots`, returning each one's outcome in order; notify's walks
    /// leave no listings behind, so each root watched is handed to `listed` with an empty
    /// scan and the hash walks read the disk.
    pub(super) fn watch_all(
        &mut self,
        roots: &[(PathBuf, Depth)],
        listed: Option<Listed<'_>>,
    ) -> Vec<Result<(), WatchError>> {
        roots
            .iter()
            .map(|(r, d)| {
                let watched = self.watch(r, *d);
                if let (Ok(()), Some(listed)) = (&watched, listed) {
                    listed(r, Scan::new());
                }
                watched
            })
            .collect()
    }

    /// Watches `root`.
    ///
    /// # Errors
    /// The watch limit is exhausted, or `root` cannot be watched; nothing of it is left
    /// watched then.
    pub(super) fn watch(&mut self, root: &Path, depth: Depth) -> Result<(), WatchError> {
        let mode = match depth {
            Depth::Flat => RecursiveMode::NonRecursive,
            Depth::Recursive => RecursiveMode::Recursive,
        };
        self.0.watch(root, mode).map_err(|e| {
            let _ = self.0.unwatch(root);
            if is_limit(&e) {
                WatchError::Limit
            } else {
                WatchError::Other(e.to_string())
            }
        })
    }

    /// Stops watching `root`.
    pub(super) fn unwatch(&mut self, root: &Path, _depth: Depth) {
        let _ = self.0.unwatch(root);
    }
}

/// The stage of a notify event, `None` for events that change nothing (reads, opens, and
/// the paired rename event whose halves come on their own).
fn stage(kind: &EventKind) -> Option<Stage> {
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    Some(match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Stage::Complete,
        EventKind::Access(_) => return None,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Stage::Complete,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return None,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
            Stage::Removed
        }
        EventKind::Modify(ModifyKind::Metadata(_)) => Stage::Attributes,
        _ => Stage::Writing,
    })
}

fn handler(
    tx: mpsc::Sender<Hint>,
    overflow: Arc<Overflow>,
) -> impl Fn(notify::Result<notify::Event>) + Send + 'static {
    move |res: notify::Result<notify::Event>| match res {
        Ok(event) => {
            if count::moves_watches(&event.kind) {
                count::changed();
            }
            if event.need_rescan() {
                tracing::warn!("the kernel dropped file events; reconciling");
                overflow.raise();
                return;
            }
            let Some(stage) = stage(&event.kind) else {
                return;
            };
            let paths: Vec<PathBuf> = event
                .paths
                .into_iter()
                .filter(|p| !is_transient(p))
                .collect();
            if paths.is_empty() {
                return;
            }
            if tx.try_send(Hint { paths, stage }).is_err() {
                overflow.raise();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "file watcher error; reconciling");
            overflow.raise();
        }
    }
}

fn is_limit(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => io.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    }
}

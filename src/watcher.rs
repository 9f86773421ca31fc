//! Kernel file events turned into change hints, with polling as the fallback.
//!
//! The watcher owns the kernel watcher and the set of watched roots: on Linux our own
//! inotify reader (`inotify`: one walk finds the folders and watches them, without
//! notify's stat of every file), elsewhere notify's recommended watcher (`portable`).
//! Either runs on a thread of its own and only `try_send`s [`Hint`]s into a bounded queue:
//! when the queue is full, or the kernel's own queue overflowed, a shared [`Overflow`]
//! flag is raised instead and the live loop reconciles everything — events are hints,
//! never the truth, and overflow is never silent.
//!
//! A root whose watch cannot be added because the inotify watch limit is exhausted
//! (ENOSPC / `MaxFilesWatch`) is polled instead; [`Watcher::polled`] says which and why.
//! The poller is ours, not notify's `PollWatcher`: that one compares modification times in
//! whole seconds and ignores sizes, so two saves within a second look like none. Ours
//! compares size, inode, and nanosecond mtime and ctime of every entry.
//!
//! Names of transient files (SkillMeat's and the daemon's own) are skipped as
//! [`crate::transient`] defines them. The live worker owns the one watcher and sets its
//! roots on each batch; sync barriers ask the poller for a walk now through a [`PollNow`]
//! handle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::hash::scan::Scan;
use crate::transient::is_transient;

pub mod count;
#[cfg(target_os = "linux")]
mod inotify;
// Built everywhere, so Linux builds check it and its tests run here; used elsewhere.
#[cfg_attr(target_os = "linux", allow(dead_code))]
mod portable;

#[cfg(target_os = "linux")]
use inotify::Kernel;
#[cfg(not(target_os = "linux"))]
use portable::Kernel;

/// Where a walk hands each root it watched, with the listings it read of its folders.
pub type Listed<'a> = &'a (dyn Fn(&Path, Scan) + Sync);

/// Why a root cannot be watched by kernel events.
#[derive(Debug)]
enum WatchError {
    /// The inotify watch limit is exhausted.
    Limit,
    Other(String),
}

/// The sysctl that raises the inotify watch limit.
pub const WATCH_LIMIT_FIX: &str =
    "sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/)";

/// Environment variable that makes every kernel watch fail as if the watch limit were
/// exhausted (fault injection for tests of the polling fallback).
pub const FAULT_WATCH_LIMIT: &str = "SKILLMEATD_FAULT_WATCH_LIMIT";

/// A change hint: paths, and how far along the change they report is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub paths: Vec<PathBuf>,
    pub stage: Stage,
}

/// How far along a change is, as its kernel event tells. The live task processes a batch
/// at once when every change in it is complete, and lets the others settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Closed after writing, or renamed into place: the content is final (for a folder
    /// renamed into place, everything below it too).
    Complete,
    /// Only attributes changed (mode, times): final unless a save of the path is under way.
    Attributes,
    /// Created, written but not yet closed, truncated, or seen changed by the poller: a
    /// save may be under way.
    Writing,
    /// Deleted or renamed away: perhaps the first half of a delete-then-create save.
    Removed,
}

/// Raised when hints were lost; the live loop answers with a full reconcile.
#[derive(Debug, Default)]
pub struct Overflow {
    raised: AtomicBool,
    pub notify: Notify,
}

impl Overflow {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Lowers the flag, saying whether it was raised.
    pub fn take(&self) -> bool {
        self.raised.swap(false, Ordering::SeqCst)
    }
}

/// One watched root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// The folder's own entries only.
    Flat,
    /// Everything below.
    Recursive,
}

/// The kernel watcher, the poller, and what they watch.
pub struct Watcher {
    kernel: Option<Kernel>,
    poll: Poller,
    roots: BTreeMap<PathBuf, Depth>,
    polled: BTreeMap<PathBuf, String>,
    force_polling: bool,
    fault_limit: bool,
    tx: mpsc::Sender<Hint>,
    overflow: Arc<Overflow>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("roots", &self.roots)
            .field("polled", &self.polled)
            .finish()
    }
}

fn kernel_watcher(tx: &mpsc::Sender<Hint>, overflow: &Arc<Overflow>) -> Option<Kernel> {
    match Kernel::start(tx.clone(), Arc::clone(overflow)) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(error = %e, "no kernel file events; polling every root");
            None
        }
    }
}

impl Watcher {
    /// A watcher sending hints to `tx`. It always exists: without kernel events every root
    /// is polled, and without the polling thread the live task's periodic reconcile still
    /// catches every change (both are logged).
    pub fn new(
        tx: mpsc::Sender<Hint>,
        overflow: Arc<Overflow>,
        force_polling: bool,
        poll_interval: Duration,
    ) -> Watcher {
        let kernel = if force_polling {
            None
        } else {
            kernel_watcher(&tx, &overflow)
        };
        let poll = Poller::start(tx.clone(), Arc::clone(&overflow), poll_interval);
        Watcher {
            kernel,
            poll,
            roots: BTreeMap::new(),
            polled: BTreeMap::new(),
            force_polling,
            fault_limit: std::env::var_os(FAULT_WATCH_LIMIT).is_some_and(|v| v == "1"),
            tx,
            overflow,
        }
    }

    /// Whether every root is polled by configuration.
    pub fn force_polling(&self) -> bool {
        self.force_polling
    }

    /// Changes how often polled roots are checked, from the next check on.
    pub fn set_poll_interval(&self, interval: Duration) {
        self.poll.set_interval(interval);
    }

    /// Switches between polling every root and kernel events. Every root is dropped, so
    /// the next [`Watcher::set_roots`] watches them all afresh the new way (and reports
    /// them as newly watched, so their content is rescanned).
    pub fn set_force_polling(&mut self, force: bool) {
        if force == self.force_polling {
            return;
        }
        let roots: Vec<PathBuf> = self.roots.keys().cloned().collect();
        for p in roots {
            self.unwatch(&p);
        }
        self.force_polling = force;
        count::changed();
        self.kernel = if force {
            None
        } else {
            kernel_watcher(&self.tx, &self.overflow)
        };
    }

    /// Roots watched by polling, with the reason.
    pub fn polled(&self) -> &BTreeMap<PathBuf, String> {
        &self.polled
    }

    /// Watched roots.
    pub fn roots(&self) -> &BTreeMap<PathBuf, Depth> {
        &self.roots
    }

    /// A handle that asks for a walk of the polled roots now (for sync barriers).
    pub fn poll_now(&self) -> PollNow {
        PollNow {
            markers: Arc::clone(&self.poll.markers),
            thread: self.poll.thread.as_ref().map(|t| t.thread().clone()),
            overflow: Arc::clone(&self.overflow),
        }
    }

    /// Makes the watched set equal `wanted`. Returns the roots newly watched (their content
    /// may have changed before the watch existed: the caller rescans them) and, for roots
    /// that fell back to polling, the reason. With a `scan`, the listings of the folders
    /// below the recursive roots newly watched by kernel events are recorded there, each
    /// read after its folder's watch was added.
    pub fn set_roots(
        &mut self,
        wanted: &BTreeMap<PathBuf, Depth>,
        scan: Option<&mut Scan>,
    ) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
        let Some(scan) = scan else {
            return self.set_roots_listed(wanted, None);
        };
        let whole = std::sync::Mutex::new(Scan::new());
        let outcome = self.set_roots_listed(
            wanted,
            Some(&|_: &Path, listed: Scan| {
                whole.lock().expect("scan lock poisoned").absorb(listed);
            }),
        );
        scan.absorb(whole.into_inner().expect("scan lock poisoned"));
        outcome
    }

    /// The roots of `wanted` that [`Watcher::set_roots`] would watch anew: those not
    /// watched yet (or with another depth) that exist.
    pub fn to_watch(&self, wanted: &BTreeMap<PathBuf, Depth>) -> Vec<(PathBuf, Depth)> {
        wanted
            .iter()
            .filter(|(p, d)| self.roots.get(*p) != Some(d) && p.exists())
            .map(|(p, d)| (p.clone(), *d))
            .collect()
    }

    /// [`Watcher::set_roots`], handing each root newly watched by kernel events to
    /// `listed` as soon as its walk is done, with the listings of its folders (empty for a
    /// flat root), on the walking thread: the root is watched by then, so what is read
    /// of it afterwards misses no change. A root that falls back to polling is not handed
    /// over.
    pub fn set_roots_listed(
        &mut self,
        wanted: &BTreeMap<PathBuf, Depth>,
        listed: Option<Listed<'_>>,
    ) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
        let stale: Vec<PathBuf> = self
            .roots
            .iter()
            .filter(|(p, d)| wanted.get(*p) != Some(d))
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            self.unwatch(&p);
        }
        let new = self.to_watch(wanted);
        let reasons: Vec<Option<String>> = match (&mut self.kernel, self.force_polling) {
            (_, true) => vec![
                Some("polling is forced by configuration (watch.force_polling)".to_string());
                new.len()
            ],
            (None, _) => vec![Some("kernel file events are unavailable".to_string()); new.len()],
            (Some(_), _) if self.fault_limit => vec![
                Some(format!(
                    "the inotify watch limit is exhausted (simulated by {FAULT_WATCH_LIMIT}); raise it: {WATCH_LIMIT_FIX}"
                ));
                new.len()
            ],
            (Some(k), _) => k
                .watch_all(&new, listed)
                .into_iter()
                .zip(&new)
                .map(|(outcome, (path, _))| match outcome {
                    Ok(()) => None,
                    Err(WatchError::Limit) => Some(format!(
                        "the inotify watch limit is exhausted; raise it: {WATCH_LIMIT_FIX}"
                    )),
                    Err(WatchError::Other(e)) => {
                        tracing::warn!(root = %path.display(), error = %e, "cannot watch; polling it");
                        Some(format!("kernel watch failed: {e}"))
                    }
                })
                .collect(),
        };
        let mut added = Vec::new();
        let mut fell_back = Vec::new();
        for ((path, depth), reason) in new.into_iter().zip(reasons) {
            count::changed();
            if let Some(reason) = reason {
                self.poll.watch(&path, depth);
                self.polled.insert(path.clone(), reason.clone());
                fell_back.push((path.clone(), reason));
            }
            self.roots.insert(path.clone(), depth);
            added.push(path);
        }
        (added, fell_back)
    }

    fn unwatch(&mut self, path: &Path) {
        count::changed();
        let depth = self.roots.remove(path).unwrap_or(Depth::Recursive);
        if self.polled.remove(path).is_some() {
            self.poll.unwatch(path);
        } else if let Some(k) = &mut self.kernel {
            k.unwatch(path, depth);
        }
    }
}

/// What the poller remembers of one entry.
type Stamp = (u64, u64, i64, i64, i64, i64);

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (
        meta.len(),
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

/// Every entry below `root` (or directly in it, for a flat root) with its stamp.
fn scan(root: &Path, depth: Depth) -> BTreeMap<PathBuf, Stamp> {
    let max = match depth {
        Depth::Flat => 1,
        Depth::Recursive => usize::MAX,
    };
    walkdir::WalkDir::new(root)
        .max_depth(max)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.path().to_path_buf(), stamp(&e.metadata().ok()?))))
        .collect()
}

type Polled = BTreeMap<PathBuf, (Depth, BTreeMap<PathBuf, Stamp>)>;

/// Asks the poller for a walk of every polled root now: the sync barrier of polled roots.
/// A walk that starts after the request sees every change made before it, so the marker
/// sent behind that walk's hints comes after every one of them in the hint queue, as a
/// cookie file's event comes after earlier kernel events. Nothing is written into the
/// polled folders.
#[derive(Debug, Clone)]
pub struct PollNow {
    markers: Arc<std::sync::Mutex<Vec<PathBuf>>>,
    thread: Option<std::thread::Thread>,
    overflow: Arc<Overflow>,
}

impl PollNow {
    /// Requests a walk that starts after this call; `marker` (a path the live task
    /// recognises, such as a cookie name) follows its hints as a hint of its own. Without
    /// a polling thread the overflow flag is raised instead: the full reconcile it causes
    /// reads everything after this call.
    pub fn request(&self, marker: PathBuf) {
        match &self.thread {
            Some(t) => {
                self.markers
                    .lock()
                    .expect("poller lock poisoned")
                    .push(marker);
                t.unpark();
            }
            None => self.overflow.raise(),
        }
    }
}

/// A thread that stat-walks polled roots every interval (and when a [`PollNow`] asks)
/// and hints what changed.
struct Poller {
    roots: Arc<std::sync::Mutex<Polled>>,
    /// Markers of the barriers waiting for the next walk.
    markers: Arc<std::sync::Mutex<Vec<PathBuf>>>,
    interval_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(tx: mpsc::Sender<Hint>, overflow: Arc<Overflow>, interval: Duration) -> Poller {
        let roots: Arc<std::sync::Mutex<Polled>> = Arc::default();
        let markers: Arc<std::sync::Mutex<Vec<PathBuf>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let interval_ms = Arc::new(AtomicU64::new(interval.as_millis() as u64));
        let thread = {
            let roots = Arc::clone(&roots);
            let markers = Arc::clone(&markers);
            let stop = Arc::clone(&stop);
            let interval_ms = Arc::clone(&interval_ms);
            std::thread::Builder::new()
                .name("skillmeatd-poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let ms = interval_ms.load(Ordering::Relaxed);
                        // A request unparks at once (or makes this park return at once
                        // when it came during the last walk).
                        std::thread::park_timeout(Duration::from_millis(ms));
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        // Markers requested before this walk starts are answered by it.
                        let answered =
                            std::mem::take(&mut *markers.lock().expect("poller lock poisoned"));
                        let mut roots = roots.lock().expect("poller lock poisoned");
                        for (root, (depth, seen)) in roots.iter_mut() {
                            let now = scan(root, *depth);
                            let mut changed: Vec<PathBuf> = now
                                .iter()
                                .filter(|(p, s)| seen.get(*p) != Some(s))
                                .map(|(p, _)| p.clone())
                                .collect();
                            changed.extend(seen.keys().filter(|p| !now.contains_key(*p)).cloned());
                            *seen = now;
                            changed.retain(|p| !is_transient(p));
                            let hint = Hint {
                                paths: changed,
                                stage: Stage::Writing,
                            };
                            if !hint.paths.is_empty() && tx.try_send(hint).is_err() {
                                overflow.raise();
                            }
                        }
                        drop(roots);
                        let hint = Hint {
                            paths: answered,
                            stage: Stage::Complete,
                        };
                        if !hint.paths.is_empty() && tx.try_send(hint).is_err() {
                            overflow.raise();
                        }
                    }
                })
                .ok()
        };
        if thread.is_none() {
            tracing::error!("cannot start the polling thread; relying on periodic reconciles");
        }
        Poller {
            roots,
            markers,
            interval_ms,
            stop,
            thread,
        }
    }

    fn set_interval(&self, interval: Duration) {
        self.interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
    }

    /// Polls `root` from now on; its current state is the baseline.
    fn watch(&self, root: &Path, depth: Depth) {
        let baseline = scan(root, depth);
        self.roots
            .lock()
            .expect("poller lock poisoned")
            .insert(root.to_path_buf(), (depth, baseline));
    }

    fn unwatch(&self, root: &Path) {
        self.roots
            .lock()
            .expect("poller lock poisoned")
            .remove(root);
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;

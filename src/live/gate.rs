//! The gate between a batch's watch walk and its drift threads: a project is let through
//! once every root it is read from is watched, with the listings the walk read of them,
//! so its drift is computed while the walk goes on with the other projects.
//!
//! What a project's drift reads must be watched before it is read, or a change made in
//! between would be missed: its own roots (the project folder, its profile roots) and the
//! roots that are no project's (the home, the collections every project is compared
//! with). So nothing passes before the shared roots are walked; then each project passes
//! as its last root is. A root that is not handed over (it fell back to polling, or
//! vanished) holds its project until the walk is over ([`Gate::close`]), when the poller
//! watches it: the drift is then read as it would have been without the gate.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::hash::scan::Scan;

/// Projects waiting for their roots' walks, and those let through.
#[derive(Debug)]
pub(super) struct Gate {
    /// The SkillMeat home: the roots at or below it are shared, whatever folder holds it.
    home: PathBuf,
    state: Mutex<Waiting>,
    passed: Condvar,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Roots that are no project's, still being walked: while any is, nothing passes.
    shared_left: usize,
    /// Their listings.
    shared: Scan,
    /// The shared listings once all are read, under every project's own.
    base: Option<Arc<Scan>>,
    /// Each project not let through yet: its roots still being walked and the listings
    /// of those done.
    projects: HashMap<PathBuf, (usize, Scan)>,
    /// Let through, not taken yet.
    ready: VecDeque<(PathBuf, Scan)>,
    /// The walk is over: everything left passes.
    closed: bool,
    /// Folders listed.
    folders: usize,
}

/// Closes its gate when dropped.
#[derive(Debug)]
pub(super) struct Closing<'a>(&'a Gate);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Gate {
    /// A gate for `projects`, whose roots among `new` (the roots the walk will watch) it
    /// waits for; the other roots of `new` (those of the SkillMeat `home`, and any no
    /// project of `projects` owns) are shared.
    pub(super) fn new(projects: &BTreeSet<PathBuf>, new: &[PathBuf], home: &Path) -> Gate {
        let mut w = Waiting {
            projects: projects
                .iter()
                .map(|p| (p.clone(), (0, Scan::new())))
                .collect(),
            ..Waiting::default()
        };
        for root in new {
            match owner(root, home, |p| projects.contains(p)) {
                Some(p) => w.projects.get_mut(p).expect("a project of the gate").0 += 1,
                None => w.shared_left += 1,
            }
        }
        let gate = Gate {
            home: home.to_path_buf(),
            state: Mutex::new(w),
            passed: Condvar::new(),
        };
        gate.release(&mut gate.lock());
        gate
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The walk watched `root`, whose folders read `listed`.
    pub(super) fn watched(&self, root: &Path, listed: Scan) {
        let mut w = self.lock();
        w.folders += listed.len();
        match owner(root, &self.home, |p| w.projects.contains_key(p)).map(Path::to_path_buf) {
            Some(p) => {
                let (left, scan) = w.projects.get_mut(&p).expect("a project of the gate");
                *left = left.saturating_sub(1);
                scan.absorb(listed);
            }
            None => {
                w.shared_left = w.shared_left.saturating_sub(1);
                w.shared.absorb(listed);
            }
        }
        self.release(&mut w);
    }

    /// Closes the gate when dropped (the walk is over, or panicked: the drift threads
    /// waiting are let go either way).
    pub(super) fn closing(&self) -> Closing<'_> {
        Closing(self)
    }

    /// Folders listed so far.
    pub(super) fn folders(&self) -> usize {
        self.lock().folders
    }

    /// The walk is over: every project left passes, with what was listed of it.
    pub(super) fn close(&self) {
        let mut w = self.lock();
        w.closed = true;
        self.release(&mut w);
        // Threads waiting with every project taken learn there is no more.
        self.passed.notify_all();
    }

    /// The next project let through, with the listings of its roots over the shared
    /// ones; `None` once the walk is over and every project was taken.
    pub(super) fn next(&self) -> Option<(PathBuf, Scan)> {
        let mut w = self.lock();
        loop {
            if let Some(p) = w.ready.pop_front() {
                return Some(p);
            }
            if w.closed && w.projects.is_empty() {
                return None;
            }
            w = self.passed.wait(w).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Lets through each project whose roots are all walked, once the shared ones are
    /// (everything once closed).
    fn release(&self, w: &mut Waiting) {
        if w.base.is_none() && (w.shared_left == 0 || w.closed) {
            w.base = Some(Arc::new(std::mem::take(&mut w.shared)));
        }
        let Some(base) = w.base.clone() else {
            return;
        };
        let closed = w.closed;
        let through: Vec<PathBuf> = w
            .projects
            .iter()
            .filter(|(_, (left, _))| closed || *left == 0)
            .map(|(p, _)| p.clone())
            .collect();
        if through.is_empty() {
            return;
        }
        for p in through {
            let (_, own) = w.projects.remove(&p).expect("listed above");
            let mut scan = Scan::over(Arc::clone(&base));
            scan.absorb(own);
            w.ready.push_back((p, scan));
        }
        self.passed.notify_all();
    }
}

/// The project `root` is one of the roots of, `is_project` telling which folders are
/// projects: the project folder itself, or a folder in it (a profile root); none for the
/// roots of the SkillMeat `home`.
fn owner<'a>(root: &'a Path, home: &Path, is_project: impl Fn(&Path) -> bool) -> Option<&'a Path> {
    if root.starts_with(home) {
        return None;
    }
    std::iter::once(root)
        .chain(root.parent())
        .find(|p| is_project(p))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    fn set(paths: &[&str]) -> BTreeSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    fn taken(gate: &Gate, n: usize) -> Vec<PathBuf> {
        (0..n).map(|_| gate.next().expect("a project").0).collect()
    }

    #[test]
    fn a_project_passes_once_its_roots_and_the_shared_ones_are_watched() {
        let projects = set(&["/p/a", "/p/b"]);
        let roots: Vec<PathBuf> = ["/h", "/h/collections", "/p/a", "/p/a/.claude", "/p/b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let gate = Gate::new(&projects, &roots, Path::new("/h"));
        gate.watched(Path::new("/p/b"), Scan::new());
        gate.watched(Path::new("/p/a"), Scan::new());
        // The shared roots are not walked yet: nothing passes.
        assert!(gate.lock().ready.is_empty());
        gate.watched(Path::new("/h"), Scan::new());
        gate.watched(Path::new("/h/collections"), Scan::new());
        assert_eq!(taken(&gate, 1), [PathBuf::from("/p/b")]);
        assert!(
            gate.lock().ready.is_empty(),
            "/p/a waits for its profile root"
        );
        gate.watched(Path::new("/p/a/.claude"), Scan::new());
        assert_eq!(taken(&gate, 1), [PathBuf::from("/p/a")]);
        gate.close();
        assert!(gate.next().is_none());
    }

    #[test]
    fn a_root_never_handed_over_holds_its_project_until_the_walk_is_over() {
        let projects = set(&["/p/a", "/p/b"]);
        let roots: Vec<PathBuf> = ["/h", "/p/a/.claude"].iter().map(PathBuf::from).collect();
        let gate = Gate::new(&projects, &roots, Path::new("/h"));
        // /p/b has no new root: it passes with the shared roots.
        gate.watched(Path::new("/h"), Scan::new());
        assert_eq!(taken(&gate, 1), [PathBuf::from("/p/b")]);
        // /p/a/.claude fell back to polling: /p/a passes when the walk is over.
        assert!(gate.lock().ready.is_empty());
        gate.close();
        assert_eq!(taken(&gate, 1), [PathBuf::from("/p/a")]);
        assert!(gate.next().is_none());
    }

    #[test]
    fn a_shared_root_never_handed_over_holds_every_project_until_the_walk_is_over() {
        let gate = Gate::new(&set(&["/p/a"]), &[PathBuf::from("/h")], Path::new("/h"));
        assert!(gate.lock().ready.is_empty());
        gate.close();
        assert_eq!(taken(&gate, 1), [PathBuf::from("/p/a")]);
    }

    #[test]
    fn a_thread_waiting_when_every_project_was_taken_is_let_go_by_the_close() {
        let gate = Gate::new(&set(&["/p/a"]), &[], Path::new("/h"));
        assert_eq!(taken(&gate, 1), [PathBuf::from("/p/a")]);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send(gate.next()).unwrap());
            // The other thread is (most likely) waiting by now; either way it must end.
            std::thread::sleep(std::time::Duration::from_millis(50));
            gate.close();
            let next = rx.recv_timeout(std::time::Duration::from_secs(10));
            assert!(matches!(next, Ok(None)), "{next:?}");
        });
    }

    #[test]
    fn the_homes_roots_are_shared_even_inside_a_project() {
        let home = Path::new("/p/a/.skillmeat");
        let roots = [home.to_path_buf(), home.join("collections")];
        let gate = Gate::new(&set(&["/p/a", "/p/b"]), &roots, home);
        gate.watched(home, Scan::new());
        assert!(
            gate.lock().ready.is_empty(),
            "every project waits for the collections"
        );
        gate.watched(&home.join("collections"), Scan::new());
        let mut passed = taken(&gate, 2);
        passed.sort();
        assert_eq!(passed, [PathBuf::from("/p/a"), PathBuf::from("/p/b")]);
    }

    #[test]
    fn a_project_takes_its_own_listings_over_the_shared_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, own) = (dir.path().join("h"), dir.path().join("p"));
        for d in [shared.join("c"), own.join(".claude/s")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let gate = Gate::new(
            &BTreeSet::from([own.clone()]),
            &[shared.clone(), own.join(".claude")],
            &shared,
        );
        let mut listed = Scan::new();
        listed.list(&shared, true);
        gate.watched(&shared, listed);
        let mut listed = Scan::new();
        listed.list(&own.join(".claude"), true);
        gate.watched(&own.join(".claude"), listed);
        let (p, scan) = gate.next().unwrap();
        assert_eq!(p, own);
        assert!(
            scan.listing(&shared)
                .is_some_and(|l| l.find(OsStr::new("c")).is_some())
        );
        assert!(
            scan.listing(&own.join(".claude"))
                .is_some_and(|l| l.find(OsStr::new("s")).is_some())
        );
    }
}

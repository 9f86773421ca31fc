//! The start-up sweep: what interrupted writes left under a managed folder under our exact
//! staging and parking names ([`crate::transient::leftover`]), whether or not an intent
//! names it (older versions wrote none). Runs after the intents are settled, before the
//! daemon serves.
//!
//! - a staged copy (`.<name>.skillmeatd-<random>.tmp`) is new content that never made it
//!   into place: deleted;
//! - a parked copy (`.<name>.skillmeatd-swap-<hex>`) is an old copy set aside: deleted when
//!   `<name>` exists, otherwise moved back to `<name>` (the newest one when there are
//!   several), because then it is the only copy left — a crash between the two renames of
//!   a folder swap leaves exactly that.
//!
//! Nothing else is touched: a user's file that merely looks alike does not match.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Lock;
use super::swap::remove_entry;
use crate::transient::{Leftover, leftover};

/// How deep below a managed folder leftovers are looked for: a collection's
/// `<name>/skills/<artifact>`, a profile root's `skills/<group>/<artifact>`.
const MAX_DEPTH: usize = 3;

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    /// What was removed or put back, as people read it.
    pub done: Vec<String>,
    /// Whether the folder was swept whole: every entry could be read, and no leftover was
    /// left for later (its destination locked, an I/O error). Copies in `keep` do not count.
    pub whole: bool,
}

/// Sweeps `root` (see the module doc), leaving the paths in `keep` alone (copies named by
/// intents that could not be settled).
pub fn sweep(root: &Path, keep: &[PathBuf], wait: Duration, poll: Duration) -> Swept {
    let mut whole = true;
    let mut staged = Vec::new();
    let mut parked = Vec::new();
    let mut walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(MAX_DEPTH)
        .into_iter();
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else {
            whole = false;
            continue;
        };
        let Some(kind) = leftover(entry.file_name()) else {
            continue;
        };
        if entry.file_type().is_dir() {
            walk.skip_current_dir();
        }
        let path = entry.into_path();
        if keep.contains(&path) {
            continue;
        }
        match kind {
            Leftover::Staged(_) => staged.push(path),
            Leftover::Parked(name) => {
                let changed = std::fs::symlink_metadata(&path).map_or(0, |m| m.ctime());
                parked.push((changed, path.with_file_name(name), path));
            }
        }
    }
    let mut done = Vec::new();
    // Newest first: when a destination is missing, its newest parked copy goes back.
    parked.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (_, dest, path) in parked {
        let Ok(_lock) = Lock::acquire(&dest, wait, poll) else {
            tracing::warn!(path = %path.display(), "left for later: its destination is locked");
            whole = false;
            continue;
        };
        let result = if std::fs::symlink_metadata(&dest).is_ok() {
            remove_entry(&path).map(|()| format!("deleted {}, an old copy", path.display()))
        } else {
            std::fs::rename(&path, &dest).map(|()| {
                format!(
                    "put back {} from {}, which an interrupted write had set aside",
                    dest.display(),
                    path.display()
                )
            })
        };
        match result {
            Ok(line) => done.push(line),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot sweep");
                whole = false;
            }
        }
    }
    for path in staged {
        // A write in progress holds its destination's lock from staging to swap.
        let dest = match leftover(path.file_name().unwrap_or_default()) {
            Some(Leftover::Staged(name)) => path.with_file_name(name),
            _ => continue,
        };
        let Ok(_lock) = Lock::acquire(&dest, wait, poll) else {
            tracing::warn!(path = %path.display(), "left for later: its destination is locked");
            whole = false;
            continue;
        };
        match remove_entry(&path) {
            Ok(()) => done.push(format!(
                "deleted {}, new content that never went into place",
                path.display()
            )),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot sweep");
                whole = false;
            }
        }
    }
    for line in &done {
        tracing::info!("{line}");
    }
    Swept { done, whole }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_leftovers_go_a_lone_parked_copy_comes_back_and_user_files_stay() {
        let d = tempfile::tempdir().unwrap();
        let skills = d.path().join(".claude/skills");
        let mk = |rel: &str| {
            let p = skills.join(rel);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("SKILL.md"), rel).unwrap();
        };
        // Finding 1 as older versions left it: the skill is only in its swap folder.
        mk(".big-skill.skillmeatd-swap-0000beef");
        mk(".big-skill.skillmeatd-aB3dE6g9.tmp");
        // A completed write whose discard failed: the skill exists, the old copy is spare.
        mk("canvas");
        mk(".canvas.skillmeatd-swap-00c0ffee");
        // A user's look-alikes and a copy an unsettled intent still needs.
        mk(".notes.skillmeatd-1234.tmp");
        mk("plan.skillmeatd-aB3dE6g9.tmp");
        mk(".kept.skillmeatd-swap-12345678");
        let keep = vec![skills.join(".kept.skillmeatd-swap-12345678")];

        let swept = sweep(d.path(), &keep, Duration::ZERO, Duration::ZERO);
        assert_eq!(swept.done.len(), 3, "{swept:?}");
        assert!(swept.whole, "the kept copy does not count");
        let mut left: Vec<String> = std::fs::read_dir(&skills)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with(".skillmeat-lock"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".kept.skillmeatd-swap-12345678",
                ".notes.skillmeatd-1234.tmp",
                "big-skill",
                "canvas",
                "plan.skillmeatd-aB3dE6g9.tmp"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(skills.join("big-skill/SKILL.md")).unwrap(),
            ".big-skill.skillmeatd-swap-0000beef"
        );
        assert_eq!(
            std::fs::read_to_string(skills.join("canvas/SKILL.md")).unwrap(),
            "canvas"
        );
    }

    #[test]
    fn a_leftover_left_for_later_makes_the_sweep_not_whole() {
        let d = tempfile::tempdir().unwrap();
        let staged = d.path().join(".canvas.skillmeatd-aB3dE6g9.tmp");
        std::fs::write(&staged, "new\n").unwrap();
        let held = Lock::acquire(&d.path().join("canvas"), Duration::ZERO, Duration::ZERO).unwrap();
        let swept = sweep(d.path(), &[], Duration::ZERO, Duration::ZERO);
        assert!(!swept.whole && swept.done.is_empty(), "{swept:?}");
        assert!(staged.exists());
        drop(held);
        let swept = sweep(d.path(), &[], Duration::ZERO, Duration::ZERO);
        assert!(swept.whole && swept.done.len() == 1, "{swept:?}");
        assert!(!staged.exists());
    }
}

//! The recovery state machine over every intermediate state of every kind of write: a
//! write is stopped at each of its steps as if the process died there (nothing after the
//! step runs, not even clean-up), then the intent left on disk is settled, and the folder
//! must hold exactly the old content (not committed) or the new one (committed), with no
//! copy of ours left.

use std::collections::BTreeMap;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::super::{DirFiles, Writer};
use super::*;
use crate::transient::STAGE_MARKER;

const STEPS: [&str; 6] = [
    "write.staged",
    "write.parked",
    "write.recorded",
    "write.aside",
    "write.swapped",
    "write.synced",
];

const WAIT: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(10);

/// Everything under `root` (relative path → bytes, or None for a folder), lock files aside.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".skillmeat-lock"))
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let bytes = e
                .file_type()
                .is_file()
                .then(|| std::fs::read(e.path()).unwrap());
            (rel, bytes)
        })
        .collect()
}

fn ours(root: &Path) -> Vec<PathBuf> {
    tree(root)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(STAGE_MARKER))
        .collect()
}

fn dir_files(entries: &[(&str, &str)]) -> DirFiles {
    entries
        .iter()
        .map(|(p, c)| (PathBuf::from(p), (c.as_bytes().to_vec(), 0o644)))
        .collect()
}

/// The kinds of write, each from its own starting state.
#[derive(Debug, Clone, Copy)]
enum Kind {
    NewFile,
    ReplaceFile,
    NewDir,
    ReplaceDirExchange,
    ReplaceDirRenames,
    DirOverFile,
    RemoveFile,
    RemoveDir,
}

const KINDS: [Kind; 8] = [
    Kind::NewFile,
    Kind::ReplaceFile,
    Kind::NewDir,
    Kind::ReplaceDirExchange,
    Kind::ReplaceDirRenames,
    Kind::DirOverFile,
    Kind::RemoveFile,
    Kind::RemoveDir,
];

struct World {
    _d: tempfile::TempDir,
    root: PathBuf,
    intents: PathBuf,
}

impl World {
    fn new(kind: Kind) -> World {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let intents = d.path().join("state/intents");
        std::fs::create_dir_all(root.join("skills")).unwrap();
        std::fs::write(root.join("other.md"), "untouched\n").unwrap();
        match kind {
            Kind::ReplaceFile | Kind::RemoveFile => {
                std::fs::write(root.join("a.md"), "old\n").unwrap();
                std::fs::set_permissions(root.join("a.md"), Permissions::from_mode(0o600)).unwrap();
            }
            Kind::ReplaceDirExchange | Kind::ReplaceDirRenames | Kind::RemoveDir => {
                std::fs::create_dir_all(root.join("skills/s/refs")).unwrap();
                std::fs::write(root.join("skills/s/SKILL.md"), "old\n").unwrap();
                std::fs::write(root.join("skills/s/refs/g.md"), "old guide\n").unwrap();
            }
            Kind::DirOverFile => {
                std::fs::write(root.join("skills/s"), "a file then\n").unwrap();
            }
            Kind::NewFile | Kind::NewDir => {}
        }
        World {
            _d: d,
            root,
            intents,
        }
    }

    fn writer(&self, kind: Kind) -> (Writer, Journal) {
        let journal = Journal::new(self.intents.clone());
        let mut w = Writer::new()
            .with_lock_wait(WAIT)
            .with_journal(journal.clone());
        w.exchange = !matches!(kind, Kind::ReplaceDirRenames);
        (w, journal)
    }

    fn write(&self, w: &Writer, kind: Kind) -> Result<(), WriteError> {
        let r = &self.root;
        match kind {
            Kind::NewFile | Kind::ReplaceFile => w.replace_file(r, Path::new("a.md"), b"new\n"),
            Kind::NewDir | Kind::ReplaceDirExchange | Kind::ReplaceDirRenames => w.replace_dir(
                r,
                Path::new("skills/s"),
                &dir_files(&[("SKILL.md", "new\n"), ("extra.md", "added\n")]),
            ),
            Kind::DirOverFile => w.replace_dir(
                r,
                Path::new("skills/s"),
                &dir_files(&[("SKILL.md", "a folder now\n")]),
            ),
            Kind::RemoveFile => w.remove(r, Path::new("a.md")).map(|_| ()),
            Kind::RemoveDir => w.remove(r, Path::new("skills/s")).map(|_| ()),
        }
    }

    /// What a start-up does: settle every intent left, then sweep the managed folder.
    fn settle_all(&self) -> Vec<Settlement> {
        let settled: Vec<Settlement> = pending(&self.intents)
            .unwrap()
            .iter()
            .map(|i| settle(&self.intents, i, WAIT, POLL))
            .collect();
        let keep: Vec<PathBuf> = settled
            .iter()
            .flat_map(|s| s.unsettled_paths.clone())
            .collect();
        super::super::sweep(&self.root, &keep, WAIT, POLL);
        settled
    }

    fn assert_clean(&self, what: &str) {
        assert!(
            ours(&self.root).is_empty(),
            "{what}: {:?}",
            ours(&self.root)
        );
        assert!(
            pending(&self.intents).unwrap().is_empty(),
            "{what}: an intent is left"
        );
    }
}

#[test]
fn a_crash_at_any_step_of_an_uncommitted_write_settles_back_to_the_old_content() {
    let mut reached = 0;
    for kind in KINDS {
        for at in STEPS {
            let w = World::new(kind);
            let before = tree(&w.root);
            let mode_before = std::fs::symlink_metadata(w.root.join("a.md"))
                .ok()
                .map(|m| m.permissions().mode());
            let (mut writer, journal) = w.writer(kind);
            writer.crash_at = Some(at);
            journal.begin(7);
            let what = format!("{kind:?} stopped at {at}");
            match w.write(&writer, kind) {
                Err(WriteError::Crashed(_)) => reached += 1,
                Ok(()) => continue, // this kind has no such step
                Err(e) => panic!("{what}: {e}"),
            }
            drop((writer, journal));
            let settled = w.settle_all();
            assert!(
                settled.iter().all(|s| s.unsettled.is_empty() && !s.kept),
                "{what}: {settled:?}"
            );
            assert_eq!(tree(&w.root), before, "{what}");
            let mode_after = std::fs::symlink_metadata(w.root.join("a.md"))
                .ok()
                .map(|m| m.permissions().mode());
            assert_eq!(mode_after, mode_before, "{what}");
            w.assert_clean(&what);
        }
    }
    assert!(
        reached >= 30,
        "only {reached} intermediate states were reached"
    );
}

#[test]
fn a_committed_write_settles_forward_to_the_new_content() {
    for kind in KINDS {
        let done = World::new(kind);
        let (writer, _) = done.writer(kind);
        let plain = Writer {
            journal: None,
            ..writer
        };
        done.write(&plain, kind).unwrap();
        let after = tree(&done.root);

        let w = World::new(kind);
        let (writer, journal) = w.writer(kind);
        journal.begin(8);
        w.write(&writer, kind).unwrap();
        journal.commit().unwrap();
        // The crash: the parked copies and the intent were never cleaned up.
        drop((writer, journal));
        let settled = w.settle_all();
        let what = format!("{kind:?}");
        assert_eq!(settled.len(), 1, "{what}");
        assert!(
            settled[0].kept && settled[0].unsettled.is_empty(),
            "{what}: {settled:?}"
        );
        assert_eq!(tree(&w.root), after, "{what}");
        w.assert_clean(&what);
    }
}

#[test]
fn an_operation_whose_first_writes_completed_is_put_back_whole() {
    let w = World::new(Kind::ReplaceDirExchange);
    std::fs::write(w.root.join("a.md"), "old\n").unwrap();
    let before = tree(&w.root);
    let (mut writer, journal) = w.writer(Kind::ReplaceDirExchange);
    journal.begin(9);
    w.write(&writer, Kind::ReplaceDirExchange).unwrap();
    w.write(&writer, Kind::ReplaceFile).unwrap();
    writer.crash_at = Some("write.swapped");
    let err = writer.remove(&w.root, Path::new("other.md")).unwrap_err();
    assert!(matches!(err, WriteError::Crashed(_)));
    drop((writer, journal));
    let settled = w.settle_all();
    assert_eq!(settled[0].actions.len(), 3, "{settled:?}");
    assert_eq!(tree(&w.root), before);
    w.assert_clean("three writes");
}

#[test]
fn a_crash_while_putting_back_is_settled_by_the_next_run() {
    let w = World::new(Kind::ReplaceDirRenames);
    let before = tree(&w.root);
    let (writer, journal) = w.writer(Kind::ReplaceDirRenames);
    journal.begin(10);
    w.write(&writer, Kind::ReplaceDirRenames).unwrap();
    drop((writer, journal));
    // The first recovery died between its two renames: the new folder moved back to its
    // staged name, the old one still parked.
    let intent = &pending(&w.intents).unwrap()[0];
    let step = &intent.steps[0];
    std::fs::rename(&step.dest, step.staged.as_ref().unwrap()).unwrap();
    w.settle_all();
    assert_eq!(tree(&w.root), before);
    w.assert_clean("second recovery");
}

#[test]
fn a_destination_another_program_changed_since_is_left_as_it_is() {
    let w = World::new(Kind::ReplaceFile);
    let (mut writer, journal) = w.writer(Kind::ReplaceFile);
    writer.crash_at = Some("write.synced");
    journal.begin(11);
    assert!(w.write(&writer, Kind::ReplaceFile).is_err());
    drop((writer, journal));
    // SkillMeat rewrote the file before the daemon came back (staged, renamed over).
    std::fs::write(w.root.join(".a.md.x81k.txn.tmp"), "skillmeat's\n").unwrap();
    std::fs::rename(w.root.join(".a.md.x81k.txn.tmp"), w.root.join("a.md")).unwrap();
    let settled = w.settle_all();
    assert!(
        settled[0].actions[0].contains("another program"),
        "{settled:?}"
    );
    assert_eq!(
        std::fs::read(w.root.join("a.md")).unwrap(),
        b"skillmeat's\n"
    );
    w.assert_clean("changed since");
}

#[test]
fn a_locked_destination_keeps_the_intent_for_the_next_start() {
    let w = World::new(Kind::ReplaceFile);
    let (mut writer, journal) = w.writer(Kind::ReplaceFile);
    writer.crash_at = Some("write.swapped");
    journal.begin(12);
    assert!(w.write(&writer, Kind::ReplaceFile).is_err());
    drop((writer, journal));
    let held = Lock::acquire(&w.root.join("a.md"), Duration::ZERO, POLL).unwrap();
    let settled = w.settle_all();
    assert_eq!(settled[0].unsettled.len(), 1, "{settled:?}");
    assert!(!settled[0].unsettled_paths.is_empty());
    assert_eq!(pending(&w.intents).unwrap().len(), 1, "the intent stays");
    drop(held);
    w.settle_all();
    assert_eq!(std::fs::read(w.root.join("a.md")).unwrap(), b"old\n");
    w.assert_clean("after the lock went");
}

#[test]
fn half_written_and_unreadable_intents_are_set_aside() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("3.json.tmp"), "{").unwrap();
    std::fs::write(d.path().join("4.json"), "{").unwrap();
    assert!(pending(d.path()).unwrap().is_empty());
    assert!(!d.path().join("3.json.tmp").exists());
    assert!(d.path().join("4.json.unreadable").exists());
    assert!(pending(&d.path().join("none")).unwrap().is_empty());
}

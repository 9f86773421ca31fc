//! Write intents: the durable record that lets a write interrupted at any instant be
//! finished or undone at the next start.
//!
//! Before the first rename of any write made for an operation, the writer records a
//! [`Step`] in the operation's intent file, `<intents>/<operation>.json` (in the daemon's
//! state directory): the destination, where the new content is staged, where the old copy
//! is parked, and the identities (device, inode) of both. The file is rewritten whole for
//! each step (a temporary file, fsynced, renamed over, the folder fsynced). Parked copies
//! stay until the whole operation ends, so an operation whose first writes had completed
//! can still be put back. At the end the operation either *commits* (the intent is marked
//! committed, then [`Journal::finish`] deletes the parked copies and the file) or *aborts*
//! ([`Journal::abort`] puts every step back, newest first).
//!
//! A file per operation rather than a store tree: the files survive whatever happens to the
//! store, and recovery of the user's files must not depend on its health.
//!
//! # Settling a step
//! The state of a step after a crash is read from the disk, not remembered: which of the
//! old and new identities sits at the destination, the staged path and the parked path.
//! [`Step::roll_back`] and [`Step::finish`] act on what they find, so they settle every
//! intermediate state, including their own half-done work after a second crash:
//!
//! | found | back | forward |
//! |---|---|---|
//! | old at the destination | delete the staged copy (and the parked hard link) | the same (never happens after a commit) |
//! | new at the destination, old parked | move the old copy back (rename, exchange, or two renames) and delete the new | delete the parked copy |
//! | nothing at the destination, old parked | move the old copy back | a removal: delete the parked copy; a replacement: move the old copy back |
//! | new at the destination, nothing before | remove the destination | keep it |
//! | something else at the destination | leave it (another program wrote it since) and delete our copies | the same |
//!
//! Identities are (device, inode): a rename keeps them, and a write by another program has
//! its own, since SkillMeat (like us) stages a new file before renaming it over.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::swap::{exchange, fresh_park_path, remove_entry};
use super::{Lock, WriteError, sync_dir};

/// The identity of a file or folder: what a rename keeps and a new write never has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// The identity of what `path` names (a symbolic link itself, never its target);
    /// None when nothing is there.
    ///
    /// # Errors
    /// The path cannot be inspected.
    pub fn of(path: &Path) -> io::Result<Option<FileId>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(FileId {
                dev: m.dev(),
                ino: m.ino(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One write of an operation, as recorded before its first rename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The managed folder the destination is confined to.
    pub root: PathBuf,
    pub dest: PathBuf,
    /// Where the new content is staged; None for a removal.
    pub staged: Option<PathBuf>,
    /// Where the old copy is parked (a hard link, or the old entry renamed aside); None when
    /// there was nothing. After a folder exchange, the old copy is at `staged` instead.
    pub parked: Option<PathBuf>,
    /// What the destination was before.
    pub old: Option<FileId>,
    /// The staged content.
    pub new: Option<FileId>,
}

/// What settling one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The destination holds what the step wrote (or, for a removal, is gone).
    Kept,
    /// The step had not replaced anything yet: the destination is as it was.
    Untouched,
    /// The old copy is back in place.
    PutBack,
    /// The step had created the destination; it is gone again.
    Removed,
    /// Another program changed the destination since; it was left as it is.
    ChangedSince,
}

impl Step {
    fn is_removal(&self) -> bool {
        self.staged.is_none()
    }

    /// How people read what settling did to this step's destination, or None when there
    /// is nothing worth saying.
    pub fn describe(&self, outcome: StepOutcome) -> Option<String> {
        let d = self.dest.display();
        match outcome {
            StepOutcome::Kept if self.is_removal() => Some(format!("kept {d} removed")),
            StepOutcome::Kept => Some(format!("kept {d} as written")),
            StepOutcome::Untouched => None,
            StepOutcome::PutBack => Some(format!("put back the previous {d}")),
            StepOutcome::Removed => Some(format!("removed {d}, which it had created")),
            StepOutcome::ChangedSince => Some(format!(
                "left {d} as it is: another program changed it since"
            )),
        }
    }

    /// Our own copies: the staged and parked paths (once each).
    fn copies(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for p in [&self.staged, &self.parked].into_iter().flatten() {
            if !out.contains(&p.as_path()) {
                out.push(p);
            }
        }
        out
    }

    /// Where the old copy is now, among our copies.
    fn old_copy(&self) -> io::Result<Option<&Path>> {
        let Some(old) = self.old else {
            return Ok(None);
        };
        for p in self.copies() {
            if FileId::of(p)? == Some(old) {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// Deletes our copies that still hold the old or the new content (never the
    /// destination, never anything else).
    fn clean(&self) -> io::Result<()> {
        for p in self.copies() {
            let id = FileId::of(p)?;
            if id.is_some() && (id == self.old || id == self.new) {
                remove_entry(p)?;
            }
        }
        Ok(())
    }

    fn dir(&self) -> &Path {
        self.dest.parent().unwrap_or(Path::new("/"))
    }

    /// Moves the old copy at `from` back to the destination, where the new content is.
    fn put_back_over_new(&self, from: &Path) -> io::Result<()> {
        let plain = |p: &Path| std::fs::symlink_metadata(p).map(|m| !m.is_dir());
        if plain(from)? && plain(&self.dest)? {
            return std::fs::rename(from, &self.dest);
        }
        if exchange(from, &self.dest)? {
            return Ok(());
        }
        // Two renames: the new content out of the way (to its staged name when free), then
        // the old copy in. A crash between them leaves a state the next run settles.
        let out = match &self.staged {
            Some(s) if s != from && FileId::of(s)?.is_none() => s.clone(),
            _ => fresh_park_path(self.dir(), &file_name(&self.dest)),
        };
        std::fs::rename(&self.dest, &out)?;
        std::fs::rename(from, &self.dest)?;
        if !self.copies().contains(&out.as_path()) {
            remove_entry(&out)?;
        }
        Ok(())
    }

    /// Puts the destination back as it was before this step (see the module table).
    ///
    /// # Errors
    /// A rename or removal failed; the state is then still one this function settles.
    pub fn roll_back(&self) -> io::Result<StepOutcome> {
        let at_dest = FileId::of(&self.dest)?;
        let outcome = match self.old {
            None if at_dest.is_some() && at_dest == self.new => {
                remove_entry(&self.dest)?;
                StepOutcome::Removed
            }
            None if at_dest.is_none() => StepOutcome::Untouched,
            None => StepOutcome::ChangedSince,
            Some(old) if at_dest == Some(old) => StepOutcome::Untouched,
            Some(_) => match (self.old_copy()?, at_dest) {
                (Some(from), None) => {
                    std::fs::rename(from, &self.dest)?;
                    StepOutcome::PutBack
                }
                (Some(from), Some(id)) if Some(id) == self.new => {
                    self.put_back_over_new(from)?;
                    StepOutcome::PutBack
                }
                (None, Some(id)) if Some(id) == self.new => {
                    return Err(io::Error::other(format!(
                        "the previous copy of {} is gone; its content is in the operation's safety snapshot",
                        self.dest.display()
                    )));
                }
                _ => StepOutcome::ChangedSince,
            },
        };
        if outcome != StepOutcome::Untouched {
            sync_dir(self.dir()).map_err(io::Error::other)?;
        }
        self.clean()?;
        Ok(outcome)
    }

    /// Completes the step after its operation committed: deletes the parked and staged
    /// copies. A replaced destination found missing gets its old copy back rather than
    /// staying lost.
    ///
    /// # Errors
    /// A rename or removal failed.
    pub fn finish(&self) -> io::Result<StepOutcome> {
        let at_dest = FileId::of(&self.dest)?;
        let outcome = if at_dest.is_none() && !self.is_removal() && self.old.is_some() {
            match self.old_copy()? {
                Some(from) => {
                    std::fs::rename(from, &self.dest)?;
                    sync_dir(self.dir()).map_err(io::Error::other)?;
                    StepOutcome::PutBack
                }
                None => StepOutcome::ChangedSince,
            }
        } else if at_dest == self.new {
            StepOutcome::Kept
        } else {
            StepOutcome::ChangedSince
        };
        self.clean()?;
        Ok(outcome)
    }
}

fn file_name(p: &Path) -> OsString {
    p.file_name().unwrap_or(p.as_os_str()).to_os_string()
}

/// The intent file of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub operation: u64,
    /// Every write of the operation is done; settling keeps them.
    pub committed: bool,
    pub steps: Vec<Step>,
}

impl Intent {
    fn path(dir: &Path, operation: u64) -> PathBuf {
        dir.join(format!("{operation}.json"))
    }

    /// Writes the intent durably: a temporary file, fsynced, renamed over, folder fsynced.
    fn persist(&self, dir: &Path) -> Result<(), WriteError> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(|e| WriteError::io(dir, "create", e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let path = Intent::path(dir, self.operation);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("an intent always serializes");
        File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| WriteError::io(&path, "write the write intent", e))?;
        sync_dir(dir)
    }

    fn remove(dir: &Path, operation: u64) -> Result<(), WriteError> {
        let path = Intent::path(dir, operation);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(WriteError::io(&path, "remove the write intent", e)),
        }
    }
}

/// The intents left in `dir` by operations that did not end (oldest first). Half-written
/// temporary files are deleted; an intent that does not read is renamed
/// `<n>.json.unreadable` (kept for a person to look at) and named in the log.
///
/// # Errors
/// The folder cannot be read.
pub fn pending(dir: &Path) -> io::Result<Vec<Intent>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json.tmp") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Intent>(&b).ok())
        {
            Some(i) => out.push(i),
            None => {
                let aside = path.with_extension("json.unreadable");
                tracing::error!(intent = %path.display(), kept = %aside.display(),
                    "a write intent does not read; settle its files by hand");
                std::fs::rename(&path, &aside)?;
            }
        }
    }
    out.sort_by_key(|i| i.operation);
    Ok(out)
}

/// What settling an operation's intent did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    pub operation: u64,
    /// Its writes were kept (it had committed); otherwise they were put back.
    pub kept: bool,
    /// What was done, as people read it.
    pub actions: Vec<String>,
    /// Steps that could not be settled now (a lock held too long, an I/O error); the
    /// intent stays for the next start.
    pub unsettled: Vec<String>,
    /// Paths of the steps that could not be settled, to leave alone.
    pub unsettled_paths: Vec<PathBuf>,
}

/// Settles `intent` (forward when committed, back otherwise, newest step first when going
/// back), each step under SkillMeat's lock of its destination, waiting at most `wait`.
/// The intent file in `dir` is removed once every step is settled.
pub fn settle(dir: &Path, intent: &Intent, wait: Duration, poll: Duration) -> Settlement {
    let mut s = Settlement {
        operation: intent.operation,
        kept: intent.committed,
        ..Settlement::default()
    };
    let steps: Vec<&Step> = if intent.committed {
        intent.steps.iter().collect()
    } else {
        intent.steps.iter().rev().collect()
    };
    for step in steps {
        let settled = if !step.dir().is_dir() {
            // The folder is gone (a project deleted): nothing of ours is left in it.
            Ok(StepOutcome::ChangedSince)
        } else {
            Lock::acquire(&step.dest, wait, poll)
                .map_err(|e| e.to_string())
                .and_then(|_lock| {
                    let r = if intent.committed {
                        step.finish()
                    } else {
                        step.roll_back()
                    };
                    r.map_err(|e| format!("{}: {e}", step.dest.display()))
                })
        };
        match settled {
            Ok(outcome) => s.actions.extend(step.describe(outcome)),
            Err(e) => {
                s.unsettled.push(e);
                s.unsettled_paths.push(step.dest.clone());
                s.unsettled_paths
                    .extend(step.copies().into_iter().map(Path::to_path_buf));
            }
        }
    }
    if s.unsettled.is_empty()
        && let Err(e) = Intent::remove(dir, intent.operation)
    {
        s.unsettled.push(e.to_string());
    }
    s
}

/// The intent of the operation in progress, shared by the clones of one [`super::Writer`].
/// Writes made while no operation is open are not journaled: their parked copy is deleted
/// as soon as the write is done.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    open: Arc<Mutex<Option<Intent>>>,
}

impl Journal {
    /// A journal keeping its intent files in `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            open: Arc::new(Mutex::new(None)),
        }
    }

    /// The folder of the intent files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Intent>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the intent of `operation`; nothing is written until its first step.
    pub fn begin(&self, operation: u64) {
        *self.lock() = Some(Intent {
            operation,
            committed: false,
            steps: Vec::new(),
        });
    }

    /// Records `step` durably in the open intent. Returns false when no operation is open
    /// (the write is then settled on its own).
    pub(super) fn record(&self, step: &Step) -> Result<bool, WriteError> {
        let mut open = self.lock();
        let Some(intent) = open.as_mut() else {
            return Ok(false);
        };
        intent.steps.push(step.clone());
        if let Err(e) = intent.persist(&self.dir) {
            intent.steps.pop();
            return Err(e);
        }
        Ok(true)
    }

    /// Marks the open operation's writes as all done, durably: from here a crash keeps
    /// them.
    ///
    /// # Errors
    /// The intent could not be written (nothing is committed then).
    pub fn commit(&self) -> Result<(), WriteError> {
        let mut open = self.lock();
        let Some(intent) = open.as_mut() else {
            return Ok(());
        };
        if intent.steps.is_empty() {
            return Ok(());
        }
        intent.committed = true;
        intent
            .persist(&self.dir)
            .inspect_err(|_| intent.committed = false)
    }

    /// Ends the open operation after [`Journal::commit`]: deletes its parked and staged
    /// copies and its intent file.
    pub fn finish(&self, wait: Duration, poll: Duration) -> Settlement {
        self.close(wait, poll)
    }

    /// Ends the open operation without committing: puts back everything it wrote, newest
    /// first. What could not be put back now (a lock held too long) stays in the intent
    /// for the next start and is listed in [`Settlement::unsettled`].
    pub fn abort(&self, wait: Duration, poll: Duration) -> Settlement {
        self.close(wait, poll)
    }

    fn close(&self, wait: Duration, poll: Duration) -> Settlement {
        let Some(intent) = self.lock().take() else {
            return Settlement::default();
        };
        if intent.steps.is_empty() {
            return Settlement {
                operation: intent.operation,
                kept: intent.committed,
                ..Settlement::default()
            };
        }
        settle(&self.dir, &intent, wait, poll)
    }
}

#[cfg(test)]
mod tests;

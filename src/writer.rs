//! Every byte the daemon writes into a collection or a project goes through here.
//!
//! The protocol is SkillMeat 0.74.0's own write transaction (formats doc §10), so the
//! Python tool and the daemon never interleave and neither ever sees half a file:
//!
//! 1. confine the destination to its managed root (no `..`, no symlinked folder leading
//!    out, nothing outside: [`WriteError::Outside`], [`WriteError::SymlinkEscape`]);
//! 2. take the exclusive `flock` on `.<name>.skillmeat-lock` beside it, waiting at most
//!    [`Writer::lock_wait`] (10 s by default, polled every 50 ms) before failing with
//!    [`WriteError::Locked`] ("locked by another process");
//! 3. stage the new content in the same folder under `.<name>.skillmeatd-<random>.tmp`
//!    (a dot-name ending in `.tmp`, which SkillMeat's watcher and ours skip), fsync it;
//! 4. park the old copy under `.<name>.skillmeatd-swap-<hex>`: a file with a hard link
//!    (the destination never disappears), a folder by the swap itself;
//! 5. record the write in the operation's intent ([`Journal`], fsynced) — before the first
//!    rename, always;
//! 6. swap: one `rename` over the destination for a file; for a folder one
//!    `renameat2(RENAME_EXCHANGE)` (`renamex_np(RENAME_SWAP)` on macOS), or where the
//!    filesystem has no atomic exchange, two renames (old aside, new in); fsync the folder;
//! 7. keep the parked copy until the whole operation ends: it commits (the copies are
//!    deleted) or aborts (every write is put back, newest first). A write made outside an
//!    operation deletes its parked copy at once.
//!
//! A crash at any instant leaves a state [`settle`] finishes or undoes from the intent at
//! the next start (see [`intent`] for the state table); [`sweep`] then removes leftovers of
//! our exact staging and parking names that no intent names (older versions left some).
//!
//! The lock file stays beside the destination for good (SkillMeat's rule). So write an
//! artifact as a whole — a skill folder with [`Writer::replace_dir`], a command file with
//! [`Writer::replace_file`] — never single files inside a skill folder: a lock file left
//! inside would become part of the skill and change its SkillMeat hash.
//!
//! On any failure the destination is as it was and our copies are deleted; the error
//! names the path and the step. Every step is a fault point ([`crate::faults`]: `write.*`)
//! so tests can kill the process there. Safety snapshots, undo records and event
//! attribution belong to the operations that call this module.

mod confine;
pub mod intent;
mod lock;
mod swap;
mod sweep;

use std::collections::BTreeMap;
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub use intent::{Journal, Settlement, pending, settle};
pub use lock::{Lock, lock_path};
pub use sweep::{Swept, sweep};

use confine::{Target, confine};

/// Default time to wait for another process's lock (SkillMeat's default).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);
/// How often a held lock is polled (SkillMeat's interval).
pub const LOCK_POLL: Duration = Duration::from_millis(50);
/// Mode of a new file when none is given and none existed.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of a new folder.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

/// Content of a folder to write: relative path → (bytes, Unix mode).
pub type DirFiles = BTreeMap<PathBuf, (Vec<u8>, u32)>;

/// Why a write did not happen. Every variant names the path concerned; after any of them
/// the destination is as it was.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: outside the managed folder {}; refusing to write there", path.display(), root.display())]
    Outside { path: PathBuf, root: PathBuf },
    #[error("{}: a symbolic link leading outside the managed folder {}; refusing to follow it", path.display(), root.display())]
    SymlinkEscape { path: PathBuf, root: PathBuf },
    #[error("{}: locked by another process (gave up after {:.1} s waiting for {})", path.display(), waited.as_secs_f64(), lock.display())]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        waited: Duration,
    },
    #[error("{}: entry {} of the new content is not a plain relative path", path.display(), entry.display())]
    BadEntry { path: PathBuf, entry: PathBuf },
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A unit test stopped the write at a step as if the process had died there: nothing
    /// after that step ran, not even the clean-up.
    #[cfg(test)]
    #[error("simulated crash at {0}")]
    Crashed(&'static str),
}

impl WriteError {
    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> WriteError {
        WriteError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    /// Whether this is a unit test's simulated crash (never outside tests).
    fn is_crash(&self) -> bool {
        #[cfg(test)]
        if matches!(self, WriteError::Crashed(_)) {
            return true;
        }
        false
    }
}

/// Points where tests make a write fail on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
enum Fault {
    /// After the write is recorded, before the file rename.
    BeforeFileRename,
    /// After the old folder went aside, as if the staged folder could not be renamed in.
    SecondDirRename,
}

/// Writes files and folders by SkillMeat's protocol. Cheap to create; holds no lock
/// between calls.
#[derive(Debug, Clone)]
pub struct Writer {
    lock_wait: Duration,
    lock_poll: Duration,
    journal: Option<Journal>,
    #[cfg(test)]
    fault: Option<Fault>,
    /// Simulate a crash at this step (see [`WriteError::Crashed`]).
    #[cfg(test)]
    crash_at: Option<&'static str>,
    /// Whether folders may be swapped with an atomic exchange.
    #[cfg(test)]
    exchange: bool,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// A writer with SkillMeat's lock timing (10 s wait, 50 ms poll), journaling nothing.
    pub fn new() -> Writer {
        Writer {
            lock_wait: DEFAULT_LOCK_WAIT,
            lock_poll: LOCK_POLL,
            journal: None,
            #[cfg(test)]
            fault: None,
            #[cfg(test)]
            crash_at: None,
            #[cfg(test)]
            exchange: true,
        }
    }

    /// The same writer giving up on a held lock after `wait`.
    pub fn with_lock_wait(mut self, wait: Duration) -> Writer {
        self.lock_wait = wait;
        self
    }

    /// The same writer recording every write of the operation `journal` has open.
    pub fn with_journal(mut self, journal: Journal) -> Writer {
        self.journal = Some(journal);
        self
    }

    /// The journal writes are recorded in, if any.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// How long a held lock is waited for.
    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// How often a held lock is polled.
    pub fn lock_poll(&self) -> Duration {
        self.lock_poll
    }

    /// Replaces (or creates) the file `dest` under `root` with `bytes`, keeping the mode of
    /// the file it replaces (new files get 0644).
    ///
    /// # Errors
    /// See [`WriteError`]; on error `dest` is unchanged.
    pub fn replace_file(&self, root: &Path, dest: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        self.update_file(root, dest, |_| Ok::<_, WriteError>(Some(bytes.to_vec())))
            .map(|_| ())
    }

    /// Read–modify–write of the file `dest` under one hold of its lock: `edit` gets the
    /// current bytes (None if absent) and returns the new bytes, or None to leave the file
    /// alone. Returns whether the file was written (identical bytes are not rewritten).
    ///
    /// # Errors
    /// `edit`'s error, or a [`WriteError`] converted into `E`; on error `dest` is
    /// unchanged.
    pub fn update_file<E: From<WriteError>>(
        &self,
        root: &Path,
        dest: &Path,
        edit: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<bool, E> {
        let target = confine(root, dest, true)?.expect("confine creates folders");
        let result = self.update_confined(&target, edit);
        if !matches!(result, Ok(true)) {
            target.undo_created();
        }
        result
    }

    fn update_confined<E: From<WriteError>>(
        &self,
        target: &Target,
        edit: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<bool, E> {
        let dest = target.path();
        let _lock = Lock::acquire(&dest, self.lock_wait, self.lock_poll)?;
        let (old, mode) = match std::fs::symlink_metadata(&dest) {
            Ok(m) if m.file_type().is_symlink() && !target.resolves_inside(&dest) => {
                return Err(WriteError::SymlinkEscape {
                    path: dest,
                    root: target.root.clone(),
                }
                .into());
            }
            Ok(m) if m.is_dir() => {
                let e = io::Error::new(io::ErrorKind::IsADirectory, "is a directory");
                return Err(WriteError::io(&dest, "replace file", e).into());
            }
            Ok(m) => {
                let old = std::fs::read(&dest).map_err(|e| WriteError::io(&dest, "read", e))?;
                let mode = if m.is_file() {
                    m.permissions().mode() & 0o7777
                } else {
                    DEFAULT_FILE_MODE
                };
                (Some(old), mode)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, DEFAULT_FILE_MODE),
            Err(e) => return Err(WriteError::io(&dest, "inspect", e).into()),
        };
        let Some(new) = edit(old.as_deref())? else {
            return Ok(false);
        };
        if old.as_deref() == Some(new.as_slice()) {
            return Ok(false);
        }
        let staged = self.stage_file(target, &new, mode)?;
        self.swap(target, Some(staged))?;
        Ok(true)
    }

    /// Replaces (or creates) the folder `dest` under `root` with exactly `files`.
    ///
    /// # Errors
    /// See [`WriteError`]; on error `dest` is unchanged (the old folder is moved back if
    /// the new one cannot be renamed into place).
    pub fn replace_dir(
        &self,
        root: &Path,
        dest: &Path,
        files: &DirFiles,
    ) -> Result<(), WriteError> {
        let target = confine(root, dest, true)?.expect("confine creates folders");
        let result = self.replace_dir_confined(&target, files);
        if result.as_ref().is_err_and(|e| !e.is_crash()) {
            target.undo_created();
        }
        result
    }

    fn replace_dir_confined(&self, target: &Target, files: &DirFiles) -> Result<(), WriteError> {
        let dest = target.path();
        for entry in files.keys() {
            let plain = entry
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
            if !plain || entry.as_os_str().is_empty() {
                return Err(WriteError::BadEntry {
                    path: dest,
                    entry: entry.clone(),
                });
            }
        }
        let _lock = Lock::acquire(&dest, self.lock_wait, self.lock_poll)?;
        let staged = self.stage_dir(target, files)?;
        self.swap(target, Some(staged))
    }

    /// Removes the file or folder `dest` under `root` (a symlink is removed, not followed).
    /// Returns whether something was there.
    ///
    /// # Errors
    /// See [`WriteError`]; on error `dest` is unchanged.
    pub fn remove(&self, root: &Path, dest: &Path) -> Result<bool, WriteError> {
        let Some(target) = confine(root, dest, false)? else {
            return Ok(false);
        };
        let dest = target.path();
        let _lock = Lock::acquire(&dest, self.lock_wait, self.lock_poll)?;
        match std::fs::symlink_metadata(&dest) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(WriteError::io(&dest, "inspect", e)),
        }
        self.swap(&target, None)?;
        Ok(true)
    }

    /// Step `name` of a write: a fault point, and in unit tests the place a simulated
    /// crash stops the write.
    fn step(&self, name: &'static str) -> Result<(), WriteError> {
        crate::faults::step(name);
        #[cfg(test)]
        if self.crash_at == Some(name) {
            return Err(WriteError::Crashed(name));
        }
        Ok(())
    }

    fn fault(&self, at: Fault) -> io::Result<()> {
        #[cfg(test)]
        if self.fault == Some(at) {
            return Err(io::Error::other(format!("injected fault {at:?}")));
        }
        let _ = at;
        Ok(())
    }

    /// Whether folders may be swapped with an atomic exchange here.
    fn may_exchange(&self) -> bool {
        #[cfg(test)]
        if !self.exchange {
            return false;
        }
        !crate::faults::skipped("writer.exchange")
    }
}

/// Writes `files` under the fresh folder `root`, fsyncing every file and folder.
fn write_tree(root: &Path, files: &DirFiles) -> Result<(), WriteError> {
    for (rel, (bytes, mode)) in files {
        let path = root.join(rel);
        let write = || -> io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut f = File::create_new(&path)?;
            f.write_all(bytes)?;
            f.set_permissions(Permissions::from_mode(mode & 0o7777))?;
            f.sync_all()
        };
        write().map_err(|e| WriteError::io(&path, "write staged file", e))?;
    }
    // Innermost folders first, the staged root last.
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
        .collect();
    dirs.reverse();
    for d in &dirs {
        std::fs::set_permissions(d, Permissions::from_mode(DEFAULT_DIR_MODE))
            .map_err(|e| WriteError::io(d, "set mode of staged folder", e))?;
        sync_dir(d)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| WriteError::io(dir, "fsync folder", e))
}

#[cfg(test)]
mod tests;

//! The steps of one write, in order: stage the new content, park the old copy, record the
//! intent, swap, fsync, and (outside an operation) delete the parked copy. Each step is a
//! fault point; a failure after the intent is recorded puts the destination back with the
//! same code start-up recovery uses ([`Step::roll_back`]).

use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::confine::Target;
use super::intent::{FileId, Step};
use super::{DirFiles, Fault, WriteError, Writer, sync_dir, write_tree};
use crate::transient::{STAGE_RANDOM, staged, swap_aside};

/// New content staged beside its destination.
pub(super) struct Staged {
    path: PathBuf,
    id: FileId,
    dir: bool,
}

/// A fresh staging path for `name` in `dir` (nothing there yet).
fn staged_path(dir: &Path, name: &OsStr) -> PathBuf {
    loop {
        let random: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(STAGE_RANDOM)
            .collect();
        let p = dir.join(staged(name, &random));
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
    }
}

/// A fresh parking path for `name` in `dir`: `.<name>.skillmeatd-swap-<hex>`.
pub(super) fn fresh_park_path(dir: &Path, name: &OsStr) -> PathBuf {
    loop {
        let p = dir.join(swap_aside(name, fastrand::u32(..)));
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
    }
}

/// Deletes a file, a symbolic link (never what it points at) or a whole folder.
pub(super) fn remove_entry(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Swaps `a` and `b` in one atomic step. Ok(false) where the system or the filesystem
/// cannot (the caller then uses two renames).
pub(super) fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
        };
        let (ca, cb) = (c(a)?, c(b)?);
        #[cfg(target_os = "linux")]
        // SAFETY: both arguments are valid NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        #[cfg(target_os = "macos")]
        // SAFETY: both arguments are valid NUL-terminated strings that outlive the call.
        let r = unsafe { libc::renamex_np(ca.as_ptr(), cb.as_ptr(), libc::RENAME_SWAP) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        let unsupported = [libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP, libc::ENOTSUP];
        if e.raw_os_error().is_some_and(|c| unsupported.contains(&c)) {
            return Ok(false);
        }
        Err(e)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

impl Writer {
    /// Stages `bytes` (mode `mode`) beside the destination, fsynced.
    pub(super) fn stage_file(
        &self,
        target: &Target,
        bytes: &[u8],
        mode: u32,
    ) -> Result<Staged, WriteError> {
        let path = staged_path(&target.dir, &target.name);
        let write = || -> io::Result<FileId> {
            let mut f = File::create_new(&path)?;
            f.write_all(bytes)?;
            f.set_permissions(Permissions::from_mode(mode))?;
            f.sync_all()?;
            FileId::of(&path)?.ok_or_else(|| io::Error::other("the staged copy vanished"))
        };
        let id = write().map_err(|e| {
            let _ = std::fs::remove_file(&path);
            WriteError::io(&path, "write staged copy", e)
        })?;
        let staged = Staged {
            path,
            id,
            dir: false,
        };
        self.step("write.staged")
            .inspect_err(|e| self.discard(e, &staged))?;
        Ok(staged)
    }

    /// Stages exactly `files` as a folder beside the destination, every file and folder
    /// fsynced.
    pub(super) fn stage_dir(
        &self,
        target: &Target,
        files: &DirFiles,
    ) -> Result<Staged, WriteError> {
        let path = staged_path(&target.dir, &target.name);
        std::fs::create_dir(&path)
            .map_err(|e| WriteError::io(&target.dir, "stage a folder in", e))?;
        let staged = write_tree(&path, files)
            .and_then(|()| {
                FileId::of(&path)
                    .map_err(|e| WriteError::io(&path, "inspect", e))?
                    .ok_or_else(|| WriteError::io(&path, "inspect", io::Error::other("vanished")))
            })
            .map(|id| Staged {
                path: path.clone(),
                id,
                dir: true,
            })
            .inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&path);
            })?;
        self.step("write.staged")
            .inspect_err(|e| self.discard(e, &staged))?;
        Ok(staged)
    }

    fn discard(&self, e: &WriteError, staged: &Staged) {
        if !e.is_crash() {
            let _ = remove_entry(&staged.path);
        }
    }

    /// Puts `staged` in place of the destination, or with None removes the destination.
    /// The caller holds the destination's lock.
    pub(super) fn swap(&self, target: &Target, staged: Option<Staged>) -> Result<(), WriteError> {
        let dest = target.path();
        let old = FileId::of(&dest).map_err(|e| WriteError::io(&dest, "inspect", e))?;
        let parked = old.map(|_| fresh_park_path(&target.dir, &target.name));
        // A file's old copy is parked with a hard link: the destination never disappears.
        // Where links are refused (some filesystems), it goes aside with a rename instead.
        let mut linked = false;
        if let (Some(s), Some(p)) = (&staged, &parked) {
            let old_is_dir = std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir());
            if !s.dir && !old_is_dir && std::fs::hard_link(&dest, p).is_ok() {
                linked = true;
                let parked_step = self.step("write.parked");
                if let Err(e) = parked_step {
                    if !e.is_crash() {
                        let _ = std::fs::remove_file(p);
                        self.discard(&e, s);
                    }
                    return Err(e);
                }
            }
        }
        let step = Step {
            root: target.root.clone(),
            dest: dest.clone(),
            staged: staged.as_ref().map(|s| s.path.clone()),
            parked,
            old,
            new: staged.as_ref().map(|s| s.id),
        };
        let journaled = match self.journal.as_ref().map(|j| j.record(&step)) {
            None => false,
            Some(Ok(j)) => j,
            Some(Err(e)) => {
                if let Some(p) = step.parked.as_ref().filter(|_| linked) {
                    let _ = std::fs::remove_file(p);
                }
                if let Some(s) = &staged {
                    self.discard(&e, s);
                }
                return Err(e);
            }
        };
        let swapped = self
            .step("write.recorded")
            .and_then(|()| self.swap_recorded(&step, linked))
            .and_then(|()| sync_dir(&target.dir))
            .and_then(|()| self.step("write.synced"));
        if let Err(e) = swapped {
            if !e.is_crash()
                && let Err(back) = step.roll_back()
            {
                let op = if journaled {
                    "put the previous copy back (the next start retries from its intent)"
                } else {
                    "put the previous copy back"
                };
                return Err(WriteError::io(&dest, op, back));
            }
            return Err(e);
        }
        if !journaled && let Err(e) = step.finish() {
            tracing::warn!(path = %dest.display(), error = %e, "could not delete the replaced copy");
        }
        Ok(())
    }

    /// The renames of a recorded step.
    fn swap_recorded(&self, step: &Step, linked: bool) -> Result<(), WriteError> {
        let dest = &step.dest;
        let rename = |from: &Path, to: &Path, op: &'static str| {
            std::fs::rename(from, to).map_err(|e| WriteError::io(to, op, e))
        };
        match (&step.staged, &step.parked) {
            (Some(s), None) => {
                rename(s, dest, "rename staged copy into place")?;
            }
            (Some(s), Some(_)) if linked => {
                self.fault(Fault::BeforeFileRename)
                    .map_err(|e| WriteError::io(dest, "rename staged copy over", e))?;
                rename(s, dest, "rename staged copy over")?;
            }
            (Some(s), Some(p)) => {
                let exchanged = self.may_exchange()
                    && exchange(s, dest).map_err(|e| WriteError::io(dest, "exchange", e))?;
                if !exchanged {
                    rename(dest, p, "move aside")?;
                    self.step("write.aside")?;
                    self.fault(Fault::SecondDirRename)
                        .map_err(|e| WriteError::io(dest, "rename staged folder into place", e))?;
                    rename(s, dest, "rename staged folder into place")?;
                }
            }
            (None, Some(p)) => {
                rename(dest, p, "move aside")?;
                self.step("write.aside")?;
            }
            (None, None) => {}
        }
        self.step("write.swapped")
    }
}

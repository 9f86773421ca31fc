//! SkillMeat's advisory lock: an exclusive `flock` on the sibling file
//! `.<destination name>.skillmeat-lock` (formats doc §10). The lock file is created when
//! absent and never deleted, exactly as SkillMeat 0.74.0 leaves it, so both tools always
//! lock the same inode.
//!
//! `flock` locks belong to an open file description: a second `open` + lock of the same
//! file conflicts even inside one process, which is what makes [`Lock`] usable as a
//! per-destination mutex between threads as well as between processes.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::WriteError;

/// Suffix SkillMeat gives its lock files.
pub use crate::transient::LOCK_SUFFIX;

/// The lock file guarding `dest`: `<dir>/.<name>.skillmeat-lock`.
///
/// E.g. `.claude/.skillmeat-deployed.toml` → `.claude/..skillmeat-deployed.toml.skillmeat-lock`.
pub fn lock_path(dest: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(dest.file_name().unwrap_or(dest.as_os_str()));
    name.push(LOCK_SUFFIX);
    dest.with_file_name(name)
}

/// A held lock; dropping it releases the lock (closing the file does).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock guarding `dest`, polling every `poll` for at most `wait`.
    ///
    /// # Errors
    /// [`WriteError::Locked`] when another holder keeps it past `wait`;
    /// [`WriteError::Io`] when the lock file cannot be opened (e.g. a read-only folder).
    pub fn acquire(dest: &Path, wait: Duration, poll: Duration) -> Result<Lock, WriteError> {
        let path = lock_path(dest);
        // O_NONBLOCK: a FIFO put in the lock file's place must not block the open.
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .mode(0o644)
            .open(&path)
            .map_err(|e| WriteError::io(&path, "open lock file", e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file, path }),
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= wait {
                        return Err(WriteError::Locked {
                            path: dest.to_path_buf(),
                            lock: path,
                            waited,
                        });
                    }
                    std::thread::sleep(poll.min(wait - waited));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(WriteError::io(&path, "lock", e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_follow_skillmeat() {
        assert_eq!(
            lock_path(Path::new("/p/.claude/.skillmeat-deployed.toml")),
            Path::new("/p/.claude/..skillmeat-deployed.toml.skillmeat-lock")
        );
        assert_eq!(
            lock_path(Path::new("/p/.claude/skills/review-skill")),
            Path::new("/p/.claude/skills/.review-skill.skillmeat-lock")
        );
        assert_eq!(
            lock_path(Path::new("/c/collection.lock")),
            Path::new("/c/.collection.lock.skillmeat-lock")
        );
    }

    #[test]
    fn a_second_open_file_description_conflicts_and_release_frees_it() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("x.md");
        let held = Lock::acquire(&dest, Duration::ZERO, Duration::ZERO).unwrap();
        let err = Lock::acquire(&dest, Duration::from_millis(120), Duration::from_millis(50))
            .unwrap_err();
        match err {
            WriteError::Locked {
                waited, ref lock, ..
            } => {
                assert!(waited >= Duration::from_millis(120));
                assert_eq!(lock, held.path());
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string().contains("locked by another process"),
            "{err}"
        );
        drop(held);
        Lock::acquire(&dest, Duration::ZERO, Duration::ZERO).unwrap();
        assert!(lock_path(&dest).exists(), "the lock file is never deleted");
    }

    #[test]
    fn a_fifo_in_the_lock_files_place_is_an_error_not_a_wait() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("x.md");
        let c = std::ffi::CString::new(lock_path(&dest).as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let err = Lock::acquire(&dest, Duration::ZERO, Duration::ZERO).unwrap_err();
        assert!(matches!(err, WriteError::Io { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

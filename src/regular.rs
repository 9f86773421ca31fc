//! Opening files that users and other programs control, without ever blocking: only
//! regular files are read.
//!
//! A path found in a project, a collection or a request may name a FIFO, a socket or a
//! device. Opening a FIFO for reading blocks until a writer comes (forever, if none does),
//! and reading a device may never end. [`open`] refuses anything but a regular file at
//! once: it checks the path with `stat` (so no device is even opened), opens it with
//! `O_NONBLOCK` (a FIFO swapped in meanwhile still returns at once) and checks the open
//! file with `fstat` before any read. On a regular file `O_NONBLOCK` changes nothing.
//!
//! Used by every reader of such files: SkillMeat's files ([`crate::formats`]), the
//! content hash ([`crate::hash`]), history's captures and archive imports, `daemon.toml`.

use std::fs::{self, File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a path was not opened: it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is {kind}, not a regular file")]
pub struct NotRegular {
    /// What it is instead, with its article: `a FIFO (named pipe)`, `a folder`, …
    pub kind: &'static str,
}

/// What a file type is, in words.
pub fn describe(t: FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

fn refuse(t: FileType) -> io::Result<()> {
    if t.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            NotRegular { kind: describe(t) },
        ))
    }
}

/// Whether `e` is [`open`]'s refusal of a file that is not regular.
pub fn is_not_regular(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotRegular>())
}

/// Opens the regular file at `path` (symlinks followed) for reading, never blocking.
///
/// # Errors
/// The path cannot be read, or is not a regular file (an [`io::ErrorKind::InvalidInput`]
/// error carrying [`NotRegular`]; see [`is_not_regular`]).
pub fn open(path: &Path) -> io::Result<File> {
    refuse(fs::metadata(path)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    refuse(file.metadata()?.file_type())?;
    Ok(file)
}

/// Reads the whole regular file at `path`, as [`open`] opens it.
///
/// # Errors
/// As [`open`], and read errors.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the whole regular file at `path` as UTF-8, as [`open`] opens it.
///
/// # Errors
/// As [`read`]; text that is not UTF-8 ([`io::ErrorKind::InvalidData`]).
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("pipe");
        mkfifo(&fifo);
        std::os::unix::fs::symlink(&fifo, d.path().join("link")).unwrap();
        let started = Instant::now();
        for p in [fifo, d.path().join("link")] {
            let e = read(&p).unwrap_err();
            assert!(is_not_regular(&e), "{e}");
            assert_eq!(e.to_string(), "is a FIFO (named pipe), not a regular file");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn folders_and_devices_are_refused_and_files_read() {
        let d = tempfile::tempdir().unwrap();
        assert!(is_not_regular(&read(d.path()).unwrap_err()));
        let e = read(Path::new("/dev/null")).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let f = d.path().join("f");
        std::fs::write(&f, "text").unwrap();
        assert_eq!(read_to_string(&f).unwrap(), "text");
        assert!(!is_not_regular(&read(&d.path().join("nope")).unwrap_err()));
    }
}

//! The API socket: a private folder, a stale socket replaced and a live one left alone,
//! or the listening socket a service manager passed in (socket activation, `LISTEN_FDS`).
//!
//! [`crate::daemon::run`] calls [`listener`] once at start and, on the way out, removes the
//! socket file only when [`SocketOwner::Daemon`] bound it. [`private_dir`] also guards the
//! state directory.

use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket (or a private folder) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("a live daemon already answers on socket {}; not taking it over", socket.display())]
    SocketInUse { socket: PathBuf },
    #[error("{}: {problem}", path.display())]
    Insecure { path: PathBuf, problem: String },
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Where the listening socket came from, which decides who removes its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOwner {
    /// The daemon bound it and removes the file on exit.
    Daemon,
    /// The service manager passed it in (socket activation) and keeps the file.
    ServiceManager,
}

/// The socket to serve on: the one the service manager passed in, if any, else a fresh
/// one bound at `socket` by [`bind_socket`].
///
/// # Errors
/// The passed descriptor is not a listening Unix socket, or binding failed.
pub fn listener(socket: &Path) -> Result<(UnixListener, SocketOwner), SocketError> {
    let invalid = |problem: String| SocketError::Insecure {
        path: socket.to_path_buf(),
        problem,
    };
    let fds: Vec<_> = sd_notify::listen_fds()
        .map_err(|e| invalid(format!("socket activation: {e}")))?
        .collect();
    let Some(&fd) = fds.first() else {
        return Ok((bind_socket(socket)?, SocketOwner::Daemon));
    };
    if fds.len() > 1 {
        tracing::warn!(
            count = fds.len(),
            "several sockets passed in; serving on the first"
        );
    }
    // SAFETY: LISTEN_PID names this process, so the manager passed `fd` to us alone and
    // nothing else in the process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let std_listener = std::os::unix::net::UnixListener::from(owned);
    let addr = std_listener.local_addr().map_err(|e| {
        invalid(format!(
            "socket activation: descriptor {fd} is not a Unix socket ({e})"
        ))
    })?;
    let passed: Option<PathBuf> = addr.as_pathname().map(Path::to_path_buf);
    if passed.as_deref() != Some(socket) {
        tracing::warn!(
            passed = ?passed,
            expected = %socket.display(),
            "the service manager's socket is not where clients look; check ListenStream="
        );
    }
    std_listener
        .set_nonblocking(true)
        .map_err(|e| invalid(format!("socket activation: {e}")))?;
    let listener = UnixListener::from_std(std_listener)
        .map_err(|e| invalid(format!("socket activation: {e}")))?;
    tracing::info!(socket = ?passed, "serving on the socket passed by the service manager");
    Ok((listener, SocketOwner::ServiceManager))
}

/// Creates `dir` (and parents) with mode 0700 from the start, or checks an existing one is
/// ours and private, tightening it if it is ours but open.
pub fn private_dir(dir: &Path) -> Result<(), SocketError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir, "create folder"))?;
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir, "stat"))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() {
        return Err(SocketError::Insecure {
            path: dir.into(),
            problem: "is not a folder (a symlink?)".into(),
        });
    }
    if meta.uid() != me {
        return Err(SocketError::Insecure {
            path: dir.into(),
            problem: format!("is owned by uid {}, not by us ({me})", meta.uid()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), "folder was open to others; setting mode 0700");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir, "chmod"))?;
    }
    Ok(())
}

/// Binds the socket: a private folder first, a stale socket replaced, a live one left alone.
///
/// # Errors
/// The folder is not private and ours, a daemon answers on the socket, the path is not a
/// socket, or binding failed.
pub fn bind_socket(socket: &Path) -> Result<UnixListener, SocketError> {
    let dir = socket.parent().unwrap_or(Path::new("/"));
    private_dir(dir)?;
    match fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(SocketError::SocketInUse {
                    socket: socket.into(),
                });
            }
            tracing::info!(socket = %socket.display(), "replacing a stale socket");
            fs::remove_file(socket).map_err(io_err(socket, "remove stale socket"))?;
        }
        Ok(_) => {
            return Err(SocketError::Insecure {
                path: socket.into(),
                problem: "exists and is not a socket; not removing it".into(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(socket, "stat")(e)),
    }
    UnixListener::bind(socket).map_err(io_err(socket, "bind"))
}

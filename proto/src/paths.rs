//! Where things live: SkillMeat's home, the daemon's state directory and its socket.
//!
//! Both binaries resolve paths through this one module. Each path has a flag and an
//! environment variable; the flag wins, then the variable, then the default:
//!
//! | path | flag | variable | default |
//! |---|---|---|---|
//! | SkillMeat home | `--skillmeat-home` | `SKILLMEAT_HOME` | `$HOME/.skillmeat` |
//! | state directory | `--state-dir` | `SKILLMEATD_STATE_DIR` | `<home>/daemon` |
//! | socket | `--socket` | `SKILLMEATD_SOCKET` | `$XDG_RUNTIME_DIR/skillmeatd/skillmeatd.sock`, else `<state>/skillmeatd.sock` |
//!
//! The files inside the state directory that only the daemon opens (store, lock, pid file)
//! are named by the daemon itself; the log file is here because `smctl` points people to it.

use std::path::{Path, PathBuf};

/// Environment variable naming SkillMeat's home folder.
pub const ENV_SKILLMEAT_HOME: &str = "SKILLMEAT_HOME";
/// Environment variable naming the daemon's state directory.
pub const ENV_STATE_DIR: &str = "SKILLMEATD_STATE_DIR";
/// Environment variable naming the daemon's socket.
pub const ENV_SOCKET: &str = "SKILLMEATD_SOCKET";

/// The resolved set of paths one daemon instance uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// SkillMeat's home (`~/.skillmeat`): config, collections, snapshots.
    pub skillmeat_home: PathBuf,
    /// The daemon's own state: store, lock, pid file, log.
    pub state_dir: PathBuf,
    /// The Unix socket the gRPC API is served on.
    pub socket: PathBuf,
}

impl Paths {
    /// Resolves every path from explicit flags, then the environment, then the defaults.
    ///
    /// # Errors
    /// Fails when a default is needed and `HOME` is not set.
    pub fn resolve(
        skillmeat_home: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        socket: Option<PathBuf>,
    ) -> Result<Paths, String> {
        Self::resolve_with(skillmeat_home, state_dir, socket, |k| std::env::var_os(k))
    }

    /// [`Paths::resolve`] with the environment given as a function (for tests).
    ///
    /// # Errors
    /// Fails when a default is needed and `HOME` is not set.
    pub fn resolve_with(
        skillmeat_home: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        socket: Option<PathBuf>,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Paths, String> {
        let from_env = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let skillmeat_home = match skillmeat_home.or_else(|| from_env(ENV_SKILLMEAT_HOME)) {
            Some(p) => p,
            None => from_env("HOME")
                .ok_or("HOME is not set: pass --skillmeat-home or set SKILLMEAT_HOME")?
                .join(".skillmeat"),
        };
        let skillmeat_home = absolute(&skillmeat_home);
        let state_dir = absolute(
            &state_dir
                .or_else(|| from_env(ENV_STATE_DIR))
                .unwrap_or_else(|| skillmeat_home.join("daemon")),
        );
        let socket = absolute(
            &socket
                .or_else(|| from_env(ENV_SOCKET))
                .or_else(|| {
                    from_env("XDG_RUNTIME_DIR")
                        .map(|d| d.join("skillmeatd").join("skillmeatd.sock"))
                })
                .unwrap_or_else(|| state_dir.join("skillmeatd.sock")),
        );
        Ok(Paths {
            skillmeat_home,
            state_dir,
            socket,
        })
    }

    /// Where a daemon started in the background writes its log.
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("skillmeatd.log")
    }
}

/// Makes `p` absolute against the current directory, without touching the filesystem.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The absolute, symlink-resolved form of a project path (as given, made absolute, when it
/// does not exist): how a project is named on both sides of the socket.
pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| absolute(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(
        pairs: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    }

    #[test]
    fn defaults_follow_home() {
        let p = Paths::resolve_with(None, None, None, env(&[("HOME", "/h")])).unwrap();
        assert_eq!(p.skillmeat_home, PathBuf::from("/h/.skillmeat"));
        assert_eq!(p.state_dir, PathBuf::from("/h/.skillmeat/daemon"));
        assert_eq!(
            p.socket,
            PathBuf::from("/h/.skillmeat/daemon/skillmeatd.sock")
        );
    }

    #[test]
    fn runtime_dir_hosts_the_socket() {
        let p = Paths::resolve_with(
            None,
            None,
            None,
            env(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/7")]),
        )
        .unwrap();
        assert_eq!(
            p.socket,
            PathBuf::from("/run/user/7/skillmeatd/skillmeatd.sock")
        );
    }

    #[test]
    fn flags_beat_environment() {
        let p = Paths::resolve_with(
            Some("/x".into()),
            Some("/s".into()),
            None,
            env(&[
                ("HOME", "/h"),
                ("SKILLMEAT_HOME", "/y"),
                ("SKILLMEATD_STATE_DIR", "/z"),
            ]),
        )
        .unwrap();
        assert_eq!(p.skillmeat_home, PathBuf::from("/x"));
        assert_eq!(p.state_dir, PathBuf::from("/s"));
        assert_eq!(p.socket, PathBuf::from("/s/skillmeatd.sock"));
    }

    #[test]
    fn canonical_resolves_links_and_keeps_missing_paths() {
        let d = std::env::temp_dir().join(format!("skillmeatd-proto-{}", std::process::id()));
        std::fs::create_dir_all(d.join("real")).unwrap();
        let link = d.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(d.join("real"), &link).unwrap();
        let real = std::fs::canonicalize(d.join("real")).unwrap();
        assert_eq!(canonical(&link), real);
        assert_eq!(canonical(&link.join("gone")), link.join("gone"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_home_is_an_error() {
        assert!(Paths::resolve_with(None, None, None, env(&[])).is_err());
    }
}

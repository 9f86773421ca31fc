//! Finding the `skillmeatd` binary smctl should start or install: the one named with
//! `--daemon-bin`, else the one beside smctl (a release archive or `cargo install` puts
//! both in one folder), else the first on `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The daemon binary's file name.
pub const DAEMON: &str = "skillmeatd";

/// The absolute, symlink-free path of the daemon binary to use.
///
/// # Errors
/// The named file is not an executable, or none was found beside smctl or on `PATH`.
pub fn skillmeatd(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return executable(p).ok_or_else(|| format!("{} is not an executable file", p.display()));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .and_then(|exe| exe.parent().map(|d| d.join(DAEMON)));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(DAEMON));
    beside
        .into_iter()
        .chain(on_path)
        .find_map(|p| executable(&p))
        .ok_or_else(|| {
            format!("no {DAEMON} binary beside smctl or on PATH; name it with --daemon-bin")
        })
}

fn executable(p: &Path) -> Option<PathBuf> {
    let p = p.canonicalize().ok()?;
    let meta = std::fs::metadata(&p).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_binary_must_be_executable() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("skillmeatd");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        assert!(
            skillmeatd(Some(&f))
                .unwrap_err()
                .contains("not an executable")
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(skillmeatd(Some(&f)).unwrap(), f.canonicalize().unwrap());
        assert!(
            skillmeatd(Some(d.path())).is_err(),
            "a folder is not a binary"
        );
    }
}

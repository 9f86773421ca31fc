//! The daemon's paths: the shared defaults (SkillMeat home, state directory, socket) come
//! from the wire crate, so `smctl` resolves them the same way; the files inside the state
//! directory that only the daemon opens are named here.

use std::path::PathBuf;

pub use skillmeatd_proto::paths::{
    ENV_SKILLMEAT_HOME, ENV_SOCKET, ENV_STATE_DIR, Paths, absolute, canonical,
};

/// The daemon's own files in [`Paths::state_dir`].
pub trait StateFiles {
    /// The sled store's folder.
    fn store_dir(&self) -> PathBuf;
    /// The file whose exclusive lock marks the one daemon of this state directory.
    fn lock_file(&self) -> PathBuf;
    /// The pid file, written once the daemon serves.
    fn pid_file(&self) -> PathBuf;
    /// The folder of the write intents of operations in progress
    /// ([`crate::writer::intent`]).
    fn intents_dir(&self) -> PathBuf;
}

impl StateFiles for Paths {
    fn store_dir(&self) -> PathBuf {
        self.state_dir.join("store")
    }

    fn lock_file(&self) -> PathBuf {
        self.state_dir.join("skillmeatd.lock")
    }

    fn pid_file(&self) -> PathBuf {
        self.state_dir.join("skillmeatd.pid")
    }

    fn intents_dir(&self) -> PathBuf {
        self.state_dir.join("intents")
    }
}

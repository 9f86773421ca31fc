//! One content of one artifact: a [`Version`] (its files as blobs, its parent, what made it)
//! and its id, printed `v<N>`. Made by [`crate::history`], persisted by [`crate::store`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Location;

/// Id of a version, printed `v<N>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionId(pub u64);

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl FromStr for VersionId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('v')
            .and_then(|n| n.parse().ok())
            .map(VersionId)
            .ok_or(())
    }
}

/// What made a version or snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Seen by the watcher after changes settled (automatic).
    Watch,
    /// Content recorded by a deployment (the merge base).
    Deploy,
    Sync,
    Merge,
    Rollback,
    Import,
    Manual,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Watch => "watch",
            Origin::Deploy => "deploy",
            Origin::Sync => "sync",
            Origin::Merge => "merge",
            Origin::Rollback => "rollback",
            Origin::Import => "import",
            Origin::Manual => "manual",
        }
    }
}

/// One file of a version's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the artifact, `/`-separated; empty for a single-file artifact.
    pub path: String,
    /// Hex SHA-256 of the bytes (the blob id).
    pub blob: String,
    pub size: u64,
    /// Permission bits (`0o644`, `0o755`).
    pub mode: u32,
    /// The link target when the file was a symbolic link (its bytes are the target's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<String>,
}

/// One content of one artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub id: VersionId,
    pub location: Location,
    /// SkillMeat's content hash of this content (see [`Location::variant`]).
    pub content_hash: String,
    /// The artifact is one file (its name is not part of the hash).
    pub single_file: bool,
    pub entries: Vec<Entry>,
    pub parent: Option<VersionId>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Version {
    /// Bytes of the content, uncompressed.
    pub fn logical_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        assert_eq!(VersionId(12).to_string(), "v12");
        assert_eq!("v12".parse::<VersionId>(), Ok(VersionId(12)));
        assert!("x3".parse::<VersionId>().is_err());
    }
}

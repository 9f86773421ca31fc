//! One content of one artifact: a [`Version`] (its files as blobs, its parents, what made it)
//! and its id, printed `v<N>`. Made by [`crate::history`], persisted by [`crate::store`].
//!
//! Versions form one graph across the collection and every project: a version's parents are
//! the previous version at its location and, where content came from elsewhere, the version
//! it came from (a deployment's first version → the collection version deployed; a push →
//! the project version pushed; a merge → the version merged in).
//!
//! Records written before versions had several parents carry one `parent`; they are read
//! as a list of one. New records still write `parent` (the first parent), so an older
//! release reading this store sees the same lines it knew.

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
#[serde(from = "VersionRecord", into = "VersionRecord")]
pub struct Version {
    pub id: VersionId,
    pub location: Location,
    /// SkillMeat's content hash of this content (see [`Location::variant`]).
    pub content_hash: String,
    /// The artifact is one file (its name is not part of the hash).
    pub single_file: bool,
    pub entries: Vec<Entry>,
    /// The versions this one was made from, first the previous version at the same
    /// location (when there is one); no duplicates.
    pub parents: Vec<VersionId>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub origin: Origin,
    pub message: Option<String>,
    pub tags: Vec<String>,
}

/// A version as stored: `parent` (first parent, what every release reads) and, when there
/// are several, `parents`.
#[derive(Serialize, Deserialize)]
struct VersionRecord {
    id: VersionId,
    location: Location,
    content_hash: String,
    single_file: bool,
    entries: Vec<Entry>,
    parent: Option<VersionId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parents: Vec<VersionId>,
    time_ms: i64,
    origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

impl From<VersionRecord> for Version {
    fn from(r: VersionRecord) -> Version {
        let parents = if r.parents.is_empty() {
            r.parent.into_iter().collect()
        } else {
            r.parents
        };
        Version {
            id: r.id,
            location: r.location,
            content_hash: r.content_hash,
            single_file: r.single_file,
            entries: r.entries,
            parents,
            time_ms: r.time_ms,
            origin: r.origin,
            message: r.message,
            tags: r.tags,
        }
    }
}

impl From<Version> for VersionRecord {
    fn from(v: Version) -> VersionRecord {
        VersionRecord {
            id: v.id,
            location: v.location,
            content_hash: v.content_hash,
            single_file: v.single_file,
            entries: v.entries,
            parent: v.parents.first().copied(),
            parents: if v.parents.len() > 1 {
                v.parents
            } else {
                Vec::new()
            },
            time_ms: v.time_ms,
            origin: v.origin,
            message: v.message,
            tags: v.tags,
        }
    }
}

impl Version {
    /// The first parent: the previous version at the same location, if any.
    pub fn parent(&self) -> Option<VersionId> {
        self.parents.first().copied()
    }

    /// Adds `p` as a parent unless it is one already (or the version itself).
    pub fn add_parent(&mut self, p: VersionId) {
        if p != self.id && !self.parents.contains(&p) {
            self.parents.push(p);
        }
    }

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

    /// A record as the release before parent lists wrote it (one `parent`, maybe null).
    const OLD_RECORD: &str = r#"{"id":7,"location":{"scope":{"project":"/p"},"root":".claude","path":"skills/a"},"content_hash":"ab","single_file":false,"entries":[{"path":"SKILL.md","blob":"00","size":3,"mode":420}],"parent":5,"time_ms":1,"origin":"watch"}"#;

    #[test]
    fn old_records_read_as_one_parent_and_new_ones_keep_parent_for_old_readers() {
        let v: Version = serde_json::from_str(OLD_RECORD).unwrap();
        assert_eq!(v.parents, vec![VersionId(5)]);
        let root: Version =
            serde_json::from_str(&OLD_RECORD.replace(r#""parent":5"#, r#""parent":null"#)).unwrap();
        assert!(root.parents.is_empty());

        let mut merged = v.clone();
        merged.add_parent(VersionId(3));
        merged.add_parent(VersionId(3));
        merged.add_parent(VersionId(7));
        assert_eq!(merged.parents, vec![VersionId(5), VersionId(3)]);
        let json: serde_json::Value = serde_json::to_value(&merged).unwrap();
        assert_eq!(
            json["parent"], 5,
            "an older release still finds the first parent"
        );
        assert_eq!(json["parents"], serde_json::json!([5, 3]));
        let back: Version = serde_json::from_value(json).unwrap();
        assert_eq!(back, merged);
        // One parent: written exactly as before.
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains("parents"), "{json}");
    }
}

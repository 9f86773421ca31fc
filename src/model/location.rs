//! Where artifacts live: a [`Location`] (a collection's or a project's artifact) and a
//! [`SnapshotTarget`] (a whole collection or project). History, the store, operations and the
//! RPC layer name artifacts with these.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::formats::collection;
use crate::hash::Variant;

/// Whose artifact: a collection's or a project's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// A collection, by name.
    Collection(String),
    /// A project, by absolute folder.
    Project(PathBuf),
}

/// Where an artifact lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    pub scope: Scope,
    /// Profile root inside a project (`.claude`); empty in a collection.
    pub root: String,
    /// Artifact path relative to the collection folder or the profile root, `/`-separated.
    pub path: String,
}

impl Location {
    /// A collection artifact.
    pub fn collection(name: &str, path: &str) -> Location {
        Location {
            scope: Scope::Collection(name.to_string()),
            root: String::new(),
            path: path.trim_end_matches('/').to_string(),
        }
    }

    /// A project artifact.
    pub fn project(project: &Path, root: &str, path: &str) -> Location {
        Location {
            scope: Scope::Project(project.to_path_buf()),
            root: root.to_string(),
            path: path.trim_end_matches('/').to_string(),
        }
    }

    /// Which SkillMeat hash describes content at this location.
    pub fn variant(&self) -> Variant {
        match self.scope {
            Scope::Collection(_) => Variant::DeployedCopy,
            Scope::Project(_) => Variant::Legacy,
        }
    }

    /// The artifact's path on disk.
    pub fn on_disk(&self, skillmeat_home: &Path) -> PathBuf {
        match &self.scope {
            Scope::Collection(n) => collection::collections_dir(skillmeat_home)
                .join(n)
                .join(&self.path),
            Scope::Project(p) => p.join(&self.root).join(&self.path),
        }
    }

    /// Path of the artifact inside its collection or project (`skills/x`,
    /// `.claude/skills/x`).
    pub fn display_path(&self) -> String {
        if self.root.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.root, self.path)
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Scope::Collection(n) => write!(f, "collection {n}: {}", self.path),
            Scope::Project(p) => write!(f, "{}: {}", p.display(), self.display_path()),
        }
    }
}

/// What a snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotTarget {
    Collection(String),
    Project(PathBuf),
}

impl fmt::Display for SnapshotTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotTarget::Collection(n) => write!(f, "collection {n}"),
            SnapshotTarget::Project(p) => write!(f, "project {}", p.display()),
        }
    }
}

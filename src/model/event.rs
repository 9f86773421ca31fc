//! Journal entries: an [`Event`] says what changed about one artifact (or a file, or a
//! watched root), with a cursor. Made by [`crate::journal`] and [`crate::live`], persisted by
//! [`crate::store`], streamed by [`crate::rpc`].

use serde::{Deserialize, Serialize};

use crate::drift::DriftKind;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The drift type changed (e.g. in sync → modified).
    DriftChanged,
    /// Same drift type, but a collection, project or record hash changed.
    HashChanged,
    /// A deployment (or an undeployed collection artifact) appeared.
    DeploymentAdded,
    /// A deployment (or an undeployed collection artifact) disappeared.
    DeploymentRemoved,
    /// A side of the artifact can no longer be read.
    Unreadable,
    /// A SkillMeat file became invalid (bad TOML, bad record).
    InvalidFile,
    /// A watched root switched to polling.
    RootPolling,
}

/// Which side of a deployment changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedSide {
    None,
    Collection,
    Project,
    Both,
    /// The deployment record itself (its content_hash) changed.
    Record,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic, never reused.
    pub cursor: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub kind: EventKind,
    pub project: String,
    pub profile_root: String,
    pub name: String,
    pub artifact_type: String,
    pub old_drift: Option<DriftKind>,
    pub new_drift: Option<DriftKind>,
    pub deployed_sha: Option<String>,
    pub collection_sha: Option<String>,
    pub project_sha: Option<String>,
    pub recommendation: String,
    pub changed: ChangedSide,
    /// For problems and polling: what happened, in one sentence.
    pub message: String,
    /// The daemon operation that caused the change, if the daemon wrote the files.
    pub operation: String,
}

impl Event {
    /// An event of `kind` with every other field empty.
    pub fn blank(kind: EventKind) -> Event {
        Event {
            cursor: 0,
            time_ms: 0,
            kind,
            project: String::new(),
            profile_root: String::new(),
            name: String::new(),
            artifact_type: String::new(),
            old_drift: None,
            new_drift: None,
            deployed_sha: None,
            collection_sha: None,
            project_sha: None,
            recommendation: String::new(),
            changed: ChangedSide::None,
            message: String::new(),
            operation: String::new(),
        }
    }

    /// An event saying `root` is now polled, and why.
    pub fn polling(root: &str, reason: &str) -> Event {
        Event {
            project: root.to_string(),
            message: reason.to_string(),
            ..Event::blank(EventKind::RootPolling)
        }
    }
}

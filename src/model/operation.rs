//! The operations log's entries: an [`OperationRecord`] says what a write-back operation
//! did and which safety snapshot holds what each [`Touched`] location was before. Made by
//! [`crate::operations`], persisted by [`crate::store`], listed by `smctl audit`.

use serde::{Deserialize, Serialize};

use super::{Location, SnapshotId};

/// One touched artifact or file, and the snapshot holding what it was before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touched {
    pub location: Location,
    pub snapshot: SnapshotId,
}

/// One entry of the operations log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// `sync_pull`, `sync_push`, `merge`, `rollback`, `undo`.
    pub operation: String,
    /// What it worked on, as people read it (`/home/u/app: .claude/skills/x`).
    pub targets: Vec<String>,
    pub files_restored: Vec<String>,
    pub files_merged: Vec<String>,
    pub files_conflicted: Vec<String>,
    /// Safety snapshots taken before writing.
    pub safety_snapshots: Vec<SnapshotId>,
    /// What was (or was about to be) written, for undo.
    pub touched: Vec<Touched>,
    pub success: bool,
    pub error: Option<String>,
    /// For an undo: the operation it undid.
    #[serde(default)]
    pub undoes: Option<u64>,
}

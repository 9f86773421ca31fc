//! The operations log's entries: an [`OperationRecord`] says what a write-back operation
//! did and which safety snapshot holds what each [`Touched`] location was before. Made by
//! [`crate::operations`], persisted by [`crate::store`], listed by `smctl audit`.
//!
//! A record is stored twice at least: as [`OperationStatus::Running`] when its id is
//! reserved (before anything is written), and with its outcome when it ends. A record
//! still `Running` at start-up belongs to an operation the daemon did not finish; start-up
//! recovery settles its writes and marks it [`OperationStatus::Interrupted`], saying what
//! it did in [`Recovery`].

use serde::{Deserialize, Serialize};

use super::{Location, SnapshotId, VersionId};

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// Its id is reserved and it runs (or the daemon stopped during it).
    Running,
    /// Done; everything it meant to write is written.
    Succeeded,
    /// Done, but files were written with conflict markers the user has to resolve.
    Conflicted,
    /// Stopped by an error; whatever it had written was put back.
    Failed,
    /// The daemon stopped during it; start-up recovery kept or put back its writes (see
    /// [`Recovery`]).
    Interrupted,
}

impl OperationStatus {
    /// The word `smctl audit` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Conflicted => "conflicted",
            OperationStatus::Failed => "failed",
            OperationStatus::Interrupted => "interrupted",
        }
    }
}

/// One record inside a bookkeeping file, when an operation changed that record only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RecordRef {
    /// A deployment record of a `.skillmeat-deployed.toml`, by SkillMeat's identity.
    Deployment {
        name: String,
        artifact_type: String,
        /// `deployment_profile_id`; None means SkillMeat's default profile.
        profile_id: Option<String>,
    },
    /// The entry `name::artifact_type` of a `collection.lock`.
    LockEntry { name: String, artifact_type: String },
}

/// One touched artifact or file, and the snapshot holding what it was before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touched {
    pub location: Location,
    pub snapshot: SnapshotId,
    /// For a bookkeeping file: the one record the operation changed (None = the whole
    /// file, or an artifact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordRef>,
}

impl Touched {
    /// Whether an operation touching `self` and one touching `other` changed the same
    /// thing: the same location, and the same record of it or the whole of it.
    pub fn overlaps(&self, other: &Touched) -> bool {
        self.location == other.location
            && (self.record.is_none() || other.record.is_none() || self.record == other.record)
    }
}

/// An entry an operation appended to SkillMeat's rollback audit of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub collection: String,
    /// The entry's `id` (`rb_…`).
    pub id: String,
}

/// What start-up recovery did about an interrupted operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Its writes were all done, so they were kept (it can be undone like any other);
    /// otherwise every write it had made was put back.
    pub kept: bool,
    /// What was done, one line per file or folder, as people read it.
    pub actions: Vec<String>,
}

/// One entry of the operations log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// `sync_pull`, `sync_push`, `merge`, `merge_continue`, `propagate`, `rollback`,
    /// `selective_rollback`, `undo`.
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
    /// Whether it ended [`OperationStatus::Succeeded`].
    pub success: bool,
    pub error: Option<String>,
    /// For an undo: the operation it undid.
    #[serde(default)]
    pub undoes: Option<u64>,
    /// Where it stands; absent in records written before statuses existed (see
    /// [`OperationRecord::status`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OperationStatus>,
    /// Entries it appended to SkillMeat's rollback audit (undo removes them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_entries: Vec<AuditEntry>,
    /// For an interrupted operation: what start-up recovery did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// For a merge: the version merged in (what `merge --continue` records as the second
    /// parent once the user resolved the conflicts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<VersionId>,
    /// For a selective rollback: the paths it restored (relative to the artifact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl OperationRecord {
    /// Where the operation stands (records from before statuses: succeeded or failed).
    pub fn status(&self) -> OperationStatus {
        self.status.unwrap_or(if self.success {
            OperationStatus::Succeeded
        } else {
            OperationStatus::Failed
        })
    }

    /// Whether its writes are in place: it succeeded, left conflicts, or was interrupted
    /// after its last write (recovery kept them). Only such operations can be undone.
    pub fn took_effect(&self) -> bool {
        match self.status() {
            OperationStatus::Succeeded | OperationStatus::Conflicted => true,
            OperationStatus::Interrupted => self.recovery.as_ref().is_some_and(|r| r.kept),
            OperationStatus::Running | OperationStatus::Failed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_statuses_read_as_succeeded_or_failed() {
        let old = r#"{"id":3,"time_ms":1,"operation":"sync_pull","targets":[],
            "files_restored":[],"files_merged":[],"files_conflicted":[],
            "safety_snapshots":[],"touched":[],"success":true,"error":null}"#;
        let rec: OperationRecord = serde_json::from_str(old).unwrap();
        assert_eq!(rec.status(), OperationStatus::Succeeded);
        assert!(rec.took_effect());
        let failed = OperationRecord {
            success: false,
            ..rec.clone()
        };
        assert_eq!(failed.status(), OperationStatus::Failed);
        assert!(!failed.took_effect());
        let interrupted = OperationRecord {
            status: Some(OperationStatus::Interrupted),
            recovery: Some(Recovery {
                kept: false,
                actions: vec![],
            }),
            ..failed
        };
        assert!(!interrupted.took_effect());
    }

    #[test]
    fn touches_overlap_on_the_same_record_or_a_whole_file() {
        let loc = Location::collection("c", "collection.lock");
        let entry = |name: &str| Touched {
            location: loc.clone(),
            snapshot: SnapshotId(1),
            record: Some(RecordRef::LockEntry {
                name: name.into(),
                artifact_type: "skill".into(),
            }),
        };
        let whole = Touched {
            record: None,
            ..entry("a")
        };
        assert!(entry("a").overlaps(&entry("a")));
        assert!(!entry("a").overlaps(&entry("b")));
        assert!(whole.overlaps(&entry("b")) && entry("b").overlaps(&whole));
        let elsewhere = Touched {
            location: Location::collection("c", "skills/a"),
            ..whole.clone()
        };
        assert!(!elsewhere.overlaps(&whole));
    }
}

//! The domain's nouns, at the bottom of the house: where artifacts live, their versions and
//! snapshots, drift reports, journal events and operation records.
//!
//! Plain data with serde encodings and small helpers, no I/O beyond path arithmetic. Every
//! layer above uses them: the store persists them without knowing who made them, history,
//! the engine and the operations compute with them, the RPC layer converts them.

pub mod content_hash;
pub mod event;
pub mod location;
pub mod operation;
pub mod report;
pub mod snapshot;
pub mod version;

pub use content_hash::ContentHash;
pub use event::{ChangedSide, Event, EventKind};
pub use location::{Location, Scope, SnapshotTarget};
pub use operation::{AuditEntry, OperationRecord, OperationStatus, RecordRef, Recovery, Touched};
pub use report::{ArtifactReport, KnownDrift};
pub use snapshot::{Snapshot, SnapshotId};
pub use version::{Entry, Origin, Version, VersionId};

//! Write-back operations: sync pull, sync push, merge, rollback and undo, and the log of
//! every one of them (`smctl audit`).
//!
//! Each operation is a synchronous function over the [`Engine`] (its history and store)
//! and a [`Writer`], run by the RPC layer on the blocking pool. They share one shape:
//!
//! 1. find the deployment (or collection artifact) and read every side into memory;
//! 2. with `dry_run`, stop there and say what would change;
//! 3. reserve the operation's id: its record is stored as `running` and flushed before
//!    anything else happens, so an id is never handed out twice, even across a crash;
//! 4. take a safety snapshot of every collection or project about to change
//!    ([`History::snapshot`]) *before* the first byte is written;
//! 5. record what it is about to write ([`Operations::touch`], flushed) — an artifact
//!    whole, or one record of a bookkeeping file — with the snapshot holding its previous
//!    content, and claim it ([`Claims`]) so the drift events of the write carry the id;
//! 6. write through the [`Writer`] (SkillMeat's lock, atomic swap, confined to the profile
//!    root or the collection folder): artifacts whole (a skill folder with
//!    [`Writer::replace_dir`], a single file with [`Writer::replace_file`]), then the
//!    bookkeeping files (`.skillmeat-deployed.toml`, `collection.lock`, the rollback audit).
//!    Every write is journaled in the operation's intent (see [`crate::writer::intent`]);
//! 7. commit (the writes stay; parked copies are deleted) and store the outcome, or on an
//!    error abort (every write put back, newest first) and store the error.
//!
//! A crash anywhere in between is settled by [`recover`] at the next start, before the
//! daemon serves: committed operations keep their writes, others are put back, and both
//! are logged as `interrupted`.
//!
//! Submodules, one per concept: `target` (finding the deployment), `content` (artifact
//! contents in memory, compared, merged, written), `claims`, `recovery`, and one per verb:
//! `sync`, `merge` (and `merge --continue`), `propagate` (one collection artifact into
//! every project, one operation), `rollback`, `undo` (whose module doc states the undo
//! rule).
//!
//! # Directions and choices
//! - `sync pull` is collection → project (a redeploy). SkillMeat's own `sync-pull` verb goes
//!   the other way (project → collection); ours for that is `sync push`.
//! - `merge` writes the merged result into the **project** copy (LOCAL = project, REMOTE =
//!   collection), unlike SkillMeat's sync merge, which writes into the collection. The
//!   base is the version in history whose hash is the deployment's `content_hash`. When no
//!   conflict is left, the deployment record's hash becomes the collection's hash (the
//!   collection content is now the merge base, and the project shows as `modified` by the
//!   local edits it kept); with conflicts left, the record is not touched and the
//!   operation ends `conflicted` (written, but not a success).
//! - Restoring from a snapshot writes what history kept: collection artifacts as a deploy
//!   copies them (SkillMeat's copy-ignored names are not part of their versions), project
//!   copies byte for byte, symbolic links as the files they pointed to.

mod claims;
mod content;
mod merge;
mod propagate;
mod recovery;
mod rollback;
mod selective;
mod sync;
mod target;
mod undo;

use std::path::Path;

pub use claims::{CLAIM_GRACE, Claim, Claims};
pub use propagate::{Action, ProjectOutcome, PropagateReport};
pub use recovery::{Recovered, recover};

use crate::engine::Engine;
use crate::faults;
use crate::formats::deployment_write::{self, DeploymentWriteError, RecordUpdate};
use crate::formats::lock_write::{self, LockUpdate, LockWriteError};
use crate::formats::rollback_audit::AuditWriteError;
use crate::formats::timestamp;
use crate::hash::{self, HashError, Variant};
use crate::history::{History, HistoryError, time};
use crate::model::{
    Location, OperationRecord, OperationStatus, Origin, RecordRef, SnapshotId, SnapshotTarget,
    Touched,
};
use crate::paths::StateFiles;

use crate::store::StoreError;
use crate::writer::{Journal, WriteError, Writer};

use target::Deployed;

impl OperationRecord {
    fn new(operation: &str, targets: Vec<String>) -> OperationRecord {
        OperationRecord {
            id: 0,
            time_ms: time::now_ms(),
            operation: operation.to_string(),
            targets,
            files_restored: Vec::new(),
            files_merged: Vec::new(),
            files_conflicted: Vec::new(),
            safety_snapshots: Vec::new(),
            touched: Vec::new(),
            success: false,
            error: None,
            undoes: None,
            status: Some(OperationStatus::Running),
            audit_entries: Vec::new(),
            recovery: None,
            merged_from: None,
            paths: Vec::new(),
        }
    }
}

/// Why an operation did not happen (or stopped). Each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Deployment(#[from] DeploymentWriteError),
    #[error(transparent)]
    Lock(#[from] LockWriteError),
    #[error(transparent)]
    Audit(#[from] AuditWriteError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpError {
    /// Whether the failure is another process holding SkillMeat's lock.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            OpError::Write(WriteError::Locked { .. })
                | OpError::Deployment(DeploymentWriteError::Write(WriteError::Locked { .. }))
                | OpError::Lock(LockWriteError::Write(WriteError::Locked { .. }))
                | OpError::Audit(AuditWriteError::Write(WriteError::Locked { .. }))
        )
    }
}

/// The `collection.lock` entry of `name` (`artifact_type`), as the operations log names it.
fn lock_entry(name: &str, artifact_type: &str) -> RecordRef {
    RecordRef::LockEntry {
        name: name.to_string(),
        artifact_type: artifact_type.to_string(),
    }
}

/// A file conflict, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: String,
    /// `both_modified`, `add_add`, `deleted_locally`, `deleted_in_collection`.
    pub kind: String,
    pub binary: bool,
    /// The side a `--prefer` took, if any.
    pub resolved: Option<String>,
}

/// A merged file, for dry runs: its path and merged bytes (None = deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedFile {
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// What an operation did (or, for a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct OpReport {
    /// The recorded operation (None for dry runs).
    pub record: Option<OperationRecord>,
    pub dry_run: bool,
    /// Files that change (restored, copied or merged).
    pub changed: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// The files of the result that differ from what is there now (merge dry runs).
    pub merged: Vec<MergedFile>,
    /// The base version of a merge.
    pub base: Option<String>,
    /// Why a merge used that base (or fast-forwarded, or had nothing to do).
    pub base_reason: Option<String>,
    /// What a rollback's target resolved to: a version (`v12`) or a snapshot (`s7`).
    pub resolved: Option<String>,
}

/// What a rollback goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTo {
    /// A version id (`v12`), a tag, or a snapshot id (`s7`).
    Spec(String),
    /// A time (ms since the epoch): the version current then, or the newest snapshot
    /// taken at or before it.
    At(i64),
}

/// How a rollback treats the current content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollbackMode {
    /// Exact restore of the target.
    #[default]
    Replace,
    /// Three-way merge keeping the changes made since the last recorded version (see
    /// [`Operations::rollback`]).
    Preserve,
}

/// Runs and logs operations.
pub struct Operations<'a> {
    engine: &'a Engine,
    writer: Writer,
    claims: Option<&'a Claims>,
}

impl<'a> Operations<'a> {
    /// Operations over `engine`, writing with `writer`; every write of an operation is
    /// journaled in the state directory's intents (see [`crate::writer::intent`]).
    pub fn new(engine: &'a Engine, writer: Writer) -> Operations<'a> {
        let writer = match writer.journal() {
            Some(_) => writer,
            None => writer.with_journal(Journal::new(engine.paths().intents_dir())),
        };
        Operations {
            engine,
            writer,
            claims: None,
        }
    }

    /// The same, announcing what each operation writes to `claims`.
    pub fn with_claims(mut self, claims: &'a Claims) -> Operations<'a> {
        self.claims = Some(claims);
        self
    }

    fn history(&self) -> &History {
        self.engine.history()
    }

    fn home(&self) -> &Path {
        self.history().skillmeat_home()
    }

    fn journal(&self) -> &Journal {
        self.writer
            .journal()
            .expect("Operations::new gives the writer a journal")
    }

    /// Runs `body` as a logged operation. Its id is reserved and its record stored as
    /// `running` first (flushed), then every write the body makes is journaled; the body
    /// [`Operations::touch`]es every location before writing it. At the end:
    ///
    /// - success: the journal commits (from here a crash keeps the writes), the record is
    ///   stored with its outcome, the parked copies are deleted;
    /// - error: every write the body made is put back, newest first, and the record says
    ///   so. Files are then as they were before the operation.
    ///
    /// A crash anywhere in between is settled by [`recover`] at the next start.
    fn logged(
        &self,
        mut rec: OperationRecord,
        body: impl FnOnce(&mut OperationRecord) -> Result<(), OpError>,
    ) -> Result<OperationRecord, OpError> {
        rec.status = Some(OperationStatus::Running);
        self.engine.store().begin_operation(&mut rec)?;
        faults::step("op.reserved");
        let journal = self.journal();
        journal.begin(rec.id);
        let result = body(&mut rec).and_then(|()| {
            journal.commit()?;
            faults::step("op.committed");
            Ok(())
        });
        if let Some(c) = self.claims {
            c.release(rec.id);
        }
        let (wait, poll) = (self.writer.lock_wait(), self.writer.lock_poll());
        match &result {
            Ok(()) => {
                if rec.status != Some(OperationStatus::Conflicted) {
                    rec.status = Some(OperationStatus::Succeeded);
                }
                rec.success = rec.status == Some(OperationStatus::Succeeded);
                // Should this fail, the journal stays committed and the next start keeps
                // the writes and says so.
                self.engine.store().put_operation(&rec)?;
                faults::step("op.recorded");
                let settled = journal.finish(wait, poll);
                for e in &settled.unsettled {
                    tracing::warn!(operation = rec.id, "left for the next start: {e}");
                }
                faults::step("op.finished");
            }
            Err(e) => {
                let settled = journal.abort(wait, poll);
                let mut error = e.to_string();
                if !settled.actions.is_empty() {
                    error += &format!("; {}", settled.actions.join("; "));
                }
                if !settled.unsettled.is_empty() {
                    error += &format!(
                        "; not put back yet (retried at the next start): {}",
                        settled.unsettled.join("; ")
                    );
                }
                rec.status = Some(OperationStatus::Failed);
                rec.success = false;
                rec.error = Some(error);
                self.engine.store().put_operation(&rec)?;
            }
        }
        result.map(|()| rec)
    }

    /// Records that `rec` is about to write `location` (or only `record` of it), whose
    /// content before is in `snapshot` (what undo restores), durably, and claims it, so the
    /// drift events of the write carry the operation's id.
    fn touch(
        &self,
        rec: &mut OperationRecord,
        location: Location,
        snapshot: SnapshotId,
        record: Option<RecordRef>,
    ) -> Result<(), OpError> {
        if let Some(c) = self.claims {
            c.claim(rec.id, &location);
        }
        rec.touched.push(Touched {
            location,
            snapshot,
            record,
        });
        self.engine.store().put_operation(rec)?;
        faults::step("op.touched");
        Ok(())
    }

    fn safety_snapshot(
        &self,
        rec: &mut OperationRecord,
        target: SnapshotTarget,
        origin: Origin,
        what: &str,
    ) -> Result<SnapshotId, OpError> {
        let msg = format!("before {what} (operation {})", rec.id);
        let id = self.history().snapshot(&target, origin, Some(&msg))?;
        rec.safety_snapshots.push(id);
        faults::step("op.snapshot");
        Ok(id)
    }

    /// Safety snapshot of `d`'s project, recorded as covering the deployed copy and, with
    /// `record`, its record in the deployment file (what writing one deployment touches).
    fn snapshot_deployment(
        &self,
        rec: &mut OperationRecord,
        d: &Deployed,
        origin: Origin,
        what: &str,
        record: bool,
    ) -> Result<SnapshotId, OpError> {
        let snap = self.safety_snapshot(
            rec,
            SnapshotTarget::Project(d.project.clone()),
            origin,
            what,
        )?;
        self.touch(rec, d.project_loc(), snap, None)?;
        if record {
            self.touch(rec, d.deployment_file_loc(), snap, Some(d.record_ref()))?;
        }
        Ok(snap)
    }

    /// The version `loc` holds now (content at `path`), recorded if new. History never
    /// stops an operation: a failure is logged and the answer is `None`.
    fn head(&self, loc: &Location, path: &Path) -> Option<crate::model::Version> {
        self.history()
            .head(loc, path)
            .inspect_err(|e| tracing::warn!(location = %loc, "cannot read the version graph: {e}"))
            .ok()
            .flatten()
    }

    /// Records what operation `rec` wrote at `loc` as a version made from `from` (see
    /// [`History::record_made`]). A failure is logged: the writes stand either way.
    fn record_made(
        &self,
        rec: &OperationRecord,
        loc: &Location,
        path: &Path,
        origin: Origin,
        from: Option<&crate::model::Version>,
    ) -> Option<crate::model::VersionId> {
        let from: Vec<_> = from.map(|v| v.id).into_iter().collect();
        let since = if rec.operation == "merge_continue" {
            i64::MIN
        } else {
            rec.time_ms
        };
        let msg = format!("{} (operation {})", rec.operation.replace('_', " "), rec.id);
        self.history()
            // A merge continued by hand records content the user wrote before it started.
            .record_made(loc, path, origin, &from, Some(&msg), since)
            .inspect_err(|e| tracing::warn!(location = %loc, "cannot record the new version: {e}"))
            .ok()
            .flatten()
    }

    fn update_deployment(&self, d: &Deployed, content_hash: String) -> Result<(), OpError> {
        deployment_write::update_record(
            &self.writer,
            &d.project,
            &d.root,
            d.key(),
            &RecordUpdate {
                content_hash,
                deployed_at: timestamp::isoformat(timestamp::now_local()),
            },
        )?;
        Ok(())
    }

    fn update_lock(
        &self,
        collection_dir: &Path,
        name: &str,
        artifact_type: &str,
        copy: &Path,
    ) -> Result<(), OpError> {
        lock_write::update_entry(
            &self.writer,
            collection_dir,
            name,
            artifact_type,
            &LockUpdate {
                content_hash: hash::content_hash(copy, Variant::Legacy)?,
                fetched: timestamp::isoformat(timestamp::now_utc()),
            },
        )?;
        Ok(())
    }

    /// The operations log, oldest first, optionally only those at or after `since_ms`.
    ///
    /// # Errors
    /// The store failed.
    pub fn audit(&self, since_ms: Option<i64>) -> Result<Vec<OperationRecord>, OpError> {
        Ok(self
            .engine
            .store()
            .all_operations()?
            .into_iter()
            .filter(|o| since_ms.is_none_or(|s| o.time_ms >= s))
            .collect())
    }
}

//! Start-up recovery: before the daemon serves, every write-back the previous run did not
//! finish is settled, and the operations log says so. [`crate::daemon::run`] calls
//! [`recover`] once, after the store is open and before the first scan.
//!
//! 1. Every intent left in the state directory ([`crate::writer::intent`]) is settled under
//!    SkillMeat's lock of each destination: an operation that had committed (all its writes
//!    done) keeps them, any other is put back to the old bytes, newest write first. Its
//!    parked and staged copies are deleted, then the intent.
//! 2. Each such operation still `running` in the log becomes `interrupted`, with what was
//!    done ([`crate::model::Recovery`]); so does a `running` operation without an intent
//!    (it stopped before its first write, or after putting everything back).
//! 3. The managed folders (profile roots of known projects, the collections, SkillMeat's
//!    rollback audit folder) are swept of our staging and parking leftovers
//!    ([`crate::writer::sweep`]), older versions' included, when an operation began since
//!    the last whole sweep ([`Store::sweep_owed`]). A warm restart after a quiet run skips
//!    the walk. A sweep is whole when every folder could be read, nothing was left for
//!    later, no intent is unsettled and no known project is away.
//!
//! An intent that cannot be settled now (a destination locked past the writer's wait, an
//! I/O error) stays for the next start; its copies are left alone and the log says why.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::engine::Engine;
use crate::formats::{collection, deployment};
use crate::model::{OperationRecord, OperationStatus, Recovery};
use crate::paths::StateFiles;
use crate::store::Store;
use crate::writer::{Settlement, WriteError, Writer, pending, settle, sweep};

use super::OpError;

/// What start-up recovery did.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Operations marked interrupted, by id.
    pub interrupted: Vec<u64>,
    /// Intents that could not be settled (kept for the next start), as people read it.
    pub unsettled: Vec<String>,
    /// Leftovers removed or put back by the sweep.
    pub swept: Vec<String>,
}

/// Marks operation `id` interrupted (if it was still running or already interrupted),
/// adding what settling its intent did.
fn mark_interrupted(store: &Store, id: u64, s: Option<&Settlement>) -> Result<bool, OpError> {
    let mut rec = match store.operation(id)? {
        Some(r) => r,
        // The log lost it (a store rebuilt since): say at least that it happened.
        None => OperationRecord::new("unknown", Vec::new()),
    };
    rec.id = id;
    match (rec.status(), s) {
        (OperationStatus::Running | OperationStatus::Interrupted, _) => {}
        (OperationStatus::Failed, Some(s)) if !s.actions.is_empty() => {
            // It failed and could not put everything back then; now it has.
            let mut recovery = rec.recovery.take().unwrap_or_default();
            recovery.actions.extend(s.actions.iter().cloned());
            rec.recovery = Some(recovery);
            store.put_operation(&rec)?;
            return Ok(false);
        }
        // It ended (its record says how) before the crash; only its clean-up was left.
        _ => return Ok(false),
    }
    let mut recovery = rec.recovery.take().unwrap_or_default();
    match s {
        Some(s) => {
            recovery.kept = s.kept;
            recovery.actions.extend(s.actions.iter().cloned());
            recovery.actions.extend(
                s.unsettled
                    .iter()
                    .map(|e| format!("not settled yet (retried at the next start): {e}")),
            );
        }
        None if recovery.actions.is_empty() => {
            recovery
                .actions
                .push("nothing of it was left written".into());
        }
        None => {}
    }
    rec.status = Some(OperationStatus::Interrupted);
    rec.success = false;
    rec.error = Some("the daemon stopped during this operation".into());
    rec.recovery = Some(Recovery {
        kept: recovery.kept,
        actions: recovery.actions,
    });
    store.put_operation(&rec)?;
    Ok(true)
}

/// The folders our writes land in: the profile roots of every known project, the
/// collections folder, SkillMeat's rollback audit folder; and whether that is every one
/// (no known project is away, the projects could be listed).
fn managed_folders(engine: &Engine) -> (Vec<PathBuf>, bool) {
    let home = &engine.paths().skillmeat_home;
    let mut out = vec![collection::collections_dir(home), home.join("audit")];
    // A project that is away (an unmounted disk) may come back with leftovers.
    let every = match engine.known_projects() {
        Ok((projects, _)) => {
            for p in projects.iter().filter(|p| !p.missing) {
                out.extend(
                    deployment::profile_roots(&p.path)
                        .into_iter()
                        .map(|r| p.path.join(r)),
                );
            }
            projects.iter().all(|p| !p.missing)
        }
        Err(e) => {
            tracing::warn!(error = %e, "recovery: projects not listed; not swept");
            false
        }
    };
    out.retain(|p| p.is_dir());
    (out, every)
}

/// Settles every interrupted write-back (see the module doc). Call before serving.
///
/// # Errors
/// The intents folder or the store cannot be read or written.
pub fn recover(engine: &Engine) -> Result<Recovered, OpError> {
    let dir = engine.paths().intents_dir();
    let writer = Writer::new();
    let (wait, poll) = (writer.lock_wait(), writer.lock_poll());
    let store = engine.store();
    let mut out = Recovered::default();
    let mut keep = Vec::new();
    let mut settled = BTreeSet::new();
    let intents = pending(&dir).map_err(|e| WriteError::io(&dir, "read the write intents", e))?;
    for intent in intents {
        let s = settle(&dir, &intent, wait, poll);
        tracing::warn!(
            operation = s.operation,
            kept = s.kept,
            actions = ?s.actions,
            unsettled = ?s.unsettled,
            "settled an interrupted operation"
        );
        keep.extend(s.unsettled_paths.iter().cloned());
        out.unsettled.extend(s.unsettled.iter().cloned());
        if mark_interrupted(store, s.operation, Some(&s))? {
            out.interrupted.push(s.operation);
        }
        settled.insert(s.operation);
    }
    for rec in store.all_operations()? {
        if rec.status() == OperationStatus::Running
            && !settled.contains(&rec.id)
            && mark_interrupted(store, rec.id, None)?
        {
            tracing::warn!(
                operation = rec.id,
                "an operation stopped before writing anything"
            );
            out.interrupted.push(rec.id);
        }
    }
    // No operation can begin before the daemon serves: this is the last id before the sweep.
    let last = store.last_operation_id()?;
    if store.sweep_owed(last)? {
        let (folders, mut whole) = managed_folders(engine);
        for folder in folders {
            let swept = sweep(&folder, &keep, wait, poll);
            out.swept.extend(swept.done);
            whole &= swept.whole;
        }
        if whole && keep.is_empty() {
            store.swept_after(last)?;
        }
    } else {
        tracing::debug!("no write since the last whole sweep: nothing to sweep");
    }
    store.flush()?;
    Ok(out)
}

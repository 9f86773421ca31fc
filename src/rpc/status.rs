//! Which `tonic::Status` each error answers with: one mapping per domain error, so every
//! handler reports the same failure with the same code (InvalidArgument, NotFound,
//! FailedPrecondition, Aborted, Unavailable, DeadlineExceeded, DataLoss, Internal).

use tonic::Status;

use crate::engine::EngineError;
use crate::history::HistoryError;
use crate::live::SyncError;
use crate::notifier::NotifyError;
use crate::operations::OpError;
use crate::store::StoreError;
use crate::writer::WriteError;

/// The status an engine error answers with.
pub fn engine(e: EngineError) -> Status {
    let msg = e.to_string();
    match e {
        EngineError::NotAFolder { .. } | EngineError::NotAProject { .. } => {
            Status::invalid_argument(msg)
        }
        EngineError::UnknownProject { .. } => Status::not_found(msg),
        EngineError::MissingProject { .. } | EngineError::NotManual { .. } => {
            Status::failed_precondition(msg)
        }
        EngineError::Store(e) => store(&e),
        EngineError::History(h) => history(&h),
    }
}

/// The status a store error answers with: a full disk is `ResourceExhausted`, a store
/// being repaired or reopened `Unavailable`, a damaged blob `DataLoss`.
pub fn store(e: &StoreError) -> Status {
    let msg = e.to_string();
    if e.is_full() {
        Status::resource_exhausted(msg)
    } else if e.is_unavailable() {
        Status::unavailable(msg)
    } else if matches!(e, StoreError::BadBlob { .. }) {
        Status::data_loss(msg)
    } else {
        Status::internal(msg)
    }
}

/// The status a failed sync barrier or project refresh answers with.
pub fn sync(e: SyncError) -> Status {
    match e {
        SyncError::Timeout { .. } => Status::deadline_exceeded(e.to_string()),
        SyncError::ShuttingDown => Status::unavailable(e.to_string()),
    }
}

/// The status a history error answers with.
pub fn history(e: &HistoryError) -> Status {
    let msg = e.to_string();
    match e {
        HistoryError::NotFound(_) => Status::not_found(msg),
        HistoryError::Invalid(_) | HistoryError::Hostile { .. } => Status::invalid_argument(msg),
        HistoryError::Hash(crate::hash::HashError::NotFound { .. }) => Status::not_found(msg),
        HistoryError::HashMismatch { .. }
        | HistoryError::MissingBlob { .. }
        | HistoryError::DamagedBlob { .. } => Status::data_loss(msg),
        HistoryError::Store(e) => store(e),
        HistoryError::Hash(_) | HistoryError::Io { .. } => Status::internal(msg),
    }
}

/// The status an operation error answers with.
pub fn operation(e: OpError) -> Status {
    let msg = e.to_string();
    if e.is_locked() {
        return Status::aborted(msg);
    }
    match e {
        OpError::NotFound(_) => Status::not_found(msg),
        OpError::Invalid(_) => Status::invalid_argument(msg),
        OpError::Precondition(_)
        | OpError::Write(WriteError::Outside { .. } | WriteError::SymlinkEscape { .. }) => {
            Status::failed_precondition(msg)
        }
        OpError::History(h) => history(&h),
        OpError::Store(e) => store(&e),
        OpError::Hash(crate::hash::HashError::NotFound { .. }) => Status::not_found(msg),
        _ => Status::internal(msg),
    }
}

/// The status a notifier error answers with. A missing notification server is a
/// precondition the person can fix, not the daemon being unavailable (which smctl reads as
/// "not running").
pub fn notify(e: NotifyError) -> Status {
    let msg = e.to_string();
    match e {
        NotifyError::Disabled | NotifyError::Unavailable(_) | NotifyError::MutedByConfig(_) => {
            Status::failed_precondition(msg)
        }
        NotifyError::NotAbsolute(_) => Status::invalid_argument(msg),
        NotifyError::ShuttingDown => Status::unavailable(msg),
        NotifyError::Store(_) => Status::internal(msg),
    }
}

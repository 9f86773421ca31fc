//! The daemon's background tasks, supervised in one `JoinSet`: the live worker, the reload
//! listener, the signal handler, the watchdog, the desktop notifier and the RPC server.
//!
//! Every task is named. The first one that fails, panics, or ends before shutdown was asked
//! for is logged, cancels the shutdown token (so every other task winds down and the store
//! is flushed on the one shutdown path) and becomes the daemon's exit error: `skillmeatd
//! run` exits non-zero and the service manager (`Restart=on-failure`) starts it again,
//! instead of a daemon serving a frozen state.
//!
//! [`crate::daemon::run`] spawns the tasks and waits on [`Tasks::wait`].

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;

use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

/// What a task's end says about its success.
pub trait Outcome {
    /// Why the task failed, if it did.
    fn failure(self) -> Option<String>;
}

impl Outcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: Display> Outcome for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// A task that stopped the daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {task} task failed: {reason}")]
pub struct TaskFailed {
    pub task: &'static str,
    pub reason: String,
}

/// The supervised tasks and the shutdown token they share.
#[derive(Debug)]
pub struct Tasks {
    set: JoinSet<Option<String>>,
    names: HashMap<task::Id, &'static str>,
    shutdown: CancellationToken,
}

impl Tasks {
    /// No tasks yet; a failure will cancel `shutdown`.
    pub fn new(shutdown: CancellationToken) -> Tasks {
        Tasks {
            set: JoinSet::new(),
            names: HashMap::new(),
            shutdown,
        }
    }

    /// Runs `task` on the runtime under `name`. Must be called on the runtime.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Outcome,
    {
        let handle = self.set.spawn(async move { task.await.failure() });
        self.names.insert(handle.id(), name);
    }

    /// Waits until every task has ended. The first failure (an error, a panic, or an end
    /// before shutdown was asked for) cancels shutdown and is returned once all are done.
    ///
    /// # Errors
    /// The first task that failed.
    pub async fn wait(mut self) -> Result<(), TaskFailed> {
        let mut first = None;
        while let Some(joined) = self.set.join_next_with_id().await {
            let (id, failure) = match joined {
                Ok((id, failure)) => (id, failure),
                Err(e) => (e.id(), Some(panic_message(e))),
            };
            let task = self.names.get(&id).copied().unwrap_or("unnamed");
            let reason = match failure {
                Some(reason) => reason,
                None if self.shutdown.is_cancelled() => {
                    tracing::debug!(task, "task stopped");
                    continue;
                }
                None => "it ended before shutdown was asked for".to_string(),
            };
            tracing::error!(
                task,
                "the {task} task failed: {reason}; stopping the daemon"
            );
            first.get_or_insert(TaskFailed { task, reason });
            self.shutdown.cancel();
        }
        first.map_or(Ok(()), Err)
    }
}

/// What a task that did not finish normally says: its panic message, or that it was
/// cancelled.
fn panic_message(e: task::JoinError) -> String {
    if !e.is_panic() {
        return format!("it was cancelled ({e})");
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("it panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_stops_the_others_and_is_returned() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        let s = shutdown.clone();
        tasks.spawn("patient", async move { s.cancelled().await });
        tasks.spawn("failing", async { Err::<(), _>("disk on fire") });
        let failed = tasks.wait().await.unwrap_err();
        assert_eq!(failed.task, "failing");
        assert_eq!(failed.reason, "disk on fire");
        assert!(shutdown.is_cancelled());
    }

    fn explode() {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panic_or_an_early_end_is_a_failure() {
        let mut tasks = Tasks::new(CancellationToken::new());
        tasks.spawn("panicking", async { explode() });
        let failed = tasks.wait().await.unwrap_err();
        assert_eq!(
            (failed.task, failed.reason.as_str()),
            ("panicking", "it panicked: boom")
        );

        let mut tasks = Tasks::new(CancellationToken::new());
        tasks.spawn("quitter", async {});
        assert!(
            tasks
                .wait()
                .await
                .unwrap_err()
                .reason
                .contains("before shutdown")
        );
    }

    #[tokio::test]
    async fn ends_after_shutdown_are_clean() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        let s = shutdown.clone();
        tasks.spawn("worker", async move { s.cancelled().await });
        shutdown.cancel();
        assert_eq!(tasks.wait().await, Ok(()));
    }
}

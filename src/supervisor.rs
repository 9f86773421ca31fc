//! The daemon's background tasks, supervised in one `JoinSet`: the live worker, the reload
//! listener, the signal handler, the watchdog, the desktop notifier and the RPC server.
//!
//! Every task is named. The first one that fails, panics, or ends before shutdown was asked
//! for is logged, cancels the shutdown token (so every other task winds down and the store
//! is flushed on the one shutdown path) and becomes the daemon's exit error: `skillmeatd
//! run` exits non-zero and the service manager (`Restart=on-failure`) starts it again,
//! instead of a daemon serving a frozen state.
//!
//! Shutdown is bounded: once the token is cancelled, the tasks have a grace period to end.
//! A task that does not (stuck in a step that never returns) is named in the log and in the
//! error, and the daemon exits anyway — SIGTERM always ends it.
//!
//! [`crate::daemon::run`] spawns the tasks and waits on [`Tasks::wait`].

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

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

    /// Waits until every task has ended, or until `grace` has passed since shutdown was
    /// asked for. The first failure (an error, a panic, or an end before shutdown was asked
    /// for) cancels shutdown and is returned once all are done; tasks still running when
    /// the grace period ends are left behind (aborted where they can be) and named.
    ///
    /// # Errors
    /// The first task that failed, or the tasks that did not stop in time.
    pub async fn wait(mut self, grace: Duration) -> Result<(), TaskFailed> {
        let mut first = None;
        let shutdown = self.shutdown.clone();
        let deadline = async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(deadline);
        loop {
            let joined = tokio::select! {
                joined = self.set.join_next_with_id() => match joined {
                    Some(joined) => joined,
                    None => break,
                },
                () = &mut deadline => {
                    let mut stuck: Vec<&'static str> = self.names.values().copied().collect();
                    stuck.sort_unstable();
                    tracing::error!(
                        tasks = %stuck.join(", "),
                        "still running {}s after shutdown began: exiting without them",
                        grace.as_secs_f32()
                    );
                    self.set.abort_all();
                    self.set.detach_all();
                    return Err(first.unwrap_or(TaskFailed {
                        task: stuck.first().copied().unwrap_or("unnamed"),
                        reason: format!(
                            "it did not stop within {}s after shutdown began",
                            grace.as_secs_f32()
                        ),
                    }));
                }
            };
            let (id, failure) = match joined {
                Ok((id, failure)) => (id, failure),
                Err(e) => (e.id(), Some(panic_message(e))),
            };
            let task = self.names.remove(&id).unwrap_or("unnamed");
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
        let failed = tasks.wait(Duration::from_secs(5)).await.unwrap_err();
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
        let failed = tasks.wait(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(
            (failed.task, failed.reason.as_str()),
            ("panicking", "it panicked: boom")
        );

        let mut tasks = Tasks::new(CancellationToken::new());
        tasks.spawn("quitter", async {});
        assert!(
            tasks
                .wait(Duration::from_secs(5))
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
        assert_eq!(tasks.wait(Duration::from_secs(5)).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_stops_is_left_behind_after_the_grace_period() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        let s = shutdown.clone();
        tasks.spawn("polite", async move { s.cancelled().await });
        tasks.spawn("stuck", std::future::pending::<()>());
        shutdown.cancel();
        let failed = tasks.wait(Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(
            (failed.task, failed.reason.as_str()),
            ("stuck", "it did not stop within 10s after shutdown began")
        );
    }
}

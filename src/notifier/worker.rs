//! The notifier's worker: feeds the [`Policy`] with drift events and operation records,
//! wakes it when something is due, and hands what it decides to the backend's bounded
//! queue without ever waiting on it.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::actions::{self, Outcome};
use super::edge::{CALL_TIMEOUT, EdgeCmd, EdgeEvent, SharedReport, TEST_KEY, update};
use super::{Control, NotifyError, stored_mutes};
use crate::history::time;
use crate::live::Live;
use crate::model::{Event, EventKind, OperationRecord, OperationStatus};
use crate::notification::{
    Action, Change, Input, Notice, Now, Out, Policy, Settings, WriteOutcome,
};
use crate::store::OperationWatch;

/// The running backend: its queue and its stop switch.
struct Backend {
    queue: mpsc::Sender<EdgeCmd>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

pub struct Worker {
    live: Arc<Live>,
    policy: Policy,
    report: SharedReport,
    drift: broadcast::Receiver<Arc<Event>>,
    operations: Option<OperationWatch>,
    queue_capacity: usize,
}

fn now() -> Now {
    Now {
        mono: tokio::time::Instant::now().into_std(),
        wall_ms: time::now_ms(),
        local: chrono::Local::now().time(),
    }
}

/// The policy's view of a journal event (None: not the policy's business).
pub fn input_of(e: &Event) -> Option<Input> {
    let change = |new| {
        Input::Drift(Change {
            project: e.project.clone(),
            profile_root: e.profile_root.clone(),
            name: e.name.clone(),
            artifact_type: e.artifact_type.clone(),
            new,
            message: e.message.clone(),
        })
    };
    match e.kind {
        EventKind::DriftChanged | EventKind::Unreadable | EventKind::DeploymentAdded => {
            Some(change(e.new_drift))
        }
        EventKind::DeploymentRemoved => Some(change(None)),
        EventKind::InvalidFile => Some(Input::InvalidFile {
            project: if e.project.is_empty() {
                "collections".into()
            } else {
                e.project.clone()
            },
            message: e.message.clone(),
        }),
        EventKind::HashChanged | EventKind::RootPolling => None,
    }
}

/// The policy's view of an operation record: grouped under the project it wrote (else
/// its collection).
pub fn outcome_of(rec: &OperationRecord) -> WriteOutcome {
    let group_of = |t: &str| -> String {
        if let Some(p) = t.strip_prefix("project ") {
            return p.to_string();
        }
        t.split_once(": ").map_or(t, |(g, _)| g).to_string()
    };
    let groups: Vec<String> = rec.targets.iter().map(|t| group_of(t)).collect();
    let group = groups
        .iter()
        .find(|g| g.starts_with('/'))
        .or(groups.first())
        .cloned()
        .unwrap_or_default();
    WriteOutcome {
        group,
        id: rec.id,
        operation: rec.operation.clone(),
        target: rec.targets.join(", "),
        error: rec.error.clone(),
        conflicted: rec.files_conflicted.len(),
    }
}

impl Worker {
    pub fn new(
        live: Arc<Live>,
        settings: Settings,
        report: SharedReport,
    ) -> Result<Worker, NotifyError> {
        let store = live.engine().store().clone();
        let drift = live.subscribe();
        let operations = Some(store.watch_operations()?);
        let mut policy = Policy::new(settings.clone());
        match stored_mutes(&store) {
            Ok(m) => policy.set_mutes(m),
            // A store under repair: the mutes are read again once it answers.
            Err(e) => tracing::error!("cannot read the notification mutes: {e}"),
        }
        Ok(Worker {
            live,
            policy,
            report,
            drift,
            operations,
            queue_capacity: settings.queue_capacity,
        })
    }

    fn start_backend(
        &self,
        events: &mpsc::Sender<EdgeEvent>,
        shutdown: &CancellationToken,
    ) -> Backend {
        let (queue, rx) = mpsc::channel(self.queue_capacity);
        let stop = shutdown.child_token();
        #[cfg(not(target_os = "macos"))]
        let task = super::desktop::run(rx, events.clone(), Arc::clone(&self.report), stop.clone());
        #[cfg(target_os = "macos")]
        let task = super::macos::run(rx, events.clone(), Arc::clone(&self.report), stop.clone());
        Backend {
            queue,
            stop,
            task: tokio::spawn(task),
        }
    }

    /// Runs until `shutdown`, following `[notify]` in the configuration in force.
    ///
    /// # Errors
    /// The backend task ended by itself (a panic).
    pub async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut config = self.live.engine().config_watch();
        config.mark_unchanged();
        let (events_tx, mut events) = mpsc::channel(64);
        let (done_tx, mut done) = mpsc::channel::<Outcome>(16);
        let mut backend = self
            .policy
            .settings()
            .enabled()
            .then(|| self.start_backend(&events_tx, &shutdown));
        loop {
            self.publish();
            let wake = self
                .policy
                .next_wake(&now())
                .map(tokio::time::Instant::from_std);
            let desktop = backend.is_some();
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                ended = backend_ended(&mut backend) => {
                    return Err(format!("the notification backend stopped: {ended}"));
                }
                changed = config.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let s = config.borrow_and_update().config.notify.clone();
                    if s != *self.policy.settings() {
                        backend = self.apply(s, backend, &events_tx, &shutdown);
                    }
                }
                r = self.drift.recv() => match r {
                    Ok(e) if desktop => {
                        if let Some(i) = input_of(&e) {
                            self.policy.input(i, &now());
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lagged(n),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                rec = next_operation(&mut self.operations) => match rec {
                    Some(rec) if desktop => self.policy.input(Input::Write(outcome_of(&rec)), &now()),
                    Some(_) => {}
                    None => self.operations = None,
                },
                c = control.recv() => match c {
                    None => return Ok(()),
                    Some(Control::Mutes(tx)) => {
                        self.reload_mutes().await;
                        let _ = tx.send(());
                    }
                    Some(Control::Test(tx)) => self.test(backend.as_ref(), tx),
                },
                ev = events.recv() => match ev {
                    Some(EdgeEvent::Closed(key)) => self.policy.closed(&key),
                    Some(EdgeEvent::Action { key, action }) => self.act(key, &action, &done_tx),
                    None => {}
                },
                o = done.recv() => match o {
                    Some(Outcome::Done(msg)) => update(&self.report, |r| r.last_action = msg),
                    Some(Outcome::Failed(msg, input)) => {
                        update(&self.report, |r| r.last_action = msg);
                        self.policy.input(input, &now());
                    }
                    Some(Outcome::Muted(msg)) => {
                        update(&self.report, |r| r.last_action = msg);
                        self.reload_mutes().await;
                    }
                    None => {}
                },
                _ = sleep_until(wake) => {}
            }
            for out in self.policy.poll(&now()) {
                self.send(backend.as_ref(), out);
            }
        }
    }

    /// New `[notify]` settings: the backend started or stopped as needed, the policy
    /// told. Returns the backend to run with.
    fn apply(
        &mut self,
        s: Settings,
        backend: Option<Backend>,
        events: &mpsc::Sender<EdgeEvent>,
        shutdown: &CancellationToken,
    ) -> Option<Backend> {
        let backend = match (s.enabled(), backend) {
            (true, None) => Some(self.start_backend(events, shutdown)),
            (false, Some(b)) => {
                b.stop.cancel();
                update(&self.report, |r| {
                    r.problem = None;
                    r.server = None;
                    r.capabilities.clear();
                });
                None
            }
            (_, b) => b,
        };
        update(&self.report, |r| {
            r.enabled = s.enabled();
            r.required = s.desktop == Some(true);
            r.quiet_hours = s.quiet_hours.map(|q| q.to_string()).unwrap_or_default();
        });
        self.policy.reload(s);
        backend
    }

    /// Copies what the policy knows into the report.
    fn publish(&self) {
        let n = now();
        let quiet = self
            .policy
            .settings()
            .quiet_hours
            .is_some_and(|q| q.contains(n.local));
        update(&self.report, |r| {
            r.mutes = self.policy.mutes(n.wall_ms);
            r.held = self.policy.held() as u64;
            r.in_quiet_hours = quiet;
        });
    }

    /// The worker fell behind the live events: count it and take the current drift of
    /// every artifact instead (the policy keeps only the newest state per artifact).
    fn lagged(&mut self, missed: u64) {
        tracing::warn!(
            missed,
            "desktop notifications fell behind the drift events; re-reading the state"
        );
        update(&self.report, |r| r.lagged += missed);
        let state = self.live.state();
        let n = now();
        for r in state.all() {
            self.policy.input(
                Input::Drift(Change {
                    project: r.project.display().to_string(),
                    profile_root: r.profile_root.to_string(),
                    name: r.name.to_string(),
                    artifact_type: r.artifact_type.to_string(),
                    new: Some(r.kind),
                    message: r.error.as_deref().unwrap_or_default().to_string(),
                }),
                &n,
            );
        }
    }

    async fn reload_mutes(&mut self) {
        let store = self.live.engine().store().clone();
        match tokio::task::spawn_blocking(move || stored_mutes(&store)).await {
            Ok(Ok(m)) => self.policy.set_mutes(m),
            Ok(Err(e)) => tracing::error!("cannot read the notification mutes: {e}"),
            Err(e) => tracing::error!("cannot read the notification mutes: {e}"),
        }
    }

    /// Hands `out` to the backend; a full queue drops it and counts it.
    fn send(&self, backend: Option<&Backend>, out: Out) {
        let Some(b) = backend else { return };
        let cmd = match out {
            Out::Show(n) => EdgeCmd::Show(n),
            Out::Close(k) => EdgeCmd::Close(k),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = b.queue.try_send(cmd) {
            let first = update(&self.report, |r| {
                r.overflow += 1;
                r.overflow == 1
            });
            if first {
                tracing::warn!(
                    capacity = self.queue_capacity,
                    "the notification server is slow: notifications are being dropped (counted in `smctl notify status`)"
                );
            }
        }
    }

    fn test(&self, backend: Option<&Backend>, tx: oneshot::Sender<Result<u32, NotifyError>>) {
        let Some(b) = backend else {
            let _ = tx.send(Err(NotifyError::Disabled));
            return;
        };
        let notice = Notice {
            key: TEST_KEY.into(),
            replace: false,
            summary: "skillmeatd: test notification".into(),
            body: "Desktop notifications work: drift in your projects will be shown like this."
                .into(),
            actions: Vec::new(),
            urgent: false,
        };
        let (reply, answer) = oneshot::channel();
        if b.queue.try_send(EdgeCmd::Test(notice, reply)).is_err() {
            let _ = tx.send(Err(NotifyError::Unavailable(
                "the queue to the notification server is full".into(),
            )));
            return;
        }
        tokio::spawn(async move {
            let r = match tokio::time::timeout(CALL_TIMEOUT * 2, answer).await {
                Ok(Ok(Ok(id))) => Ok(id),
                Ok(Ok(Err(why))) => Err(NotifyError::Unavailable(why)),
                Ok(Err(_)) => Err(NotifyError::ShuttingDown),
                Err(_) => Err(NotifyError::Unavailable(
                    "the notification server did not answer in time".into(),
                )),
            };
            let _ = tx.send(r);
        });
    }

    /// Starts the action the person chose.
    fn act(&self, key: String, action: &str, done: &mpsc::Sender<Outcome>) {
        let Some(action) = Action::from_key(action) else {
            tracing::debug!(action, "unknown notification action");
            return;
        };
        tracing::info!(key, action = action.key(), "notification action");
        let settings = self.policy.settings();
        let ctx = actions::Context {
            live: Arc::clone(&self.live),
            mute_for_secs: settings.action_mute_secs,
            opener: settings.show_diff_with.clone(),
        };
        let items = self.policy.shown(&key);
        let done = done.clone();
        tokio::spawn(async move {
            let _ = done.send(actions::run(ctx, key, action, items).await).await;
        });
    }
}

/// The next operation record written with its outcome (an operation's record is also
/// written while it runs, as `running`: those are no outcome yet).
async fn next_operation(watch: &mut Option<OperationWatch>) -> Option<OperationRecord> {
    match watch {
        Some(w) => loop {
            let rec = w.next().await?;
            if rec.status() != OperationStatus::Running {
                return Some(rec);
            }
        },
        None => std::future::pending().await,
    }
}

/// Waits until the running backend's task ends (never while none runs).
async fn backend_ended(backend: &mut Option<Backend>) -> String {
    match backend {
        Some(b) => match (&mut b.task).await {
            Ok(()) if b.stop.is_cancelled() => std::future::pending().await,
            Ok(()) => "it ended".to_string(),
            Err(e) => e.to_string(),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

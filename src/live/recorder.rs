//! The history recorder: a thread of its own that records what the batches hand it
//! ([`Job`]), so no change waits for the history backlog.
//!
//! It owns the bulk queue (bases and first-seen content: after a cold start, every
//! artifact), the automatic snapshots due and retention. Each turn is one store batch
//! ([`Desk::turn`]): the changes of the batches received, oldest first (bulk work queued
//! for the same locations goes first or is dropped), then bulk work, oldest first, for at
//! most [`SLICE`] — cut short as soon as a batch with changes arrives, whose changes join
//! the store batch — then one commit, and the barriers of the batches whose changes it
//! holds are answered. A change thus waits for the piece of bulk work under way and one
//! commit at most; changes that find the recorder idle still let bulk work have
//! [`SHARE`] of their store batch, so the backlog advances under a steady stream of them. Once nothing is queued, the automatic snapshots due are taken and
//! retention runs. Barriers of a batch with no changes are answered at once when no
//! earlier change waits ([`Recorder::answer`], on the worker's thread: a start's bulk work
//! under way does not delay the first answer), else with the changes before them.
//!
//! Every history write of the daemon's own goes through this one thread, in the order of
//! the batches, so the ordering rules of a location's history (a queued base before a
//! later version of the same location, a first-seen version superseded by a change) hold
//! as they did when the worker recorded them itself; writes asked for by calls (captures,
//! snapshots, restores) take the history's write lock, as every store batch does.
//!
//! The number of the last batch whose history work is done is published for history
//! queries and write-backs ([`super::Live::sync_history`]). When the daemon stops, queued
//! bulk work is dropped: the next start queues all of it again, and content already
//! recorded is skipped.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::history::time::now_ms;
use crate::history::{AutoSnapshot, Capture};
use crate::model::{Location, SnapshotTarget};

use super::Live;
use super::upkeep::{Job, Work, is_collection};

/// How often pending automatic snapshots and retention are looked at.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How often retention runs.
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The longest stretch of bulk history work in one store batch.
const SLICE: Duration = Duration::from_millis(20);

/// The bulk work a store batch that holds changes still does, at most: the backlog
/// advances even while changes keep coming, and a change waits this much longer at most.
const SHARE: Duration = Duration::from_millis(2);

/// How many batches may wait for the recorder before the worker waits for it.
const INBOX: usize = 256;

enum Message {
    Job(Job),
    /// Retention runs at the next upkeep (its policy changed).
    Prune,
}

/// The worker's handle on the recorder thread; dropping it stops the thread (after the
/// changes already handed over are recorded) and waits for it.
pub(super) struct Recorder {
    live: Arc<Live>,
    /// Batches with changes handed over whose barriers are not answered yet.
    unanswered: Arc<AtomicUsize>,
    tx: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the recorder thread.
    ///
    /// # Panics
    /// The thread cannot be spawned.
    pub(super) fn start(live: Arc<Live>) -> Recorder {
        let (tx, rx) = std::sync::mpsc::sync_channel(INBOX);
        let unanswered = Arc::new(AtomicUsize::new(0));
        let desk = Desk {
            live: Arc::clone(&live),
            unanswered: Arc::clone(&unanswered),
            answering: Vec::new(),
            rx,
            open: true,
            ahead: VecDeque::new(),
            queued: VecDeque::new(),
            queued_at: HashMap::new(),
            received: 0,
            pending_snapshots: BTreeSet::new(),
            last_snapshot_ms: HashMap::new(),
            last_prune_ms: now_ms(),
        };
        let thread = std::thread::Builder::new()
            .name("history-recorder".into())
            .spawn(move || desk.run())
            .expect("cannot start the history recorder thread");
        Recorder {
            live,
            unanswered,
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Hands a batch's history work and barriers over (waits while [`INBOX`] batches
    /// are waiting already).
    ///
    /// # Panics
    /// The recorder thread is gone (it panicked): the live task stops, as when the worker
    /// panics.
    pub(super) fn send(&self, job: Job) {
        if !job.changes.is_empty() {
            self.unanswered.fetch_add(1, Ordering::AcqRel);
        }
        self.message(Message::Job(job));
    }

    /// Answers the barriers of a batch that has no history work: at once when every
    /// earlier batch's changes are recorded (a start's bulk work under way does not hold
    /// them up, nor does the recorder's planning of it), else once they are.
    pub(super) fn answer(&self, cookies: Vec<String>, acks: Vec<oneshot::Sender<()>>) {
        if self.unanswered.load(Ordering::Acquire) == 0 {
            answer(&self.live, &cookies, acks);
        } else {
            self.send(Job {
                cookies,
                acks,
                ..Job::default()
            });
        }
    }

    /// Makes retention run at the next upkeep.
    pub(super) fn prune_soon(&self) {
        self.message(Message::Prune);
    }

    fn message(&self, m: Message) {
        let tx = self.tx.as_ref().expect("the recorder is running");
        assert!(tx.send(m).is_ok(), "the history recorder stopped");
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
            && !std::thread::panicking()
        {
            tracing::error!("the history recorder panicked");
        }
    }
}

/// The changes of one batch (it has some), and the barriers answered once they are
/// recorded.
struct Ahead {
    number: u64,
    changes: Vec<Work>,
    cookies: Vec<String>,
    acks: Vec<oneshot::Sender<()>>,
}

/// The recorder thread's state.
struct Desk {
    live: Arc<Live>,
    /// Shared with [`Recorder`]: lowered once a batch's changes are recorded and its
    /// barriers answered.
    unanswered: Arc<AtomicUsize>,
    /// The barriers the store batch being built answers once committed: those of the
    /// batches whose changes it holds, and of batches without changes received meanwhile
    /// (empty: no change waits for a commit).
    answering: Vec<(Vec<String>, Vec<oneshot::Sender<()>>)>,
    rx: Receiver<Message>,
    /// Whether the worker may still send (else the thread ends).
    open: bool,
    /// Batches whose changes wait to be recorded, oldest first.
    ahead: VecDeque<Ahead>,
    /// Bulk work, tagged with its batch's number, oldest first.
    queued: VecDeque<(u64, Work)>,
    /// How many pieces of `queued` are at each location.
    queued_at: HashMap<Location, usize>,
    /// The number of the last batch received with history work.
    received: u64,
    /// Roots whose changes settled but whose automatic snapshot is rate-limited.
    pending_snapshots: BTreeSet<SnapshotTarget>,
    /// When each root's automatic snapshot was last attempted.
    last_snapshot_ms: HashMap<SnapshotTarget, i64>,
    last_prune_ms: i64,
}

impl Desk {
    fn run(mut self) {
        while self.open {
            self.receive();
            if !self.ahead.is_empty() || !self.queued.is_empty() {
                self.turn();
            } else {
                // Idle, every job received is recorded (a numbered one with nothing to
                // record included).
                self.publish_done();
                // A start's backlog grows the queues to the whole tree; idle, they give
                // that memory back.
                if self.queued.capacity() > 1024 {
                    self.queued = VecDeque::new();
                    self.queued_at = HashMap::new();
                    self.ahead.shrink_to_fit();
                    crate::heap::release_freed();
                }
                self.upkeep();
                match self.rx.recv_timeout(HOUSEKEEPING) {
                    Ok(m) => self.take(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.open = false,
                }
            }
        }
        // Stopping: the changes handed over are recorded (quick); bulk work is queued again
        // by the next start.
        self.queued.clear();
        self.queued_at.clear();
        while !self.ahead.is_empty() {
            self.turn();
        }
    }

    /// Takes every message waiting, without blocking.
    fn receive(&mut self) {
        while self.open {
            match self.rx.try_recv() {
                Ok(m) => self.take(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.open = false,
            }
        }
    }

    fn take(&mut self, m: Message) {
        let job = match m {
            Message::Job(job) => job,
            Message::Prune => {
                self.last_prune_ms = 0;
                return;
            }
        };
        if job.number > 0 {
            self.received = job.number;
        }
        let mut bulk = job.bulk;
        if let Some(first) = job.first_seen {
            bulk.extend(first.plan());
        }
        for w in bulk {
            *self.queued_at.entry(w.location().clone()).or_default() += 1;
            self.queued.push_back((job.number, w));
        }
        if !job.changes.is_empty() {
            self.ahead.push_back(Ahead {
                number: job.number,
                changes: job.changes,
                cookies: job.cookies,
                acks: job.acks,
            });
        } else if let Some(last) = self.ahead.back_mut() {
            // Answered with the changes before them.
            last.cookies.extend(job.cookies);
            last.acks.extend(job.acks);
        } else if !self.answering.is_empty() {
            // Earlier changes are in the store batch under way.
            self.answering.push((job.cookies, job.acks));
        } else {
            answer(&self.live, &job.cookies, job.acks);
        }
    }

    /// One store batch: the changes waiting, batch by batch (bulk work queued by a batch
    /// or before it for the same location goes first — a base, so the new version's parent
    /// is it — or is dropped — first-seen content, superseded by the change), then bulk
    /// work from the front of the queue for at most [`SLICE`], cut short when a batch
    /// with changes arrives: its changes join the store batch, which is committed at once.
    /// Then the barriers of the batches recorded are answered, and how far the work got is
    /// published.
    fn turn(&mut self) {
        // A full, failed or repairing store takes no history; the work is dropped (not
        // kept: memory stays bounded however long the outage), and the next change of each
        // artifact is recorded once the store works again.
        if let Err(e) = self.live.engine.store().writable() {
            let changes: usize = self.ahead.iter().map(|a| a.changes.len()).sum();
            tracing::debug!(dropped = changes + self.queued.len(), error = %e, "history not recorded");
            self.queued.clear();
            self.queued_at.clear();
            for a in std::mem::take(&mut self.ahead) {
                answer(&self.live, &a.cookies, a.acks);
                self.unanswered.fetch_sub(1, Ordering::AcqRel);
            }
            self.publish_done();
            return;
        }
        let started = Instant::now();
        let until = started + SLICE;
        let engine = Arc::clone(&self.live.engine);
        let history = engine.history();
        let mut batch = history.batch();
        let (mut changes, mut bulk) = (0, 0);
        // Batches with changes in this store batch (each `Ahead` holds some).
        let mut batches = 0;
        let mut bulk_started = None;
        loop {
            while let Some(a) = self.ahead.pop_front() {
                let work = self.take_queued_at(a.number, &a.changes);
                changes += a.changes.len();
                batches += 1;
                for w in work.into_iter().chain(a.changes) {
                    self.add(&mut batch, w);
                }
                self.answering.push((a.cookies, a.acks));
            }
            // Changes waiting for this commit still leave bulk work a short share, so a
            // steady stream of changes cannot starve the backlog (and the history queries
            // waiting for it).
            let now = Instant::now();
            let bulk_from = *bulk_started.get_or_insert(now);
            let until = if self.answering.is_empty() {
                until
            } else {
                bulk_from + SHARE
            };
            if !self.open || now >= until {
                break;
            }
            let Some((_, w)) = self.queued.pop_front() else {
                break;
            };
            self.unqueued(w.location());
            crate::faults::point("history.bulk");
            self.add(&mut batch, w);
            bulk += 1;
            self.receive();
        }
        let recorded = batch.commit().unwrap_or_else(|e| {
            tracing::warn!("cannot record versions: {e}");
            0
        });
        for (cookies, acks) in std::mem::take(&mut self.answering) {
            answer(&self.live, &cookies, acks);
        }
        self.unanswered.fetch_sub(batches, Ordering::AcqRel);
        self.publish_done();
        tracing::debug!(
            changes,
            bulk,
            recorded,
            left = self.queued.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "history recorded"
        );
    }

    /// Notes that a piece of bulk work at `loc` left the queue.
    fn unqueued(&mut self, loc: &Location) {
        if let Some(n) = self.queued_at.get_mut(loc) {
            *n -= 1;
            if *n == 0 {
                self.queued_at.remove(loc);
            }
        }
    }

    /// Removes the bulk work of batches up to `number` queued at the locations of
    /// `changes`: their bases, to be recorded now (after a queued collection base of the
    /// same content, which a base whose copy already changed is recorded from: one for
    /// each content, however many artifacts share it); first-seen content is dropped.
    fn take_queued_at(&mut self, number: u64, changes: &[Work]) -> Vec<Work> {
        let at: BTreeSet<&Location> = changes
            .iter()
            .map(Work::location)
            .filter(|l| self.queued_at.contains_key(*l))
            .collect();
        if at.is_empty() {
            return Vec::new();
        }
        let mut hashes: BTreeSet<String> = self
            .queued
            .iter()
            .take_while(|(b, _)| *b <= number)
            .filter_map(|(_, w)| match &w.capture {
                Capture::Base {
                    location,
                    content_hash,
                    ..
                } if at.contains(location) => Some(content_hash.clone()),
                _ => None,
            })
            .collect();
        let (mut sources, mut ahead) = (Vec::new(), Vec::new());
        let mut kept = VecDeque::with_capacity(self.queued.len());
        let mut gone = Vec::new();
        for (batch, work) in self.queued.drain(..) {
            if batch > number {
                kept.push_back((batch, work));
                continue;
            }
            match &work.capture {
                Capture::Base { location, .. } if at.contains(location) => ahead.push(work),
                Capture::Version { location, .. } if at.contains(location) => {
                    gone.push(location.clone());
                }
                Capture::Base {
                    location,
                    content_hash,
                    ..
                } if is_collection(location) && hashes.remove(content_hash) => {
                    sources.push(work);
                }
                _ => kept.push_back((batch, work)),
            }
        }
        drop(at);
        self.queued = kept;
        sources.append(&mut ahead);
        for loc in gone.iter().chain(sources.iter().map(Work::location)) {
            self.unqueued(loc);
        }
        sources
    }

    fn add(&mut self, batch: &mut crate::history::Batch<'_>, work: Work) {
        if let Err(e) = batch.add(&work.capture) {
            tracing::warn!(location = %work.location(), "cannot record a version: {e}");
        }
        if let Some(root) = work.root {
            self.pending_snapshots.insert(root);
        }
    }

    /// Publishes the number of the last batch whose history work is all done.
    fn publish_done(&self) {
        let first_left = [
            self.ahead.front().map(|a| a.number),
            self.queued.front().map(|(b, _)| *b),
        ]
        .into_iter()
        .flatten()
        .min();
        let done = first_left.map_or(self.received, |b| b - 1);
        self.live.history_done.send_if_modified(|d| {
            let newer = *d < done;
            if newer {
                *d = done;
            }
            newer
        });
    }

    /// Takes the automatic snapshots that are due, and runs retention hourly (and right
    /// after a reload changed its policy).
    fn upkeep(&mut self) {
        let now = now_ms();
        if self.pending_snapshots.is_empty() && now - self.last_prune_ms < PRUNE_EVERY_MS {
            return;
        }
        let engine = Arc::clone(&self.live.engine);
        if engine.store().writable().is_err() {
            self.pending_snapshots.clear();
            return;
        }
        let history = engine.history();
        let config = engine.config();
        let interval = i64::try_from(config.history.auto_snapshot_interval_secs)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        let due: Vec<SnapshotTarget> = self
            .pending_snapshots
            .iter()
            .filter(|t| {
                self.last_snapshot_ms
                    .get(*t)
                    .is_none_or(|&last| now - last >= interval)
            })
            .cloned()
            .collect();
        let state = self.live.state();
        for t in due {
            let settled = settled_at(&state, &t);
            let taken = history.auto_snapshot(&t, now, interval, &|l| settled.get(l).cloned());
            if let Ok(AutoSnapshot::Unsettled) = taken {
                // A save under way: its batch comes next; the snapshot waits for it.
                tracing::debug!(target = %t, "automatic snapshot waits for a save under way");
                continue;
            }
            self.pending_snapshots.remove(&t);
            self.last_snapshot_ms.insert(t.clone(), now);
            match taken {
                Ok(AutoSnapshot::Taken(id)) => {
                    tracing::debug!(target = %t, ?id, "automatic snapshot");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(target = %t, "automatic snapshot failed: {e}"),
            }
        }
        if now - self.last_prune_ms >= PRUNE_EVERY_MS {
            self.last_prune_ms = now;
            let protected: std::collections::HashSet<String> = self.live.with_state(|s| {
                s.all()
                    .filter_map(|r| Some(r.deployed_sha.as_ref()?.to_string()))
                    .collect()
            });
            match history.prune(now, &config.history.retention, &protected) {
                Ok(r) => tracing::info!(?r, "history retention"),
                Err(e) => tracing::warn!("history retention failed: {e}"),
            }
        }
    }
}

/// The content the watcher settled on for each artifact `target` covers, by location.
fn settled_at(state: &super::State, target: &SnapshotTarget) -> HashMap<Location, String> {
    match target {
        SnapshotTarget::Project(p) => state
            .reports_of(Some(p))
            .filter_map(|r| Some((r.project_location(), r.project_sha.as_ref()?.to_string())))
            .collect(),
        SnapshotTarget::Collection(name) => state
            .all()
            .filter(|r| r.collection == *name)
            .filter_map(|r| {
                Some((
                    r.collection_location()?,
                    r.collection_sha.as_ref()?.to_string(),
                ))
            })
            .collect(),
    }
}

/// Answers the barriers waiting for `cookies`, and `acks`.
fn answer(live: &Live, cookies: &[String], acks: Vec<oneshot::Sender<()>>) {
    live.release(cookies);
    for ack in acks {
        let _ = ack.send(());
    }
}

//! Settling: which change hints make the next batch. A completed write goes at once (with
//! the rest of its burst); a save still in progress waits for its settle window, without
//! holding back the complete changes gathered with it; a sync cookie ends its batch once
//! the changes before it have settled. [`super::task`] calls [`gather`] for each batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::transient::is_cookie;
use crate::watcher::{Hint, Stage};

/// How much longer than the settle window a deleted file is given to come back: the
/// first half of a delete-then-create save whose writer was descheduled in between.
const REMOVAL_GRACE_SETTLES: u32 = 5;

/// How long a complete batch waits for one more hint: the writes of one program's burst
/// (a revert of several files, a copy) come microseconds apart and make one batch, so
/// nobody sees the state half-way through it; a person's next save comes much later.
const BURST_GAP: Duration = Duration::from_millis(2);

/// The next batch of the hints gathered in `held` (taking more from `hints`).
///
/// A batch whose every change is complete (written and closed, renamed into place, or only
/// attributes changed; for each path its latest hint counts) is final: it is processed at
/// once, as soon as [`BURST_GAP`] passes with no new hint (the rest of a burst under way
/// joins it). Other changes settle: until the settle window passes with no new hint (at
/// most `max_settle`); a file just emptied and still open may be half-saved by a writer
/// descheduled between truncate and write, so it gets up to the longest settle to be
/// written; a file deleted and not back yet gets a few settle windows to be recreated. A
/// change that completes meanwhile ends the wait. Complete changes do not wait for the
/// others: once [`BURST_GAP`] passes after the last of them, they are the batch, and the
/// changes in progress stay in `held`, settling, for a later one.
///
/// Once a cookie is among them, the batch ends with it: the changes before it still settle
/// (or complete), the hints after it wait for the next batch, and a cookie alone is
/// answered at once. A barrier thus waits only for what was pending when it began.
pub(super) async fn gather(
    held: &mut Batch,
    hints: &mut mpsc::Receiver<Hint>,
    settle: Duration,
    max_settle: Duration,
) -> BTreeSet<PathBuf> {
    let grace = (settle * REMOVAL_GRACE_SETTLES).min(max_settle);
    let batch = held;
    loop {
        while !batch.cookie {
            match hints.try_recv() {
                Ok(h) => batch.take(h),
                Err(_) => break,
            }
        }
        let complete = batch.complete();
        if complete && batch.cookie {
            break;
        }
        let left = max_settle.saturating_sub(batch.age());
        let mut wait = if complete {
            BURST_GAP.min(settle).min(left)
        } else {
            batch.unsettled(settle, grace, max_settle).min(left)
        };
        if wait.is_zero() {
            break;
        }
        if !complete && !batch.cookie && batch.any_complete() {
            let since = batch.last_complete.map_or(Duration::MAX, |t| t.elapsed());
            let gap = BURST_GAP.min(settle).saturating_sub(since);
            if gap.is_zero() {
                return batch.take_complete();
            }
            wait = wait.min(gap);
        }
        if batch.cookie {
            tokio::time::sleep(wait).await;
            continue;
        }
        match tokio::time::timeout(wait, hints.recv()).await {
            Ok(Some(h)) => batch.take(h),
            Ok(None) => break,
            Err(_) if complete => break,
            Err(_) => {}
        }
    }
    std::mem::take(batch).paths
}

/// The hints gathered so far.
#[derive(Default)]
pub(super) struct Batch {
    paths: BTreeSet<PathBuf>,
    /// When the first hint arrived.
    started: Option<Instant>,
    /// When the last complete change arrived.
    last_complete: Option<Instant>,
    /// How far along the change of each path (sync cookies aside) is, as its last hint says.
    stages: BTreeMap<PathBuf, Stage>,
    /// When the last change (not a cookie) arrived.
    last_change: Option<Instant>,
    /// When the last deletion arrived.
    last_removal: Option<Instant>,
    /// Whether a sync cookie arrived.
    cookie: bool,
}

impl Batch {
    pub(super) fn take(&mut self, hint: Hint) {
        let now = Instant::now();
        self.started.get_or_insert(now);
        if matches!(hint.stage, Stage::Complete | Stage::Attributes) {
            self.last_complete = Some(now);
        }
        for p in hint.paths {
            if is_cookie(&p) {
                self.cookie = true;
            } else {
                self.last_change = Some(Instant::now());
                if hint.stage == Stage::Removed {
                    self.last_removal = self.last_change;
                }
                self.stage(&p, hint.stage);
            }
            self.paths.insert(p);
        }
    }

    fn stage(&mut self, path: &Path, stage: Stage) {
        match stage {
            // Attributes alone change nothing a save in progress has not finished.
            Stage::Attributes => {
                self.stages
                    .entry(path.to_path_buf())
                    .or_insert(Stage::Complete);
            }
            // A folder renamed into place brings everything below it, complete.
            Stage::Complete => {
                let below: Vec<PathBuf> = self
                    .stages
                    .range(path.to_path_buf()..)
                    .take_while(|(p, _)| p.starts_with(path))
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in below {
                    self.stages.insert(p, Stage::Complete);
                }
                self.stages.insert(path.to_path_buf(), Stage::Complete);
            }
            Stage::Writing | Stage::Removed => {
                self.stages.insert(path.to_path_buf(), stage);
            }
        }
    }

    /// Whether every change gathered is complete: nothing to wait for.
    fn complete(&self) -> bool {
        self.stages.values().all(|s| *s == Stage::Complete)
    }

    /// Whether no hint is held.
    pub(super) fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Every path held.
    pub(super) fn into_paths(self) -> BTreeSet<PathBuf> {
        self.paths
    }

    /// Whether some change gathered is complete.
    fn any_complete(&self) -> bool {
        self.stages.values().any(|s| *s == Stage::Complete)
    }

    /// Takes the complete changes out, leaving those in progress.
    fn take_complete(&mut self) -> BTreeSet<PathBuf> {
        let done: BTreeSet<PathBuf> = self
            .stages
            .iter()
            .filter(|(_, s)| **s == Stage::Complete)
            .map(|(p, _)| p.clone())
            .collect();
        for p in &done {
            self.stages.remove(p);
            self.paths.remove(p);
        }
        done
    }

    /// How long ago the first hint arrived.
    fn age(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// How long the changes still in progress deserve to be waited for: the rest of the
    /// settle window since the last change; a settle window more while a file just
    /// emptied is still open; the rest of `grace` since the last deletion while a deleted
    /// path is not back.
    fn unsettled(&self, settle: Duration, grace: Duration, max_settle: Duration) -> Duration {
        let since = |t: Option<Instant>| t.map_or(Duration::MAX, |t| t.elapsed());
        let mut wait = settle.saturating_sub(since(self.last_change));
        let gone = |p: &&PathBuf| std::fs::symlink_metadata(p).is_err();
        let removed = || {
            self.stages
                .iter()
                .filter(|(_, s)| **s == Stage::Removed)
                .map(|(p, _)| p)
                .take(MAX_CHECKED)
                .any(|p| gone(&p))
        };
        if removed() {
            wait = wait.max(grace.saturating_sub(since(self.last_removal)));
        }
        if wait.is_zero() && recently_emptied(&self.stages, max_settle) {
            wait = settle;
        }
        wait
    }
}

/// How many paths of a batch are checked on disk at most, to keep bursts cheap.
const MAX_CHECKED: usize = 256;

/// Whether any path still being written (up to a bound) is an empty file modified less
/// than `window` ago: perhaps the middle of a truncate-then-write save whose writer was
/// descheduled. (A file closed after writing is final, even empty; renames are atomic. A
/// file really emptied and left open costs at most one `max_settle` of delay.)
fn recently_emptied(stages: &BTreeMap<PathBuf, Stage>, window: Duration) -> bool {
    let writing: Vec<&PathBuf> = stages
        .iter()
        .filter(|(_, s)| **s == Stage::Writing)
        .map(|(p, _)| p)
        .take(MAX_CHECKED + 1)
        .collect();
    if writing.len() > MAX_CHECKED {
        return false;
    }
    let now = SystemTime::now();
    writing.into_iter().any(|p| {
        std::fs::symlink_metadata(p)
            .ok()
            .filter(|m| m.is_file() && m.len() == 0)
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age < window)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SETTLE: Duration = Duration::from_millis(20);
    const MAX_SETTLE: Duration = Duration::from_millis(1000);

    fn hint(p: &str) -> Hint {
        staged(p, Stage::Writing)
    }

    /// The next batch starting with `first`, nothing held before it.
    pub(super) async fn gather(
        first: Hint,
        hints: &mut mpsc::Receiver<Hint>,
        settle: Duration,
        max_settle: Duration,
    ) -> BTreeSet<PathBuf> {
        let mut held = Batch::default();
        held.take(first);
        let batch = super::gather(&mut held, hints, settle, max_settle).await;
        assert!(held.paths.is_empty(), "{:?} held", held.paths);
        batch
    }

    fn staged(p: impl Into<PathBuf>, stage: Stage) -> Hint {
        Hint {
            paths: vec![p.into()],
            stage,
        }
    }

    fn cookie(n: u64) -> Hint {
        Hint {
            paths: vec![PathBuf::from("/h").join(crate::transient::cookie_name(n))],
            stage: Stage::Writing,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_completed_write_is_processed_at_once_with_the_rest_of_its_burst() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(staged("/p/a.md", Stage::Attributes)).await.unwrap();
        let t = Instant::now();
        let batch = gather(hint("/p/a.md"), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), SETTLE, "a write not yet closed settles");
        assert_eq!(batch.len(), 1);

        let t = Instant::now();
        let batch = gather(
            staged("/p/a.md", Stage::Complete),
            &mut rx,
            SETTLE,
            MAX_SETTLE,
        )
        .await;
        assert_eq!(t.elapsed(), BURST_GAP, "closed after writing: at once");
        assert_eq!(batch.len(), 1);

        // The usual save: truncate and write (a save under way), then close. The latest
        // hint of the path counts: nothing is left to wait for.
        let t = Instant::now();
        let (a, b) = (hint("/p/a.md"), staged("/p/b.md", Stage::Complete));
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            tx.send(hint("/p/b.md")).await.unwrap();
            tx.send(staged("/p/a.md", Stage::Complete)).await.unwrap();
            tx.send(b).await.unwrap();
            tx
        });
        let batch = gather(a, &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(
            t.elapsed(),
            Duration::from_millis(2) + BURST_GAP,
            "processed once the last write closed"
        );
        assert_eq!(batch.len(), 2);
        let tx = later.await.unwrap();

        let t = Instant::now();
        tx.send(cookie(1)).await.unwrap();
        gather(
            staged("/p/a.md", Stage::Complete),
            &mut rx,
            SETTLE,
            MAX_SETTLE,
        )
        .await;
        assert_eq!(
            t.elapsed(),
            Duration::ZERO,
            "a cookie behind complete changes: at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_held_open_does_not_hold_back_the_complete_writes_of_its_batch() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(staged("/p/done.md", Stage::Complete))
            .await
            .unwrap();
        let mut held = Batch::default();
        held.take(hint("/p/open.md"));
        let t = Instant::now();
        let batch = super::gather(&mut held, &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), BURST_GAP, "the complete write goes at once");
        assert_eq!(batch, BTreeSet::from([PathBuf::from("/p/done.md")]));
        assert_eq!(held.paths, BTreeSet::from([PathBuf::from("/p/open.md")]));

        // Still written to: it settles after its last write, alone.
        tx.send(hint("/p/open.md")).await.unwrap();
        let batch = super::gather(&mut held, &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), BURST_GAP + SETTLE);
        assert_eq!(batch, BTreeSet::from([PathBuf::from("/p/open.md")]));
        assert!(held.paths.is_empty());

        // Written all along: the complete writes go after their burst, the open file
        // at the longest settle.
        let (tx2, mut rx2) = mpsc::channel(64);
        let writer = tokio::spawn(async move {
            for _ in 0..40 {
                tx2.send(hint("/p/log.md")).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tx2.send(staged("/p/a.md", Stage::Complete)).await.unwrap();
            for _ in 0..2000 {
                tx2.send(hint("/p/log.md")).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let t = Instant::now();
        let mut held = Batch::default();
        held.take(hint("/p/log.md"));
        let batch = super::gather(&mut held, &mut rx2, SETTLE, MAX_SETTLE).await;
        assert_eq!(batch, BTreeSet::from([PathBuf::from("/p/a.md")]));
        assert!(
            t.elapsed() <= Duration::from_millis(45),
            "{:?}",
            t.elapsed()
        );
        let batch = super::gather(&mut held, &mut rx2, SETTLE, MAX_SETTLE).await;
        assert_eq!(batch, BTreeSet::from([PathBuf::from("/p/log.md")]));
        assert_eq!(t.elapsed(), MAX_SETTLE);
        writer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_file_is_given_time_to_come_back() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("SKILL.md");
        let (tx, mut rx) = mpsc::channel(8);
        let (writer_file, writer_tx) = (f.clone(), tx.clone());
        let writer = tokio::spawn(async move {
            tokio::time::sleep(SETTLE * 3).await;
            std::fs::write(&writer_file, b"same\n").unwrap();
            writer_tx
                .send(staged(&writer_file, Stage::Writing))
                .await
                .unwrap();
            writer_tx
                .send(staged(&writer_file, Stage::Complete))
                .await
                .unwrap();
        });
        let t = Instant::now();
        let batch = gather(staged(&f, Stage::Removed), &mut rx, SETTLE, MAX_SETTLE).await;
        writer.await.unwrap();
        assert_eq!(
            t.elapsed(),
            SETTLE * 3 + BURST_GAP,
            "processed once it is back and closed"
        );
        assert_eq!(batch.len(), 1);

        // Really deleted: processed after the grace.
        std::fs::remove_file(&f).unwrap();
        let t = Instant::now();
        gather(staged(&f, Stage::Removed), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), SETTLE * REMOVAL_GRACE_SETTLES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_folder_renamed_into_place_completes_what_was_removed_below_it() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(staged("/p/skills/s/refs", Stage::Removed))
            .await
            .unwrap();
        tx.send(staged("/p/skills/s", Stage::Removed))
            .await
            .unwrap();
        tx.send(staged("/p/skills/s", Stage::Complete))
            .await
            .unwrap();
        let t = Instant::now();
        let first = staged("/p/skills/s/SKILL.md", Stage::Removed);
        let batch = gather(first, &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), BURST_GAP);
        assert_eq!(batch.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cookie_alone_is_answered_at_once() {
        let (_tx, mut rx) = mpsc::channel(8);
        let t = Instant::now();
        let batch = gather(cookie(1), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cookie_waits_for_the_changes_before_it_to_settle_and_no_more() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(cookie(1)).await.unwrap();
        tx.send(hint("/p/after.md")).await.unwrap();
        let t = Instant::now();
        let batch = gather(hint("/p/before.md"), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(t.elapsed(), SETTLE, "the change before the cookie settles");
        assert!(batch.contains(Path::new("/p/before.md")));
        assert!(
            !batch.contains(Path::new("/p/after.md")),
            "a change after the cookie waits for the next batch"
        );
        assert_eq!(rx.recv().await, Some(hint("/p/after.md")));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_cookie_a_burst_settles_after_its_last_hint() {
        let (tx, mut rx) = mpsc::channel(8);
        let sender = tokio::spawn(async move {
            for i in 0..3 {
                tokio::time::sleep(SETTLE / 2).await;
                tx.send(hint(&format!("/p/{i}.md"))).await.unwrap();
            }
            tx
        });
        let t = Instant::now();
        let batch = gather(hint("/p/first.md"), &mut rx, SETTLE, MAX_SETTLE).await;
        assert_eq!(batch.len(), 4);
        assert_eq!(t.elapsed(), SETTLE / 2 * 3 + SETTLE);
        drop(sender.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn an_emptied_file_before_a_cookie_is_given_time_to_be_written() {
        let d = tempfile::tempdir().unwrap();
        let emptied = d.path().join("hello.md");
        std::fs::write(&emptied, b"").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(cookie(1)).await.unwrap();
        let first = staged(&emptied, Stage::Writing);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(SETTLE * 3).await;
            std::fs::write(&emptied, b"saved\n").unwrap();
        });
        let t = Instant::now();
        gather(first, &mut rx, SETTLE, MAX_SETTLE).await;
        writer.await.unwrap();
        assert!(t.elapsed() >= SETTLE * 3, "{:?}", t.elapsed());
        assert!(t.elapsed() < MAX_SETTLE, "{:?}", t.elapsed());
    }
}

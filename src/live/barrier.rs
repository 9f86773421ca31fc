//! The sync-to-now barrier, on by default for every query: Watchman-style cookies whose
//! events mark a point in the ordered stream of change hints. Once the live task has
//! applied the batch holding a cookie, every change made before the barrier began is in
//! the state.
//!
//! - Kernel-watched folders share one ordered inotify queue: one cookie file written in
//!   SkillMeat's home (always watched) covers them all.
//! - Polled folders get no file: the poller is asked for a walk that starts after the
//!   call ([`crate::watcher::PollNow`]), and a cookie name follows that walk's hints.
//! - Without either (SkillMeat's home unwatched, no polling thread), the barrier asks for
//!   a full reconcile, which reads everything after the call.
//!
//! The live task recognises cookies by name ([`crate::transient::is_cookie`]): a batch of
//! cookies alone is answered at once, and a cookie never extends the settle window, so the
//! barrier costs a round trip through the kernel when nothing is pending and, with changes
//! pending, only the time they take to settle.
//!
//! A batch's barriers are answered once its changes of content are recorded as versions
//! (by the history recorder, which answers them); recording bases and first-seen content
//! is not on that path: the recorder does it in the background. A history query
//! ([`Live::sync_history`]) waits, after the barrier, for the history work queued up to
//! then; drift, projects and status do not.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::transient::cookie_name;

use super::{Control, Live, State, SyncError};

/// How long a sync barrier waits for its cookies beyond the longest settle window.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// One cookie a barrier waits for: forgotten (and its file removed) when dropped, so a
/// barrier whose caller went away leaves nothing behind.
struct Cookie<'a> {
    live: &'a Live,
    name: String,
    file: Option<PathBuf>,
}

/// One thing a barrier waits for: what it covers (for the timeout's message), its answer,
/// and the cookie to forget afterwards (none for a full reconcile).
type Wait<'a> = (String, oneshot::Receiver<()>, Option<Cookie<'a>>);

impl Drop for Cookie<'_> {
    fn drop(&mut self) {
        self.live.forget_cookie(&self.name);
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Live {
    /// A new cookie, registered before anything can release it.
    fn cookie(&self) -> (Cookie<'_>, oneshot::Receiver<()>) {
        let name = cookie_name(self.next_cookie.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.cookies
            .lock()
            .expect("cookie lock poisoned")
            .insert(name.clone(), tx);
        let cookie = Cookie {
            live: self,
            name,
            file: None,
        };
        (cookie, rx)
    }

    /// Answers the barriers waiting for `cookies`.
    pub(super) fn release(&self, cookies: &[String]) {
        let mut waiting = self.cookies.lock().expect("cookie lock poisoned");
        for c in cookies {
            if let Some(tx) = waiting.remove(c) {
                let _ = tx.send(());
            }
        }
    }

    fn forget_cookie(&self, name: &str) {
        self.cookies
            .lock()
            .expect("cookie lock poisoned")
            .remove(name);
    }

    /// The sync-to-now barrier, and then the history work it found: returns once every
    /// filesystem change made before the call is in the state and its new content is
    /// recorded in history (`smctl log` right after an edit shows it).
    ///
    /// # Errors
    /// As [`Live::sync`].
    pub async fn sync_history(&self) -> Result<(), SyncError> {
        self.sync().await?;
        let queued = self.history_queued.load(Ordering::Acquire);
        let mut done = self.history_done.subscribe();
        done.wait_for(|d| *d >= queued)
            .await
            .map_err(|_| SyncError::ShuttingDown)?;
        Ok(())
    }

    /// The sync-to-now barrier: returns once every filesystem change made before the call
    /// is in the state (its history work may still be under way; see
    /// [`Live::sync_history`]).
    ///
    /// A barrier is planned from the published state (which folders are watched how); when
    /// the way of watching changes while it waits (a reload switched polling on or off),
    /// it is planned again from the new state: a cookie file written for a kernel watcher
    /// the switch dropped would never be seen. A barrier planned later covers every change
    /// the first one had to.
    ///
    /// # Errors
    /// A cookie was not seen within [`SYNC_TIMEOUT`] past the longest settle window, or the
    /// daemon is shutting down.
    pub async fn sync(&self) -> Result<(), SyncError> {
        loop {
            let mut rewatched = self.rewatched.subscribe();
            rewatched.borrow_and_update();
            if let Some(outcome) = self.sync_as_watched(&mut rewatched).await {
                return outcome;
            }
            tracing::debug!("the way of watching changed during a sync barrier; planning it again");
        }
    }

    /// One barrier planned from the state published now; `None` when `rewatched` saw the
    /// way of watching change before it was answered.
    async fn sync_as_watched(
        &self,
        rewatched: &mut tokio::sync::watch::Receiver<u64>,
    ) -> Option<Result<(), SyncError>> {
        let home = self.engine.paths().skillmeat_home.clone();
        let (home_watched, kernel_roots, polled) = self.with_state(State::watching);
        let mut waits: Vec<Wait<'_>> = Vec::new();
        let mut reconcile = false;
        if kernel_roots {
            if home_watched {
                let (mut cookie, rx) = self.cookie();
                let path = home.join(&cookie.name);
                match std::fs::write(&path, b"") {
                    Ok(()) => {
                        cookie.file = Some(path);
                        waits.push((home.display().to_string(), rx, Some(cookie)));
                    }
                    Err(e) => {
                        tracing::debug!(path = %path.display(), error = %e, "cannot write a sync cookie; reconciling");
                        reconcile = true;
                    }
                }
            } else {
                reconcile = true;
            }
        }
        if polled > 0 {
            match self.poll_now.get() {
                Some(poll) => {
                    let (cookie, rx) = self.cookie();
                    poll.request(home.join(&cookie.name));
                    waits.push((format!("{polled} polled folders"), rx, Some(cookie)));
                }
                None => reconcile = true,
            }
        }
        if reconcile {
            let (tx, rx) = oneshot::channel();
            if self.control.send(Control::Reconcile(tx)).await.is_err() {
                return Some(Err(SyncError::ShuttingDown));
            }
            waits.push(("a full reconcile".into(), rx, None));
        }
        let after = SYNC_TIMEOUT + Duration::from_millis(self.engine.config().watch.max_settle_ms);
        let deadline = tokio::time::Instant::now() + after;
        let mut late = Vec::new();
        for (covers, rx, _cookie) in waits {
            tokio::select! {
                answer = tokio::time::timeout_at(deadline, rx) => match answer {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Some(Err(SyncError::ShuttingDown)),
                    Err(_) => late.push(covers),
                },
                // The sender lives as long as `self`: this is a change, never a close.
                _ = rewatched.changed() => return None,
            }
        }
        Some(if late.is_empty() {
            Ok(())
        } else {
            Err(SyncError::Timeout {
                after,
                waiting: late,
            })
        })
    }
}

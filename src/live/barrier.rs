//! The sync-to-now barrier (`smctl drift --sync`): cookie files whose events mark a point in
//! the kernel's ordered event queue. The worker releases a cookie once the batch holding it
//! is applied (see [`super::worker`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::transient::COOKIE_PREFIX;

use super::{Live, SyncError};

/// How long a sync barrier waits for its cookies.
pub(super) const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

impl Live {
    /// A sync-to-now barrier, like Watchman's cookies: writes a cookie file in SkillMeat's
    /// home (kernel events share one ordered queue) and in every polled root, and returns
    /// once the live task has applied the batch containing each, so every change made
    /// before the call is in the state.
    ///
    /// # Errors
    /// A cookie was not seen in time, or the daemon is shutting down.
    pub async fn sync(&self) -> Result<(), SyncError> {
        let mut dirs = vec![self.engine.paths().skillmeat_home.clone()];
        dirs.extend(self.with_state(|s| s.polled.keys().cloned().collect::<Vec<_>>()));
        let mut waits = Vec::new();
        for dir in dirs {
            let name = format!(
                "{COOKIE_PREFIX}{}-{}",
                std::process::id(),
                self.next_cookie.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(&name);
            let (tx, rx) = oneshot::channel();
            self.cookies
                .lock()
                .expect("cookie lock poisoned")
                .insert(name.clone(), tx);
            if let Err(e) = std::fs::write(&path, b"") {
                tracing::debug!(path = %path.display(), error = %e, "cannot write a sync cookie");
                self.cookies
                    .lock()
                    .expect("cookie lock poisoned")
                    .remove(&name);
                continue;
            }
            waits.push((path, name, rx));
        }
        let mut late = Vec::new();
        for (path, name, rx) in waits {
            let result = tokio::time::timeout(SYNC_TIMEOUT, rx).await;
            let _ = std::fs::remove_file(&path);
            self.cookies
                .lock()
                .expect("cookie lock poisoned")
                .remove(&name);
            match result {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(SyncError::ShuttingDown),
                Err(_) => late.push(path.parent().unwrap_or(&path).display().to_string()),
            }
        }
        if late.is_empty() {
            Ok(())
        } else {
            Err(SyncError::Timeout(late))
        }
    }
}

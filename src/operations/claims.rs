//! Which operations are writing which artifacts, so the drift events their writes cause
//! carry the operation's id. The RPC layer's [`super::Operations`] claim before writing; the
//! live task ([`crate::live`]) attributes events.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::formats::normalize_name;
use crate::model::Event;

/// How long after an operation ends the drift events of its writes are still attributed
/// to it (the watcher settles changes before it reports them).
pub const CLAIM_GRACE: Duration = Duration::from_secs(60);

/// One artifact an operation is writing: a project's deployment (`project` set) or a
/// collection's artifact (every deployment of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub operation: u64,
    pub project: Option<PathBuf>,
    pub name: String,
    pub artifact_type: String,
    expires: Option<Instant>,
}

impl Claim {
    pub(super) fn new(project: Option<&Path>, name: &str, artifact_type: &str) -> Claim {
        Claim {
            operation: 0,
            project: project.map(Path::to_path_buf),
            name: normalize_name(name).to_string(),
            artifact_type: artifact_type.to_string(),
            expires: None,
        }
    }

    fn matches(&self, e: &Event) -> bool {
        normalize_name(&e.name) == self.name
            && e.artifact_type == self.artifact_type
            && self
                .project
                .as_ref()
                .is_none_or(|p| p.display().to_string() == e.project)
    }
}

/// Which operations are writing which artifacts, so that the drift events their writes
/// cause carry the operation's id (`DriftEvent.operation`). Shared by the RPC layer (which
/// claims before writing) and the live task (which attributes events).
#[derive(Debug, Default)]
pub struct Claims {
    inner: Mutex<Vec<Claim>>,
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Claim>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that operation `id` is about to write these artifacts.
    pub fn claim(&self, id: u64, claims: &[Claim]) {
        self.lock().extend(claims.iter().map(|c| Claim {
            operation: id,
            ..c.clone()
        }));
    }

    /// Operation `id` ended: its claims last [`CLAIM_GRACE`] more.
    pub fn release(&self, id: u64) {
        let until = Instant::now() + CLAIM_GRACE;
        for c in self.lock().iter_mut().filter(|c| c.operation == id) {
            c.expires = Some(until);
        }
    }

    /// Sets `operation` on the events of claimed artifacts (the newest claim wins), and
    /// forgets expired claims.
    pub fn attribute(&self, events: &mut [Event]) {
        let mut claims = self.lock();
        let now = Instant::now();
        claims.retain(|c| c.expires.is_none_or(|t| t > now));
        for e in events.iter_mut().filter(|e| e.operation.is_empty()) {
            if let Some(c) = claims.iter().rev().find(|c| c.matches(e)) {
                e.operation = c.operation.to_string();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_artifacts_name_the_operation_in_their_events() {
        let claims = Claims::default();
        let event = |project: &str, name: &str| {
            let mut e = Event::polling("", "");
            e.project = project.into();
            e.name = name.into();
            e.artifact_type = "skill".into();
            e.operation.clear();
            e
        };
        claims.claim(3, &[Claim::new(Some(Path::new("/p")), "canvas", "skill")]);
        claims.claim(4, &[Claim::new(None, "review.md", "skill")]);
        claims.release(3);
        let mut events = vec![
            event("/p", "canvas"),
            event("/q", "canvas"),
            event("/q", "review"),
            event("/p", "other"),
        ];
        claims.attribute(&mut events);
        let ops: Vec<&str> = events.iter().map(|e| e.operation.as_str()).collect();
        assert_eq!(ops, ["3", "", "4", ""]);
    }
}

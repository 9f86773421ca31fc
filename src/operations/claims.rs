//! Which operations are writing which artifacts, so the drift events their writes cause
//! carry the operation's id (`DriftEvent.operation`).
//!
//! An operation claims every location it touches, before writing it
//! ([`super::Operations`] does so as it records what it touched, for undo), so no write
//! goes unclaimed. The live task ([`crate::live`]) asks [`Claims::operation_of`] for each
//! report whose change it turns into an event.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::{ArtifactReport, Location, Scope};

/// How long after an operation ends the drift events of its writes are still attributed
/// to it (the watcher settles changes before it reports them).
pub const CLAIM_GRACE: Duration = Duration::from_secs(60);

/// A location an operation is writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub operation: u64,
    pub location: Location,
    expires: Option<Instant>,
}

impl Claim {
    /// Whether `r` reports on the artifact at the claimed location. A project location is
    /// the deployment of that path in that profile root, and the collection artifact of that
    /// path offered to the project (`added`) once the deployment is gone; a collection
    /// location is that artifact in every project. Bookkeeping files (deployment files,
    /// `collection.toml`, `collection.lock`) report on nothing themselves: their effects show
    /// on the artifacts the same operation claims.
    fn matches(&self, r: &ArtifactReport) -> bool {
        let path = Path::new(&self.location.path);
        match &self.location.scope {
            Scope::Project(p) => {
                &r.project == p
                    && r.artifact_path == path
                    && (r.profile_root == self.location.root || r.profile_root.is_empty())
            }
            Scope::Collection(n) => r.collection == n && r.collection_path.as_deref() == Some(path),
        }
    }
}

/// The claims of running (and recently ended) operations. Shared by the RPC layer's
/// operations and the live task.
#[derive(Debug, Default)]
pub struct Claims {
    inner: Mutex<Vec<Claim>>,
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Claim>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that operation `id` is about to write `location`.
    pub fn claim(&self, id: u64, location: &Location) {
        self.lock().push(Claim {
            operation: id,
            location: location.clone(),
            expires: None,
        });
    }

    /// Operation `id` ended: its claims last [`CLAIM_GRACE`] more.
    pub fn release(&self, id: u64) {
        let until = Instant::now() + CLAIM_GRACE;
        for c in self.lock().iter_mut().filter(|c| c.operation == id) {
            c.expires = Some(until);
        }
    }

    /// The operation writing the artifact `report` describes (the newest claim wins), if
    /// any. Expired claims are forgotten.
    pub fn operation_of(&self, report: &ArtifactReport) -> Option<u64> {
        let mut claims = self.lock();
        let now = Instant::now();
        claims.retain(|c| c.expires.is_none_or(|t| t > now));
        claims
            .iter()
            .rev()
            .find(|c| c.matches(report))
            .map(|c| c.operation)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::drift::DriftKind;

    fn report(project: &str, root: &str, path: &str, collection: &str) -> ArtifactReport {
        ArtifactReport {
            project: PathBuf::from(project),
            profile_root: root.into(),
            name: "canvas".into(),
            artifact_type: "skill".into(),
            kind: DriftKind::Modified,
            recommendation: Default::default(),
            change_origin: Default::default(),
            deployed_sha: None,
            collection_sha: None,
            project_sha: None,
            collection_version: None,
            project_version: None,
            last_deployed: None,
            collection: collection.into(),
            artifact_path: PathBuf::from(path),
            collection_path: Some(PathBuf::from(path)),
            error: None,
        }
    }

    #[test]
    fn claimed_locations_name_the_operation_of_their_reports() {
        let claims = Claims::default();
        let p = Path::new("/p");
        claims.claim(3, &Location::project(p, ".claude", "skills/canvas"));
        claims.claim(
            3,
            &Location::project(p, ".claude", ".skillmeat-deployed.toml"),
        );
        claims.claim(4, &Location::collection("default", "skills/review/"));
        claims.release(3);
        let op = |r: ArtifactReport| claims.operation_of(&r);
        assert_eq!(
            op(report("/p", ".claude", "skills/canvas", "default")),
            Some(3)
        );
        // Once the deployment is gone, the collection artifact is offered as `added`.
        assert_eq!(op(report("/p", "", "skills/canvas", "default")), Some(3));
        assert_eq!(op(report("/p", ".codex", "skills/canvas", "default")), None);
        assert_eq!(
            op(report("/q", ".claude", "skills/canvas", "default")),
            None
        );
        assert_eq!(op(report("/p", ".claude", "skills/other", "default")), None);
        // A collection artifact's claim covers every project using it.
        assert_eq!(
            op(report("/q", ".claude", "skills/review", "default")),
            Some(4)
        );
        assert_eq!(op(report("/q", ".claude", "skills/review", "other")), None);
    }
}

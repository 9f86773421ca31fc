//! Deployments that cannot be read, reported as what they are: `error`, with the exact
//! reason — never forgotten (which would turn their collection artifact into `added`, advice
//! `deploy_to_project`, overwriting the project copy) and never guessed.
//!
//! [`Claims`] remembers which collection artifacts this project's records stand for, read
//! or not, so the engine gives `added` only to artifacts no record may stand for; when some
//! record cannot even be identified, every would-be `added` is `error` instead. Used by
//! [`super::Engine::project_drift`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::drift::{self, DriftKind};
use crate::formats::collection::Collection;
use crate::formats::deployment::BadRecord;
use crate::formats::normalize_name;
use crate::model::ArtifactReport;

/// The collection artifacts a project's deployment records stand for.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// (collection, normalized name, type) of records whose identity is known.
    exact: HashSet<(String, String, String)>,
    /// (collection if known, normalized name) of records whose type or collection is not.
    partial: Vec<(Option<String>, String)>,
    /// Why some record cannot be identified at all, if one cannot.
    unidentified: Option<String>,
}

impl Claims {
    /// A record of `collection`'s `name` and `artifact_type`, as far as they are known.
    pub(super) fn claim(
        &mut self,
        collection: Option<&str>,
        name: &str,
        artifact_type: Option<&str>,
    ) {
        let name = normalize_name(name).to_string();
        match (collection, artifact_type) {
            (Some(c), Some(t)) => {
                self.exact.insert((c.to_string(), name, t.to_string()));
            }
            (c, _) => self.partial.push((c.map(str::to_string), name)),
        }
    }

    /// A record (or a whole file) whose artifact cannot be told, and why.
    pub(super) fn unidentified(&mut self, why: String) {
        self.unidentified.get_or_insert(why);
    }

    /// Whether some record may stand for `collection`'s `name` of `artifact_type`.
    pub(super) fn covers(&self, collection: &str, name: &str, artifact_type: &str) -> bool {
        let name = normalize_name(name);
        self.exact.contains(&(
            collection.to_string(),
            name.to_string(),
            artifact_type.to_string(),
        )) || self
            .partial
            .iter()
            .any(|(c, n)| n == name && c.as_deref().is_none_or(|c| c == collection))
    }

    /// Why it cannot be told whether an artifact is deployed, when some record is
    /// unidentified: such an artifact is `error`, not `added`.
    pub(super) fn unknown(&self) -> Option<&str> {
        self.unidentified.as_deref()
    }
}

/// An `error` report with the given identity and reason.
pub(super) fn report(
    project: &Path,
    profile_root: &str,
    collection: &str,
    name: &str,
    artifact_type: &str,
    artifact_path: PathBuf,
    why: String,
) -> ArtifactReport {
    let verdict = drift::unreadable();
    ArtifactReport {
        project: project.to_path_buf(),
        profile_root: profile_root.into(),
        name: name.into(),
        artifact_type: artifact_type.into(),
        kind: verdict.kind,
        recommendation: verdict.recommendation.into(),
        change_origin: verdict.change_origin.into(),
        deployed_sha: None,
        collection_sha: None,
        project_sha: None,
        collection_version: None,
        project_version: None,
        last_deployed: None,
        collection: collection.into(),
        artifact_path,
        collection_path: None,
        error: Some(why.into()),
    }
}

/// The report of a record that cannot be used, `why` saying where and why. Its type, when
/// unreadable, is the type of the one artifact of that name in its collection (so the
/// deployment keeps its identity across the change), else empty.
pub(super) fn bad_record(
    project: &Path,
    root: &str,
    bad: &BadRecord,
    name: &str,
    collection: Option<&Collection>,
    why: String,
) -> ArtifactReport {
    let known = collection.and_then(|c| c.only_one_named(name));
    let artifact_type = bad
        .artifact_type
        .clone()
        .or_else(|| known.map(|a| a.artifact_type.clone()))
        .unwrap_or_default();
    report(
        project,
        root,
        bad.from_collection.as_deref().unwrap_or_default(),
        name,
        &artifact_type,
        bad.artifact_path.clone().unwrap_or_default(),
        why,
    )
}

/// The deployments last seen in a file that cannot be read now (`prior`: the project's
/// previous reports), as `error` with `why`: unreadable, not gone.
pub(super) fn carried(prior: &[&ArtifactReport], root: &str, why: &str) -> Vec<ArtifactReport> {
    prior
        .iter()
        .filter(|r| r.profile_root == root && r.kind != DriftKind::Added)
        .map(|r| ArtifactReport {
            deployed_sha: r.deployed_sha.clone(),
            last_deployed: r.last_deployed.clone(),
            ..report(
                &r.project,
                root,
                &r.collection,
                &r.name,
                &r.artifact_type,
                r.artifact_path.clone(),
                why.to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_cover_what_a_record_may_stand_for() {
        let mut c = Claims::default();
        c.claim(Some("default"), "review.md", Some("command"));
        c.claim(Some("default"), "canvas", None);
        assert!(c.covers("default", "review", "command"));
        assert!(!c.covers("default", "review", "agent"));
        assert!(c.covers("default", "canvas", "skill") && c.covers("default", "canvas", "agent"));
        assert!(!c.covers("other", "canvas", "skill"));
        c.claim(None, "lost", None);
        assert!(c.covers("other", "lost", "skill"));
        assert_eq!(c.unknown(), None);
        c.unidentified("f: deployed[3]: missing required key(s): artifact_name".into());
        c.unidentified("second".into());
        assert_eq!(
            c.unknown(),
            Some("f: deployed[3]: missing required key(s): artifact_name")
        );
    }
}

//! Finding what an operation works on: the deployment a project records for an artifact
//! (by name, path or `type/name`), with its collection copy. A record or a collection that
//! cannot be read is refused with the reason, never taken for absent.

use std::path::{Path, PathBuf};

use crate::formats::collection::{self, Lookup};
use crate::formats::deployment_write::RecordKey;
use crate::formats::{deployment, normalize_name};
use crate::model::{Location, RecordRef};
use crate::paths::canonical;

use super::OpError;

/// A deployment found by project and artifact name or path.
#[derive(Debug, Clone)]
pub(super) struct Deployed {
    pub(super) project: PathBuf,
    pub(super) root: String,
    pub(super) record: deployment::Deployment,
    pub(super) collection_dir: PathBuf,
    /// The collection copy's path relative to the collection folder.
    pub(super) collection_rel: PathBuf,
}

impl Deployed {
    pub(super) fn managed(&self) -> PathBuf {
        self.project.join(&self.root)
    }
    pub(super) fn project_path(&self) -> PathBuf {
        self.managed().join(&self.record.artifact_path)
    }
    pub(super) fn collection_path(&self) -> PathBuf {
        self.collection_dir.join(&self.collection_rel)
    }
    pub(super) fn project_loc(&self) -> Location {
        Location::project(
            &self.project,
            &self.root,
            &self.record.artifact_path.to_string_lossy(),
        )
    }
    pub(super) fn collection_loc(&self) -> Location {
        Location::collection(
            &self.record.from_collection,
            &self.collection_rel.to_string_lossy(),
        )
    }
    pub(super) fn deployment_file_loc(&self) -> Location {
        Location::project(&self.project, &self.root, deployment::FILE_NAME)
    }
    /// This deployment's record in its deployment file, as the operations log names it.
    pub(super) fn record_ref(&self) -> RecordRef {
        RecordRef::Deployment {
            name: self.record.artifact_name.clone(),
            artifact_type: self.record.artifact_type.clone(),
            profile_id: self.record.profile_id.clone(),
        }
    }
    pub(super) fn key(&self) -> RecordKey<'_> {
        RecordKey {
            name: &self.record.artifact_name,
            artifact_type: &self.record.artifact_type,
            profile_id: self.record.profile_id.as_deref(),
        }
    }
}

/// Whether `spec` names this artifact: its name (any SkillMeat extension), its path in the
/// profile root, or `type/name`.
pub(super) fn names(spec: &str, name: &str, artifact_type: &str, path: &Path) -> bool {
    let spec = spec.trim_end_matches('/');
    normalize_name(spec) == normalize_name(name)
        || Path::new(spec) == path
        || spec == format!("{artifact_type}/{}", normalize_name(name))
}

pub(super) fn find_deployment(
    home: &Path,
    project: &Path,
    artifact: &str,
) -> Result<Deployed, OpError> {
    let project = canonical(project);
    if !project.is_dir() {
        return Err(OpError::NotFound(format!("project {}", project.display())));
    }
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for file in deployment::read_project(&project) {
        if let Some(why) = &file.unreadable {
            unreadable.push(format!("{}: {why}", file.path.display()));
        }
        for bad in &file.bad_records {
            let path = bad.artifact_path.clone().unwrap_or_default();
            let named = bad.artifact_name.as_deref().is_none_or(|n| {
                names(
                    artifact,
                    n,
                    bad.artifact_type.as_deref().unwrap_or(""),
                    &path,
                )
            });
            if named {
                unreadable.push(format!(
                    "{}: deployed[{}]: {}",
                    file.path.display(),
                    bad.index,
                    bad.reason
                ));
            }
        }
        for r in file.records {
            if names(
                artifact,
                &r.artifact_name,
                &r.artifact_type,
                &r.artifact_path,
            ) {
                found.push((file.root.clone(), r));
            }
        }
    }
    let (root, record) = match found.len() {
        0 if !unreadable.is_empty() => {
            return Err(OpError::Precondition(format!(
                "the deployment record of {artifact:?} cannot be read: {}",
                unreadable.join("; ")
            )));
        }
        0 => {
            return Err(OpError::NotFound(format!(
                "deployment of {artifact:?} in {}",
                project.display()
            )));
        }
        1 => found.remove(0),
        _ => {
            let all: Vec<String> = found
                .iter()
                .map(|(root, r)| format!("{root}/{}", r.artifact_path.display()))
                .collect();
            return Err(OpError::Invalid(format!(
                "{artifact:?} names several deployments in {}: {}; give the path instead",
                project.display(),
                all.join(", ")
            )));
        }
    };
    let coll = collection::read(home, &record.from_collection);
    let source = match coll.lookup(&record.artifact_name, &record.artifact_type) {
        Lookup::Found(a) => a,
        Lookup::Absent => {
            return Err(OpError::NotFound(format!(
                "{} {:?} in collection {:?}",
                record.artifact_type, record.artifact_name, record.from_collection
            )));
        }
        Lookup::Unknown(why) => {
            return Err(OpError::Precondition(format!(
                "collection {:?} cannot be read: {why}",
                record.from_collection
            )));
        }
    };
    Ok(Deployed {
        collection_rel: source.path.clone(),
        collection_dir: coll.dir.clone(),
        project,
        root,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_match_by_name_path_or_type() {
        let p = Path::new("skills/canvas");
        assert!(names("canvas", "canvas", "skill", p));
        assert!(names("skills/canvas/", "canvas", "skill", p));
        assert!(names("skill/canvas", "canvas", "skill", p));
        assert!(names(
            "review",
            "review.md",
            "command",
            Path::new("commands/review.md")
        ));
        assert!(!names("canvas2", "canvas", "skill", p));
    }
}

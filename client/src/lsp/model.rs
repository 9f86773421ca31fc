//! What the language server knows about drift: every artifact the daemon reported, and
//! which of them an open file belongs to.
//!
//! Plain data and plain functions, no I/O: the daemon link ([`super::link`]) replaces
//! parts of the [`Model`] as answers arrive, the backend asks it which artifacts a path
//! belongs to. A path belongs to a deployment when it is the deployed copy (or inside it,
//! for a folder artifact such as a skill), to a collection artifact when it is the
//! collection copy (or inside it), and a profile root's `.skillmeat-deployed.toml` lists
//! the deployments of that root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use skillmeatd_proto::{DriftKind, pb};

/// The deployment file's name inside a profile root.
pub const DEPLOYMENT_FILE: &str = ".skillmeat-deployed.toml";

/// Which copy of an artifact a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The deployed copy in a project's profile root.
    Project,
    /// The copy in the collection.
    Collection,
}

/// One artifact a file belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub artifact: pb::ArtifactDrift,
    pub side: Side,
    /// The file's path inside the artifact, `/`-separated; empty for a single-file
    /// artifact (a command, an agent) or the artifact's folder itself.
    pub inner: String,
}

impl Hit {
    /// Whether this artifact has drifted in a way the editor reports.
    pub fn drifted(&self) -> bool {
        drifted(&self.artifact)
    }
}

/// The drift kind of a report; `None` for a number this build does not know.
pub fn kind(a: &pb::ArtifactDrift) -> Option<DriftKind> {
    DriftKind::from_wire(a.drift_type)
}

/// Whether `a` is a deployment that is not in sync (`added` is a collection artifact not
/// deployed to that project: nothing to report on any file).
pub fn drifted(a: &pb::ArtifactDrift) -> bool {
    kind(a).is_some_and(|k| k.is_drift() && k != DriftKind::Added)
}

/// The deployed copy of `a`: `<project>/<profile root>/<artifact_path>`; `None` for a
/// collection artifact not deployed to the project (`added`).
pub fn project_copy(a: &pb::ArtifactDrift) -> Option<PathBuf> {
    (!a.profile_root.is_empty()).then(|| {
        Path::new(&a.project)
            .join(&a.profile_root)
            .join(&a.artifact_path)
    })
}

/// The collection copy of `a`, when the artifact is in its collection.
pub fn collection_copy(a: &pb::ArtifactDrift) -> Option<PathBuf> {
    (!a.collection_path.is_empty()).then(|| PathBuf::from(&a.collection_path))
}

/// The deployment file of the profile root `a` is deployed in.
pub fn deployment_file(a: &pb::ArtifactDrift) -> Option<PathBuf> {
    (!a.profile_root.is_empty()).then(|| {
        Path::new(&a.project)
            .join(&a.profile_root)
            .join(DEPLOYMENT_FILE)
    })
}

/// `path` relative to `copy` when it is `copy` itself or inside it.
fn inside(path: &Path, copy: &Path) -> Option<String> {
    let rest = path.strip_prefix(copy).ok()?;
    Some(
        rest.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Every artifact the daemon reported, by project.
#[derive(Debug, Clone, Default)]
pub struct Model {
    by_project: HashMap<String, Vec<pb::ArtifactDrift>>,
}

impl Model {
    /// Replaces everything with `artifacts` (a first load, or a resync).
    pub fn replace_all(&mut self, artifacts: Vec<pb::ArtifactDrift>) {
        self.by_project.clear();
        for a in artifacts {
            self.by_project
                .entry(a.project.clone())
                .or_default()
                .push(a);
        }
    }

    /// Replaces one project's artifacts (an empty list forgets the project).
    pub fn replace_project(&mut self, project: &str, artifacts: Vec<pb::ArtifactDrift>) {
        if artifacts.is_empty() {
            self.by_project.remove(project);
        } else {
            self.by_project.insert(project.to_string(), artifacts);
        }
    }

    /// Forgets everything (the daemon went away: nothing may stay stale).
    pub fn clear(&mut self) {
        self.by_project.clear();
    }

    fn all(&self) -> impl Iterator<Item = &pb::ArtifactDrift> {
        self.by_project.values().flatten()
    }

    /// The artifacts `path` belongs to, as a deployed copy or as a collection copy. Each
    /// of `paths` is tried (the path as the editor named it and its canonical form).
    pub fn hits(&self, paths: &[&Path]) -> Vec<Hit> {
        let mut out: Vec<Hit> = Vec::new();
        for a in self.all() {
            let sides = [
                (Side::Project, project_copy(a)),
                (Side::Collection, collection_copy(a)),
            ];
            for (side, copy) in sides {
                let Some(copy) = copy else { continue };
                // An undeployed (`added`) report names the collection copy only.
                if let Some(inner) = paths.iter().find_map(|p| inside(p, &copy)) {
                    let hit = Hit {
                        artifact: a.clone(),
                        side,
                        inner,
                    };
                    if !out.contains(&hit) {
                        out.push(hit);
                    }
                }
            }
        }
        out.sort_by(|x, y| {
            (
                &x.artifact.project,
                &x.artifact.profile_root,
                &x.artifact.name,
            )
                .cmp(&(
                    &y.artifact.project,
                    &y.artifact.profile_root,
                    &y.artifact.name,
                ))
        });
        out
    }

    /// The deployments listed in the deployment file `path` (any of `paths`), or `None`
    /// when it is not the deployment file of a known project's profile root.
    pub fn records(&self, paths: &[&Path]) -> Option<Vec<pb::ArtifactDrift>> {
        let mut out: Vec<pb::ArtifactDrift> = self
            .all()
            .filter(|a| deployment_file(a).is_some_and(|f| paths.contains(&f.as_path())))
            .cloned()
            .collect();
        if out.is_empty() {
            return None;
        }
        out.sort_by(|x, y| x.artifact_path.cmp(&y.artifact_path));
        Some(out)
    }

    /// The deployments of `artifact_path` in `project`: in profile root `root`, or in any.
    pub fn deployments(
        &self,
        project: &str,
        root: Option<&str>,
        artifact_path: &str,
    ) -> Vec<pb::ArtifactDrift> {
        self.by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter(|a| !a.profile_root.is_empty() && a.artifact_path == artifact_path)
            .filter(|a| root.is_none_or(|r| r == a.profile_root))
            .cloned()
            .collect()
    }

    /// Drifted deployments: in every project, and in the projects under one of `roots`
    /// (every project when no known project is under them, e.g. an editor opened on a
    /// collection).
    pub fn drift_counts(&self, roots: &[PathBuf]) -> (usize, usize) {
        let under =
            |a: &pb::ArtifactDrift| roots.iter().any(|r| Path::new(&a.project).starts_with(r));
        let scoped = self.by_project.values().flatten().any(under);
        let mut all = 0;
        let mut local = 0;
        for a in self.all().filter(|a| drifted(a)) {
            all += 1;
            if !scoped || under(a) {
                local += 1;
            }
        }
        (all, local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn report(
        project: &str,
        root: &str,
        name: &str,
        path: &str,
        kind: pb::DriftType,
    ) -> pb::ArtifactDrift {
        pb::ArtifactDrift {
            project: project.into(),
            profile_root: root.into(),
            name: name.into(),
            artifact_type: "skill".into(),
            drift_type: kind as i32,
            artifact_path: path.into(),
            collection: "default".into(),
            collection_path: format!("/home/u/.skillmeat/collections/default/{path}"),
            recommendation: "push_to_collection".into(),
            ..Default::default()
        }
    }

    fn model() -> Model {
        let mut m = Model::default();
        m.replace_all(vec![
            report(
                "/p",
                ".claude",
                "review",
                "skills/review",
                pb::DriftType::Modified,
            ),
            report(
                "/p",
                ".codex",
                "review",
                "skills/review",
                pb::DriftType::InSync,
            ),
            report(
                "/q",
                ".claude",
                "review",
                "skills/review",
                pb::DriftType::Outdated,
            ),
            report("/q", "", "lint", "commands/lint.md", pb::DriftType::Added),
        ]);
        m
    }

    #[test]
    fn a_file_inside_a_deployed_skill_is_a_hit_on_the_project_side() {
        let m = model();
        let hits = m.hits(&[Path::new("/p/.claude/skills/review/SKILL.md")]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].side, Side::Project);
        assert_eq!(hits[0].inner, "SKILL.md");
        assert!(hits[0].drifted());
        let nested = m.hits(&[Path::new("/p/.codex/skills/review/refs/a.md")]);
        assert_eq!(nested[0].inner, "refs/a.md");
        assert!(!nested[0].drifted());
    }

    #[test]
    fn a_collection_file_hits_every_deployment_of_it() {
        let m = model();
        let c = "/home/u/.skillmeat/collections/default/skills/review/SKILL.md";
        let hits = m.hits(&[Path::new(c)]);
        assert_eq!(hits.len(), 3);
        assert!(hits.iter().all(|h| h.side == Side::Collection));
        let undeployed = m.hits(&[Path::new(
            "/home/u/.skillmeat/collections/default/commands/lint.md",
        )]);
        assert_eq!(undeployed.len(), 1);
        assert!(!undeployed[0].drifted());
    }

    #[test]
    fn files_outside_artifacts_and_lookalike_names_are_no_hits() {
        let m = model();
        for p in [
            "/p/README.md",
            "/p/.claude/skills/review-old/SKILL.md",
            "/p/.claude/skills",
            "/elsewhere/skills/review/SKILL.md",
        ] {
            assert!(m.hits(&[Path::new(p)]).is_empty(), "{p}");
        }
    }

    #[test]
    fn the_deployment_file_lists_its_roots_records() {
        let m = model();
        let recs = m
            .records(&[Path::new("/p/.claude/.skillmeat-deployed.toml")])
            .unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].profile_root, ".claude");
        assert!(
            m.records(&[Path::new("/r/.claude/.skillmeat-deployed.toml")])
                .is_none()
        );
    }

    #[test]
    fn replacing_a_project_and_counting() {
        let mut m = model();
        assert_eq!(m.drift_counts(&[]), (2, 2));
        assert_eq!(m.drift_counts(&[PathBuf::from("/q")]), (2, 1));
        assert_eq!(m.drift_counts(&[PathBuf::from("/elsewhere")]), (2, 2));
        m.replace_project("/p", vec![]);
        assert_eq!(m.drift_counts(&[]), (1, 1));
        m.clear();
        assert_eq!(m.drift_counts(&[]), (0, 0));
    }
}

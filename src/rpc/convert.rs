//! Domain → protocol conversions for drift, events, problems and projects: the engine's
//! and journal's types become `pb` messages here and nowhere else. (History and
//! write-back messages are converted beside their handlers, in `history` and `ops`.)

use std::path::Path;

use crate::drift::DriftKind;
use crate::formats::Problem;
use crate::live::State;
use crate::model::ArtifactReport;
use crate::model::{ChangedSide, Event, EventKind};
use crate::projects::{KnownProject, Source};

use super::pb;

pub(super) fn problem(p: Problem) -> pb::Problem {
    pb::Problem {
        path: p.path.display().to_string(),
        message: p.message,
        project: p
            .project
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    }
}

/// The protocol form of a report; `collections` is SkillMeat's collections folder.
pub(super) fn artifact(a: ArtifactReport, collections: &Path) -> pb::ArtifactDrift {
    let collection_path = a
        .collection_path
        .as_ref()
        .map(|rel| {
            collections
                .join(&a.collection)
                .join(rel)
                .display()
                .to_string()
        })
        .unwrap_or_default();
    pb::ArtifactDrift {
        project: a.project.display().to_string(),
        profile_root: a.profile_root.into(),
        name: a.name.into(),
        artifact_type: a.artifact_type.into(),
        drift_type: pb::DriftType::from(a.kind).into(),
        deployed_sha: a.deployed_sha.map(|h| h.to_string()),
        collection_sha: a.collection_sha.map(|h| h.to_string()),
        project_sha: a.project_sha.map(|h| h.to_string()),
        collection_version: a.collection_version.map(Into::into),
        project_version: a.project_version.map(Into::into),
        last_deployed: a.last_deployed.map(Into::into),
        recommendation: a.recommendation.to_string(),
        collection: a.collection.into(),
        artifact_path: a.artifact_path.display().to_string(),
        error: a.error.map(Into::into).unwrap_or_default(),
        change_origin: a.change_origin.to_string(),
        collection_path,
    }
}

fn event_kind(k: EventKind) -> pb::EventKind {
    match k {
        EventKind::DriftChanged => pb::EventKind::DriftChanged,
        EventKind::HashChanged => pb::EventKind::HashChanged,
        EventKind::DeploymentAdded => pb::EventKind::DeploymentAdded,
        EventKind::DeploymentRemoved => pb::EventKind::DeploymentRemoved,
        EventKind::Unreadable => pb::EventKind::Unreadable,
        EventKind::InvalidFile => pb::EventKind::InvalidFile,
        EventKind::RootPolling => pb::EventKind::RootPolling,
    }
}

fn changed_side(c: ChangedSide) -> pb::ChangedSide {
    match c {
        ChangedSide::None => pb::ChangedSide::None,
        ChangedSide::Collection => pb::ChangedSide::Collection,
        ChangedSide::Project => pb::ChangedSide::Project,
        ChangedSide::Both => pb::ChangedSide::Both,
        ChangedSide::Record => pb::ChangedSide::Record,
    }
}

pub(super) fn event(e: &Event) -> pb::DriftEvent {
    let drift = |k: Option<DriftKind>| k.map_or(pb::DriftType::Unspecified.into(), i32::from);
    pb::DriftEvent {
        cursor: e.cursor,
        time_unix_ms: e.time_ms,
        kind: event_kind(e.kind).into(),
        project: e.project.clone(),
        profile_root: e.profile_root.clone(),
        name: e.name.clone(),
        artifact_type: e.artifact_type.clone(),
        old_drift: drift(e.old_drift),
        new_drift: drift(e.new_drift),
        deployed_sha: e.deployed_sha.clone(),
        collection_sha: e.collection_sha.clone(),
        project_sha: e.project_sha.clone(),
        recommendation: e.recommendation.clone(),
        changed_side: changed_side(e.changed).into(),
        message: e.message.clone(),
        operation: e.operation.clone(),
    }
}

fn source(s: Source) -> pb::ProjectSource {
    match s {
        Source::Manual => pb::ProjectSource::Manual,
        Source::Registry => pb::ProjectSource::Registry,
        Source::Scan => pb::ProjectSource::Scan,
    }
}

/// One known project with its drift summary. Its profile roots are left empty: they are
/// read from disk, outside the state's lock ([`read_roots`]).
pub(super) fn project(s: &State, k: &KnownProject) -> pb::ProjectInfo {
    let mut summary = pb::DriftSummary::default();
    let mut deployments = 0;
    for r in s.reports_of(Some(&k.path)) {
        if r.kind != DriftKind::Added {
            deployments += 1;
        }
        *summary.count_mut(r.kind) += 1;
    }
    pb::ProjectInfo {
        path: k.path.display().to_string(),
        sources: k.sources.iter().map(|&x| source(x).into()).collect(),
        missing: k.missing,
        profile_roots: Vec::new(),
        deployments,
        drift: Some(summary),
        ignored: k.ignored,
    }
}

/// Every known project with its drift summary (profile roots left for [`read_roots`]),
/// and the problems met finding them.
pub(super) fn projects(s: &State) -> (Vec<pb::ProjectInfo>, Vec<pb::Problem>) {
    let projects = s.projects.iter().map(|k| project(s, k)).collect();
    (projects, s.problems.iter().cloned().map(problem).collect())
}

/// Fills in the profile roots of each present, not ignored project: reads its folder.
pub(super) fn read_roots(projects: &mut [pb::ProjectInfo]) {
    for p in projects.iter_mut().filter(|p| !p.missing && !p.ignored) {
        p.profile_roots = crate::formats::deployment::profile_roots(Path::new(&p.path));
    }
}

/// The store's health.
pub fn store_health(h: &crate::store::Health) -> pb::StoreHealth {
    pb::StoreHealth {
        condition: h.condition.name().to_string(),
        detail: h.detail.clone(),
        path: h.dir.display().to_string(),
        moved: h
            .moved
            .iter()
            .map(|m| pb::MovedStore {
                path: m.path.display().to_string(),
                reason: m.reason.clone(),
                time_ms: m.time_ms,
                salvaged: m.salvaged.clone(),
                unsaved: m.unsaved.clone(),
            })
            .collect(),
        damaged_blobs: h.bad_blobs.clone(),
    }
}

//! Drift events: what changed between two drift states, as journal entries.
//!
//! [`diff`] is a pure function from the previous and the new state of some artifacts to
//! the events a subscriber needs: an event only when something changed — a drift type, a
//! collection / project / record hash, a deployment appearing or disappearing, a side
//! becoming unreadable. [`problem_events`] does the same for files that became invalid.
//! The live loop assigns cursors, appends the events to the store's journal (durable
//! before anyone hears of them) and broadcasts them.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use crate::drift::DriftKind;
use crate::formats::Problem;
use crate::model::{ArtifactReport, ChangedSide, Event, EventKind};

fn changed_side(old: &ArtifactReport, new: &ArtifactReport) -> ChangedSide {
    if old.deployed_sha != new.deployed_sha {
        return ChangedSide::Record;
    }
    match (
        old.collection_sha != new.collection_sha,
        old.project_sha != new.project_sha,
    ) {
        (true, true) => ChangedSide::Both,
        (true, false) => ChangedSide::Collection,
        (false, true) => ChangedSide::Project,
        (false, false) => ChangedSide::None,
    }
}

fn from_report(
    kind: EventKind,
    r: &ArtifactReport,
    operation_of: impl Fn(&ArtifactReport) -> Option<u64>,
) -> Event {
    Event {
        project: r.project.display().to_string(),
        profile_root: r.profile_root.to_string(),
        name: r.name.to_string(),
        artifact_type: r.artifact_type.to_string(),
        deployed_sha: r.deployed_sha.as_ref().map(ToString::to_string),
        collection_sha: r.collection_sha.as_ref().map(ToString::to_string),
        project_sha: r.project_sha.as_ref().map(ToString::to_string),
        recommendation: r.recommendation.to_string(),
        message: r.error.as_deref().unwrap_or_default().to_string(),
        operation: operation_of(r).map(|id| id.to_string()).unwrap_or_default(),
        ..Event::blank(kind)
    }
}

/// Events turning `old` into `new` (both keyed by [`ArtifactReport::key`]), in key order.
/// Only keys present in `scope` are compared; `None` compares every key of both. Each
/// event names the operation `operation_of` says wrote its artifact (given the new report,
/// or the old one of a removed deployment).
/// The maps hold reports or references to them.
pub fn diff<K, V>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    scope: Option<&BTreeSet<String>>,
    operation_of: impl Fn(&ArtifactReport) -> Option<u64>,
) -> Vec<Event>
where
    K: Borrow<String> + Ord,
    V: Borrow<ArtifactReport>,
{
    let keys: BTreeSet<&String> = match scope {
        Some(s) => s.iter().collect(),
        None => old.keys().chain(new.keys()).map(Borrow::borrow).collect(),
    };
    let mut events = Vec::new();
    for k in keys {
        match (
            old.get(k).map(Borrow::borrow),
            new.get(k).map(Borrow::borrow),
        ) {
            (None, None) => {}
            (None, Some(n)) => {
                let mut e = from_report(EventKind::DeploymentAdded, n, &operation_of);
                e.new_drift = Some(n.kind);
                events.push(e);
            }
            (Some(o), None) => {
                let mut e = from_report(EventKind::DeploymentRemoved, o, &operation_of);
                e.old_drift = Some(o.kind);
                events.push(e);
            }
            (Some(o), Some(n)) => {
                let side = changed_side(o, n);
                let kind = if o.kind != n.kind {
                    if n.kind == DriftKind::Error {
                        EventKind::Unreadable
                    } else {
                        EventKind::DriftChanged
                    }
                } else if side != ChangedSide::None || o.error != n.error {
                    EventKind::HashChanged
                } else {
                    continue;
                };
                let mut e = from_report(kind, n, &operation_of);
                e.old_drift = Some(o.kind);
                e.new_drift = Some(n.kind);
                e.changed = side;
                events.push(e);
            }
        }
    }
    events
}

/// Events for problems in `new` that were not in `old`.
pub fn problem_events(old: &[Problem], new: &[Problem]) -> Vec<Event> {
    new.iter()
        .filter(|p| !old.contains(p))
        .map(|p| Event {
            project: p
                .project
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            message: format!("{}: {}", p.path.display(), p.message),
            ..Event::blank(EventKind::InvalidFile)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn report(kind: DriftKind, c: &str, p: &str) -> ArtifactReport {
        ArtifactReport {
            project: PathBuf::from("/p"),
            profile_root: ".claude".into(),
            name: "a".into(),
            artifact_type: "skill".into(),
            kind,
            recommendation: "none".into(),
            change_origin: "sync".into(),
            deployed_sha: Some("d".into()),
            collection_sha: Some(c.into()),
            project_sha: Some(p.into()),
            collection_version: None,
            project_version: None,
            last_deployed: None,
            collection: "default".into(),
            artifact_path: PathBuf::from("skills/a"),
            collection_path: Some(PathBuf::from("skills/a")),
            error: None,
        }
    }

    fn map(r: ArtifactReport) -> BTreeMap<String, ArtifactReport> {
        BTreeMap::from([(r.key(), r)])
    }

    #[test]
    fn only_changes_make_events() {
        let a = map(report(DriftKind::InSync, "d", "d"));
        assert!(diff(&a, &a, None, |_| None).is_empty());
        let b = map(report(DriftKind::Modified, "d", "p"));
        let e = diff(&a, &b, None, |_| None);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, EventKind::DriftChanged);
        assert_eq!(
            (e[0].old_drift, e[0].new_drift),
            (Some(DriftKind::InSync), Some(DriftKind::Modified))
        );
        assert_eq!(e[0].changed, ChangedSide::Project);
        assert_eq!(e[0].operation, "");
        let attributed = diff(&a, &b, None, |r| (r.name == "a").then_some(7));
        assert_eq!(attributed[0].operation, "7");
        let c = map(report(DriftKind::Modified, "d", "p2"));
        let e = diff(&b, &c, None, |_| None);
        assert_eq!(
            (e[0].kind, e[0].changed),
            (EventKind::HashChanged, ChangedSide::Project)
        );
    }

    #[test]
    fn appearing_and_vanishing() {
        let a = map(report(DriftKind::InSync, "d", "d"));
        let none = BTreeMap::new();
        assert_eq!(
            diff(&none, &a, None, |_| None)[0].kind,
            EventKind::DeploymentAdded
        );
        assert_eq!(
            diff(&a, &none, None, |_| None)[0].kind,
            EventKind::DeploymentRemoved
        );
        // Out of scope keys are not compared.
        assert!(diff(&a, &none, Some(&BTreeSet::new()), |_| None).is_empty());
    }

    #[test]
    fn new_problems_only() {
        let p1 = Problem::new(std::path::Path::new("/x"), "bad");
        let p2 = Problem::new(std::path::Path::new("/y"), "worse");
        let e = problem_events(std::slice::from_ref(&p1), &[p1.clone(), p2]);
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("/y: worse"));
    }
}

//! Drift classification: SkillMeat's rules (formats doc §4.2) as one pure function.
//!
//! Given the deployment record's hash D, what the collection side holds and what the
//! project side holds, [`classify`] returns the drift type, SkillMeat's recommendation and
//! change origin. The kinds themselves, with their strings, are defined once in the wire
//! crate ([`DriftKind`]). Where SkillMeat is wrong we are right, on purpose:
//! - a deployed copy deleted from the project is [`DriftKind::Missing`] (SkillMeat falls back
//!   to D and calls it unchanged);
//! - both sides changed *to the same content* is in sync (SkillMeat says `conflict`);
//! - a side that cannot be read is [`DriftKind::Error`], never a guess — even when the other
//!   side is absent: `removed` and `added` advise writes, and are given only on sound input.
//!
//! Called by the engine for every deployment it reports on.

pub use skillmeatd_proto::drift::DriftKind;

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// The side's content hash.
    Hash(String),
    /// The collection has no such artifact, or the project copy is gone.
    Absent,
    /// The side exists but could not be hashed.
    Unreadable(String),
}

/// The verdict for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: DriftKind,
    /// SkillMeat's recommendation string.
    pub recommendation: &'static str,
    /// SkillMeat's `change_origin`.
    pub change_origin: &'static str,
}

impl Verdict {
    fn new(kind: DriftKind) -> Verdict {
        Verdict {
            kind,
            recommendation: kind.recommendation(),
            change_origin: kind.change_origin(),
        }
    }
}

/// Classifies a deployed artifact from its record hash `deployed` (D), the collection side
/// (C) and the project side (P).
pub fn classify(deployed: &str, collection: &Side, project: &Side) -> Verdict {
    let kind = match (collection, project) {
        (Side::Unreadable(_), _) | (_, Side::Unreadable(_)) => DriftKind::Error,
        (Side::Absent, _) => DriftKind::Removed,
        (Side::Hash(_), Side::Absent) => DriftKind::Missing,
        (Side::Hash(c), Side::Hash(p)) => match (c == deployed, p == deployed) {
            (true, true) => DriftKind::InSync,
            (false, true) => DriftKind::Outdated,
            (true, false) => DriftKind::Modified,
            (false, false) if c == p => DriftKind::InSync,
            (false, false) => DriftKind::Conflict,
        },
    };
    Verdict::new(kind)
}

/// The verdict for a collection artifact not deployed to a project.
pub fn added() -> Verdict {
    Verdict::new(DriftKind::Added)
}

/// The verdict for a deployment whose record (or whose collection) cannot be read, and for
/// a collection artifact of which it cannot be told whether it is deployed.
pub fn unreadable() -> Verdict {
    Verdict::new(DriftKind::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Side {
        Side::Hash(s.into())
    }

    #[test]
    fn skillmeat_table() {
        let cases = [
            (h("d"), h("d"), DriftKind::InSync, "none"),
            (h("c"), h("d"), DriftKind::Outdated, "pull_from_collection"),
            (h("d"), h("p"), DriftKind::Modified, "push_to_collection"),
            (h("c"), h("p"), DriftKind::Conflict, "review_manually"),
            (
                Side::Absent,
                h("d"),
                DriftKind::Removed,
                "remove_from_project",
            ),
            (
                Side::Absent,
                Side::Absent,
                DriftKind::Removed,
                "remove_from_project",
            ),
        ];
        for (c, p, kind, rec) in cases {
            let v = classify("d", &c, &p);
            assert_eq!((v.kind, v.recommendation), (kind, rec), "C={c:?} P={p:?}");
        }
    }

    #[test]
    fn where_we_differ_from_skillmeat() {
        assert_eq!(
            classify("d", &h("d"), &Side::Absent).kind,
            DriftKind::Missing
        );
        assert_eq!(classify("d", &h("x"), &h("x")).kind, DriftKind::InSync);
        assert_eq!(
            classify("d", &h("d"), &Side::Unreadable("denied".into())).kind,
            DriftKind::Error
        );
        // Never `removed` (advice: delete the copy) when a side cannot be read.
        assert_eq!(
            classify("d", &Side::Unreadable("bad manifest".into()), &h("p")).kind,
            DriftKind::Error
        );
        assert_eq!(
            classify("d", &Side::Absent, &Side::Unreadable("loop".into())).kind,
            DriftKind::Error
        );
    }

    #[test]
    fn change_origins_match_skillmeat() {
        assert_eq!(
            classify("d", &h("d"), &h("p")).change_origin,
            "local_modification"
        );
        assert_eq!(classify("d", &h("c"), &h("d")).change_origin, "sync");
        assert_eq!(added().recommendation, "deploy_to_project");
    }
}

//! The drift kinds, defined once for the daemon, its RPC layer, `smctl` and any other
//! client: the enum, its string forms (SkillMeat's `drift_type` strings, which are also the
//! daemon's stored form), SkillMeat's recommendation and change origin for each kind, and
//! the mapping to and from the protocol's `DriftType`.
//!
//! The rules that decide which kind an artifact has live in the daemon (`drift::classify`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::pb;

/// The drift of one deployed (or deployable) artifact.
///
/// Its serde form is [`DriftKind::as_str`]; the daemon's journal stores it that way, so a
/// variant may be added but never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Collection, project and record agree.
    InSync,
    /// The project copy changed since it was deployed.
    Modified,
    /// The collection changed since the copy was deployed.
    Outdated,
    /// Both changed, to different contents.
    Conflict,
    /// The collection no longer has the artifact.
    Removed,
    /// In the collection, never deployed to the project.
    Added,
    /// The deployed copy was deleted from the project.
    Missing,
    /// A side could not be read.
    Error,
}

impl DriftKind {
    /// Every kind, in declaration order (the order of `DriftSummary`'s fields).
    pub const ALL: [DriftKind; 8] = [
        DriftKind::InSync,
        DriftKind::Modified,
        DriftKind::Outdated,
        DriftKind::Conflict,
        DriftKind::Removed,
        DriftKind::Added,
        DriftKind::Missing,
        DriftKind::Error,
    ];

    /// The `drift_type` string SkillMeat's `sync-check` prints (ours for the extra kinds).
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::InSync => "in_sync",
            DriftKind::Modified => "modified",
            DriftKind::Outdated => "outdated",
            DriftKind::Conflict => "conflict",
            DriftKind::Removed => "removed",
            DriftKind::Added => "added",
            DriftKind::Missing => "missing",
            DriftKind::Error => "error",
        }
    }

    /// Whether this counts as drift (`sync-check`'s `drift_detected`).
    pub fn is_drift(self) -> bool {
        self != DriftKind::InSync
    }

    /// SkillMeat's `recommendation` for this kind.
    pub fn recommendation(self) -> &'static str {
        match self {
            DriftKind::InSync => "none",
            DriftKind::Modified => "push_to_collection",
            DriftKind::Outdated => "pull_from_collection",
            DriftKind::Conflict | DriftKind::Error => "review_manually",
            DriftKind::Removed => "remove_from_project",
            DriftKind::Added | DriftKind::Missing => "deploy_to_project",
        }
    }

    /// SkillMeat's `change_origin` for this kind.
    pub fn change_origin(self) -> &'static str {
        match self {
            DriftKind::InSync => "deployment",
            DriftKind::Modified | DriftKind::Conflict | DriftKind::Missing => "local_modification",
            DriftKind::Outdated | DriftKind::Removed | DriftKind::Added | DriftKind::Error => {
                "sync"
            }
        }
    }

    /// The kind a protocol `DriftType` number stands for: `None` for
    /// `DRIFT_TYPE_UNSPECIFIED` and for numbers this build does not know.
    pub fn from_wire(value: i32) -> Option<DriftKind> {
        DriftKind::ALL
            .into_iter()
            .find(|&k| i32::from(pb::DriftType::from(k)) == value)
    }
}

impl From<DriftKind> for pb::DriftType {
    fn from(k: DriftKind) -> pb::DriftType {
        match k {
            DriftKind::InSync => pb::DriftType::InSync,
            DriftKind::Modified => pb::DriftType::Modified,
            DriftKind::Outdated => pb::DriftType::Outdated,
            DriftKind::Conflict => pb::DriftType::Conflict,
            DriftKind::Removed => pb::DriftType::Removed,
            DriftKind::Added => pb::DriftType::Added,
            DriftKind::Missing => pb::DriftType::Missing,
            DriftKind::Error => pb::DriftType::Error,
        }
    }
}

impl From<DriftKind> for i32 {
    fn from(k: DriftKind) -> i32 {
        pb::DriftType::from(k).into()
    }
}

impl fmt::Display for DriftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of [`DriftKind::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownDriftKind(pub String);

impl fmt::Display for UnknownDriftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = DriftKind::ALL.iter().map(|k| k.as_str()).collect();
        write!(
            f,
            "unknown drift kind {:?} (one of {})",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownDriftKind {}

impl FromStr for DriftKind {
    type Err = UnknownDriftKind;

    fn from_str(s: &str) -> Result<DriftKind, UnknownDriftKind> {
        DriftKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownDriftKind(s.to_string()))
    }
}

impl pb::DriftSummary {
    /// How many artifacts of kind `k` the summary counts.
    pub fn count(&self, k: DriftKind) -> u32 {
        let mut copy = *self;
        *copy.count_mut(k)
    }

    /// The counter of kind `k`.
    pub fn count_mut(&mut self, k: DriftKind) -> &mut u32 {
        match k {
            DriftKind::InSync => &mut self.in_sync,
            DriftKind::Modified => &mut self.modified,
            DriftKind::Outdated => &mut self.outdated,
            DriftKind::Conflict => &mut self.conflict,
            DriftKind::Removed => &mut self.removed,
            DriftKind::Added => &mut self.added,
            DriftKind::Missing => &mut self.missing,
            DriftKind::Error => &mut self.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_match_serde() {
        for k in DriftKind::ALL {
            assert_eq!(k.as_str().parse::<DriftKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<DriftKind>(&json).unwrap(), k);
        }
        let err = "in-sync".parse::<DriftKind>().unwrap_err().to_string();
        assert!(err.contains("in_sync, modified"), "{err}");
    }

    #[test]
    fn wire_numbers_round_trip() {
        for k in DriftKind::ALL {
            assert_eq!(DriftKind::from_wire(i32::from(k)), Some(k));
        }
        assert_eq!(
            DriftKind::from_wire(pb::DriftType::Unspecified.into()),
            None
        );
        assert_eq!(DriftKind::from_wire(99), None);
        // Every protocol value but UNSPECIFIED has a kind.
        let named = (0..=99)
            .filter(|&n| pb::DriftType::try_from(n).is_ok())
            .count();
        assert_eq!(named, DriftKind::ALL.len() + 1);
    }

    #[test]
    fn summary_counts_each_kind_in_its_own_field() {
        let mut s = pb::DriftSummary::default();
        for (i, k) in DriftKind::ALL.into_iter().enumerate() {
            *s.count_mut(k) += i as u32 + 1;
        }
        for (i, k) in DriftKind::ALL.into_iter().enumerate() {
            assert_eq!(s.count(k), i as u32 + 1, "{k}");
        }
    }

    #[test]
    fn skillmeat_recommendations() {
        assert_eq!(DriftKind::Outdated.recommendation(), "pull_from_collection");
        assert_eq!(DriftKind::Modified.recommendation(), "push_to_collection");
        assert_eq!(DriftKind::Missing.recommendation(), "deploy_to_project");
        assert_eq!(DriftKind::Modified.change_origin(), "local_modification");
        assert_eq!(DriftKind::Outdated.change_origin(), "sync");
    }
}

//! A [`Snapshot`]: a named, timestamped set of versions covering a collection or a project,
//! and its id, printed `s<N>`. Taken by [`crate::history`], persisted by [`crate::store`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Origin, SnapshotTarget, VersionId};

/// Id of a snapshot, printed `s<N>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotId(pub u64);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl FromStr for SnapshotId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('s')
            .and_then(|n| n.parse().ok())
            .map(SnapshotId)
            .ok_or(())
    }
}

/// A set of versions covering a collection or a project at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub target: SnapshotTarget,
    pub time_ms: i64,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub members: Vec<VersionId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        assert_eq!(SnapshotId(3).to_string(), "s3");
        assert_eq!("s3".parse::<SnapshotId>(), Ok(SnapshotId(3)));
        assert!("x3".parse::<SnapshotId>().is_err());
    }
}

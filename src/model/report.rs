//! An artifact's drift as computed: an [`ArtifactReport`], and the form persisted between
//! runs ([`KnownDrift`]). Computed by [`crate::engine`], kept current by [`crate::live`],
//! compared by [`crate::journal`], persisted by [`crate::store`].

use std::path::PathBuf;

use compact_str::CompactString;

use crate::drift::DriftKind;
use crate::formats;

use super::{ContentHash, Location};

/// The drift of one artifact, with everything `smctl drift` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactReport {
    pub project: PathBuf,
    /// Profile root, e.g. `.claude`; empty for `added`.
    pub profile_root: CompactString,
    pub name: CompactString,
    pub artifact_type: CompactString,
    pub kind: DriftKind,
    pub recommendation: CompactString,
    pub change_origin: CompactString,
    pub deployed_sha: Option<ContentHash>,
    pub collection_sha: Option<ContentHash>,
    pub project_sha: Option<ContentHash>,
    pub collection_version: Option<CompactString>,
    pub project_version: Option<CompactString>,
    /// `deployed_at` with `Z` appended, as `sync-check` prints it.
    pub last_deployed: Option<CompactString>,
    pub collection: CompactString,
    pub artifact_path: PathBuf,
    /// Path of the collection copy, relative to the collection folder, when it exists.
    #[serde(default)]
    pub collection_path: Option<PathBuf>,
    pub error: Option<CompactString>,
}

impl ArtifactReport {
    /// Identity of the artifact across recomputations: project, profile root, type,
    /// normalized name and collection.
    pub fn key(&self) -> String {
        format!(
            "{}\0{}\0{}\0{}\0{}",
            self.project.display(),
            self.profile_root,
            self.artifact_type,
            formats::normalize_name(&self.name),
            self.collection
        )
    }

    /// Where the history of the project copy is kept.
    pub fn project_location(&self) -> Location {
        let rel = self.artifact_path.to_string_lossy();
        Location::project(&self.project, &self.profile_root, &rel)
    }

    /// Where the history of the collection copy is kept, when the copy exists.
    pub fn collection_location(&self) -> Option<Location> {
        let rel = self.collection_path.as_ref()?.to_string_lossy();
        Some(Location::collection(&self.collection, &rel))
    }
}

/// An artifact's last known drift, as persisted between runs.
pub type KnownDrift = ArtifactReport;

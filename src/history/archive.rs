//! Snapshots as files: export to `.tar.zst` (this daemon's layout) or `.tar.gz`
//! (SkillMeat's own snapshot layout), and import of both.
//!
//! The `.tar.zst` layout holds `snapshot.json` (target, time, origin, message, and each
//! artifact's location, SkillMeat hash and manifest) followed by `blobs/<sha256>` for
//! every distinct file; it is written deterministically, so exporting an imported
//! snapshot gives the same bytes. The `.tar.gz` layout is what `skillmeat snapshot`
//! writes: one folder named after the collection holding the whole collection.
//!
//! Import reads the whole archive into memory under [`crate::config::ImportLimits`] and checks every entry
//! before anything is written: absolute paths, `..`, links leading outside, device files,
//! unexpected entries, and sizes beyond the limits are refused with the reason.

mod export;
mod import;
mod reader;
#[cfg(test)]
mod tests;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{Entry, Location, Origin, SnapshotId, SnapshotTarget};

use super::HistoryError;

pub use reader::check_bytes;

pub(super) const FORMAT: &str = "skillmeatd-snapshot/1";
pub(super) const META: &str = "snapshot.json";

/// The two archive layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `.tar.zst`, this daemon's.
    Zstd,
    /// `.tar.gz`, SkillMeat's snapshot layout.
    SkillMeat,
}

impl Layout {
    /// The layout a file name asks for.
    ///
    /// # Errors
    /// Neither `.tar.zst` nor `.tar.gz`/`.tgz`.
    pub fn of(path: &Path) -> Result<Layout, HistoryError> {
        let name = path.to_string_lossy();
        if name.ends_with(".tar.zst") {
            Ok(Layout::Zstd)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Ok(Layout::SkillMeat)
        } else {
            Err(HistoryError::Invalid(format!(
                "{}: name the file .tar.zst, or .tar.gz for SkillMeat's layout",
                path.display()
            )))
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Meta {
    format: String,
    target: SnapshotTarget,
    time_ms: i64,
    origin: Origin,
    #[serde(default)]
    message: Option<String>,
    artifacts: Vec<MetaArtifact>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MetaArtifact {
    location: Location,
    content_hash: String,
    single_file: bool,
    entries: Vec<Entry>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub snapshots: Vec<SnapshotId>,
    /// Versions whose content was new.
    pub new_versions: u64,
    /// Archives skipped because they were imported before.
    pub skipped: u64,
}

//! The store's health as `smctl status` and `smctl doctor` show it: its condition now, and
//! the damaged copies moved aside by earlier repairs (kept beside the store, each with the
//! report of what was salvaged and what could not be); what each tree holds (the space
//! benchmark measures sled's amplification with it).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::frame::TreeId;
use super::{Store, unframe};

/// The prefix of a damaged copy's folder name, beside the store.
pub(super) const MOVED_PREFIX: &str = "store.damaged-";
/// The salvage report inside a damaged copy.
pub(super) const REPORT: &str = "salvage.json";

/// The store's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Reads and writes work.
    Ok,
    /// The disk is full: writes are refused; the store is reopened once space returns.
    Full,
    /// An I/O error: sled stays failed until the store is reopened (tried again and again).
    Failed,
    /// Damage was found; the repair is about to start.
    Damaged,
    /// The damaged store was moved aside; its contents are being salvaged into a new one.
    Repairing,
}

impl Condition {
    /// The word shown by `smctl status`.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Ok => "ok",
            Condition::Full => "full",
            Condition::Failed => "failed",
            Condition::Damaged => "damaged",
            Condition::Repairing => "repairing",
        }
    }

    /// One sentence for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Condition::Ok => "the store works",
            Condition::Full => "the disk holding the store is full",
            Condition::Failed => "the store failed with an I/O error and is being reopened",
            Condition::Damaged => "the store is damaged and about to be repaired",
            Condition::Repairing => "the store is being repaired (history is salvaged)",
        }
    }
}

/// A damaged store moved aside by a repair, and what its salvage found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// Where the damaged copy is kept.
    #[serde(skip)]
    pub path: PathBuf,
    /// Why it was moved aside.
    pub reason: String,
    /// When (ms since the epoch).
    pub time_ms: i64,
    /// What was salvaged, in one line.
    pub salvaged: String,
    /// What could not be saved, one line each.
    pub unsaved: Vec<String>,
}

/// The store's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub condition: Condition,
    /// What caused the condition (empty when ok).
    pub detail: String,
    /// The store's folder.
    pub dir: PathBuf,
    /// Damaged copies moved aside, oldest first.
    pub moved: Vec<Moved>,
    /// Blobs found damaged since the daemon started (hex ids): the versions that need them
    /// are unavailable; a later capture of the same content replaces them.
    pub bad_blobs: Vec<String>,
}

/// At most this many damaged blobs are remembered.
const BAD_BLOBS: usize = 1000;

/// What one sled tree holds ([`Store::space`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSpace {
    pub tree: String,
    pub records: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

impl Store {
    /// What each tree holds (keys and values, before sled's own overhead): measures the
    /// store's space amplification.
    ///
    /// # Errors
    /// sled failed.
    pub fn space(&self) -> Result<Vec<TreeSpace>, super::StoreError> {
        self.with(|h| {
            let mut out = Vec::new();
            for name in h.db.tree_names() {
                let mut t = TreeSpace {
                    tree: String::from_utf8_lossy(&name).into_owned(),
                    ..TreeSpace::default()
                };
                for kv in h.db.open_tree(&name)?.iter() {
                    let (k, v) = kv?;
                    t.records += 1;
                    t.key_bytes += k.len() as u64;
                    t.value_bytes += v.len() as u64;
                }
                out.push(t);
            }
            Ok(out)
        })
    }
    /// The store's health now.
    pub fn health(&self) -> Health {
        let (condition, detail) = self.condition();
        Health {
            condition,
            detail,
            dir: self.dir().to_path_buf(),
            moved: moved_beside(self.dir()),
            bad_blobs: self
                .shared
                .bad_blobs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }

    pub(super) fn note_bad_blob(&self, sha: &[u8; 32]) {
        let mut bad = self
            .shared
            .bad_blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if bad.len() < BAD_BLOBS {
            bad.insert(hex::encode(sha));
        }
    }

    pub(super) fn forget_bad_blob(&self, sha: &[u8; 32]) {
        self.shared
            .bad_blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hex::encode(sha));
    }
}

/// The damaged copies beside the store folder `dir`, oldest first.
pub fn moved_beside(dir: &Path) -> Vec<Moved> {
    let Some(parent) = dir.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<Moved> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(MOVED_PREFIX))
        .map(|e| {
            let path = e.path();
            let mut m: Moved = std::fs::read(path.join(REPORT))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_else(|| Moved {
                    reason: "a damaged store (no salvage report: the repair did not finish)".into(),
                    ..Moved::default()
                });
            m.path = path;
            m
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

impl Store {
    /// Reads every record and blob of the store and lists what is damaged (for
    /// `skillmeatd run --check-store`, which `smctl doctor` runs when no daemon does).
    pub fn check(&self) -> Vec<String> {
        let (condition, detail) = self.condition();
        if condition != Condition::Ok {
            return vec![format!("{}: {detail}", condition.describe())];
        }
        let mut problems = Vec::new();
        let checked = self.with(|h| {
            for id in [
                TreeId::Meta,
                TreeId::Projects,
                TreeId::History,
                TreeId::Operations,
            ] {
                for kv in h.tree(id).iter() {
                    let (k, v) = kv?;
                    if id == TreeId::Meta && k.as_ref() == super::SCHEMA_KEY {
                        continue;
                    }
                    // History index entries are empty and not framed (salvage rebuilds them).
                    if id == TreeId::History
                        && matches!(k.first(), Some(b'l' | b'h'))
                        && v.is_empty()
                    {
                        continue;
                    }
                    if let Err(e) = unframe(id, &k, &v) {
                        problems.push(format!("{}: {e}", id.name()));
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = checked {
            problems.push(e.to_string());
            return problems;
        }
        let history = match self.history() {
            Ok(h) => h,
            Err(e) => return vec![e.to_string()],
        };
        match history.blob_ids() {
            Ok(ids) => {
                for sha in ids {
                    if let Err(e) = history.blob(&sha) {
                        problems.push(e.to_string());
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
        problems
    }
}

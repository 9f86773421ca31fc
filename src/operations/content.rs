//! Artifact contents as operations handle them: read into memory, compared file by file,
//! merged and reported, and written whole through the [`Writer`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::formats::{collection, deployment};
use crate::hash::Variant;
use crate::history::content::{Content, FileContent};
use crate::merge::{self, ConflictKind, FileOutcome, Resolution, Side, Taken, Tree};
use crate::model::{Location, Scope};
use crate::writer::{DEFAULT_FILE_MODE, DirFiles, Writer};

use super::{Conflict, MergedFile, OpError};

/// The artifact's content, or None when it is not there.
pub(super) fn read_opt(path: &Path, variant: Variant) -> Result<Option<Content>, OpError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let c = Content::read(path, variant)?;
    Ok(Some(match variant {
        Variant::DeployedCopy => c.deployed_copy(),
        Variant::Legacy => c,
    }))
}

pub(super) fn tree_of(c: &Content) -> Tree {
    c.files
        .iter()
        .map(|f| (PathBuf::from(&f.path), f.bytes.clone()))
        .collect()
}

/// Paths (relative to the artifact) whose bytes differ between `a` and `b`.
pub(super) fn changed_paths(a: Option<&Content>, b: Option<&Content>) -> Vec<String> {
    let ta = a.map(tree_of).unwrap_or_default();
    let tb = b.map(tree_of).unwrap_or_default();
    let keys: BTreeSet<&PathBuf> = ta.keys().chain(tb.keys()).collect();
    keys.into_iter()
        .filter(|k| ta.get(*k) != tb.get(*k))
        .map(|k| k.to_string_lossy().into_owned())
        .collect()
}

/// `rel` inside the artifact at display path `artifact` (`.claude/skills/x/SKILL.md`).
pub(super) fn file_label(artifact: &str, rel: &str) -> String {
    if rel.is_empty() {
        artifact.to_string()
    } else {
        format!("{artifact}/{rel}")
    }
}

/// A tree merge as reported: its conflicts, the files of the result that differ from the
/// local side, and the files merged or taken from one side.
pub(super) struct MergeReport {
    pub(super) conflicts: Vec<Conflict>,
    pub(super) merged: Vec<MergedFile>,
    pub(super) changed: Vec<String>,
    pub(super) merged_labels: Vec<String>,
}

/// Reports merge `m` of the artifact at display path `label`; `remote` names the incoming
/// side in conflict kinds and resolutions (`collection`, `target`).
pub(super) fn report_merge(
    label: &str,
    m: &merge::TreeMerge,
    local: &Tree,
    remote: &str,
) -> MergeReport {
    let mut conflicts = Vec::new();
    let mut merged = Vec::new();
    for (path, outcome) in &m.outcomes {
        let p = path.to_string_lossy().into_owned();
        if let FileOutcome::Conflict(c) = outcome {
            conflicts.push(Conflict {
                path: file_label(label, &p),
                kind: match c.kind {
                    ConflictKind::BothModified => "both_modified".into(),
                    ConflictKind::AddAdd => "add_add".into(),
                    ConflictKind::DeletedBy(Side::Local) => "deleted_locally".into(),
                    ConflictKind::DeletedBy(Side::Remote) => format!("deleted_in_{remote}"),
                },
                binary: c.binary,
                resolved: c.resolved.map(|t| match t {
                    Taken::Side(Side::Local) => "local".into(),
                    Taken::Side(Side::Remote) => remote.into(),
                    Taken::Union => "union".into(),
                }),
            });
        }
        if m.files.get(path) != local.get(path) {
            merged.push(MergedFile {
                path: file_label(label, &p),
                content: m.files.get(path).cloned(),
            });
        }
    }
    let changed = merged.iter().map(|f| f.path.clone()).collect();
    let merged_labels = m
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, FileOutcome::Merged | FileOutcome::Took { .. }))
        .map(|(p, _)| file_label(label, &p.to_string_lossy()))
        .collect();
    MergeReport {
        conflicts,
        merged,
        changed,
        merged_labels,
    }
}

/// The content of merge result `m`, with the file modes of `remote` then `local`.
pub(super) fn merged_content(
    m: &merge::TreeMerge,
    local: Option<&Content>,
    remote: Option<&Content>,
) -> Content {
    let single_file = local.or(remote).is_some_and(|c| c.single_file);
    let modes: BTreeMap<String, u32> = [remote, local]
        .into_iter()
        .flatten()
        .flat_map(|c| c.files.iter().map(|f| (f.path.clone(), f.mode)))
        .collect();
    Content {
        single_file,
        files: m
            .files
            .iter()
            .map(|(p, bytes)| {
                let path = p.to_string_lossy().into_owned();
                FileContent {
                    mode: modes.get(&path).copied().unwrap_or(DEFAULT_FILE_MODE),
                    path,
                    symlink: None,
                    bytes: bytes.clone(),
                }
            })
            .collect(),
    }
}

/// Writes `content` as the whole artifact `dest` under `root`.
pub(super) fn write_content(
    writer: &Writer,
    root: &Path,
    dest: &Path,
    content: &Content,
) -> Result<(), OpError> {
    if content.single_file {
        let f = content
            .files
            .first()
            .ok_or_else(|| OpError::Invalid(format!("{}: no content to write", dest.display())))?;
        writer.replace_file(root, dest, &f.bytes)?;
    } else {
        let files: DirFiles = content
            .files
            .iter()
            .map(|f| (PathBuf::from(&f.path), (f.bytes.clone(), f.mode)))
            .collect();
        writer.replace_dir(root, dest, &files)?;
    }
    Ok(())
}

/// The preserve merge of one artifact at display path `label`: base, local = `current`,
/// remote = `target`, overlapping edits marked. The content to write (None = remove it)
/// and its report.
pub(super) fn preserve_merge(
    label: &str,
    base: &Tree,
    current: Option<&Content>,
    target: &Content,
) -> (Option<Content>, MergeReport) {
    let local = current.map(tree_of).unwrap_or_default();
    let m = merge::merge_trees(base, &local, &tree_of(target), Resolution::Markers);
    let r = report_merge(label, &m, &local, "target");
    let content = (!m.files.is_empty()).then(|| merged_content(&m, current, Some(target)));
    (content, r)
}

/// Whether `loc` is a file describing the artifacts (not an artifact).
pub(super) fn is_bookkeeping(loc: &Location) -> bool {
    matches!(
        loc.path.as_str(),
        "collection.toml" | "collection.lock" | deployment::FILE_NAME
    )
}

/// `c` as history compares it at `loc` (collection copies as a deploy copies them).
pub(super) fn normalized(loc: &Location, c: Content) -> Content {
    match loc.scope {
        Scope::Collection(_) => c.deployed_copy(),
        Scope::Project(_) => c,
    }
}

/// The managed folder holding `loc` (profile root or collection folder).
pub(super) fn managed_root(home: &Path, loc: &Location) -> PathBuf {
    match &loc.scope {
        Scope::Collection(n) => collection::collections_dir(home).join(n),
        Scope::Project(p) => p.join(&loc.root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_lists_differences_both_ways() {
        let f = |p: &str, b: &[u8]| FileContent {
            path: p.into(),
            mode: 0o644,
            symlink: None,
            bytes: b.to_vec(),
        };
        let a = Content {
            single_file: false,
            files: vec![f("a", b"1"), f("b", b"2")],
        };
        let b = Content {
            single_file: false,
            files: vec![f("a", b"1"), f("c", b"3")],
        };
        assert_eq!(changed_paths(Some(&a), Some(&b)), vec!["b", "c"]);
        assert_eq!(changed_paths(None, Some(&a)), vec!["a", "b"]);
        assert!(changed_paths(Some(&a), Some(&a)).is_empty());
    }
}

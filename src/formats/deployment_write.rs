//! Rewriting one record of a `.skillmeat-deployed.toml` after the daemon changed that
//! deployment (sync pull/push, merge, rollback), the way SkillMeat's redeploy leaves it
//! (formats doc §2.2–2.3), touching nothing else.
//!
//! The record is found by SkillMeat's identity (extension-normalised name, type, profile
//! id with none meaning `claude_code`). Set: `content_hash` and `collection_sha` (always
//! equal on write, §9.4), `merge_base_snapshot` (a content hash despite its name),
//! `deployed_at` (naive local time, §0.2) and `version_lineage`; dropped:
//! `modification_detected_at`, because SkillMeat's redeploy writes a fresh record without
//! it and the copy no longer differs from what the record says. Every other key (known or
//! not), the other records, comments, key order and spacing stay as they were; keys that
//! were missing are added at SkillMeat's position, formatted as `tomli_w` would.
//!
//! `version_lineage` keeps every hash the deployment had, oldest first, and ends with the
//! current one: the existing list (or, when absent, SkillMeat's reader default
//! `[content_hash]`), then the new hash unless it is already last.
//!
//! The file is written through [`Writer`]: SkillMeat's lock
//! `<root>/..skillmeat-deployed.toml.skillmeat-lock` is held from the read to the rename,
//! and the result must parse with [`super::deployment::parse`] before it is written.

use std::path::{Path, PathBuf};

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use super::deployment::{self, FILE_NAME};
use super::normalize_name;
use super::tomli_style::{set, string_array, string_value};
use crate::writer::{WriteError, Writer};

/// The keys of a record in the order SkillMeat writes them (§2.3).
pub const RECORD_ORDER: [&str; 17] = [
    "artifact_name",
    "artifact_type",
    "from_collection",
    "deployed_at",
    "artifact_path",
    "content_hash",
    "local_modifications",
    "parent_hash",
    "version_lineage",
    "last_modified_check",
    "modification_detected_at",
    "merge_base_snapshot",
    "deployment_profile_id",
    "platform",
    "profile_root_dir",
    "artifact_uuid",
    "collection_sha",
];

/// The profile id SkillMeat assumes for a record without one.
pub const DEFAULT_PROFILE: &str = "claude_code";

/// Which record to change.
#[derive(Debug, Clone, Copy)]
pub struct RecordKey<'a> {
    /// The artifact name (any of SkillMeat's extensions is ignored when matching).
    pub name: &'a str,
    pub artifact_type: &'a str,
    /// `deployment_profile_id`; None means `claude_code`.
    pub profile_id: Option<&'a str>,
}

/// What the deployment now holds.
#[derive(Debug, Clone)]
pub struct RecordUpdate {
    /// SkillMeat hash of the deployed copy as written.
    pub content_hash: String,
    /// `deployed_at`, a SkillMeat timestamp (see [`super::timestamp`]).
    pub deployed_at: String,
}

/// Why a deployment file was not rewritten; the file is unchanged after any of them.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentWriteError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: not found", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error("{}: no deployment record for {name} ({artifact_type}, profile {profile})", path.display())]
    NoRecord {
        path: PathBuf,
        name: String,
        artifact_type: String,
        profile: String,
    },
    #[error("{}: the edited file would not read back ({message}); nothing written", path.display())]
    WouldNotParse { path: PathBuf, message: String },
}

/// Rewrites the record `key` of `<project>/<root>/.skillmeat-deployed.toml`.
///
/// # Errors
/// See [`DeploymentWriteError`]; the file is unchanged after any of them.
pub fn update_record(
    writer: &Writer,
    project: &Path,
    root: &str,
    key: RecordKey<'_>,
    update: &RecordUpdate,
) -> Result<(), DeploymentWriteError> {
    let managed = project.join(root);
    let path = managed.join(FILE_NAME);
    if !managed.is_dir() {
        return Err(DeploymentWriteError::Missing { path });
    }
    writer.update_file(&managed, Path::new(FILE_NAME), |old| {
        let old = old.ok_or_else(|| DeploymentWriteError::Missing { path: path.clone() })?;
        let new = update_record_bytes(&path, old, key, update)?;
        // The edit may only ever make the file read better, never worse.
        let before = deployment::parse(&path, root, old);
        let after = deployment::parse(&path, root, new.as_bytes());
        if after.records.len() < before.records.len()
            || after.problems.len() > before.problems.len()
        {
            let message = after
                .problems
                .last()
                .map_or_else(|| "records went missing".to_string(), |p| p.message.clone());
            return Err(DeploymentWriteError::WouldNotParse {
                path: path.clone(),
                message,
            });
        }
        Ok(Some(new.into_bytes()))
    })?;
    Ok(())
}

/// The pure edit behind [`update_record`]: the file's new text.
///
/// # Errors
/// [`DeploymentWriteError::Unreadable`] for bytes that are not a TOML deployment file,
/// [`DeploymentWriteError::NoRecord`] when no record matches `key`.
pub fn update_record_bytes(
    path: &Path,
    bytes: &[u8],
    key: RecordKey<'_>,
    update: &RecordUpdate,
) -> Result<String, DeploymentWriteError> {
    let unreadable = |message: String| DeploymentWriteError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| unreadable("not valid UTF-8".into()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| unreadable(format!("invalid TOML: {}", e.message())))?;
    let no_record = || DeploymentWriteError::NoRecord {
        path: path.to_path_buf(),
        name: key.name.to_string(),
        artifact_type: key.artifact_type.to_string(),
        profile: key.profile_id.unwrap_or(DEFAULT_PROFILE).to_string(),
    };
    let record = match doc.get_mut("deployed") {
        Some(Item::ArrayOfTables(records)) => records
            .iter_mut()
            .find(|r| {
                matches(
                    r.get("artifact_name"),
                    r.get("artifact_type"),
                    r.get("deployment_profile_id"),
                    key,
                )
            })
            .ok_or_else(no_record)?,
        Some(Item::Value(Value::Array(_))) => {
            // `deployed = [{ … }]`, the inline form tomli_w uses for short records: turn it
            // into `[[deployed]]` blocks so the record can take multi-line values.
            let Some(Item::Value(Value::Array(inline))) = doc.remove("deployed") else {
                unreachable!()
            };
            let mut records = toml_edit::ArrayOfTables::new();
            for v in inline {
                match v {
                    Value::InlineTable(t) => records.push(t.into_table()),
                    _ => return Err(unreadable("`deployed` holds a non-table".into())),
                }
            }
            doc.insert("deployed", Item::ArrayOfTables(records));
            return update_record_bytes(path, doc.to_string().as_bytes(), key, update);
        }
        Some(_) => return Err(unreadable("`deployed` is not an array of tables".into())),
        None => return Err(no_record()),
    };
    edit(record, update);
    Ok(doc.to_string())
}

/// Puts the record `key` of `<project>/<root>/.skillmeat-deployed.toml` back to what it
/// is in `old` (the whole file as it was then; None, or no such record there: the record
/// is removed), touching every other record, comment and key as it is. Undo uses it, so
/// undoing one deployment's change never reverts another's. Returns whether the file
/// changed.
///
/// # Errors
/// See [`DeploymentWriteError`]; the file is unchanged after any of them.
pub fn restore_record(
    writer: &Writer,
    project: &Path,
    root: &str,
    key: RecordKey<'_>,
    old: Option<&[u8]>,
) -> Result<bool, DeploymentWriteError> {
    let managed = project.join(root);
    let path = managed.join(FILE_NAME);
    if !managed.is_dir() {
        return Err(DeploymentWriteError::Missing { path });
    }
    let wrote = writer.update_file(&managed, Path::new(FILE_NAME), |current| {
        let new = restore_record_bytes(&path, current, old, key)?;
        // As for any edit: the file may only ever read better, never worse.
        let before = deployment::parse(&path, root, current.unwrap_or_default());
        let after = deployment::parse(&path, root, new.as_bytes());
        if after.problems.len() > before.problems.len() {
            let message = after.problems.last().map(|p| p.message.clone());
            return Err(DeploymentWriteError::WouldNotParse {
                path: path.clone(),
                message: message.unwrap_or_default(),
            });
        }
        Ok(Some(new.into_bytes()))
    })?;
    Ok(wrote)
}

/// The pure edit behind [`restore_record`]: the file's new text, from its current bytes
/// (None: no file) and the bytes it had when `old` was taken.
///
/// # Errors
/// [`DeploymentWriteError::Unreadable`] when either is not a TOML deployment file.
pub fn restore_record_bytes(
    path: &Path,
    current: Option<&[u8]>,
    old: Option<&[u8]>,
    key: RecordKey<'_>,
) -> Result<String, DeploymentWriteError> {
    let mut doc = records_doc(path, current.unwrap_or_default())?;
    let then = match old {
        Some(b) => {
            let mut old_doc = records_doc(path, b)?;
            records(&mut old_doc).and_then(|r| r.iter().find(|t| matches_table(t, key)).cloned())
        }
        None => None,
    };
    if then.is_none() && doc.get("deployed").is_none() {
        return Ok(doc.to_string());
    }
    let list = doc
        .entry("deployed")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| DeploymentWriteError::Unreadable {
            path: path.to_path_buf(),
            message: "`deployed` is not an array of tables".into(),
        })?;
    let at = list.iter().position(|t| matches_table(t, key));
    match (at, then) {
        (Some(i), Some(mut t)) => {
            let current = list.get_mut(i).expect("found above");
            t.set_position(current.position());
            *current = t;
        }
        (Some(i), None) => {
            list.remove(i);
        }
        (None, Some(mut t)) => {
            t.set_position(None);
            if !list.is_empty() {
                t.decor_mut().set_prefix("\n");
            }
            list.push(t);
        }
        (None, None) => {}
    }
    if list.is_empty() {
        doc.remove("deployed");
    }
    Ok(doc.to_string())
}

/// `bytes` parsed, with an inline `deployed = [{ … }]` turned into `[[deployed]]` blocks.
fn records_doc(path: &Path, bytes: &[u8]) -> Result<DocumentMut, DeploymentWriteError> {
    let unreadable = |message: String| DeploymentWriteError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| unreadable("not valid UTF-8".into()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| unreadable(format!("invalid TOML: {}", e.message())))?;
    if let Some(Item::Value(Value::Array(_))) = doc.get("deployed") {
        let Some(Item::Value(Value::Array(inline))) = doc.remove("deployed") else {
            unreachable!()
        };
        let mut list = ArrayOfTables::new();
        for v in inline {
            match v {
                Value::InlineTable(t) => list.push(t.into_table()),
                _ => return Err(unreadable("`deployed` holds a non-table".into())),
            }
        }
        doc.insert("deployed", Item::ArrayOfTables(list));
    }
    Ok(doc)
}

fn records(doc: &mut DocumentMut) -> Option<&mut ArrayOfTables> {
    doc.get_mut("deployed")
        .and_then(Item::as_array_of_tables_mut)
}

fn matches_table(t: &Table, key: RecordKey<'_>) -> bool {
    matches(
        t.get("artifact_name"),
        t.get("artifact_type"),
        t.get("deployment_profile_id"),
        key,
    )
}

fn matches(
    name: Option<&Item>,
    ty: Option<&Item>,
    profile: Option<&Item>,
    key: RecordKey<'_>,
) -> bool {
    fn s(i: Option<&Item>) -> Option<&str> {
        i.and_then(Item::as_str)
    }
    s(name).is_some_and(|n| normalize_name(n) == normalize_name(key.name))
        && s(ty) == Some(key.artifact_type)
        && s(profile).unwrap_or(DEFAULT_PROFILE) == key.profile_id.unwrap_or(DEFAULT_PROFILE)
}

fn edit(record: &mut Table, update: &RecordUpdate) {
    let old_hash = ["content_hash", "collection_sha"]
        .into_iter()
        .find_map(|k| record.get(k).and_then(Item::as_str))
        .map(str::to_string);
    let mut lineage: Vec<String> = match record.get("version_lineage").and_then(Item::as_array) {
        Some(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        None => old_hash.into_iter().collect(),
    };
    if lineage.last() != Some(&update.content_hash) {
        lineage.push(update.content_hash.clone());
    }
    let hash = update.content_hash.as_str();
    set(
        record,
        "deployed_at",
        string_value(&update.deployed_at),
        &RECORD_ORDER,
    );
    set(record, "content_hash", string_value(hash), &RECORD_ORDER);
    set(
        record,
        "version_lineage",
        string_array(lineage.iter().map(String::as_str)),
        &RECORD_ORDER,
    );
    record.remove("modification_detected_at");
    set(
        record,
        "merge_base_snapshot",
        string_value(hash),
        &RECORD_ORDER,
    );
    set(record, "collection_sha", string_value(hash), &RECORD_ORDER);
}

#[cfg(test)]
mod tests;

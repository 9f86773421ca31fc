//! SkillMeat's rollback audit trail, `~/.skillmeat/audit/<collection>_rollback_audit.toml`
//! (formats doc §5.6): an array `[[entries]]`, one per rollback, that SkillMeat's
//! `get_history` / `get_entry` read back. The daemon appends its own rollbacks here so
//! SkillMeat's history shows them too.
//!
//! Unlike SkillMeat (non-atomic rewrite, second-resolution ids that collide), the append
//! is a read–modify–write under SkillMeat's lock through [`Writer`], earlier entries and
//! unknown keys are kept byte for byte, and ids carry microseconds
//! (`rb_YYYYMMDD_HHMMSS_ffffff`) plus `_2`, `_3`… should one still be taken.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use super::timestamp::isoformat;
use super::tomli_style::{set, string_array, string_value};
use crate::writer::{WriteError, Writer};

/// Fields of an entry in the order SkillMeat writes them.
pub const ENTRY_ORDER: [&str; 15] = [
    "id",
    "timestamp",
    "collection_name",
    "source_snapshot_id",
    "target_snapshot_id",
    "operation_type",
    "files_restored",
    "files_merged",
    "conflicts_resolved",
    "conflicts_pending",
    "preserve_changes_enabled",
    "success",
    "selective_paths",
    "error",
    "metadata",
];

/// One rollback, as SkillMeat's `RollbackAuditEntry` minus the id and timestamp, which
/// [`append`] assigns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackRecord {
    pub collection_name: String,
    /// The safety snapshot taken before the rollback.
    pub source_snapshot_id: String,
    /// The snapshot or version rolled back to.
    pub target_snapshot_id: String,
    /// `simple`, `intelligent` or `selective`.
    pub operation_type: String,
    pub files_restored: Vec<String>,
    pub files_merged: Vec<String>,
    pub conflicts_resolved: Vec<String>,
    pub conflicts_pending: Vec<String>,
    pub preserve_changes_enabled: bool,
    pub success: bool,
    pub selective_paths: Option<Vec<String>>,
    pub error: Option<String>,
    /// Written as `[entries.metadata]` when not empty.
    pub metadata: BTreeMap<String, String>,
}

/// Why the audit entry was not appended; the file is unchanged after any of them.
#[derive(Debug, thiserror::Error)]
pub enum AuditWriteError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: {message}; not appending to it", path.display())]
    Unreadable { path: PathBuf, message: String },
}

/// The audit file of `collection` under the SkillMeat home `home`.
pub fn audit_path(home: &Path, collection: &str) -> PathBuf {
    home.join("audit")
        .join(format!("{collection}_rollback_audit.toml"))
}

/// Appends `record` to its collection's audit file, stamped `now` (naive local time, as
/// SkillMeat stamps it). Returns the entry id.
///
/// # Errors
/// See [`AuditWriteError`].
pub fn append(
    writer: &Writer,
    home: &Path,
    record: &RollbackRecord,
    now: NaiveDateTime,
) -> Result<String, AuditWriteError> {
    let path = audit_path(home, &record.collection_name);
    let rel = path.strip_prefix(home).expect("under home").to_path_buf();
    let mut id = String::new();
    writer.update_file(home, &rel, |old| {
        let (text, new_id) = append_bytes(&path, old, record, now)?;
        id = new_id;
        Ok::<_, AuditWriteError>(Some(text.into_bytes()))
    })?;
    Ok(id)
}

/// The pure edit behind [`append`]: the file's new text and the new entry's id.
///
/// # Errors
/// [`AuditWriteError::Unreadable`] when the existing bytes are not an audit file.
pub fn append_bytes(
    path: &Path,
    old: Option<&[u8]>,
    record: &RollbackRecord,
    now: NaiveDateTime,
) -> Result<(String, String), AuditWriteError> {
    let unreadable = |message: String| AuditWriteError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let text = match old {
        Some(b) => std::str::from_utf8(b).map_err(|_| unreadable("not valid UTF-8".into()))?,
        None => "",
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| unreadable(format!("invalid TOML: {}", e.message())))?;
    match doc.get("entries") {
        None => {}
        Some(Item::ArrayOfTables(_)) => {}
        Some(Item::Value(Value::Array(a))) if a.is_empty() => {
            doc.remove("entries");
        }
        Some(_) => return Err(unreadable("`entries` is not an array of tables".into())),
    }
    let entries = doc
        .entry("entries")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .expect("made an array of tables above");
    let taken: Vec<String> = entries
        .iter()
        .filter_map(|t| t.get("id").and_then(Item::as_str).map(str::to_string))
        .collect();
    let base = format!("rb_{}", now.format("%Y%m%d_%H%M%S_%6f"));
    let id = std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base}_{n}")))
        .find(|c| !taken.contains(c))
        .expect("an unbounded sequence has a free id");

    let mut t = Table::new();
    let str_fields = [
        ("id", id.as_str()),
        ("timestamp", &isoformat(now)),
        ("collection_name", &record.collection_name),
        ("source_snapshot_id", &record.source_snapshot_id),
        ("target_snapshot_id", &record.target_snapshot_id),
        ("operation_type", &record.operation_type),
    ];
    for (k, v) in str_fields {
        set(&mut t, k, string_value(v), &ENTRY_ORDER);
    }
    let lists = [
        ("files_restored", &record.files_restored),
        ("files_merged", &record.files_merged),
        ("conflicts_resolved", &record.conflicts_resolved),
        ("conflicts_pending", &record.conflicts_pending),
    ];
    for (k, v) in lists {
        set(
            &mut t,
            k,
            string_array(v.iter().map(String::as_str)),
            &ENTRY_ORDER,
        );
    }
    set(
        &mut t,
        "preserve_changes_enabled",
        Value::from(record.preserve_changes_enabled),
        &ENTRY_ORDER,
    );
    set(&mut t, "success", Value::from(record.success), &ENTRY_ORDER);
    if let Some(paths) = &record.selective_paths {
        set(
            &mut t,
            "selective_paths",
            string_array(paths.iter().map(String::as_str)),
            &ENTRY_ORDER,
        );
    }
    if let Some(e) = &record.error {
        set(&mut t, "error", string_value(e), &ENTRY_ORDER);
    }
    if !record.metadata.is_empty() {
        let mut m = Table::new();
        for (k, v) in &record.metadata {
            set(&mut m, k, string_value(v), &[]);
        }
        m.decor_mut().set_prefix("\n");
        t.insert("metadata", Item::Table(m));
    }
    // tomli_w: a blank line before every header but the file's first.
    let first_in_file = entries.is_empty() && text.trim().is_empty();
    t.decor_mut()
        .set_prefix(if first_in_file { "" } else { "\n" });
    entries.push(t);
    Ok((doc.to_string(), id))
}

/// Removes the entry `id` from `collection`'s audit file (undo of the rollback that
/// appended it), every other entry as it is. Returns whether it was there.
///
/// # Errors
/// See [`AuditWriteError`].
pub fn remove_entry(
    writer: &Writer,
    home: &Path,
    collection: &str,
    id: &str,
) -> Result<bool, AuditWriteError> {
    let path = audit_path(home, collection);
    if !path.exists() {
        return Ok(false);
    }
    let rel = path.strip_prefix(home).expect("under home").to_path_buf();
    writer.update_file(home, &rel, |current| {
        let Some(current) = current else {
            return Ok(None);
        };
        remove_entry_bytes(&path, current, id).map(|t| t.map(String::into_bytes))
    })
}

/// The pure edit behind [`remove_entry`]: the file's new text, or None when no entry has
/// that id.
///
/// # Errors
/// [`AuditWriteError::Unreadable`] when the bytes are not an audit file.
pub fn remove_entry_bytes(
    path: &Path,
    current: &[u8],
    id: &str,
) -> Result<Option<String>, AuditWriteError> {
    let unreadable = |message: String| AuditWriteError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(current).map_err(|_| unreadable("not valid UTF-8".into()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| unreadable(format!("invalid TOML: {}", e.message())))?;
    let Some(entries) = doc
        .get_mut("entries")
        .and_then(Item::as_array_of_tables_mut)
    else {
        return Ok(None);
    };
    let Some(at) = entries
        .iter()
        .position(|t| t.get("id").and_then(Item::as_str) == Some(id))
    else {
        return Ok(None);
    };
    entries.remove(at);
    if at == 0
        && let Some(first) = entries.get_mut(0)
    {
        // tomli_w: no blank line before the file's first header.
        first.decor_mut().set_prefix("");
    }
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    }

    fn record() -> RollbackRecord {
        RollbackRecord {
            collection_name: "default".into(),
            source_snapshot_id: "20251217-103000-123456".into(),
            target_snapshot_id: "20251201-090000-000001".into(),
            operation_type: "simple".into(),
            files_restored: vec!["(all files)".into()],
            success: true,
            ..Default::default()
        }
    }

    #[test]
    fn first_entry_is_exactly_skillmeats_layout() {
        let (text, id) = append_bytes(
            Path::new("a.toml"),
            None,
            &record(),
            at("2025-12-17T10:30:01.456789"),
        )
        .unwrap();
        assert_eq!(id, "rb_20251217_103001_456789");
        assert_eq!(
            text,
            "[[entries]]\nid = \"rb_20251217_103001_456789\"\ntimestamp = \"2025-12-17T10:30:01.456789\"\ncollection_name = \"default\"\nsource_snapshot_id = \"20251217-103000-123456\"\ntarget_snapshot_id = \"20251201-090000-000001\"\noperation_type = \"simple\"\nfiles_restored = [\n    \"(all files)\",\n]\nfiles_merged = []\nconflicts_resolved = []\nconflicts_pending = []\npreserve_changes_enabled = false\nsuccess = true\n"
        );
    }

    #[test]
    fn same_instant_appends_get_distinct_ids_and_old_entries_stay() {
        let old = "[[entries]]\nid = \"rb_20251217_103001\"\ntimestamp = \"2025-12-17T10:30:01\"\ncollection_name = \"default\"\nfuture = 1\n";
        let now = at("2025-12-17T10:30:01");
        let (one, id1) =
            append_bytes(Path::new("a.toml"), Some(old.as_bytes()), &record(), now).unwrap();
        let (two, id2) =
            append_bytes(Path::new("a.toml"), Some(one.as_bytes()), &record(), now).unwrap();
        assert_eq!(id1, "rb_20251217_103001_000000");
        assert_eq!(id2, "rb_20251217_103001_000000_2");
        assert!(two.starts_with(old), "{two}");
        assert!(two.contains("\n\n[[entries]]\nid = \"rb_20251217_103001_000000_2\""));
        let t: toml::Table = two.parse().unwrap();
        assert_eq!(t["entries"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn removing_an_entry_leaves_the_others_byte_for_byte() {
        let now = at("2025-12-17T10:30:01");
        let (one, first) = append_bytes(Path::new("a.toml"), None, &record(), now).unwrap();
        let (two, second) =
            append_bytes(Path::new("a.toml"), Some(one.as_bytes()), &record(), now).unwrap();
        let back = remove_entry_bytes(Path::new("a.toml"), two.as_bytes(), &second)
            .unwrap()
            .unwrap();
        assert_eq!(back, one);
        let only_second = remove_entry_bytes(Path::new("a.toml"), two.as_bytes(), &first)
            .unwrap()
            .unwrap();
        assert!(
            only_second.starts_with("[[entries]]\nid = \""),
            "{only_second}"
        );
        assert!(only_second.contains(&second));
        assert_eq!(
            remove_entry_bytes(Path::new("a.toml"), one.as_bytes(), "rb_nope").unwrap(),
            None
        );
    }

    #[test]
    fn optional_fields_follow_in_order() {
        let mut r = record();
        r.operation_type = "selective".into();
        r.success = false;
        r.selective_paths = Some(vec!["skills/a".into()]);
        r.error = Some("disk \"full\"".into());
        r.metadata.insert("by".into(), "skillmeatd".into());
        let (text, _) =
            append_bytes(Path::new("a.toml"), None, &r, at("2025-12-17T10:30:01")).unwrap();
        assert!(
            text.ends_with("success = false\nselective_paths = [\n    \"skills/a\",\n]\nerror = \"disk \\\"full\\\"\"\n\n[entries.metadata]\nby = \"skillmeatd\"\n"),
            "{text}"
        );
    }

    #[test]
    fn appends_through_the_writer_and_refuses_a_broken_file() {
        let home = tempfile::tempdir().unwrap();
        let w = Writer::new();
        let now = at("2025-12-17T10:30:01.5");
        let id = append(&w, home.path(), &record(), now).unwrap();
        let id2 = append(&w, home.path(), &record(), now).unwrap();
        assert_ne!(id, id2);
        let path = audit_path(home.path(), "default");
        let t: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        assert_eq!(t["entries"].as_array().unwrap().len(), 2);
        assert!(
            home.path()
                .join("audit/.default_rollback_audit.toml.skillmeat-lock")
                .is_file()
        );

        std::fs::write(&path, "entries = 3\n").unwrap();
        let err = append(&w, home.path(), &record(), now).unwrap_err();
        assert!(matches!(err, AuditWriteError::Unreadable { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"entries = 3\n");
    }
}

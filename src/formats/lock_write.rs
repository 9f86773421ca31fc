//! Rewriting one entry of a collection's `collection.lock` after the daemon replaced that
//! artifact in the collection (sync push, merge, rollback), touching nothing else
//! (formats doc §1.4).
//!
//! The entry `[lock.entries."<name>::<type>"]` gets `content_hash` (SkillMeat hash of the
//! collection copy) and `fetched` (naive UTC, §0.2); `upstream`, `resolved_sha`,
//! `resolved_version`, unknown keys, other entries and comments stay as they were. A
//! missing entry is created, and a missing file starts from SkillMeat's empty lock. The
//! write goes through [`Writer`] under SkillMeat's lock `.collection.lock.skillmeat-lock`,
//! and the result must read back with [`super::collection::parse`] first.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Key, Table};

use super::collection;
use super::tomli_style::{basic_string, set, string_value};
use crate::writer::{WriteError, Writer};

/// The lock file's name inside a collection folder.
pub const FILE_NAME: &str = "collection.lock";

/// What SkillMeat writes for a collection without artifacts.
pub const EMPTY_LOCK: &str = "[lock]\nversion = \"1.0.0\"\n\n[lock.entries]\n";

/// The keys of an entry in the order SkillMeat writes them.
pub const ENTRY_ORDER: [&str; 5] = [
    "content_hash",
    "fetched",
    "upstream",
    "resolved_sha",
    "resolved_version",
];

/// What the collection copy now holds.
#[derive(Debug, Clone)]
pub struct LockUpdate {
    /// SkillMeat hash of the collection copy.
    pub content_hash: String,
    /// `fetched`, a SkillMeat timestamp in UTC (see [`super::timestamp::now_utc`]).
    pub fetched: String,
}

/// Why `collection.lock` was not rewritten; it is unchanged after any of them.
#[derive(Debug, thiserror::Error)]
pub enum LockWriteError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error("{}: the edited file would not read back ({message}); nothing written", path.display())]
    WouldNotParse { path: PathBuf, message: String },
}

/// Sets the entry of `name` (`artifact_type`) in `<collection_dir>/collection.lock`.
///
/// # Errors
/// See [`LockWriteError`]; the file is unchanged after any of them.
pub fn update_entry(
    writer: &Writer,
    collection_dir: &Path,
    name: &str,
    artifact_type: &str,
    update: &LockUpdate,
) -> Result<(), LockWriteError> {
    let path = collection_dir.join(FILE_NAME);
    writer.update_file(collection_dir, Path::new(FILE_NAME), |old| {
        let new = update_entry_bytes(&path, old, name, artifact_type, update)?;
        let check = collection::parse("", collection_dir, b"", Some(new.as_bytes()));
        let entry = format!("{name}::{artifact_type}");
        if check.lock.get(&entry) != Some(&update.content_hash) {
            let message = check.problems.first().map_or_else(
                || format!("entry {entry:?} not found"),
                |p| p.message.clone(),
            );
            return Err(LockWriteError::WouldNotParse {
                path: path.clone(),
                message,
            });
        }
        Ok(Some(new.into_bytes()))
    })?;
    Ok(())
}

/// The pure edit behind [`update_entry`]: the file's new text (`old` None = no file yet).
///
/// # Errors
/// [`LockWriteError::Unreadable`] for bytes that are not a TOML lock file.
pub fn update_entry_bytes(
    path: &Path,
    old: Option<&[u8]>,
    name: &str,
    artifact_type: &str,
    update: &LockUpdate,
) -> Result<String, LockWriteError> {
    let unreadable = |message: &str| LockWriteError::Unreadable {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let text = match old {
        Some(b) => std::str::from_utf8(b).map_err(|_| unreadable("not valid UTF-8"))?,
        None => EMPTY_LOCK,
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| unreadable(&format!("invalid TOML: {}", e.message())))?;
    let lock = doc
        .entry("lock")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.insert("version", Item::Value(string_value("1.0.0")));
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| unreadable("`lock` is not a table"))?;
    let entries = lock
        .entry("entries")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| unreadable("`lock.entries` is not a table"))?;
    let key = format!("{name}::{artifact_type}");
    if !entries.contains_key(&key) {
        let mut t = Table::new();
        t.decor_mut().set_prefix("\n");
        let formatted: Key = basic_string(&key)
            .parse()
            .expect("a basic string is a TOML key");
        entries.insert_formatted(&formatted, Item::Table(t));
        // tomli_w writes no `[lock.entries]` header once it has entries.
        entries.set_implicit(true);
    }
    let entry = entries
        .get_mut(&key)
        .and_then(Item::as_table_mut)
        .ok_or_else(|| unreadable(&format!("entry {key:?} is not a table")))?;
    set(
        entry,
        "content_hash",
        string_value(&update.content_hash),
        &ENTRY_ORDER,
    );
    set(
        entry,
        "fetched",
        string_value(&update.fetched),
        &ENTRY_ORDER,
    );
    Ok(doc.to_string())
}

/// Puts the entry of `name` (`artifact_type`) in `<collection_dir>/collection.lock` back
/// to what it is in `old` (the whole file as it was then; None, or no such entry there:
/// the entry is removed), every other entry and comment as it is. Returns whether the file
/// changed.
///
/// # Errors
/// See [`LockWriteError`]; the file is unchanged after any of them.
pub fn restore_entry(
    writer: &Writer,
    collection_dir: &Path,
    name: &str,
    artifact_type: &str,
    old: Option<&[u8]>,
) -> Result<bool, LockWriteError> {
    let path = collection_dir.join(FILE_NAME);
    let wrote = writer.update_file(collection_dir, Path::new(FILE_NAME), |current| {
        let new = restore_entry_bytes(&path, current, old, name, artifact_type)?;
        Ok::<_, LockWriteError>(Some(new.into_bytes()))
    })?;
    Ok(wrote)
}

/// The pure edit behind [`restore_entry`], from the current bytes (None: no file) and the
/// bytes the file had then.
///
/// # Errors
/// [`LockWriteError::Unreadable`] when either is not a TOML lock file.
pub fn restore_entry_bytes(
    path: &Path,
    current: Option<&[u8]>,
    old: Option<&[u8]>,
    name: &str,
    artifact_type: &str,
) -> Result<String, LockWriteError> {
    let unreadable = |message: &str| LockWriteError::Unreadable {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let parse = |b: Option<&[u8]>| -> Result<DocumentMut, LockWriteError> {
        let text = match b {
            Some(b) => std::str::from_utf8(b).map_err(|_| unreadable("not valid UTF-8"))?,
            None => EMPTY_LOCK,
        };
        text.parse().map_err(|e: toml_edit::TomlError| {
            unreadable(&format!("invalid TOML: {}", e.message()))
        })
    };
    let key = format!("{name}::{artifact_type}");
    let entries_of = |doc: &mut DocumentMut| -> Option<Table> {
        doc.get_mut("lock")
            .and_then(|l| l.get_mut("entries"))
            .and_then(Item::as_table_mut)
            .map(|t| t.clone())
    };
    let then = match old {
        Some(_) => {
            let mut d = parse(old)?;
            entries_of(&mut d).and_then(|t| {
                let (k, v) = t.get_key_value(&key)?;
                Some((k.clone(), v.clone()))
            })
        }
        None => None,
    };
    let mut doc = parse(current)?;
    let lock = doc
        .entry("lock")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| unreadable("`lock` is not a table"))?;
    let entries = lock
        .entry("entries")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| unreadable("`lock.entries` is not a table"))?;
    match then {
        Some((k, v)) => match entries.get_mut(&key) {
            Some(item) => *item = v,
            None => {
                entries.insert_formatted(&k, v);
                entries.set_implicit(true);
            }
        },
        None => {
            entries.remove(&key);
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f9a4f99b3efdf506d4c75c0ac1af4212c6870303dea1c9a32c884a8048612930";
    const N: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    const EXAMPLE: &str = "[lock]\nversion = \"1.0.0\"\n\n[lock.entries.\"canvas-design::skill\"]\ncontent_hash = \"f9a4f99b3efdf506d4c75c0ac1af4212c6870303dea1c9a32c884a8048612930\"\nfetched = \"2025-01-15T10:30:00.654321\"\nupstream = \"https://github.com/anthropics/skills/tree/main/canvas-design\"\nresolved_sha = \"abc123def4567890abc123def4567890abc123de\"\nresolved_version = \"v2.1.0\"\n\n[lock.entries.\"review::command\"]\ncontent_hash = \"5ec9df752dd35fd591508f19feae1f0853aa8c794052866b4b3d21e1f61654cf\"\nfetched = \"2025-01-16T09:00:00.700000\"\n";

    fn update() -> LockUpdate {
        LockUpdate {
            content_hash: N.into(),
            fetched: "2026-11-25T10:00:00".into(),
        }
    }

    #[test]
    fn an_entry_is_updated_in_place() {
        let out = update_entry_bytes(
            Path::new("collection.lock"),
            Some(EXAMPLE.as_bytes()),
            "canvas-design",
            "skill",
            &update(),
        )
        .unwrap();
        let want = EXAMPLE
            .replacen(H, N, 1)
            .replace("2025-01-15T10:30:00.654321", "2026-11-25T10:00:00");
        assert_eq!(out, want);
    }

    #[test]
    fn a_new_entry_is_written_as_tomli_w_would() {
        let out = update_entry_bytes(
            Path::new("collection.lock"),
            Some(EXAMPLE.as_bytes()),
            "new",
            "agent",
            &update(),
        )
        .unwrap();
        assert_eq!(
            out,
            format!(
                "{EXAMPLE}\n[lock.entries.\"new::agent\"]\ncontent_hash = \"{N}\"\nfetched = \"2026-11-25T10:00:00\"\n"
            )
        );
        let fresh = update_entry_bytes(Path::new("collection.lock"), None, "a", "skill", &update())
            .unwrap();
        assert_eq!(
            fresh,
            format!(
                "[lock]\nversion = \"1.0.0\"\n\n[lock.entries.\"a::skill\"]\ncontent_hash = \"{N}\"\nfetched = \"2026-11-25T10:00:00\"\n"
            )
        );
    }

    #[test]
    fn restoring_one_entry_leaves_the_others_as_they_are() {
        let path = Path::new("collection.lock");
        let both = update_entry_bytes(
            path,
            Some(EXAMPLE.as_bytes()),
            "review",
            "command",
            &update(),
        )
        .unwrap();
        let both = update_entry_bytes(
            path,
            Some(both.as_bytes()),
            "canvas-design",
            "skill",
            &update(),
        )
        .unwrap();
        let undone = restore_entry_bytes(
            path,
            Some(both.as_bytes()),
            Some(EXAMPLE.as_bytes()),
            "review",
            "command",
        )
        .unwrap();
        let c = collection::parse("", Path::new("."), b"", Some(undone.as_bytes()));
        assert_eq!(
            c.lock["canvas-design::skill"], N,
            "the other entry keeps its change"
        );
        assert_ne!(c.lock["review::command"], N);
        let all = restore_entry_bytes(
            path,
            Some(undone.as_bytes()),
            Some(EXAMPLE.as_bytes()),
            "canvas-design",
            "skill",
        )
        .unwrap();
        assert_eq!(all, EXAMPLE);
        // An entry that did not exist then goes; one missing now comes back.
        let added =
            update_entry_bytes(path, Some(EXAMPLE.as_bytes()), "new", "agent", &update()).unwrap();
        let gone = restore_entry_bytes(
            path,
            Some(added.as_bytes()),
            Some(EXAMPLE.as_bytes()),
            "new",
            "agent",
        )
        .unwrap();
        let c = collection::parse("", Path::new("."), b"", Some(gone.as_bytes()));
        assert!(!c.lock.contains_key("new::agent"));
        let back = restore_entry_bytes(
            path,
            Some(gone.as_bytes()),
            Some(added.as_bytes()),
            "new",
            "agent",
        )
        .unwrap();
        let c = collection::parse("", Path::new("."), b"", Some(back.as_bytes()));
        assert_eq!(c.lock["new::agent"], N);
    }

    #[test]
    fn the_file_on_disk_is_rewritten_and_reads_back() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE_NAME), EXAMPLE).unwrap();
        update_entry(&Writer::new(), d.path(), "review", "command", &update()).unwrap();
        let c = collection::parse(
            "default",
            d.path(),
            b"",
            Some(&std::fs::read(d.path().join(FILE_NAME)).unwrap()),
        );
        assert_eq!(c.lock["review::command"], N);
        assert_eq!(c.lock["canvas-design::skill"], H);
        assert!(d.path().join(".collection.lock.skillmeat-lock").is_file());

        std::fs::write(d.path().join(FILE_NAME), "[lock\n").unwrap();
        let err =
            update_entry(&Writer::new(), d.path(), "review", "command", &update()).unwrap_err();
        assert!(matches!(err, LockWriteError::Unreadable { .. }), "{err}");
        assert_eq!(std::fs::read(d.path().join(FILE_NAME)).unwrap(), b"[lock\n");
    }
}

//! Selective rollback and the ids written into SkillMeat's rollback audit.
//!
//! [`select`] builds the content of a selective rollback: the current content with only
//! the chosen paths (files, or folders and everything under them) taken from the target;
//! a chosen file the target does not have is removed. [`skillmeat_snapshot_id`] names a
//! state the way SkillMeat names its snapshots: the id of the SkillMeat snapshot it was
//! imported from, else the SkillMeat-style id (`YYYYMMDD-HHMMSS-ffffff`, UTC) of the moment
//! it was recorded — never our own `s86` / `v2`, which SkillMeat cannot read.

use chrono::{DateTime, Utc};

use crate::history::content::Content;

/// The message of a version or snapshot imported from a SkillMeat snapshot; the rest is
/// SkillMeat's id (see `history::archive::import`).
const IMPORTED: &str = "imported from SkillMeat snapshot ";

/// Whether `path` (relative to the artifact) is chosen by `selected`.
fn chosen(path: &str, selected: &[String]) -> bool {
    selected.iter().any(|s| {
        path == s
            || path
                .strip_prefix(s.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Normalises the chosen paths: `/`-separated, no leading `./` or trailing `/`.
///
/// # Errors
/// An empty path, an absolute one or one with `..`.
pub(super) fn normalise(paths: &[String]) -> Result<Vec<String>, String> {
    paths
        .iter()
        .map(|p| {
            let n = p
                .trim()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            if n.is_empty() || n.starts_with('/') || n.split('/').any(|c| c == "..") {
                Err(format!(
                    "{p:?} is not a path inside the artifact (relative, without ..)"
                ))
            } else {
                Ok(n)
            }
        })
        .collect()
}

/// The current content with the `selected` paths taken from `target`.
///
/// # Errors
/// A selected path names no file in either content, or the artifact is a single file
/// (there is nothing to choose from).
pub(super) fn select(
    current: Option<&Content>,
    target: &Content,
    selected: &[String],
) -> Result<Content, String> {
    if target.single_file {
        return Err("the artifact is a single file: roll it back without --paths".into());
    }
    let now = current.cloned().unwrap_or(Content {
        single_file: false,
        files: Vec::new(),
    });
    for s in selected {
        let known = now
            .files
            .iter()
            .chain(&target.files)
            .any(|f| chosen(&f.path, std::slice::from_ref(s)));
        if !known {
            return Err(format!(
                "{s:?} names no file of the artifact, now or in the version rolled back to"
            ));
        }
    }
    let mut files: Vec<_> = now
        .files
        .into_iter()
        .filter(|f| !chosen(&f.path, selected))
        .collect();
    files.extend(
        target
            .files
            .iter()
            .filter(|f| chosen(&f.path, selected))
            .cloned(),
    );
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Content {
        single_file: false,
        files,
    })
}

/// SkillMeat's name for a state recorded at `time_ms` with `message` (see the module doc).
pub(super) fn skillmeat_snapshot_id(time_ms: i64, message: Option<&str>) -> String {
    if let Some(id) = message.and_then(|m| m.strip_prefix(IMPORTED)) {
        return id.trim().to_string();
    }
    DateTime::<Utc>::from_timestamp_millis(time_ms)
        .unwrap_or_default()
        .format("%Y%m%d-%H%M%S-%6f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::content::FileContent;

    fn content(files: &[(&str, &str)]) -> Content {
        Content {
            single_file: false,
            files: files
                .iter()
                .map(|(p, b)| FileContent {
                    path: p.to_string(),
                    mode: 0o644,
                    symlink: None,
                    bytes: b.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    fn paths(c: &Content) -> Vec<(&str, &[u8])> {
        c.files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.as_slice()))
            .collect()
    }

    #[test]
    fn only_the_chosen_files_and_folders_come_back() {
        let now = content(&[
            ("SKILL.md", "new"),
            ("refs/a.md", "new a"),
            ("refs/b.md", "new b"),
            ("extra.md", "x"),
        ]);
        let then = content(&[
            ("SKILL.md", "old"),
            ("refs/a.md", "old a"),
            ("gone.md", "g"),
        ]);
        let r = select(Some(&now), &then, &["refs".into()]).unwrap();
        assert_eq!(
            paths(&r),
            [
                ("SKILL.md", &b"new"[..]),
                ("extra.md", b"x"),
                ("refs/a.md", b"old a")
            ],
            "refs/ as it was: b.md did not exist then"
        );
        let r = select(Some(&now), &then, &["gone.md".into(), "SKILL.md".into()]).unwrap();
        assert_eq!(
            paths(&r),
            [
                ("SKILL.md", &b"old"[..]),
                ("extra.md", b"x"),
                ("gone.md", b"g"),
                ("refs/a.md", b"new a"),
                ("refs/b.md", b"new b")
            ]
        );
        // A prefix of a name is not a folder.
        assert!(select(Some(&now), &then, &["ref".into()]).is_err());
        assert!(normalise(&["../x".into()]).is_err());
        assert_eq!(normalise(&["./refs/".into()]).unwrap(), ["refs"]);
    }

    #[test]
    fn skillmeat_ids_are_its_own_or_shaped_like_its_own() {
        assert_eq!(
            skillmeat_snapshot_id(
                0,
                Some("imported from SkillMeat snapshot 20251217-103000-123456")
            ),
            "20251217-103000-123456"
        );
        assert_eq!(
            skillmeat_snapshot_id(1_765_967_400_123, None),
            "20251217-103000-123000"
        );
    }
}

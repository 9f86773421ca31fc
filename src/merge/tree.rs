//! Three-way merge of whole artifacts: maps of relative path → bytes.
//!
//! Each path present on any side is decided on its own, as SkillMeat's table (formats doc
//! §6.2) does, except that a text file both sides modified is merged line by line with
//! [`merge_text`](super::merge_text) and only its overlapping hunks conflict:
//!
//! | base | local | remote | outcome |
//! |---|---|---|---|
//! | any | = remote | = local | unchanged, or [`FileOutcome::Same`] |
//! | ✓ / ✗ | = base | ≠ base | [`FileOutcome::Took`] remote (its content or its deletion) |
//! | ✓ / ✗ | ≠ base | = base | [`FileOutcome::Took`] local |
//! | ✓ | ≠ base | ≠ base | line merge: [`FileOutcome::Merged`] or a `BothModified` conflict |
//! | ✗ | added | added differently | `AddAdd` conflict (a line merge against an empty base) |
//! | ✓ | deleted | modified | `DeletedBy(Local)` conflict, and the mirror case |
//!
//! Conflicts of text files carry SkillMeat's markers in the result (a delete/modify
//! conflict shows `(file deleted)` on the deleting side, as SkillMeat writes it); binary
//! files never do: an unresolved binary conflict keeps the local bytes (or the local
//! absence). A [`Resolution::Prefer`] takes that side's version of every conflict; a
//! [`Resolution::Union`] keeps both sides' lines of every conflicting text hunk. Markdown
//! files with front matter on every side are merged by [`super::frontmatter`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::text::{ConflictHunk, MARKER_LOCAL, MARKER_REMOTE, MARKER_SEPARATOR, merge_text};
use super::{Resolution, Side, is_binary};

/// An artifact's files: relative path → content.
pub type Tree = BTreeMap<PathBuf, Vec<u8>>;

/// What the placeholder line of a deleted side reads in a delete/modify conflict.
pub const DELETED_PLACEHOLDER: &str = "(file deleted)";

/// How one path that changed on some side was decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FileOutcome {
    /// Only `side` changed it; its content (or its deletion) was taken.
    Took { side: Side, deleted: bool },
    /// Both sides made the same change (or both deleted it).
    Same { deleted: bool },
    /// Both sides changed a text file and the line merge was clean.
    Merged,
    /// Both sides changed it in ways that overlap.
    Conflict(FileConflict),
}

/// Why both sides' versions of a file could not be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Present in the base and modified differently on both sides.
    BothModified,
    /// Absent from the base and added differently on both sides.
    AddAdd,
    /// Deleted on this side and modified on the other.
    DeletedBy(Side),
}

/// A conflicting file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileConflict {
    pub kind: ConflictKind,
    /// Binary files are reported, never given markers.
    pub binary: bool,
    /// The conflicting hunks of a text file (empty for binary files).
    pub hunks: Vec<ConflictHunk>,
    /// How a resolution settled it; `None` while it is a conflict to resolve by hand.
    pub resolved: Option<Taken>,
}

/// How a conflicting file was settled by a [`Resolution`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Taken {
    /// That side's version of each conflict ([`Resolution::Prefer`]).
    Side(Side),
    /// Both sides' lines of each conflicting hunk ([`Resolution::Union`]).
    Union,
}

/// The result of merging two descendants of a base tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeMerge {
    /// The complete merged tree, unchanged files included.
    pub files: Tree,
    /// Every path some side changed, and how it was decided.
    pub outcomes: BTreeMap<PathBuf, FileOutcome>,
}

impl TreeMerge {
    /// The conflicting files, in path order.
    pub fn conflicts(&self) -> impl Iterator<Item = (&PathBuf, &FileConflict)> {
        self.outcomes.iter().filter_map(|(p, o)| match o {
            FileOutcome::Conflict(c) => Some((p, c)),
            _ => None,
        })
    }

    /// Whether some conflict was left for a person to resolve (markers in text, local bytes
    /// kept for binary files).
    pub fn has_unresolved(&self) -> bool {
        self.conflicts().any(|(_, c)| c.resolved.is_none())
    }
}

/// Merges `local` and `remote`, two descendants of `base`.
pub fn merge_trees(base: &Tree, local: &Tree, remote: &Tree, resolution: Resolution) -> TreeMerge {
    let paths: BTreeSet<&PathBuf> = base
        .keys()
        .chain(local.keys())
        .chain(remote.keys())
        .collect();
    let mut merged = TreeMerge::default();
    for path in paths {
        let (b, l, r) = (
            base.get(path).map(Vec::as_slice),
            local.get(path).map(Vec::as_slice),
            remote.get(path).map(Vec::as_slice),
        );
        let (content, outcome) = merge_file(path, b, l, r, resolution);
        if let Some(content) = content {
            merged.files.insert(path.clone(), content);
        }
        if let Some(outcome) = outcome {
            merged.outcomes.insert(path.clone(), outcome);
        }
    }
    merged
}

/// Decides one path: the merged content (None = absent) and, if anything changed, how.
fn merge_file(
    path: &std::path::Path,
    b: Option<&[u8]>,
    l: Option<&[u8]>,
    r: Option<&[u8]>,
    resolution: Resolution,
) -> (Option<Vec<u8>>, Option<FileOutcome>) {
    let owned = |x: Option<&[u8]>| x.map(<[u8]>::to_vec);
    if l == r {
        let outcome = (b != l).then_some(FileOutcome::Same {
            deleted: l.is_none(),
        });
        return (owned(l), outcome);
    }
    if b == l {
        let took = FileOutcome::Took {
            side: Side::Remote,
            deleted: r.is_none(),
        };
        return (owned(r), Some(took));
    }
    if b == r {
        let took = FileOutcome::Took {
            side: Side::Local,
            deleted: l.is_none(),
        };
        return (owned(l), Some(took));
    }

    let kind = match (b, l, r) {
        (None, _, _) => ConflictKind::AddAdd,
        (Some(_), None, _) => ConflictKind::DeletedBy(Side::Local),
        (Some(_), _, None) => ConflictKind::DeletedBy(Side::Remote),
        (Some(_), Some(_), Some(_)) => ConflictKind::BothModified,
    };
    let binary = [b, l, r].into_iter().flatten().any(is_binary);
    let resolved = match resolution {
        Resolution::Prefer(side) => Some(Taken::Side(side)),
        Resolution::Union if !binary && l.is_some() && r.is_some() => Some(Taken::Union),
        Resolution::Union | Resolution::Markers => None,
    };
    let conflict = |hunks| {
        Some(FileOutcome::Conflict(FileConflict {
            kind,
            binary,
            hunks,
            resolved,
        }))
    };
    let preferred = match resolved {
        Some(Taken::Side(Side::Remote)) => owned(r),
        _ => owned(l),
    };

    if binary {
        return (preferred, conflict(Vec::new()));
    }
    match (l, r) {
        (Some(l), Some(r)) => {
            let b = b.unwrap_or_default();
            let m = super::frontmatter::merge(path, b, l, r, resolution)
                .unwrap_or_else(|| merge_text(b, l, r, resolution));
            if m.is_clean() {
                (Some(m.merged), Some(FileOutcome::Merged))
            } else {
                (Some(m.merged), conflict(m.conflicts))
            }
        }
        _ => {
            // Deleted on one side, modified on the other.
            let hunk = ConflictHunk {
                base: 0..b.map_or(0, |b| super::text::split_lines(b).len()),
                local: 0..l.map_or(0, |l| super::text::split_lines(l).len()),
                remote: 0..r.map_or(0, |r| super::text::split_lines(r).len()),
                merged_line: 1,
            };
            let content = match resolved {
                Some(_) => preferred,
                None => Some(delete_modify_markers(l, r)),
            };
            (content, conflict(vec![hunk]))
        }
    }
}

/// SkillMeat's whole-file block for a delete/modify conflict.
fn delete_modify_markers(l: Option<&[u8]>, r: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let side = |content: Option<&[u8]>, out: &mut Vec<u8>| match content {
        None => {
            out.extend_from_slice(DELETED_PLACEHOLDER.as_bytes());
            out.push(b'\n');
        }
        Some(c) => {
            out.extend_from_slice(c);
            if !c.is_empty() && !c.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
    };
    for (marker, content) in [(MARKER_LOCAL, l), (MARKER_SEPARATOR, r)] {
        out.extend_from_slice(marker.as_bytes());
        out.push(b'\n');
        side(content, &mut out);
    }
    out.extend_from_slice(MARKER_REMOTE.as_bytes());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &[u8])]) -> Tree {
        files
            .iter()
            .map(|(p, c)| (PathBuf::from(p), c.to_vec()))
            .collect()
    }

    fn outcome<'a>(m: &'a TreeMerge, p: &str) -> Option<&'a FileOutcome> {
        m.outcomes.get(&PathBuf::from(p))
    }

    fn content<'a>(m: &'a TreeMerge, p: &str) -> Option<&'a [u8]> {
        m.files.get(&PathBuf::from(p)).map(Vec::as_slice)
    }

    #[test]
    fn one_sided_changes_additions_and_deletions_are_taken() {
        let base = tree(&[
            ("SKILL.md", b"a\n"),
            ("gone-local.md", b"x\n"),
            ("gone-remote.md", b"y\n"),
            ("same.md", b"s\n"),
        ]);
        let local = tree(&[
            ("SKILL.md", b"a\n"),
            ("gone-remote.md", b"y\n"),
            ("same.md", b"s\n"),
            ("new-local.md", b"n\n"),
        ]);
        let remote = tree(&[
            ("SKILL.md", b"A\n"),
            ("gone-local.md", b"x\n"),
            ("same.md", b"s\n"),
            ("new-remote/deep.md", b"d\n"),
        ]);
        let m = merge_trees(&base, &local, &remote, Resolution::Markers);
        assert_eq!(
            m.files,
            tree(&[
                ("SKILL.md", b"A\n"),
                ("new-local.md", b"n\n"),
                ("new-remote/deep.md", b"d\n"),
                ("same.md", b"s\n"),
            ])
        );
        let took = |side, deleted| Some(FileOutcome::Took { side, deleted });
        assert_eq!(outcome(&m, "SKILL.md").cloned(), took(Side::Remote, false));
        assert_eq!(
            outcome(&m, "gone-local.md").cloned(),
            took(Side::Local, true)
        );
        assert_eq!(
            outcome(&m, "gone-remote.md").cloned(),
            took(Side::Remote, true)
        );
        assert_eq!(
            outcome(&m, "new-local.md").cloned(),
            took(Side::Local, false)
        );
        assert_eq!(outcome(&m, "same.md"), None);
        assert!(!m.has_unresolved());
    }

    #[test]
    fn both_modified_text_is_merged_line_by_line() {
        let base = tree(&[("SKILL.md", b"1\n2\n3\n")]);
        let local = tree(&[("SKILL.md", b"1L\n2\n3\n")]);
        let remote = tree(&[("SKILL.md", b"1\n2\n3R\n")]);
        let m = merge_trees(&base, &local, &remote, Resolution::Markers);
        assert_eq!(content(&m, "SKILL.md"), Some(&b"1L\n2\n3R\n"[..]));
        assert_eq!(outcome(&m, "SKILL.md"), Some(&FileOutcome::Merged));
    }

    #[test]
    fn both_modified_overlapping_text_conflicts_with_markers() {
        let base = tree(&[("SKILL.md", b"1\n2\n3\n")]);
        let local = tree(&[("SKILL.md", b"1\nL\n3\n")]);
        let remote = tree(&[("SKILL.md", b"1\nR\n3\n")]);
        let m = merge_trees(&base, &local, &remote, Resolution::Markers);
        let text = String::from_utf8(content(&m, "SKILL.md").unwrap().to_vec()).unwrap();
        assert!(
            text.contains("<<<<<<< LOCAL (current)\nL\n=======\nR\n"),
            "{text}"
        );
        let (_, c) = m.conflicts().next().unwrap();
        assert_eq!(c.kind, ConflictKind::BothModified);
        assert_eq!(c.hunks.len(), 1);
        assert!(m.has_unresolved());
    }

    #[test]
    fn same_change_on_both_sides_is_not_a_conflict() {
        let base = tree(&[("a.md", b"1\n"), ("b.md", b"2\n")]);
        let both = tree(&[("a.md", b"one\n")]);
        let m = merge_trees(&base, &both, &both, Resolution::Markers);
        assert_eq!(m.files, both);
        assert_eq!(
            outcome(&m, "a.md"),
            Some(&FileOutcome::Same { deleted: false })
        );
        assert_eq!(
            outcome(&m, "b.md"),
            Some(&FileOutcome::Same { deleted: true })
        );
    }

    #[test]
    fn add_add_differently_conflicts() {
        let base = Tree::new();
        let m = merge_trees(
            &base,
            &tree(&[("n.md", b"x\n")]),
            &tree(&[("n.md", b"y\n")]),
            Resolution::Markers,
        );
        assert_eq!(
            content(&m, "n.md"),
            Some(&b"<<<<<<< LOCAL (current)\nx\n=======\ny\n>>>>>>> REMOTE (incoming)\n"[..])
        );
        assert_eq!(m.conflicts().next().unwrap().1.kind, ConflictKind::AddAdd);
    }

    #[test]
    fn delete_modify_conflicts_in_skillmeat_format() {
        let base = tree(&[("a.md", b"old\n")]);
        let local = Tree::new();
        let remote = tree(&[("a.md", b"new")]);
        let m = merge_trees(&base, &local, &remote, Resolution::Markers);
        assert_eq!(
            content(&m, "a.md"),
            Some(
                &b"<<<<<<< LOCAL (current)\n(file deleted)\n=======\nnew\n>>>>>>> REMOTE (incoming)\n"[..]
            )
        );
        let (_, c) = m.conflicts().next().unwrap();
        assert_eq!(c.kind, ConflictKind::DeletedBy(Side::Local));

        let m = merge_trees(&base, &local, &remote, Resolution::Prefer(Side::Local));
        assert_eq!(
            content(&m, "a.md"),
            None,
            "preferring the deleting side deletes"
        );
        assert!(!m.has_unresolved());
        let m = merge_trees(&base, &local, &remote, Resolution::Prefer(Side::Remote));
        assert_eq!(content(&m, "a.md"), Some(&b"new"[..]));

        let m = merge_trees(&base, &remote, &local, Resolution::Markers);
        assert_eq!(
            m.conflicts().next().unwrap().1.kind,
            ConflictKind::DeletedBy(Side::Remote)
        );
    }

    #[test]
    fn binary_files_never_get_markers() {
        let base = tree(&[("img.png", b"\x89PNG\0base")]);
        let local = tree(&[("img.png", b"\x89PNG\0local")]);
        let remote = tree(&[("img.png", b"\x89PNG\0remote")]);
        let m = merge_trees(&base, &local, &remote, Resolution::Markers);
        assert_eq!(content(&m, "img.png"), Some(&b"\x89PNG\0local"[..]));
        let (_, c) = m.conflicts().next().unwrap();
        assert!(c.binary && c.hunks.is_empty() && c.resolved.is_none());

        let m = merge_trees(&base, &local, &remote, Resolution::Prefer(Side::Remote));
        assert_eq!(content(&m, "img.png"), Some(&b"\x89PNG\0remote"[..]));
        assert_eq!(
            m.conflicts().next().unwrap().1.resolved,
            Some(Taken::Side(Side::Remote))
        );

        // A text file that became binary on one side is binary too.
        let base = tree(&[("f", b"text\n")]);
        let m = merge_trees(
            &base,
            &tree(&[("f", b"text\nmore\n")]),
            &tree(&[("f", b"\0\0")]),
            Resolution::Markers,
        );
        assert!(m.conflicts().next().unwrap().1.binary);
        assert_eq!(content(&m, "f"), Some(&b"text\nmore\n"[..]));
    }
}

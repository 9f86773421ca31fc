//! Differences between any two states of an artifact, collection or project: versions,
//! snapshots, tags, the current files on disk, or the state at a past instant.
//!
//! [`diff_trees`] is pure: two maps of path → bytes in, per-file unified diffs (via
//! `similar`) out; a file with a NUL byte in its first 8 KiB on either side is reported as
//! binary, as SkillMeat does. [`History::resolve`] turns an operand into such a map.

use std::collections::BTreeMap;
use std::path::PathBuf;

use similar::{ChangeTag, TextDiff};

use crate::formats::{self, collection, deployment};

use super::content::Content;
use super::{History, HistoryError, time};
use crate::model::{Location, Scope, SnapshotId, SnapshotTarget};

/// How a file differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Added,
    Removed,
    Modified,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Modified => "modified",
        }
    }
}

/// One hunk of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// `@@ -1,3 +1,4 @@`
    pub header: String,
    /// Lines with their ` `, `-` or `+` prefix, without the newline.
    pub lines: Vec<String>,
}

/// One file that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub status: Status,
    pub binary: bool,
    /// The whole unified diff (`--- a/…`, `+++ b/…`, hunks); empty for binary files.
    pub unified: String,
    pub hunks: Vec<Hunk>,
    pub lines_added: u64,
    pub lines_removed: u64,
}

/// Files of one side of a diff: path → bytes.
pub type Tree = BTreeMap<String, Vec<u8>>;

fn is_binary(b: &[u8]) -> bool {
    b[..b.len().min(8192)].contains(&0)
}

/// Every file that differs between `old` and `new`, in path order.
pub fn diff_trees(old: &Tree, new: &Tree) -> Vec<FileDiff> {
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    let empty = Vec::new();
    let mut out = Vec::new();
    for p in paths {
        let (a, b) = (old.get(p), new.get(p));
        if a == b {
            continue;
        }
        let status = match (a, b) {
            (None, _) => Status::Added,
            (_, None) => Status::Removed,
            _ => Status::Modified,
        };
        let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
        let mut d = FileDiff {
            path: p.clone(),
            status,
            binary: is_binary(a) || is_binary(b),
            unified: String::new(),
            hunks: Vec::new(),
            lines_added: 0,
            lines_removed: 0,
        };
        if !d.binary {
            let (ta, tb) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
            let diff = TextDiff::from_lines(ta.as_ref(), tb.as_ref());
            let from = if status == Status::Added {
                "/dev/null".to_string()
            } else {
                format!("a/{p}")
            };
            let to = if status == Status::Removed {
                "/dev/null".to_string()
            } else {
                format!("b/{p}")
            };
            d.unified = diff
                .unified_diff()
                .context_radius(3)
                .header(&from, &to)
                .to_string();
            for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
                let mut lines = Vec::new();
                for change in hunk.iter_changes() {
                    let sign = match change.tag() {
                        ChangeTag::Equal => ' ',
                        ChangeTag::Delete => {
                            d.lines_removed += 1;
                            '-'
                        }
                        ChangeTag::Insert => {
                            d.lines_added += 1;
                            '+'
                        }
                    };
                    let text = change.value();
                    lines.push(format!("{sign}{}", text.strip_suffix('\n').unwrap_or(text)));
                }
                d.hunks.push(Hunk {
                    header: hunk.header().to_string(),
                    lines,
                });
            }
        }
        out.push(d);
    }
    out
}

/// One side of `smctl diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A version id (`v12`) or a tag.
    Version(String),
    Snapshot(SnapshotId),
    /// The collection's current files.
    Collection,
    /// The project's current files.
    Project,
    /// The state at an instant (ms since the epoch).
    At(i64),
}

impl Operand {
    /// Reads `v12`, `s3`, `collection`, `project`, `@2h` / `@2026-11-25T10:00`, or a tag.
    ///
    /// # Errors
    /// A bad time after `@`.
    pub fn parse(s: &str, now_ms: i64) -> Result<Operand, HistoryError> {
        Ok(match s {
            "collection" => Operand::Collection,
            "project" => Operand::Project,
            _ if s.starts_with('@') => {
                Operand::At(time::parse(&s[1..], now_ms).map_err(HistoryError::Invalid)?)
            }
            _ => match s.parse::<SnapshotId>() {
                Ok(id) => Operand::Snapshot(id),
                Err(()) => Operand::Version(s.to_string()),
            },
        })
    }
}

/// What the operands are about, when the user said (or one operand implies it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// One artifact.
    pub artifact: Option<Location>,
    /// A whole collection or project.
    pub target: Option<SnapshotTarget>,
}

/// A resolved side: one artifact's files (keyed by path inside it), or many artifacts'
/// (keyed by path inside the collection or project).
#[derive(Debug, Clone)]
pub enum Side {
    Artifact(Location, Tree),
    Many(Tree),
}

impl Side {
    fn many(self) -> Tree {
        match self {
            Side::Many(t) => t,
            Side::Artifact(loc, t) => prefixed(&loc, t),
        }
    }
}

fn prefixed(loc: &Location, t: Tree) -> Tree {
    t.into_iter()
        .map(|(k, v)| {
            let p = if k.is_empty() {
                loc.display_path()
            } else {
                format!("{}/{k}", loc.display_path())
            };
            (p, v)
        })
        .collect()
}

fn tree_of(c: Content) -> Tree {
    c.files.into_iter().map(|f| (f.path, f.bytes)).collect()
}

/// Diffs two sides: by path inside the artifact when both are one artifact (shown under
/// the newer side's path), by path inside the collection or project otherwise.
pub fn diff_sides(a: Side, b: Side) -> Vec<FileDiff> {
    match (a, b) {
        (Side::Artifact(_, ta), Side::Artifact(lb, tb)) => {
            diff_trees(&prefixed(&lb, ta), &prefixed(&lb, tb))
        }
        (a, b) => diff_trees(&a.many(), &b.many()),
    }
}

impl History {
    /// Finds the artifact `name` (a name like `review` or a path like `commands/review.md`)
    /// in `project`'s deployments, or else in `collection` (or any collection).
    ///
    /// # Errors
    /// Nothing or more than one artifact matches.
    pub fn locate(
        &self,
        name: &str,
        project: Option<&std::path::Path>,
        collection_name: Option<&str>,
    ) -> Result<Location, HistoryError> {
        let want = name.trim_end_matches('/');
        let matches_name = |n: &str, path: &str| {
            path == want || formats::normalize_name(n) == formats::normalize_name(want)
        };
        let mut found = Vec::new();
        if let Some(p) = project {
            for file in deployment::read_project(p) {
                for r in &file.records {
                    let path = r.artifact_path.to_string_lossy();
                    if matches_name(&r.artifact_name, &path)
                        || format!("{}/{path}", file.root) == want
                    {
                        found.push(Location::project(p, &file.root, &path));
                    }
                }
            }
        } else {
            let names = match collection_name {
                Some(c) => vec![c.to_string()],
                None => collection::list(&self.home),
            };
            for c in names {
                let coll = collection::read(&self.home, &c);
                for a in &coll.artifacts {
                    let path = a.path.to_string_lossy();
                    if matches_name(&a.name, &path) {
                        found.push(Location::collection(&c, &path));
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(HistoryError::NotFound(format!("artifact {name:?}"))),
            _ => Err(HistoryError::Invalid(format!(
                "{name:?} matches {}; give its path or --collection/--project",
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The collection artifact a project artifact was deployed from.
    fn collection_of(&self, loc: &Location) -> Result<Location, HistoryError> {
        let Scope::Project(p) = &loc.scope else {
            return Ok(loc.clone());
        };
        let file = deployment::read_file(p, &loc.root);
        let rec = file
            .records
            .iter()
            .find(|r| r.artifact_path.to_string_lossy() == loc.path)
            .ok_or_else(|| HistoryError::NotFound(format!("deployment record of {loc}")))?;
        let coll = collection::read(&self.home, &rec.from_collection);
        let a = coll
            .find(&rec.artifact_name, &rec.artifact_type)
            .ok_or_else(|| {
                HistoryError::NotFound(format!(
                    "{} in collection {}",
                    rec.artifact_name, rec.from_collection
                ))
            })?;
        Ok(Location::collection(
            &rec.from_collection,
            &a.path.to_string_lossy(),
        ))
    }

    fn on_disk(&self, loc: &Location) -> Result<Tree, HistoryError> {
        match Content::read(&loc.on_disk(&self.home), loc.variant()) {
            Ok(c) => Ok(tree_of(c)),
            Err(HistoryError::Hash(crate::hash::HashError::NotFound { .. })) => Ok(Tree::new()),
            Err(e) => Err(e),
        }
    }

    fn target_on_disk(&self, target: &SnapshotTarget) -> Result<Tree, HistoryError> {
        let mut t = Tree::new();
        for (loc, _) in self.members_on_disk(target)? {
            t.extend(prefixed(&loc, self.on_disk(&loc)?));
        }
        Ok(t)
    }

    fn snapshot_side(&self, id: SnapshotId, subject: &Subject) -> Result<Side, HistoryError> {
        let snap = self.snapshot_record(id)?;
        let members = self.members(&snap)?;
        if let Some(loc) = &subject.artifact {
            let tree = match members.into_iter().find(|v| &v.location == loc) {
                Some(v) => tree_of(self.content_of(&v)?),
                None => Tree::new(),
            };
            return Ok(Side::Artifact(loc.clone(), tree));
        }
        let mut t = Tree::new();
        for v in members {
            let loc = v.location.clone();
            t.extend(prefixed(&loc, tree_of(self.content_of(&v)?)));
        }
        Ok(Side::Many(t))
    }

    /// Resolves one operand about `subject`.
    ///
    /// # Errors
    /// The operand names nothing, or needs an artifact or target that was not given.
    pub fn resolve(&self, op: &Operand, subject: &Subject) -> Result<Side, HistoryError> {
        let need_subject = || {
            HistoryError::Invalid(
                "say which artifact (ARTIFACT with --collection or --project) or which \
                 collection or project this is about"
                    .into(),
            )
        };
        match op {
            Operand::Version(spec) => {
                let v = self.resolve_version(spec)?;
                let loc = v.location.clone();
                Ok(Side::Artifact(loc, tree_of(self.content_of(&v)?)))
            }
            Operand::Snapshot(id) => self.snapshot_side(*id, subject),
            Operand::Collection | Operand::Project => {
                let want_collection = *op == Operand::Collection;
                if let Some(loc) = &subject.artifact {
                    let loc = if want_collection {
                        self.collection_of(loc)?
                    } else if matches!(loc.scope, Scope::Project(_)) {
                        loc.clone()
                    } else {
                        return Err(HistoryError::Invalid(
                            "`project` needs --project with the artifact".into(),
                        ));
                    };
                    let tree = self.on_disk(&loc)?;
                    return Ok(Side::Artifact(loc, tree));
                }
                match &subject.target {
                    Some(t @ SnapshotTarget::Collection(_)) if want_collection => {
                        Ok(Side::Many(self.target_on_disk(t)?))
                    }
                    Some(t @ SnapshotTarget::Project(_)) if !want_collection => {
                        Ok(Side::Many(self.target_on_disk(t)?))
                    }
                    _ => Err(need_subject()),
                }
            }
            Operand::At(ms) => {
                if let Some(loc) = &subject.artifact {
                    let v = self
                        .versions_of(loc)?
                        .into_iter()
                        .find(|v| v.time_ms <= *ms)
                        .ok_or_else(|| {
                            HistoryError::NotFound(format!(
                                "a version of {loc} at or before {}",
                                time::format(*ms)
                            ))
                        })?;
                    return Ok(Side::Artifact(loc.clone(), tree_of(self.content_of(&v)?)));
                }
                let target = subject.target.as_ref().ok_or_else(need_subject)?;
                let (page, _) = self.snapshots_all(target)?;
                let snap = page.into_iter().find(|s| s.time_ms <= *ms).ok_or_else(|| {
                    HistoryError::NotFound(format!(
                        "a snapshot of {target} at or before {}",
                        time::format(*ms)
                    ))
                })?;
                self.snapshot_side(snap.id, subject)
            }
        }
    }

    fn snapshots_all(
        &self,
        target: &SnapshotTarget,
    ) -> Result<(Vec<super::Snapshot>, Option<SnapshotId>), HistoryError> {
        let mut all: Vec<_> = self
            .store()
            .all_snapshots()?
            .into_iter()
            .filter(|s| &s.target == target)
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse((s.time_ms, s.id)));
        Ok((all, None))
    }

    /// `smctl diff A B`: fills in the subject from the operands where the user did not
    /// (a version names its artifact, a snapshot its target), then diffs.
    ///
    /// # Errors
    /// As [`History::resolve`].
    pub fn diff(
        &self,
        a: &Operand,
        b: &Operand,
        mut subject: Subject,
    ) -> Result<Vec<FileDiff>, HistoryError> {
        for op in [a, b] {
            match op {
                Operand::Version(spec) if subject.artifact.is_none() => {
                    subject.artifact = Some(self.resolve_version(spec)?.location);
                }
                Operand::Snapshot(id) if subject.target.is_none() => {
                    subject.target = Some(self.snapshot_record(*id)?.target);
                }
                _ => {}
            }
        }
        // A project artifact named by a version also gives its project.
        if subject.target.is_none()
            && let Some(Location {
                scope: Scope::Project(p),
                ..
            }) = &subject.artifact
        {
            subject.target = Some(SnapshotTarget::Project(PathBuf::from(p)));
        }
        let sa = self.resolve(a, &subject)?;
        let sb = self.resolve(b, &subject)?;
        Ok(diff_sides(sa, sb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(items: &[(&str, &[u8])]) -> Tree {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn text_binary_added_removed() {
        let a = tree(&[
            ("same", b"x\n"),
            ("doc.md", b"one\ntwo\nthree\n"),
            ("gone", b"bye\n"),
            ("img", b"\0\x01"),
        ]);
        let b = tree(&[
            ("same", b"x\n"),
            ("doc.md", b"one\n2\nthree\n"),
            ("new", b"hi\n"),
            ("img", b"\0\x02"),
        ]);
        let d = diff_trees(&a, &b);
        let names: Vec<(&str, &str)> = d
            .iter()
            .map(|f| (f.path.as_str(), f.status.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("doc.md", "modified"),
                ("gone", "removed"),
                ("img", "modified"),
                ("new", "added")
            ]
        );
        assert!(d[0].unified.contains("-two\n+2\n"), "{}", d[0].unified);
        assert!(d[0].unified.starts_with("--- a/doc.md\n+++ b/doc.md\n"));
        assert_eq!((d[0].lines_added, d[0].lines_removed), (1, 1));
        assert_eq!(d[0].hunks[0].lines, [" one", "-two", "+2", " three"]);
        assert!(d[2].binary && d[2].unified.is_empty());
        assert!(d[3].unified.starts_with("--- /dev/null\n+++ b/new\n"));
    }

    #[test]
    fn operands_parse() {
        assert_eq!(
            Operand::parse("s4", 0).unwrap(),
            Operand::Snapshot(SnapshotId(4))
        );
        assert_eq!(
            Operand::parse("v4", 0).unwrap(),
            Operand::Version("v4".into())
        );
        assert_eq!(Operand::parse("project", 0).unwrap(), Operand::Project);
        assert_eq!(
            Operand::parse("@1h", 7_200_000).unwrap(),
            Operand::At(3_600_000)
        );
        assert!(Operand::parse("@soon", 0).is_err());
    }
}

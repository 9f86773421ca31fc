//! What the editor shows about an artifact: diagnostic messages and severities, the line
//! range of the first change, the lines of records in a deployment file, and hover text.
//!
//! Pure functions over the daemon's answers and the document text; the backend calls them.
//!
//! Severity per drift kind (the `source` is always `skillmeat`):
//!
//! | drift | severity | why |
//! |---|---|---|
//! | `error` | Error | a side cannot be read: the drift is unknown |
//! | `conflict` | Warning | both sides changed: a merge is needed |
//! | `removed` | Warning | the collection no longer has the artifact |
//! | `missing` | Warning | the deployed copy is gone (shown on the deployment file) |
//! | `modified` | Information | a local edit not pushed yet |
//! | `outdated` | Information | the collection has a newer copy |
//!
//! `in_sync` and `added` (in the collection, not deployed) get no diagnostic.

use tower_lsp_server::ls_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Position, Range};

use skillmeatd_proto::{DriftKind, pb};

use super::model::{Side, kind};
use crate::output::drift_name;

/// The diagnostics' `source`.
pub const SOURCE: &str = "skillmeat";

/// The severity of a drift kind; `None` for kinds that are not reported.
pub fn severity(kind: DriftKind) -> Option<DiagnosticSeverity> {
    use DriftKind as D;
    match kind {
        D::Error => Some(DiagnosticSeverity::ERROR),
        D::Conflict | D::Removed | D::Missing => Some(DiagnosticSeverity::WARNING),
        D::Modified | D::Outdated => Some(DiagnosticSeverity::INFORMATION),
        D::InSync | D::Added => None,
    }
}

/// What the drift means, in words.
fn explanation(a: &pb::ArtifactDrift) -> String {
    use DriftKind as D;
    let Some(k) = kind(a) else {
        return "unknown".into();
    };
    match k {
        D::Modified => "the project copy changed since it was deployed".into(),
        D::Outdated => "the collection copy changed since it was deployed".into(),
        D::Conflict => {
            "the project copy and the collection copy both changed since it was deployed".into()
        }
        D::Removed => format!("no longer in collection {}", a.collection),
        D::Missing => "the deployed copy is gone from the project".into(),
        D::Error => format!("cannot be checked: {}", a.error),
        D::Added => "in the collection, not deployed to this project".into(),
        D::InSync => "in sync".into(),
    }
}

/// The diagnostic message: `review-skill: modified — the project copy changed since it
/// was deployed (push_to_collection)`. On a collection file the deployment is named.
pub fn message(a: &pb::ArtifactDrift, side: Side) -> String {
    let mut m = a.name.clone();
    if side == Side::Collection {
        m += &format!(" in {}/{}", a.project, a.profile_root);
    }
    m += &format!(": {} — {}", drift_name(a.drift_type), explanation(a));
    if !a.recommendation.is_empty() && a.recommendation != "none" {
        m += &format!(" ({})", a.recommendation);
    }
    m
}

/// Length of line `line` (0-based) of `text` in UTF-16 code units, as LSP counts.
fn line_len(text: &str, line: u32) -> u32 {
    text.lines()
        .nth(line as usize)
        .map_or(0, |l| l.encode_utf16().count() as u32)
}

/// A range covering the whole lines `first..=last` (0-based) of `text`, clamped to it.
pub fn lines_range(text: &str, first: u32, last: u32) -> Range {
    let count = text.lines().count().max(1) as u32;
    let first = first.min(count - 1);
    let last = last.clamp(first, count - 1);
    Range::new(
        Position::new(first, 0),
        Position::new(last, line_len(text, last)),
    )
}

/// One diagnostic about `a` over `range`.
pub fn diagnostic(a: &pb::ArtifactDrift, side: Side, range: Range) -> Option<Diagnostic> {
    Some(Diagnostic {
        range,
        severity: Some(severity(kind(a)?)?),
        code: Some(NumberOrString::String(drift_name(a.drift_type).to_string())),
        source: Some(SOURCE.to_string()),
        message: message(a, side),
        ..Default::default()
    })
}

/// The lines (0-based, inclusive) of the first change in a unified diff, on its new side
/// (`+`): the first run of changed lines. A change that only removes lines marks the line
/// where they were.
pub fn first_change(hunks: &[pb::DiffHunk]) -> Option<(u32, u32)> {
    let hunk = hunks.first()?;
    let mut line = new_start(&hunk.header)?.max(1) - 1;
    let mut start: Option<u32> = None;
    let mut end: Option<u32> = None;
    for l in &hunk.lines {
        match (l.as_bytes().first(), start) {
            (Some(b'+'), _) => {
                start.get_or_insert(line);
                end = Some(line);
                line += 1;
            }
            (Some(b'-'), _) => {
                start.get_or_insert(line);
            }
            (_, Some(s)) => return Some((s, end.unwrap_or(s))),
            (_, None) => line += 1,
        }
    }
    start.map(|s| (s, end.unwrap_or(s)))
}

/// The start line (1-based) of a hunk's new side: `@@ -a,b +c,d @@` gives `c`.
fn new_start(header: &str) -> Option<u32> {
    let plus = header.split_whitespace().find(|w| w.starts_with('+'))?;
    plus[1..].split(',').next()?.parse().ok()
}

/// Picks, among the files of a diff, the one for the file at `inner` inside the artifact:
/// the only file for a single-file artifact, else the file whose path is the shortest one
/// ending in `/inner` (the artifact's own prefix, not a sub-folder's).
pub fn file_for<'a>(files: &'a [pb::FileDiff], inner: &str) -> Option<&'a pb::FileDiff> {
    if inner.is_empty() {
        return (files.len() == 1).then(|| &files[0]);
    }
    let suffix = format!("/{inner}");
    files
        .iter()
        .filter(|f| f.path.ends_with(&suffix) || f.path == inner)
        .min_by_key(|f| f.path.len())
}

/// A record of a deployment file and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLine {
    /// 0-based line of the record's `[[deployed]]` header (or inline table).
    pub line: u32,
    pub artifact_path: String,
    pub artifact_name: String,
    pub artifact_type: String,
}

/// The records of a deployment file's text, with their lines. A text that is not valid
/// TOML gives none (the daemon reports the file as invalid).
pub fn record_lines(text: &str) -> Vec<RecordLine> {
    let Ok(doc) = toml_edit::Document::parse(text) else {
        return Vec::new();
    };
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() as u32;
    let field = |get: &dyn Fn(&str) -> Option<String>, k: &str| get(k).unwrap_or_default();
    let mut out = Vec::new();
    match doc.get("deployed") {
        Some(toml_edit::Item::ArrayOfTables(tables)) => {
            for t in tables.iter() {
                let get = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
                out.push(RecordLine {
                    line: t.span().map_or(0, |s| line_of(s.start)),
                    artifact_path: field(&get, "artifact_path"),
                    artifact_name: field(&get, "artifact_name"),
                    artifact_type: field(&get, "artifact_type"),
                });
            }
        }
        Some(toml_edit::Item::Value(toml_edit::Value::Array(items))) => {
            for v in items.iter() {
                let Some(t) = v.as_inline_table() else {
                    continue;
                };
                let get = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
                out.push(RecordLine {
                    line: v.span().map_or(0, |s| line_of(s.start)),
                    artifact_path: field(&get, "artifact_path"),
                    artifact_name: field(&get, "artifact_name"),
                    artifact_type: field(&get, "artifact_type"),
                });
            }
        }
        _ => {}
    }
    out
}

/// The record line of `a` among `lines`: by artifact path, else by name and type.
pub fn line_of_record(lines: &[RecordLine], a: &pb::ArtifactDrift) -> Option<u32> {
    lines
        .iter()
        .find(|r| r.artifact_path == a.artifact_path)
        .or_else(|| {
            lines
                .iter()
                .find(|r| r.artifact_name == a.name && r.artifact_type == a.artifact_type)
        })
        .map(|r| r.line)
}

fn short(sha: Option<&String>) -> String {
    sha.map_or_else(
        || "—".to_string(),
        |s| format!("`{}`", &s[..s.len().min(12)]),
    )
}

/// The newest recorded versions of a project copy and a collection copy, for hover.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    pub project: Option<pb::VersionInfo>,
    pub collection: Option<pb::VersionInfo>,
    /// The version whose content is the deployed one (the deployment's base).
    pub deployed: Option<pb::VersionInfo>,
}

fn version_line(v: Option<&pb::VersionInfo>) -> String {
    v.map_or_else(
        || "none recorded".to_string(),
        |v| format!("{} ({}, {})", v.id, v.time, v.origin),
    )
}

/// Hover text (Markdown) about `a` seen from its `side`.
pub fn hover(a: &pb::ArtifactDrift, side: Side, versions: &Versions) -> String {
    let mut s = format!(
        "**{}** ({}) — **{}**\n\n",
        a.name,
        a.artifact_type,
        drift_name(a.drift_type)
    );
    if kind(a) != Some(DriftKind::InSync) {
        s += &format!("{}\n\n", message(a, side));
    }
    if a.profile_root.is_empty() {
        s += &format!(
            "Collection `{}`; not deployed to {}\n\n",
            a.collection, a.project
        );
    } else {
        s += &format!(
            "Deployed to `{}/{}` from collection `{}`\n\n",
            a.project, a.profile_root, a.collection
        );
    }
    s += &format!(
        "| | hash | version |\n|---|---|---|\n| deployed | {} | {} |\n| collection | {} | {} |\n| project | {} | {} |\n\n",
        short(a.deployed_sha.as_ref()),
        versions.deployed.as_ref().map_or("—", |v| v.id.as_str()),
        short(a.collection_sha.as_ref()),
        a.collection_version.as_deref().unwrap_or("—"),
        short(a.project_sha.as_ref()),
        a.project_version.as_deref().unwrap_or("—"),
    );
    if let Some(t) = &a.last_deployed {
        s += &format!("Deployed at {t}\n\n");
    }
    s += &format!(
        "Latest versions: project {}; collection {}",
        version_line(versions.project.as_ref()),
        version_line(versions.collection.as_ref())
    );
    if !a.error.is_empty() {
        s += &format!("\n\nError: {}", a.error);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modified() -> pb::ArtifactDrift {
        pb::ArtifactDrift {
            project: "/p".into(),
            profile_root: ".claude".into(),
            name: "review-skill".into(),
            artifact_type: "skill".into(),
            drift_type: pb::DriftType::Modified as i32,
            recommendation: "push_to_collection".into(),
            collection: "default".into(),
            artifact_path: "skills/review-skill".into(),
            deployed_sha: Some("a".repeat(64)),
            ..Default::default()
        }
    }

    #[test]
    fn message_names_artifact_drift_and_fix() {
        assert_eq!(
            message(&modified(), Side::Project),
            "review-skill: modified — the project copy changed since it was deployed (push_to_collection)"
        );
        assert!(
            message(&modified(), Side::Collection)
                .starts_with("review-skill in /p/.claude: modified")
        );
    }

    #[test]
    fn severities_follow_the_table() {
        use DriftKind as D;
        assert_eq!(severity(D::Error), Some(DiagnosticSeverity::ERROR));
        assert_eq!(severity(D::Conflict), Some(DiagnosticSeverity::WARNING));
        assert_eq!(severity(D::Missing), Some(DiagnosticSeverity::WARNING));
        assert_eq!(severity(D::Outdated), Some(DiagnosticSeverity::INFORMATION));
        assert_eq!(severity(D::InSync), None);
        assert_eq!(severity(D::Added), None);
        let mut a = modified();
        a.drift_type = D::InSync.into();
        assert!(diagnostic(&a, Side::Project, Range::default()).is_none());
    }

    fn hunk(header: &str, lines: &[&str]) -> pb::DiffHunk {
        pb::DiffHunk {
            header: header.into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn first_change_skips_context_and_spans_the_run() {
        let h = hunk(
            "@@ -2,6 +2,7 @@",
            &[" a", " b", " c", "-old", "+new", "+more", " d"],
        );
        assert_eq!(first_change(&[h]), Some((4, 5)));
    }

    #[test]
    fn a_pure_deletion_marks_where_it_was() {
        let h = hunk("@@ -1,4 +1,3 @@", &[" a", "-gone", " b", " c"]);
        assert_eq!(first_change(&[h]), Some((1, 1)));
        let top = hunk("@@ -1,2 +0,0 @@", &["-x", "-y"]);
        assert_eq!(first_change(&[top]), Some((0, 0)));
        assert_eq!(first_change(&[]), None);
    }

    #[test]
    fn lines_range_is_clamped_to_the_text() {
        let r = lines_range("ab\ncdé\n", 1, 9);
        assert_eq!(r, Range::new(Position::new(1, 0), Position::new(1, 3)));
        let empty = lines_range("", 3, 3);
        assert_eq!(empty, Range::new(Position::new(0, 0), Position::new(0, 0)));
    }

    #[test]
    fn the_file_of_a_folder_artifact_is_the_shortest_match() {
        let f = |p: &str| pb::FileDiff {
            path: p.into(),
            ..Default::default()
        };
        let files = vec![f("skills/x/refs/SKILL.md"), f("skills/x/SKILL.md")];
        assert_eq!(
            file_for(&files, "SKILL.md").unwrap().path,
            "skills/x/SKILL.md"
        );
        assert!(file_for(&files, "other.md").is_none());
        assert_eq!(
            file_for(&files[..1], "").unwrap().path,
            "skills/x/refs/SKILL.md"
        );
        assert!(file_for(&files, "").is_none());
    }

    #[test]
    fn record_lines_in_both_toml_forms() {
        let text = "[[deployed]]\nartifact_name = \"a\"\nartifact_type = \"skill\"\nartifact_path = \"skills/a\"\n\n[[deployed]]\nartifact_name = \"b\"\nartifact_type = \"command\"\nartifact_path = \"commands/b.md\"\n";
        let lines = record_lines(text);
        assert_eq!(lines.iter().map(|r| r.line).collect::<Vec<_>>(), vec![0, 5]);
        let mut b = modified();
        b.name = "b".into();
        b.artifact_type = "command".into();
        b.artifact_path = "commands/b.md".into();
        assert_eq!(line_of_record(&lines, &b), Some(5));
        let inline =
            "deployed = [\n    { artifact_name = \"a\", artifact_path = \"skills/a\" },\n]\n";
        assert_eq!(record_lines(inline)[0].line, 1);
        assert!(record_lines("not [ toml").is_empty());
    }

    #[test]
    fn hover_has_hashes_versions_and_time() {
        let mut a = modified();
        a.last_deployed = Some("2026-03-13T15:13:08Z".into());
        let v = Versions {
            project: Some(pb::VersionInfo {
                id: "v7".into(),
                time: "2026-03-14T00:00:00Z".into(),
                origin: "watch".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let h = hover(&a, Side::Project, &v);
        for want in [
            "review-skill",
            "modified",
            "`aaaaaaaaaaaa`",
            "2026-03-13T15:13:08Z",
            "v7",
        ] {
            assert!(h.contains(want), "{want}: {h}");
        }
    }
}

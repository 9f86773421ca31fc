//! How smctl prints answers: aligned tables for people, JSON with stable field names for
//! programs.
//!
//! `drift --format json` prints exactly the schema of `skillmeat sync-check --format json`
//! (`drift_detected`, `drift_count`, `artifacts[]` with `name`, `type`, `drift_type`,
//! `collection_sha`, `project_sha`, `collection_version`, `project_version`,
//! `last_deployed`, `recommendation`), adding `project` when several projects are shown and,
//! always, `profile_root`, `deployed_sha`, `collection` and `artifact_path`; `error` when a
//! side could not be read; and a top-level `problems` list. Scripts written for SkillMeat
//! keep working.

use std::io::{self, Write};

use serde_json::{Value, json};
use skillmeatd_proto::{DriftKind, pb};

/// The two ways of printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// The `drift_type` string of a protocol drift type (`unknown` for one this smctl does not
/// know).
pub fn drift_name(t: i32) -> &'static str {
    DriftKind::from_wire(t).map_or("unknown", DriftKind::as_str)
}

fn source_name(s: i32) -> &'static str {
    match pb::ProjectSource::try_from(s).unwrap_or(pb::ProjectSource::Unspecified) {
        pb::ProjectSource::Unspecified => "unknown",
        pb::ProjectSource::Manual => "manual",
        pb::ProjectSource::Registry => "registry",
        pb::ProjectSource::Scan => "scan",
    }
}

/// Whether an artifact has drifted: anything but in sync (an unknown kind counts).
pub fn is_drifted(a: &pb::ArtifactDrift) -> bool {
    DriftKind::from_wire(a.drift_type) != Some(DriftKind::InSync)
}

/// Writes one compact JSON object and a newline, flushed (NDJSON).
pub fn ndjson(out: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)?;
    out.flush()
}

fn json_line(out: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

/// Prints rows as left-aligned columns under a header.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> io::Result<()> {
        let n = cells.len();
        for (i, (c, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                write!(out, "{c}")?;
            } else {
                write!(out, "{c:<w$}  ")?;
            }
        }
        writeln!(out)
    };
    line(out, header.to_vec())?;
    for r in rows {
        line(out, r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// Warns on stderr about every problem the daemon met.
pub fn problems(problems: &[pb::Problem]) {
    for p in problems {
        eprintln!("warning: {}: {}", p.path, p.message);
    }
}

fn problems_json(problems: &[pb::Problem]) -> Value {
    Value::Array(
        problems
            .iter()
            .map(|p| json!({"path": p.path, "message": p.message, "project": (!p.project.is_empty()).then_some(&p.project)}))
            .collect(),
    )
}

/// One artifact in `sync-check`'s schema plus our fields (`project` when asked).
pub fn artifact_json(a: &pb::ArtifactDrift, with_project: bool) -> Value {
    let mut v = json!({
        "name": a.name,
        "type": a.artifact_type,
        "drift_type": drift_name(a.drift_type),
        "collection_sha": a.collection_sha,
        "project_sha": a.project_sha,
        "collection_version": a.collection_version,
        "project_version": a.project_version,
        "last_deployed": a.last_deployed,
        "recommendation": a.recommendation,
    });
    let m = v.as_object_mut().expect("an object");
    if with_project {
        m.insert("project".into(), json!(a.project));
    }
    m.insert("profile_root".into(), json!(a.profile_root));
    m.insert("deployed_sha".into(), json!(a.deployed_sha));
    m.insert("collection".into(), json!(a.collection));
    m.insert("artifact_path".into(), json!(a.artifact_path));
    if !a.error.is_empty() {
        m.insert("error".into(), json!(a.error));
    }
    v
}

/// Prints a drift answer; returns whether anything drifted.
pub fn drift(
    out: &mut impl Write,
    format: Format,
    r: &pb::GetDriftResponse,
    several: bool,
) -> io::Result<bool> {
    let drifted: Vec<&pb::ArtifactDrift> = r.artifacts.iter().filter(|a| is_drifted(a)).collect();
    let any = !drifted.is_empty();
    match format {
        Format::Json => {
            let artifacts: Vec<Value> = r
                .artifacts
                .iter()
                .map(|a| artifact_json(a, several))
                .collect();
            json_line(
                out,
                &json!({
                    "drift_detected": any,
                    "drift_count": drifted.len(),
                    "artifacts": artifacts,
                    "problems": problems_json(&r.problems),
                }),
            )?;
        }
        Format::Table => {
            if r.artifacts.is_empty() {
                writeln!(
                    out,
                    "No drift: every deployed artifact matches its collection."
                )?;
                return Ok(any);
            }
            let mut header = vec![];
            if several {
                header.push("PROJECT");
            }
            header.extend(["ROOT", "TYPE", "NAME", "DRIFT", "RECOMMENDATION"]);
            let rows: Vec<Vec<String>> = r
                .artifacts
                .iter()
                .map(|a| {
                    let mut row = vec![];
                    if several {
                        row.push(a.project.clone());
                    }
                    let root = if a.profile_root.is_empty() {
                        "-".to_string()
                    } else {
                        a.profile_root.clone()
                    };
                    let mut drift = drift_name(a.drift_type).to_string();
                    if !a.error.is_empty() {
                        drift = format!("{drift} ({})", a.error);
                    }
                    row.extend([
                        root,
                        a.artifact_type.clone(),
                        a.name.clone(),
                        drift,
                        a.recommendation.clone(),
                    ]);
                    row
                })
                .collect();
            table(out, &header, &rows)?;
            writeln!(
                out,
                "\n{} drifted of {} listed.",
                drifted.len(),
                r.artifacts.len()
            )?;
        }
    }
    Ok(any)
}

/// The order a project's drift is summed up in a table: what needs a decision first.
const SUMMARY_ORDER: [DriftKind; 7] = [
    DriftKind::Modified,
    DriftKind::Outdated,
    DriftKind::Conflict,
    DriftKind::Missing,
    DriftKind::Removed,
    DriftKind::Error,
    DriftKind::Added,
];

fn summary_text(d: &pb::DriftSummary) -> String {
    let parts: Vec<String> = SUMMARY_ORDER
        .into_iter()
        .filter(|&k| d.count(k) > 0)
        .map(|k| format!("{} {k}", d.count(k)))
        .collect();
    if parts.is_empty() {
        "in sync".into()
    } else {
        parts.join(", ")
    }
}

/// Prints projects.
pub fn projects(
    out: &mut impl Write,
    format: Format,
    projects: &[pb::ProjectInfo],
) -> io::Result<()> {
    match format {
        Format::Json => {
            let list: Vec<Value> = projects
                .iter()
                .map(|p| {
                    let d = p.drift.unwrap_or_default();
                    let drift: serde_json::Map<String, Value> = DriftKind::ALL
                        .into_iter()
                        .map(|k| (k.as_str().to_string(), json!(d.count(k))))
                        .collect();
                    json!({
                        "path": p.path,
                        "found_by": p.sources.iter().map(|&s| source_name(s)).collect::<Vec<_>>(),
                        "missing": p.missing,
                        "ignored": p.ignored,
                        "profile_roots": p.profile_roots,
                        "deployments": p.deployments,
                        "drift": drift,
                    })
                })
                .collect();
            json_line(out, &json!({ "projects": list }))
        }
        Format::Table => {
            if projects.is_empty() {
                return writeln!(
                    out,
                    "No projects known. Deploy with SkillMeat, or run `smctl project add PATH`."
                );
            }
            let rows: Vec<Vec<String>> = projects
                .iter()
                .map(|p| {
                    let state = if p.missing {
                        "missing folder".to_string()
                    } else if p.ignored {
                        "ignored".to_string()
                    } else {
                        summary_text(&p.drift.unwrap_or_default())
                    };
                    vec![
                        p.path.clone(),
                        p.sources
                            .iter()
                            .map(|&s| source_name(s))
                            .collect::<Vec<_>>()
                            .join("+"),
                        if p.profile_roots.is_empty() {
                            "-".into()
                        } else {
                            p.profile_roots.join(",")
                        },
                        p.deployments.to_string(),
                        state,
                    ]
                })
                .collect();
            table(
                out,
                &["PROJECT", "FOUND BY", "ROOTS", "DEPLOYED", "DRIFT"],
                &rows,
            )
        }
    }
}

/// Prints the daemon's status.
pub fn status(out: &mut impl Write, format: Format, s: &pb::StatusResponse) -> io::Result<()> {
    match format {
        Format::Json => json_line(
            out,
            &json!({
                "daemon_version": s.daemon_version,
                "protocol_version": s.protocol_version,
                "pid": s.pid,
                "uptime_seconds": s.uptime_seconds,
                "socket": s.socket_path,
                "state_dir": s.state_dir,
                "skillmeat_home": s.skillmeat_home,
                "collections": s.collections,
                "projects": s.projects,
                "artifacts": s.artifacts,
                "files_indexed": s.files_indexed,
                "files_read": s.files_read,
                "watched_roots": s.watched_roots,
                "polled_roots": s.polled_roots.iter().map(|p| json!({"path": p.path, "reason": p.reason})).collect::<Vec<_>>(),
                "cursor": s.cursor,
                "journal_first_cursor": s.journal_first_cursor,
                "journal_events": s.journal_events,
                "store_bytes": s.store_bytes,
                "inotify_watches": s.inotify_watches,
                "problems": problems_json(&s.problems),
                "store": s.store.as_ref().map(|st| json!({
                    "condition": st.condition,
                    "detail": st.detail,
                    "path": st.path,
                    "moved": st.moved.iter().map(|m| json!({
                        "path": m.path,
                        "reason": m.reason,
                        "time_ms": m.time_ms,
                        "salvaged": m.salvaged,
                        "unsaved": m.unsaved,
                    })).collect::<Vec<_>>(),
                    "damaged_blobs": st.damaged_blobs,
                })),
                "history": s.history.map(|h| json!({
                    "store_bytes": h.store_bytes,
                    "logical_bytes": h.logical_bytes,
                    "unique_compressed_bytes": h.unique_compressed_bytes,
                    "versions": h.versions,
                    "snapshots": h.snapshots,
                    "blobs": h.blobs,
                })),
            }),
        ),
        Format::Table => {
            let rows = [
                (
                    "daemon",
                    format!("skillmeatd {} (pid {})", s.daemon_version, s.pid),
                ),
                ("protocol", s.protocol_version.to_string()),
                ("uptime", format!("{}s", s.uptime_seconds)),
                ("socket", s.socket_path.clone()),
                ("state dir", s.state_dir.clone()),
                ("skillmeat home", s.skillmeat_home.clone()),
                ("collections", s.collections.to_string()),
                ("projects", s.projects.to_string()),
                ("artifacts", s.artifacts.to_string()),
                ("files indexed", s.files_indexed.to_string()),
                ("files read", s.files_read.to_string()),
                (
                    "watched roots",
                    format!("{} ({} polled)", s.watched_roots, s.polled_roots.len()),
                ),
                (
                    "events",
                    format!(
                        "cursor {} (journal keeps {} from #{})",
                        s.cursor, s.journal_events, s.journal_first_cursor
                    ),
                ),
            ];
            for (k, v) in rows {
                writeln!(out, "{:<15} {v}", format!("{k}:"))?;
            }
            if let Some(h) = s.history {
                writeln!(
                    out,
                    "history:        {} versions, {} snapshots, {} blobs; {} logical, {} unique compressed, {} store on disk",
                    h.versions,
                    h.snapshots,
                    h.blobs,
                    h.logical_bytes,
                    h.unique_compressed_bytes,
                    h.store_bytes
                )?;
            }
            if let Some(st) = &s.store {
                let detail = if st.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", st.detail)
                };
                writeln!(
                    out,
                    "store:          {} ({}){detail}",
                    st.condition, st.path
                )?;
                for m in &st.moved {
                    writeln!(
                        out,
                        "damaged store:  {} ({}); salvaged {}; {} not saved",
                        m.path,
                        m.reason,
                        m.salvaged,
                        m.unsaved.len()
                    )?;
                }
            }
            for p in &s.polled_roots {
                writeln!(out, "polled:         {}: {}", p.path, p.reason)?;
            }
            for p in &s.problems {
                writeln!(out, "problem:        {}: {}", p.path, p.message)?;
            }
            Ok(())
        }
    }
}

/// Confirms a change.
pub fn done(out: &mut impl Write, format: Format, what: &str, path: &str) -> io::Result<()> {
    match format {
        Format::Json => json_line(out, &json!({ "status": what, "path": path })),
        Format::Table => writeln!(out, "{what} {path}"),
    }
}

//! `smctl watch`: drift events as they happen, one line each.
//!
//! Text for people; `--format json` prints NDJSON, one object per line, flushed as it comes
//! — the bridge for editor plugins that cannot speak gRPC over a Unix socket. Every object
//! has a `type`: `event` (the fields of `DriftEvent`, snake_case), `resync` (replace all you
//! knew with `artifacts`, continue after `cursor`) or `heartbeat` (the latest `cursor`).
//! Resume after a restart with `--since CURSOR`.

use std::io::Write;

use serde_json::{Value, json};

use crate::output::{Format, artifact_json, drift_name, ndjson};
use crate::pb;

fn kind_name(k: i32) -> &'static str {
    match pb::EventKind::try_from(k).unwrap_or(pb::EventKind::Unspecified) {
        pb::EventKind::Unspecified => "unknown",
        pb::EventKind::DriftChanged => "drift_changed",
        pb::EventKind::HashChanged => "hash_changed",
        pb::EventKind::DeploymentAdded => "deployment_added",
        pb::EventKind::DeploymentRemoved => "deployment_removed",
        pb::EventKind::Unreadable => "unreadable",
        pb::EventKind::InvalidFile => "invalid_file",
        pb::EventKind::RootPolling => "root_polling",
    }
}

fn side_name(k: i32) -> &'static str {
    match pb::ChangedSide::try_from(k).unwrap_or(pb::ChangedSide::Unspecified) {
        pb::ChangedSide::Unspecified | pb::ChangedSide::None => "none",
        pb::ChangedSide::Collection => "collection",
        pb::ChangedSide::Project => "project",
        pb::ChangedSide::Both => "both",
        pb::ChangedSide::Record => "record",
    }
}

fn opt_drift(t: i32) -> Option<&'static str> {
    (t != pb::DriftType::Unspecified as i32).then(|| drift_name(t))
}

/// The NDJSON object of an event.
pub fn event_json(e: &pb::DriftEvent) -> Value {
    json!({
        "type": "event",
        "cursor": e.cursor,
        "time_unix_ms": e.time_unix_ms,
        "kind": kind_name(e.kind),
        "project": e.project,
        "profile_root": e.profile_root,
        "name": e.name,
        "artifact_type": e.artifact_type,
        "old_drift": opt_drift(e.old_drift),
        "new_drift": opt_drift(e.new_drift),
        "deployed_sha": e.deployed_sha,
        "collection_sha": e.collection_sha,
        "project_sha": e.project_sha,
        "recommendation": e.recommendation,
        "changed_side": side_name(e.changed_side),
        "message": e.message,
        "operation": e.operation,
    })
}

fn event_line(e: &pb::DriftEvent) -> String {
    let what = match (opt_drift(e.old_drift), opt_drift(e.new_drift)) {
        (Some(a), Some(b)) if a != b => format!("{a} -> {b}"),
        (_, Some(b)) => b.to_string(),
        (Some(a), None) => format!("{a} -> gone"),
        (None, None) => String::new(),
    };
    let mut line = format!("#{} {:<18}", e.cursor, kind_name(e.kind));
    if !e.name.is_empty() {
        line += &format!(" {} {} {what}", e.artifact_type, e.name);
    }
    if !e.project.is_empty() {
        line += &format!("  {}", e.project);
        if !e.profile_root.is_empty() {
            line += &format!("/{}", e.profile_root);
        }
    }
    let side = side_name(e.changed_side);
    if side != "none" {
        line += &format!("  [{side} changed]");
    }
    if !e.recommendation.is_empty() && e.recommendation != "none" {
        line += &format!("  -> {}", e.recommendation);
    }
    if !e.message.is_empty() {
        line += &format!("  ({})", e.message);
    }
    line
}

/// Prints one stream message; returns the cursor it carries.
pub fn print(
    out: &mut impl Write,
    format: Format,
    msg: &pb::watch_response::Message,
) -> std::io::Result<u64> {
    use pb::watch_response::Message;
    match msg {
        Message::Event(e) => {
            match format {
                Format::Json => ndjson(out, &event_json(e))?,
                Format::Table => {
                    writeln!(out, "{}", event_line(e))?;
                    out.flush()?;
                }
            }
            Ok(e.cursor)
        }
        Message::Resync(r) => {
            match format {
                Format::Json => ndjson(
                    out,
                    &json!({
                        "type": "resync",
                        "cursor": r.cursor,
                        "reason": r.reason,
                        "artifacts": r.artifacts.iter().map(|a| artifact_json(a, true)).collect::<Vec<_>>(),
                    }),
                )?,
                Format::Table => {
                    let drifted = r
                        .artifacts
                        .iter()
                        .filter(|a| a.drift_type != pb::DriftType::InSync as i32)
                        .count();
                    writeln!(
                        out,
                        "-- resync ({}): {} artifacts, {drifted} drifted; continuing after #{}",
                        r.reason,
                        r.artifacts.len(),
                        r.cursor
                    )?;
                    out.flush()?;
                }
            }
            Ok(r.cursor)
        }
        Message::Heartbeat(h) => {
            if format == Format::Json {
                ndjson(out, &json!({"type": "heartbeat", "cursor": h.cursor}))?;
            }
            Ok(h.cursor)
        }
    }
}

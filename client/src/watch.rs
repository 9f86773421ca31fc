//! `smctl watch`: drift events as they happen, one line each.
//!
//! Text for people; `--format json` prints NDJSON, one object per line, flushed as it comes
//! — the bridge for editor plugins that cannot speak gRPC over a Unix socket. Every object
//! has a `type`: `event` (the fields of `DriftEvent`, snake_case), `resync` (replace all you
//! knew with `artifacts`, continue after `cursor`), `heartbeat` (the latest `cursor`) or,
//! last, `closed` (the daemon went away; `reason` says how). Resume after a restart with
//! `--since CURSOR`. Filters: `--project`, `--type`, and `--drift` (the drift kinds of the
//! wire crate).
//!
//! The stream only ends when asked to (`--count`); when the daemon goes away instead, smctl
//! says so on stderr and exits 3, so a plugin can tell a stopped daemon from a normal end.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use clap::builder::PossibleValue;
use serde_json::{Value, json};
use skillmeatd_proto::{DriftKind, pb};

use crate::cli::{Freshness, absolute};
use crate::failure::{Failure, daemon_went_away, describe};
use crate::output::{Format, artifact_json, drift_name, is_drifted, ndjson};
use crate::session::Client;

/// `smctl watch` arguments.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Replay events after this cursor first (resume); default: live events only.
    #[arg(long, value_name = "CURSOR")]
    pub since: Option<u64>,
    /// Only this project (repeatable).
    #[arg(long = "project", value_name = "PATH")]
    pub projects: Vec<PathBuf>,
    /// Only this artifact type, e.g. skill (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events from or to this drift type (repeatable).
    #[arg(long = "drift", value_enum, value_name = "DRIFT")]
    pub drift: Vec<DriftArg>,
    #[command(flatten)]
    pub fresh: Freshness,
    /// Heartbeat period in milliseconds (JSON output shows heartbeats).
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_ms: u32,
    /// Stop after this many events (for scripts and tests).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// A `--drift` value: a drift kind, spelled with dashes on the command line (`in-sync`).
#[derive(Debug, Clone, Copy)]
pub struct DriftArg(pub DriftKind);

impl ValueEnum for DriftArg {
    fn value_variants<'a>() -> &'a [Self] {
        const VARIANTS: [DriftArg; DriftKind::ALL.len()] = {
            let mut v = [DriftArg(DriftKind::InSync); DriftKind::ALL.len()];
            let mut i = 0;
            while i < v.len() {
                v[i] = DriftArg(DriftKind::ALL[i]);
                i += 1;
            }
            v
        };
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.as_str().replace('_', "-")))
    }
}

/// Runs `smctl watch` until the stream ends, or after `--count` events.
pub async fn run(
    client: &mut Client,
    args: WatchArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let req = pb::WatchRequest {
        since_cursor: args.since,
        projects: args.projects.iter().map(|p| absolute(p)).collect(),
        artifact_types: args.types,
        drift_types: args.drift.into_iter().map(|d| i32::from(d.0)).collect(),
        sync: false,
        heartbeat_ms: args.heartbeat_ms,
        stale_ok: args.fresh.stale_ok(),
    };
    let mut stream = client.watch(req).await?.into_inner();
    let mut seen = 0u64;
    loop {
        let msg = match stream.message().await {
            Ok(Some(msg)) => msg,
            Ok(None) => return closed(out, format, "the daemon ended the stream"),
            Err(s) if daemon_went_away(&s) => return closed(out, format, &describe(&s)),
            Err(s) => return Err(s.into()),
        };
        let Some(m) = msg.message else { continue };
        print(out, format, &m)?;
        if matches!(m, pb::watch_response::Message::Event(_)) {
            seen += 1;
            if args.count.is_some_and(|c| seen >= c) {
                break;
            }
        }
    }
    Ok(0)
}

/// The end of a stream the daemon closed: the last NDJSON object says why, and the
/// failure (exit 3) says it on stderr.
fn closed(out: &mut impl Write, format: Format, reason: &str) -> Result<u8, Failure> {
    if format == Format::Json {
        ndjson(out, &json!({"type": "closed", "reason": reason}))?;
    }
    Err(Failure::new(3, format!("the daemon went away: {reason}")))
}

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
    (t != i32::from(pb::DriftType::Unspecified)).then(|| drift_name(t))
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
                    let drifted = r.artifacts.iter().filter(|a| is_drifted(a)).count();
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

//! `smctl notify status|test|mute|unmute`: the daemon's desktop notifications.
//!
//! JSON field names (stable): `status` prints the `NotifyStatusResponse` fields (`enabled`,
//! `required`, `backend`, `available`, `server` {`name`, `vendor`, `version`, `spec_version`},
//! `capabilities`, `problem`, `problem_since`, `next_retry`, `mutes[]` {`path`, `until`,
//! `from_config`}, `quiet_hours`, `in_quiet_hours`, `held`, `last` {`time`, `key`,
//! `summary`} or null, `shown`, `updated`, `overflow`, `lagged`, `unsent`,
//! `last_action`); `test` prints `{"id"}`; `mute` `{"muted", "until"}`; `unmute`
//! `{"unmuted", "removed"}`.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use skillmeatd_proto::pb;

use crate::cli::absolute;
use crate::doctor::{Check, Level, check, skipped};
use crate::failure::Failure;
use crate::output::Format;
use crate::session::Client;

/// `smctl notify …`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Notification server and capabilities, muted projects, the last notification,
    /// and any problem.
    Status,
    /// Show one notification now.
    Test,
    /// Stop notifications about a project (or every project below a folder).
    #[command(
        after_help = "Examples:\n  smctl notify mute ~/code/app\n  smctl notify mute . --for 2h"
    )]
    Mute {
        project: PathBuf,
        /// For this long (30m, 2h, 3d, 1w) [default: until unmuted].
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
    },
    /// Notify about a muted project again.
    Unmute { project: PathBuf },
}

fn json_out(out: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

fn status_json(s: &pb::NotifyStatusResponse) -> Value {
    json!({
        "enabled": s.enabled,
        "required": s.required,
        "backend": s.backend,
        "available": s.available,
        "server": {"name": s.server_name, "vendor": s.server_vendor,
                   "version": s.server_version, "spec_version": s.spec_version},
        "capabilities": s.capabilities,
        "problem": s.problem,
        "problem_since": s.problem_since,
        "next_retry": s.next_retry,
        "mutes": s.mutes.iter().map(|m| json!({"path": m.path, "until": m.until, "from_config": m.from_config})).collect::<Vec<_>>(),
        "quiet_hours": s.quiet_hours,
        "in_quiet_hours": s.in_quiet_hours,
        "held": s.held,
        "last": if s.last_time.is_empty() { Value::Null } else {
            json!({"time": s.last_time, "key": s.last_key, "summary": s.last_summary})
        },
        "shown": s.shown,
        "updated": s.updated,
        "overflow": s.overflow,
        "lagged": s.lagged,
        "unsent": s.unsent,
        "last_action": s.last_action,
    })
}

fn status_table(out: &mut impl Write, s: &pb::NotifyStatusResponse) -> io::Result<()> {
    let state = if !s.enabled {
        "off (notify.desktop = false)".to_string()
    } else if s.available {
        format!(
            "on: {} {} ({}, spec {})",
            s.server_name, s.server_version, s.server_vendor, s.spec_version
        )
    } else {
        "on, but nothing can be shown now".to_string()
    };
    writeln!(out, "notifications  {state}")?;
    writeln!(out, "backend        {}", s.backend)?;
    if !s.capabilities.is_empty() {
        writeln!(out, "capabilities   {}", s.capabilities.join(", "))?;
    }
    if !s.problem.is_empty() {
        writeln!(
            out,
            "problem        {} (since {})",
            s.problem, s.problem_since
        )?;
        if !s.next_retry.is_empty() {
            writeln!(out, "next retry     {}", s.next_retry)?;
        }
    }
    if !s.quiet_hours.is_empty() {
        let now = if s.in_quiet_hours { ", now" } else { "" };
        writeln!(
            out,
            "quiet hours    {} (local time{now}; {} held)",
            s.quiet_hours, s.held
        )?;
    }
    if s.mutes.is_empty() {
        writeln!(out, "muted          none")?;
    }
    for m in &s.mutes {
        let until = if m.until.is_empty() {
            "until unmuted".to_string()
        } else {
            format!("until {}", m.until)
        };
        let from = if m.from_config { " (daemon.toml)" } else { "" };
        writeln!(out, "muted          {} {until}{from}", m.path)?;
    }
    if !s.last_time.is_empty() {
        writeln!(out, "last           {}  {}", s.last_time, s.last_summary)?;
    }
    writeln!(
        out,
        "counts         {} shown, {} updated in place, {} not shown (no server), {} dropped (queue full), {} events missed",
        s.shown, s.updated, s.unsent, s.overflow, s.lagged
    )?;
    if !s.last_action.is_empty() {
        writeln!(out, "last action    {}", s.last_action)?;
    }
    Ok(())
}

/// Runs one `smctl notify` command.
pub async fn run(
    client: &mut Client,
    cmd: NotifyCommand,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    match cmd {
        NotifyCommand::Status => {
            let s = client
                .notify_status(pb::NotifyStatusRequest {})
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(out, &status_json(&s))?,
                Format::Table => status_table(out, &s)?,
            }
        }
        NotifyCommand::Test => {
            let r = client
                .notify_test(pb::NotifyTestRequest {})
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(out, &json!({"id": r.id}))?,
                Format::Table => writeln!(out, "test notification shown (id {})", r.id)?,
            }
        }
        NotifyCommand::Mute { project, duration } => {
            let project = absolute(&project);
            let r = client
                .notify_mute(pb::NotifyMuteRequest {
                    project: project.clone(),
                    r#for: duration.unwrap_or_default(),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(out, &json!({"muted": project, "until": r.until}))?,
                Format::Table if r.until.is_empty() => {
                    writeln!(out, "muted {project} until unmuted")?
                }
                Format::Table => writeln!(out, "muted {project} until {}", r.until)?,
            }
        }
        NotifyCommand::Unmute { project } => {
            let project = absolute(&project);
            let r = client
                .notify_unmute(pb::NotifyUnmuteRequest {
                    project: project.clone(),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(out, &json!({"unmuted": project, "removed": r.removed}))?,
                Format::Table if r.removed => writeln!(out, "unmuted {project}")?,
                Format::Table => writeln!(out, "{project} was not muted")?,
            }
        }
    }
    Ok(0)
}

/// `smctl doctor`'s `notifications` check.
pub fn doctor_check(daemon_up: bool, s: Option<&pb::NotifyStatusResponse>) -> Check {
    const NAME: &str = "notifications";
    let Some(s) = s.filter(|_| daemon_up) else {
        return skipped(NAME);
    };
    if !s.enabled {
        return check(
            NAME,
            Level::Ok,
            "off (notify.desktop = false in daemon.toml)",
            "",
        );
    }
    if !s.problem.is_empty() {
        let fix = if s.problem.contains("session bus") {
            "the daemon has no session bus: under systemd run `systemctl --user import-environment \
             DBUS_SESSION_BUS_ADDRESS` (desktop sessions usually do) and `systemctl --user restart \
             skillmeatd`, or `smctl service install` again; started by hand, start it from your \
             desktop session so DBUS_SESSION_BUS_ADDRESS is set. Or set notify.desktop = false"
        } else if s.problem.contains("no notification server") {
            "start a notification server (your desktop's, or dunst / mako), or set \
             notify.desktop = false in daemon.toml"
        } else {
            "see `smctl notify status`; the daemon retries with backoff"
        };
        if !s.required {
            return check(
                NAME,
                Level::Ok,
                format!(
                    "none shown now ({}); they will be once a notification server is reachable \
                     (set notify.desktop = true to be warned, false to stop trying)",
                    s.problem
                ),
                "",
            );
        }
        return check(NAME, Level::Warn, s.problem.clone(), fix);
    }
    if s.overflow > 0 {
        return check(
            NAME,
            Level::Warn,
            format!(
                "{} notifications were dropped because the notification server was slow",
                s.overflow
            ),
            "check the notification server; raise notify.queue_capacity if bursts are expected",
        );
    }
    let muted = match s.mutes.len() {
        0 => String::new(),
        n => format!("; {n} muted"),
    };
    check(
        NAME,
        Level::Ok,
        format!("shown by {} {}{muted}", s.server_name, s.server_version),
        "",
    )
}

//! `smctl doctor`: checks the setup and says what to fix.
//!
//! Each check is one line with a level (`ok`, `warn`, `fail`, or `skip` when it needs the
//! daemon and none answers), a message and a fix. Checks that need no daemon (the
//! configuration file, folder permissions, the SkillMeat CLI) run either way; the others
//! read the daemon's `Status`. Doctor never starts the daemon: finding it stopped is one
//! of its answers.
//!
//! `--format json` prints `{"checks": [{"name", "status", "message", "fix"}], "needs_action"}`.
//! Exit codes: 0 nothing needs action; 1 something does (a `warn` or `fail`); 3 the daemon
//! is not running.

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use skillmeatd_proto::paths::Paths;
use skillmeatd_proto::{PROTOCOL_VERSION, connect, pb};

use crate::failure::Failure;
use crate::locate;
use crate::output::Format;

mod store;
use store::{store, store_offline};

/// The SkillMeat release whose files and behaviour skillmeatd was checked against.
const SKILLMEAT_CHECKED: &str = "0.74.0";
/// How long `skillmeat --version` may take. A cold start of the Python CLI takes about 2 s
/// on an idle machine and well over 10 s on a loaded one; only a hung CLI should fail.
const SKILLMEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// Share of `fs.inotify.max_user_watches` above which the limit is close.
const INOTIFY_HIGH: f64 = 0.8;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
            Level::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub message: String,
    pub fix: String,
}

pub fn check(name: &'static str, level: Level, message: impl Into<String>, fix: &str) -> Check {
    Check {
        name,
        level,
        message: message.into(),
        fix: fix.to_string(),
    }
}

pub fn skipped(name: &'static str) -> Check {
    check(name, Level::Skip, "needs the running daemon", "")
}

/// Runs every check, prints the report and returns the exit code.
///
/// # Errors
/// Writing the report failed.
pub async fn run(paths: &Paths, format: Format) -> Result<u8, Failure> {
    let (status, notify) = match connect::channel(&paths.socket).await {
        Ok(ch) => {
            let mut client = crate::session::client(ch);
            let status = client
                .status(pb::StatusRequest { stale_ok: true })
                .await
                .ok();
            let notify = client.notify_status(pb::NotifyStatusRequest {}).await.ok();
            (
                status.map(|r| r.into_inner()),
                notify.map(|r| r.into_inner()),
            )
        }
        Err(_) => (None, None),
    };
    let s = status.as_ref();
    let mut checks = vec![daemon(paths, s)];
    checks.push(config(paths, s).await);
    checks.push(permissions(paths, s));
    match s {
        None => {
            checks.extend(["inotify", "polling"].into_iter().map(skipped));
            checks.push(store_offline(paths).await);
            checks.extend(["journal", "files"].into_iter().map(skipped));
        }
        Some(s) => checks.extend([inotify(s), polling(s), store(s), journal(s), files(s)]),
    }
    checks.push(crate::notify::doctor_check(s.is_some(), notify.as_ref()));
    checks.push(skillmeat().await);
    let needs_action = checks
        .iter()
        .any(|c| matches!(c.level, Level::Warn | Level::Fail));
    print(
        &mut crate::stdout::Stdout::lock(),
        format,
        &checks,
        needs_action,
    )?;
    Ok(if status.is_none() {
        3
    } else if needs_action {
        1
    } else {
        0
    })
}

fn print(out: &mut impl Write, format: Format, checks: &[Check], action: bool) -> io::Result<()> {
    match format {
        Format::Json => {
            let list: Vec<Value> = checks
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "status": c.level.name(),
                        "message": c.message,
                        "fix": c.fix,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut *out,
                &json!({"checks": list, "needs_action": action}),
            )?;
            writeln!(out)
        }
        Format::Table => {
            for c in checks {
                writeln!(out, "{:<4}  {:<9}  {}", c.level.name(), c.name, c.message)?;
                if !c.fix.is_empty() && c.level != Level::Ok {
                    writeln!(out, "{:<17}fix: {}", "", c.fix)?;
                }
            }
            if action {
                writeln!(out, "\nSomething needs attention; see the fixes above.")
            } else {
                writeln!(out, "\nNothing needs attention.")
            }
        }
    }
}

fn daemon(paths: &Paths, s: Option<&pb::StatusResponse>) -> Check {
    let Some(s) = s else {
        return check(
            "daemon",
            Level::Fail,
            format!("not running (no answer on {})", paths.socket.display()),
            "start it with `skillmeatd start`, or at login with `smctl service install`",
        );
    };
    let own = env!("CARGO_PKG_VERSION");
    let msg = format!(
        "skillmeatd {} running (pid {}, up {}s) on {}",
        s.daemon_version, s.pid, s.uptime_seconds, s.socket_path
    );
    if s.protocol_version != PROTOCOL_VERSION || s.daemon_version != own {
        check(
            "daemon",
            Level::Warn,
            format!("{msg}; smctl is {own} (protocol {})", PROTOCOL_VERSION),
            "restart the daemon that came with this smctl: `skillmeatd stop && skillmeatd start`",
        )
    } else {
        check("daemon", Level::Ok, msg, "")
    }
}

/// The configuration file, validated by `skillmeatd run --check-config` (the daemon's
/// own reader), plus a failed reload the running daemon reports.
async fn config(paths: &Paths, s: Option<&pb::StatusResponse>) -> Check {
    let file = paths.skillmeat_home.join("daemon.toml");
    let fix = "edit the file (`skillmeatd run --check-config` says what is wrong), then \
               `systemctl --user reload skillmeatd` or `kill -HUP <pid>`";
    let out = match skillmeatd_offline("config", "validate", |c| {
        c.arg("--skillmeat-home")
            .arg(&paths.skillmeat_home)
            .args(["run", "--check-config"]);
    })
    .await
    {
        Ok(o) => o,
        Err(c) => return c,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim().trim_start_matches("skillmeatd: ");
        return check("config", Level::Fail, err.to_string(), fix);
    }
    let reload_failed = s.and_then(|s| s.problems.iter().find(|p| Path::new(&p.path) == file));
    if let Some(p) = reload_failed {
        return check(
            "config",
            Level::Warn,
            format!(
                "the file is valid now, but the daemon's last reload failed: {}",
                p.message
            ),
            "reload it: `systemctl --user reload skillmeatd` or `kill -HUP <pid>`",
        );
    }
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    check("config", Level::Ok, said, "")
}

/// The state directory and the socket's folder: ours and private (0700), the socket ours.
fn permissions(paths: &Paths, s: Option<&pb::StatusResponse>) -> Check {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut bad = Vec::new();
    let mut checked = Vec::new();
    let socket_dir = paths.socket.parent().unwrap_or(Path::new("/"));
    for dir in [paths.state_dir.as_path(), socket_dir] {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        checked.push(dir.display().to_string());
        if !meta.is_dir() {
            bad.push(format!("{} is not a folder", dir.display()));
        } else if meta.uid() != me {
            bad.push(format!(
                "{} is owned by uid {}, not {me}",
                dir.display(),
                meta.uid()
            ));
        } else if meta.mode() & 0o077 != 0 {
            bad.push(format!(
                "{} has mode {:04o}, not 0700",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(&paths.socket) {
        if !meta.file_type().is_socket() {
            bad.push(format!("{} is not a socket", paths.socket.display()));
        } else if meta.uid() != me {
            bad.push(format!(
                "{} is owned by uid {}, not {me}",
                paths.socket.display(),
                meta.uid()
            ));
        }
    } else if s.is_some() {
        bad.push(format!(
            "the daemon answers, but {} is not there",
            paths.socket.display()
        ));
    }
    checked.dedup();
    if !bad.is_empty() {
        check(
            "perms",
            Level::Fail,
            bad.join("; "),
            "make the folders yours with mode 0700 (`chmod 700 DIR`); the daemon refuses \
             folders others can enter",
        )
    } else if checked.is_empty() {
        check(
            "perms",
            Level::Ok,
            "state and socket folders not created yet (the daemon makes them 0700)",
            "",
        )
    } else {
        check(
            "perms",
            Level::Ok,
            format!("{} private (0700) and yours", checked.join(" and ")),
            "",
        )
    }
}

/// inotify watches held by the daemon against `fs.inotify.max_user_watches`.
fn inotify(s: &pb::StatusResponse) -> Check {
    let limit: Option<u64> = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let used = s.inotify_watches.or_else(|| watches_of(s.pid));
    match (used, limit) {
        (Some(used), Some(limit)) => {
            let msg = format!("{used} watches in use; fs.inotify.max_user_watches = {limit}");
            if used as f64 >= limit as f64 * INOTIFY_HIGH {
                check(
                    "inotify",
                    Level::Warn,
                    format!("{msg} (near the limit: new folders will be polled)"),
                    "sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/)",
                )
            } else {
                check("inotify", Level::Ok, msg, "")
            }
        }
        _ => check(
            "inotify",
            Level::Skip,
            "inotify is not available here (kernel events come from elsewhere)",
            "",
        ),
    }
}

/// Counts `inotify wd:` lines in `/proc/<pid>/fdinfo/*` (same user only).
fn watches_of(pid: u64) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).ok()?;
    Some(
        dir.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|t| t.lines().filter(|l| l.starts_with("inotify wd:")).count() as u64)
            .sum(),
    )
}

fn polling(s: &pb::StatusResponse) -> Check {
    if s.polled_roots.is_empty() {
        return check(
            "polling",
            Level::Ok,
            format!("all {} watched folders use kernel events", s.watched_roots),
            "",
        );
    }
    let first = &s.polled_roots[0];
    let fix = if first.reason.contains("max_user_watches") {
        "sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/), then restart \
         the daemon"
    } else if first.reason.contains("force_polling") {
        "set watch.force_polling = false in daemon.toml and reload, unless the files live on a \
         network filesystem"
    } else {
        "see the reason; polling works, but notices changes later and costs more"
    };
    check(
        "polling",
        Level::Warn,
        format!(
            "{} of {} watched folders are polled, e.g. {}: {}",
            s.polled_roots.len(),
            s.watched_roots,
            first.path,
            first.reason
        ),
        fix,
    )
}

/// Runs the local `skillmeatd` with the arguments `args` adds, for a check that needs no
/// daemon (`run --check-config`, `run --check-store`). A binary that cannot be found or run
/// is the check `name`'s warning ("cannot `verb`: …").
async fn skillmeatd_offline(
    name: &'static str,
    verb: &str,
    args: impl FnOnce(&mut tokio::process::Command),
) -> Result<std::process::Output, Check> {
    let bin = locate::skillmeatd(None)
        .map_err(|e| check(name, Level::Warn, format!("cannot {verb}: {e}"), ""))?;
    let mut cmd = tokio::process::Command::new(&bin);
    args(&mut cmd);
    cmd.stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            check(
                name,
                Level::Warn,
                format!("cannot run {}: {e}", bin.display()),
                "",
            )
        })
}

/// The journal holds one contiguous run of cursors ending at the current one.
fn journal(s: &pb::StatusResponse) -> Check {
    if s.journal_events == 0 {
        return check(
            "journal",
            Level::Ok,
            format!("empty (cursor {})", s.cursor),
            "",
        );
    }
    let expected = (s.cursor + 1).saturating_sub(s.journal_first_cursor);
    let msg = format!(
        "events #{}..#{} ({} kept)",
        s.journal_first_cursor, s.cursor, s.journal_events
    );
    if s.journal_first_cursor == 0
        || s.journal_first_cursor > s.cursor
        || expected != s.journal_events
    {
        check(
            "journal",
            Level::Fail,
            format!("{msg}: not one contiguous run (expected {expected} events)"),
            "stop the daemon, move its store aside (`<state dir>/store`) and start it again; \
             the drift state is rebuilt from the files",
        )
    } else {
        check("journal", Level::Ok, msg, "")
    }
}

/// Files the daemon could not read or use (the configuration file has its own check).
fn files(s: &pb::StatusResponse) -> Check {
    let config = Path::new(&s.skillmeat_home).join("daemon.toml");
    let problems: Vec<&pb::Problem> = s
        .problems
        .iter()
        .filter(|p| Path::new(&p.path) != config)
        .collect();
    if problems.is_empty() {
        return check(
            "files",
            Level::Ok,
            format!(
                "every SkillMeat file is readable and valid ({} collections, {} projects)",
                s.collections, s.projects
            ),
            "",
        );
    }
    let mut listed: Vec<String> = problems
        .iter()
        .take(3)
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    if problems.len() > 3 {
        listed.push(format!("and {} more", problems.len() - 3));
    }
    check(
        "files",
        Level::Warn,
        format!(
            "{} unreadable or invalid file(s): {}",
            problems.len(),
            listed.join("; ")
        ),
        "fix or redeploy the files named (`skillmeat deploy`); `smctl status` lists them all",
    )
}

/// `skillmeat --version`, run with a throwaway HOME (it writes a config file even for
/// `--version`) and a timeout.
async fn skillmeat() -> Check {
    let home = std::env::temp_dir().join(format!("smctl-doctor-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&home) {
        return check(
            "skillmeat",
            Level::Skip,
            format!("cannot make a scratch HOME: {e}"),
            "",
        );
    }
    let run = tokio::process::Command::new("skillmeat")
        .arg("--version")
        .env("HOME", &home)
        .env_remove("SKILLMEAT_HOME")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let result = tokio::time::timeout(SKILLMEAT_TIMEOUT, run).await;
    let _ = std::fs::remove_dir_all(&home);
    let out = match result {
        Err(_) => {
            return check(
                "skillmeat",
                Level::Warn,
                format!(
                    "`skillmeat --version` did not answer within {}s",
                    SKILLMEAT_TIMEOUT.as_secs()
                ),
                "check the SkillMeat installation (`skillmeat --version`)",
            );
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
            return check(
                "skillmeat",
                Level::Skip,
                "the skillmeat CLI is not on PATH (the daemon reads its files without it)",
                "",
            );
        }
        Ok(Err(e)) => {
            return check(
                "skillmeat",
                Level::Warn,
                format!("cannot run skillmeat: {e}"),
                "",
            );
        }
        Ok(Ok(o)) => o,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().last().unwrap_or("").to_string();
    if !out.status.success() || version.is_empty() {
        return check(
            "skillmeat",
            Level::Warn,
            format!(
                "`skillmeat --version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "check the SkillMeat installation",
        );
    }
    if version == SKILLMEAT_CHECKED {
        check(
            "skillmeat",
            Level::Ok,
            format!("SkillMeat {version} (the release skillmeatd is checked against)"),
            "",
        )
    } else {
        check(
            "skillmeat",
            Level::Warn,
            format!("SkillMeat {version}; skillmeatd is checked against {SKILLMEAT_CHECKED}"),
            "compare `smctl drift` with `skillmeat sync-check` once; report differences",
        )
    }
}

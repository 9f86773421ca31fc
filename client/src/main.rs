//! `smctl`: the command-line client of skillmeatd.
//!
//! Every command talks to the daemon over its Unix socket. Output is a readable table on a
//! terminal and JSON otherwise (`--format` overrides); errors go to stderr.
//!
//! Exit codes: 0 success; 1 drift found with `--exit-code`; 2 usage or request error;
//! 3 the daemon is not running. A closed stdout (`smctl drift | head`) is not an error.

#[path = "../../src/connect.rs"]
mod connect;
mod history;
mod output;
#[path = "../../src/paths.rs"]
#[allow(dead_code)]
mod paths;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tonic::transport::Channel;

use output::Format;

/// The generated protocol types and client stub.
#[allow(clippy::all)]
pub mod pb {
    tonic::include_proto!("skillmeat.daemon.v1");
}

type Client = pb::skillmeat_daemon_client::SkillmeatDaemonClient<Channel>;

/// Talk to skillmeatd: drift, projects and daemon status.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "\
Examples:
  smctl drift                      drift of every known project
  smctl drift ~/code/app --format json
  smctl drift --exit-code          exit 1 when anything drifted (for scripts and CI)
  smctl project add ~/code/app
  smctl project list
  smctl status

Exit codes: 0 ok, 1 drift found (--exit-code), 2 error, 3 daemon not running."
)]
struct Cli {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, global = true, value_enum)]
    format: Option<FormatArg>,
    /// SkillMeat's home folder (used to find the default socket).
    #[arg(long, global = true, env = "SKILLMEAT_HOME", value_name = "DIR")]
    skillmeat_home: Option<PathBuf>,
    /// The daemon's state directory (used to find the default socket).
    #[arg(long, global = true, env = "SKILLMEATD_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The daemon's socket.
    #[arg(long, global = true, env = "SKILLMEATD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Daemon version, protocol, uptime, paths and counts.
    Status,
    /// Drift of every deployed artifact, in `skillmeat sync-check --format json`'s schema.
    #[command(after_help = "\
Examples:
  smctl drift
  smctl drift . --format json | jq '.artifacts[] | select(.drift_type == \"modified\")'
  smctl drift --exit-code && echo 'all in sync'")]
    Drift {
        /// Project folder [default: every known project].
        project: Option<PathBuf>,
        /// Exit 1 when any drift is found.
        #[arg(long)]
        exit_code: bool,
        /// Also list artifacts that are in sync.
        #[arg(long)]
        all: bool,
    },
    /// Projects: list, register by hand, forget, ignore.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Snapshots: create, list, show, export, import.
    #[command(subcommand)]
    Snapshot(history::SnapshotCommand),
    /// The version graph of one artifact, newest first.
    #[command(
        after_help = "Examples:\n  smctl log review\n  smctl log skills/canvas --project ~/code/app"
    )]
    Log {
        /// Artifact name or path.
        artifact: String,
        #[command(flatten)]
        select: history::Selector,
    },
    /// One version (by id or tag) and its files.
    Show { version: String },
    /// Name a version; tagged versions are never pruned.
    Tag { version: String, name: String },
    /// Unified diff between two states: a version (v12), a tag, a snapshot (s7),
    /// `collection` or `project` (current files), or a time (@2h, @2026-11-25T10:00 UTC).
    #[command(
        after_help = "Examples:\n  smctl diff v3 v7\n  smctl diff s4 collection --collection default\n  smctl diff --at 2h project review --project ~/code/app\n  smctl diff v3 project --format json"
    )]
    Diff {
        /// First state (omit with --at).
        a: Option<String>,
        /// Second state.
        b: Option<String>,
        /// Limit the diff to this artifact (name or path).
        #[arg(long)]
        artifact: Option<String>,
        /// The state at this time is the first side (30m, 2h, 3d, 2026-11-25T10:00).
        #[arg(long)]
        at: Option<String>,
        /// Exit 1 when the two differ.
        #[arg(long)]
        exit_code: bool,
        #[command(flatten)]
        select: history::Selector,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Every known project: how it was found, roots, deployments and drift.
    List,
    /// Register a project folder by hand.
    Add { path: PathBuf },
    /// Forget a project registered by hand.
    Remove { path: PathBuf },
    /// Hide a discovered project for good (`--undo` shows it again).
    Ignore {
        path: PathBuf,
        #[arg(long)]
        undo: bool,
    },
}

/// A failure, with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        if s.code() == tonic::Code::Unavailable {
            Failure::new(3, format!("the daemon stopped answering: {}", s.message()))
        } else {
            Failure::new(2, s.message().to_string())
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(2, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match cli.format {
        Some(FormatArg::Json) => Format::Json,
        Some(FormatArg::Table | FormatArg::Text) => Format::Table,
        None if std::io::stdout().is_terminal() => Format::Table,
        None => Format::Json,
    };
    let paths = match paths::Paths::resolve(cli.skillmeat_home, cli.state_dir, cli.socket) {
        Ok(p) => p,
        Err(e) => return fail(Failure::new(2, e)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(Failure::new(2, e.to_string())),
    };
    match runtime.block_on(dispatch(cli.command, &paths.socket, format)) {
        Ok(code) => ExitCode::from(code),
        Err(f) if f.message.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    eprintln!("smctl: {}", f.message);
    ExitCode::from(f.code)
}

async fn connect(socket: &Path) -> Result<Client, Failure> {
    match connect::channel(socket).await {
        Ok(ch) => Ok(Client::new(ch)),
        Err(_) => Err(Failure::new(
            3,
            format!(
                "skillmeatd is not running (no answer on {}); start it with `skillmeatd start`",
                socket.display()
            ),
        )),
    }
}

/// An absolute form of a path argument, resolved against the current folder.
fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| paths::absolute(p))
        .display()
        .to_string()
}

async fn dispatch(command: Command, socket: &Path, format: Format) -> Result<u8, Failure> {
    let mut client = connect(socket).await?;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Snapshot(cmd) => history::snapshot(&mut client, cmd, format, &mut out).await,
        Command::Log { artifact, select } => {
            history::log(&mut client, artifact, &select, format, &mut out).await
        }
        Command::Show { version } => history::show(&mut client, version, format, &mut out).await,
        Command::Tag { version, name } => {
            history::tag(&mut client, version, name, format, &mut out).await
        }
        Command::Diff {
            a,
            b,
            artifact,
            at,
            exit_code,
            select,
        } => {
            let (a, b) = match (at, a, b) {
                (Some(t), Some(b), None) => (format!("@{t}"), b),
                (None, Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(Failure::new(
                        2,
                        "give two states, or --at TIME and one state",
                    ));
                }
            };
            history::diff(
                &mut client,
                a,
                b,
                artifact,
                &select,
                exit_code,
                format,
                &mut out,
            )
            .await
        }
        Command::Status => {
            let s = client.status(pb::StatusRequest {}).await?.into_inner();
            output::status(&mut out, format, &s)?;
            Ok(0)
        }
        Command::Drift {
            project,
            exit_code,
            all,
        } => {
            let several = project.is_none();
            let req = pb::GetDriftRequest {
                project: project.as_deref().map(absolute).unwrap_or_default(),
                include_in_sync: all,
            };
            let r = client.get_drift(req).await?.into_inner();
            output::problems(&r.problems);
            let drifted = output::drift(&mut out, format, &r, several)?;
            Ok(if exit_code && drifted { 1 } else { 0 })
        }
        Command::Project(ProjectCommand::List) => {
            let r = client
                .list_projects(pb::ListProjectsRequest {})
                .await?
                .into_inner();
            output::problems(&r.problems);
            output::projects(&mut out, format, &r.projects)?;
            Ok(0)
        }
        Command::Project(ProjectCommand::Add { path }) => {
            let r = client
                .add_project(pb::AddProjectRequest {
                    path: absolute(&path),
                })
                .await?
                .into_inner();
            let projects: Vec<pb::ProjectInfo> = r.project.into_iter().collect();
            output::projects(&mut out, format, &projects)?;
            Ok(0)
        }
        Command::Project(ProjectCommand::Remove { path }) => {
            let path = absolute(&path);
            client
                .remove_project(pb::RemoveProjectRequest { path: path.clone() })
                .await?;
            output::done(&mut out, format, "removed", &path)?;
            Ok(0)
        }
        Command::Project(ProjectCommand::Ignore { path, undo }) => {
            let path = absolute(&path);
            client
                .ignore_project(pb::IgnoreProjectRequest {
                    path: path.clone(),
                    unignore: undo,
                })
                .await?;
            output::done(
                &mut out,
                format,
                if undo { "unignored" } else { "ignored" },
                &path,
            )?;
            Ok(0)
        }
    }
}

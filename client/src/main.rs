//! `smctl`: the command-line client of skillmeatd.
//!
//! Every command talks to the daemon over its Unix socket. Output is a readable table on a
//! terminal and JSON otherwise (`--format` overrides); errors go to stderr.
//!
//! Exit codes: 0 success; 1 drift found with `--exit-code`; 2 usage or request error;
//! 3 the daemon is not running. A closed stdout (`smctl drift | head`) is not an error.

#[path = "../../src/connect.rs"]
mod connect;
mod doctor;
mod history;
mod locate;
mod lsp;
mod ops;
mod output;
#[path = "../../src/paths.rs"]
#[allow(dead_code)]
mod paths;
#[path = "../../src/protocol.rs"]
mod protocol;
mod service;
mod session;
mod watch;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
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
  smctl watch --format json        one JSON object per drift event (NDJSON)
  smctl status
  smctl doctor                     check the setup; each problem comes with its fix
  smctl service install            start skillmeatd at login (systemd or launchd)
  smctl completions bash > ~/.local/share/bash-completion/completions/smctl

When no daemon answers, smctl starts one with `skillmeatd start` and says so on stderr;
set SKILLMEATD_NO_AUTOSTART=1 to turn that off.

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
        /// First wait until every change made before this command is seen.
        #[arg(long)]
        sync: bool,
    },
    /// Projects: list, register by hand, forget, ignore.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Stream drift events as they happen (NDJSON with --format json).
    #[command(after_help = "\
Examples:
  smctl watch
  smctl watch --format json --since 1200     resume after event #1200
  smctl watch --project . --drift modified --drift conflict")]
    Watch {
        /// Replay events after this cursor first (resume); default: live events only.
        #[arg(long, value_name = "CURSOR")]
        since: Option<u64>,
        /// Only this project (repeatable).
        #[arg(long = "project", value_name = "PATH")]
        projects: Vec<PathBuf>,
        /// Only this artifact type, e.g. skill (repeatable).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// Only events from or to this drift type (repeatable).
        #[arg(long = "drift", value_enum, value_name = "DRIFT")]
        drift: Vec<DriftArg>,
        /// First wait until every change made before this command is seen.
        #[arg(long)]
        sync: bool,
        /// Heartbeat period in milliseconds (JSON output shows heartbeats).
        #[arg(long, default_value_t = 10_000)]
        heartbeat_ms: u32,
        /// Stop after this many events (for scripts and tests).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Check the setup (daemon, configuration, permissions, inotify, polling, store,
    /// journal, SkillMeat's files and CLI) and say how to fix what is wrong.
    #[command(after_help = "\
Examples:
  smctl doctor
  smctl doctor --format json | jq '.checks[] | select(.status != \"ok\")'

Exit codes: 0 nothing needs action, 1 something does, 3 the daemon is not running (the
checks that need no daemon are still printed). Never starts the daemon.")]
    Doctor,
    /// Run skillmeatd under the service manager (systemd user unit or launchd agent).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print a shell completion script for smctl.
    #[command(after_help = "\
Examples:
  smctl completions bash > ~/.local/share/bash-completion/completions/smctl
  smctl completions zsh > ~/.zfunc/_smctl
  smctl completions fish > ~/.config/fish/completions/smctl.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Language Server (LSP, stdio): drift diagnostics, hover and fixes in editors.
    #[command(after_help = "\
Editors start it themselves; see client/editors/ for Neovim, VS Code, Helix, Zed and Emacs.
Logs go to stderr.")]
    Lsp,
    /// Print smctl's manual page (roff).
    #[command(after_help = "\
Examples:
  smctl man > ~/.local/share/man/man1/smctl.1
  smctl man | man -l -")]
    Man,
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
    // ---- write-back (client/src/ops.rs)
    /// Copy one deployed artifact between its collection and a project.
    #[command(
        subcommand,
        long_about = "Copy one deployed artifact between its collection and a project.\n\n\
`smctl sync pull` goes collection → project (a redeploy); `smctl sync push` goes project → \
collection. Note: SkillMeat's own `skillmeat sync-pull` verb goes the other way (project → \
collection), like `smctl sync push`.\n\n\
Every write takes SkillMeat's lock, is atomic, and is preceded by a safety snapshot; \
`smctl undo` restores it.",
        after_help = "\
Examples:
  smctl sync pull canvas --project ~/code/app --dry-run
  smctl sync pull canvas --project ~/code/app --yes
  smctl sync push canvas --project ~/code/app --yes"
    )]
    Sync(ops::SyncCommand),
    /// Three-way merge of a deployment: the project's edits and the collection's, from
    /// the deployed version as base, written into the project copy.
    #[command(after_help = "\
Examples:
  smctl merge canvas --project ~/code/app --dry-run
  smctl merge canvas --project ~/code/app --yes
  smctl merge canvas --project . --prefer collection --yes

The base is the version in history whose hash is the deployment's content_hash; without one
the merge is refused (see `smctl diff`). Overlapping edits get SkillMeat's conflict markers
(binary files keep the project's bytes) unless --prefer picks a side. When no conflict is
left, the deployment record takes the collection's hash as its new base.")]
    Merge {
        /// Artifact name, `type/name`, or path in the profile root.
        artifact: String,
        /// The project folder.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Resolve conflicts by taking this side.
        #[arg(long, value_enum)]
        prefer: Option<ops::Prefer>,
        #[command(flatten)]
        run: ops::RunArgs,
    },
    /// Restore what an operation (default: the last one not undone) changed, from its
    /// safety snapshot. The undo is itself an operation.
    #[command(
        after_help = "Examples:\n  smctl undo --dry-run\n  smctl undo --yes\n  smctl undo 12 --yes"
    )]
    Undo {
        /// Operation id (see `smctl audit`).
        operation: Option<u64>,
        #[command(flatten)]
        run: ops::RunArgs,
    },
    /// Replace one artifact with a version (v12), a tag, or its content in a snapshot (s7);
    /// without ARTIFACT, a whole project or collection with a snapshot.
    #[command(after_help = "\
Examples:
  smctl rollback canvas --project ~/code/app --to s4 --yes
  smctl rollback canvas --collection default --to v12 --yes
  smctl rollback --collection default --to s9 --dry-run
  smctl rollback canvas --project . --at 2h --yes
  smctl rollback --project . --at 2026-11-25T10:00 --dry-run
  smctl rollback canvas --project . --to v12 --mode preserve --yes
  smctl rollback --project . --to s4 --mode preserve --dry-run

A collection rollback also updates collection.lock (one artifact) and appends to SkillMeat's
rollback audit file. A project artifact's rollback leaves the deployment record as it is; a
whole project's restores its deployment files too. A whole rollback removes what the
snapshot did not cover.

--at TIME picks the artifact's version current at that time (a whole project or
collection: the newest snapshot taken at or before it).

--mode preserve (one artifact) merges three ways: base = the newest recorded version whose
content differs from the current content (the last state recorded before the current
edits), local = the current content, remote = the target. Edits made since that version
are kept, every other file returns to the target; overlapping edits get SkillMeat's
conflict markers (a binary conflict keeps the current bytes) and are reported.

--mode preserve without ARTIFACT merges every artifact the snapshot holds the same way,
with one base: the newest snapshot of the project or collection (its last recorded state).
Artifacts unchanged since then return to the snapshot, edits made since are kept, artifacts
added after the snapshot are kept and missing ones restored. .skillmeat-deployed.toml and
collection.toml are left as they are; collection.lock entries of the artifacts written are
updated.")]
    Rollback {
        /// Artifact name, `type/name`, or path [default: the whole project or collection].
        artifact: Option<String>,
        /// The project whose deployment to roll back.
        #[arg(
            long,
            conflicts_with = "collection",
            required_unless_present = "collection"
        )]
        project: Option<PathBuf>,
        /// The collection whose artifact to roll back.
        #[arg(long)]
        collection: Option<String>,
        #[command(flatten)]
        target: ops::RollbackArgs,
        #[command(flatten)]
        run: ops::RunArgs,
    },
    /// The operations log: sync, merge, rollback and undo, oldest first.
    #[command(after_help = "Examples:\n  smctl audit\n  smctl audit --since 2h --format json")]
    Audit {
        /// Only operations since this time (30m, 2h, 3d, 2026-11-25T10:00 UTC).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DriftArg {
    InSync,
    Modified,
    Outdated,
    Conflict,
    Removed,
    Added,
    Missing,
    Error,
}

impl From<DriftArg> for pb::DriftType {
    fn from(d: DriftArg) -> Self {
        match d {
            DriftArg::InSync => pb::DriftType::InSync,
            DriftArg::Modified => pb::DriftType::Modified,
            DriftArg::Outdated => pb::DriftType::Outdated,
            DriftArg::Conflict => pb::DriftType::Conflict,
            DriftArg::Removed => pb::DriftType::Removed,
            DriftArg::Added => pb::DriftType::Added,
            DriftArg::Missing => pb::DriftType::Missing,
            DriftArg::Error => pb::DriftType::Error,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Write the service definition for this user, enable and start it.
    #[command(after_help = "\
Examples:
  smctl service install
  smctl service install --print                   show the unit, write nothing
  smctl service install --socket-activation       also install skillmeatd.socket
  smctl service install --daemon-bin ~/bin/skillmeatd")]
    Install {
        /// The skillmeatd binary to run [default: beside smctl, else on PATH].
        #[arg(long, value_name = "PATH")]
        daemon_bin: Option<PathBuf>,
        /// Print the files that would be written, and write nothing.
        #[arg(long, visible_alias = "dry-run")]
        print: bool,
        /// Write the files, but do not enable or start the service.
        #[arg(long)]
        no_start: bool,
        /// Also install skillmeatd.socket: systemd holds the socket (systemd only).
        #[arg(long)]
        socket_activation: bool,
        /// Service manager to write for [default: launchd on macOS, systemd elsewhere].
        #[arg(long, value_enum)]
        manager: Option<service::Manager>,
    },
    /// Stop and disable the service, and remove its files.
    Uninstall {
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum)]
        manager: Option<service::Manager>,
    },
    /// Whether the service is installed, what it runs, and whether the daemon answers.
    Status {
        #[arg(long, value_enum)]
        manager: Option<service::Manager>,
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
    let explicit = [
        cli.skillmeat_home.is_some(),
        cli.state_dir.is_some(),
        cli.socket.is_some(),
    ];
    let paths = match paths::Paths::resolve(cli.skillmeat_home, cli.state_dir, cli.socket) {
        Ok(p) => p,
        Err(e) => return fail(Failure::new(2, e)),
    };
    if let Some(result) = local_command(&cli.command, &paths, explicit, format) {
        return match result {
            Ok(code) => ExitCode::from(code),
            Err(f) if f.message.contains("Broken pipe") => ExitCode::SUCCESS,
            Err(f) => fail(f),
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(Failure::new(2, e.to_string())),
    };
    let result = match cli.command {
        Command::Doctor => runtime.block_on(doctor::run(&paths, format)),
        Command::Lsp => runtime.block_on(lsp::run(&paths)),
        command => runtime.block_on(dispatch(command, &paths, format)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) if f.message.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    eprintln!("smctl: {}", f.message);
    ExitCode::from(f.code)
}

/// Commands that need no daemon; `None` for the others.
fn local_command(
    command: &Command,
    paths: &paths::Paths,
    explicit: [bool; 3],
    format: Format,
) -> Option<Result<u8, Failure>> {
    let mut out = std::io::stdout().lock();
    Some(match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "smctl", &mut out);
            Ok(0)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut out)
            .map(|()| 0)
            .map_err(Failure::from),
        Command::Service(ServiceCommand::Install {
            daemon_bin,
            print,
            no_start,
            socket_activation,
            manager,
        }) => locate::skillmeatd(daemon_bin.as_deref())
            .map_err(|e| Failure::new(2, e))
            .and_then(|bin| {
                let spec = service::Spec::new(bin, paths.clone(), explicit, *socket_activation);
                let opts = service::InstallOptions {
                    print: *print,
                    no_start: *no_start,
                };
                service::install(
                    manager.unwrap_or_else(service::Manager::native),
                    &spec,
                    opts,
                )
            }),
        Command::Service(ServiceCommand::Uninstall { dry_run, manager }) => {
            service::uninstall(manager.unwrap_or_else(service::Manager::native), *dry_run)
        }
        Command::Service(ServiceCommand::Status { manager }) => service::status(
            manager.unwrap_or_else(service::Manager::native),
            paths,
            format,
        ),
        _ => return None,
    })
}

/// An absolute form of a path argument, resolved against the current folder.
fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| paths::absolute(p))
        .display()
        .to_string()
}

async fn dispatch(command: Command, paths: &paths::Paths, format: Format) -> Result<u8, Failure> {
    let session::Session { mut client, status } = session::open(paths).await?;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Snapshot(cmd) => history::snapshot(&mut client, cmd, format, &mut out).await,
        Command::Sync(cmd) => ops::sync(&mut client, cmd, format, &mut out).await,
        Command::Merge {
            artifact,
            project,
            prefer,
            run,
        } => {
            ops::merge(
                &mut client,
                artifact,
                project,
                prefer,
                run,
                format,
                &mut out,
            )
            .await
        }
        Command::Undo { operation, run } => {
            ops::undo(&mut client, operation, run, format, &mut out).await
        }
        Command::Rollback {
            artifact,
            project,
            collection,
            target,
            run,
        } => {
            ops::rollback(
                &mut client,
                artifact,
                project,
                collection,
                target,
                run,
                format,
                &mut out,
            )
            .await
        }
        Command::Audit { since } => ops::audit(&mut client, since, format, &mut out).await,
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
            output::status(&mut out, format, &status)?;
            Ok(0)
        }
        Command::Drift {
            project,
            exit_code,
            all,
            sync,
        } => {
            let several = project.is_none();
            let req = pb::GetDriftRequest {
                project: project.as_deref().map(absolute).unwrap_or_default(),
                include_in_sync: all,
                sync,
            };
            let r = client.get_drift(req).await?.into_inner();
            output::problems(&r.problems);
            let drifted = output::drift(&mut out, format, &r, several)?;
            Ok(if exit_code && drifted { 1 } else { 0 })
        }
        Command::Watch {
            since,
            projects,
            types,
            drift,
            sync,
            heartbeat_ms,
            count,
        } => {
            let req = pb::WatchRequest {
                since_cursor: since,
                projects: projects.iter().map(|p| absolute(p)).collect(),
                artifact_types: types,
                drift_types: drift
                    .into_iter()
                    .map(|d| pb::DriftType::from(d) as i32)
                    .collect(),
                sync,
                heartbeat_ms,
            };
            let mut stream = client.watch(req).await?.into_inner();
            let mut seen = 0u64;
            while let Some(msg) = stream.message().await? {
                let Some(m) = msg.message else { continue };
                watch::print(&mut out, format, &m)?;
                if matches!(m, pb::watch_response::Message::Event(_)) {
                    seen += 1;
                    if count.is_some_and(|c| seen >= c) {
                        break;
                    }
                }
            }
            Ok(0)
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
        Command::Service(_)
        | Command::Completions { .. }
        | Command::Man
        | Command::Doctor
        | Command::Lsp => {
            unreachable!("answered without a session")
        }
    }
}

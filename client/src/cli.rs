//! The command line: global options, the command tree with its help and examples, and what
//! is generated from it (shell completions, the manual page). Each command's own arguments
//! are defined beside its handler, in the module of its family.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use skillmeatd_proto::paths::{self, Paths};

use crate::failure::Failure;
use crate::output::Format;
use crate::{drift, history, ops, project, service, watch};

/// The git revision of the binary, given by it to [`crate::main`] (its build script knows
/// it; this library does not).
pub(crate) static REVISION: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();

/// The `--version` text: the package and protocol versions and the binary's revision.
fn version() -> String {
    skillmeatd_proto::version_text(env!("CARGO_PKG_VERSION"), REVISION.get().copied().flatten())
}

/// Talk to skillmeatd: drift, projects and daemon status.
#[derive(Debug, Parser)]
#[command(
    version = version(),
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
  smctl notify status              desktop notifications: server, mutes, problems
  smctl service install            start skillmeatd at login (systemd or launchd)
  smctl completions bash > ~/.local/share/bash-completion/completions/smctl

When no daemon answers, smctl starts one with `skillmeatd start` and says so on stderr;
set SKILLMEATD_NO_AUTOSTART=1 to turn that off.

Exit codes: 0 ok (also when stdout's reader went away), 1 drift found (--exit-code),
2 error, 3 daemon not running or gone (watch included)."
)]
pub struct Cli {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, global = true, value_enum)]
    pub format: Option<FormatArg>,
    /// SkillMeat's home folder (used to find the default socket).
    #[arg(long, global = true, env = "SKILLMEAT_HOME", value_name = "DIR")]
    pub skillmeat_home: Option<PathBuf>,
    /// The daemon's state directory (used to find the default socket).
    #[arg(long, global = true, env = "SKILLMEATD_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The daemon's socket.
    #[arg(long, global = true, env = "SKILLMEATD_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Text,
    Json,
}

impl Cli {
    /// The output format: as asked, else a table on a terminal and JSON otherwise.
    pub fn output_format(&self) -> Format {
        match self.format {
            Some(FormatArg::Json) => Format::Json,
            Some(FormatArg::Table | FormatArg::Text) => Format::Table,
            None if std::io::stdout().is_terminal() => Format::Table,
            None => Format::Json,
        }
    }

    /// Which of home, state directory and socket were given (by flag or variable).
    pub fn explicit_paths(&self) -> [bool; 3] {
        [
            self.skillmeat_home.is_some(),
            self.state_dir.is_some(),
            self.socket.is_some(),
        ]
    }

    /// The paths to use: the given ones, else the defaults.
    ///
    /// # Errors
    /// A default is needed and `HOME` is not set.
    pub fn paths(&self) -> Result<Paths, Failure> {
        Paths::resolve(
            self.skillmeat_home.clone(),
            self.state_dir.clone(),
            self.socket.clone(),
        )
        .map_err(|e| Failure::new(2, e))
    }
}

/// Every smctl command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daemon version, protocol, uptime, paths and counts.
    Status(StatusArgs),
    /// Drift of every deployed artifact, in `skillmeat sync-check --format json`'s schema.
    #[command(after_help = "\
Examples:
  smctl drift
  smctl drift . --format json | jq '.artifacts[] | select(.drift_type == \"modified\")'
  smctl drift --exit-code && echo 'all in sync'")]
    Drift(drift::DriftArgs),
    /// Projects: list, register by hand, forget, ignore.
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Stream drift events as they happen (NDJSON with --format json).
    #[command(after_help = "\
Examples:
  smctl watch
  smctl watch --format json --since 1200     resume after event #1200
  smctl watch --project . --drift modified --drift conflict")]
    Watch(watch::WatchArgs),
    /// Check the setup (daemon, configuration, permissions, inotify, polling, store,
    /// journal, SkillMeat's files and CLI) and say how to fix what is wrong.
    #[command(after_help = "\
Examples:
  smctl doctor
  smctl doctor --format json | jq '.checks[] | select(.status != \"ok\")'

Exit codes: 0 nothing needs action, 1 something does, 3 the daemon is not running (the
checks that need no daemon are still printed). Never starts the daemon.")]
    Doctor,
    /// Language Server (LSP, stdio): drift diagnostics, hover and fixes in editors.
    #[command(after_help = "\
Editors start it themselves; see client/editors/ for Neovim, VS Code, Helix, Zed and Emacs.
Logs go to stderr.")]
    Lsp,
    /// Run skillmeatd under the service manager (systemd user unit or launchd agent).
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Print a shell completion script for smctl.
    #[command(after_help = "\
Examples:
  smctl completions bash > ~/.local/share/bash-completion/completions/smctl
  smctl completions zsh > ~/.zfunc/_smctl
  smctl completions fish > ~/.config/fish/completions/smctl.fish")]
    Completions(CompletionsArgs),
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
    Log(history::LogArgs),
    /// One version (by id or tag) and its files.
    Show(history::ShowArgs),
    /// Name a version; tagged versions are never pruned.
    Tag(history::TagArgs),
    /// Unified diff between two states: a version (v12), a tag, a snapshot (s7),
    /// `collection` or `project` (current files), or a time (@2h, @2026-11-25T10:00 UTC).
    #[command(
        after_help = "Examples:\n  smctl diff v3 v7\n  smctl diff s4 collection --collection default\n  smctl diff --at 2h project review --project ~/code/app\n  smctl diff v3 project --format json"
    )]
    Diff(history::DiffArgs),
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
    /// Merge the collection's changes into a deployment's project copy, on the base the
    /// version graph gives.
    #[command(after_help = "\
Examples:
  smctl merge canvas --project ~/code/app --dry-run
  smctl merge canvas --project ~/code/app --yes
  smctl merge canvas --project . --strategy theirs --yes
  smctl merge canvas --project . --continue --yes    (after resolving conflicts by hand)

The base is the nearest common ancestor of the project's and the collection's versions in
the version graph (or, for history older than the graph, the version with the deployment's
content_hash); smctl prints which and why. When one side is an ancestor of the other the
merge fast-forwards (no markers, no merge version) or has nothing to do. Markdown files with
front matter are merged key by key, the rest line by line. Overlapping edits get
SkillMeat's conflict markers (binary files keep the project's bytes) unless --strategy
settles them (ours, theirs, union). A clean merge is recorded as a version with two parents
and the deployment record takes the collection's hash as its new base; after resolving
markers by hand, `--continue` records the same, so merging again never re-raises them.")]
    Merge(ops::MergeArgs),
    /// Bring a collection artifact's current content into every project it is deployed
    /// to, as one operation.
    #[command(after_help = "\
Examples:
  smctl propagate canvas --dry-run
  smctl propagate canvas --yes
  smctl propagate canvas --collection default --merge --yes --format json

Outdated projects are pulled; projects whose copy has local edits (modified, conflict) are
left alone with the reason, or merged with --merge (as `smctl merge` does; projects still
in conflict are listed); in-sync ones are untouched. Every project gets a safety snapshot,
and the whole propagation is one operation: `smctl undo` puts every project back. A
failure in one project is reported and the others go on. Exits 1 when a project failed or
was left in conflict.")]
    Propagate(crate::propagate::PropagateArgs),
    /// Restore what an operation (default: the last one not undone) changed, from its
    /// safety snapshot. The undo is itself an operation.
    #[command(
        after_help = "Examples:\n  smctl undo --dry-run\n  smctl undo --yes\n  smctl undo 12 --yes"
    )]
    Undo(ops::UndoArgs),
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
    Rollback(ops::RollbackArgs),
    /// The operations log: sync, merge, rollback and undo, oldest first.
    #[command(after_help = "Examples:\n  smctl audit\n  smctl audit --since 2h --format json")]
    Audit(ops::AuditArgs),
    /// Desktop notifications: status, a test, mute and unmute projects.
    #[command(subcommand)]
    Notify(crate::notify::NotifyCommand),
}

/// `smctl status` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub fresh: Freshness,
}

/// `smctl completions SHELL`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut impl Write) {
    clap_complete::generate(shell, &mut Cli::command(), "smctl", out);
}

/// Prints the manual page (roff).
///
/// # Errors
/// Writing failed.
pub fn man(out: &mut impl Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// How fresh an answer must be: by default the daemon first waits until every change made
/// before the command is seen (a sync barrier: a few milliseconds when nothing is pending);
/// `--no-sync` takes the instant, possibly stale answer. `--sync` (the default) is still
/// accepted, so scripts written when it was an option keep working; the last of the two wins.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Freshness {
    /// Answer at once from the daemon's current state, without waiting for changes made
    /// just before (possibly stale).
    #[arg(long, overrides_with = "sync")]
    no_sync: bool,
    /// Wait until every change made before this command is seen (the default).
    #[arg(long, overrides_with = "no_sync", hide = true)]
    sync: bool,
}

impl Freshness {
    /// The request field: whether a possibly stale answer will do.
    pub fn stale_ok(self) -> bool {
        self.no_sync
    }
}

/// An absolute form of a path argument, resolved against the current folder: the daemon
/// runs elsewhere and takes absolute paths only.
pub fn absolute(p: &Path) -> String {
    paths::canonical(p).display().to_string()
}

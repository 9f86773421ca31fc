//! `smctl sync|merge|undo|rollback|audit`: the write-back commands, their confirmation
//! rule and how their answers print.
//!
//! Confirmation: a command that writes asks on a terminal (after showing what a dry run
//! says would change) unless `--yes` is given. When stdin is not a terminal it never
//! asks: it proceeds only with `--yes` and otherwise exits 2 saying so. `--dry-run` never
//! needs `--yes`.
//!
//! JSON field names (stable): an operation answer has `operation` (null for dry runs),
//! `dry_run`, `changed[]`, `conflicts[]` (`path`, `kind`, `binary`, `resolved`),
//! `merged[]` (`path`, `content`, `deleted`; merge dry runs), `base_version`,
//! `base_reason` (merges: why that base, a fast-forward, or nothing to merge) and
//! `resolved_to` (rollbacks: the version or snapshot the target resolved to). An
//! operation has `id`, `time`, `operation`, `targets`, `files_restored`, `files_merged`,
//! `files_conflicted`, `safety_snapshots`, `success`, `status` (`succeeded`, `conflicted`,
//! `failed`, `interrupted`, `running`), `error`, `undoes`, and for an interrupted one
//! `recovery` (`kept`, `actions[]`). `audit` prints `{"operations": [...]}`, oldest first.
//!
//! `smctl merge` exits 1 when it wrote files with conflicts left (`success: false`,
//! `status: conflicted`, the files in `conflicts` and `files_conflicted`).

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use skillmeatd_proto::pb;

use crate::cli::absolute;
use crate::failure::Failure;
use crate::output::Format;
use crate::session::Client;

/// `smctl sync …`
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Collection → project: replace the project's copy with the collection's (a
    /// redeploy) and update the deployment record. A safety snapshot of the project is
    /// taken first (`smctl undo` puts it back).
    #[command(after_help = "\
Examples:
  smctl sync pull canvas --project ~/code/app --dry-run
  smctl sync pull canvas --project ~/code/app --yes")]
    Pull(SyncArgs),
    /// Project → collection: replace the collection's copy with the project's, update
    /// collection.lock and the deployment record. A safety snapshot of the collection and
    /// the project is taken first.
    #[command(after_help = "\
Examples:
  smctl sync push canvas --project ~/code/app --yes")]
    Push(SyncArgs),
}

/// The artifact and project of a sync, and how to run it.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Artifact name, `type/name`, or path in the profile root (`skills/canvas`).
    pub artifact: String,
    /// The project folder.
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Dry run and confirmation flags.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RunArgs {
    /// Say what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Which side `merge --prefer` takes in conflicts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Prefer {
    /// The project's copy.
    Local,
    /// The collection's copy.
    Collection,
}

/// How `merge --strategy` settles conflicts.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Strategy {
    /// Fast-forward when one side is an ancestor of the other; otherwise three-way, the
    /// front matter of Markdown files key by key; conflicts get markers (binary files keep
    /// the project's bytes).
    Auto,
    /// Conflicts take the project's side.
    Ours,
    /// Conflicts take the collection's side.
    Theirs,
    /// Conflicting text hunks keep both sides' lines (project's first); binary files stay
    /// in conflict.
    Union,
}

/// How merges settle conflicts: `--strategy` (or the older `--prefer`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct MergeArgsStrategy {
    /// How to settle conflicts [default: auto].
    #[arg(long, value_enum, conflicts_with = "prefer")]
    pub strategy: Option<Strategy>,
    /// Resolve conflicts by taking this side (the same as --strategy ours|theirs).
    #[arg(long, value_enum)]
    pub prefer: Option<Prefer>,
}

impl MergeArgsStrategy {
    /// The wire preference.
    pub fn preference(self) -> pb::MergePreference {
        match (self.strategy, self.prefer) {
            (Some(Strategy::Ours), _) | (_, Some(Prefer::Local)) => pb::MergePreference::Local,
            (Some(Strategy::Theirs), _) | (_, Some(Prefer::Collection)) => {
                pb::MergePreference::Collection
            }
            (Some(Strategy::Union), _) => pb::MergePreference::Union,
            (Some(Strategy::Auto) | None, None) => pb::MergePreference::Markers,
        }
    }
}

/// `smctl merge` arguments.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Artifact name, `type/name`, or path in the profile root.
    pub artifact: String,
    /// The project folder.
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    #[command(flatten)]
    pub strategy: MergeArgsStrategy,
    /// Record the last merge, left with conflicts that you resolved by hand, as done (its
    /// conflicts are never raised again).
    #[arg(long = "continue", conflicts_with_all = ["strategy", "prefer"])]
    pub continue_merge: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `smctl undo` arguments.
#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    /// Operation id (see `smctl audit`).
    pub operation: Option<u64>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `smctl rollback` arguments.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Artifact name, `type/name`, or path [default: the whole project or collection].
    pub artifact: Option<String>,
    /// The project whose deployment to roll back.
    #[arg(
        long,
        conflicts_with = "collection",
        required_unless_present = "collection"
    )]
    pub project: Option<PathBuf>,
    /// The collection whose artifact to roll back.
    #[arg(long)]
    pub collection: Option<String>,
    #[command(flatten)]
    pub target: RollbackTarget,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `smctl rollback` goes back to, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackTarget {
    /// Version id, tag or snapshot id.
    #[arg(
        long,
        value_name = "VERSION|SNAPSHOT|TAG",
        required_unless_present = "at",
        conflicts_with = "at"
    )]
    pub to: Option<String>,
    /// Instead of --to: a time (30m, 2h, 3d, 2026-11-25T10:00 UTC). One artifact goes back
    /// to its version current then; a whole project or collection to its newest snapshot
    /// taken at or before then.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// replace: exact restore. preserve: three-way merge that keeps the changes made since
    /// the last recorded version (a whole project or collection: since its newest snapshot).
    #[arg(long, value_enum, default_value = "replace")]
    pub mode: Mode,
    /// Roll back only these files or folders of the artifact (paths inside it, e.g.
    /// SKILL.md refs/); everything else stays as it is.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `smctl audit` arguments.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only operations since this time (30m, 2h, 3d, 2026-11-25T10:00 UTC).
    #[arg(long)]
    pub since: Option<String>,
}

/// `smctl rollback --mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Exact restore of the target.
    Replace,
    /// Keep local changes made since the last recorded version; conflicts get markers.
    Preserve,
}

pub(crate) fn json_out(out: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

pub(crate) fn info_json(o: &pb::OperationInfo) -> Value {
    json!({"id": o.id, "time": o.time, "operation": o.operation, "targets": o.targets,
        "files_restored": o.files_restored, "files_merged": o.files_merged,
        "files_conflicted": o.files_conflicted, "safety_snapshots": o.safety_snapshots,
        "success": o.success, "status": o.status,
        "error": (!o.error.is_empty()).then_some(&o.error),
        "undoes": (o.undoes != 0).then_some(o.undoes),
        "recovery": (o.status == "interrupted").then(|| json!({
            "kept": o.recovery_kept, "actions": o.recovery})),
        "paths": (!o.paths.is_empty()).then_some(&o.paths),
    })
}

/// Whether a write left conflicts for the user to resolve (the command then exits 1).
fn left_conflicts(r: &pb::OperationResponse) -> bool {
    r.operation
        .as_ref()
        .is_some_and(|o| o.status == "conflicted")
}

fn response_json(r: &pb::OperationResponse) -> Value {
    json!({
        "operation": r.operation.as_ref().map(info_json),
        "dry_run": r.dry_run,
        "changed": r.changed,
        "conflicts": r.conflicts.iter().map(|c| json!({"path": c.path, "kind": c.kind,
            "binary": c.binary, "resolved": (!c.resolved.is_empty()).then_some(&c.resolved)}))
            .collect::<Vec<_>>(),
        "merged": r.merged.iter().map(|f| json!({"path": f.path, "deleted": f.deleted,
            "content": String::from_utf8_lossy(&f.content)})).collect::<Vec<_>>(),
        "base_version": (!r.base_version.is_empty()).then_some(&r.base_version),
        "base_reason": (!r.base_reason.is_empty()).then_some(&r.base_reason),
        "resolved_to": (!r.resolved_to.is_empty()).then_some(&r.resolved_to),
    })
}

fn response_text(out: &mut impl Write, r: &pb::OperationResponse) -> io::Result<()> {
    match &r.operation {
        Some(o) if o.status == "conflicted" => {
            let snaps = o.safety_snapshots.join(", ");
            writeln!(
                out,
                "operation {} ({}) wrote the files, but {} conflict(s) are left: the files \
                 listed below ARE written, text ones with conflict markers; resolve them by \
                 hand. Safety snapshot {snaps}; undo with `smctl undo {}`",
                o.id,
                o.operation,
                r.conflicts.iter().filter(|c| c.resolved.is_empty()).count(),
                o.id
            )?;
        }
        Some(o) => {
            let snaps = o.safety_snapshots.join(", ");
            writeln!(
                out,
                "operation {} ({}) done; safety snapshot {snaps}; undo with `smctl undo {}`",
                o.id, o.operation, o.id
            )?;
        }
        None => writeln!(out, "dry run: nothing written")?,
    }
    if !r.base_reason.is_empty() {
        writeln!(out, "{}", r.base_reason)?;
    } else if !r.base_version.is_empty() {
        writeln!(out, "base: {}", r.base_version)?;
    }
    if r.changed.is_empty() {
        writeln!(out, "no file changes")?;
    }
    for c in &r.changed {
        writeln!(out, "  changed    {c}")?;
    }
    for c in &r.conflicts {
        let how = if c.resolved.is_empty() {
            if c.binary {
                "unresolved; the project's bytes were kept".to_string()
            } else {
                "unresolved; conflict markers written".to_string()
            }
        } else {
            format!("took the {} side", c.resolved)
        };
        let bin = if c.binary { " (binary)" } else { "" };
        writeln!(out, "  conflict   {} [{}]{bin}: {how}", c.path, c.kind)?;
    }
    for f in &r.merged {
        if f.deleted {
            writeln!(out, "--- {} (deleted)", f.path)?;
        } else {
            writeln!(out, "--- {}", f.path)?;
            out.write_all(&f.content)?;
            if !f.content.ends_with(b"\n") {
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

fn print(out: &mut impl Write, format: Format, r: &pb::OperationResponse) -> Result<u8, Failure> {
    match format {
        Format::Json => json_out(out, &response_json(r))?,
        Format::Table => response_text(out, r)?,
    }
    Ok(0)
}

/// Whether to go ahead with a write: yes with `--yes`; exit 2 without it when stdin is not
/// a terminal; otherwise show `preview` (a dry run's answer) and ask.
pub(crate) fn confirm(
    run: RunArgs,
    what: &str,
    preview: Option<&pb::OperationResponse>,
) -> Result<(), Failure> {
    if run.yes || run.dry_run {
        return Ok(());
    }
    if !io::stdin().is_terminal() {
        return Err(Failure::new(
            2,
            format!(
                "{what} changes files; stdin is not a terminal, so pass --yes to proceed (or --dry-run to see what would change)"
            ),
        ));
    }
    let mut err = io::stderr().lock();
    if let Some(p) = preview {
        if p.changed.is_empty() {
            writeln!(err, "{what}: no file would change")?;
        }
        for c in &p.changed {
            writeln!(err, "  would change  {c}")?;
        }
        for c in &p.conflicts {
            writeln!(err, "  conflict      {} [{}]", c.path, c.kind)?;
        }
    }
    write!(err, "{what}: proceed? [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::new(2, "cancelled; nothing written"))
    }
}

/// Whether a confirmation prompt will be shown (so a preview is worth fetching).
pub(crate) fn will_ask(run: RunArgs) -> bool {
    !run.yes && !run.dry_run && io::stdin().is_terminal()
}

/// Runs `smctl sync pull|push`.
pub async fn sync(
    client: &mut Client,
    cmd: SyncCommand,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let (push, args) = match cmd {
        SyncCommand::Pull(a) => (false, a),
        SyncCommand::Push(a) => (true, a),
    };
    let req = |dry_run| pb::SyncRequest {
        project: absolute(&args.project),
        artifact: args.artifact.clone(),
        dry_run,
    };
    let call = async |client: &mut Client, dry_run| -> Result<pb::OperationResponse, Failure> {
        Ok(if push {
            client.sync_push(req(dry_run)).await?.into_inner()
        } else {
            client.sync_pull(req(dry_run)).await?.into_inner()
        })
    };
    let what = format!(
        "sync {} {}",
        if push { "push" } else { "pull" },
        args.artifact
    );
    let preview = if will_ask(args.run) {
        Some(call(client, true).await?)
    } else {
        None
    };
    confirm(args.run, &what, preview.as_ref())?;
    let r = call(client, args.run.dry_run).await?;
    print(out, format, &r)
}

/// Runs `smctl merge`.
pub async fn merge(
    client: &mut Client,
    args: MergeArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let MergeArgs {
        artifact,
        project,
        strategy,
        continue_merge,
        run,
    } = args;
    let prefer = strategy.preference();
    let req = |dry_run| {
        let mut r = pb::MergeRequest {
            project: absolute(&project),
            artifact: artifact.clone(),
            dry_run,
            prefer: 0,
            continue_merge,
        };
        r.set_prefer(prefer);
        r
    };
    let preview = if will_ask(run) {
        Some(client.merge(req(true)).await?.into_inner())
    } else {
        None
    };
    confirm(run, &format!("merge {artifact}"), preview.as_ref())?;
    let r = client.merge(req(run.dry_run)).await?.into_inner();
    print(out, format, &r)?;
    // Files written with conflicts left are not a success: exit 1 (the output lists them).
    Ok(if left_conflicts(&r) { 1 } else { 0 })
}

/// Runs `smctl undo`.
pub async fn undo(
    client: &mut Client,
    args: UndoArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let UndoArgs { operation, run } = args;
    let req = |dry_run| pb::UndoRequest {
        operation: operation.unwrap_or(0),
        dry_run,
    };
    let preview = if will_ask(run) {
        Some(client.undo(req(true)).await?.into_inner())
    } else {
        None
    };
    let what = match operation {
        Some(id) => format!("undo operation {id}"),
        None => "undo the last operation".to_string(),
    };
    confirm(run, &what, preview.as_ref())?;
    let r = client.undo(req(run.dry_run)).await?.into_inner();
    print(out, format, &r)
}

/// Runs `smctl rollback`.
pub async fn rollback(
    client: &mut Client,
    args: RollbackArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let RollbackArgs {
        artifact,
        project,
        collection,
        target,
        run,
    } = args;
    let mode = match target.mode {
        Mode::Replace => pb::RollbackMode::Replace,
        Mode::Preserve => pb::RollbackMode::Preserve,
    };
    let req = |dry_run, to: Option<&String>, at: Option<&String>| {
        let mut r = pb::RollbackRequest {
            artifact: artifact.clone().unwrap_or_default(),
            project: project.as_deref().map(absolute).unwrap_or_default(),
            collection: collection.clone().unwrap_or_default(),
            to: to.cloned().unwrap_or_default(),
            dry_run,
            at: at.cloned().unwrap_or_default(),
            mode: 0,
            paths: target.paths.clone(),
        };
        r.set_mode(mode);
        r
    };
    let preview = if will_ask(run) {
        let r = req(true, target.to.as_ref(), target.at.as_ref());
        Some(client.rollback(r).await?.into_inner())
    } else {
        None
    };
    // A time is resolved once: what the confirmed preview resolved it to is what runs.
    let resolved = preview
        .as_ref()
        .map(|p| &p.resolved_to)
        .filter(|r| target.at.is_some() && !r.is_empty());
    let to = match (&target.to, &target.at, resolved) {
        (Some(to), _, _) => to.clone(),
        (None, at, Some(r)) => format!("{r} (its state at {})", at.as_deref().unwrap_or("")),
        (None, at, None) => format!("its state at {}", at.as_deref().unwrap_or("")),
    };
    let mode = match target.mode {
        Mode::Replace => "",
        Mode::Preserve => " keeping local changes",
    };
    let what = match (&artifact, &project, &collection) {
        (Some(a), _, _) => format!("rollback {a} to {to}{mode}"),
        (None, Some(p), _) => format!("rollback project {} to {to}{mode}", p.display()),
        (None, None, c) => format!(
            "rollback collection {} to {to}{mode}",
            c.as_deref().unwrap_or("")
        ),
    };
    confirm(run, &what, preview.as_ref())?;
    let r = match resolved {
        Some(to) => req(run.dry_run, Some(to), None),
        None => req(run.dry_run, target.to.as_ref(), target.at.as_ref()),
    };
    let r = client.rollback(r).await?.into_inner();
    print(out, format, &r)
}

/// Runs `smctl audit`.
pub async fn audit(
    client: &mut Client,
    args: AuditArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let r = client
        .audit(pb::AuditRequest {
            since: args.since.unwrap_or_default(),
        })
        .await?
        .into_inner();
    match format {
        Format::Json => json_out(
            out,
            &json!({"operations": r.operations.iter().map(info_json).collect::<Vec<_>>()}),
        )?,
        Format::Table => {
            for o in &r.operations {
                let status = match o.status.as_str() {
                    "succeeded" => "ok".to_string(),
                    "interrupted" => format!(
                        "interrupted; at the next start: {}",
                        if o.recovery.is_empty() {
                            "nothing to do".to_string()
                        } else {
                            o.recovery.join("; ")
                        }
                    ),
                    "" if o.success => "ok".to_string(),
                    s => format!("{s}: {}", o.error),
                };
                writeln!(
                    out,
                    "{:>4}  {}  {:<9}  {}  snapshot {}  restored {} merged {} conflicted {}  {status}",
                    o.id,
                    o.time,
                    o.operation,
                    o.targets.join(", "),
                    if o.safety_snapshots.is_empty() {
                        "-".to_string()
                    } else {
                        o.safety_snapshots.join(",")
                    },
                    o.files_restored.len(),
                    o.files_merged.len(),
                    o.files_conflicted.len(),
                )?;
            }
        }
    }
    Ok(0)
}

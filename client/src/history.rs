//! `smctl snapshot|log|show|tag|diff`: history commands and how their answers print.
//!
//! JSON field names (stable): snapshots have `id`, `target` (`collection` or `project`),
//! `time`, `origin`, `message`, `artifacts`; versions have `id`, `scope`, `owner`,
//! `profile_root`, `artifact_path`, `location` (`collection NAME`, `project FOLDER`),
//! `content_hash` (also as `hash`), `parent` (the first parent), `parents` (all of them),
//! `time`, `origin`, `message`, `tags`, `size` (and `files` for `show`); diffs have `files[]` with `path`, `status`,
//! `binary`, `lines_added`, `lines_removed`, `unified`, `hunks[]` (`header`, `lines`).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};
use skillmeatd_proto::pb;

use crate::cli::{Freshness, absolute};
use crate::failure::Failure;
use crate::output::Format;
use crate::session::Client;

/// `smctl snapshot …`
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot a collection (by name) or a project (by folder) now; prints its id.
    #[command(
        after_help = "Examples:\n  smctl snapshot create default -m 'before cleanup'\n  smctl snapshot create ~/code/app"
    )]
    Create {
        /// Collection name or project folder [default: collection `default`].
        target: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Snapshots, newest first.
    #[command(
        after_help = "Examples:\n  smctl snapshot list\n  smctl snapshot list default --limit 10 --cursor s42"
    )]
    List {
        /// Collection name or project folder [default: all].
        target: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Continue after this snapshot id (from the previous page's `next_cursor`).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One snapshot and its artifact versions.
    Show { id: String },
    /// Write a snapshot to FILE: `.tar.zst`, or `.tar.gz` in SkillMeat's snapshot layout.
    #[command(
        after_help = "Examples:\n  smctl snapshot export s12 -o backup.tar.zst\n  smctl snapshot export s12 -o 20261125-100000-000000.tar.gz"
    )]
    Export {
        id: String,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Import a snapshot archive, or with --skillmeat every ~/.skillmeat/snapshots archive.
    #[command(
        after_help = "Examples:\n  smctl snapshot import backup.tar.zst\n  smctl snapshot import --skillmeat"
    )]
    Import {
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        skillmeat: bool,
    },
}

/// `smctl log` arguments.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Artifact name or path.
    pub artifact: String,
    #[command(flatten)]
    pub select: Selector,
    /// The version graph across the collection and every project, drawn like
    /// `git log --graph --oneline` (with --format json: every version of the graph).
    #[arg(long)]
    pub graph: bool,
    #[command(flatten)]
    pub fresh: Freshness,
}

/// `smctl show` arguments.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    pub version: String,
}

/// `smctl tag` arguments.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    pub version: String,
    pub name: String,
}

/// `smctl diff` arguments.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// First state (omit with --at).
    pub a: Option<String>,
    /// Second state.
    pub b: Option<String>,
    /// Limit the diff to this artifact (name or path).
    #[arg(long)]
    pub artifact: Option<String>,
    /// The state at this time is the first side (30m, 2h, 3d, 2026-11-25T10:00).
    #[arg(long)]
    pub at: Option<String>,
    /// Exit 1 when the two differ.
    #[arg(long)]
    pub exit_code: bool,
    #[command(flatten)]
    pub select: Selector,
    #[command(flatten)]
    pub fresh: Freshness,
}

/// Which artifact, as the user named it.
#[derive(Debug, clap::Args)]
pub struct Selector {
    /// A project folder whose deployment this is.
    #[arg(long)]
    pub project: Option<PathBuf>,
    /// The collection holding the artifact.
    #[arg(long)]
    pub collection: Option<String>,
}

impl Selector {
    fn to_pb(&self, artifact: Option<String>) -> pb::ArtifactSelector {
        pb::ArtifactSelector {
            artifact: artifact.unwrap_or_default(),
            project: self.project.as_deref().map(absolute).unwrap_or_default(),
            collection: self.collection.clone().unwrap_or_default(),
        }
    }
}

/// A collection name or a project folder: an existing folder is a project.
fn target(t: Option<String>) -> pb::SnapshotTarget {
    match t {
        Some(t) if t.contains('/') || std::path::Path::new(&t).is_dir() => pb::SnapshotTarget {
            collection: String::new(),
            project: absolute(std::path::Path::new(&t)),
        },
        Some(t) => pb::SnapshotTarget {
            collection: t,
            project: String::new(),
        },
        None => pb::SnapshotTarget::default(),
    }
}

fn json_out(out: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

fn target_json(t: Option<&pb::SnapshotTarget>) -> Value {
    match t {
        Some(t) if !t.project.is_empty() => json!({"project": t.project}),
        Some(t) => json!({"collection": t.collection}),
        None => Value::Null,
    }
}

fn target_text(t: Option<&pb::SnapshotTarget>) -> String {
    match t {
        Some(t) if !t.project.is_empty() => t.project.clone(),
        Some(t) => t.collection.clone(),
        None => String::new(),
    }
}

fn snap_json(s: &pb::SnapshotInfo) -> Value {
    json!({"id": s.id, "target": target_json(s.target.as_ref()), "time": s.time,
           "origin": s.origin, "message": s.message, "artifacts": s.artifacts})
}

fn version_json(v: &pb::VersionInfo) -> Value {
    let mut j = json!({"id": v.id, "scope": v.scope, "owner": v.owner,
        "profile_root": v.profile_root, "artifact_path": v.artifact_path,
        "content_hash": v.content_hash, "hash": v.content_hash,
        "parent": (!v.parent.is_empty()).then_some(&v.parent),
        "parents": crate::graph::parents(v), "location": crate::graph::location(v),
        "time": v.time, "origin": v.origin, "message": v.message, "tags": v.tags, "size": v.size});
    if !v.files.is_empty() {
        j["files"] = v
            .files
            .iter()
            .map(|f| json!({"path": f.path, "blob": f.blob, "size": f.size,
                "mode": format!("{:o}", f.mode), "symlink": (!f.symlink.is_empty()).then_some(&f.symlink)}))
            .collect();
    }
    j
}

fn snapshots_table(out: &mut impl Write, list: &[pb::SnapshotInfo]) -> io::Result<()> {
    for s in list {
        writeln!(
            out,
            "{:<8} {}  {:<8} {:>4} artifacts  {}  {}",
            s.id,
            s.time,
            s.origin,
            s.artifacts,
            target_text(s.target.as_ref()),
            s.message
        )?;
    }
    Ok(())
}

fn versions_table(out: &mut impl Write, list: &[pb::VersionInfo]) -> io::Result<()> {
    for v in list {
        let parent = if v.parent.is_empty() { "-" } else { &v.parent };
        let tags = if v.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", v.tags.join(", "))
        };
        writeln!(
            out,
            "{:<8} {}  {:<8} {}  parent {parent}{tags}  {}",
            v.id,
            v.time,
            v.origin,
            &v.content_hash[..v.content_hash.len().min(12)],
            v.message
        )?;
    }
    Ok(())
}

/// Runs a snapshot command.
pub async fn snapshot(
    client: &mut Client,
    cmd: SnapshotCommand,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    match cmd {
        SnapshotCommand::Create { target: t, message } => {
            let t = target(Some(t.unwrap_or_else(|| "default".into())));
            let r = client
                .create_snapshot(pb::CreateSnapshotRequest {
                    target: Some(t),
                    message: message.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let s = r.snapshot.unwrap_or_default();
            match format {
                Format::Json => json_out(out, &snap_json(&s))?,
                Format::Table => writeln!(out, "{}", s.id)?,
            }
        }
        SnapshotCommand::List {
            target: t,
            limit,
            cursor,
        } => {
            let r = client
                .list_snapshots(pb::ListSnapshotsRequest {
                    target: Some(target(t)),
                    limit,
                    cursor: cursor.unwrap_or_default(),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(
                    out,
                    &json!({"snapshots": r.snapshots.iter().map(snap_json).collect::<Vec<_>>(),
                            "next_cursor": (!r.next_cursor.is_empty()).then_some(&r.next_cursor)}),
                )?,
                Format::Table => {
                    snapshots_table(out, &r.snapshots)?;
                    if !r.next_cursor.is_empty() {
                        writeln!(out, "more: --cursor {}", r.next_cursor)?;
                    }
                }
            }
        }
        SnapshotCommand::Show { id } => {
            let r = client
                .get_snapshot(pb::GetSnapshotRequest { id })
                .await?
                .into_inner();
            let s = r.snapshot.unwrap_or_default();
            match format {
                Format::Json => {
                    let mut j = snap_json(&s);
                    j["versions"] = r.versions.iter().map(version_json).collect();
                    json_out(out, &j)?;
                }
                Format::Table => {
                    snapshots_table(out, std::slice::from_ref(&s))?;
                    for v in &r.versions {
                        let at = if v.profile_root.is_empty() {
                            v.artifact_path.clone()
                        } else {
                            format!("{}/{}", v.profile_root, v.artifact_path)
                        };
                        writeln!(
                            out,
                            "  {:<8} {}  {at}",
                            v.id,
                            &v.content_hash[..12.min(v.content_hash.len())]
                        )?;
                    }
                }
            }
        }
        SnapshotCommand::Export { id, output } => {
            let r = client
                .export_snapshot(pb::ExportSnapshotRequest {
                    id,
                    path: absolute(&output),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(out, &json!({"path": r.path, "bytes": r.bytes}))?,
                Format::Table => writeln!(out, "wrote {} ({} bytes)", r.path, r.bytes)?,
            }
        }
        SnapshotCommand::Import { file, skillmeat } => {
            if file.is_none() && !skillmeat {
                return Err(Failure::new(2, "give FILE or --skillmeat"));
            }
            let r = client
                .import_snapshot(pb::ImportSnapshotRequest {
                    path: file.as_deref().map(absolute).unwrap_or_default(),
                    skillmeat_snapshots: skillmeat,
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_out(
                    out,
                    &json!({"snapshots": r.snapshots.iter().map(snap_json).collect::<Vec<_>>(),
                            "new_versions": r.new_versions, "skipped": r.skipped}),
                )?,
                Format::Table => {
                    snapshots_table(out, &r.snapshots)?;
                    writeln!(
                        out,
                        "{} new versions, {} archives already imported",
                        r.new_versions, r.skipped
                    )?;
                }
            }
        }
    }
    Ok(0)
}

/// `smctl log ARTIFACT`.
pub async fn log(
    client: &mut Client,
    args: LogArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let r = client
        .artifact_log(pb::ArtifactLogRequest {
            artifact: Some(args.select.to_pb(Some(args.artifact))),
            graph: args.graph,
            stale_ok: args.fresh.stale_ok(),
        })
        .await?
        .into_inner();
    match format {
        Format::Json => json_out(
            out,
            &json!({"versions": r.versions.iter().map(version_json).collect::<Vec<_>>()}),
        )?,
        Format::Table if r.versions.is_empty() => writeln!(out, "No versions recorded yet.")?,
        Format::Table if args.graph => crate::graph::print(out, &r.versions)?,
        Format::Table => versions_table(out, &r.versions)?,
    }
    Ok(0)
}

/// `smctl show VERSION`.
pub async fn show(
    client: &mut Client,
    args: ShowArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let v = client
        .get_version(pb::GetVersionRequest {
            version: args.version,
        })
        .await?
        .into_inner()
        .version
        .unwrap_or_default();
    match format {
        Format::Json => json_out(out, &version_json(&v))?,
        Format::Table => {
            versions_table(out, std::slice::from_ref(&v))?;
            writeln!(out, "{} {}: {}", v.scope, v.owner, v.artifact_path)?;
            for f in &v.files {
                let name = if f.path.is_empty() { "(file)" } else { &f.path };
                writeln!(out, "  {:o} {:>8}  {name}", f.mode, f.size)?;
            }
        }
    }
    Ok(0)
}

/// `smctl tag VERSION NAME`.
pub async fn tag(
    client: &mut Client,
    args: TagArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let v = client
        .tag_version(pb::TagVersionRequest {
            version: args.version,
            tag: args.name,
        })
        .await?
        .into_inner()
        .version
        .unwrap_or_default();
    match format {
        Format::Json => json_out(out, &version_json(&v))?,
        Format::Table => versions_table(out, std::slice::from_ref(&v))?,
    }
    Ok(0)
}

/// `smctl diff A B` (or `--at TIME B`); exits 1 with `--exit-code` when they differ.
pub async fn diff(
    client: &mut Client,
    args: DiffArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let (a, b) = match (args.at, args.a, args.b) {
        (Some(t), Some(b), None) => (format!("@{t}"), b),
        (None, Some(a), Some(b)) => (a, b),
        _ => {
            return Err(Failure::new(
                2,
                "give two states, or --at TIME and one state",
            ));
        }
    };
    let r = client
        .diff(pb::DiffRequest {
            a,
            b,
            subject: Some(args.select.to_pb(args.artifact)),
            stale_ok: args.fresh.stale_ok(),
        })
        .await?
        .into_inner();
    match format {
        Format::Json => {
            let files: Vec<Value> = r
                .files
                .iter()
                .map(|f| json!({"path": f.path, "status": f.status, "binary": f.binary,
                    "lines_added": f.lines_added, "lines_removed": f.lines_removed,
                    "unified": f.unified,
                    "hunks": f.hunks.iter().map(|h| json!({"header": h.header, "lines": h.lines})).collect::<Vec<_>>()}))
                .collect();
            json_out(out, &json!({"files": files}))?;
        }
        Format::Table => {
            let color = io::stdout().is_terminal();
            for f in &r.files {
                if f.binary {
                    writeln!(out, "Binary files differ: {} ({})", f.path, f.status)?;
                    continue;
                }
                for line in f.unified.lines() {
                    let paint = match line.as_bytes().first() {
                        _ if !color || line.starts_with("+++") || line.starts_with("---") => "",
                        Some(b'+') => "\x1b[32m",
                        Some(b'-') => "\x1b[31m",
                        Some(b'@') => "\x1b[36m",
                        _ => "",
                    };
                    let reset = if paint.is_empty() { "" } else { "\x1b[0m" };
                    writeln!(out, "{paint}{line}{reset}")?;
                }
            }
        }
    }
    Ok(if args.exit_code && !r.files.is_empty() {
        1
    } else {
        0
    })
}

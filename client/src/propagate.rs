//! `smctl propagate`: one collection artifact into every project it is deployed to, as one
//! operation, and how the answer prints.
//!
//! JSON (stable): `operation` (null for dry runs and when nothing needed doing; else as
//! `smctl audit` shows operations), `dry_run`, `collection`, `projects[]` with `project`,
//! `drift_before`, `action` (`none`, `pull`, `merge`, `skip`), `reason`, `changed[]`,
//! `conflicts[]` (`path`, `kind`, `binary`, `resolved`), `error` (this project's writes
//! failed; the others went on) and `drift_after` (null for dry runs).
//!
//! Exit codes: 0 done; 1 a project was left in conflict or failed; 2 not confirmed.

use std::io::{self, Write};

use serde_json::{Value, json};
use skillmeatd_proto::pb;

use crate::failure::Failure;
use crate::ops::{MergeArgsStrategy, RunArgs, confirm, info_json, json_out, will_ask};
use crate::output::Format;
use crate::session::Client;

/// `smctl propagate` arguments.
#[derive(Debug, clap::Args)]
pub struct PropagateArgs {
    /// Artifact name, `type/name`, or path in the profile root.
    pub artifact: String,
    /// The collection it is deployed from [default: the only one it is deployed from].
    #[arg(long)]
    pub collection: Option<String>,
    /// Merge projects whose copy has local edits (modified, conflict) instead of leaving
    /// them alone.
    #[arg(long)]
    pub merge: bool,
    #[command(flatten)]
    pub strategy: MergeArgsStrategy,
    #[command(flatten)]
    pub run: RunArgs,
}

fn project_json(p: &pb::ProjectPropagation) -> Value {
    json!({"project": p.project, "drift_before": p.drift_before, "action": p.action,
        "reason": p.reason, "changed": p.changed,
        "conflicts": p.conflicts.iter().map(|c| json!({"path": c.path, "kind": c.kind,
            "binary": c.binary, "resolved": (!c.resolved.is_empty()).then_some(&c.resolved)}))
            .collect::<Vec<_>>(),
        "error": (!p.error.is_empty()).then_some(&p.error),
        "drift_after": (!p.drift_after.is_empty()).then_some(&p.drift_after)})
}

fn text(out: &mut impl Write, r: &pb::PropagateResponse) -> io::Result<()> {
    match &r.operation {
        Some(o) => writeln!(
            out,
            "operation {} (propagate) {}; safety snapshots {}; undo every project with `smctl undo {}`",
            o.id,
            o.status,
            o.safety_snapshots.join(", "),
            o.id
        )?,
        None if r.dry_run => writeln!(out, "dry run: nothing written")?,
        None => writeln!(out, "nothing to do: no project needs a change")?,
    }
    for p in &r.projects {
        let after = if p.drift_after.is_empty() {
            String::new()
        } else {
            format!(" → {}", p.drift_after)
        };
        writeln!(
            out,
            "{:<6} {}  [{}{after}]  {}",
            p.action, p.project, p.drift_before, p.reason
        )?;
        for c in &p.changed {
            writeln!(out, "         changed   {c}")?;
        }
        for c in &p.conflicts {
            let how = if c.resolved.is_empty() {
                "unresolved".to_string()
            } else {
                format!("took {}", c.resolved)
            };
            writeln!(out, "         conflict  {} [{}]: {how}", c.path, c.kind)?;
        }
        if !p.error.is_empty() {
            writeln!(out, "         FAILED    {}", p.error)?;
        }
    }
    Ok(())
}

/// Runs `smctl propagate`.
pub async fn propagate(
    client: &mut Client,
    args: PropagateArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let prefer = args.strategy.preference();
    let req = |dry_run| {
        let mut r = pb::PropagateRequest {
            artifact: args.artifact.clone(),
            collection: args.collection.clone().unwrap_or_default(),
            dry_run,
            merge: args.merge,
            prefer: 0,
        };
        r.set_prefer(prefer);
        r
    };
    let what = format!("propagate {}", args.artifact);
    if will_ask(args.run) {
        let preview = client.propagate(req(true)).await?.into_inner();
        text(&mut io::stderr().lock(), &preview)?;
        if preview
            .projects
            .iter()
            .all(|p| matches!(p.action.as_str(), "none" | "skip"))
        {
            text(out, &preview)?;
            return Ok(0);
        }
    }
    confirm(args.run, &what, None)?;
    let r = client.propagate(req(args.run.dry_run)).await?.into_inner();
    match format {
        Format::Json => json_out(
            out,
            &json!({"operation": r.operation.as_ref().map(info_json), "dry_run": r.dry_run,
                "collection": r.collection,
                "projects": r.projects.iter().map(project_json).collect::<Vec<_>>()}),
        )?,
        Format::Table => text(out, &r)?,
    }
    let trouble = r.projects.iter().any(|p| !p.error.is_empty())
        || r.operation
            .as_ref()
            .is_some_and(|o| o.status == "conflicted");
    Ok(if trouble { 1 } else { 0 })
}

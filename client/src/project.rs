//! `smctl project list|add|remove|ignore`: the projects the daemon knows, found by
//! discovery or registered by hand.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use skillmeatd_proto::pb;

use crate::cli::{Freshness, absolute};
use crate::failure::Failure;
use crate::output::{self, Format};
use crate::session::Client;

/// `smctl project …`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Every known project: how it was found, roots, deployments and drift.
    List {
        #[command(flatten)]
        fresh: Freshness,
    },
    /// Register a project folder by hand.
    ///
    /// Refused unless --force: `/`, your home folder itself, system folders, and folders
    /// holding no SkillMeat deployment file (`.skillmeat-deployed.toml`) in any profile root.
    Add {
        path: PathBuf,
        /// Add it even though it does not look like a project.
        #[arg(long)]
        force: bool,
    },
    /// Forget a project registered by hand.
    Remove { path: PathBuf },
    /// Hide a discovered project for good (`--undo` shows it again).
    Ignore {
        path: PathBuf,
        #[arg(long)]
        undo: bool,
    },
}

/// Runs one `smctl project` command.
pub async fn run(
    client: &mut Client,
    cmd: ProjectCommand,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    match cmd {
        ProjectCommand::List { fresh } => {
            let r = client
                .list_projects(pb::ListProjectsRequest {
                    stale_ok: fresh.stale_ok(),
                })
                .await?
                .into_inner();
            output::problems(&r.problems);
            output::projects(out, format, &r.projects)?;
        }
        ProjectCommand::Add { path, force } => {
            let r = client
                .add_project(pb::AddProjectRequest {
                    path: absolute(&path),
                    force,
                })
                .await?
                .into_inner();
            let projects: Vec<pb::ProjectInfo> = r.project.into_iter().collect();
            output::projects(out, format, &projects)?;
        }
        ProjectCommand::Remove { path } => {
            let path = absolute(&path);
            client
                .remove_project(pb::RemoveProjectRequest { path: path.clone() })
                .await?;
            output::done(out, format, "removed", &path)?;
        }
        ProjectCommand::Ignore { path, undo } => {
            let path = absolute(&path);
            client
                .ignore_project(pb::IgnoreProjectRequest {
                    path: path.clone(),
                    unignore: undo,
                })
                .await?;
            let what = if undo { "unignored" } else { "ignored" };
            output::done(out, format, what, &path)?;
        }
    }
    Ok(0)
}

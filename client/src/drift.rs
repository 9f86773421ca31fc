//! `smctl drift [PROJECT]`: every deployed artifact's drift, printed by
//! [`crate::output::drift`] in `skillmeat sync-check --format json`'s schema.

use std::io::Write;
use std::path::PathBuf;

use skillmeatd_proto::pb;

use crate::cli::{Freshness, absolute};
use crate::failure::Failure;
use crate::output::{self, Format};
use crate::session::Client;

/// `smctl drift` arguments.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// Project folder [default: every known project].
    pub project: Option<PathBuf>,
    /// Exit 1 when any drift is found.
    #[arg(long)]
    pub exit_code: bool,
    /// Also list artifacts that are in sync.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub fresh: Freshness,
}

/// Runs `smctl drift`; exits 1 with `--exit-code` when anything drifted.
pub async fn run(
    client: &mut Client,
    args: DriftArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let several = args.project.is_none();
    let req = pb::GetDriftRequest {
        project: args.project.as_deref().map(absolute).unwrap_or_default(),
        include_in_sync: args.all,
        sync: false,
        stale_ok: args.fresh.stale_ok(),
    };
    let r = client.get_drift(req).await?.into_inner();
    output::problems(&r.problems);
    let drifted = output::drift(out, format, &r, several)?;
    Ok(if args.exit_code && drifted { 1 } else { 0 })
}

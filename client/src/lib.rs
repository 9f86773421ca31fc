//! `smctl`: the command-line client of skillmeatd.
//!
//! Every command talks to the daemon over its Unix socket (through the wire crate,
//! `skillmeatd_proto`), except `service`, `completions` and `man`, which need none. Output
//! is a readable table on a terminal and JSON otherwise (`--format` overrides); errors go
//! to stderr.
//!
//! Exit codes: 0 success; 1 drift found with `--exit-code`; 2 usage or request error;
//! 3 the daemon is not running, or went away (`smctl watch` included). A closed stdout
//! (`smctl drift | head`) ends any command quietly with 0 ([`stdout`]).
//!
//! This library is the whole of smctl; the `smctl` binary (built by the root package, beside
//! `skillmeatd`, so that one install carries both) only calls [`main`]. This file parses,
//! builds the runtime, dispatches to one module per command family ([`drift`], [`watch`],
//! [`project`], [`history`], [`ops`], [`notify`], [`doctor`], [`service`]) and maps the
//! result to the exit code. [`cli`] holds the command tree.

mod cli;
mod doctor;
mod drift;
mod failure;
mod graph;
mod history;
mod locate;
mod lsp;
mod notify;
mod ops;
mod output;
mod project;
mod propagate;
mod service;
mod session;
mod stdout;
mod watch;

use std::process::ExitCode;

use clap::Parser;
use skillmeatd_proto::paths::Paths;

use cli::{Cli, Command};
use failure::Failure;
use output::Format;
use stdout::Stdout;

/// Runs smctl with the process's arguments and returns its exit code. `revision` is the
/// git commit the binary was built from, if known (its `--version` names it).
pub fn main(revision: Option<&'static str>) -> ExitCode {
    let _ = cli::REVISION.set(revision);
    let cli = Cli::parse();
    let format = cli.output_format();
    let explicit = cli.explicit_paths();
    let result = cli
        .paths()
        .and_then(|paths| run(cli.command, &paths, explicit, format));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("smctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Answers the commands that need no daemon here; the others on a small runtime.
fn run(
    command: Command,
    paths: &Paths,
    explicit: [bool; 3],
    format: Format,
) -> Result<u8, Failure> {
    match command {
        Command::Completions(args) => {
            cli::completions(args.shell, &mut Stdout::lock());
            Ok(0)
        }
        Command::Man => Ok(cli::man(&mut Stdout::lock()).map(|()| 0)?),
        Command::Service(cmd) => service::run(cmd, paths, explicit, format),
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(dispatch(command, paths, format)),
    }
}

/// Runs a command that talks to the daemon.
async fn dispatch(command: Command, paths: &Paths, format: Format) -> Result<u8, Failure> {
    if let Command::Doctor = command {
        // Doctor never starts the daemon: finding it stopped is one of its answers.
        return doctor::run(paths, format).await;
    }
    if let Command::Lsp = command {
        // The language server connects (and reconnects) by itself, and reports to the editor.
        return lsp::run(paths).await;
    }
    let client = &mut session::open(paths).await?;
    let out = &mut Stdout::lock();
    match command {
        Command::Status(args) => {
            let stale_ok = args.fresh.stale_ok();
            let status = client
                .status(skillmeatd_proto::pb::StatusRequest { stale_ok })
                .await?;
            Ok(output::status(out, format, status.get_ref()).map(|()| 0)?)
        }
        Command::Drift(args) => drift::run(client, args, format, out).await,
        Command::Watch(args) => watch::run(client, args, format, out).await,
        Command::Project(cmd) => project::run(client, cmd, format, out).await,
        Command::Snapshot(cmd) => history::snapshot(client, cmd, format, out).await,
        Command::Log(args) => history::log(client, args, format, out).await,
        Command::Show(args) => history::show(client, args, format, out).await,
        Command::Tag(args) => history::tag(client, args, format, out).await,
        Command::Diff(args) => history::diff(client, args, format, out).await,
        Command::Sync(cmd) => ops::sync(client, cmd, format, out).await,
        Command::Merge(args) => ops::merge(client, args, format, out).await,
        Command::Propagate(args) => propagate::propagate(client, args, format, out).await,
        Command::Undo(args) => ops::undo(client, args, format, out).await,
        Command::Rollback(args) => ops::rollback(client, args, format, out).await,
        Command::Audit(args) => ops::audit(client, args, format, out).await,
        Command::Notify(cmd) => notify::run(client, cmd, format, out).await,
        Command::Doctor
        | Command::Lsp
        | Command::Service(_)
        | Command::Completions(_)
        | Command::Man => {
            unreachable!("answered without a session")
        }
    }
}

//! `skillmeatd`: the daemon binary. Parses arguments, sets up logging, calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use skillmeatd::daemon::{self, DaemonError, Started};
use skillmeatd::hash::{self, Variant};
use skillmeatd::paths::Paths;

/// Always-on drift detection for SkillMeat collections and projects.
#[derive(Debug, Parser)]
#[command(
    version = skillmeatd_proto::version_text(env!("CARGO_PKG_VERSION"), option_env!("SKILLMEATD_REVISION")),
    about,
    after_help = "\
Examples:
  skillmeatd start              detach into the background on ~/.skillmeat
  skillmeatd run                stay in the foreground (systemd, launchd)
  skillmeatd run --check-config validate ~/.skillmeat/daemon.toml and exit
  skillmeatd hash .claude/skills/review
  skillmeatd stop"
)]
struct Cli {
    /// SkillMeat's home folder.
    #[arg(long, global = true, env = "SKILLMEAT_HOME", value_name = "DIR")]
    skillmeat_home: Option<PathBuf>,
    /// The daemon's state directory (store, lock, pid, log) [default: <home>/daemon].
    #[arg(long, global = true, env = "SKILLMEATD_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The API socket [default: $XDG_RUNTIME_DIR/skillmeatd/skillmeatd.sock or <state>/skillmeatd.sock].
    #[arg(long, global = true, env = "SKILLMEATD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Log filter, e.g. `info` or `skillmeatd=debug` (RUST_LOG wins when set).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run in the foreground until SIGTERM, SIGINT or `skillmeatd stop`.
    Run {
        /// Only validate <home>/daemon.toml: exit 0 when usable, 1 with the problem.
        #[arg(long)]
        check_config: bool,
        /// Only read the whole store (no daemon may run): exit 0 when sound, 1 listing the
        /// damage and where it is, 3 when a daemon runs.
        #[arg(long, conflicts_with = "check_config")]
        check_store: bool,
    },
    /// Start in the background; returns once the daemon answers.
    Start,
    /// Ask the running daemon to stop, and wait for it.
    Stop,
    /// Say whether a daemon is running (exit 0) or not (exit 3).
    Status,
    /// Print SkillMeat's content hash of each path, like sha256sum (no daemon needed).
    Hash {
        /// Hash the copy a deploy would make (ignored names dropped, symlinks followed).
        #[arg(long)]
        deployed_copy: bool,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the manual page (roff), generated from this command line.
    Man,
}

fn init_tracing(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Hash {
        deployed_copy,
        paths,
    } = &cli.command
    {
        return hash_paths(paths, *deployed_copy);
    }
    if let Command::Man = cli.command {
        return print_man();
    }
    let paths = match Paths::resolve(cli.skillmeat_home, cli.state_dir, cli.socket) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skillmeatd: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run {
            check_config: true, ..
        } => Ok(check_config(&paths)),
        Command::Run {
            check_store: true, ..
        } => Ok(check_store(&paths)),
        Command::Run { .. } => {
            init_tracing(&cli.log_level, cli.log_format);
            daemon::run(&paths, None).map(|()| ExitCode::SUCCESS)
        }
        Command::Start => daemon::start(&paths, || init_tracing(&cli.log_level, cli.log_format))
            .map(|s| {
                match s {
                    Started::AlreadyRunning => {
                        println!("skillmeatd already running on {}", paths.socket.display())
                    }
                    Started::Started => println!(
                        "skillmeatd started on {} (log: {})",
                        paths.socket.display(),
                        paths.log_file().display()
                    ),
                }
                ExitCode::SUCCESS
            }),
        Command::Stop => daemon::stop(&paths).map(|()| {
            println!("skillmeatd stopped");
            ExitCode::SUCCESS
        }),
        Command::Status => match daemon::status(&paths) {
            Ok(s) => {
                println!(
                    "skillmeatd {} running (pid {}, up {}s) on {}",
                    s.daemon_version, s.pid, s.uptime_seconds, s.socket_path
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(DaemonError::NotRunning { socket }) => {
                println!(
                    "skillmeatd is not running (no answer on {})",
                    socket.display()
                );
                Ok(ExitCode::from(3))
            }
            Err(e) => Err(e),
        },
        Command::Hash { .. } | Command::Man => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skillmeatd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `skillmeatd run --check-config`: whether the daemon would accept its configuration.
fn check_config(paths: &Paths) -> ExitCode {
    let file = paths.skillmeat_home.join(skillmeatd::config::FILE_NAME);
    match skillmeatd::config::Config::load(&paths.skillmeat_home) {
        Ok(_) if file.exists() => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Ok(_) => {
            println!("{}: not present; defaults in use", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skillmeatd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `skillmeatd man`: the manual page, as the packages install it. A closed stdout
/// (`skillmeatd man | head`) is not an error.
fn print_man() -> ExitCode {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skillmeatd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `skillmeatd run --check-store`: reads every record and blob of the store (never
/// repairs it: the daemon does that when it starts).
fn check_store(paths: &Paths) -> ExitCode {
    use skillmeatd::paths::StateFiles;
    let dir = paths.store_dir();
    let _lock = match daemon::InstanceLock::acquire(paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skillmeatd: {e}; its store is checked while it runs (smctl status)");
            return ExitCode::from(3);
        }
    };
    if !dir.exists() {
        println!("{}: no store yet", dir.display());
        return ExitCode::SUCCESS;
    }
    let problems = match skillmeatd::store::Store::open(&dir) {
        Ok(store) => store.check(),
        Err(e) => vec![e.to_string()],
    };
    if problems.is_empty() {
        println!("{}: ok", dir.display());
        return ExitCode::SUCCESS;
    }
    for p in problems.iter().take(20) {
        println!("{}: {p}", dir.display());
    }
    if problems.len() > 20 {
        println!("{}: and {} more", dir.display(), problems.len() - 20);
    }
    ExitCode::FAILURE
}

fn hash_paths(paths: &[PathBuf], deployed_copy: bool) -> ExitCode {
    let variant = if deployed_copy {
        Variant::DeployedCopy
    } else {
        Variant::Legacy
    };
    let mut code = ExitCode::SUCCESS;
    for p in paths {
        match hash::content_hash(p, variant) {
            Ok(h) => println!("{h}  {}", p.display()),
            Err(e) => {
                eprintln!("skillmeatd: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

//! `smctl service install|uninstall|status`: run skillmeatd under the user's service
//! manager, so it starts at login and is restarted if it dies.
//!
//! The files written are the repository's own `systemd/skillmeatd.service` (+ `.socket`)
//! and `launchd/dev.skillmeat.skillmeatd.plist`, compiled in, with the real paths filled
//! in: the absolute path of the `skillmeatd` binary, the log under the state directory,
//! and, when smctl was pointed at a non-default home, state directory or socket, the same
//! settings for the daemon. Rendering is pure ([`render`]); [`install`], [`uninstall`] and
//! [`status`] are the thin edges that write files and run `systemctl --user` or
//! `launchctl`, and explain what to do by hand where those cannot work. None of them needs
//! the daemon.

mod bus;
mod render;

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Subcommand;
use serde_json::json;
use skillmeatd_proto::paths::Paths;

use crate::failure::Failure;
use crate::locate;
use crate::output::Format;

use render::{LABEL, SERVICE_UNIT, SOCKET_UNIT, Spec};

/// `smctl service …`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
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
        manager: Option<Manager>,
    },
    /// Stop and disable the service, and remove its files.
    Uninstall {
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum)]
        manager: Option<Manager>,
    },
    /// Whether the service is installed, what it runs, and whether the daemon answers.
    Status {
        #[arg(long, value_enum)]
        manager: Option<Manager>,
    },
}

/// Runs one `smctl service` command; `explicit` says which of home, state directory and
/// socket were given (they are passed on to the service).
pub fn run(
    cmd: ServiceCommand,
    paths: &Paths,
    explicit: [bool; 3],
    format: Format,
) -> Result<u8, Failure> {
    match cmd {
        ServiceCommand::Install {
            daemon_bin,
            print,
            no_start,
            socket_activation,
            manager,
        } => {
            let bin = locate::skillmeatd(daemon_bin.as_deref()).map_err(|e| Failure::new(2, e))?;
            let spec = Spec::new(bin, paths.clone(), explicit, socket_activation);
            let opts = InstallOptions { print, no_start };
            install(manager.unwrap_or_else(Manager::native), &spec, opts)
        }
        ServiceCommand::Uninstall { dry_run, manager } => {
            uninstall(manager.unwrap_or_else(Manager::native), dry_run)
        }
        ServiceCommand::Status { manager } => {
            status(manager.unwrap_or_else(Manager::native), paths, format)
        }
    }
}

/// Which service manager to write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    /// launchd on macOS, systemd elsewhere.
    pub fn native() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// The files a manager needs, with where they go.
pub fn files(manager: Manager, spec: &Spec) -> Result<Vec<(PathBuf, String)>, Failure> {
    let dir = definition_dir(manager)?;
    Ok(match manager {
        Manager::Systemd => {
            let mut f = vec![(dir.join(SERVICE_UNIT), render::systemd_unit(spec))];
            if spec.socket_activation {
                f.push((dir.join(SOCKET_UNIT), render::systemd_socket(spec)));
            }
            f
        }
        Manager::Launchd => vec![(
            dir.join(format!("{LABEL}.plist")),
            render::launchd_plist(spec).map_err(|e| Failure::new(2, e))?,
        )],
    })
}

/// `~/.config/systemd/user` (honouring `XDG_CONFIG_HOME`) or `~/Library/LaunchAgents`.
fn definition_dir(manager: Manager) -> Result<PathBuf, Failure> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = || var("HOME").ok_or_else(|| Failure::new(2, "HOME is not set"));
    Ok(match manager {
        Manager::Systemd => match var("XDG_CONFIG_HOME") {
            Some(c) => c,
            None => home()?.join(".config"),
        }
        .join("systemd/user"),
        Manager::Launchd => home()?.join("Library/LaunchAgents"),
    })
}

/// Writes `content` to `path` through a temporary file and a rename: never half a file.
fn write_atomically(path: &Path, content: &str) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let fail = |op: &str, e: std::io::Error| {
        Failure::new(2, format!("{}: cannot {op}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("create its folder", e))?;
    let tmp = dir.join(format!(
        ".{}.smctl-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(|e| fail("write", e))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("rename into place", e))
}

/// A command's outcome: success, or what it printed on failure.
fn exec(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Err(if err.is_empty() { out } else { err })
        }
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// What `install` does after writing, when it may.
#[derive(Debug, Clone, Copy)]
pub struct InstallOptions {
    /// Print the files instead of writing anything.
    pub print: bool,
    /// Write the files but do not enable or start anything.
    pub no_start: bool,
}

/// `smctl service install`.
///
/// # Errors
/// A file cannot be written (exit 2), or the service manager cannot be used (exit 2, with
/// the commands to run by hand).
pub fn install(manager: Manager, spec: &Spec, opts: InstallOptions) -> Result<u8, Failure> {
    let files = files(manager, spec)?;
    if opts.print {
        let mut out = crate::stdout::Stdout::lock();
        for (path, content) in &files {
            writeln!(out, "# {}\n{content}", path.display())?;
        }
        return Ok(0);
    }
    // launchd opens the log before the daemon runs: its folder must exist, private.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&spec.paths.state_dir)
        .map_err(|e| Failure::new(2, format!("{}: {e}", spec.paths.state_dir.display())))?;
    for (path, content) in &files {
        write_atomically(path, content)?;
        eprintln!("smctl: wrote {}", path.display());
    }
    let manual = manual_steps(manager, spec, &files);
    if opts.no_start {
        eprintln!("smctl: not starting it (--no-start); to start it:\n{manual}");
        return Ok(0);
    }
    stop_running_daemon(spec);
    match manager {
        Manager::Systemd => {
            let mut units = vec![SERVICE_UNIT];
            if spec.socket_activation {
                units.push(SOCKET_UNIT);
            }
            bus::pass_to_user_manager(&spec.session_bus, exec);
            exec("systemctl", &["--user", "daemon-reload"])
                .and_then(|_| {
                    let mut args = vec!["--user", "enable", "--now"];
                    args.extend(&units);
                    exec("systemctl", &args)
                })
                .map_err(|e| cannot_start("systemd user manager", &e, &manual))?;
            eprintln!("smctl: enabled and started {}", units.join(" and "));
            if let Some(note) = linger_note() {
                eprintln!("smctl: note: {note}");
            }
        }
        Manager::Launchd => {
            let domain = format!("gui/{}", uid());
            let _ = exec("launchctl", &["bootout", &format!("{domain}/{LABEL}")]);
            let plist = files[0].0.to_string_lossy().into_owned();
            exec("launchctl", &["bootstrap", &domain, &plist])
                .and_then(|_| exec("launchctl", &["enable", &format!("{domain}/{LABEL}")]))
                .map_err(|e| cannot_start("launchd", &e, &manual))?;
            eprintln!("smctl: loaded {LABEL} into {domain}");
        }
    }
    Ok(0)
}

fn cannot_start(what: &str, said: &str, manual: &str) -> Failure {
    Failure::new(
        2,
        format!(
            "the service definition is written, but the {what} cannot be used here ({said}).\n\
             In a normal login session, run:\n{manual}\n\
             Until then `skillmeatd start` runs the daemon (smctl also starts it when needed)."
        ),
    )
}

fn manual_steps(manager: Manager, spec: &Spec, files: &[(PathBuf, String)]) -> String {
    match manager {
        Manager::Systemd => format!(
            "  systemctl --user daemon-reload\n  systemctl --user enable --now {}",
            if spec.socket_activation {
                format!("{SERVICE_UNIT} {SOCKET_UNIT}")
            } else {
                SERVICE_UNIT.to_string()
            }
        ),
        Manager::Launchd => format!(
            "  launchctl bootstrap gui/$(id -u) {}",
            files[0].0.display()
        ),
    }
}

/// A daemon started by hand holds the state directory's lock, and the managed one would
/// fail on it: stop it first (the managed one starts right after).
fn stop_running_daemon(spec: &Spec) {
    if std::os::unix::net::UnixStream::connect(&spec.paths.socket).is_err() {
        return;
    }
    eprintln!("smctl: stopping the running skillmeatd so the service manager can start it");
    let mut cmd = Command::new(&spec.daemon_bin);
    for (k, v) in &spec.environment {
        cmd.env(k, v);
    }
    if let Err(e) = cmd
        .arg("stop")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
    {
        eprintln!("smctl: warning: could not stop it: {e}");
    }
}

/// Without lingering, the user manager (and the daemon) runs only while the user is
/// logged in; say how to change that.
fn linger_note() -> Option<String> {
    let user = std::env::var("USER").unwrap_or_else(|_| uid().to_string());
    let linger = exec(
        "loginctl",
        &["show-user", &user, "--property=Linger", "--value"],
    )
    .ok()?;
    (linger == "no").then(|| {
        format!(
            "skillmeatd runs while you are logged in; to keep it running when you are not, \
             run `loginctl enable-linger {user}`"
        )
    })
}

/// `smctl service uninstall`: stop, disable and remove what `install` wrote.
///
/// # Errors
/// A file cannot be removed.
pub fn uninstall(manager: Manager, dry_run: bool) -> Result<u8, Failure> {
    let dir = definition_dir(manager)?;
    let paths: Vec<PathBuf> = match manager {
        Manager::Systemd => vec![dir.join(SERVICE_UNIT), dir.join(SOCKET_UNIT)],
        Manager::Launchd => vec![dir.join(format!("{LABEL}.plist"))],
    };
    let present: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if present.is_empty() {
        eprintln!(
            "smctl: no skillmeatd service is installed in {}",
            dir.display()
        );
        return Ok(0);
    }
    if dry_run {
        let mut out = crate::stdout::Stdout::lock();
        for p in &present {
            writeln!(out, "would remove {}", p.display())?;
        }
        return Ok(0);
    }
    let stopped = match manager {
        Manager::Systemd => exec(
            "systemctl",
            &["--user", "disable", "--now", SOCKET_UNIT, SERVICE_UNIT],
        ),
        Manager::Launchd => exec("launchctl", &["bootout", &format!("gui/{}/{LABEL}", uid())]),
    };
    if let Err(e) = stopped {
        eprintln!(
            "smctl: warning: the service manager could not stop the service ({e}); \
             stop a running daemon with `skillmeatd stop`"
        );
    }
    for p in present {
        std::fs::remove_file(p)
            .map_err(|e| Failure::new(2, format!("{}: cannot remove: {e}", p.display())))?;
        eprintln!("smctl: removed {}", p.display());
    }
    if manager == Manager::Systemd {
        let _ = exec("systemctl", &["--user", "daemon-reload"]);
    }
    Ok(0)
}

/// `smctl service status`: is a definition installed, what does it run, what does the
/// service manager say, does a daemon answer. Exit 0 when installed and answering, 3
/// otherwise.
///
/// # Errors
/// Writing the output failed.
pub fn status(manager: Manager, paths: &Paths, format: Format) -> Result<u8, Failure> {
    let dir = definition_dir(manager)?;
    let (file, state) = match manager {
        Manager::Systemd => (
            dir.join(SERVICE_UNIT),
            exec("systemctl", &["--user", "is-active", SERVICE_UNIT]),
        ),
        Manager::Launchd => (
            dir.join(format!("{LABEL}.plist")),
            exec("launchctl", &["print", &format!("gui/{}/{LABEL}", uid())])
                .map(|_| "loaded".to_string()),
        ),
    };
    let installed = file.exists();
    let program = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| match manager {
            Manager::Systemd => t
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart=").map(str::to_string)),
            Manager::Launchd => plist::Value::from_reader_xml(t.as_bytes())
                .ok()?
                .as_dictionary()?
                .get("ProgramArguments")?
                .as_array()?
                .first()?
                .as_string()
                .map(str::to_string),
        });
    let answers = std::os::unix::net::UnixStream::connect(&paths.socket).is_ok();
    let manager_says = match &state {
        Ok(s) => s.clone(),
        Err(e) if e.is_empty() => "inactive".to_string(),
        Err(e) => e.clone(),
    };
    let v = json!({
        "manager": format!("{manager:?}").to_lowercase(),
        "file": file.display().to_string(),
        "installed": installed,
        "program": program,
        "manager_state": manager_says,
        "socket": paths.socket.display().to_string(),
        "answers": answers,
    });
    let mut out = crate::stdout::Stdout::lock();
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?,
        Format::Table => {
            writeln!(
                out,
                "service file:  {} ({})",
                file.display(),
                if installed {
                    "installed"
                } else {
                    "not installed"
                }
            )?;
            if let Some(p) = &program {
                writeln!(out, "runs:          {p}")?;
            }
            writeln!(out, "manager says:  {manager_says}")?;
            writeln!(
                out,
                "daemon:        {} on {}",
                if answers { "answers" } else { "no answer" },
                paths.socket.display()
            )?;
            if !installed {
                writeln!(out, "install it with `smctl service install`")?;
            }
        }
    }
    Ok(if installed && answers { 0 } else { 3 })
}

//! `smctl service install|uninstall|status`: run skillmeatd under the user's service
//! manager, so it starts at login and is restarted if it dies.
//!
//! The files written are the repository's own `systemd/skillmeatd.service` (+ `.socket`)
//! and `launchd/dev.skillmeat.skillmeatd.plist`, compiled in, with the real paths filled
//! in: the absolute path of the `skillmeatd` binary, the log under the state directory,
//! and, when smctl was pointed at a non-default home, state directory or socket, the same
//! settings for the daemon. Rendering is pure ([`systemd_unit`], [`systemd_socket`],
//! [`launchd_plist`]); [`install`], [`uninstall`] and [`status`] are the thin edges that
//! write files and run `systemctl --user` or `launchctl`, and explain what to do by hand
//! where those cannot work.

mod bus;

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::Failure;
use crate::output::Format;
use crate::paths::{ENV_SKILLMEAT_HOME, ENV_SOCKET, ENV_STATE_DIR, Paths};

const SERVICE_TEMPLATE: &str = include_str!("../../systemd/skillmeatd.service");
const SOCKET_TEMPLATE: &str = include_str!("../../systemd/skillmeatd.socket");
const PLIST_TEMPLATE: &str = include_str!("../../launchd/dev.skillmeat.skillmeatd.plist");

/// The systemd unit names.
pub const SERVICE_UNIT: &str = "skillmeatd.service";
pub const SOCKET_UNIT: &str = "skillmeatd.socket";
/// The launchd job label (and file stem).
pub const LABEL: &str = "dev.skillmeat.skillmeatd";

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

/// Everything a service definition depends on.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Absolute path of the daemon binary.
    pub daemon_bin: PathBuf,
    /// The paths the daemon will use (for the log file).
    pub paths: Paths,
    /// Settings smctl was given explicitly, passed on to the daemon as environment.
    pub environment: Vec<(&'static str, PathBuf)>,
    /// Also install `skillmeatd.socket` (systemd only).
    pub socket_activation: bool,
    /// How the daemon finds the session bus (desktop notifications).
    pub session_bus: bus::SessionBus,
}

impl Spec {
    /// The environment to pass on: each of home, state directory and socket that was set
    /// by flag or variable (`explicit`), as resolved absolute paths.
    pub fn new(
        daemon_bin: PathBuf,
        paths: Paths,
        explicit: [bool; 3],
        socket_activation: bool,
    ) -> Spec {
        let all = [
            (ENV_SKILLMEAT_HOME, paths.skillmeat_home.clone()),
            (ENV_STATE_DIR, paths.state_dir.clone()),
            (ENV_SOCKET, paths.socket.clone()),
        ];
        let environment = all
            .into_iter()
            .zip(explicit)
            .filter_map(|(kv, set)| set.then_some(kv))
            .collect();
        Spec {
            daemon_bin,
            paths,
            environment,
            socket_activation,
            session_bus: bus::SessionBus::from_env(),
        }
    }

    fn explicit_socket(&self) -> Option<&Path> {
        self.environment
            .iter()
            .find(|(k, _)| *k == ENV_SOCKET)
            .map(|(_, v)| v.as_path())
    }
}

/// Quotes `s` as one word of a systemd setting: specifiers (`%`) and, in command lines,
/// variable references (`$`) escaped so the path is taken literally.
fn systemd_word(s: &str, command_line: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            '$' if command_line => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The service unit: the template with the real `ExecStart` and the passed-on environment.
pub fn systemd_unit(spec: &Spec) -> String {
    let mut out = String::new();
    for line in SERVICE_TEMPLATE.lines() {
        if line.starts_with("ExecStart=") {
            out += &format!(
                "ExecStart={} run\n",
                systemd_word(&spec.daemon_bin.to_string_lossy(), true)
            );
            for (k, v) in &spec.environment {
                out += &format!(
                    "Environment={}\n",
                    systemd_word(&format!("{k}={}", v.display()), false)
                );
            }
            if spec.session_bus == bus::SessionBus::PerUser {
                out += bus::UNIT_LINE;
                out.push('\n');
            }
        } else {
            out += line;
            out.push('\n');
        }
    }
    out
}

/// The socket unit: the template, listening where smctl looks when the socket was set.
pub fn systemd_socket(spec: &Spec) -> String {
    let mut out = String::new();
    for line in SOCKET_TEMPLATE.lines() {
        match spec.explicit_socket() {
            Some(s) if line.starts_with("ListenStream=") => {
                // ListenStream= takes the path as is, specifiers expanded; no quoting.
                out += &format!(
                    "ListenStream={}\n",
                    s.display().to_string().replace('%', "%%")
                );
            }
            _ => {
                out += line;
                out.push('\n');
            }
        }
    }
    out
}

/// The LaunchAgent: the template with the real binary, log paths and environment.
///
/// # Errors
/// Only if the compiled-in template were not a plist dictionary.
pub fn launchd_plist(spec: &Spec) -> Result<String, String> {
    let mut value = plist::Value::from_reader_xml(PLIST_TEMPLATE.as_bytes())
        .map_err(|e| format!("launchd template: {e}"))?;
    let dict = value
        .as_dictionary_mut()
        .ok_or("launchd template: not a dictionary")?;
    dict.insert(
        "ProgramArguments".into(),
        plist::Value::Array(vec![
            spec.daemon_bin.to_string_lossy().into_owned().into(),
            "run".into(),
        ]),
    );
    let log = spec.paths.log_file().to_string_lossy().into_owned();
    // Only in the person's GUI session, where Notification Center takes notifications.
    dict.insert("LimitLoadToSessionType".into(), "Aqua".into());
    dict.insert("StandardOutPath".into(), log.clone().into());
    dict.insert("StandardErrorPath".into(), log.into());
    if !spec.environment.is_empty() {
        let env: plist::Dictionary = spec
            .environment
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    plist::Value::String(v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        dict.insert("EnvironmentVariables".into(), env.into());
    }
    let mut out = Vec::new();
    value
        .to_writer_xml(&mut out)
        .map_err(|e| format!("launchd plist: {e}"))?;
    out.push(b'\n');
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// The files a manager needs, with where they go.
pub fn files(manager: Manager, spec: &Spec) -> Result<Vec<(PathBuf, String)>, Failure> {
    let dir = definition_dir(manager)?;
    Ok(match manager {
        Manager::Systemd => {
            let mut f = vec![(dir.join(SERVICE_UNIT), systemd_unit(spec))];
            if spec.socket_activation {
                f.push((dir.join(SOCKET_UNIT), systemd_socket(spec)));
            }
            f
        }
        Manager::Launchd => vec![(
            dir.join(format!("{LABEL}.plist")),
            launchd_plist(spec).map_err(|e| Failure::new(2, e))?,
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
fn run(program: &str, args: &[&str]) -> Result<String, String> {
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
        let mut out = std::io::stdout().lock();
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
            bus::pass_to_user_manager(&spec.session_bus, run);
            run("systemctl", &["--user", "daemon-reload"])
                .and_then(|_| {
                    let mut args = vec!["--user", "enable", "--now"];
                    args.extend(&units);
                    run("systemctl", &args)
                })
                .map_err(|e| cannot_start("systemd user manager", &e, &manual))?;
            eprintln!("smctl: enabled and started {}", units.join(" and "));
            if let Some(note) = linger_note() {
                eprintln!("smctl: note: {note}");
            }
        }
        Manager::Launchd => {
            let domain = format!("gui/{}", uid());
            let _ = run("launchctl", &["bootout", &format!("{domain}/{LABEL}")]);
            let plist = files[0].0.to_string_lossy().into_owned();
            run("launchctl", &["bootstrap", &domain, &plist])
                .and_then(|_| run("launchctl", &["enable", &format!("{domain}/{LABEL}")]))
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
    let linger = run(
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
        for p in &present {
            println!("would remove {}", p.display());
        }
        return Ok(0);
    }
    let stopped = match manager {
        Manager::Systemd => run(
            "systemctl",
            &["--user", "disable", "--now", SOCKET_UNIT, SERVICE_UNIT],
        ),
        Manager::Launchd => run("launchctl", &["bootout", &format!("gui/{}/{LABEL}", uid())]),
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
        let _ = run("systemctl", &["--user", "daemon-reload"]);
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
            run("systemctl", &["--user", "is-active", SERVICE_UNIT]),
        ),
        Manager::Launchd => (
            dir.join(format!("{LABEL}.plist")),
            run("launchctl", &["print", &format!("gui/{}/{LABEL}", uid())])
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
    let mut out = std::io::stdout().lock();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(explicit: [bool; 3], socket_activation: bool) -> Spec {
        let paths = Paths::resolve_with(
            Some("/h/my skills/.skillmeat".into()),
            None,
            Some("/run/x%y/d.sock".into()),
            |_| None,
        )
        .unwrap();
        let mut s = Spec::new(
            "/opt/sm $bin/skillmeatd".into(),
            paths,
            explicit,
            socket_activation,
        );
        s.session_bus = bus::SessionBus::PerUser;
        s
    }

    #[test]
    fn unit_runs_the_real_binary_with_literal_paths() {
        let unit = systemd_unit(&spec([true, false, true], false));
        assert!(
            unit.contains("\nExecStart=\"/opt/sm $$bin/skillmeatd\" run\n"),
            "{unit}"
        );
        assert!(unit.contains("\nEnvironment=\"SKILLMEAT_HOME=/h/my skills/.skillmeat\"\n"));
        assert!(unit.contains("\nEnvironment=\"SKILLMEATD_SOCKET=/run/x%%y/d.sock\"\n"));
        assert!(!unit.contains("SKILLMEATD_STATE_DIR"));
        assert!(unit.contains("\nEnvironment=DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus\n"));
        assert!(unit.contains("\nType=notify\n") && unit.contains("\nRestart=on-failure\n"));
        assert_eq!(unit.matches("ExecStart=").count(), 1);
        assert!(
            unit.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"),
            "{unit}"
        );
    }

    #[test]
    fn defaults_pass_no_environment() {
        let unit = systemd_unit(&spec([false; 3], false));
        assert!(
            !unit.replace(bus::UNIT_LINE, "").contains("Environment="),
            "{unit}"
        );
        // A login's own bus address is not frozen into the unit (it is imported instead).
        let mut login = spec([false; 3], false);
        login.session_bus = bus::SessionBus::Login("unix:abstract=/tmp/dbus-x".into());
        assert!(!systemd_unit(&login).contains("DBUS_SESSION_BUS_ADDRESS"));
        let socket = systemd_socket(&spec([false; 3], true));
        assert!(socket.contains("\nListenStream=%t/skillmeatd/skillmeatd.sock\n"));
    }

    #[test]
    fn socket_unit_listens_where_smctl_looks() {
        let socket = systemd_socket(&spec([false, false, true], true));
        assert!(
            socket.contains("\nListenStream=/run/x%%y/d.sock\n"),
            "{socket}"
        );
        assert!(socket.contains("\nSocketMode=0600\n"));
    }

    #[test]
    fn plist_is_valid_and_filled_in() {
        let text = launchd_plist(&spec([true, false, false], false)).unwrap();
        let v = plist::Value::from_reader_xml(text.as_bytes()).unwrap();
        let d = v.as_dictionary().unwrap();
        assert_eq!(d["Label"].as_string(), Some(LABEL));
        let args: Vec<_> = d["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_string().unwrap())
            .collect();
        assert_eq!(args, ["/opt/sm $bin/skillmeatd", "run"]);
        assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
        assert_eq!(d["LimitLoadToSessionType"].as_string(), Some("Aqua"));
        assert_eq!(
            d["KeepAlive"].as_dictionary().unwrap()["SuccessfulExit"].as_boolean(),
            Some(false)
        );
        assert_eq!(
            d["StandardErrorPath"].as_string(),
            Some("/h/my skills/.skillmeat/daemon/skillmeatd.log")
        );
        let env = d["EnvironmentVariables"].as_dictionary().unwrap();
        assert_eq!(
            env["SKILLMEAT_HOME"].as_string(),
            Some("/h/my skills/.skillmeat")
        );
        assert_eq!(env.len(), 1);
    }
}

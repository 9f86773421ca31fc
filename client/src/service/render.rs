//! Rendering the service definitions: the repository's own `systemd/skillmeatd.service`
//! (+ `.socket`) and `launchd/dev.skillmeat.skillmeatd.plist`, compiled in, with the real
//! paths filled in. Pure functions of a [`Spec`]; writing them is the parent module's job.

use std::path::{Path, PathBuf};

use skillmeatd_proto::paths::{ENV_SKILLMEAT_HOME, ENV_SOCKET, ENV_STATE_DIR, Paths};

use super::bus;

const SERVICE_TEMPLATE: &str = include_str!("../../../systemd/skillmeatd.service");
const SOCKET_TEMPLATE: &str = include_str!("../../../systemd/skillmeatd.socket");
const PLIST_TEMPLATE: &str = include_str!("../../../launchd/dev.skillmeat.skillmeatd.plist");

/// The systemd unit names.
pub const SERVICE_UNIT: &str = "skillmeatd.service";
pub const SOCKET_UNIT: &str = "skillmeatd.socket";
/// The launchd job label (and file stem).
pub const LABEL: &str = "dev.skillmeat.skillmeatd";

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
        assert!(!systemd_unit(&login).contains("\nEnvironment=DBUS_SESSION_BUS_ADDRESS"));
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

//! Where the daemon under the service manager finds the person's desktop, so desktop
//! notifications reach it.
//!
//! - **systemd:** the daemon needs `DBUS_SESSION_BUS_ADDRESS`. Where the session bus is
//!   the per-user bus (`$XDG_RUNTIME_DIR/bus`, dbus-user-session: most systemd desktops),
//!   the unit names it with `%t/bus`, stable across logins. Where smctl runs in a session
//!   whose bus has a per-login address (`dbus-launch`), freezing it in the unit would be
//!   wrong at the next login: install imports it into the user manager instead
//!   (`systemctl --user import-environment DBUS_SESSION_BUS_ADDRESS`, what desktop
//!   sessions do at login) and says so.
//! - **launchd:** there is no D-Bus; the agent is loaded into the person's GUI session
//!   (`gui/<uid>`, `LimitLoadToSessionType` = `Aqua`), where Notification Center accepts
//!   it.

use std::path::Path;

/// The variable the daemon's D-Bus connection reads.
pub const ENV_BUS: &str = "DBUS_SESSION_BUS_ADDRESS";

/// The unit line naming the per-user bus (`%t` is the runtime directory).
pub const UNIT_LINE: &str = "Environment=DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus";

/// How the unit gets the session bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionBus {
    /// The per-user bus (or none known yet): named in the unit.
    PerUser,
    /// This login's own address: imported into the user manager at install.
    Login(String),
}

impl SessionBus {
    /// Decides from smctl's own `DBUS_SESSION_BUS_ADDRESS` and runtime directory.
    pub fn detect(address: Option<&str>, runtime_dir: Option<&Path>) -> SessionBus {
        let Some(a) = address.filter(|a| !a.is_empty()) else {
            return SessionBus::PerUser;
        };
        let per_user = runtime_dir
            .map(|d| format!("unix:path={}", d.join("bus").display()))
            .is_some_and(|p| a == p || a.starts_with(&format!("{p},")));
        if per_user {
            SessionBus::PerUser
        } else {
            SessionBus::Login(a.to_string())
        }
    }

    /// From this process's environment.
    pub fn from_env() -> SessionBus {
        let addr = std::env::var(ENV_BUS).ok();
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
        SessionBus::detect(addr.as_deref(), runtime.as_deref())
    }
}

/// Imports a login's own bus into the systemd user manager (until logout; desktop
/// sessions do it themselves at login), saying what happened. `run` runs a command.
pub fn pass_to_user_manager(
    bus: &SessionBus,
    run: impl Fn(&str, &[&str]) -> Result<String, String>,
) {
    let SessionBus::Login(address) = bus else {
        return;
    };
    match run("systemctl", &["--user", "import-environment", ENV_BUS]) {
        Ok(_) => eprintln!(
            "smctl: passed this session's bus ({address}) to the user manager for desktop notifications"
        ),
        Err(e) => eprintln!(
            "smctl: note: cannot pass the session bus to the user manager ({e}); desktop \
             notifications need `systemctl --user import-environment {ENV_BUS}` at login"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_user_bus_is_named_a_login_bus_imported() {
        let run = Some(Path::new("/run/user/1000"));
        assert_eq!(SessionBus::detect(None, run), SessionBus::PerUser);
        assert_eq!(
            SessionBus::detect(Some("unix:path=/run/user/1000/bus"), run),
            SessionBus::PerUser
        );
        assert_eq!(
            SessionBus::detect(Some("unix:path=/run/user/1000/bus,guid=ab"), run),
            SessionBus::PerUser
        );
        let login = "unix:abstract=/tmp/dbus-XYZ,guid=1";
        assert_eq!(
            SessionBus::detect(Some(login), run),
            SessionBus::Login(login.into())
        );
    }
}

//! `[notify]` in `daemon.toml`: which changes are worth a desktop notification and how
//! calm they stay. Plain data, parsed by [`crate::config`], checked by
//! [`Settings::validate`] (at start, on SIGHUP and by `skillmeatd run --check-config`).
//!
//! ```toml
//! [notify]
//! desktop = true            # unset: shown whenever a server is reachable (its absence is
//!                           # no problem); true: also warn when none is; false: never
//! kinds = ["conflict", "missing", "error", "failed_write", "modified", "outdated"]
//! coalesce_ms = 5000        # changes within this window make one notification per project
//! rate_limit = 3            # at most this many notifications per project ...
//! rate_window_secs = 60     # ... in this many seconds; later changes wait, none are lost
//! quiet_hours = "22:00-08:00"   # local time; nothing shown, one summary when they end
//! mute = ["~/code/scratch"] # projects (or folders of projects) never notified about
//! action_mute_secs = 86400  # how long "Mute project" on a notification mutes (0 = until unmuted)
//! show_diff_with = ["xdg-open"] # "Show diff" writes a .diff file and opens it with this
//! queue_capacity = 64       # notifications waiting for a slow server before overflow
//! ```

use std::path::PathBuf;

use chrono::{NaiveTime, Timelike};
use serde::{Deserialize, Serialize};

/// What a notification can be about; each can be switched on or off in `kinds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Both the collection and the project copy changed.
    Conflict,
    /// The deployed copy was deleted from the project.
    Missing,
    /// A side cannot be read, or a SkillMeat file became invalid.
    Error,
    /// A write-back failed or left conflict markers.
    FailedWrite,
    /// The project copy was edited.
    Modified,
    /// The collection moved on.
    Outdated,
    /// The artifact left its collection (off by default).
    Removed,
    /// A collection artifact was never deployed here (off by default).
    Added,
    /// Back in sync (off by default: transitions back are silent unless asked for).
    InSync,
}

impl Kind {
    /// The name used in `kinds` and in notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Conflict => "conflict",
            Kind::Missing => "missing",
            Kind::Error => "error",
            Kind::FailedWrite => "failed_write",
            Kind::Modified => "modified",
            Kind::Outdated => "outdated",
            Kind::Removed => "removed",
            Kind::Added => "added",
            Kind::InSync => "in_sync",
        }
    }

    /// Whether it needs the person (shown with normal urgency and first in lists), as
    /// opposed to the routine `modified` / `outdated`.
    pub fn is_urgent(self) -> bool {
        matches!(
            self,
            Kind::Conflict | Kind::Missing | Kind::Error | Kind::FailedWrite
        )
    }
}

/// The kinds on by default.
pub const DEFAULT_KINDS: [Kind; 6] = [
    Kind::Conflict,
    Kind::Missing,
    Kind::Error,
    Kind::FailedWrite,
    Kind::Modified,
    Kind::Outdated,
];

/// A daily span of local time, `22:00-08:00` (seconds allowed: `22:00:30-08:00`). A span
/// whose end is before its start runs over midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TryFrom<String> for QuietHours {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<QuietHours> for String {
    fn from(q: QuietHours) -> String {
        q.to_string()
    }
}

impl std::str::FromStr for QuietHours {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "quiet_hours {s:?}: expected \"HH:MM-HH:MM\" in local time, e.g. \"22:00-08:00\""
            )
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| {
            let t = t.trim();
            NaiveTime::parse_from_str(t, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
                .map_err(|_| bad())
        };
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(format!(
                "quiet_hours {s:?}: start and end are the same; leave quiet_hours out for none"
            ));
        }
        Ok(QuietHours { start, end })
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |t: NaiveTime| {
            if t.second() == 0 {
                t.format("%H:%M").to_string()
            } else {
                t.format("%H:%M:%S").to_string()
            }
        };
        write!(f, "{}-{}", t(self.start), t(self.end))
    }
}

impl QuietHours {
    /// Whether `t` falls inside (start included, end excluded).
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// How long from `t` (inside) until the span ends.
    pub fn remaining(&self, t: NaiveTime) -> std::time::Duration {
        let secs = (self.end - t).num_milliseconds().rem_euclid(86_400_000);
        std::time::Duration::from_millis(secs as u64)
    }
}

/// `[notify]`. Unset optional values are left out when written (TOML has no null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Send desktop notifications. Unset (the default): whenever a notification server is
    /// reachable; with none, the daemon says so in `smctl notify status`, retries, and
    /// `smctl doctor` is content. `true`: the same, but a missing server needs action in
    /// `smctl doctor`. `false`: never (no bus connection at all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desktop: Option<bool>,
    pub kinds: Vec<Kind>,
    pub coalesce_ms: u64,
    pub rate_limit: u32,
    pub rate_window_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Projects, or folders holding projects (`~` allowed).
    pub mute: Vec<PathBuf>,
    pub action_mute_secs: u64,
    /// The command "Show diff" opens the diff file with (the file's path is appended).
    pub show_diff_with: Vec<String>,
    pub queue_capacity: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            desktop: None,
            kinds: DEFAULT_KINDS.to_vec(),
            coalesce_ms: 5000,
            rate_limit: 3,
            rate_window_secs: 60,
            quiet_hours: None,
            mute: Vec::new(),
            action_mute_secs: 86_400,
            show_diff_with: vec![
                if cfg!(target_os = "macos") {
                    "open"
                } else {
                    "xdg-open"
                }
                .to_string(),
            ],
            queue_capacity: 64,
        }
    }
}

impl Settings {
    /// Checks what is not a number (the numbers' ranges are checked with every other key's,
    /// by [`crate::config::ranges::check`]).
    ///
    /// # Errors
    /// The first value that cannot be used, named as in the file.
    pub fn validate(&self) -> Result<(), String> {
        if self.show_diff_with.first().is_none_or(|c| c.is_empty()) {
            return Err("notify.show_diff_with: give a command, e.g. [\"xdg-open\"]".into());
        }
        Ok(())
    }

    /// Whether notifications are on (`desktop` unset or true).
    pub fn enabled(&self) -> bool {
        self.desktop != Some(false)
    }

    /// Whether notifications of `kind` are wanted.
    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Replaces a leading `~` in `mute` with `home`.
    pub fn expand_home(&mut self, home: &std::path::Path) {
        for p in &mut self.mute {
            if let Ok(rest) = p.strip_prefix("~") {
                *p = home.join(rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn quiet_hours_over_midnight() {
        let q: QuietHours = "22:00-08:00".parse().unwrap();
        assert!(q.contains(t(23, 0)) && q.contains(t(0, 0)) && q.contains(t(7, 59)));
        assert!(!q.contains(t(8, 0)) && !q.contains(t(12, 0)) && !q.contains(t(21, 59)));
        assert_eq!(q.remaining(t(23, 0)).as_secs(), 9 * 3600);
        assert_eq!(q.to_string(), "22:00-08:00");
        let day: QuietHours = "12:00-13:30:15".parse().unwrap();
        assert!(day.contains(t(12, 0)) && !day.contains(t(11, 59)));
        assert_eq!(day.remaining(t(13, 30)).as_secs(), 15);
        assert_eq!(day.to_string(), "12:00-13:30:15");
    }

    #[test]
    fn bad_quiet_hours_are_explained() {
        for bad in ["22:00", "25:00-08:00", "10:00-10:00", "x-y"] {
            let e = bad.parse::<QuietHours>().unwrap_err();
            assert!(e.contains("quiet_hours"), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_and_validates() {
        let s: Settings = toml::from_str(
            "kinds = [\"conflict\", \"in_sync\"]\ncoalesce_ms = 100\nquiet_hours = \"01:00-02:00\"\nmute = [\"~/x\"]\n",
        )
        .unwrap();
        assert_eq!(s.kinds, [Kind::Conflict, Kind::InSync]);
        assert!(s.enabled() && s.desktop.is_none() && s.validate().is_ok());
        let mut s2 = s.clone();
        s2.expand_home(std::path::Path::new("/home/u"));
        assert_eq!(s2.mute, [PathBuf::from("/home/u/x")]);
        let e = toml::from_str::<Settings>("kinds = [\"modifed\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("modifed") && e.contains("modified"), "{e}");
        // Numbers are checked by config::ranges; what is left is the diff command.
        let e = toml::from_str::<Settings>("show_diff_with = []")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.contains("show_diff_with"), "{e}");
        assert!(Settings::default().validate().is_ok());
    }
}

//! `~/.skillmeat/daemon.toml`: the daemon's own settings, all optional.
//!
//! ```toml
//! [discovery]
//! # Folders to scan for projects holding SkillMeat deployment files (`~` allowed).
//! scan = ["~/code"]
//! # How deep below each folder to look.
//! max_depth = 4
//! # Read SkillMeat's own project registry (~/.skillmeat/cache/cache.db).
//! registry = true
//!
//! [watch]
//! settle_ms = 20          # quiet time that ends a burst of changes
//! max_settle_ms = 1000    # a never-quiet burst is still processed this often
//! reconcile_secs = 600    # periodic stat-only check of every root (0 = never)
//! queue_capacity = 4096   # change hints buffered before falling back to a rescan
//! force_polling = false   # poll every root instead of using kernel events
//! poll_interval_ms = 1000 # how often polled roots are checked
//!
//! [journal]
//! max_events = 100000     # events kept for `smctl watch --since`
//! max_age_days = 30
//! subscriber_buffer = 1024 # events a slow subscriber may lag before it gets a resync
//!
//! [history]
//! # At most one automatic snapshot per collection or project this often.
//! auto_snapshot_interval_secs = 300
//! [history.retention]      # everything for keep_all, hourly, daily, then weekly
//! keep_all_secs = 3600
//! hourly_secs = 86400
//! daily_secs = 2592000
//! [history.import]         # limits for imported archives (decompression bombs)
//! max_entry_bytes = 67108864
//! max_total_bytes = 536870912
//! max_entries = 100000
//!
//! [notify]                 # desktop notifications: see crate::notification::settings
//! coalesce_ms = 5000
//! ```
//!
//! Unknown keys are errors (a typo must not be silently ignored); errors name the line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The configuration file's name inside SkillMeat's home.
pub const FILE_NAME: &str = "daemon.toml";

/// The daemon's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub discovery: Discovery,
    pub watch: Watch,
    pub journal: Journal,
    /// `[history]`: automatic snapshots, retention, import limits.
    pub history: crate::history::Settings,
    /// `[notify]`: desktop notifications.
    pub notify: crate::notification::Settings,
}

/// How changes are noticed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Watch {
    pub settle_ms: u64,
    pub max_settle_ms: u64,
    pub reconcile_secs: u64,
    pub queue_capacity: usize,
    pub force_polling: bool,
    pub poll_interval_ms: u64,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            settle_ms: 20,
            max_settle_ms: 1000,
            reconcile_secs: 600,
            queue_capacity: 4096,
            force_polling: false,
            poll_interval_ms: 1000,
        }
    }
}

/// How long drift events are kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Journal {
    pub max_events: usize,
    pub max_age_days: u64,
    /// Events buffered per `Watch` subscriber before it is told to resync.
    pub subscriber_buffer: usize,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            max_events: 100_000,
            max_age_days: 30,
            subscriber_buffer: 1024,
        }
    }
}

/// How projects are found besides `smctl project add`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discovery {
    pub scan: Vec<PathBuf>,
    pub max_depth: usize,
    pub registry: bool,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            scan: Vec::new(),
            max_depth: 4,
            registry: true,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl Config {
    /// Reads `<home>/daemon.toml`; a missing file gives the defaults.
    ///
    /// # Errors
    /// The file exists but cannot be read, is not TOML, or has unknown keys or wrong types.
    pub fn load(home: &Path) -> Result<Config, ConfigError> {
        let path = home.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(ConfigError {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError {
            path: path.clone(),
            message: crate::suggest::unknown_field(e.to_string().trim_end()),
        })?;
        let home_dir = std::env::var_os("HOME").map(PathBuf::from);
        for p in &mut config.discovery.scan {
            if let (Ok(rest), Some(h)) = (p.strip_prefix("~"), &home_dir) {
                *p = h.join(rest);
            }
        }
        if let Some(h) = &home_dir {
            config.notify.expand_home(h);
        }
        config
            .notify
            .validate()
            .map_err(|message| ConfigError { path, message })?;
        Ok(config)
    }
}

/// What a reload of the configuration can and cannot apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    /// The configuration to run with: the new one, except for the values that only take
    /// effect at start, which keep their running values.
    pub effective: Config,
    /// Settings that changed and were applied.
    pub applied: Vec<&'static str>,
    /// Settings that changed but only take effect after a restart.
    pub needs_restart: Vec<&'static str>,
}

impl Config {
    /// Compares the running configuration with a newly read one: what a live reload
    /// applies, and what needs a restart (queue sizes are fixed when the queues are made).
    pub fn reload(&self, new: &Config) -> Reload {
        let mut effective = new.clone();
        let mut applied = Vec::new();
        let mut needs_restart = Vec::new();
        let mut note = |changed: bool, name: &'static str, live: bool| {
            if changed {
                if live {
                    applied.push(name);
                } else {
                    needs_restart.push(name);
                }
            }
        };
        let (o, n) = (&self.discovery, &new.discovery);
        note(o.scan != n.scan, "discovery.scan", true);
        note(o.max_depth != n.max_depth, "discovery.max_depth", true);
        note(o.registry != n.registry, "discovery.registry", true);
        let (o, n) = (&self.watch, &new.watch);
        note(o.settle_ms != n.settle_ms, "watch.settle_ms", true);
        note(
            o.max_settle_ms != n.max_settle_ms,
            "watch.max_settle_ms",
            true,
        );
        note(
            o.reconcile_secs != n.reconcile_secs,
            "watch.reconcile_secs",
            true,
        );
        note(
            o.force_polling != n.force_polling,
            "watch.force_polling",
            true,
        );
        note(
            o.poll_interval_ms != n.poll_interval_ms,
            "watch.poll_interval_ms",
            true,
        );
        note(
            o.queue_capacity != n.queue_capacity,
            "watch.queue_capacity",
            false,
        );
        let (o, n) = (&self.journal, &new.journal);
        note(o.max_events != n.max_events, "journal.max_events", true);
        note(
            o.max_age_days != n.max_age_days,
            "journal.max_age_days",
            true,
        );
        note(
            o.subscriber_buffer != n.subscriber_buffer,
            "journal.subscriber_buffer",
            false,
        );
        let (o, n) = (&self.notify, &new.notify);
        let queue_changed = o.queue_capacity != n.queue_capacity;
        let other_changed = crate::notification::Settings {
            queue_capacity: o.queue_capacity,
            ..n.clone()
        } != *o;
        note(other_changed, "notify", true);
        note(queue_changed, "notify.queue_capacity", false);
        effective.watch.queue_capacity = self.watch.queue_capacity;
        effective.notify.queue_capacity = self.notify.queue_capacity;
        effective.journal.subscriber_buffer = self.journal.subscriber_buffer;
        Reload {
            effective,
            applied,
            needs_restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_applies_live_values_and_keeps_queue_sizes() {
        let old = Config::default();
        let mut new = Config::default();
        new.discovery.scan = vec![PathBuf::from("/srv")];
        new.watch.settle_ms = 5;
        new.watch.queue_capacity = 8;
        new.journal.subscriber_buffer = 2;
        new.journal.max_events = 10;
        let r = old.reload(&new);
        assert_eq!(
            r.applied,
            ["discovery.scan", "watch.settle_ms", "journal.max_events"]
        );
        assert_eq!(
            r.needs_restart,
            ["watch.queue_capacity", "journal.subscriber_buffer"]
        );
        assert_eq!(r.effective.watch.queue_capacity, 4096);
        assert_eq!(r.effective.journal.subscriber_buffer, 1024);
        assert_eq!(r.effective.watch.settle_ms, 5);
        // Reloading again still names what waits for a restart.
        assert_eq!(r.effective.reload(&new).needs_restart.len(), 2);
        assert!(old.reload(&old).applied.is_empty());
    }

    #[test]
    fn missing_file_gives_defaults() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(d.path()).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE_NAME), "[discovery]\nscna = []\n").unwrap();
        let e = Config::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("scna") && e.contains("did you mean `scan`?"),
            "{e}"
        );
    }

    #[test]
    fn reads_scan_folders() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(FILE_NAME),
            "[discovery]\nscan = [\"/srv/code\"]\nmax_depth = 2\n",
        )
        .unwrap();
        let c = Config::load(d.path()).unwrap();
        assert_eq!(c.discovery.scan, [PathBuf::from("/srv/code")]);
        assert_eq!(c.discovery.max_depth, 2);
        assert!(c.discovery.registry);
    }
}

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
//! settle_ms = 20          # quiet time that ends a save still in progress (a completed write does not wait)
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
//!
//! [store]
//! cache_mb = 2              # sled's page cache, 1 to 1024 MB (memory use follows it)
//! ```
//!
//! Unknown keys are errors (a typo must not be silently ignored), and every number has a
//! range ([`ranges::RANGES`], e.g. `poll_interval_ms` ≥ 100); errors name the line.
//!
//! [`crate::daemon::run`] reads the file once at start and makes the one channel the
//! configuration in force is published on ([`channel`], [`Effective`]); only the SIGHUP
//! task ([`crate::reload`]) publishes after that, and every consumer reads its settings from
//! the channel when it needs them. `reload` (private submodule) classifies every key as
//! applied live or at the next start.

pub mod ranges;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::formats::Problem;

pub use reload::{Apply, KEYS, Reload, apply_of, value_of};

/// The configuration file's name inside SkillMeat's home.
pub const FILE_NAME: &str = "daemon.toml";

/// The daemon's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub discovery: Discovery,
    pub watch: Watch,
    pub journal: Journal,
    /// `[history]`: automatic snapshots, retention, import limits.
    pub history: History,
    /// `[store]`: the persistent store.
    pub store: StoreSettings,
    /// `[notify]`: desktop notifications.
    pub notify: crate::notification::Settings,
}

/// sled's page cache unless `[store] cache_mb` says otherwise. The daemon's own reads are
/// few and recent (journal, drift state, the newest version of a location): after a cold
/// start's history backlog, 8 MB held about 4 MB more of pages that backlog wrote, and
/// the backlog took no longer with 2 (README, "Benchmarks").
pub const DEFAULT_CACHE_MB: u64 = 2;

/// The persistent store (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// sled's page cache in MB (1 to 1024, see [`ranges::RANGES`]).
    pub cache_mb: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            cache_mb: DEFAULT_CACHE_MB,
        }
    }
}

/// How changes are noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// History settings (`[history]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct History {
    /// At most one automatic snapshot per collection or project this often (seconds).
    pub auto_snapshot_interval_secs: u64,
    pub retention: Retention,
    pub import: ImportLimits,
}

impl Default for History {
    fn default() -> Self {
        History {
            auto_snapshot_interval_secs: 300,
            retention: Retention::default(),
            import: ImportLimits::default(),
        }
    }
}

/// How long each tier lasts (`[history.retention]` in `daemon.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Keep everything younger than this (seconds).
    pub keep_all_secs: u64,
    /// Then keep one per hour until this age (seconds).
    pub hourly_secs: u64,
    /// Then one per day until this age (seconds); one per week after.
    pub daily_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_all_secs: 3600,
            hourly_secs: 86_400,
            daily_secs: 30 * 86_400,
        }
    }
}

/// Size limits for imported archives (`[history.import]` in `daemon.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportLimits {
    /// Largest single file, uncompressed.
    pub max_entry_bytes: u64,
    /// Largest total of all files, uncompressed.
    pub max_total_bytes: u64,
    /// Most entries.
    pub max_entries: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_entry_bytes: 64 << 20,
            max_total_bytes: 512 << 20,
            max_entries: 100_000,
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
    /// This is the one check of the file: the daemon's start, `--check-config` and every
    /// reload call it.
    ///
    /// # Errors
    /// The file exists but cannot be read, is not TOML, has unknown keys or wrong types, or
    /// a value out of its range ([`ranges::check`]).
    pub fn load(home: &Path) -> Result<Config, ConfigError> {
        let path = home.join(FILE_NAME);
        let text = match crate::regular::read_to_string(&path) {
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
        if let Err(e) = ranges::check(&config) {
            let at = line_of(&text, e.key)
                .or_else(|| line_of(&text, e.other?))
                .map(|n| format!("line {n}: "))
                .unwrap_or_default();
            return Err(ConfigError {
                path,
                message: format!("{at}{}", e.message),
            });
        }
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

/// The line of `text` where the dotted `key`'s value is written, if it is written there.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item = doc.as_item();
    for part in key.split('.') {
        item = item.get(part)?;
    }
    let start = item.span()?.start;
    Some(text[..start.min(text.len())].lines().count().max(1))
}

/// The configuration in force, and what keeps `daemon.toml` from being wholly in force.
///
/// One value, published by one owner: [`crate::daemon::run`] makes the channel
/// ([`channel`]) from the file read at start, and only the SIGHUP task
/// ([`crate::reload`]) sends on it. Every consumer reads it from its [`Shared`] receiver when
/// it needs a setting: the engine (discovery, import limits), the live task (watch timings,
/// polling, journal limits, history upkeep), the RPC layer through the engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effective {
    /// The settings in force.
    pub config: Arc<Config>,
    /// Why the last reload could not be applied wholly: the file is unusable (the previous
    /// settings stay), or changed keys wait for a restart. Shown by `smctl status`.
    pub problems: Vec<Problem>,
}

/// A consumer's view of the configuration in force.
pub type Shared = watch::Receiver<Arc<Effective>>;

/// The one sender of the configuration in force.
pub type Publisher = watch::Sender<Arc<Effective>>;

/// The channel of the configuration in force, starting with `config`.
pub fn channel(config: Config) -> (Publisher, Shared) {
    watch::channel(Arc::new(Effective {
        config: Arc::new(config),
        problems: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn values_out_of_range_are_errors_with_a_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(FILE_NAME),
            "[discovery]\nmax_depth = 2\n\n[watch]\nsettle_ms = 5\npoll_interval_ms = 0\n",
        )
        .unwrap();
        let e = Config::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 6: `watch.poll_interval_ms = 0` is out of range: allowed 100 to"),
            "{e}"
        );
        std::fs::write(d.path().join(FILE_NAME), "watch.poll_interval_ms = 99\n").unwrap();
        let e = Config::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("line 1: `watch.poll_interval_ms = 99`"), "{e}");
    }

    #[test]
    fn store_cache_is_bounded_and_checked() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Config::default().store.cache_mb, 2);
        for bad in ["0", "1025", "100000"] {
            std::fs::write(
                d.path().join(FILE_NAME),
                format!("[store]\ncache_mb = {bad}\n"),
            )
            .unwrap();
            let e = Config::load(d.path()).unwrap_err().to_string();
            assert!(
                e.contains("store.cache_mb") && e.contains("1 to 1024"),
                "{e}"
            );
        }
        std::fs::write(d.path().join(FILE_NAME), "[store]\ncache_mb = 64\n").unwrap();
        let c = Config::load(d.path()).unwrap();
        assert_eq!(c.store.cache_mb, 64);
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

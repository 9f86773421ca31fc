//! What a reload of `daemon.toml` changes: every key is classified once, in [`KEYS`], as
//! applied while running ([`Apply::Live`]) or only at the next start ([`Apply::Restart`],
//! the sizes of queues made at start). [`Config::reload`] compares the running and the new
//! configuration key by key through their TOML form, so a key added to [`Config`] is
//! compared without more code, and a test fails until it is classified here.
//!
//! Called by the SIGHUP task ([`crate::reload`]).

use std::collections::BTreeMap;

use super::Config;

/// When a change of a key takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// At the next reload: its readers read the configuration in force each time.
    Live,
    /// At the next start: what it sizes is made once.
    Restart,
}

/// Every key of `daemon.toml`, and when a change of it takes effect.
pub const KEYS: &[(&str, Apply)] = &[
    // Discovery runs again after every reload.
    ("discovery.scan", Apply::Live),
    ("discovery.max_depth", Apply::Live),
    ("discovery.registry", Apply::Live),
    // The live task re-arms its timers and rewatches roots (polling) after a reload.
    ("watch.settle_ms", Apply::Live),
    ("watch.max_settle_ms", Apply::Live),
    ("watch.reconcile_secs", Apply::Live),
    ("watch.queue_capacity", Apply::Restart),
    ("watch.force_polling", Apply::Live),
    ("watch.poll_interval_ms", Apply::Live),
    // Read at each prune; the subscribers' channel is made at start.
    ("journal.max_events", Apply::Live),
    ("journal.max_age_days", Apply::Live),
    ("journal.subscriber_buffer", Apply::Restart),
    // Read by the history upkeep at each tick (retention runs right after a change) and by
    // each import.
    ("history.auto_snapshot_interval_secs", Apply::Live),
    ("history.retention.keep_all_secs", Apply::Live),
    ("history.retention.hourly_secs", Apply::Live),
    ("history.retention.daily_secs", Apply::Live),
    ("history.import.max_entry_bytes", Apply::Live),
    ("history.import.max_total_bytes", Apply::Live),
    ("history.import.max_entries", Apply::Live),
    // The notifier reads the configuration in force at each change; its queue to the
    // notification server is made at start.
    ("notify.desktop", Apply::Live),
    ("notify.kinds", Apply::Live),
    ("notify.coalesce_ms", Apply::Live),
    ("notify.rate_limit", Apply::Live),
    ("notify.rate_window_secs", Apply::Live),
    ("notify.quiet_hours", Apply::Live),
    ("notify.mute", Apply::Live),
    ("notify.action_mute_secs", Apply::Live),
    ("notify.show_diff_with", Apply::Live),
    ("notify.queue_capacity", Apply::Restart),
    // sled's cache is sized when the store opens.
    ("store.cache_mb", Apply::Restart),
];

/// When a change of `key` takes effect; a key missing from [`KEYS`] waits for a restart
/// (the safe guess; a test keeps the table complete).
pub fn apply_of(key: &str) -> Apply {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map_or(Apply::Restart, |(_, a)| *a)
}

/// The value of `key` (dotted, as in [`KEYS`]) in `config`, as TOML writes it.
pub fn value_of(config: &Config, key: &str) -> Option<String> {
    flatten(config).get(key).map(ToString::to_string)
}

/// What a reload of the configuration can and cannot apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    /// The configuration to run with: the new one, except for the values that only take
    /// effect at start, which keep their running values.
    pub effective: Config,
    /// Keys that changed and are applied, in [`KEYS`] order.
    pub applied: Vec<String>,
    /// Keys that changed but only take effect after a restart, in [`KEYS`] order.
    pub needs_restart: Vec<String>,
}

impl Config {
    /// Compares the running configuration with a newly read one, key by key: what a live
    /// reload applies, and what needs a restart.
    pub fn reload(&self, new: &Config) -> Reload {
        let old = flatten(self);
        let mut effective = flatten(new);
        let mut keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        keys.extend(
            effective
                .keys()
                .map(String::as_str)
                .filter(|k| !KEYS.iter().any(|(known, _)| known == k)),
        );
        let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
        let mut applied = Vec::new();
        let mut needs_restart = Vec::new();
        for key in keys {
            if old.get(&key) == effective.get(&key) {
                continue;
            }
            match apply_of(&key) {
                Apply::Live => applied.push(key),
                Apply::Restart => {
                    match old.get(&key) {
                        Some(v) => effective.insert(key.clone(), v.clone()),
                        None => effective.remove(&key),
                    };
                    needs_restart.push(key);
                }
            }
        }
        Reload {
            effective: unflatten(effective),
            applied,
            needs_restart,
        }
    }
}

/// Every leaf of `config`'s TOML form, by dotted key.
pub(super) fn flatten(config: &Config) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                v => {
                    out.insert(key, v);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    match toml::Value::try_from(config) {
        Ok(toml::Value::Table(t)) => walk("", t, &mut out),
        other => unreachable!("a configuration serializes to a table, not {other:?}"),
    }
    out
}

/// The configuration whose leaves are `leaves` (the inverse of [`flatten`]).
fn unflatten(leaves: BTreeMap<String, toml::Value>) -> Config {
    let mut root = toml::Table::new();
    for (key, value) in leaves {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("a key has a name");
        let mut table = &mut root;
        for p in parts {
            table = table
                .entry(p)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a prefix of a key is a table");
        }
        table.insert(last.to_string(), value);
    }
    toml::Value::Table(root)
        .try_into()
        .expect("the leaves of two valid configurations make a valid one")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Every optional setting set, so that each key has a leaf.
    fn full() -> Config {
        let mut c = Config::default();
        c.notify.desktop = Some(true);
        c.notify.quiet_hours = Some("22:00-08:00".parse().unwrap());
        c
    }

    /// `value` of `key` changed into another valid value of the same type.
    fn changed(key: &str, value: &toml::Value) -> toml::Value {
        match (key, value) {
            ("notify.kinds", toml::Value::Array(a)) => {
                let mut a = a.clone();
                a.push(toml::Value::String("in_sync".into()));
                return toml::Value::Array(a);
            }
            ("notify.quiet_hours", _) => return toml::Value::String("23:00-07:00".into()),
            _ => {}
        }
        match value {
            toml::Value::Integer(n) => toml::Value::Integer(n + 1),
            toml::Value::Boolean(b) => toml::Value::Boolean(!b),
            toml::Value::String(s) => toml::Value::String(format!("{s}x")),
            toml::Value::Array(a) => {
                let mut a = a.clone();
                a.push(toml::Value::String("/srv/changed".into()));
                toml::Value::Array(a)
            }
            other => panic!("no rule to change {other:?}: extend this test"),
        }
    }

    #[test]
    fn every_key_of_daemon_toml_is_classified() {
        let keys = flatten(&full());
        for key in keys.keys() {
            assert!(
                KEYS.iter().any(|(k, _)| k == key),
                "{key} is not in config::KEYS: say whether a change of it applies live or \
                 needs a restart (and make it so)"
            );
        }
        for (key, _) in KEYS {
            assert!(
                keys.contains_key(*key),
                "{key} is in KEYS but not in Config"
            );
        }
    }

    #[test]
    fn each_key_changed_alone_is_applied_or_kept_as_classified() {
        let old = full();
        for (key, value) in flatten(&old) {
            let mut leaves = flatten(&old);
            leaves.insert(key.clone(), changed(&key, &value));
            let new = unflatten(leaves);
            let r = old.reload(&new);
            match apply_of(&key) {
                Apply::Live => {
                    assert_eq!(r.applied, [key.as_str()], "{key}");
                    assert!(r.needs_restart.is_empty(), "{key}");
                    assert_eq!(r.effective, new, "{key}");
                }
                Apply::Restart => {
                    assert_eq!(r.needs_restart, [key.as_str()], "{key}");
                    assert!(r.applied.is_empty(), "{key}");
                    assert_eq!(r.effective, old, "{key}");
                    // Reloading the same file again still names what waits for a restart.
                    assert_eq!(r.effective.reload(&new).needs_restart, [key.as_str()]);
                }
            }
        }
    }

    #[test]
    fn reload_applies_live_values_and_keeps_queue_sizes() {
        let old = Config::default();
        let mut new = Config::default();
        new.discovery.scan = vec![PathBuf::from("/srv")];
        new.watch.settle_ms = 5;
        new.watch.queue_capacity = 8;
        new.journal.subscriber_buffer = 2;
        new.journal.max_events = 10;
        new.history.auto_snapshot_interval_secs = 1;
        let r = old.reload(&new);
        assert_eq!(
            r.applied,
            [
                "discovery.scan",
                "watch.settle_ms",
                "journal.max_events",
                "history.auto_snapshot_interval_secs"
            ]
        );
        assert_eq!(
            r.needs_restart,
            ["watch.queue_capacity", "journal.subscriber_buffer"]
        );
        assert_eq!(r.effective.watch.queue_capacity, 4096);
        assert_eq!(r.effective.journal.subscriber_buffer, 1024);
        assert_eq!(r.effective.watch.settle_ms, 5);
        assert_eq!(r.effective.history.auto_snapshot_interval_secs, 1);
        assert_eq!(r.effective.reload(&new).needs_restart.len(), 2);
        assert!(old.reload(&old).applied.is_empty());
        assert_eq!(
            value_of(&r.effective, "watch.queue_capacity").as_deref(),
            Some("4096")
        );
    }
}

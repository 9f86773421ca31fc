//! The range of every numeric setting of `daemon.toml`, and the one check that enforces
//! them ([`check`]).
//!
//! A value outside its range is refused wherever a file is read: at start, by
//! `skillmeatd run --check-config` and by a reload (SIGHUP), since all three go through
//! [`super::Config::load`]. The README lists the same ranges (a test keeps it true), and a
//! test fails when a new numeric key has no range here.

use super::Config;

/// The allowed values of one numeric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Dotted key, as in [`super::KEYS`].
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
    /// Whether 0 is allowed besides `min..=max` (it then means "never" or "off").
    pub zero_allowed: bool,
    /// The unit of the value, said in messages and in the README.
    pub unit: &'static str,
}

impl Range {
    const fn new(key: &'static str, min: u64, max: u64, unit: &'static str) -> Range {
        Range {
            key,
            min,
            max,
            zero_allowed: false,
            unit,
        }
    }

    /// The same range, with 0 allowed too.
    const fn or_zero(self) -> Range {
        Range {
            zero_allowed: true,
            ..self
        }
    }

    /// Whether `value` is allowed.
    pub fn allows(&self, value: u64) -> bool {
        (self.min..=self.max).contains(&value) || (self.zero_allowed && value == 0)
    }

    /// The range in words, as messages and the README say it: `100 to 3600000` or
    /// `0, or 60 to 604800`.
    pub fn describe(&self) -> String {
        let span = format!("{} to {}", self.min, self.max);
        if self.zero_allowed {
            format!("0, or {span}")
        } else {
            span
        }
    }
}

const SECS_PER_YEAR: u64 = 365 * 86_400;

/// Every numeric key of `daemon.toml` and its range. The bounds keep the daemon from
/// busy-looping (polling, reconciling or settling too often), from sizing queues beyond
/// memory, and from timers too long for the clock (a period of `u64::MAX` seconds
/// overflows it).
pub const RANGES: &[Range] = &[
    Range::new("discovery.max_depth", 0, 32, "folder levels"),
    Range::new("watch.settle_ms", 1, 10_000, "milliseconds"),
    Range::new("watch.max_settle_ms", 10, 60_000, "milliseconds"),
    Range::new("watch.reconcile_secs", 60, 7 * 86_400, "seconds; 0 = never").or_zero(),
    Range::new("watch.queue_capacity", 1, 1 << 20, "hints"),
    Range::new("watch.poll_interval_ms", 100, 3_600_000, "milliseconds"),
    Range::new("journal.max_events", 100, 100_000_000, "events"),
    Range::new("journal.max_age_days", 1, 36_500, "days"),
    Range::new("journal.subscriber_buffer", 1, 1 << 20, "events"),
    Range::new(
        "history.auto_snapshot_interval_secs",
        0,
        SECS_PER_YEAR,
        "seconds; 0 = after every settled change",
    ),
    Range::new(
        "history.retention.keep_all_secs",
        0,
        100 * SECS_PER_YEAR,
        "seconds",
    ),
    Range::new(
        "history.retention.hourly_secs",
        0,
        100 * SECS_PER_YEAR,
        "seconds",
    ),
    Range::new(
        "history.retention.daily_secs",
        0,
        100 * SECS_PER_YEAR,
        "seconds",
    ),
    Range::new("history.import.max_entry_bytes", 1, 1 << 40, "bytes"),
    Range::new("history.import.max_total_bytes", 1, 1 << 40, "bytes"),
    Range::new("history.import.max_entries", 1, 10_000_000, "entries"),
    Range::new("notify.coalesce_ms", 0, 600_000, "milliseconds"),
    Range::new("notify.rate_limit", 1, 1000, "notifications per window"),
    Range::new("notify.rate_window_secs", 0, 86_400, "seconds"),
    Range::new(
        "notify.action_mute_secs",
        0,
        SECS_PER_YEAR,
        "seconds; 0 = until unmuted",
    ),
    Range::new("notify.queue_capacity", 1, 65_536, "notifications"),
    Range::new("store.cache_mb", 1, 1024, "MB"),
];

/// Pairs of keys where the first may not exceed the second.
const ORDERED: &[(&str, &str)] = &[("watch.settle_ms", "watch.max_settle_ms")];

/// A value `daemon.toml` may not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    /// The key at fault.
    pub key: &'static str,
    /// Another key the message names (pointed at when `key` is not in the file).
    pub other: Option<&'static str>,
    pub message: String,
}

/// The range of `key`, if it is numeric.
pub fn range_of(key: &str) -> Option<&'static Range> {
    RANGES.iter().find(|r| r.key == key)
}

/// Checks every numeric value of `config` against [`RANGES`] (and the keys whose order
/// matters), in [`RANGES`] order.
///
/// # Errors
/// The first value out of its range, naming the key, the value and the range.
pub fn check(config: &Config) -> Result<(), OutOfRange> {
    let leaves = super::reload::flatten(config);
    let value = |key: &str| leaves.get(key).and_then(toml::Value::as_integer);
    for range in RANGES {
        let Some(v) = value(range.key) else { continue };
        if !u64::try_from(v).is_ok_and(|v| range.allows(v)) {
            return Err(OutOfRange {
                key: range.key,
                other: None,
                message: format!(
                    "`{} = {v}` is out of range: allowed {} ({})",
                    range.key,
                    range.describe(),
                    range.unit
                ),
            });
        }
    }
    for (low, high) in ORDERED {
        if let (Some(l), Some(h)) = (value(low), value(high))
            && l > h
        {
            return Err(OutOfRange {
                key: high,
                other: Some(low),
                message: format!("`{high} = {h}` must be at least `{low}` ({l})"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_key_has_a_range_and_every_range_a_key() {
        let leaves = super::super::reload::flatten(&Config::default());
        for (key, value) in &leaves {
            if value.is_integer() {
                assert!(
                    range_of(key).is_some(),
                    "{key} has no range in config::ranges::RANGES: give it one (and list it \
                     in the README)"
                );
            }
        }
        for r in RANGES {
            assert!(
                leaves.get(r.key).is_some_and(toml::Value::is_integer),
                "{} is in RANGES but is no numeric key of Config",
                r.key
            );
        }
    }

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(check(&Config::default()), Ok(()));
    }

    #[test]
    fn each_bound_is_checked() {
        let mut c = Config::default();
        c.watch.poll_interval_ms = 0;
        let e = check(&c).unwrap_err();
        assert_eq!(e.key, "watch.poll_interval_ms");
        assert!(
            e.message
                .contains("`watch.poll_interval_ms = 0` is out of range")
                && e.message.contains("100 to 3600000"),
            "{}",
            e.message
        );
        c.watch.poll_interval_ms = 100;
        assert_eq!(check(&c), Ok(()));
        c.watch.reconcile_secs = 0;
        assert_eq!(check(&c), Ok(()), "0 means never");
        c.watch.reconcile_secs = 1;
        assert_eq!(check(&c).unwrap_err().key, "watch.reconcile_secs");
        c.watch.reconcile_secs = u64::MAX / 4;
        assert_eq!(check(&c).unwrap_err().key, "watch.reconcile_secs");
        c.watch.reconcile_secs = 0;
        c.notify.rate_limit = 0;
        assert_eq!(check(&c).unwrap_err().key, "notify.rate_limit");
    }

    #[test]
    fn settle_may_not_exceed_the_longest_settle() {
        let mut c = Config::default();
        c.watch.settle_ms = 2000;
        let e = check(&c).unwrap_err();
        assert_eq!(e.key, "watch.max_settle_ms");
        assert!(e.message.contains("at least `watch.settle_ms` (2000)"));
    }

    #[test]
    fn the_readme_lists_every_range() {
        let readme = include_str!("../../README.md");
        for r in RANGES {
            let row = format!("| `{}` | {} |", r.key, r.describe());
            assert!(
                readme.contains(&row),
                "README.md lacks the row {row:?} (the ranges table of daemon.toml)"
            );
        }
    }
}

//! SkillMeat's timestamps (formats doc §0.2): TOML strings made by Python's
//! `datetime.isoformat()` on naive datetimes — `YYYY-MM-DDTHH:MM:SS.ffffff`, the fraction
//! omitted when the microsecond is zero, no zone. Which clock depends on the field:
//! `deployed_at` and audit timestamps use local time, `collection.lock` `fetched` and
//! snapshot ids use UTC.

use chrono::{Local, NaiveDateTime, Timelike, Utc};

/// `datetime.isoformat()` of a naive datetime (microsecond precision, truncated).
pub fn isoformat(t: NaiveDateTime) -> String {
    let micros = t.nanosecond().min(999_999_999) / 1000;
    let secs = t.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{micros:06}")
    }
}

/// Now, on the local wall clock (Python `datetime.now()`).
pub fn now_local() -> NaiveDateTime {
    Local::now().naive_local()
}

/// Now, on the UTC wall clock (Python `datetime.utcnow()`).
pub fn now_utc() -> NaiveDateTime {
    Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_matches_python() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
        assert_eq!(isoformat(t("2026-03-13T15:13:08")), "2026-03-13T15:13:08");
        assert_eq!(
            isoformat(t("2026-01-05T15:07:49.157370")),
            "2026-01-05T15:07:49.157370"
        );
        assert_eq!(
            isoformat(t("2025-01-15T10:00:00.000001")),
            "2025-01-15T10:00:00.000001"
        );
        // Nanoseconds below a microsecond are dropped, as Python never has them.
        assert_eq!(
            isoformat(t("2025-01-15T10:00:00.000000999")),
            "2025-01-15T10:00:00"
        );
        let now = isoformat(now_local());
        assert!(now.len() == 19 || now.len() == 26, "{now}");
    }
}

//! Instants as milliseconds since the Unix epoch (UTC): the clock, printing them as
//! RFC 3339, and reading the forms `smctl` accepts (`2h`, `30m`, `3d`, `1w` ago, or
//! `2026-11-25T10:00[:SS]` in UTC).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2026-11-25T10:00:00Z`.
pub fn format(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `20261125-100000-000000`: SkillMeat's snapshot id of an instant.
pub fn skillmeat_id(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{mo:02}{d:02}-{:02}{:02}{:02}-{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms.rem_euclid(1000) * 1000
    )
}

/// Reads SkillMeat's snapshot id (`20251217-103000-123456` or `20251217-103000`).
pub fn parse_skillmeat_id(id: &str) -> Option<i64> {
    let b = id.as_bytes();
    if b.len() < 15 || b[8] != b'-' || !id.is_char_boundary(15) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| id.get(r)?.parse::<i64>().ok();
    let day = days_from_civil(num(0..4)?, num(4..6)?, num(6..8)?);
    let secs = day * 86_400 + num(9..11)? * 3600 + num(11..13)? * 60 + num(13..15)?;
    let micros = match id.get(15..) {
        Some("") => 0,
        Some(rest) => rest.strip_prefix('-')?.parse::<i64>().ok()?,
        None => 0,
    };
    Some(secs * 1000 + micros / 1000)
}

/// Reads `2h` / `30m` / `45s` / `3d` / `1w` (that long before `now_ms`) or
/// `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD` (UTC; a trailing `Z` is accepted).
///
/// # Errors
/// Anything else, with the accepted forms in the message.
pub fn parse(s: &str, now_ms: i64) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a time: use 30m, 2h, 3d, 1w or 2026-11-25T10:00 (UTC)");
    let s = s.trim();
    if let Some(unit) = s.chars().last().filter(char::is_ascii_alphabetic)
        && s.len() > 1
        && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit())
    {
        let n: i64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        return Ok(now_ms - n * secs * 1000);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, clock) = s.split_once('T').unwrap_or((s, "00:00"));
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    if d.len() != 3 || !(2..=3).contains(&c.len()) {
        return Err(bad());
    }
    let n = |x: &str| x.parse::<i64>().map_err(|_| bad());
    let (y, mo, day) = (n(d[0])?, n(d[1])?, n(d[2])?);
    let (h, mi) = (n(c[0])?, n(c[1])?);
    let sec = c.get(2).map_or(Ok(0), |x| n(x))?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    Ok((days_from_civil(y, mo, day) * 86_400 + h * 3600 + mi * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse("2026-11-25T10:00", 0).unwrap();
        assert_eq!(format(t), "2026-11-25T10:00:00Z");
        assert_eq!(parse("1970-01-02", 0).unwrap(), 86_400_000);
        assert_eq!(parse("2h", 10_000_000).unwrap(), 10_000_000 - 7_200_000);
        assert!(parse("yesterday", 0).is_err());
        assert!(parse("2026-13-01T00:00", 0).is_err());
        let id = skillmeat_id(t + 123);
        assert_eq!(id, "20261125-100000-123000");
        assert_eq!(parse_skillmeat_id(&id), Some(t + 123));
        assert_eq!(parse_skillmeat_id("20261125-100000"), Some(t));
        assert_eq!(parse_skillmeat_id("nonsense"), None);
    }
}

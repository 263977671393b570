//! Times and durations as users type them for `--start`, `--end` and `--step`: RFC 3339
//! (`2026-12-01T10:00:00Z`, `…+02:00`), Unix seconds (`1764583200`), `now`, and relative times
//! (`-30m`, `now-1h`, `now+5m`); durations in Prometheus' units (`15s`, `1h30m`, `500ms`, `2d`, `1w`).

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid duration `{0}`: expected a number and a unit (ms, s, m, h, d, w, y), e.g. `15s`, `1h30m`")]
    Duration(String),
    #[error("invalid time `{text}`: {why}; expected RFC 3339 (`2026-12-01T10:00:00Z`), Unix seconds, `now`, or a relative time (`-30m`, `now-1h`)")]
    Time { text: String, why: String },
}

/// Seconds since the Unix epoch, as a float (Prometheus' own time unit).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses a duration such as `15s`, `1h30m`, `1.5m` or `500ms` into seconds (> 0).
pub fn parse_duration(text: &str) -> Result<f64, TimeError> {
    let bad = || TimeError::Duration(text.to_string());
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 7.0 * 86_400.0,
            "y" => 365.0 * 86_400.0,
            _ => return Err(bad()),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if total > 0.0 && total.is_finite() {
        Ok(total)
    } else {
        Err(bad())
    }
}

/// Parses a point in time into Unix seconds; relative times count from `now` (Unix seconds).
pub fn parse_time(text: &str, now: f64) -> Result<f64, TimeError> {
    let s = text.trim();
    let err = |why: &str| TimeError::Time {
        text: text.to_string(),
        why: why.to_string(),
    };
    let relative = |sign: f64, d: &str| -> Result<f64, TimeError> {
        let d = parse_duration(d.trim()).map_err(|_| err("the offset is not a duration"))?;
        Ok(now + sign * d)
    };
    if s == "now" {
        return Ok(now);
    }
    if let Some(rest) = s.strip_prefix("now") {
        let rest = rest.trim_start();
        return match rest.chars().next() {
            Some('-') => relative(-1.0, &rest[1..]),
            Some('+') => relative(1.0, &rest[1..]),
            _ => Err(err("after `now` comes `-` or `+` and a duration")),
        };
    }
    if let Some(rest) = s.strip_prefix('-') {
        return relative(-1.0, rest);
    }
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return s.parse().map_err(|_| err("not a number"));
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return parse_rfc3339(s).ok_or_else(|| err("not a valid RFC 3339 date and time"));
    }
    if parse_duration(s).is_ok() {
        return Err(err(&format!(
            "a bare duration is ambiguous; write `-{s}` for {s} ago"
        )));
    }
    Err(err("not a recognized time"))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t`/`z` and a space for `T` are accepted too.
fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || day > days_in_month(year, month) {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = format!("0.{}", &s[start..i]).parse().ok()?;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs as f64 + frac)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as RFC 3339 in UTC with milliseconds, for messages and the report.
pub fn format_rfc3339(t: f64) -> String {
    let ms = (t * 1000.0).round() as i64;
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_764_583_200.0; // 2025-12-01T10:00:00Z

    #[test]
    fn durations_in_prometheus_units_and_compounds() {
        assert_eq!(parse_duration("15s"), Ok(15.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert_eq!(parse_duration("1.5m"), Ok(90.0));
        assert_eq!(parse_duration("2d"), Ok(172_800.0));
        assert_eq!(parse_duration("1w"), Ok(604_800.0));
        for bad in ["", "15", "s", "0s", "15 seconds", "-5s", "1h-5m", "10x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_times_count_back_from_now_as_users_type_them() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("-30m", NOW), Ok(NOW - 1800.0));
        assert_eq!(parse_time("now-1h", NOW), Ok(NOW - 3600.0));
        assert_eq!(parse_time("now - 1h", NOW), Ok(NOW - 3600.0));
        assert_eq!(parse_time("now+5m", NOW), Ok(NOW + 300.0));
        assert_eq!(parse_time("-1h30m", NOW), Ok(NOW - 5400.0));
    }

    #[test]
    fn a_bare_duration_is_rejected_with_the_fix() {
        let e = parse_time("30m", NOW).unwrap_err().to_string();
        assert!(e.contains("`-30m`"), "{e}");
        assert!(parse_time("now*2", NOW).is_err());
        assert!(parse_time("yesterday", NOW).is_err());
    }

    #[test]
    fn rfc3339_with_z_offsets_and_fractions() {
        assert_eq!(parse_time("2025-12-01T10:00:00Z", NOW), Ok(NOW));
        assert_eq!(parse_time("2025-12-01t10:00:00z", NOW), Ok(NOW));
        assert_eq!(parse_time("2025-12-01 12:00:00+02:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2025-12-01T09:30:00-00:30", NOW), Ok(NOW));
        assert_eq!(parse_time("2025-12-01T10:00:00.250Z", NOW), Ok(NOW + 0.25));
        assert_eq!(parse_time("1970-01-01T00:00:00Z", NOW), Ok(0.0));
        assert_eq!(parse_time("2024-02-29T00:00:00Z", NOW), Ok(1_709_164_800.0));
        for bad in [
            "2025-02-29T00:00:00Z",
            "2025-12-01T10:00:00",
            "2025-13-01T10:00:00Z",
            "2025-12-01T24:00:00Z",
            "2025-12-01",
        ] {
            assert!(parse_time(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn unix_seconds_are_accepted_as_prometheus_does() {
        assert_eq!(parse_time("1764583200", NOW), Ok(NOW));
        assert_eq!(parse_time("1764583200.5", NOW), Ok(NOW + 0.5));
    }

    #[test]
    fn rfc3339_formatting_round_trips() {
        assert_eq!(format_rfc3339(NOW), "2025-12-01T10:00:00.000Z");
        for t in [0.0, 951_782_400.0, 1_709_164_800.5, NOW + 0.123] {
            assert_eq!(parse_time(&format_rfc3339(t), NOW), Ok(t), "{t}");
        }
    }
}

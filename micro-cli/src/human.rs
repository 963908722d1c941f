//! Figures for people, as natscli shows them: durations rounded to what matters (`10µs`, `1ms`, `1.50s`,
//! `2m5s`), counts with thousands separators (`1,234`), and times in the local time zone.
//!
//! natscli's rules, read from its source and written again here: under a millisecond a duration is rounded to
//! the microsecond, under a second to the millisecond, both printed the way Go prints a duration; under a
//! minute it is seconds with two decimals; from a minute on, whole seconds in days, hours and minutes, and
//! years past 365 days. Halves round away from zero, as Go's `Duration.Round` does.

use std::time::{Duration, SystemTime};

const MICROSECOND: i128 = 1_000;
const MILLISECOND: i128 = 1_000_000;
const SECOND: i128 = 1_000_000_000;

/// A duration as natscli shows it: `0s`, `10µs`, `1ms`, `1.50s`, `2m5s`, `1d2h0m3s`.
pub(crate) fn duration(d: Duration) -> String {
    nanos(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// [`duration`] of a count of nanoseconds, as the STATS replies carry them.
pub(crate) fn duration_ns(ns: u64) -> String {
    nanos(i128::from(ns))
}

/// [`duration`] of a signed count of nanoseconds (negative when a clock was ahead).
pub(crate) fn nanos(ns: i128) -> String {
    if ns < MILLISECOND {
        return go_duration(round(ns, MICROSECOND));
    }
    if ns < SECOND {
        return go_duration(round(ns, MILLISECOND));
    }
    if ns >= i128::from(i64::MAX) {
        // Go's largest duration; natscli's word for it.
        return "never".into();
    }
    let secs = ns / SECOND;
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    if years > 0 {
        format!("{years}y{}d{}h{}m{}s", days % 365, hours % 24, mins % 60, secs % 60)
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hours % 24, mins % 60, secs % 60)
    } else if hours > 0 {
        format!("{hours}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        // Two decimals, ties to even, as Go's %.2f: Rust's formatting rounds the same way.
        format!("{:.2}s", ns as f64 / SECOND as f64)
    }
}

/// `ns` rounded to the nearest multiple of `unit`, halves away from zero (Go's `Duration.Round`).
fn round(ns: i128, unit: i128) -> i128 {
    let rest = ns % unit;
    if rest.abs() * 2 < unit {
        ns - rest
    } else if ns < 0 {
        ns - rest - unit
    } else {
        ns - rest + unit
    }
}

/// How Go prints a duration: `0s`, `1.5µs`, `12ms`, `1.5s`, `2m3s`, `1h0m0.5s`, fractions without trailing
/// zeros.
fn go_duration(ns: i128) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let body = if u < MICROSECOND as u128 {
        format!("{u}ns")
    } else if u < MILLISECOND as u128 {
        format!("{}µs", decimal(u, 3))
    } else if u < SECOND as u128 {
        format!("{}ms", decimal(u, 6))
    } else {
        let secs = u / SECOND as u128;
        let fraction = decimal(u % SECOND as u128 + secs % 60 * SECOND as u128, 9);
        let (mins, hours) = (secs / 60 % 60, secs / 3600);
        match (hours, mins) {
            (0, 0) => format!("{fraction}s"),
            (0, m) => format!("{m}m{fraction}s"),
            (h, m) => format!("{h}h{m}m{fraction}s"),
        }
    };
    format!("{sign}{body}")
}

/// `v / 10^digits` in decimal, the fraction without trailing zeros.
fn decimal(v: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let (whole, fraction) = (v / scale, v % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0width$}", width = digits as usize);
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// A count with thousands separators: `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An RFC 3339 time (as STATS replies carry `started`) in the local time zone, `2006-01-02 15:04:05`, and
/// how long ago it was; `None` when it does not parse.
pub(crate) fn local_time_and_age(rfc3339: &str, now: SystemTime) -> Option<(String, String)> {
    let at: jiff::Timestamp = rfc3339.parse().ok()?;
    let local = at.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S").to_string();
    let now = jiff::Timestamp::try_from(now).ok()?;
    let age = now.as_nanosecond() - at.as_nanosecond();
    Some((local, nanos(age)))
}

/// The local wall clock now, `15:04:05`, for log lines.
pub(crate) fn clock_now() -> String {
    jiff::ZonedDateTime::now().strftime("%H:%M:%S").to_string()
}

/// Now as RFC 3339 in the local zone, to the second, `Z` for UTC (Go's `time.RFC3339`).
pub(crate) fn timestamp_now() -> String {
    rfc3339_seconds(&jiff::ZonedDateTime::now())
}

fn rfc3339_seconds(at: &jiff::ZonedDateTime) -> String {
    if at.offset() == jiff::tz::Offset::UTC {
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(v: u64) -> String {
        duration_ns(v)
    }

    #[test]
    fn under_a_millisecond_rounds_to_the_microsecond() {
        assert_eq!(ns(0), "0s");
        assert_eq!(ns(499), "0s");
        assert_eq!(ns(500), "1µs", "a half rounds away from zero");
        assert_eq!(ns(10_000), "10µs");
        assert_eq!(ns(10_499), "10µs");
        assert_eq!(ns(999_499), "999µs");
        assert_eq!(ns(999_500), "1ms", "rounded up to the next unit, printed in it");
    }

    #[test]
    fn under_a_second_rounds_to_the_millisecond() {
        assert_eq!(ns(1_000_000), "1ms");
        assert_eq!(ns(1_234_567), "1ms");
        assert_eq!(ns(1_500_000), "2ms");
        assert_eq!(ns(999_499_999), "999ms");
        assert_eq!(ns(999_500_000), "1s");
    }

    #[test]
    fn seconds_have_two_decimals_and_minutes_whole_seconds() {
        assert_eq!(ns(1_000_000_000), "1.00s");
        assert_eq!(ns(1_500_000_000), "1.50s");
        assert_eq!(ns(1_125_000_000), "1.12s", "an exact half rounds to even, as Go's %.2f");
        assert_eq!(ns(1_375_000_000), "1.38s");
        assert_eq!(ns(59_999_000_000), "60.00s");
        assert_eq!(ns(60_000_000_000), "1m0s");
        assert_eq!(ns(125_900_000_000), "2m5s", "whole seconds, cut not rounded");
        assert_eq!(ns(3 * 3600 * 1_000_000_000 + 61_000_000_000), "3h1m1s");
        assert_eq!(ns(86_400_000_000_000 + 7_000_000_000), "1d0h0m7s");
        assert_eq!(ns(400 * 86_400_000_000_000), "1y35d0h0m0s");
        assert_eq!(ns(i64::MAX as u64), "never");
        assert_eq!(duration(Duration::from_millis(10)), "10ms");
    }

    #[test]
    fn negative_durations_as_go_prints_them() {
        assert_eq!(nanos(-10_400), "-10µs");
        assert_eq!(nanos(-10_500), "-11µs", "away from zero");
        assert_eq!(nanos(-2_500_000_000), "-2.5s", "below a millisecond for natscli: Go's own form");
        assert_eq!(nanos(-62_000_000_000), "-1m2s");
    }

    #[test]
    fn go_forms() {
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(3_600_500_000_000), "1h0m0.5s");
        assert_eq!(decimal(1_230, 3), "1.23");
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn timestamps_as_go_prints_rfc3339() {
        let at: jiff::Timestamp = "2024-03-23T12:38:54.5Z".parse().unwrap();
        let utc = at.to_zoned_datetime(jiff::tz::TimeZone::UTC);
        assert_eq!(rfc3339_seconds(&utc), "2024-03-23T12:38:54Z");
        let east = at.to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(2)));
        assert_eq!(rfc3339_seconds(&east), "2024-03-23T14:38:54+02:00");
    }

    #[test]
    fn started_times_parse_with_any_offset_and_fraction() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let (_, age) = local_time_and_age("2023-11-14T22:13:20.03603544Z", now).unwrap();
        assert_eq!(age, "1m39s");
        let (_, age) = local_time_and_age("2023-11-14T23:13:20+01:00", now).unwrap();
        assert_eq!(age, "1m40s");
        assert!(local_time_and_age("yesterday", now).is_none());
    }
}

//! RFC 3339 timestamps as [`SystemTime`], and Go's old `time.Time.String()` layout.
//!
//! JetStream writes times as RFC 3339 with up to 9 fractional digits and a zone (`2024-05-01T10:00:00.5Z`,
//! `...+02:00`). Early 2.9 servers wrote the direct-get `Nats-Time-Stamp` header in Go's default layout,
//! `2006-01-02 15:04:05.999999999 -0700 MST`. Both parse here; we always write RFC 3339 in UTC.
//!
//! Go's zero time (`0001-01-01T00:00:00Z`) is what the server sends for "no time" (an empty stream's
//! `first_ts`); the optional serde helper reads it as `None`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serializer};

const SECS_PER_DAY: i64 = 86_400;
/// Seconds from the Unix epoch back to Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_UNIX: i64 = -62_135_596_800;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what four-digit years can show.
const MIN_UNIX: i64 = -62_167_219_200;
const MAX_UNIX: i64 = 253_402_300_799;

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March so the leap day is the last day of the (shifted) year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a count of days since 1970-01-01: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A little cursor over ASCII bytes.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let (head, tail) = (self.rest.get(..n)?, &self.rest[n..]);
        let mut value = 0u32;
        for &b in head {
            value = value * 10 + u32::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        }
        self.rest = tail;
        Some(value)
    }

    fn eat(&mut self, accepted: &[u8]) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        accepted.contains(&first).then(|| {
            self.rest = tail;
            first
        })
    }

    /// `.` and 1 to 9 digits, as nanoseconds; 0 when there is no `.`.
    fn fraction(&mut self) -> Option<u32> {
        if self.eat(b".").is_none() {
            return Some(0);
        }
        let count = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&count) {
            return None;
        }
        let value = self.digits(count)?;
        Some(value * 10u32.pow(9 - count as u32))
    }
}

/// Parses to seconds and nanoseconds since the Unix epoch (the seconds may be negative).
pub(crate) fn parse_unix(text: &str) -> Option<(i64, u32)> {
    let mut c = Cursor { rest: text.as_bytes() };
    let year = c.digits(4)?;
    c.eat(b"-")?;
    let month = c.digits(2)?;
    c.eat(b"-")?;
    let day = c.digits(2)?;
    let separator = c.eat(b"Tt ")?;
    let hour = c.digits(2)?;
    c.eat(b":")?;
    let minute = c.digits(2)?;
    c.eat(b":")?;
    let second = c.digits(2)?;
    let nanos = c.fraction()?;
    let offset_secs = if separator == b' ' { go_zone(&mut c)? } else { rfc3339_zone(&mut c)? };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(i64::from(year), month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60; // a leap second reads as the first second of the next minute
    if !valid || !c.rest.is_empty() {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some((secs, nanos))
}

/// `Z` or `±HH:MM`.
fn rfc3339_zone(c: &mut Cursor<'_>) -> Option<i64> {
    if c.eat(b"Zz").is_some() {
        return Some(0);
    }
    let sign = c.eat(b"+-")?;
    let hours = c.digits(2)?;
    c.eat(b":")?;
    let minutes = c.digits(2)?;
    zone_offset(sign, hours, minutes)
}

/// Go's ` -0700 MST`: a space, `±HHMM`, and an optional zone abbreviation that carries no information.
fn go_zone(c: &mut Cursor<'_>) -> Option<i64> {
    c.eat(b" ")?;
    let sign = c.eat(b"+-")?;
    let hours = c.digits(2)?;
    let minutes = c.digits(2)?;
    if c.eat(b" ").is_some() {
        let abbreviation = c.rest.iter().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-')).count();
        if abbreviation == 0 {
            return None;
        }
        c.rest = &c.rest[abbreviation..];
    }
    zone_offset(sign, hours, minutes)
}

fn zone_offset(sign: u8, hours: u32, minutes: u32) -> Option<i64> {
    if hours > 23 || minutes > 59 {
        return None;
    }
    let secs = i64::from(hours * 3600 + minutes * 60);
    Some(if sign == b'-' { -secs } else { secs })
}

fn to_system_time(secs: i64, nanos: u32) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        // secs < 0 and nanos push forward: secs + nanos/1e9 = -(|secs| - nanos/1e9).
        UNIX_EPOCH.checked_sub(Duration::new(secs.unsigned_abs(), 0))?.checked_add(Duration::new(0, nanos))
    }
}

/// Parses an RFC 3339 timestamp (any zone offset, 0 to 9 fractional digits) or Go's
/// `2006-01-02 15:04:05.999999999 -0700 MST` form.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = parse_unix(text)?;
    to_system_time(secs, nanos)
}

/// Formats as RFC 3339 in UTC with the fractional digits that are needed (none for a whole second), the way
/// Go's `RFC3339Nano` does. Times outside years 0000 to 9999 are clamped to them.
pub(crate) fn format(time: SystemTime) -> String {
    let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (i64::try_from(after.as_secs()).unwrap_or(i64::MAX), after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    let (secs, nanos) = match secs {
        s if s < MIN_UNIX => (MIN_UNIX, 0),
        s if s > MAX_UNIX => (MAX_UNIX, 999_999_999),
        s => (s, nanos),
    };
    let (days, second_of_day) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Serde for an optional timestamp: absent, `null`, Go's zero time and (leniently) text that does not parse
/// all read as `None`.
pub(crate) mod optional {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.serialize_str(&format(*t)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text
            .as_deref()
            .and_then(parse_unix)
            .filter(|(secs, _)| *secs != GO_ZERO_UNIX)
            .and_then(|(secs, nanos)| to_system_time(secs, nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: i64, nanos: u32) -> SystemTime {
        to_system_time(secs, nanos).unwrap()
    }

    #[test]
    fn rfc3339_forms() {
        let base = 1_714_557_600; // 2024-05-01T10:00:00Z
        let cases = [
            ("2024-05-01T10:00:00Z", base, 0),
            ("2024-05-01t10:00:00z", base, 0),
            ("2024-05-01T10:00:00.5Z", base, 500_000_000),
            ("2024-05-01T10:00:00.000000001Z", base, 1),
            ("2024-05-01T10:00:00.123456789Z", base, 123_456_789),
            ("2024-05-01T12:00:00+02:00", base, 0),
            ("2024-05-01T05:30:00.25-04:30", base, 250_000_000),
            ("2024-05-01T10:00:00+00:00", base, 0),
            ("2024-05-01T10:00:00-00:00", base, 0),
            ("1970-01-01T00:00:00Z", 0, 0),
            ("1969-12-31T23:59:59.9Z", -1, 900_000_000),
            ("2000-02-29T00:00:00Z", 951_782_400, 0),
            ("0001-01-01T00:00:00Z", GO_ZERO_UNIX, 0),
        ];
        for (text, secs, nanos) in cases {
            assert_eq!(parse_unix(text), Some((secs, nanos)), "{text}");
        }
    }

    #[test]
    fn go_string_form() {
        let base = 1_714_557_600;
        let cases = [
            ("2024-05-01 10:00:00.123456789 +0000 UTC", base, 123_456_789),
            ("2024-05-01 12:00:00 +0200 CEST", base, 0),
            ("2024-05-01 03:00:00.5 -0700 MST", base, 500_000_000),
            ("2024-05-01 10:00:00 +0000", base, 0),
            ("2024-05-01 13:00:00 +0300 +03", base, 0),
        ];
        for (text, secs, nanos) in cases {
            assert_eq!(parse_unix(text), Some((secs, nanos)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "2024-05-01",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00Z",
            "2024-13-01T10:00:00Z",
            "2024-00-01T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "2024-04-31T10:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:60:00Z",
            "2024-05-01T10:00:61Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00.1234567890Z",
            "2024-05-01T10:00:00+24:00",
            "2024-05-01T10:00:00+0200",
            "2024-05-01T10:00:00Zjunk",
            "2024-05-01 10:00:00 UTC",
            "2024-05-01 10:00:00 +02:00",
            "2024-05-01 10:00:00 +0000 ",
            "24-05-01T10:00:00Z",
            "2024-5-01T10:00:00Z",
            "२०२४-05-01T10:00:00Z",
        ] {
            assert_eq!(parse_unix(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_like_rfc3339nano() {
        assert_eq!(format(at(1_714_557_600, 0)), "2024-05-01T10:00:00Z");
        assert_eq!(format(at(1_714_557_600, 500_000_000)), "2024-05-01T10:00:00.5Z");
        assert_eq!(format(at(1_714_557_600, 123_456_789)), "2024-05-01T10:00:00.123456789Z");
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(format(at(-1, 900_000_000)), "1969-12-31T23:59:59.9Z");
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (days_from_civil(1900, 1, 1)..days_from_civil(2300, 1, 1)).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    proptest! {
        #[test]
        fn format_then_parse(secs in MIN_UNIX..=MAX_UNIX, nanos in 0u32..1_000_000_000) {
            let text = format(at(secs, nanos));
            prop_assert_eq!(parse_unix(&text), Some((secs, nanos)));
            prop_assert_eq!(parse(&text), Some(at(secs, nanos)));
        }

        #[test]
        fn offsets_shift_by_their_value(secs in 0i64..MAX_UNIX - 86_400, hours in 0u32..24, minutes in 0u32..60) {
            // Write the local wall time for a positive offset and check it reads back as the same instant.
            let offset = i64::from(hours * 3600 + minutes * 60);
            let local = format(at(secs + offset, 0));
            let text = format!("{}+{hours:02}:{minutes:02}", local.trim_end_matches('Z'));
            prop_assert_eq!(parse_unix(&text), Some((secs, 0)));
        }

        #[test]
        fn timestamp_shaped_text(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(Z|[+-][0-9]{2}:?[0-9]{2})?( [A-Z]{3})?"
        ) {
            // Validation never panics; what it accepts has in-range fields, so it formats and reads back.
            if let Some((secs, nanos)) = parse_unix(&text) {
                prop_assert!(nanos < 1_000_000_000);
                if (MIN_UNIX..=MAX_UNIX).contains(&secs) {
                    prop_assert_eq!(parse_unix(&format(at(secs, nanos))), Some((secs, nanos)));
                }
            }
        }

        #[test]
        fn parse_is_total_and_consistent(text in "\\PC{0,40}") {
            // Never panics; whatever parses (within years 0000-9999) formats to text that parses back.
            if let Some((secs, nanos)) = parse_unix(&text).filter(|(s, _)| (MIN_UNIX..=MAX_UNIX).contains(s)) {
                prop_assert_eq!(parse(&format(at(secs, nanos))), Some(at(secs, nanos)));
            }
        }
    }
}

//! The drivers' clock: the core's time ([`nats_proto::Instant`], nanoseconds from an origin the driver picks)
//! read from `std::time::Instant` and converted back for sleeps and timers. The core never reads a clock;
//! both clients do, through [`StdInstant`].
//!
//! Every conversion in the process counts from one origin, fixed the first time any of them runs: a day before
//! that moment when the platform's clock reaches back that far (else the margin is halved until it does, down
//! to none). So a `std::time::Instant` taken before the first conversion, up to that margin earlier, still
//! converts exactly; one taken earlier still converts to the origin, `Instant::from_nanos(0)`. The other way, an
//! `Instant` beyond what the platform's `std::time::Instant` represents converts to the latest one it does.
//! Between those ends `Instant::from_std(t).to_std() == t` exactly. Drivers that convert share the origin, so
//! their instants compare; one that counts from an origin of its own with `from_nanos` must not mix the two.
//!
//! ```
//! use std::time::Duration;
//! use nats_client::StdInstant;
//! use nats_proto::Instant;
//!
//! let now = Instant::now();
//! let later = now + Duration::from_millis(5);
//! assert_eq!(Instant::from_std(later.to_std()), later);
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use nats_proto::Instant;

fn nanos_of(d: Duration) -> Option<u64> {
    u64::try_from(d.as_nanos()).ok()
}

/// How long before the first conversion the origin lies, when the clock reaches back that far.
const MARGIN: Duration = Duration::from_secs(24 * 3600);

static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();

/// The process-wide origin of converted instants.
fn origin() -> std::time::Instant {
    *ORIGIN.get_or_init(|| reach_back(std::time::Instant::now(), MARGIN))
}

/// `now - margin`, or with the margin halved until the platform's clock can represent it.
fn reach_back(now: std::time::Instant, mut margin: Duration) -> std::time::Instant {
    loop {
        if let Some(earlier) = now.checked_sub(margin) {
            return earlier;
        }
        if margin.is_zero() {
            return now;
        }
        margin /= 2;
    }
}

/// `t` counted from `origin`, saturating at both ends.
fn from_std_at(origin: std::time::Instant, t: std::time::Instant) -> Instant {
    match t.checked_duration_since(origin) {
        Some(since) => Instant::from_nanos(nanos_of(since).unwrap_or(u64::MAX)),
        None => Instant::from_nanos(0),
    }
}

/// `origin + i`, or as close to it as the platform's `std::time::Instant` reaches.
fn to_std_at(origin: std::time::Instant, i: Instant) -> std::time::Instant {
    let mut left = Duration::from_nanos(i.as_nanos());
    let mut at = origin;
    // One step almost always does it; past the platform's range, take the largest steps that still fit.
    let mut step = left;
    while !left.is_zero() && !step.is_zero() {
        match at.checked_add(step) {
            Some(later) if step <= left => {
                at = later;
                left -= step;
            }
            _ => step /= 2,
        }
    }
    at
}

/// The core's [`Instant`] from and to the std clock, for drivers (see the [module](self)).
pub trait StdInstant: Sized {
    /// The current time, read from `std::time::Instant`.
    fn now() -> Self;
    /// Converts a `std::time::Instant`, counted from the process-wide origin: exact from a day before the
    /// first conversion on, the origin itself for anything earlier.
    fn from_std(t: std::time::Instant) -> Self;
    /// The `std::time::Instant` this is, for a sleep or a timer (the latest one the platform represents if it
    /// lies beyond).
    fn to_std(self) -> std::time::Instant;
}

impl StdInstant for Instant {
    fn now() -> Self {
        Self::from_std(std::time::Instant::now())
    }

    fn from_std(t: std::time::Instant) -> Self {
        from_std_at(origin(), t)
    }

    fn to_std(self) -> std::time::Instant {
        to_std_at(origin(), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_now() -> std::time::Instant {
        std::time::Instant::now()
    }

    #[test]
    fn round_trips_are_exact_from_the_origin_on() {
        let origin = std_now();
        for nanos in [0, 1, 999, 1_000_000_007, 3_600_000_000_000 + 123, 400 * 365 * 86_400 * 1_000_000_000] {
            let t = origin + Duration::from_nanos(nanos);
            let i = from_std_at(origin, t);
            assert_eq!(i.as_nanos(), nanos);
            assert_eq!(to_std_at(origin, i), t);
        }
    }

    #[test]
    fn before_the_origin_is_the_origin() {
        let t = std_now();
        let origin = t + Duration::from_secs(1);
        assert_eq!(from_std_at(origin, t), Instant::from_nanos(0));
    }

    #[test]
    fn the_far_end_saturates_both_ways() {
        let origin = std_now();
        let beyond = Duration::from_nanos(u64::MAX) + Duration::from_secs(10);
        if let Some(t) = origin.checked_add(beyond) {
            assert_eq!(from_std_at(origin, t).as_nanos(), u64::MAX);
        }
        // The last instant converts to where the platform's clock reaches, never panicking.
        let t = to_std_at(origin, Instant::from_nanos(u64::MAX));
        match origin.checked_add(Duration::from_nanos(u64::MAX)) {
            Some(exact) => assert_eq!(t, exact),
            None => assert!(t > origin && t.checked_add(Duration::from_nanos(1)).is_none()),
        }
    }

    #[test]
    fn reach_back_takes_what_the_clock_allows() {
        let now = std_now();
        let back = reach_back(now, MARGIN);
        assert!(back <= now);
        assert_eq!(reach_back(now, Duration::ZERO), now);
        // A margin no clock reaches back (it would overflow any platform's instant) halves until one fits.
        // It stops at the first margin that fits: twice that did not.
        let back = reach_back(now, Duration::MAX);
        assert!(back < now);
        assert!((now - back).checked_mul(2).and_then(|d| now.checked_sub(d)).is_none());
    }

    #[test]
    fn the_process_origin_converts_a_std_instant_taken_earlier_exactly() {
        let earlier = std_now();
        let before_first_use = earlier.checked_sub(Duration::from_secs(3600)).unwrap_or(earlier);
        let now = Instant::now();
        assert!(Instant::from_std(earlier) <= now);
        // Taken an hour before a first use (or before an earlier test's), still well inside the day's margin.
        assert_eq!(Instant::from_std(before_first_use).to_std(), before_first_use);
        assert_eq!(Instant::from_std(earlier).to_std(), earlier);
        assert_eq!(Instant::from_std(now.to_std()), now);
    }
}

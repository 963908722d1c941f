//! Time as the core sees it: an [`Instant`] the driver hands in, read from a clock the core never touches.
//!
//! An `Instant` is a count of nanoseconds on a monotonic clock, from an origin the driver picks once and keeps
//! (boot, the start of the process, the first connection: only order and differences matter). A driver reads
//! its own clock (a hardware timer, an RTOS tick count, `std::time::Instant`) and passes the result into
//! every call that takes `now`; what the core returns ([`poll_timeout`](crate::Connection::poll_timeout),
//! [`connect_deadline`](crate::Connection::connect_deadline)) is on the same scale.
//!
//! The type is the same with and without the `std` feature, so features stay additive. The core has no
//! conversion from `std::time::Instant`: that is a clock, and clocks are the drivers' (the clients convert with
//! `nats_client::StdInstant`).
//!
//! # Arithmetic
//!
//! Arithmetic never panics. A `u64` of nanoseconds spans about 584 years: adding or subtracting a
//! [`Duration`] saturates at either end of that range (the `checked_*` methods say when it would not fit), and
//! the duration from a later instant to an earlier one is zero.

#[cfg(test)]
mod tests;

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};
use core::time::Duration;

/// A moment on the driver's monotonic clock: nanoseconds since an origin the driver chose.
///
/// Only instants measured from the same origin may be compared; every instant given to one
/// [`Connection`](crate::Connection) must be. `Debug` shows the time since the origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

/// A duration in whole nanoseconds, if it fits in a `u64` (durations past about 584 years do not).
fn nanos_of(d: Duration) -> Option<u64> {
    u64::try_from(d.as_nanos()).ok()
}

impl Instant {
    /// The instant `nanos` nanoseconds after the driver's origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// Nanoseconds since the driver's origin.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// `self + d`, or `None` past the last representable instant.
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        self.nanos.checked_add(nanos_of(d)?).map(Self::from_nanos)
    }

    /// `self - d`, or `None` before the origin.
    pub fn checked_sub(self, d: Duration) -> Option<Self> {
        self.nanos.checked_sub(nanos_of(d)?).map(Self::from_nanos)
    }

    /// `self + d`, at most the last representable instant.
    pub fn saturating_add(self, d: Duration) -> Self {
        self.checked_add(d).unwrap_or(Self::from_nanos(u64::MAX))
    }

    /// `self - d`, at least the origin.
    pub fn saturating_sub(self, d: Duration) -> Self {
        self.checked_sub(d).unwrap_or(Self::from_nanos(0))
    }

    /// Time from `earlier` to `self`, or `None` if `earlier` is later.
    pub fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        self.nanos.checked_sub(earlier.nanos).map(Duration::from_nanos)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.checked_duration_since(earlier).unwrap_or(Duration::ZERO)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later (as `std::time::Instant::duration_since`).
    pub fn duration_since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Instant").field(&Duration::from_nanos(self.nanos)).finish()
    }
}

/// Saturates at the last representable instant.
impl Add<Duration> for Instant {
    type Output = Self;

    fn add(self, d: Duration) -> Self {
        self.saturating_add(d)
    }
}

/// Saturates at the last representable instant.
impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

/// Saturates at the origin.
impl Sub<Duration> for Instant {
    type Output = Self;

    fn sub(self, d: Duration) -> Self {
        self.saturating_sub(d)
    }
}

/// Saturates at the origin.
impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

/// The time from `earlier` to `self`, zero if `earlier` is later.
impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

//! The connection's timer table: one optional deadline per timer; `poll_timeout` is their minimum.

use std::time::{Duration, Instant};

/// The longest wait the connection schedules; longer durations (`Duration::MAX` as "for ever") are cut to it
/// so that adding them to an `Instant` cannot overflow.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, saturating at a century.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(LONGEST)).unwrap_or(now)
}

/// The connection's own timers (flush and request deadlines are kept with those commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The handshake must finish by then.
    Connect,
    /// Dial the next server then.
    Reconnect,
    /// Send a keep-alive PING (or declare the connection stale) then.
    Ping,
    /// Give up waiting for a drain then.
    Drain,
}

const ALL: [Timer; 4] = [Timer::Connect, Timer::Reconnect, Timer::Ping, Timer::Drain];

#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; 4],
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn clear_all(&mut self) {
        self.deadlines = [None; 4];
    }

    /// True (and the timer is cleared) when it was set to fire at or before `now`.
    pub(crate) fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        let slot = &mut self.deadlines[timer as usize];
        if slot.is_some_and(|d| d <= now) {
            *slot = None;
            return true;
        }
        false
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        ALL.iter().filter_map(|&t| self.deadlines[t as usize]).min()
    }
}

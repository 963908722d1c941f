//! The connection's one deadline table: its own timers, open flushes and requests, ordered by when they fall
//! due. `poll_timeout` is its first entry; `handle_timeout` takes what is due.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;

/// The longest wait the connection schedules; longer durations (`Duration::MAX` as "for ever") are cut to it
/// so that adding them to an `Instant` cannot overflow.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, saturating at a century.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(LONGEST)).unwrap_or(now)
}

/// The connection's own timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// What falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Due {
    /// One of the connection's timers.
    Timer(Timer),
    /// The flush with this id times out.
    Flush(u64),
    /// The request with this token times out.
    Request(u64),
}

impl Due {
    /// The order in which things due at once are handled: the connection's state first (connect, reconnect,
    /// keep-alive), then flushes (oldest first) and requests (earliest deadline first), a drain's end last so
    /// that what timed out before it says so rather than "closed".
    fn rank(self) -> (u8, u64) {
        match self {
            Due::Timer(Timer::Connect) => (0, 0),
            Due::Timer(Timer::Reconnect) => (1, 0),
            Due::Timer(Timer::Ping) => (2, 0),
            Due::Flush(id) => (3, id),
            Due::Request(_) => (4, 0),
            Due::Timer(Timer::Drain) => (5, 0),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Deadlines {
    table: BTreeSet<(Instant, Due)>,
    /// Where each timer sits in the table, to move or clear it.
    timers: [Option<Instant>; 4],
}

impl Deadlines {
    /// Sets (or moves) a timer.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.clear(timer);
        self.timers[timer as usize] = Some(at);
        self.table.insert((at, Due::Timer(timer)));
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        if let Some(at) = self.timers[timer as usize].take() {
            self.table.remove(&(at, Due::Timer(timer)));
        }
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.timers[timer as usize]
    }

    /// Adds a flush's or a request's deadline.
    pub(crate) fn insert(&mut self, at: Instant, due: Due) {
        self.table.insert((at, due));
    }

    /// Removes a flush's or a request's deadline (it ended some other way).
    pub(crate) fn remove(&mut self, at: Instant, due: Due) {
        self.table.remove(&(at, due));
    }

    /// Forgets everything (the connection closed).
    pub(crate) fn clear_all(&mut self) {
        self.table.clear();
        self.timers = [None; 4];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.table.first().map(|&(at, _)| at)
    }

    /// Takes everything due at `now` (anything set while handling them waits for the next call), in the order
    /// to handle it (see [`Due::rank`]).
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(&(at, what)) = self.table.first() {
            if at > now {
                break;
            }
            self.table.pop_first();
            if let Due::Timer(t) = what {
                self.timers[t as usize] = None;
            }
            due.push(what);
        }
        // Stable: requests keep their deadline order.
        due.sort_by_key(|d| d.rank());
        due
    }
}

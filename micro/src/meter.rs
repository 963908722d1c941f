//! Counting requests without a lock: an endpoint's [`Meter`] (its statistics and in-flight count) and a
//! service's [`InFlight`] (its requests in flight, and the wait for none that `stop` does). The core keeps a
//! meter per endpoint for INFO and STATS; a running service holds the same meters and counts each request on
//! them, so that a request never takes the lock around the whole core.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::core::{Busy, Clock, EndpointId, Outcome, Ticket, BUSY_CODE, BUSY_DESCRIPTION};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain counters stay usable after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks a waiter in [`InFlight::count`]: the bit above any count.
const WAITING: usize = 1 << (usize::BITS - 1);

/// Requests in flight on a whole service, with a wait for none (what `stop` waits for). Counting takes no lock:
/// the lock and condition variable are used only by a waiter and by the request that ends the wait.
#[derive(Default)]
pub(crate) struct InFlight {
    /// Requests in flight, plus [`WAITING`] once someone waits.
    count: AtomicUsize,
    lock: Mutex<()>,
    idle: Condvar,
}

impl InFlight {
    fn enter(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn leave(&self) {
        // The waiter sets WAITING and then reads the count, both on this one atomic, whose changes are in one
        // order: either it reads the count after this decrement (zero: it does not wait), or this decrement
        // sees WAITING and notifies. The notification takes the lock that the waiter holds from its reading
        // until it sleeps, so it cannot fall in between and be lost.
        if self.count.fetch_sub(1, Ordering::Release) == WAITING | 1 {
            let _guard = lock(&self.lock);
            self.idle.notify_all();
        }
    }

    /// Waits until no request is in flight, or until `deadline` (`None`: for ever); true if none is.
    pub(crate) fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        let mut guard = lock(&self.lock);
        // Left set afterwards: past a stop, the last request out of a burst just takes an idle lock.
        self.count.fetch_or(WAITING, Ordering::AcqRel);
        loop {
            if self.count.load(Ordering::Acquire) & !WAITING == 0 {
                return true;
            }
            guard = match deadline {
                None => self.idle.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) else {
                        return false;
                    };
                    self.idle.wait_timeout(guard, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

/// An endpoint's statistics at one moment.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) num_requests: u64,
    pub(crate) num_errors: u64,
    pub(crate) last_error: String,
    pub(crate) processing_ns: u64,
}

/// One endpoint's in-flight count and statistics. Requests are counted with atomics, so a service's request
/// path takes no lock at all; only an error takes the small lock that keeps `num_errors` and `last_error`
/// together. Each field is exact; a STATS rendered while requests run may see one counter a request ahead of
/// another, as it could see a request counted on receipt but not yet timed.
pub(crate) struct Meter {
    endpoint: EndpointId,
    clock: Arc<dyn Clock>,
    service: Arc<InFlight>,
    max_in_flight: Option<usize>,
    /// Answers are counted and not sent (`EndpointConfig::no_reply`).
    no_reply: bool,
    /// Set when the core forgets the endpoint: requests still arriving are turned away, as for an unknown one.
    removed: AtomicBool,
    in_flight: AtomicUsize,
    // Relaxed is enough for the counters: nothing else is published through them. The one order that matters,
    // statistics before the reply that a requester then asks STATS about, goes through the client's locks and
    // the network.
    num_requests: AtomicU64,
    processing_ns: AtomicU64,
    /// Bumped by every reset: a request received before it and finished after is counted in the new window.
    generation: AtomicU64,
    /// `num_errors` and `last_error`.
    errors: Mutex<(u64, String)>,
}

impl Meter {
    pub(crate) fn new(
        endpoint: EndpointId,
        clock: Arc<dyn Clock>,
        service: Arc<InFlight>,
        max_in_flight: Option<usize>,
        no_reply: bool,
    ) -> Self {
        Self {
            endpoint,
            clock,
            service,
            max_in_flight,
            no_reply,
            removed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            num_requests: AtomicU64::new(0),
            processing_ns: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            errors: Mutex::new((0, String::new())),
        }
    }

    /// True when the endpoint's answers are not sent.
    pub(crate) fn no_reply(&self) -> bool {
        self.no_reply
    }

    /// Monotonic now, from the core's clock.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A request received at `received`: see [`ServiceCore::begin`](crate::ServiceCore::begin).
    pub(crate) fn begin(&self, received: Instant) -> Result<Ticket, Busy> {
        if self.removed.load(Ordering::Relaxed) {
            return Err(Busy);
        }
        self.num_requests.fetch_add(1, Ordering::Relaxed);
        match self.max_in_flight {
            None => {
                self.in_flight.fetch_add(1, Ordering::Relaxed);
            }
            Some(max) => {
                let taken =
                    self.in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1));
                if taken.is_err() {
                    self.error(format!("{BUSY_CODE}:{BUSY_DESCRIPTION}"));
                    return Err(Busy);
                }
            }
        }
        self.service.enter();
        Ok(Ticket { endpoint: self.endpoint, received, generation: self.generation.load(Ordering::Relaxed) })
    }

    /// A request ended: see [`ServiceCore::finish`](crate::ServiceCore::finish).
    pub(crate) fn finish(&self, ticket: Ticket, outcome: Outcome) {
        let elapsed = self.clock.now().saturating_duration_since(ticket.received);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if ticket.generation != self.generation.load(Ordering::Relaxed) {
            // Received before a reset: its time and outcome land in the new window, so the request does too
            // (else STATS could show processing time, or errors, with no request; found by the simulator).
            self.num_requests.fetch_add(1, Ordering::Relaxed);
        }
        // Wraps after 584 years of processing.
        self.processing_ns.fetch_add(elapsed.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
        let error = match outcome {
            Outcome::Replied => None,
            Outcome::Error { code, description } => Some(format!("{code}:{description}")),
            // Not answering is the handler's choice (ADR-32 and nats.go count no error for it).
            Outcome::NoResponse => None,
            Outcome::PublishFailed(why) => Some(format!("500:reply not sent: {why}")),
        };
        if let Some(error) = error {
            self.error(error);
        }
        // Last: once `stop` sees no request in flight, the statistics are complete.
        self.service.leave();
    }

    /// Counts an error that is not tied to one request.
    pub(crate) fn record_error(&self, code: u16, description: &str) {
        self.error(format!("{code}:{description}"));
    }

    fn error(&self, last_error: String) {
        let mut errors = lock(&self.errors);
        errors.0 += 1;
        errors.1 = last_error;
    }

    pub(crate) fn stats(&self) -> Stats {
        let (num_errors, last_error) = lock(&self.errors).clone();
        Stats {
            num_requests: self.num_requests.load(Ordering::Relaxed),
            num_errors,
            last_error,
            processing_ns: self.processing_ns.load(Ordering::Relaxed),
        }
    }

    /// Clears the statistics (requests in flight stay counted).
    pub(crate) fn reset(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.num_requests.store(0, Ordering::Relaxed);
        self.processing_ns.store(0, Ordering::Relaxed);
        *lock(&self.errors) = (0, String::new());
    }

    /// Requests in flight on the endpoint.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The core forgot the endpoint: requests still arriving are turned away as for an unknown endpoint.
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Relaxed);
    }
}

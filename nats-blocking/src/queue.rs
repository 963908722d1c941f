//! Hand-off points between the reader thread and the threads of users: a bounded message queue with slow
//! consumer accounting, and a one-shot slot.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use nats_proto::SubscriptionEnd;

use crate::message::Message;
use crate::options::PendingLimits;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`MessageQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Dropped for the pending limits; `first` when this starts a slow-consumer episode.
    Dropped {
        first: bool,
    },
    /// The queue had already ended.
    Ended,
}

/// Why a wait on a queue returned without a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Empty {
    TimedOut,
    Ended(SubscriptionEnd),
}

#[derive(Debug)]
struct State {
    msgs: VecDeque<Message>,
    bytes: usize,
    limits: PendingLimits,
    dropped: u64,
    slow: bool,
    ended: Option<SubscriptionEnd>,
    waiters: usize,
}

/// A bounded queue of messages for one subscription (or one request_many).
#[derive(Debug)]
pub(crate) struct MessageQueue {
    state: Mutex<State>,
    ready: Condvar,
}

impl MessageQueue {
    pub(crate) fn new(limits: PendingLimits) -> Self {
        let state = State { msgs: VecDeque::new(), bytes: 0, limits, dropped: 0, slow: false, ended: None, waiters: 0 };
        Self { state: Mutex::new(state), ready: Condvar::new() }
    }

    pub(crate) fn push(&self, msg: Message) -> Pushed {
        let mut s = lock(&self.state);
        if s.ended.is_some() {
            return Pushed::Ended;
        }
        let size = msg.size();
        if s.msgs.len() >= s.limits.messages || s.bytes + size > s.limits.bytes {
            s.dropped += 1;
            let first = !s.slow;
            s.slow = true;
            return Pushed::Dropped { first };
        }
        s.slow = false;
        s.bytes += size;
        s.msgs.push_back(msg);
        if s.waiters > 0 {
            self.ready.notify_one();
        }
        Pushed::Queued
    }

    /// No more messages will come; those queued can still be taken.
    pub(crate) fn end(&self, why: SubscriptionEnd) {
        let mut s = lock(&self.state);
        if s.ended.is_none() {
            s.ended = Some(why);
        }
        self.ready.notify_all();
    }

    /// Takes the next message, waiting until `deadline` (`None`: for ever).
    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<Message, Empty> {
        let mut s = lock(&self.state);
        loop {
            if let Some(msg) = s.msgs.pop_front() {
                s.bytes -= msg.size();
                return Ok(msg);
            }
            if let Some(why) = &s.ended {
                return Err(Empty::Ended(why.clone()));
            }
            s.waiters += 1;
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) else {
                        s.waiters -= 1;
                        return Err(Empty::TimedOut);
                    };
                    self.ready.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
            s.waiters -= 1;
        }
    }

    /// Messages dropped for the pending limits so far.
    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Messages and bytes waiting.
    pub(crate) fn pending(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.msgs.len(), s.bytes)
    }

    pub(crate) fn set_limits(&self, limits: PendingLimits) {
        lock(&self.state).limits = limits;
    }
}

/// A value set once by one thread and waited for by another.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    value: Mutex<Option<T>>,
    ready: Condvar,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Self { value: Mutex::new(None), ready: Condvar::new() }
    }

    /// Sets the value unless one is set already.
    pub(crate) fn set(&self, value: T) {
        let mut v = lock(&self.value);
        if v.is_none() {
            *v = Some(value);
            self.ready.notify_all();
        }
    }

    /// Takes the value, waiting until `deadline` (`None`: for ever); `None` when it did not come in time.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Option<T> {
        let mut v = lock(&self.value);
        loop {
            if let Some(value) = v.take() {
                return Some(value);
            }
            v = match deadline {
                None => self.ready.wait(v).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero())?;
                    self.ready.wait_timeout(v, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

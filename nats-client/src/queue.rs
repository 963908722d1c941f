//! Hand-off points between a driver and the users of a client: a bounded message queue with slow-consumer
//! accounting, and a one-shot slot. Both can be waited on by a thread (blocking, with a deadline) or polled
//! by a task (with a waker).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use nats_proto::SubscriptionEnd;

use crate::message::Message;
use crate::options::PendingLimits;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`MessageQueue::push`] did.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Dropped for the pending limits; `first` when this starts a slow-consumer episode.
    Dropped {
        /// This drop starts an episode.
        first: bool,
    },
    /// The queue had already ended.
    Ended,
}

/// Why a wait on a queue returned without a message.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Empty {
    /// The deadline passed.
    TimedOut,
    /// The queue ended, and why.
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
    /// Threads waiting on the condition variable.
    waiters: usize,
    /// A task waiting.
    waker: Option<Waker>,
}

/// A bounded queue of messages for one subscription (or one `request_many`).
#[derive(Debug)]
pub struct MessageQueue {
    state: Mutex<State>,
    ready: Condvar,
}

impl MessageQueue {
    /// An empty queue with these limits.
    pub fn new(limits: PendingLimits) -> Self {
        let state = State {
            msgs: VecDeque::new(),
            bytes: 0,
            limits,
            dropped: 0,
            slow: false,
            ended: None,
            waiters: 0,
            waker: None,
        };
        Self { state: Mutex::new(state), ready: Condvar::new() }
    }

    fn notify(&self, s: &mut State) {
        if s.waiters > 0 {
            self.ready.notify_all();
        }
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// Adds a message, or drops it when the limits are reached, and wakes a waiting consumer.
    pub fn push(&self, msg: Message) -> Pushed {
        let pushed = self.push_quiet(msg);
        if pushed == Pushed::Queued {
            self.wake();
        }
        pushed
    }

    /// Wakes a waiting consumer (after [`push_quiet`](Self::push_quiet)).
    pub fn wake(&self) {
        let mut s = lock(&self.state);
        self.notify(&mut s);
    }

    /// Like [`push`](Self::push) without waking the consumer: a driver delivering a batch of messages wakes
    /// each queue once, with [`wake`](Self::wake), after the batch (one wake-up instead of one per message).
    pub fn push_quiet(&self, msg: Message) -> Pushed {
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
        Pushed::Queued
    }

    /// No more messages will come; those queued can still be taken.
    pub fn end(&self, why: SubscriptionEnd) {
        let mut s = lock(&self.state);
        if s.ended.is_none() {
            s.ended = Some(why);
        }
        self.notify(&mut s);
    }

    fn take(s: &mut State) -> Option<Result<Message, Empty>> {
        if let Some(msg) = s.msgs.pop_front() {
            s.bytes -= msg.size();
            return Some(Ok(msg));
        }
        s.ended.as_ref().map(|why| Err(Empty::Ended(why.clone())))
    }

    /// Takes the next message if one is waiting (or the end), without reading the clock.
    pub fn try_pop(&self) -> Option<Result<Message, Empty>> {
        Self::take(&mut lock(&self.state))
    }

    /// [`pop`](Self::pop) with a timeout; the clock is read only when there is nothing to take at once.
    pub fn pop_within(&self, timeout: std::time::Duration) -> Result<Message, Empty> {
        match self.try_pop() {
            Some(result) => result,
            None => self.pop(crate::shared::deadline_in(timeout)),
        }
    }

    /// Takes the next message, waiting until `deadline` (`None`: for ever).
    pub fn pop(&self, deadline: Option<Instant>) -> Result<Message, Empty> {
        let mut s = lock(&self.state);
        loop {
            if let Some(result) = Self::take(&mut s) {
                return result;
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

    /// Takes the next message, or registers the task to be woken when there is one (or the queue ends).
    pub fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Result<Message, SubscriptionEnd>> {
        let mut s = lock(&self.state);
        match Self::take(&mut s) {
            Some(Ok(msg)) => Poll::Ready(Ok(msg)),
            Some(Err(Empty::Ended(why))) => Poll::Ready(Err(why)),
            Some(Err(Empty::TimedOut)) | None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Messages dropped for the pending limits so far.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Messages and bytes waiting.
    pub fn pending(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.msgs.len(), s.bytes)
    }

    /// Changes the limits.
    pub fn set_limits(&self, limits: PendingLimits) {
        lock(&self.state).limits = limits;
    }
}

#[derive(Debug)]
struct SlotState<T> {
    value: Option<T>,
    wakers: Vec<Waker>,
}

/// A value set once by one side and waited for by the other.
#[derive(Debug)]
pub struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self { state: Mutex::new(SlotState { value: None, wakers: Vec::new() }), ready: Condvar::new() }
    }

    /// Sets the value unless one is set already.
    pub fn set(&self, value: T) {
        let mut s = lock(&self.state);
        if s.value.is_none() {
            s.value = Some(value);
            self.ready.notify_all();
            for w in s.wakers.drain(..) {
                w.wake();
            }
        }
    }

    /// Takes the value, waiting until `deadline` (`None`: for ever); `None` when it did not come in time.
    pub fn wait(&self, deadline: Option<Instant>) -> Option<T> {
        self.wait_with(deadline, Option::take)
    }

    fn wait_with(&self, deadline: Option<Instant>, get: impl Fn(&mut Option<T>) -> Option<T>) -> Option<T> {
        let mut s = lock(&self.state);
        loop {
            if let Some(value) = get(&mut s.value) {
                return Some(value);
            }
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero())?;
                    self.ready.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    /// Takes the value, or registers the task to be woken when it is set.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<T> {
        self.poll_with(cx, Option::take)
    }

    fn poll_with(&self, cx: &mut Context<'_>, get: impl Fn(&mut Option<T>) -> Option<T>) -> Poll<T> {
        let mut s = lock(&self.state);
        match get(&mut s.value) {
            Some(v) => Poll::Ready(v),
            None => {
                if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    s.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// True once a value was set (and not yet taken).
    pub fn is_set(&self) -> bool {
        lock(&self.state).value.is_some()
    }
}

impl<T: Clone> Slot<T> {
    /// Like [`wait`](Self::wait) but leaves the value for other waiters.
    pub fn wait_cloned(&self, deadline: Option<Instant>) -> Option<T> {
        self.wait_with(deadline, |v| v.clone())
    }

    /// Like [`poll_take`](Self::poll_take) but leaves the value for other waiters.
    pub fn poll_cloned(&self, cx: &mut Context<'_>) -> Poll<T> {
        self.poll_with(cx, |v| v.clone())
    }
}

//! Hand-off points between a driver and the users of a client: a bounded message queue with slow-consumer
//! accounting, the [`Receiver`] that takes from it, and a one-shot slot. Each can be waited on by a thread
//! (blocking, with a deadline) or polled by a task (with a waker).
//!
//! Both ends work in batches. The driver gathers a run of messages outside the queue's lock (a [`Batch`]),
//! appends it in one step (a swap when the queue is empty, as it is when the consumer keeps up) and wakes the
//! consumer once per read; the consumer takes everything waiting in one swap and then reads its own copy
//! without locking. Per message, neither side touches the lock, and neither holds it for longer than a swap
//! (or a copy of the run), so a consumer coming back for more never waits behind the decoding of a read.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use nats_proto::SubscriptionEnd;

use crate::message::Message;
use crate::options::PendingLimits;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`MessageQueue::append`] (or [`MessageQueue::push`]) did with the messages it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Messages queued.
    pub queued: usize,
    /// Messages dropped for the pending limits.
    pub dropped: usize,
    /// A drop started a new slow-consumer episode (the queue had kept up until then).
    pub episode: bool,
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
    /// Bytes (headers plus payload) of `msgs`.
    bytes: usize,
    /// Messages and bytes the consumer took in its last batch: still pending until it comes back for more.
    in_hand: (usize, usize),
    limits: PendingLimits,
    dropped: u64,
    slow: bool,
    ended: Option<SubscriptionEnd>,
    /// Threads waiting on the condition variable.
    waiters: usize,
    /// A task waiting.
    waker: Option<Waker>,
}

impl State {
    /// Everything waiting goes to `into` (empty: the consumer read its last batch), and its bytes are
    /// returned; or the end.
    fn take_all(&mut self, into: &mut VecDeque<Message>) -> Option<Result<usize, SubscriptionEnd>> {
        self.in_hand = (0, 0);
        if !self.msgs.is_empty() {
            std::mem::swap(&mut self.msgs, into);
            self.in_hand = (into.len(), std::mem::take(&mut self.bytes));
            return Some(Ok(self.in_hand.1));
        }
        self.ended.clone().map(Err)
    }

    /// True when `n` more messages of `bytes` in all stay within the pending limits.
    fn fits(&self, n: usize, bytes: usize) -> bool {
        let (held, held_bytes) = (self.msgs.len() + self.in_hand.0, self.bytes + self.in_hand.1);
        held + n <= self.limits.messages && held_bytes + bytes <= self.limits.bytes
    }

    /// Queues `msg`, or drops it past the pending limits.
    fn admit(&mut self, msg: Message, pushed: &mut Pushed) {
        if !self.fits(1, msg.size()) {
            self.dropped += 1;
            pushed.dropped += 1;
            pushed.episode |= !self.slow;
            self.slow = true;
            return;
        }
        self.slow = false;
        self.bytes += msg.size();
        self.msgs.push_back(msg);
        pushed.queued += 1;
    }
}

/// Messages gathered for one queue without its lock, to be appended in one step by [`MessageQueue::append`].
/// Its memory is kept and passed around (an append into an empty queue swaps the two), so a driver that
/// reuses one batch allocates nothing per message once the queues have grown to their usual runs.
#[derive(Debug, Default)]
pub struct Batch {
    msgs: VecDeque<Message>,
    /// Bytes (headers plus payload) of `msgs`.
    bytes: usize,
}

impl Batch {
    /// Adds `msg` at the end.
    pub fn push(&mut self, msg: Message) {
        self.bytes += msg.size();
        self.msgs.push_back(msg);
    }

    /// Messages gathered.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// True when nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
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
            in_hand: (0, 0),
            limits,
            dropped: 0,
            slow: false,
            ended: None,
            waiters: 0,
            waker: None,
        };
        Self { state: Mutex::new(state), ready: Condvar::new() }
    }

    /// Wakes the consumer, once the lock is released: a thread woken while it is still held would at once
    /// block on it again (one more sleep and wake-up per delivery).
    fn notify(&self, mut s: MutexGuard<'_, State>) {
        let (waiters, waker) = (s.waiters > 0, s.waker.take());
        drop(s);
        if waiters {
            self.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Appends every message of `batch` in order, leaving it empty; those past the pending limits are dropped
    /// and counted, and after the end every one is discarded. The consumer is not woken (see
    /// [`wake`](Self::wake)).
    pub fn append(&self, batch: &mut Batch) -> Pushed {
        let mut pushed = Pushed::default();
        let mut s = lock(&self.state);
        if s.ended.is_some() {
            drop(s);
            batch.msgs.clear();
        } else if !batch.is_empty() && s.fits(batch.len(), batch.bytes) {
            // The usual case: all of it, in one step.
            pushed.queued = batch.len();
            s.slow = false;
            s.bytes += batch.bytes;
            if s.msgs.is_empty() {
                std::mem::swap(&mut s.msgs, &mut batch.msgs);
            } else {
                s.msgs.append(&mut batch.msgs);
            }
        } else {
            for msg in batch.msgs.drain(..) {
                s.admit(msg, &mut pushed);
            }
        }
        batch.bytes = 0;
        pushed
    }

    /// Adds one message and wakes the consumer (for replies of `request_many`).
    pub fn push(&self, msg: Message) -> Pushed {
        let mut s = lock(&self.state);
        let mut pushed = Pushed::default();
        if s.ended.is_none() {
            s.admit(msg, &mut pushed);
            if pushed.queued > 0 {
                self.notify(s);
            }
        }
        pushed
    }

    /// Wakes a waiting consumer.
    pub fn wake(&self) {
        self.notify(lock(&self.state));
    }

    /// No more messages will come; those queued can still be taken.
    pub fn end(&self, why: SubscriptionEnd) {
        let mut s = lock(&self.state);
        if s.ended.is_none() {
            s.ended = Some(why);
        }
        self.notify(s);
    }

    /// Messages dropped for the pending limits so far.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Changes the limits.
    pub fn set_limits(&self, limits: PendingLimits) {
        lock(&self.state).limits = limits;
    }

    /// Takes everything waiting into the empty `into`, waiting until `deadline` (`None`: for ever).
    fn take_all(&self, into: &mut VecDeque<Message>, deadline: Option<Instant>) -> Result<usize, Empty> {
        let mut s = lock(&self.state);
        loop {
            if let Some(taken) = s.take_all(into) {
                return taken.map_err(Empty::Ended);
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

    /// Takes everything waiting into the empty `into`, or registers the task to be woken.
    fn poll_take_all(
        &self,
        cx: &mut Context<'_>,
        into: &mut VecDeque<Message>,
    ) -> Poll<Result<usize, SubscriptionEnd>> {
        let mut s = lock(&self.state);
        match s.take_all(into) {
            Some(taken) => Poll::Ready(taken),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Takes everything waiting into the empty `into`, without waiting.
    fn try_take_all(&self, into: &mut VecDeque<Message>) -> Option<Result<usize, SubscriptionEnd>> {
        lock(&self.state).take_all(into)
    }

    /// Messages and bytes waiting in the queue itself (not counting a batch a receiver holds).
    fn queued(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.msgs.len(), s.bytes)
    }
}

/// Entries a drained [`Receiver`] batch keeps: more than a full 64 KiB read of the smallest messages.
const KEEP: usize = 8192;

/// The consuming end of a [`MessageQueue`]: takes everything waiting in one swap, then hands the messages out
/// one by one without locking. Both clients' subscriptions (and `request_many` replies) read through one.
#[derive(Debug)]
pub struct Receiver {
    queue: Arc<MessageQueue>,
    batch: VecDeque<Message>,
    /// Bytes of the messages still in `batch`.
    batch_bytes: usize,
}

impl Receiver {
    /// The receiver of `queue`.
    pub fn new(queue: Arc<MessageQueue>) -> Self {
        Self { queue, batch: VecDeque::new(), batch_bytes: 0 }
    }

    /// The queue it reads.
    pub fn queue(&self) -> &Arc<MessageQueue> {
        &self.queue
    }

    fn next_in_batch(&mut self) -> Option<Message> {
        let Some(msg) = self.batch.pop_front() else {
            // Drained: what goes back to the queue in the next swap is a deque of a read's size, not of the
            // largest backlog ever seen (which every deque passed around would otherwise keep for good).
            if self.batch.capacity() > KEEP {
                self.batch.shrink_to(KEEP);
            }
            return None;
        };
        self.batch_bytes -= msg.size();
        Some(msg)
    }

    /// The next message, waiting until `deadline` (`None`: for ever). Messages queued before the end are
    /// still delivered; after them, `Empty::Ended`.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Message, Empty> {
        if let Some(msg) = self.next_in_batch() {
            return Ok(msg);
        }
        if crate::message::holds_replies() {
            // About to wait with replies held on this thread (`batch_replies`): unless a message is here
            // already, they leave first; never under the queue's lock (the router takes it under the client's).
            if let Some(taken) = self.try_next() {
                return taken;
            }
            crate::message::send_held_replies();
        }
        self.batch_bytes = self.queue.take_all(&mut self.batch, deadline)?;
        self.next_in_batch().ok_or(Empty::TimedOut)
    }

    /// [`next`](Self::next) with a timeout; the clock is read only when nothing can be taken at once.
    pub fn next_within(&mut self, timeout: std::time::Duration) -> Result<Message, Empty> {
        match self.try_next() {
            Some(result) => result,
            None => self.next(crate::deadline_in(timeout)),
        }
    }

    /// The next message if one is waiting (or the end), without waiting or reading the clock.
    pub fn try_next(&mut self) -> Option<Result<Message, Empty>> {
        if let Some(msg) = self.next_in_batch() {
            return Some(Ok(msg));
        }
        match self.queue.try_take_all(&mut self.batch)? {
            Ok(bytes) => {
                self.batch_bytes = bytes;
                self.next_in_batch().map(Ok)
            }
            Err(why) => Some(Err(Empty::Ended(why))),
        }
    }

    /// The next message, or registers the task to be woken when there is one (or the queue ends).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, SubscriptionEnd>> {
        if let Some(msg) = self.next_in_batch() {
            return Poll::Ready(Ok(msg));
        }
        match self.queue.poll_take_all(cx, &mut self.batch) {
            Poll::Ready(Ok(bytes)) => {
                self.batch_bytes = bytes;
                match self.next_in_batch() {
                    Some(msg) => Poll::Ready(Ok(msg)),
                    None => Poll::Pending,
                }
            }
            Poll::Ready(Err(why)) => Poll::Ready(Err(why)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Messages and bytes received but not yet taken.
    pub fn pending(&self) -> (usize, usize) {
        let (n, bytes) = self.queue.queued();
        (n + self.batch.len(), bytes + self.batch_bytes)
    }

    /// Messages dropped for the pending limits so far.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Changes the pending limits.
    pub fn set_limits(&self, limits: PendingLimits) {
        self.queue.set_limits(limits);
    }
}

#[derive(Debug)]
struct SlotState<T> {
    value: Option<T>,
    wakers: Vec<Waker>,
    /// Threads blocked in a wait: a set notifies the condition variable only when there are any (each notify
    /// is a system call, waited for or not).
    waiters: usize,
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
        Self { state: Mutex::new(SlotState { value: None, wakers: Vec::new(), waiters: 0 }), ready: Condvar::new() }
    }

    /// Sets the value unless one is set already.
    pub fn set(&self, value: T) {
        let mut s = lock(&self.state);
        if s.value.is_some() {
            return;
        }
        s.value = Some(value);
        let (waiters, wakers) = (s.waiters > 0, std::mem::take(&mut s.wakers));
        // Woken once the lock is free, so that a waiter does not wake only to wait for it.
        drop(s);
        if waiters {
            self.ready.notify_all();
        }
        for w in wakers {
            w.wake();
        }
    }

    /// Takes the value, waiting until `deadline` (`None`: for ever); `None` when it did not come in time.
    pub fn wait(&self, deadline: Option<Instant>) -> Option<T> {
        self.wait_with(deadline, Option::take)
    }

    fn wait_with(&self, deadline: Option<Instant>, get: impl Fn(&mut Option<T>) -> Option<T>) -> Option<T> {
        // Replies held on this thread (`batch_replies`) leave before it waits, and not under this lock (it is
        // set under the client's).
        crate::message::send_held_replies();
        let mut s = lock(&self.state);
        loop {
            if let Some(value) = get(&mut s.value) {
                return Some(value);
            }
            let left = match deadline {
                None => None,
                Some(d) => Some(d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero())?),
            };
            s.waiters += 1;
            s = match left {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(left) => self.ready.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0,
            };
            s.waiters -= 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &str) -> Message {
        Message::new(nats_proto::Msg::new("s", 1, None, None, payload), None)
    }

    fn batch(payloads: &[&str]) -> Batch {
        let mut b = Batch::default();
        payloads.iter().for_each(|p| b.push(msg(p)));
        b
    }

    fn drain(rx: &mut Receiver) -> Vec<String> {
        std::iter::from_fn(|| rx.try_next()?.ok()).map(|m| String::from_utf8_lossy(m.payload()).into()).collect()
    }

    #[test]
    fn a_burst_leaves_no_large_deque_behind() {
        let queue = Arc::new(MessageQueue::new(PendingLimits { messages: 1 << 20, bytes: 1 << 30 }));
        let mut rx = Receiver::new(queue.clone());
        let burst = 4 * KEEP;
        let mut b = Batch::default();
        (0..burst).for_each(|_| b.push(msg("x")));
        queue.append(&mut b);
        assert_eq!(drain(&mut rx).len(), burst);
        assert!(rx.batch.capacity() <= KEEP, "the drained batch keeps {} entries", rx.batch.capacity());
        // The next swap hands the queue that small deque; messages still flow.
        queue.append(&mut batch(&["a", "b"]));
        assert_eq!(drain(&mut rx), ["a", "b"]);
        assert!(lock(&queue.state).msgs.capacity() <= KEEP);
    }

    #[test]
    fn appends_keep_order_and_limits_and_count_one_episode() {
        let queue = Arc::new(MessageQueue::new(PendingLimits { messages: 4, bytes: 1 << 20 }));
        let mut rx = Receiver::new(queue.clone());
        // Into an empty queue (swapped in), then onto a non-empty one (appended).
        let mut b = batch(&["a", "b"]);
        assert_eq!(queue.append(&mut b), Pushed { queued: 2, dropped: 0, episode: false });
        assert!(b.is_empty() && b.bytes == 0);
        let mut b = batch(&["c"]);
        assert_eq!(queue.append(&mut b).queued, 1);
        assert_eq!(rx.pending(), (3, 3));
        // Past the limit: the front of the run goes in, the rest is dropped, one episode.
        let mut b = batch(&["d", "e", "f"]);
        assert_eq!(queue.append(&mut b), Pushed { queued: 1, dropped: 2, episode: true });
        let mut b = batch(&["g"]);
        assert_eq!(queue.append(&mut b), Pushed { queued: 0, dropped: 1, episode: false }, "the same episode");
        assert_eq!(drain(&mut rx), ["a", "b", "c", "d"]);
        assert_eq!(queue.dropped(), 3);
        // Taken: room again, and a new drop would be a new episode.
        let mut b = batch(&["h"]);
        assert_eq!(queue.append(&mut b).queued, 1);
        queue.end(SubscriptionEnd::Unsubscribed);
        let mut b = batch(&["i"]);
        assert_eq!(queue.append(&mut b), Pushed::default(), "after the end, nothing is queued");
        assert!(b.is_empty());
        assert_eq!(drain(&mut rx), ["h"]);
        assert!(matches!(rx.try_next(), Some(Err(Empty::Ended(_)))));
    }

    #[test]
    fn byte_limits_apply_to_a_whole_run() {
        let queue = Arc::new(MessageQueue::new(PendingLimits { messages: 100, bytes: 5 }));
        let mut rx = Receiver::new(queue.clone());
        let mut b = batch(&["ab", "cd", "ef"]);
        assert_eq!(queue.append(&mut b), Pushed { queued: 2, dropped: 1, episode: true });
        assert_eq!(drain(&mut rx), ["ab", "cd"]);
    }
}

//! The seam between JetStream and an async client: request/reply, publish, a poll-based subscription, and a
//! timer. `nats-tokio` implements the client side (feature `async`); everything JetStream does on top is in
//! [`crate::asynch`].
//!
//! # Timers
//!
//! Pull consumers wait "for the next message or a deadline" (fetch expiry, missed heartbeats, a consumer
//! create's backoff), so the binding needs a timer. `nats-tokio` runs on tokio or smol and keeps its own timer
//! private, and this crate does not depend on either runtime. So the timer is a small trait, [`Timer`], and the
//! default, [`ThreadTimer`], needs no runtime at all: one shared background thread keeps every deadline and
//! wakes the task whose deadline passed. It works the same on tokio, smol or any executor. A program that
//! would rather use its runtime's timer implements [`Timer`] for it (a few lines, see the trait) and picks it
//! with [`AsyncContext::with_timer`](crate::asynch::AsyncContext::with_timer).

// The timer reads the clock: it is a driver piece, like the bindings.
#![allow(clippy::disallowed_methods)]

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_client::Message;
use nats_proto::Headers;

/// An async client, as JetStream uses it. Its futures are `Send`, so JetStream futures are too.
pub trait AsyncTransport: Clone + Send + Sync + 'static {
    /// A subscription of this client.
    type Subscription: AsyncSubscription;
    /// Sends a request and waits at most `timeout` for its reply.
    fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, nats_client::Error>> + Send;
    /// Publishes without waiting for anything (but the client's back-pressure).
    fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Bytes,
    ) -> impl Future<Output = Result<(), nats_client::Error>> + Send;
    /// Subscribes.
    fn subscribe(&self, subject: &str) -> impl Future<Output = Result<Self::Subscription, nats_client::Error>> + Send;
    /// A fresh unique inbox subject.
    fn new_inbox(&self) -> String;
    /// The client's connection events.
    type Events: crate::transport::ConnectionEvents;
    /// A fresh receiver of the client's connection events (disconnects and reconnects matter here).
    fn events(&self) -> Self::Events;
    /// The reply of a request sent by [`request_later`](Self::request_later).
    type Pending: Future<Output = Result<Message, nats_client::Error>> + Send + Unpin + fmt::Debug + 'static;
    /// Sends a request now and returns its reply as a future to await later.
    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Self::Pending, nats_client::Error>;
}

/// An async subscription, polled.
pub trait AsyncSubscription: Send + Unpin + fmt::Debug + 'static {
    /// The next message; `Ready(Err(..))` once the subscription has ended (`Closed`, or `Permission` when the
    /// server refused it).
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, nats_client::Error>>;

    /// The next message, waiting until `deadline` on `timer`: `Err(Timeout)` when none came, another error
    /// when the subscription ended. A message already waiting is returned even if the deadline has passed.
    fn next_until<'a>(&'a mut self, timer: &'a mut dyn Timer, deadline: Instant) -> NextUntil<'a, Self>
    where
        Self: Sized,
    {
        timer.reset(deadline);
        NextUntil { sub: self, timer }
    }

    /// The next message, waiting at most `timeout` on `timer` (see [`next_until`](Self::next_until)).
    fn next_timeout<'a>(&'a mut self, timer: &'a mut dyn Timer, timeout: Duration) -> NextUntil<'a, Self>
    where
        Self: Sized,
    {
        self.next_until(timer, deadline_after(Instant::now(), timeout))
    }
}

/// The future of [`AsyncSubscription::next_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct NextUntil<'a, S> {
    sub: &'a mut S,
    timer: &'a mut dyn Timer,
}

impl<S: AsyncSubscription> Future for NextUntil<'_, S> {
    type Output = Result<Message, nats_client::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(result) = this.sub.poll_message(cx) {
            return Poll::Ready(result);
        }
        this.timer.poll_fired(cx).map(|()| Err(nats_client::Error::Timeout))
    }
}

/// `now + wait`, or an hour from now when that does not fit an `Instant`.
pub(crate) fn deadline_after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait).unwrap_or_else(|| now + Duration::from_secs(3600))
}

/// A timer that can be moved to a new deadline: what the binding waits on besides subscriptions.
///
/// For a runtime's own timer, wrap it; with tokio, for instance:
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use std::time::Instant;
///
/// use nats_jetstream::asynch::AsyncContext;
///
/// struct TokioTimer(Pin<Box<tokio::time::Sleep>>);
///
/// impl nats_jetstream::async_transport::Timer for TokioTimer {
///     fn at(deadline: Instant) -> Self {
///         TokioTimer(Box::pin(tokio::time::sleep_until(deadline.into())))
///     }
///     fn reset(&mut self, deadline: Instant) {
///         self.0.as_mut().reset(deadline.into());
///     }
///     fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
///         self.0.as_mut().poll(cx)
///     }
/// }
///
/// fn on_tokio_timers(js: AsyncContext<nats_tokio::Client>) -> AsyncContext<nats_tokio::Client> {
///     js.with_timer::<TokioTimer>()
/// }
/// ```
pub trait Timer: Send + Unpin + 'static {
    /// A timer firing at `deadline`.
    fn at(deadline: Instant) -> Self
    where
        Self: Sized;
    /// Moves the deadline (earlier or later); a fired timer fires again at the new one.
    fn reset(&mut self, deadline: Instant);
    /// `Ready` once the deadline has passed; otherwise arranges for `cx` to be woken when it does.
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl fmt::Debug for dyn Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Timer")
    }
}

/// A boxed timer of type `T` firing at `deadline`: what [`AsyncContext`](crate::asynch::AsyncContext) keeps
/// to make timers.
pub fn boxed_timer<T: Timer>(deadline: Instant) -> Box<dyn Timer> {
    Box::new(T::at(deadline))
}

/// Waits on `timer` until `deadline`.
pub(crate) async fn sleep_until(timer: &mut dyn Timer, deadline: Instant) {
    timer.reset(deadline);
    std::future::poll_fn(|cx| timer.poll_fired(cx)).await;
}

// ---- the runtime-free timer ----

/// A timer needing no runtime: the deadline is kept by one background thread shared by every `ThreadTimer`
/// of the process (started on first use), which wakes the waiting task when it passes. Moving a deadline
/// later costs no trip to that thread.
pub struct ThreadTimer {
    deadline: Instant,
    slot: Arc<Slot>,
}

impl fmt::Debug for ThreadTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadTimer").field("deadline", &self.deadline).finish()
    }
}

/// What a timer shares with the timer thread.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// The deadline the timer was last polled with.
    deadline: Option<Instant>,
    waker: Option<Waker>,
    /// The deadline of this slot's live entry in the thread's queue, if any. Other entries of the slot are
    /// stale and skipped.
    scheduled: Option<Instant>,
}

/// An entry of the thread's queue.
struct Entry {
    at: Instant,
    slot: Weak<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

/// The timer thread's queue, earliest first.
struct Wheel {
    queue: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared timer thread, started on first use; `None` if the thread could not be spawned.
fn wheel() -> Option<&'static Wheel> {
    static WHEEL: OnceLock<Option<&'static Wheel>> = OnceLock::new();
    *WHEEL.get_or_init(|| {
        let wheel: &'static Wheel =
            Box::leak(Box::new(Wheel { queue: Mutex::new(BinaryHeap::new()), changed: Condvar::new() }));
        std::thread::Builder::new().name("nats-jetstream-timer".into()).spawn(move || run(wheel)).ok().map(|_| wheel)
    })
}

fn run(wheel: &'static Wheel) {
    let mut due = Vec::new();
    loop {
        {
            let mut queue = lock(&wheel.queue);
            loop {
                let now = Instant::now();
                match queue.peek() {
                    Some(Reverse(entry)) if entry.at <= now => {
                        if let Some(Reverse(entry)) = queue.pop() {
                            due.push(entry);
                        }
                    }
                    _ if !due.is_empty() => break,
                    Some(Reverse(entry)) => {
                        let wait = entry.at - now;
                        queue = wheel.changed.wait_timeout(queue, wait).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    None => queue = wheel.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                }
            }
        }
        // Outside the queue's lock: a slot is never locked while the queue is, so there is no lock order.
        let now = Instant::now();
        for entry in due.drain(..) {
            let Some(slot) = entry.slot.upgrade() else { continue };
            let mut state = lock(&slot.state);
            if state.scheduled != Some(entry.at) {
                continue; // superseded by an earlier entry
            }
            state.scheduled = None;
            match state.deadline {
                // Moved later since: wait on.
                Some(deadline) if deadline > now => {
                    state.scheduled = Some(deadline);
                    drop(state);
                    lock(&wheel.queue).push(Reverse(Entry { at: deadline, slot: entry.slot }));
                }
                _ => {
                    let waker = state.waker.take();
                    drop(state);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
        }
    }
}

impl Timer for ThreadTimer {
    fn at(deadline: Instant) -> Self {
        ThreadTimer { deadline, slot: Arc::default() }
    }

    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let Some(wheel) = wheel() else {
            // No timer thread (the OS refused it): poll again soon rather than never.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        let mut state = lock(&self.slot.state);
        state.deadline = Some(self.deadline);
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        // An entry at or before the deadline is enough: when it comes due, the thread waits on.
        let schedule = state.scheduled.is_none_or(|at| at > self.deadline);
        if schedule {
            state.scheduled = Some(self.deadline);
        }
        drop(state);
        if schedule {
            let mut queue = lock(&wheel.queue);
            let earliest = queue.peek().is_none_or(|Reverse(first)| self.deadline < first.at);
            queue.push(Reverse(Entry { at: self.deadline, slot: Arc::downgrade(&self.slot) }));
            drop(queue);
            if earliest {
                wheel.changed.notify_one();
            }
        }
        Poll::Pending
    }
}

mod tokio_impl {
    use futures_core::Stream;

    use super::*;

    impl AsyncTransport for nats_tokio::Client {
        type Subscription = nats_tokio::Subscriber;

        fn request(
            &self,
            subject: &str,
            headers: Option<&Headers>,
            payload: Bytes,
            timeout: Duration,
        ) -> impl Future<Output = Result<Message, nats_client::Error>> + Send {
            self.send_request(subject, headers, payload, timeout)
        }

        async fn publish(
            &self,
            subject: &str,
            reply: Option<&str>,
            headers: Option<&Headers>,
            payload: Bytes,
        ) -> Result<(), nats_client::Error> {
            match (reply, headers) {
                (None, None) => nats_tokio::Client::publish(self, subject, payload).await,
                (None, Some(h)) => self.publish_with_headers(subject, h, payload).await,
                (Some(r), None) => self.publish_with_reply(subject, r, payload).await,
                (Some(r), Some(h)) => self.publish_with_reply_and_headers(subject, r, h, payload).await,
            }
        }

        fn subscribe(
            &self,
            subject: &str,
        ) -> impl Future<Output = Result<Self::Subscription, nats_client::Error>> + Send {
            nats_tokio::Client::subscribe(self, subject)
        }

        fn new_inbox(&self) -> String {
            nats_tokio::Client::new_inbox(self)
        }

        type Pending = nats_tokio::PendingReply;
        type Events = nats_tokio::Events;

        fn events(&self) -> Self::Events {
            nats_tokio::Client::events(self)
        }

        fn request_later(
            &self,
            subject: &str,
            headers: Option<&Headers>,
            payload: Bytes,
            timeout: Duration,
        ) -> Result<Self::Pending, nats_client::Error> {
            self.send_request_later(subject, headers, payload, timeout)
        }
    }

    impl AsyncSubscription for nats_tokio::Subscriber {
        fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, nats_client::Error>> {
            Pin::new(&mut *self)
                .poll_next(cx)
                .map(|next| next.ok_or_else(|| self.end_reason().unwrap_or(nats_client::Error::Closed)))
        }
    }
}

#[cfg(feature = "async")]
impl crate::transport::ConnectionEvents for nats_tokio::Events {
    fn try_next_event(&mut self) -> Option<nats_client::Event> {
        self.try_next()
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<nats_client::Event>> {
        futures_core::Stream::poll_next(std::pin::Pin::new(self), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use std::task::Wake;

    struct Count(AtomicUsize, Mutex<Option<std::thread::Thread>>);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, AtomicOrdering::SeqCst);
            if let Some(t) = lock(&self.1).as_ref() {
                t.unpark();
            }
        }
    }

    /// Polls `timer` on this thread until it fires; returns how long it took and how often it was woken.
    fn wait(timer: &mut ThreadTimer) -> (Duration, usize) {
        let count = Arc::new(Count(AtomicUsize::new(0), Mutex::new(Some(std::thread::current()))));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        while timer.poll_fired(&mut cx).is_pending() {
            std::thread::park_timeout(Duration::from_secs(5));
            assert!(start.elapsed() < Duration::from_secs(5), "the timer never fired");
        }
        (start.elapsed(), count.0.load(AtomicOrdering::SeqCst))
    }

    #[test]
    fn fires_at_its_deadline_and_again_after_a_reset() {
        let mut timer = ThreadTimer::at(Instant::now() + Duration::from_millis(50));
        let (took, woken) = wait(&mut timer);
        assert!(took >= Duration::from_millis(45), "{took:?}");
        assert!(woken >= 1);
        // Fired stays fired until moved.
        assert!(timer.poll_fired(&mut Context::from_waker(Waker::noop())).is_ready());
        timer.reset(Instant::now() + Duration::from_millis(30));
        let (took, _) = wait(&mut timer);
        assert!(took >= Duration::from_millis(25), "{took:?}");
    }

    #[test]
    fn a_deadline_moved_later_waits_for_the_later_one() {
        let mut timer = ThreadTimer::at(Instant::now() + Duration::from_millis(20));
        assert!(timer.poll_fired(&mut Context::from_waker(Waker::noop())).is_pending());
        let later = Instant::now() + Duration::from_millis(120);
        timer.reset(later);
        let (_, woken) = wait(&mut timer);
        assert!(Instant::now() >= later);
        assert!(woken <= 3, "no wake storm: {woken}");
    }

    #[test]
    fn a_deadline_moved_earlier_fires_early() {
        let mut timer = ThreadTimer::at(Instant::now() + Duration::from_secs(60));
        assert!(timer.poll_fired(&mut Context::from_waker(Waker::noop())).is_pending());
        timer.reset(Instant::now() + Duration::from_millis(30));
        let (took, _) = wait(&mut timer);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn many_timers_fire_in_deadline_order() {
        let start = Instant::now();
        let mut timers: Vec<ThreadTimer> =
            (0..50).map(|i| ThreadTimer::at(start + Duration::from_millis(100 - 2 * i))).collect();
        for t in &mut timers {
            assert!(t.poll_fired(&mut Context::from_waker(Waker::noop())).is_pending());
        }
        for t in &mut timers {
            wait(t);
            assert!(Instant::now() >= t.deadline);
        }
    }
}

//! Inline subscriptions: a handler called on the connection's reader thread, right after the read that brought
//! its messages, with no thread of its own and no hand-off.
//!
//! A plain or callback subscription costs a wake-up of another thread per delivery (the reader hands the
//! messages over); an inline one costs nothing beyond the handler. The replies its handler makes during one
//! read's run leave together ([`nats_client::batch_replies`]), written by the reader thread when nobody else
//! is writing. The price is the handler's: while it runs, nothing is read. Hence the rules, in
//! [`Client::subscribe_inline`](crate::Client::subscribe_inline).
//!
//! The reader keeps the inline subscriptions it serves. Each has a waker on its queue, which marks it due when
//! messages arrive or the subscription ends; after each read (and before the next), the reader runs the due
//! ones. A call that would wait for the reader, made from a handler on the reader's own thread, fails at once
//! with [`Error::WouldDeadlock`] instead of waiting for ever.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use nats_client::queue::{Receiver, Slot};
use nats_client::Message;

use crate::driver::Shared;
use crate::Error;

/// The handler of an inline subscription.
type Handler = Box<dyn FnMut(Message) + Send>;

thread_local! {
    /// While the reader thread runs inline handlers: the address of its connection's shared state.
    static READING: Cell<usize> = const { Cell::new(0) };
}

fn address(shared: &Shared) -> usize {
    std::ptr::from_ref(shared) as usize
}

/// [`Error::WouldDeadlock`] when called from an inline handler on `shared`'s own reader thread: a wait for
/// that connection would never end, since only this thread reads it.
pub(crate) fn refuse_on_reader(shared: &Shared) -> Result<(), Error> {
    if READING.with(Cell::get) == address(shared) {
        Err(Error::WouldDeadlock)
    } else {
        Ok(())
    }
}

/// One inline subscription, shared by its handle and the reader.
pub(crate) struct Inline {
    sid: u64,
    /// Messages came, or the subscription ended, since the reader last ran it.
    due: AtomicBool,
    /// Unsubscribed by its handle: the handler is not called again, even for messages already received.
    cancelled: AtomicBool,
    /// Wakes the reader when it waits for a connection (with no socket to read, only a wake-up brings it back
    /// to an ended subscription).
    shared: std::sync::Weak<Shared>,
    /// The queue and the handler; `None` once the subscription has ended and the handler will not run again.
    serving: Mutex<Option<(Receiver, Handler)>>,
    /// Set once `serving` is `None`.
    ended: Slot<()>,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline").field("sid", &self.sid).finish()
    }
}

impl Wake for Inline {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.due.store(true, Ordering::Release);
        if let Some(shared) = self.shared.upgrade() {
            // No lock: this may run under the connection's. A reader in a read wakes with the read instead.
            crate::driver::wake_idle_reader(&shared);
        }
    }
}

impl Inline {
    fn serving(&self) -> MutexGuard<'_, Option<(Receiver, Handler)>> {
        self.serving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks it ended and tells the waiters. The handler is dropped after the lock is released: it may hold
    /// the last handle of the client, whose drop waits for the reader, which may be waiting for this lock.
    fn finish(&self, mut serving: MutexGuard<'_, Option<(Receiver, Handler)>>) {
        let gone = serving.take();
        drop(serving);
        self.ended.set(());
        drop(gone);
    }

    /// Hands every message waiting to the handler, on the reader thread. False once the subscription is over.
    fn run(self: &Arc<Self>, shared: &Shared) -> bool {
        let mut serving = self.serving();
        let Some((rx, handler)) = serving.as_mut() else { return false };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let over = loop {
            if self.cancelled.load(Ordering::Acquire) {
                break true;
            }
            match rx.poll_next(&mut cx) {
                Poll::Ready(Ok(msg)) => {
                    if catch_unwind(AssertUnwindSafe(|| handler(msg))).is_err() {
                        // A panic ends this subscription only; the reader goes on.
                        let _ = shared.unsubscribe(self.sid, None);
                        break true;
                    }
                }
                Poll::Ready(Err(_)) => break true,
                // The waker is registered: the next delivery or the end marks it due.
                Poll::Pending => break false,
            }
        };
        if over {
            self.finish(serving);
        }
        !over
    }
}

/// What the reader thread keeps of the inline subscriptions it serves.
#[derive(Default)]
pub(crate) struct Served {
    subs: Vec<Arc<Inline>>,
}

impl Served {
    /// Takes over the subscriptions made since the last look (under the connection's lock).
    pub(crate) fn adopt(&mut self, new: &mut Vec<Arc<Inline>>) {
        self.subs.append(new);
    }

    /// Whether a subscription waits to be run (checked under the connection's lock before the reader sleeps).
    pub(crate) fn any_due(&self) -> bool {
        self.subs.iter().any(|s| s.due.load(Ordering::Acquire))
    }

    /// Runs every due subscription's handler for its messages (outside the connection's lock), with their
    /// replies gathered into one write; forgets those that ended.
    pub(crate) fn run_due(&mut self, shared: &Shared) {
        if !self.any_due() {
            return;
        }
        READING.with(|r| r.set(address(shared)));
        nats_client::batch_replies(|| {
            self.subs.retain(|sub| !sub.due.swap(false, Ordering::AcqRel) || sub.run(shared));
        });
        READING.with(|r| r.set(0));
    }

    /// The reader is done (the connection closed): what was received is handled, and every subscription ends.
    pub(crate) fn close(&mut self, shared: &Shared) {
        self.run_due(shared);
        for sub in self.subs.drain(..) {
            sub.finish(sub.serving());
        }
    }
}

/// A subscription whose handler runs on the connection's reader thread: see
/// [`Client::subscribe_inline`](crate::Client::subscribe_inline).
///
/// Dropping it unsubscribes without waiting; [`unsubscribe`](Self::unsubscribe) waits for a handler call in
/// progress to return.
pub struct InlineSubscription {
    inline: Arc<Inline>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InlineSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineSubscription").field("sid", &self.inline.sid).finish()
    }
}

impl InlineSubscription {
    /// Subscribes, with `handler` given to the reader before the SUB is sent.
    pub(crate) fn subscribe(
        shared: &Arc<Shared>,
        subject: &str,
        queue: Option<&str>,
        handler: Handler,
    ) -> Result<Self, Error> {
        let mut made = None;
        shared.subscribe_then(subject, queue, |core, sid, messages| {
            let inline = Arc::new(Inline {
                sid,
                cancelled: AtomicBool::new(false),
                shared: Arc::downgrade(shared),
                // Run once when the reader takes it over: that registers the waker on its queue.
                due: AtomicBool::new(true),
                serving: Mutex::new(Some((Receiver::new(messages.clone()), handler))),
                ended: Slot::new(),
            });
            core.driver().new_inline.push(inline.clone());
            made = Some(inline);
        })?;
        let inline = made.expect("subscribe_then calls back on success");
        Ok(Self { inline, shared: shared.clone() })
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.inline.sid
    }

    /// Ends the subscription now and returns once its handler will not run again (a call in progress has
    /// returned). Messages received and not yet handled are dropped. From a handler on the reader thread it
    /// only ends the subscription (the handler is not called again after the call in progress).
    pub fn unsubscribe(self) -> Result<(), Error> {
        self.inline.cancelled.store(true, Ordering::Release);
        let result = self.shared.unsubscribe(self.inline.sid, None);
        if refuse_on_reader(&self.shared).is_ok() {
            // Waits for a handler call in progress (the reader holds this lock through it).
            self.inline.finish(self.inline.serving());
        }
        result
    }

    /// Drains the subscription: no new messages; those the server already sent are still handled. See
    /// [`wait_ended`](Self::wait_ended).
    pub fn drain(&self) -> Result<(), Error> {
        self.shared.drain_subscription(self.inline.sid)
    }

    /// True once the subscription has ended and its handler will not run again.
    pub fn is_ended(&self) -> bool {
        self.inline.ended.is_set()
    }

    /// Waits until the subscription has ended (unsubscribed, drained, the client closed, the handler panicked)
    /// and its handler will not run again, or until `deadline` (`None`: for ever); true if it ended.
    pub fn wait_ended(&self, deadline: Option<Instant>) -> bool {
        if refuse_on_reader(&self.shared).is_err() {
            // Only this thread could end it.
            return self.is_ended();
        }
        self.inline.ended.wait_cloned(deadline).is_some()
    }
}

impl Drop for InlineSubscription {
    fn drop(&mut self) {
        self.inline.cancelled.store(true, Ordering::Release);
        // Already ended (or the client is closed): nothing to undo.
        let _ = self.shared.unsubscribe(self.inline.sid, None);
    }
}

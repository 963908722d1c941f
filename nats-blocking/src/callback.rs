//! Callback subscriptions: a handler that receives a subscription's messages on a thread of its own.
//!
//! The handler's thread reads the subscription's queue as a [`Subscriber`] would and calls the handler for
//! each message, one at a time, in order. It ends when the subscription does (unsubscribed, its max reached,
//! drained, the client closed) once it has handled what was already received.
//!
//! A max (`unsubscribe_after`, or `Client::subscribe_with_max`) is kept twice: by the core, which ends the
//! subscription after `max` messages received (and tells the server, `UNSUB sid max`), and by the handler's
//! loop, which never calls the handler more than `max` times in all. The second makes the count exact even
//! when more than `max` messages were received before the max was set: they are received, but not handled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nats_client::Message;

use crate::driver::Shared;
use crate::subscriber::Subscriber;
use crate::Error;

/// A subscription whose messages a handler receives on a thread of its own, one at a time, in order.
///
/// Made by [`Client::subscribe_with`](crate::Client::subscribe_with) and its variants. Dropping it
/// unsubscribes; the handler still finishes the messages already received, on its own thread, which is not
/// waited for ([`unsubscribe`](Self::unsubscribe) and [`join`](Self::join) wait).
///
/// A handler that panics ends its own subscription only: its thread unwinds, which unsubscribes (as dropping
/// a [`Subscriber`] does), and the panic is returned by [`join`](Self::join). The connection's threads and the
/// other subscriptions go on.
pub struct CallbackSubscription {
    sid: u64,
    shared: Arc<Shared>,
    /// The most messages the handler may get in all; `u64::MAX`: no max.
    limit: Arc<AtomicU64>,
    /// `None` once joined (by `join` or `unsubscribe`).
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CallbackSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSubscription").field("sid", &self.sid).finish()
    }
}

impl CallbackSubscription {
    /// Runs `handler` for `sub`'s messages on a new thread, at most `max` of them in all if given.
    pub(crate) fn spawn(
        mut sub: Subscriber,
        max: Option<u64>,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<Self, Error> {
        let (sid, shared) = (sub.sid(), sub.shared().clone());
        let limit = Arc::new(AtomicU64::new(max.unwrap_or(u64::MAX)));
        if let Some(max) = max {
            // Before the handler starts: nothing is handled yet that the max would have to count.
            sub.unsubscribe_after(max)?;
        }
        let thread = std::thread::Builder::new().name(format!("nats-handler-{sid}")).spawn({
            let limit = limit.clone();
            move || handle_messages(sub, &limit, handler)
        })?;
        Ok(Self { sid, shared, limit, thread: Some(thread) })
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// Ends the subscription once the handler has been given `max` messages in total, counting those it was
    /// already given (as [`Subscriber::unsubscribe_after`] counts those already delivered). A max already
    /// reached ends it at once. The handler's thread ends with the subscription.
    ///
    /// Messages received before this call are handled first; if they are more than `max`, the handler gets
    /// only `max` of them in all. To set the max before any message can arrive, subscribe with
    /// [`Client::subscribe_with_max`](crate::Client::subscribe_with_max).
    pub fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
        // The handler's loop first, so that no message past the max is handled once the core stops counting.
        self.limit.store(max, Ordering::Release);
        self.shared.unsubscribe(self.sid, Some(max))
    }

    /// Ends the subscription and waits for the handler to finish the messages already received.
    pub fn unsubscribe(mut self) -> Result<(), Error> {
        let result = self.shared.unsubscribe(self.sid, None);
        // A panic of the handler is its own: the subscription is over either way.
        let _ = self.join_thread();
        result
    }

    /// Waits until the subscription has ended (its max reached, unsubscribed, drained, or the client closed)
    /// and the handler has run for every message received (up to the max), then returns. It does not end the
    /// subscription itself: with no max, and nobody ending it, it waits for ever.
    ///
    /// `Err` holds the handler's panic, if it panicked (the subscription ended then).
    pub fn join(mut self) -> std::thread::Result<()> {
        self.join_thread()
    }

    fn join_thread(&mut self) -> std::thread::Result<()> {
        match self.thread.take() {
            // From the handler itself (it may own its subscription): it cannot wait for its own end.
            // From an inline handler on the reader thread: the handler's thread may need the reader to finish.
            Some(thread)
                if thread.thread().id() != std::thread::current().id()
                    && crate::inline::refuse_on_reader(&self.shared).is_ok() =>
            {
                thread.join()
            }
            _ => Ok(()),
        }
    }
}

impl Drop for CallbackSubscription {
    /// Unsubscribes (as dropping a `Subscriber` does); the handler finishes the messages already received on its
    /// own thread, which is not waited for.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.shared.unsubscribe(self.sid, None);
        }
    }
}

/// The handler's thread: every message of `sub`, up to `limit` handled in all. `sub` is dropped at the end,
/// which unsubscribes if the subscription is still open (the loop stopped at the max before the core ended
/// it, or the handler panicked).
fn handle_messages(mut sub: Subscriber, limit: &AtomicU64, mut handler: impl FnMut(Message)) {
    let mut handled = 0u64;
    while handled < limit.load(Ordering::Acquire) {
        let Some(msg) = sub.next() else { break };
        // The max may have been lowered while this waited.
        if handled >= limit.load(Ordering::Acquire) {
            break;
        }
        handler(msg);
        handled += 1;
    }
}

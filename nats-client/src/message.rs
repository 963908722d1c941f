//! Received messages.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use nats_proto::{CommandError, Headers, Msg, Payload, SubjectError};

use crate::Error;

/// What a message needs of its client to answer: a publish that never blocks.
pub trait Publish: Send + Sync {
    /// Publishes `payload` (with `headers`) to `subject`.
    fn publish(&self, subject: &[u8], headers: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error>;

    /// As [`publish`](Self::publish), but the bytes may wait for a later write (the next one anybody makes on
    /// this client, or [`send_deferred`](Self::send_deferred)), unless enough wait to make a write worth it on
    /// their own. By default, the same as `publish`.
    fn publish_deferred(&self, subject: &[u8], headers: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        self.publish(subject, headers, payload)
    }

    /// Writes whatever waits to be written, now: from the calling thread or task when nobody else is writing.
    /// By default, nothing (nothing waits).
    fn send_deferred(&self) {}
}

thread_local! {
    /// The batch of replies on this thread ([`batch_replies`]): whether one is open, and the clients holding
    /// replies for it. The list is kept from batch to batch, so that a batch allocates nothing once warm.
    static BATCH: RefCell<(bool, Vec<Arc<dyn Publish>>)> = const { RefCell::new((false, Vec::new())) };
}

/// Runs `f`, holding the replies it makes on this thread ([`Message::respond`] and the like) until it returns
/// (or unwinds), then writing them together: the replies to a run of requests already received leave in one
/// write instead of one each. Replies made meanwhile by other threads, and every other publish, are not held;
/// a call inside another joins the outer one.
///
/// Held replies also leave when this thread is about to block on a client (waiting for a reply, a message or
/// a flush: [`send_held_replies`]), or with any write the client makes meanwhile. A reply still waits for
/// whatever else `f` does after it (computing, sleeping, waiting on something that is not a client): hold a
/// batch open only around work that takes microseconds (a service's quick handlers, while more requests are
/// already waiting).
pub fn batch_replies<R>(f: impl FnOnce() -> R) -> R {
    let opened = BATCH.try_with(|b| !std::mem::replace(&mut b.borrow_mut().0, true)).unwrap_or(false);
    if !opened {
        return f();
    }
    /// Ends the batch when `f` returns or unwinds.
    struct Close;
    impl Drop for Close {
        fn drop(&mut self) {
            // Closed before anything is sent: a reply made meanwhile (by a `send_deferred`) goes out at once,
            // and a panicking `send_deferred` leaves no batch open behind it.
            let held = BATCH.try_with(|b| {
                let (open, held) = &mut *b.borrow_mut();
                *open = false;
                std::mem::take(held)
            });
            if let Ok(held) = held {
                send_all(held);
            }
        }
    }
    let _close = Close;
    f()
}

/// Writes the replies held by the batch open on this thread, if any, now; the batch stays open. Called by the
/// clients before a thread blocks on them, so that a handler that answers and then waits (for a reply, a
/// message, a flush) does not wait on its own held answer.
pub fn send_held_replies() {
    let held = BATCH.try_with(|b| {
        let (open, held) = &mut *b.borrow_mut();
        if *open && !held.is_empty() {
            Some(std::mem::take(held))
        } else {
            None
        }
    });
    if let Ok(Some(held)) = held {
        send_all(held);
    }
}

/// Whether replies are held on this thread now.
pub(crate) fn holds_replies() -> bool {
    BATCH.try_with(|b| !b.borrow().1.is_empty()).unwrap_or(false)
}

/// Sends what each client holds, then gives the list's memory back to the thread's batch if it has none.
fn send_all(mut held: Vec<Arc<dyn Publish>>) {
    for client in held.drain(..) {
        client.send_deferred();
    }
    let _ = BATCH.try_with(|b| {
        let list = &mut b.borrow_mut().1;
        if list.is_empty() {
            *list = held;
        }
    });
}

/// Whether a reply to `client` is to be held for the batch open on this thread (registering the client with
/// it the first time).
fn held_for_batch(client: &Arc<dyn Publish>) -> bool {
    BATCH
        .try_with(|b| {
            let (open, held) = &mut *b.borrow_mut();
            if *open && !held.iter().any(|c| std::ptr::addr_eq(Arc::as_ptr(c), Arc::as_ptr(client))) {
                held.push(client.clone());
            }
            *open
        })
        .unwrap_or(false)
}

/// The header carrying an RPC correlation id (the name FastStream uses): a requester sets it, and micro's
/// endpoints echo it in their replies.
pub const CORRELATION_ID: &str = "correlation_id";

/// A message received on a subscription or as a reply: the core's [`Msg`] (one `Bytes` of the read buffer and
/// a few offsets, so nothing was copied) and, when it has a reply subject, a way to answer it.
///
/// Read it through the methods of [`Msg`] (`subject()`, `reply()`, `headers()`, `payload()`, `status()` ...).
#[derive(Clone)]
pub struct Message {
    msg: Msg,
    /// Where replies are published; only messages with a reply subject carry it.
    client: Option<Weak<dyn Publish>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.msg.fmt(f)
    }
}

impl Deref for Message {
    type Target = Msg;

    fn deref(&self) -> &Msg {
        &self.msg
    }
}

impl Message {
    /// Wraps a message of the core; `client` is where replies are published (kept only if there is a reply
    /// subject).
    pub fn new(msg: Msg, client: Option<Weak<dyn Publish>>) -> Self {
        let client = client.filter(|_| msg.reply().is_some());
        Self { msg, client }
    }

    /// The RPC correlation id of a request or of its reply (the [`CORRELATION_ID`] header), if any.
    pub fn correlation_id(&self) -> Option<&str> {
        self.msg.headers()?.get(CORRELATION_ID)
    }

    /// The W3C trace context the message carries (its `traceparent` and `tracestate` headers), if it carries a
    /// valid one; a malformed one reads as none. Continue the trace in a span of your own with
    /// [`child`](crate::trace::TraceContext::child).
    #[cfg(feature = "trace-context")]
    pub fn trace_context(&self) -> Option<crate::trace::TraceContext> {
        crate::trace::TraceContext::from_headers(self.msg.headers()?)
    }

    /// The core's message.
    pub fn into_msg(self) -> Msg {
        self.msg
    }

    /// Publishes `payload` to this message's reply subject. It never waits: in an async program it needs no
    /// `.await`.
    pub fn respond<'p>(&self, payload: impl Into<Payload<'p>>) -> Result<(), Error> {
        self.respond_with_headers(None, payload)
    }

    /// Publishes `payload` with `headers` to this message's reply subject. Inside [`batch_replies`] on this
    /// thread, the reply leaves when the batch ends (or sooner: see there).
    pub fn respond_with_headers<'p>(
        &self,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
    ) -> Result<(), Error> {
        let no_reply = || Error::Command(CommandError::InvalidSubject(SubjectError::Empty));
        let reply = self.msg.reply().ok_or_else(no_reply)?;
        let client = self.client.as_ref().and_then(Weak::upgrade).ok_or(Error::Closed)?;
        if held_for_batch(&client) {
            client.publish_deferred(reply.as_bytes(), headers, payload.into())
        } else {
            client.publish(reply.as_bytes(), headers, payload.into())
        }
    }
}

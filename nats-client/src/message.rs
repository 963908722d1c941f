//! Received messages.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use nats_proto::{CommandError, Headers, Msg, SubjectError};

use crate::Error;

/// What a message needs of its client to answer: a publish that never blocks.
pub trait Publish: Send + Sync {
    /// Publishes `payload` (with `headers`) to `subject`.
    fn publish(&self, subject: &[u8], headers: Option<&Headers>, payload: Bytes) -> Result<(), Error>;

    /// As [`publish`](Self::publish), but the bytes wait for a later write (the next one anybody makes, or
    /// [`send_deferred`](Self::send_deferred)), unless enough wait to make a write worth it on their own.
    fn publish_deferred(&self, subject: &[u8], headers: Option<&Headers>, payload: Bytes) -> Result<(), Error>;

    /// Writes whatever waits to be written, now: from the calling thread or task when nobody else is writing.
    fn send_deferred(&self);
}

thread_local! {
    /// The clients holding replies for the batch open on this thread ([`batch_replies`]), `None` outside one.
    /// The list is kept from batch to batch, so that a batch allocates nothing once the thread is warm.
    static BATCH: RefCell<(bool, Vec<Arc<dyn Publish>>)> = const { RefCell::new((false, Vec::new())) };
}

/// Runs `f`, holding the replies it makes on this thread ([`Message::respond`] and the like) until it returns
/// (or unwinds), then writing them together: the replies to a run of requests already received leave in one
/// write instead of one each. Replies made meanwhile by other threads, and every other publish, are not held;
/// a call inside another joins the outer one.
///
/// A reply waits for everything `f` does after it: hold a batch open only around work that takes microseconds
/// (a service's quick handlers, while more requests are already waiting).
pub fn batch_replies<R>(f: impl FnOnce() -> R) -> R {
    let opened = BATCH.with(|b| !std::mem::replace(&mut b.borrow_mut().0, true));
    if !opened {
        return f();
    }
    /// Ends the batch when `f` returns or unwinds.
    struct Close;
    impl Drop for Close {
        fn drop(&mut self) {
            let mut held = BATCH.with(|b| std::mem::take(&mut b.borrow_mut().1));
            for client in held.drain(..) {
                client.send_deferred();
            }
            BATCH.with(|b| *b.borrow_mut() = (false, held));
        }
    }
    let _close = Close;
    f()
}

/// Whether a reply to `client` is to be held for the batch open on this thread (registering the client with
/// it the first time).
fn held_for_batch(client: &Arc<dyn Publish>) -> bool {
    BATCH.with(|b| {
        let (open, held) = &mut *b.borrow_mut();
        if *open && !held.iter().any(|c| std::ptr::addr_eq(Arc::as_ptr(c), Arc::as_ptr(client))) {
            held.push(client.clone());
        }
        *open
    })
}

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

    /// The core's message.
    pub fn into_msg(self) -> Msg {
        self.msg
    }

    /// Publishes `payload` to this message's reply subject. It never waits: in an async program it needs no
    /// `.await`.
    pub fn respond(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.respond_with_headers(None, payload)
    }

    /// Publishes `payload` with `headers` to this message's reply subject. Inside [`batch_replies`] on this
    /// thread, the reply leaves when the batch ends.
    pub fn respond_with_headers(&self, headers: Option<&Headers>, payload: impl Into<Bytes>) -> Result<(), Error> {
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

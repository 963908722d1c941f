//! The one seam between a client and what is built on it: `micro`'s services and discovery, JetStream and
//! Key/Value are written against these traits only, once, and run on either client.
//!
//! - [`Client`], [`Subscription`], [`PendingReply`]: the blocking side, implemented by `nats-blocking`.
//! - [`AsyncClient`], [`AsyncSubscription`], [`AsyncReplies`]: the async side, implemented by `nats-tokio` on
//!   tokio and on smol. Its futures are `Send`, so the futures built on them are too.
//! - [`Timer`]: the one timer of the async side. It is the client's own (its runtime's), taken from
//!   [`AsyncClient::timer`], so code above the seam never picks a runtime and needs no timer thread.
//!
//! The seam is small on purpose: what a service or a JetStream consumer needs (publish, request in its three
//! forms, subscribe, drain, flush, inboxes, connection events), nothing of how a client does I/O. Everything
//! is in the types both clients share ([`Message`], [`Error`], [`Event`](crate::Event)), so nothing is
//! converted on the way through.
//!
//! Code generic over a client:
//!
//! ```
//! use std::time::Duration;
//! use nats_client::seam::{Client, Subscription};
//! use nats_client::{Error, Message};
//!
//! /// Echoes the next request on `subject` back to its sender; returns the request.
//! fn echo_one<C: Client>(client: &C, subject: &str) -> Result<Message, Error> {
//!     let mut sub = client.subscribe(subject, None)?;
//!     let request = sub.next_timeout(Duration::from_secs(5))?;
//!     let reply = request.reply().and_then(|r| r.as_str()).ok_or(Error::Timeout)?;
//!     client.publish(reply, None, None, request.payload().into())?;
//!     Ok(request)
//! }
//!
//! /// Asks `subject` and reads the answer as text.
//! fn ask<C: Client>(client: &C, subject: &str) -> Result<String, Error> {
//!     let reply = client.request(subject, None, "ping".into(), Duration::from_secs(1))?;
//!     Ok(String::from_utf8_lossy(reply.payload()).into_owned())
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nats_proto::{Headers, Payload};

use crate::queue::Slot;
use crate::{Error, EventReceiver, Message};

/// A blocking client, as the layers above use it.
pub trait Client: Clone + Send + Sync + 'static {
    /// A subscription of this client.
    type Subscription: Subscription;
    /// A request in flight whose reply is taken later ([`request_later`](Self::request_later)).
    type PendingReply: PendingReply;
    /// The replies of [`request_many`](Self::request_many), as they come.
    type Replies: Iterator<Item = Message> + Send + 'static;

    /// Publishes, with a reply subject and headers when given. Returns once the message is buffered (after
    /// the client's back-pressure, if any).
    fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> Result<(), Error>;
    /// Sends a request and waits at most `timeout` for its reply. Nobody listening is
    /// [`Error::NoResponders`].
    fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Message, Error>;
    /// Sends a request and returns at once; its reply is waited for later, so that many can be in flight.
    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Self::PendingReply, Error>;
    /// Sends a request and gives every reply until `timeout`, a `stall` interval after the last reply, or
    /// `max` replies, whichever comes first (service discovery).
    fn request_many(
        &self,
        subject: &str,
        payload: Payload<'_>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> Result<Self::Replies, Error>;
    /// Subscribes, in the queue group `queue` when given.
    fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Self::Subscription, Error>;
    /// Drains the subscription with this id: no new messages; those already sent are still delivered.
    fn drain_subscription(&self, sid: u64) -> Result<(), Error>;
    /// Returns once the server has processed everything sent before (subscriptions included).
    fn flush(&self) -> Result<(), Error>;
    /// A fresh unique inbox subject.
    fn new_inbox(&self) -> String;
    /// A fresh receiver of the client's connection events (disconnects, reconnects, slow consumers).
    fn events(&self) -> EventReceiver;
    /// True on this client's reader thread while it runs an inline handler ([`subscribe_inline`]): a wait for
    /// this client from here would never end.
    ///
    /// [`subscribe_inline`]: Self::subscribe_inline
    fn on_reader_thread(&self) -> bool {
        false
    }
    /// Subscribes (in the queue group `queue` when given) with `handler` run for every message on the client's
    /// own reader, with no hand-off: for handlers that are quick and never wait on this client. A client
    /// without such a reader runs it on a thread of its own (this default).
    fn subscribe_inline(
        &self,
        subject: &str,
        queue: Option<&str>,
        handler: Box<dyn FnMut(Message) + Send>,
    ) -> Result<Box<dyn InlineSubscription>, Error> {
        on_a_thread(self, subject, queue, handler)
    }
}

/// [`Client::subscribe_inline`] for a client with no reader to run handlers on: a thread of the subscription's
/// own, which ends with it (or with a panic of the handler's, which unsubscribes as the subscription drops).
fn on_a_thread<C: Client>(
    client: &C,
    subject: &str,
    queue: Option<&str>,
    mut handler: Box<dyn FnMut(Message) + Send>,
) -> Result<Box<dyn InlineSubscription>, Error> {
    /// Marks the end when the thread leaves its loop, by returning or unwinding.
    struct EndOnDrop(Arc<Slot<()>>);
    impl Drop for EndOnDrop {
        fn drop(&mut self) {
            self.0.set(());
        }
    }
    let mut sub = client.subscribe(subject, queue)?;
    let sid = sub.sid();
    let ended = Arc::new(Slot::new());
    let end = EndOnDrop(ended.clone());
    std::thread::Builder::new().name(format!("nats-handler-{sid}")).spawn(move || {
        let _end = end;
        while let Some(msg) = sub.next_message() {
            handler(msg);
        }
    })?;
    let drain = client.clone();
    Ok(Box::new(ThreadServed { sid, ended, drain: Box::new(move || drain.drain_subscription(sid).map(drop)) }))
}

/// The handle of [`on_a_thread`]'s subscription.
struct ThreadServed {
    sid: u64,
    /// Set when the thread has ended.
    ended: Arc<Slot<()>>,
    /// Ends the subscription (on drop), letting the thread finish what was received.
    drain: Box<dyn Fn() -> Result<(), Error> + Send + Sync>,
}

impl fmt::Debug for ThreadServed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadServed").field("sid", &self.sid).finish()
    }
}

impl InlineSubscription for ThreadServed {
    fn sid(&self) -> u64 {
        self.sid
    }

    fn is_ended(&self) -> bool {
        self.ended.is_set()
    }

    fn wait_ended(&self, deadline: Option<Instant>) -> bool {
        self.ended.wait_cloned(deadline).is_some()
    }
}

impl Drop for ThreadServed {
    fn drop(&mut self) {
        let _ = (self.drain)();
    }
}

/// A subscription whose handler runs on the client's reader (see [`Client::subscribe_inline`]). Dropping it
/// unsubscribes.
pub trait InlineSubscription: Send + Sync + fmt::Debug + 'static {
    /// Its id.
    fn sid(&self) -> u64;
    /// True once it has ended and its handler will not run again.
    fn is_ended(&self) -> bool;
    /// Waits until it has ended and its handler will not run again, or until `deadline` (`None`: for ever);
    /// true if it ended.
    fn wait_ended(&self, deadline: Option<Instant>) -> bool;
}

/// A blocking subscription.
pub trait Subscription: Send + fmt::Debug + 'static {
    /// Its id.
    fn sid(&self) -> u64;
    /// The next message, waiting as long as it takes; `None` once the subscription has ended.
    fn next_message(&mut self) -> Option<Message>;
    /// The next message, waiting at most `timeout`: [`Error::Timeout`] when none came, another error when
    /// the subscription ended ([`Error::Closed`], or [`Error::Permission`] when the server refused it).
    fn next_timeout(&mut self, timeout: Duration) -> Result<Message, Error>;
    /// Messages dropped because the reader fell behind.
    fn dropped(&self) -> u64;
    /// Messages received and not yet taken.
    fn pending(&self) -> usize;
}

/// A request in flight (see [`Client::request_later`]).
pub trait PendingReply: Send + fmt::Debug + 'static {
    /// Waits for the reply, until the request's timeout.
    fn wait(self) -> Result<Message, Error>;
}

/// An async client, as the layers above use it. Its futures are `Send`.
pub trait AsyncClient: Clone + Send + Sync + 'static {
    /// A subscription of this client.
    type Subscription: AsyncSubscription;
    /// The reply of a request sent by [`request_later`](Self::request_later); dropping it cancels the request.
    type PendingReply: Future<Output = Result<Message, Error>> + Send + Unpin + fmt::Debug + 'static;
    /// The replies of [`request_many`](Self::request_many), as they come.
    type Replies: AsyncReplies;

    /// Publishes (see [`Client::publish`]); waits only for the client's back-pressure.
    fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Sends a request and waits at most `timeout` for its reply (see [`Client::request`]).
    fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, Error>> + Send;
    /// Sends a request now, without `.await`, and returns its reply as a future to await later.
    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Self::PendingReply, Error>;
    /// Sends a request and gives every reply (see [`Client::request_many`]).
    fn request_many(
        &self,
        subject: &str,
        payload: Payload<'_>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> impl Future<Output = Result<Self::Replies, Error>> + Send;
    /// Subscribes, in the queue group `queue` when given.
    fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> impl Future<Output = Result<Self::Subscription, Error>> + Send;
    /// Drains the subscription with this id (see [`Client::drain_subscription`]). It only encodes, so it
    /// needs no `.await`.
    fn drain_subscription(&self, sid: u64) -> Result<(), Error>;
    /// Completes once the server has processed everything sent before (subscriptions included).
    fn flush(&self) -> impl Future<Output = Result<(), Error>> + Send;
    /// A fresh unique inbox subject.
    fn new_inbox(&self) -> String;
    /// A fresh receiver of the client's connection events.
    fn events(&self) -> EventReceiver;
    /// A timer of the client's runtime, firing at `deadline`.
    fn timer(&self, deadline: Instant) -> Box<dyn Timer>;
}

/// An async subscription, polled.
pub trait AsyncSubscription: Send + Unpin + fmt::Debug + 'static {
    /// Its id.
    fn sid(&self) -> u64;
    /// The next message; `Ready(Err(..))` once the subscription has ended ([`Error::Closed`], or
    /// [`Error::Permission`] when the server refused it).
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>>;
    /// Messages dropped because the reader fell behind.
    fn dropped(&self) -> u64;

    /// The next message, waiting until `deadline` on `timer`: [`Error::Timeout`] when none came, another
    /// error when the subscription ended. A message already waiting is returned even past the deadline.
    fn next_until<'a>(&'a mut self, timer: &'a mut dyn Timer, deadline: Instant) -> NextUntil<'a, Self>
    where
        Self: Sized,
    {
        timer.reset(deadline);
        NextUntil { sub: self, timer }
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
    type Output = Result<Message, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(result) = this.sub.poll_message(cx) {
            return Poll::Ready(result);
        }
        this.timer.poll_fired(cx).map(|()| Err(Error::Timeout))
    }
}

/// The replies of [`AsyncClient::request_many`], polled.
pub trait AsyncReplies: Send + Unpin + 'static {
    /// The next reply; `Ready(None)` once the collection is over.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>>;
}

/// A timer that can be moved to a new deadline: what async code waits on besides messages.
pub trait Timer: Send + Unpin + 'static {
    /// Moves the deadline (earlier or later); a timer that fired fires again at the new one.
    fn reset(&mut self, deadline: Instant);
    /// `Ready` once the deadline has passed; otherwise arranges for `cx` to be woken when it does.
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl fmt::Debug for dyn Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Timer")
    }
}

/// Waits on `timer` until `deadline`.
pub async fn sleep_until(timer: &mut dyn Timer, deadline: Instant) {
    timer.reset(deadline);
    std::future::poll_fn(|cx| timer.poll_fired(cx)).await;
}

/// `now + wait`, or an hour from `now` when that does not fit an `Instant` (a "forever" that stays a
/// deadline).
pub fn deadline_after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait).unwrap_or_else(|| now + Duration::from_secs(3600))
}

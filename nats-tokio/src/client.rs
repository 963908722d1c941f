//! `Client`: the handle users call. The same names, options and errors as `nats-blocking`, async.

use nats_client::StdInstant as _;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use nats_client::inflight::{flush_outcome, InFlight};
use nats_client::shared::Urgency;
use nats_client::{ConnectOptions, EventReceiver, Message};
use nats_proto::{Connection, Headers, Payload};

use crate::callback::{Async, CallbackSubscription, Handler, Plain};
use crate::driver::run;
use crate::events::Events;
use crate::link::Shared;
use crate::runtime::{Runtime, Spawner, Timer, Timers};
use crate::subscriber::{Responses, Subscriber};
use crate::Error;

struct Handle {
    shared: Arc<Shared>,
    /// The runtime's timer, for stall deadlines of `request_many`.
    new_timer: Timers,
    /// Spawns on the runtime the client connected on: the tasks of callback subscriptions.
    spawner: Spawner,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The last client handle is gone: close; the driver task writes what is left and ends.
        self.shared.close();
    }
}

/// A connection to NATS. Cheap to clone (`Clone + Send + Sync`); every clone is the same connection, and
/// dropping the last one closes it.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &self.shared().lock().conn().state()).finish()
    }
}

impl Client {
    /// Connects with `options` on the tokio runtime. Waits until the first connection is ready (or, with
    /// `retry_on_initial_connect`, returns at once and keeps trying in the background).
    #[cfg(feature = "tokio")]
    pub async fn connect(options: ConnectOptions) -> Result<Client, Error> {
        Self::connect_on::<crate::runtime::tokio_rt::Tokio>(options).await
    }

    pub(crate) async fn connect_on<R: Runtime>(options: ConnectOptions) -> Result<Client, Error> {
        let (config, settings, callback) = options.into_parts()?;
        let retry = config.retry_on_initial_connect;
        let mut channels = vec![];
        if let Some(callback) = callback {
            let (rx, channel) = EventReceiver::new();
            channels.push(Arc::downgrade(&channel));
            R::spawn(async move {
                // The task owns the channel: it lives as long as the callback is called.
                let _channel = channel;
                let mut events = Events::new(rx);
                while let Some(event) = events.next().await {
                    callback(event);
                }
            });
        }
        let shared = Shared::new(Connection::new(config, nats_proto::Instant::now()), settings, channels);
        R::spawn(run::<R>(shared.clone()));
        let client = Client { handle: Arc::new(Handle { shared, new_timer: R::timers(), spawner: R::spawner() }) };
        if !retry {
            // The core bounds this: each server gets one attempt with the connect timeout.
            let first = poll_fn(|cx| client.shared().first_connect().poll_cloned(cx)).await;
            first.map_err(Error::from)?;
        }
        Ok(client)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    pub(crate) fn publish_inner<'a>(
        &'a self,
        subject: &'a str,
        reply: Option<&'a str>,
        headers: Option<&'a Headers>,
        payload: Payload<'a>,
    ) -> Publish<'a> {
        Publish { client: self, subject, reply, headers, payload: Some(payload) }
    }

    /// Publishes `payload` to `subject`.
    ///
    /// The future is a plain one written for it, not an `async fn`'s state machine: at 16 bytes that cost about
    /// a tenth of a publish. (So are the other publishes'.)
    pub fn publish<'a, 'p: 'a>(
        &'a self,
        subject: &'a str,
        payload: impl Into<Payload<'p>>,
    ) -> impl Future<Output = Result<(), Error>> + 'a {
        self.publish_inner(subject, None, None, payload.into())
    }

    /// Publishes with headers.
    pub fn publish_with_headers<'a, 'p: 'a>(
        &'a self,
        subject: &'a str,
        headers: &'a Headers,
        payload: impl Into<Payload<'p>>,
    ) -> impl Future<Output = Result<(), Error>> + 'a {
        self.publish_inner(subject, None, Some(headers), payload.into())
    }

    /// Publishes with a reply subject.
    pub fn publish_with_reply<'a, 'p: 'a>(
        &'a self,
        subject: &'a str,
        reply: &'a str,
        payload: impl Into<Payload<'p>>,
    ) -> impl Future<Output = Result<(), Error>> + 'a {
        self.publish_inner(subject, Some(reply), None, payload.into())
    }

    /// Publishes with a reply subject and headers.
    pub fn publish_with_reply_and_headers<'a, 'p: 'a>(
        &'a self,
        subject: &'a str,
        reply: &'a str,
        headers: &'a Headers,
        payload: impl Into<Payload<'p>>,
    ) -> impl Future<Output = Result<(), Error>> + 'a {
        self.publish_inner(subject, Some(reply), Some(headers), payload.into())
    }

    pub(crate) fn subscribe_inner(&self, subject: &str, queue: Option<&str>) -> Result<Subscriber, Error> {
        let (sid, messages) = self.shared().subscribe(subject, queue)?;
        Ok(Subscriber::new(sid, messages, self.shared().clone()))
    }

    /// A timer of the runtime this client runs on.
    pub(crate) fn new_timer(&self, deadline: Instant) -> Box<dyn Timer> {
        (self.handle.new_timer)(deadline)
    }

    /// Subscribes to `subject` (wildcards allowed).
    pub async fn subscribe(&self, subject: &str) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, None)
    }

    /// Subscribes as a member of a queue group: each message goes to one member of the group.
    pub async fn queue_subscribe(&self, subject: &str, queue: &str) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, Some(queue))
    }

    fn subscribe_handler(
        &self,
        subject: &str,
        queue: Option<&str>,
        max: Option<u64>,
        handler: impl Handler,
    ) -> Result<CallbackSubscription, Error> {
        CallbackSubscription::spawn(self.subscribe_inner(subject, queue)?, max, handler, &self.handle.spawner)
    }

    /// Subscribes and runs `handler` for every message in a task of its own, on the runtime this client
    /// connected on (never in the driver task), one message at a time, in order. See [`CallbackSubscription`]
    /// for how it ends, and what a panic does.
    pub async fn subscribe_with(
        &self,
        subject: &str,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        self.subscribe_handler(subject, None, None, Plain(handler))
    }

    /// Like [`subscribe_with`](Self::subscribe_with), in a queue group.
    pub async fn queue_subscribe_with(
        &self,
        subject: &str,
        queue: &str,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        self.subscribe_handler(subject, Some(queue), None, Plain(handler))
    }

    /// Like [`subscribe_with`](Self::subscribe_with), ending after `max` messages: the handler runs at most
    /// `max` times, then its task ends with the subscription. The max is set before the task starts, so
    /// unlike [`CallbackSubscription::unsubscribe_after`] right after subscribing, no message can be handled
    /// before it counts.
    pub async fn subscribe_with_max(
        &self,
        subject: &str,
        max: u64,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        self.subscribe_handler(subject, None, Some(max), Plain(handler))
    }

    /// Like [`subscribe_with_max`](Self::subscribe_with_max), in a queue group (the max counts this member's
    /// messages).
    pub async fn queue_subscribe_with_max(
        &self,
        subject: &str,
        queue: &str,
        max: u64,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        self.subscribe_handler(subject, Some(queue), Some(max), Plain(handler))
    }

    /// Like [`subscribe_with`](Self::subscribe_with) with an async handler: its future is awaited before the
    /// next message is taken, so messages are still handled one at a time, in order.
    pub async fn subscribe_with_async<F, Fut>(&self, subject: &str, handler: F) -> Result<CallbackSubscription, Error>
    where
        F: FnMut(Message) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.subscribe_handler(subject, None, None, Async(handler))
    }

    /// Like [`subscribe_with_async`](Self::subscribe_with_async), in a queue group.
    pub async fn queue_subscribe_with_async<F, Fut>(
        &self,
        subject: &str,
        queue: &str,
        handler: F,
    ) -> Result<CallbackSubscription, Error>
    where
        F: FnMut(Message) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.subscribe_handler(subject, Some(queue), None, Async(handler))
    }

    /// Like [`subscribe_with_max`](Self::subscribe_with_max) with an async handler.
    pub async fn subscribe_with_max_async<F, Fut>(
        &self,
        subject: &str,
        max: u64,
        handler: F,
    ) -> Result<CallbackSubscription, Error>
    where
        F: FnMut(Message) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.subscribe_handler(subject, None, Some(max), Async(handler))
    }

    /// Like [`queue_subscribe_with_max`](Self::queue_subscribe_with_max) with an async handler.
    pub async fn queue_subscribe_with_max_async<F, Fut>(
        &self,
        subject: &str,
        queue: &str,
        max: u64,
        handler: F,
    ) -> Result<CallbackSubscription, Error>
    where
        F: FnMut(Message) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.subscribe_handler(subject, Some(queue), Some(max), Async(handler))
    }

    /// Drains the subscription with this id (see `Subscriber::drain`), for code that handed its `Subscriber`
    /// to another thread or task.
    pub async fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
        self.shared().drain_subscription(sid)
    }

    /// Sends a request and waits for the reply (default request timeout).
    pub async fn request<'p>(&self, subject: &str, payload: impl Into<Payload<'p>>) -> Result<Message, Error> {
        self.request_inner(subject, None, payload.into(), self.shared().settings().request_timeout).await
    }

    /// Sends a request with headers and waits for the reply.
    pub async fn request_with_headers<'p>(
        &self,
        subject: &str,
        headers: &Headers,
        payload: impl Into<Payload<'p>>,
    ) -> Result<Message, Error> {
        self.request_inner(subject, Some(headers), payload.into(), self.shared().settings().request_timeout).await
    }

    /// Sends a request and waits at most `timeout` for the reply.
    pub async fn request_with_timeout<'p>(
        &self,
        subject: &str,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.request_inner(subject, None, payload.into(), timeout).await
    }

    /// Sends a request with optional headers and waits at most `timeout` for the reply.
    pub async fn send_request<'p>(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.request_inner(subject, headers, payload.into(), timeout).await
    }

    /// Sends a request now (no `.await` needed to send it) and returns its reply as a future to await later.
    /// Many requests can be in flight this way (JetStream's asynchronous publish uses it). Dropping the future
    /// cancels the request.
    pub fn send_request_later<'p>(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
    ) -> Result<PendingReply, Error> {
        Ok(PendingReply(InFlight::send(self.shared(), subject, headers, payload.into(), timeout)?))
    }

    async fn request_inner(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        // The core keeps the deadline; the driver task wakes for it. Dropping the future cancels the request.
        let mut request = InFlight::send(self.shared(), subject, headers, payload, timeout)?;
        poll_fn(|cx| request.poll_reply(cx)).await
    }

    /// Sends a request and returns a stream of every reply until `timeout`, a `stall` interval after the last
    /// reply, or `max` replies, whichever comes first (this is what service discovery needs).
    pub async fn request_many<'p>(
        &self,
        subject: &str,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> Result<Responses, Error> {
        let shared = self.shared();
        let (id, queue) = shared.request_many(subject, None, payload.into(), timeout)?;
        Ok(Responses::new(id, queue, shared.clone(), stall, max, self.handle.new_timer.clone()))
    }

    /// Waits until the server has processed everything sent before (a PING/PONG round trip).
    pub async fn flush(&self) -> Result<(), Error> {
        self.flush_timeout(self.shared().settings().flush_timeout).await
    }

    /// Like [`flush`](Self::flush) with a timeout.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let slot = self.shared().flush(timeout)?;
        flush_outcome(poll_fn(|cx| slot.poll_take(cx)).await)
    }

    /// Unsubscribes everything, waits until messages in flight are delivered to the subscribers and open
    /// requests are answered (or the drain timeout passes), then closes. Messages already received can still
    /// be read.
    pub async fn drain(&self) -> Result<(), Error> {
        let shared = self.shared();
        shared.drain()?;
        // The core closes by itself at its drain timeout; the driver task wakes for it.
        match poll_fn(|cx| shared.closed().poll_cloned(cx)).await {
            nats_proto::CloseReason::Drained => Ok(()),
            reason => Err(reason.into()),
        }
    }

    /// Closes now: writes what is buffered, fails open requests and flushes, ends subscriptions.
    pub async fn close(&self) {
        let shared = self.shared();
        shared.close();
        poll_fn(|cx| shared.closed().poll_cloned(cx)).await;
    }

    nats_client::connection_accessors!();

    /// Connection events from now on, as a `Stream`. It ends after `Event::Closed`.
    pub fn events(&self) -> Events {
        Events::new(self.shared().events())
    }
}

/// A request in flight: see [`Client::send_request_later`]. A future of its reply; dropped unfinished, the
/// request is cancelled.
#[derive(Debug)]
pub struct PendingReply(InFlight<crate::link::Link>);

impl std::future::Future for PendingReply {
    type Output = Result<Message, Error>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        self.0.poll_reply(cx)
    }
}

/// A publish in progress: the message is encoded on the first poll, which is ready then unless the connection
/// is backed up (then, once there is room again).
///
/// A future written by hand: an `async fn` moved its arguments into a larger state machine and went through
/// its prologue on each publish, about 50 instructions of a 16-byte publish's 450 (callgrind, `compare`'s
/// child).
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Publish<'a> {
    client: &'a Client,
    subject: &'a str,
    reply: Option<&'a str>,
    headers: Option<&'a Headers>,
    /// `None` once encoded.
    payload: Option<Payload<'a>>,
}

impl Future for Publish<'_> {
    type Output = Result<(), Error>;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = this.client.shared();
        let mut core = match this.payload.take() {
            Some(payload) => {
                let subject = this.subject.as_bytes();
                let core =
                    shared.publish(subject, this.reply.map(str::as_bytes), this.headers, payload, Urgency::Batch)?;
                if !Shared::is_backed_up(&core) {
                    return Poll::Ready(Ok(()));
                }
                core
            }
            None => shared.lock(),
        };
        // Back-pressure: wait while the driver has too much unwritten.
        if Shared::is_backed_up(&core) {
            core.driver().wait_for_room(cx.waker());
            shared.wake_driver(&mut core);
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

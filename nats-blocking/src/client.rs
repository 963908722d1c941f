//! `Client`: the handle users call.

use nats_client::StdInstant as _;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nats_client::deadline_in;
use nats_client::inflight::{flush_outcome, InFlight};
use nats_client::{ConnectOptions, EventReceiver, Message};
use nats_proto::{Connection, Headers, Payload};

use crate::callback::CallbackSubscription;
use crate::driver::{publish, read_loop, write_loop, Shared};
use crate::inline::{refuse_on_reader, InlineSubscription};
use crate::subscriber::{Responses, Subscriber};
use crate::Error;

struct Handle {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The last client handle is gone: close cleanly and let the threads finish.
        self.shared.close();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// A connection to NATS. Cheap to clone; every clone is the same connection, and dropping the last one closes it.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &self.handle.shared.lock().conn().state()).finish()
    }
}

impl Client {
    /// Connects with `options`. Blocks until the first connection is ready (or, with
    /// `retry_on_initial_connect`, returns at once and keeps trying in the background).
    pub fn connect(options: ConnectOptions) -> Result<Client, Error> {
        let (config, settings, callback) = options.into_parts()?;
        let retry = config.retry_on_initial_connect;
        let mut channels = vec![];
        let mut threads = vec![];
        if let Some(callback) = callback {
            let (rx, channel) = EventReceiver::new();
            channels.push(Arc::downgrade(&channel));
            threads.push(std::thread::Builder::new().name("nats-events".into()).spawn(move || {
                // The thread owns the channel: it lives as long as the callback is called.
                let _channel = channel;
                for event in rx {
                    callback(event);
                }
            })?);
        }
        let shared = Shared::new(Connection::new(config, nats_proto::Instant::now()), settings, channels);
        let (r, w) = (shared.clone(), shared.clone());
        threads.push(std::thread::Builder::new().name("nats-reader".into()).spawn(move || read_loop(r))?);
        threads.push(std::thread::Builder::new().name("nats-writer".into()).spawn(move || write_loop(w))?);
        let client = Client { handle: Arc::new(Handle { shared, threads: Mutex::new(threads) }) };
        if !retry {
            // The core bounds this: each server gets one attempt with the connect timeout.
            if let Some(Err(reason)) = client.shared().first_connect().wait_cloned(None) {
                return Err(reason.into());
            }
        }
        Ok(client)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Publishes `payload` to `subject`.
    pub fn publish<'p>(&self, subject: &str, payload: impl Into<Payload<'p>>) -> Result<(), Error> {
        publish(self.shared(), subject.as_bytes(), None, None, payload.into())
    }

    /// Publishes with headers.
    pub fn publish_with_headers<'p>(
        &self,
        subject: &str,
        headers: &Headers,
        payload: impl Into<Payload<'p>>,
    ) -> Result<(), Error> {
        publish(self.shared(), subject.as_bytes(), None, Some(headers), payload.into())
    }

    /// Publishes with a reply subject.
    pub fn publish_with_reply<'p>(
        &self,
        subject: &str,
        reply: &str,
        payload: impl Into<Payload<'p>>,
    ) -> Result<(), Error> {
        publish(self.shared(), subject.as_bytes(), Some(reply.as_bytes()), None, payload.into())
    }

    /// Publishes with a reply subject and headers.
    pub fn publish_with_reply_and_headers<'p>(
        &self,
        subject: &str,
        reply: &str,
        headers: &Headers,
        payload: impl Into<Payload<'p>>,
    ) -> Result<(), Error> {
        publish(self.shared(), subject.as_bytes(), Some(reply.as_bytes()), Some(headers), payload.into())
    }

    pub(crate) fn subscribe_inner(&self, subject: &str, queue: Option<&str>) -> Result<Subscriber, Error> {
        let (sid, messages) = self.shared().subscribe(subject, queue)?;
        Ok(Subscriber::new(sid, messages, self.shared().clone()))
    }

    /// Subscribes to `subject` (wildcards allowed).
    pub fn subscribe(&self, subject: &str) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, None)
    }

    /// Subscribes as a member of a queue group: each message goes to one member of the group.
    pub fn queue_subscribe(&self, subject: &str, queue: &str) -> Result<Subscriber, Error> {
        self.subscribe_inner(subject, Some(queue))
    }

    /// Subscribes and runs `handler` for every message on a thread of its own (never the reader thread), one
    /// message at a time, in order. See [`CallbackSubscription`] for how it ends, and what a panic does.
    pub fn subscribe_with(
        &self,
        subject: &str,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        CallbackSubscription::spawn(self.subscribe(subject)?, None, handler)
    }

    /// Like [`subscribe_with`](Self::subscribe_with), in a queue group.
    pub fn queue_subscribe_with(
        &self,
        subject: &str,
        queue: &str,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        CallbackSubscription::spawn(self.queue_subscribe(subject, queue)?, None, handler)
    }

    /// Like [`subscribe_with`](Self::subscribe_with), ending after `max` messages: the handler runs at most
    /// `max` times, then its thread ends with the subscription. The max is set before the handler starts, so
    /// unlike [`CallbackSubscription::unsubscribe_after`] right after subscribing, no message can be handled
    /// before it counts.
    pub fn subscribe_with_max(
        &self,
        subject: &str,
        max: u64,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        CallbackSubscription::spawn(self.subscribe(subject)?, Some(max), handler)
    }

    /// Like [`subscribe_with_max`](Self::subscribe_with_max), in a queue group (the max counts this member's
    /// messages).
    pub fn queue_subscribe_with_max(
        &self,
        subject: &str,
        queue: &str,
        max: u64,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<CallbackSubscription, Error> {
        CallbackSubscription::spawn(self.queue_subscribe(subject, queue)?, Some(max), handler)
    }

    /// Subscribes and runs `handler` for every message on the connection's reader thread, right after the read
    /// that brought it: no thread of its own and no hand-off, the lowest latency this client has (a service's
    /// quick handlers). See [`InlineSubscription`] for how it ends.
    ///
    /// The handler must be quick, and must never wait on this client: while it runs, the connection reads
    /// nothing (no other subscription's messages, no replies, no PONGs). A call that would wait for this
    /// connection (a request, a flush, a drain, a subscription's next message) fails at once with
    /// [`Error::WouldDeadlock`]. Publishing and replying are fine: the replies made for one read's messages
    /// leave together, written by the reader thread when nobody else is writing. A handler that panics ends
    /// its own subscription; the connection goes on.
    pub fn subscribe_inline(
        &self,
        subject: &str,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<InlineSubscription, Error> {
        InlineSubscription::subscribe(self.shared(), subject, None, Box::new(handler))
    }

    /// Like [`subscribe_inline`](Self::subscribe_inline), in a queue group.
    pub fn queue_subscribe_inline(
        &self,
        subject: &str,
        queue: &str,
        handler: impl FnMut(Message) + Send + 'static,
    ) -> Result<InlineSubscription, Error> {
        InlineSubscription::subscribe(self.shared(), subject, Some(queue), Box::new(handler))
    }

    /// Drains the subscription with this id (see `Subscriber::drain`), for code that handed its `Subscriber`
    /// to another thread or task.
    pub fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
        self.shared().drain_subscription(sid)
    }

    /// Sends a request and waits for the reply (default request timeout).
    pub fn request<'p>(&self, subject: &str, payload: impl Into<Payload<'p>>) -> Result<Message, Error> {
        self.request_inner(subject, None, payload.into(), self.shared().settings().request_timeout)
    }

    /// Sends a request with headers and waits for the reply.
    pub fn request_with_headers<'p>(
        &self,
        subject: &str,
        headers: &Headers,
        payload: impl Into<Payload<'p>>,
    ) -> Result<Message, Error> {
        self.request_inner(subject, Some(headers), payload.into(), self.shared().settings().request_timeout)
    }

    /// Sends a request and waits at most `timeout` for the reply.
    pub fn request_with_timeout<'p>(
        &self,
        subject: &str,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.request_inner(subject, None, payload.into(), timeout)
    }

    /// Sends a request with optional headers and waits at most `timeout` for the reply.
    pub fn send_request<'p>(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.request_inner(subject, headers, payload.into(), timeout)
    }

    /// Sends a request now and returns at once; [`PendingReply::wait`] takes the reply later. Many requests can
    /// be in flight this way from one thread (JetStream's asynchronous publish uses it).
    pub fn send_request_later<'p>(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
    ) -> Result<PendingReply, Error> {
        let deadline = deadline_in(timeout);
        Ok(PendingReply { inner: InFlight::send(self.shared(), subject, headers, payload.into(), timeout)?, deadline })
    }

    fn request_inner(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        refuse_on_reader(self.shared())?;
        let deadline = deadline_in(timeout);
        InFlight::send(self.shared(), subject, headers, payload, timeout)?.wait(deadline)
    }

    /// Sends a request and returns every reply until `timeout`, a `stall` interval after the last reply, or
    /// `max` replies, whichever comes first (this is what service discovery needs).
    pub fn request_many<'p>(
        &self,
        subject: &str,
        payload: impl Into<Payload<'p>>,
        timeout: Duration,
        stall: Option<Duration>,
        max: Option<usize>,
    ) -> Result<Responses, Error> {
        let shared = self.shared();
        refuse_on_reader(shared)?;
        let now = Instant::now();
        let (id, queue) = shared.request_many(subject, None, payload.into(), timeout)?;
        Ok(Responses {
            id,
            rx: nats_client::queue::Receiver::new(queue),
            shared: shared.clone(),
            deadline: now.checked_add(timeout),
            stall,
            max,
            received: 0,
            last: None,
            done: false,
        })
    }

    /// Waits until the server has processed everything sent before (a PING/PONG round trip).
    pub fn flush(&self) -> Result<(), Error> {
        self.flush_timeout(self.shared().settings().flush_timeout)
    }

    /// Like [`flush`](Self::flush) with a timeout.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        refuse_on_reader(self.shared())?;
        let deadline = deadline_in(timeout);
        let slot = self.shared().flush(timeout)?;
        slot.wait(deadline).map_or(Err(Error::Timeout), flush_outcome)
    }

    /// Unsubscribes everything, waits until messages in flight are delivered to the subscribers and open
    /// requests are answered, then closes. Messages already received can still be read.
    pub fn drain(&self) -> Result<(), Error> {
        let shared = self.shared();
        refuse_on_reader(shared)?;
        shared.drain()?;
        // The core also has the deadline, but the reader may be asleep in a read until long after it.
        match shared.closed().wait_cloned(deadline_in(shared.settings().drain_timeout)) {
            Some(nats_proto::CloseReason::Drained) => Ok(()),
            Some(reason) => Err(reason.into()),
            None => {
                self.close();
                Err(Error::Timeout)
            }
        }
    }

    /// Closes now: writes what is buffered, fails open requests and flushes, ends subscriptions.
    pub fn close(&self) {
        self.shared().close();
    }

    nats_client::connection_accessors!();

    /// A receiver of connection events from now on. Up to 256 events wait; further ones are dropped
    /// while the receiver lags.
    pub fn events(&self) -> EventReceiver {
        self.shared().events()
    }
}

/// A request in flight: see [`Client::send_request_later`]. Dropped without [`wait`](Self::wait), it is
/// cancelled.
#[derive(Debug)]
pub struct PendingReply {
    inner: InFlight<crate::driver::Link>,
    deadline: Option<Instant>,
}

impl PendingReply {
    /// True once the reply (or the request's failure) is there: [`wait`](Self::wait) will not block.
    pub fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }

    /// Waits for the reply, until the request's own timeout.
    pub fn wait(self) -> Result<Message, Error> {
        if !self.inner.is_ready() {
            refuse_on_reader(self.inner.shared())?;
        }
        self.inner.wait(self.deadline)
    }
}

//! The state a client shares between its handles and its driver, behind one lock.
//!
//! Commands lock the core only to encode or register a waiter, then route whatever events the command caused
//! at once and wake the driver. The driver (threads in `nats-blocking`, a task in `nats-tokio`) does the I/O
//! and feeds bytes and time in; [`Core::dispatch`] hands each event of the core to whoever waits for it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_proto::{
    CloseReason, CommandError, Connection, Event as CoreEvent, FlushError, FlushId, Headers, Msg, RequestError,
    RequestId, SubscriptionEnd,
};

use crate::event::{Event, EventChannel, EventReceiver};
use crate::message::{Message, Publish};
use crate::options::PendingLimits;
use crate::queue::{MessageQueue, Pushed, Slot};
use crate::Error;

/// Bytes waiting to be written past which publishers wait for the driver.
pub const MAX_UNWRITTEN: usize = 32 << 20;

/// Where the reply of a `request` is set.
pub type ReplySlot = Arc<Slot<Result<Msg, RequestError>>>;

/// Who waits for a request's replies.
pub enum Waiting {
    /// `request`: one reply.
    One(ReplySlot),
    /// `request_many`: replies until it is cancelled.
    Many(Arc<MessageQueue>),
}

/// Timeouts and limits the handles need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pending limits of each subscription.
    pub pending: PendingLimits,
    /// Default request timeout.
    pub request_timeout: Duration,
    /// Flush timeout.
    pub flush_timeout: Duration,
    /// Drain timeout.
    pub drain_timeout: Duration,
    /// TLS configuration.
    #[cfg(feature = "tls")]
    pub tls: Arc<crate::tls::TlsConfig>,
}

/// Everything behind the lock. `T` is the driver's handle on its transport.
pub struct Core<T> {
    /// The sans-IO connection.
    pub conn: Connection,
    /// The transport in use, if any.
    pub transport: Option<T>,
    /// Subscription id to its queue.
    pub routes: nats_proto::IdMap<Arc<MessageQueue>>,
    /// Open requests.
    pub requests: HashMap<RequestId, Waiting>,
    /// Open flushes.
    pub flushes: HashMap<FlushId, Arc<Slot<Result<(), FlushError>>>>,
    /// Why the connection closed, once it has.
    pub closed: Option<CloseReason>,
    /// Channels of event receivers still alive.
    pub event_channels: Vec<Weak<EventChannel>>,
    /// Driver instructions met while routing a command's events, kept for the driver in order.
    pub deferred: VecDeque<CoreEvent>,
    /// The blocking writer sleeps on `Shared::writer_wake`.
    pub writer_idle: bool,
    /// The blocking reader sleeps on `Shared::reader_wake`.
    pub reader_idle: bool,
    /// The async driver task, while it waits.
    pub task_waker: Option<Waker>,
    /// Async publishers waiting for room.
    pub space_wakers: Vec<Waker>,
    /// Queues that received messages since their consumers were last woken.
    pub touched: Vec<Arc<MessageQueue>>,
}

/// The shared state of one client connection.
pub struct Shared<T> {
    core: Mutex<Core<T>>,
    /// The blocking writer waits here for bytes.
    pub writer_wake: Condvar,
    /// The blocking reader waits here while there is no transport.
    pub reader_wake: Condvar,
    /// Blocking publishers wait here while too much is unwritten.
    pub space: Condvar,
    /// Set once: the first connection is ready, or why there will be none.
    pub first_connect: Slot<Result<(), CloseReason>>,
    /// Set when the connection is closed, with why.
    pub closed: Slot<CloseReason>,
    /// Timeouts and limits.
    pub settings: Settings,
    self_ref: Weak<Shared<T>>,
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// Shared state around `conn`.
    pub fn new(conn: Connection, settings: Settings, channels: Vec<Weak<EventChannel>>) -> Arc<Self> {
        Arc::new_cyclic(|me| Shared {
            core: Mutex::new(Core {
                conn,
                transport: None,
                routes: Default::default(),
                requests: HashMap::new(),
                flushes: HashMap::new(),
                closed: None,
                event_channels: channels,
                deferred: VecDeque::new(),
                writer_idle: false,
                reader_idle: false,
                task_waker: None,
                space_wakers: Vec::new(),
                touched: Vec::new(),
            }),
            writer_wake: Condvar::new(),
            reader_wake: Condvar::new(),
            space: Condvar::new(),
            first_connect: Slot::new(),
            closed: Slot::new(),
            settings,
            self_ref: me.clone(),
        })
    }

    /// Locks the core. A panic elsewhere while holding the lock leaves plain data behind; it is used as is.
    pub fn lock(&self) -> MutexGuard<'_, Core<T>> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a command: route the events it caused at once (a subscription ended, the connection closed)
    /// rather than when the driver next wakes, then wake the driver.
    pub fn kick(&self, core: &mut Core<T>) {
        while let Some(event) = core.conn.poll_event() {
            match event {
                CoreEvent::Dial(_) | CoreEvent::StartTls(_) | CoreEvent::CloseTransport => {
                    core.deferred.push_back(event)
                }
                other => core.dispatch(self, other),
            }
        }
        core.wake_consumers();
        self.wake(core);
    }

    /// Wakes whatever part of the driver sleeps.
    pub fn wake(&self, core: &mut Core<T>) {
        if core.writer_idle && (core.conn.transmit_len() > 0 || core.closed.is_some()) {
            core.writer_idle = false;
            self.writer_wake.notify_one();
        }
        if core.reader_idle {
            core.reader_idle = false;
            self.reader_wake.notify_one();
        }
        if let Some(waker) = core.task_waker.take() {
            waker.wake();
        }
    }

    /// The driver took the unwritten bytes (or dropped them with a lost connection): publishers may go on.
    pub fn space_freed(&self, core: &mut Core<T>) {
        self.space.notify_all();
        for waker in core.space_wakers.drain(..) {
            waker.wake();
        }
    }

    /// The next event for the driver: kept instructions first, then the core's own.
    pub fn next_event(core: &mut Core<T>) -> Option<CoreEvent> {
        core.deferred.pop_front().or_else(|| core.conn.poll_event())
    }

    /// True while publishers should wait for the driver to write.
    pub fn is_backed_up(core: &Core<T>) -> bool {
        core.conn.transmit_len() > MAX_UNWRITTEN && core.closed.is_none() && core.transport.is_some()
    }

    /// Publishes without waiting for room.
    pub fn publish_now(
        &self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&Headers>,
        payload: Bytes,
    ) -> Result<(), Error> {
        let mut core = self.lock();
        core.conn.publish(subject, reply, headers, payload)?;
        self.wake(&mut core);
        Ok(())
    }

    /// Wraps a received message.
    pub fn message(&self, msg: Msg) -> Message {
        let client: Weak<dyn Publish> = self.self_ref.clone();
        Message::new(msg, client)
    }

    /// Subscribes and registers the queue its messages go to.
    pub fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<(u64, Arc<MessageQueue>), Error> {
        let messages = Arc::new(MessageQueue::new(self.settings.pending));
        let mut core = self.lock();
        let sid = core.conn.subscribe(subject, queue.map(str::as_bytes))?;
        // Registered under the same lock as the SUB, so no message can arrive before its route.
        core.routes.insert(sid, messages.clone());
        self.kick(&mut core);
        Ok((sid, messages))
    }

    /// Ends a subscription now, or after `max` messages in total.
    pub fn unsubscribe(&self, sid: u64, max: Option<u64>) -> Result<(), Error> {
        let mut core = self.lock();
        if max.is_none() {
            if let Some(queue) = core.routes.remove(&sid) {
                queue.end(SubscriptionEnd::Unsubscribed);
            }
        }
        let result = core.conn.unsubscribe(sid, max);
        self.kick(&mut core);
        match result {
            // Already ended (max reached, permission denied, drained): nothing left to do.
            Err(CommandError::UnknownSubscription(_)) => Ok(()),
            r => r.map_err(Error::from),
        }
    }

    /// Drains one subscription: what the server sent before it processed the UNSUB is still delivered, then
    /// the queue ends.
    pub fn drain_subscription(&self, sid: u64) -> Result<(), Error> {
        let mut core = self.lock();
        let result = core.conn.drain_subscription(sid);
        self.kick(&mut core);
        match result {
            Err(CommandError::UnknownSubscription(_)) => Ok(()),
            r => r.map_err(Error::from),
        }
    }

    /// Sends a request; its reply will be set in the returned slot.
    pub fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<(RequestId, ReplySlot), Error> {
        let slot = Arc::new(Slot::new());
        let mut core = self.lock();
        let id = core.conn.request(Instant::now(), subject, headers, payload, Some(timeout))?;
        core.requests.insert(id, Waiting::One(slot.clone()));
        self.kick(&mut core);
        Ok((id, slot))
    }

    /// Sends a request whose replies go to the returned queue until it is cancelled or times out.
    pub fn request_many(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<(RequestId, Arc<MessageQueue>), Error> {
        let queue = Arc::new(MessageQueue::new(self.settings.pending));
        let mut core = self.lock();
        let id = core.conn.request_many(Instant::now(), subject, headers, payload, Some(timeout))?;
        core.requests.insert(id, Waiting::Many(queue.clone()));
        self.kick(&mut core);
        Ok((id, queue))
    }

    /// Forgets a request; later replies are dropped.
    pub fn cancel_request(&self, id: RequestId) {
        let mut core = self.lock();
        core.conn.cancel_request(id);
        core.requests.remove(&id);
        self.kick(&mut core);
    }

    /// Sends a PING fence; its outcome will be set in the returned slot.
    pub fn flush(&self, timeout: Duration) -> Result<Arc<Slot<Result<(), FlushError>>>, Error> {
        let slot = Arc::new(Slot::new());
        let mut core = self.lock();
        let id = core.conn.flush(Instant::now(), Some(timeout))?;
        core.flushes.insert(id, slot.clone());
        self.kick(&mut core);
        Ok(slot)
    }

    /// Starts a drain; [`Shared::closed`] is set when it is done.
    pub fn drain(&self) -> Result<(), Error> {
        let mut core = self.lock();
        core.conn.drain(Instant::now())?;
        self.kick(&mut core);
        Ok(())
    }

    /// Closes now.
    pub fn close(&self) {
        let mut core = self.lock();
        core.conn.close();
        self.kick(&mut core);
    }

    /// A receiver of events from now on; after the close it ends at once.
    pub fn events(&self) -> EventReceiver {
        let mut core = self.lock();
        if core.closed.is_some() {
            return EventReceiver::ended();
        }
        let (rx, channel) = EventReceiver::new();
        core.event_channels.push(Arc::downgrade(&channel));
        rx
    }
}

impl<T: Send + Sync + 'static> Publish for Shared<T> {
    fn publish(&self, subject: &[u8], headers: Option<&Headers>, payload: Bytes) -> Result<(), Error> {
        self.publish_now(subject, None, headers, payload)
    }
}

/// The instant `timeout` from now; `None` ("no deadline") when it is too far to represent.
pub fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A request in flight, as both clients' request calls hold it: its reply is taken by blocking
/// ([`wait`](Self::wait)) or by polling ([`poll_reply`](Self::poll_reply)); dropped unfinished, the request is
/// cancelled.
pub struct InFlight<T: Send + Sync + 'static> {
    shared: Arc<Shared<T>>,
    id: RequestId,
    slot: ReplySlot,
    done: bool,
}

impl<T: Send + Sync + 'static> std::fmt::Debug for InFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").field("id", &self.id).field("ready", &self.is_ready()).finish()
    }
}

impl<T: Send + Sync + 'static> InFlight<T> {
    /// Sends the request now.
    pub fn send(
        shared: &Arc<Shared<T>>,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let (id, slot) = shared.request(subject, headers, payload, timeout)?;
        Ok(Self { shared: shared.clone(), id, slot, done: false })
    }

    /// True once the reply (or the request's failure) is there.
    pub fn is_ready(&self) -> bool {
        self.slot.is_set()
    }

    /// Blocks for the reply until `deadline` (`None`: the core's own request deadline decides).
    pub fn wait(mut self, deadline: Option<Instant>) -> Result<Message, Error> {
        let outcome = self.slot.wait(deadline);
        self.done = outcome.is_some();
        match outcome {
            Some(result) => request_outcome(result).map(|msg| self.shared.message(msg)),
            None => Err(Error::Timeout),
        }
    }

    /// The reply, or `Pending` with the task registered to be woken for it.
    pub fn poll_reply(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<Message, Error>> {
        let result = std::task::ready!(self.slot.poll_take(cx));
        self.done = true;
        std::task::Poll::Ready(request_outcome(result).map(|msg| self.shared.message(msg)))
    }
}

impl<T: Send + Sync + 'static> Drop for InFlight<T> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.cancel_request(self.id);
        }
    }
}

/// What a request's outcome means to a caller.
pub fn request_outcome(result: Result<Msg, RequestError>) -> Result<Msg, Error> {
    match result {
        Ok(msg) => Ok(msg),
        Err(RequestError::NoResponders) => Err(Error::NoResponders),
        Err(RequestError::Closed) => Err(Error::Closed),
        Err(RequestError::PermissionDenied(e)) => Err(Error::Permission(e)),
        Err(_) => Err(Error::Timeout),
    }
}

/// What a flush's outcome means to a caller.
pub fn flush_outcome(result: Result<(), FlushError>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(FlushError::Disconnected) => Err(Error::Disconnected),
        Err(FlushError::Closed) => Err(Error::Closed),
        Err(_) => Err(Error::Timeout),
    }
}

impl<T: Send + Sync + 'static> Core<T> {
    /// Wakes the consumers of every queue that received messages since the last call. Drivers call it after
    /// routing a batch of events.
    pub fn wake_consumers(&mut self) {
        for queue in self.touched.drain(..) {
            queue.wake();
        }
    }

    /// Sends `event` to every receiver still alive; a full one loses it rather than stall the connection.
    pub fn emit(&mut self, event: Event) {
        self.event_channels.retain(|channel| match channel.upgrade() {
            Some(channel) => {
                channel.send(event.clone());
                true
            }
            None => false,
        });
    }

    /// Routes one event of the core to whoever waits for it. Driver instructions are ignored here.
    pub fn dispatch(&mut self, shared: &Shared<T>, event: CoreEvent) {
        match event {
            CoreEvent::Message(msg) => {
                let sid = msg.sid;
                let Some(queue) = self.routes.get(&sid) else { return };
                match queue.push_quiet(shared.message(msg)) {
                    // Woken once per batch by `wake_consumers`, not once per message.
                    Pushed::Queued if !self.touched.iter().any(|q| Arc::ptr_eq(q, queue)) => {
                        let queue = queue.clone();
                        self.touched.push(queue);
                    }
                    Pushed::Dropped { first: true } => self.emit(Event::SlowConsumer { sid }),
                    _ => {}
                }
            }
            CoreEvent::SubscriptionEnded { sid, reason } => {
                if let Some(queue) = self.routes.remove(&sid) {
                    queue.end(reason);
                }
            }
            CoreEvent::Response { id, result, done } => self.respond(shared, id, result, done),
            CoreEvent::Flushed { id, result } => {
                if let Some(slot) = self.flushes.remove(&id) {
                    slot.set(result);
                }
            }
            CoreEvent::Connected(addr) => {
                shared.first_connect.set(Ok(()));
                self.emit(Event::Connected(addr.to_string()));
            }
            CoreEvent::Reconnected(addr) => self.emit(Event::Reconnected(addr.to_string())),
            CoreEvent::Disconnected(e) => self.emit(Event::Disconnected(e)),
            CoreEvent::ConnectFailed { server, error } => {
                self.emit(Event::ConnectFailed { server: server.to_string(), error })
            }
            CoreEvent::LameDuck => self.emit(Event::LameDuck),
            CoreEvent::DiscoveredServers => self.emit(Event::DiscoveredServers),
            CoreEvent::ServerError(e) => self.emit(Event::ServerError(e)),
            CoreEvent::BadMessage(e) => self.emit(Event::BadMessage(e)),
            CoreEvent::Closed(reason) => self.on_closed(shared, reason),
            _ => {}
        }
    }

    fn respond(&mut self, shared: &Shared<T>, id: RequestId, result: Result<Msg, RequestError>, done: bool) {
        match self.requests.get(&id) {
            Some(Waiting::One(slot)) => {
                slot.set(result);
                self.requests.remove(&id);
            }
            Some(Waiting::Many(queue)) => {
                let queue = queue.clone();
                match result {
                    Ok(msg) => {
                        queue.push(shared.message(msg));
                    }
                    Err(RequestError::NoResponders) => queue.end(SubscriptionEnd::Unsubscribed),
                    Err(RequestError::PermissionDenied(e)) => queue.end(SubscriptionEnd::PermissionDenied(e)),
                    Err(_) => queue.end(SubscriptionEnd::Closed),
                }
                if done {
                    queue.end(SubscriptionEnd::Unsubscribed);
                    self.requests.remove(&id);
                }
            }
            None => {}
        }
    }

    fn on_closed(&mut self, shared: &Shared<T>, reason: CloseReason) {
        for (_, queue) in self.routes.drain() {
            queue.end(SubscriptionEnd::Closed);
        }
        for (_, waiting) in self.requests.drain() {
            match waiting {
                Waiting::One(slot) => slot.set(Err(RequestError::Closed)),
                Waiting::Many(queue) => queue.end(SubscriptionEnd::Closed),
            }
        }
        for (_, slot) in self.flushes.drain() {
            slot.set(Err(FlushError::Closed));
        }
        shared.first_connect.set(Err(reason.clone()));
        self.closed = Some(reason.clone());
        self.emit(Event::Closed);
        // Nothing more will be said: let receivers (and a callback thread) see the end.
        for channel in self.event_channels.drain(..).filter_map(|c| c.upgrade()) {
            channel.end();
        }
        shared.closed.set(reason);
    }
}

//! The state a client shares between its handles and its driver, behind one lock.
//!
//! Commands lock the core only to encode or register a waiter, route whatever events the command caused at
//! once, and then let the driver's [`Driver::send`] decide how the bytes leave: a small latency-sensitive
//! write (a request, a reply, a flush) goes out from the calling thread or task when nobody else is writing;
//! a publish is batched, and written by the caller itself once a batch is large. The driver does the rest of
//! the I/O and feeds reads in through [`Core::ingest`], which hands each message to its subscription's queue
//! (a run of them in one step).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nats_proto::{
    CloseReason, CommandError, Connection, FlushError, FlushId, Headers, Msg, Payload, RequestError, RequestId,
    SubscriptionEnd, WriteBuffer,
};

use crate::event::{Event, EventChannel, EventReceiver};
use crate::message::{Message, Publish};
use crate::options::PendingLimits;
use crate::queue::{MessageQueue, Slot};
use crate::router::{Delivered, Router};
use crate::Error;

/// Unwritten bytes at which a publishing caller stops batching and writes the batch itself (when nobody else
/// is writing): one large write from the thread that produced it, no hand-off to another thread.
///
/// Large, because a write's fixed cost in the kernel is several microseconds: at 16 KiB a stream of 16 KiB
/// messages paid one system call each and used half again the CPU of a peer that writes them sixteen at a time.
/// Half of [`MAX_UNWRITTEN`], so that publishers can fill the next batch while one is being written.
pub const DIRECT_WRITE: usize = 256 * 1024;

/// Unwritten bytes past which publishers wait for the write in progress: a small multiple of a socket's send
/// buffer, so the memory a publisher holds stays flat at any rate.
pub const MAX_UNWRITTEN: usize = 512 * 1024;

/// Where the reply of a `request` is set.
pub type ReplySlot = Arc<Slot<Result<Msg, RequestError>>>;

/// Who waits for a request's replies.
pub enum Waiting {
    /// `request`: one reply.
    One(ReplySlot),
    /// `request_many`: replies until it is cancelled.
    Many(Arc<MessageQueue>),
}

/// How soon a command's bytes should leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// A publish: may wait for more to batch with.
    Batch,
    /// Someone waits for the answer (request, reply, flush, subscription change): out now if nobody is writing.
    Now,
}

/// A driver's transport, as the shared state sees it: how the bytes a command produced get written.
pub trait Driver: Send + Sync + Sized + 'static {
    /// Called with the lock held after a command encoded something. Writes it from the calling thread or task,
    /// or arranges for the driver to; may release the lock to write or to wait for room, and hands it back.
    fn send<'a>(
        shared: &'a Shared<Self>,
        core: MutexGuard<'a, Core<Self>>,
        urgency: Urgency,
    ) -> MutexGuard<'a, Core<Self>>;
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
    /// Why the connection closed, once it has.
    pub closed: Option<CloseReason>,
    /// A write is in progress (by a caller or by the driver): only its holder writes, so bytes leave in order.
    pub writing: bool,
    /// The write in progress is a caller's, outside the lock (the async client): the driver leaves the turn
    /// alone until the caller gives it back.
    pub caller_writing: bool,
    /// The async driver found the turn taken by a caller: the caller wakes it when it gives the turn back.
    pub driver_waits_turn: bool,
    /// The empty buffer the next writer swaps with the core's: two buffers alternate, so neither grows.
    pub spare: WriteBuffer,
    /// The blocking writer sleeps on `Shared::writer_wake`.
    pub writer_idle: bool,
    /// The async driver lets a small batch gather: a publish need not wake it.
    pub holding: bool,
    /// Bytes someone waits on (a request, a reply) came while a write was in progress: its holder sends them
    /// when its write returns (or the driver's writer, which must not hold them).
    pub urgent: bool,
    /// The blocking reader sleeps on `Shared::reader_wake`.
    pub reader_idle: bool,
    /// The async driver task, while it waits.
    pub task_waker: Option<Waker>,
    /// When the async driver's timer fires: a command that adds an earlier deadline must wake it.
    pub timer_at: Option<Instant>,
    /// Blocking publishers waiting on `Shared::space`.
    pub space_waiters: usize,
    /// Async publishers waiting for room.
    pub space_wakers: Vec<Waker>,
    /// What the last read delivered: queues to wake, slow consumers to report.
    pub delivered: Delivered,
    /// Subscription id to its queue.
    pub(crate) routes: nats_proto::IdMap<Arc<MessageQueue>>,
    /// Open requests.
    pub(crate) requests: HashMap<RequestId, Waiting>,
    /// Open flushes.
    pub(crate) flushes: HashMap<FlushId, Arc<Slot<Result<(), FlushError>>>>,
    /// Channels of event receivers still alive.
    pub(crate) event_channels: Vec<Weak<EventChannel>>,
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
    /// Batches publishers wrote themselves so far, readable without the lock: a driver's writer that lets a
    /// batch gather can tell that the flow writes for itself.
    pub writes: AtomicU64,
    /// Timeouts and limits.
    pub settings: Settings,
    /// Where received messages with a reply subject answer: this shared state.
    client: Weak<dyn Publish>,
}

impl<T: Driver> Shared<T> {
    /// Shared state around `conn`.
    pub fn new(conn: Connection, settings: Settings, channels: Vec<Weak<EventChannel>>) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Shared<T>>| Shared {
            core: Mutex::new(Core {
                conn,
                transport: None,
                closed: None,
                writing: false,
                spare: WriteBuffer::new(),
                writer_idle: false,
                holding: false,
                urgent: false,
                caller_writing: false,
                driver_waits_turn: false,
                reader_idle: false,
                task_waker: None,
                timer_at: None,
                space_waiters: 0,
                space_wakers: Vec::new(),
                delivered: Delivered::default(),
                routes: Default::default(),
                requests: HashMap::new(),
                flushes: HashMap::new(),
                event_channels: channels,
            }),
            writer_wake: Condvar::new(),
            reader_wake: Condvar::new(),
            space: Condvar::new(),
            first_connect: Slot::new(),
            closed: Slot::new(),
            writes: AtomicU64::new(0),
            settings,
            client: me.clone(),
        })
    }

    /// Locks the core. A panic elsewhere while holding the lock leaves plain data behind; it is used as is.
    pub fn lock(&self) -> MutexGuard<'_, Core<T>> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the core if nobody holds it now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Core<T>>> {
        match self.core.try_lock() {
            Ok(core) => Some(core),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// After a command: route the events it caused at once (a subscription ended, the connection closed)
    /// rather than when the driver next wakes, then let the transport send what it encoded.
    pub fn after_command(&self, mut core: MutexGuard<'_, Core<T>>, urgency: Urgency) {
        while let Some(event) = core.conn.poll_event() {
            core.dispatch(self, event);
        }
        // Driver instructions (dial, TLS, close the transport) wait in the core for the driver.
        if core.conn.has_action() || core.closed.is_some() {
            self.wake_driver(&mut core);
        }
        drop(T::send(self, core, urgency));
    }

    /// Wakes whatever part of the driver sleeps.
    pub fn wake_driver(&self, core: &mut Core<T>) {
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

    /// Moves everything unwritten into `wire` for the write turn's holder to send (urgent bytes with it):
    /// publishers waiting for room may go on.
    pub fn take_unwritten(&self, core: &mut Core<T>, wire: &mut WriteBuffer) {
        core.conn.poll_transmit(wire);
        core.urgent = false;
        self.space_freed(core);
    }

    /// Room was made in the unwritten bytes (a writer took them, or they went with a lost connection):
    /// publishers waiting for it may go on. Free when nobody waits.
    pub fn space_freed(&self, core: &mut Core<T>) {
        if core.space_waiters > 0 {
            self.space.notify_all();
        }
        for waker in core.space_wakers.drain(..) {
            waker.wake();
        }
    }

    /// True while publishers should wait for the write in progress.
    pub fn is_backed_up(core: &Core<T>) -> bool {
        core.conn.transmit_len() > MAX_UNWRITTEN && core.closed.is_none() && core.transport.is_some()
    }

    /// Publishes; `urgency` says whether it may be batched.
    pub fn publish(
        &self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        urgency: Urgency,
    ) -> Result<MutexGuard<'_, Core<T>>, Error> {
        let mut core = self.lock();
        core.conn.publish(subject, reply, headers, payload)?;
        Ok(T::send(self, core, urgency))
    }

    /// Wraps a received message; one with a reply subject can answer through this client.
    pub fn message(&self, msg: Msg) -> Message {
        Message::new(msg, Some(self.client.clone()))
    }

    /// Subscribes and registers the queue its messages go to.
    pub fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<(u64, Arc<MessageQueue>), Error> {
        let messages = Arc::new(MessageQueue::new(self.settings.pending));
        let mut core = self.lock();
        let sid = core.conn.subscribe(subject, queue.map(str::as_bytes))?;
        // Registered under the same lock as the SUB, so no message can arrive before its route.
        core.routes.insert(sid, messages.clone());
        self.after_command(core, Urgency::Now);
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
        self.after_command(core, Urgency::Now);
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
        self.after_command(core, Urgency::Now);
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
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<(RequestId, ReplySlot), Error> {
        let slot = Arc::new(Slot::new());
        let mut core = self.lock();
        let id = core.conn.request(Instant::now(), subject, headers, payload, Some(timeout))?;
        core.requests.insert(id, Waiting::One(slot.clone()));
        self.after_command(core, Urgency::Now);
        Ok((id, slot))
    }

    /// Sends a request whose replies go to the returned queue until it is cancelled or times out.
    pub fn request_many(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<(RequestId, Arc<MessageQueue>), Error> {
        let queue = Arc::new(MessageQueue::new(self.settings.pending));
        let mut core = self.lock();
        let id = core.conn.request_many(Instant::now(), subject, headers, payload, Some(timeout))?;
        core.requests.insert(id, Waiting::Many(queue.clone()));
        self.after_command(core, Urgency::Now);
        Ok((id, queue))
    }

    /// Forgets a request; later replies are dropped.
    pub fn cancel_request(&self, id: RequestId) {
        let mut core = self.lock();
        core.conn.cancel_request(id);
        core.requests.remove(&id);
        self.after_command(core, Urgency::Batch);
    }

    /// Sends a PING fence; its outcome will be set in the returned slot.
    pub fn flush(&self, timeout: Duration) -> Result<Arc<Slot<Result<(), FlushError>>>, Error> {
        let slot = Arc::new(Slot::new());
        let mut core = self.lock();
        let id = core.conn.flush(Instant::now(), Some(timeout))?;
        core.flushes.insert(id, slot.clone());
        self.after_command(core, Urgency::Now);
        Ok(slot)
    }

    /// Starts a drain; [`Shared::closed`] is set when it is done.
    pub fn drain(&self) -> Result<(), Error> {
        let mut core = self.lock();
        core.conn.drain(Instant::now())?;
        self.after_command(core, Urgency::Now);
        Ok(())
    }

    /// Closes now.
    pub fn close(&self) {
        let mut core = self.lock();
        core.conn.close();
        self.after_command(core, Urgency::Batch);
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

/// Bytes of replies held for a batch ([`batch_replies`](crate::batch_replies)) past which they are
/// written without waiting for the batch to end.
const DEFERRED_AT_MOST: usize = 64 * 1024;

/// A reply never waits for a batch of publishes: someone is waiting for it. Only a batch of replies holds it.
impl<T: Driver> Publish for Shared<T> {
    fn publish(&self, subject: &[u8], headers: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        Shared::publish(self, subject, None, headers, payload, Urgency::Now).map(drop)
    }

    fn publish_deferred(&self, subject: &[u8], headers: Option<&Headers>, payload: Payload<'_>) -> Result<(), Error> {
        let mut core = self.lock();
        core.conn.publish(subject, None, headers, payload)?;
        if core.conn.transmit_len() >= DEFERRED_AT_MOST {
            drop(T::send(self, core, Urgency::Now));
        }
        Ok(())
    }

    fn send_deferred(&self) {
        let core = self.lock();
        if core.conn.transmit_len() > 0 {
            drop(T::send(self, core, Urgency::Now));
        }
    }
}

impl<T: Driver> Core<T> {
    /// Bytes someone waits on came during the write in progress and are still unsent on an open connection:
    /// the turn's holder sends them before giving the turn back (or hands them on at once).
    pub fn urgent_left(&self) -> bool {
        self.urgent && self.conn.transmit_len() > 0 && self.closed.is_none()
    }

    /// Feeds what the driver read into `buf` (see `Connection::handle_read`): each message goes to its
    /// subscription's queue (a run of them in one step); queues to wake are left in
    /// [`delivered`](Self::delivered). Events are left for the driver to route.
    pub fn ingest(&mut self, shared: &Shared<T>, now: Instant, buf: &mut BytesMut) {
        let Core { conn, routes, delivered, .. } = self;
        conn.handle_read(now, buf, &mut Router::new(routes, &shared.client, delivered));
        for sid in std::mem::take(&mut self.delivered.slow) {
            self.emit(Event::SlowConsumer { sid });
        }
    }
}

/// The instant `timeout` from now; `None` ("no deadline") when it is too far to represent.
pub fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A request in flight, as both clients' request calls hold it: its reply is taken by blocking
/// ([`wait`](Self::wait)) or by polling ([`poll_reply`](Self::poll_reply)); dropped unfinished, the request is
/// cancelled.
pub struct InFlight<T: Driver> {
    shared: Arc<Shared<T>>,
    id: RequestId,
    slot: ReplySlot,
    done: bool,
}

impl<T: Driver> std::fmt::Debug for InFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").field("id", &self.id).field("ready", &self.is_ready()).finish()
    }
}

impl<T: Driver> InFlight<T> {
    /// Sends the request now.
    pub fn send(
        shared: &Arc<Shared<T>>,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
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

impl<T: Driver> Drop for InFlight<T> {
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

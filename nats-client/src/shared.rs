//! The state a client shares between its handles and its driver, behind one lock.
//!
//! Commands lock the core only to encode or register a waiter, route whatever events the command caused at
//! once, and then let the driver's [`Driver::send`] decide how the bytes leave: a small latency-sensitive
//! write (a request, a reply, a flush) goes out from the calling thread or task when nobody else is writing;
//! a publish is batched, and written by the caller itself once a batch is large. The driver does the rest of
//! the I/O and feeds reads in through [`Locked::ingest`], which hands each message to its subscription's queue
//! (a run of them in one step).

use crate::StdInstant as _;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::BytesMut;
use nats_proto::{
    CloseReason, CommandError, Connection, FlushError, FlushId, Headers, Instant, Msg, Payload, RequestError,
    RequestId, SubscriptionEnd, WriteBuffer,
};

use crate::event::{Event, EventChannel, EventReceiver};
use crate::message::{Message, Publish};
use crate::options::Settings;
use crate::queue::{MessageQueue, Slot};
use crate::router::{Delivered, Router, Wakeups};
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

/// Calls `send` with the headers to send: with the `trace-context` feature, when a trace context is current on
/// this thread and `headers` carry no `traceparent`, theirs plus the context's (see `trace::outgoing`, copied
/// outside the lock); otherwise `headers` as they are. Without the feature, just `send(headers)`.
///
/// With no context current this is one thread-local load and a branch; the rest compiles as without the
/// feature (measured with callgrind on a publish loop, see `nats-blocking/examples/publish_loop.rs`). Two things
/// keep it so. The traced path is a function of its own, so `send` is inlined once, on the untraced path: when
/// both paths shared one call with one `Option<&Headers>`, a publish without headers lost its specialised
/// encoding (about 100 instructions a publish more). And callers pass `move` closures: captured by reference,
/// their arguments were spilled to the stack for the traced path's sake and read back on the untraced one.
#[inline(always)]
#[cfg_attr(not(feature = "trace-context"), allow(unused_variables))]
fn with_trace<T: Driver, R>(
    shared: &Shared<T>,
    headers: Option<&Headers>,
    payload_len: usize,
    send: impl FnOnce(Option<&Headers>) -> R,
) -> R {
    #[cfg(feature = "trace-context")]
    if crate::trace::is_current() {
        return with_current_trace(shared, headers, payload_len, send);
    }
    send(headers)
}

/// [`with_trace`] when a context is current: out of the send path's line. The context is left out when the
/// server would refuse the send with it (no header support, or over `max_payload` with the headers it adds):
/// tracing never turns a send that fits into one that fails.
#[cfg(feature = "trace-context")]
#[cold]
#[inline(never)]
fn with_current_trace<T: Driver, R>(
    shared: &Shared<T>,
    headers: Option<&Headers>,
    payload_len: usize,
    send: impl FnOnce(Option<&Headers>) -> R,
) -> R {
    match crate::trace::outgoing(headers) {
        Some(traced) if shared.lock().conn.takes_headers(&traced, payload_len) => send(Some(&traced)),
        _ => send(headers),
    }
}

/// Where the reply of a `request` is set.
pub type ReplySlot = Arc<Slot<Result<Msg, RequestError>>>;
/// Where a flush's outcome goes.
pub type FlushSlot = Arc<Slot<Result<(), FlushError>>>;

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

/// What a driver plugs into the shared state: its handle on the transport (the implementing type), the state
/// of its own kept behind the lock, what its threads wait on, and how the bytes a command produced get written.
pub trait Driver: Send + Sync + Sized + 'static {
    /// The driver's own state behind the lock: how its parts sleep and are woken.
    type State: Default + Send;
    /// What the driver's threads wait on (condition variables), beside the lock.
    type Signals: Default + Send + Sync;
    /// Called with the lock held after a command encoded something. Writes it from the calling thread or task,
    /// or arranges for the driver to; may release the lock to write or to wait for room, and hands it back.
    fn send<'a>(
        shared: &'a Shared<Self>,
        core: MutexGuard<'a, Locked<Self>>,
        urgency: Urgency,
    ) -> MutexGuard<'a, Locked<Self>>;
    /// Wakes whatever part of the driver sleeps: a command left it something to do (bytes, an instruction,
    /// a close).
    fn wake(shared: &Shared<Self>, core: &mut Locked<Self>);
    /// Room was made in the unwritten bytes (a writer took them, or they went with a lost connection):
    /// publishers waiting for it may go on. Free when nobody waits.
    fn space_freed(shared: &Shared<Self>, core: &mut Locked<Self>);
}

/// Everything behind the lock: the sans-IO connection, the transport, the write turn, the tables of who waits
/// for what, and the driver's own state. `T` is the driver's handle on its transport.
pub struct Locked<T: Driver> {
    pub(crate) conn: Connection,
    pub(crate) transport: Option<T>,
    pub(crate) closed: Option<CloseReason>,
    /// A write is in progress (by a caller or by the driver): only its holder writes, so bytes leave in order.
    pub(crate) writing: bool,
    /// The empty buffer the next writer swaps with the core's: two buffers alternate, so neither grows.
    pub(crate) spare: WriteBuffer,
    /// Bytes someone waits on (a request, a reply, a new connection's replay) are unwritten: the write turn's
    /// holder sends them when its write returns, and the driver's writer must not let them gather.
    pub(crate) urgent: bool,
    pub(crate) driver: T::State,
    /// What the last read delivered: queues to wake, slow consumers to report.
    pub(crate) delivered: Delivered,
    /// Subscription id to its queue.
    pub(crate) routes: nats_proto::IdMap<Arc<MessageQueue>>,
    /// Open requests.
    pub(crate) requests: HashMap<RequestId, Waiting>,
    /// Open flushes.
    pub(crate) flushes: HashMap<FlushId, FlushSlot>,
    /// Channels of event receivers still alive.
    pub(crate) event_channels: Vec<Weak<EventChannel>>,
}

/// The shared state of one client connection.
pub struct Shared<T: Driver> {
    core: Mutex<Locked<T>>,
    signals: T::Signals,
    /// Set once: the first connection is ready, or why there will be none.
    first_connect: Slot<Result<(), CloseReason>>,
    /// Set when the connection is closed, with why.
    closed: Slot<CloseReason>,
    /// Batches publishers wrote themselves so far, readable without the lock.
    writes: AtomicU64,
    settings: Settings,
    /// Where received messages with a reply subject answer: this shared state.
    client: Weak<dyn Publish>,
}

impl<T: Driver> Shared<T> {
    /// Shared state around `conn`.
    pub fn new(conn: Connection, settings: Settings, channels: Vec<Weak<EventChannel>>) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Shared<T>>| Shared {
            core: Mutex::new(Locked {
                conn,
                transport: None,
                closed: None,
                writing: false,
                spare: WriteBuffer::new(),
                urgent: false,
                driver: T::State::default(),
                delivered: Delivered::default(),
                routes: Default::default(),
                requests: HashMap::new(),
                flushes: HashMap::new(),
                event_channels: channels,
            }),
            signals: T::Signals::default(),
            first_connect: Slot::new(),
            closed: Slot::new(),
            writes: AtomicU64::new(0),
            settings,
            client: me.clone(),
        })
    }

    /// Locks the core. A panic elsewhere while holding the lock leaves plain data behind; it is used as is.
    pub fn lock(&self) -> MutexGuard<'_, Locked<T>> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the core if nobody holds it now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Locked<T>>> {
        match self.core.try_lock() {
            Ok(core) => Some(core),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// After a command: route the events it caused at once (a subscription ended, the connection closed)
    /// rather than when the driver next wakes, then let the transport send what it encoded.
    pub fn after_command(&self, mut core: MutexGuard<'_, Locked<T>>, urgency: Urgency) {
        let mut wake = Wakeups::default();
        while let Some(event) = core.conn.poll_event() {
            core.dispatch(self, event, &mut wake);
        }
        // Driver instructions (dial, TLS, close the transport) wait in the core for the driver.
        if core.conn.has_action() || core.closed.is_some() {
            self.wake_driver(&mut core);
        }
        drop(T::send(self, core, urgency));
        wake.wake_all();
    }

    /// Wakes whatever part of the driver sleeps (see [`Driver::wake`]).
    pub fn wake_driver(&self, core: &mut Locked<T>) {
        T::wake(self, core);
    }

    /// Moves everything unwritten into `wire` for the write turn's holder to send (urgent bytes with it):
    /// publishers waiting for room may go on.
    pub fn take_unwritten(&self, core: &mut Locked<T>, wire: &mut WriteBuffer) {
        core.conn.poll_transmit(wire);
        core.urgent = false;
        T::space_freed(self, core);
    }

    /// Room was made in the unwritten bytes (see [`Driver::space_freed`]).
    pub fn space_freed(&self, core: &mut Locked<T>) {
        T::space_freed(self, core);
    }

    /// What the driver's threads wait on.
    pub fn signals(&self) -> &T::Signals {
        &self.signals
    }

    /// Set once: the first connection is ready, or why there will be none.
    pub fn first_connect(&self) -> &Slot<Result<(), CloseReason>> {
        &self.first_connect
    }

    /// Set when the connection is closed, with why.
    pub fn closed(&self) -> &Slot<CloseReason> {
        &self.closed
    }

    /// Timeouts and limits.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Counts a batch a publisher wrote itself (see [`own_writes`](Self::own_writes)).
    pub fn count_own_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Batches publishers wrote themselves so far, read without the lock: a driver's writer that lets a batch
    /// gather can tell that the flow writes for itself.
    pub fn own_writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// True while publishers should wait for the write in progress.
    pub fn is_backed_up(core: &Locked<T>) -> bool {
        core.conn.transmit_len() > MAX_UNWRITTEN && core.closed.is_none() && core.transport.is_some()
    }

    /// Publishes; `urgency` says whether it may be batched.
    ///
    /// Inlined whole, the closure too: left to itself the compiler kept the closure a function of its own under
    /// nats-tokio's publish future, and its call and returned `Result` cost about 40 instructions a publish
    /// (callgrind, 16 B publishes in `compare`'s child).
    #[inline(always)]
    pub fn publish(
        &self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        urgency: Urgency,
    ) -> Result<MutexGuard<'_, Locked<T>>, Error> {
        with_trace(
            self,
            headers,
            payload.len(),
            #[inline(always)]
            move |headers| {
                let mut core = self.lock();
                core.conn.publish(subject, reply, headers, payload)?;
                Ok(T::send(self, core, urgency))
            },
        )
    }

    /// Wraps a received message; one with a reply subject can answer through this client.
    pub fn message(&self, msg: Msg) -> Message {
        Message::new(msg, Some(self.client.clone()))
    }

    /// Subscribes and registers the queue its messages go to.
    pub fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<(u64, Arc<MessageQueue>), Error> {
        self.subscribe_then(subject, queue, |_, _, _| {})
    }

    /// [`subscribe`](Self::subscribe), calling `then` with the id and the queue under the lock, before the SUB
    /// is sent: whatever it registers is in place before the first message can arrive.
    pub fn subscribe_then(
        &self,
        subject: &str,
        queue: Option<&str>,
        then: impl FnOnce(&mut Locked<T>, u64, &Arc<MessageQueue>),
    ) -> Result<(u64, Arc<MessageQueue>), Error> {
        let messages = Arc::new(MessageQueue::new(self.settings.pending));
        let mut core = self.lock();
        let sid = core.conn.subscribe(subject, queue.map(str::as_bytes))?;
        // Registered under the same lock as the SUB, so no message can arrive before its route.
        core.routes.insert(sid, messages.clone());
        then(&mut core, sid, &messages);
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
        with_trace(self, headers, payload.len(), move |headers| {
            let slot = Arc::new(Slot::new());
            let mut core = self.lock();
            let id = core.conn.request(Instant::now(), subject, headers, payload, Some(timeout))?;
            core.requests.insert(id, Waiting::One(slot.clone()));
            self.after_command(core, Urgency::Now);
            Ok((id, slot))
        })
    }

    /// Sends a request whose replies go to the returned queue until it is cancelled or times out.
    pub fn request_many(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<(RequestId, Arc<MessageQueue>), Error> {
        with_trace(self, headers, payload.len(), move |headers| {
            let queue = Arc::new(MessageQueue::new(self.settings.pending));
            let mut core = self.lock();
            let id = core.conn.request_many(Instant::now(), subject, headers, payload, Some(timeout))?;
            core.requests.insert(id, Waiting::Many(queue.clone()));
            self.after_command(core, Urgency::Now);
            Ok((id, queue))
        })
    }

    /// Forgets a request; later replies are dropped.
    pub fn cancel_request(&self, id: RequestId) {
        let mut core = self.lock();
        core.conn.cancel_request(id);
        core.requests.remove(&id);
        self.after_command(core, Urgency::Batch);
    }

    /// Sends a PING fence; its outcome will be set in the returned slot.
    pub fn flush(&self, timeout: Duration) -> Result<FlushSlot, Error> {
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
        with_trace(self, headers, payload.len(), move |headers| {
            let mut core = self.lock();
            core.conn.publish(subject, None, headers, payload)?;
            if core.conn.transmit_len() >= DEFERRED_AT_MOST {
                drop(T::send(self, core, Urgency::Now));
            }
            Ok(())
        })
    }

    fn send_deferred(&self) {
        let core = self.lock();
        if core.conn.transmit_len() > 0 {
            drop(T::send(self, core, Urgency::Now));
        }
    }
}

impl<T: Driver> Locked<T> {
    /// The sans-IO connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The sans-IO connection, to drive.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The transport in use, if any.
    pub fn transport(&self) -> Option<&T> {
        self.transport.as_ref()
    }

    /// Sets the transport in use (`None`: the connection has none now); returns the one it replaces.
    pub fn set_transport(&mut self, transport: Option<T>) -> Option<T> {
        std::mem::replace(&mut self.transport, transport)
    }

    /// True once the connection is closed for good.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// The driver's own state.
    pub fn driver(&mut self) -> &mut T::State {
        &mut self.driver
    }

    /// The driver's own state, to read.
    pub fn driver_ref(&self) -> &T::State {
        &self.driver
    }

    /// A write is in progress (the write turn is taken): only its holder writes, so bytes leave in order.
    pub fn is_writing(&self) -> bool {
        self.writing
    }

    /// Takes (`true`) or gives back (`false`) the write turn.
    pub fn set_writing(&mut self, writing: bool) {
        self.writing = writing;
    }

    /// The buffer the next writer swaps with the connection's (two buffers alternate, so neither grows); a
    /// writer's unfinished bytes wait in it for the next holder of the turn.
    pub fn spare(&self) -> &WriteBuffer {
        &self.spare
    }

    /// The spare buffer, to swap or clear.
    pub fn spare_mut(&mut self) -> &mut WriteBuffer {
        &mut self.spare
    }

    /// Bytes someone waits on are unwritten: a request's or a reply that came while a write was in progress, or
    /// a new connection's replay (see [`urgent_left`](Self::urgent_left)).
    pub fn is_urgent(&self) -> bool {
        self.urgent
    }

    /// Marks the unwritten bytes as ones someone waits on (see [`is_urgent`](Self::is_urgent)).
    pub fn set_urgent(&mut self) {
        self.urgent = true;
    }

    /// Bytes someone waits on came during the write in progress and are still unsent on an open connection:
    /// the turn's holder sends them before giving the turn back (or hands them on at once).
    pub fn urgent_left(&self) -> bool {
        self.urgent && self.conn.transmit_len() > 0 && self.closed.is_none()
    }

    /// Moves the queues the last read filled into `wake`, for the driver to wake once the lock is released.
    pub fn take_filled(&mut self, wake: &mut Wakeups) {
        wake.queues_mut().append(&mut self.delivered.touched);
    }

    /// Feeds what the driver read into `buf` (see `Connection::handle_read`): each message goes to its
    /// subscription's queue (a run of them in one step); queues to wake are left in
    /// [`take_filled`](Self::take_filled). Events are left for the driver to route.
    pub fn ingest(&mut self, shared: &Shared<T>, now: Instant, buf: &mut BytesMut) {
        let Locked { conn, routes, delivered, .. } = self;
        conn.handle_read(now, buf, &mut Router::new(routes, &shared.client, delivered));
        for sid in std::mem::take(&mut self.delivered.slow) {
            self.emit(Event::SlowConsumer { sid });
        }
    }
}

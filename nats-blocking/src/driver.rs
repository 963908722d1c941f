//! The driver: two threads around one `nats_proto::Connection`.
//!
//! - The reader thread dials when the core asks, reads with a timeout taken from `poll_timeout`, feeds bytes and
//!   time into the core, and routes its events (messages to subscription queues, replies to waiting requests).
//! - The writer thread takes everything the core has to send in one swap and writes it outside the lock, so
//!   while it is in a system call, publishers keep filling the next batch.
//!
//! Publishers lock the core only to encode. Every socket read and write happens outside the lock.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use nats_proto::{
    CloseReason, Connection, ConnectionError, Event as CoreEvent, FlushError, FlushId, Headers, Msg, RequestError,
    RequestId, ServerAddr, State, SubscriptionEnd, WriteBuffer,
};

use crate::event::Event;
use crate::message::Message;
use crate::options::PendingLimits;
use crate::queue::{MessageQueue, Pushed, Slot};
use crate::Error;

/// Bytes waiting to be written past which publishers wait for the writer.
const MAX_UNWRITTEN: usize = 32 << 20;
/// A write that makes no progress for this long means the server is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the reader sleeps without looking at the core's timers.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// Who waits for a request's replies.
pub(crate) enum Waiting {
    One(Arc<Slot<Result<Msg, RequestError>>>),
    Many(Arc<MessageQueue>),
}

/// Everything behind the core lock.
pub(crate) struct Core {
    pub(crate) conn: Connection,
    pub(crate) sock: Option<Arc<TcpStream>>,
    pub(crate) routes: HashMap<u64, Arc<MessageQueue>>,
    pub(crate) requests: HashMap<RequestId, Waiting>,
    pub(crate) flushes: HashMap<FlushId, Arc<Slot<Result<(), FlushError>>>>,
    pub(crate) closed: Option<CloseReason>,
    pub(crate) event_senders: Vec<SyncSender<Event>>,
    /// Driver instructions met while routing a command's events, for the reader.
    deferred: Vec<CoreEvent>,
    writer_idle: bool,
    reader_idle: bool,
}

/// State shared by the client handles, the reader and the writer.
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// The writer waits here for bytes.
    writer_wake: Condvar,
    /// The reader waits here while there is no socket.
    reader_wake: Condvar,
    /// Publishers wait here while too much is unwritten.
    space: Condvar,
    /// Set once: the first connection is ready, or why there will be none.
    pub(crate) first_connect: Slot<Result<(), CloseReason>>,
    /// Set when the connection is closed.
    pub(crate) closed: Slot<()>,
    pub(crate) pending_limits: PendingLimits,
    pub(crate) self_ref: Weak<Shared>,
}

impl Shared {
    pub(crate) fn new(conn: Connection, pending_limits: PendingLimits, senders: Vec<SyncSender<Event>>) -> Arc<Self> {
        Arc::new_cyclic(|me| Shared {
            core: Mutex::new(Core {
                conn,
                sock: None,
                routes: HashMap::new(),
                requests: HashMap::new(),
                flushes: HashMap::new(),
                closed: None,
                event_senders: senders,
                deferred: Vec::new(),
                writer_idle: false,
                reader_idle: false,
            }),
            writer_wake: Condvar::new(),
            reader_wake: Condvar::new(),
            space: Condvar::new(),
            first_connect: Slot::new(),
            closed: Slot::new(),
            pending_limits,
            self_ref: me.clone(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a command: route the events it caused at once (a subscription ended, the connection closed)
    /// rather than when the reader next wakes, then wake the writer and a reader that sleeps without a socket.
    pub(crate) fn kick(&self, core: &mut Core) {
        while let Some(event) = core.conn.poll_event() {
            match event {
                // Instructions for the reader: keep them for it, in order.
                CoreEvent::Dial(_) | CoreEvent::StartTls(_) | CoreEvent::CloseTransport => core.deferred.push(event),
                other => core.dispatch(self, other),
            }
        }
        self.wake(core);
    }

    fn wake(&self, core: &mut Core) {
        if core.writer_idle && (core.conn.transmit_len() > 0 || core.closed.is_some()) {
            core.writer_idle = false;
            self.writer_wake.notify_one();
        }
        if core.reader_idle {
            core.reader_idle = false;
            self.reader_wake.notify_one();
        }
    }

    /// Waits while too many bytes are unwritten (back-pressure on publishers).
    fn wait_for_space<'a>(&self, mut core: MutexGuard<'a, Core>) -> MutexGuard<'a, Core> {
        while core.conn.transmit_len() > MAX_UNWRITTEN && core.closed.is_none() && core.sock.is_some() {
            self.wake(&mut core);
            core = self.space.wait(core).unwrap_or_else(|e| e.into_inner());
        }
        core
    }

    pub(crate) fn publish(
        &self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&Headers>,
        payload: Bytes,
    ) -> Result<(), Error> {
        let mut core = self.lock();
        core.conn.publish(subject, reply, headers, payload)?;
        self.kick(&mut core);
        drop(self.wait_for_space(core));
        Ok(())
    }

    fn message(&self, msg: Msg) -> Message {
        Message::new(msg, self.self_ref.clone())
    }
}

impl Core {
    pub(crate) fn emit(&mut self, event: Event) {
        // A full receiver loses the event rather than stalling the connection.
        self.event_senders
            .retain(|tx| !matches!(tx.try_send(event.clone()), Err(std::sync::mpsc::TrySendError::Disconnected(_))));
    }

    /// Routes one event of the core to whoever waits for it.
    pub(crate) fn dispatch(&mut self, shared: &Shared, event: CoreEvent) {
        match event {
            CoreEvent::Message(msg) => {
                let sid = msg.sid;
                if let Some(queue) = self.routes.get(&sid) {
                    if queue.push(shared.message(msg)) == (Pushed::Dropped { first: true }) {
                        self.emit(Event::SlowConsumer { sid });
                    }
                }
            }
            CoreEvent::SubscriptionEnded { sid, reason } => {
                if let Some(queue) = self.routes.remove(&sid) {
                    queue.end(reason);
                }
            }
            CoreEvent::Response { id, result, done } => match self.requests.get(&id) {
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
                        Err(_) => queue.end(SubscriptionEnd::Closed),
                    }
                    if done {
                        queue.end(SubscriptionEnd::Unsubscribed);
                        self.requests.remove(&id);
                    }
                }
                None => {}
            },
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
            CoreEvent::Closed(reason) => {
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
                self.closed = Some(reason);
                self.emit(Event::Closed);
                // Nothing more will be said: let receivers (and the callback thread) see the end.
                self.event_senders.clear();
                shared.closed.set(());
            }
            // Driver instructions are handled by the reader loop; anything newer is not for users yet.
            _ => {}
        }
    }
}

/// Opens a TCP connection to the first address of `addr` that answers.
fn dial(addr: &ServerAddr, timeout: Duration) -> Option<TcpStream> {
    let addrs = addr.host_port().to_socket_addrs().ok()?;
    for a in addrs {
        if let Ok(sock) = TcpStream::connect_timeout(&a, timeout) {
            // Small writes (requests, PONGs) go out at once; the writer batches on its own.
            let _ = sock.set_nodelay(true);
            let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
            return Some(sock);
        }
    }
    None
}

/// The reader thread.
pub(crate) fn read_loop(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut core = shared.lock();
    loop {
        // Handle everything the core has to say; dialing happens outside the lock.
        loop {
            let deferred = (!core.deferred.is_empty()).then(|| core.deferred.remove(0));
            let Some(event) = deferred.or_else(|| core.conn.poll_event()) else { break };
            match event {
                CoreEvent::Dial(addr) => {
                    let timeout = core.conn.config().connect_timeout;
                    drop(core);
                    let sock = dial(&addr, timeout);
                    core = shared.lock();
                    match sock {
                        Some(sock) if core.closed.is_none() => {
                            core.sock = Some(Arc::new(sock));
                            core.conn.handle_connected(Instant::now());
                        }
                        _ => core.conn.handle_eof(Instant::now()),
                    }
                }
                CoreEvent::StartTls(_) => {
                    // TLS arrives with the security work; until then a server that demands it is unreachable.
                    let error = ConnectionError::Incompatible("TLS is not supported by this build");
                    core.conn.handle_transport_error(Instant::now(), error);
                }
                CoreEvent::CloseTransport => {
                    // After a close the writer sends what is left and shuts the socket; after a loss, do it now.
                    if core.conn.state() != State::Closed {
                        if let Some(sock) = core.sock.take() {
                            let _ = sock.shutdown(Shutdown::Both);
                        }
                    }
                    // Unsent bytes went with the connection: publishers waiting for room may go on.
                    shared.space.notify_all();
                }
                other => core.dispatch(&shared, other),
            }
        }
        shared.kick(&mut core);
        if core.closed.is_some() {
            return;
        }
        let now = Instant::now();
        let sleep = core.conn.poll_timeout().map_or(MAX_SLEEP, |t| t.saturating_duration_since(now)).min(MAX_SLEEP);
        let Some(sock) = core.sock.clone() else {
            core.reader_idle = true;
            core = shared.reader_wake.wait_timeout(core, sleep).unwrap_or_else(|e| e.into_inner()).0;
            core.reader_idle = false;
            core.conn.handle_timeout(Instant::now());
            continue;
        };
        drop(core);
        let _ = sock.set_read_timeout(Some(sleep.max(Duration::from_millis(1))));
        let read = (&*sock).read(&mut buf);
        core = shared.lock();
        let now = Instant::now();
        // A read from a socket the core has since given up on is ignored.
        if core.sock.as_ref().is_some_and(|s| Arc::ptr_eq(s, &sock)) {
            match read {
                Ok(0) => core.conn.handle_eof(now),
                Ok(n) => core.conn.handle_input(now, &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => core.conn.handle_eof(now),
            }
        }
        core.conn.handle_timeout(now);
    }
}

/// Writes all of `wire` with vectored writes.
fn write_all(sock: &TcpStream, wire: &mut WriteBuffer) -> std::io::Result<()> {
    while wire.has_remaining() {
        let mut iov = [IoSlice::new(&[]); 64];
        let n = wire.chunks_vectored(&mut iov);
        match (&*sock).write_vectored(&iov[..n]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(written) => wire.advance(written),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The writer thread.
pub(crate) fn write_loop(shared: Arc<Shared>) {
    let mut wire = WriteBuffer::new();
    let mut core = shared.lock();
    loop {
        if core.conn.transmit_len() > 0 && core.sock.is_some() {
            core.conn.poll_transmit(&mut wire);
            // The core's buffer is empty again: publishers waiting for room may go on.
            shared.space.notify_all();
            let sock = core.sock.clone();
            drop(core);
            if let Some(sock) = sock {
                if write_all(&sock, &mut wire).is_err() {
                    // The reader sees the shut socket and tells the core.
                    let _ = sock.shutdown(Shutdown::Both);
                    wire.clear();
                }
            }
            core = shared.lock();
            continue;
        }
        if core.closed.is_some() {
            if let Some(sock) = core.sock.take() {
                let _ = sock.shutdown(Shutdown::Both);
            }
            shared.space.notify_all();
            if core.reader_idle {
                shared.reader_wake.notify_one();
            }
            return;
        }
        core.writer_idle = true;
        core = shared.writer_wake.wait(core).unwrap_or_else(|e| e.into_inner());
        core.writer_idle = false;
    }
}

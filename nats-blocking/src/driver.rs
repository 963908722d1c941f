//! The driver: two threads around one `nats_proto::Connection`, and the callers' own threads.
//!
//! - The reader thread dials when the core asks, reads into a buffer of its own with a timeout taken from
//!   `poll_timeout`, and feeds the read to the core under one lock: each run of messages for one subscription
//!   is gathered as it is decoded and appended to its queue in one step, and each queue's consumer is woken
//!   once per read, after the lock is released. Inline subscriptions' handlers run on the reader too, right
//!   after (see `inline.rs`). The reader writes nothing of its own (a blocked write must never stop the
//!   reading): only the replies of those handlers, when nobody else is writing, which the server reads
//!   whatever it is doing.
//! - Writes go out from whichever thread holds the connection's write turn (`Locked::is_writing`). A caller that
//!   needs an answer (a request, a reply, a flush, a subscription) writes its bytes itself when nobody is
//!   writing; so does a publisher whose batch reached [`DIRECT_WRITE`]. Smaller publishes are left for the
//!   writer thread, woken once per batch. Publishers wait only when [`MAX_UNWRITTEN`] bytes are waiting
//!   behind a write in progress.
//!
//! Every socket read and write happens outside the lock.

use nats_client::StdInstant as _;
use std::io::ErrorKind;
use std::ops::Deref;
use std::sync::{Arc, Condvar, MutexGuard};
use std::time::Duration;

use nats_client::router::Wakeups;
use nats_client::shared::{Locked, Shared as SharedState, Urgency, DIRECT_WRITE, MAX_UNWRITTEN};
use nats_proto::conn::read_buffer::ReadBuffer;
use nats_proto::{Action, ConnectionError, Headers, Instant, Payload, ServerAddr, State};

use crate::dial::{dial, open, transport_error};
use crate::inline::{Inline, Served};
use crate::transport::{ReadSize, Transport};
use crate::Error;

/// The socket, as the shared state holds it.
#[derive(Clone)]
pub(crate) struct Link(Arc<Transport>);

impl Deref for Link {
    type Target = Transport;

    fn deref(&self) -> &Transport {
        &self.0
    }
}

impl Link {
    fn same(&self, other: &Link) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The shared state, with the socket as the transport.
pub(crate) type Shared = SharedState<Link>;
type Guard<'a> = MutexGuard<'a, Locked<Link>>;

/// A wake-up this soon after the writer thread's last write means a publisher in full flow (see `write_loop`).
const RECENT: Duration = Duration::from_micros(50);
/// The shortest time the writer thread lets a batch gather, and the longest.
const MIN_HOLD: Duration = Duration::from_micros(50);
const MAX_HOLD: Duration = Duration::from_millis(1);
/// Bytes gathering during a hold that show a steady flow.
const GROW: usize = 2048;
/// Writes a write-turn holder makes, at most, for bytes others wait on that came during its own.
const URGENT_ROUNDS: usize = 4;
/// Longest the reader sleeps without looking at the core's timers.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// This driver's state behind the connection's lock: which of its threads sleep.
#[derive(Debug, Default)]
pub(crate) struct DriverState {
    /// The writer thread sleeps on `Signals::writer_wake`.
    writer_idle: bool,
    /// The reader thread sleeps on `Signals::reader_wake` (no transport).
    reader_idle: bool,
    /// Publishers waiting on `Signals::space`.
    space_waiters: usize,
    /// Inline subscriptions the reader has not taken over yet.
    pub(crate) new_inline: Vec<Arc<Inline>>,
}

/// What this driver's threads wait on.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// The writer thread waits here for bytes.
    writer_wake: Condvar,
    /// The reader thread waits here while there is no transport.
    reader_wake: Condvar,
    /// The reader waits on `reader_wake`: readable without the lock, for [`wake_idle_reader`].
    reader_waiting: std::sync::atomic::AtomicBool,
    /// Publishers wait here while too much is unwritten.
    space: Condvar,
}

impl nats_client::shared::Driver for Link {
    type State = DriverState;
    type Signals = Signals;

    fn wake(shared: &Shared, core: &mut Locked<Link>) {
        if core.driver_ref().writer_idle && (core.conn().transmit_len() > 0 || core.is_closed()) {
            core.driver().writer_idle = false;
            shared.signals().writer_wake.notify_one();
        }
        if core.driver_ref().reader_idle {
            core.driver().reader_idle = false;
            shared.signals().reader_wake.notify_one();
        }
    }

    fn space_freed(shared: &Shared, core: &mut Locked<Link>) {
        if core.driver_ref().space_waiters > 0 {
            shared.signals().space.notify_all();
        }
    }

    /// Inlined for its fast path, which is most publishes in a flow: a small batch while the writer thread
    /// is awake (gathering, or writing) leaves everything as it is.
    #[inline(always)]
    fn send<'a>(shared: &'a Shared, core: Guard<'a>, urgency: Urgency) -> Guard<'a> {
        if urgency == Urgency::Batch
            && core.conn().transmit_len() < DIRECT_WRITE
            && !core.driver_ref().writer_idle
            && !core.is_closed()
        {
            return core;
        }
        send_slow(shared, core, urgency)
    }
}

/// [`Link::send`] when it has something to do: a write of the caller's own, a wait for room, or a wake of the
/// writer thread.
#[inline(never)]
fn send_slow<'a>(shared: &'a Shared, mut core: Guard<'a>, urgency: Urgency) -> Guard<'a> {
    loop {
        let unwritten = core.conn().transmit_len();
        if unwritten == 0 || core.transport().is_none() || core.is_closed() {
            wake_writer(shared, &mut core);
            return core;
        }
        if core.is_writing() {
            // The write in progress takes these next; wait only when too much is piling up behind it.
            if unwritten <= MAX_UNWRITTEN {
                if urgency == Urgency::Now {
                    // Someone waits for these: whoever holds the write turn sends them as soon as its write
                    // is done (see `write_out`), without a hand-off to another thread.
                    core.set_urgent();
                }
                return core;
            }
            core.driver().space_waiters += 1;
            core = shared.signals().space.wait(core).unwrap_or_else(|e| e.into_inner());
            core.driver().space_waiters -= 1;
            continue;
        }
        if urgency == Urgency::Now || unwritten >= DIRECT_WRITE {
            core = write_out(shared, core, urgency == Urgency::Batch);
            // What others added meanwhile is theirs: sent now only if it makes a large batch.
            if core.conn().transmit_len() < DIRECT_WRITE {
                wake_writer(shared, &mut core);
                return core;
            }
            continue;
        }
        // A small batch: the writer thread sends it.
        wake_writer(shared, &mut core);
        return core;
    }
}

/// Takes the write turn and everything unwritten, writes it outside the lock, and gives the turn back. Bytes
/// someone waits for (a request, a reply, a flush) that came during the write are sent by this thread too,
/// before it gives the turn back (a few rounds at most, then the writer thread takes over): waking the writer
/// thread for them would cost a hand-off per round trip. `batch`: a publisher writing its own batch, counted
/// in `Shared::own_writes` so that the writer thread leaves the flow alone.
fn write_out<'a>(shared: &'a Shared, mut core: Guard<'a>, batch: bool) -> Guard<'a> {
    let Some(link) = core.transport().cloned() else { return core };
    core.set_writing(true);
    if batch {
        shared.count_own_write();
    }
    for _ in 0..URGENT_ROUNDS {
        let mut wire = std::mem::take(core.spare_mut());
        shared.take_unwritten(&mut core, &mut wire);
        drop(core);
        let failed = link.write_all(&mut wire).is_err();
        if failed {
            // The reader sees the shut socket and tells the core.
            link.shutdown();
            wire.clear();
        }
        core = shared.lock();
        *core.spare_mut() = wire;
        let same_link = core.transport().is_some_and(|t| t.same(&link));
        if failed || !same_link || !core.urgent_left() {
            break;
        }
    }
    core.set_writing(false);
    // Bytes the transport owes of its own (a pong the reader queued during this write, which found the turn
    // taken): the writer thread sends them now that it is free.
    let owed = core.transport().is_some_and(|t| t.wants_write());
    if core.urgent_left() || owed {
        // Left behind (a new connection, a failed write, rounds used up): the writer thread must not let them
        // gather.
        core.driver().writer_idle = false;
        shared.signals().writer_wake.notify_one();
    }
    // The writer thread may be waiting for the turn (bytes arrived meanwhile, or the connection closed).
    wake_writer(shared, &mut core);
    core
}

/// Wakes the writer thread if it sleeps and has something to do: once per batch, not per publish.
fn wake_writer(shared: &Shared, core: &mut Locked<Link>) {
    if core.driver().writer_idle && !core.is_writing() && (core.conn().transmit_len() > 0 || core.is_closed()) {
        core.driver().writer_idle = false;
        shared.signals().writer_wake.notify_one();
    }
}

/// Wakes the reader if it waits for a connection (no socket to read): an inline subscription needs it. Takes no
/// lock, so it may be called under the connection's.
pub(crate) fn wake_idle_reader(shared: &Shared) {
    if shared.signals().reader_waiting.load(std::sync::atomic::Ordering::Acquire) {
        shared.signals().reader_wake.notify_one();
    }
}

/// Publishes, then sends or waits as [`Link::send`] decides.
#[inline]
pub(crate) fn publish(
    shared: &Shared,
    subject: &[u8],
    reply: Option<&[u8]>,
    headers: Option<&Headers>,
    payload: Payload<'_>,
) -> Result<(), Error> {
    shared.publish(subject, reply, headers, payload, Urgency::Batch).map(drop)
}

/// What the reader thread keeps between reads.
struct Reader {
    buf: ReadBuffer,
    size: ReadSize,
    /// Queues the last read filled and outcomes of requests and flushes, woken once the lock is released.
    wake: Wakeups,
    /// The read timeout last set, and on which socket: a system call only when it changes.
    timeout_set: Option<(Link, Duration)>,
    /// Inline subscriptions, whose handlers run on this thread.
    served: Served,
}

/// The reader thread.
pub(crate) fn read_loop(shared: Arc<Shared>) {
    let mut reader = Reader {
        buf: ReadBuffer::new(),
        size: ReadSize::new(),
        wake: Wakeups::default(),
        timeout_set: None,
        served: Served::default(),
    };
    let mut core = shared.lock();
    loop {
        core = reader.handle_events(&shared, core);
        if core.is_closed() {
            reader.served.adopt(&mut core.driver().new_inline);
            drop(core);
            reader.wake.wake_all();
            reader.served.close(&shared);
            return;
        }
        core = reader.step(&shared, core);
    }
}

impl Reader {
    /// Carries out the core's instructions and routes its events; dialing happens outside the lock.
    fn handle_events<'a>(&mut self, shared: &'a Shared, mut core: Guard<'a>) -> Guard<'a> {
        loop {
            // Events first: none waits behind a dial.
            while let Some(event) = core.conn_mut().poll_event() {
                core.dispatch(shared, event, &mut self.wake);
            }
            let Some(action) = core.conn_mut().poll_action() else { break };
            match action {
                Action::Dial(addr) => {
                    let timeout = core.conn().config().connect_timeout;
                    // A WebSocket's TLS handshake and upgrade share the attempt's connect deadline.
                    let deadline = core.conn().connect_deadline().unwrap_or_else(|| Instant::now() + timeout);
                    drop(core);
                    // Messages of the read that lost the connection do not wait for the next one.
                    self.wake.wake_all();
                    self.served.run_due(shared);
                    let transport = dial(&addr, timeout)
                        .map_err(|e| ConnectionError::Unreachable(e.to_string()))
                        .and_then(|sock| open(shared, sock, &addr, deadline.to_std()));
                    core = shared.lock();
                    match transport {
                        Ok(transport) if !core.is_closed() => {
                            core.set_transport(Some(Link(Arc::new(transport))));
                            // A new stream: nothing of the old one may be decoded with it.
                            self.buf.clear();
                            core.conn_mut().handle_connected(Instant::now());
                        }
                        Ok(_) => {}
                        Err(e) => core.conn_mut().handle_transport_error(Instant::now(), e),
                    }
                }
                Action::StartTls(addr) => {
                    core = start_tls(shared, core, &addr);
                }
                Action::Credentials { nonce, ask } => {
                    // The callback may read a `.creds` file: outside the lock.
                    let callback = core.conn().config().auth.callback.clone();
                    drop(core);
                    let credentials = match callback {
                        Some(callback) => callback(nonce.as_deref()),
                        None => Err("no credentials callback".to_owned()),
                    };
                    core = shared.lock();
                    core.conn_mut().handle_credentials(Instant::now(), ask, credentials);
                }
                Action::CloseTransport => {
                    // After a close the writer sends what is left and shuts the socket; after a loss, do it now.
                    if core.conn().state() != State::Closed {
                        if let Some(sock) = core.set_transport(None) {
                            sock.shutdown();
                        }
                    }
                    // Unsent bytes went with the connection: publishers waiting for room may go on.
                    shared.space_freed(&mut core);
                }
                // A later core's instruction this driver does not know: nothing to do.
                _ => {}
            }
        }
        // Handshake replies, PONGs, UNSUBs: the writer thread sends them (the reader must never block writing).
        wake_writer(shared, &mut core);
        core
    }

    /// Sleeps in a read (or, without a transport, until woken) and feeds the core what came.
    fn step<'a>(&mut self, shared: &'a Shared, mut core: Guard<'a>) -> Guard<'a> {
        let now = Instant::now();
        let sleep = core.conn().poll_timeout().map_or(MAX_SLEEP, |t| t.saturating_duration_since(now)).min(MAX_SLEEP);
        self.served.adopt(&mut core.driver().new_inline);
        let Some(sock) = core.transport().cloned() else {
            if self.served.any_due() {
                // Inline handlers run outside the lock (messages of the read that lost the connection, or a
                // subscription that ended meanwhile); then round again.
                drop(core);
                self.wake.wake_all();
                self.served.run_due(shared);
                return shared.lock();
            }
            // Messages of the read that lost the connection do not wait for a reconnect.
            self.wake.wake_all();
            core.driver().reader_idle = true;
            let waiting = &shared.signals().reader_waiting;
            waiting.store(true, std::sync::atomic::Ordering::Release);
            core = shared.signals().reader_wake.wait_timeout(core, sleep).unwrap_or_else(|e| e.into_inner()).0;
            waiting.store(false, std::sync::atomic::Ordering::Release);
            core.driver().reader_idle = false;
            core.conn_mut().handle_timeout(Instant::now());
            return core;
        };
        drop(core);
        self.wake.wake_all();
        // Inline handlers for what the last read brought, before the next read.
        self.served.run_due(shared);
        let timeout = sleep.max(Duration::from_millis(1));
        if !self.timeout_set.as_ref().is_some_and(|(s, t)| s.same(&sock) && *t == timeout) {
            sock.set_read_timeout(timeout);
            self.timeout_set = Some((sock.clone(), timeout));
        }
        self.buf.make_room();
        let read = sock.read_into(&mut self.buf, &mut self.size);
        let mut core = shared.lock();
        let now = Instant::now();
        // A read from a socket the core has since given up on is ignored.
        if core.transport().is_some_and(|s| s.same(&sock)) {
            match read {
                Ok(0) => core.conn_mut().handle_eof(now),
                Ok(_) => {
                    core.ingest(shared, now, &mut self.buf);
                    core.take_filled(&mut self.wake);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => match transport_error(&e) {
                    Some(error) => core.conn_mut().handle_transport_error(now, error),
                    None => core.conn_mut().handle_eof(now),
                },
            }
            // The session may have an alert or a key update to send: that is the writer's job.
            if sock.wants_write() && core.driver().writer_idle {
                core.driver().writer_idle = false;
                shared.signals().writer_wake.notify_one();
            }
        } else {
            self.buf.clear();
        }
        core.conn_mut().handle_timeout(now);
        core
    }
}

/// Replaces the plain socket with a TLS session over it, after a handshake done outside the lock.
#[cfg(feature = "tls")]
fn start_tls<'a>(shared: &'a Shared, mut core: Guard<'a>, addr: &ServerAddr) -> Guard<'a> {
    let plain = match core.transport().map(|l| &**l) {
        Some(Transport::Plain(sock)) => sock.try_clone(),
        _ => Err(std::io::Error::other("no plain socket to secure")),
    };
    // The handshake shares the attempt's connect deadline.
    let deadline =
        core.conn().connect_deadline().unwrap_or_else(|| Instant::now() + core.conn().config().connect_timeout);
    let plain = match plain {
        Ok(p) => p,
        Err(e) => {
            core.conn_mut().handle_transport_error(Instant::now(), ConnectionError::Unreachable(e.to_string()));
            return core;
        }
    };
    let before = core.transport().cloned();
    drop(core);
    // Building the session may read the system's trust store the first time: outside the lock.
    let secured = shared
        .settings()
        .tls
        .session(addr)
        .map_err(|e| match e {
            ConnectionError::Tls(why) => std::io::Error::new(ErrorKind::InvalidData, why),
            other => std::io::Error::other(other.to_string()),
        })
        .and_then(|session| crate::transport::handshake(plain, session, deadline.to_std()));
    let mut core = shared.lock();
    let now = Instant::now();
    // The core may have given up on this socket meanwhile (closed, timed out).
    if !core.transport().zip(before.as_ref()).is_some_and(|(a, b)| a.same(b)) {
        return core;
    }
    match secured {
        Ok(transport) => {
            core.set_transport(Some(Link(Arc::new(transport))));
            core.conn_mut().handle_tls_ready(now);
        }
        Err(e) => core.conn_mut().handle_transport_error(now, nats_client::tls::connection_error(&e)),
    }
    core
}

/// Without the `tls` feature a server that needs TLS cannot be used.
#[cfg(not(feature = "tls"))]
fn start_tls<'a>(_shared: &'a Shared, mut core: Guard<'a>, _addr: &ServerAddr) -> Guard<'a> {
    let error = ConnectionError::Incompatible("TLS needs the `tls` feature of nats-blocking");
    core.conn_mut().handle_transport_error(Instant::now(), error);
    core
}

/// The writer thread: sends the small batches nobody else sent, TLS records of the session's own, and what
/// is left at the close.
///
/// Woken for the first bytes of a batch, it writes them at once: a lone publish goes out without delay. A
/// publisher in full flow is another matter: waking this thread for every few messages would cost a context
/// switch each time (two threads on a busy core take turns, one message at a time) and a fight for the lock.
/// So when it is woken again right after a write ([`RECENT`]), it lets the batch gather first, without being
/// woken meanwhile. The gathering time adapts: it doubles (up to [`MAX_HOLD`]) while the flow is steady (a
/// batch of [`GROW`] bytes or more came, or the publisher wrote one itself, which it does at
/// [`DIRECT_WRITE`]), and halves to nothing when only a trickle comes. While the publisher writes its own
/// batches, this thread leaves them to it and only looks again after the next hold. A steady flow then costs
/// this thread one wake-up per [`MAX_HOLD`], while the publisher writes large batches from its own thread.
pub(crate) fn write_loop(shared: Arc<Shared>) {
    let mut core = shared.lock();
    let mut hold = Duration::ZERO;
    let mut last_write: Option<std::time::Instant> = None;
    loop {
        let tls_pending = core.transport().is_some_and(|t| t.wants_write());
        let unwritten = core.conn().transmit_len();
        // Every turn of this loop waits (for a hold, or idle) or writes: it never spins holding the lock, which
        // would keep another thread's write from ever finishing.
        let mut held = false;
        if !hold.is_zero() && unwritten < DIRECT_WRITE && !core.is_urgent() && !tls_pending && !core.is_closed() {
            held = true;
            let writes = shared.own_writes();
            // Not marked idle: publishers do not wake it meanwhile.
            core = shared.signals().writer_wake.wait_timeout(core, hold).unwrap_or_else(|e| e.into_inner()).0;
            let grew = core.conn().transmit_len().saturating_sub(unwritten);
            let others_wrote = shared.own_writes() != writes;
            let steady = grew >= GROW || others_wrote;
            hold = if steady { (hold * 2).min(MAX_HOLD) } else { hold / 2 };
            if hold < MIN_HOLD {
                hold = Duration::ZERO;
            }
            if others_wrote && !hold.is_zero() && !core.is_urgent() && core.conn().transmit_len() < DIRECT_WRITE {
                // The flow writes for itself: taking its batch would only fight it for the lock and cut its
                // writes short. Look again after the next hold.
                continue;
            }
        }
        if !core.is_writing() && core.transport().is_some() && (core.conn().transmit_len() > 0 || tls_pending) {
            core = write_out(&shared, core, false);
            last_write = Some(std::time::Instant::now());
            continue;
        }
        if core.is_closed() && !core.is_writing() {
            let sock = core.set_transport(None);
            shared.space_freed(&mut core);
            if core.driver().reader_idle {
                shared.signals().reader_wake.notify_one();
            }
            drop(core);
            // A WebSocket's closing frame is a write: outside the lock.
            if let Some(sock) = sock {
                sock.close();
            }
            return;
        }
        if held {
            // Still gathering: look again after the next hold.
            continue;
        }
        // Nothing to write, or another thread holds the write turn (it wakes this one when it is done and bytes
        // remain), or someone waits for bytes the turn's holder will send.
        core.driver().writer_idle = true;
        let writes = shared.own_writes();
        core = shared.signals().writer_wake.wait(core).unwrap_or_else(|e| e.into_inner());
        core.driver().writer_idle = false;
        // Woken right after a write of its own, or after others wrote meanwhile: a flow, not a lone publish.
        if last_write.is_some_and(|t| t.elapsed() < RECENT) || shared.own_writes() != writes {
            hold = MIN_HOLD;
        }
    }
}

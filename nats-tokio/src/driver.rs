//! The driver task: one task owns the connection's I/O and moves bytes and time between the socket and the
//! core; callers' tasks write their own small latency-sensitive batches when the socket is free.
//!
//! Each step the task reads what arrived into a buffer of its own and feeds it to the core under one lock:
//! each run of messages for one subscription is gathered as it is decoded and appended to its queue in one
//! step, and each queue's consumer is woken once per read, after the lock is released. It takes what the core
//! has to send in one swap and writes it with vectored writes, and keeps one timer, moved only when the core's
//! next deadline changes.
//!
//! A command that someone waits on (a request, a reply, a flush) and a publish batch that reached
//! [`DIRECT_WRITE`] are written by the calling task itself, non-blocking and outside the lock, when no batch
//! of the driver's is in progress (`Locked::is_writing`); what the socket does not take is handed to the driver.
//! Plain sockets only: a TLS session belongs to the driver. The callers' side of this lives in `link`.

use nats_client::StdInstant as _;
use std::future::poll_fn;
use std::io::IoSlice;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use nats_client::router::Wakeups;
use nats_client::shared::{Locked, DIRECT_WRITE};
use nats_proto::conn::read_buffer::ReadBuffer;
use nats_proto::{Action as CoreAction, ConnectionError, Event as CoreEvent, Instant, ServerAddr, WriteBuffer};

use crate::link::{caller_write_done, DirectWrite, Link, Shared};
use crate::runtime::{ByteStream, Runtime, Timer};
use crate::tls::Stream;

/// Deadline for the timer while the core has none.
const IDLE: Duration = Duration::from_secs(3600);
/// Woken for bytes this soon after its last write, the driver is racing a publisher in full flow (a wake-up
/// through the runtime takes tens of microseconds).
const RECENT: Duration = Duration::from_micros(200);
/// How long it then lets a small batch gather (about one tick of a runtime's timer).
const HOLD: Duration = Duration::from_millis(1);
/// How long the last bytes (and a WebSocket's closing frame) may take to leave after a close: a server that
/// stopped reading does not keep the task and its socket for ever. The blocking client's write timeout.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    stream: Option<Stream<Arc<R::Socket>>>,
    /// The batch being written, taken from the core in one swap.
    wire: WriteBuffer,
    buf: ReadBuffer,
    /// Queues the last read filled and outcomes of requests and flushes, woken once the lock is released.
    wake: Wakeups,
    timer: R::Timer,
    armed: Instant,
    /// The timer fired since it was last armed.
    fired: bool,
    hold: Hold,
}

/// The driver's gathering of small batches (see [`Hold::gather`]).
#[derive(Default)]
struct Hold {
    /// When the last batch was written out.
    last_write: Option<Instant>,
    /// Until when a small batch gathers.
    until: Option<Instant>,
    /// Callers' direct writes counted when the driver last looked (`Shared::own_writes`).
    seen_writes: u64,
}

/// What `handle_events` must do outside the lock.
enum Step {
    Dial(ServerAddr, Duration),
    StartTls(ServerAddr, Duration),
    Credentials(Option<String>, u64, Option<nats_proto::CredentialsCallback>),
}

/// Runs the connection until it is closed.
pub(crate) async fn run<R: Runtime>(shared: Arc<Shared>) {
    let armed = Instant::now() + IDLE;
    let mut driver = Driver::<R> {
        shared,
        stream: None,
        wire: WriteBuffer::new(),
        buf: ReadBuffer::new(),
        wake: Wakeups::default(),
        timer: R::timer(armed.to_std()),
        armed,
        fired: false,
        hold: Hold::default(),
    };
    loop {
        if driver.handle_events().await {
            driver.finish().await;
            return;
        }
        poll_fn(|cx| driver.poll_step(cx)).await;
        driver.wake.wake_all();
    }
}

impl<R: Runtime> Driver<R> {
    /// Carries out the core's instructions and routes its events. True once the connection is closed.
    ///
    /// Each event is taken and routed under one hold of the lock, so a command on another task (which routes
    /// the events it finds) can never overtake one in hand. The lock is released only to dial.
    async fn handle_events(&mut self) -> bool {
        loop {
            let action = {
                let mut core = self.shared.lock();
                loop {
                    // Events first: none waits behind a dial.
                    while let Some(event) = core.conn_mut().poll_event() {
                        if let CoreEvent::Disconnected(e) = &event {
                            tracing::warn!(error = %e, "disconnected");
                        }
                        core.dispatch(&self.shared, event, &mut self.wake);
                    }
                    match core.conn_mut().poll_action() {
                        None => {
                            let closed = core.is_closed();
                            drop(core);
                            // Requests and flushes answered: their waiters take the lock first thing.
                            self.wake.wake_all();
                            return closed;
                        }
                        Some(CoreAction::Dial(addr)) => break Step::Dial(addr, core.conn().config().connect_timeout),
                        Some(CoreAction::Credentials { nonce, ask }) => {
                            break Step::Credentials(nonce, ask, core.conn().config().auth.callback.clone())
                        }
                        Some(CoreAction::StartTls(addr)) => {
                            // The handshake shares the attempt's connect deadline.
                            let now = Instant::now();
                            let deadline =
                                core.conn().connect_deadline().unwrap_or(now + core.conn().config().connect_timeout);
                            break Step::StartTls(addr, deadline.saturating_duration_since(now));
                        }
                        Some(CoreAction::CloseTransport) => {
                            // After a close, what is left is written by `finish`; after a loss the bytes went
                            // with it.
                            if !core.is_closed() {
                                self.stream = None;
                                core.set_transport(None);
                                self.wire.clear();
                                core.spare_mut().clear();
                                core.set_writing(false);
                                core.driver().caller_writing = false;
                                core.driver().driver_waits_turn = false;
                                self.shared.space_freed(&mut core);
                            }
                        }
                        // A later core's instruction this driver does not know: nothing to do.
                        Some(_) => {}
                    }
                }
            };
            self.wake.wake_all();
            let (addr, timeout) = match action {
                Step::Dial(addr, timeout) => (addr, timeout),
                Step::StartTls(addr, timeout) => {
                    self.start_tls(&addr, timeout).await;
                    continue;
                }
                Step::Credentials(nonce, ask, callback) => {
                    // Outside the lock (the callback may read a `.creds` file); it is quick, so it runs here
                    // rather than on a blocking pool the runtime may not have.
                    let credentials = match callback {
                        Some(callback) => callback(nonce.as_deref()),
                        None => Err("no credentials callback".to_owned()),
                    };
                    self.shared.lock().conn_mut().handle_credentials(Instant::now(), ask, credentials);
                    continue;
                }
            };
            tracing::debug!(server = %addr, "dialing");
            let deadline = Instant::now() + timeout;
            let socket =
                R::connect(addr.host_port(), timeout).await.map_err(|e| ConnectionError::Unreachable(e.to_string()));
            let stream = match socket {
                Ok(socket) if addr.is_websocket() => open_websocket::<R>(&self.shared, socket, &addr, deadline).await,
                Ok(socket) => Ok(Stream::Plain(socket)),
                Err(e) => Err(e),
            };
            let mut core = self.shared.lock();
            match stream {
                Ok(stream) if !core.is_closed() => {
                    core.set_transport(Some(Link(stream.direct().map(|s| s as Arc<dyn DirectWrite>))));
                    self.stream = Some(stream);
                    // A new stream: nothing of the old one may be decoded with it.
                    self.buf.clear();
                    core.conn_mut().handle_connected(Instant::now());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(server = %addr, error = %e, "dial failed");
                    core.conn_mut().handle_transport_error(Instant::now(), e);
                }
            }
        }
    }

    /// Runs the TLS handshake over the plain stream, within `timeout`.
    #[cfg(feature = "tls")]
    async fn start_tls(&mut self, addr: &ServerAddr, timeout: Duration) {
        use std::future::Future;
        let session = self.shared.settings().tls.session(addr);
        let plain = match self.stream.take() {
            Some(Stream::Plain(s)) => Some(s),
            _ => None,
        };
        // No caller may write to the socket under the session: one writing now finishes first.
        caller_write_done(&self.shared).await;
        self.shared.lock().set_transport(Some(Link(None)));
        let result = match (plain, session) {
            (Some(plain), Ok(session)) => {
                tracing::debug!(server = %addr, "TLS handshake");
                let mut deadline = R::timer((Instant::now() + timeout).to_std());
                let mut handshake = std::pin::pin!(crate::tls::TlsStream::handshake(plain, session));
                poll_fn(|cx| match handshake.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(r.map_err(|e| nats_client::tls::connection_error(&e))),
                    Poll::Pending => deadline.poll_fired(cx).map(|()| Err(ConnectionError::ConnectTimeout)),
                })
                .await
            }
            (None, _) => Err(ConnectionError::Tls("no plain stream to secure".into())),
            (_, Err(e)) => Err(e),
        };
        let mut core = self.shared.lock();
        match result {
            Ok(tls) if !core.is_closed() && core.transport().is_some() => {
                self.stream = Some(Stream::Tls(Box::new(tls)));
                core.conn_mut().handle_tls_ready(Instant::now());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(server = %addr, error = %e, "TLS failed");
                core.conn_mut().handle_transport_error(Instant::now(), e);
            }
        }
    }

    /// Without the `tls` feature a server that needs TLS cannot be used.
    #[cfg(not(feature = "tls"))]
    async fn start_tls(&mut self, _addr: &ServerAddr, _timeout: Duration) {
        let error = ConnectionError::Incompatible("TLS needs the `tls` feature of nats-tokio");
        self.shared.lock().conn_mut().handle_transport_error(Instant::now(), error);
    }

    /// Writes what is left after a close, then drops the stream.
    async fn finish(&mut self) {
        // A caller's write in progress goes first: what is left comes after it on the wire.
        caller_write_done(&self.shared).await;
        {
            let mut core = self.shared.lock();
            if !self.wire.has_remaining() {
                std::mem::swap(&mut self.wire, core.spare_mut());
            }
            core.set_transport(None);
            self.shared.take_unwritten(&mut core, &mut self.wire);
        }
        if let Some(mut stream) = self.stream.take() {
            self.timer.reset((Instant::now() + FINISH_TIMEOUT).to_std());
            let (timer, wire) = (&mut self.timer, &mut self.wire);
            let gave_up = poll_fn(|cx| {
                if timer.poll_fired(cx).is_ready() {
                    return Poll::Ready(true);
                }
                write_some(&mut stream, wire, cx).map(|_| false)
            })
            .await;
            // A WebSocket ends with its closing frame.
            #[cfg(feature = "websocket")]
            if let (false, Stream::Ws(ws)) = (gave_up, &mut stream) {
                ws.queue_close();
                let _ = poll_fn(|cx| match timer.poll_fired(cx) {
                    Poll::Ready(()) => Poll::Ready(Ok(())),
                    Poll::Pending => ws.poll_flush(cx),
                })
                .await;
            }
            #[cfg(not(feature = "websocket"))]
            let _ = gave_up;
        }
    }

    /// One step: write, read, fire the timer. Ready when something happened that may have produced events.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut core = self.shared.lock();
            // Registered before looking, so a command issued after this point wakes the task.
            core.driver().task_waker = Some(cx.waker().clone());
            let now = Instant::now();
            // While a caller holds the turn the driver leaves writing alone: the caller wakes the task when it
            // gives the turn back with bytes left for it (see `write_direct`). A hold that ran out meanwhile ends
            // here: left in force, it would keep publishes from waking the task, with no timer left to end it.
            if core.driver().caller_writing {
                if self.hold.until.is_some_and(|until| until <= now) {
                    self.hold.until = None;
                    core.driver().holding = false;
                }
            } else {
                if !self.wire.has_remaining() && !core.spare().has_remaining() {
                    // The last batch is out: the write turn is free, so a command someone waits on goes out
                    // from its caller even while the driver lets publishes gather.
                    core.set_writing(false);
                }
                if self.stream.is_some() && !self.hold.gather(&self.wire, &self.shared, &mut core, now) {
                    take_batch(&mut self.wire, &self.shared, &mut core);
                }
            }
            if core.is_closed() || core.conn().has_action() {
                return Poll::Ready(());
            }
            // The timer only ever moves earlier (or after it fired): a later deadline can wait for an early
            // firing, so a command that adds one need not wake the task. One that adds an earlier one does.
            // A hold that ran out is never armed again (it ended above, or `gather` ends it): armed, its past
            // deadline fired at once, again and again, and the task spun for as long as a caller wrote (seen
            // under callgrind: 99 % of the instructions).
            let hold = self.hold.until.filter(|&until| until > now);
            let next = core.conn().poll_timeout().unwrap_or(now + IDLE).min(hold.unwrap_or(now + IDLE));
            if next < self.armed || self.fired {
                self.timer.reset(next.to_std());
                self.armed = next;
                self.fired = false;
            }
            core.driver().timer_at = Some(self.armed);
        }
        let mut lost = false;
        let mut failed = None;
        let mut input = false;
        // A batch finished this step: go round again, the core may hold the next one.
        let mut drained = false;
        if let Some(stream) = self.stream.as_mut() {
            let had_bytes = self.wire.has_remaining();
            match write_some(stream, &mut self.wire, cx) {
                Poll::Ready(Ok(())) => {
                    drained = had_bytes;
                    if had_bytes {
                        self.hold.last_write = Some(Instant::now());
                    }
                }
                Poll::Ready(Err(())) => lost = true,
                Poll::Pending => {}
            }
            self.buf.make_room();
            match stream.poll_read_buf(cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => lost = true,
                Poll::Ready(Err(e)) => match transport_error(&e) {
                    Some(error) => failed = Some(error),
                    None => lost = true,
                },
                Poll::Ready(Ok(_)) => input = true,
                Poll::Pending => {}
            }
        }
        let fired = self.timer.poll_fired(cx).is_ready();
        self.fired |= fired;
        if !lost && failed.is_none() && !input && !fired {
            return if drained { Poll::Ready(()) } else { Poll::Pending };
        }
        let now = Instant::now();
        let mut core = self.shared.lock();
        if input {
            core.ingest(&self.shared, now, &mut self.buf);
            core.take_filled(&mut self.wake);
        }
        if let Some(e) = failed {
            core.conn_mut().handle_transport_error(now, e);
        } else if lost {
            core.conn_mut().handle_eof(now);
        }
        if fired {
            // Re-armed on the next step from the core's new deadline.
            core.conn_mut().handle_timeout(now);
        }
        Poll::Ready(())
    }
}

impl Hold {
    /// Whether to let the small batch waiting in the core gather instead of writing it now.
    ///
    /// Woken for the first bytes of a batch, the driver writes them at once: a lone publish goes out without
    /// delay. But woken again right after its last write ([`RECENT`]), it is racing a publisher in full
    /// flow, one small batch at a time, for the lock and the CPU. Then it lets the batch gather for
    /// [`HOLD`], unwoken by publishes (`DriverState::holding`), while the publisher writes its own large batches
    /// (at [`DIRECT_WRITE`]). The same when callers wrote batches of their own since it last looked: the flow
    /// writes for itself, and the driver looks again after another hold instead of taking its batch. A command
    /// someone waits on still wakes it at once.
    fn gather(&mut self, wire: &WriteBuffer, shared: &Shared, core: &mut Locked<Link>, now: Instant) -> bool {
        let writes = shared.own_writes();
        let others_wrote = std::mem::replace(&mut self.seen_writes, writes) != writes;
        let small = core.conn().transmit_len() < DIRECT_WRITE && !core.spare().has_remaining();
        if wire.has_remaining() || !small || core.is_urgent() || core.is_closed() {
            self.until = None;
        } else if self.until.is_none()
            && core.conn().transmit_len() > 0
            && (others_wrote || self.last_write.is_some_and(|t| now - t < RECENT))
        {
            self.until = Some(now + HOLD);
        } else if self.until.is_some_and(|t| now >= t) {
            self.until = others_wrote.then_some(now + HOLD);
        }
        core.driver().holding = self.until.is_some();
        core.driver().holding
    }
}

/// Takes the next batch to write into `wire`, if the last one is done: a caller's unfinished direct write
/// first, then what waits in the core. The driver keeps the write turn while a batch is in hand.
fn take_batch(wire: &mut WriteBuffer, shared: &Shared, core: &mut Locked<Link>) {
    if wire.has_remaining() {
        return;
    }
    if core.spare().has_remaining() {
        std::mem::swap(wire, core.spare_mut());
    } else if core.conn().transmit_len() > 0 {
        // What waits in the core is what back-pressure counts: take it only when the last batch is out.
        shared.take_unwritten(core, wire);
    }
    core.set_writing(wire.has_remaining());
}

#[cfg(feature = "websocket")]
use crate::websocket::open as open_websocket;

/// Without the `websocket` feature a WebSocket URL cannot be used.
#[cfg(not(feature = "websocket"))]
async fn open_websocket<R: Runtime>(
    _shared: &Arc<Shared>,
    _socket: Arc<R::Socket>,
    _addr: &ServerAddr,
    _deadline: Instant,
) -> Result<Stream<Arc<R::Socket>>, ConnectionError> {
    Err(ConnectionError::Incompatible("WebSocket needs the `websocket` feature of nats-tokio"))
}

/// What a failed read means to the core, when it is more than a lost connection: a TLS failure (kind
/// `InvalidData`), or a WebSocket's (the server's close frame, a broken frame).
fn transport_error(e: &std::io::Error) -> Option<ConnectionError> {
    #[cfg(feature = "websocket")]
    if let Some(error) = nats_client::ws::connection_error(e) {
        return Some(error);
    }
    (e.kind() == std::io::ErrorKind::InvalidData).then(|| ConnectionError::Tls(e.to_string()))
}

/// Writes as much of `wire` as the stream takes now. Ready(Ok) when all is written, Ready(Err) when the
/// stream failed, Pending when it is full (the task is woken when it drains).
fn write_some<S: ByteStream>(stream: &mut S, wire: &mut WriteBuffer, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
    while wire.has_remaining() {
        let mut iov = [IoSlice::new(&[]); 64];
        let n = wire.chunks_vectored(&mut iov);
        match stream.poll_write_vectored(cx, &iov[..n]) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                wire.clear();
                return Poll::Ready(Err(()));
            }
            Poll::Ready(Ok(written)) => wire.advance(written),
            Poll::Pending => return Poll::Pending,
        }
    }
    match stream.poll_flush(cx) {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
        Poll::Ready(Err(_)) => Poll::Ready(Err(())),
        Poll::Pending => Poll::Pending,
    }
}

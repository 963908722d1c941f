//! The driver task: one task owns the socket and moves bytes and time between it and the core.
//!
//! Commands lock the core only to encode and then wake this task. Each step the task takes everything the
//! core has to send in one swap and writes it with vectored writes, reads what arrived into the core, and
//! keeps one timer that is moved only when the core's next deadline changes.

use std::future::poll_fn;
use std::io::IoSlice;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Buf;
use nats_client::shared::Shared as SharedState;
use nats_proto::{ConnectionError, Event as CoreEvent, ServerAddr, WriteBuffer};

use crate::runtime::{Runtime, Timer, Transport};
use crate::tls::Stream;

/// The shared state; the task owns the stream, so the transport marker is `()`.
pub(crate) type Shared = SharedState<()>;

/// Bytes read per step before the task handles what they produced.
const READ_CHUNK: usize = 64 * 1024;
/// Deadline for the timer while the core has none.
const IDLE: Duration = Duration::from_secs(3600);

struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    stream: Option<Stream<R::Stream>>,
    wire: WriteBuffer,
    buf: Vec<u8>,
    timer: R::Timer,
    armed: Instant,
}

/// What `handle_events` must do outside the lock.
enum Action {
    Dial(ServerAddr, Duration),
    StartTls(ServerAddr, Duration),
}

/// Runs the connection until it is closed.
pub(crate) async fn run<R: Runtime>(shared: Arc<Shared>) {
    let armed = Instant::now() + IDLE;
    let mut driver = Driver::<R> {
        shared,
        stream: None,
        wire: WriteBuffer::new(),
        buf: vec![0; READ_CHUNK],
        timer: R::timer(armed),
        armed,
    };
    loop {
        if driver.handle_events().await {
            driver.finish().await;
            return;
        }
        poll_fn(|cx| driver.poll_step(cx)).await;
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
                    match Shared::next_event(&mut core) {
                        None => {
                            core.wake_consumers();
                            return core.closed.is_some();
                        }
                        Some(CoreEvent::Dial(addr)) => break Action::Dial(addr, core.conn.config().connect_timeout),
                        Some(CoreEvent::StartTls(addr)) => {
                            // The handshake shares the attempt's connect deadline.
                            let now = Instant::now();
                            let deadline =
                                core.conn.connect_deadline().unwrap_or(now + core.conn.config().connect_timeout);
                            break Action::StartTls(addr, deadline.saturating_duration_since(now));
                        }
                        Some(CoreEvent::CloseTransport) => {
                            // After a close, what is left is written by `finish`; after a loss the bytes went
                            // with it.
                            if core.closed.is_none() {
                                self.stream = None;
                                core.transport = None;
                                self.wire.clear();
                                self.shared.space_freed(&mut core);
                            }
                        }
                        Some(other) => {
                            if let CoreEvent::Disconnected(e) = &other {
                                tracing::warn!(error = %e, "disconnected");
                            }
                            core.dispatch(&self.shared, other);
                        }
                    }
                }
            };
            self.shared.lock().wake_consumers();
            let (addr, timeout) = match action {
                Action::Dial(addr, timeout) => (addr, timeout),
                Action::StartTls(addr, timeout) => {
                    self.start_tls(&addr, timeout).await;
                    continue;
                }
            };
            tracing::debug!(server = %addr, "dialing");
            let stream = R::connect(addr.host_port(), timeout).await;
            let mut core = self.shared.lock();
            match stream {
                Ok(stream) if core.closed.is_none() => {
                    self.stream = Some(Stream::Plain(stream));
                    core.transport = Some(());
                    core.conn.handle_connected(Instant::now());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(server = %addr, error = %e, "dial failed");
                    core.conn.handle_transport_error(Instant::now(), ConnectionError::Unreachable(e.to_string()));
                }
            }
        }
    }

    /// Runs the TLS handshake over the plain stream, within `timeout`.
    #[cfg(feature = "tls")]
    async fn start_tls(&mut self, addr: &ServerAddr, timeout: Duration) {
        use std::future::Future;
        let session = self.shared.settings.tls.session(addr);
        let plain = match self.stream.take() {
            Some(Stream::Plain(s)) => Some(s),
            _ => None,
        };
        let result = match (plain, session) {
            (Some(plain), Ok(session)) => {
                tracing::debug!(server = %addr, "TLS handshake");
                let mut deadline = R::timer(Instant::now() + timeout);
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
            Ok(tls) if core.closed.is_none() && core.transport.is_some() => {
                self.stream = Some(Stream::Tls(Box::new(tls)));
                core.conn.handle_tls_ready(Instant::now());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(server = %addr, error = %e, "TLS failed");
                core.conn.handle_transport_error(Instant::now(), e);
            }
        }
    }

    /// Without the `tls` feature a server that needs TLS cannot be used.
    #[cfg(not(feature = "tls"))]
    async fn start_tls(&mut self, _addr: &ServerAddr, _timeout: Duration) {
        let error = ConnectionError::Incompatible("TLS needs the `tls` feature of nats-tokio");
        self.shared.lock().conn.handle_transport_error(Instant::now(), error);
    }

    /// Writes what is left after a close, then drops the stream.
    async fn finish(&mut self) {
        {
            let mut core = self.shared.lock();
            core.conn.poll_transmit(&mut self.wire);
            core.transport = None;
            self.shared.space_freed(&mut core);
        }
        if let Some(mut stream) = self.stream.take() {
            let _ = poll_fn(|cx| write_some(&mut stream, &mut self.wire, cx).map(|r| r.map(|_| ()))).await;
        }
    }

    /// One step: write, read, fire the timer. Ready when something happened that may have produced events.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = {
            let mut core = self.shared.lock();
            // Registered before looking, so a command issued after this point wakes the task.
            core.task_waker = Some(cx.waker().clone());
            // Take the next batch only when the last one is written: what waits in the core is what
            // back-pressure counts.
            if !self.wire.has_remaining() && core.conn.transmit_len() > 0 && self.stream.is_some() {
                core.conn.poll_transmit(&mut self.wire);
                self.shared.space_freed(&mut core);
            }
            if !core.deferred.is_empty() || core.closed.is_some() {
                return Poll::Ready(());
            }
            core.conn.poll_timeout()
        };
        let mut lost = false;
        let mut tls_error = None;
        let mut input = None;
        // A batch finished this step: go round again, the core may hold the next one.
        let mut drained = false;
        if let Some(stream) = self.stream.as_mut() {
            let had_bytes = self.wire.has_remaining();
            match write_some(stream, &mut self.wire, cx) {
                Poll::Ready(Ok(())) => drained = had_bytes,
                Poll::Ready(Err(())) => lost = true,
                Poll::Pending => {}
            }
            match stream.poll_read(cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => lost = true,
                Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    tls_error = Some(ConnectionError::Tls(e.to_string()))
                }
                Poll::Ready(Err(_)) => lost = true,
                Poll::Ready(Ok(n)) => input = Some(n),
                Poll::Pending => {}
            }
        }
        let deadline = deadline.unwrap_or_else(|| Instant::now() + IDLE);
        if deadline != self.armed {
            self.timer.reset(deadline);
            self.armed = deadline;
        }
        let fired = self.timer.poll_fired(cx).is_ready();
        if !lost && tls_error.is_none() && input.is_none() && !fired {
            return if drained { Poll::Ready(()) } else { Poll::Pending };
        }
        let now = Instant::now();
        let mut core = self.shared.lock();
        if let Some(n) = input {
            core.conn.handle_input(now, &self.buf[..n]);
        }
        if let Some(e) = tls_error {
            core.conn.handle_transport_error(now, e);
        } else if lost {
            core.conn.handle_eof(now);
        }
        if fired {
            // Re-arm on the next step from the core's new deadline.
            self.armed = now;
            core.conn.handle_timeout(now);
        }
        Poll::Ready(())
    }
}

/// Writes as much of `wire` as the stream takes now. Ready(Ok) when all is written, Ready(Err) when the
/// stream failed, Pending when it is full (the task is woken when it drains).
fn write_some<S: Transport>(stream: &mut S, wire: &mut WriteBuffer, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
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

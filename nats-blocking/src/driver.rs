//! The driver: two threads around one `nats_proto::Connection`.
//!
//! - The reader thread dials when the core asks, reads with a timeout taken from `poll_timeout`, feeds bytes and
//!   time into the core, and routes its events (messages to subscription queues, replies to waiting requests).
//! - The writer thread takes everything the core has to send in one swap and writes it outside the lock, so
//!   while it is in a system call, publishers keep filling the next batch.
//!
//! Publishers lock the core only to encode. Every socket read and write happens outside the lock.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nats_client::shared::{Core, Shared as SharedState};
use nats_proto::{ConnectionError, Event as CoreEvent, Headers, ServerAddr, State, WriteBuffer};

use crate::transport::Transport;
use crate::Error;

/// The shared state, with the socket as the transport.
pub(crate) type Shared = SharedState<Arc<Transport>>;

/// A write that makes no progress for this long means the server is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the reader sleeps without looking at the core's timers.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// Publishes, then waits while too many bytes are unwritten (back-pressure on publishers).
pub(crate) fn publish(
    shared: &Shared,
    subject: &[u8],
    reply: Option<&[u8]>,
    headers: Option<&Headers>,
    payload: Bytes,
) -> Result<(), Error> {
    let mut core = shared.lock();
    core.conn.publish(subject, reply, headers, payload)?;
    shared.wake(&mut core);
    while Shared::is_backed_up(&core) {
        core = wait(&shared.space, core);
    }
    Ok(())
}

fn wait<'a>(
    cv: &std::sync::Condvar,
    core: MutexGuard<'a, Core<Arc<Transport>>>,
) -> MutexGuard<'a, Core<Arc<Transport>>> {
    cv.wait(core).unwrap_or_else(|e| e.into_inner())
}

/// Opens a TCP connection to the first address of `addr` that answers.
fn dial(addr: &ServerAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(ErrorKind::NotFound, "no address");
    for a in addr.host_port().to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(sock) => {
                // Small writes (requests, PONGs) go out at once; the writer batches on its own.
                let _ = sock.set_nodelay(true);
                let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
                return Ok(sock);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The reader thread.
pub(crate) fn read_loop(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 64 * 1024];
    // Ciphertext on its way in, with TLS.
    let mut scratch = vec![0u8; if cfg!(feature = "tls") { 64 * 1024 } else { 0 }];
    // The read timeout last set, and on which socket: a system call only when it changes.
    let mut timeout_set: Option<(Arc<Transport>, Duration)> = None;
    let mut core = shared.lock();
    loop {
        // Handle everything the core has to say; dialing happens outside the lock.
        while let Some(event) = Shared::next_event(&mut core) {
            match event {
                CoreEvent::Dial(addr) => {
                    let timeout = core.conn.config().connect_timeout;
                    core.wake_consumers();
                    drop(core);
                    let sock = dial(&addr, timeout);
                    core = shared.lock();
                    match sock {
                        Ok(sock) if core.closed.is_none() => {
                            core.transport = Some(Arc::new(Transport::Plain(sock)));
                            core.conn.handle_connected(Instant::now());
                        }
                        Ok(_) => {}
                        Err(e) => core
                            .conn
                            .handle_transport_error(Instant::now(), ConnectionError::Unreachable(e.to_string())),
                    }
                }
                CoreEvent::StartTls(addr) => {
                    core = start_tls(&shared, core, &addr);
                }
                CoreEvent::CloseTransport => {
                    // After a close the writer sends what is left and shuts the socket; after a loss, do it now.
                    if core.conn.state() != State::Closed {
                        if let Some(sock) = core.transport.take() {
                            sock.shutdown();
                        }
                    }
                    // Unsent bytes went with the connection: publishers waiting for room may go on.
                    shared.space_freed(&mut core);
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
        let Some(sock) = core.transport.clone() else {
            core.reader_idle = true;
            core = shared.reader_wake.wait_timeout(core, sleep).unwrap_or_else(|e| e.into_inner()).0;
            core.reader_idle = false;
            core.conn.handle_timeout(Instant::now());
            continue;
        };
        drop(core);
        let timeout = sleep.max(Duration::from_millis(1));
        if !timeout_set.as_ref().is_some_and(|(s, t)| Arc::ptr_eq(s, &sock) && *t == timeout) {
            sock.set_read_timeout(timeout);
            timeout_set = Some((sock.clone(), timeout));
        }
        let read = sock.read(&mut buf, &mut scratch);
        core = shared.lock();
        let now = Instant::now();
        // A read from a socket the core has since given up on is ignored.
        if core.transport.as_ref().is_some_and(|s| Arc::ptr_eq(s, &sock)) {
            match read {
                Ok(0) => core.conn.handle_eof(now),
                Ok(n) => core.conn.handle_input(now, &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    core.conn.handle_transport_error(now, ConnectionError::Tls(e.to_string()))
                }
                Err(_) => core.conn.handle_eof(now),
            }
            // The session may have an alert or a key update to send: that is the writer's job.
            if sock.wants_write() && core.writer_idle {
                shared.writer_wake.notify_one();
            }
        }
        core.conn.handle_timeout(now);
    }
}

/// Replaces the plain socket with a TLS session over it, after a handshake done outside the lock.
#[cfg(feature = "tls")]
fn start_tls<'a>(
    shared: &'a Shared,
    mut core: MutexGuard<'a, Core<Arc<Transport>>>,
    addr: &ServerAddr,
) -> MutexGuard<'a, Core<Arc<Transport>>> {
    let plain = match core.transport.as_deref() {
        Some(Transport::Plain(sock)) => sock.try_clone(),
        _ => Err(std::io::Error::other("no plain socket to secure")),
    };
    // The handshake shares the attempt's connect deadline.
    let deadline = core.conn.connect_deadline().unwrap_or_else(|| Instant::now() + core.conn.config().connect_timeout);
    let plain = match plain {
        Ok(p) => p,
        Err(e) => {
            core.conn.handle_transport_error(Instant::now(), ConnectionError::Unreachable(e.to_string()));
            return core;
        }
    };
    let before = core.transport.clone();
    drop(core);
    // Building the session may read the system's trust store the first time: outside the lock.
    let secured = shared
        .settings
        .tls
        .session(addr)
        .map_err(|e| match e {
            ConnectionError::Tls(why) => std::io::Error::new(ErrorKind::InvalidData, why),
            other => std::io::Error::other(other.to_string()),
        })
        .and_then(|session| crate::transport::handshake(plain, session, deadline));
    let mut core = shared.lock();
    let now = Instant::now();
    // The core may have given up on this socket meanwhile (closed, timed out).
    if !core.transport.as_ref().zip(before.as_ref()).is_some_and(|(a, b)| Arc::ptr_eq(a, b)) {
        return core;
    }
    match secured {
        Ok(transport) => {
            core.transport = Some(Arc::new(transport));
            core.conn.handle_tls_ready(now);
        }
        Err(e) => core.conn.handle_transport_error(now, nats_client::tls::connection_error(&e)),
    }
    core
}

/// Without the `tls` feature a server that needs TLS cannot be used.
#[cfg(not(feature = "tls"))]
fn start_tls<'a>(
    _shared: &'a Shared,
    mut core: MutexGuard<'a, Core<Arc<Transport>>>,
    _addr: &ServerAddr,
) -> MutexGuard<'a, Core<Arc<Transport>>> {
    let error = ConnectionError::Incompatible("TLS needs the `tls` feature of nats-blocking");
    core.conn.handle_transport_error(Instant::now(), error);
    core
}

/// The writer thread.
pub(crate) fn write_loop(shared: Arc<Shared>) {
    let mut wire = WriteBuffer::new();
    let mut sealed = Vec::new();
    let mut core = shared.lock();
    loop {
        let tls_pending = core.transport.as_ref().is_some_and(|t| t.wants_write());
        if (core.conn.transmit_len() > 0 || tls_pending) && core.transport.is_some() {
            core.conn.poll_transmit(&mut wire);
            // The core's buffer is empty again: publishers waiting for room may go on.
            shared.space_freed(&mut core);
            let sock = core.transport.clone();
            drop(core);
            if let Some(sock) = sock {
                if sock.write_all(&mut wire, &mut sealed).is_err() {
                    // The reader sees the shut socket and tells the core.
                    sock.shutdown();
                    wire.clear();
                }
            }
            core = shared.lock();
            continue;
        }
        if core.closed.is_some() {
            if let Some(sock) = core.transport.take() {
                sock.shutdown();
            }
            shared.space_freed(&mut core);
            if core.reader_idle {
                shared.reader_wake.notify_one();
            }
            return;
        }
        core.writer_idle = true;
        core = wait(&shared.writer_wake, core);
        core.writer_idle = false;
    }
}

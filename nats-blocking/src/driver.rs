//! The driver: two threads around one `nats_proto::Connection`.
//!
//! - The reader thread dials when the core asks, reads with a timeout taken from `poll_timeout`, feeds bytes and
//!   time into the core, and routes its events (messages to subscription queues, replies to waiting requests).
//! - The writer thread takes everything the core has to send in one swap and writes it outside the lock, so
//!   while it is in a system call, publishers keep filling the next batch.
//!
//! Publishers lock the core only to encode. Every socket read and write happens outside the lock.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use nats_client::shared::{Core, Shared as SharedState};
use nats_proto::{ConnectionError, Event as CoreEvent, Headers, ServerAddr, State, WriteBuffer};

use crate::Error;

/// The shared state, with the socket as the transport.
pub(crate) type Shared = SharedState<Arc<TcpStream>>;

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
    core: MutexGuard<'a, Core<Arc<TcpStream>>>,
) -> MutexGuard<'a, Core<Arc<TcpStream>>> {
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
    // The read timeout last set, and on which socket: a system call only when it changes.
    let mut timeout_set: Option<(Arc<TcpStream>, Duration)> = None;
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
                            core.transport = Some(Arc::new(sock));
                            core.conn.handle_connected(Instant::now());
                        }
                        Ok(_) => {}
                        Err(e) => core
                            .conn
                            .handle_transport_error(Instant::now(), ConnectionError::Unreachable(e.to_string())),
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
                        if let Some(sock) = core.transport.take() {
                            let _ = sock.shutdown(Shutdown::Both);
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
            let _ = sock.set_read_timeout(Some(timeout));
            timeout_set = Some((sock.clone(), timeout));
        }
        let read = (&*sock).read(&mut buf);
        core = shared.lock();
        let now = Instant::now();
        // A read from a socket the core has since given up on is ignored.
        if core.transport.as_ref().is_some_and(|s| Arc::ptr_eq(s, &sock)) {
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
        if core.conn.transmit_len() > 0 && core.transport.is_some() {
            core.conn.poll_transmit(&mut wire);
            // The core's buffer is empty again: publishers waiting for room may go on.
            shared.space_freed(&mut core);
            let sock = core.transport.clone();
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
            if let Some(sock) = core.transport.take() {
                let _ = sock.shutdown(Shutdown::Both);
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

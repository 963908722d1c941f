//! The socket, plain or with TLS, and with WebSocket framing over either (`crate::websocket`).
//!
//! Reads land in the driver's own `BytesMut`, which the core decodes in place: what a message holds is a
//! slice of the buffer the kernel wrote into.
//!
//! With TLS, the rustls session sits behind a mutex that is never held across a system call: the reader
//! thread reads ciphertext from the socket unlocked and then locks to decrypt; a writer locks to encrypt and
//! then writes the ciphertext unlocked. One writer at a time holds the connection's write turn (a caller
//! thread or the writer thread), so records leave in the order they were sealed; ciphertext the reader's
//! side produces (a TLS alert, a key update) waits in the session until the writer thread is woken to send
//! it.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
#[cfg(feature = "tls")]
use std::time::Instant;

use bytes::{Buf, BytesMut};
use nats_proto::conn::read_buffer::MIN_READ;
use nats_proto::WriteBuffer;

#[cfg(feature = "tls")]
use nats_client::tls::TlsSession;

/// A connected socket.
pub(crate) enum Transport {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls {
        sock: TcpStream,
        session: Box<std::sync::Mutex<TlsSession>>,
        /// Ciphertext on its way out; only the holder of the write turn uses it.
        sealed: std::sync::Mutex<Vec<u8>>,
        /// Ciphertext on its way in; only the reader thread uses it.
        scratch: std::sync::Mutex<Vec<u8>>,
    },
    /// WebSocket frames over a plain or TLS transport.
    #[cfg(feature = "websocket")]
    Ws(Box<crate::websocket::WsLayer>),
}

/// How much of a read buffer's free space a read may fill. Reads into a `BytesMut` must first initialise the
/// space they use: this keeps that to about what the last reads needed, so a small reply does not pay for
/// clearing 64 KiB.
#[derive(Debug)]
pub(crate) struct ReadSize(usize);

impl ReadSize {
    pub(crate) fn new() -> Self {
        Self(MIN_READ)
    }

    /// Learns from a read of `n` bytes into `offered`: a full read asks for more next time, a small one for less.
    fn learn(&mut self, n: usize, offered: usize) {
        if n == offered {
            self.0 = (self.0 * 2).min(1 << 20);
        } else if n < self.0 / 4 {
            self.0 = (self.0 / 2).max(MIN_READ);
        }
    }
}

impl Transport {
    pub(crate) fn sock(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls { sock, .. } => sock,
            #[cfg(feature = "websocket")]
            Transport::Ws(ws) => ws.inner().sock(),
        }
    }

    /// Ends the connection politely where the transport has a way to (a WebSocket's closing frame), then
    /// shuts the socket. For a close the user asked for; a lost connection is only shut.
    pub(crate) fn close(&self) {
        #[cfg(feature = "websocket")]
        if let Transport::Ws(ws) = self {
            ws.send_close();
        }
        self.shutdown();
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.sock().shutdown(Shutdown::Both);
    }

    pub(crate) fn set_read_timeout(&self, timeout: Duration) {
        let _ = self.sock().set_read_timeout(Some(timeout));
    }

    /// True when the transport has bytes of its own to send (TLS records, a WebSocket pong).
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls { session, .. } => lock(session).wants_write(),
            #[cfg(feature = "websocket")]
            Transport::Ws(ws) => ws.wants_write(),
        }
    }

    /// Reads plaintext onto the end of `buf` (growing it as `size` suggests). Errors of kind `InvalidData` are
    /// TLS failures.
    pub(crate) fn read_into(&self, buf: &mut BytesMut, size: &mut ReadSize) -> io::Result<usize> {
        #[cfg(feature = "websocket")]
        if let Transport::Ws(ws) = self {
            return ws.read_into(buf, size);
        }
        let start = buf.len();
        let offered = (buf.capacity() - start).clamp(1, size.0);
        buf.resize(start + offered, 0);
        let read = self.read(&mut buf[start..]);
        buf.truncate(start + *read.as_ref().unwrap_or(&0));
        if let Ok(n) = read {
            size.learn(n, offered);
        }
        read
    }

    /// Reads plaintext into `buf`.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => (&*sock).read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls { sock, session, scratch, .. } => loop {
                match lock(session).read_plaintext(buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    done => return done,
                }
                let mut scratch = lock(scratch);
                let n = (&*sock).read(&mut scratch)?;
                if n == 0 {
                    return Ok(0);
                }
                let mut session = lock(session);
                session.read_tls(&scratch[..n])?;
                // Ciphertext to send (a key update, an alert): back to the driver, which wakes the writer.
                if session.wants_write() {
                    return Err(ErrorKind::WouldBlock.into());
                }
            },
            #[cfg(feature = "websocket")]
            Transport::Ws(_) => Err(io::Error::other("a WebSocket is read through read_into")),
        }
    }

    /// Writes some of `slices` (all of them from one write turn's holder), returning how many bytes were
    /// taken: written to the socket, or sealed into TLS records that were.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn write_slices(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => loop {
                match (&*sock).write_vectored(slices) {
                    Ok(0) if slices.iter().any(|s| !s.is_empty()) => return Err(ErrorKind::WriteZero.into()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    done => return done,
                }
            },
            #[cfg(feature = "tls")]
            Transport::Tls { sock, session, sealed, .. } => {
                let mut sealed = lock(sealed);
                sealed.clear();
                let taken = {
                    let mut session = lock(session);
                    let taken = session.write_plaintext(slices)?;
                    session.write_tls(&mut sealed);
                    taken
                };
                if taken == 0 && sealed.is_empty() && slices.iter().any(|s| !s.is_empty()) {
                    return Err(ErrorKind::WriteZero.into());
                }
                (&*sock).write_all(&sealed)?;
                Ok(taken)
            }
            #[cfg(feature = "websocket")]
            Transport::Ws(_) => Err(io::Error::other("a WebSocket is not nested")),
        }
    }

    /// Writes all of `wire` (and any ciphertext the session holds). Only the holder of the write turn calls it.
    pub(crate) fn write_all(&self, wire: &mut WriteBuffer) -> io::Result<()> {
        match self {
            Transport::Plain(sock) => write_vectored_all(sock, wire),
            #[cfg(feature = "websocket")]
            Transport::Ws(ws) => ws.write_all(wire),
            #[cfg(feature = "tls")]
            Transport::Tls { sock, session, sealed, .. } => loop {
                let mut sealed = lock(sealed);
                sealed.clear();
                {
                    let mut session = lock(session);
                    if wire.has_remaining() {
                        let mut iov = [IoSlice::new(&[]); 64];
                        let n = wire.chunks_vectored(&mut iov);
                        let taken = session.write_plaintext(&iov[..n])?;
                        wire.advance(taken);
                    }
                    session.write_tls(&mut sealed);
                }
                if sealed.is_empty() {
                    if wire.has_remaining() {
                        return Err(ErrorKind::WriteZero.into());
                    }
                    return Ok(());
                }
                (&*sock).write_all(&sealed)?;
            },
        }
    }
}

/// Writes all of `wire` with vectored writes.
fn write_vectored_all(sock: &TcpStream, wire: &mut WriteBuffer) -> io::Result<()> {
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

#[cfg(any(feature = "tls", feature = "websocket"))]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the TLS handshake on `sock` before either thread uses it, within `deadline`.
#[cfg(feature = "tls")]
pub(crate) fn handshake(sock: TcpStream, mut session: TlsSession, deadline: Instant) -> io::Result<Transport> {
    let mut scratch = vec![0u8; 16 * 1024];
    let mut sealed = Vec::new();
    loop {
        if session.wants_write() {
            sealed.clear();
            session.write_tls(&mut sealed);
            (&sock).write_all(&sealed)?;
            continue;
        }
        if !session.is_handshaking() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "TLS handshake timed out"));
        }
        sock.set_read_timeout(Some(left))?;
        let n = match (&sock).read(&mut scratch) {
            Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed during the TLS handshake")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(io::Error::new(ErrorKind::TimedOut, "TLS handshake timed out"))
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = session.read_tls(&scratch[..n]) {
            // Tell the server why (the alert rustls queued), then fail.
            sealed.clear();
            session.write_tls(&mut sealed);
            let _ = (&sock).write_all(&sealed);
            return Err(e);
        }
    }
    Ok(Transport::Tls {
        sock,
        session: Box::new(std::sync::Mutex::new(session)),
        sealed: std::sync::Mutex::new(Vec::new()),
        scratch: std::sync::Mutex::new(vec![0; 64 * 1024]),
    })
}

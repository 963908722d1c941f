//! The socket, plain or with TLS.
//!
//! With TLS, the rustls session sits behind a mutex that is never held across a system call: the reader
//! thread reads ciphertext from the socket unlocked and then locks to decrypt; the writer thread locks to
//! encrypt and then writes the ciphertext unlocked. Only the writer thread writes to the socket, so records
//! leave in the order they were sealed; ciphertext the reader's side produces (a TLS alert, a key update)
//! waits in the session until the writer is woken to send it.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
#[cfg(feature = "tls")]
use std::time::Instant;

use bytes::Buf;
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
    },
}

impl Transport {
    fn sock(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls { sock, .. } => sock,
        }
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.sock().shutdown(Shutdown::Both);
    }

    pub(crate) fn set_read_timeout(&self, timeout: Duration) {
        let _ = self.sock().set_read_timeout(Some(timeout));
    }

    /// True when the TLS session has ciphertext of its own to send.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls { session, .. } => lock(session).wants_write(),
        }
    }

    /// Reads plaintext. `scratch` holds ciphertext on its way in. Errors of kind `InvalidData` are TLS failures.
    pub(crate) fn read(&self, buf: &mut [u8], scratch: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => {
                let _ = scratch;
                (&*sock).read(buf)
            }
            #[cfg(feature = "tls")]
            Transport::Tls { sock, session } => loop {
                match lock(session).read_plaintext(buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    done => return done,
                }
                let n = (&*sock).read(scratch)?;
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
        }
    }

    /// Writes all of `wire` (and any ciphertext the session holds).
    pub(crate) fn write_all(&self, wire: &mut WriteBuffer, #[allow(unused)] sealed: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Transport::Plain(sock) => write_vectored_all(sock, wire),
            #[cfg(feature = "tls")]
            Transport::Tls { sock, session } => loop {
                sealed.clear();
                {
                    let mut session = lock(session);
                    if wire.has_remaining() {
                        let mut iov = [IoSlice::new(&[]); 64];
                        let n = wire.chunks_vectored(&mut iov);
                        let taken = session.write_plaintext(&iov[..n])?;
                        wire.advance(taken);
                    }
                    session.write_tls(sealed);
                }
                if sealed.is_empty() {
                    if wire.has_remaining() {
                        return Err(ErrorKind::WriteZero.into());
                    }
                    return Ok(());
                }
                (&*sock).write_all(sealed)?;
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

#[cfg(feature = "tls")]
fn lock(session: &std::sync::Mutex<TlsSession>) -> std::sync::MutexGuard<'_, TlsSession> {
    session.lock().unwrap_or_else(|e| e.into_inner())
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
    Ok(Transport::Tls { sock, session: Box::new(std::sync::Mutex::new(session)) })
}

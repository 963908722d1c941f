//! TLS over any runtime's stream: rustls's sans-IO session (through `nats_client::tls`) driven by the same
//! poll calls the driver uses for a plain socket, so tokio and smol share one implementation.

#[cfg(feature = "tls")]
use std::future::poll_fn;
#[cfg(feature = "tls")]
use std::io::ErrorKind;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;

#[cfg(feature = "tls")]
use nats_client::tls::TlsSession;

use crate::runtime::{ByteStream, Socket};

/// Ciphertext read per system call.
#[cfg(feature = "tls")]
const CHUNK: usize = 16 * 1024;

/// A stream with a TLS session over it.
#[cfg(feature = "tls")]
pub(crate) struct TlsStream<S> {
    inner: S,
    session: TlsSession,
    /// Ciphertext sealed but not yet written, from `sent` on.
    sealed: Vec<u8>,
    sent: usize,
    scratch: Box<[u8]>,
}

#[cfg(feature = "tls")]
impl<S: ByteStream> TlsStream<S> {
    /// Runs the handshake on `inner`.
    pub(crate) async fn handshake(inner: S, session: TlsSession) -> io::Result<Self> {
        let mut this = Self { inner, session, sealed: Vec::new(), sent: 0, scratch: vec![0; CHUNK].into() };
        poll_fn(|cx| this.poll_handshake(cx)).await?;
        Ok(this)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.session.wants_write() {
                self.session.write_tls(&mut self.sealed);
            }
            match self.poll_send_sealed(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            if !self.session.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            match self.inner.poll_read(cx, &mut self.scratch) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "server closed during the TLS handshake",
                    )))
                }
                Poll::Ready(Ok(n)) => {
                    if let Err(e) = self.session.read_tls(&self.scratch[..n]) {
                        // Best effort: tell the server why (the alert rustls queued).
                        self.session.write_tls(&mut self.sealed);
                        let _ = self.poll_send_sealed(cx);
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes sealed ciphertext until none is left (Ready) or the stream is full (Pending).
    fn poll_send_sealed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.sealed.len() {
            match self.inner.poll_write_vectored(cx, &[IoSlice::new(&self.sealed[self.sent..])]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.sealed.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tls")]
impl<S: ByteStream> ByteStream for TlsStream<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.session.read_plaintext(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
            match self.inner.poll_read(cx, &mut self.scratch) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => self.session.read_tls(&self.scratch[..n])?,
                other => return other,
            }
            // Reading may have produced ciphertext to send (an alert, a key update): start sending it now; what
            // the stream does not take goes with the next write or flush.
            if self.session.wants_write() {
                self.session.write_tls(&mut self.sealed);
                if let Poll::Ready(Err(e)) = self.poll_send_sealed(cx) {
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // Earlier ciphertext goes first; only then is more plaintext taken.
        match self.poll_send_sealed(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let taken = self.session.write_plaintext(bufs)?;
        self.session.write_tls(&mut self.sealed);
        // Start writing now; what the stream does not take is sent by the next write or flush.
        if let Poll::Ready(Err(e)) = self.poll_send_sealed(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.session.wants_write() {
            self.session.write_tls(&mut self.sealed);
        }
        self.poll_send_sealed(cx)
    }
}

/// A plain stream, a TLS one, or WebSocket over either.
pub(crate) enum Stream<S> {
    Plain(S),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<S>>),
    #[cfg(feature = "websocket")]
    Ws(Box<crate::websocket::WsStream<S>>),
}

impl<S: Socket> Stream<Arc<S>> {
    /// Reads onto the end of `buf`: straight into its spare capacity on a plain socket, through the session
    /// with TLS.
    pub(crate) fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => s.poll_read_buf(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                let mut pending = false;
                let read = crate::runtime::read_into_spare(buf, |b| match s.poll_read(cx, b) {
                    Poll::Ready(r) => r,
                    Poll::Pending => {
                        pending = true;
                        Ok(0)
                    }
                });
                if pending {
                    Poll::Pending
                } else {
                    Poll::Ready(read)
                }
            }
            #[cfg(feature = "websocket")]
            Stream::Ws(s) => s.poll_read_buf(cx, buf),
        }
    }

    /// The socket itself, for a caller's direct write: plain sockets only (a TLS session, a WebSocket's
    /// framing, are the driver's).
    pub(crate) fn direct(&self) -> Option<Arc<S>> {
        match self {
            Stream::Plain(s) => Some(s.clone()),
            #[cfg(feature = "tls")]
            Stream::Tls(_) => None,
            #[cfg(feature = "websocket")]
            Stream::Ws(_) => None,
        }
    }
}

impl<S: ByteStream> ByteStream for Stream<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => s.poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.poll_read(cx, buf),
            #[cfg(feature = "websocket")]
            Stream::Ws(s) => s.poll_read(cx, buf),
        }
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => s.poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.poll_write_vectored(cx, bufs),
            #[cfg(feature = "websocket")]
            Stream::Ws(s) => s.poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.poll_flush(cx),
            #[cfg(feature = "websocket")]
            Stream::Ws(s) => s.poll_flush(cx),
        }
    }
}

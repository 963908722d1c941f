//! WebSocket over the driver's stream (plain for `ws://`, TLS for `wss://`), on any runtime: the upgrade, and
//! every read and write after it through `nats_client::ws`'s sans-IO codec. The stream belongs to the driver
//! task, as a TLS one does: callers do not write to it directly.

use nats_client::StdInstant as _;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use nats_client::ws::{FrameDecoder, FrameEncoder, WebSocketSettings, WsError};
use nats_proto::{ConnectionError, Instant, ServerAddr};

use crate::link::Shared;
use crate::runtime::{ByteStream, Runtime, Socket, Timer};
use crate::tls::Stream;

/// Slices the encoder lays out around the caller's: control frames, a header.
const EXTRA_SLICES: usize = 4;

/// A stream speaking WebSocket.
pub(crate) struct WsStream<S> {
    inner: Stream<S>,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    /// Bytes that came with the upgrade response: the first frames, decoded by the first read.
    early: Vec<u8>,
}

impl<S: Socket> WsStream<Arc<S>> {
    /// Reads and decodes until protocol bytes were added to `buf` (returns how many), the stream ended
    /// (`Ok(0)`, or the WebSocket's own error), or nothing more is there (`Pending`). A ping's pong is queued
    /// and, between data frames, sent at once.
    pub(crate) fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        loop {
            if let Some(e) = self.decoder.ended() {
                return Poll::Ready(Err(e.clone().into()));
            }
            let start = buf.len();
            if self.early.is_empty() {
                match self.inner.poll_read_buf(cx, buf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                    Poll::Ready(Ok(_)) => {}
                    other => return other,
                }
            } else {
                buf.extend_from_slice(&std::mem::take(&mut self.early));
            }
            let added = self.decoder.decode(buf, start)?;
            if let Some(payload) = self.decoder.take_pong() {
                self.encoder.queue_pong(&payload);
                // What the stream does not take now goes with the next write or flush.
                if let Poll::Ready(Err(e)) = self.poll_send_control(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            if added > 0 {
                return Poll::Ready(Ok(added));
            }
        }
    }
}

impl<S: ByteStream> WsStream<S> {
    /// Sends waiting control frames, unless a data frame is half written (they follow it).
    fn poll_send_control(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Self { inner, encoder, .. } = self;
        while encoder.has_control() && !encoder.in_frame() {
            let mut out = [IoSlice::new(&[]); EXTRA_SLICES];
            let k = encoder.prepare(&[], &mut out);
            match inner.poll_write_vectored(cx, &out[..k]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    encoder.advance(n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues the closing frame (status 1000): the next flush sends it, and nothing is framed after it.
    pub(crate) fn queue_close(&mut self) {
        self.encoder.queue_close(1000, "");
    }
}

impl<S: ByteStream> ByteStream for WsStream<S> {
    fn poll_read(&mut self, _cx: &mut Context<'_>, _buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // The driver reads a WebSocket through `poll_read_buf`, in place; nothing is layered over one.
        Poll::Ready(Err(io::Error::other("a WebSocket is read in place")))
    }

    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let Self { inner, encoder, .. } = self;
        loop {
            let mut out = [IoSlice::new(&[]); 64 + EXTRA_SLICES];
            let k = encoder.prepare(bufs, &mut out);
            if k == 0 {
                // Nothing offered, or the closing frame is queued and nothing follows it.
                return Poll::Ready(Ok(0));
            }
            match inner.poll_write_vectored(cx, &out[..k]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => {
                    let done = encoder.advance(n);
                    if done > 0 {
                        return Poll::Ready(Ok(done));
                    }
                    // Only framing went (a header, a pong): the caller's bytes are next.
                }
                other => return other,
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_send_control(cx))?;
        self.inner.poll_flush(cx)
    }
}

/// Upgrades `inner` (connected, and secured for `wss`) to a WebSocket for `addr`. The caller bounds it in time.
pub(crate) async fn upgrade<S: Socket>(
    mut inner: Stream<Arc<S>>,
    addr: &ServerAddr,
    settings: &WebSocketSettings,
) -> io::Result<WsStream<Arc<S>>> {
    let (handshake, request) = settings.start(addr);
    let mut sent = 0;
    while sent < request.len() {
        let n = poll_fn(|cx| inner.poll_write_vectored(cx, &[IoSlice::new(&request[sent..])])).await?;
        if n == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    poll_fn(|cx| inner.poll_flush(cx)).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let upgraded = loop {
        if let Some(upgraded) = handshake.read_response(&buf).map_err(WsError::from)? {
            break upgraded;
        }
        buf.reserve(4096);
        if poll_fn(|cx| inner.poll_read_buf(cx, &mut buf)).await? == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed during the websocket upgrade"));
        }
    };
    buf.advance(upgraded.consumed);
    Ok(WsStream { inner, decoder: FrameDecoder::new(), encoder: settings.encoder(&upgraded), early: buf.to_vec() })
}

/// TLS for `wss`, then the WebSocket upgrade, over a socket just connected, by `deadline`.
pub(crate) async fn open<R: Runtime>(
    shared: &Arc<Shared>,
    socket: Arc<R::Socket>,
    addr: &ServerAddr,
    deadline: Instant,
) -> Result<Stream<Arc<R::Socket>>, ConnectionError> {
    let open = async {
        let inner = match addr.tls_required() {
            true => secure(shared, socket, addr).await?,
            false => Stream::Plain(socket),
        };
        crate::websocket::upgrade(inner, addr, &shared.settings().websocket).await.map_err(|e| {
            nats_client::ws::connection_error(&e).unwrap_or_else(|| ConnectionError::WebSocket(e.to_string()))
        })
    };
    let mut open = std::pin::pin!(open);
    let mut timer = R::timer(deadline.to_std());
    let stream = poll_fn(|cx| match open.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => timer.poll_fired(cx).map(|()| Err(ConnectionError::ConnectTimeout)),
    })
    .await?;
    Ok(Stream::Ws(Box::new(stream)))
}

/// TLS over a socket just connected, for a `wss://` server.
#[cfg(feature = "tls")]
async fn secure<S: Socket>(
    shared: &Shared,
    socket: Arc<S>,
    addr: &ServerAddr,
) -> Result<Stream<Arc<S>>, ConnectionError> {
    let session = shared.settings().tls.session(addr)?;
    let tls =
        crate::tls::TlsStream::handshake(socket, session).await.map_err(|e| nats_client::tls::connection_error(&e))?;
    Ok(Stream::Tls(Box::new(tls)))
}

#[cfg(not(feature = "tls"))]
async fn secure<S: Socket>(_: &Shared, _: Arc<S>, _: &ServerAddr) -> Result<Stream<Arc<S>>, ConnectionError> {
    Err(ConnectionError::Incompatible("wss:// needs the `tls` feature of nats-tokio"))
}

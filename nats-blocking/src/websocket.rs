//! WebSocket over the socket (plain for `ws://`, TLS for `wss://`): the upgrade, run by the reader thread when
//! it dials, and the framing of every read and write after it, through `nats_client::ws`'s sans-IO codec.
//!
//! The reader thread alone decodes (in its own read buffer, see `FrameDecoder`); whoever holds the write turn
//! alone encodes, holding the encoder's lock across its socket writes (a frame's header and payload must go
//! out together). A ping's pong crosses from one to the other through a slot of its own, never through the
//! encoder's lock, so neither the reader nor anyone holding the connection's lock waits behind a blocked
//! write. Every `write_all` ends between frames with the control frames it found sent.

use std::io::{self, ErrorKind, IoSlice};
use std::sync::Mutex;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use nats_client::ws::{FrameDecoder, FrameEncoder, WebSocketSettings, WsError};
use nats_proto::{ServerAddr, WriteBuffer};

use crate::transport::{lock, ReadSize, Transport};

/// The WebSocket layer of a connection.
pub(crate) struct WsLayer {
    inner: Transport,
    decoder: Mutex<FrameDecoder>,
    encoder: Mutex<FrameEncoder>,
    /// A pong owed, set by the reader, sent by the next writer.
    pong: Mutex<Option<Vec<u8>>>,
    /// Bytes that came with the upgrade response: the first frames, decoded by the first read.
    early: Mutex<Vec<u8>>,
}

impl WsLayer {
    pub(crate) fn inner(&self) -> &Transport {
        &self.inner
    }

    /// A pong is owed, or the TLS session has records of its own. Never takes the encoder's lock, which a
    /// writer holds across its socket writes: this is asked under the connection's lock.
    pub(crate) fn wants_write(&self) -> bool {
        lock(&self.pong).is_some() || self.inner.wants_write()
    }

    /// Reads and decodes until the read brought protocol bytes (returns how many were added to `buf`), the
    /// server ended the stream (`Ok(0)`, or the WebSocket's own error), or nothing but control frames came
    /// (`WouldBlock`: the driver looks at its timers, and wakes the writer for a pong).
    pub(crate) fn read_into(&self, buf: &mut BytesMut, size: &mut ReadSize) -> io::Result<usize> {
        let mut decoder = lock(&self.decoder);
        if let Some(e) = decoder.ended() {
            return Err(e.clone().into());
        }
        let start = buf.len();
        let early = std::mem::take(&mut *lock(&self.early));
        if early.is_empty() {
            if self.inner.read_into(buf, size)? == 0 {
                return Ok(0);
            }
        } else {
            buf.extend_from_slice(&early);
        }
        let added = decoder.decode(buf, start)?;
        if let Some(payload) = decoder.take_pong() {
            *lock(&self.pong) = Some(payload);
        }
        if added == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(added)
    }

    /// Frames and writes all of `wire`, with a pong owed before it. Only the holder of the write turn calls it.
    pub(crate) fn write_all(&self, wire: &mut WriteBuffer) -> io::Result<()> {
        let mut encoder = lock(&self.encoder);
        if let Some(payload) = lock(&self.pong).take() {
            encoder.queue_pong(&payload);
        }
        loop {
            let mut iov = [IoSlice::new(&[]); 64];
            let n = wire.chunks_vectored(&mut iov);
            let mut out = [IoSlice::new(&[]); 66];
            let k = encoder.prepare(&iov[..n], &mut out);
            if k == 0 {
                if wire.has_remaining() {
                    // Closing: nothing more is framed.
                    return Err(ErrorKind::WriteZero.into());
                }
                break;
            }
            let written = self.inner.write_slices(&out[..k])?;
            let done = encoder.advance(written);
            wire.advance(done);
        }
        // TLS records of the session's own (a key update) go too.
        if self.inner.wants_write() {
            self.inner.write_all(&mut WriteBuffer::new())?;
        }
        Ok(())
    }

    /// Sends the closing frame (status 1000), best effort: the connection ends either way.
    pub(crate) fn send_close(&self) {
        lock(&self.encoder).queue_close(1000, "");
        let _ = self.write_all(&mut WriteBuffer::new());
    }
}

/// Upgrades `inner` (connected, and secured for `wss`) to a WebSocket for `addr`, within `deadline`.
pub(crate) fn upgrade(
    inner: Transport,
    addr: &ServerAddr,
    settings: &WebSocketSettings,
    deadline: Instant,
) -> io::Result<Transport> {
    let (handshake, request) = settings.start(addr);
    let mut sent = 0;
    while sent < request.len() {
        sent += inner.write_slices(&[IoSlice::new(&request[sent..])])?;
    }
    let mut buf = BytesMut::with_capacity(4096);
    let mut size = ReadSize::new();
    let upgraded = loop {
        if let Some(upgraded) = handshake.read_response(&buf).map_err(WsError::from)? {
            break upgraded;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "websocket upgrade timed out"));
        }
        inner.set_read_timeout(left);
        match inner.read_into(&mut buf, &mut size) {
            Ok(0) => {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed during the websocket upgrade"))
            }
            Ok(_) => {}
            // A timeout, or a TLS record of the session's own to send first.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                if inner.wants_write() {
                    inner.write_all(&mut WriteBuffer::new())?;
                }
            }
            Err(e) => return Err(e),
        }
    };
    buf.advance(upgraded.consumed);
    Ok(Transport::Ws(Box::new(WsLayer {
        inner,
        decoder: Mutex::new(FrameDecoder::new()),
        encoder: Mutex::new(settings.encoder(&upgraded)),
        pong: Mutex::new(None),
        early: Mutex::new(buf.to_vec()),
    })))
}

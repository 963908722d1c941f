//! [`FrameDecoder`]: frames from the server turned, in place, into the protocol bytes they carry.

use bytes::{Buf, BytesMut};

use super::frame::{needed, parse_header, FrameError, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER};
use super::WsError;

/// Removes the WebSocket framing from what the server sends, in the driver's own read buffer, so that what
/// the NATS core decodes is the same buffer the socket read into: a message it cuts out still shares that
/// memory, framing or not.
///
/// A frame is not an op boundary: nats-server writes whatever it has pending as one frame (4 KiB ones to
/// browsers), so one frame may hold part of an op or several, and an op may span frames. The decoder never
/// looks at the protocol bytes; it only takes the frame headers out of the stream between them.
///
/// How: the driver reads onto the end of its buffer, behind the protocol bytes the core has not used yet,
/// then calls [`decode`](Self::decode) with where the new bytes start. Each frame header in them is removed by
/// closing its gap, moving whichever side of it is shorter: the payload that follows, or the protocol bytes
/// before it (usually only the start of an op the core left, and the buffer's front then just advances past
/// the gap). A large frame therefore costs a move of a few bytes; many small frames in one read cost about
/// one copy of what they carry, which is what their framing forces. Headers split across reads are gathered
/// in a small array of the decoder's; payloads never are.
///
/// Pings are answered by the pong the driver takes with [`take_pong`](Self::take_pong) (the latest one only,
/// as RFC 6455 allows). A close frame ends the stream: what came before it is still handed on, and every
/// later call fails with [`WsError::Closed`]. A frame that breaks the rules ends it the same way, with
/// [`WsError::Frame`]: errors are sticky.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Payload bytes of the data frame in progress not yet seen.
    left: u64,
    /// A frame header (with a control frame's payload) gathered across reads.
    head: [u8; MAX_HEADER + MAX_CONTROL_PAYLOAD],
    head_len: usize,
    /// Inside a fragmented message: the next data frame must continue it.
    fragmented: bool,
    /// The payload of the latest ping not yet answered.
    pong: Option<([u8; MAX_CONTROL_PAYLOAD], u8)>,
    /// Why the stream ended (a close frame, or a broken rule).
    ended: Option<WsError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self {
            left: 0,
            head: [0; MAX_HEADER + MAX_CONTROL_PAYLOAD],
            head_len: 0,
            fragmented: false,
            pong: None,
            ended: None,
        }
    }

    /// Turns the frames in `buf[start..]` (bytes just read) into the protocol bytes they carry, left in `buf`
    /// right after `buf[..start]` (protocol bytes from earlier reads). Returns how many were added; `buf`
    /// then holds protocol bytes only (its front may have advanced: what it holds is what counts).
    ///
    /// A close frame ends the stream: the bytes before it are kept and counted, and the next call fails with
    /// [`WsError::Closed`] (so does this one when there were none). A frame breaking RFC 6455 ends it the
    /// same way with [`WsError::Frame`]. Every call after the end fails the same.
    pub fn decode(&mut self, buf: &mut BytesMut, start: usize) -> Result<usize, WsError> {
        if let Some(e) = &self.ended {
            buf.truncate(start.min(buf.len()));
            return Err(e.clone());
        }
        let mut app = start;
        let mut pos = start;
        let mut added = 0;
        while pos < buf.len() {
            if self.left > 0 {
                let n = usize::try_from(self.left).unwrap_or(usize::MAX).min(buf.len() - pos);
                let gap = pos - app;
                if gap > 0 {
                    if app <= n {
                        // The protocol bytes before the gap are fewer than the payload after it: they move.
                        buf.copy_within(..app, gap);
                        buf.advance(gap);
                        pos = app;
                    } else {
                        buf.copy_within(pos..pos + n, app);
                    }
                }
                app += n;
                pos += n;
                added += n;
                self.left -= n as u64;
                continue;
            }
            let frame = self.gather(&buf[pos..]).map_err(WsError::Frame);
            let complete = match frame {
                Ok((used, complete)) => {
                    pos += used;
                    complete
                }
                Err(e) => {
                    self.ended = Some(e);
                    false
                }
            };
            if complete {
                if let Err(e) = self.on_frame() {
                    self.ended = Some(e);
                }
            }
            if let Some(ended) = &self.ended {
                // What came before the close (or the broken frame) is the server's last word: kept, and the
                // end reported by the next call.
                buf.truncate(app);
                return if added > 0 { Ok(added) } else { Err(ended.clone()) };
            }
            if !complete {
                break;
            }
        }
        buf.truncate(app);
        Ok(added)
    }

    /// Takes the payload owed a pong, if a ping came since the last call.
    pub fn take_pong(&mut self) -> Option<Vec<u8>> {
        self.pong.take().map(|(payload, len)| payload[..usize::from(len)].to_vec())
    }

    /// Why the stream ended, once it has (a close frame, or a broken rule).
    pub fn ended(&self) -> Option<&WsError> {
        self.ended.as_ref()
    }

    /// Copies header bytes from `raw` until the frame's header (and a control frame's payload) is whole.
    /// Returns the bytes taken and whether it is whole.
    fn gather(&mut self, raw: &[u8]) -> Result<(usize, bool), FrameError> {
        let mut used = 0;
        loop {
            let need = if self.head_len < 2 { 2 } else { needed([self.head[0], self.head[1]])? };
            if self.head_len >= need {
                return Ok((used, true));
            }
            let take = (need - self.head_len).min(raw.len() - used);
            if take == 0 {
                return Ok((used, false));
            }
            self.head[self.head_len..self.head_len + take].copy_from_slice(&raw[used..used + take]);
            self.head_len += take;
            used += take;
        }
    }

    /// Acts on the whole frame header in `head`.
    fn on_frame(&mut self) -> Result<(), WsError> {
        let header = parse_header(&self.head[..self.head_len])?;
        let payload = &self.head[header.size..self.head_len];
        self.head_len = 0;
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                let continuation = header.opcode == OpCode::Continuation;
                if continuation != self.fragmented {
                    return Err(WsError::Frame(if continuation {
                        FrameError::UnexpectedContinuation
                    } else {
                        FrameError::UnfinishedMessage
                    }));
                }
                self.fragmented = !header.fin;
                self.left = header.len;
            }
            OpCode::Ping => {
                let mut owed = [0u8; MAX_CONTROL_PAYLOAD];
                owed[..payload.len()].copy_from_slice(payload);
                // At most 125 bytes (`needed` checked).
                self.pong = Some((owed, payload.len() as u8));
            }
            OpCode::Pong => {}
            OpCode::Close => {
                let (code, reason) = match payload {
                    [] => (None, String::new()),
                    [_] => return Err(WsError::Frame(FrameError::BadClosePayload)),
                    [hi, lo, reason @ ..] => {
                        (Some(u16::from_be_bytes([*hi, *lo])), String::from_utf8_lossy(reason).into_owned())
                    }
                };
                self.ended = Some(WsError::Closed { code, reason });
            }
        }
        Ok(())
    }
}

//! The resumable decoders: they remember how far the line-end search got and, once a control line is read,
//! wait for its payload without reading the line again.
//!
//! A message is cut from the buffer as one `Bytes` (from its subject to the end of its payload) and a few
//! offsets: one reference count per message, whatever it holds. Other ops are read in place and skipped.

use alloc::boxed::Box;
use alloc::string::String;

use bytes::{Buf, Bytes, BytesMut};

use crate::conn::read_buffer::READ_BUFFER;
use crate::error::{ParseError, ParseErrorKind, ServerError};
use crate::headers::{validate_block, HeaderBlock, StatusCode};
use crate::info::{ConnectInfo, ServerInfo};
use crate::op::{ClientOp, Msg, MsgLayout, Pub, ServerOp};
use crate::subject::Subject;

use super::head::{parse_head, Head, HeadStatus, OpKind};
use super::{Limits, Side};

/// The resumable framing shared by both decoders.
#[derive(Debug, Clone)]
struct FrameReader {
    limits: Limits,
    side: Side,
    /// How far the line-end search got in the current buffer.
    scanned: usize,
    /// A control line already read, waiting for its payload.
    head: Option<Head>,
    /// A framing error is sticky: after it the stream cannot be resynchronised.
    failed: Option<ParseError>,
    /// The control line of the last op skipped for a frame-local error.
    skipped: Option<Head>,
}

impl FrameReader {
    fn new(side: Side, limits: Limits) -> Self {
        Self { limits, side, scanned: 0, head: None, failed: None, skipped: None }
    }

    fn fail(&mut self, e: ParseError) -> ParseError {
        self.failed = Some(e);
        e
    }

    /// The next op whose bytes are all in `buf`: its control line and its length. The caller consumes exactly
    /// that many bytes from the front of `buf`.
    fn next_head(&mut self, buf: &mut BytesMut) -> Result<Option<(Head, usize)>, ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let head = match self.head {
            Some(head) => head,
            None => match parse_head(buf, self.scanned, self.side, &self.limits) {
                Ok(HeadStatus::Complete(head)) => head,
                Ok(HeadStatus::Partial { scanned }) => {
                    self.scanned = scanned;
                    return Ok(None);
                }
                Err(e) => return Err(self.fail(e)),
            },
        };
        self.scanned = 0;
        let len = head.frame_len().map_err(|e| self.fail(e))?;
        if buf.len() < len {
            // Room for the rest of a large frame, so it arrives in one piece of memory. A smaller one fits in the
            // room a driver's `ReadBuffer` makes before its next read, from memory it reuses: reserving here
            // would take new memory whenever a read filled the buffer while its messages still live.
            if len > READ_BUFFER {
                buf.reserve(len - buf.len());
            }
            self.head = Some(head);
            return Ok(None);
        }
        self.head = None;
        head.check_crlf(buf).map_err(|e| self.fail(e))?;
        Ok(Some((head, len)))
    }

    /// Drops a bad op (`len` bytes) whose framing was sound: the stream goes on after it.
    fn skip(&mut self, buf: &mut BytesMut, head: Head, len: usize, e: ParseError) -> ParseError {
        buf.advance(len);
        self.skipped = Some(head);
        e
    }

    /// Validates a header block in place: its status code, or the frame-local error.
    fn header_status(&self, buf: &[u8], head: &Head) -> Result<u16, ParseError> {
        if !head.has_headers() {
            return Ok(0);
        }
        let block = &buf[head.line_len..head.line_len + head.hdr];
        match validate_block(block) {
            Ok(status) => Ok(status.map_or(0, StatusCode::as_u16)),
            Err(e) => Err(ParseError::new(ParseErrorKind::InvalidHeaders(e), head.line_len)),
        }
    }

    /// Forgets any partial state: for a new connection with a fresh buffer.
    fn reset(&mut self) {
        self.scanned = 0;
        self.head = None;
        self.failed = None;
        self.skipped = None;
    }
}

/// Cuts a complete message op from the front of `buf` as one `Bytes` (through its final CRLF), and where its
/// parts are.
fn cut_msg(buf: &mut BytesMut, head: &Head, status: u16) -> Result<Msg, ParseError> {
    // Offsets are kept small: a control line's (under u16 for the subject's start, which lenient blanks could
    // push further: then the op name and blanks are dropped first) and a payload's (nine digits at most).
    let mut at = 0;
    if head.text.start > usize::from(u16::MAX) {
        at = head.text.start;
        buf.advance(at);
    }
    let rel = |n: usize| u32::try_from(n - at).map_err(|_| ParseError::new(ParseErrorKind::InvalidSize, 0));
    let (reply_at, reply_len) = match head.extra {
        Some(r) => (rel(r.start)?, rel(r.end)? - rel(r.start)?),
        None => (0, 0),
    };
    let layout = MsgLayout {
        sid: head.sid,
        subject_at: (head.text.start - at) as u16,
        subject_len: rel(head.text.end)? - rel(head.text.start)?,
        reply_at,
        reply_len,
        body_at: rel(head.line_len)?,
        hdr_len: u32::try_from(head.hdr).map_err(|_| ParseError::new(ParseErrorKind::InvalidSize, 0))?,
        status,
    };
    Ok(Msg::from_frame(buf.split_to(head.line_len + head.total + 2 - at).freeze(), layout))
}

/// Decodes the ops a server sends, from a stream of bytes.
#[derive(Debug, Clone)]
pub struct ServerDecoder {
    frames: FrameReader,
    /// Messages already cut from the buffer, handed out by the next calls.
    ahead: super::fast::Ahead,
}

impl Default for ServerDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ServerDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { frames: FrameReader::new(Side::Server, limits), ahead: Default::default() }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.frames.limits
    }

    /// Changes the payload limit (from a new INFO) for the control lines read from now on. Messages already cut
    /// ahead (see [`held`](Self::held)) had theirs read, and checked, under the limit in force then.
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.frames.limits.max_payload = max_payload;
    }

    /// Forgets partial input, messages cut ahead and a past framing error, for a new connection. Call it
    /// whenever the bytes given to [`decode`](Self::decode) start a new stream.
    pub fn reset(&mut self) {
        self.frames.reset();
        self.ahead.clear();
    }

    /// Bytes of whole messages already cut from the buffer that the next calls hand out (see
    /// [`decode`](Self::decode)).
    pub fn held(&self) -> usize {
        self.ahead.held()
    }

    /// The subscription id of the message skipped by the last frame-local error, if it was a message: the
    /// server did deliver it, so it counts toward the subscription's max.
    pub fn skipped_sid(&self) -> Option<u64> {
        self.frames.skipped.filter(|h| h.kind == OpKind::Hmsg || h.kind == OpKind::Msg).map(|h| h.sid)
    }

    /// Cuts the next op from the front of `buf`. `Ok(None)`: more bytes are needed.
    ///
    /// A run of whole messages at the front may be cut from `buf` in one piece and handed out by this call
    /// and the next ones ([`held`](Self::held) says how many bytes wait that way); `Ok(None)` comes only once
    /// none is left, so a caller that decodes until then sees every op in order, as if cut one by one.
    ///
    /// Errors for which [`ParseError::is_frame_local`] is true consumed only the bad op; the next call goes on
    /// with the one after it. Any other error is repeated by every later call.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ParseError> {
        // Most calls hand out a message cut ahead: that path stays small, and the rest is out of line.
        match self.ahead.pop() {
            Some(msg) => Ok(Some(ServerOp::Msg(msg))),
            None => self.decode_front(buf),
        }
    }

    /// [`decode`](Self::decode) with nothing cut ahead.
    #[inline(never)]
    fn decode_front(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ParseError> {
        // The hot path: whole, ordinary messages at the front. Everything else goes the general way.
        if self.frames.head.is_none() && self.frames.failed.is_none() {
            if let Some(msg) = self.ahead.fill(buf, &self.frames.limits) {
                self.frames.scanned = 0;
                return Ok(Some(ServerOp::Msg(msg)));
            }
        }
        let Some((head, len)) = self.frames.next_head(buf)? else {
            return Ok(None);
        };
        let text = head.text.of(buf);
        let op = match head.kind {
            OpKind::Msg | OpKind::Hmsg => {
                let status = match self.frames.header_status(buf, &head) {
                    Ok(status) => status,
                    Err(e) => return Err(self.frames.skip(buf, head, len, e)),
                };
                return cut_msg(buf, &head, status).map(|m| Some(ServerOp::Msg(m))).map_err(|e| self.frames.fail(e));
            }
            OpKind::Ping => ServerOp::Ping,
            OpKind::Pong => ServerOp::Pong,
            OpKind::Ok => ServerOp::Ok,
            OpKind::Err => ServerOp::Err(ServerError::new(String::from_utf8_lossy(text))),
            _ => match ServerInfo::from_json(text) {
                Ok(info) => ServerOp::Info(Box::new(info)),
                Err(_) => {
                    let e = ParseError::new(ParseErrorKind::InvalidJson, head.text.start);
                    return Err(self.frames.skip(buf, head, len, e));
                }
            },
        };
        buf.advance(len);
        Ok(Some(op))
    }
}

/// Decodes the ops a client sends (for test servers, proxies and fuzzing).
#[derive(Debug, Clone)]
pub struct ClientDecoder {
    frames: FrameReader,
}

impl Default for ClientDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ClientDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { frames: FrameReader::new(Side::Client, limits) }
    }

    /// Cuts the next op from the front of `buf`. Same contract as [`ServerDecoder::decode`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ClientOp>, ParseError> {
        let Some((head, len)) = self.frames.next_head(buf)? else {
            return Ok(None);
        };
        if let Err(e) = self.frames.header_status(buf, &head) {
            return Err(self.frames.skip(buf, head, len, e));
        }
        let frame: Bytes = buf.split_to(len).freeze();
        let cut = |s: super::head::Span| Subject::from_bytes(frame.slice(s.start..s.end));
        Ok(Some(match head.kind {
            OpKind::Pub | OpKind::Hpub => {
                let body = head.line_len + head.hdr;
                ClientOp::Pub(Pub {
                    subject: cut(head.text),
                    reply: head.extra.map(cut),
                    headers: head.has_headers().then(|| HeaderBlock::from_validated(frame.slice(head.line_len..body))),
                    payload: frame.slice(body..head.line_len + head.total),
                })
            }
            OpKind::Sub => ClientOp::Sub { subject: cut(head.text), queue: head.extra.map(cut), sid: head.sid },
            OpKind::Unsub => ClientOp::Unsub { sid: head.sid, max: head.max },
            OpKind::Ping => ClientOp::Ping,
            OpKind::Pong => ClientOp::Pong,
            _ => ClientOp::Connect(Box::new(
                ConnectInfo::from_json(head.text.of(&frame))
                    .map_err(|_| ParseError::new(ParseErrorKind::InvalidJson, head.text.start))?,
            )),
        }))
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    fn decode_all(input: &[u8]) -> Vec<Result<ServerOp, ParseError>> {
        let mut d = ServerDecoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = vec![];
        loop {
            match d.decode(&mut buf) {
                Ok(Some(op)) => out.push(Ok(op)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    if !e.is_frame_local() {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn msg_with_and_without_reply() {
        let ops = decode_all(b"MSG a.b 1 5\r\nhello\r\nmsg  a.b\t2  r.x  0\r\n\r\n");
        let Ok(ServerOp::Msg(m)) = &ops[0] else { panic!("{ops:?}") };
        assert_eq!(
            (m.subject().as_bytes(), m.sid(), m.reply().is_none(), m.payload()),
            (&b"a.b"[..], 1, true, &b"hello"[..])
        );
        let Ok(ServerOp::Msg(m)) = &ops[1] else { panic!("{ops:?}") };
        assert_eq!(m.reply().unwrap(), "r.x");
        assert!(m.payload().is_empty());
    }

    #[test]
    fn numeric_reply_subject_is_a_reply() {
        let ops = decode_all(b"MSG a 1 123 2\r\nhi\r\n");
        let Ok(ServerOp::Msg(m)) = &ops[0] else { panic!("{ops:?}") };
        assert_eq!(m.reply().unwrap(), "123");
    }

    #[test]
    fn hmsg_and_status() {
        let ops = decode_all(b"HMSG _INBOX.x 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
        let Ok(ServerOp::Msg(m)) = &ops[0] else { panic!("{ops:?}") };
        assert_eq!(m.status().map(|s| s.as_u16()), Some(503));
        assert_eq!(m.headers().and_then(|h| h.status()), m.status());
        assert!(m.payload().is_empty());
    }

    #[test]
    fn a_message_is_one_slice_of_the_buffer() {
        let mut buf = BytesMut::from(&b"MSG a.b 7 r 5\r\nhello\r\nPING\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let Ok(Some(ServerOp::Msg(m))) = ServerDecoder::default().decode(&mut buf) else { panic!() };
        // Subject, reply and payload all point into the read buffer.
        assert_eq!(m.subject().as_bytes().as_ptr() as usize, start + 4);
        assert_eq!(m.payload().as_ptr() as usize, start + 15);
        assert_eq!(&buf[..], b"PING\r\n");
    }

    #[test]
    fn partial_then_complete_never_rescans() {
        let mut d = ServerDecoder::default();
        let mut buf = BytesMut::from(&b"MSG a 1 5\r\nhe"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(d.frames.head.is_some(), "the control line is kept while the payload arrives");
        buf.extend_from_slice(b"llo\r\nPI");
        assert!(matches!(d.decode(&mut buf), Ok(Some(ServerOp::Msg(_)))));
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(d.frames.scanned, 2);
        buf.extend_from_slice(b"NG\r\n");
        assert_eq!(d.decode(&mut buf), Ok(Some(ServerOp::Ping)));
    }

    #[test]
    fn client_ops() {
        let mut d = ClientDecoder::default();
        let mut buf =
            BytesMut::from(&b"CONNECT {\"verbose\":false}\r\nsub foo q 7\r\nUNSUB 7 10\r\nPUB a r 1\r\nx\r\n"[..]);
        assert!(matches!(d.decode(&mut buf), Ok(Some(ClientOp::Connect(_)))));
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(ClientOp::Sub { subject: "foo".into(), queue: Some("q".into()), sid: 7 }))
        );
        assert_eq!(d.decode(&mut buf), Ok(Some(ClientOp::Unsub { sid: 7, max: Some(10) })));
        assert!(matches!(d.decode(&mut buf), Ok(Some(ClientOp::Pub(_)))));
    }
}

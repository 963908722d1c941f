//! Zero-copy, resumable parsing of both sides of the protocol.
//!
//! One function, [`parse_head`], reads a control line into a [`Head`]: the op kind, the sizes, and the
//! positions of its arguments. Everything else builds on it:
//! - [`parse_server_op`], stateless and borrowing (httparse style), for callers that own their buffer and for
//!   fuzzing;
//! - [`ServerDecoder`] and [`ClientDecoder`], resumable over a `BytesMut`: they remember how far the line-end
//!   search got and, once a control line is read, wait for its payload without reading the line again. A
//!   complete op is cut from the buffer as one `Bytes`; subject, reply, headers and payload are slices of it.
//!
//! Leniency follows nats-server: op names in any case, runs of spaces and tabs between arguments, a bare LF
//! ending a control line. Strictness too: CRLF must follow a payload, sizes are 1 to 9 digits, the header
//! size cannot exceed the total, and the argument count (never "does it look numeric") decides whether a reply
//! subject is present.

use bytes::{Bytes, BytesMut};

use crate::error::{ParseError, ParseErrorKind, ServerError};
use crate::headers::{validate_block, HeaderBlock};
use crate::info::{ConnectInfo, ServerInfo};
use crate::op::{ClientOp, Msg, MsgRef, Pub, ServerOp, ServerOpRef};
use crate::subject::Subject;

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest control line of the message ops (MSG, HMSG, PUB, HPUB, SUB, UNSUB, PING ...), without CRLF.
    /// nats-server's default is 4096.
    pub max_control_line: usize,
    /// Longest INFO, CONNECT or -ERR line. INFO carries `connect_urls` and can be large.
    pub max_info_line: usize,
    /// Largest header block plus payload. A client sets it from INFO `max_payload`.
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_control_line: 4096, max_info_line: 1 << 20, max_payload: 1 << 20 }
    }
}

/// The result of a parse that may need more input. `Partial` is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole op was parsed.
    Complete(T),
    /// More bytes are needed.
    Partial,
}

/// Which side's ops a parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Ops the server sends (a client parses these).
    Server,
    /// Ops a client sends (a server, test server or fuzzer parses these).
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Info,
    Connect,
    Msg,
    Hmsg,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Ok,
    Err,
}

/// Start and end of an argument, relative to the start of the op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }
    fn cut(&self, frame: &Bytes) -> Bytes {
        frame.slice(self.start..self.end)
    }
}

/// A parsed control line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) kind: OpKind,
    /// Bytes of the control line including its line end.
    pub(crate) line_len: usize,
    /// Subject; or the JSON of INFO/CONNECT; or the text of -ERR.
    text: Span,
    /// Reply subject (MSG, PUB) or queue group (SUB).
    extra: Option<Span>,
    sid: u64,
    /// Header block size (HMSG, HPUB).
    hdr: usize,
    /// Header block plus payload size.
    total: usize,
    /// UNSUB max.
    max: Option<u64>,
}

impl Head {
    fn has_payload(&self) -> bool {
        matches!(self.kind, OpKind::Msg | OpKind::Hmsg | OpKind::Pub | OpKind::Hpub)
    }

    fn has_headers(&self) -> bool {
        matches!(self.kind, OpKind::Hmsg | OpKind::Hpub)
    }

    /// Bytes of the whole op: control line, then payload and its CRLF when it has one.
    fn frame_len(&self) -> Result<usize, ParseError> {
        if !self.has_payload() {
            return Ok(self.line_len);
        }
        self.line_len
            .checked_add(self.total)
            .and_then(|n| n.checked_add(2))
            .ok_or(ParseError::new(ParseErrorKind::PayloadTooLarge { size: self.total, limit: usize::MAX }, 0))
    }

    /// Checks what follows the control line once the whole frame is in `frame`.
    fn check_body(&self, frame: &[u8]) -> Result<(), ParseError> {
        if !self.has_payload() {
            return Ok(());
        }
        let end = self.line_len + self.total;
        if &frame[end..end + 2] != b"\r\n" {
            return Err(ParseError::new(ParseErrorKind::MissingPayloadCrlf, end));
        }
        if self.has_headers() {
            validate_block(&frame[self.line_len..self.line_len + self.hdr])
                .map_err(|e| ParseError::new(ParseErrorKind::InvalidHeaders(e), self.line_len))?;
        }
        Ok(())
    }
}

/// Outcome of looking for a control line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadStatus {
    Complete(Head),
    /// No line end yet; the search may resume at `scanned`.
    Partial {
        scanned: usize,
    },
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn starts_with_ignore_case(line: &[u8], name: &[u8]) -> bool {
    line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)
}

/// 1 to 9 ASCII digits, as nats-server's `parseSize`.
fn parse_size(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0')))
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

const MAX_ARGS: usize = 5;

/// Splits `line[from..]` at runs of spaces and tabs into at most [`MAX_ARGS`] spans.
fn split_args(line: &[u8], from: usize, out: &mut [Span; MAX_ARGS]) -> Result<usize, ParseError> {
    let mut n = 0;
    let mut i = from;
    loop {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(n);
        }
        if n == MAX_ARGS {
            return Err(ParseError::new(ParseErrorKind::WrongArgCount, i));
        }
        let end = memchr::memchr2(b' ', b'\t', &line[i..]).map_or(line.len(), |j| i + j);
        out[n] = Span { start: i, end };
        n += 1;
        i = end;
    }
}

/// Recognises the op name; returns the kind and where its arguments start.
fn op_name(line: &[u8], side: Side) -> Result<(OpKind, usize), ParseError> {
    // The hot path first: servers send upper-case `MSG ` and `HMSG ` far more often than anything else.
    match (side, line) {
        (Side::Server, [b'M', b'S', b'G', b' ', ..]) => return Ok((OpKind::Msg, 3)),
        (Side::Server, [b'H', b'M', b'S', b'G', b' ', ..]) => return Ok((OpKind::Hmsg, 4)),
        (Side::Client, [b'P', b'U', b'B', b' ', ..]) => return Ok((OpKind::Pub, 3)),
        _ => {}
    }
    let unknown = ParseError::new(ParseErrorKind::UnknownOp, 0);
    // Ops whose trailing bytes the server ignores, and ops whose text follows with optional blanks.
    let loose: &[(&[u8], OpKind)] = match side {
        Side::Server => &[(b"PING", OpKind::Ping), (b"PONG", OpKind::Pong), (b"+OK", OpKind::Ok)],
        Side::Client => &[(b"PING", OpKind::Ping), (b"PONG", OpKind::Pong)],
    };
    for &(name, kind) in loose {
        if starts_with_ignore_case(line, name) {
            return Ok((kind, name.len()));
        }
    }
    let texty: &[(&[u8], OpKind)] = match side {
        Side::Server => &[(b"INFO", OpKind::Info), (b"-ERR", OpKind::Err)],
        Side::Client => &[(b"CONNECT", OpKind::Connect)],
    };
    for &(name, kind) in texty {
        if starts_with_ignore_case(line, name) {
            return Ok((kind, name.len()));
        }
    }
    // Ops with arguments: the name must be followed by a blank (or end the line: then the count is wrong).
    let name_end = memchr::memchr2(b' ', b'\t', line).unwrap_or(line.len());
    let token = &line[..name_end];
    let with_args: &[(&[u8], OpKind)] = match side {
        Side::Server => &[(b"MSG", OpKind::Msg), (b"HMSG", OpKind::Hmsg)],
        Side::Client => {
            &[(b"PUB", OpKind::Pub), (b"HPUB", OpKind::Hpub), (b"SUB", OpKind::Sub), (b"UNSUB", OpKind::Unsub)]
        }
    };
    with_args
        .iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|&(_, kind)| (kind, name_end))
        .ok_or(unknown)
}

/// Trims blanks; removes one pair of surrounding single quotes (for -ERR).
fn text_span(line: &[u8], from: usize, unquote: bool) -> Span {
    let mut start = from;
    let mut end = line.len();
    while start < end && is_blank(line[start]) {
        start += 1;
    }
    while end > start && is_blank(line[end - 1]) {
        end -= 1;
    }
    if unquote && end - start >= 2 && line[start] == b'\'' && line[end - 1] == b'\'' {
        start += 1;
        end -= 1;
    }
    Span { start, end }
}

/// Reads the control line at the start of `buf`, resuming the line-end search at `scan_from`.
pub(crate) fn parse_head(buf: &[u8], scan_from: usize, side: Side, limits: &Limits) -> Result<HeadStatus, ParseError> {
    let Some(&first) = buf.first() else {
        return Ok(HeadStatus::Partial { scanned: 0 });
    };
    // INFO and -ERR (server side) or CONNECT (client side) may be long; every other line has the small cap.
    let long_line = match side {
        Side::Server => matches!(first.to_ascii_uppercase(), b'I' | b'-'),
        Side::Client => first.eq_ignore_ascii_case(&b'C'),
    };
    let cap = if long_line { limits.max_info_line } else { limits.max_control_line };
    // The line may be `cap` bytes plus CRLF; look no further than that.
    let window = buf.len().min(cap.saturating_add(2));
    let scan_from = scan_from.min(window);
    let Some(lf) = memchr::memchr(b'\n', &buf[scan_from..window]).map(|i| scan_from + i) else {
        if buf.len() >= cap.saturating_add(2) {
            return Err(ParseError::new(ParseErrorKind::ControlLineTooLong { limit: cap }, cap));
        }
        return Ok(HeadStatus::Partial { scanned: window });
    };
    let line_end = if lf > 0 && buf[lf - 1] == b'\r' { lf - 1 } else { lf };
    if line_end > cap {
        return Err(ParseError::new(ParseErrorKind::ControlLineTooLong { limit: cap }, cap));
    }
    let line = &buf[..line_end];
    let (kind, args_from) = op_name(line, side)?;
    let mut head =
        Head { kind, line_len: lf + 1, text: Span::default(), extra: None, sid: 0, hdr: 0, total: 0, max: None };
    match kind {
        OpKind::Ping | OpKind::Pong | OpKind::Ok => return Ok(HeadStatus::Complete(head)),
        OpKind::Info | OpKind::Connect | OpKind::Err => {
            head.text = text_span(line, args_from, kind == OpKind::Err);
            return Ok(HeadStatus::Complete(head));
        }
        _ => {}
    }
    let mut args = [Span::default(); MAX_ARGS];
    let n = split_args(line, args_from, &mut args)?;
    let wrong_count = || ParseError::new(ParseErrorKind::WrongArgCount, args_from);
    let size = |s: Span| parse_size(s.of(line)).ok_or(ParseError::new(ParseErrorKind::InvalidSize, s.start));
    let sid = |s: Span| parse_u64(s.of(line)).ok_or(ParseError::new(ParseErrorKind::InvalidSid, s.start));
    // Argument layouts, by count: which index holds the reply/queue, and where the sizes are.
    match (kind, n) {
        (OpKind::Msg, 3 | 4) => {
            head.sid = sid(args[1])?;
            head.extra = (n == 4).then_some(args[2]);
            head.total = size(args[n - 1])?;
        }
        (OpKind::Hmsg, 4 | 5) => {
            head.sid = sid(args[1])?;
            head.extra = (n == 5).then_some(args[2]);
            head.hdr = size(args[n - 2])?;
            head.total = size(args[n - 1])?;
        }
        (OpKind::Pub, 2 | 3) => {
            head.extra = (n == 3).then_some(args[1]);
            head.total = size(args[n - 1])?;
        }
        (OpKind::Hpub, 3 | 4) => {
            head.extra = (n == 4).then_some(args[1]);
            head.hdr = size(args[n - 2])?;
            head.total = size(args[n - 1])?;
        }
        (OpKind::Sub, 2 | 3) => {
            head.extra = (n == 3).then_some(args[1]);
            head.sid = sid(args[n - 1])?;
        }
        (OpKind::Unsub, 1 | 2) => {
            head.sid = sid(args[0])?;
            if n == 2 {
                head.max = Some(size(args[1])? as u64);
            }
            return Ok(HeadStatus::Complete(head));
        }
        _ => return Err(wrong_count()),
    }
    head.text = args[0];
    if head.hdr > head.total {
        return Err(ParseError::new(ParseErrorKind::HeaderSizeExceedsTotal, args[n - 2].start));
    }
    if head.total > limits.max_payload {
        return Err(ParseError::new(
            ParseErrorKind::PayloadTooLarge { size: head.total, limit: limits.max_payload },
            args[n - 1].start,
        ));
    }
    Ok(HeadStatus::Complete(head))
}

/// Parses one server op from the start of `buf` without copying or keeping state.
///
/// Returns the op, borrowing from `buf`, and how many bytes it used; or `Status::Partial` when `buf` holds
/// only part of an op. Each call searches from the start of `buf`: use [`ServerDecoder`] for a stream.
pub fn parse_server_op<'a>(buf: &'a [u8], limits: &Limits) -> Result<Status<(ServerOpRef<'a>, usize)>, ParseError> {
    let head = match parse_head(buf, 0, Side::Server, limits)? {
        HeadStatus::Complete(h) => h,
        HeadStatus::Partial { .. } => return Ok(Status::Partial),
    };
    let len = head.frame_len()?;
    if buf.len() < len {
        return Ok(Status::Partial);
    }
    head.check_body(buf)?;
    let op = match head.kind {
        OpKind::Info => ServerOpRef::Info(head.text.of(buf)),
        OpKind::Err => ServerOpRef::Err(head.text.of(buf)),
        OpKind::Ping => ServerOpRef::Ping,
        OpKind::Pong => ServerOpRef::Pong,
        OpKind::Ok => ServerOpRef::Ok,
        _ => {
            let body = head.line_len + head.hdr;
            ServerOpRef::Msg(MsgRef {
                subject: head.text.of(buf),
                sid: head.sid,
                reply: head.extra.map(|s| s.of(buf)),
                headers: head.has_headers().then(|| &buf[head.line_len..body]),
                payload: &buf[body..head.line_len + head.total],
            })
        }
    };
    Ok(Status::Complete((op, len)))
}

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

    /// Cuts the next complete op from `buf`.
    fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<(Head, Bytes)>, ParseError> {
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
            // Room for the rest of the frame, so it arrives in one piece of memory.
            buf.reserve(len - buf.len());
            self.head = Some(head);
            return Ok(None);
        }
        self.head = None;
        let frame = buf.split_to(len).freeze();
        match head.check_body(&frame) {
            Ok(()) => Ok(Some((head, frame))),
            Err(e) if e.is_frame_local() => {
                self.skipped = Some(head);
                Err(e)
            }
            Err(e) => Err(self.fail(e)),
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

/// Decodes the ops a server sends, from a stream of bytes.
#[derive(Debug, Clone)]
pub struct ServerDecoder {
    frames: FrameReader,
}

impl Default for ServerDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ServerDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { frames: FrameReader::new(Side::Server, limits) }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.frames.limits
    }

    /// Changes the payload limit (from a new INFO).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.frames.limits.max_payload = max_payload;
    }

    /// Forgets partial input and a past framing error, for a new connection.
    pub fn reset(&mut self) {
        self.frames.reset();
    }

    /// The subscription id of the message skipped by the last frame-local error, if it was a message: the
    /// server did deliver it, so it counts toward the subscription's max.
    pub fn skipped_sid(&self) -> Option<u64> {
        self.frames.skipped.filter(|h| h.kind == OpKind::Hmsg || h.kind == OpKind::Msg).map(|h| h.sid)
    }

    /// Cuts the next op from the front of `buf`. `Ok(None)`: more bytes are needed.
    ///
    /// Errors for which [`ParseError::is_frame_local`] is true consumed only the bad op; the next call goes on
    /// with the one after it. Any other error is repeated by every later call.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ParseError> {
        let Some((head, frame)) = self.frames.next_frame(buf)? else {
            return Ok(None);
        };
        let json_error = |_| {
            self.frames.skipped = Some(head);
            ParseError::new(ParseErrorKind::InvalidJson, head.text.start)
        };
        Ok(Some(match head.kind {
            OpKind::Msg | OpKind::Hmsg => ServerOp::Msg(msg_from_frame(&head, &frame)),
            OpKind::Ping => ServerOp::Ping,
            OpKind::Pong => ServerOp::Pong,
            OpKind::Ok => ServerOp::Ok,
            OpKind::Err => ServerOp::Err(ServerError::new(String::from_utf8_lossy(head.text.of(&frame)))),
            _ => ServerOp::Info(Box::new(ServerInfo::from_json(head.text.of(&frame)).map_err(json_error)?)),
        }))
    }
}

fn msg_from_frame(head: &Head, frame: &Bytes) -> Msg {
    let body = head.line_len + head.hdr;
    Msg {
        subject: Subject::from_bytes(head.text.cut(frame)),
        sid: head.sid,
        reply: head.extra.map(|s| Subject::from_bytes(s.cut(frame))),
        headers: head.has_headers().then(|| HeaderBlock::from_validated(frame.slice(head.line_len..body))),
        payload: frame.slice(body..head.line_len + head.total),
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
        let Some((head, frame)) = self.frames.next_frame(buf)? else {
            return Ok(None);
        };
        Ok(Some(match head.kind {
            OpKind::Pub | OpKind::Hpub => {
                let m = msg_from_frame(&head, &frame);
                ClientOp::Pub(Pub { subject: m.subject, reply: m.reply, headers: m.headers, payload: m.payload })
            }
            OpKind::Sub => ClientOp::Sub {
                subject: Subject::from_bytes(head.text.cut(&frame)),
                queue: head.extra.map(|s| Subject::from_bytes(s.cut(&frame))),
                sid: head.sid,
            },
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
            (m.subject.as_bytes(), m.sid, m.reply.is_none(), &m.payload[..]),
            (&b"a.b"[..], 1, true, &b"hello"[..])
        );
        let Ok(ServerOp::Msg(m)) = &ops[1] else { panic!("{ops:?}") };
        assert_eq!(m.reply.as_ref().unwrap(), "r.x");
        assert!(m.payload.is_empty());
    }

    #[test]
    fn numeric_reply_subject_is_a_reply() {
        let ops = decode_all(b"MSG a 1 123 2\r\nhi\r\n");
        let Ok(ServerOp::Msg(m)) = &ops[0] else { panic!("{ops:?}") };
        assert_eq!(m.reply.as_ref().unwrap(), "123");
    }

    #[test]
    fn hmsg_and_status() {
        let ops = decode_all(b"HMSG _INBOX.x 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
        let Ok(ServerOp::Msg(m)) = &ops[0] else { panic!("{ops:?}") };
        assert_eq!(m.status().map(|s| s.as_u16()), Some(503));
        assert!(m.payload.is_empty());
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
    fn borrowed_parse() {
        let l = Limits::default();
        assert_eq!(parse_server_op(b"PI", &l), Ok(Status::Partial));
        assert_eq!(parse_server_op(b"MSG a 1 3\r\nab", &l), Ok(Status::Partial));
        let Ok(Status::Complete((ServerOpRef::Msg(m), used))) = parse_server_op(b"MSG a 1 3\r\nabc\r\nPING", &l) else {
            panic!()
        };
        assert_eq!((m.payload, used), (&b"abc"[..], 16));
        assert_eq!(parse_server_op(b"-ERR 'x y'\r\n", &l), Ok(Status::Complete((ServerOpRef::Err(b"x y"), 12))));
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

//! The protocol ops, owned (`Bytes` slices of one received frame) and borrowed (slices of a caller's buffer).

use alloc::boxed::Box;
use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::encode::WriteBuffer;
use crate::error::ServerError;
use crate::headers::{HeaderBlock, HeaderView, StatusCode};
use crate::info::{ConnectInfo, ServerInfo};
use crate::subject::{Subject, SubjectRef};

/// A message delivered by the server (MSG or HMSG): one `Bytes` holding the frame, and where its parts are.
///
/// Subject, reply, headers and payload are read in place. A message costs one reference count on the read
/// buffer, whatever it holds; cloning it, or taking its payload as `Bytes`, costs one more and copies nothing.
#[derive(Clone)]
pub struct Msg {
    /// The whole op as it arrived, through the CRLF after the payload (kept, so that cutting a message from
    /// the read buffer is one split).
    frame: Bytes,
    /// Where its parts are: kept whole as the decoder found it, so that a message is moved as two 32-byte
    /// blocks (built field by field, its copies stalled on store-to-load forwarding in the ingest loop).
    layout: MsgLayout,
}

/// Where the parts of a message are in its frame (the decoder's findings).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MsgLayout {
    /// The subscription it was delivered for.
    pub(crate) sid: u64,
    /// Where the subject starts in the frame (after the op name).
    pub(crate) subject_at: u16,
    pub(crate) subject_len: u32,
    /// Where the reply subject starts; `reply_len` 0: there is none.
    pub(crate) reply_at: u32,
    pub(crate) reply_len: u32,
    /// Where the header block (or, without one, the payload) starts.
    pub(crate) body_at: u32,
    /// Bytes of the header block; 0: there is none (a valid block is never empty).
    pub(crate) hdr_len: u32,
    /// The header block's status code; 0: none.
    pub(crate) status: u16,
}

impl Msg {
    /// A message built from its parts (for test servers, fakes and tests; received messages come from the
    /// decoder). The parts are copied into one new frame.
    pub fn new(
        subject: impl AsRef<[u8]>,
        sid: u64,
        reply: Option<&[u8]>,
        headers: Option<&HeaderBlock>,
        payload: impl AsRef<[u8]>,
    ) -> Self {
        let (subject, payload) = (subject.as_ref(), payload.as_ref());
        let reply = reply.unwrap_or_default();
        let hdr = headers.map_or(&[][..], HeaderBlock::as_bytes);
        let mut frame = BytesMut::with_capacity(subject.len() + reply.len() + hdr.len() + payload.len() + 2);
        for part in [subject, reply, hdr, payload, b"\r\n"] {
            frame.put_slice(part);
        }
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self::from_frame(
            frame.freeze(),
            MsgLayout {
                sid,
                subject_at: 0,
                subject_len: len(subject.len()),
                reply_at: len(subject.len()),
                reply_len: len(reply.len()),
                body_at: len(subject.len() + reply.len()),
                hdr_len: len(hdr.len()),
                status: headers.and_then(HeaderBlock::status).map_or(0, StatusCode::as_u16),
            },
        )
    }

    /// Wraps a frame whose parts the decoder located.
    #[inline]
    pub(crate) fn from_frame(frame: Bytes, layout: MsgLayout) -> Self {
        Self { frame, layout }
    }

    /// The subscription it was delivered for.
    #[inline]
    pub fn sid(&self) -> u64 {
        self.layout.sid
    }

    /// The subject it was published to.
    #[inline]
    pub fn subject(&self) -> SubjectRef<'_> {
        let at = self.layout.subject_at as usize;
        SubjectRef::new(&self.frame[at..at + self.layout.subject_len as usize])
    }

    /// Where to send a reply, if the publisher asked for one.
    #[inline]
    pub fn reply(&self) -> Option<SubjectRef<'_>> {
        let at = self.layout.reply_at as usize;
        (self.layout.reply_len > 0).then(|| SubjectRef::new(&self.frame[at..at + self.layout.reply_len as usize]))
    }

    #[inline]
    fn header_range(&self) -> core::ops::Range<usize> {
        self.layout.body_at as usize..(self.layout.body_at + self.layout.hdr_len) as usize
    }

    /// The reply subject as `Bytes`: a reference count, no copy.
    pub fn reply_bytes(&self) -> Option<Bytes> {
        let at = self.layout.reply_at as usize;
        (self.layout.reply_len > 0).then(|| self.frame.slice(at..at + self.layout.reply_len as usize))
    }

    /// The header block (HMSG only), read in place.
    pub fn headers(&self) -> Option<HeaderView<'_>> {
        self.header_bytes().map(HeaderView::from_validated)
    }

    /// The header block (HMSG only) as an owned block: a reference count, no copy.
    pub fn header_block(&self) -> Option<HeaderBlock> {
        (self.layout.hdr_len > 0).then(|| HeaderBlock::from_validated(self.frame.slice(self.header_range())))
    }

    /// The header block's wire bytes (HMSG only).
    #[inline]
    pub fn header_bytes(&self) -> Option<&[u8]> {
        (self.layout.hdr_len > 0).then(|| &self.frame[self.header_range()])
    }

    #[inline]
    fn payload_range(&self) -> core::ops::Range<usize> {
        (self.layout.body_at + self.layout.hdr_len) as usize..self.frame.len() - 2
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.payload_range()]
    }

    /// The payload as `Bytes`: a reference count, no copy.
    pub fn payload_bytes(&self) -> Bytes {
        self.frame.slice(self.payload_range())
    }

    /// The payload as `Bytes`, giving up the rest of the message.
    pub fn into_payload(mut self) -> Bytes {
        let range = self.payload_range();
        self.frame.truncate(range.end);
        self.frame.split_off(range.start)
    }

    /// The status code of the header block, if any (503 for no responders).
    #[inline]
    pub fn status(&self) -> Option<StatusCode> {
        StatusCode::new(self.layout.status)
    }

    /// Bytes of header block plus payload (the total size on the wire).
    #[inline]
    pub fn size(&self) -> usize {
        self.frame.len() - 2 - self.layout.body_at as usize
    }

    /// Appends this message to `out` as MSG or HMSG (for test servers and round trips).
    pub fn encode(&self, out: &mut WriteBuffer) {
        out.push_msg(
            self.subject().as_bytes(),
            self.layout.sid,
            self.reply().map(SubjectRef::as_bytes),
            self.header_bytes(),
            self.payload_bytes(),
        );
    }
}

/// Two messages are equal when their parts are, however their frames were laid out.
impl PartialEq for Msg {
    fn eq(&self, other: &Self) -> bool {
        self.layout.sid == other.layout.sid
            && self.subject() == other.subject()
            && self.reply() == other.reply()
            && self.header_bytes() == other.header_bytes()
            && self.payload() == other.payload()
    }
}

impl Eq for Msg {}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Msg")
            .field("subject", &self.subject())
            .field("sid", &self.layout.sid)
            .field("reply", &self.reply())
            .field("headers", &self.headers())
            .field("payload", &self.payload_bytes())
            .finish()
    }
}

/// An op the server sends.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// Server information; sent first and again whenever it changes.
    Info(Box<ServerInfo>),
    /// A message for a subscription.
    Msg(Msg),
    /// Keep-alive probe: answer with PONG.
    Ping,
    /// Answer to a PING.
    Pong,
    /// Acknowledgement in verbose mode.
    Ok,
    /// An error.
    Err(ServerError),
}

impl ServerOp {
    /// Appends this op to `out` in wire form.
    pub fn encode(&self, out: &mut WriteBuffer) {
        match self {
            ServerOp::Info(info) => out.push_info(info),
            ServerOp::Msg(m) => m.encode(out),
            ServerOp::Ping => out.push_ping(),
            ServerOp::Pong => out.push_pong(),
            ServerOp::Ok => out.push_ok(),
            ServerOp::Err(e) => out.push_err(e.message()),
        }
    }
}

/// A message published by a client (PUB or HPUB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pub {
    /// The subject.
    pub subject: Subject,
    /// The reply subject, if any.
    pub reply: Option<Subject>,
    /// The header block (HPUB only).
    pub headers: Option<HeaderBlock>,
    /// The payload.
    pub payload: Bytes,
}

/// An op a client sends.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// Connection options and credentials.
    Connect(Box<ConnectInfo>),
    /// A publish.
    Pub(Pub),
    /// A subscription.
    Sub {
        /// Subject (may hold wildcards).
        subject: Subject,
        /// Queue group, if any.
        queue: Option<Subject>,
        /// Subscription id chosen by the client.
        sid: u64,
    },
    /// End a subscription now, or after `max` messages in total.
    Unsub {
        /// Subscription id.
        sid: u64,
        /// Total messages after which the server ends the subscription.
        max: Option<u64>,
    },
    /// Keep-alive probe or flush fence.
    Ping,
    /// Answer to a PING.
    Pong,
}

impl ClientOp {
    /// Appends this op to `out` in wire form.
    pub fn encode(&self, out: &mut WriteBuffer) {
        match self {
            ClientOp::Connect(c) => out.push_connect(c),
            ClientOp::Pub(p) => {
                out.push_pub(
                    p.subject.as_bytes(),
                    p.reply.as_ref().map(Subject::as_bytes),
                    p.headers.as_ref().map(HeaderBlock::as_bytes),
                    &p.payload,
                );
            }
            ClientOp::Sub { subject, queue, sid } => {
                out.push_sub(subject.as_bytes(), queue.as_ref().map(Subject::as_bytes), *sid)
            }
            ClientOp::Unsub { sid, max } => out.push_unsub(*sid, *max),
            ClientOp::Ping => out.push_ping(),
            ClientOp::Pong => out.push_pong(),
        }
    }
}

/// A message borrowed from the caller's buffer (see [`crate::parse_server_op`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgRef<'a> {
    /// The subject.
    pub subject: &'a [u8],
    /// The subscription id.
    pub sid: u64,
    /// The reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// The validated header block (HMSG only).
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
}

/// A server op borrowed from the caller's buffer.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOpRef<'a> {
    /// INFO with its raw JSON (not decoded: decode it with [`ServerInfo::from_json`]).
    Info(&'a [u8]),
    /// MSG or HMSG.
    Msg(MsgRef<'a>),
    /// PING.
    Ping,
    /// PONG.
    Pong,
    /// +OK.
    Ok,
    /// -ERR with its text, quotes removed.
    Err(&'a [u8]),
}

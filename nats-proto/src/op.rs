//! The protocol ops, owned (`Bytes` slices of one received frame) and borrowed (slices of a caller's buffer).

use bytes::Bytes;

use crate::encode::WriteBuffer;
use crate::error::ServerError;
use crate::headers::{HeaderBlock, StatusCode};
use crate::info::{ConnectInfo, ServerInfo};
use crate::subject::Subject;

/// A message delivered by the server (MSG or HMSG). Every field is a slice of one frame: no copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The subject it was published to.
    pub subject: Subject,
    /// The subscription it was delivered for.
    pub sid: u64,
    /// Where to send a reply, if the publisher asked for one.
    pub reply: Option<Subject>,
    /// The header block (HMSG only).
    pub headers: Option<HeaderBlock>,
    /// The payload.
    pub payload: Bytes,
}

impl Msg {
    /// The status code of the header block, if any (503 for no responders).
    pub fn status(&self) -> Option<StatusCode> {
        self.headers.as_ref().and_then(HeaderBlock::status)
    }

    /// Bytes of header block plus payload (the total size on the wire).
    pub fn size(&self) -> usize {
        self.headers.as_ref().map_or(0, |h| h.as_bytes().len()) + self.payload.len()
    }

    /// Appends this message to `out` as MSG or HMSG (for test servers and round trips).
    pub fn encode(&self, out: &mut WriteBuffer) {
        out.push_msg(
            self.subject.as_bytes(),
            self.sid,
            self.reply.as_ref().map(Subject::as_bytes),
            self.headers.as_ref().map(HeaderBlock::as_bytes),
            &self.payload,
        );
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
            ClientOp::Pub(p) => out.push_pub(
                p.subject.as_bytes(),
                p.reply.as_ref().map(Subject::as_bytes),
                p.headers.as_ref().map(HeaderBlock::as_bytes),
                &p.payload,
            ),
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

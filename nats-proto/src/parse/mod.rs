//! Zero-copy, resumable parsing of both sides of the protocol.
//!
//! One function, `head::parse_head`, reads a control line: the op kind, the sizes, and the positions of its
//! arguments. Everything else builds on it:
//! - [`parse_server_op`], stateless and borrowing (httparse style), for callers that own their buffer and for
//!   fuzzing;
//! - [`ServerDecoder`] and [`ClientDecoder`], resumable over a `BytesMut`: they remember how far the line-end
//!   search got and, once a control line is read, wait for its payload without reading the line again. A
//!   message is cut from the buffer as one `Bytes` and a few offsets (see [`crate::Msg`]).
//!
//! Leniency follows nats-server: op names in any case, runs of spaces and tabs between arguments, a bare LF
//! ending a control line. Strictness too: CRLF must follow a payload, sizes are 1 to 9 digits, the header
//! size cannot exceed the total, and the argument count (never "does it look numeric") decides whether a reply
//! subject is present.

mod decoder;
mod fast;
mod head;

pub use decoder::{ClientDecoder, ServerDecoder};

use crate::error::{ParseError, ParseErrorKind};
use crate::headers::validate_block;
use crate::op::{MsgRef, ServerOpRef};

use head::{parse_head, HeadStatus, OpKind};

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
    head.check_crlf(buf)?;
    if head.has_headers() {
        validate_block(&buf[head.line_len..head.line_len + head.hdr])
            .map_err(|e| ParseError::new(ParseErrorKind::InvalidHeaders(e), head.line_len))?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! Errors, split by who is at fault.
//!
//! - [`ParseError`]: the peer sent bytes that are not NATS protocol. `Copy`, no allocation, with the byte
//!   offset (from the start of the op being parsed) where the problem was found.
//! - [`ServerError`]: the server sent `-ERR`; classified so a client knows whether the connection ends.
//! - [`CommandError`]: the caller asked for something the protocol cannot carry (an invalid subject, a payload
//!   over `max_payload`, use after close, a full reconnect buffer).
//! - [`ConnectionError`]: why a connection to one server ended.

use alloc::string::String;
use core::fmt;

/// Bytes from the peer that are not valid NATS protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// What is wrong.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// Byte offset, counted from the first byte of the op being parsed, where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// True when the framing of the stream is intact and only the one op was bad (its header block or its
    /// JSON): the decoder has skipped that op and can go on. False errors are sticky: the stream is lost.
    pub fn is_frame_local(&self) -> bool {
        matches!(self.kind, ParseErrorKind::InvalidHeaders(_) | ParseErrorKind::InvalidJson)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol parse error at byte {}: {}", self.offset, self.kind)
    }
}

impl core::error::Error for ParseError {}

/// The kinds of [`ParseError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The op name is not one this side of the protocol may send.
    UnknownOp,
    /// No line end within the control-line limit.
    ControlLineTooLong {
        /// The limit in force, in bytes.
        limit: usize,
    },
    /// Too few or too many arguments for the op.
    WrongArgCount,
    /// A size field is not 1 to 9 ASCII digits.
    InvalidSize,
    /// A subscription id is not a decimal `u64`.
    InvalidSid,
    /// The announced size is over the payload limit.
    PayloadTooLarge {
        /// The announced size (header block plus payload).
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The header size is larger than the total size.
    HeaderSizeExceedsTotal,
    /// The payload is not followed by CRLF.
    MissingPayloadCrlf,
    /// The JSON of an INFO or CONNECT op does not decode.
    InvalidJson,
    /// The header block of an HMSG or HPUB is malformed.
    InvalidHeaders(HeaderError),
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOp => f.write_str("unknown protocol operation"),
            Self::ControlLineTooLong { limit } => write!(f, "control line longer than {limit} bytes"),
            Self::WrongArgCount => f.write_str("wrong number of arguments"),
            Self::InvalidSize => f.write_str("size is not 1 to 9 decimal digits"),
            Self::InvalidSid => f.write_str("subscription id is not a decimal u64"),
            Self::PayloadTooLarge { size, limit } => write!(f, "payload of {size} bytes exceeds the limit of {limit}"),
            Self::HeaderSizeExceedsTotal => f.write_str("header size exceeds total size"),
            Self::MissingPayloadCrlf => f.write_str("payload not followed by CRLF"),
            Self::InvalidJson => f.write_str("invalid JSON"),
            Self::InvalidHeaders(e) => write!(f, "invalid header block: {e}"),
        }
    }
}

/// A malformed header block (received) or header name/value (to be sent).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The block does not start with `NATS/1.0`.
    MissingVersion,
    /// The status after `NATS/1.0` is not three digits.
    InvalidStatus,
    /// The block does not end with an empty line (`CRLF CRLF`).
    MissingTerminator,
    /// A header line has no `:`.
    MissingColon,
    /// A header name is empty.
    EmptyName,
    /// A header name has a space, a control character, or a `:`.
    InvalidName,
    /// A header value (or status description) contains CR or LF.
    InvalidValue,
    /// A CR not followed by LF, or an LF not preceded by CR.
    BareLineBreak,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingVersion => "does not start with NATS/1.0",
            Self::InvalidStatus => "status is not three digits",
            Self::MissingTerminator => "does not end with an empty line",
            Self::MissingColon => "header line without ':'",
            Self::EmptyName => "empty header name",
            Self::InvalidName => "header name with whitespace, control character or ':'",
            Self::InvalidValue => "header value with CR or LF",
            Self::BareLineBreak => "bare CR or LF",
        })
    }
}

impl core::error::Error for HeaderError {}

/// A subject, reply subject or queue group that the protocol cannot carry.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectError {
    /// Empty subject or queue group.
    Empty,
    /// Contains a space, tab, CR, LF or another control character.
    Whitespace,
    /// Leading, trailing or doubled `.`.
    EmptyToken,
    /// `*` or `>` in a subject that must be literal (publish and reply subjects).
    Wildcard,
    /// `>` that is not the last token.
    FullWildcardNotLast,
    /// Longer than fits in a control line.
    TooLong,
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty",
            Self::Whitespace => "contains whitespace or a control character",
            Self::EmptyToken => "has an empty token (leading, trailing or double '.')",
            Self::Wildcard => "wildcard in a subject that must be literal",
            Self::FullWildcardNotLast => "'>' is not the last token",
            Self::TooLong => "too long for a control line",
        })
    }
}

impl core::error::Error for SubjectError {}

/// Which way a permissions violation went.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionOp {
    /// Publishing (or publishing with a reply subject) was denied.
    Publish,
    /// Subscribing was denied.
    Subscribe,
}

/// An `-ERR` from the server, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    kind: ServerErrorKind,
    message: String,
}

/// The classes of server `-ERR` messages (nats-server 2.9 to 2.15).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    /// `Unknown Protocol Operation`.
    UnknownProtocolOperation,
    /// `Authorization Violation`: bad or missing credentials.
    AuthorizationViolation,
    /// `Authentication Timeout`: CONNECT came too late.
    AuthenticationTimeout,
    /// `User/Account Authentication Expired`.
    AuthenticationExpired,
    /// `User Authentication Revoked`.
    AuthenticationRevoked,
    /// `maximum control line exceeded`.
    MaxControlLineExceeded,
    /// `Maximum Payload Violation`.
    MaxPayloadViolation,
    /// `invalid client protocol`.
    InvalidClientProtocol,
    /// `no responders requires headers support`.
    NoRespondersRequiresHeaders,
    /// `maximum connections exceeded` (server or account).
    MaxConnectionsExceeded,
    /// `Stale Connection`.
    StaleConnection,
    /// `Secure Connection - TLS Required`.
    TlsRequired,
    /// `Connection throttling is active`.
    ConnectionThrottling,
    /// `attempted to connect to route/leaf node/gateway port`.
    WrongPort,
    /// `Invalid Subject`: a SUB was refused.
    InvalidSubject,
    /// `Invalid Publish Subject` (pedantic mode).
    InvalidPublishSubject,
    /// `Permissions Violation for Publish/Subscription ...`.
    PermissionsViolation,
    /// `maximum subscriptions exceeded`.
    MaxSubscriptionsExceeded,
    /// Anything else.
    Other,
}

impl ServerError {
    /// Classifies the text of an `-ERR` (quotes already removed). Matching ignores case, as the server mixes it.
    pub fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        let kind = classify(&message.to_ascii_lowercase());
        Self { kind, message }
    }

    /// The class.
    pub fn kind(&self) -> ServerErrorKind {
        self.kind
    }

    /// The text as the server sent it, without quotes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the server closes the connection after sending this error.
    pub fn closes_connection(&self) -> bool {
        use ServerErrorKind::*;
        !matches!(
            self.kind,
            InvalidSubject | InvalidPublishSubject | PermissionsViolation | MaxSubscriptionsExceeded | Other
        )
    }

    /// True for credential problems: retrying the same server at once will fail the same way.
    pub fn is_auth_error(&self) -> bool {
        use ServerErrorKind::*;
        matches!(self.kind, AuthorizationViolation | AuthenticationExpired | AuthenticationRevoked)
    }

    /// For a permissions violation: what was denied, on which subject, and for subscriptions which queue.
    pub fn permission(&self) -> Option<(PermissionOp, &str, Option<&str>)> {
        if self.kind != ServerErrorKind::PermissionsViolation {
            return None;
        }
        let op = if self.message.to_ascii_lowercase().contains("for subscription") {
            PermissionOp::Subscribe
        } else {
            PermissionOp::Publish
        };
        // The subject and queue are the first and second double-quoted strings.
        let mut quoted = self.message.split('"').skip(1).step_by(2);
        let subject = quoted.next()?;
        let queue = match op {
            PermissionOp::Subscribe if self.message.contains("using queue") => quoted.next(),
            _ => None,
        };
        Some((op, subject, queue))
    }
}

fn classify(lower: &str) -> ServerErrorKind {
    use ServerErrorKind::*;
    const TABLE: &[(&str, ServerErrorKind)] = &[
        ("unknown protocol operation", UnknownProtocolOperation),
        ("authorization violation", AuthorizationViolation),
        ("authentication timeout", AuthenticationTimeout),
        ("authorization timeout", AuthenticationTimeout),
        ("authentication expired", AuthenticationExpired),
        ("authentication revoked", AuthenticationRevoked),
        ("maximum control line exceeded", MaxControlLineExceeded),
        ("maximum payload violation", MaxPayloadViolation),
        ("invalid client protocol", InvalidClientProtocol),
        ("no responders requires headers support", NoRespondersRequiresHeaders),
        ("maximum connections exceeded", MaxConnectionsExceeded),
        ("maximum account active connections exceeded", MaxConnectionsExceeded),
        ("stale connection", StaleConnection),
        ("tls required", TlsRequired),
        ("connection throttling", ConnectionThrottling),
        ("attempted to connect to", WrongPort),
        ("invalid publish subject", InvalidPublishSubject),
        ("invalid subject", InvalidSubject),
        ("permissions violation", PermissionsViolation),
        ("maximum subscriptions exceeded", MaxSubscriptionsExceeded),
    ];
    TABLE.iter().find(|(needle, _)| lower.contains(needle)).map_or(Other, |&(_, kind)| kind)
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server error: {}", self.message)
    }
}

impl core::error::Error for ServerError {}

/// A command the connection refused; nothing was queued.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The subject (or reply subject) cannot be used.
    InvalidSubject(SubjectError),
    /// The queue group cannot be used.
    InvalidQueue(SubjectError),
    /// A header name or value cannot be sent.
    InvalidHeaders(HeaderError),
    /// Header block plus payload exceed the server's `max_payload`.
    MaxPayloadExceeded {
        /// Header block plus payload, in bytes.
        size: usize,
        /// The server's limit.
        max_payload: usize,
    },
    /// The server does not support headers (INFO `headers:false`).
    HeadersNotSupported,
    /// Disconnected, and the reconnect buffer has no room for this publish.
    ReconnectBufferFull {
        /// Bytes the op needs.
        needed: usize,
        /// Bytes still free.
        available: usize,
    },
    /// No subscription with this id.
    UnknownSubscription(u64),
    /// The connection is draining and takes no new subscriptions or requests.
    Draining,
    /// The connection is closed.
    Closed,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            Self::InvalidQueue(e) => write!(f, "invalid queue group: {e}"),
            Self::InvalidHeaders(e) => write!(f, "invalid headers: {e}"),
            Self::MaxPayloadExceeded { size, max_payload } => {
                write!(f, "message of {size} bytes exceeds the server's max_payload of {max_payload}")
            }
            Self::HeadersNotSupported => f.write_str("the server does not support headers"),
            Self::ReconnectBufferFull { needed, available } => {
                write!(f, "reconnect buffer full: {needed} bytes needed, {available} free")
            }
            Self::UnknownSubscription(sid) => write!(f, "no subscription with id {sid}"),
            Self::Draining => f.write_str("the connection is draining"),
            Self::Closed => f.write_str("the connection is closed"),
        }
    }
}

impl core::error::Error for CommandError {}

impl From<SubjectError> for CommandError {
    fn from(e: SubjectError) -> Self {
        Self::InvalidSubject(e)
    }
}

impl From<HeaderError> for CommandError {
    fn from(e: HeaderError) -> Self {
        Self::InvalidHeaders(e)
    }
}

/// Why the connection to one server ended.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionError {
    /// The transport reported end of stream or an I/O error.
    TransportClosed,
    /// The server sent bytes that are not NATS protocol.
    Parse(ParseError),
    /// The server sent an `-ERR` that ends the connection.
    Server(ServerError),
    /// More PINGs went unanswered than allowed.
    StaleConnection,
    /// The handshake did not finish before the connect deadline.
    ConnectTimeout,
    /// The first op from the server was not INFO.
    ExpectedInfo,
    /// TLS is required by the options but the server does not offer it.
    TlsUnavailable,
    /// The server needs a feature the client was told not to use, or the reverse.
    Incompatible(&'static str),
    /// The transport could not be opened (refused, unreachable, name not resolved, timed out).
    Unreachable(String),
    /// The TLS handshake failed (untrusted certificate, wrong name, no client certificate, ...).
    Tls(String),
    /// The credentials callback failed (unreadable creds file, bad seed, ...).
    Credentials(String),
    /// The WebSocket layer under the protocol failed: the upgrade was refused or malformed, a frame broke the
    /// WebSocket rules, or the server closed the WebSocket (its close code and reason are in the text).
    WebSocket(String),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TransportClosed => f.write_str("connection closed by transport"),
            Self::Parse(e) => e.fmt(f),
            Self::Server(e) => e.fmt(f),
            Self::StaleConnection => f.write_str("stale connection: PINGs went unanswered"),
            Self::ConnectTimeout => f.write_str("handshake did not finish in time"),
            Self::ExpectedInfo => f.write_str("server did not start with INFO"),
            Self::TlsUnavailable => f.write_str("TLS required but the server does not offer it"),
            Self::Incompatible(why) => write!(f, "incompatible server: {why}"),
            Self::Unreachable(why) => write!(f, "server unreachable: {why}"),
            Self::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            Self::Credentials(why) => write!(f, "credentials unavailable: {why}"),
            Self::WebSocket(why) => write!(f, "websocket: {why}"),
        }
    }
}

impl core::error::Error for ConnectionError {}

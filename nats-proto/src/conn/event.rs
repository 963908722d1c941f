//! What a connection reports: its state, events, and counters.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::mux::{RequestError, RequestId};
use super::pool::ServerAddr;
use crate::error::{ConnectionError, ParseError, ServerError};
use crate::op::Msg;

/// Where the connection is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting to dial (backoff).
    Disconnected,
    /// Asked the driver to dial.
    Dialing,
    /// Transport up; waiting for INFO.
    AwaitInfo,
    /// Asked the driver to set up TLS.
    AwaitTls,
    /// INFO read; asked the driver for credentials ([`Action::Credentials`]), CONNECT goes once they come.
    AwaitCredentials,
    /// CONNECT and PING sent; waiting for PONG.
    AwaitPong,
    /// Ready.
    Connected,
    /// Unsubscribed everything; delivering what is in flight, then closing.
    Draining,
    /// Done; every command fails with [`CommandError::Closed`](crate::error::CommandError::Closed).
    Closed,
}

/// Identifies a flush made with [`Connection::flush`](super::Connection::flush).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlushId(pub(crate) u64);

/// Why a flush did not complete.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushError {
    /// No PONG before the deadline.
    Timeout,
    /// The connection was lost after the PING was sent; what preceded it may not have arrived.
    Disconnected,
    /// The connection was closed.
    Closed,
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "flush timed out",
            Self::Disconnected => "disconnected before the flush completed",
            Self::Closed => "connection closed",
        })
    }
}

impl core::error::Error for FlushError {}

/// Why a subscription ended.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEnd {
    /// It delivered the number of messages given to `unsubscribe` as max.
    MaxReached,
    /// It was unsubscribed.
    Unsubscribed,
    /// The connection drained it.
    Drained,
    /// The server refused it.
    PermissionDenied(ServerError),
    /// The connection closed.
    Closed,
}

/// Why the connection closed for good.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// [`Connection::close`](super::Connection::close) was called.
    Requested,
    /// A drain finished.
    Drained,
    /// A drain's timeout passed before it finished.
    DrainTimedOut,
    /// The first connection failed and `retry_on_initial_connect` is off.
    InitialConnectFailed(ConnectionError),
    /// No server is left in the pool.
    ReconnectsExhausted(ConnectionError),
}

/// What the driver must do for the connection (see [`Connection::poll_action`](super::Connection::poll_action)).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a transport to this server, then call `handle_connected` (or `handle_eof` on failure).
    Dial(ServerAddr),
    /// Set up TLS on the transport for this server, then call `handle_tls_ready`.
    StartTls(ServerAddr),
    /// Write what `poll_transmit` still gives, then close the transport.
    CloseTransport,
    /// Produce this handshake's credentials from the server's `nonce` (with the configured
    /// [`CredentialsCallback`](crate::CredentialsCallback): it may read a file and sign), outside any lock, and
    /// hand the result to `handle_credentials`. The attempt's connect timeout keeps running meanwhile.
    Credentials {
        /// The nonce of the server's INFO, if it sent one.
        nonce: Option<String>,
        /// Which ask this is: hand it back with the answer (an answer to an earlier ask is ignored).
        ask: u64,
    },
}

/// What the connection has to tell its users (see [`Connection::poll_event`](super::Connection::poll_event)).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first connection is ready.
    Connected(ServerAddr),
    /// A connection is ready again after a loss; subscriptions were replayed.
    Reconnected(ServerAddr),
    /// The connection was lost; reconnecting.
    Disconnected(ConnectionError),
    /// An attempt to connect failed.
    ConnectFailed {
        /// The server tried.
        server: ServerAddr,
        /// What went wrong.
        error: ConnectionError,
    },
    /// The server is in lame duck mode and will close this connection soon.
    LameDuck,
    /// INFO added servers to the pool.
    DiscoveredServers,
    /// The server sent `-ERR`.
    ServerError(ServerError),
    /// A message for a subscription.
    Message(Msg),
    /// A subscription ended; no more messages for its sid.
    SubscriptionEnded {
        /// The subscription.
        sid: u64,
        /// Why.
        reason: SubscriptionEnd,
    },
    /// A reply (or the end) of a request.
    Response {
        /// The request.
        id: RequestId,
        /// The reply, or why there is none.
        result: Result<Msg, RequestError>,
        /// No more events will come for this request.
        done: bool,
    },
    /// A flush completed or failed.
    Flushed {
        /// The flush.
        id: FlushId,
        /// The outcome.
        result: Result<(), FlushError>,
    },
    /// A message was dropped because its header block was malformed; the connection goes on.
    BadMessage(ParseError),
    /// The connection is closed for good.
    Closed(CloseReason),
}

/// Where a connection hands the messages of subscriptions while it decodes (see
/// [`Connection::handle_read`](super::Connection::handle_read)): the straight path from the read buffer to
/// a subscriber. The core has already done the bookkeeping (the subscription's count and max); a sink only
/// routes.
pub trait Deliver {
    /// A message for the subscription `msg.sid()`, in the order the server sent them.
    fn deliver(&mut self, msg: Msg);
}

/// A vector collects messages in order (for tests and simple drivers).
impl Deliver for Vec<Msg> {
    fn deliver(&mut self, msg: Msg) {
        self.push(msg);
    }
}

/// No sink: `handle_input` turns messages into events instead.
pub(crate) enum NoSink {}

impl Deliver for NoSink {
    fn deliver(&mut self, _: Msg) {
        match *self {}
    }
}

/// Counters since the connection was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statistics {
    /// Bytes received from the transport.
    pub in_bytes: u64,
    /// Bytes queued for the transport.
    pub out_bytes: u64,
    /// Messages received (MSG and HMSG).
    pub in_msgs: u64,
    /// Messages published.
    pub out_msgs: u64,
    /// Successful handshakes.
    pub connects: u64,
    /// Successful handshakes after the first.
    pub reconnects: u64,
}

//! Connection events, as a callback or a receiver.

use nats_proto::{ConnectionError, ParseError, ServerError};

/// Something that happened to the connection.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first connection is ready (server URL, without credentials).
    Connected(String),
    /// A connection is ready again; subscriptions were replayed and buffered publishes sent.
    Reconnected(String),
    /// The connection was lost; reconnecting.
    Disconnected(ConnectionError),
    /// An attempt to connect failed.
    ConnectFailed {
        /// The server tried.
        server: String,
        /// Why.
        error: ConnectionError,
    },
    /// The server is shutting down and will close this connection soon.
    LameDuck,
    /// The server announced more servers.
    DiscoveredServers,
    /// A subscription's pending limits were reached: messages are being dropped (one event per episode).
    SlowConsumer {
        /// The subscription.
        sid: u64,
    },
    /// The server sent `-ERR`.
    ServerError(ServerError),
    /// A message with a malformed header block was dropped.
    BadMessage(ParseError),
    /// The client is closed.
    Closed,
}

//! The one error type of the client.

use std::fmt;
use std::io;

use nats_proto::{CloseReason, CommandError, ConnectionError, InvalidUrl, ServerError, SubscriptionEnd};

/// Everything a client call can fail with.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The protocol cannot carry the command (invalid subject, payload over `max_payload`, full reconnect
    /// buffer, ...). Nothing was sent.
    Command(CommandError),
    /// No answer in time (request, flush, drain, connect).
    Timeout,
    /// A request found no subscriber (status 503).
    NoResponders,
    /// The connection was lost before a flush was confirmed: what preceded it may not have arrived.
    Disconnected,
    /// The client (or the subscription) is closed.
    Closed,
    /// The server refused a subscription or publish (permissions violation).
    Permission(ServerError),
    /// The first connection failed.
    Connect(ConnectionError),
    /// A server URL could not be parsed.
    InvalidUrl(InvalidUrl),
    /// The operating system refused something (spawning a thread, ...).
    Io(io::Error),
    /// An option is invalid: an unreadable certificate or creds file, a bad nkey seed. Never contains secrets.
    Options(String),
    /// A call that waits for the connection's reader was made on the reader's own thread (in an inline
    /// handler of the blocking client): it could never complete, so it fails at once.
    WouldDeadlock,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Command(e) => e.fmt(f),
            Error::Timeout => f.write_str("timed out"),
            Error::NoResponders => f.write_str("no responders"),
            Error::Disconnected => f.write_str("disconnected before the flush was confirmed"),
            Error::Closed => f.write_str("closed"),
            Error::Permission(e) => write!(f, "permission denied: {}", e.message()),
            Error::Connect(e) => write!(f, "could not connect: {e}"),
            Error::InvalidUrl(e) => e.fmt(f),
            Error::Io(e) => e.fmt(f),
            Error::Options(why) => write!(f, "invalid options: {why}"),
            Error::WouldDeadlock => {
                f.write_str("waited for the connection on its own reader thread (an inline handler must not wait)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Command(e) => Some(e),
            Error::Connect(e) => Some(e),
            Error::Permission(e) => Some(e),
            Error::InvalidUrl(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Closed => Error::Closed,
            e => Error::Command(e),
        }
    }
}

impl From<InvalidUrl> for Error {
    fn from(e: InvalidUrl) -> Self {
        Error::InvalidUrl(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<CloseReason> for Error {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::InitialConnectFailed(e) | CloseReason::ReconnectsExhausted(e) => Error::Connect(e),
            CloseReason::DrainTimedOut => Error::Timeout,
            _ => Error::Closed,
        }
    }
}

impl From<SubscriptionEnd> for Error {
    /// What reading an ended subscription reports: `Permission` when the server refused it, else `Closed`.
    fn from(why: SubscriptionEnd) -> Self {
        match why {
            SubscriptionEnd::PermissionDenied(e) => Error::Permission(e),
            _ => Error::Closed,
        }
    }
}

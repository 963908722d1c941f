//! WebSocket for both clients (`ws://` and `wss://` URLs): a sans-IO codec that sits between the socket (plain,
//! or TLS for `wss`) and the NATS core, so that one implementation serves the blocking client's threads and
//! the async client on any runtime.
//!
//! ```text
//!   socket/TLS bytes ──► FrameDecoder (headers out, in place) ──► protocol bytes ──► Connection::handle_read
//!   Connection::poll_transmit ──► FrameEncoder (header + the same slices, or a masked copy) ──► socket/TLS
//! ```
//!
//! - [`ClientHandshake`]: the upgrade request (with the caller's random key, and nats-server's
//!   `Nats-No-Masking: true`), and the check of the response: 101, `Upgrade`, `Connection`,
//!   `Sec-WebSocket-Accept`, no extension or subprotocol the client did not ask for. Bytes after the
//!   response are already frames.
//! - [`FrameDecoder`]: frames to protocol bytes in the driver's read buffer; a frame is not an op boundary.
//! - [`FrameEncoder`]: protocol bytes to frames, unmasked without a copy when the server agreed, else masked.
//!
//! The codec takes bytes and gives bytes: where they come from is the driver's business. It needs no clock;
//! randomness (the handshake key, the mask keys) comes from the caller ([`random_key`], [`RandomKeys`]).
//!
//! ```
//! use bytes::BytesMut;
//! use nats_client::ws::{accept_key, ClientHandshake, FrameDecoder};
//!
//! let handshake = ClientHandshake::new([7; 16], true);
//! let request = handshake.request("127.0.0.1:8080", "/", &[]);
//! assert!(request.starts_with(b"GET / HTTP/1.1\r\n"));
//!
//! // The server's answer, and its first frame in the same read: "INFO {}\r\n" in two binary fragments.
//! let mut wire = format!(
//!     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!      Sec-WebSocket-Accept: {}\r\nNats-No-Masking: true\r\n\r\n",
//!     accept_key(handshake.key())
//! )
//! .into_bytes();
//! let upgraded = handshake.read_response(&wire).unwrap().expect("complete");
//! assert!(upgraded.no_masking);
//! wire.drain(..upgraded.consumed);
//! wire.extend_from_slice(&[0x02, 4]);
//! wire.extend_from_slice(b"INFO");
//! wire.extend_from_slice(&[0x80, 5]);
//! wire.extend_from_slice(b" {}\r\n");
//!
//! let mut buf = BytesMut::from(&wire[..]);
//! let mut decoder = FrameDecoder::new();
//! assert_eq!(decoder.decode(&mut buf, 0).unwrap(), 9);
//! assert_eq!(&buf[..], b"INFO {}\r\n");
//! ```

mod decode;
mod encode;
mod frame;
mod handshake;

use std::fmt;
use std::hash::BuildHasher;
use std::io;

use nats_proto::{ConnectionError, ServerAddr};

pub use decode::FrameDecoder;
pub use encode::{FrameEncoder, MaskKeys};
pub use frame::{apply_mask, encode_header, FrameError, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER};
pub use handshake::{accept_key, ClientHandshake, HandshakeError, Upgraded, MAX_RESPONSE, NO_MASKING_HEADER};

/// Why a WebSocket ended or never opened.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// The upgrade failed.
    Handshake(HandshakeError),
    /// The server sent a frame that breaks RFC 6455.
    Frame(FrameError),
    /// The server closed the WebSocket.
    Closed {
        /// Its status code (1000 normal, 1001 going away, 1008 policy, ...), if it sent one.
        code: Option<u16>,
        /// Its reason, if any.
        reason: String,
    },
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Handshake(e) => e.fmt(f),
            WsError::Frame(e) => e.fmt(f),
            WsError::Closed { code: Some(code), reason } if !reason.is_empty() => {
                write!(f, "the server closed the websocket ({code}: {reason})")
            }
            WsError::Closed { code: Some(code), .. } => write!(f, "the server closed the websocket ({code})"),
            WsError::Closed { .. } => f.write_str("the server closed the websocket"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<HandshakeError> for WsError {
    fn from(e: HandshakeError) -> Self {
        WsError::Handshake(e)
    }
}

impl From<FrameError> for WsError {
    fn from(e: FrameError) -> Self {
        WsError::Frame(e)
    }
}

impl From<WsError> for ConnectionError {
    fn from(e: WsError) -> Self {
        ConnectionError::WebSocket(e.to_string())
    }
}

impl From<WsError> for io::Error {
    /// An I/O error carrying the WebSocket error, for drivers whose reads return `io::Result`; see
    /// [`connection_error`].
    fn from(e: WsError) -> Self {
        io::Error::other(e)
    }
}

/// The connection error for an I/O error that carries a [`WsError`] (see `From<WsError> for io::Error`);
/// `None` for any other.
pub fn connection_error(e: &io::Error) -> Option<ConnectionError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<WsError>()).map(|ws| ConnectionError::from(ws.clone()))
}

/// The WebSocket part of the connect options, as the drivers need it.
#[derive(Debug, Clone, Default)]
pub struct WebSocketSettings {
    /// Headers added to every upgrade request.
    pub headers: Vec<(String, String)>,
    /// Mask every frame even where the server would take them unmasked.
    pub always_mask: bool,
}

impl WebSocketSettings {
    /// The handshake for a new connection to `addr` (a fresh random key), and the request to send first.
    pub fn start(&self, addr: &ServerAddr) -> (ClientHandshake, Vec<u8>) {
        let handshake = ClientHandshake::new(random_key(), !self.always_mask);
        let request = handshake.request(&addr.host_port(), addr.path(), &self.headers);
        (handshake, request)
    }

    /// The encoder for a connection the server upgraded: unmasked only if the server agreed.
    pub fn encoder(&self, upgraded: &Upgraded) -> FrameEncoder {
        if upgraded.no_masking {
            FrameEncoder::unmasked()
        } else {
            FrameEncoder::masked(RandomKeys::new())
        }
    }
}

/// 64 bits from the standard library's per-process random hasher keys: unpredictable enough for a
/// handshake key and mask keys, which guard intermediaries against content a browser script chose (a NATS
/// client's frames are not that), not secrets.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// 16 random bytes for a `Sec-WebSocket-Key`.
pub fn random_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&random_u64().to_le_bytes());
    key[8..].copy_from_slice(&random_u64().to_le_bytes());
    key
}

/// Mask keys from a xorshift generator seeded with random bits: a fresh key per frame, cheaply.
#[derive(Debug, Clone)]
pub struct RandomKeys(u64);

impl RandomKeys {
    /// A generator with a random seed.
    pub fn new() -> Self {
        Self(random_u64() | 1)
    }
}

impl Default for RandomKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskKeys for RandomKeys {
    fn next_key(&mut self) -> [u8; 4] {
        // xorshift64*: never zero once seeded odd.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 32) as u32).to_le_bytes()
    }
}

#[cfg(test)]
mod tests;

//! [`ClientHandshake`]: the HTTP upgrade that opens a WebSocket, as bytes to send and bytes to check.

use std::fmt;

use sha1::{Digest, Sha1};

/// The GUID RFC 6455 (section 1.3) appends to the key before hashing it into `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The header with which nats-server lets a client send its frames unmasked, and echoes when it agrees.
pub const NO_MASKING_HEADER: &str = "Nats-No-Masking";

/// The longest upgrade response accepted: a server sends a few hundred bytes.
pub const MAX_RESPONSE: usize = 16 * 1024;

/// Response headers read at most.
const MAX_HEADERS: usize = 32;

/// Why the server's answer to the upgrade request does not open a WebSocket.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The response is not HTTP/1.1 (what `httparse` found wrong).
    Malformed(String),
    /// The server answered with another status than 101 Switching Protocols.
    Status {
        /// The HTTP status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// `Upgrade: websocket` or `Connection: Upgrade` is missing.
    NotUpgraded,
    /// `Sec-WebSocket-Accept` is missing or does not match the key sent.
    BadAccept,
    /// The server named an extension or a subprotocol the client did not ask for.
    Unrequested(String),
    /// No complete response within [`MAX_RESPONSE`] bytes.
    TooLarge,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(why) => write!(f, "malformed upgrade response: {why}"),
            HandshakeError::Status { code, reason } => write!(f, "upgrade refused: HTTP {code} {reason}"),
            HandshakeError::NotUpgraded => f.write_str("the response does not upgrade to websocket"),
            HandshakeError::BadAccept => f.write_str("Sec-WebSocket-Accept does not match the key sent"),
            HandshakeError::Unrequested(what) => write!(f, "the server chose {what}, which was not asked for"),
            HandshakeError::TooLarge => write!(f, "no complete upgrade response in {MAX_RESPONSE} bytes"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// What the server agreed to in its upgrade response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    /// The server lets this client send its frames unmasked (it echoed `Nats-No-Masking: true`).
    pub no_masking: bool,
    /// Bytes of the input the response took: what follows is already the server's first frames.
    pub consumed: usize,
}

/// The client side of the opening handshake (RFC 6455, section 4.1), without I/O: the request to send, and the
/// check of the response.
///
/// The key comes from the caller, so that the bytes are reproducible in tests; a driver passes 16 fresh
/// random bytes. Asking for no masking (`Nats-No-Masking: true`) is nats-server's extension: a server that
/// allows it echoes the header, and only then may frames go unmasked.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    key: String,
    ask_no_masking: bool,
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the key and the GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    data_encoding::BASE64.encode(&sha.finalize())
}

impl ClientHandshake {
    /// A handshake with this key (16 random bytes), asking for unmasked frames when `ask_no_masking`.
    pub fn new(key: [u8; 16], ask_no_masking: bool) -> Self {
        Self { key: data_encoding::BASE64.encode(&key), ask_no_masking }
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The upgrade request for `path` (the request target, `/` at least) on `host` (`host:port`, the `Host`
    /// header), with `headers` added as given (names and values must not hold CR or LF: the options check).
    pub fn request(&self, host: &str, path: &str, headers: &[(String, String)]) -> Vec<u8> {
        let path = if path.is_empty() { "/" } else { path };
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.key
        );
        if self.ask_no_masking {
            req.push_str(NO_MASKING_HEADER);
            req.push_str(": true\r\n");
        }
        for (name, value) in headers {
            req.push_str(name);
            req.push_str(": ");
            req.push_str(value);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.into_bytes()
    }

    /// Reads the response at the start of `input`: `Ok(None)` while it is incomplete (read more and call again
    /// with everything so far), then what the server agreed to. Fails on anything but a valid 101 for this key.
    pub fn read_response(&self, input: &[u8]) -> Result<Option<Upgraded>, HandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let consumed = match response.parse(input) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if input.len() >= MAX_RESPONSE => return Err(HandshakeError::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
        };
        let code = response.code.unwrap_or(0);
        if code != 101 {
            let reason = response.reason.unwrap_or("").to_owned();
            return Err(HandshakeError::Status { code, reason });
        }
        let headers: &[httparse::Header<'_>] = response.headers;
        let value = |name: &'static str| values(headers, name);
        let has_token = |name: &'static str, token: &str| {
            value(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if !has_token("Upgrade", "websocket") || !has_token("Connection", "upgrade") {
            return Err(HandshakeError::NotUpgraded);
        }
        let expected = accept_key(&self.key);
        if !value("Sec-WebSocket-Accept").any(|v| v == expected) {
            return Err(HandshakeError::BadAccept);
        }
        for name in ["Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol"] {
            if let Some(v) = value(name).find(|v| !v.is_empty()) {
                return Err(HandshakeError::Unrequested(format!("{name}: {v}")));
            }
        }
        let echoed = value(NO_MASKING_HEADER).any(|v| v.eq_ignore_ascii_case("true"));
        Ok(Some(Upgraded { no_masking: self.ask_no_masking && echoed, consumed }))
    }
}

/// The values of the headers called `name` (any case), trimmed.
fn values<'h>(headers: &'h [httparse::Header<'_>], name: &'h str) -> impl Iterator<Item = String> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
}

//! The fake server's WebSocket side (RFC 6455), written apart from the clients' codec so that each checks the
//! other: the server half of the upgrade, frames out cut wherever a test wants them, and client frames read,
//! unmasked and checked (masked unless no-masking was agreed, as nats-server requires).

use std::io::{ErrorKind, Read};
use std::time::Instant;

use crate::fake::{Conn, STEP};

/// The GUID of RFC 6455, section 1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn ws_accept_key(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, format!("{key}{GUID}").as_bytes());
    data_encoding::BASE64.encode(digest.as_ref())
}

/// One server frame (unmasked): `opcode` (1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong).
pub fn ws_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// The client's upgrade request, as the fake server read it.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The request line, `GET /path HTTP/1.1`.
    pub request_line: String,
    /// Every header, in order.
    pub headers: Vec<(String, String)>,
}

impl UpgradeRequest {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the fake server saw of the client's frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsStats {
    /// Text, binary and continuation frames.
    pub data_frames: usize,
    /// The payload of each pong.
    pub pongs: Vec<Vec<u8>>,
    /// The status code of the client's close frame, once one came (`Some(None)`: a close without a code).
    pub close: Option<Option<u16>>,
}

/// The WebSocket state of a [`Conn`].
#[derive(Debug)]
pub(crate) struct WsSide {
    frame_size: usize,
    fragment: bool,
    /// The client must mask (no-masking was not agreed).
    masked: bool,
    raw: Vec<u8>,
    stats: WsStats,
}

impl WsSide {
    /// `bytes` as the frames a send makes: `frame_size` payload bytes each, one message each or one
    /// fragmented message.
    pub(crate) fn frame(&self, bytes: &[u8]) -> Vec<u8> {
        let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![bytes] } else { bytes.chunks(self.frame_size).collect() };
        let last = pieces.len() - 1;
        let mut out = Vec::with_capacity(bytes.len() + 10 * pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            let (opcode, fin) = match self.fragment {
                true => (if i == 0 { 2 } else { 0 }, i == last),
                false => (2, true),
            };
            out.extend(ws_frame(opcode, fin, piece));
        }
        out
    }
}

impl Conn {
    /// Reads the client's upgrade request (panics after [`STEP`] or if it is not one) without answering it.
    pub fn read_upgrade_request(&mut self) -> UpgradeRequest {
        let deadline = Instant::now() + STEP;
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no upgrade request from the client in time");
            self.stream.set_read_timeout(Some(left)).expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the client left during the upgrade"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the upgrade request: {e}"),
            }
        };
        let head = String::from_utf8(self.buf.split_to(end + 4).to_vec()).expect("an HTTP request is text");
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let request_line = lines.next().unwrap_or_default().to_owned();
        assert!(request_line.starts_with("GET ") && request_line.ends_with(" HTTP/1.1"), "{request_line:?}");
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("not a header: {l:?}"));
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        UpgradeRequest { request_line, headers }
    }

    /// Reads the client's upgrade request and accepts it as nats-server does: `101`, the accept key, and
    /// `Nats-No-Masking: true` when the client asked and `allow_no_masking`. From then on this connection
    /// frames what it sends (one frame per send until [`set_ws_frames`](Self::set_ws_frames)) and unframes
    /// what it reads, checking the client's masking.
    pub fn upgrade_websocket(&mut self, allow_no_masking: bool) -> UpgradeRequest {
        let request = self.read_upgrade_request();
        let key = request.header("Sec-WebSocket-Key").expect("Sec-WebSocket-Key").to_owned();
        assert_eq!(request.header("Sec-WebSocket-Version"), Some("13"));
        let no_masking = allow_no_masking && request.header("Nats-No-Masking") == Some("true");
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            ws_accept_key(&key)
        );
        if no_masking {
            response.push_str("Nats-No-Masking: true\r\n");
        }
        response.push_str("\r\n");
        self.send_unframed(response);
        self.ws = Some(WsSide {
            frame_size: usize::MAX,
            fragment: false,
            masked: !no_masking,
            raw: Vec::new(),
            stats: WsStats::default(),
        });
        request
    }

    /// Cuts what [`send`](Self::send) writes into frames of `size` payload bytes (`usize::MAX`: one frame a
    /// send), each a message of its own or, with `fragment`, all one message in continuation frames.
    pub fn set_ws_frames(&mut self, size: usize, fragment: bool) {
        let ws = self.ws.as_mut().expect("a WebSocket connection");
        ws.frame_size = size.max(1);
        ws.fragment = fragment;
    }

    /// What the client's frames were so far.
    pub fn ws_stats(&self) -> WsStats {
        self.ws.as_ref().map(|ws| ws.stats.clone()).unwrap_or_default()
    }

    /// Sends one frame as given (server frames are unmasked).
    pub fn send_frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) {
        self.send_unframed(ws_frame(opcode, fin, payload));
    }

    /// Takes the client's frames out of `data`: their payloads go to the protocol buffer, control frames to
    /// the stats. Panics on a frame nats-server would refuse.
    pub(crate) fn unframe(&mut self, data: &[u8]) {
        let ws = self.ws.as_mut().expect("a WebSocket connection");
        ws.raw.extend_from_slice(data);
        loop {
            let raw = &ws.raw;
            if raw.len() < 2 {
                return;
            }
            let (opcode, masked) = (raw[0] & 0x0F, raw[1] & 0x80 != 0);
            let (len, mut at) = match raw[1] & 0x7F {
                126 if raw.len() >= 4 => (u16::from_be_bytes([raw[2], raw[3]]) as usize, 4),
                127 if raw.len() >= 10 => (u64::from_be_bytes(raw[2..10].try_into().expect("8 bytes")) as usize, 10),
                126 | 127 => return,
                n => (usize::from(n), 2),
            };
            let key_len = if masked { 4 } else { 0 };
            if raw.len() < at + key_len + len {
                return;
            }
            assert_eq!(masked, ws.masked, "client frame masked: {masked}, agreed: {}", ws.masked);
            assert_eq!(raw[0] & 0x70, 0, "reserved bits");
            let key: Vec<u8> = raw[at..at + key_len].to_vec();
            at += key_len;
            let mut payload: Vec<u8> = raw[at..at + len].to_vec();
            if masked {
                payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
            }
            ws.raw.drain(..at + len);
            match opcode {
                0..=2 => {
                    ws.stats.data_frames += 1;
                    self.buf.extend_from_slice(&payload);
                }
                8 => ws.stats.close = Some((payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))),
                9 => {}
                10 => ws.stats.pongs.push(payload),
                other => panic!("the client sent a frame with opcode {other}"),
            }
        }
    }
}

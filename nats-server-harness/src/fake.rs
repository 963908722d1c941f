//! A scripted fake NATS server, for driving a client into situations a real server will not produce on demand
//! (garbage, stalls, half-written ops, resets, odd `-ERR`s).
//!
//! [`FakeServer::start`] binds a listener on `127.0.0.1:0` and runs a script on a thread of its own. The script
//! accepts connections ([`Script::accept`]), writes whatever bytes it likes ([`Conn::send`]), and reads what the
//! client sends, decoded with `nats_proto::ClientDecoder` ([`Conn::recv`], [`Conn::expect`]). Every wait is
//! bounded: a script that waits too long panics, and the test sees that panic when it joins the script.

use std::any::Any;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nats_proto::{ClientDecoder, ClientOp, ConnectInfo, Msg, ServerInfo, ServerOp, WriteBuffer};

/// The default bound of a single wait, on either side.
pub const STEP: Duration = Duration::from_secs(5);

/// A panic payload as text, for messages.
pub fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "<non-string panic>".to_owned())
}

/// The INFO of a well-behaved server (headers on, protocol 1, the given payload limit).
pub fn server_info(max_payload: usize) -> ServerInfo {
    let mut info = ServerInfo::default();
    info.server_id = "FAKE".into();
    info.server_name = "fake".into();
    info.version = "2.10.0".into();
    info.proto = 1;
    info.headers = true;
    info.max_payload = max_payload;
    info
}

/// An op in wire form, encoded by `ServerOp::encode`.
pub fn wire(op: &ServerOp) -> Bytes {
    let mut out = WriteBuffer::new();
    op.encode(&mut out);
    out.take_bytes()
}

/// `MSG <subject> <sid> <len>\r\n<payload>\r\n`.
pub fn msg(subject: &str, sid: u64, payload: &'static [u8]) -> Bytes {
    wire(&ServerOp::Msg(Msg::new(subject, sid, None, None, payload)))
}

/// A running fake server.
pub struct FakeServer {
    url: String,
    signals: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// What a script works with.
pub struct Script {
    /// `None` once the script stopped listening.
    listener: Option<TcpListener>,
    signals: Receiver<()>,
}

impl FakeServer {
    /// Binds `127.0.0.1:0` and runs `script` on a thread.
    pub fn start(script: impl FnOnce(&mut Script) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let url = format!("nats://{}", listener.local_addr().expect("local address"));
        let (tx, rx) = mpsc::channel();
        let mut s = Script { listener: Some(listener), signals: rx };
        let thread = std::thread::Builder::new()
            .name("fake-nats".into())
            .spawn(move || script(&mut s))
            .expect("spawn the fake server");
        Self { url, signals: tx, thread: Some(thread) }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Wakes a script waiting in [`Script::wait_signal`].
    pub fn signal(&self) {
        // A script that already ended (it panicked) is reported by `finish`.
        let _ = self.signals.send(());
    }

    /// True once the script has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the script to end (unbounded: check [`is_finished`](Self::is_finished) first); returns its
    /// panic, if any.
    pub fn join(mut self) -> Result<(), Box<dyn Any + Send>> {
        self.thread.take().map_or(Ok(()), JoinHandle::join)
    }

    /// Waits at most `limit` for the script to end, sleeping between looks; passes on its panic.
    pub fn finish_within(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.is_finished() {
            assert!(Instant::now() < deadline, "the fake server's script did not finish within {limit:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Err(panic) = self.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Script {
    /// The next client connection (panics after [`STEP`]).
    pub fn accept(&mut self) -> Conn {
        self.accept_within(STEP).expect("the client did not connect to the fake server in time")
    }

    /// Closes the listener: from now on the client's connection attempts are refused.
    pub fn stop_listening(&mut self) {
        self.listener = None;
    }

    /// The next client connection, or `None` after `limit` (at once after [`stop_listening`](Self::stop_listening)).
    pub fn accept_within(&mut self, limit: Duration) -> Option<Conn> {
        let deadline = Instant::now() + limit;
        let listener = self.listener.as_ref()?;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking stream");
                    let _ = stream.set_nodelay(true);
                    stream.set_write_timeout(Some(STEP)).expect("write timeout");
                    return Some(Conn::new(stream));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("accept failed: {e}"),
            }
        }
    }

    /// Waits (bounded) for [`FakeServer::signal`].
    pub fn wait_signal(&self) {
        match self.signals.recv_timeout(STEP * 2) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => panic!("the test did not signal the script in time"),
            Err(RecvTimeoutError::Disconnected) => panic!("the test ended without signalling the script"),
        }
    }
}

/// What [`Conn::recv`] got.
#[derive(Debug)]
pub enum Recv {
    /// A client op.
    Op(ClientOp),
    /// The client closed the connection (or reset it).
    Eof,
    /// Nothing within the time given.
    Timeout,
}

/// One client connection, from the server's side. After [`upgrade_websocket`](Conn::upgrade_websocket) it
/// speaks WebSocket: what it sends is framed, what it reads unframed (see `fake_ws`).
pub struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    decoder: ClientDecoder,
    pub(crate) ws: Option<crate::fake_ws::WsSide>,
    /// Answer the client's PINGs (on by default). Off, PINGs are only recorded.
    pub auto_pong: bool,
    /// PINGs received while `auto_pong` was off.
    pub unanswered_pings: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            decoder: ClientDecoder::default(),
            ws: None,
            auto_pong: true,
            unanswered_pings: 0,
        }
    }

    /// Writes raw bytes, framed on a WebSocket (panics if the client is gone).
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.try_send(bytes).expect("write to the client");
        self.stream.flush().expect("flush to the client");
    }

    /// Writes raw bytes, framed on a WebSocket; an error (the client is gone) is returned.
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        match &self.ws {
            Some(ws) => {
                let framed = ws.frame(bytes.as_ref());
                self.stream.write_all(&framed)
            }
            None => self.stream.write_all(bytes.as_ref()),
        }
    }

    /// Writes bytes as they are, never framed (a WebSocket's frames made by hand, or garbage).
    pub fn send_unframed(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("write to the client");
    }

    /// Sends an op encoded by `ServerOp::encode`.
    pub fn send_op(&mut self, op: &ServerOp) {
        self.send(wire(op));
    }

    /// Sends `INFO <json>`.
    pub fn send_info(&mut self, info: &ServerInfo) {
        self.send_op(&ServerOp::Info(Box::new(info.clone())));
    }

    /// The first raw bytes the client sends (not parsed: a TLS ClientHello, say), waiting at most `limit`;
    /// empty when nothing came or the client left.
    pub fn recv_raw(&mut self, limit: Duration) -> Vec<u8> {
        if !self.buf.is_empty() {
            return self.buf.split().to_vec();
        }
        let mut chunk = vec![0u8; 16 * 1024];
        self.stream.set_read_timeout(Some(limit)).expect("read timeout");
        match self.stream.read(&mut chunk) {
            Ok(n) => chunk[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// The next op from the client, waiting at most `limit`. PINGs are answered when `auto_pong` is on, counted
    /// when it is off; either way they are returned.
    pub fn recv(&mut self, limit: Duration) -> Recv {
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(op)) => {
                    if op == ClientOp::Ping {
                        if self.auto_pong {
                            self.send_op(&ServerOp::Pong);
                        } else {
                            self.unanswered_pings += 1;
                        }
                    }
                    return Recv::Op(op);
                }
                Ok(None) => {}
                Err(e) => panic!("the client sent bytes that are not NATS protocol: {e}"),
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                return Recv::Timeout;
            };
            self.stream.set_read_timeout(Some(left)).expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Eof,
                Ok(n) if self.ws.is_some() => self.unframe(&chunk[..n]),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Recv::Timeout,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Recv::Eof,
            }
        }
    }

    /// Reads until an op satisfies `pred` (panics on end of stream or after [`STEP`]).
    pub fn expect(&mut self, what: &str, mut pred: impl FnMut(&ClientOp) -> bool) -> ClientOp {
        let deadline = Instant::now() + STEP;
        let mut seen = vec![];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Recv::Op(op) if pred(&op) => return op,
                Recv::Op(op) => seen.push(op),
                other => panic!("fake server waited for {what}, got {other:?} after {seen:?}"),
            }
        }
    }

    /// Reads CONNECT and the PING after it, answers PONG (the handshake after INFO).
    pub fn handshake(&mut self) -> ConnectInfo {
        let ClientOp::Connect(connect) = self.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_))) else {
            unreachable!()
        };
        let pong = self.auto_pong;
        self.auto_pong = true;
        self.expect("the handshake PING", |op| *op == ClientOp::Ping);
        self.auto_pong = pong;
        *connect
    }

    /// INFO, then the handshake.
    pub fn greet(&mut self, info: &ServerInfo) -> ConnectInfo {
        self.send_info(info);
        self.handshake()
    }

    /// Reads until `SUB <subject>` and returns its sid.
    pub fn expect_sub(&mut self, subject: &str) -> u64 {
        let op =
            self.expect(&format!("SUB {subject}"), |op| matches!(op, ClientOp::Sub { subject: s, .. } if s == subject));
        let ClientOp::Sub { sid, .. } = op else { unreachable!() };
        sid
    }

    /// Reads (answering PINGs when `auto_pong` is on) until the client closes; returns what it sent. Panics if
    /// the client is still there after `limit`.
    pub fn until_eof(&mut self, limit: Duration) -> Vec<ClientOp> {
        let deadline = Instant::now() + limit;
        let mut ops = vec![];
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Recv::Op(op) => ops.push(op),
                Recv::Eof => return ops,
                Recv::Timeout => panic!("the client kept the connection open for {limit:?}; it sent {ops:?}"),
            }
        }
    }

    /// Waits (bounded) until the client has sent bytes the script has not read, without reading them.
    pub fn wait_unread_data(&mut self) {
        self.stream.set_read_timeout(Some(STEP)).expect("read timeout");
        let mut one = [0u8; 1];
        match self.stream.peek(&mut one) {
            Ok(n) if n > 0 => {}
            other => panic!("waited for unread data from the client, got {other:?}"),
        }
    }
}

//! Shared harness for the `Connection` state-machine tests: a [`Peer`] owns a connection, a simulated clock and
//! the scripted server side of the wire.
//!
//! Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nats_proto::{
    Action, ClientDecoder, ClientOp, Config, ConnectInfo, Connection, Event, Instant, Pub, ServerAddr, State, Subject,
    WriteBuffer,
};

/// The default server of most tests.
pub(crate) const URL: &str = "nats://127.0.0.1:4222";
/// A second server, for failover.
pub(crate) const URL2: &str = "nats://127.0.0.2:4222";
/// The INFO fields every test server sends unless told otherwise.
pub(crate) const INFO_FIELDS: &str = r#""headers":true,"max_payload":1048576"#;

/// Where the simulated clock starts: every instant is `base + Duration`, so the tests are deterministic. Not
/// zero, so that nothing can hide behind saturation at the origin.
fn base_instant() -> Instant {
    Instant::from_nanos(1_000_000_000_000)
}

/// Parses a server URL.
pub(crate) fn addr(url: &str) -> ServerAddr {
    ServerAddr::parse(url).expect("valid test URL")
}

/// Settings for these servers, in the given order (no shuffling), with a fixed seed.
pub(crate) fn config(urls: &[&str]) -> Config {
    let mut config = Config::new(urls.iter().map(|u| addr(u)).collect());
    config.randomize_servers = false;
    config.seed = 7;
    config
}

/// An INFO line with `server_id`, `proto:1` and the given extra JSON fields.
pub(crate) fn info_line(fields: &str) -> String {
    let sep = if fields.is_empty() { "" } else { "," };
    format!("INFO {{\"server_id\":\"S1\",\"server_name\":\"s1\",\"version\":\"2.11.0\",\"proto\":1{sep}{fields}}}\r\n")
}

/// The INFO of a plain server: headers on, 1 MiB max payload.
pub(crate) fn default_info() -> String {
    info_line(INFO_FIELDS)
}

/// A MSG frame.
pub(crate) fn msg(subject: &str, sid: u64, payload: &str) -> String {
    format!("MSG {subject} {sid} {}\r\n{payload}\r\n", payload.len())
}

/// An HMSG frame carrying only a status line (e.g. 503 no responders).
pub(crate) fn status_msg(subject: &str, sid: u64, status: u16) -> String {
    let block = format!("NATS/1.0 {status}\r\n\r\n");
    format!("HMSG {subject} {sid} {len} {len}\r\n{block}\r\n", len = block.len())
}

/// A `PUB` op as the client sends it, for comparing with [`Peer::sent`].
pub(crate) fn pub_op(subject: &str, reply: Option<&str>, payload: &str) -> ClientOp {
    ClientOp::Pub(Pub {
        subject: subject.into(),
        reply: reply.map(Subject::from),
        headers: None,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    })
}

/// A `SUB` op.
pub(crate) fn sub_op(subject: &str, queue: Option<&str>, sid: u64) -> ClientOp {
    ClientOp::Sub { subject: subject.into(), queue: queue.map(Subject::from), sid }
}

/// An `UNSUB` op.
pub(crate) fn unsub_op(sid: u64, max: Option<u64>) -> ClientOp {
    ClientOp::Unsub { sid, max }
}

/// Bytes on the wire of `PUB subject payload` (no reply), counted from the grammar.
pub(crate) fn pub_wire_len(subject: &str, payload: &str) -> usize {
    format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()).len()
}

/// A connection, a simulated clock and the scripted server side.
pub(crate) struct Peer {
    pub(crate) conn: Connection,
    base: Instant,
    elapsed: Duration,
    decoder: ClientDecoder,
    /// Client bytes not yet decoded (an op split across `poll_transmit` calls).
    wire: BytesMut,
    /// `Action::Dial`s seen by [`Peer::actions`] (or a handshake) that no handshake has answered yet.
    dials: Vec<ServerAddr>,
    /// Driver instructions taken out while answering a request for credentials, not yet seen by `actions`.
    held: Vec<Action>,
}

impl Peer {
    /// A new connection; its first `Action::Dial` is waiting.
    pub(crate) fn new(config: Config) -> Self {
        let base = base_instant();
        Self {
            conn: Connection::new(config, base),
            base,
            elapsed: Duration::ZERO,
            decoder: ClientDecoder::default(),
            wire: BytesMut::new(),
            dials: Vec::new(),
            held: Vec::new(),
        }
    }

    /// A connection that finished its handshake with the default INFO; events and client ops are drained.
    pub(crate) fn connected(config: Config) -> Self {
        let mut peer = Self::new(config);
        peer.handshake();
        assert!(peer.sent().is_empty(), "nothing to replay on a first connect");
        peer
    }

    /// The simulated current time.
    pub(crate) fn now(&self) -> Instant {
        self.base + self.elapsed
    }

    /// Moves the clock forward and lets the connection fire whatever is due.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.elapsed += d;
        self.conn.handle_timeout(self.now());
    }

    /// How long from now until `poll_timeout` (zero if it is due), or `None` without a timer.
    pub(crate) fn timeout_in(&self) -> Option<Duration> {
        self.conn.poll_timeout().map(|t| t.saturating_duration_since(self.now()))
    }

    /// Advances exactly to the next `poll_timeout`; returns how far that was.
    pub(crate) fn advance_to_timeout(&mut self) -> Duration {
        let d = self.timeout_in().expect("a timer is set");
        self.advance(d);
        d
    }

    /// Server bytes arriving. A request for credentials they cause is answered at once, as a driver would:
    /// with the configured callback.
    pub(crate) fn input(&mut self, data: impl AsRef<[u8]>) {
        let now = self.now();
        self.conn.handle_input(now, data.as_ref());
        self.answer_credentials();
    }

    /// Answers an `Action::Credentials` with the configured callback; other instructions are kept, in order,
    /// for [`Peer::actions`].
    fn answer_credentials(&mut self) {
        if self.conn.state() != State::AwaitCredentials {
            return;
        }
        let mut asked = None;
        while let Some(a) = self.conn.poll_action() {
            match a {
                Action::Credentials { nonce, ask } => asked = Some((nonce, ask)),
                other => self.held.push(other),
            }
        }
        if let Some((nonce, ask)) = asked {
            let callback = self.conn.config().auth.callback.clone().expect("credentials asked for without a callback");
            let now = self.now();
            self.conn.handle_credentials(now, ask, callback(nonce.as_deref()));
        }
    }

    /// The transport ends (or a dial fails).
    pub(crate) fn eof(&mut self) {
        let now = self.now();
        self.conn.handle_eof(now);
    }

    /// Every event waiting, in order.
    pub(crate) fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Drops every event and driver instruction waiting (a dial is still answered by the next handshake).
    pub(crate) fn drain(&mut self) {
        self.events();
        self.actions();
    }

    /// Every driver instruction waiting, in order.
    pub(crate) fn actions(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        let held = std::mem::take(&mut self.held);
        for a in held.into_iter().chain(std::iter::from_fn(|| self.conn.poll_action())) {
            if let Action::Dial(addr) = &a {
                self.dials.push(addr.clone());
            }
            out.push(a);
        }
        out
    }

    /// The ops the client wrote since the last call, decoded as a server would.
    pub(crate) fn sent(&mut self) -> Vec<ClientOp> {
        let mut buf = WriteBuffer::new();
        self.conn.poll_transmit(&mut buf);
        self.wire.extend_from_slice(&buf.take_bytes());
        let mut ops = Vec::new();
        loop {
            match self.decoder.decode(&mut self.wire) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(e) => panic!("the client wrote bytes a server cannot parse: {e} ({ops:?} so far)"),
            }
        }
        assert!(self.wire.is_empty(), "the client wrote a partial op: {:?}", self.wire);
        ops
    }

    /// The raw bytes the client wrote since the last call (nothing is decoded).
    pub(crate) fn sent_bytes(&mut self) -> Bytes {
        let mut buf = WriteBuffer::new();
        self.conn.poll_transmit(&mut buf);
        buf.take_bytes()
    }

    /// [`Peer::handshake_with`] the default INFO.
    pub(crate) fn handshake(&mut self) -> Vec<Event> {
        self.handshake_with(&default_info())
    }

    /// Answers the pending `Action::Dial`: transport up, INFO, expects CONNECT + PING, sends PONG, expects
    /// `Connected` or `Reconnected` for the dialed server. Returns every event drained on the way; the ops the
    /// client wrote after the handshake (replayed subscriptions, buffered publishes) are left for [`Peer::sent`].
    pub(crate) fn handshake_with(&mut self, info: &str) -> Vec<Event> {
        let mut all = self.events();
        self.actions();
        let dialed = self.dials.pop().unwrap_or_else(|| panic!("handshake without a pending Dial; events {all:?}"));
        self.dials.clear();
        let now = self.now();
        self.conn.handle_connected(now);
        self.input(info);
        let ops = self.sent();
        assert!(
            matches!(ops.as_slice(), [ClientOp::Connect(_), ClientOp::Ping]),
            "expected CONNECT + PING, got {ops:?}"
        );
        self.input("PONG\r\n");
        let after = self.events();
        assert!(
            after.iter().any(|e| matches!(e, Event::Connected(a) | Event::Reconnected(a) if *a == dialed)),
            "expected Connected/Reconnected({dialed:?}), got {after:?}"
        );
        all.extend(after);
        all
    }

    /// Drops the transport of a connected client, then dials again as soon as the connection allows and
    /// completes the handshake. Returns the events of the handshake.
    pub(crate) fn reconnect(&mut self) -> Vec<Event> {
        self.eof();
        let lost = self.events();
        assert!(lost.iter().any(|e| matches!(e, Event::Disconnected(_))), "expected Disconnected, got {lost:?}");
        self.advance_to_timeout();
        self.handshake()
    }

    /// The CONNECT of a fresh handshake, up to (not including) the PONG.
    pub(crate) fn connect_info(&mut self, info: &str) -> ConnectInfo {
        let now = self.now();
        self.conn.handle_connected(now);
        self.input(info);
        let ops = self.sent();
        match ops.as_slice() {
            [ClientOp::Connect(c), ClientOp::Ping] => (**c).clone(),
            other => panic!("expected CONNECT + PING, got {other:?}"),
        }
    }
}

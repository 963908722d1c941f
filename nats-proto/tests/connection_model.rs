//! Connection state machine under random drive: random commands, server input, clock jumps and transport
//! losses, checked against invariants that hold whatever happens:
//!
//! - no panic, and the client only ever writes ops a server can parse;
//! - nothing is written while there is no transport (Dialing, Disconnected), and CONNECT is the first op on
//!   every new transport (a PONG to a PING before it aside);
//! - every request ends exactly once (`Response{done:true}`), every flush completes exactly once, every
//!   subscription ends exactly once, and nothing is reported for them afterwards; closing ends all of them;
//! - Connected/Reconnected/Disconnected alternate properly, nothing at all happens after `Closed`;
//! - `handle_timeout(poll_timeout())` makes progress: a timer never stays due.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use nats_proto::{ClientOp, Config, Event, FlushId, ReconnectPolicy, RequestId, State};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Publish(usize, usize),
    Subscribe(usize, bool),
    Unsubscribe(usize, Option<u8>),
    Request(Option<u16>, bool),
    Cancel(usize),
    Flush(Option<u16>),
    Advance(u32),
    AdvanceToTimeout,
    Eof,
    Accept(bool),
    /// Transport up, INFO and PONG at once (when dialing).
    Connect,
    TlsReady,
    Pong,
    Ping,
    Msg(usize),
    Reply(usize, bool),
    Err(usize),
    Info(usize),
    Garbage,
    BadHmsg(usize),
    Drain,
    Close,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        9 => (0..4usize, 0..80usize).prop_map(|(s, n)| Action::Publish(s, n)),
        6 => (0..4usize, any::<bool>()).prop_map(|(s, q)| Action::Subscribe(s, q)),
        3 => (any::<usize>(), proptest::option::of(0..4u8)).prop_map(|(i, m)| Action::Unsubscribe(i, m)),
        6 => (proptest::option::of(0..20_000u16), any::<bool>()).prop_map(|(t, many)| Action::Request(t, many)),
        3 => any::<usize>().prop_map(Action::Cancel),
        6 => proptest::option::of(0..20_000u16).prop_map(Action::Flush),
        9 => (0..30_000u32).prop_map(Action::Advance),
        9 => Just(Action::AdvanceToTimeout),
        3 => Just(Action::Eof),
        12 => any::<bool>().prop_map(Action::Accept),
        12 => Just(Action::Connect),
        3 => Just(Action::TlsReady),
        12 => Just(Action::Pong),
        3 => Just(Action::Ping),
        9 => any::<usize>().prop_map(Action::Msg),
        6 => (any::<usize>(), any::<bool>()).prop_map(|(i, s)| Action::Reply(i, s)),
        3 => (0..5usize).prop_map(Action::Err),
        3 => (0..4usize).prop_map(Action::Info),
        3 => Just(Action::Garbage),
        3 => any::<usize>().prop_map(Action::BadHmsg),
        1 => Just(Action::Drain),
        1 => Just(Action::Close),
    ]
}

const SUBJECTS: [&str; 4] = ["a", "b.c", "d", "e.f.g"];
const PATTERNS: [&str; 4] = ["a", "b.*", "d", ">"];

#[derive(Default)]
struct Model {
    requests: HashMap<RequestId, bool>,
    flushes: HashMap<FlushId, bool>,
    subs: HashMap<u64, bool>,
    sids: Vec<u64>,
    request_ids: Vec<RequestId>,
    mux_sid: Option<u64>,
    replies: Vec<String>,
    ever_connected: bool,
    connected: bool,
    closed: bool,
    /// A transport was just opened: CONNECT must come first.
    fresh_transport: bool,
}

impl Model {
    /// Actions and events are two queues, so within one step their order is not known: only a dial after a
    /// close in an earlier step is certainly wrong here. (The simulator's driver checks that a dial never comes
    /// while a transport is open.)
    fn on_action(&mut self, a: &nats_proto::Action) {
        if let nats_proto::Action::Dial(_) = a {
            assert!(!self.closed, "Dial after Closed");
        }
    }

    fn on_event(&mut self, e: &Event) {
        assert!(!self.closed, "event after Closed: {e:?}");
        match e {
            Event::Connected(_) => {
                assert!(!self.ever_connected && !self.connected, "second Connected");
                self.ever_connected = true;
                self.connected = true;
            }
            Event::Reconnected(_) => {
                assert!(self.ever_connected && !self.connected, "Reconnected without a loss");
                self.connected = true;
            }
            Event::Disconnected(_) => {
                assert!(self.connected, "Disconnected while not connected");
                self.connected = false;
            }
            Event::ConnectFailed { .. } => assert!(!self.connected, "ConnectFailed while connected"),
            Event::Message(m) => {
                assert_eq!(self.subs.get(&m.sid()), Some(&false), "Message for sid {} that is not live", m.sid())
            }
            Event::SubscriptionEnded { sid, .. } => {
                let ended = self.subs.get_mut(sid).unwrap_or_else(|| panic!("unknown sid {sid} ended"));
                assert!(!*ended, "sid {sid} ended twice");
                *ended = true;
            }
            Event::Response { id, done, .. } => {
                let d = self.requests.get_mut(id).unwrap_or_else(|| panic!("Response for unknown {id:?}"));
                assert!(!*d, "Response after done for {id:?}");
                *d = *done;
            }
            Event::Flushed { id, .. } => {
                let d = self.flushes.get_mut(id).unwrap_or_else(|| panic!("unknown flush {id:?}"));
                assert!(!*d, "flush {id:?} completed twice");
                *d = true;
            }
            Event::Closed(_) => {
                self.closed = true;
                self.connected = false;
            }
            _ => {}
        }
    }

    fn on_ops(&mut self, ops: &[ClientOp], state: State) {
        if matches!(state, State::Dialing | State::Disconnected) {
            assert!(ops.is_empty(), "wrote {ops:?} with no transport ({state:?})");
        }
        for op in ops {
            if self.fresh_transport {
                match op {
                    ClientOp::Connect(_) => self.fresh_transport = false,
                    ClientOp::Pong => {}
                    other => panic!("{other:?} before CONNECT on a new transport"),
                }
            }
            match op {
                ClientOp::Sub { subject, sid, .. }
                    if subject.as_bytes().starts_with(b"_INBOX.") && subject.as_bytes().ends_with(b".*") =>
                {
                    self.mux_sid = Some(*sid);
                }
                ClientOp::Pub(p) => {
                    if let Some(r) = p.reply.as_ref().and_then(|r| r.as_str()) {
                        self.replies.push(r.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
}

fn model_config() -> Config {
    let mut cfg = config(&[URL, URL2]);
    cfg.retry_on_initial_connect = true;
    cfg.ping_interval = Duration::from_secs(10);
    cfg.reconnect_buffer_size = 300;
    cfg.drain_timeout = Duration::from_secs(20);
    cfg.reconnect = ReconnectPolicy { max_attempts_per_server: None, ..ReconnectPolicy::default() };
    cfg
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()])
}

fn apply(p: &mut Peer, m: &mut Model, a: &Action) {
    let now = p.now();
    match a {
        Action::Publish(s, n) => {
            let _ = p.conn.publish(SUBJECTS[*s], None, None, Bytes::from(vec![b'x'; *n]));
        }
        Action::Subscribe(s, q) => {
            if let Ok(sid) = p.conn.subscribe(PATTERNS[*s], q.then_some(&b"q"[..])) {
                assert!(m.subs.insert(sid, false).is_none(), "sid {sid} reused");
                m.sids.push(sid);
            }
        }
        Action::Unsubscribe(i, max) => {
            if let Some(sid) = pick(&m.sids, *i) {
                let _ = p.conn.unsubscribe(sid, max.map(u64::from));
            }
        }
        Action::Request(t, many) => {
            let t = t.map(|ms| Duration::from_millis(u64::from(ms)));
            let r = if *many {
                p.conn.request_many(now, "svc", None, Bytes::from_static(b"q"), t)
            } else {
                p.conn.request(now, "svc", None, Bytes::from_static(b"q"), t)
            };
            if let Ok(id) = r {
                assert!(m.requests.insert(id, false).is_none(), "request id reused");
                m.request_ids.push(id);
            }
        }
        Action::Cancel(i) => {
            if let Some(id) = pick(&m.request_ids, *i) {
                if p.conn.cancel_request(id) {
                    // Cancelled: no more events for it.
                    m.requests.insert(id, true);
                }
            }
        }
        Action::Flush(t) => {
            if let Ok(id) = p.conn.flush(now, t.map(|ms| Duration::from_millis(u64::from(ms)))) {
                assert!(m.flushes.insert(id, false).is_none(), "flush id reused");
            }
        }
        Action::Advance(ms) => p.advance(Duration::from_millis(u64::from(*ms))),
        Action::AdvanceToTimeout => {
            if p.conn.poll_timeout().is_some() {
                p.advance_to_timeout();
                // At most one follow-up call may still be due (a reconnect set to "now" by a loss).
                if p.timeout_in() == Some(Duration::ZERO) {
                    p.advance(Duration::ZERO);
                    assert_ne!(p.timeout_in(), Some(Duration::ZERO), "a timer stays due: busy loop");
                }
            }
        }
        Action::Eof => p.eof(),
        Action::Accept(tls) => {
            if p.conn.state() == State::Dialing {
                p.conn.handle_connected(now);
                m.fresh_transport = true;
            }
            if p.conn.state() == State::AwaitInfo {
                let extra = if *tls { r#","tls_required":true"# } else { "" };
                p.input(info_line(&format!("{INFO_FIELDS}{extra}")));
            }
        }
        Action::Connect => {
            if p.conn.state() == State::Dialing {
                p.conn.handle_connected(now);
                m.fresh_transport = true;
                p.input(default_info());
                p.input("PONG\r\n");
            }
        }
        Action::TlsReady => p.conn.handle_tls_ready(now),
        Action::Pong => p.input("PONG\r\n"),
        Action::Ping => p.input("PING\r\n"),
        Action::Msg(i) => {
            if let Some(sid) = pick(&m.sids, *i) {
                p.input(msg("a", sid, "payload"));
            }
        }
        Action::Reply(i, no_responders) => {
            if let (Some(sid), false) = (m.mux_sid, m.replies.is_empty()) {
                let reply = m.replies[i % m.replies.len()].clone();
                p.input(if *no_responders { status_msg(&reply, sid, 503) } else { msg(&reply, sid, "r") });
            }
        }
        Action::Err(k) => p.input(match k {
            0 => "-ERR 'Permissions Violation for Subscription to \"a\"'\r\n",
            1 => "-ERR 'Permissions Violation for Subscription to \"b.*\" using queue \"q\"'\r\n",
            2 => "-ERR 'Stale Connection'\r\n",
            3 => "-ERR 'Authorization Violation'\r\n",
            _ => "-ERR 'something else'\r\n",
        }),
        Action::Info(k) => p.input(info_line(&match k {
            0 => format!(r#"{INFO_FIELDS},"ldm":true"#),
            1 => format!(r#"{INFO_FIELDS},"connect_urls":["127.0.0.1:4222","10.0.0.9:4222"]"#),
            2 => r#""headers":true,"max_payload":64"#.to_owned(),
            _ => INFO_FIELDS.to_owned(),
        })),
        Action::Garbage => p.input("MSG a 1 x\r\n"),
        Action::BadHmsg(i) => {
            if let Some(sid) = pick(&m.sids, *i) {
                p.input(format!("HMSG a {sid} 12 12\r\nXATS/1.0\r\n\r\n\r\n"));
            }
        }
        Action::Drain => {
            let _ = p.conn.drain(now);
        }
        Action::Close => p.conn.close(),
    }
}

fn run(actions: &[Action]) {
    let mut p = Peer::new(model_config());
    let mut m = Model::default();
    for a in actions {
        apply(&mut p, &mut m, a);
        let state = p.conn.state();
        let ops = p.sent();
        m.on_ops(&ops, state);
        for a in p.actions() {
            m.on_action(&a);
        }
        for e in p.events() {
            m.on_event(&e);
        }
    }
    // Closing ends everything that is still open.
    p.conn.close();
    for e in p.events() {
        m.on_event(&e);
    }
    assert!(m.closed, "close() must report Closed (unless already closed)");
    assert_eq!(p.conn.poll_timeout(), None);
    for (id, done) in &m.requests {
        assert!(*done, "request {id:?} never ended");
    }
    for (id, done) in &m.flushes {
        assert!(*done, "flush {id:?} never completed");
    }
    for (sid, ended) in &m.subs {
        assert!(*ended, "subscription {sid} never ended");
    }
    assert_eq!(p.conn.requests_in_flight(), 0);
    assert_eq!(p.conn.subscription_count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_drive_keeps_the_invariants(actions in proptest::collection::vec(action(), 0..80)) {
        run(&actions);
    }
}

#[test]
fn scripted_drive_through_every_phase() {
    use Action::*;
    run(&[
        Subscribe(0, false),
        Publish(0, 3),
        Flush(Some(1000)),
        Accept(false),
        Pong,
        Request(Some(5000), false),
        Request(None, true),
        Msg(0),
        Reply(0, false),
        Reply(1, false),
        Advance(10_000),
        Eof,
        Publish(1, 5),
        AdvanceToTimeout,
        Accept(true),
        TlsReady,
        Pong,
        Reply(1, true),
        Drain,
        Pong,
    ]);
}

//! Connection state machine: drain, close, and statistics.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use nats_proto::{
    Action, ClientOp, CloseReason, CommandError, Event, FlushError, Headers, RequestError, State, SubscriptionEnd,
};

fn body(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn drain_unsubscribes_pings_delivers_in_flight_then_closes() {
    let mut p = Peer::connected(config(&[URL]));
    let s1 = p.conn.subscribe("a", None).unwrap();
    let s2 = p.conn.subscribe("b", Some(b"q")).unwrap();
    p.sent();
    p.conn.drain(p.now()).unwrap();
    assert_eq!(p.conn.state(), State::Draining);
    assert_eq!(p.sent(), [unsub_op(s1, None), unsub_op(s2, None), ClientOp::Ping]);
    assert!(p.events().is_empty());
    assert!(p.conn.drain(p.now()).is_ok(), "a second drain is a no-op");
    assert!(p.sent().is_empty());

    // Sent by the server before it processed the UNSUBs: still delivered.
    p.input(format!("{}{}", msg("a", s1, "in flight"), msg("b", s2, "also")));
    let events = p.events();
    assert!(matches!(events.as_slice(), [Event::Message(m1), Event::Message(m2)] if m1.sid() == s1 && m2.sid() == s2));

    p.input("PONG\r\n");
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        p.events(),
        [
            Event::SubscriptionEnded { sid: s1, reason: SubscriptionEnd::Drained },
            Event::SubscriptionEnded { sid: s2, reason: SubscriptionEnd::Drained },
            Event::Closed(CloseReason::Drained),
        ]
    );
    assert_eq!(p.conn.state(), State::Closed);
    assert_eq!(p.conn.poll_timeout(), None);
}

#[test]
fn drain_waits_for_an_open_request() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    let id = p.conn.request(p.now(), "svc", None, body("q"), None).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { sid: mux_sid, .. } = ops[1] else { panic!("{ops:?}") };
    let ClientOp::Pub(req) = &ops[2] else { panic!("{ops:?}") };
    let reply = req.reply.clone().unwrap().as_str().unwrap().to_owned();

    p.conn.drain(p.now()).unwrap();
    let ops = p.sent();
    assert_eq!(ops.first(), Some(&unsub_op(sid, None)));
    assert_eq!(ops.last(), Some(&ClientOp::Ping));
    assert!(!ops.contains(&unsub_op(mux_sid, None)), "the reply inbox stays open for the request: {ops:?}");
    assert_eq!(p.conn.request(p.now(), "svc", None, body("q"), None), Err(CommandError::Draining));

    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained }]);
    assert_eq!(p.conn.state(), State::Draining, "waiting for the reply");

    p.input(msg(&reply, mux_sid, "answer"));
    let events = p.events();
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert!(
        matches!(events.as_slice(), [
            Event::Response { id: got, result: Ok(m), done: true },
            Event::Closed(CloseReason::Drained),
        ] if *got == id && m.payload() == b"answer"),
        "{events:?}"
    );
}

#[test]
fn drain_closes_when_the_open_request_is_cancelled() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request(p.now(), "svc", None, body("q"), None).unwrap();
    p.sent();
    p.conn.drain(p.now()).unwrap();
    p.input("PONG\r\n");
    assert!(p.events().is_empty());
    assert!(p.conn.cancel_request(id));
    assert_eq!(p.events(), [Event::Closed(CloseReason::Drained)]);
    assert_eq!(p.actions(), [Action::CloseTransport]);
}

#[test]
fn subscribe_while_draining_is_refused() {
    let mut p = Peer::connected(config(&[URL]));
    p.conn.subscribe("a", None).unwrap();
    p.conn.drain(p.now()).unwrap();
    p.sent();
    assert_eq!(p.conn.subscribe("b", None), Err(CommandError::Draining));
    assert!(p.sent().is_empty());
}

#[test]
fn drain_timeout_closes() {
    let mut cfg = config(&[URL]);
    cfg.drain_timeout = Duration::from_secs(3);
    cfg.ping_interval = Duration::from_secs(3600);
    let mut p = Peer::connected(cfg);
    p.conn.subscribe("a", None).unwrap();
    let id = p.conn.request(p.now(), "svc", None, body("q"), None).unwrap();
    p.conn.drain(p.now()).unwrap();
    p.sent();
    assert_eq!(p.timeout_in(), Some(Duration::from_secs(3)));
    p.advance(Duration::from_millis(2999));
    assert!(p.events().is_empty());
    p.advance(Duration::from_millis(1));
    let events = p.events();
    assert_eq!(events.last(), Some(&Event::Closed(CloseReason::DrainTimedOut)), "{events:?}");
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert!(events.contains(&Event::Response { id, result: Err(RequestError::Closed), done: true }));
    assert_eq!(p.conn.state(), State::Closed);
}

#[test]
fn drain_while_disconnected_waits_for_the_next_connection() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.eof();
    p.drain();
    p.conn.publish("buffered", None, None, body("x")).unwrap();
    p.conn.drain(p.now()).unwrap();
    assert!(p.events().is_empty(), "buffered publishes are delivered before closing");
    assert!(p.conn.drain(p.now()).is_ok(), "a second drain is a no-op");
    assert_eq!(p.conn.subscribe("b", None), Err(CommandError::Draining));
    assert_eq!(p.conn.request(p.now(), "svc", None, body("q"), None), Err(CommandError::Draining));

    p.advance_to_timeout();
    p.handshake();
    assert_eq!(
        p.sent(),
        [sub_op("a", None, sid), pub_op("buffered", None, "x"), unsub_op(sid, None), ClientOp::Ping],
        "replay, buffer, then the drain"
    );
    assert_eq!(p.conn.state(), State::Draining);
    p.input("PONG\r\n");
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        p.events(),
        [Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained }, Event::Closed(CloseReason::Drained),]
    );
}

#[test]
fn drain_while_disconnected_gives_up_at_the_drain_timeout() {
    let mut cfg = config(&[URL]);
    cfg.drain_timeout = Duration::from_secs(3);
    let mut p = Peer::connected(cfg);
    let sid = p.conn.subscribe("a", None).unwrap();
    p.eof();
    p.drain();
    p.conn.drain(p.now()).unwrap();
    p.advance(Duration::from_millis(2999));
    let events = p.events();
    assert!(!events.iter().any(|e| matches!(e, Event::Closed(_))), "{events:?}");
    p.advance(Duration::from_millis(1));
    let events = p.events();
    assert_eq!(events.last(), Some(&Event::Closed(CloseReason::DrainTimedOut)), "{events:?}");
    assert!(events.contains(&Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Closed }), "{events:?}");
    assert_eq!(p.conn.state(), State::Closed);
    assert_eq!(p.conn.poll_timeout(), None);
}

#[test]
fn connection_lost_while_draining_closes() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.conn.drain(p.now()).unwrap();
    p.sent();
    p.eof();
    let events = p.events();
    assert_eq!(events.last(), Some(&Event::Closed(CloseReason::Drained)), "{events:?}");
    assert!(events.contains(&Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Closed }), "{events:?}");
    assert_eq!(p.actions(), [Action::CloseTransport], "closed once, and never dialed again");
}

#[test]
fn close_fails_everything_pending() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    let id = p.conn.request(p.now(), "svc", None, body("q"), Some(Duration::from_secs(5))).unwrap();
    let f = p.conn.flush(p.now(), None).unwrap();
    p.sent();
    p.conn.close();
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        p.events(),
        [
            Event::Response { id, result: Err(RequestError::Closed), done: true },
            Event::Flushed { id: f, result: Err(FlushError::Closed) },
            Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Closed },
            Event::Closed(CloseReason::Requested),
        ]
    );
    assert_eq!(p.conn.state(), State::Closed);
    assert_eq!((p.conn.requests_in_flight(), p.conn.subscription_count()), (0, 0));
    assert_eq!(p.conn.poll_timeout(), None);
    p.conn.close();
    assert!(p.events().is_empty(), "closing twice says nothing");
}

#[test]
fn close_while_disconnected_drops_the_buffer() {
    let mut p = Peer::connected(config(&[URL]));
    p.eof();
    p.drain();
    p.conn.publish("a", None, None, body("x")).unwrap();
    let f = p.conn.flush(p.now(), None).unwrap();
    p.conn.close();
    assert_eq!(
        p.events(),
        [Event::Flushed { id: f, result: Err(FlushError::Closed) }, Event::Closed(CloseReason::Requested)]
    );
    assert_eq!(p.conn.reconnect_buffer_len(), 0);
    assert_eq!(p.conn.poll_timeout(), None, "no reconnect after close");
}

#[test]
fn statistics_count_messages_bytes_and_connects() {
    let mut p = Peer::new(config(&[URL]));
    p.handshake();
    let handshake_in = (default_info().len() + "PONG\r\n".len()) as u64;
    let s = p.conn.statistics();
    assert_eq!((s.connects, s.reconnects, s.in_msgs, s.out_msgs), (1, 0, 0, 0));
    assert_eq!(s.in_bytes, handshake_in);

    let sid = p.conn.subscribe("a", None).unwrap();
    p.conn.publish("a", None, None, body("hello")).unwrap();
    p.conn.request(p.now(), "svc", None, body("q"), None).unwrap();
    p.sent();
    assert_eq!(p.conn.statistics().out_msgs, 2, "a request is a published message");

    // A message split across reads is counted once, bytes as they arrive.
    let m = msg("a", sid, "hello");
    let (head, tail) = m.split_at(12);
    p.input(head);
    assert_eq!(p.conn.statistics().in_bytes, handshake_in + 12);
    assert_eq!(p.conn.statistics().in_msgs, 0);
    p.input(tail);
    // The zero-copy path: the driver's own read buffer, the message straight to a sink, counted the same.
    let m2 = msg("a", sid, "again");
    let mut buf = bytes::BytesMut::from(m2.as_bytes());
    let mut sink: Vec<nats_proto::Msg> = vec![];
    p.conn.handle_read(p.now(), &mut buf, &mut sink);
    let s = p.conn.statistics();
    assert_eq!(s.in_msgs, 2);
    assert_eq!(s.in_bytes, handshake_in + (m.len() + m2.len()) as u64);
    assert_eq!(p.events().len(), 1, "the first message, as an event");
    assert_eq!((sink.len(), sink[0].payload()), (1, &b"again"[..]), "the second, in the sink");
    assert!(buf.is_empty());

    p.reconnect();
    let s = p.conn.statistics();
    assert_eq!((s.connects, s.reconnects), (2, 1));
}

#[test]
fn statistics_out_bytes_match_the_published_wire_bytes() {
    let mut p = Peer::connected(config(&[URL]));
    p.conn.publish("a", None, None, body("hello")).unwrap();
    p.conn.publish("b.c", Some(b"r"), None, body("")).unwrap();
    let wire = p.sent_bytes();
    assert_eq!(&wire[..], b"PUB a 5\r\nhello\r\nPUB b.c r 0\r\n\r\n");
    let s = p.conn.statistics();
    assert_eq!(s.out_msgs, 2);
    assert_eq!(s.out_bytes, wire.len() as u64, "out_bytes counts the bytes of the PUB ops");
}

#[test]
fn statistics_out_bytes_match_the_hpub_wire_bytes() {
    let mut p = Peer::connected(config(&[URL]));
    let mut h = Headers::new();
    h.insert("K", "v").unwrap();
    p.conn.publish("a", Some(b"r"), Some(&h), body("hello")).unwrap();
    let wire = p.sent_bytes();
    assert!(wire.starts_with(b"HPUB a r "), "{wire:?}");
    assert_eq!(p.conn.statistics().out_bytes, wire.len() as u64);
}

#[test]
fn everything_due_at_once_ends_flushes_then_requests_then_the_drain() {
    let ms = Duration::from_millis;
    let mut c = config(&[URL]);
    c.drain_timeout = ms(10);
    let mut p = Peer::connected(c);
    let now = p.now();
    let late = p.conn.request(now, "svc", None, body("a"), Some(ms(30))).unwrap();
    let flush = p.conn.flush(now, Some(ms(20))).unwrap();
    let early = p.conn.request(now, "svc", None, body("b"), Some(ms(5))).unwrap();
    assert_eq!(p.timeout_in(), Some(ms(5)), "one table: the earliest deadline of any kind");
    p.conn.drain(now).unwrap();
    p.sent();
    // Nothing answers; all four fall due at once. The drain's end comes last, so each open flush and request
    // reports its own timeout rather than "closed".
    p.advance(ms(30));
    let events = p.events();
    assert_eq!(
        events[..3],
        [
            Event::Flushed { id: flush, result: Err(FlushError::Timeout) },
            Event::Response { id: early, result: Err(RequestError::Timeout), done: true },
            Event::Response { id: late, result: Err(RequestError::Timeout), done: true },
        ],
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Event::Closed(CloseReason::DrainTimedOut)), "{events:?}");
    assert_eq!(p.conn.poll_timeout(), None, "a closed connection keeps no deadline");
}

#[test]
fn a_drain_ending_as_a_reconnect_falls_due_never_dials() {
    // Found by the fuzz target: the reconnect dialed, then the drain's end closed the connection in the same
    // call, leaving a Dial for a closed connection.
    let mut c = config(&[URL]);
    c.drain_timeout = Duration::ZERO;
    let mut p = Peer::connected(c);
    p.eof();
    p.drain();
    p.conn.drain(p.now()).unwrap();
    p.advance(Duration::ZERO);
    assert_eq!(p.actions(), [Action::CloseTransport], "no dial for a closed connection");
    assert_eq!(p.events().last(), Some(&Event::Closed(CloseReason::DrainTimedOut)));
}

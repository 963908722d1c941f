//! Connection state machine: keep-alive PINGs, stale detection, and flush fences (PING/PONG FIFO).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use nats_proto::{Action, ClientOp, Config, ConnectionError, Event, FlushError, State};

const INTERVAL: Duration = Duration::from_secs(10);

fn cfg() -> Config {
    let mut cfg = config(&[URL]);
    cfg.ping_interval = INTERVAL;
    cfg
}

#[test]
fn keepalive_ping_after_interval_and_pong_keeps_it_alive() {
    let mut p = Peer::connected(cfg());
    assert_eq!(p.timeout_in(), Some(INTERVAL));
    for round in 0..5 {
        p.advance(INTERVAL - Duration::from_millis(1));
        assert!(p.sent().is_empty(), "round {round}: PING before the interval");
        p.advance(Duration::from_millis(1));
        assert_eq!(p.sent(), [ClientOp::Ping], "round {round}");
        p.input("PONG\r\n");
        assert!(p.events().is_empty(), "round {round}: a keep-alive PONG is silent");
    }
    assert_eq!(p.conn.state(), State::Connected);
}

#[test]
fn server_ping_is_answered() {
    let mut p = Peer::connected(cfg());
    p.input("PING\r\n");
    assert_eq!(p.sent(), [ClientOp::Pong]);
    assert!(p.events().is_empty());
}

#[test]
fn unanswered_pings_make_the_connection_stale_then_reconnect_at_once() {
    let mut p = Peer::connected(cfg());
    p.advance(INTERVAL);
    assert_eq!(p.sent(), [ClientOp::Ping]);
    p.advance(INTERVAL);
    assert_eq!(p.sent(), [ClientOp::Ping]);
    assert!(p.events().is_empty(), "two PINGs out is still alive");
    assert_eq!(p.conn.state(), State::Connected);

    p.advance(INTERVAL);
    assert!(p.sent().is_empty(), "no third PING: the connection is stale");
    let events = p.events();
    assert!(events.contains(&Event::Disconnected(ConnectionError::StaleConnection)), "{events:?}");
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(p.conn.state(), State::Disconnected);

    // The first reconnect has no delay.
    assert_eq!(p.timeout_in(), Some(Duration::ZERO));
    p.advance(Duration::ZERO);
    assert_eq!(p.actions(), [Action::Dial(addr(URL))]);
    assert!(p.events().is_empty());
    let events = p.handshake();
    assert!(events.contains(&Event::Reconnected(addr(URL))), "{events:?}");
}

#[test]
fn any_pong_resets_the_stale_count() {
    let mut p = Peer::connected(cfg());
    for _ in 0..4 {
        p.advance(INTERVAL);
        assert_eq!(p.sent(), [ClientOp::Ping]);
        p.advance(INTERVAL);
        assert_eq!(p.sent(), [ClientOp::Ping]);
        // Two PINGs out, then both answered.
        p.input("PONG\r\nPONG\r\n");
    }
    assert!(p.events().is_empty());
    assert_eq!(p.conn.state(), State::Connected);
}

#[test]
fn flush_fences_complete_in_order() {
    let mut p = Peer::connected(cfg());
    let f1 = p.conn.flush(p.now(), None).unwrap();
    let f2 = p.conn.flush(p.now(), None).unwrap();
    assert_ne!(f1, f2);
    assert_eq!(p.sent(), [ClientOp::Ping, ClientOp::Ping]);
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f1, result: Ok(()) }]);
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f2, result: Ok(()) }]);
    p.input("PONG\r\n");
    assert!(p.events().is_empty(), "an unexpected PONG completes nothing");
}

#[test]
fn flush_after_publish_follows_it_on_the_wire() {
    let mut p = Peer::connected(cfg());
    p.conn.publish("a", None, None, Bytes::from_static(b"1")).unwrap();
    let f = p.conn.flush(p.now(), Some(Duration::from_secs(1))).unwrap();
    assert_eq!(p.sent(), [pub_op("a", None, "1"), ClientOp::Ping]);
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f, result: Ok(()) }]);
    // A completed flush leaves no deadline behind.
    assert_eq!(p.timeout_in(), Some(INTERVAL));
}

#[test]
fn flush_times_out_without_pong() {
    let mut p = Peer::connected(cfg());
    let f = p.conn.flush(p.now(), Some(Duration::from_secs(1))).unwrap();
    assert_eq!(p.sent(), [ClientOp::Ping]);
    assert_eq!(p.timeout_in(), Some(Duration::from_secs(1)), "poll_timeout includes the flush deadline");
    p.advance(Duration::from_millis(999));
    assert!(p.events().is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(p.events(), [Event::Flushed { id: f, result: Err(FlushError::Timeout) }]);
    // The late PONG is for the timed-out fence; it must not complete anything, and the next fence still works.
    p.input("PONG\r\n");
    assert!(p.events().is_empty());
    let f2 = p.conn.flush(p.now(), None).unwrap();
    assert_eq!(p.sent(), [ClientOp::Ping]);
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f2, result: Ok(()) }]);
}

#[test]
fn keepalive_ping_between_fences_keeps_the_fifo() {
    let mut p = Peer::connected(cfg());
    let f1 = p.conn.flush(p.now(), None).unwrap();
    p.advance(INTERVAL); // keep-alive PING
    let f2 = p.conn.flush(p.now(), None).unwrap();
    assert_eq!(p.sent(), [ClientOp::Ping, ClientOp::Ping, ClientOp::Ping]);
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f1, result: Ok(()) }]);
    p.input("PONG\r\n");
    assert!(p.events().is_empty(), "the second PONG answers the keep-alive, not f2");
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f2, result: Ok(()) }]);
}

#[test]
fn flush_pending_at_disconnect_fails_with_disconnected() {
    let mut p = Peer::connected(cfg());
    let f = p.conn.flush(p.now(), Some(Duration::from_secs(5))).unwrap();
    assert_eq!(p.sent(), [ClientOp::Ping]);
    p.eof();
    let events = p.events();
    assert!(events.contains(&Event::Flushed { id: f, result: Err(FlushError::Disconnected) }), "{events:?}");
    assert!(events.contains(&Event::Disconnected(ConnectionError::TransportClosed)), "{events:?}");
    // Reported once: neither its deadline nor the next connection's PONGs report it again.
    p.advance_to_timeout();
    p.handshake();
    p.input("PONG\r\n");
    p.advance(Duration::from_secs(5));
    let later = p.events();
    assert!(!later.iter().any(|e| matches!(e, Event::Flushed { .. })), "{later:?}");
}

#[test]
fn flush_made_while_disconnected_completes_after_reconnect() {
    let mut p = Peer::connected(cfg());
    let sid = p.conn.subscribe("a", None).unwrap();
    assert_eq!(p.sent(), [sub_op("a", None, sid)]);
    p.eof();
    p.drain();
    p.conn.publish("x", None, None, Bytes::from_static(b"1")).unwrap();
    let f = p.conn.flush(p.now(), None).unwrap();
    p.conn.publish("y", None, None, Bytes::from_static(b"2")).unwrap();
    assert!(p.sent().is_empty(), "nothing is written while disconnected");

    p.advance_to_timeout();
    let events = p.handshake();
    assert!(!events.iter().any(|e| matches!(e, Event::Flushed { .. })), "not before its PONG: {events:?}");
    assert_eq!(
        p.sent(),
        [sub_op("a", None, sid), pub_op("x", None, "1"), ClientOp::Ping, pub_op("y", None, "2")],
        "replayed SUBs, then the buffer in order with the fence where it was made"
    );
    p.input("PONG\r\n");
    assert_eq!(p.events(), [Event::Flushed { id: f, result: Ok(()) }]);
}

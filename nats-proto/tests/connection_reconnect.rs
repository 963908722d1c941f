//! Connection state machine: the reconnect buffer, INFO updates (max_payload, discovered servers, lame duck),
//! failover between servers and running out of servers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use nats_proto::{
    Action, ClientOp, CloseReason, CommandError, ConnectionError, Event, Headers, ReconnectPolicy, ServerAddr, State,
};

fn body(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn hosts(p: &Peer) -> Vec<String> {
    p.conn.servers().servers().map(|a| a.host_port()).collect()
}

/// A connected peer that has just lost its transport (events drained).
fn disconnected(cfg: nats_proto::Config) -> Peer {
    let mut p = Peer::connected(cfg);
    p.eof();
    p.drain();
    assert_eq!(p.conn.state(), State::Disconnected);
    p
}

#[test]
fn publishes_while_disconnected_are_buffered_and_sent_after_replayed_subs() {
    let mut cfg = config(&[URL]);
    cfg.reconnect_buffer_size = 45; // room for the two publishes below (40 bytes), not a third
    let mut p = Peer::connected(cfg);
    let sid = p.conn.subscribe("s", Some(b"q")).unwrap();
    p.sent();
    p.eof();
    p.drain();

    p.conn.publish("p.1", None, None, body("hello")).unwrap();
    p.conn.publish("p.2", Some(b"r.2"), None, body("world")).unwrap();
    let buffered = p.conn.reconnect_buffer_len();
    assert_eq!(buffered, pub_wire_len("p.1", "hello") + "PUB p.2 r.2 5\r\nworld\r\n".len());
    let out_msgs = p.conn.statistics().out_msgs;

    let err = p.conn.publish("p.3", None, None, body("again")).unwrap_err();
    assert!(matches!(err, CommandError::ReconnectBufferFull { .. }), "{err:?}");
    assert_eq!(p.conn.reconnect_buffer_len(), buffered, "nothing queued for a refused publish");
    assert_eq!(p.conn.statistics().out_msgs, out_msgs, "a refused publish is not counted");
    assert!(p.sent().is_empty());

    p.advance_to_timeout();
    p.handshake();
    assert_eq!(
        p.sent(),
        [sub_op("s", Some("q"), sid), pub_op("p.1", None, "hello"), pub_op("p.2", Some("r.2"), "world")]
    );
    assert_eq!(p.conn.reconnect_buffer_len(), 0);
}

#[test]
fn reconnect_buffer_takes_exactly_its_size_in_bytes() {
    let one = pub_wire_len("p.1", "hello"); // "PUB p.1 5\r\nhello\r\n" = 18 bytes
    assert_eq!(one, 18);
    let mut cfg = config(&[URL]);
    cfg.reconnect_buffer_size = 2 * one;
    let mut p = disconnected(cfg);
    p.conn.publish("p.1", None, None, body("hello")).expect("first publish fits");
    assert_eq!(p.conn.reconnect_buffer_len(), one);
    p.conn.publish("p.2", None, None, body("hello")).expect("second publish fills the buffer exactly");
    assert_eq!(p.conn.reconnect_buffer_len(), 2 * one);
    assert_eq!(
        p.conn.publish("p.3", None, None, body("hello")),
        Err(CommandError::ReconnectBufferFull { needed: one, available: 0 })
    );
}

#[test]
fn zero_reconnect_buffer_refuses_the_first_publish() {
    let mut cfg = config(&[URL]);
    cfg.reconnect_buffer_size = 0;
    let mut p = disconnected(cfg);
    let err = p.conn.publish("a", None, None, body("x")).unwrap_err();
    assert!(matches!(err, CommandError::ReconnectBufferFull { available: 0, .. }), "{err:?}");
    assert_eq!(p.conn.reconnect_buffer_len(), 0);
    p.advance_to_timeout();
    p.handshake();
    assert!(p.sent().is_empty(), "the refused publish is not sent later");
    p.conn.publish("a", None, None, body("x")).expect("connected publishes do not use the buffer");
    assert_eq!(p.sent(), [pub_op("a", None, "x")]);
}

#[test]
fn publish_before_the_first_connect_is_buffered() {
    let mut p = Peer::new(config(&[URL]));
    p.conn.publish("early", None, None, body("1")).unwrap();
    assert!(p.sent().is_empty());
    p.handshake();
    assert_eq!(p.sent(), [pub_op("early", None, "1")]);
}

#[test]
fn later_info_changes_max_payload() {
    let mut p = Peer::connected(config(&[URL]));
    assert_eq!(p.conn.max_payload(), 1 << 20);
    p.input(info_line(r#""headers":true,"max_payload":10"#));
    assert!(p.events().is_empty());
    assert_eq!(p.conn.max_payload(), 10);
    assert_eq!(
        p.conn.publish("a", None, None, body("01234567890")),
        Err(CommandError::MaxPayloadExceeded { size: 11, max_payload: 10 })
    );
    let mut h = Headers::new();
    h.insert("K", "v").unwrap();
    let hdr = h.encoded_len();
    assert_eq!(
        p.conn.publish("a", None, Some(&h), body("0123456789")),
        Err(CommandError::MaxPayloadExceeded { size: hdr + 10, max_payload: 10 })
    );
    assert!(
        matches!(
            p.conn.request(p.now(), "a", None, body("01234567890"), None),
            Err(CommandError::MaxPayloadExceeded { .. })
        ),
        "requests are checked too"
    );
    assert!(p.sent().is_empty(), "nothing written for refused publishes");
    assert_eq!(p.conn.statistics().out_msgs, 0);
    p.conn.publish("a", None, None, body("0123456789")).expect("exactly max_payload is fine");
    assert_eq!(p.sent(), [pub_op("a", None, "0123456789")]);
}

#[test]
fn connect_urls_are_discovered_and_pruned() {
    let mut p = Peer::new(config(&[URL]));
    let events = p.handshake_with(&info_line(&format!(
        r#"{INFO_FIELDS},"connect_urls":["127.0.0.1:4222","10.0.0.2:4222","10.0.0.3:4222"]"#
    )));
    assert!(events.contains(&Event::DiscoveredServers), "{events:?}");
    let mut h = hosts(&p);
    h.sort();
    assert_eq!(h, ["10.0.0.2:4222", "10.0.0.3:4222", "127.0.0.1:4222"]);

    // A later INFO that no longer lists 10.0.0.3 prunes it; nothing new, no event.
    p.input(info_line(&format!(r#"{INFO_FIELDS},"connect_urls":["127.0.0.1:4222","10.0.0.2:4222"]"#)));
    assert!(p.events().is_empty());
    let mut h = hosts(&p);
    h.sort();
    assert_eq!(h, ["10.0.0.2:4222", "127.0.0.1:4222"]);

    // A new one is announced; the configured server is never pruned.
    p.input(info_line(&format!(r#"{INFO_FIELDS},"connect_urls":["10.0.0.4:4222"]"#)));
    assert_eq!(p.events(), [Event::DiscoveredServers]);
    let mut h = hosts(&p);
    h.sort();
    assert_eq!(h, ["10.0.0.4:4222", "127.0.0.1:4222"]);
    assert_eq!(p.conn.current_server(), Some(&addr(URL)));
}

#[test]
fn ignore_discovered_servers() {
    let mut cfg = config(&[URL]);
    cfg.ignore_discovered_servers = true;
    let mut p = Peer::new(cfg);
    let events = p.handshake_with(&info_line(&format!(r#"{INFO_FIELDS},"connect_urls":["10.0.0.2:4222"]"#)));
    assert!(!events.contains(&Event::DiscoveredServers), "{events:?}");
    assert_eq!(hosts(&p), ["127.0.0.1:4222"]);
}

#[test]
fn lame_duck_mode_is_reported() {
    let mut p = Peer::connected(config(&[URL]));
    p.input(info_line(&format!(r#"{INFO_FIELDS},"ldm":true"#)));
    assert_eq!(p.events(), [Event::LameDuck]);
    assert_eq!(p.conn.state(), State::Connected, "lame duck mode does not end the connection by itself");
}

#[test]
fn failover_dials_the_other_server() {
    let mut p = Peer::new(config(&[URL, URL2]));
    let events = p.handshake();
    assert!(events.contains(&Event::Connected(addr(URL))), "{events:?}");
    p.eof();
    assert_eq!(p.events(), [Event::Disconnected(ConnectionError::TransportClosed)]);
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(p.timeout_in(), Some(Duration::ZERO), "first reconnect without delay");
    p.advance(Duration::ZERO);
    assert_eq!(p.actions(), [Action::Dial(addr(URL2))]);
    assert!(p.events().is_empty());
    let events = p.handshake();
    assert!(events.contains(&Event::Reconnected(addr(URL2))), "{events:?}");
    assert_eq!(p.conn.current_server(), Some(&addr(URL2)));
}

#[test]
fn failover_to_a_discovered_server() {
    let mut p = Peer::new(config(&[URL]));
    p.handshake_with(&info_line(&format!(r#"{INFO_FIELDS},"connect_urls":["127.0.0.1:4222","10.9.9.9:5222"]"#)));
    p.eof();
    p.drain();
    p.advance_to_timeout();
    let discovered = ServerAddr::parse("nats://10.9.9.9:5222").unwrap();
    assert_eq!(p.actions(), [Action::Dial(discovered)]);
    assert!(p.events().is_empty());
}

#[test]
fn reconnects_exhausted_closes() {
    let mut cfg = config(&[URL]);
    cfg.reconnect = ReconnectPolicy { max_attempts_per_server: Some(1), ..ReconnectPolicy::default() };
    let mut p = Peer::connected(cfg);
    p.eof();
    p.drain();
    p.advance_to_timeout();
    assert_eq!(p.actions(), [Action::Dial(addr(URL))]);
    assert!(p.events().is_empty());
    p.eof(); // the dial failed
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(
        p.events(),
        [
            Event::ConnectFailed { server: addr(URL), error: ConnectionError::TransportClosed },
            Event::Closed(CloseReason::ReconnectsExhausted(ConnectionError::TransportClosed)),
        ]
    );
    assert_eq!(p.conn.state(), State::Closed);
    assert!(p.conn.servers().is_empty());
}

#[test]
fn failed_reconnect_attempts_back_off() {
    let mut cfg = config(&[URL]);
    cfg.reconnect =
        ReconnectPolicy { jitter: Duration::ZERO, max_delay: Duration::from_secs(1), ..ReconnectPolicy::default() };
    let mut p = Peer::connected(cfg);
    p.eof();
    p.drain();
    let mut waits = vec![];
    for _ in 0..6 {
        waits.push(p.advance_to_timeout());
        assert_eq!(p.actions(), [Action::Dial(addr(URL))]);
        assert!(p.events().is_empty());
        p.eof();
        assert_eq!(p.actions(), [Action::CloseTransport]);
        assert!(!p.events().iter().any(|e| matches!(e, Event::Closed(_))));
    }
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 50, 100, 200, 400, 800]);
    assert_eq!(p.advance_to_timeout(), Duration::from_secs(1), "capped at max_delay");
}

#[test]
fn headers_need_server_support() {
    let mut p = Peer::new(config(&[URL]));
    p.handshake_with(&info_line(r#""headers":false,"max_payload":1048576"#));
    let mut h = Headers::new();
    h.insert("K", "v").unwrap();
    assert_eq!(p.conn.publish("a", None, Some(&h), body("x")), Err(CommandError::HeadersNotSupported));
    assert!(p.sent().is_empty());
    // Without headers, HPUB is never written: a plain publish still works.
    p.conn.publish("a", None, None, body("x")).unwrap();
    assert!(matches!(p.sent().as_slice(), [ClientOp::Pub(m)] if m.headers.is_none()));
}

//! Connection state machine: server `-ERR`s (permissions, fatal ones), malformed input, bad header blocks,
//! invalid commands and use after close.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use nats_proto::{
    Action, CommandError, ConnectionError, Event, HeaderError, ParseErrorKind, ServerError, ServerErrorKind, State,
    SubjectError, SubscriptionEnd,
};

fn body(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn subscription_permission_violation_ends_only_that_subscription() {
    let mut p = Peer::connected(config(&[URL]));
    let plain = p.conn.subscribe("secret", None).unwrap();
    let queued = p.conn.subscribe("secret", Some(b"q")).unwrap();
    let open = p.conn.subscribe("open", None).unwrap();
    p.sent();

    p.input("-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n");
    let err = ServerError::new("Permissions Violation for Subscription to \"secret\"");
    assert_eq!(err.kind(), ServerErrorKind::PermissionsViolation);
    assert_eq!(
        p.events(),
        [
            Event::ServerError(err.clone()),
            Event::SubscriptionEnded { sid: plain, reason: SubscriptionEnd::PermissionDenied(err) },
        ]
    );
    assert_eq!(p.conn.state(), State::Connected);
    assert_eq!(p.conn.subscription_count(), 2);

    p.input("-ERR 'Permissions Violation for Subscription to \"secret\" using queue \"q\"'\r\n");
    let events = p.events();
    assert!(
        matches!(events.as_slice(), [Event::ServerError(_), Event::SubscriptionEnded {
            sid, reason: SubscriptionEnd::PermissionDenied(_)
        }] if *sid == queued),
        "{events:?}"
    );

    p.input(format!("{}{}", msg("secret", plain, "dropped"), msg("open", open, "kept")));
    let events = p.events();
    assert!(matches!(events.as_slice(), [Event::Message(m)] if m.sid() == open), "{events:?}");
    assert!(p.sent().is_empty(), "a permissions error does not disconnect");
}

#[test]
fn publish_permission_violation_is_reported_and_the_connection_goes_on() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("x", None).unwrap();
    p.sent();
    p.input("-ERR 'Permissions Violation for Publish to \"x\"'\r\n");
    let events = p.events();
    assert!(
        matches!(events.as_slice(), [Event::ServerError(e)] if e.kind() == ServerErrorKind::PermissionsViolation),
        "{events:?}"
    );
    assert_eq!(p.conn.subscription_count(), 1, "a publish denial ends no subscription");
    assert_eq!(p.conn.state(), State::Connected);
    p.input(msg("x", sid, "still here"));
    assert_eq!(p.events().len(), 1);
}

#[test]
fn fatal_server_errors_disconnect_and_reconnect() {
    for text in ["Stale Connection", "Maximum Payload Violation", "Unknown Protocol Operation"] {
        let mut p = Peer::connected(config(&[URL]));
        p.input(format!("-ERR '{text}'\r\n"));
        let err = ServerError::new(text);
        assert!(err.closes_connection(), "{text}");
        assert_eq!(
            p.events(),
            [Event::ServerError(err.clone()), Event::Disconnected(ConnectionError::Server(err))],
            "{text}"
        );
        assert_eq!(p.actions(), [Action::CloseTransport], "{text}");
        assert_eq!(p.conn.state(), State::Disconnected);
        p.advance_to_timeout();
        assert_eq!(p.actions(), [Action::Dial(addr(URL))], "{text}");
        assert!(p.events().is_empty(), "{text}");
    }
}

#[test]
fn malformed_frame_disconnects_with_parse_error_and_reconnects() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.input(format!("MSG a 1 x\r\n{}", msg("a", sid, "never")));
    let events = p.events();
    let [Event::Disconnected(ConnectionError::Parse(e))] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(p.actions(), [Action::CloseTransport]);
    assert_eq!(e.kind(), ParseErrorKind::InvalidSize);
    assert_eq!(p.conn.state(), State::Disconnected);

    assert_eq!(p.timeout_in(), Some(Duration::ZERO));
    p.advance(Duration::ZERO);
    assert_eq!(p.actions(), [Action::Dial(addr(URL))]);
    assert!(p.events().is_empty());
    let events = p.handshake();
    assert!(events.contains(&Event::Reconnected(addr(URL))), "{events:?}");
    assert_eq!(p.sent(), [sub_op("a", None, sid)]);
    // The new connection parses from a clean slate.
    p.input(msg("a", sid, "fresh"));
    assert!(matches!(p.events().as_slice(), [Event::Message(m)] if m.payload() == b"fresh"));
}

#[test]
fn bytes_after_a_disconnect_are_ignored() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.eof();
    p.drain();
    p.input(msg("a", sid, "ghost"));
    assert!(p.events().is_empty(), "no delivery from a transport already given up");
}

#[test]
fn bad_header_block_is_reported_and_the_connection_goes_on() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    let block = "XATS/1.0\r\n\r\n";
    p.input(format!("HMSG a {sid} {n} {n}\r\n{block}\r\n{}", msg("a", sid, "next"), n = block.len()));
    let events = p.events();
    let [Event::BadMessage(e), Event::Message(m)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(e.kind(), ParseErrorKind::InvalidHeaders(HeaderError::MissingVersion));
    assert_eq!(m.payload(), b"next");
    assert_eq!(p.conn.state(), State::Connected);
    assert!(p.sent().is_empty());
}

#[test]
fn good_headers_are_delivered() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    let block = "NATS/1.0\r\nK: v\r\n\r\n";
    p.input(format!("HMSG a {sid} {} {}\r\n{block}hi\r\n", block.len(), block.len() + 2));
    let events = p.events();
    let [Event::Message(m)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(m.headers().and_then(|h| h.get("K")), Some("v"));
    assert_eq!(m.payload(), b"hi");
}

#[test]
fn invalid_subjects_and_queues_are_typed_errors_and_nothing_is_written() {
    let mut p = Peer::connected(config(&[URL]));
    let c = &mut p.conn;
    let inv = |e| Err(CommandError::InvalidSubject(e));
    assert_eq!(c.publish("a b", None, None, body("x")), inv(SubjectError::Whitespace));
    assert_eq!(c.publish("", None, None, body("x")), inv(SubjectError::Empty));
    assert_eq!(c.publish("a.*", None, None, body("x")), inv(SubjectError::Wildcard));
    assert_eq!(c.publish("a.>", None, None, body("x")), inv(SubjectError::Wildcard));
    assert_eq!(c.publish("a..b", None, None, body("x")), inv(SubjectError::EmptyToken));
    assert_eq!(c.publish("a\r\nPUB b 1", None, None, body("x")), inv(SubjectError::Whitespace));
    assert_eq!(c.publish("ok", Some(b"r r"), None, body("x")), inv(SubjectError::Whitespace));
    assert_eq!(c.publish("ok", Some(b"r.*"), None, body("x")), inv(SubjectError::Wildcard));
    assert_eq!(c.subscribe("a..b", None), Err(CommandError::InvalidSubject(SubjectError::EmptyToken)));
    assert_eq!(c.subscribe(".a", None), Err(CommandError::InvalidSubject(SubjectError::EmptyToken)));
    assert_eq!(c.subscribe("a.>.b", None), Err(CommandError::InvalidSubject(SubjectError::FullWildcardNotLast)));
    assert_eq!(c.subscribe("a b", None), Err(CommandError::InvalidSubject(SubjectError::Whitespace)));
    assert_eq!(c.subscribe("a", Some(b"q q")), Err(CommandError::InvalidQueue(SubjectError::Whitespace)));
    assert_eq!(c.subscribe("a", Some(b"")), Err(CommandError::InvalidQueue(SubjectError::Empty)));
    assert_eq!(c.unsubscribe(42, None), Err(CommandError::UnknownSubscription(42)));

    assert!(p.sent().is_empty(), "nothing written for refused commands");
    assert_eq!(p.conn.subscription_count(), 0);
    assert_eq!(p.conn.statistics().out_msgs, 0);
    assert_eq!(p.conn.subscribe("a", None), Ok(1), "refused subscribes took no sid");
    assert!(p.events().is_empty());
}

#[test]
fn commands_after_close_fail_with_closed() {
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.sent();
    p.conn.close();
    p.drain();
    let now = p.now();
    assert_eq!(p.conn.publish("a", None, None, body("x")), Err(CommandError::Closed));
    assert_eq!(p.conn.subscribe("a", None), Err(CommandError::Closed));
    assert_eq!(p.conn.unsubscribe(sid, None), Err(CommandError::Closed));
    assert_eq!(p.conn.request(now, "a", None, body("x"), None), Err(CommandError::Closed));
    assert_eq!(p.conn.request_many(now, "a", None, body("x"), None), Err(CommandError::Closed));
    assert_eq!(p.conn.flush(now, None), Err(CommandError::Closed));
    assert_eq!(p.conn.drain(now), Err(CommandError::Closed));
    assert!(p.sent().is_empty());
    // Input and time do nothing any more.
    p.input(msg("a", sid, "x"));
    p.input("PING\r\n");
    p.advance(Duration::from_secs(600));
    assert!(p.events().is_empty());
    assert!(p.sent().is_empty());
    assert_eq!(p.conn.state(), State::Closed);
}

#[test]
fn bad_message_counts_toward_unsubscribe_max() {
    // The server delivered the malformed message and counted it toward `UNSUB sid 2`: after the next one it
    // sends nothing more for this sid, so the client must end the subscription too, or it waits for ever.
    let mut p = Peer::connected(config(&[URL]));
    let sid = p.conn.subscribe("a", None).unwrap();
    p.conn.unsubscribe(sid, Some(2)).unwrap();
    assert_eq!(p.sent(), [sub_op("a", None, sid), unsub_op(sid, Some(2))]);
    let block = "XATS/1.0\r\n\r\n";
    p.input(format!("HMSG a {sid} {n} {n}\r\n{block}\r\n{}", msg("a", sid, "good"), n = block.len()));
    let events = p.events();
    assert!(matches!(events.first(), Some(Event::BadMessage(_))), "{events:?}");
    assert!(matches!(events.get(1), Some(Event::Message(m)) if m.payload() == b"good"), "{events:?}");
    assert_eq!(
        events.get(2),
        Some(&Event::SubscriptionEnded { sid, reason: SubscriptionEnd::MaxReached }),
        "the server has delivered its 2 messages: {events:?}"
    );
    assert_eq!(p.conn.subscription_count(), 0);
}

//! Connection state machine: the request/reply mux (one wildcard inbox SUB, a token per request), replies,
//! no-responders, timeouts, cancellation, request_many and inbox prefixes.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use nats_proto::{ClientOp, CommandError, Event, Pub, RequestError, State};

/// Splits `<prefix>.<nuid>.<last>` where the nuid is 22 base-62 characters.
fn inbox_parts<'a>(subject: &'a str, prefix: &str) -> (&'a str, &'a str) {
    let rest = subject.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')).unwrap_or_else(|| {
        panic!("{subject:?} does not start with {prefix:?}.");
    });
    let (nuid, last) = rest.split_once('.').unwrap_or_else(|| panic!("{subject:?} has no token"));
    assert_eq!(nuid.len(), 22, "nuid {nuid:?}");
    assert!(nuid.bytes().all(|b| b.is_ascii_alphanumeric()), "nuid {nuid:?}");
    (nuid, last)
}

/// The reply subject of the one PUB in `ops`.
fn reply_of(ops: &[ClientOp]) -> String {
    let pubs: Vec<&Pub> = ops.iter().filter_map(|op| if let ClientOp::Pub(p) = op { Some(p) } else { None }).collect();
    let [p] = pubs.as_slice() else { panic!("expected one PUB in {ops:?}") };
    p.reply.as_ref().and_then(|r| r.as_str()).expect("a reply subject").to_owned()
}

fn payload(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[test]
fn first_request_creates_one_wildcard_sub_and_later_ones_reuse_it() {
    let mut p = Peer::connected(config(&[URL]));
    let now = p.now();
    let r1 = p.conn.request(now, "svc", None, payload("q1"), Some(Duration::from_secs(5))).unwrap();
    let ops = p.sent();
    assert_eq!(ops.len(), 2, "{ops:?}");
    let ClientOp::Sub { subject, queue: None, sid: mux_sid } = &ops[0] else { panic!("SUB first: {ops:?}") };
    let wildcard = subject.as_str().unwrap();
    let (nuid, star) = inbox_parts(wildcard, "_INBOX");
    assert_eq!(star, "*");
    let reply1 = reply_of(&ops);
    let (nuid1, token1) = inbox_parts(&reply1, "_INBOX");
    assert_eq!(nuid1, nuid, "the reply is under the wildcard");
    assert!(!token1.is_empty() && !token1.contains(['*', '>', '.']));
    assert_eq!(ops[1], pub_op("svc", Some(&reply1), "q1"));

    let r2 = p.conn.request(now, "svc", None, payload("q2"), Some(Duration::from_secs(5))).unwrap();
    let ops = p.sent();
    let [ClientOp::Pub(_)] = ops.as_slice() else { panic!("no second SUB: {ops:?}") };
    let reply2 = reply_of(&ops);
    let (nuid2, token2) = inbox_parts(&reply2, "_INBOX");
    assert_eq!(nuid2, nuid);
    assert_ne!(token2, token1);
    assert_ne!(r1, r2);
    assert_eq!(p.conn.requests_in_flight(), 2);
    assert_eq!(p.conn.subscription_count(), 0, "the mux is not a user subscription");
    assert_eq!(p.conn.subscribe("other", None).unwrap(), mux_sid + 1, "the mux took a sid");

    // Replies route by token, in any order.
    p.input(msg(&reply2, *mux_sid, "a2"));
    let events = p.events();
    let [Event::Response { id, result: Ok(m), done: true }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((*id, m.payload()), (r2, &b"a2"[..]));
    assert_eq!(p.conn.requests_in_flight(), 1);
    p.input(msg(&reply1, *mux_sid, "a1"));
    let events = p.events();
    let [Event::Response { id, result: Ok(m), done: true }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((*id, m.payload()), (r1, &b"a1"[..]));
    assert_eq!(p.conn.requests_in_flight(), 0);
}

#[test]
fn no_responders_status_ends_the_request() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request(p.now(), "nobody", None, payload(""), Some(Duration::from_secs(5))).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { sid, .. } = ops[0] else { panic!("{ops:?}") };
    let reply = reply_of(&ops);
    p.input(status_msg(&reply, sid, 503));
    assert_eq!(p.events(), [Event::Response { id, result: Err(RequestError::NoResponders), done: true }]);
    assert_eq!(p.conn.requests_in_flight(), 0);
}

#[test]
fn a_denied_reply_inbox_fails_requests_at_once_and_the_next_request_subscribes_again() {
    let mut p = Peer::connected(config(&[URL]));
    let now = p.now();
    let r1 = p.conn.request(now, "svc", None, payload("a"), Some(Duration::from_secs(30))).unwrap();
    let r2 = p.conn.request(now, "svc", None, payload("b"), Some(Duration::from_secs(30))).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { subject, .. } = &ops[0] else { panic!("{ops:?}") };
    let wildcard = subject.as_str().unwrap().to_owned();
    p.input(format!("-ERR 'Permissions Violation for Subscription to \"{wildcard}\"'\r\n"));
    let events = p.events();
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Response { id, result: Err(RequestError::PermissionDenied(_)), done: true } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [r1, r2], "both requests fail now, not at their timeout: {events:?}");
    assert_eq!(p.conn.requests_in_flight(), 0);
    assert!(p.conn.is_connected(), "a permissions violation does not end the connection");
    // A permission on another subject leaves requests alone.
    let r3 = p.conn.request(p.now(), "svc", None, payload("c"), Some(Duration::from_secs(30))).unwrap();
    let ops = p.sent();
    assert!(matches!(ops[0], ClientOp::Sub { .. }), "the inbox is subscribed again: {ops:?}");
    p.input("-ERR 'Permissions Violation for Subscription to \"other.>\"'\r\n");
    assert!(p.events().iter().all(|e| !matches!(e, Event::Response { .. })));
    assert_eq!(p.conn.requests_in_flight(), 1);
    let _ = r3;
}

#[test]
fn request_times_out_and_a_late_reply_is_dropped() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request(p.now(), "slow", None, payload("x"), Some(Duration::from_secs(2))).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { sid, .. } = ops[0] else { panic!("{ops:?}") };
    let reply = reply_of(&ops);
    assert_eq!(p.timeout_in(), Some(Duration::from_secs(2)), "poll_timeout includes the request deadline");
    p.advance(Duration::from_millis(1999));
    assert!(p.events().is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(p.events(), [Event::Response { id, result: Err(RequestError::Timeout), done: true }]);
    assert_eq!(p.conn.requests_in_flight(), 0);
    p.input(msg(&reply, sid, "late"));
    assert!(p.events().is_empty(), "late reply dropped");
    assert!(p.conn.is_connected());
}

#[test]
fn cancelled_request_leaves_nothing_behind() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request(p.now(), "svc", None, payload("x"), Some(Duration::from_secs(2))).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { sid, .. } = ops[0] else { panic!("{ops:?}") };
    let reply = reply_of(&ops);
    assert!(p.conn.cancel_request(id));
    assert!(!p.conn.cancel_request(id), "already gone");
    assert_eq!(p.conn.requests_in_flight(), 0);
    assert_eq!(p.timeout_in(), Some(Duration::from_secs(120)), "only the keep-alive timer is left");
    p.input(msg(&reply, sid, "late"));
    p.advance(Duration::from_secs(3));
    assert!(p.events().is_empty(), "no reply, no timeout for a cancelled request");
}

#[test]
fn request_many_delivers_replies_until_timeout() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request_many(p.now(), "scatter", None, payload("x"), Some(Duration::from_secs(1))).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { sid, .. } = ops[0] else { panic!("{ops:?}") };
    let reply = reply_of(&ops);
    p.input(format!("{}{}{}", msg(&reply, sid, "r1"), msg(&reply, sid, "r2"), msg(&reply, sid, "r3")));
    let events = p.events();
    assert_eq!(events.len(), 3, "{events:?}");
    for (e, want) in events.iter().zip(["r1", "r2", "r3"]) {
        let Event::Response { id: got, result: Ok(m), done: false } = e else { panic!("{events:?}") };
        assert_eq!((*got, m.payload()), (id, want.as_bytes()));
    }
    assert_eq!(p.conn.requests_in_flight(), 1);
    p.advance(Duration::from_secs(1));
    assert_eq!(p.events(), [Event::Response { id, result: Err(RequestError::Timeout), done: true }]);
    p.input(msg(&reply, sid, "r4"));
    assert!(p.events().is_empty());
}

#[test]
fn request_many_ends_on_no_responders() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request_many(p.now(), "scatter", None, payload("x"), Some(Duration::from_secs(1))).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { sid, .. } = ops[0] else { panic!("{ops:?}") };
    let reply = reply_of(&ops);
    p.input(status_msg(&reply, sid, 503));
    assert_eq!(p.events(), [Event::Response { id, result: Err(RequestError::NoResponders), done: true }]);
    assert_eq!(p.conn.requests_in_flight(), 0);
}

#[test]
fn custom_inbox_prefix_is_honoured() {
    let mut cfg = config(&[URL]);
    cfg.inbox_prefix = "my.replies".into();
    let mut p = Peer::connected(cfg);
    p.conn.request(p.now(), "svc", None, payload("x"), None).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { subject, .. } = &ops[0] else { panic!("{ops:?}") };
    assert_eq!(inbox_parts(subject.as_str().unwrap(), "my.replies").1, "*");
    inbox_parts(&reply_of(&ops), "my.replies");
    let fresh = p.conn.new_inbox();
    assert!(fresh.starts_with("my.replies.") && fresh.len() == "my.replies.".len() + 22, "{fresh}");
}

#[test]
fn request_while_disconnected_goes_out_after_the_mux_sub() {
    let mut p = Peer::connected(config(&[URL]));
    p.eof();
    p.drain();
    let id = p.conn.request(p.now(), "svc", None, payload("x"), Some(Duration::from_secs(30))).unwrap();
    assert!(p.sent().is_empty());
    p.advance_to_timeout();
    p.handshake();
    let ops = p.sent();
    let [ClientOp::Sub { sid, .. }, ClientOp::Pub(_)] = ops.as_slice() else { panic!("mux SUB then PUB: {ops:?}") };
    let reply = reply_of(&ops);
    p.input(msg(&reply, *sid, "ok"));
    let events = p.events();
    assert!(matches!(events.as_slice(), [Event::Response { id: got, result: Ok(_), done: true }] if *got == id));
}

#[test]
fn mux_sub_is_replayed_after_reconnect() {
    let mut p = Peer::connected(config(&[URL]));
    let id = p.conn.request(p.now(), "svc", None, payload("x"), None).unwrap();
    let ops = p.sent();
    let ClientOp::Sub { subject, sid, .. } = ops[0].clone() else { panic!("{ops:?}") };
    let reply = reply_of(&ops);
    p.reconnect();
    assert_eq!(p.sent(), [ClientOp::Sub { subject, queue: None, sid }]);
    // The request survives the reconnect (its PUB may be lost; its reply still routes).
    p.input(msg(&reply, sid, "ok"));
    assert!(matches!(p.events().as_slice(), [Event::Response { id: got, result: Ok(_), done: true }] if *got == id));
}

#[test]
fn request_errors_are_typed_and_nothing_is_written() {
    let mut p = Peer::connected(config(&[URL]));
    let now = p.now();
    assert!(matches!(p.conn.request(now, "a b", None, payload("x"), None), Err(CommandError::InvalidSubject(_))));
    assert!(matches!(p.conn.request(now, "a.*", None, payload("x"), None), Err(CommandError::InvalidSubject(_))));
    assert!(p.sent().is_empty(), "not even the mux SUB");
    assert_eq!(p.conn.requests_in_flight(), 0);
    p.conn.close();
    assert_eq!(p.conn.state(), State::Closed);
    assert_eq!(p.conn.request(now, "a", None, payload("x"), None), Err(CommandError::Closed));
}

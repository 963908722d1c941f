//! Messages one at a time: subjects, wildcards, payload forms and sizes, headers, replies, the receive calls.

use std::time::{Duration, Instant};

use conformance::{TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_client::Error;
use nats_proto::Headers;
use nats_server_harness::NatsServer;

use crate::common::{assert_ended, connect, recv, subject, take_queued, text, WAIT};

pub(crate) fn publish_and_receive_in_order<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("basic.one", None).unwrap();
    for i in 0..3 {
        client.publish("basic.one", None, None, format!("m{i}").into()).unwrap();
    }
    for i in 0..3 {
        let msg = recv(&mut sub, "basic message");
        assert_eq!(subject(&msg), "basic.one");
        assert_eq!(text(&msg), format!("m{i}"));
        assert!(msg.reply().is_none());
        assert!(msg.headers().is_none());
        assert!(msg.status().is_none());
    }
    // An empty payload is a message too.
    client.publish("basic.one", None, None, "".into()).unwrap();
    assert!(recv(&mut sub, "empty payload").payload().is_empty());
    // Nothing else: a different subject does not match.
    client.publish("basic.two", None, None, "other".into()).unwrap();
    client.flush().unwrap();
    assert!(sub.try_next().is_none());
}

/// Every form of payload arrives as sent: a buffer the caller rewrites between publishes (copied, never held),
/// a borrowed body past the size at which shared ones are chained, a borrowed `Bytes`, owned ones.
pub(crate) fn borrowed_and_owned_payloads_arrive_as_sent<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("forms", None).unwrap();
    let mut buf = Vec::new();
    for i in 0..3u8 {
        buf.clear();
        buf.extend_from_slice(&[b'a' + i; 10]);
        client.publish("forms", None, None, buf[..].into()).unwrap();
    }
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    client.publish("forms", None, None, (&big).into()).unwrap();
    let shared = bytes::Bytes::from(big.clone());
    client.publish("forms", None, None, (&shared).into()).unwrap();
    client.publish("forms", None, None, shared.clone().into()).unwrap();
    client.publish("forms", None, None, String::from("owned").into()).unwrap();
    // The buffer is rewritten before anything is flushed: what left must be what it held at each call.
    buf.clear();
    buf.extend_from_slice(b"zzzz");
    client.flush().unwrap();
    for i in 0..3u8 {
        assert_eq!(recv(&mut sub, "borrowed").payload(), &[b'a' + i; 10][..]);
    }
    for form in ["borrowed large", "borrowed Bytes", "owned Bytes"] {
        assert_eq!(recv(&mut sub, form).payload(), &big[..], "{form}");
    }
    assert_eq!(text(&recv(&mut sub, "owned String")), "owned");
}

pub(crate) fn wildcards_star_and_greater_than<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut star = client.subscribe("wild.*", None).unwrap();
    let mut gt = client.subscribe("wild.>", None).unwrap();
    let mut mid = client.subscribe("wild.*.end", None).unwrap();
    for s in ["wild.a", "wild.a.b", "wild.x.end", "wild", "other.a", "wild.b"] {
        client.publish(s, None, None, s.into()).unwrap();
    }
    client.flush().unwrap();
    let got = |sub: &mut C::Subscription| -> Vec<String> { take_queued(sub).iter().map(subject).collect() };
    assert_eq!(got(&mut star), ["wild.a", "wild.b"]);
    assert_eq!(got(&mut gt), ["wild.a", "wild.a.b", "wild.x.end", "wild.b"]);
    assert_eq!(got(&mut mid), ["wild.x.end"]);
}

pub(crate) fn headers_round_trip_multi_valued_and_case_preserving<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("hdr.x", None).unwrap();
    let mut headers = Headers::new();
    headers.append("X-Multi", "one").unwrap();
    headers.append("X-Multi", "two").unwrap();
    headers.insert("Mixed-Case-Name", "Value With Spaces").unwrap();
    headers.insert("lower", "l").unwrap();
    client.publish("hdr.x", None, Some(&headers), "body".into()).unwrap();

    let msg = recv(&mut sub, "message with headers");
    assert_eq!(text(&msg), "body");
    let got = msg.headers().expect("headers arrive");
    assert_eq!(got.get_all("X-Multi").collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(got.get("X-Multi"), Some("one"));
    assert_eq!(got.get("Mixed-Case-Name"), Some("Value With Spaces"));
    assert_eq!(got.get("mixed-case-name"), None, "get is case-sensitive");
    assert_eq!(got.get_ignore_case("MIXED-CASE-NAME"), Some("Value With Spaces"));
    assert_eq!(got.get_ignore_case("LOWER"), Some("l"));
    assert!(got.status().is_none());
    let names: Vec<String> =
        got.iter().map(|(n, _)| String::from_utf8(n.to_vec()).unwrap()).filter(|n| !n.is_empty()).collect();
    assert_eq!(names, ["X-Multi", "X-Multi", "Mixed-Case-Name", "lower"], "names keep their case and order");
    assert_eq!(msg.size(), got.as_bytes().len() + 4);
    // Back to the builder form, equal to what was sent.
    let back = got.to_headers();
    assert_eq!(back.iter().collect::<Vec<_>>(), headers.iter().collect::<Vec<_>>());
}

pub(crate) fn publish_with_reply_and_respond<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("rep.req", None).unwrap();
    let mut replies = client.subscribe("rep.answers", None).unwrap();
    client.publish("rep.req", Some("rep.answers"), None, "question".into()).unwrap();
    let msg = recv(&mut sub, "request");
    assert_eq!(msg.reply().and_then(|r| r.as_str()), Some("rep.answers"));
    msg.respond("answer").unwrap();
    let mut h = Headers::new();
    h.insert("K", "v").unwrap();
    msg.respond_with_headers(Some(&h), "answer2").unwrap();
    let a = recv(&mut replies, "reply");
    assert_eq!((subject(&a), text(&a)), ("rep.answers".to_owned(), "answer".to_owned()));
    let b = recv(&mut replies, "reply with headers");
    assert_eq!(text(&b), "answer2");
    assert_eq!(b.headers().and_then(|h| h.get("K")), Some("v"));
    // No reply subject: respond is a typed error, nothing sent.
    client.publish("rep.req", None, None, "no reply".into()).unwrap();
    let plain = recv(&mut sub, "plain");
    assert!(matches!(plain.respond("x"), Err(Error::Command(_))));
    client.publish("rep.req", Some("rep.answers"), Some(&h), "q3".into()).unwrap();
    let q3 = recv(&mut sub, "request with headers");
    assert_eq!(text(&q3), "q3");
    assert_eq!(q3.headers().and_then(|h| h.get("K")), Some("v"));
    assert_eq!(q3.reply().and_then(|r| r.as_str()), Some("rep.answers"));
    client.flush().unwrap();
    assert!(replies.try_next().is_none());
}

/// `try_next` never waits, `next_timeout` waits as long as it is told (and is woken by a publish from
/// another thread), and `pending` counts messages and bytes.
pub(crate) fn try_next_next_timeout_and_pending<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("recv.x", None).unwrap();
    let started = Instant::now();
    assert!(sub.try_next().is_none());
    assert!(started.elapsed() < Duration::from_millis(500), "try_next must not wait");

    // Nothing comes: a bounded wait times out and leaves the subscription usable.
    let started = Instant::now();
    assert!(matches!(sub.next_timeout(Duration::from_millis(150)), Err(Error::Timeout)));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(140), "returned early: {waited:?}");
    assert!(waited < Duration::from_secs(2), "returned late: {waited:?}");

    client.publish("recv.x", None, None, "a".into()).unwrap();
    client.publish("recv.x", None, None, "b".into()).unwrap();
    client.flush().unwrap();
    assert_eq!(sub.pending(), 2);
    assert_eq!(sub.pending_messages_and_bytes(), (2, 2));
    assert_eq!(text(&sub.try_next().expect("queued after flush")), "a");
    assert_eq!(text(&sub.next_timeout(Duration::ZERO).expect("queued")), "b");
    assert!(sub.try_next().is_none());
    assert_eq!(sub.pending_messages_and_bytes(), (0, 0));
    assert_eq!(sub.dropped(), 0);

    // A message published while next_timeout waits wakes it.
    let publisher = client.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        publisher.publish("recv.x", None, None, "c".into()).unwrap();
    });
    assert_eq!(text(&sub.next_timeout(WAIT).expect("woken by a publish")), "c");
    t.join().unwrap();
    assert_eq!(sub.pending_messages_and_bytes(), (0, 0));

    sub.unsubscribe().unwrap();
    assert!(sub.try_next().is_none());
    assert_ended(&mut sub);
}

pub(crate) fn payload_sizes_around_buffer_boundaries_arrive_intact<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("size.x", None).unwrap();
    let sizes = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 300_000, client.max_payload()];
    let body = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };
    for &n in &sizes {
        client.publish("size.x", None, None, body(n).into()).unwrap();
    }
    for &n in &sizes {
        let msg = recv(&mut sub, "sized message");
        assert_eq!(msg.payload().len(), n);
        assert!(msg.payload()[..] == body(n)[..], "payload of {n} bytes corrupted");
    }
}

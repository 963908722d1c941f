//! Publish/subscribe against a real nats-server: subjects and wildcards, queue groups, unsubscribing,
//! headers, replies, handler threads, and the receive calls.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{assert_ended, connect, read_to_end, recv, subject, take_queued, text, WAIT};
use nats_blocking::{Error, Headers};
use nats_server_harness::NatsServer;

#[test]
fn publish_and_receive_in_order() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("basic.one").unwrap();
    for i in 0..3 {
        client.publish("basic.one", format!("m{i}")).unwrap();
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
    client.publish("basic.one", "").unwrap();
    assert!(recv(&mut sub, "empty payload").payload().is_empty());
    // Nothing else: a different subject does not match.
    client.publish("basic.two", "other").unwrap();
    client.flush().unwrap();
    assert!(sub.try_next().is_none());
}

/// Every form of payload arrives as sent: a buffer the caller rewrites between publishes (copied, never held),
/// a borrowed body past the size at which shared ones are chained, a borrowed `Bytes`, owned ones.
#[test]
fn borrowed_and_owned_payloads_arrive_as_sent() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("forms").unwrap();
    let mut buf = Vec::new();
    for i in 0..3u8 {
        buf.clear();
        buf.extend_from_slice(&[b'a' + i; 10]);
        client.publish("forms", &buf[..]).unwrap();
    }
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    client.publish("forms", &big).unwrap();
    let shared = nats_blocking::bytes::Bytes::from(big.clone());
    client.publish("forms", &shared).unwrap();
    client.publish("forms", shared.clone()).unwrap();
    client.publish("forms", String::from("owned")).unwrap();
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

#[test]
fn wildcards_star_and_greater_than() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut star = client.subscribe("wild.*").unwrap();
    let mut gt = client.subscribe("wild.>").unwrap();
    let mut mid = client.subscribe("wild.*.end").unwrap();
    for s in ["wild.a", "wild.a.b", "wild.x.end", "wild", "other.a", "wild.b"] {
        client.publish(s, s).unwrap();
    }
    client.flush().unwrap();
    let got = |sub: &mut nats_blocking::Subscriber| -> Vec<String> { take_queued(sub).iter().map(subject).collect() };
    assert_eq!(got(&mut star), ["wild.a", "wild.b"]);
    assert_eq!(got(&mut gt), ["wild.a", "wild.a.b", "wild.x.end", "wild.b"]);
    assert_eq!(got(&mut mid), ["wild.x.end"]);
}

#[test]
fn queue_group_spreads_load_without_duplicates() {
    const N: usize = 300;
    let server = NatsServer::start();
    let client = connect(&server);
    let publisher = connect(&server);
    let mut members: Vec<_> = (0..3).map(|_| client.queue_subscribe("work.items", "workers").unwrap()).collect();
    // A plain subscriber next to the group still sees everything.
    let mut observer = client.subscribe("work.items").unwrap();
    client.flush().unwrap();
    for i in 0..N {
        publisher.publish("work.items", i.to_string()).unwrap();
    }
    publisher.flush().unwrap();
    // The publisher's flush orders its messages before our PONG.
    client.flush().unwrap();
    let mut seen = HashSet::new();
    let mut total = 0;
    for (i, member) in members.iter_mut().enumerate() {
        let got = take_queued(member);
        assert!(!got.is_empty(), "member {i} got nothing of {N}");
        for msg in got {
            total += 1;
            assert!(seen.insert(text(&msg)), "duplicate delivery of {}", text(&msg));
        }
    }
    assert_eq!(total, N);
    assert_eq!(seen.len(), N);
    assert_eq!(take_queued(&mut observer).len(), N);
}

#[test]
fn unsubscribe_after_delivers_exactly_n_then_ends() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("max.n").unwrap();
    sub.unsubscribe_after(5).unwrap();
    for i in 0..10 {
        client.publish("max.n", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(sub.next().is_none(), "the iterator ends after the max");
    // Unsubscribing an ended subscription is harmless.
    sub.unsubscribe().unwrap();
}

#[test]
fn unsubscribe_after_counts_messages_already_delivered() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("max.later").unwrap();
    for i in 0..3 {
        client.publish("max.later", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    // Three delivered, the max is five in total: two more, then the end.
    sub.unsubscribe_after(5).unwrap();
    for i in 3..10 {
        client.publish("max.later", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
}

#[test]
fn unsubscribe_stops_delivery_but_keeps_received_messages() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("unsub.x").unwrap();
    let mut other = client.subscribe("unsub.x").unwrap();
    client.publish("unsub.x", "before-1").unwrap();
    client.publish("unsub.x", "before-2").unwrap();
    client.flush().unwrap();
    sub.unsubscribe().unwrap();
    client.publish("unsub.x", "after").unwrap();
    client.flush().unwrap();
    // Already received: still readable.
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe")), "before-1");
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe")), "before-2");
    assert_ended(&mut sub);
    assert!(sub.next().is_none());
    let others: Vec<String> = take_queued(&mut other).iter().map(text).collect();
    assert_eq!(others, ["before-1", "before-2", "after"]);
}

#[test]
fn dropping_a_subscriber_unsubscribes_on_the_server() {
    let server = NatsServer::start();
    let client = connect(&server);
    let dropped = client.subscribe("drop.x").unwrap();
    let mut witness = client.subscribe("drop.>").unwrap();
    client.flush().unwrap();

    let before = client.statistics().in_msgs;
    client.publish("drop.x", "both").unwrap();
    client.flush().unwrap();
    // Two subscriptions match: the server sends the message twice.
    assert_eq!(client.statistics().in_msgs - before, 2);
    assert_eq!(text(&recv(&mut witness, "first")), "both");

    drop(dropped);
    let before = client.statistics().in_msgs;
    client.publish("drop.x", "one").unwrap();
    client.flush().unwrap();
    // Only the witness's copy came: the dropped subscription is gone on the server too.
    assert_eq!(client.statistics().in_msgs - before, 1, "the server still delivers to a dropped subscriber");
    assert_eq!(text(&recv(&mut witness, "second")), "one");
    assert!(witness.try_next().is_none());
}

#[test]
fn headers_round_trip_multi_valued_and_case_preserving() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("hdr.x").unwrap();
    let mut headers = Headers::new();
    headers.append("X-Multi", "one").unwrap();
    headers.append("X-Multi", "two").unwrap();
    headers.insert("Mixed-Case-Name", "Value With Spaces").unwrap();
    headers.insert("lower", "l").unwrap();
    client.publish_with_headers("hdr.x", &headers, "body").unwrap();

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

#[test]
fn publish_with_reply_and_respond() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("rep.req").unwrap();
    let mut replies = client.subscribe("rep.answers").unwrap();
    client.publish_with_reply("rep.req", "rep.answers", "question").unwrap();
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
    client.publish("rep.req", "no reply").unwrap();
    let plain = recv(&mut sub, "plain");
    assert!(matches!(plain.respond("x"), Err(Error::Command(_))));
    client.publish_with_reply_and_headers("rep.req", "rep.answers", &h, "q3").unwrap();
    let q3 = recv(&mut sub, "request with headers");
    assert_eq!(q3.headers().and_then(|h| h.get("K")), Some("v"));
    assert_eq!(q3.reply().and_then(|r| r.as_str()), Some("rep.answers"));
}

#[test]
fn subscribe_with_runs_on_its_own_thread_and_unsubscribe_joins() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel::<(String, Option<String>)>();
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let cb = client
        .subscribe_with("cb.x", move |msg| {
            // Slow enough that unsubscribe must really wait for the queued messages.
            std::thread::sleep(Duration::from_millis(20));
            counter.fetch_add(1, Ordering::SeqCst);
            let name = std::thread::current().name().map(str::to_owned);
            tx.send((text(&msg), name)).unwrap();
        })
        .unwrap();
    assert!(cb.sid() > 0);
    for i in 0..5 {
        client.publish("cb.x", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    let (first, name) = rx.recv_timeout(WAIT).expect("the handler runs");
    assert_eq!(first, "0");
    let name = name.expect("handler threads are named");
    assert_ne!(name, "nats-reader", "handlers must not run on the reader thread");
    assert_ne!(name, "nats-writer");
    assert_ne!(Some(name.as_str()), std::thread::current().name());

    // All five were received before this; unsubscribe waits until the handler has finished them.
    cb.unsubscribe().unwrap();
    assert_eq!(handled.load(Ordering::SeqCst), 5);
    // The thread is gone: its closure (holding a clone of the Arc and the sender) was dropped.
    assert_eq!(Arc::strong_count(&handled), 1);
    let rest: Vec<String> = rx.try_iter().map(|(p, _)| p).collect();
    assert_eq!(rest, ["1", "2", "3", "4"]);
    assert!(matches!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
    // Later publishes reach nobody.
    let before = client.statistics().in_msgs;
    client.publish("cb.x", "late").unwrap();
    client.flush().unwrap();
    assert_eq!(client.statistics().in_msgs, before);
}

#[test]
fn try_next_and_next_timeout() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("recv.x").unwrap();
    let started = Instant::now();
    assert!(sub.try_next().is_none());
    assert!(started.elapsed() < Duration::from_millis(500), "try_next must not wait");

    let started = Instant::now();
    assert!(matches!(sub.next_timeout(Duration::from_millis(150)), Err(Error::Timeout)));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(140), "returned early: {waited:?}");
    assert!(waited < Duration::from_secs(2), "returned late: {waited:?}");

    client.publish("recv.x", "a").unwrap();
    client.publish("recv.x", "b").unwrap();
    client.flush().unwrap();
    assert_eq!(sub.pending().0, 2);
    assert_eq!(text(&sub.try_next().expect("queued after flush")), "a");
    assert_eq!(text(&sub.next_timeout(Duration::ZERO).expect("queued")), "b");
    assert!(sub.try_next().is_none());

    // A message published while next_timeout waits wakes it.
    let publisher = client.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        publisher.publish("recv.x", "c").unwrap();
    });
    assert_eq!(text(&sub.next_timeout(WAIT).expect("woken by a publish")), "c");
    t.join().unwrap();
    assert_eq!(sub.pending(), (0, 0));

    sub.unsubscribe().unwrap();
    assert!(sub.try_next().is_none());
    assert_ended(&mut sub);
}

#[test]
fn payload_sizes_around_buffer_boundaries_arrive_intact() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("size.x").unwrap();
    let sizes = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 300_000, client.max_payload()];
    let body = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };
    for &n in &sizes {
        client.publish("size.x", body(n)).unwrap();
    }
    for &n in &sizes {
        let msg = recv(&mut sub, "sized message");
        assert_eq!(msg.payload().len(), n);
        assert!(msg.payload()[..] == body(n)[..], "payload of {n} bytes corrupted");
    }
}

#[test]
fn high_volume_with_a_concurrent_reader_loses_nothing() {
    const N: usize = 50_000;
    let server = NatsServer::start();
    let client = connect(&server);
    let publisher = connect(&server);
    let mut sub = client.subscribe("volume.x").unwrap();
    client.flush().unwrap();
    let reader = std::thread::spawn(move || {
        let mut next = 0usize;
        while next < N {
            let msg = sub.next_timeout(WAIT).unwrap_or_else(|e| panic!("stalled after {next} messages: {e:?}"));
            assert_eq!(text(&msg), format!("{next:08}"), "out of order");
            next += 1;
        }
        sub.dropped()
    });
    for i in 0..N {
        publisher.publish("volume.x", format!("{i:08}")).unwrap();
    }
    publisher.flush().unwrap();
    assert_eq!(reader.join().expect("reader"), 0, "nothing dropped with the default limits");
    assert_eq!(publisher.statistics().out_msgs, N as u64);
    assert_eq!(client.statistics().in_msgs, N as u64);
}

#[test]
fn unsubscribe_after_a_max_already_reached_ends_at_once() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("max.reached").unwrap();
    for i in 0..3 {
        client.publish("max.reached", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    // Three delivered already: a max of three (or less) ends the subscription now.
    sub.unsubscribe_after(3).unwrap();
    let started = Instant::now();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2"]);
    assert!(started.elapsed() < Duration::from_secs(1), "the end came only after {:?}", started.elapsed());
}

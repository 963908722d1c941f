//! Limits against a real nats-server: slow consumers, the server's max_payload, invalid subjects and queue
//! names.

mod common;

use std::time::Duration;

use common::{connect, recv, take_queued, text};
use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{Error, Event, Headers, PendingLimits};
use nats_proto::{CommandError, SubjectError};
use nats_server_harness::NatsServer;

#[test]
fn slow_consumer_drops_counts_and_reports_once_per_episode() {
    const N: usize = 1000;
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 10, bytes: 1 << 20 };
    let client = common::options(&server.url()).pending_limits(limits).connect().unwrap();
    let events = client.events();
    let mut slow = client.subscribe("sc.slow").unwrap();
    // Read concurrently and with room to spare: it must see every message despite its neighbour.
    let mut fast = client.subscribe("sc.fast").unwrap();
    fast.set_pending_limits(PendingLimits { messages: 100_000, bytes: 64 << 20 });
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            match fast.next_timeout(common::WAIT) {
                Ok(m) => got.push(text(&m)),
                Err(e) => panic!("fast subscriber stopped after {} messages: {e:?}", got.len()),
            }
        }
        (got, fast.dropped(), fast)
    });
    for i in 0..N {
        client.publish("sc.slow", format!("{i:04}")).unwrap();
        client.publish("sc.fast", format!("{i:04}")).unwrap();
    }
    client.flush().unwrap();

    let (pending_msgs, pending_bytes) = slow.pending();
    assert_eq!(pending_msgs, 10, "the queue holds exactly its limit");
    assert_eq!(pending_bytes, 40);
    assert_eq!(slow.dropped(), (N - 10) as u64);
    // Every event of the burst was emitted before the flush completed.
    let slow_events: Vec<Event> = events.try_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(slow_events, [Event::SlowConsumer { sid: slow.sid() }], "one event for the episode");

    let (got, fast_dropped, mut fast) = reader.join().expect("fast reader");
    let expected: Vec<String> = (0..N).map(|i| format!("{i:04}")).collect();
    assert_eq!(got, expected, "the other subscription received everything, in order");
    assert_eq!(fast_dropped, 0);
    assert!(fast.try_next().is_none());

    // The kept ones are the first ten.
    let kept: Vec<String> = take_queued(&mut slow).iter().map(text).collect();
    assert_eq!(kept, expected[..10]);
    // Caught up: a new burst is a new episode, with one new event.
    for i in 0..15 {
        client.publish("sc.slow", format!("{i:04}")).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(slow.pending().0, 10);
    assert_eq!(slow.dropped(), (N - 10 + 5) as u64);
    let again: Vec<Event> = events.try_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(again, [Event::SlowConsumer { sid: slow.sid() }]);
    // Nothing lost on the connection itself.
    assert_eq!(client.statistics().in_msgs, (2 * N + 15) as u64);
}

#[test]
fn slow_consumer_byte_limit() {
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 1000, bytes: 1000 };
    let client = common::options(&server.url()).pending_limits(limits).connect().unwrap();
    let mut sub = client.subscribe("scb.x").unwrap();
    for _ in 0..50 {
        client.publish("scb.x", vec![b'x'; 100]).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(sub.pending(), (10, 1000));
    assert_eq!(sub.dropped(), 40);
    assert_eq!(take_queued(&mut sub).len(), 10);
}

#[test]
fn max_payload_is_enforced_before_sending() {
    let server = NatsServer::builder().max_payload(1024).start().unwrap();
    let client = connect(&server);
    assert_eq!(client.max_payload(), 1024);
    let mut sub = client.subscribe("mp.x").unwrap();
    client.flush().unwrap();

    let before = client.statistics();
    let result = client.publish("mp.x", vec![0u8; 2000]);
    assert!(
        matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { size: 2000, max_payload: 1024 }))),
        "{result:?}"
    );
    // Headers count towards the limit.
    let mut h = Headers::new();
    h.insert("Name", "value").unwrap();
    let result = client.publish_with_headers("mp.x", &h, vec![0u8; 1020]);
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.request("mp.x", vec![0u8; 1025]);
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let after = client.statistics();
    assert_eq!(after.out_msgs, before.out_msgs, "nothing was sent");
    assert_eq!(after.out_bytes, before.out_bytes, "nothing was queued");

    // The connection is unharmed, and exactly max_payload is allowed.
    client.publish("mp.x", vec![7u8; 1024]).unwrap();
    client.publish("mp.x", "small").unwrap();
    assert_eq!(recv(&mut sub, "max-size message").payload().len(), 1024);
    assert_eq!(text(&recv(&mut sub, "small message")), "small");
    client.flush().unwrap();
    assert!(!client.is_closed());
    assert_eq!(client.statistics().connects, 1, "no reconnect: the server never saw the oversized message");
}

#[test]
fn invalid_subjects_and_queues_are_typed_errors() {
    let server = NatsServer::start();
    let client = connect(&server);
    let subject_err = |r: Result<(), Error>| match r {
        Err(Error::Command(CommandError::InvalidSubject(e))) => e,
        other => panic!("expected InvalidSubject, got {other:?}"),
    };
    assert_eq!(subject_err(client.publish("", "x")), SubjectError::Empty);
    assert_eq!(subject_err(client.publish("a b", "x")), SubjectError::Whitespace);
    assert_eq!(subject_err(client.publish("a\r\nPUB b 1", "x")), SubjectError::Whitespace);
    assert_eq!(subject_err(client.publish("a..b", "x")), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.publish(".a", "x")), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.publish("a.*", "x")), SubjectError::Wildcard);
    assert_eq!(subject_err(client.publish("a.>", "x")), SubjectError::Wildcard);
    assert_eq!(subject_err(client.publish_with_reply("a", "bad reply", "x")), SubjectError::Whitespace);
    assert_eq!(subject_err(client.publish_with_reply("a", "r.*", "x")), SubjectError::Wildcard);
    assert_eq!(subject_err(client.subscribe("").map(drop)), SubjectError::Empty);
    assert_eq!(subject_err(client.subscribe("a.>.b").map(drop)), SubjectError::FullWildcardNotLast);
    assert_eq!(subject_err(client.subscribe("a..b").map(drop)), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.subscribe("a\tb").map(drop)), SubjectError::Whitespace);
    assert_eq!(subject_err(client.request("a.*", "x").map(drop)), SubjectError::Wildcard);
    assert_eq!(subject_err(client.subscribe_with("a b", |_| {}).map(drop)), SubjectError::Whitespace);

    let queue_err = |r: Result<nats_blocking::Subscriber, Error>| match r {
        Err(Error::Command(CommandError::InvalidQueue(e))) => e,
        other => panic!("expected InvalidQueue, got {other:?}"),
    };
    assert_eq!(queue_err(client.queue_subscribe("a", "")), SubjectError::Empty);
    assert_eq!(queue_err(client.queue_subscribe("a", "q 1")), SubjectError::Whitespace);
    assert_eq!(queue_err(client.queue_subscribe("a", "q\r\n")), SubjectError::Whitespace);
    assert!(matches!(
        client.queue_subscribe_with("a", "bad queue", |_| {}),
        Err(Error::Command(CommandError::InvalidQueue(_)))
    ));

    // Nothing was sent, and the connection still works.
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, 0);
    let mut sub = client.subscribe("valid.subject").unwrap();
    client.publish("valid.subject", "ok").unwrap();
    assert_eq!(text(&recv(&mut sub, "after invalid calls")), "ok");
    client.flush_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(client.statistics().connects, 1);
}

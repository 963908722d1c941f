//! Limits with the async client against a real nats-server: slow consumers, the server's max_payload,
//! invalid subjects and queue names.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{connect, drain_events, next_within, recv, take_queued, text, BoundedExt as _, WAIT};
use nats_proto::{CommandError, SubjectError};
use nats_server_harness::NatsServer;
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Error, Event, Headers, PendingLimits, Subscriber};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_drops_counts_and_reports_once_per_episode() {
    const N: usize = 1000;
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 10, bytes: 1 << 20 };
    let client = common::options(&server.url()).pending_limits(limits).connect().bounded().await.unwrap();
    let mut events = client.events();
    let mut slow = client.subscribe("sc.slow").bounded().await.unwrap();
    // Read concurrently and with room to spare: it must see every message despite its neighbour.
    let mut fast = client.subscribe("sc.fast").bounded().await.unwrap();
    fast.set_pending_limits(PendingLimits { messages: 100_000, bytes: 64 << 20 });
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            match next_within(&mut fast, WAIT).await {
                Ok(Some(m)) => got.push(text(&m)),
                other => panic!("fast subscriber stopped after {} messages: {other:?}", got.len()),
            }
        }
        (got, fast.dropped(), fast)
    });
    for i in 0..N {
        client.publish("sc.slow", format!("{i:04}")).bounded().await.unwrap();
        client.publish("sc.fast", format!("{i:04}")).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();

    let (pending_msgs, pending_bytes) = slow.pending();
    assert_eq!(pending_msgs, 10, "the queue holds exactly its limit");
    assert_eq!(pending_bytes, 40);
    assert_eq!(slow.dropped(), (N - 10) as u64);
    // Every event of the burst was emitted before the flush completed.
    let slow_events: Vec<Event> =
        drain_events(&mut events).into_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(slow_events, [Event::SlowConsumer { sid: slow.sid() }], "one event for the episode");

    let (got, fast_dropped, mut fast) = reader.within(Duration::from_secs(15)).await.expect("fast reader");
    let expected: Vec<String> = (0..N).map(|i| format!("{i:04}")).collect();
    assert_eq!(got, expected, "the other subscription received everything, in order");
    assert_eq!(fast_dropped, 0);
    assert!(fast.try_next().is_none());

    // The kept ones are the first ten.
    let kept: Vec<String> = take_queued(&mut slow).iter().map(text).collect();
    assert_eq!(kept, expected[..10]);
    // Caught up: a new burst is a new episode, with one new event.
    for i in 0..15 {
        client.publish("sc.slow", format!("{i:04}")).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    assert_eq!(slow.pending().0, 10);
    assert_eq!(slow.dropped(), (N - 10 + 5) as u64);
    let again: Vec<Event> =
        drain_events(&mut events).into_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(again, [Event::SlowConsumer { sid: slow.sid() }]);
    // Nothing lost on the connection itself.
    assert_eq!(client.statistics().in_msgs, (2 * N + 15) as u64);
}

/// A subscriber task that stops reading (it waits) while another keeps flowing: only the stuck one drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_subscriber_task_does_not_hold_up_the_others() {
    const N: usize = 2000;
    let server = NatsServer::start();
    let client = common::options(&server.url())
        .pending_limits(PendingLimits { messages: 50, bytes: 1 << 20 })
        .connect()
        .bounded()
        .await
        .unwrap();
    let mut events = client.events();
    let stuck = client.subscribe("stuck.x").bounded().await.unwrap();
    let stuck_sid = stuck.sid();
    let mut flowing = client.subscribe("flowing.x").bounded().await.unwrap();
    flowing.set_pending_limits(PendingLimits { messages: 1_000_000, bytes: 64 << 20 });
    // Holds the subscription without ever reading it until released.
    let release = Arc::new(AtomicBool::new(false));
    let release_ = release.clone();
    let stuck_task = tokio::spawn(async move {
        common::wait_until(Duration::from_secs(20), "released", || release_.load(Ordering::SeqCst)).await;
        stuck
    });
    let flowing_task = tokio::spawn(async move {
        let mut n = 0;
        while n < N {
            match next_within(&mut flowing, WAIT).await {
                Ok(Some(m)) => assert_eq!(text(&m), n.to_string(), "out of order"),
                other => panic!("the flowing subscriber stopped after {n}: {other:?}"),
            }
            n += 1;
        }
        flowing.dropped()
    });
    let publisher = connect(&server).await;
    for i in 0..N {
        publisher.publish("stuck.x", i.to_string()).bounded().await.unwrap();
        publisher.publish("flowing.x", i.to_string()).bounded().await.unwrap();
    }
    publisher.flush().bounded().await.unwrap();
    assert_eq!(flowing_task.within(Duration::from_secs(15)).await.unwrap(), 0, "the flowing one dropped messages");
    client.flush().bounded().await.unwrap();
    release.store(true, Ordering::SeqCst);
    let stuck = stuck_task.within(Duration::from_secs(20)).await.unwrap();
    assert_eq!(stuck.pending().0, 50);
    assert_eq!(stuck.dropped(), (N - 50) as u64);
    let slow: Vec<Event> =
        drain_events(&mut events).into_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(slow, [Event::SlowConsumer { sid: stuck_sid }], "exactly one event, for the stuck one");
}

#[tokio::test]
async fn slow_consumer_byte_limit() {
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 1000, bytes: 1000 };
    let client = common::options(&server.url()).pending_limits(limits).connect().bounded().await.unwrap();
    let mut sub = client.subscribe("scb.x").bounded().await.unwrap();
    for _ in 0..50 {
        client.publish("scb.x", vec![b'x'; 100]).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    assert_eq!(sub.pending(), (10, 1000));
    assert_eq!(sub.dropped(), 40);
    assert_eq!(take_queued(&mut sub).len(), 10);
}

#[tokio::test]
async fn max_payload_is_enforced_before_sending() {
    let server = NatsServer::builder().max_payload(1024).start().unwrap();
    let client = connect(&server).await;
    assert_eq!(client.max_payload(), 1024);
    let mut sub = client.subscribe("mp.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();

    let before = client.statistics();
    let result = client.publish("mp.x", vec![0u8; 2000]).bounded().await;
    assert!(
        matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { size: 2000, max_payload: 1024 }))),
        "{result:?}"
    );
    // Headers count towards the limit.
    let mut h = Headers::new();
    h.insert("Name", "value").unwrap();
    let result = client.publish_with_headers("mp.x", &h, vec![0u8; 1020]).bounded().await;
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.request("mp.x", vec![0u8; 1025]).bounded().await;
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.publish_with_reply("mp.x", "r", vec![0u8; 1025]).bounded().await;
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let result = client.request_many("mp.x", vec![0u8; 1025], WAIT, None, None).bounded().await.map(drop);
    assert!(matches!(result, Err(Error::Command(CommandError::MaxPayloadExceeded { .. }))), "{result:?}");
    let after = client.statistics();
    assert_eq!(after.out_msgs, before.out_msgs, "nothing was sent");
    assert_eq!(after.out_bytes, before.out_bytes, "nothing was queued");

    // The connection is unharmed, and exactly max_payload is allowed.
    client.publish("mp.x", vec![7u8; 1024]).bounded().await.unwrap();
    client.publish("mp.x", "small").bounded().await.unwrap();
    assert_eq!(recv(&mut sub, "max-size message").await.payload().len(), 1024);
    assert_eq!(text(&recv(&mut sub, "small message").await), "small");
    client.flush().bounded().await.unwrap();
    assert!(!client.is_closed());
    assert_eq!(client.statistics().connects, 1, "no reconnect: the server never saw the oversized message");
    // Nothing else arrived: the oversized ones were never delivered.
    assert!(sub.try_next().is_none());
}

#[tokio::test]
async fn invalid_subjects_and_queues_are_typed_errors() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let subject_err = |r: Result<(), Error>| match r {
        Err(Error::Command(CommandError::InvalidSubject(e))) => e,
        other => panic!("expected InvalidSubject, got {other:?}"),
    };
    assert_eq!(subject_err(client.publish("", "x").bounded().await), SubjectError::Empty);
    assert_eq!(subject_err(client.publish("a b", "x").bounded().await), SubjectError::Whitespace);
    assert_eq!(subject_err(client.publish("a\r\nPUB b 1", "x").bounded().await), SubjectError::Whitespace);
    assert_eq!(subject_err(client.publish("a..b", "x").bounded().await), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.publish(".a", "x").bounded().await), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.publish("a.*", "x").bounded().await), SubjectError::Wildcard);
    assert_eq!(subject_err(client.publish("a.>", "x").bounded().await), SubjectError::Wildcard);
    assert_eq!(subject_err(client.publish_with_reply("a", "bad reply", "x").bounded().await), SubjectError::Whitespace);
    assert_eq!(subject_err(client.publish_with_reply("a", "r.*", "x").bounded().await), SubjectError::Wildcard);
    assert_eq!(subject_err(client.subscribe("").bounded().await.map(drop)), SubjectError::Empty);
    assert_eq!(subject_err(client.subscribe("a.>.b").bounded().await.map(drop)), SubjectError::FullWildcardNotLast);
    assert_eq!(subject_err(client.subscribe("a..b").bounded().await.map(drop)), SubjectError::EmptyToken);
    assert_eq!(subject_err(client.subscribe("a\tb").bounded().await.map(drop)), SubjectError::Whitespace);
    assert_eq!(subject_err(client.request("a.*", "x").bounded().await.map(drop)), SubjectError::Wildcard);
    let many = client.request_many("a b", "x", WAIT, None, None).bounded().await.map(drop);
    assert_eq!(subject_err(many), SubjectError::Whitespace);

    let queue_err = |r: Result<Subscriber, Error>| match r {
        Err(Error::Command(CommandError::InvalidQueue(e))) => e,
        other => panic!("expected InvalidQueue, got {other:?}"),
    };
    assert_eq!(queue_err(client.queue_subscribe("a", "").bounded().await), SubjectError::Empty);
    assert_eq!(queue_err(client.queue_subscribe("a", "q 1").bounded().await), SubjectError::Whitespace);
    assert_eq!(queue_err(client.queue_subscribe("a", "q\r\n").bounded().await), SubjectError::Whitespace);

    // Nothing was sent, and the connection still works.
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, 0);
    let mut sub = client.subscribe("valid.subject").bounded().await.unwrap();
    client.publish("valid.subject", "ok").bounded().await.unwrap();
    assert_eq!(text(&recv(&mut sub, "after invalid calls").await), "ok");
    client.flush_timeout(Duration::from_secs(2)).bounded().await.unwrap();
    assert_eq!(client.statistics().connects, 1);
}

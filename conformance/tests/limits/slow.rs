//! Slow consumers: a subscription past its pending limits drops (and counts) messages, reports one event
//! per episode, and holds up nobody else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conformance::{TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_client::{Event, PendingLimits};
use nats_server_harness::NatsServer;

use crate::common::{connect, options, take_queued, text, wait_until, WAIT};

pub(crate) fn slow_consumer_drops_counts_and_reports_once_per_episode<C: TestClient>() {
    const N: usize = 1000;
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 10, bytes: 1 << 20 };
    let client = C::connect(options(&server.url()).pending_limits(limits)).unwrap();
    let events = client.events();
    let mut slow = client.subscribe("sc.slow", None).unwrap();
    // Read concurrently and with room to spare: it must see every message despite its neighbour.
    let mut fast = client.subscribe("sc.fast", None).unwrap();
    fast.set_pending_limits(PendingLimits { messages: 100_000, bytes: 64 << 20 });
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            match fast.next_timeout(WAIT) {
                Ok(m) => got.push(text(&m)),
                Err(e) => panic!("fast subscriber stopped after {} messages: {e:?}", got.len()),
            }
        }
        (got, fast.dropped(), fast)
    });
    for i in 0..N {
        client.publish("sc.slow", None, None, format!("{i:04}").into()).unwrap();
        client.publish("sc.fast", None, None, format!("{i:04}").into()).unwrap();
    }
    client.flush().unwrap();

    let (pending_msgs, pending_bytes) = slow.pending_messages_and_bytes();
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
        client.publish("sc.slow", None, None, format!("{i:04}").into()).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(slow.pending(), 10);
    assert_eq!(slow.dropped(), (N - 10 + 5) as u64);
    let again: Vec<Event> = events.try_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(again, [Event::SlowConsumer { sid: slow.sid() }]);
    // Nothing lost on the connection itself.
    assert_eq!(client.statistics().in_msgs, (2 * N + 15) as u64);
}

/// A subscriber (on a thread of its own) that stops reading while another keeps flowing: only the stuck one
/// drops.
pub(crate) fn a_stuck_subscriber_does_not_hold_up_the_others<C: TestClient>() {
    const N: usize = 2000;
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 50, bytes: 1 << 20 };
    let client = C::connect(options(&server.url()).pending_limits(limits)).unwrap();
    let events = client.events();
    let stuck = client.subscribe("stuck.x", None).unwrap();
    let stuck_sid = stuck.sid();
    let mut flowing = client.subscribe("flowing.x", None).unwrap();
    flowing.set_pending_limits(PendingLimits { messages: 1_000_000, bytes: 64 << 20 });
    // Holds the subscription without ever reading it until released.
    let release = Arc::new(AtomicBool::new(false));
    let release_ = release.clone();
    let stuck_thread = std::thread::spawn(move || {
        wait_until(Duration::from_secs(20), "released", || release_.load(Ordering::SeqCst));
        stuck
    });
    let flowing_thread = std::thread::spawn(move || {
        let mut n = 0;
        while n < N {
            match flowing.next_timeout(WAIT) {
                Ok(m) => assert_eq!(text(&m), n.to_string(), "out of order"),
                other => panic!("the flowing subscriber stopped after {n}: {other:?}"),
            }
            n += 1;
        }
        flowing.dropped()
    });
    let publisher: C = connect(&server);
    for i in 0..N {
        publisher.publish("stuck.x", None, None, i.to_string().into()).unwrap();
        publisher.publish("flowing.x", None, None, i.to_string().into()).unwrap();
    }
    publisher.flush().unwrap();
    assert_eq!(flowing_thread.join().unwrap(), 0, "the flowing one dropped messages");
    client.flush().unwrap();
    release.store(true, Ordering::SeqCst);
    let stuck = stuck_thread.join().unwrap();
    assert_eq!(stuck.pending(), 50);
    assert_eq!(stuck.dropped(), (N - 50) as u64);
    let slow: Vec<Event> = events.try_iter().filter(|e| matches!(e, Event::SlowConsumer { .. })).collect();
    assert_eq!(slow, [Event::SlowConsumer { sid: stuck_sid }], "exactly one event, for the stuck one");
}

pub(crate) fn slow_consumer_byte_limit<C: TestClient>() {
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 1000, bytes: 1000 };
    let client = C::connect(options(&server.url()).pending_limits(limits)).unwrap();
    let mut sub = client.subscribe("scb.x", None).unwrap();
    for _ in 0..50 {
        client.publish("scb.x", None, None, vec![b'x'; 100].into()).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(sub.pending_messages_and_bytes(), (10, 1000));
    assert_eq!(sub.dropped(), 40);
    assert_eq!(take_queued(&mut sub).len(), 10);
}

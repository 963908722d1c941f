//! Queue groups, and the ways a subscription ends: after a max, by `unsubscribe`, by being dropped.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use conformance::{TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_server_harness::NatsServer;

use crate::common::{assert_ended, connect, read_to_end, recv, take_queued, text};

pub(crate) fn queue_group_spreads_load_without_duplicates<C: TestClient>() {
    const N: usize = 300;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let publisher: C = connect(&server);
    let mut members: Vec<_> = (0..3).map(|_| client.subscribe("work.items", Some("workers")).unwrap()).collect();
    // A plain subscriber next to the group still sees everything.
    let mut observer = client.subscribe("work.items", None).unwrap();
    client.flush().unwrap();
    for i in 0..N {
        publisher.publish("work.items", None, None, i.to_string().into()).unwrap();
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

pub(crate) fn queue_group_members_on_separate_threads_share_the_work<C: TestClient>() {
    const N: usize = 200;
    let server = NatsServer::start();
    let client: C = connect(&server);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut member = client.subscribe("tasks.x", Some("pool")).unwrap();
            // Each member reads on a thread of its own until the subscription ends.
            std::thread::spawn(move || {
                let mut got = vec![];
                while let Some(msg) = member.next_message() {
                    got.push(text(&msg).parse::<usize>().unwrap());
                }
                got
            })
        })
        .collect();
    client.flush().unwrap();
    for i in 0..N {
        client.publish("tasks.x", None, None, i.to_string().into()).unwrap();
    }
    // The drain delivers what is in flight, then ends every member's subscription.
    client.drain().unwrap();
    let mut all = vec![];
    for (i, w) in workers.into_iter().enumerate() {
        let got = w.join().expect("a member thread panicked");
        assert!(!got.is_empty(), "member {i} got nothing of {N}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "member {i} saw its share out of order");
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>(), "each message went to exactly one member");
}

pub(crate) fn unsubscribe_after_delivers_exactly_n_then_ends<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("max.n", None).unwrap();
    sub.unsubscribe_after(5).unwrap();
    for i in 0..10 {
        client.publish("max.n", None, None, i.to_string().into()).unwrap();
    }
    client.flush().unwrap();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(sub.next_message().is_none(), "the subscription stays ended after the max");
    // Unsubscribing an ended subscription is harmless.
    sub.unsubscribe().unwrap();
}

pub(crate) fn unsubscribe_after_counts_messages_already_delivered<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("max.later", None).unwrap();
    for i in 0..3 {
        client.publish("max.later", None, None, i.to_string().into()).unwrap();
    }
    client.flush().unwrap();
    // Three delivered, the max is five in total: two more, then the end.
    sub.unsubscribe_after(5).unwrap();
    for i in 3..10 {
        client.publish("max.later", None, None, i.to_string().into()).unwrap();
    }
    client.flush().unwrap();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
}

pub(crate) fn unsubscribe_after_a_max_already_reached_ends_at_once<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("max.reached", None).unwrap();
    for i in 0..3 {
        client.publish("max.reached", None, None, i.to_string().into()).unwrap();
    }
    client.flush().unwrap();
    // Three delivered already: a max of three (or less) ends the subscription now.
    sub.unsubscribe_after(3).unwrap();
    let started = Instant::now();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2"]);
    assert!(started.elapsed() < Duration::from_secs(1), "the end came only after {:?}", started.elapsed());
}

pub(crate) fn unsubscribe_stops_delivery_but_keeps_received_messages<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("unsub.x", None).unwrap();
    let mut other = client.subscribe("unsub.x", None).unwrap();
    client.publish("unsub.x", None, None, "before-1".into()).unwrap();
    client.publish("unsub.x", None, None, "before-2".into()).unwrap();
    client.flush().unwrap();
    sub.unsubscribe().unwrap();
    client.publish("unsub.x", None, None, "after".into()).unwrap();
    client.flush().unwrap();
    // Already received: still readable.
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe")), "before-1");
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe")), "before-2");
    assert_ended(&mut sub);
    let others: Vec<String> = take_queued(&mut other).iter().map(text).collect();
    assert_eq!(others, ["before-1", "before-2", "after"]);
}

pub(crate) fn dropping_a_subscriber_unsubscribes_on_the_server<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let dropped = client.subscribe("drop.x", None).unwrap();
    let mut witness = client.subscribe("drop.>", None).unwrap();
    client.flush().unwrap();

    let before = client.statistics().in_msgs;
    client.publish("drop.x", None, None, "both".into()).unwrap();
    client.flush().unwrap();
    // Two subscriptions match: the server sends the message twice.
    assert_eq!(client.statistics().in_msgs - before, 2);
    assert_eq!(text(&recv(&mut witness, "first")), "both");

    drop(dropped);
    let before = client.statistics().in_msgs;
    client.publish("drop.x", None, None, "one".into()).unwrap();
    client.flush().unwrap();
    // Only the witness's copy came: the dropped subscription is gone on the server too.
    assert_eq!(client.statistics().in_msgs - before, 1, "the server still delivers to a dropped subscriber");
    assert_eq!(text(&recv(&mut witness, "second")), "one");
    assert!(witness.try_next().is_none());
}

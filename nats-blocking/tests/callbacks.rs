//! Callback subscriptions against a real nats-server: a max (from the start, and set later), queue groups,
//! dropping, and a handler that panics.
//!
//! Not in the conformance suite: its test trait (`conformance::TestClient`) has no callback subscriptions, so
//! each client checks its own (`nats-tokio/tests/callbacks.rs` has the same cases for the async client).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use common::{connect, recv, text, WAIT};
use nats_blocking::CallbackSubscription;
use nats_server_harness::NatsServer;

/// `cb.join()`, failing the test if the handler's thread has not ended within [`WAIT`].
#[track_caller]
fn join_within(cb: CallbackSubscription) -> std::thread::Result<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cb.join());
    });
    rx.recv_timeout(WAIT).expect("the handler's thread did not end within WAIT")
}

/// Everything the handlers sent until all of them ended (every sender dropped), failing after [`WAIT`].
#[track_caller]
fn collect_until_handlers_end<T>(rx: &mpsc::Receiver<T>) -> Vec<T> {
    let mut got = vec![];
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(v) => got.push(v),
            Err(mpsc::RecvTimeoutError::Disconnected) => return got,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("a handler still runs after {} messages", got.len()),
        }
    }
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn subscribe_with_max_handles_exactly_n_then_its_thread_ends() {
    const N: u64 = 5;
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel();
    let alive = Arc::new(());
    let held = alive.clone();
    let cb = client
        .subscribe_with_max("max.cb", N, move |msg| {
            let _held = &held;
            tx.send(text(&msg)).unwrap();
        })
        .unwrap();
    client.flush().unwrap();
    for i in 0..2 * N {
        client.publish("max.cb", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    join_within(cb).expect("the handler did not panic");
    // The thread is gone, and with it the closure (its sender and its clone of the Arc).
    assert_eq!(Arc::strong_count(&alive), 1);
    assert_eq!(collect_until_handlers_end(&rx), ["0", "1", "2", "3", "4"]);
    // The server was told the max: it sent exactly N, and sends nothing more.
    assert_eq!(client.statistics().in_msgs, N);
    client.publish("max.cb", "late").unwrap();
    client.flush().unwrap();
    assert_eq!(client.statistics().in_msgs, N);
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn unsubscribe_after_counts_the_messages_already_handled() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel();
    let mut cb = client.subscribe_with("max.later", move |msg| tx.send(text(&msg)).unwrap()).unwrap();
    for i in 0..3 {
        client.publish("max.later", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    let first: Vec<String> = (0..3).map(|_| rx.recv_timeout(WAIT).expect("handled")).collect();
    assert_eq!(first, ["0", "1", "2"]);
    // Three handled, the max is five in total: two more, then the end.
    cb.unsubscribe_after(5).unwrap();
    for i in 3..10 {
        client.publish("max.later", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    join_within(cb).expect("the handler did not panic");
    assert_eq!(collect_until_handlers_end(&rx), ["3", "4"]);
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn unsubscribe_after_below_what_was_received_handles_only_the_max() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (gate_tx, gate) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    let mut cb = client
        .subscribe_with("max.queued", move |msg| {
            // Held on the first message until the max is set: the others wait in the queue.
            let _ = gate.recv();
            tx.send(text(&msg)).unwrap();
        })
        .unwrap();
    for i in 0..5 {
        client.publish("max.queued", i.to_string()).unwrap();
    }
    // Our own PONG comes after the five messages: all are received, the handler holds the first.
    client.flush().unwrap();
    cb.unsubscribe_after(2).unwrap();
    drop(gate_tx);
    join_within(cb).expect("the handler did not panic");
    assert_eq!(collect_until_handlers_end(&rx), ["0", "1"], "the handler got more than its max");
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn subscribe_with_max_is_exact_while_a_publisher_floods_the_subject() {
    const MAX: u64 = 3;
    let server = NatsServer::start();
    let client = connect(&server);
    let publisher = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = std::thread::spawn({
        let stop = stop.clone();
        move || {
            while !stop.load(Ordering::Relaxed) {
                publisher.publish("flood.x", "m").unwrap();
            }
            publisher.flush().unwrap();
        }
    });
    for round in 0..20 {
        let (tx, rx) = mpsc::channel();
        let cb = client.subscribe_with_max("flood.x", MAX, move |msg| tx.send(msg).unwrap()).unwrap();
        join_within(cb).expect("the handler did not panic");
        assert_eq!(collect_until_handlers_end(&rx).len() as u64, MAX, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn queue_group_callback_subscriptions_share_the_messages() {
    const N: usize = 200;
    let server = NatsServer::start();
    let client = connect(&server);
    let publisher = connect(&server);
    let (tx, rx) = mpsc::channel();
    let members: Vec<CallbackSubscription> = (0..3)
        .map(|member| {
            let tx = tx.clone();
            client.queue_subscribe_with("work.cb", "workers", move |msg| tx.send((member, text(&msg))).unwrap())
        })
        .collect::<Result<_, _>>()
        .unwrap();
    drop(tx);
    client.flush().unwrap();
    for i in 0..N {
        publisher.publish("work.cb", i.to_string()).unwrap();
    }
    publisher.flush().unwrap();
    // The publisher's flush orders its messages before our PONG: all are received.
    client.flush().unwrap();
    for member in members {
        member.unsubscribe().unwrap();
    }
    let got = collect_until_handlers_end(&rx);
    let payloads: HashSet<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(got.len(), N, "each message handled once, by one member");
    assert_eq!(payloads.len(), N);
    for member in 0..3 {
        assert!(got.iter().any(|(m, _)| *m == member), "member {member} handled nothing of {N}");
    }
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn queue_members_with_a_max_each_handle_exactly_their_max() {
    const MAX: u64 = 10;
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel();
    let members: Vec<CallbackSubscription> = (0..2)
        .map(|member| {
            let tx = tx.clone();
            client.queue_subscribe_with_max("work.max", "workers", MAX, move |_| tx.send(member).unwrap())
        })
        .collect::<Result<_, _>>()
        .unwrap();
    drop(tx);
    client.flush().unwrap();
    // More than both maxes: the server hands the group's messages to the members still open.
    for i in 0..3 * MAX {
        client.publish("work.max", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    for member in members {
        join_within(member).expect("the handler did not panic");
    }
    let got = collect_until_handlers_end(&rx);
    for member in 0..2 {
        assert_eq!(got.iter().filter(|&&m| m == member).count() as u64, MAX, "member {member}");
    }
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn dropping_a_callback_subscription_unsubscribes_and_its_thread_ends() {
    let server = NatsServer::start();
    let client = connect(&server);
    let (tx, rx) = mpsc::channel();
    let cb = client.subscribe_with("drop.cb", move |msg| tx.send(text(&msg)).unwrap()).unwrap();
    let mut witness = client.subscribe("drop.>").unwrap();
    client.flush().unwrap();
    client.publish("drop.cb", "both").unwrap();
    client.flush().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "both");
    assert_eq!(text(&recv(&mut witness, "first")), "both");

    drop(cb);
    let before = client.statistics().in_msgs;
    client.publish("drop.cb", "one").unwrap();
    client.flush().unwrap();
    // Only the witness's copy came: the dropped subscription is gone on the server too.
    assert_eq!(client.statistics().in_msgs - before, 1, "the server still delivers to a dropped subscription");
    assert_eq!(text(&recv(&mut witness, "second")), "one");
    // The handler's thread ended: its sender is gone, and it handled nothing more.
    assert!(collect_until_handlers_end(&rx).is_empty());
}

// Not in the suite: the test trait has no callback subscriptions.
#[test]
fn a_panicking_handler_ends_its_own_subscription_only() {
    let server = NatsServer::start();
    let client = connect(&server);
    let panicky = client
        .subscribe_with("panic.cb", |msg| {
            if msg.payload() == b"boom" {
                panic!("handler panicked on purpose");
            }
        })
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let _calm = client.subscribe_with("calm.cb", move |msg| tx.send(text(&msg)).unwrap()).unwrap();
    client.flush().unwrap();
    client.publish("panic.cb", "boom").unwrap();
    let panic = join_within(panicky).expect_err("join returns the handler's panic");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"handler panicked on purpose"));

    // The panicking subscription is gone on the server: nothing more is delivered to it.
    client.flush().unwrap();
    let before = client.statistics().in_msgs;
    client.publish("panic.cb", "again").unwrap();
    client.flush().unwrap();
    assert_eq!(client.statistics().in_msgs, before);
    // The connection and the other subscription go on.
    client.publish("calm.cb", "still here").unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "still here");
    let mut plain = client.subscribe("plain.x").unwrap();
    client.publish("plain.x", "too").unwrap();
    assert_eq!(text(&recv(&mut plain, "after the panic")), "too");
}

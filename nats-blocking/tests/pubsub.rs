//! Publish/subscribe against a real nats-server: the case that is this client's alone, callback
//! subscriptions (`subscribe_with`) and their handler threads.
//!
//! Everything both clients do alike (subjects and wildcards, queue groups, unsubscribing, headers, replies,
//! the receive calls, ordering under load) is in the conformance suite (`conformance/tests/pubsub/`), written
//! once and run against both clients.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{connect, text, WAIT};
use nats_server_harness::NatsServer;

// Not in the suite: callback subscriptions and the names of their threads are this client's alone.
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

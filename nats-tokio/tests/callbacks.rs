//! Callback subscriptions of the async client against a real nats-server: a max (from the start, and set
//! later), queue groups, dropping, a handler that panics, async handlers, and the runtime the tasks run on
//! (tokio's the client connected on, or smol's).
//!
//! Not in the conformance suite: its test trait (`conformance::TestClient`) has no callback subscriptions, so
//! each client checks its own (`nats-blocking/tests/callbacks.rs` has the same cases for the blocking client).

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{connect, recv, text, BoundedExt as _, WAIT};
use nats_server_harness::NatsServer;
use nats_tokio::{CallbackSubscription, ConnectOptions};
use smol::channel::{unbounded, Receiver};

/// Everything the handlers sent until all of them ended (every sender dropped), failing after [`WAIT`] without
/// one. On any runtime: the wait is bounded by smol's timer.
async fn collect_until_handlers_end<T>(rx: &Receiver<T>) -> Vec<T> {
    let mut got = vec![];
    loop {
        match smol_bounded(rx.recv()).await {
            Ok(v) => got.push(v),
            Err(_closed) => return got,
        }
    }
}

/// `future`, failing the test if it does not complete within [`WAIT`]; needs no tokio runtime.
async fn smol_bounded<T>(future: impl Future<Output = T>) -> T {
    let limit = async {
        smol::Timer::after(WAIT).await;
        panic!("not done within {WAIT:?}");
    };
    smol::future::or(future, limit).await
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_max_handles_exactly_n_then_its_task_ends() {
    const N: u64 = 5;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let (tx, rx) = unbounded();
    let alive = Arc::new(());
    let held = alive.clone();
    let cb = client
        .subscribe_with_max("max.cb", N, move |msg| {
            let _held = &held;
            tx.try_send(text(&msg)).unwrap();
        })
        .bounded()
        .await
        .unwrap();
    client.flush().bounded().await.unwrap();
    for i in 0..2 * N {
        client.publish("max.cb", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    cb.join().bounded().await.expect("the handler did not panic");
    // The task is over, and its closure (the sender and its clone of the Arc) dropped before `join` returned.
    assert_eq!(Arc::strong_count(&alive), 1);
    assert_eq!(collect_until_handlers_end(&rx).await, ["0", "1", "2", "3", "4"]);
    // The server was told the max: it sent exactly N, and sends nothing more.
    assert_eq!(client.statistics().in_msgs, N);
    client.publish("max.cb", "late").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    assert_eq!(client.statistics().in_msgs, N);
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test]
async fn unsubscribe_after_counts_the_messages_already_handled() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let (tx, rx) = unbounded();
    let mut cb =
        client.subscribe_with("max.later", move |msg| tx.try_send(text(&msg)).unwrap()).bounded().await.unwrap();
    for i in 0..3 {
        client.publish("max.later", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    let mut first = vec![];
    for _ in 0..3 {
        first.push(rx.recv().bounded().await.expect("handled"));
    }
    assert_eq!(first, ["0", "1", "2"]);
    // Three handled, the max is five in total: two more, then the end.
    cb.unsubscribe_after(5).bounded().await.unwrap();
    for i in 3..10 {
        client.publish("max.later", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    cb.join().bounded().await.expect("the handler did not panic");
    assert_eq!(collect_until_handlers_end(&rx).await, ["3", "4"]);
}

// Not in the suite: the test trait has no callback subscriptions (nor async handlers).
#[tokio::test]
async fn unsubscribe_after_below_what_was_received_handles_only_the_max() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let (gate_tx, gate) = unbounded::<()>();
    let (tx, rx) = unbounded();
    let mut cb = client
        .subscribe_with_async("max.queued", move |msg| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                // Held on the first message until the max is set: the others wait in the queue.
                let _ = gate.recv().await;
                tx.send(text(&msg)).await.unwrap();
            }
        })
        .bounded()
        .await
        .unwrap();
    for i in 0..5 {
        client.publish("max.queued", i.to_string()).bounded().await.unwrap();
    }
    // Our own PONG comes after the five messages: all are received, the handler holds the first.
    client.flush().bounded().await.unwrap();
    cb.unsubscribe_after(2).bounded().await.unwrap();
    drop(gate_tx);
    cb.join().bounded().await.expect("the handler did not panic");
    assert_eq!(collect_until_handlers_end(&rx).await, ["0", "1"], "the handler got more than its max");
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_max_is_exact_while_a_publisher_floods_the_subject() {
    const MAX: u64 = 3;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    publisher.publish("flood.x", "m").await.unwrap();
                }
                // A publish that does not wait for room never yields: let the other tasks run.
                tokio::task::yield_now().await;
            }
            publisher.flush().await.unwrap();
        }
    });
    for round in 0..20 {
        let (tx, rx) = unbounded();
        let cb =
            client.subscribe_with_max("flood.x", MAX, move |msg| tx.try_send(msg).unwrap()).bounded().await.unwrap();
        cb.join().bounded().await.expect("the handler did not panic");
        assert_eq!(collect_until_handlers_end(&rx).await.len() as u64, MAX, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);
    flood.bounded().await.unwrap();
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test]
async fn queue_group_callback_subscriptions_share_the_messages() {
    const N: usize = 200;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let publisher = connect(&server).await;
    let (tx, rx) = unbounded();
    let mut members: Vec<CallbackSubscription> = vec![];
    for member in 0..2 {
        let tx = tx.clone();
        let cb = client.queue_subscribe_with("work.cb", "workers", move |msg| {
            tx.try_send((member, text(&msg))).unwrap();
        });
        members.push(cb.bounded().await.unwrap());
    }
    // A third member with an async handler, in the same group.
    let async_tx = tx.clone();
    let cb = client.queue_subscribe_with_async("work.cb", "workers", move |msg| {
        let tx = async_tx.clone();
        async move { tx.send((2, text(&msg))).await.unwrap() }
    });
    members.push(cb.bounded().await.unwrap());
    drop(tx);
    client.flush().bounded().await.unwrap();
    for i in 0..N {
        publisher.publish("work.cb", i.to_string()).bounded().await.unwrap();
    }
    publisher.flush().bounded().await.unwrap();
    // The publisher's flush orders its messages before our PONG: all are received.
    client.flush().bounded().await.unwrap();
    for member in members {
        member.unsubscribe().bounded().await.unwrap();
    }
    let got = collect_until_handlers_end(&rx).await;
    let payloads: HashSet<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(got.len(), N, "each message handled once, by one member");
    assert_eq!(payloads.len(), N);
    for member in 0..3 {
        assert!(got.iter().any(|(m, _)| *m == member), "member {member} handled nothing of {N}");
    }
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test]
async fn queue_members_with_a_max_each_handle_exactly_their_max() {
    const MAX: u64 = 10;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let (tx, rx) = unbounded();
    let plain_tx = tx.clone();
    let plain = client
        .queue_subscribe_with_max("work.max", "workers", MAX, move |_| plain_tx.try_send(0).unwrap())
        .bounded()
        .await
        .unwrap();
    let with_async = client
        .queue_subscribe_with_max_async("work.max", "workers", MAX, move |_| {
            let tx = tx.clone();
            async move { tx.send(1).await.unwrap() }
        })
        .bounded()
        .await
        .unwrap();
    client.flush().bounded().await.unwrap();
    // More than both maxes: the server hands the group's messages to the members still open.
    for i in 0..3 * MAX {
        client.publish("work.max", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    plain.join().bounded().await.expect("the handler did not panic");
    with_async.join().bounded().await.expect("the handler did not panic");
    let got = collect_until_handlers_end(&rx).await;
    for member in 0..2 {
        assert_eq!(got.iter().filter(|&&m| m == member).count() as u64, MAX, "member {member}");
    }
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test]
async fn dropping_a_callback_subscription_unsubscribes_and_its_task_ends() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let (tx, rx) = unbounded();
    let cb = client.subscribe_with("drop.cb", move |msg| tx.try_send(text(&msg)).unwrap()).bounded().await.unwrap();
    let mut witness = client.subscribe("drop.>").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    client.publish("drop.cb", "both").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    assert_eq!(rx.recv().bounded().await.unwrap(), "both");
    assert_eq!(text(&recv(&mut witness, "first").await), "both");

    drop(cb);
    let before = client.statistics().in_msgs;
    client.publish("drop.cb", "one").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    // Only the witness's copy came: the dropped subscription is gone on the server too.
    assert_eq!(client.statistics().in_msgs - before, 1, "the server still delivers to a dropped subscription");
    assert_eq!(text(&recv(&mut witness, "second").await), "one");
    // The handler's task ended: its sender is gone, and it handled nothing more.
    assert!(collect_until_handlers_end(&rx).await.is_empty());
}

// Not in the suite: the test trait has no callback subscriptions.
#[tokio::test]
async fn a_panicking_handler_ends_its_own_subscription_only() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let panicky = client
        .subscribe_with("panic.cb", |msg| {
            if msg.payload() == b"boom" {
                panic!("handler panicked on purpose");
            }
        })
        .bounded()
        .await
        .unwrap();
    let panicky_async = client
        .subscribe_with_async("panic.async", |msg| async move {
            if msg.payload() == b"boom" {
                panic!("async handler panicked on purpose");
            }
        })
        .bounded()
        .await
        .unwrap();
    let (tx, rx) = unbounded();
    let _calm = client.subscribe_with("calm.cb", move |msg| tx.try_send(text(&msg)).unwrap()).bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    client.publish("panic.cb", "boom").bounded().await.unwrap();
    client.publish("panic.async", "boom").bounded().await.unwrap();
    let panic = panicky.join().bounded().await.expect_err("join returns the handler's panic");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"handler panicked on purpose"));
    let panic = panicky_async.join().bounded().await.expect_err("join returns the future's panic");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"async handler panicked on purpose"));

    // Both subscriptions are gone on the server: nothing more is delivered to them.
    client.flush().bounded().await.unwrap();
    let before = client.statistics().in_msgs;
    client.publish("panic.cb", "again").bounded().await.unwrap();
    client.publish("panic.async", "again").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    assert_eq!(client.statistics().in_msgs, before);
    // The driver task and the other subscription go on.
    client.publish("calm.cb", "still here").bounded().await.unwrap();
    assert_eq!(rx.recv().bounded().await.unwrap(), "still here");
    let mut plain = client.subscribe("plain.x").bounded().await.unwrap();
    client.publish("plain.x", "too").bounded().await.unwrap();
    assert_eq!(text(&recv(&mut plain, "after the panic").await), "too");
}

// Not in the suite: the test trait has no async handlers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_handlers_run_one_at_a_time_in_order() {
    const N: usize = 100;
    let server = NatsServer::start();
    let client = connect(&server).await;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = unbounded();
    let cb = client
        .subscribe_with_max_async("order.cb", N as u64, move |msg| {
            let (in_flight, tx) = (in_flight.clone(), tx.clone());
            async move {
                let overlapping = in_flight.fetch_add(1, Ordering::SeqCst);
                // Suspended halfway: a next message handled meanwhile would overlap this one.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
                tx.send((overlapping, text(&msg))).await.unwrap();
            }
        })
        .bounded()
        .await
        .unwrap();
    for i in 0..N {
        client.publish("order.cb", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    cb.join().bounded().await.expect("the handler did not panic");
    let got = collect_until_handlers_end(&rx).await;
    assert!(got.iter().all(|(overlapping, _)| *overlapping == 0), "two handlers ran at once");
    let order: Vec<String> = got.into_iter().map(|(_, p)| p).collect();
    assert_eq!(order, (0..N).map(|i| i.to_string()).collect::<Vec<_>>());
}

// Not in the suite: which runtime the handler's task runs on is this client's alone.
#[test]
fn handlers_run_on_the_runtime_the_client_connected_on_even_when_subscribed_from_outside_it() {
    let server = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client-runtime")
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(connect(&server));
    // A thread with no runtime of its own, awaiting with smol's `block_on`: `tokio::spawn` would panic here.
    let (tx, rx) = unbounded();
    let subscriber = client.clone();
    let cb = std::thread::spawn(move || {
        assert!(tokio::runtime::Handle::try_current().is_err(), "no tokio runtime on this thread");
        smol::block_on(subscriber.subscribe_with_max("where.cb", 1, move |_| {
            let inside = tokio::runtime::Handle::try_current().is_ok();
            let thread = std::thread::current().name().map(str::to_owned);
            tx.try_send((inside, thread)).unwrap();
        }))
    })
    .join()
    .expect("subscribing from outside the runtime does not panic")
    .unwrap();
    runtime.block_on(async {
        client.flush().bounded().await.unwrap();
        client.publish("where.cb", "x").bounded().await.unwrap();
        cb.join().bounded().await.expect("the handler did not panic");
        let (inside, thread) = rx.recv().bounded().await.unwrap();
        assert!(inside, "the handler ran outside the client's tokio runtime");
        assert_eq!(thread.as_deref(), Some("client-runtime"));
    });
}

// Not in the suite: the smol runtime is this client's alone (the suite drives it on tokio).
#[test]
fn callback_subscriptions_run_under_smol_without_tokio() {
    let server = NatsServer::start();
    smol::block_on(async {
        assert!(tokio::runtime::Handle::try_current().is_err(), "no tokio runtime in this test");
        let options = ConnectOptions::new().server(&server.url()).flush_timeout(Duration::from_secs(5));
        let client = smol_bounded(nats_tokio::connect_smol(options)).await.expect("connect");
        let (tx, rx) = unbounded();
        let plain_tx = tx.clone();
        let plain = client
            .subscribe_with_max("smol.cb", 3, move |msg| {
                assert!(tokio::runtime::Handle::try_current().is_err(), "a tokio call under smol");
                plain_tx.try_send(format!("plain {}", text(&msg))).unwrap();
            })
            .await
            .unwrap();
        let mut with_async = client
            .subscribe_with_async("smol.cb", move |msg| {
                let tx = tx.clone();
                async move { tx.send(format!("async {}", text(&msg))).await.unwrap() }
            })
            .await
            .unwrap();
        let panicky = client.subscribe_with("smol.panic", |_| panic!("handler panicked on purpose")).await.unwrap();
        smol_bounded(client.flush()).await.unwrap();
        with_async.unsubscribe_after(4).await.unwrap();
        for i in 0..6 {
            client.publish("smol.cb", i.to_string()).await.unwrap();
        }
        client.publish("smol.panic", "boom").await.unwrap();
        smol_bounded(client.flush()).await.unwrap();
        smol_bounded(plain.join()).await.expect("the handler did not panic");
        smol_bounded(with_async.join()).await.expect("the handler did not panic");
        assert!(smol_bounded(panicky.join()).await.is_err(), "join returns the handler's panic");

        let mut got = collect_until_handlers_end(&rx).await;
        got.sort();
        let mut want: Vec<String> = (0..3).map(|i| format!("plain {i}")).collect();
        want.extend((0..4).map(|i| format!("async {i}")));
        want.sort();
        assert_eq!(got, want);
        // The driver still runs after the panic.
        smol_bounded(client.flush()).await.unwrap();
        smol_bounded(client.drain()).await.unwrap();
    });
}

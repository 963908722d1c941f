//! Publish/subscribe with the async client against a real nats-server: the cases that are this client's
//! alone, the `Stream` impl and `Subscriber::end_reason`.
//!
//! Everything both clients do alike (subjects and wildcards, queue groups, unsubscribing, headers, replies,
//! the receive calls, ordering under load) is in the conformance suite (`conformance/tests/pubsub/`), written
//! once and run against both clients.

mod common;
mod fake;

use std::future::poll_fn;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use common::{assert_ended, connect, read_to_end, recv, text, BoundedExt as _};
use fake::{server_info, FakeServer, Finish as _, Recv, STEP};
use futures_core::Stream;
use nats_proto::ClientOp;
use nats_server_harness::NatsServer;
use nats_tokio::{ConnectOptionsExt as _, Error};

// Not in the suite: `Subscriber::end_reason` is this client's alone (the suite checks that both subscriptions
// end, with `unsubscribe_after` and with `unsubscribe`).
#[tokio::test]
async fn an_ended_subscription_has_an_end_reason() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    // Ended by its max.
    let mut sub = client.subscribe("max.n").bounded().await.unwrap();
    sub.unsubscribe_after(5).bounded().await.unwrap();
    for i in 0..10 {
        client.publish("max.n", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    let got: Vec<String> = read_to_end(&mut sub).await.iter().map(text).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert!(sub.next().bounded().await.is_none(), "the stream stays ended after the max");
    assert!(sub.end_reason().is_some());
    // Ended by `unsubscribe`, with messages still queued.
    let mut sub = client.subscribe("unsub.x").bounded().await.unwrap();
    client.publish("unsub.x", "before").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    sub.unsubscribe().bounded().await.unwrap();
    assert_eq!(text(&recv(&mut sub, "queued before unsubscribe").await), "before");
    assert_ended(&mut sub).await;
    assert!(sub.end_reason().is_some(), "an ended subscription has an end reason");
    assert!(!matches!(sub.end_reason(), Some(Error::Permission(_))));
}

// Not in the suite: the `Stream` impl is this client's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_is_a_stream_woken_by_a_publish_from_another_task() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("stream.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    // Nothing yet: a poll through the `Stream` impl is pending.
    let pending = poll_fn(|cx| std::task::Poll::Ready(Pin::new(&mut sub).poll_next(cx).is_pending())).await;
    assert!(pending, "an empty subscription polled ready");

    let publisher = client.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher.publish("stream.x", "a").await.unwrap();
        publisher.publish("stream.x", "b").await.unwrap();
    });
    // The same subscriber read through `Stream::poll_next`, woken by the other task's publish.
    let a = poll_fn(|cx| Pin::new(&mut sub).poll_next(cx)).bounded().await.expect("woken by a publish");
    assert_eq!(text(&a), "a");
    let b = poll_fn(|cx| Pin::new(&mut sub).poll_next(cx)).bounded().await.expect("second");
    assert_eq!(text(&b), "b");
    task.bounded().await.unwrap();
    sub.unsubscribe().bounded().await.unwrap();
    assert!(poll_fn(|cx| Pin::new(&mut sub).poll_next(cx)).bounded().await.is_none(), "ends after unsubscribe");
}

// Not in the suite: cancelling a publish by dropping its future is this client's alone. A publish is accepted
// (encoded) at once; one that then waits (for room behind a write in progress, the socket being full) and is
// dropped unfinished must lose nothing and cut nothing. The server here stalls, so the socket fills again and
// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_dropped_while_they_wait_for_room_lose_nothing() {
    const N: usize = 2_000;
    const SIZE: usize = 16 * 1024;
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(1 << 20));
        let mut next = 0;
        while next < N {
            match c.recv(STEP) {
                Recv::Op(ClientOp::Pub(p)) => {
                    assert_eq!(p.payload.len(), SIZE, "message {next} arrived whole");
                    let seq: usize = std::str::from_utf8(&p.payload[..8]).unwrap().trim().parse().unwrap();
                    assert_eq!(seq, next, "in order, none lost");
                    assert!(p.payload[8..].iter().all(|&b| b == b'x'), "message {next} intact");
                    next += 1;
                    if next % 128 == 0 {
                        // A reader that stalls every 2 MiB for longer than the client takes to fill the
                        // socket's buffers (a few MiB on loopback): the socket fills again and again, however
                        // fast this reader is otherwise.
                        std::thread::sleep(Duration::from_millis(40));
                    }
                }
                Recv::Op(_) => {}
                other => panic!("after {next} messages: {other:?}"),
            }
        }
        c.until_eof(STEP);
    });
    let client = nats_tokio::ConnectOptions::new().server(server.url()).connect().bounded().await.unwrap();
    let (mut dropped, mut waited) = (0, 0);
    for i in 0..N {
        let mut payload = format!("{i:8}").into_bytes();
        payload.resize(SIZE, b'x');
        let mut publish = Box::pin(client.publish("big.x", payload));
        // Polled once: accepted (encoded) at once. When it must wait (for the socket, or for room), it is
        // dropped unfinished every other time, and awaited otherwise.
        match poll_fn(|cx| std::task::Poll::Ready(publish.as_mut().poll(cx))).await {
            std::task::Poll::Ready(result) => result.unwrap(),
            std::task::Poll::Pending if i % 2 == 0 => {
                dropped += 1;
                drop(publish);
            }
            std::task::Poll::Pending => {
                waited += 1;
                publish.bounded().await.unwrap();
            }
        }
    }
    client.flush().bounded().await.unwrap();
    assert!(dropped > 0 && waited > 0, "the socket never filled: the case did not test what it is for");
    drop(client);
    server.finish().await;
}

// Not in the suite: what a close does with bytes that cannot leave is each driver's own. The server here stops
// reading, so the socket fills and more than the back-pressure bound waits in the client; the close returns at
// once, and the driver gives the rest up after its bound (10 s) instead of holding its task and socket for ever.
// The server then reads what the kernel had taken, and sees the connection end before the last publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_gives_up_on_a_server_that_stopped_reading() {
    const SIZE: usize = 64 * 1024;
    let (count_tx, count_rx) = std::sync::mpsc::channel::<usize>();
    let server = FakeServer::start(move |s| {
        let mut c = s.accept();
        c.greet(&server_info(1 << 20));
        let published = count_rx.recv_timeout(STEP * 2).expect("the client says how many it published");
        // Well past the client's bound before reading anything.
        std::thread::sleep(Duration::from_secs(12));
        let received = c.until_eof(STEP).iter().filter(|op| matches!(op, ClientOp::Pub(_))).count();
        assert!(received > 0, "what the kernel had taken still arrives");
        assert!(received < published, "all {published} publishes arrived: the close waited for the reader");
    });
    let client = nats_tokio::ConnectOptions::new().server(server.url()).connect().bounded().await.unwrap();
    let mut published = 0;
    loop {
        // Each is accepted at once until the client holds its back-pressure bound. One that then waits for room
        // in vain shows that the socket is full (one that gets it, that the socket was still taking bytes).
        let mut publish = Box::pin(client.publish("big.x", vec![b'x'; SIZE]));
        published += 1;
        match poll_fn(|cx| std::task::Poll::Ready(publish.as_mut().poll(cx))).await {
            std::task::Poll::Ready(result) => result.unwrap(),
            std::task::Poll::Pending => {
                if tokio::time::timeout(Duration::from_millis(300), publish).await.is_err() {
                    break;
                }
            }
        }
    }
    count_tx.send(published).unwrap();
    tokio::time::timeout(Duration::from_secs(2), client.close()).await.expect("a close does not wait for the socket");
    server.finish().await;
}

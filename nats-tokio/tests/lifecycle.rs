//! The life of an async client against real nats-servers: the cases that are this client's alone, the
//! `events()` stream and the shape of the client's types.
//!
//! Everything both clients do alike (connecting and failing to, server info and statistics, both server
//! versions, the event callback, drain, close, dropping the last handle) is in the conformance suite
//! (`conformance/tests/lifecycle/`), written once and run against both clients.

mod common;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use common::{free_port, wait_event, BoundedExt as _, WAIT};
use futures_core::Stream;
use nats_server_harness::NatsServer;
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Client, Event};

// Not in the suite: `Send`/`Sync`/`Clone` of this client's own types is a compile-time property of its API.
#[test]
fn the_client_is_a_cheap_shareable_handle() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
    fn assert_send<T: Send + 'static>() {}
    assert_send::<nats_tokio::Subscriber>();
    assert_send::<nats_tokio::Responses>();
    assert_send::<nats_tokio::Events>();
}

// Not in the suite: `Events` as a `Stream` is this client's alone.
/// `events()` is a `Stream` of everything that happens to the connection: Connected, Disconnected,
/// Reconnected, Closed, and then it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_stream_yields_connected_disconnected_reconnected_and_closed() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    // No server yet: `connect` returns at once, so the stream is there before the first connection.
    let client = common::options(&url).retry_on_initial_connect().connect().bounded().await.unwrap();
    let mut events = client.events();
    let mut server = NatsServer::builder().port(port).start().expect("server on the chosen port");

    let (connected, _) =
        wait_event(&mut events, Duration::from_secs(15), "Connected", |e| matches!(e, Event::Connected(_))).await;
    assert_eq!(connected, Event::Connected(url.clone()));

    server.stop();
    // Read through the `Stream` impl this time.
    let next = poll_fn(|cx| Pin::new(&mut events).poll_next(cx)).bounded().await;
    assert!(matches!(next, Some(Event::Disconnected(_))), "{next:?}");

    server.restart();
    let (reconnected, _) =
        wait_event(&mut events, Duration::from_secs(15), "Reconnected", |e| matches!(e, Event::Reconnected(_))).await;
    assert_eq!(reconnected, Event::Reconnected(url));
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (2, 1));

    // A task waiting on another stream is woken by the close, and its stream ends after Closed.
    let mut waiting = client.events();
    let waiter = tokio::spawn(async move {
        let mut seen = vec![];
        while let Some(e) = waiting.next().await {
            seen.push(e);
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());

    client.close().bounded().await;
    wait_event(&mut events, WAIT, "Closed", |e| *e == Event::Closed).await;
    assert!(events.next().bounded().await.is_none(), "the stream ends after Closed");
    assert!(poll_fn(|cx| Pin::new(&mut events).poll_next(cx)).bounded().await.is_none());
    assert_eq!(waiter.bounded().await.unwrap(), [Event::Closed]);
    // The events stream of a closed client ends at once.
    assert!(client.events().next().bounded().await.is_none());
}

//! The end of a client: `close`, and dropping the last handle (connected, reconnecting, never connected):
//! every call after it fails, every waiting call wakes, event receivers end.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use conformance::{wait_event, TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_client::{Error, Event};
use nats_proto::Headers;
use nats_server_harness::NatsServer;

use crate::common::{assert_ended, connect, free_port, options, recv, server_connections, text, wait_until, WAIT};

pub(crate) fn every_call_after_close_is_closed<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut sub = client.subscribe("closed.x", None).unwrap();
    let mut sub2 = client.subscribe("closed.y", None).unwrap();
    client.publish("closed.x", Some("closed.reply"), None, "kept".into()).unwrap();
    client.flush().unwrap();
    let events = client.events();
    client.close();
    assert!(client.is_closed());
    wait_event(&events, WAIT, "Closed", |e| *e == Event::Closed);

    let closed = |what: &str, r: Result<(), Error>| assert!(matches!(r, Err(Error::Closed)), "{what}: {r:?}");
    let empty = Headers::new();
    closed("publish", client.publish("closed.x", None, None, "x".into()));
    closed("publish with a reply", client.publish("closed.x", Some("r"), None, "x".into()));
    closed("publish with headers", client.publish("closed.x", None, Some(&empty), "x".into()));
    closed("publish with both", client.publish("closed.x", Some("r"), Some(&empty), "x".into()));
    closed("subscribe", client.subscribe("closed.z", None).map(drop));
    closed("queue subscribe", client.subscribe("closed.z", Some("q")).map(drop));
    closed("request", client.request_default("closed.x", None, "x".into()).map(drop));
    closed("request with headers", client.request_default("closed.x", Some(&empty), "x".into()).map(drop));
    closed("request with a timeout", client.request("closed.x", None, "x".into(), WAIT).map(drop));
    closed("request_many", client.request_many("closed.x", "x".into(), WAIT, None, None).map(drop));
    closed("flush", client.flush());
    closed("flush_timeout", client.flush_timeout(WAIT));
    closed("drain", client.drain());
    closed("unsubscribe_after", sub2.unsubscribe_after(3));
    closed("unsubscribe", sub2.unsubscribe());
    // What was received before the close is still there; then the subscription is over.
    let kept = recv(&mut sub, "received before close");
    assert_eq!(text(&kept), "kept");
    closed("respond", kept.respond("x"));
    assert_ended(&mut sub);
    assert_ended(&mut sub2);
    // A clone is the same closed connection; closing again is harmless.
    closed("clone publish", client.clone().publish("closed.x", None, None, "x".into()));
    client.close();
    // The events of a closed client end at once.
    let after = client.events();
    assert_eq!(after.recv_timeout(Duration::from_secs(1)), Err(mpsc::RecvTimeoutError::Disconnected));
}

pub(crate) fn dropping_the_last_client_closes_the_connection<C: TestClient>() {
    let server = NatsServer::builder().monitoring(true).start().unwrap();
    let client: C = connect(&server);
    wait_until(WAIT, "the server sees the client", || server_connections(&server) == 1);
    let mut sub = client.subscribe("dropped.x", None).unwrap();
    let clone = client.clone();
    // Dropping one clone closes nothing.
    drop(client);
    clone.publish("dropped.x", None, None, "still open".into()).unwrap();
    assert_eq!(text(&recv(&mut sub, "after dropping a clone")), "still open");
    assert_eq!(server_connections(&server), 1);

    // Another subscriber waits (on a thread of its own) when the last handle goes.
    let mut waiting = clone.subscribe("dropped.y", None).unwrap();
    clone.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(waiting.next_message().map(|m| text(&m))).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished());

    let started = Instant::now();
    drop(clone);
    assert!(started.elapsed() < Duration::from_secs(2), "dropping the last client took {:?}", started.elapsed());
    assert_eq!(rx.recv_timeout(WAIT).expect("the waiting subscription ends"), None);
    waiter.join().unwrap();
    assert_ended(&mut sub);
    wait_until(WAIT, "the server sees the connection closed", || server_connections(&server) == 0);
}

pub(crate) fn close_wakes_every_waiting_call<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let _silent = client.subscribe("blocked.req", None).unwrap();
    let mut sub = client.subscribe("blocked.sub", None).unwrap();
    client.flush().unwrap();
    let c = client.clone();
    let request = std::thread::spawn(move || {
        format!("{:?}", c.request("blocked.req", None, "".into(), Duration::from_secs(30)).map(drop))
    });
    let c = client.clone();
    let many = std::thread::spawn(move || {
        c.request_many("blocked.req", "".into(), Duration::from_secs(30), None, None).map(Iterator::count)
    });
    let next = std::thread::spawn(move || sub.next_message().map(|m| text(&m)));
    let events = client.events();
    let events_thread = std::thread::spawn(move || std::iter::from_fn(|| events.recv().ok()).collect::<Vec<_>>());
    // Let them wait.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!request.is_finished() && !many.is_finished() && !next.is_finished() && !events_thread.is_finished());
    let started = Instant::now();
    client.close();
    assert_eq!(request.join().unwrap(), "Err(Closed)");
    assert_eq!(many.join().unwrap().unwrap(), 0);
    assert_eq!(next.join().unwrap(), None);
    assert_eq!(events_thread.join().unwrap(), [Event::Closed]);
    assert!(started.elapsed() < Duration::from_secs(2));
}

pub(crate) fn event_receivers_end_when_the_client_closes<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let before = client.events();
    client.close();
    // Closed is the last event; then the channel ends instead of blocking for ever.
    assert_eq!(before.recv_timeout(WAIT), Ok(Event::Closed));
    assert_eq!(before.recv_timeout(WAIT), Err(mpsc::RecvTimeoutError::Disconnected));
    // A receiver asked for after the close has nothing to wait for either.
    let after = client.events();
    assert_eq!(after.recv_timeout(Duration::from_secs(1)), Err(mpsc::RecvTimeoutError::Disconnected));
}

/// Dropping the last handle while the client is reconnecting closes it: the subscription ends and the client
/// does not come back when the server does.
pub(crate) fn dropping_the_last_client_while_reconnecting_stops_it<C: TestClient>() {
    let mut server = NatsServer::builder().monitoring(true).start().unwrap();
    let client: C = connect(&server);
    let events = client.events();
    let mut sub = client.subscribe("gone.x", None).unwrap();
    client.flush().unwrap();
    server.stop();
    wait_event(&events, WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
    drop(client);
    wait_event(&events, WAIT, "Closed", |e| *e == Event::Closed);
    assert_eq!(events.recv_timeout(WAIT), Err(mpsc::RecvTimeoutError::Disconnected), "events end after Closed");
    assert_ended(&mut sub);
    server.restart();
    // Several backoff rounds (at most 100 ms each) pass: nobody connects.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server_connections(&server), 0, "a dropped client reconnected");
}

/// A client that never connected (retry_on_initial_connect) and is dropped stops trying.
pub(crate) fn a_dropped_client_that_never_connected_stops_dialing<C: TestClient>() {
    let port = free_port();
    let client = C::connect(options(&format!("nats://127.0.0.1:{port}")).retry_on_initial_connect()).unwrap();
    let events = client.events();
    let mut sub = client.subscribe("never.x", None).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(client);
    wait_event(&events, WAIT, "Closed", |e| *e == Event::Closed);
    assert_ended(&mut sub);
    let server = NatsServer::builder().port(port).monitoring(true).start().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server_connections(&server), 0, "a dropped client connected");
}

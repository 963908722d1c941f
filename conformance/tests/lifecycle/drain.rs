//! Drain: what is in flight is delivered, open requests are waited for (until given up), and subscriber
//! threads keep their subscriptions across a restart until the drain ends them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use conformance::{wait_event, TestClient};
use nats_client::{Error, Event, PendingLimits};
use nats_server_harness::NatsServer;

use crate::common::{connect, options, read_to_end, serve, text, wait_until, WAIT};

/// Reads `sub` on a thread of its own until it ends; the thread returns the payloads.
fn read_on_a_thread<S: conformance::TestSubscription>(mut sub: S) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || std::iter::from_fn(|| sub.next_message()).map(|m| text(&m)).collect())
}

/// The drain delivers what is in flight: to a subscription read while the drain runs, and to one read only
/// after it returned; then both end.
pub(crate) fn drain_delivers_messages_in_flight_then_ends_the_subscription<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let mut after = client.subscribe("drain.x", None).unwrap();
    let reader = read_on_a_thread(client.subscribe("drain.x", None).unwrap());
    for i in 0..100 {
        client.publish("drain.x", None, None, i.to_string().into()).unwrap();
    }
    // No flush: the 100 are still in flight when draining starts.
    client.drain().unwrap();
    assert!(client.is_closed());
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(reader.join().expect("reader"), expected, "read while the drain ran");
    let got: Vec<String> = read_to_end(&mut after).iter().map(text).collect();
    assert_eq!(got, expected, "read after the drain");
    let late = client.publish("drain.x", None, None, "late".into());
    assert!(matches!(late, Err(Error::Closed)), "{late:?}");
}

pub(crate) fn drain_delivers_messages_from_another_publisher<C: TestClient>() {
    let server = NatsServer::start();
    let limits = PendingLimits { messages: 10_000, bytes: 64 << 20 };
    let client = C::connect(options(&server.url()).pending_limits(limits)).unwrap();
    let publisher: C = connect(&server);
    let mut sub = client.subscribe("drain.y", None).unwrap();
    client.flush().unwrap();
    for i in 0..500 {
        publisher.publish("drain.y", None, None, i.to_string().into()).unwrap();
    }
    // The server has routed all 500 to our subscription before it sees our UNSUB.
    publisher.flush().unwrap();
    client.drain().unwrap();
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    let expected: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

pub(crate) fn drain_waits_for_open_requests<C: TestClient>() {
    let server = NatsServer::start();
    let service: C = connect(&server);
    let seen = Arc::new(AtomicBool::new(false));
    let seen_ = seen.clone();
    let _svc = serve(service.subscribe("drain.svc", None).unwrap(), move |m| {
        seen_.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        let _ = m.respond("late but answered");
    });
    service.flush().unwrap();
    let client: C = connect(&server);
    let c = client.clone();
    let request = std::thread::spawn(move || c.request_default("drain.svc", None, "q".into()).map(|m| text(&m)));
    wait_until(WAIT, "the service got the request", || seen.load(Ordering::SeqCst));
    client.drain().unwrap();
    assert_eq!(request.join().unwrap().unwrap(), "late but answered");
    assert!(client.is_closed());
    // Nothing new while draining or after.
    let again = client.request_default("drain.svc", None, "q2".into());
    assert!(matches!(again, Err(Error::Closed)), "{again:?}");
}

pub(crate) fn drain_finishes_once_the_last_open_request_is_given_up<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let _svc = serve(client.subscribe("drain.many", None).unwrap(), |m| drop(m.respond("one")));
    client.flush().unwrap();
    let mut replies = client.request_many("drain.many", "q".into(), Duration::from_secs(30), None, None).unwrap();
    assert_eq!(text(&replies.next().expect("a reply")), "one");
    let c = client.clone();
    let (tx, rx) = mpsc::channel();
    let drain = std::thread::spawn(move || {
        let r = c.drain();
        tx.send(Instant::now()).unwrap();
        r
    });
    // The drain waits for the open request_many ...
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "drain did not wait for the open request");
    assert!(!drain.is_finished());
    // ... until it is dropped.
    let dropped = Instant::now();
    drop(replies);
    let done = rx.recv_timeout(WAIT).expect("drain returns");
    drain.join().unwrap().unwrap();
    assert!(
        done - dropped < Duration::from_secs(1),
        "drain returned {:?} after the request was dropped",
        done - dropped
    );
}

/// A thread reading a subscription keeps it across a restart: what was published before, during (from the
/// reconnect buffer) and after arrives in order, and the drain ends the subscription.
pub(crate) fn a_restart_is_survived_by_subscriber_threads<C: TestClient>() {
    let mut server = NatsServer::start();
    let client: C = connect(&server);
    let events = client.events();
    let reader = read_on_a_thread(client.subscribe("life.x", None).unwrap());
    client.publish("life.x", None, None, "before".into()).unwrap();
    client.flush().unwrap();
    server.stop();
    wait_event(&events, WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
    client.publish("life.x", None, None, "during".into()).unwrap();
    server.restart();
    wait_event(&events, Duration::from_secs(15), "Reconnected", |e| matches!(e, Event::Reconnected(_)));
    client.publish("life.x", None, None, "after".into()).unwrap();
    client.drain().unwrap();
    assert_eq!(reader.join().unwrap(), ["before", "during", "after"]);
}

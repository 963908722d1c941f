//! `request_many`: its three stop conditions (a count, a stall, the overall timeout), no responders, and
//! dropping its replies part-way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::TestClient;
use nats_server_harness::NatsServer;

use crate::common::{connect, echo, options, recv, serve, text};

pub(crate) fn request_many_stops_at_max<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let _svcs: Vec<_> = (0..5).map(|_| echo(&client, "svc.many", None, "")).collect();
    client.flush().unwrap();
    let started = Instant::now();
    let replies: Vec<_> =
        client.request_many("svc.many", "x".into(), Duration::from_secs(5), None, Some(3)).unwrap().collect();
    assert_eq!(replies.len(), 3);
    assert!(started.elapsed() < Duration::from_secs(2), "max reached but waited {:?}", started.elapsed());
    // All five answer when asked without a max (the stall ends it).
    let all =
        client.request_many("svc.many", "y".into(), Duration::from_secs(5), Some(Duration::from_millis(300)), None);
    assert_eq!(all.unwrap().count(), 5);
}

pub(crate) fn request_many_ends_after_a_stall<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let _svcs: Vec<_> = (0..2).map(|_| echo(&client, "svc.stall", None, "")).collect();
    client.flush().unwrap();
    let stall = Duration::from_millis(200);
    let started = Instant::now();
    let responses = client.request_many("svc.stall", "x".into(), Duration::from_secs(10), Some(stall), None).unwrap();
    let replies: Vec<String> = responses.map(|m| text(&m)).collect();
    let took = started.elapsed();
    assert_eq!(replies, ["x", "x"]);
    assert!(took >= stall, "ended before the stall interval: {took:?}");
    assert!(took < Duration::from_secs(3), "the stall did not end it: {took:?}");
}

pub(crate) fn request_many_ends_at_the_overall_timeout<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_ = stop.clone();
    // Keeps replying every 20 ms, so neither the stall nor a max can end it.
    let _svc = serve(client.subscribe("svc.stream", None).unwrap(), move |msg| {
        for i in 0..500 {
            if stop_.load(Ordering::SeqCst) || msg.respond(i.to_string()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    client.flush().unwrap();
    let timeout = Duration::from_millis(600);
    let started = Instant::now();
    let responses =
        client.request_many("svc.stream", "go".into(), timeout, Some(Duration::from_millis(400)), Some(1000)).unwrap();
    let replies: Vec<String> = responses.map(|m| text(&m)).collect();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    assert!(took >= timeout - Duration::from_millis(10), "ended before the timeout: {took:?}");
    assert!(took < timeout + Duration::from_millis(1500), "ended late: {took:?}");
    assert!(replies.len() >= 5, "only {} replies in {took:?}", replies.len());
    assert!(replies.len() < 500);
    // In order, none missing.
    let expected: Vec<String> = (0..replies.len()).map(|i| i.to_string()).collect();
    assert_eq!(replies, expected);
}

pub(crate) fn request_many_with_no_responders_is_empty_and_quick<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let started = Instant::now();
    let n = client.request_many("svc.none", "x".into(), Duration::from_secs(5), None, None).unwrap().count();
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

/// Dropping the replies of a `request_many` cancels it: later replies arrive but are dropped, and a drain
/// (which waits for open requests) does not wait for it.
pub(crate) fn dropping_request_many_replies_cancels_it<C: TestClient>() {
    let server = NatsServer::start();
    let client = C::connect(options(&server.url()).drain_timeout(Duration::from_secs(30))).unwrap();
    let mut requests = client.subscribe("svc.multi", None).unwrap();
    client.flush().unwrap();
    let mut replies = client.request_many("svc.multi", "q".into(), Duration::from_secs(30), None, None).unwrap();
    let req = recv(&mut requests, "the request");
    req.respond("one").unwrap();
    assert_eq!(text(&replies.next().expect("the first reply")), "one");
    drop(replies);
    // More replies for the dropped request: they arrive and are dropped.
    let before = client.statistics().in_msgs;
    req.respond("two").unwrap();
    req.respond("three").unwrap();
    client.flush().unwrap();
    assert_eq!(client.statistics().in_msgs - before, 2);
    let started = Instant::now();
    client.drain().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "the drain waited {:?}", started.elapsed());
}

//! The life of a connection against a real nats-server: connecting (and failing to), server info and
//! statistics, both server versions, drain, close, and dropping the last handle.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{assert_ended, connect, free_port, read_to_end, recv, subject, take_queued, text, WAIT};
use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{ConnectOptions, Error, Headers, PendingLimits};
use nats_server_harness::{NatsServer, ServerVersion};

#[test]
fn connection_refused_fails_fast_without_retry() {
    let port = free_port();
    let started = Instant::now();
    let result = nats_blocking::connect(&format!("nats://127.0.0.1:{port}"));
    assert!(matches!(result, Err(Error::Connect(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "refusal took {:?}", started.elapsed());
    // Several servers, none listening: still one quick typed error.
    let urls = format!("nats://127.0.0.1:{port},nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let result = ConnectOptions::new().server(&urls).connect();
    assert!(matches!(result, Err(Error::Connect(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn retry_on_initial_connect_returns_at_once_and_connects_later() {
    let port = free_port();
    let (callback, events) = common::event_recorder();
    let started = Instant::now();
    let client = common::options(&format!("nats://127.0.0.1:{port}"))
        .retry_on_initial_connect()
        .event_callback(callback)
        .connect()
        .expect("returns without a server");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(client.server_info().is_none());
    // Subscriptions and publishes made before the first connection wait for it.
    let mut sub = client.subscribe("later.x").unwrap();
    client.publish("later.x", "early").unwrap();
    let _server = NatsServer::builder().port(port).start().expect("server on the chosen port");
    let (connected, _) = common::wait_event(&events, Duration::from_secs(15), "Connected", |e| {
        matches!(e, nats_blocking::Event::Connected(_))
    });
    assert_eq!(connected, nats_blocking::Event::Connected(format!("nats://127.0.0.1:{port}")));
    assert_eq!(text(&recv(&mut sub, "published before the first connection")), "early");
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (1, 0));
}

#[test]
fn server_info_and_statistics() {
    let server = NatsServer::start();
    let client = connect(&server);
    let info = client.server_info().expect("INFO was received");
    assert_eq!(info.version, server.version());
    assert_eq!(info.server_name, server.server_name());
    assert_eq!(info.port, server.port());
    assert!(info.headers);
    assert_eq!(client.max_payload(), info.max_payload);
    assert_eq!(client.max_payload(), 1 << 20, "nats-server's default max_payload");

    let start = client.statistics();
    assert_eq!((start.connects, start.reconnects, start.in_msgs, start.out_msgs), (1, 0, 0, 0));
    let mut sub = client.subscribe("stats.x").unwrap();
    for _ in 0..7 {
        client.publish("stats.x", "12345").unwrap();
    }
    client.publish("stats.other", "nobody listens").unwrap();
    client.flush().unwrap();
    assert_eq!(take_queued(&mut sub).len(), 7);
    let stats = client.statistics();
    assert_eq!(stats.out_msgs, 8);
    assert_eq!(stats.in_msgs, 7);
    // "PUB stats.x 5\r\n12345\r\n" is 22 bytes; received MSGs are longer than the payloads.
    assert!(stats.out_bytes >= start.out_bytes + 7 * 22, "{stats:?}");
    assert!(stats.in_bytes >= start.in_bytes + 7 * 5, "{stats:?}");
    assert_eq!((stats.connects, stats.reconnects), (1, 0));
}

/// Pub/sub with a wildcard, request/reply, headers and no-responders against one server build.
fn core_scenario(version: ServerVersion) {
    let server = NatsServer::builder().version(version).start().expect("server starts");
    let client = connect(&server);
    let info = client.server_info().unwrap();
    assert_eq!(info.version, server.version(), "{version:?}");
    assert!(info.headers, "{version:?} supports headers");

    let mut sub = client.subscribe("core.*").unwrap();
    client.publish("core.a", "one").unwrap();
    let msg = recv(&mut sub, "wildcard message");
    assert_eq!((subject(&msg), text(&msg)), ("core.a".to_owned(), "one".to_owned()));

    let mut h = Headers::new();
    h.append("Key", "v1").unwrap();
    h.append("Key", "v2").unwrap();
    client.publish_with_headers("core.h", &h, "with headers").unwrap();
    let msg = recv(&mut sub, "message with headers");
    assert_eq!(msg.headers().unwrap().get_all("Key").collect::<Vec<_>>(), ["v1", "v2"]);
    assert_eq!(text(&msg), "with headers");

    let responder = connect(&server);
    let _svc = responder
        .subscribe_with("core.svc", |m| {
            let echoed = m.headers().and_then(|h| h.get("Key")).unwrap_or("-").to_owned();
            let _ = m.respond(format!("{}/{echoed}", text(&m)));
        })
        .unwrap();
    responder.flush().unwrap();
    assert_eq!(text(&client.request("core.svc", "ping").unwrap()), "ping/-");
    assert_eq!(text(&client.request_with_headers("core.svc", &h, "ping").unwrap()), "ping/v1");

    let started = Instant::now();
    let result = client.request_with_timeout("nobody.here", "", Duration::from_secs(10));
    assert!(matches!(result, Err(Error::NoResponders)), "{version:?}: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    client.drain().unwrap();
    assert!(client.is_closed());
}

#[test]
fn core_scenario_current_server() {
    core_scenario(ServerVersion::Current);
}

#[test]
fn core_scenario_old_server() {
    core_scenario(ServerVersion::Old);
}

#[test]
fn every_call_after_close_is_closed() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("closed.x").unwrap();
    let mut sub2 = client.subscribe("closed.y").unwrap();
    client.publish_with_reply("closed.x", "closed.reply", "kept").unwrap();
    client.flush().unwrap();
    let events = client.events();
    client.close();
    assert!(client.is_closed());
    common::wait_event(&events, WAIT, "Closed", |e| matches!(e, nats_blocking::Event::Closed));

    let closed = |what: &str, r: Result<(), Error>| assert!(matches!(r, Err(Error::Closed)), "{what}: {r:?}");
    closed("publish", client.publish("closed.x", "x"));
    closed("publish_with_reply", client.publish_with_reply("closed.x", "r", "x"));
    closed("publish_with_headers", client.publish_with_headers("closed.x", &Headers::new(), "x"));
    closed("subscribe", client.subscribe("closed.z").map(drop));
    closed("queue_subscribe", client.queue_subscribe("closed.z", "q").map(drop));
    closed("subscribe_with", client.subscribe_with("closed.z", |_| {}).map(drop));
    closed("request", client.request("closed.x", "x").map(drop));
    closed("request_with_timeout", client.request_with_timeout("closed.x", "x", WAIT).map(drop));
    closed("request_many", client.request_many("closed.x", "x", WAIT, None, None).map(drop));
    closed("flush", client.flush());
    closed("drain", client.drain());
    closed("unsubscribe_after", sub2.unsubscribe_after(3));
    closed("unsubscribe", sub2.unsubscribe());
    // What was received before the close is still there; then the subscription is over.
    let kept = recv(&mut sub, "received before close");
    assert_eq!(text(&kept), "kept");
    closed("respond", kept.respond("x"));
    assert_ended(&mut sub);
    assert_ended(&mut sub2);
    // A clone is the same closed connection.
    closed("clone publish", client.clone().publish("closed.x", "x"));
}

#[test]
fn drain_delivers_messages_in_flight() {
    let server = NatsServer::start();
    let client = connect(&server);
    let mut sub = client.subscribe("drain.x").unwrap();
    for i in 0..100 {
        client.publish("drain.x", i.to_string()).unwrap();
    }
    // No flush: the 100 are still in flight when draining starts.
    client.drain().unwrap();
    assert!(client.is_closed());
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
    assert!(matches!(client.publish("drain.x", "late"), Err(Error::Closed)));
}

#[test]
fn drain_delivers_messages_from_another_publisher() {
    let server = NatsServer::start();
    let client = common::options(&server.url())
        .pending_limits(PendingLimits { messages: 10_000, bytes: 64 << 20 })
        .connect()
        .unwrap();
    let publisher = connect(&server);
    let mut sub = client.subscribe("drain.y").unwrap();
    client.flush().unwrap();
    for i in 0..500 {
        publisher.publish("drain.y", i.to_string()).unwrap();
    }
    // The server has routed all 500 to our subscription before it sees our UNSUB.
    publisher.flush().unwrap();
    client.drain().unwrap();
    assert_eq!(read_to_end(&mut sub).len(), 500);
}

#[test]
fn dropping_the_last_client_closes_the_connection() {
    let server = NatsServer::builder().monitoring(true).start().unwrap();
    let client = connect(&server);
    let connections = || -> u64 {
        let body = server.monitor_get("/connz").unwrap();
        let at = body.find("\"num_connections\":").expect("num_connections in /connz");
        let digits: String =
            body[at + 18..].chars().skip_while(|c| c.is_whitespace()).take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    };
    common::wait_until(WAIT, "the server sees the client", || connections() == 1);
    let mut sub = client.subscribe("dropped.x").unwrap();
    let clone = client.clone();
    // Dropping one clone closes nothing.
    drop(client);
    clone.publish("dropped.x", "still open").unwrap();
    assert_eq!(text(&recv(&mut sub, "after dropping a clone")), "still open");
    assert_eq!(connections(), 1);

    // Another subscriber waits in the blocking iterator when the last handle goes.
    let mut blocked = clone.subscribe("dropped.y").unwrap();
    clone.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(blocked.next().map(|m| text(&m))).unwrap());
    std::thread::sleep(Duration::from_millis(50));

    let started = Instant::now();
    drop(clone);
    assert!(started.elapsed() < Duration::from_secs(2), "dropping the last client took {:?}", started.elapsed());
    assert_eq!(rx.recv_timeout(WAIT).expect("the blocked iterator ends"), None);
    waiter.join().unwrap();
    assert_ended(&mut sub);
    common::wait_until(WAIT, "the server sees the connection closed", || connections() == 0);
}

#[test]
fn close_wakes_every_blocked_call() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _silent = client.subscribe("blocked.req").unwrap();
    let mut sub = client.subscribe("blocked.sub").unwrap();
    client.flush().unwrap();
    let (tx, rx) = mpsc::channel::<(&str, String)>();
    let mut threads = vec![];
    let c = client.clone();
    let t = tx.clone();
    threads.push(std::thread::spawn(move || {
        let r = c.request_with_timeout("blocked.req", "", Duration::from_secs(30));
        t.send(("request", format!("{r:?}"))).unwrap();
    }));
    let c = client.clone();
    let t = tx.clone();
    threads.push(std::thread::spawn(move || {
        let r = c.request_many("blocked.req", "", Duration::from_secs(30), None, None).map(Iterator::count);
        t.send(("request_many", format!("{r:?}"))).unwrap();
    }));
    threads.push(std::thread::spawn(move || tx.send(("next", format!("{:?}", sub.next().map(|m| text(&m))))).unwrap()));
    // Let them block.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    client.close();
    let mut results: Vec<(&str, String)> = (0..3).map(|_| rx.recv_timeout(WAIT).expect("woken by close")).collect();
    results.sort();
    assert_eq!(
        results,
        [("next", "None".to_owned()), ("request", "Err(Closed)".to_owned()), ("request_many", "Ok(0)".to_owned())]
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn drain_waits_for_open_requests() {
    let server = NatsServer::start();
    let service = connect(&server);
    let (seen_tx, seen_rx) = mpsc::channel();
    let _svc = service
        .subscribe_with("drain.svc", move |m| {
            seen_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let _ = m.respond("late but answered");
        })
        .unwrap();
    service.flush().unwrap();
    let client = connect(&server);
    let c = client.clone();
    let request = std::thread::spawn(move || c.request("drain.svc", "q").map(|m| text(&m)));
    seen_rx.recv_timeout(WAIT).expect("the service got the request");
    client.drain().unwrap();
    assert_eq!(request.join().unwrap().unwrap(), "late but answered");
    assert!(client.is_closed());
    // Nothing new while draining or after.
    assert!(matches!(client.request("drain.svc", "q2"), Err(Error::Closed)));
}

#[test]
fn event_receivers_end_when_the_client_closes() {
    let server = NatsServer::start();
    let client = connect(&server);
    let before = client.events();
    client.close();
    // Closed is the last event; then the channel ends instead of blocking for ever.
    assert_eq!(before.recv_timeout(WAIT), Ok(nats_blocking::Event::Closed));
    assert_eq!(before.recv_timeout(WAIT), Err(mpsc::RecvTimeoutError::Disconnected));
    // A receiver asked for after the close has nothing to wait for either.
    let after = client.events();
    assert_eq!(after.recv_timeout(Duration::from_secs(1)), Err(mpsc::RecvTimeoutError::Disconnected));
}

#[test]
fn drain_finishes_once_the_last_open_request_is_given_up() {
    let server = NatsServer::start();
    let client = connect(&server);
    let _svc = client.subscribe_with("drain.many", |m| drop(m.respond("one"))).unwrap();
    client.flush().unwrap();
    let mut responses = client.request_many("drain.many", "q", Duration::from_secs(30), None, None).unwrap();
    assert_eq!(text(&responses.next().expect("a reply")), "one");
    let c = client.clone();
    let (tx, rx) = mpsc::channel();
    let drain = std::thread::spawn(move || {
        let r = c.drain();
        tx.send(Instant::now()).unwrap();
        r
    });
    // The drain waits for the open request_many ...
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "drain did not wait for the open request");
    // ... until it is dropped.
    let dropped = Instant::now();
    drop(responses);
    let done = rx.recv_timeout(WAIT).expect("drain returns");
    drain.join().unwrap().unwrap();
    assert!(
        done - dropped < Duration::from_secs(1),
        "drain returned {:?} after the request was dropped",
        done - dropped
    );
}

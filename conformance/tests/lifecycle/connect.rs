//! Connecting (and failing to), what the client learns from the server, both server builds, the event
//! callback, and timeouts while disconnected.

use std::time::{Duration, Instant};

use conformance::{wait_event, TestClient};
use nats_client::{ConnectOptions, Error, Event};
use nats_proto::Headers;
use nats_server_harness::{NatsServer, ServerVersion};

use crate::common::{
    connect, event_recorder, free_port, options, read_to_end, recv, serve, subject, take_queued, text, wait_recorded,
    wait_until, WAIT,
};

pub(crate) fn connection_refused_fails_fast_without_retry<C: TestClient>() {
    let port = free_port();
    let started = Instant::now();
    let result = C::connect(ConnectOptions::new().server(&format!("nats://127.0.0.1:{port}")));
    assert!(matches!(result, Err(Error::Connect(_))), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(2), "refusal took {:?}", started.elapsed());
    // Several servers, none listening: still one quick typed error.
    let urls = format!("nats://127.0.0.1:{port},nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let result = C::connect(ConnectOptions::new().server(&urls));
    assert!(matches!(result, Err(Error::Connect(_))), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(2));
    // A URL that does not parse is a typed error too.
    let result = C::connect(ConnectOptions::new().server("nats://127.0.0.1:notaport"));
    assert!(matches!(result, Err(Error::InvalidUrl(_))), "{:?}", result.err());
}

pub(crate) fn retry_on_initial_connect_returns_at_once_and_connects_later<C: TestClient>() {
    let port = free_port();
    let (callback, recorded) = event_recorder();
    let started = Instant::now();
    let options = options(&format!("nats://127.0.0.1:{port}")).retry_on_initial_connect().event_callback(callback);
    let client = C::connect(options).expect("returns without a server");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(client.server_info().is_none());
    // Subscriptions and publishes made before the first connection wait for it.
    let mut sub = client.subscribe("later.x", None).unwrap();
    client.publish("later.x", None, None, "early".into()).unwrap();
    let _server = NatsServer::builder().port(port).start().expect("server on the chosen port");
    let (connected, _) =
        wait_recorded(&recorded, Duration::from_secs(15), "Connected", |e| matches!(e, Event::Connected(_)));
    assert_eq!(connected, Event::Connected(format!("nats://127.0.0.1:{port}")));
    assert_eq!(text(&recv(&mut sub, "published before the first connection")), "early");
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (1, 0));
}

pub(crate) fn server_info_and_statistics<C: TestClient>() {
    let server = NatsServer::start();
    let client: C = connect(&server);
    let info = client.server_info().expect("INFO was received");
    assert_eq!(info.version, server.version());
    assert_eq!(info.server_name, server.server_name());
    assert_eq!(info.port, server.port());
    assert!(info.headers);
    assert_eq!(client.max_payload(), info.max_payload);
    assert_eq!(client.max_payload(), 1 << 20, "nats-server's default max_payload");
    let inbox = client.new_inbox();
    assert!(inbox.starts_with("_INBOX."), "{inbox}");
    assert_ne!(inbox, client.new_inbox());

    let start = client.statistics();
    assert_eq!((start.connects, start.reconnects, start.in_msgs, start.out_msgs), (1, 0, 0, 0));
    let mut sub = client.subscribe("stats.x", None).unwrap();
    for _ in 0..7 {
        client.publish("stats.x", None, None, "12345".into()).unwrap();
    }
    client.publish("stats.other", None, None, "nobody listens".into()).unwrap();
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

/// Pub/sub with a wildcard, request/reply, headers, `request_many` and no-responders against one server build.
fn core_scenario<C: TestClient>(version: ServerVersion) {
    let server = NatsServer::builder().version(version).start().expect("server starts");
    let client: C = connect(&server);
    let info = client.server_info().unwrap();
    assert_eq!(info.version, server.version(), "{version:?}");
    assert!(info.headers, "{version:?} supports headers");

    let mut sub = client.subscribe("core.*", None).unwrap();
    client.publish("core.a", None, None, "one".into()).unwrap();
    let msg = recv(&mut sub, "wildcard message");
    assert_eq!((subject(&msg), text(&msg)), ("core.a".to_owned(), "one".to_owned()));

    let mut h = Headers::new();
    h.append("Key", "v1").unwrap();
    h.append("Key", "v2").unwrap();
    client.publish("core.h", None, Some(&h), "with headers".into()).unwrap();
    let msg = recv(&mut sub, "message with headers");
    assert_eq!(msg.headers().unwrap().get_all("Key").collect::<Vec<_>>(), ["v1", "v2"]);
    assert_eq!(text(&msg), "with headers");

    let responder: C = connect(&server);
    let _svc = serve(responder.subscribe("core.svc", None).unwrap(), |m| {
        let echoed = m.headers().and_then(|h| h.get("Key")).unwrap_or("-").to_owned();
        let _ = m.respond(format!("{}/{echoed}", text(&m)));
    });
    responder.flush().unwrap();
    assert_eq!(text(&client.request_default("core.svc", None, "ping".into()).unwrap()), "ping/-");
    assert_eq!(text(&client.request_default("core.svc", Some(&h), "ping".into()).unwrap()), "ping/v1");
    let mut replies =
        client.request_many("core.svc", "many".into(), WAIT, Some(Duration::from_millis(200)), None).unwrap();
    assert_eq!(text(&replies.next().expect("a reply")), "many/-");
    assert!(replies.next().is_none());

    let started = Instant::now();
    let result = client.request("nobody.here", None, "".into(), Duration::from_secs(10));
    assert!(matches!(result, Err(Error::NoResponders)), "{version:?}: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    client.drain().unwrap();
    assert!(client.is_closed());
    // `core.*` also saw the three requests to `core.svc`; then the drain ended it.
    let rest: Vec<String> = read_to_end(&mut sub).iter().map(subject).collect();
    assert_eq!(rest, ["core.svc", "core.svc", "core.svc"]);
}

pub(crate) fn core_scenario_current_server<C: TestClient>() {
    core_scenario::<C>(ServerVersion::Current);
}

pub(crate) fn core_scenario_old_server<C: TestClient>() {
    core_scenario::<C>(ServerVersion::Old);
}

pub(crate) fn the_event_callback_sees_the_connection_and_its_close<C: TestClient>() {
    let server = NatsServer::start();
    let (callback, recorded) = event_recorder();
    let client = C::connect(options(&server.url()).event_callback(callback)).unwrap();
    let (connected, before) = wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
    assert_eq!(connected, Event::Connected(server.url()));
    assert!(before.is_empty(), "{before:?}");
    client.close();
    wait_recorded(&recorded, WAIT, "Closed", |e| *e == Event::Closed);
    // The callback ends with the connection: its sender is dropped.
    wait_until(WAIT, "the callback is dropped", || {
        matches!(recorded.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected))
    });
}

/// While disconnected, request and flush timeouts still fire on time (the timer runs without a socket).
pub(crate) fn requests_and_flushes_time_out_while_disconnected<C: TestClient>() {
    let mut server = NatsServer::start();
    let client: C = connect(&server);
    let events = client.events();
    server.stop();
    wait_event(&events, WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = client.request("nobody.x", None, "q".into(), timeout);
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{:?}", result.err());
    assert!(took >= timeout - Duration::from_millis(10) && took < timeout + Duration::from_secs(1), "{took:?}");
    let started = Instant::now();
    let result = client.flush_timeout(timeout);
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{:?}", result.err());
    assert!(took >= timeout - Duration::from_millis(10) && took < timeout + Duration::from_secs(1), "{took:?}");
    assert!(!client.is_closed());
    // Back up: everything works again.
    server.restart();
    wait_event(&events, Duration::from_secs(15), "Reconnected", |e| matches!(e, Event::Reconnected(_)));
    client.flush().unwrap();
}

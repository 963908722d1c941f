//! The life of an async client against real nats-servers: connecting (and failing to), server info and
//! statistics, both server versions, the `events()` stream, drain, close, and dropping the last handle.

mod common;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, Instant};

use common::{
    assert_ended, blocking, connect, event_recorder, free_port, read_to_end, recv, server_connections, subject,
    take_queued, text, wait_event, wait_recorded, wait_until, BoundedExt as _, WAIT,
};
use futures_core::Stream;
use nats_server_harness::{NatsServer, ServerVersion};
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Client, ConnectOptions, Error, Event, Headers, PendingLimits};

#[test]
fn the_client_is_a_cheap_shareable_handle() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
    fn assert_send<T: Send + 'static>() {}
    assert_send::<nats_tokio::Subscriber>();
    assert_send::<nats_tokio::Responses>();
    assert_send::<nats_tokio::Events>();
}

#[tokio::test]
async fn connection_refused_fails_fast_without_retry() {
    let port = free_port();
    let started = Instant::now();
    let result = nats_tokio::connect(&format!("nats://127.0.0.1:{port}")).bounded().await;
    assert!(matches!(result, Err(Error::Connect(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "refusal took {:?}", started.elapsed());
    // Several servers, none listening: still one quick typed error.
    let urls = format!("nats://127.0.0.1:{port},nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let result = Client::connect(ConnectOptions::new().server(&urls)).bounded().await;
    assert!(matches!(result, Err(Error::Connect(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A URL that does not parse is a typed error too.
    let result = ConnectOptions::new().server("nats://127.0.0.1:notaport").connect().bounded().await;
    assert!(matches!(result, Err(Error::InvalidUrl(_))), "{result:?}");
}

/// `events()` is a `Stream` of everything that happens to the connection: Connected, Disconnected,
/// Reconnected, Closed, and then it ends.
#[tokio::test]
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

    client.close().bounded().await;
    wait_event(&mut events, WAIT, "Closed", |e| *e == Event::Closed).await;
    assert!(events.next().bounded().await.is_none(), "the stream ends after Closed");
    assert!(poll_fn(|cx| Pin::new(&mut events).poll_next(cx)).bounded().await.is_none());
}

#[tokio::test]
async fn retry_on_initial_connect_returns_at_once_and_connects_later() {
    let port = free_port();
    let (callback, recorded) = event_recorder();
    let started = Instant::now();
    let client = common::options(&format!("nats://127.0.0.1:{port}"))
        .retry_on_initial_connect()
        .event_callback(callback)
        .connect()
        .bounded()
        .await
        .expect("returns without a server");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(client.server_info().is_none());
    // Subscriptions and publishes made before the first connection wait for it.
    let mut sub = client.subscribe("later.x").bounded().await.unwrap();
    client.publish("later.x", "early").bounded().await.unwrap();
    let _server = NatsServer::builder().port(port).start().expect("server on the chosen port");
    let (connected, _) =
        wait_recorded(&recorded, Duration::from_secs(15), "Connected", |e| matches!(e, Event::Connected(_))).await;
    assert_eq!(connected, Event::Connected(format!("nats://127.0.0.1:{port}")));
    assert_eq!(text(&recv(&mut sub, "published before the first connection").await), "early");
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (1, 0));
}

#[tokio::test]
async fn server_info_and_statistics() {
    let server = NatsServer::start();
    let client = connect(&server).await;
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
    let mut sub = client.subscribe("stats.x").bounded().await.unwrap();
    for _ in 0..7 {
        client.publish("stats.x", "12345").bounded().await.unwrap();
    }
    client.publish("stats.other", "nobody listens").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
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
async fn core_scenario(version: ServerVersion) {
    let server = NatsServer::builder().version(version).start().expect("server starts");
    let client = connect(&server).await;
    let info = client.server_info().unwrap();
    assert_eq!(info.version, server.version(), "{version:?}");
    assert!(info.headers, "{version:?} supports headers");

    let mut sub = client.subscribe("core.*").bounded().await.unwrap();
    client.publish("core.a", "one").bounded().await.unwrap();
    let msg = recv(&mut sub, "wildcard message").await;
    assert_eq!((subject(&msg), text(&msg)), ("core.a".to_owned(), "one".to_owned()));

    let mut h = Headers::new();
    h.append("Key", "v1").unwrap();
    h.append("Key", "v2").unwrap();
    client.publish_with_headers("core.h", &h, "with headers").bounded().await.unwrap();
    let msg = recv(&mut sub, "message with headers").await;
    assert_eq!(msg.headers().unwrap().get_all("Key").collect::<Vec<_>>(), ["v1", "v2"]);
    assert_eq!(text(&msg), "with headers");

    let responder = connect(&server).await;
    let mut requests = responder.subscribe("core.svc").bounded().await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            let echoed = m.headers().and_then(|h| h.get("Key")).unwrap_or("-").to_owned();
            let _ = m.respond(format!("{}/{echoed}", text(&m)));
        }
    });
    responder.flush().bounded().await.unwrap();
    assert_eq!(text(&client.request("core.svc", "ping").bounded().await.unwrap()), "ping/-");
    assert_eq!(text(&client.request_with_headers("core.svc", &h, "ping").bounded().await.unwrap()), "ping/v1");
    let replies = client.request_many("core.svc", "many", WAIT, Some(Duration::from_millis(200)), None);
    let mut replies = replies.bounded().await.unwrap();
    assert_eq!(text(&replies.next().bounded().await.expect("a reply")), "many/-");
    assert!(replies.next().bounded().await.is_none());

    let started = Instant::now();
    let result = client.request_with_timeout("nobody.here", "", Duration::from_secs(10)).bounded().await;
    assert!(matches!(result, Err(Error::NoResponders)), "{version:?}: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    client.drain().bounded().await.unwrap();
    assert!(client.is_closed());
    // `core.*` also saw the three requests to `core.svc`; then the drain ended it.
    let rest: Vec<String> = read_to_end(&mut sub).await.iter().map(subject).collect();
    assert_eq!(rest, ["core.svc", "core.svc", "core.svc"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_scenario_current_server() {
    core_scenario(ServerVersion::Current).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_scenario_old_server() {
    core_scenario(ServerVersion::Old).await;
}

#[tokio::test]
async fn every_call_after_close_is_closed() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("closed.x").bounded().await.unwrap();
    let mut sub2 = client.subscribe("closed.y").bounded().await.unwrap();
    client.publish_with_reply("closed.x", "closed.reply", "kept").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let mut events = client.events();
    client.close().bounded().await;
    assert!(client.is_closed());
    wait_event(&mut events, WAIT, "Closed", |e| *e == Event::Closed).await;

    let closed = |what: &str, r: Result<(), Error>| assert!(matches!(r, Err(Error::Closed)), "{what}: {r:?}");
    closed("publish", client.publish("closed.x", "x").bounded().await);
    closed("publish_with_reply", client.publish_with_reply("closed.x", "r", "x").bounded().await);
    closed("publish_with_headers", client.publish_with_headers("closed.x", &Headers::new(), "x").bounded().await);
    let empty = Headers::new();
    let with_both = client.publish_with_reply_and_headers("closed.x", "r", &empty, "x");
    closed("publish_with_reply_and_headers", with_both.bounded().await);
    closed("subscribe", client.subscribe("closed.z").bounded().await.map(drop));
    closed("queue_subscribe", client.queue_subscribe("closed.z", "q").bounded().await.map(drop));
    closed("request", client.request("closed.x", "x").bounded().await.map(drop));
    closed(
        "request_with_headers",
        client.request_with_headers("closed.x", &Headers::new(), "x").bounded().await.map(drop),
    );
    closed("request_with_timeout", client.request_with_timeout("closed.x", "x", WAIT).bounded().await.map(drop));
    closed("request_many", client.request_many("closed.x", "x", WAIT, None, None).bounded().await.map(drop));
    closed("flush", client.flush().bounded().await);
    closed("flush_timeout", client.flush_timeout(WAIT).bounded().await);
    closed("drain", client.drain().bounded().await);
    closed("unsubscribe_after", sub2.unsubscribe_after(3).bounded().await);
    closed("unsubscribe", sub2.unsubscribe().bounded().await);
    // What was received before the close is still there; then the subscription is over.
    let kept = recv(&mut sub, "received before close").await;
    assert_eq!(text(&kept), "kept");
    closed("respond", kept.respond("x"));
    assert_ended(&mut sub).await;
    assert_ended(&mut sub2).await;
    // A clone is the same closed connection; closing again is harmless.
    closed("clone publish", client.clone().publish("closed.x", "x").bounded().await);
    client.close().bounded().await;
    // The events stream of a closed client ends at once.
    assert!(client.events().next().bounded().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_delivers_messages_in_flight_then_ends_the_stream() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut sub = client.subscribe("drain.x").bounded().await.unwrap();
    // A task reads the stream to its end while the drain runs.
    let reader = tokio::spawn(async move {
        let mut got = vec![];
        while let Some(msg) = sub.next().await {
            got.push(text(&msg));
        }
        got
    });
    for i in 0..100 {
        client.publish("drain.x", i.to_string()).bounded().await.unwrap();
    }
    // No flush: the 100 are still in flight when draining starts.
    client.drain().bounded().await.unwrap();
    assert!(client.is_closed());
    let got = reader.bounded().await.expect("reader");
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
    assert!(matches!(client.publish("drain.x", "late").bounded().await, Err(Error::Closed)));
}

#[tokio::test]
async fn drain_delivers_messages_from_another_publisher() {
    let server = NatsServer::start();
    let client = common::options(&server.url())
        .pending_limits(PendingLimits { messages: 10_000, bytes: 64 << 20 })
        .connect()
        .bounded()
        .await
        .unwrap();
    let publisher = connect(&server).await;
    let mut sub = client.subscribe("drain.y").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    for i in 0..500 {
        publisher.publish("drain.y", i.to_string()).bounded().await.unwrap();
    }
    // The server has routed all 500 to our subscription before it sees our UNSUB.
    publisher.flush().bounded().await.unwrap();
    client.drain().bounded().await.unwrap();
    let got: Vec<String> = read_to_end(&mut sub).await.iter().map(text).collect();
    let expected: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_closes_the_connection() {
    let server = NatsServer::builder().monitoring(true).start().unwrap();
    let client = connect(&server).await;
    wait_until(WAIT, "the server sees the client", || server_connections(&server) == 1).await;
    let mut sub = client.subscribe("dropped.x").bounded().await.unwrap();
    let clone = client.clone();
    // Dropping one clone closes nothing.
    drop(client);
    clone.publish("dropped.x", "still open").bounded().await.unwrap();
    assert_eq!(text(&recv(&mut sub, "after dropping a clone").await), "still open");
    assert_eq!(server_connections(&server), 1);

    // Another subscriber waits in a task when the last handle goes.
    let mut waiting = clone.subscribe("dropped.y").bounded().await.unwrap();
    clone.flush().bounded().await.unwrap();
    let waiter = tokio::spawn(async move { waiting.next().await.map(|m| text(&m)) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());

    drop(clone);
    assert_eq!(waiter.bounded().await.unwrap(), None, "the waiting stream ends");
    assert_ended(&mut sub).await;
    wait_until(WAIT, "the server sees the connection closed", || server_connections(&server) == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_every_waiting_task() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let _silent = client.subscribe("blocked.req").bounded().await.unwrap();
    let mut sub = client.subscribe("blocked.sub").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let c = client.clone();
    let request = tokio::spawn(async move {
        format!("{:?}", c.request_with_timeout("blocked.req", "", Duration::from_secs(30)).await.map(drop))
    });
    let c = client.clone();
    let many = tokio::spawn(async move {
        let mut responses = c.request_many("blocked.req", "", Duration::from_secs(30), None, None).await.unwrap();
        let mut n = 0;
        while responses.next().await.is_some() {
            n += 1;
        }
        n
    });
    let next = tokio::spawn(async move { sub.next().await.map(|m| text(&m)) });
    let mut events = client.events();
    let events_task = tokio::spawn(async move {
        let mut seen = vec![];
        while let Some(e) = events.next().await {
            seen.push(e);
        }
        seen
    });
    // Let them wait.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!request.is_finished() && !many.is_finished() && !next.is_finished() && !events_task.is_finished());
    let started = Instant::now();
    client.close().bounded().await;
    assert_eq!(request.bounded().await.unwrap(), "Err(Closed)");
    assert_eq!(many.bounded().await.unwrap(), 0);
    assert_eq!(next.bounded().await.unwrap(), None);
    assert_eq!(events_task.bounded().await.unwrap(), [Event::Closed]);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_open_requests() {
    let server = NatsServer::start();
    let service = connect(&server).await;
    let mut requests = service.subscribe("drain.svc").bounded().await.unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_ = seen.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            seen_.store(true, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = m.respond("late but answered");
        }
    });
    service.flush().bounded().await.unwrap();
    let client = connect(&server).await;
    let c = client.clone();
    let request = tokio::spawn(async move { c.request("drain.svc", "q").await.map(|m| text(&m)) });
    wait_until(WAIT, "the service got the request", || seen.load(std::sync::atomic::Ordering::SeqCst)).await;
    client.drain().bounded().await.unwrap();
    assert_eq!(request.bounded().await.unwrap().unwrap(), "late but answered");
    assert!(client.is_closed());
    // Nothing new while draining or after.
    assert!(matches!(client.request("drain.svc", "q2").bounded().await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_once_the_last_open_request_is_given_up() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let mut svc = client.subscribe("drain.many").bounded().await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let _ = m.respond("one");
        }
    });
    client.flush().bounded().await.unwrap();
    let mut responses =
        client.request_many("drain.many", "q", Duration::from_secs(30), None, None).bounded().await.unwrap();
    assert_eq!(text(&responses.next().bounded().await.expect("a reply")), "one");
    let c = client.clone();
    let drain = tokio::spawn(async move {
        let r = c.drain().await;
        (r, Instant::now())
    });
    // The drain waits for the open request_many ...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!drain.is_finished(), "drain did not wait for the open request");
    // ... until it is dropped.
    let dropped = Instant::now();
    drop(responses);
    let (result, done) = drain.bounded().await.unwrap();
    result.unwrap();
    assert!(
        done - dropped < Duration::from_secs(1),
        "drain returned {:?} after the request was dropped",
        done - dropped
    );
}

#[tokio::test]
async fn the_event_callback_sees_the_connection_and_its_close() {
    let server = NatsServer::start();
    let (callback, recorded) = event_recorder();
    let client = common::options(&server.url()).event_callback(callback).connect().bounded().await.unwrap();
    let (connected, before) = wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_))).await;
    assert_eq!(connected, Event::Connected(server.url()));
    assert!(before.is_empty(), "{before:?}");
    client.close().bounded().await;
    wait_recorded(&recorded, WAIT, "Closed", |e| *e == Event::Closed).await;
    // The callback task ends with the connection: its sender is dropped.
    wait_until(WAIT, "the callback is dropped", || {
        matches!(recorded.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected))
    })
    .await;
}

/// A task reading a subscription keeps its stream across a restart: what was published before, during (from
/// the reconnect buffer) and after arrives in order, and the drain ends the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_is_survived_by_subscriber_tasks() {
    let mut server = NatsServer::start();
    let client = connect(&server).await;
    let mut events = client.events();
    let mut sub = client.subscribe("life.x").bounded().await.unwrap();
    let reader = tokio::spawn(async move {
        let mut got = vec![];
        while let Some(m) = sub.next().await {
            got.push(text(&m));
        }
        got
    });
    client.publish("life.x", "before").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_))).await;
    client.publish("life.x", "during").bounded().await.unwrap();
    blocking(|| server.restart());
    wait_event(&mut events, Duration::from_secs(15), "Reconnected", |e| matches!(e, Event::Reconnected(_))).await;
    client.publish("life.x", "after").bounded().await.unwrap();
    client.drain().bounded().await.unwrap();
    assert_eq!(reader.bounded().await.unwrap(), ["before", "during", "after"]);
}

/// Dropping the last handle while the client is reconnecting closes it: the subscription ends and the client
/// does not come back when the server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_while_reconnecting_stops_it() {
    let mut server = NatsServer::builder().monitoring(true).start().unwrap();
    let client = connect(&server).await;
    let mut events = client.events();
    let mut sub = client.subscribe("gone.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_))).await;
    drop(client);
    wait_event(&mut events, WAIT, "Closed", |e| *e == Event::Closed).await;
    assert!(events.next().bounded().await.is_none());
    assert_ended(&mut sub).await;
    blocking(|| server.restart());
    // Several backoff rounds (at most 100 ms each) pass: nobody connects.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server_connections(&server), 0, "a dropped client reconnected");
}

/// A client that never connected (retry_on_initial_connect) and is dropped stops trying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_client_that_never_connected_stops_dialing() {
    let port = free_port();
    let client = common::options(&format!("nats://127.0.0.1:{port}"))
        .retry_on_initial_connect()
        .connect()
        .bounded()
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("never.x").bounded().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(client);
    wait_event(&mut events, WAIT, "Closed", |e| *e == Event::Closed).await;
    assert_ended(&mut sub).await;
    let server = blocking(|| NatsServer::builder().port(port).monitoring(true).start().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server_connections(&server), 0, "a dropped client connected");
}

/// While disconnected, request and flush timeouts still fire on time (the driver's timer runs without a
/// socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_flushes_time_out_while_disconnected() {
    let mut server = NatsServer::start();
    let client = connect(&server).await;
    let mut events = client.events();
    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_))).await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = client.request_with_timeout("nobody.x", "q", timeout).bounded().await;
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= timeout - Duration::from_millis(10) && took < timeout + Duration::from_secs(1), "{took:?}");
    let started = Instant::now();
    let result = client.flush_timeout(timeout).bounded().await;
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= timeout - Duration::from_millis(10) && took < timeout + Duration::from_secs(1), "{took:?}");
    assert!(!client.is_closed());
    // Back up: everything works again.
    blocking(|| server.restart());
    wait_event(&mut events, Duration::from_secs(15), "Reconnected", |e| matches!(e, Event::Reconnected(_))).await;
    client.flush().bounded().await.unwrap();
}

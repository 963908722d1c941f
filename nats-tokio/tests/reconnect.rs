//! Reconnecting with the async client against real nats-servers: a server stopped and restarted on the same
//! port, the reconnect buffer, a frozen server, and failover inside a cluster.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    blocking, connect, event_recorder, next_within, options, read_to_end, recv, take_queued, text, wait_event,
    wait_recorded, wait_until, BoundedExt as _, WAIT,
};
use nats_proto::{CommandError, ConnectionError};
use nats_server_harness::{Cluster, NatsServer, ServerVersion};
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Client, Error, Event, PendingLimits, Subscriber};

/// Long enough for a restart and a few backoff rounds.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

/// Sends a signal (`-STOP`, `-CONT`) to the server process.
fn signal(server: &NatsServer, sig: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = std::process::Command::new("kill").args([sig, &pid]).status().expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resubscribes_with_the_remaining_max_and_sends_buffered_publishes() {
    let mut server = NatsServer::start();
    let client = connect(&server).await;
    let mut events = client.events();
    let mut limited = client.subscribe("rc.x").bounded().await.unwrap();
    let mut all = client.subscribe("rc.x").bounded().await.unwrap();
    let mut members = [
        client.queue_subscribe("rc.x", "g").bounded().await.unwrap(),
        client.queue_subscribe("rc.x", "g").bounded().await.unwrap(),
    ];
    let gone = client.subscribe("rc.x").bounded().await.unwrap();
    limited.unsubscribe_after(10).bounded().await.unwrap();
    for i in 0..3 {
        client.publish("rc.x", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    for i in 0..3 {
        assert_eq!(text(&recv(&mut limited, "before the restart").await), i.to_string());
    }
    assert_eq!(take_queued(&mut all).len(), 3);

    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    // Dropped while disconnected: not replayed.
    drop(gone);
    // Made while the server is down: they wait in the reconnect buffer.
    for i in 3..7 {
        client.publish("rc.x", i.to_string()).bounded().await.unwrap();
    }
    blocking(|| server.restart());
    let (reconnected, _) = wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    assert_eq!(reconnected, Event::Reconnected(server.url()));
    for i in 7..20 {
        client.publish("rc.x", i.to_string()).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();

    // Seven more (the four buffered first), then the subscription ends: the max is counted across connections.
    let rest: Vec<String> = read_to_end(&mut limited).await.iter().map(text).collect();
    let expected: Vec<String> = (3..10).map(|i| i.to_string()).collect();
    assert_eq!(rest, expected);
    assert!(limited.next().bounded().await.is_none());
    // The unlimited subscription got everything published after the restart began, in order.
    let rest: Vec<String> = take_queued(&mut all).iter().map(text).collect();
    let expected: Vec<String> = (3..20).map(|i| i.to_string()).collect();
    assert_eq!(rest, expected);
    // The queue group was replayed as a queue group: each message went to one member only.
    let shared: usize = members.iter_mut().map(|m| take_queued(m).len()).sum();
    assert_eq!(shared, 20);
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (2, 1));
    // Before: 3 each to limited, all, gone and the group. After: 7 to limited, 17 to all, 17 to the group, and
    // none to `gone`.
    assert_eq!(stats.in_msgs, 4 * 3 + 7 + 17 + 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_flushes_made_while_disconnected_complete_after_reconnect() {
    let mut server = NatsServer::start();
    let client = connect(&server).await;
    let mut events = client.events();
    let mut svc = client.subscribe("rc.svc").bounded().await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let _ = m.respond(format!("re:{}", text(&m)));
        }
    });
    // The request inbox exists before the outage too.
    assert_eq!(text(&client.request("rc.svc", "before").bounded().await.unwrap()), "re:before");

    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    let (c1, c2) = (client.clone(), client.clone());
    let request = tokio::spawn(async move { c1.request_with_timeout("rc.svc", "during", RECONNECT_WAIT).await });
    let flush = tokio::spawn(async move { c2.flush_timeout(RECONNECT_WAIT).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!request.is_finished() && !flush.is_finished(), "a request or flush completed while disconnected");
    blocking(|| server.restart());
    wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    let reply = request.bounded().await.unwrap().expect("the buffered request is answered");
    assert_eq!(text(&reply), "re:during");
    flush.bounded().await.unwrap().expect("the buffered flush completes");
    assert_eq!(text(&client.request("rc.svc", "after").bounded().await.unwrap()), "re:after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_while_disconnected_waits_for_the_reconnect_and_delivers_buffered_publishes() {
    let mut server = NatsServer::start();
    let client = connect(&server).await;
    let mut events = client.events();
    let mut sub = client.subscribe("rc.drain").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    for i in 0..20 {
        client.publish("rc.drain", i.to_string()).bounded().await.unwrap();
    }
    let c = client.clone();
    let drain = tokio::spawn(async move { c.drain().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    blocking(|| server.restart());
    drain.within(RECONNECT_WAIT).await.unwrap().expect("drain completes after the reconnect");
    assert!(client.is_closed());
    let got: Vec<String> = read_to_end(&mut sub).await.iter().map(text).collect();
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_is_detected_as_stale_and_left() {
    let mut server = NatsServer::start();
    let client = options(&server.url())
        .ping_interval(Duration::from_millis(100))
        .max_pings_out(2)
        .connect()
        .bounded()
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("rc.stale").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    signal(&server, "-STOP");
    let frozen = Instant::now();
    let lost = tokio::time::timeout(WAIT, wait_event(&mut events, WAIT, "Disconnected", is_disconnected)).await;
    signal(&server, "-CONT");
    let (lost, _) = lost.expect("no Disconnected");
    assert_eq!(lost, Event::Disconnected(ConnectionError::StaleConnection));
    assert!(frozen.elapsed() < Duration::from_secs(2), "stale after {:?}", frozen.elapsed());
    wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    client.publish("rc.stale", "alive").bounded().await.unwrap();
    assert_eq!(text(&recv(&mut sub, "after the stale connection").await), "alive");
    blocking(|| server.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_waiting_on_a_frozen_server_is_released_when_the_connection_is_lost() {
    let server = NatsServer::start();
    let client = options(&server.url())
        .ping_interval(Duration::from_millis(200))
        .max_pings_out(2)
        .connect()
        .bounded()
        .await
        .unwrap();
    let mut events = client.events();
    signal(&server, "-STOP");
    // The server reads nothing: socket buffers fill, then the client's 32 MiB of unwritten bytes, and the
    // publisher waits for room.
    let c = client.clone();
    let publisher = tokio::spawn(async move {
        let chunk = nats_tokio::bytes::Bytes::from(vec![b'x'; 1 << 20]);
        let mut ok = 0;
        let end = loop {
            match c.publish("rc.frozen", chunk.clone()).await {
                Ok(()) => ok += 1,
                Err(e) => break e,
            }
            // 200 MiB is far past the 32 MiB of unwritten bytes plus the socket buffers.
            if ok >= 200 {
                break Error::Timeout;
            }
        };
        (ok, format!("{end:?}"))
    });
    let lost = tokio::time::timeout(WAIT, wait_event(&mut events, WAIT, "Disconnected", is_disconnected)).await;
    // Disconnected: publishes go to the (8 MiB) reconnect buffer until it is full, instead of waiting for room
    // on a connection that no longer exists.
    let result = tokio::time::timeout(WAIT, publisher).await;
    signal(&server, "-CONT");
    let (lost, _) = lost.expect("no Disconnected");
    assert_eq!(lost, Event::Disconnected(ConnectionError::StaleConnection));
    let (ok, end) = result.expect("the publisher is still waiting after the connection was lost").unwrap();
    assert!(ok < 200, "back-pressure never engaged: {ok} publishes of 1 MiB were accepted by a frozen server");
    assert!(end.starts_with("Command(ReconnectBufferFull"), "publisher ended with {end} after {ok} publishes");
    client.close().bounded().await;
}

/// Progress of the publisher task in [`flushed_publishes_survive_a_restart_mid_stream`].
#[derive(Default)]
struct Progress {
    /// Set just before the server is stopped.
    stopping: bool,
    /// Every publish below this was confirmed by a flush that returned Ok before `stopping`.
    confirmed: u64,
    flushes_ok: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_publishes_survive_a_restart_mid_stream() {
    let mut server = NatsServer::start();
    let client = options(&server.url())
        .pending_limits(PendingLimits { messages: 1_000_000, bytes: 256 << 20 })
        .connect()
        .bounded()
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("rc.stream").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, progress, stop) = (client.clone(), progress.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut errors, mut seq) = (vec![], vec![], 0u64);
            while !stop.load(Ordering::SeqCst) && seq < 1_000_000 {
                match client.publish("rc.stream", seq.to_string()).await {
                    Ok(()) => ok.push(seq),
                    Err(e) => errors.push(format!("{seq}: {e:?}")),
                }
                seq += 1;
                if seq % 10 == 0 && client.flush().await.is_ok() {
                    let mut p = progress.lock().unwrap();
                    p.flushes_ok += 1;
                    if !p.stopping {
                        p.confirmed = seq;
                    }
                }
            }
            (ok, errors)
        })
    };
    wait_until(WAIT, "the publisher is streaming", || progress.lock().unwrap().confirmed >= 300).await;
    let confirmed = {
        let mut p = progress.lock().unwrap();
        p.stopping = true;
        p.confirmed
    };
    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    blocking(|| server.restart());
    wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    let flushes_at_reconnect = progress.lock().unwrap().flushes_ok;
    wait_until(WAIT, "the publisher goes on after the reconnect", || {
        progress.lock().unwrap().flushes_ok >= flushes_at_reconnect + 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let (ok, errors) = publisher.bounded().await.expect("publisher task");
    client.flush().bounded().await.unwrap();
    // The default 8 MiB reconnect buffer is never full here.
    assert!(errors.is_empty(), "publishes failed: {errors:?}");

    let received: Vec<u64> = take_queued(&mut sub).iter().map(|m| text(m).parse().unwrap()).collect();
    assert!(received.windows(2).all(|w| w[0] < w[1]), "duplicated or reordered messages");
    let received: BTreeSet<u64> = received.into_iter().collect();
    let missing: Vec<u64> = ok.iter().copied().filter(|s| !received.contains(s)).collect();
    // Flushed before the stop: arrived.
    assert!(missing.iter().all(|&s| s >= confirmed), "confirmed publishes lost: {missing:?} (confirmed < {confirmed})");
    // At most those in flight at the crash are lost: one contiguous run, before the buffered ones.
    assert!(missing.windows(2).all(|w| w[1] == w[0] + 1), "lost publishes are not one run at the crash: {missing:?}");
    // The publisher waits for a flush after every 10 publishes, so no more than 10 can be in flight.
    assert!(missing.len() <= 10, "{} publishes lost: {missing:?}", missing.len());
    assert!(received.contains(ok.last().unwrap()), "the last publish did not arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_reconnect_buffer_is_a_typed_error_and_nothing_else_is_lost() {
    const BUFFER: usize = 1000;
    let mut server = NatsServer::start();
    let client = options(&server.url()).reconnect_buffer_size(BUFFER).connect().bounded().await.unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("rb.x").bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    let before = client.statistics().out_msgs;

    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    let payload = |i: usize| format!("{i:0100}");
    let wire = "PUB rb.x 100\r\n".len() + 100 + 2;
    let mut buffered = 0;
    let error = loop {
        match client.publish("rb.x", payload(buffered)).bounded().await {
            Ok(()) => buffered += 1,
            Err(e) => break e,
        }
        assert!(buffered <= BUFFER / wire, "more publishes buffered than fit");
    };
    assert_eq!(buffered, BUFFER / wire);
    match error {
        Error::Command(CommandError::ReconnectBufferFull { needed, available }) => {
            assert_eq!(needed, wire);
            assert_eq!(available, BUFFER - buffered * wire);
        }
        other => panic!("expected ReconnectBufferFull, got {other:?}"),
    }
    // Still full; only the successful publishes were counted.
    let again = client.publish("rb.x", payload(99)).bounded().await;
    assert!(matches!(again, Err(Error::Command(CommandError::ReconnectBufferFull { .. }))), "{again:?}");
    assert_eq!(client.statistics().out_msgs - before, buffered as u64);

    blocking(|| server.restart());
    wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    client.flush().bounded().await.unwrap();
    let got: Vec<String> = take_queued(&mut sub).iter().map(text).collect();
    let expected: Vec<String> = (0..buffered).map(payload).collect();
    assert_eq!(got, expected, "every buffered publish arrives, nothing more");
    // Connected again: the buffer size no longer limits publishing.
    for i in 0..50 {
        client.publish("rb.x", payload(i)).bounded().await.unwrap();
    }
    client.flush().bounded().await.unwrap();
    assert_eq!(take_queued(&mut sub).len(), 50);
}

/// Publishes on `from` until `sub` receives one of them: interest crosses the cluster's routes
/// asynchronously.
async fn cross_cluster(from: &Client, subject: &str, sub: &mut Subscriber, tag: &str) {
    for i in 0..50 {
        from.publish(subject, format!("{tag}-{i}")).bounded().await.unwrap();
        if let Ok(Some(msg)) = next_within(sub, Duration::from_millis(100)).await {
            assert!(text(&msg).starts_with(tag), "unexpected {}", text(&msg));
            return;
        }
    }
    panic!("{tag}: no message crossed the cluster within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_to_a_server_learned_from_connect_urls() {
    let mut cluster = blocking(|| Cluster::start(3));
    let urls = cluster.urls();
    let ports: Vec<u16> = cluster.servers().iter().map(NatsServer::port).collect();
    let (callback, recorded) = event_recorder();
    let client = options(&urls[0]).event_callback(callback).connect().bounded().await.unwrap();
    // It was given one URL and learned the others from INFO.
    let (first, before) = wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_))).await;
    assert_eq!(first, Event::Connected(urls[0].clone()));
    if !before.contains(&Event::DiscoveredServers) {
        wait_recorded(&recorded, WAIT, "DiscoveredServers", |e| *e == Event::DiscoveredServers).await;
    }
    let info = client.server_info().unwrap();
    assert_eq!(info.port, ports[0]);
    for port in &ports[1..] {
        let addr = format!("127.0.0.1:{port}");
        assert!(info.connect_urls.contains(&addr), "{addr} missing from {:?}", info.connect_urls);
    }

    let mut sub = client.subscribe("cluster.x").bounded().await.unwrap();
    let mut svc = client.subscribe("cluster.svc").bounded().await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let _ = m.respond("pong");
        }
    });
    client.flush().bounded().await.unwrap();
    let other = options(&urls[2]).ignore_discovered_servers().connect().bounded().await.unwrap();
    cross_cluster(&other, "cluster.x", &mut sub, "before").await;

    let mut events = client.events();
    blocking(|| cluster.kill(0));
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    let (reconnected, _) = wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    let Event::Reconnected(url) = reconnected else { unreachable!() };
    assert!(url == urls[1] || url == urls[2], "reconnected to {url}, expected one of {:?}", &urls[1..]);
    assert_ne!(client.server_info().unwrap().port, ports[0]);
    assert_eq!(client.statistics().reconnects, 1);

    // Subscriptions were replayed on the new server and interest crosses the routes again.
    cross_cluster(&other, "cluster.x", &mut sub, "after").await;
    let mut answered = false;
    for _ in 0..50 {
        match other.request_with_timeout("cluster.svc", "ping", Duration::from_millis(500)).bounded().await {
            Ok(reply) => {
                assert_eq!(text(&reply), "pong");
                answered = true;
                break;
            }
            Err(Error::NoResponders | Error::Timeout) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("request across the cluster: {e:?}"),
        }
    }
    assert!(answered, "the responder was not reachable across the cluster after failover");
    // And the client's own requests travel from its new server.
    let mut svc2 = other.subscribe("cluster.svc2").bounded().await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = svc2.next().await {
            let _ = m.respond("pong2");
        }
    });
    other.flush().bounded().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match client.request_with_timeout("cluster.svc2", "x", Duration::from_millis(500)).bounded().await {
            Ok(reply) => {
                assert_eq!(text(&reply), "pong2");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "the failed-over client's request: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Many subscriptions (one with a max) and a request inbox are replayed after a restart, against either
/// server build.
async fn many_subscriptions_survive_a_restart(version: ServerVersion) {
    const SUBS: usize = 200;
    let mut server = blocking(|| NatsServer::builder().version(version).start().expect("server starts"));
    let client = connect(&server).await;
    let mut events = client.events();
    let mut subs = vec![];
    for i in 0..SUBS {
        subs.push(client.subscribe(&format!("many.{i}")).bounded().await.unwrap());
    }
    let mut limited = client.subscribe("many.*").bounded().await.unwrap();
    limited.unsubscribe_after(SUBS as u64 + 5).bounded().await.unwrap();
    let mut svc = client.subscribe("many.svc").bounded().await.unwrap();
    let service = connect(&server).await;
    // Before the restart: one message for each, through the wildcard too.
    for i in 0..SUBS {
        service.publish(&format!("many.{i}"), "before").bounded().await.unwrap();
    }
    service.flush().bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    for sub in subs.iter_mut() {
        assert_eq!(take_queued(sub).len(), 1);
    }
    assert_eq!(take_queued(&mut limited).len(), SUBS);
    drop(service);

    blocking(|| server.stop());
    wait_event(&mut events, WAIT, "Disconnected", is_disconnected).await;
    blocking(|| server.restart());
    wait_event(&mut events, RECONNECT_WAIT, "Reconnected", is_reconnected).await;
    let service = connect(&server).await;
    for i in 0..SUBS {
        service.publish(&format!("many.{i}"), "after").bounded().await.unwrap();
    }
    service.flush().bounded().await.unwrap();
    client.flush().bounded().await.unwrap();
    for (i, sub) in subs.iter_mut().enumerate() {
        let got: Vec<String> = take_queued(sub).iter().map(text).collect();
        assert_eq!(got, ["after"], "{version:?}: subscription many.{i} after the restart");
    }
    // The wildcard had five left of its max.
    let rest = read_to_end(&mut limited).await;
    assert_eq!(rest.len(), 5, "{version:?}: the remaining max was not replayed");
    // And the request inbox works on the new connection.
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            let _ = m.respond("pong");
        }
    });
    client.flush().bounded().await.unwrap();
    let reply = service.request("many.svc", "ping").bounded().await.unwrap();
    assert_eq!(text(&reply), "pong");
    assert_eq!(text(&client.request("many.svc", "ping").bounded().await.unwrap()), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subscriptions_survive_a_restart_of_a_current_server() {
    many_subscriptions_survive_a_restart(ServerVersion::Current).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subscriptions_survive_a_restart_of_an_old_server() {
    many_subscriptions_survive_a_restart(ServerVersion::Old).await;
}

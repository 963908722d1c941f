//! Reconnecting against real nats-servers: a server stopped and restarted on the same port, the reconnect
//! buffer, and failover inside a cluster.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{connect, event_recorder, options, read_to_end, recv, take_queued, text, wait_event, wait_until, WAIT};
use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{Client, Error, Event, PendingLimits, Subscriber};
use nats_proto::CommandError;
use nats_server_harness::{Cluster, NatsServer};

/// Long enough for a restart and a few backoff rounds.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

#[test]
fn restart_resubscribes_with_the_remaining_max_and_sends_buffered_publishes() {
    let mut server = NatsServer::start();
    let client = connect(&server);
    let events = client.events();
    let mut limited = client.subscribe("rc.x").unwrap();
    let mut all = client.subscribe("rc.x").unwrap();
    let mut members = [client.queue_subscribe("rc.x", "g").unwrap(), client.queue_subscribe("rc.x", "g").unwrap()];
    let gone = client.subscribe("rc.x").unwrap();
    limited.unsubscribe_after(10).unwrap();
    for i in 0..3 {
        client.publish("rc.x", i.to_string()).unwrap();
    }
    client.flush().unwrap();
    for i in 0..3 {
        assert_eq!(text(&recv(&mut limited, "before the restart")), i.to_string());
    }
    assert_eq!(take_queued(&mut all).len(), 3);

    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    // Dropped while disconnected: not replayed.
    drop(gone);
    // Made while the server is down: they wait in the reconnect buffer.
    for i in 3..7 {
        client.publish("rc.x", i.to_string()).unwrap();
    }
    server.restart();
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(reconnected, Event::Reconnected(server.url()));
    for i in 7..20 {
        client.publish("rc.x", i.to_string()).unwrap();
    }
    client.flush().unwrap();

    // Seven more (the four buffered first), then the subscription ends: the max is counted across connections.
    let rest: Vec<String> = read_to_end(&mut limited).iter().map(text).collect();
    let expected: Vec<String> = (3..10).map(|i| i.to_string()).collect();
    assert_eq!(rest, expected);
    assert!(limited.next().is_none());
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

#[test]
fn requests_and_flushes_made_while_disconnected_complete_after_reconnect() {
    let mut server = NatsServer::start();
    let client = connect(&server);
    let events = client.events();
    let _svc = client.subscribe_with("rc.svc", |m| drop(m.respond(format!("re:{}", common::text(&m))))).unwrap();
    // The request inbox exists before the outage too.
    assert_eq!(text(&client.request("rc.svc", "before").unwrap()), "re:before");

    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    let (c1, c2) = (client.clone(), client.clone());
    let request = std::thread::spawn(move || c1.request_with_timeout("rc.svc", "during", RECONNECT_WAIT));
    let flush = std::thread::spawn(move || c2.flush_timeout(RECONNECT_WAIT));
    std::thread::sleep(Duration::from_millis(50));
    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(text(&request.join().unwrap().expect("the buffered request is answered")), "re:during");
    flush.join().unwrap().expect("the buffered flush completes");
    assert_eq!(text(&client.request("rc.svc", "after").unwrap()), "re:after");
}

#[test]
fn drain_while_disconnected_waits_for_the_reconnect_and_delivers_buffered_publishes() {
    let mut server = NatsServer::start();
    let client = connect(&server);
    let events = client.events();
    let mut sub = client.subscribe("rc.drain").unwrap();
    client.flush().unwrap();
    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    for i in 0..20 {
        client.publish("rc.drain", i.to_string()).unwrap();
    }
    let c = client.clone();
    let drain = std::thread::spawn(move || c.drain());
    std::thread::sleep(Duration::from_millis(50));
    server.restart();
    drain.join().unwrap().expect("drain completes after the reconnect");
    assert!(client.is_closed());
    let got: Vec<String> = read_to_end(&mut sub).iter().map(text).collect();
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_frozen_server_is_detected_as_stale_and_left() {
    let mut server = NatsServer::start();
    let client = options(&server.url()).ping_interval(Duration::from_millis(100)).max_pings_out(2).connect().unwrap();
    let events = client.events();
    let mut sub = client.subscribe("rc.stale").unwrap();
    client.flush().unwrap();
    let pid = server.pid().unwrap().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill").args([sig, &pid]).status().expect("run kill");
        assert!(status.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let frozen = std::time::Instant::now();
    let (lost, _) = wait_event(&events, WAIT, "Disconnected", is_disconnected);
    signal("-CONT");
    assert_eq!(lost, Event::Disconnected(nats_proto::ConnectionError::StaleConnection));
    assert!(frozen.elapsed() < Duration::from_secs(2), "stale after {:?}", frozen.elapsed());
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    client.publish("rc.stale", "alive").unwrap();
    assert_eq!(text(&recv(&mut sub, "after the stale connection")), "alive");
    server.stop();
}

#[test]
fn a_publisher_blocked_by_a_frozen_server_is_released_when_the_connection_is_lost() {
    let server = NatsServer::start();
    let client = options(&server.url()).ping_interval(Duration::from_millis(200)).max_pings_out(2).connect().unwrap();
    let events = client.events();
    let pid = server.pid().unwrap().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill").args([sig, &pid]).status().expect("run kill");
        assert!(status.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    // The server reads nothing: socket buffers fill, then the client's 32 MiB of unwritten bytes, and the
    // publisher waits for room.
    let (tx, rx) = std::sync::mpsc::channel();
    let c = client.clone();
    let publisher = std::thread::spawn(move || {
        let chunk = nats_blocking::bytes::Bytes::from(vec![b'x'; 1 << 20]);
        let mut ok = 0;
        let end = loop {
            match c.publish("rc.frozen", chunk.clone()) {
                Ok(()) => ok += 1,
                Err(e) => break e,
            }
            if ok > 1000 {
                break Error::Timeout;
            }
        };
        tx.send((ok, format!("{end:?}"))).unwrap();
    });
    let (lost, _) = wait_event(&events, WAIT, "Disconnected", is_disconnected);
    assert_eq!(lost, Event::Disconnected(nats_proto::ConnectionError::StaleConnection));
    // Disconnected: publishes go to the (8 MiB) reconnect buffer until it is full, instead of waiting for room
    // on a connection that no longer exists.
    let result = rx.recv_timeout(WAIT);
    signal("-CONT");
    let (ok, end) = result.expect("the publisher is still blocked after the connection was lost");
    assert!(end.starts_with("Command(ReconnectBufferFull"), "publisher ended with {end} after {ok} publishes");
    publisher.join().unwrap();
}

/// Progress of the publisher thread in [`flushed_publishes_survive_a_restart_mid_stream`].
#[derive(Default)]
struct Progress {
    /// Set just before the server is stopped.
    stopping: bool,
    /// Every publish below this was confirmed by a flush that returned Ok before `stopping`.
    confirmed: u64,
    flushes_ok: u64,
}

#[test]
fn flushed_publishes_survive_a_restart_mid_stream() {
    let mut server = NatsServer::start();
    let client = options(&server.url())
        .pending_limits(PendingLimits { messages: 1_000_000, bytes: 256 << 20 })
        .connect()
        .unwrap();
    let events = client.events();
    let mut sub = client.subscribe("rc.stream").unwrap();
    client.flush().unwrap();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, progress, stop) = (client.clone(), progress.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut ok, mut errors, mut seq) = (vec![], vec![], 0u64);
            while !stop.load(Ordering::SeqCst) && seq < 1_000_000 {
                match client.publish("rc.stream", seq.to_string()) {
                    Ok(()) => ok.push(seq),
                    Err(e) => errors.push(format!("{seq}: {e:?}")),
                }
                seq += 1;
                if seq % 10 == 0 && client.flush().is_ok() {
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
    wait_until(WAIT, "the publisher is streaming", || progress.lock().unwrap().confirmed >= 300);
    let confirmed = {
        let mut p = progress.lock().unwrap();
        p.stopping = true;
        p.confirmed
    };
    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    let flushes_at_reconnect = progress.lock().unwrap().flushes_ok;
    wait_until(WAIT, "the publisher goes on after the reconnect", || {
        progress.lock().unwrap().flushes_ok >= flushes_at_reconnect + 20
    });
    stop.store(true, Ordering::SeqCst);
    let (ok, errors) = publisher.join().expect("publisher thread");
    client.flush().unwrap();
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

#[test]
fn full_reconnect_buffer_is_a_typed_error_and_nothing_else_is_lost() {
    const BUFFER: usize = 1000;
    let mut server = NatsServer::start();
    let client = options(&server.url()).reconnect_buffer_size(BUFFER).connect().unwrap();
    let events = client.events();
    let mut sub = client.subscribe("rb.x").unwrap();
    client.flush().unwrap();
    let before = client.statistics().out_msgs;

    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    let payload = |i: usize| format!("{i:0100}");
    let wire = "PUB rb.x 100\r\n".len() + 100 + 2;
    let mut buffered = 0;
    let error = loop {
        match client.publish("rb.x", payload(buffered)) {
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
    assert!(matches!(
        client.publish("rb.x", payload(99)),
        Err(Error::Command(CommandError::ReconnectBufferFull { .. }))
    ));
    assert_eq!(client.statistics().out_msgs - before, buffered as u64);

    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    client.flush().unwrap();
    let got: Vec<String> = take_queued(&mut sub).iter().map(text).collect();
    let expected: Vec<String> = (0..buffered).map(payload).collect();
    assert_eq!(got, expected, "every buffered publish arrives, nothing more");
    // Connected again: the buffer size no longer limits publishing.
    for i in 0..50 {
        client.publish("rb.x", payload(i)).unwrap();
    }
    client.flush().unwrap();
    assert_eq!(take_queued(&mut sub).len(), 50);
}

/// Publishes on `from` until `sub` receives one of them: interest crosses the cluster's routes
/// asynchronously.
#[track_caller]
fn cross_cluster(from: &Client, subject: &str, sub: &mut Subscriber, tag: &str) {
    for i in 0..50 {
        from.publish(subject, format!("{tag}-{i}")).unwrap();
        if let Ok(msg) = sub.next_timeout(Duration::from_millis(100)) {
            assert!(text(&msg).starts_with(tag), "unexpected {}", text(&msg));
            return;
        }
    }
    panic!("{tag}: no message crossed the cluster within 5 s");
}

#[test]
fn cluster_failover_to_a_discovered_server() {
    let mut cluster = Cluster::start(3);
    let urls = cluster.urls();
    let ports: Vec<u16> = cluster.servers().iter().map(NatsServer::port).collect();
    let (callback, events) = event_recorder();
    let client = options(&urls[0]).event_callback(callback).connect().unwrap();
    // It was given one URL and learned the others from INFO.
    let (first, before) = wait_event(&events, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
    assert_eq!(first, Event::Connected(urls[0].clone()));
    // The first INFO already lists the cluster, so the discovery is reported during the handshake.
    if !before.contains(&Event::DiscoveredServers) {
        wait_event(&events, WAIT, "DiscoveredServers", |e| *e == Event::DiscoveredServers);
    }
    let info = client.server_info().unwrap();
    assert_eq!(info.port, ports[0]);
    for port in &ports[1..] {
        let addr = format!("127.0.0.1:{port}");
        assert!(info.connect_urls.contains(&addr), "{addr} missing from {:?}", info.connect_urls);
    }

    let mut sub = client.subscribe("cluster.x").unwrap();
    let responder = client.subscribe_with("cluster.svc", |m| drop(m.respond("pong"))).unwrap();
    client.flush().unwrap();
    let other = options(&urls[2]).ignore_discovered_servers().connect().unwrap();
    cross_cluster(&other, "cluster.x", &mut sub, "before");

    cluster.kill(0);
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    let Event::Reconnected(url) = reconnected else { unreachable!() };
    assert!(url == urls[1] || url == urls[2], "reconnected to {url}, expected one of {:?}", &urls[1..]);
    assert_ne!(client.server_info().unwrap().port, ports[0]);
    assert_eq!(client.statistics().reconnects, 1);

    // Subscriptions were replayed on the new server and interest crosses the routes again.
    cross_cluster(&other, "cluster.x", &mut sub, "after");
    let mut answered = false;
    for _ in 0..50 {
        match other.request_with_timeout("cluster.svc", "ping", Duration::from_millis(500)) {
            Ok(reply) => {
                assert_eq!(text(&reply), "pong");
                answered = true;
                break;
            }
            Err(Error::NoResponders | Error::Timeout) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("request across the cluster: {e:?}"),
        }
    }
    assert!(answered, "the responder was not reachable across the cluster after failover");
    // And the client's own requests travel from its new server.
    let _svc2 = other.subscribe_with("cluster.svc2", |m| drop(m.respond("pong2"))).unwrap();
    other.flush().unwrap();
    wait_until(WAIT, "a request from the failed-over client is answered", || {
        client.request_with_timeout("cluster.svc2", "x", Duration::from_millis(500)).is_ok()
    });
    responder.unsubscribe().unwrap();
}

//! A server stopped and restarted on the same port: what the client replays and what it buffered meanwhile.

use std::time::Duration;

use conformance::{wait_event, TestClient, TestSubscription as _};
use nats_client::seam::Subscription as _;
use nats_client::Event;
use nats_server_harness::{NatsServer, ServerVersion};

use crate::common::{connect, read_to_end, recv, serve, take_queued, text, WAIT};
use crate::{is_disconnected, is_reconnected, RECONNECT_WAIT};

pub(crate) fn restart_resubscribes_with_the_remaining_max_and_sends_buffered_publishes<C: TestClient>() {
    let mut server = NatsServer::start();
    let client: C = connect(&server);
    let events = client.events();
    let mut limited = client.subscribe("rc.x", None).unwrap();
    let mut all = client.subscribe("rc.x", None).unwrap();
    let mut members = [client.subscribe("rc.x", Some("g")).unwrap(), client.subscribe("rc.x", Some("g")).unwrap()];
    let gone = client.subscribe("rc.x", None).unwrap();
    limited.unsubscribe_after(10).unwrap();
    for i in 0..3 {
        client.publish("rc.x", None, None, i.to_string().into()).unwrap();
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
        client.publish("rc.x", None, None, i.to_string().into()).unwrap();
    }
    server.restart();
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(reconnected, Event::Reconnected(server.url()));
    for i in 7..20 {
        client.publish("rc.x", None, None, i.to_string().into()).unwrap();
    }
    client.flush().unwrap();

    // Seven more (the four buffered first), then the subscription ends: the max is counted across connections.
    let rest: Vec<String> = read_to_end(&mut limited).iter().map(text).collect();
    let expected: Vec<String> = (3..10).map(|i| i.to_string()).collect();
    assert_eq!(rest, expected);
    assert!(limited.next_message().is_none(), "the subscription stays ended after the max");
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

pub(crate) fn requests_and_flushes_made_while_disconnected_complete_after_reconnect<C: TestClient>() {
    let mut server = NatsServer::start();
    let client: C = connect(&server);
    let events = client.events();
    let _svc = serve(client.subscribe("rc.svc", None).unwrap(), |m| drop(m.respond(format!("re:{}", text(&m)))));
    // The request inbox exists before the outage too.
    assert_eq!(text(&client.request_default("rc.svc", None, "before".into()).unwrap()), "re:before");

    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    let (c1, c2) = (client.clone(), client.clone());
    let request = std::thread::spawn(move || c1.request("rc.svc", None, "during".into(), RECONNECT_WAIT));
    let flush = std::thread::spawn(move || c2.flush_timeout(RECONNECT_WAIT));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!request.is_finished() && !flush.is_finished(), "a request or flush completed while disconnected");
    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(text(&request.join().unwrap().expect("the buffered request is answered")), "re:during");
    flush.join().unwrap().expect("the buffered flush completes");
    assert_eq!(text(&client.request_default("rc.svc", None, "after".into()).unwrap()), "re:after");
}

pub(crate) fn drain_while_disconnected_waits_for_the_reconnect_and_delivers_buffered_publishes<C: TestClient>() {
    let mut server = NatsServer::start();
    let client: C = connect(&server);
    let events = client.events();
    let mut sub = client.subscribe("rc.drain", None).unwrap();
    client.flush().unwrap();
    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    for i in 0..20 {
        client.publish("rc.drain", None, None, i.to_string().into()).unwrap();
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

/// Many subscriptions (one with a max) and a request inbox are replayed after a restart, against either
/// server build.
fn many_subscriptions_survive_a_restart<C: TestClient>(version: ServerVersion) {
    const SUBS: usize = 200;
    let mut server = NatsServer::builder().version(version).start().expect("server starts");
    let client: C = connect(&server);
    let events = client.events();
    let mut subs: Vec<_> = (0..SUBS).map(|i| client.subscribe(&format!("many.{i}"), None).unwrap()).collect();
    let mut limited = client.subscribe("many.*", None).unwrap();
    limited.unsubscribe_after(SUBS as u64 + 5).unwrap();
    let svc = client.subscribe("many.svc", None).unwrap();
    let service: C = connect(&server);
    // Before the restart: one message for each, through the wildcard too.
    for i in 0..SUBS {
        service.publish(&format!("many.{i}"), None, None, "before".into()).unwrap();
    }
    service.flush().unwrap();
    client.flush().unwrap();
    for sub in subs.iter_mut() {
        assert_eq!(take_queued(sub).len(), 1);
    }
    assert_eq!(take_queued(&mut limited).len(), SUBS);
    drop(service);

    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    server.restart();
    wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    // The replayed subscriptions are on the server once a round trip behind them has come back; publishes from
    // another connection before that could race them (seen once, on 2.9).
    client.flush().unwrap();
    let service: C = connect(&server);
    for i in 0..SUBS {
        service.publish(&format!("many.{i}"), None, None, "after".into()).unwrap();
    }
    service.flush().unwrap();
    client.flush().unwrap();
    for (i, sub) in subs.iter_mut().enumerate() {
        let got: Vec<String> = take_queued(sub).iter().map(text).collect();
        assert_eq!(got, ["after"], "{version:?}: subscription many.{i} after the restart");
    }
    // The wildcard had five left of its max.
    let rest = read_to_end(&mut limited);
    assert_eq!(rest.len(), 5, "{version:?}: the remaining max was not replayed");
    // And the request inbox works on the new connection.
    let _svc = serve(svc, |m| drop(m.respond("pong")));
    client.flush().unwrap();
    let reply = service.request_default("many.svc", None, "ping".into()).unwrap();
    assert_eq!(text(&reply), "pong");
    assert_eq!(text(&client.request_default("many.svc", None, "ping".into()).unwrap()), "pong");
}

pub(crate) fn many_subscriptions_survive_a_restart_of_a_current_server<C: TestClient>() {
    many_subscriptions_survive_a_restart::<C>(ServerVersion::Current);
}

pub(crate) fn many_subscriptions_survive_a_restart_of_an_old_server<C: TestClient>() {
    many_subscriptions_survive_a_restart::<C>(ServerVersion::Old);
}

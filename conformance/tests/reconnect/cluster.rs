//! Failover inside a cluster, to a server the client learned from INFO.

use std::time::{Duration, Instant};

use conformance::{wait_event, TestClient};
use nats_client::{Error, Event};
use nats_server_harness::{Cluster, NatsServer};

use crate::common::{event_recorder, options, publish_until_received, serve, text, wait_recorded, WAIT};
use crate::{is_disconnected, is_reconnected, RECONNECT_WAIT};

pub(crate) fn cluster_failover_to_a_discovered_server<C: TestClient>() {
    let mut cluster = Cluster::start(3);
    let urls = cluster.urls();
    let ports: Vec<u16> = cluster.servers().iter().map(NatsServer::port).collect();
    let (callback, recorded) = event_recorder();
    let client = C::connect(options(&urls[0]).event_callback(callback)).unwrap();
    // It was given one URL and learned the others from INFO.
    let (first, before) = wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
    assert_eq!(first, Event::Connected(urls[0].clone()));
    // The first INFO already lists the cluster, so the discovery is reported during the handshake.
    if !before.contains(&Event::DiscoveredServers) {
        wait_recorded(&recorded, WAIT, "DiscoveredServers", |e| *e == Event::DiscoveredServers);
    }
    let info = client.server_info().unwrap();
    assert_eq!(info.port, ports[0]);
    for port in &ports[1..] {
        let addr = format!("127.0.0.1:{port}");
        assert!(info.connect_urls.contains(&addr), "{addr} missing from {:?}", info.connect_urls);
    }

    let mut sub = client.subscribe("cluster.x", None).unwrap();
    let _responder = serve(client.subscribe("cluster.svc", None).unwrap(), |m| drop(m.respond("pong")));
    client.flush().unwrap();
    let other = C::connect(options(&urls[2]).ignore_discovered_servers()).unwrap();
    publish_until_received(&other, "cluster.x", &mut sub, "before");

    let events = client.events();
    cluster.kill(0);
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    let Event::Reconnected(url) = reconnected else { unreachable!() };
    assert!(url == urls[1] || url == urls[2], "reconnected to {url}, expected one of {:?}", &urls[1..]);
    assert_ne!(client.server_info().unwrap().port, ports[0]);
    assert_eq!(client.statistics().reconnects, 1);

    // Subscriptions were replayed on the new server and interest crosses the routes again.
    publish_until_received(&other, "cluster.x", &mut sub, "after");
    let mut answered = false;
    for _ in 0..50 {
        match other.request("cluster.svc", None, "ping".into(), Duration::from_millis(500)) {
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
    let _svc2 = serve(other.subscribe("cluster.svc2", None).unwrap(), |m| drop(m.respond("pong2")));
    other.flush().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match client.request("cluster.svc2", None, "x".into(), Duration::from_millis(500)) {
            Ok(reply) => {
                assert_eq!(text(&reply), "pong2");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "the failed-over client's request: {e:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

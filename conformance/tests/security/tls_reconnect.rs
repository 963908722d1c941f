//! Reconnecting over TLS: after a restart, to a discovered cluster member, never in plaintext when TLS is
//! required, and with backoff while the certificate is refused.

use std::time::Duration;

use conformance::{wait_event, TestClient};
use nats_client::Event;
use nats_proto::ConnectionError;
use nats_proto::ReconnectPolicy;
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::{Cluster, NatsServer};

use crate::common::{event_recorder, publish_until_received, recv, serve, text, wait_recorded, WAIT};
use crate::support::{
    is_connect_failed, is_disconnected, is_reconnected, must_connect, pattern, round_trip, start, tls_server, trusting,
    BOTH, RECONNECT_WAIT,
};

pub(crate) fn reconnects_over_tls_after_a_restart<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let mut server = tls_server(version, &fixture);
        for (n, url) in [server.tls_url(), server.url()].into_iter().enumerate() {
            let what = format!("{version:?} {url}");
            let client: C = must_connect(trusting(&url, &fixture), &server, &what);
            let events = client.events();
            let mut sub = client.subscribe("sec.rc", None).unwrap();
            let _svc = serve(client.subscribe("sec.rc.svc", None).unwrap(), |m| drop(m.respond("here")));
            client.publish("sec.rc", None, None, "before".into()).unwrap();
            assert_eq!(text(&recv(&mut sub, "before the restart")), "before");

            server.stop();
            let (lost, _) = wait_event(&events, WAIT, "Disconnected", is_disconnected);
            assert!(
                matches!(lost, Event::Disconnected(ConnectionError::TransportClosed | ConnectionError::Tls(_))),
                "{what}: {lost:?}"
            );
            // Buffered while down, sent over the new TLS session.
            client.publish("sec.rc", None, None, "buffered".into()).unwrap();
            server.restart();
            let (reconnected, seen) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
            assert_eq!(reconnected, Event::Reconnected(url.clone()), "{what}");
            assert!(
                !seen.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::Tls(_), .. })),
                "{what}: a TLS failure while reconnecting: {seen:?}"
            );
            // The subscription was replayed over the new TLS session; requests work too.
            client.publish("sec.rc", None, None, "after".into()).unwrap();
            client.flush().unwrap();
            let got: Vec<String> = [recv(&mut sub, "buffered"), recv(&mut sub, "after")].iter().map(text).collect();
            assert_eq!(got, ["buffered", "after"], "{what}");
            assert_eq!(text(&client.request_default("sec.rc.svc", None, "?".into()).unwrap()), "here", "{what}");
            round_trip(&client, &format!("rc{version:?}{n}"));
            // A large message still crosses intact on the new session.
            let payload = pattern(600_000, 3);
            client.publish("sec.rc", None, None, (&payload).into()).unwrap();
            assert!(recv(&mut sub, "large after reconnect").payload() == &payload[..], "{what}");
            let stats = client.statistics();
            assert_eq!((stats.connects, stats.reconnects), (2, 1), "{what}");
            client.drain().unwrap();
        }
    }
}

/// The cluster harness has no TLS setting of its own, but every member takes raw config text: the `tls` block
/// below points at the fixture's files, which outlive the cluster in this case.
pub(crate) fn tls_cluster_failover_to_a_discovered_server<C: TestClient>() {
    let fixture = TlsFixture::new();
    let tls_block = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  timeout: 5\n}}",
        fixture.server_cert_path().display(),
        fixture.server_key_path().display(),
        fixture.ca_path().display()
    );
    let mut cluster =
        Cluster::builder(2).config(&tls_block).start().unwrap_or_else(|e| panic!("TLS cluster did not start: {e}"));
    let ports: Vec<u16> = cluster.servers().iter().map(NatsServer::port).collect();
    let first = cluster.server(0).tls_url();
    let (callback, events) = event_recorder();
    let client = C::connect(trusting(&first, &fixture).event_callback(callback)).unwrap();
    let (connected, before) = wait_recorded(&events, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
    assert_eq!(connected, Event::Connected(first.clone()));
    if !before.contains(&Event::DiscoveredServers) {
        wait_recorded(&events, WAIT, "DiscoveredServers", |e| *e == Event::DiscoveredServers);
    }
    let other_addr = format!("127.0.0.1:{}", ports[1]);
    assert!(client.server_info().unwrap().connect_urls.contains(&other_addr));

    let mut sub = client.subscribe("sec.cluster", None).unwrap();
    client.flush().unwrap();
    cluster.kill(0);
    wait_recorded(&events, WAIT, "Disconnected", is_disconnected);
    // The discovered URL has no scheme: it is reached the way the current server was, with TLS required.
    let (reconnected, _) = wait_recorded(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(reconnected, Event::Reconnected(format!("tls://{other_addr}")));
    assert_eq!(client.server_info().unwrap().port, ports[1]);
    // A second client on the surviving server reaches the failed-over subscription. `Reconnected` is reported
    // before the replayed SUB is written (seen once in CI: a single publish raced it), so it publishes until one
    // arrives, without this client writing anything that would push a stuck replay out.
    let other = C::connect(trusting(&cluster.server(1).tls_url(), &fixture)).unwrap();
    publish_until_received(&other, "sec.cluster", &mut sub, "after failover");
    round_trip(&client, "clusterafter");
}

pub(crate) fn tls_is_never_dropped_on_reconnect_when_required<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let mut tls = tls_server(version, &fixture);
        let port = tls.port();
        let (cb_url, by_url) = event_recorder();
        let (cb_opt, by_option) = event_recorder();
        let url_client: C = must_connect(trusting(&tls.tls_url(), &fixture).event_callback(cb_url), &tls, "tls://");
        let opt_client: C = must_connect(
            trusting(&tls.url(), &fixture).require_tls(true).event_callback(cb_opt),
            &tls,
            "nats:// + require_tls",
        );
        tls.stop();
        // A plaintext server takes over the same port: neither client may talk to it.
        let plain = start(NatsServer::builder().version(version).port(port));
        for (events, what) in [(&by_url, "tls://"), (&by_option, "require_tls")] {
            let (failed, seen) = wait_recorded(events, RECONNECT_WAIT, "a refused reconnect", |e| {
                matches!(e, Event::ConnectFailed { error: ConnectionError::TlsUnavailable, .. })
            });
            assert!(matches!(failed, Event::ConnectFailed { .. }), "{version:?} {what}");
            assert!(!seen.iter().any(is_reconnected), "{version:?} {what}: reconnected in plaintext: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
        for (events, what) in [(&by_url, "tls://"), (&by_option, "require_tls")] {
            let later: Vec<Event> = events.try_iter().collect();
            assert!(!later.iter().any(is_reconnected), "{version:?} {what}: reconnected in plaintext: {later:?}");
        }
        assert_eq!(url_client.statistics().reconnects, 0);
        assert_eq!(opt_client.statistics().reconnects, 0);
        drop(plain);
    }
}

pub(crate) fn retry_on_initial_connect_with_an_untrusted_certificate_backs_off<C: TestClient>() {
    let fixture = TlsFixture::new();
    let untrusted = fixture.untrusted_server();
    let server = start(NatsServer::builder().tls(ServerTls::new(untrusted.cert_pem(), untrusted.key_pem())));
    let (callback, events) = event_recorder();
    let opts = trusting(&server.tls_url(), &fixture)
        .reconnect_policy(ReconnectPolicy::default())
        .retry_on_initial_connect()
        .event_callback(callback);
    let client = C::connect(opts).expect("with retry_on_initial_connect, connect returns at once");
    std::thread::sleep(Duration::from_millis(1500));
    let failures: Vec<Event> = events.try_iter().filter(is_connect_failed).collect();
    assert!(failures.len() >= 2 && failures.len() < 15, "{} attempts in 1.5 s: {failures:?}", failures.len());
    for e in &failures {
        assert!(
            matches!(e, Event::ConnectFailed { error: ConnectionError::Tls(m), .. } if m.contains("UnknownIssuer"))
        );
    }
    assert!(!client.is_closed());
}

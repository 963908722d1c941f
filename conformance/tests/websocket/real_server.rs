//! Against a real nats-server's websocket listener.

use std::time::Duration;

use conformance::{wait_event, TestClient};
use nats_client::{Error, Event};
use nats_proto::{ConnectionError, Headers};
use nats_server_harness::{Cluster, NatsServer, ServerTls, ServerVersion, TlsFixture, WebSocket};

use crate::common::{echo, recv, take_queued, text, WAIT};
use crate::{is_disconnected, is_reconnected, ws_options, BROWSER, RECONNECT_WAIT};

fn ws_server() -> NatsServer {
    NatsServer::builder().websocket(WebSocket::plain()).start().expect("a server with a websocket listener")
}

#[track_caller]
fn connect_ws<C: TestClient>(options: nats_client::ConnectOptions) -> C {
    C::connect(options).unwrap_or_else(|e| panic!("{}: connect over websocket: {e}", C::NAME))
}

/// Publish, subscribe (wildcards, headers, queue groups) and request, with frames unmasked (the default: the
/// server agrees to `Nats-No-Masking`) and masked (`websocket_always_mask`). nats-server unmasks only what
/// it did not agree to take unmasked, so a client that masked wrongly would be cut off at its first frame.
pub(crate) fn publish_subscribe_and_request_masked_and_not<C: TestClient>() {
    let server = ws_server();
    for always_mask in [false, true] {
        let mut options = ws_options(&server.ws_url());
        if always_mask {
            options = options.websocket_always_mask();
        }
        let client: C = connect_ws(options);
        let info = client.server_info().expect("INFO over websocket");
        assert!(info.max_payload > 0);
        let mut sub = client.subscribe("ws.*", None).unwrap();
        let mut members = [client.subscribe("ws.q", Some("g")).unwrap(), client.subscribe("ws.q", Some("g")).unwrap()];
        let _responder = echo(&client, "ws.svc", None, "re: ");
        for i in 0..5 {
            client.publish("ws.a", None, None, format!("m{i}").into()).unwrap();
        }
        let mut headers = Headers::new();
        headers.insert("X-Over", "websocket").unwrap();
        client.publish("ws.h", None, Some(&headers), "with headers".into()).unwrap();
        for i in 0..10 {
            client.publish("ws.q", None, None, i.to_string().into()).unwrap();
        }
        for i in 0..5 {
            assert_eq!(text(&recv(&mut sub, "a message over websocket")), format!("m{i}"));
        }
        let msg = recv(&mut sub, "a message with headers");
        assert_eq!(
            (text(&msg).as_str(), msg.headers().and_then(|h| h.get("X-Over"))),
            ("with headers", Some("websocket"))
        );
        let reply = client.request("ws.svc", None, "ping".into(), WAIT).unwrap();
        assert_eq!(text(&reply), "re: ping", "always_mask: {always_mask}");
        client.flush().unwrap();
        assert_eq!(members.iter_mut().map(|m| take_queued(m).len()).sum::<usize>(), 10);
        let stats = client.statistics();
        assert!(stats.out_msgs >= 17 && stats.in_msgs >= 16, "{stats:?}");
        client.close();
    }
}

/// Messages from empty to 1 MiB (the largest spans 16 masked frames out, hundreds of the server's 4 KiB frames
/// in), and a burst of small ones, whose ops the server packs into frames with ops cut at every boundary.
pub(crate) fn large_messages_and_bursts_cross_4k_frames_split_mid_op<C: TestClient>() {
    let server = ws_server();
    for always_mask in [false, true] {
        let mut options = ws_options(&server.ws_url()).websocket_header("User-Agent", BROWSER);
        if always_mask {
            options = options.websocket_always_mask();
        }
        let client: C = connect_ws(options);
        let max = client.max_payload();
        let mut sub = client.subscribe("big", None).unwrap();
        let sizes = [0, 1, 4085, 4096, 4097, 65_535, 65_536, 200_001, max];
        for &size in &sizes {
            let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            client.publish("big", None, None, body.into()).unwrap();
        }
        for &size in &sizes {
            let msg = recv(&mut sub, "a large message");
            assert_eq!(msg.payload().len(), size);
            assert!(msg.payload().iter().enumerate().all(|(i, b)| *b == (i % 251) as u8), "{size} bytes intact");
        }
        let mut burst = client.subscribe("burst", None).unwrap();
        for i in 0..3000 {
            client.publish("burst", None, None, format!("burst message number {i}").into()).unwrap();
        }
        client.flush().unwrap();
        let got: Vec<String> = take_queued(&mut burst).iter().map(text).collect();
        let expected: Vec<String> = (0..3000).map(|i| format!("burst message number {i}")).collect();
        assert_eq!(got, expected, "always_mask: {always_mask}");
        client.close();
    }
}

/// The server stops and comes back on the same ports: the client reconnects over websocket, replays its
/// subscription, and sends what it buffered meanwhile.
pub(crate) fn reconnects_after_the_server_restarts<C: TestClient>() {
    let mut server = ws_server();
    let client: C = connect_ws(ws_options(&server.ws_url()));
    let events = client.events();
    let mut sub = client.subscribe("rc.ws", None).unwrap();
    client.publish("rc.ws", None, None, "before".into()).unwrap();
    assert_eq!(text(&recv(&mut sub, "before the restart")), "before");
    server.stop();
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    client.publish("rc.ws", None, None, "buffered".into()).unwrap();
    server.restart();
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(reconnected, Event::Reconnected(server.ws_url()));
    client.publish("rc.ws", None, None, "after".into()).unwrap();
    assert_eq!(text(&recv(&mut sub, "buffered during the outage")), "buffered");
    assert_eq!(text(&recv(&mut sub, "after the restart")), "after");
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (2, 1));
}

/// `wss://`: TLS under the WebSocket, checked against the fixture's CA; an untrusted CA is a TLS error.
pub(crate) fn wss_with_the_fixtures_ca_and_refuses_an_untrusted_one<C: TestClient>() {
    let fixture = TlsFixture::new();
    let server = NatsServer::builder()
        .websocket(WebSocket::tls(fixture.server().cert_pem(), fixture.server().key_pem()))
        .start()
        .expect("a server with a wss listener");
    let url = server.ws_url();
    assert!(url.starts_with("wss://"));
    let client: C = connect_ws(ws_options(&url).add_root_certificates_pem(fixture.ca_pem().as_bytes()));
    let _responder = echo(&client, "wss.svc", None, "secure ");
    assert_eq!(text(&client.request("wss.svc", None, "hello".into(), WAIT).unwrap()), "secure hello");
    let body = vec![7u8; 300_000];
    let mut sub = client.subscribe("wss.big", None).unwrap();
    client.publish("wss.big", None, None, body.clone().into()).unwrap();
    assert_eq!(recv(&mut sub, "a large message over wss").payload(), &body[..]);
    client.close();

    let refused = C::connect(
        ws_options(&url).add_root_certificates_pem(fixture.untrusted_ca_pem().as_bytes()).max_reconnects(Some(1)),
    );
    assert!(matches!(refused, Err(Error::Connect(ConnectionError::Tls(_)))), "{:?}", refused.err());
}

/// A server whose NATS port requires TLS and whose websocket port does not. nats-server 2.9 still says
/// `tls_required` in the INFO it sends over that websocket (it describes the NATS port; 2.15 no longer says
/// so): the client must not try to upgrade inside the websocket, on either server.
pub(crate) fn a_plain_ws_port_works_while_the_nats_port_requires_tls<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in [ServerVersion::Current, ServerVersion::Old] {
        let server = NatsServer::builder()
            .version(version)
            .tls(ServerTls::from_fixture(&fixture))
            .websocket(WebSocket::plain())
            .start()
            .expect("a TLS server with a plain websocket listener");
        let client: C = connect_ws(ws_options(&server.ws_url()));
        let says_tls = client.server_info().is_some_and(|i| i.tls_required);
        assert!(says_tls || version == ServerVersion::Current, "the 2.9 server's INFO says tls_required");
        let mut sub = client.subscribe("mixed", None).unwrap();
        client.publish("mixed", None, None, "plain websocket".into()).unwrap();
        assert_eq!(text(&recv(&mut sub, "over the plain websocket")), "plain websocket", "{version:?}");
        client.close();
    }
}

/// Over websocket, the servers INFO lists are the cluster's websocket listeners: when the one in use dies, the
/// client goes on over websocket to one it was never told about.
pub(crate) fn fails_over_to_a_websocket_url_learned_from_the_cluster<C: TestClient>() {
    let mut cluster = Cluster::builder(2).websocket(WebSocket::plain()).start().expect("a cluster with websockets");
    let first = cluster.server(0).ws_url();
    let second = cluster.server(1).ws_url();
    let client: C = connect_ws(ws_options(&first));
    let events = client.events();
    let learned = client.server_info().map(|i| i.connect_urls).unwrap_or_default();
    let port = cluster.server(1).ws_port().expect("a websocket port").to_string();
    assert!(learned.iter().any(|u| u.ends_with(&format!(":{port}"))), "INFO lists {learned:?}, not {second}");
    let mut sub = client.subscribe("fo", None).unwrap();
    client.flush().unwrap();
    cluster.kill(0);
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(reconnected, Event::Reconnected(second));
    client.publish("fo", None, None, "via the learned url".into()).unwrap();
    assert_eq!(text(&recv(&mut sub, "after failing over")), "via the learned url");
}

/// `ws://` is plain text: with TLS required it is refused before anything is dialed.
pub(crate) fn ws_with_tls_required_is_refused_before_dialing<C: TestClient>() {
    let started = std::time::Instant::now();
    let result = C::connect(ws_options("ws://127.0.0.1:1").require_tls(true));
    assert!(matches!(&result, Err(Error::Options(why)) if why.contains("wss://")), "{:?}", result.err());
    assert!(started.elapsed() < Duration::from_secs(1));
}

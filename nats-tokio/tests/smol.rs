//! The async client under smol, with no tokio runtime anywhere: connect, publish, subscribe, request,
//! headers, no-responders, flush and drain against a real server; and WebSocket, plain and over TLS.

use std::time::Duration;

use nats_server_harness::NatsServer;
use nats_tokio::{ConnectOptions, Error, Headers};

#[test]
fn the_client_runs_under_smol_without_tokio() {
    let server = NatsServer::start();
    smol::block_on(async {
        // A tokio call without a tokio runtime panics; none may happen below.
        assert!(tokio::runtime::Handle::try_current().is_err(), "no tokio runtime in this test");
        let client = nats_tokio::connect_smol(ConnectOptions::new().server(&server.url())).await.expect("connect");

        let mut sub = client.subscribe("smol.*").await.unwrap();
        let mut headers = Headers::new();
        headers.insert("X-Runtime", "smol").unwrap();
        client.publish_with_headers("smol.hello", &headers, "hi").await.unwrap();
        client.flush().await.unwrap();
        let msg = sub.next().await.expect("a message");
        assert_eq!((msg.subject().as_str(), msg.payload()), (Some("smol.hello"), &b"hi"[..]));
        assert_eq!(msg.headers().and_then(|h| h.get("X-Runtime")), Some("smol"));

        let mut requests = client.subscribe("smol.echo").await.unwrap();
        let responder = smol::spawn(async move {
            let mut answered = 0;
            while let Some(req) = requests.next().await {
                req.respond(req.payload_bytes()).unwrap();
                answered += 1;
            }
            answered
        });
        for i in 0..20 {
            let body = format!("ping {i}");
            let reply = client.request_with_timeout("smol.echo", body.clone(), Duration::from_secs(2)).await.unwrap();
            assert_eq!(reply.payload(), body.as_bytes());
        }
        assert!(matches!(client.request("nobody.here", "").await, Err(Error::NoResponders)));

        // A request that times out is timed by the core and the driver's smol timer.
        let mut silent = client.subscribe("quiet.silent").await.unwrap();
        let started = std::time::Instant::now();
        let late = client.request_with_timeout("quiet.silent", "", Duration::from_millis(200)).await;
        assert!(matches!(late, Err(Error::Timeout)), "{late:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "timed out after {:?}", started.elapsed());
        assert!(silent.try_next().is_some(), "the request did reach the silent subscriber");

        client.drain().await.unwrap();
        assert_eq!(responder.await, 20, "every request was answered, then the drain ended the responder");
        assert!(client.is_closed());
        assert!(matches!(client.publish("smol.hello", "late").await, Err(Error::Closed)));
    });
}

/// WebSocket under smol, plain and over TLS, with no tokio runtime: the upgrade, a message larger than a
/// frame, and a request.
#[test]
fn websocket_runs_under_smol_plain_and_with_tls() {
    use nats_server_harness::{TlsFixture, WebSocket};
    let fixture = TlsFixture::new();
    let plain = NatsServer::builder().websocket(WebSocket::plain()).start().expect("a ws server");
    let secure = NatsServer::builder()
        .websocket(WebSocket::tls(fixture.server().cert_pem(), fixture.server().key_pem()))
        .start()
        .expect("a wss server");
    smol::block_on(async {
        assert!(tokio::runtime::Handle::try_current().is_err(), "no tokio runtime in this test");
        for options in [
            ConnectOptions::new().server(&plain.ws_url()),
            ConnectOptions::new().server(&secure.ws_url()).add_root_certificates_pem(fixture.ca_pem().as_bytes()),
        ] {
            let client = nats_tokio::connect_smol(options).await.expect("connect over websocket");
            let mut sub = client.subscribe("smol.ws").await.unwrap();
            let body = vec![b'w'; 150_000];
            client.publish("smol.ws", body.clone()).await.unwrap();
            client.publish("smol.ws", "small").await.unwrap();
            assert_eq!(sub.next().await.expect("the large message").payload(), &body[..]);
            assert_eq!(sub.next().await.expect("the small one").payload(), b"small");
            let mut requests = client.subscribe("smol.ws.echo").await.unwrap();
            let responder = smol::spawn(async move {
                let req = requests.next().await.expect("a request");
                req.respond(req.payload_bytes()).unwrap();
            });
            let reply = client.request_with_timeout("smol.ws.echo", "hi", Duration::from_secs(2)).await.unwrap();
            assert_eq!(reply.payload(), b"hi");
            responder.await;
            client.drain().await.unwrap();
        }
    });
}

//! TLS with the async client against real nats-servers: the case that is this client's alone, TLS on the
//! smol runtime.
//!
//! Everything both clients do alike (TLS with trusted and untrusted certificates, mutual TLS, TLS-first,
//! reconnecting over TLS, every credential kind, permissions) is in the conformance suite
//! (`conformance/tests/security/`), written once and run against both clients (there, on tokio).

mod common;

use std::future::Future;
use std::time::Duration;

use common::{options, text, WAIT};
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::{NatsServer, ServerBuilder, ServerVersion};
use nats_tokio::ConnectOptions;

const BOTH: [ServerVersion; 2] = [ServerVersion::Current, ServerVersion::Old];

fn start(builder: ServerBuilder) -> NatsServer {
    builder.start().unwrap_or_else(|e| panic!("nats-server did not start: {e}"))
}

/// A TLS server of `version` with the fixture's trusted server certificate.
fn tls_server(version: ServerVersion, fixture: &TlsFixture) -> NatsServer {
    start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(fixture)))
}

/// Test options trusting the fixture's CA (from its file).
fn trusting(url: &str, fixture: &TlsFixture) -> ConnectOptions {
    options(url).add_root_certificates(fixture.ca_path())
}

/// The payload of message `i` of a burst: its number, then filler, so that reordering, loss, duplication
/// and corruption all show.
fn burst_payload(i: usize) -> String {
    let mut s = format!("{i:06}:");
    while s.len() < 200 {
        s.push(char::from(b'a' + (i + s.len()) as u8 % 26));
    }
    s
}

/// A 1 MiB payload with a pattern that is not periodic in any power of two (so a record dropped or
/// repeated at a TLS record boundary cannot line up by accident).
fn big_payload() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect()
}

/// Completes within `limit` on any runtime (smol has no tokio timer), or panics naming `what`.
async fn smol_within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    let timed = async {
        smol::Timer::after(limit).await;
        None
    };
    smol::future::or(async { Some(fut.await) }, timed)
        .await
        .unwrap_or_else(|| panic!("{what} did not complete within {limit:?}"))
}

// Not in the suite: the smol runtime is this client's alone (the suite drives it on tokio).
#[test]
fn tls_round_trip_on_smol() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        smol::block_on(async {
            assert!(tokio::runtime::Handle::try_current().is_err(), "no tokio runtime in this test");
            for url in [server.tls_url(), server.url()] {
                let what = format!("smol {version:?} {url}");
                let connecting = nats_tokio::connect_smol(trusting(&url, &fixture));
                let client = smol_within(WAIT, &what, connecting).await.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(client.server_info().unwrap().tls_required);

                let mut sub = client.subscribe("smol.tls.sub.*").await.unwrap();
                client.publish("smol.tls.sub.a", "hi").await.unwrap();
                let msg = smol_within(WAIT, &what, sub.next()).await.expect("a message");
                assert_eq!((common::subject(&msg), text(&msg)), ("smol.tls.sub.a".to_owned(), "hi".to_owned()));

                // A request with a 1 MiB body, echoed.
                let mut svc = client.subscribe("smol.tls.svc").await.unwrap();
                let responder = smol::spawn(async move {
                    let req = svc.next().await.expect("the request");
                    req.respond(req.payload_bytes()).unwrap();
                });
                let big = big_payload();
                let reply = smol_within(WAIT, &what, client.request("smol.tls.svc", big.clone())).await.unwrap();
                assert!(reply.payload() == &big[..], "{what}: the echo differs");
                smol_within(WAIT, &what, responder).await;

                // A burst, in order.
                for i in 0..2_000 {
                    client.publish("smol.tls.sub.b", burst_payload(i)).await.unwrap();
                }
                smol_within(WAIT, &what, client.flush()).await.unwrap();
                for i in 0..2_000 {
                    let msg = smol_within(WAIT, &what, sub.next()).await.expect("a burst message");
                    assert_eq!(text(&msg), burst_payload(i), "{what}: message {i}");
                }
                smol_within(WAIT, &what, client.drain()).await.unwrap();
            }
        });
    }
}

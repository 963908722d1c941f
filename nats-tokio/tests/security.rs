//! TLS and authentication with the async client against real nats-servers (2.15.1 and, where the feature
//! exists there too, 2.9.10): trusted and untrusted certificates, upgrades from `nats://`, mutual TLS,
//! TLS-first, reconnecting over TLS, large payloads and bursts through the TLS layer (on tokio and on smol),
//! tokens, users and passwords, nkeys, JWTs and `.creds` files, the credentials callback, backoff after
//! refused credentials, and permissions.

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    blocking, event_recorder, free_port, next_within, options, recv, text, wait_event, wait_recorded, BoundedExt as _,
    WAIT,
};
use nats_client::rustls;
use nats_proto::{ConnectionError, Credentials, PermissionOp, ReconnectPolicy, ServerError, ServerErrorKind};
use nats_server_harness::auth::{AuthUser, NkeyUser, OperatorFixture, Permissions, UserOptions};
use nats_server_harness::tls::{HandshakeFirst, ServerTls, TlsFixture};
use nats_server_harness::{NatsServer, ServerBuilder, ServerVersion};
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{Client, ConnectOptions, Error, Event, Subscriber};

const BOTH: [ServerVersion; 2] = [ServerVersion::Current, ServerVersion::Old];

/// A connect that must fail does so within this (the options' connect timeout is 2 s); that it made one
/// attempt only, with no retry loop, is checked on its events.
const FAST: Duration = Duration::from_secs(5);

/// Long enough for a restart and a few backoff rounds.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

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

/// Connects or panics naming `what`.
#[track_caller]
fn connect_ok(options: ConnectOptions, what: &str) -> impl Future<Output = Client> + '_ {
    let at = std::panic::Location::caller();
    async move {
        match options.connect().bounded().await {
            Ok(client) => client,
            Err(e) => panic!("{what} (at {at}): connect failed: {e} ({e:?})"),
        }
    }
}

/// Connects expecting a failure within [`FAST`]. Returns the error and every event the connection emitted
/// (up to and including `Closed`), after checking that exactly one attempt was made.
async fn connect_fails(options: ConnectOptions, what: &str) -> (Error, Vec<Event>) {
    let (callback, recorded) = event_recorder();
    let started = Instant::now();
    let result = options.event_callback(callback).connect().within(FAST + WAIT).await;
    let elapsed = started.elapsed();
    let error = match result {
        Ok(client) => panic!("{what}: connected ({client:?}) but should have failed"),
        Err(e) => e,
    };
    assert!(elapsed < FAST, "{what}: failing took {elapsed:?} ({error})");
    let (closed, mut events) = wait_recorded(&recorded, WAIT, "Closed", |e| matches!(e, Event::Closed)).await;
    events.push(closed);
    let attempts = events.iter().filter(|e| matches!(e, Event::ConnectFailed { .. })).count();
    assert_eq!(attempts, 1, "{what}: one attempt only, then give up; events {events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Connected(_) | Event::Reconnected(_))), "{what}: {events:?}");
    (error, events)
}

/// The server error of a connect refused for its credentials.
#[track_caller]
fn auth_refused(error: Error, what: &str) -> ServerError {
    match error {
        Error::Connect(ConnectionError::Server(e)) if e.is_auth_error() => {
            assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation, "{what}: {e:?}");
            e
        }
        other => panic!("{what}: expected Error::Connect(Server(auth error)), got {other:?}"),
    }
}

/// Connects with credentials that must be refused, and checks the refusal: typed, one attempt, fast.
async fn refused(options: ConnectOptions, what: &str) -> ServerError {
    let (error, events) = connect_fails(options, what).await;
    let e = auth_refused(error, what);
    assert!(
        events.iter().any(
            |ev| matches!(ev, Event::ConnectFailed { error: ConnectionError::Server(s), .. } if s.is_auth_error())
        ),
        "{what}: {events:?}"
    );
    e
}

/// `connect` fails at once with `Error::Options` naming `needle`, before any server is contacted: the URL
/// points at a port nobody listens on, so a dial would fail differently.
async fn invalid_option(options: ConnectOptions, needle: &str, secret: Option<&str>, what: &str) {
    let started = Instant::now();
    let result = options.connect().bounded().await;
    match &result {
        Err(Error::Options(why)) => {
            assert!(why.contains(needle), "{what}: {why:?} should mention {needle:?}");
            if let Some(secret) = secret {
                assert!(!why.contains(secret), "{what}: the error leaks the secret: {why:?}");
            }
        }
        other => panic!("{what}: expected Error::Options, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "{what}: took {:?}", started.elapsed());
}

/// `seed` with one character changed: still well-formed base32, but its checksum no longer matches.
fn corrupt(seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Options for a port with nothing on it.
fn nowhere() -> ConnectOptions {
    options(&format!("nats://127.0.0.1:{}", free_port()))
}

/// Publishes to and receives from `prefix.>`, and answers one request: the connection works end to end.
async fn round_trip(client: &Client, prefix: &str, what: &str) {
    let mut sub = client.subscribe(&format!("{prefix}.>")).bounded().await.unwrap();
    client.publish(&format!("{prefix}.a"), format!("hello {what}")).bounded().await.unwrap();
    let msg = recv(&mut sub, what).await;
    assert_eq!((common::subject(&msg), text(&msg)), (format!("{prefix}.a"), format!("hello {what}")), "{what}");

    let service = format!("{prefix}-svc");
    let mut svc = client.subscribe(&service).bounded().await.unwrap();
    let respond = async {
        let req = recv(&mut svc, what).await;
        req.respond(format!("re:{}", text(&req))).unwrap();
    };
    let (reply, ()) = tokio::join!(client.request(&service, "q").bounded(), respond);
    assert_eq!(text(&reply.unwrap_or_else(|e| panic!("{what}: request: {e}"))), "re:q", "{what}");
    // The subscription saw nothing else (the request went to the other subject).
    assert!(sub.try_next().is_none(), "{what}");
}

// ---------------------------------------------------------------------------------------------------------
// TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_trusted_ca_over_tls_urls_and_upgraded_nats_urls() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let urls = [server.tls_url(), server.url(), server.localhost_url("tls"), server.localhost_url("nats")];
        for url in &urls {
            let what = format!("{version:?} {url}");
            let (callback, recorded) = event_recorder();
            let client = connect_ok(trusting(url, &fixture).event_callback(callback), &what).await;
            let info = client.server_info().expect("INFO");
            assert!(info.tls_required, "{what}: {info:?}");
            round_trip(&client, "tls.rt", &what).await;
            let (connected, _) =
                wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_))).await;
            assert_eq!(connected, Event::Connected(url.clone()), "{what}");
            client.drain().bounded().await.unwrap();
        }

        // The CA given as PEM text works the same as the file.
        let client =
            connect_ok(options(&server.tls_url()).add_root_certificates_pem(fixture.ca_pem().as_bytes()), "CA as PEM")
                .await;
        round_trip(&client, "tls.pem", "CA as PEM").await;

        // A rustls configuration given as it is.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(fixture.ca_der().to_vec())).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = connect_ok(options(&server.url()).tls_client_config(config), "custom rustls config").await;
        round_trip(&client, "tls.custom", "custom rustls config").await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_carries_a_one_mib_payload_and_a_burst_complete_and_in_order() {
    const BURST: usize = 20_000;
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let sender = connect_ok(trusting(&server.tls_url(), &fixture), "sender").await;
        let receiver = connect_ok(trusting(&server.url(), &fixture), "receiver").await;
        assert!(sender.max_payload() >= 1 << 20, "{version:?}: max_payload {}", sender.max_payload());

        // 1 MiB each way: the request on one connection, the echo from the other.
        let big = big_payload();
        let mut echo = receiver.subscribe("tls.big").bounded().await.unwrap();
        receiver.flush().bounded().await.unwrap();
        let respond = async {
            let req = recv(&mut echo, "the big request").await;
            assert_eq!(req.payload().len(), big.len(), "{version:?}");
            assert!(req.payload() == &big[..], "{version:?}: the 1 MiB request arrived corrupted");
            let mut reversed = req.payload().to_vec();
            reversed.reverse();
            req.respond(reversed).unwrap();
        };
        let (reply, ()) = tokio::join!(sender.request("tls.big", big.clone()).bounded(), respond);
        let reply = reply.unwrap_or_else(|e| panic!("{version:?}: big request: {e}"));
        let mut expected = big.clone();
        expected.reverse();
        assert_eq!(reply.payload().len(), expected.len(), "{version:?}");
        assert!(reply.payload() == &expected[..], "{version:?}: the 1 MiB reply arrived corrupted");

        // A burst from one connection to the other and back to the sender itself: many messages per TLS
        // record and many records per read on the way in, back-pressure on the way out.
        let mut far = receiver.subscribe("tls.burst").bounded().await.unwrap();
        let mut near = sender.subscribe("tls.burst").bounded().await.unwrap();
        receiver.flush().bounded().await.unwrap();
        sender.flush().bounded().await.unwrap();
        let publish = async {
            for i in 0..BURST {
                sender.publish("tls.burst", burst_payload(i)).await.unwrap();
            }
            sender.flush().await.unwrap();
        };
        async {
            tokio::join!(publish, read_burst(&mut far, BURST, "receiver"), read_burst(&mut near, BURST, "sender"))
        }
        .bounded_long()
        .await;
        sender.flush().bounded().await.unwrap();
        assert!(far.try_next().is_none() && near.try_next().is_none(), "{version:?}: more than the burst arrived");
        let stats = sender.statistics();
        assert_eq!(stats.reconnects, 0, "{version:?}: the connection was lost under load");
        sender.drain().bounded().await.unwrap();
        receiver.drain().bounded().await.unwrap();
    }
}

/// Reads `count` burst messages, checking each is the next one.
async fn read_burst(sub: &mut Subscriber, count: usize, who: &str) {
    for i in 0..count {
        let msg = match next_within(sub, WAIT).await {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("{who}: subscription ended after {i} messages"),
            Err(()) => panic!("{who}: only {i} of {count} messages arrived"),
        };
        assert_eq!(text(&msg), burst_payload(i), "{who}: message {i} wrong or out of order");
    }
    assert_eq!(sub.dropped(), 0, "{who}");
}

/// `.bounded()` with room for a 20,000-message burst on a slow, shared machine.
trait LongBound: Future + Sized {
    #[track_caller]
    fn bounded_long(self) -> common::Bounded<Self> {
        self.within(Duration::from_secs(60))
    }
}

impl<F: Future> LongBound for F {}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_ca_and_wrong_host_fail_fast_with_a_tls_error() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let untrusted = fixture.untrusted_server();
        let server = start(
            NatsServer::builder().version(version).tls(ServerTls::new(untrusted.cert_pem(), untrusted.key_pem())),
        );
        for url in [server.tls_url(), server.url()] {
            let what = format!("{version:?} untrusted CA at {url}");
            let (error, events) = connect_fails(trusting(&url, &fixture), &what).await;
            match &error {
                Error::Connect(ConnectionError::Tls(why)) => {
                    let why = why.to_lowercase();
                    assert!(why.contains("unknownissuer") || why.contains("unknown issuer"), "{what}: {why}");
                }
                other => panic!("{what}: expected Error::Connect(Tls), got {other:?}"),
            }
            assert!(
                events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::Tls(_), .. })),
                "{what}: {events:?}"
            );
        }

        // Without any CA option the system's trust store is used, which does not know the fixture's CA.
        let server = tls_server(version, &fixture);
        let what = format!("{version:?} system roots");
        let (error, _) = connect_fails(options(&server.tls_url()), &what).await;
        assert!(matches!(error, Error::Connect(ConnectionError::Tls(_))), "{what}: {error:?}");

        // Signed by the trusted CA, but for another name.
        let wrong = fixture.wrong_host_server();
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::new(wrong.cert_pem(), wrong.key_pem())));
        for url in [server.tls_url(), server.localhost_url("tls")] {
            let what = format!("{version:?} wrong host at {url}");
            let (error, _) = connect_fails(trusting(&url, &fixture), &what).await;
            match &error {
                Error::Connect(ConnectionError::Tls(why)) => {
                    let lower = why.to_lowercase();
                    assert!(lower.contains("not valid for name") || lower.contains("notvalidforname"), "{what}: {why}");
                }
                other => panic!("{what}: expected Error::Connect(Tls), got {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_accept_any_server_certificate_connects_to_untrusted_servers() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        for (name, pair) in [("untrusted CA", fixture.untrusted_server()), ("wrong host", fixture.wrong_host_server())]
        {
            let server =
                start(NatsServer::builder().version(version).tls(ServerTls::new(pair.cert_pem(), pair.key_pem())));
            for url in [server.tls_url(), server.url()] {
                let what = format!("{version:?} {name} at {url}");
                let opts = options(&url).dangerous_accept_any_server_certificate();
                let client = connect_ok(opts, &what).await;
                round_trip(&client, "any.cert", &what).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_and_without_a_client_certificate() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture).verify(true)));

        let what = format!("{version:?} client certificate files");
        let opts = trusting(&server.tls_url(), &fixture)
            .add_client_certificate(fixture.client_cert_path(), fixture.client_key_path());
        let client = connect_ok(opts, &what).await;
        assert!(client.server_info().unwrap().tls_verify, "{what}");
        round_trip(&client, "mtls.files", &what).await;

        let what = format!("{version:?} client certificate PEM");
        let opts = trusting(&server.url(), &fixture)
            .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), fixture.client_key_pem().as_bytes());
        let client = connect_ok(opts, &what).await;
        round_trip(&client, "mtls.pem", &what).await;

        // Without a certificate, under TLS 1.3 the client's side of the handshake completes before the server
        // has looked at the (empty) certificate message: the server's refusal arrives as a fatal alert on the
        // first read after the handshake, while the client waits for the PONG of its CONNECT. The client
        // reports it as the TLS failure it is, not as a plain loss. The alert is `certificate_required` from
        // 2.15 (a newer Go) and `bad_certificate` from 2.9 (an older Go).
        let what = format!("{version:?} no client certificate");
        let (error, events) = connect_fails(trusting(&server.tls_url(), &fixture), &what).await;
        let alert = match version {
            ServerVersion::Current => "received fatal alert: CertificateRequired",
            ServerVersion::Old => "received fatal alert: BadCertificate",
        };
        match &error {
            Error::Connect(ConnectionError::Tls(why)) => assert!(why.contains(alert), "{what}: {why}"),
            other => panic!("{what}: expected Error::Connect(Tls({alert:?})), got {other:?}"),
        }
        assert!(
            events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::Tls(_), .. })),
            "{what}: {events:?}"
        );

        // A certificate from a CA the server does not trust: refused the same way, with a different alert.
        let what = format!("{version:?} foreign client certificate");
        let foreign = fixture.untrusted_client();
        let opts = trusting(&server.tls_url(), &fixture)
            .add_client_certificate_pem(foreign.cert_pem().as_bytes(), foreign.key_pem().as_bytes());
        let (error, _) = connect_fails(opts, &what).await;
        assert!(matches!(&error, Error::Connect(ConnectionError::Tls(_))), "{what}: {error:?}");

        // An unreadable certificate file is an option error, found before any server is contacted.
        let missing = fixture.dir().join("no-such-cert.pem");
        let opts = nowhere().add_client_certificate(&missing, fixture.client_key_path());
        invalid_option(opts, "no-such-cert.pem", None, "missing client certificate").await;
        let opts = nowhere().add_root_certificates(fixture.dir().join("no-such-ca.pem"));
        invalid_option(opts, "no-such-ca.pem", None, "missing CA file").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_tls_against_a_plain_server_is_tls_unavailable() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version));
        let what = format!("{version:?} require_tls");
        let (error, events) = connect_fails(options(&server.url()).require_tls(true), &what).await;
        assert!(matches!(error, Error::Connect(ConnectionError::TlsUnavailable)), "{what}: {error:?}");
        assert!(
            events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::TlsUnavailable, .. })),
            "{what}: {events:?}"
        );

        // A tls:// URL asks for the same.
        let what = format!("{version:?} tls:// to a plain server");
        let (error, _) = connect_fails(options(&server.tls_url()), &what).await;
        assert!(matches!(error, Error::Connect(ConnectionError::TlsUnavailable)), "{what}: {error:?}");

        // The same server is fine without the requirement.
        let client = connect_ok(options(&server.url()), "plain").await;
        round_trip(&client, "plain", "plain").await;
    }
}

/// Connections the server has open over TLS (needs monitoring): `/connz` shows a `tls_version` for each.
fn tls_connections(server: &NatsServer) -> usize {
    server.monitor_get("/connz").expect("GET /connz").matches("\"tls_version\"").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_offering_tls_is_upgraded_to_only_when_asked() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .monitoring(true)
                .tls(ServerTls::from_fixture(&fixture).allow_non_tls(true)),
        );
        for (url, require, tls) in [
            (server.url(), false, false),
            (server.url(), true, true),
            (server.tls_url(), false, true),
            (server.localhost_url("tls"), false, true),
        ] {
            let what = format!("{version:?} {url} require_tls({require})");
            // TLS options alone do not ask for TLS here, so the plaintext case has none (nats.go's RootCAs
            // would imply TLS; this client leaves that to `require_tls` and `tls://`).
            let opts = if tls { trusting(&url, &fixture) } else { options(&url) };
            let client = connect_ok(opts.require_tls(require), &what).await;
            let info = client.server_info().unwrap();
            assert!(info.tls_available && !info.tls_required, "{what}: {info:?}");
            round_trip(&client, "optional", &what).await;
            assert_eq!(common::server_connections(&server), 1, "{what}");
            assert_eq!(tls_connections(&server), usize::from(tls), "{what}: TLS in use?");
            client.close().bounded().await;
            common::wait_until(WAIT, "the server saw the close", || common::server_connections(&server) == 0).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_over_tls_writes_what_is_buffered() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let receiver = connect_ok(trusting(&server.tls_url(), &fixture), "receiver").await;
        let mut sub = receiver.subscribe("tls.close").bounded().await.unwrap();
        receiver.flush().bounded().await.unwrap();
        let sender = connect_ok(trusting(&server.tls_url(), &fixture), "sender").await;
        for i in 0..5_000 {
            sender.publish("tls.close", burst_payload(i)).bounded().await.unwrap();
        }
        // No flush: what is still buffered goes out, encrypted, before the connection is dropped.
        sender.close().bounded().await;
        read_burst(&mut sub, 5_000, &format!("{version:?} after close")).bounded_long().await;
    }
}

/// A server that sends an INFO asking for TLS after `info_delay`, then never answers the ClientHello. The
/// thread returns the bytes the client sent.
fn stalling_tls_server(info_delay: Duration) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(info_delay);
        let info = "INFO {\"server_id\":\"stall\",\"version\":\"2.15.1\",\"proto\":1,\"max_payload\":1048576,\
                    \"headers\":true,\"tls_required\":true}\r\n";
        conn.write_all(info.as_bytes()).unwrap();
        let mut received = 0;
        let mut buf = [0; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            received += n;
        }
        received
    });
    (port, thread)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_ends_at_the_connect_timeout() {
    let fixture = TlsFixture::new();
    let (port, stall) = stalling_tls_server(Duration::ZERO);
    let opts = trusting(&format!("tls://127.0.0.1:{port}"), &fixture).connect_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let (error, _) = connect_fails(opts, "stalled handshake").await;
    assert!(matches!(error, Error::Connect(ConnectionError::ConnectTimeout)), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "gave up early: {:?}", started.elapsed());
    let received = blocking(|| stall.join().unwrap());
    assert!(received > 0, "the client sent its ClientHello");
}

/// `connect_timeout` is the "time allowed for TCP connect plus handshake": one deadline for the attempt, so a
/// slow INFO leaves the TLS handshake only what remains of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_timeout_bounds_the_info_wait_and_the_tls_handshake_together() {
    let fixture = TlsFixture::new();
    let (port, stall) = stalling_tls_server(Duration::from_millis(1500));
    let opts = trusting(&format!("tls://127.0.0.1:{port}"), &fixture).connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let result = opts.connect().within(WAIT).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))), "{:?}", result.err());
    // Due at 2 s; a fresh 2 s for the handshake after the INFO at 1.5 s would end it at 3.5 s.
    assert!(elapsed < Duration::from_millis(3000), "a 2 s connect timeout ended the attempt after {elapsed:?}");
    blocking(|| stall.join().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_first_needs_tls_first() {
    // nats-server 2.9 has no `handshake_first`.
    let fixture = TlsFixture::new();
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first(true)));
    for url in [server.tls_url(), server.url()] {
        let what = format!("tls_first to {url}");
        let client = connect_ok(trusting(&url, &fixture).tls_first(), &what).await;
        assert!(client.server_info().unwrap().tls_required, "{what}");
        round_trip(&client, "tls.first", &what).await;
    }

    // Without it the client waits for an INFO the server never sends in plaintext: the connect timeout ends
    // the one attempt.
    let what = "no tls_first to a handshake_first server";
    let opts = trusting(&server.tls_url(), &fixture).connect_timeout(Duration::from_secs(1));
    let (error, _) = connect_fails(opts, what).await;
    assert!(matches!(error, Error::Connect(ConnectionError::ConnectTimeout)), "{what}: {error:?}");

    // The reverse: TLS first to a server that starts with a plaintext INFO. Its INFO is no TLS record.
    let classic = tls_server(ServerVersion::Current, &fixture);
    let what = "tls_first to a classic server";
    let (error, _) = connect_fails(trusting(&classic.tls_url(), &fixture).tls_first(), what).await;
    assert!(matches!(error, Error::Connect(ConnectionError::Tls(_))), "{what}: {error:?}");

    // A server that waits a while for a TLS-first client, then falls back to a plaintext INFO, serves both.
    let fallback = HandshakeFirst::Fallback(Duration::from_millis(300));
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first_mode(fallback)));
    for tls_first in [true, false] {
        let what = format!("tls_first({tls_first}) to a fallback server");
        let opts = trusting(&server.tls_url(), &fixture);
        let client = connect_ok(if tls_first { opts.tls_first() } else { opts }, &what).await;
        round_trip(&client, "tls.fallback", &what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_over_tls_after_a_restart() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let mut server = tls_server(version, &fixture);
        for url in [server.tls_url(), server.url()] {
            let what = format!("{version:?} {url}");
            let client = connect_ok(trusting(&url, &fixture), &what).await;
            let mut events = client.events();
            let mut sub = client.subscribe("tls.rc").bounded().await.unwrap();
            client.publish("tls.rc", "before").bounded().await.unwrap();
            assert_eq!(text(&recv(&mut sub, &what).await), "before");

            blocking(|| server.restart());
            let (lost, _) =
                wait_event(&mut events, RECONNECT_WAIT, "Disconnected", |e| matches!(e, Event::Disconnected(_))).await;
            assert!(
                matches!(lost, Event::Disconnected(ConnectionError::TransportClosed | ConnectionError::Tls(_))),
                "{what}: {lost:?}"
            );
            let (back, seen) =
                wait_event(&mut events, RECONNECT_WAIT, "Reconnected", |e| matches!(e, Event::Reconnected(_))).await;
            assert_eq!(back, Event::Reconnected(url.clone()), "{what}");
            assert!(
                !seen.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::Tls(_), .. })),
                "{what}: a TLS failure while reconnecting: {seen:?}"
            );

            // The subscription was replayed over the new TLS session; requests work too.
            client.publish("tls.rc", "after").bounded().await.unwrap();
            assert_eq!(text(&recv(&mut sub, &what).await), "after");
            round_trip(&client, "tls.rc2", &what).await;
            let stats = client.statistics();
            assert_eq!((stats.connects, stats.reconnects), (2, 1), "{what}");
            client.close().bounded().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Authentication

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_authentication() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("s3cret"));
        let port = server.port();
        let client = connect_ok(options(&server.url()).token("s3cret"), "token option").await;
        round_trip(&client, "tok", "token option").await;
        let client = connect_ok(options(&format!("nats://s3cret@127.0.0.1:{port}")), "token in URL").await;
        round_trip(&client, "tok", "token in URL").await;

        refused(options(&server.url()).token("wrong"), "wrong token").await;
        refused(options(&server.url()), "no token").await;
        // The URL's own credentials win over the option.
        refused(options(&format!("nats://wrong@127.0.0.1:{port}")).token("s3cret"), "wrong token in URL").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_authentication() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).user_password("alice", "pa55"));
        let port = server.port();
        let client = connect_ok(options(&server.url()).user_and_password("alice", "pa55"), "options").await;
        round_trip(&client, "up", "user and password options").await;

        let (callback, recorded) = event_recorder();
        let url = format!("nats://alice:pa55@127.0.0.1:{port}");
        let client = connect_ok(options(&url).event_callback(callback), "URL userinfo").await;
        round_trip(&client, "up", "URL userinfo").await;
        // Events name the server without its credentials.
        let (connected, _) = wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_))).await;
        assert_eq!(connected, Event::Connected(server.url()), "{version:?}");

        // The URL's credentials win over the options', either way round.
        let opts = options(&url).user_and_password("alice", "wrong");
        let client = connect_ok(opts, "right URL, wrong options").await;
        round_trip(&client, "up", "right URL, wrong options").await;
        let opts = options(&format!("nats://alice:wrong@127.0.0.1:{port}")).user_and_password("alice", "pa55");
        refused(opts, "wrong URL, right options").await;

        refused(options(&server.url()).user_and_password("alice", "wrong"), "wrong password").await;
        refused(options(&server.url()).user_and_password("bob", "pa55"), "unknown user").await;
        refused(options(&server.url()), "no credentials").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_authentication() {
    let user = NkeyUser::generate();
    let stranger = NkeyUser::generate();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).nkey_user(user.public_key()));
        let client = connect_ok(options(&server.url()).nkey(user.seed()), "nkey").await;
        round_trip(&client, "nk", "nkey").await;

        refused(options(&server.url()).nkey(stranger.seed()), "unknown nkey").await;
        refused(options(&server.url()), "no nkey").await;
    }
    let bad = corrupt(user.seed());
    invalid_option(nowhere().nkey(&bad), "seed", Some(&bad), "corrupt seed").await;
    invalid_option(nowhere().nkey("not a seed"), "seed", None, "not a seed").await;
    // A public key is not a seed.
    invalid_option(nowhere().nkey(user.public_key()), "seed", None, "public key as seed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_authentication_with_creds_files_creds_text_and_jwt_plus_seed() {
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let mallory = operator.user("mallory").unwrap();
    let stranger = OperatorFixture::new().user("stranger").unwrap();
    let file = alice.creds_file().unwrap();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let url = server.url();

        let client = connect_ok(options(&url).credentials_file(file.path()), "creds file").await;
        round_trip(&client, "jwt", "creds file").await;
        let client = connect_ok(options(&url).credentials(&alice.creds()), "creds text").await;
        round_trip(&client, "jwt", "creds text").await;
        let client = connect_ok(options(&url).jwt(alice.jwt(), alice.seed()), "jwt and seed").await;
        round_trip(&client, "jwt", "jwt and seed").await;

        // Another user's seed cannot sign for alice's JWT.
        refused(options(&url).jwt(alice.jwt(), mallory.seed()), "jwt signed by another seed").await;
        // A user of an account this server does not know.
        refused(options(&url).credentials(&stranger.creds()), "foreign creds").await;
        refused(options(&url), "no credentials").await;
    }

    // Bad options fail `connect` at once, without leaking the seed.
    let missing = file.path().with_file_name("missing.creds");
    invalid_option(nowhere().credentials_file(&missing), "missing.creds", None, "missing creds file").await;
    invalid_option(nowhere().credentials_file(std::env::temp_dir()), "creds", None, "a directory as creds").await;
    invalid_option(nowhere().credentials("not a creds file"), "JWT", None, "garbage creds").await;
    let bad = corrupt(alice.seed());
    let creds = alice.creds().replace(alice.seed(), &bad);
    invalid_option(nowhere().credentials(&creds), "seed", Some(&bad), "creds with a bad seed").await;
    invalid_option(nowhere().jwt(alice.jwt(), &bad), "seed", Some(&bad), "jwt with a corrupt seed").await;
    invalid_option(nowhere().jwt(alice.jwt(), "SUbad"), "seed", None, "jwt with a bad seed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creds_file_is_read_again_at_every_connect() {
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let stranger = OperatorFixture::new().user("stranger").unwrap();
    let mut server = start(NatsServer::builder().operator(&operator));
    let file = alice.creds_file().unwrap();
    let client = connect_ok(options(&server.url()).credentials_file(file.path()), "creds file").await;
    let mut events = client.events();
    round_trip(&client, "rot", "before the rotation").await;

    // Replaced by credentials this server refuses: the reconnects after a restart are refused for them.
    stranger.write_creds(file.path()).unwrap();
    blocking(|| server.restart());
    let (refusal, _) = wait_event(
        &mut events,
        RECONNECT_WAIT,
        "a refused reconnect",
        |e| matches!(e, Event::ConnectFailed { error: ConnectionError::Server(s), .. } if s.is_auth_error()),
    )
    .await;
    assert!(matches!(refusal, Event::ConnectFailed { .. }));

    // Gone: the attempt fails before reaching the server, naming the file.
    std::fs::remove_file(file.path()).unwrap();
    let (missing, _) = wait_event(&mut events, RECONNECT_WAIT, "a credentials failure", |e| {
        matches!(e, Event::ConnectFailed { error: ConnectionError::Credentials(_), .. })
    })
    .await;
    match missing {
        Event::ConnectFailed { error: ConnectionError::Credentials(why), .. } => {
            assert!(why.contains("user.creds"), "{why}");
        }
        other => unreachable!("{other:?}"),
    }

    // Back: the next attempt uses them and the connection is restored.
    alice.write_creds(file.path()).unwrap();
    wait_event(&mut events, RECONNECT_WAIT, "Reconnected", |e| matches!(e, Event::Reconnected(_))).await;
    round_trip(&client, "rot", "after the rotation").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_callback_signs_the_servers_nonce() {
    let user = NkeyUser::generate();
    for version in BOTH {
        let mut server = start(NatsServer::builder().version(version).nkey_user(user.public_key()));
        let nonces: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let (seen, signer) = (nonces.clone(), user.clone());
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            seen.lock().unwrap().push(nonce.map(str::to_owned));
            let nonce = nonce.ok_or("no nonce")?;
            let mut c = Credentials::default();
            c.nkey = Some(signer.public_key().to_owned());
            c.sig = Some(signer.sign_nonce(nonce));
            Ok(c)
        });
        let client = connect_ok(opts, "callback").await;
        round_trip(&client, "cb", "callback").await;
        // The server accepted a signature of what the callback was given: that was the nonce of its INFO.
        // (`server_info()` is the latest INFO, which need not repeat the nonce.)
        let first = nonces.lock().unwrap().clone();
        assert_eq!(first.len(), 1, "{version:?}: one call per connect: {first:?}");
        let sent = first[0].clone();
        assert!(sent.as_deref().is_some_and(|n| !n.is_empty()), "{version:?}: no nonce given: {first:?}");

        // Each connect signs that connection's nonce.
        let mut events = client.events();
        blocking(|| server.restart());
        wait_event(&mut events, RECONNECT_WAIT, "Reconnected", |e| matches!(e, Event::Reconnected(_))).await;
        let all = nonces.lock().unwrap().clone();
        assert!(all.len() >= 2 && all.iter().all(Option::is_some), "{version:?}: {all:?}");
        assert_ne!(all.last(), Some(&sent), "{version:?}: a new connection signs its own, new nonce: {all:?}");
        round_trip(&client, "cb2", "callback after reconnect").await;
        client.close().bounded().await;

        // A callback that fails: the attempt fails with its reason.
        let opts = options(&server.url()).credentials_callback(|_| Err("vault unavailable".to_owned()));
        let (error, _) = connect_fails(opts, "failing callback").await;
        match error {
            Error::Connect(ConnectionError::Credentials(why)) => assert!(why.contains("vault unavailable"), "{why}"),
            other => panic!("{version:?}: expected Error::Connect(Credentials), got {other:?}"),
        }

        // A callback with the wrong signature is refused by the server.
        let forger = NkeyUser::generate();
        let public = user.public_key().to_owned();
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            let mut c = Credentials::default();
            c.nkey = Some(public.clone());
            c.sig = Some(forger.sign_nonce(nonce.unwrap_or_default()));
            Ok(c)
        });
        refused(opts, "forged signature").await;
    }

    // A token server sends no nonce; the callback is still asked, with `None`, and can supply the token.
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("t0k"));
        let nonces: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let seen = nonces.clone();
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            seen.lock().unwrap().push(nonce.map(str::to_owned));
            let mut c = Credentials::default();
            c.token = Some("t0k".to_owned());
            Ok(c)
        });
        let client = connect_ok(opts, "token from the callback").await;
        round_trip(&client, "cbt", "token from the callback").await;
        assert_eq!(*nonces.lock().unwrap(), vec![None], "{version:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_credentials_combine() {
    let fixture = TlsFixture::new();
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).operator(&operator).tls(ServerTls::from_fixture(&fixture)));
        let client = connect_ok(trusting(&server.tls_url(), &fixture).credentials(&alice.creds()), "TLS + JWT").await;
        round_trip(&client, "tls.jwt", "TLS + JWT").await;
        refused(trusting(&server.url(), &fixture), "TLS without credentials").await;
    }

    // TLS first: the INFO carrying the nonce arrives over TLS.
    let user = NkeyUser::generate();
    let server = start(
        NatsServer::builder().nkey_user(user.public_key()).tls(ServerTls::from_fixture(&fixture).handshake_first(true)),
    );
    let client =
        connect_ok(trusting(&server.tls_url(), &fixture).tls_first().nkey(user.seed()), "TLS first + nkey").await;
    round_trip(&client, "tls.nk", "TLS first + nkey").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_with_retry_on_initial_connect_back_off() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("right"));
        let (callback, recorded) = event_recorder();
        let policy = ReconnectPolicy {
            max_attempts_per_server: None,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            jitter: Duration::ZERO,
        };
        let opts = options(&server.url())
            .token("wrong")
            .retry_on_initial_connect()
            .reconnect_policy(policy)
            .event_callback(callback);
        let started = Instant::now();
        let client = opts.connect().bounded().await.expect("retry_on_initial_connect returns at once");
        assert!(started.elapsed() < Duration::from_secs(1), "{version:?}: connect waited {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!client.is_closed(), "{version:?}: the client keeps trying");
        let events: Vec<Event> = recorded.try_iter().collect();
        let failures: Vec<&ConnectionError> = events
            .iter()
            .filter_map(|e| match e {
                Event::ConnectFailed { error, .. } => Some(error),
                _ => None,
            })
            .collect();
        for error in &failures {
            assert!(
                matches!(error, ConnectionError::Server(e) if e.is_auth_error()),
                "{version:?}: every attempt is refused for its credentials: {error:?}"
            );
        }
        // Backoff of 100 ms doubling: attempts at about 0, 0.1, 0.3, 0.7 and 1.5 s. A loop without backoff
        // would make hundreds.
        assert!((2..=6).contains(&failures.len()), "{version:?}: {} attempts in 1.5 s: {events:?}", failures.len());
        assert!(!events.iter().any(|e| matches!(e, Event::Connected(_))), "{version:?}");
        client.close().bounded().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Permissions

fn ended_for_permission(sub: &Subscriber) -> ServerError {
    match sub.end_reason() {
        Some(Error::Permission(e)) => e,
        other => panic!("subscription {} should have ended with Error::Permission, got {other:?}", sub.sid()),
    }
}

async fn assert_ends_denied(sub: &mut Subscriber, subject: &str, queue: Option<&str>) {
    match next_within(sub, WAIT).await {
        Ok(None) => {}
        Ok(Some(m)) => panic!("the denied subscription to {subject} got {m:?}"),
        Err(()) => panic!("the denied subscription to {subject} did not end"),
    }
    let e = ended_for_permission(sub);
    assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation);
    assert_eq!(e.permission(), Some((PermissionOp::Subscribe, subject, queue)), "{e:?}");
}

/// Checks permissions on a client connected as a user allowed `ok.>` and `_INBOX.>` only.
async fn check_permissions(client: &Client, what: &str) {
    let mut events = client.events();
    let mut allowed = client.subscribe("ok.>").bounded().await.unwrap();
    let mut denied = client.subscribe("secret.x").bounded().await.unwrap();
    let mut denied_queue = client.queue_subscribe("secret.q", "workers").bounded().await.unwrap();
    client.publish("ok.1", "one").bounded().await.unwrap();
    assert_eq!(text(&recv(&mut allowed, what).await), "one");

    assert_ends_denied(&mut denied, "secret.x", None).await;
    assert_ends_denied(&mut denied_queue, "secret.q", Some("workers")).await;
    // The end is final: reading again returns None at once.
    assert!(denied.next().bounded().await.is_none());

    // A denied publish is reported as an event; nothing else happens to the connection.
    client.publish("secret.y", "nope").bounded().await.expect("a publish is not refused locally");
    let (event, before) = wait_event(
        &mut events,
        WAIT,
        "ServerError for the publish",
        |e| matches!(e, Event::ServerError(s) if s.permission().is_some_and(|(op, ..)| op == PermissionOp::Publish)),
    )
    .await;
    match &event {
        Event::ServerError(e) => assert_eq!(e.permission(), Some((PermissionOp::Publish, "secret.y", None)), "{e:?}"),
        _ => unreachable!(),
    }
    client.flush().bounded().await.expect("the connection is still up");
    client.publish("ok.2", "two").bounded().await.unwrap();
    assert_eq!(text(&recv(&mut allowed, what).await), "two", "{what}: the allowed subscription keeps receiving");
    let mut svc = client.subscribe("ok.svc").bounded().await.unwrap();
    let respond = async {
        let req = recv(&mut svc, what).await;
        req.respond("pong").unwrap();
    };
    let (reply, ()) = tokio::join!(client.request("ok.svc", "ping").bounded(), respond);
    assert_eq!(text(&reply.unwrap()), "pong", "{what}");
    let later = common::drain_events(&mut events);
    for e in before.iter().chain(&later) {
        assert!(
            !matches!(e, Event::Disconnected(_) | Event::Reconnected(_) | Event::Closed),
            "{what}: the connection must stay up: {before:?} {later:?}"
        );
    }
    let stats = client.statistics();
    assert_eq!((stats.connects, stats.reconnects), (1, 0), "{what}");
    assert!(!client.is_closed());
}

fn limited_permissions() -> Permissions {
    Permissions::new()
        .allow_publish("ok.>")
        .allow_publish("_INBOX.>")
        .allow_subscribe("ok.>")
        .allow_subscribe("_INBOX.>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_violations_end_only_the_denied_subscription_and_keep_the_connection() {
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .auth_user(AuthUser::password("limited", "pw").permissions(limited_permissions())),
        );
        let what = format!("{version:?} config user");
        let client = connect_ok(options(&server.url()).user_and_password("limited", "pw"), &what).await;
        check_permissions(&client, &what).await;
    }

    // The same with permissions in a user JWT.
    let operator = OperatorFixture::new();
    let user = operator.user_with("limited", UserOptions::new().permissions(limited_permissions())).unwrap();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let what = format!("{version:?} JWT user");
        let client = connect_ok(options(&server.url()).credentials(&user.creds()), &what).await;
        check_permissions(&client, &what).await;
    }
}

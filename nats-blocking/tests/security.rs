//! TLS and authentication against real nats-servers: trusted and untrusted certificates, mutual TLS,
//! `require_tls`, TLS-first, reconnecting over TLS, every credential kind (token, user/password, nkey, JWT
//! creds file, creds string, JWT plus seed, callback), the backoff after refused credentials, permissions, and
//! secrets kept out of `Debug` output. Features both server versions have run on both.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{event_recorder, free_port, options, recv, take_queued, text, wait_event, wait_until, WAIT};
use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{Client, ConnectOptions, Error, Event, PendingLimits, ReconnectPolicy};
use nats_proto::{ConnectionError, Credentials, PermissionOp, ServerError, ServerErrorKind};
use nats_server_harness::auth::{format_creds, AuthUser, NkeyUser, OperatorFixture, Permissions, UserOptions};
use nats_server_harness::tls::{HandshakeFirst, ServerTls, TlsFixture};
use nats_server_harness::{Cluster, NatsServer, ServerBuilder, ServerVersion};

/// Both server builds; TLS and every credential kind here exist on 2.9.10 as on 2.15.
const BOTH: [ServerVersion; 2] = [ServerVersion::Current, ServerVersion::Old];
/// Bound on a connect that must fail at once (no retry loop, no waiting out a timeout).
const FAIL_FAST: Duration = Duration::from_secs(5);
/// Long enough for a restart and a few backoff rounds.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------------------
// Helpers

#[track_caller]
fn start(builder: ServerBuilder) -> NatsServer {
    builder.start().unwrap_or_else(|e| panic!("nats-server did not start: {e}"))
}

/// A server with the fixture's trusted certificate, TLS required.
#[track_caller]
fn tls_server(version: ServerVersion, fixture: &TlsFixture) -> NatsServer {
    start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(fixture)))
}

/// Test options that trust the fixture's CA (as a file).
fn trusting(url: &str, fixture: &TlsFixture) -> ConnectOptions {
    options(url).add_root_certificates(fixture.ca_path())
}

/// Connects, panicking with the server log on failure.
#[track_caller]
fn must_connect(opts: ConnectOptions, server: &NatsServer, what: &str) -> Client {
    opts.connect().unwrap_or_else(|e| panic!("{what}: connect failed: {e:?}\n--- server log ---\n{}", server.log()))
}

/// Connects expecting failure; returns the error and how long `connect` took.
#[track_caller]
fn connect_err(opts: ConnectOptions, what: &str) -> (Error, Duration) {
    let started = Instant::now();
    match opts.connect() {
        Ok(client) => panic!("{what}: connected, expected a failure (info {:?})", client.server_info()),
        Err(e) => (e, started.elapsed()),
    }
}

/// The TLS failure message of a failed connect that took less than [`FAIL_FAST`].
#[track_caller]
fn tls_failure(opts: ConnectOptions, what: &str) -> String {
    let (e, took) = connect_err(opts, what);
    assert!(took < FAIL_FAST, "{what}: failing took {took:?}, expected well under the connect timeout");
    match e {
        Error::Connect(ConnectionError::Tls(msg)) => msg,
        other => panic!("{what}: expected Error::Connect(ConnectionError::Tls(_)), got {other:?}"),
    }
}

/// The server's refusal of a failed connect: an authorization error, within [`FAIL_FAST`].
#[track_caller]
fn auth_failure(opts: ConnectOptions, what: &str) -> ServerError {
    let (e, took) = connect_err(opts, what);
    assert!(took < FAIL_FAST, "{what}: failing took {took:?}");
    match e {
        Error::Connect(ConnectionError::Server(e)) if e.is_auth_error() => {
            assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation, "{what}: {e}");
            e
        }
        other => panic!("{what}: expected an authorization error from the server, got {other:?}"),
    }
}

/// The `Error::Options` text of a connect refused before any I/O.
#[track_caller]
fn options_failure(opts: ConnectOptions, what: &str) -> String {
    let (e, took) = connect_err(opts, what);
    assert!(took < Duration::from_secs(1), "{what}: an invalid option took {took:?} to report");
    match e {
        Error::Options(msg) => msg,
        other => panic!("{what}: expected Error::Options, got {other:?}"),
    }
}

/// Subscribe, publish, receive, then a request answered by a responder on the same connection.
#[track_caller]
fn assert_round_trip(client: &Client, tag: &str) {
    let subject = format!("sec.{tag}");
    let mut sub = client.subscribe(&subject).unwrap();
    let svc_subject = format!("sec.svc.{tag}");
    let _svc = client.subscribe_with(&svc_subject, |m| drop(m.respond(format!("re:{}", text(&m))))).unwrap();
    client.flush().unwrap();
    for i in 0..3 {
        client.publish(&subject, format!("{tag}-{i}")).unwrap();
    }
    for i in 0..3 {
        assert_eq!(text(&recv(&mut sub, tag)), format!("{tag}-{i}"), "{tag}");
    }
    let reply = client.request(&svc_subject, "ping").unwrap_or_else(|e| panic!("{tag}: request failed: {e:?}"));
    assert_eq!(text(&reply), "re:ping", "{tag}");
}

/// The connection of client `name` from the server's `/connz`, whitespace removed (polls until it shows).
#[track_caller]
fn connz_entry(server: &NatsServer, name: &str) -> String {
    let needle = format!("\"name\":\"{name}\"");
    let mut found = String::new();
    wait_until(WAIT, &format!("connz lists {name}"), || {
        let body: String = server.monitor_get("/connz").unwrap_or_default().split_whitespace().collect();
        match body.split("\"cid\":").find(|c| c.contains(&needle)) {
            Some(entry) => {
                found = entry.to_owned();
                true
            }
            None => false,
        }
    });
    found
}

/// A payload of `len` bytes in a pattern that shows any loss, duplication or reordering.
fn pattern(len: usize, salt: u8) -> Bytes {
    (0..len).map(|i| ((i % 251) as u8).wrapping_add(salt).wrapping_mul(7)).collect::<Vec<u8>>().into()
}

fn is_connect_failed(e: &Event) -> bool {
    matches!(e, Event::ConnectFailed { .. })
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

// ---------------------------------------------------------------------------------------------------------
// TLS: trusted servers

#[test]
fn tls_url_with_trusted_ca_publishes_subscribes_and_requests() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let (callback, events) = event_recorder();
        let client = must_connect(
            trusting(&server.tls_url(), &fixture).event_callback(callback),
            &server,
            &format!("{version:?} tls://"),
        );
        let (connected, _) = wait_event(&events, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
        assert_eq!(connected, Event::Connected(server.tls_url()), "{version:?}");
        assert!(client.server_info().unwrap().tls_required, "{version:?}");
        assert_round_trip(&client, &format!("tlsurl{version:?}"));

        // The DNS SAN works too (`localhost`), with the CA given as PEM text instead of a file.
        let by_name = must_connect(
            options(&server.localhost_url("tls")).add_root_certificates_pem(fixture.ca_pem().as_bytes()),
            &server,
            &format!("{version:?} tls://localhost"),
        );
        assert_round_trip(&by_name, &format!("tlslocalhost{version:?}"));
        client.drain().unwrap();
        by_name.drain().unwrap();
    }
}

#[test]
fn nats_url_upgrades_to_tls_when_the_server_requires_it() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).monitoring(true).tls(ServerTls::from_fixture(&fixture)));
        let client = must_connect(
            trusting(&server.url(), &fixture).name("upgrader"),
            &server,
            &format!("{version:?} nats:// to a TLS server"),
        );
        assert_round_trip(&client, &format!("upgrade{version:?}"));
        // The server agrees the connection is encrypted.
        let entry = connz_entry(&server, "upgrader");
        assert!(entry.contains("\"tls_version\":\"1."), "{version:?}: no TLS in connz entry {entry}");
        client.drain().unwrap();
    }
}

#[test]
fn require_tls_upgrades_when_the_server_only_offers_it() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .monitoring(true)
                .tls(ServerTls::from_fixture(&fixture).allow_non_tls(true)),
        );
        // TLS optional and not asked for: plaintext.
        let plain = must_connect(options(&server.url()).name("plain"), &server, "optional TLS, not required");
        assert_round_trip(&plain, &format!("optplain{version:?}"));
        let entry = connz_entry(&server, "plain");
        assert!(!entry.contains("tls_version"), "{version:?}: plaintext client shows TLS: {entry}");
        // Required by the options: the client upgrades.
        let secure = must_connect(
            trusting(&server.url(), &fixture).require_tls(true).name("secure"),
            &server,
            "optional TLS, required by the client",
        );
        assert_round_trip(&secure, &format!("optsecure{version:?}"));
        let entry = connz_entry(&server, "secure");
        assert!(entry.contains("\"tls_version\":\"1."), "{version:?}: require_tls client not on TLS: {entry}");
        // And a tls:// URL asks for it per server.
        let by_url =
            must_connect(trusting(&server.tls_url(), &fixture).name("byurl"), &server, "optional TLS, tls:// URL");
        let entry = connz_entry(&server, "byurl");
        assert!(entry.contains("\"tls_version\":\"1."), "{version:?}: tls:// client not on TLS: {entry}");
        drop((plain, secure, by_url));
    }
}

#[test]
fn tls_carries_large_payloads_and_bursts_complete_and_in_order() {
    const BURST: usize = 20_000;
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).max_payload(8 << 20).tls(ServerTls::from_fixture(&fixture)));
        let client = must_connect(trusting(&server.tls_url(), &fixture), &server, "large payloads");
        assert!(client.max_payload() >= 8 << 20, "{version:?}: max_payload {}", client.max_payload());

        // Much larger than a TLS record (16 KiB) and than the reader's 64 KiB buffers, both ways.
        let mut big = client.subscribe("sec.big").unwrap();
        let sizes = [1 << 20, (1 << 20) - 1, 4 << 20, 16 * 1024 + 1, 0];
        for (i, &len) in sizes.iter().enumerate() {
            client.publish("sec.big", pattern(len, i as u8)).unwrap();
        }
        for (i, &len) in sizes.iter().enumerate() {
            let msg = recv(&mut big, "a large message over TLS");
            assert_eq!(msg.payload().len(), len, "{version:?}: message {i}");
            assert!(msg.payload() == pattern(len, i as u8), "{version:?}: message {i} ({len} bytes) was corrupted");
        }

        // An echo service: a 1 MiB request and a 1 MiB reply on the same TLS connection.
        let _echo = client.subscribe_with("sec.echo", |m| drop(m.respond(m.payload_bytes()))).unwrap();
        client.flush().unwrap();
        let payload = pattern(1 << 20, 42);
        let reply = client.request("sec.echo", payload.clone()).unwrap();
        assert!(reply.payload() == payload, "{version:?}: the echoed 1 MiB payload differs");

        // A burst of small messages: many in one TLS record, records split across reads.
        let mut burst = client.subscribe("sec.burst").unwrap();
        client.flush().unwrap();
        for i in 0..BURST {
            client.publish("sec.burst", i.to_string()).unwrap();
        }
        client.flush().unwrap();
        for i in 0..BURST {
            let msg = recv(&mut burst, "a burst message over TLS");
            assert_eq!(text(&msg), i.to_string(), "{version:?}: burst message out of order or lost");
        }
        assert_eq!(burst.dropped(), 0);
        let stats = client.statistics();
        assert_eq!(stats.reconnects, 0, "{version:?}: the connection dropped during the transfer");
        client.drain().unwrap();
    }
}

#[test]
fn tls_client_config_is_used_as_given() {
    use nats_client::rustls;
    let fixture = TlsFixture::new();
    let server = tls_server(ServerVersion::Current, &fixture);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(fixture.ca_der().to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = must_connect(options(&server.tls_url()).tls_client_config(config), &server, "custom rustls config");
    assert_round_trip(&client, "customconfig");

    // A custom configuration with an empty trust store is used as given too: it trusts nothing.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let msg = tls_failure(options(&server.tls_url()).tls_client_config(config), "custom config, no roots");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

// ---------------------------------------------------------------------------------------------------------
// TLS: certificates the client must refuse

#[test]
fn untrusted_server_certificate_fails_fast_with_a_tls_error() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let untrusted = fixture.untrusted_server();
        let server = start(
            NatsServer::builder().version(version).tls(ServerTls::new(untrusted.cert_pem(), untrusted.key_pem())),
        );
        // A long connect timeout: failing fast must come from the TLS error, not from waiting it out.
        for url in [server.tls_url(), server.url()] {
            let (callback, events) = event_recorder();
            let opts = trusting(&url, &fixture).connect_timeout(Duration::from_secs(10)).event_callback(callback);
            let msg = tls_failure(opts, &format!("{version:?} {url}: untrusted CA"));
            assert!(msg.contains("UnknownIssuer"), "{version:?} {url}: {msg}");
            assert!(msg.contains("certificate"), "{version:?} {url}: {msg}");
            // One attempt, no retry loop: one ConnectFailed, then Closed.
            let mut seen = vec![];
            while let Ok(e) = events.recv_timeout(WAIT) {
                let closed = e == Event::Closed;
                seen.push(e);
                if closed {
                    break;
                }
            }
            assert_eq!(seen.iter().filter(|e| is_connect_failed(e)).count(), 1, "{version:?} {url}: {seen:?}");
            assert!(
                matches!(&seen[0], Event::ConnectFailed { server, error: ConnectionError::Tls(_) } if *server == url),
                "{version:?}: {seen:?}"
            );
            assert_eq!(seen.last(), Some(&Event::Closed), "{version:?}: {seen:?}");
        }
        // Without any CA option the system trust store is used, which does not know the test CA either.
        let msg = tls_failure(options(&server.tls_url()), &format!("{version:?}: system roots"));
        assert!(msg.contains("UnknownIssuer"), "{version:?}: {msg}");
    }
}

#[test]
fn trusting_the_wrong_ca_fails_fast_with_a_tls_error() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let opts = options(&server.tls_url())
            .add_root_certificates(fixture.untrusted_ca_path())
            .connect_timeout(Duration::from_secs(10));
        let msg = tls_failure(opts, &format!("{version:?}: only the other CA trusted"));
        assert!(msg.contains("UnknownIssuer"), "{version:?}: {msg}");
    }
}

#[test]
fn wrong_host_certificate_fails_fast_with_a_tls_error() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let wrong = fixture.wrong_host_server();
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::new(wrong.cert_pem(), wrong.key_pem())));
        for url in [server.tls_url(), server.localhost_url("tls")] {
            let opts = trusting(&url, &fixture).connect_timeout(Duration::from_secs(10));
            let msg = tls_failure(opts, &format!("{version:?} {url}: wrong host"));
            // rustls: "invalid peer certificate: certificate not valid for name ...".
            assert!(msg.contains("not valid for name"), "{version:?} {url}: {msg}");
        }
    }
}

#[test]
fn dangerous_accept_any_server_certificate_connects_to_an_untrusted_server() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let untrusted = fixture.untrusted_server();
        let server = start(
            NatsServer::builder().version(version).tls(ServerTls::new(untrusted.cert_pem(), untrusted.key_pem())),
        );
        let client = must_connect(
            options(&server.tls_url()).dangerous_accept_any_server_certificate(),
            &server,
            "accept any certificate, untrusted CA",
        );
        assert_round_trip(&client, &format!("anycert{version:?}"));
        // The name is not checked either.
        let wrong = fixture.wrong_host_server();
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::new(wrong.cert_pem(), wrong.key_pem())));
        let client = must_connect(
            options(&server.url()).dangerous_accept_any_server_certificate(),
            &server,
            "accept any certificate, wrong host",
        );
        assert_round_trip(&client, &format!("anyname{version:?}"));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Mutual TLS

#[test]
fn mutual_tls_with_a_client_certificate_connects() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture).verify(true)));
        let files = must_connect(
            trusting(&server.tls_url(), &fixture)
                .add_client_certificate(fixture.client_cert_path(), fixture.client_key_path()),
            &server,
            "mTLS, certificate files",
        );
        assert!(files.server_info().unwrap().tls_verify, "{version:?}");
        assert_round_trip(&files, &format!("mtlsfiles{version:?}"));
        let pem = must_connect(
            trusting(&server.url(), &fixture)
                .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), fixture.client_key_pem().as_bytes()),
            &server,
            "mTLS, certificate PEM",
        );
        assert_round_trip(&pem, &format!("mtlspem{version:?}"));
    }
}

#[test]
fn mutual_tls_without_an_acceptable_client_certificate_fails_with_a_tls_error() {
    let fixture = TlsFixture::new();
    // With TLS 1.3 the client's side of the handshake ends before the server has checked the client's
    // certificate, so the handshake itself succeeds for the client. The server then sends a fatal alert before
    // closing, and the reader decrypts that alert: the connect fails with `ConnectionError::Tls` naming it, not
    // with a bare `TransportClosed`. Which alert depends on the Go version the server was built with (observed):
    // 2.9.10 answers both cases with `bad_certificate`; 2.15.1 with `certificate_required` for no certificate
    // and `unknown_ca` for one from another CA.
    for (version, missing, foreign) in [
        (ServerVersion::Current, "CertificateRequired", "UnknownCA"),
        (ServerVersion::Old, "BadCertificate", "BadCertificate"),
    ] {
        let server = start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(&fixture).verify(true)));
        let opts = trusting(&server.tls_url(), &fixture).connect_timeout(Duration::from_secs(10));
        let msg = tls_failure(opts, &format!("{version:?}: mTLS without a certificate"));
        assert_eq!(msg, format!("received fatal alert: {missing}"), "{version:?}");

        let other = fixture.untrusted_client();
        let opts = trusting(&server.tls_url(), &fixture)
            .add_client_certificate(other.cert_path(), other.key_path())
            .connect_timeout(Duration::from_secs(10));
        let msg = tls_failure(opts, &format!("{version:?}: mTLS with another CA's certificate"));
        assert_eq!(msg, format!("received fatal alert: {foreign}"), "{version:?}");
    }
}

#[test]
fn unreadable_tls_files_fail_connect_at_once_with_an_options_error() {
    let fixture = TlsFixture::new();
    let missing = fixture.dir().join("no-such-file.pem");
    let url = format!("tls://127.0.0.1:{}", free_port());
    let msg = options_failure(options(&url).add_root_certificates(&missing), "missing CA file");
    assert!(msg.contains("no-such-file.pem"), "{msg}");
    let msg = options_failure(options(&url).add_root_certificates_pem(b"not a pem"), "garbage CA PEM");
    assert!(msg.contains("no certificate"), "{msg}");
    let msg = options_failure(
        options(&url)
            .add_root_certificates(fixture.ca_path())
            .add_client_certificate(fixture.client_cert_path(), &missing),
        "missing client key file",
    );
    assert!(msg.contains("private key"), "{msg}");
    // A certificate file given where the key belongs: no key material shows in the error.
    let msg = options_failure(
        options(&url)
            .add_root_certificates(fixture.ca_path())
            .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), fixture.client_cert_pem().as_bytes()),
        "certificate as key",
    );
    assert!(msg.contains("private key"), "{msg}");
    assert_no_pem_body(&msg, fixture.client_cert_pem(), "options error");
}

// ---------------------------------------------------------------------------------------------------------
// require_tls and TLS-first

#[test]
fn require_tls_against_a_plain_server_fails_with_tls_unavailable() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version));
        for (opts, what) in [
            (options(&server.url()).require_tls(true), "require_tls(true)"),
            (options(&server.tls_url()), "tls:// URL"),
        ] {
            let (e, took) = connect_err(opts.connect_timeout(Duration::from_secs(10)), what);
            assert!(matches!(e, Error::Connect(ConnectionError::TlsUnavailable)), "{version:?} {what}: {e:?}");
            assert!(took < FAIL_FAST, "{version:?} {what}: took {took:?}");
        }
        // The same options without the requirement connect in plaintext.
        let client = must_connect(options(&server.url()), &server, "plain");
        assert_round_trip(&client, &format!("plainok{version:?}"));
    }
}

#[test]
fn tls_first_connects_to_a_handshake_first_server() {
    // `handshake_first` exists from nats-server 2.10.4: 2.15.1 only.
    let fixture = TlsFixture::new();
    let mut server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first(true)));
    for url in [server.tls_url(), server.url()] {
        let client = must_connect(trusting(&url, &fixture).tls_first(), &server, &format!("tls_first {url}"));
        let info = client.server_info().unwrap();
        assert!(info.tls_required, "{url}: INFO over TLS says {info:?}");
        assert_round_trip(&client, "tlsfirst");
        // Every reconnect starts with the TLS handshake again.
        let events = client.events();
        server.restart();
        let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
        assert_eq!(reconnected, Event::Reconnected(url.clone()));
        assert_round_trip(&client, "tlsfirstagain");
        client.drain().unwrap();
    }
}

#[test]
fn without_tls_first_a_handshake_first_server_times_out_in_bounded_time() {
    let fixture = TlsFixture::new();
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first(true)));
    // The server waits for a ClientHello and the client for an INFO: nothing happens until the client's connect
    // timeout (1 s here, shorter than the server's 5 s TLS timeout) ends the attempt.
    let opts = trusting(&server.tls_url(), &fixture).connect_timeout(Duration::from_secs(1));
    let (e, took) = connect_err(opts, "no tls_first against handshake_first");
    assert!(matches!(e, Error::Connect(ConnectionError::ConnectTimeout)), "{e:?}");
    assert!(took >= Duration::from_millis(900) && took < FAIL_FAST, "took {took:?}");
}

#[test]
fn tls_first_against_a_classic_tls_server_fails_with_a_tls_error() {
    // The classic server sends its INFO in plaintext, which the client, already in the TLS handshake, reads as
    // a TLS record and rejects.
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let opts = trusting(&server.tls_url(), &fixture).tls_first().connect_timeout(Duration::from_secs(10));
        let msg = tls_failure(opts, &format!("{version:?}: tls_first against a classic server"));
        // "INFO" is no TLS content type.
        assert!(msg.contains("InvalidContentType"), "{version:?}: {msg}");
    }
}

#[test]
fn handshake_first_with_fallback_accepts_both_kinds_of_client() {
    let fixture = TlsFixture::new();
    let mode = HandshakeFirst::Fallback(Duration::from_millis(300));
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first_mode(mode)));
    let first = must_connect(trusting(&server.tls_url(), &fixture).tls_first(), &server, "tls_first, fallback");
    assert_round_trip(&first, "fallbackfirst");
    // A classic client gets the INFO after the fallback delay and upgrades.
    let classic = must_connect(trusting(&server.tls_url(), &fixture), &server, "classic, fallback");
    assert_round_trip(&classic, "fallbackclassic");
}

// ---------------------------------------------------------------------------------------------------------
// Reconnecting over TLS

#[test]
fn reconnects_over_tls_after_a_restart() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let mut server = tls_server(version, &fixture);
        for url in [server.tls_url(), server.url()] {
            let client = must_connect(trusting(&url, &fixture), &server, &format!("{version:?} {url}"));
            let events = client.events();
            let mut sub = client.subscribe("sec.rc").unwrap();
            let _svc = client.subscribe_with("sec.rc.svc", |m| drop(m.respond("here"))).unwrap();
            client.publish("sec.rc", "before").unwrap();
            assert_eq!(text(&recv(&mut sub, "before the restart")), "before");

            server.stop();
            wait_event(&events, WAIT, "Disconnected", is_disconnected);
            // Buffered while down, sent over the new TLS session.
            client.publish("sec.rc", "buffered").unwrap();
            server.restart();
            let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
            assert_eq!(reconnected, Event::Reconnected(url.clone()), "{version:?}");
            client.publish("sec.rc", "after").unwrap();
            client.flush().unwrap();
            let got: Vec<String> = [recv(&mut sub, "buffered"), recv(&mut sub, "after")].iter().map(text).collect();
            assert_eq!(got, ["buffered", "after"], "{version:?} {url}");
            assert_eq!(text(&client.request("sec.rc.svc", "?").unwrap()), "here", "{version:?} {url}");
            // A large message still crosses intact on the new session.
            let payload = pattern(600_000, 3);
            client.publish("sec.rc", payload.clone()).unwrap();
            assert!(recv(&mut sub, "large after reconnect").payload() == payload, "{version:?} {url}");
            let stats = client.statistics();
            assert_eq!((stats.connects, stats.reconnects), (2, 1), "{version:?} {url}");
            client.drain().unwrap();
        }
    }
}

/// The cluster harness has no TLS setting of its own, but every member takes raw config text: the `tls` block
/// below points at the fixture's files, which outlive the cluster in this test.
#[test]
fn tls_cluster_failover_to_a_discovered_server() {
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
    let client = trusting(&first, &fixture).event_callback(callback).connect().unwrap();
    let (connected, before) = wait_event(&events, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
    assert_eq!(connected, Event::Connected(first.clone()));
    if !before.contains(&Event::DiscoveredServers) {
        wait_event(&events, WAIT, "DiscoveredServers", |e| *e == Event::DiscoveredServers);
    }
    let other_addr = format!("127.0.0.1:{}", ports[1]);
    assert!(client.server_info().unwrap().connect_urls.contains(&other_addr));

    let mut sub = client.subscribe("sec.cluster").unwrap();
    client.flush().unwrap();
    cluster.kill(0);
    wait_event(&events, WAIT, "Disconnected", is_disconnected);
    // The discovered URL has no scheme: it is reached the way the current server was, with TLS required.
    let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
    assert_eq!(reconnected, Event::Reconnected(format!("tls://{other_addr}")));
    assert_eq!(client.server_info().unwrap().port, ports[1]);
    // A second client on the surviving server reaches the failed-over subscription.
    let other = trusting(&cluster.server(1).tls_url(), &fixture).connect().unwrap();
    other.publish("sec.cluster", "after failover").unwrap();
    other.flush().unwrap();
    assert_eq!(text(&recv(&mut sub, "after failover")), "after failover");
    assert_round_trip(&client, "clusterafter");
}

#[test]
fn tls_is_never_dropped_on_reconnect_when_required() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let mut tls = tls_server(version, &fixture);
        let port = tls.port();
        let (cb_url, by_url) = event_recorder();
        let (cb_opt, by_option) = event_recorder();
        let url_client = must_connect(trusting(&tls.tls_url(), &fixture).event_callback(cb_url), &tls, "tls://");
        let opt_client = must_connect(
            trusting(&tls.url(), &fixture).require_tls(true).event_callback(cb_opt),
            &tls,
            "nats:// + require_tls",
        );
        tls.stop();
        // A plaintext server takes over the same port: neither client may talk to it.
        let plain = start(NatsServer::builder().version(version).port(port));
        for (events, what) in [(&by_url, "tls://"), (&by_option, "require_tls")] {
            let (failed, seen) = wait_event(events, RECONNECT_WAIT, "a refused reconnect", |e| {
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

/// A listener that accepts connections and keeps them open, writing `greeting` (if any) and nothing more.
/// Returns its port and the number of connections accepted so far.
fn stalling_listener(greeting: Option<&'static str>) -> (u16, Arc<AtomicUsize>) {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = vec![];
        for mut sock in listener.incoming().flatten() {
            if let Some(greeting) = greeting {
                let _ = sock.write_all(greeting.as_bytes());
            }
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (port, accepted)
}

#[test]
fn a_stalled_tls_handshake_fails_within_the_connect_timeout() {
    // A "server" that announces TLS and then never answers the ClientHello, and one that says nothing at all to
    // a TLS-first client.
    let info = "INFO {\"server_id\":\"STALL\",\"version\":\"2.10.0\",\"proto\":1,\"max_payload\":1048576,\
                \"tls_required\":true}\r\n";
    let (upgrade_port, upgrade_accepted) = stalling_listener(Some(info));
    let (first_port, first_accepted) = stalling_listener(None);
    for (opts, accepted, what) in [
        (options(&format!("tls://127.0.0.1:{first_port}")).tls_first(), &first_accepted, "TLS first"),
        (options(&format!("nats://127.0.0.1:{upgrade_port}")), &upgrade_accepted, "upgrade"),
    ] {
        let opts = opts.dangerous_accept_any_server_certificate().connect_timeout(Duration::from_secs(1));
        let (e, took) = connect_err(opts, what);
        // The handshake did not finish before the connect deadline: a timeout (or a TLS failure saying so), not
        // `TransportClosed`, since nobody closed anything.
        let timed_out = match &e {
            Error::Connect(ConnectionError::ConnectTimeout) => true,
            Error::Connect(ConnectionError::Tls(m)) => m.contains("timed out"),
            _ => false,
        };
        assert!(timed_out, "{what}: expected ConnectTimeout, got {e:?}");
        assert!(took >= Duration::from_millis(900) && took < FAIL_FAST, "{what}: took {took:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "{what}: one attempt, one connection");
    }
}

/// Reads `THREADS * PER_THREAD` stress messages from `sub`, checking each publisher's order and every payload.
fn check_stress(mut sub: nats_blocking::Subscriber, who: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = [0usize; STRESS_THREADS];
        for _ in 0..STRESS_THREADS * STRESS_PER_THREAD {
            let msg = recv(&mut sub, who);
            let t: usize = msg.subject().as_str().unwrap().rsplit('.').next().unwrap().parse().unwrap();
            let colon = msg.payload().iter().position(|&b| b == b':').unwrap();
            let i: usize = std::str::from_utf8(&msg.payload()[..colon]).unwrap().parse().unwrap();
            assert_eq!(i, next[t], "{who}: publisher {t}'s messages out of order or lost ({} dropped)", sub.dropped());
            next[t] += 1;
            assert!(msg.payload()[colon + 1..] == stress_payload(t, i), "{who}: message {t}/{i} corrupted");
        }
        assert_eq!(next, [STRESS_PER_THREAD; STRESS_THREADS], "{who}");
        assert_eq!(sub.dropped(), 0, "{who}");
    })
}

const STRESS_THREADS: usize = 4;
const STRESS_PER_THREAD: usize = 2_000;

/// Sizes from a few bytes to several TLS records.
fn stress_payload(t: usize, i: usize) -> Bytes {
    pattern((i * 7919) % 40_000, t as u8)
}

#[test]
fn concurrent_publishers_and_receivers_share_one_tls_connection() {
    let fixture = TlsFixture::new();
    let server = tls_server(ServerVersion::Current, &fixture);
    // Room for everything (about 160 MB): checking payloads in a debug build is slower than publishing them,
    // and this test is about the bytes, not slow consumers.
    let limits = PendingLimits { messages: 1 << 20, bytes: 1 << 30 };
    let stress_options = || trusting(&server.tls_url(), &fixture).pending_limits(limits);
    let client = must_connect(stress_options(), &server, "stress");
    let observer = must_connect(stress_options(), &server, "observer");
    // The publishing connection also receives everything it sends: its reader and writer use the session at once.
    let own = client.subscribe("sec.stress.>").unwrap();
    let other = observer.subscribe("sec.stress.>").unwrap();
    client.flush().unwrap();
    observer.flush().unwrap();
    let readers = [check_stress(own, "own"), check_stress(other, "observer")];
    let publishers: Vec<_> = (0..STRESS_THREADS)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..STRESS_PER_THREAD {
                    let mut payload = format!("{i}:").into_bytes();
                    payload.extend_from_slice(&stress_payload(t, i));
                    client.publish(&format!("sec.stress.{t}"), payload).unwrap();
                }
            })
        })
        .collect();
    for t in publishers {
        t.join().unwrap();
    }
    client.flush().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(client.statistics().reconnects, 0);
    assert_eq!(observer.statistics().reconnects, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Token and user/password

#[test]
fn token_authentication() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("t0ken-s3cret"));
        assert!(server.fetch_info().unwrap().contains("\"auth_required\":true"));
        let client = must_connect(options(&server.url()).token("t0ken-s3cret"), &server, "token option");
        assert_round_trip(&client, &format!("token{version:?}"));
        let in_url = format!("nats://t0ken-s3cret@127.0.0.1:{}", server.port());
        let client = must_connect(options(&in_url), &server, "token in the URL");
        assert_round_trip(&client, &format!("tokenurl{version:?}"));
        // The URL's token wins over the option.
        let client = must_connect(options(&in_url).token("wrong"), &server, "URL token over option");
        assert_round_trip(&client, &format!("tokenwins{version:?}"));

        auth_failure(options(&server.url()).token("wrong"), "wrong token");
        auth_failure(options(&server.url()), "no token");
        auth_failure(options(&format!("nats://wrong@127.0.0.1:{}", server.port())), "wrong token in the URL");
    }
}

#[test]
fn user_and_password_authentication() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).user_password("alice", "p4ss-w0rd"));
        let client = must_connect(options(&server.url()).user_and_password("alice", "p4ss-w0rd"), &server, "option");
        assert_round_trip(&client, &format!("userpass{version:?}"));
        let in_url = format!("nats://alice:p4ss-w0rd@127.0.0.1:{}", server.port());
        let (callback, events) = event_recorder();
        let client = must_connect(options(&in_url).event_callback(callback), &server, "userinfo in the URL");
        assert_round_trip(&client, &format!("userpassurl{version:?}"));
        // Events name the server without its credentials.
        let (connected, _) = wait_event(&events, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
        assert_eq!(connected, Event::Connected(server.url()));
        // The URL's credentials win over the options'.
        let client =
            must_connect(options(&in_url).user_and_password("alice", "wrong"), &server, "URL userinfo over option");
        assert_round_trip(&client, &format!("userpasswins{version:?}"));

        auth_failure(options(&server.url()).user_and_password("alice", "wrong"), "wrong password");
        auth_failure(options(&server.url()).user_and_password("bob", "p4ss-w0rd"), "wrong user");
        auth_failure(options(&server.url()), "no credentials");
        let bad_url = format!("nats://alice:wr0ng-url-pass@127.0.0.1:{}", server.port());
        let (callback, events) = event_recorder();
        let e = auth_failure(options(&bad_url).event_callback(callback), "wrong password in the URL");
        assert!(!format!("{e:?} {e}").contains("wr0ng-url-pass"));
        let (failed, _) = wait_event(&events, WAIT, "ConnectFailed", is_connect_failed);
        assert!(!format!("{failed:?}").contains("wr0ng-url-pass"), "{failed:?}");
        assert!(matches!(&failed, Event::ConnectFailed { server: s, .. } if *s == server.url()), "{failed:?}");
    }
}

#[test]
fn tls_and_password_authentication_combine() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .tls(ServerTls::from_fixture(&fixture))
                .user_password("alice", "p4ss-w0rd"),
        );
        let in_url = format!("tls://alice:p4ss-w0rd@127.0.0.1:{}", server.port());
        let client = must_connect(trusting(&in_url, &fixture), &server, "TLS + userinfo");
        assert_round_trip(&client, &format!("tlsuser{version:?}"));
        auth_failure(trusting(&server.tls_url(), &fixture).user_and_password("alice", "no"), "TLS + wrong password");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Nkeys

#[test]
fn nkey_authentication() {
    for version in BOTH {
        let user = NkeyUser::generate();
        let server = start(NatsServer::builder().version(version).nkey_user(user.public_key()));
        let client = must_connect(options(&server.url()).nkey(user.seed()), &server, "nkey");
        assert_round_trip(&client, &format!("nkey{version:?}"));

        let stranger = NkeyUser::generate();
        auth_failure(options(&server.url()).nkey(stranger.seed()), "an unknown nkey");
        auth_failure(options(&server.url()), "no nkey");
    }
}

#[test]
fn a_bad_nkey_seed_fails_connect_at_once_without_showing_the_seed() {
    let user = NkeyUser::generate();
    // A seed with its checksum broken, and plain garbage; nothing is listening, so only the options can fail.
    let mut broken = user.seed().to_owned();
    let last = broken.pop().unwrap();
    broken.push(if last == 'A' { 'B' } else { 'A' });
    let url = format!("nats://127.0.0.1:{}", free_port());
    for seed in [broken.as_str(), "SUnot-a-seed-at-all", ""] {
        let opts = options(&url).nkey(seed);
        assert!(seed.is_empty() || !format!("{opts:?}").contains(seed));
        let msg = options_failure(opts, &format!("bad seed {seed:?}"));
        assert!(msg.contains("seed"), "{msg}");
        if !seed.is_empty() {
            assert!(!msg.contains(seed) && !msg.contains(&seed[..12]), "the error shows the seed: {msg}");
        }
    }
    // A JWT with a bad seed: the same.
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let msg = options_failure(options(&url).jwt(alice.jwt(), &broken), "jwt with a bad seed");
    assert!(!msg.contains(&broken) && !msg.contains(&broken[..12]), "{msg}");
}

// ---------------------------------------------------------------------------------------------------------
// Operator mode: creds file, creds string, JWT plus seed, callback

#[test]
fn creds_file_authentication() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let alice = operator.user("alice").unwrap();
        let creds = alice.creds_file().unwrap();
        let client = must_connect(options(&server.url()).credentials_file(creds.path()), &server, "creds file");
        assert_round_trip(&client, &format!("credsfile{version:?}"));

        // A user of an operator this server does not know.
        let stranger = OperatorFixture::new().user("stranger").unwrap().creds_file().unwrap();
        auth_failure(options(&server.url()).credentials_file(stranger.path()), "unknown account");
        // Alice's JWT signed with someone else's seed.
        let mallory = operator.user("mallory").unwrap();
        let forged = creds.path().with_file_name("forged.creds");
        std::fs::write(&forged, format_creds(alice.jwt(), mallory.seed())).unwrap();
        auth_failure(options(&server.url()).credentials_file(&forged), "JWT and seed of different users");
        // An expired user.
        let expired = operator
            .user_with("old", UserOptions::new().expires_at(std::time::SystemTime::now() - Duration::from_secs(60)))
            .unwrap()
            .creds_file()
            .unwrap();
        auth_failure(options(&server.url()).credentials_file(expired.path()), "expired JWT");
    }
}

#[test]
fn unreadable_or_invalid_creds_fail_connect_at_once_without_showing_secrets() {
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let creds = alice.creds_file().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let dir = creds.path().parent().unwrap();

    let missing = dir.join("missing.creds");
    let msg = options_failure(options(&url).credentials_file(&missing), "missing creds file");
    assert!(msg.contains("missing.creds"), "{msg}");

    // A creds file whose seed is corrupted.
    let mut broken = alice.seed().to_owned();
    broken.replace_range(5..6, if &broken[5..6] == "A" { "B" } else { "A" });
    let bad = dir.join("bad-seed.creds");
    std::fs::write(&bad, format_creds(alice.jwt(), &broken)).unwrap();
    let msg = options_failure(options(&url).credentials_file(&bad), "creds file with a bad seed");
    assert!(msg.contains("seed"), "{msg}");
    for secret in [broken.as_str(), &broken[..12], alice.jwt()] {
        assert!(!msg.contains(secret), "the error shows a secret: {msg}");
    }
    // The same as a string; and text that is not creds at all.
    let msg = options_failure(options(&url).credentials(&format_creds(alice.jwt(), &broken)), "creds string, bad seed");
    assert!(!msg.contains(&broken[..12]) && !msg.contains(alice.jwt()), "{msg}");
    let msg = options_failure(options(&url).credentials("not creds"), "creds string without blocks");
    assert!(msg.contains("JWT"), "{msg}");
    // A directory is not a creds file.
    options_failure(options(&url).credentials_file(dir), "a directory");
}

#[test]
fn a_rotated_creds_file_is_read_again_at_reconnect() {
    let operator = OperatorFixture::new();
    let mut server = start(NatsServer::builder().operator(&operator));
    let alice = operator.user("alice").unwrap();
    let creds = alice.creds_file().unwrap();
    let (callback, events) = event_recorder();
    let client = must_connect(
        options(&server.url()).credentials_file(creds.path()).event_callback(callback),
        &server,
        "creds file",
    );
    assert_round_trip(&client, "rotate1");

    // Replace the file with a user the server refuses, then restart: the reconnect reads the new file.
    let stranger = OperatorFixture::new().user("stranger").unwrap();
    stranger.write_creds(creds.path()).unwrap();
    server.restart();
    let (failed, _) = wait_event(
        &events,
        RECONNECT_WAIT,
        "a refused reconnect",
        |e| matches!(e, Event::ConnectFailed { error: ConnectionError::Server(s), .. } if s.is_auth_error()),
    );
    assert!(matches!(failed, Event::ConnectFailed { .. }));
    // Rotate to a valid user: the next attempt succeeds.
    operator.user("bob").unwrap().write_creds(creds.path()).unwrap();
    wait_event(&events, RECONNECT_WAIT, "Reconnected with the rotated file", is_reconnected);
    assert_round_trip(&client, "rotate2");
}

#[test]
fn an_expiring_user_is_disconnected_over_tls_with_a_typed_error() {
    let fixture = TlsFixture::new();
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).operator(&operator).tls(ServerTls::from_fixture(&fixture)));
        let expires = std::time::SystemTime::now() + Duration::from_secs(3);
        let user = operator.user_with("brief", UserOptions::new().expires_at(expires)).unwrap();
        let (callback, events) = event_recorder();
        let client = must_connect(
            trusting(&server.tls_url(), &fixture).credentials(&user.creds()).event_callback(callback),
            &server,
            "expiring user",
        );
        assert_round_trip(&client, &format!("expiring{version:?}"));
        // The server says why, then closes the TLS session; the client reports the reason, not a bare loss.
        let (lost, _) = wait_event(&events, Duration::from_secs(10), "Disconnected", is_disconnected);
        match lost {
            Event::Disconnected(ConnectionError::Server(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::AuthenticationExpired, "{version:?}: {e}");
                assert!(e.is_auth_error());
            }
            other => panic!("{version:?}: expected a Disconnected with the server's reason, got {other:?}"),
        }
        // Reconnecting with the expired JWT is refused, and reported as such.
        let (failed, _) = wait_event(&events, RECONNECT_WAIT, "a refused reconnect", is_connect_failed);
        assert!(
            matches!(&failed, Event::ConnectFailed { error: ConnectionError::Server(e), .. } if e.is_auth_error()),
            "{version:?}: {failed:?}"
        );
        client.close();
    }
}

#[test]
fn creds_string_and_jwt_with_seed_authentication() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let alice = operator.user("alice").unwrap();
        let client = must_connect(options(&server.url()).credentials(&alice.creds()), &server, "creds string");
        assert_round_trip(&client, &format!("credsstr{version:?}"));
        let client = must_connect(options(&server.url()).jwt(alice.jwt(), alice.seed()), &server, "jwt + seed");
        assert_round_trip(&client, &format!("jwtseed{version:?}"));

        let mallory = operator.user("mallory").unwrap();
        auth_failure(options(&server.url()).jwt(alice.jwt(), mallory.seed()), "jwt with another user's seed");
        auth_failure(options(&server.url()).credentials(&format_creds(alice.jwt(), mallory.seed())), "forged creds");
        let stranger = OperatorFixture::new().user("stranger").unwrap();
        auth_failure(options(&server.url()).credentials(&stranger.creds()), "unknown account, creds string");
    }
}

#[test]
fn credentials_callback_signs_each_handshake_nonce() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let mut server = start(NatsServer::builder().version(version).operator(&operator));
        let alice = operator.user("alice").unwrap();
        let nonces: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let (jwt, seed, seen) = (alice.jwt().to_owned(), alice.seed().to_owned(), nonces.clone());
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            seen.lock().unwrap().push(nonce.map(str::to_owned));
            let nonce = nonce.ok_or("no nonce")?;
            let mut c = Credentials::default();
            c.jwt = Some(jwt.clone());
            c.sig = Some(nats_server_harness::auth::sign_nonce(&seed, nonce).map_err(|e| e.to_string())?);
            Ok(c)
        });
        let client = must_connect(opts, &server, "credentials callback");
        assert_round_trip(&client, &format!("callback{version:?}"));
        let events = client.events();
        server.restart();
        wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
        assert_round_trip(&client, &format!("callback2{version:?}"));
        // Called for each handshake (at least the first and the one after the restart; an attempt lost while
        // the server was starting may add one), each time with that connection's fresh nonce.
        let nonces = nonces.lock().unwrap().clone();
        assert!(nonces.len() >= 2, "{version:?}: {nonces:?}");
        assert!(nonces.iter().all(Option::is_some), "{version:?}: {nonces:?}");
        let distinct: std::collections::HashSet<_> = nonces.iter().collect();
        assert_eq!(distinct.len(), nonces.len(), "{version:?}: a nonce was reused: {nonces:?}");

        // A callback signing with the wrong key is refused by the server.
        let (jwt, other) = (alice.jwt().to_owned(), operator.user("mallory").unwrap().seed().to_owned());
        let opts = options(&server.url()).credentials_callback(move |nonce| {
            let mut c = Credentials::default();
            c.jwt = Some(jwt.clone());
            c.sig = Some(nats_server_harness::auth::sign_nonce(&other, nonce.unwrap_or_default()).unwrap());
            Ok(c)
        });
        auth_failure(opts, "callback with the wrong seed");

        // A failing callback fails the attempt with its own message, without contacting the server again.
        let opts = options(&server.url()).credentials_callback(|_| Err("vault unavailable".to_owned()));
        let (e, took) = connect_err(opts, "failing callback");
        assert!(took < FAIL_FAST, "{took:?}");
        assert!(
            matches!(&e, Error::Connect(ConnectionError::Credentials(m)) if m.contains("vault unavailable")),
            "{version:?}: {e:?}"
        );
    }
}

#[test]
fn credentials_callback_supplies_user_and_password() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).user_password("carol", "cb-pass"));
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let opts = options(&server.url()).user_and_password("carol", "wrong").credentials_callback(move |nonce| {
            // No nkey or JWT user is configured: the server sends no nonce.
            assert!(nonce.is_none(), "unexpected nonce {nonce:?}");
            counter.fetch_add(1, Ordering::SeqCst);
            let mut c = Credentials::default();
            c.pass = Some("cb-pass".to_owned());
            Ok(c)
        });
        // The callback's password replaces the option's; the option's user is kept.
        let client = must_connect(opts, &server, "callback password");
        assert_round_trip(&client, &format!("cbpass{version:?}"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let opts = options(&server.url()).credentials_callback(|_| {
            let mut c = Credentials::default();
            c.user = Some("carol".to_owned());
            c.pass = Some("nope".to_owned());
            Ok(c)
        });
        auth_failure(opts, "callback with a wrong password");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Refused credentials and backoff

#[test]
fn retry_on_initial_connect_with_refused_credentials_backs_off() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).token("right"));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let record = attempts.clone();
        let started = Instant::now();
        let client = options(&server.url())
            .token("wrong")
            .reconnect_policy(ReconnectPolicy::default())
            .retry_on_initial_connect()
            .event_callback(move |e| {
                if let Event::ConnectFailed { error, .. } = e {
                    record.lock().unwrap().push(error);
                }
            })
            .connect()
            .expect("with retry_on_initial_connect, connect returns at once");
        assert!(started.elapsed() < Duration::from_secs(1), "{version:?}: connect blocked");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!client.is_closed(), "{version:?}: the client gave up");
        let attempts = attempts.lock().unwrap().clone();
        // Default backoff (50 ms doubling, plus jitter): about six attempts in 1.5 s. A loop without backoff
        // would make hundreds.
        assert!(attempts.len() >= 2, "{version:?}: no retry after the refusal: {attempts:?}");
        assert!(attempts.len() < 15, "{version:?}: {} attempts in 1.5 s: no backoff", attempts.len());
        for e in &attempts {
            assert!(matches!(e, ConnectionError::Server(s) if s.is_auth_error()), "{version:?}: {e:?}");
        }
        client.close();
    }
}

#[test]
fn retry_on_initial_connect_with_an_untrusted_certificate_backs_off() {
    let fixture = TlsFixture::new();
    let untrusted = fixture.untrusted_server();
    let server = start(NatsServer::builder().tls(ServerTls::new(untrusted.cert_pem(), untrusted.key_pem())));
    let (callback, events) = event_recorder();
    let client = trusting(&server.tls_url(), &fixture)
        .reconnect_policy(ReconnectPolicy::default())
        .retry_on_initial_connect()
        .event_callback(callback)
        .connect()
        .expect("with retry_on_initial_connect, connect returns at once");
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

// ---------------------------------------------------------------------------------------------------------
// Permissions

#[test]
fn permission_violations_end_the_subscription_or_report_an_event_and_the_connection_stays_up() {
    let permissions = Permissions::new()
        .allow_publish("allowed.>")
        .allow_publish("_INBOX.>")
        .allow_subscribe("allowed.>")
        .allow_subscribe("_INBOX.>");
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .auth_user(AuthUser::password("limited", "pw").permissions(permissions.clone())),
        );
        let client = must_connect(options(&server.url()).user_and_password("limited", "pw"), &server, "limited user");
        let events = client.events();
        let mut allowed = client.subscribe("allowed.x").unwrap();
        let mut denied = client.subscribe("denied.x").unwrap();
        let mut denied_queue = client.queue_subscribe("denied.q", "workers").unwrap();
        client.flush().unwrap();
        client.publish("allowed.x", "one").unwrap();

        // The denied subscriptions end with the server's error; the allowed one is unaffected.
        match denied.next_timeout(WAIT) {
            Err(Error::Permission(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation, "{version:?}");
                assert_eq!(e.permission(), Some((PermissionOp::Subscribe, "denied.x", None)), "{version:?}: {e}");
            }
            other => panic!("{version:?}: the denied subscription should end with Permission, got {other:?}"),
        }
        match denied_queue.next_timeout(WAIT) {
            Err(Error::Permission(e)) => {
                let expected = Some((PermissionOp::Subscribe, "denied.q", Some("workers")));
                assert_eq!(e.permission(), expected, "{version:?}: {e}");
            }
            other => panic!("{version:?}: the denied queue subscription should end with Permission, got {other:?}"),
        }
        // Ended for good: asking again reports the same, at once.
        assert!(matches!(denied.next_timeout(WAIT), Err(Error::Permission(_))));
        assert_eq!(text(&recv(&mut allowed, "allowed subscription")), "one");

        // A denied publish cannot fail the call (publishing does not wait): the server's -ERR is an event.
        client.publish("denied.pub", "nope").unwrap();
        let (event, before) = wait_event(
            &events,
            WAIT,
            "the publish violation",
            |e| matches!(e, Event::ServerError(s) if s.permission().is_some_and(|(op, _, _)| op == PermissionOp::Publish)),
        );
        let Event::ServerError(e) = event else { unreachable!() };
        assert_eq!(e.permission(), Some((PermissionOp::Publish, "denied.pub", None)), "{version:?}: {e}");
        assert!(!e.closes_connection());
        assert!(!before.iter().any(is_disconnected), "{version:?}: {before:?}");

        // The connection is still up and serves the allowed subjects.
        client.flush().unwrap();
        let _svc = client.subscribe_with("allowed.svc", |m| drop(m.respond("fine"))).unwrap();
        client.flush().unwrap();
        assert_eq!(text(&client.request("allowed.svc", "?").unwrap()), "fine", "{version:?}");
        client.publish("allowed.x", "two").unwrap();
        assert_eq!(text(&recv(&mut allowed, "after the violations")), "two");
        assert!(!client.is_closed());
        assert_eq!(client.statistics().reconnects, 0, "{version:?}");
        let later: Vec<Event> = events.try_iter().collect();
        assert!(!later.iter().any(is_disconnected), "{version:?}: {later:?}");
        assert!(take_queued(&mut allowed).is_empty());
    }
}

#[test]
fn jwt_permissions_are_enforced_the_same_way() {
    let operator = OperatorFixture::new();
    for version in BOTH {
        let server = start(NatsServer::builder().version(version).operator(&operator));
        let user = operator
            .user_with(
                "limited",
                UserOptions::new().permissions(
                    Permissions::new().allow_publish("ok.>").allow_subscribe("ok.>").deny_subscribe("ok.secret"),
                ),
            )
            .unwrap();
        let client = must_connect(options(&server.url()).credentials(&user.creds()), &server, "JWT permissions");
        let events = client.events();
        let mut ok = client.subscribe("ok.a").unwrap();
        let mut secret = client.subscribe("ok.secret").unwrap();
        client.publish("ok.a", "1").unwrap();
        match secret.next_timeout(WAIT) {
            Err(Error::Permission(e)) => {
                assert_eq!(e.permission(), Some((PermissionOp::Subscribe, "ok.secret", None)), "{version:?}: {e}")
            }
            other => panic!("{version:?}: expected Permission, got {other:?}"),
        }
        assert_eq!(text(&recv(&mut ok, "allowed JWT subscription")), "1");
        client.publish("nope", "x").unwrap();
        wait_event(
            &events,
            WAIT,
            "the publish violation",
            |e| matches!(e, Event::ServerError(s) if s.permission() == Some((PermissionOp::Publish, "nope", None))),
        );
        client.flush().unwrap();
        client.publish("ok.a", "2").unwrap();
        assert_eq!(text(&recv(&mut ok, "after the violation")), "2");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Secrets in Debug output

/// Asserts that no line of the PEM's base64 body appears in `shown`.
#[track_caller]
fn assert_no_pem_body(shown: &str, pem: &str, what: &str) {
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() > 16) {
        assert!(!shown.contains(line), "{what} shows PEM content {line:?}: {shown}");
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let fixture = TlsFixture::new();
    let nkey = NkeyUser::generate();
    let operator = OperatorFixture::new();
    let alice = operator.user("alice").unwrap();
    let creds = alice.creds_file().unwrap();
    let key_pem = fixture.client_key_pem();
    let url = "nats://someone:url-pa55word@127.0.0.1:4222";

    let cases: Vec<(&str, ConnectOptions, Vec<&str>)> = vec![
        ("password", ConnectOptions::new().user_and_password("u", "hunter2-pa55"), vec!["hunter2-pa55"]),
        ("URL password", ConnectOptions::new().server(url), vec!["url-pa55word"]),
        ("token", ConnectOptions::new().token("t0ken-very-secret"), vec!["t0ken-very-secret"]),
        ("nkey seed", ConnectOptions::new().nkey(nkey.seed()), vec![nkey.seed()]),
        ("creds string", ConnectOptions::new().credentials(&alice.creds()), vec![alice.jwt(), alice.seed()]),
        ("creds file", ConnectOptions::new().credentials_file(creds.path()), vec![alice.jwt(), alice.seed()]),
        ("jwt + seed", ConnectOptions::new().jwt(alice.jwt(), alice.seed()), vec![alice.jwt(), alice.seed()]),
        (
            "client key PEM",
            ConnectOptions::new().add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), key_pem.as_bytes()),
            vec![key_pem],
        ),
        (
            "client key file",
            ConnectOptions::new().add_client_certificate(fixture.client_cert_path(), fixture.client_key_path()),
            vec![key_pem],
        ),
    ];
    let all = ConnectOptions::new()
        .server(url)
        .user_and_password("u", "hunter2-pa55")
        .token("t0ken-very-secret")
        .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), key_pem.as_bytes());
    for (what, opts, secrets) in cases {
        let shown = format!("{opts:?}");
        assert!(shown.starts_with("ConnectOptions"), "{shown}");
        for secret in &secrets {
            if secret.contains("-----BEGIN") {
                assert_no_pem_body(&shown, secret, what);
            } else {
                assert!(!shown.contains(secret), "{what}: Debug shows the secret: {shown}");
                // Not even a recognisable piece of it.
                assert!(!shown.contains(&secret[..12]), "{what}: Debug shows part of the secret: {shown}");
            }
        }
        let pretty = format!("{opts:#?}");
        for secret in secrets.iter().filter(|s| !s.contains("-----BEGIN")) {
            assert!(!pretty.contains(secret), "{what}: pretty Debug shows the secret");
        }
    }
    // Everything at once, plus a credentials callback.
    let all = all.nkey(nkey.seed()).credentials_callback(|_| Ok(Credentials::default()));
    let shown = format!("{all:?}");
    for secret in ["hunter2-pa55", "t0ken-very-secret", "url-pa55word", nkey.seed()] {
        assert!(!shown.contains(secret), "Debug shows {secret}: {shown}");
    }
    assert_no_pem_body(&shown, key_pem, "all options");
    // The user name is not a secret, and it helps to see it.
    assert!(shown.contains("\"u\""), "{shown}");

    // Credentials as a callback returns them.
    let mut c = Credentials::default();
    c.user = Some("u".into());
    c.pass = Some("cred-pa55".into());
    c.token = Some("cred-t0ken".into());
    c.jwt = Some(alice.jwt().to_owned());
    c.sig = Some("c2lnbmF0dXJlLXNlY3JldA".into());
    let shown = format!("{c:?}");
    for secret in ["cred-pa55", "cred-t0ken", alice.jwt(), "c2lnbmF0dXJlLXNlY3JldA"] {
        assert!(!shown.contains(secret), "Credentials Debug shows {secret}: {shown}");
    }
}

#[test]
fn a_configured_ca_makes_tls_required_even_for_a_nats_url() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .monitoring(true)
                .tls(ServerTls::from_fixture(&fixture).allow_non_tls(true)),
        );
        // A nats:// URL and only a CA: the client wants TLS, so it upgrades although the server would take
        // plaintext.
        let client = must_connect(trusting(&server.url(), &fixture).name("ca-only"), &server, "CA, nats:// URL");
        let entry = connz_entry(&server, "ca-only");
        assert!(entry.contains("\"tls_version\":\"1."), "{version:?}: a client with a CA fell back: {entry}");
        drop(client);
    }
    // Against a server without TLS at all, a CA is a demand the server cannot meet.
    let plain = start(NatsServer::builder());
    match connect_err(trusting(&plain.url(), &fixture), "CA against a plain server") {
        (Error::Connect(ConnectionError::TlsUnavailable), took) => assert!(took < FAIL_FAST, "{took:?}"),
        (other, _) => panic!("expected TlsUnavailable, got {other:?}"),
    }
}

#[test]
fn a_denied_reply_inbox_fails_requests_at_once_with_a_permission_error() {
    // Everything but the default inbox may be used.
    let permissions = Permissions::new().allow_publish(">").allow_subscribe("svc.>");
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .auth_user(AuthUser::password("noinbox", "pw").permissions(permissions.clone())),
        );
        let client = must_connect(options(&server.url()).user_and_password("noinbox", "pw"), &server, "no inbox");
        let _svc = client.subscribe_with("svc.echo", |m| {
            let _ = m.respond(m.payload_bytes());
        });
        let started = Instant::now();
        match client.request_with_timeout("svc.echo", "hi", Duration::from_secs(20)) {
            Err(Error::Permission(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation, "{version:?}: {e}");
                assert!(matches!(e.permission(), Some((PermissionOp::Subscribe, s, None)) if s.starts_with("_INBOX.")));
            }
            other => panic!("{version:?}: expected Permission, got {other:?}"),
        }
        assert!(started.elapsed() < FAIL_FAST, "{version:?}: waited {:?} instead of failing", started.elapsed());
        // The connection is still usable.
        client.publish("svc.other", "x").unwrap();
        client.flush().unwrap();
        assert!(!client.is_closed(), "{version:?}");
    }
}

//! TLS connections the client must refuse, or cannot have: untrusted and wrong-host certificates, mutual TLS
//! without an acceptable client certificate, unreadable TLS files, `require_tls` against a plain server. Each
//! fails fast, typed, after one attempt.

use std::time::Duration;

use conformance::TestClient;
use nats_client::{Error, Event};
use nats_proto::ConnectionError;
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::{NatsServer, ServerVersion};

use crate::common::{free_port, options};
use crate::support::{
    assert_no_pem_body, connect_fails, must_connect, nowhere, options_failure, round_trip, start, tls_failure,
    tls_server, trusting, BOTH, FAIL_FAST,
};

pub(crate) fn untrusted_server_certificate_fails_fast_with_a_tls_error<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let untrusted = fixture.untrusted_server();
        let server = start(
            NatsServer::builder().version(version).tls(ServerTls::new(untrusted.cert_pem(), untrusted.key_pem())),
        );
        // A long connect timeout: failing fast must come from the TLS error, not from waiting it out.
        for url in [server.tls_url(), server.url()] {
            let what = format!("{version:?} {url}: untrusted CA");
            let opts = trusting(&url, &fixture).connect_timeout(Duration::from_secs(10));
            let (error, _, seen) = connect_fails::<C>(opts, &what);
            let msg = match error {
                Error::Connect(ConnectionError::Tls(msg)) => msg,
                other => panic!("{what}: expected Error::Connect(Tls), got {other:?}"),
            };
            assert!(msg.contains("UnknownIssuer"), "{what}: {msg}");
            assert!(msg.contains("certificate"), "{what}: {msg}");
            // One attempt, no retry loop: one ConnectFailed (for this server, a TLS failure), then Closed.
            assert!(
                matches!(&seen[0], Event::ConnectFailed { server, error: ConnectionError::Tls(_) } if *server == url),
                "{what}: {seen:?}"
            );
            assert_eq!(seen.last(), Some(&Event::Closed), "{what}: {seen:?}");
        }
        // Without any CA option the system trust store is used, which does not know the test CA either.
        let msg = tls_failure::<C>(options(&server.tls_url()), &format!("{version:?}: system roots, untrusted CA"));
        assert!(msg.contains("UnknownIssuer"), "{version:?}: {msg}");
        let server = tls_server(version, &fixture);
        let msg = tls_failure::<C>(options(&server.tls_url()), &format!("{version:?}: system roots, test CA"));
        assert!(msg.contains("UnknownIssuer"), "{version:?}: {msg}");
    }
}

pub(crate) fn trusting_the_wrong_ca_fails_fast_with_a_tls_error<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let opts = options(&server.tls_url())
            .add_root_certificates(fixture.untrusted_ca_path())
            .connect_timeout(Duration::from_secs(10));
        let msg = tls_failure::<C>(opts, &format!("{version:?}: only the other CA trusted"));
        assert!(msg.contains("UnknownIssuer"), "{version:?}: {msg}");
    }
}

pub(crate) fn wrong_host_certificate_fails_fast_with_a_tls_error<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let wrong = fixture.wrong_host_server();
        let server =
            start(NatsServer::builder().version(version).tls(ServerTls::new(wrong.cert_pem(), wrong.key_pem())));
        for url in [server.tls_url(), server.localhost_url("tls")] {
            let opts = trusting(&url, &fixture).connect_timeout(Duration::from_secs(10));
            let msg = tls_failure::<C>(opts, &format!("{version:?} {url}: wrong host"));
            // rustls: "invalid peer certificate: certificate not valid for name ...".
            assert!(msg.contains("not valid for name"), "{version:?} {url}: {msg}");
        }
    }
}

pub(crate) fn dangerous_accept_any_server_certificate_connects_to_untrusted_servers<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        for (name, pair) in [("untrusted CA", fixture.untrusted_server()), ("wrong host", fixture.wrong_host_server())]
        {
            let server =
                start(NatsServer::builder().version(version).tls(ServerTls::new(pair.cert_pem(), pair.key_pem())));
            // Neither the issuer nor the name is checked.
            for (n, url) in [server.tls_url(), server.url()].iter().enumerate() {
                let opts = options(url).dangerous_accept_any_server_certificate();
                let client: C = must_connect(opts, &server, &format!("{version:?} {name} at {url}"));
                round_trip(&client, &format!("anycert{version:?}{}{n}", name.len()));
            }
        }
    }
}

pub(crate) fn mutual_tls_with_and_without_a_client_certificate<C: TestClient>() {
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
        let files = trusting(&server.tls_url(), &fixture)
            .add_client_certificate(fixture.client_cert_path(), fixture.client_key_path());
        let client: C = must_connect(files, &server, &format!("{version:?} mTLS, certificate files"));
        assert!(client.server_info().unwrap().tls_verify, "{version:?}");
        round_trip(&client, &format!("mtlsfiles{version:?}"));
        let pem = trusting(&server.url(), &fixture)
            .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), fixture.client_key_pem().as_bytes());
        let client: C = must_connect(pem, &server, &format!("{version:?} mTLS, certificate PEM"));
        round_trip(&client, &format!("mtlspem{version:?}"));

        let opts = trusting(&server.tls_url(), &fixture).connect_timeout(Duration::from_secs(10));
        let msg = tls_failure::<C>(opts, &format!("{version:?}: mTLS without a certificate"));
        assert_eq!(msg, format!("received fatal alert: {missing}"), "{version:?}");

        // A certificate from a CA the server does not trust, as files and as PEM.
        let other = fixture.untrusted_client();
        let opts = trusting(&server.tls_url(), &fixture)
            .add_client_certificate(other.cert_path(), other.key_path())
            .connect_timeout(Duration::from_secs(10));
        let msg = tls_failure::<C>(opts, &format!("{version:?}: mTLS with another CA's certificate"));
        assert_eq!(msg, format!("received fatal alert: {foreign}"), "{version:?}");
        let opts = trusting(&server.tls_url(), &fixture)
            .add_client_certificate_pem(other.cert_pem().as_bytes(), other.key_pem().as_bytes());
        let msg = tls_failure::<C>(opts, &format!("{version:?}: mTLS with another CA's certificate as PEM"));
        assert_eq!(msg, format!("received fatal alert: {foreign}"), "{version:?}");
    }
}

pub(crate) fn unreadable_tls_files_fail_connect_at_once_with_an_options_error<C: TestClient>() {
    let fixture = TlsFixture::new();
    let missing = fixture.dir().join("no-such-file.pem");
    let url = format!("tls://127.0.0.1:{}", free_port());
    let msg = options_failure::<C>(options(&url).add_root_certificates(&missing), "missing CA file");
    assert!(msg.contains("no-such-file.pem"), "{msg}");
    let opts = nowhere().add_root_certificates(fixture.dir().join("no-such-ca.pem"));
    let msg = options_failure::<C>(opts, "missing CA file, nats:// URL");
    assert!(msg.contains("no-such-ca.pem"), "{msg}");
    let msg = options_failure::<C>(options(&url).add_root_certificates_pem(b"not a pem"), "garbage CA PEM");
    assert!(msg.contains("no certificate"), "{msg}");
    let opts = nowhere().add_client_certificate(fixture.dir().join("no-such-cert.pem"), fixture.client_key_path());
    let msg = options_failure::<C>(opts, "missing client certificate");
    assert!(msg.contains("no-such-cert.pem"), "{msg}");
    let msg = options_failure::<C>(
        options(&url)
            .add_root_certificates(fixture.ca_path())
            .add_client_certificate(fixture.client_cert_path(), &missing),
        "missing client key file",
    );
    assert!(msg.contains("private key"), "{msg}");
    // A certificate file given where the key belongs: no key material shows in the error.
    let msg = options_failure::<C>(
        options(&url)
            .add_root_certificates(fixture.ca_path())
            .add_client_certificate_pem(fixture.client_cert_pem().as_bytes(), fixture.client_cert_pem().as_bytes()),
        "certificate as key",
    );
    assert!(msg.contains("private key"), "{msg}");
    assert_no_pem_body(&msg, fixture.client_cert_pem(), "options error");
}

pub(crate) fn require_tls_against_a_plain_server_fails_with_tls_unavailable<C: TestClient>() {
    for version in BOTH {
        let server = start(NatsServer::builder().version(version));
        for (opts, what) in [
            (options(&server.url()).require_tls(true), "require_tls(true)"),
            (options(&server.tls_url()), "tls:// URL"),
        ] {
            let (e, took, events) = connect_fails::<C>(opts.connect_timeout(Duration::from_secs(10)), what);
            assert!(matches!(e, Error::Connect(ConnectionError::TlsUnavailable)), "{version:?} {what}: {e:?}");
            assert!(took < FAIL_FAST, "{version:?} {what}: took {took:?}");
            assert!(
                events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::TlsUnavailable, .. })),
                "{version:?} {what}: {events:?}"
            );
        }
        // The same options without the requirement connect in plaintext.
        let client: C = must_connect(options(&server.url()), &server, "plain");
        round_trip(&client, &format!("plainok{version:?}"));
    }
}

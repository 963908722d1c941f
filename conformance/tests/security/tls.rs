//! TLS with servers the client trusts: `tls://` URLs, `nats://` URLs upgraded, the CA as a file, as PEM, or in
//! a rustls configuration given as it is, and a server that only offers TLS.

use std::sync::Arc;

use conformance::TestClient;
use nats_client::{rustls, Error, Event};
use nats_proto::ConnectionError;
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::{NatsServer, ServerVersion};

use crate::common::{event_recorder, options, server_connections, wait_recorded, wait_until, WAIT};
use crate::support::{
    connect_fails, connz_entry, must_connect, round_trip, start, tls_connections, tls_failure, tls_server, trusting,
    BOTH, FAIL_FAST,
};

/// A rustls configuration trusting `roots` only.
fn rustls_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub(crate) fn tls_with_a_trusted_ca_over_tls_urls_and_upgraded_nats_urls<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let urls = [server.tls_url(), server.url(), server.localhost_url("tls"), server.localhost_url("nats")];
        for (n, url) in urls.iter().enumerate() {
            let what = format!("{version:?} {url}");
            let (callback, recorded) = event_recorder();
            let client: C = must_connect(trusting(url, &fixture).event_callback(callback), &server, &what);
            let info = client.server_info().expect("INFO");
            assert!(info.tls_required, "{what}: {info:?}");
            round_trip(&client, &format!("tlsurl{version:?}{n}"));
            let (connected, _) = wait_recorded(&recorded, WAIT, "Connected", |e| matches!(e, Event::Connected(_)));
            assert_eq!(connected, Event::Connected(url.clone()), "{what}");
            client.drain().unwrap();
        }

        // The CA given as PEM text works the same as the file, by address and by name (the DNS SAN).
        for (n, url) in [server.tls_url(), server.localhost_url("tls")].iter().enumerate() {
            let opts = options(url).add_root_certificates_pem(fixture.ca_pem().as_bytes());
            let client: C = must_connect(opts, &server, &format!("{version:?} {url}: CA as PEM"));
            round_trip(&client, &format!("tlspem{version:?}{n}"));
            client.drain().unwrap();
        }

        // A rustls configuration given as it is.
        for (n, url) in [server.url(), server.tls_url()].iter().enumerate() {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(rustls::pki_types::CertificateDer::from(fixture.ca_der().to_vec())).unwrap();
            let opts = options(url).tls_client_config(rustls_config(roots));
            let client: C = must_connect(opts, &server, &format!("{version:?} {url}: custom rustls config"));
            round_trip(&client, &format!("tlscustom{version:?}{n}"));
        }
        // A custom configuration with an empty trust store is used as given too: it trusts nothing.
        let opts = options(&server.tls_url()).tls_client_config(rustls_config(rustls::RootCertStore::empty()));
        let msg = tls_failure::<C>(opts, &format!("{version:?}: custom config, no roots"));
        assert!(msg.contains("UnknownIssuer"), "{version:?}: {msg}");
    }
}

pub(crate) fn nats_url_upgrades_to_tls_when_the_server_requires_it<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server =
            start(NatsServer::builder().version(version).monitoring(true).tls(ServerTls::from_fixture(&fixture)));
        let client: C = must_connect(
            trusting(&server.url(), &fixture).name("upgrader"),
            &server,
            &format!("{version:?} nats:// to a TLS server"),
        );
        round_trip(&client, &format!("upgrade{version:?}"));
        // The server agrees the connection is encrypted.
        let entry = connz_entry(&server, "upgrader");
        assert!(entry.contains("\"tls_version\":\"1."), "{version:?}: no TLS in connz entry {entry}");
        client.drain().unwrap();
    }
}

/// A server that offers TLS without requiring it: plaintext unless the client asks (`require_tls` or a `tls://`
/// URL), as the server's `/connz` shows.
pub(crate) fn a_server_offering_tls_is_upgraded_to_only_when_asked<C: TestClient>() {
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = start(
            NatsServer::builder()
                .version(version)
                .monitoring(true)
                .tls(ServerTls::from_fixture(&fixture).allow_non_tls(true)),
        );
        for (n, (url, require, tls)) in [
            (server.url(), false, false),
            (server.url(), true, true),
            (server.tls_url(), false, true),
            (server.localhost_url("tls"), false, true),
        ]
        .into_iter()
        .enumerate()
        {
            let what = format!("{version:?} {url} require_tls({require})");
            let name = format!("offered{n}");
            // The plaintext case is given no TLS option at all (a CA alone asks for TLS: see
            // `a_configured_ca_makes_tls_required_even_for_a_nats_url`).
            let opts = if tls { trusting(&url, &fixture) } else { options(&url) };
            let client: C = must_connect(opts.require_tls(require).name(&name), &server, &what);
            let info = client.server_info().unwrap();
            assert!(info.tls_available && !info.tls_required, "{what}: {info:?}");
            round_trip(&client, &format!("offered{version:?}{n}"));
            let entry = connz_entry(&server, &name);
            assert_eq!(entry.contains("\"tls_version\":\"1."), tls, "{what}: TLS in use? connz entry {entry}");
            assert_eq!(server_connections(&server), 1, "{what}");
            assert_eq!(tls_connections(&server), usize::from(tls), "{what}: TLS in use?");
            client.close();
            wait_until(WAIT, "the server saw the close", || server_connections(&server) == 0);
        }
    }
}

pub(crate) fn a_configured_ca_makes_tls_required_even_for_a_nats_url<C: TestClient>() {
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
        let client: C = must_connect(trusting(&server.url(), &fixture).name("ca-only"), &server, "CA, nats:// URL");
        let entry = connz_entry(&server, "ca-only");
        assert!(entry.contains("\"tls_version\":\"1."), "{version:?}: a client with a CA fell back: {entry}");
        drop(client);
    }
    // Against a server without TLS at all, a CA is a demand the server cannot meet.
    let plain = start(NatsServer::builder().version(ServerVersion::Current));
    let (error, took, _) = connect_fails::<C>(trusting(&plain.url(), &fixture), "CA against a plain server");
    assert!(matches!(error, Error::Connect(ConnectionError::TlsUnavailable)), "{error:?}");
    assert!(took < FAIL_FAST, "{took:?}");
}

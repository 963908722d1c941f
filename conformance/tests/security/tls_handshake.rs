//! The TLS handshake: TLS-first (and a server that wants it), a handshake that stalls, and the one deadline a
//! connect attempt has for the INFO and the handshake together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::{wait_event, TestClient};
use nats_client::{Error, Event};
use nats_proto::ConnectionError;
use nats_server_harness::tls::{HandshakeFirst, ServerTls, TlsFixture};
use nats_server_harness::NatsServer;

use crate::common::options;
use crate::support::{
    connect_fails, is_reconnected, must_connect, round_trip, start, tls_failure, tls_server, trusting, BOTH, FAIL_FAST,
    RECONNECT_WAIT,
};

pub(crate) fn tls_first_connects_to_a_handshake_first_server<C: TestClient>() {
    // `handshake_first` exists from nats-server 2.10.4: 2.15.1 only.
    let fixture = TlsFixture::new();
    let mut server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first(true)));
    for (n, url) in [server.tls_url(), server.url()].into_iter().enumerate() {
        let client: C = must_connect(trusting(&url, &fixture).tls_first(), &server, &format!("tls_first {url}"));
        let info = client.server_info().unwrap();
        assert!(info.tls_required, "{url}: INFO over TLS says {info:?}");
        round_trip(&client, &format!("tlsfirst{n}"));
        // Every reconnect starts with the TLS handshake again.
        let events = client.events();
        server.restart();
        let (reconnected, _) = wait_event(&events, RECONNECT_WAIT, "Reconnected", is_reconnected);
        assert_eq!(reconnected, Event::Reconnected(url.clone()));
        round_trip(&client, &format!("tlsfirstagain{n}"));
        client.drain().unwrap();
    }
}

pub(crate) fn without_tls_first_a_handshake_first_server_times_out_in_bounded_time<C: TestClient>() {
    let fixture = TlsFixture::new();
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first(true)));
    // The server waits for a ClientHello and the client for an INFO: nothing happens until the client's connect
    // timeout (1 s here, shorter than the server's 5 s TLS timeout) ends the one attempt.
    let opts = trusting(&server.tls_url(), &fixture).connect_timeout(Duration::from_secs(1));
    let (e, took, _) = connect_fails::<C>(opts, "no tls_first against handshake_first");
    assert!(matches!(e, Error::Connect(ConnectionError::ConnectTimeout)), "{e:?}");
    assert!(took >= Duration::from_millis(900) && took < FAIL_FAST, "took {took:?}");
}

pub(crate) fn tls_first_against_a_classic_tls_server_fails_with_a_tls_error<C: TestClient>() {
    // The classic server sends its INFO in plaintext, which the client, already in the TLS handshake, reads as
    // a TLS record and rejects.
    let fixture = TlsFixture::new();
    for version in BOTH {
        let server = tls_server(version, &fixture);
        let opts = trusting(&server.tls_url(), &fixture).tls_first().connect_timeout(Duration::from_secs(10));
        let msg = tls_failure::<C>(opts, &format!("{version:?}: tls_first against a classic server"));
        // "INFO" is no TLS content type.
        assert!(msg.contains("InvalidContentType"), "{version:?}: {msg}");
    }
}

pub(crate) fn handshake_first_with_fallback_accepts_both_kinds_of_client<C: TestClient>() {
    let fixture = TlsFixture::new();
    let mode = HandshakeFirst::Fallback(Duration::from_millis(300));
    let server = start(NatsServer::builder().tls(ServerTls::from_fixture(&fixture).handshake_first_mode(mode)));
    let first: C = must_connect(trusting(&server.tls_url(), &fixture).tls_first(), &server, "tls_first, fallback");
    round_trip(&first, "fallbackfirst");
    // A classic client gets the INFO after the fallback delay and upgrades.
    let classic: C = must_connect(trusting(&server.tls_url(), &fixture), &server, "classic, fallback");
    round_trip(&classic, "fallbackclassic");
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

pub(crate) fn a_stalled_tls_handshake_fails_within_the_connect_timeout<C: TestClient>() {
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
        let (e, took, _) = connect_fails::<C>(opts, what);
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

pub(crate) fn a_stalled_tls_handshake_ends_at_the_connect_timeout<C: TestClient>() {
    let fixture = TlsFixture::new();
    let (port, stall) = stalling_tls_server(Duration::ZERO);
    let opts = trusting(&format!("tls://127.0.0.1:{port}"), &fixture).connect_timeout(Duration::from_secs(1));
    let (error, took, _) = connect_fails::<C>(opts, "stalled handshake");
    assert!(matches!(error, Error::Connect(ConnectionError::ConnectTimeout)), "{error:?}");
    assert!(took >= Duration::from_millis(900), "gave up early: {took:?}");
    let received = stall.join().unwrap();
    assert!(received > 0, "the client sent its ClientHello");
}

/// `connect_timeout` is the "time allowed for TCP connect plus handshake": one deadline for the attempt, so a
/// slow INFO leaves the TLS handshake only what remains of it.
pub(crate) fn the_connect_timeout_bounds_the_info_wait_and_the_tls_handshake_together<C: TestClient>() {
    let fixture = TlsFixture::new();
    let (port, stall) = stalling_tls_server(Duration::from_millis(1500));
    let opts = trusting(&format!("tls://127.0.0.1:{port}"), &fixture).connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let result = C::connect(opts);
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))), "{:?}", result.err());
    // Due at 2 s; a fresh 2 s for the handshake after the INFO at 1.5 s would end it at 3.5 s.
    assert!(elapsed < Duration::from_millis(3000), "a 2 s connect timeout ended the attempt after {elapsed:?}");
    stall.join().unwrap();
}

//! What the security cases share: servers with TLS, options trusting the test CA, connects that must work or
//! must fail (typed, fast, one attempt), a round trip proving a connection works end to end, payload patterns
//! and the server's view of its connections.

use std::time::{Duration, Instant};

use conformance::{TestClient, TestSubscription as _};
use nats_client::{ConnectOptions, Error, Event};
use nats_proto::{ConnectionError, ServerError, ServerErrorKind};
use nats_server_harness::tls::{ServerTls, TlsFixture};
use nats_server_harness::{NatsServer, ServerBuilder, ServerVersion};

use crate::common::{event_recorder, free_port, options, recv, serve, subject, text, wait_recorded, wait_until, WAIT};

/// Both server builds; TLS and every credential kind used here exist on 2.9.10 as on 2.15.
pub(crate) const BOTH: [ServerVersion; 2] = [ServerVersion::Current, ServerVersion::Old];
/// Bound on a connect that must fail at once (no retry loop, no waiting out a timeout).
pub(crate) const FAIL_FAST: Duration = Duration::from_secs(5);
/// Long enough for a restart and a few backoff rounds.
pub(crate) const RECONNECT_WAIT: Duration = Duration::from_secs(15);

#[track_caller]
pub(crate) fn start(builder: ServerBuilder) -> NatsServer {
    builder.start().unwrap_or_else(|e| panic!("nats-server did not start: {e}"))
}

/// A server with the fixture's trusted certificate, TLS required.
#[track_caller]
pub(crate) fn tls_server(version: ServerVersion, fixture: &TlsFixture) -> NatsServer {
    start(NatsServer::builder().version(version).tls(ServerTls::from_fixture(fixture)))
}

/// Test options that trust the fixture's CA (as a file).
pub(crate) fn trusting(url: &str, fixture: &TlsFixture) -> ConnectOptions {
    options(url).add_root_certificates(fixture.ca_path())
}

/// Options for a port with nothing on it.
pub(crate) fn nowhere() -> ConnectOptions {
    options(&format!("nats://127.0.0.1:{}", free_port()))
}

/// Connects, panicking with the server log on failure.
#[track_caller]
pub(crate) fn must_connect<C: TestClient>(opts: ConnectOptions, server: &NatsServer, what: &str) -> C {
    C::connect(opts).unwrap_or_else(|e| panic!("{what}: connect failed: {e:?}\n--- server log ---\n{}", server.log()))
}

/// Connects expecting a failure within [`FAIL_FAST`]. Returns the error, how long `connect` took, and every
/// event the connection emitted (up to and including `Closed`), after checking that exactly one attempt was
/// made and nothing connected.
#[track_caller]
pub(crate) fn connect_fails<C: TestClient>(opts: ConnectOptions, what: &str) -> (Error, Duration, Vec<Event>) {
    let (callback, recorded) = event_recorder();
    let started = Instant::now();
    let result = C::connect(opts.event_callback(callback));
    let took = started.elapsed();
    let error = match result {
        Ok(client) => panic!("{what}: connected, expected a failure (info {:?})", client.server_info()),
        Err(e) => e,
    };
    assert!(took < FAIL_FAST, "{what}: failing took {took:?} ({error:?})");
    let (closed, mut events) = wait_recorded(&recorded, WAIT, "Closed", |e| matches!(e, Event::Closed));
    events.push(closed);
    let attempts = events.iter().filter(|e| is_connect_failed(e)).count();
    assert_eq!(attempts, 1, "{what}: one attempt only, then give up; events {events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Connected(_) | Event::Reconnected(_))), "{what}: {events:?}");
    (error, took, events)
}

/// The TLS failure message of a connect that fails fast, in one attempt, reported as a TLS failure.
#[track_caller]
pub(crate) fn tls_failure<C: TestClient>(opts: ConnectOptions, what: &str) -> String {
    let (error, _, events) = connect_fails::<C>(opts, what);
    assert!(
        events.iter().any(|e| matches!(e, Event::ConnectFailed { error: ConnectionError::Tls(_), .. })),
        "{what}: {events:?}"
    );
    match error {
        Error::Connect(ConnectionError::Tls(msg)) => msg,
        other => panic!("{what}: expected Error::Connect(ConnectionError::Tls(_)), got {other:?}"),
    }
}

/// Connects with credentials that must be refused, and checks the refusal: an authorization error from the
/// server, fast, one attempt, reported as such.
#[track_caller]
pub(crate) fn refused<C: TestClient>(opts: ConnectOptions, what: &str) -> ServerError {
    let (error, _, events) = connect_fails::<C>(opts, what);
    assert!(
        events.iter().any(
            |ev| matches!(ev, Event::ConnectFailed { error: ConnectionError::Server(s), .. } if s.is_auth_error())
        ),
        "{what}: {events:?}"
    );
    match error {
        Error::Connect(ConnectionError::Server(e)) if e.is_auth_error() => {
            assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation, "{what}: {e}");
            e
        }
        other => panic!("{what}: expected an authorization error from the server, got {other:?}"),
    }
}

/// The `Error::Options` text of a connect refused at once, before any I/O.
#[track_caller]
pub(crate) fn options_failure<C: TestClient>(opts: ConnectOptions, what: &str) -> String {
    let started = Instant::now();
    let result = C::connect(opts);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "{what}: an invalid option took {took:?} to report");
    match result {
        Err(Error::Options(msg)) => msg,
        Err(other) => panic!("{what}: expected Error::Options, got {other:?}"),
        Ok(client) => panic!("{what}: connected (info {:?}), expected Error::Options", client.server_info()),
    }
}

/// `seed` with one character changed: still well-formed base32, but its checksum no longer matches.
pub(crate) fn corrupt(seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// The connection works end to end: three messages to `sec.<tag>.a` arrive in order through a `sec.<tag>.>`
/// subscription, a request to a responder on the same connection is answered, and nothing else arrives.
#[track_caller]
pub(crate) fn round_trip<C: TestClient>(client: &C, tag: &str) {
    let prefix = format!("sec.{tag}");
    let mut sub = client.subscribe(&format!("{prefix}.>"), None).unwrap_or_else(|e| panic!("{tag}: {e:?}"));
    let service = format!("sec-svc.{tag}");
    let _svc = serve(client.subscribe(&service, None).unwrap(), |m| drop(m.respond(format!("re:{}", text(&m)))));
    client.flush().unwrap_or_else(|e| panic!("{tag}: flush: {e:?}"));
    for i in 0..3 {
        client.publish(&format!("{prefix}.a"), None, None, format!("{tag}-{i}").into()).unwrap();
    }
    for i in 0..3 {
        let msg = recv(&mut sub, tag);
        assert_eq!((subject(&msg), text(&msg)), (format!("{prefix}.a"), format!("{tag}-{i}")), "{tag}");
    }
    let reply = client.request_default(&service, None, "ping".into());
    assert_eq!(text(&reply.unwrap_or_else(|e| panic!("{tag}: request failed: {e:?}"))), "re:ping", "{tag}");
    // The subscription saw nothing else (the request went to the other subject).
    assert!(sub.try_next().is_none(), "{tag}");
}

/// A payload of `len` bytes in a pattern that shows any loss, duplication or reordering.
pub(crate) fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8).wrapping_add(salt).wrapping_mul(7)).collect()
}

/// The connection of client `name` from the server's `/connz`, whitespace removed (polls until it shows).
#[track_caller]
pub(crate) fn connz_entry(server: &NatsServer, name: &str) -> String {
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

/// Connections the server has open over TLS (needs monitoring): `/connz` shows a `tls_version` for each.
pub(crate) fn tls_connections(server: &NatsServer) -> usize {
    server.monitor_get("/connz").expect("GET /connz").matches("\"tls_version\"").count()
}

pub(crate) fn is_connect_failed(e: &Event) -> bool {
    matches!(e, Event::ConnectFailed { .. })
}

pub(crate) fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

pub(crate) fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

/// Asserts that no line of the PEM's base64 body appears in `shown`.
#[track_caller]
pub(crate) fn assert_no_pem_body(shown: &str, pem: &str, what: &str) {
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() > 16) {
        assert!(!shown.contains(line), "{what} shows PEM content {line:?}: {shown}");
    }
}

//! The handshake goes wrong: garbage or a wrong op instead of INFO, invalid INFO, a server that stalls or
//! closes during the handshake, an `-ERR` answering CONNECT, a server that requires TLS.

use std::time::{Duration, Instant};

use conformance::{Finish as _, TestClient};
use nats_client::{Error, Event};
use nats_proto::{ClientOp, ConnectionError, ParseErrorKind, ServerError, ServerErrorKind, ServerOp};
use nats_server_harness::fake::{server_info, FakeServer, STEP};

use crate::{options, MAX_PAYLOAD};

// ---- 1. garbage instead of INFO ----

pub(crate) fn http_response_instead_of_info_fails_connect_quickly<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.send("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n");
        // The client gives up without sending CONNECT.
        let sent = c.until_eof(STEP);
        assert!(
            !sent.iter().any(|op| matches!(op, ClientOp::Connect(_))),
            "the client sent CONNECT to a server that never sent INFO: {sent:?}"
        );
    });
    let start = Instant::now();
    let result = C::connect(options(server.url()).connect_timeout(Duration::from_secs(10)));
    let elapsed = start.elapsed();
    match result {
        Err(Error::Connect(ConnectionError::Parse(e))) => assert_eq!(e.kind(), ParseErrorKind::UnknownOp),
        Err(Error::Connect(ConnectionError::ExpectedInfo)) => {}
        Err(other) => panic!("expected Error::Connect(Parse | ExpectedInfo), got {other:?}"),
        Ok(_) => panic!("expected Error::Connect(Parse | ExpectedInfo), connected"),
    }
    assert!(elapsed < Duration::from_secs(3), "the garbage was detected only after {elapsed:?}, not at once");
    server.finish();
}

pub(crate) fn a_valid_op_before_info_is_expected_info<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.send_op(&ServerOp::Ok);
        c.until_eof(STEP);
    });
    let start = Instant::now();
    let result = C::connect(options(server.url()).connect_timeout(Duration::from_secs(10)));
    assert!(
        matches!(result, Err(Error::Connect(ConnectionError::ExpectedInfo))),
        "expected Error::Connect(ExpectedInfo), got {:?}",
        result.err()
    );
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    server.finish();
}

pub(crate) fn info_with_invalid_json_fails_connect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.send("INFO {\"server_id\":\r\n");
        c.until_eof(STEP);
    });
    let start = Instant::now();
    let result = C::connect(options(server.url()).connect_timeout(Duration::from_secs(10)));
    match result {
        Err(Error::Connect(ConnectionError::Parse(e))) => assert_eq!(e.kind(), ParseErrorKind::InvalidJson),
        other => panic!("expected Error::Connect(Parse(InvalidJson)), got {:?}", other.err()),
    }
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    server.finish();
}

// ---- 3. a stall during the handshake ----

pub(crate) fn unanswered_handshake_ping_is_a_connect_timeout<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.send_info(&server_info(MAX_PAYLOAD));
        c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_)));
        c.auto_pong = false;
        c.expect("PING", |op| *op == ClientOp::Ping);
        // Never answer; the client must give up by itself.
        c.until_eof(STEP);
    });
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let result = C::connect(options(server.url()).connect_timeout(timeout));
    let elapsed = start.elapsed();
    assert!(
        matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))),
        "expected Error::Connect(ConnectTimeout), got {:?}",
        result.err()
    );
    assert!(elapsed >= timeout - Duration::from_millis(20), "gave up after {elapsed:?}, before the timeout");
    assert!(elapsed < timeout + Duration::from_secs(2), "gave up only after {elapsed:?}");
    server.finish();
}

pub(crate) fn silent_server_is_a_connect_timeout<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        // No INFO at all.
        let sent = c.until_eof(STEP);
        assert!(sent.is_empty(), "the client spoke before INFO: {sent:?}");
    });
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let result = C::connect(options(server.url()).connect_timeout(timeout));
    let elapsed = start.elapsed();
    assert!(
        matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))),
        "expected Error::Connect(ConnectTimeout), got {:?}",
        result.err()
    );
    assert!(elapsed < timeout + Duration::from_secs(2), "gave up only after {elapsed:?}");
    server.finish();
}

// ---- 7. -ERR answering CONNECT ----

pub(crate) fn authorization_violation_fails_connect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        let mut info = server_info(MAX_PAYLOAD);
        info.auth_required = true;
        c.send_info(&info);
        let ClientOp::Connect(connect) = c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_))) else {
            unreachable!()
        };
        assert_eq!(connect.user.as_deref(), Some("bob"));
        assert_eq!(connect.pass.as_deref(), Some("wrong"));
        c.auto_pong = false;
        c.expect("PING", |op| *op == ClientOp::Ping);
        c.send_op(&ServerOp::Err(ServerError::new("Authorization Violation")));
        // A real server closes here; this one waits for the client to.
        c.until_eof(STEP);
    });
    let start = Instant::now();
    let result = C::connect(options(server.url()).user_and_password("bob", "wrong"));
    match result {
        Err(Error::Connect(ConnectionError::Server(e))) => {
            assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation);
            assert_eq!(e.message(), "Authorization Violation");
        }
        other => panic!("expected Error::Connect(Server(Authorization Violation)), got {:?}", other.err()),
    }
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    server.finish();
}

pub(crate) fn server_closing_during_the_handshake_fails_connect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.send_info(&server_info(MAX_PAYLOAD));
        c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_)));
        c.auto_pong = false;
        c.expect("PING", |op| *op == ClientOp::Ping);
        // Gone without a word.
    });
    let start = Instant::now();
    let result = C::connect(options(server.url()).connect_timeout(Duration::from_secs(10)));
    assert!(
        matches!(result, Err(Error::Connect(ConnectionError::TransportClosed))),
        "expected Error::Connect(TransportClosed), got {:?}",
        result.err()
    );
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    server.finish();
}

/// A server that requires TLS gets a TLS handshake, never plaintext; one that then hangs up fails `connect`.
pub(crate) fn server_requiring_tls_gets_a_tls_handshake_not_plaintext<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        let mut info = server_info(MAX_PAYLOAD);
        info.tls_required = true;
        c.send_info(&info);
        // The client starts TLS: its first bytes are a TLS handshake record (a ClientHello), never a
        // plaintext CONNECT. This fake server speaks no TLS and hangs up.
        let sent = c.recv_raw(STEP);
        assert_eq!(sent.first(), Some(&0x16), "expected a TLS ClientHello, got {sent:?}");
        assert!(!sent.windows(7).any(|w| w == b"CONNECT"), "plaintext CONNECT to a TLS-only server");
    });
    let (tx, recorded) = std::sync::mpsc::channel();
    let start = Instant::now();
    let result = C::connect(options(server.url()).event_callback(move |e| {
        let _ = tx.send(e);
    }));
    assert!(
        matches!(result, Err(Error::Connect(ConnectionError::TransportClosed | ConnectionError::Tls(_)))),
        "connect must fail when the handshake cannot finish, got {:?}",
        result.err()
    );
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    // The callback runs on a thread (blocking) or a task (tokio) of its own, so the event may come after
    // `connect` returned; it must come. (That the blocking client's callback has it already when `connect`
    // returns is checked in `nats-blocking/tests/misbehaving_server.rs`: the tokio client's does not.)
    let deadline = Instant::now() + STEP;
    let mut seen = vec![];
    loop {
        match recorded.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::ConnectFailed { error: ConnectionError::TransportClosed | ConnectionError::Tls(_), .. }) => break,
            Ok(e) => seen.push(e),
            Err(_) => panic!("no ConnectFailed event within {STEP:?}: {seen:?}"),
        }
    }
    server.finish();
}

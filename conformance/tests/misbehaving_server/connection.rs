//! An established connection goes wrong: garbage, unanswered keep-alive PINGs, a half-written message, a
//! reset, a `-ERR 'Stale Connection'`, a request in flight when the connection breaks.

use std::time::{Duration, Instant};

use conformance::{wait_event, Finish as _, TestClient};
use nats_client::seam::Subscription as _;
use nats_client::{Error, Event};
use nats_proto::{ClientOp, ConnectionError, ParseErrorKind, ReconnectPolicy, ServerError, ServerErrorKind, ServerOp};
use nats_server_harness::fake::{msg, server_info, FakeServer, STEP};

use crate::{options, payload_of, MAX_PAYLOAD};

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

// ---- 2. garbage after a good handshake ----

pub(crate) fn garbage_after_handshake_is_a_parse_error_then_reconnect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.send(format!("MSG a {sid} notasize\r\n"));
        c.until_eof(STEP);

        // The second connection behaves.
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.send(msg("a", sid, b"after"));
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");

    let (event, _) = wait_event(&events, STEP, "Disconnected", is_disconnected);
    match event {
        Event::Disconnected(ConnectionError::Parse(e)) => assert_eq!(e.kind(), ParseErrorKind::InvalidSize),
        other => panic!("expected Disconnected(Parse(InvalidSize)), got {other:?}"),
    }
    wait_event(&events, STEP, "Reconnected", is_reconnected);
    assert_eq!(payload_of(sub.next_timeout(STEP)), b"after");
    assert_eq!(client.statistics().reconnects, 1);
    drop(sub);
    drop(client);
    server.finish();
}

/// Messages that came in the same read as the error that ends the connection are handed to a subscriber
/// already waiting for them at once, not after a reconnect (here none ever succeeds: the server is gone).
pub(crate) fn messages_read_with_a_fatal_error_wake_their_waiting_subscriber<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        // Sent once the subscriber is waiting, and every reconnect is refused.
        s.wait_signal();
        s.stop_listening();
        let mut both = msg("a", sid, b"before").to_vec();
        both.extend_from_slice(format!("MSG a {sid} notasize\r\n").as_bytes());
        c.send(both);
        c.until_eof(STEP);
    });
    // Reconnects wait long enough that the message must come while there is no connection.
    let slow_reconnect = ReconnectPolicy {
        max_attempts_per_server: None,
        base_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
        jitter: Duration::ZERO,
    };
    let client = C::connect(options(server.url()).reconnect_policy(slow_reconnect)).expect("connect");
    let mut sub = client.subscribe("a", None).expect("subscribe");
    // No timeout of its own (a deadline would find the queued message anyway): only a wake-up ends it, and
    // the hang guard fails the test if none comes.
    let waiting = std::thread::spawn(move || sub.next_message().map(|m| m.payload().to_vec()));
    // Give the subscriber time to block in `next_message` (if it has not yet, the test is only weaker).
    std::thread::sleep(Duration::from_millis(100));
    server.signal();
    assert_eq!(waiting.join().expect("the subscriber thread").as_deref(), Some(&b"before"[..]));
    assert_eq!(client.statistics().reconnects, 0);
    drop(client);
    server.finish();
}

// ---- 4. a stall after the handshake ----

pub(crate) fn unanswered_keepalive_pings_make_the_connection_stale_then_reconnect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        c.expect_sub("a");
        // From here on the server is alive but deaf to PINGs.
        c.auto_pong = false;
        c.until_eof(STEP);
        assert!(
            c.unanswered_pings >= 2,
            "the client gave up after {} unanswered PINGs, max_pings_out is 2",
            c.unanswered_pings
        );

        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.send(msg("a", sid, b"alive"));
        c.until_eof(STEP);
    });
    let client =
        C::connect(options(server.url()).ping_interval(Duration::from_millis(100)).max_pings_out(2)).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");
    let start = Instant::now();

    let (event, _) = wait_event(&events, STEP, "Disconnected", is_disconnected);
    assert_eq!(event, Event::Disconnected(ConnectionError::StaleConnection));
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "stale connection detected only after {elapsed:?}");
    wait_event(&events, STEP, "Reconnected", is_reconnected);
    assert_eq!(payload_of(sub.next_timeout(STEP)), b"alive");
    drop(sub);
    drop(client);
    server.finish();
}

// ---- 5. a half-written op, then silence, then a close ----

pub(crate) fn half_written_message_then_silence_then_close<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.auto_pong = false;
        c.send(format!("MSG a {sid} 10\r\nhel"));
        // Silence until the test has seen the flush time out, then close.
        s.wait_signal();
        drop(c);

        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.send(msg("a", sid, b"world"));
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");

    let got = sub.next_timeout(Duration::from_millis(300));
    assert!(
        matches!(got, Err(Error::Timeout)),
        "a half-written message was delivered (or the subscription ended): {got:?}"
    );
    let start = Instant::now();
    let flushed = client.flush_timeout(Duration::from_millis(300));
    assert!(matches!(flushed, Err(Error::Timeout)), "flush against a silent server: {flushed:?}");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(290), "the flush timed out early: {took:?}");
    assert!(took < Duration::from_secs(2), "the flush timed out only after {took:?}");
    assert!(!client.is_closed());

    server.signal();
    let (event, _) = wait_event(&events, STEP, "Disconnected", is_disconnected);
    assert_eq!(event, Event::Disconnected(ConnectionError::TransportClosed));
    wait_event(&events, STEP, "Reconnected", is_reconnected);
    // The first message the subscriber sees is the good one: nothing of the torn one leaked.
    assert_eq!(payload_of(sub.next_timeout(STEP)), b"world");
    client.flush().expect("flush after the reconnect");
    drop(sub);
    drop(client);
    server.finish();
}

// ---- 6. a reset in the middle of a message ----

pub(crate) fn connection_reset_mid_message_then_reconnect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.expect("the flush PING", |op| *op == ClientOp::Ping);
        // Leave the client's next bytes unread: closing a socket with unread data resets the connection.
        c.wait_unread_data();
        c.send(format!("MSG a {sid} 10\r\nhel"));
        drop(c);

        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.send(msg("a", sid, b"second"));
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");
    client.flush().expect("flush");
    client.publish("unread", None, None, "x".into()).expect("publish");

    let (event, _) = wait_event(&events, STEP, "Disconnected", is_disconnected);
    assert_eq!(event, Event::Disconnected(ConnectionError::TransportClosed));
    wait_event(&events, STEP, "Reconnected", is_reconnected);
    assert_eq!(payload_of(sub.next_timeout(STEP)), b"second");
    drop(sub);
    drop(client);
    server.finish();
}

pub(crate) fn stale_connection_err_from_the_server_disconnects_then_reconnect<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        c.expect_sub("a");
        c.send_op(&ServerOp::Err(ServerError::new("Stale Connection")));
        c.until_eof(STEP);

        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let sid = c.expect_sub("a");
        c.send(msg("a", sid, b"back"));
        c.until_eof(STEP);
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let mut sub = client.subscribe("a", None).expect("subscribe");
    let (event, _) = wait_event(&events, STEP, "Disconnected", is_disconnected);
    match event {
        Event::Disconnected(ConnectionError::Server(e)) => assert_eq!(e.kind(), ServerErrorKind::StaleConnection),
        other => panic!("expected Disconnected(Server(Stale Connection)), got {other:?}"),
    }
    wait_event(&events, STEP, "Reconnected", is_reconnected);
    assert_eq!(payload_of(sub.next_timeout(STEP)), b"back");
    drop(sub);
    drop(client);
    server.finish();
}

/// A request in flight when the connection breaks is not lost: it is answered after the reconnect (the
/// request inbox is replayed) or fails with a typed error; it never hangs past its timeout.
pub(crate) fn a_request_in_flight_when_the_connection_resets_ends_in_bounded_time<C: TestClient>() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        c.expect("the request", |op| matches!(op, ClientOp::Pub(p) if p.subject == "svc"));
        // Gone before answering.
        drop(c);

        let mut c = s.accept();
        c.greet(&server_info(MAX_PAYLOAD));
        let ops = c.until_eof(STEP);
        assert!(
            ops.iter().any(|op| matches!(op, ClientOp::Pub(p) if p.subject == "svc.after")),
            "the second connection saw no request: {ops:?}"
        );
    });
    let client = C::connect(options(server.url())).expect("connect");
    let events = client.events();
    let timeout = Duration::from_millis(800);
    let started = Instant::now();
    let result = client.request("svc", None, "q".into(), timeout);
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "nobody answered, expected Timeout: {result:?}");
    assert!(took < timeout + Duration::from_secs(2), "the request ended only after {took:?}");
    wait_event(&events, STEP, "Reconnected", is_reconnected);
    // The client goes on: a request on the new connection is sent (and times out: the fake never answers).
    let again = client.request("svc.after", None, "q".into(), Duration::from_millis(200));
    assert!(matches!(again, Err(Error::Timeout)), "{again:?}");
    drop(client);
    server.finish();
}

//! The client against a scripted fake server that misbehaves on demand: garbage instead of INFO, garbage after
//! the handshake, stalls before and after the handshake, half-written ops, resets, `-ERR`s, malformed headers,
//! oversized sizes, lenient framing, lame duck mode.
//!
//! Every case must end in a typed error, an event, or a reconnect: never a panic, and never a hang. Each test
//! body runs under [`fake::within`], so a hang anywhere fails the test in bounded time.
//!
//! A counting global allocator records the largest single allocation, so that an announced size the client
//! must refuse can be shown not to have been allocated.

// A `#[global_allocator]` needs an `unsafe impl GlobalAlloc`. The impl only records the largest size asked for
// and then delegates every call, unchanged, to `std::alloc::System`, so the workspace-wide
// `unsafe_code = "deny"` is lifted for this test file alone (as in `nats-proto/tests/alloc.rs`).
#![allow(unsafe_code)]

mod fake;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{ConnectOptions, Error, Event, ReconnectPolicy};
use nats_proto::{
    ClientOp, Config, ConnectionError, HeaderError, ParseErrorKind, ServerError, ServerErrorKind, ServerOp,
};

use fake::{msg, server_info, wait_event, within, FakeServer, Finish, Recv, STEP};

struct LargestAllocation;

/// The largest single allocation (or reallocation) requested so far, by any thread.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// The bound on a whole test, hangs included.
const TEST_LIMIT: Duration = Duration::from_secs(30);
/// The payload limit the fake announces.
const MAX_PAYLOAD: usize = 1 << 20;

/// Options for a fast test: short timeouts, quick reconnects, keep-alive effectively off.
fn options(url: &str) -> ConnectOptions {
    ConnectOptions::new()
        .server(url)
        .connect_timeout(Duration::from_secs(2))
        .reconnect_policy(ReconnectPolicy {
            max_attempts_per_server: None,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
        })
        .flush_timeout(STEP)
        .request_timeout(STEP)
}

fn payload_of(result: Result<nats_blocking::Message, Error>) -> Vec<u8> {
    match result {
        Ok(m) => m.payload().to_vec(),
        Err(e) => panic!("expected a message, got {e:?}"),
    }
}

// ---- 1. garbage instead of INFO ----

#[test]
fn http_response_instead_of_info_fails_connect_quickly() {
    within(TEST_LIMIT, || {
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
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect();
        let elapsed = start.elapsed();
        match result {
            Err(Error::Connect(ConnectionError::Parse(e))) => assert_eq!(e.kind(), ParseErrorKind::UnknownOp),
            Err(Error::Connect(ConnectionError::ExpectedInfo)) => {}
            other => panic!("expected Error::Connect(Parse | ExpectedInfo), got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(3), "the garbage was detected only after {elapsed:?}, not at once");
        server.finish();
    });
}

#[test]
fn a_valid_op_before_info_is_expected_info() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send_op(&ServerOp::Ok);
            c.until_eof(STEP);
        });
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect();
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::ExpectedInfo))),
            "expected Error::Connect(ExpectedInfo), got {result:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish();
    });
}

#[test]
fn info_with_invalid_json_fails_connect() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send("INFO {\"server_id\":\r\n");
            c.until_eof(STEP);
        });
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect();
        match result {
            Err(Error::Connect(ConnectionError::Parse(e))) => assert_eq!(e.kind(), ParseErrorKind::InvalidJson),
            other => panic!("expected Error::Connect(Parse(InvalidJson)), got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish();
    });
}

// ---- 2. garbage after a good handshake ----

#[test]
fn garbage_after_handshake_is_a_parse_error_then_reconnect() {
    within(TEST_LIMIT, || {
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
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");

        let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        match event {
            Event::Disconnected(ConnectionError::Parse(e)) => assert_eq!(e.kind(), ParseErrorKind::InvalidSize),
            other => panic!("expected Disconnected(Parse(InvalidSize)), got {other:?}"),
        }
        wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
        assert_eq!(payload_of(sub.next_timeout(STEP)), b"after");
        assert_eq!(client.statistics().reconnects, 1);
        drop(sub);
        drop(client);
        server.finish();
    });
}

/// Messages that came in the same read as the error that ends the connection are handed to a subscriber already
/// waiting for them at once, not after a reconnect (here none ever succeeds: the server is gone).
#[test]
fn messages_read_with_a_fatal_error_wake_their_waiting_subscriber() {
    within(TEST_LIMIT, || {
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
        let client = options(server.url()).reconnect_policy(slow_reconnect).connect().expect("connect");
        let mut sub = client.subscribe("a").expect("subscribe");
        // No timeout of its own (a deadline would find the queued message anyway): only a wake-up ends it, and
        // `within` fails the test if none comes.
        let waiting = std::thread::spawn(move || sub.next().map(|m| m.payload().to_vec()));
        // Give the subscriber time to block in `next_timeout` (if it has not yet, the test is only weaker).
        std::thread::sleep(Duration::from_millis(100));
        server.signal();
        assert_eq!(waiting.join().expect("the subscriber thread").as_deref(), Some(&b"before"[..]));
        assert_eq!(client.statistics().reconnects, 0);
        drop(client);
        server.finish();
    });
}

// ---- 3. a stall during the handshake ----

#[test]
fn unanswered_handshake_ping_is_a_connect_timeout() {
    within(TEST_LIMIT, || {
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
        let result = options(server.url()).connect_timeout(timeout).connect();
        let elapsed = start.elapsed();
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))),
            "expected Error::Connect(ConnectTimeout), got {result:?}"
        );
        assert!(elapsed >= timeout - Duration::from_millis(20), "gave up after {elapsed:?}, before the timeout");
        assert!(elapsed < timeout + Duration::from_secs(2), "gave up only after {elapsed:?}");
        server.finish();
    });
}

#[test]
fn silent_server_is_a_connect_timeout() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            // No INFO at all.
            let sent = c.until_eof(STEP);
            assert!(sent.is_empty(), "the client spoke before INFO: {sent:?}");
        });
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(timeout).connect();
        let elapsed = start.elapsed();
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))),
            "expected Error::Connect(ConnectTimeout), got {result:?}"
        );
        assert!(elapsed < timeout + Duration::from_secs(2), "gave up only after {elapsed:?}");
        server.finish();
    });
}

// ---- 4. a stall after the handshake ----

#[test]
fn unanswered_keepalive_pings_make_the_connection_stale_then_reconnect() {
    within(TEST_LIMIT, || {
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
        let client = options(server.url())
            .ping_interval(Duration::from_millis(100))
            .max_pings_out(2)
            .connect()
            .expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");
        let start = Instant::now();

        let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        assert_eq!(event, Event::Disconnected(ConnectionError::StaleConnection));
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(2), "stale connection detected only after {elapsed:?}");
        wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
        assert_eq!(payload_of(sub.next_timeout(STEP)), b"alive");
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 5. a half-written op, then silence, then a close ----

#[test]
fn half_written_message_then_silence_then_close() {
    within(TEST_LIMIT, || {
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
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");

        let got = sub.next_timeout(Duration::from_millis(300));
        assert!(matches!(got, Err(Error::Timeout)), "a half-written message was delivered: {got:?}");
        let start = Instant::now();
        let flushed = client.flush_timeout(Duration::from_millis(300));
        assert!(matches!(flushed, Err(Error::Timeout)), "flush against a silent server: {flushed:?}");
        assert!(start.elapsed() < Duration::from_secs(2), "the flush timed out only after {:?}", start.elapsed());
        assert!(!client.is_closed());

        server.signal();
        let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        assert_eq!(event, Event::Disconnected(ConnectionError::TransportClosed));
        wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
        // The first message the subscriber sees is the good one: nothing of the torn one leaked.
        assert_eq!(payload_of(sub.next_timeout(STEP)), b"world");
        client.flush().expect("flush after the reconnect");
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 6. a reset in the middle of a message ----

#[test]
fn connection_reset_mid_message_then_reconnect() {
    within(TEST_LIMIT, || {
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
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");
        client.flush().expect("flush");
        client.publish("unread", "x").expect("publish");

        let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        assert_eq!(event, Event::Disconnected(ConnectionError::TransportClosed));
        wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
        assert_eq!(payload_of(sub.next_timeout(STEP)), b"second");
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 7. -ERR answering CONNECT ----

#[test]
fn authorization_violation_fails_connect() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            let mut info = server_info(MAX_PAYLOAD);
            info.auth_required = true;
            c.send_info(&info);
            let ClientOp::Connect(connect) = c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_))) else {
                unreachable!()
            };
            assert_eq!(connect.user.as_deref(), Some("bob"));
            c.auto_pong = false;
            c.expect("PING", |op| *op == ClientOp::Ping);
            c.send_op(&ServerOp::Err(ServerError::new("Authorization Violation")));
            // A real server closes here; this one waits for the client to.
            c.until_eof(STEP);
        });
        let start = Instant::now();
        let result = options(server.url()).user_and_password("bob", "wrong").connect();
        match result {
            Err(Error::Connect(ConnectionError::Server(e))) => {
                assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation);
                assert_eq!(e.message(), "Authorization Violation");
            }
            other => panic!("expected Error::Connect(Server(Authorization Violation)), got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
        server.finish();
    });
}

// ---- 8. a permissions violation for a subscription ----

#[test]
fn subscription_permission_violation_ends_the_subscription_not_the_connection() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            c.expect_sub("secret");
            c.send("-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n");
            let ops = c.until_eof(STEP);
            assert!(
                ops.iter().any(|op| matches!(op, ClientOp::Pub(p) if p.subject == "public" && p.payload == "still up")),
                "the publish after the violation never reached the server: {ops:?}"
            );
        });
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("secret").expect("subscribe");
        match sub.next_timeout(STEP) {
            Err(Error::Permission(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation);
                assert!(e.message().contains("\"secret\""), "{e:?}");
            }
            other => panic!("expected Error::Permission, got {other:?}"),
        }
        let (event, _) = wait_event(&events, STEP, "ServerError", |e| matches!(e, Event::ServerError(_)));
        assert!(matches!(event, Event::ServerError(e) if e.kind() == ServerErrorKind::PermissionsViolation));

        // The connection is still up.
        client.publish("public", "still up").expect("publish");
        client.flush().expect("flush after the violation");
        assert!(!client.is_closed());
        let later: Vec<Event> = events.try_iter().collect();
        assert!(!later.iter().any(|e| matches!(e, Event::Disconnected(_))), "disconnected: {later:?}");
        assert_eq!(client.statistics().reconnects, 0);
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 9. a malformed header block ----

#[test]
fn malformed_header_block_is_a_bad_message_and_the_next_message_arrives() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            let sid = c.expect_sub("a");
            // 12 bytes of "headers" that do not start with NATS/1.0, then a 5-byte payload.
            c.send(format!("HMSG a {sid} 12 17\r\nXATS/1.0\r\n\r\nhello\r\n"));
            c.send(msg("a", sid, b"good"));
            c.until_eof(STEP);
        });
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");

        assert_eq!(payload_of(sub.next_timeout(STEP)), b"good");
        let (event, before) = wait_event(&events, STEP, "BadMessage", |e| matches!(e, Event::BadMessage(_)));
        match event {
            Event::BadMessage(e) => {
                assert_eq!(e.kind(), ParseErrorKind::InvalidHeaders(HeaderError::MissingVersion))
            }
            _ => unreachable!(),
        }
        assert!(!before.iter().any(|e| matches!(e, Event::Disconnected(_))), "disconnected: {before:?}");
        client.flush().expect("the connection survives a bad header block");
        assert!(sub.try_next().is_none(), "the bad message was delivered too");
        assert_eq!(client.statistics().reconnects, 0);
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 10. an oversized announced size ----

#[test]
fn oversized_announced_size_is_a_parse_error_not_an_allocation() {
    within(TEST_LIMIT, || {
        const SMALL: usize = 1024;
        const ANNOUNCED: usize = 999_999_999;
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(SMALL));
            let sid = c.expect_sub("a");
            c.send(format!("MSG a {sid} {ANNOUNCED}\r\nthe start of a very long payload"));
            c.until_eof(STEP);

            let mut c = s.accept();
            c.greet(&server_info(SMALL));
            let sid = c.expect_sub("a");
            c.send(msg("a", sid, b"small"));
            c.until_eof(STEP);
        });
        let client = options(server.url()).connect().expect("connect");
        assert_eq!(client.max_payload(), SMALL);
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");

        let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        match event {
            Event::Disconnected(ConnectionError::Parse(e)) => {
                // The inbound cap is the larger of INFO `max_payload` and the configured floor (messages routed
                // from another server of a cluster may exceed this server's own limit); either way it is far
                // below the announced size.
                let limit = SMALL.max(Config::default().limits.max_payload);
                assert!(limit < ANNOUNCED);
                assert_eq!(e.kind(), ParseErrorKind::PayloadTooLarge { size: ANNOUNCED, limit })
            }
            other => panic!("expected Disconnected(Parse(PayloadTooLarge)), got {other:?}"),
        }
        wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
        assert_eq!(payload_of(sub.next_timeout(STEP)), b"small");
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest < 64 << 20, "an allocation of {largest} bytes was made (the announced size was refused)");
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 11. lenient framing ----

#[test]
fn lower_case_ops_tabs_and_bare_lf_are_accepted() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send("info\t{\"server_id\":\"FAKE\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\n");
            c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_)));
            c.auto_pong = false;
            c.expect("the handshake PING", |op| *op == ClientOp::Ping);
            c.send("pong\n");
            c.auto_pong = true;
            let sid = c.expect_sub("a");
            c.send("+ok\n");
            c.send(format!("msg\ta \t{sid}\t5\nhello\r\n"));
            c.send(format!("Msg a\t{sid}  reply.to   3\nbye\r\n"));
            c.send(format!("hmsg a {sid}\t12 14\nNATS/1.0\r\n\r\nhi\r\n"));
            c.send("ping\n");
            c.expect("the PONG to a lower-case ping", |op| *op == ClientOp::Pong);
            c.until_eof(STEP);
        });
        let client = options(server.url()).connect().expect("connect with a lower-case handshake");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");

        let m = sub.next_timeout(STEP).expect("msg with tabs and a bare LF");
        assert_eq!((m.subject().as_str(), m.payload(), m.reply().is_none()), (Some("a"), &b"hello"[..], true));
        let m = sub.next_timeout(STEP).expect("mixed-case MSG with a reply");
        assert_eq!(m.reply().and_then(|r| r.as_str()), Some("reply.to"));
        assert_eq!(m.payload(), b"bye");
        let m = sub.next_timeout(STEP).expect("lower-case hmsg");
        assert!(m.headers().is_some());
        assert_eq!(m.payload(), b"hi");
        client.flush().expect("flush");
        let seen: Vec<Event> = events.try_iter().collect();
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Disconnected(_) | Event::BadMessage(_))),
            "lenient framing was not accepted: {seen:?}"
        );
        drop(sub);
        drop(client);
        server.finish();
    });
}

// ---- 12. lame duck mode and discovered servers ----

#[test]
fn async_info_reports_discovered_servers_and_lame_duck() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            c.expect_sub("a");
            let mut info = server_info(MAX_PAYLOAD);
            // Port 1 on loopback: nobody listens there, should the client ever try it.
            info.connect_urls = vec!["127.0.0.1:1".into()];
            c.send_info(&info);
            info.lame_duck_mode = true;
            c.send_info(&info);
            c.until_eof(STEP);
        });
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let _sub = client.subscribe("a").expect("subscribe");

        let (_, before) = wait_event(&events, STEP, "DiscoveredServers", |e| *e == Event::DiscoveredServers);
        assert!(before.is_empty(), "unexpected events: {before:?}");
        let (_, before) = wait_event(&events, STEP, "LameDuck", |e| *e == Event::LameDuck);
        assert!(before.is_empty(), "unexpected events: {before:?}");
        client.flush().expect("flush");
        let info = client.server_info().expect("server info");
        assert!(info.lame_duck_mode);
        assert_eq!(info.connect_urls, ["127.0.0.1:1"]);
        let later: Vec<Event> = events.try_iter().collect();
        assert!(later.is_empty(), "the same servers were announced twice, or the connection dropped: {later:?}");
        drop(client);
        server.finish();
    });
}

/// A script failure must reach the test (the harness itself is tested, so a broken fake cannot pass silently).
#[test]
fn a_failing_script_fails_the_test() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        match c.recv(Duration::from_millis(50)) {
            Recv::Timeout => panic!("script failure"),
            other => panic!("unexpected {other:?}"),
        }
    });
    let _client = std::net::TcpStream::connect(server.url().trim_start_matches("nats://")).expect("connect");
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.finish())).expect_err("no panic");
    assert_eq!(fake::panic_text(&*panic), "script failure");
}

// ---- more of the same kind ----

#[test]
fn server_closing_during_the_handshake_fails_connect() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send_info(&server_info(MAX_PAYLOAD));
            c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_)));
            c.auto_pong = false;
            c.expect("PING", |op| *op == ClientOp::Ping);
            // Gone without a word.
        });
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect();
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::TransportClosed))),
            "expected Error::Connect(TransportClosed), got {result:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish();
    });
}

/// A server that requires TLS gets a TLS handshake, never plaintext; one that then hangs up fails `connect`.
#[test]
fn server_requiring_tls_gets_a_tls_handshake_not_plaintext() {
    within(TEST_LIMIT, || {
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
        let (tx, seen) = std::sync::mpsc::channel();
        let start = Instant::now();
        let result = options(server.url())
            .event_callback(move |e| {
                let _ = tx.send(e);
            })
            .connect();
        let seen: Vec<Event> = seen.try_iter().collect();
        assert!(
            seen.iter().any(|e| matches!(
                e,
                Event::ConnectFailed { error: ConnectionError::TransportClosed | ConnectionError::Tls(_), .. }
            )),
            "no ConnectFailed event: {seen:?}"
        );
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::TransportClosed | ConnectionError::Tls(_)))),
            "connect must fail when the handshake cannot finish, got {result:?} (events: {seen:?})"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish();
    });
}

#[test]
fn stale_connection_err_from_the_server_disconnects_then_reconnect() {
    within(TEST_LIMIT, || {
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
        let client = options(server.url()).connect().expect("connect");
        let events = client.events();
        let mut sub = client.subscribe("a").expect("subscribe");
        let (event, _) = wait_event(&events, STEP, "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        match event {
            Event::Disconnected(ConnectionError::Server(e)) => assert_eq!(e.kind(), ServerErrorKind::StaleConnection),
            other => panic!("expected Disconnected(Server(Stale Connection)), got {other:?}"),
        }
        wait_event(&events, STEP, "Reconnected", |e| matches!(e, Event::Reconnected(_)));
        assert_eq!(payload_of(sub.next_timeout(STEP)), b"back");
        drop(sub);
        drop(client);
        server.finish();
    });
}

#[test]
fn drain_against_a_stalled_server_is_bounded() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            let sid = c.expect_sub("a");
            // Deaf from here on: the drain's PING is never answered.
            c.auto_pong = false;
            let ops = c.until_eof(STEP * 2);
            assert!(ops.contains(&ClientOp::Unsub { sid, max: None }), "drain sent no UNSUB: {ops:?}");
        });
        let drain_timeout = Duration::from_millis(300);
        let client = options(server.url()).drain_timeout(drain_timeout).connect().expect("connect");
        let _sub = client.subscribe("a").expect("subscribe");
        let start = Instant::now();
        let result = client.drain();
        let elapsed = start.elapsed();
        let closed = client.is_closed();
        // For the report: when did it close, if not by then?
        let closed_after = (!closed).then(|| {
            while !client.is_closed() && start.elapsed() < Duration::from_secs(8) {
                std::thread::sleep(Duration::from_millis(10));
            }
            (client.is_closed(), start.elapsed())
        });
        assert!(matches!(result, Ok(()) | Err(Error::Timeout)), "drain: {result:?}");
        assert!(elapsed < drain_timeout + Duration::from_secs(2), "drain returned only after {elapsed:?}");
        assert!(
            closed,
            "drain returned {result:?} after {elapsed:?} with the client still open (drain timeout {drain_timeout:?}); \
             (closed, time since drain()) a while later: {closed_after:?}"
        );
        assert!(matches!(client.publish("a", "x"), Err(Error::Closed)));
        drop(client);
        server.finish();
    });
}

/// A server that stops reading: publishers fill the socket buffers and the client's 32 MiB of unwritten bytes,
/// then wait for room. When the connection goes stale those bytes are dropped with it, so the waiting publisher
/// must be let go (its publish then returns; later ones go to the reconnect buffer) rather than block until
/// some later connection happens to write something.
#[test]
fn publisher_waiting_for_room_is_released_when_the_connection_is_lost() {
    within(TEST_LIMIT, || {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        const PAYLOAD: usize = 512 << 10;
        const COUNT: usize = 200;
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            // Read nothing more, answer nothing more; the client's next connection attempts get no INFO.
            s.wait_signal();
            drop(c);
        });
        let client = options(server.url())
            .ping_interval(Duration::from_millis(500))
            .max_pings_out(2)
            .connect()
            .expect("connect");
        let events = client.events();
        // The publisher holds a clone, so dropping ours would not close the connection: close explicitly, on every
        // path, so that a parked publisher is let go and the thread can be joined.
        struct CloseOnDrop(nats_blocking::Client);
        impl Drop for CloseOnDrop {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        let client = CloseOnDrop(client);

        let published = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (client, published, done) = (client.0.clone(), published.clone(), done.clone());
            std::thread::spawn(move || {
                let payload = nats_blocking::bytes::Bytes::from(vec![7u8; PAYLOAD]);
                let mut result = Ok(());
                for _ in 0..COUNT {
                    result = client.publish("big", payload.clone());
                    if result.is_err() {
                        break;
                    }
                    published.fetch_add(1, Ordering::SeqCst);
                }
                done.store(true, Ordering::SeqCst);
                result
            })
        };

        let (event, _) =
            wait_event(&events, Duration::from_secs(10), "Disconnected", |e| matches!(e, Event::Disconnected(_)));
        assert_eq!(event, Event::Disconnected(ConnectionError::StaleConnection));
        let at_loss = published.load(Ordering::SeqCst);
        assert!(at_loss < COUNT, "back-pressure never engaged: all {COUNT} publishes went through");

        // The connection's unwritten bytes are gone with it: the publisher must not stay parked.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let released = done.load(Ordering::SeqCst);
        let after = published.load(Ordering::SeqCst);
        // Closing releases it in any case, so the thread can be joined.
        server.signal();
        drop(events);
        drop(client);
        let result = publisher.join().expect("the publisher panicked");
        assert!(
            released,
            "publish() still blocked 2 s after the connection was lost ({at_loss} publishes before the loss, \
             {after} after; the publisher ended with {result:?} only once the client was closed)"
        );
        server.finish();
    });
}

//! The async client against a scripted fake server that misbehaves on demand: garbage instead of INFO, garbage
//! after the handshake, stalls before and after the handshake, half-written ops, resets, `-ERR`s, permission
//! violations, malformed headers, oversized sizes, lenient framing, lame duck mode, a server that stops reading.
//!
//! Every case must end in a typed error, an event, or a reconnect: never a panic, and never a hang. Each test
//! body runs under [`fake::within`], so a hang anywhere fails the test in bounded time.
//!
//! A counting global allocator records the largest single allocation, so that an announced size the client
//! must refuse can be shown not to have been allocated.

// A `#[global_allocator]` needs an `unsafe impl GlobalAlloc`. The impl only records the largest size asked for
// and then delegates every call, unchanged, to `std::alloc::System`, so the workspace-wide
// `unsafe_code = "deny"` is lifted for this test file alone (as in `nats-blocking/tests/misbehaving_server.rs`).
#![allow(unsafe_code)]

mod common;
mod fake;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{drain_events, next_within, wait_event, wait_recorded, BoundedExt as _};
use nats_proto::{
    ClientOp, Config, ConnectionError, HeaderError, ParseErrorKind, ServerError, ServerErrorKind, ServerOp,
};
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{ConnectOptions, Error, Event, Message, ReconnectPolicy, Subscriber};

use fake::{msg, server_info, within, FakeServer, Finish, Recv, STEP};

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
            jitter: Duration::ZERO,
        })
        .flush_timeout(STEP)
        .request_timeout(STEP)
}

/// The payload of the next message within [`STEP`], or a panic saying what came instead.
async fn next_payload(sub: &mut Subscriber) -> Vec<u8> {
    match next_within(sub, STEP).await {
        Ok(Some(m)) => m.payload().to_vec(),
        Ok(None) => panic!("expected a message, the subscription ended ({:?})", sub.end_reason()),
        Err(()) => panic!("expected a message, none came within {STEP:?}"),
    }
}

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

// ---- 1. garbage instead of INFO ----

#[tokio::test]
async fn http_response_instead_of_info_fails_connect_quickly() {
    within(TEST_LIMIT, async {
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
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect().await;
        let elapsed = start.elapsed();
        match result {
            Err(Error::Connect(ConnectionError::Parse(e))) => assert_eq!(e.kind(), ParseErrorKind::UnknownOp),
            Err(Error::Connect(ConnectionError::ExpectedInfo)) => {}
            other => panic!("expected Error::Connect(Parse | ExpectedInfo), got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(3), "the garbage was detected only after {elapsed:?}, not at once");
        server.finish().await;
    })
    .await;
}

#[tokio::test]
async fn a_valid_op_before_info_is_expected_info() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send_op(&ServerOp::Ok);
            c.until_eof(STEP);
        });
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect().await;
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::ExpectedInfo))),
            "expected Error::Connect(ExpectedInfo), got {result:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish().await;
    })
    .await;
}

#[tokio::test]
async fn info_with_invalid_json_fails_connect() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send("INFO {\"server_id\":\r\n");
            c.until_eof(STEP);
        });
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect().await;
        match result {
            Err(Error::Connect(ConnectionError::Parse(e))) => assert_eq!(e.kind(), ParseErrorKind::InvalidJson),
            other => panic!("expected Error::Connect(Parse(InvalidJson)), got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish().await;
    })
    .await;
}

// ---- 2. garbage after a good handshake ----

#[tokio::test]
async fn garbage_after_handshake_is_a_parse_error_then_reconnect() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");

        let (event, _) = wait_event(&mut events, STEP, "Disconnected", is_disconnected).await;
        match event {
            Event::Disconnected(ConnectionError::Parse(e)) => assert_eq!(e.kind(), ParseErrorKind::InvalidSize),
            other => panic!("expected Disconnected(Parse(InvalidSize)), got {other:?}"),
        }
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        assert_eq!(next_payload(&mut sub).await, b"after");
        assert_eq!(client.statistics().reconnects, 1);
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 3. a stall during the handshake ----

#[tokio::test]
async fn unanswered_handshake_ping_is_a_connect_timeout() {
    within(TEST_LIMIT, async {
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
        let result = options(server.url()).connect_timeout(timeout).connect().await;
        let elapsed = start.elapsed();
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))),
            "expected Error::Connect(ConnectTimeout), got {result:?}"
        );
        assert!(elapsed >= timeout - Duration::from_millis(20), "gave up after {elapsed:?}, before the timeout");
        assert!(elapsed < timeout + Duration::from_secs(2), "gave up only after {elapsed:?}");
        server.finish().await;
    })
    .await;
}

#[tokio::test]
async fn silent_server_is_a_connect_timeout() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            // No INFO at all.
            let sent = c.until_eof(STEP);
            assert!(sent.is_empty(), "the client spoke before INFO: {sent:?}");
        });
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(timeout).connect().await;
        let elapsed = start.elapsed();
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::ConnectTimeout))),
            "expected Error::Connect(ConnectTimeout), got {result:?}"
        );
        assert!(elapsed < timeout + Duration::from_secs(2), "gave up only after {elapsed:?}");
        server.finish().await;
    })
    .await;
}

// ---- 4. a stall after the handshake ----

#[tokio::test]
async fn unanswered_keepalive_pings_make_the_connection_stale_then_reconnect() {
    within(TEST_LIMIT, async {
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
            .await
            .expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");
        let start = Instant::now();

        let (event, _) = wait_event(&mut events, STEP, "Disconnected", is_disconnected).await;
        assert_eq!(event, Event::Disconnected(ConnectionError::StaleConnection));
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(2), "stale connection detected only after {elapsed:?}");
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        assert_eq!(next_payload(&mut sub).await, b"alive");
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 5. a half-written op, then silence, then a close ----

#[tokio::test]
async fn half_written_message_then_silence_then_close() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");

        let got = next_within(&mut sub, Duration::from_millis(300)).await;
        assert!(got.is_err(), "a half-written message was delivered (or the subscription ended): {got:?}");
        let start = Instant::now();
        let flushed = client.flush_timeout(Duration::from_millis(300)).await;
        assert!(matches!(flushed, Err(Error::Timeout)), "flush against a silent server: {flushed:?}");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(290), "the flush timed out early: {took:?}");
        assert!(took < Duration::from_secs(2), "the flush timed out only after {took:?}");
        assert!(!client.is_closed());

        server.signal();
        let (event, _) = wait_event(&mut events, STEP, "Disconnected", is_disconnected).await;
        assert_eq!(event, Event::Disconnected(ConnectionError::TransportClosed));
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        // The first message the subscriber sees is the good one: nothing of the torn one leaked.
        assert_eq!(next_payload(&mut sub).await, b"world");
        client.flush().await.expect("flush after the reconnect");
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 6. a reset in the middle of a message ----

#[tokio::test]
async fn connection_reset_mid_message_then_reconnect() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");
        client.flush().await.expect("flush");
        client.publish("unread", "x").await.expect("publish");

        let (event, _) = wait_event(&mut events, STEP, "Disconnected", is_disconnected).await;
        assert_eq!(event, Event::Disconnected(ConnectionError::TransportClosed));
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        assert_eq!(next_payload(&mut sub).await, b"second");
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 7. -ERR answering CONNECT ----

#[tokio::test]
async fn authorization_violation_fails_connect() {
    within(TEST_LIMIT, async {
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
        let result = options(server.url()).user_and_password("bob", "wrong").connect().await;
        match result {
            Err(Error::Connect(ConnectionError::Server(e))) => {
                assert_eq!(e.kind(), ServerErrorKind::AuthorizationViolation);
                assert_eq!(e.message(), "Authorization Violation");
            }
            other => panic!("expected Error::Connect(Server(Authorization Violation)), got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
        server.finish().await;
    })
    .await;
}

// ---- 8. a permissions violation for a subscription ----

#[tokio::test]
async fn subscription_permission_violation_ends_the_subscription_not_the_connection() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            c.expect_sub("secret");
            let sid = c.expect_sub("public");
            c.send("-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n");
            c.send(msg("public", sid, b"unaffected"));
            let ops = c.until_eof(STEP);
            assert!(
                ops.iter().any(|op| matches!(op, ClientOp::Pub(p) if p.subject == "public" && p.payload == "still up")),
                "the publish after the violation never reached the server: {ops:?}"
            );
        });
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("secret").await.expect("subscribe");
        let mut public = client.subscribe("public").await.expect("subscribe");
        assert!(sub.end_reason().is_none(), "not ended yet");
        match next_within(&mut sub, STEP).await {
            Ok(None) => {}
            other => panic!("expected the refused subscription to end, got {other:?}"),
        }
        match sub.end_reason() {
            Some(Error::Permission(e)) => {
                assert_eq!(e.kind(), ServerErrorKind::PermissionsViolation);
                assert!(e.message().contains("\"secret\""), "{e:?}");
            }
            other => panic!("expected end_reason Some(Error::Permission), got {other:?}"),
        }
        let (event, _) = wait_event(&mut events, STEP, "ServerError", |e| matches!(e, Event::ServerError(_))).await;
        assert!(matches!(event, Event::ServerError(e) if e.kind() == ServerErrorKind::PermissionsViolation));
        // The other subscription is untouched.
        assert_eq!(next_payload(&mut public).await, b"unaffected");
        assert!(public.end_reason().is_none());

        // The connection is still up.
        client.publish("public", "still up").await.expect("publish");
        client.flush().await.expect("flush after the violation");
        assert!(!client.is_closed());
        let later = drain_events(&mut events);
        assert!(!later.iter().any(is_disconnected), "disconnected: {later:?}");
        assert_eq!(client.statistics().reconnects, 0);
        // Unsubscribing the refused subscription is harmless.
        sub.unsubscribe().await.expect("unsubscribe an ended subscription");
        drop(sub);
        drop(public);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 9. a malformed header block ----

#[tokio::test]
async fn malformed_header_block_is_a_bad_message_and_the_next_message_arrives() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            let sid = c.expect_sub("a");
            // 12 bytes of "headers" that do not start with NATS/1.0, then a 5-byte payload.
            c.send(format!("HMSG a {sid} 12 17\r\nXATS/1.0\r\n\r\nhello\r\n"));
            c.send(msg("a", sid, b"good"));
            c.until_eof(STEP);
        });
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");

        assert_eq!(next_payload(&mut sub).await, b"good");
        let (event, before) = wait_event(&mut events, STEP, "BadMessage", |e| matches!(e, Event::BadMessage(_))).await;
        match event {
            Event::BadMessage(e) => {
                assert_eq!(e.kind(), ParseErrorKind::InvalidHeaders(HeaderError::MissingVersion))
            }
            _ => unreachable!(),
        }
        assert!(!before.iter().any(is_disconnected), "disconnected: {before:?}");
        client.flush().await.expect("the connection survives a bad header block");
        assert!(sub.try_next().is_none(), "the bad message was delivered too");
        assert_eq!(client.statistics().reconnects, 0);
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 10. an oversized announced size ----

#[tokio::test]
async fn oversized_announced_size_is_a_parse_error_not_an_allocation() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        assert_eq!(client.max_payload(), SMALL);
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");

        let (event, _) = wait_event(&mut events, STEP, "Disconnected", is_disconnected).await;
        match event {
            Event::Disconnected(ConnectionError::Parse(e)) => {
                // The inbound cap is the larger of INFO `max_payload` and the configured floor.
                let limit = SMALL.max(Config::default().limits.max_payload);
                assert!(limit < ANNOUNCED);
                assert_eq!(e.kind(), ParseErrorKind::PayloadTooLarge { size: ANNOUNCED, limit })
            }
            other => panic!("expected Disconnected(Parse(PayloadTooLarge)), got {other:?}"),
        }
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        assert_eq!(next_payload(&mut sub).await, b"small");
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest < 64 << 20, "an allocation of {largest} bytes was made (the announced size was refused)");
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 11. lenient framing ----

#[tokio::test]
async fn lower_case_ops_tabs_and_bare_lf_are_accepted() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect with a lower-case handshake");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");

        let next = |sub: &mut Subscriber| -> Message { sub.try_next().expect("a message") };
        common::wait_until(STEP, "three messages", || sub.pending().0 == 3).await;
        let m = next(&mut sub);
        assert_eq!((m.subject().as_str(), m.payload(), m.reply().is_none()), (Some("a"), &b"hello"[..], true));
        let m = next(&mut sub);
        assert_eq!(m.reply().and_then(|r| r.as_str()), Some("reply.to"));
        assert_eq!(m.payload(), b"bye");
        let m = next(&mut sub);
        assert!(m.headers().is_some());
        assert_eq!(m.payload(), b"hi");
        client.flush().await.expect("flush");
        let seen = drain_events(&mut events);
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Disconnected(_) | Event::BadMessage(_))),
            "lenient framing was not accepted: {seen:?}"
        );
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

// ---- 12. lame duck mode and discovered servers ----

#[tokio::test]
async fn async_info_reports_discovered_servers_and_lame_duck() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let _sub = client.subscribe("a").await.expect("subscribe");

        let (_, before) = wait_event(&mut events, STEP, "DiscoveredServers", |e| *e == Event::DiscoveredServers).await;
        assert!(before.is_empty(), "unexpected events: {before:?}");
        let (_, before) = wait_event(&mut events, STEP, "LameDuck", |e| *e == Event::LameDuck).await;
        assert!(before.is_empty(), "unexpected events: {before:?}");
        client.flush().await.expect("flush");
        let info = client.server_info().expect("server info");
        assert!(info.lame_duck_mode);
        assert_eq!(info.connect_urls, ["127.0.0.1:1"]);
        let later = drain_events(&mut events);
        assert!(later.is_empty(), "the same servers were announced twice, or the connection dropped: {later:?}");
        drop(client);
        server.finish().await;
    })
    .await;
}

/// A script failure must reach the test (the harness itself is tested, so a broken fake cannot pass silently).
#[tokio::test]
async fn a_failing_script_fails_the_test() {
    let server = FakeServer::start(|s| {
        let mut c = s.accept();
        match c.recv(Duration::from_millis(50)) {
            Recv::Timeout => panic!("script failure"),
            other => panic!("unexpected {other:?}"),
        }
    });
    let _client = std::net::TcpStream::connect(server.url().trim_start_matches("nats://")).expect("connect");
    let panic = server.try_finish().bounded().await.expect_err("no panic");
    assert_eq!(fake::panic_text(&*panic), "script failure");
}

// ---- more of the same kind ----

#[tokio::test]
async fn server_closing_during_the_handshake_fails_connect() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.send_info(&server_info(MAX_PAYLOAD));
            c.expect("CONNECT", |op| matches!(op, ClientOp::Connect(_)));
            c.auto_pong = false;
            c.expect("PING", |op| *op == ClientOp::Ping);
            // Gone without a word.
        });
        let start = Instant::now();
        let result = options(server.url()).connect_timeout(Duration::from_secs(10)).connect().await;
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::TransportClosed))),
            "expected Error::Connect(TransportClosed), got {result:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish().await;
    })
    .await;
}

/// A server that requires TLS gets a TLS handshake, never plaintext; one that then hangs up fails `connect`.
#[tokio::test]
async fn server_requiring_tls_gets_a_tls_handshake_not_plaintext() {
    within(TEST_LIMIT, async {
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
        let (callback, recorded) = common::event_recorder();
        let start = Instant::now();
        let result = options(server.url()).event_callback(callback).connect().await;
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::TransportClosed | ConnectionError::Tls(_)))),
            "connect must fail when the handshake cannot finish, got {result:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        wait_recorded(&recorded, STEP, "ConnectFailed", |e| {
            matches!(e, Event::ConnectFailed { error: ConnectionError::TransportClosed | ConnectionError::Tls(_), .. })
        })
        .await;
        server.finish().await;
    })
    .await;
}

#[tokio::test]
async fn stale_connection_err_from_the_server_disconnects_then_reconnect() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let mut sub = client.subscribe("a").await.expect("subscribe");
        let (event, _) = wait_event(&mut events, STEP, "Disconnected", is_disconnected).await;
        match event {
            Event::Disconnected(ConnectionError::Server(e)) => assert_eq!(e.kind(), ServerErrorKind::StaleConnection),
            other => panic!("expected Disconnected(Server(Stale Connection)), got {other:?}"),
        }
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        assert_eq!(next_payload(&mut sub).await, b"back");
        drop(sub);
        drop(client);
        server.finish().await;
    })
    .await;
}

#[tokio::test]
async fn drain_against_a_stalled_server_is_bounded() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).drain_timeout(drain_timeout).connect().await.expect("connect");
        let mut sub = client.subscribe("a").await.expect("subscribe");
        let start = Instant::now();
        let result = client.drain().within(drain_timeout + Duration::from_secs(3)).await;
        let elapsed = start.elapsed();
        assert!(matches!(result, Ok(()) | Err(Error::Timeout)), "drain: {result:?}");
        assert!(elapsed < drain_timeout + Duration::from_secs(2), "drain returned only after {elapsed:?}");
        assert!(client.is_closed(), "drain returned {result:?} with the client still open");
        assert!(matches!(client.publish("a", "x").await, Err(Error::Closed)));
        assert!(next_within(&mut sub, STEP).await.expect("the subscription ends").is_none());
        drop(client);
        server.finish().await;
    })
    .await;
}

/// A request in flight when the connection breaks is not lost: it is answered after the reconnect (the
/// request inbox is replayed) or fails with a typed error; it never hangs past its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_when_the_connection_resets_ends_in_bounded_time() {
    within(TEST_LIMIT, async {
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
        let client = options(server.url()).connect().await.expect("connect");
        let mut events = client.events();
        let timeout = Duration::from_millis(800);
        let started = Instant::now();
        let result = client.request_with_timeout("svc", "q", timeout).await;
        let took = started.elapsed();
        assert!(matches!(result, Err(Error::Timeout)), "nobody answered, expected Timeout: {result:?}");
        assert!(took < timeout + Duration::from_secs(2), "the request ended only after {took:?}");
        wait_event(&mut events, STEP, "Reconnected", is_reconnected).await;
        // The client goes on: a request on the new connection is sent (and times out: the fake never answers).
        let again = client.request_with_timeout("svc.after", "q", Duration::from_millis(200)).await;
        assert!(matches!(again, Err(Error::Timeout)), "{again:?}");
        drop(client);
        server.finish().await;
    })
    .await;
}

/// A server that stops reading: publishers fill the socket buffers and the client's 32 MiB of unwritten bytes,
/// then wait for room (back-pressure). When the connection goes stale those bytes are dropped with it, so the
/// waiting publisher must be let go rather than wait until some later connection happens to write something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_waiting_for_room_is_released_when_the_connection_is_lost() {
    within(TEST_LIMIT, async {
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
            .await
            .expect("connect");
        let mut events = client.events();

        let published = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (client, published, done) = (client.clone(), published.clone(), done.clone());
            tokio::spawn(async move {
                let payload = nats_tokio::bytes::Bytes::from(vec![7u8; PAYLOAD]);
                let mut result = Ok(());
                for _ in 0..COUNT {
                    result = client.publish("big", payload.clone()).await;
                    if result.is_err() {
                        break;
                    }
                    published.fetch_add(1, Ordering::SeqCst);
                }
                done.store(true, Ordering::SeqCst);
                result
            })
        };

        let (event, _) = wait_event(&mut events, Duration::from_secs(10), "Disconnected", is_disconnected).await;
        assert_eq!(event, Event::Disconnected(ConnectionError::StaleConnection));
        let at_loss = published.load(Ordering::SeqCst);

        // The connection's unwritten bytes are gone with it: the publisher must not stay parked.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let released = done.load(Ordering::SeqCst);
        let after = published.load(Ordering::SeqCst);
        // Closing releases it in any case, so the task can be joined.
        server.signal();
        client.close().bounded().await;
        let result = publisher.bounded().await.expect("the publisher panicked");
        assert!(
            at_loss < COUNT,
            "back-pressure never engaged: all {COUNT} publishes of {PAYLOAD} bytes were accepted by a server that \
             reads nothing, before the connection was lost"
        );
        assert!(
            released,
            "publish() still waiting 2 s after the connection was lost ({at_loss} publishes before the loss, \
             {after} after; the publisher ended with {result:?} only once the client was closed)"
        );
        server.finish().await;
    })
    .await;
}

/// Dropping a `connect` future (here: a timeout shorter than the connect timeout) ends the attempt: the
/// half-open connection is closed at once rather than kept until the connect timeout.
#[tokio::test]
async fn a_cancelled_connect_closes_its_connection() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            // No INFO: the client waits in the handshake until the test gives up on it.
            let started = Instant::now();
            let sent = c.until_eof(STEP);
            assert!(sent.is_empty(), "the client spoke before INFO: {sent:?}");
            assert!(started.elapsed() < Duration::from_secs(2), "the connection lived {:?}", started.elapsed());
            // And it does not come back.
            assert!(s.accept_within(Duration::from_millis(500)).is_none(), "a cancelled connect dialed again");
        });
        let attempt = options(server.url()).connect_timeout(Duration::from_secs(10)).connect();
        let result = tokio::time::timeout(Duration::from_millis(200), attempt).await;
        assert!(result.is_err(), "connected to a server that never sent INFO: {result:?}");
        server.finish().await;
    })
    .await;
}

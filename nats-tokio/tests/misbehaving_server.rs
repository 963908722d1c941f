//! The async client against a scripted fake server: the cases that are this client's alone.
//!
//! Everything the two clients do alike against a misbehaving server is in the conformance suite
//! (`conformance/tests/misbehaving_server/`), written once and run against both clients (this one driven
//! from blocking code on a multi-thread tokio runtime). What stays here needs the async API itself:
//! cancelling a `connect` by dropping its future, and `Subscriber::end_reason`, which the blocking client
//! does not have (its `next_timeout` returns the reason instead).
//!
//! Each test body runs under [`fake::within`], so a hang anywhere fails the test in bounded time.

mod common;
mod fake;

use std::time::{Duration, Instant};

use common::next_within;
use nats_proto::ServerErrorKind;
use nats_tokio::ConnectOptionsExt as _;
use nats_tokio::{ConnectOptions, Error, ReconnectPolicy};

use fake::{msg, server_info, within, FakeServer, Finish, STEP};

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

/// A subscription the server refuses ends, and `end_reason` says why; until it has ended it says nothing, and
/// the other subscriptions have no end reason. (The suite checks the rest of this case on both clients: the
/// event, the connection staying up, the other subscription's messages.)
#[tokio::test]
async fn a_refused_subscription_reports_its_end_reason() {
    within(TEST_LIMIT, async {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            c.greet(&server_info(MAX_PAYLOAD));
            c.expect_sub("secret");
            let sid = c.expect_sub("public");
            c.send("-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n");
            c.send(msg("public", sid, b"unaffected"));
            c.until_eof(STEP);
        });
        let client = options(server.url()).connect().await.expect("connect");
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
        // The other subscription is untouched.
        match next_within(&mut public, STEP).await {
            Ok(Some(m)) => assert_eq!(m.payload(), b"unaffected"),
            other => panic!("expected a message on the other subscription, got {other:?}"),
        }
        assert!(public.end_reason().is_none());
        // Unsubscribing the refused subscription is harmless.
        sub.unsubscribe().await.expect("unsubscribe an ended subscription");
        drop(sub);
        drop(public);
        drop(client);
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

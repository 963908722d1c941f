//! The blocking client against a scripted fake server: the one case that is this client's alone.
//!
//! Everything the two clients do alike against a misbehaving server is in the conformance suite
//! (`conformance/tests/misbehaving_server/`), written once and run against both clients. What stays here is
//! behaviour the async client does not share: the events of a failed `connect` have reached the event
//! callback (its thread) by the time `connect` returns. The async client's callback task sees them only
//! after the `connect` future has completed, so the suite checks only that they arrive.

mod fake;

use std::time::{Duration, Instant};

use nats_blocking::ConnectOptionsExt as _;
use nats_blocking::{ConnectOptions, ConnectionError, Error, Event, ReconnectPolicy};

use fake::{server_info, within, FakeServer, Finish, STEP};

/// The bound on a whole test, hangs included.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A server that requires TLS gets a TLS handshake and then hangs up: `connect` fails, and the event callback
/// has been told (`Event::ConnectFailed`) by the time it returns.
#[test]
fn a_failed_connect_has_reached_the_event_callback_when_connect_returns() {
    within(TEST_LIMIT, || {
        let server = FakeServer::start(|s| {
            let mut c = s.accept();
            let mut info = server_info(1 << 20);
            info.tls_required = true;
            c.send_info(&info);
            // The client starts TLS (a ClientHello); this fake server speaks no TLS and hangs up.
            let sent = c.recv_raw(STEP);
            assert_eq!(sent.first(), Some(&0x16), "expected a TLS ClientHello, got {sent:?}");
        });
        let (tx, seen) = std::sync::mpsc::channel();
        let start = Instant::now();
        let result = ConnectOptions::new()
            .server(server.url())
            .connect_timeout(Duration::from_secs(2))
            .reconnect_policy(ReconnectPolicy {
                max_attempts_per_server: None,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                jitter: Duration::from_millis(5),
            })
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
            "no ConnectFailed event by the time connect returned: {seen:?}"
        );
        assert!(
            matches!(result, Err(Error::Connect(ConnectionError::TransportClosed | ConnectionError::Tls(_)))),
            "connect must fail when the handshake cannot finish, got {result:?} (events: {seen:?})"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
        server.finish();
    });
}

//! Both clients against a scripted fake server that misbehaves on demand: garbage instead of INFO, garbage
//! after the handshake, stalls before and after the handshake, half-written ops, resets, `-ERR`s, permission
//! violations, malformed headers, oversized sizes, lenient framing, lame duck mode, a server that stops
//! reading.
//!
//! Every case must end in a typed error, an event, or a reconnect: never a panic, and never a hang. Each case
//! is written once, generic over `conformance::TestClient`, and the `suite!` macro instantiates it as a `#[test]` in
//! module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on [`conformance::TokioClient`]),
//! each run under `conformance::within`, so a hang anywhere fails the test in bounded time.
//!
//! A counting global allocator records the largest single allocation, so that an announced size the client
//! must refuse can be shown not to have been allocated.
//!
//! Cases only one client can have live with that client's tests: cancelling a `connect` by dropping its
//! future, and `Subscriber::end_reason`, are in `nats-tokio/tests/misbehaving_server.rs`.

// A `#[global_allocator]` needs an `unsafe impl GlobalAlloc`. The impl only records the largest size asked for
// and then delegates every call, unchanged, to `std::alloc::System`, so the workspace-wide
// `unsafe_code = "deny"` is lifted for this test file alone (as in `nats-proto/tests/alloc.rs`).
#![allow(unsafe_code)]

mod connection;
mod handshake;
mod protocol;
mod shutdown;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conformance::{within, Finish as _};
use nats_client::{ConnectOptions, Error, Message};
use nats_proto::ReconnectPolicy;
use nats_server_harness::fake::{panic_text, FakeServer, Recv, STEP};

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

/// The largest single allocation made so far in this test binary.
fn largest_allocation() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// The bound on a whole case, hangs included.
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

/// The payload of a message, or a panic saying what came instead.
#[track_caller]
fn payload_of(result: Result<Message, Error>) -> Vec<u8> {
    match result {
        Ok(m) => m.payload().to_vec(),
        Err(e) => panic!("expected a message, got {e:?}"),
    }
}

/// Runs one case under the hang guard.
fn run(case: fn()) {
    within(TEST_LIMIT, case);
}

/// Instantiates every case once per client: `blocking::<case>` and `tokio::<case>`.
macro_rules! suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        /// The suite on `nats_blocking::Client`.
        mod blocking {
            $(
                #[test]
                fn $case() {
                    crate::run(crate::$module::$case::<nats_blocking::Client>);
                }
            )*
        }

        /// The suite on `nats_tokio::Client`, driven from blocking code on a shared multi-thread runtime.
        mod tokio {
            $(
                #[test]
                fn $case() {
                    crate::run(crate::$module::$case::<conformance::TokioClient>);
                }
            )*
        }
    };
}

suite! {
    // 1. garbage instead of INFO
    handshake::http_response_instead_of_info_fails_connect_quickly,
    handshake::a_valid_op_before_info_is_expected_info,
    handshake::info_with_invalid_json_fails_connect,
    // 3. a stall during the handshake
    handshake::unanswered_handshake_ping_is_a_connect_timeout,
    handshake::silent_server_is_a_connect_timeout,
    // 7. -ERR answering CONNECT
    handshake::authorization_violation_fails_connect,
    handshake::server_closing_during_the_handshake_fails_connect,
    handshake::server_requiring_tls_gets_a_tls_handshake_not_plaintext,
    // 2. garbage after a good handshake
    connection::garbage_after_handshake_is_a_parse_error_then_reconnect,
    connection::messages_read_with_a_fatal_error_wake_their_waiting_subscriber,
    // 4. a stall after the handshake
    connection::unanswered_keepalive_pings_make_the_connection_stale_then_reconnect,
    // 5. a half-written op, then silence, then a close
    connection::half_written_message_then_silence_then_close,
    // 6. a reset in the middle of a message
    connection::connection_reset_mid_message_then_reconnect,
    connection::stale_connection_err_from_the_server_disconnects_then_reconnect,
    connection::a_request_in_flight_when_the_connection_resets_ends_in_bounded_time,
    // 8. a permissions violation for a subscription
    protocol::subscription_permission_violation_ends_the_subscription_not_the_connection,
    // 9. a malformed header block
    protocol::malformed_header_block_is_a_bad_message_and_the_next_message_arrives,
    // 10. an oversized announced size
    protocol::oversized_announced_size_is_a_parse_error_not_an_allocation,
    // 11. lenient framing
    protocol::lower_case_ops_tabs_and_bare_lf_are_accepted,
    // 12. lame duck mode and discovered servers
    protocol::async_info_reports_discovered_servers_and_lame_duck,
    // a client that has to stop
    shutdown::drain_against_a_stalled_server_is_bounded,
    shutdown::publisher_waiting_for_room_is_released_when_the_connection_is_lost,
}

/// A script failure must reach the test (the harness itself is tested, so a broken fake cannot pass
/// silently). No client is involved, so this runs once, not per client.
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
    assert_eq!(panic_text(&*panic), "script failure");
}

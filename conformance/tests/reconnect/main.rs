//! Reconnecting against real nats-servers, on both clients: a server stopped and restarted on the same port
//! (subscriptions, their remaining max, queue groups, many subscriptions on a current and an old server,
//! requests, flushes and a drain made while disconnected), the reconnect buffer, a frozen server, and
//! failover inside a cluster.
//!
//! Each case is written once, generic over `conformance::TestClient`; the `suite!` macro instantiates it as a
//! `#[test]` in module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on
//! `conformance::TokioClient`), each under `conformance::within`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod buffer;
mod cluster;
mod frozen;
mod restart;

use std::time::Duration;

use nats_client::Event;
use nats_server_harness::NatsServer;

/// Long enough for a restart and a few backoff rounds.
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

/// Sends a signal (`-STOP`, `-CONT`) to the server process.
#[track_caller]
fn signal(server: &NatsServer, sig: &str) {
    let pid = server.pid().expect("the server runs").to_string();
    let status = std::process::Command::new("kill").args([sig, &pid]).status().expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

suite! {
    restart::restart_resubscribes_with_the_remaining_max_and_sends_buffered_publishes,
    restart::requests_and_flushes_made_while_disconnected_complete_after_reconnect,
    restart::drain_while_disconnected_waits_for_the_reconnect_and_delivers_buffered_publishes,
    restart::many_subscriptions_survive_a_restart_of_a_current_server,
    restart::many_subscriptions_survive_a_restart_of_an_old_server,
    frozen::a_frozen_server_is_detected_as_stale_and_left,
    frozen::a_publisher_waiting_on_a_frozen_server_is_released_when_the_connection_is_lost,
    buffer::flushed_publishes_survive_a_restart_mid_stream,
    buffer::full_reconnect_buffer_is_a_typed_error_and_nothing_else_is_lost,
    cluster::cluster_failover_to_a_discovered_server,
}

//! Both clients over WebSocket (`ws://`, `wss://`): against a real nats-server with a websocket listener
//! (publish, subscribe, request, large messages in many frames, a server that frames at 4 KiB, reconnect,
//! TLS, servers learned from a cluster), and against a scripted fake WebSocket server for what a real one
//! will not do on demand (every op split at every byte across frames, pings, fragmented messages, a close
//! frame, malformed frames, a refused upgrade, masking agreed or not).
//!
//! Each case is written once, generic over `conformance::TestClient`, and runs on both clients under the
//! hang guard.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod fake_server;
mod real_server;

use std::time::Duration;

use nats_client::{ConnectOptions, Event};

use crate::common::options;

/// How long a reconnect may take (the backoff is short, a restart a few hundred milliseconds).
const RECONNECT_WAIT: Duration = Duration::from_secs(15);

/// A user agent nats-server takes for a browser's: it then cuts what it sends into frames of 4 KiB, so ops
/// arrive split across frames wherever those boundaries fall.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) conformance";

fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

fn is_reconnected(e: &Event) -> bool {
    matches!(e, Event::Reconnected(_))
}

/// The suite's options for a WebSocket URL.
fn ws_options(url: &str) -> ConnectOptions {
    options(url)
}

suite! {
    real_server::publish_subscribe_and_request_masked_and_not,
    real_server::large_messages_and_bursts_cross_4k_frames_split_mid_op,
    real_server::reconnects_after_the_server_restarts,
    real_server::wss_with_the_fixtures_ca_and_refuses_an_untrusted_one,
    real_server::a_plain_ws_port_works_while_the_nats_port_requires_tls,
    real_server::fails_over_to_a_websocket_url_learned_from_the_cluster,
    real_server::ws_with_tls_required_is_refused_before_dialing,
    fake_server::every_op_split_at_every_byte_across_frames_arrives_whole,
    fake_server::pings_are_answered_and_fragmented_messages_reassembled,
    fake_server::frames_are_unmasked_only_when_the_server_agreed,
    fake_server::a_close_frame_ends_the_connection_with_its_code_and_reason,
    fake_server::malformed_frames_are_typed_errors_then_the_client_reconnects,
    fake_server::a_refused_upgrade_fails_connect_with_a_typed_error,
}

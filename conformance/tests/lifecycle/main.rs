//! The life of a connection against real nats-servers, on both clients: connecting (and failing to), server
//! info and statistics, both server versions, the event callback and event receivers, drain, close, dropping
//! the last handle (connected, reconnecting, never connected), and timeouts while disconnected.
//!
//! Each case is written once, generic over `conformance::TestClient`; the `suite!` macro instantiates it as a
//! `#[test]` in module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on
//! `conformance::TokioClient`), each under `conformance::within`.
//!
//! Cases only one client can have stay with that client's tests: callback subscriptions after a close
//! (`nats-blocking/tests/lifecycle.rs`); the `Events` stream and the `Send`/`Sync` shape of the async
//! client's types (`nats-tokio/tests/lifecycle.rs`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod close;
mod connect;
mod drain;

suite! {
    connect::connection_refused_fails_fast_without_retry,
    connect::retry_on_initial_connect_returns_at_once_and_connects_later,
    connect::server_info_and_statistics,
    connect::core_scenario_current_server,
    connect::core_scenario_old_server,
    connect::the_event_callback_sees_the_connection_and_its_close,
    connect::requests_and_flushes_time_out_while_disconnected,
    close::every_call_after_close_is_closed,
    close::dropping_the_last_client_closes_the_connection,
    close::close_wakes_every_waiting_call,
    close::event_receivers_end_when_the_client_closes,
    close::dropping_the_last_client_while_reconnecting_stops_it,
    close::a_dropped_client_that_never_connected_stops_dialing,
    drain::drain_delivers_messages_in_flight_then_ends_the_subscription,
    drain::drain_delivers_messages_from_another_publisher,
    drain::drain_waits_for_open_requests,
    drain::drain_finishes_once_the_last_open_request_is_given_up,
    drain::a_restart_is_survived_by_subscriber_threads,
}

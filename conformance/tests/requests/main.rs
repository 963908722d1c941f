//! Request/reply against a real nats-server, on both clients: replies, timeouts (given and default), no
//! responders, headers both ways, `request_many` and its three stop conditions, dropping its replies, many
//! concurrent requests beside publishers, and a responder that makes requests of its own.
//!
//! Each case is written once, generic over `conformance::TestClient`; the `suite!` macro instantiates it as a
//! `#[test]` in module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on
//! `conformance::TokioClient`), each under `conformance::within`; and again over WebSocket, in modules
//! `blocking_ws` and `tokio_ws` (the server also listens for it, and the case's `connect` goes through it).
//!
//! Cases only one client can have stay with that client's tests: request futures cancelled by dropping them
//! (`nats-tokio/tests/requests.rs`), and a callback handler making requests (`nats-blocking/tests/requests.rs`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod basics;
mod concurrency;
mod many;

suite! {
    websocket;
    basics::request_gets_the_reply,
    basics::request_times_out_when_nobody_answers,
    basics::no_responders_fails_fast,
    basics::request_with_headers_both_ways,
    many::request_many_stops_at_max,
    many::request_many_ends_after_a_stall,
    many::request_many_ends_at_the_overall_timeout,
    many::request_many_with_no_responders_is_empty_and_quick,
    many::dropping_request_many_replies_cancels_it,
    concurrency::concurrent_requests_from_many_threads_match_their_replies,
    concurrency::a_thousand_concurrent_requests_get_their_own_replies,
    concurrency::requests_beside_a_bursting_publisher_never_stall_the_writer,
    concurrency::requests_are_answered_beside_publishers_in_full_flow,
    concurrency::a_responder_can_make_requests_of_its_own,
}

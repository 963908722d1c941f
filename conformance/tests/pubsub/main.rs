//! Publish/subscribe against a real nats-server, on both clients: subjects and wildcards, payload forms and
//! sizes, headers, replies, the receive calls, queue groups, unsubscribing (now, after a max, by dropping),
//! and ordering under volume and while other threads issue commands on the same client.
//!
//! Each case is written once, generic over `conformance::TestClient`; the `suite!` macro instantiates it as a
//! `#[test]` in module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on
//! `conformance::TokioClient`), each under `conformance::within`; and again over WebSocket, in modules
//! `blocking_ws` and `tokio_ws` (the server also listens for it, and the case's `connect` goes through it).
//!
//! Cases only one client can have stay with that client's tests: callback subscriptions and their threads
//! (`nats-blocking/tests/pubsub.rs`); the `Stream` impl and `Subscriber::end_reason`
//! (`nats-tokio/tests/pubsub.rs`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod basics;
mod ordering;
mod unsubscribe;

suite! {
    websocket;
    basics::publish_and_receive_in_order,
    basics::borrowed_and_owned_payloads_arrive_as_sent,
    basics::wildcards_star_and_greater_than,
    basics::headers_round_trip_multi_valued_and_case_preserving,
    basics::publish_with_reply_and_respond,
    basics::try_next_next_timeout_and_pending,
    basics::payload_sizes_around_buffer_boundaries_arrive_intact,
    unsubscribe::queue_group_spreads_load_without_duplicates,
    unsubscribe::queue_group_members_on_separate_threads_share_the_work,
    unsubscribe::unsubscribe_after_delivers_exactly_n_then_ends,
    unsubscribe::unsubscribe_after_counts_messages_already_delivered,
    unsubscribe::unsubscribe_after_a_max_already_reached_ends_at_once,
    unsubscribe::unsubscribe_stops_delivery_but_keeps_received_messages,
    unsubscribe::dropping_a_subscriber_unsubscribes_on_the_server,
    ordering::high_volume_with_a_concurrent_reader_loses_nothing,
    ordering::concurrent_publishers_on_one_client_keep_each_threads_order,
    ordering::messages_stay_in_order_while_other_threads_issue_commands,
    ordering::unsubscribe_after_delivers_exactly_n_while_other_threads_issue_commands,
    ordering::flush_orders_messages_before_it_while_other_threads_issue_commands,
}

//! Limits against a real nats-server, on both clients: slow consumers (by messages, by bytes, one stuck
//! subscriber beside a flowing one), the server's max_payload, invalid subjects and queue names.
//!
//! Each case is written once, generic over `conformance::TestClient`; the `suite!` macro instantiates it as a
//! `#[test]` in module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on
//! `conformance::TokioClient`), each under `conformance::within`.
//!
//! The checks only one client can have stay with that client's tests: invalid subjects and queues given to
//! callback subscriptions (`nats-blocking/tests/limits.rs`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod checks;
mod slow;

suite! {
    slow::slow_consumer_drops_counts_and_reports_once_per_episode,
    slow::a_stuck_subscriber_does_not_hold_up_the_others,
    slow::slow_consumer_byte_limit,
    checks::max_payload_is_enforced_before_sending,
    checks::invalid_subjects_and_queues_are_typed_errors,
}

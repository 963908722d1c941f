//! W3C trace context on both clients, against a real nats-server: what is published, requested and answered
//! while a `TraceContext` is current carries it (`traceparent`, `tracestate`), what is sent outside one
//! carries nothing, and a `traceparent` the caller set is sent as it is.
//!
//! Written once, generic over `conformance::TestClient`, instantiated per client by `suite!`. The tokio
//! client is driven by `block_on` from the test's thread, so the context made current there is current while
//! its futures are polled, as it would be inside a `TraceContext::scope`d future.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod propagation;

suite! {
    propagation::a_publish_carries_the_current_context_and_only_it,
    propagation::a_traceparent_the_caller_set_is_not_overwritten,
    propagation::a_request_and_its_reply_carry_one_trace,
    propagation::a_publish_that_fits_only_without_the_context_goes_without_it,
}

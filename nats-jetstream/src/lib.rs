//! JetStream and Key/Value for the NATS stack, sans-IO at its heart.
//!
//! JetStream is a JSON request/reply API over core NATS plus a few message protocols (publish acks, pull
//! delivery, acks, direct get). This crate holds everything about it that needs no socket and no clock of its
//! own: subject builders that honour the API prefix and domain, serde models of requests and replies (lenient
//! in, minimal out), a reply-to-typed-error classifier, a status-message classifier, the ack-subject parser,
//! the pull-consumer and ordered-consumer state machines, and Key/Value's rules.

pub mod ack;
pub mod api;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod call;
pub mod error;
pub mod kv;
pub mod model;
pub mod ordered;
pub mod pull;
pub mod status;
pub mod transport;

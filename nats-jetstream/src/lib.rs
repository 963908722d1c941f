//! JetStream and Key/Value for the NATS stack, sans-IO at its heart.
//!
//! JetStream is a JSON request/reply API over core NATS plus a few message protocols (publish acks, pull
//! delivery, acks, direct get). This crate holds everything about it that needs no socket and no clock of its
//! own: subject builders that honour the API prefix and domain, serde models of requests and replies (lenient
//! in, minimal out), a reply-to-typed-error classifier, a status-message classifier, the ack-subject parser,
//! the pull-consumer and ordered-consumer state machines, and Key/Value's rules.
//!
//! On top of it, [`call`] turns every API call into data (subject, body, reply decoder), and the bindings drive
//! it on a client: [`blocking`] on any blocking client (`nats-blocking`, feature `blocking`, on by default) and
//! `asynch` on any async one (`nats-tokio` on tokio or smol, feature `async`). They reach the client only
//! through the one seam every layer above the clients uses, [`nats_client::seam`]: request/reply, publish, a
//! subscription, connection events, and the client's own timer.
//!
//! ```
//! use nats_jetstream::api::ApiPrefix;
//! use nats_jetstream::call::{Api, PublishOptions};
//! use nats_jetstream::error::ErrorCode;
//!
//! // Subjects follow the domain; a publish with expectations carries them as headers.
//! let api = Api::new(ApiPrefix::with_domain("hub")?);
//! assert_eq!(api.stream_info("ORDERS")?.subject(), "$JS.hub.API.STREAM.INFO.ORDERS");
//! let publish = api.publish("orders.new", "42", &PublishOptions::new().expected_last_sequence(7))?;
//! assert_eq!(publish.headers().and_then(|h| h.get("Nats-Expected-Last-Sequence")), Some("7"));
//!
//! // A failed expectation comes back as a typed error with the server's err_code.
//! let reply = br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 8"}}"#;
//! let error = publish.decode(None, &reply[..]).unwrap_err();
//! assert_eq!(error.error_code(), Some(ErrorCode::WrongLastSequence));
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

pub mod ack;
pub mod api;
#[cfg(feature = "async")]
pub mod asynch;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod call;
#[cfg(any(feature = "blocking", feature = "async"))]
mod common;
pub mod direct;
pub mod error;
pub use error::{AckResult, Error};
pub mod kv;
pub mod model;
pub mod object;
pub mod ordered;
pub mod ordered_push;
pub mod pull;
pub mod push;
pub mod status;

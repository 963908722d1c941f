//! An async NATS client, runtime-light: tokio by default, smol with the `smol` feature.
//!
//! The same surface as `nats-blocking` (same names, same options, same errors: they are the same types,
//! from `nats-client`), with `.await`. One spawned task owns the socket and drives the [`nats_proto`] sans-IO
//! core; the [`Client`] is a cheap `Clone + Send + Sync` handle.
//!
//! ```
//! # let server = nats_server_harness::NatsServer::start();
//! # let url = server.url();
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let client = nats_tokio::connect(&url).await?;
//!
//! // Subscribe, publish, receive: a Subscriber is a Stream (and has an inherent `next`).
//! let mut sub = client.subscribe("greet.*").await?;
//! client.publish("greet.joe", "hello").await?;
//! let msg = sub.next().await.expect("a message");
//! assert_eq!(msg.payload(), b"hello");
//!
//! // Request/reply: a responder in a task of its own, on the runtime the client connected on.
//! let _svc = client.subscribe_with("time", |req| {
//!     let _ = req.respond("now");
//! }).await?;
//! let reply = client.request("time", "").await?;
//! assert_eq!(reply.payload(), b"now");
//!
//! // A handler that ends after three messages (an async one, here), and waiting for it.
//! let three = client.subscribe_with_max_async("count", 3, |msg| async move {
//!     let _ = msg.payload();
//! }).await?;
//! for i in 0..5 {
//!     client.publish("count", i.to_string()).await?;
//! }
//! three.join().await.expect("the handler did not panic");
//!
//! // Nobody listening is a typed error, not a timeout.
//! assert!(matches!(client.request("nobody", "").await, Err(nats_tokio::Error::NoResponders)));
//! client.drain().await?;
//! # Ok::<(), nats_tokio::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Design
//!
//! - Commands lock the core only to encode (or to register a waiter) and wake the driver task, so a publish
//!   allocates nothing and a typed error (invalid subject, payload over `max_payload`, full reconnect buffer)
//!   comes back before anything is written.
//! - The task takes every pending byte in one swap and writes it with vectored writes, reads into the core,
//!   and keeps one timer, moved only when the core's next deadline changes. Request, flush and drain
//!   deadlines are the core's: no timer per request.
//! - A subscription's queue is bounded in messages and bytes: a subscriber that falls behind loses messages
//!   (counted, one `Event::SlowConsumer` per episode) instead of stalling the connection.
//! - Dropping a request future cancels it in the mux; nothing is left behind.
//! - Callback subscriptions ([`Client::subscribe_with`], `queue_subscribe_with`, with a max from the start
//!   `subscribe_with_max`, async handlers `subscribe_with_async`) run their handler in a task of their own on
//!   the client's runtime, one message at a time; a handler that panics ends its own subscription only.
//! - The runtime is used for four things only (dial, read/write readiness, one timer, spawn), so the same
//!   driver runs on smol: `connect_smol` (with the `smol` feature), no tokio runtime needed.
//! - With the `trace-context` feature, what a future made with `trace::TraceContext::scope` publishes,
//!   requests or answers carries the W3C `traceparent`/`tracestate` headers (`trace`), on either runtime.

// With neither runtime feature the client types exist (for code generic over them) but nothing can connect.
#![cfg_attr(not(any(feature = "tokio", feature = "smol")), allow(dead_code, unused_imports))]

mod callback;
mod client;
mod driver;
mod events;
mod link;
mod runtime;
mod seam;
mod subscriber;
mod tls;
#[cfg(feature = "websocket")]
mod websocket;

#[cfg(feature = "tokio")]
use std::future::Future;

pub use callback::CallbackSubscription;
pub use client::{Client, PendingReply};
pub use events::Events;
pub use nats_client::{ConnectOptions, Credentials, Error, Event, Message, PendingLimits};
pub use nats_proto::{
    ConnectionError, HeaderBlock, HeaderView, Headers, Msg, Payload, ReconnectPolicy, ServerInfo, Statistics,
    StatusCode, Subject, SubjectRef,
};
pub use subscriber::{Responses, Subscriber};

/// The `bytes` crate, for `Bytes` payloads.
pub use bytes;

/// W3C trace context propagation (feature `trace-context`): see [`nats_client::trace`].
#[cfg(feature = "trace-context")]
pub use nats_client::trace;

/// Connects to one or more comma-separated server URLs with default options, on tokio.
#[cfg(feature = "tokio")]
pub async fn connect(urls: &str) -> Result<Client, Error> {
    Client::connect(ConnectOptions::new().server(urls)).await
}

/// Connects with `options` on smol: the driver task is spawned on smol's executor and no tokio runtime is
/// needed.
#[cfg(feature = "smol")]
pub async fn connect_smol(options: ConnectOptions) -> Result<Client, Error> {
    Client::connect_on::<runtime::smol_rt::Smol>(options).await
}

/// `options.connect().await`, as [`Client::connect`]. `ConnectOptions` is shared with the blocking client,
/// so the method comes from this trait: `use nats_tokio::ConnectOptionsExt as _;`.
#[cfg(feature = "tokio")]
pub trait ConnectOptionsExt {
    /// Connects with these options on tokio.
    fn connect(self) -> impl Future<Output = Result<Client, Error>> + Send;
}

#[cfg(feature = "tokio")]
impl ConnectOptionsExt for ConnectOptions {
    fn connect(self) -> impl Future<Output = Result<Client, Error>> + Send {
        Client::connect(self)
    }
}

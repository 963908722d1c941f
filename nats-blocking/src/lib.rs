//! A NATS client on `std::net`, with no async runtime.
//!
//! For programs that want messaging without an executor: two threads per connection (a reader and a writer)
//! around the [`nats_proto`] sans-IO core, and blocking calls that wait on condition variables. Dependencies are
//! `std`, `nats-proto` and `bytes`.
//!
//! ```
//! # let server = nats_server_harness::NatsServer::start();
//! # let url = server.url();
//! let client = nats_blocking::connect(&url)?;
//!
//! // Subscribe, publish, receive.
//! let mut sub = client.subscribe("greet.*")?;
//! client.publish("greet.joe", "hello")?;
//! let msg = sub.next().expect("a message");
//! assert_eq!(msg.subject(), "greet.joe");
//! assert_eq!(msg.payload(), b"hello");
//!
//! // Request/reply: a responder on its own thread.
//! let _svc = client.subscribe_with("time", |req| {
//!     let _ = req.respond("now");
//! })?;
//! let reply = client.request("time", "")?;
//! assert_eq!(reply.payload(), b"now");
//!
//! // A quick responder on the connection's reader thread itself: no thread, no hand-off.
//! let _fast = client.subscribe_inline("time.fast", |req| {
//!     let _ = req.respond("now");
//! })?;
//! assert_eq!(client.request("time.fast", "")?.payload(), b"now");
//!
//! // Nobody listening is a typed error, not a timeout.
//! assert!(matches!(client.request("nobody", ""), Err(nats_blocking::Error::NoResponders)));
//! client.drain()?;
//! # Ok::<(), nats_blocking::Error>(())
//! ```
//!
//! # Design
//!
//! - Publishers lock the core only to encode into its buffer; the writer thread swaps that buffer out and
//!   writes it with vectored writes outside the lock, so publishes made during a write go out in one batch.
//! - The reader thread reads with a timeout taken from the core's next deadline, feeds the bytes in, and
//!   hands messages to per-subscription queues bounded in messages and bytes. A subscriber that falls behind
//!   loses messages (counted, one [`Event::SlowConsumer`] per episode) instead of stalling the connection.
//! - Handlers of [`Client::subscribe_with`] run on a thread per subscription, never on the reader thread;
//!   [`Client::subscribe_with_max`] ends one after `max` messages, and the thread with it. Handlers of
//!   [`Client::subscribe_inline`] run on the reader thread, right after the read that brought their messages,
//!   for quick handlers that never wait on the client (a wait there fails with [`Error::WouldDeadlock`]).
//! - Reconnect, resubscribe, the reconnect buffer and keep-alive are the core's; this crate only moves bytes.
//! - With the `trace-context` feature, what a thread publishes, requests or answers inside
//!   `trace::TraceContext::in_scope` carries the W3C `traceparent`/`tracestate` headers (`trace`).

mod callback;
mod client;
mod dial;
mod driver;
mod inline;
mod seam;
mod subscriber;
mod transport;
#[cfg(feature = "websocket")]
mod websocket;

pub use callback::CallbackSubscription;
pub use client::{Client, PendingReply};
pub use inline::InlineSubscription;
pub use nats_client::{ConnectOptions, Credentials, Error, Event, EventReceiver, Message, PendingLimits};
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

/// Connects to one or more comma-separated server URLs with default options.
pub fn connect(urls: &str) -> Result<Client, Error> {
    Client::connect(ConnectOptions::new().server(urls))
}

/// `options.connect()`, as [`Client::connect`]. `ConnectOptions` is shared with the async client, so the
/// method comes from this trait: `use nats_blocking::ConnectOptionsExt as _;`.
pub trait ConnectOptionsExt {
    /// Connects with these options.
    fn connect(self) -> Result<Client, Error>;
}

impl ConnectOptionsExt for ConnectOptions {
    fn connect(self) -> Result<Client, Error> {
        Client::connect(self)
    }
}

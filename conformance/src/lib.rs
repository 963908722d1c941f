//! A conformance suite for the workspace's two NATS clients, written once and run against both.
//!
//! The suite's cases (under `tests/`) are written in blocking style, generic over [`TestClient`]: the
//! shared seam ([`nats_client::seam::Client`]) plus the few calls the tests need that the seam lacks
//! (connect, flush with a timeout, drain, close, statistics, the server's INFO, a request with the default
//! timeout; for subscriptions, [`TestSubscription`]: unsubscribing, pending counts and limits). A macro
//! instantiates every case once per client, so `cargo test -p conformance` runs each of them on
//!
//! - `nats_blocking::Client`, which implements [`TestClient`] directly, and
//! - [`TokioClient`], a `nats_tokio::Client` driven from blocking code: every call is `block_on` on one
//!   shared multi-thread tokio runtime, on which the client's driver task runs too.
//!
//! A case that passes on one client and fails on the other is a behavioural difference between them.
//!
//! Every case runs under [`within`], a thread-based watchdog, so a client that hangs (in a call or while
//! being dropped) fails the case in bounded time instead of stalling the run.
//!
//! This crate is test support only; it is not published.

mod blocking;
mod support;
mod tokio_client;

use std::time::Duration;

use nats_client::seam;
use nats_client::{ConnectOptions, Error, Message, PendingLimits};
use nats_proto::{Headers, Payload, ServerInfo, Statistics};

pub use support::{wait_event, within, Finish};
pub use tokio_client::{TokioClient, TokioPendingReply, TokioReplies, TokioSubscription};

/// A client under test: the seam, plus what the suite needs beyond it. Implemented by `nats_blocking::Client`
/// and by [`TokioClient`].
pub trait TestClient: seam::Client<Subscription: TestSubscription> {
    /// The client's name, for messages.
    const NAME: &'static str;

    /// Connects with `options` (blocking until the first connection is ready, or failed).
    fn connect(options: ConnectOptions) -> Result<Self, Error>;
    /// Waits at most `timeout` until the server has processed everything sent before.
    fn flush_timeout(&self, timeout: Duration) -> Result<(), Error>;
    /// Unsubscribes everything, waits for what is in flight (up to the drain timeout), then closes.
    fn drain(&self) -> Result<(), Error>;
    /// Closes now.
    fn close(&self);
    /// True once closed.
    fn is_closed(&self) -> bool;
    /// The connection's counters.
    fn statistics(&self) -> Statistics;
    /// The last INFO from the server.
    fn server_info(&self) -> Option<ServerInfo>;
    /// The largest message the server accepts.
    fn max_payload(&self) -> usize;
    /// A request that waits for its reply as long as the client's default (`ConnectOptions::request_timeout`),
    /// the one timeout the seam's `request` does not cover.
    fn request_default(&self, subject: &str, headers: Option<&Headers>, payload: Payload<'_>)
        -> Result<Message, Error>;
}

/// A subscription under test: the seam's, plus what the suite needs beyond it.
pub trait TestSubscription: seam::Subscription {
    /// The next message if one is waiting, without waiting.
    fn try_next(&mut self) -> Option<Message>;
    /// Ends the subscription now.
    fn unsubscribe(&mut self) -> Result<(), Error>;
    /// Ends the subscription after `max` messages in all (those already delivered count).
    fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error>;
    /// Messages and bytes queued, not yet read (the seam's `pending` is the first of the two).
    fn pending_messages_and_bytes(&self) -> (usize, usize);
    /// Changes this subscription's pending limits (past them, messages are dropped and counted).
    fn set_pending_limits(&mut self, limits: PendingLimits);
}

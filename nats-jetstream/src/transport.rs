//! The seam between JetStream and a client: request/reply, publish, a subscription with a timed wait. The
//! blocking client implements it (feature `blocking`); everything JetStream does on top is in this crate.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use nats_client::Message;
use nats_proto::{HeaderView, Headers};

use crate::error::JetStreamError;
use crate::status::Incoming;

/// What a JetStream call can fail with: the client's error (timeout, closed connection, permissions), or
/// JetStream's (an API error with its `err_code`, an invalid reply, a bad name).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The client failed: no reply in time, the connection closed, a permission refused.
    Client(nats_client::Error),
    /// JetStream refused or answered something unusable.
    JetStream(JetStreamError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Client(e) => e.fmt(f),
            Error::JetStream(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Client(e) => Some(e),
            Error::JetStream(e) => Some(e),
        }
    }
}

impl From<nats_client::Error> for Error {
    fn from(e: nats_client::Error) -> Self {
        match e {
            // A request to a subject nobody serves: for JetStream that has a meaning of its own.
            nats_client::Error::NoResponders => Error::JetStream(JetStreamError::NoResponders),
            e => Error::Client(e),
        }
    }
}

impl From<JetStreamError> for Error {
    fn from(e: JetStreamError) -> Self {
        Error::JetStream(e)
    }
}

impl Error {
    /// The JetStream error, when this is one.
    pub fn jetstream(&self) -> Option<&JetStreamError> {
        match self {
            Error::JetStream(e) => Some(e),
            Error::Client(_) => None,
        }
    }

    /// The server's `err_code`, when this is an API error that carries one.
    pub fn err_code(&self) -> Option<u16> {
        self.jetstream().and_then(JetStreamError::api_error).and_then(|e| e.err_code)
    }

    /// True for "no reply in time".
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Client(nats_client::Error::Timeout) | Error::JetStream(JetStreamError::Timeout))
    }
}

/// The ack of one windowed publish: stored (with its sequence), or why not.
pub type AckResult = Result<crate::model::PubAck, Error>;

/// A blocking client, as JetStream uses it.
pub trait Transport: Clone + Send + Sync + 'static {
    /// A subscription of this client.
    type Subscription: Subscription;
    /// Sends a request and waits at most `timeout` for its reply.
    fn request(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, nats_client::Error>;
    /// Publishes without waiting for anything.
    fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: Bytes,
    ) -> Result<(), nats_client::Error>;
    /// Subscribes.
    fn subscribe(&self, subject: &str) -> Result<Self::Subscription, nats_client::Error>;
    /// A fresh unique inbox subject.
    fn new_inbox(&self) -> String;
    /// A request in flight whose reply is taken later.
    type Pending: Pending;
    /// The client's connection events.
    type Events: ConnectionEvents;
    /// A fresh receiver of the client's connection events (disconnects and reconnects matter here).
    fn events(&self) -> Self::Events;
    /// Sends a request and returns at once.
    fn request_later(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Self::Pending, nats_client::Error>;
}

/// Connection events as the bindings read them: a pull consumer pauses on a disconnect and pulls afresh on a
/// reconnect, instead of waiting for missed heartbeats.
pub trait ConnectionEvents: Send + fmt::Debug + 'static {
    /// The next event if one is waiting.
    fn try_next_event(&mut self) -> Option<nats_client::Event>;
    /// The next event, or `Pending` (the task is woken when one comes); `Ready(None)` once the client closed.
    fn poll_next_event(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<nats_client::Event>>;
}

impl ConnectionEvents for nats_client::EventReceiver {
    fn try_next_event(&mut self) -> Option<nats_client::Event> {
        self.try_recv().ok()
    }

    fn poll_next_event(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<nats_client::Event>> {
        self.poll_recv(cx)
    }
}

/// A request in flight (see [`Transport::request_later`]).
pub trait Pending: Send + fmt::Debug + 'static {
    /// Waits for the reply, until the request's timeout.
    fn wait(self) -> Result<Message, nats_client::Error>;
}

/// A blocking subscription.
pub trait Subscription: Send + fmt::Debug + 'static {
    /// The next message, waiting at most `timeout`: `Err(Timeout)` when none came, another error when the
    /// subscription ended.
    fn next_timeout(&mut self, timeout: Duration) -> Result<Message, nats_client::Error>;
}

/// A received message as the state machines read it.
#[derive(Debug, Clone)]
pub struct Received(pub Message);

impl Incoming for Received {
    fn subject(&self) -> &[u8] {
        self.0.subject().as_bytes()
    }

    fn reply(&self) -> Option<&[u8]> {
        self.0.reply().map(|r| r.as_bytes())
    }

    fn headers(&self) -> Option<HeaderView<'_>> {
        self.0.headers()
    }

    fn payload(&self) -> &[u8] {
        self.0.payload()
    }
}

#[cfg(feature = "blocking")]
mod blocking_impl {
    use super::*;

    impl Transport for nats_blocking::Client {
        type Subscription = nats_blocking::Subscriber;

        fn request(
            &self,
            subject: &str,
            headers: Option<&Headers>,
            payload: Bytes,
            timeout: Duration,
        ) -> Result<Message, nats_client::Error> {
            self.send_request(subject, headers, payload, timeout)
        }

        fn publish(
            &self,
            subject: &str,
            reply: Option<&str>,
            headers: Option<&Headers>,
            payload: Bytes,
        ) -> Result<(), nats_client::Error> {
            match (reply, headers) {
                (None, None) => nats_blocking::Client::publish(self, subject, payload),
                (None, Some(h)) => self.publish_with_headers(subject, h, payload),
                (Some(r), None) => self.publish_with_reply(subject, r, payload),
                (Some(r), Some(h)) => self.publish_with_reply_and_headers(subject, r, h, payload),
            }
        }

        fn subscribe(&self, subject: &str) -> Result<Self::Subscription, nats_client::Error> {
            nats_blocking::Client::subscribe(self, subject)
        }

        fn new_inbox(&self) -> String {
            nats_blocking::Client::new_inbox(self)
        }

        type Pending = nats_blocking::PendingReply;
        type Events = nats_client::EventReceiver;

        fn events(&self) -> Self::Events {
            nats_blocking::Client::events(self)
        }

        fn request_later(
            &self,
            subject: &str,
            headers: Option<&Headers>,
            payload: Bytes,
            timeout: Duration,
        ) -> Result<Self::Pending, nats_client::Error> {
            self.send_request_later(subject, headers, payload, timeout)
        }
    }

    impl Pending for nats_blocking::PendingReply {
        fn wait(self) -> Result<Message, nats_client::Error> {
            nats_blocking::PendingReply::wait(self)
        }
    }

    impl Subscription for nats_blocking::Subscriber {
        fn next_timeout(&mut self, timeout: Duration) -> Result<Message, nats_client::Error> {
            nats_blocking::Subscriber::next_timeout(self, timeout)
        }
    }
}

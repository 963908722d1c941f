//! Received messages.

use std::sync::Weak;

use bytes::Bytes;
use nats_proto::{CommandError, HeaderBlock, Headers, Msg, StatusCode, Subject, SubjectError};

use crate::Error;

/// What a message needs of its client to answer: a publish that never blocks.
pub trait Publish: Send + Sync {
    /// Publishes `payload` (with `headers`) to `subject`.
    fn publish(&self, subject: &[u8], headers: Option<&Headers>, payload: Bytes) -> Result<(), Error>;
}

/// A message received on a subscription or as a reply. Subject, headers and payload are slices of the read
/// buffer: nothing was copied.
#[derive(Clone)]
pub struct Message {
    /// The subject it was published to.
    pub subject: Subject,
    /// Where to send a reply, if the publisher asked for one.
    pub reply: Option<Subject>,
    /// Headers, if any.
    pub headers: Option<HeaderBlock>,
    /// The payload.
    pub payload: Bytes,
    /// The status code of the header block (e.g. 503), if any.
    pub status: Option<StatusCode>,
    client: Weak<dyn Publish>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .field("reply", &self.reply)
            .field("headers", &self.headers)
            .field("payload", &self.payload)
            .field("status", &self.status)
            .finish()
    }
}

impl Message {
    /// Wraps a message of the core; `client` is where replies are published.
    pub fn new(msg: Msg, client: Weak<dyn Publish>) -> Self {
        let status = msg.status();
        Self { subject: msg.subject, reply: msg.reply, headers: msg.headers, payload: msg.payload, status, client }
    }

    /// Publishes `payload` to this message's reply subject. It never waits: in an async program it needs no
    /// `.await`.
    pub fn respond(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.respond_with_headers(None, payload)
    }

    /// Publishes `payload` with `headers` to this message's reply subject.
    pub fn respond_with_headers(&self, headers: Option<&Headers>, payload: impl Into<Bytes>) -> Result<(), Error> {
        let reply = self.reply.as_ref().ok_or(Error::Command(CommandError::InvalidSubject(SubjectError::Empty)))?;
        let client = self.client.upgrade().ok_or(Error::Closed)?;
        client.publish(reply.as_bytes(), headers, payload.into())
    }

    /// Bytes of headers plus payload.
    pub fn size(&self) -> usize {
        self.headers.as_ref().map_or(0, |h| h.as_bytes().len()) + self.payload.len()
    }
}

//! Received messages.

use std::ops::Deref;
use std::sync::Weak;

use bytes::Bytes;
use nats_proto::{CommandError, Headers, Msg, SubjectError};

use crate::Error;

/// What a message needs of its client to answer: a publish that never blocks.
pub trait Publish: Send + Sync {
    /// Publishes `payload` (with `headers`) to `subject`.
    fn publish(&self, subject: &[u8], headers: Option<&Headers>, payload: Bytes) -> Result<(), Error>;
}

/// A message received on a subscription or as a reply: the core's [`Msg`] (one `Bytes` of the read buffer and
/// a few offsets, so nothing was copied) and, when it has a reply subject, a way to answer it.
///
/// Read it through the methods of [`Msg`] (`subject()`, `reply()`, `headers()`, `payload()`, `status()` ...).
#[derive(Clone)]
pub struct Message {
    msg: Msg,
    /// Where replies are published; only messages with a reply subject carry it.
    client: Option<Weak<dyn Publish>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.msg.fmt(f)
    }
}

impl Deref for Message {
    type Target = Msg;

    fn deref(&self) -> &Msg {
        &self.msg
    }
}

impl Message {
    /// Wraps a message of the core; `client` is where replies are published (kept only if there is a reply
    /// subject).
    pub fn new(msg: Msg, client: Option<Weak<dyn Publish>>) -> Self {
        let client = client.filter(|_| msg.reply().is_some());
        Self { msg, client }
    }

    /// The core's message.
    pub fn into_msg(self) -> Msg {
        self.msg
    }

    /// Publishes `payload` to this message's reply subject. It never waits: in an async program it needs no
    /// `.await`.
    pub fn respond(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.respond_with_headers(None, payload)
    }

    /// Publishes `payload` with `headers` to this message's reply subject.
    pub fn respond_with_headers(&self, headers: Option<&Headers>, payload: impl Into<Bytes>) -> Result<(), Error> {
        let no_reply = || Error::Command(CommandError::InvalidSubject(SubjectError::Empty));
        let reply = self.msg.reply().ok_or_else(no_reply)?;
        let client = self.client.as_ref().and_then(Weak::upgrade).ok_or(Error::Closed)?;
        client.publish(reply.as_bytes(), headers, payload.into())
    }
}

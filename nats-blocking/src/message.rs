//! Received messages.

use std::sync::Weak;

use bytes::Bytes;
use nats_proto::{HeaderBlock, Headers, Msg, StatusCode, Subject};

use crate::driver::Shared;
use crate::Error;

/// A message received on a subscription or as a reply. Subject, headers and payload are slices of the read
/// buffer: nothing was copied.
#[derive(Debug, Clone)]
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
    pub(crate) client: Weak<Shared>,
}

impl Message {
    pub(crate) fn new(msg: Msg, client: Weak<Shared>) -> Self {
        let status = msg.status();
        Self { subject: msg.subject, reply: msg.reply, headers: msg.headers, payload: msg.payload, status, client }
    }

    /// Publishes `payload` to this message's reply subject.
    pub fn respond(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.respond_with_headers(None, payload)
    }

    /// Publishes `payload` with `headers` to this message's reply subject.
    pub fn respond_with_headers(&self, headers: Option<&Headers>, payload: impl Into<Bytes>) -> Result<(), Error> {
        let reply = self
            .reply
            .as_ref()
            .ok_or(Error::Command(nats_proto::CommandError::InvalidSubject(nats_proto::SubjectError::Empty)))?;
        let shared = self.client.upgrade().ok_or(Error::Closed)?;
        shared.publish(reply.as_bytes(), None, headers, payload.into())
    }

    /// Bytes of headers plus payload.
    pub fn size(&self) -> usize {
        self.headers.as_ref().map_or(0, |h| h.as_bytes().len()) + self.payload.len()
    }
}

//! Stored messages: get (`STREAM.MSG.GET` JSON and `DIRECT.GET` raw) and delete.

use std::time::SystemTime;

use bytes::Bytes;
use nats_proto::{HeaderBlock, HeaderView, StatusCode};
use serde::{Deserialize, Serialize};

use super::{base64, is_default, null_default, time};
use crate::error::JetStreamError;

/// The body of `STREAM.MSG.GET` and `DIRECT.GET`: one of [`MsgGetRequest::seq`],
/// [`MsgGetRequest::last_by_subject`] or [`MsgGetRequest::next_by_subject`], plus, for direct get batches
/// (server 2.11+), the batch fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgGetRequest {
    /// The message at this sequence (with `next_by_subj`: the first at or after it).
    #[serde(skip_serializing_if = "is_default")]
    pub seq: u64,
    /// The last message on this subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_by_subj: String,
    /// The first message on this subject at or after `seq`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub next_by_subj: String,
    /// Direct get only: up to this many messages, then an EOB status.
    #[serde(skip_serializing_if = "is_default")]
    pub batch: usize,
    /// Direct get only: up to this many bytes.
    #[serde(skip_serializing_if = "is_default")]
    pub max_bytes: usize,
    /// Direct get only: start at this time.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub start_time: Option<SystemTime>,
    /// Direct get only: the last message of each of these subjects (wildcards allowed).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub multi_last: Vec<String>,
    /// Direct get only: with `multi_last`, as of this sequence.
    #[serde(skip_serializing_if = "is_default")]
    pub up_to_seq: u64,
    /// Direct get only: with `multi_last`, as of this time.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub up_to_time: Option<SystemTime>,
}

impl MsgGetRequest {
    /// The message at `seq`.
    pub fn seq(seq: u64) -> Self {
        Self { seq, ..Self::default() }
    }

    /// The last message on `subject`.
    pub fn last_by_subject(subject: impl Into<String>) -> Self {
        Self { last_by_subj: subject.into(), ..Self::default() }
    }

    /// The first message on `subject` (may hold wildcards) at or after `seq`.
    pub fn next_by_subject(seq: u64, subject: impl Into<String>) -> Self {
        Self { seq, next_by_subj: subject.into(), ..Self::default() }
    }

    /// Direct get only (2.11+): up to `batch` messages from sequence `seq` on (see
    /// [`crate::direct::DirectBatchReader`]); narrow them with [`Self::on_subject`].
    pub fn batch(seq: u64, batch: usize) -> Self {
        Self { seq, batch, ..Self::default() }
    }

    /// Direct get only (2.11+): the last message of each of `subjects` (wildcards allowed, at most 1024
    /// matched), as of now or of [`Self::up_to`].
    pub fn multi_last<S: Into<String>>(subjects: impl IntoIterator<Item = S>) -> Self {
        Self { multi_last: subjects.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Only messages on `subject` (may hold wildcards).
    pub fn on_subject(mut self, subject: impl Into<String>) -> Self {
        self.next_by_subj = subject.into();
        self
    }

    /// With `multi_last`: as of stream sequence `seq` (a batch's `up_to_sequence` when paging).
    pub fn up_to(mut self, seq: u64) -> Self {
        self.up_to_seq = seq;
        self
    }
}

/// A message as `STREAM.MSG.GET` returns it, with `hdrs` and `data` decoded from base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireMessage", into = "WireMessage")]
pub struct StoredMessage {
    /// Subject it was stored under.
    pub subject: String,
    /// Stream sequence.
    pub seq: u64,
    /// When it was stored.
    pub time: SystemTime,
    /// Its header block (`NATS/1.0 ...`), if it had headers.
    pub headers: Option<HeaderBlock>,
    /// Its payload.
    pub data: Bytes,
}

/// [`StoredMessage`] as it is on the wire.
#[derive(Serialize, Deserialize)]
struct WireMessage {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hdrs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

impl TryFrom<WireMessage> for StoredMessage {
    type Error = String;

    fn try_from(wire: WireMessage) -> Result<Self, String> {
        let time = wire.time.as_deref().ok_or("message without a time")?;
        let time = time::parse(time).ok_or_else(|| format!("invalid message time {time:?}"))?;
        let headers = match wire.hdrs.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(text) => {
                let raw = base64::decode(text.as_bytes()).ok_or("message headers are not base64")?;
                Some(HeaderBlock::parse(Bytes::from(raw)).map_err(|e| format!("invalid message headers: {e}"))?)
            }
        };
        let data = match wire.data.as_deref() {
            None => Bytes::new(),
            Some(text) => Bytes::from(base64::decode(text.as_bytes()).ok_or("message data is not base64")?),
        };
        Ok(Self { subject: wire.subject, seq: wire.seq, time, headers, data })
    }
}

impl From<StoredMessage> for WireMessage {
    fn from(m: StoredMessage) -> Self {
        Self {
            subject: m.subject,
            seq: m.seq,
            time: Some(time::format(m.time)),
            hdrs: m.headers.map(|h| base64::encode(h.as_bytes())),
            data: (!m.data.is_empty()).then(|| base64::encode(&m.data)),
        }
    }
}

/// The reply to `STREAM.MSG.GET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgGetResponse {
    /// The message.
    pub message: StoredMessage,
}

/// The body of `STREAM.MSG.DELETE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgDeleteRequest {
    /// The sequence to delete.
    pub seq: u64,
    /// Only mark it deleted; without it the server overwrites the data first ("secure" delete).
    #[serde(skip_serializing_if = "is_default")]
    pub no_erase: bool,
}

/// Headers a direct-get reply puts before the message's own.
const STREAM: &str = "Nats-Stream";
const SUBJECT: &str = "Nats-Subject";
const SEQUENCE: &str = "Nats-Sequence";
const TIME_STAMP: &str = "Nats-Time-Stamp";

/// A message as `DIRECT.GET` returns it: a raw message whose headers say where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectGetMessage {
    /// `Nats-Stream`.
    pub stream: String,
    /// `Nats-Subject`: the subject it was stored under.
    pub subject: String,
    /// `Nats-Sequence`.
    pub seq: u64,
    /// `Nats-Time-Stamp`: when it was stored.
    pub time: SystemTime,
    /// The whole header block: the `Nats-*` headers above, then the message's own.
    pub headers: HeaderBlock,
    /// The payload.
    pub payload: Bytes,
}

impl DirectGetMessage {
    /// Reads a direct-get reply.
    ///
    /// A status reply is an error: `503` [`JetStreamError::NoResponders`] (direct get not enabled, or no
    /// stream), anything else [`JetStreamError::Status`] with its code (`404` no message, `408` bad request,
    /// `413` too many subjects, `204` end of a batch). Missing or malformed `Nats-*` headers, or no headers at
    /// all, are [`JetStreamError::InvalidReply`]. The timestamp may be RFC 3339 or the Go form of early 2.9
    /// servers.
    pub fn from_reply(headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<Self, JetStreamError> {
        let invalid = |reason: String| JetStreamError::InvalidReply { reason };
        let headers = headers.ok_or_else(|| invalid("direct get reply without headers".into()))?;
        if let Some(status) = headers.status() {
            return Err(match status {
                StatusCode::NO_RESPONDERS => JetStreamError::NoResponders,
                other => JetStreamError::Status { code: other.as_u16(), description: headers.description().into() },
            });
        }
        let required = |name: &str| {
            headers
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| invalid(format!("direct get reply without {name}")))
        };
        let stream = required(STREAM)?.to_owned();
        let subject = required(SUBJECT)?.to_owned();
        let seq = required(SEQUENCE)?;
        let seq = seq.parse().map_err(|_| invalid(format!("direct get reply with {SEQUENCE} {seq:?}")))?;
        let stamp = required(TIME_STAMP)?;
        let time =
            time::parse(stamp).ok_or_else(|| invalid(format!("direct get reply with {TIME_STAMP} {stamp:?}")))?;
        Ok(Self { stream, subject, seq, time, headers: headers.to_block(), payload })
    }
}

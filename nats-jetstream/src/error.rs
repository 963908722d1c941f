//! Errors, and the classifier that turns a JetStream reply into a value or a typed error.
//!
//! - [`ApiError`]: the server answered with `{"error":{code, err_code, description}}`. [`ApiError::kind`] maps
//!   the stable `err_code` to an [`ErrorCode`] to branch on; `description` is for humans and may change.
//! - [`JetStreamError`]: everything this crate reports: API errors, status-only replies (no responders), replies
//!   that are not what the API promises, and caller mistakes (bad names, prefixes, configs).
//!
//! A driver hands each reply to [`decode_reply`] (JSON body), [`decode_pub_ack`] (publish acks) or
//! [`decode_message_reply`] (when it also has the reply's headers, which may carry a status and no body).

use std::fmt;

use nats_proto::{HeaderView, StatusCode, SubjectError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::PubAck;

/// The `error` object of a failed JetStream API reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiError {
    /// HTTP-like status (`404`, `400`, `503`, ...).
    pub code: u16,
    /// The server's stable error number (`10059` = stream not found). Absent on a few paths and on old servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err_code: Option<u16>,
    /// Human-readable text; it may change between server versions, so never branch on it.
    pub description: String,
}

impl ApiError {
    /// The typed meaning of this error.
    ///
    /// Uses `err_code`; when a server left it out, falls back on the few descriptions that servers older than
    /// 2.3 sent for the most common cases, else [`ErrorCode::Other`] with code 0.
    pub fn kind(&self) -> ErrorCode {
        match self.err_code {
            Some(code) => ErrorCode::from_err_code(code),
            None => ErrorCode::from_legacy_description(self.code, &self.description),
        }
    }

    /// True when the same call may succeed if retried after a short backoff: a duplicate still in flight,
    /// expectations not ready yet, too many requests, JetStream temporarily unavailable (an election) or short
    /// of resources.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorCode::DuplicateInProcess
                | ErrorCode::ExpectedNotReady
                | ErrorCode::TooManyRequests
                | ErrorCode::TemporarilyUnavailable
                | ErrorCode::InsufficientResources
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.err_code {
            Some(err_code) => write!(f, "JetStream error {} ({}): {}", self.code, err_code, self.description),
            None => write!(f, "JetStream error {}: {}", self.code, self.description),
        }
    }
}

impl std::error::Error for ApiError {}

/// The server error numbers (`err_code`) a client branches on. Every other number is [`ErrorCode::Other`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 10059: stream not found (for KV: bucket not found).
    StreamNotFound,
    /// 10014: consumer not found.
    ConsumerNotFound,
    /// 10037: no message found.
    NoMessageFound,
    /// 10058: a stream with this name exists with a different config.
    StreamNameInUse,
    /// 10065: the subjects overlap with those of an existing stream.
    SubjectsOverlap,
    /// 10148: consumer create (action `create`) found a consumer with a different config.
    ConsumerAlreadyExists,
    /// 10149: consumer update (action `update`) found no consumer.
    ConsumerDoesNotExist,
    /// 10013: consumer name already in use (legacy create paths).
    ConsumerNameExists,
    /// 10105: the consumer exists and is active (push consumer bound).
    ConsumerExistsActive,
    /// 10071 (`wrong last sequence: N`) and 10164 (its constant form, returned by replicated streams):
    /// an expected-last-sequence header did not hold. For KV: revision mismatch.
    WrongLastSequence,
    /// 10070: `Nats-Expected-Last-Msg-Id` did not hold.
    WrongLastMsgId,
    /// 10060: `Nats-Expected-Stream` did not hold.
    StreamMismatch,
    /// 10054: the message is over the stream's or the server's size limit.
    MessageTooLarge,
    /// 10097: the header block is over the limit.
    HeaderTooLarge,
    /// 10077: storing failed; carries "maximum messages/bytes exceeded" when a `discard: new` stream is full.
    StoreFailed,
    /// 10158: a message with the same `Nats-Msg-Id` is being stored right now. Retryable.
    DuplicateInProcess,
    /// 10163: the expected-per-subject check cannot be answered yet. Retryable.
    ExpectedNotReady,
    /// 10167: too many requests. Retryable.
    TooManyRequests,
    /// 10039: JetStream is not enabled for this account.
    NotEnabledForAccount,
    /// 10076: JetStream is not enabled on the server.
    NotEnabled,
    /// 10008: JetStream is temporarily unavailable (typically a leader election). Retryable.
    TemporarilyUnavailable,
    /// 10023: insufficient resources. Retryable with backoff.
    InsufficientResources,
    /// 10026: the account's consumer limit is reached.
    MaxConsumers,
    /// 10027: the account's stream limit is reached.
    MaxStreams,
    /// 10003: bad request.
    BadRequest,
    /// 10025: invalid JSON, including an unknown field in a request.
    InvalidJson,
    /// 10043: sequence not found (message delete).
    SequenceNotFound,
    /// 10057: delete failed (for example `deny_delete`).
    DeleteFailed,
    /// 10109: the stream is sealed.
    StreamSealed,
    /// 10165: invalid per-message TTL.
    InvalidTtl,
    /// 10166: per-message TTL is disabled on the stream.
    TtlDisabled,
    /// 10185: the server's API level is below the `Nats-Required-Api-Level` the request set.
    RequiredApiLevel,
    /// Any other `err_code` (0 when the server sent none and the description was not recognised).
    Other(u16),
}

impl ErrorCode {
    /// The typed meaning of a server `err_code`.
    pub fn from_err_code(code: u16) -> Self {
        match code {
            10059 => Self::StreamNotFound,
            10014 => Self::ConsumerNotFound,
            10037 => Self::NoMessageFound,
            10058 => Self::StreamNameInUse,
            10065 => Self::SubjectsOverlap,
            10148 => Self::ConsumerAlreadyExists,
            10149 => Self::ConsumerDoesNotExist,
            10013 => Self::ConsumerNameExists,
            10105 => Self::ConsumerExistsActive,
            10071 | 10164 => Self::WrongLastSequence,
            10070 => Self::WrongLastMsgId,
            10060 => Self::StreamMismatch,
            10054 => Self::MessageTooLarge,
            10097 => Self::HeaderTooLarge,
            10077 => Self::StoreFailed,
            10158 => Self::DuplicateInProcess,
            10163 => Self::ExpectedNotReady,
            10167 => Self::TooManyRequests,
            10039 => Self::NotEnabledForAccount,
            10076 => Self::NotEnabled,
            10008 => Self::TemporarilyUnavailable,
            10023 => Self::InsufficientResources,
            10026 => Self::MaxConsumers,
            10027 => Self::MaxStreams,
            10003 => Self::BadRequest,
            10025 => Self::InvalidJson,
            10043 => Self::SequenceNotFound,
            10057 => Self::DeleteFailed,
            10109 => Self::StreamSealed,
            10165 => Self::InvalidTtl,
            10166 => Self::TtlDisabled,
            10185 => Self::RequiredApiLevel,
            other => Self::Other(other),
        }
    }

    /// Servers before `err_code` existed said only `404 stream not found` and the like.
    fn from_legacy_description(code: u16, description: &str) -> Self {
        let text = description.to_ascii_lowercase();
        match (code, text.as_str()) {
            (404, "stream not found") => Self::StreamNotFound,
            (404, "consumer not found") => Self::ConsumerNotFound,
            (404, "no message found") => Self::NoMessageFound,
            _ => Self::Other(0),
        }
    }
}

/// Everything this crate reports.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JetStreamError {
    /// The server answered with an API error.
    Api(ApiError),
    /// A status-only `503` reply: nothing listens on the subject (JetStream off, no stream for a publish
    /// subject, direct get not enabled, or a leader election under way).
    NoResponders,
    /// A status-only `408` reply: the server gave up on the request.
    Timeout,
    /// Any other status-only reply.
    Status {
        /// The status code.
        code: u16,
        /// The status text, possibly empty.
        description: String,
    },
    /// The reply is not what the API promises: not JSON (an old `-ERR ...` body), an empty body, or JSON of
    /// the wrong shape (for a publish: an ack without `stream`).
    InvalidReply {
        /// What was wrong, with a short excerpt of the reply.
        reason: String,
    },
    /// A stream, consumer or durable name breaks the naming rules (ADR-6).
    InvalidName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A Key/Value bucket name breaks the rules (`[A-Za-z0-9_-]+`).
    InvalidBucket {
        /// The bucket name as given.
        bucket: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A Key/Value key breaks the rules.
    InvalidKey {
        /// The key as given.
        key: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A subject (or subject filter) handed to a subject builder is not valid.
    InvalidSubject {
        /// The subject as given.
        subject: String,
        /// What is wrong with it.
        error: SubjectError,
    },
    /// Both a JetStream domain and a custom API prefix were set; they exclude each other.
    DomainAndPrefix,
    /// A domain or custom API prefix is not usable in a subject.
    InvalidPrefix {
        /// The domain or prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A configuration the server would reject, caught before sending it.
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// An object name the store cannot take (empty).
    InvalidObjectName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// No object of that name (never put, or deleted).
    ObjectNotFound {
        /// The name asked for.
        name: String,
    },
    /// The content given to an object put could not be read (the reader or stream failed); nothing of it
    /// was kept.
    ObjectSource {
        /// The object's name.
        name: String,
        /// What the source said.
        reason: String,
    },
    /// Nothing came on a push consumer's deliver subject for two heartbeat intervals: the consumer (or its
    /// server) may be gone. The consumer's messages go on if it comes back.
    MissedHeartbeats,
    /// What was read of an object does not match its info: its size, chunk count or SHA-256 digest. The
    /// content must not be trusted.
    ObjectCorrupt {
        /// The object's name.
        name: String,
        /// What did not match.
        reason: String,
    },
}

impl fmt::Display for JetStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(e) => e.fmt(f),
            Self::NoResponders => f.write_str("no responders: JetStream or the stream is not available"),
            Self::Timeout => f.write_str("JetStream request timed out (408)"),
            Self::Status { code, description } => write!(f, "unexpected status reply {code} {description}"),
            Self::InvalidReply { reason } => write!(f, "invalid JetStream reply: {reason}"),
            Self::InvalidName { name, reason } => write!(f, "invalid name {name:?}: {reason}"),
            Self::InvalidBucket { bucket, reason } => write!(f, "invalid bucket name {bucket:?}: {reason}"),
            Self::InvalidKey { key, reason } => write!(f, "invalid key {key:?}: {reason}"),
            Self::InvalidSubject { subject, error } => write!(f, "invalid subject {subject:?}: {error}"),
            Self::DomainAndPrefix => f.write_str("a JetStream domain and an API prefix cannot both be set"),
            Self::InvalidPrefix { prefix, reason } => write!(f, "invalid domain or API prefix {prefix:?}: {reason}"),
            Self::InvalidConfig { reason } => write!(f, "invalid configuration: {reason}"),
            Self::InvalidObjectName { name, reason } => write!(f, "invalid object name {name:?}: {reason}"),
            Self::ObjectNotFound { name } => write!(f, "object {name:?} not found"),
            Self::ObjectSource { name, reason } => write!(f, "reading the content of object {name:?}: {reason}"),
            Self::MissedHeartbeats => f.write_str("missed heartbeats: nothing from the consumer for two intervals"),
            Self::ObjectCorrupt { name, reason } => write!(f, "object {name:?} is corrupt: {reason}"),
        }
    }
}

impl std::error::Error for JetStreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Api(e) => Some(e),
            Self::InvalidSubject { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<ApiError> for JetStreamError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl JetStreamError {
    /// The API error, when this is one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The typed `err_code` of an API error; `None` for every other kind of error.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.api_error().map(ApiError::kind)
    }

    /// True when the reply says there is no such message: API error 10037 (`STREAM.MSG.GET`) or a `404`
    /// status (`DIRECT.GET`). For Key/Value gets this means "key not found".
    pub fn is_no_message(&self) -> bool {
        matches!(self, Self::Status { code: 404, .. }) || self.error_code() == Some(ErrorCode::NoMessageFound)
    }

    /// True when retrying the same call after a short backoff may succeed: a retryable API error
    /// ([`ApiError::is_retryable`]) or no responders (a stream leader may be mid-election, ADR-22).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(e) => e.is_retryable(),
            Self::NoResponders => true,
            _ => false,
        }
    }
}

/// Only the `error` member of a reply; everything else is skipped without being built.
#[derive(Deserialize)]
struct ErrorProbe {
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// How many bytes of a bad reply to quote in [`JetStreamError::InvalidReply`].
const EXCERPT_LEN: usize = 64;

fn excerpt(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(EXCERPT_LEN)];
    let mut text = String::from_utf8_lossy(cut).trim_end().to_owned();
    if payload.len() > EXCERPT_LEN {
        text.push_str("...");
    }
    text
}

fn invalid(reason: String) -> JetStreamError {
    JetStreamError::InvalidReply { reason }
}

/// Turns the `error` member into an [`ApiError`], whatever its shape: a body that has one has failed.
fn api_error_from(value: serde_json::Value) -> ApiError {
    match value {
        serde_json::Value::String(description) => ApiError { description, ..ApiError::default() },
        other => {
            let text = other.to_string();
            ApiError::deserialize(other).unwrap_or(ApiError { description: text, ..ApiError::default() })
        }
    }
}

/// Decodes the JSON reply of a JetStream API call.
///
/// A body with a non-null `error` member is an [`JetStreamError::Api`] failure whatever else it holds; an empty
/// body, one that is not JSON (an old `-ERR text`) or one that does not decode as `T` is
/// [`JetStreamError::InvalidReply`]. Never panics.
pub fn decode_reply<T: DeserializeOwned>(payload: &[u8]) -> Result<T, JetStreamError> {
    let not_object = || invalid(format!("not a JSON object: {:?}", excerpt(payload)));
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(invalid("empty reply".into())),
        // Every reply is an object; checked first because serde would also read a struct from an array.
        Some(b'{') => {}
        Some(_) => return Err(not_object()),
    }
    // Two passes: the first reads only `error`, so a failure body never has to fit the success type.
    let probe: ErrorProbe = serde_json::from_slice(payload).map_err(|_| not_object())?;
    if let Some(error) = probe.error.filter(|e| !e.is_null()) {
        return Err(JetStreamError::Api(api_error_from(error)));
    }
    serde_json::from_slice(payload).map_err(|e| {
        invalid(format!("does not decode as {}: {e}", std::any::type_name::<T>().rsplit("::").next().unwrap_or("")))
    })
}

/// Decodes the reply to a JetStream publish into a [`PubAck`].
///
/// Like [`decode_reply`], and an ack without `stream` is [`JetStreamError::InvalidReply`] (the reply came from
/// something that is not a stream, such as a core subscriber on the same subject).
pub fn decode_pub_ack(payload: &[u8]) -> Result<PubAck, JetStreamError> {
    let ack: PubAck = decode_reply(payload)?;
    if ack.stream.is_empty() {
        return Err(invalid(format!("publish ack without a stream: {:?}", excerpt(payload))));
    }
    Ok(ack)
}

/// The error for a status-only reply (a header block with a status and no body).
///
/// `503` is [`JetStreamError::NoResponders`], `408` is [`JetStreamError::Timeout`], anything else is
/// [`JetStreamError::Status`].
pub fn status_error(status: StatusCode, description: &str) -> JetStreamError {
    match status.as_u16() {
        503 => JetStreamError::NoResponders,
        408 => JetStreamError::Timeout,
        code => JetStreamError::Status { code, description: description.to_owned() },
    }
}

/// Decodes a reply given its headers too: a status with an empty body goes through [`status_error`], anything
/// else through [`decode_reply`].
pub fn decode_message_reply<T: DeserializeOwned>(
    headers: Option<HeaderView<'_>>,
    payload: &[u8],
) -> Result<T, JetStreamError> {
    if let Some(status) = headers.and_then(HeaderView::status) {
        if payload.is_empty() {
            // `headers` is Some here, since it gave a status.
            let description = headers.map(HeaderView::description).unwrap_or_default();
            return Err(status_error(status, description));
        }
    }
    decode_reply(payload)
}

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

#[cfg(test)]
mod tests;

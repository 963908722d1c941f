//! Direct-get batches (ADR-31, server 2.11+), sans-IO: one `DIRECT.GET` request whose replies are a stream of
//! messages ended by a `204 EOB` status, for `batch` (messages from a sequence or a time, optionally on one
//! subject) and `multi_last` (the last message of each of several subjects, as of a sequence or a time).
//!
//! A driver subscribes to an inbox, publishes the request ([`crate::call::Api::direct_get`]'s subject and
//! body) with that inbox as the reply subject, and feeds each reply to [`DirectBatchReader::handle`] until it
//! says the batch is complete. An older server answers a batch request with one plain reply (no
//! `Nats-Num-Pending`): that reply completes the batch.
//!
//! ```
//! use bytes::Bytes;
//! use nats_jetstream::direct::DirectBatchReader;
//! use nats_jetstream::model::MsgGetRequest;
//! use nats_proto::HeaderBlock;
//!
//! let mut reader = DirectBatchReader::new(&MsgGetRequest::batch(1, 2))?;
//! let message = HeaderBlock::parse(Bytes::from_static(
//!     b"NATS/1.0\r\nNats-Stream: S\r\nNats-Subject: s.a\r\nNats-Sequence: 1\r\n\
//!       Nats-Time-Stamp: 2026-01-02T03:04:05.6Z\r\nNats-Num-Pending: 4\r\nNats-Last-Sequence: 0\r\n\r\n",
//! ))?;
//! assert!(!reader.handle(Some(message.view()), Bytes::from_static(b"hi"))?);
//! let eob = HeaderBlock::parse(Bytes::from_static(
//!     b"NATS/1.0 204 EOB\r\nNats-Num-Pending: 3\r\nNats-Last-Sequence: 1\r\n\r\n",
//! ))?;
//! assert!(reader.handle(Some(eob.view()), Bytes::new())?, "complete");
//! let batch = reader.finish();
//! assert_eq!((batch.messages.len(), batch.num_pending, batch.last_sequence), (1, Some(3), Some(1)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bytes::Bytes;
use nats_proto::HeaderView;

use crate::error::JetStreamError;
use crate::model::{DirectGetMessage, MsgGetRequest};

/// Header of a batch reply and of its end: messages left after it (in the batch's range).
pub const NUM_PENDING: &str = "Nats-Num-Pending";
/// Header of a batch reply and of its end: the sequence of the message before it (0 for none).
pub const LAST_SEQUENCE: &str = "Nats-Last-Sequence";
/// Header of a `multi_last` batch's end: the stream sequence the answer is as of (page with `up_to_seq`).
pub const UP_TO_SEQUENCE: &str = "Nats-UpTo-Sequence";

/// Most subjects one `multi_last` request may match (more is a `413`).
pub const MAX_MULTI_LAST_SUBJECTS: usize = 1024;

/// What one batch request returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectBatch {
    /// The messages, in stream order.
    pub messages: Vec<DirectGetMessage>,
    /// Messages left in the range after this batch (`Some(0)`: nothing more); `None` from a server that does
    /// not batch.
    pub num_pending: Option<u64>,
    /// The last sequence the server looked at: the next page starts after it.
    pub last_sequence: Option<u64>,
    /// With `multi_last`: the sequence the answer is as of; pass it as `up_to_seq` when paging.
    pub up_to_sequence: Option<u64>,
}

impl DirectBatch {
    /// True when the server said more messages are left in the range.
    pub fn has_more(&self) -> bool {
        self.num_pending.is_some_and(|n| n > 0)
    }
}

/// Reads the replies of one batch request into a [`DirectBatch`].
#[derive(Debug)]
pub struct DirectBatchReader {
    batch: DirectBatch,
    done: bool,
}

impl DirectBatchReader {
    /// A reader for `request`, which must ask for a batch (`batch` ≥ 1) or `multi_last` subjects.
    pub fn new(request: &MsgGetRequest) -> Result<Self, JetStreamError> {
        let invalid = |reason: &str| JetStreamError::InvalidConfig { reason: reason.to_owned() };
        if request.batch == 0 && request.multi_last.is_empty() {
            return Err(invalid("a direct-get batch needs batch or multi_last"));
        }
        if !request.last_by_subj.is_empty() {
            return Err(invalid("a direct-get batch cannot use last_by_subj"));
        }
        if !request.multi_last.is_empty() && (request.seq != 0 || !request.next_by_subj.is_empty()) {
            return Err(invalid("multi_last cannot be combined with seq or next_by_subj"));
        }
        if request.multi_last.iter().any(|s| s.is_empty()) {
            return Err(invalid("multi_last subjects must not be empty"));
        }
        Ok(DirectBatchReader { batch: DirectBatch::default(), done: false })
    }

    /// One reply; `Ok(true)` when the batch is complete (its `204 EOB`, a `404` meaning nothing (more) in
    /// range, or the single reply of a server that does not batch). Other statuses are errors (`408` a bad
    /// request, `413` too many subjects, `503` direct get not enabled).
    pub fn handle(&mut self, headers: Option<HeaderView<'_>>, payload: Bytes) -> Result<bool, JetStreamError> {
        if self.done {
            return Ok(true);
        }
        let number = |name: &str| headers.and_then(|h| h.get(name)).and_then(|v| v.trim().parse::<u64>().ok());
        match headers.and_then(|h| h.status()).map(|s| s.as_u16()) {
            Some(204) => {
                self.batch.num_pending = number(NUM_PENDING);
                self.batch.last_sequence = number(LAST_SEQUENCE);
                self.batch.up_to_sequence = number(UP_TO_SEQUENCE);
                self.done = true;
            }
            Some(404) => {
                self.batch.num_pending.get_or_insert(0);
                self.done = true;
            }
            _ => {
                let pending = number(NUM_PENDING);
                let message = DirectGetMessage::from_reply(headers, payload)?;
                self.batch.last_sequence = Some(message.seq);
                self.batch.messages.push(message);
                // A server without batches answers once, without the batch headers.
                self.done = pending.is_none();
            }
        }
        Ok(self.done)
    }

    /// True once the batch is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// What was read (complete or not).
    pub fn finish(self) -> DirectBatch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_proto::HeaderBlock;

    fn reply(extra: &str) -> HeaderBlock {
        HeaderBlock::parse(Bytes::from(format!("NATS/1.0{extra}\r\n\r\n"))).unwrap()
    }

    const STORED: &str = "\r\nNats-Stream: S\r\nNats-Subject: s.a\r\nNats-Time-Stamp: 2026-01-02T03:04:05Z";

    #[test]
    fn a_multi_last_batch_ends_with_its_paging_headers() {
        let mut reader = DirectBatchReader::new(&MsgGetRequest::multi_last(["s.a", "s.b"])).unwrap();
        let first = reply(&format!("{STORED}\r\nNats-Sequence: 7\r\nNats-Num-Pending: 1"));
        assert!(!reader.handle(Some(first.view()), Bytes::from_static(b"a")).unwrap());
        let eob = reply(" 204 EOB\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 7\r\nNats-UpTo-Sequence: 9");
        assert!(reader.handle(Some(eob.view()), Bytes::new()).unwrap());
        assert!(reader.handle(Some(first.view()), Bytes::new()).unwrap(), "nothing after the end counts");
        let batch = reader.finish();
        assert_eq!(batch.messages.len(), 1);
        assert_eq!((batch.num_pending, batch.up_to_sequence), (Some(0), Some(9)));
        assert!(!batch.has_more());
    }

    #[test]
    fn an_old_server_a_miss_and_errors() {
        // One reply without batch headers: complete.
        let mut reader = DirectBatchReader::new(&MsgGetRequest::batch(1, 5)).unwrap();
        let plain = reply(&format!("{STORED}\r\nNats-Sequence: 1"));
        assert!(reader.handle(Some(plain.view()), Bytes::new()).unwrap());
        assert_eq!(reader.finish().num_pending, None);
        // Nothing in range.
        let mut reader = DirectBatchReader::new(&MsgGetRequest::batch(100, 5)).unwrap();
        assert!(reader.handle(Some(reply(" 404 Message Not Found").view()), Bytes::new()).unwrap());
        assert_eq!(reader.finish(), DirectBatch { num_pending: Some(0), ..DirectBatch::default() });
        // A refusal, and a reply that is not a stored message.
        let mut reader = DirectBatchReader::new(&MsgGetRequest::batch(1, 5)).unwrap();
        let error = reader.handle(Some(reply(" 413 Too Many Subjects").view()), Bytes::new()).unwrap_err();
        assert!(matches!(error, JetStreamError::Status { code: 413, .. }), "{error:?}");
        assert!(reader.handle(None, Bytes::new()).is_err());
        // Requests that are not batches.
        assert!(DirectBatchReader::new(&MsgGetRequest::seq(3)).is_err());
        let mixed = MsgGetRequest { seq: 2, ..MsgGetRequest::multi_last(["a"]) };
        assert!(DirectBatchReader::new(&mixed).is_err());
        assert!(DirectBatchReader::new(&MsgGetRequest::multi_last([""])).is_err());
    }
}

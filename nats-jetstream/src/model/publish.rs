//! The publish acknowledgement.

use serde::{Deserialize, Serialize};

use super::is_default;

/// The reply to a JetStream publish (`pub_ack_response`); decode it with [`crate::error::decode_pub_ack`],
/// which also turns an `error` into a typed error and a reply without `stream` into an invalid ack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PubAck {
    /// The stream that stored the message.
    pub stream: String,
    /// Its sequence in the stream (for a duplicate: the original's).
    pub seq: u64,
    /// The `Nats-Msg-Id` was seen within the duplicate window; nothing new was stored.
    #[serde(skip_serializing_if = "is_default")]
    pub duplicate: bool,
    /// JetStream domain of the stream.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Counter streams: the counter's value after this message (2.12+).
    #[serde(rename = "val", skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Batch publishes: the batch id (2.12+).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub batch: String,
    /// Batch publishes: messages in the batch.
    #[serde(skip_serializing_if = "is_default")]
    pub count: u64,
}

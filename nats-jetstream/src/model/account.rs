//! Account information (`$JS.API.INFO`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_default, null_default};

/// JetStream limits of an account (or of one replica tier). `-1` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    /// Memory storage, bytes.
    pub max_memory: i64,
    /// File storage, bytes.
    pub max_storage: i64,
    /// Streams.
    pub max_streams: i64,
    /// Consumers.
    pub max_consumers: i64,
    /// Cap on a consumer's `max_ack_pending`.
    #[serde(skip_serializing_if = "is_default")]
    pub max_ack_pending: i64,
    /// Cap on a memory stream's `max_bytes`.
    #[serde(skip_serializing_if = "is_default")]
    pub memory_max_stream_bytes: i64,
    /// Cap on a file stream's `max_bytes`.
    #[serde(skip_serializing_if = "is_default")]
    pub storage_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    #[serde(skip_serializing_if = "is_default")]
    pub max_bytes_required: bool,
}

/// Usage and limits of one replica tier (`R1`, `R3`), or of the whole account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierInfo {
    /// Memory used, bytes.
    pub memory: u64,
    /// File storage used, bytes.
    pub storage: u64,
    /// Memory reserved by streams' `max_bytes`.
    #[serde(skip_serializing_if = "is_default")]
    pub reserved_memory: u64,
    /// Storage reserved by streams' `max_bytes`.
    #[serde(skip_serializing_if = "is_default")]
    pub reserved_storage: u64,
    /// Streams.
    pub streams: u64,
    /// Consumers.
    pub consumers: u64,
    /// Limits.
    pub limits: AccountLimits,
}

/// API usage counters and the API level (ADR-44).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiStats {
    /// API level the server supports: 0 = before 2.11, 1 = 2.11, 2 = 2.12, 4 = 2.14.
    #[serde(skip_serializing_if = "is_default")]
    pub level: u32,
    /// API calls.
    pub total: u64,
    /// API calls that failed.
    pub errors: u64,
    /// API calls in flight.
    #[serde(skip_serializing_if = "is_default")]
    pub inflight: u64,
}

/// The reply to `<prefix>.INFO` (`account_info_response`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountInfo {
    /// Usage and limits of the account as a whole.
    #[serde(flatten)]
    pub usage: TierInfo,
    /// Per replica tier, when the account has tiered limits.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub tiers: BTreeMap<String, TierInfo>,
    /// JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// API counters and level.
    pub api: ApiStats,
}

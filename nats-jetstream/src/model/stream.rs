//! Streams: configuration, info and state, create/purge/delete bodies.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{is_default, nanos, null_default, time, wire_enum};
use crate::error::{ApiError, JetStreamError};

wire_enum! {
    /// When messages are removed from a stream.
    RetentionPolicy, default = Limits {
        /// Kept until a limit (count, bytes, age) removes them.
        Limits = "limits",
        /// Kept while some consumer has interest and has not acked them.
        Interest = "interest",
        /// Removed once acked by the (single) consumer.
        WorkQueue = "workqueue",
    }
}

wire_enum! {
    /// Where a stream or consumer keeps its data.
    StorageType, default = File {
        /// On disk.
        File = "file",
        /// In memory.
        Memory = "memory",
    }
}

wire_enum! {
    /// What a full stream does with a new message.
    DiscardPolicy, default = Old {
        /// Drop the oldest messages to make room.
        Old = "old",
        /// Refuse the new message (the publish fails with 10077).
        New = "new",
    }
}

wire_enum! {
    /// On-disk compression of a file stream.
    Compression, default = None {
        /// No compression.
        None = "none",
        /// S2 compression.
        S2 = "s2",
    }
}

wire_enum! {
    /// How a stream persists writes (server 2.12+).
    PersistMode, default = Default {
        /// The server's default.
        Default = "default",
        /// Acknowledge before the write is flushed.
        Async = "async",
    }
}

/// A subject mapping: messages arriving on `src` are stored under `dest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectTransform {
    /// Source subject filter (may hold wildcards).
    pub src: String,
    /// Destination pattern (`{{wildcard(1)}}` and friends).
    pub dest: String,
}

/// Where the replicas of a stream may be placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Server tags every replica's server must have.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Preferred leader (server name).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub preferred: String,
}

/// The API of a stream in another domain or account, for mirrors and sources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalStream {
    /// API prefix to reach it (`$JS.<domain>.API`).
    pub api: String,
    /// Delivery prefix (for push-based sourcing).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver: String,
}

/// A stream this one mirrors or sources from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSource {
    /// Name of the origin stream.
    pub name: String,
    /// Start at this origin sequence.
    #[serde(skip_serializing_if = "is_default")]
    pub opt_start_seq: u64,
    /// Start at this time.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<SystemTime>,
    /// Only messages on this subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Only messages on these subjects, renamed (excludes `filter_subject`).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub subject_transforms: Vec<SubjectTransform>,
    /// Origin in another domain or account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
}

/// Republishes each stored message to another subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Republish {
    /// Which stored subjects to republish (all when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src: String,
    /// Destination pattern.
    pub dest: String,
    /// Send only the headers (plus `Nats-Msg-Size`).
    #[serde(skip_serializing_if = "is_default")]
    pub headers_only: bool,
}

/// Defaults and caps for the stream's consumers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerLimits {
    /// Default and cap of `inactive_threshold`.
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub inactive_threshold: Duration,
    /// Default and cap of `max_ack_pending`.
    #[serde(skip_serializing_if = "is_default")]
    pub max_ack_pending: i64,
}

/// A stream's configuration (`stream_configuration`): sent to create or update, echoed in every info.
///
/// Every field at its default is left out of a request, and the server fills it in (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// Stream name (ADR-6), also in the API subject.
    pub name: String,
    /// Description (at most 4 KiB).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Subjects stored; empty means `[name]` unless the stream mirrors or sources.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub subjects: Vec<String>,
    /// Transform applied to subjects as messages arrive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransform>,
    /// When messages are removed.
    #[serde(skip_serializing_if = "is_default")]
    pub retention: RetentionPolicy,
    /// Most consumers (-1 unlimited; 0 is read as -1 by the server).
    #[serde(skip_serializing_if = "is_default")]
    pub max_consumers: i64,
    /// Most messages (-1 unlimited).
    #[serde(skip_serializing_if = "is_default")]
    pub max_msgs: i64,
    /// Most messages per subject (-1 unlimited; for KV, the history).
    #[serde(skip_serializing_if = "is_default")]
    pub max_msgs_per_subject: i64,
    /// Most bytes (-1 unlimited).
    #[serde(skip_serializing_if = "is_default")]
    pub max_bytes: i64,
    /// Oldest message age (zero = unlimited, else at least 100 ms).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub max_age: Duration,
    /// Largest message (-1 unlimited).
    #[serde(skip_serializing_if = "is_default")]
    pub max_msg_size: i32,
    /// File or memory.
    #[serde(skip_serializing_if = "is_default")]
    pub storage: StorageType,
    /// Compression of file storage.
    #[serde(skip_serializing_if = "is_default")]
    pub compression: Compression,
    /// First sequence of a new stream.
    #[serde(skip_serializing_if = "is_default")]
    pub first_seq: u64,
    /// Replicas, 1 to 5 (0 is read as 1).
    #[serde(skip_serializing_if = "is_default")]
    pub num_replicas: usize,
    /// Do not answer publishes with an ack.
    #[serde(skip_serializing_if = "is_default")]
    pub no_ack: bool,
    /// What a full stream drops.
    #[serde(skip_serializing_if = "is_default")]
    pub discard: DiscardPolicy,
    /// Applies `discard: new` per subject (with `max_msgs_per_subject`).
    #[serde(skip_serializing_if = "is_default")]
    pub discard_new_per_subject: bool,
    /// Window of `Nats-Msg-Id` de-duplication (zero = server default, 2 minutes or `max_age` if shorter).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub duplicate_window: Duration,
    /// Where replicas go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// This stream is a mirror of another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    /// Streams this one sources from.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub sources: Vec<StreamSource>,
    /// No more writes, deletes or purges (cannot be undone).
    #[serde(skip_serializing_if = "is_default")]
    pub sealed: bool,
    /// Refuse message deletes.
    #[serde(skip_serializing_if = "is_default")]
    pub deny_delete: bool,
    /// Refuse purges.
    #[serde(skip_serializing_if = "is_default")]
    pub deny_purge: bool,
    /// Honour `Nats-Rollup` headers.
    #[serde(skip_serializing_if = "is_default")]
    pub allow_rollup_hdrs: bool,
    /// Serve `DIRECT.GET` from every replica.
    #[serde(skip_serializing_if = "is_default")]
    pub allow_direct: bool,
    /// A mirror also serves direct gets for its origin.
    #[serde(skip_serializing_if = "is_default")]
    pub mirror_direct: bool,
    /// Republish stored messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<Republish>,
    /// User metadata (keys starting `_nats.` are the server's).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub metadata: BTreeMap<String, String>,
    /// Defaults and caps for consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_limits: Option<ConsumerLimits>,
    /// Honour per-message `Nats-TTL` (server 2.11+).
    #[serde(skip_serializing_if = "is_default")]
    pub allow_msg_ttl: bool,
    /// Leave a delete marker for this long when max age removes a subject's last message (2.11+, at least 1 s).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub subject_delete_marker_ttl: Duration,
    /// Counter messages (2.12+).
    #[serde(skip_serializing_if = "is_default")]
    pub allow_msg_counter: bool,
    /// Atomic batch publishes (2.12+).
    #[serde(skip_serializing_if = "is_default")]
    pub allow_atomic: bool,
    /// Scheduled messages (2.12+).
    #[serde(skip_serializing_if = "is_default")]
    pub allow_msg_schedules: bool,
    /// Batched publishes (2.14+).
    #[serde(skip_serializing_if = "is_default")]
    pub allow_batched: bool,
    /// How writes are persisted (2.12+); `None` leaves the server's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist_mode: Option<PersistMode>,
}

impl StreamConfig {
    /// A config with only the name set; everything else is the server's default.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// A replica of a stream or consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    /// Server name.
    pub name: String,
    /// Caught up with the leader.
    pub current: bool,
    /// Offline.
    #[serde(skip_serializing_if = "is_default")]
    pub offline: bool,
    /// Time since it was last heard from.
    #[serde(with = "nanos")]
    pub active: Duration,
    /// Operations behind the leader.
    #[serde(skip_serializing_if = "is_default")]
    pub lag: u64,
    /// Peer id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub peer: String,
}

/// The cluster of a stream or consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Current leader's server name (empty during an election).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub leader: String,
    /// Since when the leader leads.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub leader_since: Option<SystemTime>,
    /// The other replicas.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub replicas: Vec<PeerInfo>,
    /// Raft group name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub raft_group: String,
}

/// Messages a stream lost (storage damage).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LostStreamData {
    /// Lost sequences.
    #[serde(deserialize_with = "null_default")]
    pub msgs: Vec<u64>,
    /// Lost bytes.
    pub bytes: u64,
}

/// A stream's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// First sequence (0 when empty).
    pub first_seq: u64,
    /// Time of the first message; `None` when empty.
    #[serde(rename = "first_ts", with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub first_time: Option<SystemTime>,
    /// Last sequence.
    pub last_seq: u64,
    /// Time of the last message; `None` when never written.
    #[serde(rename = "last_ts", with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub last_time: Option<SystemTime>,
    /// Consumers.
    pub consumer_count: u64,
    /// Distinct subjects.
    #[serde(skip_serializing_if = "is_default")]
    pub num_subjects: u64,
    /// Deleted sequences between first and last.
    #[serde(skip_serializing_if = "is_default")]
    pub num_deleted: u64,
    /// The deleted sequences (only with `deleted_details`).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub deleted: Vec<u64>,
    /// Messages per subject (only with `subjects_filter`, paged).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub subjects: BTreeMap<String, u64>,
    /// Lost data, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostStreamData>,
}

/// The state of a mirror or source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    /// Origin stream name.
    pub name: String,
    /// Subject filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Subject transforms.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub subject_transforms: Vec<SubjectTransform>,
    /// Messages behind the origin.
    pub lag: u64,
    /// Time since last contact; `None` when never (`-1`).
    #[serde(with = "nanos::optional")]
    pub active: Option<Duration>,
    /// Origin in another domain or account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// Why sourcing fails, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// Another copy of a stream (a mirror) that can serve reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamAlternate {
    /// Stream name.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// Its domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

/// A stream's info (`stream_info_response`, also each entry of a stream list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfo {
    /// The configuration, with the server's defaults filled in. Do not send it back as a whole without
    /// thought: it is what the server echoes, fine for an update of the same server version.
    pub config: StreamConfig,
    /// Creation time.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub created: Option<SystemTime>,
    /// Server time of this reply.
    #[serde(rename = "ts", with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<SystemTime>,
    /// Counters.
    pub state: StreamState,
    /// Cluster, when clustered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// Mirror state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<SourceInfo>,
    /// Source states.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub sources: Vec<SourceInfo>,
    /// Mirrors that can serve reads.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub alternates: Vec<StreamAlternate>,
    /// JetStream domain of the stream.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Paging of `state.subjects` (with `subjects_filter`): total subjects.
    #[serde(skip_serializing_if = "is_default")]
    pub total: u64,
    /// Paging of `state.subjects`: offset of this page.
    #[serde(skip_serializing_if = "is_default")]
    pub offset: u64,
    /// Paging of `state.subjects`: page size.
    #[serde(skip_serializing_if = "is_default")]
    pub limit: u64,
}

/// The reply to `STREAM.CREATE`: the stream's info and whether this call created it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamCreateResponse {
    /// The stream.
    #[serde(flatten)]
    pub info: StreamInfo,
    /// True when the stream is new; false when an identical one existed (servers before 2.12 never send it,
    /// so `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_create: Option<bool>,
}

/// The body of `STREAM.INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfoRequest {
    /// List deleted sequences in `state.deleted`.
    #[serde(skip_serializing_if = "is_default")]
    pub deleted_details: bool,
    /// List subjects matching this filter, with counts, in `state.subjects`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subjects_filter: String,
    /// Paging offset into the subjects.
    #[serde(skip_serializing_if = "is_default")]
    pub offset: u64,
}

/// The body of `STREAM.PURGE`. An empty request purges everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PurgeRequest {
    /// Purge only this subject (may hold wildcards).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter: String,
    /// Purge everything below this sequence (excludes `keep`).
    #[serde(skip_serializing_if = "is_default")]
    pub seq: u64,
    /// Keep the newest `keep` messages (excludes `seq`).
    #[serde(skip_serializing_if = "is_default")]
    pub keep: u64,
}

impl PurgeRequest {
    /// Checks what the server would refuse: `seq` and `keep` together.
    pub fn check(&self) -> Result<(), JetStreamError> {
        if self.seq != 0 && self.keep != 0 {
            return Err(JetStreamError::InvalidConfig { reason: "purge: seq and keep exclude each other".into() });
        }
        Ok(())
    }
}

/// The reply to `STREAM.PURGE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PurgeResponse {
    /// The purge happened.
    pub success: bool,
    /// Messages removed.
    pub purged: u64,
}

/// The reply to a delete (`STREAM.DELETE`, `CONSUMER.DELETE`, `STREAM.MSG.DELETE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuccessResponse {
    /// The delete happened.
    pub success: bool,
}

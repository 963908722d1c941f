//! Consumers: configuration, the create request, info, and the pull request body.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{is_default, nanos, null_default, time, wire_enum, ClusterInfo};

wire_enum! {
    /// Where in the stream a new consumer starts.
    DeliverPolicy, default = All {
        /// From the first message.
        All = "all",
        /// From the last message.
        Last = "last",
        /// Only messages stored after the consumer is created.
        New = "new",
        /// From `opt_start_seq`.
        ByStartSequence = "by_start_sequence",
        /// From `opt_start_time`.
        ByStartTime = "by_start_time",
        /// The last message of every subject, then new ones.
        LastPerSubject = "last_per_subject",
    }
}

wire_enum! {
    /// How messages are acknowledged.
    ///
    /// Our default is `Explicit` (like nats.go and async-nats); the server's, for an absent field, is `None`.
    AckPolicy, default = Explicit {
        /// No acks: delivered means done.
        None = "none",
        /// Acking a message acks every earlier one.
        All = "all",
        /// Every message is acked on its own.
        Explicit = "explicit",
        /// Flow-controlled acks (sourcing).
        FlowControl = "flow_control",
    }
}

wire_enum! {
    /// How fast stored messages are delivered.
    ReplayPolicy, default = Instant {
        /// As fast as possible.
        Instant = "instant",
        /// At the pace they were stored.
        Original = "original",
    }
}

wire_enum! {
    /// How pulls of a priority group share the consumer (ADR-42, server 2.11+).
    PriorityPolicy, default = None {
        /// No priority groups.
        None = "none",
        /// Pulls with `min_pending`/`min_ack_pending` get messages only past those thresholds.
        Overflow = "overflow",
        /// One client (by pin id) gets the messages.
        PinnedClient = "pinned_client",
        /// Pulls with a lower `priority` go first.
        Prioritized = "prioritized",
    }
}

wire_enum! {
    /// What a consumer create call may do (server 2.10+; older servers always upsert).
    CreateAction, default = CreateOrUpdate {
        /// Create, or update when it exists (written as no `action` at all).
        CreateOrUpdate = "",
        /// Create only; an existing consumer with another config is 10148.
        Create = "create",
        /// Update only; a missing consumer is 10149.
        Update = "update",
    }
}

fn server_ack_policy() -> AckPolicy {
    AckPolicy::None
}

/// A consumer's configuration (`consumer_configuration`).
///
/// Every field at its default is left out of a request, except `ack_policy`, which is always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    /// Consumer name (server 2.9+); equal to `durable_name` if both are set.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Durable name: the consumer survives inactivity.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where to start.
    #[serde(skip_serializing_if = "is_default")]
    pub deliver_policy: DeliverPolicy,
    /// Start sequence, with [`DeliverPolicy::ByStartSequence`].
    #[serde(skip_serializing_if = "is_default")]
    pub opt_start_seq: u64,
    /// Start time, with [`DeliverPolicy::ByStartTime`].
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<SystemTime>,
    /// Ack policy; always written (see [`AckPolicy`]). Read as `none` when a reply leaves it out.
    #[serde(default = "server_ack_policy")]
    pub ack_policy: AckPolicy,
    /// Redelivery after this long without an ack (zero = server default, 30 s).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub ack_wait: Duration,
    /// Most deliveries of a message (-1 unlimited; 0 is read as -1).
    #[serde(skip_serializing_if = "is_default")]
    pub max_deliver: i64,
    /// Redelivery delays, one per attempt (`max_deliver` must exceed their number).
    #[serde(with = "nanos::list", skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<Duration>,
    /// Only messages on this subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Only messages on these subjects (server 2.10+; excludes `filter_subject`).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub filter_subjects: Vec<String>,
    /// Delivery pace.
    #[serde(skip_serializing_if = "is_default")]
    pub replay_policy: ReplayPolicy,
    /// Push only: bits per second cap (0 unlimited).
    #[serde(skip_serializing_if = "is_default")]
    pub rate_limit_bps: u64,
    /// Ack sampling for advisories (`"100%"`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sample_freq: String,
    /// Pull only: most waiting pull requests (0 = server default, 512).
    #[serde(skip_serializing_if = "is_default")]
    pub max_waiting: i64,
    /// Most unacked messages in flight (0 = server default, 1000; -1 unlimited).
    #[serde(skip_serializing_if = "is_default")]
    pub max_ack_pending: i64,
    /// Deliver only headers (and `Nats-Msg-Size`).
    #[serde(skip_serializing_if = "is_default")]
    pub headers_only: bool,
    /// Pull only: cap on a request's `batch`.
    #[serde(skip_serializing_if = "is_default")]
    pub max_batch: i64,
    /// Pull only: cap on a request's `expires`.
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub max_expires: Duration,
    /// Pull only: cap on a request's `max_bytes`.
    #[serde(skip_serializing_if = "is_default")]
    pub max_bytes: i64,
    /// Delete the consumer after this long without activity (zero = server default; 5 s for ephemerals).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub inactive_threshold: Duration,
    /// Replicas (0 = as many as the stream).
    #[serde(skip_serializing_if = "is_default")]
    pub num_replicas: usize,
    /// Keep state in memory.
    #[serde(skip_serializing_if = "is_default")]
    pub mem_storage: bool,
    /// Push only: where to deliver (setting it makes a push consumer).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    /// Push only: queue group of the subscribers.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    /// Push only: flow control.
    #[serde(skip_serializing_if = "is_default")]
    pub flow_control: bool,
    /// Push only: idle heartbeat interval (at least 100 ms).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub idle_heartbeat: Duration,
    /// User metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub metadata: BTreeMap<String, String>,
    /// Paused until this time (server 2.11+).
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<SystemTime>,
    /// Priority groups (one entry, `[A-Za-z0-9/_=-]{1,16}`; server 2.11+).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub priority_groups: Vec<String>,
    /// Priority policy.
    #[serde(skip_serializing_if = "is_default")]
    pub priority_policy: PriorityPolicy,
    /// Pinned-client timeout.
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub priority_timeout: Duration,
}

impl ConsumerConfig {
    /// A pull consumer named `name` (server 2.9+ naming), explicit acks, everything else the server's default.
    /// Set [`ConsumerConfig::durable_name`] too (the same name) to keep it when idle.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// The filter for the `CONSUMER.CREATE.<s>.<c>.<filter>` subject: the single `filter_subject`, when there
    /// is one and no `filter_subjects`.
    pub fn single_filter(&self) -> Option<&str> {
        (!self.filter_subject.is_empty() && self.filter_subjects.is_empty()).then_some(self.filter_subject.as_str())
    }
}

/// The body of `CONSUMER.CREATE` / `CONSUMER.DURABLE.CREATE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateConsumerRequest {
    /// The stream (must match the subject).
    pub stream_name: String,
    /// The consumer.
    pub config: ConsumerConfig,
    /// Create, update or both (not written for both).
    #[serde(skip_serializing_if = "is_default")]
    pub action: CreateAction,
    /// Ask the server to refuse rather than adjust a config (2.11+).
    #[serde(skip_serializing_if = "is_default")]
    pub pedantic: bool,
}

/// A consumer's position: last delivered or ack floor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceInfo {
    /// Consumer sequence.
    pub consumer_seq: u64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// When it last moved.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub last_active: Option<SystemTime>,
}

/// A priority group's state in a consumer info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorityGroupState {
    /// Group name.
    pub group: String,
    /// Pin id of the pinned client.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pinned_client_id: String,
    /// When it was pinned.
    #[serde(rename = "pinned_ts", with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub pinned_time: Option<SystemTime>,
}

/// A consumer's info (`consumer_info_response`, also the reply to a create).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerInfo {
    /// The stream.
    pub stream_name: String,
    /// The consumer.
    pub name: String,
    /// Creation time.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub created: Option<SystemTime>,
    /// Server time of this reply.
    #[serde(rename = "ts", with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<SystemTime>,
    /// The configuration with the server's defaults filled in.
    pub config: ConsumerConfig,
    /// Last delivered.
    pub delivered: SequenceInfo,
    /// Ack floor: everything at or below is acked.
    pub ack_floor: SequenceInfo,
    /// Delivered, not yet acked.
    pub num_ack_pending: u64,
    /// Redelivered at least once.
    pub num_redelivered: u64,
    /// Waiting pull requests.
    pub num_waiting: u64,
    /// Messages left to deliver.
    pub num_pending: u64,
    /// Cluster, when clustered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// Push only: a subscriber is bound.
    #[serde(skip_serializing_if = "is_default")]
    pub push_bound: bool,
    /// Paused.
    #[serde(skip_serializing_if = "is_default")]
    pub paused: bool,
    /// Time left paused.
    #[serde(with = "nanos::optional", skip_serializing_if = "Option::is_none")]
    pub pause_remaining: Option<Duration>,
    /// Priority group states.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub priority_groups: Vec<PriorityGroupState>,
}

/// The body of `CONSUMER.PAUSE`: a time to pause until, or none to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerPauseRequest {
    /// Pause until then; `None` resumes.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<SystemTime>,
}

/// The reply to `CONSUMER.PAUSE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerPauseResponse {
    /// Paused now.
    pub paused: bool,
    /// Until then.
    #[serde(with = "time::optional", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<SystemTime>,
    /// Time left.
    #[serde(with = "nanos::optional", skip_serializing_if = "Option::is_none")]
    pub pause_remaining: Option<Duration>,
}

/// The body of `CONSUMER.UNPIN`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerUnpinRequest {
    /// The priority group to unpin.
    pub group: String,
}

/// A pull request (`consumer_getnext_request`), the body sent to `CONSUMER.MSG.NEXT.<s>.<c>`.
///
/// `batch` is always written; the rest only when set. The server wants `2 × idle_heartbeat ≤ expires`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    /// Most messages to deliver (0 is read as 1 by the server).
    pub batch: usize,
    /// The request ends after this long (zero = never).
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub expires: Duration,
    /// End with `404` rather than wait when nothing is pending.
    #[serde(skip_serializing_if = "is_default")]
    pub no_wait: bool,
    /// Most bytes to deliver (subject + reply + headers + payload per message); 0 = no byte limit.
    #[serde(skip_serializing_if = "is_default")]
    pub max_bytes: usize,
    /// Ask for `100 Idle Heartbeat` status messages at this interval while the request is open.
    #[serde(with = "nanos", skip_serializing_if = "nanos::is_zero")]
    pub idle_heartbeat: Duration,
    /// Priority group (required when the consumer has one).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Overflow policy: deliver only when the consumer has at least this many pending.
    #[serde(skip_serializing_if = "is_default")]
    pub min_pending: i64,
    /// Overflow policy: deliver only when at least this many acks are pending.
    #[serde(skip_serializing_if = "is_default")]
    pub min_ack_pending: i64,
    /// Pinned-client policy: the pin id received in `Nats-Pin-Id`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Prioritized policy: 0 (first) to 9.
    #[serde(skip_serializing_if = "is_default")]
    pub priority: u8,
}

impl PullRequest {
    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of integers, booleans and strings always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

//! The options of a pull: [`ConsumeConfig`], [`FetchConfig`] and their [`PriorityGroup`].

use std::time::Duration;

use super::{BYTES_ONLY_BATCH, DEFAULT_EXPIRES, DEFAULT_FETCH_MARGIN};

/// Options of a continuous `consume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeConfig {
    /// Most messages pending (pulled, not yet delivered) at a time. Excludes `max_bytes`; when neither is set,
    /// [`DEFAULT_MAX_MESSAGES`](super::DEFAULT_MAX_MESSAGES).
    pub max_messages: Option<u64>,
    /// Most bytes pending at a time. Excludes `max_messages`; the batch is then [`BYTES_ONLY_BATCH`].
    pub max_bytes: Option<u64>,
    /// Expiry of each pull request; at least 1 s.
    pub expires: Duration,
    /// Heartbeat asked of the server; default `expires / 2` clamped to [0.5 s, 30 s]; `2 × hb ≤ expires`.
    pub idle_heartbeat: Option<Duration>,
    /// Pull again when fewer messages than this are pending; default half the maximum, rounded up.
    pub threshold_messages: Option<u64>,
    /// Pull again when fewer bytes than this are pending (with `max_bytes`); default half, rounded up.
    pub threshold_bytes: Option<u64>,
    /// The priority group every pull names, for a consumer with priority groups (server 2.11+).
    pub priority_group: Option<PriorityGroup>,
}

impl Default for ConsumeConfig {
    fn default() -> Self {
        ConsumeConfig {
            max_messages: None,
            max_bytes: None,
            expires: DEFAULT_EXPIRES,
            idle_heartbeat: None,
            threshold_messages: None,
            threshold_bytes: None,
            priority_group: None,
        }
    }
}

/// Options of a `fetch` (one pull) or `next` (a fetch of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Most messages; at least 1.
    pub batch: u64,
    /// Most bytes, if limited.
    pub max_bytes: Option<u64>,
    /// Expiry of the pull request (`None`: not sent, for `no_wait`).
    pub expires: Option<Duration>,
    /// Answer at once from what is available, ending with `404 No Messages`.
    pub no_wait: bool,
    /// Heartbeat asked of the server; `None` means the default: on only when `expires` is over 30 s, then
    /// `expires / 2` clamped to [0.5 s, 30 s].
    pub idle_heartbeat: Option<Duration>,
    /// How long after `expires` the fetch gives up waiting for the server's end of request.
    pub deadline_margin: Duration,
    /// The priority group the pull names, for a consumer with priority groups (server 2.11+).
    pub priority_group: Option<PriorityGroup>,
}

impl FetchConfig {
    /// A waiting fetch of up to `batch` messages with the default expiry.
    pub fn batch(batch: u64) -> Self {
        FetchConfig {
            batch,
            max_bytes: None,
            expires: Some(DEFAULT_EXPIRES),
            no_wait: false,
            idle_heartbeat: None,
            deadline_margin: DEFAULT_FETCH_MARGIN,
            priority_group: None,
        }
    }

    /// A waiting fetch of up to `max_bytes` bytes (the batch is [`BYTES_ONLY_BATCH`]).
    pub fn bytes(max_bytes: u64) -> Self {
        FetchConfig { max_bytes: Some(max_bytes), ..FetchConfig::batch(BYTES_ONLY_BATCH) }
    }

    /// A fetch of what is available now, up to `batch` messages.
    pub fn no_wait(batch: u64) -> Self {
        FetchConfig { expires: None, no_wait: true, ..FetchConfig::batch(batch) }
    }

    /// `next`: a waiting fetch of one message.
    pub fn next() -> Self {
        FetchConfig::batch(1)
    }

    /// Sets the expiry.
    pub fn with_expires(mut self, expires: Duration) -> Self {
        self.expires = Some(expires);
        self
    }

    /// Sets the priority group.
    pub fn with_priority_group(mut self, group: PriorityGroup) -> Self {
        self.priority_group = Some(group);
        self
    }
}

/// The priority group a pull names (ADR-42, server 2.11+). A consumer with `priority_groups` serves only pulls
/// that name one of them; what else applies depends on its `priority_policy`:
/// - `pinned_client`: one client at a time gets the messages. The machine keeps the `Nats-Pin-Id` of the
///   messages it is given and sends it in every later pull; a `423` (another client was pinned, or the pin
///   expired) clears it, and the next pull competes for the pin afresh.
/// - `overflow`: the pull is served only while the consumer has at least `min_pending` messages pending or
///   `min_ack_pending` acks outstanding; a pull without either is always served.
/// - `prioritized` (2.12+): pulls with a lower `priority` are served first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PriorityGroup {
    /// The group: 1 to 16 of `A-Z a-z 0-9 / _ = -`.
    pub group: String,
    /// Overflow: serve this pull only while the consumer has at least this many messages pending.
    pub min_pending: Option<u64>,
    /// Overflow: serve this pull only while at least this many acks are outstanding.
    pub min_ack_pending: Option<u64>,
    /// Prioritized: 0 (served first) to 9.
    pub priority: u8,
}

impl PriorityGroup {
    /// A pull naming `group`, nothing else.
    pub fn new(group: impl Into<String>) -> Self {
        PriorityGroup { group: group.into(), ..PriorityGroup::default() }
    }

    /// Overflow: served only while the consumer has at least `n` messages pending.
    pub fn min_pending(mut self, n: u64) -> Self {
        self.min_pending = Some(n);
        self
    }

    /// Overflow: served only while at least `n` acks are outstanding.
    pub fn min_ack_pending(mut self, n: u64) -> Self {
        self.min_ack_pending = Some(n);
        self
    }

    /// Prioritized: 0 (first) to 9.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// `None` when the server would accept it, or why not.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'=' | b'-');
        if self.group.is_empty() || self.group.len() > 16 || !self.group.bytes().all(valid) {
            Some("a priority group is 1 to 16 of A-Z a-z 0-9 / _ = -")
        } else if self.priority > 9 {
            Some("a pull's priority is 0 to 9")
        } else {
            None
        }
    }
}

//! The ordered consumer's sequence tracker (ADR-17, pull form), sans-IO.
//!
//! An ordered consumer is a chain of client-made ephemeral consumers named `<base>_<serial>`, each with ack
//! policy `none`, memory storage, one replica and a 5 minute inactivity threshold. The tracker checks that
//! every delivery is the next one (`consumer_seq == last + 1`); on a gap, a missed heartbeat, `409 Consumer
//! Deleted`, a reconnect or no responders it resets: the next serial is created to start at `last_sseq + 1`
//! (the first one uses the user's deliver policy), the old consumer is deleted (best effort), and messages of
//! old serials are dropped. Failed creates are retried with a backoff of 1 s doubling up to 10 s, for ever.
//!
//! A driver runs one [`crate::pull::PullConsumer`] per serial and:
//! - sends [`OrderedConsumer::poll_create`]'s config as a consumer create, reporting the outcome with
//!   [`OrderedConsumer::create_succeeded`] or [`OrderedConsumer::create_failed`];
//! - deletes each name from [`OrderedConsumer::poll_delete`], ignoring failures;
//! - passes each delivered message's sequences (from its ack metadata) and the serial of the consumer it came
//!   from to [`OrderedConsumer::handle_message`];
//! - calls [`OrderedConsumer::reset`] on the other reset causes, and wakes at [`OrderedConsumer::poll_timeout`].
//!
//! ```
//! use std::time::Instant;
//! use nats_jetstream::ordered::{Delivery, OrderedConfig, OrderedConsumer};
//! use nats_jetstream::model::DeliverPolicy;
//!
//! let now = Instant::now();
//! let mut ordered = OrderedConsumer::new("Xk3b9", OrderedConfig::default(), now)?;
//! let create = ordered.poll_create(now).expect("first create");
//! assert_eq!(create.name, "Xk3b9_1");
//! ordered.create_succeeded(1);
//! assert_eq!(ordered.handle_message(1, 10, 1), Delivery::Deliver);
//! assert_eq!(ordered.handle_message(3, 12, 1), Delivery::Reset); // consumer seq 2 went missing
//! let again = ordered.poll_create(now).expect("re-create");
//! assert_eq!((again.name.as_str(), &again.deliver_policy, again.opt_start_seq), ("Xk3b9_2", &DeliverPolicy::ByStartSequence, 11));
//! assert_eq!(ordered.poll_delete().as_deref(), Some("Xk3b9_1"));
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use crate::error::JetStreamError;
use crate::model::{AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy};

/// How long an ordered consumer's ephemeral consumer survives without a pull.
pub const DEFAULT_INACTIVE_THRESHOLD: Duration = Duration::from_secs(5 * 60);
/// The first wait after a failed create.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between creates.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The wait before the next create after `failures` failed creates in a row (1 s doubling to 10 s; 0 for none).
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => INITIAL_BACKOFF.saturating_mul(1u32.checked_shl(n - 1).unwrap_or(u32::MAX)).min(MAX_BACKOFF),
    }
}

/// What the user may choose of an ordered consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedConfig {
    /// Subjects to consume (empty: the whole stream). One is sent as `filter_subject`, several as
    /// `filter_subjects`.
    pub filter_subjects: Vec<String>,
    /// Where the first consumer starts; later ones start after the last delivered message.
    pub deliver_policy: DeliverPolicy,
    /// Start sequence, with [`DeliverPolicy::ByStartSequence`].
    pub opt_start_seq: u64,
    /// Start time, with [`DeliverPolicy::ByStartTime`].
    pub opt_start_time: Option<SystemTime>,
    /// Replay speed.
    pub replay_policy: ReplayPolicy,
    /// Deliver headers only (with `Nats-Msg-Size`), no payloads.
    pub headers_only: bool,
    /// How long each consumer survives without a pull; default [`DEFAULT_INACTIVE_THRESHOLD`].
    pub inactive_threshold: Duration,
    /// Metadata for every consumer of the chain.
    pub metadata: BTreeMap<String, String>,
    /// The idle heartbeat asked of each consumer: the push form's (default
    /// [`crate::ordered_push::DEFAULT_IDLE_HEARTBEAT`]) and the pull form's pulls (default: the pulls' own; at
    /// most half their 30 s expiry, else the pull form refuses it). Zero means the default.
    pub idle_heartbeat: Option<Duration>,
}

impl Default for OrderedConfig {
    fn default() -> Self {
        OrderedConfig {
            filter_subjects: Vec::new(),
            deliver_policy: DeliverPolicy::All,
            opt_start_seq: 0,
            opt_start_time: None,
            replay_policy: ReplayPolicy::Instant,
            headers_only: false,
            inactive_threshold: DEFAULT_INACTIVE_THRESHOLD,
            metadata: BTreeMap::new(),
            idle_heartbeat: None,
        }
    }
}

/// What to do with a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The next message in order: hand it to the user.
    Deliver,
    /// A gap: drop it; the tracker has reset (a new consumer is due).
    Reset,
    /// It came from an older consumer of the chain: drop it.
    DropStale,
}

/// Why the chain moves to a new consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetReason {
    /// A delivery's consumer sequence was not the last one + 1.
    Gap {
        /// The consumer sequence expected.
        expected: u64,
        /// The one received.
        received: u64,
    },
    /// Heartbeats stopped.
    MissedHeartbeat,
    /// `409 Consumer Deleted`.
    ConsumerDeleted,
    /// The connection came back.
    Reconnected,
    /// A pull or create got no responders.
    NoResponders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A create of the current serial is due at this time (`None`: at once).
    CreateDue(Option<Instant>),
    /// The create of the current serial was handed out; its outcome is awaited.
    Creating,
    /// The current serial's consumer exists.
    Active,
}

/// The ordered consumer's state: serial, last sequences, create schedule and consumers to delete.
#[derive(Debug, Clone)]
pub struct OrderedConsumer {
    config: OrderedConfig,
    base: String,
    serial: u64,
    last_stream_seq: u64,
    last_consumer_seq: u64,
    phase: Phase,
    failures: u32,
    resets: u64,
    last_reset: Option<ResetReason>,
    to_delete: VecDeque<String>,
}

impl OrderedConsumer {
    /// A tracker whose consumers are named `<random_base>_<serial>`; the first create is due at once.
    ///
    /// `random_base` comes from the caller (this crate has no randomness); it must be a usable consumer name
    /// token. `now` is accepted for symmetry with the other inputs.
    pub fn new(random_base: &str, config: OrderedConfig, now: Instant) -> Result<Self, JetStreamError> {
        let _ = now;
        let invalid = |reason: &str| JetStreamError::InvalidConfig { reason: reason.to_owned() };
        if random_base.is_empty()
            || random_base.bytes().any(|b| !b.is_ascii_graphic() || matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\'))
        {
            return Err(JetStreamError::InvalidName {
                name: random_base.to_owned(),
                reason: "printable ASCII without '.', '*', '>', '/' or '\\'",
            });
        }
        match config.deliver_policy {
            DeliverPolicy::ByStartSequence if config.opt_start_seq == 0 => {
                return Err(invalid("by_start_sequence needs opt_start_seq"))
            }
            DeliverPolicy::ByStartTime if config.opt_start_time.is_none() => {
                return Err(invalid("by_start_time needs opt_start_time"))
            }
            _ => {}
        }
        if config.filter_subjects.iter().any(String::is_empty) {
            return Err(invalid("filter subjects must not be empty"));
        }
        Ok(OrderedConsumer {
            config,
            base: random_base.to_owned(),
            serial: 1,
            last_stream_seq: 0,
            last_consumer_seq: 0,
            phase: Phase::CreateDue(None),
            failures: 0,
            resets: 0,
            last_reset: None,
            to_delete: VecDeque::new(),
        })
    }

    /// The serial of the current consumer (1 for the first).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The current consumer's name, `<base>_<serial>`.
    pub fn name(&self) -> String {
        self.name_of(self.serial)
    }

    fn name_of(&self, serial: u64) -> String {
        format!("{}_{}", self.base, serial)
    }

    /// The serial of a consumer of this chain from its name (as in a message's ack metadata); `None` for a
    /// name that is not `<base>_<serial>`.
    pub fn serial_of(&self, consumer_name: &str) -> Option<u64> {
        let serial = consumer_name.strip_prefix(self.base.as_str())?.strip_prefix('_')?;
        if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        serial.parse().ok()
    }

    /// Stream sequence of the last message delivered (0 before the first).
    pub fn last_stream_sequence(&self) -> u64 {
        self.last_stream_seq
    }

    /// Consumer sequence of the last message delivered by the current consumer (0 before its first).
    pub fn last_consumer_sequence(&self) -> u64 {
        self.last_consumer_seq
    }

    /// Creates that failed in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How many resets so far, and the last one's reason.
    pub fn resets(&self) -> (u64, Option<ResetReason>) {
        (self.resets, self.last_reset)
    }

    /// True when the current consumer exists (its create succeeded).
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// The config of the current serial's consumer: the user's deliver policy while nothing was delivered,
    /// then `by_start_sequence` at the last stream sequence + 1.
    pub fn consumer_config(&self) -> ConsumerConfig {
        let c = &self.config;
        let (deliver_policy, opt_start_seq, opt_start_time) = if self.last_stream_seq == 0 {
            (c.deliver_policy.clone(), c.opt_start_seq, c.opt_start_time)
        } else {
            (DeliverPolicy::ByStartSequence, self.last_stream_seq.saturating_add(1), None)
        };
        let (filter_subject, filter_subjects) = match c.filter_subjects.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        ConsumerConfig {
            name: self.name(),
            deliver_policy,
            opt_start_seq,
            opt_start_time,
            ack_policy: AckPolicy::None,
            mem_storage: true,
            num_replicas: 1,
            inactive_threshold: c.inactive_threshold,
            filter_subject,
            filter_subjects,
            replay_policy: c.replay_policy.clone(),
            headers_only: c.headers_only,
            metadata: c.metadata.clone(),
            ..ConsumerConfig::default()
        }
    }

    /// The config to create now, if a create is due at `now`; the create is then awaited.
    pub fn poll_create(&mut self, now: Instant) -> Option<ConsumerConfig> {
        match self.phase {
            Phase::CreateDue(due) if due.is_none_or(|d| d <= now) => {
                self.phase = Phase::Creating;
                Some(self.consumer_config())
            }
            _ => None,
        }
    }

    /// The create of `serial` succeeded. An outcome for an older serial is ignored (that consumer is already
    /// queued for deletion).
    pub fn create_succeeded(&mut self, serial: u64) {
        if serial == self.serial && self.phase == Phase::Creating {
            self.phase = Phase::Active;
            self.failures = 0;
            self.last_consumer_seq = 0;
        }
    }

    /// The create of `serial` failed at `now`: the next attempt waits 1 s, 2 s, 4 s, 8 s, then 10 s each.
    pub fn create_failed(&mut self, serial: u64, now: Instant) {
        if serial == self.serial && self.phase == Phase::Creating {
            self.failures = self.failures.saturating_add(1);
            let wait = backoff(self.failures);
            self.phase = Phase::CreateDue(Some(now.checked_add(wait).unwrap_or(now)));
        }
    }

    /// Moves to the next serial: the old consumer (if a create was ever sent for it) is queued for deletion,
    /// and a create starting after the last delivered message is due at once (or, after failed creates, when
    /// the backoff says).
    pub fn reset(&mut self, reason: ResetReason) {
        if matches!(self.phase, Phase::Creating | Phase::Active) {
            self.to_delete.push_back(self.name());
        }
        self.serial = self.serial.saturating_add(1);
        self.last_consumer_seq = 0;
        self.resets = self.resets.saturating_add(1);
        self.last_reset = Some(reason);
        self.phase = match self.phase {
            // Keep a pending backoff: a reset must not turn a failing create into a tight loop.
            Phase::CreateDue(due) => Phase::CreateDue(due),
            _ => Phase::CreateDue(None),
        };
    }

    /// A message delivered by the consumer of `serial`, with its consumer and stream sequences.
    pub fn handle_message(&mut self, consumer_seq: u64, stream_seq: u64, serial: u64) -> Delivery {
        if serial != self.serial {
            return Delivery::DropStale;
        }
        let expected = self.last_consumer_seq.saturating_add(1);
        if consumer_seq != expected {
            self.reset(ResetReason::Gap { expected, received: consumer_seq });
            return Delivery::Reset;
        }
        self.last_consumer_seq = consumer_seq;
        self.last_stream_seq = stream_seq;
        Delivery::Deliver
    }

    /// The next old consumer to delete (best effort: ignore failures).
    pub fn poll_delete(&mut self) -> Option<String> {
        self.to_delete.pop_front()
    }

    /// When a delayed create falls due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::CreateDue(due) => due,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulated clock's origin (the only clock read, and only in tests).
    #[allow(clippy::disallowed_methods)]
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let secs: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 8, 10, 10, 10]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn first_config() {
        let now = t0();
        let config = OrderedConfig {
            filter_subjects: vec!["a.>".into()],
            deliver_policy: DeliverPolicy::LastPerSubject,
            headers_only: true,
            ..OrderedConfig::default()
        };
        let mut o = OrderedConsumer::new("base", config, now).unwrap();
        let c = o.poll_create(now).unwrap();
        assert_eq!(c.name, "base_1");
        assert_eq!(c.ack_policy, AckPolicy::None);
        assert!(c.mem_storage);
        assert_eq!(c.num_replicas, 1);
        assert_eq!(c.inactive_threshold, Duration::from_secs(300));
        assert_eq!(c.deliver_policy, DeliverPolicy::LastPerSubject);
        assert_eq!(c.filter_subject, "a.>");
        assert!(c.filter_subjects.is_empty());
        assert!(c.headers_only);
        assert!(c.durable_name.is_empty() && c.deliver_subject.is_empty());
        // Only one create at a time.
        assert!(o.poll_create(now).is_none());

        // What goes on the wire.
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["name"], "base_1");
        assert_eq!(json["ack_policy"], "none");
        assert_eq!(json["mem_storage"], true);
        assert_eq!(json["num_replicas"], 1);
        assert_eq!(json["inactive_threshold"], 300_000_000_000u64);
        assert_eq!(json["deliver_policy"], "last_per_subject");
        assert!(json.get("durable_name").is_none());
    }

    #[test]
    fn several_filters() {
        let config = OrderedConfig { filter_subjects: vec!["a".into(), "b".into()], ..OrderedConfig::default() };
        let o = OrderedConsumer::new("b", config, t0()).unwrap();
        let c = o.consumer_config();
        assert!(c.filter_subject.is_empty());
        assert_eq!(c.filter_subjects, ["a", "b"]);
    }

    #[test]
    fn reset_before_anything_keeps_user_policy() {
        let now = t0();
        let config = OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence,
            opt_start_seq: 40,
            ..OrderedConfig::default()
        };
        let mut o = OrderedConsumer::new("b", config, now).unwrap();
        o.poll_create(now).unwrap();
        o.create_succeeded(1);
        o.reset(ResetReason::Reconnected);
        let c = o.poll_create(now).unwrap();
        assert_eq!((c.name.as_str(), c.deliver_policy, c.opt_start_seq), ("b_2", DeliverPolicy::ByStartSequence, 40));
        assert_eq!(o.resets(), (1, Some(ResetReason::Reconnected)));
    }

    #[test]
    fn invalid_configs() {
        let now = t0();
        assert!(OrderedConsumer::new("", OrderedConfig::default(), now).is_err());
        assert!(OrderedConsumer::new("a.b", OrderedConfig::default(), now).is_err());
        let bad = OrderedConfig { deliver_policy: DeliverPolicy::ByStartSequence, ..OrderedConfig::default() };
        assert!(OrderedConsumer::new("a", bad, now).is_err());
        let bad = OrderedConfig { deliver_policy: DeliverPolicy::ByStartTime, ..OrderedConfig::default() };
        assert!(OrderedConsumer::new("a", bad, now).is_err());
        let bad = OrderedConfig { filter_subjects: vec![String::new()], ..OrderedConfig::default() };
        assert!(OrderedConsumer::new("a", bad, now).is_err());
    }

    #[test]
    fn serial_from_name() {
        let o = OrderedConsumer::new("ab", OrderedConfig::default(), t0()).unwrap();
        assert_eq!(o.serial_of("ab_12"), Some(12));
        assert_eq!(o.serial_of("ab_"), None);
        assert_eq!(o.serial_of("ab_1x"), None);
        assert_eq!(o.serial_of("abc_1"), None);
        assert_eq!(o.serial_of("ab_+1"), None);
    }

    #[test]
    fn stale_create_outcomes_are_ignored() {
        let now = t0();
        let mut o = OrderedConsumer::new("b", OrderedConfig::default(), now).unwrap();
        o.poll_create(now).unwrap();
        o.reset(ResetReason::Reconnected);
        // The create of serial 1 may have succeeded: delete it.
        assert_eq!(o.poll_delete().as_deref(), Some("b_1"));
        o.create_succeeded(1);
        assert!(!o.is_active());
        o.create_failed(1, now);
        assert_eq!(o.failures(), 0);
        assert_eq!(o.poll_create(now).unwrap().name, "b_2");
        o.create_succeeded(2);
        assert!(o.is_active());
    }
}

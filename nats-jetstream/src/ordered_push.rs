//! The ordered consumer's push form (ADR-17), sans-IO: the [`OrderedConsumer`] sequence tracker driving a
//! chain of ephemeral push consumers, each watched by a [`PushConsumer`] (flow control answered, heartbeats
//! watched).
//!
//! Every consumer of the chain delivers to a subject of its own, `<prefix>.<serial>`, so that once the driver
//! has moved its subscription to the new subject nothing of an old consumer reaches the user, and an old
//! consumer that could not be deleted loses its interest and expires on the server. A reset comes from a gap
//! in the consumer sequence, from a heartbeat whose `Nats-Last-Consumer` is not the last delivery (messages
//! lost at the tail), from two heartbeat intervals of silence, from `409 Consumer Deleted`, and from a
//! reconnect.
//!
//! A driver:
//! - on [`OrderedPushConsumer::poll_create`], subscribes to the config's `deliver_subject` (dropping the old
//!   subscription), sends the create, and reports it with `create_succeeded` / `create_failed`;
//! - deletes each name from [`OrderedPushConsumer::poll_delete`] (best effort);
//! - feeds every message of its subscription to `handle_message`, time to `handle_timeout`, reconnects to
//!   `handle_reconnected`;
//! - publishes an empty message to each subject of `poll_reply`, and hands `poll_message`'s messages to the user.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nats_jetstream::ordered::OrderedConfig;
//! use nats_jetstream::ordered_push::OrderedPushConsumer;
//! use nats_proto::Msg;
//!
//! let now = Instant::now();
//! let mut chain = OrderedPushConsumer::<Msg>::new("_INBOX.k3b9", "k3b9", OrderedConfig::default(), now)?;
//! let create = chain.poll_create(now).expect("first create");
//! assert_eq!((create.deliver_subject.as_str(), create.flow_control), ("_INBOX.k3b9.1", true));
//! assert_eq!(create.idle_heartbeat, Duration::from_secs(5));
//! chain.create_succeeded(1, now);
//! chain.handle_message(now, Msg::new("o.1", 1, Some(&b"$JS.ACK.O.k3b9_1.1.7.1.0.0"[..]), None, "first"));
//! assert_eq!(chain.poll_message().map(|m| m.payload().to_vec()), Some(b"first".to_vec()));
//!
//! // Consumer sequence 2 went missing: the chain moves to a consumer starting after stream sequence 7.
//! chain.handle_message(now, Msg::new("o.1", 1, Some(&b"$JS.ACK.O.k3b9_1.1.9.3.0.0"[..]), None, "third"));
//! assert!(chain.poll_message().is_none());
//! let again = chain.poll_create(now).expect("re-create");
//! assert_eq!((again.deliver_subject.as_str(), again.opt_start_seq), ("_INBOX.k3b9.2", 8));
//! assert_eq!(chain.poll_delete().as_deref(), Some("k3b9_1"));
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ack::AckMetadata;
use crate::error::JetStreamError;
use crate::model::ConsumerConfig;
use crate::ordered::{Delivery, OrderedConfig, OrderedConsumer, ResetReason};
use crate::push::{PushConsumer, PushEvent};
use crate::status::{Control, Incoming, Kind};

/// The heartbeat a chain's consumers are asked for when [`OrderedConfig::idle_heartbeat`] is not set.
pub const DEFAULT_IDLE_HEARTBEAT: Duration = Duration::from_secs(5);

/// Header of a heartbeat: the consumer sequence of the consumer's last delivery.
const LAST_CONSUMER: &str = "Nats-Last-Consumer";

/// The state of an ordered push consumer: see the module's documentation.
#[derive(Debug)]
pub struct OrderedPushConsumer<M> {
    ordered: OrderedConsumer,
    prefix: String,
    heartbeat: Duration,
    /// The current consumer's watcher, while it exists.
    push: Option<PushConsumer<M>>,
    out: VecDeque<M>,
    replies: VecDeque<Bytes>,
    missed: u64,
    answered: u64,
}

impl<M: Incoming> OrderedPushConsumer<M> {
    /// A chain delivering to `<deliver_prefix>.<serial>`, its consumers named `<random_base>_<serial>` (see
    /// [`OrderedConsumer::new`]); the first create is due at once.
    pub fn new(
        deliver_prefix: &str,
        random_base: &str,
        config: OrderedConfig,
        now: Instant,
    ) -> Result<Self, JetStreamError> {
        if deliver_prefix.is_empty()
            || deliver_prefix.bytes().any(|b| b.is_ascii_whitespace() || b == b'*' || b == b'>')
        {
            return Err(JetStreamError::InvalidConfig {
                reason: format!("bad deliver subject prefix {deliver_prefix:?}"),
            });
        }
        let heartbeat = config.idle_heartbeat.filter(|d| !d.is_zero()).unwrap_or(DEFAULT_IDLE_HEARTBEAT);
        Ok(OrderedPushConsumer {
            ordered: OrderedConsumer::new(random_base, config, now)?,
            prefix: deliver_prefix.to_owned(),
            heartbeat,
            push: None,
            out: VecDeque::new(),
            replies: VecDeque::new(),
            missed: 0,
            answered: 0,
        })
    }

    /// The sequence tracker (serial, last sequences, resets).
    pub fn tracker(&self) -> &OrderedConsumer {
        &self.ordered
    }

    /// The config to create now, if a create is due: the tracker's, as a push consumer with flow control and
    /// heartbeats delivering to this serial's subject.
    pub fn poll_create(&mut self, now: Instant) -> Option<ConsumerConfig> {
        let mut config = self.ordered.poll_create(now)?;
        config.deliver_subject = format!("{}.{}", self.prefix, self.ordered.serial());
        config.flow_control = true;
        config.idle_heartbeat = self.heartbeat;
        Some(config)
    }

    /// The create of `serial` succeeded: its deliveries are watched from now.
    pub fn create_succeeded(&mut self, serial: u64, now: Instant) {
        self.ordered.create_succeeded(serial);
        if self.ordered.is_active() && self.ordered.serial() == serial {
            self.push = Some(PushConsumer::new(Some(self.heartbeat), now));
        }
    }

    /// The create of `serial` failed: it is retried with backoff (see [`OrderedConsumer::create_failed`]).
    pub fn create_failed(&mut self, serial: u64, now: Instant) {
        self.ordered.create_failed(serial, now);
    }

    fn reset(&mut self, reason: ResetReason) {
        self.ordered.reset(reason);
        self.drop_watcher();
    }

    /// The tracker moved on: what the old consumer asked for no longer matters, it is being deleted.
    fn drop_watcher(&mut self) {
        self.push = None;
        self.replies.clear();
    }

    /// A message of the current subscription.
    pub fn handle_message(&mut self, now: Instant, msg: M) {
        let Some(push) = self.push.as_mut() else { return };
        if let Kind::Control(Control::IdleHeartbeat) = msg.classify() {
            let last = msg.headers().and_then(|h| h.get(LAST_CONSUMER).and_then(|v| v.trim().parse::<u64>().ok()));
            if let Some(last) = last.filter(|&l| l != self.ordered.last_consumer_sequence()) {
                let expected = self.ordered.last_consumer_sequence().saturating_add(1);
                return self.reset(ResetReason::Gap { expected, received: last });
            }
        }
        push.handle_message(now, msg);
        self.drain();
    }

    /// Time passed: two heartbeat intervals of silence reset the chain.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(push) = self.push.as_mut() {
            push.handle_timeout(now);
            self.drain();
        }
    }

    /// The connection came back: the consumer may be gone with its server, so the chain moves on.
    pub fn handle_reconnected(&mut self) {
        self.reset(ResetReason::Reconnected);
    }

    fn drain(&mut self) {
        while let Some(push) = self.push.as_mut() {
            if let Some(reply) = push.poll_reply() {
                self.replies.push_back(reply);
                continue;
            }
            match push.poll_event() {
                None => break,
                Some(PushEvent::Message(msg)) => {
                    let meta = msg.reply().and_then(|r| std::str::from_utf8(r).ok()).map(AckMetadata::parse);
                    let Some(Ok(meta)) = meta else { continue };
                    let Some(serial) = self.ordered.serial_of(meta.consumer) else { continue };
                    match self.ordered.handle_message(meta.consumer_sequence, meta.stream_sequence, serial) {
                        Delivery::Deliver => self.out.push_back(msg),
                        // The tracker reset itself.
                        Delivery::Reset => self.drop_watcher(),
                        Delivery::DropStale => {}
                    }
                }
                Some(PushEvent::MissedHeartbeats) => {
                    self.missed += 1;
                    self.reset(ResetReason::MissedHeartbeat);
                }
                Some(PushEvent::ConsumerDeleted) => self.reset(ResetReason::ConsumerDeleted),
            }
        }
    }

    /// The next message for the user, in stream order.
    pub fn poll_message(&mut self) -> Option<M> {
        self.out.pop_front()
    }

    /// The next subject to publish an empty message to (flow control, or resuming a stalled consumer).
    pub fn poll_reply(&mut self) -> Option<Bytes> {
        let reply = self.replies.pop_front();
        self.answered += u64::from(reply.is_some());
        reply
    }

    /// Flow-control requests (and stalls) answered so far, over the whole chain.
    pub fn flow_control_answered(&self) -> u64 {
        self.answered
    }

    /// The next old consumer to delete (best effort: ignore failures).
    pub fn poll_delete(&mut self) -> Option<String> {
        self.ordered.poll_delete()
    }

    /// When to call [`Self::handle_timeout`] or [`Self::poll_create`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let watch = self.push.as_ref().and_then(PushConsumer::poll_timeout);
        match (watch, self.ordered.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Times two heartbeat intervals passed in silence (each reset the chain).
    pub fn missed_heartbeats(&self) -> u64 {
        self.missed
    }

    /// Times the chain moved to a new consumer.
    pub fn resets(&self) -> u64 {
        self.ordered.resets().0
    }
}

#[cfg(test)]
// A base instant for the tests: the machine itself never reads the clock.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use nats_proto::{HeaderBlock, Msg};

    fn delivery(serial: u64, cseq: u64, sseq: u64) -> Msg {
        let reply = format!("$JS.ACK.S.b_{serial}.1.{sseq}.{cseq}.0.0");
        Msg::new("s.x", 1, Some(reply.as_bytes()), None, format!("{sseq}"))
    }

    fn heartbeat(last_consumer: Option<u64>) -> Msg {
        let extra = last_consumer.map_or(String::new(), |l| format!("{LAST_CONSUMER}: {l}\r\n"));
        let block = HeaderBlock::parse(Bytes::from(format!("NATS/1.0 100 Idle Heartbeat\r\n{extra}\r\n"))).unwrap();
        Msg::new("_INBOX.p.1", 1, None, Some(&block), "")
    }

    fn started(now: Instant) -> OrderedPushConsumer<Msg> {
        let config = OrderedConfig { idle_heartbeat: Some(Duration::from_secs(1)), ..OrderedConfig::default() };
        let mut chain = OrderedPushConsumer::new("_INBOX.p", "b", config, now).unwrap();
        let create = chain.poll_create(now).unwrap();
        assert_eq!((create.name.as_str(), create.idle_heartbeat), ("b_1", Duration::from_secs(1)));
        chain.create_succeeded(1, now);
        chain
    }

    #[test]
    fn a_heartbeat_behind_the_server_resets_and_one_level_with_it_does_not() {
        let t0 = Instant::now();
        let mut chain = started(t0);
        chain.handle_message(t0, delivery(1, 1, 10));
        chain.handle_message(t0, heartbeat(Some(1)));
        chain.handle_message(t0, heartbeat(None));
        assert_eq!(chain.resets(), 0);
        chain.handle_message(t0, heartbeat(Some(3)));
        assert_eq!(chain.resets(), 1, "two deliveries were lost at the tail");
        let create = chain.poll_create(t0).unwrap();
        assert_eq!((create.deliver_subject.as_str(), create.opt_start_seq), ("_INBOX.p.2", 11));
        assert_eq!(chain.poll_message().map(|m| m.payload().to_vec()), Some(b"10".to_vec()));
    }

    #[test]
    fn silence_resets_once_and_nothing_is_watched_until_the_next_create_succeeds() {
        let t0 = Instant::now();
        let mut chain = started(t0);
        assert_eq!(chain.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        chain.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!((chain.missed_heartbeats(), chain.resets()), (1, 1));
        assert_eq!(chain.poll_timeout(), None, "the next create is due at once");
        // A late delivery of the old consumer (before the driver moved its subscription) is dropped.
        chain.handle_message(t0, delivery(1, 1, 1));
        assert!(chain.poll_message().is_none());
        let create = chain.poll_create(t0).unwrap();
        chain.create_failed(2, t0);
        assert_eq!(chain.poll_timeout(), Some(t0 + Duration::from_secs(1)), "backoff");
        assert!(chain.poll_create(t0).is_none());
        let retry = chain.poll_create(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(retry.deliver_subject, create.deliver_subject, "same serial, same subject");
        chain.create_succeeded(2, t0);
        chain.handle_message(t0, delivery(2, 1, 1));
        assert!(chain.poll_message().is_some());
    }

    #[test]
    fn flow_control_is_answered_and_a_deletion_or_reconnect_moves_on() {
        let t0 = Instant::now();
        let mut chain = started(t0);
        let block = HeaderBlock::parse(Bytes::from_static(b"NATS/1.0 100 FlowControl Request\r\n\r\n")).unwrap();
        chain.handle_message(t0, Msg::new("_INBOX.p.1", 1, Some(&b"$JS.FC.S.b.1"[..]), Some(&block), ""));
        assert_eq!(chain.poll_reply().as_deref(), Some(&b"$JS.FC.S.b.1"[..]));
        let block = HeaderBlock::parse(Bytes::from_static(b"NATS/1.0 409 Consumer Deleted\r\n\r\n")).unwrap();
        chain.handle_message(t0, Msg::new("_INBOX.p.1", 1, None, Some(&block), ""));
        assert_eq!(chain.tracker().resets().1, Some(ResetReason::ConsumerDeleted));
        chain.poll_create(t0).unwrap();
        chain.create_succeeded(2, t0);
        chain.handle_reconnected();
        assert_eq!(chain.tracker().resets(), (2, Some(ResetReason::Reconnected)));
        assert_eq!(chain.poll_delete().as_deref(), Some("b_1"));
        assert_eq!(chain.poll_delete().as_deref(), Some("b_2"));
        assert!(OrderedPushConsumer::<Msg>::new("a.>", "b", OrderedConfig::default(), t0).is_err());
    }
}

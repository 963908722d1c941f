//! Push consumers (ADR-9, ADR-15): the server sends messages to a deliver subject on its own; the client
//! answers flow control, resumes a stalled consumer, and watches idle heartbeats. This machine does that
//! bookkeeping for one subscription to the deliver subject; bindings feed it messages and time, publish the
//! empty answers it asks for, and hand its events to the user.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nats_jetstream::push::{PushConsumer, PushEvent};
//! use bytes::Bytes;
//! use nats_proto::{HeaderBlock, Msg};
//!
//! let start = Instant::now();
//! let mut push = PushConsumer::<Msg>::new(Some(Duration::from_secs(5)), start);
//! push.handle_message(start, Msg::new("orders.1", 1, Some(&b"$JS.ACK.O.c.1.1.1.0.0"[..]), None, "hi"));
//! assert!(matches!(push.poll_event(), Some(PushEvent::Message(_))));
//!
//! // Flow control: an empty status message whose reply subject must be answered once.
//! let block = HeaderBlock::parse(Bytes::from_static(b"NATS/1.0 100 FlowControl Request\r\n\r\n")).unwrap();
//! push.handle_message(start, Msg::new("_INBOX.x", 1, Some(&b"$JS.FC.O.c.1"[..]), Some(&block), ""));
//! assert_eq!(push.poll_reply().as_deref(), Some(&b"$JS.FC.O.c.1"[..]));
//!
//! // No heartbeat for two intervals: one missed-heartbeats event per silence.
//! assert_eq!(push.poll_timeout(), Some(start + Duration::from_secs(10)));
//! push.handle_timeout(start + Duration::from_secs(10));
//! assert!(matches!(push.poll_event(), Some(PushEvent::MissedHeartbeats)));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::status::{Control, Incoming, Kind};

/// Header of a heartbeat sent while the consumer is stalled by flow control: answering it resumes delivery.
pub const CONSUMER_STALLED: &str = "Nats-Consumer-Stalled";

/// Heartbeat intervals of silence after which heartbeats count as missed.
const MISSED_AFTER: u32 = 2;

/// What a push consumer has for its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent<M> {
    /// A message of the stream.
    Message(M),
    /// Nothing (no message, no heartbeat) came for two heartbeat intervals: the consumer or its server may
    /// be gone. Reported once per silence.
    MissedHeartbeats,
    /// The server deleted the consumer (`409 Consumer Deleted`): nothing more will come.
    ConsumerDeleted,
}

/// The bookkeeping of one push subscription.
#[derive(Debug)]
pub struct PushConsumer<M> {
    idle_heartbeat: Option<Duration>,
    last_activity: Instant,
    /// Heartbeats were reported missed since the last activity.
    reported: bool,
    events: VecDeque<PushEvent<M>>,
    replies: VecDeque<Bytes>,
    missed: u64,
    answered: u64,
}

impl<M: Incoming> PushConsumer<M> {
    /// A subscription to a consumer with this idle heartbeat (`None`: none asked for, nothing is watched).
    pub fn new(idle_heartbeat: Option<Duration>, now: Instant) -> Self {
        let idle_heartbeat = idle_heartbeat.filter(|d| !d.is_zero());
        Self {
            idle_heartbeat,
            last_activity: now,
            reported: false,
            events: VecDeque::new(),
            replies: VecDeque::new(),
            missed: 0,
            answered: 0,
        }
    }

    /// A message arrived on the deliver subject.
    pub fn handle_message(&mut self, now: Instant, msg: M) {
        self.last_activity = now;
        self.reported = false;
        match msg.classify() {
            Kind::User => self.events.push_back(PushEvent::Message(msg)),
            Kind::Control(Control::FlowControl { reply }) => self.replies.extend(reply),
            Kind::Control(Control::IdleHeartbeat) => {
                let stalled =
                    msg.headers().and_then(|h| h.get(CONSUMER_STALLED).map(|s| Bytes::copy_from_slice(s.as_bytes())));
                self.replies.extend(stalled);
            }
            Kind::Control(Control::ConsumerDeleted) => self.events.push_back(PushEvent::ConsumerDeleted),
            // Nothing else is sent to a push consumer; anything new is ignored.
            Kind::Control(_) => {}
        }
    }

    /// The connection came back: the server may have sent nothing meanwhile; heartbeats are watched afresh.
    pub fn handle_reconnected(&mut self, now: Instant) {
        self.last_activity = now;
        self.reported = false;
    }

    /// When heartbeats will count as missed, if they are watched and not already reported.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hb = self.idle_heartbeat?;
        (!self.reported).then(|| self.last_activity + hb * MISSED_AFTER)
    }

    /// Time passed: a silence of two heartbeat intervals is reported once.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|due| now >= due) {
            self.reported = true;
            self.missed += 1;
            self.events.push_back(PushEvent::MissedHeartbeats);
        }
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<PushEvent<M>> {
        self.events.pop_front()
    }

    /// The next subject to publish an empty message to (flow control, or resuming a stalled consumer).
    pub fn poll_reply(&mut self) -> Option<Bytes> {
        let reply = self.replies.pop_front();
        self.answered += u64::from(reply.is_some());
        reply
    }

    /// Flow-control requests and stalls answered so far.
    pub fn flow_control_answered(&self) -> u64 {
        self.answered
    }

    /// Silences reported so far.
    pub fn missed_heartbeats(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
// A base instant for the tests: the machine itself never reads the clock.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use nats_proto::{HeaderBlock, Msg};

    fn status(line: &str, extra: &str, reply: Option<&str>) -> Msg {
        let block = HeaderBlock::parse(Bytes::from(format!("NATS/1.0 {line}\r\n{extra}\r\n"))).unwrap();
        Msg::new("_INBOX.d", 1, reply.map(str::as_bytes), Some(&block), "")
    }

    #[test]
    fn a_stalled_heartbeat_is_answered_and_a_plain_one_only_resets_the_timer() {
        let t0 = Instant::now();
        let mut push = PushConsumer::<Msg>::new(Some(Duration::from_secs(1)), t0);
        push.handle_message(t0 + Duration::from_millis(1500), status("100 Idle Heartbeat", "", None));
        assert_eq!(push.poll_reply(), None);
        assert_eq!(push.poll_timeout(), Some(t0 + Duration::from_millis(3500)), "moved by the heartbeat");
        let stalled = status("100 Idle Heartbeat", "Nats-Consumer-Stalled: $JS.FC.S.c.9\r\n", None);
        push.handle_message(t0, stalled);
        assert_eq!(push.poll_reply().as_deref(), Some(&b"$JS.FC.S.c.9"[..]));
        assert_eq!(push.flow_control_answered(), 1);
        assert_eq!(push.poll_event(), None, "control messages are not the user's");
    }

    #[test]
    fn silences_are_reported_once_each_and_deletion_is_an_event() {
        let t0 = Instant::now();
        let mut push = PushConsumer::<Msg>::new(Some(Duration::from_secs(1)), t0);
        push.handle_timeout(t0 + Duration::from_millis(1999));
        assert_eq!(push.poll_event(), None, "not yet");
        push.handle_timeout(t0 + Duration::from_secs(2));
        push.handle_timeout(t0 + Duration::from_secs(9));
        assert_eq!(push.poll_event(), Some(PushEvent::MissedHeartbeats));
        assert_eq!(push.poll_event(), None, "one report per silence");
        assert_eq!(push.poll_timeout(), None);
        push.handle_reconnected(t0 + Duration::from_secs(10));
        assert_eq!(push.poll_timeout(), Some(t0 + Duration::from_secs(12)), "watched afresh");
        push.handle_message(t0, status("409 Consumer Deleted", "", None));
        assert_eq!(push.poll_event(), Some(PushEvent::ConsumerDeleted));
        assert_eq!(push.missed_heartbeats(), 1);
        let none = PushConsumer::<Msg>::new(Some(Duration::ZERO), t0);
        assert_eq!(none.poll_timeout(), None, "no heartbeat asked for: nothing watched");
    }
}

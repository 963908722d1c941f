//! The subscription table: sid allocation, queue groups, remaining max-msgs, replay after reconnect.

use alloc::vec::Vec;

use crate::encode::WriteBuffer;
use crate::subject::Subject;

/// One live subscription as the core tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Sub {
    pub(crate) subject: Subject,
    pub(crate) queue: Option<Subject>,
    /// Total messages after which it ends (`UNSUB sid max`).
    pub(crate) max: Option<u64>,
    pub(crate) delivered: u64,
    /// Delivered since this connection's SUB: the server's own count, which restarts on reconnect.
    pub(crate) delivered_on_conn: u64,
}

/// What delivering a message did to its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// No such subscription (already ended): drop the message.
    Unknown,
    /// Delivered; the subscription goes on.
    Delivered,
    /// Delivered, and that was the last one it takes.
    Last,
}

#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    map: super::Ids<Sub>,
    last_sid: u64,
}

impl Subscriptions {
    pub(crate) fn next_sid(&mut self) -> u64 {
        self.last_sid += 1;
        self.last_sid
    }

    pub(crate) fn insert(&mut self, sid: u64, subject: Subject, queue: Option<Subject>) {
        self.map.insert(sid, Sub { subject, queue, max: None, delivered: 0, delivered_on_conn: 0 });
    }

    pub(crate) fn get_mut(&mut self, sid: u64) -> Option<&mut Sub> {
        self.map.get_mut(&sid)
    }

    pub(crate) fn remove(&mut self, sid: u64) -> Option<Sub> {
        self.map.remove(&sid)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Counts a message for `sid`; removes the subscription when it reached its max.
    pub(crate) fn deliver(&mut self, sid: u64) -> Delivery {
        let Some(sub) = self.map.get_mut(&sid) else {
            return Delivery::Unknown;
        };
        sub.delivered += 1;
        sub.delivered_on_conn += 1;
        if sub.max.is_some_and(|max| sub.delivered >= max) {
            self.map.remove(&sid);
            return Delivery::Last;
        }
        Delivery::Delivered
    }

    /// Sids in ascending order (creation order).
    pub(crate) fn sids(&self) -> Vec<u64> {
        let mut sids: Vec<u64> = self.map.keys().copied().collect();
        sids.sort_unstable();
        sids
    }

    /// Sids of subscriptions on exactly this subject and queue.
    pub(crate) fn find(&self, subject: &[u8], queue: Option<&[u8]>) -> Vec<u64> {
        let mut sids: Vec<u64> = self
            .map
            .iter()
            .filter(|(_, s)| s.subject.as_bytes() == subject && s.queue.as_ref().map(Subject::as_bytes) == queue)
            .map(|(&sid, _)| sid)
            .collect();
        sids.sort_unstable();
        sids
    }

    /// Writes SUB (and UNSUB with the remaining max) for every live subscription, for a new connection.
    pub(crate) fn replay(&mut self, out: &mut WriteBuffer) {
        for sid in self.sids() {
            let Some(sub) = self.map.get_mut(&sid) else { continue };
            sub.delivered_on_conn = 0;
            out.push_sub(sub.subject.as_bytes(), sub.queue.as_ref().map(Subject::as_bytes), sid);
            if let Some(max) = sub.max {
                // deliver() removes a subscription once delivered reaches max, so this is at least 1.
                out.push_unsub(sid, Some(max - sub.delivered));
            }
        }
    }
}

//! The sink both drivers hand to the core while it decodes a read: each message goes to its subscription's
//! queue, with no event queue in between.
//!
//! Messages of one subscription usually come in runs. The router gathers a run in a [`Batch`] as it is
//! decoded, without the queue's lock, and appends it to the subscription's queue in one step when the run ends
//! (another subscription's message, or the end of the read): the consumer is never kept waiting for the lock
//! while a read is decoded. Each queue that received something is woken once, after the read, outside the
//! connection's lock. Per message that leaves: one `Bytes` of the read buffer, a hash lookup in the core when
//! a run starts, a push onto the batch.
//!
//! Lock order: the connection's lock, then a queue's. A consumer takes only its queue's lock.

use std::sync::{Arc, Weak};

use nats_proto::{Deliver, FlushError, IdMap, Msg, RequestError};

use crate::message::{Message, Publish};
use crate::queue::{Batch, MessageQueue};
use crate::shared::{FlushSlot, ReplySlot};

/// What a read's delivery leaves behind for the driver: queues to wake, subscriptions that began to drop.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Queues that received messages; wake each once the connection's lock is released.
    pub(crate) touched: Vec<Arc<MessageQueue>>,
    /// Subscriptions whose queue started a slow-consumer episode during the read.
    pub(crate) slow: Vec<u64>,
    /// The run being gathered (empty between runs); kept, with its memory, from one read to the next.
    batch: Batch,
}

impl Delivered {
    /// Queues that received messages since they were last woken.
    pub fn touched(&self) -> &[Arc<MessageQueue>] {
        &self.touched
    }

    /// Subscriptions whose queue started a slow-consumer episode, not yet reported.
    pub fn slow(&self) -> &[u64] {
        &self.slow
    }

    /// Wakes the consumers of the queues that received messages, and forgets them.
    pub fn wake_touched(&mut self) {
        wake_all(&mut self.touched);
    }
}

/// Wakes the consumers of `queues` (a read's [`Delivered::touched`], taken out of the lock) and forgets them.
pub fn wake_all(queues: &mut Vec<Arc<MessageQueue>>) {
    for queue in queues.drain(..) {
        queue.wake();
    }
}

/// Who is to be woken once the connection's lock is released: the queues a read filled
/// ([`Locked::take_filled`](crate::shared::Locked::take_filled)), and the requests and flushes whose outcome
/// came ([`Locked::dispatch`](crate::shared::Locked::dispatch)).
///
/// An outcome is set, and its waiter woken, outside the lock because the waiter's first step is to take that
/// lock (for its next request, say): woken under it, it would wake only to wait for it. On one CPU that was
/// two more futex calls and context switches a round trip (seen in strace).
///
/// Dropped with outcomes in it, it sets them: nobody is left waiting.
#[derive(Debug, Default)]
pub struct Wakeups {
    queues: Vec<Arc<MessageQueue>>,
    replies: Vec<(ReplySlot, Result<Msg, RequestError>)>,
    flushes: Vec<(FlushSlot, Result<(), FlushError>)>,
}

impl Wakeups {
    /// Wakes everyone noted, and forgets them.
    pub fn wake_all(&mut self) {
        wake_all(&mut self.queues);
        for (slot, outcome) in self.replies.drain(..) {
            slot.set(outcome);
        }
        for (slot, outcome) in self.flushes.drain(..) {
            slot.set(outcome);
        }
    }

    /// The queues noted (see [`Locked::take_filled`](crate::shared::Locked::take_filled)).
    pub(crate) fn queues_mut(&mut self) -> &mut Vec<Arc<MessageQueue>> {
        &mut self.queues
    }

    /// A request's outcome, to be set once the lock is released.
    pub(crate) fn reply(&mut self, slot: ReplySlot, outcome: Result<Msg, RequestError>) {
        self.replies.push((slot, outcome));
    }

    /// A flush's outcome, to be set once the lock is released.
    pub(crate) fn flushed(&mut self, slot: FlushSlot, outcome: Result<(), FlushError>) {
        self.flushes.push((slot, outcome));
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.wake_all();
    }
}

/// Routes the messages of one read to their queues (see the module docs).
pub struct Router<'a> {
    routes: &'a IdMap<Arc<MessageQueue>>,
    /// Where messages with a reply subject answer.
    client: &'a Weak<dyn Publish>,
    out: &'a mut Delivered,
    /// The run in progress: its subscription, and its queue (`None`: nobody wants these).
    run: Option<(u64, Option<&'a Arc<MessageQueue>>)>,
}

impl<'a> Router<'a> {
    /// A router over `routes` (subscription id to queue) that leaves its findings in `out`.
    pub fn new(routes: &'a IdMap<Arc<MessageQueue>>, client: &'a Weak<dyn Publish>, out: &'a mut Delivered) -> Self {
        Self { routes, client, out, run: None }
    }

    /// Appends the run to its queue and notes what that did.
    fn end_run(&mut self) {
        let Some((sid, Some(queue))) = self.run.take() else { return };
        let pushed = queue.append(&mut self.out.batch);
        if pushed.queued > 0 && !self.out.touched.iter().any(|q| Arc::ptr_eq(q, queue)) {
            self.out.touched.push(queue.clone());
        }
        if pushed.episode {
            self.out.slow.push(sid);
        }
    }
}

/// The last run is appended when the router goes.
impl Drop for Router<'_> {
    fn drop(&mut self) {
        self.end_run();
    }
}

impl Deliver for Router<'_> {
    fn deliver(&mut self, msg: Msg) {
        let sid = msg.sid();
        if self.run.as_ref().is_none_or(|(s, _)| *s != sid) {
            self.end_run();
            // Unsubscribed by the client while the server still sent: nobody wants these.
            self.run = Some((sid, self.routes.get(&sid)));
        }
        if let Some((_, Some(_))) = self.run {
            let client = msg.reply().is_some().then(|| self.client.clone());
            self.out.batch.push(Message::new(msg, client));
        }
    }
}

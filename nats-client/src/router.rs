//! The sink both drivers hand to the core while it decodes a read: each message goes straight to its
//! subscription's queue.
//!
//! Messages of one subscription usually come in runs. The router holds the subscription's queue for the run
//! and appends each message as it is decoded (no staging, no second copy); the queue is let go when the run
//! ends (another subscription's message, or the end of the read). Each queue that received something is
//! woken once, after the read, outside the connection's lock. Per message that leaves: one `Bytes` of the
//! read buffer, a hash lookup in the core, a push onto the queue.
//!
//! Lock order: the connection's lock, then a queue's. A consumer takes only its queue's lock.

use std::sync::{Arc, Weak};

use nats_proto::{Deliver, IdMap, Msg};

use crate::message::{Message, Publish};
use crate::queue::{MessageQueue, Run};

/// What a read's delivery leaves behind for the driver: queues to wake, subscriptions that began to drop.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Queues that received messages; wake each once the connection's lock is released.
    pub touched: Vec<Arc<MessageQueue>>,
    /// Subscriptions whose queue started a slow-consumer episode during the read.
    pub slow: Vec<u64>,
}

/// Wakes the consumers of `queues` (a read's [`Delivered::touched`], taken out of the lock) and forgets them.
pub fn wake_all(queues: &mut Vec<Arc<MessageQueue>>) {
    for queue in queues.drain(..) {
        queue.wake();
    }
}

/// Routes the messages of one read to their queues (see the module docs).
pub struct Router<'a> {
    routes: &'a IdMap<Arc<MessageQueue>>,
    /// Where messages with a reply subject answer.
    client: &'a Weak<dyn Publish>,
    out: &'a mut Delivered,
    /// The run in progress: its subscription, and its queue held (`None`: nobody wants these).
    run: Option<(u64, Option<HeldQueue<'a>>)>,
}

/// A subscription's queue, and the run it holds.
type HeldQueue<'a> = (&'a Arc<MessageQueue>, Run<'a>);

impl<'a> Router<'a> {
    /// A router over `routes` (subscription id to queue) that leaves its findings in `out`.
    pub fn new(routes: &'a IdMap<Arc<MessageQueue>>, client: &'a Weak<dyn Publish>, out: &'a mut Delivered) -> Self {
        Self { routes, client, out, run: None }
    }

    /// Lets go of the run's queue and notes what it did.
    fn end_run(&mut self) {
        let Some((sid, Some((queue, run)))) = self.run.take() else { return };
        let pushed = run.pushed();
        drop(run);
        if pushed.queued > 0 && !self.out.touched.iter().any(|q| Arc::ptr_eq(q, queue)) {
            self.out.touched.push(queue.clone());
        }
        if pushed.episode {
            self.out.slow.push(sid);
        }
    }
}

/// The last run's queue is let go when the router goes.
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
            let queue = self.routes.get(&sid).map(|q| (q, q.run()));
            self.run = Some((sid, queue));
        }
        if let Some((_, Some((_, run)))) = self.run.as_mut() {
            let client = msg.reply().is_some().then(|| self.client.clone());
            run.push(Message::new(msg, client));
        }
    }
}

//! The sink both drivers hand to the core while it decodes a read: each message goes straight to its
//! subscription's queue.
//!
//! Messages of one subscription usually come in runs. A run is staged in a reused vector and appended to
//! its queue under one lock when the run ends (another subscription's message, or the end of the read), and
//! each queue that received something is woken once, after the read, outside the connection's lock. Per
//! message that leaves: one `Bytes` of the read buffer, a hash lookup in the core, a push onto a vector.

use std::sync::{Arc, Weak};

use nats_proto::{Deliver, IdMap, Msg};

use crate::message::{Message, Publish};
use crate::queue::MessageQueue;

/// What a read's delivery leaves behind for the driver: queues to wake, subscriptions that began to drop.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Queues that received messages; wake each once the connection's lock is released.
    pub touched: Vec<Arc<MessageQueue>>,
    /// Subscriptions whose queue started a slow-consumer episode during the read.
    pub slow: Vec<u64>,
    /// The run being staged (kept for its allocation).
    run: Vec<Message>,
}

impl Delivered {
    /// Wakes the consumers of every queue that received messages, and forgets them.
    pub fn wake_all(&mut self) {
        for queue in self.touched.drain(..) {
            queue.wake();
        }
    }
}

/// Routes the messages of one read to their queues (see the module docs).
pub struct Router<'a> {
    routes: &'a IdMap<Arc<MessageQueue>>,
    /// Where messages with a reply subject answer.
    client: &'a Weak<dyn Publish>,
    out: &'a mut Delivered,
    run_sid: u64,
}

impl<'a> Router<'a> {
    /// A router over `routes` (subscription id to queue) that leaves its findings in `out`.
    pub fn new(routes: &'a IdMap<Arc<MessageQueue>>, client: &'a Weak<dyn Publish>, out: &'a mut Delivered) -> Self {
        Self { routes, client, out, run_sid: 0 }
    }

    /// Appends the staged run to its queue.
    fn flush_run(&mut self) {
        if self.out.run.is_empty() {
            return;
        }
        let Some(queue) = self.routes.get(&self.run_sid) else {
            // Unsubscribed by the client while the server still sent: nobody wants these.
            self.out.run.clear();
            return;
        };
        let pushed = queue.push_run(&mut self.out.run);
        if pushed.queued > 0 && !self.out.touched.iter().any(|q| Arc::ptr_eq(q, queue)) {
            self.out.touched.push(queue.clone());
        }
        if pushed.episode {
            self.out.slow.push(self.run_sid);
        }
    }
}

/// The last run is delivered when the router goes, so no message can be left staged.
impl Drop for Router<'_> {
    fn drop(&mut self) {
        self.flush_run();
    }
}

impl Deliver for Router<'_> {
    fn deliver(&mut self, msg: Msg) {
        if msg.sid() != self.run_sid {
            self.flush_run();
            self.run_sid = msg.sid();
        }
        let client = msg.reply().is_some().then(|| self.client.clone());
        self.out.run.push(Message::new(msg, client));
    }
}

//! Subscriptions (the iterator form; the callback form is in `callback.rs`) and the replies of `request_many`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nats_proto::RequestId;

use nats_client::queue::{Empty, MessageQueue, Receiver};
use nats_client::{Message, PendingLimits};

use crate::driver::Shared;
use crate::inline::refuse_on_reader;
use crate::Error;

/// A subscription. Iterate it to receive messages; iteration ends when the subscription does (unsubscribed,
/// its max reached, drained, or the client closed). Dropping it unsubscribes.
pub struct Subscriber {
    sid: u64,
    rx: Receiver,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("sid", &self.sid).finish()
    }
}

impl Subscriber {
    pub(crate) fn new(sid: u64, queue: Arc<MessageQueue>, shared: Arc<Shared>) -> Self {
        Self { sid, rx: Receiver::new(queue), shared }
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The next message, waiting at most `timeout`. `Error::Timeout` when none came; `Error::Closed` (or
    /// `Error::Permission`) when the subscription has ended.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Message, Error> {
        match self.rx.try_next() {
            Some(Ok(msg)) => return Ok(msg),
            Some(Err(Empty::Ended(why))) => return Err(why.into()),
            _ => refuse_on_reader(&self.shared)?,
        }
        match self.rx.next_within(timeout) {
            Ok(msg) => Ok(msg),
            Err(Empty::Ended(why)) => Err(why.into()),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// The next message if one is waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_next().and_then(Result::ok)
    }

    /// Ends the subscription now. Messages already received can still be read.
    pub fn unsubscribe(&mut self) -> Result<(), Error> {
        self.shared.unsubscribe(self.sid, None)
    }

    /// Drains the subscription: no new messages, but those the server already sent are still delivered, then
    /// the subscription ends. Returns at once; keep reading until the end.
    pub fn drain(&mut self) -> Result<(), Error> {
        self.shared.drain_subscription(self.sid)
    }

    /// Ends the subscription once it has delivered `max` messages in total.
    pub fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
        self.shared.unsubscribe(self.sid, Some(max))
    }

    /// Messages dropped because this subscriber fell behind its pending limits.
    pub fn dropped(&self) -> u64 {
        self.rx.dropped()
    }

    /// Messages and bytes received but not yet taken.
    pub fn pending(&self) -> (usize, usize) {
        self.rx.pending()
    }

    /// Changes this subscription's pending limits.
    pub fn set_pending_limits(&mut self, limits: PendingLimits) {
        self.rx.set_limits(limits);
    }
}

impl Iterator for Subscriber {
    type Item = Message;

    /// On the reader thread (in an inline handler of this client) only a message already waiting is taken:
    /// waiting there would never end.
    fn next(&mut self) -> Option<Message> {
        if refuse_on_reader(&self.shared).is_err() {
            return self.try_next();
        }
        self.rx.next(None).ok()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Already ended (or the client is closed): nothing to undo.
        let _ = self.shared.unsubscribe(self.sid, None);
    }
}

/// The replies of [`Client::request_many`](crate::Client::request_many): an iterator that ends at the first
/// of: the overall timeout, a stall (no reply for a while after the last one), or a count.
pub struct Responses {
    pub(crate) id: RequestId,
    pub(crate) rx: Receiver,
    pub(crate) shared: Arc<Shared>,
    /// `None`: too far to represent, so no deadline.
    pub(crate) deadline: Option<Instant>,
    pub(crate) stall: Option<Duration>,
    pub(crate) max: Option<usize>,
    pub(crate) received: usize,
    pub(crate) last: Option<Instant>,
    pub(crate) done: bool,
}

impl Iterator for Responses {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.done || self.max.is_some_and(|m| self.received >= m) {
            self.finish();
            return None;
        }
        if refuse_on_reader(&self.shared).is_err() {
            // On the reader thread (an inline handler): only what is already here; waiting would never end.
            return match self.rx.try_next() {
                Some(Ok(msg)) => {
                    self.received += 1;
                    Some(msg)
                }
                _ => None,
            };
        }
        let stall_deadline = self.last.zip(self.stall).and_then(|(l, s)| l.checked_add(s));
        let deadline = match (stall_deadline, self.deadline) {
            (Some(s), Some(d)) => Some(s.min(d)),
            (s, d) => s.or(d),
        };
        match self.rx.next(deadline) {
            Ok(msg) => {
                self.received += 1;
                self.last = Some(Instant::now());
                Some(msg)
            }
            Err(_) => {
                self.finish();
                None
            }
        }
    }
}

impl Responses {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.cancel_request(self.id);
        }
    }
}

impl Drop for Responses {
    fn drop(&mut self) {
        self.finish();
    }
}

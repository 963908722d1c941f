//! Subscriptions and the replies of `request_many`, as `Stream`s.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use nats_client::queue::{MessageQueue, Receiver};
use nats_client::{Message, PendingLimits};
use nats_proto::{RequestId, SubscriptionEnd};

use crate::link::Shared;
use crate::runtime::Timers;
use crate::Error;

/// A subscription: a `Stream` of messages that ends when the subscription does (unsubscribed, its max
/// reached, drained, or the client closed). Dropping it unsubscribes.
pub struct Subscriber {
    sid: u64,
    rx: Receiver,
    shared: Arc<Shared>,
    ended: Option<SubscriptionEnd>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("sid", &self.sid).finish()
    }
}

impl Subscriber {
    pub(crate) fn new(sid: u64, queue: Arc<MessageQueue>, shared: Arc<Shared>) -> Self {
        Self { sid, rx: Receiver::new(queue), shared, ended: None }
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The next message; `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Message> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The next message if one is waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_next().and_then(Result::ok)
    }

    /// Why the subscription ended, once it has (`Error::Permission` when the server refused it).
    pub fn end_reason(&self) -> Option<Error> {
        self.ended.clone().map(Error::from)
    }

    /// Ends the subscription now. Messages already received can still be read.
    pub async fn unsubscribe(&mut self) -> Result<(), Error> {
        self.shared.unsubscribe(self.sid, None)
    }

    /// Drains the subscription: no new messages, but those the server already sent are still delivered, then
    /// the subscription ends. Returns at once; keep reading until the end.
    pub async fn drain(&mut self) -> Result<(), Error> {
        self.shared.drain_subscription(self.sid)
    }

    /// Ends the subscription once it has delivered `max` messages in total.
    pub async fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
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

impl Stream for Subscriber {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match self.rx.poll_next(cx) {
            Poll::Ready(Ok(msg)) => Poll::Ready(Some(msg)),
            Poll::Ready(Err(why)) => {
                self.ended = Some(why);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Already ended (or the client is closed): nothing to undo.
        let _ = self.shared.unsubscribe(self.sid, None);
    }
}

/// The replies of [`Client::request_many`](crate::Client::request_many): a `Stream` that ends at the first
/// of: the overall timeout, a stall (no reply for a while after the last one), a count, or no responders.
/// Dropping it cancels the request.
pub struct Responses {
    id: RequestId,
    rx: Receiver,
    shared: Arc<Shared>,
    stall: Option<Duration>,
    max: Option<usize>,
    received: usize,
    /// The stall deadline, moved by each reply; the overall deadline is the core's.
    stall_at: Option<Instant>,
    timer: Option<Box<dyn nats_client::seam::Timer>>,
    new_timer: Timers,
    done: bool,
}

impl Responses {
    pub(crate) fn new(
        id: RequestId,
        queue: Arc<MessageQueue>,
        shared: Arc<Shared>,
        stall: Option<Duration>,
        max: Option<usize>,
        new_timer: Timers,
    ) -> Self {
        let rx = Receiver::new(queue);
        Self { id, rx, shared, stall, max, received: 0, stall_at: None, timer: None, new_timer, done: false }
    }

    /// The next reply; `None` when the request is over.
    pub async fn next(&mut self) -> Option<Message> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.cancel_request(self.id);
        }
    }
}

impl Stream for Responses {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        if self.done || self.max.is_some_and(|m| self.received >= m) {
            self.finish();
            return Poll::Ready(None);
        }
        match self.rx.poll_next(cx) {
            Poll::Ready(Ok(msg)) => {
                self.received += 1;
                if let Some(at) = self.stall.and_then(|stall| Instant::now().checked_add(stall)) {
                    self.stall_at = Some(at);
                    let this = &mut *self;
                    let new_timer = &this.new_timer;
                    this.timer.get_or_insert_with(|| new_timer(at)).reset(at);
                }
                return Poll::Ready(Some(msg));
            }
            Poll::Ready(Err(_)) => {
                self.finish();
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        let stalled = match (self.stall_at, self.timer.as_mut()) {
            (Some(_), Some(timer)) => timer.poll_fired(cx).is_ready(),
            _ => false,
        };
        if stalled {
            self.finish();
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for Responses {
    fn drop(&mut self) {
        self.finish();
    }
}

//! Callback subscriptions: a handler that receives a subscription's messages in a task of its own, spawned on
//! the runtime the client connected on (tokio's or smol's; never one picked here).
//!
//! The task reads the subscription's queue as a [`Subscriber`] would and runs the handler for each message,
//! one at a time, in order: a plain closure is called, an async one's future is awaited before the next
//! message is taken. It ends when the subscription does (unsubscribed, its max reached, drained, the client
//! closed) once it has handled what was already received.
//!
//! A max (`unsubscribe_after`, or `Client::subscribe_with_max`) is kept twice: by the core, which ends the
//! subscription after `max` messages received (and tells the server, `UNSUB sid max`), and by the handler's
//! loop, which never runs the handler more than `max` times in all. The second makes the count exact even
//! when more than `max` messages were received before the max was set: they are received, but not handled.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use nats_client::queue::Slot;
use nats_client::Message;

use crate::link::Shared;
use crate::runtime::Spawner;
use crate::subscriber::Subscriber;
use crate::Error;

/// Messages handled in a row before the task lets the others of its executor thread run: a long queue of
/// messages is all ready at once, and nothing else would interrupt a handler that never waits (on a
/// current-thread runtime, not even the driver task).
const YIELD_EVERY: u64 = 64;

/// How the task ended: `Err` holds the handler's panic.
type Outcome = std::thread::Result<()>;

/// A subscription whose messages a handler receives in a task of its own, one at a time, in order.
///
/// Made by [`Client::subscribe_with`](crate::Client::subscribe_with) and its variants; the task runs on the
/// runtime the client connected on. Dropping it unsubscribes; the handler still finishes the messages
/// already received, in its task, which is not waited for ([`unsubscribe`](Self::unsubscribe) and
/// [`join`](Self::join) wait).
///
/// A handler that panics ends its own subscription only, as on `nats-blocking` (where its thread unwinds):
/// the panic is caught in the task, the subscription is unsubscribed, and the panic is returned by
/// [`join`](Self::join). The driver task and the other subscriptions go on.
pub struct CallbackSubscription {
    sid: u64,
    shared: Arc<Shared>,
    /// The most messages the handler may get in all; `u64::MAX`: no max.
    limit: Arc<AtomicU64>,
    /// Set when the task has ended (also when it was dropped unfinished, with the runtime).
    finished: Arc<Slot<Outcome>>,
    /// True once `join` or `unsubscribe` saw the end: dropping it has nothing left to undo.
    joined: bool,
}

impl std::fmt::Debug for CallbackSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSubscription").field("sid", &self.sid).finish()
    }
}

impl CallbackSubscription {
    /// Runs `handler` for `sub`'s messages in a task spawned with `spawner`, at most `max` of them if given.
    pub(crate) fn spawn(
        sub: Subscriber,
        max: Option<u64>,
        handler: impl Handler,
        spawner: &Spawner,
    ) -> Result<Self, Error> {
        let (sid, shared) = (sub.sid(), sub.shared().clone());
        let limit = Arc::new(AtomicU64::new(max.unwrap_or(u64::MAX)));
        if let Some(max) = max {
            // Before the task starts: nothing is handled yet that the max would have to count.
            shared.unsubscribe(sid, Some(max))?;
        }
        let finished = Arc::new(Slot::new());
        let task = Task { sub, handler, end: End { finished: finished.clone(), outcome: Ok(()) } };
        spawner(Box::pin(task.run(limit.clone())));
        Ok(Self { sid, shared, limit, finished, joined: false })
    }

    /// The subscription id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// Ends the subscription once the handler has been given `max` messages in total, counting those it was
    /// already given (as [`Subscriber::unsubscribe_after`] counts those already delivered). A max already
    /// reached ends it at once. The handler's task ends with the subscription.
    ///
    /// Messages received before this call are handled first; if they are more than `max`, the handler gets
    /// only `max` of them in all. To set the max before any message can arrive, subscribe with
    /// [`Client::subscribe_with_max`](crate::Client::subscribe_with_max).
    pub async fn unsubscribe_after(&mut self, max: u64) -> Result<(), Error> {
        // The handler's loop first, so that no message past the max is handled once the core stops counting.
        self.limit.store(max, Ordering::Release);
        self.shared.unsubscribe(self.sid, Some(max))
    }

    /// Ends the subscription and waits for the handler to finish the messages already received. Not to be
    /// awaited by the handler itself (it would wait for its own end): a handler ends its own subscription by
    /// dropping its `CallbackSubscription`, or with [`unsubscribe_after`](Self::unsubscribe_after).
    pub async fn unsubscribe(mut self) -> Result<(), Error> {
        let result = self.shared.unsubscribe(self.sid, None);
        // A panic of the handler is its own: the subscription is over either way.
        let _ = self.wait_finished().await;
        result
    }

    /// Waits until the subscription has ended (its max reached, unsubscribed, drained, or the client closed)
    /// and the handler has run for every message received (up to the max), then returns. It does not end the
    /// subscription itself: with no max, and nobody ending it, it waits for ever. Not to be awaited by the
    /// handler itself, which would wait for its own end.
    ///
    /// `Err` holds the handler's panic, if it panicked (the subscription ended then). Dropping this future
    /// before it completes drops the subscription, which unsubscribes.
    pub async fn join(mut self) -> std::thread::Result<()> {
        self.wait_finished().await
    }

    async fn wait_finished(&mut self) -> Outcome {
        let outcome = poll_fn(|cx| self.finished.poll_take(cx)).await;
        self.joined = true;
        outcome
    }
}

impl Drop for CallbackSubscription {
    /// Unsubscribes (as dropping a `Subscriber` does); the handler finishes the messages already received in its
    /// task, which is not waited for.
    fn drop(&mut self) {
        if !self.joined {
            let _ = self.shared.unsubscribe(self.sid, None);
        }
    }
}

/// A handler as the task runs it: a plain closure ([`Plain`]) or one returning a future ([`Async`]).
pub(crate) trait Handler: Send + 'static {
    /// What `call` returns: awaited before the next message is taken.
    type Done: Future<Output = ()> + Send;
    /// Runs the handler for `msg` (a plain one at once, in this call).
    fn call(&mut self, msg: Message) -> Self::Done;
}

/// A closure called for each message.
pub(crate) struct Plain<F>(pub(crate) F);

impl<F: FnMut(Message) + Send + 'static> Handler for Plain<F> {
    type Done = std::future::Ready<()>;

    fn call(&mut self, msg: Message) -> Self::Done {
        (self.0)(msg);
        std::future::ready(())
    }
}

/// A closure whose future is awaited for each message.
pub(crate) struct Async<F>(pub(crate) F);

impl<F, Fut> Handler for Async<F>
where
    F: FnMut(Message) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    type Done = Fut;

    fn call(&mut self, msg: Message) -> Fut {
        (self.0)(msg)
    }
}

/// Sets the task's outcome when dropped: at its end, or when the task is dropped unfinished (the runtime shut
/// down), so that `join` never waits for a task that will not run again.
struct End {
    finished: Arc<Slot<Outcome>>,
    outcome: Outcome,
}

impl Drop for End {
    fn drop(&mut self) {
        self.finished.set(std::mem::replace(&mut self.outcome, Ok(())));
    }
}

/// What the task owns. The fields drop in this order (at the end, or with the task): the subscriber first,
/// which unsubscribes if the subscription is still open (the loop stopped at the max before the core ended it,
/// or the handler panicked), then the handler and what it captured, then `end`, which tells `join`.
struct Task<H> {
    sub: Subscriber,
    handler: H,
    end: End,
}

impl<H: Handler> Task<H> {
    /// Every message of the subscription, up to `limit` handled in all.
    async fn run(mut self, limit: Arc<AtomicU64>) {
        let mut handled = 0u64;
        while handled < limit.load(Ordering::Acquire) {
            let Some(msg) = self.sub.next().await else { break };
            // The max may have been lowered while this waited.
            if handled >= limit.load(Ordering::Acquire) {
                break;
            }
            if let Err(panic) = call_catching(&mut self.handler, msg).await {
                self.end.outcome = Err(panic);
                break;
            }
            handled += 1;
            if handled % YIELD_EVERY == 0 {
                yield_now().await;
            }
        }
    }
}

/// Runs the handler for `msg` to its end; `Err` holds its panic (in the call, or in its future).
async fn call_catching<H: Handler>(handler: &mut H, msg: Message) -> Outcome {
    let mut done = pin!(catch_unwind(AssertUnwindSafe(|| handler.call(msg)))?);
    // A future that panicked is not polled again: the loop stops.
    poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| done.as_mut().poll(cx))) {
        Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
        Ok(Poll::Pending) => Poll::Pending,
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await
}

/// Pending once, woken at once: the executor runs its other tasks before this one goes on. Works on any
/// runtime (tokio's own `yield_now` would tie this to tokio).
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

//! The ordered consumer's push form on an async client: the same as [`crate::blocking`]'s, as a `Stream`.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::{AsyncContext, AsyncJsMessage};
use crate::ack::AckState;
use crate::common::{is_fatal_create_error, link_change, ordered_base};
use crate::error::Error;
use crate::ordered::OrderedConfig;
use crate::ordered_push::OrderedPushConsumer;
use nats_client::seam::{AsyncClient, AsyncSubscription, Timer};
use nats_client::{EventReceiver, Message};

/// The longest a wait goes without looking at connection events and timers.
const MAX_WAIT: Duration = Duration::from_secs(1);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What is in flight; kept across polls so that a dropped `next()` loses nothing.
enum Op<S> {
    /// Deleting an old consumer of the chain (best effort).
    Delete(BoxFuture<()>),
    /// Subscribing to a serial's deliver subject, then creating its consumer.
    Create(u64, BoxFuture<(Option<S>, Result<(), Error>)>),
    /// Answering flow control.
    Reply(BoxFuture<Result<(), Error>>),
}

impl<T: AsyncClient> AsyncContext<T> {
    /// An ordered consumer of `stream` in its push form, as a `Stream` (see
    /// [`crate::blocking::Context::ordered_push`]). Nothing is sent until it is first polled.
    pub fn ordered_push(&self, stream: &str, config: OrderedConfig) -> Result<AsyncOrderedPush<T>, Error> {
        crate::api::validate_stream_name(stream)?;
        let prefix = self.client.new_inbox();
        let now = Instant::now();
        let machine = OrderedPushConsumer::new(&prefix, &ordered_base(&prefix), config, now)?;
        Ok(AsyncOrderedPush {
            js: self.clone(),
            stream: stream.to_owned(),
            sub: None,
            machine,
            events: self.client.events(),
            timer: self.client.timer(now),
            op: None,
        })
    }
}

/// An ordered push consumer, as a `Stream`: see [`AsyncContext::ordered_push`]. It never ends by itself.
pub struct AsyncOrderedPush<T: AsyncClient> {
    js: AsyncContext<T>,
    stream: String,
    sub: Option<T::Subscription>,
    machine: OrderedPushConsumer<Message>,
    events: EventReceiver,
    timer: Box<dyn Timer>,
    op: Option<Op<T::Subscription>>,
}

impl<T: AsyncClient> std::fmt::Debug for AsyncOrderedPush<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncOrderedPush").field("stream", &self.stream).finish_non_exhaustive()
    }
}

// Nothing is pinned in place: the futures in flight are boxed.
impl<T: AsyncClient> Unpin for AsyncOrderedPush<T> {}

impl<T: AsyncClient> AsyncOrderedPush<T> {
    /// The chain's state: resets, missed heartbeats, flow control answered, and (through
    /// [`OrderedPushConsumer::tracker`]) the last sequences delivered.
    pub fn state(&self) -> &OrderedPushConsumer<Message> {
        &self.machine
    }

    /// The next message. It never ends by itself: `None` is not returned.
    pub async fn next(&mut self) -> Option<Result<AsyncJsMessage<T>, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// One step: a message, `Ok(None)` after other progress, or `Pending` with nothing to do.
    fn poll_step(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Option<Message>, Error>> {
        while let Poll::Ready(Some(event)) = self.events.poll_recv(cx) {
            if link_change(&event) == Some(true) {
                self.machine.handle_reconnected();
            }
        }
        loop {
            match self.op.as_mut() {
                None => {}
                Some(Op::Delete(deleting)) => {
                    ready!(deleting.as_mut().poll(cx));
                    self.op = None;
                    continue;
                }
                Some(Op::Reply(sending)) => {
                    let sent = ready!(sending.as_mut().poll(cx));
                    self.op = None;
                    sent?;
                    continue;
                }
                Some(Op::Create(serial, creating)) => {
                    let serial = *serial;
                    let (sub, created) = ready!(creating.as_mut().poll(cx));
                    self.op = None;
                    self.sub = sub;
                    match created {
                        Ok(()) => self.machine.create_succeeded(serial, Instant::now()),
                        Err(e) => {
                            self.machine.create_failed(serial, Instant::now());
                            if is_fatal_create_error(&e) {
                                return Poll::Ready(Err(e));
                            }
                        }
                    }
                    return Poll::Ready(Ok(None));
                }
            }
            if let Some(name) = self.machine.poll_delete() {
                let (js, stream) = (self.js.clone(), self.stream.clone());
                // Best effort: an ephemeral consumer without interest also goes away on its own.
                self.op = Some(Op::Delete(Box::pin(async move {
                    let _ = js.delete_consumer(&stream, &name).await;
                })));
                continue;
            }
            let now = Instant::now();
            if let Some(config) = self.machine.poll_create(now) {
                let serial = self.machine.tracker().serial();
                // The old subscription goes first: nothing of an old consumer reaches the user.
                self.sub = None;
                let (js, stream) = (self.js.clone(), self.stream.clone());
                self.op = Some(Op::Create(
                    serial,
                    Box::pin(async move {
                        let sub = match js.client.subscribe(&config.deliver_subject, None).await {
                            Ok(sub) => sub,
                            Err(e) => return (None, Err(e.into())),
                        };
                        let created = js.create_consumer(&stream, &config).await.map(drop);
                        (Some(sub), created)
                    }),
                ));
                continue;
            }
            if let Some(subject) = self.machine.poll_reply() {
                let client = self.js.client.clone();
                let subject = String::from_utf8_lossy(&subject).into_owned();
                self.op = Some(Op::Reply(Box::pin(async move {
                    client.publish(&subject, None, None, "".into()).await.map_err(Error::from)
                })));
                continue;
            }
            if let Some(message) = self.machine.poll_message() {
                return Poll::Ready(Ok(Some(message)));
            }
            if let Some(sub) = self.sub.as_mut() {
                match sub.poll_message(cx) {
                    Poll::Ready(Ok(msg)) => {
                        self.machine.handle_message(Instant::now(), msg);
                        return Poll::Ready(Ok(None));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => {}
                }
            }
            let due = self.machine.poll_timeout().map_or(now + MAX_WAIT, |d| d.min(now + MAX_WAIT));
            self.timer.reset(due);
            ready!(self.timer.poll_fired(cx));
            self.machine.handle_timeout(Instant::now());
            return Poll::Ready(Ok(None));
        }
    }
}

impl<T: AsyncClient> Stream for AsyncOrderedPush<T> {
    type Item = Result<AsyncJsMessage<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match ready!(this.poll_step(cx)) {
                Ok(Some(message)) => {
                    let client = this.js.client.clone();
                    return Poll::Ready(Some(Ok(AsyncJsMessage { message, client, acked: AckState::no_ack() })));
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}
